/*
 * ohbackup_cloud.h — the device-cloud sync of @ohos.file.cloudSync (spec
 * file.cloudSync.md; REFERENCE.md "cloudSync") in C: GallerySync, FileSync,
 * Download, CloudFileCache, getFileSyncState and optimize space, over the
 * media library of a device root and its bundles' cloud folders.
 *
 * A "sync scope" is a local folder kept in step with a folder of the cloud:
 *   - the gallery: <root>/media <-> cloud media/, files addressed by
 *         file://media/<relative path>        e.g. file://media/Photo/1/IMG_1.jpg
 *     (OpenHarmony's media uris; the spec's example spelling with an empty
 *     authority, file:///media/Photo/1, is accepted as the same file);
 *   - a bundle's cloud folder (FileSync): the bundle's sandbox folder
 *     /data/storage/el2/cloud, mapped through its bundle.json mounts (for a
 *     demo bundle <root>/bundles/<name>/sandbox/data/storage/el2/cloud) <->
 *     cloud apps/<bundle>/, files addressed by OpenHarmony's application uris
 *         file://<bundle>/data/storage/el2/cloud/<relative path>.
 * Bytes outside [A-Za-z0-9-._~/] may be percent-encoded (%20); a decoded path
 * must not be empty, hold an empty, "." or ".." component, or a NUL. Any other
 * uri (another scheme, an authority that is neither "media" nor an installed
 * bundle, a path outside those folders) -> 14000002.
 *
 * Errors are the spec's codes: 401 parameter error (NULL, more than 100 uris
 * in a batch query), 14000002 invalid uri, 13900002 no such file, 22400001
 * cloud not ready (no URL), 22400002 network unavailable, 22400003 battery
 * too low, 22400004 the cloud is full, 22400006 the same task is in
 * progress, 13900025 no local space, 13900001 not permitted (dropping a local
 * copy the cloud does not hold).
 *
 * Evicted files: optimize space and cleanCache drop the local copy of a file
 * the cloud holds and keep its entry in the state store (the "placeholder"):
 * the file keeps its uri and sync state, a sync does not download it again,
 * and Download/CloudFileCache.start bring it back.
 *
 * Threads: every function may be called from any thread, including from
 * inside a progress callback. Callbacks are delivered one at a time from a
 * single thread of the engine (its dispatcher), never with an engine lock
 * held, in the order the events happened.
 */
#ifndef OHBACKUP_CLOUD_H
#define OHBACKUP_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ohbackup.h"

/* SyncState: the state of a gallery sync run. */
typedef enum ohb_cloud_sync_state {
	OHB_CLOUD_SYNC_UPLOADING = 0,
	OHB_CLOUD_SYNC_UPLOAD_FAILED = 1,
	OHB_CLOUD_SYNC_DOWNLOADING = 2,
	OHB_CLOUD_SYNC_DOWNLOAD_FAILED = 3,
	OHB_CLOUD_SYNC_COMPLETED = 4,
	OHB_CLOUD_SYNC_STOPPED = 5,
} ohb_cloud_sync_state_t;

/* ErrorType: why a gallery sync failed. */
typedef enum ohb_cloud_error_type {
	OHB_CLOUD_ERR_NO_ERROR = 0,
	OHB_CLOUD_ERR_NETWORK_UNAVAILABLE = 1,
	OHB_CLOUD_ERR_WIFI_UNAVAILABLE = 2,
	OHB_CLOUD_ERR_BATTERY_LEVEL_LOW = 3,
	OHB_CLOUD_ERR_BATTERY_LEVEL_WARNING = 4,
	OHB_CLOUD_ERR_CLOUD_STORAGE_FULL = 5,
	OHB_CLOUD_ERR_LOCAL_STORAGE_FULL = 6,
	OHB_CLOUD_ERR_DEVICE_TEMPERATURE_TOO_HIGH = 7,
} ohb_cloud_error_type_t;

