// The preview link follows the template picker: the template editor shows a live preview.
(function () {
  "use strict";
  var picker = document.getElementById("id_template");
  var link = document.getElementById("template-preview");
  if (!picker || !link) { return; }
  var base = link.getAttribute("data-templates-url");
  function sync() { link.href = picker.value ? base + picker.value + "/" : base; }
  picker.addEventListener("change", sync);
  sync();
})();
