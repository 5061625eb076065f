// livegate.js: a client for livegate rooms (docs/protocol.md), with adaptive transport.
// An ES module without dependencies, for browsers and for node >= 20 (pass `fetch`,
// `WebSocket` and `storage` when the runtime has none; node 20 has WebSocket behind
// --experimental-websocket).
//
// What it does, in the protocol's words:
// - a client id, made once and kept in `storage` (sessionStorage in a browser: one id per
//   tab, kept across reloads; the gateway measures each id's connections, and two tabs
//   sharing one would count each other's WebSocket as a reconnect), sent as
//   `client=ID` on connect, ws and poll;
// - GET /v1/rooms/{room}/connect?client=ID for the advised transport; a gateway without
//   it (404) gets WebSocket, and long-poll after `wsFallbackAfter` WebSockets in a row
//   that never opened;
// - WebSocket, long-poll (re-poll at once) or short-poll (one poll per `interval_ms`,
//   start to start); `advice` in a batch (or in a 429 too_fast) moves the client, with
//   its cursor, to the advised transport (a WebSocket is closed with 1000);
// - a lost connection: wait (exponential backoff with jitter), then connect again;
// - exactly once by `seq`: repeats are dropped and counted, holes are counted.
//
// Threads: none; everything runs on the caller's event loop.

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;
const TRANSPORTS = ["ws", "longpoll", "shortpoll"];

export const DEFAULTS = Object.freeze({
  storageKey: "livegate.client",
  longpollWait: 25, // s: the long-poll wait when the gateway gives no advice
  shortpollIntervalMs: 1000, // when the advice names none
  backoffMinMs: 250, // first retry after a lost connection waits 1/2..1 of this
  backoffMaxMs: 15000, // the cap of the doubling
  connectTimeoutMs: 10000, // /connect, the first poll, a WebSocket's opening handshake
  pollGraceMs: 10000, // a long-poll may take `wait` + this before it counts as lost
  wsFallbackAfter: 3, // no advice: WebSockets in a row that never opened before long-poll
  // An open WebSocket silent this long is given up and replaced (0: never). A page cannot
  // see WebSocket pings or set TCP timeouts, so after stallMs / 2 without a frame it sends
  // {"op":"ping"} and the gateway's pong proves the path; a network that silently stopped
  // delivering is otherwise noticed only when the browser's TCP gives up, minutes later.
  stallMs: 10000,
});

/** An error answer of the gateway (`status` 0: no answer, the network failed). */
export class LivegateError extends Error {
  constructor(status, code, detail, body = null, retryAfter = null) {
    super(`${status ? status + " " : ""}${code}: ${detail}`);
    this.name = "LivegateError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body;
    this.retryAfter = retryAfter; // seconds, from Retry-After
  }
}

/** 16 random hex digits (crypto.getRandomValues when there is one). */
export function newClientId() {
  const b = new Uint8Array(8);
  if (globalThis.crypto && globalThis.crypto.getRandomValues) globalThis.crypto.getRandomValues(b);
  else for (let i = 0; i < b.length; i++) b[i] = Math.floor(Math.random() * 256);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The id kept in storage under key, made and stored when absent or malformed. */
export function loadClientId(storage, key = DEFAULTS.storageKey) {
  let id = null;
  try {
    id = storage ? storage.getItem(key) : null;
  } catch (e) {
    id = null; // storage refused (privacy mode): an id for this page only
  }
  if (typeof id === "string" && ROOM_RE.test(id)) return id;
  id = newClientId();
  try {
    if (storage) storage.setItem(key, id);
  } catch (e) {
    /* not kept: the gateway sees a new client next time */
  }
  return id;
}

function defaultStorage() {
  try {
    return globalThis.sessionStorage || null;
  } catch (e) {
    return null; // a sandboxed frame throws on access
  }
}

/** Parse an error answer into a LivegateError (the body is {"error","detail",...}). */
async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  const ra = Number.parseInt(res.headers.get("retry-after") || "", 10);
  const code = body && typeof body.error === "string" ? body.error : "http_" + res.status;
  const detail = body && typeof body.detail === "string" ? body.detail : res.statusText || "";
  return new LivegateError(res.status, code, detail, body, Number.isFinite(ra) ? ra : null);
}

