/* Search results in the inbox: opening one scrolls the thread to the message it found.
 *
 * The results themselves are htmx's (templates/inbox/index.html: #message-hits asks
 * inbox.search_fragment as the agent types) and are plain links: `?c=<conversation>&m=<message>`
 * renders the thread around that message, marked `.is-hit` by the server, and #thread carries
 * `data-hit`. app.js then leaves the scroll position to this script, which brings the marked
 * message into the middle of the view. Nothing here builds HTML; the CSP forbids inline code.
 */
"use strict";

(() => {
  const thread = document.getElementById("thread");
  const messages = document.getElementById("messages");
  if (!thread || !messages || !thread.dataset.hit) return;
  const hit = document.getElementById(`m-${thread.dataset.hit}`);
  if (!hit) return;

  function reveal() {
    // Within the thread's own scroll box only: the page itself never scrolls.
    const top = hit.offsetTop - messages.offsetTop - (messages.clientHeight - hit.offsetHeight) / 2;
    messages.scrollTop = Math.max(0, top);
  }
  reveal();
  hit.setAttribute("tabindex", "-1");
  hit.focus({ preventScroll: true });
  // Images above it arrive after the text and push it down: keep it in view until they have.
  const started = Date.now();
  messages.addEventListener(
    "load",
    (event) => {
      if (event.target.tagName === "IMG" && Date.now() - started < 5000) reveal();
    },
    true,
  );
  // The result the agent came from stays marked in the list of results.
  for (const link of document.querySelectorAll(`#message-hits a[data-hit="${CSS.escape(thread.dataset.hit)}"]`)) {
    link.setAttribute("aria-current", "true");
  }
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.target.id !== "message-hits") return;
    for (const link of event.target.querySelectorAll(`a[data-hit="${CSS.escape(thread.dataset.hit)}"]`)) {
      link.setAttribute("aria-current", "true");
    }
  });
})();
