/*
 * cloud_webdav — the WebDAV cloud driver over libcurl: the protocol of
 * Nextcloud, ownCloud, Apache mod_dav and `rclone serve webdav`.
 *
 * The URL "http(s)://host:port/base/" names the cloud's root; a cloud path
 * "a/b c.txt" becomes "/base/a/b%20c.txt". The verbs used (RFC 4918):
 *
 *   list    PROPFIND Depth: 1, walked folder by folder (many servers refuse
 *           Depth: infinity), the multistatus reply read by a small tolerant
 *           parser below (any namespace prefix, entities, CDATA, absolute or
 *           full-URL hrefs, percent-encoding)
 *   stat    PROPFIND Depth: 0
 *   get     GET, with "Range: bytes=<offset>-" to resume
 *   put     MKCOL for missing parents (405 "exists" is fine), PUT to
 *           ".<name>.ohbtmp.<pid>.<n>" in the target folder, then MOVE it over
 *           the target with Overwrite: T — a broken upload never shows under
 *           the real name
 *   remove  DELETE (after checking a folder is empty: DELETE of a folder is
 *           recursive in WebDAV, the dir driver's rmdir is not)
 *   move    MOVE with Overwrite: F
 *
 * Failures map to the cloud contract (cloud_driver.h): no connection, a
 * reset, a timeout or a 5xx -> 22400002; 401/403 -> 22400001; 404 -> 13900002;
 * 507 -> 22400004 (full). A connect gives up after 3 s and a transfer that
 * moves less than a byte a second for 10 s is abandoned, so a dead server
 * shows in seconds. CURLOPT_NOSIGNAL: no signals in a threaded program.
 *
 * Each driver owns one curl easy handle (connections are reused between
 * calls). libcurl is not linked in: it is loaded with dlopen the first time
 * a WebDAV driver opens, so the other commands (a backup, a scan) do not pay
 * for loading it and the forty libraries it pulls in (~3 ms and ~5 MB per
 * process; docs/PERFORMANCE.md). curl_global_init is not thread-safe, so the
 * loading and it run once per process under pthread_once: the table of
 * libcurl's functions is the one piece of global state of the cloud layer.
 * A machine without libcurl gets 22400001 for a WebDAV URL, with a sentence.
 */
#include "cloud_ops.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"

#define DAV_CONNECT_TIMEOUT_MS 3000L
#define DAV_LOW_SPEED_TIME_S 10L
#define DAV_MAX_REPLY (64u * 1024u * 1024u)   /* a PROPFIND reply larger than this is refused */
#define DAV_MAX_DEPTH 128

/* The libcurl functions the driver calls, from dlopen. */
typedef struct curl_api {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *curl);
	void (*easy_reset)(CURL *curl);
	CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
	CURLcode (*easy_perform)(CURL *curl);
	CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
} curl_api_t;

static pthread_once_t dav_global_once = PTHREAD_ONCE_INIT;
/* Written once, under dav_global_once; read-only afterwards. */
static curl_api_t curl;
static bool dav_loaded;
static char dav_load_error[256];
static CURLcode dav_global_rc;

static void
dav_global_init(void)
{
	/* The soname of libcurl 7.x and 8.x alike; the -dev package's link name as a fallback. */
	void *h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		h = dlopen("libcurl.so", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(dav_load_error, sizeof dav_load_error, "%s", dlerror());
		return;
	}
	struct {
		void **slot;
		const char *name;
	} syms[] = {
	    {(void **)&curl.global_init, "curl_global_init"},
	    {(void **)&curl.easy_init, "curl_easy_init"},
	    {(void **)&curl.easy_cleanup, "curl_easy_cleanup"},
	    {(void **)&curl.easy_reset, "curl_easy_reset"},
	    {(void **)&curl.easy_setopt, "curl_easy_setopt"},
	    {(void **)&curl.easy_perform, "curl_easy_perform"},
	    {(void **)&curl.easy_getinfo, "curl_easy_getinfo"},
	    {(void **)&curl.easy_strerror, "curl_easy_strerror"},
	    {(void **)&curl.slist_append, "curl_slist_append"},
	    {(void **)&curl.slist_free_all, "curl_slist_free_all"},
	};
	for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
		*syms[i].slot = dlsym(h, syms[i].name);
		if (!*syms[i].slot) {
			snprintf(dav_load_error, sizeof dav_load_error, "%s has no %s", "libcurl", syms[i].name);
			return;   /* the handle stays open: harmless, and never used */
		}
	}
	dav_global_rc = curl.global_init(CURL_GLOBAL_DEFAULT);
	dav_loaded = true;
}

typedef struct dav_cloud {
	CURL *curl;
	char *url;        /* as configured, for messages */
	char *origin;     /* "http://host:port" */
	char *base;       /* the root's path as configured (encoded), ending in '/' */
	char *base_dec;   /* the same, percent-decoded: what hrefs are matched against */
	char *user, *password;
	uint64_t tmp_n;
	char errbuf[CURL_ERROR_SIZE];
} dav_cloud_t;

