/* Tests of the cloudSync engine's newer half: FileSync of a bundle's cloud
 * folder with getLastSyncTime, CloudFileCache (resume, needClean, cleanCache),
 * optimize space and optimizeStorage (eviction), the battery rule and the
 * state store's older format.
 *
 * Each test gets a fresh device root and cloud folder; the behaviours run on
 * the dir driver and, when rclone is installed, the transfer and optimize ones
 * again against `rclone serve webdav` on loopback (cloud_fixture.h). Slow
 * transfers come from the engine's bandwidth cap; a cloud that does not
 * answer is a SIGSTOPped server. No test depends on timing to pass. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "ohbackup_cloud.h"
#include "cloud_fixture.h"
#include "skip.h"

#define KiB 1024u
#define MiB (1024u * 1024u)
#define MAX_EV 4096
#define APP "com.example.notes"
#define APP_URI "file://" APP "/data/storage/el2/cloud/"

enum { KIND_DIR, KIND_WEBDAV };

typedef struct events {
	pthread_mutex_t lock;
	int sync[MAX_EV];
	int sync_code[MAX_EV];
	int n_sync;
	ohb_cloud_download_progress_t dl[MAX_EV];
	int n_dl;
	ohb_cloud_optimize_progress_t opt[MAX_EV];
	int n_opt;
} events_t;

typedef struct fixture {
	int kind;
	char *root, *media, *cloud, *power;
	char url[160];
	pid_t server;
	bool mounted;   /* a tmpfs on media, for the teardown to take off */
	ohb_cloud_t *c;
	events_t ev;
} fixture_t;

static fixture_t fx;

/* ---- helpers ---------------------------------------------------------------- */

static void
on_sync(void *user, const ohb_cloud_sync_progress_t *pg)
{
	events_t *e = user;
	pthread_mutex_lock(&e->lock);
	if (e->n_sync < MAX_EV) {
		e->sync[e->n_sync] = pg->state;
		e->sync_code[e->n_sync] = pg->code;
		e->n_sync++;
	}
	pthread_mutex_unlock(&e->lock);
}

static void
on_cache(void *user, const ohb_cloud_download_progress_t *pg)
{
	events_t *e = user;
	pthread_mutex_lock(&e->lock);
	if (e->n_dl < MAX_EV) {
		e->dl[e->n_dl] = *pg;
		e->dl[e->n_dl].uri = NULL;
		e->n_dl++;
	}
	pthread_mutex_unlock(&e->lock);
}

static void
on_optimize(void *user, const ohb_cloud_optimize_progress_t *pg)
{
	events_t *e = user;
	pthread_mutex_lock(&e->lock);
	if (e->n_opt < MAX_EV) {
		e->opt[e->n_opt] = *pg;
		e->opt[e->n_opt].message = NULL;
		e->n_opt++;
	}
	pthread_mutex_unlock(&e->lock);
}

static void
open_engine(uint64_t rate, unsigned free_percent)
{
	ohb_cloud_options_t o = {.root = fx.root, .url = fx.url, .rate_limit = rate, .power_supply_dir = fx.power,
	    .storage_free_percent = free_percent};
	ohb_error_t err;
	int rc = ohb_cloud_open(&o, &fx.c, &err);
	ck_assert_msg(rc == 0, "open: %d %s", rc, err.message);
	ck_assert_int_eq(ohb_cloud_gallery_on(fx.c, on_sync, &fx.ev, NULL), 0);
	ck_assert_int_eq(ohb_cloud_cache_on(fx.c, on_cache, &fx.ev, NULL), 0);
	ck_assert_int_eq(ohb_cloud_download_on(fx.c, on_cache, &fx.ev, NULL), 0);
}

static void
reopen_engine(uint64_t rate, unsigned free_percent)
{
	ohb_cloud_close(fx.c);
	open_engine(rate, free_percent);
}

/* Sets the access time of base/rel days ago (mtime kept). */
static void
age(const char *base, const char *rel, int days)
{
	char *p = fsu_join(base, rel);
	struct timespec ts[2] = {{time(NULL) - (time_t)days * 86400, 0}, {0, UTIME_OMIT}};
	ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
	free(p);
}

static int
last_sync(void)
{
	pthread_mutex_lock(&fx.ev.lock);
	int s = fx.ev.n_sync ? fx.ev.sync[fx.ev.n_sync - 1] : -1;
	pthread_mutex_unlock(&fx.ev.lock);
	return s;
}

static void
gallery_sync(void)
{
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	ck_assert_int_eq(last_sync(), OHB_CLOUD_SYNC_COMPLETED);
}

static ohb_cloud_download_progress_t
last_dl(void)
{
	pthread_mutex_lock(&fx.ev.lock);
	ohb_cloud_download_progress_t p = fx.ev.n_dl ? fx.ev.dl[fx.ev.n_dl - 1] : (ohb_cloud_download_progress_t){0};
	pthread_mutex_unlock(&fx.ev.lock);
	return p;
}

