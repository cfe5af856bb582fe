/*
 * scanner — what a bundle's backup consists of (REFERENCE.md "what a bundle's
 * backup consists of"): walks the bundle's mounts with openat/fdopendir (never
 * chdir, never following a symlink), keeps regular files and directories that
 * match an include and no exclude, and skips symlinks and special files.
 *
 * Matching: a path matches an include glob when fnmatch(glob, path,
 * FNM_LEADING_DIR) matches with the path written relative to "/" (e.g.
 * "data/storage/el2/base/files/a.txt"); an include ending in '/' means that
 * whole tree. Excludes use the same rule; an excluded directory is pruned.
 * Directories that can hold no match are not descended into. A directory
 * inside a mount that only leads to included entries (e.g. data/storage/ on
 * the way to data/storage/el2/base/files/) is listed as well, so a restore
 * onto an empty sandbox recreates it with its real mode and mtime.
 *
 * Thread-safe; each call owns its result. A walk uses up to 3 helper threads
 * besides the caller's (one fewer than the cores), joined before it returns.
 */
#ifndef OHB_SCANNER_H
#define OHB_SCANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ohbackup.h"
#include "registry.h"

typedef struct scan_entry {
	char *path;          /* absolute sandbox path; directories end in '/' */
	uint32_t mount;      /* index into bundle->mounts of the mount holding it */
	bool is_dir;
	uint64_t size;       /* 0 for directories */
	uint32_t mode;       /* st_mode (type and permission bits) */
	int64_t mtime_sec;
	int64_t mtime_nsec;
} scan_entry_t;

/* A directory a snapshot walk read (scan_bundle_snapshot), as it was then. */
typedef struct scan_dir {
	char *real_path;     /* mount dir + the part below the mount's prefix */
	bool follow;         /* a mount root: configuration, may be a symlink */
	int64_t mtime_sec, mtime_nsec, ctime_sec, ctime_nsec;
} scan_dir_t;

typedef struct scan_list {
	scan_entry_t *v;     /* sorted by path (byte order) */
	size_t n;
	uint64_t total_bytes;   /* sum of regular files' sizes */
	uint64_t total_files;   /* regular files only */
	uint64_t skipped;       /* symlinks, sockets, fifos, devices, unreadable dirs */
	/* scan_bundle_snapshot only: every directory read, and when the walk began */
	scan_dir_t *dirs;
	size_t n_dirs;
	bool reusable;          /* every directory could be read (none vanished, none refused) */
	int64_t walked_ms;      /* wall clock (ms) before the first directory was looked at */
} scan_list_t;

/* Lists what a backup of b would take. A missing mount directory or include
 * root is not an error (nothing to back up there). `cancelled`, when not NULL,
 * is polled before each directory is read; when it returns true the scan
 * stops with 0 and a partial list is NOT returned (out is left empty). On a
 * machine with several cores the walk runs on helper threads too (scanner.c),
 * so `cancelled` may be called from one of them, but never from two threads
 * at the same time. */
int scan_bundle(const reg_bundle_t *b, bool (*cancelled)(void *ctx), void *ctx, scan_list_t *out,
    ohb_error_t *err);
void scan_list_free(scan_list_t *list);

/* scan_bundle (no cancel) that also remembers every directory it read, so
 * that scan_list_is_current can tell later whether the listing still holds;
 * *inc_bytes (may be NULL) as in scan_bundle_size. The capability file's walk
 * uses it, and a backup right behind it takes the listing instead of walking
 * again (service.c). */
int scan_bundle_snapshot(const reg_bundle_t *b, int64_t since_ms, scan_list_t *out, uint64_t *inc_bytes,
    ohb_error_t *err);

/* Whether a snapshot's listing is still what a walk would find: every
 * directory it read is still a directory with the same mtime and ctime (a
 * name added, removed or renamed in a directory changes both), and each was
 * last changed more than margin_ms before the walk began -- a change in the
 * same clock tick as the walk's look at a directory would leave its times
 * as they were (git's "racy clean" rule). File contents are not checked: the
 * packer fstats every file it opens and packs what it finds, as it does when
 * a file changes between a walk and its pack. One stat per directory. A
 * negative margin_ms turns the racy rule off (tests, on trees made a moment
 * ago). */
bool scan_list_is_current(const scan_list_t *list, int64_t margin_ms);

/* Quick size only (bytes of regular files that scan_bundle would list, and
 * bytes of those with mtime (ms) > since_ms when since_ms > 0). No list kept. */
int scan_bundle_size(const reg_bundle_t *b, int64_t since_ms, uint64_t *bytes, uint64_t *inc_bytes,
    ohb_error_t *err);

/* The imprecise estimate: looks at no more than `budget` directory entries
 * and scales what it saw by the share of directories it reached. Exact for
 * bundles smaller than the budget; never fails on unreadable parts. */
int scan_bundle_estimate(const reg_bundle_t *b, size_t budget, uint64_t *bytes, ohb_error_t *err);

/* The real path of an entry: mount dir + the part of the path below the mount's
 * prefix (trailing '/' of directories dropped). malloc'd. */
char *scan_entry_real_path(const reg_bundle_t *b, const scan_entry_t *e);

/* The matching rule above, exposed for tests: does `path` (absolute sandbox
 * path) fall under glob `pattern`? */
bool scan_path_matches(const char *pattern, const char *path);

#endif
