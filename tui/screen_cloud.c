/*
 * screen_cloud — the device-cloud sync (@ohos.file.cloudSync) at a glance:
 * the sync scope (the gallery, or one installed bundle's FileSync; Tab
 * switches), its SyncProgress state as events arrive, the running stage's
 * counters, the last sync time and the battery; the download of the
 * highlighted file with its DownloadProgress bar; optimize space with its
 * parameters and OptimizeSpaceProgress; and a browser of the scope's files
 * with their FileSyncState (evicted files are marked cloud-only), where x
 * drops a file's local copy (CloudFileCache.cleanCache).
 *
 * It draws what console_cloud.c has gathered; the keys call its actions.
 * Layout at 80x24: scope and battery, two sync rows, a download row, an
 * optimize row, then the file list fills the rest.
 */
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"
#include "fsutil.h"

static theme_role_t
sync_role(const cloud_scope_t *s)
{
	if (s->running)
		return ROLE_STATE_RUNNING;
	if (!s->have_progress)
		return ROLE_NORMAL;
	switch (s->state) {
	case OHB_CLOUD_SYNC_COMPLETED:
		return ROLE_STATE_OK;
	case OHB_CLOUD_SYNC_STOPPED:
		return ROLE_STATE_CANCELLED;
	case OHB_CLOUD_SYNC_UPLOAD_FAILED:
	case OHB_CLOUD_SYNC_DOWNLOAD_FAILED:
		return ROLE_STATE_FAILED;
	default:
		return ROLE_STATE_RUNNING;
	}
}

/* Row 1: which scope, and the battery as start() sees it. */
static void
draw_scope(console_t *c, int y)
{
	cloud_ui_t *u = &c->cloud;
	const cloud_scope_t *s = &u->scopes[u->cur];
	char bat[64];
	theme_role_t brole = ROLE_DIM;
	if (u->battery_code)
		snprintf(bat, sizeof bat, "battery: error %d", u->battery_code);
	else if (u->battery < 0)
		snprintf(bat, sizeof bat, "battery: none (mains)");
	else {
		snprintf(bat, sizeof bat, "battery: %d%% %s", u->battery, u->charging ? "charging" : "on battery");
		if (!u->charging && u->battery < 15)
			brole = u->battery < 10 ? ROLE_ERROR : ROLE_WARNING;
	}
	int bl = (int)strlen(bat);
	draw_text(c, y, 1, c->cols - bl - 4, ROLE_HEADER, "Scope %zu/%zu: %s%s", u->cur + 1, u->n_scopes, s->name,
	    u->cur == 0 ? " (GallerySync)" : " (FileSync)");
	draw_text(c, y, c->cols - bl - 1, bl, brole, "%s", bat);
}

/* Rows 2-3: the state of the scope's sync, then its counters or its error. */
static void
draw_sync(console_t *c, int y)
{
	cloud_ui_t *u = &c->cloud;
	const cloud_scope_t *s = &u->scopes[u->cur];
	char d[40], a[32], b[32], p[8];
	if (!s->s) {
		if (s->tried)
			draw_text(c, y, 1, c->cols - 2, ROLE_ERROR, "FileSync(%s): error %d: %s", s->name, s->open_code,
			    s->open_message);
		return;
	}
	const char *state = s->running && !s->have_progress ? "starting"
	                    : s->have_progress            ? ohb_cloud_sync_state_name(s->state)
	                                                  : "idle";
	draw_text(c, y, 1, 30, sync_role(s), "Sync: %s", state);
	draw_text(c, y, 32, c->cols - 33, ROLE_NORMAL, "last sync: %s", wf_date(s->last_sync_ms, d, sizeof d));
	y++;
	if (s->running) {
		const ohb_cloud_sync_status_t *st = &s->st;
		uint64_t done = s->have_status ? st->bytes_done : 0, total = s->have_status ? st->bytes_total : 0;
		int barw = 22;
		draw_bar(c, y, 1, barw, done, total);
		draw_text(c, y, barw + 2, c->cols - barw - 3, ROLE_NORMAL, "%4s files %llu/%llu  %s of %s  %s",
		    wf_percent(done, total, p, sizeof p), (unsigned long long)(s->have_status ? st->files_done : 0),
		    (unsigned long long)(s->have_status ? st->files_total : 0), wf_bytes(done, a, sizeof a),
		    total ? wf_bytes(total, b, sizeof b) : "?", s->have_status ? st->current : "");
	} else if (s->start_code) {
		draw_text(c, y, 1, c->cols - 2, ROLE_ERROR, "start refused: error %d: %s", s->start_code, s->start_message);
	} else if (s->have_progress && s->code) {
		if (s->error == OHB_CLOUD_ERR_NO_ERROR)   /* ErrorType has no value for most failures */
			draw_text(c, y, 1, c->cols - 2, ROLE_ERROR, "error %d: %s", s->code, s->message);
		else
			draw_text(c, y, 1, c->cols - 2, ROLE_ERROR, "error %d (%s): %s", s->code,
			    ohb_cloud_error_type_name(s->error), s->message);
	} else if (s->have_progress && s->error != OHB_CLOUD_ERR_NO_ERROR) {
		draw_text(c, y, 1, c->cols - 2, ROLE_ERROR, "error: %s", ohb_cloud_error_type_name(s->error));
	} else {
		draw_text(c, y, 1, c->cols - 2, ROLE_DIM, "s starts a sync (download stage, then upload), S stops it");
	}
}

