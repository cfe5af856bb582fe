/*
 * test_scanner — what a backup of a bundle takes (scanner.h): include and
 * exclude matching, pruning, symlinks and special files, empty directories,
 * ordering, long and UTF-8 names, nested mounts, size-only scans and cancel.
 * Each test builds its sandbox in a fresh temporary directory and fills a
 * reg_bundle_t by hand, so nothing here depends on registry.c.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "scanner.h"

/* REFERENCE.md: the 13 default includes (a copy, so this suite stands alone). */
static const char *const default_includes[] = {
    "data/storage/el1/database/",
    "data/storage/el2/database/",
    "data/storage/el1/base/files/",
    "data/storage/el2/base/files/",
    "data/storage/el1/base/preferences/",
    "data/storage/el2/base/preferences/",
    "data/storage/el1/base/haps/*/database/",
    "data/storage/el2/base/haps/*/database/",
    "data/storage/el1/base/haps/*/files/",
    "data/storage/el2/base/haps/*/files/",
    "data/storage/el1/base/haps/*/preferences/",
    "data/storage/el2/base/haps/*/preferences/",
    "data/storage/el2/distributedfiles/",
};

#define N_DEFAULTS (sizeof default_includes / sizeof default_includes[0])

#define FILES "data/storage/el2/base/files"

typedef struct fixture {
	char root[64];     /* temp dir */
	char sandbox[128]; /* root/sandbox, mounted on "/" */
	reg_mount_t mounts[2];
	reg_bundle_t b;
} fixture_t;

static void
put_file(const char *base, const char *rel, const char *content)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", base, rel);
	char dir[4200];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	*slash = '\0';
	ck_assert_int_eq(fsu_mkdir_p(dir, 0755, NULL), 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	size_t len = strlen(content);
	ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
	close(fd);
}

static void
put_dir(const char *base, const char *rel)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", base, rel);
	ck_assert_int_eq(fsu_mkdir_p(path, 0755, NULL), 0);
}

static void
fixture_init(fixture_t *f, const char *const *inc, size_t n_inc, const char *const *exc, size_t n_exc)
{
	memset(f, 0, sizeof *f);
	snprintf(f->root, sizeof f->root, "/tmp/ohb_scan_XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(f->root));
	snprintf(f->sandbox, sizeof f->sandbox, "%s/sandbox", f->root);
	put_dir(f->sandbox, "");
	f->mounts[0].sandbox_prefix = "/";
	f->mounts[0].dir = f->sandbox;
	f->b.name = "com.example.scan";
	f->b.includes = (char **)inc;
	f->b.n_includes = n_inc;
	f->b.excludes = (char **)exc;
	f->b.n_excludes = n_exc;
	f->b.mounts = f->mounts;
	f->b.n_mounts = 1;
}

static void
fixture_done(fixture_t *f)
{
	ck_assert_int_eq(fsu_rm_rf(f->root, NULL), 0);
}

static const scan_entry_t *
find(const scan_list_t *l, const char *path)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].path, path) == 0)
			return &l->v[i];
	return NULL;
}

static void
assert_sorted(const scan_list_t *l)
{
	for (size_t i = 1; i < l->n; i++)
		ck_assert_msg(strcmp(l->v[i - 1].path, l->v[i].path) < 0, "not sorted: %s >= %s",
		              l->v[i - 1].path, l->v[i].path);
}

/* A typical sandbox: included, not included, and hap module data. */
static void
make_tree(const fixture_t *f)
{
	put_file(f->sandbox, FILES "/a.txt", "alpha");
	put_file(f->sandbox, FILES "/sub/b.txt", "bravo!");
	put_dir(f->sandbox, FILES "/empty");
	put_file(f->sandbox, FILES "/cache/tmp1", "x");
	put_file(f->sandbox, "data/storage/el2/base/cache/c.txt", "not included");
	put_file(f->sandbox, "data/storage/el2/base/haps/entry/files/h.txt", "hap");
	put_file(f->sandbox, "data/storage/el2/base/haps/entry/cache/x.txt", "not included");
	put_file(f->sandbox, "data/storage/el1/database/d.db", "db");
	put_file(f->sandbox, "other/top.txt", "not included");
}

