/*
 * cloud_optimize — dropping local copies of files the cloud holds
 * (cloud_engine.h): CloudFileCache.cleanCache, startOptimizeSpace /
 * stopOptimizeSpace and optimizeStorage (REFERENCE.md "cloudSync", aging).
 *
 * A local copy is dropped ("evicted") only when losing it loses nothing:
 *   - the state store has a base for it and it is not already evicted;
 *   - the local file is still what that base recorded (size and mtime): no
 *     change waits for an upload, and its last transfer neither failed nor
 *     was stopped (state COMPLETED or UPLOAD_SUCCESS);
 *   - nothing transfers it right now;
 *   - the cloud, asked just before, holds the same version (etag).
 * The file is looked at again (same size and mtime) right before unlinkat.
 * Its record stays, marked evicted: the uri keeps its state, a sync does not
 * download it again, and Download/CloudFileCache.start bring it back.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cloud_engine.h"
#include "errors.h"
#include "fsutil.h"

#define DAY_NS (86400LL * 1000000000LL)
#define STORAGE_AGING_DAYS 30

/* Why a file may not be evicted, or 0 (c->lock not held). */
static int
evictable(ohb_cloud_sync_t *s, const char *rel, uint64_t size, int64_t mtime_ns, cst_rec_t *b, ohb_error_t *err)
{
	if (!ce_base_of(s, rel, b) || !b->has_base)
		return ohb_fail(err, OHB_E_PERM, "%s has never been synced: the cloud does not hold it", rel);
	if (b->evicted)
		return ohb_fail(err, OHB_E_PERM, "%s has no local copy to drop", rel);
	if (!cst_rec_matches(b, size, mtime_ns))
		return ohb_fail(err, OHB_E_PERM, "%s changed since its last sync: the cloud does not hold this version",
		    rel);
	if (b->state != OHB_CLOUD_FILE_COMPLETED && b->state != OHB_CLOUD_FILE_UPLOAD_SUCCESS)
		return ohb_fail(err, OHB_E_PERM, "%s: its last transfer did not finish (%s)", rel,
		    ohb_cloud_file_sync_state_name((ohb_cloud_file_sync_state_t)b->state));
	if (ce_busy(s, rel))
		return ohb_fail(err, CLOUD_E_BUSY, "%s is being transferred", rel);
	return OHB_OK;
}

/* Drops the local copy of rel (already judged evictable against *b) after
 * asking the cloud; *freed gets its size. */
static int
evict(ohb_cloud_sync_t *s, cloud_driver_t *d, const char *rel, const cst_rec_t *b, uint64_t *freed,
    ohb_error_t *err)
{
	*freed = 0;
	char *cpath = ce_cloud_path(s, rel);
	if (!cpath)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	cloud_entry_t ce = {0};
	int rc = cloud_stat(d, cpath, &ce, err);
	free(cpath);
	if (rc == OHB_E_NOENT || (rc == OHB_OK && (ce.is_dir || strcmp(ce.etag, b->etag) != 0)))
		rc = ohb_fail(err, OHB_E_PERM, "the cloud no longer holds the version of %s synced last", rel);
	free(ce.path);
	if (rc != OHB_OK)
		return rc;
	int pfd;
	const char *leaf;
	rc = ce_parent(s, rel, false, &pfd, &leaf, err);
	if (rc != OHB_OK)
		return rc;
	struct stat st;
	if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
	    !cst_rec_matches(b, (uint64_t)st.st_size, ce_mtime_ns(&st))) {
		close(pfd);
		return ohb_fail(err, OHB_E_PERM, "%s changed while being looked at: kept", rel);
	}
	if (unlinkat(pfd, leaf, 0) != 0) {
		rc = ohb_fail_errno(err, errno, "cannot drop the local copy of %s", rel);
		close(pfd);
		return rc;
	}
	fsync(pfd);
	close(pfd);
	cst_rec_t r = *b;
	r.path = (char *)rel;
	r.evicted = true;
	ce_put_record(s, &r);
	*freed = (uint64_t)st.st_size;   /* totalSize counts file sizes (the media library's view) */
	return OHB_OK;
}

