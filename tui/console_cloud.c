/*
 * console_cloud — the cloudSync engine as the console uses it (see
 * console_cloud.h): opening and closing it, the sync scopes, the callbacks
 * that turn engine events into queue events, and the actions behind the
 * Cloud screen's keys.
 *
 * Everything the operator asks for that the engine refuses is shown as the
 * spec's code and the engine's sentence (ohb_error_t), on the status line and
 * on the row it concerns, so the screen never says "failed" without why.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_cloud.h"
#include "console.h"
#include "fsutil.h"

#define DEFAULT_OPT_TOTAL (1024ull * 1024 * 1024)   /* the spec's example: totalSize 1 GiB */
#define DEFAULT_OPT_DAYS 30u                         /* and agingDays 30 (optimizeStorage's too) */
#define POLL_MS 900                                  /* the once-a-second tick, with slack */
#define STATES_MAX 100                               /* ohb_cloud_get_file_sync_states takes at most 100 uris */

/* ---- callbacks: the engine's dispatcher thread. Post an event, nothing else. ---- */

static char *
dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static void
on_sync(void *user, const ohb_cloud_sync_progress_t *pg)
{
	cloud_listener_t *l = user;
	cev_t ev = { CEV_CLOUD_SYNC, l->scope, pg->code, { (uint64_t)pg->state, (uint64_t)pg->error, 0, 0 },
		dup_or_null(pg->message), NULL, 0 };
	cevq_push(l->q, ev);
}

static void
on_download(void *user, const ohb_cloud_download_progress_t *pg)
{
	cev_t ev = { CEV_CLOUD_DOWNLOAD, -1, 0, { (uint64_t)pg->state, pg->processed, pg->size, (uint64_t)pg->error },
		dup_or_null(pg->uri), NULL, 0 };
	cevq_push(user, ev);
}

static void
on_optimize(void *user, const ohb_cloud_optimize_progress_t *pg)
{
	cev_t ev = { CEV_CLOUD_OPTIMIZE, pg->progress, pg->code, { (uint64_t)pg->state, pg->freed, pg->total, pg->files },
		dup_or_null(pg->message), NULL, 0 };
	cevq_push(user, ev);
}

/* ---- main thread ---- */

static bool
sync_final(ohb_cloud_sync_state_t s)
{
	return s != OHB_CLOUD_SYNC_UPLOADING && s != OHB_CLOUD_SYNC_DOWNLOADING;
}

static cloud_scope_t *
cur_scope(console_t *c)
{
	return c->cloud.cur < c->cloud.n_scopes ? &c->cloud.scopes[c->cloud.cur] : NULL;
}

static void
add_scope(cloud_ui_t *u, const char *name)
{
	for (size_t i = 0; i < u->n_scopes; i++)
		if (strcmp(u->scopes[i].name, name) == 0)
			return;
	cloud_scope_t *v = realloc(u->scopes, (u->n_scopes + 1) * sizeof *v);
	if (!v)
		return;
	u->scopes = v;
	memset(&v[u->n_scopes], 0, sizeof v[0]);
	snprintf(v[u->n_scopes].name, sizeof v[0].name, "%s", name);
	u->n_scopes++;
}

/* Scope 0 is the gallery; then the capability file's bundles, in its order. */
static void
add_scopes(console_t *c)
{
	add_scope(&c->cloud, "gallery");
	for (size_t i = 0; i < c->n_brows; i++)
		add_scope(&c->cloud, c->brows[i].name);
}

static void
read_last_time(cloud_scope_t *s)
{
	ohb_error_t e = { 0, "" };
	int64_t ms = 0;
	if (s->s && ohb_cloud_sync_last_time(s->s, &ms, &e) == 0)
		s->last_sync_ms = ms;
}

/* GallerySync, or new FileSync(bundle), once per scope; its listener posts
 * with the scope's index. */
static void
open_scope(console_t *c, size_t i)
{
	cloud_ui_t *u = &c->cloud;
	cloud_scope_t *s = &u->scopes[i];
	if (s->tried || !u->eng)
		return;
	s->tried = true;
	ohb_error_t e = { 0, "" };
	if (i == 0) {
		s->s = ohb_cloud_gallery(u->eng);
	} else if ((s->open_code = ohb_cloud_file_sync(u->eng, s->name, &s->s, &e)) != 0) {
		s->s = NULL;
		snprintf(s->open_message, sizeof s->open_message, "%s", e.message);
		return;
	}
	s->listener = malloc(sizeof *s->listener);
	if (!s->listener) {
		s->open_code = OHB_E_NOMEM;
		snprintf(s->open_message, sizeof s->open_message, "out of memory");
		s->s = NULL;
		return;
	}
	*s->listener = (cloud_listener_t){ &c->evq, (int)i };
	if ((s->open_code = ohb_cloud_sync_on(s->s, on_sync, s->listener, &e)) != 0) {
		snprintf(s->open_message, sizeof s->open_message, "on('progress'): %s", e.message);
		s->s = NULL;
		return;
	}
	read_last_time(s);
}

