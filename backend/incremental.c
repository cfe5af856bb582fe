/*
 * incremental — what an incremental backup sends (REFERENCE.md "Incremental
 * backup"; the contract is incremental.h).
 *
 * The client hands us the all.rp of its previous backup (the base). We walk
 * the current scan in order and sort each entry into one of three cases:
 *
 *   - unchanged: the base has a row of the same kind with the same size,
 *     mtime (seconds) and mode. Nothing is opened: an incremental of an
 *     unchanged bundle costs only the scan's stats and a binary search per
 *     entry, so 50 000 files take milliseconds. The base row's hash is carried
 *     into all.rp.
 *   - changed: size, mtime or mode differ. The file is opened (safely, by the
 *     pack writer of packer.c), hashed for all.rp, and sent. OpenHarmony
 *     skips a file whose hash did not change (a touch); we send it, because
 *     the tar entry is the only thing that carries its new mtime to a
 *     restore: without it a restored chain would hold the older mtime.
 *   - sent: new files, files whose content changed, and files or directories
 *     whose mode changed. incremental.h words the mode rule for files as a
 *     trigger for the hash check; we send a chmod-only change, because the
 *     tar entry is what carries the mode to a restore, as for directories.
 *
 * A changed file up to 2 MiB is read once, into memory: the hash is computed
 * on that buffer and, when the file is sent, the same bytes go into the tar
 * (a file that changes while we read it is reported, not half-sent). A bigger
 * file is hashed by reading it, then its fd is rewound and handed raw to the
 * sink (the sink copies it; we never do).
 *
 * The output is the full packer's (same writer, same tar rules, same manage
 * entries), with two hooks: tars are named "<now_ms>_part.<N>.tar", and right
 * behind each tar goes "<now_ms>_part.<N>.rp" listing what it holds, behind
 * each big file "<name>.rp", a one-row report. The writer may close a tar in
 * the middle of adding an entry (the 100 MiB / 6000 entries split), so rows are
 * added to the current tar's list only after the writer accepted the entry:
 * when the "tar emitted" hook fires, the list holds exactly that tar's rows.
 *
 * all.rp (all_out) lists every current file and directory, except a file
 * that could not be read now: all.rp describes what the chain of backups
 * holds, so such a file keeps its base row with the hash cleared (it will be
 * compared again next time), or is left out when it is new (next time it is
 * new again). Progress counts every file looked at, sent or not, so a run
 * with nothing to send still goes to 100 %.
 *
 * On cancel (sink->cancelled, polled between entries) or error all_out is
 * left empty; manage_out keeps the entries of the files already emitted.
 */
#include "incremental.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"
#include "sha256.h"

#define INC_BUF_SIZE (PACK_BIG_FILE_THRESHOLD + 1) /* a small file and one probe byte */

typedef struct inc {
	const pack_sink_t *sink;
	const char *tmp_dir;
	int64_t now_ms;
	ohb_error_t *err;
	pack_result_t *res;
	rp_list_t tar_rows; /* what the current tar holds, for its .rp */
	rp_entry_t big_row; /* the big file being sent (path borrowed) */
	char big_hash[65];  /* big_row.hash */
	uint8_t *buf;       /* INC_BUF_SIZE: a small file's content, or a read chunk */
	char *key;          /* the current entry's path without a trailing '/' */
	size_t key_cap;
} inc_t;

/* ---- reports behind tars and big files ---------------------------------------- */

static int
emit_report(inc_t *in, const char *name, rp_list_t *rows)
{
	rp_sort(rows);
	char *text = NULL;
	size_t len = 0;
	int fd = -1;
	int rc = rp_write(rows, &text, &len, in->err);
	if (rc == 0)
		rc = fsu_anon_fd(in->tmp_dir, text, len, &fd, in->err);
	free(text);
	if (rc != 0)
		return rc;
	return in->sink->emit(in->sink->ctx, name, fd, in->err);
}

static void
hook_tar_name(void *ctx, unsigned index, char *buf, size_t bufsize)
{
	const inc_t *in = ctx;
	snprintf(buf, bufsize, "%" PRId64 "_part.%u.tar", in->now_ms, index);
}

static int
hook_emitted(void *ctx, const char *file_name, bool is_tar, ohb_error_t *err)
{
	inc_t *in = ctx;
	char name[96];
	(void)err; /* in->err is the same object */
	if (is_tar) {
		/* "<ms>_part.<N>.tar" -> "<ms>_part.<N>.rp" */
		size_t n = strlen(file_name);
		if (fsu_is_tar_name(file_name))
			n -= 4;
		snprintf(name, sizeof name, "%.*s.rp", (int)n, file_name);
		int rc = emit_report(in, name, &in->tar_rows);
		rp_list_free(&in->tar_rows);
		return rc;
	}
	snprintf(name, sizeof name, "%s.rp", file_name);
	rp_list_t one = {.v = &in->big_row, .n = 1, .cap = 1};
	return emit_report(in, name, &one);
}

