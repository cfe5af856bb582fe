/*
 * cloud_sync — the device-cloud sync engine of @ohos.file.cloudSync
 * (ohbackup_cloud.h): GallerySync, Download and getFileSyncState over the
 * media library <root>/media and a cloud reached through cloud_driver.h.
 *
 * A gallery sync run (one at a time, on the engine's sync thread) follows
 * REFERENCE.md "cloudSync": a download stage, then an upload stage. Each file
 * is compared with its "base" in the state store (cloud_state.h: what the last
 * successful sync of that file saw):
 *
 *   cloud only, or changed in the cloud only      -> download
 *   local only, or changed locally only           -> upload
 *   changed on both sides (or new on both sides
 *   with different bytes)                         -> conflict: the cloud's
 *       version is downloaded beside the local one as
 *       "<name> (cloud conflict <UTC time>).<ext>", then both are uploaded.
 *
 * Nothing is deleted on either side: a file removed on one side comes back
 * from the other (docs/CLOUD.md). Errors accumulate: the run goes on with the
 * next file, except after "network unavailable", which ends it; the run ends
 * DOWNLOAD_FAILED or UPLOAD_FAILED with the first error, else COMPLETED, or
 * STOPPED after stop().
 *
 * Downloads write "<target>.temp.download" in the target's folder, fsync and
 * rename; a stopped or failed one deletes that file. Just before the rename
 * the target is looked at again: a file that changed locally meanwhile is
 * never overwritten (the download becomes a conflict copy). The media folder
 * is walked with openat(O_NOFOLLOW): symlinks there are never followed,
 * listed or synced.
 *
 * Threads: callers, the sync thread, one thread per Download, and the
 * dispatcher, which alone calls the application's callbacks, one event at a
 * time and with no lock held (the pattern of session.c). `lock` guards
 * everything in ohb_cloud_t below it; `save_lock` orders writes of the state
 * file (taken before `lock`, never while holding it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cloud_driver.h"
#include "cloud_state.h"
#include "errors.h"
#include "fsutil.h"
#include "ohbackup_cloud.h"

#define MEDIA_PREFIX "media/"
#define TEMP_SUFFIX ".temp.download"
#define MAX_BATCH 100
#define MAX_DEPTH 64
#define SAVE_INTERVAL_MS 1000

typedef enum { EV_SYNC, EV_DOWNLOAD } ev_kind_t;

typedef struct event {
	struct event *next;
	ev_kind_t kind;
	int state;
	int error;
	int code;
	char *message;
	uint64_t processed, size;
	char *uri;
} event_t;

/* A path being transferred right now, for getFileSyncState. */
typedef struct active {
	struct active *next;
	char *path;
	int state;   /* OHB_CLOUD_FILE_UPLOADING or _DOWNLOADING */
} active_t;

typedef struct download {
	struct download *next;
	ohb_cloud_t *c;
	char *rel;
	char *uri;
	cloud_entry_t entry;     /* the cloud's file as start() saw it */
	bool stop;
	bool finished;
	pthread_t thread;
} download_t;

struct ohb_cloud {
	char *root, *media, *state_dir, *url, *user, *password;
	uint64_t rate_limit;
	pthread_mutex_t save_lock;
	pthread_mutex_t lock;
	pthread_cond_t cond;          /* any change of the fields below */
	cst_t *store;
	int64_t last_save_ms;
	ohb_cloud_sync_cb_t sync_cb;
	void *sync_user;
	ohb_cloud_download_cb_t dl_cb;
	void *dl_user;
	event_t *head, *tail;
	bool delivering;
	bool dispatcher_stop;
	pthread_t dispatcher;
	bool sync_running;            /* a run is going (its thread may still need a join) */
	bool sync_joinable;
	bool sync_stop;
	pthread_t sync_thread;
	download_t *downloads;
	active_t *active;
};

/* A transfer's context for the driver's progress and cancel hooks. */
typedef struct xfer {
	ohb_cloud_t *c;
	bool *stop;                   /* read under c->lock */
	download_t *dl;               /* progress events for Download, or NULL */
	int64_t start_ms;             /* of the current file's transfer */
	uint64_t last_done;
} xfer_t;

/* ---- names --------------------------------------------------------------------- */

const char *
ohb_cloud_sync_state_name(ohb_cloud_sync_state_t s)
{
	static const char *const n[] = {"UPLOADING", "UPLOAD_FAILED", "DOWNLOADING", "DOWNLOAD_FAILED", "COMPLETED",
	    "STOPPED"};
	return (unsigned)s < 6 ? n[s] : "UNKNOWN";
}

const char *
ohb_cloud_error_type_name(ohb_cloud_error_type_t e)
{
	static const char *const n[] = {"NO_ERROR", "NETWORK_UNAVAILABLE", "WIFI_UNAVAILABLE", "BATTERY_LEVEL_LOW",
	    "BATTERY_LEVEL_WARNING", "CLOUD_STORAGE_FULL", "LOCAL_STORAGE_FULL", "DEVICE_TEMPERATURE_TOO_HIGH"};
	return (unsigned)e < 8 ? n[e] : "UNKNOWN";
}

const char *
ohb_cloud_download_state_name(ohb_cloud_download_state_t s)
{
	static const char *const n[] = {"RUNNING", "COMPLETED", "FAILED", "STOPPED"};
	return (unsigned)s < 4 ? n[s] : "UNKNOWN";
}

const char *
ohb_cloud_download_error_name(ohb_cloud_download_error_t e)
{
	static const char *const n[] = {"NO_ERROR", "UNKNOWN_ERROR", "NETWORK_UNAVAILABLE", "LOCAL_STORAGE_FULL",
	    "CONTENT_NOT_FOUND", "FREQUENT_USER_REQUESTS"};
	return (unsigned)e < 6 ? n[e] : "UNKNOWN";
}

const char *
ohb_cloud_file_sync_state_name(ohb_cloud_file_sync_state_t s)
{
	static const char *const n[] = {"UPLOADING", "DOWNLOADING", "COMPLETED", "STOPPED", "TO_BE_UPLOADED",
	    "UPLOAD_SUCCESS", "UPLOAD_FAILURE"};
	return (unsigned)s < 7 ? n[s] : "UNKNOWN";
}

static ohb_cloud_error_type_t
sync_error_type(int code)
{
	switch (code) {
	case CLOUD_E_NETWORK:
		return OHB_CLOUD_ERR_NETWORK_UNAVAILABLE;
	case CLOUD_E_LIMIT:
		return OHB_CLOUD_ERR_CLOUD_STORAGE_FULL;
	case OHB_E_NOSPC:
		return OHB_CLOUD_ERR_LOCAL_STORAGE_FULL;
	default:
		return OHB_CLOUD_ERR_NO_ERROR;   /* ErrorType has no value for it; SyncProgress.code tells */
	}
}

