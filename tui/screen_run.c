/*
 * screen_run — the heart of the console: one row per bundle of the running
 * session (state, a bar of bytes from onProcess, files done/total,
 * throughput, ETA), an overall bar, and the scrolling event log. On the
 * highlighted bundle: c cancels it (after a confirmation naming it; the code
 * cancel returned is shown), +/- change its send rate, t extends its timer.
 *
 * It draws whatever the main loop has gathered from the events; the loop
 * decides when (coalesced, at most ~10 redraws a second).
 */
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"
#include "fsutil.h"

static int
bundle_rows(const console_t *c)
{
	int body = draw_body_rows(c);
	int want = (int)c->n_run;
	int max = body / 2 - 1;
	if (max < 3)
		max = 3;
	return want < max ? want : max;
}

static void
draw_row(console_t *c, int y, const run_row_t *r, bool cur, int64_t now)
{
	char state[32], files[32], rate[32], eta[16], pct[8];
	draw_state_text(r, state, sizeof state);
	if (r->files_total)
		snprintf(files, sizeof files, "%llu/%llu", (unsigned long long)r->files_done, (unsigned long long)r->files_total);
	else
		snprintf(files, sizeof files, "%llu/?", (unsigned long long)r->files_done);
	bool live = r->state == RS_RUNNING;
	double bps = r->rate.bps;
	if (!live && r->end_ms > r->begin_ms && r->begin_ms)
		bps = (double)r->bytes_done * 1000.0 / (double)(r->end_ms - r->begin_ms);
	wf_rate(live || r->state == RS_DONE ? bps : -1, rate, sizeof rate);
	wf_eta(live ? wf_eta_secs(r->bytes_done, r->bytes_total, bps) : r->state == RS_DONE ? 0 : -1, eta, sizeof eta);
	wf_percent(r->bytes_done, r->bytes_total, pct, sizeof pct);
	(void)now;
	bool wide = c->cols >= 72;
	int namew = c->cols >= 100 ? 32 : c->cols >= 80 ? 20 : 16;
	int statew = 13, filesw = 8, ratew = wide ? 10 : 0, etaw = wide ? 6 : 0;
	int barw = c->cols - 1 - namew - 1 - statew - 1 - 5 - 1 - filesw - ratew - etaw - 1;
	if (barw < 4)
		barw = 4;
	if (cur)
		draw_fill(c, y, 0, c->cols, ROLE_SELECTED);
	char name[400];
	snprintf(name, sizeof name, "%s%s%s", r->name, r->target[0] ? ">" : "", r->target);
	int x = 1;
	draw_text(c, y, x, namew, cur ? ROLE_SELECTED : ROLE_NORMAL, "%s", name);
	x += namew + 1;
	draw_text(c, y, x, statew, cur ? ROLE_SELECTED : draw_state_role(r->state), "%s", state);
	x += statew + 1;
	draw_bar(c, y, x, barw, r->bytes_done, r->state == RS_DONE && !r->bytes_total ? 1 : r->bytes_total);
	x += barw + 1;
	draw_text(c, y, x, 5, cur ? ROLE_SELECTED : ROLE_NORMAL, "%4s", r->state == RS_DONE ? "100%" : pct);
	x += 5;
	draw_text(c, y, x, filesw, cur ? ROLE_SELECTED : ROLE_NORMAL, "%7s", files);
	x += filesw;
	if (wide) {
		draw_text(c, y, x, ratew, cur ? ROLE_SELECTED : ROLE_DIM, "%9s", rate);
		x += ratew;
		draw_text(c, y, x, etaw, cur ? ROLE_SELECTED : ROLE_DIM, "%5s", eta);
	}
}

