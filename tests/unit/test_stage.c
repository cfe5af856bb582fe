/* Tests of unpacker.c and applier.c: a restore stage is filled from tars and
 * big files, then committed all or nothing. Every hostile input must leave the
 * sandbox byte for byte as it was (checked with a snapshot of the tree), and a
 * commit killed mid-apply must be finished by stage_recover. Each test works
 * in its own temporary directory; tars are made with bsdtar, whose -s option
 * forges the hostile names. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"
#include "stage.h"

#define FILES "data/storage/el2/base/files"

typedef struct fixture {
	char *root;      /* the test's temporary directory */
	char *sandbox;   /* root/sandbox: what the bundle calls "/" */
	char *src;       /* root/src: trees that tars are made from */
	char *temp;      /* the bundle's temp_dir */
	reg_mount_t mount;
	reg_bundle_t b;
} fixture_t;

/* Mounts "/" on root/sandbox, or (files_only) /data/storage/el2/base/files
 * on root/sandbox/data/storage/el2/base/files. temp_base NULL -> root. */
static void
fx_init_at(fixture_t *f, bool files_only, const char *temp_base)
{
	memset(f, 0, sizeof *f);
	char tmpl[] = "/tmp/ohb-stage-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	f->root = strdup(tmpl);
	f->sandbox = fsu_join(f->root, "sandbox");
	f->src = fsu_join(f->root, "src");
	if (temp_base) {
		char tt[256];
		snprintf(tt, sizeof tt, "%s/ohb-stage-temp-XXXXXX", temp_base);
		ck_assert_ptr_nonnull(mkdtemp(tt));
		f->temp = strdup(tt);
	} else {
		f->temp = fsu_join(f->root, "temp");
	}
	ck_assert_int_eq(fsu_mkdir_p(f->sandbox, 0755, NULL), 0);
	ck_assert_int_eq(fsu_mkdir_p(f->src, 0755, NULL), 0);
	ck_assert_int_eq(fsu_mkdir_p(f->temp, 0700, NULL), 0);
	if (files_only) {
		f->mount.sandbox_prefix = strdup("/" FILES);
		f->mount.dir = fsu_join(f->sandbox, FILES);
		ck_assert_int_eq(fsu_mkdir_p(f->mount.dir, 0755, NULL), 0);
	} else {
		f->mount.sandbox_prefix = strdup("/");
		f->mount.dir = strdup(f->sandbox);
	}
	f->b.name = "com.example.stage";
	f->b.temp_dir = f->temp;
	f->b.mounts = &f->mount;
	f->b.n_mounts = 1;
}

static void
fx_init(fixture_t *f, bool files_only)
{
	fx_init_at(f, files_only, NULL);
}

static void
fx_free(fixture_t *f)
{
	fsu_rm_rf(f->root, NULL);
	fsu_rm_rf(f->temp, NULL);
	free(f->root);
	free(f->sandbox);
	free(f->src);
	free(f->temp);
	free(f->mount.sandbox_prefix);
	free(f->mount.dir);
}