export class LivegateClient {
  /**
   * opts: room (required); baseUrl (default: the page's URL); clientId; storage;
   * fetch; WebSocket; transport (force "ws" | "longpoll" | "shortpoll": advice then
   * only sets the short-poll interval); since (a cursor to resume from);
   * onMessage(msg, batch); onStatus(client); onError(LivegateError) for errors that stop
   * the client; and any key of DEFAULTS.
   */
  constructor(opts = {}) {
    if (typeof opts.room !== "string" || !ROOM_RE.test(opts.room))
      throw new LivegateError(0, "bad_room", "room names match [A-Za-z0-9_-]{1,64}");
    if (opts.transport != null && !TRANSPORTS.includes(opts.transport))
      throw new LivegateError(0, "bad_transport", "transport is ws, longpoll or shortpoll");
    const base = opts.baseUrl || (globalThis.location && globalThis.location.href);
    if (!base) throw new LivegateError(0, "bad_url", "baseUrl is required outside a page");
    this.opts = { ...DEFAULTS, ...opts };
    this.base = new URL(base);
    this.room = opts.room;
    this.fetchFn = opts.fetch || (globalThis.fetch && globalThis.fetch.bind(globalThis));
    this.WebSocketCtor = opts.WebSocket || globalThis.WebSocket || null;
    if (!this.fetchFn) throw new LivegateError(0, "no_fetch", "no fetch: pass opts.fetch");
    const storage = opts.storage !== undefined ? opts.storage : defaultStorage();
    this.clientId = opts.clientId || loadClientId(storage, this.opts.storageKey);
    if (!ROOM_RE.test(this.clientId))
      throw new LivegateError(0, "bad_client", "client ids match [A-Za-z0-9_-]{1,64}");
    this.forced = opts.transport || null;

    this.cursor = opts.since || null;
    this.lastSeq = 0; // newest seq delivered; 0: none yet (or a gap reset it)
    this.advice = null; // the gateway's latest advice, null when it gives none
    this.adaptive = null; // true: /connect answered; false: 404; null: not known yet
    this.transport = null; // of the current (or last) session
    this.state = "idle"; // idle | connecting | open | waiting | stopped
    this.lastError = null; // the latest lost-connection reason, for display
    this.stats = {
      delivered: 0, // messages handed to onMessage (each seq once)
      duplicates: 0, // messages dropped because their seq was already delivered
      gaps: 0, // batches with gap:true (messages lost to the window or a restart)
      missing: 0, // seq numbers skipped without gap and beyond `suppressed`
      suppressed: 0, // danmaku the gateway left out (`suppressed` in batches)
      disconnects: 0, // sessions that ended, or attempts that failed, without us ending them
      switches: 0, // changes of transport
    };

    this._gen = 0; // bumped by start/stop: a loop whose generation is stale exits
    this._attempt = 0; // failed connection attempts since the last success
    this._wsFails = 0; // WebSockets in a row that never opened
    this._reachable = false; // the last request to the gateway was answered
    this._cancel = null; // ends the current session / request (stop)
    this._sleeper = null; // {timer, resolve} of the current wait
  }

  /** Connect and keep connected until stop(). */
  start() {
    if (this.state !== "idle" && this.state !== "stopped") return;
    const gen = ++this._gen;
    this._setState("connecting");
    this._loop(gen).catch((e) => this._fatal(e, gen));
  }

  /** Close whatever is open (a WebSocket with 1000) and stop reconnecting. */
  stop() {
    this._gen++;
    if (this._cancel) this._cancel();
    this._cancel = null;
    if (this._sleeper) {
      clearTimeout(this._sleeper.timer);
      this._sleeper.resolve();
      this._sleeper = null;
    }
    this._setState("stopped");
  }

