/*
 * nm_params: the parameter table (see params.h).
 *
 * Every parameter is an int64 field reached by offset, so parsing, JSON and
 * help are loops over one table. Limits are generous but finite, so sums
 * such as arrival + delay + jitter and bytes * 8 never overflow an int64.
 *
 * Threads: any thread; the table is read-only.
 */
#include "netem/params.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24 * 3600 * 1000LL)

struct row {
	const char *name;
	size_t off;
	int64_t def, min, max;
	const char *help;
};

#define F(f) offsetof(struct nm_params, f)
static const struct row rows[] = {
    {"delay_ms", F(delay_ms), 0, 0, 600000, "one-way delay added to each direction"},
    {"jitter_ms", F(jitter_ms), 0, 0, 600000,
     "each chunk's delay varies uniformly by +- this much; bytes never reorder"},
    {"rate_kbps", F(rate_kbps), 0, 0, 100000000,
     "kbit/s per connection per direction; 0 = unlimited"},
    {"burst_bytes", F(burst_bytes), 16384, 1, 1 << 30,
     "bytes a direction may send at once under rate_kbps (also the most sent per ms tick)"},
    {"stall_every_ms", F(stall_every_ms), 0, 0, DAY_MS,
     "a stall starts every this many ms, the first one this long after start or after "
     "stall settings change; 0 = never"},
    {"stall_ms", F(stall_ms), 0, 0, DAY_MS,
     "stall length: nothing is forwarded nor accepted; must be < stall_every_ms"},
    {"cut_min_ms", F(cut_min_ms), 0, 0, DAY_MS,
     "shortest connection lifetime before the relay resets both sides"},
    {"cut_max_ms", F(cut_max_ms), 0, 0, DAY_MS,
     "longest lifetime (uniform in [cut_min_ms, cut_max_ms]); 0 = never cut"},
    {"buf_bytes", F(buf_bytes), 262144, 1024, 1 << 30,
     "bytes held per connection per direction; reading stops at the cap"},
    {"max_conns", F(max_conns), 8000, 1, 1000000,
     "open relayed connections; accepting pauses at the cap (each uses 2 fds)"},
    {"connect_timeout_ms", F(connect_timeout_ms), 5000, 1, 600000,
     "upstream connect timeout; the client is reset when it expires"},
};
#undef F
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static int64_t *field(struct nm_params *p, const struct row *r)
{
	return (int64_t *)((char *)p + r->off);
}

