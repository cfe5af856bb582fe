/* Tests of the console's pure widget logic: widget_fmt.c (bytes, rates, ETA,
 * bars, the redraw coalescer), widget_list.c (capability rows, filter, sort,
 * scrolling) and console_evq.c (progress coalescing, the self-pipe wake). */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tui/console_evq.h"
#include "../../tui/widget_fmt.h"
#include "../../tui/widget_list.h"

START_TEST(bytes_and_rates)
{
	char b[32];
	ck_assert_str_eq(wf_bytes(0, b, sizeof b), "0 B");
	ck_assert_str_eq(wf_bytes(1023, b, sizeof b), "1023 B");
	ck_assert_str_eq(wf_bytes(1024, b, sizeof b), "1.0 KiB");
	ck_assert_str_eq(wf_bytes(20647317, b, sizeof b), "19.7 MiB");
	ck_assert_str_eq(wf_rate(-1, b, sizeof b), "-");
	ck_assert_str_eq(wf_rate(2048, b, sizeof b), "2.0 KiB/s");
	ck_assert_str_eq(wf_percent(0, 0, b, sizeof b), "?");   /* unknown is never 0 % */
	ck_assert_str_eq(wf_percent(1, 4, b, sizeof b), "25%");
	ck_assert_str_eq(wf_percent(9, 4, b, sizeof b), "100%");
}
END_TEST

START_TEST(eta)
{
	char b[16];
	ck_assert_int_eq(wf_eta_secs(0, 0, 100), -1);      /* no total */
	ck_assert_int_eq(wf_eta_secs(0, 1000, 0), -1);     /* no rate */
	ck_assert_int_eq(wf_eta_secs(0, 1000, -1), -1);
	ck_assert_int_eq(wf_eta_secs(500, 1000, 100), 5);
	ck_assert_int_eq(wf_eta_secs(2000, 1000, 100), 0);
	ck_assert_int_eq(wf_eta_secs(0, UINT64_MAX, 1), -1);   /* absurd: unknown */
	ck_assert_str_eq(wf_eta(-1, b, sizeof b), "--:--");
	ck_assert_str_eq(wf_eta(0, b, sizeof b), "0:00");
	ck_assert_str_eq(wf_eta(42, b, sizeof b), "0:42");
	ck_assert_str_eq(wf_eta(725, b, sizeof b), "12:05");
	ck_assert_str_eq(wf_eta(10921, b, sizeof b), "3:02:01");
}
END_TEST

START_TEST(bars_and_fit)
{
	char b[16];
	ck_assert_int_eq(wf_bar_cells(0, 0, 10), -1);
	ck_assert_int_eq(wf_bar_cells(0, 100, 10), 0);
	ck_assert_int_eq(wf_bar_cells(55, 100, 10), 5);
	ck_assert_int_eq(wf_bar_cells(100, 100, 10), 10);
	ck_assert_int_eq(wf_bar_cells(200, 100, 10), 10);
	ck_assert_int_eq(wf_bar_cells(5, 10, 0), 0);
	ck_assert_str_eq(wf_fit("com.example.gallery", 8, b, sizeof b), "com.exa~");
	ck_assert_str_eq(wf_fit("short", 8, b, sizeof b), "short");
	ck_assert_str_eq(wf_fit("abc", 0, b, sizeof b), "");
	ck_assert_str_eq(wf_fit("0123456789abcdefghij", 40, b, sizeof b), "0123456789abcd~");   /* bounded by buf */
	ck_assert_str_eq(wf_date(0, b, sizeof b), "never");
}
END_TEST

/* The sizes an operator types (optimize space's totalSize, CLI and console). */
START_TEST(typed_sizes)
{
	uint64_t v = 0;
	ck_assert(wf_parse_size("1073741824", &v) && v == 1073741824ull);
	ck_assert(wf_parse_size("512M", &v) && v == 512ull << 20);
	ck_assert(wf_parse_size(" 2GiB ", &v) && v == 2ull << 30);
	ck_assert(wf_parse_size("250kb", &v) && v == 250ull << 10);
	ck_assert(wf_parse_size("1T", &v) && v == 1ull << 40);
	ck_assert(wf_parse_size("0", &v) && v == 0);
	ck_assert(!wf_parse_size("", &v));
	ck_assert(!wf_parse_size("M", &v));
	ck_assert(!wf_parse_size("-1", &v));
	ck_assert(!wf_parse_size("1.5M", &v));
	ck_assert(!wf_parse_size("12X", &v));
	ck_assert(!wf_parse_size("99999999999999999999", &v));   /* overflows 64 bits */
	ck_assert(!wf_parse_size("20000000T", &v));              /* overflows after the unit */
}
END_TEST