static void
read_battery(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	ohb_error_t e = { 0, "" };
	u->battery_code = u->eng ? ohb_cloud_battery(u->eng, &u->battery, &u->charging, &e) : 0;
}

/* The highlighted file or NULL; valid until the next refresh_files. */
static const ohb_cloud_file_info_t *
cloud_current_file(const console_t *c)
{
	const cloud_ui_t *u = &c->cloud;
	if (!u->view || u->cursor >= u->n_view || u->view[u->cursor] >= u->n_files)
		return NULL;
	return &u->files[u->view[u->cursor]];
}

/* The uri of the highlighted file, "" when none: what a new listing or
 * filter keeps highlighted (the row index would point elsewhere). */
static void
current_uri(const console_t *c, char *buf, size_t size)
{
	const ohb_cloud_file_info_t *f = cloud_current_file(c);
	snprintf(buf, size, "%s", f ? f->uri : "");
}

/* The filtered view of u->files, with the cursor on `keep` when it is still
 * shown, else on the first row. */
static void
rebuild_view(console_t *c, const char *keep)
{
	cloud_ui_t *u = &c->cloud;
	u->n_view = 0;
	u->cursor = 0;
	for (size_t i = 0; u->view && i < u->n_files; i++) {
		if (!list_match(u->files[i].path, u->filter))
			continue;
		if (keep[0] && strcmp(u->files[i].uri, keep) == 0)
			u->cursor = u->n_view;
		u->view[u->n_view++] = i;
	}
	wf_coalesce_mark(&c->redraw);
}

static void
refresh_files(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	cloud_scope_t *s = cur_scope(c);
	ohb_cloud_file_info_t *v = NULL;
	size_t n = 0;
	ohb_error_t e = { 0, "" };
	if (!s || !s->s)
		return;
	u->files_code = ohb_cloud_list_files(s->s, &v, &n, &e);
	if (u->files_code) {
		snprintf(u->files_message, sizeof u->files_message, "%s", e.message);
		return;   /* keep the last good listing on screen, with the error above it */
	}
	char keep[1024];
	current_uri(c, keep, sizeof keep);   /* before the old listing is freed */
	ohb_cloud_file_infos_free(u->files, u->n_files);
	free(u->view);
	u->files = v;
	u->n_files = n;
	u->view = calloc(n ? n : 1, sizeof *u->view);
	u->n_evicted = u->n_remote = 0;
	for (size_t i = 0; i < n; i++) {
		u->n_evicted += v[i].evicted;
		u->n_remote += v[i].remote_only;
	}
	rebuild_view(c, keep);
}

void
cloud_view(console_t *c)
{
	char keep[1024];
	current_uri(c, keep, sizeof keep);
	rebuild_view(c, keep);
}

void
cloud_enter(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	if (!u->tried) {
		u->tried = true;
		u->opt_param_total = DEFAULT_OPT_TOTAL;
		u->opt_param_days = DEFAULT_OPT_DAYS;
		ohb_error_t e = { 0, "" };
		u->open_code = cli_cloud_open(c->ctx, NULL, &u->eng, &e);
		if (u->open_code) {
			u->eng = NULL;
			snprintf(u->open_message, sizeof u->open_message, "%s", e.message);
			console_say(c, ROLE_ERROR, "cloud engine: error %d: %s", u->open_code, e.message);
			return;
		}
		/* Download (gallery) and CloudFileCache (bundles) report alike. */
		if (ohb_cloud_download_on(u->eng, on_download, &c->evq, &e) != 0 ||
		    ohb_cloud_cache_on(u->eng, on_download, &c->evq, &e) != 0)
			console_say(c, ROLE_ERROR, "download on('progress'): error %d: %s", e.code, e.message);
	}
	if (!u->eng)
		return;
	add_scopes(c);
	open_scope(c, u->cur);
	read_battery(c);
	refresh_files(c);
}

