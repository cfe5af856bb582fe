/*
 * cloud_sync — the cloudSync engine's core (ohbackup_cloud.h; the module map
 * is in cloud_engine.h): opening and closing the engine, sync scopes and
 * their uris, the event queue and its dispatcher, each scope's folder (walked
 * with openat(O_NOFOLLOW): symlinks are never followed, listed or synced) and
 * state store, getFileSyncState, the file listing and wait_idle.
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

#include "cloud_battery.h"
#include "cloud_engine.h"
#include "errors.h"
#include "fsutil.h"
#include "registry.h"

#define MAX_BATCH 100
#define MAX_DEPTH 64
#define SAVE_INTERVAL_MS 1000
#define APP_CLOUD_DIR "/data/storage/el2/cloud"

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

const char *
ohb_cloud_optimize_state_name(ohb_cloud_optimize_state_t s)
{
	static const char *const n[] = {"RUNNING", "COMPLETED", "FAILED", "STOPPED"};
	return (unsigned)s < 4 ? n[s] : "UNKNOWN";
}

int64_t
ce_mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- scopes ---------------------------------------------------------------------- */

static void
scope_free(ohb_cloud_sync_t *s)
{
	if (!s)
		return;
	while (s->active) {
		active_t *a = s->active;
		s->active = a->next;
		free(a->path);
		free(a);
	}
	cloud_entries_free(s->remote, s->n_remote);
	free(s->label);
	free(s->bundle);
	free(s->uri_prefix);
	free(s->local_dir);
	free(s->cloud_dir);
	free(s->state_dir);
	cst_free(s->store);
	pthread_mutex_destroy(&s->save_lock);
	free(s);
}

