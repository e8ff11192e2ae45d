/* Starting a conversation and the contact panel (beside static/js/app.js, which it relies on
 * for the JSON API with the CSRF token and the toasts: window.inboxUI).
 *
 * "New conversation" is a <dialog>: a number, an optional name and an approved template whose
 * fields and preview the server rendered (templates/inbox/_template_defs.html, as for the
 * composer); this only copies what is typed into the preview's placeholders and posts the
 * request. The server parses the number, checks the template and answers; nothing is re-derived
 * here. The contact panel is a server fragment (inbox.contact_fragment) loaded with htmx and
 * saved through PATCH /whatsapp/api/contactos/<id>. Same CSP as app.js: no inline script or
 * style, text set with textContent.
 */
"use strict";

(() => {
  const ui = window.inboxUI;
  if (!ui || !document.getElementById("inbox")) return;
  const { api, toast, strings: T } = ui;
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const newKey = () => (window.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`);
  const refresh = () => {
    for (const poller of $$("#list, #thread")) htmx.trigger(poller, "refresh");
  };

  /* --- new conversation ---------------------------------------------------------------- */
  const dialog = $("#new-conversation");
  const opener = $("#new-conversation-open");
  if (dialog && opener && typeof dialog.showModal === "function") {
    const form = $("#nc-form", dialog);
    const phone = $("#nc-phone", dialog);
    const name = $("#nc-name", dialog);
    const select = $("#nc-template", dialog);
    const params = $("#nc-params", dialog);
    const preview = $("#nc-preview", dialog);
    const submit = $("#nc-submit", dialog);
    const phoneError = $("#nc-phone-error", dialog);
    const error = $("#nc-error", dialog);
    const existing = $("#nc-existing", dialog);
    const emptyPreview = Array.from(preview.childNodes, (node) => node.cloneNode(true));
    let chosen = null;
    let sending = false;
    let key = null;
    let keyFor = null;

    const inputs = () => $$("input[data-key]", params);
    const values = () => Object.fromEntries(inputs().map((input) => [input.dataset.key, input.value]));
    const complete = () => Boolean(phone.value.trim() && chosen && inputs().every((input) => input.value.trim()));

    function showError(message, conversationId = null) {
      $("#nc-error-text", dialog).textContent = message || "";
      error.hidden = !message;
      existing.hidden = !conversationId;
      if (conversationId) existing.href = `${form.dataset.openUrl}?c=${encodeURIComponent(conversationId)}`;
    }
    function showPhoneError(message) {
      phoneError.textContent = message || "";
      phoneError.hidden = !message;
      phone.setAttribute("aria-invalid", message ? "true" : "false");
    }
    function update() {
      for (const mark of $$("mark[data-key]", preview)) {
        const value = (values()[mark.dataset.key] || "").trim() ? values()[mark.dataset.key] : "";
        mark.textContent = value || mark.dataset.empty;
        mark.classList.toggle("empty", !value);
      }
      submit.disabled = sending || !complete();
    }
    function choose() {
      chosen = select.value ? $(`#nc-template-${CSS.escape(select.value)}`, dialog) : null;
      if (chosen) {
        params.replaceChildren(...$(".template-fields-list", chosen.content).cloneNode(true).children);
        preview.replaceChildren($(".preview-bubble", chosen.content).cloneNode(true));
      } else {
        params.replaceChildren();
        preview.replaceChildren(...emptyPreview.map((node) => node.cloneNode(true)));
      }
      update();
    }

    opener.addEventListener("click", () => {
      showError("");
      dialog.showModal();
      phone.focus();
    });
    dialog.addEventListener("click", (event) => {
      if (event.target.closest("[data-dialog-close]")) dialog.close();
    });
    select.addEventListener("change", () => {
      showError("");
      choose();
    });
    form.addEventListener("input", (event) => {
      if (event.target === phone) showPhoneError("");
      showError("");
      update();
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (sending) return;
      if (!complete()) {
        showError(T.startMissing);
        return;
      }
      const body = {
        phone: phone.value,
        template: { name: chosen.dataset.name, language: chosen.dataset.language, parameters: values() },
      };
      if (name.value.trim()) body.name = name.value.trim();
      // The same request after a network error reuses its key: it is never sent twice.
      const signature = JSON.stringify(body);
      if (keyFor !== signature) {
        keyFor = signature;
        key = newKey();
      }
      sending = true;
      form.setAttribute("aria-busy", "true");
      update();
      const result = await api("POST", form.dataset.url, body, { "Idempotency-Key": key });
      sending = false;
      form.removeAttribute("aria-busy");
      update();
      const data = result.data || {};
      const conversationId = (data.conversation && data.conversation.id) || data.conversation_id;
      if (result.status === 201 || (result.status === 502 && conversationId)) {
        // Started (a refused template is stored failed, with Meta's reason and a retry button).
        window.location.assign(`${form.dataset.openUrl}?c=${encodeURIComponent(conversationId)}`);
        return;
      }
      if (result.status === 401) return;
      keyFor = null;
      if (data.error === "invalid_phone") {
        showPhoneError(T.invalidPhone);
        phone.focus();
      } else if (data.error === "conversation_exists") showError(T.conversationExists, data.conversation_id);
      else if (data.error === "missing_parameters") showError(T.missingParameters);
      else if (data.error === "unknown_template") showError(T.unknownTemplate);
      else if (result.status === 0) showError(T.network);
      else showError(data.message || T.genericError);
    });
  }

  /* --- the contact panel --------------------------------------------------------------- */
  const panel = $("#contact-panel");
  if (!panel) return;
  let returnFocus = null;

  function openPanel(url) {
    htmx.ajax("GET", url, { target: panel, swap: "innerHTML" }).then(() => {
      panel.hidden = false;
      document.body.classList.add("has-contact-panel");
      const title = $("#contact-title", panel);
      if (title) title.focus();
    });
  }
  function closePanel() {
    panel.hidden = true;
    document.body.classList.remove("has-contact-panel");
    if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
    else {
      const again = $("[data-contact-open]");
      if (again) again.focus();
    }
  }

  // The header is morphed by every poll: listen on the document, not on the button.
  document.addEventListener("click", (event) => {
    const open = event.target.closest("[data-contact-open]");
    if (open) {
      returnFocus = open;
      if (!panel.hidden) closePanel();
      else openPanel(open.dataset.url);
      return;
    }
    if (event.target.closest("[data-contact-close]")) closePanel();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden && !document.querySelector("dialog[open]")) closePanel();
  });

  panel.addEventListener("click", (event) => {
    if (event.target.closest("[data-attribute-add]")) {
      const row = $("#attribute-row", panel).content.firstElementChild.cloneNode(true);
      $("#attribute-list", panel).append(row);
      $(".attribute-key", row).focus();
    }
    const remove = event.target.closest("[data-attribute-remove]");
    if (remove) remove.closest(".attribute-row").remove();
  });

  panel.addEventListener("submit", async (event) => {
    const form = event.target.closest("#contact-form");
    if (!form) return;
    event.preventDefault();
    const error = $("#contact-error", panel);
    const showError = (message) => {
      error.textContent = message || "";
      error.hidden = !message;
    };
    const attributes = {};
    for (const row of $$(".attribute-row", form)) {
      const key = $(".attribute-key", row).value.trim();
      if (!key) continue;
      if (key in attributes) return showError(T.duplicateAttribute);
      attributes[key] = $(".attribute-value", row).value;
    }
    if (Object.keys(attributes).length > 30) return showError(T.tooManyAttributes);
    const displayName = $("#contact-display-name", form).value.trim();
    const body = { display_name: displayName || null, notes: $("#contact-notes", form).value, attributes };
    const save = $("#contact-save", form);
    save.disabled = true;
    const result = await api("PATCH", form.dataset.url, body);
    save.disabled = false;
    if (result.ok) {
      toast(T.contactSaved, "success");
      openPanel(form.dataset.fragment);
      refresh();
    } else if (result.status !== 401) {
      showError(result.status === 0 ? T.network : (result.data && result.data.message) || T.genericError);
    }
  });
})();
