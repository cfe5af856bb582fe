/*
 * cmd_cloud — `ohbackup cloud …`: the device-cloud sync (@ohos.file.cloudSync)
 * from the command line, over the public API of ohbackup_cloud.h
 * (docs/CLOUD.md has the whole picture):
 *
 *   sync [--bundle B] [--force]     GallerySync, or FileSync of bundle B
 *   download URI                    Download.start (Ctrl-C: Download.stop)
 *   cache URI                       CloudFileCache.start (Ctrl-C keeps the
 *                                   partial file for the next `cache`)
 *   clean URI...                    CloudFileCache.cleanCache
 *   state URI...                    getFileSyncState (batch when several)
 *   ls [--bundle B] [--remote]      every file of the scope and its state;
 *                                   --remote asks the cloud first, so files
 *                                   the device never had are listed too
 *   last-sync [--bundle B]          FileSync.getLastSyncTime
 *   optimize --size N --days D      startOptimizeSpace (Ctrl-C: stop)
 *   optimize-storage                optimizeStorage
 *   battery                         the battery as the sync rule sees it
 *
 * The cloud settings are found by cli_cloud.h (--url, the environment,
 * <root>/cloud/config.json). With --json every event and result is one line:
 *   {"event":"sync","scope":"gallery","state":"COMPLETED","stateCode":4,"error":"NO_ERROR","errorCode":0,"code":0,"message":""}
 *   {"event":"download"|"cache","uri":…,"state":"RUNNING","stateCode":0,"processed":N,"size":N,"error":…,"errorCode":0}
 *   {"event":"optimize","state":"RUNNING","stateCode":0,"progress":P,"freed":N,"total":N,"files":N,"code":0}
 *   {"event":"state","uri":…,"state":"COMPLETED","stateCode":2}
 *   {"event":"file","uri":…,"path":…,"size":N,"local":true,"evicted":false,"state":…,"stateCode":N}
 *   {"event":"lastSync","scope":…,"time":MS}   {"event":"battery","percent":P,"charging":B}
 *   {"event":"clean","uri":…}
 * SIGINT, SIGTERM and SIGHUP stop what runs (it ends STOPPED and loses
 * nothing). The exit status is 0 only when everything asked for succeeded.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_cloud.h"
#include "widget_fmt.h"

#define WAIT_SLICE_MS 200

typedef struct cloud_cli {
	const cli_ctx_t *ctx;
	const char *scope;            /* "gallery" or the bundle, for sync events */
	pthread_mutex_t lock;
	int last_sync;
	int last_download;
	int last_optimize;
	int code;
	char message[512];
} cloud_cli_t;

static void
print_json(cJSON *o)
{
	char *t = cJSON_PrintUnformatted(o);
	if (t)
		cli_json_line(t);
	free(t);
	cJSON_Delete(o);
}

/* Remembers an event's state, and its error for the exit status. */
static void
note_outcome(cloud_cli_t *cc, int *last, int state, int code, const char *message)
{
	pthread_mutex_lock(&cc->lock);
	*last = state;
	if (code) {
		cc->code = code;
		snprintf(cc->message, sizeof cc->message, "%s", message ? message : "");
	}
	pthread_mutex_unlock(&cc->lock);
}

static void
on_sync(void *user, const ohb_cloud_sync_progress_t *pg)
{
	cloud_cli_t *cc = user;
	note_outcome(cc, &cc->last_sync, pg->state, pg->code, pg->message);
	if (cc->ctx->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "sync");
		cJSON_AddStringToObject(o, "scope", cc->scope);
		cJSON_AddStringToObject(o, "state", ohb_cloud_sync_state_name(pg->state));
		cJSON_AddNumberToObject(o, "stateCode", pg->state);
		cJSON_AddStringToObject(o, "error", ohb_cloud_error_type_name(pg->error));
		cJSON_AddNumberToObject(o, "errorCode", pg->error);
		cJSON_AddNumberToObject(o, "code", pg->code);
		cJSON_AddStringToObject(o, "message", pg->message ? pg->message : "");
		print_json(o);
	} else if (pg->code) {
		printf("sync %s: %s (%s, error %d: %s)\n", cc->scope, ohb_cloud_sync_state_name(pg->state),
		    ohb_cloud_error_type_name(pg->error), pg->code, pg->message);
	} else {
		printf("sync %s: %s\n", cc->scope, ohb_cloud_sync_state_name(pg->state));
	}
	fflush(stdout);
}

