/*
 * test_rp — the .rp report reader and writer (rp.h): OpenHarmony's odd but
 * valid inputs (CRLF, 7-field rows, percent-encoded paths, a typo in the
 * header, blank lines, paths without the leading '/'), malformed rows skipped
 * with their line numbers, texts that are no report at all, an exact round
 * trip of awkward paths, the sort/find helpers, and a small fuzz (random bytes,
 * truncations and byte flips of a valid report) that must never crash.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rp.h"

#define HA "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
#define HB "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824"

static int
parse_str(const char *text, rp_list_t *l, char **warn)
{
	ohb_error_t err;
	return rp_parse(text, strlen(text), l, warn, &err);
}

START_TEST(openharmony_report_parses)
{
	const char *text =
	    "version=1.0&attrNum=8\r\n"
	    "path;mode;dir;size;mtime;hash;isIncremental;encodFlag\r\n" /* typo, as seen */
	    "\r\n"
	    "/data/storage/el2/base/files/a.txt;33188;0;5;1763990000;" HA ";1;0\r\n"
	    "data/storage/el2/base/files/b.txt;33152;0;2;1763990001;" HB ";0\r\n" /* 7 fields */
	    "/data/storage/el2/base/files/semi%3Bcolon%25%0Aline.txt;33188;0;0;-5;;1;1\r\n"
	    "/data/storage/el2/base/files/lower%3b.txt;33188;0;1;1;" HA ";0;1\r\n"
	    "\n"
	    "/data/storage/el2/base/files/;16877;1;4096;1763990002;;0;0\r\n";
	rp_list_t l;
	char *warn = (char *)1;
	ck_assert_int_eq(parse_str(text, &l, &warn), 0);
	ck_assert_ptr_null(warn);
	ck_assert_uint_eq(l.n, 5);
	/* sorted by path */
	ck_assert_str_eq(l.v[0].path, "/data/storage/el2/base/files");
	ck_assert(l.v[0].is_dir);
	ck_assert_uint_eq(l.v[0].mode, 16877);
	const rp_entry_t *a = rp_find(&l, "/data/storage/el2/base/files/a.txt");
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->mode, 33188);
	ck_assert(!a->is_dir);
	ck_assert_uint_eq(a->size, 5);
	ck_assert_int_eq(a->mtime, 1763990000);
	ck_assert_str_eq(a->hash, HA);
	ck_assert(a->is_incremental);
	const rp_entry_t *b = rp_find(&l, "/data/storage/el2/base/files/b.txt");
	ck_assert_ptr_nonnull(b);
	ck_assert_str_eq(b->hash, HB);
	ck_assert(!b->is_incremental);
	const rp_entry_t *s = rp_find(&l, "/data/storage/el2/base/files/semi;colon%\nline.txt");
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->hash, "");
	ck_assert_int_eq(s->mtime, -5);
	ck_assert_ptr_nonnull(rp_find(&l, "/data/storage/el2/base/files/lower;.txt"));
	ck_assert_ptr_null(rp_find(&l, "/data/storage/el2/base/files/c.txt"));
	rp_list_free(&l);

	/* a report without its version line may start with the header */
	ck_assert_int_eq(
	    parse_str("path;mode;dir;size;mtime;hash;isIncremental;encodeFlag\n/x;1;0;1;1;;0;0\n", &l, &warn),
	    0);
	ck_assert_ptr_null(warn);
	ck_assert_uint_eq(l.n, 1);
	rp_list_free(&l);
	/* lower-case hashes are accepted and stored upper-case */
	ck_assert_int_eq(parse_str("version=1.0&attrNum=8\nh\n/x;1;0;1;1;"
	                           "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08;0;0\n",
	                           &l, NULL),
	                 0);
	ck_assert_str_eq(l.v[0].hash, HA);
	rp_list_free(&l);
}
END_TEST

