/*
 * scanner — decides what a bundle's backup consists of (REFERENCE.md "Backup:
 * what a bundle's backup consists of") by walking the bundle's mounts.
 *
 * The walk
 *   Each mount is walked from its real directory with openat + fdopendir: the
 *   process never changes directory (LESSONS.md "Threads and libarchive") and
 *   nothing below a mount root is reached through a symlink (O_NOFOLLOW on every
 *   directory we open; symlinks found in a listing are skipped and counted). The
 *   mount root itself may be a symlink: it is configuration, not bundle data.
 *   A directory that is the prefix of another, longer mount is left to that
 *   mount, so nested mounts never list a path twice.
 *
 * Matching (scanner.h)
 *   Paths are matched relative to "/" ("data/storage/el2/base/files/a.txt")
 *   with fnmatch(glob, path, FNM_LEADING_DIR). Patterns are normalised once:
 *   leading '/' are dropped (OpenHarmony writes excludes both ways) and a
 *   trailing '/' ("the whole tree") is dropped too, since with FNM_LEADING_DIR
 *   "a/b" already matches "a/b" and everything below it. A pattern that is
 *   empty after this ("/") matches every path. Without FNM_PATHNAME a '*' may
 *   cross '/', exactly as in OpenHarmony's exclude filter, so "*.tmp" excludes
 *   temp files at any depth.
 *
 * Pruning, which is what makes the walk fast
 *   - once a directory matches an include, everything below it does too
 *     (FNM_LEADING_DIR), so no include is tested below it;
 *   - an excluded directory is not opened;
 *   - a directory is opened only when some include may match below it: the
 *     include's leading components without wildcards must equal the
 *     directory's components (pattern_may_match_below). The same test drops
 *     the excludes that cannot match anything below a directory, so deep in a
 *     tree usually no fnmatch runs at all;
 *   - d_type tells files from directories and symlinks without a stat; only
 *     entries that will be listed (or have an unknown type) are stat'ed.
 *
 * Memory
 *   Paths are appended to a chunked string arena while walking; at the end the
 *   entries are sorted and the entry array is grown (realloc) to hold all the
 *   strings after it, which are copied there in sorted order. The result is a
 *   single allocation, list->v, which scan_list_free releases: about
 *   48 bytes + the path per entry, i.e. ~5 MiB for 50 000 files with 60-byte
 *   paths.
 *
 * Skipped entries: symlinks, sockets, FIFOs, devices and directories that
 * cannot be opened (EACCES, ...) that would otherwise have been listed, and
 * paths longer than 4096 bytes (restore refuses those, REFERENCE.md "Restore").
 */
#include "scanner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"

#define SCAN_PATH_MAX 4096 /* longest sandbox path we list (restore's limit) */
#define ARENA_CHUNK (256u * 1024)

typedef struct pattern {
	char *glob; /* normalised: no leading or trailing '/' */
	bool all;   /* empty after normalisation: matches every path */
} pattern_t;

typedef struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	bool mapped; /* mmap'd (a helper walker's): munmap, not free */
	char data[];
} arena_chunk_t;

struct scan_pool;

typedef struct walker {
	const reg_bundle_t *b;
	bool borrowed; /* pat and mount_rel belong to another walker (a helper's) */
	bool mapped;   /* a helper: its list and strings live in mmap'd memory (see walk_all) */
	struct scan_pool *pool; /* NULL: walking alone */
	pattern_t *pat; /* includes first, then excludes */
	size_t n_inc, n_exc;
	char **mount_rel; /* each mount's prefix relative to "/" */

	/* relevance of each pattern per depth: rel[level * n_pat + i] */
	unsigned char *rel;
	size_t rel_levels;

	/* the path being visited, relative to "/", e.g. "data/storage" */
	char path[SCAN_PATH_MAX + 2];
	size_t path_len;
	uint32_t mount;

	bool (*cancelled)(void *ctx);
	void *ctx;
	bool stop;

	/* list mode */
	bool keep;
	scan_entry_t *v;
	size_t n, cap;
	arena_chunk_t *arena;
	size_t str_bytes;

	/* size mode */
	int64_t since_ms;
	uint64_t inc_bytes;

	/* snapshot mode: the directories read (scan_bundle_snapshot) */
	bool record;
	bool unsure;    /* a directory could not be read: the listing is not reusable */
	scan_dir_t *dirs;
	size_t n_dirs, cap_dirs;

	uint64_t total_bytes, total_files, skipped;
	ohb_error_t *err;
	int rc;
} walker_t;

/* ---- patterns ---------------------------------------------------------- */

static char *
normalise_glob(const char *g)
{
	while (*g == '/')
		g++;
	size_t len = strlen(g);
	while (len > 0 && g[len - 1] == '/')
		len--;
	char *s = malloc(len + 1);
	if (!s)
		return NULL;
	memcpy(s, g, len);
	s[len] = '\0';
	return s;
}

static bool
pattern_matches(const pattern_t *p, const char *rel)
{
	return p->all || fnmatch(p->glob, rel, FNM_LEADING_DIR) == 0;
}

static bool
has_wildcard(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '*' || s[i] == '?' || s[i] == '[' || s[i] == '\\')
			return true;
	return false;
}

/* Could `glob` match `dir` itself or a path below it? Conservative: true
 * unless a wildcard-free leading component of the glob differs from the
 * directory's component at the same depth. */
