// Correio webmail: the little plain JavaScript htmx cannot do (keyboard shortcuts, drag and
// drop to folders, select-all, the phone folder toggle, toasts that fade; and for writing
// mail: draft autosave, attachment uploads with progress and drag and drop, address
// autocomplete, Ctrl/Cmd+Enter to send). No inline script:
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

  // The help dialog is modal: Tab stays inside it, and closing it (Esc, Close, a click on
  // the backdrop) gives focus back to where it was.
  let helpReturn = null;
  function toggleHelp(show) {
    const help = $("#help");
    if (!help) return;
    const open = show === undefined ? help.hidden : show;
    if (open === !help.hidden) return;
    help.hidden = !open;
    if (open) {
      helpReturn = document.activeElement;
      $("#help-close").focus();
    } else if (helpReturn && document.contains(helpReturn)) {
      helpReturn.focus();
      helpReturn = null;
    }
  }

  function trapFocus(event) {
    const help = $("#help");
    if (event.key !== "Tab" || !help || help.hidden) return false;
    const focusable = $$("a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])", help);
    if (!focusable.length) return false;
    const first = focusable[0];
    const last = focusable[focusable.length - 1];
    if (!help.contains(document.activeElement)) { first.focus(); event.preventDefault(); }
    else if (event.shiftKey && document.activeElement === first) { last.focus(); event.preventDefault(); }
    else if (!event.shiftKey && document.activeElement === last) { first.focus(); event.preventDefault(); }
    return true;
  }

  // Single-key shortcuts never fire while writing: in a field, in anything editable, or
  // anywhere inside the compose form (its buttons included).
  function typing(target) {
    if (!target || !target.closest) return false;
    return target.isContentEditable ||
      target.closest("input, textarea, select, [contenteditable]:not([contenteditable=false]), #compose-form") !== null;
  }

  // Keys a focused control handles itself (Enter and Space on links, buttons, summaries).
  function activatable(target) {
    return target && target.closest && target !== document.body &&
      target.closest("a[href], button, summary, label, [role=button], [tabindex]") !== null;
  }

  document.addEventListener("keydown", (event) => {
    if (trapFocus(event)) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape") {
      const help = $("#help");
      if (help && !help.hidden) { event.preventDefault(); toggleHelp(false); return; }
      if (typing(event.target) && event.target.blur) event.target.blur();
      return;
    }
    if (typing(event.target)) return;
    const help = $("#help");
    if (help && !help.hidden && event.key !== "?") return;
    if (event.key === "Enter" && activatable(event.target)) return;
    const handlers = {
      j: () => moveFocus(1),
      k: () => moveFocus(-1),
      o: () => { const row = focusedRow(); if (row) $("a.open", row).click(); },
      Enter: () => { const row = $(".row.focused"); if (row) $("a.open", row).click(); },
      u: () => { const back = $("#reader .back"); if (back) back.click(); },
      e: () => act("archive"),
      "#": () => act("delete"),
      s: toggleFlag,
      x: () => { const row = focusedRow(); if (row) { const box = $("input.select", row); box.checked = !box.checked; } },
      "/": () => { const q = $("#search-q"); if (q) q.focus(); },
      c: () => { const link = $("#compose-button"); if (link) link.click(); },
      r: () => { const link = $("#reply-link"); if (link) link.click(); },
      a: () => { const link = $("#reply-all-link"); if (link) link.click(); },
      f: () => { const link = $("#forward-link"); if (link) link.click(); },
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

  // A form (or the button that submits it) with data-confirm asks first: deleting a folder,
  // deleting from the Trash for good.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    const submitter = event.submitter;
    const question = (submitter && submitter.dataset.confirm) ||
      (form.classList.contains("confirm") && (form.dataset.confirm || "Sure?"));
    if (question && !window.confirm(question)) {
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

  // The rows an action re-draws keep their check marks.
  let checkedIds = [];
  document.addEventListener("htmx:beforeSwap", () => {
    checkedIds = $$("#rows input.select:checked").map((box) => box.value);
  });
  function restoreSelection() {
    checkedIds.forEach((id) => {
      const box = $(`#rows input.select[value="${CSS.escape(id)}"]`);
      if (box) box.checked = true;
    });
  }

  function afterSwap() {
    restoreSelection();
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
      const timed = $(".toast[data-timeout]", toast);
      const seconds = timed ? Number(timed.dataset.timeout) || 10 : 10;
      toastTimer = setTimeout(() => { toast.replaceChildren(); }, seconds * 1000);
    }
    const tz = $("#compose-tz");
    if (tz) tz.value = String(new Date().getTimezoneOffset());
    const submit = $(".attach-submit");
    if (submit) submit.hidden = true;
    const selectAll = $("#select-all");
    if (selectAll && !$$("#rows input.select:checked").length) selectAll.checked = false;
  }
  document.addEventListener("htmx:afterSettle", afterSwap);
  document.addEventListener("htmx:afterSettle", placeFocus);
  document.addEventListener("DOMContentLoaded", () => placeFocus(null));
  document.addEventListener("htmx:oobAfterSwap", afterSwap);
  document.addEventListener("DOMContentLoaded", afterSwap);

  // Where focus goes after the reading pane changed: into the form being written (To for a
  // new message, the text for a reply or forward), or to the opened message's subject, so it
  // never drops to the page (where single-key shortcuts would take the next keys).
  let focusedComposition = null;
  function placeFocus(event) {
    const target = event ? event.detail.target : null;
    if (target && target.id !== "reader" && !(target.closest && target.closest("#reader"))) return;
    const form = composeForm();
    if (form) {
      const pane = form.closest("[data-composition]");
      const id = pane ? pane.dataset.composition : "";
      if (id === focusedComposition && form.contains(document.activeElement)) return;
      if (id === focusedComposition && !event) return;
      focusedComposition = id;
      if ($(".form-errors", form)) return;
      const to = $("#compose-to", form);
      const body = $("#compose-body", form);
      if (to && !to.value.trim()) { to.focus(); return; }
      if (body) { body.focus(); body.setSelectionRange(0, 0); body.scrollTop = 0; }
      return;
    }
    focusedComposition = null;
    const active = document.activeElement;
    const lost = !active || active === document.body || active.offsetParent === null;
    const subject = $("#reader .message .subject");
    if (subject && event && lost) subject.focus({ preventScroll: true });
  }

  // --- Errors and busy state --------------------------------------------------------------

  const STATUS_TEXT = {
    403: "Not allowed: your session may have expired. Reload the page and sign in again.",
    404: "That item no longer exists (it may have been moved, sent or discarded elsewhere).",
    409: "That was already done elsewhere.",
    413: "That is too large for the server.",
    429: "Too many requests: wait a moment and try again.",
  };

  function showError(text) {
    let region = $("#alerts");
    if (!region) {
      region = document.createElement("div");
      region.id = "alerts";
      region.className = "alert-region";
      region.setAttribute("role", "alert");
      document.body.append(region);
    }
    const note = document.createElement("div");
    note.className = "toast error";
    const span = document.createElement("span");
    span.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "dismiss";
    close.textContent = "Dismiss";
    close.addEventListener("click", () => note.remove());
    note.append(span, close);
    region.replaceChildren(note);
    setTimeout(() => note.remove(), 20000);
  }

  document.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    const text = STATUS_TEXT[status] ||
      (status >= 500 ? `The server failed (error ${status}); nothing was changed. Try again.`
                     : `The request was refused (error ${status}).`);
    const form = composeForm();
    if (form && event.detail.elt && form.contains(event.detail.elt)) {
      dirty = true;
      setStatus(status === 404 ? "Not sent: this message was discarded or sent elsewhere. Copy your text to keep it."
                               : `Not sent: ${text} Your text is kept.`);
    }
    showError(text);
  });
  document.addEventListener("htmx:sendError", () => {
    showError("The server cannot be reached: check your connection and try again. Nothing was changed.");
  });

  let busyTimer = null;
  let pending = 0;
  document.addEventListener("htmx:beforeRequest", (event) => {
    pending += 1;
    clearTimeout(busyTimer);
    busyTimer = setTimeout(() => { if (pending) document.body.classList.add("busy"); }, 200);
    document.body.setAttribute("aria-busy", "true");
    const form = composeForm();
    const elt = event.detail.elt;
    if (form && elt && form.contains(elt)) {
      $$("button[type=submit]", form).forEach((b) => { b.disabled = true; });
      const submitter = event.detail.requestConfig && event.detail.requestConfig.triggeringEvent &&
        event.detail.requestConfig.triggeringEvent.submitter;
      if (submitter && submitter.id === "send-button") {
        submitter.dataset.label = submitter.textContent;
        submitter.textContent = "Sending…";
      }
    }
  });
  document.addEventListener("htmx:afterRequest", () => {
    pending = Math.max(0, pending - 1);
    if (pending) return;
    clearTimeout(busyTimer);
    document.body.classList.remove("busy");
    document.body.removeAttribute("aria-busy");
    const form = composeForm();
    if (form) {
      $$("button[type=submit]", form).forEach((b) => {
        b.disabled = false;
        if (b.dataset.label) { b.textContent = b.dataset.label; delete b.dataset.label; }
      });
    }
  });

  // The browser's time zone, for the server to show times in (a cookie it reads each request).
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    // IANA names are letters, digits, "_", "+", "-" and "/": safe in a cookie as they are.
    if (zone && /^[A-Za-z0-9_+\-/]{1,64}$/.test(zone) && !document.cookie.split("; ").includes(`tz=${zone}`)) {
      document.cookie = `tz=${zone}; path=/; max-age=31536000; SameSite=Lax`;
    }
  } catch (error) { /* no Intl: times stay in the server's zone */ }

  // --- Writing mail -----------------------------------------------------------------------

  const AUTOSAVE_MS = 3000;
  let saveTimer = null;
  let dirty = false;

  function composeForm() { return $("#compose-form"); }

  function formFields(form) {
    const data = new FormData(form);
    data.delete("files");
    return data;
  }

  function setStatus(text) {
    const status = $("#save-status");
    if (status) status.textContent = text;
  }

  async function autosave() {
    const form = composeForm();
    if (!form || !dirty) return;
    dirty = false;
    try {
      const response = await fetch(form.dataset.autosave, {
        method: "POST", body: formFields(form), credentials: "same-origin",
        headers: { "X-Requested-With": "XMLHttpRequest" },
      });
      if (response.status === 200 || response.status === 400 || response.status === 413) {
        const html = await response.text();
        const box = document.createElement("div");
        box.innerHTML = html;
        const fresh = $("#save-status", box);
        if (fresh) setStatus(fresh.textContent);
      }
      if (response.status === 404 || response.status === 403) {
        // The draft is gone (discarded or sent in another tab) or the session ended: stop
        // saving into nothing, and say so while the text is still on screen.
        setStatus("Not saved: this draft no longer exists. Copy your text to keep it.");
        showError(STATUS_TEXT[response.status]);
        return;
      }
      if (response.status >= 500) throw new Error(String(response.status));
    } catch (error) {
      // Nothing typed is lost: the form stays as it is and the next change saves again.
      dirty = true;
      setStatus("Not saved: the server cannot be reached. Your text is kept; retrying.");
      clearTimeout(saveTimer);
      saveTimer = setTimeout(autosave, AUTOSAVE_MS * 2);
    }
  }

  function saveOnLeave() {
    const form = composeForm();
    if (!form || !dirty) return;
    dirty = false;
    navigator.sendBeacon(form.dataset.autosave, formFields(form));
  }

  document.addEventListener("input", (event) => {
    const form = event.target.closest && event.target.closest("#compose-form");
    if (!form || event.target.type === "file") return;
    dirty = true;
    clearTimeout(saveTimer);
    saveTimer = setTimeout(autosave, AUTOSAVE_MS);
    if (event.target.classList.contains("recipient-input")) suggest(event.target);
  });
  document.addEventListener("visibilitychange", () => { if (document.hidden) saveOnLeave(); });
  window.addEventListener("pagehide", saveOnLeave);
  document.addEventListener("htmx:beforeRequest", (event) => {
    // Leaving the form for another pane: save first. Sending or saving from the form
    // itself needs no autosave.
    const form = composeForm();
    if (!form) return;
    if (form.contains(event.detail.elt)) { dirty = false; clearTimeout(saveTimer); return; }
    const target = event.detail.target;
    if (target && (target.contains(form) || target.id === "reader")) saveOnLeave();
  });
  document.addEventListener("htmx:beforeSwap", (event) => {
    // Form errors (400), an oversize upload (413) and "already sent" (409) carry the form
    // back with the messages: show them.
    const status = event.detail.xhr.status;
    if ([400, 409, 413].includes(status) && event.detail.requestConfig &&
        event.detail.requestConfig.elt.closest("#compose-form, #reader, #rules-panel, #raw-editor")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.addEventListener("htmx:sendError", (event) => {
    if (event.detail.elt && event.detail.elt.closest("#compose-form")) {
      dirty = true;
      setStatus("Not sent: the server cannot be reached. Your text is kept; try again.");
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
    const form = event.target.closest && event.target.closest("#compose-form");
    if (!form) return;
    event.preventDefault();
    $("#send-button", form).click();
  });

  // Attachments: one request per file so each shows its own progress.
  function upload(files) {
    const form = composeForm();
    if (!form || !files.length) return;
    const token = $("input[name=csrfmiddlewaretoken]", form).value;
    const box = $("#compose-attachments");
    const limit = box ? Number(box.dataset.limit) || 0 : 0;
    let used = box ? Number(box.dataset.used) || 0 : 0;
    Array.from(files).forEach((file) => {
      if (limit && used + file.size > limit) {
        // Refused here, before sending megabytes the server would refuse anyway.
        const item = document.createElement("li");
        item.className = "form-error";
        item.setAttribute("role", "alert");
        const mb = (limit / 1e6).toFixed(1);
        item.textContent = `${file.name} is too large: attachments may total ${mb} MB.`;
        const list = $("#uploading");
        if (list) list.append(item);
        return;
      }
      used += file.size;
      const item = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = file.name;
      const bar = document.createElement("progress");
      bar.max = 100; bar.value = 0;
      bar.setAttribute("aria-label", `Uploading ${file.name}`);
      item.append(label, bar);
      const list = $("#uploading");
      if (list) list.append(item);
      const data = new FormData();
      data.append("files", file);
      data.append("csrfmiddlewaretoken", token);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.attach);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
      });
      xhr.addEventListener("load", () => {
        item.remove();
        const pending = $("#uploading") ? Array.from($("#uploading").children) : [];
        const box = document.createElement("div");
        box.innerHTML = xhr.responseText;
        const fresh = $("#compose-attachments", box);
        const current = $("#compose-attachments");
        if (fresh && current) {
          current.replaceWith(fresh);
          const list = $("#uploading", fresh);
          pending.forEach((p) => list.append(p));
          htmx.process(fresh);
          afterSwap();
          dirty = true;
          clearTimeout(saveTimer);
          saveTimer = setTimeout(autosave, AUTOSAVE_MS);
        }
      });
      xhr.addEventListener("error", () => {
        label.textContent = `${file.name}: upload failed (network)`;
        bar.remove();
      });
      xhr.send(data);
    });
  }

  document.addEventListener("change", (event) => {
    if (event.target.id === "compose-files") {
      upload(event.target.files);
      event.target.value = "";
    }
  });
  document.addEventListener("dragover", (event) => {
    const form = event.target.closest && event.target.closest("#compose-form");
    if (!form || !event.dataTransfer.types.includes("Files")) return;
    event.preventDefault();
    form.classList.add("drop-files");
  });
  document.addEventListener("dragleave", (event) => {
    if (event.target.id === "compose-form") event.target.classList.remove("drop-files");
  });
  document.addEventListener("drop", (event) => {
    const form = event.target.closest && event.target.closest("#compose-form");
    if (!form || !event.dataTransfer.files.length) return;
    event.preventDefault();
    form.classList.remove("drop-files");
    upload(event.dataTransfer.files);
  });

  // Address autocomplete on the last address being typed.
  let suggestTimer = null;
  function lastToken(value) { return value.split(/[,;]/).pop().trim(); }

  function suggest(input) {
    clearTimeout(suggestTimer);
    suggestTimer = setTimeout(async () => {
      const list = document.getElementById(input.getAttribute("aria-controls"));
      const query = lastToken(input.value);
      if (!list) return;
      if (query.length < 1) { closeSuggestions(input); return; }
      const form = composeForm();
      let results = [];
      try {
        const response = await fetch(`${form.dataset.contacts}?q=${encodeURIComponent(query)}`,
                                     { credentials: "same-origin" });
        results = (await response.json()).results;
      } catch (error) { return; }
      list.replaceChildren(...results.map((r, i) => {
        const li = document.createElement("li");
        li.setAttribute("role", "option");
        li.id = `${list.id}-${i}`;
        li.dataset.text = r.text;
        li.textContent = r.label || (r.name ? `${r.name} <${r.address}>` : r.address);
        return li;
      }));
      list.hidden = !results.length;
      input.setAttribute("aria-expanded", String(!!results.length));
    }, 120);
  }

  function closeSuggestions(input) {
    const list = document.getElementById(input.getAttribute("aria-controls"));
    if (list) { list.hidden = true; list.replaceChildren(); }
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function choose(input, option) {
    const parts = input.value.split(/([,;])/);
    parts[parts.length - 1] = (parts.length > 1 ? " " : "") + option.dataset.text;
    input.value = parts.join("") + ", ";
    closeSuggestions(input);
    input.focus();
    dirty = true;
  }

  document.addEventListener("keydown", (event) => {
    const input = event.target;
    if (!input.classList || !input.classList.contains("recipient-input")) return;
    const list = document.getElementById(input.getAttribute("aria-controls"));
    if (!list || list.hidden) return;
    const options = $$("li", list);
    let index = options.findIndex((o) => o.classList.contains("active"));
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      index = event.key === "ArrowDown" ? Math.min(options.length - 1, index + 1) : Math.max(0, index - 1);
      options.forEach((o, i) => o.classList.toggle("active", i === index));
      input.setAttribute("aria-activedescendant", options[index].id);
    } else if ((event.key === "Enter" || event.key === "Tab") && index >= 0) {
      event.preventDefault();
      choose(input, options[index]);
    } else if (event.key === "Escape") {
      closeSuggestions(input);
    }
  });
  document.addEventListener("mousedown", (event) => {
    const option = event.target.closest && event.target.closest(".suggestions li");
    if (!option) return;
    event.preventDefault();
    const input = option.closest(".recipients").querySelector(".recipient-input");
    choose(input, option);
  });
})();

// A page that starts something by POST (GET /compose/ changes nothing) sends its form at once.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-autostart]");
  if (form) form.requestSubmit();
});
