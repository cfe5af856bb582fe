/*
 * extension — running a bundle's BackupExtensionAbility: one child process per
 * call, watched by one poll() loop until it is reaped.
 *
 * The shape of a run (docs/EXTENSIONS.md is the contract for authors):
 *
 *   spawn   posix_spawn of `<exe> ACTION [ARG]` with stdin /dev/null, stdout
 *           and stderr on close-on-exec pipes, the working directory set in
 *           the child (addchdir_np: the parent never chdirs), every fd above 2
 *           closed (addclosefrom_np, so fds that other code of the process
 *           forgot to mark close-on-exec do not leak either), signal mask and
 *           dispositions reset (service workers block every signal and a child
 *           would inherit that), and its own process group, so a kill reaches
 *           whatever the script started (`sleep` of a shell script would keep
 *           our pipe open otherwise).
 *   watch   poll() on both pipes, at most EXT_POLL_MS at a time, so the cancel
 *           hook is polled at least every 100 ms and the deadline hook is
 *           re-read (updateTimer moves it). Exit is noticed with
 *           waitid(WNOWAIT): the child stays a zombie until its process group
 *           has been killed, so the group id can never belong to someone else
 *           when we signal it. No signal handler is ever installed.
 *   stop    cancel, the start limit, the deadline or a query's timeout:
 *           SIGTERM to the group, SIGKILL 2 s later if still there
 *           (REFERENCE.md "Timers, rates, cancel").
 *   reap    waitpid, after SIGKILL of any process the extension left behind in
 *           its group; then the pipes are drained (at most EXT_DRAIN_MS more,
 *           in case something escaped the group and holds them). A host that
 *           sets SIGCHLD to SIG_IGN has the kernel reap for it; that run ends
 *           with 13500004 "exit status lost" instead of waiting forever.
 *
 * stdout of a backup/restore run is read as lines of at most 64 KiB (longer
 * ones are truncated and ignored). A JSON object with "progressInfo" or
 * "processResult" goes to the progress hook as it arrives; the last other JSON
 * object or array is the result (onResultReport). Anything else (text, bare
 * scalars, invalid JSON) only lands in a debug tail, used in error messages
 * when stderr said nothing. A query (info, compat) keeps stdout whole instead.
 *
 * No global state: everything lives in one ext_child_t on the caller's stack.
 */
#include "extension.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"

#define EXT_LINE_MAX (64 * 1024)          /* longer stdout lines are truncated */
#define EXT_TAIL_MAX 1024                 /* stderr (and debug) tail kept for messages */
#define EXT_QUERY_MAX (1024 * 1024)       /* a query's stdout is cut beyond this */
#define EXT_START_LIMIT_MS 25000          /* REFERENCE.md: extension start limit 25 s */
#define EXT_QUERY_DEFAULT_MS 5000         /* a query given timeout_ms <= 0 */
#define EXT_KILL_GRACE_MS 2000            /* SIGTERM, then SIGKILL after 2 s */
#define EXT_POLL_MS 100                   /* the cancel hook's cadence */
#define EXT_IDLE_POLL_MS 10               /* both pipes closed, waiting for the exit */
#define EXT_DRAIN_MS 1000                 /* reading pipes after the reap */
#define EXT_READS_PER_ROUND 16            /* a chatty child cannot starve the checks */

/* The sandbox path whose mount is the extension's working directory. */
#define EXT_FILES_DIR "/data/storage/el2/base/files"

/* The last bytes of a stream, for error messages. */
typedef struct ext_tail {
	char buf[EXT_TAIL_MAX];
	size_t len;
} ext_tail_t;

typedef enum {
	STOP_NONE,
	STOP_CANCEL,
	STOP_START_LIMIT,
	STOP_DEADLINE,
	STOP_QUERY_TIMEOUT,
} ext_stop_t;

