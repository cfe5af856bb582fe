/*
 * fsutil — the few file-system primitives everything else builds on, done the
 * safe way once: durable atomic writes (temp name, fsync, rename, fsync of the
 * directory), whole-file reads with a size cap, mkdir -p, rm -rf that never
 * follows a symlink, and fd-to-fd copies that use the kernel's zero-copy paths.
 * All functions are thread-safe and never change the working directory.
 */
#ifndef OHB_FSUTIL_H
#define OHB_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ohbackup.h"

/* Writes data to dir/name durably: dir/.name.tmp.<pid>.<n> -> fsync -> rename ->
 * fsync(dir). On failure the temp file is removed and dir/name is untouched. */
int fsu_write_atomic(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
    ohb_error_t *err);

/* Copies everything readable from in_fd (from its current offset) into
 * dir/name with the same durability rules as fsu_write_atomic, the way
 * fsu_copy_fd_uncached does. *copied may be NULL. */
int fsu_copy_fd_atomic(int in_fd, const char *dir, const char *name, mode_t mode, uint64_t *copied,
    ohb_error_t *err);

/* All of buf written to fd (at off for the p- form), retrying EINTR and short
 * writes: 0, or -1 with errno (ENOSPC for a write that makes no progress). */
int fsu_write_all(int fd, const void *buf, size_t len);
int fsu_pwrite_all(int fd, const void *buf, size_t len, off_t off);

/* Copies from in_fd to out_fd until EOF of in_fd (copy_file_range, then
 * sendfile, then read/write). Does not fsync. *copied may be NULL. */
int fsu_copy_fd(int in_fd, int out_fd, uint64_t *copied, ohb_error_t *err);

/* fsu_copy_fd for data nobody reads again soon (a big file going into a
 * backup set, or into a restore's stage): when in_fd is a regular file of at
 * least 8 MiB and out_fd's file system takes O_DIRECT (direct_copy.h: tried
 * on the first chunk), the bytes are written straight to the device in
 * aligned 2 MiB writes (the tail under one block, the ordinary way), so the
 * copy's writes fill no page cache — they do not push the operator's working
 * set out, and leave no writeback for the fsync that follows; the source is
 * read the ordinary way. Otherwise it is fsu_copy_fd; a direct write that
 * fails after the first chunk fails the copy. out_fd's status flags are as
 * they were on return; its offset must be a multiple of 4096 for the direct
 * path (else plain copy). */
int fsu_copy_fd_uncached(int in_fd, int out_fd, uint64_t *copied, ohb_error_t *err);

/* Gives the anonymous file open on in_fd the name dir/name with the same
 * durability rules as fsu_write_atomic, without copying a byte: linkat of
 * /proc/self/fd/N to a temp name, fsync, rename, fsync(dir). Only a file
 * nobody else can reach is linked: a regular file with st_nlink == 0 (an
 * O_TMPFILE file; a file with a name may be an application's live file,
 * whose later edits must not change a backup), owned by us, with exactly
 * `mode`, read from offset 0, on the same file system as dir. When any of
 * that does not hold, or the kernel refuses the link, *linked is false, 0 is
 * returned and nothing was written: the caller copies instead. *size may be
 * NULL. in_fd is left at its end. */
int fsu_link_fd_atomic(int in_fd, const char *dir, const char *name, mode_t mode, bool *linked,
    uint64_t *size, ohb_error_t *err);

/* Reads the whole file at path (or fd from its current offset) into a malloc'd,
 * NUL-terminated buffer. Files larger than max bytes -> OHB_E_INVAL. */
int fsu_read_file(const char *path, size_t max, char **out, size_t *len, ohb_error_t *err);
int fsu_read_fd(int fd, size_t max, char **out, size_t *len, ohb_error_t *err);

/* A readable fd (offset 0) of an anonymous file holding data: O_TMPFILE in dir
 * (or an unlinked mkstemp file). dir NULL -> $TMPDIR or /tmp. */
int fsu_anon_fd(const char *dir, const void *data, size_t len, int *fd_out, ohb_error_t *err);

/* mkdir -p with mode for the directories it creates. */
int fsu_mkdir_p(const char *path, mode_t mode, ohb_error_t *err);

/* Removes path and everything below it without following symlinks. A missing
 * path is success. */
int fsu_rm_rf(const char *path, ohb_error_t *err);

/* fsync of a directory (after renames into it). */
int fsu_fsync_dir(const char *path, ohb_error_t *err);

/* malloc'd "a/b" (no doubled slash); NULL only on out-of-memory. */
char *fsu_join(const char *a, const char *b);

/* malloc'd printf; NULL only on out-of-memory. */
char *fsu_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds: wall clock since the epoch, and a monotonic clock. */
int64_t fsu_now_ms(void);
int64_t fsu_mono_ms(void);

/* The value of a hex digit ('0'-'9', 'a'-'f', 'A'-'F'), or -1: the one
 * decoder behind every %-escape we read (.rp files, uris, WebDAV hrefs, the cloud state). */
int fsu_hex_digit(char c);

/* path percent-encoded for a URL or a uri: RFC 3986's unreserved characters
 * and '/' kept, every other byte %XX (upper case). malloc'd; NULL when out of
 * memory. The encoder behind the cloud's uris and WebDAV URLs. */
char *fsu_url_encode(const char *path);

/* True when name is a valid spec uri: non-empty, [0-9A-Za-z_.] only, not "." or "..". */
bool fsu_uri_is_valid(const char *name);

/* True when name (a file name or a path) ends in ".tar", case as written: what
 * OpenHarmony takes for a tar (its ExtractFileExt(name) == "tar"). */
bool fsu_is_tar_name(const char *name);

#endif
