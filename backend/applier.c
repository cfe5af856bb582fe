/*
 * applier — committing a restore stage into a bundle's data, all or nothing.
 *
 * unpacker.c leaves everything a restore writes below the stage directory.
 * Here it goes into place in four steps (stage.h has the overview):
 *
 *   1. validate, writing nothing: each target maps to a mount, no directory on
 *      the way to it inside the mount is a symlink or a non-directory, and no
 *      existing target has the wrong kind (a directory where a file goes, or
 *      anything but a directory where a directory goes). An exact restore
 *      (stage_set_exact: an incremental chain's step, whose all.rp says what
 *      the bundle holds) replaces a target of the wrong kind instead: it
 *      becomes a "replacement", removed at apply only if it still has the
 *      kind validation saw — so running the journal again after the new
 *      content is in place never removes that content;
 *   2. write the journal durably (the staged files were flushed first);
 *   3. apply: deletions, replacements, directories (a new one moved from the stage whole,
 *      with what it holds), then each staged file renamed into place (copied
 *      when the stage is on another file system), then the directories' modes
 *      and mtimes; every file system changed is flushed (syncfs) at the end;
 *   4. remove the journal, then the stage.
 *
 * Step 3 only ever looks at what is still in the stage, so running it again
 * after a crash (stage_recover) finishes the job: a file moved already is
 * simply no longer there.
 *
 * Every walk inside a bundle's data goes component by component with
 * openat(O_NOFOLLOW | O_DIRECTORY) from the mount's directory: an app's
 * symlink can never redirect a restore outside the sandbox.
 */
#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"
#include "stage.h"

#define JOURNAL_NAME "stage.commit"
#define JOURNAL_MAX (1u << 30)
#define CRASH_ENV "OHBACKUP_TEST_CRASH_AFTER_MOVES"

/* A target of the wrong kind that an exact restore replaces. */
typedef struct repl {
	char *path;
	bool was_dir;        /* removed only while it is (not) a directory still */
} repl_t;

/* What step 3 does: entries sorted by path (parents first), one per path.
 * v and del are borrowed from the stage (or owned, from a journal); repl is
 * always owned (plan_free_repl). */
typedef struct plan {
	stage_entry_t *v;
	size_t n;
	char **del;
	size_t n_del;
	repl_t *repl;
	size_t n_repl, cap_repl;
	bool exact;
} plan_t;

static void
plan_free_repl(plan_t *p)
{
	for (size_t i = 0; i < p->n_repl; i++)
		free(p->repl[i].path);
	free(p->repl);
	p->repl = NULL;
	p->n_repl = p->cap_repl = 0;
}

static int
plan_add_repl(plan_t *p, const char *path, bool was_dir, ohb_error_t *err)
{
	if (p->n_repl == p->cap_repl) {
		size_t cap = p->cap_repl ? p->cap_repl * 2 : 8;
		repl_t *v = realloc(p->repl, cap * sizeof *v);
		if (!v)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		p->repl = v;
		p->cap_repl = cap;
	}
	if (!(p->repl[p->n_repl].path = strdup(path)))
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	p->repl[p->n_repl].was_dir = was_dir;
	p->n_repl++;
	return 0;
}

/* The file systems step 3 changed, flushed once each (syncfs) when it ends.
 * Step 3 needs no flush in between: each of its renames, mkdirs and chmods is
 * atomic on its own, a crash leaves some prefix of them done, and running it
 * again (stage_recover) does the rest. What must hold is that all of it is on
 * disk before step 4 removes the journal, and one syncfs per file system says
 * that for every directory at once, where an fsync per directory written
 * (about one per thousand files restored) waited for the disk each time. */
#define FLUSH_MAX 8

typedef struct flushset {
	dev_t dev[FLUSH_MAX];
	int fd[FLUSH_MAX];  /* a directory on that file system */
	size_t n;
} flushset_t;

/* Remembers the file system of directory fd, or fsyncs fd itself when the
 * set cannot hold it. */
static int
flush_note(flushset_t *fs, int fd, ohb_error_t *err)
{
	struct stat sb;
	if (fs && fstat(fd, &sb) == 0) {
		for (size_t i = 0; i < fs->n; i++)
			if (fs->dev[i] == sb.st_dev)
				return 0;
		if (fs->n < FLUSH_MAX) {
			int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
			if (dup >= 0) {
				fs->dev[fs->n] = sb.st_dev;
				fs->fd[fs->n++] = dup;
				return 0;
			}
		}
	}
	if (fsync(fd) != 0 && errno != EINVAL)
		return ohb_fail_errno(err, errno, "cannot sync a restored directory");
	return 0;
}

/* syncfs of every file system noted; closes them. */
static int
flush_all(flushset_t *fs, ohb_error_t *err)
{
	int rc = 0;
	for (size_t i = 0; i < fs->n; i++) {
		if (rc == 0 && syncfs(fs->fd[i]) != 0)
			rc = ohb_fail_errno(err, errno, "cannot flush the restored files to disk");
		close(fs->fd[i]);
	}
	fs->n = 0;
	return rc;
}

/* A directory open inside one mount, reused while consecutive (sorted) paths
 * share their parent. */
typedef struct cursor {
	const reg_mount_t *mount;
	char *parent;       /* path below the mount ("" = the mount's directory) */
	int fd;             /* -1: the directory does not exist (or, lenient, cannot be reached) */
	bool dirty;         /* changed: its file system is flushed at the end of step 3 */
	bool create;        /* apply: create missing directories (0700) */
	bool lenient;       /* deletions: a symlink or file in the way means "nothing there" */
	flushset_t *flush;  /* where dirty directories are noted (NULL: fsync them) */
} cursor_t;

