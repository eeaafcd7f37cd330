// fakescope web page: upload a file, follow its job, show the verdict. Plain JS, no build step.
"use strict";

const POLL_MS = 700;
const HISTORY_LIMIT = 20;
const SVG_NS = "http://www.w3.org/2000/svg";
const CLIENT_KEY = "fakescope.client";
const VERDICT_WORDS = { authentic: "Authentic", suspicious: "Suspicious", manipulated: "Manipulated" };
const ATTENTION_MARK = 1.5; // a frame's attention, relative to an even share, from which the timeline marks it
const SERIES = {
  video: { label: "Faces (video)", marker: "circle" },
  audio: { label: "Voice (audio)", marker: "square" },
};

const $ = (id) => document.getElementById(id);

const state = {
  signedIn: false, // the server answered GET /v1/session: a key session, or no key needed (--no-auth)
  viewCounted: false, // the page_view beacon goes once per page load, not once per sign-in
  jobId: null,
  watchToken: 0, // bumped whenever another job is shown, so older polling loops stop
  upload: null, // the XMLHttpRequest of the upload in progress
  result: null, // the Result drawn in the timeline, redrawn on resize
  objectUrls: [],
};

/* ---------- identity and API ---------- */

function clientId() {
  let id = null;
  try {
    id = localStorage.getItem(CLIENT_KEY);
    if (!id) {
      id = newUuid();
      localStorage.setItem(CLIENT_KEY, id);
    }
  } catch {
    id = id || newUuid(); // storage disabled (private mode): one id for this page view
  }
  return id;
}

function newUuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; plain http on a LAN address is not one
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const CLIENT = clientId();

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function apiError(status, text, retryAfter) {
  let detail = null;
  try {
    detail = JSON.parse(text).detail;
  } catch {
    detail = null;
  }
  if (Array.isArray(detail)) detail = detail.map((d) => d.msg || String(d)).join("; ");
  let message = detail ? String(detail) : `The server answered with HTTP ${status}.`;
  if (status === 429 && retryAfter && !/\d+\s*s/.test(message)) message = `${message} Try again in ${retryAfter} s.`;
  return new ApiError(status, message);
}

async function api(path, { method = "GET", json } = {}) {
  const headers = { "X-Fakescope-Client": CLIENT, Accept: "application/json" };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Check the connection and try again.");
  }
  if (!response.ok) {
    throw signedOutOn401(apiError(response.status, await response.text(), response.headers.get("Retry-After")));
  }
  return response.status === 204 ? null : response.json();
}

// A 401 means the page session ended (expired, or its key was revoked): back to the sign-in form.
function signedOutOn401(err) {
  if (err.status === 401 && state.signedIn) showLogin(err.message);
  return err;
}

function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    state.upload = xhr;
    xhr.open("POST", "/v1/jobs");
    xhr.withCredentials = true;
    xhr.setRequestHeader("X-Fakescope-Client", CLIENT);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
      else reject(signedOutOn401(apiError(xhr.status, xhr.responseText, xhr.getResponseHeader("Retry-After"))));
    };
    xhr.onerror = () => reject(new ApiError(0, "The upload failed: the server cannot be reached."));
    xhr.onabort = () => reject(new ApiError(-1, "upload cancelled"));
    xhr.onloadend = () => {
      if (state.upload === xhr) state.upload = null;
    };
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/* ---------- sign-in ---------- */

// With API keys required the page signs in once with a key (POST /v1/session) and the server keeps a
// session cookie standing for it; the key itself is never stored by the page.
async function checkSession() {
  try {
    enterApp(await api("/v1/session"));
  } catch (err) {
    if (err.status === 401) showLogin("");
    else {
      enterApp(null);
      showAlert(err.message);
    }
  }
}

function showLogin(message) {
  state.signedIn = false;
  state.watchToken += 1; // stop following a job
  if (state.upload) state.upload.abort();
  for (const id of ["upload", "result", "history-card", "account"]) $(id).hidden = true;
  $("history").replaceChildren();
  $("login").hidden = false;
  const alert = $("login-alert");
  alert.textContent = message || "";
  alert.hidden = !message;
  $("api-key").focus();
}

