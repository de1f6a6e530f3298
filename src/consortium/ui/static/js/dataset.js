/* One dataset: versions, the chosen version's schema, statistics, class balance, preview; grants. */
"use strict";
(() => {
  const { el, api, table, badge, date, num, bytes, fill } = C;
  const P = C.page();
  const base = `/datasets/${P.owner}/${P.name}`;

  function classBars(classes, names) {  // names: the label names of label 0, 1, ... when the data has them
    const entries = Object.entries(classes || {}).map(([k, n]) => [names && names[k] !== undefined && names[k] !== k ? `${k} (${names[k]})` : k, n]);
    if (!entries.length) return el("p", { class: "muted" }, "No class labels in this version.");
    const max = Math.max(...entries.map(([, n]) => n));
    return el("div", { class: "bars" }, entries.map(([k, n]) => el("div", { class: "bar-row" },
      el("span", { class: "bar-label" }, k), el("span", { class: "bar" }, el("span", { style: `width:${100 * n / max}%` })),
      el("span", { class: "bar-n" }, num(n)))));
  }

  function imageCanvas(img) {  // img: (C, H, W) nested arrays; drawn in grey levels
    const ch = img.length, h = img[0].length, w = img[0][0].length;
    let max = 1;
    img.forEach(c => c.forEach(r => r.forEach(x => { if (x > max) max = x; })));
    const cv = el("canvas", { width: w, height: h, class: "thumb" });
    const ctx = cv.getContext("2d"), data = ctx.createImageData(w, h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x);
      for (let k = 0; k < 3; k++) data.data[i + k] = Math.round(255 * img[Math.min(k, ch - 1)][y][x] / max);
      data.data[i + 3] = 255;
    }
    ctx.putImageData(data, 0, 0);
    return cv;
  }

  /* a column's histogram (the profile's bins) as small bars; the bins' ranges and counts on hover */
  function histogram(c) {
    const h = c.histogram;
    if (!h || !h.counts || !h.counts.length) return "—";
    const max = Math.max(...h.counts, 1);
    const edge = i => num(h.start + i * h.width, 4);
    return el("span", { class: "hist", role: "img", "aria-label": `histogram of ${c.name}: ${h.counts.length} bins from ${edge(0)} to ${edge(h.counts.length)}` },
      h.counts.map((n, i) => el("span", { title: `${edge(i)} – ${edge(i + 1)}: ${num(n)}`, style: `height:${Math.max(2, 100 * n / max)}%` })));
  }
  const distinct = c => typeof c.distinct === "number" ? num(c.distinct) : typeof c.distinct_over === "number" ? `> ${num(c.distinct_over)}` : "—";

  async function showVersion(v) {
    document.querySelectorAll("#versions a[data-version]").forEach(a => a.setAttribute("aria-current", a.dataset.version === String(v.version) ? "true" : "false"));
    document.getElementById("version-title").textContent = `Version ${v.version}`;
    document.getElementById("version").replaceChildren(el("dl", { class: "kv" },
      el("dt", {}, "Format"), el("dd", {}, `${v.format} (${v.kind})`), el("dt", {}, "Rows"), el("dd", {}, num(v.rows)),
      el("dt", {}, "Target"), el("dd", {}, v.target || "—"), el("dt", {}, "Size"), el("dd", {}, bytes(v.size_bytes)),
      el("dt", {}, "File"), el("dd", {}, v.filename || "—"), el("dt", {}, "Checksum"), el("dd", { class: "mono" }, v.checksum),
      el("dt", {}, "Added"), el("dd", {}, date(v.created_at))));
    const s = v.schema || {};
    document.getElementById("classes").replaceChildren(classBars(s.classes, s.kind === "image" ? null : s.class_names));
    document.getElementById("schema").replaceChildren(s.kind === "image"
      ? el("dl", { class: "kv" }, el("dt", {}, "Image shape"), el("dd", {}, (s.image_shape || []).join(" × ")),
        el("dt", {}, "Channels"), el("dd", {}, s.channels), el("dt", {}, "Pixel type"), el("dd", {}, s.dtype),
        el("dt", {}, "Classes"), el("dd", {}, (s.class_names || []).join(", ")))
      : table(s.columns || [], [["Column", c => el("span", {}, c.name, c.name === v.target ? el("span", { class: "badge ok" }, " target") : "")],
        ["Type", c => c.type], ["Missing", c => num(c.missing)], ["Min", c => num(c.min)], ["Max", c => num(c.max)],
        ["Mean", c => num(c.mean)], ["Distinct", distinct], ["Histogram", histogram]], "No columns.", true));
    fill("preview", async () => {
      const p = await api("GET", `${base}/versions/${v.version}/preview?rows=8`);
      if (!p.rows_preview) return el("p", { class: "muted" }, p.rows_hidden || "Rows are not shown to you.");
      if (s.kind === "image") return el("div", { class: "thumbs" }, p.rows_preview.map(r =>
        el("figure", {}, imageCanvas(r.image), el("figcaption", {}, `label ${r.label}`))));
      const keys = Object.keys(p.rows_preview[0] || {});
      return table(p.rows_preview, keys.map(k => [k, r => num(r[k])]), "The version has no rows.", true);
    });
  }

  function loadGrants() {
    if (!document.getElementById("grants")) return;
    fill("grants", async () => {
      const rows = C.items(await api("GET", "/grants?direction=given")).filter(g => g.resource_type === "dataset" && g.resource === `${P.owner}/${P.name}`);
      const names = await C.projectNames();
      return table(rows, [["Organization", g => C.grantee(g, names)], ["Permission", g => g.permission],
        ["Since", g => date(g.created_at)], ["State", g => badge(g.state)],
        ["", g => g.state === "active" && ["admin", "owner"].includes(P.role) ? el("button", { class: "danger", onclick: async ev => {
          ev.target.disabled = true;
          try { await api("DELETE", `/grants/${g.id}`); loadGrants(); } catch (err) { C.showError(null, err); }
        } }, "Revoke") : ""]], "Not shared with any organization.");
    });
  }

  const isAdmin = P.own && ["admin", "owner"].includes(P.role);

  async function remove(what, path, then) {  // the API refuses (409) while jobs use the data, naming them
    if (!confirm(`Delete ${what}? Its encrypted files are removed and every grant on it is revoked. This cannot be undone.`)) return;
    try { await api("DELETE", path); then(); } catch (err) { C.showError(null, err); }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    loadGrants();
    const del = document.getElementById("delete-dataset");
    if (del) del.addEventListener("click", () => remove(`${P.owner}/${P.name} and all its versions`, base,
      () => { location.href = "/datasets"; }));
    const sel = document.getElementById("grant-org");
    if (sel) {
      api("GET", "/orgs?limit=1000").then(C.items).then(orgs => sel.replaceChildren(...orgs.filter(o => o.name !== P.org)
        .map(o => el("option", { value: o.name }, o.display_name || o.name)))).catch(err => C.showError(null, err));
      C.onSubmit("grant-form", async v => {
        await api("POST", "/grants", { resource_type: "dataset", resource: `${P.owner}/${P.name}`, permission: v.permission, grantee_org: v.grantee_org });
        C.flash(`${v.grantee_org} now has ${v.permission} access to ${P.owner}/${P.name}.`);
        loadGrants();
      });
    }
    try {
      const ds = await api("GET", base);
      document.getElementById("ds-desc").textContent = ds.description || "";
      const versions = ds.version_list || [];
      const box = document.getElementById("versions");
      box.replaceChildren(table(versions.slice().reverse(), [
        ["Version", v => el("a", { href: `?version=${v.version}`, "data-version": v.version, onclick: ev => {
          ev.preventDefault(); history.replaceState(null, "", `?version=${v.version}`); showVersion(v); } }, `v${v.version}`)],
        ["Format", v => v.format], ["Rows", v => num(v.rows)], ["Size", v => bytes(v.size_bytes)], ["Added", v => date(v.created_at)],
        ...(isAdmin && versions.length > 1 ? [["", v => el("button", { class: "danger small", onclick: () =>
          remove(`version ${v.version} of ${P.owner}/${P.name}`, `${base}/versions/${v.version}`, () => location.reload()) },
          "Delete")]] : [])],
        "No versions."));
      const asked = Number(new URLSearchParams(location.search).get("version"));  // ?version=N: that one, else the latest
      if (versions.length) showVersion(versions.find(v => v.version === asked) || versions[versions.length - 1]);
      const up = document.getElementById("upload-version"), last = versions[versions.length - 1];
      if (up && last && last.target) up.href += `&target=${encodeURIComponent(last.target)}`;
    } catch (err) { C.showError("versions", err); }
  });
})();
