/*
 * cloud_ops — the driver side of cloud_driver.h: the table of functions a
 * cloud driver fills in, and the few helpers the drivers share. Only
 * cloud_driver.c, cloud_dir.c and cloud_webdav.c include this.
 *
 * cloud_driver.c has already checked every path with cloud_path_is_valid
 * (dir "" = the root is allowed for list only) and every pointer argument,
 * so a driver trusts what it is given. A driver returns the codes of
 * cloud_driver.h; cloud_driver.c sorts listings and tracks cloud_is_full from
 * CLOUD_E_LIMIT, so the drivers do neither.
 */
#ifndef OHB_CLOUD_OPS_H
#define OHB_CLOUD_OPS_H

#include "cloud_driver.h"

typedef struct cloud_ops {
	const char *kind;   /* "dir" or "webdav" */
	int (*open)(const char *url, const char *user, const char *password, void **impl, ohb_error_t *err);
	void (*close)(void *impl);
	int (*list)(void *impl, const char *dir, cloud_entry_t **out, size_t *n, ohb_error_t *err);
	int (*stat)(void *impl, const char *path, cloud_entry_t *out, ohb_error_t *err);
	int (*get)(void *impl, const char *path, uint64_t offset, int out_fd, const cloud_transfer_t *t,
	    ohb_error_t *err);
	int (*put)(void *impl, const char *path, int in_fd, uint64_t size, const cloud_transfer_t *t,
	    cloud_entry_t *out, ohb_error_t *err);
	int (*remove)(void *impl, const char *path, ohb_error_t *err);
	int (*move)(void *impl, const char *from, const char *to, ohb_error_t *err);
} cloud_ops_t;

extern const cloud_ops_t cloud_dir_ops;
extern const cloud_ops_t cloud_webdav_ops;

/* A growing array of entries (cloud_list's result). */
typedef struct cloud_entry_vec {
	cloud_entry_t *v;
	size_t n, cap;
} cloud_entry_vec_t;

/* Appends a copy of path with the other fields; OHB_E_NOMEM on failure. */
int cloud_entry_vec_add(cloud_entry_vec_t *vec, const char *path, bool is_dir, uint64_t size, int64_t mtime_ms,
    const char *etag, ohb_error_t *err);

/* The temporary name a put uploads to, in path's folder:
 * "<dir>/.<name>.ohbtmp.<pid>.<n>" (name cut to 200 bytes so the result stays a
 * valid file name). malloc'd; NULL on out-of-memory. */
char *cloud_temp_path(const char *path, uint64_t n);

/* True when the last component of path is such a temporary name. */
bool cloud_is_temp_name(const char *path);

/* A number for temp names that no other driver in this or another process is
 * likely to pick (getrandom, else time and address). */
uint64_t cloud_temp_seed(const void *salt);

/* Calls t->cancelled / t->progress when t and the callback exist. */
bool cloud_xfer_cancelled(const cloud_transfer_t *t);
void cloud_xfer_progress(const cloud_transfer_t *t, uint64_t done, uint64_t total);

#endif