static int __attribute__((format(printf, 1, 2)))
sh(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *cmd = NULL;
	ck_assert_int_ge(vasprintf(&cmd, fmt, ap), 0);
	va_end(ap);
	int st = system(cmd);
	free(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Names, kinds, modes, sizes, mtimes, link targets and contents of a tree. */
static char *
snapshot(const char *dir)
{
	char *cmd = fsu_printf("cd '%s' && { find . -printf '%%p|%%y|%%m|%%s|%%T@|%%l\\n' | LC_ALL=C sort; "
	    "find . -type f -exec md5sum {} + | LC_ALL=C sort; } 2>&1", dir);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	char *text = NULL;
	size_t len = 0;
	ck_assert_int_eq(fsu_read_fd(fileno(p), 64u << 20, &text, &len, NULL), 0);
	pclose(p);
	free(cmd);
	return text;
}

static bool
exists(const char *root, const char *rel)
{
	char *p = fsu_join(root, rel);
	struct stat sb;
	bool ok = lstat(p, &sb) == 0;
	free(p);
	return ok;
}

static char *
slurp(const char *root, const char *rel)
{
	char *p = fsu_join(root, rel);
	char *text = NULL;
	size_t len = 0;
	int rc = fsu_read_file(p, 1u << 24, &text, &len, NULL);
	free(p);
	return rc == 0 ? text : NULL;
}

static void
stat_of(const char *root, const char *rel, struct stat *sb)
{
	char *p = fsu_join(root, rel);
	ck_assert_msg(lstat(p, sb) == 0, "missing %s", p);
	free(p);
}

static bool
stage_left(const fixture_t *f)
{
	return exists(f->temp, "restore/stage") || exists(f->temp, "restore/stage.commit");
}

typedef struct progress_log {
	int calls;
	uint64_t last_bytes;
	uint64_t last_files;
	bool cancel;
} progress_log_t;

static void
log_bytes(void *ctx, uint64_t bytes, uint64_t files)
{
	progress_log_t *l = ctx;
	l->calls++;
	l->last_bytes = bytes;
	l->last_files = files;
}

static bool
log_cancelled(void *ctx)
{
	return ((progress_log_t *)ctx)->cancel;
}

/* Opens the stage, adds the tar at root/<tar> (expect: its entry count as
 * manage.json records it, -1 for none), commits. Returns the first error. */
static int
restore_tar_mode(fixture_t *f, const char *tar, progress_log_t *log, bool exact, int64_t expect, ohb_error_t *err)
{
	stage_progress_t pr = { log, log_bytes, log_cancelled };
	stage_t *st = NULL;
	int rc = stage_open(&f->b, log ? &pr : NULL, &st, err);
	if (rc != 0)
		return rc;
	if (exact)
		stage_set_exact(st);
	char *path = fsu_join(f->root, tar);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	ck_assert_int_ge(fd, 0);
	rc = stage_add_tar(st, fd, tar, expect, err);
	close(fd);
	if (rc == 0 && !stage_cancelled(st))
		rc = stage_commit(st, err);
	stage_free(st);
	return rc;
}

static int
restore_tar(fixture_t *f, const char *tar, progress_log_t *log, ohb_error_t *err)
{
	return restore_tar_mode(f, tar, log, false, -1, err);
}

/* Puts an old file and an old directory into the sandbox, so that "unchanged"
 * means something. */
static void
seed_sandbox(fixture_t *f)
{
	ck_assert_int_eq(sh("mkdir -p '%s/" FILES "/keep' && echo old > '%s/" FILES "/keep/old.txt' && "
	    "touch -d @1500000000 '%s/" FILES "/keep/old.txt' '%s/" FILES "/keep'",
	    f->sandbox, f->sandbox, f->sandbox, f->sandbox), 0);
}

/* A hostile tar must be refused with 13500008 and change nothing. */
static void
assert_refused_expecting(fixture_t *f, const char *tar, int64_t expect, const char *needle)
{
	char *before = snapshot(f->sandbox);
	ohb_error_t err = { 0 };
	int rc = restore_tar_mode(f, tar, NULL, false, expect, &err);
	ck_assert_msg(rc == OHB_E_UNTAR, "%s: rc %d (%s)", tar, rc, err.message);
	ck_assert_int_eq(err.code, OHB_E_UNTAR);
	if (needle)
		ck_assert_msg(strstr(err.message, needle), "message \"%s\" lacks \"%s\"", err.message, needle);
	char *after = snapshot(f->sandbox);
	ck_assert_str_eq(before, after);
	ck_assert(!stage_left(f));
	free(before);
	free(after);
}

static void
assert_refused(fixture_t *f, const char *tar, const char *needle)
{
	assert_refused_expecting(f, tar, -1, needle);
}

/* ---- the path rule ---------------------------------------------------------------- */

START_TEST(path_rule_follows_reference)
{
	const char *good[] = { "a", "/data/x", "test../x", "a/..b", "..a", "a..", "a/b../c", "./a", "/", "a/.", "a/..." };
	const char *bad[] = { "..", "../", "../x", "a/../b", "a/..", "/..", "/../x", "a/../../x", "", NULL };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		ck_assert_msg(stage_path_is_safe(good[i]), "%s should be safe", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ck_assert_msg(!stage_path_is_safe(bad[i]), "%s should be refused", bad[i] ? bad[i] : "NULL");
	char *long_name = malloc(4098);
	memset(long_name, 'a', 4097);
	long_name[4097] = '\0';
	ck_assert(!stage_path_is_safe(long_name));
	long_name[4096] = '\0';
	ck_assert(stage_path_is_safe(long_name));
	free(long_name);
}
END_TEST

/* ---- a normal restore ------------------------------------------------------------- */

START_TEST(round_trip_restores_bytes_modes_mtimes_and_empty_dirs)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	char long_name[151];
	memset(long_name, 'L', 150);
	long_name[150] = '\0';
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES "/sub/deeper " FILES "/empty && "
	    "printf 'hello\\n' > " FILES "/a.txt && chmod 0640 " FILES "/a.txt && "
	    "head -c 700000 /dev/urandom > " FILES "/sub/big.bin && chmod 0600 " FILES "/sub/big.bin && "
	    "echo deep > " FILES "/sub/deeper/d.txt && "
	    "echo long > " FILES "/sub/%s && "
	    "echo utf > '" FILES "/h\xc3\xa9llo\xe2\x82\xac.txt' && "
	    "echo suid > " FILES "/suid && chmod 4755 " FILES "/suid && "
	    "mkdir -p '" FILES "/test..' " FILES "/a && echo trick > '" FILES "/test../x' && echo b > " FILES "/a/..b && "
	    "chmod 0750 " FILES "/empty && chmod 0711 " FILES "/sub && "
	    "find data -exec touch -h -d @1600000000 {} + && touch -d @1600001234 " FILES "/a.txt " FILES "/sub && "
	    "bsdtar -cf ../full.tar data", f.src, long_name), 0);

	progress_log_t log = { 0 };
	ohb_error_t err = { 0 };
	stage_progress_t pr = { &log, log_bytes, log_cancelled };
	stage_t *st = NULL;
	ck_assert_int_eq(stage_open(&f.b, &pr, &st, &err), 0);
	char *tar = fsu_join(f.root, "full.tar");
	int fd = open(tar, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_msg(stage_add_tar(st, fd, "full.tar", -1, &err) == 0, "%s", err.message);
	close(fd);
	ck_assert_uint_eq(stage_files(st), 8);
	ck_assert_uint_eq(stage_skipped(st), 0);
	ck_assert_uint_ge(stage_bytes(st), 700000);
	ck_assert_int_ge(log.calls, 3);   /* at least every 256 KiB */
	ck_assert_uint_eq(log.last_files, 8);
	struct stat tsb;
	ck_assert_int_eq(stat(tar, &tsb), 0);
	ck_assert_uint_eq(log.last_bytes, (uint64_t)tsb.st_size);
	/* nothing reaches the sandbox before the commit */
	ck_assert(!exists(f.sandbox, FILES "/a.txt"));
	ck_assert_msg(stage_commit(st, &err) == 0, "%s", err.message);
	stage_free(st);
	free(tar);

	/* contents: the restored files tree equals the source (the seed stays too) */
	ck_assert_int_eq(sh("diff -r '%s/" FILES "/sub' '%s/" FILES "/sub'", f.src, f.sandbox), 0);
	char *a = slurp(f.sandbox, FILES "/a.txt");
	ck_assert_str_eq(a, "hello\n");
	free(a);
	char *u = slurp(f.sandbox, FILES "/h\xc3\xa9llo\xe2\x82\xac.txt");
	ck_assert_str_eq(u, "utf\n");
	free(u);
	char *longrel = fsu_printf(FILES "/sub/%s", long_name);
	char *l = slurp(f.sandbox, longrel);
	ck_assert_str_eq(l, "long\n");
	free(l);
	free(longrel);
	ck_assert(exists(f.sandbox, FILES "/keep/old.txt"));
	char *t = slurp(f.sandbox, FILES "/test../x");   /* REFERENCE.md: a valid name */
	ck_assert_str_eq(t, "trick\n");
	free(t);
	ck_assert(exists(f.sandbox, FILES "/a/..b"));

	struct stat sb;
	stat_of(f.sandbox, FILES "/a.txt", &sb);
	ck_assert_int_eq(sb.st_mode & 07777, 0640);
	ck_assert_int_eq(sb.st_mtime, 1600001234);
	stat_of(f.sandbox, FILES "/sub/big.bin", &sb);
	ck_assert_int_eq(sb.st_mode & 07777, 0600);
	ck_assert_int_eq(sb.st_size, 700000);
	ck_assert_int_eq(sb.st_mtime, 1600000000);
	stat_of(f.sandbox, FILES "/suid", &sb);
	ck_assert_int_eq(sb.st_mode & 07777, 0755);   /* setuid stripped */
	stat_of(f.sandbox, FILES "/empty", &sb);
	ck_assert(S_ISDIR(sb.st_mode));
	ck_assert_int_eq(sb.st_mode & 07777, 0750);
	ck_assert_int_eq(sb.st_mtime, 1600000000);
	stat_of(f.sandbox, FILES "/sub", &sb);
	ck_assert_int_eq(sb.st_mode & 07777, 0711);
	ck_assert_int_eq(sb.st_mtime, 1600001234);   /* set after its files moved in */
	stat_of(f.sandbox, FILES, &sb);
	ck_assert_int_eq(sb.st_mtime, 1600000000);
	ck_assert(!stage_left(&f));
	fx_free(&f);
}
END_TEST

START_TEST(absolute_names_and_files_only_mount)
{
	fixture_t f;
	fx_init(&f, true);
	/* names "/data/storage/el2/base/files/x.txt"; "/", "/data", ... are above the mount */
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES "/d && echo abs > " FILES "/d/x.txt && "
	    "bsdtar -P -cf ../abs.tar -s ',^,/,' data", f.src), 0);
	ohb_error_t err = { 0 };
	ck_assert_msg(restore_tar(&f, "abs.tar", NULL, &err) == 0, "%s", err.message);
	char *x = slurp(f.mount.dir, "d/x.txt");
	ck_assert_str_eq(x, "abs\n");
	free(x);
	fx_free(&f);
}
END_TEST