static void
run_draw(console_t *c)
{
	int64_t now = fsu_mono_ms();
	int y = draw_body_top();
	const char *verb = c->run_kind == JOB_RESTORE ? "Restore" : c->run_kind == JOB_INCREMENTAL ? "Incremental backup" : "Backup";
	size_t ended = 0;
	uint64_t done = 0, total = 0, fd = 0, ft = 0;
	double bps = 0;
	for (size_t i = 0; i < c->n_run; i++) {
		const run_row_t *r = &c->run[i];
		ended += r->state != RS_WAITING && r->state != RS_RUNNING;
		done += r->bytes_done;
		total += r->bytes_total;
		fd += r->files_done;
		ft += r->files_total;
		if (r->state == RS_RUNNING && r->rate.bps > 0)
			bps += r->rate.bps;
	}
	double secs = (double)((c->run_active ? now : c->run_ended_ms) - c->run_started_ms) / 1000.0;
	draw_text(c, y++, 1, c->cols - 2, ROLE_HEADER, "%s %s set %s   %zu/%zu bundles ended   %.0f s%s", verb,
	    c->run_kind == JOB_RESTORE ? "from" : "into", c->set_id, ended, c->n_run, secs,
	    c->run_active ? "" : "   (finished)");
	int n = bundle_rows(c);
	list_scroll(c->n_run, n, &c->r_cursor, &c->r_top);
	for (int k = 0; k < n && c->r_top + (size_t)k < c->n_run; k++)
		draw_row(c, y++, &c->run[c->r_top + (size_t)k], c->r_top + (size_t)k == c->r_cursor, now);
	/* overall */
	char a[32], b[32], r[32], e[16], p[8];
	int barw = c->cols - 2 - 8 - 1 - 5;
	draw_text(c, y, 1, 8, ROLE_HEADER, "overall");
	draw_bar(c, y, 10, barw - 1 > 4 ? barw - 1 : 4, done, total);
	draw_text(c, y, c->cols - 5, 5, ROLE_NORMAL, "%4s", wf_percent(done, total, p, sizeof p));
	y++;
	draw_text(c, y++, 1, c->cols - 2, ROLE_DIM, "%s of %s   files %llu/%llu   %s   ETA %s", wf_bytes(done, a, sizeof a),
	    total ? wf_bytes(total, b, sizeof b) : "?", (unsigned long long)fd, (unsigned long long)ft,
	    wf_rate(c->run_active ? bps : -1, r, sizeof r), wf_eta(c->run_active ? wf_eta_secs(done, total, bps) : -1, e, sizeof e));
	draw_hline(c, y++, "Events");
	int logh = c->rows - 2 - y;
	if (logh < 1)
		return;
	size_t first = c->n_log > (size_t)logh ? c->n_log - (size_t)logh : 0;
	for (int k = 0; k < logh && first + (size_t)k < c->n_log; k++) {
		const log_line_t *l = console_log_at(c, first + (size_t)k);
		draw_text(c, y++, 1, c->cols - 2, l->role, "%s", l->text);
	}
}

static void
do_cancel(console_t *c)
{
	if (c->r_cursor >= c->n_run)
		return;
	run_row_t *r = &c->run[c->r_cursor];
	int rc = job_cancel(c, c->r_cursor);
	if (rc == 0) {
		console_say(c, ROLE_STATE_CANCELLED, "cancel(%s) returned 0: stopping it", r->name);
		console_log(c, (int)c->r_cursor, ROLE_STATE_CANCELLED, "%s: cancel returned 0", r->name);
	} else {
		console_say(c, ROLE_WARNING, "cancel(%s) returned %d: %s", r->name, rc, ohb_code_text(rc));
		console_log(c, (int)c->r_cursor, ROLE_WARNING, "%s: cancel returned %d: %s", r->name, rc, ohb_code_text(rc));
	}
}

static void
change_rate(console_t *c, int dir)
{
	if (c->r_cursor >= c->n_run || !c->job)
		return;
	run_row_t *r = &c->run[c->r_cursor];
	int rate = r->send_rate > 0 ? r->send_rate : 60;
	if (dir > 0)
		rate = rate == 0 ? 1 : rate < 10 ? rate + 1 : rate * 2;
	else
		rate = rate <= 10 ? rate - 1 : rate / 2;
	if (rate < 0)
		rate = 0;
	if (rate > 800)
		rate = 800;
	if (ohb_update_send_rate(c->svc, r->name, rate)) {
		r->send_rate = rate;
		console_say(c, ROLE_NORMAL, "%s: send rate %d files/s%s", r->name, rate, rate == 0 ? " (paused)" : "");
		console_log(c, (int)c->r_cursor, ROLE_DIM, "%s: updateSendRate(%d) ok", r->name, rate);
	} else {
		console_say(c, ROLE_WARNING, "%s: updateSendRate(%d) refused: the bundle is not in the active session", r->name, rate);
	}
}