/* The start of the download and optimize rows: "Download  RUNNING   [bar]";
 * returns the column after the bar. */
static int
draw_state_bar(console_t *c, int y, const char *label, theme_role_t role, const char *state, uint64_t done,
    uint64_t total)
{
	enum { LABEL_W = 9, STATE_W = 10, BAR_W = 18 };
	int x = 1;
	draw_text(c, y, x, LABEL_W, ROLE_NORMAL, "%s", label);
	x += LABEL_W;
	draw_text(c, y, x, STATE_W, role, "%s", state);
	x += STATE_W;
	draw_bar(c, y, x, BAR_W, done, total);
	return x + BAR_W + 1;
}

/* Row 4: the download the operator started last. */
static void
draw_download(console_t *c, int y)
{
	cloud_ui_t *u = &c->cloud;
	char a[32], b[32], p[8], r[32];
	if (!u->dl_have) {
		draw_text(c, y, 1, c->cols - 2, ROLE_DIM, "Download: Enter fetches the highlighted file from the cloud, D stops");
		return;
	}
	const char *name = strrchr(u->dl_uri, '/');
	name = name ? name + 1 : u->dl_uri;
	if (u->dl_code) {
		draw_text(c, y, 1, c->cols - 2, ROLE_ERROR, "Download %s: error %d: %s", name, u->dl_code, u->dl_message);
		return;
	}
	theme_role_t role = u->dl_state == OHB_CLOUD_DL_RUNNING   ? ROLE_STATE_RUNNING
	                    : u->dl_state == OHB_CLOUD_DL_COMPLETED ? ROLE_STATE_OK
	                    : u->dl_state == OHB_CLOUD_DL_STOPPED   ? ROLE_STATE_CANCELLED
	                                                            : ROLE_STATE_FAILED;
	int x = draw_state_bar(c, y, "Download", role, ohb_cloud_download_state_name(u->dl_state), u->dl_processed,
	    u->dl_size);
	if (u->dl_state == OHB_CLOUD_DL_FAILED)
		draw_text(c, y, x, c->cols - x - 1, ROLE_ERROR, "%s  %s", ohb_cloud_download_error_name(u->dl_error), name);
	else
		draw_text(c, y, x, c->cols - x - 1, ROLE_NORMAL, "%4s %s/%s %s %s", wf_percent(u->dl_processed, u->dl_size, p, sizeof p),
		    wf_bytes(u->dl_processed, a, sizeof a), wf_bytes(u->dl_size, b, sizeof b),
		    wf_rate(u->dl_state == OHB_CLOUD_DL_RUNNING ? u->dl_rate.bps : -1, r, sizeof r), name);
}

/* Row 5: optimize space — its form, its progress, or how to start it. */
static void
draw_optimize(console_t *c, int y)
{
	cloud_ui_t *u = &c->cloud;
	char a[32], b[32], p[8];
	if (u->editing == 1) {
		draw_text(c, y, 1, c->cols - 2, ROLE_SELECTED, "Optimize: totalSize [%s_] (e.g. 512M, 2G)  Enter next  Esc cancel",
		    u->edit);
		return;
	}
	if (u->editing == 2) {
		draw_text(c, y, 1, c->cols - 2, ROLE_SELECTED, "Optimize: totalSize %s  agingDays [%s_]  Enter start  Esc cancel",
		    wf_bytes(u->opt_param_total, a, sizeof a), u->edit);
		return;
	}
	if (!u->opt_have) {
		draw_text(c, y, 1, c->cols - 2, ROLE_DIM, "Optimize space (gallery): o asks totalSize and agingDays, O stops");
		return;
	}
	if (u->opt_state == OHB_CLOUD_OPT_FAILED) {
		draw_text(c, y, 1, c->cols - 2, ROLE_ERROR, "Optimize FAILED: error %d: %s", u->opt_code, u->opt_message);
		return;
	}
	theme_role_t role = u->opt_state == OHB_CLOUD_OPT_RUNNING ? ROLE_STATE_RUNNING
	                    : u->opt_state == OHB_CLOUD_OPT_COMPLETED ? ROLE_STATE_OK
	                                                              : ROLE_STATE_CANCELLED;
	int x = draw_state_bar(c, y, "Optimize", role, ohb_cloud_optimize_state_name(u->opt_state),
	    (uint64_t)(u->opt_progress < 0 ? 0 : u->opt_progress), 100);
	snprintf(p, sizeof p, "%d%%", u->opt_progress);
	draw_text(c, y, x, c->cols - x - 1, ROLE_NORMAL, "%4s freed %s of %s, %llu files", p, wf_bytes(u->opt_freed, a, sizeof a),
	    wf_bytes(u->opt_total, b, sizeof b), (unsigned long long)u->opt_files);
}

