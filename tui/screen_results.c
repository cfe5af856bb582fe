/*
 * screen_results — what a session did, once it ended: per bundle its
 * outcome, bytes, files and time, the onResultReport details of the
 * highlighted one, and where the set was written. Enter opens the bundle's
 * full log.
 */
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"

static int
table_rows(const console_t *c)
{
	int n = draw_body_rows(c) - 8;
	return n < 2 ? 2 : n;
}

static void
results_draw(console_t *c)
{
	int y = draw_body_top();
	size_t ok = 0;
	for (size_t i = 0; i < c->n_run; i++)
		ok += c->run[i].state == RS_DONE;
	const char *verb = c->run_kind == JOB_RESTORE ? "Restore" : c->run_kind == JOB_INCREMENTAL ? "Incremental backup" : "Backup";
	double secs = (double)(c->run_ended_ms - c->run_started_ms) / 1000.0;
	theme_role_t role = ok == c->n_run && !c->run_interrupted ? ROLE_STATE_OK : ROLE_WARNING;
	draw_text(c, y++, 1, c->cols - 2, role, "%s %s: %zu of %zu bundles done, %.1f s%s", verb,
	    c->run_active ? "running" : c->run_interrupted ? "interrupted" : "finished", ok, c->n_run, secs,
	    c->all_code ? "  (onAllBundlesEnd reported an error)" : "");
	if (c->run_kind == JOB_RESTORE)
		draw_text(c, y++, 1, c->cols - 2, ROLE_NORMAL, "from set %s", c->set_id);
	else if (c->set_path[0])
		draw_text(c, y++, 1, c->cols - 2, ROLE_NORMAL, "set %s written to %s", c->set_id, c->set_path);
	else
		draw_text(c, y++, 1, c->cols - 2, ROLE_WARNING, "set %s: %s", c->set_id, c->all_message);
	int namew = c->cols >= 100 ? 34 : c->cols >= 80 ? 26 : 18;
	draw_text(c, y++, 0, c->cols, ROLE_DIM, " %-*s %-16s %10s %6s %7s  %s", namew, "BUNDLE", "OUTCOME", "BYTES", "FILES", "TIME",
	    "DETAIL");
	int h = table_rows(c);
	list_scroll(c->n_run, h, &c->r_cursor, &c->r_top);
	for (int k = 0; k < h && c->r_top + (size_t)k < c->n_run; k++, y++) {
		size_t i = c->r_top + (size_t)k;
		const run_row_t *r = &c->run[i];
		bool cur = i == c->r_cursor;
		char st[32], b[32];
		if (cur)
			draw_fill(c, y, 0, c->cols, ROLE_SELECTED);
		double t = r->end_ms > r->begin_ms && r->begin_ms ? (double)(r->end_ms - r->begin_ms) / 1000.0 : 0;
		draw_text(c, y, 0, namew + 1, cur ? ROLE_SELECTED : ROLE_NORMAL, " %-*s", namew, r->name);
		draw_text(c, y, namew + 2, 16, cur ? ROLE_SELECTED : draw_state_role(r->state), "%s", draw_state_text(r, st, sizeof st));
		draw_text(c, y, namew + 19, c->cols - namew - 19, cur ? ROLE_SELECTED : ROLE_NORMAL, "%10s %6llu %6.1fs  %s",
		    wf_bytes(r->recv_bytes, b, sizeof b), (unsigned long long)r->recv_files, t,
		    r->state == RS_DONE ? "" : r->message);
	}
	y++;
	if (c->r_cursor < c->n_run && y < c->rows - 2) {
		const run_row_t *r = &c->run[c->r_cursor];
		draw_hline(c, y++, r->name);
		if (r->code && y < c->rows - 2)
			draw_text(c, y++, 1, c->cols - 2, ROLE_ERROR, "error %d: %s", r->code, r->message);
		/* the report wraps over the lines that are left */
		char text[2048];
		snprintf(text, sizeof text, "onResultReport: %s", r->result ? r->result : "(none)");
		int w = c->cols - 2;
		for (size_t off = 0, len = strlen(text); off < len && y < c->rows - 2; off += (size_t)w)
			draw_text(c, y++, 1, w, ROLE_NORMAL, "%.*s", w, text + off);
	}
}

static void
results_key(console_t *c, int ch)
{
	if (console_list_key(ch, c->n_run, table_rows(c), &c->r_cursor))
		return;
	switch (ch) {
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
	case 'v':
		console_go(c, SCR_RUN);
		break;
	case 'q':
	case 27:
		console_go(c, SCR_HOME);
		break;
	default:
		break;
	}
}

static void
results_click(console_t *c, int y, int x)
{
	(void)x;
	int first = draw_body_top() + 3;
	if (y >= first && y < first + table_rows(c) && c->r_top + (size_t)(y - first) < c->n_run)
		c->r_cursor = c->r_top + (size_t)(y - first);
}

const screen_t screen_results = {
	"Results",
	"F1 Help  Enter Log  L All events  v Run view  q Home  F10 Quit",
	"Up/Down j/k   highlight a bundle; its onResultReport shows below\n"
	"Enter, l      the bundle's full log;  L every event of the session\n"
	"v             the run view as it ended\n"
	"q, Esc        back to Home",
	results_draw,
	results_key,
	results_click,
};
