/*
 * theme — the role table, theme file parsing and the theme search path (see
 * theme.h). Parsing is strict and explains itself: a broken theme file gives
 * "line N: ..." and the console falls back to the default theme with that
 * message, instead of drawing in unreadable colours.
 */
#include "theme.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef OHB_THEMES_DIR
#define OHB_THEMES_DIR "/usr/local/share/ohbackup/themes"
#endif

static const char *const role_names[ROLE_COUNT] = {
	"normal", "title", "keybar", "keybar_key", "selected", "bar_done", "bar_todo", "state_ok",
	"state_failed", "state_running", "state_cancelled", "dim", "error", "warning", "border", "header",
};

/* The monochrome rendering of each role: what every theme falls back to when
 * there are no colours. */
static const int mono_attrs[ROLE_COUNT] = {
	[ROLE_NORMAL] = 0,
	[ROLE_TITLE] = THEME_BOLD | THEME_REVERSE,
	[ROLE_KEYBAR] = THEME_REVERSE,
	[ROLE_KEYBAR_KEY] = THEME_BOLD,
	[ROLE_SELECTED] = THEME_REVERSE,
	[ROLE_BAR_DONE] = THEME_REVERSE,
	[ROLE_BAR_TODO] = 0,
	[ROLE_STATE_OK] = THEME_BOLD,
	[ROLE_STATE_FAILED] = THEME_BOLD | THEME_UNDERLINE,
	[ROLE_STATE_RUNNING] = THEME_BOLD,
	[ROLE_STATE_CANCELLED] = THEME_UNDERLINE,
	[ROLE_DIM] = THEME_DIM,
	[ROLE_ERROR] = THEME_BOLD | THEME_UNDERLINE,
	[ROLE_WARNING] = THEME_BOLD,
	[ROLE_BORDER] = 0,
	[ROLE_HEADER] = THEME_BOLD | THEME_UNDERLINE,
};

const char *
theme_role_name(theme_role_t role)
{
	return (unsigned)role < ROLE_COUNT ? role_names[role] : NULL;
}

void
theme_monochrome(theme_t *t)
{
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "monochrome");
	t->mono = true;
	for (int i = 0; i < ROLE_COUNT; i++)
		t->role[i] = (theme_style_t){ THEME_DEFAULT_COLOR, THEME_DEFAULT_COLOR, mono_attrs[i] };
}

void
theme_default(theme_t *t)
{
	theme_monochrome(t);
	snprintf(t->name, sizeof t->name, "default");
	t->mono = false;
	/* colour numbers: 0 black 1 red 2 green 3 yellow 4 blue 5 magenta 6 cyan 7 white */
	t->role[ROLE_TITLE] = (theme_style_t){ 7, 4, THEME_BOLD };
	t->role[ROLE_KEYBAR] = (theme_style_t){ 0, 6, 0 };
	t->role[ROLE_KEYBAR_KEY] = (theme_style_t){ 7, 0, THEME_BOLD };
	t->role[ROLE_SELECTED] = (theme_style_t){ 0, 6, 0 };
	t->role[ROLE_BAR_DONE] = (theme_style_t){ 0, 2, 0 };
	t->role[ROLE_BAR_TODO] = (theme_style_t){ THEME_DEFAULT_COLOR, THEME_DEFAULT_COLOR, THEME_DIM };
	t->role[ROLE_STATE_OK] = (theme_style_t){ 2, THEME_DEFAULT_COLOR, THEME_BOLD };
	t->role[ROLE_STATE_FAILED] = (theme_style_t){ 1, THEME_DEFAULT_COLOR, THEME_BOLD };
	t->role[ROLE_STATE_RUNNING] = (theme_style_t){ 6, THEME_DEFAULT_COLOR, THEME_BOLD };
	t->role[ROLE_STATE_CANCELLED] = (theme_style_t){ 3, THEME_DEFAULT_COLOR, 0 };
	t->role[ROLE_DIM] = (theme_style_t){ THEME_DEFAULT_COLOR, THEME_DEFAULT_COLOR, THEME_DIM };
	t->role[ROLE_ERROR] = (theme_style_t){ 1, THEME_DEFAULT_COLOR, THEME_BOLD };
	t->role[ROLE_WARNING] = (theme_style_t){ 3, THEME_DEFAULT_COLOR, THEME_BOLD };
	t->role[ROLE_BORDER] = (theme_style_t){ 4, THEME_DEFAULT_COLOR, 0 };
	t->role[ROLE_HEADER] = (theme_style_t){ 6, THEME_DEFAULT_COLOR, THEME_BOLD };
}

static const char *const colour_names[] = { "black", "red", "green", "yellow", "blue", "magenta", "cyan", "white" };

/* A colour word: default, a name, bright-<name>, or 0..255. */
static bool
parse_colour(const char *w, short *out)
{
	if (strcmp(w, "default") == 0 || strcmp(w, "-1") == 0) {
		*out = THEME_DEFAULT_COLOR;
		return true;
	}
	int base = 0;
	if (strncmp(w, "bright-", 7) == 0) {
		base = 8;
		w += 7;
	}
	for (int i = 0; i < 8; i++)
		if (strcmp(w, colour_names[i]) == 0) {
			*out = (short)(base + i);
			return true;
		}
	if (base == 0 && isdigit((unsigned char)*w)) {
		char *end;
		long v = strtol(w, &end, 10);
		if (!*end && v >= 0 && v <= 255) {
			*out = (short)v;
			return true;
		}
	}
	return false;
}