/* One HTTP exchange: what to send, where the reply goes, what came back. */
typedef struct dav_req {
	const char *method;
	const char *url;
	struct curl_slist *headers;
	const char *body;            /* small request body (PROPFIND) */
	/* GET into out_fd */
	int out_fd;
	uint64_t offset;             /* the Range asked for; skipped by hand if the server sends all */
	uint64_t skip;
	bool status_checked;
	bool write_body;
	/* PUT from in_fd */
	int in_fd;
	uint64_t in_size, in_sent;
	off_t in_start;
	bool short_read;
	/* reply captured in memory (PROPFIND) */
	bool capture;
	char *reply;
	size_t reply_len, reply_cap;
	bool too_big;
	/* progress and cancel */
	const cloud_transfer_t *t;
	uint64_t last_done;
	bool reported;
	bool cancelled;
	int local_errno;
	/* result */
	long status;
} dav_req_t;

/* ---- small text helpers ---------------------------------------------------- */

/* Decodes %XX in place; false on a malformed escape or an encoded NUL. */
static bool
dav_decode(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p != '%') {
			*o++ = *p;
			continue;
		}
		int h = fsu_hex_digit(p[1]);
		int l = h < 0 ? -1 : fsu_hex_digit(p[2]);
		if (h < 0 || l < 0 || (h == 0 && l == 0))
			return false;
		*o++ = (char)(h * 16 + l);
		p += 2;
	}
	*o = '\0';
	return true;
}

/* "Tue, 24 Nov 2026 15:21:23 GMT" (RFC 1123, the form RFC 4918 requires) in
 * ms since the epoch; 0 when unreadable. Parsed by hand: strptime's month
 * names follow the locale, and the console sets one. */
static int64_t
dav_parse_date(const char *s)
{
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
	    "Nov", "Dec"};
	const char *comma = strchr(s, ',');
	if (comma)
		s = comma + 1;
	int day, year, hh, mm, ss;
	char mon[4];
	if (sscanf(s, " %d %3s %d %d:%d:%d", &day, mon, &year, &hh, &mm, &ss) != 6)
		return 0;
	int m = -1;
	for (int i = 0; i < 12; i++)
		if (strcasecmp(mon, months[i]) == 0)
			m = i;
	if (m < 0 || day < 1 || day > 31 || year < 1970 || hh > 23 || mm > 59 || ss > 60)
		return 0;
	struct tm tm = {.tm_year = year - 1900, .tm_mon = m, .tm_mday = day, .tm_hour = hh, .tm_min = mm, .tm_sec = ss};
	time_t t = timegm(&tm);
	return t < 0 ? 0 : (int64_t)t * 1000;
}

/* ---- the multistatus parser -------------------------------------------------- */

/* One <response> being read. */
typedef struct dav_resp {
	char *href;
	bool is_dir;
	uint64_t size;
	int64_t mtime_ms;
	char etag[128];
} dav_resp_t;

/* The text of an element starting at p (just after its start tag), entity-
 * and CDATA-decoded, trimmed; malloc'd, NULL on out-of-memory. */
