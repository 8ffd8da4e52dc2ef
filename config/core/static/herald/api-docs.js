// Accessibility repairs of the Swagger UI page (/api/docs/), applied to whatever Swagger UI
// renders, now and after each re-render (it is a React app: operations open and close).
//
// - The operation summary is a <button> holding the deep link <a href>: a control inside a
//   control. The link loses its href (the button still opens the operation, and deep linking
//   still writes the operation into the address bar).
// - The copy-path wrapper repeats its button's aria-label on a plain <div>.
// - The example pickers are <select>s without a name.
// - Scrolling code samples cannot be reached from the keyboard.
"use strict";

(() => {
  const repair = (root) => {
    root.querySelectorAll(".opblock-summary-control a[href]").forEach((link) => {
      link.removeAttribute("href");
    });
    root.querySelectorAll("div.copy-to-clipboard[aria-label]").forEach((wrapper) => {
      wrapper.removeAttribute("aria-label");
    });
    root.querySelectorAll("select.examples-select-element:not([aria-label])").forEach((select) => {
      select.setAttribute("aria-label", "Example");
    });
    root
      .querySelectorAll(".body-param__example:not([tabindex]), .microlight:not([tabindex])")
      .forEach((sample) => {
        sample.setAttribute("tabindex", "0");
      });
  };

  const start = () => {
    const root = document.getElementById("swagger-ui");
    if (!root) {
      return;
    }
    repair(root);
    new MutationObserver(() => repair(root)).observe(root, { childList: true, subtree: true });
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
