/* Optional panels shown once their API exists: drift and feedback accuracy of a deployment, the
   explanation of one input for a model version (a bar chart of feature attributions, or the
   attribution map of an image). */
"use strict";
const M = (() => {
  const { el, api, table, num } = C;

  /* a line chart of one time series of the monitoring API (last day, hourly points) */
  async function series(name, metric, id, fields, title, extra, layout) {
    const ts = await api("GET", `/deployments/${name}/timeseries?metric=${metric}&minutes=1440&step=60`);
    const pts = ts.points.filter(p => fields.some(f => p[f] !== null && p[f] !== undefined));
    if (!pts.length) return;
    document.getElementById(id).hidden = false;
    if (pts.length === 1) {  // one point: an hour either side instead of a millisecond axis
      const t = new Date(pts[0].t).getTime();
      layout = { ...(layout || {}), xaxis: { type: "date", range: [new Date(t - 3600e3).toISOString(), new Date(t + 3600e3).toISOString()] } };
    }
    C.plot(id, [...fields.map(f => ({ name: f.replace(/_/g, " "), mode: "lines+markers", x: pts.map(p => p.t), y: pts.map(p => p[f]) })), ...(extra || [])],
      C.chartLayout(title, layout));
  }

  const DRIFT = { ok: ["ok", "no drift"], warn: ["warn", "drift warning"], alert: ["bad", "drift alert"],
    insufficient_data: ["", "not enough data yet"], no_reference: ["", "no reference"] };
  const SEVERITY = { alert: 0, warn: 1, ok: 2 };
  const count = (n, noun) => `${num(n || 0)} ${noun}${n === 1 ? "" : "s"}`;
  const signed = x => typeof x === "number" ? `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(4)}` : "—";

  /* drift of the logged inputs against the version's training data, worst features first */
  function driftView(d) {
    const [cls, label] = DRIFT[d.status] || ["", String(d.status).replace(/_/g, " ")];
    const text = {
      insufficient_data: `${num(d.rows)} logged inputs of version ${d.version} so far; drift is measured from ${num(d.min_rows)} on.`,
      no_reference: d.detail || `Version ${d.version} has no statistics of its training data to compare with.`,
    }[d.status] || `The last ${num(d.rows)} logged inputs of version ${d.version} against its training data: largest PSI ` +
      `${num(d.max_psi, 3)}, largest KS ${num(d.max_ks, 3)}; ${count(d.features_alert, "feature")} in alert, ${num(d.features_warn || 0)} in warning.`;
    const feats = (d.features || []).slice().sort((a, b) => (SEVERITY[a.status] - SEVERITY[b.status]) || ((b.psi || 0) - (a.psi || 0)));
    const shown = feats.slice(0, 8);
    return el("div", {}, el("p", {}, el("span", { class: `badge ${cls}`, id: "drift-status" }, label), " ", text),
      shown.length ? table(shown, [["Feature", f => f.name], ["State", f => el("span", { class: `badge ${(DRIFT[f.status] || [""])[0]}` }, f.status)],
        ["PSI", f => num(f.psi, 3)], ["KS", f => num(f.ks, 3)], ["Live mean", f => num(f.live_mean, 3)]]) : null,
      feats.length > shown.length ? el("p", { class: "muted small" }, `and ${feats.length - shown.length} more features, each within its thresholds.`) : null);
  }

  /* live accuracy (or MSE) from callers' feedback next to the test-set figure */
  function feedbackView(q) {
    const metric = q.metric === "mse" ? "MSE" : "accuracy";
    if (!q.labelled_rows) return el("p", { class: "muted", id: "feedback-empty" }, `No labelled predictions for version ${q.version} yet. `,
      `Callers report the true label of a prediction they received (by its prediction id); the live ${metric} then shows here `,
      q.test !== null && q.test !== undefined ? `next to the test set's ${num(q.test)}.` : "");
    const stat = (label, value) => el("div", { class: "stat" }, el("div", { class: "n" }, value), el("div", { class: "muted" }, label));
    const fixed = x => typeof x === "number" ? x.toFixed(4) : "—";
    return el("div", {}, el("div", { class: "stats compact" }, stat(`live ${metric}`, fixed(q.live)), stat("test set", fixed(q.test)),
      stat("change", signed(q.change))), el("p", { class: "muted small" }, `From ${num(q.labelled_rows)} labelled rows in ${num(q.reports)} reports on version ${q.version}.`));
  }

  async function deploymentPanels(name) {
    const P = C.page();
    if (P.drift)  // drift reads the logged inputs: the page has the panel for the owner only
      C.fill("drift", async () => el("div", {}, driftView(await api("GET", `/deployments/${name}/drift`)),
        el("div", { id: "drift-chart", class: "chart", hidden: true })))
        .then(() => series(name, "drift", "drift-chart", ["max_psi", "max_ks"], "Drift over the last day").catch(() => {}));
    if (P.feedback) C.fill("feedback", async () => el("div", {}, feedbackView(await api("GET", `/deployments/${name}/feedback`)),
      el("div", { id: "accuracy-chart", class: "chart", hidden: true })))
      .then(() => series(name, "accuracy", "accuracy-chart", ["accuracy"], "Live accuracy over the last day", [], { yaxis: { range: [0, 1.05] } }).catch(() => {}));
  }

  /* the explain form of a version: a row of features (JSON), or an image for image models */
  function explainForm(base, columns, shape) {
    const form = document.getElementById("explain-form");
    if (!form) return;
    const image = (shape || []).length === 4;
    document.getElementById("explain-row").hidden = image;
    document.getElementById("explain-image").hidden = !image;
    form.inputs.required = !image;
    form.image.required = image;
    form.inputs.value = JSON.stringify((columns || []).map(() => 0));
    C.onSubmit(form, async v => {
      let row;
      if (image) row = await C.imagePixels(form.image.files[0], shape.slice(1), Number(v.scale) || 255);
      else try { row = JSON.parse(v.inputs); } catch (e) { throw new C.ApiError(0, `the input is not valid JSON (${e.message})`, "write one row, e.g. [1.5, 2, 0.3]"); }
      const given = !image && Array.isArray(row) && (columns || []).length === row.length
        ? Object.fromEntries(columns.map((c, i) => [c, row[i]])) : {};  // label bars with the values as typed
      showExplanation(await api("POST", `${base}/explain`, { inputs: [row] }), given);
    });
  }

  function showExplanation(out, given) {
    const toward = out.task === "regression" ? "the predicted value" : `class ${out.target_name ?? out.target}`;
    const parts = [el("p", { id: "explained" }, `Integrated Gradients toward ${toward}: positive attributions push the prediction toward it, `,
      `negative ones away (convergence error ${num(out.convergence_delta, 4)}).`)];
    const chart = document.getElementById("explain-chart");
    chart.hidden = true;
    if (out.heatmap_png) parts.push(el("img", { class: "heatmap", alt: "the input and its attribution map", src: `data:image/png;base64,${out.heatmap_png}` }));
    else if (Array.isArray(out.features) && out.features.length) {
      const top = out.features.slice(0, 15).reverse();  // largest at the top of a horizontal bar chart
      chart.hidden = false;
      C.plot("explain-chart", [{ type: "bar", orientation: "h", y: top.map(f => `${f.name} = ${num(given[f.name] ?? f.value, 3)}`), x: top.map(f => f.score),
        marker: { color: top.map(f => f.score >= 0 ? "#b42318" : "#2f5bd3") } }],
        C.chartLayout(`Attribution per feature (top ${top.length})`, { height: Math.max(300, 24 * top.length + 80), margin: { l: 16, r: 16, t: 40, b: 40 },
          yaxis: { automargin: true }, showlegend: false }));
    }
    document.getElementById("explanation").replaceChildren(...parts);
  }

  return { deploymentPanels, explainForm };
})();
