/*
 * gw_filter: blocked-words filter, one Aho-Corasick automaton over all words
 * (see filter.h).
 *
 * Representation. A complete DFA (one row of next states per state) makes
 * every byte a single lookup, but 10,000 six-byte words give ~60,000 states,
 * and 256 x 4 bytes per row is 60 MB. Byte classes (0 for bytes in no word,
 * then one per distinct word byte, A-Z sharing a-z's) shrink the rows but not
 * enough: a CJK list alone uses ~70 distinct bytes (all 64 continuation bytes
 * among them), still ~17 MB. So only the root and states with at least
 * DENSE_MIN_CHILDREN children get a complete row over the classes: that is
 * where the fan-out is, near the root, and where fail links land. The other
 * states, most of them (deep in the trie, one child), keep only their goto
 * edges. The trie is numbered in BFS order from the sorted word list, so the
 * children of a state are a contiguous, class-sorted id range
 * [first[s], first[s + 1]): an edge costs one label byte, its target is
 * implicit, and fewer than DENSE_MIN_CHILDREN are scanned linearly. A trie has
 * fewer states with k+ children than words / (k - 1), so with at most 218
 * classes (valid UTF-8 minus A-Z) the rows stay under 3 MB for 10,000 words
 * even in the worst case; measured, 10,000 random six-byte words take 0.9 MB
 * in all (ASCII or CJK), 1.4 MB with 2-byte characters (more distinct bytes).
 *
 * Scanning: a byte in no word resets to the root at once; a dense state
 * answers with one lookup; a sparse one checks its few edges and on a miss
 * follows its fail link. Every fail step strictly shortens the current match
 * and every byte lengthens it by at most one, so a text of n bytes costs fewer
 * than 2n steps whatever the number of words; typically a miss reaches a dense
 * state in one link. Fail links skip states without children (they can never
 * take a goto edge). Output is precomputed per state: how many words end here
 * (its own word plus all words on its fail chain) and the longest of them, so
 * reporting a position is O(1) too, never a per-word loop.
 *
 * Words are folded (A-Z to a-z) when built and text bytes when scanned; other
 * bytes match exactly. Duplicate words (after folding) are stored once, and
 * words that are not valid UTF-8 are skipped, so that a match always covers
 * whole characters and masking keeps valid text valid.
 *
 * Masking marks matched bytes in place while scanning (only bytes at or before
 * the current position, which the automaton has already read), using bytes
 * that valid UTF-8 never contains: 0xFF for a character's first byte, 0xFE for
 * its continuation bytes. A second pass turns 0xFF into '*' and drops 0xFE.
 * Overlapping and adjacent matches merge for free, and no allocation is
 * needed.
 *
 * Threads: built once, then immutable; any number of threads may scan one
 * filter concurrently.
 */
#include "gateway/filter.h"

#include "gateway/utf8.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARK_LEAD 0xff /* first byte of a masked character, becomes '*' */
#define MARK_CONT 0xfe /* other bytes of a masked character, dropped */

/* States with this many children get a dense row; fewer are searched linearly. */
#define DENSE_MIN_CHILDREN 4
#define NO_ROW             UINT32_MAX

struct gw_filter {
	size_t nwords;
	uint32_t nstates;
	uint32_t nclasses; /* byte classes: 0 = in no word, then one per distinct byte */
	uint8_t cls[256];  /* text byte -> class, ASCII case folded */
	uint32_t *first;   /* [nstates + 1]: children of s are first[s] .. first[s + 1] - 1 */
	uint32_t *fail;    /* longest proper suffix state that has children (or root) */
	uint32_t *count;   /* words ending at this state, fail chain included */
	uint32_t *outlen;  /* bytes of the longest of them (0 when count is 0) */
	uint32_t *dense;   /* row of s in rows, or NO_ROW */
	uint8_t *label;    /* class on the edge into s; ascending within a child range */
	uint32_t *rows;    /* nclasses entries per dense state: the complete transition */
};

/* A word to insert: folded bytes, not NUL-terminated. */
struct span {
	const unsigned char *p;
	size_t len;
};

