/* One model version: lineage picture, metrics (with cross-validation), plots, contributions, deploy. */
"use strict";
(() => {
  const { el, api, table, num, link } = C;
  const P = C.page();
  const base = `/models/${P.owner}/${P.name}/versions/${P.version}`;
  const PLOT_TITLES = { confusion_matrix: "Confusion matrix", roc: "ROC curve", loss_curve: "Loss curve", tuning_rewards: "Tuning: reward by child" };

  function node(kind, ...text) { return el("div", { class: "node" }, el("small", {}, kind), ...text); }
  function lineage(v) {
    const l = v.lineage || {};
    const arrow = () => el("span", { class: "arrow", "aria-hidden": "true" }, "→");
    const orgs = l.organizations || [...new Set((l.datasets || []).map(d => d.owner).filter(Boolean))];
    const parts = [];
    if (orgs.length) parts.push(node(orgs.length > 1 ? "organizations" : "organization", ...orgs.map(o => el("div", {}, o))), arrow());
    const datasets = (l.datasets || []).slice().sort((a, b) => orgs.indexOf(a.owner) - orgs.indexOf(b.owner));  // in the organizations' order
    if (datasets.length) parts.push(node(datasets.length > 1 ? "datasets" : "dataset", ...(datasets.map(d => el("div", {},
      d.owner && d.dataset && !d.dataset.startsWith("sample/") ? link(`/datasets/${d.dataset}`, d.dataset) : d.dataset,
      d.version ? ` v${d.version}` : "", typeof d.rows === "number" ? el("span", { class: "muted" }, ` · ${num(d.rows)} rows`) : "")))), arrow());
    if (l.job_id) parts.push(node(l.recipe && l.recipe.federated ? "federated job" : "training job", link(`/jobs/${l.job_id}`, l.job_id)), arrow());
    parts.push(node("model version", `${v.model.split("/").pop()} v${v.version}`));
    const extra = [];
    if (l.epsilon) extra.push(el("p", { class: "muted small" }, `Differential privacy: ε = ${num(l.epsilon, 2)}, δ = ${l.delta}`));
    if (l.source && !l.job_id) extra.push(el("p", { class: "muted small" }, `Source: ${l.source}`));
    if (l.source === "federated") extra.push(el("p", { class: "muted small" }, [
      `${STRATEGIES[l.strategy] || l.strategy || "Federated"} over ${l.rounds} rounds across ${orgs.length} organizations`,
      l.secure_aggregation ? ", with secure aggregation" : "", ". Training rows stayed with each organization's node and only model updates were aggregated; a held-out share of the rows staged on the hub's machine was scored there (metrics, plots, contribution).",
      l.engine ? ` Engine: ${l.engine}.` : ""].join("")));
    if (l.tuning) extra.push(search(l.tuning));
    return el("div", {}, el("div", { class: "lineage" }, parts), extra);
  }

  /* the tuning search behind the version: method, budget, best child, the rl policy's final preferences */
  function search(t) {
    const params = Object.entries(t.best_params || {}).map(([k, v]) => `${k}=${v}`).join(", ");
    const prefs = Object.entries(t.preferences || {}).map(([k, p]) => `${k}: ` + Object.entries(p)
      .sort((a, b) => b[1] - a[1]).map(([v, x]) => `${v} ${(100 * x).toFixed(0)}%`).join(", "));
    return el("div", { class: "muted small" },
      el("p", {}, `Tuned by ${t.sampler || t.method} with ${t.pruner || "no"} pruning: ${t.budget ?? (t.rewards || []).length} children `,
        `(${t.n_complete ?? "?"} completed, ${t.n_pruned ?? 0} pruned). Best child: ${t.best_trial ?? "—"} with `, el("code", {}, params || "—"),
        typeof t.best_reward === "number" ? `; best reward (${t.reward || "reward"}) ${num(t.best_reward)}.` : "."),
      prefs.length ? el("p", {}, "The controller's final preferences: ", prefs.join("; "), ".") : "");
  }

  function metrics(m) {
    const cv = m.cv || {};
    const rows = Object.entries(m).filter(([k, x]) => typeof x === "number" && k !== "num_examples").map(([k, x]) => ({ k, x, cv: cv[k] }));
    const test = typeof m.num_examples === "number" ? `Test set (${num(m.num_examples)} rows)` : "Test set";
    return table(rows, [["Metric", r => r.k.replace(/_/g, " ")], [test, r => num(r.x)],
      ["Cross-validation", r => r.cv ? `${num(r.cv.mean)} ± ${num(r.cv.std)}` : "—"]], "No metrics recorded.", true);
  }

  const STRATEGIES = { fedavg: "FedAvg", fedprox: "FedProx", fedadam: "FedAdam", fedadagrad: "FedAdagrad", fedyogi: "FedYogi", fedmedian: "FedMedian", fedtrimmedavg: "FedTrimmedAvg" };
  const signed = x => typeof x === "number" ? `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(4)}` : "—";

  /* federated: each organization's rows and what the model loses without its last update */
  function contributions(v) {
    const l = v.lineage || {}, c = l.contribution;
    if (l.source !== "federated" || !c) return;
    document.getElementById("contrib-card").hidden = false;
    const box = document.getElementById("contrib");
    if (c.available === false) { box.replaceChildren(el("p", { class: "muted" }, `Not measured: ${c.reason || "unavailable"}.`)); return; }
    const loo = c.leave_one_out || {}, shapley = c.shapley || null, rowsOf = l.node_rows || {};
    const orgs = [...new Set([...(l.organizations || []), ...Object.keys(loo)])].sort();
    const rows = orgs.map(org => ({ org, n: (loo[org] || {}).num_examples ?? rowsOf[org], without: (loo[org] || {}).score_without,
                                   gain: (loo[org] || {}).gain, shapley: shapley ? shapley[org] : undefined }));
    const total = rows.reduce((a, r) => a + (r.n || 0), 0);
    const share = r => total && r.n ? el("div", { class: "bar-row" }, el("span", {}, `${(100 * r.n / total).toFixed(0)}%`),
      el("div", { class: "bar" }, el("span", { style: `width:${(100 * r.n / total).toFixed(1)}%` })), el("span", { class: "bar-n" }, num(r.n))) : "—";
    const score = v.task === "regression" ? "minus the validation loss" : "validation accuracy";
    box.replaceChildren(
      el("p", { class: "muted small" }, `Measured at the hub on the held-out rows, with the last round's updates. Score (${score}) of the `,
        `model averaged from every organization: ${num(c.score_all)}; of the round's starting model: ${num(c.score_start)}. `,
        "Leave-one-out gain: the score with everyone minus the score without that organization (positive: it helped)."),
      table(rows, [["Organization", r => r.org], ["Rows trained on", share], ["Score without it", r => num(r.without)],
        ["Leave-one-out gain", r => el("span", { class: r.gain > 0 ? "good" : r.gain < 0 ? "worse" : "" }, signed(r.gain))],
        ...(shapley ? [["Shapley value", r => signed(r.shapley)]] : [])]),
      ...(c.warnings || []).map(w => el("p", { class: "muted small" }, `Note: ${w}`)));
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
      M.explainForm(`/models/${P.owner}/${P.name}/versions/${P.version}`, sig.raw_columns, ((sig.inputs || [])[0] || {}).shape);
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
