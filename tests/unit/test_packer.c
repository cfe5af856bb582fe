/*
 * test_packer — from a scan list to the files a backup sends (packer.h):
 * tars that libarchive, GNU tar and bsdtar all read, long and UTF-8 names
 * intact, big files handed over raw under their hash names, the splits at
 * 6000 entries and 100 MiB, files that vanish or turn into symlinks between
 * scan and pack, cancel, and a sink that refuses a file.
 * Each test works in its own temporary directory with a hand-filled bundle.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "fsutil.h"
#include "packer.h"
#include "skip.h"

#define FILES "data/storage/el2/base/files"
#define MAX_EMIT 64

typedef struct fixture {
	char root[64];
	char sandbox[128];
	char tmp[128]; /* tar temp files */
	char out[128]; /* what the sink received */
	reg_mount_t mount;
	reg_bundle_t b;
	const char *inc[1];

	/* the sink's record */
	char names[MAX_EMIT][64];
	uint64_t emitted_size[MAX_EMIT];
	size_t n_emit;
	bool keep_files; /* copy emitted fds into out/ (else only their size) */
	int emit_rc;     /* non-zero: refuse every file with this code */
	char err_path[8][4200];
	int err_errno[8];
	size_t n_err;
	uint64_t prog_bytes, prog_files;
	int cancel_after; /* > 0: cancelled() is true from this poll on */
	int polls;
} fixture_t;

static int
sink_emit(void *ctx, const char *name, int fd, ohb_error_t *err)
{
	fixture_t *f = ctx;
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);
	ck_assert_int_ne(fcntl(fd, F_GETFL) & O_ACCMODE, O_WRONLY); /* readable */
	if (f->emit_rc) {
		close(fd);
		err->code = f->emit_rc;
		return f->emit_rc;
	}
	ck_assert_uint_lt(f->n_emit, MAX_EMIT);
	snprintf(f->names[f->n_emit], sizeof f->names[0], "%s", name);
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	f->emitted_size[f->n_emit] = (uint64_t)st.st_size;
	f->n_emit++;
	if (f->keep_files)
		ck_assert_int_eq(fsu_copy_fd_atomic(fd, f->out, name, 0644, NULL, NULL), 0);
	close(fd);
	return 0;
}

static void
sink_progress(void *ctx, uint64_t bytes, uint64_t files)
{
	fixture_t *f = ctx;
	ck_assert_uint_ge(bytes, f->prog_bytes);
	ck_assert_uint_ge(files, f->prog_files);
	f->prog_bytes = bytes;
	f->prog_files = files;
}

static void
sink_file_error(void *ctx, const char *path, int errnum)
{
	fixture_t *f = ctx;
	ck_assert_uint_lt(f->n_err, 8);
	snprintf(f->err_path[f->n_err], sizeof f->err_path[0], "%s", path);
	f->err_errno[f->n_err++] = errnum;
}

static bool
sink_cancelled(void *ctx)
{
	fixture_t *f = ctx;
	f->polls++;
	return f->cancel_after > 0 && f->polls >= f->cancel_after;
}

static void
put_sized(const char *base, const char *rel, const char *content, off_t sparse_size)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", base, rel);
	char dir[4200];
	snprintf(dir, sizeof dir, "%s", path);
	*strrchr(dir, '/') = '\0';
	ck_assert_int_eq(fsu_mkdir_p(dir, 0755, NULL), 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	if (content) {
		size_t len = strlen(content);
		ck_assert_int_eq(write(fd, content, len), (ssize_t)len);
	} else {
		ck_assert_int_eq(ftruncate(fd, sparse_size), 0);
	}
	close(fd);
}

static void
put_file(const char *base, const char *rel, const char *content)
{
	put_sized(base, rel, content, 0);
}

/* A file of n bytes with a position-dependent pattern. */
static void
put_pattern(const char *base, const char *rel, size_t n)
{
	char *buf = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)('a' + (i * 7 + i / 4096) % 26);
	buf[n] = '\0';
	put_file(base, rel, buf);
	free(buf);
}

