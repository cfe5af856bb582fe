/*
 * packer — turns a scan list into the files a backup sends (REFERENCE.md
 * "Backup: what a bundle's backup consists of"):
 *
 *   - regular files up to 2 MiB and every directory go into part.<N>.tar,
 *     written by libarchive in GNU tar format (ustar headers, plus a GNU
 *     ././@LongLink record for names longer than the 100-byte name field), with
 *     the absolute sandbox path as the entry name ("/data/.../a.txt",
 *     directories ending in '/');
 *   - a tar is closed and handed over once it holds 6000 entries or the next
 *     entry would take it past 100 MiB;
 *   - each file over 2 MiB is not copied at all: the fd we opened on it is
 *     handed to the sink (zero copy) under its hash name (pack_big_file_name).
 *
 * Tar entries carry uid/gid 0 and no user/group names: a restore writes files
 * as the service's own user, and ids of one machine mean nothing on another.
 * Mode (permission bits), size and mtime come from the file; ustar keeps
 * whole seconds only.
 *
 * Opening files safely. Every file is opened relative to its mount's directory
 * fd, one component at a time: each parent with O_PATH|O_DIRECTORY|O_NOFOLLOW,
 * the file itself with O_NOFOLLOW, so a directory swapped for a symlink
 * between scan and pack cannot lead outside the sandbox. O_NONBLOCK guards
 * against a file replaced by a FIFO (an open would block forever); anything
 * not a regular file after fstat is refused. The parent directories stay open
 * on a small stack and, the list being sorted, consecutive files reuse them:
 * only the components that differ from the previous file's are opened.
 *
 * Files that cannot be packed (vanished, unreadable, replaced) go to
 * sink->file_error and count as failed; the backup goes on. A file whose size
 * changes while it is read still gets exactly the bytes its header promised
 * (zero padding or truncation, so the tar stays well formed) and is reported
 * with EIO and counted as failed, since its copy is not a snapshot.
 *
 * Tar output goes through our own write callback into an unlinked temp file
 * (fsu_anon_fd), in 256 KiB blocks, and we keep the errno of a failed write so
 * that a full temp dir says 13900025 rather than "tar failed".
 *
 * All of this lives in a pack writer (packer.h) that takes one entry at a
 * time; pack_bundle is the loop over the whole scan list. incremental.c uses
 * the same writer for the entries that changed, with hooks to name its tars
 * "<ms>_part.<N>.tar" and to send a report behind each tar and big file.
 */
#include "packer.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "errors.h"
#include "fsutil.h"

#define PACK_BUF_SIZE (256u * 1024) /* file reads and tar blocks */
#define PACK_PATH_MAX 4096
#define TAR_NAME_FIELD 100 /* ustar name field; names this long or longer get a LongLink record */

typedef struct tar_out {
	struct archive *a;
	int fd;
	unsigned index; /* N of part.N.tar */
	char name[64];  /* its file name (pack_hooks_t.tar_name) */
	size_t entries;
	uint64_t est;    /* bytes the tar holds so far (headers + padded data) */
	int write_errno; /* errno of the last failed write, for the error code */
	bool discard;    /* dropping this tar: the write callback swallows bytes */
	char *obuf;      /* our output block (pack_writer_t.obuf): libarchive writes unblocked */
	size_t olen;     /* bytes in it not yet written to fd */
} tar_out_t;

/* The state of safe opening (see above): the mounts' directory fds and the
 * open parent directories of the last file opened. One per thread. */
typedef struct opener {
	const reg_bundle_t *b;
	int *mount_fd;    /* per mount: -1 not opened yet, >= 0 open */
	int *mount_errno; /* per mount: why it could not be opened (0: not tried/ok) */

	/* open parent directories of the previous file (relative to mount `stack_mount`) */
	uint32_t stack_mount;
	char stack_path[PACK_PATH_MAX + 2];
	size_t stack_len;
	int *stack_fd;
	size_t *stack_end; /* stack_end[i]: length of stack_path up to component i */
	size_t depth, stack_cap;
} opener_t;

typedef struct pack_writer {
	const reg_bundle_t *b;
	const pack_sink_t *sink;
	pack_hooks_t hooks;
	const char *tmp_dir;
	manage_list_t *manage;
	pack_result_t *res;
	ohb_error_t *err;

	opener_t op;

	tar_out_t tar;
	bool tar_open;
	unsigned next_index;
	struct archive_entry *ae;
	char *buf;
	char *obuf; /* PACK_BUF_SIZE: the tar's output block */
} pack_writer_t;

/* ---- big-file names ------------------------------------------------------ */

static bool
ext_char_ok(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

void
pack_big_file_name(const char *path, unsigned counter, char *buf, size_t bufsize)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a 64 offset basis */
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		h ^= *p;
		h *= 1099511628211ull; /* FNV-1a 64 prime */
	}
	if (counter > 0) {
		char suffix[16];
		snprintf(suffix, sizeof suffix, "#%u", counter);
		for (const unsigned char *p = (const unsigned char *)suffix; *p; p++) {
			h ^= *p;
			h *= 1099511628211ull;
		}
	}
	/* The extension: after the last '.' of the last component, when that
	 * '.' does not start the name (".profile" has none) and the rest is a
	 * valid, non-empty run of [0-9A-Za-z_]. */
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	size_t ext_len = 0;
	if (dot && dot != base && dot[1] != '\0') {
		ext_len = strlen(dot + 1);
		for (size_t i = 0; i < ext_len; i++)
			if (!ext_char_ok(dot[1 + i]))
				ext_len = 0;
	}
	if (ext_len > 0 && 16 + 1 + ext_len + 1 <= bufsize)
		snprintf(buf, bufsize, "%016" PRIx64 ".%s", h, dot + 1);
	else if (bufsize > 0)
		snprintf(buf, bufsize, "%016" PRIx64, h);
}

static bool
name_used(const manage_list_t *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->v[i].file_name, name) == 0)
			return true;
	return false;
}

/* ---- safe opening ---------------------------------------------------------- */

