/* Tests of store.c: writing sets atomically, listing them (interrupted ones
 * included, junk ignored), the file order of a restore, a full disk, and the
 * rules for removing interrupted sets. Each test works in its own mkdtemp dir. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"
#include "ohbackup_store.h"

static char *
make_tmpdir(void)
{
	char tmpl[] = "/tmp/ohb-store-XXXXXX";
	char *d = mkdtemp(tmpl);
	ck_assert_ptr_nonnull(d);
	return strdup(d);
}

static void
remove_tmpdir(char *d)
{
	fsu_rm_rf(d, NULL);
	free(d);
}

/* A readable fd holding text: a pipe (offset-less) or an anonymous file. */
static int
pipe_with(const char *text)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	size_t len = strlen(text);
	ck_assert_int_eq(write(p[1], text, len), (ssize_t)len);
	close(p[1]);
	return p[0];
}

static int
file_with(const char *text)
{
	int fd = -1;
	ck_assert_int_eq(fsu_anon_fd(NULL, text, strlen(text), &fd, NULL), 0);
	return fd;
}

static void
put(store_writer_t *w, const char *bundle, const char *uri, int fd)
{
	ohb_error_t err;
	int rc = store_writer_put_file(w, bundle, uri, fd, NULL, &err);
	ck_assert_msg(rc == 0, "put %s/%s: %s", bundle, uri, err.message);
	close(fd);
}

static char *
read_store_file(store_t *st, const char *set, const char *bundle, const char *uri)
{
	int fd = -1;
	ohb_error_t err;
	ck_assert_int_eq(store_open_file(st, set, bundle, uri, &fd, &err), 0);
	char *text = NULL;
	ck_assert_int_eq(fsu_read_fd(fd, 1 << 20, &text, NULL, NULL), 0);
	close(fd);
	return text;
}

/* store_list_files of the bundle gives exactly want, in that order. */
static void
assert_listed(store_t *st, const char *id, const char *bundle, const char *const *want, size_t n_want)
{
	char **uris = NULL;
	size_t n = 0;
	ohb_error_t err;
	ck_assert_int_eq(store_list_files(st, id, bundle, &uris, &n, &err), 0);
	ck_assert_uint_eq(n, n_want);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(uris[i], want[i]);
	store_strings_free(uris, n);
}

static void
touch(const char *dir, const char *name, const char *text)
{
	ck_assert_int_eq(fsu_write_atomic(dir, name, text, strlen(text), 0644, NULL), 0);
}

