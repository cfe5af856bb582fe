/*
 * ohbackup.h — the public C API of the ohbackup service: OpenHarmony's
 * @ohos.file.backup (spec: file.backup.md) mirrored one to one in C.
 *
 *   spec                               here
 *   ---------------------------------  -----------------------------------------
 *   GeneralCallbacks                   ohb_callbacks_t (all eight, one user ptr)
 *   backup.getLocalCapabilities x3     ohb_get_local_capabilities[_incremental]
 *   backup.getBackupVersion            ohb_get_backup_version
 *   backup.getBackupInfo               ohb_get_backup_info
 *   new SessionBackup(cb)              ohb_session_backup_create
 *   new SessionRestore(cb)             ohb_session_restore_create
 *   SessionBackup.appendBundles        ohb_session_append_backup
 *   SessionRestore.appendBundles       ohb_session_append_restore
 *   SessionRestore.getFileHandle       ohb_session_get_file_handle
 *   SessionRestore.publishFile         ohb_session_publish_file
 *   release()                          ohb_session_release (then ohb_session_free)
 *
 * Errors are the spec's numeric codes (OHB_E_*). Every fallible call returns 0
 * or a code and, when given an ohb_error_t, fills it with a sentence a person
 * understands.
 *
 * Threads: every function here may be called from any thread, including from
 * inside a callback. Callbacks of one session are delivered one at a time, in
 * order, from that session's dispatcher thread, never with an internal lock
 * held, so a client needs no locks of its own to follow a session.
 *
 * Files cross the API as open file descriptors, as in the spec: an fd handed
 * to a callback belongs to the client, which must close it.
 */
#ifndef OHBACKUP_H
#define OHBACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- error codes (spec: errorcode-filemanagement; REFERENCE.md) ---------- */
enum {
	OHB_OK = 0,
	OHB_E_PERMISSION = 201,
	OHB_E_NOT_SYSTEM_APP = 202,
	OHB_E_PARAM = 401,
	OHB_E_NOT_SUPPORTED = 13500001,     /* not added to backup or restore */
	OHB_E_EXT_START_TIMEOUT = 13500002,
	OHB_E_TIMEOUT = 13500003,
	OHB_E_EXT_DIED = 13500004,
	OHB_E_BUNDLE_EMPTY = 13500005,      /* bundle info for backup/restore is empty */
	OHB_E_TAR = 13500006,
	OHB_E_EXT_THROW = 13500007,
	OHB_E_UNTAR = 13500008,
	OHB_E_EXT_BOOT = 13500009,
	OHB_E_CANCEL_UNSTARTED = 13500011,
	OHB_E_CANCEL_UNKNOWN = 13500012,
	OHB_E_SESSION_CONFLICT = 13500013,
	OHB_E_NOT_COMPATIBLE = 13500014,
	OHB_E_IPC = 13600001,
	OHB_E_PERM = 13900001,              /* operation not permitted */
	OHB_E_NOENT = 13900002,
	OHB_E_IO = 13900005,
	OHB_E_NOMEM = 13900011,
	OHB_E_INVAL = 13900020,
	OHB_E_NOSPC = 13900025,
	OHB_E_UNKNOWN = 13900042,
};

typedef struct ohb_error {
	int code;           /* 0 or an OHB_E_* code */
	char message[512];  /* a sentence naming what failed and why */
} ohb_error_t;

/* The spec's short text for a code ("No space left on device."); never NULL. */
const char *ohb_code_text(int code);
/* The one errno -> code mapping of REFERENCE.md. */
int ohb_code_from_errno(int errnum);

/* ---- the service ---------------------------------------------------------- */
typedef struct ohb_service ohb_service_t;

typedef struct ohb_service_options {
	const char *device_root;   /* required: the device root directory */
	int max_parallel;          /* bundles run at once; <= 0 means 3 (the spec's limit) */
	int process_interval_ms;   /* onProcess cadence; <= 0 means 250 */
} ohb_service_options_t;

/* Opens the service over a device root. Also completes or rolls back any
 * restore that a crash interrupted (all-or-nothing, see applier.h).
 * The caller frees the service with ohb_service_close. A restore takes file
 * leases, whose break the kernel signals with SIGIO: unless the program has
 * its own SIGIO handler, this sets SIGIO to be ignored (its default action
 * would end the process). */
