/*
 * unpacker — filling a restore stage from the set's tars and big files.
 *
 * A restore never writes into a bundle's data while it reads the backup: every
 * tar entry and every big file is first written below the stage directory
 * (<temp_dir>/restore/stage/<sandbox path>), and applier.c moves the lot into
 * place only when all of it has been read (stage.h explains the commit).
 *
 * Tars are read with libarchive's reader only. We do not use
 * archive_write_disk: it sets the process umask to 0 for a moment, which races
 * with every other thread (LESSONS.md "Threads and libarchive"). Instead each
 * entry is written with openat() relative to the stage's directory fd:
 * O_NOFOLLOW | O_EXCL for files, mkdirat() for parents, so nothing the tar
 * says can make us write outside the stage.
 *
 * The checks on entry names (REFERENCE.md "Restore") happen here, before
 * anything is written: stage_path_is_safe() is the path rule, and every name
 * must map to a mount of the bundle. Symlinks, hardlinks, devices, fifos and
 * sockets are not restored (they are counted as skipped): a symlink would be
 * a way out of the sandbox, and the others have no meaning for app data.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"
#include "stage.h"

#define TAR_BLOCK (1u << 20)          /* read size handed to libarchive */
#define REPORT_EVERY (256u << 10)     /* progress at least this often */
#define NAME_COMPONENT_MAX 255

bool
stage_path_is_safe(const char *name)
{
	if (!name || !*name)
		return false;
	size_t len = strlen(name);
	if (len > STAGE_PATH_MAX)
		return false;
	if (strcmp(name, "..") == 0 || strncmp(name, "../", 3) == 0)
		return false;
	if (strstr(name, "/../"))
		return false;
	if (len >= 3 && strcmp(name + len - 3, "/..") == 0)
		return false;
	return true;
}

/* Turns a tar name or sandbox path into the canonical form of stage.h
 * ("/a/b": one leading '/', no empty or "." components). The name must have
 * passed stage_path_is_safe, so ".." cannot occur. Fails (13500008) on a
 * component longer than a file name can be. */