static void
extend_timer(console_t *c)
{
	if (c->r_cursor >= c->n_run || !c->job)
		return;
	run_row_t *r = &c->run[c->r_cursor];
	int code = 0;
	int64_t ms = 30LL * 60 * 1000;   /* the default is 15 minutes: double it */
	if (ohb_update_timer(c->svc, r->name, ms, &code)) {
		console_say(c, ROLE_NORMAL, "%s: timer set to 30 min (updateTimer)", r->name);
		console_log(c, (int)c->r_cursor, ROLE_DIM, "%s: updateTimer(%lld ms) ok", r->name, (long long)ms);
	} else {
		console_say(c, ROLE_WARNING, "%s: updateTimer refused%s%s%s", r->name, code ? ": error " : "",
		    code ? ohb_code_text(code) : " (the bundle is not running)", "");
		console_log(c, (int)c->r_cursor, ROLE_WARNING, "%s: updateTimer failed (code %d)", r->name, code);
	}
}

static void
run_key(console_t *c, int ch)
{
	int n = bundle_rows(c);
	if (console_list_key(ch, c->n_run, n, &c->r_cursor))
		return;
	switch (ch) {
	case 'c':
		if (c->r_cursor < c->n_run && c->job) {
			run_row_t *r = &c->run[c->r_cursor];
			console_ask(c, do_cancel, "Cancel %s %s? Its temp files are removed; the other bundles go on.",
			    c->run_kind == JOB_RESTORE ? "restoring" : "backing up", r->name);
		}
		break;
	case '+':
	case '=':
		change_rate(c, 1);
		break;
	case '-':
		change_rate(c, -1);
		break;
	case 't':
		extend_timer(c);
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
	case 'l':
		c->log_bundle = (int)c->r_cursor;
		c->log_scroll = 0;
		console_go(c, SCR_LOG);
		break;
	case 'L':
		c->log_bundle = -1;
		c->log_scroll = 0;
		console_go(c, SCR_LOG);
		break;
	case 'q':
	case 27:
		console_go(c, c->run_active ? SCR_HOME : SCR_RESULTS);
		if (c->run_active)
			console_say(c, ROLE_DIM, "the session goes on; v shows it again");
		break;
	default:
		break;
	}
}

static void
run_click(console_t *c, int y, int x)
{
	(void)x;
	int first = draw_body_top() + 1;
	if (y >= first && y < first + bundle_rows(c) && c->r_top + (size_t)(y - first) < c->n_run)
		c->r_cursor = c->r_top + (size_t)(y - first);
}

const screen_t screen_run = {
	"Run",
	"F1 Help  c Cancel  + Faster  - Slower  t Timer  Enter Log  q Back  F10 Quit",
	"Up/Down j/k   highlight a bundle;  PgUp/PgDn, Home/End\n"
	"c             cancel the highlighted bundle (asks; shows the code cancel returned:\n"
	"              0 stopping, 13500011 not started yet, 13500012 unknown or finishing)\n"
	"+ / -         raise / lower its send rate (files per second, 0 pauses, max 800)\n"
	"t             extend its timer to 30 minutes (updateTimer)\n"
	"Enter, l      the highlighted bundle's full log;  L the whole log\n"
	"q, Esc        back (the session goes on; v on Home returns here)\n"
	"F10           quit: asks, then cancels the session and leaves the set interrupted\n"
	"Bars show bytes from onProcess; a dotted bar means the total is not known yet.",
	run_draw,
	run_key,
	run_click,
};