START_TEST(defaults_select_the_sandbox_data)
{
	fixture_t f;
	fixture_init(&f, default_includes, N_DEFAULTS, NULL, 0);
	make_tree(&f);
	scan_list_t l;
	ohb_error_t err;
	ck_assert_int_eq(scan_bundle(&f.b, NULL, NULL, &l, &err), 0);
	static const char *const want[] = {
	    "/data/",
	    "/data/storage/",
	    "/data/storage/el1/",
	    "/data/storage/el1/database/",
	    "/data/storage/el1/database/d.db",
	    "/data/storage/el2/",
	    "/data/storage/el2/base/",
	    "/data/storage/el2/base/files/",
	    "/data/storage/el2/base/files/a.txt",
	    "/data/storage/el2/base/files/cache/",
	    "/data/storage/el2/base/files/cache/tmp1",
	    "/data/storage/el2/base/files/empty/",
	    "/data/storage/el2/base/files/sub/",
	    "/data/storage/el2/base/files/sub/b.txt",
	    "/data/storage/el2/base/haps/",
	    "/data/storage/el2/base/haps/entry/",
	    "/data/storage/el2/base/haps/entry/files/",
	    "/data/storage/el2/base/haps/entry/files/h.txt",
	};
	ck_assert_uint_eq(l.n, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < l.n; i++)
		ck_assert_str_eq(l.v[i].path, want[i]);
	ck_assert_uint_eq(l.total_files, 5);
	ck_assert_uint_eq(l.total_bytes, 5 + 6 + 1 + 3 + 2);
	ck_assert_uint_eq(l.skipped, 0);
	const scan_entry_t *a = find(&l, "/data/storage/el2/base/files/a.txt");
	ck_assert(!a->is_dir);
	ck_assert_uint_eq(a->size, 5);
	ck_assert(S_ISREG(a->mode));
	ck_assert_int_gt(a->mtime_sec, 0);
	const scan_entry_t *e = find(&l, "/data/storage/el2/base/files/empty/");
	ck_assert(e->is_dir);
	ck_assert(S_ISDIR(e->mode));
	ck_assert_uint_eq(e->size, 0);
	scan_list_free(&l);
	ck_assert_ptr_null(l.v);
	fixture_done(&f);
}
END_TEST

