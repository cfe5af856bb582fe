/* Whole sessions through the public API (ohbackup.h): callback order, refused
 * bundles, session conflict, a restore round trip, argument errors, cancel
 * codes and the onProcess cadence. Each test builds its own device root. */
#include <check.h>
#include <pthread.h>
#include <dirent.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "ohbackup.h"
#include "registry.h"
#include "skip.h"

#define MAX_EVENTS 4096

typedef struct recorder {
	pthread_mutex_t lock;        /* the dispatcher records while the test polls */
	char *ev[MAX_EVENTS];        /* "begin com.a 0", "file com.a part.0.tar", ... */
	int64_t at[MAX_EVENTS];
	int n;
	const char *save_dir;        /* backup: write received files here (per bundle subdir) */
	ohb_session_t *s;
	const char *restore_from;    /* restore: read files from here */
	const char *hold_uri;        /* restore: keep a second fd of this file open in held_fd */
	int held_fd;
	const char *short_uri;       /* restore: write only half of this file, short_times times */
	int short_times;
	const char *garble_uri;      /* restore: this file with its size but junk for content */
	const char *incoming;        /* restore: count the tars in this folder at each tar's onFileReady */
	int most_tars;               /* the most counted */
} recorder_t;

static void
rec(recorder_t *r, char *text)
{
	pthread_mutex_lock(&r->lock);
	if (r->n < MAX_EVENTS) {
		r->at[r->n] = fsu_mono_ms();
		r->ev[r->n++] = text;
	} else {
		free(text);
	}
	pthread_mutex_unlock(&r->lock);
}

static void
on_file(void *u, int err, const char *msg, const ohb_file_t *f)
{
	(void)msg;
	recorder_t *r = u;
	if (r->save_dir && f->fd >= 0) {
		char *dir = fsu_join(r->save_dir, f->bundle_name);
		fsu_mkdir_p(dir, 0700, NULL);
		ck_assert_int_eq(fsu_copy_fd_atomic(f->fd, dir, f->uri, 0600, NULL, NULL), 0);
		free(dir);
	}
	if (r->incoming && f->fd >= 0 && strstr(f->uri, ".tar")) {
		DIR *d = opendir(r->incoming);
		int tars = 0;
		for (struct dirent *de; d && (de = readdir(d)) != NULL;)
			tars += strstr(de->d_name, ".tar") != NULL;
		if (d)
			closedir(d);
		if (tars > r->most_tars)
			r->most_tars = tars;
	}
	if (r->restore_from && f->fd >= 0) {
		char *p = fsu_printf("%s/%s/%s", r->restore_from, f->bundle_name, f->uri);
		int in = open(p, O_RDONLY);
		ck_assert_int_ge(in, 0);
		struct stat sb;
		ck_assert_int_eq(fstat(in, &sb), 0);
		if (r->short_uri && strcmp(f->uri, r->short_uri) == 0 && r->short_times > 0) {
			r->short_times--;
			char *half = malloc((size_t)sb.st_size / 2 + 1);
			ck_assert_int_eq(read(in, half, (size_t)sb.st_size / 2), sb.st_size / 2);
			ck_assert_int_eq(write(f->fd, half, (size_t)sb.st_size / 2), sb.st_size / 2);
			free(half);
		} else if (r->garble_uri && strcmp(f->uri, r->garble_uri) == 0) {
			char junk[4096];
			memset(junk, 'x', sizeof junk);
			for (off_t at = 0; at < sb.st_size; at += (off_t)sizeof junk) {
				size_t k = sb.st_size - at < (off_t)sizeof junk ? (size_t)(sb.st_size - at) : sizeof junk;
				ck_assert_int_eq(write(f->fd, junk, k), (ssize_t)k);
			}
		} else {
			ck_assert_int_eq(fsu_copy_fd(in, f->fd, NULL, NULL), 0);
		}
		close(in);
		free(p);
		if (r->hold_uri && strcmp(f->uri, r->hold_uri) == 0)
			r->held_fd = dup(f->fd);
	}
	if (f->fd >= 0)
		close(f->fd);
	if (f->manifest_fd >= 0)
		close(f->manifest_fd);
	/* recorded after the bytes are written: the test publishes once it sees the last file */
	rec(r, fsu_printf("file %s %s %d", f->bundle_name, f->uri, err));
}

static void
on_begin(void *u, int err, const char *msg, const char *b)
{
	(void)msg;
	rec(u, fsu_printf("begin %s %d", b, err));
}

static void
on_end(void *u, int err, const char *msg, const char *b)
{
	(void)msg;
	rec(u, fsu_printf("end %s %d", b, err));
}

static void
on_all(void *u, int err, const char *msg)
{
	(void)msg;
	rec(u, fsu_printf("all %d", err));
}

static void
on_result(void *u, const char *b, const char *result)
{
	rec(u, fsu_printf("result %s %s", b, result));
}

static void
on_process(void *u, const char *b, const char *p)
{
	rec(u, fsu_printf("process %s %s", b, p));
}

static void
on_size(void *u, const char *report)
{
	rec(u, fsu_printf("size %s", report));
}

static const ohb_callbacks_t *
callbacks(recorder_t *r, ohb_callbacks_t *cb)
{
	ohb_callbacks_t c = { r, on_file, on_begin, on_end, on_all, NULL, on_result, on_process, on_size };
	*cb = c;
	return cb;
}

static void
rec_free(recorder_t *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->ev[i]);
	r->n = 0;
}

static int
find_ev(recorder_t *r, const char *prefix)
{
	int found = -1;
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < r->n && found < 0; i++)
		if (strncmp(r->ev[i], prefix, strlen(prefix)) == 0)
			found = i;
	pthread_mutex_unlock(&r->lock);
	return found;
}

static int
count_ev(recorder_t *r, const char *prefix)
{
	int n = 0;
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < r->n; i++)
		n += strncmp(r->ev[i], prefix, strlen(prefix)) == 0;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static int
last_ev(recorder_t *r, const char *prefix)
{
	int last = -1;
	pthread_mutex_lock(&r->lock);
	for (int i = 0; i < r->n; i++)
		if (strncmp(r->ev[i], prefix, strlen(prefix)) == 0)
			last = i;
	pthread_mutex_unlock(&r->lock);
	return last;
}

typedef struct fixture {
	char *ws, *root, *data;
	ohb_service_t *svc;
} fixture_t;

static void
write_file(const char *path, size_t size, unsigned seed)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	for (size_t i = 0; i < size; i++)
		fputc((int)((i * 31 + seed) & 0xff), f);
	fclose(f);
}

