/*
 * cli_run — following a running session from the command line (see cli_run.h).
 *
 * Signals are taken synchronously: run_wait blocks SIGINT, SIGTERM and SIGHUP
 * and collects them with sigtimedwait between progress redraws (so within
 * 200 ms), while it sleeps on the session's own end condition, so no signal
 * handler and no global flag are needed, and the session's threads (which
 * block every signal) are never interrupted.
 */
#include "cli_run.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "fsutil.h"

#define REDRAW_MS 200

int
run_tracker_init(run_tracker_t *t, const cli_ctx_t *ctx, const char *verb, const char *const *names, size_t n)
{
	memset(t, 0, sizeof *t);
	t->ctx = ctx;
	t->verb = verb;
	t->started_ms = fsu_mono_ms();
	pthread_mutex_init(&t->lock, NULL);
	t->bundles = calloc(n ? n : 1, sizeof *t->bundles);
	if (!t->bundles)
		return OHB_E_NOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!(t->bundles[i].name = strdup(names[i])))
			return OHB_E_NOMEM;
		t->n_bundles++;
	}
	return 0;
}

void
run_tracker_free(run_tracker_t *t)
{
	for (size_t i = 0; i < t->n_bundles; i++) {
		run_bundle_t *b = &t->bundles[i];
		free(b->name);
		free(b->result);
		for (size_t k = 0; k < b->n_uris; k++)
			free(b->uris[k]);
		free(b->uris);
	}
	free(t->bundles);
	pthread_mutex_destroy(&t->lock);
}

run_bundle_t *
run_tracker_find(run_tracker_t *t, const char *name)
{
	for (size_t i = 0; i < t->n_bundles; i++)
		if (name && strcmp(t->bundles[i].name, name) == 0)
			return &t->bundles[i];
	return NULL;
}

/* {"event":E,"bundle":B,"code":C,"message":M} */
static void
json_event(run_tracker_t *t, const char *event, const char *bundle, int code, const char *message)
{
	if (!t->ctx->json)
		return;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", event);
	if (bundle)
		cJSON_AddStringToObject(o, "bundle", bundle);
	cJSON_AddNumberToObject(o, "code", code);
	if (message && *message)
		cJSON_AddStringToObject(o, "message", message);
	char *text = cJSON_PrintUnformatted(o);
	if (text)
		cli_json_line(text);
	free(text);
	cJSON_Delete(o);
}

/* A line of its own on stderr for people, clearing the progress line first. */
static void
say(run_tracker_t *t, const char *kind, const char *bundle, int code, const char *message)
{
	if (t->ctx->json)
		return;
	if (t->ctx->progress)
		fputs("\r\033[K", stderr);
	fprintf(stderr, "%s: %s: %s %d: %s\n", t->verb, bundle, kind, code, message);
}

void
run_on_bundle_begin(run_tracker_t *t, int err, const char *message, const char *bundle)
{
	pthread_mutex_lock(&t->lock);
	run_bundle_t *b = run_tracker_find(t, bundle);
	/* A bundle that failed on our side before it began (its getFileHandle
	 * was refused while it waited for a free slot, when cancel answers
	 * 13500011) would wait for files that will not come: cancel it now. */
	bool failed_before = b && !err && b->code;
	if (b) {
		b->begun = true;
		if (err && !b->code) {
			b->code = err;
			snprintf(b->message, sizeof b->message, "%s", message);
		}
	}
	json_event(t, "bundleBegin", bundle, err, message);
	if (err)
		say(t, "error", bundle, err, message);
	pthread_mutex_unlock(&t->lock);
	if (failed_before && t->session)
		ohb_session_cancel(t->session, bundle);
}

void
run_on_bundle_end(run_tracker_t *t, int err, const char *message, const char *bundle)
{
	pthread_mutex_lock(&t->lock);
	run_bundle_t *b = run_tracker_find(t, bundle);
	if (b) {
		bool already_failed = b->code != 0;
		b->ended = true;
		if (err && !b->code) {
			b->code = err;
			snprintf(b->message, sizeof b->message, "%s", message);
		} else if (!err && !b->code && message && *message) {
			snprintf(b->message, sizeof b->message, "%s", message);
		}
		if (err && !already_failed)
			say(t, "error", bundle, err, message);
	}
	json_event(t, "bundleEnd", bundle, err, message);
	pthread_mutex_unlock(&t->lock);
}

void
run_on_all_end(run_tracker_t *t, int err, const char *message)
{
	pthread_mutex_lock(&t->lock);
	t->all_ended = true;
	json_event(t, "allBundlesEnd", NULL, err, message);
	pthread_mutex_unlock(&t->lock);
}

