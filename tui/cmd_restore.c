/*
 * cmd_restore — `ohbackup restore SET [BUNDLE...] [--rename OLD=NEW]...`:
 * a SessionRestore fed from a set of the store, the way OpenHarmony's
 * backup_tool does it: appendBundles with the set's capability file, then for
 * each bundle getFileHandle for every file of its folder (one at a time, the
 * next asked for when the previous is written, so a set of many files never
 * holds many fds), and publishFile with an empty uri when all are written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_run.h"

typedef struct restore_run {
	run_tracker_t t;
	store_t *store;
	const char *set_id;
} restore_run_t;

/* Asks for the next file of b, or publishes b when all are written. */
static void
request_next(restore_run_t *r, run_bundle_t *b)
{
	ohb_error_t e;
	int rc;
	if (b->next_uri < b->n_uris)
		rc = ohb_session_get_file_handle(r->t.session, b->name, b->uris[b->next_uri], &e);
	else
		rc = ohb_session_publish_file(r->t.session, b->name, "", &e);
	/* A bundle the service refused or ended (13900020) says why through its
	 * onBundleBegin/onBundleEnd, which must not be hidden by this code; any
	 * other refusal leaves the service waiting for files that will not
	 * come, so the bundle is cancelled. */
	if (rc == 0 || rc == OHB_E_INVAL)
		return;
	/* the main thread asks for first files while callbacks may record codes */
	pthread_mutex_lock(&r->t.lock);
	bool failed = b->code != 0;
	pthread_mutex_unlock(&r->t.lock);
	if (!failed) {
		run_fail_bundle(&r->t, b->name, rc, e.message);
		ohb_session_cancel(r->t.session, b->name);
	}
}

static void
on_file_ready(void *user, int err, const char *message, const ohb_file_t *f)
{
	restore_run_t *r = user;
	pthread_mutex_lock(&r->t.lock);
	run_bundle_t *b = run_tracker_find(&r->t, f->bundle_name);
	pthread_mutex_unlock(&r->t.lock);
	ohb_error_t e;
	uint64_t bytes = 0;
	if (!b) {
		/* not ours; nothing to do but close */
	} else if (err) {
		/* a request the service could not answer after all: the bundle cannot complete */
		run_fail_bundle(&r->t, f->bundle_name, err, message);
		ohb_session_cancel(r->t.session, f->bundle_name);
	} else if (store_copy_file_to(r->store, r->set_id, b->name, f->uri, f->fd, &bytes, &e) != 0) {
		run_fail_bundle(&r->t, f->bundle_name, e.code, e.message);
		ohb_session_cancel(r->t.session, f->bundle_name);
	} else {
		pthread_mutex_lock(&r->t.lock);
		b->received_bytes += bytes;
		b->received_files++;
		b->next_uri++;
		pthread_mutex_unlock(&r->t.lock);
		run_json_file(&r->t, f->bundle_name, f->uri, bytes);
		request_next(r, b);
	}
	if (f->fd >= 0)
		close(f->fd);
	if (f->manifest_fd >= 0)
		close(f->manifest_fd);
}


/* The infos string of the spec's app_mapping_relation example. */
static char *
mapping_info(const char *source, const char *target)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *infos = cJSON_AddArrayToObject(root, "infos");
	cJSON *inf = cJSON_CreateObject();
	cJSON_AddItemToArray(infos, inf);
	cJSON_AddStringToObject(inf, "type", "broadcast");
	cJSON *details = cJSON_AddArrayToObject(inf, "details");
	cJSON *d = cJSON_CreateObject();
	cJSON_AddItemToArray(details, d);
	cJSON_AddStringToObject(d, "type", "app_mapping_relation");
	cJSON *detail = cJSON_AddArrayToObject(d, "detail");
	cJSON *m = cJSON_CreateObject();
	cJSON_AddItemToArray(detail, m);
	cJSON_AddStringToObject(m, "source", source);
	cJSON_AddStringToObject(m, "target", target);
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return text;
}

static const store_bundle_info_t *
set_bundle(const store_set_info_t *info, const char *name)
{
	for (size_t i = 0; i < info->n_bundles; i++)
		if (strcmp(info->bundles[i].name, name) == 0)
			return &info->bundles[i];
	return NULL;
}

/* One step of a restore: the bundles `active` (indexes into r->t.bundles) from
 * one set. Returns false when the session could not even start (err filled). */
