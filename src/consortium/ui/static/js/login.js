/* Login page: POST /api/v1/auth/login (JSON); the hub sets the HttpOnly session cookie. */
"use strict";
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
      location.href = form.dataset.next || "/";
    } catch (err) {
      C.showError(box, err);
    } finally { btn.disabled = false; }
  });
});
