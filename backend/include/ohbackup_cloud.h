/*
 * ohbackup_cloud.h — the device-cloud sync of @ohos.file.cloudSync (spec
 * file.cloudSync.md; REFERENCE.md "cloudSync") in C: GallerySync, Download
 * and getFileSyncState over the media library of a device root.
 *
 * The media library is the folder <root>/media. Its files are addressed by
 * uris of the form
 *
 *     file://media/<relative path>        e.g. file://media/Photo/1/IMG_1.jpg
 *
 * (OpenHarmony's media uris); the spec's example spelling with an empty
 * authority, file:///media/Photo/1, is accepted as the same file. Bytes
 * outside [A-Za-z0-9-._~/] may be percent-encoded (%20); a decoded path must
 * not be empty, hold an empty, "." or ".." component, or a NUL. Any other
 * uri (another scheme, another authority, a path outside /media) -> 14000002.
 * In the cloud, the file <root>/media/<rel> is stored as media/<rel>.
 *
 * Errors are the spec's codes: 401 parameter error (NULL, more than 100 uris
 * in a batch query), 14000002 invalid uri, 13900002 no such file, 22400001
 * cloud not ready (no URL), 22400002 network unavailable, 22400004 the cloud
 * is full, 22400006 the same task is in progress, 13900025 no local space.
 *
 * Threads: every function may be called from any thread, including from
 * inside a progress callback. Callbacks are delivered one at a time from a
 * single thread of the engine (its dispatcher), never with an engine lock
 * held, in the order the events happened.
 */
#ifndef OHBACKUP_CLOUD_H
#define OHBACKUP_CLOUD_H

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

/* Download.start(uri): downloads the cloud's version of the file into the
 * media folder (through <target>.temp.download). 13900002 when the cloud does
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

/* Ours: waits until no sync run and no download is going and every event has
 * been delivered; 0, or 13500003 (timed out) after timeout_ms (< 0: forever).
 * Must not be called from a callback. */
int ohb_cloud_wait_idle(ohb_cloud_t *c, int timeout_ms, ohb_error_t *err);

/* Ours: the names of the enums, for printing ("COMPLETED", …). */
const char *ohb_cloud_sync_state_name(ohb_cloud_sync_state_t s);
const char *ohb_cloud_error_type_name(ohb_cloud_error_type_t e);
const char *ohb_cloud_download_state_name(ohb_cloud_download_state_t s);
const char *ohb_cloud_download_error_name(ohb_cloud_download_error_t e);
const char *ohb_cloud_file_sync_state_name(ohb_cloud_file_sync_state_t s);

#endif