static inline unsigned char fold(unsigned char c)
{
	return (unsigned char)((unsigned)c - 'A' < 26u ? c + ('a' - 'A') : c);
}

static inline uint32_t step(const struct gw_filter *f, uint32_t s, unsigned c)
{
	if (!c)
		return 0; /* a byte no word contains: every match breaks */
	for (;;) {
		uint32_t r = f->dense[s], i, end;

		if (r != NO_ROW)
			return f->rows[(size_t)r * f->nclasses + c];
		end = f->first[s + 1];
		for (i = f->first[s]; i < end; i++)
			if (f->label[i] == c)
				return i;
		s = f->fail[s];
	}
}

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int r = n ? memcmp(x->p, y->p, n) : 0;

	if (r)
		return r;
	return (x->len > y->len) - (x->len < y->len);
}

/*
 * Build from folded, valid words; sorts and dedupes w in place. The sorted
 * order is what makes BFS numbering give each state a contiguous, sorted
 * child range: the words below a state are a contiguous run of w.
 */
static struct gw_filter *build(struct span *w, size_t n)
{
	struct gw_filter *f = NULL, *ret = NULL;
	uint32_t *lo = NULL, *hi = NULL, *depth = NULL, *rows = NULL;
	size_t m = 0, states = 1, nrows = 1, i;
	uint32_t ns, s, c, r;
	bool used[256] = {false};

	if (n)
		qsort(w, n, sizeof(*w), span_cmp);
	for (i = 0; i < n; i++) {
		size_t lcp = 0;

		if (m) {
			const struct span *prev = &w[m - 1];

			while (lcp < prev->len && lcp < w[i].len && prev->p[lcp] == w[i].p[lcp])
				lcp++;
			if (lcp == prev->len && lcp == w[i].len)
				continue; /* duplicate */
		}
		/* A sorted word adds a state per byte past its common prefix with the last. */
		if (w[i].len - lcp > (size_t)UINT32_MAX - 1 - states)
			goto out; /* state ids are uint32_t */
		states += w[i].len - lcp;
		for (; lcp < w[i].len; lcp++)
			used[w[i].p[lcp]] = true;
		w[m++] = w[i];
	}

	/* One block: the header, the uint32_t arrays, then the labels. */
	f = calloc(1, sizeof(*f) + (5 * states + 1) * sizeof(uint32_t) + states);
	lo = malloc(states * sizeof(*lo));
	hi = malloc(states * sizeof(*hi));
	depth = malloc(states * sizeof(*depth));
	if (!f || !lo || !hi || !depth)
		goto out;
	f->nwords = m;
	f->nstates = (uint32_t)states;
	f->first = (uint32_t *)(f + 1);
	f->fail = f->first + states + 1;
	f->count = f->fail + states;
	f->outlen = f->count + states;
	f->dense = f->outlen + states;
	f->label = (uint8_t *)(f->dense + states);

	/*
	 * Classes in byte order, so sorted bytes stay sorted classes. Valid UTF-8
	 * without A-Z uses at most 217 distinct bytes: the ids fit a uint8_t.
	 */
	f->nclasses = 1;
	for (c = 0; c < 256; c++)
		if (used[c])
			f->cls[c] = (uint8_t)f->nclasses++;
	for (c = 'A'; c <= 'Z'; c++)
		f->cls[c] = f->cls[c + ('a' - 'A')];

	/* BFS over the sorted words: state s stands for the words w[lo[s] .. hi[s]). */
	ns = 1;
	lo[0] = 0;
	hi[0] = (uint32_t)m;
	depth[0] = 0;
	for (s = 0; s < ns; s++) {
		uint32_t a = lo[s], b = hi[s], d = depth[s];

		f->first[s] = ns;
		f->dense[s] = NO_ROW;
		if (a < b && w[a].len == d) {
			f->count[s] = 1; /* the prefix itself is a word; it sorts first */
			a++;
		}
		while (a < b) {
			unsigned char byte = w[a].p[d];
			uint32_t e = a + 1;

			while (e < b && w[e].p[d] == byte)
				e++;
			f->label[ns] = f->cls[byte];
			lo[ns] = a;
			hi[ns] = e;
			depth[ns] = d + 1;
			ns++;
			a = e;
		}
		if (s && ns - f->first[s] >= DENSE_MIN_CHILDREN)
			nrows++;
	}
	f->first[ns] = ns;