static uint64_t
wait_processed(uint64_t at_least, int ms)
{
	int64_t end = fsu_mono_ms() + ms;
	for (;;) {
		ohb_cloud_download_progress_t p = last_dl();
		if (p.processed >= at_least || fsu_mono_ms() > end)
			return p.processed;
		usleep(5000);
	}
}

static void
setup_common(int kind)
{
	memset(&fx, 0, sizeof fx);
	pthread_mutex_init(&fx.ev.lock, NULL);
	fx.kind = kind;
	fx.server = -1;
	fx.root = fixture_tmpdir("root");
	fx.cloud = fixture_tmpdir("cloud");
	fx.power = fixture_tmpdir("power");   /* no supply in it: a machine without a battery */
	fx.media = fsu_join(fx.root, "media");
	if (kind == KIND_WEBDAV)
		fx.server = webdav_start(fx.cloud, NULL, fx.url, sizeof fx.url);
	else
		snprintf(fx.url, sizeof fx.url, "file://%s", fx.cloud);
	open_engine(0, 0);
}

static void
setup_dir(void)
{
	setup_common(KIND_DIR);
}

static void
setup_webdav(void)
{
	setup_common(KIND_WEBDAV);
}

static void
teardown(void)
{
	ohb_cloud_close(fx.c);
	if (fx.mounted)
		umount2(fx.media, MNT_DETACH);
	if (fx.server > 0) {
		kill(fx.server, SIGCONT);
		webdav_stop(fx.server);
	}
	fsu_rm_rf(fx.root, NULL);
	fsu_rm_rf(fx.cloud, NULL);
	fsu_rm_rf(fx.power, NULL);
	free(fx.root);
	free(fx.cloud);
	free(fx.power);
	free(fx.media);
}

/* ---- FileSync ------------------------------------------------------------------- */

static void
install_app(void)
{
	char *dir = fsu_printf("%s/bundles/%s", fx.root, APP);
	const char *json = "{\"name\":\"" APP "\",\"versionCode\":1,\"versionName\":\"1.0\"}";
	fixture_write(dir, "bundle.json", json, strlen(json));
	free(dir);
}

