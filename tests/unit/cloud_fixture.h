/* What the cloud suites (test_cloud_driver.c, test_cloud_sync.c,
 * test_cloud_space.c) share, compiled in through test_cloud_fixture.c (which
 * has no suite of its own): a real WebDAV server — `rclone serve webdav
 * <folder>` on a random 127.0.0.1 port, started by the test and killed by it
 * (also when the test process dies: PR_SET_PDEATHSIG) — and file helpers. */
#ifndef OHB_TEST_CLOUD_FIXTURE_H
#define OHB_TEST_CLOUD_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ohbackup_cloud.h"

/* True when rclone is on PATH (else the WebDAV half of a suite is skipped). */
bool webdav_have_rclone(void);

/* Serves folder (extra: NULL or more rclone arguments, NULL-terminated, at
 * most 5) and waits until it answers; fills url ("http://127.0.0.1:N/") and
 * returns the server's pid. Fails the test when it cannot start. */
pid_t webdav_start(const char *folder, const char *const *extra, char *url, size_t url_size);

/* Kills and reaps the server (pid <= 0: nothing). */
void webdav_stop(pid_t pid);

/* A new folder /tmp/ohb-<tag>-XXXXXX (malloc'd path). */
char *fixture_tmpdir(const char *tag);

/* Writes base/rel (making its folders), failing the test on any error. */
void fixture_write(const char *base, const char *rel, const void *data, size_t len);

/* base/rel's bytes (malloc'd, NUL-terminated) and length, or NULL. */
char *fixture_slurp(const char *base, const char *rel, size_t *len);

/* Writes base/rel with len bytes of a pattern of seed (another seed, other
 * bytes; no test depends on the exact bytes). */
void fixture_pattern(const char *base, const char *rel, size_t len, unsigned seed);

/* Fails the test unless a/rel and b/rel both exist with the same bytes. */
void fixture_same(const char *a, const char *b, const char *rel);

/* Whether base/rel exists (lstat), and its size (-1: none). */
bool fixture_exists(const char *base, const char *rel);
off_t fixture_size(const char *base, const char *rel);

/* Mounts a tmpfs (mount options opts) on dir, in a mount namespace of the
 * test's own process when it can (unshare), so a test that fails before its
 * umount leaves no mount behind once its process ends. Needs root: false
 * after test_skip("need root", what) (skip.h) when the mount fails. */
bool fixture_mount_tmpfs(const char *dir, const char *opts, const char *what);

/* The engine's getFileSyncState of uri: the state, or minus the error code. */
int fixture_file_state(ohb_cloud_t *c, const char *uri);

#endif