/* "<mount prefix>/<first len bytes of rel>": the sandbox path for messages. */
static void
sandbox_name(const reg_mount_t *m, const char *rel, size_t len, char *out, size_t outsz)
{
	const char *p = m->sandbox_prefix;
	if (len == 0)
		snprintf(out, outsz, "%s", p);
	else
		snprintf(out, outsz, "%s/%.*s", strcmp(p, "/") == 0 ? "" : p, (int)len, rel);
}

static int
cursor_leave(cursor_t *c, ohb_error_t *err)
{
	int rc = 0;
	if (c->fd >= 0) {
		if (c->dirty)
			rc = flush_note(c->flush, c->fd, err);
		close(c->fd);
	}
	c->fd = -1;
	c->dirty = false;
	c->mount = NULL;
	free(c->parent);
	c->parent = NULL;
	return rc;
}

/* Why openat(dfd, name, O_NOFOLLOW | O_DIRECTORY) failed, as a refusal. */
static int
refuse_component(int dfd, const char *name, int open_errno, const char *shown, ohb_error_t *err)
{
	struct stat sb;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISLNK(sb.st_mode))
			return ohb_fail(err, OHB_E_UNTAR,
			    "%s is a symbolic link in the sandbox; refusing to restore through it", shown);
		if (!S_ISDIR(sb.st_mode))
			return ohb_fail(err, OHB_E_UNTAR,
			    "%s is not a directory in the sandbox; refusing to restore below it", shown);
	}
	return ohb_fail_errno(err, open_errno, "cannot open %s", shown);
}

/* Opens the mount's directory (creating it when c->create). */
static int
open_mount_dir(cursor_t *c, const reg_mount_t *m, int *fd_out, ohb_error_t *err)
{
	int fd = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && c->create) {
		int rc = fsu_mkdir_p(m->dir, 0700, err);
		if (rc != 0)
			return rc;
		char *copy = strdup(m->dir);
		if (!copy)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		rc = fsu_fsync_dir(dirname(copy), err);
		free(copy);
		if (rc != 0)
			return rc;
		fd = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0 && errno == ENOENT && !c->create) {
		*fd_out = -1;
		return 0;
	}
	if (fd < 0) {
		if (errno == ENOTDIR)
			return ohb_fail(err, OHB_E_UNTAR, "the directory %s of mount %s is not a directory", m->dir,
			    m->sandbox_prefix);
		return ohb_fail_errno(err, errno, "cannot open %s", m->dir);
	}
	*fd_out = fd;
	return 0;
}

/* Points c at the directory rel[0..plen) below mount m, walking from the
 * mount's directory without following anything. */
static int
cursor_seek(cursor_t *c, const reg_mount_t *m, const char *rel, size_t plen, ohb_error_t *err)
{
	if (c->parent && c->mount == m && strlen(c->parent) == plen && memcmp(c->parent, rel, plen) == 0)
		return 0;
	int rc = cursor_leave(c, err);
	if (rc != 0)
		return rc;
	char *parent = strndup(rel, plen);
	if (!parent)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	int cur;
	if ((rc = open_mount_dir(c, m, &cur, err)) != 0) {
		free(parent);
		return rc;
	}
	for (size_t at = 0; cur >= 0 && at < plen;) {
		size_t end = at;
		while (end < plen && rel[end] != '/')
			end++;
		char name[NAME_MAX + 1];
		snprintf(name, sizeof name, "%.*s", (int)(end - at), rel + at);
		int fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && c->create) {
			if (mkdirat(cur, name, 0700) != 0 && errno != EEXIST) {
				char shown[STAGE_PATH_MAX + 2];
				sandbox_name(m, rel, end, shown, sizeof shown);
				rc = ohb_fail_errno(err, errno, "cannot create %s", shown);
			} else {
				rc = flush_note(c->flush, cur, err);
				if (rc == 0)
					fd = openat(cur, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			}
		}
		if (rc == 0 && fd < 0) {
			int e = errno;
			if (e == ENOENT && !c->create) {
				close(cur);
				cur = -1;
				break;
			}
			if (c->lenient && (e == ENOTDIR || e == ELOOP)) {
				close(cur);
				cur = -1;
				break;
			}
			char shown[STAGE_PATH_MAX + 2];
			sandbox_name(m, rel, end, shown, sizeof shown);
			rc = refuse_component(cur, name, e, shown, err);
		}
		close(cur);
		cur = fd;
		if (rc != 0)
			break;
		at = end + 1;
	}
	if (rc != 0) {
		if (cur >= 0)
			close(cur);
		free(parent);
		return rc;
	}
	c->mount = m;
	c->parent = parent;
	c->fd = cur;
	return 0;
}

/* Splits a canonical sandbox path into its mount, the path below it, and the
 * length of the parent part of that. */
static int
locate(const reg_bundle_t *b, const char *path, const reg_mount_t **m, const char **rel, size_t *plen,
    ohb_error_t *err)
{
	if (reg_bundle_map(b, path, m, rel, NULL) != 0)
		return ohb_fail(err, OHB_E_UNTAR, "%s is outside every mount of %s", path, b->name);
	const char *slash = strrchr(*rel, '/');
	*plen = slash ? (size_t)(slash - *rel) : 0;
	return 0;
}

static const char *
leaf_of(const char *rel, size_t plen)
{
	return plen ? rel + plen + 1 : rel;
}

/* ---- step 1: validation ----------------------------------------------------------- */

static bool
is_below(const char *path, const char *dir)
{
	size_t len = strlen(dir);
	return strncmp(path, dir, len) == 0 && path[len] == '/';
}

/* True when another mount's prefix lies below dir: its files belong to that
 * mount's directory, so dir cannot be moved as one tree. */
static bool
holds_a_mount(const reg_bundle_t *b, const char *dir)
{
	for (size_t i = 0; i < b->n_mounts; i++)
		if (is_below(b->mounts[i].sandbox_prefix, dir))
			return true;
	return false;
}


