/* Audit log: filter events; verify the whole hash chain and show the result. */
"use strict";
(() => {
  const { el, api, table, badge, date, fill } = C;

  function load(v) {
    const q = new URLSearchParams({ limit: v.limit || "100" });
    if (v.action) q.set("action", v.action);
    if (v.outcome) q.set("outcome", v.outcome);
    fill("events", async () => table(await api("GET", `/audit?${q}`), [
      ["#", e => e.seq], ["When", e => date(e.time)], ["Action", e => e.action], ["Outcome", e => badge(e.outcome === "ok" ? "ok" : e.outcome)],
      ["Resource", e => e.resource_type ? `${e.resource_type} ${e.resource_id || ""}` : "—"],
      ["Details", e => el("code", {}, Object.keys(e.details || {}).length ? JSON.stringify(e.details).slice(0, 160) : "")]],
      "No events match."));
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
