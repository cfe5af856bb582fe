/*
 * cloud_download — Download and CloudFileCache (cloud_engine.h): one thread
 * per file, pulling the cloud's version into its scope's folder through
 * ct_fetch. Both refuse a uri that is already being transferred (22400006).
 * They differ in what a stop leaves: Download.stop deletes the partial file;
 * CloudFileCache.stop(uri, false) keeps it, and the next CloudFileCache.start
 * resumes it when the cloud's version is still the one it began from.
 * A local file is overwritten only when it is what the last sync left;
 * otherwise the download becomes a conflict copy beside it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloud_engine.h"
#include "errors.h"
#include "fsutil.h"

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

static void
push_download(download_t *dl, int state, int error, int code, const char *message, uint64_t processed)
{
	event_t ev = {0};
	ev.kind = dl->cache ? EV_CACHE : EV_DOWNLOAD;
	ev.state = state;
	ev.error = error;
	ev.code = code;
	ev.message = (char *)message;
	ev.uri = dl->uri;
	ev.processed = processed;
	ev.size = dl->entry.size;
	ce_push_locked(dl->c, &ev);
}

static void *
download_main(void *arg)
{
	download_t *dl = arg;
	ohb_cloud_t *c = dl->c;
	ohb_cloud_sync_t *s = dl->s;
	xfer_t x = {0};
	x.c = c;
	x.stop = &dl->stop;
	x.dl = dl;
	x.start_ms = fsu_mono_ms();
	ohb_error_t e = {0};
	cloud_driver_t *d = NULL;
	place_t placed = PLACE_SAME;
	struct stat st;
	int rc = ce_driver_open(c, &d, &e);
	if (rc == OHB_OK) {
		struct stat lst;
		local_file_t lf = {dl->rel, 0, 0, 0};
		const local_file_t *expect = NULL;
		bool conflict = false;
		if (ce_stat(s, dl->rel, &lst)) {
			lf.size = (uint64_t)lst.st_size;
			lf.mtime_ns = ce_mtime_ns(&lst);
			expect = &lf;
			cst_rec_t b;
			conflict = !(ce_base_of(s, dl->rel, &b) && cst_rec_matches(&b, lf.size, lf.mtime_ns));
		}
		rc = ct_fetch(s, d, dl->rel, &dl->entry, expect, conflict, &x, &placed, &st, &e);
	}
	cloud_driver_close(d);
	if (rc == OHB_OK && placed != PLACE_CONFLICT)
		ce_record_synced(s, dl->rel, OHB_CLOUD_FILE_COMPLETED, &st, dl->entry.etag);
	else if (rc == CLOUD_CANCELLED)
		ce_record_state(s, dl->rel, OHB_CLOUD_FILE_STOPPED);
	ce_save_store(s, true);

	pthread_mutex_lock(&c->lock);
	ce_active_clear_locked(s, dl->rel);
	if (rc == OHB_OK)
		push_download(dl, OHB_CLOUD_DL_COMPLETED, 0, 0, NULL, dl->entry.size);
	else if (rc == CLOUD_CANCELLED)
		push_download(dl, OHB_CLOUD_DL_STOPPED, 0, 0, NULL, x.last_done);
	else
		push_download(dl, OHB_CLOUD_DL_FAILED, download_error_type(e.code), e.code, e.message, x.last_done);
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

void
cd_reap(ohb_cloud_t *c)
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

/* Download.start / CloudFileCache.start: the cloud file is looked up first
 * (missing -> 13900002), then a thread fetches it. */
