/* The labelling form: keyboard, a draft kept in the browser, the shortcut legend and marking from the
   lightbox (crowd/lightbox.js; the timer is crowd/timer.js). The form works without this script (plain
   checkboxes, radios, submit buttons). Keys: 1-6 category, arrows or J/K move between images, Space marks
   one, Z enlarges (as a click on a picture does), W jumps to the word, P toggles highlighted/plain, Enter
   submits, R returns, S skips, ? shows the legend. */
(function () {
  "use strict";
  var DRAFT_PREFIX = "unitcrowd-draft-";
  var DRAFT_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }  // private mode, disabled storage
  }

  // A page reached after a submit, return or skip (?done=<hit>) drops that HIT's draft: it was handed in.
  (function clearDone() {
    var done = new URLSearchParams(window.location.search).get("done");
    var store = storage();
    if (!store) { return; }
    var now = Date.now();
    for (var i = store.length - 1; i >= 0; i--) {
      var key = store.key(i);
      if (!key || key.indexOf(DRAFT_PREFIX) !== 0) { continue; }
      var old = false;
      try { old = now - (JSON.parse(store.getItem(key)).saved || 0) > DRAFT_MAX_AGE_MS; } catch (e) { old = true; }
      if (old || (done && /^\d+$/.test(done) && key.slice(-("-hit-" + done).length) === "-hit-" + done)) {
        store.removeItem(key);
      }
    }
  })();

  var form = document.getElementById("answer-form");
  if (!form) { return; }
  var boxes = Array.prototype.slice.call(form.querySelectorAll(".ex input[type=checkbox]"));
  var categories = Array.prototype.slice.call(form.querySelectorAll("input[name=category]"));
  var confidences = Array.prototype.slice.call(form.querySelectorAll("input[name=confidence]"));
  var word = document.getElementById("id_word");
  var description = document.getElementById("id_description");
  var draftStatus = document.getElementById("draft-status");
  var current = 0;

  function sync(box) { box.closest(".ex").classList.toggle("marked", box.checked); }
  function focusImage(i) {
    if (!boxes.length) { return; }
    current = (i + boxes.length) % boxes.length;
    boxes[current].focus();
  }
  function toggleMark(i) {
    if (!boxes[i]) { return; }
    boxes[i].checked = !boxes[i].checked;
    sync(boxes[i]);
    saveDraft();
  }
  function isTyping(el) {
    return el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" ||
      (el.tagName === "INPUT" && ["checkbox", "radio", "submit", "button"].indexOf(el.type) < 0));
  }
  boxes.forEach(function (box, i) {
    box.addEventListener("focus", function () { current = i; });
    box.addEventListener("change", function () { sync(box); });
  });

  // --- the draft: every change is kept in localStorage, so a reload or an expiry loses nothing ---
  var draftKey = form.dataset.draftKey;
  function checkedValue(inputs) {
    var on = inputs.filter(function (r) { return r.checked; })[0];
    return on ? on.value : "";
  }
  function saveDraft() {
    var store = storage();
    if (!store || !draftKey) { return; }
    var draft = {
      word: word ? word.value : "", description: description ? description.value : "",
      category: checkedValue(categories), confidence: checkedValue(confidences),
      marked: boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; }),
      saved: Date.now()
    };
    try { store.setItem(draftKey, JSON.stringify(draft)); } catch (e) { return; }
    if (draftStatus) { draftStatus.textContent = "Draft kept in this browser."; }
  }
  function restoreDraft() {
    var store = storage();
    if (!store || !draftKey || form.dataset.bound) { return; }  // a re-shown form holds what was just sent
    var draft;
    try { draft = JSON.parse(store.getItem(draftKey) || "null"); } catch (e) { draft = null; }
    if (!draft) { return; }
    if (word && draft.word) { word.value = draft.word; }
    if (description && draft.description) { description.value = draft.description; }
    categories.forEach(function (r) { r.checked = r.value === draft.category; });
    if (draft.confidence) { confidences.forEach(function (r) { r.checked = r.value === draft.confidence; }); }
    boxes.forEach(function (b) { b.checked = (draft.marked || []).indexOf(b.value) >= 0; sync(b); });
    if (draftStatus) { draftStatus.textContent = "Your unsent answer to this HIT was restored from this browser."; }
  }
  restoreDraft();
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", saveDraft);

  // --- plain / highlighted ---
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

  // --- the legend (?) and the lightbox (Z) ---
  var legend = document.getElementById("shortcuts");
  var showLegend = document.getElementById("show-shortcuts");
  function openDialog(dialog) {
    if (dialog && !dialog.open && dialog.showModal) { dialog.showModal(); }
  }
  if (showLegend) { showLegend.addEventListener("click", function () { openDialog(legend); }); }

  // The lightbox is the site's one (crowd/lightbox.js: a click or Z opens it, arrows move); here it also
  // marks: Space or its button, and the caption says whether the picture shown is marked.
  var lightbox = document.getElementById("lightbox");
  var lightboxMark = document.getElementById("lightbox-mark");
  var lightboxCaption = document.getElementById("lightbox-caption");
  var shownInLightbox = -1;
  function linkOf(i) { return boxes[i] ? boxes[i].closest(".ex").querySelector("a[data-enlarge]") : null; }
  function showMarkInLightbox() {
    var box = boxes[shownInLightbox];
    if (!box) { return; }
    var caption = lightboxCaption.textContent.replace(/ \(marked: does not fit\)$/, "");
    lightboxCaption.textContent = caption + (box.checked ? " (marked: does not fit)" : "");
    lightbox.classList.toggle("marked", box.checked);
    if (lightboxMark) { lightboxMark.setAttribute("aria-pressed", box.checked ? "true" : "false"); }
  }
  function showInLightbox(i) {
    var link = linkOf((i + boxes.length) % boxes.length);
    if (link && window.unitcrowdLightbox) { window.unitcrowdLightbox.show(link); }
  }
  if (lightbox) {
    lightbox.addEventListener("lightbox:shown", function (e) {
      shownInLightbox = boxes.indexOf(e.detail.link.closest(".ex").querySelector("input[type=checkbox]"));
      current = shownInLightbox;
      showMarkInLightbox();
    });
    lightbox.addEventListener("keydown", function (e) {
      if (e.key === " ") { toggleMark(shownInLightbox); showMarkInLightbox(); e.preventDefault(); }
    });
    if (lightboxMark) {
      lightboxMark.addEventListener("click", function () { toggleMark(shownInLightbox); showMarkInLightbox(); });
    }
  }

  // --- return and skip: both ask first (crowd/confirm.js), since neither HIT comes back to this annotator ---
  function submitForm(f) {
    if (!f) { return; }
    if (f.requestSubmit) { f.requestSubmit(); } else if (window.confirm(f.dataset.confirm)) { f.submit(); }
  }

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (document.querySelector("dialog[open]")) { return; }  // a dialog has the keyboard
    var el = document.activeElement;
    if (isTyping(el)) {
      if (e.key === "Escape") { el.blur(); }
      return;  // Enter in the word field submits natively
    }
    var key = e.key;
    if (/^[1-9]$/.test(key) && categories[key - 1]) {
      categories[key - 1].checked = true;
      saveDraft();
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
      toggleMark(current);
      e.preventDefault();
    } else if (key === "w") {
      // The word the field holds (a refused answer, a restored draft) is selected: typing replaces it,
      // an arrow key keeps it. A caret left at the start would glue the new word before the old one.
      if (word) { word.focus(); word.select(); }
      e.preventDefault();
    } else if (key === "p") {
      togglePlain();
      e.preventDefault();
    } else if (key === "z") {
      showInLightbox(current);
      e.preventDefault();
    } else if (key === "?") {
      openDialog(legend);
      e.preventDefault();
    } else if (key === "r") {
      submitForm(document.getElementById("return-form"));
      e.preventDefault();
    } else if (key === "s") {
      submitForm(document.getElementById("skip-form"));
      e.preventDefault();
    } else if (key === "Enter") {
      if (el && (el.tagName === "BUTTON" || el.tagName === "A")) { return; }
      e.preventDefault();
      if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
    }
  });

  // An answer that was refused: the summary on top has the messages; take the focus there.
  var errors = document.getElementById("form-errors");
  if (errors) { errors.focus(); }

})();
