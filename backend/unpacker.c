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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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
dcache_drop(struct stage_dir_cache *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->path);
	c->path = NULL;
}

/* Removes whatever is at dfd/name in the stage (a later entry replaces it).
 * Only the reader does this, with the writers idle (see below). */
static int
stage_remove(stage_t *st, int dfd, const char *name, const char *rel, ohb_error_t *err)
{
	if (unlinkat(dfd, name, 0) == 0) {
		st->removed++;
		return 0;
	}
	if (errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return ohb_fail_errno(err, errno, "cannot replace %s in the restore stage", rel);
	char *full = fsu_join(st->stage_dir, rel);
	if (!full)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	dcache_drop(&st->cache);   /* the cached directory may lie below what goes */
	st->removed++;             /* and so may the writers' */
	int rc = fsu_rm_rf(full, err);
	free(full);
	return rc;
}

/* Opens (creating as needed) the stage directory that will hold path (a
 * canonical sandbox path, not "/"), through cache c. *dfd is borrowed from
 * the cache; *leaf points into path. With `replace` (the reader), a
 * non-directory in the way is replaced: the later entry wins; without (a
 * writer, which is only given paths with no file in the way), it is an error. */
static int
parent_open(stage_t *st, struct stage_dir_cache *c, bool replace, const char *path, int *dfd,
    const char **leaf, ohb_error_t *err)
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
	if (c->fd >= 0 && strlen(c->path) == plen && memcmp(c->path, rel, plen) == 0) {
		*dfd = c->fd;
		return 0;
	}
	dcache_drop(c);
	char *parent = strndup(rel, plen);
	if (!parent)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");

	int cur = st->root_fd, rc = 0;
	for (char *comp = parent;;) {
		char *end = strchr(comp, '/');
		if (end)
			*end = '\0';
		int fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && replace && (errno == ENOTDIR || errno == ELOOP)) {
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
	c->fd = cur;
	c->path = parent;
	*dfd = cur;
	return 0;
}

static int
stage_parent(stage_t *st, const char *path, int *dfd, const char **leaf, ohb_error_t *err)
{
	return parent_open(st, &st->cache, true, path, dfd, leaf, err);
}

/* ---- what the stage holds, as the reader knows it -----------------------------------
 *
 * Writers create files in parallel (below), which is only safe for a path
 * that nothing staged before stands in the way of: not the path itself (a
 * duplicate replaces it), and no file where a parent directory goes. The
 * reader therefore keeps every path it staged, and the directories above
 * them, in a set; an entry that meets one of those conflicts is staged by the
 * reader itself, after the writers are done, exactly as when it works alone
 * (the later entry wins). Conflicts only occur in tars that hold a path twice
 * or as both a file and a directory.
 *
 * The set keeps 64-bit hashes of the paths, not the paths (16 bytes a path):
 * two paths with one hash look like a conflict, which only sends an entry
 * down the reader's careful way; a real conflict is never missed.
 */
enum { PS_NONE = 0, PS_FILE = 1, PS_DIR = 2 };

typedef struct ps_slot {
	uint64_t hash;      /* 0: empty (a path hashing to 0 is stored as 1) */
	int kind;
} ps_slot_t;

struct stage_paths {
	ps_slot_t *slot;
	size_t cap, n;      /* cap: a power of two */
	/* the last parent known to have no file on its way */
	char last_parent[STAGE_PATH_MAX + 2];
	size_t last_len;
	bool last_ok;
};

static uint64_t
ps_hash(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h ? h : 1;
}

static void
ps_free(struct stage_paths *ps)
{
	if (!ps)
		return;
	free(ps->slot);
	free(ps);
}

static ps_slot_t *
ps_find(struct stage_paths *ps, uint64_t h)
{
	size_t mask = ps->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask)
		if (ps->slot[i].hash == 0 || ps->slot[i].hash == h)
			return &ps->slot[i];
}

static int
ps_get(struct stage_paths *ps, const char *s, size_t len)
{
	return ps->cap ? ps_find(ps, ps_hash(s, len))->kind : PS_NONE;
}

/* Records s[0..len) as kind, on top of what it was: a path once seen as a
 * file stays one for the checks (conservative, and hash collisions can then
 * only add conflicts, never hide one). False: out of memory. */
