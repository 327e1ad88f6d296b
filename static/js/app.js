/* House behaviour shared by every page (loaded once from base.html). */
(function () {
  "use strict";
  // A table that scrolls sideways (a wide table on a phone) must scroll from the keyboard too: a scrolling region
  // with nothing focusable inside gets a tab stop (WCAG 2.1.1; axe-core's "scrollable-region-focusable").
  function focusableScrollers() {
    document.querySelectorAll(".table-responsive").forEach(function (el) {
      if (el.scrollWidth > el.clientWidth + 1) {
        if (!el.hasAttribute("tabindex")) { el.setAttribute("tabindex", "0"); el.dataset.scrollStop = "1"; }
      } else if (el.dataset.scrollStop) {
        el.removeAttribute("tabindex"); delete el.dataset.scrollStop;
      }
    });
  }
  focusableScrollers();
  window.addEventListener("resize", focusableScrollers);
  document.body.addEventListener("htmx:afterSettle", focusableScrollers);
})();
