/* Organization overview: counts, datasets, jobs, models, deployments, grants, members, tokens. */
"use strict";
const { el, api, table, date, badge, link, fill } = C;

function grantTable(rows, given, admin, projects) {
  return table(rows, [
    ["Resource", g => el("span", {}, el("span", { class: "muted" }, g.resource_type + " "), g.resource)],
    [given ? "To" : "From", g => given ? C.grantee(g, projects)
      : el("span", {}, g.owner_org, g.grantee_project_id ? el("div", { class: "muted small" }, "to ", C.grantee(g, projects)) : null)],
    ["Permission", g => g.permission],
    ["Limits", g => Object.entries(g.limits || {}).map(([k, v]) => `${v} ${k.replace("_", " ")}`).join(", ") || "—"],
    ["State", g => badge(g.state)],
    ...(given && admin ? [["", g => g.state === "active" ? el("button", { class: "danger", onclick: async ev => {
      ev.target.disabled = true;
      try { await api("DELETE", `/grants/${g.id}`); loadGrants(); C.flash(`Grant on ${g.resource} to ${g.grantee_org || "the project"} revoked.`); }
      catch (err) { C.showError(null, err); ev.target.disabled = false; }
    } }, "Revoke") : ""]] : []),
  ], given ? "Your organization has not shared anything." : "No organization has shared anything with you.");
}

function loadGrants() {
  const admin = ["admin", "owner"].includes(C.page().role);
  fill("grants-given", async () => grantTable(await api("GET", "/grants?direction=given"), true, admin, await C.projectNames()));
  fill("grants-received", async () => grantTable((await api("GET", "/grants?direction=received"))
    .filter(g => g.owner_org !== C.page().org), false, false, await C.projectNames()));  // own data shared with a project: under given
}

function day(s) { return s ? new Date(s).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" }) : "never"; }

function loadTokens() {
  const admin = ["admin", "owner"].includes(C.page().role);
  fill("tokens", async () => table(await api("GET", "/tokens"), [
    ["Name", t => t.name], ["Prefix", t => el("code", {}, t.prefix)], ["Role", t => t.role],
    ["Expires", t => day(t.expires_at)],
    ["State", t => badge(t.revoked_at ? "revoked" : "active")],
    ...(admin ? [["", t => t.revoked_at ? "" : el("button", { class: "danger", onclick: async ev => {
      ev.target.disabled = true;
      try { await api("DELETE", `/tokens/${t.id}`); loadTokens(); C.flash(`Token ${t.name} revoked.`); }
      catch (err) { C.showError(null, err); ev.target.disabled = false; }
    } }, "Revoke")]] : []),
  ], "No tokens."));
}

document.addEventListener("DOMContentLoaded", () => {
  const stats = document.getElementById("stats");
  const counts = {};
  const stat = (key, label, href) => {
    const n = el("div", { class: "n" }, counts[key] ?? "…");
    stats.append(el("div", { class: "stat" }, el("a", { href }, n, el("div", { class: "muted" }, label))));
    return n;
  };
  const nodes = { datasets: stat("datasets", "datasets", "/datasets"), models: stat("models", "models", "/models"),
    deployments: stat("deployments", "deployments", "/deployments"), jobs: stat("jobs", "recent jobs", "/jobs") };
  const count = (key, rows) => { nodes[key].textContent = rows.length; return rows; };

  fill("datasets", async () => table(count("datasets", await api("GET", "/datasets")).slice(0, 8), [
    ["Dataset", d => link(`/datasets/${d.org}/${d.name}`, d.full_name)],
    ["Versions", d => d.versions], ["Access", d => badge(d.access)]], "No datasets yet: upload one."));
  fill("jobs", async () => table(count("jobs", await api("GET", "/jobs?limit=8")), [
    ["Job", j => link(`/jobs/${j.id}`, j.name)], ["State", j => badge(j.state)], ["Created", j => date(j.created_at)]],
    "No jobs yet."));
  fill("models", async () => table(count("models", await api("GET", "/models")).slice(0, 8), [
    ["Model", m => link(`/models/${m.name}`, m.name)], ["Versions", m => m.versions],
    ["Aliases", m => Object.entries(m.aliases || {}).map(([a, v]) => `${a}→v${v}`).join(", ") || "—"]], "No models yet."));
  fill("deployments", async () => table(count("deployments", await api("GET", "/deployments")).slice(0, 8), [
    ["Deployment", d => link(`/deployments/${d.name}`, d.name)], ["Model", d => `${d.model} v${d.version}`],
    ["Owner", d => d.org]], "No deployments yet."));
  fill("members", async () => table(await api("GET", "/members"), [
    ["Member", m => el("span", {}, m.name && m.name !== m.email ? [m.name, el("div", { class: "muted small" }, m.email)] : m.email)],
    ["Role", m => badge(m.role)], ["Joined", m => date(m.joined_at)]]));
  loadGrants();
  loadTokens();
  C.onSubmit("token-form", async (v, form) => {
    const t = await api("POST", "/tokens", { name: v.name, days: Number(v.days || 90) });
    document.getElementById("new-token").replaceChildren(el("div", { class: "flash ok", id: "token-secret" },
      "Copy this token now; it will not be shown again:", el("code", { class: "secret" }, t.token)));
    form.reset();
    loadTokens();
  });
});
