/* Compare 2-4 runs (jobs) or versions of one model: metrics, parameters and plots side by side. */
"use strict";
(() => {
  const { el, api, table, num, link } = C;
  const P = C.page();
  const TITLES = { confusion_matrix: "Confusion matrix", roc: "ROC curve", loss_curve: "Loss curve", predicted_vs_true: "Predicted vs true" };

  /* one column: {label, href, metrics, params, duration, plots: [[name, src]]} */
  async function fromVersion(model, version, job) {
    const v = await api("GET", `/models/${model}/versions/${version}`);
    const recipe = (v.lineage || {}).recipe || (job && job.recipe);
    return { label: job ? job.name : `v${v.version}`, href: job ? `/jobs/${job.id}` : `/models/${model}/versions/${v.version}`,
      sub: job ? `${model} v${v.version}` : C.date(v.created_at), metrics: v.metrics || {}, params: C.params(recipe),
      duration: job ? C.duration(job.started_at, job.finished_at) : null,
      plots: (v.plots || []).map(p => [p, `/api/v1/models/${model}/versions/${v.version}/plots/${p}`]) };
  }
  async function fromJob(id) {
    const j = await api("GET", `/jobs/${id}`);
    const r = j.result || {};
    if (r.model) return fromVersion(r.model, r.version, j);
    return { label: j.name, href: `/jobs/${j.id}`, sub: j.state, metrics: r.metrics || {}, params: C.params(j.recipe),
      duration: C.duration(j.started_at, j.finished_at), plots: [] };
  }

  function side(cols, rows, empty) {  // rows: [[name, col => value]]; a row whose values differ is marked
    const shown = rows.map(([name, f]) => ({ name, values: cols.map(f) }));
    return table(shown, [["", r => el("span", {}, r.name, new Set(r.values.map(String)).size > 1 ? el("span", { class: "badge warn diff" }, "differs") : "")],
      ...cols.map((c, i) => [el("span", {}, link(c.href, c.label), el("div", { class: "muted small" }, c.sub || "")), r => r.values[i]])], empty, true);
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const jobs = P.jobs ? P.jobs.split(",") : [];
    let cols;
    try {
      cols = await Promise.all(jobs.length ? jobs.map(fromJob) : P.versions.split(",").map(v => fromVersion(P.model, v)));
    } catch (err) { C.showError("cmp-metrics", err); return; }
    const keys = [...new Set(cols.flatMap(c => Object.keys(c.metrics).filter(k => typeof c.metrics[k] === "number")))];
    const mrows = keys.map(k => [k.replace(/_/g, " "), c => num(c.metrics[k])]);
    if (cols.some(c => c.duration)) mrows.push(["duration", c => c.duration || "—"]);
    document.getElementById("cmp-metrics").replaceChildren(side(cols, mrows, "No metrics recorded."));
    const pkeys = [...new Set(cols.flatMap(c => c.params.map(([k]) => k)))];
    document.getElementById("cmp-params").replaceChildren(side(cols, pkeys.map(k => [k, c => num((c.params.find(([x]) => x === k) || [])[1])]),
      "No parameters recorded (uploaded models have no recipe)."));
    const names = [...new Set(cols.flatMap(c => c.plots.map(([n]) => n)))];
    document.getElementById("cmp-plots").replaceChildren(...(names.length ? names.map(n => el("div", {}, el("h3", {}, TITLES[n] || n.replace(/_/g, " ")),
      el("div", { class: "compare-plots" }, cols.map(c => {
        const p = c.plots.find(([x]) => x === n);
        return el("figure", {}, p ? el("img", { src: p[1], alt: `${TITLES[n] || n} of ${c.label}`, loading: "lazy" }) : el("p", { class: "muted" }, "—"),
          el("figcaption", { class: "muted small" }, c.label));
      })))) : [el("p", { class: "muted" }, "None of these recorded plots.")]));
  });
})();