enum { FILES_AT = 5 };   /* the file list's rule: below scope, two sync, download and optimize rows */

/* The first file row: below the rule, the listing error when there is one,
 * and the column heading. */
static int
files_top(const console_t *c)
{
	return draw_body_top() + FILES_AT + 2 + (c->cloud.files_code ? 1 : 0);
}

/* The file rows that fit above the status and key bars (< 1: none). */
static int
files_rows(const console_t *c)
{
	return c->rows - 2 - files_top(c);
}

static void
draw_files(console_t *c, int y)
{
	cloud_ui_t *u = &c->cloud;
	char label[200], sz[32];
	char counts[64];
	if (u->n_remote)
		snprintf(counts, sizeof counts, "%zu cloud-only, %zu cloud", u->n_evicted, u->n_remote);
	else
		snprintf(counts, sizeof counts, "%zu cloud-only", u->n_evicted);
	if (u->filtering || u->filter[0])
		snprintf(label, sizeof label, "Files: %zu of %zu (%s)  filter: %s%s", u->n_view, u->n_files, counts,
		    u->filter, u->filtering ? "_" : "");
	else
		snprintf(label, sizeof label, "Files: %zu (%s)", u->n_files, counts);
	draw_hline(c, y++, label);
	if (u->files_code)
		draw_text(c, y++, 1, c->cols - 2, ROLE_ERROR, "listing: error %d: %s", u->files_code, u->files_message);
	draw_text(c, y++, 0, c->cols, ROLE_DIM, " %-14s %-10s %10s  %s", "STATE", "COPY", "SIZE", "PATH");
	int h = files_rows(c);
	u->rows_shown = h > 0 ? (size_t)h : 0;
	if (h < 1)
		return;
	if (!u->n_view) {
		draw_text(c, y, 1, c->cols - 2, ROLE_DIM, "%s", u->n_files ? "no file matches the filter" : "no files in this scope yet");
		return;
	}
	list_scroll(u->n_view, h, &u->cursor, &u->top);
	for (int k = 0; k < h && u->top + (size_t)k < u->n_view; k++) {
		size_t vi = u->top + (size_t)k;
		const ohb_cloud_file_info_t *f = &u->files[u->view[vi]];
		bool cur = vi == u->cursor;
		theme_role_t role = cur ? ROLE_SELECTED : f->evicted || f->remote_only ? ROLE_DIM
		                    : f->state == OHB_CLOUD_FILE_UPLOAD_FAILURE ? ROLE_STATE_FAILED
		                    : f->state == OHB_CLOUD_FILE_UPLOADING || f->state == OHB_CLOUD_FILE_DOWNLOADING ? ROLE_STATE_RUNNING
		                                                                                                      : ROLE_NORMAL;
		if (cur)
			draw_fill(c, y, 0, c->cols, ROLE_SELECTED);
		draw_text(c, y++, 0, c->cols, role, " %-14s %-10s %10s  %s",
		    f->remote_only ? "-" : ohb_cloud_file_sync_state_name(f->state),
		    f->remote_only ? "cloud" : f->evicted ? "cloud-only" : f->local ? "local" : "-",
		    wf_bytes(f->size, sz, sizeof sz), f->path);
	}
}

static void
cloud_draw(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	int y = draw_body_top();
	if (!u->eng) {
		if (u->open_code)
			draw_text(c, y, 1, c->cols - 2, ROLE_ERROR, "cloud engine: error %d: %s", u->open_code, u->open_message);
		else
			draw_text(c, y, 1, c->cols - 2, ROLE_DIM, "the cloud engine is not open");
		return;
	}
	if (!u->n_scopes)
		return;
	draw_scope(c, y);
	draw_sync(c, y + 1);
	draw_download(c, y + 3);
	draw_optimize(c, y + 4);
	draw_files(c, y + FILES_AT);
}

/* ---- keys ---- */