static char *
xml_text(const char *p, const char *end)
{
	const char *s = p, *e;
	const char *lt = memchr(p, '<', (size_t)(end - p));
	if (lt && end - lt >= 9 && memcmp(lt, "<![CDATA[", 9) == 0) {
		s = lt + 9;
		e = memmem(s, (size_t)(end - s), "]]>", 3);
		if (!e)
			e = end;
	} else {
		e = lt ? lt : end;
	}
	char *out = malloc((size_t)(e - s) + 1);
	if (!out)
		return NULL;
	char *o = out;
	static const struct { const char *ent; char c; } ents[] = {
		{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
	for (const char *q = s; q < e;) {
		if (*q == '&') {
			bool done = false;
			for (size_t i = 0; i < sizeof ents / sizeof ents[0] && !done; i++) {
				size_t l = strlen(ents[i].ent);
				if ((size_t)(e - q) >= l && memcmp(q, ents[i].ent, l) == 0) {
					*o++ = ents[i].c;
					q += l;
					done = true;
				}
			}
			if (!done && e - q > 3 && q[1] == '#') {
				/* &#NN; / &#xNN; — ASCII only; hrefs carry the rest percent-encoded */
				char *stop;
				long v = (q[2] == 'x' || q[2] == 'X') ? strtol(q + 3, &stop, 16) : strtol(q + 2, &stop, 10);
				if (stop < e && *stop == ';' && v > 0 && v < 128) {
					*o++ = (char)v;
					q = stop + 1;
					done = true;
				}
			}
			if (done)
				continue;
		}
		*o++ = *q++;
	}
	*o = '\0';
	/* trim */
	char *a = out;
	while (*a == ' ' || *a == '\t' || *a == '\r' || *a == '\n')
		a++;
	size_t n = strlen(a);
	while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t' || a[n - 1] == '\r' || a[n - 1] == '\n'))
		n--;
	memmove(out, a, n);
	out[n] = '\0';
	return out;
}

/* The end of the tag starting at lt ('<'), honouring quoted attribute values. */
static const char *
xml_tag_end(const char *lt, const char *end)
{
	char quote = 0;
	for (const char *p = lt + 1; p < end; p++) {
		if (quote) {
			if (*p == quote)
				quote = 0;
		} else if (*p == '"' || *p == '\'') {
			quote = *p;
		} else if (*p == '>') {
			return p;
		}
	}
	return NULL;
}

/* The href of a response as a cloud path ("" for the root), or NULL when it
 * does not lie below the root or is not a valid cloud path (a server cannot
 * talk us into "../"). */
static char *
dav_href_to_path(const dav_cloud_t *dc, const char *href)
{
	const char *p = href;
	const char *scheme = strstr(p, "://");
	if (scheme) {
		p = strchr(scheme + 3, '/');
		if (!p)
			p = "/";
	}
	char *dec = strdup(p);
	if (!dec)
		return NULL;
	char *q = strpbrk(dec, "?#");
	if (q)
		*q = '\0';
	if (!dav_decode(dec)) {
		free(dec);
		return NULL;
	}
	size_t bl = strlen(dc->base_dec);   /* ends with '/' */
	const char *rest;
	if (strncmp(dec, dc->base_dec, bl) == 0)
		rest = dec + bl;
	else if (strlen(dec) == bl - 1 && strncmp(dec, dc->base_dec, bl - 1) == 0)
		rest = "";
	else {
		free(dec);
		return NULL;
	}
	char *rel = strdup(rest);
	free(dec);
	if (!rel)
		return NULL;
	size_t n = strlen(rel);
	while (n > 0 && rel[n - 1] == '/')
		rel[--n] = '\0';
	if (*rel && !cloud_path_is_valid(rel)) {
		free(rel);
		return NULL;
	}
	return rel;
}

/* Reads a multistatus reply into entries (paths relative to the root; the
 * root itself as ""). Unknown elements are skipped, so extra properties,
 * lock discovery and propstats with 404 do not matter. */
static int
dav_parse_multistatus(const dav_cloud_t *dc, const char *xml, size_t len, cloud_entry_vec_t *out, ohb_error_t *err)
{
	const char *p = xml, *end = xml + len;
	bool in_resp = false;
	int in_rtype = 0;
	dav_resp_t cur = {0};
	int rc = OHB_OK;
	while (rc == OHB_OK && p < end) {
		const char *lt = memchr(p, '<', (size_t)(end - p));
		if (!lt)
			break;
		if (end - lt >= 4 && memcmp(lt, "<!--", 4) == 0) {
			const char *c = memmem(lt + 4, (size_t)(end - lt - 4), "-->", 3);
			p = c ? c + 3 : end;
			continue;
		}
		if (end - lt >= 9 && memcmp(lt, "<![CDATA[", 9) == 0) {
			const char *c = memmem(lt + 9, (size_t)(end - lt - 9), "]]>", 3);
			p = c ? c + 3 : end;
			continue;
		}
		const char *gt = xml_tag_end(lt, end);
		if (!gt)
			break;
		p = gt + 1;
		if (lt[1] == '?' || lt[1] == '!')
			continue;
		bool closing = lt[1] == '/';
		bool selfclose = gt[-1] == '/';
		const char *name = lt + (closing ? 2 : 1);
		const char *ne = name;
		while (ne < gt && *ne != ' ' && *ne != '\t' && *ne != '\r' && *ne != '\n' && *ne != '/' && *ne != '>')
			ne++;
		const char *local = name;
		for (const char *c = name; c < ne; c++)
			if (*c == ':')
				local = c + 1;
		size_t ll = (size_t)(ne - local);
#define IS(s) (ll == sizeof(s) - 1 && strncasecmp(local, s, ll) == 0)
		if (closing) {
			if (IS("resourcetype"))
				in_rtype = 0;
			else if (IS("response") && in_resp) {
				in_resp = false;
				char *rel = cur.href ? dav_href_to_path(dc, cur.href) : NULL;
				if (rel)
					rc = cloud_entry_vec_add(out, rel, cur.is_dir, cur.is_dir ? 0 : cur.size, cur.mtime_ms,
					    cur.etag, err);
				free(rel);
				free(cur.href);
				memset(&cur, 0, sizeof cur);
			}
			continue;
		}
		if (IS("response")) {
			free(cur.href);
			memset(&cur, 0, sizeof cur);
			in_resp = true;
			in_rtype = 0;
		} else if (!in_resp) {
			continue;
		} else if (IS("resourcetype")) {
			in_rtype = !selfclose;
		} else if (IS("collection")) {
			if (in_rtype)
				cur.is_dir = true;
		} else if (!selfclose && (IS("href") || IS("getcontentlength") || IS("getlastmodified") ||
		    IS("getetag"))) {
			char *text = xml_text(p, end);
			if (!text) {
				rc = ohb_fail(err, OHB_E_NOMEM, "out of memory reading the cloud's listing");
				break;
			}
			if (!*text) {
				free(text);   /* an empty value (a 404 propstat) never overrides a real one */
			} else if (IS("href")) {
				if (!cur.href)
					cur.href = text;   /* the response's own href, not one in a lock */
				else
					free(text);
			} else {
				if (IS("getcontentlength"))
					cur.size = strtoull(text, NULL, 10);
				else if (IS("getlastmodified"))
					cur.mtime_ms = dav_parse_date(text);
				else {
					char *e = text;
					size_t n = strlen(e);
					if (n >= 2 && e[0] == '"' && e[n - 1] == '"') {
						e[n - 1] = '\0';
						e++;
					}
					snprintf(cur.etag, sizeof cur.etag, "%s", e);
				}
				free(text);
			}
		}
#undef IS
	}
	free(cur.href);
	return rc;
}

/* ---- one HTTP exchange ------------------------------------------------------- */

static size_t
on_write(char *data, size_t size, size_t nmemb, void *ud)
{
	dav_req_t *r = ud;
	size_t len = size * nmemb;
	if (r->capture) {
		if (r->reply_len + len + 1 > DAV_MAX_REPLY) {
			r->too_big = true;
			return 0;
		}
		if (r->reply_len + len + 1 > r->reply_cap) {
			size_t cap = r->reply_cap ? r->reply_cap : 16384;
			while (cap < r->reply_len + len + 1)
				cap *= 2;
			char *n = realloc(r->reply, cap);
			if (!n) {
				r->local_errno = ENOMEM;
				return 0;
			}
			r->reply = n;
			r->reply_cap = cap;
		}
		memcpy(r->reply + r->reply_len, data, len);
		r->reply_len += len;
		r->reply[r->reply_len] = '\0';
		return len;
	}
	if (r->out_fd < 0 || !r->write_body)
		return len;   /* a reply nobody needs (an error page, MOVE's body) */
	size_t off = 0;
	if (r->skip > 0) {
		off = r->skip < len ? (size_t)r->skip : len;
		r->skip -= off;
	}
	while (off < len) {
		ssize_t w = write(r->out_fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			r->local_errno = errno;
			return 0;
		}
		off += (size_t)w;
	}
	return len;
}

static size_t
on_read(char *buf, size_t size, size_t nitems, void *ud)
{
	dav_req_t *r = ud;
	size_t want = size * nitems;
	uint64_t left = r->in_size - r->in_sent;
	if (left == 0)
		return 0;
	if (want > left)
		want = (size_t)left;
	for (;;) {
		ssize_t k = read(r->in_fd, buf, want);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r->local_errno = errno;
			return CURL_READFUNC_ABORT;
		}
		if (k == 0) {
			r->short_read = true;
			return CURL_READFUNC_ABORT;
		}
		r->in_sent += (uint64_t)k;
		return (size_t)k;
	}
}

/* curl rewinds an upload when an authentication round needs the body again. */
static int
on_seek(void *ud, curl_off_t offset, int origin)
{
	dav_req_t *r = ud;
	if (origin != SEEK_SET || r->in_start < 0 || offset < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	if (lseek(r->in_fd, r->in_start + (off_t)offset, SEEK_SET) < 0)
		return CURL_SEEKFUNC_CANTSEEK;
	r->in_sent = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* libcurl's progress tick (after every chunk, and at least once a second):
 * the cancel check and the caller's progress. */
static int
on_xferinfo(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	dav_req_t *r = ud;
	if (cloud_xfer_cancelled(r->t)) {
		r->cancelled = true;
		return 1;
	}
	uint64_t done, total;
	if (r->in_fd >= 0) {
		done = (uint64_t)ulnow;
		total = ultotal > 0 ? (uint64_t)ultotal : r->in_size;
	} else {
		uint64_t base = r->write_body && r->skip == 0 && r->offset > 0 && r->status == 206 ? r->offset : 0;
		done = base + (uint64_t)dlnow;
		total = base + (uint64_t)dltotal;
	}
	if (done > total)
		total = done;
	if (!r->reported || done != r->last_done) {
		r->reported = true;
		r->last_done = done;
		cloud_xfer_progress(r->t, done, total);
	}
	return 0;
}

static void
dav_req_init(dav_req_t *r, const char *method, const char *url)
{
	memset(r, 0, sizeof *r);
	r->method = method;
	r->url = url;
	r->out_fd = -1;
	r->in_fd = -1;
	r->in_start = -1;
}

static void
dav_req_done(dav_req_t *r)
{
	curl.slist_free_all(r->headers);
	free(r->reply);
	r->headers = NULL;
	r->reply = NULL;
}

static bool
dav_add_header(dav_req_t *r, const char *h)
{
	struct curl_slist *n = curl.slist_append(r->headers, h);
	if (!n)
		return false;
	r->headers = n;
	return true;
}

/* A GET writes into the caller's fd only a 2xx body (never an error page),
 * and skips by hand what it did not ask for when a server ignores Range
 * (200 instead of 206). The status is known once the first body bytes come. */
typedef struct dav_get_ctx {
	dav_req_t *r;
	CURL *curl;
} dav_get_ctx_t;

static size_t
on_write_get(char *data, size_t size, size_t nmemb, void *ud)
{
	dav_get_ctx_t *g = ud;
	dav_req_t *r = g->r;
	if (!r->status_checked) {
		r->status_checked = true;
		long st = 0;
		curl.easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &st);
		r->status = st;
		r->write_body = st >= 200 && st < 300;
		if (st == 200 && r->offset > 0)
			r->skip = r->offset;   /* the server ignored Range */
	}
	return on_write(data, size, nmemb, r);
}

/* Runs r on dc's handle. Returns the curl result; r->status holds the HTTP status. */
static CURLcode
dav_perform(dav_cloud_t *dc, dav_req_t *r)
{
	CURL *c = dc->curl;
	curl.easy_reset(c);
	dc->errbuf[0] = '\0';
	curl.easy_setopt(c, CURLOPT_URL, r->url);
	curl.easy_setopt(c, CURLOPT_ERRORBUFFER, dc->errbuf);
	curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, DAV_CONNECT_TIMEOUT_MS);
	curl.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, DAV_LOW_SPEED_TIME_S);
	curl.easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl.easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (dc->user) {
		curl.easy_setopt(c, CURLOPT_USERNAME, dc->user);
		curl.easy_setopt(c, CURLOPT_PASSWORD, dc->password ? dc->password : "");
		curl.easy_setopt(c, CURLOPT_HTTPAUTH, (long)(CURLAUTH_BASIC | CURLAUTH_DIGEST));
	}
	dav_get_ctx_t g = {r, c};
	if (r->out_fd >= 0) {
		curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write_get);
		curl.easy_setopt(c, CURLOPT_WRITEDATA, &g);
		if (r->offset > 0) {
			char range[64];
			snprintf(range, sizeof range, "%llu-", (unsigned long long)r->offset);
			curl.easy_setopt(c, CURLOPT_RANGE, range);   /* copied by curl */
		}
	} else {
		curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
		curl.easy_setopt(c, CURLOPT_WRITEDATA, r);
	}
	if (r->in_fd >= 0) {
		curl.easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl.easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->in_size);
		curl.easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl.easy_setopt(c, CURLOPT_READDATA, r);
		curl.easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl.easy_setopt(c, CURLOPT_SEEKDATA, r);
		if (!dc->user)
			dav_add_header(r, "Expect:");   /* no auth round to wait for: skip 100-continue's delay */
	} else if (strcmp(r->method, "GET") != 0) {
		curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	}
	if (r->body) {
		curl.easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
		curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
		curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	}
	curl.easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
	curl.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
	curl.easy_setopt(c, CURLOPT_XFERINFODATA, r);
	CURLcode cc = curl.easy_perform(c);
	long st = 0;
	curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	r->status = st;
	return cc;
}