START_TEST(finished_set_lists_complete_with_results)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	store_t *st = NULL;
	char *sd = fsu_join(d, "nested/store");
	ck_assert_int_eq(store_open(sd, &st, &err), 0);
	ck_assert_str_eq(store_dir(st), sd);

	store_writer_t *w = NULL;
	ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);
	char *id = strdup(store_writer_id(w));
	ck_assert_int_eq((int)strlen(id), 19);
	ck_assert_int_eq(store_writer_put_capability(w, file_with("{\"bundleInfos\":[]}"), &err), 0);

	/* A file fd is copied from its current offset: skip a 4-byte header. */
	int fd = file_with("HDR:payload-a");
	ck_assert_int_eq(lseek(fd, 4, SEEK_SET), 4);
	uint64_t bytes = 0;
	ck_assert_int_eq(store_writer_put_file(w, "com.example.a", "part.0.tar", fd, &bytes, &err), 0);
	ck_assert_uint_eq(bytes, 9);
	close(fd);
	put(w, "com.example.a", "manage.json", pipe_with("{\"a\":1}"));
	put(w, "com.example.b:1", "part.0.tar", pipe_with("bbbb"));
	ck_assert_int_eq(store_writer_set_result(w, "com.example.a", 0, "", 16, 2, &err), 0);
	ck_assert_int_eq(store_writer_set_result(w, "com.example.b:1", 13500006, "tar failed", 4, 1, &err), 0);
	ck_assert_int_eq(store_writer_finish(w, "OpenHarmony-5.0", "phone", &err), 0);

	store_set_info_t *sets = NULL;
	size_t n = 0;
	ck_assert_int_eq(store_list(st, &sets, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(sets[0].id, id);
	ck_assert(sets[0].complete);
	ck_assert_str_eq(sets[0].kind, "full");
	ck_assert_ptr_null(sets[0].base);
	ck_assert_ptr_nonnull(strchr(sets[0].created, 'T'));
	ck_assert_uint_eq(sets[0].n_bundles, 2);
	ck_assert_str_eq(sets[0].bundles[0].name, "com.example.a");
	ck_assert_int_eq(sets[0].bundles[0].code, 0);
	ck_assert_uint_eq(sets[0].bundles[0].files, 2);
	ck_assert_str_eq(sets[0].bundles[1].name, "com.example.b:1");
	ck_assert_int_eq(sets[0].bundles[1].code, 13500006);
	ck_assert_str_eq(sets[0].bundles[1].message, "tar failed");
	ck_assert_uint_eq(sets[0].bytes, 20);
	store_set_infos_free(sets, n);

	char *text = read_store_file(st, id, "com.example.a", "part.0.tar");
	ck_assert_str_eq(text, "payload-a");
	free(text);
	int cfd = -1;
	ck_assert_int_eq(store_open_capability(st, id, &cfd, &err), 0);
	ck_assert_int_eq(fsu_read_fd(cfd, 4096, &text, NULL, NULL), 0);
	ck_assert_str_eq(text, "{\"bundleInfos\":[]}");
	free(text);
	close(cfd);

	/* set.json is the header's format. */
	char *sj = fsu_printf("%s/%s/set.json", sd, id);
	ck_assert_int_eq(fsu_read_file(sj, 1 << 20, &text, NULL, NULL), 0);
	ck_assert_ptr_nonnull(strstr(text, "\"format\":\t1"));
	ck_assert_ptr_nonnull(strstr(text, "\"systemFullName\":\t\"OpenHarmony-5.0\""));
	ck_assert_ptr_nonnull(strstr(text, "\"received\":\t2"));
	free(text);
	free(sj);

	store_set_info_t info;
	ck_assert_int_eq(store_set_info(st, id, &info, &err), 0);
	ck_assert(info.complete);
	store_set_info_clear(&info);
	ck_assert_int_eq(store_set_info(st, "20200101-000000-000", &info, &err), OHB_E_INVAL);
	ck_assert_int_eq(store_set_info(st, "../x", &info, &err), OHB_E_INVAL);

	free(id);
	free(sd);
	store_close(st);
	remove_tmpdir(d);
}
END_TEST

START_TEST(abandoned_set_is_interrupted_and_later_set_stays_good)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	store_t *st = NULL;
	ck_assert_int_eq(store_open(d, &st, &err), 0);

	store_writer_t *w = NULL;
	ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);
	char *old = strdup(store_writer_id(w));
	put(w, "com.example.a", "part.0.tar", pipe_with("half"));
	store_writer_abandon(w);

	ck_assert_int_eq(store_writer_begin(st, "incremental", old, &w, &err), 0);
	char *good = strdup(store_writer_id(w));
	put(w, "com.example.a", "part.0.tar", pipe_with("whole"));
	ck_assert_int_eq(store_writer_set_result(w, "com.example.a", 0, NULL, 5, 1, &err), 0);
	ck_assert_int_eq(store_writer_finish(w, "sys", "phone", &err), 0);

	store_set_info_t *sets = NULL;
	size_t n = 0;
	ck_assert_int_eq(store_list(st, &sets, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(sets[0].id, good);    /* newest first */
	ck_assert(sets[0].complete);
	ck_assert_str_eq(sets[0].kind, "incremental");
	ck_assert_str_eq(sets[0].base, old);
	ck_assert_str_eq(sets[1].id, old);
	ck_assert(!sets[1].complete);
	ck_assert_str_eq(sets[1].kind, "unknown");
	ck_assert_uint_eq(sets[1].n_bundles, 0);
	ck_assert_ptr_nonnull(sets[1].created);
	store_set_infos_free(sets, n);

	/* A finished set whose bundle never got a result is not a restore point for it. */
	ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);
	char *third = strdup(store_writer_id(w));
	put(w, "com.example.c", "part.0.tar", pipe_with("c"));
	ck_assert_int_eq(store_writer_finish(w, "sys", "phone", &err), 0);
	store_set_info_t info;
	ck_assert_int_eq(store_set_info(st, third, &info, &err), 0);
	ck_assert_uint_eq(info.n_bundles, 1);
	ck_assert_int_ne(info.bundles[0].code, 0);
	store_set_info_clear(&info);

	/* Bad kinds and bases are refused. */
	ck_assert_int_eq(store_writer_begin(st, "weekly", NULL, &w, &err), OHB_E_INVAL);
	ck_assert_int_eq(store_writer_begin(st, "full", old, &w, &err), OHB_E_INVAL);
	ck_assert_int_eq(store_writer_begin(st, "incremental", "../etc", &w, &err), OHB_E_INVAL);

	free(old);
	free(good);
	free(third);
	store_close(st);
	remove_tmpdir(d);
}
END_TEST

