/*
 * test_sha256 — SHA-256 (sha256.h) against the FIPS 180-4 example vectors
 * ("abc", the empty message, the 448-bit two-block message, one million 'a'),
 * streaming in pieces of every awkward size around the 64-byte block and the
 * 56-byte padding boundary, and rp_sha256_fd on a file bigger than its read
 * chunk, started from the fd's current offset.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rp.h"
#include "sha256.h"

static void
hash_hex(const void *data, size_t len, char out[65])
{
	sha256_ctx_t c;
	uint8_t d[SHA256_DIGEST_LEN];
	sha256_init(&c);
	sha256_update(&c, data, len);
	sha256_final(&c, d);
	sha256_hex(d, out);
}

START_TEST(fips_180_vectors)
{
	char h[65];
	hash_hex("abc", 3, h);
	ck_assert_str_eq(h, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
	hash_hex("", 0, h);
	ck_assert_str_eq(h, "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	hash_hex(m448, strlen(m448), h);
	ck_assert_str_eq(h, "248D6A61D20638B8E5C026930C3E6039A33CE45964FF2167F6ECEDD419DB06C1");
	/* the 896-bit (112-byte) message of the SHA-512 examples */
	const char *m896 =
	    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
	    "mnopqrstnopqrstu";
	hash_hex(m896, strlen(m896), h);
	ck_assert_str_eq(h, "CF5B16A778AF8380036CE59E7B0492370B249B11E8F07A51AFAC45037AFEE9D1");
	rp_sha256_hex("abc", 3, h);
	ck_assert_str_eq(h, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
}
END_TEST

START_TEST(one_million_a)
{
	char *a = malloc(1000000);
	memset(a, 'a', 1000000);
	char h[65];
	hash_hex(a, 1000000, h);
	ck_assert_str_eq(h, "CDC76E5C9914FB9281A1C7E284D73E67F1809A48A497200E046D39CCC7112CD0");
	/* the same in uneven pieces */
	sha256_ctx_t c;
	uint8_t d[SHA256_DIGEST_LEN];
	sha256_init(&c);
	size_t off = 0, step = 1;
	while (off < 1000000) {
		size_t n = step < 1000000 - off ? step : 1000000 - off;
		sha256_update(&c, a + off, n);
		off += n;
		step = step * 3 % 1031 + 1;
	}
	sha256_final(&c, d);
	sha256_hex(d, h);
	ck_assert_str_eq(h, "CDC76E5C9914FB9281A1C7E284D73E67F1809A48A497200E046D39CCC7112CD0");
	free(a);
}
END_TEST

/* Every length from 0 to 300 (each padding case), hashed whole and split at
 * every point, gives one answer. */
START_TEST(streaming_equals_one_shot)
{
	uint8_t msg[300];
	for (size_t i = 0; i < sizeof msg; i++)
		msg[i] = (uint8_t)(i * 31 + 7);
	for (size_t len = 0; len <= sizeof msg; len++) {
		char whole[65];
		hash_hex(msg, len, whole);
		for (size_t cut = 0; cut <= len; cut += (len < 140 ? 1 : 13)) {
			sha256_ctx_t c;
			uint8_t d[SHA256_DIGEST_LEN];
			char h[65];
			sha256_init(&c);
			sha256_update(&c, msg, cut);
			sha256_update(&c, msg + cut, 0);
			sha256_update(&c, msg + cut, len - cut);
			sha256_final(&c, d);
			sha256_hex(d, h);
			ck_assert_msg(strcmp(h, whole) == 0, "len %zu cut %zu", len, cut);
		}
	}
}
END_TEST

START_TEST(hash_of_an_fd_from_its_offset)
{
	char path[] = "/tmp/ohb_sha_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	unlink(path);
	/* 3 MiB + 5 of a pattern: several read chunks and a tail */
	size_t n = (3u << 20) + 5;
	char *buf = malloc(n);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(i % 251);
	ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
	char want[65], got[65];
	hash_hex(buf, n, want);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ohb_error_t err;
	ck_assert_int_eq(rp_sha256_fd(fd, got, &err), 0);
	ck_assert_str_eq(got, want);
	/* from the current offset */
	hash_hex(buf + 1000, n - 1000, want);
	ck_assert_int_eq(lseek(fd, 1000, SEEK_SET), 1000);
	ck_assert_int_eq(rp_sha256_fd(fd, got, &err), 0);
	ck_assert_str_eq(got, want);
	close(fd);
	/* a write-only fd cannot be read: an error with a sentence, not a hash */
	fd = open("/dev/null", O_WRONLY);
	ck_assert_int_ne(rp_sha256_fd(fd, got, &err), 0);
	ck_assert_int_eq(err.code, OHB_E_IO);
	ck_assert_str_eq(got, "");
	close(fd);
	free(buf);
}
END_TEST

extern Suite *sha256_suite(void);

/* one line: the Makefile finds suites with ^Suite \*x_suite(void) */
/* clang-format off */
Suite *sha256_suite(void)
/* clang-format on */
{
	Suite *s = suite_create("sha256");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, fips_180_vectors);
	tcase_add_test(tc, one_million_a);
	tcase_add_test(tc, streaming_equals_one_shot);
	tcase_add_test(tc, hash_of_an_fd_from_its_offset);
	suite_add_tcase(s, tc);
	return s;
}
