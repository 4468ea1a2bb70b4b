// The registration form's layer table: as the architecture (and input size) change, the layers of the
// architecture come from a shape probe on the server (no weights, no image) and fill the table.
(function () {
  const section = document.getElementById("architecture-layers");
  const architecture = document.getElementById("id_architecture");
  if (!section || !architecture) return;
  const inputSize = document.getElementById("id_input_size");
  const title = section.querySelector("[data-role=title]");
  const problem = section.querySelector("[data-role=problem]");
  const search = section.querySelector("input[type=search]");
  const body = section.querySelector("tbody");
  let timer = null;
  let asked = "";

  function cell(text, code) {
    const td = document.createElement("td");
    const inner = code ? document.createElement("code") : td;
    inner.textContent = text;
    if (code) td.appendChild(inner);
    return td;
  }

  function filter() {
    const needle = search.value.trim().toLowerCase();
    body.querySelectorAll("tr").forEach(function (row) {
      row.hidden = needle !== "" && !row.dataset.search.includes(needle);
    });
  }

  function show(table) {
    body.replaceChildren();
    table.layers.forEach(function (row) {
      const tr = document.createElement("tr");
      tr.dataset.search = (row.name + " " + row.kind).toLowerCase();
      if (row.units !== null) tr.dataset.layer = row.name;
      tr.append(cell(row.name, true), cell(row.kind), cell(row.shape.join("x")),
                cell(row.units === null ? "-" : String(row.units)), cell(row.reading));
      body.appendChild(tr);
    });
    title.textContent = "of " + table.architecture + " at " + table.image_size + "x" + table.image_size + " px";
    filter();
  }

  async function probe() {
    const name = architecture.value.trim();
    const size = inputSize ? inputSize.value.trim() : "";
    const query = new URLSearchParams({ architecture: name });
    if (size) query.set("input_size", size);
    if (!name || query.toString() === asked) return;
    asked = query.toString();
    title.textContent = "(probing " + name + "...)";
    const response = await fetch(section.dataset.url + "?" + query, {
      credentials: "same-origin", headers: { Accept: "application/json" },
    });
    if (query.toString() !== asked) return;  // a later choice is already on its way
    const answer = await response.json().catch(function () { return { detail: "The server answered " + response.status + "." }; });
    if (response.ok) {
      problem.hidden = true;
      show(answer);
    } else {
      body.replaceChildren();
      title.textContent = "";
      problem.textContent = answer.detail || JSON.stringify(answer);
      problem.hidden = false;
    }
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(probe, 400);
  }

  architecture.addEventListener("input", soon);
  architecture.addEventListener("change", probe);
  if (inputSize) {
    inputSize.addEventListener("input", soon);
    inputSize.addEventListener("change", probe);
  }
  search.addEventListener("input", filter);
  probe();
})();