/* A fixture whose folders are under parent (a new ohb_pack_XXXXXX in it). */
static void
fixture_init_in(fixture_t *f, const char *parent)
{
	memset(f, 0, sizeof *f);
	ck_assert_int_lt(snprintf(f->root, sizeof f->root, "%s/ohb_pack_XXXXXX", parent), (int)sizeof f->root);
	ck_assert_ptr_nonnull(mkdtemp(f->root));
	snprintf(f->sandbox, sizeof f->sandbox, "%s/sandbox", f->root);
	snprintf(f->tmp, sizeof f->tmp, "%s/tmp", f->root);
	snprintf(f->out, sizeof f->out, "%s/out", f->root);
	ck_assert_int_eq(fsu_mkdir_p(f->sandbox, 0755, NULL), 0);
	ck_assert_int_eq(fsu_mkdir_p(f->tmp, 0700, NULL), 0);
	ck_assert_int_eq(fsu_mkdir_p(f->out, 0700, NULL), 0);
	f->mount.sandbox_prefix = "/";
	f->mount.dir = f->sandbox;
	f->inc[0] = FILES "/";
	f->b.name = "com.example.pack";
	f->b.includes = (char **)f->inc;
	f->b.n_includes = 1;
	f->b.mounts = &f->mount;
	f->b.n_mounts = 1;
	f->keep_files = true;
}

static void
fixture_init(fixture_t *f)
{
	fixture_init_in(f, "/tmp");
}

/* A folder on a disk file system for tests that need the page cache to let go
 * of a file: a tmpfs or ramfs keeps every page, so $TMPDIR, /var/tmp or /tmp,
 * the first that is neither (else /tmp, and the test says what did not run). */
static const char *
disk_parent(void)
{
	const char *tmpdir = getenv("TMPDIR");
	const char *cands[] = {tmpdir && *tmpdir && strlen(tmpdir) < 40 ? tmpdir : NULL, "/var/tmp", "/tmp"};
	for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
		struct statfs sf;
		if (cands[i] && access(cands[i], W_OK) == 0 && statfs(cands[i], &sf) == 0 &&
		    sf.f_type != TMPFS_MAGIC && sf.f_type != RAMFS_MAGIC)
			return cands[i];
	}
	return "/tmp";
}

static void
fixture_done(fixture_t *f)
{
	ck_assert_int_eq(fsu_rm_rf(f->root, NULL), 0);
}

static int
run_pack(fixture_t *f, const scan_list_t *l, manage_list_t *m, pack_result_t *res, ohb_error_t *err)
{
	pack_sink_t sink = {f, sink_emit, sink_progress, sink_file_error, sink_cancelled};
	memset(m, 0, sizeof *m);
	return pack_bundle(&f->b, l, f->tmp, &sink, m, res, err);
}

static void
scan(fixture_t *f, scan_list_t *l)
{
	ohb_error_t err;
	ck_assert_int_eq(scan_bundle(&f->b, NULL, NULL, l, &err), 0);
}

/* ---- reading tars back ---------------------------------------------------- */

typedef struct tar_entry {
	char path[4200];
	int64_t size;
	unsigned mode;
	char data[64]; /* the first bytes */
} tar_entry_t;

/* Reads every entry of out/name with libarchive; returns the count. */
static size_t
read_tar(const fixture_t *f, const char *name, tar_entry_t *v, size_t cap)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", f->out, name);
	struct archive *a = archive_read_new();
	archive_read_support_format_all(a);
	ck_assert_int_eq(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
	struct archive_entry *ae;
	size_t n = 0;
	int r;
	while ((r = archive_read_next_header(a, &ae)) == ARCHIVE_OK) {
		if (n < cap) {
			tar_entry_t *e = &v[n];
			snprintf(e->path, sizeof e->path, "%s", archive_entry_pathname(ae));
			e->size = archive_entry_size(ae);
			e->mode = (unsigned)archive_entry_mode(ae);
			memset(e->data, 0, sizeof e->data);
			ck_assert_int_ge(archive_read_data(a, e->data, sizeof e->data - 1), 0);
		}
		n++;
	}
	ck_assert_int_eq(r, ARCHIVE_EOF);
	archive_read_free(a);
	return n;
}

static const tar_entry_t *
tar_find(const tar_entry_t *v, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].path, path) == 0)
			return &v[i];
	return NULL;
}

