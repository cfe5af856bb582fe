/*
 * session — the internals shared by the session core (session.c) and the
 * per-bundle jobs (job_backup.c, job_restore.c). Not a public header.
 *
 * One ohb_session_t runs a set of jobs (one per appended bundle). A pool of
 * worker threads (at most max_parallel) takes pending jobs, larger priority
 * first, ties in call order, and runs them. Whatever a job has to tell the
 * client it pushes as an event onto the session's queue; one dispatcher
 * thread delivers the events in order, one at a time, with no lock held.
 *
 * Locking: everything in ohb_session_t and job_t marked (L) is guarded by
 * s->lock. A job's worker reads its own immutable fields without the lock.
 */
#ifndef OHB_SESSION_H
#define OHB_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "capability.h"
#include "rp.h"
#include "ohbackup.h"
#include "registry.h"
#include "scanner.h"

typedef enum { SESSION_BACKUP, SESSION_RESTORE, SESSION_INCREMENTAL } session_kind_t;

typedef enum {
	JOB_PENDING,     /* appended, waiting for a worker */
	JOB_RUNNING,     /* onBundleBegin queued, work under way */
	JOB_FINISHING,   /* final events being queued; cancel now answers 13500012 */
	JOB_DONE,
} job_state_t;

typedef struct job {
	ohb_session_t *session;       /* the session the job belongs to */
	char *name;                   /* as the client names it (the source name on restore) */
	char *info;                   /* the infos[] string or NULL */
	int priority;
	size_t order;
	const reg_bundle_t *bundle;   /* the local bundle the job works on (the target on restore) */

	job_state_t state;            /* (L) */
	bool cancel;                  /* (L) cancel() or release() asked the job to stop */
	bool progress_live;           /* (L) periodic onProcess wanted */
	uint64_t bytes_done, bytes_total, files_done, files_total;   /* (L) */

	/* send rate (updateSendRate): fds per 1000 ms window */
	int rate;                     /* (L) */
	int64_t window_start_ms;      /* (L) */
	int sent_in_window;           /* (L) */

	/* timers (updateTimer): the job stops with 13500003 past its deadline */
	int64_t deadline_ms;          /* (L) monotonic */
	bool timer_set;               /* (L) updateTimer was called: keep the client's deadline */
	bool timed_out;               /* (L) */

	/* incremental only */
	rp_list_t base;               /* the base backup's all.rp (empty: everything is new) */
	int64_t last_incremental_time;

	/* restore only */
	bool published;               /* (L) publishFile received */
	char *incoming_dir;           /* where getFileHandle's files are written */
	/* applying files before publishFile (job_restore.c, "early" below) */
	int wake_fd;                  /* (L) eventfd the job polls, written on publish/cancel/release; -1 */
	bool manage_claimed;          /* (L) the job has read manage.json: not handed out again */
	char **expect;                /* (L) manage.json's file names, sorted by strcmp (set by the job) */
	unsigned char *expect_state;  /* (L) per name: EXPECT_NEW, EXPECT_HANDED or EXPECT_CLAIMED */
	size_t n_expect;
	size_t outstanding;           /* (L) expected files handed out and not claimed yet */
	bool applying;                /* (L) the job is applying a received file */
	char **deferred;              /* (L) getFileHandle uris whose onFileReady waits for the job */
	size_t n_deferred, cap_deferred;
	char **deps;                  /* restoreDeps: bundles of this session to restore first */
	size_t n_deps;
} job_t;

/* One getBackupDataSize run (onBackupSizeReport). */
typedef struct size_scan {
	bool active;                  /* (L) */
	bool precise;
	int interval_ms;
	int64_t next_report_ms;       /* (L) monotonic */
	char *scanning;               /* (L) the bundle being scanned now ("" when between) */
	char *pending;                /* (L) JSON array text items ("{...},{...}") not reported yet */
	ohb_incremental_time_t *list; /* owned copies */
	size_t n;
	pthread_t thread;
	bool thread_started;
} size_scan_t;

typedef enum {
	EV_FILE_READY,
	EV_BUNDLE_BEGIN,
	EV_BUNDLE_END,
	EV_ALL_END,
	EV_RESULT,
	EV_PROCESS,
	EV_SIZE_REPORT,
} event_type_t;

typedef struct event {
	event_type_t type;
	int err;
	char *message;
	char *bundle;
	char *uri;
	char *text;
	int fd, manifest_fd;
	struct event *next;
} event_t;

struct ohb_service {
	char *root;
	int max_parallel;
	int process_interval_ms;
	pthread_mutex_t lock;
	ohb_session_t *active;        /* guarded by lock */
	int lock_fd;                  /* flock on <root>/service.lock while a session is active */
	/* (lock) the listings the last getLocalCapabilities walked (service.c) */
	struct svc_listing *listings;
	size_t n_listings;
};

/* Hands over the listing the last getLocalCapabilities made of b, when it is
 * recent and still current (scan_list_is_current) and b's mounts, includes
 * and excludes are the same; the listing leaves the service either way.
 * Returns true when *out was filled (the caller frees it); with !want the
 * listing is only dropped (an incremental job: its memory is not kept). Any thread. */
bool service_take_listing(ohb_service_t *svc, const reg_bundle_t *b, bool want, scan_list_t *out);

