/*
 * livegate-gift: a viewer device's side of signed gifts, for testing and
 * operations. It makes a device keypair, signs gift requests exactly as
 * gateway/gift.h specifies, and can POST them to a gateway.
 *
 *   livegate-gift keygen [--out FILE]
 *   livegate-gift sign --key SEEDFILE --room R --uid U --gift G --count N --txn T
 *                      [--ts MS] [--nonce HEX]
 *   livegate-gift send --url http://HOST:PORT ...the sign options...
 *
 * Why its own HTTP client: one POST over plain http to a gateway the operator
 * names (usually loopback) needs no new dependency; TLS belongs in front of it.
 * Requests are validated with the gateway's own gw_gift_from_json before they
 * are signed, so the tool never emits a body the gateway would refuse for its
 * form.
 *
 * Seed file: the 32-byte Ed25519 seed in standard base64 (44 characters),
 * optionally followed by a newline; written 0600 by keygen --out. (The
 * gateway's own server key file is raw bytes instead: see crypto/sign.h.)
 *
 * Exit status: 0 success (send: a 2xx answer), 1 failure (send: a non-2xx
 * answer, network or protocol error), 2 usage or invalid input.
 * Single-threaded.
 */
#define _GNU_SOURCE /* asprintf, memmem */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <netdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "crypto/b64.h"
#include "crypto/sign.h"
#include "gateway/gift.h"
#include "gateway/room.h"

#define PROG              "livegate-gift"
#define RESPONSE_MAX      (1u << 20)
#define NETWORK_TIMEOUT_S 10

static const char usage_top[] =
	"usage: " PROG " COMMAND [options]\n"
	"\n"
	"Sign livegate gifts the way a viewer device does (format: gateway/gift.h).\n"
	"\n"
	"commands:\n"
	"  keygen   make a device keypair\n"
	"  sign     print a signed gift request body\n"
	"  send     sign and POST it to a gateway\n"
	"\n"
	"'" PROG " COMMAND --help' describes each.\n";

static const char usage_keygen[] =
	"usage: " PROG " keygen [--out FILE]\n"
	"\n"
	"Make a random Ed25519 keypair. Line 1 of stdout is the public key (standard\n"
	"base64), the value the gateway registers for a uid; the key does not depend\n"
	"on any uid.\n"
	"\n"
	"  --out FILE  write the secret 32-byte seed, base64, to FILE (created with\n"
	"              mode 0600; an existing FILE is not overwritten). Without it\n"
	"              the seed is line 2 of stdout: keep it secret.\n";

static const char usage_sign[] =
	"usage: " PROG " sign --key SEEDFILE --room R --uid U --gift G --count N --txn T\n"
	"                     [--ts MS] [--nonce HEX]\n"
	"\n"
	"Print the JSON body of a gift request signed with the seed in SEEDFILE.\n"
	"\n"
	"  --key SEEDFILE  base64 seed, as written by keygen --out\n"
	"  --room R        room the gift is for ([A-Za-z0-9_-]{1,64}; signed, not in the body)\n"
	"  --uid U         sender ([A-Za-z0-9_-]{1,64})\n"
	"  --gift G        catalog id ([a-z0-9_-]{1,32})\n"
	"  --count N       1..9999\n"
	"  --txn T         transaction id ([A-Za-z0-9_-]{1,64})\n"
	"  --ts MS         ms since the epoch (default: now)\n"
	"  --nonce HEX     32..128 lowercase hex digits (default: 16 random bytes)\n";

static const char usage_send[] =
	"usage: " PROG " send --url http://HOST:PORT[/PREFIX] --key SEEDFILE --room R\n"
	"                     --uid U --gift G --count N --txn T [--ts MS] [--nonce HEX]\n"
	"\n"
	"Sign like 'sign' and POST the body to URL/v1/rooms/R/gifts over plain HTTP/1.1.\n"
	"Prints the status line and the response body; exits 0 on a 2xx answer, 1\n"
	"otherwise. HOST may be a name, an IPv4 address or a bracketed IPv6 address;\n"
	"PORT defaults to 80. The other options are those of sign.\n";

struct opts {
	const char *out, *key, *room, *uid, *gift, *count, *txn, *ts, *nonce, *url;
};

