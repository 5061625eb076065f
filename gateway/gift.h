/*
 * Signed gifts: parse and validate a gift request, rebuild the exact bytes
 * its sender signed, verify the signature, and sign the receipt.
 *
 * Why: gifts are money. Each viewer device holds its own Ed25519 key and
 * signs every gift; the gateway only credits a gift whose signature verifies
 * against the key registered for that uid, and answers with a receipt signed
 * by the server key. Both sides therefore have to build byte-identical
 * messages, which is what the formats below pin down.
 *
 * Threads: pure functions on caller-owned memory; any thread.
 *
 * ---- Gift request (POST /v1/rooms/{room}/gifts, JSON object) ----------------
 *
 *   {"uid":"viewer_42","gift":"rose","count":3,"txn":"t-0001",
 *    "ts":1700000000000,"nonce":"00112233445566778899aabbccddeeff","sig":"..."}
 *
 *   uid    string, [A-Za-z0-9_-]{1,64}         the sender; selects the public key
 *   gift   string, [a-z0-9_-]{1,32}            catalog id
 *   count  JSON integer, 1..9999               (1.0, "3", 3e0 are refused)
 *   txn    string, [A-Za-z0-9_-]{1,64}         client transaction id (idempotency)
 *   ts     JSON integer, 1..9007199254740991   ms since the Unix epoch (2^53-1 bound:
 *                                              JavaScript clients cannot go past it)
 *   nonce  string, lowercase hex, even length, 32..128 characters (>= 16 random bytes)
 *   sig    string, standard base64 (RFC 4648 section 4, '+' '/', '=' padding required,
 *          no whitespace, canonical trailing bits) of the 64-byte Ed25519 detached
 *          signature: always 88 characters ending in "=="
 *
 *   Other members are ignored: they are not signed, so nothing may trust them.
 *   Errors are 400 with code bad_field (member missing or of the wrong JSON
 *   type, or ts out of range), bad_uid, bad_gift, bad_count, bad_txn,
 *   bad_nonce, bad_sig (not base64 of exactly 64 bytes).
 *
 * ---- Gift canonical bytes (what the viewer signs) --------------------------
 *
 *   Eight fields as UTF-8 (all ASCII given the grammars above), joined by a
 *   single '\n' (0x0a), no trailing newline, no other whitespace:
 *
 *     livegate.gift.v1\n{room}\n{uid}\n{gift}\n{count}\n{txn}\n{ts}\n{nonce}
 *
 *   {room}   the room from the URL path, [A-Za-z0-9_-]{1,64}; signing it binds
 *            the gift to one room, so it cannot be replayed into another
 *   {count}  decimal, no sign, no leading zeros ("3", never "03" or "+3")
 *   {ts}     decimal, no sign, no leading zeros ("1700000000000")
 *   others   exactly the JSON string values
 *
 *   Example: room "lobby-1" and the request above give these 95 bytes
 *   (C string notation):
 *
 *     "livegate.gift.v1\nlobby-1\nviewer_42\nrose\n3\nt-0001\n1700000000000\n"
 *     "00112233445566778899aabbccddeeff"
 *
 *   With the RFC 8032 section 7.1 TEST 1 seed as the viewer's secret key,
 *     seed 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60
 *     pk   d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a
 *          (base64 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=)
 *   the "sig" of that example is
 *     AbofcrBE3DytjwEMjwTcQkQpGYKoQhPKIN02Vy0iObp0q2Gw+5jTjilwpfgMsxSWaS1sKMtW+K5aw3VcReE+AA==
 *   (Ed25519 is deterministic, so any correct implementation reproduces it.)
 *
 * ---- Receipt (the answer to an accepted gift) ------------------------------
 *
 *   {"txn":"t-0001","seq":17,"status":"accepted","receipt_sig":"..."}
 *
 *   txn          the request's txn
 *   seq          the gift's sequence number in the room (JSON integer)
 *   receipt_sig  standard base64 (as sig above) of the server key's Ed25519
 *                detached signature over the receipt canonical bytes
 *
 * ---- Receipt canonical bytes (what the server signs) -----------------------
 *
 *     livegate.receipt.v1\n{room}\n{uid}\n{txn}\n{seq}\n{gift}\n{count}\n{value}
 *
 *   Same joining rules as the gift form. {seq} and {value} are decimal
 *   without sign or leading zeros (0 is "0"). {value} is the total the gateway
 *   charged (catalog price x count, in the catalog's unit); it is signed but
 *   not sent, because the client knows the catalog: a receipt only verifies
 *   if client and server agree on it. The different first line keeps a
 *   receipt signature from ever being valid as a gift signature and back.
 *
 *   Example: the gift above accepted as seq 17 with value 30 gives these 57 bytes:
 *
 *     "livegate.receipt.v1\nlobby-1\nviewer_42\nt-0001\n17\nrose\n3\n30"
 *
 *   With the RFC 8032 section 7.1 TEST 2 seed as the server key,
 *     seed 4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb
 *     pk   PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw= (base64)
 *   the receipt is
 *     {"txn":"t-0001","seq":17,"status":"accepted","receipt_sig":
 *      "gQCSvOZeRUIrcbwCVafaPDzyy9bnGZo+0/HuqEmc3QscRpOX4wdVpNKO2Z5fKldxnAVbrX/9jA+7I+/6vie7CA=="}
 *   (one line on the wire; broken here to fit).
 */