static void
on_transfer(cloud_cli_t *cc, const char *kind, const ohb_cloud_download_progress_t *pg)
{
	pthread_mutex_lock(&cc->lock);
	cc->last_download = pg->state;
	pthread_mutex_unlock(&cc->lock);
	if (cc->ctx->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", kind);
		cJSON_AddStringToObject(o, "uri", pg->uri);
		cJSON_AddStringToObject(o, "state", ohb_cloud_download_state_name(pg->state));
		cJSON_AddNumberToObject(o, "stateCode", pg->state);
		cJSON_AddNumberToObject(o, "processed", (double)pg->processed);
		cJSON_AddNumberToObject(o, "size", (double)pg->size);
		cJSON_AddStringToObject(o, "error", ohb_cloud_download_error_name(pg->error));
		cJSON_AddNumberToObject(o, "errorCode", pg->error);
		print_json(o);
	} else if (pg->state != OHB_CLOUD_DL_RUNNING || !cc->ctx->progress) {
		char a[32], b[32];
		printf("%s: %s %s %s/%s%s%s\n", kind, pg->uri, ohb_cloud_download_state_name(pg->state),
		    cli_human_bytes(pg->processed, a, sizeof a), cli_human_bytes(pg->size, b, sizeof b),
		    pg->error ? " " : "", pg->error ? ohb_cloud_download_error_name(pg->error) : "");
		fflush(stdout);
	} else {
		char a[32], b[32];
		fprintf(stderr, "\r\033[K%s %s/%s", pg->uri, cli_human_bytes(pg->processed, a, sizeof a),
		    cli_human_bytes(pg->size, b, sizeof b));
	}
}

static void
on_download(void *user, const ohb_cloud_download_progress_t *pg)
{
	on_transfer(user, "download", pg);
}

static void
on_cache(void *user, const ohb_cloud_download_progress_t *pg)
{
	on_transfer(user, "cache", pg);
}

static void
on_optimize(void *user, const ohb_cloud_optimize_progress_t *pg)
{
	cloud_cli_t *cc = user;
	note_outcome(cc, &cc->last_optimize, pg->state, pg->code, pg->message);
	if (cc->ctx->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "optimize");
		cJSON_AddStringToObject(o, "state", ohb_cloud_optimize_state_name(pg->state));
		cJSON_AddNumberToObject(o, "stateCode", pg->state);
		cJSON_AddNumberToObject(o, "progress", pg->progress);
		cJSON_AddNumberToObject(o, "freed", (double)pg->freed);
		cJSON_AddNumberToObject(o, "total", (double)pg->total);
		cJSON_AddNumberToObject(o, "files", (double)pg->files);
		cJSON_AddNumberToObject(o, "code", pg->code);
		cJSON_AddStringToObject(o, "message", pg->message ? pg->message : "");
		print_json(o);
	} else if (pg->state != OHB_CLOUD_OPT_RUNNING || !cc->ctx->progress) {
		char a[32], b[32];
		printf("optimize: %s %d%% (%s of %s freed, %" PRIu64 " files)%s%s\n", ohb_cloud_optimize_state_name(pg->state),
		    pg->progress, cli_human_bytes(pg->freed, a, sizeof a), cli_human_bytes(pg->total, b, sizeof b),
		    pg->files, pg->code ? ": " : "", pg->code ? pg->message : "");
		fflush(stdout);
	}
}

/* What a signal stops. */
typedef enum { STOP_SYNC, STOP_DOWNLOAD, STOP_CACHE, STOP_OPTIMIZE } stop_kind_t;

static void
stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
}

/* Waits until the engine is idle; a signal stops the running work (which then
 * ends STOPPED) and is reported. True when a signal came. */