#define REPLACED 1   /* validate_entry: the target will be replaced (an exact restore) */

/* Validates one entry; REPLACED when an exact restore replaces its target. */
static int
validate_entry(const reg_bundle_t *b, cursor_t *c, const stage_entry_t *e, plan_t *p, ohb_error_t *err)
{
	const reg_mount_t *m;
	const char *rel;
	size_t plen;
	int rc = locate(b, e->path, &m, &rel, &plen, err);
	if (rc != 0)
		return rc;
	if (*rel == '\0') {
		/* The mount's own directory. */
		if (e->kind == STAGE_FILE)
			return ohb_fail(err, OHB_E_UNTAR, "%s is a mount point of %s, not a file", e->path, b->name);
		int fd;
		if ((rc = open_mount_dir(c, m, &fd, err)) != 0)
			return rc;
		if (fd >= 0)
			close(fd);
		return 0;
	}
	if ((rc = cursor_seek(c, m, rel, plen, err)) != 0)
		return rc;
	if (c->fd < 0)
		return 0;   /* missing: created at apply */
	struct stat sb;
	if (fstatat(c->fd, leaf_of(rel, plen), &sb, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT)
			return 0;
		return ohb_fail_errno(err, errno, "cannot read %s", e->path);
	}
	bool wrong = (e->kind == STAGE_FILE && S_ISDIR(sb.st_mode)) || (e->kind == STAGE_DIR && !S_ISDIR(sb.st_mode));
	if (wrong && p->exact && !holds_a_mount(b, e->path))
		return (rc = plan_add_repl(p, e->path, S_ISDIR(sb.st_mode), err)) != 0 ? rc : REPLACED;
	if (e->kind == STAGE_FILE && S_ISDIR(sb.st_mode))
		return ohb_fail(err, OHB_E_UNTAR,
		    "%s is a directory in the sandbox but a file in the backup; refusing to replace it", e->path);
	if (e->kind == STAGE_DIR && !S_ISDIR(sb.st_mode))
		return ohb_fail(err, OHB_E_UNTAR, "%s is %s in the sandbox but a directory in the backup; refusing "
		    "to replace it", e->path, S_ISLNK(sb.st_mode) ? "a symbolic link" : "not a directory");
	return 0;
}

/* True when path is a replaced target or lies below one. */
static bool
in_a_replacement(const plan_t *p, const char *path)
{
	for (size_t i = 0; i < p->n_repl; i++)
		if (strcmp(path, p->repl[i].path) == 0 || is_below(path, p->repl[i].path))
			return true;
	return false;
}

static int
validate(const reg_bundle_t *b, plan_t *p, ohb_error_t *err)
{
	cursor_t c = { .fd = -1 };
	int rc = 0;
	for (size_t i = 0; i < p->n && rc == 0; i++) {
		/* What goes below a replaced target is new. Every replacement is
		 * asked, not the last one: "/a-b" sorts between "/a" and "/a/x". */
		if (p->n_repl && in_a_replacement(p, p->v[i].path))
			continue;
		rc = validate_entry(b, &c, &p->v[i], p, err);
		if (rc == REPLACED)
			rc = 0;
	}
	for (size_t i = 0; i < p->n_del && rc == 0; i++)
		if (reg_bundle_map(b, p->del[i], NULL, NULL, NULL) != 0)
			rc = ohb_fail(err, OHB_E_UNTAR, "%s is outside every mount of %s", p->del[i], b->name);
	cursor_leave(&c, NULL);
	return rc;
}

/* ---- step 3: apply ------------------------------------------------------------------- */