/* Download State. */
typedef enum ohb_cloud_download_state {
	OHB_CLOUD_DL_RUNNING = 0,
	OHB_CLOUD_DL_COMPLETED = 1,
	OHB_CLOUD_DL_FAILED = 2,
	OHB_CLOUD_DL_STOPPED = 3,
} ohb_cloud_download_state_t;

/* DownloadErrorType. */
typedef enum ohb_cloud_download_error {
	OHB_CLOUD_DLERR_NO_ERROR = 0,
	OHB_CLOUD_DLERR_UNKNOWN_ERROR = 1,
	OHB_CLOUD_DLERR_NETWORK_UNAVAILABLE = 2,
	OHB_CLOUD_DLERR_LOCAL_STORAGE_FULL = 3,
	OHB_CLOUD_DLERR_CONTENT_NOT_FOUND = 4,
	OHB_CLOUD_DLERR_FREQUENT_USER_REQUESTS = 5,
} ohb_cloud_download_error_t;

/* FileSyncState (docs/CLOUD.md says which situation gives which). */
typedef enum ohb_cloud_file_sync_state {
	OHB_CLOUD_FILE_UPLOADING = 0,
	OHB_CLOUD_FILE_DOWNLOADING = 1,
	OHB_CLOUD_FILE_COMPLETED = 2,
	OHB_CLOUD_FILE_STOPPED = 3,
	OHB_CLOUD_FILE_TO_BE_UPLOADED = 4,
	OHB_CLOUD_FILE_UPLOAD_SUCCESS = 5,
	OHB_CLOUD_FILE_UPLOAD_FAILURE = 6,
} ohb_cloud_file_sync_state_t;

/* SyncProgress. `code` and `message` are ours: the spec code and sentence of
 * the run's first error (0 and "" otherwise), since ErrorType has no value for
 * most failures (their `error` is then NO_ERROR). Valid during the callback. */
typedef struct ohb_cloud_sync_progress {
	ohb_cloud_sync_state_t state;
	ohb_cloud_error_type_t error;
	int code;
	const char *message;
} ohb_cloud_sync_progress_t;

/* DownloadProgress: bytes. `uri` is valid during the callback only. */
typedef struct ohb_cloud_download_progress {
	ohb_cloud_download_state_t state;
	uint64_t processed;
	uint64_t size;
	const char *uri;
	ohb_cloud_download_error_t error;
} ohb_cloud_download_progress_t;

typedef void (*ohb_cloud_sync_cb_t)(void *user, const ohb_cloud_sync_progress_t *pg);
typedef void (*ohb_cloud_download_cb_t)(void *user, const ohb_cloud_download_progress_t *pg);

typedef struct ohb_cloud ohb_cloud_t;

typedef struct ohb_cloud_options {
	const char *root;        /* device root; the media library is <root>/media */
	const char *url;         /* cloud URL (cloud_driver.h: file:///dir, /dir, http(s)://…); NULL or "":
	                            getFileSyncState works, sync and Download end with 22400001 */
	const char *user;        /* NULL or WebDAV credentials */
	const char *password;
	uint64_t rate_limit;     /* transfer bandwidth cap in bytes per second, 0 = none */
	const char *power_supply_dir; /* NULL = /sys/class/power_supply; tests point it at a folder
	                            shaped like it (BAT0/{type,capacity,status}) to simulate a battery */
	unsigned storage_free_percent; /* optimizeStorage's goal: free space >= this % of the file
	                            system holding <root>/media; 0 = 10 */
	bool switched_off;       /* the operator switched cloud sync off: every transfer ends with
	                            22400001; local queries (states, listing) still work */
} ohb_cloud_options_t;

/* Opens the engine (creates <root>/media and <root>/cloud when missing; does
 * not touch the network). The strings are copied. */
int ohb_cloud_open(const ohb_cloud_options_t *opts, ohb_cloud_t **out, ohb_error_t *err);

/* Stops every sync and download, waits for them, delivers the events still
 * queued, and frees the engine. Must not be called from a callback. */
void ohb_cloud_close(ohb_cloud_t *c);

/* GallerySync.on/off('progress'): one listener; `on` replaces it, `off` with
 * NULL or the registered callback removes it (another callback -> 401). */
