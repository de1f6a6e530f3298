/* Login page: POST /api/v1/auth/login (JSON); the hub sets the HttpOnly session cookie. Without
   JavaScript the form itself posts to /login (method="post"), which does the same and redirects. */
"use strict";

/* `next` only ever names a path of this site: anything with whitespace, control characters or a
   backslash (browsers drop or rewrite those: "/\t/evil" becomes "//evil"), "//host", or a scheme
   goes to "/" instead. The server applies the same rule (ui/pages/auth.py safe_next). */
function safeNext(target) {
  if (typeof target !== "string" || target.length > 2000 || !target.startsWith("/") ||
      target.startsWith("//") || /[\s\\\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]/.test(target)) {
    return "/";
  }
  try {
    const url = new URL(target, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/";
  } catch (_) { return "/"; }
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login-form");
  const box = document.getElementById("login-error");
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    box.hidden = true;
    const btn = form.querySelector("button");
    btn.disabled = true;
    try {
      const v = C.formData(form);
      const r = await fetch("/api/v1/auth/login", { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ email: v.email, password: v.password }) });
      if (!r.ok) {
        let data = null;
        try { data = await r.json(); } catch (_) { data = null; }
        const e = (data && data.error) || {};
        throw new C.ApiError(r.status, e.message || "login failed", e.hint);
      }
      location.href = safeNext(form.dataset.next || "/");
    } catch (err) {
      C.showError(box, err);
    } finally { btn.disabled = false; }
  });
});