START_TEST(typed_counts)
{
	uint64_t v = 99;
	ck_assert(wf_parse_uint("30", 36500, &v) && v == 30);
	ck_assert(wf_parse_uint(" 7 ", 36500, &v) && v == 7);
	ck_assert(wf_parse_uint("0", 36500, &v) && v == 0);
	ck_assert(wf_parse_uint("36500", 36500, &v) && v == 36500);
	ck_assert(wf_parse_uint("007", 10, &v) && v == 7);
	ck_assert(wf_parse_uint("18446744073709551615", UINT64_MAX, &v) && v == UINT64_MAX);
	v = 99;
	ck_assert(!wf_parse_uint("36501", 36500, &v));
	ck_assert(!wf_parse_uint("7", 5, &v));                   /* one digit above max */
	ck_assert(!wf_parse_uint("18446744073709551616", UINT64_MAX, &v));   /* overflows 64 bits */
	ck_assert(!wf_parse_uint("", 36500, &v));
	ck_assert(!wf_parse_uint("   ", 36500, &v));
	ck_assert(!wf_parse_uint("-1", 36500, &v));
	ck_assert(!wf_parse_uint("+1", 36500, &v));
	ck_assert(!wf_parse_uint("30d", 36500, &v));
	ck_assert(!wf_parse_uint("1K", 36500, &v));               /* a size unit is not a count */
	ck_assert(!wf_parse_uint("3 0", 36500, &v));
	ck_assert(!wf_parse_uint("1.5", 36500, &v));
	ck_assert(v == 99);                                       /* untouched on failure */
}
END_TEST

START_TEST(rate_estimate)
{
	wf_rate_t r;
	wf_rate_init(&r);
	ck_assert(r.bps < 0);
	wf_rate_sample(&r, 0, 1000);
	ck_assert(r.bps < 0);
	wf_rate_sample(&r, 100, 1100);   /* too close: folded into the next */
	ck_assert(r.bps < 0);
	wf_rate_sample(&r, 2000, 3000);   /* 2000 B in 2 s */
	ck_assert(r.bps > 999 && r.bps < 1001);
}
END_TEST

START_TEST(coalescer)
{
	wf_coalesce_t c;
	wf_coalesce_init(&c, 100);
	ck_assert_int_eq(wf_coalesce_timeout(&c, 0), 0);   /* first frame at once */
	wf_coalesce_drawn(&c, 1000);
	ck_assert_int_eq(wf_coalesce_timeout(&c, 1010), -1);   /* idle: block forever */
	for (int i = 0; i < 1000; i++)
		wf_coalesce_mark(&c);   /* a flood of events ... */
	ck_assert_int_eq(wf_coalesce_timeout(&c, 1010), 90);   /* ... one redraw, not before 100 ms */
	ck_assert_int_eq(wf_coalesce_timeout(&c, 1100), 0);
	wf_coalesce_drawn(&c, 1100);
	ck_assert_int_eq(wf_coalesce_timeout(&c, 1150), -1);
}
END_TEST

static const char caps[] =
    "{\"backupVersion\":\"16.0\",\"deviceType\":\"default\",\"systemFullName\":\"OH-5\",\"bundleInfos\":["
    "{\"name\":\"com.b.zeta\",\"versionName\":\"1\",\"spaceOccupied\":10,\"allToBackup\":true,\"fullBackupOnly\":true},"
    "{\"name\":\"com.a.Alpha\",\"versionName\":\"2\",\"spaceOccupied\":300,\"allToBackup\":true},"
    "{\"name\":\"com.c.bank\",\"versionName\":\"3\",\"spaceOccupied\":200,\"allToBackup\":false}]}";

