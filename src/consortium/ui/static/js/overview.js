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
  fill("grants-given", async () => grantTable(C.items(await api("GET", "/grants?direction=given")), true, admin, await C.projectNames()));
  fill("grants-received", async () => grantTable(C.items(await api("GET", "/grants?direction=received"))
    .filter(g => g.owner_org !== C.page().org), false, false, await C.projectNames()));  // own data shared with a project: under given
}

function day(s) { return s ? new Date(s).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" }) : "never"; }

/* tokens, a page of TOKENS_PER_PAGE at a time: pages the API's cursor when it answers one, else the list */
const TOKENS_PER_PAGE = 20;
let tokenRows = [], tokenCursor = null, tokenPage = 0;
async function tokensUpTo(n) {
  while (tokenRows.length < n && tokenCursor) {
    const out = await api("GET", `/tokens?limit=${TOKENS_PER_PAGE}&cursor=${encodeURIComponent(tokenCursor)}`);
    tokenRows = tokenRows.concat(C.items(out));
    tokenCursor = C.nextCursor(out);
  }
}
function tokenPager() {
  const pages = Math.max(1, Math.ceil(tokenRows.length / TOKENS_PER_PAGE)), more = !!tokenCursor;
  const go = async to => { await tokensUpTo((to + 1) * TOKENS_PER_PAGE); tokenPage = to; fill("tokens", tokensTable, true); };
  return tokenRows.length > TOKENS_PER_PAGE || more ? el("div", { class: "pager", id: "tokens-pager" },
    el("button", { type: "button", id: "tokens-prev", disabled: tokenPage === 0, onclick: () => go(tokenPage - 1) }, "← Newer"),
    el("span", { class: "muted small", id: "tokens-page" }, `page ${tokenPage + 1} of ${pages}${more ? "+" : ""} · ${tokenRows.length.toLocaleString("en-US")}${more ? "+" : ""} tokens`),
    el("button", { type: "button", id: "tokens-next", disabled: tokenPage + 1 >= pages && !more, onclick: () => go(tokenPage + 1) }, "Older →")) : "";
}
function loadTokens() {
  fill("tokens", async () => {
    const out = await api("GET", `/tokens?limit=${TOKENS_PER_PAGE}`);
    tokenRows = C.items(out); tokenCursor = C.nextCursor(out);
    tokenPage = Math.min(tokenPage, Math.max(0, Math.ceil(tokenRows.length / TOKENS_PER_PAGE) - 1));
    return tokensTable();
  });
}
async function tokensTable() {
  const admin = ["admin", "owner"].includes(C.page().role);
  const shown = tokenRows.slice(tokenPage * TOKENS_PER_PAGE, (tokenPage + 1) * TOKENS_PER_PAGE);
  return el("div", {}, table(shown, [
    ["Name", t => t.name], ["Prefix", t => el("code", {}, t.prefix)], ["Role", t => t.role],
    ["Expires", t => day(t.expires_at)],
    ["State", t => badge(t.revoked_at ? "revoked" : "active")],
    ...(admin ? [["", t => t.revoked_at ? "" : el("button", { class: "danger", onclick: async ev => {
      ev.target.disabled = true;
      try { await api("DELETE", `/tokens/${t.id}`); loadTokens(); C.flash(`Token ${t.name} revoked.`); }
      catch (err) { C.showError(null, err); ev.target.disabled = false; }
    } }, "Revoke")]] : []),
  ], "No tokens."), tokenPager());
}

const ROLES = ["viewer", "member", "admin", "owner"];
/* members: admins change a role in place (PATCH /members/{id}); the API refuses what the caller may not do */
function loadMembers() {
  const P = C.page(), admin = ["admin", "owner"].includes(P.role);
  fill("members", async () => table(C.items(await api("GET", "/members")), [
    ["Member", m => el("span", {}, m.name && m.name !== m.email ? [m.name, el("div", { class: "muted small" }, m.email)] : m.email)],
    ["Role", m => !admin ? badge(m.role) : el("select", { class: "role-select", "aria-label": `role of ${m.email}`, "data-user": m.user_id,
      onchange: async ev => {
        ev.target.disabled = true;
        try { const r = await api("PATCH", `/members/${m.user_id}`, { role: ev.target.value }); C.flash(`${m.email} is now ${r.role}.`); }
        catch (err) { C.showError(null, err); }
        loadMembers();
      } }, ROLES.map(r => el("option", { value: r, selected: r === m.role }, r)))],
    ["Joined", m => date(m.joined_at)]]));
  if (admin) loadInvitations();
}

function loadInvitations() {
  fill("invitations", async () => {
    const pending = C.items(await api("GET", "/invitations")).filter(i => !i.accepted_at && !i.revoked_at && new Date(i.expires_at) > new Date());
    return table(pending, [["Invited", i => i.email], ["Role", i => badge(i.role)], ["Expires", i => day(i.expires_at)],
      ["", i => el("button", { class: "danger", onclick: async ev => {
        ev.target.disabled = true;
        try { await api("DELETE", `/invitations/${i.id}`); loadInvitations(); C.flash(`Invitation for ${i.email} revoked.`); }
        catch (err) { C.showError(null, err); ev.target.disabled = false; }
      } }, "Revoke")]], "No pending invitations.");
  });
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

  fill("datasets", async () => table(count("datasets", C.items(await api("GET", "/datasets"))).slice(0, 8), [
    ["Dataset", d => link(`/datasets/${d.org}/${d.name}`, d.full_name)],
    ["Versions", d => d.versions], ["Access", d => badge(d.access)]], "No datasets yet: upload one."));
  fill("jobs", async () => table(count("jobs", C.items(await api("GET", "/jobs?limit=8"))), [
    ["Job", j => link(`/jobs/${j.id}`, j.name)], ["State", j => badge(j.state)], ["Created", j => date(j.created_at)]],
    "No jobs yet."));
  fill("models", async () => table(count("models", C.items(await api("GET", "/models"))).slice(0, 8), [
    ["Model", m => link(`/models/${m.name}`, m.name)], ["Versions", m => m.versions],
    ["Aliases", m => Object.entries(m.aliases || {}).map(([a, v]) => `${a}→v${v}`).join(", ") || "—"]], "No models yet."));
  fill("deployments", async () => table(count("deployments", C.items(await api("GET", "/deployments"))).slice(0, 8), [
    ["Deployment", d => link(`/deployments/${d.name}`, d.name)], ["Model", d => `${d.model} v${d.version}`],
    ["Owner", d => d.org]], "No deployments yet."));
  loadMembers();
  C.onSubmit("invite-form", async (v, form) => {
    const inv = await api("POST", "/invitations", { email: v.email, role: v.role, days: Number(v.days || 7) });
    document.getElementById("new-invitation").replaceChildren(el("div", { class: "flash ok", id: "invitation-token" },
      `Invitation for ${inv.email} (${inv.role}). Give them this one-time token; it is shown once: `,
      el("code", { class: "secret" }, inv.token),
      el("div", { class: "small" }, "They accept with: consortium members accept TOKEN (it creates their account if they have none).")));
    form.reset();
    loadInvitations();
  });
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
