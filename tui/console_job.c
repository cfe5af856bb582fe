/*
 * console_job — the console's sessions: full and incremental backup into a
 * new set of the store, restore from a set, and the size scan.
 *
 * Threads: job_start_* / job_cancel / job_finish / job_interrupt run on the
 * main thread. The callbacks run on the session's dispatcher thread; they do
 * the store I/O there (writing received files, copying a set's files into
 * the fds a restore hands out, as cmd_restore.c does) and then only push
 * compact events onto the console's queue. They never touch curses or the
 * console_t: their whole world is the job_t below, whose small mutable part
 * (per-bundle outcome, the interrupted flag) is under job->lock because the
 * main thread's cancel and quit paths touch it too.
 *
 * The set is finished (set.json written last) in onAllBundlesEnd, on the
 * dispatcher thread, unless the operator quit: then it is abandoned and
 * stays interrupted, never half-marked good (the CLI's rule).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "console.h"
#include "fsutil.h"

typedef struct job_bundle {
	char *name;
	char *target;            /* restore rename target or NULL */
	int code;
	char message[256];
	bool ended, cancelled;
	uint64_t bytes, files;
	char **uris;             /* restore: files to send */
	size_t n_uris, next;
	char *info;              /* restore: the infos string (app_mapping_relation) or NULL */
	char **chain;            /* restore: sets still to restore, oldest first */
	size_t n_chain;
	bool active;             /* restore: part of the current step */
} job_bundle_t;

struct job {
	uint64_t id;
	job_kind_t kind;
	cev_queue_t *q;
	ohb_service_t *svc;
	ohb_session_t *s;
	store_t *store;
	store_writer_t *w;
	char set_id[96];
	char sfn[128], dt[64];
	pthread_mutex_t lock;
	bool interrupted;
	job_bundle_t *b;
	size_t n;
};

static void
post(job_t *j, cev_kind_t kind, int bundle, int code, const char *text)
{
	cev_t ev = { kind, bundle, code, { 0, 0, 0, 0 }, text ? strdup(text) : NULL, NULL, j->id };
	cevq_push(j->q, ev);
}

static int
find(job_t *j, const char *name)
{
	for (size_t i = 0; name && i < j->n; i++)
		if (strcmp(j->b[i].name, name) == 0 || (j->b[i].target && strcmp(j->b[i].target, name) == 0))
			return (int)i;
	return -1;
}

static void
fail_bundle(job_t *j, int i, int code, const char *message)
{
	pthread_mutex_lock(&j->lock);
	if (!j->b[i].code) {
		j->b[i].code = code;
		snprintf(j->b[i].message, sizeof j->b[i].message, "%s", message);
	}
	pthread_mutex_unlock(&j->lock);
	cev_t ev = { CEV_FILE, i, code ? code : OHB_E_UNKNOWN, { 0, 0, 0, 0 }, strdup(message), NULL, j->id };
	cevq_push(j->q, ev);
}

/* ---- callbacks (dispatcher thread) ---- */

static void
restore_next(job_t *j, int i)
{
	ohb_error_t e;
	job_bundle_t *b = &j->b[i];
	int rc = b->next < b->n_uris ? ohb_session_get_file_handle(j->s, b->name, b->uris[b->next], &e)
	                             : ohb_session_publish_file(j->s, b->name, "", &e);
	/* 13900020: the service refused or ended the bundle and says why itself
	 * (not to be hidden by this code); after any other refusal it would
	 * wait for files that will not come. */
	if (rc == 0 || rc == OHB_E_INVAL)
		return;
	/* the main thread asks for first files while callbacks may record codes */
	pthread_mutex_lock(&j->lock);
	bool failed = b->code != 0;
	pthread_mutex_unlock(&j->lock);
	if (!failed) {
		fail_bundle(j, i, rc, e.message);
		ohb_session_cancel(j->s, b->name);
	}
}

