/*
 * screen_settings — the choices that last for this console: the colour
 * theme (a themes/NAME.theme file, switched live), the default send rate for new runs,
 * and the redraw interval (slower for slow SSH links, as ncdu's -q).
 */
#include <stdio.h>
#include <string.h>

#include <curses.h>

#include "console.h"

enum { SET_THEME, SET_RATE, SET_REDRAW, SET_COUNT };

static void
settings_draw(console_t *c)
{
	int y = draw_body_top() + 1;
	char **names = NULL;
	size_t n = theme_list(c->themes_dir, &names);
	char rate[32];
	if (c->default_rate > 0)
		snprintf(rate, sizeof rate, "%d files/s", c->default_rate);
	else
		snprintf(rate, sizeof rate, "service default (60/s)");
	const char *labels[SET_COUNT] = { "Theme", "Send rate for new runs", "Redraw interval" };
	char values[SET_COUNT][128];
	snprintf(values[SET_THEME], sizeof values[0], "%s%s", c->theme.name, c->mono_forced ? " (colours off)" : "");
	snprintf(values[SET_RATE], sizeof values[0], "%s", rate);
	snprintf(values[SET_REDRAW], sizeof values[0], "%d ms%s", c->redraw_ms, c->redraw_ms > 500 ? " (slow link)" : "");
	for (int i = 0; i < SET_COUNT; i++, y++) {
		bool cur = (size_t)i == c->set_cursor;
		if (cur)
			draw_fill(c, y, 2, c->cols - 4, ROLE_SELECTED);
		draw_text(c, y, 4, c->cols - 6, cur ? ROLE_SELECTED : ROLE_NORMAL, "%-26s < %s >", labels[i], values[i]);
	}
	y++;
	draw_text(c, y++, 2, c->cols - 4, ROLE_HEADER, "Themes in %s", c->themes_dir);
	for (size_t i = 0; i < n && y < c->rows - 3; i++)
		draw_text(c, y++, 4, c->cols - 6, strcmp(names[i], c->theme.name) == 0 ? ROLE_STATE_OK : ROLE_NORMAL, "%s %s",
		    strcmp(names[i], c->theme.name) == 0 ? "*" : " ", names[i]);
	if (n == 0)
		draw_text(c, y++, 4, c->cols - 6, ROLE_WARNING, "no theme files found");
	if (c->theme_error[0] && y < c->rows - 2)
		draw_text(c, y++, 2, c->cols - 4, ROLE_ERROR, "%s", c->theme_error);
	theme_names_free(names, n);
	/* role samples */
	if (y + 1 < c->rows - 2) {
		int x = 2;
		static const theme_role_t sample[] = { ROLE_STATE_OK, ROLE_STATE_RUNNING, ROLE_STATE_FAILED, ROLE_STATE_CANCELLED,
			ROLE_WARNING, ROLE_ERROR, ROLE_DIM };
		y++;
		for (size_t i = 0; i < sizeof sample / sizeof sample[0]; i++) {
			const char *nm = theme_role_name(sample[i]);
			draw_text(c, y, x, (int)strlen(nm) + 1, sample[i], "%s", nm);
			x += (int)strlen(nm) + 2;
			if (x > c->cols - 16)
				break;
		}
	}
}

static void
cycle_theme(console_t *c, int dir)
{
	char **names = NULL;
	size_t n = theme_list(c->themes_dir, &names);
	if (n == 0) {
		console_say(c, ROLE_WARNING, "no theme files in %s", c->themes_dir);
		return;
	}
	size_t at = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], c->theme.name) == 0)
			at = i;
	at = (at + n + (size_t)(dir > 0 ? 1 : n - 1)) % n;
	if (console_set_theme(c, names[at]))
		console_say(c, ROLE_STATE_OK, "theme %s", names[at]);
	theme_names_free(names, n);
	clearok(curscr, TRUE);
}

static void
change(console_t *c, int dir)
{
	switch (c->set_cursor) {
	case SET_THEME:
		cycle_theme(c, dir);
		break;
	case SET_RATE: {
		static const int steps[] = { 0, 1, 2, 5, 10, 30, 60, 120, 250, 500, 800 };
		size_t n = sizeof steps / sizeof steps[0], at = 0;
		for (size_t i = 0; i < n; i++)
			if (steps[i] <= c->default_rate)
				at = i;
		at = dir > 0 ? (at + 1 < n ? at + 1 : at) : (at ? at - 1 : 0);
		c->default_rate = steps[at];
		break;
	}
	case SET_REDRAW:
		c->redraw_ms = c->redraw_ms == 100 ? (dir > 0 ? 500 : 100) : c->redraw_ms == 500 ? (dir > 0 ? 2000 : 100) : (dir > 0 ? 2000 : 500);
		c->redraw.interval_ms = c->redraw_ms;
		break;
	default:
		break;
	}
}

static void
settings_key(console_t *c, int ch)
{
	switch (ch) {
	case KEY_UP:
	case 'k':
		c->set_cursor = c->set_cursor ? c->set_cursor - 1 : SET_COUNT - 1;
		break;
	case KEY_DOWN:
	case 'j':
		c->set_cursor = (c->set_cursor + 1) % SET_COUNT;
		break;
	case KEY_RIGHT:
	case 'l':
	case '\n':
	case '\r':
	case KEY_ENTER:
	case ' ':
	case '+':
		change(c, 1);
		break;
	case KEY_LEFT:
	case 'h':
	case '-':
		change(c, -1);
		break;
	case 't':
		c->set_cursor = SET_THEME;
		change(c, 1);
		break;
	case 'q':
	case 27:
		console_go(c, SCR_HOME);
		break;
	default:
		break;
	}
}

const screen_t screen_settings = {
	"Settings",
	"F1 Help  Up/Down Choose  Left/Right Change  t Next theme  q Back",
	"Up/Down j/k          choose a setting\n"
	"Right/Enter/Space/+  next value;  Left/-  previous value\n"
	"t                    next theme (the themes folder is listed)\n"
	"q, Esc               back to Home\n"
	"Themes are files themes/NAME.theme: `role = fg bg [bold|reverse|underline|dim]`.\n"
	"--theme NAME picks one at start; NO_COLOR or --no-color turn colours off.",
	settings_draw,
	settings_key,
	NULL,
};