START_TEST(excludes_remove_files_and_trees)
{
	static const char *const exc[] = {"data/storage/el2/base/files/cache/", "*.db",
	                                  "/data/storage/el2/base/files/sub/b.txt"};
	fixture_t f;
	fixture_init(&f, default_includes, N_DEFAULTS, exc, 3);
	make_tree(&f);
	scan_list_t l;
	ck_assert_int_eq(scan_bundle(&f.b, NULL, NULL, &l, NULL), 0);
	ck_assert_ptr_null(find(&l, "/data/storage/el2/base/files/cache/"));
	ck_assert_ptr_null(find(&l, "/data/storage/el2/base/files/cache/tmp1"));
	ck_assert_ptr_null(find(&l, "/data/storage/el1/database/d.db"));
	ck_assert_ptr_nonnull(find(&l, "/data/storage/el1/database/"));
	ck_assert_ptr_null(find(&l, "/data/storage/el2/base/files/sub/b.txt"));
	ck_assert_ptr_nonnull(find(&l, "/data/storage/el2/base/files/sub/"));
	ck_assert_ptr_nonnull(find(&l, "/data/storage/el2/base/files/a.txt"));
	ck_assert_uint_eq(l.total_files, 2);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

static bool
count_dirs(void *ctx)
{
	(*(int *)ctx)++;
	return false;
}

/* The cancel poll runs once per directory opened: it counts the walk. */
START_TEST(excluded_and_unmatchable_dirs_are_not_walked)
{
	static const char *const inc[] = {FILES "/"};
	static const char *const exc[] = {FILES "/cache/"};
	fixture_t f;
	fixture_init(&f, inc, 1, exc, 1);
	char rel[256];
	for (int i = 0; i < 20; i++) {
		snprintf(rel, sizeof rel, FILES "/cache/d%d/f", i);
		put_file(f.sandbox, rel, "c");
		snprintf(rel, sizeof rel, "other/d%d/f", i);
		put_file(f.sandbox, rel, "o");
		snprintf(rel, sizeof rel, "data/storage/el1/d%d/f", i);
		put_file(f.sandbox, rel, "o");
	}
	put_file(f.sandbox, FILES "/keep/k", "k");
	int dirs = 0;
	scan_list_t l;
	ck_assert_int_eq(scan_bundle(&f.b, count_dirs, &dirs, &l, NULL), 0);
	/* "/", data, storage, el2, base, files, keep */
	ck_assert_int_eq(dirs, 7);
	/* data/, storage/, el2/, base/ lead to the include root and are listed too */
	ck_assert_uint_eq(l.n, 7);
	ck_assert_str_eq(l.v[0].path, "/data/");
	ck_assert_str_eq(l.v[3].path, "/data/storage/el2/base/");
	ck_assert_str_eq(l.v[4].path, "/" FILES "/");
	ck_assert_str_eq(l.v[5].path, "/" FILES "/keep/");
	ck_assert_str_eq(l.v[6].path, "/" FILES "/keep/k");
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(symlinks_and_special_files_are_skipped)
{
	static const char *const inc[] = {FILES "/"};
	fixture_t f;
	fixture_init(&f, inc, 1, NULL, 0);
	put_file(f.sandbox, FILES "/real.txt", "r");
	put_file(f.root, "outside/secret.txt", "secret");
	char target[256], link[512];
	snprintf(target, sizeof target, "%s/outside", f.root);
	snprintf(link, sizeof link, "%s/" FILES "/out", f.sandbox);
	ck_assert_int_eq(symlink(target, link), 0);
	snprintf(target, sizeof target, "%s/outside/secret.txt", f.root);
	snprintf(link, sizeof link, "%s/" FILES "/secret.txt", f.sandbox);
	ck_assert_int_eq(symlink(target, link), 0);
	snprintf(link, sizeof link, "%s/" FILES "/fifo", f.sandbox);
	ck_assert_int_eq(mkfifo(link, 0600), 0);
	scan_list_t l;
	ck_assert_int_eq(scan_bundle(&f.b, NULL, NULL, &l, NULL), 0);
	ck_assert_uint_eq(l.n, 6);   /* 4 ancestors of the include root */
	ck_assert_str_eq(l.v[4].path, "/" FILES "/");
	ck_assert_str_eq(l.v[5].path, "/" FILES "/real.txt");
	ck_assert_uint_eq(l.skipped, 3);
	for (size_t i = 0; i < l.n; i++)
		ck_assert_ptr_null(strstr(l.v[i].path, "secret"));
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(long_and_utf8_names_sorted_bytewise)
{
	static const char *const inc[] = {FILES "/"};
	fixture_t f;
	fixture_init(&f, inc, 1, NULL, 0);
	char longname[160];
	memset(longname, 'L', 150);
	longname[150] = '\0';
	char rel[512];
	snprintf(rel, sizeof rel, FILES "/%s/%s.txt", longname, longname);
	put_file(f.sandbox, rel, "long");
	put_file(f.sandbox,
	         FILES "/donn\xc3\xa9"
	               "es-\xe6\x97\xa5\xe6\x9c\xac.txt",
	         "utf8");
	put_file(f.sandbox, FILES "/a.txt", "1");
	put_file(f.sandbox, FILES "/a/x", "2");
	put_file(f.sandbox, FILES "/a0", "3");
	put_file(f.sandbox, FILES "/Z", "4");
	scan_list_t l;
	ck_assert_int_eq(scan_bundle(&f.b, NULL, NULL, &l, NULL), 0);
	assert_sorted(&l);
	char want[600];
	snprintf(want, sizeof want, "/%s", rel);
	ck_assert_ptr_nonnull(find(&l, want));
	ck_assert_ptr_nonnull(find(&l, "/" FILES "/donn\xc3\xa9"
	                               "es-\xe6\x97\xa5\xe6\x9c\xac.txt"));
	/* byte order: "a.txt" < "a/" < "a/x" < "a0" */
	size_t ia = 0, idir = 0, ix = 0, i0 = 0;
	for (size_t i = 0; i < l.n; i++) {
		if (strcmp(l.v[i].path, "/" FILES "/a.txt") == 0)
			ia = i;
		if (strcmp(l.v[i].path, "/" FILES "/a/") == 0)
			idir = i;
		if (strcmp(l.v[i].path, "/" FILES "/a/x") == 0)
			ix = i;
		if (strcmp(l.v[i].path, "/" FILES "/a0") == 0)
			i0 = i;
	}
	ck_assert(ia < idir && idir < ix && ix < i0);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(path_matching_rules)
{
	ck_assert(scan_path_matches("data/storage/el2/base/files/", "/data/storage/el2/base/files"));
	ck_assert(scan_path_matches("data/storage/el2/base/files/", "/data/storage/el2/base/files/a/b.txt"));
	ck_assert(!scan_path_matches("data/storage/el2/base/files/", "/data/storage/el2/base/filesx/a"));
	ck_assert(!scan_path_matches("data/storage/el2/base/files/", "/data/storage/el2/base"));
	ck_assert(scan_path_matches("data/storage/el2/base/haps/*/files/",
	                            "/data/storage/el2/base/haps/entry/files/x"));
	ck_assert(!scan_path_matches("data/storage/el2/base/haps/*/files/",
	                             "/data/storage/el2/base/haps/entry/cache/x"));
	ck_assert(scan_path_matches("/data/storage/el2/base/files/", "/data/storage/el2/base/files/a"));
	ck_assert(scan_path_matches("*.tmp", "/data/x/y.tmp"));
	ck_assert(scan_path_matches("data/a", "/data/a/b"));
	ck_assert(!scan_path_matches("data/a", "/data/ab"));
	ck_assert(scan_path_matches("/", "/anything/at/all"));
}
END_TEST

START_TEST(nested_mount_owns_its_prefix)
{
	static const char *const inc[] = {"data/storage/el2/base/"};
	fixture_t f;
	fixture_init(&f, inc, 1, NULL, 0);
	char app[128];
	snprintf(app, sizeof app, "%s/appdir", f.root);
	put_file(app, "doc.txt", "doc");
	put_file(f.sandbox, FILES "/shadowed.txt", "hidden by the mount");
	put_file(f.sandbox, "data/storage/el2/base/preferences/p", "p");
	/* longest prefix first, as the registry sorts them */
	f.mounts[1] = f.mounts[0];
	f.mounts[0].sandbox_prefix = "/" FILES;
	f.mounts[0].dir = app;
	f.b.n_mounts = 2;
	scan_list_t l;
	ck_assert_int_eq(scan_bundle(&f.b, NULL, NULL, &l, NULL), 0);
	assert_sorted(&l);
	ck_assert_ptr_null(find(&l, "/" FILES "/shadowed.txt"));
	const scan_entry_t *d = find(&l, "/" FILES "/doc.txt");
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(d->mount, 0);
	const scan_entry_t *root = find(&l, "/" FILES "/");
	ck_assert_ptr_nonnull(root);
	ck_assert_uint_eq(root->mount, 0);
	const scan_entry_t *p = find(&l, "/data/storage/el2/base/preferences/p");
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(p->mount, 1);
	char *rp = scan_entry_real_path(&f.b, d);
	char want[256];
	snprintf(want, sizeof want, "%s/doc.txt", app);
	ck_assert_str_eq(rp, want);
	free(rp);
	rp = scan_entry_real_path(&f.b, root);
	ck_assert_str_eq(rp, app);
	free(rp);
	rp = scan_entry_real_path(&f.b, p);
	snprintf(want, sizeof want, "%s/data/storage/el2/base/preferences/p", f.sandbox);
	ck_assert_str_eq(rp, want);
	free(rp);
	/* every path exactly once */
	for (size_t i = 1; i < l.n; i++)
		ck_assert_str_ne(l.v[i - 1].path, l.v[i].path);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(missing_mount_is_empty_not_an_error)
{
	fixture_t f;
	fixture_init(&f, default_includes, N_DEFAULTS, NULL, 0);
	f.mounts[0].dir = "/nonexistent/ohbackup/test";
	scan_list_t l;
	ck_assert_int_eq(scan_bundle(&f.b, NULL, NULL, &l, NULL), 0);
	ck_assert_uint_eq(l.n, 0);
	uint64_t bytes = 1, inc = 1;
	ck_assert_int_eq(scan_bundle_size(&f.b, 0, &bytes, &inc, NULL), 0);
	ck_assert_uint_eq(bytes, 0);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(size_scan_matches_full_scan)
{
	fixture_t f;
	fixture_init(&f, default_includes, N_DEFAULTS, NULL, 0);
	make_tree(&f);
	scan_list_t l;
	ck_assert_int_eq(scan_bundle(&f.b, NULL, NULL, &l, NULL), 0);
	uint64_t bytes = 0, inc = 0;
	ck_assert_int_eq(scan_bundle_size(&f.b, 0, &bytes, &inc, NULL), 0);
	ck_assert_uint_eq(bytes, l.total_bytes);
	ck_assert_uint_eq(inc, l.total_bytes);
	/* nothing is newer than an hour from now; everything is newer than 1970 */
	ck_assert_int_eq(scan_bundle_size(&f.b, fsu_now_ms() + 3600000, &bytes, &inc, NULL), 0);
	ck_assert_uint_eq(inc, 0);
	ck_assert_int_eq(scan_bundle_size(&f.b, 1, &bytes, &inc, NULL), 0);
	ck_assert_uint_eq(inc, l.total_bytes);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

static bool
cancel_at_third(void *ctx)
{
	return ++*(int *)ctx >= 3;
}

START_TEST(cancel_returns_an_empty_list)
{
	fixture_t f;
	fixture_init(&f, default_includes, N_DEFAULTS, NULL, 0);
	make_tree(&f);
	int polls = 0;
	scan_list_t l;
	ck_assert_int_eq(scan_bundle(&f.b, cancel_at_third, &polls, &l, NULL), 0);
	ck_assert_int_eq(polls, 3);
	ck_assert_uint_eq(l.n, 0);
	ck_assert_ptr_null(l.v);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

/* With several cores helper walkers take directories from the walk
 * (scanner.c). Every entry must still be listed once, sorted, with the same
 * totals as a size scan; the cancel poll still runs once per directory and
 * never again once it said stop. */
static bool
cancel_at_fortieth(void *ctx)
{
	int *polls = ctx;
	return ++*polls >= 40;
}

START_TEST(parallel_walk_lists_every_entry_once)
{
	static const char *const inc[] = {FILES "/"};
	fixture_t f;
	fixture_init(&f, inc, 1, NULL, 0);
	char rel[256], text[64];
	uint64_t bytes = 0;
	for (int d = 0; d < 40; d++)
		for (int s = 0; s < 5; s++)
			for (int i = 0; i < 4; i++) {
				snprintf(rel, sizeof rel, FILES "/d%02d/s%d/f%d", d, s, i);
				int len = snprintf(text, sizeof text, "%*d", 1 + (d * 20 + s * 4 + i) % 37, i);
				put_file(f.sandbox, rel, text);
				bytes += (uint64_t)len;
			}
	int polls = 0;
	scan_list_t l;
	ck_assert_int_eq(scan_bundle(&f.b, count_dirs, &polls, &l, NULL), 0);
	/* "/", data, storage, el2, base (on the way), files, 40 d, 200 s */
	ck_assert_int_eq(polls, 6 + 40 + 200);
	/* data/ storage/ el2/ base/ files/ + 40 + 200 directories + 800 files */
	ck_assert_uint_eq(l.n, 5 + 40 + 200 + 800);
	assert_sorted(&l);
	ck_assert_uint_eq(l.total_files, 800);
	ck_assert_uint_eq(l.total_bytes, bytes);
	ck_assert_ptr_nonnull(find(&l, "/" FILES "/d39/s4/f3"));
	uint64_t size = 0, inc_size = 0;
	ck_assert_int_eq(scan_bundle_size(&f.b, 0, &size, &inc_size, NULL), 0);
	ck_assert_uint_eq(size, bytes);
	scan_list_free(&l);

	polls = 0;
	ck_assert_int_eq(scan_bundle(&f.b, cancel_at_fortieth, &polls, &l, NULL), 0);
	ck_assert_int_eq(polls, 40);
	ck_assert_uint_eq(l.n, 0);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

/* A snapshot lists what scan_bundle lists, and stays current only while no
 * directory it read changes; a tree changed just before the walk is never
 * trusted (the racy rule). */
START_TEST(snapshot_is_current_until_a_directory_changes)
{
	fixture_t f;
	fixture_init(&f, default_includes, N_DEFAULTS, NULL, 0);
	make_tree(&f);
	scan_list_t plain, snap;
	ohb_error_t err;
	ck_assert_int_eq(scan_bundle(&f.b, NULL, NULL, &plain, &err), 0);
	uint64_t inc = 0;
	ck_assert_int_eq(scan_bundle_snapshot(&f.b, 0, &snap, &inc, &err), 0);
	ck_assert_uint_eq(snap.n, plain.n);
	for (size_t i = 0; i < plain.n; i++)
		ck_assert_str_eq(snap.v[i].path, plain.v[i].path);
	ck_assert_uint_eq(inc, plain.total_bytes);
	ck_assert(snap.reusable);
	ck_assert_uint_gt(snap.n_dirs, 0);
	ck_assert(!scan_list_is_current(&plain, -3600000));   /* no snapshot */
	ck_assert(!scan_list_is_current(&snap, 1000));        /* made a moment ago: racy */
	ck_assert(scan_list_is_current(&snap, -3600000));     /* racy rule off */

	put_file(f.sandbox, FILES "/sub/new.txt", "new");    /* a name added deep down */
	ck_assert(!scan_list_is_current(&snap, -3600000));
	scan_list_free(&snap);

	ck_assert_int_eq(scan_bundle_snapshot(&f.b, 0, &snap, NULL, &err), 0);
	ck_assert(scan_list_is_current(&snap, -3600000));
	char *sub = fsu_printf("%s/" FILES "/sub", f.sandbox), *moved = fsu_printf("%s/elsewhere", f.root);
	ck_assert_int_eq(rename(sub, moved), 0);
	ck_assert_int_eq(symlink(moved, sub), 0);   /* a directory replaced by a symlink */
	ck_assert(!scan_list_is_current(&snap, -3600000));
	free(sub);
	free(moved);
	scan_list_free(&snap);
	scan_list_free(&plain);
	fixture_done(&f);
}
END_TEST

extern Suite *scanner_suite(void);

/* one line: the Makefile finds suites with ^Suite \*x_suite(void) */
/* clang-format off */
Suite *scanner_suite(void)
/* clang-format on */
{
	Suite *s = suite_create("scanner");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, defaults_select_the_sandbox_data);
	tcase_add_test(tc, excludes_remove_files_and_trees);
	tcase_add_test(tc, excluded_and_unmatchable_dirs_are_not_walked);
	tcase_add_test(tc, symlinks_and_special_files_are_skipped);
	tcase_add_test(tc, long_and_utf8_names_sorted_bytewise);
	tcase_add_test(tc, path_matching_rules);
	tcase_add_test(tc, nested_mount_owns_its_prefix);
	tcase_add_test(tc, missing_mount_is_empty_not_an_error);
	tcase_add_test(tc, size_scan_matches_full_scan);
	tcase_add_test(tc, cancel_returns_an_empty_list);
	tcase_add_test(tc, parallel_walk_lists_every_entry_once);
	tcase_add_test(tc, snapshot_is_current_until_a_directory_changes);
	suite_add_tcase(s, tc);
	return s;
}
