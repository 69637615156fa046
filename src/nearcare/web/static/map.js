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
  var current = null;  // the page's map (for tests and the console)
  function base() {
    current = L.map("map", { zoomSnap: 0.25, preferCanvas: false, attributionControl: true })
      .setView([52.65, -1.1], 9);
    return current;
  }
  function areas(map, url, state, done) {
    fetch(url).then(function (r) { return r.json(); }).then(function (geo) {
      if (state.layer) { map.removeLayer(state.layer); }
      var spec = geo.legend;
      function colour(f) { return f.properties["class"] >= 0 ? spec.colours[f.properties["class"]] : spec.missing_colour; }
      state.layer = L.geoJSON(geo, {
        style: function (f) { return { color: "#ffffff", weight: 0.5, fillOpacity: 0.75, fillColor: colour(f) }; },
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
      if (valued.getLayers().length && (missing || !state.fitted)) { map.fitBounds(valued.getBounds()); state.fitted = true; }
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
        if (geo.features.length) { map.fitBounds(layer.getBounds()); }
        legend(document.getElementById("legend"), spec, false);
      });
    },
    defibrillators: function () {
      var map = base();
      fetch("/api/defibrillators").then(function (r) { return r.json(); }).then(function (geo) {
        var layer = L.geoJSON(geo, {
          pointToLayer: function (f, latlng) { return L.circleMarker(latlng, { radius: 7, color: "#212b32", weight: 1, fillColor: "#007f3b", fillOpacity: 0.9 }); },
          onEachFeature: function (f, l) { l.bindTooltip(text(f.properties.defib_id + " (" + f.properties.status + ")")); }
        }).addTo(map);
        if (geo.features.length) { map.fitBounds(layer.getBounds(), { maxZoom: 13 }); }
      });
    }
  };
})();
// Each page names its map in data-view (no inline script: the Content-Security-Policy forbids it).
(function () {
  var el = document.getElementById("map");
  var view = el && el.getAttribute("data-view");
  if (view && Object.prototype.hasOwnProperty.call(nearcare, view)) { nearcare[view](); }
})();
