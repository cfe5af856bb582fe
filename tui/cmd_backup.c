/*
 * cmd_backup — `ohbackup backup [--all | BUNDLE...]`: a SessionBackup whose
 * onFileReady writes every file it receives into a new set of the store.
 *
 * The set is only marked good (set.json, written last) when the session ran
 * to its end; an interrupted run leaves an interrupted set, which `list`
 * shows as such and `restore` refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_run.h"
#include "fsutil.h"

typedef struct backup_run {
	run_tracker_t t;
	store_writer_t *w;
} backup_run_t;

static void
on_file_ready(void *user, int err, const char *message, const ohb_file_t *f)
{
	backup_run_t *r = user;
	if (err) {
		run_fail_bundle(&r->t, f->bundle_name, err, message);
	} else {
		ohb_error_t e;
		uint64_t bytes = 0;
		int rc = store_writer_put_file(r->w, f->bundle_name, f->uri, f->fd, &bytes, &e);
		if (rc != 0) {
			run_fail_bundle(&r->t, f->bundle_name, rc, e.message);
			/* The store cannot take this bundle any more: stop it instead of packing on. */
			ohb_session_cancel(r->t.session, f->bundle_name);
		} else {
			pthread_mutex_lock(&r->t.lock);
			run_bundle_t *b = run_tracker_find(&r->t, f->bundle_name);
			if (b) {
				b->received_bytes += bytes;
				b->received_files++;
			}
			pthread_mutex_unlock(&r->t.lock);
			run_json_file(&r->t, f->bundle_name, f->uri, bytes);
		}
		/* all.rp travels with manage.json: the base of the next incremental backup. */
		if (rc == 0 && f->manifest_fd >= 0 &&
		    (rc = store_writer_put_file(r->w, f->bundle_name, "all.rp", f->manifest_fd, NULL, &e)) != 0) {
			run_fail_bundle(&r->t, f->bundle_name, rc, e.message);
			ohb_session_cancel(r->t.session, f->bundle_name);
		}
	}
	if (f->fd >= 0)
		close(f->fd);
	if (f->manifest_fd >= 0)
		close(f->manifest_fd);
}


/* Names of every bundle of the capability file that allows backup. */
static int
all_bundles(const char *caps, char ***names, size_t *n, const cli_ctx_t *ctx)
{
	cJSON *root = cJSON_Parse(caps);
	cJSON *infos = cJSON_GetObjectItemCaseSensitive(root, "bundleInfos");
	size_t cap = (size_t)cJSON_GetArraySize(infos);
	*names = calloc(cap ? cap : 1, sizeof **names);
	*n = 0;
	cJSON *e;
	cJSON_ArrayForEach(e, infos) {
		cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
		cJSON *allow = cJSON_GetObjectItemCaseSensitive(e, "allToBackup");
		if (!cJSON_IsString(name))
			continue;
		if (!cJSON_IsTrue(allow)) {
			if (!ctx->json)
				fprintf(stderr, "backup: %s skipped (it does not allow backup)\n", name->valuestring);
			continue;
		}
		(*names)[(*n)++] = strdup(name->valuestring);
	}
	cJSON_Delete(root);
	return 0;
}

/* The incremental base of each bundle: its newest good set's all.rp and time.
 * A bundle with no good set yet gets no manifest: everything is new. */
static int
load_bases(store_t *store, char **names, size_t n, ohb_incremental_data_t *data, char **base_out,
    const cli_ctx_t *ctx)
{
	int64_t newest = -1;
	for (size_t i = 0; i < n; i++) {
		data[i].bundle_name = names[i];
		data[i].manifest_fd = -1;
		store_set_info_t base;
		if (store_find_good_set(store, names[i], NULL, &base, NULL) != 0) {
			if (!ctx->json)
				fprintf(stderr, "incremental: %s has no earlier backup; all of it is sent\n", names[i]);
			continue;
		}
		data[i].last_incremental_time = base.created_ms;
		if (store_open_file(store, base.id, names[i], "all.rp", &data[i].manifest_fd, NULL) != 0) {
			data[i].manifest_fd = -1;
			data[i].last_incremental_time = 0;
			if (!ctx->json)
				fprintf(stderr, "incremental: set %s has no all.rp for %s; all of it is sent\n", base.id, names[i]);
		}
		if (base.created_ms > newest) {
			newest = base.created_ms;
			free(*base_out);
			*base_out = strdup(base.id);
		}
		store_set_info_clear(&base);
	}
	return 0;
}