/* A device with bundle com.test.app over ws/data holding n_small small files and n_big 2.5 MiB files. */
static void
fixture_up(fixture_t *fx, int n_small, int n_big, int interval_ms)
{
	char tmpl[] = "/tmp/ohb-session-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	fx->ws = strdup(tmpl);
	fx->root = fsu_join(fx->ws, "root");
	fx->data = fsu_join(fx->ws, "data");
	ck_assert_int_eq(fsu_mkdir_p(fx->root, 0755, NULL), 0);
	ck_assert_int_eq(fsu_mkdir_p(fx->data, 0755, NULL), 0);
	char *sub = fsu_join(fx->data, "notes/deep/er");
	ck_assert_int_eq(fsu_mkdir_p(sub, 0755, NULL), 0);
	for (int i = 0; i < n_small; i++) {
		char *p = fsu_printf("%s/n%03d.txt", i % 2 ? sub : fx->data, i);
		write_file(p, 100 + (size_t)i * 37, (unsigned)i);
		free(p);
	}
	for (int i = 0; i < n_big; i++) {
		char *p = fsu_printf("%s/big%d.db", fx->data, i);
		write_file(p, (5u << 19) + (size_t)i, (unsigned)i + 100);
		free(p);
	}
	free(sub);
	ohb_error_t err;
	ck_assert_msg(reg_bundle_add_dir(fx->root, "com.test.app", fx->data, &err) == 0, "%s", err.message);
	ohb_service_options_t o = { fx->root, 0, interval_ms };
	ck_assert_msg(ohb_service_open(&o, &fx->svc, &err) == 0, "%s", err.message);
}

static void
fixture_down(fixture_t *fx)
{
	ohb_service_close(fx->svc);
	fsu_rm_rf(fx->ws, NULL);
	free(fx->ws);
	free(fx->root);
	free(fx->data);
}

static void
run_backup(fixture_t *fx, recorder_t *r, const char *const *names, size_t n)
{
	ohb_callbacks_t cb;
	ohb_session_t *s = NULL;
	ohb_error_t err;
	ck_assert_int_eq(ohb_session_backup_create(fx->svc, callbacks(r, &cb), &s, &err), 0);
	r->s = s;
	ck_assert_int_eq(ohb_session_append_backup(s, names, NULL, n, &err), 0);
	ck_assert(ohb_session_wait(s, 60000));
	ck_assert_int_eq(ohb_session_release(s, &err), 0);
	ohb_session_free(s);
}

START_TEST(backup_callbacks_come_in_reference_order)
{
	fixture_t fx;
	fixture_up(&fx, 40, 2, 0);
	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const char *names[] = { "com.test.app" };
	run_backup(&fx, &r, names, 1);
	int begin = find_ev(&r, "begin com.test.app 0");
	int first_process = find_ev(&r, "process com.test.app");
	int first_file = find_ev(&r, "file com.test.app");
	int manage = find_ev(&r, "file com.test.app manage.json 0");
	int last_file = last_ev(&r, "file com.test.app");
	int result = find_ev(&r, "result com.test.app");
	int end = find_ev(&r, "end com.test.app 0");
	int all = find_ev(&r, "all 0");
	ck_assert_int_eq(begin, 0);
	ck_assert_int_gt(first_process, begin);
	ck_assert_int_gt(first_file, begin);
	ck_assert_int_eq(manage, last_file);
	ck_assert_int_gt(result, manage);
	ck_assert_int_gt(end, result);
	ck_assert_int_eq(all, r.n - 1);
	ck_assert_int_ge(find_ev(&r, "file com.test.app part.0.tar 0"), 0);
	/* two big files, raw under 16-hex names with their extension */
	int bigs = 0;
	for (int i = 0; i < r.n; i++) {
		char name[64];
		if (sscanf(r.ev[i], "file com.test.app %63s", name) == 1 && strlen(name) == 19 &&
		    strcmp(name + 16, ".db") == 0)
			bigs++;
	}
	ck_assert_int_eq(bigs, 2);
	ck_assert_ptr_nonnull(strstr(r.ev[result], "\"successCount\":42"));
	ck_assert_ptr_nonnull(strstr(r.ev[first_process], "processResult"));
	rec_free(&r);
	fixture_down(&fx);
}
END_TEST