START_TEST(later_entry_for_a_path_wins)
{
	fixture_t f;
	fx_init(&f, false);
	ck_assert_int_eq(sh("cd '%s' && mkdir -p one/" FILES " two/" FILES " && echo first > one/" FILES "/x && "
	    "echo second > two/" FILES "/x && echo f > one/" FILES "/y && mkdir two/" FILES "/y && "
	    "echo inside > two/" FILES "/y/z && "
	    "bsdtar -cf ../one.tar -C one data && bsdtar -cf ../two.tar -C two data", f.src), 0);
	ohb_error_t err = { 0 };
	stage_t *st = NULL;
	ck_assert_int_eq(stage_open(&f.b, NULL, &st, &err), 0);
	const char *tars[] = { "one.tar", "two.tar" };
	for (int i = 0; i < 2; i++) {
		char *p = fsu_join(f.root, tars[i]);
		int fd = open(p, O_RDONLY);
		ck_assert_msg(stage_add_tar(st, fd, tars[i], -1, &err) == 0, "%s", err.message);
		close(fd);
		free(p);
	}
	ck_assert_msg(stage_commit(st, &err) == 0, "%s", err.message);
	stage_free(st);
	char *x = slurp(f.sandbox, FILES "/x");
	ck_assert_str_eq(x, "second\n");
	free(x);
	char *z = slurp(f.sandbox, FILES "/y/z");
	ck_assert_str_eq(z, "inside\n");
	free(z);
	fx_free(&f);
}
END_TEST

/* ---- hostile tars ------------------------------------------------------------------ */

START_TEST(dotdot_entries_are_refused)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	ck_assert_int_eq(sh("cd '%s' && echo evil > f && "
	    "bsdtar -P -cf ../up.tar -s ',^f$,../../f,' f && "
	    "bsdtar -P -cf ../mid.tar -s ',^f$,a/../../x,' f && "
	    "bsdtar -P -cf ../end.tar -s ',^f$," FILES "/..,' f && "
	    "bsdtar -P -cf ../absup.tar -s ',^f$,/../x,' f", f.src), 0);
	assert_refused(&f, "up.tar", "unsafe");
	assert_refused(&f, "mid.tar", "unsafe");
	assert_refused(&f, "end.tar", "unsafe");
	assert_refused(&f, "absup.tar", "unsafe");
	ck_assert(!exists(f.root, "../f"));
	ck_assert(!exists(f.root, "x"));
	fx_free(&f);
}
END_TEST

START_TEST(paths_outside_every_mount_are_refused)
{
	fixture_t f;
	fx_init(&f, true);
	seed_sandbox(&f);
	ck_assert_int_eq(sh("cd '%s' && mkdir -p data/storage/el2/base/other && echo x > data/storage/el2/base/other/x && "
	    "bsdtar -cf ../rel.tar data && echo pw > passwd && bsdtar -P -cf ../abs.tar -s ',^,/etc/,' passwd",
	    f.src), 0);
	assert_refused(&f, "rel.tar", "outside every mount");
	assert_refused(&f, "abs.tar", "outside every mount");
	fx_free(&f);
}
END_TEST

START_TEST(symlink_and_hardlink_entries_are_ignored)
{
	fixture_t f;
	fx_init(&f, false);
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES " && echo real > " FILES "/f && "
	    "ln -s /tmp/outside " FILES "/lnk && ln " FILES "/f " FILES "/hard && mkfifo " FILES "/fifo && "
	    "bsdtar -cf ../links.tar data", f.src), 0);
	ohb_error_t err = { 0 };
	stage_t *st = NULL;
	ck_assert_int_eq(stage_open(&f.b, NULL, &st, &err), 0);
	char *p = fsu_join(f.root, "links.tar");
	int fd = open(p, O_RDONLY);
	ck_assert_msg(stage_add_tar(st, fd, "links.tar", -1, &err) == 0, "%s", err.message);
	close(fd);
	free(p);
	ck_assert_uint_eq(stage_skipped(st), 3);   /* symlink, hardlink, fifo */
	ck_assert_uint_eq(stage_files(st), 1);
	ck_assert_msg(stage_commit(st, &err) == 0, "%s", err.message);
	stage_free(st);
	/* whichever of f and hard came first carries the data; the other is the link entry */
	ck_assert(exists(f.sandbox, FILES "/f") != exists(f.sandbox, FILES "/hard"));
	ck_assert(!exists(f.sandbox, FILES "/lnk"));
	ck_assert(!exists(f.sandbox, FILES "/fifo"));
	fx_free(&f);
}
END_TEST

START_TEST(symlink_planted_in_sandbox_is_never_followed)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	char *outside = fsu_join(f.root, "outside");
	ck_assert_int_eq(fsu_mkdir_p(outside, 0755, NULL), 0);
	ck_assert_int_eq(sh("ln -s '%s' '%s/" FILES "/evil' && cd '%s' && mkdir -p " FILES "/evil/deep && "
	    "echo pwned > " FILES "/evil/x.txt && echo ok > " FILES "/ok.txt && bsdtar -cf ../through.tar data && "
	    "bsdtar -cf ../dir.tar " FILES "/evil/deep", outside, f.sandbox, f.src), 0);
	assert_refused(&f, "through.tar", FILES "/evil is a symbolic link in the sandbox");
	assert_refused(&f, "dir.tar", "symbolic link");
	ck_assert_int_eq(sh("test -z \"$(ls -A '%s')\"", outside), 0);   /* nothing written outside */
	fx_free(&f);
	free(outside);
}
END_TEST

/* A symlink standing where a file is restored is replaced, not written through. */
START_TEST(symlink_at_a_file_target_is_replaced)
{
	fixture_t f;
	fx_init(&f, false);
	ck_assert_int_eq(sh("cd '%s' && echo precious > target.txt && mkdir -p '%s/" FILES "' && "
	    "ln -s '%s/target.txt' '%s/" FILES "/lnk' && cd '%s' && mkdir -p " FILES " && echo new > " FILES "/lnk && "
	    "bsdtar -cf ../lnk.tar data", f.root, f.sandbox, f.root, f.sandbox, f.src), 0);
	ohb_error_t err = { 0 };
	ck_assert_msg(restore_tar(&f, "lnk.tar", NULL, &err) == 0, "%s", err.message);
	struct stat sb;
	stat_of(f.sandbox, FILES "/lnk", &sb);
	ck_assert(S_ISREG(sb.st_mode));
	char *t = slurp(f.root, "target.txt");
	ck_assert_str_eq(t, "precious\n");
	free(t);
	fx_free(&f);
}
END_TEST

