/*
 * test_extension — the extension runner against small sh scripts: progress
 * lines in order, the last result JSON, the failure codes (13500002/3/4/7/9)
 * with their messages, deadlines moved by the hook, cancel, queries and their
 * timeout, the documented working directory and environment, and that no fd
 * of ours leaks into the child. Each test writes its scripts into its own
 * mkdtemp folder and points a hand-built reg_bundle_t at them.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "extension.h"
#include "fsutil.h"
#include "registry.h"

#define MAX_LINES 64

/* A bundle whose "/" is <dir>/sandbox and whose extension is <dir>/<script>. */
typedef struct fixture {
	char *dir;
	char *sandbox;
	reg_mount_t mount;
	reg_bundle_t b;
} fixture_t;

static void
fx_open(fixture_t *f)
{
	memset(f, 0, sizeof *f);
	char tmpl[] = "/tmp/ohb-test-extension-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	f->dir = realpath(tmpl, NULL);
	ck_assert_ptr_nonnull(f->dir);
	f->sandbox = fsu_join(f->dir, "sandbox");
	ck_assert_int_eq(fsu_mkdir_p(f->sandbox, 0755, NULL), 0);
	f->mount.sandbox_prefix = "/";
	f->mount.dir = f->sandbox;
	f->b.name = "com.test.ext";
	f->b.bundle_dir = f->dir;
	f->b.mounts = &f->mount;
	f->b.n_mounts = 1;
}

static void
fx_close(fixture_t *f)
{
	ck_assert_int_eq(fsu_rm_rf(f->dir, NULL), 0);
	free(f->b.extension);
	free(f->sandbox);
	free(f->dir);
}

/* Writes <dir>/<name> as "#!/bin/sh" + body with mode, and makes it the extension. */
static void
fx_script_mode(fixture_t *f, const char *name, const char *body, mode_t mode)
{
	char *text = fsu_printf("#!/bin/sh\n%s", body);
	ck_assert_int_eq(fsu_write_atomic(f->dir, name, text, strlen(text), mode, NULL), 0);
	free(text);
	free(f->b.extension);
	f->b.extension = fsu_join(f->dir, name);
	ck_assert_int_eq(chmod(f->b.extension, mode), 0);
}

static void
fx_script(fixture_t *f, const char *body)
{
	fx_script_mode(f, "ext.sh", body, 0755);
}

/* What the hooks saw, and how they steer the run. */
typedef struct rec {
	char *lines[MAX_LINES];
	size_t n;
	int64_t deadline;        /* 0: none */
	int64_t move_by_ms;      /* > 0: the first progress line moves the deadline to now + this */
	size_t cancel_after;     /* > 0: cancelled once this many progress lines came */
} rec_t;

static void
rec_progress(void *ctx, const char *json)
{
	rec_t *r = ctx;
	if (r->n < MAX_LINES)
		r->lines[r->n++] = strdup(json);
	if (r->move_by_ms > 0) {
		r->deadline = fsu_mono_ms() + r->move_by_ms;
		r->move_by_ms = 0;
	}
}

static bool
rec_cancelled(void *ctx)
{
	rec_t *r = ctx;
	return r->cancel_after > 0 && r->n >= r->cancel_after;
}

static int64_t
rec_deadline(void *ctx)
{
	rec_t *r = ctx;
	return r->deadline;
}

static ext_hooks_t
rec_hooks(rec_t *r)
{
	ext_hooks_t h = { r, rec_progress, rec_cancelled, rec_deadline, 0 };
	return h;
}

static void
rec_free(rec_t *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->lines[i]);
}

/* The pid a script printed as "pid":N in its first progress line. */
static pid_t
rec_pid(const rec_t *r)
{
	ck_assert_uint_ge(r->n, 1);
	const char *p = strstr(r->lines[0], "\"pid\":");
	ck_assert_ptr_nonnull(p);
	return (pid_t)atoi(p + 6);
}