/* Removes dfd/name and everything below it; never follows a symlink. */
static int
remove_at(int dfd, const char *name, const char *shown, ohb_error_t *err)
{
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return ohb_fail_errno(err, errno, "cannot delete %s", shown);
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ohb_fail_errno(err, errno, "cannot delete %s", shown);
	DIR *d = fdopendir(fd);
	if (!d) {
		int rc = ohb_fail_errno(err, errno, "cannot delete %s", shown);
		close(fd);
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		rc = remove_at(dirfd(d), de->d_name, shown, err);
	}
	closedir(d);
	if (rc == 0 && unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = ohb_fail_errno(err, errno, "cannot delete %s", shown);
	return rc;
}

/* Removes the target at path and what is below it (never a mount's own
 * directory, never through a symlink). want_dir >= 0: only while it is (1)
 * or is not (0) a directory — a replaced target that has its new kind
 * already (a journal run again after a crash) stays. */
static int
remove_target(const reg_bundle_t *b, cursor_t *c, const char *path, int want_dir, ohb_error_t *err)
{
	const reg_mount_t *m;
	const char *rel;
	size_t plen;
	int rc = locate(b, path, &m, &rel, &plen, err);
	if (rc != 0 || *rel == '\0')
		return rc;
	if ((rc = cursor_seek(c, m, rel, plen, err)) != 0 || c->fd < 0)
		return rc;
	if (want_dir >= 0) {
		struct stat sb;
		if (fstatat(c->fd, leaf_of(rel, plen), &sb, AT_SYMLINK_NOFOLLOW) != 0)
			return 0;   /* gone already */
		if ((S_ISDIR(sb.st_mode) != 0) != (want_dir == 1))
			return 0;   /* the new kind is in place already */
	}
	c->dirty = true;
	return remove_at(c->fd, leaf_of(rel, plen), path, err);
}

/* The deletions, then the replaced targets that still have the kind
 * validation saw. */
static int
apply_removals(const reg_bundle_t *b, const plan_t *p, flushset_t *fs, ohb_error_t *err)
{
	cursor_t c = { .fd = -1, .lenient = true, .flush = fs };
	int rc = 0;
	for (size_t i = 0; i < p->n_del && rc == 0; i++)
		rc = remove_target(b, &c, p->del[i], -1, err);
	for (size_t i = 0; i < p->n_repl && rc == 0; i++)
		rc = remove_target(b, &c, p->repl[i].path, p->repl[i].was_dir ? 1 : 0, err);
	int rc2 = cursor_leave(&c, err);
	return rc ? rc : rc2;
}

/* Opens the stage directory holding the staged copy of path (cached by
 * parent). *sfd is -1 when that directory is gone. */
static int
stage_dir_of(int stage_fd, const char *path, char **cache, int *sfd, ohb_error_t *err)
{
	const char *rel = path + 1;
	const char *slash = strrchr(rel, '/');
	size_t plen = slash ? (size_t)(slash - rel) : 0;
	if (*cache && strlen(*cache) == plen && memcmp(*cache, rel, plen) == 0)
		return 0;
	if (*sfd >= 0 && *sfd != stage_fd)
		close(*sfd);
	*sfd = -1;
	free(*cache);
	if (!(*cache = strndup(rel, plen)))
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	if (plen == 0) {
		*sfd = stage_fd;
		return 0;
	}
	/* The stage is ours and holds no symlinks; O_NOFOLLOW guards the last step. */
	*sfd = openat(stage_fd, *cache, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*sfd < 0 && errno != ENOENT)
		return ohb_fail_errno(err, errno, "cannot open the restore stage for %s", path);
	return 0;
}

/* True when path lies below dir (both canonical sandbox paths). */
/* Creates the directories of the plan. A directory that does not exist in
 * the sandbox yet is not created empty but moved whole from the stage, with
 * everything staged below it: one rename instead of one per file (a restore
 * onto an empty or new bundle moves a handful of directories). That is the
 * same all-or-nothing step as a file's rename: the staged tree is complete
 * and flushed (the journal says so), RENAME_NOREPLACE never replaces what
 * appeared in the meantime, and what the move took along is simply no longer
 * in the stage when apply_files and a recovery look for it. Across file
 * systems, or when the stage has no such directory, it is created empty and
 * filled file by file. *moves counts the moves for the crash test hook. */
static int
apply_dirs(const reg_bundle_t *b, int stage_fd, const plan_t *p, unsigned long crash_after,
    unsigned long *moves, flushset_t *fs, ohb_error_t *err)
{
	cursor_t c = { .fd = -1, .create = true, .flush = fs };
	char *scache = NULL;
	int sfd = -1, rc = 0;
	const char *moved = NULL; /* the last directory moved whole */
	for (size_t i = 0; i < p->n && rc == 0; i++) {
		const stage_entry_t *e = &p->v[i];
		if (e->kind != STAGE_DIR)
			continue;
		if (moved && is_below(e->path, moved))
			continue;   /* came along with it */
		const reg_mount_t *m;
		const char *rel;
		size_t plen;
		if ((rc = locate(b, e->path, &m, &rel, &plen, err)) != 0)
			break;
		if (*rel == '\0') {
			int fd;
			if ((rc = open_mount_dir(&c, m, &fd, err)) == 0)
				close(fd);
			continue;
		}
		if ((rc = cursor_seek(&c, m, rel, plen, err)) != 0)
			break;
		const char *leaf = leaf_of(rel, plen);
		bool whole = stage_fd >= 0 && !holds_a_mount(b, e->path);
		if (whole && (rc = stage_dir_of(stage_fd, e->path, &scache, &sfd, err)) != 0)
			break;
		if (whole && sfd >= 0 && renameat2(sfd, strrchr(e->path, '/') + 1, c.fd, leaf, RENAME_NOREPLACE) == 0) {
			c.dirty = true;
			moved = e->path;
			if (crash_after && ++*moves == crash_after)
				_exit(99);   /* test hook, stage.h */
			continue;
		}
		if (mkdirat(c.fd, leaf, 0700) == 0) {
			c.dirty = true;
			continue;
		}
		struct stat sb;
		if (errno != EEXIST)
			rc = ohb_fail_errno(err, errno, "cannot create %s", e->path);
		else if (fstatat(c.fd, leaf, &sb, AT_SYMLINK_NOFOLLOW) != 0)
			rc = ohb_fail_errno(err, errno, "cannot read %s", e->path);
		else if (!S_ISDIR(sb.st_mode))
			rc = ohb_fail(err, OHB_E_UNTAR, "%s is not a directory in the sandbox; refusing to replace it",
			    e->path);
	}
	if (sfd >= 0 && sfd != stage_fd)
		close(sfd);
	free(scache);
	int rc2 = cursor_leave(&c, err);
	return rc ? rc : rc2;
}

/* Moves a staged file to another file system: a copy under a temporary name
 * in the target directory, flushed, then renamed over the target. */
static int
move_across(int sfd, int tfd, const char *leaf, const char *path, ohb_error_t *err)
{
	char tmp[NAME_MAX + 1];
	snprintf(tmp, sizeof tmp, ".%.200s.ohbtmp", leaf);
	int in = openat(sfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0)
		return ohb_fail_errno(err, errno, "cannot read the staged copy of %s", path);
	struct stat sb;
	if (fstat(in, &sb) != 0) {
		int rc = ohb_fail_errno(err, errno, "cannot read the staged copy of %s", path);
		close(in);
		return rc;
	}
	if (unlinkat(tfd, tmp, 0) != 0 && errno != ENOENT) {
		int rc = ohb_fail_errno(err, errno, "cannot remove an old temporary file next to %s", path);
		close(in);
		return rc;
	}
	int out = openat(tfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		int rc = ohb_fail_errno(err, errno, "cannot create a temporary file next to %s", path);
		close(in);
		return rc;
	}
	struct timespec ts[2] = { sb.st_atim, sb.st_mtim };
	int rc = fsu_copy_fd(in, out, NULL, err);
	close(in);
	if (rc == 0 && fchmod(out, sb.st_mode & 07777) != 0)
		rc = ohb_fail_errno(err, errno, "cannot set the mode of %s", path);
	if (rc == 0 && futimens(out, ts) != 0)
		rc = ohb_fail_errno(err, errno, "cannot set the time of %s", path);
	if (rc == 0 && fsync(out) != 0)
		rc = ohb_fail_errno(err, errno, "cannot write %s to disk", path);
	if (close(out) != 0 && rc == 0)
		rc = ohb_fail_errno(err, errno, "cannot write %s", path);
	if (rc == 0 && renameat(tfd, tmp, tfd, leaf) != 0)
		rc = ohb_fail_errno(err, errno, "cannot move %s into place", path);
	if (rc != 0) {
		unlinkat(tfd, tmp, 0);
		return rc;
	}
	if (unlinkat(sfd, leaf, 0) != 0 && errno != ENOENT)
		return ohb_fail_errno(err, errno, "cannot remove the staged copy of %s", path);
	return 0;
}

static int
apply_files(const reg_bundle_t *b, int stage_fd, const plan_t *p, unsigned long crash_after,
    unsigned long *moves, flushset_t *fs, ohb_error_t *err)
{
	cursor_t c = { .fd = -1, .create = true, .flush = fs };
	char *scache = NULL;
	int sfd = -1, rc = 0;
	for (size_t i = 0; i < p->n && rc == 0 && stage_fd >= 0; i++) {
		const stage_entry_t *e = &p->v[i];
		if (e->kind != STAGE_FILE)
			continue;
		if ((rc = stage_dir_of(stage_fd, e->path, &scache, &sfd, err)) != 0)
			break;
		if (sfd < 0)
			continue;
		const char *sleaf = strrchr(e->path, '/') + 1;
		struct stat sb;
		if (fstatat(sfd, sleaf, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue;   /* moved before a crash */
			rc = ohb_fail_errno(err, errno, "cannot read the staged copy of %s", e->path);
			break;
		}
		const reg_mount_t *m;
		const char *rel;
		size_t plen;
		if ((rc = locate(b, e->path, &m, &rel, &plen, err)) != 0)
			break;
		if ((rc = cursor_seek(&c, m, rel, plen, err)) != 0)
			break;
		const char *leaf = leaf_of(rel, plen);
		if (renameat(sfd, sleaf, c.fd, leaf) != 0) {
			if (errno != EXDEV) {
				rc = ohb_fail_errno(err, errno, "cannot move %s into place", e->path);
				break;
			}
			if ((rc = move_across(sfd, c.fd, sleaf, e->path, err)) != 0)
				break;
		}
		c.dirty = true;
		if (crash_after && ++*moves == crash_after)
			_exit(99);   /* test hook, stage.h */
	}
	if (sfd >= 0 && sfd != stage_fd)
		close(sfd);
	free(scache);
	int rc2 = cursor_leave(&c, err);
	return rc ? rc : rc2;
}

static int
apply_dir_meta(const reg_bundle_t *b, const plan_t *p, flushset_t *fs, ohb_error_t *err)
{
	cursor_t c = { .fd = -1, .flush = fs };
	int rc = 0;
	for (size_t i = 0; i < p->n && rc == 0; i++) {
		const stage_entry_t *e = &p->v[i];
		if (e->kind != STAGE_DIR || !e->has_meta)
			continue;
		const reg_mount_t *m;
		const char *rel;
		size_t plen;
		if ((rc = locate(b, e->path, &m, &rel, &plen, err)) != 0)
			break;
		int fd = -1, open_errno = ENOENT;
		if (*rel == '\0') {
			if ((rc = open_mount_dir(&c, m, &fd, err)) != 0)
				break;
		} else {
			if ((rc = cursor_seek(&c, m, rel, plen, err)) != 0)
				break;
			if (c.fd >= 0) {
				fd = openat(c.fd, leaf_of(rel, plen), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				open_errno = errno;
			}
		}
		if (fd < 0) {
			rc = ohb_fail_errno(err, open_errno, "cannot open the restored directory %s", e->path);
			break;
		}
		struct timespec ts[2] = { { .tv_sec = 0, .tv_nsec = UTIME_OMIT },
			{ .tv_sec = (time_t)e->mtime_sec, .tv_nsec = (long)e->mtime_nsec } };
		if (fchmod(fd, (mode_t)e->mode) != 0)
			rc = ohb_fail_errno(err, errno, "cannot set the mode of %s", e->path);
		else if (futimens(fd, ts) != 0)
			rc = ohb_fail_errno(err, errno, "cannot set the time of %s", e->path);
		else
			rc = flush_note(fs, fd, err);
		close(fd);
	}
	int rc2 = cursor_leave(&c, err);
	return rc ? rc : rc2;
}

static int
apply(const reg_bundle_t *b, int stage_fd, const plan_t *p, unsigned long crash_after, ohb_error_t *err)
{
	unsigned long moves = 0;
	flushset_t fs = { .n = 0 };
	int rc = apply_removals(b, p, &fs, err);
	if (rc == 0)
		rc = apply_dirs(b, stage_fd, p, crash_after, &moves, &fs, err);
	if (rc == 0)
		rc = apply_files(b, stage_fd, p, crash_after, &moves, &fs, err);
	if (rc == 0)
		rc = apply_dir_meta(b, p, &fs, err);
	int rc2 = flush_all(&fs, err);
	return rc ? rc : rc2;
}

/* Step 4: the journal goes first, so a crash in between leaves a stage
 * without a journal, which stage_recover simply removes. */
static int
finish(const char *restore_dir, const char *journal_path, const char *stage_dir, ohb_error_t *err)
{
	if (unlink(journal_path) != 0 && errno != ENOENT)
		return ohb_fail_errno(err, errno, "cannot remove %s", journal_path);
	int rc = fsu_fsync_dir(restore_dir, err);
	if (rc == 0)
		rc = fsu_rm_rf(stage_dir, err);
	return rc;
}

/* ---- the journal --------------------------------------------------------------------- */

static char *
journal_text(const plan_t *p)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *files = cJSON_AddArrayToObject(root, "files");
	cJSON *dirs = cJSON_AddArrayToObject(root, "dirs");
	cJSON *dels = cJSON_AddArrayToObject(root, "deletions");
	cJSON *repls = cJSON_AddArrayToObject(root, "replacements");
	char *text = NULL;
	if (!root || !files || !dirs || !dels || !repls || !cJSON_AddNumberToObject(root, "format", 1))
		goto out;
	for (size_t i = 0; i < p->n_repl; i++) {
		cJSON *r = cJSON_CreateObject();
		if (!r || !cJSON_AddItemToArray(repls, r) || !cJSON_AddStringToObject(r, "path", p->repl[i].path) ||
		    !cJSON_AddStringToObject(r, "was", p->repl[i].was_dir ? "dir" : "other"))
			goto out;
	}
	for (size_t i = 0; i < p->n; i++) {
		const stage_entry_t *e = &p->v[i];
		if (e->kind == STAGE_FILE) {
			cJSON *s = cJSON_CreateString(e->path);
			if (!s || !cJSON_AddItemToArray(files, s))
				goto out;
			continue;
		}
		cJSON *d = cJSON_CreateObject();
		if (!d || !cJSON_AddItemToArray(dirs, d) || !cJSON_AddStringToObject(d, "path", e->path))
			goto out;
		if (e->has_meta && (!cJSON_AddNumberToObject(d, "mode", e->mode) ||
		    !cJSON_AddNumberToObject(d, "mtimeSec", (double)e->mtime_sec) ||
		    !cJSON_AddNumberToObject(d, "mtimeNsec", (double)e->mtime_nsec)))
			goto out;
	}
	for (size_t i = 0; i < p->n_del; i++) {
		cJSON *s = cJSON_CreateString(p->del[i]);
		if (!s || !cJSON_AddItemToArray(dels, s))
			goto out;
	}
	text = cJSON_PrintUnformatted(root);
out:
	cJSON_Delete(root);
	return text;
}

static void
plan_free(plan_t *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].path);
	free(p->v);
	for (size_t i = 0; i < p->n_del; i++)
		free(p->del[i]);
	free(p->del);
	plan_free_repl(p);
	memset(p, 0, sizeof *p);
}

