/*
 * test_manage — manage.json (manage.h): a list survives a write/read round
 * trip with exact integers, and entries the restore must not trust (a
 * fileName with '/', a big file without a path, ...) are refused with
 * 13500008 naming the entry.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manage.h"

static void
add(manage_list_t *l, const char *name, const char *path, uint64_t size, bool big)
{
	manage_entry_t e = {
	    .file_name = (char *)name,
	    .path = (char *)path,
	    .size = size,
	    .mode = 0100644,
	    .mtime_sec = 1719300000,
	    .mtime_nsec = 123456789,
	    .is_big_file = big,
	};
	ck_assert_int_eq(manage_add(l, &e, NULL), 0);
}

START_TEST(round_trip_keeps_every_field)
{
	manage_list_t l;
	memset(&l, 0, sizeof l);
	add(&l, "part.0.tar", "", 10240, false);
	add(&l, "0123456789abcdef.db", "/data/storage/el2/base/files/big.db", 4000000000000001ull, true);
	add(&l, "part.1.tar", NULL, 512, false);
	l.v[2].has_tar_entries = true;   /* one of our tars: its entry count travels too */
	l.v[2].tar_entries = 7;
	char *json = NULL;
	ck_assert_int_eq(manage_to_json(&l, &json, NULL), 0);
	ck_assert_ptr_nonnull(strstr(json, "\"isBigFile\":false,\"tarEntries\":7}"));
	/* exact integers, never exponent notation */
	ck_assert_ptr_nonnull(strstr(json, "\"st_size\":4000000000000001"));
	ck_assert_ptr_nonnull(strstr(json, "\"tv_nsec\":123456789"));
	ck_assert_ptr_nonnull(strstr(
	    json, "{\"fileName\":\"part.0.tar\",\"information\":{\"path\":\"\",\"stat\":{\"st_size\":10240,"
	          "\"st_mode\":33188,\"st_mtim\":{\"tv_sec\":1719300000,\"tv_nsec\":123456789}}},"
	          "\"isUserTar\":false,\"isBigFile\":false}"));
	manage_list_t r;
	ohb_error_t err;
	ck_assert_int_eq(manage_parse(json, strlen(json), &r, &err), 0);
	ck_assert_uint_eq(r.n, 3);
	for (size_t i = 0; i < 3; i++) {
		ck_assert_str_eq(r.v[i].file_name, l.v[i].file_name);
		ck_assert_str_eq(r.v[i].path, l.v[i].path);
		ck_assert_uint_eq(r.v[i].size, l.v[i].size);
		ck_assert_uint_eq(r.v[i].mode, l.v[i].mode);
		ck_assert_int_eq(r.v[i].mtime_sec, l.v[i].mtime_sec);
		ck_assert_int_eq(r.v[i].mtime_nsec, l.v[i].mtime_nsec);
		ck_assert(r.v[i].is_big_file == l.v[i].is_big_file);
		ck_assert(!r.v[i].is_user_tar);
		ck_assert(r.v[i].has_tar_entries == l.v[i].has_tar_entries);
		ck_assert_uint_eq(r.v[i].tar_entries, l.v[i].tar_entries);
	}
	ck_assert_str_eq(r.v[2].path, "");
	free(json);
	manage_list_free(&l);
	manage_list_free(&r);
	ck_assert_ptr_null(r.v);
	ck_assert_uint_eq(r.n, 0);
}
END_TEST

START_TEST(empty_list_is_an_empty_array)
{
	manage_list_t l;
	memset(&l, 0, sizeof l);
	char *json = NULL;
	ck_assert_int_eq(manage_to_json(&l, &json, NULL), 0);
	ck_assert_str_eq(json, "[]");
	manage_list_t r;
	ck_assert_int_eq(manage_parse(json, strlen(json), &r, NULL), 0);
	ck_assert_uint_eq(r.n, 0);
	free(json);
	manage_list_free(&r);
}
END_TEST

START_TEST(openharmony_style_input_is_accepted)
{
	/* pretty-printed, keys in another order, no isUserTar */
	const char *json =
	    "[\n {\"isBigFile\": true, \"fileName\": \"a1b2c3d4e5f60718.mp4\",\n"
	    "  \"information\": {\"stat\": {\"st_mtim\": {\"tv_nsec\": 0, \"tv_sec\": 1700000000},\n"
	    "   \"st_mode\": 33188, \"st_size\": 3145728}, \"path\": "
	    "\"/data/storage/el2/base/files/v.mp4\"}}\n]";
	manage_list_t r;
	ck_assert_int_eq(manage_parse(json, strlen(json), &r, NULL), 0);
	ck_assert_uint_eq(r.n, 1);
	ck_assert(r.v[0].is_big_file);
	ck_assert_uint_eq(r.v[0].size, 3145728);
	ck_assert_str_eq(r.v[0].path, "/data/storage/el2/base/files/v.mp4");
	ck_assert(!r.v[0].has_tar_entries);   /* OpenHarmony's manage.json has no count: none is checked */
	manage_list_free(&r);
	/* a tar recorded as empty */
	const char *empty = "[{\"fileName\":\"part.0.tar\",\"isBigFile\":false,\"tarEntries\":0}]";
	ck_assert_int_eq(manage_parse(empty, strlen(empty), &r, NULL), 0);
	ck_assert(r.v[0].has_tar_entries);
	ck_assert_uint_eq(r.v[0].tar_entries, 0);
	manage_list_free(&r);
}
END_TEST

