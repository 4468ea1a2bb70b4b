/* The qualification form behaves like the HIT form where it can: P toggles highlighted/plain images,
   and digits 1-6 pick the category of the unit whose fields hold the focus. */
(function () {
  "use strict";
  var form = document.getElementById("qualification-form");
  if (!form) { return; }
  var plain = false;
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var el = document.activeElement;
    if (el && (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && el.type === "text"))) { return; }
    if (e.key === "p") {
      plain = !plain;
      form.querySelectorAll("img[data-plain]").forEach(function (img) {
        if (img.dataset.plain) { img.src = plain ? img.dataset.plain : img.dataset.picture; }
      });
      e.preventDefault();
    } else if (/^[1-6]$/.test(e.key) && el && el.closest) {
      var unit = el.closest(".qual-unit");
      var radios = unit ? unit.querySelectorAll("input[type=radio]") : [];
      if (radios[e.key - 1]) { radios[e.key - 1].checked = true; radios[e.key - 1].focus(); e.preventDefault(); }
    }
  });
})();