	rows = malloc(nrows * f->nclasses * sizeof(*rows));
	if (!rows)
		goto out;
	f->rows = rows;
	/*
	 * In BFS order, so everything step() reads from a shorter state (its fail
	 * link, its row) is final: first a dense state's complete row, then the
	 * fail links of its children.
	 */
	for (s = 0, r = 0; s < ns; s++) {
		uint32_t t;

		if (!s || f->first[s + 1] - f->first[s] >= DENSE_MIN_CHILDREN) {
			uint32_t *row = rows + (size_t)r * f->nclasses;

			for (c = 0; c < f->nclasses; c++)
				row[c] = s ? step(f, f->fail[s], c) : 0;
			for (t = f->first[s]; t < f->first[s + 1]; t++)
				row[f->label[t]] = t;
			f->dense[s] = r++;
		}
		for (t = f->first[s]; t < f->first[s + 1]; t++)
			f->fail[t] = s ? step(f, f->fail[s], f->label[t]) : 0;
	}
	/* Outputs along the true fail chain, before it is shortcut below. */
	for (s = 1; s < ns; s++) {
		uint32_t fs = f->fail[s];

		f->outlen[s] = f->count[s] ? depth[s] : f->outlen[fs];
		f->count[s] += f->count[fs];
	}
	/* Skip childless states on fail chains; fail[fs] is already shortcut (fs < s). */
	for (s = 1; s < ns; s++) {
		uint32_t fs = f->fail[s];

		if (fs && f->first[fs] == f->first[fs + 1])
			f->fail[s] = f->fail[fs];
	}
	ret = f;
	f = NULL;
	rows = NULL;
out:
	free(f);
	free(rows);
	free(lo);
	free(hi);
	free(depth);
	return ret;
}

/* Fold the valid, non-empty words into one arena and build. */
struct gw_filter *gw_filter_new(const char *const *words, size_t n)
{
	struct gw_filter *f = NULL;
	struct span *w = NULL;
	unsigned char *arena = NULL;
	size_t total = 0, m = 0, off = 0, i, j;

	for (i = 0; i < n; i++)
		total += strlen(words[i]);
	w = malloc((n ? n : 1) * sizeof(*w));
	arena = malloc(total ? total : 1);
	if (!w || !arena)
		goto out;
	for (i = 0; i < n; i++) {
		size_t len = strlen(words[i]);

		if (!len || !gw_utf8_valid(words[i], len, NULL))
			continue;
		for (j = 0; j < len; j++)
			arena[off + j] = fold((unsigned char)words[i][j]);
		w[m].p = arena + off;
		w[m].len = len;
		m++;
		off += len;
	}
	f = build(w, m);
out:
	free(w);
	free(arena);
	return f;
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

struct gw_filter *gw_filter_load(const char *path, char *err, size_t errlen)
{
	struct gw_filter *f = NULL;
	struct span *w = NULL;
	unsigned char *arena = NULL;
	size_t *offs = NULL; /* word starts in arena; it moves while growing */
	size_t n = 0, wcap = 0, used = 0, acap = 0, lineno = 0, linecap = 0, i;
	char *line = NULL;
	ssize_t got;
	FILE *fp;

