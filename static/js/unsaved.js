/* Warn before leaving a page whose form has changes not saved yet.
   A form opts in with the data-unsaved-warning attribute; it is "dirty" when a box or
   field differs from what the page showed. Sending the form (as a page or with htmx)
   is not leaving it; a section htmx swaps in after saving comes back clean, since it
   shows what the service holds. No inline code, so the Content Security Policy holds. */
(function () {
  "use strict";
  var sending = false;

  function changed(form) {
    var fields = form.querySelectorAll("input, select, textarea");
    for (var i = 0; i < fields.length; i += 1) {
      var field = fields[i];
      if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked !== field.defaultChecked) { return true; }
      } else if (field.type !== "hidden" && field.value !== field.defaultValue) {
        return true;
      }
    }
    return false;
  }

  function anyChanged() {
    var forms = document.querySelectorAll("form[data-unsaved-warning]");
    for (var i = 0; i < forms.length; i += 1) {
      if (changed(forms[i])) { return true; }
    }
    return false;
  }

  document.addEventListener("submit", function (event) {
    if (event.target.matches && event.target.matches("form[data-unsaved-warning]")) {
      sending = true;
    }
  }, true);
  // With htmx the page stays: once the answer is in, leaving it is leaving again.
  document.addEventListener("htmx:afterRequest", function () { sending = false; });

  window.addEventListener("beforeunload", function (event) {
    if (sending || !anyChanged()) { return undefined; }
    event.preventDefault();
    event.returnValue = "";
    return "";
  });
}());