static ohb_cloud_download_error_t
download_error_type(int code)
{
	switch (code) {
	case CLOUD_E_NETWORK:
		return OHB_CLOUD_DLERR_NETWORK_UNAVAILABLE;
	case OHB_E_NOSPC:
		return OHB_CLOUD_DLERR_LOCAL_STORAGE_FULL;
	case OHB_E_NOENT:
		return OHB_CLOUD_DLERR_CONTENT_NOT_FOUND;
	default:
		return OHB_CLOUD_DLERR_UNKNOWN_ERROR;
	}
}

/* ---- uris ---------------------------------------------------------------------- */

static int
hexdigit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* "file://media/<rel>" or "file:///media/<rel>" -> malloc'd rel (decoded). */
static int
uri_to_rel(const char *uri, char **rel, ohb_error_t *err)
{
	*rel = NULL;
	if (!uri)
		return ohb_fail(err, OHB_E_PARAM, "a uri is required");
	const char *p;
	if (strncmp(uri, "file://media/", 13) == 0)
		p = uri + 13;
	else if (strncmp(uri, "file:///media/", 14) == 0)
		p = uri + 14;
	else
		return ohb_fail(err, CLOUD_E_URI, "invalid uri \"%.200s\": not a file://media/ uri of the media library",
		    uri);
	size_t n = strlen(p);
	if (n == 0 || n > 4096)
		return ohb_fail(err, CLOUD_E_URI, "invalid uri \"%.200s\": no file path, or one too long", uri);
	char *out = malloc(n + 1);
	if (!out)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '%') {
			int hi = hexdigit(p[i + 1]);   /* p[i + 1] is at worst the NUL */
			int lo = hi < 0 ? -1 : hexdigit(p[i + 2]);
			if (hi < 0 || lo < 0 || (hi | lo) == 0) {
				free(out);
				return ohb_fail(err, CLOUD_E_URI, "invalid uri \"%.200s\": a bad %% escape", uri);
			}
			out[w++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (p[i] == '?' || p[i] == '#') {
			break;   /* a query or fragment names no other file */
		} else {
			out[w++] = p[i];
		}
	}
	out[w] = '\0';
	if (!cloud_path_is_valid(out) || out[w - 1] == '/') {
		free(out);
		return ohb_fail(err, CLOUD_E_URI, "invalid uri \"%.200s\": the path leaves the media folder or is malformed",
		    uri);
	}
	*rel = out;
	return OHB_OK;
}

/* ---- the media folder, never following a symlink ---------------------------------- */

/* Opens the folder holding rel below c->media (creating folders when
 * `create`); *leaf points into rel. */
static int
media_parent(const ohb_cloud_t *c, const char *rel, bool create, int *pfd, const char **leaf, ohb_error_t *err)
{
	int cur = open(c->media, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cur < 0)
		return ohb_fail_errno(err, errno, "cannot open the media folder %s", c->media);
	const char *p = rel;
	const char *slash;
	while ((slash = strchr(p, '/')) != NULL) {
		char comp[256];
		if ((size_t)(slash - p) >= sizeof comp) {
			close(cur);
			return ohb_fail(err, OHB_E_INVAL, "a folder name in %s is too long", rel);
		}
		snprintf(comp, sizeof comp, "%.*s", (int)(slash - p), p);
		int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, comp, 0755) != 0 && errno != EEXIST) {
				int e = errno;
				close(cur);
				return ohb_fail_errno(err, e, "cannot create the media folder %.*s", (int)(slash - rel), rel);
			}
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int e = errno;
			close(cur);
			if (e == ELOOP)
				e = ENOENT;   /* a symlink is not a folder of the library */
			return ohb_fail_errno(err, e, "cannot open the media folder %.*s", (int)(slash - rel), rel);
		}
		close(cur);
		cur = next;
		p = slash + 1;
	}
	*pfd = cur;
	*leaf = p;
	return OHB_OK;
}

/* lstat of a media file: true with *st when rel is a regular file. */
static bool
media_stat(const ohb_cloud_t *c, const char *rel, struct stat *st)
{
	int pfd;
	const char *leaf;
	if (media_parent(c, rel, false, &pfd, &leaf, NULL) != OHB_OK)
		return false;
	bool ok = fstatat(pfd, leaf, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st->st_mode);
	close(pfd);
	return ok;
}

static int64_t
mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

typedef struct local_file {
	char *path;
	uint64_t size;
	int64_t mtime_ns;
} local_file_t;

typedef struct local_vec {
	local_file_t *v;
	size_t n, cap;
} local_vec_t;

static void
local_vec_free(local_vec_t *lv)
{
	for (size_t i = 0; i < lv->n; i++)
		free(lv->v[i].path);
	free(lv->v);
	memset(lv, 0, sizeof *lv);
}

static int
local_cmp(const void *a, const void *b)
{
	return strcmp(((const local_file_t *)a)->path, ((const local_file_t *)b)->path);
}

/* Every regular file below the open folder dfd (taken over), named prefix/name. */
static int
scan_rec(int dfd, const char *prefix, int depth, local_vec_t *lv, ohb_error_t *err)
{
	if (depth > MAX_DEPTH) {
		close(dfd);
		return ohb_fail(err, OHB_E_INVAL, "the media folder %s is nested too deeply", prefix);
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return ohb_fail_errno(err, e, "cannot list the media folder %s", *prefix ? prefix : "/");
	}
	int rc = OHB_OK;
	struct dirent *de;
	while (rc == OHB_OK && (de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || has_suffix(name, TEMP_SUFFIX))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue;   /* symlinks and special files are not media */
		char *rel = *prefix ? fsu_printf("%s/%s", prefix, name) : strdup(name);
		if (!rel) {
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory scanning the media folder");
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			int cfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd >= 0)
				rc = scan_rec(cfd, rel, depth + 1, lv, err);
			free(rel);
			continue;
		}
		if (lv->n == lv->cap) {
			size_t ncap = lv->cap ? lv->cap * 2 : 64;
			local_file_t *nv = realloc(lv->v, ncap * sizeof *nv);
			if (!nv) {
				free(rel);
				rc = ohb_fail(err, OHB_E_NOMEM, "out of memory scanning the media folder");
				break;
			}
			lv->v = nv;
			lv->cap = ncap;
		}
		lv->v[lv->n++] = (local_file_t){rel, (uint64_t)st.st_size, mtime_ns(&st)};
	}
	closedir(d);
	return rc;
}

