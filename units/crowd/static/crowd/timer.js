/* The HIT timer of the labelling and verify pages: warnings at 2 minutes and 30 seconds, then a grace for
   an answer already given, then "run out". Each warning shows in the top bar (#time-warning, which screen
   readers hear) and again in the sticky submit bar (#bar-warning), where the eyes are while answering;
   near the end the Extend button shows there too (once per HIT; the server's clock decides).
   The shown clock ends GRACE_SECONDS before the server's deadline, so a submit typed at 0 s still counts.
   #time-left's data-draft="1" says the page keeps a draft of the answer in the browser. */
(function () {
  "use strict";
  var WARNINGS = [120, 30];      // seconds left on the shown clock when we warn
  var GRACE_SECONDS = 20;        // the shown clock ends this much before the server's deadline
  var left = document.getElementById("time-left");
  if (!left) { return; }
  var barTime = document.getElementById("bar-time");
  var warning = document.getElementById("time-warning");
  var hitBar = document.getElementById("hit-bar");
  var barWarning = document.getElementById("bar-warning");
  var extendForm = document.getElementById("extend-form");
  var extendNear = document.getElementById("extend-near");
  var draft = left.dataset.draft === "1";
  var serverSeconds = parseInt(left.dataset.seconds, 10);
  var grace = Math.min(GRACE_SECONDS, Math.floor(serverSeconds / 10));
  var serverEnd = Date.now() + 1000 * serverSeconds;
  var shownEnd = serverEnd - 1000 * grace;
  var said = {};
  function say(stage, text, cls) {
    if (said[stage]) { return; }
    said[stage] = true;
    if (warning) {
      warning.hidden = false;
      warning.textContent = text;
      warning.className = "notice " + cls;
    }
    if (hitBar) {
      hitBar.classList.remove("warn", "urgent", "expired");
      hitBar.classList.add(cls);
    }
    if (barWarning) {
      barWarning.hidden = false;
      barWarning.textContent = text;
      barWarning.className = "bar-warning " + cls;
    }
  }
  function clock(s) { return Math.floor(s / 60) + " min " + (s % 60) + " s"; }
  function tick() {
    var now = Date.now();
    var s = Math.max(0, Math.round((shownEnd - now) / 1000));
    if (extendForm && extendForm.hidden && now < serverEnd &&
        (serverEnd - now) / 1000 <= parseInt(extendForm.dataset.within, 10)) {
      extendForm.hidden = false;
      if (extendNear) { extendNear.hidden = false; }
    }
    left.textContent = clock(s);
    if (barTime) { barTime.textContent = clock(s) + " left"; }
    if (now >= serverEnd) {
      say("gone", draft ? "The time for this HIT has run out. Your answer is kept in this browser; submitting now " +
          "tells you whether the HIT was already given to someone else."
        : "The time for this HIT has run out: an answer now may be refused.", "expired");
    } else if (s === 0) {
      say("grace", "Time is up. Press Enter now to hand in your answer: you have a few seconds of grace.", "urgent");
    } else if (s <= WARNINGS[1]) {
      say("30", draft ? "30 seconds left. Your answer is kept as a draft." : "30 seconds left.", "urgent");
    } else if (s <= WARNINGS[0]) {
      say("120", "2 minutes left.", "warn");
    }
  }
  tick();
  setInterval(tick, 1000);
}());
