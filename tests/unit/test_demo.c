/*
 * test_demo — the demo device: its shape (bundles, big files, a bundle that
 * forbids backup, long and UTF-8 paths, excluded caches), that it is a
 * function of the seed alone, that it never builds over existing bundles, and
 * that the ledger's extension script does what docs/EXTENSIONS.md says.
 * Each test works in its own mkdtemp folder and removes it.
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "demo.h"
#include "errors.h"
#include "extension.h"
#include "fsutil.h"
#include "registry.h"
#include "scanner.h"

#define MiB (1024u * 1024u)

static char *
tmp_root(void)
{
	char tmpl[] = "/tmp/ohb-test-demo-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	return strdup(tmpl);
}

static void
tmp_remove(char *dir)
{
	ck_assert_int_eq(fsu_rm_rf(dir, NULL), 0);
	free(dir);
}

/* Everything below a folder, one line per entry:
 * "<sandbox path>\t<type>\t<size>\t<mode>\t<mtime>\t<content hash>". */
typedef struct listing {
	char **v;
	size_t n, cap;
	uint64_t bytes;
	size_t big_files;       /* regular files over 2 MiB */
	size_t longest_path;
	bool utf8;              /* some name has a byte >= 0x80 */
} listing_t;

static uint64_t
hash_fd(int fd)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ULL;
	return h;
}

static void
listing_add(listing_t *l, char *line)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = realloc(l->v, l->cap * sizeof *l->v);
		ck_assert_ptr_nonnull(l->v);
	}
	l->v[l->n++] = line;
}

static void
walk(int dfd, const char *prefix, listing_t *l)
{
	DIR *d = fdopendir(dfd);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *path = fsu_printf("%s/%s", prefix, de->d_name);
		for (const char *p = de->d_name; *p; p++)
			if ((unsigned char)*p >= 0x80)
				l->utf8 = true;
		if (strlen(path) > l->longest_path)
			l->longest_path = strlen(path);
		struct stat st;
		ck_assert_int_eq(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
		uint64_t h = 0;
		char type = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'f';
		if (type == 'f') {
			int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW);
			ck_assert_int_ge(fd, 0);
			h = hash_fd(fd);
			close(fd);
			l->bytes += (uint64_t)st.st_size;
			if (st.st_size > 2 * MiB)
				l->big_files++;
		}
		listing_add(l, fsu_printf("%s\t%c\t%lld\t%o\t%lld.%09ld\t%016llx", path, type, (long long)st.st_size,
		                   (unsigned)st.st_mode & 07777, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		                   (unsigned long long)h));
		if (type == 'd') {
			int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			ck_assert_int_ge(sub, 0);
			walk(sub, path, l);
		}
		free(path);
	}
	closedir(d);
}

static int
line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The listing of every bundle's sandbox, as "<bundle>/<sandbox path>". */
static void
list_device(const char *root, listing_t *l)
{
	memset(l, 0, sizeof *l);
	reg_device_t *dev = NULL;
	ck_assert_int_eq(reg_device_open(root, &dev, NULL), 0);
	for (size_t i = 0; i < dev->n_bundles; i++) {
		int fd = open(dev->bundles[i]->mounts[0].dir, O_RDONLY | O_DIRECTORY);
		ck_assert_int_ge(fd, 0);
		walk(fd, dev->bundles[i]->name, l);
	}
	reg_device_free(dev);
	qsort(l->v, l->n, sizeof *l->v, line_cmp);
}

