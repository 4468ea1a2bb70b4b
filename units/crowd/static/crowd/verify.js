/* Keyboard for verify HITs: Y, N and U press the yes / no / unsure buttons (about five seconds a HIT).
   The page works without this script: the three buttons are plain submit buttons. */
(function () {
  "use strict";
  var form = document.getElementById("verify-form");
  if (!form) { return; }
  var keys = { y: "verdict-yes", n: "verdict-no", u: "verdict-unsure" };
  var sent = false;
  form.addEventListener("submit", function () { sent = true; });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || sent) { return; }
    var id = keys[(e.key || "").toLowerCase()];
    if (!id) { return; }
    e.preventDefault();
    sent = true;  // one answer per HIT: a held-down key must not post twice
    document.getElementById(id).click();
  });
  // Return and skip ask first, as on label HITs: neither HIT comes back to this annotator.
  ["return-form", "skip-form"].forEach(function (id) {
    var f = document.getElementById(id);
    if (!f) { return; }
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) { e.preventDefault(); }
    });
  });
  // The timer, with the label page's warnings at 2 minutes and 30 seconds and when time has run out.
  var left = document.getElementById("time-left");
  var warning = document.getElementById("time-warning");
  var hitBar = document.getElementById("hit-bar");
  if (left) {
    var end = Date.now() + 1000 * parseInt(left.dataset.seconds, 10);
    var said = {};
    var say = function (stage, text, cls) {
      if (said[stage] || !warning) { return; }
      said[stage] = true;
      warning.hidden = false;
      warning.textContent = text;
      warning.className = "notice " + cls;
      if (hitBar) { hitBar.classList.remove("warn", "urgent", "expired"); hitBar.classList.add(cls); }
    };
    var tick = function () {
      var s = Math.max(0, Math.round((end - Date.now()) / 1000));
      left.textContent = s + " s";
      if (s === 0) {
        say("gone", "The time for this HIT has run out: an answer now may be refused.", "expired");
      } else if (s <= 30) {
        say("30", "30 seconds left.", "urgent");
      } else if (s <= 120) {
        say("120", "2 minutes left.", "warn");
      }
    };
    tick();
    setInterval(tick, 1000);
  }
}());
