/*
 * screen_set_bundles — the bundles of the chosen set, for a restore: Space
 * selects, r gives a target name so the data goes into a renamed bundle
 * (the spec's app_mapping_relation), Enter starts the restore. Bundles the
 * set holds no good backup of are shown with their code and not selectable.
 */
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"

static int
list_rows(const console_t *c)
{
	return draw_body_rows(c) - 3;
}

static const store_set_info_t *
the_set(const console_t *c)
{
	return c->restore_set >= 0 && (size_t)c->restore_set < c->n_sets ? &c->sets[c->restore_set] : NULL;
}

static void
sb_draw(console_t *c)
{
	const store_set_info_t *s = the_set(c);
	int y = draw_body_top();
	if (!s) {
		draw_text(c, y, 1, c->cols - 2, ROLE_ERROR, "the set is gone (the list was reloaded); q goes back");
		return;
	}
	size_t sel = 0;
	for (size_t i = 0; i < c->n_sb; i++)
		sel += c->sb_selected[i];
	draw_text(c, y++, 1, c->cols - 2, ROLE_HEADER, "Restore from %s (%s, %s): %zu of %zu selected", s->id, s->kind, s->created,
	    sel, c->n_sb);
	if (strcmp(s->kind, "incremental") == 0)
		draw_text(c, y++, 1, c->cols - 2, ROLE_DIM, "incremental set: its chain back to a full set (base %s) is restored whole",
		    s->base ? s->base : "?");
	else
		y++;
	int namew = c->cols >= 100 ? 36 : 26;
	draw_text(c, y++, 0, c->cols, ROLE_DIM, "    %-*s %10s %6s  %s", namew, "BUNDLE", "BYTES", "FILES", "RESTORE INTO");
	int h = list_rows(c) - 1;
	list_scroll(c->n_sb, h, &c->sb_cursor, &c->sb_top);
	for (int k = 0; k < h && c->sb_top + (size_t)k < c->n_sb; k++, y++) {
		size_t i = c->sb_top + (size_t)k;
		const store_bundle_info_t *b = &s->bundles[i];
		bool cur = i == c->sb_cursor;
		char sz[32], into[220];
		if (b->code)
			snprintf(into, sizeof into, "no good backup: error %d", b->code);
		else if (c->editing_target && cur)
			snprintf(into, sizeof into, "-> %s_", c->edit_buf);
		else
			snprintf(into, sizeof into, "%s", c->sb_target[i][0] ? c->sb_target[i] : "(same name)");
		if (cur)
			draw_fill(c, y, 0, c->cols, ROLE_SELECTED);
		draw_text(c, y, 0, c->cols, cur ? ROLE_SELECTED : b->code ? ROLE_DIM : ROLE_NORMAL, "%s %-*s %10s %6llu  %s",
		    b->code ? " - " : c->sb_selected[i] ? "[x]" : "[ ]", namew, b->name, wf_bytes(b->bytes, sz, sizeof sz),
		    (unsigned long long)b->files, into);
	}
}

static void
sb_toggle(console_t *c)
{
	const store_set_info_t *s = the_set(c);
	if (!s || c->sb_cursor >= c->n_sb)
		return;
	if (s->bundles[c->sb_cursor].code) {
		console_say(c, ROLE_WARNING, "%s failed in this set (error %d): nothing to restore", s->bundles[c->sb_cursor].name,
		    s->bundles[c->sb_cursor].code);
		return;
	}
	c->sb_selected[c->sb_cursor] = !c->sb_selected[c->sb_cursor];
	c->sb_cursor = list_move(c->n_sb, c->sb_cursor, 1);
}

static void
sb_key(console_t *c, int ch)
{
	const store_set_info_t *s = the_set(c);
	if (c->editing_target) {
		if (ch == ' ')
			return;   /* a bundle name has no spaces */
		edit_key_t k = console_edit_key(c->edit_buf, sizeof c->edit_buf, ch);
		if (k == EDIT_ENTER) {
			snprintf(c->sb_target[c->sb_cursor], sizeof c->sb_target[0], "%s", c->edit_buf);
			c->editing_target = false;
			if (c->edit_buf[0])
				console_say(c, ROLE_NORMAL, "%s will be restored into %s", s ? s->bundles[c->sb_cursor].name : "?", c->edit_buf);
		} else if (k == EDIT_ESC) {
			c->editing_target = false;
		}
		return;
	}
	char err[600];
	if (console_list_key(ch, c->n_sb, list_rows(c), &c->sb_cursor))
		return;
	switch (ch) {
	case ' ':
		sb_toggle(c);
		break;
	case 'a':
		for (size_t i = 0; s && i < c->n_sb; i++)
			c->sb_selected[i] = s->bundles[i].code == 0;
		break;
	case 'n':
		for (size_t i = 0; i < c->n_sb; i++)
			c->sb_selected[i] = false;
		break;
	case 'r':
		if (s && c->sb_cursor < c->n_sb && !s->bundles[c->sb_cursor].code) {
			c->editing_target = true;
			snprintf(c->edit_buf, sizeof c->edit_buf, "%s", c->sb_target[c->sb_cursor]);
			console_say(c, ROLE_NORMAL, "type the installed bundle to restore into; Enter keeps it, empty = same name");
		}
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
	case KEY_F(5):
		if (job_start_restore(c, err, sizeof err) != 0)
			console_say(c, ROLE_ERROR, "%s", err);
		else
			console_go(c, SCR_RUN);
		break;
	case 'q':
	case 27:
	case KEY_LEFT:
		console_go(c, SCR_SETS);
		break;
	default:
		break;
	}
}

static void
sb_click(console_t *c, int y, int x)
{
	int first = draw_body_top() + 3;
	if (y < first || y >= first + list_rows(c) - 1 || c->sb_top + (size_t)(y - first) >= c->n_sb)
		return;
	c->sb_cursor = c->sb_top + (size_t)(y - first);
	if (x < 4)
		sb_toggle(c);
}

const screen_t screen_set_bundles = {
	"Restore: bundles",
	"F1 Help  Space Select  a All  n None  r Rename  Enter Restore  q Back",
	"Up/Down j/k    move;  PgUp/PgDn, Home/End\n"
	"Space          select / unselect the highlighted bundle\n"
	"a / n          select all / none\n"
	"r              restore into another installed bundle (app_mapping_relation):\n"
	"               type its name, Enter keeps it, an empty name restores in place\n"
	"Enter, F5      restore the selection (each bundle all or nothing)\n"
	"q, Esc         back to the sets",
	sb_draw,
	sb_key,
	sb_click,
};