static bool
ps_put(struct stage_paths *ps, const char *s, size_t len, int kind)
{
	if ((ps->n + 1) * 2 > ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 1024;
		ps_slot_t *v = calloc(cap, sizeof *v);
		if (!v)
			return false;
		ps_slot_t *old = ps->slot;
		size_t old_cap = ps->cap;
		ps->slot = v;
		ps->cap = cap;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i].hash)
				*ps_find(ps, old[i].hash) = old[i];
		free(old);
	}
	uint64_t h = ps_hash(s, len);
	ps_slot_t *sl = ps_find(ps, h);
	if (!sl->hash) {
		sl->hash = h;
		ps->n++;
	}
	sl->kind |= kind;
	return true;
}

/* May a writer stage `path` (canonical, kind PS_FILE or PS_DIR)? */
static bool
ps_clear_way(struct stage_paths *ps, const char *path, int kind)
{
	size_t len = strlen(path);
	int k = ps_get(ps, path, len);
	if (kind == PS_FILE ? k != PS_NONE : (k & PS_FILE) != 0)
		return false;
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	if (ps->last_ok && plen == ps->last_len && memcmp(ps->last_parent, path, plen) == 0)
		return true;
	for (size_t i = 1; i <= plen; i++)
		if ((i == plen || path[i] == '/') && (ps_get(ps, path, i) & PS_FILE) != 0)
			return false;
	return true;
}

/* Records path as kind and every directory above it as a directory. */
static bool
ps_record(struct stage_paths *ps, const char *path, int kind)
{
	size_t len = strlen(path);
	if (!ps_put(ps, path, len, kind))
		return false;
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	if (ps->last_ok && plen == ps->last_len && memcmp(ps->last_parent, path, plen) == 0)
		return true;
	for (size_t i = 1; i <= plen; i++)
		if ((i == plen || path[i] == '/') && !ps_put(ps, path, i, PS_DIR))
			return false;
	memcpy(ps->last_parent, path, plen);
	ps->last_len = plen;
	ps->last_ok = true;
	return true;
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

/* The process umask, read without changing it (umask(2) would race with
 * every other thread); -1 when /proc does not say. */
static int
process_umask(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	char line[256];
	int mask = -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "Umask:", 6) == 0) {
			char *end;
			long v = strtol(line + 6, &end, 8);
			if (end != line + 6 && v >= 0 && v <= 0777)
				mask = (int)v;
			break;
		}
	fclose(f);
	return mask;
}

/* The mode to create a staged file with: its final `mode` when the umask
 * leaves it whole (then no fchmod is needed: *exact is true), else 0600
 * (private until stage_finish_file sets the mode). The stage dir is 0700, so
 * a file created with its final mode is not visible to anyone else either. */
static mode_t
create_mode(const stage_t *st, uint32_t mode, bool *exact)
{
	*exact = st->umask >= 0 && (mode & ~(uint32_t)0777) == 0 && (mode & (uint32_t)st->umask) == 0;
	return *exact ? (mode_t)mode : 0600;
}

/* Creates the staged file for path (replacing an earlier one) with
 * create_mode(mode); returns its fd. */
static int
stage_create_file(stage_t *st, const char *path, uint32_t mode, bool *mode_exact, int *fd_out,
    ohb_error_t *err)
{
	int dfd;
	const char *leaf;
	int rc = stage_parent(st, path, &dfd, &leaf, err);
	if (rc != 0)
		return rc;
	mode_t cmode = create_mode(st, mode, mode_exact);
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, cmode);
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

/* Gives the staged file its final mode (unless it was created with it) and
 * mtime, then closes it. */
