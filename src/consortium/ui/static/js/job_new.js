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
        min_nodes: Math.max(1, datasets.length), secure_aggregation: v.secure_aggregation === "on" };
      if (v.dp_epsilon) r.federated.dp = { epsilon: Number(v.dp_epsilon), delta: 1e-5 };
    }
    return r;
  }

  async function fedChoices(form) {  // datasets with the chosen one's columns, one per organization, the chosen one ticked
    const usable = datasets.filter(d => ["owner", "compute", "download"].includes(d.access));
    await Promise.all(usable.filter(d => !(d.full_name in layoutOf)).map(async d => {
      layoutOf[d.full_name] = layout(latest(await api("GET", `/datasets/${d.full_name}`)));
    }));
    const box = document.getElementById("fed-datasets"), chosen = form.dataset.value;
    const ticked = new Set([...box.querySelectorAll("input:checked")].map(i => i.value)).add(chosen);
    const same = usable.filter(d => layoutOf[d.full_name] === layoutOf[chosen]);
    box.replaceChildren(...same.map(d => el("label", { class: "check" },
      el("input", { type: "checkbox", value: d.full_name, checked: ticked.has(d.full_name) }), d.full_name)));
    if (same.length < 2) box.append(el("p", { class: "muted small" },
      "No other dataset you may train on has this one's columns (or image size): ask the other organizations for a compute grant, or start from a project."));
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
    document.querySelectorAll(".tabs button").forEach(b => b.addEventListener("click", () => {
      document.querySelectorAll(".tabs button").forEach(x => x.classList.toggle("on", x === b));
      ["form-pane", "yaml-pane"].forEach(id => { document.getElementById(id).hidden = id !== b.dataset.tab; });
    }));
    document.getElementById("recipe-yaml").addEventListener("input", e => { e.target.dataset.touched = "1"; });
    form.addEventListener("input", ev => {
      if (ev.target.name === "where" && form.where.value === "federated") {
        fedChoices(form).then(() => preview(form)).catch(err => C.showError(null, err));
      }
      preview(form);
    });
    form.name.addEventListener("input", () => { delete form.name.dataset.auto; });
    api("GET", "/projects").then(ps => {  // a job in a project: its members see it, and the data its members granted to it
      const active = ps.filter(p => p.your_state === "active"), sel = document.getElementById("project");
      sel.append(...active.map(p => el("option", { value: p.name }, p.name)));
      sel.value = new URLSearchParams(location.search).get("project") || "";
      document.getElementById("project-row").hidden = !active.length;
    }).catch(err => C.showError(null, err));
    try {
      datasets = await api("GET", "/datasets");
      const usable = datasets.filter(d => ["owner", "compute", "download"].includes(d.access));
      const sel = document.getElementById("dataset");
      sel.replaceChildren(...usable.map(d => el("option", { value: d.full_name }, `${d.full_name}${d.access === "owner" ? "" : ` (${d.access} grant)`}`)));
      if (!usable.length) C.flash("No dataset you may train on yet: upload one, or ask for a compute grant.", "bad");
      sel.addEventListener("change", () => pickDataset(form).catch(err => C.showError(null, err)));
      await pickDataset(form);
    } catch (err) { C.showError(null, err); }
    C.onSubmit(form, async v => submit(recipeFrom(v)));
    C.onSubmit("yaml-form", async v => submit(v.recipe));
  });
})();
