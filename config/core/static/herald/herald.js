// What the pages used to say in on*="…" attributes, which the Content-Security-Policy now
// refuses to run. Listeners sit on the document, so content htmx swaps in works the same.
//
//   data-confirm="Question?"       on a form or a submit button: submit only if confirmed
//   data-remove-closest="selector"  on a button: remove the closest ancestor matching it,
//   data-then-trigger="event"         then fire `event` on <body> (htmx triggers listen there)
//   data-check-on-input="id"        on a field: typing in it checks the radio/checkbox #id
//
// And for every page: the phone navigation toggle, and tables wrapped in a scrolling,
// keyboard-reachable region (on load and in whatever htmx swaps in).
(function () {
  "use strict";

  // Capture phase: decided before htmx or any other handler sees the submit.
  document.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    var question = (submitter && submitter.getAttribute("data-confirm")) ||
      event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-remove-closest]");
    if (!button) { return; }
    var doomed = button.closest(button.getAttribute("data-remove-closest"));
    var then = button.getAttribute("data-then-trigger");
    if (doomed) { doomed.remove(); }
    if (then) { document.body.dispatchEvent(new CustomEvent(then, {bubbles: true})); }
  });

  // Capture phase: the box is checked before the input event reaches htmx's triggers.
  document.addEventListener("input", function (event) {
    var id = event.target.getAttribute && event.target.getAttribute("data-check-on-input");
    var box = id && document.getElementById(id);
    if (box) { box.checked = true; }
  }, true);

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest(".nav-toggle");
    if (!toggle) { return; }
    var menu = document.getElementById(toggle.getAttribute("aria-controls"));
    var open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (menu) { menu.classList.toggle("open", open); }
  });

  function wrapTables(root) {
    var scope = root.querySelectorAll ? root : document;
    var tables = Array.prototype.slice.call(scope.querySelectorAll("main table"));
    if (scope.matches && scope.matches("main table")) { tables.push(scope); }
    tables.forEach(function (table) {
      var parent = table.parentElement;
      if (!parent || parent.classList.contains("table-scroll")) { return; }
      var box = document.createElement("div");
      box.className = "table-scroll";
      box.setAttribute("role", "region");
      box.setAttribute("tabindex", "0");
      var caption = table.querySelector("caption");
      var heading = caption ? caption.textContent : (table.getAttribute("aria-label") || "");
      box.setAttribute("aria-label", heading.trim() || document.title.split(" · ")[0]);
      parent.insertBefore(box, table);
      box.appendChild(table);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { wrapTables(document); });
  document.addEventListener("htmx:load", function (event) { wrapTables(event.target); });
})();
