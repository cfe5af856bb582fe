/*
 * cloud_run — sync runs of a scope (GallerySync, FileSync; cloud_engine.h),
 * one at a time per scope, on the scope's sync thread, after REFERENCE.md
 * "cloudSync": a download stage, then an upload stage. Each file is compared
 * with its "base" in the state store (what the last successful sync of that
 * file saw):
 *
 *   cloud only, or changed in the cloud only      -> download
 *   local only, or changed locally only           -> upload
 *   changed on both sides (or new on both sides
 *   with different bytes)                         -> conflict: the cloud's
 *       version is downloaded beside the local one as
 *       "<name> (cloud conflict <UTC time>).<ext>", then both are uploaded.
 *   evicted (optimize space, cleanCache) and not
 *   back locally                                  -> left in the cloud
 *
 * Nothing is deleted on either side: a file removed on one side comes back
 * from the other (docs/CLOUD.md). Errors accumulate: the run goes on with the
 * next file, except after "network unavailable" or a battery that ran low,
 * which end it; the run ends DOWNLOAD_FAILED or UPLOAD_FAILED with the first
 * error, else COMPLETED (which sets the scope's last sync time), or STOPPED
 * after stop().
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud_battery.h"
#include "cloud_engine.h"
#include "errors.h"
#include "fsutil.h"

#define BATTERY_CHECK_MS 5000

typedef struct run {
	ohb_cloud_sync_t *s;
	cloud_driver_t *d;
	xfer_t x;
	bool forced;
	int64_t battery_checked_ms;
	int first_code;
	char first_message[512];
	int first_stage;             /* OHB_CLOUD_SYNC_DOWNLOAD_FAILED or _UPLOAD_FAILED */
	int first_type;              /* ErrorType of the first error */
	bool fatal;                  /* network down or battery low: the run ends */
} run_t;

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
	case CLOUD_E_BATTERY:
		return OHB_CLOUD_ERR_BATTERY_LEVEL_LOW;
	default:
		return OHB_CLOUD_ERR_NO_ERROR;   /* ErrorType has no value for it; SyncProgress.code tells */
	}
}

static void
run_error(run_t *r, int stage, const ohb_error_t *e, ohb_cloud_error_type_t type)
{
	if (!r->first_code) {
		r->first_code = e->code ? e->code : OHB_E_UNKNOWN;
		snprintf(r->first_message, sizeof r->first_message, "%s", e->message);
		r->first_stage = stage;
		r->first_type = type;
	}
	if (e->code == CLOUD_E_NETWORK || e->code == CLOUD_E_BATTERY)
		r->fatal = true;
}

/* The battery, looked at every few seconds while a run goes: below the rule
 * (cloud_battery.h) the run ends. */
static void
check_battery(run_t *r, int stage)
{
	int64_t now = fsu_mono_ms();
	if (now - r->battery_checked_ms < BATTERY_CHECK_MS)
		return;
	r->battery_checked_ms = now;
	int pct;
	bool charging;
	cloud_battery_read(r->s->c->power_dir, &pct, &charging);
	ohb_cloud_error_type_t why;
	if (cloud_battery_verdict(pct, charging, r->forced, &why) != 0) {
		ohb_error_t e;
		ohb_fail(&e, CLOUD_E_BATTERY, "the battery is at %d %% and not charging: the sync stops", pct);
		run_error(r, stage, &e, why);
	}
}

static bool
run_stopping(run_t *r)
{
	return r->fatal || ce_xfer_cancelled(&r->x);
}

static void
push_sync(ohb_cloud_sync_t *s, int state, int type, int code, const char *message)
{
	event_t ev = {0};
	ev.kind = EV_SYNC;
	ev.scope = s;
	ev.state = state;
	ev.error = type;
	ev.code = code;
	ev.message = (char *)message;
	ce_push_locked(s->c, &ev);
}