static void
opener_free(opener_t *op);

static int
opener_init(opener_t *op, const reg_bundle_t *b)
{
	memset(op, 0, sizeof *op);
	op->b = b;
	op->stack_mount = UINT32_MAX;
	size_t n = b->n_mounts ? b->n_mounts : 1;
	op->mount_fd = malloc(n * sizeof *op->mount_fd);
	op->mount_errno = calloc(n, sizeof *op->mount_errno);
	if (op->mount_fd)
		for (size_t i = 0; i < n; i++)
			op->mount_fd[i] = -1;
	if (!op->mount_fd || !op->mount_errno) {
		opener_free(op);
		return ENOMEM;
	}
	return 0;
}

static void
stack_pop_to(opener_t *pk, size_t keep)
{
	while (pk->depth > keep)
		close(pk->stack_fd[--pk->depth]);
	pk->stack_len = keep ? pk->stack_end[keep - 1] : 0;
	pk->stack_path[pk->stack_len] = '\0';
}

static int
stack_push(opener_t *pk, int fd, size_t end)
{
	if (pk->depth == pk->stack_cap) {
		size_t cap = pk->stack_cap ? pk->stack_cap * 2 : 16;
		int *f = realloc(pk->stack_fd, cap * sizeof *f);
		if (!f)
			return ENOMEM;
		pk->stack_fd = f;
		size_t *e = realloc(pk->stack_end, cap * sizeof *e);
		if (!e)
			return ENOMEM;
		pk->stack_end = e;
		pk->stack_cap = cap;
	}
	pk->stack_fd[pk->depth] = fd;
	pk->stack_end[pk->depth] = end;
	pk->depth++;
	return 0;
}

/* The directory fd of mount m, opened on first use (the mount root may be a
 * symlink: it is configuration, as in the scanner). Returns -1 with errno. */
static int
mount_dir_fd(opener_t *pk, uint32_t m)
{
	if (pk->mount_fd[m] >= 0)
		return pk->mount_fd[m];
	if (pk->mount_errno[m] != 0) {
		errno = pk->mount_errno[m];
		return -1;
	}
	int fd = open(pk->b->mounts[m].dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		pk->mount_errno[m] = errno;
		return -1;
	}
	pk->mount_fd[m] = fd;
	return fd;
}

/* Opens rel (relative to mount m) for reading, never through a symlink.
 * Returns the fd, or -1 with errno. */