/* Digits only, no sign, no leading zero, at most 16 of them: the form the gateway signs. */
static int parse_decimal(const char *s, int64_t *v)
{
	int64_t n = 0;
	size_t len = strlen(s);

	if (len < 1 || len > 16 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		n = n * 10 + (s[i] - '0');
	}
	*v = n;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The seed from a keygen --out file: base64, trailing whitespace allowed. */
static int load_seed(const char *path, unsigned char seed[32])
{
	char text[128];
	size_t len = 0, n;
	ssize_t r;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, PROG ": cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (len < sizeof(text) && (r = read(fd, text + len, sizeof(text) - len)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, PROG ": cannot read %s: %s\n", path, strerror(errno));
			goto out;
		}
		len += (size_t)r;
	}
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
		       text[len - 1] == '\t'))
		len--;
	if (cr_b64_decode(text, len, seed, 32, &n) || n != 32) {
		fprintf(stderr,
			PROG ": %s does not hold a base64 32-byte seed (see keygen --out)\n", path);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(text, sizeof(text));
	close(fd);
	return rc;
}

static int write_seed_file(const char *path, const char *seed64)
{
	size_t len = strlen(seed64);
	int fd, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, PROG ": cannot create %s: %s%s\n", path, strerror(errno),
			errno == EEXIST ? " (not overwriting a key)" : "");
		return -1;
	}
	if (write(fd, seed64, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd)) {
		fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (close(fd) && !rc) {
		fprintf(stderr, PROG ": cannot write %s: %s\n", path, strerror(errno));
		rc = -1;
	}
	if (rc)
		unlink(path);
	return rc;
}

static int cmd_keygen(const struct opts *o)
{
	unsigned char pk[32], sk[64];
	char pk64[64], seed64[64];
	int rc = 1;

	if (cr_keypair_generate(pk, sk)) {
		fprintf(stderr, PROG ": key generation failed\n");
		return 1;
	}
	cr_b64_encode(pk, sizeof(pk), pk64);
	cr_b64_encode(sk, 32, seed64); /* libsodium's sk starts with the seed */
	if (o->out) {
		if (write_seed_file(o->out, seed64))
			goto out;
		printf("%s\n", pk64);
	} else {
		printf("%s\n%s\n", pk64, seed64);
		fprintf(stderr, PROG ": line 1 is the public key, line 2 the secret seed\n");
	}
	rc = fflush(stdout) ? 1 : 0;
out:
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(seed64, sizeof(seed64));
	return rc;
}

/*
 * Build, validate and sign the request body. Returns a new json object, or
 * NULL after printing why (exit status 2).
 */
static struct json_object *signed_body(const struct opts *o)
{
	static const unsigned char zero_sig[GW_GIFT_SIG_BYTES];
	unsigned char seed[32], pk[32], sk[64], nonce_bytes[16];
	char nonce[2 * sizeof(nonce_bytes) + 1], sig64[GW_GIFT_SIG_BYTES * 2];
	char msg[GW_GIFT_CANONICAL_MAX];
	struct json_object *body = NULL;
	struct gw_gift g;
	struct gw_err err;
	int64_t count, ts;
	size_t n;
	int ok = 0;

	if (!o->key || !o->room || !o->uid || !o->gift || !o->count || !o->txn) {
		fprintf(stderr, PROG ": --key, --room, --uid, --gift, --count and --txn are "
				"required (see --help)\n");
		return NULL;
	}
	if (!gw_name_valid(o->room, strlen(o->room))) {
		fprintf(stderr, PROG ": --room must match [A-Za-z0-9_-]{1,64}\n");
		return NULL;
	}
	if (parse_decimal(o->count, &count)) {
		fprintf(stderr, PROG ": --count must be a decimal number without sign or "
				"leading zeros\n");
		return NULL;
	}
	if (o->ts) {
		if (parse_decimal(o->ts, &ts)) {
			fprintf(stderr, PROG ": --ts must be ms since the epoch in decimal\n");
			return NULL;
		}
	} else {
		ts = now_ms();
	}
	if (!o->nonce) {
		randombytes_buf(nonce_bytes, sizeof(nonce_bytes));
		cr_hex_encode(nonce_bytes, sizeof(nonce_bytes), nonce);
	}
	if (load_seed(o->key, seed))
		return NULL;