static bool
journal_path_ok(const cJSON *s)
{
	return cJSON_IsString(s) && s->valuestring[0] == '/' && stage_path_is_safe(s->valuestring);
}

/* Adds one journal entry to p (which has room). */
static bool
plan_push(plan_t *p, const char *path, int kind, const cJSON *d)
{
	stage_entry_t *e = &p->v[p->n];
	memset(e, 0, sizeof *e);
	e->kind = kind;
	if (d) {
		const cJSON *mode = cJSON_GetObjectItemCaseSensitive(d, "mode");
		const cJSON *sec = cJSON_GetObjectItemCaseSensitive(d, "mtimeSec");
		const cJSON *nsec = cJSON_GetObjectItemCaseSensitive(d, "mtimeNsec");
		if (cJSON_IsNumber(mode) && cJSON_IsNumber(sec) && cJSON_IsNumber(nsec)) {
			e->has_meta = true;
			e->mode = (uint32_t)mode->valuedouble & 07777 & ~(uint32_t)(S_ISUID | S_ISGID);
			e->mtime_sec = (int64_t)sec->valuedouble;
			e->mtime_nsec = (int64_t)nsec->valuedouble;
		}
	}
	if (!(e->path = strdup(path)))
		return false;
	p->n++;
	return true;
}