START_TEST(file_sync_bundle)
{
	install_app();
	ohb_cloud_sync_t *s = NULL, *again = NULL;
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_file_sync(fx.c, APP, &s, &err), 0);
	ck_assert_int_eq(ohb_cloud_file_sync(fx.c, APP, &again, &err), 0);
	ck_assert_ptr_eq(s, again);
	ck_assert_ptr_ne(s, ohb_cloud_gallery(fx.c));
	int64_t t0 = 0;
	ck_assert_int_eq(ohb_cloud_sync_last_time(s, &t0, &err), 0);
	ck_assert_int_eq(t0, 0);

	char *app_dir = fsu_printf("%s/bundles/%s/sandbox/data/storage/el2/cloud", fx.root, APP);
	char *app_cloud = fsu_printf("%s/apps/%s", fx.cloud, APP);
	fixture_pattern(app_dir, "docs/local.txt", 3000, 1);
	fixture_pattern(app_cloud, "docs/remote.txt", 5000, 2);
	fixture_pattern(fx.media, "not-this-scope.jpg", 100, 3);   /* the gallery's: FileSync leaves it */

	ck_assert_int_eq(ohb_cloud_sync_on(s, on_sync, &fx.ev, &err), 0);
	int64_t before = fsu_now_ms();
	ck_assert_int_eq(ohb_cloud_sync_start(s, false, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	ck_assert_int_eq(last_sync(), OHB_CLOUD_SYNC_COMPLETED);
	fixture_same(app_dir, app_cloud, "docs/local.txt");
	fixture_same(app_dir, app_cloud, "docs/remote.txt");
	ck_assert(!fixture_exists(fx.cloud, "media/not-this-scope.jpg"));

	int64_t t1 = 0;
	ck_assert_int_eq(ohb_cloud_sync_last_time(s, &t1, &err), 0);
	ck_assert_int_ge(t1, before);
	ck_assert_int_le(t1, fsu_now_ms());
	int64_t tg = -1;
	ck_assert_int_eq(ohb_cloud_sync_last_time(ohb_cloud_gallery(fx.c), &tg, &err), 0);
	ck_assert_int_eq(tg, 0);   /* the gallery did not sync */

	ck_assert_int_eq(fixture_file_state(fx.c, APP_URI "docs/local.txt"), OHB_CLOUD_FILE_UPLOAD_SUCCESS);
	ck_assert_int_eq(fixture_file_state(fx.c, APP_URI "docs/remote.txt"), OHB_CLOUD_FILE_COMPLETED);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://com.example.nothere/data/storage/el2/cloud/a"), -14000002);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://" APP "/data/storage/el2/base/a"), -14000002);

	/* The listing of the scope: both files, with their states. */
	ohb_cloud_file_info_t *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(ohb_cloud_list_files(s, &v, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].path, "docs/local.txt");
	ck_assert_str_eq(v[0].uri, APP_URI "docs/local.txt");
	ck_assert(v[0].local);
	ck_assert_uint_eq(v[0].size, 3000);
	ck_assert_int_eq(v[1].state, OHB_CLOUD_FILE_COMPLETED);
	ohb_cloud_file_infos_free(v, n);

	/* getLastSyncTime survives the engine. */
	reopen_engine(0, 0);
	ck_assert_int_eq(ohb_cloud_file_sync(fx.c, APP, &s, &err), 0);
	int64_t t2 = 0;
	ck_assert_int_eq(ohb_cloud_sync_last_time(s, &t2, &err), 0);
	ck_assert_int_eq(t2, t1);

	ck_assert_int_eq(ohb_cloud_file_sync(fx.c, "com.example.nothere", &s, &err), 13900002);
	ck_assert_int_eq(ohb_cloud_file_sync(fx.c, "../evil", &s, &err), 401);
	ck_assert_int_eq(ohb_cloud_file_sync(fx.c, NULL, &s, &err), 401);
	free(app_dir);
	free(app_cloud);
}
END_TEST

/* ---- CloudFileCache -------------------------------------------------------------- */

START_TEST(cache_stop_keeps_partial_and_resumes)
{
	const size_t size = 8 * MiB;
	fixture_pattern(fx.cloud, "media/video/clip.mp4", size, 5);
	reopen_engine(2 * MiB, 0);   /* 2 MiB/s: a few seconds for the whole file */
	const char *uri = "file://media/video/clip.mp4";
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_cache_start(fx.c, uri, &err), 0);
	ck_assert_int_eq(ohb_cloud_cache_start(fx.c, uri, &err), 22400006);
	ck_assert_uint_ge(wait_processed(MiB, 20000), MiB);
	ck_assert_int_eq(ohb_cloud_cache_stop(fx.c, uri, false, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 10000, &err), 0);
	ck_assert_int_eq(last_dl().state, OHB_CLOUD_DL_STOPPED);
	off_t partial = fixture_size(fx.media, "video/clip.mp4.temp.download");
	ck_assert_int_ge(partial, (off_t)MiB / 2);
	ck_assert_int_lt(partial, (off_t)size);
	ck_assert(!fixture_exists(fx.media, "video/clip.mp4"));
	ck_assert_int_eq(fixture_file_state(fx.c, uri), OHB_CLOUD_FILE_STOPPED);

	/* The partial file is resumed: the first progress after the start is at
	 * least where it stopped, and the result is the cloud's bytes. */
	reopen_engine(0, 0);   /* the kept partial survives the engine too */
	pthread_mutex_lock(&fx.ev.lock);
	fx.ev.n_dl = 0;
	pthread_mutex_unlock(&fx.ev.lock);
	ck_assert_int_eq(ohb_cloud_cache_start(fx.c, uri, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	ck_assert_int_eq(last_dl().state, OHB_CLOUD_DL_COMPLETED);
	pthread_mutex_lock(&fx.ev.lock);
	uint64_t first = 0;
	for (int i = 0; i < fx.ev.n_dl && !first; i++)
		first = fx.ev.dl[i].processed;
	pthread_mutex_unlock(&fx.ev.lock);
	ck_assert_uint_ge(first, (uint64_t)partial);
	char *cm = fsu_join(fx.cloud, "media");
	fixture_same(fx.media, cm, "video/clip.mp4");
	free(cm);
	ck_assert(!fixture_exists(fx.media, "video/clip.mp4.temp.download"));
	ck_assert_int_eq(fixture_file_state(fx.c, uri), OHB_CLOUD_FILE_COMPLETED);
}
END_TEST

START_TEST(cache_stop_need_clean_and_changed_version)
{
	const size_t size = 6 * MiB;
	fixture_pattern(fx.cloud, "media/a.bin", size, 6);
	reopen_engine(2 * MiB, 0);
	const char *uri = "file://media/a.bin";
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_cache_start(fx.c, uri, &err), 0);
	ck_assert_uint_ge(wait_processed(MiB, 20000), MiB);
	ck_assert_int_eq(ohb_cloud_cache_stop(fx.c, uri, true, &err), 0);
	ck_assert(!fixture_exists(fx.media, "a.bin.temp.download"));   /* needClean */

	/* Kept partial, then the cloud's version changes: it starts over. */
	ck_assert_int_eq(ohb_cloud_cache_start(fx.c, uri, &err), 0);
	ck_assert_uint_ge(wait_processed(MiB, 20000), MiB);
	ck_assert_int_eq(ohb_cloud_cache_stop(fx.c, uri, false, &err), 0);
	ck_assert(fixture_exists(fx.media, "a.bin.temp.download"));
	fixture_pattern(fx.cloud, "media/a.bin", size / 2, 9);
	reopen_engine(0, 0);
	ck_assert_int_eq(ohb_cloud_cache_start(fx.c, uri, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	ck_assert_int_eq(last_dl().state, OHB_CLOUD_DL_COMPLETED);
	char *cm = fsu_join(fx.cloud, "media");
	fixture_same(fx.media, cm, "a.bin");
	free(cm);

	/* A file the cloud does not hold, a uri that is not file://. */
	ck_assert_int_eq(ohb_cloud_cache_start(fx.c, "file://media/none.bin", &err), 13900002);
	ck_assert_int_eq(ohb_cloud_cache_start(fx.c, "http://media/a.bin", &err), 14000002);
}
END_TEST

START_TEST(clean_cache_evicts_and_downloads_back)
{
	fixture_pattern(fx.media, "Photo/1.jpg", 70 * KiB, 1);
	fixture_pattern(fx.media, "Photo/2.jpg", 50 * KiB, 2);
	gallery_sync();
	const char *uri = "file://media/Photo/1.jpg";
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_cache_clean(fx.c, uri, &err), 0);
	ck_assert(!fixture_exists(fx.media, "Photo/1.jpg"));
	ck_assert_int_eq(fixture_file_state(fx.c, uri), OHB_CLOUD_FILE_UPLOAD_SUCCESS);   /* the entry stays */
	ck_assert_int_eq(ohb_cloud_cache_clean(fx.c, uri, &err), 0);                      /* again: nothing local, fine */

	ohb_cloud_file_info_t *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(ohb_cloud_list_files(ohb_cloud_gallery(fx.c), &v, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].path, "Photo/1.jpg");
	ck_assert(!v[0].local);
	ck_assert(v[0].evicted);
	ck_assert_uint_eq(v[0].size, 70 * KiB);
	ohb_cloud_file_infos_free(v, n);

	/* A sync leaves the evicted file in the cloud. */
	gallery_sync();
	ck_assert(!fixture_exists(fx.media, "Photo/1.jpg"));
	ck_assert(fixture_exists(fx.cloud, "media/Photo/1.jpg"));

	/* Download brings it back byte for byte. */
	ck_assert_int_eq(ohb_cloud_download_start(fx.c, uri, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	char *cm = fsu_join(fx.cloud, "media");
	fixture_same(fx.media, cm, "Photo/1.jpg");
	free(cm);
	ck_assert_int_eq(fixture_file_state(fx.c, uri), OHB_CLOUD_FILE_COMPLETED);

	/* A changed local copy, a never-synced one and an unknown one are refused. */
	fixture_pattern(fx.media, "Photo/2.jpg", 51 * KiB, 3);
	ck_assert_int_eq(ohb_cloud_cache_clean(fx.c, "file://media/Photo/2.jpg", &err), 13900001);
	ck_assert_int_eq(fixture_size(fx.media, "Photo/2.jpg"), 51 * KiB);
	fixture_pattern(fx.media, "Photo/new.jpg", 10, 4);
	ck_assert_int_eq(ohb_cloud_cache_clean(fx.c, "file://media/Photo/new.jpg", &err), 13900001);
	ck_assert(fixture_exists(fx.media, "Photo/new.jpg"));
	ck_assert_int_eq(ohb_cloud_cache_clean(fx.c, "file://media/Photo/none.jpg", &err), 13900002);
	ck_assert_int_eq(ohb_cloud_cache_clean(fx.c, "file://media/../x", &err), 14000002);
}
END_TEST

/* ---- optimize space ----------------------------------------------------------------- */

/* Six synced files of 100 KiB with accesses 10..60 days old (f1 oldest), one
 * synced file read today, one old file never uploaded, one old file changed
 * since its upload. */
static void
aged_library(void)
{
	for (int i = 1; i <= 6; i++) {
		char rel[32];
		snprintf(rel, sizeof rel, "old/f%d.jpg", i);
		fixture_pattern(fx.media, rel, 100 * KiB, (unsigned)i);
	}
	fixture_pattern(fx.media, "recent.jpg", 100 * KiB, 7);
	fixture_pattern(fx.media, "changed.jpg", 100 * KiB, 8);
	gallery_sync();
	fixture_pattern(fx.media, "changed.jpg", 100 * KiB, 9);     /* not uploaded yet */
	fixture_pattern(fx.media, "unsynced.jpg", 100 * KiB, 10);   /* never uploaded */
	for (int i = 1; i <= 6; i++) {
		char rel[32];
		snprintf(rel, sizeof rel, "old/f%d.jpg", i);
		age(fx.media, rel, 70 - i * 10);
	}
	age(fx.media, "changed.jpg", 400);
	age(fx.media, "unsynced.jpg", 400);
}

static int
opt_last(ohb_cloud_optimize_progress_t *out)
{
	pthread_mutex_lock(&fx.ev.lock);
	int n = fx.ev.n_opt;
	if (n && out)
		*out = fx.ev.opt[n - 1];
	pthread_mutex_unlock(&fx.ev.lock);
	return n;
}

START_TEST(optimize_space_frees_oldest_uploaded)
{
	aged_library();
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_optimize_start(fx.c, 250 * KiB, 5, NULL, NULL, &err), 401);
	ck_assert_int_eq(ohb_cloud_optimize_start(fx.c, 0, 5, on_optimize, &fx.ev, &err), 401);
	ck_assert_int_eq(ohb_cloud_optimize_start(fx.c, 250 * KiB, 15, on_optimize, &fx.ev, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	ohb_cloud_optimize_progress_t last;
	int n = opt_last(&last);
	ck_assert_int_ge(n, 2);
	ck_assert_int_eq(last.state, OHB_CLOUD_OPT_COMPLETED);
	ck_assert_int_eq(last.progress, 100);
	ck_assert_uint_ge(last.freed, 250 * KiB);
	ck_assert_uint_eq(last.files, 3);
	/* RUNNING events climb. */
	pthread_mutex_lock(&fx.ev.lock);
	for (int i = 1; i < fx.ev.n_opt; i++)
		ck_assert_int_ge(fx.ev.opt[i].progress, fx.ev.opt[i - 1].progress);
	ck_assert_int_eq(fx.ev.opt[0].state, OHB_CLOUD_OPT_RUNNING);
	pthread_mutex_unlock(&fx.ev.lock);
	/* Oldest access first: f1, f2, f3 went; f4.. stay; the rest never qualify. */
	ck_assert(!fixture_exists(fx.media, "old/f1.jpg"));
	ck_assert(!fixture_exists(fx.media, "old/f2.jpg"));
	ck_assert(!fixture_exists(fx.media, "old/f3.jpg"));
	ck_assert(fixture_exists(fx.media, "old/f4.jpg"));
	ck_assert(fixture_exists(fx.media, "recent.jpg"));
	ck_assert(fixture_exists(fx.media, "changed.jpg"));
	ck_assert(fixture_exists(fx.media, "unsynced.jpg"));

	/* Candidates run out before totalSize: COMPLETED below 100, still no
	 * un-uploaded file touched. */
	pthread_mutex_lock(&fx.ev.lock);
	fx.ev.n_opt = 0;
	pthread_mutex_unlock(&fx.ev.lock);
	ck_assert_int_eq(ohb_cloud_optimize_start(fx.c, 100 * MiB, 15, on_optimize, &fx.ev, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	opt_last(&last);
	ck_assert_int_eq(last.state, OHB_CLOUD_OPT_COMPLETED);
	ck_assert_int_lt(last.progress, 100);
	ck_assert_uint_eq(last.files, 2);   /* f4, f5: f6 was read 10 days ago */
	ck_assert(fixture_exists(fx.media, "old/f6.jpg"));
	ck_assert(fixture_exists(fx.media, "recent.jpg"));
	ck_assert(fixture_exists(fx.media, "changed.jpg"));
	ck_assert(fixture_exists(fx.media, "unsynced.jpg"));

	/* Every evicted file downloads back byte-identical. */
	char *cm = fsu_join(fx.cloud, "media");
	for (int i = 1; i <= 6; i++) {
		char rel[32], uri[64];
		snprintf(rel, sizeof rel, "old/f%d.jpg", i);
		snprintf(uri, sizeof uri, "file://media/%s", rel);
		ck_assert_int_eq(ohb_cloud_download_start(fx.c, uri, &err), 0);
		ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
		fixture_same(fx.media, cm, rel);
	}
	free(cm);
}
END_TEST

/* The cloud stops answering (SIGSTOP): a second start gets 22400006, stop
 * ends the run STOPPED once the cloud answers again. WebDAV only. */
static void *
stopper(void *arg)
{
	(void)arg;
	ohb_cloud_optimize_stop(fx.c, NULL);
	return NULL;
}

START_TEST(optimize_space_busy_and_stop)
{
	aged_library();
	ohb_error_t err;
	ck_assert_int_eq(kill(fx.server, SIGSTOP), 0);
	ck_assert_int_eq(ohb_cloud_optimize_start(fx.c, 250 * KiB, 5, on_optimize, &fx.ev, &err), 0);
	ck_assert_int_eq(ohb_cloud_optimize_start(fx.c, 250 * KiB, 5, on_optimize, &fx.ev, &err), 22400006);
	ck_assert_int_eq(ohb_cloud_optimize_storage(fx.c, &err), 0);   /* plenty of free space: nothing to do */
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, stopper, NULL), 0);
	usleep(200 * 1000);
	ck_assert_int_eq(kill(fx.server, SIGCONT), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	ohb_cloud_optimize_progress_t last;
	opt_last(&last);
	ck_assert_int_eq(last.state, OHB_CLOUD_OPT_STOPPED);
	ck_assert_uint_le(last.files, 1);   /* at most the one in flight */
	/* Killed server: the run fails with network unavailable. */
	webdav_stop(fx.server);
	fx.server = -1;
	ck_assert_int_eq(ohb_cloud_optimize_start(fx.c, 250 * KiB, 5, on_optimize, &fx.ev, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 60000, &err), 0);
	opt_last(&last);
	ck_assert_int_eq(last.state, OHB_CLOUD_OPT_FAILED);
	ck_assert_int_eq(last.code, 22400002);
	ck_assert(fixture_exists(fx.media, "old/f3.jpg"));
}
END_TEST

START_TEST(optimize_storage_by_free_space)
{
	aged_library();
	ohb_error_t err;
	/* 1 %: the file system has that free already: nothing goes. */
	reopen_engine(0, 1);
	ck_assert_int_eq(ohb_cloud_optimize_storage(fx.c, &err), 0);
	ck_assert(fixture_exists(fx.media, "old/f1.jpg"));
	/* 100 %: never reached, so every file aged 30 days or more goes. */
	reopen_engine(0, 100);
	ck_assert_int_eq(ohb_cloud_optimize_storage(fx.c, &err), 0);
	ck_assert(!fixture_exists(fx.media, "old/f1.jpg"));   /* 60 days */
	ck_assert(!fixture_exists(fx.media, "old/f4.jpg"));   /* 30 days */
	ck_assert(fixture_exists(fx.media, "old/f5.jpg"));    /* 20 days */
	ck_assert(fixture_exists(fx.media, "recent.jpg"));
	ck_assert(fixture_exists(fx.media, "changed.jpg"));
	ck_assert(fixture_exists(fx.media, "unsynced.jpg"));
}
END_TEST

/* ---- battery ------------------------------------------------------------------------ */

static void
battery(int capacity, const char *status, const char *mains_online)
{
	char *bat = fsu_join(fx.power, "BAT0");
	char *ac = fsu_join(fx.power, "AC");
	char buf[32];
	fixture_write(bat, "type", "Battery\n", 8);
	snprintf(buf, sizeof buf, "%d\n", capacity);
	fixture_write(bat, "capacity", buf, strlen(buf));
	fixture_write(bat, "status", status, strlen(status));
	if (mains_online) {
		fixture_write(ac, "type", "Mains\n", 6);
		fixture_write(ac, "online", mains_online, strlen(mains_online));
	}
	free(bat);
	free(ac);
}

START_TEST(battery_rule)
{
	ohb_error_t err;
	int pct;
	bool charging;
	ck_assert_int_eq(ohb_cloud_battery(fx.c, &pct, &charging, &err), 0);
	ck_assert_int_eq(pct, -1);   /* no battery: allowed */
	fixture_pattern(fx.media, "a.jpg", 10, 1);

	battery(5, "Discharging\n", NULL);
	ck_assert_int_eq(ohb_cloud_battery(fx.c, &pct, &charging, &err), 0);
	ck_assert_int_eq(pct, 5);
	ck_assert(!charging);
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 22400003);
	ck_assert_int_eq(ohb_cloud_sync_start(ohb_cloud_gallery(fx.c), true, &err), 22400003);   /* < 10: even forced */
	ck_assert(strstr(err.message, "5 %") != NULL);

	battery(12, "Discharging\n", NULL);
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 22400003);
	ck_assert_int_eq(ohb_cloud_sync_start(ohb_cloud_gallery(fx.c), true, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	ck_assert_int_eq(last_sync(), OHB_CLOUD_SYNC_COMPLETED);

	battery(5, "Charging\n", NULL);
	gallery_sync();
	battery(5, "Discharging\n", "1\n");   /* on mains */
	gallery_sync();
	battery(5, "Discharging\n", "0\n");
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 22400003);
	battery(80, "Discharging\n", "0\n");
	gallery_sync();
}
END_TEST

/* The battery is looked at again every 5 s while a run goes (before each file):
 * a run that starts at 80 % and drops to 5 % ends UPLOAD_FAILED with 22400003
 * before it has sent everything, and keeps every local file. 16 files of
 * 512 KiB at 1 MiB/s take 8 s, so the look at 5 s comes with files left. */
START_TEST(battery_drop_ends_a_running_sync)
{
	enum { FILES = 16 };
	battery(80, "Discharging\n", NULL);
	reopen_engine(1 * MiB, 0);
	char rel[32];
	for (int i = 0; i < FILES; i++) {
		snprintf(rel, sizeof rel, "clip%02d.mp4", i);
		fixture_pattern(fx.media, rel, 512 * KiB, (unsigned)i);
	}
	ohb_error_t err;
	int64_t t0 = fsu_mono_ms();
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 0);
	int64_t end = t0 + 9000;
	while (last_sync() != OHB_CLOUD_SYNC_UPLOADING && fsu_mono_ms() < end)
		usleep(2000);
	ck_assert_int_eq(last_sync(), OHB_CLOUD_SYNC_UPLOADING);   /* the first progress event of the upload */
	battery(5, "Discharging\n", NULL);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 9000, &err), 0);
	pthread_mutex_lock(&fx.ev.lock);
	int last = fx.ev.n_sync - 1;
	ck_assert_int_ge(last, 0);
	int state = fx.ev.sync[last], code = fx.ev.sync_code[last];
	pthread_mutex_unlock(&fx.ev.lock);
	ck_assert_int_eq(state, OHB_CLOUD_SYNC_UPLOAD_FAILED);
	ck_assert_int_eq(code, 22400003);
	int sent = 0;
	for (int i = 0; i < FILES; i++) {
		snprintf(rel, sizeof rel, "clip%02d.mp4", i);
		ck_assert_int_eq(fixture_size(fx.media, rel), 512 * KiB);   /* nothing lost on the device */
		char *crel = fsu_join("media", rel);
		sent += fixture_exists(fx.cloud, crel);
		free(crel);
	}
	ck_assert_int_lt(sent, FILES);   /* it ended before the last file */
	ck_assert_int_lt(fsu_mono_ms() - t0, 10000);
}
END_TEST

/* ---- listing the cloud ------------------------------------------------------------------ */

static ohb_cloud_sync_status_t
listed(ohb_cloud_sync_t *s)
{
	ohb_cloud_sync_status_t st;
	ohb_error_t err;
	int64_t end = fsu_mono_ms() + 20000;
	do {
		ck_assert_int_eq(ohb_cloud_sync_get_status(s, &st, &err), 0);
		if (!st.listing)
			return st;
		usleep(5000);
	} while (fsu_mono_ms() < end);
	ck_abort_msg("the listing did not end");
	return st;
}

static const ohb_cloud_file_info_t *
info_of(const ohb_cloud_file_info_t *v, size_t n, const char *path)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].path, path) == 0)
			return &v[i];
	return NULL;
}

