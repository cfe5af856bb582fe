/*
 * job_restore — one bundle's restore, run on a worker thread.
 *
 * The client has written the set's files into the fds that getFileHandle
 * gave it (they land in the bundle's incoming folder, on the service side).
 * After publishFile the job checks them against manage.json (every file
 * named must be there with its recorded size), unpacks everything into a
 * stage, and commits the stage all or nothing (stage.h). Any failure before
 * the commit leaves the bundle's data exactly as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "extension.h"
#include "fsutil.h"
#include "manage.h"
#include "rp.h"
#include "scanner.h"
#include "session.h"
#include "stage.h"

#define MANAGE_MAX (256u << 20)

typedef struct restore_ctx {
	ohb_session_t *s;
	job_t *j;
} restore_ctx_t;

static bool
ctx_cancelled(void *arg)
{
	restore_ctx_t *c = arg;
	return session_job_cancelled(c->s, c->j);
}

static void
ctx_bytes(void *arg, uint64_t bytes_done, uint64_t files_done)
{
	restore_ctx_t *c = arg;
	session_progress(c->s, c->j, bytes_done, files_done);
}

/* Blocks until publishFile or cancel. Returns true when published. */
static bool
wait_published(ohb_session_t *s, job_t *j)
{
	pthread_mutex_lock(&s->lock);
	while (!j->published && !j->cancel && !s->releasing)
		pthread_cond_wait(&s->work_cond, &s->lock);
	bool ok = j->published && !j->cancel && !s->releasing;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static int
open_incoming(const job_t *j, const char *uri, int *fd, ohb_error_t *err)
{
	char *path = fsu_join(j->incoming_dir, uri);
	if (!path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	*fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int rc = 0;
	if (*fd < 0)
		rc = ohb_fail(err, OHB_E_UNTAR, "the backup of %s is incomplete: %s was not received (%s)", j->name,
		    uri, strerror(errno));
	free(path);
	return rc;
}

/* Every file manage.json names must have arrived with its recorded size. */
static int
verify_received(const job_t *j, const manage_list_t *m, uint64_t *total, ohb_error_t *err)
{
	*total = 0;
	for (size_t i = 0; i < m->n; i++) {
		const manage_entry_t *e = &m->v[i];
		int fd;
		int rc = open_incoming(j, e->file_name, &fd, err);
		if (rc != 0)
			return rc;
		struct stat st;
		rc = fstat(fd, &st);
		close(fd);
		if (rc != 0)
			return ohb_fail_errno(err, errno, "cannot inspect %s", e->file_name);
		if ((uint64_t)st.st_size != e->size)
			return ohb_fail(err, OHB_E_UNTAR,
			    "the backup of %s is damaged: %s has %lld bytes, manage.json records %llu", j->name,
			    e->file_name, (long long)st.st_size, (unsigned long long)e->size);
		*total += e->size;
	}
	return 0;
}

/* When the client sends the set's all.rp (it does for incremental sets), the
 * restore makes the bundle's included files exactly those all.rp lists:
 * whatever the sandbox holds beyond them was deleted after the backup and is
 * deleted now (OpenHarmony leaves such files behind). Nothing is deleted
 * before the commit, which applies deletions and new files together. */
static int
stage_deletions(const job_t *j, stage_t *st, ohb_error_t *err)
{
	char *path = fsu_join(j->incoming_dir, "all.rp");
	if (!path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	char *text = NULL;
	size_t len = 0;
	int rc = fsu_read_file(path, 1u << 30, &text, &len, NULL);
	free(path);
	if (rc != 0)
		return 0;   /* no all.rp: a plain (overlay) restore */
	rp_list_t all;
	memset(&all, 0, sizeof all);
	scan_list_t now;
	memset(&now, 0, sizeof now);
	char *warnings = NULL;
	if ((rc = rp_parse(text, len, &all, &warnings, err)) != 0) {
		rc = ohb_fail(err, OHB_E_UNTAR, "the backup of %s has an unreadable all.rp", j->name);
		goto out;
	}
	stage_set_exact(st);   /* all.rp says what the bundle holds: a path that changed kind is replaced */
	if ((rc = scan_bundle(j->bundle, NULL, NULL, &now, err)) != 0)
		goto out;
	char deleted_dir[4102] = "";   /* the last directory deleted: its contents go with it */
	size_t deleted_len = 0;
	for (size_t i = 0; i < now.n && rc == 0; i++) {
		char p[4100];
		snprintf(p, sizeof p, "%s", now.v[i].path);
		size_t pl = strlen(p);
		if (deleted_len && strncmp(p, deleted_dir, deleted_len) == 0)
			continue;
		if (pl > 1 && p[pl - 1] == '/')
			p[--pl] = '\0';
		if (rp_find(&all, p))
			continue;
		rc = stage_add_deletion(st, p, err);
		if (now.v[i].is_dir) {
			snprintf(deleted_dir, sizeof deleted_dir, "%s/", p);
			deleted_len = strlen(deleted_dir);
		}
	}
out:
	free(warnings);
	free(text);
	rp_list_free(&all);
	scan_list_free(&now);
	return rc;
}

int
job_restore_run(ohb_session_t *s, job_t *j, char **result_json, ohb_error_t *err)
{
	if (!wait_published(s, j))
		return 0;   /* cancelled or released before the client published */

	char *text = NULL;
	size_t len = 0;
	manage_list_t m;
	memset(&m, 0, sizeof m);
	stage_t *st = NULL;
	char *path = fsu_join(j->incoming_dir, "manage.json");
	if (!path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	int rc = fsu_read_file(path, MANAGE_MAX, &text, &len, err);
	free(path);
	if (rc != 0) {
		rc = ohb_fail(err, OHB_E_UNTAR, "the backup of %s has no readable manage.json", j->name);
		goto out;
	}
	if ((rc = manage_parse(text, len, &m, err)) != 0)
		goto out;
	uint64_t total = 0;
	if ((rc = verify_received(j, &m, &total, err)) != 0)
		goto out;
	session_set_totals(s, j, total, 0);
	session_push_process(s, j);

	restore_ctx_t ctx = { s, j };
	stage_progress_t progress = { &ctx, ctx_bytes, ctx_cancelled };
	if ((rc = stage_open(j->bundle, &progress, &st, err)) != 0)
		goto out;
	for (size_t i = 0; i < m.n && rc == 0; i++) {
		const manage_entry_t *e = &m.v[i];
		int fd;
		if ((rc = open_incoming(j, e->file_name, &fd, err)) != 0)
			break;
		char *from = fsu_join(j->incoming_dir, e->file_name);
		if (!from)
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		else if (e->is_big_file)
			/* moved into the stage when the client is done with it: not written twice */
			rc = stage_take_file(st, fd, from, e->path, e->mode, e->mtime_sec, e->mtime_nsec, e->size, err);
		else if ((rc = stage_add_tar(st, fd, e->file_name, err)) == 0 && !stage_cancelled(st))
			/* Unpacked: the tar is not needed any more, and a file deleted before
			 * writeback never costs the disk anything (the syncfs before the
			 * journal would otherwise write it too). */
			(void)unlink(from);
		free(from);
		close(fd);
		if (stage_cancelled(st) || session_job_cancelled(s, j))
			goto out;
	}
	if (rc != 0 || (rc = stage_deletions(j, st, err)) != 0)
		goto out;
	if ((rc = stage_commit(st, err)) != 0)
		goto out;
	session_progress(s, j, total, stage_files(st));

	/* The application's own restore step, after its files are in place. */
	ext_hooks_t hooks;
	session_ext_hooks(s, j, &hooks);
	bool ext_cancelled = false;
	char *app_result = NULL;
	if ((rc = ext_run(j->bundle, "restore", &hooks, &app_result, &ext_cancelled, err)) != 0)
		goto out;
	*result_json = app_result ? app_result
	                          : session_count_result("restore", stage_files(st), stage_skipped(st), stage_bytes(st));
out:
	stage_free(st);
	manage_list_free(&m);
	free(text);
	fsu_rm_rf(j->incoming_dir, NULL);
	/* restore/ itself goes too unless a journaled commit still needs it (rmdir of a non-empty dir fails). */
	char *restore_dir = fsu_join(j->bundle->temp_dir, "restore");
	if (restore_dir)
		rmdir(restore_dir);
	free(restore_dir);
	return rc;
}
