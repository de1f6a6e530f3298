/* Projects: list and creation; one project's members, terms, assets (report) and activity (audit). */
"use strict";
(() => {
  const READ = /^(get_|list_|ui\.|preview_|download_)|(_events|_report|_audit|_usage|_timeseries)$/;  // reads, hidden by default
  const { el, api, table, badge, link, date, fill, num } = C;
  const P = C.page();

  function listPage() {
    fill("projects", async () => table(await api("GET", "/projects"), [
      ["Project", p => link(`/projects/${p.ref || p.name}`, p.name)], ["Purpose", p => p.purpose], ["Terms", p => (p.terms || []).join(", ")],
      ["Your role", p => badge(p.your_role || "—")], ["State", p => badge(p.your_state || "—")]], "Your organization is in no project yet."));
    C.onSubmit("project-form", async v => {
      const terms = ["metadata", "compute", "download", "invoke"].filter(t => v[`t_${t}`]);
      const p = await api("POST", "/projects", { name: v.name, purpose: v.purpose, terms });
      location.href = `/projects/${p.ref || p.name}`;
    });
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
        const orgs = await api("GET", "/orgs");
        const inside = new Set(p.members.map(m => m.org));
        const outside = orgs.filter(o => !inside.has(o.name));
        document.getElementById("invite-org").replaceChildren(...outside.map(o => el("option", { value: o.name }, o.display_name || o.name)));
        inv.hidden = !outside.length;  // every organization is in already
      }
    };
    const act = async what => { try { await api("POST", `${base}/${what}`); await load(); C.flash(`Invitation ${what === "accept" ? "accepted" : "declined"}.`); } catch (err) { C.showError(null, err); } };
    try { await load(); } catch (err) { C.showError("members", err); return; }
    C.onSubmit("invite-form", async v => { await api("POST", `${base}/invitations`, { org: v.org }); C.flash(`${v.org} invited.`); await load(); });
    fill("assets", async () => {
      const r = await api("GET", `${base}/report`);
      const part = (title, rows, cols, empty) => el("div", {}, el("h3", {}, title), table(rows, cols, empty));
      return el("div", {}, part("Datasets contributed", r.contributions, [["Organization", c => c.organization],
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
    const activity = async () => {
      const reads = document.getElementById("show-reads").checked;
      const events = (await api("GET", `${base}/audit?limit=${reads ? 50 : 500}`)).filter(e => reads || !READ.test(e.action)).slice(0, 50);
      const names = await C.projectNames();
      return table(events, [["When", e => date(e.time)], ["Action", e => e.action.replace(/_/g, " ")],
        ["Resource", e => !e.resource_type ? "—" : e.resource_type === "job" ? el("span", {}, "job ", link(`/jobs/${e.resource_id}`, e.resource_id))
          : e.resource_type === "project" ? `project ${names[e.resource_id] || e.resource_id}` : `${e.resource_type} ${e.resource_id || ""}`],
        ["Outcome", e => badge(e.outcome)]], reads ? "No activity yet." : "No changes yet: tick the box to see reads too.");
    };
    document.getElementById("show-reads").addEventListener("change", () => fill("activity", activity));
    fill("activity", activity);
  }

  document.addEventListener("DOMContentLoaded", () => { if (P.project) projectPage(); else listPage(); });
})();
