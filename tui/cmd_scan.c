/*
 * cmd_scan — `ohbackup scan [--precise] [--interval MS] [BUNDLE...]`:
 * getBackupDataSize on a backup session, printing each onBackupSizeReport as
 * it comes (JSON lines with --json) and a table at the end. A precise scan's
 * incremental size is measured against each bundle's newest good set.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "fsutil.h"

typedef struct scan_run {
	const cli_ctx_t *ctx;
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	bool done;
	cJSON *rows;            /* every "scaned" entry seen, in order */
} scan_run_t;

static void
on_size_report(void *user, const char *report)
{
	scan_run_t *r = user;
	cJSON *root = cJSON_Parse(report);
	cJSON *scanning = cJSON_GetObjectItemCaseSensitive(root, "scanning");
	cJSON *e;
	pthread_mutex_lock(&r->lock);
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "scaned"))
		cJSON_AddItemToArray(r->rows, cJSON_Duplicate(e, 1));
	if (r->ctx->json) {
		cli_json_line(report);
	} else if (cJSON_IsString(scanning) && *scanning->valuestring) {
		fprintf(stderr, "scan: %d bundle%s measured, now %s\n", cJSON_GetArraySize(r->rows),
		    cJSON_GetArraySize(r->rows) == 1 ? "" : "s", scanning->valuestring);
	}
	if (cJSON_IsString(scanning) && !*scanning->valuestring) {
		r->done = true;
		pthread_cond_broadcast(&r->done_cond);
	}
	pthread_mutex_unlock(&r->lock);
	cJSON_Delete(root);
}

static const char *
size_text(double v, char *buf, size_t size)
{
	if (v < 0)
		return "unknown";
	return cli_human_bytes((uint64_t)v, buf, size);
}

int
cmd_scan(cli_ctx_t *ctx, int argc, char **argv)
{
	const cli_command_t *cmd = cli_find_command("scan");
	bool precise = false;
	int interval = 5000;
	char **names = calloc((size_t)argc + 1, sizeof *names);
	size_t n = 0;
	if (!names)
		return cli_error(ctx, OHB_E_NOMEM, "out of memory");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--precise") == 0) {
			precise = true;
		} else if (strcmp(argv[i], "--interval") == 0 && i + 1 < argc) {
			char *end;
			long v = strtol(argv[++i], &end, 10);
			if (*end || v < 1 || v > 3600000) {
				free(names);
				return cli_usage(cmd, "--interval takes milliseconds (1..3600000)");
			}
			interval = (int)v;
		} else if (argv[i][0] == '-') {
			free(names);
			return cli_usage(cmd, "unknown option");
		} else {
			names[n++] = strdup(argv[i]);
		}
	}
	ohb_error_t err;
	ohb_service_t *svc = NULL;
	store_t *store = NULL;
	ohb_session_t *s = NULL;
	ohb_incremental_time_t *list = NULL;
	char *caps = NULL;
	int caps_fd = -1, rc = CLI_FAILED;
	scan_run_t r = { ctx, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, cJSON_CreateArray() };

	if (cli_open_service(ctx, &svc, &err) != 0 || store_open(ctx->store, &store, &err) != 0) {
		rc = cli_fail(ctx, &err);
		goto out;
	}
	if (n == 0) {
		/* every bundle of the device, from the capability file */
		if (ohb_get_local_capabilities(svc, &caps_fd, &err) != 0 ||
		    fsu_read_fd(caps_fd, 64u << 20, &caps, NULL, &err) != 0) {
			rc = cli_fail(ctx, &err);
			goto out;
		}
		cJSON *root = cJSON_Parse(caps);
		cJSON *infos = cJSON_GetObjectItemCaseSensitive(root, "bundleInfos");
		char **nv = realloc(names, ((size_t)cJSON_GetArraySize(infos) + 1) * sizeof *names);
		if (nv)
			names = nv;
		cJSON *e;
		cJSON_ArrayForEach(e, infos) {
			cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
			if (nv && cJSON_IsString(name))
				names[n++] = strdup(name->valuestring);
		}
		cJSON_Delete(root);
	}
	list = calloc(n ? n : 1, sizeof *list);
	if (!list) {
		rc = cli_error(ctx, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		list[i].bundle_name = names[i];
		store_set_info_t base;
		if (store_find_good_set(store, names[i], NULL, &base, NULL) == 0) {
			list[i].last_incremental_time = base.created_ms;
			store_set_info_clear(&base);
		}
	}
	ohb_callbacks_t cb = { 0 };
	cb.user = &r;
	cb.on_backup_size_report = on_size_report;
	if (ohb_session_backup_create(svc, &cb, &s, &err) != 0 ||
	    ohb_session_get_backup_data_size(s, precise, list, n, interval, &err) != 0) {
		rc = cli_fail(ctx, &err);
		goto out;
	}
	pthread_mutex_lock(&r.lock);
	while (!r.done)
		pthread_cond_wait(&r.done_cond, &r.lock);
	pthread_mutex_unlock(&r.lock);
	ohb_session_release(s, NULL);
	if (!ctx->json) {
		printf("%-36s %14s %16s\n", "BUNDLE", precise ? "SIZE" : "SIZE (approx.)", "CHANGED SINCE");
		cJSON *e;
		double total = 0;
		cJSON_ArrayForEach(e, r.rows) {
			cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "bundleName");
			double data = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "dataSize"));
			double inc = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "incDataSize"));
			char a[32], b[32];
			printf("%-36s %14s %16s\n", cJSON_IsString(name) ? name->valuestring : "?", size_text(data, a, sizeof a),
			    size_text(inc, b, sizeof b));
			if (data > 0)
				total += data;
		}
		char t[32];
		printf("%-36s %14s\n", "total", cli_human_bytes((uint64_t)total, t, sizeof t));
	}
	rc = CLI_OK;
out:
	if (s)
		ohb_session_free(s);
	cJSON_Delete(r.rows);
	free(list);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(caps);
	if (caps_fd >= 0)
		close(caps_fd);
	store_close(store);
	ohb_service_close(svc);
	return rc;
}
