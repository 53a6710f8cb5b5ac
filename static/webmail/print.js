// The print view: a Print button, and printing at once when opened from the reading pane.
(() => {
  "use strict";
  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("print-now");
    if (button) button.addEventListener("click", () => window.print());
    if (document.body.dataset.autoprint) window.print();
  });
})();
