// Maps for nearcare pages: LSOA polygons from /api (no tile server needed) and service markers.
// Labels are built as DOM text, never as HTML: names and ids come from imported files and reports.
var nearcare = (function () {
  function text(value) {
    var span = document.createElement("span");
    span.textContent = value;
    return span;
  }
  function swatch(el, colour, label) {
    var box = document.createElement("span");
    box.style.background = colour;
    el.appendChild(box);
    el.appendChild(document.createTextNode(label));
  }
  // Classes, colours and labels come from the server (nearcare.legend), as in the report's maps.
  function legend(el, spec, missing) {
    el.textContent = "";
    var title = document.createElement("p");
    title.className = "nearcare-legend__title";
    title.textContent = spec.title + (spec.units ? " (" + spec.units + ")" : "");
    el.appendChild(title);
    var list = document.createElement("ul");
    list.className = "nearcare-legend__classes";
    function item(colour, label) {
      var li = document.createElement("li");
      swatch(li, colour, label);
      list.appendChild(li);
    }
    for (var i = 0; i < spec.labels.length; i++) { item(spec.colours[i], spec.labels[i]); }
    if (missing) { item(spec.missing_colour, "no data"); }
    el.appendChild(list);
  }
  var current = null;  // the page's main map (for tests and the console)
  // Context without internet: local authority outlines and names from the store's own boundaries, and
  // map tiles only when the server was started with --tiles URL (then named in a meta element).
  function outlines(map) {
    fetch("/api/local-authorities.geojson").then(function (r) { return r.ok ? r.json() : null; }).then(function (geo) {
      if (!geo) { return; }
      var pane = map.getPane("outlines") || map.createPane("outlines");
      pane.style.zIndex = 450;
      pane.style.pointerEvents = "none";
      L.geoJSON(geo, { pane: "outlines", interactive: false, style: function () { return { color: "#212b32", weight: 1.5, fill: false, opacity: 0.8 }; } }).addTo(map);
      geo.features.forEach(function (f) {
        L.tooltip({ permanent: true, direction: "center", className: "nearcare-la-label", interactive: false })
          .setLatLng([f.properties.label_lat, f.properties.label_lon]).setContent(text(f.properties.lad_name)).addTo(map);
      });
    });
  }
  function tiles(map) {
    var meta = document.querySelector('meta[name="nearcare-tiles"]');
    if (!meta) { return; }
    var layer = L.tileLayer(meta.getAttribute("content"), { maxZoom: 19 });
    layer.getAttribution = function () { return "Tiles: " + meta.getAttribute("data-host").replace(/[<>&"]/g, ""); };
    layer.addTo(map);
  }
  function base(id) {
    var map = L.map(id || "map", { zoomSnap: 0.25, preferCanvas: false, attributionControl: true, tap: true })
      .setView([52.65, -1.1], 9);
    if (!id) { current = map; }
    // Leaflet drops a view asked for while a zoom animation runs (its _tryAnimatedZoom returns
    // early), so a measure picked as the map settles never zoomed: ``fit`` waits for the end.
    map.on("zoomanim", function () { map.nearcareZooming = true; });
    map.on("zoomend", function () { map.nearcareZooming = false; });
    tiles(map);
    outlines(map);
    return map;
  }
  function fit(map, bounds, options) {
    if (map.nearcareZooming) { map.once("zoomend", function () { fit(map, bounds, options); }); return; }
    map.fitBounds(bounds, options);
  }
  function areas(map, url, state, done, outline) {
    fetch(url).then(function (r) { return r.json(); }).then(function (geo) {
      if (state.layer) { map.removeLayer(state.layer); }
      var spec = geo.legend;
      function colour(f) { return f.properties["class"] >= 0 ? spec.colours[f.properties["class"]] : spec.missing_colour; }
      state.layer = L.geoJSON(geo, {
        style: function (f) {
          var look = { color: "#ffffff", weight: 0.5, fillOpacity: 0.75, fillColor: colour(f) };
          return outline && outline(f) ? Object.assign(look, outline(f)) : look;
        },
        onEachFeature: function (f, layer) {
          var v = f.properties.value, label = f.properties["class"] >= 0 ? spec.labels[f.properties["class"]] : "no data";
          layer.bindTooltip(text(f.properties.lsoa21_name + ": " + (v === null ? "no data" : Number(v).toLocaleString("en-GB", { maximumSignificantDigits: 3 }) + (spec.units ? " " + spec.units : "")) + " (" + label + ")"));
        }
      }).addTo(map);
      state.layer.getAttribution = function () { return "Contains OS data © Crown copyright; ONS; MHCLG"; };
      // Zoom to where the measure exists: a measure for part of the area would otherwise blank the rest.
      var valued = L.featureGroup();
      state.layer.eachLayer(function (l) { if (l.feature.properties["class"] >= 0) { valued.addLayer(l); } });
      var missing = valued.getLayers().length < geo.features.length;
      if (valued.getLayers().length && (missing || !state.fitted)) { fit(map, valued.getBounds()); state.fitted = true; }
      legend(document.getElementById("legend"), spec, missing);
      if (state.markers) { state.markers.bringToFront(); }
      if (done) { done(); }
    });
  }
  function services(map, kind, state) {
    if (state.markers) { map.removeLayer(state.markers); state.markers = null; }
    if (!kind) { return; }
    fetch("/api/organisations?kind=" + encodeURIComponent(kind)).then(function (r) { return r.json(); }).then(function (geo) {
      state.markers = L.geoJSON(geo, {
        pointToLayer: function (f, latlng) {
          return L.circleMarker(latlng, { radius: 5, color: "#212b32", weight: 1, fillColor: "#d5281b", fillOpacity: 0.9, className: "nearcare-site" });
        },
        onEachFeature: function (f, layer) {
          layer.bindTooltip(text(f.properties.name));
          layer.on("click", function () { window.location = "/organisations/" + encodeURIComponent(f.properties.code); });
        }
      }).addTo(map);
    });
  }
  return {
    map: function () { return current; },
    overview: function () {
      var map = base(), state = {};
      var measure = document.getElementById("measure"), service = document.getElementById("services");
      function draw() {
        areas(map, "/api/areas.geojson?measure=" + encodeURIComponent(measure.value), state);
        document.querySelectorAll("a.nearcare-download").forEach(function (a) {  // download what is shown
          a.href = a.getAttribute("href").replace(/\?.*$/, "") + "?measure=" + encodeURIComponent(measure.value);
        });
      }
      measure.addEventListener("change", draw);
      service.addEventListener("change", function () { services(map, service.value, state); });
      draw();
      services(map, service.value, state);
    },
    serves: function () {
      var map = base(), state = {};
      var el = document.getElementById("map"), code = el.getAttribute("data-code");
      var lat = parseFloat(el.getAttribute("data-lat")), lon = parseFloat(el.getAttribute("data-lon"));
      areas(map, "/api/organisations/" + encodeURIComponent(code) + "/serves.geojson", state, function () {
        if (isFinite(lat) && isFinite(lon)) {  // the practice itself, above its catchment
          state.markers = L.circleMarker([lat, lon], { radius: 9, color: "#ffffff", weight: 3, fillColor: "#d5281b", fillOpacity: 1, className: "nearcare-practice" }).addTo(map);
          state.markers.bindTooltip(text(el.getAttribute("data-name") + " (this practice)"));
        }
      });
    },
    workforce: function () {  // practices coloured by risk score (classes and legend from the server)
      var map = base();
      fetch("/api/workforce/risk.geojson").then(function (r) { return r.json(); }).then(function (geo) {
        var spec = geo.legend;
        var layer = L.geoJSON(geo, {
          pointToLayer: function (f, latlng) {
            var c = f.properties["class"] >= 0 ? spec.colours[f.properties["class"]] : spec.missing_colour;
            return L.circleMarker(latlng, { radius: 6, color: "#212b32", weight: 1, fillColor: c, fillOpacity: 0.9 });
          },
          onEachFeature: function (f, l) { l.bindTooltip(text(f.properties.name + ": " + f.properties.value + " points. " + (f.properties.reasons || "no rule met"))); }
        }).addTo(map);
        if (geo.features.length) { fit(map, layer.getBounds()); }
        legend(document.getElementById("legend"), spec, false);
      });
    },
    defibrillators: function () {
      var map = base(), state = {}, time = document.getElementById("defib-time");
      function desert(f) { return f.properties.desert ? { color: "#d5281b", weight: 2.5, dashArray: "4 3" } : null; }
      function draw() {
        areas(map, "/api/defibrillators/coverage.geojson?time=" + encodeURIComponent(time.value), state, null, desert);
      }
      time.addEventListener("change", draw);
      draw();
      state.markers = L.featureGroup().addTo(map);
      fetch("/api/defibrillators").then(function (r) { return r.json(); }).then(function (geo) {
        L.geoJSON(geo, {
          pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 6, color: "#212b32", weight: 1, fillColor: "#007f3b", fillOpacity: 0.9, className: "nearcare-defib" }); },
          onEachFeature: function (f, l) { l.bindTooltip(text(f.properties.defib_id + " (" + f.properties.status + ", " + (f.properties.hours || "hours not recorded") + ")")); }
        }).addTo(state.markers);
      });
      fetch("/api/defibrillators/proposed.geojson").then(function (r) { return r.json(); }).then(function (geo) {
        L.geoJSON(geo, {
          pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 9, color: "#330072", weight: 3, fillColor: "#ffeb3b", fillOpacity: 1, className: "nearcare-proposed" }); },
          onEachFeature: function (f, l) { l.bindTooltip(text("Proposed site " + f.properties.rank + ": " + f.properties.name + " (adds " + Number(f.properties.people_added).toLocaleString("en-GB") + " people)")); }
        }).addTo(state.markers);
      });
      nearcare.picker();
    },
    // The report form: tap the map to mark the place (hidden lat/lon fields); a postcode works instead.
    picker: function () {
      var el = document.getElementById("report-map");
      if (!el) { return; }
      var map = base("report-map"), pin = null;
      var lat = document.getElementById("lat"), lon = document.getElementById("lon");
      var status = document.getElementById("report-place-status");
      fetch("/api/defibrillators").then(function (r) { return r.json(); }).then(function (geo) {
        var known = L.geoJSON(geo, {
          pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 5, color: "#212b32", weight: 1, fillColor: "#007f3b", fillOpacity: 0.9, interactive: false }); }
        }).addTo(map);
        if (geo.features.length) { fit(map, known.getBounds(), { maxZoom: 13 }); }
      });
      function place(latlng) {
        lat.value = latlng.lat.toFixed(6);
        lon.value = latlng.lng.toFixed(6);
        if (pin) { pin.setLatLng(latlng); } else {
          pin = L.circleMarker(latlng, { radius: 10, color: "#ffffff", weight: 3, fillColor: "#d5281b", fillOpacity: 1, className: "nearcare-pin" }).addTo(map);
        }
        status.textContent = "Place marked on the map (" + lat.value + ", " + lon.value + "). Tap again to move it.";
      }
      if (lat.value && lon.value && isFinite(parseFloat(lat.value)) && isFinite(parseFloat(lon.value))) {
        place(L.latLng(parseFloat(lat.value), parseFloat(lon.value)));
      }
      map.on("click", function (e) { place(e.latlng); });
      el.picker = map;  // for tests
    },
    // The scenario page: click a practice or pharmacy to add it to (or take it from) the sites to close.
    scenario: function () {
      var map = base(), select = document.getElementById("close");
      var byCode = {};
      function look(code) {
        var option = select.querySelector('option[value="' + CSS.escape(code) + '"]');
        return option && option.selected
          ? { radius: 8, color: "#212b32", weight: 3, fillColor: "#d5281b", fillOpacity: 1 }
          : { radius: 6, color: "#212b32", weight: 1, fillColor: "#005eb8", fillOpacity: 0.85 };
      }
      function restyle() { Object.keys(byCode).forEach(function (code) { byCode[code].setStyle(look(code)); }); }
      var group = L.featureGroup().addTo(map), pending = 2;
      ["gp", "pharmacy"].forEach(function (kind) {
        fetch("/api/organisations?kind=" + kind).then(function (r) { return r.json(); }).then(function (geo) {
          L.geoJSON(geo, {
            filter: function (f) { return f.geometry && select.querySelector('option[value="' + CSS.escape(f.properties.code) + '"]'); },
            pointToLayer: function (f, latlng) {
              var m = L.circleMarker(latlng, Object.assign({ className: "nearcare-site nearcare-site--" + kind }, look(f.properties.code)));
              return m;
            },
            onEachFeature: function (f, layer) {
              byCode[f.properties.code] = layer;
              layer.bindTooltip(text((kind === "gp" ? "GP: " : "Pharmacy: ") + f.properties.name + " (" + f.properties.code + ")"));
              layer.on("click", function () {
                var option = select.querySelector('option[value="' + CSS.escape(f.properties.code) + '"]');
                option.selected = !option.selected;
                select.dispatchEvent(new Event("change"));
              });
            }
          }).addTo(group);
          if (--pending === 0 && group.getLayers().length) { fit(map, group.getBounds()); }
        });
      });
      select.addEventListener("change", restyle);
    }
  };
})();
// Each page names its map in data-view (no inline script: the Content-Security-Policy forbids it).
(function () {
  var el = document.getElementById("map");
  var view = el && el.getAttribute("data-view");
  if (view && Object.prototype.hasOwnProperty.call(nearcare, view)) { nearcare[view](); }
})();
