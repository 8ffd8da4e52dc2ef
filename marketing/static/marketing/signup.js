// The public subscription form: focus the first field with an error, and, inside an iframe,
// tell the embedding page the form's height (and where to go after a framed thank-you).
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var invalid = document.querySelector("[aria-invalid='true']");
  if (invalid) {
    invalid.focus();
  }
  if (window.parent === window) { return; }
  var redirect = document.body.getAttribute("data-redirect");
  function report() {
    var message = {herald: "signup", height: document.documentElement.scrollHeight};
    if (redirect) { message.redirect = redirect; }
    window.parent.postMessage(message, "*");
  }
  report();
  if (window.ResizeObserver) {
    new ResizeObserver(report).observe(document.body);
  }
});
