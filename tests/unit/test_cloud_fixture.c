/* The cloud suites' shared fixture (cloud_fixture.h). Named test_*.c so the
 * Makefile links it into the unit runner; it has no suite. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloud_driver.h"
#include "fsutil.h"
#include "cloud_fixture.h"
#include "skip.h"

bool
webdav_have_rclone(void)
{
	const char *path = getenv("PATH");
	if (!path)
		return false;
	char *copy = strdup(path);
	bool found = false;
	for (char *p = copy, *colon; p && !found; p = colon ? colon + 1 : NULL) {
		colon = strchr(p, ':');
		if (colon)
			*colon = '\0';
		char *f = fsu_join(*p ? p : ".", "rclone");
		found = f && access(f, X_OK) == 0;
		free(f);
	}
	free(copy);
	return found;
}

void
webdav_stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

pid_t
webdav_start(const char *folder, const char *const *extra, char *url, size_t url_size)
{
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	for (int attempt = 0; attempt < 8; attempt++) {
		int port = 20000 + (int)(rand_r(&seed) % 40000);
		char addr[32];
		snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
		pid_t parent = getpid();
		pid_t pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(127);
			int devnull = open("/dev/null", O_RDWR);
			dup2(devnull, 0);
			dup2(devnull, 1);
			dup2(devnull, 2);
			const char *argv[16] = {"rclone", "serve", "webdav", folder, "--addr", addr, "--dir-cache-time", "0s",
			    "--config", "/dev/null"};
			int n = 10;
			for (int i = 0; extra && extra[i] && n < 15; i++)
				argv[n++] = extra[i];
			argv[n] = NULL;
			execvp("rclone", (char *const *)argv);
			_exit(127);
		}
		snprintf(url, url_size, "http://127.0.0.1:%d/", port);
		int64_t deadline = fsu_mono_ms() + 8000;
		bool exited = false;
		while (fsu_mono_ms() < deadline) {
			if (waitpid(pid, NULL, WNOHANG) == pid) {
				exited = true;   /* the port was taken: try another */
				break;
			}
			cloud_driver_t *probe = NULL;
			ck_assert_int_eq(cloud_driver_open(url, NULL, NULL, &probe, NULL), 0);
			cloud_entry_t *v = NULL;
			size_t n = 0;
			int rc = cloud_list(probe, "", &v, &n, NULL);
			cloud_entries_free(v, n);
			cloud_driver_close(probe);
			if (rc != CLOUD_E_NETWORK)
				return pid;   /* it answers (even a 401 is an answer) */
			usleep(50 * 1000);
		}
		if (!exited)
			webdav_stop(pid);
	}
	ck_abort_msg("rclone serve webdav did not start");
	return -1;
}

char *
fixture_tmpdir(const char *tag)
{
	char tmpl[64];
	snprintf(tmpl, sizeof tmpl, "/tmp/ohb-%s-XXXXXX", tag);
	char *d = mkdtemp(tmpl);
	ck_assert_ptr_nonnull(d);
	return strdup(d);
}

void
fixture_write(const char *base, const char *rel, const void *data, size_t len)
{
	char *p = fsu_join(base, rel);
	char *slash = strrchr(p, '/');
	*slash = '\0';
	ck_assert_int_eq(fsu_mkdir_p(p, 0755, NULL), 0);
	*slash = '/';
	FILE *f = fopen(p, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	free(p);
}

char *
fixture_slurp(const char *base, const char *rel, size_t *len)
{
	char *p = fsu_join(base, rel);
	char *data = NULL;
	size_t n = 0;
	int rc = fsu_read_file(p, 64u * 1024u * 1024u, &data, &n, NULL);
	free(p);
	if (len)
		*len = n;
	return rc == 0 ? data : NULL;
}

void
fixture_pattern(const char *base, const char *rel, size_t len, unsigned seed)
{
	unsigned char *buf = malloc(len ? len : 1);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)((i * 131 + seed * 7 + (i >> 12)) & 0xff);
	fixture_write(base, rel, buf, len);
	free(buf);
}

void
fixture_same(const char *a, const char *b, const char *rel)
{
	size_t la, lb;
	char *x = fixture_slurp(a, rel, &la), *y = fixture_slurp(b, rel, &lb);
	ck_assert_msg(x && y, "%s is missing in %s", rel, x ? b : a);
	ck_assert_msg(la == lb && memcmp(x, y, la) == 0, "%s differs between %s and %s", rel, a, b);
	free(x);
	free(y);
}

bool
fixture_exists(const char *base, const char *rel)
{
	return fixture_size(base, rel) >= 0;
}

off_t
fixture_size(const char *base, const char *rel)
{
	char *p = fsu_join(base, rel);
	struct stat st;
	off_t s = lstat(p, &st) == 0 ? st.st_size : -1;
	free(p);
	return s;
}

int
fixture_file_state(ohb_cloud_t *c, const char *uri)
{
	ohb_cloud_file_sync_state_t s;
	ohb_error_t err;
	int rc = ohb_cloud_get_file_sync_state(c, uri, &s, &err);
	return rc == 0 ? (int)s : -rc;
}

bool
fixture_mount_tmpfs(const char *dir, const char *opts, const char *what)
{
	/* A private namespace: the mount goes with the test's process (fork mode;
	 * a failed assertion skips the teardown). unshare refuses a process with
	 * threads: then a plain mount, which the teardowns undo. */
	if (unshare(CLONE_NEWNS) == 0)
		(void)mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
	if (mount("tmpfs", dir, "tmpfs", 0, opts) == 0)
		return true;
	test_skip("need root", "%s (cannot mount a tmpfs: %s)", what, strerror(errno));
	return false;
}
