/* One model version: lineage picture, metrics (with cross-validation), plots, contributions, deploy. */
"use strict";
(() => {
  const { el, api, table, num, link } = C;
  const P = C.page();
  const base = `/models/${P.owner}/${P.name}/versions/${P.version}`;
  const PLOT_TITLES = { confusion_matrix: "Confusion matrix", roc: "ROC curve", loss_curve: "Loss curve" };

  function node(kind, ...text) { return el("div", { class: "node" }, el("small", {}, kind), ...text); }
  function lineage(v) {
    const l = v.lineage || {};
    const arrow = () => el("span", { class: "arrow", "aria-hidden": "true" }, "→");
    const orgs = l.organizations || [...new Set((l.datasets || []).map(d => d.owner).filter(Boolean))];
    const parts = [];
    if (orgs.length) parts.push(node("organizations", orgs.join(", ")), arrow());
    if ((l.datasets || []).length) parts.push(node("datasets", ...(l.datasets.map((d, i) => el("div", {},
      d.owner && d.dataset && !d.dataset.startsWith("sample/") ? link(`/datasets/${d.dataset}`, d.dataset) : d.dataset, d.version ? ` v${d.version}` : "")))), arrow());
    if (l.job_id) parts.push(node(l.recipe && l.recipe.federated ? "federated job" : "training job", link(`/jobs/${l.job_id}`, l.job_id)), arrow());
    parts.push(node("model version", `${v.model} v${v.version}`));
    const extra = [];
    if (l.epsilon) extra.push(el("p", { class: "muted small" }, `Differential privacy: ε = ${num(l.epsilon, 2)}, δ = ${l.delta}`));
    if (l.source && !l.job_id) extra.push(el("p", { class: "muted small" }, `Source: ${l.source}`));
    return el("div", {}, el("div", { class: "lineage" }, parts), extra);
  }

  function metrics(m) {
    const cv = m.cv || {};
    const rows = Object.entries(m).filter(([k, x]) => typeof x === "number").map(([k, x]) => ({ k, x, cv: cv[k] }));
    return table(rows, [["Metric", r => r.k.replace(/_/g, " ")], ["Test set", r => num(r.x)],
      ["Cross-validation", r => r.cv ? `${num(r.cv.mean)} ± ${num(r.cv.std)}` : "—"]], "No metrics recorded.");
  }

  function contributions(v) {
    const c = v.contributions || (v.metrics || {}).contributions || (v.lineage || {}).contributions;
    if (!c) return;
    document.getElementById("contrib-card").hidden = false;
    const rows = Array.isArray(c) ? c : Object.entries(c).map(([org, x]) => ({ org, ...(typeof x === "object" ? x : { value: x }) }));
    const keys = [...new Set(rows.flatMap(r => Object.keys(r)))].filter(k => k !== "org");
    document.getElementById("contrib").replaceChildren(table(rows, [["Organization", r => r.org], ...keys.map(k => [k.replace(/_/g, " "), r => num(r[k])])]));
  }

  document.addEventListener("DOMContentLoaded", async () => {
    try {
      const v = await api("GET", base);
      document.getElementById("version-sub").textContent = `${v.task || ""} · ${v.source_format} · ${C.date(v.created_at)} · ${v.description || ""}`;
      document.getElementById("lineage").replaceChildren(lineage(v));
      document.getElementById("metrics").replaceChildren(metrics(v.metrics || {}));
      const sig = v.signature || {};
      document.getElementById("signature").replaceChildren(el("dl", { class: "kv" },
        ...(sig.inputs || []).flatMap(i => [el("dt", {}, "input"), el("dd", {}, el("code", {}, i.name), ` ${i.dtype} [${i.shape.join(", ")}]`)]),
        ...(sig.outputs || []).flatMap(o => [el("dt", {}, "output"), el("dd", {}, el("code", {}, o.name), ` ${o.dtype} [${o.shape.join(", ")}]`)]),
        el("dt", {}, "classes"), el("dd", {}, (v.class_names || []).join(", ") || "—"),
        el("dt", {}, "preprocessing"), el("dd", {}, v.preprocessing ? (v.preprocessing.steps || []).join(", ") || "none" : "none"),
        el("dt", {}, "raw columns"), el("dd", {}, (sig.raw_columns || []).length ? `${sig.raw_columns.length} columns` : "—")));
      const plots = v.plots || [];
      document.getElementById("plots").replaceChildren(...(plots.length ? plots.map(p => el("figure", {},
        el("img", { src: `/api/v1${base}/plots/${p}`, alt: PLOT_TITLES[p] || p, loading: "lazy" }),
        el("figcaption", {}, PLOT_TITLES[p] || p.replace(/_/g, " ")))) : [el("p", { class: "muted" }, "No plots were recorded with this version.")]));
      contributions(v);
      M.explainForm(`/models/${P.owner}/${P.name}/versions/${P.version}`, sig.raw_columns);
      const follow = document.getElementById("deploy-follow");
      if (follow) {
        const card = await api("GET", `/models/${P.owner}/${P.name}`);
        const aliases = Object.entries(card.aliases || {}).filter(([, n]) => n === v.version).map(([a]) => a);
        follow.replaceChildren(el("option", { value: `:${v.version}` }, `version ${v.version} (pinned)`),
          ...aliases.map(a => el("option", { value: `@${a}` }, `alias ${a} (follows it)`)));
        document.getElementById("deploy-name").value = P.name;
      }
    } catch (err) { C.showError("lineage", err); }
    C.onSubmit("deploy-form", async f => {
      const d = await api("POST", "/deployments", { name: f.name, model: `${P.owner}/${P.name}${f.follow}` });
      location.href = `/deployments/${d.name}`;
    });
  });
})();