static bool
pattern_may_match_below(const pattern_t *p, const char *dir, size_t dir_len)
{
	if (p->all)
		return true;
	const char *g = p->glob;
	size_t di = 0;
	for (;;) {
		if (di >= dir_len || *g == '\0')
			return true; /* dir is an ancestor of the glob's root, or inside it */
		const char *ge = strchr(g, '/');
		size_t gl = ge ? (size_t)(ge - g) : strlen(g);
		if (has_wildcard(g, gl))
			return true; /* a wildcard may span any number of components */
		const char *dc = dir + di;
		const char *de = memchr(dc, '/', dir_len - di);
		size_t dl = de ? (size_t)(de - dc) : dir_len - di;
		if (gl != dl || memcmp(g, dc, gl) != 0)
			return false;
		g += gl;
		if (*g == '/')
			g++;
		di += dl + (de ? 1 : 0);
	}
}

bool
scan_path_matches(const char *pattern, const char *path)
{
	if (!pattern || !path)
		return false;
	char *g = normalise_glob(pattern);
	if (!g)
		return false;
	while (*path == '/')
		path++;
	size_t len = strlen(path);
	char buf[SCAN_PATH_MAX + 2];
	if (len > SCAN_PATH_MAX) {
		free(g);
		return false;
	}
	memcpy(buf, path, len + 1);
	while (len > 0 && buf[len - 1] == '/')
		buf[--len] = '\0';
	pattern_t p = {g, g[0] == '\0'};
	bool m = pattern_matches(&p, buf);
	free(g);
	return m;
}

/* ---- walker set-up ------------------------------------------------------ */

static void
walker_free(walker_t *w)
{
	if (!w->borrowed) {
		for (size_t i = 0; i < w->n_inc + w->n_exc; i++)
			free(w->pat[i].glob);
		free(w->pat);
		if (w->mount_rel)
			for (size_t i = 0; i < w->b->n_mounts; i++)
				free(w->mount_rel[i]);
		free(w->mount_rel);
	}
	free(w->rel);
	for (size_t i = 0; i < w->n_dirs; i++)
		free(w->dirs[i].real_path);
	free(w->dirs);
	w->dirs = NULL;
	w->n_dirs = w->cap_dirs = 0;
	if (w->mapped) {
		if (w->v)
			munmap(w->v, w->cap * sizeof *w->v);
	} else {
		free(w->v);
	}
	while (w->arena) {
		arena_chunk_t *next = w->arena->next;
		if (w->arena->mapped)
			munmap(w->arena, sizeof *w->arena + w->arena->cap);
		else
			free(w->arena);
		w->arena = next;
	}
}

static int
walker_init(walker_t *w, const reg_bundle_t *b, ohb_error_t *err)
{
	memset(w, 0, sizeof *w);
	w->b = b;
	w->err = err;
	size_t n_pat = b->n_includes + b->n_excludes;
	w->pat = calloc(n_pat ? n_pat : 1, sizeof *w->pat);
	w->mount_rel = calloc(b->n_mounts ? b->n_mounts : 1, sizeof *w->mount_rel);
	if (!w->pat || !w->mount_rel)
		goto nomem;
	for (size_t i = 0; i < b->n_includes; i++, w->n_inc++) {
		if (!(w->pat[i].glob = normalise_glob(b->includes[i])))
			goto nomem;
		w->pat[i].all = w->pat[i].glob[0] == '\0';
	}
	for (size_t i = 0; i < b->n_excludes; i++, w->n_exc++) {
		pattern_t *p = &w->pat[w->n_inc + i];
		if (!(p->glob = normalise_glob(b->excludes[i])))
			goto nomem;
		p->all = p->glob[0] == '\0';
	}
	for (size_t i = 0; i < b->n_mounts; i++)
		if (!(w->mount_rel[i] = normalise_glob(b->mounts[i].sandbox_prefix)))
			goto nomem;
	return 0;
nomem:
	walker_free(w);
	return ohb_fail(err, OHB_E_NOMEM, "out of memory while preparing the scan of %s", b->name);
}

/* The relevance row of a level, grown on demand. */
static unsigned char *
walker_level(walker_t *w, size_t level)
{
	size_t np = w->n_inc + w->n_exc;
	if (level >= w->rel_levels) {
		size_t levels = w->rel_levels ? w->rel_levels * 2 : 32;
		while (levels <= level)
			levels *= 2;
		unsigned char *r = realloc(w->rel, levels * (np ? np : 1));
		if (!r)
			return NULL;
		w->rel = r;
		w->rel_levels = levels;
	}
	return w->rel + level * np;
}

/* ---- list building ------------------------------------------------------ */

static char *
arena_alloc(walker_t *w, size_t n)
{
	arena_chunk_t *c = w->arena;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		if (w->mapped) {
			c = mmap(NULL, sizeof *c + cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (c == MAP_FAILED)
				return NULL;
		} else if (!(c = malloc(sizeof *c + cap))) {
			return NULL;
		}
		c->next = w->arena;
		c->used = 0;
		c->cap = cap;
		c->mapped = w->mapped;
		w->arena = c;
	}
	char *p = c->data + c->used;
	c->used += n;
	return p;
}

