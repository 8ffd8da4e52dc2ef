// Keyboard focus in the dynamic segment builder. A row re-rendered after its field or
// operator changed comes back with the same control ids: focus returns to the control that
// had it. Removing a condition moves focus to the next row's first control (else the
// previous row's, else "Add a condition"); a new condition takes focus on its field.
(function () {
  "use strict";

  var lastFocused = "";

  document.addEventListener("htmx:beforeRequest", function (event) {
    var active = document.activeElement;
    if (active && active.id && event.target.closest && event.target.closest(".filter-row")) {
      lastFocused = active.id;
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (!target) { return; }
    if (target.id === "filter-rows" && event.detail.requestConfig &&
        event.detail.requestConfig.elt && event.detail.requestConfig.elt.matches("[data-testid=add-condition]")) {
      var rows = target.querySelectorAll(".filter-row");
      var added = rows[rows.length - 1];
      var field = added && added.querySelector("select[name=field]");
      if (field) { field.focus(); }
      return;
    }
    if (lastFocused) {
      var again = document.getElementById(lastFocused);
      var active = document.activeElement;
      if (again && (!active || active === document.body || !document.contains(active))) {
        again.focus();
      }
      lastFocused = "";
    }
  });

  // Capture phase: decided before herald.js removes the row.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("#filter-rows [data-remove-closest]");
    if (!button) { return; }
    var row = button.closest(".filter-row");
    var next = row && (row.nextElementSibling || row.previousElementSibling);
    var add = document.querySelector("[data-testid=add-condition]");
    var focusTarget = (next && next.querySelector("select, input:not([type=hidden]), button")) || add;
    setTimeout(function () { if (focusTarget) { focusTarget.focus(); } }, 0);
  }, true);
})();
