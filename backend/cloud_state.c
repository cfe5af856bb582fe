/*
 * cloud_state — the per-file state store of the device-cloud sync (format and
 * purpose in cloud_state.h). Records are kept in an array sorted by path, so a
 * lookup is a binary search and the file is written in a stable order.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloud_state.h"
#include "errors.h"
#include "fsutil.h"

#define CST_HEADER_V1 "ohbackup-cloud-state 1"
#define CST_HEADER "ohbackup-cloud-state 2"
#define CST_LAST_SYNC "#last-sync\t"
#define CST_MAX_BYTES (256u * 1024u * 1024u)

struct cst {
	cst_rec_t *v;
	size_t n, cap;
	int64_t last_sync_ms;
};

static bool
needs_escape(unsigned char ch)
{
	return ch <= 0x20 || ch == '%' || ch == 0x7f;
}

/* Appends the percent-encoded s to buf (grown as needed). */
static int
append_enc(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t need = *len + strlen(s) * 3 + 2;
	if (need > *cap) {
		size_t ncap = *cap ? *cap : 4096;
		while (ncap < need)
			ncap *= 2;
		char *nb = realloc(*buf, ncap);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = ncap;
	}
	if (!*s) {
		(*buf)[(*len)++] = '%';
		return 0;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (needs_escape(*p)) {
			snprintf(*buf + *len, 4, "%%%02X", *p);
			*len += 3;
		} else {
			(*buf)[(*len)++] = (char)*p;
		}
	}
	return 0;
}

static int
append_raw(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t sl = strlen(s);
	if (*len + sl + 1 > *cap) {
		size_t ncap = *cap ? *cap : 4096;
		while (ncap < *len + sl + 1)
			ncap *= 2;
		char *nb = realloc(*buf, ncap);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, s, sl);
	*len += sl;
	return 0;
}

