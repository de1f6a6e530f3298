/* Audit log: filter events; verify the whole hash chain and show the result. */
"use strict";
(() => {
  const { el, api, table, badge, date, fill } = C;

  /* names for the ids in events: organizations (all), users (your organization's members) */
  const names = Promise.all([api("GET", "/orgs").catch(() => []), api("GET", "/members").catch(() => [])])
    .then(([orgs, members]) => ({ orgs: Object.fromEntries(orgs.map(o => [o.id, o.name])),
                                  users: Object.fromEntries(members.map(m => [m.user_id, m.email])) }));

  function who(e, n) {
    if (!e.actor_org_id && !e.actor_user_id) return el("span", { class: "muted" }, "anonymous");
    const org = n.orgs[e.actor_org_id] || e.actor_org_id || "";
    const user = n.users[e.actor_user_id];
    return el("span", {}, org, user ? el("div", { class: "muted small" }, user) : null);
  }

  function details(d) {  // {"version": 1, "rows_shown": 8} -> "version 1 · rows shown 8"
    const text = Object.entries(d || {}).map(([k, v]) => `${k.replace(/_/g, " ")} ${v !== null && typeof v === "object"
      ? (Array.isArray(v) ? v.join(", ") : Object.keys(v).join(", ")) : v}`).join(" · ");
    return text.length > 160 ? text.slice(0, 157) + "…" : text;
  }

  function load(v) {
    const q = new URLSearchParams({ limit: v.limit || "100" });
    if (v.action) q.set("action", v.action);
    if (v.outcome) q.set("outcome", v.outcome);
    fill("events", async () => {
      const [events, n] = await Promise.all([api("GET", `/audit?${q}`), names]);
      return table(events, [
        ["#", e => e.seq], ["When", e => date(e.time)], ["Who", e => who(e, n)], ["Action", e => e.action],
        ["Outcome", e => badge(e.outcome === "ok" ? "ok" : e.outcome)],
        ["Resource", e => e.resource_type ? el("span", {}, `${e.resource_type} `, el("span", { class: "mono" }, e.resource_id || "")) : "—"],
        ["Details", e => el("span", { class: "small" }, details(e.details))]], "No events match.");
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("audit-filter");
    C.onSubmit(form, async v => load(v));
    load(C.formData(form));
    const btn = document.getElementById("verify");
    btn.addEventListener("click", async () => {
      btn.disabled = true;
      const box = document.getElementById("verify-result");
      try {
        const r = await api("GET", "/audit/verify");
        box.replaceChildren(el("div", { class: `flash ${r.ok ? "ok" : "bad"}`, id: "verify-outcome" }, r.ok
          ? `Audit chain intact: ${r.events.toLocaleString()} events verified in ${r.seconds} s.`
          : `Audit chain broken at event ${r.first_bad_seq}: ${r.problem}`));
      } catch (err) { box.replaceChildren(C.errorBox(err)); }
      finally { btn.disabled = false; }
    });
  });
})();
