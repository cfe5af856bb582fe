/*
 * ohbackup_store.h — the backup store, the client's side of a backup: where
 * the files received through onFileReady are kept as backup sets, and where a
 * restore reads them back. The CLI and the console share it. It never talks
 * to the service; it only reads and writes files under the store directory.
 *
 *   <store>/<set-id>/set.json           written LAST; a set without it is interrupted
 *   <store>/<set-id>/capability.json    the capability file at backup time
 *   <store>/<set-id>/<bundle>/<uri>     every file received (part.N.tar, big files,
 *                                       manage.json, *.rp, all.rp)
 *
 * set.json:
 *   {"format":1,"id":"20261124-140212-123","kind":"full"|"incremental",
 *    "base":null|"<set-id>","created":"2026-11-24T14:02:12Z","createdMs":...,
 *    "complete":true,"device":{"systemFullName":...,"deviceType":...},
 *    "bundles":[{"name":...,"code":0,"message":"","bytes":N,"files":N,"received":N}]}
 *
 * Set ids sort by creation time (UTC, ms) and are unique within a store.
 * Every file is written to a temp name, fsync'd, renamed, and its directory
 * fsync'd: a crash leaves either the old state or the new one.
 *
 * Thread model: a store_t and a store_writer_t may be used from one thread
 * at a time (the CLI uses them from its dispatcher callbacks only).
 */
#ifndef OHBACKUP_STORE_H
#define OHBACKUP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ohbackup.h"

typedef struct store store_t;
typedef struct store_writer store_writer_t;

/* Opens (creating if needed) a store directory. */
int store_open(const char *dir, store_t **out, ohb_error_t *err);
void store_close(store_t *st);
const char *store_dir(const store_t *st);

/* ---- writing a set -------------------------------------------------------- */

/* Starts a new set folder. kind: "full" or "incremental"; base: the set an
 * incremental builds on (NULL for full; a full set with a base, or a base that
 * is not a set id, is 13900020). The id is "YYYYMMDD-HHMMSS-mmm" (UTC), with
 * "-2", "-3", ... when that folder exists; the folder is claimed by mkdir. */
int store_writer_begin(store_t *st, const char *kind, const char *base, store_writer_t **out,
    ohb_error_t *err);
const char *store_writer_id(const store_writer_t *w);
const char *store_writer_path(const store_writer_t *w);

/* Copies fd (from offset 0) into capability.json. The caller keeps fd. */
int store_writer_put_capability(store_writer_t *w, int fd, ohb_error_t *err);

/* Copies fd (from its current offset to EOF) into <bundle>/<uri>; an
 * anonymous file (O_TMPFILE: st_nlink 0, mode 0600, ours, at offset 0) on the
 * store's file system is linked there instead of copied (no byte written
 * twice; never done for a file that has a name). uri must be
 * a valid spec uri not starting with '.' (dot-names are the store's temp
 * files, never listed), 13900020 otherwise; bundle a valid bundle name. A full
 * disk is 13900025 and leaves no file under the final name. The caller keeps
 * and closes fd. *bytes may be NULL. */
int store_writer_put_file(store_writer_t *w, const char *bundle, const char *uri, int fd,
    uint64_t *bytes, ohb_error_t *err);

/* Records a bundle's outcome for set.json (a second call for the same bundle
 * replaces the first). A bundle that received files but no result is recorded
 * with code 13900042, so it is never taken for a good restore point. */
int store_writer_set_result(store_writer_t *w, const char *bundle, int code, const char *message,
    uint64_t bytes, uint64_t files, ohb_error_t *err);

/* Writes set.json (complete:true) last and frees w, also when it fails (the
 * set then stays interrupted). A set where every bundle failed is still
 * complete (it records the failures) but is not a restore point for those
 * bundles. */
int store_writer_finish(store_writer_t *w, const char *system_full_name, const char *device_type,
    ohb_error_t *err);

/* Frees w without writing set.json: the set stays interrupted. */
void store_writer_abandon(store_writer_t *w);