static int
scan_media(const ohb_cloud_t *c, local_vec_t *lv, ohb_error_t *err)
{
	memset(lv, 0, sizeof *lv);
	int dfd = open(c->media, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return ohb_fail_errno(err, errno, "cannot open the media folder %s", c->media);
	int rc = scan_rec(dfd, "", 0, lv, err);
	if (rc != OHB_OK) {
		local_vec_free(lv);
		return rc;
	}
	if (lv->n > 1)
		qsort(lv->v, lv->n, sizeof *lv->v, local_cmp);
	return OHB_OK;
}

static const local_file_t *
local_find(const local_vec_t *lv, const char *path)
{
	local_file_t key = {(char *)path, 0, 0};
	return lv->n ? bsearch(&key, lv->v, lv->n, sizeof *lv->v, local_cmp) : NULL;
}

/* ---- events and the dispatcher ----------------------------------------------------- */

static void
event_free(event_t *ev)
{
	free(ev->message);
	free(ev->uri);
	free(ev);
}

/* Queues an event (c->lock held). A RUNNING download event replaces a queued
 * RUNNING event of the same uri that was not delivered yet, so a slow
 * listener sees fresh numbers rather than a backlog. */
static void
push_locked(ohb_cloud_t *c, ev_kind_t kind, int state, int error, int code, const char *message, const char *uri,
    uint64_t processed, uint64_t size)
{
	if (kind == EV_DOWNLOAD && state == OHB_CLOUD_DL_RUNNING && c->tail && c->tail->kind == EV_DOWNLOAD &&
	    c->tail->state == OHB_CLOUD_DL_RUNNING && strcmp(c->tail->uri, uri) == 0) {
		c->tail->processed = processed;
		c->tail->size = size;
		return;
	}
	event_t *ev = calloc(1, sizeof *ev);
	if (!ev)
		return;   /* out of memory: the event is lost, the engine goes on */
	ev->kind = kind;
	ev->state = state;
	ev->error = error;
	ev->code = code;
	ev->message = strdup(message ? message : "");
	ev->uri = uri ? strdup(uri) : NULL;
	ev->processed = processed;
	ev->size = size;
	if (!ev->message || (uri && !ev->uri)) {
		event_free(ev);
		return;
	}
	if (c->tail)
		c->tail->next = ev;
	else
		c->head = ev;
	c->tail = ev;
	pthread_cond_broadcast(&c->cond);
}

static void *
dispatcher_main(void *arg)
{
	ohb_cloud_t *c = arg;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (!c->head) {
			if (c->dispatcher_stop)
				break;
			pthread_cond_wait(&c->cond, &c->lock);
			continue;
		}
		event_t *ev = c->head;
		c->head = ev->next;
		if (!c->head)
			c->tail = NULL;
		ohb_cloud_sync_cb_t scb = c->sync_cb;
		void *suser = c->sync_user;
		ohb_cloud_download_cb_t dcb = c->dl_cb;
		void *duser = c->dl_user;
		c->delivering = true;
		pthread_mutex_unlock(&c->lock);
		if (ev->kind == EV_SYNC && scb) {
			ohb_cloud_sync_progress_t pg = {(ohb_cloud_sync_state_t)ev->state, (ohb_cloud_error_type_t)ev->error,
			    ev->code, ev->message};
			scb(suser, &pg);
		} else if (ev->kind == EV_DOWNLOAD && dcb) {
			ohb_cloud_download_progress_t pg = {(ohb_cloud_download_state_t)ev->state, ev->processed, ev->size,
			    ev->uri, (ohb_cloud_download_error_t)ev->error};
			dcb(duser, &pg);
		}
		event_free(ev);
		pthread_mutex_lock(&c->lock);
		c->delivering = false;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- state store and active transfers (c->lock held unless said) -------------------- */

static void
active_set_locked(ohb_cloud_t *c, const char *path, int state)
{
	for (active_t *a = c->active; a; a = a->next) {
		if (strcmp(a->path, path) == 0) {
			a->state = state;
			return;
		}
	}
	active_t *a = calloc(1, sizeof *a);
	if (!a || !(a->path = strdup(path))) {
		free(a);
		return;
	}
	a->state = state;
	a->next = c->active;
	c->active = a;
}

static void
active_clear_locked(ohb_cloud_t *c, const char *path)
{
	for (active_t **pp = &c->active; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->path, path) == 0) {
			active_t *a = *pp;
			*pp = a->next;
			free(a->path);
			free(a);
			return;
		}
	}
}

static const active_t *
active_find_locked(const ohb_cloud_t *c, const char *path)
{
	for (const active_t *a = c->active; a; a = a->next)
		if (strcmp(a->path, path) == 0)
			return a;
	return NULL;
}

/* Writes the state file now (force) or when the last write is a second old. */
static void
save_store(ohb_cloud_t *c, bool force)
{
	pthread_mutex_lock(&c->save_lock);
	pthread_mutex_lock(&c->lock);
	int64_t now = fsu_mono_ms();
	char *text = NULL;
	size_t len = 0;
	bool go = force || now - c->last_save_ms >= SAVE_INTERVAL_MS;
	if (go && cst_serialize(c->store, &text, &len, NULL) == OHB_OK)
		c->last_save_ms = now;
	pthread_mutex_unlock(&c->lock);
	if (text)
		cst_write(c->state_dir, text, len, NULL);   /* a failed write costs a re-compare next run, no data */
	free(text);
	pthread_mutex_unlock(&c->save_lock);
}

/* Records a file as a sync left it: base = the local stat and the cloud etag. */
static void
record_synced(ohb_cloud_t *c, const char *rel, int state, const struct stat *st, const char *etag)
{
	cst_rec_t r = {0};
	r.path = (char *)rel;
	r.state = state;
	r.has_base = true;
	r.lsize = (uint64_t)st->st_size;
	r.lmtime_ns = mtime_ns(st);
	snprintf(r.etag, sizeof r.etag, "%s", etag);
	pthread_mutex_lock(&c->lock);
	cst_put(c->store, &r, NULL);
	pthread_mutex_unlock(&c->lock);
}

static void
record_state(ohb_cloud_t *c, const char *rel, int state)
{
	pthread_mutex_lock(&c->lock);
	cst_set_state(c->store, rel, state, NULL);
	pthread_mutex_unlock(&c->lock);
}

/* A copy of the base record of rel; false when there is none. */
static bool
base_of(ohb_cloud_t *c, const char *rel, cst_rec_t *out)
{
	pthread_mutex_lock(&c->lock);
	const cst_rec_t *r = cst_find(c->store, rel);
	if (r)
		*out = *r;
	pthread_mutex_unlock(&c->lock);
	return r != NULL;
}

/* ---- transfers ------------------------------------------------------------------- */

static bool
xfer_cancelled(void *ctx)
{
	xfer_t *x = ctx;
	pthread_mutex_lock(&x->c->lock);
	bool stop = *x->stop;
	pthread_mutex_unlock(&x->c->lock);
	return stop;
}

