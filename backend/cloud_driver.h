/*
 * cloud_driver — the one interface the device-cloud sync (@ohos.file.cloudSync,
 * spec file.cloudSync.md) talks to a cloud through, with two drivers:
 *
 *   dir     a directory of this machine ("file:///srv/cloud" or an absolute
 *           path): the embedded default, and any mounted remote (NFS, sshfs…)
 *   webdav  WebDAV over libcurl ("http://host:port/path", "https://…"): the
 *           protocol of Nextcloud, ownCloud, Apache mod_dav, rclone serve webdav
 *
 * Paths given to a driver are relative to the cloud's root, '/'-separated,
 * never starting with '/', never containing "." or ".." components (the
 * driver refuses them with 14000002).
 *
 * Errors (REFERENCE.md "cloudSync"): the cloud cannot be reached (connection
 * refused or reset, DNS, timeout, a 5xx other than 507) -> 22400002 (network
 * unavailable); no URL configured -> 22400001; the server is full (HTTP 507,
 * or ENOSPC/EDQUOT in a dir cloud) -> 22400004 and cloud_is_full() true;
 * no such file -> 13900002; the local side is full -> 13900025; credentials
 * refused (401/403) -> 22400001 with a sentence saying so. Each error has a
 * sentence naming the path and the cause.
 *
 * Writes to the cloud are atomic: put uploads to a temporary name in the
 * same folder and renames (WebDAV MOVE with Overwrite: T) over the target, so
 * a broken transfer never leaves a half file under the real name. get writes
 * into the fd it is given; the caller handles the local temp file + rename.
 *
 * Thread model: a cloud_driver_t may be used by one thread at a time; open
 * one per thread for parallel transfers. Transfers poll `cancelled` at least
 * every 100 ms while bytes flow (and at least once a second while a WebDAV
 * server is silent: libcurl's progress tick) and report progress at least
 * every 256 KiB.
 *
 * Cancelling: when t->cancelled() returns true, get and put stop and return
 * CLOUD_CANCELLED (a positive value, not an error code; err says "cancelled").
 * A cancelled put leaves the target as it was; a cancelled get has written
 * some bytes into out_fd, which the caller keeps (resume) or discards.
 *
 * The driver's own temporary names (".<name>.ohbtmp.<pid>.<n>") are never
 * listed; one left behind by a crash or a dead server is only clutter.
 *
 * Implementation: cloud_driver.c validates paths, sorts listings, tracks
 * cloud_is_full and calls the driver through a table of function pointers
 * (cloud_ops.h); cloud_dir.c and cloud_webdav.c are the two drivers.
 */
#ifndef OHB_CLOUD_DRIVER_H
#define OHB_CLOUD_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ohbackup.h"

enum {
	CLOUD_E_NOT_READY = 22400001,   /* cloud status not ready: not configured, switched off, refused */
	CLOUD_E_NETWORK = 22400002,     /* network unavailable */
	CLOUD_E_BATTERY = 22400003,
	CLOUD_E_LIMIT = 22400004,       /* exceeds limit (the cloud is full) */
	CLOUD_E_INNER = 22400005,
	CLOUD_E_BUSY = 22400006,        /* the same task is in progress */
	CLOUD_E_URI = 14000002,         /* invalid uri / path */
};

/* Returned (not an error) by cloud_get/cloud_put stopped by t->cancelled(). */
#define CLOUD_CANCELLED 1

typedef struct cloud_entry {
	char *path;              /* relative to the cloud root, no trailing '/' */
	bool is_dir;
	uint64_t size;
	int64_t mtime_ms;        /* last modification as the cloud reports it */
	char etag[128];          /* version tag ("" when the cloud has none; dir driver: size-mtime) */
} cloud_entry_t;

typedef struct cloud_transfer {
	void *ctx;
	void (*progress)(void *ctx, uint64_t done, uint64_t total);   /* may be NULL */
	bool (*cancelled)(void *ctx);                                  /* may be NULL */
} cloud_transfer_t;

typedef struct cloud_driver cloud_driver_t;

/* Opens a driver for url ("" or NULL -> 22400001). user/password may be NULL
 * (webdav: basic/digest auth when given). Opening does not touch the network;
 * the first call does. */
int cloud_driver_open(const char *url, const char *user, const char *password, cloud_driver_t **out,
    ohb_error_t *err);
void cloud_driver_close(cloud_driver_t *d);
const char *cloud_driver_kind(const cloud_driver_t *d);   /* "dir" or "webdav" */

/* Every file and folder below dir ("" = the root), recursively, sorted by path.
 * A missing dir -> 0 entries (not an error). */
int cloud_list(cloud_driver_t *d, const char *dir, cloud_entry_t **out, size_t *n, ohb_error_t *err);
void cloud_entries_free(cloud_entry_t *v, size_t n);

int cloud_stat(cloud_driver_t *d, const char *path, cloud_entry_t *out, ohb_error_t *err);

/* Downloads path into out_fd starting at byte `offset` of the remote file (a
 * resumed download: HTTP Range), writing at out_fd's current position. */
int cloud_get(cloud_driver_t *d, const char *path, uint64_t offset, int out_fd, const cloud_transfer_t *t,
    ohb_error_t *err);

/* Uploads everything readable from in_fd (size bytes) to path, atomically,
 * creating missing parent folders. *out (may be NULL) receives the new entry. */
int cloud_put(cloud_driver_t *d, const char *path, int in_fd, uint64_t size, const cloud_transfer_t *t,
    cloud_entry_t *out, ohb_error_t *err);

/* Removes a file or an empty folder (a missing one is fine). */
int cloud_remove(cloud_driver_t *d, const char *path, ohb_error_t *err);

/* Renames within the cloud (conflict copies), creating the target's missing
 * parent folders; the target must not exist (an existing one -> 13900020).
 * A missing source -> 13900002. */
int cloud_move(cloud_driver_t *d, const char *from, const char *to, ohb_error_t *err);

/* True after an error that meant "the cloud is full". */
bool cloud_is_full(const cloud_driver_t *d);

/* The path rule above, for callers that build paths from uris. */
bool cloud_path_is_valid(const char *path);

#endif
