/* New job: a form for the common cases (dataset, target, model type, epochs, lr) or a YAML recipe. */
"use strict";
(() => {
  const { el, api } = C;
  let datasets = [], kind = "tabular";
  const layoutOf = {};  // dataset -> its columns or image size (JSON), to offer federated partners with the same
  const latest = ds => (ds.version_list || []).at(-1) || {};
  const layout = v => JSON.stringify(v.schema && v.schema.kind === "image" ? v.schema.image_shape
    : ((v.schema && v.schema.columns) || []).map(c => c.name));

  function recipeFrom(v) {
    const image = kind === "image";
    const model = { mlp: { type: "mlp", hidden: [32] }, logistic: { type: "logistic" },
      cnn: { type: "cnn", channels: [16], dense: [64] } }[v.model];
    const fed = v.where === "federated";
    const data = fed ? { test_size: 0.2, seed: 0 } : { dataset: v.dataset, seed: 0 };
    if (!image && v.target) data.target = v.target;
    const train = { optimizer: "adam", lr: Number(v.lr), batch_size: Number(v.batch_size || 32) };
    if (!fed) train.epochs = Number(v.epochs);  // federated: rounds x local epochs instead
    const r = { name: v.name, data, process: image ? [{ rescale: {} }] : [{ normalize: { method: "standard" } }], model,
      train, evaluate: { cv_folds: fed ? 0 : Number(v.cv_folds || 0) }, register: { model: v.register || v.name.toLowerCase() } };
    if (fed) {  // the datasets ticked (several checkboxes: read from the page, FormData keeps one value per name)
      const datasets = [...document.querySelectorAll("#fed-datasets input:checked")].map(i => i.value);
      r.federated = { datasets, strategy: v.strategy, rounds: Number(v.rounds || 5), local_epochs: Number(v.local_epochs || 1),
        min_nodes: Number(v.min_nodes || 2), secure_aggregation: v.secure_aggregation === "on" };
      if (v.dp_epsilon) r.federated.dp = { epsilon: Number(v.dp_epsilon), delta: 1e-5 };
    }
    return r;
  }

  /* the datasets its members granted to the chosen project (compute or download), node datasets included */
  const granted = {};
  async function projectDatasets() {
    const project = document.getElementById("project").value;
    if (!project) return [];
    if (!(project in granted)) {
      const r = await api("GET", `/projects/${encodeURIComponent(project)}/report`);
      granted[project] = (r.contributions || []).filter(c => c.resource_type === "dataset" && c.state === "active"
        && ["compute", "download"].includes(c.permission)).map(c => ({ full_name: c.resource, org: c.organization, access: c.permission, project }));
    }
    return granted[project];
  }

  /* datasets with the chosen one's columns, one per organization: the usable ones and those granted to the
     project, every compatible one ticked unless the user unticked it */
  const unticked = new Set();
  async function fedChoices(form) {
    const byName = {};
    [...datasets.filter(d => ["owner", "compute", "download"].includes(d.access)), ...await projectDatasets()]
      .forEach(d => { byName[d.full_name] = byName[d.full_name] || d; });
    const usable = Object.values(byName);
    await Promise.all(usable.filter(d => !(d.full_name in layoutOf)).map(async d => {
      try { layoutOf[d.full_name] = layout(latest(await api("GET", `/datasets/${d.full_name}`))); } catch (_) { layoutOf[d.full_name] = null; }
    }));
    const box = document.getElementById("fed-datasets"), chosen = form.dataset.value;
    const same = usable.filter(d => layoutOf[d.full_name] !== null && layoutOf[d.full_name] === layoutOf[chosen]);
    box.replaceChildren(...same.map(d => el("label", { class: "check" },
      el("input", { type: "checkbox", value: d.full_name, checked: d.full_name === chosen || !unticked.has(d.full_name),
        onchange: ev => { if (ev.target.checked) unticked.delete(d.full_name); else unticked.add(d.full_name); } }),
      d.full_name, d.project ? el("span", { class: "muted small" }, ` (granted to ${d.project})`) : "")));
    if (same.length < 2) box.append(el("p", { class: "muted small" },
      "No other dataset you may train on has this one's columns (or image size): ask the other organizations for a compute grant, or start from a project."));
    minNodes(form);
  }

  /* min_nodes follows the ticked datasets (at least 2) until the user sets it */
  function minNodes(form) {
    if (form.min_nodes.dataset.touched) return;
    form.min_nodes.value = Math.max(2, document.querySelectorAll("#fed-datasets input:checked").length);
  }

  /* a federated job trains across at least min_nodes organizations: refuse fewer before sending */
  function checkNodes(r) {
    const f = r.federated;
    if (!f) return;
    if (f.datasets.length < Math.max(2, f.min_nodes)) {
      throw new C.ApiError(0, `${f.datasets.length} dataset${f.datasets.length === 1 ? "" : "s"} ticked, but a federated job needs at least ` +
        `${Math.max(2, f.min_nodes)} (min_nodes ${f.min_nodes}), one per organization`,
        "tick more datasets (start from the project whose members granted theirs), or train on the hub");
    }
  }

  function yamlOf(r) {  // a readable YAML rendering of the form's recipe (flow style for nested values)
    return Object.entries(r).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v).replace(/"([a-z_]+)":/g, "$1: ") : v}`).join("\n") + "\n";
  }

  async function pickDataset(form) {
    const name = form.dataset.value, target = document.getElementById("target");
    if (!name) return;
    const ds = await api("GET", `/datasets/${name}`);
    const v = latest(ds);
    kind = (v.schema && v.schema.kind) || v.kind || "tabular";
    layoutOf[name] = layout(v);
    if (kind === "image") {
      target.replaceChildren(el("option", { value: "" }, "labels (image data)"));
      target.disabled = true;
      form.model.value = "cnn";
    } else {
      target.disabled = false;
      const cols = ((v.schema && v.schema.columns) || []).map(c => c.name);
      target.replaceChildren(...cols.map(c => el("option", { value: c, selected: c === v.target }, c)));
      if (form.model.value === "cnn") form.model.value = "mlp";
    }
    if (form.where.value === "federated") await fedChoices(form);
    const base = name.split("/")[1];
    if (form.name.value === "my-model" || form.name.dataset.auto) { form.name.value = `${base}-model`; form.name.dataset.auto = "1"; }
    preview(form);
  }

  function preview(form) {
    const fed = form.where.value === "federated";
    document.getElementById("fed-fields").hidden = !fed;
    form.epochs.closest("label").hidden = fed;
    form.cv_folds.closest("label").hidden = fed;
    const r = recipeFrom(C.formData(form));
    document.getElementById("recipe-preview").textContent = yamlOf(r);
    const ta = document.getElementById("recipe-yaml");
    if (!ta.dataset.touched) ta.value = yamlOf(r);
  }

  async function submit(recipe) {
    const project = document.getElementById("project").value;
    const job = await api("POST", "/jobs", project ? { recipe, project } : { recipe });
    location.href = `/jobs/${job.id}`;
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const form = document.getElementById("job-form");
    // the Form / YAML tabs: core.js (role="tab", arrow keys)
    document.getElementById("recipe-yaml").addEventListener("input", e => { e.target.dataset.touched = "1"; });
    form.min_nodes.addEventListener("input", () => { form.min_nodes.dataset.touched = "1"; });
    document.getElementById("project").addEventListener("change", () => {
      if (form.where.value === "federated") fedChoices(form).then(() => preview(form)).catch(err => C.showError(null, err));
    });
    form.addEventListener("input", ev => {
      if (ev.target.closest && ev.target.closest("#fed-datasets")) minNodes(form);
      if (ev.target.name === "where" && form.where.value === "federated") {
        fedChoices(form).then(() => preview(form)).catch(err => C.showError(null, err));
      }
      preview(form);
    });
    form.name.addEventListener("input", () => { delete form.name.dataset.auto; });
    api("GET", "/projects").then(ps => {  // a job in a project: its members see it, and the data its members granted to it
      const active = C.items(ps).filter(p => p.your_state === "active"), sel = document.getElementById("project");
      sel.append(...active.map(p => el("option", { value: p.name }, p.name)));
      sel.value = new URLSearchParams(location.search).get("project") || "";
      document.getElementById("project-row").hidden = !active.length;
    }).catch(err => C.showError(null, err));
    try {
      datasets = C.items(await api("GET", "/datasets"));
      const usable = datasets.filter(d => ["owner", "compute", "download"].includes(d.access));
      const sel = document.getElementById("dataset");
      sel.replaceChildren(...usable.map(d => el("option", { value: d.full_name }, `${d.full_name}${d.access === "owner" ? "" : ` (${d.access} grant)`}`)));
      if (!usable.length) C.flash("No dataset you may train on yet: upload one, or ask for a compute grant.", "bad");
      sel.addEventListener("change", () => pickDataset(form).catch(err => C.showError(null, err)));
      await pickDataset(form);
    } catch (err) { C.showError(null, err); }
    C.onSubmit(form, async v => { const r = recipeFrom(v); checkNodes(r); await submit(r); });
    C.onSubmit("yaml-form", async v => submit(v.recipe));
  });
})();
