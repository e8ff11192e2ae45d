/* The inbox's behaviour: live updates by conditional polling, the composer, actions.
 *
 * Plain modern JavaScript, no build step, no library. It runs under a strict
 * Content-Security-Policy: no inline script, no inline style, no eval. Everything the
 * server renders (rows, messages, the conversation header) comes as HTML fragments from
 * the same Jinja templates as the page, escaped there; text this script shows itself is
 * set with textContent, never parsed as HTML.
 */
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const stringsBlock = $("#ui-strings");
  const T = stringsBlock ? JSON.parse(stringsBlock.textContent) : {};
  const csrfMeta = $('meta[name="csrf-token"]');
  const csrfToken = csrfMeta ? csrfMeta.content : "";
  const format = (template, values) =>
    String(template || "").replace(/\{(\w+)\}/g, (whole, key) => (key in values ? values[key] : whole));

  document.documentElement.classList.add("js");

  /* --- the browser's time zone, so the server can show times in it --------------------- */
  (() => {
    const name = document.body.dataset.tzCookie;
    try {
      const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (name && zone && /^[A-Za-z0-9_+\-/]+$/.test(zone) && !document.cookie.split("; ").includes(`${name}=${zone}`)) {
        document.cookie = `${name}=${zone}; path=/; max-age=31536000; SameSite=Lax`;
      }
    } catch (_error) {
      /* no Intl time zone: the server uses UTC */
    }
  })();

  /* --- small page helpers ------------------------------------------------------------- */
  for (const form of $$("form[data-autosubmit]")) {
    form.addEventListener("change", (event) => {
      if (event.target.matches("select")) form.requestSubmit();
    });
  }
  for (const form of $$("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // Close an open menu on Escape or on a click outside it.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const menu of $$("details.menu[open]")) {
      menu.open = false;
      $("summary", menu).focus();
    }
  });
  document.addEventListener("click", (event) => {
    for (const menu of $$("details.menu[open]")) {
      if (!menu.contains(event.target)) menu.open = false;
    }
  });

  const toastBox = $("#toast");
  let toastTimer = null;
  function toast(message, kind = "info", sticky = false) {
    if (!toastBox) return;
    toastBox.textContent = message;
    toastBox.dataset.kind = kind;
    toastBox.hidden = false;
    clearTimeout(toastTimer);
    if (!sticky) toastTimer = setTimeout(() => (toastBox.hidden = true), 3500);
  }

  function sessionEnded() {
    toast(T.sessionExpired, "error", true);
    setTimeout(() => window.location.reload(), 1200);
  }

  /* --- the JSON API, with the page's CSRF token -------------------------------------- */
  async function api(method, url, body, headers = {}) {
    const init = {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken, ...headers },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (_error) {
      return { ok: false, status: 0, data: null };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_error) {
      data = null;
    }
    if (response.status === 401) sessionEnded();
    if (response.status === 403 && data && data.error === "csrf_failed") toast(T.csrf, "error", true);
    return { ok: response.ok, status: response.status, data };
  }

  /* --- conditional polling: If-None-Match, 304 most of the time ------------------------ */
  const POLL_VISIBLE_MS = 2000;
  const POLL_HIDDEN_MS = 15000;
  let offline = false;

  class Poller {
    constructor(url, apply) {
      this.url = url;
      this.apply = apply;
      this.etag = null;
      this.lastUrl = null;
      this.timer = null;
      this.running = false;
      this.again = false;
      this.failures = 0;
      this.stopped = false;
    }

    start(delay = POLL_VISIBLE_MS) {
      this.schedule(delay);
    }

    schedule(delay) {
      clearTimeout(this.timer);
      if (!this.stopped) this.timer = setTimeout(() => this.tick(), delay);
    }

    now() {
      if (this.running) {
        this.again = true;
        return;
      }
      this.schedule(0);
    }

    async tick() {
      this.running = true;
      const url = this.url();
      if (url !== this.lastUrl) {
        this.etag = null;
        this.lastUrl = url;
      }
      const headers = { Accept: "text/html" };
      if (this.etag) headers["If-None-Match"] = this.etag;
      try {
        const response = await fetch(url, { headers, cache: "no-store", redirect: "manual", credentials: "same-origin" });
        if (response.type === "opaqueredirect" || response.status === 401) {
          this.stopped = true;
          sessionEnded();
          return;
        }
        if (response.status === 404) {
          this.stopped = true;
          return;
        }
        if (response.ok) {
          const html = await response.text();
          if (url === this.url()) {
            this.etag = response.headers.get("ETag");
            this.apply(html);
          }
        } else if (response.status !== 304) {
          throw new Error(`HTTP ${response.status}`);
        }
        this.failures = 0;
        if (offline) {
          offline = false;
          toast(T.reconnected, "success");
        }
      } catch (_error) {
        this.failures += 1;
        if (!offline && this.failures > 1) {
          offline = true;
          toast(T.network, "error", true);
        }
      } finally {
        this.running = false;
      }
      if (this.again) {
        this.again = false;
        this.schedule(0);
        return;
      }
      const base = document.visibilityState === "visible" ? POLL_VISIBLE_MS : POLL_HIDDEN_MS;
      this.schedule(this.failures ? Math.min(30000, base * 2 ** this.failures) : base);
    }
  }

  const pollers = [];
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") for (const poller of pollers) poller.now();
  });

  function parseFragment(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    return template.content;
  }

  const inbox = $("#inbox");
  if (!inbox) return;

  /* --- the conversation list ---------------------------------------------------------- */
  const listBox = $("#list");
  const filters = $("#list-filters");

  function currentParams() {
    return new URLSearchParams(window.location.search);
  }

  function listUrl() {
    return `${inbox.dataset.listUrl}?${currentParams().toString()}`;
  }

  function applyList(html) {
    const active = document.activeElement;
    let focusKey = null;
    if (active && listBox.contains(active)) {
      const row = active.closest("[data-id]");
      focusKey = row ? `[data-id="${row.dataset.id}"] a` : active.dataset.tab ? `[data-tab="${active.dataset.tab}"]` : null;
    }
    const scroll = listBox.scrollTop;
    listBox.replaceChildren(parseFragment(html));
    listBox.scrollTop = scroll;
    if (focusKey) {
      const again = $(focusKey, listBox);
      if (again) again.focus({ preventScroll: true });
    }
  }

  const listPoller = new Poller(listUrl, applyList);
  pollers.push(listPoller);
  listPoller.start();

  function setParams(changes) {
    const params = currentParams();
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === "" || value === undefined) params.delete(key);
      else params.set(key, value);
    }
    const query = params.toString();
    window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
    listPoller.now();
  }

  if (filters) {
    let searchTimer = null;
    const search = $("#q", filters);
    search.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => setParams({ q: search.value.trim(), page: null }), 250);
    });
    $("#status", filters).addEventListener("change", (event) => setParams({ status: event.target.value, page: null }));
    filters.addEventListener("submit", (event) => {
      event.preventDefault();
      setParams({ q: search.value.trim(), page: null });
    });
  }

  listBox.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-tab], a[data-page]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    if (link.dataset.tab) {
      const hidden = filters && $('input[name="tab"]', filters);
      if (hidden) hidden.value = link.dataset.tab;
      setParams({ tab: link.dataset.tab, page: null });
    } else {
      setParams({ page: link.dataset.page });
      listBox.scrollTop = 0;
    }
  });

  /* --- the open conversation ---------------------------------------------------------- */
  const thread = $("#thread");
  if (!thread) return;
  const composer = $("#composer");
  const newBelow = $("#new-below");
  const conversationId = composer.dataset.conversation;
  let lastHead = $('[data-part="head"]', thread).outerHTML;
  const signatures = new Map();

  const messagesList = () => $('[data-part="messages"]', thread);
  const stateBox = () => $('[data-part="state"]', thread);
  for (const item of messagesList().children) signatures.set(item.dataset.id, item.outerHTML);

  let stickToBottom = true;
  const nearBottom = (list) => list.scrollHeight - list.scrollTop - list.clientHeight < 120;
  function scrollToBottom() {
    const list = messagesList();
    list.scrollTop = list.scrollHeight;
    newBelow.hidden = true;
  }

  function fixBackLink() {
    const back = $("[data-back]", thread);
    if (!back) return;
    const params = currentParams();
    params.delete("c");
    const query = params.toString();
    back.href = `${window.location.pathname}${query ? `?${query}` : ""}`;
  }

  function threadUrl() {
    const params = currentParams();
    params.delete("c");
    return `${thread.dataset.fragmentUrl}?${params.toString()}`;
  }

  function isPlaying(element) {
    return $$("audio, video", element).some((media) => !media.paused);
  }

  function morph(incoming) {
    const list = messagesList();
    const live = new Map($$(":scope > li[data-id]", list).map((item) => [item.dataset.id, item]));
    const items = Array.from(incoming.children).filter((item) => item.dataset.id && item.dataset.id !== "cursor");
    const known = items.filter((item) => live.has(item.dataset.id));
    if (!known.length && live.size > 1) {
      // More new messages than one page: start over from the newest page.
      const cursor = $('li[data-id="cursor"]', list);
      list.replaceChildren(...items);
      if (cursor) list.prepend(cursor);
      signatures.clear();
      for (const item of items) signatures.set(item.dataset.id, item.outerHTML);
      return items.some((item) => item.matches(".msg"));
    }
    let anchor = null;
    let added = false;
    for (const item of items) {
      const id = item.dataset.id;
      const html = item.outerHTML;
      const existing = live.get(id);
      if (existing) {
        if (signatures.get(id) !== html && !isPlaying(existing)) {
          existing.replaceWith(item);
          signatures.set(id, html);
          anchor = item;
        } else {
          anchor = existing;
        }
        continue;
      }
      if (anchor) anchor.after(item);
      else live.get(known[0].dataset.id).before(item);
      signatures.set(id, html);
      anchor = item;
      if (item.matches(".msg")) added = true;
    }
    return added;
  }

  function applyThread(html) {
    const fragment = parseFragment(html);
    const head = $('[data-part="head"]', fragment);
    if (head && head.outerHTML !== lastHead) {
      lastHead = head.outerHTML;
      const oldHead = $('[data-part="head"]', thread);
      const menuOpen = $("details.menu[open]", oldHead) !== null;
      const focused = document.activeElement;
      const focusKey = focused && oldHead.contains(focused) ? focused.id || focused.dataset.action : null;
      oldHead.replaceWith(head);
      if (menuOpen) $("details.menu", head).open = true;
      if (focusKey) {
        const again = $(`#${CSS.escape(focusKey)}`, head) || $(`[data-action="${CSS.escape(focusKey)}"]`, head);
        if (again) again.focus({ preventScroll: true });
      }
      fixBackLink();
    }
    const state = $('[data-part="state"]', fragment);
    if (state) {
      stateBox().replaceWith(state);
      applyState();
    }
    const incoming = $('[data-part="messages"]', fragment);
    if (incoming) {
      const list = messagesList();
      const wasAtBottom = nearBottom(list);
      const added = morph(incoming);
      if (added) {
        if (wasAtBottom) scrollToBottom();
        else newBelow.hidden = false;
      }
    }
  }

  const threadPoller = new Poller(threadUrl, applyThread);
  pollers.push(threadPoller);
  threadPoller.start();

  // Older messages when the agent scrolls to the top.
  let loadingOlder = false;
  async function loadOlder() {
    const list = messagesList();
    const cursor = $('li[data-id="cursor"]', list);
    if (loadingOlder || !cursor || !cursor.dataset.before) return;
    loadingOlder = true;
    list.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(`${thread.dataset.olderUrl}?before=${encodeURIComponent(cursor.dataset.before)}`, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
        redirect: "manual",
      });
      if (!response.ok) return;
      const fragment = parseFragment(await response.text());
      const fromBottom = list.scrollHeight - list.scrollTop;
      const newCursor = $('li[data-id="cursor"]', fragment);
      cursor.dataset.before = newCursor ? newCursor.dataset.before : "";
      if (newCursor) newCursor.remove();
      for (const item of Array.from(fragment.children)) {
        const duplicate = item.dataset.id && $(`:scope > li[data-id="${CSS.escape(item.dataset.id)}"]`, list);
        // A day separator moves up to the earliest message of its day.
        if (duplicate && item.matches(".day")) duplicate.remove();
        else if (duplicate) item.remove();
        if (item.dataset.id) signatures.set(item.dataset.id, item.outerHTML);
      }
      cursor.after(fragment);
      list.scrollTop = list.scrollHeight - fromBottom;
    } finally {
      loadingOlder = false;
      list.removeAttribute("aria-busy");
    }
  }

  function onScroll() {
    const list = messagesList();
    stickToBottom = nearBottom(list);
    if (stickToBottom) newBelow.hidden = true;
    if (list.scrollTop < 300) loadOlder();
  }
  messagesList().addEventListener("scroll", onScroll, { passive: true });
  // Images arrive after the text: keep the newest message in view while they load.
  thread.addEventListener(
    "load",
    (event) => {
      if (event.target.tagName === "IMG" && stickToBottom) scrollToBottom();
    },
    true,
  );
  newBelow.addEventListener("click", () => {
    scrollToBottom();
    composerText.focus();
  });

  // Opening a conversation marks it read, here and on the customer's phone.
  let marking = false;
  let leaving = false;
  async function markReadIfNeeded() {
    const state = stateBox();
    if (marking || leaving || Number(state.dataset.unread || 0) === 0 || document.visibilityState !== "visible") return;
    marking = true;
    const result = await api("POST", thread.dataset.readUrl);
    marking = false;
    if (result.ok) {
      state.dataset.unread = "0";
      listPoller.now();
    }
  }
  document.addEventListener("visibilitychange", markReadIfNeeded);

  /* --- actions: assign, resolve, reopen, mark unread, retry, reply --------------------- */
  async function patch(body) {
    const result = await api("PATCH", thread.dataset.patchUrl, body);
    if (result.ok) {
      toast(T.actionDone, "success");
      threadPoller.now();
      listPoller.now();
    } else if (result.status !== 401) {
      toast((result.data && result.data.message) || T.genericError, "error");
    }
    return result;
  }

  thread.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const action = button.dataset.action;
    const menu = button.closest("details.menu");
    if (menu) menu.open = false;
    if (action === "reply") {
      const article = $(`#m-${CSS.escape(button.dataset.message)} .bubble`, thread);
      startReply(button.dataset.message, article ? article.dataset.preview : "");
    } else if (action === "retry") {
      button.disabled = true;
      toast(T.retrying);
      const url = `${composer.dataset.sendUrl}/${encodeURIComponent(button.dataset.message)}/reintentar`;
      const result = await api("POST", url);
      if (!result.ok && result.status !== 401) {
        toast(explainSendError(result), "error");
        button.disabled = false;
      }
      threadPoller.now();
      listPoller.now();
    } else if (action === "assign-me") {
      await patch({ assignee: Number(inbox.dataset.me) });
    } else if (action === "unassign") {
      await patch({ assignee: null });
    } else if (action === "status") {
      await patch({ status: button.dataset.value });
    } else if (action === "unread") {
      // Leave the conversation: while it is open it would be marked read again.
      leaving = true;
      threadPoller.stopped = true;
      const result = await api("PATCH", thread.dataset.patchUrl, { unread: true });
      if (result.ok) {
        toast(T.unread, "success");
        const back = $("[data-back]", thread);
        window.location.assign(back ? back.href : "/");
      } else {
        leaving = false;
        threadPoller.stopped = false;
        threadPoller.now();
        if (result.status !== 401) toast((result.data && result.data.message) || T.genericError, "error");
      }
    }
  });
  thread.addEventListener("change", async (event) => {
    if (event.target.matches('select[data-action="assign"]')) {
      const value = event.target.value;
      await patch({ assignee: value ? Number(value) : null });
    }
  });

  /* --- the composer ------------------------------------------------------------------- */
  const composerText = $("#message-text");
  const composerError = $("#composer-error");
  const windowInfo = $("#window-info");
  const replyBox = $("#reply-to");
  const sendButton = $(".send-btn", composer);
  let mode = composer.dataset.mode;
  let replyTo = null;
  let sending = false;
  let idempotencyKey = null;
  let keyFor = null;

  const draftKey = (kind) => `draft:${conversationId}:${kind}`;
  function saveDraft() {
    if (mode !== "text" && mode !== "note") return;
    try {
      if (composerText.value) sessionStorage.setItem(draftKey(mode), composerText.value);
      else sessionStorage.removeItem(draftKey(mode));
    } catch (_error) {
      /* private mode: no drafts */
    }
  }
  function loadDraft(kind) {
    try {
      return sessionStorage.getItem(draftKey(kind)) || "";
    } catch (_error) {
      return "";
    }
  }

  function showError(message) {
    composerError.textContent = message || "";
    composerError.hidden = !message;
  }

  function autosize() {
    composerText.style.height = "auto";
    composerText.style.height = `${Math.min(composerText.scrollHeight, 180)}px`;
  }

  function windowExpires() {
    const value = stateBox().dataset.windowExpires;
    return value ? Date.parse(value) : NaN;
  }
  function windowIsOpen() {
    const expires = windowExpires();
    return Number.isFinite(expires) && expires > Date.now();
  }
  function timeLeft() {
    const seconds = Math.max(0, Math.floor((windowExpires() - Date.now()) / 1000));
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    return hours ? format(T.hoursMinutes, { h: hours, m: minutes }) : format(T.minutes, { m: Math.max(1, minutes) });
  }

  function setMode(next, { focus = false } = {}) {
    if (next === "text" && !windowIsOpen()) next = "template";
    if (mode === "text" || mode === "note") saveDraft();
    mode = next;
    composer.dataset.mode = mode;
    for (const tab of $$('[role="tab"]', composer)) {
      const selected = tab.dataset.mode === mode;
      tab.setAttribute("aria-selected", selected ? "true" : "false");
      tab.tabIndex = selected ? 0 : -1;
    }
    const textual = mode === "text" || mode === "note";
    $("#panel-text").hidden = !textual;
    $("#panel-template").hidden = mode !== "template";
    $("#panel-text").setAttribute("aria-labelledby", mode === "note" ? "tab-note" : "tab-text");
    composer.classList.toggle("is-note", mode === "note");
    if (textual) {
      composerText.value = loadDraft(mode);
      composerText.placeholder = mode === "note" ? composerText.dataset.placeholderNote : composerText.dataset.placeholderText;
      const label = $("#message-label");
      label.textContent = mode === "note" ? label.dataset.note : label.dataset.text;
      autosize();
      if (focus) composerText.focus();
    } else {
      loadTemplates();
      if (focus) $("#template-select").focus();
    }
    replyBox.hidden = !replyTo || mode === "note";
    showError("");
  }

  function applyState() {
    const open = windowIsOpen();
    const textTab = $("#tab-text");
    textTab.setAttribute("aria-disabled", open ? "false" : "true");
    composer.classList.toggle("is-closed", !open);
    $("#closed-note").hidden = open;
    const icon = windowInfo.querySelector("svg");
    const text = open ? format(T.windowOpen, { left: timeLeft() }) : T.windowClosed;
    windowInfo.replaceChildren(...(icon ? [icon] : []), Object.assign(document.createElement("span"), { textContent: text }));
    windowInfo.classList.toggle("is-closed", !open);
    if (!open && mode === "text") setMode("template");
    markReadIfNeeded();
  }
  setInterval(applyState, 30000);

  $(".composer-tabs", composer).addEventListener("click", (event) => {
    const tab = event.target.closest('[role="tab"]');
    if (!tab) return;
    if (tab.getAttribute("aria-disabled") === "true") {
      showError(T.windowClosedError);
      return;
    }
    setMode(tab.dataset.mode, { focus: true });
  });
  $(".composer-tabs", composer).addEventListener("keydown", (event) => {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const tabs = $$('[role="tab"]', composer).filter((tab) => tab.getAttribute("aria-disabled") !== "true");
    const index = tabs.indexOf(document.activeElement);
    const next = tabs[(index + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    setMode(next.dataset.mode);
    next.focus();
  });

  function startReply(messageId, preview) {
    replyTo = Number(messageId);
    $("#reply-to-text").textContent = preview || "";
    if (mode === "note") setMode(windowIsOpen() ? "text" : "template");
    replyBox.hidden = false;
    (mode === "template" ? $("#template-select") : composerText).focus();
  }
  function cancelReply() {
    replyTo = null;
    replyBox.hidden = true;
  }
  $("#reply-cancel").addEventListener("click", () => {
    cancelReply();
    composerText.focus();
  });

  function explainSendError(result) {
    const data = result.data || {};
    if (result.status === 0) return T.network;
    if (data.error === "window_closed") return T.windowClosedError;
    if (data.error === "missing_parameters") return T.missingParameters;
    if (data.error === "unknown_template") return T.unknownTemplate;
    const reason = (data.graph_error && data.graph_error.title) || data.message || T.genericError;
    return format(T.sendFailed, { reason });
  }

  async function submit() {
    if (sending) return;
    showError("");
    let url = composer.dataset.sendUrl;
    let body;
    if (mode === "template") {
      body = templateRequest();
      if (!body) {
        showError(T.missingParameters);
        return;
      }
    } else {
      const text = composerText.value;
      if (!text.trim()) return;
      if (mode === "note") {
        url = composer.dataset.noteUrl;
        body = { text };
      } else {
        body = { type: "text", text };
      }
    }
    if (replyTo && mode !== "note") body.reply_to = replyTo;
    // The same request after a network error reuses its key: it is never sent twice.
    const signature = JSON.stringify([url, body]);
    if (keyFor !== signature) {
      keyFor = signature;
      idempotencyKey = window.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
    }
    sending = true;
    composer.setAttribute("aria-busy", "true");
    sendButton.disabled = true;
    $("#template-send").disabled = true;
    const result = await api("POST", url, body, mode === "note" ? {} : { "Idempotency-Key": idempotencyKey });
    sending = false;
    composer.removeAttribute("aria-busy");
    sendButton.disabled = false;
    updateTemplateButton();
    const stored = result.status === 201 || (result.status === 502 && result.data && result.data.message_id);
    if (stored) {
      keyFor = null;
      if (mode === "template") resetTemplate();
      else {
        composerText.value = "";
        saveDraft();
        autosize();
      }
      cancelReply();
      if (mode === "note") toast(T.noteSaved, "success");
      // A send WhatsApp refused is stored and shown failed, with Meta's reason and a retry button.
      stickToBottom = true;
      threadPoller.now();
      listPoller.now();
      return;
    }
    if (result.status === 401) return;
    if (result.data && result.data.error === "window_closed") {
      keyFor = null;
      setMode("template", { focus: true });
    }
    showError(explainSendError(result));
  }

  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });

  /* Enter sends, Shift+Enter adds a line; "/" at the start offers canned responses. */
  const cannedList = $("#canned-list");
  let cannedItems = [];
  let cannedIndex = -1;
  let cannedTimer = null;
  let cannedQuery = null;

  function closeCanned() {
    cannedList.hidden = true;
    cannedList.replaceChildren();
    cannedItems = [];
    cannedIndex = -1;
    composerText.setAttribute("aria-expanded", "false");
    composerText.removeAttribute("aria-activedescendant");
  }
  function highlightCanned(index) {
    cannedIndex = index;
    $$('[role="option"]', cannedList).forEach((option, i) => option.setAttribute("aria-selected", i === index ? "true" : "false"));
    const active = cannedItems[index] ? `canned-${index}` : null;
    if (active) {
      composerText.setAttribute("aria-activedescendant", active);
      $(`#${active}`).scrollIntoView({ block: "nearest" });
    } else composerText.removeAttribute("aria-activedescendant");
  }
  function chooseCanned(index) {
    const item = cannedItems[index];
    if (!item) return;
    composerText.value = item.text;
    closeCanned();
    autosize();
    saveDraft();
    composerText.focus();
    composerText.setSelectionRange(composerText.value.length, composerText.value.length);
  }
  async function lookupCanned(query) {
    cannedQuery = query;
    const result = await api("GET", `${thread.dataset.cannedUrl}?q=${encodeURIComponent(query)}`);
    if (cannedQuery !== query || !result.ok) return;
    cannedItems = (result.data.canned_responses || []).slice(0, 8);
    cannedList.replaceChildren(
      ...(cannedItems.length
        ? cannedItems.map((item, index) => {
            const option = document.createElement("li");
            option.id = `canned-${index}`;
            option.setAttribute("role", "option");
            option.setAttribute("aria-selected", "false");
            const code = document.createElement("strong");
            code.textContent = `/${item.short_code}`;
            const text = document.createElement("span");
            text.textContent = item.text;
            option.append(code, text);
            option.addEventListener("mousedown", (event) => {
              event.preventDefault();
              chooseCanned(index);
            });
            return option;
          })
        : [Object.assign(document.createElement("li"), { className: "canned-empty", textContent: T.cannedEmpty })]),
    );
    cannedList.hidden = false;
    composerText.setAttribute("aria-expanded", "true");
    highlightCanned(cannedItems.length ? 0 : -1);
  }

  composerText.addEventListener("input", () => {
    autosize();
    saveDraft();
    showError("");
    const match = /^\/([\w-]*)$/.exec(composerText.value);
    clearTimeout(cannedTimer);
    if (match) cannedTimer = setTimeout(() => lookupCanned(match[1]), 120);
    else {
      cannedQuery = null;
      closeCanned();
    }
  });
  composerText.addEventListener("blur", () => setTimeout(closeCanned, 150));
  composerText.addEventListener("keydown", (event) => {
    if (!cannedList.hidden && cannedItems.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : cannedItems.length - 1;
        highlightCanned((cannedIndex + step) % cannedItems.length);
        return;
      }
      if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
        event.preventDefault();
        chooseCanned(Math.max(0, cannedIndex));
        return;
      }
    }
    if (event.key === "Escape") {
      if (!cannedList.hidden) closeCanned();
      else if (replyTo) cancelReply();
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });

  /* Templates: one input per placeholder, and a preview of what the customer will read. */
  const templateSelect = $("#template-select");
  const templateParams = $("#template-params");
  const templatePreview = $("#template-preview");
  let templates = null;
  let chosen = null;

  async function loadTemplates() {
    if (templates !== null) return;
    templates = [];
    const result = await api("GET", templateSelect.dataset.url);
    if (!result.ok) {
      templates = null;
      showError(T.templatesFailed);
      return;
    }
    templates = Array.isArray(result.data) ? result.data : [];
    if (!templates.length) {
      templatePreview.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: T.templatesEmpty }));
    }
    for (const [index, template] of templates.entries()) {
      const option = document.createElement("option");
      option.value = String(index);
      option.textContent = `${template.name} (${template.language})`;
      templateSelect.append(option);
    }
  }

  function placeholderLabel(key) {
    const parts = key.split(".");
    if (parts[0] === "header") return format(T.placeholderHeader, { n: parts[1] });
    if (parts[0] === "button") return format(T.placeholderButton, { b: Number(parts[1]) + 1, n: parts[2] });
    return format(T.placeholderBody, { n: parts[1] });
  }

  function componentText(template, type) {
    const component = (template.components || []).find((c) => String(c.type || "").toLowerCase() === type);
    if (!component) return null;
    if (type === "header" && String(component.format || "TEXT").toUpperCase() !== "TEXT") return null;
    return typeof component.text === "string" ? component.text : null;
  }

  function fillPlaceholders(text, prefix, values) {
    const fragment = document.createDocumentFragment();
    const pattern = /\{\{\s*([A-Za-z0-9_]+)\s*\}\}/g;
    let last = 0;
    for (const match of text.matchAll(pattern)) {
      fragment.append(text.slice(last, match.index));
      const value = values[`${prefix}.${match[1]}`];
      const mark = document.createElement("mark");
      mark.textContent = value && value.trim() ? value : `{{${match[1]}}}`;
      if (!(value && value.trim())) mark.className = "empty";
      fragment.append(mark);
      last = match.index + match[0].length;
    }
    fragment.append(text.slice(last));
    return fragment;
  }

  function templateValues() {
    const values = {};
    for (const input of $$("input[data-key]", templateParams)) values[input.dataset.key] = input.value;
    return values;
  }

  function renderPreview() {
    if (!chosen) {
      templatePreview.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: T.previewEmpty }));
      return;
    }
    const values = templateValues();
    const bubble = document.createElement("div");
    bubble.className = "preview-bubble";
    const header = componentText(chosen, "header");
    if (header) {
      const p = document.createElement("p");
      p.className = "preview-header";
      p.append(fillPlaceholders(header, "header", values));
      bubble.append(p);
    }
    const body = componentText(chosen, "body");
    if (body) {
      const p = document.createElement("p");
      p.className = "preview-body";
      p.append(fillPlaceholders(body, "body", values));
      bubble.append(p);
    }
    const footer = componentText(chosen, "footer");
    if (footer) bubble.append(Object.assign(document.createElement("p"), { className: "preview-footer", textContent: footer }));
    const buttons = (chosen.components || []).find((c) => String(c.type || "").toLowerCase() === "buttons");
    if (buttons && Array.isArray(buttons.buttons)) {
      const list = document.createElement("ul");
      list.className = "preview-buttons";
      for (const button of buttons.buttons) list.append(Object.assign(document.createElement("li"), { textContent: button.text || "" }));
      bubble.append(list);
    }
    templatePreview.replaceChildren(bubble);
  }

  function updateTemplateButton() {
    const values = templateValues();
    const complete = chosen && (chosen.placeholders || []).every((key) => (values[key] || "").trim());
    $("#template-send").disabled = !complete || sending;
  }

  function chooseTemplate() {
    chosen = templateSelect.value === "" ? null : templates[Number(templateSelect.value)];
    templateParams.replaceChildren();
    for (const [index, key] of ((chosen && chosen.placeholders) || []).entries()) {
      const field = document.createElement("div");
      field.className = "field";
      const label = document.createElement("label");
      label.htmlFor = `tp-${index}`;
      label.textContent = placeholderLabel(key);
      const input = document.createElement("input");
      input.type = "text";
      input.id = `tp-${index}`;
      input.dataset.key = key;
      input.required = true;
      input.maxLength = 1024;
      input.autocomplete = "off";
      input.placeholder = T.placeholderValue;
      field.append(label, input);
      templateParams.append(field);
    }
    renderPreview();
    updateTemplateButton();
  }
  templateSelect.addEventListener("change", () => {
    showError("");
    chooseTemplate();
  });
  templateParams.addEventListener("input", () => {
    renderPreview();
    updateTemplateButton();
  });
  templateParams.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      if (!$("#template-send").disabled) submit();
    }
  });

  function templateRequest() {
    if (!chosen) return null;
    const parameters = templateValues();
    if ((chosen.placeholders || []).some((key) => !(parameters[key] || "").trim())) return null;
    return { type: "template", template: { name: chosen.name, language: chosen.language, parameters } };
  }
  function resetTemplate() {
    templateSelect.value = "";
    chooseTemplate();
  }

  /* --- start ------------------------------------------------------------------------- */
  fixBackLink();
  setMode(mode);
  applyState();
  scrollToBottom();
  if (mode === "text" && window.matchMedia("(min-width: 761px)").matches) composerText.focus({ preventScroll: true });
})();
