/* Return and skip on the HIT pages ask first, in the page's own dialog (#confirm-dialog, crowd/_confirm.html):
   the form's question (data-confirm), its action's button (data-confirm-action) and Cancel, which holds the
   focus, so Enter or Esc pressed at once changes nothing. A screen reader reads the question as the dialog's
   description. Without <dialog> support the browser's confirm() asks; without the script the form submits. */
(function () {
  "use strict";
  var dialog = document.getElementById("confirm-dialog");
  var text = document.getElementById("confirm-text");
  var ok = document.getElementById("confirm-ok");
  var cancel = document.getElementById("confirm-cancel");
  var pending = null;
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (!dialog || !dialog.showModal) {
        if (!window.confirm(form.dataset.confirm)) { e.preventDefault(); }
        return;
      }
      e.preventDefault();
      if (dialog.open) { return; }
      pending = form;
      text.textContent = form.dataset.confirm;
      ok.textContent = form.dataset.confirmAction || "Yes";
      dialog.returnValue = "";
      dialog.showModal();
      cancel.focus();
    });
  });
  if (dialog) {
    dialog.addEventListener("close", function () {
      var form = pending;
      pending = null;
      if (form && dialog.returnValue === "ok") { form.submit(); }  // submit() skips the submit event: no second ask
    });
  }
}());