static int
open_in_mount(opener_t *pk, uint32_t m, const char *rel)
{
	int root = mount_dir_fd(pk, m);
	if (root < 0)
		return -1;
	if (pk->stack_mount != m) {
		stack_pop_to(pk, 0);
		pk->stack_mount = m;
	}
	const char *slash = strrchr(rel, '/');
	size_t parent_len = slash ? (size_t)(slash - rel) : 0;
	const char *leaf = slash ? slash + 1 : rel;
	if (parent_len > PACK_PATH_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}

	/* keep the open levels that are leading components of the new parent */
	size_t common = 0;
	while (common < pk->stack_len && common < parent_len && pk->stack_path[common] == rel[common])
		common++;
	size_t keep = 0;
	while (keep < pk->depth) {
		size_t end = pk->stack_end[keep];
		if (end > common || (end < parent_len && rel[end] != '/'))
			break;
		keep++;
	}
	stack_pop_to(pk, keep);

	/* open the remaining components */
	size_t pos = pk->stack_len ? pk->stack_len + 1 : 0;
	while (pos < parent_len) {
		const char *c = rel + pos;
		const char *ce = memchr(c, '/', parent_len - pos);
		size_t cl = ce ? (size_t)(ce - c) : parent_len - pos;
		char comp[PACK_PATH_MAX + 1];
		memcpy(comp, c, cl);
		comp[cl] = '\0';
		int dir = pk->depth ? pk->stack_fd[pk->depth - 1] : root;
		int fd = openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -1;
		int e = stack_push(pk, fd, pos + cl);
		if (e != 0) {
			close(fd);
			errno = e;
			return -1;
		}
		if (pk->stack_len)
			pk->stack_path[pk->stack_len++] = '/';
		memcpy(pk->stack_path + pk->stack_len, comp, cl);
		pk->stack_len += cl;
		pk->stack_path[pk->stack_len] = '\0';
		pos += cl + 1;
	}
	int dir = pk->depth ? pk->stack_fd[pk->depth - 1] : root;
	return openat(dir, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
}

static void
opener_free(opener_t *op)
{
	stack_pop_to(op, 0);
	if (op->mount_fd)
		for (size_t i = 0; i < op->b->n_mounts; i++)
			if (op->mount_fd[i] >= 0)
				close(op->mount_fd[i]);
	free(op->mount_fd);
	free(op->mount_errno);
	free(op->stack_fd);
	free(op->stack_end);
	memset(op, 0, sizeof *op);
}

/* The part of an entry's sandbox path below its mount's prefix ("" for the
 * mount point), or NULL when the entry does not belong to that mount. */
static const char *
entry_rel(const reg_bundle_t *b, const scan_entry_t *e)
{
	if (e->mount >= b->n_mounts)
		return NULL;
	const char *p = e->path;
	const char *pre = b->mounts[e->mount].sandbox_prefix;
	while (*pre == '/')
		pre++;
	while (*p == '/')
		p++;
	size_t pl = strlen(pre);
	while (pl > 0 && pre[pl - 1] == '/')
		pl--;
	if (pl > 0) {
		if (strncmp(p, pre, pl) != 0 || (p[pl] != '/' && p[pl] != '\0'))
			return NULL;
		p += pl;
		while (*p == '/')
			p++;
	}
	return p;
}

#define OPEN_FAILED (-1) /* *errnum: why; this file is reported and skipped */
#define OPEN_FATAL (-2)  /* *errnum: ENOMEM/EMFILE/ENFILE; the pack must stop */

/* Opens e's file (never through a symlink, O_NONBLOCK so that a FIFO put
 * there cannot block us) and fstats it. Returns the fd of a regular file,
 * still O_NONBLOCK (no effect on a regular file's reads), or OPEN_FAILED /
 * OPEN_FATAL with *errnum. */
static int
open_entry(opener_t *op, const scan_entry_t *e, struct stat *st, int *errnum)
{
	const char *rel = entry_rel(op->b, e);
	if (!rel || !*rel) {
		*errnum = EINVAL;
		return OPEN_FAILED;
	}
	int fd = open_in_mount(op, e->mount, rel);
	if (fd < 0) {
		*errnum = errno;
		return *errnum == ENOMEM || *errnum == EMFILE || *errnum == ENFILE ? OPEN_FATAL : OPEN_FAILED;
	}
	*errnum = fstat(fd, st) != 0 ? errno : !S_ISREG(st->st_mode) ? EINVAL : 0;
	if (*errnum != 0) {
		close(fd);
		return OPEN_FAILED;
	}
	return fd;
}

/* The O_NONBLOCK of open_entry was only for the open: fds we hand on or
 * stream from are put back in blocking mode. */
static void
set_blocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

/* ---- sink helpers -------------------------------------------------------- */

static void
report_file_error(pack_writer_t *pk, const char *path, int errnum)
{
	pk->res->files_failed++;
	if (pk->sink->file_error)
		pk->sink->file_error(pk->sink->ctx, path, errnum);
}

static void
report_progress(pack_writer_t *pk)
{
	if (pk->sink->progress)
		pk->sink->progress(pk->sink->ctx, pk->res->bytes, pk->res->files_ok);
}

/* ---- tar output ------------------------------------------------------------ */

/* The tar's bytes go through our own block of PACK_BUF_SIZE rather than
 * libarchive's, so that tar_long_name can put a record of its own between two
 * entries. Returns 0, or -1 with errno (kept in t->write_errno). */
static int
tar_flush(tar_out_t *t)
{
	if (t->olen > 0 && !t->discard && fsu_write_all(t->fd, t->obuf, t->olen) != 0) {
		t->write_errno = errno;
		return -1;
	}
	t->olen = 0;
	return 0;
}

/* Whole blocks only reach the file (page-aligned writes of PACK_BUF_SIZE, as
 * libarchive's own blocking made them), but for the last. */
static int
tar_put(tar_out_t *t, const void *buf, size_t len)
{
	if (t->discard)
		return 0;
	const char *p = buf;
	while (len > 0) {
		size_t n = PACK_BUF_SIZE - t->olen < len ? PACK_BUF_SIZE - t->olen : len;
		memcpy(t->obuf + t->olen, p, n);
		t->olen += n;
		p += n;
		len -= n;
		if (t->olen == PACK_BUF_SIZE && tar_flush(t) != 0)
			return -1;
	}
	return 0;
}

static la_ssize_t
tar_write_cb(struct archive *a, void *ctx, const void *buf, size_t len)
{
	tar_out_t *t = ctx;
	if (tar_put(t, buf, len) != 0) {
		archive_set_error(a, t->write_errno, "write to the temp file failed: %s", strerror(t->write_errno));
		return -1;
	}
	return (la_ssize_t)len;
}

/* The error for a fatal libarchive failure: 13900025 for a full disk, else 13500006. */
static int
tar_fail(pack_writer_t *pk, const char *what)
{
	int e = pk->tar.write_errno;
	const char *name = pk->tar.name;
	if (e == ENOSPC || e == EDQUOT)
		return ohb_fail_errno(pk->err, e, "cannot write %s of %s (%s)", name, pk->b->name, what);
	const char *why = pk->tar.a ? archive_error_string(pk->tar.a) : NULL;
	return ohb_fail(pk->err, OHB_E_TAR, "cannot write %s of %s (%s): %s", name, pk->b->name, what,
	                why ? why : "libarchive error");
}

static void
tar_discard(pack_writer_t *pk)
{
	if (!pk->tar_open)
		return;
	/* Not archive_write_fail(): in libarchive 3.6 a free in the FATAL state
	 * skips the close that releases the block buffer. A close works in any
	 * state; with `discard` set it writes nothing. */
	pk->tar.discard = true;
	archive_write_close(pk->tar.a);
	archive_write_free(pk->tar.a);
	close(pk->tar.fd);
	memset(&pk->tar, 0, sizeof pk->tar);
	pk->tar_open = false;
}

static int
tar_begin(pack_writer_t *pk)
{
	memset(&pk->tar, 0, sizeof pk->tar);
	pk->tar.obuf = pk->obuf;
	pk->tar.index = pk->next_index;
	if (pk->hooks.tar_name)
		pk->hooks.tar_name(pk->hooks.ctx, pk->tar.index, pk->tar.name, sizeof pk->tar.name);
	else
		snprintf(pk->tar.name, sizeof pk->tar.name, "part.%u.tar", pk->tar.index);
	int fd = -1;
	int rc = fsu_anon_fd(pk->tmp_dir, NULL, 0, &fd, pk->err);
	if (rc != 0) {
		/* keep fsutil's sentence; only a full disk keeps its own code */
		if (rc != OHB_E_NOSPC) {
			rc = OHB_E_TAR;
			if (pk->err)
				pk->err->code = rc;
		}
		return rc;
	}
	pk->tar.fd = fd;
	struct archive *a = archive_write_new();
	if (!a) {
		close(fd);
		return ohb_fail(pk->err, OHB_E_NOMEM, "out of memory while creating a tar");
	}
	pk->tar.a = a;
	/* unblocked: our write callback blocks the output (tar_put) */
	if (archive_write_set_format_gnutar(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
	    archive_write_open(a, &pk->tar, NULL, tar_write_cb, NULL) != ARCHIVE_OK) {
		rc = tar_fail(pk, "setting up");
		archive_write_free(a);
		close(fd);
		memset(&pk->tar, 0, sizeof pk->tar);
		return rc;
	}
	pk->tar_open = true;
	pk->next_index++;
	return 0;
}

/* Closes the current tar, indexes it and hands it to the sink. */
static int
tar_finish(pack_writer_t *pk)
{
	if (!pk->tar_open)
		return 0;
	if (archive_write_close(pk->tar.a) != ARCHIVE_OK || tar_flush(&pk->tar) != 0) {
		int rc = tar_fail(pk, "closing");
		tar_discard(pk);
		return rc;
	}
	archive_write_free(pk->tar.a);
	pk->tar.a = NULL;
	int fd = pk->tar.fd;
	pk->tar_open = false;
	char name[sizeof pk->tar.name];
	memcpy(name, pk->tar.name, sizeof name);
	uint64_t entries = pk->tar.entries;
	struct stat st;
	if (fstat(fd, &st) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
		int rc = ohb_fail_errno(pk->err, errno, "cannot rewind %s of %s", name, pk->b->name);
		close(fd);
		return rc;
	}
	/* The tar's own stat; its mode reads 0644 whatever our private temp file had. */
	manage_entry_t me = {
	    .file_name = name,
	    .path = "",
	    .size = (uint64_t)st.st_size,
	    .mode = S_IFREG | 0644,
	    .mtime_sec = (int64_t)st.st_mtim.tv_sec,
	    .mtime_nsec = (int64_t)st.st_mtim.tv_nsec,
	    .is_user_tar = false,
	    .is_big_file = false,
	    .has_tar_entries = true,
	    .tar_entries = entries,
	};
	int rc = manage_add(pk->manage, &me, pk->err);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	rc = pk->sink->emit(pk->sink->ctx, name, fd, pk->err);
	if (rc == 0 && pk->hooks.emitted)
		rc = pk->hooks.emitted(pk->hooks.ctx, name, true, pk->err);
	return rc;
}

static uint64_t
round512(uint64_t n)
{
	return (n + 511) & ~(uint64_t)511;
}

/* Makes sure a tar is open with room for an entry of est bytes. */
static int
tar_make_room(pack_writer_t *pk, uint64_t est)
{
	if (pk->tar_open && (pk->tar.entries >= PACK_TAR_MAX_ENTRIES ||
	                     (pk->tar.entries > 0 && pk->tar.est + est + 1024 > PACK_TAR_MAX_BYTES))) {
		int rc = tar_finish(pk);
		if (rc != 0)
			return rc;
	}
	return pk->tar_open ? 0 : tar_begin(pk);
}

/* A GNU long-name record (a ././@LongLink header of type 'L', then the name
 * and a NUL) for a name of exactly TAR_NAME_FIELD bytes, which libarchive
 * stores in the header's name field with no NUL after it: correct ustar, but
 * OpenHarmony's reader takes the name up to the first NUL and so reads the
 * mode field into it. GNU tar writes this record from 100 bytes on, as
 * OpenHarmony's writer does; libarchive from 101. Readers that do not need it
 * read the same name either way. */
static int
tar_long_name(pack_writer_t *pk, const char *name, size_t len)
{
	unsigned char h[512];
	memset(h, 0, sizeof h);
	memcpy(h, "././@LongLink", 13);
	memcpy(h + 100, "0000644", 7);                         /* mode */
	memcpy(h + 108, "0000000", 7);                         /* uid */
	memcpy(h + 116, "0000000", 7);                         /* gid */
	snprintf((char *)h + 124, 12, "%011o", (unsigned)(len + 1)); /* size, with the NUL */
	memcpy(h + 136, "00000000000", 11);                    /* mtime */
	h[156] = 'L';
	memcpy(h + 257, "ustar  ", 8);                         /* GNU magic and version, with its NUL */
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (size_t i = 0; i < sizeof h; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);             /* six digits, NUL, and the space left */
	unsigned char data[512];
	memset(data, 0, sizeof data);
	memcpy(data, name, len);                               /* len < 512: the NUL and padding follow */
	if (tar_put(&pk->tar, h, sizeof h) != 0 || tar_put(&pk->tar, data, sizeof data) != 0)
		return tar_fail(pk, name);
	return 0;
}

/* Writes a header. Returns 0, -1 when this entry alone cannot be stored (the
 * archive stays usable; ARCHIVE_FAILED), or a fatal code. */
static int
tar_header(pack_writer_t *pk, const char *path, uint32_t mode, uint64_t size, int64_t sec, int64_t nsec)
{
	size_t plen = strlen(path);
	/* the name as the header holds it: libarchive ends a directory's with '/' */
	bool slash = S_ISDIR(mode) && (plen == 0 || path[plen - 1] != '/');
	size_t nlen = plen + (slash ? 1 : 0);
	uint64_t est = 512 + round512(size);
	if (nlen >= TAR_NAME_FIELD)
		est += 512 + round512(nlen + 1);
	int rc = tar_make_room(pk, est);
	if (rc != 0)
		return rc;
	struct archive_entry *ae = pk->ae;
	archive_entry_clear(ae);
	archive_entry_copy_pathname(ae, path);
	archive_entry_set_filetype(ae, S_ISDIR(mode) ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(ae, mode & 07777);
	archive_entry_set_size(ae, S_ISDIR(mode) ? 0 : (la_int64_t)size);
	archive_entry_set_mtime(ae, (time_t)sec, (long)nsec);
	archive_entry_set_uid(ae, 0);
	archive_entry_set_gid(ae, 0);
	if (nlen == TAR_NAME_FIELD) {
		/* libarchive pads the previous entry's data when the next entry
		 * begins: have it do so now, before our record */
		if (archive_write_finish_entry(pk->tar.a) < ARCHIVE_WARN)
			return tar_fail(pk, path);
		char name[TAR_NAME_FIELD + 1];
		snprintf(name, sizeof name, "%s%s", path, slash ? "/" : "");
		if ((rc = tar_long_name(pk, name, nlen)) != 0)
			return rc;
	}
	int r = archive_write_header(pk->tar.a, ae);
	if (r == ARCHIVE_FAILED)
		return -1;
	if (r < ARCHIVE_WARN)
		return tar_fail(pk, path);
	pk->tar.entries++;
	pk->tar.est += est;
	return 0;
}

/* Copies exactly `size` bytes of fd into the current entry. *changed is set
 * when the file turned out shorter or longer, *read_errno on a read error. */
static int
tar_data(pack_writer_t *pk, int fd, uint64_t size, bool *changed, int *read_errno)
{
	uint64_t left = size;
	bool at_end = false; /* a read came back short: that was the end of the file */
	while (left > 0) {
		/* One byte more than is left, when it fits: the same read then also
		 * tells whether the file grew, with no probe read after it. */
		size_t want = left < PACK_BUF_SIZE ? (size_t)left + 1 : PACK_BUF_SIZE;
		ssize_t n = read(fd, pk->buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			set_blocking(fd);
			continue;
		}
		if (n < 0) {
			*read_errno = errno;
			break;
		}
		if (n == 0) {
			*changed = true;
			break;
		}
		size_t use = (size_t)n;
		if ((uint64_t)n > left) {
			use = (size_t)left;
			*changed = true; /* grew: what the header promised is written */
		} else if ((size_t)n < want) {
			at_end = true;
		}
		if (archive_write_data(pk->tar.a, pk->buf, use) < 0)
			return tar_fail(pk, "writing data");
		left -= (uint64_t)use;
	}
	if (left > 0) {
		memset(pk->buf, 0, PACK_BUF_SIZE);
		while (left > 0) {
			size_t n = left < PACK_BUF_SIZE ? (size_t)left : PACK_BUF_SIZE;
			if (archive_write_data(pk->tar.a, pk->buf, n) < 0)
				return tar_fail(pk, "writing data");
			left -= n;
		}
	} else if (*read_errno == 0 && !*changed && !at_end) {
		char probe;
		ssize_t n;
		while ((n = read(fd, &probe, 1)) < 0 && errno == EINTR)
			;
		if (n > 0)
			*changed = true; /* grew: what the header promised was written */
	}
	return 0;
}

/* ---- one entry ------------------------------------------------------------- */

int
pack_writer_add_dir(pack_writer_t *pk, const scan_entry_t *e, bool *added)
{
	if (added)
		*added = false;
	int rc = tar_header(pk, e->path, (e->mode & 07777) | S_IFDIR, 0, e->mtime_sec, e->mtime_nsec);
	if (rc == -1) {
		report_file_error(pk, e->path, EINVAL);
		return 0;
	}
	if (rc == 0 && added)
		*added = true;
	return rc;
}

static int
pack_big(pack_writer_t *pk, const scan_entry_t *e, int fd, const struct stat *st)
{
	char name[64];
	unsigned counter = 0;
	do
		pack_big_file_name(e->path, counter++, name, sizeof name);
	while (name_used(pk->manage, name));
	manage_entry_t me = {
	    .file_name = name,
	    .path = e->path,
	    .size = (uint64_t)st->st_size,
	    .mode = (uint32_t)st->st_mode,
	    .mtime_sec = (int64_t)st->st_mtim.tv_sec,
	    .mtime_nsec = (int64_t)st->st_mtim.tv_nsec,
	    /* a big file that is itself a tar: OpenHarmony marks it so (its
	     * CheckUserTar), and a restore puts it back whole, never unpacked */
	    .is_user_tar = fsu_is_tar_name(e->path),
	    .is_big_file = true,
	};
	int rc = manage_add(pk->manage, &me, pk->err);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	rc = pk->sink->emit(pk->sink->ctx, name, fd, pk->err);
	if (rc != 0)
		return rc;
	pk->res->files_ok++;
	pk->res->bytes += (uint64_t)st->st_size;
	return pk->hooks.emitted ? pk->hooks.emitted(pk->hooks.ctx, name, false, pk->err) : 0;
}

/* What to do when e could not be opened (open_entry's result and errno). */
static int
open_failure(pack_writer_t *pk, const scan_entry_t *e, int how, int en)
{
	if (how == OPEN_FATAL)
		return ohb_fail_errno(pk->err, en, "cannot open %s of %s", e->path, pk->b->name);
	report_file_error(pk, e->path, en);
	return 0;
}

int
pack_writer_open(pack_writer_t *pk, const scan_entry_t *e, int *fd_out, struct stat *st)
{
	*fd_out = -1;
	int en;
	int fd = open_entry(&pk->op, e, st, &en);
	if (fd < 0)
		return open_failure(pk, e, fd, en);
	set_blocking(fd);
	*fd_out = fd;
	return 0;
}

int
pack_writer_add_file(pack_writer_t *pk, const scan_entry_t *e, int fd, const struct stat *st, bool *added)
{
	if (added)
		*added = false;
	uint64_t files_ok = pk->res->files_ok;
	int rc;
	if ((uint64_t)st->st_size > PACK_BIG_FILE_THRESHOLD) {
		rc = pack_big(pk, e, fd, st);
		if (added)
			*added = pk->res->files_ok > files_ok;
		return rc;
	}

	uint64_t size = (uint64_t)st->st_size;
	rc = tar_header(pk, e->path, (uint32_t)st->st_mode, size, (int64_t)st->st_mtim.tv_sec,
	                (int64_t)st->st_mtim.tv_nsec);
	if (rc != 0) {
		close(fd);
		if (rc == -1) {
			report_file_error(pk, e->path, EINVAL);
			return 0;
		}
		return rc;
	}
	bool changed = false;
	int read_errno = 0;
	rc = tar_data(pk, fd, size, &changed, &read_errno);
	close(fd);
	if (rc != 0)
		return rc;
	if (read_errno != 0 || changed) {
		report_file_error(pk, e->path, read_errno ? read_errno : EIO);
		return 0;
	}
	pk->res->files_ok++;
	pk->res->bytes += size;
	if (added)
		*added = true;
	return 0;
}

/* A file already read into memory: `len` bytes at data (st->st_size + 1 when
 * it grew, fewer when it shrank) or a read error. The tar gets exactly the
 * st_size bytes its header promises, as tar_data does. */
static int
add_read_bytes(pack_writer_t *pk, const scan_entry_t *e, const struct stat *st, const void *data, size_t len,
               int read_errno, bool *added)
{
	if (added)
		*added = false;
	uint64_t size = (uint64_t)st->st_size;
	if (size > PACK_BIG_FILE_THRESHOLD)
		return ohb_fail(pk->err, OHB_E_INVAL, "%s is too big to be added from memory", e->path);
	int rc = tar_header(pk, e->path, (uint32_t)st->st_mode, size, (int64_t)st->st_mtim.tv_sec,
	                    (int64_t)st->st_mtim.tv_nsec);
	if (rc == -1) {
		report_file_error(pk, e->path, EINVAL);
		return 0;
	}
	if (rc != 0)
		return rc;
	const char *p = data;
	uint64_t left = len < size ? len : size;
	uint64_t pad = size - left;
	while (left > 0) {
		la_ssize_t n = archive_write_data(pk->tar.a, p, (size_t)left);
		if (n <= 0)
			return tar_fail(pk, "writing data");
		p += n;
		left -= (uint64_t)n;
	}
	if (pad > 0) {
		memset(pk->buf, 0, pad < PACK_BUF_SIZE ? (size_t)pad : PACK_BUF_SIZE);
		while (pad > 0) {
			size_t n = pad < PACK_BUF_SIZE ? (size_t)pad : PACK_BUF_SIZE;
			if (archive_write_data(pk->tar.a, pk->buf, n) < 0)
				return tar_fail(pk, "writing data");
			pad -= n;
		}
	}
	if (read_errno != 0 || len != size) {
		report_file_error(pk, e->path, read_errno ? read_errno : EIO);
		return 0;
	}
	pk->res->files_ok++;
	pk->res->bytes += size;
	if (added)
		*added = true;
	return 0;
}

int
pack_writer_add_bytes(pack_writer_t *pk, const scan_entry_t *e, const struct stat *st, const void *data,
                      bool *added)
{
	return add_read_bytes(pk, e, st, data, (size_t)st->st_size, 0, added);
}

/* ---- read-ahead ----------------------------------------------------------------
 *
 * In a full backup nearly all the time is the kernel's: per file an open, an
 * fstat, a read and a close, then the tar's write. pack_bundle therefore lets
 * helper threads open and read the files ahead of the one being written, so
 * that on two or more cores reading overlaps writing. The calling thread (the
 * writer) still takes the files one by one in list order and does everything
 * else — headers, splits, big files, every sink call — so the tars, the
 * manage entries and the callbacks are exactly those of the serial loop.
 *
 * The regular files of the list are cut into chunks of PF_CHUNK_FILES; helper
 * h reads chunks h, h + n_helpers, ..., with its own opener (the same safe
 * opening). A chunk records for each file why it could not be opened, or its
 * fstat and either its bytes (read with one byte to spare, which tells
 * whether it grew) or, when they do not fit in the chunk's buffer, its open
 * fd (the writer streams it or hands it over as before). At most PF_CHUNKS
 * chunks are ahead of the writer; threads meet once per chunk, not per file,
 * since a wake-up costs about as much as reading a small file.
 */
#define PF_CHUNK_FILES 32
#define PF_CHUNKS 8
#define PF_CHUNK_BYTES (256u * 1024)
#define PF_MAX_HELPERS 3
#define PF_MIN_FILES 8 /* fewer files than this: the serial loop */

typedef struct pf_file {
	int how;        /* 0, or OPEN_FAILED / OPEN_FATAL with errnum */
	int errnum;
	int fd;         /* >= 0: not read (too big for the buffer), blocking mode */
	struct stat st;
	size_t off;     /* its bytes: data + off, len of them */
	size_t len;
	int read_errno;
} pf_file_t;

typedef struct pf_chunk {
	size_t seq;     /* chunk number: files seq * PF_CHUNK_FILES, ... */
	bool ready;     /* filled by a helper, not yet given back by the writer */
	size_t n;
	pf_file_t f[PF_CHUNK_FILES];
	char *data;     /* PF_CHUNK_BYTES */
} pf_chunk_t;

typedef struct prefetch prefetch_t;

typedef struct pf_helper {
	prefetch_t *pf;
	unsigned id;
	opener_t op;
	bool nowait;    /* preadv2(RWF_NOWAIT) works here (until it says otherwise) */
	bool started;
	pthread_t th;
} pf_helper_t;

struct prefetch {
	const scan_list_t *list;
	size_t *file_idx; /* list index of each regular file */
	size_t n_files, n_chunks;
	pf_chunk_t chunk[PF_CHUNKS];
	char *bytes;
	pthread_mutex_t lock;
	pthread_cond_t ready_cond; /* a chunk became ready (the writer waits) */
	pthread_cond_t free_cond;  /* the writer gave a chunk back (helpers wait) */
	size_t done;               /* chunks the writer has given back */
	bool stop;
	unsigned n_helpers;
	pf_helper_t helper[PF_MAX_HELPERS];
};

/* Reads a regular file of `size` bytes into buf (room for size + 1), the
 * first *len bytes of which are there already. */
static void
pf_read(int fd, uint64_t size, char *buf, size_t *len, int *read_errno)
{
	size_t want = (size_t)size + 1, got = *len;
	while (got < want) {
		ssize_t n = read(fd, buf + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			set_blocking(fd);
			continue;
		}
		if (n < 0) {
			*read_errno = errno;
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got >= size && (size_t)n < want - (got - (size_t)n))
			break; /* a short read at or past st_size: the end of the file */
	}
	*len = got;
}

/* The first read of a file, without waiting for the disk (RWF_NOWAIT):
 * false when not all of it is in the page cache, with *len the bytes that
 * were (pf_read goes on from there later); else true, with the file read
 * whole as pf_read reads it, or its error. In the common case (all cached)
 * that is one system call, as pf_read's is. *nowait goes false for good on
 * a file system that cannot read that way. */
static bool
pf_read_if_cached(int fd, uint64_t size, char *buf, size_t *len, int *read_errno, bool *nowait)
{
	*len = 0;
	if (*nowait && size > 0) {
		struct iovec iov = {buf, (size_t)size + 1};
		ssize_t n;
		do
			n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS)) {
			*nowait = false;
		} else if (n < 0) {
			*read_errno = errno;
			return true;
		} else {
			*len = (size_t)n;
			if (n == 0 || (uint64_t)n >= size)
				return true;  /* the end of the file, or past st_size: it grew */
			return false;     /* partly cached: the rest comes with the chunk's others */
		}
	}
	pf_read(fd, size, buf, len, read_errno);
	return true;
}

/* Fills chunk c (files seq * PF_CHUNK_FILES, ...). Files whose bytes are
 * in the page cache are read at once; the others get a read-ahead request
 * (POSIX_FADV_WILLNEED) and are read after the last file is opened, so that
 * a chunk of files the page cache lost waits for the disk about once, not
 * once per file. */
static void
pf_fill(pf_helper_t *h, pf_chunk_t *c, size_t seq)
{
	prefetch_t *pf = h->pf;
	size_t first = seq * PF_CHUNK_FILES;
	c->n = pf->n_files - first < PF_CHUNK_FILES ? pf->n_files - first : PF_CHUNK_FILES;
	size_t used = 0;
	int later_fd[PF_CHUNK_FILES];
	size_t n_later = 0;
	for (size_t i = 0; i < c->n; i++) {
		pf_file_t *f = &c->f[i];
		memset(f, 0, sizeof *f);
		f->fd = -1;
		later_fd[i] = -1;
		const scan_entry_t *e = &pf->list->v[pf->file_idx[first + i]];
		int fd = open_entry(&h->op, e, &f->st, &f->errnum);
		if (fd < 0) {
			f->how = fd;
			continue;
		}
		uint64_t need = (uint64_t)f->st.st_size + 1;
		if (need > PF_CHUNK_BYTES - used) {
			set_blocking(fd);
			f->fd = fd;
			continue;
		}
		f->off = used;
		if (!pf_read_if_cached(fd, (uint64_t)f->st.st_size, c->data + used, &f->len, &f->read_errno,
		        &h->nowait)) {
			(void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
			later_fd[i] = fd;
			n_later++;
			used += (size_t)need;  /* its room, whatever it holds in the end */
			continue;
		}
		used += f->len;
		close(fd);
	}
	for (size_t i = 0; n_later > 0 && i < c->n; i++) {
		if (later_fd[i] < 0)
			continue;
		pf_file_t *f = &c->f[i];
		pf_read(later_fd[i], (uint64_t)f->st.st_size, c->data + f->off, &f->len, &f->read_errno);
		close(later_fd[i]);
		n_later--;
	}
}

static void *
pf_helper_main(void *arg)
{
	pf_helper_t *h = arg;
	prefetch_t *pf = h->pf;
	for (size_t seq = h->id; seq < pf->n_chunks; seq += pf->n_helpers) {
		pf_chunk_t *c = &pf->chunk[seq % PF_CHUNKS];
		pthread_mutex_lock(&pf->lock);
		while (!pf->stop && pf->done + PF_CHUNKS <= seq)
			pthread_cond_wait(&pf->free_cond, &pf->lock);
		bool stop = pf->stop;
		pthread_mutex_unlock(&pf->lock);
		if (stop)
			break;
		/* The chunk is ours until `ready`: the writer gave its last one back. */
		pf_fill(h, c, seq);
		pthread_mutex_lock(&pf->lock);
		c->seq = seq;
		c->ready = true;
		pthread_cond_signal(&pf->ready_cond);
		pthread_mutex_unlock(&pf->lock);
	}
	return NULL;
}

/* Stops the helpers, waits for them, frees everything (fds of files not
 * taken are closed). */
static void
pf_free(prefetch_t *pf)
{
	if (!pf)
		return;
	pthread_mutex_lock(&pf->lock);
	pf->stop = true;
	pthread_cond_broadcast(&pf->free_cond);
	pthread_mutex_unlock(&pf->lock);
	for (unsigned i = 0; i < pf->n_helpers; i++) {
		if (pf->helper[i].started)
			pthread_join(pf->helper[i].th, NULL);
		if (pf->helper[i].op.b)
			opener_free(&pf->helper[i].op);
	}
	for (size_t i = 0; i < PF_CHUNKS; i++)
		for (size_t k = 0; pf->chunk[i].ready && k < pf->chunk[i].n; k++)
			if (pf->chunk[i].f[k].fd >= 0)
				close(pf->chunk[i].f[k].fd);
	pthread_cond_destroy(&pf->ready_cond);
	pthread_cond_destroy(&pf->free_cond);
	pthread_mutex_destroy(&pf->lock);
	free(pf->bytes);
	free(pf->file_idx);
	free(pf);
}

/* Starts the read-ahead for list, or returns NULL (one core, few files, or no
 * memory/threads: the serial loop is used, which does the same work). */
static prefetch_t *
pf_start(const reg_bundle_t *b, const scan_list_t *list)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores < 2)
		return NULL;
	size_t n_files = 0;
	for (size_t i = 0; i < list->n; i++)
		n_files += !list->v[i].is_dir;
	if (n_files < PF_MIN_FILES)
		return NULL;
	prefetch_t *pf = calloc(1, sizeof *pf);
	if (!pf)
		return NULL;
	pthread_mutex_init(&pf->lock, NULL);
	pthread_cond_init(&pf->ready_cond, NULL);
	pthread_cond_init(&pf->free_cond, NULL);
	pf->list = list;
	pf->n_files = n_files;
	pf->n_chunks = (n_files + PF_CHUNK_FILES - 1) / PF_CHUNK_FILES;
	pf->file_idx = malloc(n_files * sizeof *pf->file_idx);
	pf->bytes = malloc((size_t)PF_CHUNKS * PF_CHUNK_BYTES);
	if (!pf->file_idx || !pf->bytes) {
		pf_free(pf);
		return NULL;
	}
	for (size_t i = 0, k = 0; i < list->n; i++)
		if (!list->v[i].is_dir)
			pf->file_idx[k++] = i;
	for (size_t i = 0; i < PF_CHUNKS; i++)
		pf->chunk[i].data = pf->bytes + i * PF_CHUNK_BYTES;
	/* A helper's work per file (open, fstat, read, close) is about twice the
	 * writer's, so two helpers keep two cores busy; more cores, one more. */
	unsigned n = cores > PF_MAX_HELPERS ? PF_MAX_HELPERS : (unsigned)cores;
	if (n > pf->n_chunks)
		n = (unsigned)pf->n_chunks;
	pf->n_helpers = n;
	for (unsigned i = 0; i < n; i++) {
		pf_helper_t *h = &pf->helper[i];
		h->pf = pf;
		h->id = i;
		h->nowait = true;
		if (opener_init(&h->op, b) != 0) {
			pf_free(pf);
			return NULL;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		pf_helper_t *h = &pf->helper[i];
		if (pthread_create(&h->th, NULL, pf_helper_main, h) != 0) {
			/* the chunks of helpers that did not start would never come */
			pf_free(pf);
			return NULL;
		}
		h->started = true;
	}
	return pf;
}

/* Packs regular file number k (list entry e) from its chunk: waits for the
 * chunk at its first file, gives it back after its last. */
static int
pf_pack_file(prefetch_t *pf, pack_writer_t *pk, size_t k, const scan_entry_t *e)
{
	size_t seq = k / PF_CHUNK_FILES;
	pf_chunk_t *c = &pf->chunk[seq % PF_CHUNKS];
	if (k % PF_CHUNK_FILES == 0) {
		pthread_mutex_lock(&pf->lock);
		while (!(c->ready && c->seq == seq))
			pthread_cond_wait(&pf->ready_cond, &pf->lock);
		pthread_mutex_unlock(&pf->lock);
	}
	pf_file_t *f = &c->f[k % PF_CHUNK_FILES];
	int rc;
	if (f->how != 0) {
		rc = open_failure(pk, e, f->how, f->errnum);
	} else if (f->fd >= 0) {
		int fd = f->fd;
		f->fd = -1;
		rc = pack_writer_add_file(pk, e, fd, &f->st, NULL);
	} else {
		rc = add_read_bytes(pk, e, &f->st, c->data + f->off, f->len, f->read_errno, NULL);
	}
	if (k % PF_CHUNK_FILES == c->n - 1) {
		pthread_mutex_lock(&pf->lock);
		c->ready = false;
		pf->done = seq + 1;
		pthread_cond_broadcast(&pf->free_cond);
		pthread_mutex_unlock(&pf->lock);
	}
	return rc;
}

/* ---- the writer and pack_bundle ------------------------------------------------ */

void
pack_writer_free(pack_writer_t *pk)
{
	if (!pk)
		return;
	tar_discard(pk);
	if (pk->op.b)
		opener_free(&pk->op);
	if (pk->ae)
		archive_entry_free(pk->ae);
	free(pk->buf);
	free(pk->obuf);
	free(pk);
}

int
pack_writer_new(const reg_bundle_t *b, const char *tmp_dir, const pack_sink_t *sink,
                const pack_hooks_t *hooks, manage_list_t *manage_out, pack_result_t *result, ohb_error_t *err,
                pack_writer_t **out)
{
	*out = NULL;
	memset(result, 0, sizeof *result);
	if (manage_out->n != 0)
		return ohb_fail(err, OHB_E_INVAL, "packing %s needs an empty manage list", b->name);
	pack_writer_t *pk = calloc(1, sizeof *pk);
	if (!pk)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while packing %s", b->name);
	pk->b = b;
	pk->sink = sink;
	if (hooks)
		pk->hooks = *hooks;
	pk->tmp_dir = tmp_dir;
	pk->manage = manage_out;
	pk->res = result;
	pk->err = err;
	int oe = opener_init(&pk->op, b);
	pk->ae = archive_entry_new();
	pk->buf = malloc(PACK_BUF_SIZE);
	pk->obuf = malloc(PACK_BUF_SIZE);
	if (oe != 0 || !pk->ae || !pk->buf || !pk->obuf) {
		pack_writer_free(pk);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while packing %s", b->name);
	}
	*out = pk;
	return 0;
}

int
pack_writer_finish(pack_writer_t *pk)
{
	return tar_finish(pk);
}

int
pack_bundle(const reg_bundle_t *b, const scan_list_t *list, const char *tmp_dir, const pack_sink_t *sink,
            manage_list_t *manage_out, pack_result_t *result, ohb_error_t *err)
{
	pack_writer_t *pk;
	int rc = pack_writer_new(b, tmp_dir, sink, NULL, manage_out, result, err, &pk);
	if (rc != 0)
		return rc;
	prefetch_t *pf = pf_start(b, list);
	size_t k = 0; /* regular files so far */
	for (size_t i = 0; i < list->n; i++) {
		if (sink->cancelled && sink->cancelled(sink->ctx)) {
			result->stopped = true;
			goto out; /* the unfinished tar is dropped by pack_writer_free */
		}
		const scan_entry_t *e = &list->v[i];
		if (e->is_dir) {
			rc = pack_writer_add_dir(pk, e, NULL);
		} else if (pf) {
			rc = pf_pack_file(pf, pk, k++, e);
		} else {
			int fd;
			struct stat st;
			rc = pack_writer_open(pk, e, &fd, &st);
			if (rc == 0 && fd >= 0)
				rc = pack_writer_add_file(pk, e, fd, &st, NULL);
		}
		if (rc != 0)
			goto out;
		if (!e->is_dir)
			report_progress(pk);
	}
	pf_free(pf);
	pf = NULL;
	rc = tar_finish(pk);
	report_progress(pk);
out:
	pf_free(pf);
	pack_writer_free(pk);
	return rc;
}
