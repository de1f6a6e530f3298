/* Models list, and one model's card: versions and aliases (point an alias at a version). */
"use strict";
(() => {
  const { el, api, table, badge, link, date, num, fill } = C;
  const P = C.page();
  const headline = m => { const k = ["accuracy", "r2", "train_accuracy", "f1_macro"].find(x => m && m[x] !== undefined); return k ? `${k.replace("_", " ")} ${num(m[k], 3)}` : "—"; };

  function listPage() {
    fill("models", async () => table(await api("GET", "/models"), [
      ["Model", m => link(`/models/${m.name}`, m.name)], ["Task", m => m.task || "—"], ["Versions", m => m.versions],
      ["Aliases", m => Object.entries(m.aliases || {}).map(([a, v]) => `${a} → v${v}`).join(", ") || "—"],
      ["Updated", m => date(m.updated_at)]], "No models yet: train one from a job, or upload an ONNX or Keras file."));
  }

  async function cardPage() {
    const base = `/models/${P.owner}/${P.name}`;
    const load = async () => {
      const m = await api("GET", base);
      document.getElementById("model-desc").textContent = [m.task, m.description].filter(Boolean).join(" · ");
      const aliasesOf = v => Object.entries(m.aliases || {}).filter(([, n]) => n === v).map(([a]) => a);
      document.getElementById("versions").replaceChildren(table(m.versions.slice().reverse(), [
        ["Version", v => link(`${base}/versions/${v.version}`, `v${v.version}`)], ["Source", v => v.source_format],
        ["Headline", v => headline(v.metrics)], ["Aliases", v => aliasesOf(v.version).map(a => badge(a))],
        ["Created", v => date(v.created_at)]]));
      document.getElementById("aliases").replaceChildren(table(Object.entries(m.aliases || {}), [
        ["Alias", ([a]) => badge(a)], ["Version", ([, v]) => link(`${base}/versions/${v}`, `v${v}`)]], "No aliases."));
      const sel = document.getElementById("alias-version");
      if (sel) sel.replaceChildren(...m.versions.slice().reverse().map(v => el("option", { value: v.version }, `v${v.version}`)));
    };
    try { await load(); } catch (err) { C.showError("versions", err); }
    C.onSubmit("alias-form", async v => {
      const r = await api("PUT", `${base}/aliases/${encodeURIComponent(v.alias)}`, { version: Number(v.version) });
      C.flash(`${r.alias} now points at version ${r.version}` + (r.deployments.length ? `; deployments following it: ${r.deployments.join(", ")}.` : "."));
      await load();
    });
  }

  document.addEventListener("DOMContentLoaded", () => { if (P.name) cardPage(); else listPage(); });
})();
