/*
 * widget_fmt — the console's pure formatting and timing logic: byte counts,
 * rates, ETAs, progress-bar fill, dates, and the redraw coalescer. No curses
 * here, so the unit tests (tests/unit/test_widgets.c) link it directly.
 *
 * Thread: any; functions touch only their arguments.
 */
#ifndef OHB_WIDGET_FMT_H
#define OHB_WIDGET_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "512 B", "80.7 KiB", "19.7 MiB". */
const char *wf_bytes(uint64_t bytes, char *buf, size_t size);
/* "1.2 MiB/s"; "-" when the rate is not known yet (< 0). */
const char *wf_rate(double bytes_per_sec, char *buf, size_t size);
/* Seconds left at rate, or -1 when it cannot be known (no total, no rate). */
int64_t wf_eta_secs(uint64_t done, uint64_t total, double bytes_per_sec);
/* "0:42", "12:05", "3:02:01", "--:--" for -1 (LESSONS: unknown is never 0). */
const char *wf_eta(int64_t secs, char *buf, size_t size);
/* Filled cells of a bar of width cells; -1 when total is unknown (0). */
int wf_bar_cells(uint64_t done, uint64_t total, int width);
/* "42%" or "?" when total is unknown. */
const char *wf_percent(uint64_t done, uint64_t total, char *buf, size_t size);
/* "2026-11-24 14:41" (local time) or "never" for ms <= 0. */
const char *wf_date(int64_t ms, char *buf, size_t size);
/* Copies s into buf cut to at most width characters; a cut string ends in
 * "~" (ASCII) so the operator sees it was cut. Returns buf. */
const char *wf_fit(const char *s, int width, char *buf, size_t size);
/* A size an operator types: digits, optionally K, M, G or T (binary: 2^10…),
 * an optional "i" and "B" ("512M", "2GiB", "1073741824"), spaces around.
 * False for anything else or an overflow. */
bool wf_parse_size(const char *s, uint64_t *out);
/* A count an operator types (days, files): digits only, spaces around, at
 * most max ("30", " 7 "). False for a sign, a unit, anything else, or a value
 * above max; *out is set only on success. */
bool wf_parse_uint(const char *s, uint64_t max, uint64_t *out);

/* A throughput estimate: exponentially weighted over ~2 s of samples. */
typedef struct wf_rate {
	uint64_t last_bytes;
	int64_t last_ms;
	double bps;          /* < 0 until two samples are seen */
} wf_rate_t;
void wf_rate_init(wf_rate_t *r);
void wf_rate_sample(wf_rate_t *r, uint64_t bytes, int64_t now_ms);

/* The redraw coalescer: many events mark the screen dirty, one redraw follows
 * no sooner than interval_ms after the previous one. */
typedef struct wf_coalesce {
	int interval_ms;
	int64_t last_draw_ms;
	bool dirty;
} wf_coalesce_t;
void wf_coalesce_init(wf_coalesce_t *c, int interval_ms);
void wf_coalesce_mark(wf_coalesce_t *c);
/* poll() timeout: -1 when nothing is dirty (block: zero CPU), 0 to draw now,
 * else the milliseconds to wait before drawing. */
int wf_coalesce_timeout(const wf_coalesce_t *c, int64_t now_ms);
void wf_coalesce_drawn(wf_coalesce_t *c, int64_t now_ms);

#endif
