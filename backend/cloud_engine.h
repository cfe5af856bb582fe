/*
 * cloud_engine — the inside of the cloudSync engine (ohbackup_cloud.h),
 * shared by its modules and by nothing else:
 *
 *   cloud_sync.c      the engine: open/close, scopes, uris, events and the
 *                     dispatcher, the scope folders, the state store,
 *                     getFileSyncState, file listing, wait_idle
 *   cloud_transfer.c  one file down (fetch: temp file, resume, conflict
 *                     copies) or up (push_file)
 *   cloud_run.c       sync runs (GallerySync/FileSync) and their API
 *   cloud_download.c  Download and CloudFileCache
 *   cloud_optimize.c  eviction: cleanCache, optimize space, optimizeStorage
 *   cloud_battery.c   the power supply (cloud_battery.h)
 *
 * Locking: c->lock guards every mutable field of the engine, its scopes, its
 * downloads and the event queue (one lock: the engine moves files, it does
 * not contend on memory). A scope's save_lock orders the writes of its state
 * file; it is taken before c->lock, never while holding it. The dispatcher
 * alone calls the application's callbacks, one event at a time, with no lock
 * held.
 */
#ifndef OHB_CLOUD_ENGINE_H
#define OHB_CLOUD_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cloud_driver.h"
#include "cloud_state.h"
#include "ohbackup_cloud.h"

#define CLOUD_TEMP_SUFFIX ".temp.download"

typedef enum { EV_SYNC, EV_DOWNLOAD, EV_CACHE, EV_OPTIMIZE } ev_kind_t;

typedef struct event {
	struct event *next;
	ev_kind_t kind;
	ohb_cloud_sync_t *scope;      /* EV_SYNC */
	int state;
	int error;
	int code;
	char *message;
	uint64_t processed, size;     /* download bytes; optimize freed/total */
	uint64_t files;               /* optimize */
	char *uri;
} event_t;

/* A path of a scope being transferred right now, for getFileSyncState. */
typedef struct active {
	struct active *next;
	char *path;
	int state;   /* OHB_CLOUD_FILE_UPLOADING or _DOWNLOADING */
} active_t;

struct ohb_cloud_sync {
	struct ohb_cloud_sync *next;
	ohb_cloud_t *c;
	char *label;                  /* "gallery" or the bundle name */
	char *bundle;                 /* NULL for the gallery */
	char *uri_prefix;             /* "file://media/" or "file://<bundle>/data/storage/el2/cloud/" */
	char *local_dir;              /* absolute */
	char *cloud_dir;              /* "media" or "apps/<bundle>" */
	char *state_dir;              /* <root>/cloud or <root>/cloud/apps/<bundle> */
	cst_t *store;
	pthread_mutex_t save_lock;
	int64_t last_save_ms;
	ohb_cloud_sync_cb_t cb;
	void *user;
	bool running;                 /* a run is going (its thread may still need a join) */
	bool joinable;
	bool stop;
	bool forced;                  /* the run's start() was forced (battery rule) */
	pthread_t thread;
	ohb_cloud_sync_status_t status;   /* .label set once by scope_new, .running filled on read */
	active_t *active;
	cloud_entry_t *remote;        /* the scope's cloud files as last listed (by a run or a listing) */
	size_t n_remote;
	bool list_joinable;
	pthread_t list_thread;
};

typedef struct download {
	struct download *next;
	ohb_cloud_t *c;
	ohb_cloud_sync_t *s;
	char *rel;
	char *uri;
	cloud_entry_t entry;          /* the cloud's file as start() saw it */
	bool cache;                   /* CloudFileCache (resumable, its own listener) */
	bool stop;
	bool keep_partial;            /* CloudFileCache.stop(uri, false) */
	bool finished;
	pthread_t thread;
} download_t;

struct ohb_cloud {
	char *root, *url, *user, *password, *power_dir;
	bool switched_off;
	uint64_t rate_limit;
	unsigned free_percent;
	pthread_mutex_t lock;
	pthread_cond_t cond;          /* any change of the fields below */
	ohb_cloud_sync_t *scopes;     /* the gallery first */
	ohb_cloud_download_cb_t dl_cb, cache_cb;
	void *dl_user, *cache_user;
	event_t *head, *tail;
	bool delivering;
	bool dispatcher_stop;
	pthread_t dispatcher;
	download_t *downloads;
	/* optimize space */
	bool opt_running, opt_joinable, opt_stop;
	pthread_t opt_thread;
	ohb_cloud_optimize_cb_t opt_cb;
	void *opt_user;
	uint64_t opt_total;
	uint32_t opt_days;
};

/* A file of a scope's folder. */
typedef struct local_file {
	char *path;
	uint64_t size;
	int64_t mtime_ns;
	int64_t atime_ns;
} local_file_t;

typedef struct local_vec {
	local_file_t *v;
	size_t n, cap;
} local_vec_t;

/* A transfer's context for the driver's progress and cancel hooks. */
typedef struct xfer {
	ohb_cloud_t *c;
	bool *stop;                   /* read under c->lock */
	download_t *dl;               /* Download/CloudFileCache events, or NULL */
	ohb_cloud_sync_status_t *status;   /* a sync run's counters, or NULL */
	int64_t start_ms;             /* of the current file's transfer */
	uint64_t base;                /* bytes the transfer started at (resume) */
	uint64_t last_done;
} xfer_t;

