/* The qualification form behaves like the HIT form where it can: P toggles highlighted/plain images,
   and digits 1-6 pick the category of the unit whose fields hold the focus. */
(function () {
  "use strict";
  // Click enlarges, on the form and on the last attempt's feedback alike: the lightbox shows the image
  // as large as the screen allows (as Z does on the HIT page), not the small file in a new tab.
  var lightbox = document.getElementById("lightbox");
  if (lightbox && lightbox.showModal) {
    var big = document.getElementById("lightbox-img"), caption = document.getElementById("lightbox-caption");
    document.querySelectorAll("a[data-enlarge]").forEach(function (link) {
      link.addEventListener("click", function (e) {
        var img = link.querySelector("img");
        big.src = img.src;
        big.alt = img.alt;
        caption.textContent = img.alt;
        lightbox.showModal();
        e.preventDefault();
      });
    });
  }
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