/* GNU tar's ././@LongLink names, and its absolute names kept by -P. */
START_TEST(gnu_tar_long_and_absolute_names)
{
	fixture_t f;
	fx_init(&f, false);
	char name[201];
	memset(name, 'g', 200);
	name[200] = '\0';
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES " && echo gnu > " FILES "/%s && "
	    "tar --format=gnu -cf ../gnu.tar data && tar --format=gnu -P --transform 's,^,/,' -cf ../gabs.tar data",
	    f.src, name), 0);
	ohb_error_t err = { 0 };
	char *rel = fsu_printf(FILES "/%s", name);
	ck_assert_msg(restore_tar(&f, "gnu.tar", NULL, &err) == 0, "%s", err.message);
	char *t = slurp(f.sandbox, rel);
	ck_assert_str_eq(t, "gnu\n");
	free(t);
	ck_assert_int_eq(sh("rm -r '%s/data'", f.sandbox), 0);
	ck_assert_msg(restore_tar(&f, "gabs.tar", NULL, &err) == 0, "%s", err.message);
	t = slurp(f.sandbox, rel);
	ck_assert_str_eq(t, "gnu\n");
	free(t);
	free(rel);
	fx_free(&f);
}
END_TEST

START_TEST(wrong_kind_in_sandbox_is_refused)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	/* the sandbox has a directory "keep" where the tar has a file, and a file where it has a directory */
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES " && echo file > " FILES "/keep && bsdtar -cf ../file.tar data && "
	    "rm -r data && mkdir -p " FILES "/keep/old.txt && bsdtar -cf ../dir.tar data && "
	    "rm -r data && mkdir -p " FILES "/keep/old.txt/below && echo x > " FILES "/keep/old.txt/below/y && "
	    "bsdtar -cf ../below.tar " FILES "/keep/old.txt/below/y", f.src), 0);
	assert_refused(&f, "file.tar", "is a directory in the sandbox");
	assert_refused(&f, "dir.tar", "not a directory");
	assert_refused(&f, "below.tar", "not a directory");
	fx_free(&f);
}
END_TEST

/* Makes root/kinds.tar, where "wasdir" is a file and "wasfile" a directory
 * (with a file in it), and a sandbox with the opposite kinds, a link where
 * "waslink" is a directory in the tar, and an unrelated file. */
static void
seed_kind_changes(fixture_t *f, const char *outside)
{
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES "/wasfile " FILES "/waslink && echo now a file > " FILES "/wasdir "
	    "&& echo inside > " FILES "/wasfile/in.txt && echo l > " FILES "/waslink/l.txt && bsdtar -cf ../kinds.tar data "
	    "&& mkdir -p '%s' && echo safe > '%s/victim' && cd '%s' && mkdir -p " FILES "/wasdir/inner && "
	    "echo k > " FILES "/wasdir/inner/k && echo f > " FILES "/wasfile && ln -s '%s' " FILES "/waslink && "
	    "echo stays > " FILES "/stays.txt",
	    f->src, outside, outside, f->sandbox, outside), 0);
}

static void
assert_kinds_replaced(fixture_t *f, const char *outside)
{
	char *t = slurp(f->sandbox, FILES "/wasdir");
	ck_assert_str_eq(t, "now a file\n");
	free(t);
	t = slurp(f->sandbox, FILES "/wasfile/in.txt");
	ck_assert_str_eq(t, "inside\n");
	free(t);
	struct stat sb;
	char *lp = fsu_join(f->sandbox, FILES "/waslink");
	ck_assert_int_eq(lstat(lp, &sb), 0);
	ck_assert(S_ISDIR(sb.st_mode));   /* the link was replaced, not followed */
	free(lp);
	t = slurp(f->sandbox, FILES "/waslink/l.txt");
	ck_assert_str_eq(t, "l\n");
	free(t);
	ck_assert(exists(outside, "victim"));
	ck_assert(!exists(outside, "l.txt"));
	ck_assert(exists(f->sandbox, FILES "/stays.txt"));
	ck_assert(!stage_left(f));
}

START_TEST(exact_restore_replaces_wrong_kinds)
{
	fixture_t f;
	fx_init(&f, false);
	char *outside = fsu_join(f.root, "outside");
	seed_kind_changes(&f, outside);
	/* An overlay restore refuses and writes nothing ... */
	char *before = snapshot(f.sandbox);
	ohb_error_t err = { 0 };
	ck_assert_int_eq(restore_tar_mode(&f, "kinds.tar", NULL, false, -1, &err), OHB_E_UNTAR);
	ck_assert(strstr(err.message, "refusing to replace") != NULL);
	char *after = snapshot(f.sandbox);
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	/* ... an exact one (a chain's step) replaces each wrong kind. */
	ck_assert_msg(restore_tar_mode(&f, "kinds.tar", NULL, true, -1, &err) == 0, "%s", err.message);
	assert_kinds_replaced(&f, outside);
	free(outside);
	fx_free(&f);
}
END_TEST

/* Two replaced targets whose names sort around each other's children: the
 * backup has a/ (with a/x.txt) and the file a-b; the sandbox has the file a
 * and the directory a-b/. "/a-b" sorts between "/a" and "/a/x.txt", so
 * validation must skip what lies below every replaced target, not only the
 * last one (it checked /a/x.txt against the old file /a and refused). */
START_TEST(exact_restore_replaces_targets_that_sort_apart)
{
	fixture_t f;
	fx_init(&f, false);
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES "/a && echo in > " FILES "/a/x.txt && echo f > " FILES "/a-b "
	    "&& bsdtar -cf ../sib.tar data && cd '%s' && mkdir -p " FILES "/a-b/inner && echo k > " FILES "/a-b/inner/k "
	    "&& echo old > " FILES "/a",
	    f.src, f.sandbox), 0);
	ohb_error_t err = { 0 };
	ck_assert_msg(restore_tar_mode(&f, "sib.tar", NULL, true, -1, &err) == 0, "%s", err.message);
	char *t = slurp(f.sandbox, FILES "/a/x.txt");
	ck_assert_str_eq(t, "in\n");
	free(t);
	t = slurp(f.sandbox, FILES "/a-b");
	ck_assert_str_eq(t, "f\n");
	free(t);
	ck_assert(!exists(f.sandbox, FILES "/a-b/inner"));
	fx_free(&f);
}
END_TEST