/* Records the entry at w->path (relative, no trailing '/') with stat st. */
static int
walker_add(walker_t *w, const struct stat *st, bool is_dir)
{
	if (!is_dir) {
		w->total_files++;
		w->total_bytes += (uint64_t)st->st_size;
		if (w->since_ms > 0) {
			int64_t ms = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
			if (ms > w->since_ms)
				w->inc_bytes += (uint64_t)st->st_size;
		}
	}
	if (!w->keep)
		return 0;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 1024;
		scan_entry_t *v;
		if (!w->mapped)
			v = realloc(w->v, cap * sizeof *v);
		else if (!w->v)
			v = mmap(NULL, cap * sizeof *v, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		else
			v = mremap(w->v, w->cap * sizeof *v, cap * sizeof *v, MREMAP_MAYMOVE);
		if (!v || v == MAP_FAILED)
			return ohb_fail(w->err, OHB_E_NOMEM, "out of memory while scanning %s", w->b->name);
		w->v = v;
		w->cap = cap;
	}
	size_t len = 1 + w->path_len + (is_dir ? 1 : 0) + 1;
	char *s = arena_alloc(w, len);
	if (!s)
		return ohb_fail(w->err, OHB_E_NOMEM, "out of memory while scanning %s", w->b->name);
	s[0] = '/';
	memcpy(s + 1, w->path, w->path_len);
	if (is_dir)
		s[1 + w->path_len] = '/';
	s[len - 1] = '\0';
	w->str_bytes += len;
	scan_entry_t *e = &w->v[w->n++];
	e->path = s;
	e->mount = w->mount;
	e->is_dir = is_dir;
	e->size = is_dir ? 0 : (uint64_t)st->st_size;
	e->mode = (uint32_t)st->st_mode;
	e->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	e->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
	return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const scan_entry_t *)a)->path, ((const scan_entry_t *)b)->path);
}

/* Sorts the entries and moves them and their strings into one block. */
static int
walker_finish(walker_t *w, scan_list_t *out)
{
	if (w->n == 0) {
		free(w->v);
		w->v = NULL;
		return 0;
	}
	qsort(w->v, w->n, sizeof *w->v, entry_cmp);
	size_t head = w->n * sizeof *w->v;
	scan_entry_t *v = realloc(w->v, head + w->str_bytes);
	if (!v)
		return ohb_fail(w->err, OHB_E_NOMEM, "out of memory while scanning %s", w->b->name);
	w->v = v;
	char *dst = (char *)v + head;
	for (size_t i = 0; i < w->n; i++) {
		size_t len = strlen(v[i].path) + 1;
		memcpy(dst, v[i].path, len);
		v[i].path = dst;
		dst += len;
	}
	out->v = v;
	out->n = w->n;
	w->v = NULL;
	w->n = w->cap = 0;
	return 0;
}

/* ---- the walk ------------------------------------------------------------ */

static bool
is_other_mount(const walker_t *w, const char *rel)
{
	for (size_t i = 0; i < w->b->n_mounts; i++)
		if (i != w->mount && strcmp(w->mount_rel[i], rel) == 0)
			return true;
	return false;
}

/* Fills row `to` from row `from`: which patterns may still match at or below
 * the directory now in w->path. Returns whether any include may. */
static bool
walker_relevance(walker_t *w, const unsigned char *from, unsigned char *to, bool inside)
{
	bool any_inc = false;
	for (size_t i = 0; i < w->n_inc + w->n_exc; i++) {
		bool is_inc = i < w->n_inc;
		if (!from[i] || (is_inc && inside))
			to[i] = 0;
		else
			to[i] = pattern_may_match_below(&w->pat[i], w->path, w->path_len);
		if (is_inc && to[i])
			any_inc = true;
	}
	return any_inc;
}

static bool
walker_excluded(const walker_t *w, const unsigned char *row)
{
	for (size_t i = w->n_inc; i < w->n_inc + w->n_exc; i++)
		if (row[i] && pattern_matches(&w->pat[i], w->path))
			return true;
	return false;
}

static bool
walker_included(const walker_t *w, const unsigned char *row)
{
	for (size_t i = 0; i < w->n_inc; i++)
		if (row[i] && pattern_matches(&w->pat[i], w->path))
			return true;
	return false;
}

static bool
fatal_errno(int e)
{
	return e == EMFILE || e == ENFILE || e == ENOMEM;
}

/* Walks the directory open as dfd (owned: closed here), whose relative path is
 * w->path, at depth `level` with pattern relevance row `level`. `inside`: the
 * directory matches an include. */
static bool walker_cancelled(walker_t *w);
static bool pool_offer(walker_t *w, int dfd, size_t level);

/* Snapshot mode: remembers the directory at w->path (read with stat st). */
static int
walker_record_dir(walker_t *w, const struct stat *st, bool follow)
{
	if (!w->record)
		return 0;
	if (w->n_dirs == w->cap_dirs) {
		size_t cap = w->cap_dirs ? w->cap_dirs * 2 : 64;
		scan_dir_t *v = realloc(w->dirs, cap * sizeof *v);
		if (!v)
			return ohb_fail(w->err, OHB_E_NOMEM, "out of memory while scanning %s", w->b->name);
		w->dirs = v;
		w->cap_dirs = cap;
	}
	size_t ml = strlen(w->mount_rel[w->mount]);
	const char *below = w->path + (w->path_len > ml ? ml : w->path_len);
	while (*below == '/')
		below++;
	scan_dir_t *d = &w->dirs[w->n_dirs];
	const char *dir = w->b->mounts[w->mount].dir;
	d->real_path = *below ? fsu_printf("%s/%s", dir, below) : strdup(dir);
	if (!d->real_path)
		return ohb_fail(w->err, OHB_E_NOMEM, "out of memory while scanning %s", w->b->name);
	d->follow = follow;
	d->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	d->mtime_nsec = (int64_t)st->st_mtim.tv_nsec;
	d->ctime_sec = (int64_t)st->st_ctim.tv_sec;
	d->ctime_nsec = (int64_t)st->st_ctim.tv_nsec;
	w->n_dirs++;
	return 0;
}