static bool
wait_or_stop(const cloud_cli_t *cc, ohb_cloud_t *c, ohb_cloud_sync_t *scope, const char *uri, stop_kind_t kind)
{
	sigset_t set;
	stop_signals(&set);
	bool interrupted = false;
	while (ohb_cloud_wait_idle(c, WAIT_SLICE_MS, NULL) != 0) {
		struct timespec zero = {0, 0};
		int sig = sigtimedwait(&set, NULL, &zero);
		if (sig <= 0 || interrupted)
			continue;
		interrupted = true;
		if (!cc->ctx->json)
			fprintf(stderr, "\r\033[Kcloud: interrupted by signal %d; stopping\n", sig);
		switch (kind) {
		case STOP_SYNC:
			ohb_cloud_sync_stop(scope, NULL);
			break;
		case STOP_DOWNLOAD:
			ohb_cloud_download_stop(c, uri, NULL);
			break;
		case STOP_CACHE:
			ohb_cloud_cache_stop(c, uri, false, NULL);
			break;
		case STOP_OPTIMIZE:
			ohb_cloud_optimize_stop(c, NULL);
			break;
		}
	}
	if (cc->ctx->progress)
		fputs("\r\033[K", stderr);
	return interrupted;
}

static int
print_states(const cli_ctx_t *ctx, ohb_cloud_t *c, char **uris, int n)
{
	ohb_error_t err;
	ohb_cloud_file_sync_state_t *st = calloc((size_t)n, sizeof *st);
	if (!st)
		return cli_error(ctx, 13900011, "out of memory");
	int rc = n == 1 ? ohb_cloud_get_file_sync_state(c, uris[0], st, &err)
	                : ohb_cloud_get_file_sync_states(c, (const char *const *)uris, (size_t)n, st, &err);
	if (rc != 0) {
		free(st);
		return cli_fail(ctx, &err);
	}
	for (int i = 0; i < n; i++) {
		if (ctx->json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "event", "state");
			cJSON_AddStringToObject(o, "uri", uris[i]);
			cJSON_AddStringToObject(o, "state", ohb_cloud_file_sync_state_name(st[i]));
			cJSON_AddNumberToObject(o, "stateCode", st[i]);
			print_json(o);
		} else {
			printf("%-16s %s\n", ohb_cloud_file_sync_state_name(st[i]), uris[i]);
		}
	}
	free(st);
	return CLI_OK;
}

static int
list_files(const cli_ctx_t *ctx, ohb_cloud_sync_t *s)
{
	ohb_cloud_file_info_t *v = NULL;
	size_t n = 0;
	ohb_error_t err;
	if (ohb_cloud_list_files(s, &v, &n, &err) != 0)
		return cli_fail(ctx, &err);
	for (size_t i = 0; i < n; i++) {
		if (ctx->json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "event", "file");
			cJSON_AddStringToObject(o, "uri", v[i].uri);
			cJSON_AddStringToObject(o, "path", v[i].path);
			cJSON_AddNumberToObject(o, "size", (double)v[i].size);
			cJSON_AddBoolToObject(o, "local", v[i].local);
			cJSON_AddBoolToObject(o, "evicted", v[i].evicted);
			cJSON_AddBoolToObject(o, "remoteOnly", v[i].remote_only);
			cJSON_AddStringToObject(o, "state", ohb_cloud_file_sync_state_name(v[i].state));
			cJSON_AddNumberToObject(o, "stateCode", v[i].state);
			print_json(o);
		} else {
			char b[32];
			printf("%-16s %10s  %-10s %s\n", v[i].remote_only ? "-" : ohb_cloud_file_sync_state_name(v[i].state),
			    cli_human_bytes(v[i].size, b, sizeof b),
			    v[i].remote_only ? "cloud" : v[i].evicted ? "cloud-only" : v[i].local ? "local" : "missing", v[i].path);
		}
	}
	ohb_cloud_file_infos_free(v, n);
	return CLI_OK;
}

typedef struct cloud_args {
	const char *url;
	const char *bundle;
	bool force;
	bool remote;
	const char *size;
	const char *days;
	char **rest;                  /* the sub-command and its operands */
	int n;
} cloud_args_t;

