/*
 * session — SessionBackup and SessionRestore: the scheduler, the worker pool,
 * and the dispatcher that delivers GeneralCallbacks.
 *
 * Why a dispatcher thread: the spec's callbacks are asynchronous, and a
 * client (the console above all) must be able to follow a session without
 * locks. So workers never call back directly; they push events, and one
 * thread delivers them in order with no lock held (ARCHITECTURE.md,
 * "Processes and threads"). The same thread emits the periodic onProcess
 * of every running bundle, so progress and file events never interleave
 * out of order for one bundle.
 *
 * Every appended bundle gets exactly one onBundleBegin and one onBundleEnd
 * (a bundle that cannot run gets both with the same code), and
 * onAllBundlesEnd comes once, last.
 */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "errors.h"
#include "extension.h"
#include "fsutil.h"
#include "scanner.h"
#include "stage.h"

#define DEFAULT_SEND_RATE 60
#define MAX_SEND_RATE 800
#define MAX_FILES_IN_QUEUE 32
#define APP_PHASE_DEFAULT_MS (15 * 60 * 1000)     /* REFERENCE.md "Timers" */
#define MAX_TIMER_MS 14400000LL

/* ---- small helpers --------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void
event_free(event_t *ev)
{
	if (ev->fd >= 0)
		close(ev->fd);
	if (ev->manifest_fd >= 0)
		close(ev->manifest_fd);
	free(ev->message);
	free(ev->bundle);
	free(ev->uri);
	free(ev->text);
	free(ev);
}

static void
job_free(job_t *j)
{
	free(j->name);
	free(j->info);
	free(j->incoming_dir);
	for (size_t i = 0; i < j->n_expect; i++)
		free(j->expect[i]);
	free(j->expect);
	free(j->expect_state);
	for (size_t i = 0; i < j->n_deferred; i++)
		free(j->deferred[i]);
	free(j->deferred);
	rp_list_free(&j->base);
	for (size_t i = 0; i < j->n_deps; i++)
		free(j->deps[i]);
	free(j->deps);
	free(j);
}

/* Must the job stop? Cancel, release, or a deadline that has passed. */
static bool
job_should_stop_locked(ohb_session_t *s, job_t *j)
{
	if (j->cancel || s->releasing || j->timed_out)
		return true;
	if (j->deadline_ms > 0 && fsu_mono_ms() >= j->deadline_ms) {
		j->timed_out = true;
		return true;
	}
	return false;
}

static job_t *
find_job_locked(ohb_session_t *s, const char *name)
{
	for (size_t i = 0; i < s->n_jobs; i++)
		if (strcmp(s->jobs[i]->name, name) == 0)
			return s->jobs[i];
	return NULL;
}

static void
deadline_in(struct timespec *ts, int64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void
cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
}

/* ---- the event queue --------------------------------------------------------- */

static int
push_locked(ohb_session_t *s, event_type_t type, int err, const char *message, const char *bundle,
    const char *uri, const char *text, int fd, int manifest_fd)
{
	event_t *ev = calloc(1, sizeof *ev);
	if (!ev) {
		if (fd >= 0)
			close(fd);
		if (manifest_fd >= 0)
			close(manifest_fd);
		return OHB_E_NOMEM;
	}
	ev->type = type;
	ev->err = err;
	ev->fd = fd;
	ev->manifest_fd = manifest_fd;
	ev->message = strdup(message ? message : "");
	ev->bundle = dup_or_null(bundle);
	ev->uri = dup_or_null(uri);
	ev->text = dup_or_null(text);
	if (!ev->message || (bundle && !ev->bundle) || (uri && !ev->uri) || (text && !ev->text)) {
		event_free(ev);
		return OHB_E_NOMEM;
	}
	if (s->tail)
		s->tail->next = ev;
	else
		s->head = ev;
	s->tail = ev;
	if (type == EV_FILE_READY)
		s->files_in_queue++;
	pthread_cond_broadcast(&s->queue_cond);
	return 0;
}

int
session_push(ohb_session_t *s, event_type_t type, int err, const char *message, const char *bundle,
    const char *uri, const char *text, int fd, int manifest_fd)
{
	pthread_mutex_lock(&s->lock);
	int rc = push_locked(s, type, err, message, bundle, uri, text, fd, manifest_fd);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* onProcess text of REFERENCE.md ("wire formats"), with file counts added to
 * the progressInfo entry so a client can show files done/total too. */
static char *
process_text_locked(const job_t *j)
{
	char inner[512];
	snprintf(inner, sizeof inner,
	    "{\"progressInfo\":[{\"name\":\"%s\",\"processed\":%llu,\"total\":%llu,\"isPercentage\":false,"
	    "\"processedFiles\":%llu,\"totalFiles\":%llu}]}",
	    "", (unsigned long long)j->bytes_done, (unsigned long long)j->bytes_total,
	    (unsigned long long)j->files_done, (unsigned long long)j->files_total);
	cJSON *root = cJSON_CreateObject();
	cJSON *pr = cJSON_AddObjectToObject(root, "processResult");
	char tbuf[32];
	snprintf(tbuf, sizeof tbuf, "%lld", (long long)(fsu_now_ms() / 1000));
	cJSON_AddStringToObject(pr, "timeInfo", tbuf);
	/* The name goes in through cJSON so that any bundle name is escaped right. */
	cJSON *ri = cJSON_Parse(inner);
	if (ri) {
		cJSON *arr = cJSON_GetObjectItem(ri, "progressInfo");
		cJSON_ReplaceItemInObject(cJSON_GetArrayItem(arr, 0), "name", cJSON_CreateString(j->name));
		char *ri_text = cJSON_PrintUnformatted(ri);
		cJSON_AddStringToObject(pr, "resultInfo", ri_text ? ri_text : "");
		free(ri_text);
		cJSON_Delete(ri);
	}
	char *out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}

static void
push_process_locked(ohb_session_t *s, job_t *j)
{
	char *text = process_text_locked(j);
	if (text)
		push_locked(s, EV_PROCESS, 0, NULL, j->name, NULL, text, -1, -1);
	free(text);
}

void
session_push_process(ohb_session_t *s, job_t *j)
{
	pthread_mutex_lock(&s->lock);
	push_process_locked(s, j);
	pthread_mutex_unlock(&s->lock);
}

void
session_push_process_error(ohb_session_t *s, job_t *j, int code, const char *message)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *pr = cJSON_AddObjectToObject(root, "processResult");
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", (long long)(fsu_now_ms() / 1000));
	cJSON_AddStringToObject(pr, "timeInfo", buf);
	cJSON *ei = cJSON_AddObjectToObject(pr, "errorInfo");
	snprintf(buf, sizeof buf, "%d", code);
	cJSON_AddStringToObject(ei, "errorCode", buf);
	cJSON_AddStringToObject(ei, "errorMessage", message);
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (text)
		session_push(s, EV_PROCESS, 0, NULL, j->name, NULL, text, -1, -1);
	free(text);
}

void
session_progress(ohb_session_t *s, job_t *j, uint64_t bytes_done, uint64_t files_done)
{
	pthread_mutex_lock(&s->lock);
	j->bytes_done = bytes_done;
	j->files_done = files_done;
	pthread_mutex_unlock(&s->lock);
}

void
session_set_totals(ohb_session_t *s, job_t *j, uint64_t bytes_total, uint64_t files_total)
{
	pthread_mutex_lock(&s->lock);
	j->bytes_total = bytes_total;
	j->files_total = files_total;
	pthread_mutex_unlock(&s->lock);
}

