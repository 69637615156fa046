// Search as you type, added on top of plain forms that work without JavaScript: the header's search
// (suggestions from /api/search, each a link) and the scenario page's list of sites to close (the
// multi-select is replaced by a search box over its own options, and the map can pick too; the form
// still posts the select).
// Every label is set as text, never as HTML.
(function () {
  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }
  function suggestions(input, id) {
    var list = document.createElement("ul");
    list.className = "nearcare-suggestions";
    list.id = id;
    list.setAttribute("role", "listbox");
    input.setAttribute("aria-controls", id);
    input.setAttribute("autocomplete", "off");
    input.insertAdjacentElement("afterend", list);
    return list;
  }

  // The header search: suggestions are links to the result's page (or to the results page).
  var header = document.getElementById("search-field");
  if (header) {
    var found = suggestions(header, "search-suggestions");
    var asked = 0;
    header.addEventListener("input", debounce(function () {
      var q = header.value.trim(), ticket = ++asked;
      if (q.length < 2) { found.textContent = ""; return; }
      fetch("/api/search?q=" + encodeURIComponent(q)).then(function (r) { return r.ok ? r.json() : { results: [] }; })
        .then(function (answer) {
          if (ticket !== asked) { return; }  // a later keystroke has asked again
          found.textContent = "";
          answer.results.slice(0, 8).forEach(function (r) {
            var li = document.createElement("li"), a = document.createElement("a");
            a.href = r.href || ("/search?q=" + encodeURIComponent(r.code));
            a.textContent = r.name + " (" + r.kind_label + (r.distance_km !== null ? ", " + r.distance_km.toFixed(1) + " km" : "") + ")";
            a.className = "nearcare-suggestion";
            li.appendChild(a);
            found.appendChild(li);
          });
        });
    }, 200));
  }

  // The scenario picker: type to find a site, pick it, remove it; the hidden select carries the choice.
  var select = document.getElementById("close");
  if (select && select.multiple) {
    var label = document.querySelector('label[for="close"]');
    var box = document.createElement("input");
    box.className = "nhsuk-input";
    box.id = "close-search";
    box.type = "search";
    box.placeholder = "Type part of a name or code";
    select.hidden = true;
    select.insertAdjacentElement("afterend", box);
    if (label) { label.htmlFor = "close-search"; label.textContent = label.textContent.replace(/; hold Ctrl or Cmd to choose several/, "; type to find each one"); }
    var matches = suggestions(box, "close-suggestions");
    var chosen = document.createElement("ul");
    chosen.className = "nhsuk-list";
    chosen.id = "close-chosen";
    chosen.setAttribute("aria-live", "polite");
    matches.insertAdjacentElement("afterend", chosen);
    var options = Array.prototype.slice.call(select.options);
    function drawChosen() {
      chosen.textContent = "";
      options.filter(function (o) { return o.selected; }).forEach(function (o) {
        var li = document.createElement("li"), remove = document.createElement("button");
        li.appendChild(document.createTextNode(o.textContent + " "));
        remove.type = "button";
        remove.className = "nhsuk-button nhsuk-button--secondary nhsuk-button--small nhsuk-u-margin-bottom-0";
        remove.textContent = "Remove";
        remove.setAttribute("aria-label", "Remove " + o.textContent);
        remove.addEventListener("click", function () { o.selected = false; select.dispatchEvent(new Event("change")); });
        li.appendChild(remove);
        chosen.appendChild(li);
      });
    }
    function pick(o) { o.selected = true; box.value = ""; matches.textContent = ""; select.dispatchEvent(new Event("change")); box.focus(); }
    select.addEventListener("change", drawChosen);  // the map picks sites too (map.js)
    box.addEventListener("input", function () {
      var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
      matches.textContent = "";
      if (!words.length) { return; }
      options.filter(function (o) {
        var t = o.textContent.toLowerCase();
        return !o.selected && words.every(function (w) { return t.indexOf(w) >= 0; });
      }).slice(0, 10).forEach(function (o) {
        var li = document.createElement("li");
        li.textContent = o.textContent;
        li.tabIndex = 0;
        li.setAttribute("role", "option");
        li.setAttribute("data-code", o.value);
        li.addEventListener("click", function () { pick(o); });
        li.addEventListener("keydown", function (e) { if (e.key === "Enter") { e.preventDefault(); pick(o); } });
        matches.appendChild(li);
      });
    });
    box.addEventListener("keydown", function (e) {  // Enter picks the first match rather than posting
      if (e.key === "Enter" && matches.firstChild) { e.preventDefault(); matches.firstChild.click(); }
    });
    drawChosen();
  }
})();