static bool
restore_step(restore_run_t *r, ohb_service_t *svc, const char *set_id, bool send_all_rp, const bool *active,
    char **infos, bool *interrupted, ohb_error_t *err)
{
	const cli_ctx_t *ctx = r->t.ctx;
	run_tracker_t *t = &r->t;
	size_t n = 0;
	const char **names = calloc(t->n_bundles + 1, sizeof *names);
	const char **step_infos = calloc(t->n_bundles + 1, sizeof *step_infos);
	int caps_fd = -1;
	bool ok = false;
	r->set_id = set_id;
	r->t.session = NULL;
	if (!names || !step_infos)
		goto out;
	for (size_t i = 0; i < t->n_bundles; i++) {
		run_bundle_t *b = &t->bundles[i];
		for (size_t k = 0; k < b->n_uris; k++)
			free(b->uris[k]);
		free(b->uris);
		b->uris = NULL;
		b->n_uris = b->next_uri = 0;
		b->begun = b->ended = false;
		if (!active[i])
			continue;
		if (store_list_files(r->store, set_id, b->name, &b->uris, &b->n_uris, err) != 0)
			goto out;
		if (!send_all_rp) {
			/* A full set restores as an overlay: without all.rp the service deletes nothing. */
			for (size_t k = 0; k < b->n_uris; k++) {
				if (strcmp(b->uris[k], "all.rp") == 0) {
					free(b->uris[k]);
					memmove(&b->uris[k], &b->uris[k + 1], (b->n_uris - k - 1) * sizeof *b->uris);
					b->n_uris--;
					break;
				}
			}
		}
		names[n] = b->name;
		step_infos[n] = infos[i];
		n++;
	}
	if (store_open_capability(r->store, set_id, &caps_fd, err) != 0)
		goto out;
	ohb_callbacks_t cb = run_callbacks(r, on_file_ready);
	if (ohb_session_restore_create(svc, &cb, &r->t.session, err) != 0)
		goto out;
	if (!ctx->json)
		fprintf(stderr, "restore: %zu bundle%s from set %s\n", n, n == 1 ? "" : "s", set_id);
	pthread_mutex_lock(&t->lock);
	t->all_ended = false;
	pthread_mutex_unlock(&t->lock);
	if (ohb_session_append_restore(r->t.session, caps_fd, names, step_infos, n, err) != 0)
		goto out;
	for (size_t i = 0; i < t->n_bundles; i++)
		if (active[i])
			request_next(r, &t->bundles[i]);   /* the rest are asked for one by one */
	*interrupted = run_wait(t);
	ohb_session_release(r->t.session, NULL);
	ok = true;
out:
	if (r->t.session)
		ohb_session_free(r->t.session);
	r->t.session = NULL;
	if (caps_fd >= 0)
		close(caps_fd);
	free(names);
	free(step_infos);
	return ok;
}