bool
session_job_cancelled(ohb_session_t *s, job_t *j)
{
	pthread_mutex_lock(&s->lock);
	bool c = job_should_stop_locked(s, j);
	pthread_mutex_unlock(&s->lock);
	return c;
}

void
session_set_pack_deadline(ohb_session_t *s, job_t *j, uint64_t bytes)
{
	int64_t ms = 30000 + (int64_t)(bytes / (3u << 20)) * 3000;
	if (ms < 900000)
		ms = 900000;
	pthread_mutex_lock(&s->lock);
	if (!j->timer_set)
		j->deadline_ms = fsu_mono_ms() + ms;
	pthread_mutex_unlock(&s->lock);
}

void
session_push_app_process(ohb_session_t *s, job_t *j, const char *app_json)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *pr = cJSON_AddObjectToObject(root, "processResult");
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", (long long)(fsu_now_ms() / 1000));
	cJSON_AddStringToObject(pr, "timeInfo", buf);
	cJSON_AddStringToObject(pr, "resultInfo", app_json);
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (text)
		session_push(s, EV_PROCESS, 0, NULL, j->name, NULL, text, -1, -1);
	free(text);
}

/* Extension hooks: the context is the job, which knows its session. */
static void
ext_progress(void *ctx, const char *json)
{
	job_t *j = ctx;
	session_push_app_process(j->session, j, json);
}

static bool
ext_cancelled(void *ctx)
{
	job_t *j = ctx;
	pthread_mutex_lock(&j->session->lock);
	/* the deadline is the extension runner's own business (it reports 13500003) */
	bool stop = j->cancel || j->session->releasing;
	pthread_mutex_unlock(&j->session->lock);
	return stop;
}

static int64_t
ext_deadline(void *ctx)
{
	job_t *j = ctx;
	pthread_mutex_lock(&j->session->lock);
	int64_t d = j->deadline_ms;
	pthread_mutex_unlock(&j->session->lock);
	return d;
}

void
session_ext_hooks(ohb_session_t *s, job_t *j, struct ext_hooks *hooks)
{
	(void)s;
	memset(hooks, 0, sizeof *hooks);
	hooks->ctx = j;
	hooks->progress = ext_progress;
	hooks->cancelled = ext_cancelled;
	hooks->deadline_ms = ext_deadline;
}

int
session_send_file(ohb_session_t *s, job_t *j, const char *uri, int fd, int manifest_fd)
{
	pthread_mutex_lock(&s->lock);
	for (;;) {
		if (job_should_stop_locked(s, j)) {
			pthread_mutex_unlock(&s->lock);
			close(fd);
			if (manifest_fd >= 0)
				close(manifest_fd);
			return OHB_E_UNKNOWN;
		}
		int64_t now = fsu_mono_ms();
		if (now - j->window_start_ms >= 1000) {
			j->window_start_ms = now;
			j->sent_in_window = 0;
		}
		if (j->rate > 0 && j->sent_in_window < j->rate && s->files_in_queue < MAX_FILES_IN_QUEUE)
			break;
		struct timespec ts;
		/* A paused bundle (rate 0) still wakes now and then to notice cancel. */
		deadline_in(&ts, j->rate > 0 ? 1000 - (now - j->window_start_ms) : 1000);
		pthread_cond_timedwait(&s->work_cond, &s->lock, &ts);
	}
	j->sent_in_window++;
	int rc = push_locked(s, EV_FILE_READY, 0, NULL, j->name, uri, NULL, fd, manifest_fd);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

char *
session_count_result(const char *what, uint64_t ok, uint64_t failed, uint64_t bytes)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(root, "resultInfo");
	cJSON *ci = cJSON_CreateObject();
	cJSON_AddItemToArray(arr, ci);
	cJSON_AddStringToObject(ci, "type", "CountInfo");
	cJSON *infos = cJSON_AddArrayToObject(ci, "infos");
	cJSON *info = cJSON_CreateObject();
	cJSON_AddItemToArray(infos, info);
	cJSON_AddStringToObject(info, "backupInfo", what);
	cJSON_AddNumberToObject(info, "successCount", (double)ok);
	cJSON_AddNumberToObject(info, "duplicateCount", 0);
	cJSON_AddNumberToObject(info, "failedCount", (double)failed);
	cJSON_AddNumberToObject(info, "bytes", (double)bytes);
	cJSON_AddArrayToObject(info, "details");
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return text;
}

static char *
error_result(int code, const char *message)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *ri = cJSON_AddObjectToObject(root, "resultInfo");
	cJSON_AddNumberToObject(ri, "errorCode", code);
	cJSON_AddStringToObject(ri, "errorInfo", message);
	cJSON_AddStringToObject(ri, "type", "ErrorInfo");
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return text;
}

/* ---- the size scan (getBackupDataSize) ------------------------------------------ */

/* {"scaned":[<pending>],"scanning":"<name>"} (REFERENCE.md): each report
 * carries only the bundles finished since the previous one; the last has an
 * empty "scanning". */
static void
push_size_report_locked(ohb_session_t *s, bool last)
{
	cJSON *root = cJSON_CreateObject();
	char *arr_text = fsu_printf("[%s]", s->scan.pending ? s->scan.pending : "");
	cJSON *arr = arr_text ? cJSON_Parse(arr_text) : NULL;
	free(arr_text);
	cJSON_AddItemToObject(root, "scaned", arr ? arr : cJSON_CreateArray());
	cJSON_AddStringToObject(root, "scanning", last || !s->scan.scanning ? "" : s->scan.scanning);
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (text)
		push_locked(s, EV_SIZE_REPORT, 0, NULL, NULL, NULL, text, -1, -1);
	free(text);
	free(s->scan.pending);
	s->scan.pending = NULL;
}

/* The imprecise estimate: what the device can say without walking every
 * file. We walk at most IMPRECISE_BUDGET entries of the bundle and scale by
 * the share of directories we reached; small bundles come out exact. */
#define IMPRECISE_BUDGET 4000

static void *
size_scan_main(void *arg)
{
	ohb_session_t *s = arg;
	for (size_t i = 0; i < s->scan.n; i++) {
		const ohb_incremental_time_t *t = &s->scan.list[i];
		pthread_mutex_lock(&s->lock);
		bool stop = s->releasing;
		free(s->scan.scanning);
		s->scan.scanning = strdup(t->bundle_name);
		pthread_mutex_unlock(&s->lock);
		if (stop)
			break;
		const reg_bundle_t *b = reg_device_find(s->dev, t->bundle_name);
		int64_t data = -1, inc = -1;
		if (b) {
			uint64_t bytes = 0, inc_bytes = 0;
			ohb_error_t e;
			int rc = s->scan.precise ? scan_bundle_size(b, t->last_incremental_time, &bytes, &inc_bytes, &e)
			                         : scan_bundle_estimate(b, IMPRECISE_BUDGET, &bytes, &e);
			if (rc == 0) {
				data = (int64_t)bytes;
				/* -1: unknown, for an imprecise scan and without a base time */
				if (s->scan.precise && t->last_incremental_time > 0)
					inc = (int64_t)inc_bytes;
			}
		}
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "bundleName", t->bundle_name);
		cJSON_AddNumberToObject(o, "dataSize", (double)data);
		cJSON_AddNumberToObject(o, "incDataSize", (double)inc);
		char *item = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		pthread_mutex_lock(&s->lock);
		if (item) {
			char *joined = s->scan.pending ? fsu_printf("%s,%s", s->scan.pending, item) : strdup(item);
			if (joined) {
				free(s->scan.pending);
				s->scan.pending = joined;
			}
		}
		pthread_mutex_unlock(&s->lock);
		free(item);
	}
	pthread_mutex_lock(&s->lock);
	push_size_report_locked(s, true);
	s->scan.active = false;
	free(s->scan.scanning);
	s->scan.scanning = NULL;
	pthread_cond_broadcast(&s->queue_cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static int start_threads_locked(ohb_session_t *s, ohb_error_t *err);
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg);

