/*
 * Tests for crypto/sign.c: the RFC 8032 section 7.1 Ed25519 vectors (seed ->
 * public key, deterministic signature, verification, and that a flipped bit in
 * message, signature or public key fails), key generation, cr_equal, and the
 * server key file: created 0600 even under a hostile umask, stable across
 * loads, refused when readable by others, of the wrong size or not a file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/b64.h"
#include "crypto/sign.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct vector {
	const char *name, *seed, *pk, *msg, *sig;
};

/* RFC 8032 section 7.1, TEST 1, 2, 3 and 1024 (1023-byte message). */
static const struct vector vectors[] = {
	{"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	 "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
	 "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3970"
	 "1cf9b46bd25bf5f0595bbe24655141438e7a100b"},
	{"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	 "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
	 "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613"
	 "d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
	{"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	 "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
	 "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760"
	 "984dc6594a7c15e9716ed28dc027beceea1ec40a"},
	{"TEST 1024", "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
	 "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
	 "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
	 "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
	 "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
	 "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
	 "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
	 "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
	 "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
	 "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
	 "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
	 "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
	 "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
	 "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
	 "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
	 "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
	 "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
	 "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
	 "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
	 "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
	 "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
	 "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
	 "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
	 "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
	 "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
	 "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
	 "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
	 "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
	 "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
	 "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
	 "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
	 "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
	 "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
	 "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
	 "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23"
	 "c436d94b5e8fcd4f681e30a6ac00a9704a188a03"},
};

static void unhex(const char *hex, unsigned char *out, size_t cap, size_t want)
{
	size_t n;

	assert_int_equal(cr_hex_decode(hex, strlen(hex), out, cap, &n), 0);
	assert_int_equal(n, want);
}

static void check_vector(const struct vector *v)
{
	unsigned char seed[32], want_pk[32], want_sig[64], pk[32], sk[64], sig[64];
	unsigned char msg[1024] = {0};
	size_t mlen = strlen(v->msg) / 2;

	unhex(v->seed, seed, sizeof(seed), 32);
	unhex(v->pk, want_pk, sizeof(want_pk), 32);
	unhex(v->sig, want_sig, sizeof(want_sig), 64);
	unhex(v->msg, msg, sizeof(msg), mlen);

	assert_int_equal(cr_keypair_from_seed(seed, pk, sk), 0);
	if (memcmp(pk, want_pk, 32))
		fail_msg("%s: wrong public key", v->name);
	cr_sign(sk, msg, mlen, sig);
	if (memcmp(sig, want_sig, 64))
		fail_msg("%s: wrong signature", v->name);
	assert_true(cr_verify(pk, msg, mlen, sig));

	/* Any flipped bit anywhere must fail: every byte of sig and pk, spread over msg. */
	for (size_t i = 0; i < 64; i++) {
		sig[i] ^= (unsigned char)(1u << (i % 8));
		if (cr_verify(pk, msg, mlen, sig))
			fail_msg("%s: verified with sig byte %zu flipped", v->name, i);
		sig[i] ^= (unsigned char)(1u << (i % 8));
	}
	for (size_t i = 0; i < 32; i++) {
		pk[i] ^= (unsigned char)(1u << (i % 8));
		if (cr_verify(pk, msg, mlen, sig))
			fail_msg("%s: verified with pk byte %zu flipped", v->name, i);
		pk[i] ^= (unsigned char)(1u << (i % 8));
	}
	for (size_t i = 0; i < mlen; i += mlen > 64 ? 61 : 1) {
		msg[i] ^= 0x01;
		if (cr_verify(pk, msg, mlen, sig))
			fail_msg("%s: verified with msg byte %zu flipped", v->name, i);
		msg[i] ^= 0x01;
	}
	/* Longer or shorter message than signed. */
	assert_false(cr_verify(pk, msg, mlen + 1, sig));
	if (mlen)
		assert_false(cr_verify(pk, msg, mlen - 1, sig));
	assert_true(cr_verify(pk, msg, mlen, sig));
}

static void test_rfc8032_test1_empty_message(void **state)
{
	(void)state;
	check_vector(&vectors[0]);
}

static void test_rfc8032_test2_one_byte(void **state)
{
	(void)state;
	check_vector(&vectors[1]);
}

static void test_rfc8032_test3_two_bytes(void **state)
{
	(void)state;
	check_vector(&vectors[2]);
}

static void test_rfc8032_test1024(void **state)
{
	(void)state;
	assert_int_equal(strlen(vectors[3].msg), 2 * 1023);
	check_vector(&vectors[3]);
}

static void test_generated_keypairs_sign_and_differ(void **state)
{
	unsigned char pk1[32], sk1[64], pk2[32], sk2[64], pk3[32], sk3[64], sig[64];
	static const char msg[] = "hello";

	(void)state;
	assert_int_equal(cr_keypair_generate(pk1, sk1), 0);
	assert_int_equal(cr_keypair_generate(pk2, sk2), 0);
	assert_memory_not_equal(pk1, pk2, 32);
	/* libsodium's secret key is seed || pk; the seed alone rebuilds both. */
	assert_memory_equal(sk1 + 32, pk1, 32);
	assert_int_equal(cr_keypair_from_seed(sk1, pk3, sk3), 0);
	assert_memory_equal(pk3, pk1, 32);
	assert_memory_equal(sk3, sk1, 64);
	cr_sign(sk1, msg, 5, sig);
	assert_true(cr_verify(pk1, msg, 5, sig));
	assert_false(cr_verify(pk2, msg, 5, sig));
}

static void test_equal_compares_bytes(void **state)
{
	(void)state;
	assert_true(cr_equal("secret-token", "secret-token", 12));
	assert_false(cr_equal("secret-token", "secret-tokeN", 12));
	assert_false(cr_equal("Secret-token", "secret-token", 12));
	assert_true(cr_equal("a", "b", 0));
}

/* ---- server key file ---- */

static char dir[64];

static void path_in_dir(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_server_key_created_0600_and_reloaded(void **state)
{
	unsigned char pk1[32], sk1[64], pk2[32], sk2[64], sig[64];
	char path[128], tmp[160], err[256];
	struct stat st;
	mode_t old;

	(void)state;
	path_in_dir(path, sizeof(path), "server.key");
	/* A umask that strips everything must still give a key its owner can read. */
	old = umask(0777);
	assert_int_equal(cr_server_key_load(path, pk1, sk1, err, sizeof(err)), 0);
	umask(old);
	assert_string_equal(err, "");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 32);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(access(tmp, F_OK), -1);

	assert_int_equal(cr_server_key_load(path, pk2, sk2, err, sizeof(err)), 0);
	assert_memory_equal(pk1, pk2, 32);
	assert_memory_equal(sk1, sk2, 64);
	cr_sign(sk2, "r", 1, sig);
	assert_true(cr_verify(pk1, "r", 1, sig));
	unlink(path);
}

static void test_server_key_file_is_the_raw_seed(void **state)
{
	unsigned char seed[32], pk[32], sk[64], want_pk[32];
	char path[128], err[256];

	(void)state;
	unhex(vectors[0].seed, seed, sizeof(seed), 32);
	unhex(vectors[0].pk, want_pk, sizeof(want_pk), 32);
	path_in_dir(path, sizeof(path), "seed.key");
	write_file(path, seed, 32, 0600);
	assert_int_equal(cr_server_key_load(path, pk, sk, err, sizeof(err)), 0);
	assert_memory_equal(pk, want_pk, 32);
	/* Owner-only modes other than 0600 are fine: 0400 is a read-only key. */
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(cr_server_key_load(path, pk, sk, err, sizeof(err)), 0);
	unlink(path);
}

static void expect_refused(const char *path, const char *why)
{
	unsigned char pk[32], sk[64];
	char err[256];

	assert_int_equal(cr_server_key_load(path, pk, sk, err, sizeof(err)), -1);
	if (!strstr(err, why))
		fail_msg("error [%s] does not mention [%s]", err, why);
}

static void test_server_key_readable_by_others_is_refused(void **state)
{
	unsigned char seed[32] = {1};
	char path[128];

	(void)state;
	path_in_dir(path, sizeof(path), "open.key");
	write_file(path, seed, 32, 0644);
	expect_refused(path, "mode 0644");
	assert_int_equal(chmod(path, 0640), 0);
	expect_refused(path, "mode 0640");
	assert_int_equal(chmod(path, 0601), 0);
	expect_refused(path, "mode 0601");
	unlink(path);
}

static void test_server_key_of_wrong_size_is_refused(void **state)
{
	unsigned char seed[64] = {1};
	char path[128];

	(void)state;
	path_in_dir(path, sizeof(path), "short.key");
	write_file(path, seed, 31, 0600);
	expect_refused(path, "is 31 bytes");
	unlink(path);
	write_file(path, seed, 0, 0600);
	expect_refused(path, "is 0 bytes");
	unlink(path);
	write_file(path, seed, 64, 0600);
	expect_refused(path, "is 64 bytes");
	unlink(path);
}

static void test_server_key_not_a_file_is_refused(void **state)
{
	char path[128];

	(void)state;
	path_in_dir(path, sizeof(path), "adir");
	assert_int_equal(mkdir(path, 0700), 0);
	expect_refused(path, "not a regular file");
	rmdir(path);
}

static void test_server_key_stale_tmp_is_reported_not_removed(void **state)
{
	char path[128], tmp[160];

	(void)state;
	path_in_dir(path, sizeof(path), "stale.key");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	write_file(tmp, "x", 1, 0600);
	expect_refused(path, "stale.key.tmp exists");
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(access(tmp, F_OK), 0);
	unlink(tmp);
}

static void test_server_key_in_missing_directory_fails_cleanly(void **state)
{
	char path[128];

	(void)state;
	path_in_dir(path, sizeof(path), "nope/server.key");
	expect_refused(path, "cannot create");
	expect_refused("", "no server key path");
}

static int group_setup(void **state)
{
	(void)state;
	if (cr_sign_init())
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/lg-sign-test-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8032_test1_empty_message),
		cmocka_unit_test(test_rfc8032_test2_one_byte),
		cmocka_unit_test(test_rfc8032_test3_two_bytes),
		cmocka_unit_test(test_rfc8032_test1024),
		cmocka_unit_test(test_generated_keypairs_sign_and_differ),
		cmocka_unit_test(test_equal_compares_bytes),
		cmocka_unit_test(test_server_key_created_0600_and_reloaded),
		cmocka_unit_test(test_server_key_file_is_the_raw_seed),
		cmocka_unit_test(test_server_key_readable_by_others_is_refused),
		cmocka_unit_test(test_server_key_of_wrong_size_is_refused),
		cmocka_unit_test(test_server_key_not_a_file_is_refused),
		cmocka_unit_test(test_server_key_stale_tmp_is_reported_not_removed),
		cmocka_unit_test(test_server_key_in_missing_directory_fails_cleanly),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