static int __attribute__((format(printf, 1, 2))) run_shell(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* ---- tests ------------------------------------------------------------------- */

START_TEST(tree_becomes_tars_and_raw_big_files)
{
	fixture_t f;
	fixture_init(&f);
	char longdir[200], longfile[200];
	memset(longdir, 'D', 150);
	longdir[150] = '\0';
	memset(longfile, 'F', 120);
	snprintf(longfile + 120, sizeof longfile - 120, ".txt");
	char rel[600];
	snprintf(rel, sizeof rel, FILES "/%s/%s", longdir, longfile);
	put_file(f.sandbox, rel, "long name content");
	put_file(f.sandbox, FILES "/a.txt", "alpha");
	put_file(f.sandbox, FILES "/sub/b.txt", "bravo");
	put_file(f.sandbox,
	         FILES "/donn\xc3\xa9"
	               "es-\xe6\x97\xa5\xe6\x9c\xac.txt",
	         "utf8");
	char empty[512];
	snprintf(empty, sizeof empty, "%s/" FILES "/empty", f.sandbox);
	ck_assert_int_eq(fsu_mkdir_p(empty, 0750, NULL), 0);
	put_pattern(f.sandbox, FILES "/exact2m.dat", PACK_BIG_FILE_THRESHOLD);
	put_pattern(f.sandbox, FILES "/big.bin", 3u << 20);
	put_pattern(f.sandbox, FILES "/video", (5u << 19) + 7);

	scan_list_t l;
	scan(&f, &l);
	manage_list_t m;
	pack_result_t res;
	ohb_error_t err;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, &err), 0);
	ck_assert(!res.stopped);
	ck_assert_uint_eq(res.files_failed, 0);
	ck_assert_uint_eq(res.files_ok, 7);
	ck_assert_uint_eq(res.bytes, l.total_bytes);
	ck_assert_uint_eq(f.prog_bytes, l.total_bytes);
	ck_assert_uint_eq(f.prog_files, 7);

	/* big files raw as they come in list order; the tar when it is complete */
	char big_name[64], video_name[64];
	pack_big_file_name("/" FILES "/big.bin", 0, big_name, sizeof big_name);
	pack_big_file_name("/" FILES "/video", 0, video_name, sizeof video_name);
	ck_assert_uint_eq(f.n_emit, 3);
	ck_assert_str_eq(f.names[0], big_name);
	ck_assert_str_eq(f.names[1], video_name);
	ck_assert_str_eq(f.names[2], "part.0.tar");
	ck_assert_uint_eq(strlen(big_name), 16 + 4);
	ck_assert_uint_eq(strlen(video_name), 16);

	/* manage.json: one entry per emitted file */
	ck_assert_uint_eq(m.n, 3);
	ck_assert_str_eq(m.v[0].file_name, big_name);
	ck_assert(m.v[0].is_big_file);
	ck_assert_str_eq(m.v[0].path, "/" FILES "/big.bin");
	ck_assert_uint_eq(m.v[0].size, 3u << 20);
	ck_assert_uint_eq(m.v[0].mode, S_IFREG | 0640);
	ck_assert_str_eq(m.v[1].file_name, video_name);
	ck_assert_uint_eq(m.v[1].size, (5u << 19) + 7);
	ck_assert_str_eq(m.v[2].file_name, "part.0.tar");
	ck_assert(!m.v[2].is_big_file);
	ck_assert_str_eq(m.v[2].path, "");
	ck_assert_uint_eq(m.v[2].mode, S_IFREG | 0644);
	ck_assert_uint_eq(m.v[2].size, f.emitted_size[2]);
	ck_assert_int_gt(m.v[2].mtime_sec, 0);

	/* the raw files are the originals, byte for byte */
	char a_path[1024], b_path[1024];
	snprintf(a_path, sizeof a_path, "%s/" FILES "/big.bin", f.sandbox);
	snprintf(b_path, sizeof b_path, "%s/%s", f.out, big_name);
	ck_assert_int_eq(run_shell("cmp -s '%s' '%s'", a_path, b_path), 0);

	/* libarchive reads the tar back */
	static tar_entry_t v[32];
	size_t n = read_tar(&f, "part.0.tar", v, 32);
	ck_assert_uint_eq(n, l.n - 2); /* every entry except the two big files */
	char want[700];
	snprintf(want, sizeof want, "/%s", rel);
	const tar_entry_t *e = tar_find(v, n, want);
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->data, "long name content");
	snprintf(want, sizeof want, "/" FILES "/%s/", longdir);
	ck_assert_ptr_nonnull(tar_find(v, n, want));
	e = tar_find(v, n,
	             "/" FILES "/donn\xc3\xa9"
	             "es-\xe6\x97\xa5\xe6\x9c\xac.txt");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->data, "utf8");
	e = tar_find(v, n, "/" FILES "/a.txt");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->data, "alpha");
	ck_assert_uint_eq(e->mode, S_IFREG | 0640);
	e = tar_find(v, n, "/" FILES "/empty/");
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->mode, S_IFDIR | 0750);
	e = tar_find(v, n, "/" FILES "/exact2m.dat");
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->size, PACK_BIG_FILE_THRESHOLD);
	ck_assert_ptr_null(tar_find(v, n, "/" FILES "/big.bin"));

	/* and so do the two tar programs people will use by hand */
	char tar_path[512];
	snprintf(tar_path, sizeof tar_path, "%s/part.0.tar", f.out);
	ck_assert_int_eq(run_shell("tar -tvf '%s' >/dev/null 2>&1", tar_path), 0);
	ck_assert_int_eq(run_shell("bsdtar -tvf '%s' >/dev/null 2>&1", tar_path), 0);
	ck_assert_int_eq(run_shell("tar -tf '%s' 2>/dev/null | grep -qF '%s'", tar_path, longfile), 0);
	ck_assert_int_eq(run_shell("bsdtar -tf '%s' | grep -qxF '/" FILES "/%s/'", tar_path, longdir), 0);
	/* GNU tar extracts the same bytes */
	char x_dir[512];
	snprintf(x_dir, sizeof x_dir, "%s/x", f.root);
	ck_assert_int_eq(fsu_mkdir_p(x_dir, 0755, NULL), 0);
	ck_assert_int_eq(run_shell("tar -xf '%s' -C '%s' 2>/dev/null", tar_path, x_dir), 0);
	snprintf(a_path, sizeof a_path, "%s/" FILES "/exact2m.dat", f.sandbox);
	snprintf(b_path, sizeof b_path, "%s/" FILES "/exact2m.dat", x_dir);
	ck_assert_int_eq(run_shell("cmp -s '%s' '%s'", a_path, b_path), 0);

	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(split_at_6000_entries)
{
	fixture_t f;
	fixture_init(&f);
	char rel[128];
	for (int i = 0; i < 6100; i++) {
		snprintf(rel, sizeof rel, FILES "/many/f%04d", i);
		put_file(f.sandbox, rel, "x");
	}
	scan_list_t l;
	scan(&f, &l);
	ck_assert_uint_eq(l.n, 6106); /* 4 ancestors, files/, many/, 6100 files */
	manage_list_t m;
	pack_result_t res;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, NULL), 0);
	ck_assert_uint_eq(res.files_ok, 6100);
	ck_assert_uint_eq(f.n_emit, 2);
	ck_assert_str_eq(f.names[0], "part.0.tar");
	ck_assert_str_eq(f.names[1], "part.1.tar");
	ck_assert_uint_eq(m.n, 2);
	static tar_entry_t v[8];
	ck_assert_uint_eq(read_tar(&f, "part.0.tar", v, 8), PACK_TAR_MAX_ENTRIES);
	ck_assert_str_eq(v[0].path, "/data/");
	ck_assert_uint_eq(read_tar(&f, "part.1.tar", v, 8), 6106 - PACK_TAR_MAX_ENTRIES);
	ck_assert_str_eq(v[0].path, "/" FILES "/many/f5994");
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(split_at_100_mib)
{
	fixture_t f;
	fixture_init(&f);
	f.keep_files = false;
	char rel[128];
	for (int i = 0; i < 51; i++) { /* 51 x 2 MiB (sparse): just over 100 MiB */
		snprintf(rel, sizeof rel, FILES "/f%02d", i);
		put_sized(f.sandbox, rel, NULL, PACK_BIG_FILE_THRESHOLD);
	}
	scan_list_t l;
	scan(&f, &l);
	manage_list_t m;
	pack_result_t res;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, NULL), 0);
	ck_assert_uint_eq(res.files_ok, 51);
	ck_assert_uint_eq(f.n_emit, 2);
	ck_assert_uint_le(f.emitted_size[0], PACK_TAR_MAX_BYTES);
	ck_assert_uint_gt(f.emitted_size[0], PACK_TAR_MAX_BYTES - (3u << 20));
	ck_assert_uint_ge(f.emitted_size[0] + f.emitted_size[1], 51ull * PACK_BIG_FILE_THRESHOLD);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(vanished_file_is_reported_and_counted)
{
	fixture_t f;
	fixture_init(&f);
	put_file(f.sandbox, FILES "/a.txt", "alpha");
	put_file(f.sandbox, FILES "/gone.txt", "gone");
	put_file(f.sandbox, FILES "/z.txt", "zulu");
	scan_list_t l;
	scan(&f, &l);
	char p[512];
	snprintf(p, sizeof p, "%s/" FILES "/gone.txt", f.sandbox);
	ck_assert_int_eq(unlink(p), 0);
	manage_list_t m;
	pack_result_t res;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, NULL), 0);
	ck_assert_uint_eq(res.files_ok, 2);
	ck_assert_uint_eq(res.files_failed, 1);
	ck_assert_uint_eq(f.n_err, 1);
	ck_assert_str_eq(f.err_path[0], "/" FILES "/gone.txt");
	ck_assert_int_eq(f.err_errno[0], ENOENT);
	static tar_entry_t v[8];
	size_t n = read_tar(&f, "part.0.tar", v, 8);
	ck_assert_uint_eq(n, 7);   /* 4 ancestor dirs, the include root, a.txt, z.txt */
	ck_assert_ptr_null(tar_find(v, n, "/" FILES "/gone.txt"));
	ck_assert_ptr_nonnull(tar_find(v, n, "/" FILES "/z.txt"));
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