int
ohb_session_get_backup_data_size(ohb_session_t *s, bool precise, const ohb_incremental_time_t *list, size_t n,
    int report_interval_ms, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!s || !list || n == 0)
		return ohb_fail(err, OHB_E_PARAM, "getBackupDataSize needs a non-empty list of bundles");
	for (size_t i = 0; i < n; i++)
		if (!list[i].bundle_name || !*list[i].bundle_name)
			return ohb_fail(err, OHB_E_PARAM, "entry %zu of the list has no bundle name", i);
	pthread_mutex_lock(&s->lock);
	int rc = 0;
	if (s->scan.active || s->releasing) {
		rc = ohb_fail(err, OHB_E_INVAL, s->releasing ? "the session has been released"
		                                               : "a size scan is already running in this session");
		goto out;
	}
	if (s->scan.thread_started) {
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->scan.thread, NULL);   /* the previous scan has finished */
		pthread_mutex_lock(&s->lock);
		s->scan.thread_started = false;
	}
	for (size_t i = 0; i < s->scan.n; i++)
		free((char *)s->scan.list[i].bundle_name);
	free(s->scan.list);
	s->scan.list = calloc(n, sizeof *s->scan.list);
	s->scan.n = 0;
	if (!s->scan.list) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		s->scan.list[i].bundle_name = strdup(list[i].bundle_name);
		s->scan.list[i].last_incremental_time = list[i].last_incremental_time;
		s->scan.n++;
	}
	/* A report that goes out before the thread names its first bundle must not
	 * say "scanning":"" (that means the last report). */
	free(s->scan.scanning);
	s->scan.scanning = strdup(list[0].bundle_name);
	s->scan.precise = precise;
	s->scan.interval_ms = report_interval_ms > 0 ? report_interval_ms : 5000;
	s->scan.next_report_ms = fsu_mono_ms() + s->scan.interval_ms;
	if ((rc = start_threads_locked(s, err)) != 0)
		goto out;
	s->scan.active = true;
	if (start_thread(&s->scan.thread, size_scan_main, s) != 0) {
		s->scan.active = false;
		rc = ohb_fail(err, OHB_E_NOMEM, "cannot start the size scan");
		goto out;
	}
	s->scan.thread_started = true;
	pthread_cond_broadcast(&s->queue_cond);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- the dispatcher ------------------------------------------------------------ */

static void
deliver(ohb_session_t *s, event_t *ev)
{
	const ohb_callbacks_t *cb = &s->cb;
	switch (ev->type) {
	case EV_FILE_READY:
		if (cb->on_file_ready) {
			ohb_file_t f = { ev->bundle, ev->uri, ev->fd, ev->manifest_fd };
			/* The fds now belong to the client (the spec: the client closes them). */
			ev->fd = -1;
			ev->manifest_fd = -1;
			cb->on_file_ready(cb->user, ev->err, ev->message, &f);
		}
		break;
	case EV_BUNDLE_BEGIN:
		if (cb->on_bundle_begin)
			cb->on_bundle_begin(cb->user, ev->err, ev->message, ev->bundle);
		break;
	case EV_BUNDLE_END:
		if (cb->on_bundle_end)
			cb->on_bundle_end(cb->user, ev->err, ev->message, ev->bundle);
		break;
	case EV_ALL_END:
		if (cb->on_all_bundles_end)
			cb->on_all_bundles_end(cb->user, ev->err, ev->message);
		break;
	case EV_RESULT:
		if (cb->on_result_report)
			cb->on_result_report(cb->user, ev->bundle, ev->text);
		break;
	case EV_PROCESS:
		if (cb->on_process)
			cb->on_process(cb->user, ev->bundle, ev->text);
		break;
	case EV_SIZE_REPORT:
		if (cb->on_backup_size_report)
			cb->on_backup_size_report(cb->user, ev->text);
		break;
	}
}

