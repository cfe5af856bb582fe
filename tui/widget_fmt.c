/*
 * widget_fmt — formatting and the redraw coalescer (see widget_fmt.h).
 *
 * Rules from LESSONS.md: an unknown total or rate is shown as unknown ("?",
 * "--:--"), never as 0 %; progress is redrawn at a bounded rate, so the
 * coalescer turns any number of events into at most one redraw per interval.
 */
#include "widget_fmt.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *
wf_bytes(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t u = 0;
	while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
	return buf;
}

const char *
wf_rate(double bytes_per_sec, char *buf, size_t size)
{
	if (bytes_per_sec < 0) {
		snprintf(buf, size, "-");
		return buf;
	}
	char b[32];
	wf_bytes((uint64_t)bytes_per_sec, b, sizeof b);
	snprintf(buf, size, "%s/s", b);
	return buf;
}

int64_t
wf_eta_secs(uint64_t done, uint64_t total, double bytes_per_sec)
{
	if (total == 0 || bytes_per_sec <= 0)
		return -1;
	if (done >= total)
		return 0;
	double s = (double)(total - done) / bytes_per_sec;
	if (s > 359999.0)
		return -1;
	return (int64_t)(s + 0.5);
}

const char *
wf_eta(int64_t secs, char *buf, size_t size)
{
	if (secs < 0)
		snprintf(buf, size, "--:--");
	else if (secs >= 3600)
		snprintf(buf, size, "%lld:%02lld:%02lld", (long long)(secs / 3600), (long long)(secs / 60 % 60),
		    (long long)(secs % 60));
	else
		snprintf(buf, size, "%lld:%02lld", (long long)(secs / 60), (long long)(secs % 60));
	return buf;
}

int
wf_bar_cells(uint64_t done, uint64_t total, int width)
{
	if (width <= 0)
		return 0;
	if (total == 0)
		return -1;
	if (done >= total)
		return width;
	return (int)((double)done * width / (double)total);
}

const char *
wf_percent(uint64_t done, uint64_t total, char *buf, size_t size)
{
	if (total == 0)
		snprintf(buf, size, "?");
	else
		snprintf(buf, size, "%d%%", done >= total ? 100 : (int)((double)done * 100.0 / (double)total));
	return buf;
}

const char *
wf_date(int64_t ms, char *buf, size_t size)
{
	if (ms <= 0) {
		snprintf(buf, size, "never");
		return buf;
	}
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M", &tm) == 0)
		snprintf(buf, size, "?");
	return buf;
}

const char *
wf_fit(const char *s, int width, char *buf, size_t size)
{
	if (size == 0)
		return buf;
	if (width < 0)
		width = 0;
	size_t len = strlen(s), w = (size_t)width;
	if (w >= size)
		w = size - 1;
	if (len <= w) {
		snprintf(buf, size, "%s", s);
	} else if (w == 0) {
		buf[0] = '\0';
	} else {
		memcpy(buf, s, w - 1);
		buf[w - 1] = '~';
		buf[w] = '\0';
	}
	return buf;
}

void
wf_rate_init(wf_rate_t *r)
{
	r->last_bytes = 0;
	r->last_ms = -1;
	r->bps = -1;
}

/* Samples closer than 200 ms are folded into the next one, so a burst of
 * onProcess calls does not make the rate jump. */
void
wf_rate_sample(wf_rate_t *r, uint64_t bytes, int64_t now_ms)
{
	if (r->last_ms < 0) {
		r->last_ms = now_ms;
		r->last_bytes = bytes;
		return;
	}
	int64_t dt = now_ms - r->last_ms;
	if (dt < 200)
		return;
	double inst = bytes >= r->last_bytes ? (double)(bytes - r->last_bytes) * 1000.0 / (double)dt : 0;
	double alpha = dt >= 2000 ? 1.0 : (double)dt / 2000.0;
	r->bps = r->bps < 0 ? inst : r->bps + alpha * (inst - r->bps);
	r->last_ms = now_ms;
	r->last_bytes = bytes;
}

void
wf_coalesce_init(wf_coalesce_t *c, int interval_ms)
{
	c->interval_ms = interval_ms > 0 ? interval_ms : 100;
	c->last_draw_ms = -1000000;
	c->dirty = true;
}

void
wf_coalesce_mark(wf_coalesce_t *c)
{
	c->dirty = true;
}

int
wf_coalesce_timeout(const wf_coalesce_t *c, int64_t now_ms)
{
	if (!c->dirty)
		return -1;
	int64_t wait = c->last_draw_ms + c->interval_ms - now_ms;
	if (wait <= 0)
		return 0;
	return (int)wait;
}

void
wf_coalesce_drawn(wf_coalesce_t *c, int64_t now_ms)
{
	c->dirty = false;
	c->last_draw_ms = now_ms;
}

/* The decimal number at *pp after leading spaces, at most max: false for no
 * digit or a bigger number; *pp is left after the digits. */
static bool
leading_uint(const char **pp, uint64_t max, uint64_t *out)
{
	const char *p = *pp;
	while (*p == ' ')
		p++;
	if (!isdigit((unsigned char)*p))
		return false;
	uint64_t v = 0;
	for (; isdigit((unsigned char)*p); p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (d > max || v > (max - d) / 10)
			return false;   /* v * 10 + d > max, checked without overflowing */
		v = v * 10 + d;
	}
	*pp = p;
	*out = v;
	return true;
}

/* True when only spaces are left at p. */
static bool
only_spaces(const char *p)
{
	while (*p == ' ')
		p++;
	return *p == '\0';
}

bool
wf_parse_size(const char *s, uint64_t *out)
{
	uint64_t v;
	const char *p = s;
	if (!leading_uint(&p, UINT64_MAX, &v))
		return false;
	int shift = 0;
	switch (tolower((unsigned char)*p)) {
	case 'k':
		shift = 10;
		break;
	case 'm':
		shift = 20;
		break;
	case 'g':
		shift = 30;
		break;
	case 't':
		shift = 40;
		break;
	default:
		break;
	}
	if (shift) {
		p++;
		if (tolower((unsigned char)*p) == 'i')
			p++;
	}
	if (tolower((unsigned char)*p) == 'b')
		p++;
	if (!only_spaces(p) || (shift && v > (UINT64_MAX >> shift)))
		return false;
	*out = v << shift;
	return true;
}

bool
wf_parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	uint64_t v;
	const char *p = s;
	if (!leading_uint(&p, max, &v) || !only_spaces(p))
		return false;
	*out = v;
	return true;
}
