/* One job, watched live: polls /api/v1/jobs/{id}/events; epoch or round progress, a loss curve
   (plotly), per-organization metrics per round for federated jobs, the log, the result; cancel. */
"use strict";
(() => {
  const { el, api, badge, num, table, link } = C;
  const P = C.page();
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  const epochs = { x: [], loss: [], val: [], acc: [] };
  const rounds = [];  // {round, nodes: {org: {...}}, global}
  let after = 0, state = "", drawn = 0, drawnRounds = 0;

  function setProgress(done, total, text) {
    document.getElementById("progress-bar").style.width = total ? `${Math.min(100, 100 * done / total)}%` : "0";
    document.getElementById("progress-text").textContent = text;
  }

  function onEvent(e) {
    const d = e.data || {};
    if (e.kind === "log") {
      const log = document.getElementById("log");
      log.textContent += `${new Date(e.time).toLocaleTimeString()}  ${d.message || JSON.stringify(d)}\n`;
      log.scrollTop = log.scrollHeight;
      return;
    }
    if (e.kind === "state") { state = d.state || state; return; }
    if (d.stage) document.getElementById("stage").textContent = `Stage: ${d.stage}`;
    if (d.round !== undefined && (d.nodes || d.global)) {
      rounds.push({ round: d.round, nodes: d.nodes || {}, global: d.global || null, loss: d.train_loss });
      setProgress(d.round, d.rounds || 0, `round ${d.round}${d.rounds ? ` of ${d.rounds}` : ""}`);
    } else if (d.epoch !== undefined && d.loss !== undefined) {
      epochs.x.push(d.epoch); epochs.loss.push(d.loss); epochs.val.push(d.val_loss ?? null); epochs.acc.push(d.val_accuracy ?? null);
      setProgress(d.epoch, d.epochs || 0, `epoch ${d.epoch}${d.epochs ? ` of ${d.epochs}` : ""} · loss ${num(d.loss)}`);
    }
  }

  function draw() {
    if (epochs.x.length !== drawn) {
      drawn = epochs.x.length;
      const traces = [{ x: epochs.x, y: epochs.loss, name: "training loss", mode: "lines+markers" }];
      if (epochs.val.some(v => v !== null)) traces.push({ x: epochs.x, y: epochs.val, name: "validation loss", mode: "lines+markers" });
      C.plot("loss-chart", traces, C.chartLayout("Loss by epoch", { xaxis: { title: { text: "epoch" } } }));
    }
    if (rounds.length !== drawnRounds) {
      drawnRounds = rounds.length;
      document.getElementById("fed-card").hidden = false;
      document.getElementById("fed-table-card").hidden = false;
      const orgs = [...new Set(rounds.flatMap(r => Object.keys(r.nodes)))];
      const metric = rounds.some(r => Object.values(r.nodes).some(n => n.eval_accuracy !== undefined)) ? "eval_accuracy" : "accuracy";
      const traces = orgs.map(o => ({ x: rounds.map(r => r.round), y: rounds.map(r => (r.nodes[o] || {})[metric] ?? null), name: o, mode: "lines+markers" }));
      if (rounds.some(r => r.global && r.global.accuracy !== undefined))
        traces.push({ x: rounds.map(r => r.round), y: rounds.map(r => (r.global || {}).accuracy ?? null), name: "global model", mode: "lines", line: { dash: "dash" } });
      C.plot("fed-chart", traces, C.chartLayout(`Per-organization ${metric.replace("_", " ")} by round`, { xaxis: { title: { text: "round" } } }));
      if (!epochs.x.length) C.plot("loss-chart", orgs.map(o => ({ x: rounds.map(r => r.round), y: rounds.map(r => (r.nodes[o] || {}).loss ?? null), name: o, mode: "lines+markers" })),
        C.chartLayout("Training loss by round", { xaxis: { title: { text: "round" } } }));
      document.getElementById("fed-table").replaceChildren(table(rounds.flatMap(r => Object.entries(r.nodes).map(([o, n]) => ({ round: r.round, org: o, ...n }))), [
        ["Round", x => x.round], ["Organization", x => x.org], ["Examples", x => num(x.num_examples)], ["Loss", x => num(x.loss)],
        ["Accuracy", x => num(x.accuracy)], ["Eval accuracy", x => num(x.eval_accuracy)], ["ε", x => num(x.epsilon, 2)]]));
    }
  }

  function showJob(job) {
    document.getElementById("job-state").replaceChildren(badge(job.state));
    document.getElementById("job-sub").textContent = `${job.recipe && job.recipe.federated ? "federated " : ""}${job.kind} job · ${job.id}`;
    document.getElementById("recipe").textContent = JSON.stringify(job.recipe, null, 2);
    const cancel = document.getElementById("cancel");
    if (cancel) cancel.hidden = !P.own || TERMINAL.includes(job.state) || job.cancel_requested;
    const box = document.getElementById("result");
    if (job.state === "succeeded") {
      document.getElementById("stage").textContent = "Finished";
      document.getElementById("progress-bar").style.width = "100%";
      const r = job.result || {};
      box.replaceChildren(el("div", { class: "flash ok", id: "job-done" }, "Training finished. ",
        r.model ? link(`/models/${r.model}/versions/${r.version}`, `Model ${r.model} version ${r.version}`) : ""),
        table(Object.entries(r.metrics || {}).map(([k, v]) => ({ k, v, cv: (r.cv || {})[k] })),
          [["Metric", x => x.k.replace(/_/g, " ")], ["Test", x => num(x.v)], ["Cross-validation", x => x.cv ? `${num(x.cv.mean)} ± ${num(x.cv.std)}` : "—"]]));
    } else if (job.state === "failed") {
      document.getElementById("stage").textContent = "Failed";
      box.replaceChildren(C.errorBox({ message: job.error || "the job failed", hint: "see the log below" }));
    } else if (job.state === "cancelled") {
      document.getElementById("stage").textContent = "Cancelled";
    }
  }

  async function poll() {
    try {
      for (;;) {
        const evs = await api("GET", `/jobs/${P.job}/events?after=${after}&limit=1000`);
        evs.forEach(e => { after = Math.max(after, e.id); onEvent(e); });
        if (evs.length < 1000) break;
      }
      draw();
      const job = await api("GET", `/jobs/${P.job}`);
      showJob(job);
      if (!TERMINAL.includes(job.state)) setTimeout(poll, 1000);
    } catch (err) { C.showError(null, err); setTimeout(poll, 5000); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const cancel = document.getElementById("cancel");
    if (cancel) cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try { showJob(await api("POST", `/jobs/${P.job}/cancel`)); C.flash("Cancel requested; the job stops at its next check."); }
      catch (err) { C.showError(null, err); cancel.disabled = false; }
    });
    poll();
  });
})();
