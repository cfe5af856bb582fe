/*
 * screen_picker — choosing the bundles of a backup, from the capability file
 * (getLocalCapabilities): name, version, size (replaced by scan results when
 * a scan ran), flags, last backup. A bundle that does not allow backup is
 * listed, dimmed, with the reason, and cannot be selected. `/` filters as you
 * type; `s` cycles the sort; Enter starts the session with the selection.
 */
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"

static void
refresh_view(console_t *c)
{
	if (!c->view)
		return;
	c->n_view = list_view(c->brows, c->n_brows, c->filter, c->sort, c->view);
}

static int
list_height(const console_t *c)
{
	return draw_body_rows(c) - 2;
}

static void
picker_draw(console_t *c)
{
	refresh_view(c);
	int y = draw_body_top();
	size_t sel = 0;
	for (size_t i = 0; i < c->n_brows; i++)
		sel += c->brows[i].selected;
	draw_text(c, y, 1, c->cols - 2, ROLE_HEADER, "%s: %zu selected of %zu   sort: %s%s%s%s",
	    c->pick_kind == JOB_INCREMENTAL ? "Incremental backup" : "Backup", sel, c->n_brows, list_sort_label(c->sort),
	    c->filter[0] || c->filtering ? "   filter: " : "", c->filter, c->filtering ? "_" : "");
	y++;
	int namew = c->cols - 4 - 10 - 11 - 6 - 23;
	if (namew < 14)
		namew = 14;
	bool wide = c->cols >= 76;
	draw_text(c, y++, 0, c->cols, ROLE_DIM, "    %-*s %-9s %10s %-5s %s", namew, "BUNDLE", "VERSION", "SIZE", "FLAGS",
	    wide ? "LAST BACKUP" : "");
	int h = list_height(c);
	list_scroll(c->n_view, h, &c->p_cursor, &c->p_top);
	if (c->loading && !c->n_brows)
		draw_text(c, y, 4, c->cols - 4, ROLE_DIM, "loading the capability file...");
	else if (c->n_view == 0)
		draw_text(c, y, 4, c->cols - 4, ROLE_DIM, "no bundle matches \"%s\"", c->filter);
	for (int k = 0; k < h && c->p_top + (size_t)k < c->n_view; k++, y++) {
		size_t vi = c->p_top + (size_t)k;
		const bundle_row_t *r = &c->brows[c->view[vi]];
		bool cur = vi == c->p_cursor;
		theme_role_t role = cur ? ROLE_SELECTED : r->allow ? ROLE_NORMAL : ROLE_DIM;
		if (cur)
			draw_fill(c, y, 0, c->cols, ROLE_SELECTED);
		char sz[32], when[32], flags[8];
		if (r->size >= 0)
			wf_bytes((uint64_t)r->size, sz, sizeof sz);
		else
			snprintf(sz, sizeof sz, "?");
		snprintf(flags, sizeof flags, "%c%c%c", r->allow ? 'B' : '-', r->full_only ? 'F' : '-', r->scanned ? 'S' : '-');
		draw_text(c, y, 0, c->cols, role, "%s %-*s %-9s %10s %-5s %s", r->allow ? (r->selected ? "[x]" : "[ ]") : " - ",
		    namew, r->name, r->version, sz, flags, !r->allow ? r->reason : wide ? wf_date(r->last_backup_ms, when, sizeof when) : "");
	}
	if (c->n_view && c->p_cursor < c->n_view && !c->status[0]) {
		const bundle_row_t *r = &c->brows[c->view[c->p_cursor]];
		if (!r->allow)
			draw_text(c, c->rows - 2, 1, c->cols - 2, ROLE_WARNING, "%s cannot be selected: %s", r->name, r->reason);
		else
			draw_text(c, c->rows - 2, 1, c->cols - 2, ROLE_DIM, "flags: B allows backup, F full backup only, S size from a scan");
	}
}

static void
toggle(console_t *c)
{
	if (c->p_cursor >= c->n_view)
		return;
	bundle_row_t *r = &c->brows[c->view[c->p_cursor]];
	if (!r->allow) {
		console_say(c, ROLE_WARNING, "%s cannot be backed up: %s", r->name, r->reason);
		return;
	}
	r->selected = !r->selected;
	c->p_cursor = list_move(c->n_view, c->p_cursor, 1);
}

static void
start(console_t *c)
{
	char err[600];
	if (job_start_backup(c, c->pick_kind == JOB_INCREMENTAL, err, sizeof err) != 0) {
		console_say(c, ROLE_ERROR, "%s", err);
		return;
	}
	console_go(c, SCR_RUN);
}

static void
picker_key(console_t *c, int ch)
{
	refresh_view(c);
	if (c->filtering) {
		switch (console_edit_key(c->filter, sizeof c->filter, ch)) {
		case EDIT_ESC:
			c->filter[0] = '\0';
			c->filtering = false;
			break;
		case EDIT_ENTER:
			c->filtering = false;
			break;
		case EDIT_CHANGED:
			break;
		case EDIT_OTHER:
			if (ch == KEY_UP || ch == KEY_DOWN) {   /* keeps the filter and moves on into the list */
				c->filtering = false;
				picker_key(c, ch);
			}
			break;
		}
		c->p_cursor = c->p_top = 0;
		return;
	}
	int h = list_height(c);
	if (console_list_key(ch, c->n_view, h, &c->p_cursor))
		return;
	switch (ch) {
	case ' ':
		toggle(c);
		break;
	case 'a':
		for (size_t i = 0; i < c->n_view; i++)
			c->brows[c->view[i]].selected = c->brows[c->view[i]].allow;
		break;
	case 'n':
		for (size_t i = 0; i < c->n_brows; i++)
			c->brows[i].selected = false;
		break;
	case '/':
		c->filtering = true;
		c->filter[0] = '\0';
		break;
	case 's':
		c->sort = (list_sort_t)((c->sort + 1) % LIST_SORT_COUNT);
		console_say(c, ROLE_DIM, "sorted by %s", list_sort_label(c->sort));
		break;
	case '\n':
	case '\r':
	case KEY_ENTER:
	case KEY_F(5):
		start(c);
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
picker_click(console_t *c, int y, int x)
{
	int first = draw_body_top() + 2;
	if (y < first || y >= first + list_height(c))
		return;
	size_t vi = c->p_top + (size_t)(y - first);
	if (vi >= c->n_view)
		return;
	c->p_cursor = vi;
	if (x < 4)
		toggle(c);
}

const screen_t screen_picker = {
	"Pick bundles",
	"F1 Help  Space Select  a All  n None  / Filter  s Sort  Enter Start  q Back",
	"Up/Down j/k      move;  PgUp/PgDn, Home/End (g/G) jump\n"
	"Space            select / unselect the highlighted bundle\n"
	"a                select every shown bundle that allows backup\n"
	"n                select none\n"
	"/                filter by name as you type; Enter keeps it, Esc clears it\n"
	"s                sort: name, size, last backup\n"
	"Enter, F5        back up the selection\n"
	"mouse            click a row to highlight it, its [ ] to select it\n"
	"q, Esc           back to Home\n"
	"Bundles marked - do not allow backup (13500001) and cannot be selected.",
	picker_draw,
	picker_key,
	picker_click,
};