static void
cb_file_ready(void *user, int err, const char *message, const ohb_file_t *f)
{
	job_t *j = user;
	int i = find(j, f->bundle_name);
	ohb_error_t e;
	uint64_t bytes = 0;
	if (i < 0) {
		/* not ours */
	} else if (err) {
		fail_bundle(j, i, err, message);
		if (j->kind == JOB_RESTORE)   /* a request the service could not answer after all */
			ohb_session_cancel(j->s, f->bundle_name);
	} else if (j->kind == JOB_RESTORE) {
		if (store_copy_file_to(j->store, j->set_id, j->b[i].name, f->uri, f->fd, &bytes, &e) != 0) {
			fail_bundle(j, i, e.code, e.message);
			ohb_session_cancel(j->s, f->bundle_name);
		} else {
			pthread_mutex_lock(&j->lock);
			j->b[i].bytes += bytes;
			j->b[i].files++;
			j->b[i].next++;
			pthread_mutex_unlock(&j->lock);
			cev_t ev = { CEV_FILE, i, 0, { bytes, 0, 0, 0 }, strdup(f->uri), NULL, j->id };
			cevq_push(j->q, ev);
			restore_next(j, i);
		}
	} else if (j->w) {
		int rc = store_writer_put_file(j->w, f->bundle_name, f->uri, f->fd, &bytes, &e);
		uint64_t rp = 0;
		if (rc == 0 && f->manifest_fd >= 0)
			rc = store_writer_put_file(j->w, f->bundle_name, "all.rp", f->manifest_fd, &rp, &e);
		if (rc != 0) {
			fail_bundle(j, i, rc, e.message);
			/* The store cannot take this bundle any more: stop it instead of packing on. */
			ohb_session_cancel(j->s, f->bundle_name);
		} else {
			pthread_mutex_lock(&j->lock);
			j->b[i].bytes += bytes + rp;
			j->b[i].files += 1 + (f->manifest_fd >= 0);
			pthread_mutex_unlock(&j->lock);
			cev_t ev = { CEV_FILE, i, 0, { bytes + rp, 0, 0, 0 }, strdup(f->uri), NULL, j->id };
			cevq_push(j->q, ev);
		}
	}
	if (f->fd >= 0)
		close(f->fd);
	if (f->manifest_fd >= 0)
		close(f->manifest_fd);
}

static void
cb_begin(void *user, int err, const char *message, const char *bundle)
{
	job_t *j = user;
	int i = find(j, bundle);
	bool failed_before = false;
	if (i >= 0) {
		pthread_mutex_lock(&j->lock);
		/* failed on our side while it waited for a slot (cancel answered
		 * 13500011 then): it would wait for files that will not come */
		failed_before = !err && j->b[i].code;
		if (err && !j->b[i].code) {
			j->b[i].code = err;
			snprintf(j->b[i].message, sizeof j->b[i].message, "%s", message);
		}
		pthread_mutex_unlock(&j->lock);
	}
	if (failed_before)
		ohb_session_cancel(j->s, bundle);
	post(j, CEV_BEGIN, i, err, message);
}

static void
cb_end(void *user, int err, const char *message, const char *bundle)
{
	job_t *j = user;
	int i = find(j, bundle);
	if (i >= 0) {
		pthread_mutex_lock(&j->lock);
		j->b[i].ended = true;
		if (err && !j->b[i].code) {
			j->b[i].code = err;
			snprintf(j->b[i].message, sizeof j->b[i].message, "%s", message);
		} else if (!err && message && strcmp(message, "cancelled") == 0) {
			j->b[i].cancelled = true;
		}
		pthread_mutex_unlock(&j->lock);
	}
	post(j, CEV_END, i, err, message);
}

/* Writes set.json (last) for a backup that ran to its end; a cancelled
 * bundle is recorded as 13900042 "cancelled by the operator" so the set is
 * never taken for a restore point of it. */
static void
finish_set(job_t *j, char *text, size_t size)
{
	ohb_error_t e;
	pthread_mutex_lock(&j->lock);
	bool interrupted = j->interrupted;
	for (size_t i = 0; !interrupted && i < j->n; i++) {
		job_bundle_t *b = &j->b[i];
		int code = b->code;
		const char *msg = b->message;
		if (!code && (b->cancelled || !b->ended)) {
			code = OHB_E_UNKNOWN;
			msg = b->cancelled ? "cancelled by the operator" : "the bundle did not finish";
		}
		store_writer_set_result(j->w, b->name, code, msg, b->bytes, b->files, NULL);
	}
	pthread_mutex_unlock(&j->lock);
	if (interrupted) {
		store_writer_abandon(j->w);
		snprintf(text, size, "interrupted: set %s left interrupted", j->set_id);
	} else if (store_writer_finish(j->w, j->sfn, j->dt, &e) != 0) {
		snprintf(text, size, "error %d: the set could not be finished: %s", e.code, e.message);
	} else {
		snprintf(text, size, "set %s", j->set_id);
	}
	j->w = NULL;
}