int
ohb_cloud_cache_clean(ohb_cloud_t *c, const char *uri, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	ohb_cloud_sync_t *s;
	char *rel;
	int rc = ce_uri_parse(c, uri, &s, &rel, err);
	if (rc != OHB_OK)
		return rc;
	struct stat st;
	bool local = ce_stat(s, rel, &st);
	cst_rec_t b;
	bool known = ce_base_of(s, rel, &b);
	if (!local && !known) {
		free(rel);
		return ohb_fail(err, OHB_E_NOENT, "no such file: %.300s", uri);
	}
	/* Any partial download goes, unless one is running right now. */
	if (ce_busy(s, rel)) {
		free(rel);
		return ohb_fail(err, CLOUD_E_BUSY, "%.300s is being transferred", uri);
	}
	int pfd;
	const char *leaf;
	if (ce_parent(s, rel, false, &pfd, &leaf, NULL) == OHB_OK) {
		char *tmp = fsu_printf("%s" CLOUD_TEMP_SUFFIX, leaf);
		if (tmp)
			unlinkat(pfd, tmp, 0);
		free(tmp);
		close(pfd);
	}
	if (known && b.partial_etag[0]) {
		b.path = rel;
		b.partial_etag[0] = '\0';
		ce_put_record(s, &b);
	}
	if (!local) {
		ce_save_store(s, true);
		free(rel);
		return OHB_OK;   /* nothing local: already only in the cloud */
	}
	rc = evictable(s, rel, (uint64_t)st.st_size, ce_mtime_ns(&st), &b, err);
	cloud_driver_t *d = NULL;
	if (rc == OHB_OK)
		rc = ce_driver_open(c, &d, err);
	uint64_t freed;
	if (rc == OHB_OK)
		rc = evict(s, d, rel, &b, &freed, err);
	cloud_driver_close(d);
	ce_save_store(s, true);
	free(rel);
	return rc;
}

/* ---- optimize space ---------------------------------------------------------------- */

typedef struct candidate {
	const local_file_t *lf;
	cst_rec_t base;
} candidate_t;

static int
oldest_first(const void *a, const void *b)
{
	int64_t x = ((const candidate_t *)a)->lf->atime_ns, y = ((const candidate_t *)b)->lf->atime_ns;
	return x < y ? -1 : x > y;
}

static void
push_optimize(ohb_cloud_t *c, int state, uint64_t freed, uint64_t total, uint64_t files, int code,
    const char *message)
{
	event_t ev = {0};
	ev.kind = EV_OPTIMIZE;
	ev.state = state;
	ev.processed = freed;
	ev.size = total;
	ev.files = files;
	ev.code = code;
	ev.message = (char *)message;
	ce_push_locked(c, &ev);
}

static bool
opt_stopping(ohb_cloud_t *c)
{
	pthread_mutex_lock(&c->lock);
	bool stop = c->opt_stop;
	pthread_mutex_unlock(&c->lock);
	return stop;
}

/* One aging pass over the gallery: evicts the candidates, oldest access
 * first, until `total` bytes are freed. Events only when `events`. Returns
 * the final OptimizeState; *freed and the error say the rest. */
static int
aging_pass(ohb_cloud_t *c, uint64_t total, uint32_t days, bool events, uint64_t *freed_out, ohb_error_t *err)
{
	ohb_cloud_sync_t *s = ohb_cloud_gallery(c);
	uint64_t freed = 0, files = 0;
	*freed_out = 0;
	local_vec_t lv;
	if (ce_scan(s, &lv, err) != OHB_OK)
		return OHB_CLOUD_OPT_FAILED;
	candidate_t *cand = calloc(lv.n ? lv.n : 1, sizeof *cand);
	if (!cand) {
		ce_local_vec_free(&lv);
		ohb_fail(err, OHB_E_NOMEM, "out of memory choosing files to drop");
		return OHB_CLOUD_OPT_FAILED;
	}
	int64_t cutoff = fsu_now_ms() * 1000000LL - (int64_t)days * DAY_NS;
	size_t nc = 0;
	for (size_t i = 0; i < lv.n; i++) {
		const local_file_t *lf = &lv.v[i];
		if (lf->atime_ns > cutoff)
			continue;
		if (evictable(s, lf->path, lf->size, lf->mtime_ns, &cand[nc].base, NULL) == OHB_OK) {
			cand[nc].lf = lf;
			nc++;
		}
	}
	if (nc > 1)
		qsort(cand, nc, sizeof *cand, oldest_first);
	int state = OHB_CLOUD_OPT_COMPLETED;
	cloud_driver_t *d = NULL;
	if (nc > 0 && ce_driver_open(c, &d, err) != OHB_OK)
		state = OHB_CLOUD_OPT_FAILED;
	for (size_t i = 0; state == OHB_CLOUD_OPT_COMPLETED && i < nc && freed < total; i++) {
		if (events && opt_stopping(c)) {
			state = OHB_CLOUD_OPT_STOPPED;
			break;
		}
		uint64_t got;
		ohb_error_t e;
		/* The base may have moved since the candidates were chosen: judge again. */
		int rc = evictable(s, cand[i].lf->path, cand[i].lf->size, cand[i].lf->mtime_ns, &cand[i].base, &e);
		if (rc == OHB_OK)
			rc = evict(s, d, cand[i].lf->path, &cand[i].base, &got, &e);
		if (rc == CLOUD_E_NETWORK || rc == CLOUD_E_NOT_READY || rc == OHB_E_NOMEM) {
			if (err)
				*err = e;
			state = OHB_CLOUD_OPT_FAILED;
			break;
		}
		if (rc != OHB_OK)
			continue;   /* this one is not safe to drop: the next */
		freed += got;
		files++;
		ce_save_store(s, false);
		if (events) {
			pthread_mutex_lock(&c->lock);
			push_optimize(c, OHB_CLOUD_OPT_RUNNING, freed, total, files, 0, NULL);
			pthread_mutex_unlock(&c->lock);
		}
	}
	cloud_driver_close(d);
	ce_save_store(s, true);
	free(cand);
	ce_local_vec_free(&lv);
	*freed_out = freed;
	if (events) {
		pthread_mutex_lock(&c->lock);
		if (state == OHB_CLOUD_OPT_FAILED)
			push_optimize(c, state, freed, total, files, err ? err->code : OHB_E_UNKNOWN, err ? err->message : "");
		else
			push_optimize(c, state, freed, total, files, 0, NULL);
		pthread_mutex_unlock(&c->lock);
	}
	return state;
}

