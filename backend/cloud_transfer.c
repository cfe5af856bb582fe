/*
 * cloud_transfer — one file between a scope's folder and the cloud
 * (cloud_engine.h): ct_fetch downloads through "<name>.temp.download" (fsync,
 * the cloud's mtime, rename, fsync of the folder) and never overwrites a
 * local file that changed meanwhile (it becomes a conflict copy); ct_push
 * uploads (the driver makes that atomic in the cloud). Both report progress
 * to a Download listener or a sync run's counters, honour the engine's
 * bandwidth cap and stop within ~100 ms of a cancel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cloud_engine.h"
#include "errors.h"
#include "fsutil.h"

bool
ce_xfer_cancelled(void *ctx)
{
	xfer_t *x = ctx;
	pthread_mutex_lock(&x->c->lock);
	bool stop = *x->stop;
	pthread_mutex_unlock(&x->c->lock);
	return stop;
}

/* Progress of a transfer: a Download event or a run's counters, and the
 * bandwidth cap (a sleep in slices of at most 50 ms, so cancel stays prompt). */
static void
xfer_progress(void *ctx, uint64_t done, uint64_t total)
{
	xfer_t *x = ctx;
	ohb_cloud_t *c = x->c;
	if (done != x->last_done && (x->dl || x->status)) {
		pthread_mutex_lock(&c->lock);
		if (x->dl) {
			event_t ev = {0};
			ev.kind = x->dl->cache ? EV_CACHE : EV_DOWNLOAD;
			ev.state = OHB_CLOUD_DL_RUNNING;
			ev.uri = x->dl->uri;
			ev.processed = done;
			ev.size = total;
			ce_push_locked(c, &ev);
		}
		if (x->status && done > x->last_done)
			x->status->bytes_done += done - x->last_done;
		pthread_mutex_unlock(&c->lock);
	}
	x->last_done = done;
	if (c->rate_limit == 0 || done < x->base)
		return;
	int64_t due = x->start_ms + (int64_t)((done - x->base) * 1000 / c->rate_limit);
	for (int64_t now = fsu_mono_ms(); now < due && !ce_xfer_cancelled(x); now = fsu_mono_ms()) {
		int64_t ms = due - now < 50 ? due - now : 50;
		struct timespec ts = {0, (long)ms * 1000000L};
		nanosleep(&ts, NULL);
	}
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

/* Records (or clears, etag "") the version a kept partial download of rel
 * was started from, and writes the store at once: a crash mid-download then
 * still knows what the partial file is. */
static void
note_partial(ohb_cloud_sync_t *s, const char *rel, const char *etag)
{
	cst_rec_t r;
	if (!ce_base_of(s, rel, &r)) {
		if (!*etag)
			return;
		memset(&r, 0, sizeof r);
		r.state = OHB_CLOUD_FILE_DOWNLOADING;   /* never shown: active state wins, then STOPPED */
	}
	r.path = (char *)rel;
	snprintf(r.partial_etag, sizeof r.partial_etag, "%s", etag);
	ce_put_record(s, &r);
	ce_save_store(s, true);
}

/* Opens the temp file: resumed (*offset > 0) when this is a CloudFileCache
 * download and the partial file was started from the cloud's current
 * version; else created empty. */
static int
open_temp(ohb_cloud_sync_t *s, int pfd, const char *tmp, const char *rel, const cloud_entry_t *ce, bool resumable,
    uint64_t *offset)
{
	*offset = 0;
	if (resumable) {
		cst_rec_t r;
		struct stat st;
		int fd = -1;
		if (ce_base_of(s, rel, &r) && r.partial_etag[0] && strcmp(r.partial_etag, ce->etag) == 0 &&
		    (fd = openat(pfd, tmp, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) >= 0 && fstat(fd, &st) == 0 &&
		    S_ISREG(st.st_mode) && (uint64_t)st.st_size <= ce->size && lseek(fd, 0, SEEK_END) >= 0) {
			*offset = (uint64_t)st.st_size;
			return fd;
		}
		if (fd >= 0)
			close(fd);
	}
	unlinkat(pfd, tmp, 0);
	int fd = openat(pfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd >= 0 && resumable)
		note_partial(s, rel, ce->etag);
	return fd;
}

int
ct_fetch(ohb_cloud_sync_t *s, cloud_driver_t *d, const char *rel, const cloud_entry_t *ce,
    const local_file_t *expect, bool want_conflict, xfer_t *x, place_t *placed, struct stat *st, ohb_error_t *err)
{
	int pfd;
	const char *leaf;
	int rc = ce_parent(s, rel, true, &pfd, &leaf, err);
	if (rc != OHB_OK)
		return rc;
	char *tmp = fsu_printf("%s" CLOUD_TEMP_SUFFIX, leaf);
	char *cpath = ce_cloud_path(s, rel);
	if (!tmp || !cpath) {
		free(tmp);
		free(cpath);
		close(pfd);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	bool resumable = x->dl && x->dl->cache;
	uint64_t offset = 0;
	int fd = open_temp(s, pfd, tmp, rel, ce, resumable, &offset);
	if (fd < 0) {
		rc = ohb_fail_errno(err, errno, "cannot create %s" CLOUD_TEMP_SUFFIX " in the %s folder", rel, s->label);
		goto out;
	}
	x->start_ms = fsu_mono_ms();
	x->base = offset;
	x->last_done = offset;
	cloud_transfer_t t = {x, xfer_progress, ce_xfer_cancelled};
	rc = cloud_get(d, cpath, offset, fd, &t, err);
	if (rc == OHB_OK && fsync(fd) != 0)
		rc = ohb_fail_errno(err, errno, "cannot write %s" CLOUD_TEMP_SUFFIX, rel);
	if (rc == OHB_OK && ce->mtime_ms > 0) {
		struct timespec times[2] = {{0, UTIME_OMIT},
		    {(time_t)(ce->mtime_ms / 1000), (long)(ce->mtime_ms % 1000) * 1000000L}};
		futimens(fd, times);
	}
	if (rc != OHB_OK) {
		/* A CloudFileCache download keeps its partial file when stopped
		 * with needClean false, or when the network failed: resumable. */
		bool keep = false;
		if (resumable) {
			pthread_mutex_lock(&x->c->lock);
			keep = rc == CLOUD_CANCELLED ? x->dl->keep_partial : rc == CLOUD_E_NETWORK;
			pthread_mutex_unlock(&x->c->lock);
		}
		if (keep) {
			fsync(fd);
			close(fd);
		} else {
			close(fd);
			unlinkat(pfd, tmp, 0);
			if (resumable)
				note_partial(s, rel, "");
		}
		goto out;
	}
	struct stat now;
	bool exists = fstatat(pfd, leaf, &now, AT_SYMLINK_NOFOLLOW) == 0;
	bool unchanged = exists ? expect && S_ISREG(now.st_mode) && (uint64_t)now.st_size == expect->size &&
	                              ce_mtime_ns(&now) == expect->mtime_ns
	                        : !expect;
	if (exists && !S_ISREG(now.st_mode)) {
		rc = ohb_fail(err, OHB_E_INVAL, "%s is not a regular file in the %s folder", rel, s->label);
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

int
ct_push(ohb_cloud_sync_t *s, cloud_driver_t *d, const char *rel, xfer_t *x, ohb_error_t *err)
{
	int pfd;
	const char *leaf;
	int rc = ce_parent(s, rel, false, &pfd, &leaf, err);
	if (rc != OHB_OK)
		return rc;
	int fd = openat(pfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	close(pfd);
	if (fd < 0)
		return ohb_fail_errno(err, errno, "cannot open %s in the %s folder", rel, s->label);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ohb_fail(err, OHB_E_INVAL, "%s is not a regular file", rel);
	}
	char *cpath = ce_cloud_path(s, rel);
	if (!cpath) {
		close(fd);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	cloud_transfer_t t = {x, xfer_progress, ce_xfer_cancelled};
	cloud_entry_t out = {0};
	x->start_ms = fsu_mono_ms();
	x->base = 0;
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
		ce_record_synced(s, rel, OHB_CLOUD_FILE_UPLOAD_SUCCESS, &st, out.etag);
	free(out.path);
	return rc;
}
