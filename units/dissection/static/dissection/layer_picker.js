// The layer picker: the search box filters the table; a click on a readable layer adds it to the layers field.
(function () {
  const picker = document.getElementById("layer-picker");
  if (!picker) return;
  const search = picker.querySelector("input[type=search]");
  const field = document.getElementById("id_layers");
  const rows = Array.from(picker.querySelectorAll("tbody tr"));
  search.addEventListener("input", function () {
    const needle = search.value.trim().toLowerCase();
    rows.forEach(function (row) {
      row.hidden = needle !== "" && !row.dataset.search.includes(needle);
    });
  });
  rows.forEach(function (row) {
    if (!row.dataset.layer || !field) return;
    row.addEventListener("click", function () {
      const chosen = field.value.split(/[\s,]+/).filter(Boolean);
      if (!chosen.includes(row.dataset.layer)) chosen.push(row.dataset.layer);
      field.value = chosen.join(", ");
    });
  });
})();