/* A directory or file replaced by a symlink after the scan is not followed. */
START_TEST(symlink_swapped_in_after_scan_is_not_followed)
{
	fixture_t f;
	fixture_init(&f);
	put_file(f.sandbox, FILES "/sub/s.txt", "mine");
	put_file(f.sandbox, FILES "/t.txt", "mine too");
	put_file(f.root, "outside/s.txt", "SECRET");
	put_file(f.root, "outside/t.txt", "SECRET");
	scan_list_t l;
	scan(&f, &l);
	char from[512], to[512];
	snprintf(from, sizeof from, "%s/" FILES "/sub", f.sandbox);
	snprintf(to, sizeof to, "%s/" FILES "/sub.real", f.sandbox);
	ck_assert_int_eq(rename(from, to), 0);
	snprintf(to, sizeof to, "%s/outside", f.root);
	ck_assert_int_eq(symlink(to, from), 0);
	snprintf(from, sizeof from, "%s/" FILES "/t.txt", f.sandbox);
	ck_assert_int_eq(unlink(from), 0);
	snprintf(to, sizeof to, "%s/outside/t.txt", f.root);
	ck_assert_int_eq(symlink(to, from), 0);
	manage_list_t m;
	pack_result_t res;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, NULL), 0);
	ck_assert_uint_eq(res.files_ok, 0);
	ck_assert_uint_eq(res.files_failed, 2);
	ck_assert_uint_eq(f.n_err, 2);
	ck_assert_str_eq(f.err_path[0], "/" FILES "/sub/s.txt");
	ck_assert(f.err_errno[0] == ENOTDIR || f.err_errno[0] == ELOOP);
	ck_assert_str_eq(f.err_path[1], "/" FILES "/t.txt");
	ck_assert_int_eq(f.err_errno[1], ELOOP);
	static tar_entry_t v[8];
	size_t n = read_tar(&f, "part.0.tar", v, 8);
	for (size_t i = 0; i < n; i++)
		ck_assert_ptr_null(strstr(v[i].data, "SECRET"));
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