/* Restores tar (exact: with stage_set_exact) in a child that the test hook
 * kills after `moves` moves of the commit (exit 99, as a crash): the
 * journal, stage.commit, is left for a recovery to finish. */
static void
crash_restore(fixture_t *f, const char *tar, bool exact, int moves)
{
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char n[16];
		snprintf(n, sizeof n, "%d", moves);
		setenv("OHBACKUP_TEST_CRASH_AFTER_MOVES", n, 1);
		ohb_error_t err;
		restore_tar_mode(f, tar, NULL, exact, -1, &err);
		_exit(1);   /* the hook did not fire */
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 99);
	ck_assert(exists(f->temp, "restore/stage.commit"));
}

/* A crash after the first move: the recovery finishes the job from the
 * journal, and running the replacements again never removes new content. */
START_TEST(exact_restore_crash_is_rolled_forward)
{
	for (int after = 1; after <= 3; after++) {
		fixture_t f;
		fx_init(&f, false);
		char *outside = fsu_join(f.root, "outside");
		seed_kind_changes(&f, outside);
		crash_restore(&f, "kinds.tar", true, after);
		ohb_error_t err = { 0 };
		ck_assert_msg(stage_recover(&f.b, &err) == 0, "%s", err.message);
		assert_kinds_replaced(&f, outside);
		ck_assert_int_eq(stage_recover(&f.b, &err), 0);   /* nothing left to do */
		assert_kinds_replaced(&f, outside);
		free(outside);
		fx_free(&f);
	}
}
END_TEST

START_TEST(truncated_and_garbage_tars_are_refused)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES " && head -c 60000 /dev/urandom > " FILES "/a && "
	    "head -c 512 /dev/urandom > " FILES "/b && head -c 3000 /dev/urandom > " FILES "/c && "
	    "bsdtar --format ustar -cf ../ok.tar data && "
	    "head -c $(( $(stat -c %%s ../ok.tar) / 2 )) ../ok.tar > ../half.tar && "
	    "bsdtar --format ustar -cf ../one.tar " FILES "/b && head -c 1024 ../one.tar > ../cut.tar && "
	    "head -c 20000 /dev/urandom > ../garbage.tar && : > ../empty.tar", f.src), 0);
	assert_refused(&f, "half.tar", "half.tar");
	assert_refused(&f, "cut.tar", "end-of-archive");   /* cut exactly after an entry */
	assert_refused(&f, "garbage.tar", "garbage.tar");
	assert_refused(&f, "empty.tar", NULL);
	/* a header that fails its checksum where the next entry should begin (a
	 * writer that stopped copying a file that shrank, as OpenHarmony's can):
	 * libarchive answers ARCHIVE_RETRY, which is damage too, said as such */
	ck_assert_int_eq(sh("cd '%s' && for n in d e; do head -c 2000 /dev/urandom > " FILES "/$n; done && "
	    "bsdtar --format ustar -cf ../bad-sum.tar " FILES "/d " FILES "/e && "
	    "printf 9999999 | dd of=../bad-sum.tar bs=1 seek=$((5 * 512 + 148)) conv=notrunc 2>/dev/null", f.src), 0);
	assert_refused(&f, "bad-sum.tar", "bad-sum.tar is not a readable tar");
	fx_free(&f);
}
END_TEST

/* libarchive stops at the first zero block: a zeroed header, or a file of the
 * right size full of zeros, must not restore as a shorter tar. The padding
 * GNU tar and bsdtar add after the marker (to 10 KiB) is fine. */
START_TEST(zeroed_blocks_are_refused)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	/* two.tar: a's header at 0, its 60 000 bytes in blocks 1-118, c's header at block 119 */
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES " && head -c 60000 /dev/urandom > " FILES "/a && "
	    "head -c 3000 /dev/urandom > " FILES "/c && bsdtar --format ustar -cf ../two.tar " FILES "/a " FILES "/c && "
	    "cp ../two.tar ../first.tar && dd if=/dev/zero of=../first.tar bs=512 count=1 conv=notrunc 2>/dev/null && "
	    "cp ../two.tar ../mid.tar && dd if=/dev/zero of=../mid.tar bs=512 seek=119 count=1 conv=notrunc 2>/dev/null && "
	    "head -c 2097152 /dev/zero > ../zeros.tar && head -c 65536 /dev/zero > ../zeros64k.tar && "
	    "bsdtar -cf ../empty-ok.tar -T /dev/null", f.src), 0);
	assert_refused(&f, "first.tar", "after its end-of-archive marker");
	assert_refused(&f, "mid.tar", "after its end-of-archive marker");
	assert_refused(&f, "zeros.tar", "follow its end-of-archive marker");
	assert_refused(&f, "zeros64k.tar", "no entry");
	ohb_error_t err = { 0 };
	ck_assert_msg(restore_tar(&f, "two.tar", NULL, &err) == 0, "%s", err.message);     /* padded to 10 KiB */
	ck_assert_msg(restore_tar(&f, "empty-ok.tar", NULL, &err) == 0, "%s", err.message);   /* an empty tar */
	fx_free(&f);
}
END_TEST

/* What the end checks cannot see — a small tar that is zeros throughout, a
 * tar whose tail is zeros (what a crash can leave of a file written without
 * fsync) — the entry count manage.json records catches. */
START_TEST(recorded_entry_count_catches_a_short_tar)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	/* three.tar: headers at blocks 0, 5 and 10, 2000 bytes of data after each, padded to 10 KiB */
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES " && for n in a b c; do head -c 2000 /dev/urandom > " FILES
	    "/$n; done && bsdtar --format ustar -cf ../three.tar " FILES "/a " FILES "/b " FILES "/c && "
	    "cp ../three.tar ../tail.tar && dd if=/dev/zero of=../tail.tar bs=512 seek=10 count=10 conv=notrunc 2>/dev/null && "
	    "head -c 8192 /dev/zero > ../zeros8k.tar", f.src), 0);
	/* without a count (sets written before tarEntries) both read as whole tars */
	ohb_error_t err = { 0 };
	ck_assert_msg(restore_tar(&f, "tail.tar", NULL, &err) == 0, "%s", err.message);
	ck_assert_msg(restore_tar(&f, "zeros8k.tar", NULL, &err) == 0, "%s", err.message);
	assert_refused_expecting(&f, "tail.tar", 3, "holds 2 entries where manage.json records 3");
	assert_refused_expecting(&f, "zeros8k.tar", 3, "holds 0 entries where manage.json records 3");
	assert_refused_expecting(&f, "three.tar", 4, "holds 3 entries where manage.json records 4");
	ck_assert_msg(restore_tar_mode(&f, "three.tar", NULL, false, 3, &err) == 0, "%s", err.message);
	fx_free(&f);
}
END_TEST