static int
walk_dir(walker_t *w, int dfd, size_t level, bool inside)
{
	if (walker_cancelled(w)) {
		w->stop = true;
		close(dfd);
		return 0;
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return ohb_fail_errno(w->err, e, "cannot read directory /%s of %s", w->path, w->b->name);
	}
	size_t np = w->n_inc + w->n_exc;
	/* row pointers are re-derived after each recursion: w->rel may move */
	size_t base_len = w->path_len;
	int rc = 0;
	struct dirent *de = NULL;
	while (rc == 0 && !w->stop && (errno = 0, de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
			continue;
		size_t nl = strlen(name);
		size_t sep = base_len ? 1 : 0;
		if (base_len + sep + nl > SCAN_PATH_MAX - 2) {
			w->skipped++;
			continue;
		}
		if (sep)
			w->path[base_len] = '/';
		memcpy(w->path + base_len + sep, name, nl + 1);
		w->path_len = base_len + sep + nl;

		const unsigned char *row = w->rel + level * np;
		if (walker_excluded(w, row))
			goto next;
		bool incl = inside || walker_included(w, row);

		unsigned char type = de->d_type;
		struct stat st;
		bool have_st = false;
		if (type == DT_UNKNOWN) {
			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
				if (errno != ENOENT && incl)
					w->skipped++;
				goto next;
			}
			have_st = true;
			type = S_ISREG(st.st_mode) ? DT_REG : S_ISDIR(st.st_mode) ? DT_DIR : DT_LNK;
		}
		if (type == DT_REG) {
			if (!incl)
				goto next;
			if (!have_st && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
				if (errno != ENOENT)
					w->skipped++;
				goto next;
			}
			if (!S_ISREG(st.st_mode)) { /* replaced since readdir */
				w->skipped++;
				goto next;
			}
			rc = walker_add(w, &st, false);
		} else if (type == DT_DIR) {
			if (is_other_mount(w, w->path))
				goto next;
			unsigned char *child = walker_level(w, level + 1);
			if (!child) {
				rc = ohb_fail(w->err, OHB_E_NOMEM, "out of memory while scanning %s",
				              w->b->name);
				break;
			}
			row = w->rel + level * np;
			if (!walker_relevance(w, row, child, incl) && !incl)
				goto next; /* nothing below can match */
			int cfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0) {
				int e = errno;
				if (fatal_errno(e)) {
					rc = ohb_fail_errno(w->err, e, "cannot open directory /%s of %s",
					                    w->path, w->b->name);
					break;
				}
				if (e != ENOENT)
					w->skipped++; /* unreadable, or became a symlink (ELOOP/ENOTDIR) */
				w->unsure = true;
				goto next;
			}
			if (fstat(cfd, &st) != 0) {
				close(cfd);
				w->skipped++;
				w->unsure = true;
				goto next;
			}
			if ((rc = walker_record_dir(w, &st, false)) != 0) {
				close(cfd);
				break;
			}
			if (incl && (rc = walker_add(w, &st, true)) != 0) {
				close(cfd);
				break;
			}
			/* An included directory may go to an idle helper walker: nothing
			 * below it needs anything from this walk afterwards. */
			if (incl && pool_offer(w, cfd, level + 1))
				goto next;
			size_t listed_before = w->n;
			rc = walk_dir(w, cfd, level + 1, incl);
			/* A directory on the way to an include root (data/, data/storage/, …) is
			 * listed too when something below it is, so a restore onto an empty
			 * sandbox recreates it with its own mode and mtime rather than a
			 * made-up one. */
			if (rc == 0 && !incl && w->keep && w->n > listed_before)
				rc = walker_add(w, &st, true);
		} else if (incl) {
			w->skipped++; /* symlink, socket, fifo, device */
		}
	next:
		w->path_len = base_len;
		w->path[base_len] = '\0';
	}
	if (rc == 0 && !w->stop && errno != 0 && de == NULL) {
		int e = errno;
		if (fatal_errno(e))
			rc =
			    ohb_fail_errno(w->err, e, "cannot read directory /%s of %s", w->path, w->b->name);
		else
			w->skipped++;
		w->unsure = true;
	}
	w->path_len = base_len;
	w->path[base_len] = '\0';
	closedir(d);
	return rc;
}