static int
canonical_path(const char *name, char *out, size_t outsz, const char *what, ohb_error_t *err)
{
	size_t n = 0;
	const char *p = name;
	while (*p) {
		while (*p == '/')
			p++;
		const char *start = p;
		while (*p && *p != '/')
			p++;
		size_t clen = (size_t)(p - start);
		if (clen == 0 || (clen == 1 && start[0] == '.'))
			continue;
		if (clen > NAME_COMPONENT_MAX)
			return ohb_fail(err, OHB_E_UNTAR, "%s: a component of \"%s\" is longer than %d bytes",
			    what, name, NAME_COMPONENT_MAX);
		if (n + 1 + clen + 1 > outsz)
			return ohb_fail(err, OHB_E_UNTAR, "%s: the path \"%s\" is too long", what, name);
		out[n++] = '/';
		memcpy(out + n, start, clen);
		n += clen;
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return 0;
}

/* True when path (canonical) is "/" or a parent of some mount's prefix. */
static bool
is_above_a_mount(const reg_bundle_t *b, const char *path)
{
	size_t len = strlen(path);
	for (size_t i = 0; i < b->n_mounts; i++) {
		const char *p = b->mounts[i].sandbox_prefix;
		if (len == 1)
			return true;   /* "/" is above every mount not itself "/" */
		if (strncmp(p, path, len) == 0 && p[len] == '/')
			return true;
	}
	return false;
}

/* ---- stage directory access ----------------------------------------------------- */

static void
cache_drop(stage_t *st)
{
	if (st->cache_fd >= 0)
		close(st->cache_fd);
	st->cache_fd = -1;
	free(st->cache_path);
	st->cache_path = NULL;
}

/* Removes whatever is at dfd/name in the stage (a later entry replaces it). */
static int
stage_remove(stage_t *st, int dfd, const char *name, const char *rel, ohb_error_t *err)
{
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return ohb_fail_errno(err, errno, "cannot replace %s in the restore stage", rel);
	char *full = fsu_join(st->stage_dir, rel);
	if (!full)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	cache_drop(st);   /* the cached directory may lie below what goes */
	int rc = fsu_rm_rf(full, err);
	free(full);
	return rc;
}

/* Opens (creating as needed) the stage directory that will hold path (a
 * canonical sandbox path, not "/"). *dfd is borrowed from the stage's cache;
 * *leaf points into path. A non-directory in the way is replaced: the later
 * entry wins. */
static int
stage_parent(stage_t *st, const char *path, int *dfd, const char **leaf, ohb_error_t *err)
{
	const char *rel = path + 1;
	const char *slash = strrchr(rel, '/');
	if (!slash) {
		*dfd = st->root_fd;
		*leaf = rel;
		return 0;
	}
	size_t plen = (size_t)(slash - rel);
	*leaf = slash + 1;
	if (st->cache_fd >= 0 && strlen(st->cache_path) == plen && memcmp(st->cache_path, rel, plen) == 0) {
		*dfd = st->cache_fd;
		return 0;
	}
	cache_drop(st);
	char *parent = strndup(rel, plen);
	if (!parent)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");

	int cur = st->root_fd, rc = 0;
	for (char *comp = parent;;) {
		char *end = strchr(comp, '/');
		if (end)
			*end = '\0';
		int fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) {
			/* A file staged earlier stands where a later entry needs a directory. */
			if ((rc = stage_remove(st, cur, comp, parent, err)) != 0)
				break;
			errno = ENOENT;
		}
		if (fd < 0 && errno == ENOENT) {
			if (mkdirat(cur, comp, 0700) != 0 && errno != EEXIST) {
				rc = ohb_fail_errno(err, errno, "cannot create %s in the restore stage", parent);
				break;
			}
			fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0) {
			rc = ohb_fail_errno(err, errno, "cannot open %s in the restore stage", parent);
			break;
		}
		if (cur != st->root_fd)
			close(cur);
		cur = fd;
		if (!end)
			break;
		*end = '/';
		comp = end + 1;
	}
	if (rc != 0) {
		if (cur != st->root_fd)
			close(cur);
		free(parent);
		return rc;
	}
	st->cache_fd = cur;
	st->cache_path = parent;
	*dfd = cur;
	return 0;
}

static int
add_entry(stage_t *st, const char *path, int kind, bool has_meta, uint32_t mode, int64_t sec, int64_t nsec,
    ohb_error_t *err)
{
	if (st->n_entries == st->cap_entries) {
		size_t cap = st->cap_entries ? st->cap_entries * 2 : 64;
		stage_entry_t *v = realloc(st->entries, cap * sizeof *v);
		if (!v)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		st->entries = v;
		st->cap_entries = cap;
	}
	char *copy = strdup(path);
	if (!copy)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	st->entries[st->n_entries] = (stage_entry_t){
		.path = copy, .kind = kind, .has_meta = has_meta, .mode = mode,
		.mtime_sec = sec, .mtime_nsec = nsec, .seq = st->n_entries,
	};
	st->n_entries++;
	return 0;
}

/* Creates the staged file for path (replacing an earlier one); returns its fd. */
static int
stage_create_file(stage_t *st, const char *path, int *fd_out, ohb_error_t *err)
{
	int dfd;
	const char *leaf;
	int rc = stage_parent(st, path, &dfd, &leaf, err);
	if (rc != 0)
		return rc;
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			*fd_out = fd;
			return 0;
		}
		if (errno != EEXIST || attempt > 0)
			break;
		if ((rc = stage_remove(st, dfd, leaf, path + 1, err)) != 0)
			return rc;
		if ((rc = stage_parent(st, path, &dfd, &leaf, err)) != 0)
			return rc;
	}
	return ohb_fail_errno(err, errno, "cannot create %s in the restore stage", path);
}