static void *
dispatcher_main(void *arg)
{
	ohb_session_t *s = arg;
	int64_t interval = s->svc->process_interval_ms;
	int64_t next_tick = fsu_mono_ms() + interval;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		int64_t now = fsu_mono_ms();
		if (now >= next_tick) {
			for (size_t i = 0; i < s->n_jobs; i++)
				if (s->jobs[i]->progress_live)
					push_process_locked(s, s->jobs[i]);
			next_tick = now + interval;
		}
		if (s->scan.active && now >= s->scan.next_report_ms) {
			push_size_report_locked(s, false);
			s->scan.next_report_ms = now + s->scan.interval_ms;
		}
		if (!s->head) {
			if (s->dispatcher_stop)
				break;
			bool live = false;
			for (size_t i = 0; i < s->n_jobs && !live; i++)
				live = s->jobs[i]->progress_live;
			if (live || s->scan.active) {
				int64_t wake = live ? next_tick : s->scan.next_report_ms;
				if (s->scan.active && s->scan.next_report_ms < wake)
					wake = s->scan.next_report_ms;
				struct timespec ts;
				deadline_in(&ts, wake > now ? wake - now : 1);
				pthread_cond_timedwait(&s->queue_cond, &s->lock, &ts);
			} else {
				pthread_cond_wait(&s->queue_cond, &s->lock);
				next_tick = fsu_mono_ms() + interval;
			}
			continue;
		}
		event_t *ev = s->head;
		s->head = ev->next;
		if (!s->head)
			s->tail = NULL;
		if (ev->type == EV_FILE_READY) {
			s->files_in_queue--;
			pthread_cond_broadcast(&s->work_cond);
		}
		pthread_mutex_unlock(&s->lock);
		deliver(s, ev);
		bool was_all_end = ev->type == EV_ALL_END;
		event_free(ev);
		pthread_mutex_lock(&s->lock);
		if (was_all_end) {
			s->all_end_delivered = true;
			pthread_cond_broadcast(&s->queue_cond);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* ---- the workers -------------------------------------------------------------- */

/* restoreDeps: a job waits until every bundle it names that is in this
 * session has ended (whatever its outcome: the dependent is still worth
 * restoring, and its own result will say how it went). */
static bool
deps_done_locked(ohb_session_t *s, const job_t *j)
{
	for (size_t d = 0; d < j->n_deps; d++) {
		job_t *dep = find_job_locked(s, j->deps[d]);
		if (dep && dep != j && dep->state != JOB_DONE)
			return false;
	}
	return true;
}

static job_t *
next_job_locked(ohb_session_t *s)
{
	job_t *best = NULL;
	for (size_t i = 0; i < s->n_jobs; i++) {
		job_t *j = s->jobs[i];
		if (j->state != JOB_PENDING || !deps_done_locked(s, j))
			continue;
		if (!best || j->priority > best->priority ||
		    (j->priority == best->priority && j->order < best->order))
			best = j;
	}
	return best;
}

static bool
all_done_locked(const ohb_session_t *s)
{
	for (size_t i = 0; i < s->n_jobs; i++)
		if (s->jobs[i]->state != JOB_DONE)
			return false;
	return true;
}

static void
maybe_all_end_locked(ohb_session_t *s)
{
	if (!s->all_end_queued && s->n_jobs > 0 && all_done_locked(s)) {
		s->all_end_queued = true;
		push_locked(s, EV_ALL_END, 0, NULL, NULL, NULL, NULL, -1, -1);
	}
}

/* Ends a job: final onProcess, onResultReport, onBundleEnd, in that order. */
static void
finish_job_locked(ohb_session_t *s, job_t *j, int code, const char *message, const char *result)
{
	j->progress_live = false;
	if (code == 0)
		push_process_locked(s, j);
	if (result)
		push_locked(s, EV_RESULT, 0, NULL, j->name, NULL, result, -1, -1);
	push_locked(s, EV_BUNDLE_END, code, message, j->name, NULL, NULL, -1, -1);
	j->state = JOB_DONE;
	pthread_cond_broadcast(&s->work_cond);
	maybe_all_end_locked(s);
}

static void
run_job(ohb_session_t *s, job_t *j)
{
	ohb_error_t err;
	ohb_error_clear(&err);
	char *result = NULL;
	int rc = s->kind == SESSION_RESTORE ? job_restore_run(s, j, &result, &err)
	                                     : job_backup_run(s, j, &result, &err);
	pthread_mutex_lock(&s->lock);
	bool cancelled = j->cancel || s->releasing;
	j->state = JOB_FINISHING;
	if (j->timed_out) {
		char msg[200];
		snprintf(msg, sizeof msg, "%s ran past its timer and was stopped", j->name);
		char *text = error_result(OHB_E_TIMEOUT, msg);
		finish_job_locked(s, j, OHB_E_TIMEOUT, msg, text);
		free(text);
	} else if (cancelled) {
		/* A cancelled bundle is not a failed one (LESSONS.md 1): it ends with err 0. */
		char *text = session_count_result("cancelled", 0, 0, j->bytes_done);
		finish_job_locked(s, j, 0, "cancelled", text);
		free(text);
	} else if (rc != 0) {
		char *text = error_result(rc, err.message);
		finish_job_locked(s, j, rc, err.message, text);
		free(text);
	} else {
		finish_job_locked(s, j, 0, NULL, result);
	}
	pthread_mutex_unlock(&s->lock);
	free(result);
}

static void refuse_job_locked(ohb_session_t *s, job_t *j, int code, const char *message);

/* Can pending job j reach `target` by following pending restoreDeps? */
static bool
reaches_locked(ohb_session_t *s, const job_t *j, const job_t *target, size_t depth)
{
	if (depth > s->n_jobs)
		return false;
	for (size_t d = 0; d < j->n_deps; d++) {
		job_t *dep = find_job_locked(s, j->deps[d]);
		if (!dep || dep == j || dep->state != JOB_PENDING)
			continue;
		if (dep == target || reaches_locked(s, dep, target, depth + 1))
			return true;
	}
	return false;
}

/* Nothing runs and nothing can start, yet bundles wait: some wait on each
 * other (a restoreDeps cycle). Those are reported instead of hanging; a bundle
 * that merely depends on a cycle then runs once the cycle's bundles have
 * ended (dependencies are waited for, whatever their outcome). Returns true
 * when it refused any. */
static bool
refuse_dependency_cycles_locked(ohb_session_t *s)
{
	size_t n_cyclic = 0;
	job_t **cyclic = calloc(s->n_jobs ? s->n_jobs : 1, sizeof *cyclic);
	for (size_t i = 0; cyclic && i < s->n_jobs; i++) {
		job_t *j = s->jobs[i];
		if (j->state == JOB_PENDING && reaches_locked(s, j, j, 0))
			cyclic[n_cyclic++] = j;
	}
	for (size_t i = 0; i < n_cyclic; i++) {
		char msg[400];
		snprintf(msg, sizeof msg, "%s waits on restoreDeps that wait on it (a dependency cycle); not restored",
		    cyclic[i]->name);
		refuse_job_locked(s, cyclic[i], OHB_E_INVAL, msg);
	}
	free(cyclic);
	if (n_cyclic) {
		maybe_all_end_locked(s);
		pthread_cond_broadcast(&s->work_cond);
	}
	return n_cyclic > 0;
}

static void *
worker_main(void *arg)
{
	ohb_session_t *s = arg;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		job_t *j = NULL;
		while (!s->releasing && !(j = next_job_locked(s))) {
			if (s->running == 0 && refuse_dependency_cycles_locked(s))
				continue;
			pthread_cond_wait(&s->work_cond, &s->lock);
		}
		if (s->releasing)
			break;
		j->state = JOB_RUNNING;
		j->progress_live = true;
		j->window_start_ms = fsu_mono_ms();
		if (!j->timer_set)
			j->deadline_ms = j->window_start_ms + APP_PHASE_DEFAULT_MS;
		s->running++;
		push_locked(s, EV_BUNDLE_BEGIN, 0, NULL, j->name, NULL, NULL, -1, -1);
		pthread_mutex_unlock(&s->lock);
		run_job(s, j);
		pthread_mutex_lock(&s->lock);
		s->running--;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Signals meant for the front end's main loop must not land on our threads
 * (LESSONS.md, "Threads and libarchive"). */
static int
start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(t, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static int
start_threads_locked(ohb_session_t *s, ohb_error_t *err)
{
	if (s->threads_started)
		return 0;
	size_t n = (size_t)s->svc->max_parallel;
	s->workers = calloc(n, sizeof *s->workers);
	if (!s->workers)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	if (start_thread(&s->dispatcher, dispatcher_main, s) != 0)
		return ohb_fail(err, OHB_E_NOMEM, "cannot start the session's dispatcher thread");
	s->threads_started = true;
	for (size_t i = 0; i < n; i++) {
		if (start_thread(&s->workers[i], worker_main, s) != 0)
			break;
		s->n_workers++;
	}
	if (s->n_workers == 0)
		return ohb_fail(err, OHB_E_NOMEM, "cannot start worker threads");
	return 0;
}

/* ---- creating a session --------------------------------------------------------- */

/* One active session per device: in this process through svc->active, and
 * across processes through an flock on <root>/service.lock, which the kernel
 * drops when a process dies, so a crash never leaves a stale lock. */
static int
claim_service(ohb_service_t *svc, ohb_session_t *s, ohb_error_t *err)
{
	pthread_mutex_lock(&svc->lock);
	int rc = 0;
	char *lock_path = fsu_join(svc->root, "service.lock");
	if (!lock_path) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	char info[400] = "";
	if (svc->active) {
		snprintf(info, sizeof info, "{\"sessionInfo\":{\"error\":\"Session Conflict\",\"name\":\"pid %ld\","
		    "\"activeTime\":\"%lld\",\"scenario\":\"%s\"}}", (long)getpid(),
		    (long long)svc->active->created_ms, svc->active->kind == SESSION_BACKUP ? "BACKUP" : "RESTORE");
		rc = ohb_fail(err, OHB_E_SESSION_CONFLICT, "%s", info);
		goto out;
	}
	int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = ohb_fail_errno(err, errno, "cannot open %s", lock_path);
		goto out;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		char holder[300] = "";
		ssize_t n = pread(fd, holder, sizeof holder - 1, 0);
		holder[n > 0 ? n : 0] = '\0';
		close(fd);
		if (holder[0] == '{')
			rc = ohb_fail(err, OHB_E_SESSION_CONFLICT, "%s", holder);
		else
			rc = ohb_fail(err, OHB_E_SESSION_CONFLICT,
			    "{\"sessionInfo\":{\"error\":\"Session Conflict\",\"name\":\"another process\","
			    "\"activeTime\":\"\",\"scenario\":\"\"}}");
		goto out;
	}
	snprintf(info, sizeof info, "{\"sessionInfo\":{\"error\":\"Session Conflict\",\"name\":\"pid %ld\","
	    "\"activeTime\":\"%lld\",\"scenario\":\"%s\"}}\n", (long)getpid(), (long long)s->created_ms,
	    s->kind == SESSION_BACKUP ? "BACKUP" : "RESTORE");
	if (ftruncate(fd, 0) == 0 && pwrite(fd, info, strlen(info), 0) < 0) {
		/* The holder text is a courtesy for the other side's message; not fatal. */
	}
	svc->lock_fd = fd;
	svc->active = s;
out:
	free(lock_path);
	pthread_mutex_unlock(&svc->lock);
	return rc;
}

static void
unclaim_service(ohb_service_t *svc, ohb_session_t *s)
{
	pthread_mutex_lock(&svc->lock);
	if (svc->active == s) {
		svc->active = NULL;
		if (svc->lock_fd >= 0) {
			if (ftruncate(svc->lock_fd, 0) != 0) {
				/* Stale text in an unlocked file is harmless. */
			}
			close(svc->lock_fd);
			svc->lock_fd = -1;
		}
	}
	pthread_mutex_unlock(&svc->lock);
}

static int
session_create(ohb_service_t *svc, session_kind_t kind, const ohb_callbacks_t *cb, ohb_session_t **out,
    ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!svc || !cb || !out)
		return ohb_fail(err, OHB_E_PARAM, "a service, callbacks and an output pointer are required");
	ohb_session_t *s = calloc(1, sizeof *s);
	if (!s)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	s->svc = svc;
	s->kind = kind;
	s->cb = *cb;
	s->created_ms = fsu_now_ms();
	s->default_rate = DEFAULT_SEND_RATE;
	pthread_mutex_init(&s->lock, NULL);
	cond_init_monotonic(&s->work_cond);
	cond_init_monotonic(&s->queue_cond);
	int rc = claim_service(svc, s, err);
	if (rc == 0)
		rc = reg_device_open(svc->root, &s->dev, err);
	if (rc != 0) {
		unclaim_service(svc, s);
		pthread_mutex_destroy(&s->lock);
		pthread_cond_destroy(&s->work_cond);
		pthread_cond_destroy(&s->queue_cond);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int
ohb_session_backup_create(ohb_service_t *svc, const ohb_callbacks_t *cb, ohb_session_t **out, ohb_error_t *err)
{
	return session_create(svc, SESSION_BACKUP, cb, out, err);
}

int
ohb_session_restore_create(ohb_service_t *svc, const ohb_callbacks_t *cb, ohb_session_t **out,
    ohb_error_t *err)
{
	return session_create(svc, SESSION_RESTORE, cb, out, err);
}

/* ---- appending bundles ---------------------------------------------------------- */

static int
add_job_locked(ohb_session_t *s, job_t *j, ohb_error_t *err)
{
	if (s->n_jobs == s->cap_jobs) {
		size_t nc = s->cap_jobs ? s->cap_jobs * 2 : 8;
		job_t **nv = realloc(s->jobs, nc * sizeof *nv);
		if (!nv)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		s->jobs = nv;
		s->cap_jobs = nc;
	}
	j->order = s->n_jobs;
	s->jobs[s->n_jobs++] = j;
	return 0;
}

/* A bundle that cannot run: its begin and end carry the code, at once. */
static void
refuse_job_locked(ohb_session_t *s, job_t *j, int code, const char *message)
{
	j->state = JOB_DONE;
	push_locked(s, EV_BUNDLE_BEGIN, code, message, j->name, NULL, NULL, -1, -1);
	char *text = error_result(code, message);
	if (text)
		push_locked(s, EV_RESULT, 0, NULL, j->name, NULL, text, -1, -1);
	free(text);
	push_locked(s, EV_BUNDLE_END, code, message, j->name, NULL, NULL, -1, -1);
}

/* The "target" of an app_mapping_relation detail for `source` in an infos
 * string (spec: SessionRestore.appendBundles example), malloc'd, or NULL. */
static char *
mapping_target(const char *info, const char *source)
{
	if (!info)
		return NULL;
	cJSON *root = cJSON_Parse(info);
	char *target = NULL;
	cJSON *infos = cJSON_GetObjectItemCaseSensitive(root, "infos");
	cJSON *inf;
	cJSON_ArrayForEach(inf, infos) {
		cJSON *d;
		cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(inf, "details")) {
			cJSON *type = cJSON_GetObjectItemCaseSensitive(d, "type");
			if (!cJSON_IsString(type) || strcmp(type->valuestring, "app_mapping_relation") != 0)
				continue;
			cJSON *m;
			cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(d, "detail")) {
				cJSON *src = cJSON_GetObjectItemCaseSensitive(m, "source");
				cJSON *dst = cJSON_GetObjectItemCaseSensitive(m, "target");
				if (cJSON_IsString(src) && cJSON_IsString(dst) && strcmp(src->valuestring, source) == 0 &&
				    !target)
					target = strdup(dst->valuestring);
			}
		}
	}
	cJSON_Delete(root);
	return target;
}

static int
priority_of(const char *info)
{
	if (!info)
		return 0;
	cJSON *root = cJSON_Parse(info);
	cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "priority");
	int v = cJSON_IsNumber(p) ? p->valueint : 0;
	cJSON_Delete(root);
	return v;
}

/* Splits a restoreDeps comma list into j->deps (names trimmed, empties dropped). */
static void
set_deps(job_t *j, const char *list)
{
	if (!list || !*list)
		return;
	char *copy = strdup(list);
	if (!copy)
		return;
	size_t cap = 1;
	for (const char *p = copy; *p; p++)
		cap += *p == ',';
	j->deps = calloc(cap, sizeof *j->deps);
	for (char *tok = copy, *next; j->deps && tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		while (*tok == ' ')
			tok++;
		size_t len = strlen(tok);
		while (len > 0 && tok[len - 1] == ' ')
			tok[--len] = '\0';
		if (len > 0 && strcmp(tok, j->name) != 0)
			j->deps[j->n_deps++] = strdup(tok);
	}
	free(copy);
}

/* Reads the base all.rp of an incremental entry into j->base. */
static int
load_base(job_t *j, const ohb_incremental_data_t *d, ohb_error_t *err)
{
	j->last_incremental_time = d->last_incremental_time;
	if (d->priority)
		j->priority = d->priority;
	if (d->manifest_fd < 0)
		return 0;
	char *text = NULL;
	size_t len = 0;
	int rc = fsu_read_fd(d->manifest_fd, 1u << 30, &text, &len, err);
	if (rc == 0 && len > 0) {
		char *warnings = NULL;
		rc = rp_parse(text, len, &j->base, &warnings, err);
		free(warnings);
	}
	free(text);
	return rc;
}

static int
append_common(ohb_session_t *s, const char *const *names, const char *const *infos, size_t n,
    const ohb_incremental_data_t *inc, ohb_error_t *err)
{
	if (!names && n > 0)
		return ohb_fail(err, OHB_E_PARAM, "the list of bundles is missing");
	pthread_mutex_lock(&s->lock);
	int rc = 0;
	if (s->releasing || s->all_end_queued) {
		rc = ohb_fail(err, OHB_E_PERM, "the session has ended; create a new one");
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *name = names[i];
		if (!name || !*name) {
			rc = ohb_fail(err, OHB_E_PARAM, "bundle name %zu is empty", i);
			break;
		}
		job_t *j = calloc(1, sizeof *j);
		if (!j || !(j->name = strdup(name))) {
			free(j);
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
			break;
		}
		j->session = s;
		j->wake_fd = -1;
		j->info = infos ? dup_or_null(infos[i]) : NULL;
		j->priority = priority_of(j->info);
		j->rate = s->default_rate;
		if ((rc = add_job_locked(s, j, err)) != 0) {
			job_free(j);
			break;
		}
		if (inc) {
			ohb_error_t e2;
			if (load_base(j, &inc[i], &e2) != 0) {
				char msg[sizeof e2.message + 64];
				snprintf(msg, sizeof msg, "the base manifest (all.rp) is unreadable: %s", e2.message);
				refuse_job_locked(s, j, e2.code, msg);
				continue;
			}
		}
		if (find_job_locked(s, name) != j) {
			refuse_job_locked(s, j, OHB_E_INVAL, "the bundle was appended twice to this session");
			continue;
		}
		const char *local = name;
		char *target = NULL;
		if (s->kind == SESSION_RESTORE) {
			const cap_bundle_t *cb = cap_find(&s->cap, name);
			if (!cb) {
				char msg[300];
				snprintf(msg, sizeof msg, "%s is not listed in the capability file", name);
				refuse_job_locked(s, j, OHB_E_BUNDLE_EMPTY, msg);
				continue;
			}
			if (!cb->valid) {
				refuse_job_locked(s, j, OHB_E_BUNDLE_EMPTY, cb->invalid_reason);
				continue;
			}
			target = mapping_target(j->info, name);
			if (target)
				local = target;
			set_deps(j, cb->restore_deps);
		}
		j->bundle = reg_device_find(s->dev, local);
		if (s->kind == SESSION_RESTORE && j->bundle && j->n_deps == 0)
			set_deps(j, j->bundle->restore_deps);
		if (!j->bundle) {
			char msg[300];
			snprintf(msg, sizeof msg, "%s is not installed on this device", local);
			refuse_job_locked(s, j, OHB_E_BUNDLE_EMPTY, msg);
		} else if (!j->bundle->allow_backup_restore) {
			char msg[300];
			snprintf(msg, sizeof msg, "%s does not allow backup and restore (allowToBackupRestore is false)",
			    local);
			refuse_job_locked(s, j, OHB_E_NOT_SUPPORTED, msg);
		} else if (s->kind == SESSION_RESTORE) {
			j->incoming_dir = fsu_join(j->bundle->temp_dir, "restore/incoming");
			ohb_error_t e2;
			if (!j->incoming_dir) {
				refuse_job_locked(s, j, OHB_E_NOMEM, "out of memory");
			} else if (fsu_rm_rf(j->incoming_dir, &e2) != 0 || fsu_mkdir_p(j->incoming_dir, 0700, &e2) != 0) {
				refuse_job_locked(s, j, e2.code, e2.message);
			}
		}
		free(target);
	}
	if (rc == 0)
		rc = start_threads_locked(s, err);
	maybe_all_end_locked(s);
	pthread_cond_broadcast(&s->work_cond);
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int
ohb_session_append_backup(ohb_session_t *s, const char *const *names, const char *const *infos, size_t n,
    ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!s)
		return ohb_fail(err, OHB_E_PARAM, "no session");
	if (s->kind != SESSION_BACKUP)
		return ohb_fail(err, OHB_E_PERM, "this is not a backup session");
	return append_common(s, names, infos, n, NULL, err);
}

int
ohb_session_append_restore(ohb_session_t *s, int capability_fd, const char *const *names,
    const char *const *infos, size_t n, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!s)
		return ohb_fail(err, OHB_E_PARAM, "no session");
	if (s->kind != SESSION_RESTORE)
		return ohb_fail(err, OHB_E_PERM, "this is not a restore session");
	if (capability_fd < 0)
		return ohb_fail(err, OHB_E_PARAM, "the capability file descriptor is invalid");
	char *text = NULL;
	size_t len = 0;
	int rc = fsu_read_fd(capability_fd, 64u << 20, &text, &len, err);
	if (rc != 0)
		return rc;
	cap_file_t cf;
	memset(&cf, 0, sizeof cf);
	rc = cap_parse(text, len, &cf, err);
	free(text);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&s->lock);
	if (s->have_cap)
		cap_file_free(&s->cap);
	s->cap = cf;
	s->have_cap = true;
	pthread_mutex_unlock(&s->lock);
	return append_common(s, names, infos, n, NULL, err);
}