static int
walk_mount(walker_t *w, uint32_t m)
{
	const char *rel = w->mount_rel[m];
	size_t len = strlen(rel);
	if (len > SCAN_PATH_MAX - 2)
		return 0;
	memcpy(w->path, rel, len + 1);
	w->path_len = len;
	w->mount = m;

	unsigned char *row0 = walker_level(w, 0);
	unsigned char *row1 = walker_level(w, 1);
	if (!row0 || !row1)
		return ohb_fail(w->err, OHB_E_NOMEM, "out of memory while scanning %s", w->b->name);
	row0 = w->rel;
	row1 = w->rel + (w->n_inc + w->n_exc);
	memset(row0, 1, w->n_inc + w->n_exc);

	bool inside = false;
	if (len > 0) {
		if (walker_excluded(w, row0))
			return 0;
		inside = walker_included(w, row0);
	}
	if (!walker_relevance(w, row0, row1, inside) && !inside)
		return 0;

	/* The mount root is configuration and may be a symlink; below it, nothing is followed. */
	int fd = open(w->b->mounts[m].dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		w->unsure = true; /* a mount root that appears later would go unnoticed */
		if (e == ENOENT || e == ENOTDIR)
			return 0; /* no data there: nothing to back up */
		if (fatal_errno(e))
			return ohb_fail_errno(w->err, e, "cannot open %s", w->b->mounts[m].dir);
		if (inside)
			w->skipped++;
		return 0;
	}
	if (inside || w->record) {
		struct stat st;
		if (fstat(fd, &st) != 0) {
			close(fd);
			return ohb_fail_errno(w->err, errno, "cannot stat %s", w->b->mounts[m].dir);
		}
		int rc = walker_record_dir(w, &st, true);
		if (rc == 0 && inside)
			rc = walker_add(w, &st, true);
		if (rc != 0) {
			close(fd);
			return rc;
		}
	}
	return walk_dir(w, fd, 1, inside);
}