int ohb_service_open(const ohb_service_options_t *opts, ohb_service_t **out, ohb_error_t *err);
void ohb_service_close(ohb_service_t *svc);

/* Capability file (a JSON document, REFERENCE.md "Capability file") as a
 * readable fd positioned at 0; the caller closes it. */
int ohb_get_local_capabilities(ohb_service_t *svc, int *fd_out, ohb_error_t *err);

typedef struct ohb_incremental_time {
	const char *bundle_name;
	int64_t last_incremental_time;   /* ms since the epoch; 0 = never */
} ohb_incremental_time_t;

/* Incremental variant: entries also carry increSpaceOccupied. n == 0 -> 401. */
int ohb_get_local_capabilities_incremental(ohb_service_t *svc, const ohb_incremental_time_t *list,
    size_t n, int *fd_out, ohb_error_t *err);

/* {"backupVersion":"16.0"}; *out is malloc'd, the caller frees it. */
int ohb_get_backup_version(ohb_service_t *svc, char **out, ohb_error_t *err);

/* Information about one bundle as a JSON string (malloc'd); unknown or empty
 * bundle name -> 401. */
int ohb_get_backup_info(ohb_service_t *svc, const char *bundle, char **out, ohb_error_t *err);

/* ---- callbacks (GeneralCallbacks) ---------------------------------------- */
typedef struct ohb_file {
	const char *bundle_name;
	const char *uri;         /* file name, [0-9A-Za-z_.] only */
	int fd;                  /* backup: readable; restore: writable. Client closes. -1 on error */
	int manifest_fd;         /* incremental: all.rp with the last file, else -1. Client closes. */
} ohb_file_t;

typedef struct ohb_callbacks {
	void *user;
	/* err: 0 or a code; message: the sentence for err (never NULL, "" when 0). */
	void (*on_file_ready)(void *user, int err, const char *message, const ohb_file_t *file);
	void (*on_bundle_begin)(void *user, int err, const char *message, const char *bundle);
	void (*on_bundle_end)(void *user, int err, const char *message, const char *bundle);
	void (*on_all_bundles_end)(void *user, int err, const char *message);
	void (*on_backup_service_died)(void *user);
	void (*on_result_report)(void *user, const char *bundle, const char *result);
	void (*on_process)(void *user, const char *bundle, const char *process);
	void (*on_backup_size_report)(void *user, const char *report);
} ohb_callbacks_t;

/* ---- sessions ------------------------------------------------------------- */
typedef struct ohb_session ohb_session_t;

/* One active session per service: a second create fails with 13500013 and
 * err->message holding {"sessionInfo":{"error":"Session Conflict",...}}. */
int ohb_session_backup_create(ohb_service_t *svc, const ohb_callbacks_t *cb, ohb_session_t **out,
    ohb_error_t *err);
int ohb_session_restore_create(ohb_service_t *svc, const ohb_callbacks_t *cb, ohb_session_t **out,
    ohb_error_t *err);

/* SessionBackup.appendBundles(bundlesToBackup, infos?). infos may be NULL, or
 * hold n entries (each NULL or a JSON string). Bundles that cannot run are
 * reported through onBundleBegin with their code, not by this return value. */
int ohb_session_append_backup(ohb_session_t *s, const char *const *names, const char *const *infos,
    size_t n, ohb_error_t *err);

/* SessionRestore.appendBundles(capabilityFd, bundles, infos?). The capability
 * fd is read before this returns; the caller still owns and closes it. */
int ohb_session_append_restore(ohb_session_t *s, int capability_fd, const char *const *names,
    const char *const *infos, size_t n, ohb_error_t *err);

/* SessionRestore.getFileHandle({bundleName, uri}): answered through
 * on_file_ready with a writable fd; write the whole file, then close every fd
 * of it. Bad uri -> 13900020. The service unpacks a file as soon as it has its
 * recorded size (manage.json, best sent first) and no fd can write to it any
 * more; asking for that uri again then -> 13900001. While it is unpacking, an
 * answer may wait until that file is done (the client never has to act for
 * it to come). Nothing is applied to the bundle before publishFile. */
int ohb_session_get_file_handle(ohb_session_t *s, const char *bundle, const char *uri, ohb_error_t *err);

/* SessionRestore.publishFile({bundleName, uri:""}): all files of the bundle are
 * written; the service verifies and applies them (all or nothing). A
 * non-empty uri -> 13900001. */