function enterApp(me) {
  state.signedIn = true;
  $("login").hidden = true;
  $("login-alert").hidden = true;
  $("upload").hidden = false;
  $("history-card").hidden = false;
  const withKey = Boolean(me && me.auth === "key");
  $("account").hidden = !withKey;
  $("account-name").textContent = withKey ? `Signed in with ${me.key_name || "an API key"}` : "";
  if (!state.viewCounted) {
    state.viewCounted = true;
    api(beaconUrl(), { method: "POST", json: { event: "page_view", seconds: 0 } }).catch(() => {});
  }
  loadHistory();
  const match = /^#job=([0-9a-f]+)$/.exec(location.hash);
  if (match) openJob(match[1]);
}

async function signIn(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  const alert = $("login-alert");
  alert.hidden = true;
  if (!key) {
    alert.textContent = "Enter an API key.";
    alert.hidden = false;
    return;
  }
  let response;
  try {
    response = await fetch("/v1/session", {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
      credentials: "same-origin",
    });
  } catch {
    response = null;
  }
  if (!response || !response.ok) {
    const err = response
      ? apiError(response.status, await response.text(), response.headers.get("Retry-After"))
      : new ApiError(0, "The server cannot be reached. Check the connection and try again.");
    alert.textContent = err.message;
    alert.hidden = false;
    return;
  }
  $("api-key").value = "";
  enterApp(await response.json());
}

async function signOut() {
  try {
    await fetch("/v1/session", { method: "DELETE", credentials: "same-origin" });
  } catch {
    // the cookie may stay until it expires; the page still forgets the session
  }
  clearAlert();
  hideProgress();
  setStatus("");
  history.replaceState(null, "", location.pathname);
  showLogin("");
}

/* ---------- small UI helpers ---------- */

function el(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function pct(score) {
  return `${Math.round(score * 100)}%`;
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  if (value < 10) return `${value.toFixed(1)} s`;
  if (value < 90) return `${Math.round(value)} s`;
  return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
}

function elapsed(value) {
  return value < 1 ? `${Math.max(1, Math.round(value * 1000))} ms` : seconds(value);
}

// Bands only colour bars; the words on the page always come from the server's verdict.
function band(score) {
  if (score >= 0.65) return "high";
  if (score >= 0.35) return "mid";
  return "low";
}

function meter(score) {
  const fill = el("span");
  fill.style.width = `${Math.round(score * 100)}%`;
  return el("div", { className: `meter meter-${band(score)}`, attrs: { "aria-hidden": "true" } }, [fill]);
}

function formatDate(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function relativeTime(iso) {
  const then = new Date(iso);
  const diff = (then.getTime() - Date.now()) / 1000;
  const rtf = new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "short" });
  const steps = [[60, "second"], [3600, "minute"], [86400, "hour"], [604800, "day"]];
  let unit = 1;
  for (const [limit, name] of steps) {
    if (Math.abs(diff) < limit) return rtf.format(Math.round(diff / unit), name);
    unit = limit;
  }
  return then.toLocaleDateString();
}

function showAlert(message) {
  const alert = $("alert");
  alert.textContent = message;
  alert.hidden = false;
}

function clearAlert() {
  $("alert").hidden = true;
  $("alert").textContent = "";
}

// Rewriting the same text would make some screen readers announce it again at every poll.
function setStatus(message) {
  const status = $("status");
  if (status.textContent !== message) status.textContent = message;
}

// value in [0, 1] shows upload progress; null shows an indeterminate bar while the job runs
function setProgress(value) {
  const bar = $("progress");
  bar.hidden = false;
  if (value === null) {
    bar.removeAttribute("value");
    bar.setAttribute("aria-valuetext", "analysing");
  } else {
    bar.value = Math.round(value * 100);
    bar.setAttribute("aria-valuetext", `uploaded ${bar.value}%`);
  }
}