/* Decodes s in place; "%" alone is the empty string. False on a bad escape or a NUL. */
static bool
decode_inplace(char *s)
{
	if (strcmp(s, "%") == 0) {
		*s = '\0';
		return true;
	}
	char *w = s;
	for (const char *r = s; *r; r++) {
		if (*r == '%') {
			int hi = fsu_hex_digit(r[1]), lo = hi < 0 ? -1 : fsu_hex_digit(r[2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return false;
			*w++ = (char)(hi * 16 + lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return true;
}

static size_t
lower_bound(const cst_t *s, const char *path, bool *found)
{
	size_t lo = 0, hi = s->n;
	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->v[mid].path, path);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const cst_rec_t *
cst_find(const cst_t *s, const char *path)
{
	bool found;
	size_t i = lower_bound(s, path, &found);
	return found ? &s->v[i] : NULL;
}

bool
cst_rec_matches(const cst_rec_t *r, uint64_t size, int64_t mtime_ns)
{
	return r && r->has_base && !r->evicted && r->lsize == size && r->lmtime_ns == mtime_ns;
}

int
cst_put(cst_t *s, const cst_rec_t *rec, ohb_error_t *err)
{
	bool found;
	size_t i = lower_bound(s, rec->path, &found);
	if (found) {
		char *keep = s->v[i].path;
		s->v[i] = *rec;
		s->v[i].path = keep;
		return OHB_OK;
	}
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		cst_rec_t *nv = realloc(s->v, ncap * sizeof *nv);
		if (!nv)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory in the cloud state store");
		s->v = nv;
		s->cap = ncap;
	}
	char *p = strdup(rec->path);
	if (!p)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory in the cloud state store");
	memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
	s->v[i] = *rec;
	s->v[i].path = p;
	s->n++;
	return OHB_OK;
}

int
cst_set_state(cst_t *s, const char *path, int state, ohb_error_t *err)
{
	const cst_rec_t *old = cst_find(s, path);
	cst_rec_t r;
	if (old) {
		r = *old;
	} else {
		memset(&r, 0, sizeof r);
		r.path = (char *)path;
	}
	r.state = state;
	return cst_put(s, &r, err);
}

void
cst_remove(cst_t *s, const char *path)
{
	bool found;
	size_t i = lower_bound(s, path, &found);
	if (!found)
		return;
	free(s->v[i].path);
	memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
	s->n--;
}

const cst_rec_t *
cst_records(const cst_t *s, size_t *n)
{
	*n = s->n;
	return s->v;
}

int64_t
cst_last_sync(const cst_t *s)
{
	return s->last_sync_ms;
}

void
cst_set_last_sync(cst_t *s, int64_t ms)
{
	s->last_sync_ms = ms;
}

/* Parses one line (modified in place) of a version 1 (6 fields) or 2 (8
 * fields) file into *r; false when it is not a record. */
static bool
parse_line(char *line, int version, cst_rec_t *r)
{
	char *f[8];
	int want = version == 1 ? 6 : 8;
	int nf = 0;
	char *p = line;
	while (nf < want) {
		f[nf++] = p;
		char *tab = strchr(p, '\t');
		if (!tab)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	if (nf != want)
		return false;
	char *end;
	long st = strtol(f[0], &end, 10);
	if (*end || st < 0 || st > 6)
		return false;
	memset(r, 0, sizeof *r);
	r->state = (int)st;
	r->has_base = strcmp(f[1], "1") == 0;
	errno = 0;
	r->lsize = strtoull(f[2], &end, 10);
	if (*end || errno)
		return false;
	r->lmtime_ns = strtoll(f[3], &end, 10);
	if (*end || errno)
		return false;
	char *etag = f[4], *partial = NULL, *path = f[5];
	if (version == 2) {
		long flags = strtol(f[4], &end, 10);
		if (*end || flags < 0)
			return false;
		r->evicted = (flags & 1) != 0;
		etag = f[5];
		partial = f[6];
		path = f[7];
	}
	if (!decode_inplace(etag) || strlen(etag) >= sizeof r->etag)
		return false;
	snprintf(r->etag, sizeof r->etag, "%s", etag);
	if (partial) {
		if (!decode_inplace(partial) || strlen(partial) >= sizeof r->partial_etag)
			return false;
		snprintf(r->partial_etag, sizeof r->partial_etag, "%s", partial);
	}
	if (!decode_inplace(path) || !*path)
		return false;
	r->path = path;
	return true;
}

int
cst_open(const char *dir, cst_t **out, ohb_error_t *err)
{
	*out = NULL;
	cst_t *s = calloc(1, sizeof *s);
	if (!s)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory opening the cloud state store");
	char *path = fsu_join(dir, "state");
	if (!path) {
		free(s);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory opening the cloud state store");
	}
	char *text = NULL;
	size_t len = 0;
	ohb_error_t rerr;
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		free(path);
		*out = s;   /* no sync yet */
		return OHB_OK;
	}
	int rc = fsu_read_file(path, CST_MAX_BYTES, &text, &len, &rerr);
	free(path);
	if (rc != OHB_OK) {
		free(s);
		if (err)
			*err = rerr;
		return rc;
	}
	bool first = true;
	int version = 2;
	for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (first) {
			first = false;
			if (strcmp(line, CST_HEADER_V1) == 0)
				version = 1;
			if (strcmp(line, CST_HEADER) == 0 || version == 1)
				continue;
		}
		if (strncmp(line, CST_LAST_SYNC, strlen(CST_LAST_SYNC)) == 0) {
			s->last_sync_ms = strtoll(line + strlen(CST_LAST_SYNC), NULL, 10);
			continue;
		}
		cst_rec_t r;
		if (parse_line(line, version, &r) && cst_put(s, &r, err) != OHB_OK) {
			free(text);
			cst_free(s);
			return OHB_E_NOMEM;
		}
	}
	free(text);
	*out = s;
	return OHB_OK;
}

void
cst_free(cst_t *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i].path);
	free(s->v);
	free(s);
}

int
cst_serialize(const cst_t *s, char **text, size_t *len, ohb_error_t *err)
{
	char *buf = NULL;
	size_t n = 0, cap = 0;
	char head[96];
	snprintf(head, sizeof head, CST_HEADER "\n" CST_LAST_SYNC "%" PRId64 "\n", s->last_sync_ms);
	bool ok = append_raw(&buf, &n, &cap, head) == 0;
	for (size_t i = 0; ok && i < s->n; i++) {
		const cst_rec_t *r = &s->v[i];
		char nums[112];
		snprintf(nums, sizeof nums, "%d\t%d\t%" PRIu64 "\t%" PRId64 "\t%d\t", r->state, r->has_base ? 1 : 0,
		    r->lsize, r->lmtime_ns, r->evicted ? 1 : 0);
		ok = append_raw(&buf, &n, &cap, nums) == 0 && append_enc(&buf, &n, &cap, r->etag) == 0 &&
		     append_raw(&buf, &n, &cap, "\t") == 0 && append_enc(&buf, &n, &cap, r->partial_etag) == 0 &&
		     append_raw(&buf, &n, &cap, "\t") == 0 && append_enc(&buf, &n, &cap, r->path) == 0 &&
		     append_raw(&buf, &n, &cap, "\n") == 0;
	}
	if (!ok) {
		free(buf);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory writing the cloud state store");
	}
	*text = buf;
	*len = n;
	return OHB_OK;
}

int
cst_write(const char *dir, const char *text, size_t len, ohb_error_t *err)
{
	return fsu_write_atomic(dir, "state", text, len, 0600, err);
}
