// Live progress of dissection jobs: every element with data-job-status polls that JSON URL
// (status, stage, progress 0..1, error) until the job has finished. No library, no CDN.
(function () {
  "use strict";
  var LIVE = { pending: false, queued: true, running: true };
  function update(el, d) {
    var status = el.querySelector('[data-field="status"]');
    var bar = el.querySelector('[data-field="bar"]');
    var percent = el.querySelector('[data-field="percent"]');
    var error = el.querySelector('[data-field="error"]');
    var pct = Math.round(100 * (d.progress || 0));
    if (status) {
      status.textContent = d.status + (d.stage && d.status !== "succeeded" ? " \u00b7 " + d.stage : "");
      status.className = "status status-" + d.status;
    }
    if (bar) {
      bar.style.width = pct + "%";
      bar.parentNode.setAttribute("aria-valuenow", pct);  // what screen readers read, not the width
    }
    if (percent) percent.textContent = pct + "%";
    if (error && d.error) { error.textContent = d.error; error.hidden = false; }
  }
  function poll(el) {
    fetch(el.dataset.jobStatus, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) return;
        update(el, d);
        if (LIVE[d.status]) {
          setTimeout(function () { poll(el); }, 1500);
        } else if (el.dataset.reloadWhenDone) {
          window.location.reload();  // show the layers the job just stored
        }
      })
      .catch(function () { setTimeout(function () { poll(el); }, 5000); });
  }
  document.querySelectorAll("[data-job-status]").forEach(function (el) {
    var status = el.querySelector('[data-field="status"]');
    var text = status ? status.textContent.trim().split(" ")[0] : "running";
    if (LIVE[text]) poll(el);
  });
})();