function hideProgress() {
  $("progress").hidden = true;
}

/* ---------- upload and job flow ---------- */

async function handleFile(file) {
  if (!file) return;
  clearAlert();
  if (state.upload) state.upload.abort();
  state.watchToken += 1;
  $("result").hidden = true;
  setStatus(`Uploading ${file.name}…`);
  setProgress(0);
  let job;
  try {
    job = await uploadFile(file, setProgress);
  } catch (err) {
    if (err.status === -1) return;
    hideProgress();
    setStatus("");
    showAlert(err.message);
    return;
  }
  loadHistory();
  watchJob(job);
}

function pickedFile(files) {
  if (!files || files.length === 0) return;
  handleFile(files[0]);
  if (files.length > 1) showAlert("Only the first file was sent: check one file at a time.");
}

async function openJob(id) {
  clearAlert();
  state.watchToken += 1;
  try {
    watchJob(await api(`/v1/jobs/${encodeURIComponent(id)}`));
  } catch (err) {
    showAlert(err.message);
  }
}

async function watchJob(job) {
  const token = ++state.watchToken;
  state.jobId = job.id;
  history.replaceState(null, "", `#job=${job.id}`);
  markCurrentInHistory();
  let delay = POLL_MS;
  while (token === state.watchToken) {
    showJobProgress(job);
    if (job.status === "done" || job.status === "failed") {
      renderJob(job);
      loadHistory();
      return;
    }
    await sleep(delay);
    if (token !== state.watchToken) return;
    try {
      job = await api(`/v1/jobs/${encodeURIComponent(job.id)}`);
      if (delay !== POLL_MS) clearAlert(); // the server answers again: the error shown is over
      delay = POLL_MS;
    } catch (err) {
      showAlert(err.message);
      if (err.status === 404 || err.status === 401) return;
      delay = Math.min(delay * 2, 8000); // back off while the server is busy or unreachable
    }
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function showJobProgress(job) {
  const name = job.filename || "the file";
  if (job.status === "queued" || job.status === "running") $("result").hidden = true;
  if (job.status === "queued") {
    setProgress(null);
    setStatus(`${name}: waiting for a free worker…`);
  } else if (job.status === "running") {
    setProgress(null);
    setStatus(`${name}: analysing… this takes a few seconds to a minute.`);
  } else if (job.status === "done") {
    hideProgress();
    setStatus(job.cached ? `${name}: done (same file analysed before, stored result).` : `${name}: done.`);
  } else {
    hideProgress();
    setStatus(`${name}: the analysis failed.`);
  }
}

/* ---------- result rendering ---------- */

function renderJob(job) {
  const result = job.result;
  $("result").hidden = false;
  $("result-file").textContent = job.filename || (result && result.file) || "";
  renderVerdict(job);
  renderFacts(job);
  renderFaces(job);
  renderAudio(result);
  const sideEmpty = $("faces-card").hidden && $("audio-card").hidden;
  document.querySelector(".side").hidden = sideEmpty;
  $("result").classList.toggle("result-single", sideEmpty);
  state.result = result;
  renderTimeline(result);
  bringIntoView($("result"));
}

function bringIntoView(node) {
  const top = node.getBoundingClientRect().top;
  if (top >= 0 && top < window.innerHeight * 0.6) return;
  const calm = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  node.scrollIntoView({ behavior: calm ? "auto" : "smooth", block: "start" });
}

function renderVerdict(job) {
  const result = job.result;
  const ok = job.status === "done" && result && result.status === "ok" && result.score !== null;
  const card = document.querySelector(".verdict-card");
  card.dataset.verdict = ok ? result.verdict : "none";
  const reason = $("reason");
  reason.hidden = ok;
  if (ok) {
    $("verdict").textContent = VERDICT_WORDS[result.verdict] || result.verdict;
    $("score").textContent = `${pct(result.score)} probability of manipulation`;
    reason.textContent = "";
  } else {
    $("verdict").textContent = job.status === "failed" ? "Analysis failed" : noVerdictTitle(result);
    $("score").textContent = "No score";
    reason.textContent = job.error || (result && result.reason) || "The file could not be analysed.";
  }
  renderGauge(ok ? result.score : null, ok ? result.verdict : null);
}

function noVerdictTitle(result) {
  return result && result.status === "not_applicable" ? "Not applicable" : "Could not analyse";
}

function renderGauge(score, verdict) {
  const box = $("gauge");
  const arc = "M 20 100 A 80 80 0 0 1 180 100";
  const label = score === null ? "no score" : `${pct(score)} probability of manipulation, ${verdict}`;
  const root = svg("svg", { viewBox: "0 0 200 118", class: "gauge-svg", role: "img", "aria-label": label });
  root.append(svg("title", {}, label));
  root.append(svg("path", { d: arc, class: "gauge-track", pathLength: 100 }));
  if (score !== null) {
    const value = Math.max(0.5, score * 100);
    root.append(svg("path", { d: arc, class: "gauge-value", pathLength: 100, "stroke-dasharray": `${value} 100` }));
  }
  root.append(svg("text", { x: 100, y: 92, class: "gauge-number", "text-anchor": "middle" },
    score === null ? "–" : pct(score)));
  root.append(svg("text", { x: 100, y: 112, class: "gauge-caption", "text-anchor": "middle" }, "P(fake)"));
  root.append(svg("text", { x: 20, y: 116, class: "gauge-end", "text-anchor": "middle" }, "0"));
  root.append(svg("text", { x: 180, y: 116, class: "gauge-end", "text-anchor": "middle" }, "100"));
  box.replaceChildren(root);
}

function renderFacts(job) {
  const result = job.result || {};
  const facts = [
    ["Type", result.media_type || job.media_type],
    ["Length", result.duration ? seconds(result.duration) : null],
    ["Frames checked", result.frames_sampled || null],
    ["Analysed in", result.processing_time ? elapsed(result.processing_time) : null],
    ["Checked", job.created_at ? formatDate(job.created_at) : null],
  ];
  const list = $("facts");
  list.replaceChildren();
  for (const [name, value] of facts) {
    if (value === null || value === undefined || value === "") continue;
    list.append(el("div", {}, [el("dt", { text: name }), el("dd", { text: String(value) })]));
  }
}

function faceUrl(job, trackId) {
  const template = job.faces_url_template || "/v1/jobs/{id}/faces/{track_id}.jpg";
  return template.replace("{id}", encodeURIComponent(job.id)).replace("{track_id}", String(trackId));
}

function renderFaces(job) {
  for (const url of state.objectUrls) URL.revokeObjectURL(url);
  state.objectUrls = [];
  const faces = (job.result && job.result.faces) || [];
  const list = $("faces");
  list.replaceChildren();
  $("faces-card").hidden = faces.length === 0;
  const sorted = [...faces].sort((a, b) => b.score - a.score);
  sorted.forEach((face) => list.append(faceItem(job, face)));
}

function faceItem(job, face) {
  const number = face.track_id + 1;
  const picture = el("div", { className: "face-picture", text: "loading…" });
  loadFacePicture(job, face, picture);
  const peak = face.frames.reduce((best, frame) => (frame[1] > best[1] ? frame : best), face.frames[0] || [0, 0]);
  return el("li", { className: "face" }, [
    picture,
    el("div", { className: "face-text" }, [
      el("p", { className: "face-title", text: `Face ${number}` }),
      el("p", { className: "face-score", text: `${pct(face.score)} probability of manipulation` }),
      meter(face.score),
      el("p", {
        className: "face-meta",
        text: `Seen in ${face.frames.length} frame${face.frames.length === 1 ? "" : "s"}` +
          (face.frames.length ? `, most suspicious at ${seconds(peak[0])}` : "") + attentionNote(face),
      }),
    ]),
  ]);
}

function attentionNote(face) {
  if (!face.attention || face.attention.length === 0) return "";
  const top = face.attention.indexOf(Math.max(...face.attention));
  return face.frames[top] ? `; the temporal model looked hardest at ${seconds(face.frames[top][0])}` : "";
}

// fetch() rather than <img src> so the request carries the client header like every other call
async function loadFacePicture(job, face, box) {
  const alt = `Face ${face.track_id + 1}, cropped from its most suspicious frame`;
  try {
    const response = await fetch(faceUrl(job, face.track_id), {
      headers: { "X-Fakescope-Client": CLIENT },
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(String(response.status));
    const url = URL.createObjectURL(await response.blob());
    state.objectUrls.push(url);
    box.replaceChildren(el("img", { attrs: { src: url, alt, width: "96", height: "96" } }));
  } catch {
    box.classList.add("face-missing");
    box.textContent = "No picture";
  }
}

function renderAudio(result) {
  const entry = result && (result.modalities || []).find((m) => m.modality === "audio");
  const box = $("audio");
  $("audio-card").hidden = !entry;
  box.replaceChildren();
  if (!entry) return;
  if (entry.score === null || entry.score === undefined) {
    box.append(el("p", { className: "audio-skip", text: `Not scored: ${entry.skipped || "no usable sound"}.` }));
    return;
  }
  const windows = (result.segments || []).filter((s) => s.modality === "audio").length;
  box.append(
    el("p", { className: "audio-score", text: `${pct(entry.score)} probability the voice is synthetic` }),
    meter(entry.score),
    el("p", {
      className: "face-meta",
      text: `Counts for ${Math.round(entry.weight * 100)}% of the final score` +
        (windows ? `, from ${windows} stretch${windows === 1 ? "" : "es"} of sound.` : "."),
    }),
  );
}

/* ---------- timeline chart ---------- */

function renderTimeline(result) {
  const segments = (result && result.segments) || [];
  $("timeline-card").hidden = segments.length === 0;
  if (segments.length === 0) return;
  drawTimeline($("timeline"), result);
}

function niceStep(span, targetTicks) {
  const raw = span / Math.max(1, targetTicks);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  return step || power * 10;
}

function seriesOf(segments) {
  const groups = {};
  for (const seg of segments) (groups[seg.modality || "video"] ||= []).push(seg);
  for (const list of Object.values(groups)) list.sort((a, b) => a.start - b.start);
  return groups;
}

function timelineSummary(groups, end) {
  const parts = Object.entries(groups).map(([modality, list]) => {
    const peak = list.reduce((best, s) => (s.score > best.score ? s : best), list[0]);
    return `${seriesInfo(modality).label}: ${list.length} point${list.length === 1 ? "" : "s"}, ` +
      `highest ${pct(peak.score)} at ${seconds(peak.start)}–${seconds(peak.end)}`;
  });
  return `Probability of manipulation over ${seconds(end)}. ${parts.join("; ")}.`;
}

function drawTimeline(container, result) {
  const width = Math.max(260, container.clientWidth);
  const height = width < 500 ? 190 : 230;
  const m = { left: 56, right: 14, top: 12, bottom: 40 };
  const groups = seriesOf(result.segments);
  const end = Math.max(result.duration || 0, ...result.segments.map((s) => s.end)) || 1;
  const x = (t) => m.left + (t / end) * (width - m.left - m.right);
  const y = (p) => m.top + (1 - p) * (height - m.top - m.bottom);

  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": "timeline-svg-title",
    class: "chart",
  });
  const summary = timelineSummary(groups, end);
  root.append(svg("title", { id: "timeline-svg-title" }, summary));
  root.setAttribute("aria-label", summary);
  drawAxes(root, { width, height, m, end, x, y });
  for (const [modality, list] of Object.entries(groups)) drawSeries(root, modality, list, x, y);
  drawAttention(root, result.faces || [], x, height - m.bottom);
  container.replaceChildren(root);
  container.dataset.width = String(width);
  renderLegend(Object.keys(groups));
}

function drawAxes(root, { width, height, m, end, x, y }) {
  const axes = svg("g", { class: "axes" });
  const right = width - m.right;
  const bottom = height - m.bottom;
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    axes.append(svg("line", { x1: m.left, x2: right, y1: y(p), y2: y(p), class: p === 0.5 ? "guide" : "grid" }));
    axes.append(svg("text", { x: m.left - 6, y: y(p) + 4, "text-anchor": "end", class: "tick" }, `${p * 100}%`));
  }
  const step = niceStep(end, Math.floor((right - m.left) / 55));
  for (let t = 0; t <= end + 1e-9; t += step) {
    axes.append(svg("line", { x1: x(t), x2: x(t), y1: bottom, y2: bottom + 4, class: "axis" }));
    axes.append(svg("text", { x: x(t), y: bottom + 16, "text-anchor": "middle", class: "tick" }, `${Number(t.toFixed(2))}`));
  }
  axes.append(svg("line", { x1: m.left, x2: right, y1: bottom, y2: bottom, class: "axis" }));
  axes.append(svg("text", { x: (m.left + right) / 2, y: height - 4, "text-anchor": "middle", class: "axis-label" },
    "time (seconds)"));
  axes.append(svg("text", {
    x: 0, y: 0, transform: `translate(12 ${(m.top + bottom) / 2}) rotate(-90)`, "text-anchor": "middle", class: "axis-label",
  }, "P(fake)"));
  root.append(axes);
}

function seriesInfo(modality) {
  return SERIES[modality] || { label: modality, marker: "circle" };
}

// Video and audio differ by marker shape and dash as well as colour, so the chart reads without colour.
function markerShape(modality, cx, cy, radius) {
  return seriesInfo(modality).marker === "square"
    ? svg("rect", { x: cx - radius, y: cy - radius, width: 2 * radius, height: 2 * radius, class: "point" })
    : svg("circle", { cx, cy, r: radius + 0.5, class: "point" });
}

function drawSeries(root, modality, list, x, y) {
  const group = svg("g", { class: `series series-${modality}`, "data-modality": modality });
  const points = list.map((s) => [x((s.start + s.end) / 2), y(s.score)]);
  if (points.length === 1) {
    // a single stretch (a short recording) has no line to draw: show the span it covers instead
    const py = points[0][1];
    group.append(svg("line", { x1: x(list[0].start), x2: x(list[0].end), y1: py, y2: py, class: "span" }));
  } else {
    const d = points.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)} ${py.toFixed(1)}`).join(" ");
    group.append(svg("path", { d, class: "line" }));
  }
  list.forEach((seg, i) => {
    const shape = markerShape(modality, points[i][0], points[i][1], 4);
    const label = `${seriesInfo(modality).label}, ${seconds(seg.start)}–${seconds(seg.end)}: ${pct(seg.score)}`;
    shape.append(svg("title", {}, label));
    group.append(shape);
  });
  root.append(group);
}

// A temporal face model says which frames drove a face's score (attention above an even share): marks on the time axis.
function drawAttention(root, faces, x, bottom) {
  const group = svg("g", { class: "attention" });
  for (const face of faces) {
    (face.attention || []).forEach((weight, i) => {
      if (weight < ATTENTION_MARK || !face.frames[i]) return;
      const t = face.frames[i][0];
      const mark = svg("path", { d: `M${x(t).toFixed(1)} ${bottom - 2} l-4 -7 h8 z`, class: "attention-mark" });
      mark.append(svg("title", {}, `Face ${face.track_id + 1}: a frame that drove its score (${seconds(t)}, ` +
        `${weight.toFixed(1)}x an even share of the model's attention)`));
      group.append(mark);
    });
  }
  root.append(group);
}

