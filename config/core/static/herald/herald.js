// What the pages used to say in on*="…" attributes, which the Content-Security-Policy now
// refuses to run. Listeners sit on the document, so content htmx swaps in works the same.
//
//   data-confirm="Question?"       on a form or a submit button: submit only if confirmed
//   data-remove-closest="selector"  on a button: remove the closest ancestor matching it,
//   data-then-trigger="event"         then fire `event` on <body> (htmx triggers listen there)
//   data-check-on-input="id"        on a field: typing in it checks the radio/checkbox #id
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
})();