/* Gives the staged file its final mode and mtime, then closes it. */
static int
stage_finish_file(int fd, const char *path, uint32_t mode, int64_t sec, int64_t nsec, ohb_error_t *err)
{
	int rc = 0;
	struct timespec ts[2] = { { .tv_sec = 0, .tv_nsec = UTIME_OMIT }, { .tv_sec = (time_t)sec, .tv_nsec = (long)nsec } };
	if (fchmod(fd, (mode_t)mode) != 0)
		rc = ohb_fail_errno(err, errno, "cannot set the mode of %s in the restore stage", path);
	else if (futimens(fd, ts) != 0)
		rc = ohb_fail_errno(err, errno, "cannot set the time of %s in the restore stage", path);
	if (close(fd) != 0 && rc == 0)
		rc = ohb_fail_errno(err, errno, "cannot write %s in the restore stage", path);
	return rc;
}

static uint32_t
clean_mode(uint32_t mode)
{
	return mode & 07777 & ~(uint32_t)(S_ISUID | S_ISGID);
}

static void
report(stage_t *st, uint64_t input_now, bool force)
{
	if (!st->progress.bytes)
		return;
	if (!force && input_now - st->last_report < REPORT_EVERY)
		return;
	st->last_report = input_now;
	st->progress.bytes(st->progress.ctx, input_now, st->files);
}

static bool
poll_cancel(stage_t *st)
{
	if (!st->cancelled && st->progress.cancelled && st->progress.cancelled(st->progress.ctx))
		st->cancelled = true;
	return st->cancelled;
}

/* ---- the public functions --------------------------------------------------------- */

int
stage_open(const reg_bundle_t *b, const stage_progress_t *progress, stage_t **out, ohb_error_t *err)
{
	*out = NULL;
	if (!b || !b->temp_dir)
		return ohb_fail(err, OHB_E_INVAL, "no bundle to restore into");
	stage_t *st = calloc(1, sizeof *st);
	if (!st)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	st->b = b;
	st->root_fd = -1;
	st->cache_fd = -1;
	if (progress)
		st->progress = *progress;
	st->restore_dir = fsu_join(b->temp_dir, "restore");
	st->stage_dir = st->restore_dir ? fsu_join(st->restore_dir, "stage") : NULL;
	st->journal_path = st->restore_dir ? fsu_join(st->restore_dir, "stage.commit") : NULL;
	int rc;
	if (!st->stage_dir || !st->journal_path) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		goto fail;
	}
	/* An unfinished commit of an earlier restore is finished first: removing
	 * its stage would leave the bundle half old, half new. */
	if (access(st->journal_path, F_OK) == 0 && (rc = stage_recover_commit(b, err)) != 0) {
		if (err) {
			char msg[sizeof err->message];
			snprintf(msg, sizeof msg, "%s", err->message);
			ohb_fail(err, rc, "cannot finish the interrupted restore of %s: %s", b->name, msg);
		}
		goto fail;
	}
	if ((rc = fsu_rm_rf(st->stage_dir, err)) != 0 || (rc = fsu_mkdir_p(st->stage_dir, 0700, err)) != 0)
		goto fail;
	st->root_fd = open(st->stage_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (st->root_fd < 0) {
		rc = ohb_fail_errno(err, errno, "cannot open the restore stage %s", st->stage_dir);
		goto fail;
	}
	*out = st;
	return 0;
fail:
	stage_free(st);
	return rc;
}

/* Stages one directory entry: created in the stage (so empty directories are
 * restored) and remembered with its mode and mtime. */