typedef enum { PLACE_OVERWRITE, PLACE_CONFLICT, PLACE_SAME } place_t;

/* ---- cloud_sync.c ---- */
/* Opens a driver for the engine's cloud: 22400001 when sync is switched off. */
int ce_driver_open(ohb_cloud_t *c, cloud_driver_t **d, ohb_error_t *err);
int64_t ce_mtime_ns(const struct stat *st);
/* A uri -> its scope (a bundle's is created on first use) and the malloc'd,
 * decoded path relative to the scope's folder. */
int ce_uri_parse(ohb_cloud_t *c, const char *uri, ohb_cloud_sync_t **scope, char **rel, ohb_error_t *err);
/* The uri of rel in scope s (malloc'd). */
char *ce_uri_of(const ohb_cloud_sync_t *s, const char *rel);
/* The cloud path of rel ("media/<rel>"), malloc'd. */
char *ce_cloud_path(const ohb_cloud_sync_t *s, const char *rel);
/* Opens the folder holding rel below the scope's folder, never following a
 * symlink (creating folders when `create`); *leaf points into rel. */
int ce_parent(const ohb_cloud_sync_t *s, const char *rel, bool create, int *pfd, const char **leaf,
    ohb_error_t *err);
/* lstat of a scope file: true with *st when rel is a regular file. */
bool ce_stat(const ohb_cloud_sync_t *s, const char *rel, struct stat *st);
/* Every regular file of the scope's folder (none when it does not exist),
 * sorted by path; temp downloads are left out. */
int ce_scan(const ohb_cloud_sync_t *s, local_vec_t *lv, ohb_error_t *err);
void ce_local_vec_free(local_vec_t *lv);
const local_file_t *ce_local_find(const local_vec_t *lv, const char *path);

/* Queues an event (c->lock held). */
void ce_push_locked(ohb_cloud_t *c, const event_t *proto);

void ce_active_set_locked(ohb_cloud_sync_t *s, const char *path, int state);
void ce_active_clear_locked(ohb_cloud_sync_t *s, const char *path);
const active_t *ce_active_find_locked(const ohb_cloud_sync_t *s, const char *path);
bool ce_busy(ohb_cloud_sync_t *s, const char *rel);
/* Marks rel as transferring (state) unless something already is: false then.
 * One locked step, so a run and a Download never take the same file. */
bool ce_claim(ohb_cloud_sync_t *s, const char *rel, int state);
void ce_release(ohb_cloud_sync_t *s, const char *rel);

/* The state store (each takes c->lock). */
void ce_save_store(ohb_cloud_sync_t *s, bool force);
void ce_record_synced(ohb_cloud_sync_t *s, const char *rel, int state, const struct stat *st, const char *etag);
void ce_record_state(ohb_cloud_sync_t *s, const char *rel, int state);
bool ce_base_of(ohb_cloud_sync_t *s, const char *rel, cst_rec_t *out);
void ce_put_record(ohb_cloud_sync_t *s, const cst_rec_t *r);

/* A file (not a folder) below the scope's cloud folder. */
bool ce_in_scope(const ohb_cloud_sync_t *s, const cloud_entry_t *ce);
/* Replaces the scope's remote listing with the in-scope files of cv (c->lock held). */
void ce_remember_remote_locked(ohb_cloud_sync_t *s, const cloud_entry_t *cv, size_t cn);

/* ---- cloud_transfer.c ---- */
/*
 * Downloads the cloud's rel into the scope's folder. `expect` is the local
 * file the caller decided on (NULL: there was none) and `want_conflict` says
 * the caller already knows both sides changed. The bytes go to
 * "<leaf>.temp.download" (resumed when x->dl is a CloudFileCache download and
 * the store says the partial file was started from ce's etag); then, looking
 * at the target again:
 *   - no local file, or the local file is still `expect` and no conflict:
 *     rename over it (PLACE_OVERWRITE);
 *   - otherwise, same bytes as the local file: drop the temp (PLACE_SAME);
 *   - else rename to a conflict name (PLACE_CONFLICT).
 * *st receives the stat of the local file that now matches the cloud's
 * version under rel's name (valid for OVERWRITE and SAME). Returns 0,
 * CLOUD_CANCELLED or an error; the temp file survives only a cancelled
 * CloudFileCache download asked to keep it.
 */
int ct_fetch(ohb_cloud_sync_t *s, cloud_driver_t *d, const char *rel, const cloud_entry_t *ce,
    const local_file_t *expect, bool want_conflict, xfer_t *x, place_t *placed, struct stat *st, ohb_error_t *err);
/* Uploads the local rel; on success records its base (UPLOAD_SUCCESS). */
int ct_push(ohb_cloud_sync_t *s, cloud_driver_t *d, const char *rel, xfer_t *x, ohb_error_t *err);

/* The transfers' cancel poll (x: an xfer_t): the run's or download's stop flag. */
bool ce_xfer_cancelled(void *ctx);

/* ---- cloud_run.c ---- */
void cr_stop_and_join(ohb_cloud_sync_t *s);   /* for close: c->lock not held; also a listing */

/* ---- cloud_download.c ---- */
void cd_reap(ohb_cloud_t *c);                 /* joins finished downloads; c->lock not held */

/* ---- cloud_optimize.c ---- */
void co_stop_and_join(ohb_cloud_t *c);        /* for close: c->lock not held */

#endif
