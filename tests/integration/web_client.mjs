// Runs web/livegate.js in node against a real gateway, for web_test.py.
// Prints JSON lines: {"event":"open",...} once the client is connected, then
// {"event":"done",...} when `--count` messages arrived or `--timeout` s passed.
//
// Flags: --base URL --room R [--transport ws|longpoll|shortpoll] --count N
//        [--timeout S] [--stored-id ID] [--no-connect] (answer /connect with 404 in an
//        injected fetch, as a gateway without adaptive transport would) [--stall-ms MS]
import { LivegateClient } from "../../web/livegate.js";

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i].replace(/^--/, "");
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith("--")) args[k] = true;
  else {
    args[k] = v;
    i++;
  }
}
if (typeof globalThis.WebSocket !== "function") {
  console.log(JSON.stringify({ event: "error", error: "no WebSocket: run node with --experimental-websocket" }));
  process.exit(2);
}

const mem = new Map();
if (args["stored-id"]) mem.set("livegate.client", args["stored-id"]);
const storage = { getItem: (k) => (mem.has(k) ? mem.get(k) : null), setItem: (k, v) => mem.set(k, String(v)) };
const requests = [];
const fetchFn = async (url, init) => {
  requests.push(new URL(url).pathname);
  if (args["no-connect"] && new URL(url).pathname.endsWith("/connect"))
    return new Response('{"error":"not_found","detail":"no such endpoint"}', { status: 404 });
  return fetch(url, init);
};

const count = Number(args.count || 1);
const seqs = [];
let opened = false;
let finished = false;
const client = new LivegateClient({
  baseUrl: args.base,
  room: args.room,
  transport: args.transport,
  ...(args["stall-ms"] !== undefined ? { stallMs: Number(args["stall-ms"]) } : {}),
  storage,
  fetch: fetchFn,
  onMessage: (m) => {
    seqs.push(m.seq);
    if (seqs.length >= count) finish();
  },
  onStatus: (c) => {
    if (!opened && c.state === "open") {
      opened = true;
      console.log(JSON.stringify({ event: "open", transport: c.transport }));
    }
  },
  onError: (e) => {
    console.log(JSON.stringify({ event: "error", error: String(e.message || e) }));
    process.exit(1);
  },
});

function finish() {
  if (finished) return;
  finished = true;
  // A moment longer, so a repeated message would be seen and counted.
  setTimeout(() => {
    const status = client.status();
    client.stop();
    console.log(JSON.stringify({
      event: "done", seqs, status, stored: mem.get("livegate.client") || null,
      requests: [...new Set(requests)],
    }));
    process.exit(0);
  }, 300);
}

setTimeout(finish, Number(args.timeout || 20) * 1000);
client.start();
