#!/usr/bin/env node
/*
 * gift_signer.js: an independent implementation of livegate's gift and
 * receipt signatures, for the integration tests (gifts_test.py,
 * gift_crash_test.py).
 *
 * Why: the gateway signs and verifies with libsodium and its own CLI
 * (livegate-gift) shares the gateway's C code, so neither can catch a
 * misreading of the documented format. This helper builds the canonical bytes
 * itself, from the text of gateway/gift.h only, and signs / verifies with
 * tweetnacl (a separate Ed25519 implementation, from npm).
 *
 * Protocol: one JSON object per line on stdin, one JSON object per line on
 * stdout, in the same order. Any "id" member is echoed back. Requests:
 *
 *   {"seed_hex","room","uid","gift","count","txn","ts","nonce"}      (op "sign", the default)
 *     -> {"pk":"<base64>","body":{uid,gift,count,txn,ts,nonce,sig},"canonical":"..."}
 *   {"op":"pk","seed_hex"}                        -> {"pk":"<base64>"}
 *   {"op":"verify_gift","pk","room","uid","gift","count","txn","ts","nonce","sig"}
 *     -> {"ok":true|false,"canonical":"..."}
 *   {"op":"verify_receipt","pk","room","uid","txn","seq","gift","count","value","receipt_sig"}
 *     -> {"ok":true|false,"canonical":"..."}
 *
 * A request that cannot be served gets {"error":"..."} (and the helper goes on).
 *
 * Engine: tweetnacl by default. "--engine openssl" (command line) switches to
 * node's built-in crypto (OpenSSL's Ed25519, also not this project's code),
 * which is ~100x faster: the crash test signs thousands of gifts on a small
 * machine and cross-checks a sample against tweetnacl (Ed25519 is
 * deterministic, so both engines must produce the same bytes).
 * Numbers (count, ts, seq, value) may be JSON numbers or decimal strings; they
 * are written in the canonical form: decimal, no sign, no leading zeros.
 */
'use strict';

const crypto = require('crypto');
const readline = require('readline');

let engine = 'tweetnacl';
for (let i = 2; i < process.argv.length; i++) {
  if (process.argv[i] === '--engine' && i + 1 < process.argv.length) engine = process.argv[++i];
  else if (process.argv[i].startsWith('--engine=')) engine = process.argv[i].slice(9);
  else {
    process.stderr.write('usage: node gift_signer.js [--engine tweetnacl|openssl]\n');
    process.exit(2);
  }
}
if (engine !== 'tweetnacl' && engine !== 'openssl') {
  process.stderr.write('gift_signer.js: unknown engine ' + engine + '\n');
  process.exit(2);
}
const nacl = require('tweetnacl'); /* always loaded: a missing module fails loudly at once */

function fail(msg) {
  throw new Error(msg);
}

function hexToBytes(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex))
    fail('not a hex string: ' + JSON.stringify(hex));
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

function b64(bytes) {
  return Buffer.from(bytes).toString('base64');
}

function unb64(s, n) {
  if (typeof s !== 'string') fail('not a base64 string');
  const b = Buffer.from(s, 'base64');
  if (b.length !== n || b.toString('base64') !== s) fail('not the base64 of ' + n + ' bytes: ' + s);
  return new Uint8Array(b);
}

/* Decimal without sign or leading zeros, from a safe integer or a string of digits. */
function dec(v, what) {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) fail(what + ' is not a non-negative safe integer');
    return String(v);
  }
  if (typeof v === 'string' && /^(0|[1-9][0-9]*)$/.test(v)) return v;
  fail(what + ' is not a decimal number: ' + JSON.stringify(v));
}

function str(v, what) {
  if (typeof v !== 'string') fail(what + ' must be a string');
  if (v.indexOf('\n') >= 0) fail(what + ' contains a newline');
  return v;
}