START_TEST(malformed_rows_are_skipped_with_their_line)
{
	const char *text = "version=1.0&attrNum=8\n"                                  /* 1 */
	                   "path;mode;dir;size;mtime;hash;isIncremental;encodeFlag\n" /* 2 */
	                   "/ok1;33188;0;1;1;;0;0\n"                                  /* 3 */
	                   "/few;33188;0;1\n"                                         /* 4 */
	                   "/size;33188;0;12x;1;;0;0\n"                               /* 5 */
	                   "/mode;rw-r--r--;0;1;1;;0;0\n"                             /* 6 */
	                   "/mtime;33188;0;1;yesterday;;0;0\n"                        /* 7 */
	                   "/bad%2;33188;0;1;1;;0;1\n"                                /* 8 */
	                   "/bad%zz;33188;0;1;1;;0;1\n"                               /* 9 */
	                   "/hash;33188;0;1;1;ABC;0;0\n"                              /* 10 */
	                   "/hash2;33188;0;1;1;" HA "0;0;0\n"                         /* 11: 65 digits */
	                   "/many;33188;0;1;1;;0;0;0\n"                               /* 12 */
	                   "/dir;33188;2;1;1;;0;0\n"                                  /* 13 */
	                   "/big;33188;0;18446744073709551616;1;;0;0\n"               /* 14: 2^64 */
	                   "/nul%00;33188;0;1;1;;0;1\n"                               /* 15 */
	                   ";33188;0;1;1;;0;0\n"                                      /* 16: empty path */
	                   "/flag;33188;0;1;1;;0;2\n"                                 /* 17 */
	                   "/ok2;33188;0;18446744073709551615;-9223372036854775808;;0;0\n"; /* 18 */
	rp_list_t l;
	char *warn = NULL;
	ck_assert_int_eq(parse_str(text, &l, &warn), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.v[0].path, "/ok1");
	ck_assert_str_eq(l.v[1].path, "/ok2");
	ck_assert_uint_eq(l.v[1].size, UINT64_MAX);
	ck_assert_int_eq(l.v[1].mtime, INT64_MIN);
	ck_assert_ptr_nonnull(warn);
	for (int line = 4; line <= 17; line++) {
		char want[32];
		snprintf(want, sizeof want, "line %d: ", line);
		ck_assert_msg(strstr(warn, want) != NULL, "no warning for line %d in:\n%s", line, warn);
	}
	ck_assert_ptr_null(strstr(warn, "line 3:"));
	ck_assert_ptr_null(strstr(warn, "line 18:"));
	ck_assert_ptr_nonnull(strstr(warn, "line 5: size"));
	ck_assert_ptr_nonnull(strstr(warn, "line 9: bad %-encoding"));
	free(warn);
	rp_list_free(&l);
}
END_TEST

/* OpenHarmony reads a row by position when it has as many fields as the
 * header (7 or more) and ignores the columns past those it knows: a newer
 * writer's extra column must not make every row unreadable. */
START_TEST(columns_past_encodeflag_are_read_when_the_header_names_them)
{
	const char *text = "version=1.0&attrNum=9\n"
	                   "path;mode;dir;size;mtime;hash;isIncremental;encodeFlag;future\n"
	                   "/a%3Bb;33188;0;5;7;;1;1;whatever\n"
	                   "/c;16877;1;0;8;;0;0;\n"
	                   "/short;33188;0;1;1;;0;0\n"       /* 8 fields under a 9-column header: still read */
	                   "/ten;33188;0;1;1;;0;0;x;y\n";    /* more than the header names: skipped */
	rp_list_t l;
	char *warn = NULL;
	ck_assert_int_eq(parse_str(text, &l, &warn), 0);
	ck_assert_uint_eq(l.n, 3);
	ck_assert_str_eq(l.v[0].path, "/a;b");
	ck_assert_uint_eq(l.v[0].size, 5);
	ck_assert(l.v[0].is_incremental);
	ck_assert_str_eq(l.v[1].path, "/c");
	ck_assert(l.v[1].is_dir);
	ck_assert_str_eq(l.v[2].path, "/short");
	ck_assert_ptr_nonnull(warn);
	ck_assert_msg(strstr(warn, "line 6: ") != NULL && strstr(warn, "line 3:") == NULL, "%s", warn);
	free(warn);
	rp_list_free(&l);
	/* under an 8-column header a ninth field is still an error (a raw ';' in a path) */
	const char *eight = "version=1.0&attrNum=8\npath;mode;dir;size;mtime;hash;isIncremental;encodeFlag\n"
	                    "/a;b;33188;0;5;7;;1;0\n";
	ck_assert_int_eq(parse_str(eight, &l, &warn), 0);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_ptr_nonnull(warn);
	free(warn);
	rp_list_free(&l);
}
END_TEST

