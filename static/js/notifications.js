/* Browser notifications, the unread count in the tab's title, and the Mentions panel.
 *
 * Nothing here polls: the conversation list, which htmx already polls every 2 s (304 while
 * nothing changed), carries a hidden feed (#notify-feed, templates/inbox/_notify_feed.html)
 * with the agent's unread customer messages in their scope (their conversations and unassigned
 * ones, or all) and their unread mentions. After each merge of the list this script reads it:
 * the title shows "(n) …", and each entry newer than the page (data-since-* on #inbox) that was
 * not notified before — in this tab or another (localStorage) — is notified once: a Notification
 * (when the agent switched them on and the browser allows them) and a short sound (unless
 * switched off). A message in the conversation the agent is looking at, in a focused tab, is not.
 * Permission is asked for only from the "Enable notifications" button, never on page load.
 */
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const stringsBlock = $("#ui-strings");
  const T = stringsBlock ? JSON.parse(stringsBlock.textContent) : {};
  const csrfMeta = $('meta[name="csrf-token"]');
  const csrfToken = csrfMeta ? csrfMeta.content : "";
  const inbox = $("#inbox");
  const prefsBox = $("#notify-prefs");
  const supported = "Notification" in window;

  const toast = (message, kind) => (window.inboxUI ? window.inboxUI.toast(message, kind) : undefined);
  const prefs = {
    desktop: inbox ? inbox.dataset.notifyDesktop === "1" : false,
    sound: inbox ? inbox.dataset.notifySound === "1" : true,
  };

  async function savePreferences(changes) {
    const url = (prefsBox && prefsBox.dataset.url) || (inbox && inbox.dataset.meUrl);
    if (!url) return false;
    const response = await fetch(url, {
      method: "PATCH",
      credentials: "same-origin",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(changes),
    }).catch(() => null);
    if (!response || !response.ok) {
      toast(T.genericError, "error");
      return false;
    }
    const saved = await response.json();
    prefs.desktop = saved.notify_desktop;
    prefs.sound = saved.notify_sound;
    syncControls();
    toast(T.actionDone, "success");
    return true;
  }

  /* --- the preferences in the account menu -------------------------------------------- */
  let rebase = false; // after a change of scope: what the feed holds then is not news
  function syncControls() {
    if (prefsBox) {
      $('[name="notify_desktop"]', prefsBox).checked = prefs.desktop;
      $('[name="notify_sound"]', prefsBox).checked = prefs.sound;
    }
    const enable = $("#notify-enable");
    if (enable) enable.hidden = !supported || Notification.permission === "denied" || (prefs.desktop && Notification.permission === "granted");
  }
  if (prefsBox) {
    prefsBox.addEventListener("change", async (event) => {
      const control = event.target;
      if (control.name === "notify_desktop" && control.checked && supported && Notification.permission !== "granted") {
        const permission = await Notification.requestPermission();
        if (permission !== "granted") {
          control.checked = false;
          toast(T.notificationsBlocked, "error");
          return;
        }
      }
      const value = control.type === "checkbox" ? control.checked : control.value;
      if (control.name === "notify_scope") rebase = true;
      await savePreferences({ [control.name]: value });
      if (control.name === "notify_scope" && window.InboxApp) window.InboxApp.refresh();
    });
  }
  syncControls();

  if (!inbox) return;

  const enableButton = $("#notify-enable");
  if (enableButton) {
    enableButton.addEventListener("click", async () => {
      const permission = await Notification.requestPermission();
      if (permission === "granted") {
        if (await savePreferences({ notify_desktop: true })) toast(T.notificationsOn, "success");
      } else {
        toast(T.notificationsBlocked, "error");
        syncControls();
      }
    });
  }

  // keepalive: the request outlives the page it leaves.
  const markRead = (url) =>
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      keepalive: true,
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
    }).catch(() => null);

  /* --- what was notified, shared by the agent's tabs ------------------------------------ */
  const since = { message: Number(inbox.dataset.sinceMessage || 0), mention: Number(inbox.dataset.sinceMention || 0) };
  const notified = new Set();
  const STORE = "inbox:notified";
  const stored = () => {
    try {
      return JSON.parse(localStorage.getItem(STORE) || "[]");
    } catch (_error) {
      return [];
    }
  };
  function alreadyNotified(key) {
    return notified.has(key) || stored().includes(key);
  }
  function remember(key) {
    notified.add(key);
    try {
      localStorage.setItem(STORE, JSON.stringify([...stored(), key].slice(-200)));
    } catch (_error) {
      /* private mode: this tab remembers alone */
    }
  }

  const chime = inbox.dataset.soundUrl ? new Audio(inbox.dataset.soundUrl) : null;
  function playSound() {
    if (!prefs.sound || !chime) return;
    chime.currentTime = 0;
    const playing = chime.play();
    if (playing && playing.catch) playing.catch(() => {}); // before any click the browser may refuse
  }

  const openConversation = () => {
    const thread = $("#thread");
    const composer = $("#composer");
    return thread && composer ? composer.dataset.conversation : null;
  };
  function targetUrl(entry) {
    const url = new URL(window.location.href);
    url.searchParams.set("c", entry.dataset.conversation);
    url.searchParams.delete("page");
    if (entry.dataset.kind === "mention") url.searchParams.set("m", entry.dataset.message);
    else url.searchParams.delete("m");
    return url.pathname + url.search;
  }

  function notify(entry) {
    if (prefs.desktop && supported && Notification.permission === "granted") {
      const notification = new Notification(entry.dataset.title, {
        body: entry.dataset.body || "",
        tag: `${entry.dataset.kind}-${entry.dataset.kind === "mention" ? entry.dataset.id : entry.dataset.conversation}`,
        lang: document.documentElement.lang,
      });
      notification.onclick = async () => {
        window.focus();
        notification.close();
        if (entry.dataset.readUrl) await markRead(entry.dataset.readUrl); // a mention: read once opened
        window.location.assign(targetUrl(entry));
      };
    }
    playSound();
  }

  /* --- reading the feed after each merge of the list ------------------------------------ */
  const baseTitle = document.title;
  const mentionsBadge = $("#mentions-badge");
  function readFeed() {
    const feed = $("#notify-feed");
    if (!feed) return;
    const mentions = Number(feed.dataset.mentions || 0);
    const unread = Number(feed.dataset.unread || 0) + mentions;
    const shown = feed.dataset.more || unread > 99 ? "99+" : String(unread);
    document.title = unread ? `(${shown}) ${baseTitle}` : baseTitle;
    if (mentionsBadge) {
      mentionsBadge.textContent = String(mentions);
      mentionsBadge.hidden = mentions === 0;
    }
    const looking = document.visibilityState === "visible" && document.hasFocus() ? openConversation() : null;
    for (const entry of $$("[data-kind]", feed)) {
      const kind = entry.dataset.kind;
      const id = Number(entry.dataset.id);
      const key = `${kind}:${id}`;
      if (id <= since[kind] || alreadyNotified(key)) continue;
      remember(key);
      if (rebase) continue;
      if (kind === "message" && looking && entry.dataset.conversation === looking) continue;
      notify(entry);
    }
    rebase = false;
  }
  const list = $("#list");
  if (list) list.addEventListener("htmx:afterSettle", readFeed);
  readFeed();

  /* --- the Mentions panel --------------------------------------------------------------- */
  const menu = $("#mentions-menu");
  const panel = $("#mentions-panel");
  if (!menu || !panel) return;
  const loadMentions = () => htmx.ajax("GET", panel.dataset.url, { target: panel, swap: "innerHTML" });
  menu.addEventListener("toggle", () => {
    if (menu.open) loadMentions();
  });
  panel.addEventListener("click", async (event) => {
    if (event.target.closest("[data-mentions-read-all]")) {
      const response = await fetch(inbox.dataset.mentionsReadAllUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
      }).catch(() => null);
      if (response && response.ok) {
        loadMentions();
        if (window.InboxApp) window.InboxApp.refresh();
      } else toast(T.genericError, "error");
      return;
    }
    const link = event.target.closest("a[data-mention]");
    if (!link || !link.dataset.readUrl) return;
    // Marked read on the way to the note.
    event.preventDefault();
    await markRead(link.dataset.readUrl);
    window.location.assign(link.href);
  });
})();

