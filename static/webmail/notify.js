// The Inbox's unread count in the page title and a badge on the favicon, and opt-in browser
// notifications (the Notification API) for new Inbox mail while the page is open (issue 17).
// The server puts the state in #notify-state, inside the folder list that the live poll
// re-draws; this script only reads it after each swap. No inline script: the CSP forbids it.
(() => {
  "use strict";
  const PREFIX = /^\(\d+\+?\) /;
  let lastUid = null; // the newest unread Inbox UID already known (null: not yet seen)

  const badgeText = (n) => (n > 99 ? "99+" : String(n));

  function drawFavicon(unseen) {
    const link = document.getElementById("favicon");
    if (!link) return;
    if (!link.dataset.plain) link.dataset.plain = link.href;
    link.dataset.count = String(unseen);
    if (!unseen) {
      link.type = "image/svg+xml";
      link.href = link.dataset.plain;
      return;
    }
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 32;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#2f6fdf";
    ctx.fillRect(2, 6, 28, 20);
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 2.5;
    ctx.beginPath(); ctx.moveTo(3, 8); ctx.lineTo(16, 18); ctx.lineTo(29, 8); ctx.stroke();
    const text = badgeText(unseen);
    ctx.fillStyle = "#d93025";
    ctx.beginPath(); ctx.arc(22, 10, 10, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = "#fff";
    ctx.font = `bold ${text.length > 2 ? 9 : 13}px sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText(text, 22, 11);
    link.type = "image/png";
    link.href = canvas.toDataURL("image/png");
  }

  function notify(state) {
    const uid = Number(state.dataset.newestUid || 0);
    const first = lastUid === null;
    if (first || uid <= lastUid) {
      if (first || uid) lastUid = Math.max(lastUid || 0, uid);
      return;
    }
    lastUid = uid;
    if (!state.dataset.enabled || !("Notification" in window)) return;
    if (Notification.permission !== "granted") return;
    const note = new Notification(state.dataset.newestFrom || "New mail", {
      body: state.dataset.newestSubject || "",
      tag: "correio-inbox",
    });
    note.onclick = () => {
      window.focus();
      window.location.href = state.dataset.newestUrl || state.dataset.inboxUrl;
      note.close();
    };
  }

  function update() {
    const state = document.getElementById("notify-state");
    if (!state) return;
    const unseen = Number(state.dataset.unseen || 0);
    const title = document.title.replace(PREFIX, "");
    document.title = unseen ? `(${badgeText(unseen)}) ${title}` : title;
    drawFavicon(unseen);
    notify(state);
  }

  // The settings page: ask the browser's permission when notifications are switched on.
  function settings() {
    const box = document.getElementById("id_notify_new_mail");
    const hint = document.getElementById("notify-permission");
    if (!box || !hint) return;
    const explain = () => {
      if (!("Notification" in window)) {
        hint.textContent = "This browser cannot show notifications.";
      } else if (Notification.permission === "denied") {
        hint.textContent = "The browser blocks notifications from this site; allow them in its site settings.";
      } else {
        hint.textContent = "";
      }
      hint.hidden = !hint.textContent;
    };
    box.addEventListener("change", () => {
      if (box.checked && "Notification" in window && Notification.permission === "default") {
        Notification.requestPermission().then(explain);
      } else {
        explain();
      }
    });
    explain();
  }

  document.addEventListener("DOMContentLoaded", () => { update(); settings(); });
  document.addEventListener("htmx:afterSettle", update);
  document.addEventListener("htmx:oobAfterSwap", update);
})();
