(function () {
  "use strict";
  // Task table filters: status, kind and free text.
  var rows = Array.prototype.slice.call(document.querySelectorAll("#tasks tbody tr"));
  var status = document.getElementById("filter-status");
  var kind = document.getElementById("filter-kind");
  var text = document.getElementById("filter-text");
  var shown = document.getElementById("shown");
  var texts = rows.map(function (row) { return row.cells[0].textContent.toLowerCase(); });
  function apply() {
    var s = status.value, k = kind.value, q = text.value.toLowerCase(), n = 0;
    rows.forEach(function (row, i) {
      var ok = (!s || row.dataset.status === s) && (!k || row.dataset.kind === k) &&
        (!q || texts[i].indexOf(q) !== -1);
      row.style.display = ok ? "" : "none";
      n += ok ? 1 : 0;
    });
    shown.textContent = n + " of " + rows.length + " tasks";
  }
  [status, kind, text].forEach(function (el) { el.addEventListener("input", apply); });
  apply();
  // Hover text for pygal bars without pygal's hosted tooltip script: a native SVG <title> per bar.
  document.querySelectorAll(".pygal-chart .bar, .pygal-chart .dot").forEach(function (bar) {
    var value = bar.querySelector("desc.value");
    var label = bar.querySelector("desc.x_label") || bar.querySelector("desc.label");
    if (!value) { return; }
    var title = document.createElementNS("http://www.w3.org/2000/svg", "title");
    title.textContent = (label ? label.textContent + ": " : "") + value.textContent;
    bar.appendChild(title);
  });
  // Opening a #traj-... link expands that trajectory.
  function openTarget() {
    var el = location.hash && document.getElementById(location.hash.slice(1));
    if (el && el.tagName === "DETAILS") { el.open = true; }
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
})();
