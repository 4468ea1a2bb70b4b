/* The one lightbox of every page that shows a unit's pictures (labelling, qualification, verify, review):
   a click on a picture (a link marked data-enlarge) opens it in the page's #lightbox dialog, as large as the
   screen allows, never the small file in a new tab. Arrows (or J/K) move between the pictures of its group
   (the closest [data-enlarge-group]), Z or Esc closes, and the focus goes back to the picture's control
   (the element its data-focus names) or to the link. Without the script the link opens the picture itself.
   A page adds to it through window.unitcrowdLightbox.show(link) and the dialog's "lightbox:shown" event. */
(function () {
  "use strict";
  var lightbox = document.getElementById("lightbox");
  if (!lightbox || !lightbox.showModal) { return; }
  var big = document.getElementById("lightbox-img"), caption = document.getElementById("lightbox-caption");
  var group = [], shown = -1;

  function show(link) {
    var box = link.closest("[data-enlarge-group]") || document;
    group = Array.prototype.slice.call(box.querySelectorAll("a[data-enlarge]"));
    shown = group.indexOf(link);
    var img = link.querySelector("img");
    big.src = img.src;  // the picture as the page shows it now (highlighted or plain)
    big.alt = img.alt;
    caption.textContent = img.alt + (group.length > 1 ? " of " + group.length : "");
    if (!lightbox.open) { lightbox.showModal(); }
    lightbox.dispatchEvent(new CustomEvent("lightbox:shown", { detail: { link: link } }));
  }
  function move(step) {
    if (group.length) { show(group[(shown + step + group.length) % group.length]); }
  }

  document.addEventListener("click", function (e) {
    var link = e.target.closest ? e.target.closest("a[data-enlarge]") : null;
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey) { return; }  // a modified click keeps its new tab
    e.preventDefault();
    show(link);
  });
  lightbox.addEventListener("keydown", function (e) {
    if (e.key === "ArrowRight" || e.key === "j") { move(1); e.preventDefault(); }
    else if (e.key === "ArrowLeft" || e.key === "k") { move(-1); e.preventDefault(); }
    else if (e.key === "z") { lightbox.close(); e.preventDefault(); }
    e.stopPropagation();  // the page's own keys must not act behind the dialog
  });
  // The dialog gives the focus back to where it was opened; the annotator may have moved on since.
  lightbox.addEventListener("close", function () {
    var link = group[shown];
    if (!link) { return; }
    var target = (link.dataset.focus && document.getElementById(link.dataset.focus)) || link;
    setTimeout(function () { target.focus(); }, 0);
  });
  window.unitcrowdLightbox = { show: show };
}());