START_TEST(sets_begun_in_the_same_millisecond_get_distinct_ids)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	store_t *st = NULL;
	ck_assert_int_eq(store_open(d, &st, &err), 0);

	/* Begin pairs until two land in the same millisecond (nearly always the
	 * first try), each pair in a fresh store so that earlier folders cannot
	 * take the "-2". */
	bool collided = false;
	for (int attempt = 0; attempt < 200 && !collided; attempt++) {
		char *sub = fsu_printf("%s/try%d", d, attempt);
		store_t *fresh = NULL;
		ck_assert_int_eq(store_open(sub, &fresh, &err), 0);
		free(sub);
		store_writer_t *a = NULL, *b = NULL;
		ck_assert_int_eq(store_writer_begin(fresh, "full", NULL, &a, &err), 0);
		ck_assert_int_eq(store_writer_begin(fresh, "full", NULL, &b, &err), 0);
		ck_assert_str_ne(store_writer_id(a), store_writer_id(b));
		ck_assert_str_ne(store_writer_path(a), store_writer_path(b));
		if (strncmp(store_writer_id(a), store_writer_id(b), 19) == 0) {
			collided = true;
			char want[64];
			snprintf(want, sizeof want, "%.19s-2", store_writer_id(a));
			ck_assert_str_eq(store_writer_id(b), want);
			/* The later one lists first even though "-2" is a suffix. */
			ck_assert_int_eq(store_writer_finish(a, "s", "d", &err), 0);
			ck_assert_int_eq(store_writer_finish(b, "s", "d", &err), 0);
			store_set_info_t *sets = NULL;
			size_t n = 0;
			ck_assert_int_eq(store_list(fresh, &sets, &n, &err), 0);
			ck_assert_uint_eq(n, 2);
			ck_assert_str_eq(sets[0].id, want);
			store_set_infos_free(sets, n);
		} else {
			store_writer_abandon(a);
			store_writer_abandon(b);
		}
		store_close(fresh);
	}
	ck_assert_msg(collided, "no two sets began in the same millisecond in 200 tries");

	/* Many sets in a burst: all distinct. */
	char *ids[40];
	for (int i = 0; i < 40; i++) {
		store_writer_t *w = NULL;
		ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);
		ids[i] = strdup(store_writer_id(w));
		store_writer_abandon(w);
		for (int k = 0; k < i; k++)
			ck_assert_str_ne(ids[i], ids[k]);
	}
	for (int i = 0; i < 40; i++)
		free(ids[i]);
	store_close(st);
	remove_tmpdir(d);
}
END_TEST

