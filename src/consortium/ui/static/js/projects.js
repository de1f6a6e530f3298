/* Projects: list and creation; one project's members, terms, assets (report) and activity (audit). */
"use strict";
(() => {
  const { el, api, table, badge, link, date, fill } = C;
  const P = C.page();

  function listPage() {
    fill("projects", async () => table(await api("GET", "/projects"), [
      ["Project", p => link(`/projects/${p.name}`, p.name)], ["Purpose", p => p.purpose], ["Terms", p => (p.terms || []).join(", ")],
      ["Your role", p => badge(p.your_role || "—")], ["State", p => badge(p.your_state || "—")]], "Your organization is in no project yet."));
    C.onSubmit("project-form", async v => {
      const terms = ["metadata", "compute", "download", "invoke"].filter(t => v[`t_${t}`]);
      const p = await api("POST", "/projects", { name: v.name, purpose: v.purpose, terms });
      location.href = `/projects/${p.name}`;
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
        document.getElementById("invite-org").replaceChildren(...orgs.filter(o => !inside.has(o.name)).map(o => el("option", { value: o.name }, o.display_name || o.name)));
      }
    };
    const act = async what => { try { await api("POST", `${base}/${what}`); await load(); C.flash(`Invitation ${what === "accept" ? "accepted" : "declined"}.`); } catch (err) { C.showError(null, err); } };
    try { await load(); } catch (err) { C.showError("members", err); return; }
    C.onSubmit("invite-form", async v => { await api("POST", `${base}/invitations`, { org: v.org }); C.flash(`${v.org} invited.`); await load(); });
    fill("assets", async () => {
      const r = await api("GET", `${base}/report`);
      const part = (title, rows, cols, empty) => el("div", {}, el("h3", {}, title), table(rows, cols, empty));
      const keys = rows => [...new Set((rows || []).flatMap(x => Object.keys(x)))].slice(0, 6);
      const generic = rows => keys(rows).map(k => [k.replace(/_/g, " "), x => typeof x[k] === "object" ? JSON.stringify(x[k]) : String(x[k] ?? "—")]);
      return el("div", {}, part("Datasets contributed", r.contributions, generic(r.contributions), "No dataset shared with the project yet."),
        part("Jobs", r.jobs, generic(r.jobs), "No job ran in the project yet."),
        part("Models", r.models, generic(r.models), "No model yet."),
        part("Deployment usage", r.deployment_usage, generic(r.deployment_usage), "No deployment calls yet."));
    });
    fill("activity", async () => table(await api("GET", `${base}/audit?limit=50`), [
      ["When", e => date(e.time)], ["Action", e => e.action], ["Resource", e => e.resource_type ? `${e.resource_type} ${e.resource_id || ""}` : "—"],
      ["Outcome", e => badge(e.outcome)]], "No activity yet."));
  }

  document.addEventListener("DOMContentLoaded", () => { if (P.project) projectPage(); else listPage(); });
})();
