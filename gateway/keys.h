/*
 * Viewer public keys: uid -> the Ed25519 public key its device signs gifts
 * with, registered by an operator (PUT /v1/keys/{uid}).
 *
 * Durable: each registration is appended to <data_dir>/keys.log as one line
 * "uid <64 hex digits>\n" and fdatasync'd before gw_keys_put returns; at
 * open the file is read back, later lines replacing earlier ones for a uid.
 * A last line without its newline (a crash mid-write) is ignored and cut.
 *
 * Threads: any thread; a mutex guards the map and the file.
 */
#ifndef GW_KEYS_H
#define GW_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/error.h"

struct gw_keys;

/* Open (creating) dir/keys.log. NULL with a message in err. Caller frees with gw_keys_free. */
struct gw_keys *gw_keys_open(const char *dir, char *err, size_t errlen);
void gw_keys_free(struct gw_keys *k);
/* Register (or replace) uid's key, durably. 0, or -1 with err (503 storage_failed). */
int gw_keys_put(struct gw_keys *k, const char *uid, size_t uid_len, const unsigned char pk[32],
		struct gw_err *err);
/* Copy uid's key into pk; false when uid has none. */
bool gw_keys_get(struct gw_keys *k, const char *uid, size_t uid_len, unsigned char pk[32]);
size_t gw_keys_count(struct gw_keys *k);

#endif