	if (err && errlen)
		err[0] = '\0';
	fp = fopen(path, "r");
	if (!fp) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	while ((got = getline(&line, &linecap, fp)) != -1) {
		size_t a = 0, b = (size_t)got;

		lineno++;
		/* The whole line, comments included: a file in another encoding fails early. */
		if (!gw_utf8_valid(line, b, NULL)) {
			if (err && errlen)
				snprintf(err, errlen, "%s:%zu: not valid UTF-8", path, lineno);
			goto out;
		}
		while (a < b && is_space((unsigned char)line[a]))
			a++;
		while (b > a && is_space((unsigned char)line[b - 1]))
			b--;
		if (a == b || line[a] == '#')
			continue;
		if (n == wcap) {
			size_t ncap = wcap ? 2 * wcap : 64;
			size_t *no = realloc(offs, ncap * sizeof(*no));

			if (!no)
				goto oom;
			offs = no;
			wcap = ncap;
		}
		if (b - a > acap - used) {
			size_t ncap = acap ? acap : 1024;
			unsigned char *na;

			while (ncap - used < b - a)
				ncap *= 2;
			na = realloc(arena, ncap);
			if (!na)
				goto oom;
			arena = na;
			acap = ncap;
		}
		for (i = a; i < b; i++)
			arena[used + i - a] = fold((unsigned char)line[i]);
		offs[n++] = used;
		used += b - a;
	}
	if (ferror(fp)) {
		if (err && errlen)
			snprintf(err, errlen, "%s: read error", path);
		goto out;
	}
	w = malloc((n ? n : 1) * sizeof(*w));
	if (!w)
		goto oom;
	for (i = 0; i < n; i++) {
		w[i].p = arena + offs[i];
		w[i].len = (i + 1 < n ? offs[i + 1] : used) - offs[i];
	}
	f = build(w, n);
	if (!f)
		goto oom;
	goto out;
oom:
	if (err && errlen)
		snprintf(err, errlen, "%s: out of memory", path);
out:
	if (fp)
		fclose(fp);
	free(line);
	free(offs);
	free(arena);
	free(w);
	return f;
}

void gw_filter_free(struct gw_filter *f)
{
	if (!f)
		return;
	free(f->rows);
	free(f); /* the states are in the same block, see build() */
}

size_t gw_filter_count(const struct gw_filter *f)
{
	return f->nwords;
}

bool gw_filter_matches(const struct gw_filter *f, const char *text, size_t len)
{
	const unsigned char *t = (const unsigned char *)text;
	uint32_t s = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		s = step(f, s, f->cls[t[i]]);
		if (f->count[s])
			return true;
	}
	return false;
}

/* Idempotent, so ranges marked twice (overlaps) stay right. */
static void mark(unsigned char *t, size_t from, size_t to)
{
	for (; from <= to; from++) {
		if (t[from] >= MARK_CONT)
			continue;
		t[from] = (t[from] & 0xc0) == 0x80 ? MARK_CONT : MARK_LEAD;
	}
}

size_t gw_filter_mask(const struct gw_filter *f, char *text, size_t *len)
{
	unsigned char *t = (unsigned char *)text;
	size_t n = *len, hits = 0, lo = 0, hi = 0, start = 0, i, r, w;
	uint32_t s = 0;

	/*
	 * [lo, hi] is the last contiguous marked run; a new match ends past it, so
	 * usually only its new tail needs marking. A match can also reach back
	 * before lo (a long word around a short one), then that part is marked too.
	 */
	for (i = 0; i < n; i++) {
		size_t a;

		s = step(f, s, f->cls[t[i]]);
		if (!f->count[s])
			continue;
		a = i + 1 - f->outlen[s];
		if (hits && a <= hi + 1) {
			mark(t, hi + 1, i);
			if (a < lo) {
				mark(t, a, lo - 1);
				lo = a;
			}
		} else {
			mark(t, a, i);
			lo = a;
		}
		if (!hits || a < start)
			start = a;
		hi = i;
		hits += f->count[s];
	}
	if (!hits)
		return 0;

	/* Compact [start, hi]; the bytes before are untouched, the ones after only move. */
	for (w = r = start; r <= hi; r++) {
		if (t[r] == MARK_LEAD)
			t[w++] = '*';
		else if (t[r] != MARK_CONT)
			t[w++] = t[r];
	}
	memmove(t + w, t + hi + 1, n - hi - 1);
	*len = w + n - hi - 1;
	return hits;
}
