/* Tests of the device-cloud sync engine (cloud_sync.c, cloud_state.c).
 *
 * The behaviours run against the dir driver (a mkdtemp cloud folder) and,
 * when rclone is installed, against `rclone serve webdav` on 127.0.0.1 that
 * the fixture starts and kills (the approach of test_cloud_driver.c). The
 * device root and the cloud are fresh folders per test. Slow transfers are
 * made with the engine's bandwidth cap (rate_limit), never with sleeps. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloud_driver.h"
#include "fsutil.h"
#include "ohbackup_cloud.h"
#include "cloud_fixture.h"
#include "skip.h"

#define BIG (20u * 1024u * 1024u)
#define MAX_EV 4096

enum { KIND_DIR, KIND_WEBDAV };

typedef struct recorder {
	pthread_mutex_t lock;
	int sync[MAX_EV];
	int sync_error[MAX_EV];
	int sync_code[MAX_EV];
	int n_sync;
	ohb_cloud_download_progress_t dl[MAX_EV];
	int n_dl;
	int dl_seen_state;                 /* getFileSyncState from inside a RUNNING callback */
	ohb_cloud_t *c;
} recorder_t;

typedef struct fixture {
	int kind;
	char *root;          /* device root */
	char *media;         /* root/media */
	char *cloud;         /* the cloud's folder */
	char url[160];
	pid_t server;
	ohb_cloud_t *c;
	recorder_t rec;
} fixture_t;

static fixture_t fx;   /* per test (checked fixtures run in the test's own process) */

/* ---- helpers ---------------------------------------------------------------- */

static void
stop_server(void)
{
	webdav_stop(fx.server);
	fx.server = -1;
}

static void
start_server(void)
{
	fx.server = webdav_start(fx.cloud, NULL, fx.url, sizeof fx.url);
}

static void
on_sync(void *user, const ohb_cloud_sync_progress_t *pg)
{
	recorder_t *r = user;
	pthread_mutex_lock(&r->lock);
	if (r->n_sync < MAX_EV) {
		r->sync[r->n_sync] = pg->state;
		r->sync_error[r->n_sync] = pg->error;
		r->sync_code[r->n_sync] = pg->code;
		r->n_sync++;
	}
	pthread_mutex_unlock(&r->lock);
}

static void
on_download(void *user, const ohb_cloud_download_progress_t *pg)
{
	recorder_t *r = user;
	ohb_cloud_file_sync_state_t st;
	int got = -1;
	if (pg->state == OHB_CLOUD_DL_RUNNING && ohb_cloud_get_file_sync_state(r->c, pg->uri, &st, NULL) == 0)
		got = (int)st;
	pthread_mutex_lock(&r->lock);
	if (r->n_dl < MAX_EV) {
		r->dl[r->n_dl] = *pg;
		r->dl[r->n_dl].uri = NULL;
		r->n_dl++;
	}
	if (got >= 0)
		r->dl_seen_state = got;
	pthread_mutex_unlock(&r->lock);
}

static void
open_engine(uint64_t rate)
{
	ohb_cloud_options_t o = {.root = fx.root, .url = fx.url, .rate_limit = rate};
	ohb_error_t err;
	int rc = ohb_cloud_open(&o, &fx.c, &err);
	ck_assert_msg(rc == 0, "open: %d %s", rc, err.message);
	fx.rec.c = fx.c;
	ck_assert_int_eq(ohb_cloud_gallery_on(fx.c, on_sync, &fx.rec, NULL), 0);
	ck_assert_int_eq(ohb_cloud_download_on(fx.c, on_download, &fx.rec, NULL), 0);
}

static void
close_engine(void)
{
	ohb_cloud_close(fx.c);
	fx.c = NULL;
}

static void
setup_common(int kind)
{
	memset(&fx, 0, sizeof fx);
	pthread_mutex_init(&fx.rec.lock, NULL);
	fx.kind = kind;
	fx.server = -1;
	fx.root = fixture_tmpdir("root");
	fx.cloud = fixture_tmpdir("cloud");
	fx.media = fsu_join(fx.root, "media");
	if (kind == KIND_WEBDAV)
		start_server();
	else
		snprintf(fx.url, sizeof fx.url, "file://%s", fx.cloud);
	open_engine(0);
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
	close_engine();
	stop_server();
	fsu_rm_rf(fx.root, NULL);
	fsu_rm_rf(fx.cloud, NULL);
	free(fx.root);
	free(fx.cloud);
	free(fx.media);
}