struct ohb_session {
	ohb_service_t *svc;
	session_kind_t kind;
	ohb_callbacks_t cb;
	reg_device_t *dev;
	int64_t created_ms;
	cap_file_t cap;               /* restore: the capability file appended with */
	bool have_cap;

	pthread_mutex_t lock;
	pthread_cond_t work_cond;     /* (L) job state, publish, cancel, rate windows */
	pthread_cond_t queue_cond;    /* (L) events queued or delivered */

	int default_rate;             /* (L) send rate of bundles appended from now on */
	job_t **jobs;                 /* (L) */
	size_t n_jobs, cap_jobs;      /* (L) */
	size_t running;               /* (L) */
	event_t *head, *tail;         /* (L) */
	size_t files_in_queue;        /* (L) undelivered onFileReady events: back-pressure */
	bool releasing;               /* (L) */
	bool all_end_queued;          /* (L) */
	bool all_end_delivered;       /* (L) */
	bool dispatcher_stop;         /* (L) */

	size_scan_t scan;             /* getBackupDataSize */

	pthread_t dispatcher;
	pthread_t *workers;
	size_t n_workers;
	bool threads_started;
};

/* ---- used by the jobs (called without s->lock held) ---- */

/* Queues an event; takes ownership of fd/manifest_fd (closed if the event is
 * dropped). Strings are copied. Returns OHB_E_NOMEM on allocation failure
 * (the fds are then closed). */
int session_push(ohb_session_t *s, event_type_t type, int err, const char *message, const char *bundle,
    const char *uri, const char *text, int fd, int manifest_fd);

/* Progress counters of a job (and the onProcess they feed). */
void session_progress(ohb_session_t *s, job_t *j, uint64_t bytes_done, uint64_t files_done);
void session_set_totals(ohb_session_t *s, job_t *j, uint64_t bytes_total, uint64_t files_total);
/* Queues one onProcess now, from the job's counters. */
void session_push_process(ohb_session_t *s, job_t *j);
/* Queues an onProcess carrying errorInfo (a file that could not be handled). */
void session_push_process_error(ohb_session_t *s, job_t *j, int code, const char *message);

/* True when the job should stop: cancel, release, or its deadline passed
 * (then j->timed_out is set and the job ends with 13500003). */
bool session_job_cancelled(ohb_session_t *s, job_t *j);

/* After the scan: the packing phase's deadline, max(900 s, 30 s + 3 s per
 * 3 MiB) from now (REFERENCE.md "Timers"), unless the client set a timer. */
void session_set_pack_deadline(ohb_session_t *s, job_t *j, uint64_t bytes);

/* Wraps an application's (extension's) progress string as REFERENCE.md's
 * onProcess and queues it. */
void session_push_app_process(ohb_session_t *s, job_t *j, const char *app_json);

/* The extension hooks for a job (progress, cancel, deadline). */
struct ext_hooks;
void session_ext_hooks(ohb_session_t *s, job_t *j, struct ext_hooks *hooks);

/* Waits for the send-rate window and queue back-pressure, then queues an
 * onFileReady with fd (ownership passes). Returns non-zero when the job was
 * cancelled while waiting (fd is closed then). */
int session_send_file(ohb_session_t *s, job_t *j, const char *uri, int fd, int manifest_fd);

/* ---- restore: files applied as they arrive (job_restore.c) ----
 *
 * A restore job may apply a received file before publishFile, once the
 * client can no longer change it. session_restore_claim runs complete(arg)
 * while getFileHandle cannot run and, when it returns true, claims uri: from
 * then on getFileHandle refuses it (13900001), so no new writable fd can
 * appear. False when complete() says no, the uri is claimed already, or
 * memory is short. */
bool session_restore_claim(ohb_session_t *s, job_t *j, const char *uri, bool (*complete)(void *arg), void *arg);
/* Gives manage.json back (it did not parse): a client may send it again. */
void session_restore_unclaim_manage(ohb_session_t *s, job_t *j);
/* The files manage.json names (copied), told once by the job when it has read
 * manage.json. Only these can be claimed, and only their onFileReady may wait
 * (below). Returns false when memory is short. */
bool session_restore_expect(ohb_session_t *s, job_t *j, const char *const *names, size_t n);

/* The job is applying a file (on) or has finished it (off). While it is, and
 * SESSION_RESTORE_AHEAD fds or more of expected files are out that it has not
 * claimed yet, getFileHandle of another expected file still answers 0 but its
 * onFileReady waits for the job to
 * finish that file: a client that copies faster than the job unpacks stays
 * near it, and the tars it writes reuse the memory of those already applied
 * and deleted. Turning it off answers every waiting request, so a wait never
 * outlasts the file being applied, whatever order the client sends in. */
#define SESSION_RESTORE_AHEAD 2
void session_restore_applying(ohb_session_t *s, job_t *j, bool on);

/* The eventfd the job polls (or -1 when it stops polling). */
void session_restore_set_wake_fd(ohb_session_t *s, job_t *j, int fd);

/* The job bodies: return 0 or a code with err filled. They queue the
 * onFileReady/onProcess events; the core queues begin/result/end. */
int job_backup_run(ohb_session_t *s, job_t *j, char **result_json, ohb_error_t *err);
int job_restore_run(ohb_session_t *s, job_t *j, char **result_json, ohb_error_t *err);

/* The CountInfo result of REFERENCE.md (malloc'd). */
char *session_count_result(const char *what, uint64_t ok, uint64_t failed, uint64_t bytes);

#endif