/* A new scope (not yet linked into the engine). */
static int
scope_new(ohb_cloud_t *c, const char *bundle, const char *local_dir, ohb_cloud_sync_t **out, ohb_error_t *err)
{
	ohb_cloud_sync_t *s = calloc(1, sizeof *s);
	if (!s)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	pthread_mutex_init(&s->save_lock, NULL);
	s->c = c;
	s->label = strdup(bundle ? bundle : "gallery");
	s->bundle = bundle ? strdup(bundle) : NULL;
	s->uri_prefix = bundle ? fsu_printf("file://%s" APP_CLOUD_DIR "/", bundle) : strdup("file://media/");
	s->local_dir = strdup(local_dir);
	s->cloud_dir = bundle ? fsu_printf("apps/%s", bundle) : strdup("media");
	s->state_dir = bundle ? fsu_printf("%s/cloud/apps/%s", c->root, bundle) : fsu_join(c->root, "cloud");
	if (!s->label || (bundle && !s->bundle) || !s->uri_prefix || !s->local_dir || !s->cloud_dir || !s->state_dir) {
		scope_free(s);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	if (!cloud_path_is_valid(s->cloud_dir)) {
		scope_free(s);
		return ohb_fail(err, OHB_E_INVAL, "the bundle name %s cannot name a cloud folder", bundle);
	}
	int rc = cst_open(s->state_dir, &s->store, err);
	if (rc != OHB_OK) {
		scope_free(s);
		return rc;
	}
	s->status.state = OHB_CLOUD_SYNC_COMPLETED;
	s->status.last_sync_ms = cst_last_sync(s->store);
	snprintf(s->status.label, sizeof s->status.label, "%s", s->label);
	*out = s;
	return OHB_OK;
}

ohb_cloud_sync_t *
ohb_cloud_gallery(ohb_cloud_t *c)
{
	return c ? c->scopes : NULL;
}

/* The scope of an installed bundle, made on first use. not_installed_code is
 * the code for a bundle that is not installed (13900002 from FileSync,
 * 14000002 from a uri). */
static int
bundle_scope(ohb_cloud_t *c, const char *bundle, int not_installed_code, ohb_cloud_sync_t **out, ohb_error_t *err)
{
	pthread_mutex_lock(&c->lock);
	for (ohb_cloud_sync_t *s = c->scopes->next; s; s = s->next) {
		if (strcmp(s->bundle, bundle) == 0) {
			pthread_mutex_unlock(&c->lock);
			*out = s;
			return OHB_OK;
		}
	}
	pthread_mutex_unlock(&c->lock);

	reg_device_t *dev = NULL;
	int rc = reg_device_open(c->root, &dev, err);
	if (rc != OHB_OK)
		return rc;
	const reg_bundle_t *b = reg_device_find(dev, bundle);
	const reg_mount_t *m = NULL;
	const char *rel = NULL;
	char *local = NULL;
	if (!b) {
		rc = ohb_fail(err, not_installed_code, "the bundle %s is not installed on this device", bundle);
	} else if (reg_bundle_map(b, APP_CLOUD_DIR, &m, &rel, NULL) != OHB_OK) {
		rc = ohb_fail(err, OHB_E_INVAL, "the bundle %s has no mount holding its cloud folder " APP_CLOUD_DIR,
		    bundle);
	} else if (!(local = *rel ? fsu_join(m->dir, rel) : strdup(m->dir))) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	ohb_cloud_sync_t *s = NULL;
	if (rc == OHB_OK)
		rc = scope_new(c, bundle, local, &s, err);
	free(local);
	reg_device_free(dev);
	if (rc != OHB_OK)
		return rc;

	pthread_mutex_lock(&c->lock);
	for (ohb_cloud_sync_t *o = c->scopes->next; o; o = o->next) {
		if (strcmp(o->bundle, bundle) == 0) {   /* another thread made it meanwhile */
			pthread_mutex_unlock(&c->lock);
			scope_free(s);
			*out = o;
			return OHB_OK;
		}
	}
	s->next = c->scopes->next;
	c->scopes->next = s;
	pthread_mutex_unlock(&c->lock);
	*out = s;
	return OHB_OK;
}

int
ohb_cloud_file_sync(ohb_cloud_t *c, const char *bundle, ohb_cloud_sync_t **out, ohb_error_t *err)
{
	if (!c || !out)
		return ohb_fail(err, OHB_E_PARAM, "FileSync needs an engine and a result");
	if (!bundle || !reg_bundle_name_is_valid(bundle))
		return ohb_fail(err, OHB_E_PARAM, "FileSync needs a valid bundle name (got \"%.200s\")",
		    bundle ? bundle : "");
	return bundle_scope(c, bundle, OHB_E_NOENT, out, err);
}

/* ---- uris ---------------------------------------------------------------------- */

/* Percent-decodes p (up to a query or fragment) into a malloc'd string. */
static int
decode_path(const char *uri, const char *p, char **rel, ohb_error_t *err)
{
	size_t n = strlen(p);
	if (n == 0 || n > 4096)
		return ohb_fail(err, CLOUD_E_URI, "invalid uri \"%.200s\": no file path, or one too long", uri);
	char *out = malloc(n + 1);
	if (!out)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '%') {
			int hi = fsu_hex_digit(p[i + 1]);   /* p[i + 1] is at worst the NUL */
			int lo = hi < 0 ? -1 : fsu_hex_digit(p[i + 2]);
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
	if (w == 0 || !cloud_path_is_valid(out) || out[w - 1] == '/') {
		free(out);
		return ohb_fail(err, CLOUD_E_URI, "invalid uri \"%.200s\": the path leaves the folder or is malformed",
		    uri);
	}
	*rel = out;
	return OHB_OK;
}

int
ce_uri_parse(ohb_cloud_t *c, const char *uri, ohb_cloud_sync_t **scope, char **rel, ohb_error_t *err)
{
	*rel = NULL;
	*scope = NULL;
	if (!uri)
		return ohb_fail(err, OHB_E_PARAM, "a uri is required");
	if (strncmp(uri, "file://media/", 13) == 0) {
		*scope = c->scopes;
		return decode_path(uri, uri + 13, rel, err);
	}
	if (strncmp(uri, "file:///media/", 14) == 0) {
		*scope = c->scopes;
		return decode_path(uri, uri + 14, rel, err);
	}
	if (strncmp(uri, "file://", 7) != 0)
		return ohb_fail(err, CLOUD_E_URI, "invalid uri \"%.200s\": not a file:// uri", uri);
	const char *auth = uri + 7;
	const char *slash = strchr(auth, '/');
	char bundle[160];
	if (!slash || slash == auth || (size_t)(slash - auth) >= sizeof bundle)
		return ohb_fail(err, CLOUD_E_URI, "invalid uri \"%.200s\": no media or bundle authority", uri);
	snprintf(bundle, sizeof bundle, "%.*s", (int)(slash - auth), auth);
	size_t pl = strlen(APP_CLOUD_DIR "/");
	if (!reg_bundle_name_is_valid(bundle) || strncmp(slash, APP_CLOUD_DIR "/", pl) != 0)
		return ohb_fail(err, CLOUD_E_URI,
		    "invalid uri \"%.200s\": neither file://media/… nor file://<bundle>" APP_CLOUD_DIR "/…", uri);
	int rc = bundle_scope(c, bundle, CLOUD_E_URI, scope, err);
	if (rc != OHB_OK)
		return rc;
	return decode_path(uri, slash + pl, rel, err);
}

char *
ce_uri_of(const ohb_cloud_sync_t *s, const char *rel)
{
	char *enc = fsu_url_encode(rel);
	if (!enc)
		return NULL;
	char *uri = fsu_printf("%s%s", s->uri_prefix, enc);
	free(enc);
	return uri;
}

char *
ce_cloud_path(const ohb_cloud_sync_t *s, const char *rel)
{
	return fsu_printf("%s/%s", s->cloud_dir, rel);
}

/* ---- the scope's folder, never following a symlink -------------------------------- */

int
ce_parent(const ohb_cloud_sync_t *s, const char *rel, bool create, int *pfd, const char **leaf, ohb_error_t *err)
{
	int cur = open(s->local_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cur < 0 && errno == ENOENT && create) {
		/* only the first file into a scope that has no folder yet */
		if (fsu_mkdir_p(s->local_dir, 0755, err) != OHB_OK)
			return err ? err->code : OHB_E_IO;
		cur = open(s->local_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (cur < 0)
		return ohb_fail_errno(err, errno, "cannot open the %s folder %s", s->label, s->local_dir);
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
				return ohb_fail_errno(err, e, "cannot create the folder %.*s", (int)(slash - rel), rel);
			}
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int e = errno;
			close(cur);
			if (e == ELOOP)
				e = ENOENT;   /* a symlink is not a folder of the scope */
			return ohb_fail_errno(err, e, "cannot open the folder %.*s", (int)(slash - rel), rel);
		}
		close(cur);
		cur = next;
		p = slash + 1;
	}
	*pfd = cur;
	*leaf = p;
	return OHB_OK;
}

