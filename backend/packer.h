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
#include <stdint.h>

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

/* The raw name of a big file: 16 lower-case hex digits of FNV-1a-64 of
 * `path` (with "#<counter>" appended when counter > 0), plus the extension of
 * path's last component if it is made of [0-9A-Za-z_] only. Writes into buf. */
void pack_big_file_name(const char *path, unsigned counter, char *buf, size_t bufsize);

#endif