static void
assert_gone(pid_t pid)
{
	ck_assert_int_gt(pid, 1);
	errno = 0;
	ck_assert_int_eq(kill(pid, 0), -1);
	ck_assert_int_eq(errno, ESRCH);
}

START_TEST(test_progress_and_result)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f,
	    "echo '{\"progressInfo\":[{\"name\":\"com.test.ext\",\"processed\":1,\"total\":3}]}'\n"
	    "echo 'plain text is ignored'\n"
	    "echo '{\"result\": not json'\n"
	    "echo '42'\n"
	    "echo '  {\"progressInfo\":[{\"name\":\"com.test.ext\",\"processed\":2,\"total\":3}]}  '\n"
	    "echo '{\"resultInfo\":\"first\"}'\n"
	    "echo '{\"processResult\":{\"n\":3}}'\n"
	    "echo '{\"resultInfo\":\"second\"}'\n"
	    /* a valid JSON object of 70 000 bytes: truncated at 64 KiB, so ignored */
	    "printf '{\"resultInfo\":\"'; head -c 70000 /dev/zero | tr '\\0' a; echo '\"}'\n"
	    "echo 'bye' >&2\n");
	rec_t r = { 0 };
	ext_hooks_t h = rec_hooks(&r);
	char *result = NULL;
	bool cancelled = true;
	ohb_error_t err;
	ohb_error_clear(&err);
	int rc = ext_run(&f.b, "backup", &h, &result, &cancelled, &err);
	ck_assert_msg(rc == 0, "%d %s", rc, err.message);
	ck_assert(!cancelled);
	ck_assert_uint_eq(r.n, 3);
	ck_assert_str_eq(r.lines[0], "{\"progressInfo\":[{\"name\":\"com.test.ext\",\"processed\":1,\"total\":3}]}");
	ck_assert_str_eq(r.lines[1], "{\"progressInfo\":[{\"name\":\"com.test.ext\",\"processed\":2,\"total\":3}]}");
	ck_assert_str_eq(r.lines[2], "{\"processResult\":{\"n\":3}}");
	ck_assert_ptr_nonnull(result);
	ck_assert_str_eq(result, "{\"resultInfo\":\"second\"}");
	free(result);
	rec_free(&r);
	fx_close(&f);
}
END_TEST

START_TEST(test_last_line_without_newline_and_no_result)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, "printf '{\"done\":true}'\n");
	char *result = NULL;
	ohb_error_t err;
	ck_assert_int_eq(ext_run(&f.b, "restore", NULL, &result, NULL, &err), 0);
	ck_assert_str_eq(result, "{\"done\":true}");
	free(result);

	fx_script(&f, "echo working; echo '{\"progressInfo\":[]}'\nexit 0\n");
	result = (char *)"untouched";
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), 0);
	ck_assert_ptr_null(result);

	/* No extension at all: nothing to do. */
	free(f.b.extension);
	f.b.extension = NULL;
	result = (char *)"untouched";
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), 0);
	ck_assert_ptr_null(result);
	ck_assert_int_eq(ext_run(&f.b, "bogus", NULL, &result, NULL, &err), OHB_E_INVAL);
	fx_close(&f);
}
END_TEST

START_TEST(test_nonzero_exit)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, "echo '{\"resultInfo\":\"partial\"}'\necho 'the ledger is locked' >&2\nexit 3\n");
	char *result = NULL;
	ohb_error_t err;
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), OHB_E_EXT_THROW);
	ck_assert_int_eq(err.code, OHB_E_EXT_THROW);
	ck_assert_ptr_null(result);
	ck_assert_msg(strstr(err.message, "exited with status 3: the ledger is locked") != NULL, "%s", err.message);
	ck_assert_ptr_nonnull(strstr(err.message, "com.test.ext"));

	/* A long stderr: the message keeps its end, and stays one line. */
	fx_script(&f, "i=0; while [ $i -lt 200 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done\n"
	              "echo 'the real reason' >&2; exit 1\n");
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), OHB_E_EXT_THROW);
	ck_assert_msg(strstr(err.message, "status 1: ") != NULL, "%s", err.message);
	ck_assert_msg(strstr(err.message, "the real reason") != NULL, "%s", err.message);
	ck_assert_ptr_null(strchr(err.message, '\n'));
	fx_close(&f);
}
END_TEST

