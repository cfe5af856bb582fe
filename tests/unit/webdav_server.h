/* A real WebDAV server for the cloud tests: `rclone serve webdav <folder>` on
 * a random 127.0.0.1 port, started by the test and killed by it (also when the
 * test process dies: PR_SET_PDEATHSIG). Shared by test_cloud_driver.c,
 * test_cloud_sync.c and test_cloud_space.c (compiled in through
 * test_webdav_server.c, which has no suite of its own). */
#ifndef OHB_TEST_WEBDAV_SERVER_H
#define OHB_TEST_WEBDAV_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* True when rclone is on PATH (else the WebDAV half of a suite is skipped). */
bool webdav_have_rclone(void);

/* Serves folder (extra: NULL or more rclone arguments, NULL-terminated, at
 * most 5) and waits until it answers; fills url ("http://127.0.0.1:N/") and
 * returns the server's pid. Fails the test when it cannot start. */
pid_t webdav_start(const char *folder, const char *const *extra, char *url, size_t url_size);

/* Kills and reaps the server (pid <= 0: nothing). */
void webdav_stop(pid_t pid);

#endif