static void
cb_all_end(void *user, int err, const char *message)
{
	job_t *j = user;
	char text[700];
	snprintf(text, sizeof text, "%s", message ? message : "");
	if (j->w)
		finish_set(j, text, sizeof text);
	post(j, CEV_ALL_END, -1, err, text);
}

static void
cb_died(void *user)
{
	post(user, CEV_DIED, -1, OHB_E_IPC, "the backup service died");
}

static void
cb_result(void *user, const char *bundle, const char *result)
{
	job_t *j = user;
	post(j, CEV_RESULT, find(j, bundle), 0, result);
}

/* REFERENCE.md's onProcess wrapping: processResult.resultInfo is a JSON string
 * holding progressInfo[0].{processed,total,processedFiles,totalFiles}. */
static void
cb_process(void *user, const char *bundle, const char *process)
{
	job_t *j = user;
	cev_t ev = { CEV_PROCESS, find(j, bundle), 0, { 0, 0, 0, 0 }, NULL, NULL, j->id };
	cJSON *root = cJSON_Parse(process);
	cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "processResult");
	cJSON *ri = cJSON_GetObjectItemCaseSensitive(pr, "resultInfo");
	cJSON *ei = cJSON_GetObjectItemCaseSensitive(pr, "errorInfo");
	if (ei) {
		cJSON *m = cJSON_GetObjectItemCaseSensitive(ei, "errorMessage");
		cJSON *c = cJSON_GetObjectItemCaseSensitive(ei, "errorCode");
		char msg[400];
		snprintf(msg, sizeof msg, "%s%s%s", cJSON_IsString(c) ? c->valuestring : "", cJSON_IsString(c) ? ": " : "",
		    cJSON_IsString(m) ? m->valuestring : "file error");
		ev.text = strdup(msg);
	}
	if (cJSON_IsString(ri)) {
		static const char *const keys[4] = { "processed", "total", "processedFiles", "totalFiles" };
		cJSON *inner = cJSON_Parse(ri->valuestring);
		cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(inner, "progressInfo"), 0);
		for (int k = 0; k < 4; k++) {
			cJSON *v = cJSON_GetObjectItemCaseSensitive(e, keys[k]);
			ev.v[k] = cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
		}
		cJSON_Delete(inner);
	}
	cJSON_Delete(root);
	if (ev.bundle >= 0 || ev.text)
		cevq_push(j->q, ev);
	else
		cev_free(&ev);
}

static void
cb_size(void *user, const char *report)
{
	post(user, CEV_SIZE, -1, 0, report);
}

/* ---- main thread ---- */

