// The block editor of a template: GrapesJS with its MJML plugin (grapesjs-mjml), loaded from
// Herald's static files. Saving posts the MJML and the editor's project data to Herald's API,
// which compiles the MJML on the server; the preview then shows the saved message as it is
// rendered for the sample contact. Images are uploaded to Herald (POST /api/herald/images).
(function () {
  "use strict";

  var root = document.getElementById("design-editor");
  if (!root || !window.grapesjs) { return; }
  var design = JSON.parse(document.getElementById("design-data").textContent);
  var csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  var errors = document.querySelector("[data-testid=design-errors]");
  var status = document.querySelector("[data-testid=design-status]");
  var saveButton = document.getElementById("design-save");
  var preview = document.querySelector("[data-testid=design-preview]");
  var previewNote = document.querySelector("[data-testid=design-preview-empty]");
  var mjmlPlugin = window["grapesjs-mjml"];
  mjmlPlugin = mjmlPlugin && (mjmlPlugin.default || mjmlPlugin);

  var FOOTER = '<mj-section padding="10px 0"><mj-column>' +
    '<mj-text font-size="12px" color="#6b7280" align="center">You receive this message ' +
    'because you subscribed to it. <a href="%UNSUBSCRIBE_URL%" style="color:#6b7280">' +
    'Unsubscribe</a>.</mj-text></mj-column></mj-section>';

  function showErrors(messages) {
    errors.textContent = "";
    messages.forEach(function (message) {
      var line = document.createElement("p");
      line.textContent = message;
      errors.appendChild(line);
    });
    errors.hidden = messages.length === 0;
  }

  // {"mjml": ["..."], "detail": "..."} → ["mjml: ...", "..."]
  function messagesOf(body) {
    var found = [];
    Object.keys(body || {}).forEach(function (key) {
      var value = body[key];
      (Array.isArray(value) ? value : [value]).forEach(function (text) {
        found.push(key === "detail" ? String(text) : key + ": " + text);
      });
    });
    return found.length ? found : ["The request failed."];
  }

  function api(url, options) {
    options.credentials = "same-origin";
    options.headers = Object.assign({"X-CSRFToken": csrf, "Accept": "application/json"},
      options.headers || {});
    return fetch(url, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        return {ok: response.ok, body: body};
      });
    });
  }

  function refreshPreview() {
    return api(root.dataset.previewUrl, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"
    }).then(function (answer) {
      if (!answer.ok) { showErrors(messagesOf(answer.body)); return; }
      preview.srcdoc = answer.body.html;
      previewNote.hidden = true;
    });
  }

  function uploadFiles(event) {
    var files = event.dataTransfer ? event.dataTransfer.files : event.target.files;
    Array.prototype.forEach.call(files, function (file) {
      var form = new FormData();
      form.append("file", file);
      api(root.dataset.uploadUrl, {method: "POST", body: form}).then(function (answer) {
        if (!answer.ok) { showErrors(messagesOf(answer.body)); return; }
        showErrors([]);
        editor.AssetManager.add({src: answer.body.url, name: answer.body.name});
      });
    });
  }

  var editor = grapesjs.init({
    container: "#gjs",
    height: "680px",
    fromElement: false,
    // The panels' icon font from Herald's static files, not from GrapesJS's default CDN.
    cssIcons: root.dataset.iconsUrl,
    storageManager: false,
    // No web fonts: the server compiles without them too (templates.design).
    plugins: [function (instance) { mjmlPlugin(instance, {fonts: {}}); }],
    assetManager: {
      assets: design.images,
      upload: root.dataset.uploadUrl,
      uploadFile: uploadFiles,
      multiUpload: true,
      accept: "image/png,image/jpeg,image/gif,image/webp"
    }
  });
  if (design.project) {
    editor.loadProjectData(design.project);
  } else if (design.mjml) {
    editor.setComponents(design.mjml);
  }
  editor.Blocks.add("herald-footer", {
    label: "Footer",
    category: "Sections",
    content: FOOTER,
    media: '<svg viewBox="0 0 24 24" width="48" height="48"><path fill="currentColor" ' +
      'd="M3 15h18v5H3z M5 17h9v1H5z"/></svg>'
  });
  window.heraldDesignEditor = editor;  // for the page's browser tests and the console

  function save() {
    saveButton.setAttribute("aria-busy", "true");
    var body = JSON.stringify({mjml: editor.getHtml(), project: editor.getProjectData()});
    return api(root.dataset.saveUrl, {
      method: "POST", headers: {"Content-Type": "application/json"}, body: body
    }).then(function (answer) {
      saveButton.removeAttribute("aria-busy");
      if (!answer.ok) {
        showErrors(messagesOf(answer.body));
        status.textContent = "Not saved: the last saved design stays";
        return;
      }
      showErrors([]);
      status.textContent = "Saved " + new Date().toLocaleTimeString();
      return refreshPreview();
    });
  }

  if (saveButton) { saveButton.addEventListener("click", save); }
})();