/* Progress of a transfer: a Download event, and the bandwidth cap (a sleep
 * in slices of at most 50 ms, so cancel stays prompt). */
static void
xfer_progress(void *ctx, uint64_t done, uint64_t total)
{
	xfer_t *x = ctx;
	ohb_cloud_t *c = x->c;
	if (x->dl && done != x->last_done) {
		pthread_mutex_lock(&c->lock);
		push_locked(c, EV_DOWNLOAD, OHB_CLOUD_DL_RUNNING, 0, 0, NULL, x->dl->uri, done, total);
		pthread_mutex_unlock(&c->lock);
	}
	x->last_done = done;
	if (c->rate_limit == 0)
		return;
	int64_t due = x->start_ms + (int64_t)(done * 1000 / c->rate_limit);
	for (int64_t now = fsu_mono_ms(); now < due && !xfer_cancelled(x); now = fsu_mono_ms()) {
		int64_t ms = due - now < 50 ? due - now : 50;
		struct timespec ts = {0, (long)ms * 1000000L};
		nanosleep(&ts, NULL);
	}
}

static char *
cloud_path_of(const char *rel)
{
	return fsu_printf(MEDIA_PREFIX "%s", rel);
}

/* "<stem> (cloud conflict 20240101-120000).<ext>" beside leaf, not yet taken. */
static char *
conflict_name(int pfd, const char *leaf, int64_t when_ms)
{
	time_t t = (time_t)(when_ms > 0 ? when_ms / 1000 : time(NULL));
	struct tm tm;
	gmtime_r(&t, &tm);
	char stamp[32];
	strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
	const char *dot = strrchr(leaf, '.');
	if (dot == leaf)
		dot = NULL;   /* ".hidden" has no extension */
	int stem = dot ? (int)(dot - leaf) : (int)strlen(leaf);
	for (int k = 1; k < 1000; k++) {
		char extra[16] = "";
		if (k > 1)
			snprintf(extra, sizeof extra, " %d", k);
		char *name = fsu_printf("%.*s (cloud conflict %s%s)%s", stem, leaf, stamp, extra, dot ? dot : "");
		if (!name)
			return NULL;
		struct stat st;
		if (strlen(name) < 256 && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
			return name;
		free(name);
	}
	return NULL;
}

/* True when the open files a and b hold the same bytes. */
static bool
same_bytes(int a, int b)
{
	char ba[65536], bb[65536];
	off_t off = 0;
	for (;;) {
		ssize_t na = pread(a, ba, sizeof ba, off);
		ssize_t nb = pread(b, bb, sizeof bb, off);
		if (na < 0 || nb < 0 || na != nb)
			return false;
		if (na == 0)
			return true;
		if (memcmp(ba, bb, (size_t)na) != 0)
			return false;
		off += na;
	}
}

typedef enum { PLACE_OVERWRITE, PLACE_CONFLICT, PLACE_SAME } place_t;

/*
 * Downloads the cloud's rel into the media folder. `expect` is the local file
 * the caller decided on (NULL: there was none) and `want_conflict` says the
 * caller already knows both sides changed. The bytes go to
 * "<leaf>.temp.download"; then, looking at the target again:
 *   - no local file, or the local file is still `expect` and no conflict:
 *     rename over it (PLACE_OVERWRITE);
 *   - otherwise, same bytes as the local file: drop the temp (PLACE_SAME);
 *   - else rename to a conflict name (PLACE_CONFLICT).
 * *st receives the stat of the local file that now matches the cloud's
 * version under rel's name (valid for OVERWRITE and SAME).
 * Returns 0, CLOUD_CANCELLED or an error; the temp file never survives.
 */
static int
fetch(ohb_cloud_t *c, cloud_driver_t *d, const char *rel, const cloud_entry_t *ce, const local_file_t *expect,
    bool want_conflict, xfer_t *x, place_t *placed, struct stat *st, ohb_error_t *err)
{
	int pfd;
	const char *leaf;
	int rc = media_parent(c, rel, true, &pfd, &leaf, err);
	if (rc != OHB_OK)
		return rc;
	char *tmp = fsu_printf("%s" TEMP_SUFFIX, leaf);
	char *cpath = cloud_path_of(rel);
	if (!tmp || !cpath) {
		free(tmp);
		free(cpath);
		close(pfd);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	unlinkat(pfd, tmp, 0);
	x->start_ms = fsu_mono_ms();
	x->last_done = 0;
	int fd = openat(pfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = ohb_fail_errno(err, errno, "cannot create %s" TEMP_SUFFIX " in the media folder", rel);
		goto out;
	}
	cloud_transfer_t t = {x, xfer_progress, xfer_cancelled};
	rc = cloud_get(d, cpath, 0, fd, &t, err);
	if (rc == OHB_OK && fsync(fd) != 0)
		rc = ohb_fail_errno(err, errno, "cannot write %s" TEMP_SUFFIX, rel);
	if (rc == OHB_OK && ce->mtime_ms > 0) {
		struct timespec times[2] = {{0, UTIME_OMIT},
		    {(time_t)(ce->mtime_ms / 1000), (long)(ce->mtime_ms % 1000) * 1000000L}};
		futimens(fd, times);
	}
	if (rc != OHB_OK) {
		close(fd);
		unlinkat(pfd, tmp, 0);
		goto out;
	}
	struct stat now;
	bool exists = fstatat(pfd, leaf, &now, AT_SYMLINK_NOFOLLOW) == 0;
	bool unchanged = exists ? expect && S_ISREG(now.st_mode) && (uint64_t)now.st_size == expect->size &&
	                              mtime_ns(&now) == expect->mtime_ns
	                        : !expect;
	if (exists && !S_ISREG(now.st_mode)) {
		rc = ohb_fail(err, OHB_E_INVAL, "%s is not a regular file in the media folder", rel);
		close(fd);
		unlinkat(pfd, tmp, 0);
		goto out;
	}
	if (!exists || (unchanged && !want_conflict)) {
		if (renameat(pfd, tmp, pfd, leaf) != 0) {
			rc = ohb_fail_errno(err, errno, "cannot move the download of %s into place", rel);
			close(fd);
			unlinkat(pfd, tmp, 0);
			goto out;
		}
		fstat(fd, st);
		*placed = PLACE_OVERWRITE;
		close(fd);
		fsync(pfd);
		goto out;
	}
	int lfd = openat(pfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (lfd >= 0 && same_bytes(fd, lfd)) {
		fstat(lfd, st);
		close(lfd);
		close(fd);
		unlinkat(pfd, tmp, 0);
		*placed = PLACE_SAME;
		goto out;
	}
	if (lfd >= 0)
		close(lfd);
	close(fd);
	char *cname = conflict_name(pfd, leaf, ce->mtime_ms);
	if (!cname || renameat(pfd, tmp, pfd, cname) != 0) {
		rc = cname ? ohb_fail_errno(err, errno, "cannot keep the cloud's version of %s as %s", rel, cname)
		           : ohb_fail(err, OHB_E_NOMEM, "no free conflict name for %s", rel);
		unlinkat(pfd, tmp, 0);
	} else {
		fsync(pfd);
		*placed = PLACE_CONFLICT;
	}
	free(cname);
out:
	free(tmp);
	free(cpath);
	close(pfd);
	return rc;
}

/* Uploads the local rel; on success records its base (UPLOAD_SUCCESS). */
static int
push_file(ohb_cloud_t *c, cloud_driver_t *d, const char *rel, xfer_t *x, ohb_error_t *err)
{
	int pfd;
	const char *leaf;
	int rc = media_parent(c, rel, false, &pfd, &leaf, err);
	if (rc != OHB_OK)
		return rc;
	int fd = openat(pfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(pfd);
	if (fd < 0)
		return ohb_fail_errno(err, errno, "cannot open %s in the media folder", rel);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ohb_fail(err, OHB_E_INVAL, "%s is not a regular file", rel);
	}
	char *cpath = cloud_path_of(rel);
	if (!cpath) {
		close(fd);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	cloud_transfer_t t = {x, xfer_progress, xfer_cancelled};
	cloud_entry_t out = {0};
	x->start_ms = fsu_mono_ms();
	x->last_done = 0;
	rc = cloud_put(d, cpath, fd, (uint64_t)st.st_size, &t, &out, err);
	close(fd);
	if (rc == OHB_OK && !out.etag[0]) {
		cloud_entry_t again = {0};
		if (cloud_stat(d, cpath, &again, NULL) == OHB_OK)
			snprintf(out.etag, sizeof out.etag, "%s", again.etag);
		free(again.path);
	}
	free(cpath);
	if (rc == OHB_OK)
		record_synced(c, rel, OHB_CLOUD_FILE_UPLOAD_SUCCESS, &st, out.etag);
	free(out.path);
	return rc;
}

/* ---- the gallery sync run ----------------------------------------------------------- */

typedef struct run {
	ohb_cloud_t *c;
	cloud_driver_t *d;
	xfer_t x;
	int first_code;
	char first_message[512];
	int first_stage;             /* OHB_CLOUD_SYNC_DOWNLOAD_FAILED or _UPLOAD_FAILED */
	bool network_down;
} run_t;

static void
run_error(run_t *r, int stage, const ohb_error_t *e)
{
	if (!r->first_code) {
		r->first_code = e->code ? e->code : OHB_E_UNKNOWN;
		snprintf(r->first_message, sizeof r->first_message, "%s", e->message);
		r->first_stage = stage;
	}
	if (e->code == CLOUD_E_NETWORK)
		r->network_down = true;
}

static bool
run_stopping(run_t *r)
{
	return r->network_down || xfer_cancelled(&r->x);
}

/* True when the path is being downloaded by a Download (the sync leaves it). */
static bool
busy(ohb_cloud_t *c, const char *rel)
{
	pthread_mutex_lock(&c->lock);
	bool b = active_find_locked(c, rel) != NULL;
	pthread_mutex_unlock(&c->lock);
	return b;
}

static void
set_active(ohb_cloud_t *c, const char *rel, int state)
{
	pthread_mutex_lock(&c->lock);
	if (state < 0)
		active_clear_locked(c, rel);
	else
		active_set_locked(c, rel, state);
	pthread_mutex_unlock(&c->lock);
}

static void
download_stage(run_t *r, const cloud_entry_t *cv, size_t cn, const local_vec_t *lv)
{
	ohb_cloud_t *c = r->c;
	for (size_t i = 0; i < cn && !run_stopping(r); i++) {
		const cloud_entry_t *ce = &cv[i];
		if (ce->is_dir || strncmp(ce->path, MEDIA_PREFIX, strlen(MEDIA_PREFIX)) != 0)
			continue;
		const char *rel = ce->path + strlen(MEDIA_PREFIX);
		const local_file_t *lf = local_find(lv, rel);
		cst_rec_t b;
		bool has_b = base_of(c, rel, &b) && b.has_base;
		bool cloud_changed = !has_b || strcmp(b.etag, ce->etag) != 0;
		bool local_changed = lf && (!has_b || lf->size != b.lsize || lf->mtime_ns != b.lmtime_ns);
		if (!cloud_changed && lf)
			continue;   /* the cloud has what we synced; an upload, if any, is the next stage's */
		if (busy(c, rel))
			continue;
		set_active(c, rel, OHB_CLOUD_FILE_DOWNLOADING);
		place_t placed = PLACE_SAME;
		struct stat st;
		ohb_error_t e;
		/* Both sides changed since the base: a conflict. New on both sides
		 * (no base): fetch compares the bytes and keeps both only if they differ. */
		bool conflict = lf && local_changed;
		int rc = fetch(c, r->d, rel, ce, lf, conflict, &r->x, &placed, &st, &e);
		set_active(c, rel, -1);
		if (rc == CLOUD_CANCELLED) {
			record_state(c, rel, OHB_CLOUD_FILE_STOPPED);
			break;
		}
		if (rc != OHB_OK) {
			run_error(r, OHB_CLOUD_SYNC_DOWNLOAD_FAILED, &e);
			continue;
		}
		if (placed == PLACE_CONFLICT) {
			/* The local version stays under the name and is uploaded next;
			 * the base takes the cloud's etag so that upload is no conflict. */
			cst_rec_t nb = {0};
			nb.path = (char *)rel;
			nb.state = OHB_CLOUD_FILE_TO_BE_UPLOADED;
			nb.has_base = true;
			nb.lsize = UINT64_MAX;
			nb.lmtime_ns = -1;
			snprintf(nb.etag, sizeof nb.etag, "%s", ce->etag);
			pthread_mutex_lock(&c->lock);
			cst_put(c->store, &nb, NULL);
			pthread_mutex_unlock(&c->lock);
		} else {
			record_synced(c, rel, OHB_CLOUD_FILE_COMPLETED, &st, ce->etag);
		}
		save_store(c, false);
	}
}

static const cloud_entry_t *
cloud_find(const cloud_entry_t *cv, size_t cn, const char *cpath)
{
	size_t lo = 0, hi = cn;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int k = strcmp(cv[mid].path, cpath);
		if (k == 0)
			return &cv[mid];
		if (k < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void
upload_stage(run_t *r, const cloud_entry_t *cv, size_t cn)
{
	ohb_cloud_t *c = r->c;
	local_vec_t lv;
	ohb_error_t e;
	if (scan_media(c, &lv, &e) != OHB_OK) {
		run_error(r, OHB_CLOUD_SYNC_UPLOAD_FAILED, &e);
		return;
	}
	for (size_t i = 0; i < lv.n && !run_stopping(r); i++) {
		const local_file_t *lf = &lv.v[i];
		cst_rec_t b;
		bool has_b = base_of(c, lf->path, &b) && b.has_base;
		char *cpath = cloud_path_of(lf->path);
		const cloud_entry_t *ce = cpath ? cloud_find(cv, cn, cpath) : NULL;
		free(cpath);
		bool in_cloud = ce && !ce->is_dir;
		if (has_b && in_cloud && lf->size == b.lsize && lf->mtime_ns == b.lmtime_ns)
			continue;   /* unchanged since the last sync */
		if (in_cloud && !has_b)
			continue;   /* the download stage met it and could not settle it: no blind overwrite */
		if (busy(c, lf->path))
			continue;
		set_active(c, lf->path, OHB_CLOUD_FILE_UPLOADING);
		int rc = push_file(c, r->d, lf->path, &r->x, &e);
		set_active(c, lf->path, -1);
		if (rc == CLOUD_CANCELLED) {
			record_state(c, lf->path, OHB_CLOUD_FILE_STOPPED);
			break;
		}
		if (rc != OHB_OK) {
			record_state(c, lf->path, OHB_CLOUD_FILE_UPLOAD_FAILURE);
			run_error(r, OHB_CLOUD_SYNC_UPLOAD_FAILED, &e);
		}
		save_store(c, false);
	}
	local_vec_free(&lv);
}

static void *
sync_main(void *arg)
{
	ohb_cloud_t *c = arg;
	run_t r = {0};
	r.c = c;
	r.x.c = c;
	r.x.stop = &c->sync_stop;
	r.x.start_ms = fsu_mono_ms();
	ohb_error_t e;

	pthread_mutex_lock(&c->lock);
	push_locked(c, EV_SYNC, OHB_CLOUD_SYNC_DOWNLOADING, 0, 0, NULL, NULL, 0, 0);
	pthread_mutex_unlock(&c->lock);

	cloud_entry_t *cv = NULL;
	size_t cn = 0;
	local_vec_t lv = {0};
	if (cloud_driver_open(c->url, c->user, c->password, &r.d, &e) != OHB_OK ||
	    cloud_list(r.d, "media", &cv, &cn, &e) != OHB_OK || scan_media(c, &lv, &e) != OHB_OK) {
		run_error(&r, OHB_CLOUD_SYNC_DOWNLOAD_FAILED, &e);
	} else {
		download_stage(&r, cv, cn, &lv);
		if (!run_stopping(&r)) {
			pthread_mutex_lock(&c->lock);
			push_locked(c, EV_SYNC, OHB_CLOUD_SYNC_UPLOADING, 0, 0, NULL, NULL, 0, 0);
			pthread_mutex_unlock(&c->lock);
			upload_stage(&r, cv, cn);
		}
	}
	local_vec_free(&lv);
	cloud_entries_free(cv, cn);
	cloud_driver_close(r.d);
	save_store(c, true);

	pthread_mutex_lock(&c->lock);
	if (c->sync_stop)
		push_locked(c, EV_SYNC, OHB_CLOUD_SYNC_STOPPED, 0, 0, NULL, NULL, 0, 0);
	else if (r.first_code)
		push_locked(c, EV_SYNC, r.first_stage, sync_error_type(r.first_code), r.first_code, r.first_message, NULL,
		    0, 0);
	else
		push_locked(c, EV_SYNC, OHB_CLOUD_SYNC_COMPLETED, 0, 0, NULL, NULL, 0, 0);
	c->sync_running = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- Download ------------------------------------------------------------------- */

static void *
download_main(void *arg)
{
	download_t *dl = arg;
	ohb_cloud_t *c = dl->c;
	xfer_t x = {c, &dl->stop, dl, fsu_mono_ms(), 0};
	ohb_error_t e = {0};
	cloud_driver_t *d = NULL;
	place_t placed = PLACE_SAME;
	struct stat st;
	int rc = cloud_driver_open(c->url, c->user, c->password, &d, &e);
	if (rc == OHB_OK) {
		/* The local file, if any, is overwritten only when it is what the
		 * last sync left; otherwise the download becomes a conflict copy. */
		struct stat lst;
		local_file_t lf = {dl->rel, 0, 0};
		const local_file_t *expect = NULL;
		bool conflict = false;
		if (media_stat(c, dl->rel, &lst)) {
			lf.size = (uint64_t)lst.st_size;
			lf.mtime_ns = mtime_ns(&lst);
			expect = &lf;
			cst_rec_t b;
			conflict = !(base_of(c, dl->rel, &b) && b.has_base && b.lsize == lf.size && b.lmtime_ns == lf.mtime_ns);
		}
		rc = fetch(c, d, dl->rel, &dl->entry, expect, conflict, &x, &placed, &st, &e);
	}
	cloud_driver_close(d);
	if (rc == OHB_OK && placed != PLACE_CONFLICT)
		record_synced(c, dl->rel, OHB_CLOUD_FILE_COMPLETED, &st, dl->entry.etag);
	else if (rc == CLOUD_CANCELLED)
		record_state(c, dl->rel, OHB_CLOUD_FILE_STOPPED);
	save_store(c, true);

	pthread_mutex_lock(&c->lock);
	active_clear_locked(c, dl->rel);
	if (rc == OHB_OK)
		push_locked(c, EV_DOWNLOAD, OHB_CLOUD_DL_COMPLETED, 0, 0, NULL, dl->uri, dl->entry.size, dl->entry.size);
	else if (rc == CLOUD_CANCELLED)
		push_locked(c, EV_DOWNLOAD, OHB_CLOUD_DL_STOPPED, 0, 0, NULL, dl->uri, x.last_done, dl->entry.size);
	else
		push_locked(c, EV_DOWNLOAD, OHB_CLOUD_DL_FAILED, download_error_type(e.code), e.code, e.message, dl->uri,
		    x.last_done, dl->entry.size);
	dl->finished = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static void
download_free(download_t *dl)
{
	free(dl->rel);
	free(dl->uri);
	free(dl->entry.path);
	free(dl);
}

/* Joins and frees the finished downloads (not called with c->lock held). */
static void
reap_downloads(ohb_cloud_t *c)
{
	download_t *done = NULL;
	pthread_mutex_lock(&c->lock);
	for (download_t **pp = &c->downloads; *pp;) {
		download_t *dl = *pp;
		if (dl->finished) {
			*pp = dl->next;
			dl->next = done;
			done = dl;
		} else {
			pp = &dl->next;
		}
	}
	pthread_mutex_unlock(&c->lock);
	while (done) {
		download_t *next = done->next;
		pthread_join(done->thread, NULL);
		download_free(done);
		done = next;
	}
}

int
ohb_cloud_download_start(ohb_cloud_t *c, const char *uri, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	char *rel;
	int rc = uri_to_rel(uri, &rel, err);
	if (rc != OHB_OK)
		return rc;
	reap_downloads(c);
	download_t *dl = calloc(1, sizeof *dl);
	if (!dl) {
		free(rel);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	dl->c = c;
	dl->rel = rel;
	dl->uri = strdup(uri);
	char *cpath = cloud_path_of(rel);
	cloud_driver_t *d = NULL;
	if (!dl->uri || !cpath) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	} else if ((rc = cloud_driver_open(c->url, c->user, c->password, &d, err)) == OHB_OK) {
		rc = cloud_stat(d, cpath, &dl->entry, err);
		if (rc == OHB_OK && dl->entry.is_dir)
			rc = ohb_fail(err, OHB_E_NOENT, "the cloud holds a folder, not a file, at %s", uri);
		else if (rc == OHB_E_NOENT)
			ohb_fail(err, OHB_E_NOENT, "the cloud holds no file %s", uri);
	}
	cloud_driver_close(d);
	free(cpath);
	if (rc != OHB_OK) {
		download_free(dl);
		return rc;
	}
	pthread_mutex_lock(&c->lock);
	if (active_find_locked(c, rel)) {
		pthread_mutex_unlock(&c->lock);
		download_free(dl);
		return ohb_fail(err, CLOUD_E_BUSY, "%s is already being transferred", uri);
	}
	active_set_locked(c, rel, OHB_CLOUD_FILE_DOWNLOADING);
	push_locked(c, EV_DOWNLOAD, OHB_CLOUD_DL_RUNNING, 0, 0, NULL, uri, 0, dl->entry.size);
	if (pthread_create(&dl->thread, NULL, download_main, dl) != 0) {
		active_clear_locked(c, rel);
		pthread_mutex_unlock(&c->lock);
		download_free(dl);
		return ohb_fail(err, OHB_E_NOMEM, "cannot start a download thread");
	}
	dl->next = c->downloads;
	c->downloads = dl;
	pthread_mutex_unlock(&c->lock);
	return OHB_OK;
}

int
ohb_cloud_download_stop(ohb_cloud_t *c, const char *uri, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	char *rel;
	int rc = uri_to_rel(uri, &rel, err);
	if (rc != OHB_OK)
		return rc;
	pthread_mutex_lock(&c->lock);
	for (download_t *dl = c->downloads; dl; dl = dl->next) {
		if (strcmp(dl->rel, rel) != 0 || dl->finished)
			continue;
		dl->stop = true;
		/* Wait for it to end, so its partial file is gone when stop returns
		 * (the download thread never waits on the dispatcher: no deadlock). */
		while (!dl->finished)
			pthread_cond_wait(&c->cond, &c->lock);
		break;
	}
	pthread_mutex_unlock(&c->lock);
	free(rel);
	return OHB_OK;
}

/* ---- GallerySync ------------------------------------------------------------------ */

int
ohb_cloud_gallery_start(ohb_cloud_t *c, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	pthread_mutex_lock(&c->lock);
	if (c->sync_running && !c->sync_stop) {
		pthread_mutex_unlock(&c->lock);
		return OHB_OK;   /* coalesced with the run going on */
	}
	while (c->sync_running)
		pthread_cond_wait(&c->cond, &c->lock);   /* a stopped run winding down */
	bool join = c->sync_joinable;
	c->sync_joinable = false;
	pthread_mutex_unlock(&c->lock);
	if (join)
		pthread_join(c->sync_thread, NULL);
	pthread_mutex_lock(&c->lock);
	if (c->sync_running) {
		pthread_mutex_unlock(&c->lock);
		return OHB_OK;   /* another caller started one meanwhile */
	}
	c->sync_running = true;
	c->sync_stop = false;
	if (pthread_create(&c->sync_thread, NULL, sync_main, c) != 0) {
		c->sync_running = false;
		pthread_mutex_unlock(&c->lock);
		return ohb_fail(err, OHB_E_NOMEM, "cannot start the sync thread");
	}
	c->sync_joinable = true;
	pthread_mutex_unlock(&c->lock);
	return OHB_OK;
}

int
ohb_cloud_gallery_stop(ohb_cloud_t *c, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	pthread_mutex_lock(&c->lock);
	if (c->sync_running)
		c->sync_stop = true;
	pthread_mutex_unlock(&c->lock);
	return OHB_OK;
}

int
ohb_cloud_gallery_on(ohb_cloud_t *c, ohb_cloud_sync_cb_t cb, void *user, ohb_error_t *err)
{
	if (!c || !cb)
		return ohb_fail(err, OHB_E_PARAM, "on('progress') needs a callback");
	pthread_mutex_lock(&c->lock);
	c->sync_cb = cb;
	c->sync_user = user;
	pthread_mutex_unlock(&c->lock);
	return OHB_OK;
}

int
ohb_cloud_gallery_off(ohb_cloud_t *c, ohb_cloud_sync_cb_t cb, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	pthread_mutex_lock(&c->lock);
	int rc = OHB_OK;
	if (cb && c->sync_cb && cb != c->sync_cb)
		rc = ohb_fail(err, OHB_E_PARAM, "off('progress'): that callback is not registered");
	else
		c->sync_cb = NULL;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int
ohb_cloud_download_on(ohb_cloud_t *c, ohb_cloud_download_cb_t cb, void *user, ohb_error_t *err)
{
	if (!c || !cb)
		return ohb_fail(err, OHB_E_PARAM, "on('progress') needs a callback");
	pthread_mutex_lock(&c->lock);
	c->dl_cb = cb;
	c->dl_user = user;
	pthread_mutex_unlock(&c->lock);
	return OHB_OK;
}

int
ohb_cloud_download_off(ohb_cloud_t *c, ohb_cloud_download_cb_t cb, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	pthread_mutex_lock(&c->lock);
	int rc = OHB_OK;
	if (cb && c->dl_cb && cb != c->dl_cb)
		rc = ohb_fail(err, OHB_E_PARAM, "off('progress'): that callback is not registered");
	else
		c->dl_cb = NULL;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- getFileSyncState --------------------------------------------------------------- */

/*
 * Which state (docs/CLOUD.md):
 *   UPLOADING / DOWNLOADING   the file is being transferred right now
 *   UPLOAD_FAILURE            its last upload failed (until a sync settles it)
 *   STOPPED                   its last transfer was stopped (stop(), Download.stop)
 *   TO_BE_UPLOADED            a local file new or changed since its last sync
 *   UPLOAD_SUCCESS            the last sync uploaded it, unchanged since
 *   COMPLETED                 the last sync downloaded it or found both sides equal
 */
static int
file_state(ohb_cloud_t *c, const char *uri, ohb_cloud_file_sync_state_t *out, ohb_error_t *err)
{
	char *rel;
	int rc = uri_to_rel(uri, &rel, err);
	if (rc != OHB_OK)
		return rc;
	struct stat st;
	bool local = media_stat(c, rel, &st);
	pthread_mutex_lock(&c->lock);
	const active_t *a = active_find_locked(c, rel);
	const cst_rec_t *r = cst_find(c->store, rel);
	int state = -1;
	if (a)
		state = a->state;
	else if (r && (r->state == OHB_CLOUD_FILE_UPLOAD_FAILURE || r->state == OHB_CLOUD_FILE_STOPPED))
		state = r->state;
	else if (local && (!r || !r->has_base || r->lsize != (uint64_t)st.st_size || r->lmtime_ns != mtime_ns(&st)))
		state = OHB_CLOUD_FILE_TO_BE_UPLOADED;
	else if (r && r->has_base)
		state = r->state == OHB_CLOUD_FILE_UPLOAD_SUCCESS ? OHB_CLOUD_FILE_UPLOAD_SUCCESS : OHB_CLOUD_FILE_COMPLETED;
	pthread_mutex_unlock(&c->lock);
	free(rel);
	if (state < 0)
		return ohb_fail(err, OHB_E_NOENT, "no such file: %.300s", uri);
	*out = (ohb_cloud_file_sync_state_t)state;
	return OHB_OK;
}

int
ohb_cloud_get_file_sync_state(ohb_cloud_t *c, const char *uri, ohb_cloud_file_sync_state_t *out, ohb_error_t *err)
{
	if (!c || !out)
		return ohb_fail(err, OHB_E_PARAM, "getFileSyncState needs an engine and a result");
	return file_state(c, uri, out, err);
}

int
ohb_cloud_get_file_sync_states(ohb_cloud_t *c, const char *const *uris, size_t n, ohb_cloud_file_sync_state_t *out,
    ohb_error_t *err)
{
	if (!c || !uris || !out || n == 0)
		return ohb_fail(err, OHB_E_PARAM, "getFileSyncState needs a non-empty list of uris");
	if (n > MAX_BATCH)
		return ohb_fail(err, OHB_E_PARAM, "getFileSyncState takes at most %d uris (got %zu)", MAX_BATCH, n);
	for (size_t i = 0; i < n; i++) {
		int rc = file_state(c, uris[i], &out[i], err);
		if (rc != OHB_OK)
			return rc;
	}
	return OHB_OK;
}

/* ---- the engine ------------------------------------------------------------------ */

int
ohb_cloud_wait_idle(ohb_cloud_t *c, int timeout_ms, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	int64_t deadline = timeout_ms < 0 ? -1 : fsu_mono_ms() + timeout_ms;
	int rc = OHB_OK;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		bool busy_dl = false;
		for (download_t *dl = c->downloads; dl; dl = dl->next)
			busy_dl |= !dl->finished;
		if (!c->sync_running && !busy_dl && !c->head && !c->delivering)
			break;
		if (deadline < 0) {
			pthread_cond_wait(&c->cond, &c->lock);
			continue;
		}
		int64_t left = deadline - fsu_mono_ms();
		if (left <= 0) {
			rc = ohb_fail(err, OHB_E_TIMEOUT, "the cloud engine is still busy after %d ms", timeout_ms);
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += left / 1000;
		ts.tv_nsec += (left % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cond, &c->lock, &ts);
	}
	pthread_mutex_unlock(&c->lock);
	reap_downloads(c);
	return rc;
}

static void
engine_free(ohb_cloud_t *c)
{
	free(c->root);
	free(c->media);
	free(c->state_dir);
	free(c->url);
	free(c->user);
	free(c->password);
	cst_free(c->store);
	free(c);
}

int
ohb_cloud_open(const ohb_cloud_options_t *opts, ohb_cloud_t **out, ohb_error_t *err)
{
	if (!out)
		return ohb_fail(err, OHB_E_PARAM, "ohb_cloud_open needs a result pointer");
	*out = NULL;
	if (!opts || !opts->root || !*opts->root)
		return ohb_fail(err, OHB_E_PARAM, "ohb_cloud_open needs a device root");
	ohb_cloud_t *c = calloc(1, sizeof *c);
	if (!c)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	c->root = strdup(opts->root);
	c->media = fsu_join(opts->root, "media");
	c->state_dir = fsu_join(opts->root, "cloud");
	c->url = strdup(opts->url ? opts->url : "");   /* none: sync and download fail with 22400001 */
	c->user = opts->user ? strdup(opts->user) : NULL;
	c->password = opts->password ? strdup(opts->password) : NULL;
	c->rate_limit = opts->rate_limit;
	if (!c->root || !c->media || !c->state_dir || !c->url || (opts->user && !c->user) ||
	    (opts->password && !c->password)) {
		engine_free(c);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	int rc = fsu_mkdir_p(c->media, 0755, err);
	if (rc == OHB_OK)
		rc = fsu_mkdir_p(c->state_dir, 0700, err);
	if (rc == OHB_OK)
		rc = cst_open(c->state_dir, &c->store, err);
	if (rc != OHB_OK) {
		engine_free(c);
		return rc;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->save_lock, NULL);
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &a);
	pthread_condattr_destroy(&a);
	if (pthread_create(&c->dispatcher, NULL, dispatcher_main, c) != 0) {
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
		pthread_mutex_destroy(&c->save_lock);
		engine_free(c);
		return ohb_fail(err, OHB_E_NOMEM, "cannot start the cloud engine's dispatcher thread");
	}
	*out = c;
	return OHB_OK;
}

void
ohb_cloud_close(ohb_cloud_t *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->sync_running)
		c->sync_stop = true;
	for (download_t *dl = c->downloads; dl; dl = dl->next)
		dl->stop = true;
	while (c->sync_running)
		pthread_cond_wait(&c->cond, &c->lock);
	bool join = c->sync_joinable;
	c->sync_joinable = false;
	pthread_mutex_unlock(&c->lock);
	if (join)
		pthread_join(c->sync_thread, NULL);
	pthread_mutex_lock(&c->lock);
	for (download_t *dl = c->downloads; dl; dl = dl->next)
		while (!dl->finished)
			pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	reap_downloads(c);
	pthread_mutex_lock(&c->lock);
	c->dispatcher_stop = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->dispatcher, NULL);
	while (c->active) {
		active_t *a = c->active;
		c->active = a->next;
		free(a->path);
		free(a);
	}
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->save_lock);
	engine_free(c);
}