static void
listing_free(listing_t *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

START_TEST(test_demo_shape)
{
	char *root = tmp_root();
	ohb_error_t err;
	int64_t t0 = fsu_mono_ms();
	ck_assert_msg(demo_build(root, 1, &err) == 0, "%s", err.message);
	int64_t took = fsu_mono_ms() - t0;
	ck_assert_msg(took < 10000, "the demo took %lld ms", (long long)took);

	reg_device_t *dev = NULL;
	ck_assert_int_eq(reg_device_open(root, &dev, &err), 0);
	ck_assert_uint_eq(dev->n_bundles, 8);
	ck_assert_uint_eq(dev->n_broken, 0);
	ck_assert_str_eq(dev->system_full_name, "OpenHarmony-5.0.0");
	size_t forbidden = 0;
	for (size_t i = 0; i < dev->n_bundles; i++) {
		const reg_bundle_t *b = dev->bundles[i];
		if (!b->allow_backup_restore)
			forbidden++;
		ck_assert_uint_eq(b->n_mounts, 1);
		ck_assert_str_eq(b->mounts[0].sandbox_prefix, "/");
		char *want = fsu_printf("%s/sandbox", b->bundle_dir);
		ck_assert_str_eq(b->mounts[0].dir, want);
		free(want);
	}
	ck_assert_uint_eq(forbidden, 1);
	ck_assert(!reg_device_find(dev, "com.example.bank")->allow_backup_restore);
	const reg_bundle_t *mail = reg_device_find(dev, "com.example.mail");
	ck_assert_ptr_nonnull(mail);
	ck_assert_uint_eq(mail->n_excludes, 1);
	ck_assert_str_eq(mail->excludes[0], "data/storage/el2/base/files/cache/");
	char *device_json = fsu_join(root, "device.json");
	ck_assert_int_eq(access(device_json, R_OK), 0);
	free(device_json);

	listing_t l;
	list_device(root, &l);
	ck_assert_uint_ge(l.big_files, 3);
	ck_assert(l.utf8);
	/* "<bundle>/data/..." — the sandbox path is what follows the bundle name. */
	ck_assert_uint_ge(l.longest_path - strlen("com.example.unicode"), 150);
	ck_assert_uint_ge(l.n, 600);
	ck_assert_uint_le(l.bytes, 40 * MiB);
	bool has_cafe = false, has_chinese = false, has_empty_dir = false;
	for (size_t i = 0; i < l.n; i++) {
		has_cafe |= strstr(l.v[i], "com.example.unicode/data/storage/el2/base/files/café ☕/résumé.txt\t") != NULL;
		has_chinese |= strstr(l.v[i], "文档") != NULL;
		has_empty_dir |= strstr(l.v[i], "notebooks/Trash\td") != NULL;
	}
	ck_assert(has_cafe && has_chinese && has_empty_dir);
	listing_free(&l);

	/* The excludes really exclude: nothing of mail's cache, none of music's *.tmp. */
	scan_list_t sl;
	ck_assert_int_eq(scan_bundle(mail, NULL, NULL, &sl, &err), 0);
	ck_assert_uint_ge(sl.total_files, 200);
	for (size_t i = 0; i < sl.n; i++)
		ck_assert_msg(strstr(sl.v[i].path, "/files/cache") == NULL, "%s", sl.v[i].path);
	scan_list_free(&sl);
	ck_assert_int_eq(scan_bundle(reg_device_find(dev, "com.example.music"), NULL, NULL, &sl, &err), 0);
	for (size_t i = 0; i < sl.n; i++)
		ck_assert_msg(strstr(sl.v[i].path, ".tmp") == NULL, "%s", sl.v[i].path);
	scan_list_free(&sl);
	reg_device_free(dev);
	tmp_remove(root);
}
END_TEST

START_TEST(test_demo_deterministic)
{
	char *a = tmp_root(), *b = tmp_root(), *c = tmp_root();
	ohb_error_t err;
	ck_assert_int_eq(demo_build(a, 42, &err), 0);
	ck_assert_int_eq(demo_build(b, 42, &err), 0);
	ck_assert_int_eq(demo_build(c, 43, &err), 0);
	listing_t la, lb, lc;
	list_device(a, &la);
	list_device(b, &lb);
	list_device(c, &lc);
	ck_assert_uint_eq(la.n, lb.n);
	for (size_t i = 0; i < la.n; i++)
		ck_assert_str_eq(la.v[i], lb.v[i]);   /* names, sizes, modes, mtimes and contents */
	bool differs = la.n != lc.n;
	for (size_t i = 0; !differs && i < la.n; i++)
		differs = strcmp(la.v[i], lc.v[i]) != 0;
	ck_assert_msg(differs, "another seed gives another device");
	/* Modes do not depend on the umask: the database folders are private. */
	bool private_db = false;
	for (size_t i = 0; i < la.n; i++)
		private_db |= strstr(la.v[i], "com.example.notes/data/storage/el2/database\td\t") != NULL &&
		              strstr(la.v[i], "\t700\t") != NULL;
	ck_assert(private_db);
	listing_free(&la);
	listing_free(&lb);
	listing_free(&lc);
	tmp_remove(a);
	tmp_remove(b);
	tmp_remove(c);
}
END_TEST

START_TEST(test_demo_refuses_second_build)
{
	char *root = tmp_root();
	ohb_error_t err;
	ck_assert_int_eq(demo_build(root, 1, &err), 0);
	ck_assert_int_eq(demo_build(root, 1, &err), OHB_E_INVAL);
	ck_assert_ptr_nonnull(strstr(err.message, "already holds bundles"));
	tmp_remove(root);

	/* Any bundle at all, even one the demo would not make, blocks it. */
	root = tmp_root();
	char *data = fsu_join(root, "data");
	char *dev_root = fsu_join(root, "device");
	ck_assert_int_eq(fsu_mkdir_p(data, 0755, NULL), 0);
	ck_assert_int_eq(reg_bundle_add_dir(dev_root, "com.other", data, &err), 0);
	ck_assert_int_eq(demo_build(dev_root, 1, &err), OHB_E_INVAL);
	free(data);
	free(dev_root);
	tmp_remove(root);
}
END_TEST

static void
ledger_progress(void *ctx, const char *json)
{
	size_t *n = ctx;
	ck_assert_ptr_nonnull(strstr(json, "\"progressInfo\":[{\"name\":\"com.example.ledger\""));
	(*n)++;
}

static char *
read_text(const char *path)
{
	char *text = NULL;
	ck_assert_int_eq(fsu_read_file(path, 1 << 20, &text, NULL, NULL), 0);
	return text;
}

static struct timespec
mtime_of(const char *path)
{
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mtim;
}

static void
assert_same_mtime(const char *path, struct timespec want)
{
	struct timespec got = mtime_of(path);
	ck_assert_msg(got.tv_sec == want.tv_sec && got.tv_nsec == want.tv_nsec, "mtime of %s changed", path);
}

START_TEST(test_demo_ledger_extension)
{
	char *root = tmp_root();
	ohb_error_t err;
	ck_assert_int_eq(demo_build(root, 7, &err), 0);
	reg_device_t *dev = NULL;
	ck_assert_int_eq(reg_device_open(root, &dev, &err), 0);
	const reg_bundle_t *b = reg_device_find(dev, "com.example.ledger");
	ck_assert_ptr_nonnull(b);
	ck_assert(b->allow_backup_restore);
	ck_assert_ptr_nonnull(b->extension);
	char *want = fsu_join(b->bundle_dir, "ext/ledger-ext.sh");
	ck_assert_str_eq(b->extension, want);
	free(want);
	ck_assert_int_eq(access(b->extension, X_OK), 0);
	/* The other bundles have none. */
	for (size_t i = 0; i < dev->n_bundles; i++)
		ck_assert(dev->bundles[i] == b || dev->bundles[i]->extension == NULL);

	char *db = fsu_printf("%s/data/storage/el2/database/ledger.db", b->mounts[0].dir);
	char *db_dir = fsu_printf("%s/data/storage/el2/database", b->mounts[0].dir);
	char *dump = fsu_printf("%s/data/storage/el2/base/files/ledger.dump", b->mounts[0].dir);
	char *files_dir = fsu_printf("%s/data/storage/el2/base/files", b->mounts[0].dir);
	char *original = read_text(db);
	size_t rows = 0;
	for (const char *p = original; *p; p++)
		rows += p[0] == '\n' && p[1] >= '0' && p[1] <= '9';
	ck_assert_uint_ge(rows, 300);
	char expect_info[64];
	snprintf(expect_info, sizeof expect_info, "{\"ledgerRows\":%zu}", rows);

	char *out = NULL;
	ck_assert_int_eq(ext_query(b, "info", NULL, 5000, &out, &err), 0);
	ck_assert_str_eq(out, expect_info);
	free(out);
	ck_assert_int_eq(ext_query(b, "compat", "v1.0", 5000, &out, &err), 0);
	ck_assert_str_eq(out, "compatible");
	free(out);
	ck_assert_int_eq(ext_query(b, "compat", "1.0", 5000, &out, &err), 0);
	ck_assert_str_eq(out, "");
	free(out);

	/* backup: a dump next to the files, progress lines, a CountInfo result; folders look untouched. */
	struct timespec db_mtime = mtime_of(db), db_dir_mtime = mtime_of(db_dir), files_mtime = mtime_of(files_dir);
	size_t progress = 0;
	ext_hooks_t hooks = { &progress, ledger_progress, NULL, NULL, 0 };
	char *result = NULL;
	int rc = ext_run(b, "backup", &hooks, &result, NULL, &err);
	ck_assert_msg(rc == 0, "%s", err.message);
	ck_assert_uint_ge(progress, 2);
	char count[64];
	snprintf(count, sizeof count, "\"successCount\":%zu,", rows);
	ck_assert_ptr_nonnull(result);
	ck_assert_msg(strstr(result, "\"type\":\"CountInfo\"") && strstr(result, count), "%s", result);
	free(result);
	ck_assert_int_eq(access(dump, R_OK), 0);
	assert_same_mtime(files_dir, files_mtime);
	assert_same_mtime(dump, db_mtime);
	assert_same_mtime(db_dir, db_dir_mtime);

	/* restore: the database comes back from the dump alone, byte for byte, and the dump goes. */
	ck_assert_int_eq(unlink(db), 0);
	db_dir_mtime = mtime_of(db_dir);
	progress = 0;
	rc = ext_run(b, "restore", &hooks, &result, NULL, &err);
	ck_assert_msg(rc == 0, "%s", err.message);
	ck_assert_uint_ge(progress, 2);
	ck_assert_msg(strstr(result, count) != NULL, "%s", result);
	free(result);
	char *again = read_text(db);
	ck_assert_str_eq(again, original);
	free(again);
	ck_assert_int_ne(access(dump, F_OK), 0);
	assert_same_mtime(db, db_mtime);
	assert_same_mtime(files_dir, files_mtime);
	assert_same_mtime(db_dir, db_dir_mtime);   /* as the restore found it */
	ck_assert_int_eq(ext_query(b, "info", NULL, 5000, &out, &err), 0);
	ck_assert_str_eq(out, expect_info);
	free(out);

	free(original);
	free(db);
	free(db_dir);
	free(dump);
	free(files_dir);
	reg_device_free(dev);
	tmp_remove(root);
}
END_TEST

extern Suite *demo_suite(void);

Suite *demo_suite(void)
{
	Suite *s = suite_create("demo");
	TCase *tc = tcase_create("demo");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_demo_shape);
	tcase_add_test(tc, test_demo_deterministic);
	tcase_add_test(tc, test_demo_refuses_second_build);
	tcase_add_test(tc, test_demo_ledger_extension);
	suite_add_tcase(s, tc);
	return s;
}