int ohb_session_publish_file(ohb_session_t *s, const char *bundle, const char *uri, ohb_error_t *err);

/* release(): stops accepting work, cancels what runs, removes temp files and
 * waits until every callback has been delivered (on_all_bundles_end is
 * delivered if it had not been). Safe to call more than once; must not be
 * called from inside a callback of the same session. */
int ohb_session_release(ohb_session_t *s, ohb_error_t *err);

/* cancel(bundle) (spec API 18): 0 when the bundle is running (it then ends
 * with onBundleEnd err 0 and leaves no temp files), 13500011 when it has not
 * started yet, 13500012 when it is unknown or already finishing. */
int ohb_session_cancel(ohb_session_t *s, const char *bundle);

/* updateSendRate(bundle, fdsPerSecond): fds handed over per 1000 ms window
 * (default 60; 0 pauses; above 800 is clamped to 800). Returns false when the
 * bundle is not in the service's active session or rate < 0. */
bool ohb_update_send_rate(ohb_service_t *svc, const char *bundle, int fds_per_second);

/* Ours: the send rate bundles appended to s from now on start with (instead
 * of 60), clamped like updateSendRate; 0 starts them paused. Front ends call
 * it before appending, so no file goes out at another rate first (an update
 * after the append races with a bundle that starts at once). False when s is
 * NULL or the rate < 0. */
bool ohb_session_set_default_send_rate(ohb_session_t *s, int fds_per_second);

/* Frees a released session (releases it first if needed). */
void ohb_session_free(ohb_session_t *s);

/* ---- incremental backup (IncrementalBackupSession, spec API 12) ----------- */

typedef struct ohb_incremental_data {
	const char *bundle_name;
	int64_t last_incremental_time;   /* ms since the epoch of the base backup; 0 = none */
	int manifest_fd;                 /* the base backup's all.rp, or -1 for none (everything is new);
	                                  * read before append returns; the caller still closes it */
	const char *parameters;          /* BackupParams JSON or NULL */
	int priority;                    /* BackupPriority: larger first */
} ohb_incremental_data_t;

/* new IncrementalBackupSession(callbacks). Files come through on_file_ready
 * as in a full backup: <epoch_ms>_part.N.tar each with <epoch_ms>_part.N.rp,
 * changed big files raw each with <name>.rp, manage.json last with all.rp
 * (every current file and directory) as its manifest_fd. */
int ohb_session_incremental_create(ohb_service_t *svc, const ohb_callbacks_t *cb, ohb_session_t **out,
    ohb_error_t *err);

/* appendBundles(IncrementalBackupData[], infos?). */
int ohb_session_append_incremental(ohb_session_t *s, const ohb_incremental_data_t *list, size_t n,
    const char *const *infos, ohb_error_t *err);

/* ---- size scan (getBackupDataSize, spec API 18) ---------------------------- */

/* getBackupDataSize(isPreciseScan, dataList): reports through
 * on_backup_size_report, REFERENCE.md's format, every report_interval_ms
 * (<= 0: 5000) plus a last report with "scanning":"". Runs beside whatever
 * else the session does. Empty list -> 401; a scan already running -> 13900020. */
int ohb_session_get_backup_data_size(ohb_session_t *s, bool precise, const ohb_incremental_time_t *list,
    size_t n, int report_interval_ms, ohb_error_t *err);

/* ---- timers, temp files, compatibility -------------------------------------- */

/* updateTimer(bundle, ms): 0..14 400 000 (else *code = 401 and false); false
 * when the bundle is not running in the service's active session. */
bool ohb_update_timer(ohb_service_t *svc, const char *bundle, int64_t timeout_ms, int *code);

/* cleanBundleTempDir(bundle): removes the bundle's temp files when no session
 * is using the bundle; true on success. */
bool ohb_clean_bundle_temp_dir(ohb_service_t *svc, const char *bundle);

/* getCompatibilityInfo(bundle, extInfo): asks the bundle's extension (1000 ms
 * at most); "" when it has none or does not answer. *out malloc'd. */
int ohb_get_compatibility_info(ohb_service_t *svc, const char *bundle, const char *ext_info, char **out,
    ohb_error_t *err);

/* Blocks until on_all_bundles_end has been delivered or timeout_ms passes
 * (< 0: forever). Returns true when the session has ended. A convenience for
 * scripts and tests; the console never calls it. */
bool ohb_session_wait(ohb_session_t *s, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