static int
parse_attr(const char *w)
{
	if (strcmp(w, "bold") == 0)
		return THEME_BOLD;
	if (strcmp(w, "reverse") == 0)
		return THEME_REVERSE;
	if (strcmp(w, "underline") == 0)
		return THEME_UNDERLINE;
	if (strcmp(w, "dim") == 0)
		return THEME_DIM;
	return 0;
}

static int
role_by_name(const char *w)
{
	for (int i = 0; i < ROLE_COUNT; i++)
		if (strcmp(w, role_names[i]) == 0)
			return i;
	return -1;
}

/* Splits line (modified in place) into at most max words at blanks. */
static int
split_words(char *line, char **words, int max)
{
	int n = 0;
	char *p = line;
	while (*p) {
		while (*p && isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (n == max)
			return max + 1;
		words[n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

static int
fail(theme_t *t, char *err, size_t err_size, int line, const char *what, const char *word)
{
	snprintf(err, err_size, "line %d: %s%s%s%s", line, what, word ? " \"" : "", word ? word : "", word ? "\"" : "");
	theme_default(t);
	return -1;
}

int
theme_parse(const char *text, const char *name, theme_t *t, char *err, size_t err_size)
{
	theme_default(t);
	snprintf(t->name, sizeof t->name, "%s", name ? name : "custom");
	if (err_size)
		err[0] = '\0';
	int lineno = 0;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[512];
		lineno++;
		if (len >= sizeof line)
			return fail(t, err, err_size, lineno, "line too long", NULL);
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl ? nl + 1 : p + len;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *eq = strchr(line, '=');
		char *words[8];
		if (!eq) {
			if (split_words(line, words, 8) == 0)
				continue;   /* blank or comment */
			return fail(t, err, err_size, lineno, "expected `role = fg bg [attributes]`", NULL);
		}
		*eq = '\0';
		char *lhs[2];
		if (split_words(line, lhs, 1) != 1)
			return fail(t, err, err_size, lineno, "expected one role name before '='", NULL);
		int role = role_by_name(lhs[0]);
		if (role < 0)
			return fail(t, err, err_size, lineno, "unknown role", lhs[0]);
		int n = split_words(eq + 1, words, 6);
		if (n < 2 || n > 6)
			return fail(t, err, err_size, lineno, "expected a foreground and a background colour", NULL);
		theme_style_t st;
		if (!parse_colour(words[0], &st.fg))
			return fail(t, err, err_size, lineno, "unknown colour", words[0]);
		if (!parse_colour(words[1], &st.bg))
			return fail(t, err, err_size, lineno, "unknown colour", words[1]);
		st.attrs = 0;
		for (int i = 2; i < n; i++) {
			int a = parse_attr(words[i]);
			if (!a)
				return fail(t, err, err_size, lineno, "unknown attribute", words[i]);
			st.attrs |= a;
		}
		t->role[role] = st;
	}
	return 0;
}

int
theme_load_file(const char *path, const char *name, theme_t *t, char *err, size_t err_size)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, err_size, "cannot open %s: %s", path, strerror(errno));
		theme_default(t);
		return -1;
	}
	char *buf = malloc(65537);
	size_t n = buf ? fread(buf, 1, 65536, f) : 0;
	bool too_big = buf && n == 65536 && fgetc(f) != EOF;
	fclose(f);
	if (!buf || too_big) {
		free(buf);
		snprintf(err, err_size, "%s: %s", path, buf ? "larger than 64 KiB" : "out of memory");
		theme_default(t);
		return -1;
	}
	buf[n] = '\0';
	char e[200];
	int rc = theme_parse(buf, name, t, e, sizeof e);
	free(buf);
	if (rc != 0)
		snprintf(err, err_size, "%s: %s", path, e);
	return rc;
}

static bool
is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

bool
theme_dir(char *buf, size_t size)
{
	const char *env = getenv("OHBACKUP_THEMES");
	if (env && *env && is_dir(env)) {
		snprintf(buf, size, "%s", env);
		return true;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			char up[PATH_MAX + 16], real[PATH_MAX];
			snprintf(up, sizeof up, "%s/../themes", exe);
			if (is_dir(up)) {
				snprintf(buf, size, "%s", realpath(up, real) ? real : up);
				return true;
			}
		}
	}
	snprintf(buf, size, "%s", OHB_THEMES_DIR);
	return is_dir(buf);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t
theme_list(const char *dir, char ***names)
{
	*names = NULL;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		if (len <= 6 || e->d_name[0] == '.' || strcmp(e->d_name + len - 6, ".theme") != 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			char **v = realloc(*names, cap * sizeof *v);
			if (!v)
				break;
			*names = v;
		}
		char *s = strndup(e->d_name, len - 6);
		if (s)
			(*names)[n++] = s;
	}
	closedir(d);
	if (n)
		qsort(*names, n, sizeof **names, cmp_names);
	return n;
}

void
theme_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}