/* The cloud contract's code and a sentence for an exchange that did not give
 * a 2xx; `what` is "download a/b.txt" and the like. */
static int
dav_fail(dav_cloud_t *dc, const dav_req_t *r, CURLcode cc, const char *what, ohb_error_t *err)
{
	if (cc == CURLE_ABORTED_BY_CALLBACK && r->cancelled)
		return ohb_fail(err, CLOUD_CANCELLED, "cannot %s: cancelled", what);
	if (r->local_errno)
		return ohb_fail_errno(err, r->local_errno, "cannot %s", what);
	if (r->short_read)
		return ohb_fail(err, OHB_E_IO, "cannot %s: the local file ended after %llu of %llu bytes", what,
		    (unsigned long long)r->in_sent, (unsigned long long)r->in_size);
	if (r->too_big)
		return ohb_fail(err, CLOUD_E_INNER, "cannot %s: the cloud's reply is larger than %u bytes", what,
		    DAV_MAX_REPLY);
	const char *why = dc->errbuf[0] ? dc->errbuf : curl.easy_strerror(cc);
	if (cc == CURLE_URL_MALFORMAT || cc == CURLE_UNSUPPORTED_PROTOCOL)
		return ohb_fail(err, CLOUD_E_NOT_READY, "cannot %s: the cloud URL %s is not usable (%s)", what, dc->url,
		    why);
	if (cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE || cc == CURLE_SSL_CERTPROBLEM)
		return ohb_fail(err, CLOUD_E_NOT_READY, "cannot %s: the certificate of the cloud at %s is not trusted (%s)",
		    what, dc->url, why);
	/* refused, reset, unresolvable, timed out, cut short (CURLE_PARTIAL_FILE),
	 * TLS broken mid-way: all "the network is not there" to the sync above */
	if (cc != CURLE_OK)
		return ohb_fail(err, CLOUD_E_NETWORK, "cannot %s: the cloud at %s cannot be reached (%s)", what, dc->url,
		    why);
	long st = r->status;
	if (st == 401 || st == 403)
		return ohb_fail(err, CLOUD_E_NOT_READY, "cannot %s: the cloud at %s refused the credentials (HTTP %ld)",
		    what, dc->url, st);
	if (st == 404)
		return ohb_fail(err, OHB_E_NOENT, "cannot %s: no such file in the cloud (HTTP 404)", what);
	if (st == 507)
		return ohb_fail(err, CLOUD_E_LIMIT, "cannot %s: the cloud is full (HTTP 507)", what);
	if (st >= 500)
		return ohb_fail(err, CLOUD_E_NETWORK, "cannot %s: the cloud at %s is unavailable (HTTP %ld)", what,
		    dc->url, st);
	return ohb_fail(err, CLOUD_E_INNER, "cannot %s: the cloud at %s answered HTTP %ld", what, dc->url, st);
}

