/*
 * rp — reading and writing OpenHarmony's .rp report files (REFERENCE.md
 * "Incremental backup"), the lists an incremental backup compares against.
 *
 *   version=1.0&attrNum=8
 *   path;mode;dir;size;mtime;hash;isIncremental;encodeFlag
 *   /data/storage/el2/base/files/a%3Bb.txt;33188;0;5;1763990000;9F86…08;1;1
 *
 * Reading is tolerant where OpenHarmony's reader is, because reports come from
 * devices we do not control:
 *   - lines may end in "\r\n" (one trailing '\r' is dropped); blank lines are
 *     skipped wherever they are;
 *   - the first line starting with "version=" is the version line, and the
 *     line after it is the header, skipped whatever it says: OpenHarmony reads
 *     fields by position, so a header with a typo ("encodFlag") still works.
 *     A report without a version line may start directly with its header;
 *   - a row has 8 fields, or 7 (written before encodeFlag existed: the path
 *     is then taken literally), or as many as a header naming more columns
 *     (a newer writer's: the first 8 are read, the rest ignored, as
 *     OpenHarmony's reader does);
 *   - with encodeFlag 1 the path is percent-decoded (%XX, either case);
 *   - the leading '/' of a path is optional, a trailing '/' is dropped (the
 *     dir field says what the row is).
 * A row that still does not make sense (too few or too many fields, a number
 * that is not one, a dir/flag that is not 0 or 1, a hash that is neither 64
 * hex digits nor empty, a broken %-escape, a NUL in the path) is skipped and
 * described in the warnings as "line N: reason". Nothing in the input is
 * trusted to be NUL-terminated or valid UTF-8: lines are (pointer, length)
 * slices of the caller's buffer.
 *
 * Writing percent-encodes exactly the bytes that would break a row — ';' (the
 * field separator), '%' (the escape itself), '\r' and '\n' — and sets
 * encodeFlag 1 only on rows that needed it, so ordinary paths stay readable
 * and every path round-trips byte for byte.
 *
 * Sorting is stable (a merge sort) so that "the last of equal paths wins" is
 * well defined: a report that lists a path twice keeps its later row.
 *
 * Memory: an incremental backup of a bundle of 50 000 files holds two lists
 * of 50 000 rows (the base all.rp and the new one) beside the scan, and its
 * peak RSS must stay under 32 MiB (docs/PERFORMANCE.md). A row is 40 bytes;
 * paths and hashes are copied into 64 KiB blocks owned by the list (no
 * malloc header, no rounding per string), an empty hash is the static "", the
 * parser sizes the row array from the text's line count, and a report is
 * written to an fd in 64 KiB pieces instead of as one string. That took the
 * two lists of (a) from 19 MB to 9 (measured with massif).
 */
#include "rp.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"
#include "sha256.h"

#define RP_VERSION_LINE "version=1.0&attrNum=8"
#define RP_HEADER_LINE "path;mode;dir;size;mtime;hash;isIncremental;encodeFlag"
#define RP_MAX_WARNINGS 100          /* then one "… more" line: garbage input stays cheap */
#define RP_HASH_CHUNK (1024u * 1024) /* read size when hashing a file */
#define RP_MIN_ROW 12                /* "a;0;0;0;0;;0": the shortest row there is */
#define RP_BLOCK_SIZE (64u * 1024)   /* a block of a list's strings */
#define RP_FLUSH_SIZE (64u * 1024)   /* rp_write_fd writes when this much is pending */

/* ---- a growable text buffer ------------------------------------------------ */

typedef struct text_buf {
	char *s;
	size_t len, cap;
	bool oom;
} text_buf_t;

static bool
tb_reserve(text_buf_t *t, size_t more)
{
	if (t->oom)
		return false;
	if (t->len + more + 1 <= t->cap)
		return true;
	size_t cap = t->cap ? t->cap : 256;
	while (cap < t->len + more + 1)
		cap *= 2;
	char *s = realloc(t->s, cap);
	if (!s) {
		t->oom = true;
		return false;
	}
	t->s = s;
	t->cap = cap;
	return true;
}