	cr_b64_encode(zero_sig, sizeof(zero_sig), sig64);
	body = json_object_new_object();
	if (!body || json_object_object_add(body, "uid", json_object_new_string(o->uid)) ||
	    json_object_object_add(body, "gift", json_object_new_string(o->gift)) ||
	    json_object_object_add(body, "count", json_object_new_int64(count)) ||
	    json_object_object_add(body, "txn", json_object_new_string(o->txn)) ||
	    json_object_object_add(body, "ts", json_object_new_int64(ts)) ||
	    json_object_object_add(body, "nonce",
				   json_object_new_string(o->nonce ? o->nonce : nonce)) ||
	    json_object_object_add(body, "sig", json_object_new_string(sig64))) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	/* The gateway's own checks, with its messages, before anything is signed. */
	if (gw_gift_from_json(body, &g, &err)) {
		fprintf(stderr, PROG ": %s: %s\n", err.code, err.detail);
		goto out;
	}
	n = gw_gift_canonical(&g, o->room, strlen(o->room), msg, sizeof(msg));
	if (!n || cr_keypair_from_seed(seed, pk, sk)) {
		fprintf(stderr, PROG ": cannot build the signed message\n");
		goto out;
	}
	cr_sign(sk, msg, n, g.sig);
	cr_b64_encode(g.sig, sizeof(g.sig), sig64);
	if (json_object_object_add(body, "sig", json_object_new_string(sig64))) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	ok = 1;
out:
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	if (!ok) {
		json_object_put(body);
		body = NULL;
	}
	return body;
}

static const char *body_text(struct json_object *body)
{
	/* Plain and without "\/": base64 is full of slashes. */
	return json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE);
}

static int cmd_sign(const struct opts *o)
{
	struct json_object *body = signed_body(o);

	if (!body)
		return 2;
	printf("%s\n", body_text(body));
	json_object_put(body);
	return fflush(stdout) ? 1 : 0;
}

/* ---- send: a minimal blocking HTTP/1.1 client ---- */

struct url {
	char host[256];  /* without brackets */
	char port[8];
	char authority[300]; /* for the Host header, as given */
	char prefix[512];    /* path before /v1, no trailing '/' */
};

static int parse_url(const char *s, struct url *u)
{
	const char *auth, *end, *host, *host_end, *port = NULL;
	size_t n;

	memset(u, 0, sizeof(*u));
	if (!strncasecmp(s, "https://", 8)) {
		fprintf(stderr, PROG ": https is not supported; use http:// (e.g. to a local "
				"listener or a TLS terminator's backend)\n");
		return -1;
	}
	if (strncasecmp(s, "http://", 7)) {
		fprintf(stderr, PROG ": --url must start with http://\n");
		return -1;
	}
	/* The prefix is pasted into the request line: nothing that could end or split it. */
	if (strpbrk(s, "?# \t\r\n")) {
		fprintf(stderr, PROG ": --url takes no query, fragment or whitespace\n");
		return -1;
	}
	auth = s + 7;
	end = auth + strcspn(auth, "/");
	if (*auth == '[') {
		host = auth + 1;
		host_end = memchr(host, ']', (size_t)(end - host));
		if (!host_end || (host_end + 1 != end && host_end[1] != ':'))
			goto bad;
		if (host_end + 1 != end)
			port = host_end + 2;
	} else {
		host = auth;
		host_end = memchr(auth, ':', (size_t)(end - auth));
		if (host_end)
			port = host_end + 1;
		else
			host_end = end;
	}
	n = (size_t)(host_end - host);
	if (!n || n >= sizeof(u->host) || memchr(host, '@', n))
		goto bad;
	memcpy(u->host, host, n);
	if (port) {
		n = (size_t)(end - port);
		if (!n || n > 5 || strspn(port, "0123456789") < n || atoi(port) < 1 ||
		    atoi(port) > 65535)
			goto bad;
		memcpy(u->port, port, n);
	} else {
		strcpy(u->port, "80");
	}
	n = (size_t)(end - auth);
	if (n >= sizeof(u->authority))
		goto bad;
	memcpy(u->authority, auth, n);
	n = strlen(end);
	while (n && end[n - 1] == '/')
		n--;
	if (n >= sizeof(u->prefix))
		goto bad;
	memcpy(u->prefix, end, n);
	return 0;
bad:
	fprintf(stderr, PROG ": cannot parse --url %s (want http://HOST[:PORT][/PREFIX])\n", s);
	return -1;
}