START_TEST(bad_uris_and_bundle_names_are_refused)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	store_t *st = NULL;
	ck_assert_int_eq(store_open(d, &st, &err), 0);
	store_writer_t *w = NULL;
	ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);

	static const char *const bad_uris[] = { "a/b", "..", ".", "../x", "", "a b", ".hidden", "/etc" };
	for (size_t i = 0; i < sizeof bad_uris / sizeof bad_uris[0]; i++) {
		int fd = pipe_with("x");
		ck_assert_int_eq(store_writer_put_file(w, "com.example.a", bad_uris[i], fd, NULL, &err), OHB_E_INVAL);
		ck_assert_int_eq(err.code, OHB_E_INVAL);
		close(fd);
	}
	static const char *const bad_bundles[] = { "..", ".", "a/b", "", "x:", "x:1a", "a b" };
	for (size_t i = 0; i < sizeof bad_bundles / sizeof bad_bundles[0]; i++) {
		int fd = pipe_with("x");
		ck_assert_int_eq(store_writer_put_file(w, bad_bundles[i], "part.0.tar", fd, NULL, &err), OHB_E_INVAL);
		close(fd);
	}
	char longname[200];
	memset(longname, 'a', 128);
	longname[128] = '\0';
	int fd = pipe_with("x");
	ck_assert_int_eq(store_writer_put_file(w, longname, "f", fd, NULL, &err), OHB_E_INVAL);
	close(fd);
	longname[127] = '\0';
	put(w, longname, "f", pipe_with("x"));

	/* Nothing escaped the set folder. */
	char *esc = fsu_join(d, "x");
	ck_assert_int_ne(access(esc, F_OK), 0);
	free(esc);
	int rfd = -1;
	ck_assert_int_eq(store_open_file(st, store_writer_id(w), "com.example.a", "../set.json", &rfd, &err),
	    OHB_E_INVAL);
	store_writer_abandon(w);
	store_close(st);
	remove_tmpdir(d);
}
END_TEST

/* With a readable manage.json, the files it names follow it in its order (the
 * restoring service applies them in that order); the rest come after. */
START_TEST(list_files_follows_manage_json_order)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	store_t *st = NULL;
	ck_assert_int_eq(store_open(d, &st, &err), 0);
	store_writer_t *w = NULL;
	ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);
	char *id = strdup(store_writer_id(w));
#define ENTRY(name, path, big) "{\"fileName\":\"" name "\",\"information\":{\"path\":\"" path "\",\"stat\":" \
	                           "{\"st_size\":1,\"st_mode\":33188,\"st_mtim\":{\"tv_sec\":1,\"tv_nsec\":0}}}," \
	                           "\"isUserTar\":false,\"isBigFile\":" big "}"
	put(w, "b", "manage.json",
	    pipe_with("[" ENTRY("1700000000000_part.0.tar", "", "false") "," ENTRY("f00d.db", "/data/x.db", "true") ","
	              ENTRY("1700000000000_part.1.tar", "", "false") "," ENTRY("0abc.db", "/data/y.db", "true") "]"));
#undef ENTRY
	put(w, "b", "0abc.db", pipe_with("y"));
	put(w, "b", "f00d.db", pipe_with("x"));
	put(w, "b", "1700000000000_part.1.tar", pipe_with("1"));
	put(w, "b", "1700000000000_part.0.tar", pipe_with("0"));
	put(w, "b", "1700000000000_part.0.rp", pipe_with("r"));
	put(w, "b", "all.rp", pipe_with("r"));
	ck_assert_int_eq(store_writer_set_result(w, "b", 0, "", 7, 6, &err), 0);
	ck_assert_int_eq(store_writer_finish(w, "s", "d", &err), 0);
	static const char *const want[] = { "manage.json", "1700000000000_part.0.tar", "f00d.db",
		"1700000000000_part.1.tar", "0abc.db", "1700000000000_part.0.rp", "all.rp" };
	assert_listed(st, id, "b", want, 7);
	free(id);
	store_close(st);
	remove_tmpdir(d);
}
END_TEST

