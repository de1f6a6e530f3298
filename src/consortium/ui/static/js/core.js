/* Consortium UI core (home-made, no framework): API calls with the session cookie and the CSRF
   header, readable errors, a tiny DOM builder, tables, formatting. Every page script uses `C`. */
"use strict";
const C = (() => {
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  class ApiError extends Error {
    constructor(status, message, hint) { super(message); this.status = status; this.hint = hint || ""; }
  }

  function parseError(status, data, fallback) {
    const e = data && data.error;
    if (e && typeof e === "object") return new ApiError(status, e.message || fallback, e.hint);
    if (typeof e === "string") return new ApiError(status, e);
    return new ApiError(status, fallback);
  }

  /* fetch JSON from the public API; throws ApiError with the API's message and hint */
  async function api(method, path, body) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": csrf };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    let r;
    try { r = await fetch(path.startsWith("/") && !path.startsWith("/api/") ? "/api/v1" + path : path, init); }
    catch (err) { throw new ApiError(0, "the hub cannot be reached", "check your connection and reload"); }
    if (r.status === 401) { toLogin(); throw new ApiError(401, "your session has ended", "log in again"); }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!r.ok) throw parseError(r.status, data, `${r.status} ${r.statusText || "error"}`);
    return data;
  }

  function toLogin() { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); }

  /* el("div", {class: "x", onclick: fn}, "text", child, ...) -- text is always set as text */
  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else if (k === "class") n.className = v;
      else if (k === "style") n.style.cssText = v;  /* CSSOM: the page's CSP refuses style attributes */
      else if (k === "dataset") Object.assign(n.dataset, v);
      else n.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      n.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return n;
  }

  function errorBox(err) {
    return el("div", { class: "error", role: "alert" }, el("strong", {}, err.message || String(err)),
      err.hint ? el("div", { class: "hint" }, err.hint) : null);
  }

  /* run fn() and put its result (a Node) in `target`, or a readable error */
  async function fill(target, fn, quiet) {
    const box = typeof target === "string" ? document.getElementById(target) : target;
    if (!box) return;
    if (!quiet || !box.childNodes.length) box.replaceChildren(el("p", { class: "muted loading" }, "Loading…"));
    try { box.replaceChildren(await fn()); }
    catch (err) { box.replaceChildren(errorBox(err)); }
  }

  function flash(message, kind) {
    const f = document.getElementById("flash");
    if (!f) return;
    f.className = "flash " + (kind || "ok");
    f.replaceChildren(message instanceof Node ? message : document.createTextNode(message));
    f.hidden = false;
  }

  function showError(where, err) {
    const box = typeof where === "string" ? document.getElementById(where) : where;
    if (box) { box.hidden = false; box.replaceChildren(errorBox(err)); }
    else flash(err.message, "bad");
  }

  /* table(rows, [[header, row => cell], ...], "text when empty", keep): at phone width a table becomes
     one card per row, except with `keep` (a few narrow columns, or many columns of data): it stays a
     table and scrolls sideways in its box if it must */
  function table(rows, cols, empty, keep) {
    if (!rows || !rows.length) return el("p", { class: "muted empty" }, empty || "Nothing yet.");
    return el("div", { class: keep ? "table-wrap wide" : "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, cols.map(([h]) => el("th", {}, h)))),
      el("tbody", {}, rows.map(r => el("tr", {}, cols.map(([h, f]) => el("td", { "data-label": h }, f(r))))))));
  }

  /* who a grant is to: an organization, or a project by name (names of the caller's projects, fetched once) */
  let projects = null;
  function projectNames() {
    projects = projects || api("GET", "/projects").then(ps => Object.fromEntries(ps.map(p => [p.id, p.name]))).catch(() => ({}));
    return projects;
  }
  function grantee(g, names) {
    if (g.grantee_org) return g.grantee_org;
    const name = (names || {})[g.grantee_project_id];
    return name ? el("span", {}, "project ", link(`/projects/${name}`, name)) : "a project";
  }

  function date(s) {
    if (!s) return "—";
    const d = new Date(s);
    if (isNaN(d)) return s;
    const sameYear = d.getFullYear() === new Date().getFullYear();
    return d.toLocaleString(undefined, { year: sameYear ? undefined : "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }
  function num(x, digits) {
    if (x === null || x === undefined || x === "") return "—";
    if (typeof x !== "number") return String(x);
    if (Number.isInteger(x)) return x.toLocaleString();
    return x.toFixed(digits === undefined ? 4 : digits);
  }
  function bytes(n) {
    if (n === null || n === undefined) return "—";
    const u = ["B", "KB", "MB", "GB"]; let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
  }
  function badge(state) { return el("span", { class: "badge " + String(state).replace(/[^a-z_]/gi, "") }, state); }
  function link(href, text) { return el("a", { href }, text); }
  function page() { return document.getElementById("page").dataset; }
  function formData(form) { return Object.fromEntries(new FormData(form).entries()); }

  /* a form whose submit calls fn(values); the button is disabled while it runs; errors shown in the form */
  function onSubmit(form, fn) {
    if (typeof form === "string") form = document.getElementById(form);
    if (!form) return;
    let box = form.querySelector(".error-slot");
    if (!box) { box = el("div", { class: "error-slot" }); form.append(box); }
    form.addEventListener("submit", async ev => {
      ev.preventDefault();
      const btn = form.querySelector("button[type=submit]");
      if (btn) btn.disabled = true;
      box.replaceChildren();
      try { await fn(formData(form), form); }
      catch (err) { box.replaceChildren(errorBox(err)); }
      finally { if (btn) btn.disabled = false; }
    });
  }

  /* an image file drawn at the model's size: shape [C, H, W] -> nested arrays of pixels in [0, scale] */
  function imagePixels(file, shape, scale) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => {
        const [ch, h, w] = shape, cv = document.createElement("canvas");
        cv.width = w; cv.height = h;
        const ctx = cv.getContext("2d");
        ctx.drawImage(img, 0, 0, w, h);
        const d = ctx.getImageData(0, 0, w, h).data, out = [];
        for (let c = 0; c < ch; c++) {
          const plane = [];
          for (let y = 0; y < h; y++) {
            const row = [];
            for (let x = 0; x < w; x++) {
              const i = 4 * (y * w + x);
              const v = ch === 1 ? (d[i] + d[i + 1] + d[i + 2]) / 3 : d[i + c];
              row.push(v / 255 * scale);
            }
            plane.push(row);
          }
          out.push(plane);
        }
        URL.revokeObjectURL(img.src);
        resolve(out);
      };
      img.onerror = () => reject(new ApiError(0, "that file is not an image the browser can read", "use a PNG or JPEG"));
      img.src = URL.createObjectURL(file);
    });
  }

  function chartLayout(title, extra) {
    return Object.assign({ title: { text: title, font: { size: 14 } }, margin: { l: 48, r: 16, t: 40, b: 40 },
      height: 300, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      legend: { orientation: "h", y: -0.3, yanchor: "top" }, font: { family: "system-ui, sans-serif", size: 12 } }, extra || {});
  }
  function plot(id, traces, layout) {
    if (!window.Plotly) return;
    window.Plotly.react(id, traces, layout, { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("select[data-autosubmit]").forEach(s => s.addEventListener("change", () => s.form.submit()));
  });

  return { api, el, errorBox, fill, flash, showError, table, date, num, bytes, badge, link, page, formData,
           onSubmit, plot, chartLayout, ApiError, csrf, projectNames, grantee, imagePixels };
})();
