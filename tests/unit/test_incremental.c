/*
 * test_incremental — what an incremental backup sends (incremental.h): after
 * edits, additions, deletions, a rename, a chmod, a file growing past 2 MiB
 * and an mtime-only touch, exactly the changed entries travel (small ones in
 * "<ms>_part.<N>.tar", each tar followed by its .rp; big ones raw, each
 * followed by "<name>.rp"), and all.rp lists every current file and directory
 * with the hashes that were computed or carried. A second run with no change
 * sends nothing and reads no file; an empty base sends everything; the
 * 6000-entry split gives each tar a report of exactly its own entries;
 * cancel, vanished files and a sink refusal behave as in the full packer.
 * Each test works in its own temporary directory with a hand-filled bundle
 * and lists made by scan_bundle.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "fsutil.h"
#include "incremental.h"

#define FILES "data/storage/el2/base/files"
#define MAX_EMIT 16
#define NOW_MS 1763990000123LL
#define T0 1700000000 /* mtime of the initial tree */

typedef struct fixture {
	char root[64];
	char sandbox[128];
	char tmp[128];
	char out[128];
	reg_mount_t mount;
	reg_bundle_t b;
	const char *inc[1];

	char names[MAX_EMIT][64];
	size_t n_emit;
	bool keep_files;
	int emit_rc;
	char err_path[8][512];
	int err_errno[8];
	size_t n_err;
	uint64_t prog_bytes, prog_files;
	int cancel_after;
	int polls;
} fixture_t;

static int
sink_emit(void *ctx, const char *name, int fd, ohb_error_t *err)
{
	fixture_t *f = ctx;
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 0);
	if (f->emit_rc) {
		close(fd);
		err->code = f->emit_rc;
		return f->emit_rc;
	}
	if (f->n_emit < MAX_EMIT)
		snprintf(f->names[f->n_emit], sizeof f->names[0], "%s", name);
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
fixture_init(fixture_t *f)
{
	memset(f, 0, sizeof *f);
	snprintf(f->root, sizeof f->root, "/tmp/ohb_inc_XXXXXX");
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
	f->b.name = "com.example.inc";
	f->b.includes = (char **)f->inc;
	f->b.n_includes = 1;
	f->b.mounts = &f->mount;
	f->b.n_mounts = 1;
	f->keep_files = true;
}

static void
fixture_done(fixture_t *f)
{
	ck_assert_int_eq(fsu_rm_rf(f->root, NULL), 0);
}

/* Forgets what the sink saw and empties out/, between two runs. */
static void
sink_reset(fixture_t *f)
{
	f->n_emit = 0;
	f->n_err = 0;
	f->prog_bytes = f->prog_files = 0;
	f->polls = 0;
	ck_assert_int_eq(fsu_rm_rf(f->out, NULL), 0);
	ck_assert_int_eq(fsu_mkdir_p(f->out, 0700, NULL), 0);
}

static void
sb_path(const fixture_t *f, const char *rel, char *buf, size_t size)
{
	snprintf(buf, size, "%s/" FILES "/%s", f->sandbox, rel);
}