/* Files whose size is not what stat said: /proc files claim 0 bytes and have
 * more, /sys attribute files claim 4096 and have fewer. The tar still holds
 * exactly what each header promised, and both files are reported. */
START_TEST(file_changing_size_keeps_the_tar_well_formed)
{
	fixture_t f;
	fixture_init(&f);
	struct stat st;
	bool have_sys = stat("/sys/devices/system/cpu/online", &st) == 0 && st.st_size == 4096;
	reg_mount_t mounts[2] = {{"/proc", "/proc/self"}, {"/sys", "/sys/devices/system/cpu"}};
	f.b.mounts = mounts;
	f.b.n_mounts = have_sys ? 2 : 1;
	scan_entry_t v[2] = {
	    {"/proc/status", 0, false, 0, S_IFREG | 0444, 0, 0},
	    {"/sys/online", 1, false, 4096, S_IFREG | 0444, 0, 0},
	};
	scan_list_t l = { .v = v, .n = have_sys ? 2 : 1 };
	manage_list_t m;
	pack_result_t res;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, NULL), 0);
	ck_assert_uint_eq(res.files_ok, 0);
	ck_assert_uint_eq(res.files_failed, l.n);
	ck_assert_uint_eq(f.n_err, l.n);
	ck_assert_str_eq(f.err_path[0], "/proc/status");
	ck_assert_int_eq(f.err_errno[0], EIO);
	static tar_entry_t te[4];
	ck_assert_uint_eq(read_tar(&f, "part.0.tar", te, 4), l.n);
	ck_assert_int_eq(te[0].size, 0);
	if (have_sys) {
		ck_assert_str_eq(f.err_path[1], "/sys/online");
		ck_assert_int_eq(te[1].size, 4096);
		ck_assert(te[1].data[0] >= '0' && te[1].data[0] <= '9');
	}
	char tar_path[512];
	snprintf(tar_path, sizeof tar_path, "%s/part.0.tar", f.out);
	ck_assert_int_eq(run_shell("tar -tvf '%s' >/dev/null 2>&1", tar_path), 0);
	manage_list_free(&m);
	fixture_done(&f);
}
END_TEST