void
cloud_refresh(console_t *c)
{
	if (!c->cloud.eng)
		return;
	add_scopes(c);   /* may realloc the scopes: take the current one after it */
	cloud_scope_t *s = cur_scope(c);
	read_battery(c);
	if (s)
		read_last_time(s);
	refresh_files(c);
}

void
cloud_close(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	if (u->eng)
		ohb_cloud_close(u->eng);   /* stops what runs; its last events land in the queue */
	u->eng = NULL;
	for (size_t i = 0; i < u->n_scopes; i++)
		free(u->scopes[i].listener);
	free(u->scopes);
	u->scopes = NULL;
	u->n_scopes = 0;
	ohb_cloud_file_infos_free(u->files, u->n_files);
	u->files = NULL;
	u->n_files = 0;
	free(u->view);
	u->view = NULL;
}

bool
cloud_busy(const console_t *c)
{
	const cloud_ui_t *u = &c->cloud;
	if (u->dl_active || u->opt_active)
		return true;
	for (size_t i = 0; i < u->n_scopes; i++)
		if (u->scopes[i].running || u->scopes[i].listing)
			return true;
	return false;
}

/* The live per-file states (UPLOADING, DOWNLOADING) of the rows on screen,
 * for the tick while something runs. Only those rows: a whole relist walks
 * and stats the scope's folder and sorts it (5-8 ms for 5 000 files, on the
 * main thread, every second); the final events relist once. */
static void
refresh_shown_states(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	const char *uris[STATES_MAX];
	ohb_cloud_file_info_t *rows[STATES_MAX];
	ohb_cloud_file_sync_state_t st[STATES_MAX];
	size_t n = 0;
	for (size_t k = u->top; k < u->n_view && k - u->top < u->rows_shown && n < STATES_MAX; k++) {
		ohb_cloud_file_info_t *f = &u->files[u->view[k]];
		if (f->remote_only)
			continue;   /* no FileSyncState until it comes down: the batch would fail */
		rows[n] = f;
		uris[n++] = f->uri;
	}
	if (!n)
		return;
	ohb_error_t e = { 0, "" };
	if (ohb_cloud_get_file_sync_states(u->eng, uris, n, st, &e) == 0) {
		for (size_t i = 0; i < n; i++)
			rows[i]->state = st[i];
		return;
	}
	/* One file the sync removed fails the whole batch: the others row by row. */
	for (size_t i = 0; i < n; i++)
		if (ohb_cloud_get_file_sync_state(u->eng, uris[i], &st[i], &e) == 0)
			rows[i]->state = st[i];
}

void
cloud_tick(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	int64_t now = fsu_mono_ms();
	if (!u->eng || now - u->last_poll_ms < POLL_MS)
		return;
	u->last_poll_ms = now;
	cloud_scope_t *s = cur_scope(c);
	bool relisted = false;
	if (s && s->s && s->running) {
		ohb_error_t e = { 0, "" };
		s->have_status = ohb_cloud_sync_get_status(s->s, &s->st, &e) == 0;
	}
	for (size_t i = 0; i < u->n_scopes; i++) {
		cloud_scope_t *ls = &u->scopes[i];
		ohb_cloud_sync_status_t st;
		ohb_error_t e = { 0, "" };
		if (!ls->listing || !ls->s || ohb_cloud_sync_get_status(ls->s, &st, &e) != 0 || st.listing)
			continue;
		ls->listing = false;
		if (st.list_code)
			console_say(c, ROLE_ERROR, "listing the cloud (%s): error %d: %s", ls->name, st.list_code,
			    st.list_message);
		else
			console_say(c, ROLE_STATE_OK, "the cloud listed for %s", ls->name);
		if (ls == s) {
			refresh_files(c);
			relisted = true;
		}
	}
	read_battery(c);
	if (c->screen == SCR_CLOUD && !relisted)
		refresh_shown_states(c);
	wf_coalesce_mark(&c->redraw);
}

bool
cloud_text_entry(const console_t *c)
{
	return c->screen == SCR_CLOUD && (c->cloud.filtering || c->cloud.editing);
}

/* ---- events (main thread, from drain_events) ---- */