START_TEST(list_files_puts_manage_json_first_numbers_by_value_and_skips_temp_files)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	store_t *st = NULL;
	ck_assert_int_eq(store_open(d, &st, &err), 0);
	store_writer_t *w = NULL;
	ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);
	char *id = strdup(store_writer_id(w));
	put(w, "b", "manage.json", pipe_with("{}"));
	put(w, "b", "part.10.tar", pipe_with("10"));
	put(w, "b", "part.1.tar", pipe_with("1"));
	put(w, "b", "part.2.tar", pipe_with("2"));
	put(w, "b", "part.0.tar", pipe_with("0"));
	put(w, "b", "Zeta.db", pipe_with("z"));
	put(w, "b", "all.rp", pipe_with("r"));
	put(w, "b", "part.0.rp", pipe_with("r"));
	char *bdir = fsu_printf("%s/%s/b", d, id);
	touch(bdir, ".part.2.tar.tmp.123.0", "left by a crash");
	char *sub = fsu_join(bdir, "subdir");
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	ck_assert_int_eq(store_writer_set_result(w, "b", 0, "", 7, 6, &err), 0);
	ck_assert_int_eq(store_writer_finish(w, "s", "d", &err), 0);

	static const char *const want[] = { "manage.json", "Zeta.db", "all.rp", "part.0.rp", "part.0.tar",
		"part.1.tar", "part.2.tar", "part.10.tar" };
	assert_listed(st, id, "b", want, 8);
	char **uris = NULL;
	size_t n = 0;

	/* A bundle without files and a set that does not exist answer 13900020. */
	ck_assert_int_eq(store_list_files(st, id, "nobody", &uris, &n, &err), OHB_E_INVAL);
	ck_assert_int_eq(store_list_files(st, "20200101-000000-000", "b", &uris, &n, &err), OHB_E_INVAL);
	ck_assert_ptr_null(uris);

	free(sub);
	free(bdir);
	free(id);
	store_close(st);
	remove_tmpdir(d);
}
END_TEST

START_TEST(junk_in_the_store_does_not_break_listing)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	store_t *st = NULL;
	ck_assert_int_eq(store_open(d, &st, &err), 0);

	touch(d, "README", "not a set");
	touch(d, "20250101-000000-000-3", "a file named like a set");
	char *p = fsu_join(d, "foo");
	ck_assert_int_eq(mkdir(p, 0700), 0);
	free(p);
	p = fsu_join(d, "20251301-000000-000");    /* month 13 */
	ck_assert_int_eq(mkdir(p, 0700), 0);
	free(p);
	p = fsu_join(d, "20250101-000000-000-1");  /* no "-1" suffix exists */
	ck_assert_int_eq(mkdir(p, 0700), 0);
	free(p);
	p = fsu_join(d, "20250101-000000-000-2");
	ck_assert_int_eq(symlink("/", p), 0);        /* a link is not a set folder */
	free(p);
	p = fsu_join(d, "20250101-000000-000");
	ck_assert_int_eq(mkdir(p, 0700), 0);
	touch(p, "set.json", "{\"format\":1, \"kind\": \"full\", \"complete\": tr");
	free(p);
	p = fsu_join(d, "20250102-000000-000");
	ck_assert_int_eq(mkdir(p, 0700), 0);
	touch(p, "set.json", "[1,2,3]");
	free(p);
	p = fsu_join(d, "20250103-000000-000");
	ck_assert_int_eq(mkdir(p, 0700), 0);
	touch(p, "set.json", "{\"kind\":\"full\",\"complete\":false,\"bundles\":[{\"name\":\"a\"},7,{\"code\":0}]}");
	free(p);
	p = fsu_join(d, "20250104-000000-000");
	ck_assert_int_eq(mkdir(p, 0700), 0);
	touch(p, "set.json", "{\"kind\":\"full\",\"complete\":true,\"bundles\":{\"name\":\"a\"},\"created\":5,\"createdMs\":1e300}");
	free(p);

	store_set_info_t *sets = NULL;
	size_t n = 0;
	ck_assert_int_eq(store_list(st, &sets, &n, &err), 0);
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(sets[0].id, "20250104-000000-000");
	ck_assert(sets[0].complete);
	ck_assert_uint_eq(sets[0].n_bundles, 0);
	ck_assert_str_eq(sets[0].created, "2025-01-04T00:00:00Z");
	ck_assert_int_eq(sets[0].created_ms, 1735948800000LL);
	ck_assert_str_eq(sets[1].id, "20250103-000000-000");
	ck_assert(!sets[1].complete);
	ck_assert_str_eq(sets[1].kind, "full");
	ck_assert_uint_eq(sets[1].n_bundles, 1);
	ck_assert_int_ne(sets[1].bundles[0].code, 0);    /* no code is not success */
	ck_assert_str_eq(sets[2].id, "20250102-000000-000");
	ck_assert(!sets[2].complete);
	ck_assert_str_eq(sets[2].kind, "unknown");
	ck_assert_str_eq(sets[3].id, "20250101-000000-000");
	ck_assert(!sets[3].complete);
	ck_assert_str_eq(sets[3].kind, "unknown");
	ck_assert_int_eq(sets[3].created_ms, 1735689600000LL);
	store_set_infos_free(sets, n);

	/* A store that is a file is refused. */
	char *f = fsu_join(d, "README");
	store_t *bad = NULL;
	ck_assert_int_eq(store_open(f, &bad, &err), OHB_E_INVAL);
	free(f);
	store_close(st);
	remove_tmpdir(d);
}
END_TEST

