/*
 * screen_help — `?` / F1 on any screen: the keys of the screen you came
 * from, then the keys that work everywhere.
 */
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"

static const char global_help[] =
    "F1, ?            this help (any key closes it)\n"
    "F10              quit (asks while a session runs, then cancels it cleanly)\n"
    "Esc then 1..0    F1..F10 on terminals without function keys\n"
    "q, Esc           back\n"
    "Ctrl-L           redraw the screen\n"
    "Ctrl-C           like F10;  a second Ctrl-C does not ask again";


static const screen_t *
from_screen(const console_t *c)
{
	return console_screen(c->help_return < SCR_COUNT ? c->help_return : SCR_HOME);
}

static int
draw_lines(console_t *c, int y, const char *text)
{
	const char *p = text;
	while (*p && y < c->rows - 2) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);
		draw_text(c, y++, 4, c->cols - 6, ROLE_NORMAL, "%.*s", len, p);
		p = nl ? nl + 1 : p + len;
	}
	return y;
}

static void
help_draw(console_t *c)
{
	const screen_t *s = from_screen(c);
	int y = draw_body_top();
	draw_text(c, y++, 2, c->cols - 4, ROLE_HEADER, "Keys of %s", s->title);
	y = draw_lines(c, y, s->help);
	if (y < c->rows - 3) {
		y++;
		draw_text(c, y++, 2, c->cols - 4, ROLE_HEADER, "Everywhere");
		draw_lines(c, y, global_help);
	}
}

static void
help_key(console_t *c, int ch)
{
	(void)ch;
	console_go(c, c->help_return == SCR_HELP ? SCR_HOME : c->help_return);
}

const screen_t screen_help = {
	"Help",
	"any key Back  F10 Quit",
	"Any key closes the help.",
	help_draw,
	help_key,
	NULL,
};
