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

  // The navigation shows where the user is: the link whose address is the longest start of this page's address.
  var best = null;
  document.querySelectorAll(".navbar-nav .nav-link[href]").forEach(function (link) {
    var path = new URL(link.href, location.href).pathname;
    if (path !== "/" && location.pathname.indexOf(path) === 0 && (!best || path.length > best.path.length)) {
      best = { link: link, path: path };
    }
  });
  if (best) { best.link.classList.add("active"); best.link.setAttribute("aria-current", "page"); }

  // An error message under a field is tied to it (aria-describedby, aria-invalid), so a screen reader reads the
  // message with the field, whichever template drew it.
  document.querySelectorAll(".invalid-feedback").forEach(function (message, i) {
    var box = message.parentElement;
    var field = box && box.querySelector("input:not([type=hidden]), select, textarea");
    if (!field) { return; }
    // Django names a field's error "<id>_error" in its aria-describedby; give the message that name when it is free.
    if (!message.id) {
      var name = (field.id || "field-" + i) + "_error";
      message.id = document.getElementById(name) ? name + "-" + i : name;
    }
    var ids = (field.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    if (ids.indexOf(message.id) < 0) { ids.push(message.id); field.setAttribute("aria-describedby", ids.join(" ")); }
    field.setAttribute("aria-invalid", "true");
    field.classList.add("is-invalid");
  });
  window.addEventListener("resize", focusableScrollers);
  document.body.addEventListener("htmx:afterSettle", focusableScrollers);
})();