START_TEST(not_a_report_is_13900020)
{
	rp_list_t l;
	ohb_error_t err;
	char *warn = NULL;
	ck_assert_int_eq(rp_parse("", 0, &l, &warn, &err), OHB_E_INVAL);
	ck_assert_int_eq(rp_parse(NULL, 0, &l, NULL, &err), OHB_E_INVAL);
	ck_assert_int_eq(parse_str("\r\n\n  \n", &l, NULL), OHB_E_INVAL);
	ck_assert_int_eq(parse_str("hello world\nthis is text\n", &l, &warn), OHB_E_INVAL);
	ck_assert_ptr_nonnull(warn);
	free(warn);
	ck_assert_uint_eq(l.n, 0);
	const char bin[] = {'\x7f', 'E', 'L', 'F', '\0', '\x01', ';', '\n', '\xff', '\0'};
	ck_assert_int_eq(rp_parse(bin, sizeof bin, &l, NULL, &err), OHB_E_INVAL);
	ck_assert_int_eq(err.code, OHB_E_INVAL);
	/* an empty backup is a report with no rows */
	ck_assert_int_eq(
	    parse_str("version=1.0&attrNum=8\npath;mode;dir;size;mtime;hash;isIncremental;encodeFlag\n", &l,
	              NULL),
	    0);
	ck_assert_uint_eq(l.n, 0);
	rp_list_free(&l);
}
END_TEST

static void
add(rp_list_t *l, const char *path, uint32_t mode, bool dir, uint64_t size, int64_t mtime, const char *hash,
    bool inc)
{
	rp_entry_t e = {.path = path,
	                .hash = hash,
	                .mode = mode,
	                .is_dir = dir,
	                .size = size,
	                .mtime = mtime,
	                .is_incremental = inc};
	ck_assert_int_eq(rp_add(l, &e, NULL), 0);
}

START_TEST(write_then_parse_round_trips)
{
	rp_list_t l = {0};
	add(&l, "/data/storage/el2/base/files", 040755, true, 0, 1700000000, "", false);
	add(&l, "/data/storage/el2/base/files/a;b.txt", 0100644, false, 5, 1, HA, true);
	add(&l, "/data/storage/el2/base/files/100%.txt", 0100600, false, 0, -1, "", false);
	add(&l, "/data/storage/el2/base/files/two\nlines\r\n.txt", 0100644, false, 123456789012ull,
	    1763990000, HB, true);
	add(&l, "/data/storage/el2/base/files/with spaces  .txt", 0100644, false, 7, 2, HA, false);
	add(&l,
	    "/data/storage/el2/base/files/donn\xc3\xa9"
	    "es-\xe6\x97\xa5\xe6\x9c\xac.txt",
	    0100644, false, 8, 3, HB, true);
	add(&l, "/data/storage/el2/base/files/%41%3B", 0100644, false, UINT64_MAX, INT64_MAX, "", true);
	add(&l, "/data/storage/el2/base/files/tab\there", 0100644, false, 1, INT64_MIN, HA, false);
	rp_sort(&l);
	char *text = NULL;
	size_t len = 0;
	ck_assert_int_eq(rp_write(&l, &text, &len, NULL), 0);
	ck_assert_uint_eq(strlen(text), len);
	ck_assert(strncmp(text,
	                  "version=1.0&attrNum=8\npath;mode;dir;size;mtime;hash;isIncremental;encodeFlag\n",
	                  77) == 0);
	/* plain paths stay readable; encoded ones say so */
	ck_assert_ptr_nonnull(strstr(text, "/data/storage/el2/base/files;16877;1;0;1700000000;;0;0\n"));
	ck_assert_ptr_nonnull(
	    strstr(text, "/data/storage/el2/base/files/a%3Bb.txt;33188;0;5;1;" HA ";1;1\n"));
	ck_assert_ptr_nonnull(strstr(text, "/data/storage/el2/base/files/100%25.txt;"));
	/* one row per entry plus the two header lines */
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	ck_assert_uint_eq(lines, l.n + 2);

	rp_list_t back;
	char *warn = NULL;
	ohb_error_t err;
	ck_assert_int_eq(rp_parse(text, len, &back, &warn, &err), 0);
	ck_assert_ptr_null(warn);
	ck_assert_uint_eq(back.n, l.n);
	for (size_t i = 0; i < l.n; i++) {
		ck_assert_str_eq(back.v[i].path, l.v[i].path);
		ck_assert_uint_eq(back.v[i].mode, l.v[i].mode);
		ck_assert_int_eq(back.v[i].is_dir, l.v[i].is_dir);
		ck_assert_uint_eq(back.v[i].size, l.v[i].size);
		ck_assert_int_eq(back.v[i].mtime, l.v[i].mtime);
		ck_assert_str_eq(back.v[i].hash, l.v[i].hash);
		ck_assert_int_eq(back.v[i].is_incremental, l.v[i].is_incremental);
	}
	/* and writing it again gives the same bytes */
	char *again = NULL;
	size_t len2 = 0;
	ck_assert_int_eq(rp_write(&back, &again, &len2, NULL), 0);
	ck_assert_uint_eq(len2, len);
	ck_assert(memcmp(again, text, len) == 0);
	free(again);
	free(text);
	rp_list_free(&back);
	rp_list_free(&l);
}
END_TEST