void
run_on_result(run_tracker_t *t, const char *bundle, const char *result)
{
	pthread_mutex_lock(&t->lock);
	run_bundle_t *b = run_tracker_find(t, bundle);
	if (b) {
		free(b->result);
		b->result = strdup(result);
	}
	if (t->ctx->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "resultReport");
		cJSON_AddStringToObject(o, "bundle", bundle);
		cJSON *r = cJSON_Parse(result);
		cJSON_AddItemToObject(o, "result", r ? r : cJSON_CreateString(result));
		char *text = cJSON_PrintUnformatted(o);
		if (text)
			cli_json_line(text);
		free(text);
		cJSON_Delete(o);
	}
	pthread_mutex_unlock(&t->lock);
}

/* Pulls the counters out of REFERENCE.md's onProcess wrapping. */
static void
parse_process(run_bundle_t *b, const char *process, cJSON **error_info)
{
	cJSON *root = cJSON_Parse(process);
	cJSON *pr = cJSON_GetObjectItemCaseSensitive(root, "processResult");
	cJSON *ri = cJSON_GetObjectItemCaseSensitive(pr, "resultInfo");
	cJSON *ei = cJSON_GetObjectItemCaseSensitive(pr, "errorInfo");
	if (ei && error_info)
		*error_info = cJSON_Duplicate(ei, 1);
	if (cJSON_IsString(ri)) {
		cJSON *inner = cJSON_Parse(ri->valuestring);
		cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(inner, "progressInfo"), 0);
		cJSON *v;
		if ((v = cJSON_GetObjectItemCaseSensitive(e, "processed")) && cJSON_IsNumber(v))
			b->bytes_done = (uint64_t)v->valuedouble;
		if ((v = cJSON_GetObjectItemCaseSensitive(e, "total")) && cJSON_IsNumber(v))
			b->bytes_total = (uint64_t)v->valuedouble;
		if ((v = cJSON_GetObjectItemCaseSensitive(e, "processedFiles")) && cJSON_IsNumber(v))
			b->files_done = (uint64_t)v->valuedouble;
		if ((v = cJSON_GetObjectItemCaseSensitive(e, "totalFiles")) && cJSON_IsNumber(v))
			b->files_total = (uint64_t)v->valuedouble;
		cJSON_Delete(inner);
	}
	cJSON_Delete(root);
}

void
run_on_process(run_tracker_t *t, const char *bundle, const char *process)
{
	pthread_mutex_lock(&t->lock);
	run_bundle_t *b = run_tracker_find(t, bundle);
	cJSON *error_info = NULL;
	if (b)
		parse_process(b, process, &error_info);
	if (t->ctx->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "process");
		cJSON_AddStringToObject(o, "bundle", bundle);
		cJSON *p = cJSON_Parse(process);
		cJSON_AddItemToObject(o, "process", p ? p : cJSON_CreateString(process));
		char *text = cJSON_PrintUnformatted(o);
		if (text)
			cli_json_line(text);
		free(text);
		cJSON_Delete(o);
	} else if (error_info) {
		cJSON *m = cJSON_GetObjectItemCaseSensitive(error_info, "errorMessage");
		say(t, "warning", bundle, 0, cJSON_IsString(m) ? m->valuestring : "");
	}
	cJSON_Delete(error_info);
	pthread_mutex_unlock(&t->lock);
}

void
run_fail_bundle(run_tracker_t *t, const char *bundle, int code, const char *message)
{
	pthread_mutex_lock(&t->lock);
	run_bundle_t *b = run_tracker_find(t, bundle);
	if (b && !b->code) {
		b->code = code;
		snprintf(b->message, sizeof b->message, "%s", message);
		say(t, "error", bundle, code, message);
	}
	json_event(t, "error", bundle, code, message);
	pthread_mutex_unlock(&t->lock);
}

void
run_json_file(run_tracker_t *t, const char *bundle, const char *uri, uint64_t bytes)
{
	if (!t->ctx->json)
		return;
	char line[1024];
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", "fileReady");
	cJSON_AddStringToObject(o, "bundle", bundle);
	cJSON_AddStringToObject(o, "uri", uri);
	cJSON_AddNumberToObject(o, "bytes", (double)bytes);
	if (cJSON_PrintPreallocated(o, line, sizeof line, 0))
		cli_json_line(line);
	cJSON_Delete(o);
}

/* The user pointer is a struct whose first member is its run_tracker_t, so it
 * is also a pointer to that tracker (C11 6.7.2.1p15). */
static void
fwd_begin(void *user, int err, const char *message, const char *bundle)
{
	run_on_bundle_begin(user, err, message, bundle);
}

static void
fwd_end(void *user, int err, const char *message, const char *bundle)
{
	run_on_bundle_end(user, err, message, bundle);
}

static void
fwd_all_end(void *user, int err, const char *message)
{
	run_on_all_end(user, err, message);
}

static void
fwd_result(void *user, const char *bundle, const char *result)
{
	run_on_result(user, bundle, result);
}

static void
fwd_process(void *user, const char *bundle, const char *process)
{
	run_on_process(user, bundle, process);
}