START_TEST(remote_listing_shows_cloud_only_files)
{
	fixture_pattern(fx.media, "mine.jpg", 1000, 1);
	gallery_sync();
	fixture_pattern(fx.cloud, "media/new/r1.jpg", 3000, 2);   /* put there by another device */
	ohb_cloud_sync_t *g = ohb_cloud_gallery(fx.c);
	ohb_cloud_file_info_t *v = NULL;
	size_t n = 0;
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_list_files(g, &v, &n, &err), 0);
	ck_assert_ptr_null(info_of(v, n, "new/r1.jpg"));   /* not listed yet */
	ohb_cloud_file_infos_free(v, n);

	int64_t before = fsu_now_ms();
	ck_assert_int_eq(ohb_cloud_sync_list_remote(g, &err), 0);
	ohb_cloud_sync_status_t st = listed(g);
	ck_assert_int_eq(st.list_code, 0);
	ck_assert_int_ge(st.listed_ms, before);
	ck_assert_int_eq(ohb_cloud_list_files(g, &v, &n, &err), 0);
	ck_assert_uint_eq(n, 2);
	const ohb_cloud_file_info_t *r = info_of(v, n, "new/r1.jpg");
	ck_assert_ptr_nonnull(r);
	ck_assert(r->remote_only && !r->local && !r->evicted);
	ck_assert_uint_eq(r->size, 3000);
	ck_assert_str_eq(r->uri, "file://media/new/r1.jpg");
	const ohb_cloud_file_info_t *m = info_of(v, n, "mine.jpg");
	ck_assert(m && m->local && !m->remote_only);
	ohb_cloud_file_infos_free(v, n);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/new/r1.jpg"), -13900002);   /* no state until it comes */
	ck_assert(!fixture_exists(fx.media, "new/r1.jpg"));                                 /* a listing moves nothing */

	/* Pulled down on demand: now a local, synced file. */
	ck_assert_int_eq(ohb_cloud_download_start(fx.c, "file://media/new/r1.jpg", &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 20000, &err), 0);
	ck_assert_int_eq(ohb_cloud_list_files(g, &v, &n, &err), 0);
	r = info_of(v, n, "new/r1.jpg");
	ck_assert(r && r->local && !r->remote_only);
	ck_assert_int_eq(r->state, OHB_CLOUD_FILE_COMPLETED);
	ohb_cloud_file_infos_free(v, n);

	/* Switched off: the listing ends with 22400001 and keeps what it knew. */
	ohb_cloud_close(fx.c);
	ohb_cloud_options_t o = {.root = fx.root, .url = fx.url, .power_supply_dir = fx.power, .switched_off = true};
	ck_assert_int_eq(ohb_cloud_open(&o, &fx.c, &err), 0);
	g = ohb_cloud_gallery(fx.c);
	ck_assert_int_eq(ohb_cloud_sync_list_remote(g, &err), 0);
	st = listed(g);
	ck_assert_int_eq(st.list_code, 22400001);
	ck_assert(strstr(st.list_message, "switched off") != NULL);
}
END_TEST