START_TEST(cancel_stops_and_drops_the_open_tar)
{
	fixture_t f;
	fixture_init(&f);
	char rel[128];
	for (int i = 0; i < 50; i++) {
		snprintf(rel, sizeof rel, FILES "/f%02d", i);
		put_file(f.sandbox, rel, "data");
	}
	scan_list_t l;
	scan(&f, &l);
	f.cancel_after = 5;
	manage_list_t m;
	pack_result_t res;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, NULL), 0);
	ck_assert(res.stopped);
	ck_assert_int_eq(f.polls, 5);
	ck_assert_uint_lt(res.files_ok, 5);
	ck_assert_uint_eq(f.n_emit, 0);
	ck_assert_uint_eq(m.n, 0);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(sink_refusal_aborts_with_its_code)
{
	fixture_t f;
	fixture_init(&f);
	put_file(f.sandbox, FILES "/a.txt", "alpha");
	scan_list_t l;
	scan(&f, &l);
	f.emit_rc = OHB_E_UNKNOWN;
	manage_list_t m;
	pack_result_t res;
	ohb_error_t err;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, &err), OHB_E_UNKNOWN);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

/* A write error in the middle of a tar (here: a file size limit, EFBIG) ends
 * the pack with 13500006 naming the tar; nothing half written is sent. */
START_TEST(tar_write_failure_is_13500006)
{
	fixture_t f;
	fixture_init(&f);
	char rel[128];
	for (int i = 0; i < 8; i++) {
		snprintf(rel, sizeof rel, FILES "/f%d", i);
		put_sized(f.sandbox, rel, NULL, 200 * 1024);
	}
	scan_list_t l;
	scan(&f, &l);
	struct rlimit old, lim;
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 512 * 1024;
	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	manage_list_t m;
	pack_result_t res;
	ohb_error_t err;
	int rc = run_pack(&f, &l, &m, &res, &err);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	ck_assert_int_eq(rc, OHB_E_TAR);
	ck_assert_int_eq(err.code, OHB_E_TAR);
	ck_assert_ptr_nonnull(strstr(err.message, "part.0.tar"));
	ck_assert_uint_eq(f.n_emit, 0);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(missing_temp_dir_is_13500006)
{
	fixture_t f;
	fixture_init(&f);
	put_file(f.sandbox, FILES "/a.txt", "alpha");
	scan_list_t l;
	scan(&f, &l);
	snprintf(f.tmp, sizeof f.tmp, "%s/no/such/dir", f.root);
	manage_list_t m;
	pack_result_t res;
	ohb_error_t err;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, &err), OHB_E_TAR);
	ck_assert_int_eq(err.code, OHB_E_TAR);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(empty_list_sends_nothing)
{
	fixture_t f;
	fixture_init(&f);
	scan_list_t l;
	scan(&f, &l);
	ck_assert_uint_eq(l.n, 0);
	manage_list_t m;
	pack_result_t res;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, NULL), 0);
	ck_assert_uint_eq(f.n_emit, 0);
	ck_assert_uint_eq(m.n, 0);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(big_file_names)
{
	char buf[64];
	pack_big_file_name("", 0, buf, sizeof buf);
	ck_assert_str_eq(buf, "cbf29ce484222325"); /* the FNV-1a 64 offset basis */
	pack_big_file_name("/data/storage/el2/base/files/big.bin", 0, buf, sizeof buf);
	ck_assert_str_eq(buf, "ce9c2942551e211c.bin");
	pack_big_file_name("/data/storage/el2/base/files/big.bin", 1, buf, sizeof buf);
	ck_assert_str_eq(buf, "471960559bcc7ff4.bin");
	pack_big_file_name("/a/.profile", 0, buf, sizeof buf);
	ck_assert_uint_eq(strlen(buf), 16);
	pack_big_file_name("/a/x.tar.gz", 0, buf, sizeof buf);
	ck_assert_str_eq(buf + 16, ".gz");
	pack_big_file_name("/a/x.b-c", 0, buf, sizeof buf);
	ck_assert_uint_eq(strlen(buf), 16);
	pack_big_file_name("/a.d/file", 0, buf, sizeof buf);
	ck_assert_uint_eq(strlen(buf), 16);
	pack_big_file_name("/a/x.", 0, buf, sizeof buf);
	ck_assert_uint_eq(strlen(buf), 16);
	pack_big_file_name("/a/x.Movie_1", 0, buf, sizeof buf);
	ck_assert_str_eq(buf + 16, ".Movie_1");
	ck_assert(fsu_uri_is_valid(buf));
	char small[18];
	pack_big_file_name("/a/x.Movie_1", 0, small, sizeof small);
	ck_assert_uint_eq(strlen(small), 16); /* no room for the extension: none */
}
END_TEST