/* Enter on totalSize asks agingDays; Enter on agingDays starts the run. */
static void
form_enter(console_t *c)
{
	cloud_ui_t *u = &c->cloud;
	uint64_t v;
	if (u->editing == 1) {
		if (!wf_parse_size(u->edit, &v) || v == 0) {
			console_say(c, ROLE_ERROR, "totalSize: \"%s\" is not a size above 0 (e.g. 1073741824, 512M, 2G)", u->edit);
			return;
		}
		u->opt_param_total = v;
		u->editing = 2;
		snprintf(u->edit, sizeof u->edit, "%u", u->opt_param_days);
		return;
	}
	if (!wf_parse_uint(u->edit, 36500, &v)) {
		console_say(c, ROLE_ERROR, "agingDays: \"%s\" is not a number of days (0 to 36500)", u->edit);
		return;
	}
	u->opt_param_days = (uint32_t)v;
	u->editing = 0;
	cloud_optimize_start(c, u->opt_param_total, u->opt_param_days);
}

static void
form_key(console_t *c, int ch)
{
	cloud_ui_t *u = &c->cloud;
	switch (console_edit_key(u->edit, sizeof u->edit, ch)) {
	case EDIT_ESC:
		u->editing = 0;
		console_say(c, ROLE_DIM, "optimize space not started");
		break;
	case EDIT_ENTER:
		form_enter(c);
		break;
	default:
		break;
	}
}

static void
filter_key(console_t *c, int ch)
{
	cloud_ui_t *u = &c->cloud;
	switch (console_edit_key(u->filter, sizeof u->filter, ch)) {
	case EDIT_ESC:
		u->filter[0] = '\0';
		u->filtering = false;
		break;
	case EDIT_ENTER:
		u->filtering = false;
		break;
	case EDIT_CHANGED:
		break;
	case EDIT_OTHER:
		return;
	}
	cloud_view(c);
}

static void
cloud_key(console_t *c, int ch)
{
	cloud_ui_t *u = &c->cloud;
	if (u->editing) {
		form_key(c, ch);
		return;
	}
	if (u->filtering) {
		filter_key(c, ch);
		return;
	}
	int page = files_rows(c) > 1 ? files_rows(c) : 1;
	if (console_list_key(ch, u->n_view, page, &u->cursor))
		return;
	switch (ch) {
	case '\t':
	case ']':
		cloud_scope_step(c, 1);
		break;
	case KEY_BTAB:
	case '[':
		cloud_scope_step(c, -1);
		break;
	case 's':
		cloud_sync_start(c, false);
		break;
	case 'f':
		cloud_sync_start(c, true);
		break;
	case 'S':
		cloud_sync_stop(c);
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
	case 'd':
		cloud_download_start(c);
		break;
	case 'D':
		cloud_download_stop(c);
		break;
	case 'x':
		cloud_clean_cache(c);
		break;
	case 'o':
		cloud_optimize_form(c);
		break;
	case 'O':
		cloud_optimize_stop(c);
		break;
	case '/':
		u->filtering = true;
		break;
	case 'l':
		cloud_list_remote(c);
		break;
	case 'R':
		cloud_refresh(c);
		console_say(c, ROLE_DIM, "files, battery and last sync time read again");
		break;
	case 'q':
	case 27:
	case KEY_LEFT:
		console_go(c, SCR_HOME);
		break;
	default:
		break;
	}
}

/* A click on a file row highlights it (as on the other list screens). */
static void
cloud_click(console_t *c, int y, int x)
{
	cloud_ui_t *u = &c->cloud;
	(void)x;
	int first = files_top(c);
	if (!u->eng || !u->n_scopes || y < first || y >= first + files_rows(c))
		return;   /* no file list drawn, or not on one of its rows */
	size_t vi = u->top + (size_t)(y - first);
	if (vi < u->n_view)
		u->cursor = vi;
}

const screen_t screen_cloud = {
	"Cloud",
	"F1 Help  s Sync  S Stop  Enter Download  D Stop  o Optimize  O Stop  Tab Scope",
	"Tab ] / S-Tab [  next / previous scope: gallery, then each bundle\n"
	"s / f         start the scope's sync (f: forced, runs at 10-15 % battery)\n"
	"S             stop the sync (ends STOPPED; s resumes where it left off)\n"
	"Enter, d      download the highlighted file (bundles: CloudFileCache)\n"
	"D             stop the download (its <name>.temp.download is removed)\n"
	"x             drop the local copy of the file (cleanCache; cloud keeps it)\n"
	"o / O         optimize space: asks totalSize (512M, 2G), agingDays / stop\n"
	"Up/Down j/k   move; PgUp/PgDn, Home/End (g/G)\n"
	"/             filter files by path as you type (Enter keeps, Esc clears)\n"
	"l             list the cloud: files the device never had show as \"cloud\"\n"
	"R             read files, battery and last sync time again\n"
	"mouse         click a file row to highlight it\n"
	"q, Esc        back to Home (runs go on; quitting the console stops them)",
	cloud_draw,
	cloud_key,
	cloud_click,
};