static bool
status_ok(CURLcode cc, const dav_req_t *r)
{
	return cc == CURLE_OK && r->status >= 200 && r->status < 300;
}

/* The URL of a cloud path ("" = the root); a folder's gets a trailing '/'. */
static char *
dav_url(const dav_cloud_t *dc, const char *path, bool folder)
{
	char *enc = fsu_url_encode(path);
	if (!enc)
		return NULL;
	char *u = fsu_printf("%s%s%s%s", dc->origin, dc->base, enc, folder && *path ? "/" : "");
	free(enc);
	return u;
}

/* ---- open / close ------------------------------------------------------------ */

static void
dav_close(void *impl)
{
	dav_cloud_t *dc = impl;
	if (!dc)
		return;
	if (dc->curl)
		curl.easy_cleanup(dc->curl);
	free(dc->url);
	free(dc->origin);
	free(dc->base);
	free(dc->base_dec);
	free(dc->user);
	free(dc->password);
	free(dc);
}

static int
dav_open(const char *url, const char *user, const char *password, void **impl, ohb_error_t *err)
{
	pthread_once(&dav_global_once, dav_global_init);
	if (!dav_loaded)
		return ohb_fail(err, CLOUD_E_NOT_READY,
		    "a WebDAV cloud needs libcurl, which cannot be loaded (%s); install libcurl4 (Debian: libcurl4)",
		    dav_load_error);
	if (dav_global_rc != CURLE_OK)
		return ohb_fail(err, CLOUD_E_INNER, "libcurl cannot start: %s", curl.easy_strerror(dav_global_rc));
	const char *auth = strstr(url, "://") + 3;   /* cloud_driver.c checked the scheme */
	const char *path = auth + strcspn(auth, "/?#");
	if (path == auth)
		return ohb_fail(err, CLOUD_E_NOT_READY, "the cloud URL %s names no host", url);
	dav_cloud_t *dc = calloc(1, sizeof *dc);
	if (!dc)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory opening the cloud %s", url);
	size_t plen = *path == '/' ? strcspn(path, "?#") : 0;
	bool slash = plen > 0 && path[plen - 1] == '/';
	dc->url = strdup(url);
	dc->origin = fsu_printf("%.*s", (int)(path - url), url);
	dc->base = plen ? fsu_printf("%.*s%s", (int)plen, path, slash ? "" : "/") : strdup("/");
	dc->base_dec = dc->base ? strdup(dc->base) : NULL;
	dc->user = user ? strdup(user) : NULL;
	dc->password = password ? strdup(password) : NULL;
	dc->curl = curl.easy_init();
	if (!dc->url || !dc->origin || !dc->base || !dc->base_dec || (user && !dc->user) ||
	    (password && !dc->password) || !dc->curl) {
		dav_close(dc);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory opening the cloud %s", url);
	}
	if (!dav_decode(dc->base_dec)) {
		dav_close(dc);
		return ohb_fail(err, CLOUD_E_NOT_READY, "the cloud URL %s has a malformed %%-escape", url);
	}
	dc->tmp_n = cloud_temp_seed(dc);
	*impl = dc;
	return OHB_OK;
}