static int
stage_dir_entry(stage_t *st, const char *path, uint32_t mode, int64_t sec, int64_t nsec, ohb_error_t *err)
{
	if (strcmp(path, "/") != 0) {
		int dfd;
		const char *leaf;
		int rc = stage_parent(st, path, &dfd, &leaf, err);
		if (rc != 0)
			return rc;
		if (mkdirat(dfd, leaf, 0700) != 0) {
			if (errno != EEXIST)
				return ohb_fail_errno(err, errno, "cannot create %s in the restore stage", path);
			struct stat sb;
			if (fstatat(dfd, leaf, &sb, AT_SYMLINK_NOFOLLOW) != 0)
				return ohb_fail_errno(err, errno, "cannot read %s in the restore stage", path);
			if (!S_ISDIR(sb.st_mode)) {
				if ((rc = stage_remove(st, dfd, leaf, path + 1, err)) != 0)
					return rc;
				if ((rc = stage_parent(st, path, &dfd, &leaf, err)) != 0)
					return rc;
				if (mkdirat(dfd, leaf, 0700) != 0)
					return ohb_fail_errno(err, errno, "cannot create %s in the restore stage", path);
			}
		}
	}
	return add_entry(st, path, STAGE_DIR, true, clean_mode(mode), sec, nsec, err);
}

/* Copies the data of the current tar entry into fd (sparse holes stay holes). */
static int
stage_tar_data(stage_t *st, struct archive *a, struct archive_entry *e, int fd, const char *tar_name,
    const char *path, ohb_error_t *err)
{
	int64_t end = 0;
	for (;;) {
		const void *buf;
		size_t size;
		la_int64_t off;
		int r = archive_read_data_block(a, &buf, &size, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return ohb_fail(err, OHB_E_UNTAR, "%s is damaged at %s: %s", tar_name, path,
			    archive_error_string(a) ? archive_error_string(a) : "unknown error");
		const char *p = buf;
		size_t left = size;
		la_int64_t at = off;
		while (left > 0) {
			ssize_t n = pwrite(fd, p, left, (off_t)at);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				return ohb_fail_errno(err, errno, "cannot write %s in the restore stage", path);
			}
			p += n;
			left -= (size_t)n;
			at += n;
		}
		if (at > end)
			end = at;
		st->bytes += size;
		report(st, st->input_done + (uint64_t)archive_read_header_position(a) + (uint64_t)at, false);
	}
	/* A sparse file may end in a hole. */
	if (archive_entry_size_is_set(e) && archive_entry_size(e) > end &&
	    ftruncate(fd, (off_t)archive_entry_size(e)) != 0)
		return ohb_fail_errno(err, errno, "cannot write %s in the restore stage", path);
	return 0;
}

static int
stage_tar_file(stage_t *st, struct archive *a, struct archive_entry *e, const char *tar_name, const char *path,
    ohb_error_t *err)
{
	int fd;
	int rc = stage_create_file(st, path, &fd, err);
	if (rc != 0)
		return rc;
	if ((rc = stage_tar_data(st, a, e, fd, tar_name, path, err)) != 0) {
		close(fd);
		return rc;
	}
	int64_t sec = archive_entry_mtime(e), nsec = archive_entry_mtime_nsec(e);
	if (!archive_entry_mtime_is_set(e)) {
		sec = 0;
		nsec = UTIME_OMIT;
	}
	if ((rc = stage_finish_file(fd, path, clean_mode(archive_entry_perm(e)), sec, nsec, err)) != 0)
		return rc;
	st->files++;
	return add_entry(st, path, STAGE_FILE, false, 0, 0, 0, err);
}

/* A tar must end with its end-of-archive marker (two zero blocks). libarchive
 * accepts a tar cut exactly at a header boundary as complete, so a tar in a
 * regular file is also checked for the zeros at its end. */
static int
check_tar_end(int fd, off_t start, const char *tar_name, ohb_error_t *err)
{
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		return 0;
	unsigned char tail[1024];
	if (sb.st_size - start < (off_t)sizeof tail)
		return ohb_fail(err, OHB_E_UNTAR, "%s is truncated: it is too short to be a tar", tar_name);
	ssize_t n = pread(fd, tail, sizeof tail, sb.st_size - (off_t)sizeof tail);
	if (n != (ssize_t)sizeof tail)
		return ohb_fail_errno(err, n < 0 ? errno : EIO, "cannot read the end of %s", tar_name);
	for (size_t i = 0; i < sizeof tail; i++)
		if (tail[i] != 0)
			return ohb_fail(err, OHB_E_UNTAR, "%s is truncated: it has no end-of-archive marker", tar_name);
	return 0;
}

