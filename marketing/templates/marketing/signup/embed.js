// Herald subscription form: inserts the form in an iframe where this script stands and sizes
// it to the form's height, which the framed page reports by postMessage.
(function () {
  "use strict";
  var src = {{ frame_url|safe }};
  var origin = new URL(src).origin;
  var script = document.currentScript;
  var frame = document.createElement("iframe");
  frame.src = src;
  frame.title = {{ title|safe }};
  frame.setAttribute("style", "display:block;width:100%;max-width:32rem;height:30rem;border:0;");
  if (script && script.parentNode) {
    script.parentNode.insertBefore(frame, script.nextSibling);
  } else {
    document.body.appendChild(frame);
  }
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || event.source !== frame.contentWindow) { return; }
    var data = event.data || {};
    if (data.herald !== "signup") { return; }
    if (typeof data.height === "number" && data.height > 0) {
      frame.style.height = Math.ceil(data.height) + "px";
    }
    if (typeof data.redirect === "string" && /^https?:\/\//.test(data.redirect)) {
      window.location.assign(data.redirect);
    }
  });
})();