  /** POST a danmaku; resolves to {seq}, rejects with a LivegateError. */
  async send(uid, text) {
    let res;
    try {
      res = await this.fetchFn(this._url(`/v1/rooms/${this.room}/danmaku`).href, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ uid, text }),
      });
    } catch (e) {
      throw new LivegateError(0, "network", String((e && e.message) || e));
    }
    if (res.status !== 202) throw await errorOf(res);
    return res.json();
  }

  /** A snapshot for display. */
  status() {
    return {
      state: this.state,
      transport: this.transport,
      clientId: this.clientId,
      adaptive: this.adaptive,
      advice: this.advice,
      ratePerMin: this.advice && typeof this.advice.rate_per_min === "number"
        ? this.advice.rate_per_min : null,
      lastError: this.lastError,
      lastSeq: this.lastSeq,
      cursor: this.cursor,
      stats: { ...this.stats },
    };
  }

  // ---- the connection loop ----

  _live(gen) {
    return gen === this._gen;
  }

  async _loop(gen) {
    let connect = true;
    while (this._live(gen)) {
      if (connect) await this._connect(gen);
      if (!this._live(gen)) return;
      const tp = this._choose();
      if (this.transport && tp !== this.transport) this.stats.switches++;
      this.transport = tp;
      if (this.state === "open") this._emit();
      else this._setState("connecting");
      let end;
      if (this.cursor === null && !(await this._prime(gen))) end = { kind: "lost" };
      else if (tp === "ws") end = await this._runWs(gen);
      else end = await this._runPoll(gen, tp);
      if (!this._live(gen)) return;
      if (end.kind === "switch") {
        connect = false; // the advice came with the batch: go straight on
        continue;
      }
      if (end.kind === "fatal") {
        this._fatal(end.error, gen);
        return;
      }
      this.stats.disconnects++;
      if (end.error) this.lastError = String(end.error.message || end.error);
      this._attempt++;
      this._setState("waiting");
      await this._sleep(this._backoff(), gen);
      connect = true;
    }
  }

  _backoff() {
    const cap = Math.min(this.opts.backoffMaxMs,
      this.opts.backoffMinMs * 2 ** Math.min(this._attempt - 1, 20));
    return cap / 2 + Math.random() * (cap / 2);
  }

  _choose() {
    if (this.forced) return this.forced;
    if (this.advice && TRANSPORTS.includes(this.advice.transport)) return this.advice.transport;
    return this._wsFails >= this.opts.wsFallbackAfter || !this.WebSocketCtor ? "longpoll" : "ws";
  }

  /** GET …/connect: the advice, or none (an older gateway, or the request failed). */
  async _connect(gen) {
    const url = this._url(`/v1/rooms/${this.room}/connect`, { client: this.clientId });
    let res;
    try {
      res = await this._request(url, this.opts.connectTimeoutMs);
    } catch (e) {
      this._reachable = false;
      return; // the session that follows will fail and count; keep the last advice
    }
    if (!this._live(gen)) return;
    this._reachable = res.status < 500;
    if (res.status === 200) {
      let a = null;
      try {
        a = await res.json();
      } catch (e) {
        a = null;
      }
      if (a && TRANSPORTS.includes(a.transport)) {
        this.adaptive = true;
        this._setAdvice(a);
      }
    } else if (res.status === 404) {
      this.adaptive = false; // a gateway without adaptive transport
      this.advice = null;
    }
  }

  /**
   * Without a cursor, a WebSocket or poll starts at the next message published, so a
   * connection lost before the first batch would lose what came meanwhile. A short
   * poll without `since` returns the room's position to start from. It carries no
   * client id: it is not part of the client's transport and must not be measured.
   */
  async _prime(gen) {
    let res;
    try {
      res = await this._request(this._url(`/v1/rooms/${this.room}/poll`), this.opts.connectTimeoutMs);
      if (res.status === 200) {
        const b = await res.json();
        if (this._live(gen) && typeof b.cursor === "string" && this.cursor === null)
          this.cursor = b.cursor;
        this._reachable = true;
        return true;
      }
    } catch (e) {
      this.lastError = String(e.message || e);
    }
    this._reachable = false;
    return false;
  }

  _runWs(gen) {
    return new Promise((resolve) => {
      let path = `/v1/rooms/${this.room}/ws?client=${this.clientId}`;
      if (this.advice && typeof this.advice.ws_url === "string") path = this.advice.ws_url;
      const url = this._url(path, this.cursor ? { since: this.cursor } : null);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      let ws;
      let opened = false;
      let done = false;
      let heard = 0; // Date.now() of the latest frame (or the opening)
      let pinged = false; // a heartbeat went since then
      let beat = null;
      const finish = (end) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(beat);
        this._cancel = null;
        resolve(end);
      };
      const stall = this.opts.stallMs;
      const watch = () => {
        if (done) return;
        const quiet = Date.now() - heard;
        if (quiet >= stall) {
          // Whatever the old socket still delivers is ignored (done); the cursor resumes.
          try {
            ws.close(4000, "stalled");
          } catch (e) {
            /* closing already */
          }
          finish({ kind: "lost", error: new Error(`WebSocket silent for ${quiet} ms`) });
        } else if (quiet >= stall / 2 && !pinged) {
          pinged = true;
          try {
            ws.send('{"op":"ping","id":"hb"}');
          } catch (e) {
            /* closing: the close event follows */
          }
        }
      };
      const timer = setTimeout(() => {
        if (opened) return;
        this._wsFails++;
        try {
          ws.close();
        } catch (e) {
          /* already closing */
        }
        finish({ kind: "lost", error: new Error("WebSocket did not open in time") });
      }, this.opts.connectTimeoutMs);
      try {
        ws = new this.WebSocketCtor(url.href);
      } catch (e) {
        this._wsFails++;
        finish({ kind: "lost", error: e });
        return;
      }
      this._cancel = () => {
        try {
          ws.close(1000);
        } catch (e) {
          /* not open yet: closes when it opens */
        }
        finish({ kind: "stopped" });
      };
      ws.onopen = () => {
        if (done || !this._live(gen)) return;
        opened = true;
        this._attempt = 0;
        this._wsFails = 0;
        heard = Date.now();
        if (stall > 0) beat = setInterval(watch, Math.max(50, stall / 4));
        this._setState("open");
      };
      ws.onmessage = (ev) => {
        heard = Date.now();
        pinged = false;
        if (done || typeof ev.data !== "string") return; // the gateway sends text only
        let f;
        try {
          f = JSON.parse(ev.data);
        } catch (e) {
          return;
        }
        if (!f || typeof f !== "object" || f.op !== undefined) return; // a reply: we post
        if (this._onBatch(f)) {
          ws.close(1000);
          finish({ kind: "switch" });
        }
      };
      ws.onerror = () => {}; // a close event follows
      ws.onclose = (ev) => {
        if (done) return;
        if (!opened) this._wsFails++;
        finish({ kind: "lost", error: new Error(`WebSocket closed (${ev.code || "no code"})`) });
      };
    });
  }

  _pollPath(kind) {
    if (this.advice && this.advice.transport === kind && typeof this.advice.poll_url === "string")
      return this.advice.poll_url; // carries the advised wait
    const q = `client=${this.clientId}`;
    return `/v1/rooms/${this.room}/poll?${q}` + (kind === "longpoll" ? `&wait=${this.opts.longpollWait}` : "");
  }

  _interval() {
    const a = this.advice;
    if (a && a.transport === "shortpoll" && a.interval_ms > 0) return a.interval_ms;
    return this.opts.shortpollIntervalMs;
  }

  async _runPoll(gen, kind) {
    while (this._live(gen)) {
      const t0 = Date.now();
      const url = this._url(this._pollPath(kind), this.cursor ? { since: this.cursor } : null);
      const wait = Number.parseInt(url.searchParams.get("wait") || "0", 10) || 0;
      // A held long-poll says nothing until it is answered: count the session as open
      // while the gateway answers our requests.
      if (this._reachable) this._setState("open");
      let res;
      let batch = null;
      try {
        res = await this._request(url, wait * 1000 + this.opts.pollGraceMs);
        if (res.status === 200) batch = await res.json();
      } catch (e) {
        this._reachable = false;
        return { kind: this._live(gen) ? "lost" : "stopped", error: e };
      }
      if (!this._live(gen)) return { kind: "stopped" };
      this._reachable = res.status < 500;
      if (batch) {
        this._attempt = 0;
        this._setState("open");
        if (this._onBatch(batch)) return { kind: "switch" };
        if (kind === "shortpoll") await this._sleep(this._interval() - (Date.now() - t0), gen);
        continue;
      }
      const err = await errorOf(res);
      if (res.status === 429 && err.code === "too_fast") {
        // Too soon for the advised interval: follow the advice that came with it.
        if (err.body && err.body.advice && this._takeAdvice(err.body.advice)) return { kind: "switch" };
        await this._sleep(Math.max((err.retryAfter || 0) * 1000, this._interval()), gen);
        continue;
      }
      if (res.status === 400 && err.code === "bad_cursor") {
        this.stats.gaps++; // cannot happen with cursors we were given; start afresh
        this.cursor = null;
        this.lastSeq = 0;
        return { kind: "lost", error: err };
      }
      if (res.status >= 500 || res.status === 429 || res.status === 408) return { kind: "lost", error: err };
      return { kind: "fatal", error: err };
    }
    return { kind: "stopped" };
  }

  /** Deliver a batch exactly once by seq; true when its advice moves us elsewhere. */
  _onBatch(b) {
    if (!b || typeof b !== "object" || !Array.isArray(b.msgs)) return false;
    if (b.gap === true) {
      this.stats.gaps++;
      this.lastSeq = 0; // the batch starts at the oldest kept message, maybe of a new ring
    }
    let holes = 0;
    for (const m of b.msgs) {
      if (!m || typeof m.seq !== "number") continue;
      if (this.lastSeq && m.seq <= this.lastSeq) {
        this.stats.duplicates++;
        continue;
      }
      if (this.lastSeq && m.seq > this.lastSeq + 1) holes += m.seq - this.lastSeq - 1;
      this.lastSeq = m.seq;
      this.stats.delivered++;
      if (this.opts.onMessage) this._call(this.opts.onMessage, m, b);
    }
    const sup = Number.isInteger(b.suppressed) && b.suppressed > 0 ? b.suppressed : 0;
    this.stats.suppressed += sup;
    if (holes > sup) this.stats.missing += holes - sup;
    if (typeof b.cursor === "string") this.cursor = b.cursor;
    return b.advice ? this._takeAdvice(b.advice) : false;
  }

  /** Adopt advice; true when it names another transport than the current one. */
  _takeAdvice(a) {
    if (!a || typeof a !== "object" || !TRANSPORTS.includes(a.transport)) return false;
    this.adaptive = true;
    this._setAdvice(a);
    return !this.forced && a.transport !== this.transport;
  }

  _setAdvice(a) {
    this.advice = a;
    this._emit();
  }

  // ---- plumbing ----

  _url(path, params = null) {
    const u = new URL(path, this.base);
    if (params) for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u;
  }

  /** fetch with a time limit; stop() aborts it. */
  async _request(url, timeoutMs) {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), timeoutMs);
    this._cancel = () => ctrl.abort();
    try {
      return await this.fetchFn(url.href, { signal: ctrl.signal });
    } finally {
      clearTimeout(timer);
    }
  }

  _sleep(ms, gen) {
    if (!this._live(gen)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this._sleeper = null;
        resolve();
      }, Math.max(0, ms));
      this._sleeper = { timer, resolve };
    });
  }

  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit();
  }

  _emit() {
    if (this.opts.onStatus) this._call(this.opts.onStatus, this);
  }

  _fatal(e, gen) {
    if (!this._live(gen)) return;
    this.lastError = String((e && e.message) || e);
    this.stop();
    if (this.opts.onError) this._call(this.opts.onError, e);
  }

  _call(fn, ...args) {
    try {
      fn(...args);
    } catch (e) {
      // A handler's bug must not break delivery; report it where one would look.
      if (globalThis.console) globalThis.console.error("livegate: handler threw", e);
    }
  }
}
