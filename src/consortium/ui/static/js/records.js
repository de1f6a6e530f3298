/* The audit page's record of processing (issue 19): who used which of the organization's datasets,
   in which job and project, for which purpose, with which privacy settings. */
"use strict";
(() => {
  const { el, api, date, fill, table } = C;
  const yes = x => x ? "yes" : "no";
  document.addEventListener("DOMContentLoaded", () => {
    const csv = document.getElementById("record-csv");
    if (!csv) return;
    fill("records", async () => table(C.items(await api("GET", csv.getAttribute("href").replace("format=csv", "format=json"))), [
      ["When", r => date(r.submitted_at)], ["Partner", r => r.partner], ["Dataset", r => `${r.dataset} v${r.dataset_version ?? "?"}`],
      ["Activity", r => r.activity === "job" ? el("a", { href: `/jobs/${r.job_id}` }, `${r.job_kind} ${r.job_name}`) : r.activity],
      ["Project", r => r.project || "—"], ["Purpose", r => r.purpose || "—"],
      ["DP", r => r.differential_privacy ? `ε ≤ ${r.epsilon_target}${r.epsilon_spent != null ? ` (spent ${r.epsilon_spent})` : ""}` : "no"],
      ["Secure aggregation", r => yes(r.secure_aggregation)]], "No processing of your datasets yet."));
  });
})();
