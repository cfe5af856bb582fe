/*
 * job_restore — one bundle's restore, run on a worker thread.
 *
 * The client writes the set's files into the fds that getFileHandle gives
 * it (they land in the bundle's incoming folder, on the service side). The
 * job unpacks the tars into a stage and moves the big files there, each as
 * soon as it is complete (below, "Early"), in manage.json's order; after
 * publishFile it checks the rest against manage.json (every file named must
 * be there with its recorded size), stages it, and commits the stage all or
 * nothing (stage.h). Any failure before the commit leaves the bundle's data
 * exactly as it was.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
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

/* Files manage.json names from `from` on must have arrived with their recorded sizes. */
static int
verify_received(const job_t *j, const manage_list_t *m, size_t from, ohb_error_t *err)
{
	for (size_t i = from; i < m->n; i++) {
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
	}
	return 0;
}

/* ---- the restore of one bundle -----------------------------------------------------
 *
 * Early: the files arrive one by one and publishFile comes after the last
 * (the spec's client counts them). Waiting for it would copy every tar into
 * incoming/ before the first is unpacked. Instead the job applies each file
 * to the stage as soon as the client can no longer change it, in manage.json's
 * order: a file with its recorded size that nobody holds open for writing
 * (a read lease, F_SETLEASE, is granted only then) is claimed, so that
 * getFileHandle refuses it from then on (early_take). inotify's
 * IN_CLOSE_WRITE wakes the job for that; publishFile, cancel and release wake
 * it through an eventfd. Unpacking then overlaps the client's copying, and a
 * tar deleted after unpacking gives its memory to the next one (see
 * session_restore_applying). Nothing reaches the bundle before the commit,
 * after publishFile, so all or nothing holds as before. Where inotify, the
 * eventfd or leases are missing, everything waits for publishFile. */

typedef struct restore_run {
	ohb_session_t *s;
	job_t *j;
	manage_list_t m;
	uint64_t total;            /* bytes manage.json names */
	size_t next;               /* manage entries applied so far */
	stage_t *st;               /* opened once manage.json is read: NULL until then */
	int inotify_fd, wake_fd;   /* early: both >= 0 */
	bool busy;                 /* the file looked at last was still open for writing */
} restore_run_t;

/* The stage's progress hooks (stage_progress_t), on the run. */
static bool
run_cancelled(void *arg)
{
	restore_run_t *r = arg;
	return session_job_cancelled(r->s, r->j);
}

static void
run_bytes(void *arg, uint64_t bytes_done, uint64_t files_done)
{
	restore_run_t *r = arg;
	session_progress(r->s, r->j, bytes_done, files_done);
}

typedef enum { RS_WAITING, RS_PUBLISHED, RS_STOP } restore_state_t;

static restore_state_t
restore_state(ohb_session_t *s, job_t *j)
{
	pthread_mutex_lock(&s->lock);
	restore_state_t r = j->cancel || s->releasing ? RS_STOP : j->published ? RS_PUBLISHED : RS_WAITING;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static void
early_stop(restore_run_t *r)
{
	if (r->wake_fd >= 0)
		session_restore_set_wake_fd(r->s, r->j, -1);
	if (r->inotify_fd >= 0)
		close(r->inotify_fd);
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	r->inotify_fd = r->wake_fd = -1;
	session_restore_applying(r->s, r->j, false);   /* answers any getFileHandle still waiting */
}

static void
early_start(restore_run_t *r)
{
	r->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->inotify_fd < 0 || r->wake_fd < 0 ||
	    inotify_add_watch(r->inotify_fd, r->j->incoming_dir, IN_CLOSE_WRITE | IN_ONLYDIR) < 0) {
		early_stop(r);
		return;
	}
	session_restore_set_wake_fd(r->s, r->j, r->wake_fd);
}

/* Blocks until a file was closed after writing, publish/cancel/release, or
 * timeout_ms (-1: no limit) passed. */
static bool
early_wait(restore_run_t *r, int timeout_ms)
{
	struct pollfd p[2] = { { r->inotify_fd, POLLIN, 0 }, { r->wake_fd, POLLIN, 0 } };
	if (poll(p, 2, timeout_ms) <= 0)
		return false;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	while (read(r->inotify_fd, buf, sizeof buf) > 0) {
		/* which file does not matter: the job looks at the next one it needs */
	}
	uint64_t n;
	if (read(r->wake_fd, &n, sizeof n) < 0) {
		/* nothing pending */
	}
	return true;
}

/* FINAL_BUSY: someone still holds it open for writing. FINAL_UNKNOWN: leases
 * do not work here. */
typedef enum { FINAL_NO, FINAL_BUSY, FINAL_YES, FINAL_UNKNOWN } final_t;

/* Is the received file complete: present, not open for writing by anyone,
 * and (want >= 0) of the recorded size? On FINAL_YES *fd_out (if given) is
 * a read-only fd of it. FINAL_UNKNOWN: leases do not work here. */
