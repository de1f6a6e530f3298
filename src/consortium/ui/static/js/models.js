/* Models list, and one model's card: versions (key metrics, parameters, training time; sortable;
   tick 2-4 to compare) and aliases (point an alias at a version). */
"use strict";
(() => {
  const { el, api, table, badge, link, date, num, fill } = C;
  const P = C.page();
  const headline = m => C.pairs(C.keyMetrics(m, 2));
  const first = m => (C.keyMetrics(m, 1)[0] || [])[1];
  /* the training jobs behind versions (lineage.job_id): their duration; one list call, not one per version */
  const jobsById = () => api("GET", "/jobs?limit=100").then(js => Object.fromEntries(C.items(js).map(j => [j.id, j]))).catch(() => ({}));
  const took = (v, jobs) => { const j = jobs[(v.lineage || {}).job_id]; return j ? [C.duration(j.started_at, j.finished_at), C.seconds(j.started_at, j.finished_at)] : ["—", null]; };

  function listPage() {
    fill("models", async () => {
      const [models, jobs] = await Promise.all([api("GET", "/models").then(C.items), jobsById()]);
      const cards = await Promise.all(models.slice(0, 50).map(m => api("GET", `/models/${m.name}`).catch(() => null)));
      const latest = Object.fromEntries(cards.filter(Boolean).map(c => [c.name, c.versions[c.versions.length - 1] || {}]));
      const lv = m => latest[m.name] || {};
      return table(models, [
        ["Model", m => link(`/models/${m.name}`, m.name), m => m.name], ["Task", m => m.task || "—"], ["Versions", m => m.versions, m => m.versions],
        ["Latest metrics", m => headline(lv(m).metrics), m => first(lv(m).metrics)],
        ["Parameters", m => el("span", { class: "small" }, C.pairs(C.params((lv(m).lineage || {}).recipe)))],
        ["Training time", m => took(lv(m), jobs)[0], m => took(lv(m), jobs)[1]],
        ["Aliases", m => Object.entries(m.aliases || {}).map(([a, v]) => `${a} → v${v}`).join(", ") || "—"],
        ["Updated", m => date(m.updated_at), m => m.updated_at]], "No models yet: train one from a job, or upload an ONNX or Keras file.", false, true);
    });
  }

  async function cardPage() {
    const base = `/models/${P.owner}/${P.name}`;
    const picked = new Set();
    const compare = document.getElementById("compare-versions");
    const update = () => { compare.disabled = picked.size < 2 || picked.size > 4; compare.textContent = picked.size ? `Compare ${picked.size} versions` : "Compare versions"; };
    compare.addEventListener("click", () => { location.href = `/compare?model=${encodeURIComponent(`${P.owner}/${P.name}`)}&versions=${[...picked].join(",")}`; });
    update();
    const load = async () => {
      const [m, jobs] = await Promise.all([api("GET", base), jobsById()]);
      document.getElementById("model-desc").textContent = [m.task, m.description].filter(Boolean).join(" · ");
      const aliasesOf = v => Object.entries(m.aliases || {}).filter(([, n]) => n === v).map(([a]) => a);
      document.getElementById("versions").replaceChildren(table(m.versions.slice().reverse(), [
        ["", v => el("input", { type: "checkbox", class: "pick", value: v.version, "aria-label": `compare v${v.version}`, checked: picked.has(String(v.version)),
          onchange: ev => { if (ev.target.checked) picked.add(String(v.version)); else picked.delete(String(v.version)); update(); } })],
        ["Version", v => link(`${base}/versions/${v.version}`, `v${v.version}`), v => v.version], ["Source", v => v.source_format],
        ["Metrics", v => headline(v.metrics), v => first(v.metrics)],
        ["Parameters", v => el("span", { class: "small" }, C.pairs(C.params((v.lineage || {}).recipe)))],
        ["Training time", v => took(v, jobs)[0], v => took(v, jobs)[1]],
        ["Aliases", v => aliasesOf(v.version).map(a => badge(a))],
        ["Created", v => date(v.created_at), v => v.created_at]], "No versions.", false, true));
      document.getElementById("aliases").replaceChildren(table(Object.entries(m.aliases || {}), [
        ["Alias", ([a]) => badge(a)], ["Version", ([, v]) => link(`${base}/versions/${v}`, `v${v}`)]], "No aliases."));
      const sel = document.getElementById("alias-version");
      if (sel) sel.replaceChildren(...m.versions.slice().reverse().map(v => el("option", { value: v.version }, `v${v.version}`)));
    };
    try { await load(); } catch (err) { C.showError("versions", err); }
    C.onSubmit("alias-form", async v => {
      const r = await api("PUT", `${base}/aliases/${encodeURIComponent(v.alias)}`, { version: Number(v.version) });
      C.flash(`${r.alias} now points at version ${r.version}` + (r.deployments.length ? `; deployments following it: ${r.deployments.join(", ")}.` : "."));
      await load();
    });
  }

  document.addEventListener("DOMContentLoaded", () => { if (P.name) cardPage(); else listPage(); });
})();
