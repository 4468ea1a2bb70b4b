// The paint page: send the form to the JSON endpoint and show the edit without reloading;
// the grid is painted with the mouse (drag) or the keyboard (arrows move, Space paints).
(function () {
  "use strict";
  const root = document.querySelector("[data-endpoint]");
  if (!root) return;
  const form = root.querySelector("#paint-form");
  const cells = Array.from(form.querySelectorAll('input[name="cell"]'));
  const size = Math.round(Math.sqrt(cells.length));
  const error = root.querySelector("[data-paint-error]");
  const result = root.querySelector("[data-paint-result]");

  function cellAt(r, c) { return cells[r * size + c]; }
  form.addEventListener("keydown", (event) => {
    const cell = event.target;
    if (!cell.dataset || cell.dataset.row === undefined) return;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const r = Math.min(size - 1, Math.max(0, +cell.dataset.row + move[0]));
    const c = Math.min(size - 1, Math.max(0, +cell.dataset.col + move[1]));
    cellAt(r, c).focus();
  });
  let painting = null;
  cells.forEach((cell) => {
    const box = cell.parentElement;
    box.addEventListener("mousedown", (event) => { event.preventDefault(); painting = !cell.checked; cell.checked = painting; });
    box.addEventListener("mouseenter", () => { if (painting !== null) cell.checked = painting; });
    box.addEventListener("click", (event) => { if (event.detail > 0) event.preventDefault(); });
  });
  document.addEventListener("mouseup", () => { painting = null; });
  form.querySelector("[data-clear-grid]").addEventListener("click", () => cells.forEach((c) => { c.checked = false; }));

  function numbers(text) { return text.split(/[\s,]+/).filter(Boolean).map(Number); }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = {
      layer: data.get("layer"), seed: Number(data.get("seed")), mode: data.get("mode"),
      units: numbers(data.get("units") || ""), label: data.get("label") || "", label_source: data.get("label_source"),
    };
    const box = numbers(data.get("box") || "");
    if (box.length) body.box = box;
    else if (cells.some((c) => c.checked)) {
      body.grid = [];
      for (let r = 0; r < size; r++) body.grid.push(cells.slice(r * size, (r + 1) * size).map((c) => (c.checked ? 1 : 0)));
    }
    const response = await fetch(root.dataset.endpoint, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": data.get("csrfmiddlewaretoken") },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({ detail: "The server answered " + response.status + "." }));
    if (!response.ok) {
      const detail = answer.detail || Object.entries(answer).map(([k, v]) => k + ": " + [].concat(v).join(" ")).join("; ");
      error.textContent = detail;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    result.querySelector("[data-before]").src = answer.before;
    result.querySelector("[data-after]").src = answer.after;
    result.querySelector("[data-mode]").textContent = answer.mode;
    result.querySelector("[data-seconds]").textContent = answer.seconds;
    const links = result.querySelector("[data-units]");
    links.replaceChildren(...answer.units.flatMap((u, i) => {
      const a = document.createElement("a");
      a.href = u.url;
      a.textContent = answer.layer + " unit " + u.number + (u.iou_label ? " (" + u.iou_label + ")" : "");
      return i ? [document.createTextNode(", "), a] : [a];
    }));
    result.hidden = false;
  });
})();
