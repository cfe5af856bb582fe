/* Tests of the cloud drivers (cloud_driver.c, cloud_dir.c, cloud_webdav.c).
 *
 * One table of behaviours runs against both drivers: the dir driver on a
 * mkdtemp folder, and the WebDAV driver against a real server —
 * `rclone serve webdav <mkdtemp folder> --addr 127.0.0.1:<port>` — that the
 * fixture starts (fork + exec, a random port, retried if taken), waits for
 * until it answers PROPFIND, and kills in teardown (and, should a test die
 * first, the kernel kills it: PR_SET_PDEATHSIG). All traffic stays on
 * 127.0.0.1. Without rclone the WebDAV half is skipped with a message. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloud_driver.h"
#include "fsutil.h"
#include "cloud_fixture.h"
#include "skip.h"

#define BIG_SIZE (20u * 1024u * 1024u)

enum { KIND_DIR, KIND_WEBDAV };

typedef struct fixture {
	int kind;
	char *root;         /* the folder holding the cloud's files */
	char *work;         /* a local scratch folder */
	char url[128];
	pid_t server;       /* rclone, or -1 */
	cloud_driver_t *d;
} fixture_t;

static fixture_t fx;   /* set up per test (checked fixtures run in the test's own process) */

/* ---- helpers ---------------------------------------------------------------- */

/* A port nothing listens on (bound, then released). */
static int
closed_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t len = sizeof a;
	ck_assert_int_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
	close(s);
	return ntohs(a.sin_port);
}

static void
stop_server(void)
{
	webdav_stop(fx.server);
	fx.server = -1;
}

/* Starts rclone on fx.root (extra: NULL or "--user", "u", "--pass", "p"); sets fx.url. */
static void
start_server(const char *const *extra)
{
	fx.server = webdav_start(fx.root, extra, fx.url, sizeof fx.url);
}

static void
setup_common(int kind)
{
	memset(&fx, 0, sizeof fx);
	fx.kind = kind;
	fx.server = -1;
	fx.root = fixture_tmpdir("root");
	fx.work = fixture_tmpdir("work");
	if (kind == KIND_WEBDAV)
		start_server(NULL);
	else
		snprintf(fx.url, sizeof fx.url, "file://%s", fx.root);
	ohb_error_t err;
	ck_assert_int_eq(cloud_driver_open(fx.url, NULL, NULL, &fx.d, &err), 0);
	ck_assert_str_eq(cloud_driver_kind(fx.d), kind == KIND_WEBDAV ? "webdav" : "dir");
}

static void
setup_dir(void)
{
	setup_common(KIND_DIR);
}

static void
setup_webdav(void)
{
	setup_common(KIND_WEBDAV);
}

static void
teardown(void)
{
	cloud_driver_close(fx.d);
	stop_server();
	fsu_rm_rf(fx.root, NULL);
	fsu_rm_rf(fx.work, NULL);
	free(fx.root);
	free(fx.work);
}

/* Reopens the driver on the current fx.url (after a server restart). */
static void
reopen(void)
{
	cloud_driver_close(fx.d);
	ohb_error_t err;
	ck_assert_int_eq(cloud_driver_open(fx.url, NULL, NULL, &fx.d, &err), 0);
}