bool
ce_stat(const ohb_cloud_sync_t *s, const char *rel, struct stat *st)
{
	int pfd;
	const char *leaf;
	if (ce_parent(s, rel, false, &pfd, &leaf, NULL) != OHB_OK)
		return false;
	bool ok = fstatat(pfd, leaf, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st->st_mode);
	close(pfd);
	return ok;
}

void
ce_local_vec_free(local_vec_t *lv)
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
		return ohb_fail(err, OHB_E_INVAL, "the folder %s is nested too deeply", prefix);
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return ohb_fail_errno(err, e, "cannot list the folder %s", *prefix ? prefix : "/");
	}
	int rc = OHB_OK;
	struct dirent *de;
	while (rc == OHB_OK && (de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || has_suffix(name, CLOUD_TEMP_SUFFIX))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue;   /* symlinks and special files are not synced */
		char *rel = *prefix ? fsu_printf("%s/%s", prefix, name) : strdup(name);
		if (!rel) {
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory scanning a folder");
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
				rc = ohb_fail(err, OHB_E_NOMEM, "out of memory scanning a folder");
				break;
			}
			lv->v = nv;
			lv->cap = ncap;
		}
		lv->v[lv->n++] = (local_file_t){rel, (uint64_t)st.st_size, ce_mtime_ns(&st),
		    (int64_t)st.st_atim.tv_sec * 1000000000LL + st.st_atim.tv_nsec};
	}
	closedir(d);
	return rc;
}

