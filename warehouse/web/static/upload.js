// Drag-and-drop uploads for a dossier page, through the warehouse's resumable upload sessions: each
// file goes in parts, a part that fails is sent again after a pause, and a file whose page was closed
// mid-way resumes from the parts already received (the session id is kept in this browser).
(function () {
  "use strict";
  var form = document.getElementById("drop");
  var list = document.getElementById("progress");
  if (!form || !list) return;
  var dossier = form.dataset.dossier;
  var maxBytes = Number(form.dataset.max);
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var lang = document.documentElement.lang || "vi";
  var base = "/console/api/v1/uploads";

  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function call(method, url, body, onProgress) {
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("x-csrftoken", csrf);
      xhr.setRequestHeader("Accept-Language", lang);
      if (body && !(body instanceof Blob)) xhr.setRequestHeader("Content-Type", "application/json");
      if (onProgress && xhr.upload) xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded); };
      xhr.onload = function () {
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
        resolve({ status: xhr.status, data: data, retryAfter: Number(xhr.getResponseHeader("Retry-After")) || 0 });
      };
      xhr.onerror = xhr.ontimeout = function () { resolve({ status: 0, data: null, retryAfter: 0 }); };
      xhr.send(body instanceof Blob ? body : body ? JSON.stringify(body) : null);
    });
  }

  // A call that outlasts a flaky link: network failures, 429, 5xx are retried after a pause, for up to
  // an hour (then the file is marked as not sent; dropping it again resumes from the parts that arrived).
  async function patient(method, url, body, row, onProgress) {
    var wait = 1000;
    var giveUp = Date.now() + 3600 * 1000;
    for (;;) {
      var r = await call(method, url, body, onProgress);
      if (r.status !== 0 && r.status !== 429 && r.status < 500) return r;
      if (Date.now() > giveUp) return r;
      row.state(list.dataset.waiting);
      await sleep(Math.max(wait, r.retryAfter * 1000));
      wait = Math.min(wait * 2, 30000);
      row.state(list.dataset.uploading);
    }
  }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  function newRow(file) {
    var li = document.createElement("li");
    var name = document.createElement("span");
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = file.size || 1; bar.value = 0;
    bar.setAttribute("aria-label", file.name);
    var state = document.createElement("span");
    state.className = "state";
    li.append(name, bar, state);
    list.append(li);
    return {
      bar: bar,
      state: function (text, cls) { state.textContent = text; li.className = cls || ""; },
    };
  }

  async function send(file, kind) {
    var row = newRow(file);
    row.state(list.dataset.uploading);
    if (file.size > maxBytes || file.size === 0) {
      row.state(list.dataset.failed, "failed");
      return;
    }
    var digest = hex(await crypto.subtle.digest("SHA-256", await file.arrayBuffer()));
    var key = "kho-upload:" + dossier + ":" + digest;
    var session = null;
    var known = localStorage.getItem(key);
    if (known) {
      var got = await patient("GET", base + "/" + known, null, row);
      if (got.status === 200 && got.data.state === "open") session = got.data;
    }
    if (!session) {
      var made = await patient("POST", base, {
        dossier_id: dossier, filename: file.name, size: file.size, sha256: digest, kind: kind, mode: "parts",
      }, row);
      if (made.status !== 201 && made.status !== 200) return refused(row, made);
      session = made.data;
      localStorage.setItem(key, session.id);
    }
    var done = session.received.reduce(function (s, p) { return s + p.size; }, 0);
    row.bar.value = done;
    for (var i = 0; i < session.missing.length; i++) {
      var n = session.missing[i];
      var start = (n - 1) * session.part_size;
      var part = file.slice(start, Math.min(start + session.part_size, file.size));
      var sent = await patient("PUT", base + "/" + session.id + "/parts/" + n, part, row, function (loaded) {
        row.bar.value = done + loaded;
      });
      if (sent.status !== 200) return refused(row, sent);
      done += part.size;
      row.bar.value = done;
    }
    var finished = await patient("POST", base + "/" + session.id + "/complete", null, row);
    if (finished.status !== 201) return refused(row, finished);
    localStorage.removeItem(key);
    row.state(list.dataset.sent, "sent");
    if (window.htmx) window.htmx.ajax("GET", "/console/dossiers/" + dossier + "/files", { target: "#files", swap: "outerHTML" });
  }

  function refused(row, answer) {
    var detail = answer.data && answer.data.detail ? answer.data.detail : list.dataset.failed;
    row.state(list.dataset.failed + ": " + detail, "failed");
  }

  async function sendAll(files) {
    var kind = document.getElementById("kind").value;
    for (var i = 0; i < files.length; i++) await send(files[i], kind);
  }

  var pick = document.getElementById("pick");
  pick.addEventListener("change", function () { sendAll(Array.prototype.slice.call(pick.files)); pick.value = ""; });
  ["dragenter", "dragover"].forEach(function (type) {
    form.addEventListener(type, function (e) { e.preventDefault(); form.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    form.addEventListener(type, function (e) { e.preventDefault(); form.classList.remove("over"); });
  });
  form.addEventListener("drop", function (e) { sendAll(Array.prototype.slice.call(e.dataTransfer.files)); });
  form.addEventListener("submit", function (e) { e.preventDefault(); });
})();