static int
stage_entry_cmp(const void *a, const void *b)
{
	const stage_entry_t *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	if (c != 0)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
journal_parse(const char *text, size_t len, const char *what, plan_t *p, ohb_error_t *err)
{
	memset(p, 0, sizeof *p);
	cJSON *root = cJSON_ParseWithLength(text, len);
	const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
	const cJSON *dirs = cJSON_GetObjectItemCaseSensitive(root, "dirs");
	const cJSON *dels = cJSON_GetObjectItemCaseSensitive(root, "deletions");
	int rc = 0;
	if (!cJSON_IsArray(files) || !cJSON_IsArray(dirs) || !cJSON_IsArray(dels)) {
		rc = ohb_fail(err, OHB_E_UNTAR, "the restore journal %s is damaged; remove it to discard the restore",
		    what);
		goto out;
	}
	size_t nf = (size_t)cJSON_GetArraySize(files), nd = (size_t)cJSON_GetArraySize(dirs);
	size_t nx = (size_t)cJSON_GetArraySize(dels);
	p->v = calloc(nf + nd + 1, sizeof *p->v);
	p->del = calloc(nx + 1, sizeof *p->del);
	if (!p->v || !p->del) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, files) {
		if (!journal_path_ok(it))
			goto damaged;
		if (!plan_push(p, it->valuestring, STAGE_FILE, NULL))
			goto nomem;
	}
	cJSON_ArrayForEach(it, dirs) {
		const cJSON *path = cJSON_GetObjectItemCaseSensitive(it, "path");
		if (!journal_path_ok(path))
			goto damaged;
		if (!plan_push(p, path->valuestring, STAGE_DIR, it))
			goto nomem;
	}
	cJSON_ArrayForEach(it, dels) {
		if (!journal_path_ok(it))
			goto damaged;
		if (!(p->del[p->n_del] = strdup(it->valuestring)))
			goto nomem;
		p->n_del++;
	}
	/* Optional: journals written before replacements existed have none. */
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "replacements")) {
		const cJSON *path = cJSON_GetObjectItemCaseSensitive(it, "path");
		const cJSON *was = cJSON_GetObjectItemCaseSensitive(it, "was");
		if (!journal_path_ok(path) || !cJSON_IsString(was))
			goto damaged;
		if (plan_add_repl(p, path->valuestring, strcmp(was->valuestring, "dir") == 0, NULL) != 0)
			goto nomem;
	}
	for (size_t i = 0; i < p->n; i++)
		p->v[i].seq = i;
	if (p->n > 1)
		qsort(p->v, p->n, sizeof *p->v, stage_entry_cmp);
	goto out;