START_TEST(test_killed_by_signal)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, "echo '{\"progressInfo\":[]}'\nkill -9 $$\n");
	ohb_error_t err;
	char *result = NULL;
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), OHB_E_EXT_DIED);
	ck_assert_msg(strstr(err.message, "signal 9 (SIGKILL)") != NULL, "%s", err.message);
	ck_assert_ptr_null(result);
	fx_close(&f);
}
END_TEST

START_TEST(test_cannot_boot)
{
	fixture_t f;
	fx_open(&f);
	ohb_error_t err;
	char *result = NULL;
	/* missing */
	f.b.extension = fsu_join(f.dir, "nope.sh");
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), OHB_E_EXT_BOOT);
	ck_assert_msg(strstr(err.message, "nope.sh") != NULL, "%s", err.message);
	/* not executable */
	fx_script_mode(&f, "plain.sh", "echo hi\n", 0644);
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), OHB_E_EXT_BOOT);
	ck_assert_msg(strstr(err.message, "not executable") != NULL, "%s", err.message);
	/* a folder */
	free(f.b.extension);
	f.b.extension = strdup(f.sandbox);
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), OHB_E_EXT_BOOT);
	/* an interpreter that does not exist: the exec itself fails */
	char *text = strdup("#!/nonexistent/interpreter\n");
	ck_assert_int_eq(fsu_write_atomic(f.dir, "bad.sh", text, strlen(text), 0755, NULL), 0);
	free(text);
	free(f.b.extension);
	f.b.extension = fsu_join(f.dir, "bad.sh");
	ck_assert_int_eq(chmod(f.b.extension, 0755), 0);
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), OHB_E_EXT_BOOT);
	/* and a query says so too */
	ck_assert_int_eq(ext_query(&f.b, "info", NULL, 1000, &text, &err), OHB_E_EXT_BOOT);
	ck_assert_ptr_null(text);
	ck_assert_ptr_null(result);
	fx_close(&f);
}
END_TEST

START_TEST(test_start_limit)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, "sleep 5\necho '{\"resultInfo\":\"late\"}'\n");
	rec_t r = { 0 };
	ext_hooks_t h = rec_hooks(&r);
	h.start_limit_ms = 300;
	ohb_error_t err;
	char *result = NULL;
	int64_t t0 = fsu_mono_ms();
	ck_assert_int_eq(ext_run(&f.b, "backup", &h, &result, NULL, &err), OHB_E_EXT_START_TIMEOUT);
	int64_t took = fsu_mono_ms() - t0;
	ck_assert_msg(took >= 300 && took < 2500, "took %lld ms", (long long)took);
	ck_assert_msg(strstr(err.message, "300 ms") != NULL, "%s", err.message);
	ck_assert_ptr_null(result);

	/* A first line in time is enough: the start limit no longer applies. */
	fx_script(&f, "echo '{\"progressInfo\":[]}'\nsleep 0.6\necho '{\"resultInfo\":\"ok\"}'\n");
	ck_assert_int_eq(ext_run(&f.b, "backup", &h, &result, NULL, &err), 0);
	ck_assert_str_eq(result, "{\"resultInfo\":\"ok\"}");
	free(result);
	rec_free(&r);
	fx_close(&f);
}
END_TEST

/* Prints its pid, then progress every 0.1 s, forever. */
static const char endless[] = "echo \"{\\\"progressInfo\\\":[],\\\"pid\\\":$$}\"\n"
                              "while :; do echo '{\"progressInfo\":[{\"processed\":1}]}'; sleep 0.1; done\n";

