/* Datasets: lists, and the streaming upload with a progress bar (XHR upload progress). */
"use strict";
(() => {
  const { el, api, table, badge, link, fill, bytes } = C;

  const cols = [["Dataset", d => link(`/datasets/${d.org}/${d.name}`, d.full_name)],
    ["Description", d => d.description || "—"], ["Versions", d => d.versions], ["Access", d => badge(d.access)]];

  function upload(org, v, file) {
    const q = new URLSearchParams({ filename: file.name });
    if (v.target) q.set("target", v.target);
    if (v.description) q.set("description", v.description);
    const url = `/api/v1/datasets/${encodeURIComponent(org)}/${encodeURIComponent(v.name)}/versions/upload?${q}`;
    const bar = document.getElementById("upload-bar"), status = document.getElementById("upload-status");
    document.getElementById("upload-progress").hidden = false;
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.setRequestHeader("X-CSRF-Token", C.csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.onprogress = e => {
        if (!e.lengthComputable) return;
        const pct = Math.round(100 * e.loaded / e.total);
        bar.style.width = pct + "%";
        status.textContent = `Sent ${bytes(e.loaded)} of ${bytes(e.total)} (${pct}%)`;
      };
      xhr.upload.onload = () => { status.textContent = "Sent; the hub is checking and encrypting the file…"; };
      xhr.onerror = () => reject(new C.ApiError(0, "the upload was interrupted", "check your connection and try again"));
      xhr.onload = () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch (_) { data = null; }
        if (xhr.status >= 200 && xhr.status < 300) { resolve(data); return; }
        const e = (data && data.error) || {};
        reject(new C.ApiError(xhr.status, e.message || `upload failed (${xhr.status})`, e.hint));
      };
      xhr.send(file);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const org = C.page().org;
    const form = document.getElementById("upload-form"), want = new URLSearchParams(location.search).get("dataset");
    if (form && want) {  // "Upload a new version" of a dataset: its name is filled in, the file is next
      form.name.value = want;
      form.target.value = new URLSearchParams(location.search).get("target") || form.target.value;
      form.scrollIntoView();
      form.querySelector("input[type=file]").focus();
    }
    fill("own", async () => table(C.items(await api("GET", "/datasets?scope=own")), cols, "No datasets yet: upload a file above."));
    fill("shared", async () => table(C.items(await api("GET", "/datasets?scope=shared")), cols, "No organization has shared a dataset with you."));
    C.onSubmit("upload-form", async (v, form) => {
      const file = form.querySelector("input[type=file]").files[0];
      if (!file) throw new C.ApiError(0, "choose a file to upload");
      let out;
      try { out = await upload(org, v, file); }
      catch (err) {  // the error alone: no full bar or "Sent; the hub is checking" beside it
        document.getElementById("upload-progress").hidden = true;
        document.getElementById("upload-bar").style.width = "0";
        document.getElementById("upload-status").textContent = "";
        throw err;
      }
      document.getElementById("upload-status").textContent =
        `${out.created ? "Stored" : "Unchanged (same content)"}: ${out.dataset} version ${out.version}, ${out.rows ?? "?"} rows.`;
      location.href = `/datasets/${out.dataset}`;
    });
  });
})();
