/*
 * screen_log — the full event log of one bundle (or of the whole session):
 * every begin, end, file, result and error line with the spec's codes,
 * scrollable.
 */
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"

/* Index (into the log) of the n-th line shown, or (size_t)-1. */
static size_t
nth_line(const console_t *c, size_t n, size_t *count)
{
	size_t k = 0, hit = (size_t)-1;
	for (size_t i = 0; i < c->n_log; i++) {
		const log_line_t *l = console_log_at(c, i);
		if (c->log_bundle >= 0 && l->bundle != c->log_bundle)
			continue;
		if (k == n)
			hit = i;
		k++;
	}
	if (count)
		*count = k;
	return hit;
}

static void
log_draw(console_t *c)
{
	int y = draw_body_top();
	size_t count = 0;
	nth_line(c, 0, &count);
	const char *who = c->log_bundle >= 0 && (size_t)c->log_bundle < c->n_run ? c->run[c->log_bundle].name : "every bundle";
	draw_text(c, y++, 1, c->cols - 2, ROLE_HEADER, "Log of %s: %zu lines", who, count);
	int h = draw_body_rows(c) - 1;
	size_t maxtop = count > (size_t)h ? count - (size_t)h : 0;
	if (c->log_scroll > maxtop)
		c->log_scroll = maxtop;
	for (int k = 0; k < h; k++) {
		size_t i = nth_line(c, c->log_scroll + (size_t)k, NULL);
		if (i == (size_t)-1)
			break;
		const log_line_t *l = console_log_at(c, i);
		draw_text(c, y++, 1, c->cols - 2, l->role, "%s", l->text);
	}
}

static void
log_key(console_t *c, int ch)
{
	size_t h = (size_t)(draw_body_rows(c) - 1);
	switch (ch) {
	case KEY_UP:
	case 'k':
		if (c->log_scroll)
			c->log_scroll--;
		break;
	case KEY_DOWN:
	case 'j':
		c->log_scroll++;
		break;
	case KEY_PPAGE:
		c->log_scroll = c->log_scroll > h ? c->log_scroll - h : 0;
		break;
	case KEY_NPAGE:
	case ' ':
		c->log_scroll += h;
		break;
	case KEY_HOME:
	case 'g':
		c->log_scroll = 0;
		break;
	case KEY_END:
	case 'G':
		c->log_scroll = (size_t)-1 / 2;
		break;
	case 'q':
	case 27:
	case KEY_LEFT:
		console_go(c, c->run_active ? SCR_RUN : SCR_RESULTS);
		break;
	default:
		break;
	}
}

const screen_t screen_log = {
	"Log",
	"F1 Help  Up/Down Scroll  PgUp/PgDn Page  Home/End  q Back",
	"Up/Down j/k       scroll a line\n"
	"PgUp/PgDn, Space  scroll a page\n"
	"Home/End, g/G     first / last line\n"
	"q, Esc            back",
	log_draw,
	log_key,
	NULL,
};