START_TEST(test_deadline)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, endless);
	rec_t r = { 0 };
	r.deadline = fsu_mono_ms() + 500;
	ext_hooks_t h = rec_hooks(&r);
	ohb_error_t err;
	char *result = NULL;
	int64_t t0 = fsu_mono_ms();
	ck_assert_int_eq(ext_run(&f.b, "backup", &h, &result, NULL, &err), OHB_E_TIMEOUT);
	int64_t took = fsu_mono_ms() - t0;
	ck_assert_msg(took >= 450 && took < 2500, "took %lld ms", (long long)took);
	ck_assert_msg(strstr(err.message, "ran for ") != NULL && strstr(err.message, " ms") != NULL, "%s",
	    err.message);
	ck_assert_uint_ge(r.n, 2);
	assert_gone(rec_pid(&r));
	ck_assert_ptr_null(result);
	rec_free(&r);
	fx_close(&f);
}
END_TEST

START_TEST(test_deadline_moved)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, "i=0; while [ $i -lt 6 ]; do echo '{\"progressInfo\":[]}'; sleep 0.1; i=$((i+1)); done\n"
	              "echo '{\"resultInfo\":\"done\"}'\n");
	rec_t r = { 0 };
	r.deadline = fsu_mono_ms() + 250;
	r.move_by_ms = 5000;   /* updateTimer, as the first progress line arrives */
	ext_hooks_t h = rec_hooks(&r);
	ohb_error_t err;
	char *result = NULL;
	int rc = ext_run(&f.b, "restore", &h, &result, NULL, &err);
	ck_assert_msg(rc == 0, "%d %s", rc, err.message);
	ck_assert_uint_eq(r.n, 6);
	ck_assert_str_eq(result, "{\"resultInfo\":\"done\"}");
	free(result);
	rec_free(&r);
	fx_close(&f);
}
END_TEST

START_TEST(test_cancel)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, endless);
	rec_t r = { 0 };
	r.cancel_after = 3;
	ext_hooks_t h = rec_hooks(&r);
	ohb_error_t err;
	ohb_error_clear(&err);
	char *result = NULL;
	bool cancelled = false;
	ck_assert_int_eq(ext_run(&f.b, "backup", &h, &result, &cancelled, &err), 0);
	ck_assert(cancelled);
	ck_assert_ptr_null(result);
	assert_gone(rec_pid(&r));
	rec_free(&r);
	fx_close(&f);
}
END_TEST

START_TEST(test_cancel_ignoring_sigterm)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, "trap '' TERM\n"
	              "echo \"{\\\"progressInfo\\\":[],\\\"pid\\\":$$}\"\n"
	              "while :; do sleep 0.1; done\n");
	rec_t r = { 0 };
	r.cancel_after = 1;
	ext_hooks_t h = rec_hooks(&r);
	ohb_error_t err;
	char *result = NULL;
	bool cancelled = false;
	int64_t t0 = fsu_mono_ms();
	ck_assert_int_eq(ext_run(&f.b, "backup", &h, &result, &cancelled, &err), 0);
	int64_t took = fsu_mono_ms() - t0;
	ck_assert(cancelled);
	ck_assert_msg(took >= 1900 && took < 4500, "SIGKILL 2 s after SIGTERM, took %lld ms", (long long)took);
	assert_gone(rec_pid(&r));
	rec_free(&r);
	fx_close(&f);
}
END_TEST

START_TEST(test_query)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, "case \"$1\" in\n"
	              "info) printf '\\n  {\"rows\":3}\\n\\n' ;;\n"
	              "compat) case \"$2\" in v*) echo compatible ;; *) echo ;; esac ;;\n"
	              "*) exit 2 ;;\n"
	              "esac\n");
	ohb_error_t err;
	char *out = NULL;
	ck_assert_int_eq(ext_query(&f.b, "info", NULL, 2000, &out, &err), 0);
	ck_assert_str_eq(out, "{\"rows\":3}");
	free(out);
	ck_assert_int_eq(ext_query(&f.b, "compat", "v2.1", 2000, &out, &err), 0);
	ck_assert_str_eq(out, "compatible");
	free(out);
	ck_assert_int_eq(ext_query(&f.b, "compat", "2.1", 2000, &out, &err), 0);
	ck_assert_str_eq(out, "");
	free(out);
	ck_assert_int_eq(ext_query(&f.b, "compat", NULL, 2000, &out, &err), 0);
	ck_assert_str_eq(out, "");
	free(out);
	ck_assert_int_eq(ext_query(&f.b, "bogus", NULL, 2000, &out, &err), OHB_E_INVAL);

	/* No extension: "" at once. */
	free(f.b.extension);
	f.b.extension = NULL;
	int64_t t0 = fsu_mono_ms();
	ck_assert_int_eq(ext_query(&f.b, "compat", "v1", 1000, &out, &err), 0);
	ck_assert_int_lt(fsu_mono_ms() - t0, 50);
	ck_assert_str_eq(out, "");
	free(out);
	fx_close(&f);
}
END_TEST

