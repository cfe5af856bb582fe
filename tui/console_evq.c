/*
 * console_evq — the callback-to-UI event queue (see console_evq.h).
 *
 * The self-pipe is written only when the queue goes from "drained" to "has
 * something", so a busy session writes at most one byte per main-loop turn
 * and the pipe can never fill up and block a callback.
 */
#include "console_evq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ohbackup_cloud.h"

void
cevq_init(cev_queue_t *q, int wake_fd)
{
	pthread_mutex_init(&q->lock, NULL);
	q->v = NULL;
	q->n = q->cap = 0;
	q->wake_fd = wake_fd;
	q->woken = false;
	q->pushed = q->coalesced = 0;
}

void
cev_free(cev_t *ev)
{
	free(ev->text);
	ev->text = NULL;
}

void
cevq_destroy(cev_queue_t *q)
{
	for (size_t i = 0; i < q->n; i++)
		cev_free(&q->v[i]);
	free(q->v);
	q->v = NULL;
	q->n = q->cap = 0;
	pthread_mutex_destroy(&q->lock);
}

static bool
same_text(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* A download or optimize event whose state (v[0]) is RUNNING. */
static bool
cloud_running(const cev_t *ev)
{
	if (ev->kind == CEV_CLOUD_DOWNLOAD)
		return ev->v[0] == OHB_CLOUD_DL_RUNNING;
	if (ev->kind == CEV_CLOUD_OPTIMIZE)
		return ev->v[0] == OHB_CLOUD_OPT_RUNNING;
	return false;
}

/* A RUNNING download or optimize event replaces the newest waiting event of
 * its stream (same kind, same uri) when that one is RUNNING too; never one
 * that follows a final event of the stream. Called with the lock held. */
static bool
coalesce_cloud(cev_queue_t *q, cev_t *ev)
{
	if (!cloud_running(ev))
		return false;
	for (size_t i = q->n; i-- > 0;) {
		cev_t *o = &q->v[i];
		if (o->kind != ev->kind || (ev->kind == CEV_CLOUD_DOWNLOAD && !same_text(o->text, ev->text)))
			continue;
		if (!cloud_running(o))
			return false;
		for (int k = 0; k < 4; k++)
			o->v[k] = ev->v[k];
		o->bundle = ev->bundle;
		o->code = ev->code;
		if (ev->kind == CEV_CLOUD_OPTIMIZE) {
			free(o->text);
			o->text = ev->text;
			ev->text = NULL;
		}
		cev_free(ev);
		return true;
	}
	return false;
}

void
cevq_push(cev_queue_t *q, cev_t ev)
{
	pthread_mutex_lock(&q->lock);
	q->pushed++;
	if (coalesce_cloud(q, &ev)) {
		q->coalesced++;
		pthread_mutex_unlock(&q->lock);
		return;
	}
	/* Coalesce: a progress event without an error replaces the waiting one of its bundle. */
	if (ev.kind == CEV_PROCESS && !ev.text) {
		for (size_t i = q->n; i-- > 0;) {
			cev_t *o = &q->v[i];
			if (o->kind == CEV_PROCESS && o->bundle == ev.bundle && o->job == ev.job && !o->text) {
				for (int k = 0; k < 4; k++)
					o->v[k] = ev.v[k];
				q->coalesced++;
				pthread_mutex_unlock(&q->lock);
				return;
			}
		}
	}
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 64;
		cev_t *v = realloc(q->v, cap * sizeof *v);
		if (!v) {
			pthread_mutex_unlock(&q->lock);
			cev_free(&ev);
			return;
		}
		q->v = v;
		q->cap = cap;
	}
	q->v[q->n++] = ev;
	bool wake = !q->woken && q->wake_fd >= 0;
	q->woken = true;
	pthread_mutex_unlock(&q->lock);
	if (wake) {
		ssize_t w;
		do
			w = write(q->wake_fd, "x", 1);
		while (w < 0 && errno == EINTR);
	}
}

size_t
cevq_drain(cev_queue_t *q, cev_t **out)
{
	pthread_mutex_lock(&q->lock);
	*out = q->v;
	size_t n = q->n;
	q->v = NULL;
	q->n = q->cap = 0;
	q->woken = false;
	pthread_mutex_unlock(&q->lock);
	return n;
}
