/*
 * screen_scan — getBackupDataSize: how much each bundle that allows backup
 * would send. Enter starts an imprecise scan, p a precise one (which also
 * gives the incremental size when the bundle has a previous backup); every
 * onBackupSizeReport updates its rows live, the bundle being scanned is
 * marked, and the picker shows the scanned sizes afterwards.
 */
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"
#include "fsutil.h"

static void
scan_draw(console_t *c)
{
	int y = draw_body_top();
	uint64_t total = 0;
	size_t scanned = 0, allowed = 0;
	for (size_t i = 0; i < c->n_brows; i++) {
		if (!c->brows[i].allow)
			continue;
		allowed++;
		scanned += c->brows[i].scanned;
		total += c->brows[i].size > 0 ? (uint64_t)c->brows[i].size : 0;
	}
	char t[32];
	if (c->scan_running)
		draw_text(c, y++, 1, c->cols - 2, ROLE_STATE_RUNNING, "%s scan: %zu of %zu scanned, now: %s   %.0f s",
		    c->scan_precise ? "Precise" : "Quick", scanned, allowed, c->scan_current[0] ? c->scan_current : "...",
		    (double)(fsu_mono_ms() - c->scan_started_ms) / 1000.0);
	else if (c->scan_code)
		draw_text(c, y++, 1, c->cols - 2, ROLE_ERROR, "scan failed: %s", c->scan_message);
	else
		draw_text(c, y++, 1, c->cols - 2, ROLE_HEADER, "Enter: quick scan   p: precise scan   (%zu of %zu scanned)", scanned,
		    allowed);
	draw_text(c, y++, 1, c->cols - 2, ROLE_NORMAL, "total: %s%s", wf_bytes(total, t, sizeof t),
	    scanned < allowed ? "  (sizes not yet scanned come from the capability file)" : "");
	int namew = c->cols >= 100 ? 40 : c->cols - 44 > 16 ? c->cols - 44 : 16;
	draw_text(c, y++, 0, c->cols, ROLE_DIM, " %-*s %12s %12s  %s", namew, "BUNDLE", "DATA", "CHANGED", "STATE");
	int h = c->rows - 2 - y;
	size_t k = 0;
	for (size_t i = 0; i < c->n_brows && (int)k < h; i++) {
		const bundle_row_t *r = &c->brows[i];
		if (!r->allow)
			continue;
		char ds[32], is[32];
		bool now = c->scan_running && strcmp(c->scan_current, r->name) == 0;
		const char *state = r->scanned ? "scanned" : now ? "scanning" : c->scan_running ? "waiting" : "capability file";
		if (r->inc_size >= 0)
			wf_bytes((uint64_t)r->inc_size, is, sizeof is);
		else
			snprintf(is, sizeof is, "unknown");
		draw_text(c, y++, 0, c->cols, now ? ROLE_STATE_RUNNING : r->scanned ? ROLE_NORMAL : ROLE_DIM, " %-*s %12s %12s  %s",
		    namew, r->name, r->size >= 0 ? wf_bytes((uint64_t)r->size, ds, sizeof ds) : "?", is, state);
		k++;
	}
}

static void
start_scan(console_t *c, bool precise)
{
	char err[600];
	if (c->job) {
		console_say(c, ROLE_WARNING, c->scan_running ? "a scan is already running" : "a session is running; scan after it");
		return;
	}
	for (size_t i = 0; i < c->n_brows; i++)
		c->brows[i].scanned = false;
	c->scan_code = job_start_scan(c, precise, err, sizeof err);
	if (c->scan_code) {
		snprintf(c->scan_message, sizeof c->scan_message, "%s", err);
		console_say(c, ROLE_ERROR, "getBackupDataSize: %s", err);
	} else {
		console_say(c, ROLE_NORMAL, "%s scan started", precise ? "precise" : "quick");
	}
}

static void
scan_key(console_t *c, int ch)
{
	switch (ch) {
	case '\n':
	case '\r':
	case KEY_ENTER:
	case 's':
		start_scan(c, false);
		break;
	case 'p':
		start_scan(c, true);
		break;
	case 'b':
		c->pick_kind = JOB_BACKUP;
		console_go(c, SCR_PICKER);
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

const screen_t screen_scan = {
	"Scan sizes",
	"F1 Help  Enter Quick scan  p Precise scan  b Backup  q Back",
	"Enter, s   quick scan (getBackupDataSize, imprecise): data size of each bundle\n"
	"p          precise scan: also the changed bytes since each bundle's last backup\n"
	"b          go pick bundles for a backup (the picker shows scanned sizes)\n"
	"q, Esc     back to Home (a scan goes on)\n"
	"Rows update live from onBackupSizeReport; the one being scanned is highlighted.",
	scan_draw,
	scan_key,
	NULL,
};
