/*
 * console_evq — the queue between the backend's dispatcher thread and the
 * console's main thread. Callbacks push compact events (and never touch
 * curses); the first push after a drain writes one byte to a self-pipe that
 * the main loop poll()s. Progress events of one bundle are coalesced: a new
 * onProcess replaces the one still waiting, so a flood of progress costs one
 * event per redraw, never one redraw per event. The cloud engine's running
 * download and optimize-space events are coalesced the same way (the newest
 * RUNNING replaces a RUNNING of the same stream still waiting), never its
 * final ones.
 *
 * Thread: push from any thread; drain from the main thread. No curses here.
 */
#ifndef OHB_CONSOLE_EVQ_H
#define OHB_CONSOLE_EVQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
	CEV_BEGIN,       /* bundle, code, text = message */
	CEV_END,         /* bundle, code, text = message */
	CEV_ALL_END,     /* code, text = message (or "set <id>") */
	CEV_PROCESS,     /* bundle, v = bytes done/total, files done/total; text = error info or NULL */
	CEV_FILE,        /* bundle, code, v[0] = bytes, text = uri or error message */
	CEV_RESULT,      /* bundle, text = onResultReport */
	CEV_SIZE,        /* text = onBackupSizeReport */
	CEV_DIED,        /* the service died */
	CEV_LOADED,      /* ptr = a console_load_t from the loader thread */
	/* the cloud engine (console_cloud.c), job 0: */
	CEV_CLOUD_SYNC,      /* bundle = scope index, code = SyncProgress code, v[0] = state,
	                        v[1] = ErrorType, text = its message or NULL */
	CEV_CLOUD_DOWNLOAD,  /* v = state, processed, size, DownloadErrorType; text = uri */
	CEV_CLOUD_OPTIMIZE,  /* v[0] = state, v[1] = freed, v[2] = total, v[3] = files,
	                        bundle = progress (0..100), code, text = message or NULL */
	CEV_COUNT
} cev_kind_t;

typedef struct cev {
	cev_kind_t kind;
	int bundle;          /* index into the job's bundles, -1 for none */
	int code;
	uint64_t v[4];
	char *text;          /* malloc'd or NULL; owned by the event */
	void *ptr;
	uint64_t job;        /* which job posted it (stale events are dropped) */
} cev_t;

typedef struct cev_queue {
	pthread_mutex_t lock;
	cev_t *v;
	size_t n, cap;
	int wake_fd;         /* write end of the self-pipe, -1 for none (tests) */
	bool woken;          /* a byte is in the pipe and not yet drained */
	uint64_t pushed, coalesced;
} cev_queue_t;

void cevq_init(cev_queue_t *q, int wake_fd);
void cevq_destroy(cev_queue_t *q);
/* Takes ownership of text (malloc'd or NULL) even on failure. */
void cevq_push(cev_queue_t *q, cev_t ev);
/* Moves every queued event into *out (malloc'd, caller frees events with
 * cev_free and the array with free); returns how many. */
size_t cevq_drain(cev_queue_t *q, cev_t **out);
void cev_free(cev_t *ev);

#endif