static void
apply_sync(console_t *c, const cev_t *ev)
{
	cloud_ui_t *u = &c->cloud;
	if (ev->bundle < 0 || (size_t)ev->bundle >= u->n_scopes)
		return;
	cloud_scope_t *s = &u->scopes[ev->bundle];
	s->have_progress = true;
	s->state = (ohb_cloud_sync_state_t)ev->v[0];
	s->error = (ohb_cloud_error_type_t)ev->v[1];
	s->code = ev->code;
	snprintf(s->message, sizeof s->message, "%s", ev->text ? ev->text : "");
	if (!sync_final(s->state)) {
		s->running = true;
		return;
	}
	s->running = false;
	s->have_status = false;
	read_last_time(s);
	if (s->code)
		console_say(c, ROLE_ERROR, "%s sync %s%s%s: error %d: %s", s->name, ohb_cloud_sync_state_name(s->state),
		    s->error != OHB_CLOUD_ERR_NO_ERROR ? " " : "",
		    s->error != OHB_CLOUD_ERR_NO_ERROR ? ohb_cloud_error_type_name(s->error) : "", s->code, s->message);
	else
		console_say(c, s->state == OHB_CLOUD_SYNC_COMPLETED ? ROLE_STATE_OK : s->state == OHB_CLOUD_SYNC_STOPPED ? ROLE_STATE_CANCELLED : ROLE_ERROR,
		    "%s sync %s%s%s", s->name, ohb_cloud_sync_state_name(s->state),
		    s->error != OHB_CLOUD_ERR_NO_ERROR ? ": " : "",
		    s->error != OHB_CLOUD_ERR_NO_ERROR ? ohb_cloud_error_type_name(s->error) : "");
	if ((size_t)ev->bundle == u->cur)
		refresh_files(c);
}

static void
apply_download(console_t *c, const cev_t *ev)
{
	cloud_ui_t *u = &c->cloud;
	if (!u->dl_have || !ev->text || strcmp(ev->text, u->dl_uri) != 0)
		return;   /* not the download the screen shows */
	u->dl_state = (ohb_cloud_download_state_t)ev->v[0];
	u->dl_processed = ev->v[1];
	u->dl_size = ev->v[2];
	u->dl_error = (ohb_cloud_download_error_t)ev->v[3];
	wf_rate_sample(&u->dl_rate, u->dl_processed, fsu_mono_ms());
	if (u->dl_state == OHB_CLOUD_DL_RUNNING) {
		u->dl_active = true;   /* also after a late final event of an earlier download of this uri */
		return;
	}
	u->dl_active = false;
	if (u->dl_state == OHB_CLOUD_DL_COMPLETED)
		console_say(c, ROLE_STATE_OK, "download COMPLETED: %s", u->dl_uri);
	else if (u->dl_state == OHB_CLOUD_DL_STOPPED)
		console_say(c, ROLE_STATE_CANCELLED, "download STOPPED (partial file removed): %s", u->dl_uri);
	else
		console_say(c, ROLE_ERROR, "download FAILED (%s): %s", ohb_cloud_download_error_name(u->dl_error), u->dl_uri);
	refresh_files(c);
}

static void
apply_optimize(console_t *c, const cev_t *ev)
{
	cloud_ui_t *u = &c->cloud;
	if (!u->opt_have)
		return;
	u->opt_state = (ohb_cloud_optimize_state_t)ev->v[0];
	u->opt_freed = ev->v[1];
	u->opt_total = ev->v[2];
	u->opt_files = ev->v[3];
	u->opt_progress = ev->bundle;
	u->opt_code = ev->code;
	snprintf(u->opt_message, sizeof u->opt_message, "%s", ev->text ? ev->text : "");
	if (u->opt_state == OHB_CLOUD_OPT_RUNNING)
		return;
	u->opt_active = false;
	char a[32];
	if (u->opt_state == OHB_CLOUD_OPT_FAILED)
		console_say(c, ROLE_ERROR, "optimize space FAILED: error %d: %s", u->opt_code, u->opt_message);
	else
		console_say(c, u->opt_state == OHB_CLOUD_OPT_COMPLETED ? ROLE_STATE_OK : ROLE_STATE_CANCELLED,
		    "optimize space %s: %s freed, %llu file%s evicted", ohb_cloud_optimize_state_name(u->opt_state),
		    wf_bytes(u->opt_freed, a, sizeof a), (unsigned long long)u->opt_files, u->opt_files == 1 ? "" : "s");
	refresh_files(c);
}

