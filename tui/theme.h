/*
 * theme — colour ROLES and theme files, without curses (unit tested in
 * tests/unit/test_theme.c; console_draw.c turns a theme into curses pairs).
 *
 * Drawing code never names a colour: it asks for a role (title, selected,
 * bar_done, state_failed, ...). Every role has a monochrome rendering (bold /
 * reverse / underline only) used with NO_COLOR, --no-color, or a terminal
 * without colours. A theme file, themes/NAME.theme, overrides roles:
 *
 *     # comment
 *     title    = white blue bold
 *     selected = black cyan
 *     dim      = bright-black default
 *
 * Colours: default, black, red, green, yellow, blue, magenta, cyan, white,
 * bright-<colour>, or a number 0..255. Attributes: bold, reverse, underline,
 * dim. A role the file omits keeps the default theme's rendering.
 *
 * Thread: any; the console uses it from its main thread.
 */
#ifndef OHB_THEME_H
#define OHB_THEME_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
	ROLE_NORMAL,
	ROLE_TITLE,
	ROLE_KEYBAR,
	ROLE_KEYBAR_KEY,
	ROLE_SELECTED,
	ROLE_BAR_DONE,
	ROLE_BAR_TODO,
	ROLE_STATE_OK,
	ROLE_STATE_FAILED,
	ROLE_STATE_RUNNING,
	ROLE_STATE_CANCELLED,
	ROLE_DIM,
	ROLE_ERROR,
	ROLE_WARNING,
	ROLE_BORDER,
	ROLE_HEADER,
	ROLE_COUNT
} theme_role_t;

enum { THEME_BOLD = 1, THEME_REVERSE = 2, THEME_UNDERLINE = 4, THEME_DIM = 8 };

#define THEME_DEFAULT_COLOR (-1)

typedef struct theme_style {
	short fg, bg;     /* -1 = the terminal's default */
	int attrs;        /* THEME_* bits */
} theme_style_t;

typedef struct theme {
	char name[64];
	theme_style_t role[ROLE_COUNT];
	bool mono;        /* attributes only, no colours */
} theme_t;

/* "title", "selected", ... ; NULL for an out-of-range role. */
const char *theme_role_name(theme_role_t role);
/* The built-in default theme (colours) and the monochrome rendering. */
void theme_default(theme_t *t);
void theme_monochrome(theme_t *t);

/* Parses theme text over the default theme. Returns 0, or -1 with err
 * holding "line N: <what is wrong>"; t is then the default theme. */
int theme_parse(const char *text, const char *name, theme_t *t, char *err, size_t err_size);

/* Reads and parses a file (at most 64 KiB); -1 with err on failure. */
int theme_load_file(const char *path, const char *name, theme_t *t, char *err, size_t err_size);

/* The themes folder: $OHBACKUP_THEMES, then <dir of exe>/../themes, then
 * OHB_THEMES_DIR (the install prefix). Fills buf with the first that exists;
 * false when none does. */
bool theme_dir(char *buf, size_t size);

/* Names of the *.theme files in dir, sorted (malloc'd array of malloc'd
 * strings; free with theme_names_free). */
size_t theme_list(const char *dir, char ***names);
void theme_names_free(char **names, size_t n);

#endif
