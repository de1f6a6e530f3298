/* Jobs list with a state filter: duration, key metrics and parameters, sortable; tick 2-4 runs to compare. */
"use strict";
(() => {
  const { el, api, table, badge, link, date, fill, num } = C;
  const picked = new Set();

  function compareButton() {
    const b = document.getElementById("compare-runs");
    b.disabled = picked.size < 2 || picked.size > 4;
    b.textContent = picked.size ? `Compare ${picked.size} runs` : "Compare runs";
  }

  function load(state) {
    fill("jobs", async () => {
      const jobs = C.items(await api("GET", "/jobs?limit=100" + (state ? `&state=${state}` : "")));
      const metric = j => C.keyMetrics(j.result && j.result.metrics, 2);
      return table(jobs, [
        ["", j => el("input", { type: "checkbox", class: "pick", value: j.id, "aria-label": `compare ${j.name}`, checked: picked.has(j.id),
          onchange: ev => { if (ev.target.checked) picked.add(j.id); else picked.delete(j.id); compareButton(); } })],
        ["Job", j => link(`/jobs/${j.id}`, j.name), j => j.name], ["Kind", j => j.recipe && j.recipe.federated ? "federated" : j.kind],
        ["State", j => badge(j.state), j => j.state], ["Created", j => date(j.created_at), j => j.created_at],
        ["Duration", j => C.duration(j.started_at, j.finished_at),
          j => C.seconds(j.started_at, j.finished_at)],
        ["Metrics", j => C.pairs(metric(j)), j => (metric(j)[0] || [])[1]],
        ["Parameters", j => el("span", { class: "small" }, C.pairs(C.params(j.recipe)))],
        ["Model", j => j.result && j.result.model ? link(`/models/${j.result.model}/versions/${j.result.version}`, `${j.result.model} v${j.result.version}`) : "—"]],
        state ? `No ${state} jobs.` : "No jobs yet: start one from a recipe.", false, true);
    });
  }
  document.addEventListener("DOMContentLoaded", () => {
    const sel = document.querySelector("select[data-filter]");
    sel.addEventListener("change", () => load(sel.value));
    document.getElementById("compare-runs").addEventListener("click", () => {
      location.href = `/compare?jobs=${[...picked].map(encodeURIComponent).join(",")}`;
    });
    compareButton();
    load("");
  });
})();