/* Replaces `from` by `to` in the bundle's descriptor. */
static void
edit_descriptor(fixture_t *fx, const char *bundle, const char *from, const char *to)
{
	char *dir = fsu_printf("%s/bundles/%s", fx->root, bundle);
	char *desc = fsu_join(dir, "bundle.json");
	char *text = NULL;
	ck_assert_int_eq(fsu_read_file(desc, 1 << 20, &text, NULL, NULL), 0);
	char *at = strstr(text, from);
	ck_assert_ptr_nonnull(at);
	char *edited = fsu_printf("%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
	ck_assert_int_eq(fsu_write_atomic(dir, "bundle.json", edited, strlen(edited), 0644, NULL), 0);
	free(edited);
	free(text);
	free(desc);
	free(dir);
}

static void
caps_then_backup(fixture_t *fx, recorder_t *r)
{
	int fd = -1;
	ck_assert_int_eq(ohb_get_local_capabilities(fx->svc, &fd, NULL), 0);
	close(fd);
	const char *names[] = { "com.test.app" };
	run_backup(fx, r, names, 1);
}

/* A backup right behind getLocalCapabilities may take that walk's listing
 * (service.c), with several include and exclude patterns; what it sends must
 * be what a fresh walk would find: the excluded file never, and a file added
 * after the capability call always. */
START_TEST(backup_after_capabilities_sends_what_a_walk_finds)
{
	fixture_t fx;
	fixture_up(&fx, 6, 0, 0);
	/* many short patterns: what the listing remembers of them must hold every one */
	edit_descriptor(&fx, "com.test.app", "\"excludes\":\t[]", "\"excludes\":[\"*.tmp\",\"x\",\"y\"]");
	edit_descriptor(&fx, "com.test.app", "\"includes\":\t[\"data/storage/el2/base/files/\"]",
	    "\"includes\":[\"data/storage/el2/base/files/\",\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\","
	    "\"h\",\"i\",\"j\",\"k\"]");
	char *tmp = fsu_join(fx.data, "scratch.tmp");
	write_file(tmp, 10, 1);
	ohb_service_close(fx.svc);   /* reopen: the registry read the old descriptor */
	ohb_service_options_t o = { fx.root, 0, 0 };
	ck_assert_int_eq(ohb_service_open(&o, &fx.svc, NULL), 0);
	usleep(1100 * 1000);   /* older than the racy-clean margin: the listing may be reused */

	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	caps_then_backup(&fx, &r);
	int result = find_ev(&r, "result com.test.app");
	ck_assert_int_ge(result, 0);
	ck_assert_ptr_nonnull(strstr(r.ev[result], "\"successCount\":6"));
	rec_free(&r);

	/* a file added after the capability call is sent */
	char *late = fsu_join(fx.data, "notes/late.txt");
	int fd = -1;
	ck_assert_int_eq(ohb_get_local_capabilities(fx.svc, &fd, NULL), 0);
	close(fd);
	write_file(late, 50, 2);
	recorder_t r2 = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const char *names[] = { "com.test.app" };
	run_backup(&fx, &r2, names, 1);
	result = find_ev(&r2, "result com.test.app");
	ck_assert_int_ge(result, 0);
	ck_assert_ptr_nonnull(strstr(r2.ev[result], "\"successCount\":7"));
	rec_free(&r2);
	free(late);
	free(tmp);
	fixture_down(&fx);
}
END_TEST

START_TEST(unknown_and_disallowed_bundles_are_refused_with_their_codes)
{
	fixture_t fx;
	fixture_up(&fx, 3, 0, 0);
	/* make a second bundle that does not allow backup */
	char *d2 = fsu_join(fx.ws, "data2");
	fsu_mkdir_p(d2, 0755, NULL);
	ck_assert_int_eq(reg_bundle_add_dir(fx.root, "com.test.bank", d2, NULL), 0);
	char *desc = fsu_printf("%s/bundles/com.test.bank/bundle.json", fx.root);
	char *text = NULL;
	ck_assert_int_eq(fsu_read_file(desc, 1 << 20, &text, NULL, NULL), 0);
	char *at = strstr(text, "\"allowToBackupRestore\"");
	ck_assert_ptr_nonnull(at);
	char *t = strstr(at, "true");
	ck_assert_ptr_nonnull(t);
	char *edited = fsu_printf("%.*sfalse%s", (int)(t - text), text, t + 4);
	char *dir = fsu_printf("%s/bundles/com.test.bank", fx.root);
	ck_assert_int_eq(fsu_write_atomic(dir, "bundle.json", edited, strlen(edited), 0644, NULL), 0);

	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const char *names[] = { "com.test.nosuch", "com.test.bank", "com.test.app" };
	run_backup(&fx, &r, names, 3);
	ck_assert_int_ge(find_ev(&r, "begin com.test.nosuch 13500005"), 0);
	ck_assert_int_ge(find_ev(&r, "end com.test.nosuch 13500005"), 0);
	ck_assert_int_ge(find_ev(&r, "begin com.test.bank 13500001"), 0);
	ck_assert_int_ge(find_ev(&r, "end com.test.bank 13500001"), 0);
	ck_assert_int_ge(find_ev(&r, "end com.test.app 0"), 0);
	ck_assert_int_eq(find_ev(&r, "file com.test.bank"), -1);
	ck_assert_int_eq(find_ev(&r, "all 0"), r.n - 1);
	rec_free(&r);
	free(dir);
	free(edited);
	free(text);
	free(desc);
	free(d2);
	fixture_down(&fx);
}
END_TEST

START_TEST(second_session_conflicts)
{
	fixture_t fx;
	fixture_up(&fx, 1, 0, 0);
	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	ohb_callbacks_t cb;
	ohb_session_t *a = NULL, *b = NULL;
	ohb_error_t err;
	ck_assert_int_eq(ohb_session_backup_create(fx.svc, callbacks(&r, &cb), &a, &err), 0);
	ck_assert_int_eq(ohb_session_restore_create(fx.svc, &cb, &b, &err), OHB_E_SESSION_CONFLICT);
	ck_assert_ptr_nonnull(strstr(err.message, "\"sessionInfo\""));
	ck_assert_ptr_nonnull(strstr(err.message, "Session Conflict"));
	/* another service over the same root (another process, as far as the lock knows) */
	ohb_service_t *other = NULL;
	ohb_service_options_t o = { fx.root, 0, 0 };
	ck_assert_int_eq(ohb_service_open(&o, &other, &err), 0);
	ck_assert_int_eq(ohb_session_backup_create(other, &cb, &b, &err), OHB_E_SESSION_CONFLICT);
	ohb_session_free(a);
	ck_assert_int_eq(ohb_session_backup_create(other, &cb, &b, &err), 0);
	ohb_session_free(b);
	ohb_service_close(other);
	rec_free(&r);
	fixture_down(&fx);
}
END_TEST

/* Files are applied before publishFile only where read leases work (not on
 * some network file systems, nor with fs.leases-enable=0). */
static bool
leases_work(const char *dir, const char *test)
{
	char *p = fsu_join(dir, "lease-probe");
	write_file(p, 1, 0);
	int fd = open(p, O_RDONLY);
	bool ok = fd >= 0 && fcntl(fd, F_SETLEASE, F_RDLCK) == 0;
	if (ok)
		fcntl(fd, F_SETLEASE, F_UNLCK);
	if (fd >= 0)
		close(fd);
	unlink(p);
	free(p);
	if (!ok)
		test_skip("no file leases", "session: %s", test);
	return ok;
}

/* The files of a backup saved by a recorder, in the order a restore sends them (store_list_files). */
static int
cmp_send_order(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	int mx = strcmp(x, "manage.json") == 0, my = strcmp(y, "manage.json") == 0;
	return mx != my ? my - mx : strverscmp(x, y);
}

static size_t
saved_files(const char *bdir, char **names, size_t max)
{
	DIR *d = opendir(bdir);
	ck_assert_ptr_nonnull(d);
	struct dirent *de;
	size_t n = 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && n < max)
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof *names, cmp_send_order);
	return n;
}

/* n files of 16 bytes in fx's data/many: enough entries for several tars (PACK_TAR_MAX_ENTRIES). */
static void
add_tiny_files(fixture_t *fx, int n)
{
	char *dir = fsu_join(fx->data, "many");
	ck_assert_int_eq(fsu_mkdir_p(dir, 0755, NULL), 0);
	for (int i = 0; i < n; i++) {
		char *p = fsu_printf("%s/t%05d", dir, i);
		write_file(p, 16, (unsigned)i);
		free(p);
	}
	free(dir);
}

/* Lists fx's data into ws/<name>: every path with its kind, mode and mtime,
 * then the SHA-256 of every file (no sizes: a directory's depends on how it
 * was filled, a file's is in its hash). */
static void
snapshot_data(fixture_t *fx, const char *name)
{
	char *cmd = fsu_printf("cd %s && find . -mindepth 1 -printf '%%P|%%y|%%m|%%Ts\\n' | sort > %s/%s && "
	                       "find . -type f -exec sha256sum {} + | sort >> %s/%s",
	    fx->data, fx->ws, name, fx->ws, name);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
}

/* A backup of fx's bundle saved under ws/saved (as a client would keep it);
 * the bundle's data is then replaced by one stale file. The saved files go
 * to names in send order; returns the saved folder of the bundle. */
static char *
saved_backup(fixture_t *fx, char **names, size_t *n, size_t max)
{
	char *saved = fsu_join(fx->ws, "saved");
	fsu_mkdir_p(saved, 0700, NULL);
	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	r.save_dir = saved;
	const char *bundle[] = { "com.test.app" };
	run_backup(fx, &r, bundle, 1);
	rec_free(&r);
	snapshot_data(fx, "before");
	char *wipe = fsu_printf("rm -rf %s/* && echo stale > %s/n000.txt", fx->data, fx->data);
	ck_assert_int_eq(system(wipe), 0);
	free(wipe);
	char *bdir = fsu_join(saved, "com.test.app");
	free(saved);
	*n = saved_files(bdir, names, max);
	return bdir;
}