int ohb_cloud_gallery_on(ohb_cloud_t *c, ohb_cloud_sync_cb_t cb, void *user, ohb_error_t *err);
int ohb_cloud_gallery_off(ohb_cloud_t *c, ohb_cloud_sync_cb_t cb, ohb_error_t *err);

/* GallerySync.start: runs the download stage, then the upload stage, on the
 * engine's sync thread. A start while a run is going is coalesced (0, no
 * second run). A start right after stop() waits for the stopped run to end
 * and begins a new one, which resumes where it left off. */
int ohb_cloud_gallery_start(ohb_cloud_t *c, ohb_error_t *err);

/* GallerySync.stop: the running transfer is cancelled and the run ends with
 * STOPPED. 0 also when nothing runs. */
int ohb_cloud_gallery_stop(ohb_cloud_t *c, ohb_error_t *err);

/* Download.on/off('progress'), as the gallery's. */
int ohb_cloud_download_on(ohb_cloud_t *c, ohb_cloud_download_cb_t cb, void *user, ohb_error_t *err);
int ohb_cloud_download_off(ohb_cloud_t *c, ohb_cloud_download_cb_t cb, ohb_error_t *err);

/* Download.start(uri): downloads the cloud's version of the file into its
 * scope's folder (the gallery's or a bundle's; through <target>.temp.download). 13900002 when the cloud does
 * not hold the file; 22400006 when that uri is already downloading. */
int ohb_cloud_download_start(ohb_cloud_t *c, const char *uri, ohb_error_t *err);

/* Download.stop(uri): cancels, deletes the partial file, ends with STOPPED.
 * 0 also when that uri is not downloading. */
int ohb_cloud_download_stop(ohb_cloud_t *c, const char *uri, ohb_error_t *err);

/* getFileSyncState(uri) and the batch form (n <= 100, else 401; the first bad
 * uri fails the whole call). Local only: no network. 13900002 for a uri that
 * is neither a local media file nor known to the engine's state store. */
int ohb_cloud_get_file_sync_state(ohb_cloud_t *c, const char *uri, ohb_cloud_file_sync_state_t *out,
    ohb_error_t *err);
int ohb_cloud_get_file_sync_states(ohb_cloud_t *c, const char *const *uris, size_t n,
    ohb_cloud_file_sync_state_t *out, ohb_error_t *err);

/* ---- sync scopes: GallerySync and FileSync ------------------------------------ */

/* A sync scope (above). Owned by the engine, valid until ohb_cloud_close. */
typedef struct ohb_cloud_sync ohb_cloud_sync_t;

/* The gallery's scope (GallerySync). Never NULL for an open engine. */
ohb_cloud_sync_t *ohb_cloud_gallery(ohb_cloud_t *c);

/* new FileSync(bundleName): the scope of an installed bundle's cloud folder
 * (created when missing). The same bundle gives the same scope. 401 for an
 * invalid name, 13900002 when the bundle is not installed, 13900020 when its
 * mounts do not hold /data/storage/el2/cloud. */
int ohb_cloud_file_sync(ohb_cloud_t *c, const char *bundle, ohb_cloud_sync_t **out, ohb_error_t *err);

/* on/off('progress'), start, stop, as GallerySync's above, for any scope.
 * start checks the battery (power_supply_dir): on battery and not charging,
 * below 10 % -> 22400003 always, below 15 % -> 22400003 unless `forced`.
 * The same rule is looked at every 5 s while a run goes: falling under it
 * ends the run (DOWNLOAD_FAILED/UPLOAD_FAILED, BATTERY_LEVEL_LOW below 10 %,
 * BATTERY_LEVEL_WARNING below 15 % when not forced; code 22400003). */
int ohb_cloud_sync_on(ohb_cloud_sync_t *s, ohb_cloud_sync_cb_t cb, void *user, ohb_error_t *err);
int ohb_cloud_sync_off(ohb_cloud_sync_t *s, ohb_cloud_sync_cb_t cb, ohb_error_t *err);
int ohb_cloud_sync_start(ohb_cloud_sync_t *s, bool forced, ohb_error_t *err);
int ohb_cloud_sync_stop(ohb_cloud_sync_t *s, ohb_error_t *err);