static void
put_local(const char *rel, const char *text)
{
	fixture_write(fx.media, rel, text, strlen(text));
}

static void
put_cloud(const char *rel, const char *text)
{
	char *m = fsu_join(fx.cloud, "media");
	fixture_write(m, rel, text, strlen(text));
	free(m);
}

/* The cloud's media folder (malloc'd path). */
static char *
cloud_media(void)
{
	return fsu_join(fx.cloud, "media");
}

/* The device's and the cloud's copy of rel are byte-identical. */
static void
assert_same_file(const char *rel)
{
	char *cm = cloud_media();
	fixture_same(fx.media, cm, rel);
	free(cm);
}

static int
last_sync(void)
{
	pthread_mutex_lock(&fx.rec.lock);
	int s = fx.rec.n_sync ? fx.rec.sync[fx.rec.n_sync - 1] : -1;
	pthread_mutex_unlock(&fx.rec.lock);
	return s;
}

static void
sync_and_wait(int expect)
{
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 20000, &err), 0);
	ck_assert_msg(last_sync() == expect, "sync ended %d, expected %d", last_sync(), expect);
}

/* Names in dir starting with prefix. */
static int
count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

static char *
find_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	char *found = NULL;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		if (!found && strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			found = strdup(de->d_name);
	if (d)
		closedir(d);
	return found;
}

static bool
wait_until_state(const char *uri, int state, int ms)
{
	int64_t end = fsu_mono_ms() + ms;
	while (fsu_mono_ms() < end) {
		if (fixture_file_state(fx.c, uri) == state)
			return true;
		usleep(5000);
	}
	return false;
}

/* ---- behaviours ----------------------------------------------------------------- */

START_TEST(converge_both_sides)
{
	put_local("a.jpg", "local a");
	put_local("Photo/1/b.jpg", "local b");
	put_cloud("c.jpg", "cloud c");
	put_cloud("Photo/2/d.jpg", "cloud d");
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/a.jpg"), OHB_CLOUD_FILE_TO_BE_UPLOADED);
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 0);
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 0);   /* coalesced */
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 20000, &err), 0);
	ck_assert_int_eq(fx.rec.n_sync, 3);
	ck_assert_int_eq(fx.rec.sync[0], OHB_CLOUD_SYNC_DOWNLOADING);
	ck_assert_int_eq(fx.rec.sync[1], OHB_CLOUD_SYNC_UPLOADING);
	ck_assert_int_eq(fx.rec.sync[2], OHB_CLOUD_SYNC_COMPLETED);
	ck_assert_int_eq(fx.rec.sync_error[2], OHB_CLOUD_ERR_NO_ERROR);
	const char *all[] = {"a.jpg", "Photo/1/b.jpg", "c.jpg", "Photo/2/d.jpg"};
	for (int i = 0; i < 4; i++)
		assert_same_file(all[i]);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/a.jpg"), OHB_CLOUD_FILE_UPLOAD_SUCCESS);
	/* the spec's spelling, with three slashes */
	ck_assert_int_eq(fixture_file_state(fx.c, "file:///media/c.jpg"), OHB_CLOUD_FILE_COMPLETED);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/Photo/2/d.jpg"), OHB_CLOUD_FILE_COMPLETED);
	/* a second run finds nothing to do and changes nothing */
	sync_and_wait(OHB_CLOUD_SYNC_COMPLETED);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/a.jpg"), OHB_CLOUD_FILE_UPLOAD_SUCCESS);
	char *cm = cloud_media();
	ck_assert_int_eq(count_prefix(fx.media, "a "), 0);
	ck_assert_int_eq(count_prefix(cm, "a "), 0);
	free(cm);
	/* the state store survives a reopen */
	close_engine();
	open_engine(0);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/a.jpg"), OHB_CLOUD_FILE_UPLOAD_SUCCESS);
	put_local("a.jpg", "local a, edited");
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/a.jpg"), OHB_CLOUD_FILE_TO_BE_UPLOADED);
}
END_TEST