static void
job_free(job_t *j)
{
	if (!j)
		return;
	if (j->s)
		ohb_session_free(j->s);
	if (j->w)
		store_writer_abandon(j->w);
	for (size_t i = 0; i < j->n; i++) {
		free(j->b[i].name);
		free(j->b[i].target);
		free(j->b[i].info);
		store_strings_free(j->b[i].uris, j->b[i].n_uris);
		store_strings_free(j->b[i].chain, j->b[i].n_chain);
	}
	free(j->b);
	store_close(j->store);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

bool
job_running(const console_t *c)
{
	return c->job != NULL;
}

static void
reset_run(console_t *c, job_kind_t kind, size_t n)
{
	for (size_t i = 0; i < c->n_run; i++)
		free(c->run[i].result);
	free(c->run);
	c->run = calloc(n ? n : 1, sizeof *c->run);
	c->n_run = c->run ? n : 0;
	for (size_t i = 0; i < c->n_run; i++)
		wf_rate_init(&c->run[i].rate);
	c->run_kind = kind;
	c->r_cursor = c->r_top = 0;
	c->n_log = c->log_first = 0;
	c->log_scroll = 0;
	c->run_started_ms = fsu_mono_ms();
	c->run_ended_ms = 0;
	c->run_active = true;
	c->run_interrupted = false;
	c->all_code = 0;
	c->all_message[0] = c->set_id[0] = c->set_path[0] = '\0';
}

static job_t *
job_new(console_t *c, job_kind_t kind, size_t n)
{
	job_t *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->b = calloc(n ? n : 1, sizeof *j->b);
	if (!j->b) {
		free(j);
		return NULL;
	}
	pthread_mutex_init(&j->lock, NULL);
	j->id = ++c->job_seq;
	j->kind = kind;
	j->q = &c->evq;
	j->svc = c->svc;
	snprintf(j->sfn, sizeof j->sfn, "%s", c->system_full_name);
	snprintf(j->dt, sizeof j->dt, "%s", c->device_type);
	return j;
}

static ohb_callbacks_t
callbacks(job_t *j)
{
	ohb_callbacks_t cb = { j, cb_file_ready, cb_begin, cb_end, cb_all_end, cb_died, cb_result, cb_process, cb_size };
	return cb;
}

static int
start_fail(job_t *j, int code, const char *msg, char *err, size_t err_size)
{
	snprintf(err, err_size, "error %d: %s", code ? code : OHB_E_UNKNOWN, msg && *msg ? msg : ohb_code_text(code));
	job_free(j);
	return code ? code : OHB_E_UNKNOWN;
}

static void
apply_rates(console_t *c)
{
	for (size_t i = 0; i < c->n_run; i++) {
		if (c->default_rate > 0)
			ohb_update_send_rate(c->svc, c->run[i].name, c->default_rate);
		c->run[i].send_rate = c->default_rate > 0 ? c->default_rate : 60;
	}
}

int
job_start_backup(console_t *c, bool incremental, char *err, size_t err_size)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n_brows; i++)
		n += c->brows[i].selected;
	if (n == 0) {
		snprintf(err, err_size, "nothing selected: Space selects a bundle, a selects all");
		return OHB_E_BUNDLE_EMPTY;
	}
	if (!c->svc) {
		snprintf(err, err_size, "the device is not loaded yet");
		return OHB_E_UNKNOWN;
	}
	job_kind_t kind = incremental ? JOB_INCREMENTAL : JOB_BACKUP;
	job_t *j = job_new(c, kind, n);
	if (!j) {
		snprintf(err, err_size, "out of memory");
		return OHB_E_NOMEM;
	}
	ohb_error_t e = { 0, "" };
	const char **names = calloc(n, sizeof *names);
	ohb_incremental_data_t *inc = calloc(n, sizeof *inc);
	if (!names || !inc) {
		free(names);
		free(inc);
		return start_fail(j, OHB_E_NOMEM, "out of memory", err, err_size);
	}
	for (size_t i = 0; i < c->n_brows; i++)
		if (c->brows[i].selected) {
			names[j->n] = c->brows[i].name;
			j->b[j->n].name = strdup(c->brows[i].name);
			inc[j->n].bundle_name = c->brows[i].name;
			inc[j->n].manifest_fd = -1;
			j->n++;
		}
	int rc = store_open(c->ctx->store, &j->store, &e);
	/* The capability file first, before the set is begun, as the CLI does
	 * (cmd_backup.c): its walk of every bundle (spaceOccupied) is then not
	 * part of the set's time, in the console as in the CLI, and the backup
	 * right behind it takes that walk's listing instead of walking again
	 * (service.c). */
	int caps_fd = -1;
	if (rc == 0)
		rc = ohb_get_local_capabilities(c->svc, &caps_fd, &e);
	/* An incremental builds, bundle by bundle, on the newest good set holding it
	 * (its all.rp and time); the set records the newest such base. */
	char base[96] = "";
	int64_t base_ms = 0;
	for (size_t i = 0; rc == 0 && incremental && i < n; i++) {
		store_set_info_t info;
		memset(&info, 0, sizeof info);
		ohb_error_t fe;
		if (store_find_good_set(j->store, names[i], NULL, &info, &fe) == 0) {
			inc[i].last_incremental_time = info.created_ms;
			if (store_open_file(j->store, info.id, names[i], "all.rp", &inc[i].manifest_fd, &fe) != 0)
				inc[i].manifest_fd = -1;
			if (info.created_ms > base_ms) {
				base_ms = info.created_ms;
				snprintf(base, sizeof base, "%s", info.id);
			}
			store_set_info_clear(&info);
		}
	}
	if (rc == 0)
		rc = store_writer_begin(j->store, incremental && *base ? "incremental" : "full", incremental && *base ? base : NULL,
		    &j->w, &e);
	if (rc == 0)
		rc = store_writer_put_capability(j->w, caps_fd, &e);
	if (caps_fd >= 0)
		close(caps_fd);
	ohb_callbacks_t cb = callbacks(j);
	if (rc == 0) {
		snprintf(j->set_id, sizeof j->set_id, "%s", store_writer_id(j->w));
		rc = incremental ? ohb_session_incremental_create(c->svc, &cb, &j->s, &e)
		                 : ohb_session_backup_create(c->svc, &cb, &j->s, &e);
	}
	if (rc == 0) {
		reset_run(c, kind, n);
		for (size_t i = 0; i < n; i++)
			snprintf(c->run[i].name, sizeof c->run[i].name, "%s", names[i]);
		snprintf(c->set_id, sizeof c->set_id, "%s", j->set_id);
		snprintf(c->set_path, sizeof c->set_path, "%s", store_writer_path(j->w));
		c->job = j;
		if (c->default_rate > 0)
			ohb_session_set_default_send_rate(j->s, c->default_rate);   /* before the append: no race */
		rc = incremental ? ohb_session_append_incremental(j->s, inc, n, NULL, &e)
		                 : ohb_session_append_backup(j->s, names, NULL, n, &e);
		if (rc != 0)
			c->job = NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (inc[i].manifest_fd >= 0)
			close(inc[i].manifest_fd);
	free(inc);
	free(names);
	if (rc != 0) {
		c->run_active = false;
		return start_fail(j, rc, e.message, err, err_size);
	}
	apply_rates(c);
	console_log(c, -1, ROLE_NORMAL, "%s of %zu bundle%s into set %s", incremental ? "incremental backup" : "backup", n,
	    n == 1 ? "" : "s", j->set_id);
	return 0;
}