START_TEST(older_entries_read_as_openharmony_reads_them)
{
	/* OpenHarmony's reader (GetExtManageInfo) takes an entry of a set older
	 * than the isBigFile key for a big file unless its name ends in ".tar" */
	const char *json =
	    "[{\"fileName\":\"part.0.tar\",\"information\":{\"path\":\"\"}},"
	    "{\"fileName\":\"a1b2c3d4e5f60718.db\",\"information\":{\"path\":\"/data/storage/el2/base/files/d.db\","
	    "\"stat\":{\"st_size\":5}}},"
	    "{\"fileName\":\"noextension\",\"information\":{\"path\":\"/data/storage/el2/base/files/n\"}},"
	    "{\"fileName\":\"part.1.TAR\",\"information\":{\"path\":\"/data/storage/el2/base/files/t\"}},"
	    "{\"fileName\":\"b.tar\",\"information\":{\"path\":\"/data/storage/el2/base/files/b\"},\"isBigFile\":true},"
	    "{\"fileName\":\"c.db\",\"information\":{\"path\":\"\"},\"isBigFile\":false}]";
	manage_list_t r;
	ohb_error_t err;
	ck_assert_int_eq(manage_parse(json, strlen(json), &r, &err), 0);
	ck_assert_uint_eq(r.n, 6);
	const char *want_big[] = { "part.0.tar:0", "a1b2c3d4e5f60718.db:1", "noextension:1", "part.1.TAR:1", "b.tar:1",
		"c.db:0" };
	for (size_t i = 0; i < r.n; i++) {
		size_t len = strlen(r.v[i].file_name);
		ck_assert_msg(strncmp(want_big[i], r.v[i].file_name, len) == 0, "entry %zu is %s", i, r.v[i].file_name);
		ck_assert_msg(r.v[i].is_big_file == (want_big[i][len + 1] == '1'), "%s: is_big_file %d", r.v[i].file_name,
		    r.v[i].is_big_file);
	}
	manage_list_free(&r);
	/* an application's own tar (isUserTar) is restored whole, never unpacked */
	const char *user =
	    "[{\"fileName\":\"f00d.tar\",\"information\":{\"path\":\"/data/storage/el2/base/files/mine.tar\"},"
	    "\"isUserTar\":true,\"isBigFile\":false},"
	    "{\"fileName\":\"beef.tar\",\"information\":{\"path\":\"/data/storage/el2/base/files/m2.tar\"},"
	    "\"isUserTar\":true}]";
	ck_assert_int_eq(manage_parse(user, strlen(user), &r, &err), 0);
	ck_assert(r.v[0].is_big_file);
	ck_assert(r.v[1].is_big_file);
	manage_list_free(&r);
	const char *user_nopath = "[{\"fileName\":\"f00d.tar\",\"isUserTar\":true,\"isBigFile\":false}]";
	ck_assert_int_eq(manage_parse(user_nopath, strlen(user_nopath), &r, &err), OHB_E_UNTAR);
	/* a mode not recorded reads as OpenHarmony's default, 0660, not as 0 */
	const char *modes =
	    "[{\"fileName\":\"a.db\",\"information\":{\"path\":\"/data/storage/el2/base/files/a\","
	    "\"stat\":{\"st_size\":5}},\"isBigFile\":true},"
	    "{\"fileName\":\"b.db\",\"information\":{\"path\":\"/data/storage/el2/base/files/b\"},\"isBigFile\":true},"
	    "{\"fileName\":\"c.db\",\"information\":{\"path\":\"/data/storage/el2/base/files/c\","
	    "\"stat\":{\"st_mode\":33024}},\"isBigFile\":true}]";
	ck_assert_int_eq(manage_parse(modes, strlen(modes), &r, &err), 0);
	ck_assert_uint_eq(r.v[0].mode, 0100660);
	ck_assert_uint_eq(r.v[0].size, 5);
	ck_assert_uint_eq(r.v[1].mode, 0100660);
	ck_assert_uint_eq(r.v[2].mode, 0100400);
	manage_list_free(&r);
	/* such a big file still needs its path */
	const char *nopath = "[{\"fileName\":\"a1b2c3d4e5f60718.db\",\"information\":{\"path\":\"\"}}]";
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(manage_parse(nopath, strlen(nopath), &r, &err), OHB_E_UNTAR);
	ck_assert_msg(strstr(err.message, "missing path for a big file") != NULL, "%s", err.message);
}
END_TEST

