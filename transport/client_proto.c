/*
 * The client's pure parts (see client_proto.h): everything here is a function
 * of its arguments, so unit tests cover it without a network.
 */
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport/client_proto.h"

static const char *const transport_names[TP_CLIENT_TRANSPORTS] = {"ws", "longpoll", "shortpoll"};

const char *tp_client_transport_name(enum tp_client_transport t)
{
	if ((unsigned)t < TP_CLIENT_TRANSPORTS)
		return transport_names[t];
	return "none";
}

int tp_client_transport_parse(const char *name, enum tp_client_transport *t)
{
	for (int i = 0; i < TP_CLIENT_TRANSPORTS; i++)
		if (name && !strcmp(name, transport_names[i])) {
			*t = (enum tp_client_transport)i;
			return 0;
		}
	return -1;
}

int tp_client_valid_name(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		unsigned char ch = (unsigned char)s[n];
		if (n >= TP_CLIENT_NAME_MAX)
			return 0;
		if (!isascii(ch) || !(isalnum(ch) || ch == '_' || ch == '-'))
			return 0;
	}
	return n > 0;
}

int tp_client_url_parse(const char *url, struct tp_client_url *u, char *err, size_t errlen)
{
	static const struct {
		const char *prefix;
		int tls, port;
	} schemes[] = {
	    {"http://", 0, 80}, {"ws://", 0, 80}, {"https://", 1, 443}, {"wss://", 1, 443}};
	const char *p = NULL, *host, *host_end, *rest;
	size_t hlen;
	int bracketed = 0;

	memset(u, 0, sizeof(*u));
	for (size_t i = 0; url && i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].prefix);
		if (!strncasecmp(url, schemes[i].prefix, n)) {
			p = url + n;
			u->tls = schemes[i].tls;
			u->port = schemes[i].port;
			break;
		}
	}
	if (!p) {
		snprintf(err, errlen, "URL must start with http://, https://, ws:// or wss://");
		return -1;
	}
	host = p;
	if (*p == '[') {
		bracketed = 1;
		host = ++p;
		while (*p && *p != ']')
			p++;
		if (*p != ']') {
			snprintf(err, errlen, "URL: missing ']' after an IPv6 address");
			return -1;
		}
		host_end = p++;
	} else {
		while (*p && *p != ':' && *p != '/' && *p != '?' && *p != '#' && *p != '@')
			p++;
		host_end = p;
	}
	hlen = (size_t)(host_end - host);
	if (*p == '@') {
		snprintf(err, errlen, "URL: user info is not supported");
		return -1;
	}
	if (hlen == 0 || hlen >= TP_CLIENT_HOST_MAX) {
		snprintf(err, errlen, "URL: missing or too long host");
		return -1;
	}
	for (size_t i = 0; i < hlen; i++) {
		unsigned char ch = (unsigned char)host[i];
		int ok = isascii(ch) && (isalnum(ch) || ch == '.' || ch == '-' || ch == '_' ||
		                         (bracketed && (ch == ':' || ch == '%')));
		if (!ok) {
			snprintf(err, errlen, "URL: bad character in host");
			return -1;
		}
	}
	memcpy(u->host, host, hlen);
	u->host[hlen] = '\0';
	if (*p == ':') {
		char *end;
		long port;

		p++;
		if (!isdigit((unsigned char)*p)) {
			snprintf(err, errlen, "URL: bad port");
			return -1;
		}
		errno = 0;
		port = strtol(p, &end, 10);
		if (errno || port < 1 || port > 65535) {
			snprintf(err, errlen, "URL: port must be 1..65535");
			return -1;
		}
		u->port = (int)port;
		p = end;
	}
	rest = p;
	if (!(rest[0] == '\0' || (rest[0] == '/' && rest[1] == '\0'))) {
		snprintf(err, errlen, "URL: only scheme://host[:port] is supported, not '%s'",
		         rest);
		return -1;
	}
	snprintf(u->hostport, sizeof(u->hostport), "%s%s%s:%d", bracketed ? "[" : "", u->host,
	         bracketed ? "]" : "", u->port);
	return 0;
}