static int
walk_bundle(walker_t *w)
{
	for (uint32_t m = 0; m < w->b->n_mounts && !w->stop; m++) {
		int rc = walk_mount(w, m);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- walking on several cores ------------------------------------------------
 *
 * A walk is mostly the kernel's name lookups and stats, one per entry, and
 * those run in parallel. So a scan starts up to SCAN_MAX_WALKERS - 1 helper
 * walkers (one fewer than the cores) that share a pool of directories to walk.
 * While the pool holds few directories, a walker that meets an included
 * directory puts it there (its fd, path, depth and pattern relevance) instead
 * of descending into it; otherwise it descends itself. A walker done with its
 * own work takes from the pool, so the work balances itself without ever
 * queueing the whole tree. Only included directories are handed over: for
 * them nothing is left to do once their subtree is walked (the directories on
 * the way to an include root are listed afterwards, and stay with the walker
 * that met them). Each walker keeps its own list, counters and error; at the
 * end the primary takes over the helpers' entries and strings, and the list is
 * sorted as before, so the result does not depend on who walked what. The
 * caller's `cancelled` is still polled once per directory, by the walker that
 * opens it, never by two at a time (poll_lock); a stop (cancel or error)
 * reaches every walker through the pool.
 */
#define SCAN_MAX_WALKERS 4
#define SCAN_QUEUE_LOW 4 /* directories waiting in the pool (each an open fd) */

typedef struct scan_task {
	int dfd;
	uint32_t mount;
	size_t level;
	char *path;         /* w->path of the directory */
	unsigned char *row; /* relevance row of `level` */
} scan_task_t;

typedef struct scan_pool {
	pthread_mutex_t poll_lock; /* one `cancelled` call at a time */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	scan_task_t *task;
	size_t n_task, cap_task;
	unsigned walkers; /* primary + helpers */
	unsigned idle;    /* walkers waiting for a task */
	atomic_uint hungry; /* n_task < SCAN_QUEUE_LOW, read without the lock */
	atomic_bool stop;
	bool done;
	int rc;           /* the first error of a helper */
	ohb_error_t err;
} scan_pool_t;

static bool
pool_stopped(walker_t *w)
{
	return w->pool && atomic_load_explicit(&w->pool->stop, memory_order_relaxed);
}

/* The poll before each directory: the caller's `cancelled` (called by one
 * walker at a time, whichever opens the directory), then the pool's stop. */
static bool
walker_cancelled(walker_t *w)
{
	if (!w->pool)
		return w->cancelled && w->cancelled(w->ctx);
	if (pool_stopped(w))
		return true;
	if (!w->cancelled)
		return false;
	/* Once it said "stop", nobody asks it again. */
	pthread_mutex_lock(&w->pool->poll_lock);
	bool c = pool_stopped(w) || w->cancelled(w->ctx);
	if (c)
		atomic_store(&w->pool->stop, true);
	pthread_mutex_unlock(&w->pool->poll_lock);
	return c;
}

static void
pool_set_hungry(scan_pool_t *p)
{
	atomic_store_explicit(&p->hungry, p->n_task < SCAN_QUEUE_LOW, memory_order_relaxed);
}

/* Hands the directory open as dfd (w->path, at `level`, whose relevance row
 * is w's row `level`) to the pool, when it holds fewer than SCAN_QUEUE_LOW
 * directories: a walker that runs out of work takes the oldest one (the
 * closest to the root, so usually the biggest), and one waiting for work
 * never waits long. False (queue full, or no memory): the caller walks it. */
static bool
pool_offer(walker_t *w, int dfd, size_t level)
{
	scan_pool_t *p = w->pool;
	if (!p || atomic_load_explicit(&p->hungry, memory_order_relaxed) == 0)
		return false;
	size_t np = w->n_inc + w->n_exc;
	scan_task_t t = {dfd, w->mount, level, strndup(w->path, w->path_len), malloc(np ? np : 1)};
	if (!t.path || !t.row) {
		free(t.path);
		free(t.row);
		return false;
	}
	memcpy(t.row, w->rel + level * np, np);
	pthread_mutex_lock(&p->lock);
	bool ok = false;
	if (p->n_task < SCAN_QUEUE_LOW && !p->done) {
		if (p->n_task == p->cap_task) {
			size_t cap = p->cap_task ? p->cap_task * 2 : 8;
			scan_task_t *v = realloc(p->task, cap * sizeof *v);
			if (v) {
				p->task = v;
				p->cap_task = cap;
			}
		}
		if (p->n_task < p->cap_task) {
			p->task[p->n_task++] = t;
			pool_set_hungry(p);
			pthread_cond_signal(&p->cond);
			ok = true;
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (!ok) {
		free(t.path);
		free(t.row);
	}
	return ok;
}

static void
pool_fail(scan_pool_t *p, int rc, const ohb_error_t *err)
{
	pthread_mutex_lock(&p->lock);
	if (p->rc == 0) {
		p->rc = rc;
		if (err)
			p->err = *err;
	}
	atomic_store(&p->stop, true);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* Walks tasks of the pool until every walker is idle with none left (or a stop). */
static void
pool_work(walker_t *w)
{
	scan_pool_t *p = w->pool;
	size_t np = w->n_inc + w->n_exc;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		if (atomic_load(&p->stop) || p->done)
			break;
		if (p->n_task > 0) {
			scan_task_t t = p->task[0];
			memmove(p->task, p->task + 1, --p->n_task * sizeof *p->task);
			pool_set_hungry(p);
			pthread_mutex_unlock(&p->lock);
			int rc = 0;
			unsigned char *row = walker_level(w, t.level);
			size_t len = strlen(t.path);
			if (!row || !walker_level(w, t.level + 1)) {
				close(t.dfd);
				rc = ohb_fail(w->err, OHB_E_NOMEM, "out of memory while scanning %s", w->b->name);
			} else {
				memcpy(w->rel + t.level * np, t.row, np);
				memcpy(w->path, t.path, len + 1);
				w->path_len = len;
				w->mount = t.mount;
				rc = walk_dir(w, t.dfd, t.level, true);
			}
			free(t.path);
			free(t.row);
			if (rc != 0)
				pool_fail(p, rc, w->err);
			pthread_mutex_lock(&p->lock);
			continue;
		}
		p->idle++;
		pool_set_hungry(p);
		if (p->idle == p->walkers) {
			p->done = true;
			pthread_cond_broadcast(&p->cond);
			break;
		}
		while (p->n_task == 0 && !p->done && !atomic_load(&p->stop))
			pthread_cond_wait(&p->cond, &p->lock);
		p->idle--;
		pool_set_hungry(p);
	}
	pthread_mutex_unlock(&p->lock);
}

typedef struct helper {
	walker_t w;
	ohb_error_t err;
	pthread_t th;
	bool started;
} helper_t;

static void *
helper_main(void *arg)
{
	helper_t *h = arg;
	pool_work(&h->w);
	return NULL;
}

/* Moves h's entries, strings and counters into w. */
static int
walker_absorb(walker_t *w, walker_t *h)
{
	w->total_files += h->total_files;
	w->total_bytes += h->total_bytes;
	w->inc_bytes += h->inc_bytes;
	w->skipped += h->skipped;
	w->unsure = w->unsure || h->unsure;
	if (h->n_dirs > 0) {
		if (w->n_dirs + h->n_dirs > w->cap_dirs) {
			scan_dir_t *v = realloc(w->dirs, (w->n_dirs + h->n_dirs) * sizeof *v);
			if (!v)
				return ohb_fail(w->err, OHB_E_NOMEM, "out of memory while scanning %s", w->b->name);
			w->dirs = v;
			w->cap_dirs = w->n_dirs + h->n_dirs;
		}
		memcpy(w->dirs + w->n_dirs, h->dirs, h->n_dirs * sizeof *h->dirs);
		w->n_dirs += h->n_dirs;
		h->n_dirs = 0;
	}
	if (h->n > 0) {
		if (w->n + h->n > w->cap) {
			scan_entry_t *v = realloc(w->v, (w->n + h->n) * sizeof *v);
			if (!v)
				return ohb_fail(w->err, OHB_E_NOMEM, "out of memory while scanning %s", w->b->name);
			w->v = v;
			w->cap = w->n + h->n;
		}
		memcpy(w->v + w->n, h->v, h->n * sizeof *h->v);
		w->n += h->n;
		h->n = 0;
	}
	w->str_bytes += h->str_bytes;
	if (h->arena) { /* after w's own chunks: new strings still go to w's head chunk */
		arena_chunk_t **tail = &w->arena;
		while (*tail)
			tail = &(*tail)->next;
		*tail = h->arena;
		h->arena = NULL;
	}
	return 0;
}

/* walk_bundle, with helper walkers when there are cores for them. */
static int
walk_all(walker_t *w)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cores >= SCAN_MAX_WALKERS ? SCAN_MAX_WALKERS - 1 : cores > 1 ? (unsigned)cores - 1 : 0;
	helper_t *h = n ? calloc(n, sizeof *h) : NULL;
	if (!h)
		return walk_bundle(w);
	scan_pool_t pool;
	memset(&pool, 0, sizeof pool);
	pthread_mutex_init(&pool.poll_lock, NULL);
	pthread_mutex_init(&pool.lock, NULL);
	pthread_cond_init(&pool.cond, NULL);
	pool.walkers = 1;
	atomic_store(&pool.hungry, 1);
	w->pool = &pool;
	for (unsigned i = 0; i < n; i++) {
		walker_t *hw = &h[i].w;
		*hw = *w; /* the patterns and the mode; its own list, counters, path and rows */
		hw->borrowed = true;
		/* A helper's list and strings are handed to the primary and then
		 * dropped; in mmap'd memory they go back to the system at once,
		 * where the thread's malloc arena would keep them resident. */
		hw->mapped = true;
		hw->rel = NULL;
		hw->rel_levels = 0;
		hw->v = NULL;
		hw->n = hw->cap = 0;
		hw->arena = NULL;
		hw->str_bytes = 0;
		hw->total_bytes = hw->total_files = hw->skipped = hw->inc_bytes = 0;
		hw->dirs = NULL;
		hw->n_dirs = hw->cap_dirs = 0;
		hw->unsure = false;
		hw->err = &h[i].err;
		pthread_mutex_lock(&pool.lock);
		pool.walkers++;
		pthread_mutex_unlock(&pool.lock);
		if (pthread_create(&h[i].th, NULL, helper_main, &h[i]) != 0) {
			pthread_mutex_lock(&pool.lock);
			pool.walkers--;
			pthread_mutex_unlock(&pool.lock);
			break;
		}
		h[i].started = true;
	}
	int rc = walk_bundle(w);
	if (rc != 0 || w->stop)
		pool_fail(&pool, 0, NULL); /* stop the helpers; our own error stays in w->err */
	else
		pool_work(w);
	for (unsigned i = 0; i < n; i++)
		if (h[i].started)
			pthread_join(h[i].th, NULL);
	for (size_t i = 0; i < pool.n_task; i++) { /* left by a stop */
		close(pool.task[i].dfd);
		free(pool.task[i].path);
		free(pool.task[i].row);
	}
	free(pool.task);
	if (rc == 0 && pool.rc != 0) {
		rc = pool.rc;
		if (w->err)
			*w->err = pool.err;
	}
	if (rc == 0 && atomic_load(&pool.stop))
		w->stop = true; /* cancelled */
	for (unsigned i = 0; i < n; i++) {
		if (rc == 0 && !w->stop)
			rc = walker_absorb(w, &h[i].w);
		walker_free(&h[i].w);
	}
	free(h);
	w->pool = NULL;
	pthread_cond_destroy(&pool.cond);
	pthread_mutex_destroy(&pool.lock);
	pthread_mutex_destroy(&pool.poll_lock);
	return rc;
}

/* ---- public ---------------------------------------------------------------- */

static int
scan_list_walk(const reg_bundle_t *b, bool (*cancelled)(void *ctx), void *ctx, bool record, int64_t since_ms,
    scan_list_t *out, uint64_t *inc_bytes, ohb_error_t *err)
{
	memset(out, 0, sizeof *out);
	walker_t w;
	int rc = walker_init(&w, b, err);
	if (rc != 0)
		return rc;
	w.keep = true;
	w.cancelled = cancelled;
	w.ctx = ctx;
	w.record = record;
	w.since_ms = since_ms;
	int64_t began = fsu_now_ms();
	rc = walk_all(&w);
	if (rc == 0 && !w.stop) {
		rc = walker_finish(&w, out);
		if (rc == 0) {
			out->total_bytes = w.total_bytes;
			out->total_files = w.total_files;
			out->skipped = w.skipped;
			if (inc_bytes)
				*inc_bytes = since_ms > 0 ? w.inc_bytes : w.total_bytes;
			if (record) {
				out->dirs = w.dirs;
				out->n_dirs = w.n_dirs;
				out->reusable = !w.unsure;
				out->walked_ms = began;
				w.dirs = NULL;
				w.n_dirs = w.cap_dirs = 0;
			}
		}
	}
	walker_free(&w);
	return rc;
}

int
scan_bundle(const reg_bundle_t *b, bool (*cancelled)(void *ctx), void *ctx, scan_list_t *out,
            ohb_error_t *err)
{
	return scan_list_walk(b, cancelled, ctx, false, 0, out, NULL, err);
}

int
scan_bundle_snapshot(const reg_bundle_t *b, int64_t since_ms, scan_list_t *out, uint64_t *inc_bytes,
    ohb_error_t *err)
{
	return scan_list_walk(b, NULL, NULL, true, since_ms, out, inc_bytes, err);
}

bool
scan_list_is_current(const scan_list_t *list, int64_t margin_ms)
{
	if (!list || !list->reusable || list->n_dirs == 0)
		return false;
	for (size_t i = 0; i < list->n_dirs; i++) {
		const scan_dir_t *d = &list->dirs[i];
		struct stat st;
		if ((d->follow ? stat(d->real_path, &st) : lstat(d->real_path, &st)) != 0 || !S_ISDIR(st.st_mode))
			return false;
		if ((int64_t)st.st_mtim.tv_sec != d->mtime_sec || (int64_t)st.st_mtim.tv_nsec != d->mtime_nsec ||
		    (int64_t)st.st_ctim.tv_sec != d->ctime_sec || (int64_t)st.st_ctim.tv_nsec != d->ctime_nsec)
			return false;
		int64_t m_ms = d->mtime_sec * 1000 + d->mtime_nsec / 1000000;
		int64_t c_ms = d->ctime_sec * 1000 + d->ctime_nsec / 1000000;
		if ((m_ms > c_ms ? m_ms : c_ms) >= list->walked_ms - margin_ms)
			return false; /* racy: changed too close to the walk to trust its times */
	}
	return true;
}

void
scan_list_free(scan_list_t *list)
{
	if (!list)
		return;
	free(list->v); /* the paths live in the same block (walker_finish) */
	for (size_t i = 0; i < list->n_dirs; i++)
		free(list->dirs[i].real_path);
	free(list->dirs);
	memset(list, 0, sizeof *list);
}

int
scan_bundle_size(const reg_bundle_t *b, int64_t since_ms, uint64_t *bytes, uint64_t *inc_bytes,
                 ohb_error_t *err)
{
	walker_t w;
	int rc = walker_init(&w, b, err);
	if (rc != 0)
		return rc;
	w.since_ms = since_ms;
	rc = walk_all(&w);
	if (rc == 0) {
		if (bytes)
			*bytes = w.total_bytes;
		/* With no previous backup (since_ms <= 0) everything is new. */
		if (inc_bytes)
			*inc_bytes = since_ms > 0 ? w.inc_bytes : w.total_bytes;
	}
	walker_free(&w);
	return rc;
}

char *
scan_entry_real_path(const reg_bundle_t *b, const scan_entry_t *e)
{
	if (!b || !e || !e->path || e->mount >= b->n_mounts)
		return NULL;
	const reg_mount_t *m = &b->mounts[e->mount];
	const char *p = e->path;
	const char *pre = m->sandbox_prefix;
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
	}
	while (*p == '/')
		p++;
	size_t rl = strlen(p);
	while (rl > 0 && p[rl - 1] == '/')
		rl--;
	size_t dl = strlen(m->dir);
	while (dl > 1 && m->dir[dl - 1] == '/')
		dl--;
	size_t n = dl + 1 + rl + 1;
	char *s = malloc(n);
	if (!s)
		return NULL;
	if (rl == 0)
		snprintf(s, n, "%.*s", (int)dl, m->dir);
	else if (dl == 1 && m->dir[0] == '/')
		snprintf(s, n, "/%.*s", (int)rl, p);
	else
		snprintf(s, n, "%.*s/%.*s", (int)dl, m->dir, (int)rl, p);
	return s;
}

/* ---- the imprecise estimate (getBackupDataSize with isPreciseScan false) ----- */

typedef struct estimator {
	const reg_bundle_t *b;
	size_t budget;          /* entries we may still look at */
	uint64_t bytes;         /* bytes of included files seen */
	uint64_t dirs_seen;     /* directories opened */
	uint64_t dirs_skipped;  /* directories found but not opened (budget spent) */
} estimator_t;

static bool
estimate_excluded(const reg_bundle_t *b, const char *path)
{
	for (size_t i = 0; i < b->n_excludes; i++)
		if (scan_path_matches(b->excludes[i], path))
			return true;
	return false;
}

static bool
estimate_included(const reg_bundle_t *b, const char *path)
{
	for (size_t i = 0; i < b->n_includes; i++)
		if (scan_path_matches(b->includes[i], path))
			return true;
	return false;
}

/* Depth-first with a budget; path is the sandbox path of the directory open as dfd. */
static void
estimate_dir(estimator_t *e, int dfd, char *path, size_t len)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	e->dirs_seen++;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0')))
			continue;
		size_t nl = strlen(name);
		size_t sep = len ? 1 : 0;
		if (len + sep + nl + 2 > SCAN_PATH_MAX)
			continue;
		if (sep)
			path[len] = '/';
		memcpy(path + len + sep, name, nl + 1);
		struct stat st;
		if (e->budget == 0) {
			if (de->d_type == DT_DIR)
				e->dirs_skipped++;
			continue;
		}
		e->budget--;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0 || estimate_excluded(e->b, path))
			continue;
		if (S_ISREG(st.st_mode)) {
			if (estimate_included(e->b, path))
				e->bytes += (uint64_t)st.st_size;
		} else if (S_ISDIR(st.st_mode)) {
			int cfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd >= 0)
				estimate_dir(e, cfd, path, len + sep + nl);
		}
	}
	path[len] = '\0';
	closedir(d);
}

int
scan_bundle_estimate(const reg_bundle_t *b, size_t budget, uint64_t *bytes, ohb_error_t *err)
{
	estimator_t e = { b, budget ? budget : 1, 0, 0, 0 };
	char *path = malloc(SCAN_PATH_MAX);
	if (!path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while estimating %s", b->name);
	for (size_t m = 0; m < b->n_mounts; m++) {
		int fd = open(b->mounts[m].dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		/* sandbox paths are matched without their leading '/' */
		const char *prefix = b->mounts[m].sandbox_prefix;
		while (*prefix == '/')
			prefix++;
		snprintf(path, SCAN_PATH_MAX, "%s", prefix);
		estimate_dir(&e, fd, path, strlen(path));
	}
	free(path);
	/* Directories we never opened are assumed to hold as much as the average one we did. */
	if (e.dirs_skipped && e.dirs_seen)
		e.bytes += e.bytes / e.dirs_seen * e.dirs_skipped;
	*bytes = e.bytes;
	return 0;
}
