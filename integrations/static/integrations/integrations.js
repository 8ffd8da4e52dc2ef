// The integrations pages: a button with data-copy="id" copies the text of element #id (the
// webhook URL) to the clipboard and says so on the button for a moment.
(function () {
  "use strict";

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function done(button, label) {
    var before = button.textContent;
    button.textContent = label;
    window.setTimeout(function () { button.textContent = before; }, 1500);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { done(button, "Copied"); },
        function () { selectText(source); done(button, "Press Ctrl+C"); }
      );
    } else {
      // Plain http on a public host has no clipboard API: select it for the user instead.
      selectText(source);
      done(button, "Press Ctrl+C");
    }
  });
})();
