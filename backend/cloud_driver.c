/*
 * cloud_driver — the dispatch in front of the cloud drivers (cloud_driver.h).
 *
 * The sync engine above talks to "a cloud" without knowing whether it is a
 * folder of this machine or a WebDAV server; the URL picks the driver once,
 * in cloud_driver_open, and every call goes through the driver's table of
 * function pointers (cloud_ops.h), the way ncdu's scan feeds one consumer from
 * two sources. What every driver would otherwise repeat lives here: the path
 * rule (14000002), argument checks, the sorting of listings and the memory of
 * "the cloud is full" behind cloud_is_full().
 */
#include "cloud_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"

struct cloud_driver {
	const cloud_ops_t *ops;
	void *impl;
	bool full;   /* the last call that could tell said "the cloud is full" */
};

/* ---- helpers shared by the drivers (cloud_ops.h) ----------------------- */

int
cloud_entry_vec_add(cloud_entry_vec_t *vec, const char *path, bool is_dir, uint64_t size, int64_t mtime_ms,
    const char *etag, ohb_error_t *err)
{
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 32;
		cloud_entry_t *v = realloc(vec->v, cap * sizeof *v);
		if (!v)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory listing the cloud");
		vec->v = v;
		vec->cap = cap;
	}
	cloud_entry_t *e = &vec->v[vec->n];
	memset(e, 0, sizeof *e);
	e->path = strdup(path);
	if (!e->path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory listing the cloud");
	e->is_dir = is_dir;
	e->size = size;
	e->mtime_ms = mtime_ms;
	snprintf(e->etag, sizeof e->etag, "%s", etag ? etag : "");
	vec->n++;
	return OHB_OK;
}

char *
cloud_temp_path(const char *path, uint64_t n)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	int dirlen = slash ? (int)(slash - path) : 0;
	return fsu_printf("%.*s%s.%.200s.ohbtmp.%ld.%llu", dirlen, path, slash ? "/" : "", name, (long)getpid(),
	    (unsigned long long)n);
}

bool
cloud_is_temp_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	if (name[0] != '.')
		return false;
	const char *t = strstr(name, ".ohbtmp.");
	if (!t)
		return false;
	/* the last match: a name may itself contain ".ohbtmp." */
	for (const char *next; (next = strstr(t + 1, ".ohbtmp.")) != NULL;)
		t = next;
	int dots = 0;
	for (const char *p = t + 8; *p; p++) {
		if (*p == '.')
			dots++;
		else if (*p < '0' || *p > '9')
			return false;
	}
	return dots == 1;
}

uint64_t
cloud_temp_seed(const void *salt)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)salt;
	}
	return v >> 16;   /* room to count up without wrapping */
}

bool
cloud_xfer_cancelled(const cloud_transfer_t *t)
{
	return t && t->cancelled && t->cancelled(t->ctx);
}

void
cloud_xfer_progress(const cloud_transfer_t *t, uint64_t done, uint64_t total)
{
	if (t && t->progress)
		t->progress(t->ctx, done, total);
}

/* ---- the public interface ------------------------------------------------ */

bool
cloud_path_is_valid(const char *path)
{
	if (!path || !*path || path[0] == '/' || strlen(path) > 4000)
		return false;
	const char *p = path;
	for (;;) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || len > 255)
			return false;   /* "a//b", a trailing '/', an over-long name */
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (!end)
			return true;
		p = end + 1;
	}
}

