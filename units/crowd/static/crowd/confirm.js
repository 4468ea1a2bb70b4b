/* Every question before an action that cannot be taken back (return, skip, approve, reject, block, expire,
   delete) asks in the page's own dialog (#confirm-dialog, crowd/_confirm.html): the question, the action's
   button and Cancel, which holds the focus, so Enter or Esc pressed at once changes nothing. A screen reader
   reads the question as the dialog's description. A form with data-confirm asks before it is sent; a button
   with data-confirm asks before its form is sent with that button's name and value. Other scripts ask through
   window.unitcrowdConfirm(question, action, then). Without <dialog> support the browser's confirm() asks;
   without the script the form submits. */
(function () {
  "use strict";
  var dialog = document.getElementById("confirm-dialog");
  var text = document.getElementById("confirm-text");
  var ok = document.getElementById("confirm-ok");
  var cancel = document.getElementById("confirm-cancel");
  var pending = null;

  function ask(question, action, then) {
    if (!dialog || !dialog.showModal) {
      if (window.confirm(question)) { then(); }
      return;
    }
    if (dialog.open) { return; }
    pending = then;
    text.textContent = question;
    ok.textContent = action || "Yes";
    dialog.returnValue = "";
    dialog.showModal();
    cancel.focus();
  }

  // submit() skips the submit event, so the form is not asked about twice; the button that was pressed rides
  // along as a hidden field, as the browser would have sent it.
  function send(form, button) {
    if (button && button.name) {
      var field = document.createElement("input");
      field.type = "hidden";
      field.name = button.name;
      field.value = button.value;
      form.appendChild(field);
    }
    form.submit();
  }

  if (dialog) {
    dialog.addEventListener("close", function () {
      var then = pending;
      pending = null;
      if (then && dialog.returnValue === "ok") { then(); }
    });
  }
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      ask(form.dataset.confirm, form.dataset.confirmAction, function () { send(form, e.submitter); });
    });
  });
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (e) {
      e.preventDefault();
      ask(button.dataset.confirm, button.dataset.confirmAction || button.textContent.trim(), function () {
        send(button.form, button);
      });
    });
  });
  window.unitcrowdConfirm = ask;
  window.unitcrowdSend = send;
}());