START_TEST(conflict_keeps_both)
{
	put_local("x.jpg", "first");
	sync_and_wait(OHB_CLOUD_SYNC_COMPLETED);
	usleep(20 * 1000);
	put_local("x.jpg", "local edit");
	put_cloud("x.jpg", "cloud edit, longer");
	/* new on both sides with different bytes is a conflict too; equal bytes are not */
	put_local("y.jpg", "device y");
	put_cloud("y.jpg", "cloud y");
	put_local("z.jpg", "same z");
	put_cloud("z.jpg", "same z");
	sync_and_wait(OHB_CLOUD_SYNC_COMPLETED);
	size_t n;
	char *x = fixture_slurp(fx.media, "x.jpg", &n);
	ck_assert_str_eq(x, "local edit");
	free(x);
	char *cname = find_prefix(fx.media, "x (cloud conflict ");
	ck_assert_ptr_nonnull(cname);
	ck_assert(strstr(cname, ").jpg") != NULL);
	char *cc = fixture_slurp(fx.media, cname, &n);
	ck_assert_str_eq(cc, "cloud edit, longer");
	free(cc);
	assert_same_file("x.jpg");
	assert_same_file(cname);
	free(cname);
	char *yname = find_prefix(fx.media, "y (cloud conflict ");
	ck_assert_ptr_nonnull(yname);
	assert_same_file("y.jpg");
	assert_same_file(yname);
	free(yname);
	ck_assert_int_eq(count_prefix(fx.media, "z "), 0);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/z.jpg"), OHB_CLOUD_FILE_COMPLETED);
	char *cm = cloud_media();
	ck_assert_int_eq(count_prefix(cm, "x "), 1);
	free(cm);
}
END_TEST

START_TEST(stop_mid_sync)
{
	close_engine();
	open_engine(2u * 1024u * 1024u);   /* 2 MiB/s: six 1 MiB files take 3 s */
	for (int i = 0; i < 6; i++) {
		char rel[32];
		snprintf(rel, sizeof rel, "p%d.jpg", i);
		fixture_pattern(fx.media, rel, 1024 * 1024, (unsigned)i);
	}
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 0);
	ck_assert_msg(wait_until_state("file://media/p1.jpg", OHB_CLOUD_FILE_UPLOADING, 5000), "never UPLOADING");
	ck_assert_int_eq(ohb_cloud_gallery_stop(fx.c, &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 5000, &err), 0);
	ck_assert_int_eq(last_sync(), OHB_CLOUD_SYNC_STOPPED);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/p1.jpg"), OHB_CLOUD_FILE_STOPPED);
	/* nothing lost: every local file intact, every cloud file whole */
	char *cm = cloud_media();
	for (int i = 0; i < 6; i++) {
		char rel[32];
		snprintf(rel, sizeof rel, "p%d.jpg", i);
		size_t n;
		char *l = fixture_slurp(fx.media, rel, &n);
		ck_assert_ptr_nonnull(l);
		ck_assert_uint_eq(n, 1024 * 1024);
		free(l);
		char *r = fixture_slurp(cm, rel, &n);
		if (r)
			assert_same_file(rel);
		free(r);
	}
	ck_assert_ptr_null(fixture_slurp(cm, "p5.jpg", NULL));
	/* the next start resumes and completes */
	close_engine();
	open_engine(0);
	sync_and_wait(OHB_CLOUD_SYNC_COMPLETED);
	for (int i = 0; i < 6; i++) {
		char rel[32];
		snprintf(rel, sizeof rel, "p%d.jpg", i);
		assert_same_file(rel);
	}
	free(cm);
}
END_TEST