static int64_t get(const struct nm_params *p, const struct row *r)
{
	return *(const int64_t *)((const char *)p + r->off);
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void nm_params_default(struct nm_params *p)
{
	size_t i;

	for (i = 0; i < NROWS; i++)
		*field(p, &rows[i]) = rows[i].def;
}

int nm_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	/* strtoll alone would take " 12", "+12" and "0x1"; only plain digits are meant */
	if (!s || !((s[0] >= '0' && s[0] <= '9') || (s[0] == '-' && s[1] >= '0' && s[1] <= '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static const struct row *lookup(const char *key)
{
	size_t i, j;

	for (i = 0; i < NROWS; i++) {
		const char *n = rows[i].name;

		for (j = 0; n[j] && (key[j] == n[j] || (n[j] == '_' && key[j] == '-')); j++)
			;
		if (!n[j] && !key[j])
			return &rows[i];
	}
	return NULL;
}

int nm_params_set(struct nm_params *p, const char *key, const char *val, char *err, size_t errlen)
{
	const struct row *r = lookup(key);
	int64_t v;

	if (!r) {
		seterr(err, errlen, "unknown parameter '%.64s'", key);
		return -1;
	}
	if (nm_parse_i64(val, r->min, r->max, &v)) {
		seterr(err, errlen, "%s: '%.64s' is not an integer in %lld..%lld", r->name, val,
		       (long long)r->min, (long long)r->max);
		return -1;
	}
	*field(p, r) = v;
	return 0;
}

int nm_params_check(const struct nm_params *p, char *err, size_t errlen)
{
	if (p->stall_every_ms > 0 && p->stall_ms >= p->stall_every_ms) {
		seterr(err, errlen, "stall_ms (%lld) must be < stall_every_ms (%lld)",
		       (long long)p->stall_ms, (long long)p->stall_every_ms);
		return -1;
	}
	if (p->cut_max_ms > 0 && p->cut_min_ms > p->cut_max_ms) {
		seterr(err, errlen, "cut_min_ms (%lld) must be <= cut_max_ms (%lld)",
		       (long long)p->cut_min_ms, (long long)p->cut_max_ms);
		return -1;
	}
	return 0;
}

int nm_params_apply(struct nm_params *p, char *line, char *err, size_t errlen)
{
	struct nm_params next = *p;
	char *save = NULL, *tok, *eq;
	bool any = false;

	for (tok = strtok_r(line, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		eq = strchr(tok, '=');
		if (!eq) {
			seterr(err, errlen, "expected key=value, got '%.64s'", tok);
			return -1;
		}
		*eq = '\0';
		if (nm_params_set(&next, tok, eq + 1, err, errlen))
			return -1;
		any = true;
	}
	if (!any) {
		seterr(err, errlen, "set needs at least one key=value");
		return -1;
	}
	if (nm_params_check(&next, err, errlen))
		return -1;
	*p = next;
	return 0;
}

int nm_params_json(const struct nm_params *p, char *buf, size_t len)
{
	size_t i, used = 0;
	int n;

	/* past the end, keep counting with snprintf(NULL, 0) so the result says what was needed */
	for (i = 0; i <= NROWS; i++) {
		char *at = used < len ? buf + used : NULL;
		size_t room = used < len ? len - used : 0;

		if (i == NROWS)
			n = snprintf(at, room, "}");
		else
			n = snprintf(at, room, "%s\"%s\":%lld", i ? "," : "{", rows[i].name,
			             (long long)get(p, &rows[i]));
		if (n < 0)
			return n;
		used += (size_t)n;
	}
	return (int)used;
}

/* Words of text wrapped to 80 columns, each line indented by `indent`. */
static void wrap(FILE *f, const char *text, int col, int indent)
{
	const char *w = text;

	while (*w) {
		int len = (int)strcspn(w, " ");

		if (col > indent && col + 1 + len > 80) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		col += fprintf(f, "%.*s", len, w);
		w += len;
		w += strspn(w, " ");
	}
	fputc('\n', f);
}

void nm_params_help(FILE *f)
{
	size_t i, j;
	char flag[64], text[512];
	int col;

	for (i = 0; i < NROWS; i++) {
		for (j = 0; rows[i].name[j] && j < sizeof(flag) - 1; j++)
			flag[j] = rows[i].name[j] == '_' ? '-' : rows[i].name[j];
		flag[j] = '\0';
		snprintf(text, sizeof(text), "%s (default %lld; %lld..%lld)", rows[i].help,
		         (long long)rows[i].def, (long long)rows[i].min, (long long)rows[i].max);
		col = fprintf(f, "  --%s N", flag);
		if (col < 29)
			col += fprintf(f, "%*s", 29 - col, "");
		wrap(f, text, col > 29 ? 81 : 29, 29);
	}
}

size_t nm_json_str(char *buf, size_t len, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	/* room for the closing quote and NUL is kept back at every step */
	if (len < 3) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	buf[o++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[7];
		size_t n = 0;

		if (c == '"' || c == '\\') {
			esc[n++] = '\\';
			esc[n++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			/* bytes >= 0x80 too: the answer stays valid UTF-8 whatever was sent */
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		} else {
			esc[n++] = (char)c;
		}
		if (o + n + 2 > len)
			break;
		memcpy(buf + o, esc, n);
		o += n;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return o;
}
