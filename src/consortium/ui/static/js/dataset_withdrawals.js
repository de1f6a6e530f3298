/* The dataset page's withdrawn versions (issue 19): the record of each withdrawal, and the owner's
   admins' form that withdraws a version (POST .../withdraw; the page reloads to show what went). */
"use strict";
(() => {
  const { el, api, date, fill, table } = C;
  const P = C.page();
  const base = `/datasets/${P.owner}/${P.name}`;

  function load() {
    fill("withdrawals", async () => table(C.items(await api("GET", `${base}/withdrawals`)), [
      ["Version", w => el("span", { "data-withdrawn": String(w.version) }, `v${w.version}`)],
      ["Withdrawn", w => date(w.created_at)], ["Deployments", w => w.mode === "stop" ? "stopped" : "warned"],
      ["Reason", w => w.reason || "—"],
      ["Models marked", w => w.models.length ? w.models.map(m => `${m.model} v${m.version}`).join(", ") : "none"],
      ["Grants ended", w => String(w.grants_ended.length)]], "No version was withdrawn."));
  }

  document.addEventListener("DOMContentLoaded", () => {
    load();
    const form = document.getElementById("withdraw-form");
    if (!form) return;
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      const f = C.formData(form);
      if (!confirm(`Withdraw version ${f.version} of ${P.owner}/${P.name}? Its rows are deleted for good.`)) return;
      try {
        const w = await api("POST", `${base}/versions/${f.version}/withdraw`,
          { mode: f.mode, reason: f.reason || "", end_grants: !f.keep_grants });
        C.flash(`Withdrew version ${w.version}: ${w.models.length} derived model version(s) marked.`);
        setTimeout(() => location.reload(), 600);
      } catch (err) { C.showError(form, err); }
    });
  });
})();
