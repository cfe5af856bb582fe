/*
 * job_backup — one bundle's backup (full or incremental), run on a worker
 * thread: the extension's backup step -> scan (includes/excludes) -> pack
 * (tars + raw big files, each handed to the client through onFileReady at the
 * send rate; an incremental sends only what changed against the base all.rp)
 * -> manage.json last, carrying all.rp as its manifest fd.
 * The session core sends onBundleBegin before and the final onProcess,
 * onResultReport and onBundleEnd after (REFERENCE.md callback order).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "extension.h"
#include "fsutil.h"
#include "incremental.h"
#include "manage.h"
#include "packer.h"
#include "scanner.h"
#include "session.h"

typedef struct backup_ctx {
	ohb_session_t *s;
	job_t *j;
} backup_ctx_t;

static bool
ctx_cancelled(void *arg)
{
	backup_ctx_t *c = arg;
	return session_job_cancelled(c->s, c->j);
}

static int
ctx_emit(void *arg, const char *file_name, int fd, ohb_error_t *err)
{
	backup_ctx_t *c = arg;
	if (session_send_file(c->s, c->j, file_name, fd, -1) != 0)
		return ohb_fail(err, OHB_E_UNKNOWN, "the bundle was cancelled");
	return 0;
}

static void
ctx_progress(void *arg, uint64_t bytes_done, uint64_t files_done)
{
	backup_ctx_t *c = arg;
	session_progress(c->s, c->j, bytes_done, files_done);
}

static void
ctx_file_error(void *arg, const char *path, int errnum)
{
	backup_ctx_t *c = arg;
	char msg[600];
	snprintf(msg, sizeof msg, "add file fail, path=%s: %s", path, strerror(errnum));
	session_push_process_error(c->s, c->j, ohb_code_from_errno(errnum), msg);
}

/* all.rp as an anonymous fd: the manifest the client keeps for next time.
 * Written in pieces, not built as one string (4 MB for 50 000 files). */
static int
all_rp_fd(const reg_bundle_t *b, const rp_list_t *all, int *fd, ohb_error_t *err)
{
	int rc = fsu_anon_fd(b->temp_dir, NULL, 0, fd, err);
	if (rc != 0)
		return rc;
	rc = rp_write_fd(all, *fd, err);
	if (rc == 0 && lseek(*fd, 0, SEEK_SET) != 0)
		rc = ohb_fail_errno(err, errno, "cannot rewind all.rp");
	if (rc != 0) {
		close(*fd);
		*fd = -1;
	}
	return rc;
}

int
job_backup_run(ohb_session_t *s, job_t *j, char **result_json, ohb_error_t *err)
{
	const reg_bundle_t *b = j->bundle;
	backup_ctx_t ctx = { s, j };
	scan_list_t list;
	memset(&list, 0, sizeof list);
	manage_list_t manage;
	memset(&manage, 0, sizeof manage);
	rp_list_t all;
	memset(&all, 0, sizeof all);
	char *manage_json = NULL, *app_result = NULL;
	int fd = -1, all_fd = -1;
	int rc = fsu_mkdir_p(b->temp_dir, 0700, err);
	if (rc != 0)
		return rc;

	/* The application's own backup step first (its BackupExtensionAbility). */
	ext_hooks_t hooks;
	session_ext_hooks(s, j, &hooks);
	bool ext_cancelled = false;
	rc = ext_run(b, "backup", &hooks, &app_result, &ext_cancelled, err);
	if (rc != 0 || ext_cancelled || session_job_cancelled(s, j))
		goto out;

	/* A full backup right behind getLocalCapabilities (as the CLI runs them)
	 * takes that walk's listing when nothing changed since (service.c); an
	 * extension's backup step may have rewritten files, so then we walk. */
	bool reuse = s->kind == SESSION_BACKUP && !b->extension;
	if (!service_take_listing(s->svc, b, reuse, &list))
		rc = scan_bundle(b, ctx_cancelled, &ctx, &list, err);
	if (rc != 0 || session_job_cancelled(s, j))
		goto out;
	session_set_totals(s, j, list.total_bytes, list.total_files);
	session_set_pack_deadline(s, j, list.total_bytes);
	session_push_process(s, j);

	pack_sink_t sink = { &ctx, ctx_emit, ctx_progress, ctx_file_error, ctx_cancelled };
	pack_result_t res;
	memset(&res, 0, sizeof res);
	if (s->kind == SESSION_INCREMENTAL) {
		rc = inc_pack_bundle(b, &list, &j->base, fsu_now_ms(), b->temp_dir, &sink, &manage, &all, &res, err);
	} else {
		rc = pack_bundle(b, &list, b->temp_dir, &sink, &manage, &res, err);
		if (rc == 0)
			rc = rp_from_scan(&list, &all, err);
	}
	if (rc != 0 || res.stopped || session_job_cancelled(s, j))
		goto out;
	/* what is left is manage.json and all.rp: the scan and the base are done with */
	scan_list_free(&list);
	rp_list_free(&j->base);

	if ((rc = manage_to_json(&manage, &manage_json, err)) != 0)
		goto out;
	if ((rc = fsu_anon_fd(b->temp_dir, manage_json, strlen(manage_json), &fd, err)) != 0)
		goto out;
	if ((rc = all_rp_fd(b, &all, &all_fd, err)) != 0)
		goto out;
	/* manage.json last, with all.rp as its manifest fd (REFERENCE.md "Incremental backup"). */
	int send_rc = session_send_file(s, j, "manage.json", fd, all_fd);
	fd = all_fd = -1;
	if (send_rc != 0)
		goto out;   /* cancelled while waiting to send */
	session_progress(s, j, res.bytes, res.files_ok);
	if (app_result) {
		*result_json = app_result;
		app_result = NULL;
	} else {
		*result_json = session_count_result(s->kind == SESSION_INCREMENTAL ? "incrementalBackup" : "backup",
		    res.files_ok, res.files_failed, res.bytes);
	}
out:
	if (fd >= 0)
		close(fd);
	if (all_fd >= 0)
		close(all_fd);
	free(app_result);
	free(manage_json);
	manage_list_free(&manage);
	rp_list_free(&all);
	scan_list_free(&list);
	return rc;
}