/* One step of a restore: the oldest set left in the bundles' chains, for the
 * bundles whose chain starts with it (a full set restores alone; an
 * incremental set's chain goes back to a full one, and each step is all or
 * nothing per bundle). A bundle that failed a step takes no later one.
 * Returns 0 and sets *started false when no step is left. Main thread. */
static int
restore_step(console_t *c, job_t *j, bool *started, ohb_error_t *e)
{
	*started = false;
	const char *step = NULL;
	for (size_t i = 0; i < j->n; i++) {
		job_bundle_t *b = &j->b[i];
		if (b->code == 0 && b->n_chain > 0 && (!step || strcmp(b->chain[0], step) < 0))
			step = b->chain[0];
	}
	if (!step)
		return 0;
	snprintf(j->set_id, sizeof j->set_id, "%s", step);
	store_set_info_t info;
	memset(&info, 0, sizeof info);
	bool incremental = store_set_info(j->store, j->set_id, &info, NULL) == 0 && info.kind &&
	    strcmp(info.kind, "incremental") == 0;
	store_set_info_clear(&info);
	const char **names = calloc(j->n, sizeof *names);
	const char **infos = calloc(j->n, sizeof *infos);
	size_t n = 0;
	int rc = names && infos ? 0 : OHB_E_NOMEM;
	for (size_t i = 0; rc == 0 && i < j->n; i++) {
		job_bundle_t *b = &j->b[i];
		store_strings_free(b->uris, b->n_uris);
		b->uris = NULL;
		b->n_uris = b->next = 0;
		b->active = b->code == 0 && b->n_chain > 0 && strcmp(b->chain[0], j->set_id) == 0;
		if (!b->active)
			continue;
		b->ended = false;
		if ((rc = store_list_files(j->store, j->set_id, b->name, &b->uris, &b->n_uris, e)) != 0)
			break;
		/* all.rp makes the service delete what the backup no longer had: only for
		 * incremental sets (a full set restores as an overlay). */
		for (size_t k = 0; !incremental && k < b->n_uris; k++) {
			if (strcmp(b->uris[k], "all.rp") == 0) {
				free(b->uris[k]);
				memmove(&b->uris[k], &b->uris[k + 1], (b->n_uris - k - 1) * sizeof *b->uris);
				b->n_uris--;
				break;
			}
		}
		names[n] = b->name;
		infos[n] = b->info;
		n++;
	}
	int caps_fd = -1;
	if (rc == 0)
		rc = store_open_capability(j->store, j->set_id, &caps_fd, e);
	ohb_callbacks_t cb = callbacks(j);
	if (rc == 0)
		rc = ohb_session_restore_create(c->svc, &cb, &j->s, e);
	if (rc == 0)
		rc = ohb_session_append_restore(j->s, caps_fd, names, infos, n, e);
	if (caps_fd >= 0)
		close(caps_fd);
	free(names);
	free(infos);
	if (rc != 0)
		return rc;
	*started = true;
	snprintf(c->set_id, sizeof c->set_id, "%s", j->set_id);
	snprintf(c->set_path, sizeof c->set_path, "%s/%s", c->ctx->store, j->set_id);
	console_log(c, -1, ROLE_NORMAL, "restore of %zu bundle%s from set %s%s", n, n == 1 ? "" : "s", j->set_id,
	    incremental ? " (incremental: deletions included)" : "");
	for (size_t i = 0; i < j->n; i++) {
		job_bundle_t *b = &j->b[i];
		if (!b->active)
			continue;
		/* this set is done for the bundle once the step ends */
		free(b->chain[0]);
		memmove(&b->chain[0], &b->chain[1], (b->n_chain - 1) * sizeof *b->chain);
		b->n_chain--;
		pthread_mutex_lock(&j->lock);
		bool failed = b->code != 0;
		pthread_mutex_unlock(&j->lock);
		if (!failed)
			restore_next(j, (int)i);   /* the rest are asked for one by one */
	}
	return 0;
}