/* fx's data is as saved_backup found it (the first differences go to stderr). */
static bool
data_is_restored(fixture_t *fx)
{
	snapshot_data(fx, "after");
	char *cmd = fsu_printf("{ diff %s/before %s/after | head -5 >&2; cmp -s %s/before %s/after; }", fx->ws, fx->ws,
	    fx->ws, fx->ws);
	bool same = system(cmd) == 0;
	free(cmd);
	return same;
}

static bool
data_is_untouched(fixture_t *fx)
{
	char *cmd = fsu_printf("test \"$(cd %s && find . -mindepth 1)\" = ./n000.txt && grep -qx stale %s/n000.txt",
	    fx->data, fx->data);
	bool same = system(cmd) == 0;
	free(cmd);
	return same;
}

/* Waits up to ms for the restore's incoming copy of uri to be gone (true) . */
static bool
incoming_gone(fixture_t *fx, const char *uri, int ms)
{
	char *p = fsu_printf("%s/bundles/com.test.app/backup/restore/incoming/%s", fx->root, uri);
	bool gone = false;
	for (int i = 0; i <= ms / 10 && !(gone = access(p, F_OK) != 0); i++)
		usleep(10000);
	free(p);
	return gone;
}

static ohb_session_t *
restore_session(fixture_t *fx, recorder_t *r, const char *from)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->lock, NULL);
	r->restore_from = from;
	r->held_fd = -1;
	int caps = -1;
	ohb_error_t err;
	ck_assert_int_eq(ohb_get_local_capabilities(fx->svc, &caps, &err), 0);
	ohb_callbacks_t cb;
	ohb_session_t *s = NULL;
	ck_assert_int_eq(ohb_session_restore_create(fx->svc, callbacks(r, &cb), &s, &err), 0);
	const char *names[] = { "com.test.app" };
	ck_assert_int_eq(ohb_session_append_restore(s, caps, names, NULL, 1, &err), 0);
	close(caps);
	return s;
}

/* Asks for files[0..n) one at a time, each when the previous was answered (as the CLI does). */
static void
send_in_turn(ohb_session_t *s, recorder_t *r, char **files, size_t n)
{
	ohb_error_t err;
	int before = count_ev(r, "file com.test.app ");
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_eq(ohb_session_get_file_handle(s, "com.test.app", files[i], &err), 0);
		for (int k = 0; k < 2000 && count_ev(r, "file com.test.app ") < before + (int)i + 1; k++)
			usleep(5000);
		ck_assert_int_eq(count_ev(r, "file com.test.app "), before + (int)i + 1);
	}
}

static void
on_sigio(int sig)
{
	(void)sig;
}

static void (*sigio_handler(void))(int)
{
	struct sigaction sa;
	ck_assert_int_eq(sigaction(SIGIO, NULL, &sa), 0);
	return sa.sa_handler;
}

/* A restore takes file leases; a broken one is signalled with SIGIO, whose
 * default ends the process: opening the service ignores it, unless the
 * program handles SIGIO itself. */
START_TEST(opening_the_service_ignores_sigio_unless_the_program_handles_it)
{
	fixture_t fx;
	signal(SIGIO, SIG_DFL);
	fixture_up(&fx, 1, 0, 0);
	ck_assert(sigio_handler() == SIG_IGN);
	fixture_down(&fx);
	signal(SIGIO, on_sigio);
	fixture_up(&fx, 1, 0, 0);
	ck_assert(sigio_handler() == on_sigio);
	fixture_down(&fx);
	signal(SIGIO, SIG_IGN);
}
END_TEST

START_TEST(restore_round_trip_through_the_api)
{
	fixture_t fx;
	fixture_up(&fx, 30, 1, 0);
	char *files[16];
	size_t n;
	char *bdir = saved_backup(&fx, files, &n, 16);
	char *saved = fsu_join(fx.ws, "saved");
	recorder_t r;
	ohb_session_t *s = restore_session(&fx, &r, saved);
	ohb_error_t err;
	ck_assert_int_eq(ohb_session_get_file_handle(s, "com.test.app", "a/b", &err), OHB_E_INVAL);
	ck_assert_int_eq(ohb_session_publish_file(s, "com.test.app", "part.0.tar", &err), OHB_E_PERM);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(ohb_session_get_file_handle(s, "com.test.app", files[i], &err), 0);
	/* every file must be written before publishing: wait until each was answered */
	for (int i = 0; i < 1000 && count_ev(&r, "file com.test.app ") < (int)n; i++)
		usleep(10000);
	ck_assert_int_eq(count_ev(&r, "file com.test.app "), (int)n);
	ck_assert_int_eq(ohb_session_publish_file(s, "com.test.app", "", &err), 0);
	ck_assert(ohb_session_wait(s, 60000));
	ck_assert_int_ge(find_ev(&r, "end com.test.app 0"), 0);
	ohb_session_free(s);
	ck_assert(data_is_restored(&fx));
	rec_free(&r);
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(bdir);
	free(saved);
	fixture_down(&fx);
}
END_TEST

/* A saved backup of a bundle with n_tiny tiny files (tars of 6 000 entries at
 * most) and n_big big files, its data then replaced by one stale file. */
typedef struct early_fixture {
	fixture_t fx;
	char *files[16];   /* the saved files, in the order a restore sends them */
	size_t n;
	char *bundle_dir;  /* ws/saved/com.test.app */
	char *saved;       /* ws/saved */
	recorder_t r;
} early_fixture_t;

static bool
early_up(early_fixture_t *e, int n_big, int n_tiny, const char *test)
{
	fixture_up(&e->fx, 30, n_big, 0);
	if (!leases_work(e->fx.ws, test)) {
		fixture_down(&e->fx);
		return false;
	}
	add_tiny_files(&e->fx, n_tiny);
	e->bundle_dir = saved_backup(&e->fx, e->files, &e->n, 16);
	e->saved = fsu_join(e->fx.ws, "saved");
	return true;
}

static void
early_down(early_fixture_t *e)
{
	rec_free(&e->r);
	for (size_t i = 0; i < e->n; i++)
		free(e->files[i]);
	free(e->saved);
	free(e->bundle_dir);
	fixture_down(&e->fx);
}

/* Publishes and checks the bundle ends well with its data restored. */
static void
publish_and_check(early_fixture_t *e, ohb_session_t *s)
{
	ohb_error_t err;
	ck_assert_int_eq(ohb_session_publish_file(s, "com.test.app", "", &err), 0);
	ck_assert(ohb_session_wait(s, 60000));
	ck_assert_int_ge(find_ev(&e->r, "end com.test.app 0"), 0);
	ohb_session_free(s);
	ck_assert(data_is_restored(&e->fx));
}