START_TEST(test_query_timeout)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, "echo \"$$\"\nsleep 5\necho compatible\n");
	ohb_error_t err;
	char *out = NULL;
	int64_t t0 = fsu_mono_ms();
	ck_assert_int_eq(ext_query(&f.b, "compat", "v1", 1000, &out, &err), 0);
	int64_t took = fsu_mono_ms() - t0;
	ck_assert_msg(took >= 950 && took < 2500, "took %lld ms", (long long)took);
	ck_assert_str_eq(out, "");   /* what it printed before the timeout does not count */
	free(out);
	fx_close(&f);
}
END_TEST

START_TEST(test_cwd_and_env)
{
	fixture_t f;
	fx_open(&f);
	/* Two mounts: the one holding the el2 files folder is the working directory. */
	char *files = fsu_join(f.dir, "files");
	ck_assert_int_eq(fsu_mkdir_p(files, 0755, NULL), 0);
	reg_mount_t mounts[2] = { { "/data/storage/el2/base/files", files }, { "/", f.sandbox } };
	f.b.mounts = mounts;
	f.b.n_mounts = 2;
	setenv("OHB_ACTION", "stale", 1);
	setenv("OHB_TEST_INHERITED", "yes", 1);
	fx_script(&f, "read line; rin=$?\n"
	              "printf '{\"cwd\":\"%s\",\"bundle\":\"%s\",\"sandbox\":\"%s\",\"action\":\"%s\",\"n\":%d,"
	              "\"argc\":%d,\"stdin\":%d,\"inherited\":\"%s\"}\\n' \"$(pwd -P)\" \"$OHB_BUNDLE\" "
	              "\"$OHB_SANDBOX\" \"$OHB_ACTION\" \"$(env | grep -c '^OHB_ACTION=')\" $# $rin "
	              "\"$OHB_TEST_INHERITED\"\n");
	ohb_error_t err;
	char *result = NULL;
	int rc = ext_run(&f.b, "restore", NULL, &result, NULL, &err);
	ck_assert_msg(rc == 0, "%s", err.message);
	char *want = fsu_printf("{\"cwd\":\"%s\",\"bundle\":\"com.test.ext\",\"sandbox\":\"%s\",\"action\":\"restore\","
	                        "\"n\":1,\"argc\":1,\"stdin\":1,\"inherited\":\"yes\"}",
	    files, files);
	ck_assert_str_eq(result, want);
	free(want);
	free(result);

	/* Only "/": its folder. */
	f.b.mounts = &f.mount;
	f.b.n_mounts = 1;
	fx_script(&f, "printf '{\"cwd\":\"%s\",\"action\":\"%s\",\"arg\":\"%s\"}\\n' \"$(pwd -P)\" \"$OHB_ACTION\" "
	              "\"$2\"\n");
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), 0);
	want = fsu_printf("{\"cwd\":\"%s\",\"action\":\"backup\",\"arg\":\"\"}", f.sandbox);
	ck_assert_str_eq(result, want);
	free(want);
	free(result);
	char *out = NULL;
	ck_assert_int_eq(ext_query(&f.b, "compat", "v9 with space", 2000, &out, &err), 0);
	want = fsu_printf("{\"cwd\":\"%s\",\"action\":\"compat\",\"arg\":\"v9 with space\"}", f.sandbox);
	ck_assert_str_eq(out, want);
	free(want);
	free(out);
	free(files);
	fx_close(&f);
}
END_TEST

