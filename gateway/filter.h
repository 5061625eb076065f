/*
 * Blocked-words filter: one Aho-Corasick automaton over all words, so a text
 * is scanned in one pass whatever the number of words. Matching is bytewise
 * with ASCII case folding (A-Z match a-z); words in other scripts match
 * exactly as written.
 *
 * Threads: built once (any thread), then immutable; any number of threads
 * may scan it concurrently.
 */
#ifndef GW_FILTER_H
#define GW_FILTER_H

#include <stdbool.h>
#include <stddef.h>

struct gw_filter;

/*
 * Build from a file: UTF-8, one word per line, blank lines and lines starting
 * with '#' ignored, surrounding whitespace trimmed. Returns NULL and writes a
 * message into err on failure (unreadable file, invalid UTF-8 on a line).
 * Caller frees with gw_filter_free().
 */
struct gw_filter *gw_filter_load(const char *path, char *err, size_t errlen);
/* Build from an array of words (empty words are skipped). Caller frees. NULL on OOM. */
struct gw_filter *gw_filter_new(const char *const *words, size_t n);
void gw_filter_free(struct gw_filter *f);
/* Number of words in the automaton. */
size_t gw_filter_count(const struct gw_filter *f);

/* True when any word occurs in text[0..len). */
bool gw_filter_matches(const struct gw_filter *f, const char *text, size_t len);
/*
 * Replace every occurrence (overlapping ones merged) by one '*' per code
 * point, in place. text must be valid UTF-8; *len is updated (it can only
 * shrink). Returns the number of occurrences found.
 */
size_t gw_filter_mask(const struct gw_filter *f, char *text, size_t *len);

#endif
