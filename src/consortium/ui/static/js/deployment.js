/* One deployment: the try-it form (features, JSON or an image), usage and latency charts, invoke
   grants with quotas, undeploy. */
"use strict";
(() => {
  const { el, api, table, num, badge, date, fill } = C;
  const P = C.page();
  let dep = null;

  function showPrediction(out) {
    const preds = out.predictions || out.outputs || [];
    const probs = out.probabilities || [];
    const names = out.class_names || (dep && dep.class_names) || [];
    const first = Array.isArray(preds) ? preds[0] : preds;
    const label = typeof first === "number" && names[first] !== undefined ? names[first] : first;
    const p0 = probs[0] || [];
    document.getElementById("prediction").replaceChildren(el("div", { class: "flash ok", id: "prediction-result" },
      el("strong", {}, "Prediction: "), el("span", { id: "predicted" }, String(label))),
      p0.length ? table(p0.map((p, i) => ({ c: names[i] ?? i, p })), [["Class", r => r.c], ["Probability", r => Number(r.p).toFixed(4)],
        ["", r => el("span", { class: "bar", style: "display:block;width:120px" }, el("span", { style: `width:${100 * r.p}%` }))]], "", true) : "");
  }

  async function predict(inputs) {
    showPrediction(await api("POST", `/deployments/${P.deployment}/predict`, { inputs }));
    [1200, 3500].forEach(ms => setTimeout(loadUsage, ms));  // usage counts reach the hub within ~1 s
  }

  function setupTryIt(d) {
    const sig = d.signature || {};
    const shape = ((sig.inputs || [])[0] || {}).shape || [];
    const cols = sig.raw_columns || (shape.length === 2 && shape[1] > 0 ? Array.from({ length: shape[1] }, (_, i) => `x${i}`) : []);
    // a real row recorded with the version (signature.example) when there is one, else zeros
    const example = Array.isArray(sig.example) && sig.example.length === cols.length ? sig.example : cols.map(() => 0);
    const fields = document.getElementById("feature-fields");
    fields.replaceChildren(...cols.map((c, i) => el("label", {}, c.replace(/_/g, " "),
      el("input", { name: c, type: "number", step: "any", value: String(example[i]), required: true }))));
    document.getElementById("json-inputs").value = JSON.stringify([example]);
    if (shape.length === 4) {
      document.getElementById("image-tab").hidden = false;
      document.querySelector('[data-tab="image-pane"]').click();
    } else if (!cols.length) document.querySelector('[data-tab="json-pane"]').click();
    // a new try replaces what the last one showed: its prediction, or its error in another tab's form
    const fresh = fn => async (v, form) => {
      document.getElementById("prediction").replaceChildren();
      document.querySelectorAll("#features-pane .error-slot, #json-pane .error-slot, #image-pane .error-slot").forEach(b => b.replaceChildren());
      await fn(v, form);
    };
    C.onSubmit("features-pane", fresh(async v => predict([cols.map(c => Number(v[c]))])));
    C.onSubmit("json-pane", fresh(async v => {
      let inputs;
      try { inputs = JSON.parse(v.inputs); } catch (e) { throw new C.ApiError(0, `the inputs are not valid JSON (${e.message})`, "write a list of rows, e.g. [[1.5, 2, 0.3]]"); }
      await predict(inputs);
    }));
    C.onSubmit("image-pane", fresh(async (v, form) => {
      const file = form.image.files[0];
      await predict([await C.imagePixels(file, shape.slice(1), Number(v.scale) || 255)]);
    }));
  }

  async function loadUsage() {
    const minutes = document.getElementById("minutes").value;
    fill("usage", async () => {
      const u = await api("GET", `/deployments/${P.deployment}/usage?minutes=${minutes}`);
      const orgs = [...new Set(u.per_minute.map(r => r.org))];
      const by = o => u.per_minute.filter(r => r.org === o);
      // each minute's bar is centred in its minute, and the axis runs over whole minutes, from the start of the
      // first to the end of the current one: no bar is cut at an edge; markers are drawn past the plot area
      const MIN = 60000, now = Date.now(), end = Math.ceil((now + 1) / MIN) * MIN, start = end - (Number(minutes) + 1) * MIN;
      const mid = r => new Date(new Date(r.minute).getTime() + MIN / 2);
      const xaxis = { type: "date", range: [new Date(start - MIN / 2), new Date(end + MIN / 2)] }, yaxis = { rangemode: "tozero" };  // room for markers
      const peak = Math.max(...u.per_minute.map(r => r.latency_max_ms || 0), 0);
      C.plot("usage-chart", orgs.map(o => ({ type: "bar", name: o, width: 0.9 * MIN, x: by(o).map(mid), y: by(o).map(r => r.count) })),
        C.chartLayout("Calls per minute", { barmode: "stack", bargap: 0, xaxis, yaxis: { ...yaxis, tickformat: ",d",  // whole calls
          dtick: Math.max(...u.per_minute.map(r => r.count), 0) <= 5 ? 1 : undefined } }));
      C.plot("latency-chart", orgs.flatMap(o => [{ name: `${o} mean`, mode: "lines+markers", cliponaxis: false, x: by(o).map(mid), y: by(o).map(r => r.latency_mean_ms) },
        { name: `${o} max`, mode: "markers", cliponaxis: false, marker: { symbol: "triangle-up", size: 9 }, x: by(o).map(mid), y: by(o).map(r => r.latency_max_ms) }]),
        C.chartLayout("Latency per minute (ms)", { xaxis, yaxis: { ...yaxis, range: [0, peak ? peak * 1.15 : 1] } }));
      return table(Object.entries(u.totals).map(([org, t]) => ({ org, ...t })), [["Organization", r => r.org], ["Calls", r => num(r.count)],
        ["Errors", r => num(r.errors)], ["Rejected (quota)", r => num(r.rejected)]], "No calls in this period.");
    }, true);
  }

  function loadGrants() {
    if (!document.getElementById("grants")) return;
    fill("grants", async () => {
      const rows = C.items(await api("GET", "/grants?direction=given")).filter(g => g.resource_type === "deployment" && g.resource_id === dep.id);
      const names = await C.projectNames();
      return table(rows, [["Organization", g => C.grantee(g, names)], ["Quota", g => Object.entries(g.limits || {}).map(([k, v]) => `${v} ${k.replace("_", " ")}`).join(", ") || "none"],
        ["Since", g => date(g.created_at)], ["State", g => badge(g.state)],
        ["", g => g.state === "active" && ["admin", "owner"].includes(P.role) ? el("button", { class: "danger", onclick: async ev => {
          ev.target.disabled = true;
          try { await api("DELETE", `/grants/${g.id}`); loadGrants(); } catch (err) { C.showError(null, err); }
        } }, "Revoke") : ""]], "No organization may invoke it yet.");
    });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    // the Features / JSON / Image tabs: core.js (role="tab", arrow keys)
    try {
      dep = await api("GET", `/deployments/${P.deployment}`);
      document.getElementById("dep-sub").textContent = `${dep.model} ${dep.alias ? `@${dep.alias} → ` : ""}v${dep.version} · ${dep.task || ""} · owned by ${dep.org}`;
      setupTryIt(dep);
    } catch (err) { C.showError("prediction", err); return; }
    document.getElementById("minutes").addEventListener("change", loadUsage);
    loadUsage();
    setInterval(loadUsage, 15000);
    M.deploymentPanels(P.deployment);
    loadGrants();
    const gsel = document.getElementById("grant-org");
    if (gsel) {
      api("GET", "/orgs?limit=1000").then(C.items).then(orgs => gsel.replaceChildren(...orgs.filter(o => o.name !== P.org).map(o => el("option", { value: o.name }, o.display_name || o.name))));
      C.onSubmit("grant-form", async v => {
        await api("POST", "/grants", { resource_type: "deployment", resource: dep.id, permission: "invoke", grantee_org: v.grantee_org,
          limits: { per_minute: Number(v.per_minute), per_day: Number(v.per_day) } });
        C.flash(`${v.grantee_org} may now invoke ${P.deployment}.`);
        loadGrants();
      });
    }
    const undeploy = document.getElementById("undeploy");
    if (undeploy) undeploy.addEventListener("click", async () => {
      if (!confirm(`Undeploy ${P.deployment}? Calls to it will fail and its invoke grants are revoked.`)) return;
      try { await api("DELETE", `/deployments/${P.deployment}`); location.href = "/deployments"; } catch (err) { C.showError(null, err); }
    });
  });
})();