/* The stage's counters for front ends (ohb_cloud_sync_get_status). */
static void
stage_begin(ohb_cloud_sync_t *s, uint64_t files, uint64_t bytes)
{
	pthread_mutex_lock(&s->c->lock);
	s->status.files_done = 0;
	s->status.files_total = files;
	s->status.bytes_done = 0;
	s->status.bytes_total = bytes;
	s->status.current[0] = '\0';
	pthread_mutex_unlock(&s->c->lock);
}

static void
file_begin(ohb_cloud_sync_t *s, const char *rel)
{
	pthread_mutex_lock(&s->c->lock);
	snprintf(s->status.current, sizeof s->status.current, "%s", rel);
	pthread_mutex_unlock(&s->c->lock);
}

static void
file_end(ohb_cloud_sync_t *s)
{
	pthread_mutex_lock(&s->c->lock);
	s->status.files_done++;
	s->status.current[0] = '\0';
	pthread_mutex_unlock(&s->c->lock);
}

/* What the download stage does with one cloud file. */
typedef enum { DL_SKIP, DL_FETCH, DL_PLACEHOLDER } dl_action_t;

static dl_action_t
download_action(ohb_cloud_sync_t *s, const cloud_entry_t *ce, const local_file_t *lf, cst_rec_t *b, bool *has_b,
    bool *conflict)
{
	bool has_rec = ce_base_of(s, ce->path + strlen(s->cloud_dir) + 1, b);
	*has_b = has_rec && b->has_base;
	*conflict = false;
	if (has_rec && b->evicted) {
		if (!lf)
			return DL_PLACEHOLDER;   /* evicted on purpose: stays in the cloud */
		*has_b = false;              /* a local file came back: compare before anything moves */
	}
	bool cloud_changed = !*has_b || strcmp(b->etag, ce->etag) != 0;
	bool local_changed = lf && (!*has_b || lf->size != b->lsize || lf->mtime_ns != b->lmtime_ns);
	if (!cloud_changed && lf)
		return DL_SKIP;   /* the cloud has what we synced; an upload, if any, is the next stage's */
	/* Both sides changed since the base: a conflict. New on both sides (no
	 * base): ct_fetch compares the bytes and keeps both only if they differ. */
	*conflict = lf && local_changed;
	return DL_FETCH;
}

static bool
in_scope(const ohb_cloud_sync_t *s, const cloud_entry_t *ce)
{
	size_t n = strlen(s->cloud_dir);
	return !ce->is_dir && strncmp(ce->path, s->cloud_dir, n) == 0 && ce->path[n] == '/';
}

