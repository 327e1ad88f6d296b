/* Behaviour of particular forms, moved out of the templates so that the Content-Security-Policy needs no inline
   script. Each part looks for its own markers and does nothing on other pages. Loaded once from base.html. */
(function () {
  "use strict";

  // A drop-down marked data-autosubmit submits its form when it changes (the language switch).
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select[data-autosubmit]") && e.target.form) { e.target.form.submit(); }
  });

  // Campaign form: fills the slug from the name while the admin has not typed one; the server does the same when it
  // is left empty.
  var slug = document.querySelector("[data-slug-from]");
  var name = slug && document.getElementById(slug.dataset.slugFrom);
  if (slug && name) {
    var touched = slug.value !== "";
    slug.addEventListener("input", function () { touched = slug.value !== ""; });
    name.addEventListener("input", function () {
      if (touched) { return; }
      slug.value = name.value.replace(/đ/g, "d").replace(/Đ/g, "D").normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
        .toLowerCase().replace(/[^a-z0-9\s-]/g, "").trim().replace(/[\s-]+/g, "-").slice(0, 70);
    });
  }

  // Enrollment form: the SI number is looked up (hx-trigger="si-lookup") when the field is left with a new value, or
  // 300 ms after typing stops once ten digits are in; never twice for the same value.
  var lookupTimer = null;
  function lookup(field) {
    if (field.value === field.dataset.looked || typeof window.htmx === "undefined") { return; }
    field.dataset.looked = field.value;
    window.htmx.trigger(field, "si-lookup");
  }
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("[data-si-lookup]")) { clearTimeout(lookupTimer); lookup(e.target); }
  });
  document.addEventListener("keyup", function (e) {
    var field = e.target;
    if (!(field.matches && field.matches("[data-si-lookup]"))) { return; }
    clearTimeout(lookupTimer);
    lookupTimer = setTimeout(function () {
      if (field.value.replace(/[^0-9０-９]/g, "").length === 10) { lookup(field); }
    }, 300);
  });

  // Enrollment form: the months drop-down offers only what the chosen scheme allows (family health insurance: 12);
  // the server checks it as well. A choice the server sent back with an error stays visible until it is changed.
  function narrowMonths(months, keepCurrent) {
    var allowed = JSON.parse(months.dataset.monthsByScheme || "{}");
    var scheme = months.form && months.form.elements[months.dataset.schemeField];
    var ok = scheme && allowed[scheme.value];
    var current = parseInt(months.value, 10);
    Array.prototype.forEach.call(months.options, function (option) {
      var value = parseInt(option.value, 10);
      var on = !ok || ok.indexOf(value) !== -1 || (keepCurrent && value === current);
      option.hidden = !on;
      option.disabled = !on;
    });
    if (ok && ok.indexOf(current) === -1 && !keepCurrent) {
      months.value = String(ok.indexOf(12) !== -1 ? 12 : ok[0]);
    }
  }
  document.querySelectorAll("select[data-months-by-scheme]").forEach(function (months) { narrowMonths(months, true); });
  document.addEventListener("change", function (e) {
    var field = e.target;
    if (!(field.form && field.name)) { return; }
    var months = field.form.querySelector("select[data-months-by-scheme]");
    if (months && months.dataset.schemeField === field.name) { narrowMonths(months, false); }
  });

  var form = document.getElementById("enrollment-form");
  if (form) {
    // After an error, put the cursor on the first field that needs attention.
    var bad = form.querySelector(".is-invalid");
    if (bad) { bad.focus(); }
    // Enter saves from any field, also from a drop-down (browsers would open the list instead).
    form.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && e.target.tagName === "SELECT" && !e.altKey) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    // Filling in a known person replaces the person fields: keep the cursor where the officer is typing.
    var focusId = null, selection = null;
    document.body.addEventListener("htmx:beforeSwap", function () {
      var el = document.activeElement;
      focusId = el && el.id ? el.id : null;
      try { selection = el ? [el.selectionStart, el.selectionEnd] : null; } catch (err) { selection = null; }
    });
    document.body.addEventListener("htmx:afterSwap", function () {
      // Only when the swap took the focus away (the focused input was replaced), never when the officer moved on.
      var lost = !document.activeElement || document.activeElement === document.body;
      var el = focusId && document.getElementById(focusId);
      if (lost && el) {
        el.focus();
        if (selection && el.setSelectionRange) { try { el.setSelectionRange(selection[0], selection[1]); } catch (err) {} }
      }
    });
  }
})();