START_TEST(sort_keeps_the_last_duplicate_and_find_works)
{
	rp_list_t l = {0};
	char p[32];
	for (int i = 999; i >= 0; i--) {
		snprintf(p, sizeof p, "/f%04d", i);
		add(&l, p, 1, false, (uint64_t)i, 0, "", false);
	}
	add(&l, "/f0500", 2, false, 1, 0, "", false);
	add(&l, "/f0500", 3, false, 2, 0, "", false);
	add(&l, "/f0001", 4, false, 3, 0, "", false);
	rp_sort(&l);
	ck_assert_uint_eq(l.n, 1000);
	for (size_t i = 1; i < l.n; i++)
		ck_assert_int_lt(strcmp(l.v[i - 1].path, l.v[i].path), 0);
	ck_assert_uint_eq(rp_find(&l, "/f0500")->mode, 3);
	ck_assert_uint_eq(rp_find(&l, "/f0001")->mode, 4);
	ck_assert_uint_eq(rp_find(&l, "/f0002")->size, 2);
	ck_assert_ptr_nonnull(rp_find(&l, "/f0000"));
	ck_assert_ptr_nonnull(rp_find(&l, "/f0999"));
	ck_assert_ptr_null(rp_find(&l, "/f1000"));
	ck_assert_ptr_null(rp_find(&l, ""));
	rp_list_free(&l);
	ck_assert_ptr_null(rp_find(&l, "/x"));
	/* the parser does the same: a later row for a path wins */
	ck_assert_int_eq(parse_str("version=1.0&attrNum=8\nh\n/a;1;0;1;1;;0;0\n/a;2;0;1;1;;0;0\n", &l, NULL),
	                 0);
	ck_assert_uint_eq(l.n, 1);
	ck_assert_uint_eq(l.v[0].mode, 2);
	rp_list_free(&l);
}
END_TEST

/* Rows point into the list's string blocks: many rows, a path bigger than a
 * block's share and hashes must all stay intact while the list grows, and
 * the streamed writer (all.rp of a backup) must give rp_write's bytes. */
START_TEST(strings_stay_put_and_write_fd_matches_write)
{
	rp_list_t l = {0};
	char p[64];
	static char big[20000];
	memset(big, 'x', sizeof big - 1);
	big[0] = '/';
	for (int i = 0; i < 5000; i++) {
		snprintf(p, sizeof p, "/dir%02d/file;%05d", i % 37, i);
		add(&l, p, 0100644, false, (uint64_t)i, i, i % 3 ? "" : HA, i % 2);
		if (i == 2500)
			add(&l, big, 040700, true, 0, 1, "", false);
	}
	ck_assert_uint_eq(l.n, 5001);
	size_t seen = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (l.v[i].is_dir) {
			ck_assert_str_eq(l.v[i].path, big);
			continue;
		}
		int k = atoi(strchr(l.v[i].path, ';') + 1);
		snprintf(p, sizeof p, "/dir%02d/file;%05d", k % 37, k);
		ck_assert_str_eq(l.v[i].path, p);
		ck_assert_str_eq(l.v[i].hash, k % 3 ? "" : HA);
		seen++;
	}
	ck_assert_uint_eq(seen, 5000);
	rp_sort(&l);

	char *text = NULL;
	size_t len = 0;
	ck_assert_int_eq(rp_write(&l, &text, &len, NULL), 0);
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(rp_write_fd(&l, fileno(f), NULL), 0);
	ck_assert_int_eq(lseek(fileno(f), 0, SEEK_END), (off_t)len);
	char *back = malloc(len + 1);
	ck_assert_int_eq(pread(fileno(f), back, len, 0), (ssize_t)len);
	ck_assert(memcmp(back, text, len) == 0);
	fclose(f);
	free(back);

	rp_list_t again;
	ohb_error_t err;
	ck_assert_int_eq(rp_parse(text, len, &again, NULL, &err), 0);
	ck_assert_uint_eq(again.n, l.n);
	ck_assert_ptr_nonnull(rp_find(&again, big));
	free(text);
	rp_list_free(&again);
	rp_list_free(&l);
}
END_TEST