/* "@" in a private note: the agents to mention, chosen with the arrows and Enter or Tab. */
(() => {
  const composer = document.getElementById("composer");
  const text = document.getElementById("message-text");
  const list = document.getElementById("mention-list");
  const data = document.getElementById("mention-agents");
  if (!composer || !text || !list || !data) return;
  const names = JSON.parse(data.textContent);
  const fold = (value) => value.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
  const typing = /(?:^|[^\p{L}\p{N}])@([\p{L}\p{N}._-]*(?: [\p{L}\p{N}._-]*)?)$/u;
  let shown = [];
  let index = -1;
  let start = -1;

  function close() {
    list.hidden = true;
    list.replaceChildren();
    shown = [];
    index = -1;
  }
  function highlight(next) {
    index = next;
    Array.from(list.children).forEach((option, i) => option.setAttribute("aria-selected", i === index ? "true" : "false"));
  }
  function choose(i) {
    const name = shown[i];
    if (name === undefined) return;
    const caret = text.selectionStart;
    text.value = `${text.value.slice(0, start)}@${name} ${text.value.slice(caret)}`;
    const after = start + name.length + 2;
    text.setSelectionRange(after, after);
    close();
    text.dispatchEvent(new Event("input", { bubbles: true })); // the composer saves the draft and resizes
    text.focus();
  }
  text.addEventListener("input", () => {
    if (composer.dataset.mode !== "note") return close();
    const before = text.value.slice(0, text.selectionStart);
    const match = typing.exec(before);
    if (!match) return close();
    const query = fold(match[1]);
    shown = names.filter((name) => fold(name).split(/\s+/).some((_w, i, words) => words.slice(i).join(" ").startsWith(query))).slice(0, 6);
    if (!shown.length) return close();
    start = before.length - match[1].length - 1;
    list.replaceChildren(
      ...shown.map((name, i) => {
        const option = document.createElement("li");
        option.id = `mention-option-${i}`;
        option.setAttribute("role", "option");
        const strong = document.createElement("strong");
        strong.textContent = `@${name}`;
        option.append(strong);
        return option;
      }),
    );
    list.hidden = false;
    highlight(0);
  });
  // Capture: before the composer's own Enter (send) and Escape.
  composer.addEventListener(
    "keydown",
    (event) => {
      if (event.target !== text || list.hidden || !shown.length) return;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        highlight((index + (event.key === "ArrowDown" ? 1 : shown.length - 1)) % shown.length);
      } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
        choose(Math.max(0, index));
      } else if (event.key === "Escape") {
        close();
      } else return;
      event.preventDefault();
      event.stopPropagation();
    },
    true,
  );
  list.addEventListener("mousedown", (event) => {
    const option = event.target.closest('[role="option"]');
    if (!option) return;
    event.preventDefault();
    choose(Array.from(list.children).indexOf(option));
  });
  // Closed when the focus leaves the text box for good (a click on an option comes first).
  text.addEventListener("blur", () => setTimeout(() => document.activeElement !== text && close(), 150));
})();