/* A path the gateway gave us that can go into a request line as it is. */
static int usable_path(const char *s)
{
	size_t n = 0;

	if (s[0] != '/')
		return 0;
	for (; s[n]; n++)
		if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f || s[n] == '#')
			return 0;
	return n < TP_CLIENT_PATH_MAX;
}

static double number_or_nan(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) &&
	    (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
		return json_object_get_double(v);
	return NAN;
}

static void copy_path(struct json_object *o, const char *key, char *out)
{
	struct json_object *v;

	out[0] = '\0';
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) &&
	    usable_path(json_object_get_string(v)))
		strcpy(out, json_object_get_string(v)); /* usable_path bounded its length */
}

int tp_client_advice_from_json(struct json_object *o, struct tp_client_advice *a)
{
	struct json_object *v;

	memset(a, 0, sizeof(*a));
	if (!json_object_is_type(o, json_type_object))
		return -1;
	if (!json_object_object_get_ex(o, "transport", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    tp_client_transport_parse(json_object_get_string(v), &a->transport))
		return -1;
	copy_path(o, "ws_url", a->ws_url);
	copy_path(o, "poll_url", a->poll_url);
	if (json_object_object_get_ex(o, "interval_ms", &v) &&
	    json_object_is_type(v, json_type_int)) {
		int64_t ms = json_object_get_int64(v);
		/* a day bounds a nonsense value without refusing the advice */
		if (ms > 0)
			a->interval_ms = ms > 86400000 ? 86400000u : (unsigned)ms;
	}
	a->rate_per_min = number_or_nan(o, "rate_per_min");
	a->disconnects = number_or_nan(o, "disconnects");
	a->connected_min = number_or_nan(o, "connected_min");
	if (json_object_object_get_ex(o, "reason", &v) &&
	    json_object_is_type(v, json_type_string)) {
		const char *r = json_object_get_string(v);
		size_t n = strlen(r);
		int printable = n < sizeof(a->reason);
		for (size_t i = 0; printable && i < n; i++)
			printable = r[i] > 0x20 && r[i] < 0x7f && r[i] != '"' && r[i] != '\\';
		if (printable)
			memcpy(a->reason, r, n + 1);
	}
	return 0;
}

/* Parse exactly one JSON value filling text[0..len) (whitespace around it allowed). */
static struct json_object *parse_json(const char *text, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;

	if (len > (size_t)INT32_MAX)
		return NULL;
	tok = json_tokener_new_ex(64);
	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o && json_tokener_get_error(tok) == json_tokener_success) {
		for (end = json_tokener_get_parse_end(tok); end < len; end++)
			if (!isspace((unsigned char)text[end]))
				break;
		if (end < len) {
			json_object_put(o);
			o = NULL;
		}
	} else {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

int tp_client_advice_parse(const char *text, size_t len, struct tp_client_advice *a)
{
	struct json_object *o = parse_json(text, len);
	int rc = o ? tp_client_advice_from_json(o, a) : -1;

	json_object_put(o);
	return rc;
}

int tp_client_error_parse(const char *text, size_t len, char *code, size_t cap,
                          struct tp_client_advice *adv)
{
	struct json_object *o = parse_json(text, len), *v;
	int have_adv = 0;

	code[0] = '\0';
	if (!o || !json_object_is_type(o, json_type_object))
		goto out;
	if (json_object_object_get_ex(o, "error", &v) && json_object_is_type(v, json_type_string))
		snprintf(code, cap, "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "advice", &v))
		have_adv = tp_client_advice_from_json(v, adv) == 0;
out:
	json_object_put(o);
	return have_adv;
}

int tp_client_connect_path(char *out, size_t cap, const char *room, const char *id)
{
	int n = snprintf(out, cap, "/v1/rooms/%s/connect?client=%s", room, id);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

unsigned tp_client_path_wait(const char *path)
{
	const char *q = strchr(path, '?');
	unsigned long v;
	char *end;

	while (q) {
		q++;
		if (!strncmp(q, "wait=", 5)) {
			if (!isdigit((unsigned char)q[5]))
				return 0;
			errno = 0;
			v = strtoul(q + 5, &end, 10);
			if (errno || (*end && *end != '&') || v > 86400)
				return 0;
			return (unsigned)v;
		}
		q = strchr(q, '&');
	}
	return 0;
}

int tp_client_transport_path(char *out, size_t cap, enum tp_client_transport t,
                             const struct tp_client_advice *adv, const char *room, const char *id,
                             unsigned default_wait_s, const char *cursor)
{
	const char *given = NULL;
	size_t len;
	int n;

	if (adv && t == TP_CLIENT_WS && adv->ws_url[0])
		given = adv->ws_url;
	else if (adv && t == TP_CLIENT_LONGPOLL && adv->poll_url[0] &&
	         tp_client_path_wait(adv->poll_url) > 0)
		given = adv->poll_url;
	else if (adv && t == TP_CLIENT_SHORTPOLL && adv->poll_url[0] &&
	         tp_client_path_wait(adv->poll_url) == 0)
		given = adv->poll_url;

	if (given)
		n = snprintf(out, cap, "%s", given);
	else if (t == TP_CLIENT_WS)
		n = snprintf(out, cap, "/v1/rooms/%s/ws?client=%s", room, id);
	else if (t == TP_CLIENT_LONGPOLL)
		n = snprintf(out, cap, "/v1/rooms/%s/poll?client=%s&wait=%u", room, id,
		             default_wait_s ? default_wait_s : 1);
	else
		n = snprintf(out, cap, "/v1/rooms/%s/poll?client=%s", room, id);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	if (!cursor || !cursor[0])
		return 0;

	len = (size_t)n;
	n = snprintf(out + len, cap - len, "%s", strchr(out, '?') ? "&since=" : "?since=");
	if (n < 0 || (size_t)n >= cap - len)
		return -1;
	len += (size_t)n;
	for (const char *c = cursor; *c; c++) {
		unsigned char ch = (unsigned char)*c;
		if (isascii(ch) &&
		    (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~')) {
			if (len + 1 >= cap)
				return -1;
			out[len++] = (char)ch;
		} else {
			if (len + 3 >= cap)
				return -1;
			snprintf(out + len, 4, "%%%02X", ch);
			len += 3;
		}
	}
	out[len] = '\0';
	return 0;
}

int tp_client_batch_parse(const char *text, size_t len, struct tp_client_batch *b, char *err,
                          size_t errlen)
{
	struct json_object *v, *root;
	size_t n;

	memset(b, 0, sizeof(*b));
	root = parse_json(text, len);
	if (!root || !json_object_is_type(root, json_type_object)) {
		snprintf(err, errlen, "not a JSON object");
		goto fail;
	}
	if (json_object_object_get_ex(root, "op", NULL)) {
		b->root = root;
		b->is_reply = 1;
		return 0;
	}
	if (!json_object_object_get_ex(root, "msgs", &b->msgs) ||
	    !json_object_is_type(b->msgs, json_type_array)) {
		snprintf(err, errlen, "no msgs array");
		goto fail;
	}
	n = json_object_array_length(b->msgs);
	for (size_t i = 0; i < n; i++) {
		struct json_object *m = json_object_array_get_idx(b->msgs, i), *seq, *ts;
		if (!json_object_is_type(m, json_type_object) ||
		    !json_object_object_get_ex(m, "seq", &seq) ||
		    !json_object_is_type(seq, json_type_int) || json_object_get_int64(seq) < 1 ||
		    !json_object_object_get_ex(m, "ts", &ts) ||
		    !json_object_is_type(ts, json_type_int)) {
			snprintf(err, errlen, "message %zu lacks an integer seq >= 1 or ts", i);
			goto fail;
		}
	}
	if (!json_object_object_get_ex(root, "cursor", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		snprintf(err, errlen, "no cursor string");
		goto fail;
	}
	b->cursor = json_object_get_string(v);
	n = strlen(b->cursor);
	if (n == 0 || n >= TP_CLIENT_CURSOR_MAX) {
		snprintf(err, errlen, "cursor empty or longer than %d bytes",
		         TP_CLIENT_CURSOR_MAX - 1);
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if (b->cursor[i] <= 0x20 || b->cursor[i] >= 0x7f) {
			snprintf(err, errlen, "cursor has a non-printable byte");
			goto fail;
		}
	if (json_object_object_get_ex(root, "gap", &v)) {
		if (!json_object_is_type(v, json_type_boolean)) {
			snprintf(err, errlen, "gap is not a boolean");
			goto fail;
		}
		b->gap = json_object_get_boolean(v);
	}
	if (json_object_object_get_ex(root, "suppressed", &v)) {
		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0) {
			snprintf(err, errlen, "suppressed is not an integer >= 0");
			goto fail;
		}
		b->suppressed = (uint64_t)json_object_get_int64(v);
	}
	/* An advice we cannot read is ignored rather than failing the batch:
	 * the messages are good, and the next advice may be readable. */
	if (json_object_object_get_ex(root, "advice", &v))
		b->has_advice = tp_client_advice_from_json(v, &b->advice) == 0;
	b->root = root;
	return 0;
fail:
	json_object_put(root);
	memset(b, 0, sizeof(*b));
	return -1;
}

void tp_client_batch_release(struct tp_client_batch *b)
{
	json_object_put(b->root);
	memset(b, 0, sizeof(*b));
}

void tp_client_batch_msg(const struct tp_client_batch *b, size_t i, struct json_object **m,
                         int64_t *seq, int64_t *ts)
{
	struct json_object *o = json_object_array_get_idx(b->msgs, i), *v;

	*m = o;
	json_object_object_get_ex(o, "seq", &v);
	*seq = json_object_get_int64(v);
	json_object_object_get_ex(o, "ts", &v);
	*ts = json_object_get_int64(v);
}

void tp_client_acct_batch(struct tp_client_acct *a, int gap, uint64_t suppressed)
{
	if (gap) {
		a->gap_flags++;
		a->have_last = 0;
		a->credit = 0;
	}
	a->suppressed += suppressed;
	a->credit += suppressed;
}

int tp_client_acct_msg(struct tp_client_acct *a, int64_t seq)
{
	if (a->have_last && seq <= a->last_seq) {
		a->duplicates++;
		return 0;
	}
	if (a->have_last && seq > a->last_seq + 1) {
		uint64_t hole = (uint64_t)(seq - a->last_seq - 1);
		uint64_t explained = hole < a->credit ? hole : a->credit;
		a->credit -= explained;
		a->gaps += hole - explained;
	}
	a->have_last = 1;
	a->last_seq = seq;
	a->delivered++;
	return 1;
}

uint64_t tp_client_rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

unsigned tp_client_backoff_ms(unsigned base_ms, unsigned max_ms, unsigned attempt, uint64_t *rng)
{
	uint64_t ceiling = base_ms;

	for (unsigned i = 0; i < attempt && ceiling < max_ms; i++)
		ceiling *= 2;
	if (ceiling > max_ms)
		ceiling = max_ms;
	return (unsigned)(tp_client_rng_next(rng) % (ceiling + 1));
}

static size_t hist_bucket(int64_t ms)
{
	if (ms < 0)
		return 0;
	if (ms < 1000)
		return (size_t)ms;
	if (ms < 10000)
		return 1000 + (size_t)(ms - 1000) / 10;
	if (ms < 120000)
		return 1900 + (size_t)(ms - 10000) / 100;
	return TP_CLIENT_HIST_BUCKETS - 1;
}

static int64_t hist_lower(size_t i)
{
	if (i < 1000)
		return (int64_t)i;
	if (i < 1900)
		return 1000 + (int64_t)(i - 1000) * 10;
	return 10000 + (int64_t)(i - 1900) * 100;
}

void tp_client_hist_add(struct tp_client_hist *h, int64_t ms)
{
	h->b[hist_bucket(ms)]++;
	h->n++;
}

int64_t tp_client_hist_quantile(const struct tp_client_hist *h, double q)
{
	uint64_t rank, seen = 0;

	if (!h->n)
		return -1;
	rank = (uint64_t)ceil(q * (double)h->n);
	if (rank < 1)
		rank = 1;
	if (rank > h->n)
		rank = h->n;
	for (size_t i = 0; i < TP_CLIENT_HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank)
			return hist_lower(i);
	}
	return hist_lower(TP_CLIENT_HIST_BUCKETS - 1);
}
