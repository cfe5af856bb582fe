/*
 * cloud_state — the per-file state store of the device-cloud sync: for each
 * file of a sync scope (by its path relative to the scope's folder), what the
 * last successful sync saw (the local size and mtime, the cloud's etag) and
 * the file's FileSyncState. The sync compares a file against this "base" to
 * tell a local change from a cloud change, and both from a conflict.
 *
 * On disk: <dir>/state (the gallery's dir is <root>/cloud, a bundle's
 * <root>/cloud/apps/<bundle>), one line per file, rewritten whole with
 * fsu_write_atomic (so a crash leaves the old or the new file, never half):
 *
 *     ohbackup-cloud-state 2
 *     #last-sync\t<ms since the epoch of the last run that completed>
 *     <state>\t<has_base>\t<local size>\t<local mtime ns>\t<flags>\t<etag>\t<partial etag>\t<path>
 *
 * flags: 1 = evicted (the local copy was dropped on purpose; the cloud holds
 * the file). partial etag: the cloud version a kept partial download
 * (<file>.temp.download) was started from, "" when none. Strings are
 * percent-encoded (bytes <= 0x20, '%', 0x7f); an empty one is written "%".
 * Version 1 files (no flags, no partial etag, no last-sync) are read too. A lost or stale store costs no data: a file without a base
 * that exists on both sides is compared byte by byte before anything moves.
 *
 * Thread model: a cst_t is not locked; its owner (cloud_sync.c) guards it.
 */
#ifndef OHB_CLOUD_STATE_H
#define OHB_CLOUD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ohbackup.h"

typedef struct cst_rec {
	char *path;               /* relative to the scope's folder */
	int state;                /* ohb_cloud_file_sync_state_t */
	bool has_base;            /* a sync of this file succeeded once: the fields below are valid */
	uint64_t lsize;           /* the local file as that sync left it */
	int64_t lmtime_ns;
	char etag[128];           /* the cloud's version as that sync left it */
	bool evicted;             /* the local copy was dropped; the cloud holds the file (lsize = its size) */
	char partial_etag[128];   /* a kept partial download was started from this version; "" none */
} cst_rec_t;

typedef struct cst cst_t;

/* Loads <dir>/state (a missing file is an empty store; an unreadable line is
 * skipped). */
int cst_open(const char *dir, cst_t **out, ohb_error_t *err);
void cst_free(cst_t *s);

/* The record of path, or NULL. Valid until the next cst_put/cst_free. */
const cst_rec_t *cst_find(const cst_t *s, const char *path);

/* The engine's one "unchanged since its last sync" rule: r (NULL: no record)
 * has a base, is not evicted, and recorded this size and mtime (ns). */
bool cst_rec_matches(const cst_rec_t *r, uint64_t size, int64_t mtime_ns);

/* Adds or replaces the record of rec->path (copied). */
int cst_put(cst_t *s, const cst_rec_t *rec, ohb_error_t *err);

/* Sets only the state of path, creating a record without a base if needed. */
int cst_set_state(cst_t *s, const char *path, int state, ohb_error_t *err);

/* Removes the record of path (nothing when there is none). */
void cst_remove(cst_t *s, const char *path);

/* Every record, sorted by path; valid until the next cst_put/cst_remove. */
const cst_rec_t *cst_records(const cst_t *s, size_t *n);

/* The time of the last completed run (0 = never) and its setter. */
int64_t cst_last_sync(const cst_t *s);
void cst_set_last_sync(cst_t *s, int64_t ms);

/* The file's text (malloc'd) for cst_write; done under the owner's lock. */
int cst_serialize(const cst_t *s, char **text, size_t *len, ohb_error_t *err);
/* Writes text to <dir>/state atomically. */
int cst_write(const char *dir, const char *text, size_t len, ohb_error_t *err);

#endif
