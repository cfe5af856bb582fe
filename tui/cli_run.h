/*
 * cli_run — following a running session from the command line: the
 * callbacks' bookkeeping per bundle, the --json event lines, the live
 * progress line on a TTY, and SIGINT/SIGTERM/SIGHUP handling (the session is
 * released cleanly and the set is left interrupted, never half-marked good).
 *
 * Callbacks arrive on the session's dispatcher thread; the main thread only
 * reads the tracker under its mutex to draw the progress line.
 */
#ifndef OHB_CLI_RUN_H
#define OHB_CLI_RUN_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli.h"

typedef struct run_bundle {
	char *name;
	bool begun, ended;
	int code;                 /* onBundleBegin/onBundleEnd error, or a client-side failure */
	char message[512];
	uint64_t bytes_done, bytes_total, files_done, files_total;
	uint64_t received_bytes;  /* bytes written into the store (backup) or sent (restore) */
	uint64_t received_files;
	char *result;             /* onResultReport text */
	/* restore: the files to send and how far we are */
	char **uris;
	size_t n_uris, next_uri;
} run_bundle_t;

typedef struct run_tracker {
	const cli_ctx_t *ctx;
	const char *verb;          /* "backup" / "restore" */
	pthread_mutex_t lock;
	run_bundle_t *bundles;
	size_t n_bundles;
	bool all_ended;
	int64_t started_ms;
	/* The session followed; set by the command when it creates it, cleared
	 * after ohb_session_free. Read without the lock from the callbacks: it
	 * changes only while no dispatcher thread runs. */
	ohb_session_t *session;
	/* set by the command's own callbacks */
	void *user;
} run_tracker_t;

int run_tracker_init(run_tracker_t *t, const cli_ctx_t *ctx, const char *verb, const char *const *names, size_t n);
void run_tracker_free(run_tracker_t *t);
run_bundle_t *run_tracker_find(run_tracker_t *t, const char *name);

/* Callback bodies shared by backup and restore (they lock t->lock). */
/* A bundle already failed by the client (run_fail_bundle) when it begins is
 * cancelled through t->session. */
void run_on_bundle_begin(run_tracker_t *t, int err, const char *message, const char *bundle);
void run_on_bundle_end(run_tracker_t *t, int err, const char *message, const char *bundle);
void run_on_all_end(run_tracker_t *t, int err, const char *message);
void run_on_result(run_tracker_t *t, const char *bundle, const char *result);
void run_on_process(run_tracker_t *t, const char *bundle, const char *process);
/* Records a client-side failure for a bundle (e.g. the store is full). */
void run_fail_bundle(run_tracker_t *t, const char *bundle, int code, const char *message);
/* --json line for a file handed over. */
void run_json_file(run_tracker_t *t, const char *bundle, const char *uri, uint64_t bytes);

/* The session callbacks of a command whose user pointer is a struct that
 * starts with its run_tracker_t: begin, end, all-end, result and process go to
 * the run_* bodies above; on_file_ready is the command's own. */
ohb_callbacks_t run_callbacks(void *user,
    void (*on_file_ready)(void *user, int err, const char *message, const ohb_file_t *f));

/* Waits for t->session to end, drawing the progress line; on SIGINT/SIGTERM/
 * SIGHUP it releases the session early. Returns true when interrupted. */
bool run_wait(run_tracker_t *t);

/* Prints the per-bundle outcome table (or the JSON summary with extra
 * fields) and returns CLI_OK when every bundle succeeded. */
int run_report(run_tracker_t *t, const char *set_id, bool interrupted);

#endif