#ifndef GW_GIFT_H
#define GW_GIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/buf.h"
#include "gateway/error.h"

struct json_object;

#define GW_GIFT_UID_MAX   64
#define GW_GIFT_TXN_MAX   64
#define GW_GIFT_ID_MAX    32
#define GW_GIFT_NONCE_MIN 32
#define GW_GIFT_NONCE_MAX 128
#define GW_GIFT_COUNT_MAX 9999
#define GW_GIFT_TS_MAX    9007199254740991ll /* 2^53 - 1 */
#define GW_GIFT_SIG_BYTES 64

/* Buffer sizes that hold any canonical form plus its NUL (the longest are 395 and 294 bytes). */
#define GW_GIFT_CANONICAL_MAX   512
#define GW_RECEIPT_CANONICAL_MAX 512

/* A validated gift request. Strings are NUL-terminated and match the grammars above. */
struct gw_gift {
	char uid[GW_GIFT_UID_MAX + 1];
	char gift[GW_GIFT_ID_MAX + 1];
	char txn[GW_GIFT_TXN_MAX + 1];
	char nonce[GW_GIFT_NONCE_MAX + 1];
	uint32_t count;
	int64_t ts;
	unsigned char sig[GW_GIFT_SIG_BYTES];
};

/*
 * Parse and validate a gift request object into *g (zeroed first). Returns 0,
 * or -1 with *err set (400 and one of the codes listed above). Does not check
 * the signature, the catalog, the clock or replays: that is the caller's.
 */
int gw_gift_from_json(struct json_object *obj, struct gw_gift *g, struct gw_err *err);

/*
 * The WebSocket gift op in its plain form, read without a JSON library (json-c
 * costs a visible share of a gift's CPU): one object whose members are
 * exactly "op":"gift", at most one "id" and the seven request members, each
 * once, in any order; string values without escapes, control or non-ASCII
 * characters; integer values as digits only (no sign, leading zero, fraction
 * or exponent); an "id" that is such an integer (at most 18 digits) or a
 * string of [A-Za-z0-9_-]{1,64}; JSON whitespace between tokens and nothing
 * after the closing brace; every member passing its grammar above.
 * Returns true with *g filled and the id written as JSON text into
 * id[0..idcap) ("null" when absent; idcap >= 67 holds any). Returns false for
 * anything else, valid or not: the caller then takes the full path (json-c and
 * gw_gift_from_json), which accepts the same messages with the same result and
 * words every error, so this path never answers differently.
 */
bool gw_gift_parse_op(const char *msg, size_t len, struct gw_gift *g, char *id, size_t idcap);

/*
 * Write the gift canonical bytes for room[0..room_len) into out[0..cap),
 * NUL-terminated. Returns their length (without the NUL), or 0 when the room
 * or any field of *g breaks its grammar (so a hand-filled gift with count 0
 * has no canonical form) or cap is too small (GW_GIFT_CANONICAL_MAX is enough).
 */
size_t gw_gift_canonical(const struct gw_gift *g, const char *room, size_t room_len, char *out,
			 size_t cap);

/* True when g->sig is pk's signature over g's canonical bytes for this room. */
bool gw_gift_verify(const struct gw_gift *g, const char *room, size_t room_len,
		    const unsigned char pk[32]);

/*
 * Write the receipt canonical bytes into out[0..cap), NUL-terminated. Returns
 * the length, or 0 on an invalid room/gift or too small cap.
 */
size_t gw_gift_receipt_canonical(const struct gw_gift *g, const char *room, size_t room_len,
				 uint64_t seq, uint64_t value, char *out, size_t cap);

/*
 * Sign the receipt with server_sk and append its compact JSON to *out:
 *   {"txn":"...","seq":N,"status":"accepted","receipt_sig":"..."}
 * Returns 0, or -1 (invalid room/gift, or out of memory) with *out unchanged.
 */
int gw_gift_receipt(const struct gw_gift *g, const char *room, size_t room_len, uint64_t seq,
		    uint64_t value, const unsigned char server_sk[64], struct gw_buf *out);

#endif