/* ---- one entry -------------------------------------------------------------------- */

/* *key = path without the trailing '/' of a directory, in a buffer grown as needed. */
static int
path_key(const char *path, char **key, size_t *cap, ohb_error_t *err)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n + 1 > *cap) {
		size_t c = *cap ? *cap : 256;
		while (c < n + 1)
			c *= 2;
		char *k = realloc(*key, c);
		if (!k)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory while listing %.200s", path);
		*key = k;
		*cap = c;
	}
	memcpy(*key, path, n);
	(*key)[n] = '\0';
	return 0;
}

static void
row_from_stat(rp_entry_t *r, const char *path, uint32_t mode, bool is_dir, uint64_t size, int64_t mtime)
{
	memset(r, 0, sizeof *r);
	r->path = path; /* borrowed: rp_add copies it */
	r->hash = "";
	r->mode = mode;
	r->is_dir = is_dir;
	r->size = is_dir ? 0 : size;
	r->mtime = mtime;
}

static void
file_failed(inc_t *in, const char *path, int errnum)
{
	in->res->files_failed++;
	if (in->sink->file_error)
		in->sink->file_error(in->sink->ctx, path, errnum);
}

/* all.rp for an entry we could not send: the chain still holds the base's
 * version, so keep that row with its hash cleared; nothing when it is new. */
static int
keep_base_row(const rp_entry_t *base_row, rp_list_t *all, ohb_error_t *err)
{
	if (!base_row)
		return 0;
	rp_entry_t r = *base_row;
	r.hash = "";
	r.is_incremental = false;
	return rp_add(all, &r, err);
}

static int
do_dir(inc_t *in, pack_writer_t *w, const scan_entry_t *e, const rp_entry_t *base_row, rp_list_t *all)
{
	rp_entry_t r;
	row_from_stat(&r, in->key, e->mode, true, 0, e->mtime_sec);
	/* A directory entry costs one tar header: send it whenever its mode or mtime
	 * moved (an mtime moves when entries come and go), so a restored chain gets
	 * directory mtimes right too. */
	bool send = !base_row || !base_row->is_dir || base_row->mode != e->mode || base_row->mtime != e->mtime_sec;
	if (send) {
		bool added;
		int rc = pack_writer_add_dir(w, e, &added);
		if (rc != 0)
			return rc;
		if (!added)
			return keep_base_row(base_row, all, in->err);
		r.is_incremental = true;
		if ((rc = rp_add(&in->tar_rows, &r, in->err)) != 0)
			return rc;
	}
	return rp_add(all, &r, in->err);
}

/* Reads exactly st_size bytes of a small file into in->buf. Returns 0, or an
 * errno (EIO when the size changed while reading). */