static final_t
received_final(const job_t *j, const char *uri, int64_t want, int *fd_out)
{
	int fd;
	ohb_error_t e;
	if (open_incoming(j, uri, &fd, &e) != 0)
		return FINAL_NO;
	final_t f = FINAL_YES;
	if (fcntl(fd, F_SETLEASE, F_RDLCK) != 0)
		f = errno == EAGAIN || errno == EBUSY ? FINAL_BUSY : FINAL_UNKNOWN;
	else
		(void)fcntl(fd, F_SETLEASE, F_UNLCK);
	struct stat sb;
	if (f == FINAL_YES && want >= 0 && (fstat(fd, &sb) != 0 || sb.st_size != want))
		f = FINAL_NO;   /* a wrong size is reported after publishFile, as ever */
	if (f == FINAL_YES && fd_out)
		*fd_out = fd;
	else
		close(fd);
	return f;
}

struct take {
	const job_t *j;
	const char *uri;
	int64_t want;
	int *fd;
	final_t final;
};

static bool
take_complete(void *arg)
{
	struct take *t = arg;
	t->final = received_final(t->j, t->uri, t->want, t->fd);
	return t->final == FINAL_YES;
}

/* Claims uri if it is complete; on true *fd is read-only. The check runs
 * under the session's lock, so a getFileHandle for the same uri (which would
 * empty the file) comes either before it (the file is open for writing: not
 * complete) or after the claim (refused). */
static bool
early_take(restore_run_t *r, const char *uri, int64_t want, int *fd)
{
	struct take t = { r->j, uri, want, fd, FINAL_NO };
	if (session_restore_claim(r->s, r->j, uri, take_complete, &t))
		return true;
	if (t.final == FINAL_YES)
		close(*fd);   /* complete, but the claim failed (out of memory) */
	else if (t.final == FINAL_UNKNOWN)
		early_stop(r);
	r->busy = t.final == FINAL_BUSY;
	return false;
}

/* Reads manage.json from fd (-1: it was not received) and opens the stage.
 * Nothing of r changes unless it succeeds. */
static int
load_manage(restore_run_t *r, int fd, ohb_error_t *err)
{
	manage_list_t m;
	memset(&m, 0, sizeof m);
	stage_t *st = NULL;
	int rc;
	if (fd < 0)
		rc = ohb_fail(err, OHB_E_UNTAR, "the backup of %s has no manage.json", r->j->name);
	else if ((rc = manage_read_fd(fd, &m, err)) == 0) {
		stage_progress_t progress = { r, run_bytes, run_cancelled };   /* stage_open copies it */
		rc = stage_open(r->j->bundle, &progress, &st, err);
	}
	if (rc != 0) {
		manage_list_free(&m);
		return rc;
	}
	r->m = m;
	r->st = st;
	const char **names = calloc(m.n ? m.n : 1, sizeof *names);
	for (size_t i = 0; names && i < m.n; i++)
		names[i] = m.v[i].file_name;
	/* without it nothing is applied before publishFile, which is slower, not wrong */
	if (names)
		(void)session_restore_expect(r->s, r->j, names, m.n);
	free(names);
	for (size_t i = 0; i < m.n; i++)
		r->total += m.v[i].size;
	session_set_totals(r->s, r->j, r->total, 0);
	session_push_process(r->s, r->j);
	return 0;
}

/* Applies manage entry r->next (fd: the received file, read-only; closed). */
static int
apply_next(restore_run_t *r, int fd, ohb_error_t *err)
{
	const manage_entry_t *e = &r->m.v[r->next++];
	char *from = fsu_join(r->j->incoming_dir, e->file_name);
	int rc;
	if (!from)
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	else if (e->is_big_file)
		/* moved into the stage: not written twice */
		rc = stage_take_file(r->st, fd, from, e->path, e->mode, e->mtime_sec, e->mtime_nsec, e->size, err);
	else if ((rc = stage_add_tar(r->st, fd, e->file_name, e->has_tar_entries ? (int64_t)e->tar_entries : -1, err)) == 0 &&
	         !stage_cancelled(r->st))
		/* Unpacked: the tar is not needed any more, and a file deleted before
		 * writeback never costs the disk anything. */
		(void)unlink(from);
	free(from);
	close(fd);
	return rc;
}

/* Applies what has arrived complete, in manage.json's order; while it applies
 * a file, getFileHandle may hold back its answers (session_restore_applying). */
static int
early_apply(restore_run_t *r, ohb_error_t *err)
{
	int fd, rc;
	if (!r->st) {
		if (!early_take(r, "manage.json", -1, &fd))
			return 0;
		ohb_error_t e;
		rc = load_manage(r, fd, &e);
		close(fd);
		if (rc != 0) {
			/* A client may still send it again; if not, the check after
			 * publishFile reports it. */
			session_restore_unclaim_manage(r->s, r->j);
			return 0;
		}
	}
	while (r->next < r->m.n && r->inotify_fd >= 0) {
		const manage_entry_t *e = &r->m.v[r->next];   /* sizes are at most 2^53 (manage.c) */
		if (!early_take(r, e->file_name, (int64_t)e->size, &fd))
			break;
		session_restore_applying(r->s, r->j, true);
		rc = apply_next(r, fd, err);
		session_restore_applying(r->s, r->j, false);
		if (rc != 0 || stage_cancelled(r->st) || session_job_cancelled(r->s, r->j))
			return rc;
	}
	return 0;
}