void
cloud_apply_event(console_t *c, cev_t *ev)
{
	switch (ev->kind) {
	case CEV_CLOUD_SYNC:
		apply_sync(c, ev);
		break;
	case CEV_CLOUD_DOWNLOAD:
		apply_download(c, ev);
		break;
	case CEV_CLOUD_OPTIMIZE:
		apply_optimize(c, ev);
		break;
	default:
		break;
	}
	wf_coalesce_mark(&c->redraw);
}

/* ---- actions (keys of the Cloud screen) ---- */

static bool
need_engine(console_t *c)
{
	if (c->cloud.eng)
		return true;
	console_say(c, ROLE_ERROR, "the cloud engine is not open: error %d: %s", c->cloud.open_code, c->cloud.open_message);
	return false;
}

static cloud_scope_t *
need_scope(console_t *c)
{
	if (!need_engine(c))
		return NULL;
	cloud_scope_t *s = cur_scope(c);
	if (!s)
		return NULL;
	open_scope(c, c->cloud.cur);
	if (!s->s) {
		console_say(c, ROLE_ERROR, "FileSync(%s): error %d: %s", s->name, s->open_code, s->open_message);
		return NULL;
	}
	return s;
}

void
cloud_scope_step(console_t *c, int dir)
{
	cloud_ui_t *u = &c->cloud;
	if (!need_engine(c))
		return;
	add_scopes(c);
	if (!u->n_scopes)
		return;
	u->cur = (u->cur + u->n_scopes + (size_t)(dir < 0 ? -1 : 1)) % u->n_scopes;
	ohb_cloud_file_infos_free(u->files, u->n_files);
	u->files = NULL;
	u->n_files = u->n_view = u->n_evicted = u->n_remote = 0;
	u->cursor = u->top = 0;
	u->files_code = 0;
	open_scope(c, u->cur);
	refresh_files(c);
}

void
cloud_sync_start(console_t *c, bool forced)
{
	cloud_scope_t *s = need_scope(c);
	if (!s)
		return;
	ohb_error_t e = { 0, "" };
	s->start_code = ohb_cloud_sync_start(s->s, forced, &e);
	read_battery(c);
	if (s->start_code) {
		snprintf(s->start_message, sizeof s->start_message, "%s", e.message);
		console_say(c, ROLE_ERROR, "start %s sync: error %d: %s", s->name, s->start_code, e.message);
		return;
	}
	s->start_message[0] = '\0';
	if (!s->running) {
		s->running = true;
		s->have_progress = false;
		s->have_status = false;
	}
	c->cloud.last_poll_ms = 0;
	console_say(c, ROLE_STATE_RUNNING, "%s sync started%s (download stage, then upload stage)", s->name,
	    forced ? " (forced)" : "");
}

void
cloud_list_remote(console_t *c)
{
	cloud_scope_t *s = need_scope(c);
	if (!s)
		return;
	ohb_error_t e = { 0, "" };
	int rc = ohb_cloud_sync_list_remote(s->s, &e);
	if (rc) {
		console_say(c, ROLE_ERROR, "list the cloud (%s): error %d: %s", s->name, rc, e.message);
		return;
	}
	s->listing = true;
	c->cloud.last_poll_ms = 0;   /* the next tick looks at once */
	console_say(c, ROLE_DIM, "asking the cloud which files %s holds", s->name);
}

void
cloud_sync_stop(console_t *c)
{
	cloud_scope_t *s = need_scope(c);
	if (!s)
		return;
	ohb_error_t e = { 0, "" };
	int rc = ohb_cloud_sync_stop(s->s, &e);
	if (rc)
		console_say(c, ROLE_ERROR, "stop %s sync: error %d: %s", s->name, rc, e.message);
	else if (s->running)
		console_say(c, ROLE_STATE_CANCELLED, "stopping the %s sync", s->name);
	else
		console_say(c, ROLE_DIM, "no %s sync is running", s->name);
}

