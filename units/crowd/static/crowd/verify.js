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
  var left = document.getElementById("time-left");
  if (left) {
    var seconds = parseInt(left.dataset.seconds, 10);
    setInterval(function () { seconds = Math.max(0, seconds - 1); left.textContent = seconds + " s"; }, 1000);
  }
}());