/* A deterministic generator, so a failure can be replayed. */
static uint32_t
next_rand(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*s >> 33);
}

static void
check_parse_survives(const char *buf, size_t len)
{
	rp_list_t l;
	char *warn = NULL;
	ohb_error_t err;
	int rc = rp_parse(buf, len, &l, &warn, &err);
	ck_assert(rc == 0 || rc == OHB_E_INVAL);
	for (size_t i = 0; i < l.n; i++) {
		ck_assert(l.v[i].path[0] == '/');
		ck_assert(strlen(l.v[i].hash) == 0 || strlen(l.v[i].hash) == 64);
		if (i > 0)
			ck_assert_int_lt(strcmp(l.v[i - 1].path, l.v[i].path), 0);
	}
	if (warn)
		ck_assert_uint_gt(strlen(warn), 0);
	free(warn);
	rp_list_free(&l);
}

START_TEST(fuzz_never_crashes)
{
	uint64_t seed = 0x5eed;
	/* random bytes, with a bias towards the characters that matter */
	static const char interesting[] = ";%\r\n0123456789ABCDEFabcdef/version=";
	for (int round = 0; round < 2000; round++) {
		size_t len = next_rand(&seed) % 600;
		char *buf = malloc(len ? len : 1); /* exactly len: ASan sees any over-read */
		for (size_t i = 0; i < len; i++) {
			uint32_t r = next_rand(&seed);
			buf[i] = (r & 1) ? interesting[(r >> 1) % (sizeof interesting - 1)] : (char)(r >> 8);
		}
		check_parse_survives(buf, len);
		free(buf);
	}
	/* truncations and flips of a valid report */
	rp_list_t l = {0};
	add(&l, "/data/a;b", 0100644, false, 5, 1, HA, true);
	add(&l, "/data/dir", 040755, true, 0, 2, "", false);
	add(&l, "/data/x\ny%", 0100644, false, 7, 3, HB, false);
	char *text = NULL;
	size_t len = 0;
	ck_assert_int_eq(rp_write(&l, &text, &len, NULL), 0);
	for (size_t cut = 0; cut <= len; cut++) {
		char *buf = malloc(cut ? cut : 1);
		memcpy(buf, text, cut);
		check_parse_survives(buf, cut);
		free(buf);
	}
	for (int round = 0; round < 3000; round++) {
		char *buf = malloc(len);
		memcpy(buf, text, len);
		int flips = 1 + (int)(next_rand(&seed) % 4);
		for (int k = 0; k < flips; k++)
			buf[next_rand(&seed) % len] = (char)next_rand(&seed);
		check_parse_survives(buf, len);
		free(buf);
	}
	free(text);
	rp_list_free(&l);
}
END_TEST

START_TEST(warnings_are_capped)
{
	size_t n = 5000;
	char *text = malloc(n * 4 + 64);
	size_t len = (size_t)sprintf(text, "version=1.0&attrNum=8\nh\n");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "x;\n");
	rp_list_t l;
	char *warn = NULL;
	ohb_error_t err;
	ck_assert_int_eq(rp_parse(text, len, &l, &warn, &err), 0);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_ptr_nonnull(warn);
	ck_assert_ptr_nonnull(strstr(warn, "line 3: "));
	ck_assert_ptr_nonnull(strstr(warn, "more malformed lines"));
	ck_assert_uint_lt(strlen(warn), 10000);
	free(warn);
	free(text);
}
END_TEST

extern Suite *rp_suite(void);

/* one line: the Makefile finds suites with ^Suite \*x_suite(void) */
/* clang-format off */
Suite *rp_suite(void)
/* clang-format on */
{
	Suite *s = suite_create("rp");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, openharmony_report_parses);
	tcase_add_test(tc, malformed_rows_are_skipped_with_their_line);
	tcase_add_test(tc, columns_past_encodeflag_are_read_when_the_header_names_them);
	tcase_add_test(tc, not_a_report_is_13900020);
	tcase_add_test(tc, write_then_parse_round_trips);
	tcase_add_test(tc, sort_keeps_the_last_duplicate_and_find_works);
	tcase_add_test(tc, strings_stay_put_and_write_fd_matches_write);
	tcase_add_test(tc, fuzz_never_crashes);
	tcase_add_test(tc, warnings_are_capped);
	suite_add_tcase(s, tc);
	return s;
}