static int
backup_command(cli_ctx_t *ctx, int argc, char **argv, bool incremental)
{
	const cli_command_t *cmd = cli_find_command(incremental ? "incremental" : "backup");
	bool all = false;
	size_t n_named = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--all") == 0)
			all = true;
		else if (argv[i][0] == '-')
			return cli_usage(cmd, "unknown option");
		else
			n_named++;
	}
	if (all == (n_named > 0))
		return cli_usage(cmd, all ? "give either --all or bundle names, not both" : "name the bundles to back up, or --all");

	ohb_error_t err;
	ohb_service_t *svc = NULL;
	store_t *store = NULL;
	backup_run_t r;
	memset(&r, 0, sizeof r);
	char **names = NULL;
	size_t n = 0;
	char *caps = NULL;
	int caps_fd = -1;
	int rc = CLI_FAILED;
	bool tracker = false;
	char *set_id = NULL, *base_id = NULL;
	ohb_incremental_data_t *inc = NULL;

	if (cli_open_service(ctx, &svc, &err) != 0 || store_open(ctx->store, &store, &err) != 0 ||
	    ohb_get_local_capabilities(svc, &caps_fd, &err) != 0 || fsu_read_fd(caps_fd, 64u << 20, &caps, NULL, &err) != 0) {
		rc = cli_fail(ctx, &err);
		goto out;
	}
	if (all) {
		all_bundles(caps, &names, &n, ctx);
		if (n == 0) {
			rc = cli_error(ctx, OHB_E_BUNDLE_EMPTY, "the device has no bundle that allows backup");
			goto out;
		}
	} else {
		names = calloc(n_named, sizeof *names);
		for (int i = 1; names && i < argc; i++)
			names[n++] = strdup(argv[i]);
	}
	if (incremental) {
		inc = calloc(n ? n : 1, sizeof *inc);
		if (!inc) {
			rc = cli_error(ctx, OHB_E_NOMEM, "out of memory");
			goto out;
		}
		load_bases(store, names, n, inc, &base_id, ctx);
	}
	if (run_tracker_init(&r.t, ctx, incremental ? "incremental" : "backup", (const char *const *)names, n) != 0) {
		rc = cli_error(ctx, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	tracker = true;
	if (store_writer_begin(store, incremental ? "incremental" : "full", incremental ? base_id : NULL, &r.w,
	        &err) != 0 || lseek(caps_fd, 0, SEEK_SET) != 0 ||
	    store_writer_put_capability(r.w, caps_fd, &err) != 0) {
		rc = cli_fail(ctx, &err);
		goto out;
	}
	set_id = strdup(store_writer_id(r.w));
	ohb_callbacks_t cb = run_callbacks(&r, on_file_ready);
	if ((incremental ? ohb_session_incremental_create(svc, &cb, &r.t.session, &err)
	                 : ohb_session_backup_create(svc, &cb, &r.t.session, &err)) != 0) {
		rc = cli_fail(ctx, &err);
		goto out;
	}
	if (!ctx->json)
		fprintf(stderr, "%s: %zu bundle%s into set %s\n", incremental ? "incremental" : "backup", n,
		    n == 1 ? "" : "s", set_id);
	if (ctx->send_rate > 0)
		ohb_session_set_default_send_rate(r.t.session, ctx->send_rate);   /* before the append: no race */
	if ((incremental ? ohb_session_append_incremental(r.t.session, inc, n, NULL, &err)
	                 : ohb_session_append_backup(r.t.session, (const char *const *)names, NULL, n, &err)) != 0) {
		rc = cli_fail(ctx, &err);
		goto out;
	}
	bool interrupted = run_wait(&r.t);
	ohb_session_release(r.t.session, NULL);

	if (interrupted) {
		store_writer_abandon(r.w);   /* stays interrupted: never a restore point */
		r.w = NULL;
	} else {
		for (size_t i = 0; i < r.t.n_bundles; i++) {
			run_bundle_t *b = &r.t.bundles[i];
			int code = b->code;
			if (!b->ended && !code)
				code = OHB_E_UNKNOWN;
			if (!code && strcmp(b->message, "cancelled") == 0)
				code = -1;   /* cancelled: nothing of it is kept (ohbackup_store.h) */
			store_writer_set_result(r.w, b->name, code, b->message, b->received_bytes, b->received_files, NULL);
		}
		cJSON *root = cJSON_Parse(caps);
		cJSON *sfn = cJSON_GetObjectItemCaseSensitive(root, "systemFullName");
		cJSON *dt = cJSON_GetObjectItemCaseSensitive(root, "deviceType");
		int frc = store_writer_finish(r.w, cJSON_IsString(sfn) ? sfn->valuestring : "",
		    cJSON_IsString(dt) ? dt->valuestring : "", &err);
		cJSON_Delete(root);
		r.w = NULL;
		if (frc != 0) {
			cli_fail(ctx, &err);
			run_report(&r.t, NULL, true);
			rc = CLI_FAILED;
			goto out;
		}
	}
	rc = run_report(&r.t, set_id, interrupted);
out:
	if (r.t.session)
		ohb_session_free(r.t.session);
	if (r.w)
		store_writer_abandon(r.w);
	if (tracker)
		run_tracker_free(&r.t);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(caps);
	free(set_id);
	free(base_id);
	for (size_t i = 0; inc && i < n; i++)
		if (inc[i].manifest_fd >= 0)
			close(inc[i].manifest_fd);
	free(inc);
	if (caps_fd >= 0)
		close(caps_fd);
	store_close(store);
	ohb_service_close(svc);
	return rc;
}

int
cmd_backup(cli_ctx_t *ctx, int argc, char **argv)
{
	return backup_command(ctx, argc, argv, false);
}

int
cmd_incremental(cli_ctx_t *ctx, int argc, char **argv)
{
	return backup_command(ctx, argc, argv, true);
}
