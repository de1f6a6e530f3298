/* Audit log: filter events (hide reads), page back through older ones, names for the ids; verify the
   whole hash chain and show the result. */
"use strict";
(() => {
  const { el, api, table, badge, date, fill } = C;
  const READ = /^(get_|list_|ui\.|preview_|download_|read_)|(_events|_report|_audit|_usage|_timeseries|\.list|\.get)$/;
  const CURSOR = "cursor";  // the API's cursor pagination: each page answers next_cursor

  /* names for the ids in events: organizations (all), users (your organization's members), and the
     resources the caller can list; an id the caller cannot name stays an id */
  const list = path => api("GET", path).then(C.items).catch(() => []);
  const names = Promise.all([list("/orgs"), list("/members"), list("/datasets"), list("/models"), list("/deployments"),
    list("/jobs?limit=100"), list("/projects"), list("/tokens")])
    .then(([orgs, members, datasets, models, deployments, jobs, projects, tokens]) => {
      const of = (rows, key, name) => Object.fromEntries(rows.map(r => [r[key], name(r)]));
      return { orgs: of(orgs, "id", o => o.name), users: of(members, "user_id", m => m.email),
        resources: { ...of(orgs, "id", o => o.name), ...of(datasets, "id", d => d.full_name), ...of(models, "id", m => m.name),
          ...of(deployments, "id", d => d.name), ...of(jobs, "id", j => j.name), ...of(projects, "id", p => p.name),
          ...of(tokens, "id", t => `token ${t.name}`), ...of(members, "user_id", m => m.email) } };
    });

  function who(e, n) {
    if (!e.actor_org_id && !e.actor_user_id) return el("span", { class: "muted" }, "anonymous");
    const org = n.orgs[e.actor_org_id] || e.actor_org_id || "";
    const user = n.users[e.actor_user_id];
    return el("span", { title: [e.actor_org_id, e.actor_user_id].filter(Boolean).join(" · ") }, org, user ? el("div", { class: "muted small" }, user) : null);
  }

  const LINKS = { job: id => `/jobs/${id}`, deployment: (id, name) => `/deployments/${name}`, project: (id, name) => `/projects/${name}` };
  function resource(e, n) {
    if (!e.resource_type) return "—";
    const id = e.resource_id || "", name = n.resources[id];
    const href = name && LINKS[e.resource_type] ? LINKS[e.resource_type](id, name) : null;
    const shown = name ? (href ? C.link(href, name) : name) : el("span", { class: "mono wrap" }, id);
    return el("span", { title: id, class: "resource" }, el("span", { class: "muted" }, `${e.resource_type.replace(/_/g, " ")} `), shown);
  }

  function details(d) {  // {"version": 1, "rows_shown": 8} -> "version 1 · rows shown 8"
    const text = Object.entries(d || {}).map(([k, v]) => `${k.replace(/_/g, " ")} ${v !== null && typeof v === "object"
      ? (Array.isArray(v) ? v.join(", ") : Object.keys(v).join(", ")) : v}`).join(" · ");
    return text.length > 240 ? text.slice(0, 237) + "…" : text;
  }

  let events = [], cursor = null, query = null;

  function gapNote(others, reads) {
    const parts = [];
    const filtered = query && (query.get("action") || query.get("outcome"));
    if (others) parts.push(`${others.toLocaleString("en-US")} event${others === 1 ? "" : "s"} ${filtered ? "outside the filter, or " : ""}of other organizations' activity, not shown to you`);
    if (reads) parts.push(`${reads.toLocaleString("en-US")} read${reads === 1 ? "" : "s"} hidden`);
    return el("tr", { class: "gap" }, el("td", { colspan: "7", class: "muted small" }, `⋯ ${parts.join("; ")}`));
  }

  async function render() {
    const n = await names;
    const hide = document.getElementById("hide-reads").checked;
    const shown = [], gaps = new Map();  // shown event -> [other organizations' events, reads] just above it
    let others = 0, reads = 0, prev = null;
    for (const e of events) {
      if (prev && prev.seq - e.seq > 1) others += prev.seq - e.seq - 1;  // seq numbers the whole hub's chain
      prev = e;
      if (hide && READ.test(e.action)) { reads++; continue; }
      if (others || reads) gaps.set(e, [others, reads]);
      shown.push(e); others = 0; reads = 0;
    }
    const t = table(shown, [
      ["#", e => e.seq], ["When", e => el("span", { title: e.time }, date(e.time))], ["Who", e => who(e, n)],
      ["Action", e => el("span", { class: "mono" }, e.action)],
      ["Outcome", e => badge(e.outcome === "ok" ? "ok" : e.outcome)], ["Resource", e => resource(e, n)],
      ["Details", e => el("span", { class: "small" }, details(e.details))]], hide ? "No events match (reads are hidden)." : "No events match.");
    const tbl = t.querySelector("table");
    if (tbl) {
      tbl.classList.add("audit");
      const rows = [...tbl.tBodies[0].rows];
      rows.forEach((tr, i) => {
        [0, 1, 2, 4].forEach(c => tr.cells[c].classList.add("nowrap"));
        tr.cells[6].classList.add("details");
        const g = gaps.get(shown[i]);
        if (g) tr.before(gapNote(...g));
      });
      if (others || reads) tbl.tBodies[0].append(gapNote(others, reads));
    }
    const note = el("p", { class: "muted small", id: "audit-note" }, "Event numbers count every event on the hub, in one chain; ",
      "a gap means events of other organizations' activity (or reads, when hidden) in between. ",
      `Showing ${shown.length.toLocaleString("en-US")} of the ${events.length.toLocaleString("en-US")} events loaded.`);
    const more = cursor ? el("div", { class: "pager" }, el("button", { type: "button", id: "older", onclick: older }, "Load older events")) :
      el("p", { class: "muted small", id: "audit-end" }, events.length ? "No older events." : "");
    return el("div", {}, note, t, more);
  }

  async function older(ev) {
    ev.target.disabled = true;
    try { await page(); document.getElementById("events").replaceChildren(await render()); }
    catch (err) { C.showError("events", err); }
  }

  async function page() {
    const q = new URLSearchParams(query);
    if (cursor) q.set(CURSOR, cursor);
    const out = await api("GET", `/audit?${q}`);
    events = events.concat(C.items(out));
    cursor = C.nextCursor(out);
  }

  function load(v) {
    query = new URLSearchParams({ limit: v.limit || "100" });
    if (v.action) query.set("action", v.action);
    if (v.outcome) query.set("outcome", v.outcome);
    events = []; cursor = null;
    return fill("events", async () => { await page(); return render(); });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("audit-filter");
    C.onSubmit(form, async v => load(v));
    document.getElementById("hide-reads").addEventListener("change", () => fill("events", render, true));
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
