/*
 * Ed25519 over libsodium, and the server key file. See sign.h.
 *
 * Threads: after cr_sign_init, every function is reentrant (libsodium keeps
 * no mutable state for these); cr_server_key_load does blocking file I/O and
 * belongs to start-up.
 */
#define _GNU_SOURCE /* renameat2, RENAME_NOREPLACE */
#include "crypto/sign.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(crypto_sign_PUBLICKEYBYTES == CR_SIGN_PK_BYTES, "pk size");
_Static_assert(crypto_sign_SECRETKEYBYTES == CR_SIGN_SK_BYTES, "sk size");
_Static_assert(crypto_sign_SEEDBYTES == CR_SIGN_SEED_BYTES, "seed size");
_Static_assert(crypto_sign_BYTES == CR_SIGN_BYTES, "signature size");

int cr_sign_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

bool cr_verify(const unsigned char pk[32], const void *msg, size_t len, const unsigned char sig[64])
{
	return crypto_sign_verify_detached(sig, msg, len, pk) == 0;
}

void cr_sign(const unsigned char sk[64], const void *msg, size_t len, unsigned char sig[64])
{
	crypto_sign_detached(sig, NULL, msg, len, sk);
}

int cr_keypair_generate(unsigned char pk[32], unsigned char sk[64])
{
	return crypto_sign_keypair(pk, sk) ? -1 : 0;
}

int cr_keypair_from_seed(const unsigned char seed[32], unsigned char pk[32], unsigned char sk[64])
{
	return crypto_sign_seed_keypair(pk, sk, seed) ? -1 : 0;
}

bool cr_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
						       ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Read exactly n bytes; a short file is an error, not a partial key. */
static int read_all(int fd, unsigned char *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Check and read an opened key file, derive the keypair, close fd. */
static int load_fd(int fd, const char *path, unsigned char pk[32], unsigned char sk[64],
		   char *err, size_t errlen)
{
	unsigned char seed[crypto_sign_SEEDBYTES];
	struct stat st;
	int rc = -1;

	if (fstat(fd, &st)) {
		fail(err, errlen, "cannot stat server key %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(err, errlen, "server key %s is not a regular file", path);
		goto out;
	}
	/* A key others could read is a key others may have: refuse rather than warn. */
	if (st.st_mode & 077) {
		fail(err, errlen,
		     "server key %s has mode %04o, which lets group or others access it; "
		     "run chmod 600 on it",
		     path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_size != (off_t)sizeof(seed)) {
		fail(err, errlen,
		     "server key %s is %lld bytes; the file must be exactly %zu "
		     "(a raw Ed25519 seed)",
		     path, (long long)st.st_size, sizeof(seed));
		goto out;
	}
	errno = 0; /* read_all leaves it 0 when the file is shorter than fstat said */
	if (read_all(fd, seed, sizeof(seed))) {
		fail(err, errlen, "cannot read server key %s: %s", path,
		     errno ? strerror(errno) : "file shrank while reading");
		goto out;
	}
	if (crypto_sign_seed_keypair(pk, sk, seed)) {
		fail(err, errlen, "cannot derive the keypair from %s", path);
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	close(fd);
	return rc;
}

/* The directory holding path, as a new string ("." when path has no slash). */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n;
	char *d;

	if (!slash)
		return strdup(".");
	n = slash == path ? 1 : (size_t)(slash - path);
	d = malloc(n + 1);
	if (d) {
		memcpy(d, path, n);
		d[n] = 0;
	}
	return d;
}

/*
 * Write a fresh seed to path via path.tmp. Returns 0 when we created path, 1
 * when another process created it first (ours is discarded), -1 on error.
 */
static int create_key(const char *path, char *err, size_t errlen)
{
	unsigned char seed[crypto_sign_SEEDBYTES];
	char *tmp = NULL, *dir = NULL;
	int fd = -1, dfd = -1, rc = -1;
	bool tmp_is_ours = false;
	size_t plen = strlen(path);

	tmp = malloc(plen + sizeof(".tmp"));
	dir = dir_of(path);
	if (!tmp || !dir) {
		fail(err, errlen, "out of memory");
		goto out;
	}
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", sizeof(".tmp"));

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			fail(err, errlen,
			     "%s exists: left by an interrupted first start, or another livegate "
			     "is creating the server key; remove it if no other livegate runs",
			     tmp);
		else
			fail(err, errlen, "cannot create server key %s: %s", tmp, strerror(errno));
		goto out;
	}
	tmp_is_ours = true;
	/* The umask may have narrowed 0600; the owner must be able to read it back. */
	if (fchmod(fd, 0600)) {
		fail(err, errlen, "cannot chmod %s: %s", tmp, strerror(errno));
		goto out;
	}
	randombytes_buf(seed, sizeof(seed));
	if (write_all(fd, seed, sizeof(seed)) || fsync(fd)) {
		fail(err, errlen, "cannot write server key %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd)) {
		fd = -1;
		fail(err, errlen, "cannot write server key %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	/*
	 * NOREPLACE: if a concurrent start created the key after our open()
	 * found none, keep theirs, so both processes end up with one key.
	 * Filesystems without it get a plain rename.
	 */
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE)) {
		if (errno == EEXIST) {
			rc = 1;
			goto out;
		}
		if ((errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) ||
		    rename(tmp, path)) {
			fail(err, errlen, "cannot rename %s to %s: %s", tmp, path,
			     strerror(errno));
			goto out;
		}
	}
	tmp_is_ours = false;
	/* The rename is only durable once the directory entry is on disk. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd)) {
		fail(err, errlen, "cannot fsync directory %s: %s", dir, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	sodium_memzero(seed, sizeof(seed));
	if (fd >= 0)
		close(fd);
	if (tmp_is_ours)
		unlink(tmp);
	if (dfd >= 0)
		close(dfd);
	free(tmp);
	free(dir);
	return rc;
}

int cr_server_key_load(const char *path, unsigned char pk[32], unsigned char sk[64], char *err,
		       size_t errlen)
{
	int fd;

	if (err && errlen)
		err[0] = 0;
	if (!path || !path[0])
		return fail(err, errlen, "no server key path");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		if (create_key(path, err, errlen) < 0)
			return -1;
		/* Load what is on disk now, ours or a racing winner's, through the same checks. */
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return fail(err, errlen, "cannot open server key %s: %s", path, strerror(errno));
	return load_fd(fd, path, pk, sk, err, errlen);
}