void
cloud_download_start(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	cloud_scope_t *s = need_scope(c);
	if (!s)
		return;
	const ohb_cloud_file_info_t *f = cloud_current_file(c);
	if (!f) {
		console_say(c, ROLE_DIM, "no file highlighted");
		return;
	}
	if (u->dl_active) {
		console_say(c, ROLE_WARNING, "a download is running (D stops it)");
		return;
	}
	/* OpenHarmony: Download for the gallery, CloudFileCache for an application's files. */
	bool cache = u->cur != 0;
	ohb_error_t e = { 0, "" };
	snprintf(u->dl_uri, sizeof u->dl_uri, "%s", f->uri);
	u->dl_have = true;
	u->dl_cache = cache;
	u->dl_processed = 0;
	u->dl_size = f->size;
	u->dl_state = OHB_CLOUD_DL_RUNNING;
	u->dl_error = OHB_CLOUD_DLERR_NO_ERROR;
	wf_rate_init(&u->dl_rate);
	u->dl_code = cache ? ohb_cloud_cache_start(u->eng, u->dl_uri, &e) : ohb_cloud_download_start(u->eng, u->dl_uri, &e);
	if (u->dl_code) {
		u->dl_active = false;
		snprintf(u->dl_message, sizeof u->dl_message, "%s", e.message);
		console_say(c, ROLE_ERROR, "download %s: error %d: %s", f->path, u->dl_code, e.message);
		return;
	}
	u->dl_active = true;
	u->last_poll_ms = 0;
	console_say(c, ROLE_STATE_RUNNING, "downloading %s", f->path);
}

void
cloud_download_stop(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	if (!need_engine(c))
		return;
	if (!u->dl_active) {
		console_say(c, ROLE_DIM, "no download is running");
		return;
	}
	ohb_error_t e = { 0, "" };
	int rc = u->dl_cache ? ohb_cloud_cache_stop(u->eng, u->dl_uri, true, &e) : ohb_cloud_download_stop(u->eng, u->dl_uri, &e);
	if (rc)
		console_say(c, ROLE_ERROR, "stop download: error %d: %s", rc, e.message);
	else
		console_say(c, ROLE_STATE_CANCELLED, "stopping the download of %s", u->dl_uri);
}

void
cloud_clean_cache(console_t *c)
{
	if (!need_scope(c))
		return;
	const ohb_cloud_file_info_t *f = cloud_current_file(c);
	if (!f) {
		console_say(c, ROLE_DIM, "no file highlighted");
		return;
	}
	if (f->evicted) {
		console_say(c, ROLE_DIM, "%s has no local copy already (cloud-only)", f->path);
		return;
	}
	/* f stays valid until refresh_files: only the main thread replaces the
	 * listing, and the engine's callbacks just queue events. */
	ohb_error_t e = { 0, "" };
	int rc = ohb_cloud_cache_clean(c->cloud.eng, f->uri, &e);
	if (rc) {
		console_say(c, ROLE_ERROR, "cleanCache %s: error %d: %s", f->path, rc, e.message);
		return;
	}
	console_say(c, ROLE_STATE_OK, "local copy of %s dropped; the cloud keeps it (Enter downloads it again)", f->path);
	refresh_files(c);   /* f is gone after this */
}

void
cloud_optimize_form(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	if (!need_engine(c))
		return;
	u->editing = 1;
	snprintf(u->edit, sizeof u->edit, "%llu", (unsigned long long)u->opt_param_total);
}

void
cloud_optimize_start(console_t *c, uint64_t total, uint32_t days)
{
	cloud_ui_t *u = &c->cloud;
	if (!need_engine(c))
		return;
	ohb_error_t e = { 0, "" };
	u->opt_have = true;
	u->opt_state = OHB_CLOUD_OPT_RUNNING;
	u->opt_progress = 0;
	u->opt_freed = u->opt_files = 0;
	u->opt_total = total;
	u->opt_message[0] = '\0';
	u->opt_code = ohb_cloud_optimize_start(u->eng, total, days, on_optimize, &c->evq, &e);
	if (u->opt_code) {
		u->opt_active = false;
		u->opt_state = OHB_CLOUD_OPT_FAILED;
		snprintf(u->opt_message, sizeof u->opt_message, "%s", e.message);
		console_say(c, ROLE_ERROR, "optimize space: error %d: %s", u->opt_code, e.message);
		return;
	}
	u->opt_active = true;
	u->last_poll_ms = 0;
	char a[32];
	console_say(c, ROLE_STATE_RUNNING, "optimize space started: totalSize %s, agingDays %u", wf_bytes(total, a, sizeof a),
	    days);
}

void
cloud_optimize_stop(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	if (!need_engine(c))
		return;
	if (!u->opt_active) {
		console_say(c, ROLE_DIM, "optimize space is not running");
		return;
	}
	ohb_error_t e = { 0, "" };
	int rc = ohb_cloud_optimize_stop(u->eng, &e);   /* returns once the run has ended */
	if (rc)
		console_say(c, ROLE_ERROR, "stopOptimizeSpace: error %d: %s", rc, e.message);
	else
		console_say(c, ROLE_STATE_CANCELLED, "optimize space stopped");
}