int
job_start_restore(console_t *c, char *err, size_t err_size)
{
	if (c->restore_set < 0 || (size_t)c->restore_set >= c->n_sets || !c->svc) {
		snprintf(err, err_size, "no set chosen");
		return OHB_E_INVAL;
	}
	const store_set_info_t *set = &c->sets[c->restore_set];
	size_t n = 0;
	for (size_t i = 0; i < c->n_sb; i++)
		n += c->sb_selected[i];
	if (n == 0) {
		snprintf(err, err_size, "nothing selected: Space selects a bundle of the set");
		return OHB_E_BUNDLE_EMPTY;
	}
	job_t *j = job_new(c, JOB_RESTORE, n);
	if (!j) {
		snprintf(err, err_size, "out of memory");
		return OHB_E_NOMEM;
	}
	ohb_error_t e = { 0, "" };
	int rc = store_open(c->ctx->store, &j->store, &e);
	for (size_t i = 0; rc == 0 && i < c->n_sb; i++) {
		if (!c->sb_selected[i])
			continue;
		job_bundle_t *b = &j->b[j->n++];
		b->name = strdup(set->bundles[i].name);
		if (c->sb_target[i][0] && strcmp(c->sb_target[i], set->bundles[i].name) != 0) {
			b->target = strdup(c->sb_target[i]);
			/* app_mapping_relation, as cmd_restore.c builds it */
			cJSON *root = cJSON_CreateObject();
			cJSON *inf = cJSON_CreateObject();
			cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "infos"), inf);
			cJSON_AddStringToObject(inf, "type", "broadcast");
			cJSON *d = cJSON_CreateObject();
			cJSON_AddItemToArray(cJSON_AddArrayToObject(inf, "details"), d);
			cJSON_AddStringToObject(d, "type", "app_mapping_relation");
			cJSON *m = cJSON_CreateObject();
			cJSON_AddItemToArray(cJSON_AddArrayToObject(d, "detail"), m);
			cJSON_AddStringToObject(m, "source", b->name);
			cJSON_AddStringToObject(m, "target", b->target);
			b->info = cJSON_PrintUnformatted(root);
			cJSON_Delete(root);
		}
		rc = store_chain(j->store, set->id, b->name, &b->chain, &b->n_chain, &e);
	}
	if (rc == 0) {
		reset_run(c, JOB_RESTORE, j->n);
		for (size_t i = 0; i < j->n; i++) {
			snprintf(c->run[i].name, sizeof c->run[i].name, "%s", j->b[i].name);
			snprintf(c->run[i].target, sizeof c->run[i].target, "%s", j->b[i].target ? j->b[i].target : "");
		}
		c->job = j;
		bool started = false;
		rc = restore_step(c, j, &started, &e);
		if (rc == 0 && !started)
			{ e.code = OHB_E_BUNDLE_EMPTY; snprintf(e.message, sizeof e.message, "nothing to restore"); rc = e.code; }
		if (rc != 0)
			c->job = NULL;
	}
	if (rc != 0) {
		c->run_active = false;
		return start_fail(j, rc, e.message, err, err_size);
	}
	apply_rates(c);
	return 0;
}