START_TEST(listing_works_on_a_read_only_store)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	store_t *st = NULL;
	ck_assert_int_eq(store_open(d, &st, &err), 0);
	store_writer_t *w = NULL;
	ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);
	put(w, "a", "part.0.tar", pipe_with("x"));
	ck_assert_int_eq(store_writer_finish(w, "s", "d", &err), 0);
	store_close(st);

	/* A read-only bind mount when we may; mode bits otherwise (ignored by root). */
	bool mounted = geteuid() == 0 && mount(d, d, "none", MS_BIND, NULL) == 0;
	if (mounted && mount("none", d, "none", MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) != 0) {
		umount2(d, MNT_DETACH);
		mounted = false;
	}
	if (!mounted)
		chmod(d, 0500);
	int open_rc = store_open(d, &st, &err);
	size_t n = 0;
	int list_rc = -1;
	store_set_info_t *sets = NULL;
	if (open_rc == 0) {
		list_rc = store_list(st, &sets, &n, &err);
		store_close(st);
	}
	if (mounted)
		umount2(d, MNT_DETACH);
	chmod(d, 0700);
	ck_assert_int_eq(open_rc, 0);
	ck_assert_int_eq(list_rc, 0);
	ck_assert_uint_eq(n, 1);
	ck_assert(sets[0].complete);
	store_set_infos_free(sets, n);
	remove_tmpdir(d);
}
END_TEST

