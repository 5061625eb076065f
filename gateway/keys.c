/* Viewer public keys. See keys.h for the file format and the locking. */
#include "gateway/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/log.h"
#include "gateway/map.h"
#include "gateway/room.h"

struct gw_keys {
	pthread_mutex_t lock;
	struct gw_map *map; /* uid -> unsigned char[32] */
	int fd;
};

static int unhex(const char *s, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (d < 0)
				return -1;
			v = v * 16 + d;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

static int remember(struct gw_keys *k, const char *uid, size_t uid_len, const unsigned char pk[32])
{
	unsigned char *copy = malloc(32);
	void *old = NULL;

	if (!copy)
		return -1;
	memcpy(copy, pk, 32);
	if (gw_map_put(k->map, uid, uid_len, copy, &old)) {
		free(copy);
		return -1;
	}
	free(old);
	return 0;
}

/* Read the log back; returns the length of its whole lines, or -1 on a bad line. */
static off_t load(struct gw_keys *k, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[256];
	off_t good = 0;
	int lineno = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		unsigned char pk[32];
		char *sp;

		lineno++;
		if (!len || line[len - 1] != '\n')
			break; /* torn tail: cut below */
		sp = strchr(line, ' ');
		if (!sp || len - (size_t)(sp + 1 - line) != 65 || !gw_name_valid(line, (size_t)(sp - line)) ||
		    unhex(sp + 1, pk, 32) || remember(k, line, (size_t)(sp - line), pk)) {
			snprintf(err, errlen, "%s:%d: not a key line (uid, space, 64 hex digits)", path,
				 lineno);
			fclose(f);
			return -1;
		}
		good += (off_t)len;
	}
	fclose(f);
	return good;
}

struct gw_keys *gw_keys_open(const char *dir, char *err, size_t errlen)
{
	struct gw_keys *k = calloc(1, sizeof(*k));
	char path[4096];
	off_t good;
	struct stat st;

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->fd = -1;
	snprintf(path, sizeof(path), "%s/keys.log", dir);
	k->map = gw_map_new();
	if (!k->map || pthread_mutex_init(&k->lock, NULL)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	good = load(k, path, err, errlen);
	if (good < 0)
		goto fail;
	k->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (k->fd < 0 || fstat(k->fd, &st)) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto fail;
	}
	if (st.st_size > good) {
		gw_log_warn("%s: cut %lld bytes of a torn last line", path,
			    (long long)(st.st_size - good));
		if (ftruncate(k->fd, good) || fdatasync(k->fd)) {
			snprintf(err, errlen, "cannot repair %s: %s", path, strerror(errno));
			goto fail;
		}
	}
	return k;
fail:
	gw_keys_free(k);
	return NULL;
}

void gw_keys_free(struct gw_keys *k)
{
	if (!k)
		return;
	if (k->fd >= 0)
		close(k->fd);
	gw_map_free(k->map, free);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

int gw_keys_put(struct gw_keys *k, const char *uid, size_t uid_len, const unsigned char pk[32],
		struct gw_err *err)
{
	static const char hex[] = "0123456789abcdef";
	char line[64 + 1 + 64 + 1];
	size_t n = 0;
	int rc = -1;

	if (uid_len > 64)
		return gw_fail(err, 400, "bad_uid", "uid must match [A-Za-z0-9_-]{1,64}");
	memcpy(line, uid, uid_len);
	n = uid_len;
	line[n++] = ' ';
	for (int i = 0; i < 32; i++) {
		line[n++] = hex[pk[i] >> 4];
		line[n++] = hex[pk[i] & 15];
	}
	line[n++] = '\n';
	pthread_mutex_lock(&k->lock);
	/* Durable first: a key the gateway answered 200 for must survive a crash. */
	off_t end = lseek(k->fd, 0, SEEK_END);
	if (end < 0 || write(k->fd, line, n) != (ssize_t)n || fdatasync(k->fd)) {
		gw_fail(err, 503, "storage_failed", "could not store the key: %s", strerror(errno));
		/* Never leave half a line for the next one to be glued to. */
		if (end >= 0 && ftruncate(k->fd, end)) {
		}
		goto out;
	}
	if (remember(k, uid, uid_len, pk)) {
		gw_fail(err, 503, "no_memory", "out of memory");
		goto out;
	}
	rc = 0;
out:
	pthread_mutex_unlock(&k->lock);
	return rc;
}

bool gw_keys_get(struct gw_keys *k, const char *uid, size_t uid_len, unsigned char pk[32])
{
	const unsigned char *v;

	pthread_mutex_lock(&k->lock);
	v = gw_map_get(k->map, uid, uid_len);
	if (v)
		memcpy(pk, v, 32);
	pthread_mutex_unlock(&k->lock);
	return v != NULL;
}

size_t gw_keys_count(struct gw_keys *k)
{
	size_t n;

	pthread_mutex_lock(&k->lock);
	n = gw_map_count(k->map);
	pthread_mutex_unlock(&k->lock);
	return n;
}