int
ohb_session_incremental_create(ohb_service_t *svc, const ohb_callbacks_t *cb, ohb_session_t **out,
    ohb_error_t *err)
{
	return session_create(svc, SESSION_INCREMENTAL, cb, out, err);
}

int
ohb_session_append_incremental(ohb_session_t *s, const ohb_incremental_data_t *list, size_t n,
    const char *const *infos, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!s)
		return ohb_fail(err, OHB_E_PARAM, "no session");
	if (s->kind != SESSION_INCREMENTAL)
		return ohb_fail(err, OHB_E_PERM, "this is not an incremental backup session");
	if (!list && n > 0)
		return ohb_fail(err, OHB_E_PARAM, "the list of bundles is missing");
	const char **names = calloc(n ? n : 1, sizeof *names);
	if (!names)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		names[i] = list[i].bundle_name;
		if (list[i].last_incremental_time < 0) {
			free(names);
			return ohb_fail(err, OHB_E_PARAM, "lastIncrementalTime of %s is negative",
			    list[i].bundle_name ? list[i].bundle_name : "(null)");
		}
	}
	int rc = append_common(s, names, infos, n, list, err);
	free(names);
	return rc;
}

/* ---- restore: file handles and publish ------------------------------------------ */

/* A restore job's eventfd: something it waits for changed (publish, cancel, release). */
static void
wake_job_locked(job_t *j)
{
	uint64_t one = 1;
	if (j->wake_fd >= 0 && write(j->wake_fd, &one, sizeof one) < 0) {
		/* the counter is full: the job has a wake-up pending anyway */
	}
}

