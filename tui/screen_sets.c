/*
 * screen_sets — the backup sets of the store, newest first (store_list).
 * Interrupted sets (no set.json, or not complete) are marked and cannot be
 * chosen: they are never restore points. Enter on a good set goes on to its
 * bundles (screen_set_bundles.c); x removes an interrupted set (asks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curses.h>

#include "console.h"

static int
list_rows(const console_t *c)
{
	return draw_body_rows(c) - 2;
}

static void
sets_draw(console_t *c)
{
	int y = draw_body_top();
	size_t bad = 0;
	for (size_t i = 0; i < c->n_sets; i++)
		bad += !c->sets[i].complete;
	draw_text(c, y++, 1, c->cols - 2, ROLE_HEADER, "Backup sets: %zu (%zu interrupted) in %s", c->n_sets, bad, c->ctx->store);
	draw_text(c, y++, 0, c->cols, ROLE_DIM, " %-22s %-11s %-11s %7s %10s  %s", "SET", "KIND", "STATE", "BUNDLES", "SIZE",
	    c->cols >= 80 ? "CREATED" : "");
	if (c->sets_code)
		draw_text(c, y, 2, c->cols - 4, ROLE_ERROR, "error %d: %s", c->sets_code, c->sets_message);
	else if (c->n_sets == 0)
		draw_text(c, y, 2, c->cols - 4, ROLE_DIM, c->loading ? "loading..." : "no sets yet: back something up first (b on Home)");
	int h = list_rows(c);
	list_scroll(c->n_sets, h, &c->s_cursor, &c->s_top);
	for (int k = 0; k < h && c->s_top + (size_t)k < c->n_sets; k++, y++) {
		size_t i = c->s_top + (size_t)k;
		const store_set_info_t *s = &c->sets[i];
		bool cur = i == c->s_cursor;
		size_t good = 0;
		for (size_t b = 0; b < s->n_bundles; b++)
			good += s->bundles[b].code == 0;
		char sz[32], nb[24];
		snprintf(nb, sizeof nb, "%zu/%zu", good, s->n_bundles);
		if (cur)
			draw_fill(c, y, 0, c->cols, ROLE_SELECTED);
		draw_text(c, y, 0, c->cols, cur ? ROLE_SELECTED : s->complete ? ROLE_NORMAL : ROLE_DIM, " %-22s %-11s %-11s %7s %10s  %s",
		    s->id, s->kind, s->complete ? "complete" : "interrupted", nb, wf_bytes(s->bytes, sz, sizeof sz),
		    c->cols >= 80 ? s->created : "");
	}
}

static void
open_set(console_t *c)
{
	if (c->s_cursor >= c->n_sets)
		return;
	const store_set_info_t *s = &c->sets[c->s_cursor];
	if (!s->complete) {
		console_say(c, ROLE_WARNING, "%s is interrupted (never finished): not a restore point", s->id);
		return;
	}
	if (c->job && c->run_kind != JOB_SCAN) {
		console_say(c, ROLE_WARNING, "a session is running; wait for it to end");
		return;
	}
	free(c->sb_selected);
	free(c->sb_target);
	c->n_sb = s->n_bundles;
	c->sb_selected = calloc(c->n_sb ? c->n_sb : 1, sizeof *c->sb_selected);
	c->sb_target = calloc(c->n_sb ? c->n_sb : 1, sizeof *c->sb_target);
	if (!c->sb_selected || !c->sb_target) {
		c->n_sb = 0;
		return;
	}
	for (size_t i = 0; i < c->n_sb; i++)
		c->sb_selected[i] = s->bundles[i].code == 0;
	c->restore_set = (int)c->s_cursor;
	c->sb_cursor = c->sb_top = 0;
	console_go(c, SCR_SET_BUNDLES);
}

static void
remove_set(console_t *c)
{
	if (c->s_cursor >= c->n_sets)
		return;
	store_t *st = NULL;
	ohb_error_t e = { 0, "" };
	int rc = store_open(c->ctx->store, &st, &e);
	if (rc == 0)
		rc = store_remove_interrupted(st, c->sets[c->s_cursor].id, &e);
	store_close(st);
	if (rc)
		console_say(c, ROLE_ERROR, "error %d: %s", rc, e.message);
	else
		console_say(c, ROLE_STATE_OK, "removed the interrupted set");
	console_reload(c);
}

static void
sets_key(console_t *c, int ch)
{
	int h = list_rows(c);
	if (console_list_key(ch, c->n_sets, h, &c->s_cursor))
		return;
	switch (ch) {
	case '\n':
	case '\r':
	case KEY_ENTER:
	case KEY_RIGHT:
		open_set(c);
		break;
	case 'x':
		if (c->s_cursor < c->n_sets && !c->sets[c->s_cursor].complete && !c->job)
			console_ask(c, remove_set, "Remove the interrupted set %s and its files?", c->sets[c->s_cursor].id);
		else
			console_say(c, ROLE_WARNING, "only an interrupted set can be removed, and not while a session runs");
		break;
	case 'R':
		console_reload(c);
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

static void
sets_click(console_t *c, int y, int x)
{
	(void)x;
	int first = draw_body_top() + 2;
	if (y >= first && y < first + list_rows(c) && c->s_top + (size_t)(y - first) < c->n_sets)
		c->s_cursor = c->s_top + (size_t)(y - first);
}

const screen_t screen_sets = {
	"Backup sets",
	"F1 Help  Enter Restore from  x Remove interrupted  R Reload  q Back",
	"Up/Down j/k     move;  PgUp/PgDn, Home/End\n"
	"Enter           restore from the highlighted set: choose its bundles next\n"
	"x               remove an interrupted set (asks)\n"
	"R               reload the list\n"
	"q, Esc          back to Home\n"
	"Interrupted sets (a backup that never finished) are not restore points.",
	sets_draw,
	sets_key,
	sets_click,
};