/* FileSync.getLastSyncTime: ms since the epoch at which the scope's last run
 * that COMPLETED ended; 0 when none has. Kept in the scope's state store. */
int ohb_cloud_sync_last_time(ohb_cloud_sync_t *s, int64_t *ms, ohb_error_t *err);

/* Ours, for front ends: what a scope is doing now. */
typedef struct ohb_cloud_sync_status {
	bool running;
	ohb_cloud_sync_state_t state;   /* of the last SyncProgress (COMPLETED before any run) */
	int code;                       /* the last run's first error, 0 when none */
	uint64_t files_done, files_total;   /* of the running stage */
	uint64_t bytes_done, bytes_total;   /* of the running stage */
	int64_t last_sync_ms;
	char current[512];              /* the file being transferred, "" when none */
	char label[160];                /* "gallery" or the bundle name */
	bool listing;                   /* ohb_cloud_sync_list_remote is asking the cloud */
	int list_code;                  /* its last result: 0, or the spec code ... */
	char list_message[256];         /* ... and sentence */
	int64_t listed_ms;              /* when the cloud was last listed (a listing or a run), 0 never */
} ohb_cloud_sync_status_t;
int ohb_cloud_sync_get_status(ohb_cloud_sync_t *s, ohb_cloud_sync_status_t *out, ohb_error_t *err);

/* Ours, for front ends: asks the cloud, on an engine thread, which files of
 * the scope it holds, so that ohb_cloud_list_files can show the files the
 * device has never had (remote_only) and an operator can pull one down
 * without a whole sync. Returns at once (0; coalesced while one runs);
 * status.listing is true until it has ended, then status.list_code/_message
 * tell how. Every sync run refreshes the same knowledge. */
int ohb_cloud_sync_list_remote(ohb_cloud_sync_t *s, ohb_error_t *err);

/* Ours, for front ends: every file of a scope, local, evicted, or only in
 * the cloud as last listed (remote_only), with its sync state, sorted by
 * path. Local only (no network). */
typedef struct ohb_cloud_file_info {
	char *uri;
	char *path;            /* relative to the scope's folder */
	uint64_t size;         /* local size; for an evicted file the size it had */
	int64_t mtime_ms, atime_ms;   /* 0 for an evicted file */
	bool local;            /* a local copy exists */
	bool evicted;          /* the local copy was dropped; the cloud holds the file */
	bool remote_only;      /* in the cloud when last listed, never on this device: no FileSyncState
	                          yet (getFileSyncState says 13900002); `state` is COMPLETED, `size` and
	                          `mtime_ms` are the cloud's */
	ohb_cloud_file_sync_state_t state;
} ohb_cloud_file_info_t;
int ohb_cloud_list_files(ohb_cloud_sync_t *s, ohb_cloud_file_info_t **out, size_t *n, ohb_error_t *err);
void ohb_cloud_file_infos_free(ohb_cloud_file_info_t *v, size_t n);

/* Ours: the battery as start() sees it. *percent = -1 when the machine has no
 * battery (mains only: always allowed). */
int ohb_cloud_battery(ohb_cloud_t *c, int *percent, bool *charging, ohb_error_t *err);

/* ---- CloudFileCache ----------------------------------------------------------- */

/* on/off('progress') with DownloadProgress events, as Download's. */
int ohb_cloud_cache_on(ohb_cloud_t *c, ohb_cloud_download_cb_t cb, void *user, ohb_error_t *err);
int ohb_cloud_cache_off(ohb_cloud_t *c, ohb_cloud_download_cb_t cb, ohb_error_t *err);

/* CloudFileCache.start(uri): as Download.start, but a partial file kept by an
 * earlier stop(uri, false) is resumed (only when the cloud's version is the
 * one it was started from; otherwise it starts over). */
