/* A text field with a maxlength takes no more characters and the browser drops the rest without a word:
   every field marked data-counter="<id>" says so as one types, in the element of that id (aria-live), from
   the last ten characters on: "52 of 60 characters", then "60 of 60 characters: the field takes no more".
   Used by the labelling and qualification pages' word fields. */
(function () {
  "use strict";
  document.querySelectorAll("input[data-counter]").forEach(function (field) {
    var counter = document.getElementById(field.dataset.counter);
    var max = field.maxLength;
    if (!counter || !max || max < 0) { return; }
    var count = function () {
      var n = field.value.length;
      counter.textContent = n >= max ? n + " of " + max + " characters: the field takes no more"
        : (n >= max - 10 ? n + " of " + max + " characters" : "");
      counter.className = n >= max ? "notice bad" : "muted";
    };
    field.addEventListener("input", count);
    count();
  });
}());
