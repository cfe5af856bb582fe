/*
 * cmd_cloud — `ohbackup cloud sync | download URI | state URI...`: the
 * device-cloud sync of the media library (<root>/media) from the command
 * line, over the public API of ohbackup_cloud.h (docs/CLOUD.md).
 *
 * The cloud settings are found by cli_cloud.h (--url, the environment,
 * <root>/cloud/config.json).
 * With --json every progress event is one line:
 *   {"event":"sync","state":"COMPLETED","stateCode":4,"error":"NO_ERROR","errorCode":0,"code":0,"message":""}
 *   {"event":"download","uri":…,"state":"RUNNING","stateCode":0,"processed":N,"size":N,"error":"NO_ERROR","errorCode":0}
 *   {"event":"state","uri":…,"state":"COMPLETED","stateCode":2}
 * The exit status is 0 only when the sync or download COMPLETED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_cloud.h"

typedef struct cloud_cli {
	const cli_ctx_t *ctx;
	int last_sync;
	int last_download;
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

static void
on_sync(void *user, const ohb_cloud_sync_progress_t *pg)
{
	cloud_cli_t *cc = user;
	cc->last_sync = pg->state;
	cc->code = pg->code;
	snprintf(cc->message, sizeof cc->message, "%s", pg->message ? pg->message : "");
	if (cc->ctx->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "sync");
		cJSON_AddStringToObject(o, "state", ohb_cloud_sync_state_name(pg->state));
		cJSON_AddNumberToObject(o, "stateCode", pg->state);
		cJSON_AddStringToObject(o, "error", ohb_cloud_error_type_name(pg->error));
		cJSON_AddNumberToObject(o, "errorCode", pg->error);
		cJSON_AddNumberToObject(o, "code", pg->code);
		cJSON_AddStringToObject(o, "message", pg->message ? pg->message : "");
		print_json(o);
	} else if (pg->code) {
		printf("sync: %s (%s, error %d: %s)\n", ohb_cloud_sync_state_name(pg->state),
		    ohb_cloud_error_type_name(pg->error), pg->code, pg->message);
	} else {
		printf("sync: %s\n", ohb_cloud_sync_state_name(pg->state));
	}
	fflush(stdout);
}

static void
on_download(void *user, const ohb_cloud_download_progress_t *pg)
{
	cloud_cli_t *cc = user;
	cc->last_download = pg->state;
	if (cc->ctx->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "download");
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
		printf("download: %s %s %s/%s%s%s\n", pg->uri, ohb_cloud_download_state_name(pg->state),
		    cli_human_bytes(pg->processed, a, sizeof a), cli_human_bytes(pg->size, b, sizeof b),
		    pg->error ? " " : "", pg->error ? ohb_cloud_download_error_name(pg->error) : "");
		fflush(stdout);
	}
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

int
cmd_cloud(cli_ctx_t *ctx, int argc, char **argv)
{
	const cli_command_t *cmd = cli_find_command("cloud");
	const char *url_opt = NULL;
	char **args = calloc((size_t)argc + 1, sizeof *args);
	int n = 0;
	if (!args)
		return cli_error(ctx, 13900011, "out of memory");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
			url_opt = argv[++i];
		else
			args[n++] = argv[i];
	}
	int rc;
	if (n == 0 || (strcmp(args[0], "sync") == 0 && n != 1) || (strcmp(args[0], "download") == 0 && n != 2) ||
	    (strcmp(args[0], "state") == 0 && n < 2)) {
		rc = cli_usage(cmd, "needs sync, download URI, or state URI...");
		free(args);
		return rc;
	}
	if (strcmp(args[0], "sync") != 0 && strcmp(args[0], "download") != 0 && strcmp(args[0], "state") != 0) {
		rc = cli_usage(cmd, "unknown sub-command");
		free(args);
		return rc;
	}
	ohb_cloud_t *c = NULL;
	ohb_error_t err;
	if (cli_cloud_open(ctx, url_opt, &c, &err) != 0) {
		free(args);
		return cli_fail(ctx, &err);
	}
	cloud_cli_t cc = {ctx, -1, -1, 0, ""};
	ohb_cloud_gallery_on(c, on_sync, &cc, NULL);
	ohb_cloud_download_on(c, on_download, &cc, NULL);
	if (strcmp(args[0], "state") == 0) {
		rc = print_states(ctx, c, args + 1, n - 1);
	} else if (strcmp(args[0], "sync") == 0) {
		if (ohb_cloud_gallery_start(c, &err) != 0 || ohb_cloud_wait_idle(c, -1, &err) != 0)
			rc = cli_fail(ctx, &err);
		else
			rc = cc.last_sync == OHB_CLOUD_SYNC_COMPLETED ? CLI_OK
			     : cc.code                                ? cli_error(ctx, cc.code, cc.message)
			                                              : CLI_FAILED;
	} else {
		if (ohb_cloud_download_start(c, args[1], &err) != 0 || ohb_cloud_wait_idle(c, -1, &err) != 0)
			rc = cli_fail(ctx, &err);
		else
			rc = cc.last_download == OHB_CLOUD_DL_COMPLETED ? CLI_OK : CLI_FAILED;
	}
	ohb_cloud_close(c);
	free(args);
	return rc;
}