START_TEST(test_no_fd_leak)
{
	fixture_t f;
	fx_open(&f);
	/* An fd someone else of the process forgot to mark close-on-exec. */
	int stray = open("/dev/null", O_RDONLY);
	ck_assert_int_ge(stray, 3);
	fx_script(&f, "ls /proc/self/fd\n");
	ohb_error_t err;
	char *out = NULL;
	ck_assert_int_eq(ext_query(&f.b, "info", NULL, 2000, &out, &err), 0);
	/* 0, 1, 2 and the folder ls opened to list itself (the lowest free fd: 3). */
	ck_assert_msg(strcmp(out, "0\n1\n2\n3") == 0, "fds in the child: %s", out);
	free(out);
	close(stray);
	fx_close(&f);
}
END_TEST

START_TEST(test_stdio_closed)
{
	fixture_t f;
	fx_open(&f);
	fx_script(&f, "read line; echo \"{\\\"stdin\\\":$?}\"; echo 'said on stderr' >&2; exit 5\n");
	/* A service started with 0, 1 and 2 closed: our pipes must not land there.
	 * (Saved and put back, for CK_FORK=no.) */
	int saved[3];
	for (int i = 0; i < 3; i++) {
		saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 10);
		ck_assert_int_ge(saved[i], 10);
		close(i);
	}
	ohb_error_t err;
	char *result = NULL;
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), OHB_E_EXT_THROW);
	ck_assert_msg(strstr(err.message, "status 5: said on stderr") != NULL, "%s", err.message);
	fx_script(&f, "read line; echo \"{\\\"stdin\\\":$?}\"\n");
	ck_assert_int_eq(ext_run(&f.b, "backup", NULL, &result, NULL, &err), 0);
	ck_assert_str_eq(result, "{\"stdin\":1}");
	free(result);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(dup2(saved[i], i), i);
		close(saved[i]);
	}
	fx_close(&f);
}
END_TEST

START_TEST(test_sigchld_ignored)
{
	/* A host that ignores SIGCHLD has its children reaped by the kernel: the
	 * runner must notice instead of waiting forever. */
	fixture_t f;
	fx_open(&f);
	fx_script(&f, "echo '{\"resultInfo\":1}'\n");
	signal(SIGCHLD, SIG_IGN);
	ohb_error_t err;
	char *result = NULL;
	int64_t t0 = fsu_mono_ms();
	int rc = ext_run(&f.b, "backup", NULL, &result, NULL, &err);
	signal(SIGCHLD, SIG_DFL);
	ck_assert_int_eq(rc, OHB_E_EXT_DIED);
	ck_assert_msg(strstr(err.message, "exit status was lost") != NULL, "%s", err.message);
	ck_assert_int_lt(fsu_mono_ms() - t0, 2000);
	ck_assert_ptr_null(result);
	fx_close(&f);
}
END_TEST

Suite *extension_suite(void)
{
	Suite *s = suite_create("extension");
	TCase *tc = tcase_create("extension");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_progress_and_result);
	tcase_add_test(tc, test_last_line_without_newline_and_no_result);
	tcase_add_test(tc, test_nonzero_exit);
	tcase_add_test(tc, test_killed_by_signal);
	tcase_add_test(tc, test_cannot_boot);
	tcase_add_test(tc, test_start_limit);
	tcase_add_test(tc, test_deadline);
	tcase_add_test(tc, test_deadline_moved);
	tcase_add_test(tc, test_cancel);
	tcase_add_test(tc, test_cancel_ignoring_sigterm);
	tcase_add_test(tc, test_query);
	tcase_add_test(tc, test_query_timeout);
	tcase_add_test(tc, test_cwd_and_env);
	tcase_add_test(tc, test_no_fd_leak);
	tcase_add_test(tc, test_stdio_closed);
	tcase_add_test(tc, test_sigchld_ignored);
	suite_add_tcase(s, tc);
	return s;
}