enum { EXPECT_NEW, EXPECT_HANDED, EXPECT_CLAIMED };

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Index of uri among the files manage.json names, or -1. */
static ssize_t
expected_locked(const job_t *j, const char *uri)
{
	if (!j->expect)
		return -1;
	char *const *hit = bsearch(&uri, j->expect, j->n_expect, sizeof *j->expect, cmp_names);
	return hit ? hit - j->expect : -1;
}

static bool
claimed_locked(const job_t *j, const char *uri)
{
	if (strcmp(uri, "manage.json") == 0)
		return j->manage_claimed;
	ssize_t i = expected_locked(j, uri);
	return i >= 0 && j->expect_state[i] == EXPECT_CLAIMED;
}

/* Creates (or empties) the incoming file and queues its onFileReady. */
static int
hand_out_locked(ohb_session_t *s, job_t *j, const char *uri, ohb_error_t *err)
{
	char *path = fsu_join(j->incoming_dir, uri);
	int fd = path ? open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600) : -1;
	int rc;
	if (fd < 0)
		rc = path ? ohb_fail_errno(err, errno, "cannot create %s", path) : ohb_fail(err, OHB_E_NOMEM, "out of memory");
	else
		rc = push_locked(s, EV_FILE_READY, 0, NULL, j->name, uri, NULL, fd, -1);
	free(path);
	ssize_t i = rc == 0 ? expected_locked(j, uri) : -1;
	if (i >= 0 && j->expect_state[i] == EXPECT_NEW) {
		j->expect_state[i] = EXPECT_HANDED;
		j->outstanding++;
	}
	return rc;
}