bool
job_restore_next_step(console_t *c)
{
	job_t *j = c->job;
	if (!j || j->kind != JOB_RESTORE)
		return false;
	pthread_mutex_lock(&j->lock);
	bool interrupted = j->interrupted;
	pthread_mutex_unlock(&j->lock);
	if (interrupted)
		return false;
	/* the finished step's session goes; the next set gets its own */
	ohb_session_release(j->s, NULL);
	ohb_session_free(j->s);
	j->s = NULL;
	ohb_error_t e = { 0, "" };
	bool started = false;
	if (restore_step(c, j, &started, &e) != 0) {
		console_log(c, -1, ROLE_ERROR, "error %d: the next step of the restore cannot start: %s", e.code, e.message);
		return false;
	}
	if (started)
		apply_rates(c);
	return started;
}

int
job_start_scan(console_t *c, bool precise, char *err, size_t err_size)
{
	if (!c->svc || c->n_brows == 0) {
		snprintf(err, err_size, "the device is not loaded yet");
		return OHB_E_UNKNOWN;
	}
	job_t *j = job_new(c, JOB_SCAN, 0);
	if (!j) {
		snprintf(err, err_size, "out of memory");
		return OHB_E_NOMEM;
	}
	ohb_incremental_time_t *list = calloc(c->n_brows, sizeof *list);
	ohb_error_t e = { 0, "" };
	ohb_callbacks_t cb = callbacks(j);
	int rc = list ? ohb_session_backup_create(c->svc, &cb, &j->s, &e) : OHB_E_NOMEM;
	size_t n = 0;
	for (size_t i = 0; list && i < c->n_brows; i++)
		if (c->brows[i].allow)
			list[n++] = (ohb_incremental_time_t){ c->brows[i].name, c->brows[i].last_backup_ms };
	if (rc == 0)
		rc = ohb_session_get_backup_data_size(j->s, precise, list, n, 500, &e);
	free(list);
	if (rc != 0)
		return start_fail(j, rc, e.message, err, err_size);
	c->job = j;
	c->run_kind = JOB_SCAN;
	c->scan_running = true;
	c->scan_precise = precise;
	c->scan_current[0] = '\0';
	c->scan_started_ms = fsu_mono_ms();
	return 0;
}

int
job_cancel(console_t *c, size_t i)
{
	job_t *j = c->job;
	if (!j || i >= c->n_run || i >= j->n)
		return OHB_E_CANCEL_UNKNOWN;
	int rc = ohb_session_cancel(j->s, j->b[i].name);
	if (rc == 0) {
		pthread_mutex_lock(&j->lock);
		j->b[i].cancelled = true;
		pthread_mutex_unlock(&j->lock);
		c->run[i].cancel_asked = true;
	}
	return rc;
}

void
job_finish(console_t *c)
{
	job_t *j = c->job;
	if (!j)
		return;
	c->job = NULL;
	ohb_session_release(j->s, NULL);
	job_free(j);
}

void
job_interrupt(console_t *c)
{
	job_t *j = c->job;
	if (!j)
		return;
	pthread_mutex_lock(&j->lock);
	j->interrupted = true;
	pthread_mutex_unlock(&j->lock);
	c->run_interrupted = true;
	/* release() cancels what runs, removes temp files and delivers onAllBundlesEnd,
	 * whose callback then abandons the set: it stays interrupted. */
	ohb_session_release(j->s, NULL);
}
