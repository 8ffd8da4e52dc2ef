// What the pages used to say in on*="…" attributes, which the Content-Security-Policy now
// refuses to run. Listeners sit on the document, so content htmx swaps in works the same.
//
//   data-confirm="Question?"       on a form or a submit button: submit only if confirmed
//   data-remove-closest="selector"  on a button: remove the closest ancestor matching it,
//   data-then-trigger="event"         then fire `event` on <body> (htmx triggers listen there)
//   data-check-on-input="id"        on a field: typing in it checks the radio/checkbox #id
//
// And for every page: the phone navigation toggle, tables wrapped in a scrolling,
// keyboard-reachable region (on load and in whatever htmx swaps in), focus on the first
// field in error after a failed submit, and focus kept across htmx swaps.
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

  function focusable(element) {
    if (!element.matches("a[href], button, input, select, textarea, [tabindex]")) {
      element.setAttribute("tabindex", "-1");
    }
    return element;
  }

  // A form that came back with errors: the first field in error (Django marks it
  // aria-invalid and points its aria-describedby at the message), else the form's own error
  // message. Returns whether it moved the focus.
  function focusFirstError(root) {
    var field = root.querySelector("[aria-invalid='true']:not([type='hidden'])");
    if (field) {
      field.focus();
      return true;
    }
    var summary = root.querySelector("form .flash-error, form [role='alert'], [data-error-summary]");
    if (summary) {
      focusable(summary).focus();
      return true;
    }
    return false;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var main = document.getElementById("main");
    if (main) { focusFirstError(main); }
  });

  // htmx replaces the element that had the focus, and the browser drops it onto <body>:
  // a keyboard or screen-reader user is thrown back to the top of the page. Remember which
  // element had it and give it back to the element with that id in the new content, else
  // to the first field in error, else to the swapped region itself.
  var focusedId = null;
  var swapTargetId = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var active = document.activeElement;
    focusedId = active && active !== document.body && active.id ? active.id : null;
    swapTargetId = event.detail.target && event.detail.target.id ? event.detail.target.id : null;
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var active = document.activeElement;
    var target = event.detail.target;
    var region = target && target.isConnected ? target :
      (swapTargetId && document.getElementById(swapTargetId));
    var lost = !active || active === document.body || !active.isConnected;
    var submitted = event.detail.requestConfig && event.detail.requestConfig.verb !== "get";
    if (submitted && region && focusFirstError(region)) { return; }
    if (!lost) { return; }
    var again = focusedId && document.getElementById(focusedId);
    if (again) {
      again.focus();
    } else if (region) {
      focusable(region).focus();
    }
    focusedId = swapTargetId = null;
  });
})();
