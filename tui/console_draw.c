/*
 * console_draw — the curses side of the console's look: theme roles turned
 * into colour pairs and attributes, and the few drawing primitives every
 * screen uses (clipped text, bars, the title row, the status line, the key
 * bar, the confirmation box). Main thread only.
 *
 * Line art is UTF-8 when the locale is (nl_langinfo(CODESET)), ASCII
 * otherwise; bars are drawn with the bar_done/bar_todo roles AND distinct
 * characters, so they read in monochrome too.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"

void
draw_apply_theme(console_t *c)
{
	if (!c->colour || c->theme.mono)
		return;
	for (int i = 0; i < ROLE_COUNT; i++) {
		short fg = c->theme.role[i].fg, bg = c->theme.role[i].bg;
		if (fg >= COLORS)
			fg = (short)(fg % 8);
		if (bg >= COLORS)
			bg = (short)(bg % 8);
		init_pair((short)(i + 1), fg, bg);
	}
	bkgdset((chtype)COLOR_PAIR(ROLE_NORMAL + 1) | ' ');
	wf_coalesce_mark(&c->redraw);
}

int
draw_attr(const console_t *c, theme_role_t role)
{
	int a = c->theme.role[role].attrs;
	int out = 0;
	if (a & THEME_BOLD)
		out |= A_BOLD;
	if (a & THEME_REVERSE)
		out |= A_REVERSE;
	if (a & THEME_UNDERLINE)
		out |= A_UNDERLINE;
	if (a & THEME_DIM)
		out |= A_DIM;
	if (c->colour && !c->theme.mono)
		out |= COLOR_PAIR(role + 1);
	return out;
}

void
draw_fill(console_t *c, int y, int x, int width, theme_role_t role)
{
	if (width <= 0 || y < 0 || y >= c->rows)
		return;
	attrset(draw_attr(c, role));
	mvhline(y, x, ' ', width);
	attrset(draw_attr(c, ROLE_NORMAL));
}

void
draw_text(console_t *c, int y, int x, int width, theme_role_t role, const char *fmt, ...)
{
	if (width <= 0 || y < 0 || y >= c->rows || x >= c->cols)
		return;
	if (x + width > c->cols)
		width = c->cols - x;
	char buf[1024], fit[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	attrset(draw_attr(c, role));
	mvaddstr(y, x, wf_fit(buf, width, fit, sizeof fit));
	attrset(draw_attr(c, ROLE_NORMAL));
}

void
draw_bar(console_t *c, int y, int x, int width, uint64_t done, uint64_t total)
{
	if (width <= 2)
		return;
	int inner = width - 2;
	int cells = wf_bar_cells(done, total, inner);
	attrset(draw_attr(c, ROLE_BORDER));
	mvaddch(y, x, '[');
	mvaddch(y, x + width - 1, ']');
	for (int i = 0; i < inner; i++) {
		bool filled = cells > i;
		attrset(draw_attr(c, filled ? ROLE_BAR_DONE : ROLE_BAR_TODO));
		if (cells < 0)
			mvaddstr(y, x + 1 + i, c->utf8 ? "\xc2\xb7" : ".");   /* unknown total: dotted, never "0 %" */
		else if (filled)
			mvaddstr(y, x + 1 + i, c->utf8 ? "\xe2\x96\x88" : "#");
		else
			mvaddstr(y, x + 1 + i, c->utf8 ? "\xe2\x96\x91" : "-");
	}
	attrset(draw_attr(c, ROLE_NORMAL));
}

void
draw_hline(console_t *c, int y, const char *label)
{
	attrset(draw_attr(c, ROLE_BORDER));
	for (int x = 0; x < c->cols; x++)
		mvaddstr(y, x, c->utf8 ? "\xe2\x94\x80" : "-");
	attrset(draw_attr(c, ROLE_NORMAL));
	if (label && *label)
		draw_text(c, y, 2, c->cols - 4, ROLE_HEADER, " %s ", label);
}

int
draw_body_top(void)
{
	return 1;
}

int
draw_body_rows(const console_t *c)
{
	return c->rows - 3;
}

