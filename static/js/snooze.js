/* The snooze menu in the thread header, on top of app.js (its hook: window.InboxApp).
 *
 * Each choice PATCHes the conversation with `snoozed_until`: the presets "tomorrow" and "next
 * week" come from the server, already in the agent's time zone (ISO 8601 with the offset);
 * "in 1 hour" is now + 1 h (no zone needed); "until the customer writes" is null; the date-time
 * picker's wall-clock time is read in the agent's zone (`data-snooze-zone`, which may differ
 * from the browser's) and sent with its offset. Whether the time is acceptable (in the future)
 * is the server's to say: its refusal is shown as it words it.
 * Same rules as app.js: no inline script or style, text set with textContent.
 */
"use strict";

(() => {
  const app = window.InboxApp;
  const thread = document.querySelector("#thread");
  if (!app || !thread) return;
  const { api, toast, refresh, strings: T } = app;

  // The picker's value is the agent's, not the server's: a merge of the polled header keeps it.
  if (window.Idiomorph) {
    const previous = Idiomorph.defaults.callbacks.beforeAttributeUpdated;
    Idiomorph.defaults.callbacks.beforeAttributeUpdated = (name, node, mutation) => {
      if (name === "value" && node.matches("input[data-keep-value]")) return false;
      return previous ? previous(name, node, mutation) : true;
    };
  }

  // What UTC offset `zone` has at the instant `ms` (milliseconds), in milliseconds.
  function offsetAt(ms, zone) {
    const parts = {};
    const format = new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    for (const part of format.formatToParts(new Date(ms))) parts[part.type] = part.value;
    const wall = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
    return wall - Math.floor(ms / 1000) * 1000;
  }

  // "2026-12-03T09:00" as wall-clock time in `zone` → an ISO 8601 instant (UTC), or null.
  function zonedInstant(local, zone) {
    const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local || "");
    if (!match) return null;
    const [, y, mo, d, h, mi] = match.map(Number);
    const wall = Date.UTC(y, mo - 1, d, h, mi);
    let instant = wall - offsetAt(wall, zone);
    instant = wall - offsetAt(instant, zone); // a second pass settles the offset across a DST change
    return new Date(instant).toISOString();
  }

  async function snooze(until, menu) {
    if (menu) menu.open = false;
    const result = await api("PATCH", thread.dataset.patchUrl, { snoozed_until: until });
    if (result.ok) {
      toast(T.snoozed, "success");
      refresh();
    } else if (result.status !== 401) {
      toast((result.data && result.data.message) || T.genericError, "error");
    }
    return result;
  }

  thread.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-snooze-until], button[data-snooze-in]");
    if (!button) return;
    const menu = button.closest("details.menu");
    if (button.dataset.snoozeIn) {
      snooze(new Date(Date.now() + Number(button.dataset.snoozeIn) * 1000).toISOString(), menu);
    } else {
      snooze(button.dataset.snoozeUntil || null, menu);
    }
  });

  thread.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-snooze-custom]");
    if (!form) return;
    event.preventDefault();
    const panel = form.closest("[data-snooze-zone]");
    const until = zonedInstant(form.elements.at.value, panel ? panel.dataset.snoozeZone : "UTC");
    if (!until) {
      toast(T.snoozeChooseTime, "error");
      form.elements.at.focus();
      return;
    }
    const result = await snooze(until, form.closest("details.menu"));
    if (result.ok) form.elements.at.value = "";
  });
})();
