/* The inbox's behaviour beyond what htmx does: the composer, the actions, a few page helpers.
 *
 * Live updates are htmx's (static/vendor/): the list and the open conversation carry
 * `hx-get` + `hx-trigger="every 2s"` and are merged with idiomorph (`hx-swap="morph:…"`).
 * This script only adds what htmx has no attribute for: If-None-Match on the polls (a 304
 * leaves the page alone), a slower pace while the tab is hidden, keeping older messages and
 * open menus through a merge, and the scroll position of the thread. It runs under a strict
 * Content-Security-Policy: no inline script, no inline style, no eval. Everything the server
 * renders comes from the Jinja templates, escaped there; text this script shows itself is set
 * with textContent. The rules of WhatsApp (the 24-hour window, template placeholders) are the
 * server's: this script reads the state the fragments carry and never re-derives it.
 */
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const stringsBlock = $("#ui-strings");
  const T = stringsBlock ? JSON.parse(stringsBlock.textContent) : {};
  const csrfMeta = $('meta[name="csrf-token"]');
  const csrfToken = csrfMeta ? csrfMeta.content : "";

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
    const response = await fetch(url, init).catch(() => null);
    if (!response) return { ok: false, status: 0, data: null };
    const data = await response.json().catch(() => null);
    if (response.status === 401) sessionEnded();
    if (response.status === 403 && data && data.error === "csrf_failed") toast(T.csrf, "error", true);
    return { ok: response.ok, status: response.status, data };
  }

  // What static/js/contacts.js (new conversation, contact panel) shares with this script.
  window.inboxUI = { api, toast, strings: T };

  /* --- live updates: htmx polls, this adds ETags, the hidden-tab pace and error handling - */
  const HIDDEN_POLL_MS = 15000;
  const THREAD_OWN_POLL_MS = 30000;
  // While the server's live stream is healthy (below), a poll only every 30 s, as a safety net.
  const LIVE_POLL_MS = 30000;
  // healthy: the live stream (below) is up; version: the inbox version it last pushed.
  const live = { healthy: false, version: null };
  const etags = new WeakMap(); // poller -> { key, etag } of the fragment it shows
  const lastPoll = new WeakMap();
  let failures = 0;
  let offline = false;
  let listKey = "";
  const isPoller = (elt) => elt && elt.matches("[hx-trigger^='every']");
  const requestKey = (detail) => `${detail.path}?${new URLSearchParams(detail.formData).toString()}`;

  document.addEventListener("htmx:confirm", (event) => {
    const { elt, triggeringEvent } = event.detail;
    if (!isPoller(elt)) return;
    // A hidden tab polls every 15 s instead of every 2 s; a stopped poller (gone, left) not at all.
    const hidden = document.visibilityState !== "visible" && !triggeringEvent;
    const since = Date.now() - (lastPoll.get(elt) || 0);
    // With the stream, a fragment is asked when it says (its ETag's second part: until when it
    // holds, as a text of it changes with the time alone) or every 30 s, and at each push.
    const known = etags.get(elt);
    const holdsUntil = known ? Number((known.etag || "").replace(/^(W\/)?"/, "").split("-")[1]) || 0 : 0;
    const held = live.healthy && !triggeringEvent && since < LIVE_POLL_MS && Date.now() / 1000 < holdsUntil;
    if (elt.dataset.stopped || (hidden && since < HIDDEN_POLL_MS) || held) {
      event.preventDefault();
      return;
    }
    // While the list is on screen the open thread follows the list's key (htmx:afterRequest
    // below) and polls by itself only every 30 s; alone on screen (a phone) it polls every 2 s.
    const list = $("#list");
    const listShown = list && list.offsetParent !== null;
    if (elt.id === "thread" && !triggeringEvent && listShown && Date.now() - (lastPoll.get(elt) || 0) < THREAD_OWN_POLL_MS) {
      event.preventDefault();
    }
  });
  document.addEventListener("htmx:responseError", (event) => {
    if (event.detail.xhr.status === 404 && isPoller(event.detail.elt)) event.detail.elt.dataset.stopped = "1";
  });
  document.addEventListener("htmx:configRequest", (event) => {
    const detail = event.detail;
    if (!isPoller(detail.elt)) return;
    lastPoll.set(detail.elt, Date.now());
    detail.elt.dataset.requestKey = requestKey(detail);
    const known = etags.get(detail.elt);
    if (known && known.key === detail.elt.dataset.requestKey) detail.headers["If-None-Match"] = known.etag;
    // The worker answering may not have heard of that version yet: then it reads it (app/inbox/polls.py).
    if (live.version !== null) detail.headers["X-Inbox-Version"] = live.version;
  });
  document.addEventListener("htmx:beforeSwap", (event) => {
    const { pathInfo, xhr } = event.detail;
    const asked = new URL(pathInfo.finalRequestPath || pathInfo.requestPath, window.location.href).pathname;
    if (pathInfo.responsePath && new URL(pathInfo.responsePath, window.location.href).pathname !== asked) {
      // Redirected to the login page: the session has ended.
      event.detail.shouldSwap = false;
      sessionEnded();
    } else if (xhr.status === 200 && isPoller(event.detail.elt)) {
      etags.set(event.detail.elt, { key: event.detail.elt.dataset.requestKey, etag: xhr.getResponseHeader("ETag") });
    }
  });
  document.addEventListener("htmx:sendError", () => {
    failures += 1;
    if (!offline && failures > 1) {
      offline = true;
      toast(T.network, "error", true);
    }
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    if (!event.detail.xhr || !event.detail.xhr.status) return;
    const { elt, xhr } = event.detail;
    if (xhr.status === 304 && isPoller(elt) && xhr.getResponseHeader("ETag")) {
      // The same body under a newer key (a write elsewhere): the next poll asks with the new one.
      const known = etags.get(elt);
      if (known) known.etag = xhr.getResponseHeader("ETag");
    }
    // The list's ETag starts with the key of all the inbox shows (its version, the minute, the
    // agent's preferences): the open thread is asked again only when that key moved (or every
    // 30 s, its own pace, while the list is on screen), so an idle inbox sends one small request every 2 s.
    if (elt.id === "list" && (xhr.status === 200 || xhr.status === 304)) {
      const key = (xhr.getResponseHeader("ETag") || "").replace(/^(W\/)?"/, "").split("-")[0];
      if (key && listKey && key !== listKey) {
        const open = $("#thread[hx-trigger^='every']");
        if (open) htmx.trigger(open, "refresh");
      }
      if (key) listKey = key;
    }
    failures = 0;
    if (offline) {
      offline = false;
      toast(T.reconnected, "success");
    }
  });

  // idiomorph keeps what the agent has open or loaded: menus stay open, older messages stay.
  let keepOlder = true;
  if (window.Idiomorph) {
    Idiomorph.defaults.callbacks.beforeAttributeUpdated = (name, node) =>
      !(name === "open" && node.matches("details")) && !(keepOlder && node.id === "older-cursor");
    Idiomorph.defaults.callbacks.beforeNodeRemoved = (node) =>
      !(keepOlder && node.nodeType === 1 && node.matches("#messages > li"));
  }

  const inbox = $("#inbox");
  if (!inbox) return;
  const refresh = () => {
    for (const poller of $$("#list, #thread")) htmx.trigger(poller, "refresh");
  };
  // The hook static/js/labels.js (labels and bulk actions) builds on.
  window.InboxApp = { api, toast, refresh, strings: T };

  /* The server pushes the inbox version (GET /inbox/events, app/inbox/live.py) with the
     browser's EventSource: when it moves, the list and the open thread are asked at once, so
     the polls above slow to a safety net. Without a healthy
     stream — refused (204: no slot, or no listener), broken, or silent for longer than its
     heartbeat allows — the page polls every 2 s as before, and tries the stream again later. */
  const liveUrl = inbox.dataset.live;
  const LIVE_SILENCE_MS = 40000; // the server sends the version at least every 15 s
  const LIVE_RETRY_MS = 30000;
  let source = null;
  let silence = null;
  const unhealthy = () => {
    live.healthy = false;
    clearTimeout(silence);
  };
  const heard = () => {
    live.healthy = true;
    clearTimeout(silence);
    silence = setTimeout(() => {
      unhealthy();
      connect(); // a stream gone silent (a proxy holding it, a lost connection): a new one
    }, LIVE_SILENCE_MS);
  };
  const connect = () => {
    if (source) source.close();
    const stream = (source = new EventSource(liveUrl));
    stream.addEventListener("version", (event) => {
      if (stream !== source) return;
      const moved = live.version !== null && event.data !== live.version;
      const first = !live.healthy;
      live.version = event.data;
      heard();
      // The list and the open thread are both asked at once (each answers 304 if what it shows
      // is the same): not the thread only after the list's key, a chain a push can outrun. The
      // first version of a stream may hide news from before it (the page's load, a reconnect).
      if (moved || first) refresh();
    });
    stream.addEventListener("error", () => {
      if (stream !== source) return; // one this page has replaced already
      unhealthy();
      if (stream.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(connect, LIVE_RETRY_MS); // refused: poll meanwhile, try again later
      }
    });
  };
  if (liveUrl && window.EventSource) {
    connect();
    // Leaving the page (a conversation opened, a reload): the server gives the slot back at once.
    window.addEventListener("pagehide", () => source && source.close());
  }

  /* --- the open conversation ---------------------------------------------------------- */
  const thread = $("#thread");
  if (!thread) return;
  const composer = $("#composer");
  const newBelow = $("#new-below");
  const conversationId = composer.dataset.conversation;
  const messagesList = () => $("#messages");
  const stateBox = () => $("#thread-state");
  const lastMessageId = () => {
    const items = $$("#messages > li.msg");
    return items.length ? items[items.length - 1].id : null;
  };

  // Opened on a search result (data-hit): static/js/search.js scrolls to it instead.
  let stickToBottom = !thread.dataset.hit;
  const nearBottom = (list) => list.scrollHeight - list.scrollTop - list.clientHeight < 120;
  function scrollToBottom() {
    const list = messagesList();
    list.scrollTop = list.scrollHeight;
    newBelow.hidden = true;
  }

  // Before a merge: where the view is. After it: follow new messages; older ones (htmx swaps
  // the cursor for the page before it) go in above without moving what the agent reads.
  let beforeMerge = null;
  thread.addEventListener("htmx:beforeSwap", (event) => {
    const { target, shouldSwap, serverResponse } = event.detail;
    if (!shouldSwap) return;
    const list = messagesList();
    beforeMerge = { target, atBottom: nearBottom(list), last: lastMessageId(), fromBottom: list.scrollHeight - list.scrollTop };
    if (target !== thread) return;
    // More new messages than one page: the merged page starts over from the newest.
    const first = $("#messages > li.msg", new DOMParser().parseFromString(serverResponse, "text/html"));
    keepOlder = !first || !lastMessageId() || Boolean(document.getElementById(first.id));
  });
  thread.addEventListener("htmx:afterSwap", () => {
    if (!beforeMerge) return;
    const { target, atBottom, last, fromBottom } = beforeMerge;
    beforeMerge = null;
    keepOlder = true;
    if (target !== thread) {
      messagesList().scrollTop = messagesList().scrollHeight - fromBottom;
      return;
    }
    if (lastMessageId() !== last) {
      if (atBottom) scrollToBottom();
      else newBelow.hidden = false;
    }
    applyState();
  });
  messagesList().addEventListener(
    "scroll",
    () => {
      stickToBottom = nearBottom(messagesList());
      if (stickToBottom) newBelow.hidden = true;
    },
    { passive: true },
  );
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
  async function markReadIfNeeded() {
    const state = stateBox();
    if (marking || thread.dataset.stopped || Number(state.dataset.unread || 0) === 0 || document.visibilityState !== "visible") return;
    marking = true;
    const result = await api("POST", thread.dataset.readUrl);
    marking = false;
    if (result.ok) {
      state.dataset.unread = "0";
      htmx.trigger("#list", "refresh");
    }
  }
  document.addEventListener("visibilitychange", markReadIfNeeded);

  /* --- actions: assign, resolve, reopen, mark unread, retry, reply --------------------- */
  async function patch(body) {
    const result = await api("PATCH", thread.dataset.patchUrl, body);
    if (result.ok) {
      toast(T.actionDone, "success");
      refresh();
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
      refresh();
    } else if (action === "assign-me") {
      await patch({ assignee: Number(inbox.dataset.me) });
    } else if (action === "unassign") {
      await patch({ assignee: null });
    } else if (action === "status") {
      await patch({ status: button.dataset.value });
    } else if (action === "unread") {
      // Leave the conversation: while it is open it would be marked read again.
      thread.dataset.stopped = "1";
      const result = await api("PATCH", thread.dataset.patchUrl, { unread: true });
      if (result.ok) {
        toast(T.unread, "success");
        const back = $("[data-back]", thread);
        window.location.assign(back ? back.href : "/");
      } else {
        delete thread.dataset.stopped;
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

  // The server decides whether the window is open (app/whatsapp/rules.py); each poll brings it.
  const windowIsOpen = () => stateBox().dataset.windowOpen === "1";

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
    } else if (focus) $("#template-select").focus();
    replyBox.hidden = !replyTo || mode === "note";
    showError("");
  }

  function applyState() {
    const open = windowIsOpen();
    $("#tab-text").setAttribute("aria-disabled", open ? "false" : "true");
    composer.classList.toggle("is-closed", !open);
    $("#closed-note").hidden = open;
    if (!open && mode === "text") setMode("template");
    markReadIfNeeded();
  }

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
    return T.sendFailed.replace("{reason}", reason);
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
      refresh();
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
  // The suggestions are a fragment of the server's (inbox.canned_fragment), fetched with htmx.
  const cannedList = $("#canned-list");
  const cannedOptions = () => $$('[role="option"]', cannedList);
  let cannedIndex = -1;
  let cannedTimer = null;
  let cannedWanted = false;

  function closeCanned() {
    cannedList.hidden = true;
    cannedList.replaceChildren();
    cannedIndex = -1;
    composerText.setAttribute("aria-expanded", "false");
    composerText.removeAttribute("aria-activedescendant");
  }
  function highlightCanned(index) {
    cannedIndex = index;
    cannedOptions().forEach((option, i) => option.setAttribute("aria-selected", i === index ? "true" : "false"));
    const active = cannedOptions()[index];
    if (active) {
      composerText.setAttribute("aria-activedescendant", active.id);
      active.scrollIntoView({ block: "nearest" });
    } else composerText.removeAttribute("aria-activedescendant");
  }
  function chooseCanned(index) {
    const option = cannedOptions()[index];
    if (!option) return;
    composerText.value = option.dataset.text;
    closeCanned();
    autosize();
    saveDraft();
    composerText.focus();
    composerText.setSelectionRange(composerText.value.length, composerText.value.length);
  }
  cannedList.addEventListener("mousedown", (event) => {
    const option = event.target.closest('[role="option"]');
    if (!option) return;
    event.preventDefault();
    chooseCanned(cannedOptions().indexOf(option));
  });
  cannedList.addEventListener("htmx:afterSwap", () => {
    if (!cannedWanted) return closeCanned(); // the text changed while the answer was on its way
    cannedList.hidden = false;
    composerText.setAttribute("aria-expanded", "true");
    highlightCanned(cannedOptions().length ? 0 : -1);
  });

  composerText.addEventListener("input", () => {
    autosize();
    saveDraft();
    showError("");
    const match = /^\/([\w-]*)$/.exec(composerText.value);
    clearTimeout(cannedTimer);
    cannedWanted = Boolean(match);
    if (match) {
      const url = `${cannedList.dataset.url}?q=${encodeURIComponent(match[1])}`;
      cannedTimer = setTimeout(() => htmx.ajax("GET", url, { target: cannedList, swap: "innerHTML" }), 120);
    } else closeCanned();
  });
  composerText.addEventListener("blur", () => setTimeout(closeCanned, 150));
  composerText.addEventListener("keydown", (event) => {
    const options = cannedOptions().length;
    if (!cannedList.hidden && options) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        highlightCanned((cannedIndex + (event.key === "ArrowDown" ? 1 : options - 1)) % options);
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

  /* Templates: the server rendered each one's fields and preview (a <template> per template);
   * this shows the chosen one and copies what is typed into its placeholders. */
  const templateSelect = $("#template-select");
  const templateParams = $("#template-params");
  const templatePreview = $("#template-preview");
  const emptyPreview = Array.from(templatePreview.childNodes, (node) => node.cloneNode(true));
  let chosen = null;

  const templateInputs = () => $$("input[data-key]", templateParams);
  function templateValues() {
    const values = {};
    for (const input of templateInputs()) values[input.dataset.key] = input.value;
    return values;
  }

  function renderPreview() {
    const values = templateValues();
    for (const mark of $$("mark[data-key]", templatePreview)) {
      const value = (values[mark.dataset.key] || "").trim() ? values[mark.dataset.key] : "";
      mark.textContent = value || mark.dataset.empty;
      mark.classList.toggle("empty", !value);
    }
  }

  function updateTemplateButton() {
    const complete = chosen && templateInputs().every((input) => input.value.trim());
    $("#template-send").disabled = !complete || sending;
  }

  function chooseTemplate() {
    chosen = templateSelect.value ? $(`#template-${CSS.escape(templateSelect.value)}`) : null;
    if (chosen) {
      templateParams.replaceChildren(...$(".template-fields-list", chosen.content).cloneNode(true).children);
      templatePreview.replaceChildren($(".preview-bubble", chosen.content).cloneNode(true));
    } else {
      templateParams.replaceChildren();
      templatePreview.replaceChildren(...emptyPreview.map((node) => node.cloneNode(true)));
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
    if (Object.values(parameters).some((value) => !value.trim())) return null;
    return { type: "template", template: { name: chosen.dataset.name, language: chosen.dataset.language, parameters } };
  }
  function resetTemplate() {
    templateSelect.value = "";
    chooseTemplate();
  }

  // For static/js/attachments.js (files and voice notes in the composer).
  window.inboxComposer = {
    toast, refresh, sessionEnded, showError, csrfToken, strings: T, cancelReply,
    replyTo: () => (mode === "note" ? null : replyTo),
  };

  /* --- start ------------------------------------------------------------------------- */
  setMode(mode);
  applyState();
  if (!thread.dataset.hit) scrollToBottom();
  if (mode === "text" && window.matchMedia("(min-width: 761px)").matches) composerText.focus({ preventScroll: true });
})();
