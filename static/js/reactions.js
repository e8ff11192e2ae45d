/* The business's reactions to a customer's message, on top of app.js (its hook: window.InboxApp).
 *
 * Each customer bubble carries a menu (a <details>, so it opens with a click, a tap, Enter or
 * Space, and idiomorph keeps it open through a poll) of common emojis; choosing one PUTs it to
 * …/mensajes/<id>/reaccion, "Remove" DELETEs it. The server sends it through WhatsApp and the
 * next render of the thread shows it on the bubble; its refusals (the window, Meta's error) are
 * said in a toast. Each click carries its own Idempotency-Key. Arrow keys move between the
 * emojis. Same rules as app.js: no inline script or style, text set with textContent.
 */
"use strict";

(() => {
  const app = window.InboxApp;
  const thread = document.querySelector("#thread");
  const composer = document.querySelector("#composer");
  if (!app || !thread || !composer) return;
  const { api, toast, refresh, strings: T } = app;
  const choices = (menu) => Array.from(menu.querySelectorAll(".react-panel button"));
  let busy = false;

  function explain(result) {
    const data = result.data || {};
    if (result.status === 0) return T.network;
    if (data.error === "window_closed") return T.reactionWindowClosed;
    if (data.error === "not_reactable") return T.notReactable;
    const reason = (data.graph_error && data.graph_error.title) || data.message || T.genericError;
    return T.reactionFailed.replace("{reason}", reason);
  }

  thread.addEventListener("click", async (event) => {
    const button = event.target.closest('button[data-action="react"], button[data-action="unreact"]');
    if (!button) return;
    const menu = button.closest("details");
    if (menu) {
      menu.open = false; // app.js closes it too; the focus goes back to its button
      menu.querySelector("summary").focus();
    }
    if (busy) return;
    const remove = button.dataset.action === "unreact";
    const url = `${composer.dataset.sendUrl}/${encodeURIComponent(button.dataset.message)}/reaccion`;
    const key = window.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
    busy = true;
    const result = await api(remove ? "DELETE" : "PUT", url, remove ? undefined : { emoji: button.dataset.emoji }, {
      "Idempotency-Key": key,
    });
    busy = false;
    if (result.ok) toast(remove ? T.reactionRemoved : T.reactionSent, "success");
    else if (result.status !== 401) toast(explain(result), "error");
    refresh();
  });

  // Opening a menu: bring it into view and put the focus on the current emoji (or the first).
  thread.addEventListener(
    "toggle",
    (event) => {
      const menu = event.target;
      if (!menu.matches || !menu.matches("details.react-menu") || !menu.open) return;
      const panel = menu.querySelector(".react-panel");
      panel.scrollIntoView({ block: "nearest" });
      const pressed = menu.querySelector('[aria-pressed="true"]') || choices(menu)[0];
      if (pressed) pressed.focus({ preventScroll: true });
    },
    true,
  );

  thread.addEventListener("keydown", (event) => {
    const panel = event.target.closest && event.target.closest(".react-panel");
    if (!panel || !["ArrowRight", "ArrowLeft", "Home", "End"].includes(event.key)) return;
    event.preventDefault();
    const buttons = choices(panel.closest("details"));
    const index = buttons.indexOf(event.target);
    const next =
      event.key === "Home"
        ? 0
        : event.key === "End"
          ? buttons.length - 1
          : (index + (event.key === "ArrowRight" ? 1 : buttons.length - 1)) % buttons.length;
    buttons[next].focus();
  });
})();
