// fer-edge dashboard: the live view, the faces in view, a timeline, health, events and a photo panel.
// No build step, no CDN: plain JavaScript, uPlot (vendored, MIT) for the timeline. Every URL is
// relative, so the page also works behind a reverse proxy under a path prefix.
"use strict";

// Colours of fer_edge.overlay (edge/overlay.py), so the page and the annotated view agree.
const COLOURS = {angry: "#dc2828", disgust: "#289628", fear: "#aa3caa", happy: "#ffd200",
                 sad: "#146ec8", surprise: "#ff8c00", neutral: "#bebebe"};
const PALETTE = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#65a30d", "#dc2626"];
const STALE_MS = 3000;  // live data older than this is not shown as current
const POLL_MS = 1000;  // health is read once a second
const POLL_TIMEOUT_MS = 5000;  // a reading not answered within this has failed
const SPAN_S = 300;  // the timeline's window
const MAX_EVENTS = 30;
let labels = Object.keys(COLOURS);  // the model's own, once /status has said

const $ = (id) => document.getElementById(id);
function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}
const clock = (ts) => new Date(ts * 1000).toLocaleTimeString();
const percent = (p) => `${Math.round(p * 100)}%`;
const hms = (ts) => new Date(ts * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit",
                                                                  hour12: false});

// ---- faces: one card per face, a bar per label ------------------------------------------------

// The label with the highest score; the reported one unless another is strictly higher.
const leader = (face) => labels.reduce((best, label) => ((face.scores[label] ?? 0) > (face.scores[best] ?? 0)
  ? label : best), face.emotion);

function faceCard(face, title) {
  const bars = labels.map((label) => {
    const p = face.scores[label] ?? 0;
    const fill = el("div", {className: "fill"});
    fill.style.width = `${(p * 100).toFixed(1)}%`;
    fill.style.background = COLOURS[label] || "#00c8ff";
    const row = el("div", {className: label === face.emotion ? "bar top" : "bar"},
                   el("span", {textContent: label}), el("div", {className: "track"}, fill),
                   el("span", {className: "value", textContent: percent(p)}));
    row.dataset.label = label;
    row.dataset.value = p;
    return row;
  });
  // A live face's label changes only when another leads clearly and steadily ([tracking]):
  // until then the bars may favour another label than the one reported.
  const lead = leader(face);
  const held = lead === face.emotion ? []
    : [el("p", {className: "note held", textContent: `${face.emotion} held: ${lead} leads, not yet clearly and steadily`,
                title: "The reported emotion changes when another one's score leads by tracking.hysteresis for "
                       + "tracking.min_dwell seconds; the bars are the scores now (averaged over tracking.smoothing_time)."})];
  const card = el("div", {className: "face"},
                  el("h3", {textContent: `${title}: ${face.emotion} ${percent(face.confidence)}`}), ...held, ...bars);
  card.dataset.emotion = face.emotion;
  card.dataset.leader = lead;
  return card;
}

let lastFaces = null;  // {snapshot, received (ms)}

function showFaces() {
  const box = $("live-faces");
  if (!lastFaces) return;
  const {snapshot, received} = lastFaces;
  if (Date.now() - received > STALE_MS) {
    box.replaceChildren(el("p", {className: "note", textContent: `No live data since ${clock(received / 1000)}.`}));
  } else if (snapshot.faces.length === 0) {
    box.replaceChildren(el("p", {className: "note", textContent: "No face in view."}));
  } else {
    box.replaceChildren(...snapshot.faces.map((face) => {
      const card = faceCard(face, `Face #${face.face_id}`);
      card.dataset.faceId = face.face_id;
      return card;
    }));
  }
}

// ---- timeline: emotion per face over the last minutes (uPlot) --------------------------------

const samples = [];  // [{ts, faces: [{face_id, emotion, confidence}]}], oldest first
let chart = null;
let chartIds = "";

function addSample(sample) {
  if (samples.length && sample.ts - samples[samples.length - 1].ts < 1) return;  // one a second
  samples.push(sample);
  while (samples.length && samples[0].ts < sample.ts - SPAN_S) samples.shift();
}

