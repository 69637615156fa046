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
  var ramp = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"];
  function colourer(values) {
    var finite = values.filter(function (v) { return v !== null && isFinite(v); }).sort(function (a, b) { return a - b; });
    if (!finite.length) { return { colour: function () { return "#d8dde0"; }, breaks: [] }; }
    if (finite.every(function (v) { return v === Math.round(v) && v >= 1 && v <= 10; })) {
      // Deciles: one colour each, 1 (most deprived) to 10.
      return { decile: true, breaks: [1, 2, 3, 4, 5, 6, 7, 8, 9],
               colour: function (v) { return v === null ? "#d8dde0" : ramp[v - 1]; } };
    }
    var breaks = [];
    for (var i = 1; i < ramp.length; i++) { breaks.push(finite[Math.floor(i * finite.length / ramp.length)]); }
    return {
      breaks: breaks,
      colour: function (v) {
        if (v === null || !isFinite(v)) { return "#d8dde0"; }
        var k = 0; while (k < breaks.length && v > breaks[k]) { k++; }
        return ramp[k];
      }
    };
  }
  function legend(el, scale, min, max) {
    el.textContent = "";
    if (scale.decile) {
      for (var d = 1; d <= 10; d++) { swatch(el, ramp[d - 1], String(d)); }
      el.appendChild(document.createTextNode(" (decile)"));
      return;
    }
    var edges = [min].concat(scale.breaks).concat([max]);
    for (var i = 0; i < ramp.length; i++) { swatch(el, ramp[i], Number(edges[i]).toPrecision(3)); }
  }
  function base() {
    return L.map("map", { zoomSnap: 0.25, preferCanvas: false, attributionControl: true })
      .setView([52.65, -1.1], 9);
  }
  function areas(map, url, state, done) {
    fetch(url).then(function (r) { return r.json(); }).then(function (geo) {
      if (state.layer) { map.removeLayer(state.layer); }
      var values = geo.features.map(function (f) { return f.properties.value; });
      var scale = colourer(values);
      state.layer = L.geoJSON(geo, {
        style: function (f) { return { color: "#ffffff", weight: 0.5, fillOpacity: 0.75, fillColor: scale.colour(f.properties.value) }; },
        onEachFeature: function (f, layer) { layer.bindTooltip(text(f.properties.lsoa21_name + ": " + (f.properties.value === null ? "no data" : Number(f.properties.value).toPrecision(4)))); }
      }).addTo(map);
      state.layer.getAttribution = function () { return "Contains OS data © Crown copyright; ONS; MHCLG"; };
      if (!state.fitted) { map.fitBounds(state.layer.getBounds()); state.fitted = true; }
      var finite = values.filter(function (v) { return v !== null; });
      legend(document.getElementById("legend"), scale, Math.min.apply(null, finite), Math.max.apply(null, finite));
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
    overview: function () {
      var map = base(), state = {};
      var measure = document.getElementById("measure"), service = document.getElementById("services");
      function draw() { areas(map, "/api/areas.geojson?measure=" + encodeURIComponent(measure.value), state); }
      measure.addEventListener("change", draw);
      service.addEventListener("change", function () { services(map, service.value, state); });
      draw();
      services(map, service.value, state);
    },
    serves: function () {
      var map = base(), state = {};
      var code = document.getElementById("map").getAttribute("data-code");
      areas(map, "/api/organisations/" + encodeURIComponent(code) + "/serves.geojson", state);
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