static void *
optimize_main(void *arg)
{
	ohb_cloud_t *c = arg;
	pthread_mutex_lock(&c->lock);
	uint64_t total = c->opt_total;
	uint32_t days = c->opt_days;
	pthread_mutex_unlock(&c->lock);
	uint64_t freed;
	ohb_error_t e = {0};
	aging_pass(c, total, days, true, &freed, &e);
	pthread_mutex_lock(&c->lock);
	c->opt_running = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Waits for a finished optimize thread (c->lock not held). */
static void
join_finished(ohb_cloud_t *c)
{
	pthread_mutex_lock(&c->lock);
	bool join = c->opt_joinable && !c->opt_running;
	if (join)
		c->opt_joinable = false;
	pthread_mutex_unlock(&c->lock);
	if (join)
		pthread_join(c->opt_thread, NULL);
}

int
ohb_cloud_optimize_start(ohb_cloud_t *c, uint64_t total_size, uint32_t aging_days, ohb_cloud_optimize_cb_t cb,
    void *user, ohb_error_t *err)
{
	if (!c || !cb)
		return ohb_fail(err, OHB_E_PARAM, "startOptimizeSpace needs a progress callback");
	if (total_size == 0)
		return ohb_fail(err, OHB_E_PARAM, "startOptimizeSpace needs a totalSize above 0");
	join_finished(c);
	pthread_mutex_lock(&c->lock);
	if (c->opt_running || c->opt_joinable) {
		pthread_mutex_unlock(&c->lock);
		return ohb_fail(err, CLOUD_E_BUSY, "space is already being optimized");
	}
	c->opt_running = true;
	c->opt_stop = false;
	c->opt_total = total_size;
	c->opt_days = aging_days;
	c->opt_cb = cb;
	c->opt_user = user;
	if (pthread_create(&c->opt_thread, NULL, optimize_main, c) != 0) {
		c->opt_running = false;
		pthread_mutex_unlock(&c->lock);
		return ohb_fail(err, OHB_E_NOMEM, "cannot start the optimize thread");
	}
	c->opt_joinable = true;
	pthread_mutex_unlock(&c->lock);
	return OHB_OK;
}

void
co_stop_and_join(ohb_cloud_t *c)
{
	pthread_mutex_lock(&c->lock);
	if (c->opt_running)
		c->opt_stop = true;
	while (c->opt_running)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	join_finished(c);
}

int
ohb_cloud_optimize_stop(ohb_cloud_t *c, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	co_stop_and_join(c);
	return OHB_OK;
}

int
ohb_cloud_optimize_storage(ohb_cloud_t *c, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	join_finished(c);
	ohb_cloud_sync_t *s = ohb_cloud_gallery(c);
	struct statvfs vs;
	if (statvfs(s->local_dir, &vs) != 0)
		return ohb_fail_errno(err, errno, "cannot read the free space of %s", s->local_dir);
	uint64_t size = (uint64_t)vs.f_blocks * vs.f_frsize;
	uint64_t avail = (uint64_t)vs.f_bavail * vs.f_frsize;
	uint64_t goal = size / 100u * c->free_percent;
	if (avail >= goal)
		return OHB_OK;   /* enough room already */
	pthread_mutex_lock(&c->lock);
	if (c->opt_running || c->opt_joinable) {
		pthread_mutex_unlock(&c->lock);
		return ohb_fail(err, CLOUD_E_BUSY, "space is already being optimized");
	}
	c->opt_running = true;   /* keeps a startOptimizeSpace out meanwhile */
	pthread_mutex_unlock(&c->lock);
	uint64_t freed;
	ohb_error_t e = {0};
	int state = aging_pass(c, goal - avail, STORAGE_AGING_DAYS, false, &freed, &e);
	pthread_mutex_lock(&c->lock);
	c->opt_running = false;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (state == OHB_CLOUD_OPT_FAILED) {
		if (err)
			*err = e;
		return e.code ? e.code : OHB_E_UNKNOWN;
	}
	return OHB_OK;
}