function drawTimeline() {
  const ids = [...new Set(samples.flatMap((s) => s.faces.map((f) => f.face_id)))].sort((a, b) => a - b);
  const box = $("timeline");
  const xs = samples.map((s) => s.ts);
  const series = ids.map((id) => samples.map((s) => {
    const face = s.faces.find((f) => f.face_id === id);
    return face ? labels.indexOf(face.emotion) : null;
  }));
  const points = series.reduce((n, ys) => n + ys.filter((y) => y !== null).length, 0);
  box.dataset.points = points;
  $("timeline-note").hidden = points > 0;
  if (!ids.length) return;
  const data = [xs, ...series];
  if (chart && chartIds === ids.join()) {
    chart.setData(data);
    return;
  }
  if (chart) chart.destroy();
  chartIds = ids.join();
  chart = new uPlot({
    width: box.clientWidth || 600, height: 220,
    scales: {x: {time: true}, y: {auto: false, range: [-0.5, labels.length - 0.5]}},
    axes: [{space: 90, incrs: [1, 5, 10, 15, 30, 60, 120, 300], values: (u, ticks) => ticks.map(hms)},
           {size: 70, splits: () => labels.map((_, i) => i), values: (u, splits) => splits.map((i) => labels[i] ?? "")}],
    legend: {live: false},
    series: [{}, ...ids.map((id, k) => ({
      label: `Face #${id}`, stroke: PALETTE[k % PALETTE.length], width: 2, spanGaps: false,
      paths: uPlot.paths.stepped({align: 1}), points: {show: true, size: 6},
      value: (u, v) => (v === null ? "-" : labels[v]),
    }))],
  }, data, box);
}

window.addEventListener("resize", () => chart && chart.setSize({width: $("timeline").clientWidth, height: 220}));

// ---- events -----------------------------------------------------------------------------------

function addEvent(event) {
  const swatch = el("span", {className: "emotion"});
  swatch.style.background = COLOURS[event.emotion] || "#00c8ff";
  const item = el("li", {}, el("time", {textContent: clock(event.ts)}),
                  el("span", {}, swatch, `Face #${event.face_id} ${event.emotion} ${percent(event.confidence)} (${event.reason})`));
  item.dataset.emotion = event.emotion;
  prependEvent(item);
}