static int
claimed_error(ohb_error_t *err, const job_t *j, const char *uri)
{
	return ohb_fail(err, OHB_E_PERM, "%s of %s was already received and is being restored; it cannot be sent again",
	    uri, j->name);
}

int
ohb_session_get_file_handle(ohb_session_t *s, const char *bundle, const char *uri, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!s || !bundle || !uri)
		return ohb_fail(err, OHB_E_PARAM, "bundle name and uri are required");
	if (s->kind != SESSION_RESTORE)
		return ohb_fail(err, OHB_E_PERM, "getFileHandle belongs to a restore session");
	if (!fsu_uri_is_valid(uri))
		return ohb_fail(err, OHB_E_INVAL, "uri \"%s\" may contain only 0-9, a-z, A-Z, '_' and '.'", uri);
	pthread_mutex_lock(&s->lock);
	job_t *j = find_job_locked(s, bundle);
	int rc = 0;
	if (!j || j->state == JOB_DONE || !j->incoming_dir) {
		rc = ohb_fail(err, OHB_E_INVAL, "%s is not a bundle being restored in this session", bundle);
	} else if (j->published) {
		rc = ohb_fail(err, OHB_E_PERM, "%s was already published", bundle);
	} else if (claimed_locked(j, uri)) {
		rc = claimed_error(err, j, uri);
	} else if (j->applying && j->outstanding >= SESSION_RESTORE_AHEAD && expected_locked(j, uri) >= 0) {
		/* answered by session_restore_applying when the job has applied its file */
		if (j->n_deferred == j->cap_deferred) {
			size_t ncap = j->cap_deferred ? j->cap_deferred * 2 : 8;
			char **nv = realloc(j->deferred, ncap * sizeof *nv);
			if (nv) {
				j->deferred = nv;
				j->cap_deferred = ncap;
			}
		}
		char *copy = j->n_deferred < j->cap_deferred ? strdup(uri) : NULL;
		if (copy)
			j->deferred[j->n_deferred++] = copy;
		else
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	} else {
		rc = hand_out_locked(s, j, uri, err);
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

bool
session_restore_claim(ohb_session_t *s, job_t *j, const char *uri, bool (*complete)(void *arg), void *arg)
{
	pthread_mutex_lock(&s->lock);
	bool ok = false;
	if (strcmp(uri, "manage.json") == 0) {
		if (!j->manage_claimed && complete(arg))
			ok = j->manage_claimed = true;
	} else {
		ssize_t i = expected_locked(j, uri);
		if (i >= 0 && j->expect_state[i] != EXPECT_CLAIMED && complete(arg)) {
			if (j->expect_state[i] == EXPECT_HANDED)
				j->outstanding--;
			j->expect_state[i] = EXPECT_CLAIMED;
			ok = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

void
session_restore_unclaim_manage(ohb_session_t *s, job_t *j)
{
	pthread_mutex_lock(&s->lock);
	j->manage_claimed = false;
	pthread_mutex_unlock(&s->lock);
}

bool
session_restore_expect(ohb_session_t *s, job_t *j, const char *const *names, size_t n)
{
	char **v = calloc(n ? n : 1, sizeof *v);
	unsigned char *state = calloc(n ? n : 1, 1);
	bool ok = v && state;
	for (size_t i = 0; ok && i < n; i++)
		ok = (v[i] = strdup(names[i])) != NULL;
	if (!ok) {
		for (size_t i = 0; v && i < n; i++)
			free(v[i]);
		free(v);
		free(state);
		return false;
	}
	qsort(v, n, sizeof *v, cmp_names);
	pthread_mutex_lock(&s->lock);
	/* Files handed out before the job knew them are not counted as outstanding:
	 * that only makes a wait less likely. */
	j->expect = v;
	j->expect_state = state;
	j->n_expect = n;
	pthread_mutex_unlock(&s->lock);
	return true;
}

void
session_restore_applying(ohb_session_t *s, job_t *j, bool on)
{
	pthread_mutex_lock(&s->lock);
	j->applying = on;
	for (size_t i = 0; !on && i < j->n_deferred; i++) {
		char *uri = j->deferred[i];
		ohb_error_t e;
		int rc = claimed_locked(j, uri) ? claimed_error(&e, j, uri) : hand_out_locked(s, j, uri, &e);
		if (rc != 0)   /* getFileHandle has returned 0 already: the failure goes to onFileReady */
			push_locked(s, EV_FILE_READY, rc, e.message, j->name, uri, NULL, -1, -1);
		free(uri);
	}
	if (!on)
		j->n_deferred = 0;
	pthread_mutex_unlock(&s->lock);
}

void
session_restore_set_wake_fd(ohb_session_t *s, job_t *j, int fd)
{
	pthread_mutex_lock(&s->lock);
	j->wake_fd = fd;
	pthread_mutex_unlock(&s->lock);
}

int
ohb_session_publish_file(ohb_session_t *s, const char *bundle, const char *uri, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!s || !bundle)
		return ohb_fail(err, OHB_E_PARAM, "bundle name is required");
	if (s->kind != SESSION_RESTORE)
		return ohb_fail(err, OHB_E_PERM, "publishFile belongs to a restore session");
	/* REFERENCE.md: a non-empty uri is refused with EPERM. */
	if (uri && *uri)
		return ohb_fail(err, OHB_E_PERM, "publishFile takes an empty uri (the whole bundle is published)");
	pthread_mutex_lock(&s->lock);
	job_t *j = find_job_locked(s, bundle);
	int rc = 0;
	if (!j || j->state == JOB_DONE || !j->incoming_dir)
		rc = ohb_fail(err, OHB_E_INVAL, "%s is not a bundle being restored in this session", bundle);
	else {
		j->published = true;
		wake_job_locked(j);
	}
	pthread_cond_broadcast(&s->work_cond);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- controls ------------------------------------------------------------------- */

int
ohb_session_cancel(ohb_session_t *s, const char *bundle)
{
	if (!s || !bundle)
		return OHB_E_CANCEL_UNKNOWN;
	pthread_mutex_lock(&s->lock);
	job_t *j = find_job_locked(s, bundle);
	int rc;
	if (!j)
		rc = OHB_E_CANCEL_UNKNOWN;
	else if (j->state == JOB_PENDING)
		rc = OHB_E_CANCEL_UNSTARTED;
	else if (j->state == JOB_RUNNING && !j->cancel) {
		j->cancel = true;
		wake_job_locked(j);
		rc = 0;
	} else
		rc = OHB_E_CANCEL_UNKNOWN;
	pthread_cond_broadcast(&s->work_cond);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

bool
ohb_update_send_rate(ohb_service_t *svc, const char *bundle, int fds_per_second)
{
	if (!svc || !bundle || fds_per_second < 0)
		return false;
	pthread_mutex_lock(&svc->lock);
	ohb_session_t *s = svc->active;
	bool ok = false;
	if (s) {
		pthread_mutex_lock(&s->lock);
		job_t *j = find_job_locked(s, bundle);
		if (j && j->state != JOB_DONE) {
			j->rate = fds_per_second > MAX_SEND_RATE ? MAX_SEND_RATE : fds_per_second;
			ok = true;
			pthread_cond_broadcast(&s->work_cond);
		}
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&svc->lock);
	return ok;
}

bool
ohb_session_set_default_send_rate(ohb_session_t *s, int fds_per_second)
{
	if (!s || fds_per_second < 0)
		return false;
	pthread_mutex_lock(&s->lock);
	s->default_rate = fds_per_second > MAX_SEND_RATE ? MAX_SEND_RATE : fds_per_second;
	pthread_mutex_unlock(&s->lock);
	return true;
}

bool
ohb_session_wait(ohb_session_t *s, int timeout_ms)
{
	if (!s)
		return true;
	struct timespec ts;
	if (timeout_ms >= 0)
		deadline_in(&ts, timeout_ms);
	pthread_mutex_lock(&s->lock);
	while (!s->all_end_delivered) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->queue_cond, &s->lock);
		else if (pthread_cond_timedwait(&s->queue_cond, &s->lock, &ts) == ETIMEDOUT)
			break;
	}
	bool done = s->all_end_delivered;
	pthread_mutex_unlock(&s->lock);
	return done;
}

int
ohb_session_release(ohb_session_t *s, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!s)
		return ohb_fail(err, OHB_E_PARAM, "no session");
	pthread_mutex_lock(&s->lock);
	if (s->dispatcher_stop) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	s->releasing = true;
	for (size_t i = 0; i < s->n_jobs; i++) {
		s->jobs[i]->cancel = true;
		wake_job_locked(s->jobs[i]);
	}
	pthread_cond_broadcast(&s->work_cond);
	pthread_mutex_unlock(&s->lock);

	for (size_t i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i], NULL);
	s->n_workers = 0;
	if (s->scan.thread_started) {
		pthread_join(s->scan.thread, NULL);   /* it stops at the next bundle (releasing) */
		s->scan.thread_started = false;
	}

	pthread_mutex_lock(&s->lock);
	/* Bundles that never started end now, so the client sees every bundle end. */
	for (size_t i = 0; i < s->n_jobs; i++) {
		job_t *j = s->jobs[i];
		if (j->state == JOB_PENDING)
			refuse_job_locked(s, j, OHB_E_CANCEL_UNSTARTED, "the session was released before this bundle started");
	}
	if (!s->all_end_queued) {
		s->all_end_queued = true;
		push_locked(s, EV_ALL_END, 0, NULL, NULL, NULL, NULL, -1, -1);
	}
	s->dispatcher_stop = true;
	pthread_cond_broadcast(&s->queue_cond);
	pthread_mutex_unlock(&s->lock);
	if (s->threads_started) {
		pthread_join(s->dispatcher, NULL);
	} else {
		/* No thread ever ran: deliver what is queued here. */
		pthread_mutex_lock(&s->lock);
		event_t *ev;
		while ((ev = s->head) != NULL) {
			s->head = ev->next;
			pthread_mutex_unlock(&s->lock);
			deliver(s, ev);
			event_free(ev);
			pthread_mutex_lock(&s->lock);
		}
		s->tail = NULL;
		s->all_end_delivered = true;
		pthread_mutex_unlock(&s->lock);
	}
	/* Temp files of restore jobs (incoming files) go with the session. */
	for (size_t i = 0; i < s->n_jobs; i++)
		if (s->jobs[i]->incoming_dir)
			fsu_rm_rf(s->jobs[i]->incoming_dir, NULL);
	unclaim_service(s->svc, s);
	return 0;
}

void
ohb_session_free(ohb_session_t *s)
{
	if (!s)
		return;
	ohb_session_release(s, NULL);
	event_t *ev = s->head;
	while (ev) {
		event_t *next = ev->next;
		event_free(ev);
		ev = next;
	}
	for (size_t i = 0; i < s->n_jobs; i++)
		job_free(s->jobs[i]);
	free(s->jobs);
	free(s->workers);
	if (s->have_cap)
		cap_file_free(&s->cap);
	for (size_t i = 0; i < s->scan.n; i++)
		free((char *)s->scan.list[i].bundle_name);
	free(s->scan.list);
	free(s->scan.scanning);
	free(s->scan.pending);
	reg_device_free(s->dev);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->work_cond);
	pthread_cond_destroy(&s->queue_cond);
	free(s);
}


