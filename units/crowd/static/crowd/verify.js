/* Keyboard for verify HITs, in two steps as on the labelling page: Y, N and U choose yes / no / unsure,
   Enter hands the choice in, so a stray key changes the choice but never submits. R returns and S skips
   (both ask first, crowd/confirm.js). The timer is crowd/timer.js, the lightbox crowd/lightbox.js. Without this script the
   page still works: three radio buttons and a submit button. */
(function () {
  "use strict";
  var form = document.getElementById("verify-form");
  if (!form) { return; }
  var keys = { y: "verdict-yes", n: "verdict-no", u: "verdict-unsure" };
  var chosen = document.getElementById("chosen");
  var radios = Array.prototype.slice.call(form.querySelectorAll("input[name=verdict]"));
  var sent = false;

  function choice() {
    var on = radios.filter(function (r) { return r.checked; })[0];
    return on ? on.value : "";
  }
  function sayChoice() {
    var value = choice();
    if (chosen && value) {
      chosen.textContent = "Your answer: " + value + ". Enter hands it in; Y, N or U changes it.";
      chosen.className = "";
    }
  }
  radios.forEach(function (r) { r.addEventListener("change", sayChoice); });
  sayChoice();  // a refused answer comes back with its choice

  form.addEventListener("submit", function (e) {
    if (sent) { e.preventDefault(); return; }  // one answer per HIT: a held-down Enter must not post twice
    if (!choice()) {
      e.preventDefault();
      if (chosen) {
        chosen.textContent = "Choose yes, no or unsure first (Y, N, U).";
        chosen.className = "notice bad";
      }
      return;
    }
    sent = true;
  });
  // Return and skip ask first (crowd/confirm.js), as on label HITs: neither HIT comes back to this annotator.
  function submitForm(f) {
    if (!f) { return; }
    if (f.requestSubmit) { f.requestSubmit(); } else if (window.confirm(f.dataset.confirm)) { f.submit(); }
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (document.querySelector("dialog[open]")) { return; }  // the lightbox has the keyboard
    var key = (e.key || "").toLowerCase();
    var el = document.activeElement;
    if (keys[key]) {
      var radio = document.getElementById(keys[key]);
      radio.checked = true;
      sayChoice();
      e.preventDefault();
    } else if (key === "enter") {
      if (el && (el.tagName === "BUTTON" || el.tagName === "A" || el.type === "radio")) { return; }  // native
      e.preventDefault();
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    } else if (key === "r") {
      submitForm(document.getElementById("return-form"));
      e.preventDefault();
    } else if (key === "s") {
      submitForm(document.getElementById("skip-form"));
      e.preventDefault();
    }
  });
}());
