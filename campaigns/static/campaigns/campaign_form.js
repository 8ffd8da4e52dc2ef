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

// The "Email service" list follows the channels ticked: an integration that does not connect
// every messaging channel of the campaign is greyed out (saving such a choice is refused
// anyway, naming the field). The chosen one is never disabled: a disabled option would not
// be posted, and the campaign would silently lose it.
(function () {
  "use strict";
  var service = document.getElementById("id_integration");
  if (!service) { return; }
  var messaging = (service.getAttribute("data-messaging") || "").split(" ");
  var boxes = document.querySelectorAll('input[name="channels"]');
  function fit() {
    var wanted = Array.prototype.filter.call(boxes, function (box) {
      return box.checked && messaging.indexOf(box.value) >= 0;
    }).map(function (box) { return box.value; });
    Array.prototype.forEach.call(service.options, function (option) {
      if (!option.value) { return; }
      var serves = (option.getAttribute("data-channels") || "").split(" ");
      var fits = wanted.every(function (channel) { return serves.indexOf(channel) >= 0; });
      option.disabled = !fits && !option.selected;
    });
  }
  Array.prototype.forEach.call(boxes, function (box) { box.addEventListener("change", fit); });
  service.addEventListener("change", fit);
  fit();
})();

// The repetition (cron) belongs to recurring campaigns: shown only while the type says so.
// The server ignores it for other types, so a hidden value can do no harm.
(function () {
  "use strict";
  var type = document.getElementById("id_type");
  var box = document.getElementById("cron-box");
  if (!type || !box) { return; }
  function sync() { box.hidden = type.value !== "recurring"; }
  type.addEventListener("change", sync);
  sync();
})();
