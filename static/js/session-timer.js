/* Warn before the session ends for lack of activity (WCAG 2.2.1), with a way to stay
   signed in. The page already says when the session ends, without JavaScript; this
   shows the warning a little before that time. No inline script: CSP holds. */
(function () {
  "use strict";
  var LEAD_MS = 2 * 60 * 1000;
  var timer = null;
  var armedFor = null;

  function arm() {
    var area = document.getElementById("session-area");
    if (area === armedFor) {
      return; // another part of the page changed: the same deadline holds
    }
    armedFor = area;
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    var warning = document.getElementById("session-warning");
    var remaining = area ? Number(area.getAttribute("data-remaining-s")) * 1000 : NaN;
    if (!warning || !isFinite(remaining)) {
      return;
    }
    timer = setTimeout(function () {
      warning.hidden = false;
      var button = warning.querySelector("button");
      if (button) {
        button.focus();
      }
    }, Math.max(remaining - LEAD_MS, 0));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", arm);
  } else {
    arm();
  }
  document.addEventListener("htmx:afterSettle", arm);
})();
