/* Keyboard for the labelling form: digits pick the category, arrows or J/K move between images,
   Space marks one, W jumps to the word, P toggles highlighted/plain, Enter submits.
   The form works without this script (plain checkboxes, radios and a submit button). */
(function () {
  "use strict";
  var form = document.getElementById("answer-form");
  if (!form) { return; }
  var boxes = Array.prototype.slice.call(form.querySelectorAll(".ex input[type=checkbox]"));
  var categories = Array.prototype.slice.call(form.querySelectorAll("input[name=category]"));
  var word = document.getElementById("id_word");
  var current = 0;

  function focusImage(i) {
    if (!boxes.length) { return; }
    current = (i + boxes.length) % boxes.length;
    boxes[current].focus();
  }
  function sync(box) { box.closest(".ex").classList.toggle("marked", box.checked); }
  function isTyping(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && ["checkbox", "radio", "submit", "button"].indexOf(el.type) < 0));
  }
  boxes.forEach(function (box, i) {
    box.addEventListener("focus", function () { current = i; });
    box.addEventListener("change", function () { sync(box); });
  });

  var toggle = document.getElementById("toggle-view");
  var grid = document.getElementById("exemplars");
  function togglePlain() {
    var plain = !grid.classList.contains("plain");
    grid.classList.toggle("plain", plain);
    grid.querySelectorAll("img").forEach(function (img) {
      img.src = plain ? img.dataset.plain : img.dataset.picture;
    });
    if (toggle) { toggle.textContent = plain ? "Show highlighted regions (P)" : "Show plain images (P)"; }
  }
  if (toggle) { toggle.addEventListener("click", function (e) { e.preventDefault(); togglePlain(); }); }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var el = document.activeElement;
    if (isTyping(el)) {
      if (e.key === "Escape") { el.blur(); }
      return;  // Enter in the word field submits natively
    }
    var key = e.key;
    if (/^[1-9]$/.test(key) && categories[key - 1]) {
      categories[key - 1].checked = true;
      e.preventDefault();
    } else if (key === "ArrowRight" || key === "ArrowDown" || key === "j" || key === "l") {
      if (el && el.type === "radio") { return; }  // arrows move within a radio group natively
      focusImage(el && el.type === "checkbox" ? current + 1 : current);
      e.preventDefault();
    } else if (key === "ArrowLeft" || key === "ArrowUp" || key === "k" || key === "h") {
      if (el && el.type === "radio") { return; }
      focusImage(el && el.type === "checkbox" ? current - 1 : current);
      e.preventDefault();
    } else if (key === " ") {
      if (el && (el.type === "checkbox" || el.type === "radio" || el.tagName === "BUTTON" || el.tagName === "A")) {
        return;  // Space keeps its native meaning on controls
      }
      if (boxes[current]) { boxes[current].checked = !boxes[current].checked; sync(boxes[current]); }
      e.preventDefault();
    } else if (key === "w") {
      if (word) { word.focus(); }
      e.preventDefault();
    } else if (key === "p") {
      togglePlain();
      e.preventDefault();
    } else if (key === "Enter") {
      if (el && (el.tagName === "BUTTON" || el.tagName === "A")) { return; }
      e.preventDefault();
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }
  });

  var left = document.getElementById("time-left");
  if (left) {
    var end = Date.now() + 1000 * parseInt(left.dataset.seconds, 10);
    var tick = function () {
      var s = Math.max(0, Math.round((end - Date.now()) / 1000));
      left.textContent = Math.floor(s / 60) + " min " + (s % 60) + " s";
    };
    tick();
    setInterval(tick, 1000);
  }
})();