function prependEvent(item) {
  const list = $("events");
  list.prepend(item);
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

// ---- health: /healthz and /status, once a second ----------------------------------------------

// {status, body, at: when it was answered (ms)}, or null: no answer, not JSON, or none within timeoutMs.
async function getJSON(url, timeoutMs = 0) {
  const controller = new AbortController();
  const timer = timeoutMs ? setTimeout(() => controller.abort(), timeoutMs) : null;
  try {
    const response = await fetch(url, {cache: "no-store", signal: controller.signal});
    return {status: response.status, body: await response.json(), at: Date.now()};
  } catch (error) {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

function duration(seconds) {
  const s = Math.floor(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function headroom(about, stats) {
  const stages = stats && stats.stages;
  if (!about.source_fps || !stages) return null;
  const busy = ["detect", "classify", "publish"].reduce((ms, k) => ms + (stages[k] ? stages[k].mean_ms : 0), 0);
  const interval = 1000 / about.source_fps;
  return `${percent(Math.max(0, 1 - busy / interval))} (busy ${busy.toFixed(1)} of every ${interval.toFixed(1)} ms)`;
}

let unreachableSince = null;  // when the first reading since the last answered one was asked for (ms)

function showHealth(health, status, asked) {
  const h = health ? health.body : {};
  const about = (status && status.body.about) || {};
  const stats = (status && status.body.stats) || {};
  const flag = (value, yes, no) => (value === undefined ? [null, ""] : [value ? yes : no, value ? "good" : "bad"]);
  const fps = h.fps === undefined ? null
    : about.source_fps ? `${h.fps.toFixed(1)} of ${about.source_fps.toFixed(1)} (the source's rate)` : h.fps.toFixed(1);
  const delivery = stats.mqtt_acked === undefined ? null
    : `${stats.mqtt_acked} acked, ${stats.mqtt_queued} queued, ${stats.mqtt_dropped} dropped, ${stats.mqtt_refused} refused`;
  const rows = [
    ["camera_up", "Camera", ...flag(h.camera_up, "up", "down")],
    ["source", "Source", about.source, ""],
    ["loop_running", "Loop", ...flag(h.loop_running, "running", "stalled")],
    ["fps", "Frame rate", fps, ""],
    ["headroom", "Headroom", headroom(about, stats), ""],
    ["faces", "Faces", h.faces, ""],
    ["frames", "Frames", h.frames, ""],
    ["dropped_frames", "Dropped frames", stats.dropped_frames, ""],
    ["mqtt_connected", "MQTT", ...flag(h.mqtt_connected, "connected", "disconnected")],
    ["delivery", "Events", delivery, ""],
    ["model", "Model", about.model, ""],
    ["detector", "Detector", about.detector && `${about.detector}, every ${about.detect_every} frames`, ""],
    ["uptime", "Uptime", stats.uptime_s === undefined ? null : duration(stats.uptime_s), ""],
  ];
  $("health").replaceChildren(...rows.flatMap(([key, name, value, cls]) => {
    const dd = el("dd", {textContent: value ?? "-", className: value == null ? "" : cls});
    dd.dataset.key = key;
    return [el("dt", {textContent: name}), dd];
  }));
  if (health) unreachableSince = null;
  else unreachableSince ??= asked;
  const time = $("health-time");
  time.textContent = health ? `as of ${clock(health.at / 1000)}` : `unreachable since ${clock(unreachableSince / 1000)}`;
  time.dataset.since = unreachableSince ?? "";
  time.dataset.asked = asked;
  if (about.device_id) $("device").textContent = about.device_id;
}

async function pollHealth(asked) {
  const [health, status] = await Promise.all([getJSON("healthz", POLL_TIMEOUT_MS), getJSON("status", POLL_TIMEOUT_MS)]);
  showHealth(health, status && status.status === 200 ? status : null, asked);
}

// One reading at a time: a server that stops answering does not pile up requests.
async function pollHealthForever() {
  for (;;) {
    const asked = Date.now();
    await pollHealth(asked);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, asked + POLL_MS - Date.now())));
  }
}

// ---- the live stream --------------------------------------------------------------------------

function setLink(state, text) {
  $("link").dataset.state = state;
  $("link").textContent = text;
}

function connect() {
  const source = new EventSource("events?live=1");
  source.onopen = () => setLink("live", "live");
  source.onerror = () => setLink("down", source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting");
  source.onmessage = (message) => addEvent(JSON.parse(message.data));
  source.addEventListener("faces", (message) => {
    const snapshot = JSON.parse(message.data);
    lastFaces = {snapshot, received: Date.now()};
    showFaces();
    addSample({ts: snapshot.ts, faces: snapshot.faces});
  });
  source.addEventListener("dropped", (message) => {
    const {dropped} = JSON.parse(message.data);
    prependEvent(el("li", {className: "dropped", textContent: `${dropped} events dropped: this page fell behind`}));
  });
}

function showLiveView(about) {
  const img = $("live");
  const note = $("live-note");
  if (!about.preview) {
    note.textContent = "The live view is off: set http.preview = true (or run with --preview) to see it here.";
    return;
  }
  img.onload = () => { img.hidden = false; note.hidden = true; };
  img.onerror = () => {
    img.hidden = true;
    note.hidden = false;
    note.textContent = "The live view is not available now (every stream slot may be taken: see http.threads).";
  };
  img.src = "preview.mjpg";
}

async function start() {
  const status = await getJSON("status");
  if (!status || status.status !== 200) {
    $("live-note").textContent = "This server has no camera loop: only the photo panel works here.";
    setLink("down", "no live data");
    return;
  }
  const about = status.body.about;
  labels = about.labels || labels;
  const history = await getJSON("history");
  if (history && history.status === 200) {
    history.body.timeline.forEach(addSample);
    history.body.events.forEach(addEvent);
    if (history.body.faces) lastFaces = {snapshot: history.body.faces, received: Date.now()};
  }
  showFaces();
  drawTimeline();
  connect();
  showLiveView(about);
  setInterval(() => { showFaces(); drawTimeline(); }, 1000);
  pollHealthForever();
}

// ---- the photo panel --------------------------------------------------------------------------

function setState(state, text) {
  document.body.dataset.state = state;
  $("status").textContent = text;
  $("status").className = state === "error" ? "error" : "";
}

async function drawPhoto(file, faces) {
  // createImageBitmap applies the EXIF orientation, as the server's decoder does.
  const bitmap = await createImageBitmap(file);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  ctx.drawImage(bitmap, 0, 0);
  const line = Math.max(2, Math.round(Math.min(canvas.width, canvas.height) / 200));
  ctx.font = `bold ${line * 7}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  faces.forEach((face, i) => {
    const [x, y, w, h] = face.box;
    const colour = COLOURS[face.emotion] || "#00c8ff";
    const text = `#${i + 1} ${face.emotion} ${percent(face.confidence)}`;
    ctx.lineWidth = line;
    ctx.strokeStyle = colour;
    ctx.strokeRect(x, y, w, h);
    const labelHeight = line * 9;
    const top = y >= labelHeight ? y - labelHeight : y;
    ctx.fillStyle = colour;
    ctx.fillRect(x, top, ctx.measureText(text).width + 2 * line, labelHeight);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x + line, top + line);
  });
}

$("image").addEventListener("change", () => { if ($("image").files.length) $("form").requestSubmit(); });

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("image").files[0];
  if (!file) return;
  setState("busy", `Classifying ${file.name}...`);
  const body = new FormData();
  body.append("image", file);
  try {
    const response = await fetch("predict", {method: "POST", body});
    const result = await response.json();
    if (!response.ok) throw new Error(result.error || response.statusText);
    await drawPhoto(file, result.faces);
    $("faces").replaceChildren(...result.faces.map((face, i) => {
      const card = faceCard(face, `Face ${i + 1}`);
      card.dataset.box = JSON.stringify(face.box);
      return card;
    }));
    const n = result.faces.length;
    setState("done", n === 0 ? "No face found." : `${n} face${n > 1 ? "s" : ""} found.`);
  } catch (error) {
    $("faces").replaceChildren();
    setState("error", `Error: ${error.message}`);
  }
});

start();