START_TEST(too_long_components_are_refused)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	char name[301];
	memset(name, 'n', 300);
	name[300] = '\0';
	ck_assert_int_eq(sh("cd '%s' && echo x > f && bsdtar -P -cf ../longc.tar -s ',^f$," FILES "/%s,' f",
	    f.src, name), 0);
	assert_refused(&f, "longc.tar", "longer than");
	fx_free(&f);
}
END_TEST

/* ---- big files and deletions ---------------------------------------------------------- */

START_TEST(big_file_size_is_checked)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	char *before = snapshot(f.sandbox);
	ck_assert_int_eq(sh("head -c 100 /dev/urandom > '%s/big'", f.root), 0);
	char *big = fsu_join(f.root, "big");
	ohb_error_t err = { 0 };
	stage_t *st = NULL;
	ck_assert_int_eq(stage_open(&f.b, NULL, &st, &err), 0);
	int fd = open(big, O_RDONLY);
	ck_assert_int_eq(stage_add_file(st, fd, "/" FILES "/big", 0644, 1600000000, 0, 99, &err), OHB_E_UNTAR);
	ck_assert_ptr_nonnull(strstr(err.message, "100 bytes"));
	close(fd);
	stage_free(st);
	char *after = snapshot(f.sandbox);
	ck_assert_str_eq(before, after);
	ck_assert(!stage_left(&f));

	ck_assert_int_eq(stage_open(&f.b, NULL, &st, &err), 0);
	fd = open(big, O_RDONLY);
	ck_assert_int_eq(stage_add_file(st, fd, "/" FILES "/big", 04640, 1600000005, 250, 100, &err), 0);
	close(fd);
	ck_assert_int_eq(stage_add_file(st, -1, "/" FILES "/../../x", 0644, 0, 0, 0, &err), OHB_E_UNTAR);
	ck_assert_msg(stage_commit(st, &err) == 0, "%s", err.message);
	ck_assert_uint_eq(stage_bytes(st), 100);
	stage_free(st);
	ck_assert_int_eq(sh("cmp '%s' '%s/" FILES "/big'", big, f.sandbox), 0);
	struct stat sb;
	stat_of(f.sandbox, FILES "/big", &sb);
	ck_assert_int_eq(sb.st_mode & 07777, 0640);
	ck_assert_int_eq(sb.st_mtim.tv_sec, 1600000005);
	ck_assert_int_eq(sb.st_mtim.tv_nsec, 250);
	free(before);
	free(after);
	free(big);
	fx_free(&f);
}
END_TEST

/* A received big file is moved into the stage only when nothing else holds it
 * open (the client could otherwise write into the bundle's data later); held,
 * it is copied and stays where it was. */
START_TEST(received_big_file_is_moved_only_when_no_one_holds_it)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	ck_assert_int_eq(sh("head -c 300 /dev/urandom > '%s/held' && head -c 200 /dev/urandom > '%s/free' && "
	                    "cp '%s/held' '%s/held.orig' && cp '%s/free' '%s/free.orig'",
	                     f.root, f.root, f.root, f.root, f.root, f.root), 0);
	char *held = fsu_join(f.root, "held"), *freed = fsu_join(f.root, "free");
	ohb_error_t err = { 0 };
	stage_t *st = NULL;
	ck_assert_int_eq(stage_open(&f.b, NULL, &st, &err), 0);

	int client = open(held, O_WRONLY);   /* the client has not closed its fd */
	ck_assert_int_ge(client, 0);
	int fd = open(held, O_RDONLY);
	ck_assert_int_eq(stage_take_file(st, fd, held, "/" FILES "/held", 0600, 1600000001, 7, 300, &err), 0);
	close(fd);
	close(client);
	ck_assert_int_eq(access(held, F_OK), 0);   /* copied, not moved */

	fd = open(freed, O_RDONLY);
	ck_assert_int_eq(stage_take_file(st, fd, freed, "/" FILES "/free", 04751, 1600000002, 9, 200, &err), 0);
	close(fd);
	ck_assert_int_ne(access(freed, F_OK), 0);   /* moved */

	ck_assert_msg(stage_commit(st, &err) == 0, "%s", err.message);
	ck_assert_uint_eq(stage_bytes(st), 500);
	stage_free(st);
	ck_assert_int_eq(sh("cmp '%s/held.orig' '%s/" FILES "/held' && cmp '%s/free.orig' '%s/" FILES "/free'",
	                     f.root, f.sandbox, f.root, f.sandbox), 0);
	struct stat sb;
	stat_of(f.sandbox, FILES "/free", &sb);
	ck_assert_int_eq(sb.st_mode & 07777, 0751);   /* setuid never restored */
	ck_assert_int_eq(sb.st_mtim.tv_sec, 1600000002);
	ck_assert_int_eq(sb.st_mtim.tv_nsec, 9);
	stat_of(f.sandbox, FILES "/held", &sb);
	ck_assert_int_eq(sb.st_mtim.tv_sec, 1600000001);
	ck_assert(!stage_left(&f));
	free(held);
	free(freed);
	fx_free(&f);
}
END_TEST

START_TEST(deletions_remove_files_and_trees_without_following_links)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	char *outside = fsu_join(f.root, "outside");
	ck_assert_int_eq(sh("mkdir -p '%s' && echo safe > '%s/victim' && cd '%s/" FILES "' && echo x > gone.txt && "
	    "mkdir -p tree/a && echo y > tree/a/y && ln -s '%s' tree/link && ln -s '%s' lnkdir && "
	    "echo new > '%s/n' && echo old > again.txt", outside, outside, f.sandbox, outside, outside, f.root), 0);
	ohb_error_t err = { 0 };
	stage_t *st = NULL;
	ck_assert_int_eq(stage_open(&f.b, NULL, &st, &err), 0);
	ck_assert_int_eq(stage_add_deletion(st, "/" FILES "/gone.txt", &err), 0);
	ck_assert_int_eq(stage_add_deletion(st, "/" FILES "/tree", &err), 0);
	ck_assert_int_eq(stage_add_deletion(st, "/" FILES "/missing/x", &err), 0);
	ck_assert_int_eq(stage_add_deletion(st, "/" FILES "/lnkdir/victim", &err), 0);   /* through a link: skipped */
	ck_assert_int_eq(stage_add_deletion(st, "/" FILES "/again.txt", &err), 0);       /* restored too: kept */
	ck_assert_int_eq(stage_add_deletion(st, "/" FILES "/../x", &err), OHB_E_UNTAR);
	char *n = fsu_join(f.root, "n");
	int fd = open(n, O_RDONLY);
	ck_assert_int_eq(stage_add_file(st, fd, "/" FILES "/again.txt", 0644, 1600000000, 0, 4, &err), 0);
	close(fd);
	free(n);
	ck_assert_msg(stage_commit(st, &err) == 0, "%s", err.message);
	stage_free(st);
	ck_assert(!exists(f.sandbox, FILES "/gone.txt"));
	ck_assert(!exists(f.sandbox, FILES "/tree"));
	ck_assert(exists(f.sandbox, FILES "/keep/old.txt"));
	ck_assert(exists(outside, "victim"));
	char *a = slurp(f.sandbox, FILES "/again.txt");
	ck_assert_str_eq(a, "new\n");
	free(a);
	free(outside);
	fx_free(&f);
}
END_TEST

