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

  /* table(rows, [[header, row => cell, row => sort key?], ...], "text when empty", keep, sortable): at
     phone width a table becomes one card per row, except with `keep` (a few narrow columns, or many
     columns of data): it stays a table and scrolls sideways in its box if it must. With `sortable`,
     each header with a sort key (third item; else the cell's text) is a button that sorts the rows */
  function table(rows, cols, empty, keep, sortable) {
    if (!rows || !rows.length) return el("p", { class: "muted empty" }, empty || "Nothing yet.");
    const body = el("tbody", {}, rows.map(r => el("tr", {}, cols.map(([h, f, key]) => {
      const td = el("td", { "data-label": h }, f(r));
      if (sortable && key) { const k = key(r); td.dataset.sort = k === null || k === undefined ? "" : String(k); }
      return td;
    }))));
    const heads = cols.map(([h], i) => {
      if (!sortable || !h) return el("th", {}, h);
      const th = el("th", { "aria-sort": "none" });
      th.append(el("button", { type: "button", class: "sort", onclick: () => sortBy(th, i, body) }, h));
      return th;
    });
    return el("div", { class: keep ? "table-wrap wide" : "table-wrap" }, el("table", {}, el("thead", {}, el("tr", {}, heads)), body));
  }

  function sortBy(th, i, body) {
    const down = th.getAttribute("aria-sort") === "ascending";
    th.parentNode.querySelectorAll("th").forEach(x => { if (x.hasAttribute("aria-sort")) x.setAttribute("aria-sort", "none"); });
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    const key = tr => { const td = tr.children[i]; return td.dataset.sort !== undefined ? td.dataset.sort : td.textContent.trim(); };
    const number = k => k !== "" && k !== "—" && !isNaN(Number(String(k).replace(/,/g, ""))) ? Number(String(k).replace(/,/g, "")) : null;
    const rows = [...body.children].sort((a, b) => {
      const ka = key(a), kb = key(b), na = number(ka), nb = number(kb);
      if ((ka === "" || ka === "—") !== (kb === "" || kb === "—")) return ka === "" || ka === "—" ? 1 : -1;  // blanks last
      const c = na !== null && nb !== null ? na - nb : ka.localeCompare(kb);
      return down ? -c : c;
    });
    body.replaceChildren(...rows);
  }

  /* a list answer of the API: a bare array, or one page {items, next_cursor} (cursor pagination) */
  function items(x) { return Array.isArray(x) ? x : (x && Array.isArray(x.items) ? x.items : []); }
  function nextCursor(x) { return x && !Array.isArray(x) && x.next_cursor ? x.next_cursor : null; }

  /* an audited action read as a sentence: "submit_job" -> "Submit job", "demo.grant_compute" ->
     "Grant compute (demo set-up)", "ui.project" -> "Viewed the project page" */
  const NAMESPACES = { demo: "demo set-up", models: "registry", jobs: "job runner" };
  function action(a) {
    const s = String(a || ""), dot = s.indexOf(".");
    const words = x => x.replace(/[_.]/g, " ").trim();
    const cap = x => x.charAt(0).toUpperCase() + x.slice(1);
    if (dot <= 0) return cap(words(s));
    const ns = s.slice(0, dot), rest = words(s.slice(dot + 1));
    if (ns === "ui") return `Viewed the ${rest} page`;
    return `${cap(rest)} (${NAMESPACES[ns] || ns})`;
  }

  /* who a grant is to: an organization, or a project by name (names of the caller's projects, fetched once) */
  let projects = null;
  function projectNames() {
    projects = projects || api("GET", "/projects").then(ps => Object.fromEntries(items(ps).map(p => [p.id, p.name]))).catch(() => ({}));
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
  /* one number format everywhere: thousands grouped, at most `digits` decimals (4; 1 from 1,000 up) */
  function num(x, digits) {
    if (x === null || x === undefined || x === "") return "—";
    if (typeof x !== "number") return String(x);
    if (!isFinite(x)) return String(x);
    if (Number.isInteger(x)) return x.toLocaleString("en-US");
    const d = digits === undefined ? (Math.abs(x) >= 1000 ? 1 : 4) : digits;
    return x.toLocaleString("en-US", { maximumFractionDigits: d });
  }
  function duration(from, to) {  /* "2 min 5 s" between two times (to: now when running) */
    if (!from) return "—";
    const s = Math.max(0, Math.round(((to ? new Date(to) : new Date()) - new Date(from)) / 1000));
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor(s % 3600 / 60)} min`;
  }
  function seconds(from, to) { return from && to ? (new Date(to) - new Date(from)) / 1000 : null; }

  /* a run's headline metrics and its recipe's main parameters, for the jobs, models and compare tables */
  const KEY_METRICS = ["accuracy", "f1_macro", "roc_auc", "r2", "rmse", "mse", "loss", "train_accuracy"];
  function keyMetrics(m, n) {
    return KEY_METRICS.filter(k => m && typeof m[k] === "number").slice(0, n || 2).map(k => [k, m[k]]);
  }
  function params(recipe) {
    const r = recipe || {}, t = r.train || {}, f = r.federated, m = r.model || {};
    const out = [];
    if (m.type) out.push(["model", m.type + (Array.isArray(m.hidden) ? ` ${m.hidden.join("×")}` : "")]);
    if (f) { out.push(["rounds", f.rounds], ["strategy", f.strategy]); if (f.local_epochs) out.push(["local epochs", f.local_epochs]); }
    else if (t.epochs !== undefined) out.push(["epochs", t.epochs]);
    if (t.lr !== undefined) out.push(["lr", t.lr]);
    if (t.batch_size !== undefined) out.push(["batch", t.batch_size]);
    return out.filter(([, v]) => v !== undefined && v !== null);
  }
  const pairs = xs => xs.map(([k, v]) => `${k.replace(/_/g, " ")} ${num(v)}`).join(" · ") || "—";
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
    return Object.assign({ title: { text: title, font: { size: 14 }, x: 0, xanchor: "left", pad: { l: 8 } }, margin: { l: 48, r: 16, t: 40, b: 40 },
      height: 300, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      legend: { orientation: "h", y: -0.3, yanchor: "top" }, font: { family: "system-ui, sans-serif", size: 12 } }, extra || {});
  }
  /* Plotly.react redraws only what changed: each call gets fresh arrays and a new datarevision, so a
     chart fed live (a job's loss by epoch) shows every point. The toolbar shows on hover only, and
     not at all on a narrow screen, where it covered the title (titles sit at the left). */
  let revision = 0;
  function plot(id, traces, layout) {
    if (!window.Plotly) return;
    const node = typeof id === "string" ? document.getElementById(id) : id;
    const fresh = traces.map(t => Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Array.isArray(v) ? v.slice() : v])));
    const narrow = (node && node.clientWidth ? node.clientWidth : window.innerWidth) < 560;
    window.Plotly.react(node, fresh, { ...layout, datarevision: ++revision },
      { responsive: true, displaylogo: false, displayModeBar: narrow ? false : "hover", modeBarButtonsToRemove: ["lasso2d", "select2d"] });
  }

  /* tab buttons (role="tab" in a role="tablist"): a click or the arrow keys (Home, End) choose one;
     aria-selected, aria-controls and the panels' hidden follow */
  function tabs(list) {
    const btns = [...list.querySelectorAll("[data-tab]")];
    const choose = (b, focus) => {
      btns.forEach(x => {
        const on = x === b, pane = document.getElementById(x.dataset.tab);
        x.classList.toggle("on", on);
        x.setAttribute("aria-selected", on ? "true" : "false");
        x.tabIndex = on ? 0 : -1;
        if (pane) pane.hidden = !on;
      });
      if (focus) b.focus();
    };
    btns.forEach(b => {
      b.setAttribute("role", "tab");
      b.setAttribute("aria-controls", b.dataset.tab);
      if (!b.id) b.id = `tab-${b.dataset.tab}`;
      const pane = document.getElementById(b.dataset.tab);
      if (pane) { pane.setAttribute("role", "tabpanel"); pane.setAttribute("aria-labelledby", b.id); }
      b.addEventListener("click", () => choose(b));
      b.addEventListener("keydown", ev => {
        const shown = btns.filter(x => !x.hidden), n = shown.length;
        let i = shown.indexOf(b);
        if (ev.key === "ArrowRight") i = (i + 1) % n; else if (ev.key === "ArrowLeft") i = (i - 1 + n) % n;
        else if (ev.key === "Home") i = 0; else if (ev.key === "End") i = n - 1; else return;
        ev.preventDefault();
        choose(shown[i], true);
      });
    });
    choose(btns.find(b => b.classList.contains("on")) || btns[0]);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("select[data-autosubmit]").forEach(s => s.addEventListener("change", () => s.form.submit()));
    document.querySelectorAll("[role=tablist]").forEach(tabs);
  });

  return { api, el, errorBox, fill, flash, showError, table, date, num, bytes, badge, link, page, formData,
           onSubmit, plot, chartLayout, ApiError, csrf, projectNames, grantee, imagePixels, items, nextCursor,
           action, duration, seconds, keyMetrics, params, pairs };
})();