static int
read_small(inc_t *in, int fd, uint64_t size)
{
	uint64_t got = 0;
	while (got < size + 1) {
		ssize_t n = read(fd, in->buf + got, (size_t)(size + 1 - got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			break;
		got += (uint64_t)n;
	}
	return got == size ? 0 : EIO;
}

/* SHA-256 of a big file from offset 0, in INC_BUF_SIZE reads. 0 or an errno. */
static int
hash_big(inc_t *in, int fd, char hex[65])
{
	sha256_ctx_t c;
	sha256_init(&c);
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t n = read(fd, in->buf, INC_BUF_SIZE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno;
		if (n == 0)
			break;
		sha256_update(&c, in->buf, (size_t)n);
	}
	uint8_t d[SHA256_DIGEST_LEN];
	sha256_final(&c, d);
	sha256_hex(d, hex);
	return lseek(fd, 0, SEEK_SET) == 0 ? 0 : errno;
}

static int
do_file(inc_t *in, pack_writer_t *w, const scan_entry_t *e, const rp_entry_t *base_row, rp_list_t *all)
{
	if (base_row && base_row->is_dir)
		base_row = NULL; /* was a directory: this file is new */
	rp_entry_t r;
	if (base_row && base_row->size == e->size && base_row->mtime == e->mtime_sec &&
	    base_row->mode == e->mode) {
		row_from_stat(&r, in->key, e->mode, false, e->size, e->mtime_sec);
		r.hash = base_row->hash;
		return rp_add(all, &r, in->err);
	}

	int fd;
	struct stat st;
	int rc = pack_writer_open(w, e, &fd, &st);
	if (rc != 0)
		return rc;
	if (fd < 0)
		return keep_base_row(base_row, all, in->err);
	row_from_stat(&r, in->key, (uint32_t)st.st_mode, false, (uint64_t)st.st_size,
	              (int64_t)st.st_mtim.tv_sec);
	char hash[65] = "";
	r.hash = hash;
	bool small = (uint64_t)st.st_size <= PACK_BIG_FILE_THRESHOLD;
	int en = small ? read_small(in, fd, (uint64_t)st.st_size) : hash_big(in, fd, hash);
	if (en != 0) {
		close(fd);
		file_failed(in, e->path, en);
		return keep_base_row(base_row, all, in->err);
	}
	if (small)
		rp_sha256_hex(in->buf, (size_t)st.st_size, hash);

	/* size, mtime or mode moved (else we returned above): send, even when the
	 * hash is unchanged, so a restore gets the new mtime (see the top). */
	bool send = !base_row || base_row->mode != r.mode || base_row->mtime != r.mtime ||
	            base_row->hash[0] == '\0' || strcmp(base_row->hash, r.hash) != 0;
	if (!send) {
		close(fd);
		return rp_add(all, &r, in->err);
	}
	bool added;
	r.is_incremental = true;
	if (small) {
		close(fd);
		rc = pack_writer_add_bytes(w, e, &st, in->buf, &added);
	} else {
		in->big_row = r; /* its .rp goes out from hook_emitted */
		memcpy(in->big_hash, hash, sizeof in->big_hash);
		in->big_row.hash = in->big_hash;
		rc = pack_writer_add_file(w, e, fd, &st, &added);
	}
	if (rc != 0)
		return rc;
	if (!added)
		return keep_base_row(base_row, all, in->err);
	if (small && (rc = rp_add(&in->tar_rows, &r, in->err)) != 0)
		return rc;
	return rp_add(all, &r, in->err);
}

/* ---- public ----------------------------------------------------------------------- */

int
inc_pack_bundle(const reg_bundle_t *b, const scan_list_t *list, const rp_list_t *base, int64_t now_ms,
                const char *tmp_dir, const pack_sink_t *sink, manage_list_t *manage_out, rp_list_t *all_out,
                pack_result_t *result, ohb_error_t *err)
{
	memset(all_out, 0, sizeof *all_out);
	inc_t in = {.sink = sink, .tmp_dir = tmp_dir, .now_ms = now_ms, .err = err, .res = result};
	pack_hooks_t hooks = {&in, hook_tar_name, hook_emitted};
	pack_writer_t *w = NULL;
	int rc = pack_writer_new(b, tmp_dir, sink, &hooks, manage_out, result, err, &w);
	if (rc != 0)
		return rc;
	in.buf = malloc(INC_BUF_SIZE);
	if (!in.buf) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory while packing %s", b->name);
		goto out;
	}
	/* all.rp gets a row per entry at most: sized once, not doubled past it */
	if ((rc = rp_reserve(all_out, list->n, err)) != 0)
		goto out;

	uint64_t done_bytes = 0, done_files = 0;
	for (size_t i = 0; i < list->n; i++) {
		if (sink->cancelled && sink->cancelled(sink->ctx)) {
			result->stopped = true;
			goto out; /* the unfinished tar is dropped with the writer */
		}
		const scan_entry_t *e = &list->v[i];
		if ((rc = path_key(e->path, &in.key, &in.key_cap, err)) != 0)
			goto out;
		const rp_entry_t *base_row = base ? rp_find(base, in.key) : NULL;
		rc = e->is_dir ? do_dir(&in, w, e, base_row, all_out) : do_file(&in, w, e, base_row, all_out);
		if (rc != 0)
			goto out;
		if (!e->is_dir) {
			done_files++;
			done_bytes += e->size;
			if (sink->progress)
				sink->progress(sink->ctx, done_bytes, done_files);
		}
	}
	rc = pack_writer_finish(w);
	if (rc == 0) {
		rp_sort(all_out);
		if (sink->progress)
			sink->progress(sink->ctx, done_bytes, done_files);
	}
out:
	pack_writer_free(w);
	if (rc != 0 || result->stopped)
		rp_list_free(all_out);
	rp_list_free(&in.tar_rows);
	free(in.buf);
	free(in.key);
	return rc;
}

int
rp_from_scan(const scan_list_t *list, rp_list_t *out, ohb_error_t *err)
{
	memset(out, 0, sizeof *out);
	char *key = NULL;
	size_t cap = 0;
	int rc = rp_reserve(out, list->n, err);
	for (size_t i = 0; i < list->n && rc == 0; i++) {
		const scan_entry_t *e = &list->v[i];
		if ((rc = path_key(e->path, &key, &cap, err)) != 0)
			break;
		rp_entry_t r;
		row_from_stat(&r, key, e->mode, e->is_dir, e->size, e->mtime_sec);
		rc = rp_add(out, &r, err);
	}
	free(key);
	if (rc == 0)
		rp_sort(out);
	else
		rp_list_free(out);
	return rc;
}
