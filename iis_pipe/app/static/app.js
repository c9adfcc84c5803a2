// The iis-pipe app page: plain JavaScript over the JSON API of iis_pipe/app/server.py.
// One tab, one session: its id lives in this page only, so tabs never share state.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
let info = { max_clicks: 20, max_upload: 0 };
let st = null;       // the session state the server last sent
let picture = null;  // the image being shown (an ImageBitmap)
let overlay = null;  // the mask overlay of st (an ImageBitmap), or null
let pending = 0;     // operations queued or running
let queue = Promise.resolve();

async function api(method, path, body, headers) {
  const opts = { method, headers: headers || {} };
  if (body !== undefined) {
    if (body instanceof Blob) opts.body = body;
    else { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  }
  const res = await fetch(path, opts);
  let doc = null;
  try { doc = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) throw new Error((doc && doc.error) || `${res.status} ${res.statusText}`);
  return doc;
}

function showError(msg) { const e = $("error"); e.textContent = msg; e.hidden = !msg; }

async function bitmap(blobOrUrl) {
  const blob = blobOrUrl instanceof Blob ? blobOrUrl : await (await fetch(blobOrUrl)).blob();
  // The server sends pixels already upright (EXIF orientation applied there, if any).
  return createImageBitmap(blob, { imageOrientation: "from-image" });
}

function draw() {
  if (!picture) return;
  ctx.globalAlpha = 1;
  ctx.drawImage(picture, 0, 0);
  if (overlay) {
    ctx.globalAlpha = $("opacity").value / 100;
    ctx.drawImage(overlay, 0, 0);
    ctx.globalAlpha = 1;
  }
  if (!st) return;
  const r = Math.max(4, Math.round(Math.min(canvas.width, canvas.height) / 80));
  for (const [y, x, pos] of st.clicks) {
    ctx.beginPath();
    ctx.arc(x + 0.5, y + 0.5, r, 0, 2 * Math.PI);
    ctx.fillStyle = pos ? "#2e7d32" : "#c62828";
    ctx.fill();
    ctx.lineWidth = 2; ctx.strokeStyle = "#fff"; ctx.stroke();
  }
  if (st.hint && $("show-hint").checked) {
    const [y, x, pos] = st.hint;
    ctx.beginPath();
    ctx.setLineDash([4, 3]);
    ctx.arc(x + 0.5, y + 0.5, r + 4, 0, 2 * Math.PI);
    ctx.lineWidth = 2; ctx.strokeStyle = pos ? "#ffeb3b" : "#ff9800"; ctx.stroke();
    ctx.setLineDash([]);
  }
}

function fmt(v) { return v === null || v === undefined ? "\u2013" : v.toFixed(3); }

async function setState(s) {
  const next = s.overlay ? await bitmap(s.overlay) : null;
  st = s; overlay = next;
  draw();
  const hasGt = s.objects > 0;
  document.body.classList.toggle("no-gt", !hasGt);
  $("nclicks").textContent = s.clicks.length;
  $("iou").textContent = hasGt ? fmt(s.ious.length ? s.ious[s.ious.length - 1] : null) : "no ground truth";
  $("noc").textContent = hasGt ? ["85", "90", "95"].map((t) => s.noc[t] ?? "\u2013").join(" / ") : "\u2013";
  $("ms").textContent = s.predictor_ms === null ? "\u2013" : `${s.predictor_ms.toFixed(0)} ms`;
  $("ious").replaceChildren(...s.ious.map((v, k) => {
    const li = document.createElement("li"); li.textContent = fmt(v); return li;
  }));
  const base = `/api/sessions/${s.session}`;
  $("export-mask").href = `${base}/mask.png`;
  $("export-clicks").href = `${base}/clicks.json`;
  // For tests and scripts: what the canvas shows now.
  canvas.dataset.session = s.session;
  canvas.dataset.image = s.image;
  canvas.dataset.clicks = String(s.clicks.length);
}

// Operations run one after another in the order the user asked for them.
function run(fn) {
  pending += 1; document.body.dataset.busy = "1";
  queue = queue.then(async () => {
    try { showError(""); await fn(); } catch (e) { showError(e.message); }
    finally { pending -= 1; if (!pending) delete document.body.dataset.busy; }
  });
  return queue;
}

async function openImage(id, object) {
  const s = await api("POST", "/api/sessions", { image: id, object: object || 0 });
  picture = await bitmap(`/api/images/${encodeURIComponent(id)}/file`);
  canvas.width = s.width; canvas.height = s.height;
  const sel = $("object");
  sel.replaceChildren(...(s.objects ? [...Array(s.objects).keys()].map((k) => new Option(`${k + 1} of ${s.objects}`, k))
                                    : [new Option("no ground truth", 0)]));
  sel.value = String(s.object); sel.disabled = s.objects < 2;
  await setState(s);
}

async function loadImages(select) {
  const { images } = await api("GET", "/api/images");
  const sel = $("image");
  sel.replaceChildren(...images.map((im) => new Option(`${im.dataset} / ${im.key}`, im.id)));
  if (select !== undefined) sel.value = select;
  if (sel.value) await openImage(sel.value, 0);
}

function clickAt(ev, positive) {
  if (!st) return;
  const r = canvas.getBoundingClientRect();
  const x = Math.floor((ev.clientX - r.left) * canvas.width / r.width);
  const y = Math.floor((ev.clientY - r.top) * canvas.height / r.height);
  run(async () => setState(await api("POST", `/api/sessions/${st.session}/clicks`, { y, x, positive })));
}

canvas.addEventListener("click", (ev) => clickAt(ev, !$("negative").checked));
canvas.addEventListener("contextmenu", (ev) => { ev.preventDefault(); clickAt(ev, false); });
$("undo").addEventListener("click", () => run(async () => st && setState(await api("POST", `/api/sessions/${st.session}/undo`))));
$("reset").addEventListener("click", () => run(async () => st && setState(await api("POST", `/api/sessions/${st.session}/reset`))));
document.addEventListener("keydown", (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") { ev.preventDefault(); $("undo").click(); }
});
$("opacity").addEventListener("input", draw);
$("show-hint").addEventListener("change", draw);
$("image").addEventListener("change", () => run(() => openImage($("image").value, 0)));
$("object").addEventListener("change", () => run(() => openImage($("image").value, Number($("object").value))));

// The standard protocol, one visible step at a time: robot clicks until the target IoU or
// the protocol's click budget; the NoC line then shows where each threshold was reached.
$("robot").addEventListener("click", () => run(async () => {
  const target = Number($("target").value);
  while (st && st.clicks.length < info.max_clicks) {
    const last = st.ious.length ? st.ious[st.ious.length - 1] : 0;
    if (last >= target) break;
    await setState(await api("POST", `/api/sessions/${st.session}/robot`));
    await new Promise((ok) => setTimeout(ok, 150));
  }
}));

$("upload").addEventListener("change", () => run(async () => {
  const file = $("upload").files[0];
  $("upload").value = "";
  if (!file) return;
  const e = await api("POST", "/api/upload", file, { "X-Filename": file.name, "Content-Type": file.type || "application/octet-stream" });
  await loadImages(e.id);
}));

run(async () => {
  info = await api("GET", "/api/info");
  $("predictor").textContent = `predictor: ${info.predictor}`;
  await loadImages();
});