/* Checks and stages one tar entry. */
static int
stage_tar_entry(stage_t *st, struct archive *a, struct archive_entry *e, const char *tar_name, ohb_error_t *err)
{
	const char *name = archive_entry_pathname(e);
	if (!name)
		name = archive_entry_pathname_utf8(e);
	if (!name)
		return ohb_fail(err, OHB_E_UNTAR, "%s holds an entry whose name cannot be read", tar_name);
	if (!stage_path_is_safe(name))
		return ohb_fail(err, OHB_E_UNTAR, "%s holds the unsafe name \"%.200s\"; refusing to restore it",
		    tar_name, name);

	mode_t type = archive_entry_filetype(e);
	if (archive_entry_hardlink(e) || (type != AE_IFREG && type != AE_IFDIR)) {
		st->skipped++;   /* REFERENCE.md "Restore": links and special files are not restored */
		return 0;
	}
	char path[STAGE_PATH_MAX + 2];
	int rc = canonical_path(name, path, sizeof path, tar_name, err);
	if (rc != 0)
		return rc;
	const reg_mount_t *m;
	const char *rel;
	if (reg_bundle_map(st->b, path, &m, &rel, NULL) != 0) {
		if (type == AE_IFDIR && is_above_a_mount(st->b, path))
			return 0;
		return ohb_fail(err, OHB_E_UNTAR, "%s holds %s, which is outside every mount of %s", tar_name,
		    path, st->b->name);
	}
	if (type == AE_IFDIR) {
		int64_t sec = archive_entry_mtime(e), nsec = archive_entry_mtime_nsec(e);
		if (!archive_entry_mtime_is_set(e)) {
			sec = 0;
			nsec = UTIME_OMIT;
		}
		return stage_dir_entry(st, path, archive_entry_perm(e), sec, nsec, err);
	}
	if (strcmp(path, "/") == 0)
		return ohb_fail(err, OHB_E_UNTAR, "%s holds a file named \"%s\"", tar_name, name);
	return stage_tar_file(st, a, e, tar_name, path, err);
}

int
stage_add_tar(stage_t *st, int tar_fd, const char *tar_name, ohb_error_t *err)
{
	if (!tar_name)
		tar_name = "tar";
	if (st->cancelled)
		return 0;
	off_t start = lseek(tar_fd, 0, SEEK_CUR);
	if (start < 0)
		start = 0;
	struct archive *a = archive_read_new();
	if (!a)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	archive_read_support_format_tar(a);   /* ustar, pax and GNU tar (long names, sparse files) */
	int rc = 0;
	if (archive_read_open_fd(a, tar_fd, TAR_BLOCK) != ARCHIVE_OK) {
		rc = ohb_fail(err, OHB_E_UNTAR, "cannot read %s: %s", tar_name,
		    archive_error_string(a) ? archive_error_string(a) : "unknown error");
		goto out;
	}
	for (;;) {
		if (poll_cancel(st))
			goto out;
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc = ohb_fail(err, OHB_E_UNTAR, "%s is not a readable tar: %s", tar_name,
			    archive_error_string(a) ? archive_error_string(a) : "unknown error");
			goto out;
		}
		/* ARCHIVE_WARN: e.g. a name not convertible to the locale; the raw name is used. */
		if ((rc = stage_tar_entry(st, a, e, tar_name, err)) != 0)
			goto out;
		report(st, st->input_done + (uint64_t)archive_read_header_position(a), false);
	}
	rc = check_tar_end(tar_fd, start, tar_name, err);
out:
	st->input_done += (uint64_t)archive_filter_bytes(a, -1);
	report(st, st->input_done, true);
	archive_read_free(a);
	return rc;
}

