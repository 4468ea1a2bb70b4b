/* Click enlarges: every link marked data-enlarge around a picture opens it in the page's #lightbox
   dialog, as large as the screen allows (as Z does on the HIT page), not the small file in a new tab.
   Without the script the link still opens the picture. Used by the qualification and verify pages. */
(function () {
  "use strict";
  var lightbox = document.getElementById("lightbox");
  if (!lightbox || !lightbox.showModal) { return; }
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
}());