int
cmd_restore(cli_ctx_t *ctx, int argc, char **argv)
{
	const cli_command_t *cmd = cli_find_command("restore");
	const char *set_id = NULL;
	const char **named = calloc((size_t)argc, sizeof *named);
	const char **renames = calloc((size_t)argc, sizeof *renames);
	size_t n_named = 0, n_renames = 0;
	if (!named || !renames) {
		free(named);
		free(renames);
		return cli_error(ctx, OHB_E_NOMEM, "out of memory");
	}
	int rc = CLI_FAILED;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rename") == 0 && i + 1 < argc && strchr(argv[i + 1], '=')) {
			renames[n_renames++] = argv[++i];
		} else if (argv[i][0] == '-') {
			rc = cli_usage(cmd, "unknown option, or --rename without OLD=NEW");
			free(named);
			free(renames);
			return rc;
		} else if (!set_id) {
			set_id = argv[i];
		} else {
			named[n_named++] = argv[i];
		}
	}
	if (!set_id) {
		free(named);
		free(renames);
		return cli_usage(cmd, "name the backup set to restore from (see `ohbackup list`)");
	}

	ohb_error_t err;
	ohb_service_t *svc = NULL;
	restore_run_t r;
	memset(&r, 0, sizeof r);
	store_set_info_t info;
	memset(&info, 0, sizeof info);
	bool have_info = false, tracker = false;
	const char **names = NULL;
	char **infos = NULL;
	size_t n = 0;
	char ***chains = NULL;
	size_t *chain_len = NULL;
	bool *active = NULL, *failed_before = NULL;

	if (store_open(ctx->store, &r.store, &err) != 0 || store_set_info(r.store, set_id, &info, &err) != 0) {
		rc = cli_fail(ctx, &err);
		goto out;
	}
	have_info = true;
	if (!info.complete) {
		rc = cli_error(ctx, OHB_E_INVAL, "this set is interrupted (its backup never finished); it is not a restore point");
		goto out;
	}
	names = calloc(info.n_bundles + n_named + 1, sizeof *names);
	infos = calloc(info.n_bundles + n_named + 1, sizeof *infos);
	if (!names || !infos) {
		rc = cli_error(ctx, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	if (n_named) {
		for (size_t i = 0; i < n_named; i++) {
			const store_bundle_info_t *sb = set_bundle(&info, named[i]);
			char msg[400];
			if (!sb || sb->code != 0) {
				snprintf(msg, sizeof msg, "set %s holds no good backup of %s", set_id, named[i]);
				rc = cli_error(ctx, OHB_E_BUNDLE_EMPTY, msg);
				goto out;
			}
			names[n++] = named[i];
		}
	} else {
		for (size_t i = 0; i < info.n_bundles; i++)
			if (info.bundles[i].code == 0)
				names[n++] = info.bundles[i].name;
	}
	if (n == 0) {
		rc = cli_error(ctx, OHB_E_BUNDLE_EMPTY, "the set holds no bundle that was backed up successfully");
		goto out;
	}
	for (size_t k = 0; k < n_renames; k++) {
		char *pair = strdup(renames[k]);
		char *eq = pair ? strchr(pair, '=') : NULL;
		if (!eq) {
			free(pair);
			continue;
		}
		*eq = '\0';
		for (size_t i = 0; i < n; i++)
			if (strcmp(names[i], pair) == 0 && !infos[i])
				infos[i] = mapping_info(pair, eq + 1);
		free(pair);
	}
	if (run_tracker_init(&r.t, ctx, "restore", names, n) != 0) {
		rc = cli_error(ctx, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	tracker = true;

	/* Each bundle's chain (one set for a full backup), then the steps: every
	 * set that appears in any chain, oldest first, restoring the bundles whose
	 * chain holds it. Each step is all or nothing per bundle; a bundle that
	 * fails a step takes no later step, so it never mixes two backups. */
	chains = calloc(n, sizeof *chains);
	chain_len = calloc(n, sizeof *chain_len);
	active = calloc(n, sizeof *active);
	failed_before = calloc(n, sizeof *failed_before);
	if (!chains || !chain_len || !active || !failed_before) {
		rc = cli_error(ctx, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (store_chain(r.store, set_id, names[i], &chains[i], &chain_len[i], &err) != 0) {
			rc = cli_fail(ctx, &err);
			goto out;
		}
	}
	if (cli_open_service(ctx, &svc, &err) != 0) {
		rc = cli_fail(ctx, &err);
		goto out;
	}
	bool interrupted = false;
	for (;;) {
		/* the oldest set not yet restored among the bundles' chains */
		const char *step = NULL;
		for (size_t i = 0; i < n; i++) {
			if (failed_before[i] || chain_len[i] == 0)
				continue;
			if (!step || strcmp(chains[i][0], step) < 0)
				step = chains[i][0];
		}
		if (!step || interrupted)
			break;
		char *step_id = strdup(step);
		for (size_t i = 0; i < n; i++)
			active[i] = !failed_before[i] && chain_len[i] > 0 && strcmp(chains[i][0], step_id) == 0;
		store_set_info_t sinfo;
		memset(&sinfo, 0, sizeof sinfo);
		bool incremental = store_set_info(r.store, step_id, &sinfo, NULL) == 0 && sinfo.kind &&
		    strcmp(sinfo.kind, "incremental") == 0;
		store_set_info_clear(&sinfo);
		if (!restore_step(&r, svc, step_id, incremental, active, infos, &interrupted, &err)) {
			free(step_id);
			rc = cli_fail(ctx, &err);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			if (!active[i])
				continue;
			if (r.t.bundles[i].code != 0 || !r.t.bundles[i].ended)
				failed_before[i] = true;
			free(chains[i][0]);
			memmove(&chains[i][0], &chains[i][1], (chain_len[i] - 1) * sizeof *chains[i]);
			chain_len[i]--;
		}
		free(step_id);
	}
	rc = run_report(&r.t, NULL, interrupted);
out:
	if (tracker)
		run_tracker_free(&r.t);
	for (size_t i = 0; chains && i < n; i++) {
		for (size_t k = 0; k < chain_len[i]; k++)
			free(chains[i][k]);
		free(chains[i]);
	}
	free(chains);
	free(chain_len);
	free(active);
	free(failed_before);
	for (size_t i = 0; infos && i < n; i++)
		free(infos[i]);
	free(infos);
	free(names);
	free(named);
	free(renames);
	if (have_info)
		store_set_info_clear(&info);
	store_close(r.store);
	ohb_service_close(svc);
	return rc;
}
