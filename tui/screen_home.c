/*
 * screen_home — the first screen: what the device is (capability file:
 * systemFullName, deviceType, backupVersion, bundle count and total size),
 * what the store holds (sets, the newest good one, interrupted ones), and
 * the main actions, each on a letter and on Enter (Cloud opens the cloud
 * engine on first use, console_cloud.c).
 */
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"

typedef struct home_item {
	int key;
	const char *label;
	const char *what;
} home_item_t;

static const home_item_t items[] = {
	{ 'b', "Backup", "full backup of the bundles you pick into a new set" },
	{ 'i', "Incremental backup", "only what changed since the last good set" },
	{ 'r', "Restore", "pick a set, then its bundles" },
	{ 's', "Scan sizes", "getBackupDataSize: how much each bundle would send" },
	{ 'l', "Backup sets", "the sets of the store, newest first" },
	{ 'v', "Last run", "the run view of the current or last session" },
	{ 'c', "Cloud", "cloud sync, file states, downloads, optimize space" },
	{ 'o', "Settings", "theme, default send rate, redraw rate" },
	{ '?', "Help", "keys of every screen" },
	{ 'q', "Quit", "" },
};
#define N_ITEMS (sizeof items / sizeof items[0])

static size_t home_cursor_of(const console_t *c);

static void
activate(console_t *c, int key)
{
	switch (key) {
	case 'b':
	case 'i':
		if (c->job && c->run_kind != JOB_SCAN) {
			console_say(c, ROLE_WARNING, "a session is running; v shows it");
			return;
		}
		c->pick_kind = key == 'i' ? JOB_INCREMENTAL : JOB_BACKUP;
		console_go(c, SCR_PICKER);
		break;
	case 'r':
		if (c->job && c->run_kind != JOB_SCAN) {
			console_say(c, ROLE_WARNING, "a session is running; v shows it");
			return;
		}
		console_go(c, SCR_SETS);
		break;
	case 'l':
		console_go(c, SCR_SETS);
		break;
	case 's':
		console_go(c, SCR_SCAN);
		break;
	case 'v':
		if (c->n_run == 0)
			console_say(c, ROLE_DIM, "no session has run yet");
		else
			console_go(c, c->run_active ? SCR_RUN : SCR_RESULTS);
		break;
	case 'c':
		console_go(c, SCR_CLOUD);
		cloud_enter(c);   /* opens the cloud engine on first use */
		break;
	case 'o':
		console_go(c, SCR_SETTINGS);
		break;
	case '?':
		c->help_return = SCR_HOME;
		console_go(c, SCR_HELP);
		break;
	case 'q':
		console_request_quit(c);
		break;
	default:
		break;
	}
}