/* ---- reading sets --------------------------------------------------------- */

typedef struct store_bundle_info {
	char *name;
	int code;
	char *message;
	uint64_t bytes;
	uint64_t files;
} store_bundle_info_t;

typedef struct store_set_info {
	char *id;
	char *kind;               /* "full", "incremental", or "unknown" (interrupted) */
	char *base;               /* NULL for full sets */
	char *created;            /* ISO-8601 UTC, from set.json or the id */
	int64_t created_ms;
	bool complete;            /* set.json present and complete:true */
	store_bundle_info_t *bundles;
	size_t n_bundles;
	uint64_t bytes;           /* sum over bundles */
} store_set_info_t;

/* All sets, newest first, interrupted ones included (complete=false): a
 * folder without set.json, with one that does not parse, or with
 * complete:false. Entries that are not set folders are ignored. Reading only:
 * works on a full or read-only disk. */
int store_list(store_t *st, store_set_info_t **out, size_t *n, ohb_error_t *err);
void store_set_infos_free(store_set_info_t *v, size_t n);

/* One set's info; 13900020 when there is no such set. */
int store_set_info(store_t *st, const char *set_id, store_set_info_t *out, ohb_error_t *err);
void store_set_info_clear(store_set_info_t *info);

/* The newest complete set that holds a good backup (code 0) of bundle and is
 * older than before_set (NULL: any set). An incremental backup builds on it;
 * a restore of an incremental set walks these back to a full set (the chain).
 * 13900020 when there is none. */
int store_find_good_set(store_t *st, const char *bundle, const char *before_set, store_set_info_t *out,
    ohb_error_t *err);

/* The sets that restore `bundle` to its state in set_id, oldest first: just
 * set_id for a full set; for an incremental one, the bundle's newest good set
 * before it, and so on back to a full set (or to the bundle's first backup).
 * *ids is malloc'd (free with store_strings_free). */
int store_chain(store_t *st, const char *set_id, const char *bundle, char ***ids, size_t *n, ohb_error_t *err);

/* Readable fd of <set>/capability.json; the caller closes it. */
int store_open_capability(store_t *st, const char *set_id, int *fd_out, ohb_error_t *err);

/* The uris of <set>/<bundle>/ in the order a restore sends them: manage.json
 * first, then the files it names in its order (the service applies them in
 * that order, each as it arrives), then the rest sorted with numbers by value
 * (strverscmp: part.2.tar before part.10.tar); without a readable
 * manage.json all after it are sorted so. A malloc'd array of malloc'd
 * strings; free with store_strings_free. Temp (dot) files and subfolders are
 * skipped. No such set, or no folder for the bundle: 13900020. */
int store_list_files(store_t *st, const char *set_id, const char *bundle, char ***uris, size_t *n,
    ohb_error_t *err);
void store_strings_free(char **v, size_t n);

/* Readable fd of <set>/<bundle>/<uri>; the caller closes it. */
int store_open_file(store_t *st, const char *set_id, const char *bundle, const char *uri, int *fd_out,
    ohb_error_t *err);

/* What a restoring client does with the fd onFileReady gave it: copies
 * <set>/<bundle>/<uri> into out_fd (from its offset; not fsync'd, the restore
 * makes its stage durable) and says how many bytes. A tar (a uri ending in
 * ".tar") is copied through the page cache, where the service reads it back
 * at once; any other file (a big file, which the service moves into its
 * stage untouched) is copied without filling the page cache
 * (fsu_copy_fd_uncached in backend/fsutil.h). Errors: store_open_file's, or
 * the copy's errno with a sentence. */
int store_copy_file_to(store_t *st, const char *set_id, const char *bundle, const char *uri, int out_fd,
    uint64_t *bytes, ohb_error_t *err);

/* Removes an interrupted set (13900001 for a complete one, 13900020 for an
 * unknown id). */
int store_remove_interrupted(store_t *st, const char *set_id, ohb_error_t *err);

#endif