static bool
parse_args(int argc, char **argv, cloud_args_t *a)
{
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--url") == 0 && i + 1 < argc)
			a->url = argv[++i];
		else if (strcmp(o, "--bundle") == 0 && i + 1 < argc)
			a->bundle = argv[++i];
		else if (strcmp(o, "--size") == 0 && i + 1 < argc)
			a->size = argv[++i];
		else if (strcmp(o, "--days") == 0 && i + 1 < argc)
			a->days = argv[++i];
		else if (strcmp(o, "--force") == 0)
			a->force = true;
		else if (strcmp(o, "--remote") == 0)
			a->remote = true;
		else if (o[0] == '-' && o[1] == '-')
			return false;
		else
			a->rest[a->n++] = argv[i];
	}
	return true;
}

/* The operand count each sub-command takes: exact, or -1 = one or more. */
static bool
usage_ok(const char *sub, int operands)
{
	static const struct {
		const char *name;
		int operands;
	} subs[] = {{"sync", 0}, {"download", 1}, {"cache", 1}, {"clean", -1}, {"state", -1}, {"ls", 0},
	    {"last-sync", 0}, {"optimize", 0}, {"optimize-storage", 0}, {"battery", 0}};
	for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
		if (strcmp(sub, subs[i].name) == 0)
			return subs[i].operands < 0 ? operands >= 1 : operands == subs[i].operands;
	return false;
}

static int
run_sub(cloud_cli_t *cc, ohb_cloud_t *c, const cloud_args_t *a)
{
	const cli_ctx_t *ctx = cc->ctx;
	const char *sub = a->rest[0];
	ohb_error_t err;
	ohb_cloud_sync_t *scope = ohb_cloud_gallery(c);
	if (a->bundle && ohb_cloud_file_sync(c, a->bundle, &scope, &err) != 0)
		return cli_fail(ctx, &err);
	cc->scope = a->bundle ? a->bundle : "gallery";

	if (strcmp(sub, "state") == 0)
		return print_states(ctx, c, a->rest + 1, a->n - 1);
	if (strcmp(sub, "ls") == 0) {
		if (a->remote) {
			ohb_cloud_sync_status_t st;
			if (ohb_cloud_sync_list_remote(scope, &err) != 0 || ohb_cloud_wait_idle(c, -1, &err) != 0 ||
			    ohb_cloud_sync_get_status(scope, &st, &err) != 0)
				return cli_fail(ctx, &err);
			if (st.list_code)
				return cli_error(ctx, st.list_code, st.list_message);
		}
		return list_files(ctx, scope);
	}
	if (strcmp(sub, "last-sync") == 0 || strcmp(sub, "battery") == 0) {
		cJSON *o = cJSON_CreateObject();
		if (sub[0] == 'l') {
			int64_t ms = 0;
			ohb_cloud_sync_last_time(scope, &ms, NULL);
			cJSON_AddStringToObject(o, "event", "lastSync");
			cJSON_AddStringToObject(o, "scope", cc->scope);
			cJSON_AddNumberToObject(o, "time", (double)ms);
			if (!ctx->json) {
				char when[64] = "never";
				time_t t = (time_t)(ms / 1000);
				struct tm tm;
				if (ms > 0 && localtime_r(&t, &tm))
					strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
				printf("last sync of %s: %s\n", cc->scope, when);
			}
		} else {
			int pct;
			bool charging;
			ohb_cloud_battery(c, &pct, &charging, NULL);
			cJSON_AddStringToObject(o, "event", "battery");
			cJSON_AddNumberToObject(o, "percent", pct);
			cJSON_AddBoolToObject(o, "charging", charging);
			if (!ctx->json) {
				if (pct < 0)
					printf("battery: none (mains power): sync always allowed\n");
				else
					printf("battery: %d %%%s\n", pct, charging ? ", charging" : "");
			}
		}
		if (ctx->json)
			print_json(o);
		else
			cJSON_Delete(o);
		return CLI_OK;
	}
	if (strcmp(sub, "clean") == 0) {
		for (int i = 1; i < a->n; i++) {
			if (ohb_cloud_cache_clean(c, a->rest[i], &err) != 0)
				return cli_fail(ctx, &err);
			if (ctx->json) {
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "event", "clean");
				cJSON_AddStringToObject(o, "uri", a->rest[i]);
				print_json(o);
			} else {
				printf("cleaned %s (the cloud keeps it)\n", a->rest[i]);
			}
		}
		return CLI_OK;
	}
	if (strcmp(sub, "optimize-storage") == 0) {
		if (ohb_cloud_optimize_storage(c, &err) != 0)
			return cli_fail(ctx, &err);
		if (!ctx->json)
			printf("optimize-storage: done\n");
		return CLI_OK;
	}
	if (strcmp(sub, "optimize") == 0) {
		uint64_t total = 0, days = 0;
		if (!a->size || !wf_parse_size(a->size, &total) || total == 0)
			return cli_error(ctx, 401, "optimize needs --size N (bytes, or with K/M/G) above 0");
		if (!a->days || !wf_parse_uint(a->days, 36500, &days))
			return cli_error(ctx, 401, "optimize needs --days D (0..36500)");
		if (ohb_cloud_optimize_start(c, total, (uint32_t)days, on_optimize, cc, &err) != 0)
			return cli_fail(ctx, &err);
		bool sig = wait_or_stop(cc, c, NULL, NULL, STOP_OPTIMIZE);
		if (cc->last_optimize == OHB_CLOUD_OPT_COMPLETED && !sig)
			return CLI_OK;
		return cc->code ? cli_error(ctx, cc->code, cc->message) : CLI_FAILED;
	}
	if (strcmp(sub, "sync") == 0) {
		ohb_cloud_sync_on(scope, on_sync, cc, NULL);
		if (ohb_cloud_sync_start(scope, a->force, &err) != 0)
			return cli_fail(ctx, &err);
		wait_or_stop(cc, c, scope, NULL, STOP_SYNC);
		if (cc->last_sync == OHB_CLOUD_SYNC_COMPLETED)
			return CLI_OK;
		return cc->code ? cli_error(ctx, cc->code, cc->message) : CLI_FAILED;
	}
	/* download / cache */
	bool cache = strcmp(sub, "cache") == 0;
	int rc = cache ? ohb_cloud_cache_start(c, a->rest[1], &err) : ohb_cloud_download_start(c, a->rest[1], &err);
	if (rc != 0)
		return cli_fail(ctx, &err);
	wait_or_stop(cc, c, NULL, a->rest[1], cache ? STOP_CACHE : STOP_DOWNLOAD);
	return cc->last_download == OHB_CLOUD_DL_COMPLETED ? CLI_OK : CLI_FAILED;
}