/* ---- a full device ------------------------------------------------------------------ */

START_TEST(full_device_download)
{
	/* The media folder on a 1 MiB tmpfs (needs root; skipped otherwise). */
	ck_assert_int_eq(fsu_mkdir_p(fx.media, 0755, NULL), 0);
	ohb_cloud_close(fx.c);   /* its threads would keep the test from a mount namespace of its own */
	fx.c = NULL;
	fx.mounted = fixture_mount_tmpfs(fx.media, "size=1m", "cloud_space: the full-device test");
	open_engine(0, 0);
	if (!fx.mounted)
		return;
	fixture_pattern(fx.media, "keep.jpg", 100 * KiB, 1);
	fixture_pattern(fx.cloud, "media/huge.mp4", 3 * MiB, 2);
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_download_start(fx.c, "file://media/huge.mp4", &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	ohb_cloud_download_progress_t p = last_dl();
	ck_assert_int_eq(p.state, OHB_CLOUD_DL_FAILED);
	ck_assert_int_eq(p.error, OHB_CLOUD_DLERR_LOCAL_STORAGE_FULL);
	ck_assert(!fixture_exists(fx.media, "huge.mp4"));
	ck_assert(!fixture_exists(fx.media, "huge.mp4.temp.download"));
	ck_assert_int_eq(fixture_size(fx.media, "keep.jpg"), 100 * KiB);
	/* A sync meets the same: DOWNLOAD_FAILED with LOCAL_STORAGE_FULL, nothing lost. */
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 30000, &err), 0);
	pthread_mutex_lock(&fx.ev.lock);
	int last = fx.ev.n_sync - 1;
	ck_assert_int_ge(last, 0);
	ck_assert_int_eq(fx.ev.sync[last], OHB_CLOUD_SYNC_DOWNLOAD_FAILED);
	ck_assert_int_eq(fx.ev.sync_code[last], 13900025);
	pthread_mutex_unlock(&fx.ev.lock);
	ck_assert(!fixture_exists(fx.media, "huge.mp4.temp.download"));
	ck_assert_int_eq(fixture_size(fx.media, "keep.jpg"), 100 * KiB);
	ohb_cloud_close(fx.c);
	fx.c = NULL;
	ck_assert_int_eq(umount(fx.media), 0);
	fx.mounted = false;
	open_engine(0, 0);
}
END_TEST