typedef struct ext_child {
	/* what runs, and under which rules */
	const reg_bundle_t *b;
	const char *action;
	const ext_hooks_t *hooks;   /* NULL for a query */
	bool query;
	int64_t query_deadline;     /* monotonic ms, query only */
	int start_limit_ms;         /* run only */

	/* the process */
	pid_t pid;
	int fd[2];                  /* stdout, stderr read ends; -1 once at EOF */
	int64_t t_start, t_exit;
	bool exited;                /* reaped */
	int status;                 /* waitpid status, once reaped */
	bool status_lost;           /* someone else reaped it */
	ext_stop_t stop;
	int64_t t_stop;
	bool sigkilled;
	bool started;               /* a line came out: the extension is up */

	/* what it said */
	char *line;                 /* EXT_LINE_MAX + 1 (run) */
	size_t line_len;
	bool line_truncated;
	char *capture;              /* EXT_QUERY_MAX + 1 (query) */
	size_t capture_len;
	char *result;               /* the last result JSON line (run) */
	bool saw_err_line;          /* a '\n' on stderr: counts as a sign of life */
	ext_tail_t err_tail;
	ext_tail_t text_tail;       /* stdout lines that were not JSON */
	bool oom;
} ext_child_t;

/* ---- small helpers ------------------------------------------------------------- */

static void
tail_add(ext_tail_t *t, const char *p, size_t n)
{
	if (n >= EXT_TAIL_MAX) {
		memcpy(t->buf, p + (n - EXT_TAIL_MAX), EXT_TAIL_MAX);
		t->len = EXT_TAIL_MAX;
		return;
	}
	if (t->len + n > EXT_TAIL_MAX) {
		size_t drop = t->len + n - EXT_TAIL_MAX;
		memmove(t->buf, t->buf + drop, t->len - drop);
		t->len -= drop;
	}
	memcpy(t->buf + t->len, p, n);
	t->len += n;
}

static bool
is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Trims p[0..*len) in place of whitespace on both ends; returns the new start. */
static char *
trim(char *p, size_t *len)
{
	size_t n = *len;
	while (n > 0 && is_space(p[n - 1]))
		n--;
	while (n > 0 && is_space(*p)) {
		p++;
		n--;
	}
	*len = n;
	return p;
}

/* The end of a tail as one printable line of at most room bytes: control
 * characters become spaces, and a cut never starts inside a UTF-8 sequence. */