static void
home_draw(console_t *c)
{
	char a[32], b[64];
	int y = draw_body_top() + 1;
	int w = c->cols - 4;
	draw_text(c, y++, 2, w, ROLE_HEADER, "Device");
	if (c->loading && !c->n_brows) {
		draw_text(c, y++, 4, w - 2, ROLE_DIM, "loading the capability file...");
	} else if (c->load_code) {
		draw_text(c, y++, 4, w - 2, ROLE_ERROR, "error %d: %s", c->load_code, c->load_message);
	} else {
		uint64_t total = 0;
		size_t allowed = 0;
		for (size_t i = 0; i < c->n_brows; i++) {
			total += c->brows[i].size > 0 ? (uint64_t)c->brows[i].size : 0;
			allowed += c->brows[i].allow;
		}
		draw_text(c, y++, 4, w - 2, ROLE_NORMAL, "%s  (%s, backup version %s)", c->system_full_name, c->device_type,
		    c->backup_version);
		draw_text(c, y++, 4, w - 2, ROLE_NORMAL, "%zu bundles (%zu allow backup), %s", c->n_brows, allowed,
		    wf_bytes(total, a, sizeof a));
	}
	y++;
	draw_text(c, y++, 2, w, ROLE_HEADER, "Store");
	if (c->sets_code) {
		draw_text(c, y++, 4, w - 2, ROLE_ERROR, "error %d: %s", c->sets_code, c->sets_message);
	} else {
		size_t interrupted = 0;
		const store_set_info_t *newest = NULL;
		for (size_t i = 0; i < c->n_sets; i++) {
			if (!c->sets[i].complete)
				interrupted++;
			else if (!newest)
				newest = &c->sets[i];
		}
		draw_text(c, y++, 4, w - 2, ROLE_NORMAL, "%zu set%s in %s", c->n_sets, c->n_sets == 1 ? "" : "s", c->ctx->store);
		if (newest)
			draw_text(c, y++, 4, w - 2, ROLE_NORMAL, "newest good set: %s (%s, %zu bundles, %s)", newest->id, newest->kind,
			    newest->n_bundles, wf_bytes(newest->bytes, b, sizeof b));
		else
			draw_text(c, y++, 4, w - 2, ROLE_DIM, "no good set yet");
		if (interrupted)
			draw_text(c, y++, 4, w - 2, ROLE_WARNING, "%zu interrupted set%s (not restore points)", interrupted,
			    interrupted == 1 ? "" : "s");
	}
	y++;
	draw_text(c, y++, 2, w, ROLE_HEADER, "Actions");
	size_t cur = home_cursor_of(c);
	for (size_t i = 0; i < N_ITEMS && y < c->rows - 2; i++, y++) {
		theme_role_t role = i == cur ? ROLE_SELECTED : ROLE_NORMAL;
		if (i == cur)
			draw_fill(c, y, 2, w, ROLE_SELECTED);
		draw_text(c, y, 4, w - 2, role, "%c  %-20s %s", items[i].key, items[i].label, c->cols >= 70 ? items[i].what : "");
	}
}

static size_t
home_cursor_of(const console_t *c)
{
	return c->h_cursor < N_ITEMS ? c->h_cursor : 0;
}

static void
home_key(console_t *c, int ch)
{
	size_t cur = home_cursor_of(c);
	switch (ch) {
	case KEY_UP:
	case 'k':
		c->h_cursor = cur ? cur - 1 : N_ITEMS - 1;
		return;
	case KEY_DOWN:
	case 'j':
		c->h_cursor = (cur + 1) % N_ITEMS;
		return;
	case KEY_HOME:
		c->h_cursor = 0;
		return;
	case KEY_END:
		c->h_cursor = N_ITEMS - 1;
		return;
	case '\n':
	case '\r':
	case KEY_ENTER:
		activate(c, items[cur].key);
		return;
	case 27:
		return;   /* Esc never quits: stray escape sequences over slow links must not end a session */
	case 'R':
		console_reload(c);
		console_say(c, ROLE_DIM, "reloading the device and the store");
		return;
	default:
		activate(c, ch);
		return;
	}
}

static void
home_click(console_t *c, int y, int x)
{
	(void)x;
	/* the actions start after the summary; find the row by its label */
	for (size_t i = 0; i < N_ITEMS; i++) {
		char line[40];
		move(y, 4);
		if (innstr(line, 1) > 0 && line[0] == items[i].key) {
			c->h_cursor = i;
			activate(c, items[i].key);
			return;
		}
	}
}

const screen_t screen_home = {
	"Home",
	"F1 Help  b Backup  i Incr  r Restore  s Scan  c Cloud  o Settings  F10 Quit",
	"Up/Down j/k   move\n"
	"Enter         run the highlighted action\n"
	"b             Backup: pick bundles, then a full backup\n"
	"i             Incremental backup: only what changed since the last good set\n"
	"r             Restore: pick a set, then its bundles\n"
	"s             Scan sizes (getBackupDataSize)\n"
	"l             Backup sets of the store\n"
	"v             the run view of the current or last session\n"
	"c             Cloud: device-cloud sync of the gallery and the bundles (cloudSync)\n"
	"o             Settings: theme, send rate, redraw rate\n"
	"R             reload the device and the store\n"
	"q, F10        quit (asks while a session runs)",
	home_draw,
	home_key,
	home_click,
};