function renderLegend(modalities) {
  const items = modalities.map((modality) => {
    const key = svg("svg", {
      viewBox: "0 0 28 12", width: 28, height: 12, "aria-hidden": "true", class: `series series-${modality}`,
    });
    key.append(svg("line", { x1: 0, x2: 28, y1: 6, y2: 6, class: "line" }), markerShape(modality, 14, 6, 3.5));
    return el("li", {}, [key, el("span", { text: seriesInfo(modality).label })]);
  });
  $("timeline-legend").replaceChildren(...items);
}

/* ---------- history ---------- */

async function loadHistory() {
  try {
    const page = await api(`/v1/jobs?limit=${HISTORY_LIMIT}`);
    renderHistory(page.items || []);
  } catch (err) {
    showAlert(`Your recent checks could not be loaded: ${err.message}`);
  }
}

function renderHistory(items) {
  const list = $("history");
  list.replaceChildren(...items.map(historyItem));
  $("history-empty").hidden = items.length > 0;
  markCurrentInHistory();
}

function historyItem(job) {
  const verdict = job.status === "done" ? job.verdict : null;
  const badgeText = verdict ? VERDICT_WORDS[verdict] || verdict : statusWord(job);
  const meta = [job.media_type, job.created_at ? relativeTime(job.created_at) : null].filter(Boolean).join(" · ");
  const when = job.created_at ? { title: formatDate(job.created_at) } : {};
  const button = el("button", { className: "history-item", attrs: { type: "button", "data-job-id": job.id } }, [
    el("span", { className: "history-line" }, [
      el("span", { className: "history-name", text: job.filename || job.id }),
      el("span", { className: "history-score", text: typeof job.score === "number" ? pct(job.score) : "" }),
    ]),
    el("span", { className: "history-line" }, [
      el("span", { className: "history-meta", text: meta, attrs: when }),
      el("span", { className: "badge", text: badgeText, attrs: { "data-verdict": verdict || job.status } }),
    ]),
  ]);
  button.addEventListener("click", () => openJob(job.id));
  return el("li", {}, [button]);
}