void
draw_frame(console_t *c, const char *title)
{
	draw_fill(c, 0, 0, c->cols, ROLE_TITLE);
	draw_text(c, 0, 0, c->cols, ROLE_TITLE, " ohbackup %s %s", c->utf8 ? "\xe2\x94\x82" : "|", title);
	char right[200];
	if (c->job && c->run_kind != JOB_SCAN && c->screen != SCR_RUN)
		snprintf(right, sizeof right, "%s running ", c->run_kind == JOB_RESTORE ? "restore" : "backup");
	else
		snprintf(right, sizeof right, "%s ", c->system_full_name[0] ? c->system_full_name : "");
	int len = (int)strlen(right);
	if (len < c->cols / 2)
		draw_text(c, 0, c->cols - len, len, ROLE_TITLE, "%s", right);
}

void
draw_status(console_t *c)
{
	if (c->status[0])
		draw_text(c, c->rows - 2, 0, c->cols, c->status_role, " %s", c->status);
}

/* "F1 Help  Space Toggle  F10 Quit": the first word of each pair is the key. */
void
draw_keybar(console_t *c, const char *keys)
{
	int y = c->rows - 1;
	draw_fill(c, y, 0, c->cols, ROLE_KEYBAR);
	int x = 0;
	const char *p = keys;
	while (*p && x < c->cols) {
		const char *end = strstr(p, "  ");
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char item[64];
		snprintf(item, sizeof item, "%.*s", (int)(len < sizeof item ? len : sizeof item - 1), p);
		char *sp = strchr(item, ' ');
		if (sp)
			*sp = '\0';
		int kl = (int)strlen(item);
		if (x + kl >= c->cols)
			break;
		draw_text(c, y, x, c->cols - x, ROLE_KEYBAR_KEY, "%s", item);
		x += kl;
		if (sp) {
			int ll = (int)strlen(sp + 1);
			draw_text(c, y, x, c->cols - x, ROLE_KEYBAR, " %s", sp + 1);
			x += ll + 1;
		}
		x += 2;
		p = end ? end + 2 : p + len;
	}
}

void
draw_dialog(console_t *c, const char *title, const char *text)
{
	int w = c->cols - 8 > 70 ? 70 : c->cols - 8;
	int inner = w - 4;
	/* wrap text into at most 6 lines */
	char lines[6][128];
	int n = 0;
	const char *p = text;
	while (*p && n < 6) {
		int len = (int)strlen(p);
		int take = len > inner ? inner : len;
		if (len > inner)
			for (int k = take; k > inner / 2; k--)
				if (p[k] == ' ') {
					take = k;
					break;
				}
		snprintf(lines[n++], sizeof lines[0], "%.*s", take, p);
		p += take;
		while (*p == ' ')
			p++;
	}
	int h = n + 4;
	int y0 = (c->rows - h) / 2, x0 = (c->cols - w) / 2;
	for (int y = 0; y < h; y++)
		draw_fill(c, y0 + y, x0, w, ROLE_SELECTED);
	draw_text(c, y0, x0 + 2, w - 4, ROLE_SELECTED, "%s", title);
	for (int i = 0; i < n; i++)
		draw_text(c, y0 + 2 + i, x0 + 2, inner, ROLE_SELECTED, "%s", lines[i]);
	draw_text(c, y0 + h - 1, x0 + 2, inner, ROLE_SELECTED, "[y] Yes   [n] No");
}

theme_role_t
draw_state_role(run_state_t s)
{
	switch (s) {
	case RS_RUNNING:
		return ROLE_STATE_RUNNING;
	case RS_DONE:
		return ROLE_STATE_OK;
	case RS_FAILED:
		return ROLE_STATE_FAILED;
	case RS_CANCELLED:
		return ROLE_STATE_CANCELLED;
	default:
		return ROLE_DIM;
	}
}

const char *
draw_state_text(const run_row_t *r, char *buf, size_t size)
{
	switch (r->state) {
	case RS_RUNNING:
		snprintf(buf, size, r->cancel_asked ? "cancelling" : "running");
		break;
	case RS_DONE:
		snprintf(buf, size, "done");
		break;
	case RS_FAILED:
		snprintf(buf, size, "fail %d", r->code);
		break;
	case RS_CANCELLED:
		snprintf(buf, size, "cancelled");
		break;
	default:
		snprintf(buf, size, "waiting");
		break;
	}
	return buf;
}