/* The service applies each file to the stage as soon as the client has closed
 * it, before publishFile; the bundle's data changes only at the commit. */
START_TEST(restore_applies_files_before_publish_and_commits_after)
{
	early_fixture_t e;
	if (!early_up(&e, 1, 40000, "restore_applies_files_before_publish_and_commits_after"))
		return;   /* seven tars and a big file */
	ck_assert_str_eq(e.files[0], "manage.json");
	ck_assert_uint_ge(e.n, 9);
	ohb_session_t *s = restore_session(&e.fx, &e.r, e.saved);
	char *incoming = fsu_printf("%s/bundles/com.test.app/backup/restore/incoming", e.fx.root);
	e.r.incoming = incoming;
	send_in_turn(s, &e.r, e.files, e.n);
	/* The client sent each file as soon as the last was answered, much faster
	 * than tars unpack: held back while the job applies one, it never had more
	 * than the one being applied, two more complete and the new one in incoming/. */
	ck_assert_int_le(e.r.most_tars, 4);
	/* every tar and the big file leave incoming/ (applied), yet the data is as it was */
	for (size_t i = 1; i < e.n; i++)
		if (strcmp(e.files[i], "all.rp") != 0)
			ck_assert_msg(incoming_gone(&e.fx, e.files[i], 20000), "%s was not applied before publishFile",
			    e.files[i]);
	ck_assert(data_is_untouched(&e.fx));
	/* an applied file cannot be sent again: 13900001 */
	ohb_error_t err;
	ck_assert_int_eq(ohb_session_get_file_handle(s, "com.test.app", "part.0.tar", &err), OHB_E_PERM);
	ck_assert_ptr_nonnull(strstr(err.message, "already received"));
	ck_assert_int_eq(ohb_session_get_file_handle(s, "com.test.app", "manage.json", &err), OHB_E_PERM);
	publish_and_check(&e, s);
	free(incoming);
	early_down(&e);
}
END_TEST

/* A file is applied only when no fd can write to it any more: a second fd the
 * client keeps (a dup) holds it back, and a file shorter than manage.json says
 * waits for the client to send it again. */
START_TEST(restore_applies_a_file_only_when_complete)
{
	early_fixture_t e;
	if (!early_up(&e, 0, 7000, "restore_applies_a_file_only_when_complete"))
		return;   /* two tars */
	ohb_session_t *s = restore_session(&e.fx, &e.r, e.saved);
	e.r.hold_uri = "part.0.tar";
	e.r.short_uri = "part.1.tar";
	e.r.short_times = 1;
	send_in_turn(s, &e.r, e.files, e.n);
	usleep(300000);
	ck_assert(!incoming_gone(&e.fx, "part.0.tar", 0));   /* still open for writing */
	ck_assert_int_ge(e.r.held_fd, 0);
	close(e.r.held_fd);
	ck_assert(incoming_gone(&e.fx, "part.0.tar", 20000));
	ck_assert(!incoming_gone(&e.fx, "part.1.tar", 300));  /* half of it: not applied */
	char *again[] = { "part.1.tar" };
	send_in_turn(s, &e.r, again, 1);                      /* sent again, whole this time */
	ck_assert(incoming_gone(&e.fx, "part.1.tar", 20000));
	ck_assert(data_is_untouched(&e.fx));
	publish_and_check(&e, s);
	early_down(&e);
}
END_TEST

/* A client that asks for every fd at once, in reverse order, is answered and
 * restores; a damaged tar of the right size fails the bundle with 13500008
 * before publishFile, and the data stays as it was. */
START_TEST(restore_takes_any_order_and_fails_a_damaged_tar_early)
{
	early_fixture_t e;
	if (!early_up(&e, 1, 13000, "restore_takes_any_order_and_fails_a_damaged_tar_early"))
		return;
	ohb_session_t *s = restore_session(&e.fx, &e.r, e.saved);
	ohb_error_t err;
	for (size_t i = e.n; i-- > 0;)
		ck_assert_int_eq(ohb_session_get_file_handle(s, "com.test.app", e.files[i], &err), 0);
	for (int k = 0; k < 2000 && count_ev(&e.r, "file com.test.app ") < (int)e.n; k++)
		usleep(5000);
	ck_assert_int_eq(count_ev(&e.r, "file com.test.app "), (int)e.n);
	publish_and_check(&e, s);
	rec_free(&e.r);

	/* the data back to one stale file; part.1.tar arrives as junk of its size */
	char *wipe = fsu_printf("rm -rf %s/* && echo stale > %s/n000.txt", e.fx.data, e.fx.data);
	ck_assert_int_eq(system(wipe), 0);
	s = restore_session(&e.fx, &e.r, e.saved);
	e.r.garble_uri = "part.1.tar";
	for (size_t i = 0; i < e.n; i++)
		if (ohb_session_get_file_handle(s, "com.test.app", e.files[i], &err) != 0)
			break;   /* the bundle may have ended already */
	ck_assert(ohb_session_wait(s, 60000));   /* ends without publishFile */
	ck_assert_int_ge(find_ev(&e.r, "end com.test.app 13500008"), 0);
	ohb_session_free(s);
	ck_assert(data_is_untouched(&e.fx));
	free(wipe);
	early_down(&e);
}
END_TEST

START_TEST(cancel_answers_by_state)
{
	fixture_t fx;
	fixture_up(&fx, 2, 0, 0);
	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	ohb_callbacks_t cb;
	ohb_session_t *s = NULL;
	ck_assert_int_eq(ohb_session_backup_create(fx.svc, callbacks(&r, &cb), &s, NULL), 0);
	ck_assert_int_eq(ohb_session_cancel(s, "com.test.nosuch"), OHB_E_CANCEL_UNKNOWN);
	const char *names[] = { "com.test.app" };
	ck_assert_int_eq(ohb_session_append_backup(s, names, NULL, 1, NULL), 0);
	ck_assert(ohb_session_wait(s, 60000));
	ck_assert_int_eq(ohb_session_cancel(s, "com.test.app"), OHB_E_CANCEL_UNKNOWN);  /* finished */
	ohb_session_free(s);
	rec_free(&r);
	fixture_down(&fx);
}
END_TEST

