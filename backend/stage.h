/*
 * stage — restoring a bundle all or nothing.
 *
 * A restore first fills a staging directory (<bundle temp_dir>/restore/stage,
 * on the service's side, never inside the bundle's data) with everything it
 * will write: the tars are unpacked there (unpacker.c) and the big files moved
 * there. Nothing of the bundle's data is touched until stage_commit:
 *
 *   1. validate: every target maps to a mount of the bundle; no component of a
 *      target's parent path inside the mount is a symlink or a non-directory;
 *      no target that exists is a directory where a file goes or vice versa.
 *      Any failure -> 13500008 naming the path, and the data is unchanged.
 *   2. write the journal (<stage_dir>/../stage.commit, durable) that says the
 *      stage is complete;
 *   3. move each staged file into place (renameat; across file systems a copy
 *      to a temp name in the target dir, fsync, rename), create missing
 *      directories, then set directories' modes and mtimes;
 *   4. remove the journal and the stage.
 *
 * A crash before 2 leaves the old data (the stage is discarded by
 * stage_recover at the next start); a crash after 2 is rolled forward by
 * stage_recover (step 3 is idempotent). So the bundle is wholly old or wholly
 * new once the next command has run.
 *
 * Entry rules for tars (REFERENCE.md "Restore"): a name is refused when it has
 * "../" at its start or after a '/', ends in "/..", is "..", or is longer than
 * 4096; names may be absolute sandbox paths ("/data/...") or relative (taken
 * as relative to "/"); they must map to a mount of the bundle. Symlink,
 * hardlink, device, fifo and socket entries are ignored (counted in
 * `skipped`). GNU long names and pax path= are read. A truncated or corrupt
 * tar -> 13500008, as is one with data after its end-of-archive marker, more
 * than 1 MiB of zeros there, or no entry in more than 10 KiB (a zeroed block
 * would otherwise end it early, quietly: unpacker.c check_tar_end), and one
 * holding another number of entries than manage.json records (tarEntries,
 * when the set has it: stage_add_tar). Files are created with
 * openat(O_NOFOLLOW|O_EXCL) below the stage dir's fd; the process umask is
 * never touched.
 *
 * Directory entries: their mode and mtime are applied at commit, after the
 * files (moving files into a directory changes its mtime). Directories that
 * only exist as parents of other entries are created 0700 (private by
 * default). A directory entry above every mount (a tar made from "/" holding
 * "data/", "data/storage/" for a bundle that mounts only
 * /data/storage/el2/base/files) is skipped quietly; a file outside every
 * mount -> 13500008. Setuid/setgid bits are never restored. When a tar holds
 * one path twice (or tars overlap), the later entry wins.
 *
 * Deletions run before the files are moved. A deletion that names a staged
 * path or one of its parents is dropped (the new content wins); a deletion
 * whose parent path is missing, a symlink or not a directory has nothing to
 * delete and is skipped (nothing is ever followed).
 *
 * The journal (<temp_dir>/restore/stage.commit) is JSON: {"format":1,
 * "files":[sandbox paths], "dirs":[{"path","mode","mtimeSec","mtimeNsec"}],
 * "deletions":[sandbox paths]}. Staged files already carry their final mode
 * and mtime and are flushed (syncfs) before it is written, so replaying it
 * only needs what is still in the stage: a file already moved is absent.
 *
 * Progress: progress->bytes gets the bytes of input consumed so far (tar
 * bytes read plus big files copied, summed over the stage's inputs, at least
 * every 256 KiB) and the files staged; cancellation is polled between tar
 * entries and before each big file.
 *
 * Test hook: when the environment variable OHBACKUP_TEST_CRASH_AFTER_MOVES=N
 * (N > 0) is set, stage_commit calls _exit(99) right after moving its N-th
 * file into place, so end-to-end tests can kill a restore mid-apply and check
 * that the next command (stage_recover) leaves the bundle wholly new.
 * stage_recover ignores the variable.
 *
 * One stage per thread; different bundles' stages are independent.
 */
#ifndef OHB_STAGE_H
#define OHB_STAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "ohbackup.h"
#include "registry.h"

typedef struct stage stage_t;

typedef struct stage_progress {
	void *ctx;
	void (*bytes)(void *ctx, uint64_t bytes_done, uint64_t files_done);  /* may be NULL */
	/* may be NULL; when it returns true the current call stops early and returns OHB_OK with
	 * stage_cancelled() true; the caller then frees the stage (nothing is applied). */
	bool (*cancelled)(void *ctx);
} stage_progress_t;

/* Creates an empty stage for b under b->temp_dir (an old one is removed). */
int stage_open(const reg_bundle_t *b, const stage_progress_t *progress, stage_t **out, ohb_error_t *err);

/* Unpacks one tar (read from tar_fd's current offset) into the stage.
 * expect_entries >= 0 (manage.json's tarEntries): the tar must hold exactly
 * that many entries, else 13500008 — libarchive takes a zeroed header for the
 * end of the archive, and this is what tells such a tar from a whole one
 * whatever its size; -1: not recorded (older sets), only the end checks. */
int stage_add_tar(stage_t *st, int tar_fd, const char *tar_name, int64_t expect_entries, ohb_error_t *err);

/* Adds one raw (big) file: copies from fd into the stage at sandbox_path with
 * mode and mtime; expected_size must match what is read, else 13500008. */
