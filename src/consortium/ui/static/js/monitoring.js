/* Optional panels shown once their API exists: drift and feedback accuracy of a deployment, the
   explanation of one input for a model version. The answers are rendered generically (numbers as
   a table, a list of attributions as a bar chart), so the panels follow the API's own fields. */
"use strict";
const M = (() => {
  const { el, api, table, num } = C;

  function flat(obj, prefix) {  // {"a": {"b": 1}} -> [["a.b", 1]]
    return Object.entries(obj || {}).flatMap(([k, v]) => v && typeof v === "object" && !Array.isArray(v)
      ? flat(v, `${prefix}${k}.`) : [[`${prefix}${k}`, v]]);
  }

  function kvTable(obj, empty) {
    const rows = flat(obj, "").filter(([, v]) => !Array.isArray(v));
    return table(rows, [["", ([k]) => k.replace(/_/g, " ")], ["", ([, v]) => typeof v === "number" ? num(v) : String(v)]], empty);
  }

  /* a line chart of one time series of the monitoring API (last day, hourly points) */
  async function series(name, metric, id, fields, title, extra) {
    const ts = await api("GET", `/deployments/${name}/timeseries?metric=${metric}&minutes=1440&step=60`);
    const pts = ts.points.filter(p => fields.some(f => p[f] !== null && p[f] !== undefined));
    if (!pts.length) return;
    document.getElementById(id).hidden = false;
    C.plot(id, [...fields.map(f => ({ name: f.replace(/_/g, " "), mode: "lines+markers", x: pts.map(p => p.t), y: pts.map(p => p[f]) })), ...(extra || [])],
      C.chartLayout(title));
  }

  async function deploymentPanels(name) {
    const P = C.page();
    if (P.drift) {  // drift reads the logged inputs: the owner's only
      if (!P.own) C.fill("drift", async () => el("p", { class: "muted" }, "Input drift is shown to the deployment's owner."));
      else C.fill("drift", async () => el("div", {}, kvTable(await api("GET", `/deployments/${name}/drift`), "No drift figures yet."),
        el("div", { id: "drift-chart", class: "chart", hidden: true })))
        .then(() => series(name, "drift", "drift-chart", ["max_psi", "max_ks"], "Drift over the last day").catch(() => {}));
    }
    if (P.feedback) C.fill("feedback", async () => {
      const q = await api("GET", `/deployments/${name}/feedback`);
      return el("div", {}, kvTable(q, "No feedback yet."), el("div", { id: "accuracy-chart", class: "chart", hidden: true }));
    }).then(() => series(name, "accuracy", "accuracy-chart", ["accuracy"], "Live accuracy over the last day").catch(() => {}));
  }

  function explainForm(base, columns) {
    const form = document.getElementById("explain-form");
    if (!form) return;
    document.getElementById("explain-inputs").value = JSON.stringify((columns || []).map(() => 0));
    C.onSubmit(form, async v => {
      let row;
      try { row = JSON.parse(v.inputs); } catch (e) { throw new C.ApiError(0, `the input is not valid JSON (${e.message})`, "write one row, e.g. [1.5, 2, 0.3]"); }
      const out = await api("POST", `${base}/explain`, { inputs: [row] });
      const attr = (out.attributions && out.attributions[0]) || out.attribution || null;
      const names = out.features || out.columns || columns || [];
      if (Array.isArray(attr) && attr.length && typeof attr[0] === "number") {
        const chart = document.getElementById("explain-chart");
        chart.hidden = false;
        C.plot("explain-chart", [{ type: "bar", orientation: "h", y: attr.map((_, i) => names[i] ?? `x${i}`), x: attr }],
          C.chartLayout("Attribution per feature", { height: Math.max(300, 18 * attr.length), margin: { l: 160, r: 16, t: 40, b: 40 } }));
      }
      document.getElementById("explanation").replaceChildren(kvTable(Object.fromEntries(Object.entries(out).filter(([, x]) => !Array.isArray(x)))));
    });
  }

  return { deploymentPanels, explainForm, kvTable };
})();