static int
stage_finish_file(int fd, const char *path, uint32_t mode, bool mode_exact, int64_t sec, int64_t nsec,
    ohb_error_t *err)
{
	int rc = 0;
	struct timespec ts[2] = { { .tv_sec = 0, .tv_nsec = UTIME_OMIT }, { .tv_sec = (time_t)sec, .tv_nsec = (long)nsec } };
	if (!mode_exact && fchmod(fd, (mode_t)mode) != 0)
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
	st->cache.fd = -1;
	st->umask = process_umask();
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
static int reader_takes_over(stage_t *st, ohb_error_t *err);

static int
stage_dir_entry(stage_t *st, const char *path, uint32_t mode, int64_t sec, int64_t nsec, ohb_error_t *err)
{
	if (st->paths && !ps_clear_way(st->paths, path, PS_DIR)) {
		int rc = reader_takes_over(st, err);
		if (rc != 0)
			return rc;
	}
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
	if (st->paths && !ps_record(st->paths, path, PS_DIR))
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
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
		if (fsu_pwrite_all(fd, buf, size, (off_t)off) != 0)
			return ohb_fail_errno(err, errno, "cannot write %s in the restore stage", path);
		la_int64_t at = off + (la_int64_t)size;
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

/* ---- writing staged files on several cores ----------------------------------------
 *
 * Unpacking many small files is, like `tar -x`, almost all kernel time: per
 * file a create, a write, a futimens and a close. With two or more cores the
 * reader (the thread calling stage_add_tar) only parses the tar, checks each
 * entry and copies its bytes; writer threads create, write and close the
 * files. What they are given never conflicts with anything staged before (the
 * path set above), so the order in which they run does not matter; an entry
 * that would conflict, a sparse one, or one over UW_INLINE_MAX is staged by
 * the reader itself once the writers have finished what they hold, as is
 * everything on a one-core machine. Directory entries stay with the reader
 * too (mkdirat tolerates a writer creating the same parent). The first
 * failure of a writer is kept and returned by stage_add_tar, which waits for
 * every queued file before it returns, so a tar is wholly staged (or failed)
 * when it does.
 *
 * The writers are also where a flusher lives: syncfs of the stage's file
 * system, over and over while the tars are unpacked, so that the syncfs
 * stage_commit must do before its journal finds little left to write.
 */
#define UW_MAX_WRITERS 2 /* a third one gained nothing on two cores */
#define UW_QUEUE 128               /* files queued at most */
#define UW_BYTES (2u << 20)        /* bytes queued at most */
#define UW_INLINE_MAX (1u << 20)   /* bigger entries: written by the reader */
#define UW_BATCH 32                /* a writer wakes up for this many files */
#define UW_TAKE 8                  /* and takes this many at a time */
#define UW_FLUSH_EVERY_MS 50

typedef struct uw_job {
	char *path;        /* canonical sandbox path */
	char *data;
	size_t len;        /* bytes at data (from offset 0) */
	int64_t size;      /* the entry's size: a shorter len is a trailing hole */
	uint32_t mode;
	int64_t sec, nsec;
} uw_job_t;

struct stage_writers {
	stage_t *st;
	pthread_mutex_t lock;
	pthread_cond_t job_cond;   /* a batch was queued, or stop (writers wait) */
	pthread_cond_t room_cond;  /* room in the queue, or all done (the reader waits) */
	uw_job_t q[UW_QUEUE];
	size_t head, n;
	size_t bytes;              /* data of queued and running jobs */
	unsigned busy;             /* jobs being written */
	unsigned idle;             /* writers waiting for a batch */
	bool draining;             /* the reader waits for everything: take any job */
	bool reader_waiting;       /* the reader waits for room */
	bool stop;                 /* stage_free: writers exit */
	bool discard;              /* a failure or cancel: drop queued files */
	int rc;                    /* the first failure */
	ohb_error_t err;
	unsigned n_threads;
	pthread_t th[UW_MAX_WRITERS];

	int flush_fd;
	bool flusher;              /* started */
	pthread_t flusher_th;
	pthread_cond_t flush_cond; /* stop */
};

static void *
uw_flusher_main(void *arg)
{
	struct stage_writers *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		pthread_mutex_unlock(&w->lock);
		(void)syncfs(w->flush_fd);   /* only an early start; stage_commit's syncfs is the one that counts */
		pthread_mutex_lock(&w->lock);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += UW_FLUSH_EVERY_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!w->stop)
			pthread_cond_timedwait(&w->flush_cond, &w->lock, &ts);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Creates, writes and closes one staged file. */
static int
uw_write(stage_t *st, struct stage_dir_cache *c, const uw_job_t *j, ohb_error_t *err)
{
	int dfd;
	const char *leaf;
	int rc = parent_open(st, c, false, j->path, &dfd, &leaf, err);
	if (rc != 0)
		return rc;
	bool exact;
	mode_t cmode = create_mode(st, j->mode, &exact);
	int fd = openat(dfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, cmode);
	if (fd < 0)
		return ohb_fail_errno(err, errno, "cannot create %s in the restore stage", j->path);
	if (fsu_pwrite_all(fd, j->data, j->len, 0) != 0) {
		rc = ohb_fail_errno(err, errno, "cannot write %s in the restore stage", j->path);
		close(fd);
		return rc;
	}
	if (j->size > (int64_t)j->len && ftruncate(fd, (off_t)j->size) != 0) {
		rc = ohb_fail_errno(err, errno, "cannot write %s in the restore stage", j->path);
		close(fd);
		return rc;
	}
	return stage_finish_file(fd, j->path, j->mode, exact, j->sec, j->nsec, err);
}

static void *
uw_main(void *arg)
{
	struct stage_writers *w = arg;
	struct stage_dir_cache cache = { NULL, -1 };
	unsigned long removed = 0;
	uw_job_t batch[UW_TAKE];
	pthread_mutex_lock(&w->lock);
	for (;;) {
		/* Wake up for a batch, not for each file: a wake-up costs about
		 * as much as writing a small file. */
		while (!w->stop && w->n < (w->draining || w->reader_waiting ? 1 : UW_BATCH)) {
			w->idle++;
			pthread_cond_wait(&w->job_cond, &w->lock);
			w->idle--;
		}
		if (w->n == 0)
			break;   /* stop, nothing left */
		size_t k = w->n < UW_TAKE ? w->n : UW_TAKE;
		for (size_t i = 0; i < k; i++) {
			batch[i] = w->q[w->head];
			w->head = (w->head + 1) % UW_QUEUE;
		}
		w->n -= k;
		w->busy += (unsigned)k;
		bool discard = w->discard;
		if (w->st->removed != removed) {
			/* The reader removed something from the stage (between two
			 * batches: it drains us first); our directory may be gone. */
			dcache_drop(&cache);
			removed = w->st->removed;
		}
		pthread_mutex_unlock(&w->lock);
		ohb_error_t e;
		int rc = 0;
		size_t bytes = 0;
		for (size_t i = 0; i < k; i++) {
			if (!discard && rc == 0)
				rc = uw_write(w->st, &cache, &batch[i], &e);
			bytes += batch[i].len;
			free(batch[i].data);
			free(batch[i].path);
		}
		pthread_mutex_lock(&w->lock);
		if (rc != 0 && w->rc == 0) {
			w->rc = rc;
			w->err = e;
			w->discard = true;
		}
		w->busy -= (unsigned)k;
		w->bytes -= bytes;
		if (w->reader_waiting || (w->draining && w->n == 0 && w->busy == 0))
			pthread_cond_signal(&w->room_cond);
	}
	pthread_mutex_unlock(&w->lock);
	dcache_drop(&cache);
	return NULL;
}

/* The writers, started on first use; NULL on a one-core machine or when they
 * cannot start (the reader then stages everything itself). */
static struct stage_writers *
uw_get(stage_t *st)
{
	if (st->writers || st->no_writers)
		return st->writers;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	struct stage_writers *w = cores >= 2 ? calloc(1, sizeof *w) : NULL;
	struct stage_paths *ps = w ? calloc(1, sizeof *ps) : NULL;
	if (!ps) {
		free(w);
		st->no_writers = true;
		return NULL;
	}
	st->paths = ps;
	/* Record what is staged already (earlier tars and files) */
	for (size_t i = 0; i < st->n_entries; i++)
		if (!ps_record(ps, st->entries[i].path, st->entries[i].kind == STAGE_DIR ? PS_DIR : PS_FILE)) {
			ps_free(ps);
			st->paths = NULL;
			free(w);
			st->no_writers = true;
			return NULL;
		}
	w->st = st;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->job_cond, NULL);
	pthread_cond_init(&w->room_cond, NULL);
	pthread_cond_init(&w->flush_cond, NULL);
	unsigned n = cores > UW_MAX_WRITERS ? UW_MAX_WRITERS : (unsigned)cores;
	for (unsigned i = 0; i < n; i++) {
		if (pthread_create(&w->th[w->n_threads], NULL, uw_main, w) != 0)
			break;
		w->n_threads++;
	}
	w->flush_fd = st->root_fd;
	w->flusher = w->n_threads > 0 && pthread_create(&w->flusher_th, NULL, uw_flusher_main, w) == 0;
	st->writers = w;
	if (w->n_threads == 0) {
		stage_writers_free(st);
		st->no_writers = true;
	}
	return st->writers;
}

/* Waits until every queued file is written; returns the first failure (and
 * forgets it: the caller reports it). */
static int
uw_drain(stage_t *st, ohb_error_t *err)
{
	struct stage_writers *w = st->writers;
	if (!w)
		return 0;
	pthread_mutex_lock(&w->lock);
	w->draining = true;
	pthread_cond_broadcast(&w->job_cond);
	while (w->n > 0 || w->busy > 0)
		pthread_cond_wait(&w->room_cond, &w->lock);
	w->draining = false;
	int rc = w->rc;
	if (rc != 0 && err)
		*err = w->err;
	w->rc = 0;
	w->discard = false;
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* True when a writer failed: the reader stops early (uw_drain says why). */
static bool
uw_failed(stage_t *st)
{
	struct stage_writers *w = st->writers;
	if (!w)
		return false;
	pthread_mutex_lock(&w->lock);
	bool failed = w->rc != 0;
	pthread_mutex_unlock(&w->lock);
	return failed;
}

/* Makes queued files be dropped unwritten (a failure or a cancel). */
static void
uw_discard(stage_t *st)
{
	struct stage_writers *w = st->writers;
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->discard = true;
	pthread_mutex_unlock(&w->lock);
}

void
stage_writers_free(stage_t *st)
{
	struct stage_writers *w = st->writers;
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	w->discard = true;
	pthread_cond_broadcast(&w->job_cond);
	pthread_cond_broadcast(&w->flush_cond);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->n_threads; i++)
		pthread_join(w->th[i], NULL);
	if (w->flusher)
		pthread_join(w->flusher_th, NULL);
	pthread_cond_destroy(&w->job_cond);
	pthread_cond_destroy(&w->room_cond);
	pthread_cond_destroy(&w->flush_cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
	st->writers = NULL;
}

/* Reads the current entry's data into memory and queues it for a writer.
 * The caller checked that the entry qualifies (uw_takes). */
static int
uw_queue(stage_t *st, struct archive *a, struct archive_entry *e, const char *path, uint32_t mode, int64_t sec,
    int64_t nsec, const char *tar_name, ohb_error_t *err)
{
	struct stage_writers *w = st->writers;
	int64_t size = archive_entry_size(e);
	uw_job_t j = { .size = size, .mode = mode, .sec = sec, .nsec = nsec };
	j.data = malloc(size > 0 ? (size_t)size : 1);
	j.path = strdup(path);
	if (!j.data || !j.path) {
		free(j.data);
		free(j.path);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	for (;;) {
		const void *buf;
		size_t n;
		la_int64_t off;
		int r = archive_read_data_block(a, &buf, &n, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN || off < 0 || off > size || (int64_t)n > size - off) {
			int rc = r < ARCHIVE_WARN ? ohb_fail(err, OHB_E_UNTAR, "%s is damaged at %s: %s", tar_name, path,
			                                     archive_error_string(a) ? archive_error_string(a) : "unknown error")
			                          : ohb_fail(err, OHB_E_UNTAR, "%s is damaged at %s: data past the entry's size",
			                                     tar_name, path);
			free(j.data);
			free(j.path);
			return rc;
		}
		memcpy(j.data + off, buf, n);
		if ((size_t)off + n > j.len)
			j.len = (size_t)off + n;
		st->bytes += n;
		report(st, st->input_done + (uint64_t)archive_read_header_position(a) + (uint64_t)off + n, false);
	}
	pthread_mutex_lock(&w->lock);
	if (w->n == UW_QUEUE || (w->bytes > 0 && w->bytes + j.len > UW_BYTES)) {
		/* Full: wait until it is half empty, so that we do not meet the
		 * writers again at every file. */
		w->reader_waiting = true;
		pthread_cond_broadcast(&w->job_cond);
		while (w->n > UW_QUEUE / 2 || w->bytes > UW_BYTES / 2)
			pthread_cond_wait(&w->room_cond, &w->lock);
		w->reader_waiting = false;
	}
	w->q[(w->head + w->n) % UW_QUEUE] = j;
	w->n++;
	w->bytes += j.len;
	if (w->idle > 0 && w->n >= UW_BATCH)
		pthread_cond_signal(&w->job_cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

/* May a writer stage this file entry? */
static bool
uw_takes(stage_t *st, struct archive_entry *e, const char *path)
{
	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0 ||
	    archive_entry_size(e) > (int64_t)UW_INLINE_MAX || archive_entry_sparse_count(e) > 0)
		return false;
	return uw_get(st) && ps_clear_way(st->paths, path, PS_FILE);
}

/* Before the reader stages an entry itself: the writers finish first, so
 * that whatever it replaces is not being written. */
static int
reader_takes_over(stage_t *st, ohb_error_t *err)
{
	if (st->paths)
		st->paths->last_ok = false;
	return uw_drain(st, err);
}

static int
stage_tar_file(stage_t *st, struct archive *a, struct archive_entry *e, const char *tar_name, const char *path,
    ohb_error_t *err)
{
	uint32_t mode = clean_mode(archive_entry_perm(e));
	int64_t sec = archive_entry_mtime(e), nsec = archive_entry_mtime_nsec(e);
	if (!archive_entry_mtime_is_set(e)) {
		sec = 0;
		nsec = UTIME_OMIT;
	}
	int rc;
	if (uw_takes(st, e, path)) {
		if ((rc = uw_queue(st, a, e, path, mode, sec, nsec, tar_name, err)) != 0)
			return rc;
	} else {
		if ((rc = reader_takes_over(st, err)) != 0)
			return rc;
		int fd;
		bool exact;
		if ((rc = stage_create_file(st, path, mode, &exact, &fd, err)) != 0)
			return rc;
		if ((rc = stage_tar_data(st, a, e, fd, tar_name, path, err)) != 0) {
			close(fd);
			return rc;
		}
		if ((rc = stage_finish_file(fd, path, mode, exact, sec, nsec, err)) != 0)
			return rc;
	}
	if (st->paths && !ps_record(st->paths, path, PS_FILE))
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	st->files++;
	return add_entry(st, path, STAGE_FILE, false, 0, 0, 0, err);
}

/* What follows the last entry of a tar in a regular file (end: the bytes of it
 * libarchive consumed, start: where it began in fd).
 *
 * It must end with its end-of-archive marker (two zero blocks): libarchive
 * accepts a tar cut exactly at a header boundary as complete.
 *
 * And libarchive ends a tar at its first all-zero block, quietly. A tar in
 * which a fault zeroed a header (or the whole file: a crash can leave a file
 * of the right size full of zeros) would so lose every entry after that
 * block, and the restore would succeed without them. What follows the marker
 * must therefore be zeros, and no more of them than a tar's padding: our tars
 * have none, GNU tar and libarchive pad to 10 KiB, a tar written with
 * `-b 2048` to 1 MiB; and a tar with no entry at all is no longer than an
 * empty one (10 KiB). A zeroed tar of at most 10 KiB, or zeros in the last
 * 1 MiB, pass these checks; for sets that record each tar's entry count
 * (manage.json tarEntries) stage_add_tar's count check catches them. Zeroed
 * file data under intact headers passes both: manage.json records sizes
 * and counts, not hashes. */
#define TAR_PADDING_MAX (1u << 20)
#define TAR_EMPTY_MAX 10240u   /* an empty tar: GNU tar's and bsdtar's size of one */
#define TAR_MARKER 1024        /* two zero blocks */

static int
check_tar_end(int fd, off_t start, int64_t end, size_t entries, const char *tar_name, ohb_error_t *err)
{
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		return 0;
	if (sb.st_size - start < TAR_MARKER)
		return ohb_fail(err, OHB_E_UNTAR, "%s is truncated: it is too short to be a tar", tar_name);
	off_t at = start + (end > 0 ? (off_t)end : 0);
	if (sb.st_size - at > (off_t)TAR_PADDING_MAX)
		return ohb_fail(err, OHB_E_UNTAR,
		    "%s is damaged: %lld bytes follow its end-of-archive marker at byte %lld (a zeroed block?)", tar_name,
		    (long long)(sb.st_size - at), (long long)(at - start));
	/* the marker itself (the last TAR_MARKER bytes), then what follows it */
	off_t from = at < sb.st_size - TAR_MARKER ? at : sb.st_size - TAR_MARKER;
	unsigned char buf[64 * 1024];
	for (off_t off = from; off < sb.st_size;) {
		ssize_t n = pread(fd, buf, sizeof buf, off);
		if (n <= 0)
			return ohb_fail_errno(err, n < 0 ? errno : EIO, "cannot read the end of %s", tar_name);
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 0)
				continue;
			if (off + i >= sb.st_size - TAR_MARKER)
				return ohb_fail(err, OHB_E_UNTAR, "%s is truncated: it has no end-of-archive marker", tar_name);
			return ohb_fail(err, OHB_E_UNTAR,
			    "%s is damaged: it holds data after its end-of-archive marker at byte %lld (a zeroed block?)",
			    tar_name, (long long)(at - start));
		}
		off += n;
	}
	if (entries == 0 && sb.st_size - start > (off_t)TAR_EMPTY_MAX)
		return ohb_fail(err, OHB_E_UNTAR, "%s is damaged: it holds no entry in %lld bytes (zeros?)", tar_name,
		    (long long)(sb.st_size - start));
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
stage_add_tar(stage_t *st, int tar_fd, const char *tar_name, int64_t expect_entries, ohb_error_t *err)
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
	size_t entries = 0;
	for (;;) {
		if (poll_cancel(st))
			goto out;
		if (uw_failed(st))
			goto out;   /* uw_drain below returns why */
		struct archive_entry *e;
		int r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		entries++;
		/* ARCHIVE_RETRY: a header that fails its checksum (libarchive would
		 * skip ahead to the next good one, losing what lies between) */
		if (r < ARCHIVE_WARN || r == ARCHIVE_RETRY) {
			rc = ohb_fail(err, OHB_E_UNTAR, "%s is not a readable tar: %s", tar_name,
			    archive_error_string(a) ? archive_error_string(a) : "unknown error");
			goto out;
		}
		/* ARCHIVE_WARN: e.g. a name not convertible to the locale; the raw name is used. */
		if ((rc = stage_tar_entry(st, a, e, tar_name, err)) != 0)
			goto out;
		report(st, st->input_done + (uint64_t)archive_read_header_position(a), false);
	}
	rc = check_tar_end(tar_fd, start, archive_filter_bytes(a, 0), entries, tar_name, err);
	if (rc == 0 && expect_entries >= 0 && (uint64_t)entries != (uint64_t)expect_entries)
		rc = ohb_fail(err, OHB_E_UNTAR, "%s is damaged: it holds %zu entries where manage.json records %lld", tar_name,
		    entries, (long long)expect_entries);
out:
	if (rc != 0 || st->cancelled)
		uw_discard(st);
	{
		int wrc = uw_drain(st, rc == 0 ? err : NULL);
		if (rc == 0)
			rc = wrc;
	}
	st->input_done += (uint64_t)archive_filter_bytes(a, -1);
	report(st, st->input_done, true);
	archive_read_free(a);
	return rc;
}

/* The checks a big file's sandbox path must pass (stage.h), and its canonical
 * form into path; the reader takes over when something staged is in its way. */
static int
big_file_path(stage_t *st, const char *sandbox_path, char *path, size_t size, ohb_error_t *err)
{
	if (!stage_path_is_safe(sandbox_path))
		return ohb_fail(err, OHB_E_UNTAR, "the unsafe path \"%.200s\"; refusing to restore it",
		    sandbox_path ? sandbox_path : "(null)");
	int rc = canonical_path(sandbox_path, path, size, "big file", err);
	if (rc != 0)
		return rc;
	if (strcmp(path, "/") == 0)
		return ohb_fail(err, OHB_E_UNTAR, "a big file has no name");
	if (reg_bundle_map(st->b, path, NULL, NULL, NULL) != 0)
		return ohb_fail(err, OHB_E_UNTAR, "the big file %s is outside every mount of %s", path, st->b->name);
	if (st->paths && !ps_clear_way(st->paths, path, PS_FILE) && (rc = reader_takes_over(st, err)) != 0)
		return rc;
	return 0;
}

/* Counts a big file staged at path. */
static int
big_file_staged(stage_t *st, const char *path, uint64_t bytes, ohb_error_t *err)
{
	if (st->paths && !ps_record(st->paths, path, PS_FILE))
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	st->files++;
	st->bytes += bytes;
	st->input_done += bytes;
	report(st, st->input_done, true);
	return add_entry(st, path, STAGE_FILE, false, 0, 0, 0, err);
}

int
stage_add_file(stage_t *st, int fd, const char *sandbox_path, uint32_t mode, int64_t mtime_sec,
    int64_t mtime_nsec, uint64_t expected_size, ohb_error_t *err)
{
	if (poll_cancel(st))
		return 0;
	char path[STAGE_PATH_MAX + 2];
	int rc = big_file_path(st, sandbox_path, path, sizeof path, err);
	if (rc != 0)
		return rc;
	int out;
	bool exact;
	uint32_t want = clean_mode(mode);
	/* Created writable by its owner whatever its mode: the uncached copy
	 * reopens it for writing through /proc, which checks the mode (a 0444
	 * file would get the slow copy); stage_finish_file sets the real one. */
	if ((rc = stage_create_file(st, path, want | S_IWUSR, &exact, &out, err)) != 0)
		return rc;
	exact = exact && (want & S_IWUSR);
	uint64_t copied = 0;
	if ((rc = fsu_copy_fd_uncached(fd, out, &copied, err)) != 0) {
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
	if ((rc = stage_finish_file(out, path, want, exact, mtime_sec, mtime_nsec, err)) != 0)
		return rc;
	return big_file_staged(st, path, copied, err);
}

/* Whether the received file open on fd (read-only, from_path its only name)
 * may be moved into the stage instead of copied: a regular file of ours with
 * one link and the expected size, that nothing else has open. The last is
 * what a write lease says (fcntl(2): granted only when no other open file
 * description of the file exists, in any process, an mmap's included); it
 * stays held, so no one can open the file meanwhile without waiting for the
 * caller's F_UNLCK. */
static bool
may_take(int fd, uint64_t expected_size)
{
	struct stat sb;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink != 1 || sb.st_uid != geteuid() ||
	    (uint64_t)sb.st_size != expected_size)
		return false;
	return fcntl(fd, F_SETLEASE, F_WRLCK) == 0;
}

int
stage_take_file(stage_t *st, int fd, const char *from_path, const char *sandbox_path, uint32_t mode,
    int64_t mtime_sec, int64_t mtime_nsec, uint64_t expected_size, ohb_error_t *err)
{
	if (poll_cancel(st))
		return 0;
	if (!from_path || !may_take(fd, expected_size))
		return stage_add_file(st, fd, sandbox_path, mode, mtime_sec, mtime_nsec, expected_size, err);
	char path[STAGE_PATH_MAX + 2];
	int rc = big_file_path(st, sandbox_path, path, sizeof path, err);
	if (mtime_nsec < 0 || mtime_nsec > 999999999)
		mtime_nsec = 0;
	struct timespec ts[2] = { { .tv_sec = 0, .tv_nsec = UTIME_OMIT },
		{ .tv_sec = (time_t)mtime_sec, .tv_nsec = (long)mtime_nsec } };
	if (rc == 0 && fchmod(fd, (mode_t)clean_mode(mode)) != 0)
		rc = ohb_fail_errno(err, errno, "cannot set the mode of %s in the restore stage", path);
	if (rc == 0 && futimens(fd, ts) != 0)
		rc = ohb_fail_errno(err, errno, "cannot set the time of %s in the restore stage", path);
	bool moved = false;
	int dfd;
	const char *leaf;
	for (int attempt = 0; rc == 0 && !moved && attempt < 2; attempt++) {
		if ((rc = stage_parent(st, path, &dfd, &leaf, err)) != 0)
			break;
		if (renameat2(AT_FDCWD, from_path, dfd, leaf, RENAME_NOREPLACE) == 0)
			moved = true;
		else if (errno == EEXIST && attempt == 0)
			rc = stage_remove(st, dfd, leaf, path + 1, err);   /* the later entry wins */
		else if (errno != EXDEV)
			rc = ohb_fail_errno(err, errno, "cannot move %s into the restore stage", path);
		else
			break;   /* another file system: copy */
	}
	(void)fcntl(fd, F_SETLEASE, F_UNLCK);
	if (rc != 0)
		return rc;
	if (!moved)
		return stage_add_file(st, fd, sandbox_path, mode, mtime_sec, mtime_nsec, expected_size, err);
	return big_file_staged(st, path, expected_size, err);
}

void
stage_set_exact(stage_t *st)
{
	st->exact = true;
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
	stage_writers_free(st);
	dcache_drop(&st->cache);
	ps_free(st->paths);
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
