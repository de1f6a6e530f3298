/* Jobs list with a state filter. */
"use strict";
(() => {
  const { api, table, badge, link, date, fill } = C;
  function load(state) {
    fill("jobs", async () => table(await api("GET", "/jobs?limit=100" + (state ? `&state=${state}` : "")), [
      ["Job", j => link(`/jobs/${j.id}`, j.name)], ["Kind", j => j.recipe && j.recipe.federated ? "federated" : j.kind],
      ["State", j => badge(j.state)], ["Created", j => date(j.created_at)], ["Finished", j => date(j.finished_at)],
      ["Model", j => j.result && j.result.model ? link(`/models/${j.result.model}/versions/${j.result.version}`, `${j.result.model} v${j.result.version}`) : "—"]],
      state ? `No ${state} jobs.` : "No jobs yet: start one from a recipe."));
  }
  document.addEventListener("DOMContentLoaded", () => {
    const sel = document.querySelector("select[data-filter]");
    sel.addEventListener("change", () => load(sel.value));
    load("");
  });
})();
