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
 *   deleted locally, unchanged in the cloud       -> moved to the cloud's trash
 *                                                    .trash/<scope>/<path>.<UTC time>
 *   deleted in the cloud, unchanged locally       -> moved to the device's trash
 *                                                    <root>/cloud/trash/<scope>/<path>.<UTC time>
 *   deleted on one side, changed on the other     -> the changed one is copied back
 *
 * A deletion is never a plain unlink: both trashes keep what was removed. And
 * when one side holds no file at all while the other has synced files (an
 * unmounted folder, a cloud pointed at an empty directory), nothing is
 * deleted: the run copies the files back instead. Errors accumulate: the run goes on with the
 * next file, except after "network unavailable" or a battery that ran low,
 * which end it; the run ends DOWNLOAD_FAILED or UPLOAD_FAILED with the first
 * error, else COMPLETED (which sets the scope's last sync time), or STOPPED
 * after stop().
 */
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

#define BATTERY_CHECK_MS 5000

typedef struct run {
	ohb_cloud_sync_t *s;
	bool may_delete_cloud;       /* the local folder is not empty */
	bool may_delete_local;       /* the cloud folder is not empty */
	char stamp[32];              /* the run's UTC time, for trash names */
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
	/* What ohb_cloud_sync_get_status reports: the last SyncProgress, and the
	 * run's error (cleared when a run begins). */
	s->status.state = (ohb_cloud_sync_state_t)state;
	if (state == OHB_CLOUD_SYNC_DOWNLOADING)
		s->status.code = 0;
	else if (code)
		s->status.code = code;
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
typedef enum { DL_SKIP, DL_FETCH, DL_PLACEHOLDER, DL_TRASH_CLOUD } dl_action_t;

static dl_action_t
download_action(const run_t *r, const cloud_entry_t *ce, const local_file_t *lf, cst_rec_t *b, bool *conflict)
{
	ohb_cloud_sync_t *s = r->s;
	bool has_rec = ce_base_of(s, ce->path + strlen(s->cloud_dir) + 1, b);
	bool has_b = has_rec && b->has_base;
	*conflict = false;
	if (has_rec && b->evicted) {
		if (!lf)
			return DL_PLACEHOLDER;   /* evicted on purpose: stays in the cloud */
		has_b = false;               /* a local file came back: compare before anything moves */
	}
	bool cloud_changed = !has_b || strcmp(b->etag, ce->etag) != 0;
	bool local_changed = lf && !(has_b && cst_rec_matches(b, lf->size, lf->mtime_ns));
	if (!cloud_changed && lf)
		return DL_SKIP;   /* the cloud has what we synced; an upload, if any, is the next stage's */
	if (!cloud_changed && !lf && r->may_delete_cloud)
		return DL_TRASH_CLOUD;   /* deleted on the device since the last sync */
	/* Both sides changed since the base: a conflict. New on both sides (no
	 * base): ct_fetch compares the bytes and keeps both only if they differ. */
	*conflict = lf && local_changed;
	return DL_FETCH;
}

/* Drops the record of a file gone from both sides. */
static void
forget(ohb_cloud_sync_t *s, const char *rel)
{
	pthread_mutex_lock(&s->c->lock);
	cst_remove(s->store, rel);
	pthread_mutex_unlock(&s->c->lock);
	ce_save_store(s, false);
}

/* Moves the cloud file cpath to the cloud's trash. */
static int
trash_cloud(run_t *r, const char *cpath, ohb_error_t *err)
{
	char *to = fsu_printf(".trash/%s.%s", cpath, r->stamp);
	if (!to)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	int rc = cloud_move(r->d, cpath, to, err);
	if (rc == OHB_E_INVAL) {   /* the same name trashed in this run's second: number it */
		for (int k = 2; k < 100 && rc == OHB_E_INVAL; k++) {
			free(to);
			to = fsu_printf(".trash/%s.%s-%d", cpath, r->stamp, k);
			rc = to ? cloud_move(r->d, cpath, to, err) : ohb_fail(err, OHB_E_NOMEM, "out of memory");
		}
	}
	free(to);
	return rc == OHB_E_NOENT ? OHB_OK : rc;   /* already gone: nothing to keep */
}

/* Moves the local file rel to <root>/cloud/trash/<scope>/<rel>.<stamp>:
 * a rename, or a synced copy and an unlink across file systems. */
static int
trash_local(run_t *r, const local_file_t *lf, ohb_error_t *err)
{
	ohb_cloud_sync_t *s = r->s;
	char *dst = fsu_printf("%s/cloud/trash/%s/%s.%s", s->c->root, s->label, lf->path, r->stamp);
	if (!dst)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	char *slash = strrchr(dst, '/');
	*slash = '\0';
	int rc = fsu_mkdir_p(dst, 0700, err);
	*slash = '/';
	int pfd = -1;
	const char *leaf;
	if (rc == OHB_OK)
		rc = ce_parent(s, lf->path, false, &pfd, &leaf, err);
	struct stat st;
	if (rc == OHB_OK && (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
	                        (uint64_t)st.st_size != lf->size || ce_mtime_ns(&st) != lf->mtime_ns))
		rc = ohb_fail(err, OHB_E_PERM, "%s changed while the sync looked at it: kept", lf->path);
	if (rc == OHB_OK && renameat(pfd, leaf, AT_FDCWD, dst) != 0) {
		if (errno != EXDEV) {
			rc = ohb_fail_errno(err, errno, "cannot move %s to the trash", lf->path);
		} else {
			int fd = openat(pfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
			*slash = '\0';
			rc = fd < 0 ? ohb_fail_errno(err, errno, "cannot open %s", lf->path)
			            : fsu_copy_fd_atomic(fd, dst, slash + 1, 0600, NULL, err);
			*slash = '/';
			if (fd >= 0)
				close(fd);
			if (rc == OHB_OK && unlinkat(pfd, leaf, 0) != 0)
				rc = ohb_fail_errno(err, errno, "cannot remove %s after copying it to the trash", lf->path);
		}
	}
	if (rc == OHB_OK)
		fsync(pfd);
	if (pfd >= 0)
		close(pfd);
	free(dst);
	return rc;
}

static void
download_stage(run_t *r, const cloud_entry_t *cv, size_t cn, const local_vec_t *lv)
{
	ohb_cloud_sync_t *s = r->s;
	size_t skip = strlen(s->cloud_dir) + 1;
	uint64_t files = 0, bytes = 0;
	for (size_t i = 0; i < cn; i++) {
		cst_rec_t b;
		bool conflict;
		if (ce_in_scope(s, &cv[i]) &&
		    download_action(r, &cv[i], ce_local_find(lv, cv[i].path + skip), &b, &conflict) == DL_FETCH) {
			files++;
			bytes += cv[i].size;
		}
	}
	stage_begin(s, files, bytes);
	for (size_t i = 0; i < cn && !run_stopping(r); i++) {
		const cloud_entry_t *ce = &cv[i];
		if (!ce_in_scope(s, ce))
			continue;
		const char *rel = ce->path + skip;
		const local_file_t *lf = ce_local_find(lv, rel);
		cst_rec_t b;
		bool conflict;
		dl_action_t act = download_action(r, ce, lf, &b, &conflict);
		if (act == DL_TRASH_CLOUD && !ce_busy(s, rel)) {
			ohb_error_t te;
			if (trash_cloud(r, ce->path, &te) == OHB_OK)
				forget(s, rel);
			else
				run_error(r, OHB_CLOUD_SYNC_DOWNLOAD_FAILED, &te, sync_error_type(te.code));
			continue;
		}
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
		if (!ce_claim(s, rel, OHB_CLOUD_FILE_DOWNLOADING))
			continue;   /* a Download took it since the look above */
		file_begin(s, rel);
		place_t placed = PLACE_SAME;
		struct stat st;
		ohb_error_t e;
		int rc = ct_fetch(s, r->d, rel, ce, lf, conflict, &r->x, &placed, &st, &e);
		ce_release(s, rel);
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

typedef enum { UP_SKIP, UP_PUSH, UP_TRASH_LOCAL } up_action_t;

static up_action_t
upload_action(const run_t *r, const local_file_t *lf, const cloud_entry_t *cv, size_t cn)
{
	ohb_cloud_sync_t *s = r->s;
	cst_rec_t b;
	bool has_b = ce_base_of(s, lf->path, &b) && b.has_base && !b.evicted;
	char *cpath = ce_cloud_path(s, lf->path);
	const cloud_entry_t *ce = cpath ? cloud_find(cv, cn, cpath) : NULL;
	free(cpath);
	bool in_cloud = ce && !ce->is_dir;
	bool unchanged = has_b && cst_rec_matches(&b, lf->size, lf->mtime_ns);
	if (unchanged && in_cloud)
		return UP_SKIP;   /* unchanged since the last sync */
	if (in_cloud && !has_b)
		return UP_SKIP;   /* the download stage met it and could not settle it: no blind overwrite */
	if (unchanged && !ce && r->may_delete_local)
		return UP_TRASH_LOCAL;   /* deleted in the cloud since the last sync */
	return UP_PUSH;
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
		if (upload_action(r, &lv.v[i], cv, cn) == UP_PUSH) {
			files++;
			bytes += lv.v[i].size;
		}
	}
	stage_begin(s, files, bytes);
	for (size_t i = 0; i < lv.n && !run_stopping(r); i++) {
		const local_file_t *lf = &lv.v[i];
		up_action_t act = upload_action(r, lf, cv, cn);
		if (act == UP_SKIP || ce_busy(s, lf->path))
			continue;
		if (act == UP_TRASH_LOCAL) {
			if (trash_local(r, lf, &e) == OHB_OK)
				forget(s, lf->path);
			else
				run_error(r, OHB_CLOUD_SYNC_UPLOAD_FAILED, &e, sync_error_type(e.code));
			continue;
		}
		check_battery(r, OHB_CLOUD_SYNC_UPLOAD_FAILED);
		if (r->fatal)
			break;
		if (!ce_claim(s, lf->path, OHB_CLOUD_FILE_UPLOADING))
			continue;   /* a Download took it since the look above */
		file_begin(s, lf->path);
		int rc = ct_push(s, r->d, lf->path, &r->x, &e);
		ce_release(s, lf->path);
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

/* Records of files on neither side any more (deleted on both, or an evicted
 * file the cloud deleted) are dropped, so the store does not grow forever. */
static void
forget_gone(run_t *r, const cloud_entry_t *cv, size_t cn)
{
	ohb_cloud_sync_t *s = r->s;
	pthread_mutex_lock(&s->c->lock);
	size_t n;
	const cst_rec_t *recs = cst_records(s->store, &n);
	char **gone = calloc(n ? n : 1, sizeof *gone);
	size_t ng = 0;
	for (size_t i = 0; gone && i < n; i++) {
		if (recs[i].partial_etag[0] || ce_active_find_locked(s, recs[i].path))
			continue;   /* a kept partial download still needs its record */
		char *cpath = ce_cloud_path(s, recs[i].path);
		bool in_cloud = cpath && cloud_find(cv, cn, cpath);
		free(cpath);
		if (!in_cloud && (r->may_delete_local || recs[i].evicted))
			gone[ng++] = strdup(recs[i].path);
	}
	pthread_mutex_unlock(&s->c->lock);
	for (size_t i = 0; i < ng; i++) {
		struct stat st;
		if (gone[i] && !ce_stat(s, gone[i], &st))
			forget(s, gone[i]);
		free(gone[i]);
	}
	free(gone);
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
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(r.stamp, sizeof r.stamp, "%Y%m%d-%H%M%S", &tm);
	push_sync(s, OHB_CLOUD_SYNC_DOWNLOADING, 0, 0, NULL);
	pthread_mutex_unlock(&c->lock);

	ohb_error_t e;
	cloud_entry_t *cv = NULL;
	size_t cn = 0;
	local_vec_t lv = {0};
	if (ce_driver_open(c, &r.d, &e) != OHB_OK ||
	    cloud_list(r.d, s->cloud_dir, &cv, &cn, &e) != OHB_OK || ce_scan(s, &lv, &e) != OHB_OK) {
		run_error(&r, OHB_CLOUD_SYNC_DOWNLOAD_FAILED, &e, sync_error_type(e.code));
	} else {
		pthread_mutex_lock(&c->lock);
		ce_remember_remote_locked(s, cv, cn);
		pthread_mutex_unlock(&c->lock);
		size_t in_cloud = 0;
		for (size_t i = 0; i < cn; i++)
			in_cloud += ce_in_scope(s, &cv[i]);
		r.may_delete_cloud = lv.n > 0;
		r.may_delete_local = in_cloud > 0;
		download_stage(&r, cv, cn, &lv);
		if (!run_stopping(&r)) {
			pthread_mutex_lock(&c->lock);
			push_sync(s, OHB_CLOUD_SYNC_UPLOADING, 0, 0, NULL);
			pthread_mutex_unlock(&c->lock);
			upload_stage(&r, cv, cn);
		}
		if (!run_stopping(&r))
			forget_gone(&r, cv, cn);
	}
	ce_local_vec_free(&lv);
	cloud_entries_free(cv, cn);
	cloud_driver_close(r.d);

	pthread_mutex_lock(&c->lock);
	bool stopped = s->stop;
	bool completed = !stopped && !r.first_code;
	if (completed) {
		s->status.last_sync_ms = fsu_now_ms();
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

/* ---- listing the cloud (ohb_cloud_sync_list_remote) -------------------------------- */

static void *
list_main(void *arg)
{
	ohb_cloud_sync_t *s = arg;
	ohb_cloud_t *c = s->c;
	ohb_error_t e = {0};
	cloud_driver_t *d = NULL;
	cloud_entry_t *cv = NULL;
	size_t cn = 0;
	int rc = ce_driver_open(c, &d, &e);
	if (rc == OHB_OK)
		rc = cloud_list(d, s->cloud_dir, &cv, &cn, &e);
	cloud_driver_close(d);
	pthread_mutex_lock(&c->lock);
	if (rc == OHB_OK)
		ce_remember_remote_locked(s, cv, cn);
	s->status.list_code = rc;
	snprintf(s->status.list_message, sizeof s->status.list_message, "%.255s", rc ? e.message : "");
	s->status.listing = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	cloud_entries_free(cv, cn);
	return NULL;
}

int
ohb_cloud_sync_list_remote(ohb_cloud_sync_t *s, ohb_error_t *err)
{
	if (!s)
		return ohb_fail(err, OHB_E_PARAM, "no sync scope");
	ohb_cloud_t *c = s->c;
	pthread_mutex_lock(&c->lock);
	if (s->status.listing) {
		pthread_mutex_unlock(&c->lock);
		return OHB_OK;   /* coalesced with the listing going on */
	}
	bool join = s->list_joinable;
	s->list_joinable = false;
	s->status.listing = true;
	pthread_mutex_unlock(&c->lock);
	if (join)
		pthread_join(s->list_thread, NULL);
	pthread_mutex_lock(&c->lock);
	int rc = OHB_OK;
	if (pthread_create(&s->list_thread, NULL, list_main, s) != 0) {
		s->status.listing = false;
		rc = ohb_fail(err, OHB_E_NOMEM, "cannot start a thread to list the cloud");
	} else {
		s->list_joinable = true;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
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
	while (s->status.listing)
		pthread_cond_wait(&c->cond, &c->lock);   /* a listing ends within the driver's timeouts */
	bool join_list = s->list_joinable;
	s->list_joinable = false;
	pthread_mutex_unlock(&c->lock);
	if (join)
		pthread_join(s->thread, NULL);
	if (join_list)
		pthread_join(s->list_thread, NULL);
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