START_TEST(caps_rows)
{
	bundle_row_t *rows;
	size_t n;
	char sfn[32], dt[32], bv[16];
	ck_assert_int_eq(list_parse_caps(caps, &rows, &n, sfn, sizeof sfn, dt, sizeof dt, bv, sizeof bv), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(sfn, "OH-5");
	ck_assert_str_eq(bv, "16.0");
	ck_assert(rows[0].full_only && rows[0].allow);
	ck_assert(!rows[2].allow);
	ck_assert(strstr(rows[2].reason, "13500001") != NULL);
	ck_assert_int_eq(rows[1].size, 300);
	free(rows);
	ck_assert_int_eq(list_parse_caps("{\"nope\":1}", &rows, &n, NULL, 0, NULL, 0, NULL, 0), -1);
	ck_assert_int_eq(list_parse_caps("not json", &rows, &n, NULL, 0, NULL, 0, NULL, 0), -1);
}
END_TEST

START_TEST(filter_and_sort)
{
	bundle_row_t *rows;
	size_t n, idx[3];
	ck_assert_int_eq(list_parse_caps(caps, &rows, &n, NULL, 0, NULL, 0, NULL, 0), 0);
	ck_assert(list_match("com.a.Alpha", "alp"));     /* case-insensitive */
	ck_assert(list_match("com.a.Alpha", ""));
	ck_assert(!list_match("com.a.Alpha", "zeta"));
	ck_assert(list_match("abc", "abc"));
	ck_assert(!list_match("ab", "abc"));
	ck_assert_uint_eq(list_view(rows, n, "", LIST_SORT_NAME, idx), 3);
	ck_assert_str_eq(rows[idx[0]].name, "com.a.Alpha");
	ck_assert_str_eq(rows[idx[2]].name, "com.c.bank");
	ck_assert_uint_eq(list_view(rows, n, "", LIST_SORT_SIZE, idx), 3);   /* biggest first */
	ck_assert_str_eq(rows[idx[0]].name, "com.a.Alpha");
	ck_assert_str_eq(rows[idx[1]].name, "com.c.bank");
	rows[0].last_backup_ms = 5;
	rows[1].last_backup_ms = 9;
	ck_assert_uint_eq(list_view(rows, n, "", LIST_SORT_LAST, idx), 3);   /* never backed up first */
	ck_assert_str_eq(rows[idx[0]].name, "com.c.bank");
	ck_assert_str_eq(rows[idx[2]].name, "com.a.Alpha");
	ck_assert_uint_eq(list_view(rows, n, "B.", LIST_SORT_NAME, idx), 1);
	ck_assert_str_eq(rows[idx[0]].name, "com.b.zeta");
	ck_assert_uint_eq(list_view(rows, n, "nothing", LIST_SORT_NAME, idx), 0);
	ck_assert_str_eq(list_sort_label(LIST_SORT_LAST), "last backup");
	free(rows);
}
END_TEST

START_TEST(scrolling)
{
	size_t cur = 0, top = 0;
	list_scroll(0, 5, &cur, &top);
	ck_assert_uint_eq(cur, 0);
	cur = 12;
	list_scroll(20, 5, &cur, &top);
	ck_assert_uint_eq(top, 8);   /* cursor on the last visible row */
	cur = 3;
	list_scroll(20, 5, &cur, &top);
	ck_assert_uint_eq(top, 3);
	cur = 99;
	list_scroll(20, 5, &cur, &top);
	ck_assert_uint_eq(cur, 19);
	ck_assert_uint_eq(top, 15);
	list_scroll(20, 50, &cur, &top);   /* window taller than the list */
	ck_assert_uint_eq(top, 0);
	ck_assert_uint_eq(list_move(20, 3, -10), 0);
	ck_assert_uint_eq(list_move(20, 3, 100), 19);
	ck_assert_uint_eq(list_move(0, 3, 1), 0);
	ck_assert_uint_eq(list_move(20, 3, 2), 5);
}
END_TEST

START_TEST(event_queue_coalesces_progress_and_wakes_once)
{
	int p[2];
	ck_assert_int_eq(pipe(p), 0);
	cev_queue_t q;
	cevq_init(&q, p[1]);
	for (int i = 0; i < 500; i++) {
		cev_t ev = { CEV_PROCESS, i % 2, 0, { (uint64_t)i, 1000, 0, 0 }, NULL, NULL, 1 };
		cevq_push(&q, ev);
	}
	cev_t warn = { CEV_PROCESS, 0, 0, { 1, 2, 0, 0 }, strdup("13: add file fail"), NULL, 1 };
	cevq_push(&q, warn);   /* a progress event with an error is never coalesced away */
	cev_t begin = { CEV_BEGIN, 1, 0, { 0 }, strdup("ok"), NULL, 1 };
	cevq_push(&q, begin);
	char buf[16];
	ck_assert_int_eq(read(p[0], buf, sizeof buf), 1);   /* one wake byte for all of it */
	cev_t *v;
	size_t n = cevq_drain(&q, &v);
	ck_assert_uint_eq(n, 4);
	ck_assert_int_eq(v[0].bundle, 0);
	ck_assert_uint_eq(v[0].v[0], 498);   /* the newest progress of bundle 0 */
	ck_assert_uint_eq(v[1].v[0], 499);
	ck_assert_str_eq(v[2].text, "13: add file fail");
	ck_assert_int_eq(v[3].kind, CEV_BEGIN);
	for (size_t i = 0; i < n; i++)
		cev_free(&v[i]);
	free(v);
	cev_t again = { CEV_END, 1, 0, { 0 }, NULL, NULL, 1 };
	cevq_push(&q, again);   /* drained: the next push wakes again */
	ck_assert_int_eq(read(p[0], buf, sizeof buf), 1);
	cevq_destroy(&q);
	close(p[0]);
	close(p[1]);
}
END_TEST

Suite *widgets_suite(void)
{
	Suite *s = suite_create("widgets");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, bytes_and_rates);
	tcase_add_test(tc, eta);
	tcase_add_test(tc, bars_and_fit);
	tcase_add_test(tc, typed_sizes);
	tcase_add_test(tc, typed_counts);
	tcase_add_test(tc, rate_estimate);
	tcase_add_test(tc, coalescer);
	tcase_add_test(tc, caps_rows);
	tcase_add_test(tc, filter_and_sort);
	tcase_add_test(tc, scrolling);
	tcase_add_test(tc, event_queue_coalesces_progress_and_wakes_once);
	suite_add_tcase(s, tc);
	return s;
}