/* ---- cancel and crashes ----------------------------------------------------------------- */

START_TEST(cancel_stops_before_anything_is_applied)
{
	fixture_t f;
	fx_init(&f, false);
	seed_sandbox(&f);
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES " && echo x > " FILES "/x && bsdtar -cf ../x.tar data", f.src), 0);
	char *before = snapshot(f.sandbox);
	progress_log_t log = { .cancel = true };
	ohb_error_t err = { 0 };
	ck_assert_int_eq(restore_tar(&f, "x.tar", &log, &err), 0);
	char *after = snapshot(f.sandbox);
	ck_assert_str_eq(before, after);
	ck_assert(!stage_left(&f));
	free(before);
	free(after);
	fx_free(&f);
}
END_TEST

/* Makes root/new.tar: three files that replace old versions in the sandbox. */
static void
seed_new_and_old(fixture_t *f)
{
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES "/d && for n in 1 2 3; do echo new$n > " FILES "/d/f$n; "
	    "done && bsdtar -cf ../new.tar data && mkdir -p '%s/" FILES "/d' && for n in 1 2 3; do "
	    "echo old$n > '%s/" FILES "/d/f'$n; done", f->src, f->sandbox, f->sandbox), 0);
}

START_TEST(crash_mid_apply_is_rolled_forward)
{
	fixture_t f;
	fx_init(&f, false);
	seed_new_and_old(&f);
	crash_restore(&f, "new.tar", false, 1);
	int news = 0;
	for (int n = 1; n <= 3; n++) {
		char rel[64];
		snprintf(rel, sizeof rel, FILES "/d/f%d", n);
		char *t = slurp(f.sandbox, rel);
		news += t && strncmp(t, "new", 3) == 0;
		free(t);
	}
	ck_assert_int_eq(news, 1);   /* half applied, as a crash leaves it */

	ohb_error_t err = { 0 };
	ck_assert_msg(stage_recover(&f.b, &err) == 0, "%s", err.message);
	for (int n = 1; n <= 3; n++) {
		char rel[64], want[16];
		snprintf(rel, sizeof rel, FILES "/d/f%d", n);
		snprintf(want, sizeof want, "new%d\n", n);
		char *t = slurp(f.sandbox, rel);
		ck_assert_str_eq(t, want);
		free(t);
	}
	ck_assert(!stage_left(&f));
	/* a second recovery has nothing to do */
	ck_assert_int_eq(stage_recover(&f.b, &err), 0);
	fx_free(&f);
}
END_TEST

START_TEST(stage_without_journal_is_discarded)
{
	fixture_t f;
	fx_init(&f, false);
	seed_new_and_old(&f);
	char *before = snapshot(f.sandbox);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* fill a stage and die without committing or freeing it */
		ohb_error_t err;
		stage_t *st = NULL;
		if (stage_open(&f.b, NULL, &st, &err) != 0)
			_exit(2);
		char *p = fsu_join(f.root, "new.tar");
		int fd = open(p, O_RDONLY);
		_exit(stage_add_tar(st, fd, "new.tar", -1, &err) == 0 ? 0 : 3);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert(exists(f.temp, "restore/stage/" FILES "/d/f1"));
	ck_assert(!exists(f.temp, "restore/stage.commit"));
	ck_assert_int_eq(sh("mkdir -p '%s/restore/incoming' && echo x > '%s/restore/incoming/part.0.tar'", f.temp, f.temp), 0);
	ohb_error_t err = { 0 };
	ck_assert_msg(stage_recover(&f.b, &err) == 0, "%s", err.message);
	ck_assert(!stage_left(&f));
	ck_assert(!exists(f.temp, "restore/incoming"));   /* a dead session's files go too */
	char *after = snapshot(f.sandbox);
	ck_assert_str_eq(before, after);
	free(before);
	free(after);
	fx_free(&f);
}
END_TEST

START_TEST(open_finishes_an_unfinished_commit_first)
{
	fixture_t f;
	fx_init(&f, false);
	seed_new_and_old(&f);
	crash_restore(&f, "new.tar", false, 2);
	ohb_error_t err = { 0 };
	stage_t *st = NULL;
	ck_assert_msg(stage_open(&f.b, NULL, &st, &err) == 0, "%s", err.message);
	stage_free(st);
	char *t = slurp(f.sandbox, FILES "/d/f3");
	ck_assert_str_eq(t, "new3\n");
	free(t);
	ck_assert(!stage_left(&f));
	fx_free(&f);
}
END_TEST

/* When the stage and the sandbox are on different file systems, files are
 * copied into place (EXDEV). /dev/shm is usually tmpfs; skipped otherwise. */
START_TEST(restore_across_file_systems)
{
	struct stat a, b;
	if (stat("/dev/shm", &a) != 0 || stat("/tmp", &b) != 0 || a.st_dev == b.st_dev)
		return;
	fixture_t f;
	fx_init_at(&f, false, "/dev/shm");
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES " && head -c 300000 /dev/urandom > " FILES "/x && "
	    "chmod 0604 " FILES "/x && touch -d @1600000000 " FILES "/x && bsdtar -cf ../x.tar data", f.src), 0);
	ohb_error_t err = { 0 };
	ck_assert_msg(restore_tar(&f, "x.tar", NULL, &err) == 0, "%s", err.message);
	ck_assert_int_eq(sh("cmp '%s/" FILES "/x' '%s/" FILES "/x' && test -z \"$(ls -A '%s/" FILES "' | grep ohbtmp)\"",
	    f.src, f.sandbox, f.sandbox), 0);
	struct stat sb;
	stat_of(f.sandbox, FILES "/x", &sb);
	ck_assert_int_eq(sb.st_mode & 07777, 0604);
	ck_assert_int_eq(sb.st_mtime, 1600000000);
	ck_assert(!stage_left(&f));
	fx_free(&f);
}
END_TEST

/* ---- unpacking on several cores, moving whole directories ------------------------------ */

/* Writer threads create and write the files (unpacker.c); whatever conflicts
 * with something staged before is staged by the reader after them. A tar that
 * holds a path twice, a file where a later entry needs a directory and a
 * directory that a later file replaces must still restore the later entry,
 * among hundreds of ordinary files. */
