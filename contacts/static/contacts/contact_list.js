// The contact list's row selection: "select all on this page" ticks every row, and the
// number ticked is announced next to the Apply button.
(function () {
  "use strict";

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("#bulk-form .row-select"));
  }

  function announce() {
    var out = document.getElementById("bulk-selected");
    var all = document.getElementById("bulk-all");
    var page = document.getElementById("select-page");
    var ticked = rows().filter(function (box) { return box.checked; }).length;
    if (page) {
      page.checked = ticked > 0 && ticked === rows().length;
      page.indeterminate = ticked > 0 && ticked < rows().length;
    }
    if (!out) { return; }
    if (all && all.checked) {
      out.textContent = out.getAttribute("data-all-text") || "";
    } else {
      var template = out.getAttribute("data-count-text") || "{count}";
      out.textContent = ticked ? template.replace("{count}", String(ticked)) : "";
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-page") {
      rows().forEach(function (box) { box.checked = target.checked; });
    }
    if (target.id === "select-page" || target.id === "bulk-all" ||
        (target.classList && target.classList.contains("row-select"))) {
      announce();
    }
  });
})();
