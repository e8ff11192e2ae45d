/* Labels and bulk actions in the inbox, on top of app.js (its hook: window.InboxApp).
 *
 * - The thread header's label picker: ticking a label PATCHes the conversation's whole set
 *   (`labels`), so two quick ticks never lose one; admins add a label inline (POST /etiquetas)
 *   and it is put on the conversation at once.
 * - Select mode in the list: a checkbox on each row, "all on this page", and a bar whose
 *   actions go to POST /conversaciones/lote (all or nothing); the list refreshes after.
 *   The list is re-rendered by the server every 2 s and merged by idiomorph: the chosen ids
 *   live here and the checkboxes keep their state through a merge.
 * Same rules as app.js: no inline script or style, text set with textContent.
 */
"use strict";

(() => {
  const app = window.InboxApp;
  if (!app) return;
  const { api, toast, refresh, strings: T } = app;
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const failed = (result) => {
    if (result.status !== 401) toast((result.data && result.data.message) || T.genericError, "error");
  };

  // The row checkboxes are ours, not the server's: a merge of the polled list keeps them as they are.
  if (window.Idiomorph) {
    const previous = Idiomorph.defaults.callbacks.beforeAttributeUpdated;
    Idiomorph.defaults.callbacks.beforeAttributeUpdated = (name, node, mutation) => {
      if (name === "checked" && node.matches("input[data-select-row]")) return false;
      return previous ? previous(name, node, mutation) : true;
    };
  }

  /* --- the label picker in the thread header ------------------------------------------ */
  const thread = $("#thread");
  if (thread) {
    const chosen = () => $$("input[data-label-toggle]", thread).filter((box) => box.checked).map((box) => Number(box.value));
    let saving = Promise.resolve();

    async function saveLabels(labels) {
      const result = await api("PATCH", thread.dataset.patchUrl, { labels });
      if (result.ok) {
        toast(T.labelsSaved, "success");
        refresh();
      } else {
        failed(result);
        refresh(); // the server's state back in the picker
      }
      return result;
    }

    thread.addEventListener("change", (event) => {
      if (!event.target.matches("input[data-label-toggle]")) return;
      const labels = chosen();
      saving = saving.then(() => saveLabels(labels));
    });

    thread.addEventListener("submit", async (event) => {
      const form = event.target.closest("form[data-label-create]");
      if (!form) return;
      event.preventDefault();
      const name = form.elements.name.value.trim();
      if (!name) return;
      const created = await api("POST", form.dataset.url, { name, color: form.elements.color.value });
      if (!created.ok) {
        failed(created);
        return;
      }
      form.elements.name.value = "";
      toast(T.labelCreated, "success");
      saving = saving.then(() => saveLabels([...chosen(), created.data.id]));
    });
  }

  /* --- select mode and bulk actions in the list ---------------------------------------- */
  const pane = $(".list-pane");
  const bar = $("#bulk-bar");
  const toggle = $("#select-toggle");
  const list = $("#list");
  if (!pane || !bar || !toggle || !list) return;
  const selected = new Set();
  const allBox = $("#bulk-all");
  const count = $("#bulk-count");
  toggle.hidden = false;

  const rowBoxes = () => $$("input[data-select-row]", list);

  function sync() {
    const boxes = rowBoxes();
    const onPage = new Set(boxes.map((box) => box.value));
    for (const id of [...selected]) if (!onPage.has(id)) selected.delete(id); // gone from the page
    for (const box of boxes) {
      box.checked = selected.has(box.value);
      box.closest("li.row").classList.toggle("is-checked", box.checked);
    }
    allBox.checked = boxes.length > 0 && selected.size === boxes.length;
    allBox.indeterminate = selected.size > 0 && selected.size < boxes.length;
    count.textContent = T.selectedCount.replace("{count}", String(selected.size));
    for (const control of $$("[data-bulk], [data-bulk-select]", bar)) control.disabled = selected.size === 0;
  }

  function setMode(on) {
    pane.classList.toggle("is-selecting", on);
    toggle.setAttribute("aria-pressed", on ? "true" : "false");
    bar.hidden = !on;
    if (!on) selected.clear();
    sync();
    if (on) allBox.focus();
  }

  toggle.addEventListener("click", () => setMode(!pane.classList.contains("is-selecting")));
  list.addEventListener("change", (event) => {
    const box = event.target.closest("input[data-select-row]");
    if (!box) return;
    if (box.checked) selected.add(box.value);
    else selected.delete(box.value);
    sync();
  });
  // In select mode a click on a row chooses it instead of opening it.
  list.addEventListener("click", (event) => {
    if (!pane.classList.contains("is-selecting")) return;
    const link = event.target.closest("li.row > a");
    if (!link) return;
    event.preventDefault();
    const box = $("input[data-select-row]", link.closest("li.row"));
    box.checked = !box.checked;
    box.dispatchEvent(new Event("change", { bubbles: true }));
  });
  allBox.addEventListener("change", () => {
    for (const box of rowBoxes()) {
      if (allBox.checked) selected.add(box.value);
      else selected.delete(box.value);
    }
    sync();
  });
  list.addEventListener("htmx:afterSettle", sync);
  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.target === list || list.contains(event.target)) sync();
  });

  async function run(action, extra = {}) {
    if (!selected.size) return;
    const ids = [...selected].map(Number);
    for (const menu of $$("details.menu[open]", bar)) menu.open = false;
    const result = await api("POST", bar.dataset.url, { ids, action, ...extra });
    if (result.ok) {
      toast(T.bulkDone.replace("{count}", String(result.data.updated)), "success");
      selected.clear();
      sync();
      refresh();
    } else {
      failed(result);
    }
  }

  bar.addEventListener("click", (event) => {
    if (event.target.closest("[data-bulk-cancel]")) {
      setMode(false);
      toggle.focus();
      return;
    }
    const button = event.target.closest("button[data-bulk]");
    if (!button) return;
    const action = button.dataset.bulk;
    if (action === "assign") run(action, { assignee_id: Number(button.dataset.assignee) });
    else if (action === "snooze") run(action, button.dataset.until ? { snoozed_until: button.dataset.until } : {});
    else run(action);
  });
  bar.addEventListener("change", (event) => {
    const select = event.target.closest("select[data-bulk-select]");
    if (!select || !select.value) return;
    const action = select.dataset.bulkSelect;
    const value = Number(select.value);
    select.value = "";
    run(action, action === "assign" ? { assignee_id: value } : { label_id: value });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && pane.classList.contains("is-selecting") && !$("details.menu[open]")) setMode(false);
  });
})();
