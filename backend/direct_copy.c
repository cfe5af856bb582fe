/*
 * direct_copy — see direct_copy.h for why and how.
 *
 * The slots are a ring the reader fills in order and the writers take in any
 * order: each write carries its own offset, so the order in which the device
 * gets them does not matter. The first failure stops everything: the reader
 * sees `failed` before its next read, the writers before their next write.
 */
#include "direct_copy.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"

enum slot_state { SLOT_FREE, SLOT_FULL, SLOT_WRITING };

typedef struct {
	char *buf;
	size_t len;
	off_t off;
	enum slot_state state;
} slot_t;

typedef struct {
	int dfd;                 /* out_fd reopened with O_DIRECT */
	slot_t slots[DC_SLOTS];
	pthread_mutex_t lock;
	pthread_cond_t changed;  /* any slot's state, `done`, `failed` */
	bool done;               /* the reader has handed over its last slot */
	int failed;              /* first errno of a write, 0 while none */
} pipeline_t;

/* fsu_pwrite_all as an errno value (0: all written). */
static int
pwrite_all(int fd, const char *buf, size_t len, off_t off)
{
	return fsu_pwrite_all(fd, buf, len, off) == 0 ? 0 : errno;
}

static ssize_t
read_full(int fd, char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void *
writer_main(void *arg)
{
	pipeline_t *p = arg;
	pthread_mutex_lock(&p->lock);
	for (;;) {
		slot_t *s = NULL;
		while (!p->failed) {
			for (int i = 0; i < DC_SLOTS && !s; i++)
				if (p->slots[i].state == SLOT_FULL)
					s = &p->slots[i];
			if (s || p->done)
				break;
			pthread_cond_wait(&p->changed, &p->lock);
		}
		if (!s || p->failed)
			break;
		s->state = SLOT_WRITING;
		pthread_mutex_unlock(&p->lock);
		int e = pwrite_all(p->dfd, s->buf, s->len, s->off);
		pthread_mutex_lock(&p->lock);
		s->state = SLOT_FREE;
		if (e && !p->failed)
			p->failed = e;
		pthread_cond_broadcast(&p->changed);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Waits for a free slot; NULL once a writer failed. */
static slot_t *
take_free_slot(pipeline_t *p)
{
	slot_t *s = NULL;
	pthread_mutex_lock(&p->lock);
	while (!p->failed) {
		for (int i = 0; i < DC_SLOTS && !s; i++)
			if (p->slots[i].state == SLOT_FREE)
				s = &p->slots[i];
		if (s)
			break;
		pthread_cond_wait(&p->changed, &p->lock);
	}
	if (p->failed)
		s = NULL;
	pthread_mutex_unlock(&p->lock);
	return s;
}

static void
hand_over(pipeline_t *p, slot_t *s, size_t len, off_t off)
{
	pthread_mutex_lock(&p->lock);
	s->len = len;
	s->off = off;
	s->state = SLOT_FULL;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

/* Reopens fd for writing with O_DIRECT: a new open file description, so fd's
 * own flags stay as they are. */
static int
reopen_direct(int fd)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	return open(path, O_WRONLY | O_DIRECT | O_CLOEXEC);
}

int
direct_copy(int in_fd, int out_fd, uint64_t *copied, bool *handled, ohb_error_t *err)
{
	*handled = false;
	if (copied)
		*copied = 0;
	off_t in_at = lseek(in_fd, 0, SEEK_CUR);
	off_t base = lseek(out_fd, 0, SEEK_CUR);
	int flags = fcntl(out_fd, F_GETFL);
	/* O_APPEND would put the writes elsewhere; O_DIRECT already on would
	 * refuse the tail */
	if (in_at < 0 || base < 0 || base % DC_ALIGN != 0 || flags < 0 || (flags & (O_APPEND | O_DIRECT)))
		return 0;

	pipeline_t p;
	memset(&p, 0, sizeof p);
	size_t map_len = (size_t)DC_SLOTS * DC_CHUNK;
	char *mem = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 0;
	p.dfd = reopen_direct(out_fd);
	if (p.dfd < 0) {
		munmap(mem, map_len);
		return 0;
	}
	for (int i = 0; i < DC_SLOTS; i++)
		p.slots[i].buf = mem + (size_t)i * DC_CHUNK;

	/* The probe: the first chunk, read without moving in_fd, written directly. */
	uint64_t total = 0;
	char tail[DC_ALIGN];
	size_t tail_len = 0;
	bool eof = false;
	int rc = 0;
	ssize_t n;
	do
		n = pread(in_fd, p.slots[0].buf, DC_CHUNK, in_at);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		*handled = true;
		rc = ohb_fail_errno(err, errno, "cannot copy data");
		goto out_fd;
	}
	size_t aligned = (size_t)n & ~(size_t)(DC_ALIGN - 1);
	if (aligned > 0) {
		int e = pwrite_all(p.dfd, p.slots[0].buf, aligned, base);
		if (e == EINVAL)
			goto out_fd;  /* not handled: nothing was written */
		*handled = true;
		if (e) {
			rc = ohb_fail_errno(err, e, "cannot write");
			goto out_fd;
		}
	}
	*handled = true;
	if (lseek(in_fd, in_at + n, SEEK_SET) < 0) {
		rc = ohb_fail_errno(err, errno, "cannot copy data");
		goto out_fd;
	}
	total = aligned;
	if ((size_t)n < DC_CHUNK) {
		eof = true;
		tail_len = (size_t)n - aligned;
		memcpy(tail, p.slots[0].buf + aligned, tail_len);
	}

	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.changed, NULL);
	pthread_t writers[DC_WRITERS];
	int started = 0;
	for (int i = 0; i < DC_WRITERS && !eof; i++)
		if (pthread_create(&writers[i], NULL, writer_main, &p) == 0)
			started++;
	while (!eof) {
		slot_t *s = NULL;
		if (started > 0 && !(s = take_free_slot(&p)))
			break;  /* a writer failed */
		if (!s)
			s = &p.slots[0];  /* no thread could start: write here */
		n = read_full(in_fd, s->buf, DC_CHUNK);
		if (n < 0) {
			rc = ohb_fail_errno(err, errno, "cannot copy data");
			break;
		}
		aligned = (size_t)n & ~(size_t)(DC_ALIGN - 1);
		if ((size_t)n < DC_CHUNK) {
			/* EOF: what is past the last whole block goes in the ordinary way */
			eof = true;
			tail_len = (size_t)n - aligned;
			memcpy(tail, s->buf + aligned, tail_len);
		}
		if (aligned == 0)
			break;
		if (started > 0) {
			hand_over(&p, s, aligned, base + (off_t)total);
		} else {
			int e = pwrite_all(p.dfd, s->buf, aligned, base + (off_t)total);
			if (e) {
				p.failed = e;
				break;
			}
		}
		total += aligned;
	}
	pthread_mutex_lock(&p.lock);
	p.done = true;
	pthread_cond_broadcast(&p.changed);
	pthread_mutex_unlock(&p.lock);
	for (int i = 0; i < started; i++)
		pthread_join(writers[i], NULL);
	pthread_cond_destroy(&p.changed);
	pthread_mutex_destroy(&p.lock);
	if (rc == 0 && p.failed)
		rc = ohb_fail_errno(err, p.failed, "cannot write");
	if (rc == 0 && tail_len > 0) {
		int e = pwrite_all(out_fd, tail, tail_len, base + (off_t)total);
		if (e)
			rc = ohb_fail_errno(err, e, "cannot write");
		else
			total += tail_len;
	}
	if (rc == 0 && lseek(out_fd, base + (off_t)total, SEEK_SET) < 0)
		rc = ohb_fail_errno(err, errno, "cannot write");
	if (copied)
		*copied = total;
out_fd:
	close(p.dfd);
	munmap(mem, map_len);
	return rc;
}
