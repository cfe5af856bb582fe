/*
 * job_backup — one bundle's full backup, run on a worker thread:
 * scan (includes/excludes) -> pack (tars + raw big files, each handed to the
 * client through onFileReady at the send rate) -> manage.json last.
 * The session core sends onBundleBegin before and the final onProcess,
 * onResultReport and onBundleEnd after (REFERENCE.md callback order).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"
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

int
job_backup_run(ohb_session_t *s, job_t *j, char **result_json, ohb_error_t *err)
{
	const reg_bundle_t *b = j->bundle;
	backup_ctx_t ctx = { s, j };
	scan_list_t list;
	memset(&list, 0, sizeof list);
	manage_list_t manage;
	memset(&manage, 0, sizeof manage);
	char *manage_json = NULL;
	int rc = fsu_mkdir_p(b->temp_dir, 0700, err);
	if (rc != 0)
		return rc;
	rc = scan_bundle(b, ctx_cancelled, &ctx, &list, err);
	if (rc != 0 || session_job_cancelled(s, j))
		goto out;
	session_set_totals(s, j, list.total_bytes, list.total_files);
	session_push_process(s, j);

	pack_sink_t sink = { &ctx, ctx_emit, ctx_progress, ctx_file_error, ctx_cancelled };
	pack_result_t res;
	memset(&res, 0, sizeof res);
	rc = pack_bundle(b, &list, b->temp_dir, &sink, &manage, &res, err);
	if (rc != 0 || res.stopped || session_job_cancelled(s, j))
		goto out;

	size_t len = 0;
	if ((rc = manage_to_json(&manage, &manage_json, err)) != 0)
		goto out;
	len = strlen(manage_json);
	int fd = -1;
	if ((rc = fsu_anon_fd(b->temp_dir, manage_json, len, &fd, err)) != 0)
		goto out;
	if (session_send_file(s, j, "manage.json", fd, -1) != 0)
		goto out;   /* cancelled while waiting to send */
	session_progress(s, j, res.bytes, res.files_ok);
	*result_json = session_count_result("backup", res.files_ok, res.files_failed, res.bytes);
out:
	free(manage_json);
	manage_list_free(&manage);
	scan_list_free(&list);
	return rc;
}