static int connect_to(const struct url *u)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res, *ai;
	struct timeval tv = {.tv_sec = NETWORK_TIMEOUT_S};
	int fd = -1, gai, saved = 0;

	gai = getaddrinfo(u->host, u->port, &hints, &res);
	if (gai) {
		fprintf(stderr, PROG ": cannot resolve %s: %s\n", u->host, gai_strerror(gai));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		/* Bounded waits: on Linux SO_SNDTIMEO also bounds connect(). */
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		fprintf(stderr, PROG ": cannot connect to %s port %s: %s\n", u->host, u->port,
			strerror(saved));
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Case-insensitive search for a header line's value in head[0..len); NULL if absent. */
static const char *header(const char *head, size_t len, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);
	const char *p = memchr(head, '\n', len), *end = head + len;

	while (p && p + 1 < end) {
		const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));

		if (!eol)
			break;
		if ((size_t)(eol - line) > nlen && !strncasecmp(line, name, nlen) &&
		    line[nlen] == ':') {
			const char *v = line + nlen + 1;

			while (v < eol && (*v == ' ' || *v == '\t'))
				v++;
			*vlen = (size_t)(eol - v);
			while (*vlen && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' '))
				(*vlen)--;
			return v;
		}
		p = eol;
	}
	return NULL;
}

/*
 * Decode a chunked body in[0..len) into out. Returns 1 when the last chunk
 * was seen, 0 when more input is needed, -1 when malformed.
 */
static int dechunk(const char *in, size_t len, char *out, size_t *outlen)
{
	size_t pos = 0, o = 0;

	for (;;) {
		const char *eol = memchr(in + pos, '\n', len - pos);
		unsigned long long size;
		char *endp;

		if (!eol)
			return 0;
		errno = 0;
		size = strtoull(in + pos, &endp, 16);
		if (endp == in + pos || errno || size > RESPONSE_MAX)
			return -1;
		pos = (size_t)(eol - in) + 1;
		if (!size) {
			*outlen = o;
			return 1; /* trailers, if any, do not matter here */
		}
		if (len - pos < size + 2)
			return 0;
		memcpy(out + o, in + pos, size);
		o += size;
		pos += size;
		if (in[pos] == '\r')
			pos++;
		if (in[pos] != '\n')
			return -1;
		pos++;
	}
}

/*
 * Is the response in buf[0..len) complete? 1 with *body and *bodylen set (body
 * points into buf or into dechunked), 0 need more, -1 malformed. At EOF an
 * unframed body is complete whatever its length.
 */
static int response_done(const char *buf, size_t len, int eof, char *dechunked, const char **body,
			 size_t *bodylen)
{
	const char *sep = memmem(buf, len, "\r\n\r\n", 4), *v;
	size_t head, vlen;
	int r;

	if (!sep)
		return eof ? -1 : 0;
	head = (size_t)(sep - buf) + 4;
	v = header(buf, head, "Transfer-Encoding", &vlen);
	if (v && vlen == 7 && !strncasecmp(v, "chunked", 7)) {
		r = dechunk(buf + head, len - head, dechunked, bodylen);
		if (r == 0 && eof)
			return -1;
		*body = dechunked;
		return r;
	}
	v = header(buf, head, "Content-Length", &vlen);
	if (v) {
		unsigned long long cl = strtoull(v, NULL, 10);

		if (len - head < cl)
			return eof ? -1 : 0;
		*body = buf + head;
		*bodylen = (size_t)cl;
		return 1;
	}
	if (!eof)
		return 0;
	*body = buf + head;
	*bodylen = len - head;
	return 1;
}