START_TEST(download_progress_and_stop)
{
	char *cm = cloud_media();
	fixture_pattern(cm, "big.bin", BIG, 7);
	close_engine();
	open_engine(64u * 1024u * 1024u);
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_download_start(fx.c, "file://media/big.bin", &err), 0);
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 20000, &err), 0);
	ck_assert_int_ge(fx.rec.n_dl, 3);
	uint64_t prev = 0;
	for (int i = 0; i < fx.rec.n_dl; i++) {
		ck_assert_uint_ge(fx.rec.dl[i].processed, prev);
		ck_assert_uint_eq(fx.rec.dl[i].size, BIG);
		prev = fx.rec.dl[i].processed;
	}
	ohb_cloud_download_progress_t last = fx.rec.dl[fx.rec.n_dl - 1];
	ck_assert_int_eq(last.state, OHB_CLOUD_DL_COMPLETED);
	ck_assert_uint_eq(last.processed, BIG);
	ck_assert_int_eq(fx.rec.dl_seen_state, OHB_CLOUD_FILE_DOWNLOADING);
	assert_same_file("big.bin");
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/big.bin"), OHB_CLOUD_FILE_COMPLETED);

	/* stop: slow it down, stop once bytes flow; no partial file is left */
	close_engine();
	char *lp = fsu_join(fx.media, "big.bin");
	unlink(lp);
	free(lp);
	fx.rec.n_dl = 0;
	open_engine(4u * 1024u * 1024u);
	ck_assert_int_eq(ohb_cloud_download_start(fx.c, "file://media/big.bin", &err), 0);
	ck_assert_int_eq(ohb_cloud_download_start(fx.c, "file://media/big.bin", &err), 22400006);
	int64_t end = fsu_mono_ms() + 5000;
	bool flowing = false;
	while (!flowing && fsu_mono_ms() < end) {
		pthread_mutex_lock(&fx.rec.lock);
		flowing = fx.rec.n_dl > 0 && fx.rec.dl[fx.rec.n_dl - 1].processed > 0;
		pthread_mutex_unlock(&fx.rec.lock);
		usleep(5000);
	}
	ck_assert(flowing);
	ck_assert_int_eq(ohb_cloud_download_stop(fx.c, "file://media/big.bin", &err), 0);
	ck_assert_int_eq(count_prefix(fx.media, "big.bin"), 0);   /* neither the file nor its .temp.download */
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 5000, &err), 0);
	ck_assert_int_eq(fx.rec.dl[fx.rec.n_dl - 1].state, OHB_CLOUD_DL_STOPPED);
	ck_assert_uint_lt(fx.rec.dl[fx.rec.n_dl - 1].processed, BIG);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/big.bin"), OHB_CLOUD_FILE_STOPPED);
	/* a missing cloud file is 13900002 at start */
	ck_assert_int_eq(ohb_cloud_download_start(fx.c, "file://media/nope.bin", &err), 13900002);
	free(cm);
}
END_TEST

/* A file deleted on one side since the last sync is deleted on the other,
 * into a trash (never a plain unlink); deleted on one side but changed on
 * the other, the changed one comes back; a cloud that lost every file is not
 * taken as "delete everything". */
START_TEST(deletions_go_to_trash)
{
	put_local("a.jpg", "a");
	put_local("b.jpg", "b");
	put_local("c.jpg", "c");
	put_cloud("d.jpg", "d");
	sync_and_wait(OHB_CLOUD_SYNC_COMPLETED);
	char *cm = cloud_media();
	char *lp = fsu_join(fx.media, "a.jpg");
	ck_assert_int_eq(unlink(lp), 0);   /* deleted on the device */
	free(lp);
	char *cp = fsu_join(cm, "b.jpg");
	ck_assert_int_eq(unlink(cp), 0);   /* deleted in the cloud */
	free(cp);
	lp = fsu_join(fx.media, "c.jpg");
	ck_assert_int_eq(unlink(lp), 0);   /* deleted on the device, edited in the cloud */
	free(lp);
	put_cloud("c.jpg", "c edited in the cloud");
	cp = fsu_join(cm, "d.jpg");
	ck_assert_int_eq(unlink(cp), 0);   /* deleted in the cloud, edited on the device */
	free(cp);
	usleep(20 * 1000);
	put_local("d.jpg", "d edited on the device");
	sync_and_wait(OHB_CLOUD_SYNC_COMPLETED);

	size_t n;
	char *got = fixture_slurp(cm, "a.jpg", NULL);
	ck_assert_ptr_null(got);
	char *tdir = fsu_printf("%s/.trash/media", fx.cloud);
	char *t = find_prefix(tdir, "a.jpg.");
	ck_assert_msg(t != NULL, "a.jpg is not in the cloud's trash");
	got = fixture_slurp(tdir, t, &n);
	ck_assert(got && n == 1 && got[0] == 'a');
	free(got);
	free(t);
	free(tdir);
	ck_assert_ptr_null(fixture_slurp(fx.media, "b.jpg", NULL));
	tdir = fsu_printf("%s/cloud/trash/gallery", fx.root);
	t = find_prefix(tdir, "b.jpg.");
	ck_assert_msg(t != NULL, "b.jpg is not in the device's trash");
	free(t);
	free(tdir);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/a.jpg"), -13900002);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/b.jpg"), -13900002);
	got = fixture_slurp(fx.media, "c.jpg", NULL);
	ck_assert_msg(got && strcmp(got, "c edited in the cloud") == 0, "c.jpg: the cloud's edit did not come back");
	free(got);
	assert_same_file("d.jpg");
	got = fixture_slurp(fx.media, "d.jpg", NULL);
	ck_assert_str_eq(got, "d edited on the device");
	free(got);

	/* The cloud loses every file: nothing is deleted on the device, all goes back up. */
	ck_assert_int_eq(fsu_rm_rf(cm, NULL), 0);
	sync_and_wait(OHB_CLOUD_SYNC_COMPLETED);
	assert_same_file("c.jpg");
	assert_same_file("d.jpg");
	free(cm);
}
END_TEST