ohb_callbacks_t
run_callbacks(void *user, void (*on_file_ready)(void *user, int err, const char *message, const ohb_file_t *f))
{
	ohb_callbacks_t cb = { user, on_file_ready, fwd_begin, fwd_end, fwd_all_end, NULL, fwd_result, fwd_process,
		NULL };
	return cb;
}

static void
draw_progress(run_tracker_t *t)
{
	pthread_mutex_lock(&t->lock);
	uint64_t done = 0, total = 0;
	size_t ended = 0;
	const char *current = "";
	for (size_t i = 0; i < t->n_bundles; i++) {
		run_bundle_t *b = &t->bundles[i];
		done += b->bytes_done;
		total += b->bytes_total;
		if (b->ended)
			ended++;
		else if (b->begun && !*current)
			current = b->name;
	}
	double secs = (double)(fsu_mono_ms() - t->started_ms) / 1000.0;
	char d[32], tt[32], r[32];
	cli_human_bytes(done, d, sizeof d);
	cli_human_bytes(secs > 0 ? (uint64_t)((double)done / secs) : 0, r, sizeof r);
	if (total)
		cli_human_bytes(total, tt, sizeof tt);
	else
		snprintf(tt, sizeof tt, "?");
	fprintf(stderr, "\r\033[K%s: %zu/%zu bundles  %s / %s  %s/s  %s", t->verb, ended, t->n_bundles, d, tt, r,
	    current);
	fflush(stderr);
	pthread_mutex_unlock(&t->lock);
}

bool
run_wait(run_tracker_t *t)
{
	ohb_session_t *s = t->session;
	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	bool interrupted = false;
	/* Wait on the session itself (it wakes us the moment it ends), and look for a
	 * pending signal between redraws: the end costs no polling delay. */
	while (!ohb_session_wait(s, REDRAW_MS)) {
		struct timespec zero = { 0, 0 };
		int sig = sigtimedwait(&set, NULL, &zero);
		if (sig > 0) {
			interrupted = true;
			if (!t->ctx->json)
				fprintf(stderr, "\r\033[K%s: interrupted by signal %d; stopping and cleaning up\n", t->verb, sig);
			ohb_session_release(s, NULL);
			break;
		}
		if (t->ctx->progress)
			draw_progress(t);
	}
	if (t->ctx->progress)
		fputs("\r\033[K", stderr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return interrupted;
}

int
run_report(run_tracker_t *t, const char *set_id, bool interrupted)
{
	bool all_ok = !interrupted;
	double secs = (double)(fsu_mono_ms() - t->started_ms) / 1000.0;
	cJSON *summary = cJSON_CreateObject();
	cJSON_AddStringToObject(summary, "event", "summary");
	cJSON_AddStringToObject(summary, "operation", t->verb);
	if (set_id)
		cJSON_AddStringToObject(summary, "set", set_id);
	cJSON *arr = cJSON_AddArrayToObject(summary, "bundles");
	if (!t->ctx->json)
		printf("%-36s %-10s %12s %8s  %s\n", "BUNDLE", "RESULT", "BYTES", "FILES", "DETAIL");
	for (size_t i = 0; i < t->n_bundles; i++) {
		run_bundle_t *b = &t->bundles[i];
		bool ok = b->ended && b->code == 0 && strcmp(b->message, "cancelled") != 0;
		const char *state = ok ? "ok" : b->code ? "failed" : strcmp(b->message, "cancelled") == 0 ? "cancelled"
		                                                                                                : "unfinished";
		all_ok = all_ok && ok;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", b->name);
		cJSON_AddStringToObject(o, "state", state);
		cJSON_AddNumberToObject(o, "code", b->code);
		cJSON_AddStringToObject(o, "message", b->message);
		cJSON_AddNumberToObject(o, "bytes", (double)b->received_bytes);
		cJSON_AddNumberToObject(o, "files", (double)b->received_files);
		cJSON_AddItemToArray(arr, o);
		if (!t->ctx->json) {
			char h[32], detail[600];
			if (b->code)
				snprintf(detail, sizeof detail, "error %d: %s", b->code, b->message);
			else
				snprintf(detail, sizeof detail, "%s", b->message);
			printf("%-36s %-10s %12s %8llu  %s\n", b->name, state, cli_human_bytes(b->received_bytes, h, sizeof h),
			    (unsigned long long)b->received_files, detail);
		}
	}
	cJSON_AddBoolToObject(summary, "ok", all_ok);
	cJSON_AddBoolToObject(summary, "interrupted", interrupted);
	cJSON_AddNumberToObject(summary, "seconds", secs);
	if (t->ctx->json) {
		char *text = cJSON_PrintUnformatted(summary);
		if (text)
			cli_json_line(text);
		free(text);
	} else {
		if (set_id)
			printf("%s %s: set %s, %.1f s\n", t->verb, all_ok ? "complete" : "finished with errors", set_id, secs);
		else
			printf("%s %s, %.1f s\n", t->verb, all_ok ? "complete" : "finished with errors", secs);
	}
	cJSON_Delete(summary);
	return all_ok ? CLI_OK : CLI_FAILED;
}