START_TEST(parallel_unpack_keeps_the_later_entry)
{
	fixture_t f;
	fx_init(&f, false);
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES "/many " FILES "/r && "
	    "for i in $(seq 1 300); do echo \"many $i\" > " FILES "/many/f$i; done && "
	    "echo first > " FILES "/dup && echo p-file > " FILES "/p && echo in-r > " FILES "/r/s && "
	    "bsdtar --format ustar -cf ../t.tar data && mkdir -p ../src2/" FILES "/p && cd ../src2 && "
	    "echo second > " FILES "/dup && echo q-under-p > " FILES "/p/q && echo r-file > " FILES "/r && "
	    "bsdtar --format ustar -rf ../t.tar data", f.src), 0);
	ohb_error_t err = { 0 };
	ck_assert_msg(restore_tar(&f, "t.tar", NULL, &err) == 0, "%s", err.message);
	char *t = slurp(f.sandbox, FILES "/dup");
	ck_assert_str_eq(t, "second\n");
	free(t);
	t = slurp(f.sandbox, FILES "/p/q");
	ck_assert_str_eq(t, "q-under-p\n");
	free(t);
	t = slurp(f.sandbox, FILES "/r");
	ck_assert_str_eq(t, "r-file\n");
	free(t);
	struct stat sb;
	stat_of(f.sandbox, FILES "/p", &sb);
	ck_assert(S_ISDIR(sb.st_mode));
	for (int i = 1; i <= 300; i += 37) {
		char rel[128], want[32];
		snprintf(rel, sizeof rel, FILES "/many/f%d", i);
		snprintf(want, sizeof want, "many %d\n", i);
		t = slurp(f.sandbox, rel);
		ck_assert_str_eq(t, want);
		free(t);
	}
	ck_assert_int_eq(sh("test $(ls '%s/" FILES "/many' | wc -l) = 300", f.sandbox), 0);
	ck_assert(!stage_left(&f));
	fx_free(&f);
}
END_TEST

/* Onto an empty bundle the commit moves whole directories from the stage
 * (applier.c); the result is the same tree, modes and mtimes included. */
START_TEST(restore_onto_an_empty_bundle_recreates_the_tree)
{
	fixture_t f;
	fx_init(&f, true);
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES "/a/b/c " FILES "/e && echo 1 > " FILES "/a/one && "
	    "echo 2 > " FILES "/a/b/two && echo 3 > " FILES "/a/b/c/three && chmod 640 " FILES "/a/b/two && "
	    "chmod 750 " FILES "/a/b && find data -exec touch -d @1500000000 {} + && "
	    "bsdtar --format ustar -cf ../t.tar data", f.src), 0);
	ohb_error_t err = { 0 };
	ck_assert_msg(restore_tar(&f, "t.tar", NULL, &err) == 0, "%s", err.message);
	char *src = fsu_join(f.src, FILES);
	char *want = snapshot(src);
	char *got = snapshot(f.mount.dir);
	ck_assert_str_eq(got, want);
	ck_assert(!stage_left(&f));
	free(src);
	free(want);
	free(got);
	fx_free(&f);
}
END_TEST

/* A directory that holds another mount's directory is never moved whole: the
 * files below that mount go to the mount's own directory. */
START_TEST(a_directory_holding_a_mount_is_not_moved_whole)
{
	fixture_t f;
	fx_init(&f, false);
	/* longest prefix first, as the registry keeps them */
	reg_mount_t mounts[2] = { { "/" FILES, NULL }, f.mount };
	mounts[0].dir = fsu_join(f.root, "elsewhere");
	ck_assert_int_eq(fsu_mkdir_p(mounts[0].dir, 0755, NULL), 0);
	f.b.mounts = mounts;
	f.b.n_mounts = 2;
	ck_assert_int_eq(sh("cd '%s' && mkdir -p " FILES " data/other && echo x > " FILES "/x && "
	    "echo y > data/other/y && bsdtar --format ustar -cf ../t.tar data", f.src), 0);
	ohb_error_t err = { 0 };
	ck_assert_msg(restore_tar(&f, "t.tar", NULL, &err) == 0, "%s", err.message);
	char *t = slurp(mounts[0].dir, "x");
	ck_assert_str_eq(t, "x\n");
	free(t);
	t = slurp(f.sandbox, "data/other/y");
	ck_assert_str_eq(t, "y\n");
	free(t);
	ck_assert(!exists(f.sandbox, FILES "/x"));
	ck_assert(!stage_left(&f));
	f.b.mounts = &f.mount;
	f.b.n_mounts = 1;
	free(mounts[0].dir);
	fx_free(&f);
}
END_TEST

Suite *stage_suite(void)
{
	Suite *s = suite_create("stage");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, path_rule_follows_reference);
	tcase_add_test(tc, round_trip_restores_bytes_modes_mtimes_and_empty_dirs);
	tcase_add_test(tc, absolute_names_and_files_only_mount);
	tcase_add_test(tc, later_entry_for_a_path_wins);
	tcase_add_test(tc, dotdot_entries_are_refused);
	tcase_add_test(tc, paths_outside_every_mount_are_refused);
	tcase_add_test(tc, symlink_and_hardlink_entries_are_ignored);
	tcase_add_test(tc, symlink_planted_in_sandbox_is_never_followed);
	tcase_add_test(tc, symlink_at_a_file_target_is_replaced);
	tcase_add_test(tc, gnu_tar_long_and_absolute_names);
	tcase_add_test(tc, wrong_kind_in_sandbox_is_refused);
	tcase_add_test(tc, truncated_and_garbage_tars_are_refused);
	tcase_add_test(tc, zeroed_blocks_are_refused);
	tcase_add_test(tc, recorded_entry_count_catches_a_short_tar);
	tcase_add_test(tc, too_long_components_are_refused);
	tcase_add_test(tc, big_file_size_is_checked);
	tcase_add_test(tc, received_big_file_is_moved_only_when_no_one_holds_it);
	tcase_add_test(tc, deletions_remove_files_and_trees_without_following_links);
	tcase_add_test(tc, cancel_stops_before_anything_is_applied);
	tcase_add_test(tc, crash_mid_apply_is_rolled_forward);
	tcase_add_test(tc, exact_restore_replaces_wrong_kinds);
	tcase_add_test(tc, exact_restore_replaces_targets_that_sort_apart);
	tcase_add_test(tc, exact_restore_crash_is_rolled_forward);
	tcase_add_test(tc, stage_without_journal_is_discarded);
	tcase_add_test(tc, open_finishes_an_unfinished_commit_first);
	tcase_add_test(tc, restore_across_file_systems);
	tcase_add_test(tc, parallel_unpack_keeps_the_later_entry);
	tcase_add_test(tc, restore_onto_an_empty_bundle_recreates_the_tree);
	tcase_add_test(tc, a_directory_holding_a_mount_is_not_moved_whole);
	suite_add_tcase(s, tc);
	return s;
}