START_TEST(upload_failure_state)
{
	/* the cloud holds a folder where the device has a file: its upload fails
	 * (dir driver only: a WebDAV server may replace the folder) */
	char *p = fsu_printf("%s/media/f.jpg", fx.cloud);
	ck_assert_int_eq(fsu_mkdir_p(p, 0755, NULL), 0);
	free(p);
	put_local("f.jpg", "a file");
	put_local("g.jpg", "fine");
	sync_and_wait(OHB_CLOUD_SYNC_UPLOAD_FAILED);
	ck_assert_int_ne(fx.rec.sync_code[fx.rec.n_sync - 1], 0);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/f.jpg"), OHB_CLOUD_FILE_UPLOAD_FAILURE);
	/* errors accumulate: the failed file does not stop the others */
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/g.jpg"), OHB_CLOUD_FILE_UPLOAD_SUCCESS);
}
END_TEST

START_TEST(uri_rules)
{
	put_local("a.jpg", "x");
	ohb_error_t err;
	ohb_cloud_file_sync_state_t s;
	const char *bad[] = {"http://media/a.jpg", "file://com.example/a.jpg", "file:///etc/passwd", "file://media/",
	    "file://media/../a.jpg", "file://media/x/./a.jpg", "file://media/%2e%2e/a.jpg", "media/a.jpg", "file://media//a"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(ohb_cloud_get_file_sync_state(fx.c, bad[i], &s, &err) == 14000002, "%s", bad[i]);
		ck_assert_int_eq(ohb_cloud_download_start(fx.c, bad[i], &err), 14000002);
	}
	ck_assert_int_eq(ohb_cloud_get_file_sync_state(fx.c, "file://media/none.jpg", &s, &err), 13900002);
	ck_assert_int_eq(ohb_cloud_get_file_sync_state(fx.c, "file://media/a.jpg", &s, &err), 0);
	ck_assert_int_eq(ohb_cloud_get_file_sync_state(fx.c, "file://media/a%2Ejpg", &s, &err), 0);
	ck_assert_int_eq(ohb_cloud_get_file_sync_state(fx.c, NULL, &s, &err), 401);
	/* a symlink in the media folder is not a file of the library */
	char *ln = fsu_join(fx.media, "link.jpg");
	ck_assert_int_eq(symlink("/etc/passwd", ln), 0);
	free(ln);
	ck_assert_int_eq(ohb_cloud_get_file_sync_state(fx.c, "file://media/link.jpg", &s, &err), 13900002);

	const char *uris[101];
	ohb_cloud_file_sync_state_t out[101];
	for (int i = 0; i < 101; i++)
		uris[i] = "file://media/a.jpg";
	ck_assert_int_eq(ohb_cloud_get_file_sync_states(fx.c, uris, 101, out, &err), 401);
	ck_assert_int_eq(ohb_cloud_get_file_sync_states(fx.c, uris, 100, out, &err), 0);
	ck_assert_int_eq(out[99], OHB_CLOUD_FILE_TO_BE_UPLOADED);
	ck_assert_int_eq(ohb_cloud_get_file_sync_states(fx.c, uris, 0, out, &err), 401);
	uris[5] = "file://media/none.jpg";
	ck_assert_int_eq(ohb_cloud_get_file_sync_states(fx.c, uris, 10, out, &err), 13900002);
	uris[5] = "file://x/none.jpg";
	ck_assert_int_eq(ohb_cloud_get_file_sync_states(fx.c, uris, 10, out, &err), 14000002);
	/* the sync never follows the symlink either */
	sync_and_wait(OHB_CLOUD_SYNC_COMPLETED);
	char *cm = cloud_media();
	ck_assert_int_eq(count_prefix(cm, "link"), 0);
	free(cm);
}
END_TEST