START_TEST(full_disk_gives_13900025_and_no_final_file)
{
	if (geteuid() != 0) {
		fprintf(stderr, "store: ENOSPC test skipped (needs root to mount a small tmpfs)\n");
		return;
	}
	char *d = make_tmpdir();
	if (mount("tmpfs", d, "tmpfs", 0, "size=64k") != 0) {
		fprintf(stderr, "store: ENOSPC test skipped (mount tmpfs: %s)\n", strerror(errno));
		remove_tmpdir(d);
		return;
	}
	ohb_error_t err;
	store_t *st = NULL;
	int open_rc = store_open(d, &st, &err);
	store_writer_t *w = NULL;
	int begin_rc = open_rc == 0 ? store_writer_begin(st, "full", NULL, &w, &err) : -1;

	size_t big = 1u << 20;
	char *data = malloc(big);
	ck_assert_ptr_nonnull(data);
	memset(data, 'x', big);
	int fd = -1;
	ck_assert_int_eq(fsu_anon_fd(NULL, data, big, &fd, NULL), 0);
	free(data);

	int put_rc = -1, list_rc = -1, remove_rc = -1;
	bool has_name = false, final_exists = true;
	size_t n_files = 99, n_sets = 0;
	bool interrupted = false;
	ohb_error_t perr;
	if (begin_rc == 0) {
		put_rc = store_writer_put_file(w, "com.example.big", "big.db", fd, NULL, &perr);
		has_name = strstr(perr.message, "big.db") != NULL;
		char *final = fsu_printf("%s/%s/com.example.big/big.db", d, store_writer_id(w));
		final_exists = access(final, F_OK) == 0;
		free(final);
		/* Not even a temp file is left behind. */
		char *bdir = fsu_printf("%s/%s/com.example.big", d, store_writer_id(w));
		n_files = 0;
		DIR *dir = opendir(bdir);
		if (dir) {
			struct dirent *de;
			while ((de = readdir(dir)) != NULL)
				n_files += de->d_name[0] != '.' || strlen(de->d_name) > 2;
			closedir(dir);
		}
		free(bdir);
		char *id = strdup(store_writer_id(w));
		store_writer_abandon(w);
		store_set_info_t *sets = NULL;
		list_rc = store_list(st, &sets, &n_sets, &err);
		interrupted = list_rc == 0 && n_sets == 1 && !sets[0].complete;
		store_set_infos_free(sets, n_sets);
		remove_rc = store_remove_interrupted(st, id, &err);
		free(id);
	}
	close(fd);
	store_close(st);
	umount2(d, MNT_DETACH);
	remove_tmpdir(d);

	ck_assert_int_eq(open_rc, 0);
	ck_assert_int_eq(begin_rc, 0);
	ck_assert_int_eq(put_rc, OHB_E_NOSPC);
	ck_assert_int_eq(perr.code, OHB_E_NOSPC);
	ck_assert_msg(has_name, "message does not name the file: %s", perr.message);
	ck_assert(!final_exists);
	ck_assert_uint_eq(n_files, 0);
	ck_assert_int_eq(list_rc, 0);
	ck_assert(interrupted);
	ck_assert_int_eq(remove_rc, 0);
}
END_TEST

/* A file the service hands over anonymously (O_TMPFILE) is linked into the
 * set, not written again; a file with a name (a big file is the application's
 * own) is copied, so later edits of it never reach the backup. */
START_TEST(put_file_links_anonymous_files_and_copies_named_ones)
{
	char *d = make_tmpdir();
	char *store_dir = fsu_join(d, "store");
	ohb_error_t err;
	store_t *st = NULL;
	ck_assert_int_eq(store_open(store_dir, &st, &err), 0);
	store_writer_t *w = NULL;
	ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);
	char *id = strdup(store_writer_id(w));

	int anon = -1;
	ck_assert_int_eq(fsu_anon_fd(d, "tar", 3, &anon, &err), 0);
	struct stat ast;
	ck_assert_int_eq(fstat(anon, &ast), 0);
	uint64_t bytes = 0;
	ck_assert_int_eq(store_writer_put_file(w, "com.example.a", "part.0.tar", anon, &bytes, &err), 0);
	ck_assert_uint_eq(bytes, 3);
	close(anon);

	ck_assert_int_eq(fsu_write_atomic(d, "live.db", "v1", 2, 0600, &err), 0);
	char *live = fsu_join(d, "live.db");
	int named = open(live, O_RDONLY);
	ck_assert_int_ge(named, 0);
	struct stat nst;
	ck_assert_int_eq(fstat(named, &nst), 0);
	ck_assert_int_eq(store_writer_put_file(w, "com.example.a", "0123456789abcdef.db", named, &bytes, &err), 0);
	ck_assert_uint_eq(bytes, 2);
	close(named);
	ck_assert_int_eq(store_writer_set_result(w, "com.example.a", 0, "", 5, 2, &err), 0);
	ck_assert_int_eq(store_writer_finish(w, "OpenHarmony-5.0.0", "default", &err), 0);

	char *tar = fsu_printf("%s/%s/com.example.a/part.0.tar", store_dir, id);
	char *db = fsu_printf("%s/%s/com.example.a/0123456789abcdef.db", store_dir, id);
	struct stat tst, dst;
	ck_assert_int_eq(stat(tar, &tst), 0);
	ck_assert_int_eq(stat(db, &dst), 0);
	ck_assert_uint_eq(tst.st_ino, ast.st_ino);   /* linked */
	ck_assert_uint_ne(dst.st_ino, nst.st_ino);   /* copied */
	ck_assert_int_eq(tst.st_mode & 07777, 0600);
	/* The application edits its file: the backup keeps what it had. */
	int fd = open(live, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, "v2 changed", 10), 10);
	close(fd);
	char *text = read_store_file(st, id, "com.example.a", "0123456789abcdef.db");
	ck_assert_str_eq(text, "v1");
	free(text);
	text = read_store_file(st, id, "com.example.a", "part.0.tar");
	ck_assert_str_eq(text, "tar");
	free(text);
	free(tar);
	free(db);
	free(live);
	free(id);
	free(store_dir);
	store_close(st);
	remove_tmpdir(d);
}
END_TEST