static int cmd_send(const struct opts *o)
{
	struct json_object *body = NULL;
	char *req = NULL, *resp = NULL, *dechunked = NULL;
	const char *text, *rbody = NULL;
	size_t rlen = 0, rbodylen = 0, reqlen;
	struct url u;
	int fd = -1, rc = 2, done = 0, status;
	char line[128];

	if (!o->url) {
		fprintf(stderr, PROG ": send needs --url (see send --help)\n");
		return 2;
	}
	if (parse_url(o->url, &u))
		return 2;
	body = signed_body(o);
	if (!body)
		return 2;
	text = body_text(body);
	rc = 1;
	if (asprintf(&req,
		     "POST %s/v1/rooms/%s/gifts HTTP/1.1\r\n"
		     "Host: %s\r\n"
		     "User-Agent: " PROG "\r\n"
		     "Content-Type: application/json\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: close\r\n"
		     "\r\n%s",
		     u.prefix, o->room, u.authority, strlen(text), text) < 0) {
		req = NULL;
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	reqlen = strlen(req);
	resp = malloc(RESPONSE_MAX + 1);
	dechunked = malloc(RESPONSE_MAX);
	if (!resp || !dechunked) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out;
	}
	fd = connect_to(&u);
	if (fd < 0)
		goto out;
	if (send_all(fd, req, reqlen)) {
		fprintf(stderr, PROG ": cannot send the request: %s\n", strerror(errno));
		goto out;
	}
	/* Read until the response is complete by its own framing, or the server closes. */
	while (!done) {
		ssize_t r = recv(fd, resp + rlen, RESPONSE_MAX - rlen, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, PROG ": no complete response: %s\n",
				errno == EAGAIN ? "timed out" : strerror(errno));
			goto out;
		}
		rlen += (size_t)r;
		done = response_done(resp, rlen, r == 0 || rlen == RESPONSE_MAX, dechunked,
				     &rbody, &rbodylen);
		if (done < 0) {
			fprintf(stderr, PROG ": malformed or truncated HTTP response\n");
			goto out;
		}
	}
	resp[rlen] = 0;
	if (sscanf(resp, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 100 || status > 599) {
		fprintf(stderr, PROG ": not an HTTP/1.x response\n");
		goto out;
	}
	snprintf(line, sizeof(line), "%.*s", (int)strcspn(resp, "\r\n"), resp);
	printf("%s\n", line);
	fwrite(rbody, 1, rbodylen, stdout);
	if (rbodylen && rbody[rbodylen - 1] != '\n')
		putchar('\n');
	if (fflush(stdout))
		goto out;
	rc = status >= 200 && status <= 299 ? 0 : 1;
out:
	if (fd >= 0)
		close(fd);
	free(req);
	free(resp);
	free(dechunked);
	json_object_put(body);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"out", required_argument, NULL, 'o'},   {"key", required_argument, NULL, 'k'},
		{"room", required_argument, NULL, 'r'},  {"uid", required_argument, NULL, 'u'},
		{"gift", required_argument, NULL, 'g'},  {"count", required_argument, NULL, 'c'},
		{"txn", required_argument, NULL, 't'},   {"ts", required_argument, NULL, 's'},
		{"nonce", required_argument, NULL, 'n'}, {"url", required_argument, NULL, 'U'},
		{"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
	};
	struct opts o = {0};
	const char *cmd, *usage;
	int c;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		fputs(usage_top, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "keygen"))
		usage = usage_keygen;
	else if (!strcmp(cmd, "sign"))
		usage = usage_sign;
	else if (!strcmp(cmd, "send"))
		usage = usage_send;
	else {
		fprintf(stderr, PROG ": unknown command '%s'\n\n%s", cmd, usage_top);
		return 2;
	}
	/* Parse the options after the command word; getopt sees the command as argv[0]. */
	argc--;
	argv++;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage, stdout);
			return 0;
		case 'o':
			o.out = optarg;
			break;
		case 'k':
			o.key = optarg;
			break;
		case 'r':
			o.room = optarg;
			break;
		case 'u':
			o.uid = optarg;
			break;
		case 'g':
			o.gift = optarg;
			break;
		case 'c':
			o.count = optarg;
			break;
		case 't':
			o.txn = optarg;
			break;
		case 's':
			o.ts = optarg;
			break;
		case 'n':
			o.nonce = optarg;
			break;
		case 'U':
			o.url = optarg;
			break;
		default:
			fprintf(stderr, PROG " %s: bad option '%s'\n\n%s", cmd, argv[optind - 1],
				usage);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG " %s: unexpected argument '%s'\n\n%s", cmd, argv[optind],
			usage);
		return 2;
	}
	/* Options of another command are a mistake, not something to ignore silently. */
	if ((usage == usage_keygen && (o.key || o.room || o.uid || o.gift || o.count || o.txn ||
				       o.ts || o.nonce || o.url)) ||
	    (usage != usage_keygen && o.out) || (usage == usage_sign && o.url)) {
		fprintf(stderr, PROG " %s: option not valid for this command\n\n%s", cmd, usage);
		return 2;
	}
	if (cr_sign_init()) {
		fprintf(stderr, PROG ": libsodium failed to initialise\n");
		return 1;
	}
	if (usage == usage_keygen)
		return cmd_keygen(&o);
	if (usage == usage_sign)
		return cmd_sign(&o);
	return cmd_send(&o);
}