int
ce_scan(const ohb_cloud_sync_t *s, local_vec_t *lv, ohb_error_t *err)
{
	memset(lv, 0, sizeof *lv);
	int dfd = open(s->local_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		if (errno == ENOENT)
			return OHB_OK;   /* a bundle's cloud folder not made yet: no files */
		return ohb_fail_errno(err, errno, "cannot open the %s folder %s", s->label, s->local_dir);
	}
	int rc = scan_rec(dfd, "", 0, lv, err);
	if (rc != OHB_OK) {
		ce_local_vec_free(lv);
		return rc;
	}
	if (lv->n > 1)
		qsort(lv->v, lv->n, sizeof *lv->v, local_cmp);
	return OHB_OK;
}

const local_file_t *
ce_local_find(const local_vec_t *lv, const char *path)
{
	local_file_t key = {(char *)path, 0, 0, 0};
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

/* A RUNNING download or optimize event replaces the queued RUNNING event of
 * the same kind (and uri) that was not delivered yet, so a slow listener sees
 * fresh numbers rather than a backlog. */
void
ce_push_locked(ohb_cloud_t *c, const event_t *p)
{
	event_t *t = c->tail;
	bool running = (p->kind == EV_DOWNLOAD || p->kind == EV_CACHE) ? p->state == OHB_CLOUD_DL_RUNNING
	               : p->kind == EV_OPTIMIZE                         ? p->state == OHB_CLOUD_OPT_RUNNING
	                                                                : false;
	if (running && t && t->kind == p->kind && t->state == p->state &&
	    (p->kind == EV_OPTIMIZE || strcmp(t->uri, p->uri) == 0)) {
		t->processed = p->processed;
		t->size = p->size;
		t->files = p->files;
		return;
	}
	event_t *ev = calloc(1, sizeof *ev);
	if (!ev)
		return;   /* out of memory: the event is lost, the engine goes on */
	*ev = *p;
	ev->next = NULL;
	ev->message = strdup(p->message ? p->message : "");
	ev->uri = p->uri ? strdup(p->uri) : NULL;
	if (!ev->message || (p->uri && !ev->uri)) {
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

static void
deliver(const event_t *ev, ohb_cloud_sync_cb_t scb, ohb_cloud_download_cb_t dcb, ohb_cloud_optimize_cb_t ocb,
    void *user)
{
	if (ev->kind == EV_SYNC && scb) {
		ohb_cloud_sync_progress_t pg = {(ohb_cloud_sync_state_t)ev->state, (ohb_cloud_error_type_t)ev->error,
		    ev->code, ev->message};
		scb(user, &pg);
	} else if ((ev->kind == EV_DOWNLOAD || ev->kind == EV_CACHE) && dcb) {
		ohb_cloud_download_progress_t pg = {(ohb_cloud_download_state_t)ev->state, ev->processed, ev->size,
		    ev->uri, (ohb_cloud_download_error_t)ev->error};
		dcb(user, &pg);
	} else if (ev->kind == EV_OPTIMIZE && ocb) {
		int pct = ev->size ? (int)(ev->processed >= ev->size ? 100 : ev->processed * 100 / ev->size) : 0;
		ohb_cloud_optimize_progress_t pg = {(ohb_cloud_optimize_state_t)ev->state, pct, ev->processed, ev->size,
		    ev->files, ev->code, ev->message};
		ocb(user, &pg);
	}
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
		ohb_cloud_sync_cb_t scb = NULL;
		ohb_cloud_download_cb_t dcb = NULL;
		ohb_cloud_optimize_cb_t ocb = NULL;
		void *user = NULL;
		switch (ev->kind) {
		case EV_SYNC:
			scb = ev->scope->cb;
			user = ev->scope->user;
			break;
		case EV_DOWNLOAD:
			dcb = c->dl_cb;
			user = c->dl_user;
			break;
		case EV_CACHE:
			dcb = c->cache_cb;
			user = c->cache_user;
			break;
		case EV_OPTIMIZE:
			ocb = c->opt_cb;
			user = c->opt_user;
			break;
		}
		c->delivering = true;
		pthread_mutex_unlock(&c->lock);
		deliver(ev, scb, dcb, ocb, user);
		event_free(ev);
		pthread_mutex_lock(&c->lock);
		c->delivering = false;
		pthread_cond_broadcast(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- state store and active transfers --------------------------------------------- */

void
ce_active_set_locked(ohb_cloud_sync_t *s, const char *path, int state)
{
	for (active_t *a = s->active; a; a = a->next) {
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
	a->next = s->active;
	s->active = a;
}

void
ce_active_clear_locked(ohb_cloud_sync_t *s, const char *path)
{
	for (active_t **pp = &s->active; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->path, path) == 0) {
			active_t *a = *pp;
			*pp = a->next;
			free(a->path);
			free(a);
			return;
		}
	}
}

const active_t *
ce_active_find_locked(const ohb_cloud_sync_t *s, const char *path)
{
	for (const active_t *a = s->active; a; a = a->next)
		if (strcmp(a->path, path) == 0)
			return a;
	return NULL;
}

bool
ce_busy(ohb_cloud_sync_t *s, const char *rel)
{
	pthread_mutex_lock(&s->c->lock);
	bool b = ce_active_find_locked(s, rel) != NULL;
	pthread_mutex_unlock(&s->c->lock);
	return b;
}

bool
ce_claim(ohb_cloud_sync_t *s, const char *rel, int state)
{
	pthread_mutex_lock(&s->c->lock);
	bool free_to_take = ce_active_find_locked(s, rel) == NULL;
	if (free_to_take)
		ce_active_set_locked(s, rel, state);
	pthread_mutex_unlock(&s->c->lock);
	return free_to_take;
}

void
ce_release(ohb_cloud_sync_t *s, const char *rel)
{
	pthread_mutex_lock(&s->c->lock);
	ce_active_clear_locked(s, rel);
	pthread_mutex_unlock(&s->c->lock);
}

void
ce_save_store(ohb_cloud_sync_t *s, bool force)
{
	ohb_cloud_t *c = s->c;
	pthread_mutex_lock(&s->save_lock);
	pthread_mutex_lock(&c->lock);
	int64_t now = fsu_mono_ms();
	char *text = NULL;
	size_t len = 0;
	bool go = force || now - s->last_save_ms >= SAVE_INTERVAL_MS;
	if (go && cst_serialize(s->store, &text, &len, NULL) == OHB_OK)
		s->last_save_ms = now;
	pthread_mutex_unlock(&c->lock);
	/* A failed write costs a re-compare next run, no data. */
	if (text && fsu_mkdir_p(s->state_dir, 0700, NULL) == OHB_OK)
		cst_write(s->state_dir, text, len, NULL);
	free(text);
	pthread_mutex_unlock(&s->save_lock);
}

void
ce_record_synced(ohb_cloud_sync_t *s, const char *rel, int state, const struct stat *st, const char *etag)
{
	cst_rec_t r = {0};
	r.path = (char *)rel;
	r.state = state;
	r.has_base = true;
	r.lsize = (uint64_t)st->st_size;
	r.lmtime_ns = ce_mtime_ns(st);
	snprintf(r.etag, sizeof r.etag, "%s", etag);
	ce_put_record(s, &r);
}

void
ce_put_record(ohb_cloud_sync_t *s, const cst_rec_t *r)
{
	pthread_mutex_lock(&s->c->lock);
	cst_put(s->store, r, NULL);
	pthread_mutex_unlock(&s->c->lock);
}

void
ce_record_state(ohb_cloud_sync_t *s, const char *rel, int state)
{
	pthread_mutex_lock(&s->c->lock);
	cst_set_state(s->store, rel, state, NULL);
	pthread_mutex_unlock(&s->c->lock);
}

bool
ce_base_of(ohb_cloud_sync_t *s, const char *rel, cst_rec_t *out)
{
	pthread_mutex_lock(&s->c->lock);
	const cst_rec_t *r = cst_find(s->store, rel);
	if (r)
		*out = *r;
	pthread_mutex_unlock(&s->c->lock);
	return r != NULL;
}

/* ---- getFileSyncState and the file listing ---------------------------------------- */

bool
ce_in_scope(const ohb_cloud_sync_t *s, const cloud_entry_t *ce)
{
	size_t n = strlen(s->cloud_dir);
	return !ce->is_dir && strncmp(ce->path, s->cloud_dir, n) == 0 && ce->path[n] == '/';
}

void
ce_remember_remote_locked(ohb_cloud_sync_t *s, const cloud_entry_t *cv, size_t cn)
{
	size_t plen = strlen(s->cloud_dir);
	size_t n = 0;
	for (size_t i = 0; i < cn; i++)
		n += ce_in_scope(s, &cv[i]);
	cloud_entry_t *v = calloc(n ? n : 1, sizeof *v);
	if (!v)
		return;   /* out of memory: the old listing stays */
	size_t k = 0;
	for (size_t i = 0; i < cn && k < n; i++) {
		if (!ce_in_scope(s, &cv[i]))
			continue;
		v[k] = cv[i];
		if (!(v[k].path = strdup(cv[i].path + plen + 1))) {
			cloud_entries_free(v, k);
			return;
		}
		k++;
	}
	cloud_entries_free(s->remote, s->n_remote);
	s->remote = v;
	s->n_remote = k;
	s->status.listed_ms = fsu_now_ms();
}


/*
 * Which state (docs/CLOUD.md), c->lock held; -1 when the engine knows no
 * such file:
 *   UPLOADING / DOWNLOADING   the file is being transferred right now
 *   UPLOAD_FAILURE            its last upload failed (until a sync settles it)
 *   STOPPED                   its last transfer was stopped
 *   TO_BE_UPLOADED            a local file new or changed since its last sync
 *   UPLOAD_SUCCESS            the last sync uploaded it, unchanged since
 *   COMPLETED                 the last sync downloaded it or found both sides equal
 * An evicted file keeps the state it had when it was evicted.
 */
static int
state_locked(const ohb_cloud_sync_t *s, const char *rel, const local_file_t *lf)
{
	const active_t *a = ce_active_find_locked(s, rel);
	const cst_rec_t *r = cst_find(s->store, rel);
	if (a)
		return a->state;
	if (r && (r->state == OHB_CLOUD_FILE_UPLOAD_FAILURE || r->state == OHB_CLOUD_FILE_STOPPED))
		return r->state;
	if (lf && !cst_rec_matches(r, lf->size, lf->mtime_ns))
		return OHB_CLOUD_FILE_TO_BE_UPLOADED;
	if (r && r->has_base)
		return r->state == OHB_CLOUD_FILE_UPLOAD_SUCCESS ? OHB_CLOUD_FILE_UPLOAD_SUCCESS : OHB_CLOUD_FILE_COMPLETED;
	return -1;
}

static int
file_state(ohb_cloud_t *c, const char *uri, ohb_cloud_file_sync_state_t *out, ohb_error_t *err)
{
	ohb_cloud_sync_t *s;
	char *rel;
	int rc = ce_uri_parse(c, uri, &s, &rel, err);
	if (rc != OHB_OK)
		return rc;
	struct stat st;
	local_file_t lf = {rel, 0, 0, 0};
	bool local = ce_stat(s, rel, &st);
	if (local) {
		lf.size = (uint64_t)st.st_size;
		lf.mtime_ns = ce_mtime_ns(&st);
	}
	pthread_mutex_lock(&c->lock);
	int state = state_locked(s, rel, local ? &lf : NULL);
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

void
ohb_cloud_file_infos_free(ohb_cloud_file_info_t *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].uri);
		free(v[i].path);
	}
	free(v);
}

static int
info_cmp(const void *a, const void *b)
{
	return strcmp(((const ohb_cloud_file_info_t *)a)->path, ((const ohb_cloud_file_info_t *)b)->path);
}

int
ohb_cloud_list_files(ohb_cloud_sync_t *s, ohb_cloud_file_info_t **out, size_t *n, ohb_error_t *err)
{
	if (!s || !out || !n)
		return ohb_fail(err, OHB_E_PARAM, "list_files needs a scope and results");
	*out = NULL;
	*n = 0;
	local_vec_t lv;
	int rc = ce_scan(s, &lv, err);
	if (rc != OHB_OK)
		return rc;
	ohb_cloud_t *c = s->c;
	pthread_mutex_lock(&c->lock);
	size_t nrec;
	const cst_rec_t *recs = cst_records(s->store, &nrec);
	size_t cap = lv.n + nrec + s->n_remote;
	ohb_cloud_file_info_t *v = calloc(cap ? cap : 1, sizeof *v);
	size_t k = 0;
	bool oom = !v;
	for (size_t i = 0; !oom && i < lv.n; i++) {
		const local_file_t *lf = &lv.v[i];
		ohb_cloud_file_info_t *f = &v[k++];
		f->path = strdup(lf->path);
		f->uri = ce_uri_of(s, lf->path);
		f->size = lf->size;
		f->mtime_ms = lf->mtime_ns / 1000000;
		f->atime_ms = lf->atime_ns / 1000000;
		f->local = true;
		f->state = (ohb_cloud_file_sync_state_t)state_locked(s, lf->path, lf);
		oom = !f->path || !f->uri;
	}
	for (size_t i = 0; !oom && i < s->n_remote; i++) {
		const cloud_entry_t *ce = &s->remote[i];   /* path relative to the scope */
		if (ce_local_find(&lv, ce->path) || cst_find(s->store, ce->path))
			continue;   /* on the device, or known: listed below or above */
		ohb_cloud_file_info_t *f = &v[k++];
		f->path = strdup(ce->path);
		f->uri = ce_uri_of(s, ce->path);
		f->size = ce->size;
		f->mtime_ms = ce->mtime_ms;
		f->remote_only = true;
		f->state = OHB_CLOUD_FILE_COMPLETED;
		oom = !f->path || !f->uri;
	}
	for (size_t i = 0; !oom && i < nrec; i++) {
		const cst_rec_t *r = &recs[i];
		if (ce_local_find(&lv, r->path))
			continue;
		int state = state_locked(s, r->path, NULL);
		if (state < 0)
			continue;   /* a record of a partial download only: no file yet */
		ohb_cloud_file_info_t *f = &v[k++];
		f->path = strdup(r->path);
		f->uri = ce_uri_of(s, r->path);
		f->size = r->lsize == UINT64_MAX ? 0 : r->lsize;
		f->evicted = r->evicted;
		f->state = (ohb_cloud_file_sync_state_t)state;
		oom = !f->path || !f->uri;
	}
	pthread_mutex_unlock(&c->lock);
	ce_local_vec_free(&lv);
	if (oom) {
		ohb_cloud_file_infos_free(v, k);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory listing files");
	}
	if (k > 1)
		qsort(v, k, sizeof *v, info_cmp);
	*out = v;
	*n = k;
	return OHB_OK;
}

int
ohb_cloud_battery(ohb_cloud_t *c, int *percent, bool *charging, ohb_error_t *err)
{
	if (!c || !percent || !charging)
		return ohb_fail(err, OHB_E_PARAM, "battery needs an engine and results");
	cloud_battery_read(c->power_dir, percent, charging);
	return OHB_OK;
}

/* ---- the engine ------------------------------------------------------------------ */

int
ce_driver_open(ohb_cloud_t *c, cloud_driver_t **d, ohb_error_t *err)
{
	*d = NULL;
	if (c->switched_off)
		return ohb_fail(err, CLOUD_E_NOT_READY, "device-cloud sync is switched off on this device");
	return cloud_driver_open(c->url, c->user, c->password, d, err);
}

static bool
idle_locked(const ohb_cloud_t *c)
{
	for (const download_t *dl = c->downloads; dl; dl = dl->next)
		if (!dl->finished)
			return false;
	for (const ohb_cloud_sync_t *s = c->scopes; s; s = s->next)
		if (s->running || s->status.listing)
			return false;
	return !c->opt_running && !c->head && !c->delivering;
}

int
ohb_cloud_wait_idle(ohb_cloud_t *c, int timeout_ms, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	int64_t deadline = timeout_ms < 0 ? -1 : fsu_mono_ms() + timeout_ms;
	int rc = OHB_OK;
	pthread_mutex_lock(&c->lock);
	while (!idle_locked(c)) {
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
	cd_reap(c);
	return rc;
}

static void
engine_free(ohb_cloud_t *c)
{
	while (c->scopes) {
		ohb_cloud_sync_t *s = c->scopes;
		c->scopes = s->next;
		scope_free(s);
	}
	free(c->root);
	free(c->url);
	free(c->user);
	free(c->password);
	free(c->power_dir);
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
	c->url = strdup(opts->url ? opts->url : "");   /* none: sync and download fail with 22400001 */
	c->user = opts->user ? strdup(opts->user) : NULL;
	c->password = opts->password ? strdup(opts->password) : NULL;
	c->power_dir = opts->power_supply_dir ? strdup(opts->power_supply_dir) : NULL;
	c->rate_limit = opts->rate_limit;
	c->switched_off = opts->switched_off;
	c->free_percent = opts->storage_free_percent ? opts->storage_free_percent : 10;
	if (c->free_percent > 100)
		c->free_percent = 100;
	char *media = c->root ? fsu_join(opts->root, "media") : NULL;
	if (!c->root || !c->url || !media || (opts->user && !c->user) || (opts->password && !c->password) ||
	    (opts->power_supply_dir && !c->power_dir)) {
		free(media);
		engine_free(c);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	int rc = fsu_mkdir_p(media, 0755, err);
	if (rc == OHB_OK)
		rc = scope_new(c, NULL, media, &c->scopes, err);
	free(media);
	if (rc == OHB_OK)
		rc = fsu_mkdir_p(c->scopes->state_dir, 0700, err);
	if (rc != OHB_OK) {
		engine_free(c);
		return rc;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &a);
	pthread_condattr_destroy(&a);
	if (pthread_create(&c->dispatcher, NULL, dispatcher_main, c) != 0) {
		pthread_cond_destroy(&c->cond);
		pthread_mutex_destroy(&c->lock);
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
	for (download_t *dl = c->downloads; dl; dl = dl->next)
		dl->stop = true;
	ohb_cloud_sync_t *scopes = c->scopes;   /* the list only grows at its second element; gallery is stable */
	pthread_mutex_unlock(&c->lock);
	for (ohb_cloud_sync_t *s = scopes; s; s = s->next)
		cr_stop_and_join(s);
	co_stop_and_join(c);
	pthread_mutex_lock(&c->lock);
	for (download_t *dl = c->downloads; dl; dl = dl->next)
		while (!dl->finished)
			pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	cd_reap(c);
	pthread_mutex_lock(&c->lock);
	c->dispatcher_stop = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->dispatcher, NULL);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	engine_free(c);
}