START_TEST(process_reports_at_least_every_250ms)
{
	fixture_t fx;
	fixture_up(&fx, 5, 4, 0);
	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	ohb_callbacks_t cb;
	ohb_session_t *s = NULL;
	ck_assert_int_eq(ohb_session_backup_create(fx.svc, callbacks(&r, &cb), &s, NULL), 0);
	const char *names[] = { "com.test.app" };
	ck_assert_int_eq(ohb_session_append_backup(s, names, NULL, 1, NULL), 0);
	/* two files a second: the bundle runs for about two seconds */
	ck_assert(ohb_update_send_rate(fx.svc, "com.test.app", 2));
	ck_assert(!ohb_update_send_rate(fx.svc, "com.test.nosuch", 2));
	ck_assert(ohb_session_wait(s, 60000));
	ohb_session_free(s);
	int begin = find_ev(&r, "begin com.test.app 0"), end = find_ev(&r, "end com.test.app");
	ck_assert_int_gt(r.at[end] - r.at[begin], 1000);
	int64_t last = r.at[begin];
	int processes = 0;
	for (int i = begin + 1; i <= end; i++) {
		if (strncmp(r.ev[i], "process ", 8) != 0)
			continue;
		ck_assert_msg(r.at[i] - last <= 400, "gap of %lld ms between progress reports",
		    (long long)(r.at[i] - last));
		last = r.at[i];
		processes++;
	}
	ck_assert_int_ge(processes, 4);
	rec_free(&r);
	fixture_down(&fx);
}
END_TEST

START_TEST(capabilities_and_version_and_info)
{
	fixture_t fx;
	fixture_up(&fx, 3, 0, 0);
	ohb_error_t err;
	int fd = -1;
	ck_assert_int_eq(ohb_get_local_capabilities(fx.svc, &fd, &err), 0);
	char *text = NULL;
	ck_assert_int_eq(fsu_read_fd(fd, 1 << 20, &text, NULL, &err), 0);
	close(fd);
	ck_assert_ptr_nonnull(strstr(text, "\"bundleInfos\""));
	ck_assert_ptr_nonnull(strstr(text, "com.test.app"));
	ck_assert_ptr_null(strstr(text, "increSpaceOccupied"));
	free(text);
	ck_assert_int_eq(ohb_get_local_capabilities_incremental(fx.svc, NULL, 0, &fd, &err), OHB_E_PARAM);
	ohb_incremental_time_t t = { "com.test.app", 0 };
	ck_assert_int_eq(ohb_get_local_capabilities_incremental(fx.svc, &t, 1, &fd, &err), 0);
	ck_assert_int_eq(fsu_read_fd(fd, 1 << 20, &text, NULL, &err), 0);
	close(fd);
	ck_assert_ptr_nonnull(strstr(text, "increSpaceOccupied"));
	free(text);
	ck_assert_int_eq(ohb_get_backup_version(fx.svc, &text, &err), 0);
	ck_assert_str_eq(text, "{\"backupVersion\":\"16.0\"}");
	free(text);
	ck_assert_int_eq(ohb_get_backup_info(fx.svc, "com.test.app", &text, &err), 0);
	ck_assert_ptr_nonnull(strstr(text, "\"spaceOccupied\""));
	free(text);
	ck_assert_int_eq(ohb_get_backup_info(fx.svc, "nope", &text, &err), OHB_E_PARAM);
	fixture_down(&fx);
}
END_TEST

/* Five bundles at once: never more than three running; priority decides who starts first. */
START_TEST(at_most_three_at_once_larger_priority_first)
{
	fixture_t fx;
	fixture_up(&fx, 2, 1, 0);
	const char *names[] = { "com.p.a", "com.p.b", "com.p.c", "com.p.d", "com.p.e" };
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(reg_bundle_add_dir(fx.root, names[i], fx.data, NULL), 0);
	const char *infos[] = { NULL, "{\"priority\":1}", NULL, "{\"priority\":9}", "{\"priority\":5}" };
	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	ohb_callbacks_t cb;
	ohb_session_t *s = NULL;
	ck_assert_int_eq(ohb_session_backup_create(fx.svc, callbacks(&r, &cb), &s, NULL), 0);
	ck_assert_int_eq(ohb_session_append_backup(s, names, infos, 5, NULL), 0);
	ck_assert(ohb_session_wait(s, 60000));
	ohb_session_free(s);
	int running = 0, peak = 0;
	for (int i = 0; i < r.n; i++) {
		if (strncmp(r.ev[i], "begin ", 6) == 0)
			running++;
		if (strncmp(r.ev[i], "end ", 4) == 0)
			running--;
		peak = running > peak ? running : peak;
	}
	ck_assert_int_le(peak, 3);
	ck_assert_int_ge(find_ev(&r, "end com.p.e 0"), 0);
	/* the first three to begin are d (9), e (5), b (1), in that order */
	int d = find_ev(&r, "begin com.p.d"), e = find_ev(&r, "begin com.p.e"), b = find_ev(&r, "begin com.p.b");
	int a = find_ev(&r, "begin com.p.a"), c = find_ev(&r, "begin com.p.c");
	ck_assert_int_lt(d, e);
	ck_assert_int_lt(e, b);
	ck_assert_int_lt(b, a);
	ck_assert_int_lt(a, c);
	rec_free(&r);
	fixture_down(&fx);
}
END_TEST


/* getBackupDataSize: REFERENCE.md's report format, -1 rules, only new entries per report, last with "". */
START_TEST(size_scan_reports_follow_reference)
{
	fixture_t fx;
	fixture_up(&fx, 20, 1, 0);
	ck_assert_int_eq(reg_bundle_add_dir(fx.root, "com.test.two", fx.data, NULL), 0);
	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	ohb_callbacks_t cb;
	ohb_session_t *s = NULL;
	ohb_error_t err;
	ck_assert_int_eq(ohb_session_backup_create(fx.svc, callbacks(&r, &cb), &s, &err), 0);
	ck_assert_int_eq(ohb_session_get_backup_data_size(s, false, NULL, 0, 50, &err), OHB_E_PARAM);
	ohb_incremental_time_t list[] = { { "com.test.app", 0 }, { "com.test.nosuch", 0 }, { "com.test.two", 1 } };
	ck_assert_int_eq(ohb_session_get_backup_data_size(s, true, list, 3, 50, &err), 0);
	ck_assert_int_eq(ohb_session_get_backup_data_size(s, true, list, 3, 50, &err), OHB_E_INVAL);
	for (int i = 0; i < 500; i++) {
		int last = last_ev(&r, "size ");
		if (last >= 0 && strstr(r.ev[last], "\"scanning\":\"\""))
			break;
		usleep(10000);
	}
	ohb_session_free(s);
	int reports = 0, entries = 0;
	for (int i = 0; i < r.n; i++) {
		if (strncmp(r.ev[i], "size ", 5) != 0)
			continue;
		reports++;
		ck_assert_ptr_nonnull(strstr(r.ev[i], "\"scaned\":["));
		for (const char *p = r.ev[i]; (p = strstr(p, "\"bundleName\"")); p++)
			entries++;
	}
	ck_assert_int_ge(reports, 1);
	ck_assert_int_eq(entries, 3);   /* each bundle exactly once over all reports */
	int last = last_ev(&r, "size ");
	ck_assert_ptr_nonnull(strstr(r.ev[last], "\"scanning\":\"\""));
	/* precise: app has no base time -> incDataSize -1; two has one -> a number; unknown -> -1 both */
	char all[8192] = "";
	for (int i = 0; i < r.n; i++)
		if (strncmp(r.ev[i], "size ", 5) == 0)
			strncat(all, r.ev[i], sizeof all - strlen(all) - 1);
	ck_assert_ptr_nonnull(strstr(all, "{\"bundleName\":\"com.test.nosuch\",\"dataSize\":-1,\"incDataSize\":-1}"));
	ck_assert_ptr_nonnull(strstr(all, "\"bundleName\":\"com.test.app\",\"dataSize\":"));
	ck_assert_ptr_null(strstr(strstr(all, "com.test.app"), "\"incDataSize\":0"));
	const char *two = strstr(all, "\"bundleName\":\"com.test.two\"");
	ck_assert_ptr_nonnull(two);
	ck_assert_ptr_null(strstr(two, "\"incDataSize\":-1}"));
	rec_free(&r);
	fixture_down(&fx);
}
END_TEST