static void
tb_put(text_buf_t *t, const char *s, size_t n)
{
	if (!tb_reserve(t, n))
		return;
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void tb_printf(text_buf_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
tb_printf(text_buf_t *t, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof small) {
		tb_put(t, small, (size_t)n);
		return;
	}
	if (!tb_reserve(t, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* ---- the list ----------------------------------------------------------------- */

struct rp_strings {
	struct rp_strings *next;
	size_t used, size;
	char data[];
};

/* A copy of s (n bytes and a NUL) in the list's blocks. A string too big for
 * a quarter of a block gets a block of its own, so a long path wastes little. */
static const char *
strings_copy(rp_list_t *list, const char *s, size_t n)
{
	rp_strings_t *b = list->strings;
	if (!b || b->size - b->used < n + 1) {
		size_t size = n + 1 > RP_BLOCK_SIZE / 4 ? n + 1 : RP_BLOCK_SIZE - sizeof *b;
		rp_strings_t *nb = malloc(sizeof *nb + size);
		if (!nb)
			return NULL;
		nb->used = 0;
		nb->size = size;
		if (b && size != RP_BLOCK_SIZE - sizeof *b) {
			/* a big string's own block goes behind the current one, which keeps filling */
			nb->next = b->next;
			b->next = nb;
		} else {
			nb->next = b;
			list->strings = nb;
		}
		b = nb;
	}
	char *d = b->data + b->used;
	memcpy(d, s, n);
	d[n] = '\0';
	b->used += n + 1;
	return d;
}

int
rp_reserve(rp_list_t *list, size_t n, ohb_error_t *err)
{
	if (n <= list->cap)
		return 0;
	rp_entry_t *v = realloc(list->v, n * sizeof *v);
	if (!v)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory for a report of %zu rows", n);
	list->v = v;
	list->cap = n;
	return 0;
}

int
rp_add(rp_list_t *list, const rp_entry_t *e, ohb_error_t *err)
{
	const char *path = e->path ? e->path : "";
	if (list->n == list->cap && rp_reserve(list, list->cap ? list->cap * 2 : 64, NULL) != 0)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while listing %.200s", path);
	rp_entry_t d = *e;
	d.path = strings_copy(list, path, strlen(path));
	size_t hn = e->hash ? strnlen(e->hash, 64) : 0;
	d.hash = hn ? strings_copy(list, e->hash, hn) : "";
	if (!d.path || !d.hash)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while listing %.200s", path);
	list->v[list->n++] = d;
	return 0;
}

void
rp_list_free(rp_list_t *list)
{
	for (rp_strings_t *b = list->strings, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(list->v);
	memset(list, 0, sizeof *list);
}

static bool
sorted_unique(const rp_list_t *list)
{
	for (size_t i = 1; i < list->n; i++)
		if (strcmp(list->v[i - 1].path, list->v[i].path) >= 0)
			return false;
	return true;
}

/* Stable sort of v[0..n) using tmp (n entries) as scratch: bottom-up merge. */
static void
merge_sort(rp_entry_t *v, rp_entry_t *tmp, size_t n)
{
	rp_entry_t *src = v, *dst = tmp;
	for (size_t width = 1; width < n; width *= 2) {
		for (size_t lo = 0; lo < n; lo += 2 * width) {
			size_t mid = lo + width < n ? lo + width : n;
			size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
			size_t i = lo, j = mid, k = lo;
			while (i < mid && j < hi)
				dst[k++] = strcmp(src[j].path, src[i].path) < 0 ? src[j++] : src[i++];
			while (i < mid)
				dst[k++] = src[i++];
			while (j < hi)
				dst[k++] = src[j++];
		}
		rp_entry_t *s = src;
		src = dst;
		dst = s;
	}
	if (src != v)
		memcpy(v, src, n * sizeof *v);
}

/* Stable, with no scratch memory: only when malloc failed. */
static void
insertion_sort(rp_entry_t *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		rp_entry_t x = v[i];
		size_t j = i;
		while (j > 0 && strcmp(v[j - 1].path, x.path) > 0) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
}

void
rp_sort(rp_list_t *list)
{
	if (list->n < 2 || sorted_unique(list))
		return;
	rp_entry_t *tmp = malloc(list->n * sizeof *tmp);
	if (tmp) {
		merge_sort(list->v, tmp, list->n);
		free(tmp);
	} else {
		insertion_sort(list->v, list->n);
	}
	/* equal paths are now adjacent in input order: keep the last of each run */
	size_t w = 0;
	for (size_t i = 0; i < list->n; i++) {
		if (i + 1 < list->n && strcmp(list->v[i].path, list->v[i + 1].path) == 0)
			continue; /* its strings stay in the blocks until the list is freed */
		list->v[w++] = list->v[i];
	}
	list->n = w;
}

const rp_entry_t *
rp_find(const rp_list_t *list, const char *path)
{
	size_t lo = 0, hi = list->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(list->v[mid].path, path);
		if (c == 0)
			return &list->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- reading ----------------------------------------------------------------- */

typedef struct slice {
	const char *p;
	size_t n;
} slice_t;

static bool
slice_is(slice_t s, const char *lit)
{
	size_t n = strlen(lit);
	return s.n == n && memcmp(s.p, lit, n) == 0;
}

static bool
slice_starts(slice_t s, const char *lit)
{
	size_t n = strlen(lit);
	return s.n >= n && memcmp(s.p, lit, n) == 0;
}

static bool
parse_u64(slice_t s, uint64_t max, uint64_t *out)
{
	if (s.n == 0 || s.n > 20)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < s.n; i++) {
		unsigned d = (unsigned)(unsigned char)s.p[i] - '0';
		if (d > 9 || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool
parse_i64(slice_t s, int64_t *out)
{
	bool neg = s.n > 0 && s.p[0] == '-';
	slice_t d = {s.p + neg, s.n - neg};
	uint64_t v;
	if (!parse_u64(d, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v))
		return false;
	*out = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
	return true;
}

static bool
parse_bit(slice_t s, bool *out)
{
	if (slice_is(s, "0") || slice_is(s, "1")) {
		*out = s.p[0] == '1';
		return true;
	}
	return false;
}

static bool
parse_hash(slice_t s, char out[65])
{
	if (s.n != 0 && s.n != 64)
		return false;
	for (size_t i = 0; i < s.n; i++) {
		if (fsu_hex_digit(s.p[i]) < 0)
			return false;
		char c = s.p[i];
		out[i] = (c >= 'a' && c <= 'f') ? (char)(c - 'a' + 'A') : c;
	}
	out[s.n] = '\0';
	return true;
}

/* The path of a row as stored: decoded when encoded, with exactly one leading
 * '/' and no trailing '/' (except "/" itself). NULL with *why on a bad path;
 * NULL with *why == NULL when out of memory. */
static char *
parse_path(slice_t s, bool encoded, const char **why)
{
	*why = NULL;
	char *out = malloc(s.n + 2);
	if (!out)
		return NULL;
	size_t n = 0;
	out[n++] = '/';
	for (size_t i = 0; i < s.n; i++) {
		char c = s.p[i];
		if (encoded && c == '%') {
			int hi = i + 2 < s.n ? fsu_hex_digit(s.p[i + 1]) : -1;
			int lo = i + 2 < s.n ? fsu_hex_digit(s.p[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				*why = "bad %-encoding in the path";
				free(out);
				return NULL;
			}
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		if (c == '\0') {
			*why = "NUL byte in the path";
			free(out);
			return NULL;
		}
		if (c == '/' && n == 1)
			continue; /* the leading '/' is optional, and one is already there */
		out[n++] = c;
	}
	while (n > 1 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
	if (n == 1 && s.n == 0) {
		*why = "empty path";
		free(out);
		return NULL;
	}
	return out;
}

/* Parses one data row into *e (e->path malloc'd, e->hash = hash_buf).
 * Returns NULL, or why the row is malformed (*oom set when it failed for want
 * of memory). */
static size_t
count_fields(slice_t line)
{
	size_t n = 1;
	for (size_t i = 0; i < line.n; i++)
		n += line.p[i] == ';';
	return n;
}

static const char *
parse_row(slice_t line, size_t header_fields, rp_entry_t *e, char hash_buf[65], char *why_buf, size_t why_size,
    bool *oom)
{
	slice_t f[9];
	size_t nf = 0;
	const char *p = line.p, *end = line.p + line.n;
	for (;;) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *fe = semi ? semi : end;
		if (nf < 9)
			f[nf] = (slice_t){p, (size_t)(fe - p)};
		nf++;
		if (!semi)
			break;
		p = semi + 1;
	}
	/* more than 8 only as many as a (newer) header names: the first 8 are read */
	if (nf < 7 || (nf > 8 && nf != header_fields)) {
		snprintf(why_buf, why_size, "%zu fields, expected 8 (or 7 without encodeFlag)", nf);
		return why_buf;
	}
	memset(e, 0, sizeof *e);
	e->hash = hash_buf;
	uint64_t mode, size;
	bool encoded = false;
	if (!parse_u64(f[1], UINT32_MAX, &mode))
		return "mode is not a decimal number";
	if (!parse_bit(f[2], &e->is_dir))
		return "dir is not 0 or 1";
	if (!parse_u64(f[3], UINT64_MAX, &size))
		return "size is not a decimal number";
	if (!parse_i64(f[4], &e->mtime))
		return "mtime is not a decimal number";
	if (!parse_hash(f[5], hash_buf))
		return "hash is neither 64 hex digits nor empty";
	if (!parse_bit(f[6], &e->is_incremental))
		return "isIncremental is not 0 or 1";
	if (nf >= 8 && !parse_bit(f[7], &encoded))
		return "encodeFlag is not 0 or 1";
	e->mode = (uint32_t)mode;
	e->size = size;
	const char *why;
	char *path = parse_path(f[0], encoded, &why);
	e->path = path;
	if (!path) {
		if (!why)
			*oom = true;
		return why ? why : "out of memory";
	}
	return NULL;
}

static bool
is_blank(slice_t s)
{
	for (size_t i = 0; i < s.n; i++)
		if (s.p[i] != ' ' && s.p[i] != '\t')
			return false;
	return true;
}

int
rp_parse(const char *text, size_t len, rp_list_t *out, char **warnings, ohb_error_t *err)
{
	memset(out, 0, sizeof *out);
	if (warnings)
		*warnings = NULL;
	text_buf_t warn = {0};
	size_t n_warn = 0;
	bool seen_version = false, seen_header = false;
	size_t header_fields = 0;   /* the header's column count (0: none seen) */
	int rc = 0;
	size_t line_no = 0;
	const char *p = text, *end = text ? text + len : text;

	/* at most one row a line, and a row is at least RP_MIN_ROW bytes: the
	 * array is sized once instead of doubled past the report's size (what
	 * garbage makes us reserve beyond that is given back below) */
	size_t rows = 0;
	for (const char *q = p, *nl; q < end; q = nl + 1) {
		nl = memchr(q, '\n', (size_t)(end - q));
		if (!nl)
			nl = end;
		rows += (size_t)(nl - q) >= RP_MIN_ROW;
	}
	if ((rc = rp_reserve(out, rows, err)) != 0)
		goto out;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		slice_t line = {p, (size_t)((nl ? nl : end) - p)};
		p = nl ? nl + 1 : end;
		line_no++;
		if (line.n > 0 && line.p[line.n - 1] == '\r')
			line.n--;
		if (is_blank(line))
			continue;
		if (!seen_header && !seen_version && out->n == 0 && slice_starts(line, "version=")) {
			seen_version = true;
			continue;
		}
		if (!seen_header && seen_version && out->n == 0) {
			seen_header = true; /* taken by position: its spelling does not matter */
			header_fields = count_fields(line);
			continue;
		}
		rp_entry_t e;
		char hash_buf[65], why_buf[96];
		bool oom = false;
		const char *why = parse_row(line, header_fields, &e, hash_buf, why_buf, sizeof why_buf, &oom);
		if (oom) {
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory while reading a report");
			goto out;
		}
		if (why) {
			/* a report without a version line may start with its header */
			if (!seen_header && out->n == 0 && n_warn == 0 && slice_starts(line, "path;")) {
				seen_header = true;
				header_fields = count_fields(line);
				continue;
			}
			if (n_warn < RP_MAX_WARNINGS)
				tb_printf(&warn, "line %zu: %s\n", line_no, why);
			n_warn++;
			continue;
		}
		rc = rp_add(out, &e, err);
		free((char *)e.path);
		if (rc != 0)
			goto out;
	}
	if (n_warn > RP_MAX_WARNINGS)
		tb_printf(&warn, "... and %zu more malformed lines\n", n_warn - RP_MAX_WARNINGS);
	if (!seen_version && !seen_header && out->n == 0) {
		rc = ohb_fail(err, OHB_E_INVAL,
		              "not a report: no version line, no header and no readable row%s",
		              n_warn ? " (see the warnings)" : "");
		goto out;
	}
	rp_sort(out);
	if (out->n == 0) {
		rp_list_free(out); /* a report with no rows holds no memory, as before the sizing */
	} else if (out->cap > out->n + out->n / 8 + 64) {
		rp_entry_t *v = realloc(out->v, out->n * sizeof *v);
		if (v) {
			out->v = v;
			out->cap = out->n;
		}
	}
out:
	if (rc != 0)
		rp_list_free(out);
	if (warnings && warn.len > 0 && !warn.oom)
		*warnings = warn.s;
	else
		free(warn.s);
	return rc;
}

/* ---- writing ----------------------------------------------------------------- */

static bool
needs_encoding(char c)
{
	return c == ';' || c == '%' || c == '\r' || c == '\n';
}

/* Writes t's text to fd and empties t; false (errno set) when write failed. */
static bool
tb_flush(text_buf_t *t, int fd)
{
	if (fsu_write_all(fd, t->s, t->len) != 0)
		return false;
	t->len = 0;
	return true;
}

/* The report into t; with fd >= 0 written to fd whenever RP_FLUSH_SIZE is
 * pending, and at the end. */
static int
write_report(const rp_list_t *list, text_buf_t *t, int fd, ohb_error_t *err)
{
	tb_put(t, RP_VERSION_LINE "\n" RP_HEADER_LINE "\n", strlen(RP_VERSION_LINE "\n" RP_HEADER_LINE "\n"));
	for (size_t i = 0; i < list->n && !t->oom; i++) {
		const rp_entry_t *e = &list->v[i];
		const char *path = e->path ? e->path : "";
		bool enc = false;
		for (const char *c = path; *c && !enc; c++)
			enc = needs_encoding(*c);
		if (enc) {
			static const char hex[] = "0123456789ABCDEF";
			for (const char *c = path; *c; c++) {
				if (needs_encoding(*c)) {
					char esc[3] = {'%', hex[(unsigned char)*c >> 4],
					               hex[(unsigned char)*c & 15]};
					tb_put(t, esc, 3);
				} else {
					tb_put(t, c, 1);
				}
			}
		} else {
			tb_put(t, path, strlen(path));
		}
		tb_printf(t, ";%" PRIu32 ";%d;%" PRIu64 ";%" PRId64 ";%.64s;%d;%d\n", e->mode,
		          e->is_dir ? 1 : 0, e->size, e->mtime, e->hash ? e->hash : "",
		          e->is_incremental ? 1 : 0, enc ? 1 : 0);
		if (fd >= 0 && t->len >= RP_FLUSH_SIZE && !t->oom && !tb_flush(t, fd))
			return ohb_fail_errno(err, errno, "cannot write a report");
	}
	if (t->oom)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while writing a report");
	if (fd >= 0 && !tb_flush(t, fd))
		return ohb_fail_errno(err, errno, "cannot write a report");
	return 0;
}

int
rp_write(const rp_list_t *list, char **text_out, size_t *len_out, ohb_error_t *err)
{
	*text_out = NULL;
	if (len_out)
		*len_out = 0;
	text_buf_t t = {0};
	int rc = write_report(list, &t, -1, err);
	if (rc != 0) {
		free(t.s);
		return rc;
	}
	*text_out = t.s;
	if (len_out)
		*len_out = t.len;
	return 0;
}

int
rp_write_fd(const rp_list_t *list, int fd, ohb_error_t *err)
{
	text_buf_t t = {0};
	int rc = write_report(list, &t, fd, err);
	free(t.s);
	return rc;
}

/* ---- hashing ------------------------------------------------------------------- */

int
rp_sha256_fd(int fd, char out[65], ohb_error_t *err)
{
	out[0] = '\0';
	uint8_t *buf = malloc(RP_HASH_CHUNK);
	if (!buf)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while hashing a file");
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	sha256_ctx_t c;
	sha256_init(&c);
	int rc = 0;
	for (;;) {
		ssize_t n = read(fd, buf, RP_HASH_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = ohb_fail_errno(err, errno, "cannot read a file to hash it");
			break;
		}
		if (n == 0)
			break;
		sha256_update(&c, buf, (size_t)n);
	}
	free(buf);
	if (rc != 0)
		return rc;
	uint8_t d[SHA256_DIGEST_LEN];
	sha256_final(&c, d);
	sha256_hex(d, out);
	return 0;
}

void
rp_sha256_hex(const void *data, size_t len, char out[65])
{
	sha256_ctx_t c;
	uint8_t d[SHA256_DIGEST_LEN];
	sha256_init(&c);
	sha256_update(&c, data, len);
	sha256_final(&c, d);
	sha256_hex(d, out);
}