/* Writes FILES/rel (making its parents) and sets its mtime when mtime > 0. */
static void
put(const fixture_t *f, const char *rel, const void *data, size_t len, time_t mtime)
{
	char path[512];
	sb_path(f, rel, path, sizeof path);
	char dir[512];
	snprintf(dir, sizeof dir, "%s", path);
	*strrchr(dir, '/') = '\0';
	ck_assert_int_eq(fsu_mkdir_p(dir, 0755, NULL), 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	if (mtime > 0) {
		struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
		ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
	}
}

static void
put_str(const fixture_t *f, const char *rel, const char *s, time_t mtime)
{
	put(f, rel, s, strlen(s), mtime);
}

static void
set_mtime(const fixture_t *f, const char *rel, time_t mtime)
{
	char path[512];
	sb_path(f, rel, path, sizeof path);
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static char *
pattern(size_t n)
{
	char *p = malloc(n);
	for (size_t i = 0; i < n; i++)
		p[i] = (char)('a' + (i * 7 + i / 4096) % 26);
	return p;
}

static void
scan(fixture_t *f, scan_list_t *l)
{
	ohb_error_t err;
	ck_assert_int_eq(scan_bundle(&f->b, NULL, NULL, l, &err), 0);
}

static int
run_inc(fixture_t *f, const scan_list_t *l, const rp_list_t *base, manage_list_t *m, rp_list_t *all,
        pack_result_t *res, ohb_error_t *err)
{
	pack_sink_t sink = {f, sink_emit, sink_progress, sink_file_error, sink_cancelled};
	memset(m, 0, sizeof *m);
	return inc_pack_bundle(&f->b, l, base, NOW_MS, f->tmp, &sink, m, all, res, err);
}

/* ---- reading back what was sent ------------------------------------------------- */

typedef struct tar_entry {
	char path[512];
	int64_t size;
	unsigned mode;
	int64_t mtime;
	char data[64];
} tar_entry_t;

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
			e->mtime = (int64_t)archive_entry_mtime(ae);
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

static void
read_rp(const fixture_t *f, const char *name, rp_list_t *l)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", f->out, name);
	char *text = NULL;
	size_t len = 0;
	ck_assert_int_eq(fsu_read_file(path, 1u << 26, &text, &len, NULL), 0);
	char *warn = NULL;
	ohb_error_t err;
	ck_assert_int_eq(rp_parse(text, len, l, &warn, &err), 0);
	ck_assert_msg(warn == NULL, "%s: %s", name, warn);
	free(text);
}

/* all.rp as the client keeps it: written, then read back as text. */
static void
through_text(const rp_list_t *in, rp_list_t *out)
{
	char *text = NULL;
	size_t len = 0;
	ck_assert_int_eq(rp_write(in, &text, &len, NULL), 0);
	ohb_error_t err;
	ck_assert_int_eq(rp_parse(text, len, out, NULL, &err), 0);
	free(text);
}

static void
sha_of(const void *data, size_t len, char hex[65])
{
	rp_sha256_hex(data, len, hex);
}

static void
give_hash(rp_list_t *base, const char *rel, const char *content)
{
	char path[512];
	snprintf(path, sizeof path, "/" FILES "/%s", rel);
	const rp_entry_t *e = rp_find(base, path);
	ck_assert_ptr_nonnull(e);
	/* a later row for the same path replaces it (rp_sort) */
	char hash[65];
	sha_of(content, strlen(content), hash);
	rp_entry_t with = *e;
	with.hash = hash;
	ck_assert_int_eq(rp_add(base, &with, NULL), 0);
	rp_sort(base);
}

/* all must list exactly the entries of the scan l, with their stats. */
static void
assert_all_matches_scan(const rp_list_t *all, const scan_list_t *l)
{
	rp_list_t want;
	ck_assert_int_eq(rp_from_scan(l, &want, NULL), 0);
	ck_assert_uint_eq(all->n, want.n);
	for (size_t i = 0; i < want.n; i++) {
		ck_assert_str_eq(all->v[i].path, want.v[i].path);
		ck_assert_uint_eq(all->v[i].mode, want.v[i].mode);
		ck_assert_int_eq(all->v[i].is_dir, want.v[i].is_dir);
		ck_assert_uint_eq(all->v[i].size, want.v[i].size);
		ck_assert_int_eq(all->v[i].mtime, want.v[i].mtime);
	}
	rp_list_free(&want);
}

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(rp_from_scan_lists_everything_without_hashes)
{
	fixture_t f;
	fixture_init(&f);
	put_str(&f, "a.txt", "alpha", T0);
	put_str(&f, "sub/b.txt", "bravo", T0 + 1);
	scan_list_t l;
	scan(&f, &l);
	rp_list_t r;
	ck_assert_int_eq(rp_from_scan(&l, &r, NULL), 0);
	ck_assert_uint_eq(r.n, l.n);
	/* "/data", "/data/storage", ... ".../files", a.txt, sub, sub/b.txt */
	ck_assert_str_eq(r.v[0].path, "/data");
	ck_assert(r.v[0].is_dir);
	const rp_entry_t *sub = rp_find(&r, "/" FILES "/sub");
	ck_assert_ptr_nonnull(sub);
	ck_assert(sub->is_dir);
	ck_assert(S_ISDIR(sub->mode));
	const rp_entry_t *b = rp_find(&r, "/" FILES "/sub/b.txt");
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(b->size, 5);
	ck_assert_int_eq(b->mtime, T0 + 1);
	ck_assert_uint_eq(b->mode, S_IFREG | 0644);
	for (size_t i = 0; i < r.n; i++) {
		ck_assert_str_eq(r.v[i].hash, "");
		ck_assert(!r.v[i].is_incremental);
		size_t n = strlen(r.v[i].path);
		ck_assert(r.v[i].path[n - 1] != '/');
	}
	rp_list_free(&r);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(exactly_the_changes_are_sent)
{
	fixture_t f;
	fixture_init(&f);
	put_str(&f, "edit.txt", "hello world", T0);
	put_str(&f, "keep.txt", "unchanged", T0);
	put_str(&f, "del.txt", "delete me", T0);
	put_str(&f, "old_name.txt", "rename me", T0);
	put_str(&f, "mode.txt", "chmod me", T0);
	put_str(&f, "grow.bin", "x", T0);
	put_str(&f, "touch.txt", "same content", T0);
	put_str(&f, "touch_nohash.txt", "no hash in the base", T0);
	put_str(&f, "sub/deep.txt", "deep", T0);

	scan_list_t l0;
	scan(&f, &l0);
	rp_list_t base;
	ck_assert_int_eq(rp_from_scan(&l0, &base, NULL), 0);
	/* touch.txt and mode.txt have their hash in the base, as rows written by
	 * an earlier incremental (or by OpenHarmony) have; the others have none */
	char h_touch[65];
	sha_of("same content", 12, h_touch);
	give_hash(&base, "touch.txt", "same content");
	give_hash(&base, "mode.txt", "chmod me");

	/* the changes */
	put_str(&f, "edit.txt", "HELLO WORLD", T0 + 100); /* same size, new content, later mtime */
	put_str(&f, "new.txt", "brand new", 0);
	put_str(&f, "newdir/n.txt", "in a new dir", 0);
	char p[512], q[512];
	sb_path(&f, "del.txt", p, sizeof p);
	ck_assert_int_eq(unlink(p), 0);
	sb_path(&f, "old_name.txt", p, sizeof p);
	sb_path(&f, "new_name.txt", q, sizeof q);
	ck_assert_int_eq(rename(p, q), 0);
	sb_path(&f, "mode.txt", p, sizeof p);
	ck_assert_int_eq(chmod(p, 0600), 0);
	size_t big_len = (3u << 20) + 3;
	char *big = pattern(big_len);
	put(&f, "grow.bin", big, big_len, T0 + 50);
	set_mtime(&f, "touch.txt", T0 + 200);        /* same content, new mtime: sent (the mtime must restore) */
	set_mtime(&f, "touch_nohash.txt", T0 + 200); /* no base hash to compare: sent */

	scan_list_t l;
	scan(&f, &l);
	manage_list_t m;
	rp_list_t all;
	pack_result_t res;
	ohb_error_t err;
	ck_assert_int_eq(run_inc(&f, &l, &base, &m, &all, &res, &err), 0);
	ck_assert(!res.stopped);
	ck_assert_uint_eq(f.n_err, 0);
	ck_assert_uint_eq(res.files_failed, 0);

	/* emitted: the big file and its report (as it came), then the tar and its report */
	char big_name[64], big_rp[80];
	pack_big_file_name("/" FILES "/grow.bin", 0, big_name, sizeof big_name);
	snprintf(big_rp, sizeof big_rp, "%s.rp", big_name);
	ck_assert_uint_eq(f.n_emit, 4);
	ck_assert_str_eq(f.names[0], big_name);
	ck_assert_str_eq(f.names[1], big_rp);
	ck_assert_str_eq(f.names[2], "1763990000123_part.0.tar");
	ck_assert_str_eq(f.names[3], "1763990000123_part.0.rp");

	/* the tar holds exactly the changed small entries */
	static tar_entry_t v[32];
	size_t n = read_tar(&f, "1763990000123_part.0.tar", v, 32);
	const char *sent[] = {
	    "/" FILES "/edit.txt",         "/" FILES "/new.txt",      "/" FILES "/newdir/",
	    "/" FILES "/newdir/n.txt",     "/" FILES "/new_name.txt", "/" FILES "/mode.txt",
	    "/" FILES "/touch_nohash.txt", "/" FILES "/touch.txt",
	};
	size_t n_sent = sizeof sent / sizeof sent[0];
	ck_assert_uint_eq(n, n_sent);
	for (size_t i = 0; i < n_sent; i++)
		ck_assert_msg(tar_find(v, n, sent[i]) != NULL, "%s not in the tar", sent[i]);
	ck_assert_str_eq(tar_find(v, n, "/" FILES "/edit.txt")->data, "HELLO WORLD");
	ck_assert_int_eq(tar_find(v, n, "/" FILES "/edit.txt")->mtime, T0 + 100);
	ck_assert_uint_eq(tar_find(v, n, "/" FILES "/mode.txt")->mode, S_IFREG | 0600);
	ck_assert_str_eq(tar_find(v, n, "/" FILES "/new_name.txt")->data, "rename me");

	/* its report lists the same entries, with hashes */
	rp_list_t trp;
	read_rp(&f, "1763990000123_part.0.rp", &trp);
	ck_assert_uint_eq(trp.n, n_sent);
	for (size_t i = 0; i < n_sent; i++) {
		char key[512];
		snprintf(key, sizeof key, "%s", sent[i]);
		size_t kl = strlen(key);
		if (key[kl - 1] == '/')
			key[kl - 1] = '\0';
		const rp_entry_t *r = rp_find(&trp, key);
		ck_assert_msg(r != NULL, "%s not in the tar's report", key);
		ck_assert(r->is_incremental);
		ck_assert_uint_eq(strlen(r->hash), r->is_dir ? 0 : 64);
	}
	char h[65];
	sha_of("HELLO WORLD", 11, h);
	ck_assert_str_eq(rp_find(&trp, "/" FILES "/edit.txt")->hash, h);
	ck_assert(rp_find(&trp, "/" FILES "/newdir")->is_dir);
	ck_assert_uint_eq(rp_find(&trp, "/" FILES "/mode.txt")->mode, S_IFREG | 0600);
	rp_list_free(&trp);

	/* the big file travels raw, with a one-row report */
	char a_path[512], b_path[512];
	sb_path(&f, "grow.bin", a_path, sizeof a_path);
	snprintf(b_path, sizeof b_path, "%s/%s", f.out, big_name);
	char *got = NULL;
	size_t got_len = 0;
	ck_assert_int_eq(fsu_read_file(b_path, 1u << 24, &got, &got_len, NULL), 0);
	ck_assert_uint_eq(got_len, big_len);
	ck_assert(memcmp(got, big, big_len) == 0);
	free(got);
	rp_list_t brp;
	read_rp(&f, big_rp, &brp);
	ck_assert_uint_eq(brp.n, 1);
	ck_assert_str_eq(brp.v[0].path, "/" FILES "/grow.bin");
	ck_assert_uint_eq(brp.v[0].size, big_len);
	ck_assert_int_eq(brp.v[0].mtime, T0 + 50);
	sha_of(big, big_len, h);
	ck_assert_str_eq(brp.v[0].hash, h);
	ck_assert(brp.v[0].is_incremental);
	rp_list_free(&brp);

	/* manage entries as the full packer makes them (no .rp files) */
	ck_assert_uint_eq(m.n, 2);
	ck_assert_str_eq(m.v[0].file_name, big_name);
	ck_assert(m.v[0].is_big_file);
	ck_assert_str_eq(m.v[0].path, "/" FILES "/grow.bin");
	ck_assert_uint_eq(m.v[0].size, big_len);
	ck_assert_uint_eq(m.v[0].mode, S_IFREG | 0644);
	ck_assert_int_eq(m.v[0].mtime_sec, T0 + 50);
	ck_assert_str_eq(m.v[1].file_name, "1763990000123_part.0.tar");
	ck_assert(!m.v[1].is_big_file);
	ck_assert_str_eq(m.v[1].path, "");
	ck_assert_uint_eq(m.v[1].mode, S_IFREG | 0644);
	struct stat st;
	snprintf(b_path, sizeof b_path, "%s/1763990000123_part.0.tar", f.out);
	ck_assert_int_eq(stat(b_path, &st), 0);
	ck_assert_uint_eq(m.v[1].size, (uint64_t)st.st_size);

	/* counts: 7 small files (touch.txt too) and the big one sent; progress covers every file */
	ck_assert_uint_eq(res.files_ok, 8);
	ck_assert_uint_eq(res.bytes, 11 + 9 + 12 + 9 + 8 + 19 + 12 + big_len);
	ck_assert_uint_eq(f.prog_files, l.total_files);
	ck_assert_uint_eq(f.prog_bytes, l.total_bytes);

	/* all.rp: every current file and directory, none of the deleted ones */
	assert_all_matches_scan(&all, &l);
	ck_assert_ptr_null(rp_find(&all, "/" FILES "/del.txt"));
	ck_assert_ptr_null(rp_find(&all, "/" FILES "/old_name.txt"));
	const rp_entry_t *t = rp_find(&all, "/" FILES "/touch.txt");
	ck_assert_int_eq(t->mtime, T0 + 200);
	ck_assert_str_eq(t->hash, h_touch);
	ck_assert(t->is_incremental);
	ck_assert_str_eq(rp_find(&all, "/" FILES "/keep.txt")->hash, ""); /* carried: none in the base */
	sha_of("HELLO WORLD", 11, h);
	ck_assert_str_eq(rp_find(&all, "/" FILES "/edit.txt")->hash, h);
	ck_assert(rp_find(&all, "/" FILES "/edit.txt")->is_incremental);
	ck_assert(rp_find(&all, "/" FILES "/newdir")->is_dir);

	/* ---- a second run against this all.rp, nothing changed ---- */
	rp_list_t base2;
	through_text(&all, &base2);
	/* a different content behind identical stats (size, mtime, mode) must not
	 * be noticed: the run looks at stats only and reads no file */
	put_str(&f, "keep.txt", "UNCHANGED", T0);
	sink_reset(&f);
	manage_list_t m2;
	rp_list_t all2;
	pack_result_t res2;
	scan_list_t l2;
	scan(&f, &l2);
	ck_assert_int_eq(run_inc(&f, &l2, &base2, &m2, &all2, &res2, &err), 0);
	ck_assert_uint_eq(f.n_emit, 0);
	ck_assert_uint_eq(m2.n, 0);
	ck_assert_uint_eq(res2.files_ok, 0);
	ck_assert_uint_eq(res2.files_failed, 0);
	ck_assert_uint_eq(f.prog_files, l2.total_files);
	ck_assert_uint_eq(f.prog_bytes, l2.total_bytes);
	assert_all_matches_scan(&all2, &l2);
	for (size_t i = 0; i < all2.n; i++) {
		ck_assert_str_eq(all2.v[i].hash, base2.v[i].hash);
		ck_assert(!all2.v[i].is_incremental);
	}

	/* ---- a third: a touch of a file hashed last time is sent, with its hash unchanged in all.rp ---- */
	set_mtime(&f, "edit.txt", T0 + 300);
	rp_list_t base3;
	through_text(&all2, &base3);
	sink_reset(&f);
	manage_list_t m3;
	rp_list_t all3;
	pack_result_t res3;
	scan_list_t l3;
	scan(&f, &l3);
	ck_assert_int_eq(run_inc(&f, &l3, &base3, &m3, &all3, &res3, &err), 0);
	ck_assert_uint_eq(f.n_emit, 2);   /* one tar holding edit.txt, and its .rp */
	ck_assert_int_eq(rp_find(&all3, "/" FILES "/edit.txt")->mtime, T0 + 300);
	ck_assert_str_eq(rp_find(&all3, "/" FILES "/edit.txt")->hash, h);

	rp_list_free(&all3);
	rp_list_free(&base3);
	manage_list_free(&m3);
	scan_list_free(&l3);
	rp_list_free(&all2);
	rp_list_free(&base2);
	manage_list_free(&m2);
	scan_list_free(&l2);
	free(big);
	rp_list_free(&all);
	rp_list_free(&base);
	manage_list_free(&m);
	scan_list_free(&l);
	scan_list_free(&l0);
	fixture_done(&f);
}
END_TEST

START_TEST(empty_base_sends_everything)
{
	fixture_t f;
	fixture_init(&f);
	put_str(&f, "a.txt", "alpha", T0);
	put_str(&f, "sub/b.txt", "bravo", T0);
	size_t big_len = (2u << 20) + 1;
	char *big = pattern(big_len);
	put(&f, "big.dat", big, big_len, T0);
	scan_list_t l;
	scan(&f, &l);
	rp_list_t base = {0};
	manage_list_t m;
	rp_list_t all;
	pack_result_t res;
	ohb_error_t err;
	ck_assert_int_eq(run_inc(&f, &l, &base, &m, &all, &res, &err), 0);
	ck_assert_uint_eq(res.files_ok, 3);
	ck_assert_uint_eq(res.bytes, l.total_bytes);
	ck_assert_uint_eq(f.n_emit, 4);
	static tar_entry_t v[32];
	size_t n = read_tar(&f, "1763990000123_part.0.tar", v, 32);
	ck_assert_uint_eq(n, l.n - 1); /* every entry except the big file */
	rp_list_t trp;
	read_rp(&f, "1763990000123_part.0.rp", &trp);
	ck_assert_uint_eq(trp.n, l.n - 1);
	rp_list_free(&trp);
	assert_all_matches_scan(&all, &l);
	for (size_t i = 0; i < all.n; i++) {
		ck_assert(all.v[i].is_incremental);
		ck_assert_uint_eq(strlen(all.v[i].hash), all.v[i].is_dir ? 0 : 64);
	}
	/* NULL base: the same */
	sink_reset(&f);
	manage_list_t m2;
	rp_list_t all2;
	ck_assert_int_eq(run_inc(&f, &l, NULL, &m2, &all2, &res, &err), 0);
	ck_assert_uint_eq(res.files_ok, 3);
	ck_assert_uint_eq(all2.n, all.n);
	rp_list_free(&all2);
	manage_list_free(&m2);
	free(big);
	rp_list_free(&all);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

/* A split in the middle of adding an entry: each tar's report lists exactly
 * the entries of that tar. */
START_TEST(split_tars_each_get_their_own_report)
{
	fixture_t f;
	fixture_init(&f);
	char rel[64];
	for (int i = 0; i < 6010; i++) {
		snprintf(rel, sizeof rel, "many/f%04d", i);
		put_str(&f, rel, "x", T0);
	}
	scan_list_t l;
	scan(&f, &l);
	manage_list_t m;
	rp_list_t all;
	pack_result_t res;
	ck_assert_int_eq(run_inc(&f, &l, NULL, &m, &all, &res, NULL), 0);
	ck_assert_uint_eq(res.files_ok, 6010);
	ck_assert_uint_eq(f.n_emit, 4);
	ck_assert_str_eq(f.names[0], "1763990000123_part.0.tar");
	ck_assert_str_eq(f.names[1], "1763990000123_part.0.rp");
	ck_assert_str_eq(f.names[2], "1763990000123_part.1.tar");
	ck_assert_str_eq(f.names[3], "1763990000123_part.1.rp");
	ck_assert_uint_eq(m.n, 2);
	static tar_entry_t v[8];
	for (int t = 0; t < 2; t++) {
		char tar[64], rp[64];
		snprintf(tar, sizeof tar, "1763990000123_part.%d.tar", t);
		snprintf(rp, sizeof rp, "1763990000123_part.%d.rp", t);
		size_t n = read_tar(&f, tar, v, 8);
		rp_list_t r;
		read_rp(&f, rp, &r);
		ck_assert_uint_eq(r.n, n);
		ck_assert_uint_eq(n, t == 0 ? PACK_TAR_MAX_ENTRIES : l.n - PACK_TAR_MAX_ENTRIES);
		/* the first entry of each tar is in its report, not the other's */
		char key[512];
		snprintf(key, sizeof key, "%s", v[0].path);
		if (key[strlen(key) - 1] == '/')
			key[strlen(key) - 1] = '\0';
		ck_assert_ptr_nonnull(rp_find(&r, key));
		rp_list_free(&r);
	}
	rp_list_free(&all);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

START_TEST(vanished_files_are_reported_and_all_rp_keeps_the_chain)
{
	fixture_t f;
	fixture_init(&f);
	put_str(&f, "old.txt", "old", T0);
	scan_list_t l0;
	scan(&f, &l0);
	rp_list_t base;
	ck_assert_int_eq(rp_from_scan(&l0, &base, NULL), 0);
	put_str(&f, "old.txt", "changed", T0 + 1);
	put_str(&f, "new.txt", "new", T0 + 1);
	put_str(&f, "fine.txt", "fine", T0 + 1);
	scan_list_t l;
	scan(&f, &l);
	char p[512];
	sb_path(&f, "old.txt", p, sizeof p);
	ck_assert_int_eq(unlink(p), 0);
	sb_path(&f, "new.txt", p, sizeof p);
	ck_assert_int_eq(unlink(p), 0);
	manage_list_t m;
	rp_list_t all;
	pack_result_t res;
	ohb_error_t err;
	ck_assert_int_eq(run_inc(&f, &l, &base, &m, &all, &res, &err), 0);
	ck_assert_uint_eq(res.files_failed, 2);
	ck_assert_uint_eq(res.files_ok, 1);
	ck_assert_uint_eq(f.n_err, 2);
	ck_assert_int_eq(f.err_errno[0], ENOENT);
	ck_assert_str_eq(f.err_path[0], "/" FILES "/new.txt");
	ck_assert_str_eq(f.err_path[1], "/" FILES "/old.txt");
	ck_assert_uint_eq(f.prog_files, 3);
	/* the old file keeps its base row, hash cleared: compared again next time */
	const rp_entry_t *o = rp_find(&all, "/" FILES "/old.txt");
	ck_assert_ptr_nonnull(o);
	ck_assert_int_eq(o->mtime, T0);
	ck_assert_uint_eq(o->size, 3);
	ck_assert_str_eq(o->hash, "");
	/* the new one never made it into the chain */
	ck_assert_ptr_null(rp_find(&all, "/" FILES "/new.txt"));
	ck_assert_ptr_nonnull(rp_find(&all, "/" FILES "/fine.txt"));
	rp_list_free(&all);
	rp_list_free(&base);
	manage_list_free(&m);
	scan_list_free(&l);
	scan_list_free(&l0);
	fixture_done(&f);
}
END_TEST

START_TEST(cancel_and_sink_refusal)
{
	fixture_t f;
	fixture_init(&f);
	put_str(&f, "a.txt", "alpha", T0);
	put_str(&f, "b.txt", "bravo", T0);
	scan_list_t l;
	scan(&f, &l);
	manage_list_t m;
	rp_list_t all;
	pack_result_t res;
	ohb_error_t err;
	f.cancel_after = 3;
	ck_assert_int_eq(run_inc(&f, &l, NULL, &m, &all, &res, &err), 0);
	ck_assert(res.stopped);
	ck_assert_uint_eq(f.n_emit, 0); /* the open tar is dropped */
	ck_assert_uint_eq(all.n, 0);
	manage_list_free(&m);

	sink_reset(&f);
	f.cancel_after = 0;
	f.emit_rc = OHB_E_NOSPC;
	ck_assert_int_eq(run_inc(&f, &l, NULL, &m, &all, &res, &err), OHB_E_NOSPC);
	ck_assert_uint_eq(all.n, 0);
	manage_list_free(&m);
	scan_list_free(&l);
	fixture_done(&f);
}
END_TEST

extern Suite *incremental_suite(void);

/* one line: the Makefile finds suites with ^Suite \*x_suite(void) */
/* clang-format off */
Suite *incremental_suite(void)
/* clang-format on */
{
	Suite *s = suite_create("incremental");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, rp_from_scan_lists_everything_without_hashes);
	tcase_add_test(tc, exactly_the_changes_are_sent);
	tcase_add_test(tc, empty_base_sends_everything);
	tcase_add_test(tc, split_tars_each_get_their_own_report);
	tcase_add_test(tc, vanished_files_are_reported_and_all_rp_keeps_the_chain);
	tcase_add_test(tc, cancel_and_sink_refusal);
	suite_add_tcase(s, tc);
	return s;
}