START_TEST(imprecise_scan_is_approximate_and_has_no_incremental_size)
{
	fixture_t fx;
	fixture_up(&fx, 10, 1, 0);
	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	ohb_callbacks_t cb;
	ohb_session_t *s = NULL;
	ck_assert_int_eq(ohb_session_backup_create(fx.svc, callbacks(&r, &cb), &s, NULL), 0);
	ohb_incremental_time_t list[] = { { "com.test.app", 1 } };
	ck_assert_int_eq(ohb_session_get_backup_data_size(s, false, list, 1, 5000, NULL), 0);
	for (int i = 0; i < 500 && last_ev(&r, "size ") < 0; i++)
		usleep(10000);
	ohb_session_free(s);
	int last = last_ev(&r, "size ");
	ck_assert_int_ge(last, 0);
	ck_assert_ptr_nonnull(strstr(r.ev[last], "\"incDataSize\":-1"));
	/* a small bundle is measured exactly even by the estimate: 10 small files + one 2.5 MiB file */
	long long expect = (5 << 19);
	for (int i = 0; i < 10; i++)
		expect += 100 + i * 37;
	char want[64];
	snprintf(want, sizeof want, "\"dataSize\":%lld", expect);
	ck_assert_msg(strstr(r.ev[last], want) != NULL, "%s lacks %s", r.ev[last], want);
	rec_free(&r);
	fixture_down(&fx);
}
END_TEST

/* A rate of 0 (the session's default, set before the append) stalls a bundle
 * until raised; a tiny timer times another out with 13500003. */
START_TEST(rate_zero_stalls_and_timer_times_out)
{
	fixture_t fx;
	fixture_up(&fx, 3, 2, 0);
	ck_assert_int_eq(reg_bundle_add_dir(fx.root, "com.test.slow", fx.data, NULL), 0);
	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	ohb_callbacks_t cb;
	ohb_session_t *s = NULL;
	ck_assert_int_eq(ohb_session_backup_create(fx.svc, callbacks(&r, &cb), &s, NULL), 0);
	int code = 0;
	ck_assert(!ohb_update_timer(fx.svc, "com.test.app", 14400001, &code));
	ck_assert_int_eq(code, OHB_E_PARAM);
	ck_assert(!ohb_update_timer(fx.svc, "com.test.nosuch", 1000, &code));
	ck_assert_int_eq(code, 0);
	const char *names[] = { "com.test.app", "com.test.slow" };
	/* Paused from the start: set before the append, so not one file goes out first. */
	ck_assert(!ohb_session_set_default_send_rate(NULL, 1));
	ck_assert(!ohb_session_set_default_send_rate(s, -1));
	ck_assert(ohb_session_set_default_send_rate(s, 0));
	ck_assert_int_eq(ohb_session_append_backup(s, names, NULL, 2, NULL), 0);
	ck_assert(ohb_update_send_rate(fx.svc, "com.test.app", 0));   /* still accepted: already 0 */
	for (int i = 0; i < 200 && find_ev(&r, "begin com.test.slow") < 0; i++)
		usleep(10000);
	ck_assert(ohb_update_timer(fx.svc, "com.test.slow", 200, &code));
	usleep(600 * 1000);
	ck_assert_int_eq(find_ev(&r, "file com.test.app"), -1);   /* stalled */
	ck_assert(ohb_update_send_rate(fx.svc, "com.test.app", 900));   /* clamped to 800, runs */
	ck_assert(ohb_session_wait(s, 30000));
	ohb_session_free(s);
	ck_assert_int_ge(find_ev(&r, "end com.test.slow 13500003"), 0);
	ck_assert_int_ge(find_ev(&r, "end com.test.app 0"), 0);
	ck_assert_int_ge(find_ev(&r, "file com.test.app manage.json"), 0);
	ck_assert_int_eq(find_ev(&r, "file com.test.slow"), -1);
	rec_free(&r);
	fixture_down(&fx);
}
END_TEST

/* cancel: 0 for a running bundle (it ends with err 0, no temp files), 13500011 for one still waiting. */
START_TEST(cancel_running_and_waiting_bundles)
{
	fixture_t fx;
	fixture_up(&fx, 3, 2, 0);
	const char *names[] = { "com.c.a", "com.c.b", "com.c.c", "com.c.d" };
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(reg_bundle_add_dir(fx.root, names[i], fx.data, NULL), 0);
	ohb_service_t *one = NULL;
	ohb_service_options_t o = { fx.root, 1, 0 };   /* one at a time: b waits while a runs */
	ck_assert_int_eq(ohb_service_open(&o, &one, NULL), 0);
	recorder_t r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	ohb_callbacks_t cb;
	ohb_session_t *s = NULL;
	ck_assert_int_eq(ohb_session_backup_create(one, callbacks(&r, &cb), &s, NULL), 0);
	ck_assert_int_eq(ohb_session_append_backup(s, names, NULL, 2, NULL), 0);
	ck_assert(ohb_update_send_rate(one, "com.c.a", 0));
	for (int i = 0; i < 200 && find_ev(&r, "begin com.c.a") < 0; i++)
		usleep(10000);
	ck_assert_int_eq(ohb_session_cancel(s, "com.c.b"), OHB_E_CANCEL_UNSTARTED);
	ck_assert_int_eq(ohb_session_cancel(s, "com.c.a"), 0);
	ck_assert_int_eq(ohb_session_cancel(s, "com.c.zzz"), OHB_E_CANCEL_UNKNOWN);
	ck_assert(ohb_session_wait(s, 30000));
	ohb_session_free(s);
	ohb_service_close(one);
	ck_assert_int_ge(find_ev(&r, "end com.c.a 0"), 0);
	ck_assert_int_ge(find_ev(&r, "result com.c.a {\"resultInfo\":[{\"type\":\"CountInfo\",\"infos\":[{\"backupInfo\":\"cancelled\""), 0);
	ck_assert_int_ge(find_ev(&r, "end com.c.b 0"), 0);
	/* no temp files left in the cancelled bundle's backup dir */
	char *cmd = fsu_printf("test -z \"$(ls -A %s/bundles/com.c.a/backup 2>/dev/null)\"", fx.root);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	rec_free(&r);
	fixture_down(&fx);
}
END_TEST