/* ---- state store format 1 ------------------------------------------------------------ */

START_TEST(state_store_v1_is_read)
{
	fixture_pattern(fx.media, "x.jpg", 1234, 1);
	struct stat st;
	char *p = fsu_join(fx.media, "x.jpg");
	ck_assert_int_eq(stat(p, &st), 0);
	free(p);
	char line[256];
	snprintf(line, sizeof line, "ohbackup-cloud-state 1\n5\t1\t1234\t%lld\tetag-1\tx.jpg\n",
	    (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
	char *dir = fsu_join(fx.root, "cloud");
	ck_assert_int_eq(fsu_write_atomic(dir, "state", line, strlen(line), 0600, NULL), 0);
	free(dir);
	reopen_engine(0, 0);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/x.jpg"), OHB_CLOUD_FILE_UPLOAD_SUCCESS);
}
END_TEST

Suite *cloud_space_suite(void)
{
	Suite *s = suite_create("cloud_space");
	TCase *tc = tcase_create("dir");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup_dir, teardown);
	tcase_add_test(tc, file_sync_bundle);
	tcase_add_test(tc, cache_stop_keeps_partial_and_resumes);
	tcase_add_test(tc, cache_stop_need_clean_and_changed_version);
	tcase_add_test(tc, clean_cache_evicts_and_downloads_back);
	tcase_add_test(tc, optimize_space_frees_oldest_uploaded);
	tcase_add_test(tc, optimize_storage_by_free_space);
	tcase_add_test(tc, battery_rule);
	tcase_add_test(tc, battery_drop_ends_a_running_sync);
	tcase_add_test(tc, state_store_v1_is_read);
	tcase_add_test(tc, full_device_download);
	tcase_add_test(tc, remote_listing_shows_cloud_only_files);
	suite_add_tcase(s, tc);
	if (webdav_have_rclone()) {
		tc = tcase_create("webdav");
		tcase_set_timeout(tc, 180);
		tcase_add_checked_fixture(tc, setup_webdav, teardown);
		tcase_add_test(tc, cache_stop_keeps_partial_and_resumes);
		tcase_add_test(tc, clean_cache_evicts_and_downloads_back);
		tcase_add_test(tc, optimize_space_frees_oldest_uploaded);
		tcase_add_test(tc, optimize_space_busy_and_stop);
		tcase_add_test(tc, remote_listing_shows_cloud_only_files);
		suite_add_tcase(s, tc);
	} else {
		test_skip("need rclone", "cloud_space: the WebDAV cases");
	}
	return s;
}