/* With several cores pack_bundle reads ahead on helper threads, in chunks of
 * files (packer.c). The result must be exactly the serial loop's: every file
 * in list order with its content, a file too big for a chunk's buffer
 * streamed, a big file raw, a file gone since the scan reported in its place. */
/* The tar's n entries te are the scan list's paths in list order, each one
 * once, except those in skip (NULL-terminated; NULL: none), and nothing more. */
static void
assert_tar_follows_list(const tar_entry_t *te, size_t n, const scan_list_t *l, const char *const *skip)
{
	size_t k = 0;
	for (size_t i = 0; i < l->n; i++) {
		const char *p = l->v[i].path;
		bool skipped = false;
		for (size_t j = 0; skip && skip[j] && !skipped; j++)
			skipped = strcmp(p, skip[j]) == 0;
		if (skipped)
			continue;
		ck_assert_uint_lt(k, n);
		ck_assert_str_eq(te[k].path, p);
		k++;
	}
	ck_assert_uint_eq(k, n);
}

START_TEST(read_ahead_packs_many_files_in_list_order)
{
	fixture_t f;
	fixture_init(&f);
	char rel[128], text[64];
	for (int i = 0; i < 300; i++) {
		snprintf(rel, sizeof rel, FILES "/d%02d/f%03d", i % 10, i);
		snprintf(text, sizeof text, "file number %d", i);
		put_file(f.sandbox, rel, text);
	}
	put_pattern(f.sandbox, FILES "/d03/medium", 700u * 1024); /* more than a chunk's buffer holds */
	put_pattern(f.sandbox, FILES "/d04/huge", PACK_BIG_FILE_THRESHOLD + 1);
	scan_list_t l;
	scan(&f, &l);
	char gone[512];
	snprintf(gone, sizeof gone, "%s/" FILES "/d05/f005", f.sandbox);
	ck_assert_int_eq(unlink(gone), 0);
	manage_list_t m;
	pack_result_t res;
	ohb_error_t err;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, &err), 0);
	ck_assert_uint_eq(res.files_ok, 301);
	ck_assert_uint_eq(res.files_failed, 1);
	ck_assert_uint_eq(f.n_err, 1);
	ck_assert_str_eq(f.err_path[0], "/" FILES "/d05/f005");
	ck_assert_int_eq(f.err_errno[0], ENOENT);
	ck_assert_uint_eq(f.n_emit, 2);
	char huge_name[64];
	pack_big_file_name("/" FILES "/d04/huge", 0, huge_name, sizeof huge_name);
	ck_assert_str_eq(f.names[0], huge_name);
	ck_assert_uint_eq(f.emitted_size[0], PACK_BIG_FILE_THRESHOLD + 1);
	ck_assert_str_eq(f.names[1], "part.0.tar");

	static tar_entry_t te[400];
	size_t n = read_tar(&f, "part.0.tar", te, 400);
	const char *const not_in_tar[] = {"/" FILES "/d05/f005", "/" FILES "/d04/huge", NULL};   /* gone, raw */
	assert_tar_follows_list(te, n, &l, not_in_tar);
	const tar_entry_t *t = tar_find(te, n, "/" FILES "/d07/f117");
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->data, "file number 117");
	t = tar_find(te, n, "/" FILES "/d03/medium");
	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(t->size, 700 * 1024);
	/* every byte, checked by GNU tar against the sandbox */
	ck_assert_int_eq(run_shell("cd '%s' && mkdir x && tar -xf part.0.tar -C x 2>/dev/null && "
	                           "diff -r --exclude=huge x/" FILES " '%s/" FILES "' >/dev/null",
	                           f.out, f.sandbox),
	                 0);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