int
stage_add_file(stage_t *st, int fd, const char *sandbox_path, uint32_t mode, int64_t mtime_sec,
    int64_t mtime_nsec, uint64_t expected_size, ohb_error_t *err)
{
	if (poll_cancel(st))
		return 0;
	if (!stage_path_is_safe(sandbox_path))
		return ohb_fail(err, OHB_E_UNTAR, "the unsafe path \"%.200s\"; refusing to restore it",
		    sandbox_path ? sandbox_path : "(null)");
	char path[STAGE_PATH_MAX + 2];
	int rc = canonical_path(sandbox_path, path, sizeof path, "big file", err);
	if (rc != 0)
		return rc;
	if (strcmp(path, "/") == 0)
		return ohb_fail(err, OHB_E_UNTAR, "a big file has no name");
	if (reg_bundle_map(st->b, path, NULL, NULL, NULL) != 0)
		return ohb_fail(err, OHB_E_UNTAR, "the big file %s is outside every mount of %s", path, st->b->name);
	int out;
	if ((rc = stage_create_file(st, path, &out, err)) != 0)
		return rc;
	uint64_t copied = 0;
	if ((rc = fsu_copy_fd(fd, out, &copied, err)) != 0) {
		close(out);
		return rc;
	}
	if (copied != expected_size) {
		close(out);
		return ohb_fail(err, OHB_E_UNTAR, "the big file %s has %llu bytes, the backup records %llu", path,
		    (unsigned long long)copied, (unsigned long long)expected_size);
	}
	if (mtime_nsec < 0 || mtime_nsec > 999999999)
		mtime_nsec = 0;
	if ((rc = stage_finish_file(out, path, clean_mode(mode), mtime_sec, mtime_nsec, err)) != 0)
		return rc;
	st->files++;
	st->bytes += copied;
	st->input_done += copied;
	report(st, st->input_done, true);
	return add_entry(st, path, STAGE_FILE, false, 0, 0, 0, err);
}

int
stage_add_deletion(stage_t *st, const char *sandbox_path, ohb_error_t *err)
{
	if (!stage_path_is_safe(sandbox_path))
		return ohb_fail(err, OHB_E_UNTAR, "the unsafe path \"%.200s\"; refusing to delete it",
		    sandbox_path ? sandbox_path : "(null)");
	char path[STAGE_PATH_MAX + 2];
	int rc = canonical_path(sandbox_path, path, sizeof path, "deletion", err);
	if (rc != 0)
		return rc;
	if (reg_bundle_map(st->b, path, NULL, NULL, NULL) != 0)
		return ohb_fail(err, OHB_E_UNTAR, "cannot delete %s: it is outside every mount of %s", path,
		    st->b->name);
	if (st->n_deletions == st->cap_deletions) {
		size_t cap = st->cap_deletions ? st->cap_deletions * 2 : 16;
		char **v = realloc(st->deletions, cap * sizeof *v);
		if (!v)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		st->deletions = v;
		st->cap_deletions = cap;
	}
	if (!(st->deletions[st->n_deletions] = strdup(path)))
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	st->n_deletions++;
	return 0;
}

uint64_t
stage_bytes(const stage_t *st)
{
	return st ? st->bytes : 0;
}

uint64_t
stage_files(const stage_t *st)
{
	return st ? st->files : 0;
}

uint64_t
stage_skipped(const stage_t *st)
{
	return st ? st->skipped : 0;
}

bool
stage_cancelled(const stage_t *st)
{
	return st && st->cancelled;
}

void
stage_free(stage_t *st)
{
	if (!st)
		return;
	cache_drop(st);
	if (st->root_fd >= 0)
		close(st->root_fd);
	/* A journaled, unfinished commit stays for stage_recover to finish. */
	if (st->stage_dir && !(st->journaled && !st->finished))
		fsu_rm_rf(st->stage_dir, NULL);
	for (size_t i = 0; i < st->n_entries; i++)
		free(st->entries[i].path);
	free(st->entries);
	for (size_t i = 0; i < st->n_deletions; i++)
		free(st->deletions[i]);
	free(st->deletions);
	free(st->restore_dir);
	free(st->stage_dir);
	free(st->journal_path);
	free(st);
}
