/* Review pages: every decision asks first, in the page's own dialog (crowd/confirm.js, loaded before this), a
   reject without feedback is stopped before it is sent, and the HIT page works from the keyboard: J/K move
   between answers, X selects, A approves, R rejects, N opens the next HIT waiting. Without the scripts the forms
   still work. */
(function () {
  "use strict";
  var selectAll = document.getElementById("select-all");
  if (selectAll) {
    selectAll.addEventListener("click", function () {
      document.querySelectorAll("#bulk-review input[name=assignment_ids]").forEach(function (box) {
        box.checked = selectAll.checked;
      });
    });
  }
  document.querySelectorAll("form.decide-form").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      var action = e.submitter ? e.submitter.value : "";
      var n = form.querySelectorAll("input[name=assignment_ids]:checked").length;
      var feedback = form.querySelector("textarea[name=feedback]");
      var say = form.querySelector(".decide-status");
      var stop = function (text, focus) {
        e.preventDefault();
        if (say) { say.textContent = text; }
        if (focus) { focus.focus(); }
      };
      if (!n) { return stop("Select at least one assignment first."); }
      if (action === "reject" && feedback && !feedback.value.trim()) {
        return stop("Write feedback before rejecting: the annotators see it.", feedback);
      }
      var verb = action === "reject" ? "Reject" : "Approve";
      var question = verb + " " + n + " assignment" + (n > 1 ? "s" : "") + "?" +
          (action === "reject" ? " The annotators are not paid and see your feedback." : "");
      var submitter = e.submitter;
      e.preventDefault();
      window.unitcrowdConfirm(question, verb, function () { window.unitcrowdSend(form, submitter); });
    });
  });

  var form = document.getElementById("review-form");
  if (!form) { return; }
  var items = Array.prototype.slice.call(document.querySelectorAll(".review-item"));
  var current = -1;
  function focusItem(i) {
    if (!items.length) { return; }
    current = Math.max(0, Math.min(items.length - 1, i));
    items[current].focus();
  }
  items.forEach(function (item, i) { item.addEventListener("focusin", function () { current = i; }); });
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var el = document.activeElement;
    if (el && (el.tagName === "TEXTAREA" || el.tagName === "SELECT" || (el.tagName === "INPUT" && el.type !== "checkbox"))) {
      return;
    }
    var key = e.key;
    if (key === "j") { focusItem(current + 1); }
    else if (key === "k") { focusItem(current - 1); }
    else if (key === "x") {
      var box = current >= 0 ? items[current].querySelector("input[name=assignment_ids]") : null;
      if (box) { box.checked = !box.checked; }
    } else if (key === "a" || key === "r") {
      var button = document.getElementById(key === "a" ? "approve-selected" : "reject-selected");
      if (form.requestSubmit) { form.requestSubmit(button); }
    } else if (key === "n" && form.dataset.next) { window.location.href = form.dataset.next; }
    else { return; }
    e.preventDefault();
  });
})();
