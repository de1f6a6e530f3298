/* The dataset page's policy card (issue 19): the rules, read from the API; the owner's admins edit
   them in a form that PUTs the whole rule set (a 422 names each impossible or contradictory rule). */
"use strict";
(() => {
  const { el, api, date, fill, table } = C;
  const P = C.page();
  const url = `/datasets/${P.owner}/${P.name}/policy`;
  const LABELS = { organizations: "Organizations", projects: "Projects", purposes: "Purposes",
    dp_max_epsilon: "DP: epsilon per job at most", max_rounds: "Rounds at most", max_epochs: "Epochs at most",
    model_types: "Model types", max_parameters: "Parameters at most", min_rows: "Rows per update at least",
    manual_approval: "Manual approval", model_download: "Model download" };
  const LISTS = ["organizations", "projects", "purposes"], NUMBERS = ["dp_max_epsilon", "max_rounds", "max_epochs",
    "max_parameters", "min_rows"];

  function show(p) {
    const box = document.getElementById("policy");
    if (!p.set.length) { box.replaceChildren(el("p", { class: "muted", id: "policy-none" }, "No rules: grants and privacy budgets only.")); return; }
    const v = x => Array.isArray(x) ? x.join(", ") : x === true ? "yes" : String(x);
    box.replaceChildren(el("dl", { class: "kv", id: "policy-rules" }, p.set.flatMap(k =>
      [el("dt", {}, LABELS[k] || k), el("dd", { "data-rule": k }, v(p.rules[k]))])),
      el("p", { class: "muted small" }, `Set by ${p.set_by || "—"}, ${date(p.updated_at)}`));
  }

  function fillForm(form, rules) {
    LISTS.forEach(k => { form.elements[k].value = (rules[k] || []).join(", "); });
    NUMBERS.forEach(k => { form.elements[k].value = rules[k] == null ? "" : rules[k]; });
    form.querySelectorAll('input[name="model_types"]').forEach(c => { c.checked = (rules.model_types || []).includes(c.value); });
    form.elements.manual_approval.checked = !!rules.manual_approval;
    form.elements.model_download.checked = !!rules.model_download;
  }

  function rulesOf(form) {
    const out = {};
    LISTS.forEach(k => { const xs = form.elements[k].value.split(",").map(s => s.trim()).filter(Boolean); if (xs.length) out[k] = xs; });
    NUMBERS.forEach(k => { const s = form.elements[k].value.trim(); if (s !== "") out[k] = Number(s); });
    const types = [...form.querySelectorAll('input[name="model_types"]:checked')].map(c => c.value);
    if (types.length) out.model_types = types;
    if (form.elements.manual_approval.checked) out.manual_approval = true;
    if (form.elements.model_download.checked) out.model_download = true;
    return out;
  }

  function loadConsents() {
    if (!document.getElementById("consents")) return;
    fill("consents", async () => {
      const rows = C.items(await api("GET", "/consents?direction=received"));
      const decide = (c, how) => el("button", { class: how === "approve" ? "primary small" : "danger small",
        "data-consent": c.id, "data-decide": how, onclick: async ev => {
          ev.target.disabled = true;
          try { await api("POST", `/consents/${c.id}/${how}`); C.flash(`${how === "approve" ? "Approved" : "Refused"}: ${c.model} for ${c.organization}.`); loadConsents(); }
          catch (err) { C.showError(null, err); ev.target.disabled = false; }
        } }, how === "approve" ? "Approve" : "Refuse");
      return table(rows, [["Model", c => c.model], ["For", c => c.organization], ["Action", c => c.action],
        ["Asked", c => date(c.created_at)], ["State", c => C.badge(c.state)],
        ["", c => c.state === "pending" ? el("span", {}, decide(c, "approve"), " ", decide(c, "refuse")) : ""]],
        "No consent requests.");
    });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    loadConsents();
    const form = document.getElementById("policy-form");
    try {
      const p = await api("GET", url);
      show(p);
      if (form) fillForm(form, p.rules);
    } catch (err) { C.showError("policy", err); return; }
    if (!form) return;
    C.onSubmit(form, async () => {
      const p = await api("PUT", url, rulesOf(form));
      show(p); fillForm(form, p.rules);
      C.flash(`Saved the policy of ${P.owner}/${P.name}.`);
    });
    document.getElementById("policy-clear").addEventListener("click", async () => {
      try { const p = await api("DELETE", url); show(p); fillForm(form, p.rules); C.flash("Removed every rule."); }
      catch (err) { C.showError("policy", err); }
    });
  });
})();