/* A local file of len pseudo-random bytes (seeded), open for reading at 0. */
static int
local_file(const char *name, size_t len, uint32_t seed)
{
	char *p = fsu_join(fx.work, name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	free(p);
	uint32_t x = seed ? seed : 1;
	char buf[65536];
	for (size_t done = 0; done < len;) {
		size_t n = len - done < sizeof buf ? len - done : sizeof buf;
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			buf[i] = (char)x;
		}
		ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
		done += n;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int
local_text(const char *name, const char *text)
{
	char *p = fsu_join(fx.work, name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	free(p);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* A fresh local file to download into. */
static int
sink(const char *name)
{
	char *p = fsu_join(fx.work, name);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	free(p);
	return fd;
}

static char *
fd_contents(int fd, size_t *len)
{
	lseek(fd, 0, SEEK_SET);
	char *data = NULL;
	ck_assert_int_eq(fsu_read_fd(fd, 64u << 20, &data, len, NULL), 0);
	return data;
}

static int
put_text(const char *path, const char *text)
{
	int fd = local_text("upload.txt", text);
	ohb_error_t err;
	int rc = cloud_put(fx.d, path, fd, strlen(text), NULL, NULL, &err);
	close(fd);
	return rc;
}

/* The cloud copy of path as text (malloc'd), or NULL with *rc set. */
static char *
get_text(const char *path, int *rc)
{
	int fd = sink("download.txt");
	ohb_error_t err;
	*rc = cloud_get(fx.d, path, 0, fd, NULL, &err);
	size_t len;
	char *data = *rc == 0 ? fd_contents(fd, &len) : NULL;
	close(fd);
	return data;
}

/* Progress recorder and the trigger for cancel / killing the server. */
typedef struct recorder {
	uint64_t last, total;
	int calls;
	bool backwards;
	uint64_t cancel_at;   /* cancel once done >= this (0 = never) */
	uint64_t kill_at;     /* kill the server once done >= this (0 = never) */
	bool cancel_now;
} recorder_t;

static void
on_progress(void *ctx, uint64_t done, uint64_t total)
{
	recorder_t *r = ctx;
	if (r->calls > 0 && done < r->last)
		r->backwards = true;
	r->calls++;
	r->last = done;
	r->total = total;
	if (r->cancel_at && done >= r->cancel_at)
		r->cancel_now = true;
	if (r->kill_at && done >= r->kill_at && fx.server > 0)
		stop_server();
}

static bool
on_cancelled(void *ctx)
{
	return ((recorder_t *)ctx)->cancel_now;
}

/* ---- the behaviours, each run against both drivers ----------------------------- */

static void
b_round_trip(void)
{
	int fd = local_text("a.txt", "hello cloud");
	ohb_error_t err;
	cloud_entry_t e;
	ck_assert_int_eq(cloud_put(fx.d, "a.txt", fd, 11, NULL, &e, &err), 0);
	close(fd);
	ck_assert_str_eq(e.path, "a.txt");
	ck_assert(!e.is_dir);
	ck_assert_uint_eq(e.size, 11);
	ck_assert_int_gt(e.mtime_ms, 0);
	free(e.path);

	cloud_entry_t *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(cloud_list(fx.d, "", &v, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].path, "a.txt");
	ck_assert_uint_eq(v[0].size, 11);
	cloud_entries_free(v, n);

	ck_assert_int_eq(cloud_stat(fx.d, "a.txt", &e, &err), 0);
	ck_assert_uint_eq(e.size, 11);
	if (fx.kind == KIND_DIR)
		ck_assert(strncmp(e.etag, "11-", 3) == 0);
	else
		ck_assert_str_ne(e.etag, "");
	char etag1[128];
	snprintf(etag1, sizeof etag1, "%s", e.etag);
	free(e.path);

	int rc;
	char *text = get_text("a.txt", &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(text, "hello cloud");
	free(text);

	/* a second put replaces the whole file; the version tag changes */
	usleep(20 * 1000);
	ck_assert_int_eq(put_text("a.txt", "v2"), 0);
	text = get_text("a.txt", &rc);
	ck_assert_str_eq(text, "v2");
	free(text);
	ck_assert_int_eq(cloud_stat(fx.d, "a.txt", &e, &err), 0);
	ck_assert_str_ne(e.etag, etag1);
	free(e.path);

	/* an empty file is a file */
	ck_assert_int_eq(put_text("empty", ""), 0);
	ck_assert_int_eq(cloud_stat(fx.d, "empty", &e, &err), 0);
	ck_assert(!e.is_dir);
	ck_assert_uint_eq(e.size, 0);
	free(e.path);
	text = get_text("empty", &rc);
	ck_assert_str_eq(text, "");
	free(text);
}

static void
b_big_file_progress_and_resume(void)
{
	int fd = local_file("big.bin", BIG_SIZE, 7);
	recorder_t up = {0};
	cloud_transfer_t t = {&up, on_progress, on_cancelled};
	ohb_error_t err;
	ck_assert_msg(cloud_put(fx.d, "big.bin", fd, BIG_SIZE, &t, NULL, &err) == 0, "%s", err.message);
	ck_assert(!up.backwards);
	ck_assert_int_ge(up.calls, 2);
	ck_assert_uint_eq(up.last, BIG_SIZE);

	recorder_t down = {0};
	t.ctx = &down;
	int out = sink("big.copy");
	ck_assert_msg(cloud_get(fx.d, "big.bin", 0, out, &t, &err) == 0, "%s", err.message);
	ck_assert(!down.backwards);
	ck_assert_int_ge(down.calls, 2);
	ck_assert_uint_eq(down.last, BIG_SIZE);
	ck_assert_uint_eq(down.total, BIG_SIZE);
	size_t la, lb;
	char *a = fd_contents(fd, &la);
	char *b = fd_contents(out, &lb);
	ck_assert_uint_eq(la, BIG_SIZE);
	ck_assert_uint_eq(lb, BIG_SIZE);
	ck_assert(memcmp(a, b, BIG_SIZE) == 0);
	free(b);
	close(out);

	/* resume: the bytes after an offset, appended at the fd's position */
	const uint64_t off = 12345677;
	out = sink("big.part");
	ck_assert_int_eq(write(out, a, off), (ssize_t)off);
	recorder_t resume = {0};
	t.ctx = &resume;
	ck_assert_msg(cloud_get(fx.d, "big.bin", off, out, &t, &err) == 0, "%s", err.message);
	ck_assert_uint_eq(resume.last, BIG_SIZE);
	b = fd_contents(out, &lb);
	ck_assert_uint_eq(lb, BIG_SIZE);
	ck_assert(memcmp(a, b, BIG_SIZE) == 0);
	free(b);
	close(out);

	/* resuming at the very end is a no-op; past it is an error */
	out = sink("big.end");
	ck_assert_int_eq(cloud_get(fx.d, "big.bin", BIG_SIZE, out, NULL, &err), 0);
	ck_assert_int_ne(cloud_get(fx.d, "big.bin", BIG_SIZE + 10, out, NULL, &err), 0);
	ck_assert_int_eq(lseek(out, 0, SEEK_END), 0);
	close(out);
	free(a);
	close(fd);
}

static void
b_nested_folders(void)
{
	ck_assert_int_eq(put_text("x/y/z/f.txt", "deep"), 0);
	ck_assert_int_eq(put_text("x/g.txt", "g"), 0);
	ohb_error_t err;
	cloud_entry_t *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(cloud_list(fx.d, "", &v, &n, &err), 0);
	const char *want[] = {"x", "x/g.txt", "x/y", "x/y/z", "x/y/z/f.txt"};
	ck_assert_uint_eq(n, 5);
	for (size_t i = 0; i < n; i++)
		ck_assert_str_eq(v[i].path, want[i]);
	ck_assert(v[0].is_dir && !v[1].is_dir && v[2].is_dir && v[3].is_dir && !v[4].is_dir);
	ck_assert_uint_eq(v[4].size, 4);
	cloud_entries_free(v, n);

	ck_assert_int_eq(cloud_list(fx.d, "x/y", &v, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].path, "x/y/z");
	ck_assert_str_eq(v[1].path, "x/y/z/f.txt");
	cloud_entries_free(v, n);

	ck_assert_int_eq(cloud_list(fx.d, "nosuch/folder", &v, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	cloud_entries_free(v, n);

	cloud_entry_t e;
	ck_assert_int_eq(cloud_stat(fx.d, "x/y", &e, &err), 0);
	ck_assert(e.is_dir);
	free(e.path);
}

static void
b_names_with_spaces_and_utf8(void)
{
	const char *name = "dir with space/Grüße 文件 #1 100%&+.txt";
	ck_assert_int_eq(put_text(name, "unicode"), 0);
	ck_assert(fixture_exists(fx.root, name));
	ohb_error_t err;
	cloud_entry_t *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(cloud_list(fx.d, "dir with space", &v, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].path, name);
	cloud_entries_free(v, n);
	int rc;
	char *text = get_text(name, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_str_eq(text, "unicode");
	free(text);
	ck_assert_int_eq(cloud_move(fx.d, name, "dir with space/é è.txt", &err), 0);
	ck_assert(fixture_exists(fx.root, "dir with space/é è.txt"));
}

static void
b_move(void)
{
	ck_assert_int_eq(put_text("a.txt", "A"), 0);
	ck_assert_int_eq(put_text("b.txt", "B"), 0);
	ohb_error_t err;
	ck_assert_int_eq(cloud_move(fx.d, "a.txt", "conflicts/a (1).txt", &err), 0);
	cloud_entry_t e;
	ck_assert_int_eq(cloud_stat(fx.d, "a.txt", &e, &err), 13900002);
	int rc;
	char *text = get_text("conflicts/a (1).txt", &rc);
	ck_assert_str_eq(text, "A");
	free(text);
	/* the target must not exist: both stay as they were */
	ck_assert_int_eq(cloud_move(fx.d, "b.txt", "conflicts/a (1).txt", &err), 13900020);
	text = get_text("conflicts/a (1).txt", &rc);
	ck_assert_str_eq(text, "A");
	free(text);
	text = get_text("b.txt", &rc);
	ck_assert_str_eq(text, "B");
	free(text);
	ck_assert_int_eq(cloud_move(fx.d, "nosuch", "c.txt", &err), 13900002);
}

static void
b_remove(void)
{
	ck_assert_int_eq(put_text("f/a.txt", "A"), 0);
	ohb_error_t err;
	ck_assert_int_eq(cloud_remove(fx.d, "f", &err), 13900020);   /* not empty: kept */
	ck_assert(fixture_exists(fx.root, "f/a.txt"));
	ck_assert_int_eq(cloud_remove(fx.d, "f/a.txt", &err), 0);
	cloud_entry_t e;
	ck_assert_int_eq(cloud_stat(fx.d, "f/a.txt", &e, &err), 13900002);
	ck_assert(!fixture_exists(fx.root, "f/a.txt"));
	ck_assert_int_eq(cloud_remove(fx.d, "f/a.txt", &err), 0);   /* already gone: fine */
	ck_assert_int_eq(cloud_remove(fx.d, "never/was", &err), 0);
	ck_assert_int_eq(cloud_remove(fx.d, "f", &err), 0);          /* now empty */
	ck_assert(!fixture_exists(fx.root, "f"));
}

static void
b_missing_file(void)
{
	ohb_error_t err;
	cloud_entry_t e;
	ck_assert_int_eq(cloud_stat(fx.d, "nope.txt", &e, &err), 13900002);
	ck_assert_ptr_nonnull(strstr(err.message, "nope.txt"));
	int fd = sink("x");
	ck_assert_int_eq(cloud_get(fx.d, "nope.txt", 0, fd, NULL, &err), 13900002);
	ck_assert_int_eq(cloud_get(fx.d, "no/such/dir/f", 0, fd, NULL, &err), 13900002);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);   /* no error page written into the file */
	close(fd);
}

static void
b_invalid_paths(void)
{
	const char *bad[] = {"../x", "/abs", "a/./b", "a/../b", "a//b", "a/", ".", ".."};
	ohb_error_t err;
	cloud_entry_t e;
	int fd = local_text("v.txt", "v");
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_int_eq(cloud_stat(fx.d, bad[i], &e, &err), 14000002);
		ck_assert_int_eq(cloud_get(fx.d, bad[i], 0, fd, NULL, &err), 14000002);
		ck_assert_int_eq(cloud_put(fx.d, bad[i], fd, 1, NULL, NULL, &err), 14000002);
		ck_assert_int_eq(cloud_remove(fx.d, bad[i], &err), 14000002);
		ck_assert_int_eq(cloud_move(fx.d, "v.txt", bad[i], &err), 14000002);
		cloud_entry_t *v = NULL;
		size_t n = 0;
		ck_assert_int_eq(cloud_list(fx.d, bad[i], &v, &n, &err), 14000002);
	}
	ck_assert_int_eq(cloud_stat(fx.d, "", &e, &err), 14000002);
	close(fd);
	ck_assert(!fixture_exists(fx.root, "x"));
}

static void
b_cancel_leaves_no_half_file(void)
{
	ck_assert_int_eq(put_text("keep.bin", "old"), 0);
	int fd = local_file("big.bin", BIG_SIZE, 3);
	recorder_t r = {.cancel_at = 2u << 20};
	cloud_transfer_t t = {&r, on_progress, on_cancelled};
	ohb_error_t err;
	ck_assert_int_eq(cloud_put(fx.d, "big.bin", fd, BIG_SIZE, &t, NULL, &err), CLOUD_CANCELLED);
	cloud_entry_t e;
	ck_assert_int_eq(cloud_stat(fx.d, "big.bin", &e, &err), 13900002);
	ck_assert(!fixture_exists(fx.root, "big.bin"));

	/* a cancelled replacement leaves the old file whole */
	lseek(fd, 0, SEEK_SET);
	r = (recorder_t){.cancel_at = 2u << 20};
	ck_assert_int_eq(cloud_put(fx.d, "keep.bin", fd, BIG_SIZE, &t, NULL, &err), CLOUD_CANCELLED);
	int rc;
	char *text = get_text("keep.bin", &rc);
	ck_assert_str_eq(text, "old");
	free(text);

	cloud_entry_t *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(cloud_list(fx.d, "", &v, &n, &err), 0);
	ck_assert_uint_eq(n, 1);   /* temporaries are never listed */
	cloud_entries_free(v, n);

	/* a cancelled download stops early */
	lseek(fd, 0, SEEK_SET);
	ck_assert_int_eq(cloud_put(fx.d, "big.bin", fd, BIG_SIZE, NULL, NULL, &err), 0);
	int out = sink("big.copy");
	r = (recorder_t){.cancel_at = 2u << 20};
	ck_assert_int_eq(cloud_get(fx.d, "big.bin", 0, out, &t, &err), CLOUD_CANCELLED);
	ck_assert_int_lt(lseek(out, 0, SEEK_END), (off_t)BIG_SIZE);
	close(out);
	close(fd);
}

/* WebDAV only: the server dies in the middle of a transfer. */
static void
b_server_killed_mid_put(void)
{
	int fd = local_file("big.bin", BIG_SIZE, 5);
	recorder_t r = {.kill_at = 2u << 20};
	cloud_transfer_t t = {&r, on_progress, NULL};
	ohb_error_t err;
	int64_t t0 = fsu_mono_ms();
	int rc = cloud_put(fx.d, "big.bin", fd, BIG_SIZE, &t, NULL, &err);
	ck_assert_msg(rc == 22400002, "rc %d: %s", rc, err.message);
	ck_assert_int_lt(fsu_mono_ms() - t0, 15000);
	ck_assert_int_eq(fx.server, -1);
	start_server(NULL);
	reopen();
	cloud_entry_t e;
	ck_assert_int_eq(cloud_stat(fx.d, "big.bin", &e, &err), 13900002);
	ck_assert(!fixture_exists(fx.root, "big.bin"));
	close(fd);
}

static void
b_server_killed_mid_get(void)
{
	int fd = local_file("big.bin", BIG_SIZE, 9);
	ohb_error_t err;
	ck_assert_int_eq(cloud_put(fx.d, "big.bin", fd, BIG_SIZE, NULL, NULL, &err), 0);
	close(fd);
	recorder_t r = {.kill_at = 1u << 20};
	cloud_transfer_t t = {&r, on_progress, NULL};
	int out = sink("big.copy");
	int64_t t0 = fsu_mono_ms();
	int rc = cloud_get(fx.d, "big.bin", 0, out, &t, &err);
	ck_assert_msg(rc == 22400002, "rc %d: %s", rc, err.message);
	ck_assert_int_lt(fsu_mono_ms() - t0, 15000);
	ck_assert_int_lt(lseek(out, 0, SEEK_END), (off_t)BIG_SIZE);
	close(out);
	/* later calls say the same, quickly */
	cloud_entry_t e;
	ck_assert_int_eq(cloud_stat(fx.d, "big.bin", &e, &err), 22400002);
	start_server(NULL);
	reopen();
	ck_assert_int_eq(cloud_stat(fx.d, "big.bin", &e, &err), 0);
	ck_assert_uint_eq(e.size, BIG_SIZE);
	free(e.path);
}

typedef struct behaviour {
	const char *name;
	void (*run)(void);
} behaviour_t;

/* Both drivers run the first N_COMMON; the rest need a server to kill. */
static const behaviour_t behaviours[] = {
	{"round trip", b_round_trip},
	{"20 MiB with progress and resume", b_big_file_progress_and_resume},
	{"nested folders", b_nested_folders},
	{"spaces and UTF-8", b_names_with_spaces_and_utf8},
	{"move", b_move},
	{"remove", b_remove},
	{"missing file", b_missing_file},
	{"invalid paths", b_invalid_paths},
	{"cancel", b_cancel_leaves_no_half_file},
	{"server killed mid put", b_server_killed_mid_put},
	{"server killed mid get", b_server_killed_mid_get},
};
#define N_ALL ((int)(sizeof behaviours / sizeof behaviours[0]))
#define N_COMMON (N_ALL - 2)

START_TEST(behaviour)
{
	behaviours[_i].run();
}
END_TEST

/* ---- configuration and driver-specific tests ---------------------------------------- */

START_TEST(not_configured_and_unreachable)
{
	cloud_driver_t *d = NULL;
	ohb_error_t err;
	ck_assert_int_eq(cloud_driver_open("", NULL, NULL, &d, &err), 22400001);
	ck_assert_int_eq(cloud_driver_open(NULL, NULL, NULL, &d, &err), 22400001);
	ck_assert_int_eq(cloud_driver_open("ftp://x/", NULL, NULL, &d, &err), 22400001);
	ck_assert_int_eq(cloud_driver_open("/nonexistent/ohb-cloud", NULL, NULL, &d, &err), 22400001);
	ck_assert_ptr_nonnull(strstr(err.message, "the cloud folder /nonexistent/ohb-cloud does not exist"));
	ck_assert_ptr_null(d);

	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/dav/", closed_port());
	ck_assert_int_eq(cloud_driver_open(url, NULL, NULL, &d, &err), 0);   /* no network yet */
	int64_t t0 = fsu_mono_ms();
	cloud_entry_t e;
	ck_assert_int_eq(cloud_stat(d, "a.txt", &e, &err), 22400002);
	ck_assert_ptr_nonnull(strstr(err.message, "cannot be reached"));
	cloud_entry_t *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(cloud_list(d, "", &v, &n, &err), 22400002);
	ck_assert_int_lt(fsu_mono_ms() - t0, 5000);
	ck_assert(!cloud_is_full(d));
	cloud_driver_close(d);
}
END_TEST

START_TEST(path_rule)
{
	ck_assert(cloud_path_is_valid("a"));
	ck_assert(cloud_path_is_valid("a/b c/.hidden/..x"));
	ck_assert(!cloud_path_is_valid(""));
	ck_assert(!cloud_path_is_valid(NULL));
	ck_assert(!cloud_path_is_valid("/a"));
	ck_assert(!cloud_path_is_valid("a/"));
	ck_assert(!cloud_path_is_valid("a/./b"));
	ck_assert(!cloud_path_is_valid("a/.."));
	ck_assert(!cloud_path_is_valid("a//b"));
}
END_TEST

START_TEST(dir_never_follows_symlinks)
{
	char *outside = fixture_tmpdir("outside");
	char *secret = fsu_join(outside, "secret");
	ck_assert_int_eq(fsu_write_atomic(outside, "secret", "s", 1, 0600, NULL), 0);
	char *link = fsu_join(fx.root, "link");
	ck_assert_int_eq(symlink(outside, link), 0);
	char *flink = fsu_join(fx.root, "flink");
	ck_assert_int_eq(symlink(secret, flink), 0);
	ohb_error_t err;
	cloud_entry_t e;
	ck_assert_int_eq(cloud_stat(fx.d, "link/secret", &e, &err), 13900002);
	ck_assert_int_eq(cloud_stat(fx.d, "flink", &e, &err), 13900002);
	int fd = sink("s");
	ck_assert_int_eq(cloud_get(fx.d, "flink", 0, fd, NULL, &err), 13900002);
	ck_assert_int_eq(cloud_get(fx.d, "link/secret", 0, fd, NULL, &err), 13900002);
	close(fd);
	ck_assert_int_ne(put_text("link/new.txt", "x"), 0);
	char *created = fsu_join(outside, "new.txt");
	ck_assert_int_ne(access(created, F_OK), 0);
	cloud_entry_t *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(cloud_list(fx.d, "", &v, &n, &err), 0);
	ck_assert_uint_eq(n, 0);
	cloud_entries_free(v, n);
	fsu_rm_rf(outside, NULL);
	free(created);
	free(link);
	free(flink);
	free(secret);
	free(outside);
}
END_TEST

START_TEST(dir_full_is_limit)
{
	char *mnt = fixture_tmpdir("tmpfs");
	if (!fixture_mount_tmpfs(mnt, "size=1m", "cloud_driver: the full-cloud test")) {
		rmdir(mnt);
		free(mnt);
		return;
	}
	char url[128];
	snprintf(url, sizeof url, "file://%s", mnt);
	cloud_driver_t *d = NULL;
	ohb_error_t err;
	ck_assert_int_eq(cloud_driver_open(url, NULL, NULL, &d, &err), 0);
	int fd = local_file("big.bin", 2u << 20, 1);
	int rc = cloud_put(d, "sub/big.bin", fd, 2u << 20, NULL, NULL, &err);
	bool full = cloud_is_full(d);
	DIR *dir = NULL;
	char *sub = fsu_join(mnt, "sub");
	int leftovers = 0;
	if ((dir = opendir(sub)) != NULL) {
		for (struct dirent *de; (de = readdir(dir)) != NULL;)
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				leftovers++;
		closedir(dir);
	}
	lseek(fd, 0, SEEK_SET);
	int rc_small = cloud_put(d, "small.bin", fd, 1000, NULL, NULL, &err);
	bool full_after = cloud_is_full(d);
	cloud_driver_close(d);
	close(fd);
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
	free(sub);
	free(mnt);
	ck_assert_int_eq(rc, 22400004);
	ck_assert(full);
	ck_assert_int_eq(leftovers, 0);
	ck_assert_int_eq(rc_small, 0);
	ck_assert(!full_after);
}
END_TEST

START_TEST(webdav_credentials)
{
	cloud_driver_close(fx.d);
	fx.d = NULL;
	stop_server();
	const char *const auth[] = {"--user", "ohb", "--pass", "s3cret", NULL};
	start_server(auth);
	ohb_error_t err;
	cloud_driver_t *d = NULL;
	cloud_entry_t *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(cloud_driver_open(fx.url, NULL, NULL, &d, &err), 0);
	ck_assert_int_eq(cloud_list(d, "", &v, &n, &err), 22400001);
	ck_assert_ptr_nonnull(strstr(err.message, "refused the credentials"));
	cloud_driver_close(d);
	ck_assert_int_eq(cloud_driver_open(fx.url, "ohb", "wrong", &d, &err), 0);
	ck_assert_int_eq(cloud_list(d, "", &v, &n, &err), 22400001);
	cloud_driver_close(d);
	ck_assert_int_eq(cloud_driver_open(fx.url, "ohb", "s3cret", &d, &err), 0);
	int fd = local_text("c.txt", "with credentials");
	ck_assert_msg(cloud_put(d, "c.txt", fd, 16, NULL, NULL, &err) == 0, "%s", err.message);
	close(fd);
	ck_assert_int_eq(cloud_list(d, "", &v, &n, &err), 0);
	ck_assert_uint_eq(n, 1);
	cloud_entries_free(v, n);
	cloud_driver_close(d);
}
END_TEST

START_TEST(webdav_base_path)
{
	/* a cloud rooted below the server's root, as on Nextcloud (/remote.php/dav/files/<user>/) */
	ck_assert_int_eq(put_text("base dir/inner/f.txt", "f"), 0);
	char url[256];
	/* and credentials in the URL (rclone here wants none) stay out of Destination: */
	snprintf(url, sizeof url, "http://who:pw@%sbase%%20dir", fx.url + strlen("http://"));
	cloud_driver_t *d = NULL;
	ohb_error_t err;
	ck_assert_int_eq(cloud_driver_open(url, NULL, NULL, &d, &err), 0);
	cloud_entry_t *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(cloud_list(d, "", &v, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].path, "inner");
	ck_assert_str_eq(v[1].path, "inner/f.txt");
	cloud_entries_free(v, n);
	int fd = local_text("g.txt", "g");
	ck_assert_int_eq(cloud_put(d, "g.txt", fd, 1, NULL, NULL, &err), 0);
	close(fd);
	ck_assert(fixture_exists(fx.root, "base dir/g.txt"));
	cloud_driver_close(d);
}
END_TEST

/* A canned WebDAV server (a forked child on a loopback port) that answers
 * PROPFIND the way other servers do: another namespace prefix, none at all,
 * full-URL hrefs, entities, CDATA, a 404 propstat, a comment, an href that
 * tries to leave the root. */
static const char canned_root[] =
    "<?xml version=\"1.0\"?>\n<d:multistatus xmlns:d=\"DAV:\" xmlns:oc=\"http://owncloud.org/ns\">\n"
    "<!-- a comment with <d:response> inside -->\n"
    "<d:response><d:href>/</d:href><d:propstat><d:prop><d:resourcetype><d:collection/></d:resourcetype>"
    "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>\n"
    "<d:response><d:href>http://127.0.0.1:1/caf%C3%A9%20%26%20bar.txt</d:href><d:propstat><d:prop>"
    "<d:getcontentlength>42</d:getcontentlength><d:getlastmodified>Wed, 01 Jan 2025 00:00:10 GMT"
    "</d:getlastmodified><d:getetag>&quot;abc&quot;</d:getetag><d:resourcetype/><oc:size>42</oc:size>"
    "</d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat><d:propstat><d:prop><d:getcontentlength>"
    "</d:getcontentlength></d:prop><d:status>HTTP/1.1 404 Not Found</d:status></d:propstat></d:response>\n"
    "<response xmlns=\"DAV:\"><href>/sub/</href><propstat><prop><resourcetype><collection/></resourcetype>"
    "<getlastmodified>Wed, 01 Jan 2025 00:00:00 GMT</getlastmodified></prop></propstat></response>\n"
    "<d:response><d:href>/../etc/passwd</d:href></d:response>\n</d:multistatus>\n";
static const char canned_sub[] =
    "<D:multistatus xmlns:D='DAV:'><D:response><D:href>/sub/</D:href><D:propstat><D:prop><D:resourcetype>"
    "<D:collection/></D:resourcetype></D:prop></D:propstat></D:response><D:response><D:href>"
    "<![CDATA[/sub/x.txt]]></D:href><D:propstat><D:prop><D:getcontentlength>7</D:getcontentlength>"
    "<D:resourcetype></D:resourcetype></D:prop></D:propstat></D:response></D:multistatus>";

static void
canned_serve(int ls)
{
	for (;;) {
		int c = accept(ls, NULL, NULL);
		if (c < 0)
			continue;
		char req[8192];
		size_t len = 0;
		char *hend = NULL;
		while (len < sizeof req - 1 && !hend) {
			ssize_t k = read(c, req + len, sizeof req - 1 - len);
			if (k <= 0)
				break;
			len += (size_t)k;
			req[len] = '\0';
			hend = strstr(req, "\r\n\r\n");
		}
		if (hend) {
			const char *cl = strcasestr(req, "Content-Length:");
			size_t want = cl ? strtoul(cl + 15, NULL, 10) : 0;
			size_t have = len - (size_t)(hend + 4 - req);
			while (have < want) {
				ssize_t k = read(c, req, sizeof req);
				if (k <= 0)
					break;
				have += (size_t)k;
			}
			const char *body = strncmp(req, "PROPFIND / ", 11) == 0 ? canned_root
			    : strncmp(req, "PROPFIND /sub/ ", 15) == 0 ? canned_sub : NULL;
			char head[256];
			int hl = snprintf(head, sizeof head,
			    "HTTP/1.1 %s\r\nContent-Type: application/xml\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			    body ? "207 Multi-Status" : "404 Not Found", body ? strlen(body) : 0);
			ck_assert_int_eq(write(c, head, (size_t)hl), hl);
			if (body)
				ck_assert_int_eq(write(c, body, strlen(body)), (ssize_t)strlen(body));
		}
		close(c);
	}
}

START_TEST(webdav_tolerant_listing)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
	ck_assert_int_eq(listen(ls, 8), 0);
	socklen_t alen = sizeof a;
	getsockname(ls, (struct sockaddr *)&a, &alen);
	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == parent)
			canned_serve(ls);
		_exit(0);
	}
	close(ls);
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
	cloud_driver_t *d = NULL;
	ohb_error_t err;
	ck_assert_int_eq(cloud_driver_open(url, NULL, NULL, &d, &err), 0);
	cloud_entry_t *v = NULL;
	size_t n = 0;
	int rc = cloud_list(d, "", &v, &n, &err);
	cloud_driver_close(d);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ck_assert_msg(rc == 0, "%s", err.message);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(v[0].path, "caf\xc3\xa9 & bar.txt");
	ck_assert(!v[0].is_dir);
	ck_assert_uint_eq(v[0].size, 42);
	ck_assert_int_eq(v[0].mtime_ms, 1735689610000LL);
	ck_assert_str_eq(v[0].etag, "abc");
	ck_assert_str_eq(v[1].path, "sub");
	ck_assert(v[1].is_dir);
	ck_assert_int_eq(v[1].mtime_ms, 1735689600000LL);
	ck_assert_str_eq(v[2].path, "sub/x.txt");
	ck_assert_uint_eq(v[2].size, 7);
	cloud_entries_free(v, n);
}
END_TEST

Suite *cloud_driver_suite(void)
{
	Suite *s = suite_create("cloud_driver");
	TCase *tc = tcase_create("config");
	tcase_add_test(tc, not_configured_and_unreachable);
	tcase_add_test(tc, path_rule);
	tcase_add_test(tc, webdav_tolerant_listing);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);

	tc = tcase_create("dir");
	tcase_add_checked_fixture(tc, setup_dir, teardown);
	tcase_add_loop_test(tc, behaviour, 0, N_COMMON);
	tcase_add_test(tc, dir_never_follows_symlinks);
	tcase_add_test(tc, dir_full_is_limit);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	if (webdav_have_rclone()) {
		tc = tcase_create("webdav");
		tcase_add_checked_fixture(tc, setup_webdav, teardown);
		tcase_add_loop_test(tc, behaviour, 0, N_ALL);
		tcase_add_test(tc, webdav_credentials);
		tcase_add_test(tc, webdav_base_path);
		tcase_set_timeout(tc, 60);
		suite_add_tcase(s, tc);
	} else {
		test_skip("need rclone", "cloud_driver: the WebDAV half of the tests (apt-get install rclone)");
	}
	return s;
}