START_TEST(remove_interrupted_rules)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	store_t *st = NULL;
	ck_assert_int_eq(store_open(d, &st, &err), 0);

	store_writer_t *w = NULL;
	ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);
	char *done = strdup(store_writer_id(w));
	put(w, "a", "part.0.tar", pipe_with("x"));
	ck_assert_int_eq(store_writer_set_result(w, "a", 0, "", 1, 1, &err), 0);
	ck_assert_int_eq(store_writer_finish(w, "s", "d", &err), 0);

	ck_assert_int_eq(store_writer_begin(st, "full", NULL, &w, &err), 0);
	char *broken = strdup(store_writer_id(w));
	put(w, "a", "part.0.tar", pipe_with("x"));
	store_writer_abandon(w);

	ck_assert_int_eq(store_remove_interrupted(st, done, &err), OHB_E_PERM);
	ck_assert_int_eq(err.code, OHB_E_PERM);
	ck_assert_int_eq(store_remove_interrupted(st, "20200101-000000-000", &err), OHB_E_INVAL);
	ck_assert_int_eq(store_remove_interrupted(st, "..", &err), OHB_E_INVAL);
	ck_assert_int_eq(store_remove_interrupted(st, "foo", &err), OHB_E_INVAL);
	ck_assert_int_eq(store_remove_interrupted(st, broken, &err), 0);
	ck_assert_int_eq(store_remove_interrupted(st, broken, &err), OHB_E_INVAL);

	store_set_info_t *sets = NULL;
	size_t n = 0;
	ck_assert_int_eq(store_list(st, &sets, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(sets[0].id, done);
	store_set_infos_free(sets, n);

	free(done);
	free(broken);
	store_close(st);
	remove_tmpdir(d);
}
END_TEST

/* Declared here (the runner is generated) to keep -Wmissing-prototypes quiet. */
extern Suite *store_suite(void);

Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("store");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, finished_set_lists_complete_with_results);
	tcase_add_test(tc, abandoned_set_is_interrupted_and_later_set_stays_good);
	tcase_add_test(tc, sets_begun_in_the_same_millisecond_get_distinct_ids);
	tcase_add_test(tc, bad_uris_and_bundle_names_are_refused);
	tcase_add_test(tc, list_files_puts_manage_json_first_numbers_by_value_and_skips_temp_files);
	tcase_add_test(tc, list_files_follows_manage_json_order);
	tcase_add_test(tc, junk_in_the_store_does_not_break_listing);
	tcase_add_test(tc, listing_works_on_a_read_only_store);
	tcase_add_test(tc, full_disk_gives_13900025_and_no_final_file);
	tcase_add_test(tc, remove_interrupted_rules);
	tcase_add_test(tc, put_file_links_anonymous_files_and_copies_named_ones);
	suite_add_tcase(s, tc);
	return s;
}