/* Until publishFile: applies files as they complete (early) or just waits.
 * Returns 0 with *published false when cancelled or released. */
static int
receive(restore_run_t *r, bool *published, ohb_error_t *err)
{
	ohb_session_t *s = r->s;
	job_t *j = r->j;
	*published = false;
	early_start(r);
	/* inotify tells of a close before the kernel forgets the fd's write
	 * access, so a file can look busy just after the event that says it is
	 * not: it is looked at again after 1, 4, 16 and 64 ms, then every 250 ms
	 * for as long as it stays busy (a client that keeps a file open costs
	 * four wake-ups a second, and a late release on a loaded machine is
	 * never missed). */
	static const int retry_ms[] = { 1, 4, 16, 64, 250 };
	size_t retries = 0;
	for (;;) {
		restore_state_t state = restore_state(s, j);
		if (state == RS_STOP || (r->st && stage_cancelled(r->st)))
			return 0;
		if (state == RS_PUBLISHED)
			break;
		if (r->inotify_fd >= 0) {
			r->busy = false;
			int rc = early_apply(r, err);
			if (rc != 0 || session_job_cancelled(s, j))
				return rc;
		}
		if (r->inotify_fd >= 0) {
			size_t last = sizeof retry_ms / sizeof *retry_ms - 1;
			if (early_wait(r, r->busy ? retry_ms[retries < last ? retries : last] : -1))
				retries = 0;
			else
				retries++;
			continue;
		}
		pthread_mutex_lock(&s->lock);
		while (!j->published && !j->cancel && !s->releasing)
			pthread_cond_wait(&s->work_cond, &s->lock);
		pthread_mutex_unlock(&s->lock);
	}
	early_stop(r);
	*published = true;
	return 0;
}

/* When the client sends the set's all.rp (it does for incremental sets), the
 * restore makes the bundle's included files exactly those all.rp lists:
 * whatever the sandbox holds beyond them was deleted after the backup and is
 * deleted now (OpenHarmony leaves such files behind). Nothing is deleted
 * before the commit, which applies deletions and new files together. An
 * all.rp with a row that cannot be read is refused (13500008), since its
 * path would be taken for deleted. */
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
	if (warnings) {
		/* A row we cannot read leaves its path out of `all`, and the loop
		 * below would delete that file from the bundle (a step of a chain
		 * stages only what changed, so the file is not staged either).
		 * Refuse the set instead: nothing is applied. */
		rc = ohb_fail(err, OHB_E_UNTAR,
		    "the backup of %s has an all.rp with rows that cannot be read (%.*s); restoring it would delete "
		    "the files they list",
		    j->name, (int)strcspn(warnings, "\n"), warnings);
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
	restore_run_t r = { .s = s, .j = j, .inotify_fd = -1, .wake_fd = -1 };
	bool published;
	int rc = receive(&r, &published, err);
	if (rc != 0 || !published)
		goto out;   /* failed, or cancelled or released before the client published */
	if (!r.st) {
		int fd = -1;
		ohb_error_t ignored;   /* load_manage says "no manage.json" */
		(void)open_incoming(j, "manage.json", &fd, &ignored);
		rc = load_manage(&r, fd, err);
		if (fd >= 0)
			close(fd);
		if (rc != 0)
			goto out;
	}
	if ((rc = verify_received(j, &r.m, r.next, err)) != 0)
		goto out;
	while (r.next < r.m.n && rc == 0) {
		int fd;
		if ((rc = open_incoming(j, r.m.v[r.next].file_name, &fd, err)) != 0)
			break;
		rc = apply_next(&r, fd, err);
		if (stage_cancelled(r.st) || session_job_cancelled(s, j))
			goto out;
	}
	if (rc != 0 || (rc = stage_deletions(j, r.st, err)) != 0)
		goto out;
	if ((rc = stage_commit(r.st, err)) != 0)
		goto out;
	session_progress(s, j, r.total, stage_files(r.st));

	/* The application's own restore step, after its files are in place. */
	ext_hooks_t hooks;
	session_ext_hooks(s, j, &hooks);
	bool ext_cancelled = false;
	char *app_result = NULL;
	if ((rc = ext_run(j->bundle, "restore", &hooks, &app_result, &ext_cancelled, err)) != 0)
		goto out;
	*result_json = app_result ? app_result
	                          : session_count_result("restore", stage_files(r.st), stage_skipped(r.st),
	                                                        stage_bytes(r.st));
out:
	early_stop(&r);
	stage_free(r.st);
	manage_list_free(&r.m);
	fsu_rm_rf(j->incoming_dir, NULL);
	/* restore/ itself goes too unless a journaled commit still needs it (rmdir of a non-empty dir fails). */
	char *restore_dir = fsu_join(j->bundle->temp_dir, "restore");
	if (restore_dir)
		rmdir(restore_dir);
	free(restore_dir);
	return rc;
}