static void
tail_text(const ext_tail_t *t, size_t room, char *out, size_t out_size)
{
	char tmp[EXT_TAIL_MAX + 1];
	size_t n = 0;
	for (size_t i = 0; i < t->len; i++) {
		unsigned char ch = (unsigned char)t->buf[i];
		tmp[n++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	char *p = trim(tmp, &n);
	if (room >= out_size)
		room = out_size - 1;
	if (n > room) {
		p += n - room;
		n = room;
		while (n > 0 && ((unsigned char)*p & 0xC0) == 0x80) {
			p++;
			n--;
		}
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

/* The working directory: the real dir of the mount holding the el2 files
 * folder (where an application's data usually is), else of the first mount. */
static const char *
sandbox_dir(const reg_bundle_t *b)
{
	const reg_mount_t *m = NULL;
	const char *rel = NULL;
	if (reg_bundle_map(b, EXT_FILES_DIR, &m, &rel, NULL) == 0 && m)
		return m->dir;
	if (b->n_mounts > 0)
		return b->mounts[0].dir;
	return b->bundle_dir;
}

/* The inherited environment with OHB_BUNDLE, OHB_SANDBOX and OHB_ACTION set.
 * Built as a new array: setenv() in a threaded library is not an option. The
 * strings of environ are borrowed; own[] holds the three we made. */
typedef struct ext_env {
	char **envp;
	char *own[3];
} ext_env_t;

static bool
env_is_ours(const char *entry)
{
	return strncmp(entry, "OHB_BUNDLE=", 11) == 0 || strncmp(entry, "OHB_SANDBOX=", 12) == 0 ||
	       strncmp(entry, "OHB_ACTION=", 11) == 0;
}

static void
env_free(ext_env_t *e)
{
	free(e->envp);
	for (size_t i = 0; i < 3; i++)
		free(e->own[i]);
}

static bool
env_build(ext_env_t *e, const char *bundle, const char *sandbox, const char *action)
{
	memset(e, 0, sizeof *e);
	size_t n = 0;
	for (char **p = environ; p && *p; p++)
		n++;
	e->envp = calloc(n + 4, sizeof *e->envp);
	e->own[0] = fsu_printf("OHB_BUNDLE=%s", bundle);
	e->own[1] = fsu_printf("OHB_SANDBOX=%s", sandbox);
	e->own[2] = fsu_printf("OHB_ACTION=%s", action);
	if (!e->envp || !e->own[0] || !e->own[1] || !e->own[2]) {
		env_free(e);
		return false;
	}
	size_t k = 0;
	for (char **p = environ; p && *p; p++)
		if (!env_is_ours(*p))
			e->envp[k++] = *p;
	for (size_t i = 0; i < 3; i++)
		e->envp[k++] = e->own[i];
	e->envp[k] = NULL;
	return true;
}

/* ---- starting the child ------------------------------------------------------- */

static void
close_pair(int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
	p[0] = p[1] = -1;
}

/* A close-on-exec pipe whose fds are above 2. In a process whose stdio is
 * closed pipe2 hands out 0..2; lowest-first allocation makes the child's
 * /dev/null-and-dup2 actions come out right anyway, but only as long as no
 * other thread frees one of 0..2 between our two pipe2 calls. Above 2, the
 * order of those actions simply cannot matter. */
static int
pipe_above_stdio(int p[2])
{
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	for (int i = 0; i < 2; i++) {
		if (p[i] > 2)
			continue;
		int moved = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
		int saved = errno;
		close(p[i]);
		p[i] = moved;
		if (moved < 0) {
			close_pair(p);
			errno = saved;
			return -1;
		}
	}
	return 0;
}

static int
check_executable(const reg_bundle_t *b, ohb_error_t *err)
{
	struct stat st;
	if (stat(b->extension, &st) != 0)
		return ohb_fail(err, OHB_E_EXT_BOOT, "cannot start the extension %s of %s: %s", b->extension, b->name,
		    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return ohb_fail(err, OHB_E_EXT_BOOT, "cannot start the extension %s of %s: not a regular file",
		    b->extension, b->name);
	if (access(b->extension, X_OK) != 0)
		return ohb_fail(err, OHB_E_EXT_BOOT, "cannot start the extension %s of %s: not executable (%s)",
		    b->extension, b->name, strerror(errno));
	return 0;
}

static int
child_spawn(ext_child_t *c, const char *arg, ohb_error_t *err)
{
	int rc = check_executable(c->b, err);
	if (rc != 0)
		return rc;
	const char *cwd = sandbox_dir(c->b);
	ext_env_t env;
	if (!env_build(&env, c->b->name, cwd, c->action))
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	char *argv[] = { c->b->extension, (char *)c->action, (char *)arg, NULL };

	int out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	if (pipe_above_stdio(out) != 0 || pipe_above_stdio(errp) != 0) {
		rc = ohb_fail_errno(err, errno, "cannot make pipes for the extension of %s", c->b->name);
		close_pair(out);
		close_pair(errp);
		env_free(&env);
		return rc;
	}
	/* Only our ends are non-blocking: the child's stdout must block when full. */
	fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
	fcntl(errp[0], F_SETFL, fcntl(errp[0], F_GETFL) | O_NONBLOCK);

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	int fa_ok = posix_spawn_file_actions_init(&fa);
	int at_ok = posix_spawnattr_init(&attr);
	int e = fa_ok ? fa_ok : at_ok;
	if (!e)
		e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!e)
		e = posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	if (!e)
		e = posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
	if (!e)
		e = posix_spawn_file_actions_addchdir_np(&fa, cwd);
	if (!e)
		e = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (!e)
		e = posix_spawnattr_setflags(&attr,
		    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
	if (!e)
		e = posix_spawnattr_setsigmask(&attr, &none);
	if (!e)
		e = posix_spawnattr_setsigdefault(&attr, &all);
	if (!e)
		e = posix_spawnattr_setpgroup(&attr, 0);
	if (!e) {
		e = posix_spawn(&c->pid, c->b->extension, &fa, &attr, argv, env.envp);
		if (e)
			rc = ohb_fail(err, OHB_E_EXT_BOOT, "cannot start the extension %s of %s: %s", c->b->extension,
			    c->b->name, strerror(e));
	} else {
		rc = ohb_fail_errno(err, e, "cannot prepare the extension of %s", c->b->name);
	}
	if (!fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (!at_ok)
		posix_spawnattr_destroy(&attr);
	env_free(&env);
	close(out[1]);
	close(errp[1]);
	if (rc != 0) {
		close(out[0]);
		close(errp[0]);
		return rc;
	}
	c->fd[0] = out[0];
	c->fd[1] = errp[0];
	c->t_start = fsu_mono_ms();
	return 0;
}

/* ---- reading what it says ------------------------------------------------------- */

static bool
has_key(const cJSON *o, const char *key)
{
	return cJSON_IsObject(o) && cJSON_GetObjectItemCaseSensitive(o, key) != NULL;
}

/* One complete stdout line of a backup/restore run. */
static void
run_line(ext_child_t *c, char *line, size_t len, bool truncated)
{
	c->started = true;
	char *p = trim(line, &len);
	if (len == 0)
		return;
	if (truncated || c->stop != STOP_NONE) {
		tail_add(&c->text_tail, p, len);
		tail_add(&c->text_tail, "\n", 1);
		return;
	}
	p[len] = '\0';
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithOpts(p, &end, 1);
	if (!j || !(cJSON_IsObject(j) || cJSON_IsArray(j))) {
		tail_add(&c->text_tail, p, len);
		tail_add(&c->text_tail, "\n", 1);
	} else if (has_key(j, "progressInfo") || has_key(j, "processResult")) {
		if (c->hooks && c->hooks->progress)
			c->hooks->progress(c->hooks->ctx, p);
	} else {
		char *copy = strndup(p, len);
		if (copy) {
			free(c->result);
			c->result = copy;
		} else {
			c->oom = true;
		}
	}
	cJSON_Delete(j);
}

static void
feed_stdout(ext_child_t *c, const char *p, size_t n)
{
	if (c->query) {
		size_t room = EXT_QUERY_MAX - c->capture_len;
		size_t take = n < room ? n : room;
		memcpy(c->capture + c->capture_len, p, take);
		c->capture_len += take;
		if (memchr(p, '\n', n))
			c->started = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n') {
			run_line(c, c->line, c->line_len, c->line_truncated);
			c->line_len = 0;
			c->line_truncated = false;
		} else if (c->line_len < EXT_LINE_MAX) {
			c->line[c->line_len++] = p[i];
		} else {
			c->line_truncated = true;
		}
	}
}

static void
feed_stderr(ext_child_t *c, const char *p, size_t n)
{
	tail_add(&c->err_tail, p, n);
	if (memchr(p, '\n', n))
		c->saw_err_line = true;
}

/* Reads what is there on both pipes (bounded per round); closes a pipe at EOF. */
static void
child_read(ext_child_t *c)
{
	char buf[16384];
	for (int i = 0; i < 2; i++) {
		for (int round = 0; c->fd[i] >= 0 && round < EXT_READS_PER_ROUND; round++) {
			ssize_t r = read(c->fd[i], buf, sizeof buf);
			if (r > 0) {
				if (i == 0)
					feed_stdout(c, buf, (size_t)r);
				else
					feed_stderr(c, buf, (size_t)r);
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			/* EOF (or a read error, which we treat alike): a last line without '\n' still counts. */
			close(c->fd[i]);
			c->fd[i] = -1;
			if (i == 0 && !c->query && (c->line_len > 0 || c->line_truncated)) {
				run_line(c, c->line, c->line_len, c->line_truncated);
				c->line_len = 0;
				c->line_truncated = false;
			}
		}
	}
}

/* ---- the watch loop ---------------------------------------------------------------- */

static void
child_stop(ext_child_t *c, ext_stop_t why, int64_t now)
{
	c->stop = why;
	c->t_stop = now;
	kill(-c->pid, SIGTERM);
}

/* Notices the exit without reaping (WNOWAIT), kills what the extension left
 * in its group while the group id is still surely ours, then reaps. */
static void
child_check_exit(ext_child_t *c, int64_t now)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
		if (errno == ECHILD) {
			/* Reaped by someone else (SIGCHLD set to SIG_IGN in this process). */
			c->exited = c->status_lost = true;
			c->t_exit = now;
		}
		return;
	}
	if (si.si_pid == 0)
		return;
	kill(-c->pid, SIGKILL);
	while (waitpid(c->pid, &c->status, 0) < 0 && errno == EINTR)
		;
	c->exited = true;
	c->t_exit = now;
}

static void
child_check_limits(ext_child_t *c, int64_t now)
{
	const ext_hooks_t *h = c->hooks;
	if (h && h->cancelled && h->cancelled(h->ctx)) {
		child_stop(c, STOP_CANCEL, now);
		return;
	}
	if (c->query) {
		if (now >= c->query_deadline)
			child_stop(c, STOP_QUERY_TIMEOUT, now);
		return;
	}
	if (!c->started && !c->saw_err_line && now - c->t_start >= c->start_limit_ms) {
		child_stop(c, STOP_START_LIMIT, now);
		return;
	}
	if (h && h->deadline_ms) {
		int64_t d = h->deadline_ms(h->ctx);
		if (d > 0 && now >= d)
			child_stop(c, STOP_DEADLINE, now);
	}
}

static void
child_watch(ext_child_t *c)
{
	for (;;) {
		int64_t now = fsu_mono_ms();
		if (!c->exited)
			child_check_exit(c, now);
		if (c->exited && ((c->fd[0] < 0 && c->fd[1] < 0) || now - c->t_exit >= EXT_DRAIN_MS))
			break;
		if (!c->exited && c->stop == STOP_NONE)
			child_check_limits(c, now);
		if (c->stop != STOP_NONE && !c->exited && !c->sigkilled && now - c->t_stop >= EXT_KILL_GRACE_MS) {
			kill(-c->pid, SIGKILL);
			c->sigkilled = true;
		}

		int timeout = EXT_POLL_MS;
		if (c->query && c->stop == STOP_NONE && c->query_deadline - now < timeout)
			timeout = (int)(c->query_deadline - now);
		if (!c->query && !c->started && c->stop == STOP_NONE &&
		    c->t_start + c->start_limit_ms - now < timeout)
			timeout = (int)(c->t_start + c->start_limit_ms - now);
		if (timeout < 1)
			timeout = 1;
		struct pollfd pfd[2];
		nfds_t n = 0;
		for (int i = 0; i < 2; i++)
			if (c->fd[i] >= 0)
				pfd[n++] = (struct pollfd){ .fd = c->fd[i], .events = POLLIN };
		if (n == 0 && timeout > EXT_IDLE_POLL_MS)
			timeout = EXT_IDLE_POLL_MS;
		if (poll(pfd, n, timeout) > 0)
			child_read(c);
	}
	for (int i = 0; i < 2; i++)
		if (c->fd[i] >= 0) {
			close(c->fd[i]);
			c->fd[i] = -1;
		}
}

/* ---- messages -------------------------------------------------------------------- */

/* "<prefix>: <tail>" with as much of the tail's end as the message holds:
 * stderr's tail, or when stderr was silent, stdout's non-JSON text. */
static int
fail_with_tail(const ext_child_t *c, ohb_error_t *err, int code, const char *prefix)
{
	const ext_tail_t *t = c->err_tail.len ? &c->err_tail : &c->text_tail;
	size_t used = strlen(prefix) + 2;
	size_t room = used < sizeof err->message ? sizeof err->message - used - 1 : 0;
	char text[EXT_TAIL_MAX + 1];
	tail_text(t, room, text, sizeof text);
	if (!text[0])
		return ohb_fail(err, code, "%s", prefix);
	return ohb_fail(err, code, "%s: %s", prefix, text);
}

static int
child_outcome(const ext_child_t *c, ohb_error_t *err)
{
	char prefix[256];
	long long ran = (long long)((c->stop ? c->t_stop : c->t_exit) - c->t_start);
	const char *who = c->b->name, *act = c->action;
	switch (c->stop) {
	case STOP_START_LIMIT:
		snprintf(prefix, sizeof prefix,
		    "extension of %s (%s) printed no line within its start limit of %d ms and was stopped", who, act,
		    c->start_limit_ms);
		return fail_with_tail(c, err, OHB_E_EXT_START_TIMEOUT, prefix);
	case STOP_DEADLINE:
		snprintf(prefix, sizeof prefix, "extension of %s (%s) ran for %lld ms, past its deadline, and was stopped",
		    who, act, ran);
		return fail_with_tail(c, err, OHB_E_TIMEOUT, prefix);
	case STOP_CANCEL:
	case STOP_QUERY_TIMEOUT:
		return 0;
	case STOP_NONE:
		break;
	}
	if (c->oom)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while reading the extension of %s", who);
	if (c->status_lost) {
		snprintf(prefix, sizeof prefix,
		    "extension of %s (%s) ended but its exit status was lost (is SIGCHLD ignored in this process?)",
		    who, act);
		return fail_with_tail(c, err, OHB_E_EXT_DIED, prefix);
	}
	if (WIFSIGNALED(c->status)) {
		int sig = WTERMSIG(c->status);
		const char *abbrev = sigabbrev_np(sig);
		snprintf(prefix, sizeof prefix, "extension of %s (%s) was killed by signal %d (SIG%s) after %lld ms", who,
		    act, sig, abbrev ? abbrev : "?", ran);
		return fail_with_tail(c, err, OHB_E_EXT_DIED, prefix);
	}
	if (WIFEXITED(c->status) && WEXITSTATUS(c->status) != 0) {
		snprintf(prefix, sizeof prefix, "extension of %s (%s) exited with status %d", who, act,
		    WEXITSTATUS(c->status));
		return fail_with_tail(c, err, OHB_E_EXT_THROW, prefix);
	}
	return 0;
}

/* ---- the two entry points ------------------------------------------------------ */

static void
child_init(ext_child_t *c, const reg_bundle_t *b, const char *action)
{
	memset(c, 0, sizeof *c);
	c->b = b;
	c->action = action;
	c->pid = -1;
	c->fd[0] = c->fd[1] = -1;
}

int
ext_run(const reg_bundle_t *b, const char *action, const ext_hooks_t *hooks, char **result_out,
    bool *cancelled_out, ohb_error_t *err)
{
	if (result_out)
		*result_out = NULL;
	if (cancelled_out)
		*cancelled_out = false;
	if (!b || !action || (strcmp(action, "backup") != 0 && strcmp(action, "restore") != 0))
		return ohb_fail(err, OHB_E_INVAL, "extension action must be backup or restore");
	if (!b->extension)
		return 0;

	ext_child_t c;
	child_init(&c, b, action);
	c.hooks = hooks;
	c.start_limit_ms = hooks && hooks->start_limit_ms > 0 ? hooks->start_limit_ms : EXT_START_LIMIT_MS;
	if (!(c.line = malloc(EXT_LINE_MAX + 1)))
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	int rc = child_spawn(&c, NULL, err);
	if (rc == 0) {
		child_watch(&c);
		rc = child_outcome(&c, err);
		if (rc == 0 && c.stop == STOP_CANCEL && cancelled_out)
			*cancelled_out = true;
		if (rc == 0 && c.stop == STOP_NONE && result_out) {
			*result_out = c.result;
			c.result = NULL;
		}
	}
	free(c.result);
	free(c.line);
	return rc;
}

int
ext_query(const reg_bundle_t *b, const char *action, const char *arg, int timeout_ms, char **out,
    ohb_error_t *err)
{
	if (!out)
		return ohb_fail(err, OHB_E_INVAL, "no place for the extension's answer");
	*out = NULL;
	bool compat = action && strcmp(action, "compat") == 0;
	if (!b || !action || (!compat && strcmp(action, "info") != 0))
		return ohb_fail(err, OHB_E_INVAL, "extension query must be info or compat");
	if (!b->extension) {
		if (!(*out = strdup("")))
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		return 0;
	}

	ext_child_t c;
	child_init(&c, b, action);
	c.query = true;
	if (!(c.capture = malloc(EXT_QUERY_MAX + 1)))
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	int rc = child_spawn(&c, compat ? (arg ? arg : "") : NULL, err);
	if (rc == 0) {
		c.query_deadline = c.t_start + (timeout_ms > 0 ? timeout_ms : EXT_QUERY_DEFAULT_MS);
		child_watch(&c);
		rc = child_outcome(&c, err);
	}
	if (rc == 0) {
		size_t len = c.stop == STOP_QUERY_TIMEOUT ? 0 : c.capture_len;
		char *p = trim(c.capture, &len);
		if (!(*out = strndup(p, len)))
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	free(c.capture);
	return rc;
}