/* ---- timers, temp files, compatibility ------------------------------------------ */

bool
ohb_update_timer(ohb_service_t *svc, const char *bundle, int64_t timeout_ms, int *code)
{
	if (code)
		*code = 0;
	if (timeout_ms < 0 || timeout_ms > MAX_TIMER_MS) {
		if (code)
			*code = OHB_E_PARAM;
		return false;
	}
	if (!svc || !bundle)
		return false;
	pthread_mutex_lock(&svc->lock);
	ohb_session_t *s = svc->active;
	bool ok = false;
	if (s) {
		pthread_mutex_lock(&s->lock);
		job_t *j = find_job_locked(s, bundle);
		/* The spec: called after onBundleBegin and before onBundleEnd. */
		if (j && j->state == JOB_RUNNING) {
			j->deadline_ms = fsu_mono_ms() + timeout_ms;
			j->timer_set = true;
			ok = true;
			pthread_cond_broadcast(&s->work_cond);
		}
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&svc->lock);
	return ok;
}

/* Is the bundle in the active session and not finished? (svc->lock held) */
static bool
bundle_busy_locked(ohb_service_t *svc, const char *bundle)
{
	ohb_session_t *s = svc->active;
	if (!s)
		return false;
	pthread_mutex_lock(&s->lock);
	job_t *j = find_job_locked(s, bundle);
	bool busy = j && j->state != JOB_DONE;
	pthread_mutex_unlock(&s->lock);
	return busy;
}

bool
ohb_clean_bundle_temp_dir(ohb_service_t *svc, const char *bundle)
{
	if (!svc || !bundle || !*bundle)
		return false;
	reg_device_t *dev = NULL;
	if (reg_device_open(svc->root, &dev, NULL) != 0)
		return false;
	const reg_bundle_t *b = reg_device_find(dev, bundle);
	bool ok = false;
	pthread_mutex_lock(&svc->lock);
	if (b && !bundle_busy_locked(svc, bundle)) {
		/* A journaled restore must be finished, not thrown away: recover it first. */
		ohb_error_t e;
		ok = stage_recover(b, &e) == 0 && fsu_rm_rf(b->temp_dir, NULL) == 0 &&
		    fsu_mkdir_p(b->temp_dir, 0700, NULL) == 0;
	}
	pthread_mutex_unlock(&svc->lock);
	reg_device_free(dev);
	return ok;
}

int
ohb_get_compatibility_info(ohb_service_t *svc, const char *bundle, const char *ext_info, char **out,
    ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!svc || !bundle || !*bundle || !out)
		return ohb_fail(err, OHB_E_PARAM, "a bundle name is required");
	reg_device_t *dev = NULL;
	int rc = reg_device_open(svc->root, &dev, err);
	if (rc != 0)
		return rc;
	const reg_bundle_t *b = reg_device_find(dev, bundle);
	if (!b)
		rc = ohb_fail(err, OHB_E_PARAM, "%s is not installed on this device", bundle);
	else
		rc = ext_query(b, "compat", ext_info ? ext_info : "", 1000, out, err);
	reg_device_free(dev);
	return rc;
}