/* ---- PROPFIND ------------------------------------------------------------------- */

static const char propfind_body[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
    "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:resourcetype/><D:getcontentlength/>"
    "<D:getlastmodified/><D:getetag/></D:prop></D:propfind>";

/* PROPFIND path with depth "0" or "1" into entries. A 404 -> OHB_E_NOENT
 * with a sentence. */
static int
dav_propfind(dav_cloud_t *dc, const char *path, bool folder, const char *depth, cloud_entry_vec_t *out,
    long *status, ohb_error_t *err)
{
	char *url = dav_url(dc, path, folder);
	if (!url)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	dav_req_t r;
	dav_req_init(&r, "PROPFIND", url);
	r.capture = true;
	r.body = propfind_body;
	char dh[32];
	snprintf(dh, sizeof dh, "Depth: %s", depth);
	int rc = OHB_OK;
	if (!dav_add_header(&r, dh) || !dav_add_header(&r, "Content-Type: application/xml; charset=utf-8"))
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	char what[300];
	snprintf(what, sizeof what, "look at %s in the cloud", *path ? path : "the root");
	if (rc == OHB_OK) {
		CURLcode cc = dav_perform(dc, &r);
		if (status)
			*status = cc == CURLE_OK ? r.status : 0;
		if (cc == CURLE_OK && r.status == 207)
			rc = dav_parse_multistatus(dc, r.reply ? r.reply : "", r.reply_len, out, err);
		else if (status_ok(cc, &r))
			rc = ohb_fail(err, CLOUD_E_INNER, "cannot %s: the cloud at %s is not a WebDAV server (HTTP %ld)",
			    what, dc->url, r.status);
		else
			rc = dav_fail(dc, &r, cc, what, err);
	}
	dav_req_done(&r);
	free(url);
	return rc;
}

/* ---- list / stat ------------------------------------------------------------------- */

static int
dav_list_rec(dav_cloud_t *dc, const char *dir, int depth, cloud_entry_vec_t *all, ohb_error_t *err)
{
	if (depth > DAV_MAX_DEPTH)
		return ohb_fail(err, OHB_E_INVAL, "the cloud folder %s is nested too deeply", dir);
	cloud_entry_vec_t here = {0};
	int rc = dav_propfind(dc, dir, true, "1", &here, NULL, err);
	if (rc == OHB_E_NOENT && depth == 0)
		rc = OHB_OK;   /* a missing folder lists as empty */
	for (size_t i = 0; rc == OHB_OK && i < here.n; i++) {
		cloud_entry_t *e = &here.v[i];
		if (strcmp(e->path, dir) == 0 || cloud_is_temp_name(e->path))
			continue;   /* the folder itself; our own temporaries */
		size_t dl = strlen(dir);
		if (dl && (strncmp(e->path, dir, dl) != 0 || e->path[dl] != '/'))
			continue;   /* not below dir: a confused server */
		rc = cloud_entry_vec_add(all, e->path, e->is_dir, e->size, e->mtime_ms, e->etag, err);
		if (rc == OHB_OK && e->is_dir)
			rc = dav_list_rec(dc, e->path, depth + 1, all, err);
	}
	cloud_entries_free(here.v, here.n);
	return rc;
}

static int
dav_list(void *impl, const char *dir, cloud_entry_t **out, size_t *n, ohb_error_t *err)
{
	cloud_entry_vec_t all = {0};
	int rc = dav_list_rec(impl, dir, 0, &all, err);
	if (rc != OHB_OK) {
		cloud_entries_free(all.v, all.n);
		return rc;
	}
	*out = all.v;
	*n = all.n;
	return OHB_OK;
}

static int
dav_stat(void *impl, const char *path, cloud_entry_t *out, ohb_error_t *err)
{
	cloud_entry_vec_t v = {0};
	long st = 0;
	int rc = dav_propfind(impl, path, false, "0", &v, &st, err);
	if (st == 301 || st == 302 || st == 307 || st == 308) {
		/* Apache sends a folder named without its '/' to the name with it */
		rc = dav_propfind(impl, path, true, "0", &v, NULL, err);
	}
	if (rc == OHB_OK) {
		size_t i = 0;
		while (i < v.n && strcmp(v.v[i].path, path) != 0)
			i++;
		if (i == v.n) {
			rc = ohb_fail(err, OHB_E_NOENT, "cannot find %s in the cloud: the server did not describe it", path);
		} else {
			*out = v.v[i];
			v.v[i].path = NULL;   /* moved to out */
		}
	}
	cloud_entries_free(v.v, v.n);
	return rc;
}

/* ---- get ------------------------------------------------------------------------------ */

static int
dav_get(void *impl, const char *path, uint64_t offset, int out_fd, const cloud_transfer_t *t, ohb_error_t *err)
{
	dav_cloud_t *dc = impl;
	char *url = dav_url(dc, path, false);
	if (!url)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	dav_req_t r;
	dav_req_init(&r, "GET", url);
	r.out_fd = out_fd;
	r.offset = offset;
	r.t = t;
	char what[300];
	snprintf(what, sizeof what, "download %s", path);
	CURLcode cc = dav_perform(dc, &r);
	int rc = OHB_OK;
	if (cc == CURLE_OK && r.status == 416) {
		/* nothing after offset: fine when the file is exactly that long */
		cloud_entry_t e = {0};
		rc = dav_stat(dc, path, &e, err);
		if (rc == OHB_OK && e.size != offset)
			rc = ohb_fail(err, OHB_E_INVAL, "cannot resume %s at byte %llu: the cloud copy has %llu bytes", path,
			    (unsigned long long)offset, (unsigned long long)e.size);
		else if (rc == OHB_OK)
			cloud_xfer_progress(t, offset, offset);
		free(e.path);
	} else if (!status_ok(cc, &r)) {
		rc = dav_fail(dc, &r, cc, what, err);
	} else if (r.skip > 0) {
		rc = ohb_fail(err, OHB_E_INVAL, "cannot resume %s at byte %llu: the cloud copy is shorter", path,
		    (unsigned long long)offset);
	}
	dav_req_done(&r);
	free(url);
	return rc;
}

/* ---- put ------------------------------------------------------------------------------ */

/* A simple exchange without a body either way; returns the curl result and
 * leaves the status in *status. */
static CURLcode
dav_simple(dav_cloud_t *dc, const char *method, const char *url, const char *h1, const char *h2, dav_req_t *r)
{
	dav_req_init(r, method, url);
	if ((h1 && !dav_add_header(r, h1)) || (h2 && !dav_add_header(r, h2))) {
		r->local_errno = ENOMEM;
		return CURLE_OUT_OF_MEMORY;
	}
	return dav_perform(dc, r);
}

static int
dav_mkcol(dav_cloud_t *dc, const char *folder, long *status, ohb_error_t *err)
{
	char *url = dav_url(dc, folder, true);
	if (!url)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	dav_req_t r;
	CURLcode cc = dav_simple(dc, "MKCOL", url, NULL, NULL, &r);
	*status = r.status;
	int rc = OHB_OK;
	/* 201 created; 405 "already exists" (Apache, Nextcloud); 409 a parent is missing */
	if (!(status_ok(cc, &r) || (cc == CURLE_OK && (r.status == 405 || r.status == 409)))) {
		char what[300];
		snprintf(what, sizeof what, "create the cloud folder %s", folder);
		rc = dav_fail(dc, &r, cc, what, err);
	}
	dav_req_done(&r);
	free(url);
	return rc;
}

/* Makes sure the folder holding path exists: one MKCOL in the common case,
 * the whole chain from the top when the server says a parent is missing. */
static int
dav_ensure_parent(dav_cloud_t *dc, const char *path, ohb_error_t *err)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return OHB_OK;
	char *parent = fsu_printf("%.*s", (int)(slash - path), path);
	if (!parent)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	long st = 0;
	int rc = dav_mkcol(dc, parent, &st, err);
	if (rc == OHB_OK && st == 409) {
		for (char *p = strchr(parent, '/'); rc == OHB_OK && p; p = strchr(p + 1, '/')) {
			*p = '\0';
			rc = dav_mkcol(dc, parent, &st, err);
			*p = '/';
		}
		if (rc == OHB_OK)
			rc = dav_mkcol(dc, parent, &st, err);
		if (rc == OHB_OK && st == 409)
			rc = ohb_fail(err, OHB_E_NOENT, "cannot create the cloud folder %s: a file is in the way", parent);
	}
	free(parent);
	return rc;
}