static int
start(ohb_cloud_t *c, const char *uri, bool cache, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	ohb_cloud_sync_t *s;
	char *rel;
	int rc = ce_uri_parse(c, uri, &s, &rel, err);
	if (rc != OHB_OK)
		return rc;
	cd_reap(c);
	download_t *dl = calloc(1, sizeof *dl);
	if (!dl) {
		free(rel);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	dl->c = c;
	dl->s = s;
	dl->rel = rel;
	dl->cache = cache;
	dl->uri = strdup(uri);
	char *cpath = ce_cloud_path(s, rel);
	cloud_driver_t *d = NULL;
	if (!dl->uri || !cpath) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	} else if ((rc = ce_driver_open(c, &d, err)) == OHB_OK) {
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
	if (ce_active_find_locked(s, rel)) {
		pthread_mutex_unlock(&c->lock);
		download_free(dl);
		return ohb_fail(err, CLOUD_E_BUSY, "%s is already being transferred", uri);
	}
	ce_active_set_locked(s, rel, OHB_CLOUD_FILE_DOWNLOADING);
	push_download(dl, OHB_CLOUD_DL_RUNNING, 0, 0, NULL, 0);
	if (pthread_create(&dl->thread, NULL, download_main, dl) != 0) {
		ce_active_clear_locked(s, rel);
		pthread_mutex_unlock(&c->lock);
		download_free(dl);
		return ohb_fail(err, OHB_E_NOMEM, "cannot start a download thread");
	}
	dl->next = c->downloads;
	c->downloads = dl;
	pthread_mutex_unlock(&c->lock);
	return OHB_OK;
}

/* Stops the uri's download of that kind and waits for it to end, so the
 * partial file is gone (or kept, keep_partial) when stop returns. The
 * download thread never waits on the dispatcher: no deadlock. */
static int
stop(ohb_cloud_t *c, const char *uri, bool cache, bool keep_partial, ohb_error_t *err)
{
	if (!c)
		return ohb_fail(err, OHB_E_PARAM, "no cloud engine");
	ohb_cloud_sync_t *s;
	char *rel;
	int rc = ce_uri_parse(c, uri, &s, &rel, err);
	if (rc != OHB_OK)
		return rc;
	pthread_mutex_lock(&c->lock);
	for (download_t *dl = c->downloads; dl; dl = dl->next) {
		if (dl->s != s || dl->cache != cache || strcmp(dl->rel, rel) != 0 || dl->finished)
			continue;
		dl->stop = true;
		dl->keep_partial = keep_partial;
		while (!dl->finished)
			pthread_cond_wait(&c->cond, &c->lock);
		break;
	}
	pthread_mutex_unlock(&c->lock);
	free(rel);
	return OHB_OK;
}

int
ohb_cloud_download_start(ohb_cloud_t *c, const char *uri, ohb_error_t *err)
{
	return start(c, uri, false, err);
}

int
ohb_cloud_download_stop(ohb_cloud_t *c, const char *uri, ohb_error_t *err)
{
	return stop(c, uri, false, false, err);
}

int
ohb_cloud_cache_start(ohb_cloud_t *c, const char *uri, ohb_error_t *err)
{
	return start(c, uri, true, err);
}

int
ohb_cloud_cache_stop(ohb_cloud_t *c, const char *uri, bool need_clean, ohb_error_t *err)
{
	return stop(c, uri, true, !need_clean, err);
}

/* on/off for the two listeners. */
static int
listen_on(ohb_cloud_t *c, ohb_cloud_download_cb_t *slot, void **slot_user, ohb_cloud_download_cb_t cb, void *user,
    ohb_error_t *err)
{
	if (!c || !cb)
		return ohb_fail(err, OHB_E_PARAM, "on('progress') needs a callback");
	pthread_mutex_lock(&c->lock);
	*slot = cb;
	*slot_user = user;
	pthread_mutex_unlock(&c->lock);
	return OHB_OK;
}

static int
listen_off(ohb_cloud_t *c, ohb_cloud_download_cb_t *slot, ohb_cloud_download_cb_t cb, ohb_error_t *err)
{
	int rc = OHB_OK;
	pthread_mutex_lock(&c->lock);
	if (cb && *slot && cb != *slot)
		rc = ohb_fail(err, OHB_E_PARAM, "off('progress'): that callback is not registered");
	else
		*slot = NULL;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int
ohb_cloud_download_on(ohb_cloud_t *c, ohb_cloud_download_cb_t cb, void *user, ohb_error_t *err)
{
	return c ? listen_on(c, &c->dl_cb, &c->dl_user, cb, user, err)
	         : ohb_fail(err, OHB_E_PARAM, "no cloud engine");
}

int
ohb_cloud_download_off(ohb_cloud_t *c, ohb_cloud_download_cb_t cb, ohb_error_t *err)
{
	return c ? listen_off(c, &c->dl_cb, cb, err) : ohb_fail(err, OHB_E_PARAM, "no cloud engine");
}

int
ohb_cloud_cache_on(ohb_cloud_t *c, ohb_cloud_download_cb_t cb, void *user, ohb_error_t *err)
{
	return c ? listen_on(c, &c->cache_cb, &c->cache_user, cb, user, err)
	         : ohb_fail(err, OHB_E_PARAM, "no cloud engine");
}

int
ohb_cloud_cache_off(ohb_cloud_t *c, ohb_cloud_download_cb_t cb, ohb_error_t *err)
{
	return c ? listen_off(c, &c->cache_cb, cb, err) : ohb_fail(err, OHB_E_PARAM, "no cloud engine");
}