int stage_add_file(stage_t *st, int fd, const char *sandbox_path, uint32_t mode, int64_t mtime_sec,
    int64_t mtime_nsec, uint64_t expected_size, ohb_error_t *err);

/* Like stage_add_file for a file received into the service's own folder
 * (restore/incoming, same file system as the stage): instead of copying it,
 * moves it there (rename) with its mode and mtime, when fd (read-only, at
 * from_path) is a regular file of ours with one link and expected_size
 * bytes that nothing else holds open (a write lease says so: the client
 * has closed the fd getFileHandle gave it, so it cannot write into the
 * bundle's data later). Otherwise, or across file systems, it copies. The
 * moved file's data reach the disk with the stage's syncfs, before the
 * journal, like every staged file. fd stays the caller's. */
int stage_take_file(stage_t *st, int fd, const char *from_path, const char *sandbox_path, uint32_t mode,
    int64_t mtime_sec, int64_t mtime_nsec, uint64_t expected_size, ohb_error_t *err);

/* Marks a sandbox path to be deleted at commit (incremental chains: files
 * absent from the newest all.rp). A missing target is fine. */
int stage_add_deletion(stage_t *st, const char *sandbox_path, ohb_error_t *err);

/* Marks the restore exact: the stage (with its deletions) is what the
 * bundle's included data must become, as an incremental chain's step says
 * through its all.rp. A target of the wrong kind (a directory where the
 * backup has a file, a file or symlink where it has a directory) is then
 * replaced at commit instead of refused — removed, never followed, and only
 * while it still has that kind (see applier.c) — unless it holds another
 * mount. Without it (an overlay restore) such a target fails the commit
 * with 13500008 and nothing is written. */
void stage_set_exact(stage_t *st);

/* Totals so far. */
uint64_t stage_bytes(const stage_t *st);
uint64_t stage_files(const stage_t *st);
uint64_t stage_skipped(const stage_t *st);
bool stage_cancelled(const stage_t *st);

/* Validates, journals, applies, cleans up (steps 1-4 above). */
int stage_commit(stage_t *st, ohb_error_t *err);

/* Frees st; removes the stage directory unless a commit is journaled and
 * unfinished (then stage_recover finishes it). */
void stage_free(stage_t *st);

/* At service start (no session alive), for each bundle: finish a journaled
 * commit, or remove an uncommitted stage; also removes the files a dead
 * session received (<temp_dir>/restore/incoming). */
int stage_recover(const reg_bundle_t *b, ohb_error_t *err);

/* The commit part of stage_recover only, safe while a session runs:
 * stage_open uses it when an earlier commit failed midway. */
int stage_recover_commit(const reg_bundle_t *b, ohb_error_t *err);

/* The path rule above, for tests and for other modules that take paths.
 * NULL and "" are not safe. */
bool stage_path_is_safe(const char *name);

/* ---- internals shared by unpacker.c (fills a stage) and applier.c (commits
 * it); other modules use only the functions above. ---------------------- */

#define STAGE_PATH_MAX 4096      /* REFERENCE.md "Restore": length <= 4096 */

enum { STAGE_FILE = 0, STAGE_DIR = 1 };

/* One staged path. path is canonical and absolute in the sandbox ("/", or
 * "/a/b" with no "." / empty components); the staged copy lives at
 * <stage_dir>/<path + 1>. */
typedef struct stage_entry {
	char *path;
	int kind;                    /* STAGE_FILE or STAGE_DIR */
	bool has_meta;               /* directories from a tar entry: mode and mtime below */
	uint32_t mode;               /* permission bits, setuid/setgid stripped */
	int64_t mtime_sec;
	int64_t mtime_nsec;          /* UTIME_OMIT when the tar gave no mtime */
	size_t seq;                  /* order of arrival: the later entry for a path wins */
} stage_entry_t;

struct stage {
	const reg_bundle_t *b;
	stage_progress_t progress;   /* copied; callbacks may be NULL */
	char *restore_dir;           /* <temp_dir>/restore */
	char *stage_dir;             /* <restore_dir>/stage */
	char *journal_path;          /* <restore_dir>/stage.commit */
	int root_fd;                 /* stage_dir, O_DIRECTORY */
	int umask;                   /* the process umask at stage_open (-1: unknown) */
	struct stage_dir_cache {     /* unpacker: last stage parent opened */
		char *path;          /* relative */
		int fd;              /* its fd, or -1 */
	} cache;
	struct stage_paths *paths;   /* unpacker: what the stage holds (the reader's view) */
	unsigned long removed;       /* unpacker: times a later entry replaced something staged */
	stage_entry_t *entries;
	size_t n_entries, cap_entries;
	char **deletions;            /* canonical sandbox paths */
	size_t n_deletions, cap_deletions;
	uint64_t bytes;              /* file content staged */
	uint64_t files;
	uint64_t skipped;
	uint64_t input_done;         /* input bytes of finished tars and big files */
	uint64_t last_report;
	struct stage_writers *writers;  /* unpacker's writer threads (started on first use) */
	bool no_writers;             /* one core, or they could not start */
	bool cancelled;
	bool journaled;              /* the commit journal is written */
	bool exact;                  /* stage_set_exact: wrong-kind targets are replaced, not refused */
	bool finished;               /* the commit completed; the stage is gone */
};

/* Stops the unpacker's writer and flusher threads (each queued file is
 * written or, after a failure, closed) and frees them; stage_commit calls it
 * before its syncfs, stage_free in any case. */
void stage_writers_free(stage_t *st);

#endif