/* "Destination: <url>" without a user:password@ of the configured URL: a
 * header is no place for a password, and servers compare the host part. */
static char *
dav_destination(const dav_cloud_t *dc, const char *url)
{
	const char *auth = strstr(url, "://") + 3;
	const char *at = memchr(auth, '@', (size_t)(url + strlen(dc->origin) - auth));
	if (!at)
		return fsu_printf("Destination: %s", url);
	return fsu_printf("Destination: %.*s%s", (int)(auth - url), url, at + 1);
}

static void
dav_delete_quietly(dav_cloud_t *dc, const char *url)
{
	dav_req_t r;
	dav_simple(dc, "DELETE", url, NULL, NULL, &r);
	dav_req_done(&r);
}

static int
dav_put(void *impl, const char *path, int in_fd, uint64_t size, const cloud_transfer_t *t, cloud_entry_t *out,
    ohb_error_t *err)
{
	dav_cloud_t *dc = impl;
	int rc = dav_ensure_parent(dc, path, err);
	if (rc != OHB_OK)
		return rc;
	char *tmp = cloud_temp_path(path, dc->tmp_n++);
	char *tmp_url = tmp ? dav_url(dc, tmp, false) : NULL;
	char *url = dav_url(dc, path, false);
	char *dest = url ? dav_destination(dc, url) : NULL;
	if (!tmp_url || !dest) {
		free(tmp);
		free(tmp_url);
		free(url);
		free(dest);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	char what[300];
	snprintf(what, sizeof what, "upload %s", path);

	dav_req_t r;
	dav_req_init(&r, "PUT", tmp_url);
	r.in_fd = in_fd;
	r.in_size = size;
	r.in_start = lseek(in_fd, 0, SEEK_CUR);
	r.t = t;
	cloud_xfer_progress(t, 0, size);
	CURLcode cc = dav_perform(dc, &r);
	bool sent = status_ok(cc, &r);
	if (!sent)
		rc = dav_fail(dc, &r, cc, what, err);
	dav_req_done(&r);

	if (sent) {
		cc = dav_simple(dc, "MOVE", tmp_url, dest, "Overwrite: T", &r);
		if (!status_ok(cc, &r)) {
			snprintf(what, sizeof what, "put %s in place", path);
			rc = dav_fail(dc, &r, cc, what, err);
		}
		dav_req_done(&r);
	}
	if (rc != OHB_OK)
		dav_delete_quietly(dc, tmp_url);   /* best effort: a dead server keeps the clutter */
	else if (out)
		rc = dav_stat(dc, path, out, err);
	free(tmp);
	free(tmp_url);
	free(url);
	free(dest);
	return rc;
}

/* ---- remove / move ----------------------------------------------------------------- */

static int
dav_remove(void *impl, const char *path, ohb_error_t *err)
{
	dav_cloud_t *dc = impl;
	cloud_entry_t e = {0};
	int rc = dav_stat(dc, path, &e, err);
	bool is_dir = e.is_dir;
	free(e.path);
	if (rc == OHB_E_NOENT)
		return OHB_OK;
	if (rc != OHB_OK)
		return rc;
	if (is_dir) {
		/* DELETE of a WebDAV collection takes everything below it */
		cloud_entry_vec_t v = {0};
		rc = dav_propfind(dc, path, true, "1", &v, NULL, err);
		size_t children = 0;
		for (size_t i = 0; i < v.n; i++)
			if (strcmp(v.v[i].path, path) != 0)
				children++;
		cloud_entries_free(v.v, v.n);
		if (rc == OHB_OK && children > 0)
			rc = ohb_fail(err, OHB_E_INVAL, "cannot remove the cloud folder %s: it is not empty", path);
		if (rc != OHB_OK)
			return rc == OHB_E_NOENT ? OHB_OK : rc;
	}
	char *url = dav_url(dc, path, is_dir);
	if (!url)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	dav_req_t r;
	CURLcode cc = dav_simple(dc, "DELETE", url, NULL, NULL, &r);
	if (!status_ok(cc, &r) && !(cc == CURLE_OK && r.status == 404)) {
		char what[300];
		snprintf(what, sizeof what, "remove %s from the cloud", path);
		rc = dav_fail(dc, &r, cc, what, err);
	}
	dav_req_done(&r);
	free(url);
	return rc;
}

static int
dav_move(void *impl, const char *from, const char *to, ohb_error_t *err)
{
	dav_cloud_t *dc = impl;
	int rc = dav_ensure_parent(dc, to, err);
	if (rc != OHB_OK)
		return rc;
	char *from_url = dav_url(dc, from, false);
	char *to_url = dav_url(dc, to, false);
	char *dest = to_url ? dav_destination(dc, to_url) : NULL;
	if (!from_url || !dest) {
		free(from_url);
		free(to_url);
		free(dest);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	dav_req_t r;
	CURLcode cc = dav_simple(dc, "MOVE", from_url, dest, "Overwrite: F", &r);
	cloud_entry_t e = {0};
	if (cc == CURLE_OK && r.status == 412)
		rc = ohb_fail(err, OHB_E_INVAL, "cannot move %s to %s in the cloud: %s already exists", from, to, to);
	else if (cc == CURLE_OK && (r.status == 403 || r.status == 409) && dav_stat(dc, from, &e, NULL) == OHB_E_NOENT)
		rc = ohb_fail(err, OHB_E_NOENT, "cannot move %s in the cloud: no such file", from);   /* rclone: 403 */
	else if (!status_ok(cc, &r)) {
		char what[600];
		snprintf(what, sizeof what, "move %s to %s in the cloud", from, to);
		rc = dav_fail(dc, &r, cc, what, err);
	}
	free(e.path);
	dav_req_done(&r);
	free(from_url);
	free(to_url);
	free(dest);
	return rc;
}

const cloud_ops_t cloud_webdav_ops = {
	.kind = "webdav",
	.open = dav_open,
	.close = dav_close,
	.list = dav_list,
	.stat = dav_stat,
	.get = dav_get,
	.put = dav_put,
	.remove = dav_remove,
	.move = dav_move,
};
