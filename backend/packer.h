/*
 * packer — turns a scan list into the files a backup sends (REFERENCE.md):
 * files up to 2 MiB go into part.<N>.tar (GNU/ustar via libarchive, absolute
 * sandbox paths, GNU long-name records for names of 100+ characters, split at
 * 100 MiB or 6000 entries), each bigger file is sent raw under a hash name
 * (16 hex digits of FNV-1a-64 of its sandbox path, plus its extension; the
 * hash is redone with a counter appended to the path on a collision), and
 * manage.json indexes them.
 *
 * Files are opened with O_NOFOLLOW relative to their mount; a file that
 * vanished or cannot be read is reported through sink->file_error and counted
 * as failed; the backup goes on. Directories become entries ending in '/'.
 *
 * Tars are written to unlinked temp files in tmp_dir; every produced file is
 * handed to sink->emit as a readable fd at offset 0 (ownership passes to the
 * sink) in the order: tars and big files interleaved as produced, never
 * manage.json (the caller sends it last, from *manage_out).
 *
 * One pack_bundle call per thread; calls on different threads are independent.
 */
#ifndef OHB_PACKER_H
#define OHB_PACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "manage.h"
#include "ohbackup.h"
#include "registry.h"
#include "scanner.h"

#define PACK_BIG_FILE_THRESHOLD (2u * 1024 * 1024)   /* > this: sent raw */
#define PACK_TAR_MAX_BYTES (100u * 1024 * 1024)
#define PACK_TAR_MAX_ENTRIES 6000u

typedef struct pack_sink {
	void *ctx;
	/* Takes ownership of fd. Non-zero return aborts the pack with that code. */
	int (*emit)(void *ctx, const char *file_name, int fd, ohb_error_t *err);
	/* Cumulative bytes and files packed so far (called often; must be cheap). */
	void (*progress)(void *ctx, uint64_t bytes_done, uint64_t files_done);
	/* A file that could not be added: sandbox path and errno. */
	void (*file_error)(void *ctx, const char *path, int errnum);
	/* Polled between files; true stops the pack with OHB_OK and *stopped = true. */
	bool (*cancelled)(void *ctx);
} pack_sink_t;

typedef struct pack_result {
	uint64_t files_ok;      /* regular files sent (in a tar or raw) */
	uint64_t files_failed;
	uint64_t bytes;         /* bytes of regular files sent */
	bool stopped;           /* cancelled() said stop */
} pack_result_t;

/* 13500006 when a tar cannot be written (with the reason), 13900025 when the
 * temp dir fills up. manage_out must be an empty list; it receives one entry
 * per emitted file. */
int pack_bundle(const reg_bundle_t *b, const scan_list_t *list, const char *tmp_dir,
    const pack_sink_t *sink, manage_list_t *manage_out, pack_result_t *result, ohb_error_t *err);

/* ---- the pack writer: packing one entry at a time ------------------------------
 *
 * pack_bundle is a loop over a scan list on top of a pack writer. An
 * incremental backup (incremental.h) drives the same writer over the entries
 * that changed only, so both produce tars and raw big files by the same rules
 * (safe opening, tar format, splits, big-file names, manage entries). A writer
 * holds the mount directory fds and the open parent directories (see
 * packer.c), the current tar and the manage list being filled.
 *
 * Every function returns 0 or a fatal code (the pack must stop: out of memory
 * or fds, tar failure, full temp dir, a sink or hook refusal). A single entry
 * that cannot be packed is not fatal: it goes to sink->file_error, counts in
 * result->files_failed, and *added (when given) is false.
 */
typedef struct pack_writer pack_writer_t;

typedef struct pack_hooks {
	void *ctx;
	/* Names tar number `index` (0, 1, ...) into buf; NULL: "part.<index>.tar". */
	void (*tar_name)(void *ctx, unsigned index, char *buf, size_t bufsize);
	/* Called right after a tar or a big file was indexed in the manage list
	 * and handed to sink->emit, so the caller can send something right
	 * behind it. Non-zero stops the pack with that code. May be NULL. */
	int (*emitted)(void *ctx, const char *file_name, bool is_tar, ohb_error_t *err);
} pack_hooks_t;

/* hooks may be NULL. manage_out must be empty; result is zeroed. Ownership:
 * the writer keeps pointers to everything passed until pack_writer_free. */
int pack_writer_new(const reg_bundle_t *b, const char *tmp_dir, const pack_sink_t *sink,
    const pack_hooks_t *hooks, manage_list_t *manage_out, pack_result_t *result, ohb_error_t *err,
    pack_writer_t **out);

/* Opens e's file for reading without following any symlink and fstats it.
 * *fd_out >= 0: a regular file, in blocking mode, at offset 0; the caller owns
 * it. *fd_out == -1: it could not be opened or is no longer a regular file
 * (already reported as a file error). */
int pack_writer_open(pack_writer_t *w, const scan_entry_t *e, int *fd_out, struct stat *st_out);

/* A directory entry ("<path>/", its mode and mtime) into the current tar. */
int pack_writer_add_dir(pack_writer_t *w, const scan_entry_t *e, bool *added);

/* The regular file open on fd (from pack_writer_open, at offset 0; st its
 * fstat), which the writer consumes: copied into the tar when st_size is at
 * most PACK_BIG_FILE_THRESHOLD, else handed to the sink raw. */
int pack_writer_add_file(pack_writer_t *w, const scan_entry_t *e, int fd, const struct stat *st,
    bool *added);

/* A regular file whose content the caller already read: st->st_size bytes at
 * data (at most PACK_BIG_FILE_THRESHOLD) go into the tar with st's mode and
 * mtime. */
int pack_writer_add_bytes(pack_writer_t *w, const scan_entry_t *e, const struct stat *st, const void *data,
    bool *added);

/* Closes the current tar, if any, and hands it over. */
int pack_writer_finish(pack_writer_t *w);

/* Closes what the writer holds; an unfinished tar is dropped unsent. */
void pack_writer_free(pack_writer_t *w);

/* The raw name of a big file: 16 lower-case hex digits of FNV-1a-64 of
 * `path` (with "#<counter>" appended when counter > 0), plus the extension of
 * path's last component if it is made of [0-9A-Za-z_] only. Writes into buf. */
void pack_big_file_name(const char *path, unsigned counter, char *buf, size_t bufsize);

#endif