/* gateway/gift.h, "Gift canonical bytes". */
function giftCanonical(r) {
  return ['livegate.gift.v1', str(r.room, 'room'), str(r.uid, 'uid'), str(r.gift, 'gift'),
          dec(r.count, 'count'), str(r.txn, 'txn'), dec(r.ts, 'ts'), str(r.nonce, 'nonce')].join('\n');
}

/* gateway/gift.h, "Receipt canonical bytes". */
function receiptCanonical(r) {
  return ['livegate.receipt.v1', str(r.room, 'room'), str(r.uid, 'uid'), str(r.txn, 'txn'),
          dec(r.seq, 'seq'), str(r.gift, 'gift'), dec(r.count, 'count'), dec(r.value, 'value')].join('\n');
}

/* DER prefixes of an Ed25519 PKCS#8 private key (RFC 8410) and SubjectPublicKeyInfo. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const keyCache = new Map();
/* {publicKey: Uint8Array(32), sign(msg) -> Uint8Array(64)} for a hex seed. */
function keyPair(seedHex) {
  let kp = keyCache.get(seedHex);
  if (!kp) {
    const seed = hexToBytes(seedHex);
    if (seed.length !== 32) fail('seed_hex must be 32 bytes');
    if (engine === 'tweetnacl') {
      const k = nacl.sign.keyPair.fromSeed(seed);
      kp = {publicKey: k.publicKey, sign: (m) => nacl.sign.detached(m, k.secretKey)};
    } else {
      const priv = crypto.createPrivateKey({key: Buffer.concat([PKCS8_PREFIX, Buffer.from(seed)]),
                                           format: 'der', type: 'pkcs8'});
      const spki = crypto.createPublicKey(priv).export({format: 'der', type: 'spki'});
      kp = {publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)),
            sign: (m) => new Uint8Array(crypto.sign(null, m, priv))};
    }
    keyCache.set(seedHex, kp);
  }
  return kp;
}

function verify(msg, sig, pk) {
  if (engine === 'tweetnacl') return nacl.sign.detached.verify(msg, sig, pk);
  const key = crypto.createPublicKey({key: Buffer.concat([SPKI_PREFIX, Buffer.from(pk)]),
                                      format: 'der', type: 'spki'});
  return crypto.verify(null, msg, key, sig);
}

function handle(r) {
  const op = r.op || 'sign';
  if (op === 'pk') return {pk: b64(keyPair(r.seed_hex).publicKey)};
  if (op === 'sign') {
    const kp = keyPair(r.seed_hex);
    const canonical = giftCanonical(r);
    const sig = kp.sign(Buffer.from(canonical, 'utf8'));
    const body = {uid: r.uid, gift: r.gift, count: r.count, txn: r.txn, ts: r.ts, nonce: r.nonce,
                  sig: b64(sig)};
    return {pk: b64(kp.publicKey), body: body, canonical: canonical, engine: engine};
  }
  if (op === 'verify_gift') {
    const canonical = giftCanonical(r);
    const ok = verify(Buffer.from(canonical, 'utf8'), unb64(r.sig, 64), unb64(r.pk, 32));
    return {ok: ok, canonical: canonical, engine: engine};
  }
  if (op === 'verify_receipt') {
    const canonical = receiptCanonical(r);
    const ok = verify(Buffer.from(canonical, 'utf8'), unb64(r.receipt_sig, 64), unb64(r.pk, 32));
    return {ok: ok, canonical: canonical, engine: engine};
  }
  fail('unknown op ' + JSON.stringify(op));
}

const rl = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
rl.on('line', (line) => {
  if (!line.trim()) return;
  let out;
  let r = null;
  try {
    r = JSON.parse(line);
    out = handle(r);
  } catch (e) {
    out = {error: String(e && e.message ? e.message : e)};
  }
  if (r && typeof r === 'object' && 'id' in r) out.id = r.id;
  process.stdout.write(JSON.stringify(out) + '\n');
});