START_TEST(network_loss_then_recovery)
{
	close_engine();
	open_engine(2u * 1024u * 1024u);
	for (int i = 0; i < 6; i++) {
		char rel[32];
		snprintf(rel, sizeof rel, "n%d.jpg", i);
		fixture_pattern(fx.media, rel, 1024 * 1024, (unsigned)i + 40);
	}
	ohb_error_t err;
	ck_assert_int_eq(ohb_cloud_gallery_start(fx.c, &err), 0);
	ck_assert_msg(wait_until_state("file://media/n1.jpg", OHB_CLOUD_FILE_UPLOADING, 5000), "never UPLOADING");
	stop_server();
	ck_assert_int_eq(ohb_cloud_wait_idle(fx.c, 15000, &err), 0);
	ck_assert_int_eq(last_sync(), OHB_CLOUD_SYNC_UPLOAD_FAILED);
	ck_assert_int_eq(fx.rec.sync_error[fx.rec.n_sync - 1], OHB_CLOUD_ERR_NETWORK_UNAVAILABLE);
	ck_assert_int_eq(fx.rec.sync_code[fx.rec.n_sync - 1], 22400002);
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/n1.jpg"), OHB_CLOUD_FILE_UPLOAD_FAILURE);
	/* a start while the server is down fails at once in the download stage */
	sync_and_wait(OHB_CLOUD_SYNC_DOWNLOAD_FAILED);
	ck_assert_int_eq(fx.rec.sync_error[fx.rec.n_sync - 1], OHB_CLOUD_ERR_NETWORK_UNAVAILABLE);
	/* server back (on a new port): the next start completes */
	close_engine();
	start_server();
	open_engine(0);
	sync_and_wait(OHB_CLOUD_SYNC_COMPLETED);
	for (int i = 0; i < 6; i++) {
		char rel[32];
		snprintf(rel, sizeof rel, "n%d.jpg", i);
		assert_same_file(rel);
	}
	ck_assert_int_eq(fixture_file_state(fx.c, "file://media/n1.jpg"), OHB_CLOUD_FILE_UPLOAD_SUCCESS);
}
END_TEST

Suite *cloud_sync_suite(void)
{
	Suite *s = suite_create("cloud_sync");
	TCase *tc = tcase_create("dir");
	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup_dir, teardown);
	tcase_add_test(tc, converge_both_sides);
	tcase_add_test(tc, conflict_keeps_both);
	tcase_add_test(tc, stop_mid_sync);
	tcase_add_test(tc, download_progress_and_stop);
	tcase_add_test(tc, upload_failure_state);
	tcase_add_test(tc, deletions_go_to_trash);
	tcase_add_test(tc, uri_rules);
	suite_add_tcase(s, tc);
	if (webdav_have_rclone()) {
		tc = tcase_create("webdav");
		tcase_set_timeout(tc, 60);
		tcase_add_checked_fixture(tc, setup_webdav, teardown);
		tcase_add_test(tc, converge_both_sides);
		tcase_add_test(tc, conflict_keeps_both);
		tcase_add_test(tc, stop_mid_sync);
		tcase_add_test(tc, download_progress_and_stop);
		tcase_add_test(tc, network_loss_then_recovery);
		tcase_add_test(tc, deletions_go_to_trash);
		suite_add_tcase(s, tc);
	} else {
		test_skip("need rclone", "cloud_sync: the WebDAV half (apt-get install rclone)");
	}
	return s;
}