static void
download_stage(run_t *r, const cloud_entry_t *cv, size_t cn, const local_vec_t *lv)
{
	ohb_cloud_sync_t *s = r->s;
	size_t skip = strlen(s->cloud_dir) + 1;
	uint64_t files = 0, bytes = 0;
	for (size_t i = 0; i < cn; i++) {
		cst_rec_t b;
		bool has_b, conflict;
		if (in_scope(s, &cv[i]) &&
		    download_action(s, &cv[i], ce_local_find(lv, cv[i].path + skip), &b, &has_b, &conflict) == DL_FETCH) {
			files++;
			bytes += cv[i].size;
		}
	}
	stage_begin(s, files, bytes);
	for (size_t i = 0; i < cn && !run_stopping(r); i++) {
		const cloud_entry_t *ce = &cv[i];
		if (!in_scope(s, ce))
			continue;
		const char *rel = ce->path + skip;
		const local_file_t *lf = ce_local_find(lv, rel);
		cst_rec_t b;
		bool has_b, conflict;
		dl_action_t act = download_action(s, ce, lf, &b, &has_b, &conflict);
		if (act == DL_PLACEHOLDER && strcmp(b.etag, ce->etag) != 0) {
			snprintf(b.etag, sizeof b.etag, "%s", ce->etag);   /* a later download gets the new version */
			b.path = (char *)rel;
			b.lsize = ce->size;
			ce_put_record(s, &b);
		}
		if (act != DL_FETCH || ce_busy(s, rel))
			continue;
		check_battery(r, OHB_CLOUD_SYNC_DOWNLOAD_FAILED);
		if (r->fatal)
			break;
		ce_set_active(s, rel, OHB_CLOUD_FILE_DOWNLOADING);
		file_begin(s, rel);
		place_t placed = PLACE_SAME;
		struct stat st;
		ohb_error_t e;
		int rc = ct_fetch(s, r->d, rel, ce, lf, conflict, &r->x, &placed, &st, &e);
		ce_set_active(s, rel, -1);
		file_end(s);
		if (rc == CLOUD_CANCELLED) {
			ce_record_state(s, rel, OHB_CLOUD_FILE_STOPPED);
			break;
		}
		if (rc != OHB_OK) {
			run_error(r, OHB_CLOUD_SYNC_DOWNLOAD_FAILED, &e, sync_error_type(e.code));
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
			ce_put_record(s, &nb);
		} else {
			ce_record_synced(s, rel, OHB_CLOUD_FILE_COMPLETED, &st, ce->etag);
		}
		ce_save_store(s, false);
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

static bool
needs_upload(ohb_cloud_sync_t *s, const local_file_t *lf, const cloud_entry_t *cv, size_t cn)
{
	cst_rec_t b;
	bool has_b = ce_base_of(s, lf->path, &b) && b.has_base && !b.evicted;
	char *cpath = ce_cloud_path(s, lf->path);
	const cloud_entry_t *ce = cpath ? cloud_find(cv, cn, cpath) : NULL;
	free(cpath);
	bool in_cloud = ce && !ce->is_dir;
	if (has_b && in_cloud && lf->size == b.lsize && lf->mtime_ns == b.lmtime_ns)
		return false;   /* unchanged since the last sync */
	if (in_cloud && !has_b)
		return false;   /* the download stage met it and could not settle it: no blind overwrite */
	return true;
}

static void
upload_stage(run_t *r, const cloud_entry_t *cv, size_t cn)
{
	ohb_cloud_sync_t *s = r->s;
	local_vec_t lv;
	ohb_error_t e;
	if (ce_scan(s, &lv, &e) != OHB_OK) {
		run_error(r, OHB_CLOUD_SYNC_UPLOAD_FAILED, &e, sync_error_type(e.code));
		return;
	}
	uint64_t files = 0, bytes = 0;
	for (size_t i = 0; i < lv.n; i++) {
		if (needs_upload(s, &lv.v[i], cv, cn)) {
			files++;
			bytes += lv.v[i].size;
		}
	}
	stage_begin(s, files, bytes);
	for (size_t i = 0; i < lv.n && !run_stopping(r); i++) {
		const local_file_t *lf = &lv.v[i];
		if (!needs_upload(s, lf, cv, cn) || ce_busy(s, lf->path))
			continue;
		check_battery(r, OHB_CLOUD_SYNC_UPLOAD_FAILED);
		if (r->fatal)
			break;
		ce_set_active(s, lf->path, OHB_CLOUD_FILE_UPLOADING);
		file_begin(s, lf->path);
		int rc = ct_push(s, r->d, lf->path, &r->x, &e);
		ce_set_active(s, lf->path, -1);
		file_end(s);
		if (rc == CLOUD_CANCELLED) {
			ce_record_state(s, lf->path, OHB_CLOUD_FILE_STOPPED);
			break;
		}
		if (rc != OHB_OK) {
			ce_record_state(s, lf->path, OHB_CLOUD_FILE_UPLOAD_FAILURE);
			run_error(r, OHB_CLOUD_SYNC_UPLOAD_FAILED, &e, sync_error_type(e.code));
		}
		ce_save_store(s, false);
	}
	ce_local_vec_free(&lv);
}

static void *
sync_main(void *arg)
{
	ohb_cloud_sync_t *s = arg;
	ohb_cloud_t *c = s->c;
	run_t r = {0};
	r.s = s;
	r.x.c = c;
	r.x.stop = &s->stop;
	r.x.status = &s->status;
	r.x.start_ms = fsu_mono_ms();
	r.battery_checked_ms = fsu_mono_ms();   /* start() just looked */
	pthread_mutex_lock(&c->lock);
	r.forced = s->forced;
	push_sync(s, OHB_CLOUD_SYNC_DOWNLOADING, 0, 0, NULL);
	pthread_mutex_unlock(&c->lock);

	ohb_error_t e;
	cloud_entry_t *cv = NULL;
	size_t cn = 0;
	local_vec_t lv = {0};
	if (cloud_driver_open(c->url, c->user, c->password, &r.d, &e) != OHB_OK ||
	    cloud_list(r.d, s->cloud_dir, &cv, &cn, &e) != OHB_OK || ce_scan(s, &lv, &e) != OHB_OK) {
		run_error(&r, OHB_CLOUD_SYNC_DOWNLOAD_FAILED, &e, sync_error_type(e.code));
	} else {
		download_stage(&r, cv, cn, &lv);
		if (!run_stopping(&r)) {
			pthread_mutex_lock(&c->lock);
			push_sync(s, OHB_CLOUD_SYNC_UPLOADING, 0, 0, NULL);
			pthread_mutex_unlock(&c->lock);
			upload_stage(&r, cv, cn);
		}
	}
	ce_local_vec_free(&lv);
	cloud_entries_free(cv, cn);
	cloud_driver_close(r.d);

	pthread_mutex_lock(&c->lock);
	bool stopped = s->stop;
	bool completed = !stopped && !r.first_code;
	if (completed) {
		s->status.last_sync_ms = ce_now_ms();
		cst_set_last_sync(s->store, s->status.last_sync_ms);
	}
	pthread_mutex_unlock(&c->lock);
	ce_save_store(s, true);

	pthread_mutex_lock(&c->lock);
	if (stopped)
		push_sync(s, OHB_CLOUD_SYNC_STOPPED, 0, 0, NULL);
	else if (r.first_code)
		push_sync(s, r.first_stage, r.first_type, r.first_code, r.first_message);
	else
		push_sync(s, OHB_CLOUD_SYNC_COMPLETED, 0, 0, NULL);
	s->status.current[0] = '\0';
	s->running = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- the API ---------------------------------------------------------------------- */

int
ohb_cloud_sync_start(ohb_cloud_sync_t *s, bool forced, ohb_error_t *err)
{
	if (!s)
		return ohb_fail(err, OHB_E_PARAM, "no sync scope");
	ohb_cloud_t *c = s->c;
	pthread_mutex_lock(&c->lock);
	if (s->running && !s->stop) {
		pthread_mutex_unlock(&c->lock);
		return OHB_OK;   /* coalesced with the run going on */
	}
	pthread_mutex_unlock(&c->lock);

	int pct;
	bool charging;
	cloud_battery_read(c->power_dir, &pct, &charging);
	ohb_cloud_error_type_t why;
	if (cloud_battery_verdict(pct, charging, forced, &why) != 0)
		return ohb_fail(err, CLOUD_E_BATTERY,
		    why == OHB_CLOUD_ERR_BATTERY_LEVEL_LOW
		        ? "the battery is at %d %% and not charging: below %d %% no sync starts"
		        : "the battery is at %d %% and not charging: below %d %% a sync starts only when forced",
		    pct, why == OHB_CLOUD_ERR_BATTERY_LEVEL_LOW ? CLOUD_BATTERY_LOW : CLOUD_BATTERY_WARNING);

	pthread_mutex_lock(&c->lock);
	while (s->running && s->stop)
		pthread_cond_wait(&c->cond, &c->lock);   /* a stopped run winding down */
	if (s->running) {
		pthread_mutex_unlock(&c->lock);
		return OHB_OK;   /* another caller started one meanwhile */
	}
	bool join = s->joinable;
	s->joinable = false;
	pthread_mutex_unlock(&c->lock);
	if (join)
		pthread_join(s->thread, NULL);
	pthread_mutex_lock(&c->lock);
	if (s->running || s->joinable) {
		pthread_mutex_unlock(&c->lock);
		return OHB_OK;   /* another caller started one meanwhile */
	}
	int rc = fsu_mkdir_p(s->local_dir, 0755, err);
	if (rc != OHB_OK) {
		pthread_mutex_unlock(&c->lock);
		return rc;
	}
	s->running = true;
	s->stop = false;
	s->forced = forced;
	if (pthread_create(&s->thread, NULL, sync_main, s) != 0) {
		s->running = false;
		pthread_mutex_unlock(&c->lock);
		return ohb_fail(err, OHB_E_NOMEM, "cannot start the sync thread");
	}
	s->joinable = true;
	pthread_mutex_unlock(&c->lock);
	return OHB_OK;
}

int
ohb_cloud_sync_stop(ohb_cloud_sync_t *s, ohb_error_t *err)
{
	if (!s)
		return ohb_fail(err, OHB_E_PARAM, "no sync scope");
	pthread_mutex_lock(&s->c->lock);
	if (s->running)
		s->stop = true;
	pthread_mutex_unlock(&s->c->lock);
	return OHB_OK;
}

void
cr_stop_and_join(ohb_cloud_sync_t *s)
{
	ohb_cloud_t *c = s->c;
	pthread_mutex_lock(&c->lock);
	if (s->running)
		s->stop = true;
	while (s->running)
		pthread_cond_wait(&c->cond, &c->lock);
	bool join = s->joinable;
	s->joinable = false;
	pthread_mutex_unlock(&c->lock);
	if (join)
		pthread_join(s->thread, NULL);
}

int
ohb_cloud_sync_on(ohb_cloud_sync_t *s, ohb_cloud_sync_cb_t cb, void *user, ohb_error_t *err)
{
	if (!s || !cb)
		return ohb_fail(err, OHB_E_PARAM, "on('progress') needs a callback");
	pthread_mutex_lock(&s->c->lock);
	s->cb = cb;
	s->user = user;
	pthread_mutex_unlock(&s->c->lock);
	return OHB_OK;
}

int
ohb_cloud_sync_off(ohb_cloud_sync_t *s, ohb_cloud_sync_cb_t cb, ohb_error_t *err)
{
	if (!s)
		return ohb_fail(err, OHB_E_PARAM, "no sync scope");
	pthread_mutex_lock(&s->c->lock);
	int rc = OHB_OK;
	if (cb && s->cb && cb != s->cb)
		rc = ohb_fail(err, OHB_E_PARAM, "off('progress'): that callback is not registered");
	else
		s->cb = NULL;
	pthread_mutex_unlock(&s->c->lock);
	return rc;
}

int
ohb_cloud_sync_last_time(ohb_cloud_sync_t *s, int64_t *ms, ohb_error_t *err)
{
	if (!s || !ms)
		return ohb_fail(err, OHB_E_PARAM, "getLastSyncTime needs a scope and a result");
	pthread_mutex_lock(&s->c->lock);
	*ms = s->status.last_sync_ms;
	pthread_mutex_unlock(&s->c->lock);
	return OHB_OK;
}

int
ohb_cloud_sync_get_status(ohb_cloud_sync_t *s, ohb_cloud_sync_status_t *out, ohb_error_t *err)
{
	if (!s || !out)
		return ohb_fail(err, OHB_E_PARAM, "sync status needs a scope and a result");
	pthread_mutex_lock(&s->c->lock);
	*out = s->status;
	out->running = s->running;
	pthread_mutex_unlock(&s->c->lock);
	return OHB_OK;
}

/* ---- GallerySync: the gallery's scope ------------------------------------------- */

int
ohb_cloud_gallery_start(ohb_cloud_t *c, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	return ohb_cloud_sync_start(ohb_cloud_gallery(c), false, err);
}

int
ohb_cloud_gallery_stop(ohb_cloud_t *c, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	return ohb_cloud_sync_stop(ohb_cloud_gallery(c), err);
}

int
ohb_cloud_gallery_on(ohb_cloud_t *c, ohb_cloud_sync_cb_t cb, void *user, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	return ohb_cloud_sync_on(ohb_cloud_gallery(c), cb, user, err);
}

int
ohb_cloud_gallery_off(ohb_cloud_t *c, ohb_cloud_sync_cb_t cb, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	return ohb_cloud_sync_off(ohb_cloud_gallery(c), cb, err);
}
