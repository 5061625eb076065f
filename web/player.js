// The livegate player page: danmaku over a placeholder video, the connection's state,
// and a box to send danmaku. Everything network-related is in livegate.js.
//
// For tests and debugging, window.livegateStats mirrors the client (state, transport,
// counters, and the seqs delivered, in order, up to SEQS_KEPT).
import { LivegateClient } from "./livegate.js";

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_ON_SCREEN = 80; // flying comments at once
const MAX_WAITING = 60; // comments waiting for a free lane; older ones are dropped
const CROSS_MS = 8000; // time for a comment to cross the stage's width
const LANE_GAP_PX = 24; // space between two comments in one lane
const RECENT_KEPT = 50;
const SEQS_KEPT = 100000;

const $ = (id) => document.getElementById(id);
const layer = $("danmaku-layer");
const params = new URLSearchParams(location.search);
const forced = params.get("transport"); // ws | longpoll | shortpoll, for debugging

const stats = {
  room: null, state: "starting", transport: null, ratePerMin: null, adaptive: null,
  clientId: null, delivered: 0, duplicates: 0, gaps: 0, missing: 0, suppressed: 0,
  disconnects: 0, switches: 0, onScreen: 0, dropped: 0, seqs: [], texts: [],
  history: [], // transports used, in order (each change once)
};
window.livegateStats = stats;

let client = null;
let laneFreeAt = []; // per lane: when the last comment's tail has entered the stage
const waiting = [];
let drainTimer = null;

// ---- danmaku ----

function laneHeight() {
  const v = getComputedStyle(document.documentElement).getPropertyValue("--lane").trim();
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
  const n = parseFloat(v);
  if (!n) return 2 * rem;
  return v.endsWith("rem") ? n * rem : n;
}

function freeLane(now) {
  const lanes = Math.max(1, Math.floor(layer.clientHeight / laneHeight()));
  if (laneFreeAt.length !== lanes) laneFreeAt = Array.from({ length: lanes }, (_, i) => laneFreeAt[i] || 0);
  for (let i = 0; i < lanes; i++) if (laneFreeAt[i] <= now) return i;
  return -1;
}

function fly(item) {
  const now = performance.now();
  const lane = freeLane(now);
  if (lane < 0 || stats.onScreen >= MAX_ON_SCREEN) {
    if (waiting.length >= MAX_WAITING) {
      waiting.shift();
      stats.dropped++;
    }
    waiting.push(item);
    scheduleDrain();
    return;
  }
  const el = document.createElement("div");
  el.className = "danmaku" + (item.gift ? " gift" : "") + (item.mine ? " mine" : "");
  el.textContent = item.text;
  el.style.visibility = "hidden";
  layer.appendChild(el);
  const W = layer.clientWidth;
  const w = el.offsetWidth;
  const speed = W / CROSS_MS; // px per ms, the same for every comment: none catches up
  el.style.top = lane * laneHeight() + "px";
  el.style.setProperty("--from", W + "px");
  el.style.setProperty("--to", -w + "px");
  el.style.setProperty("--still", Math.max(0, Math.random() * (W - w)) + "px");
  el.style.animationDuration = Math.round((W + w) / speed) + "ms";
  el.style.visibility = "";
  el.classList.add("flying");
  laneFreeAt[lane] = now + (w + LANE_GAP_PX) / speed;
  stats.onScreen++;
  el.addEventListener("animationend", () => {
    el.remove();
    stats.onScreen--;
    scheduleDrain();
  }, { once: true });
}

function scheduleDrain() {
  if (drainTimer !== null || !waiting.length) return;
  const now = performance.now();
  const next = laneFreeAt.length ? Math.min(...laneFreeAt) : now;
  drainTimer = setTimeout(() => {
    drainTimer = null;
    const n = waiting.length;
    for (let i = 0; i < n && waiting.length; i++) {
      if (freeLane(performance.now()) < 0 || stats.onScreen >= MAX_ON_SCREEN) break;
      fly(waiting.shift());
    }
    scheduleDrain();
  }, Math.max(16, next - now));
}

function clearStage() {
  layer.replaceChildren();
  waiting.length = 0;
  laneFreeAt = [];
  stats.onScreen = 0;
  if (drainTimer !== null) clearTimeout(drainTimer);
  drainTimer = null;
}

