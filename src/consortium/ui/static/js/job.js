/* One job, watched live from /api/v1/jobs/{id}/stream (server-sent events); epoch, round or tuning-child progress,
   a loss curve and a tuning job's reward by child (plotly), per-organization metrics per round for federated jobs, the log, the result; cancel. */
"use strict";
(() => {
  const { el, api, badge, num, table, link } = C;
  const P = C.page();
  const TERMINAL = ["succeeded", "failed", "cancelled"];
  const epochs = { x: [], loss: [], val: [], acc: [] };
  const children = { x: [], reward: [], best: [] };  // tuning: each child's reward and the best so far
  let bestChild = null;
  const rounds = [];  // {round, nodes: {org: {loss, num_examples, eval_loss, accuracy}}, missing, loss, accuracy, train_loss}
  let after = 0, state = "", drawn = 0, drawnRounds = 0, drawnChildren = 0;

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
    if (d.round !== undefined && Array.isArray(d.nodes)) {  // round 0: the organizations' nodes connected
      setProgress(0, d.rounds || 0, `${d.nodes.length} organizations connected · round 0${d.rounds ? ` of ${d.rounds}` : ""}`);
    } else if (d.round !== undefined && d.nodes) {
      rounds.push({ round: d.round, nodes: d.nodes, missing: d.missing || [], loss: d.loss ?? null,
                    accuracy: d.accuracy ?? null, train_loss: d.train_loss ?? null });
      setProgress(d.round, d.rounds || 0, `round ${d.round}${d.rounds ? ` of ${d.rounds}` : ""}`);
    } else if (d.trial && typeof d.trial === "object") {
      const t = d.trial;
      children.x.push(t.number + 1); children.reward.push(t.reward ?? null); children.best.push(t.best_reward ?? null);
      if (t.best_params) bestChild = { number: t.best_number, reward: t.best_reward, params: t.best_params };
      setProgress(t.number + 1, d.trials || 0, `child ${t.number + 1}${d.trials ? ` of ${d.trials}` : ""} · reward ${num(t.reward)} · best ${num(t.best_reward)}`);
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
      C.plot("loss-chart", traces, C.chartLayout("Loss by epoch"));
    }
    if (children.x.length !== drawnChildren) {
      drawnChildren = children.x.length;
      document.getElementById("tune-card").hidden = false;
      C.plot("tune-chart", [{ x: children.x, y: children.reward, name: "child's reward", mode: "markers" },
        { x: children.x, y: children.best, name: "best so far", mode: "lines", line: { shape: "hv" } }],
        C.chartLayout("Tuning: reward by child", { xaxis: { dtick: 1 } }));
      if (bestChild) document.getElementById("tune-best").replaceChildren(`Best so far: child ${bestChild.number} (reward ${num(bestChild.reward)}) with `,
        el("code", {}, Object.entries(bestChild.params).map(([k, v]) => `${k}=${v}`).join(", ")));
    }
    if (rounds.length !== drawnRounds) {
      drawnRounds = rounds.length;
      drawRounds();
    }
  }

  /* federated: one trace per organization plus the global model, and a table round by round */
  function drawRounds() {
    document.getElementById("fed-card").hidden = false;
    document.getElementById("fed-table-card").hidden = false;
    const orgs = [...new Set(rounds.flatMap(r => [...Object.keys(r.nodes), ...r.missing]))].sort();
    const x = rounds.map(r => r.round), axis = { xaxis: { dtick: 1 } };  // the title names the axis
    const perOrg = key => orgs.map(o => ({ x, y: rounds.map(r => (r.nodes[o] || {})[key] ?? null), name: o, mode: "lines+markers" }));
    const global = key => ({ x, y: rounds.map(r => r[key]), name: "global model", mode: "lines+markers", line: { dash: "dash", color: "#1d2330" } });
    const hasAcc = rounds.some(r => r.accuracy !== null || Object.values(r.nodes).some(n => n.accuracy !== undefined));
    if (hasAcc) C.plot("fed-chart", [...perOrg("accuracy"), global("accuracy")], C.chartLayout("Accuracy by round", axis));
    else document.getElementById("fed-card").hidden = true;
    if (!epochs.x.length) C.plot("loss-chart", [...perOrg("loss"), global("loss")], C.chartLayout("Loss by round", axis));
    const dp = rounds.some(r => Object.values(r.nodes).some(n => n.epsilon !== undefined));
    const pick = roundPicker(x), shown = rounds.filter(r => pick === "all" || r.round === (pick === "latest" ? x[x.length - 1] : Number(pick)));
    const rows = shown.slice().reverse().flatMap(r => [
      ...orgs.filter(o => r.nodes[o] || r.missing.includes(o)).map(o => ({ round: r.round, org: o, ...(r.nodes[o] || { missed: true }) })),
      { round: r.round, org: "global model", global: true, num_examples: Object.values(r.nodes).reduce((a, n) => a + (n.num_examples || 0), 0),
        loss: r.train_loss, eval_loss: r.loss, accuracy: r.accuracy }]);
    const missed = x => x.missed ? el("span", { class: "badge bad" }, "no reply this round") : null;
    document.getElementById("fed-table").replaceChildren(table(rows, [
      ["Round", x => x.round], ["Organization", x => x.global ? el("strong", {}, x.org) : x.org],
      ["Samples", x => missed(x) || num(x.num_examples)], ["Training loss", x => num(x.loss)],
      ["Loss", x => num(x.eval_loss)], ["Accuracy", x => num(x.accuracy)],
      ...(dp ? [["ε spent", x => num(x.epsilon, 2)]] : [])]));
  }

  /* which rounds the table shows: the latest (default, follows a running job), one round, or all */
  function roundPicker(x) {
    const sel = document.getElementById("round-pick");
    const keep = sel.value || "latest";
    sel.replaceChildren(el("option", { value: "latest" }, "latest round"), el("option", { value: "all" }, "all rounds"),
      ...x.slice().reverse().map(r => el("option", { value: String(r) }, `round ${r}`)));
    sel.value = [...sel.options].some(o => o.value === keep) ? keep : "latest";
    return sel.value;
  }

  function tested(n) { return typeof n === "number" ? `Test (${num(n)} rows)` : "Test"; }

  function showJob(job) {
    document.getElementById("job-state").replaceChildren(badge(job.state));
    const sub = document.getElementById("job-sub");
    sub.replaceChildren(`${job.kind === "federated" ? "federated" : "training"} job · ${job.id}`);
    if (job.project_id) C.projectNames().then(names => sub.append(" · in ", C.grantee({ grantee_project_id: job.project_id }, names)));
    document.getElementById("job-times").replaceChildren([`queued ${C.date(job.created_at)}`,
      job.started_at ? `started ${C.date(job.started_at)}` : "not started yet",
      job.finished_at ? `finished ${C.date(job.finished_at)}` : "",
      job.started_at ? `${job.finished_at ? "took" : "running for"} ${C.duration(job.started_at, job.finished_at)}` : ""].filter(Boolean).join(" · "));
    const cancel = document.getElementById("cancel");
    if (cancel) cancel.hidden = !P.own || TERMINAL.includes(job.state) || job.cancel_requested;
    const box = document.getElementById("result");
    if (job.state === "succeeded") {
      document.getElementById("stage").textContent = "Finished";
      document.getElementById("progress-bar").style.width = "100%";
      const r = job.result || {};
      box.replaceChildren(el("div", { class: "flash ok", id: "job-done" }, "Training finished. ",
        r.model ? link(`/models/${r.model}/versions/${r.version}`, `Model ${r.model} version ${r.version}`) : ""),
        table(Object.entries(r.metrics || {}).filter(([k]) => k !== "num_examples").map(([k, v]) => ({ k, v, cv: (r.cv || {})[k] })),
          [["Metric", x => x.k.replace(/_/g, " ")], [tested((r.metrics || {}).num_examples), x => num(x.v)],
           ["Cross-validation", x => x.cv ? `${num(x.cv.mean)} ± ${num(x.cv.std)}` : "—"]], "", true));
    } else if (job.state === "failed") {
      document.getElementById("stage").textContent = "Failed";
      box.replaceChildren(C.errorBox({ message: job.error || "the job failed", hint: "see the log below" }));
    } else if (job.state === "cancelled") {
      document.getElementById("stage").textContent = "Cancelled";
    }
  }

  // One server-sent event stream per page view (one audited read) instead of a poll a second.
  // EventSource reconnects by itself and resumes after the last event id it saw.
  let pending = null;
  function later() { if (!pending) pending = setTimeout(() => { pending = null; draw(); }, 200); }

  async function refresh() {
    try { showJob(await api("GET", `/jobs/${P.job}`)); } catch (err) { C.showError(null, err); }
  }

  function watch() {
    const es = new EventSource(`/api/v1/jobs/${P.job}/stream?after=${after}`);
    const handle = ev => {
      const e = JSON.parse(ev.data);
      if (e.id <= after) return;
      after = e.id;
      onEvent(e);
      if (e.kind === "state") refresh();
      later();
    };
    ["progress", "log", "state", "message"].forEach(kind => es.addEventListener(kind, handle));
    es.addEventListener("end", () => { es.close(); draw(); refresh(); });
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) {  // refused (e.g. the session ended): say why
        refresh();
        setTimeout(watch, 5000);
      }
    };
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("round-pick").addEventListener("change", drawRounds);
    const cancel = document.getElementById("cancel");
    if (cancel) cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      try { showJob(await api("POST", `/jobs/${P.job}/cancel`)); C.flash("Cancel requested; the job stops at its next check."); }
      catch (err) { C.showError(null, err); cancel.disabled = false; }
    });
    refresh();
    watch();
  });
})();