/* Drops path's pages from the page cache (written back first); true when its
 * first page is then out of memory. */
static bool
evict_file(const char *path)
{
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fdatasync(fd), 0);
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	bool out = false;
	void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (m != MAP_FAILED) {
		unsigned char v = 1;
		out = mincore(m, 4096, &v) == 0 && !(v & 1);
		munmap(m, 4096);
	}
	close(fd);
	return out;
}

/* Files the page cache lost are read after a read-ahead request for their
 * whole chunk (packer.c pf_fill): their bytes still come out in list order,
 * every one of them, beside files that stayed in memory. */
START_TEST(read_ahead_packs_files_the_page_cache_lost)
{
	fixture_t f;
	fixture_init_in(&f, disk_parent());   /* a tmpfs /tmp would keep every page */
	char rel[128], text[64], path[600];
	int evicted = 0;
	for (int i = 0; i < 200; i++) {
		snprintf(rel, sizeof rel, FILES "/d%02d/f%03d", i % 7, i);
		snprintf(text, sizeof text, "cold file %d", i);
		put_file(f.sandbox, rel, text);
	}
	put_pattern(f.sandbox, FILES "/d01/pattern", 100u * 1024);
	/* every other file leaves memory; the rest stays cached */
	for (int i = 0; i < 200; i += 2) {
		snprintf(path, sizeof path, "%s/" FILES "/d%02d/f%03d", f.sandbox, i % 7, i);
		evicted += evict_file(path);
	}
	snprintf(path, sizeof path, "%s/" FILES "/d01/pattern", f.sandbox);
	evicted += evict_file(path);
	if (evicted == 0)
		test_skip("the page cache kept every file", "packer: the deferred reads of evicted files");
	scan_list_t l;
	scan(&f, &l);
	manage_list_t m;
	pack_result_t res;
	ohb_error_t err;
	ck_assert_int_eq(run_pack(&f, &l, &m, &res, &err), 0);
	ck_assert_uint_eq(res.files_ok, 201);
	ck_assert_uint_eq(res.files_failed, 0);
	ck_assert_uint_eq(f.n_emit, 1);
	static tar_entry_t te[300];
	size_t n = read_tar(&f, "part.0.tar", te, 300);
	assert_tar_follows_list(te, n, &l, NULL);
	const tar_entry_t *t = tar_find(te, n, "/" FILES "/d02/f100");
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->data, "cold file 100");
	ck_assert_int_eq(run_shell("cd '%s' && mkdir x && tar -xf part.0.tar -C x 2>/dev/null && "
	                           "diff -r x/" FILES " '%s/" FILES "' >/dev/null",
	                           f.out, f.sandbox),
	                 0);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

extern Suite *packer_suite(void);

/* one line: the Makefile finds suites with ^Suite \*x_suite(void) */
/* clang-format off */
Suite *packer_suite(void)
/* clang-format on */
{
	Suite *s = suite_create("packer");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, tree_becomes_tars_and_raw_big_files);
	tcase_add_test(tc, split_at_6000_entries);
	tcase_add_test(tc, split_at_100_mib);
	tcase_add_test(tc, vanished_file_is_reported_and_counted);
	tcase_add_test(tc, symlink_swapped_in_after_scan_is_not_followed);
	tcase_add_test(tc, file_changing_size_keeps_the_tar_well_formed);
	tcase_add_test(tc, cancel_stops_and_drops_the_open_tar);
	tcase_add_test(tc, sink_refusal_aborts_with_its_code);
	tcase_add_test(tc, tar_write_failure_is_13500006);
	tcase_add_test(tc, missing_temp_dir_is_13500006);
	tcase_add_test(tc, empty_list_sends_nothing);
	tcase_add_test(tc, big_file_names);
	tcase_add_test(tc, read_ahead_packs_many_files_in_list_order);
	tcase_add_test(tc, read_ahead_packs_files_the_page_cache_lost);
	suite_add_tcase(s, tc);
	return s;
}
