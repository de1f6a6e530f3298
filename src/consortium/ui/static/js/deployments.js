/* Deployments: lists, and deploying a model version or alias. */
"use strict";
(() => {
  const { el, api, table, link, date, fill } = C;
  // another organization's deployment by its org~name: a bare name may be ambiguous for the viewer
  const cols = [["Deployment", d => link(`/deployments/${d.org === C.page().org ? d.name : d.ref}`, d.name)], ["Model", d => d.model],
    ["Serves", d => d.alias ? `@${d.alias} (v${d.version})` : `v${d.version}`], ["Owner", d => d.org], ["Created", d => date(d.created_at)]];

  document.addEventListener("DOMContentLoaded", async () => {
    const org = C.page().org;
    fill("own", async () => {
      const all = C.items(await api("GET", "/deployments"));
      document.getElementById("shared").replaceChildren(table(all.filter(d => d.org !== org), cols, "No organization has shared a deployment with you."));
      return table(all.filter(d => d.org === org), cols, "No deployments yet.");
    });
    const msel = document.getElementById("model");
    if (!msel) return;
    const models = await api("GET", "/models").then(C.items).catch(err => { C.showError(null, err); return []; });
    msel.replaceChildren(...models.map(m => el("option", { value: m.name }, m.name)));
    const follow = document.getElementById("follow"), name = document.getElementById("dep-name");
    const pick = () => {
      const m = models.find(x => x.name === msel.value);
      if (!m) return;
      const versions = Array.from({ length: m.versions }, (_, i) => m.versions - i);
      follow.replaceChildren(...Object.keys(m.aliases || {}).map(a => el("option", { value: `@${a}` }, `alias ${a} (v${m.aliases[a]})`)),
        ...versions.map(v => el("option", { value: `:${v}` }, `version ${v}`)));
      name.value = m.name.split("/")[1];
    };
    msel.addEventListener("change", pick);
    pick();
    C.onSubmit("deploy-form", async v => {
      const d = await api("POST", "/deployments", { name: v.name, model: v.model + v.follow });
      location.href = `/deployments/${d.name}`;
    });
  });
})();
