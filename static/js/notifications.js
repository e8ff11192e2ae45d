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
      notification.onclick = () => {
        window.focus();
        notification.close();
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
    document.title = unread ? `(${unread}) ${baseTitle}` : baseTitle;
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
    // Marked read on the way to the note; keepalive lets the request outlive the page.
    event.preventDefault();
    await fetch(link.dataset.readUrl, {
      method: "POST",
      credentials: "same-origin",
      keepalive: true,
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken },
    }).catch(() => null);
    window.location.assign(link.href);
  });
})();