static bool
has_prefix_ci(const char *s, const char *prefix)
{
	return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int
cloud_driver_open(const char *url, const char *user, const char *password, cloud_driver_t **out, ohb_error_t *err)
{
	if (!out)
		return ohb_fail(err, OHB_E_PARAM, "cloud_driver_open needs somewhere to put the driver");
	*out = NULL;
	if (!url || !*url)
		return ohb_fail(err, CLOUD_E_NOT_READY, "no cloud is configured (the cloud URL is empty)");
	const cloud_ops_t *ops;
	if (has_prefix_ci(url, "http://") || has_prefix_ci(url, "https://"))
		ops = &cloud_webdav_ops;
	else if (has_prefix_ci(url, "file://") || url[0] == '/')
		ops = &cloud_dir_ops;
	else
		return ohb_fail(err, CLOUD_E_NOT_READY,
		    "the cloud URL %s is not understood (use http://, https://, file:// or an absolute path)", url);
	cloud_driver_t *d = calloc(1, sizeof *d);
	if (!d)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory opening the cloud %s", url);
	d->ops = ops;
	int rc = ops->open(url, user, password, &d->impl, err);
	if (rc != OHB_OK) {
		free(d);
		return rc;
	}
	*out = d;
	return OHB_OK;
}

void
cloud_driver_close(cloud_driver_t *d)
{
	if (!d)
		return;
	d->ops->close(d->impl);
	free(d);
}

const char *
cloud_driver_kind(const cloud_driver_t *d)
{
	return d ? d->ops->kind : "";
}

bool
cloud_is_full(const cloud_driver_t *d)
{
	return d && d->full;
}

/* Every call ends here: remember "full" for cloud_is_full. A successful put
 * proves there is room again. */
static int
note(cloud_driver_t *d, int rc, bool was_put)
{
	if (rc == CLOUD_E_LIMIT)
		d->full = true;
	else if (rc == OHB_OK && was_put)
		d->full = false;
	return rc;
}

static int
check_path(const char *what, const char *path, ohb_error_t *err)
{
	if (cloud_path_is_valid(path))
		return OHB_OK;
	return ohb_fail(err, CLOUD_E_URI,
	    "%s: the cloud path \"%s\" is invalid (relative, '/'-separated, without \".\" or \"..\")", what,
	    path ? path : "(null)");
}

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const cloud_entry_t *)a)->path, ((const cloud_entry_t *)b)->path);
}

int
cloud_list(cloud_driver_t *d, const char *dir, cloud_entry_t **out, size_t *n, ohb_error_t *err)
{
	if (!d || !out || !n)
		return ohb_fail(err, OHB_E_PARAM, "cloud_list needs a driver and result pointers");
	*out = NULL;
	*n = 0;
	if (!dir)
		dir = "";
	if (*dir) {
		int rc = check_path("list", dir, err);
		if (rc != OHB_OK)
			return rc;
	}
	int rc = note(d, d->ops->list(d->impl, dir, out, n, err), false);
	if (rc == OHB_OK && *n > 1)
		qsort(*out, *n, sizeof **out, entry_cmp);
	return rc;
}

void
cloud_entries_free(cloud_entry_t *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

int
cloud_stat(cloud_driver_t *d, const char *path, cloud_entry_t *out, ohb_error_t *err)
{
	if (!d || !out)
		return ohb_fail(err, OHB_E_PARAM, "cloud_stat needs a driver and a result");
	memset(out, 0, sizeof *out);
	int rc = check_path("stat", path, err);
	if (rc != OHB_OK)
		return rc;
	return note(d, d->ops->stat(d->impl, path, out, err), false);
}

int
cloud_get(cloud_driver_t *d, const char *path, uint64_t offset, int out_fd, const cloud_transfer_t *t,
    ohb_error_t *err)
{
	if (!d || out_fd < 0)
		return ohb_fail(err, OHB_E_PARAM, "cloud_get needs a driver and an open file");
	int rc = check_path("get", path, err);
	if (rc != OHB_OK)
		return rc;
	return note(d, d->ops->get(d->impl, path, offset, out_fd, t, err), false);
}

int
cloud_put(cloud_driver_t *d, const char *path, int in_fd, uint64_t size, const cloud_transfer_t *t,
    cloud_entry_t *out, ohb_error_t *err)
{
	if (!d || in_fd < 0)
		return ohb_fail(err, OHB_E_PARAM, "cloud_put needs a driver and an open file");
	if (out)
		memset(out, 0, sizeof *out);
	int rc = check_path("put", path, err);
	if (rc != OHB_OK)
		return rc;
	return note(d, d->ops->put(d->impl, path, in_fd, size, t, out, err), true);
}

int
cloud_remove(cloud_driver_t *d, const char *path, ohb_error_t *err)
{
	if (!d)
		return ohb_fail(err, OHB_E_PARAM, "cloud_remove needs a driver");
	int rc = check_path("remove", path, err);
	if (rc != OHB_OK)
		return rc;
	return note(d, d->ops->remove(d->impl, path, err), false);
}

int
cloud_move(cloud_driver_t *d, const char *from, const char *to, ohb_error_t *err)
{
	if (!d)
		return ohb_fail(err, OHB_E_PARAM, "cloud_move needs a driver");
	int rc = check_path("move", from, err);
	if (rc == OHB_OK)
		rc = check_path("move", to, err);
	if (rc != OHB_OK)
		return rc;
	return note(d, d->ops->move(d->impl, from, to, err), false);
}