function statusWord(job) {
  if (job.status === "queued") return "Queued";
  if (job.status === "running") return "Analysing";
  if (job.status === "failed") return "Failed";
  return "No verdict";
}

function markCurrentInHistory() {
  for (const button of document.querySelectorAll(".history-item")) {
    if (button.dataset.jobId === state.jobId) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

/* ---------- usage beacons ---------- */

const beaconUrl = () => `/v1/beacon?client=${encodeURIComponent(CLIENT)}`;
const visible = { since: document.visibilityState === "visible" ? performance.now() : null, total: 0 };

function sendPageTime() {
  if (visible.since !== null) {
    visible.total += (performance.now() - visible.since) / 1000;
    visible.since = null;
  }
  if (visible.total <= 0 || !state.signedIn) return;
  const body = JSON.stringify({ event: "page_time", seconds: Math.round(visible.total * 10) / 10 });
  // sendBeacon survives the page being closed; it cannot set headers, hence ?client= in the URL
  navigator.sendBeacon(beaconUrl(), new Blob([body], { type: "application/json" }));
  visible.total = 0;
}

function watchVisibility() {
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") sendPageTime();
    else visible.since = performance.now();
  });
  window.addEventListener("pagehide", sendPageTime);
}

/* ---------- start ---------- */

function bindDropzone() {
  const zone = $("dropzone");
  const input = $("file-input");
  zone.addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    pickedFile(input.files);
    input.value = ""; // picking the same file again must fire "change" again
  });
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("is-dragging");
    });
  }
  for (const type of ["dragleave", "dragend"]) zone.addEventListener(type, () => zone.classList.remove("is-dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("is-dragging");
    pickedFile(event.dataTransfer.files);
  });
  // a file dropped beside the zone must not make the browser navigate away to it
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

function redrawOnResize() {
  const box = $("timeline");
  new ResizeObserver(() => {
    if (state.result && !$("timeline-card").hidden && box.dataset.width !== String(Math.max(260, box.clientWidth))) {
      drawTimeline(box, state.result);
    }
  }).observe(box);
}

function start() {
  bindDropzone();
  redrawOnResize();
  watchVisibility();
  $("history-refresh").addEventListener("click", loadHistory);
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  checkSession();
}

start();