int
cmd_cloud(cli_ctx_t *ctx, int argc, char **argv)
{
	const cli_command_t *cmd = cli_find_command("cloud");
	cloud_args_t a = {0};
	a.rest = calloc((size_t)argc + 1, sizeof *a.rest);
	if (!a.rest)
		return cli_error(ctx, 13900011, "out of memory");
	int rc;
	if (!parse_args(argc, argv, &a)) {
		rc = cli_usage(cmd, "unknown option");
	} else if (a.n == 0 || !usage_ok(a.rest[0], a.n - 1)) {
		rc = cli_usage(cmd, a.n == 0 ? "needs a sub-command" : "unknown sub-command or wrong number of operands");
	} else {
		/* Blocked before the engine's threads start, so they inherit the
		 * mask and wait_or_stop alone takes the signals. */
		sigset_t set, old;
		stop_signals(&set);
		pthread_sigmask(SIG_BLOCK, &set, &old);
		ohb_cloud_t *c = NULL;
		ohb_error_t err;
		if (cli_cloud_open(ctx, a.url, &c, &err) != 0) {
			rc = cli_fail(ctx, &err);
		} else {
			cloud_cli_t cc = {0};
			cc.ctx = ctx;
			cc.scope = "gallery";
			cc.last_sync = cc.last_download = cc.last_optimize = -1;
			pthread_mutex_init(&cc.lock, NULL);
			ohb_cloud_download_on(c, on_download, &cc, NULL);
			ohb_cloud_cache_on(c, on_cache, &cc, NULL);
			rc = run_sub(&cc, c, &a);
			ohb_cloud_close(c);   /* delivers the last events before cc goes */
			pthread_mutex_destroy(&cc.lock);
		}
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	free(a.rest);
	return rc;
}
