/*
 * extension — running a bundle's BackupExtensionAbility, which here is an
 * executable named in the bundle's descriptor ("extension"). The contract
 * the executable follows is documented for application authors in
 * docs/EXTENSIONS.md:
 *
 *   <exe> backup            before the service packs the bundle's files
 *   <exe> restore           after the service applied the restored files
 *   <exe> info              for getBackupInfo: prints a JSON value
 *   <exe> compat EXTINFO    for getCompatibilityInfo: prints a string
 *
 * It runs with its working directory at the bundle's sandbox (the real dir of
 * the mount holding "/data/storage/el2/base/files", else of the first mount),
 * stdin from /dev/null, and the environment OHB_BUNDLE (name), OHB_SANDBOX
 * (that directory), OHB_ACTION. Each stdout line that is a JSON object with
 * "progressInfo" (or "processResult") becomes an onProcess; the last stdout
 * line that is other JSON is the result passed to onResultReport. stderr is
 * kept (the last 1 KiB) for error messages.
 *
 * Failures: cannot exec -> 13500009; no output line and no exit within the
 * start limit (default 25 s) -> 13500002; non-zero exit -> 13500007; death by
 * a signal -> 13500004; running past the deadline -> killed (SIGTERM, then
 * SIGKILL after 2 s) and 13500003. A cancelled run is killed the same way and
 * returns 0 with *cancelled_out true.
 *
 * Thread-safe; each call forks its own child (posix_spawn) and reaps it.
 */
#ifndef OHB_EXTENSION_H
#define OHB_EXTENSION_H

#include <stdbool.h>
#include <stdint.h>

#include "ohbackup.h"
#include "registry.h"

typedef struct ext_hooks {
	void *ctx;
	/* one progress JSON object (a complete line) -> onProcess; may be NULL */
	void (*progress)(void *ctx, const char *json);
	/* polled at least every 100 ms; may be NULL */
	bool (*cancelled)(void *ctx);
	/* the run's deadline on the monotonic clock (fsu_mono_ms), re-read at each
	 * poll so updateTimer can move it; may be NULL (no deadline) */
	int64_t (*deadline_ms)(void *ctx);
	int start_limit_ms;   /* <= 0: 25 000 */
} ext_hooks_t;

/* Runs `<exe> backup|restore`. *result_out: the result JSON text (malloc'd) or
 * NULL when the extension printed none. Returns 0 when b has no extension. */
int ext_run(const reg_bundle_t *b, const char *action, const ext_hooks_t *hooks, char **result_out,
    bool *cancelled_out, ohb_error_t *err);

/* Runs `<exe> info` or `<exe> compat ARG` with a hard timeout; *out is its
 * trimmed stdout (malloc'd), "" when b has no extension or it timed out. */
int ext_query(const reg_bundle_t *b, const char *action, const char *arg, int timeout_ms, char **out,
    ohb_error_t *err);

#endif