static void
assert_refused(const char *json, const char *needle)
{
	manage_list_t r;
	ohb_error_t err;
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(manage_parse(json, strlen(json), &r, &err), OHB_E_UNTAR);
	ck_assert_int_eq(err.code, OHB_E_UNTAR);
	ck_assert_msg(strstr(err.message, needle) != NULL, "message \"%s\" lacks \"%s\"", err.message,
	              needle);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_ptr_null(r.v);
}

START_TEST(bad_entries_are_refused_with_13500008)
{
	const char *ok = "{\"fileName\":\"part.0.tar\",\"information\":{\"path\":\"\"},\"isBigFile\":false}";
	char buf[1024];
	snprintf(buf, sizeof buf, "[%s,{\"fileName\":\"../x\",\"isBigFile\":false}]", ok);
	assert_refused(buf, "entry 1");
	assert_refused("[{\"fileName\":\"a/b.tar\",\"isBigFile\":false}]", "a/b.tar");
	assert_refused("[{\"fileName\":\"\",\"isBigFile\":false}]", "fileName");
	assert_refused("[{\"fileName\":\"..\"}]", "fileName");
	assert_refused("[{\"isBigFile\":false}]", "fileName");
	assert_refused("[{\"fileName\":\"0123456789abcdef\",\"isBigFile\":true}]", "missing path");
	assert_refused(
	    "[{\"fileName\":\"0123456789abcdef\",\"isBigFile\":true,\"information\":{\"path\":\"\"}}]",
	    "missing path");
	assert_refused("[{\"fileName\":\"0123456789abcdef\",\"isBigFile\":true,"
	               "\"information\":{\"path\":\"/data/../etc/passwd\"}}]",
	               "invalid path");
	assert_refused("[{\"fileName\":\"0123456789abcdef\",\"isBigFile\":true,"
	               "\"information\":{\"path\":\"relative/x\"}}]",
	               "invalid path");
	assert_refused("[{\"fileName\":\"part.0.tar\",\"information\":{\"stat\":{\"st_size\":-1}}}]", "stat");
	assert_refused("[{\"fileName\":\"part.0.tar\",\"information\":{\"stat\":{\"st_size\":\"12\"}}}]",
	               "stat");
	assert_refused("[{\"fileName\":\"part.0.tar\",\"isBigFile\":\"no\"}]", "boolean");
	assert_refused("[{\"fileName\":\"part.0.tar\",\"tarEntries\":-1}]", "tarEntries");
	assert_refused("[{\"fileName\":\"part.0.tar\",\"tarEntries\":null}]", "tarEntries");
	assert_refused("[{\"fileName\":\"part.0.tar\",\"tarEntries\":1.5}]", "tarEntries");
	assert_refused("[{\"fileName\":\"part.0.tar\",\"tarEntries\":\"3\"}]", "tarEntries");
	assert_refused("[{\"fileName\":\"part.0.tar\"},{\"fileName\":\"part.0.tar\"}]", "twice");
	assert_refused("[\"part.0.tar\"]", "entry 0");
	assert_refused("{\"fileName\":\"part.0.tar\"}", "array");
	assert_refused("[{\"fileName\":\"part.0.tar\"", "JSON");
}
END_TEST

START_TEST(path_rule_allows_dotted_names)
{
	/* REFERENCE.md: "test../x" is a valid name */
	const char *json = "[{\"fileName\":\"0123456789abcdef\",\"isBigFile\":true,"
	                   "\"information\":{\"path\":\"/data/test../x..y/..z\"}}]";
	manage_list_t r;
	ck_assert_int_eq(manage_parse(json, strlen(json), &r, NULL), 0);
	ck_assert_str_eq(r.v[0].path, "/data/test../x..y/..z");
	manage_list_free(&r);
	assert_refused("[{\"fileName\":\"0123456789abcdef\",\"isBigFile\":true,"
	               "\"information\":{\"path\":\"/data/x/..\"}}]",
	               "invalid path");
}
END_TEST

extern Suite *manage_suite(void);

/* one line: the Makefile finds suites with ^Suite \*x_suite(void) */
/* clang-format off */
Suite *manage_suite(void)
/* clang-format on */
{
	Suite *s = suite_create("manage");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, round_trip_keeps_every_field);
	tcase_add_test(tc, empty_list_is_an_empty_array);
	tcase_add_test(tc, openharmony_style_input_is_accepted);
	tcase_add_test(tc, older_entries_read_as_openharmony_reads_them);
	tcase_add_test(tc, bad_entries_are_refused_with_13500008);
	tcase_add_test(tc, path_rule_allows_dotted_names);
	suite_add_tcase(s, tc);
	return s;
}
