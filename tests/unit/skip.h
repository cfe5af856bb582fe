/* Parts of tests that did not run, made visible: a test that cannot do a part
 * (no root to mount, no rclone) calls test_skip instead of returning quietly.
 * It says so on stderr at once, and the unit runner (runner.c.in, which
 * defines it) ends with a count per reason, e.g.
 *     2 test parts skipped: need root
 * The record lives in memory shared with the forked test processes, so a skip
 * inside a test (fork mode) and one at suite creation both count. */
#ifndef OHB_TEST_SKIP_H
#define OHB_TEST_SKIP_H

/* why: the reason, in the same words for the same reason ("need root",
 * "need rclone"): the summary groups by it. what: printf-style, the part
 * that did not run ("cloud_space: the full-device test (mount: %s)"). */
void test_skip(const char *why, const char *what, ...) __attribute__((format(printf, 2, 3)));

#endif
