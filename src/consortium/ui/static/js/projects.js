/* Projects: list and creation; one project's members, terms, assets (report) and activity (audit). */
"use strict";
(() => {
  const READ = /^(get_|list_|ui\.|preview_|download_)|(_events|_report|_audit|_usage|_timeseries)$/;  // reads, hidden by default
  const { el, api, table, badge, link, date, fill, num } = C;
  const P = C.page();

  function listPage() {
    fill("projects", async () => table(C.items(await api("GET", "/projects")), [
      ["Project", p => link(`/projects/${p.ref || p.name}`, p.name)], ["Purpose", p => p.purpose], ["Terms", p => (p.terms || []).join(", ")],
      ["Your role", p => badge(p.your_role || "—")], ["State", p => badge(p.your_state || "—")]], "Your organization is in no project yet."));
    C.onSubmit("project-form", async v => {
      const terms = ["metadata", "compute", "download", "invoke"].filter(t => v[`t_${t}`]);
      const p = await api("POST", "/projects", { name: v.name, purpose: v.purpose, terms });
      location.href = `/projects/${p.ref || p.name}`;
    });
  }

  /* the project report (what `consortium projects report` prints) as a JSON or CSV file */
  function exportButtons(r) {
    const box = document.getElementById("report-export");
    if (!box || box.childNodes.length) return;
    const save = (name, type, text) => {
      const a = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: name });
      document.body.append(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    };
    const csvCell = v => { const s = v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v);
      return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s; };
    const csv = () => {
      const lines = ["section,key,value"];
      for (const [section, rows] of Object.entries(r)) {
        if (Array.isArray(rows)) rows.forEach((row, i) => Object.entries(row || {}).forEach(([k, v]) => lines.push([section, `${i + 1}.${k}`, v].map(csvCell).join(","))));
        else if (rows && typeof rows === "object") Object.entries(rows).forEach(([k, v]) => lines.push([section, k, v].map(csvCell).join(",")));
        else lines.push([section, "", rows].map(csvCell).join(","));
      }
      return lines.join("\n") + "\n";
    };
    box.replaceChildren(
      el("button", { type: "button", id: "export-json", onclick: () => save(`${P.project}-report.json`, "application/json", JSON.stringify(r, null, 2)) }, "Export JSON"), " ",
      el("button", { type: "button", id: "export-csv", onclick: () => save(`${P.project}-report.csv`, "text/csv", csv()) }, "Export CSV"), " ",
      el("button", { type: "button", onclick: () => window.print() }, "Print"));
  }

  async function projectPage() {
    const base = `/projects/${P.project}`;
    const load = async () => {
      const p = await api("GET", base);
      document.getElementById("purpose").textContent = p.purpose;
      document.getElementById("terms").replaceChildren(el("p", {}, "Members extend these permissions to the project: ",
        ...(p.terms || []).map(t => badge(t))), el("p", { class: "muted small" }, `Default invoke quota: ${Object.entries(p.default_quota || {}).map(([k, v]) => `${v} ${k.replace("_", " ")}`).join(", ") || "none"}`));
      document.getElementById("members").replaceChildren(table(p.members, [["Organization", m => m.org], ["Role", m => badge(m.role)],
        ["State", m => badge(m.state)], ["Joined", m => date(m.joined_at)]]));
      const admin = ["admin", "owner"].includes(P.role);
      const newJob = document.getElementById("project-job");
      if (newJob) newJob.hidden = p.your_state !== "active";
      const actions = document.getElementById("invite-actions");
      actions.replaceChildren();
      if (admin && p.your_state === "invited") actions.append(
        el("button", { class: "primary", onclick: () => act("accept") }, "Accept invitation"), " ",
        el("button", { onclick: () => act("decline") }, "Decline"));
      const inv = document.getElementById("invite-form");
      if (inv && p.your_role === "lead") {
        inv.hidden = false;
        const orgs = C.items(await api("GET", "/orgs?limit=1000"));
        const inside = new Set(p.members.map(m => m.org));
        const outside = orgs.filter(o => !inside.has(o.name));
        document.getElementById("invite-org").replaceChildren(...outside.map(o => el("option", { value: o.name }, o.display_name || o.name)));
        inv.hidden = !outside.length;  // every organization is in already
      }
    };
    const act = async what => { try { await api("POST", `${base}/${what}`); await load(); C.flash(`Invitation ${what === "accept" ? "accepted" : "declined"}.`); } catch (err) { C.showError(null, err); } };
    try { await load(); } catch (err) { C.showError("members", err); return; }
    C.onSubmit("invite-form", async v => { await api("POST", `${base}/invitations`, { org: v.org }); C.flash(`${v.org} invited.`); await load(); });
    const report = api("GET", `${base}/report`);
    fill("assets", async () => {
      const r = await report;
      exportButtons(r);
      const part = (title, rows, cols, empty) => el("div", {}, el("h3", {}, title), table(rows, cols, empty));
      return el("div", { id: "report" }, part("Datasets contributed", r.contributions, [["Organization", c => c.organization],
          ["Resource", c => el("span", {}, el("span", { class: "muted" }, `${c.resource_type} `), c.resource)], ["Permission", c => c.permission],
          ["Since", c => date(c.granted_at)], ["State", c => badge(c.state)]], "No dataset shared with the project yet."),
        part("Jobs", r.jobs, [["Job", j => link(`/jobs/${j.id}`, j.name)], ["Kind", j => j.kind], ["State", j => badge(j.state)],
          ["By", j => j.organization], ["Started", j => date(j.created_at)],
          ["Model", j => j.result && j.result.model ? link(`/models/${j.result.model}/versions/${j.result.version}`, `${j.result.model} v${j.result.version}`) : "—"]],
          "No job ran in the project yet."),
        part("Models", r.models, [["Model", m => link(`/models/${m.model}`, m.model)], ["Latest version", m => m.latest_version],
          ["Organizations", m => (m.organizations || []).join(", ") || "—"], ["Accuracy", m => num(m.accuracy)]], "No model yet."),
        part("Deployment usage", r.deployment_usage, [["Deployment", u => link(`/deployments/${u.deployment}`, u.deployment)],
          ["Caller", u => u.caller], ["Calls", u => num(u.calls)], ["Errors", u => num(u.errors)]], "No deployment calls yet."));
    });
    /* names for the ids in the activity: organizations, the project's jobs, and what the caller can list */
    const list = path => api("GET", path).then(C.items).catch(() => []);
    const lookup = Promise.all([list("/orgs"), list("/deployments"), list("/datasets"), list("/models"), report.catch(() => ({})), C.projectNames()])
      .then(([orgs, deps, datasets, models, r, projects]) => ({
        orgs: Object.fromEntries(orgs.map(o => [o.id, o.name])),
        ids: { ...Object.fromEntries(orgs.map(o => [o.id, o.name])), ...Object.fromEntries(deps.map(d => [d.id, d.name])),
          ...Object.fromEntries(datasets.map(d => [d.id, d.full_name])), ...Object.fromEntries(models.map(m => [m.id, m.name])),
          ...Object.fromEntries((r.jobs || []).map(j => [j.id, j.name])), ...projects } }));
    const activity = async () => {
      const reads = document.getElementById("show-reads").checked;
      const events = C.items(await api("GET", `${base}/audit?limit=${reads ? 50 : 500}`)).filter(e => reads || !READ.test(e.action)).slice(0, 50);
      const n = await lookup;
      const named = e => {
        const id = e.resource_id || "", name = n.ids[id] || (e.details || {}).name;
        const kind = e.resource_type.replace(/_/g, " ");
        if (e.resource_type === "job") return el("span", { title: id }, "job ", link(`/jobs/${id}`, name || id));
        return el("span", { title: id }, `${kind} `, name || el("span", { class: "mono" }, id));
      };
      return table(events, [["When", e => date(e.time)],
        ["Who", e => n.orgs[e.actor_org_id] || (e.actor_org_id ? el("span", { class: "mono" }, e.actor_org_id) : "—")],
        ["Action", e => el("span", { title: e.action }, C.action(e.action))],
        ["Resource", e => !e.resource_type ? "—" : named(e)],
        ["Outcome", e => badge(e.outcome)]], reads ? "No activity yet." : "No changes yet: tick the box to see reads too.");
    };
    document.getElementById("show-reads").addEventListener("change", () => fill("activity", activity));
    fill("activity", activity);
  }

  document.addEventListener("DOMContentLoaded", () => { if (P.project) projectPage(); else listPage(); });
})();