// ---- the recent list (readable, unlike flying text) ----

function addRecent(uid, text) {
  const li = document.createElement("li");
  const who = document.createElement("span");
  who.className = "uid";
  who.textContent = uid + ": ";
  li.append(who, text);
  const ol = $("recent");
  ol.append(li);
  while (ol.children.length > RECENT_KEPT) ol.firstElementChild.remove();
}

// ---- status ----

let paintQueued = false;
function showStatus() {
  if (paintQueued) return;
  paintQueued = true;
  requestAnimationFrame(() => {
    paintQueued = false;
    $("st-state").textContent = stats.state;
    $("st-transport").textContent = stats.transport || "–";
    $("st-rate").textContent = stats.ratePerMin !== null ? stats.ratePerMin.toFixed(1)
      : stats.adaptive === false ? "n/a" : "–";
    $("st-delivered").textContent = String(stats.delivered);
    $("st-disconnects").textContent = String(stats.disconnects);
  });
}

function syncStats() {
  const s = client.status();
  Object.assign(stats, s.stats, {
    state: s.state, transport: s.transport, ratePerMin: s.ratePerMin, adaptive: s.adaptive,
    clientId: s.clientId, lastError: s.lastError,
  });
  if (s.transport && stats.history[stats.history.length - 1] !== s.transport)
    stats.history.push(s.transport);
  showStatus();
}

// ---- wiring ----

function onMessage(m) {
  if (stats.seqs.length < SEQS_KEPT) stats.seqs.push(m.seq);
  const me = $("uid").value;
  if (m.type === "danmaku" && typeof m.text === "string") {
    if (stats.texts.length < SEQS_KEPT) stats.texts.push(m.text);
    fly({ text: m.text, mine: m.uid === me });
    addRecent(m.uid, m.text);
  } else if (m.type === "gift") {
    const t = `${m.uid} sent ${m.count} × ${m.gift}`;
    fly({ text: t, gift: true, mine: m.uid === me });
    addRecent(m.uid, t);
  }
  syncStats();
}

function join(room) {
  if (client) client.stop();
  clearStage();
  $("recent").replaceChildren();
  Object.assign(stats, { room, delivered: 0, duplicates: 0, gaps: 0, missing: 0, suppressed: 0,
    disconnects: 0, switches: 0, dropped: 0, seqs: [], texts: [], history: [] });
  $("room").value = room;
  document.title = `${room} · livegate`;
  client = new LivegateClient({
    room,
    transport: ["ws", "longpoll", "shortpoll"].includes(forced) ? forced : undefined,
    onMessage,
    onStatus: syncStats,
    onError: (e) => {
      $("send-error").textContent = `Connection stopped: ${e.message}`;
      syncStats();
    },
  });
  client.start();
  syncStats();
}

$("room-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const room = $("room").value.trim();
  if (!ROOM_RE.test(room)) {
    $("send-error").textContent = "Room names are 1 to 64 of A–Z, a–z, 0–9, _ and -.";
    return;
  }
  $("send-error").textContent = "";
  const u = new URL(location.href);
  u.searchParams.set("room", room);
  history.replaceState(null, "", u);
  join(room);
});

$("send-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const uid = $("uid").value.trim();
  const text = $("text").value;
  const btn = $("send");
  $("send-error").textContent = "";
  try {
    localStorage.setItem("livegate.uid", uid);
  } catch (e) {
    /* not kept */
  }
  btn.disabled = true;
  try {
    await client.send(uid, text);
    $("text").value = "";
  } catch (e) {
    let msg = e.code === "network" ? `Not sent: ${e.detail}` : `Not sent (${e.code}): ${e.detail}`;
    if (e.retryAfter) msg += ` Try again in ${e.retryAfter} s.`;
    $("send-error").textContent = msg;
  } finally {
    btn.disabled = false;
    $("text").focus();
  }
});

function initialUid() {
  try {
    const u = localStorage.getItem("livegate.uid");
    if (u && ROOM_RE.test(u)) return u;
  } catch (e) {
    /* none kept */
  }
  return "viewer_" + Math.floor(Math.random() * 0x10000).toString(16).padStart(4, "0");
}

$("uid").value = initialUid();
const wanted = params.get("room");
join(wanted && ROOM_RE.test(wanted) ? wanted : "lobby");
