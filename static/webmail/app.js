// Correio webmail: the little plain JavaScript htmx cannot do (keyboard shortcuts, drag and
// drop to folders, select-all, the phone folder toggle, toasts that fade). No inline script:
// the page's CSP forbids it; this file is the only script besides htmx.
(function () {
  "use strict";

  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  let toastTimer = null;
  let focusedId = null; // survives rows being redrawn by htmx

  function rows() { return $$("#rows > li.row"); }
  function focusedRow() { return $(".row.focused") || $(".row.current"); }

  function focusRow(row) {
    $$(".row.focused").forEach((r) => r.classList.remove("focused"));
    if (!row) return;
    focusedId = row.dataset.id;
    row.classList.add("focused");
    const link = $("a.open", row);
    if (link) link.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function moveFocus(step) {
    const all = rows();
    if (!all.length) return;
    const index = all.indexOf(focusedRow());
    const next = index < 0 ? all[0] : all[Math.max(0, Math.min(all.length - 1, index + step))];
    focusRow(next);
  }

  // Run a toolbar action on the checked rows, or on the focused row, or on the open message.
  function act(action) {
    const form = $("#list-form");
    const checked = $$("#rows input.select:checked");
    const reader = $("#reader-actions");
    if (!checked.length) {
      const row = focusedRow();
      if (row && (!reader || !$("#reader.has-message") || row.classList.contains("focused"))) {
        $("input.select", row).checked = true;
      } else if (reader) {
        const button = $(`button[name=action][value=${action}]`, reader);
        if (button) { button.click(); return; }
      }
    }
    if (!form) return;
    const button = $(`button[name=action][value=${action}]`, form);
    if (button) button.click();
  }

  function toggleFlag() {
    const row = focusedRow();
    const flagged = row ? row.classList.contains("flagged") : !!$("#reader-actions button[value=unflag]");
    act(flagged ? "unflag" : "flag");
  }

  function toggleHelp(show) {
    const help = $("#help");
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
    if (!help.hidden) $("#help-close").focus();
  }

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable]") !== null;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") { toggleHelp(false); if (typing(event.target)) event.target.blur(); return; }
    if (typing(event.target)) return;
    const handlers = {
      j: () => moveFocus(1),
      k: () => moveFocus(-1),
      o: () => { const row = focusedRow(); if (row) $("a.open", row).click(); },
      Enter: () => { const row = $(".row.focused"); if (row && document.activeElement === document.body) $("a.open", row).click(); },
      u: () => { const back = $("#reader .back"); if (back) back.click(); },
      e: () => act("archive"),
      "#": () => act("delete"),
      s: toggleFlag,
      x: () => { const row = focusedRow(); if (row) { const box = $("input.select", row); box.checked = !box.checked; } },
      "/": () => { const q = $("#search-q"); if (q) q.focus(); },
      "?": () => toggleHelp(),
    };
    const handler = handlers[event.key];
    if (handler) { event.preventDefault(); handler(); }
  });

  document.addEventListener("click", (event) => {
    const target = event.target;
    if (target.closest("#help-button")) toggleHelp(true);
    else if (target.closest("#help-close") || target.id === "help") toggleHelp(false);
    else if (target.closest("#folders-toggle")) {
      const open = document.body.classList.toggle("show-folders");
      target.closest("#folders-toggle").setAttribute("aria-expanded", String(open));
    } else if (target.closest("#folder-list a")) {
      document.body.classList.remove("show-folders");
    }
    const row = target.closest(".row");
    if (row && !target.closest("input")) focusRow(row);
  });

  document.addEventListener("change", (event) => {
    if (event.target.id === "select-all") {
      $$("#rows input.select").forEach((box) => { box.checked = event.target.checked; });
    }
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.classList.contains("confirm") && !window.confirm(form.dataset.confirm || "Sure?")) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Drag rows onto a folder to move them (the checked rows, or just the dragged one).
  document.addEventListener("dragstart", (event) => {
    const row = event.target.closest && event.target.closest(".row");
    if (!row) return;
    const box = $("input.select", row);
    if (!box.checked) {
      $$("#rows input.select:checked").forEach((b) => { b.checked = false; });
      box.checked = true;
    }
    row.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", row.dataset.id);
  });
  document.addEventListener("dragend", () => {
    $$(".row.dragging").forEach((r) => r.classList.remove("dragging"));
    $$(".folder.drop-target").forEach((f) => f.classList.remove("drop-target"));
  });
  document.addEventListener("dragover", (event) => {
    const folder = event.target.closest && event.target.closest(".folder");
    if (!folder) return;
    event.preventDefault();
    $$(".folder.drop-target").forEach((f) => f.classList.remove("drop-target"));
    folder.classList.add("drop-target");
  });
  document.addEventListener("drop", (event) => {
    const folder = event.target.closest && event.target.closest(".folder");
    if (!folder) return;
    event.preventDefault();
    const form = $("#list-form");
    const select = $("#move-target");
    if (!form || !select) return;
    select.value = folder.dataset.folder;
    $("#move-button").click();
  });

  function afterSwap() {
    const reader = $("#reader");
    const open = reader && reader.dataset.message;
    $$(".row.current").forEach((r) => { if (r.dataset.id !== open) r.classList.remove("current"); });
    if (open) { const row = $(`.row[data-id="${open}"]`); if (row) row.classList.add("current"); }
    if (focusedId && !$(".row.focused")) {
      const row = $(`.row[data-id="${focusedId}"]`);
      if (row) row.classList.add("focused");
    }
    const toast = $("#toast");
    if (toast && toast.children.length) {
      clearTimeout(toastTimer);
      toastTimer = setTimeout(() => { toast.replaceChildren(); }, 10000);
    }
    const selectAll = $("#select-all");
    if (selectAll && !$$("#rows input.select:checked").length) selectAll.checked = false;
  }
  document.addEventListener("htmx:afterSettle", afterSwap);
  document.addEventListener("htmx:oobAfterSwap", afterSwap);
  document.addEventListener("DOMContentLoaded", afterSwap);
})();