damaged:
	rc = ohb_fail(err, OHB_E_UNTAR, "the restore journal %s holds an unsafe path; remove it to discard the "
	    "restore", what);
	goto out;
nomem:
	rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
out:
	cJSON_Delete(root);
	if (rc != 0)
		plan_free(p);
	return rc;
}

/* ---- building the plan of a stage ---------------------------------------------------- */

/* Index of the first entry whose path is >= key. */
static size_t
lower_bound(const stage_entry_t *v, size_t n, const char *key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(v[mid].path, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* True when some entry is path or lies below it. */
static bool
covers_an_entry(const stage_entry_t *v, size_t n, const char *path)
{
	if (strcmp(path, "/") == 0)
		return n > 0;
	size_t len = strlen(path);
	for (size_t i = lower_bound(v, n, path); i < n && strncmp(v[i].path, path, len) == 0; i++)
		if (v[i].path[len] == '\0' || v[i].path[len] == '/')
			return true;
	return false;
}

/* Sorts the stage's entries, keeps the latest one per path, drops entries
 * that a later one replaced in the stage (a file where a directory came
 * later, or the reverse) and deletions of what is being restored. Only a
 * stage where the unpacker replaced something (stage_remove, st->removed) can hold an
 * entry that is gone or of another kind: the others are taken as recorded,
 * without a stat each (50 000 path walks for a backup of small files). */
static int
build_plan(stage_t *st, plan_t *p, ohb_error_t *err)
{
	if (st->n_entries > 1)   /* an empty stage (an empty tar) has no array at all */
		qsort(st->entries, st->n_entries, sizeof *st->entries, stage_entry_cmp);
	size_t k = 0;
	for (size_t i = 0; i < st->n_entries; i++) {
		stage_entry_t *e = &st->entries[i];
		bool superseded = i + 1 < st->n_entries && strcmp(e->path, st->entries[i + 1].path) == 0;
		bool present = !superseded;
		if (present && st->removed > 0 && strcmp(e->path, "/") != 0) {
			struct stat sb;
			if (fstatat(st->root_fd, e->path + 1, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
				if (errno != ENOENT && errno != ENOTDIR)
					return ohb_fail_errno(err, errno, "cannot read %s in the restore stage", e->path);
				present = false;
			} else {
				present = e->kind == STAGE_DIR ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode);
			}
		}
		if (!present) {
			free(e->path);
			continue;
		}
		st->entries[k++] = *e;
	}
	st->n_entries = k;

	size_t d = 0;
	for (size_t i = 0; i < st->n_deletions; i++) {
		if (covers_an_entry(st->entries, st->n_entries, st->deletions[i]))
			free(st->deletions[i]);
		else
			st->deletions[d++] = st->deletions[i];
	}
	st->n_deletions = d;
	/* Borrowed: the stage keeps ownership. */
	p->v = st->entries;
	p->n = st->n_entries;
	p->del = st->deletions;
	p->n_del = st->n_deletions;
	p->exact = st->exact;
	return 0;
}

/* Directories the restore only puts files into (or deletes from) keep their
 * mtime: their own metadata is not part of what is restored, and a restore
 * that bumps it makes them look changed to the next incremental backup. Each
 * existing parent of an entry or deletion that has no metadata of its own in
 * the stage gets its current mode and mtime recorded, so apply_dir_meta (and a
 * recovery, through the journal) puts them back after the moves. */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The live mode and mtime of sandbox directory `path`; false when it is not an existing directory. */
static bool
live_dir_meta(const reg_bundle_t *b, const char *path, struct stat *sb)
{
	const reg_mount_t *m;
	const char *rel;
	if (reg_bundle_map(b, path, &m, &rel, NULL) != 0 || *rel == '\0')
		return false;
	char *real = fsu_join(m->dir, rel);
	bool ok = real && lstat(real, sb) == 0 && S_ISDIR(sb->st_mode);
	free(real);
	return ok;
}

static int
keep_parent_times(stage_t *st, plan_t *p, ohb_error_t *err)
{
	size_t n_paths = p->n + p->n_del, n_par = 0, n0 = st->n_entries;
	char **parents = calloc(n_paths ? n_paths : 1, sizeof *parents);
	if (!parents)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	int rc = 0;
	for (size_t i = 0; i < n_paths && rc == 0; i++) {
		const char *path = i < p->n ? p->v[i].path : p->del[i - p->n];
		const char *slash = strrchr(path, '/');
		if (!slash || slash == path)
			continue;   /* "/" or a child of "/" */
		if (!(parents[n_par] = strndup(path, (size_t)(slash - path))))
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		else
			n_par++;
	}
	if (n_par > 1)
		qsort(parents, n_par, sizeof *parents, cmp_str);
	for (size_t i = 0; i < n_par && rc == 0; i++) {
		if (i > 0 && strcmp(parents[i], parents[i - 1]) == 0)
			continue;
		struct stat sb;
		if (in_a_replacement(p, parents[i]))
			continue;   /* the directory goes (or is new): nothing of it to keep */
		if (!live_dir_meta(st->b, parents[i], &sb))
			continue;   /* created by the restore: 0700 and now, like any new parent */
		size_t k = lower_bound(st->entries, n0, parents[i]);
		stage_entry_t *e = NULL;
		for (; k < n0 && strcmp(st->entries[k].path, parents[i]) == 0; k++)
			if (st->entries[k].kind == STAGE_DIR)
				e = &st->entries[k];
		if (e && e->has_meta)
			continue;   /* the backup says what this directory looks like */
		if (!e) {
			stage_entry_t *nv = realloc(st->entries, (st->n_entries + 1) * sizeof *nv);
			if (!nv) {
				rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
				break;
			}
			st->entries = nv;
			char *copy = strdup(parents[i]);
			if (!copy) {
				rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
				break;
			}
			e = &st->entries[st->n_entries++];
			memset(e, 0, sizeof *e);
			e->path = copy;
			e->kind = STAGE_DIR;
			e->seq = (size_t)-1;
		}
		e->has_meta = true;
		e->mode = (uint32_t)sb.st_mode & 07777;
		e->mtime_sec = sb.st_mtim.tv_sec;
		e->mtime_nsec = sb.st_mtim.tv_nsec;
	}
	for (size_t i = 0; i < n_par; i++)
		free(parents[i]);
	free(parents);
	if (st->n_entries > 1)
		qsort(st->entries, st->n_entries, sizeof *st->entries, stage_entry_cmp);
	p->v = st->entries;
	p->n = st->n_entries;
	return rc;
}

/* ---- the public functions --------------------------------------------------------- */

/* Steps 1-4 for the plan of st. */
static int
commit_plan(stage_t *st, plan_t *p, ohb_error_t *err)
{
	int rc;
	if ((rc = validate(st->b, p, err)) != 0)
		return rc;
	if ((rc = keep_parent_times(st, p, err)) != 0)
		return rc;

	/* The staged files must be on disk before the journal says they are complete. */
	stage_writers_free(st);
	if (syncfs(st->root_fd) != 0)
		return ohb_fail_errno(err, errno, "cannot flush the restore stage of %s", st->b->name);
	char *text = journal_text(p);
	if (!text)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	rc = fsu_write_atomic(st->restore_dir, JOURNAL_NAME, text, strlen(text), 0600, err);
	free(text);
	if (rc != 0)
		return rc;
	st->journaled = true;

	const char *crash = getenv(CRASH_ENV);
	unsigned long crash_after = crash ? strtoul(crash, NULL, 10) : 0;
	if ((rc = apply(st->b, st->root_fd, p, crash_after, err)) != 0)
		return rc;   /* the journal stays: stage_recover retries */
	if ((rc = finish(st->restore_dir, st->journal_path, st->stage_dir, err)) != 0)
		return rc;
	st->finished = true;
	return 0;
}

int
stage_commit(stage_t *st, ohb_error_t *err)
{
	if (st->cancelled)
		return ohb_fail(err, OHB_E_INVAL, "the restore of %s was cancelled; nothing to commit", st->b->name);
	if (st->journaled)
		return ohb_fail(err, OHB_E_INVAL, "the restore of %s was committed already", st->b->name);
	plan_t p = { 0 };
	int rc = build_plan(st, &p, err);
	if (rc == 0)
		rc = commit_plan(st, &p, err);
	plan_free_repl(&p);   /* the rest of the plan is borrowed from the stage */
	return rc;
}

/* Removes journal temp files a crash may have left in restore_dir. */
static void
remove_journal_litter(const char *restore_dir)
{
	int fd = open(restore_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	const char *prefix = "." JOURNAL_NAME ".tmp.";
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			unlinkat(dirfd(d), de->d_name, 0);
	closedir(d);
}

int
stage_recover_commit(const reg_bundle_t *b, ohb_error_t *err)
{
	char *restore_dir = fsu_join(b->temp_dir, "restore");
	char *stage_dir = restore_dir ? fsu_join(restore_dir, "stage") : NULL;
	char *journal = restore_dir ? fsu_join(restore_dir, JOURNAL_NAME) : NULL;
	char *text = NULL;
	plan_t p = { 0 };
	int stage_fd = -1, rc = 0;
	if (!stage_dir || !journal) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	remove_journal_litter(restore_dir);
	size_t len = 0;
	if (access(journal, F_OK) != 0) {
		/* Never committed: the bundle still has its old data; the stage goes. */
		rc = fsu_rm_rf(stage_dir, err);
		goto out;
	}
	if ((rc = fsu_read_file(journal, JOURNAL_MAX, &text, &len, err)) != 0)
		goto out;
	if ((rc = journal_parse(text, len, journal, &p, err)) != 0)
		goto out;
	stage_fd = open(stage_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (stage_fd < 0 && errno != ENOENT) {
		rc = ohb_fail_errno(err, errno, "cannot open the restore stage %s", stage_dir);
		goto out;
	}
	if ((rc = apply(b, stage_fd, &p, 0, err)) != 0)
		goto out;
	rc = finish(restore_dir, journal, stage_dir, err);
out:
	if (stage_fd >= 0)
		close(stage_fd);
	plan_free(&p);
	free(text);
	free(journal);
	free(stage_dir);
	free(restore_dir);
	return rc;
}

int
stage_recover(const reg_bundle_t *b, ohb_error_t *err)
{
	int rc = stage_recover_commit(b, err);
	/* The files a client sent for a session that died with the service are
	 * of no use to anyone now (session.c keeps them in restore/incoming). */
	char *incoming = fsu_join(b->temp_dir, "restore/incoming");
	if (!incoming)
		return rc ? rc : ohb_fail(err, OHB_E_NOMEM, "out of memory");
	int rc2 = fsu_rm_rf(incoming, rc ? NULL : err);
	free(incoming);
	return rc ? rc : rc2;
}