int ohb_cloud_cache_start(ohb_cloud_t *c, const char *uri, ohb_error_t *err);

/* CloudFileCache.stop(uri, needClean): cancels; the partial file is kept for a
 * later start unless need_clean. 0 also when that uri is not downloading. */
int ohb_cloud_cache_stop(ohb_cloud_t *c, const char *uri, bool need_clean, ohb_error_t *err);

/* CloudFileCache.cleanCache(uri): drops the local copy (and any partial
 * download) and keeps the entry, so the file can be downloaded again.
 * 13900002 for a file the engine does not know; 13900001 when the local copy
 * has changes the cloud does not hold or the cloud no longer has the file
 * (nothing is dropped); 22400002 when the cloud cannot be asked. */
int ohb_cloud_cache_clean(ohb_cloud_t *c, const char *uri, ohb_error_t *err);

/* ---- optimize space (the gallery) --------------------------------------------- */

typedef enum ohb_cloud_optimize_state {
	OHB_CLOUD_OPT_RUNNING = 0,
	OHB_CLOUD_OPT_COMPLETED = 1,
	OHB_CLOUD_OPT_FAILED = 2,
	OHB_CLOUD_OPT_STOPPED = 3,
} ohb_cloud_optimize_state_t;

/* OptimizeSpaceProgress; freed/total and code/message are ours. */
typedef struct ohb_cloud_optimize_progress {
	ohb_cloud_optimize_state_t state;
	int progress;                 /* 0..100: freed * 100 / totalSize */
	uint64_t freed, total;        /* bytes */
	uint64_t files;               /* files evicted so far */
	int code;                     /* FAILED: the spec code */
	const char *message;
} ohb_cloud_optimize_progress_t;
typedef void (*ohb_cloud_optimize_cb_t)(void *user, const ohb_cloud_optimize_progress_t *pg);

/* startOptimizeSpace({totalSize, agingDays}, callback): on the engine's
 * optimize thread, evicts gallery files that the cloud holds (checked with the
 * cloud just before each eviction), unchanged since their last sync and not
 * accessed (atime) for aging_days, oldest access first, until total_size
 * bytes are freed. Events: RUNNING with the percentage, then COMPLETED (at
 * 100, or when the candidates run out), FAILED or STOPPED. A file not yet
 * uploaded is never evicted. cb NULL or total_size 0 -> 401; while one runs
 * -> 22400006. */
int ohb_cloud_optimize_start(ohb_cloud_t *c, uint64_t total_size, uint32_t aging_days, ohb_cloud_optimize_cb_t cb,
    void *user, ohb_error_t *err);

/* stopOptimizeSpace(): the run ends STOPPED; returns once it has. */
int ohb_cloud_optimize_stop(ohb_cloud_t *c, ohb_error_t *err);

/* optimizeStorage(): the same policy with 30 aging days, synchronously, until
 * the free space of the media folder's file system reaches
 * storage_free_percent (nothing to do when it already has). 22400006 while an
 * optimize space run goes. */
int ohb_cloud_optimize_storage(ohb_cloud_t *c, ohb_error_t *err);

/* Ours: waits until no sync run or cloud listing (of any scope), no download
 * or cache download and no optimize run is going and every event has
 * been delivered; 0, or 13500003 (timed out) after timeout_ms (< 0: forever).
 * Must not be called from a callback. */
int ohb_cloud_wait_idle(ohb_cloud_t *c, int timeout_ms, ohb_error_t *err);

/* Ours: the names of the enums, for printing ("COMPLETED", …). */
const char *ohb_cloud_sync_state_name(ohb_cloud_sync_state_t s);
const char *ohb_cloud_error_type_name(ohb_cloud_error_type_t e);
const char *ohb_cloud_download_state_name(ohb_cloud_download_state_t s);
const char *ohb_cloud_download_error_name(ohb_cloud_download_error_t e);
const char *ohb_cloud_file_sync_state_name(ohb_cloud_file_sync_state_t s);
const char *ohb_cloud_optimize_state_name(ohb_cloud_optimize_state_t s);

#endif
