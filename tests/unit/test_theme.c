/* Tests of tui/theme.c: the role table, theme file parsing with its error
 * messages and fallbacks, and the theme files shipped in themes/. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tui/theme.h"

START_TEST(roles_and_monochrome)
{
	theme_t t;
	theme_monochrome(&t);
	ck_assert(t.mono);
	for (int i = 0; i < ROLE_COUNT; i++) {
		ck_assert_ptr_nonnull(theme_role_name((theme_role_t)i));
		ck_assert_int_eq(t.role[i].fg, THEME_DEFAULT_COLOR);   /* attributes only */
		ck_assert_int_eq(t.role[i].bg, THEME_DEFAULT_COLOR);
	}
	ck_assert(t.role[ROLE_SELECTED].attrs & THEME_REVERSE);
	ck_assert_ptr_null(theme_role_name(ROLE_COUNT));
	ck_assert_str_eq(theme_role_name(ROLE_BAR_DONE), "bar_done");
}
END_TEST

START_TEST(parse_overrides_and_falls_back)
{
	theme_t t, d;
	char err[200];
	theme_default(&d);
	ck_assert_int_eq(theme_parse("# a comment\n\n  title = red bright-white bold underline  # trailing\n"
	                             "dim = 244 default\nselected=black cyan reverse", "mine", &t, err, sizeof err), 0);
	ck_assert_str_eq(t.name, "mine");
	ck_assert_int_eq(t.role[ROLE_TITLE].fg, 1);
	ck_assert_int_eq(t.role[ROLE_TITLE].bg, 15);
	ck_assert_int_eq(t.role[ROLE_TITLE].attrs, THEME_BOLD | THEME_UNDERLINE);
	ck_assert_int_eq(t.role[ROLE_DIM].fg, 244);
	ck_assert_int_eq(t.role[ROLE_DIM].bg, THEME_DEFAULT_COLOR);
	ck_assert_int_eq(t.role[ROLE_SELECTED].attrs, THEME_REVERSE);
	/* omitted roles keep the default */
	ck_assert_int_eq(t.role[ROLE_ERROR].fg, d.role[ROLE_ERROR].fg);
	ck_assert_int_eq(t.role[ROLE_ERROR].attrs, d.role[ROLE_ERROR].attrs);
	ck_assert_int_eq(theme_parse("", "empty", &t, err, sizeof err), 0);
}
END_TEST

START_TEST(broken_files_explain_themselves)
{
	theme_t t;
	char err[200];
	ck_assert_int_eq(theme_parse("title = white blue\nbogus = red red\n", "x", &t, err, sizeof err), -1);
	ck_assert_str_eq(err, "line 2: unknown role \"bogus\"");
	ck_assert_str_eq(t.name, "default");   /* a broken file gives the default theme */
	ck_assert_int_eq(theme_parse("title = white nocolour", "x", &t, err, sizeof err), -1);
	ck_assert_str_eq(err, "line 1: unknown colour \"nocolour\"");
	ck_assert_int_eq(theme_parse("title = white\n", "x", &t, err, sizeof err), -1);
	ck_assert(strstr(err, "line 1: expected a foreground and a background") != NULL);
	ck_assert_int_eq(theme_parse("title = white blue blink\n", "x", &t, err, sizeof err), -1);
	ck_assert_str_eq(err, "line 1: unknown attribute \"blink\"");
	ck_assert_int_eq(theme_parse("just words\n", "x", &t, err, sizeof err), -1);
	ck_assert_int_eq(theme_parse("title = 256 blue\n", "x", &t, err, sizeof err), -1);
	ck_assert_int_eq(theme_parse("title = bright-7 blue\n", "x", &t, err, sizeof err), -1);
	ck_assert_int_eq(theme_parse("a b = red red\n", "x", &t, err, sizeof err), -1);
	ck_assert_int_eq(theme_load_file("/nonexistent/x.theme", "x", &t, err, sizeof err), -1);
	ck_assert(strstr(err, "cannot open /nonexistent/x.theme") != NULL);
}
END_TEST

/* The shipped themes parse, and the required five exist. */
START_TEST(shipped_themes_parse)
{
	static const char *const need[] = { "default", "dark", "light", "monochrome", "high-contrast" };
	const char *dir = getenv("OHBACKUP_THEMES");
	char path[512], err[300];
	if (!dir || access(dir, R_OK) != 0)
		dir = "themes";
	char **names;
	size_t n = theme_list(dir, &names);
	ck_assert_uint_ge(n, 5);
	for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
		theme_t t;
		snprintf(path, sizeof path, "%s/%s.theme", dir, need[i]);
		ck_assert_msg(theme_load_file(path, need[i], &t, err, sizeof err) == 0, "%s", err);
	}
	for (size_t i = 1; i < n; i++)
		ck_assert(strcmp(names[i - 1], names[i]) < 0);   /* sorted */
	theme_names_free(names, n);
}
END_TEST

Suite *theme_suite(void)
{
	Suite *s = suite_create("theme");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, roles_and_monochrome);
	tcase_add_test(tc, parse_overrides_and_falls_back);
	tcase_add_test(tc, broken_files_explain_themselves);
	tcase_add_test(tc, shipped_themes_parse);
	suite_add_tcase(s, tc);
	return s;
}