/* IncrementalBackupSession through the API: all.rp arrives with manage.json; against it, only a change is sent. */
typedef struct manifest_keeper {
	recorder_t r;
	char *all_rp;    /* the all.rp text that came with manage.json */
} manifest_keeper_t;

static void
keep_file(void *u, int err, const char *msg, const ohb_file_t *f)
{
	manifest_keeper_t *k = u;
	if (f->manifest_fd >= 0) {
		free(k->all_rp);
		k->all_rp = NULL;
		ck_assert_int_eq(fsu_read_fd(f->manifest_fd, 1 << 24, &k->all_rp, NULL, NULL), 0);
		ck_assert_str_eq(f->uri, "manage.json");
		close(f->manifest_fd);
	}
	ohb_file_t copy = *f;
	copy.manifest_fd = -1;
	on_file(&k->r, err, msg, &copy);
}

START_TEST(incremental_session_sends_only_changes)
{
	fixture_t fx;
	fixture_up(&fx, 12, 1, 0);
	manifest_keeper_t k = { .r = { .lock = PTHREAD_MUTEX_INITIALIZER } };
	ohb_callbacks_t cb;
	callbacks(&k.r, &cb);
	cb.user = &k;
	cb.on_file_ready = keep_file;
	ohb_session_t *s = NULL;
	ohb_error_t err;
	const char *names[] = { "com.test.app" };
	/* a full backup: its all.rp comes with manage.json */
	ck_assert_int_eq(ohb_session_backup_create(fx.svc, &cb, &s, &err), 0);
	ck_assert_int_eq(ohb_session_append_backup(s, names, NULL, 1, &err), 0);
	ck_assert(ohb_session_wait(s, 30000));
	ohb_session_free(s);
	ck_assert_ptr_nonnull(k.all_rp);
	ck_assert_int_eq(strncmp(k.all_rp, "version=1.0&attrNum=8\n", 22), 0);
	/* change one small file (size and mtime) */
	char *p = fsu_printf("%s/n000.txt", fx.data);
	write_file(p, 777, 9);
	free(p);
	int mfd = -1;
	ck_assert_int_eq(fsu_anon_fd(NULL, k.all_rp, strlen(k.all_rp), &mfd, NULL), 0);
	rec_free(&k.r);
	k.r.n = 0;
	ohb_incremental_data_t d = { "com.test.app", fsu_now_ms() - 1000, mfd, NULL, 0 };
	ck_assert_int_eq(ohb_session_incremental_create(fx.svc, &cb, &s, &err), 0);
	ck_assert_int_eq(ohb_session_append_backup(s, names, NULL, 1, &err), OHB_E_PERM);
	ck_assert_int_eq(ohb_session_append_incremental(s, &d, 1, NULL, &err), 0);
	close(mfd);
	ck_assert(ohb_session_wait(s, 30000));
	ohb_session_free(s);
	int tars = 0, rps = 0, others = 0;
	for (int i = 0; i < k.r.n; i++) {
		char name[128];
		if (sscanf(k.r.ev[i], "file com.test.app %127s", name) != 1)
			continue;
		if (strstr(name, "_part.") && strstr(name, ".tar"))
			tars++;
		else if (strstr(name, "_part.") && strstr(name, ".rp"))
			rps++;
		else if (strcmp(name, "manage.json") != 0)
			others++;
	}
	ck_assert_int_eq(tars, 1);
	ck_assert_int_eq(rps, 1);
	ck_assert_int_eq(others, 0);   /* the unchanged big file is not sent again */
	ck_assert_ptr_nonnull(strstr(k.all_rp, "/n000.txt;"));
	free(k.all_rp);
	rec_free(&k.r);
	fixture_down(&fx);
}
END_TEST

START_TEST(clean_temp_dir_and_compatibility_info)
{
	fixture_t fx;
	fixture_up(&fx, 1, 0, 0);
	char *junk = fsu_printf("%s/bundles/com.test.app/backup/junk", fx.root);
	char *dir = fsu_printf("%s/bundles/com.test.app/backup", fx.root);
	ck_assert_int_eq(fsu_mkdir_p(dir, 0700, NULL), 0);
	ck_assert_int_eq(fsu_write_atomic(dir, "junk", "x", 1, 0600, NULL), 0);
	ck_assert(!ohb_clean_bundle_temp_dir(fx.svc, "com.test.nosuch"));
	ck_assert(ohb_clean_bundle_temp_dir(fx.svc, "com.test.app"));
	ck_assert_int_ne(access(junk, F_OK), 0);
	ck_assert_int_eq(access(dir, F_OK), 0);
	char *out = NULL;
	ohb_error_t err;
	ck_assert_int_eq(ohb_get_compatibility_info(fx.svc, "com.test.app", "v1", &out, &err), 0);
	ck_assert_str_eq(out, "");   /* no extension: nothing to say */
	free(out);
	ck_assert_int_eq(ohb_get_compatibility_info(fx.svc, "com.test.nosuch", "v1", &out, &err), OHB_E_PARAM);
	free(junk);
	free(dir);
	fixture_down(&fx);
}
END_TEST

Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("api");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, backup_callbacks_come_in_reference_order);
	tcase_add_test(tc, opening_the_service_ignores_sigio_unless_the_program_handles_it);
	tcase_add_test(tc, backup_after_capabilities_sends_what_a_walk_finds);
	tcase_add_test(tc, unknown_and_disallowed_bundles_are_refused_with_their_codes);
	tcase_add_test(tc, second_session_conflicts);
	tcase_add_test(tc, restore_round_trip_through_the_api);
	tcase_add_test(tc, restore_applies_files_before_publish_and_commits_after);
	tcase_add_test(tc, restore_applies_a_file_only_when_complete);
	tcase_add_test(tc, restore_takes_any_order_and_fails_a_damaged_tar_early);
	tcase_add_test(tc, cancel_answers_by_state);
	tcase_add_test(tc, process_reports_at_least_every_250ms);
	tcase_add_test(tc, capabilities_and_version_and_info);
	tcase_add_test(tc, at_most_three_at_once_larger_priority_first);
	tcase_add_test(tc, size_scan_reports_follow_reference);
	tcase_add_test(tc, imprecise_scan_is_approximate_and_has_no_incremental_size);
	tcase_add_test(tc, rate_zero_stalls_and_timer_times_out);
	tcase_add_test(tc, cancel_running_and_waiting_bundles);
	tcase_add_test(tc, incremental_session_sends_only_changes);
	tcase_add_test(tc, clean_temp_dir_and_compatibility_info);
	suite_add_tcase(s, tc);
	return s;
}
