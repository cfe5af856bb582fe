/*
 * demo — a demo device whose bundles look like real applications' data.
 *
 * Each bundle is chosen to walk a different path through backup and restore:
 *
 *   com.example.notes     hundreds of small notes in a deep tree, an empty
 *                         folder, a symlink (skipped by backup), a hap's files,
 *                         preferences and a database            -> many-files tar
 *   com.example.gallery   photos of 2.5-4 MiB (sent raw), one file of exactly
 *                         2 MiB (still tarred) and one of 2 MiB + 1 (raw),
 *                         thumbnails in a hidden folder          -> big files
 *   com.example.mail      deep account trees and a cache/ that the descriptor
 *                         excludes; restoreDeps on contacts      -> excludes, deps
 *   com.example.bank      allowToBackupRestore false             -> 13500001
 *   com.example.unicode   spaces, quotes, ';', UTF-8 (French, Chinese, emoji),
 *                         a name over 100 bytes and paths over 150 chars
 *                                                                -> GNU long names,
 *                                                                   .rp encoding
 *   com.example.music     a few big tracks, playlists, a *.tmp download that a
 *                         glob exclude drops                     -> glob excludes
 *   com.example.contacts  an el1 database and el2 preferences    -> el1 paths
 *   com.example.ledger    a text "database" and an extension (a sh script
 *                         in the bundle folder, ext/ledger-ext.sh) that
 *                         dumps it before backup and loads it back after
 *                         restore                                -> extensions
 *
 * Everything is derived from the seed with splitmix64, one generator per
 * bundle, so adding a file to one bundle does not reshuffle the others, and the
 * same seed gives the same device byte for byte: file list, sizes, contents,
 * modes and mtimes. Modes are set with fchmod/chmod after creation, so the
 * umask of whoever runs the demo does not matter. Directory mtimes are set
 * last (creating a file would change them) from a hash of their path, so they
 * do not depend on creation order either.
 *
 * The ledger's script is a real BackupExtensionAbility for docs/EXTENSIONS.md:
 * progress lines, a CountInfo result, info and compat. It puts back the mtimes
 * of the folders it writes into, so a backup leaves the sandbox as it was (but
 * for the dump) and a backup/restore round trip compares equal.
 *
 * Size: about 34 MiB in about 750 files; it builds in well under a second on
 * a local disk because nothing but the descriptors is fsync'ed.
 */
#include "demo.h"

#include <cJSON.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"
#include "registry.h"

#define MiB (1024u * 1024u)
#define KiB 1024u
#define CHUNK (64u * KiB)

/* mtimes fall in the year before this instant (2024-06-10 06:13:20 UTC). */
#define DEMO_EPOCH 1718000000LL
#define DEMO_SPAN (365LL * 24 * 3600)

#define EL2F "data/storage/el2/base/files"
#define EL2P "data/storage/el2/base/preferences"
#define EL2DB "data/storage/el2/database"
#define EL1F "data/storage/el1/base/files"
#define EL1DB "data/storage/el1/database"

/* ---- the generator -------------------------------------------------------------- */

typedef struct demo_rng {
	uint64_t state;
} demo_rng_t;

/* splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and every seed is good. */
static uint64_t
rng_next(demo_rng_t *r)
{
	uint64_t z = (r->state += 0x9E3779B97F4A7C15ULL);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/* Uniform enough in [lo, hi] for a demo (the modulo bias is negligible). */
static uint64_t
rng_range(demo_rng_t *r, uint64_t lo, uint64_t hi)
{
	return lo + rng_next(r) % (hi - lo + 1);
}

static const char *
rng_pick(demo_rng_t *r, const char *const *v, size_t n)
{
	return v[rng_next(r) % n];
}

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* ---- writing a sandbox ------------------------------------------------------------ */

typedef enum { FILL_TEXT, FILL_BINARY } fill_t;

/* One bundle being filled. Errors are sticky: after the first failure every
 * call does nothing, so the fill functions read as a plain list of files and
 * the caller checks rc once at the end. */
typedef struct demo_ctx {
	const char *sandbox;          /* absolute real path of the bundle's "/" */
	demo_rng_t rng;
	char **dirs;                  /* folders we created, relative to sandbox */
	size_t n_dirs, cap_dirs;
	const char *const *private_dirs;  /* these get 0700, the others 0755 */
	unsigned char buf[CHUNK];
	int rc;
	ohb_error_t *err;
} demo_ctx_t;

static const char *const words[] = {
	"the", "backup", "of", "a", "bundle", "is", "made", "from", "its", "sandbox", "and", "restored",
	"into", "place", "meeting", "notes", "project", "plan", "review", "draft", "budget", "quarter",
	"travel", "recipe", "garden", "weekly", "summary", "ideas", "call", "with", "team", "about",
	"release", "schedule", "photos", "music", "contacts", "mail", "reply", "tomorrow", "morning",
	"remember", "to", "check", "update", "device", "storage", "files", "list", "open", "questions",
	"follow", "up", "on", "Monday", "Friday", "shopping", "milk", "bread", "coffee", "tea",
};

static void
fill_text(demo_rng_t *r, unsigned char *buf, size_t len)
{
	size_t o = 0, on_line = 0;
	while (o < len) {
		const char *w = rng_pick(r, words, sizeof words / sizeof words[0]);
		size_t wl = strlen(w);
		for (size_t i = 0; i < wl && o < len; i++)
			buf[o++] = (unsigned char)w[i];
		if (o < len)
			buf[o++] = (++on_line >= 8 + rng_next(r) % 7) ? '\n' : ' ';
		if (o > 0 && buf[o - 1] == '\n')
			on_line = 0;
	}
}

static void
fill_binary(demo_rng_t *r, unsigned char *buf, size_t len)
{
	for (size_t o = 0; o < len; o += 8) {
		uint64_t v = rng_next(r);
		size_t n = len - o < 8 ? len - o : 8;
		memcpy(buf + o, &v, n);
	}
}

static struct timespec
past_time(demo_rng_t *r)
{
	struct timespec ts;
	ts.tv_sec = (time_t)(DEMO_EPOCH - (int64_t)rng_range(r, 3600, DEMO_SPAN));
	ts.tv_nsec = (long)(rng_next(r) % 1000000000u);
	return ts;
}

static bool
ctx_failed(demo_ctx_t *c)
{
	return c->rc != 0;
}

static void
ctx_fail_errno(demo_ctx_t *c, const char *what, const char *rel)
{
	if (c->rc == 0)
		c->rc = ohb_fail_errno(c->err, errno, "demo: cannot %s %s/%s", what, c->sandbox, rel);
}

static bool
ctx_path(demo_ctx_t *c, char *out, size_t size, const char *rel)
{
	int n = snprintf(out, size, "%s/%s", c->sandbox, rel);
	if (n < 0 || (size_t)n >= size) {
		if (c->rc == 0)
			c->rc = ohb_fail(c->err, OHB_E_INVAL, "demo: path too long: %s/%s", c->sandbox, rel);
		return false;
	}
	return true;
}

static void
remember_dir(demo_ctx_t *c, const char *rel, size_t len)
{
	if (c->n_dirs == c->cap_dirs) {
		size_t nc = c->cap_dirs ? c->cap_dirs * 2 : 64;
		char **nv = realloc(c->dirs, nc * sizeof *nv);
		if (!nv) {
			c->rc = ohb_fail(c->err, OHB_E_NOMEM, "out of memory");
			return;
		}
		c->dirs = nv;
		c->cap_dirs = nc;
	}
	if (!(c->dirs[c->n_dirs] = strndup(rel, len))) {
		c->rc = ohb_fail(c->err, OHB_E_NOMEM, "out of memory");
		return;
	}
	c->n_dirs++;
}

/* mkdir -p of rel (relative to the sandbox), remembering what it created. */
static void
make_dir(demo_ctx_t *c, const char *rel)
{
	char path[PATH_MAX];
	if (ctx_failed(c) || !ctx_path(c, path, sizeof path, rel))
		return;
	size_t base = strlen(c->sandbox) + 1;
	for (char *p = path + base;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(path, 0700) == 0)
			remember_dir(c, path + base, strlen(path + base));
		else if (errno != EEXIST)
			ctx_fail_errno(c, "create the folder", path + base);
		*p = saved;
		if (!saved || ctx_failed(c))
			return;
	}
}

static void
make_parent(demo_ctx_t *c, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	if (!slash || ctx_failed(c))
		return;
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%.*s", (int)(slash - rel), rel);
	make_dir(c, parent);
}

static bool
write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		p += w;
		len -= (size_t)w;
	}
	return true;
}

/* Writes rel: prefix (a file's magic or headers), then generated bytes up to
 * size in all; then its mode and a past mtime. */
static void
put_file(demo_ctx_t *c, const char *rel, const char *prefix, size_t prefix_len, size_t size, fill_t fill,
    mode_t mode)
{
	char path[PATH_MAX];
	make_parent(c, rel);
	if (ctx_failed(c) || !ctx_path(c, path, sizeof path, rel))
		return;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ctx_fail_errno(c, "create", rel);
		return;
	}
	if (size < prefix_len)
		size = prefix_len;
	bool ok = write_all(fd, (const unsigned char *)prefix, prefix_len);
	for (size_t left = size - prefix_len; ok && left > 0;) {
		size_t n = left < CHUNK ? left : CHUNK;
		if (fill == FILL_TEXT)
			fill_text(&c->rng, c->buf, n);
		else
			fill_binary(&c->rng, c->buf, n);
		ok = write_all(fd, c->buf, n);
		left -= n;
	}
	struct timespec ts[2];
	ts[0] = ts[1] = past_time(&c->rng);
	if (ok)
		ok = fchmod(fd, mode) == 0 && futimens(fd, ts) == 0;
	if (!ok)
		ctx_fail_errno(c, "write", rel);
	close(fd);
}

static void
put_text(demo_ctx_t *c, const char *rel, const char *head, size_t size, mode_t mode)
{
	put_file(c, rel, head ? head : "", head ? strlen(head) : 0, size, FILL_TEXT, mode);
}

static void
put_binary(demo_ctx_t *c, const char *rel, const char *magic, size_t magic_len, size_t size, mode_t mode)
{
	put_file(c, rel, magic, magic_len, size, FILL_BINARY, mode);
}

static void
put_symlink(demo_ctx_t *c, const char *rel, const char *target)
{
	char path[PATH_MAX];
	make_parent(c, rel);
	if (ctx_failed(c) || !ctx_path(c, path, sizeof path, rel))
		return;
	struct timespec ts[2];
	ts[0] = ts[1] = past_time(&c->rng);
	if (symlink(target, path) != 0 || utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0)
		ctx_fail_errno(c, "create the symlink", rel);
}

/* Mostly 0644, sometimes 0640: files a group may read. */
static mode_t
usual_mode(demo_ctx_t *c)
{
	return rng_next(&c->rng) % 10 == 0 ? 0640 : 0644;
}

/* Sets every folder we created to its mode and a past mtime. Order does not
 * matter: neither chmod nor a child's utimensat changes a folder's mtime. */
static void
finish_dirs(demo_ctx_t *c)
{
	for (size_t i = 0; i < c->n_dirs && !ctx_failed(c); i++) {
		char path[PATH_MAX];
		if (!ctx_path(c, path, sizeof path, c->dirs[i]))
			return;
		mode_t mode = 0755;
		for (const char *const *p = c->private_dirs; p && *p; p++)
			if (strcmp(*p, c->dirs[i]) == 0)
				mode = 0700;
		uint64_t h = fnv1a(c->dirs[i]);
		struct timespec ts[2];
		ts[0].tv_sec = (time_t)(DEMO_EPOCH - (int64_t)(h % (uint64_t)DEMO_SPAN));
		ts[0].tv_nsec = (long)((h >> 32) % 1000000000u);
		ts[1] = ts[0];
		if (chmod(path, mode) != 0 || utimensat(AT_FDCWD, path, ts, 0) != 0)
			ctx_fail_errno(c, "set the mode and time of", c->dirs[i]);
	}
}

/* ---- the bundles ---------------------------------------------------------------- */

static const char sqlite_magic[] = "SQLite format 3";   /* with its NUL: 16 bytes */
static const char jpeg_magic[] = "\xFF\xD8\xFF\xE0\x00\x10JFIF";
static const char png_magic[] = "\x89PNG\r\n\x1A\n";
static const char flac_magic[] = "fLaC";
static const char pdf_magic[] = "%PDF-1.7\n";

static void
put_db(demo_ctx_t *c, const char *rel, size_t size)
{
	put_binary(c, rel, sqlite_magic, sizeof sqlite_magic, size, 0600);
}

static void
put_prefs(demo_ctx_t *c, const char *rel, const char *const *keys, size_t n)
{
	char xml[2048];
	size_t o = (size_t)snprintf(xml, sizeof xml, "<?xml version='1.0' encoding='utf-8'?>\n<preferences>\n");
	for (size_t i = 0; i < n && o < sizeof xml; i++)
		o += (size_t)snprintf(xml + o, sizeof xml - o, "  <string name=\"%s\">%llu</string>\n", keys[i],
		    (unsigned long long)(rng_next(&c->rng) % 100000));
	if (o < sizeof xml)
		snprintf(xml + o, sizeof xml - o, "</preferences>\n");
	put_text(c, rel, xml, 0, 0600);
}

static void
fill_notes(demo_ctx_t *c)
{
	static const char *const books[] = { "Personal", "Work", "Recipes", "Travel", "Reading" };
	static const char *const sections[] = { "inbox", "projects", "ideas", "journal", "drafts" };
	char rel[PATH_MAX], head[256];
	unsigned id = 1;
	for (size_t b = 0; b < sizeof books / sizeof books[0]; b++) {
		size_t n_sections = rng_range(&c->rng, 2, 4);
		for (size_t s = 0; s < n_sections; s++) {
			for (int year = 2022; year <= 2024; year++) {
				unsigned month = (unsigned)rng_range(&c->rng, 1, 12);
				size_t n_notes = rng_range(&c->rng, 4, 9);
				for (size_t k = 0; k < n_notes; k++, id++) {
					snprintf(rel, sizeof rel, EL2F "/notebooks/%s/%s/%d/%02u/note-%04u.md",
					    books[b], sections[s], year, month, id);
					snprintf(head, sizeof head, "# %s note %u\n\n", books[b], id);
					put_text(c, rel, head, rng_range(&c->rng, 200, 6 * KiB), usual_mode(c));
				}
			}
		}
	}
	for (unsigned k = 1; k <= 12; k++) {
		snprintf(rel, sizeof rel, EL2F "/attachments/img-%03u.png", k);
		put_binary(c, rel, png_magic, sizeof png_magic - 1, rng_range(&c->rng, 10 * KiB, 80 * KiB), 0644);
	}
	make_dir(c, EL2F "/notebooks/Trash");   /* an empty folder: kept as "…/Trash/" */
	put_symlink(c, EL2F "/latest", "notebooks/Personal");
	put_text(c, "data/storage/el2/base/haps/entry/files/widget_state.json", "{\"widget\":\"recent\",\"n\":",
	    64, 0644);
	static const char *const prefs[] = { "font_size", "sort_order", "last_opened", "sync_interval" };
	put_prefs(c, EL2P "/settings.xml", prefs, 4);
	put_prefs(c, EL2P "/editor.xml", prefs, 2);
	put_db(c, EL2DB "/rdb/notes.db", 384 * KiB);
	put_db(c, EL2DB "/rdb/notes.db-wal", 64 * KiB);
	put_db(c, EL2DB "/rdb/notes.db-shm", 32 * KiB);
}

static void
fill_gallery(demo_ctx_t *c)
{
	char rel[PATH_MAX];
	for (unsigned k = 0; k < 4; k++) {
		snprintf(rel, sizeof rel, EL2F "/Pictures/Camera/IMG_2024%02u%02u_%02u%02u%02u.jpg", 1 + k * 2,
		    3 + k * 5, (unsigned)rng_range(&c->rng, 0, 23), (unsigned)rng_range(&c->rng, 0, 59),
		    (unsigned)rng_range(&c->rng, 0, 59));
		put_binary(c, rel, jpeg_magic, sizeof jpeg_magic - 1, rng_range(&c->rng, 5 * MiB / 2, 4 * MiB - 1),
		    0644);
	}
	/* Right on the 2 MiB line (REFERENCE.md): the first is tarred, the second sent raw. */
	put_binary(c, EL2F "/Pictures/Panorama/PANO_20240101_120000.jpg", jpeg_magic, sizeof jpeg_magic - 1,
	    2 * MiB, 0644);
	put_binary(c, EL2F "/Pictures/Panorama/PANO_20240102_120000.jpg", jpeg_magic, sizeof jpeg_magic - 1,
	    2 * MiB + 1, 0644);
	for (unsigned k = 1; k <= 8; k++) {
		snprintf(rel, sizeof rel, EL2F "/Pictures/Screenshots/Screenshot_%03u.png", k);
		put_binary(c, rel, png_magic, sizeof png_magic - 1, rng_range(&c->rng, 50 * KiB, 200 * KiB), 0644);
	}
	for (unsigned k = 0; k < 30; k++) {
		snprintf(rel, sizeof rel, EL2F "/.thumbnails/%016llx.jpg", (unsigned long long)rng_next(&c->rng));
		put_binary(c, rel, jpeg_magic, sizeof jpeg_magic - 1, rng_range(&c->rng, 6 * KiB, 30 * KiB), 0644);
	}
	static const char *const prefs[] = { "grid_columns", "show_hidden_albums", "last_album" };
	put_prefs(c, EL2P "/gallery_settings.xml", prefs, 3);
	put_db(c, EL2DB "/rdb/media_library.db", 256 * KiB);
}

static void
fill_mail(demo_ctx_t *c)
{
	static const char *const accounts[] = { "alice@example.com", "work@example.org" };
	static const char *const folders[] = { "Inbox", "Sent", "Drafts", "Archive/2023/Q4", "Archive/2024/Q1",
		"Projects/Alpha/Reports/Weekly" };
	static const char *const subjects[] = { "Weekly report", "Lunch?", "Re: budget", "Photos from the trip",
		"Invoice", "Meeting notes" };
	char rel[PATH_MAX], head[512];
	unsigned id = 1000;
	for (size_t a = 0; a < sizeof accounts / sizeof accounts[0]; a++) {
		for (size_t f = 0; f < sizeof folders / sizeof folders[0]; f++) {
			size_t n = rng_range(&c->rng, 15, 35);
			for (size_t k = 0; k < n; k++, id++) {
				snprintf(rel, sizeof rel, EL2F "/accounts/%s/folders/%s/%u.eml", accounts[a], folders[f],
				    id);
				snprintf(head, sizeof head,
				    "From: %s\r\nTo: bob@example.net\r\nSubject: %s\r\nMessage-ID: <%u@demo>\r\n\r\n",
				    accounts[a], rng_pick(&c->rng, subjects, 6), id);
				put_text(c, rel, head, rng_range(&c->rng, 1 * KiB, 8 * KiB), usual_mode(c));
			}
		}
		for (unsigned k = 0; k < 5; k++) {
			snprintf(rel, sizeof rel, EL2F "/accounts/%s/attachments/%u/report.pdf", accounts[a], 2000 + k);
			put_binary(c, rel, pdf_magic, sizeof pdf_magic - 1, rng_range(&c->rng, 20 * KiB, 100 * KiB),
			    0640);
		}
	}
	/* Excluded by the descriptor: nothing of it may appear in a backup. */
	for (unsigned k = 0; k < 40; k++) {
		unsigned long long h = (unsigned long long)rng_next(&c->rng);
		snprintf(rel, sizeof rel, EL2F "/cache/http/%02llx/%016llx", h & 0xff, h);
		put_binary(c, rel, NULL, 0, rng_range(&c->rng, 1 * KiB, 16 * KiB), 0600);
	}
	static const char *const prefs[] = { "default_account", "signature", "check_interval" };
	put_prefs(c, EL2P "/accounts.xml", prefs, 3);
	put_db(c, EL2DB "/rdb/mail_index.db", 128 * KiB);
}

static void
fill_bank(demo_ctx_t *c)
{
	char rel[PATH_MAX];
	put_binary(c, EL2F "/tokens/session.bin", NULL, 0, 256, 0600);
	for (unsigned m = 1; m <= 6; m++) {
		snprintf(rel, sizeof rel, EL2F "/statements/2024-%02u.pdf", m);
		put_binary(c, rel, pdf_magic, sizeof pdf_magic - 1, rng_range(&c->rng, 40 * KiB, 90 * KiB), 0640);
	}
	static const char *const prefs[] = { "biometric_login", "last_login" };
	put_prefs(c, EL2P "/bank_prefs.xml", prefs, 2);
	put_db(c, EL2DB "/rdb/bank.db", 96 * KiB);
}

static void
fill_unicode(demo_ctx_t *c)
{
	static const char *const names[] = {
		EL2F "/café ☕/résumé.txt",
		EL2F "/café ☕/menü du jour.txt",
		EL2F "/文档/笔记 一.txt",
		EL2F "/文档/项目计划/第一季度 报告.md",
		EL2F "/My Documents/Read Me.txt",
		EL2F "/My Documents/notes  with  double  spaces.txt",
		EL2F "/emoji 🎉 party/🎂 cake.txt",
		EL2F "/Ünïcödé Folder/Ñandú.txt",
		EL2F "/semi;colon notes.txt",
		EL2F "/percent%20name.txt",
		EL2F "/it's a \"quoted\" name.txt",
		EL2F "/test../not a parent.txt",
		/* a single name of more than 100 bytes (ustar's name field) */
		EL2F "/a_single_file_name_that_is_longer_than_one_hundred_bytes_so_that_tar_needs_a_gnu_long_name_record.txt",
		/* paths of more than 150 characters */
		EL2F "/a_rather_long_directory_name_used_to_test_long_paths/another_fairly_long_directory_name_for_depth"
		     "/and_a_third_directory_to_pass_the_limit/final_document_with_a_long_descriptive_name.txt",
		EL2F "/长目录名称用于测试路径长度/这是第二层非常长的目录名称/第三层目录/最终的文件名称也相当长.txt",
		EL1F "/启动 配置.json",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		put_text(c, names[i], NULL, rng_range(&c->rng, 100, 4 * KiB), usual_mode(c));
	static const char *const prefs[] = { "langue", "语言" };
	put_prefs(c, EL2P "/réglages.xml", prefs, 2);
}

static void
fill_music(demo_ctx_t *c)
{
	static const char *const tracks[] = {
		"Music/The Demo Band/First Light/01 - Sunrise.flac",
		"Music/The Demo Band/First Light/02 - Morning Walk.flac",
		"Music/Quartet in C/Live at Home/01 - Allegro.flac",
	};
	char rel[PATH_MAX], m3u[1024];
	size_t o = (size_t)snprintf(m3u, sizeof m3u, "#EXTM3U\n");
	for (size_t i = 0; i < sizeof tracks / sizeof tracks[0]; i++) {
		snprintf(rel, sizeof rel, EL2F "/%s", tracks[i]);
		put_binary(c, rel, flac_magic, sizeof flac_magic - 1, rng_range(&c->rng, 5 * MiB / 2, 7 * MiB / 2),
		    0644);
		if (o < sizeof m3u)
			o += (size_t)snprintf(m3u + o, sizeof m3u - o, "#EXTINF:%u,%s\n../%s\n",
			    (unsigned)rng_range(&c->rng, 120, 420), tracks[i], tracks[i] + 6);
	}
	put_text(c, EL2F "/Music/Playlists/Favourites.m3u", m3u, 0, 0644);
	put_text(c, EL2F "/Music/Playlists/Road Trip.m3u", m3u, 0, 0644);
	put_binary(c, EL2F "/Music/The Demo Band/First Light/cover.jpg", jpeg_magic, sizeof jpeg_magic - 1,
	    rng_range(&c->rng, 60 * KiB, 200 * KiB), 0644);
	put_binary(c, EL2F "/Music/Quartet in C/Live at Home/cover.jpg", jpeg_magic, sizeof jpeg_magic - 1,
	    rng_range(&c->rng, 60 * KiB, 200 * KiB), 0644);
	/* Excluded by the glob exclude on *.tmp below files. */
	put_binary(c, EL2F "/Music/download.partial.tmp", NULL, 0, 300 * KiB, 0600);
	static const char *const prefs[] = { "volume", "shuffle", "repeat", "equalizer" };
	put_prefs(c, EL2P "/player.xml", prefs, 4);
	put_db(c, EL2DB "/rdb/library.db", 64 * KiB);
}

static void
fill_contacts(demo_ctx_t *c)
{
	put_db(c, EL1DB "/rdb/contacts.db", 48 * KiB);
	put_db(c, EL1DB "/rdb/contacts.db-journal", 4 * KiB);
	put_text(c, EL2F "/vcards/export-2024.vcf", "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Alice Example\r\n",
	    20 * KiB, 0644);
	static const char *const prefs[] = { "display_order", "default_account" };
	put_prefs(c, EL2P "/contacts_prefs.xml", prefs, 2);
}

static void
fill_ledger(demo_ctx_t *c)
{
	static const char *const accounts[] = { "checking", "savings", "credit-card", "cash" };
	static const char *const memos[] = { "coffee beans", "rent", "groceries", "train ticket", "book",
		"dinner with friends", "electricity bill", "phone plan", "gift", "pharmacy", "bakery", "cinema" };
	size_t rows = rng_range(&c->rng, 300, 420);
	size_t cap = 64 + rows * 96, o = 0;
	char *text = malloc(cap);
	if (!text) {
		if (c->rc == 0)
			c->rc = ohb_fail(c->err, OHB_E_NOMEM, "out of memory");
		return;
	}
	o += (size_t)snprintf(text + o, cap - o, "# ledger v1 (id, date, account, cents, memo)\n");
	time_t day = (time_t)(DEMO_EPOCH - DEMO_SPAN);
	for (size_t id = 1; id <= rows && o < cap; id++) {
		day += (time_t)rng_range(&c->rng, 0, 2) * 86400;
		struct tm tm;
		char date[16];
		gmtime_r(&day, &tm);
		strftime(date, sizeof date, "%Y-%m-%d", &tm);
		bool salary = id % 30 == 0;
		long long cents = salary ? 250000 : -(long long)rng_range(&c->rng, 100, 25000);
		o += (size_t)snprintf(text + o, cap - o, "%zu|%s|%s|%lld|%s\n", id, date,
		    salary ? "checking" : rng_pick(&c->rng, accounts, sizeof accounts / sizeof accounts[0]), cents,
		    salary ? "salary" : rng_pick(&c->rng, memos, sizeof memos / sizeof memos[0]));
	}
	if (o >= cap && c->rc == 0)
		c->rc = ohb_fail(c->err, OHB_E_INVAL, "demo: the ledger does not fit its buffer");
	put_text(c, EL2DB "/ledger.db", text, 0, 0600);
	free(text);
	put_text(c, EL2F "/exports/README.txt", "Monthly exports of the ledger land here.\n", 0, 0644);
	static const char *const prefs[] = { "currency", "default_account", "week_starts_on" };
	put_prefs(c, EL2P "/ledger_prefs.xml", prefs, 3);
}

/* The ledger's BackupExtensionAbility, written to <bundle>/ext/ledger-ext.sh. */
static const char ledger_ext_script[] =
	"#!/bin/sh\n"
	"# ledger-ext.sh - the BackupExtensionAbility of the demo bundle com.example.ledger,\n"
	"# written by `ohbackup demo`. It follows docs/EXTENSIONS.md: ohbackup runs it\n"
	"# with the bundle's sandbox as working directory and reads its stdout.\n"
	"#   backup      dumps the database to base/files/ledger.dump (what gets backed up)\n"
	"#   restore     loads the database back from the dump, then removes the dump\n"
	"#   info        prints {\"ledgerRows\":N}\n"
	"#   compat X    prints \"compatible\" when X starts with \"v\", else nothing\n"
	"# The two folders it writes into get their mtimes back, so a backup leaves the\n"
	"# tree as it found it (but for the dump) and a round trip compares equal.\n"
	"DB=data/storage/el2/database/ledger.db\n"
	"DUMP=data/storage/el2/base/files/ledger.dump\n"
	"NAME=${OHB_BUNDLE:-com.example.ledger}\n"
	"REF=${TMPDIR:-/tmp}/ledger-ext.$$\n"
	"\n"
	"progress() {\n"
	"\tprintf '{\"progressInfo\":[{\"name\":\"%s\",\"processed\":%d,\"total\":%d,\"isPercentage\":fal"
	    "se}]}\\n' \"$NAME\" \"$1\" \"$2\"\n"
	"}\n"
	"\n"
	"result() {\n"
	"\tprintf '{\"resultInfo\":[{\"type\":\"CountInfo\",\"infos\":[{\"backupInfo\":\"%s\",\"successCo"
	    "unt\":%d,' \"$1\" \"$2\"\n"
	"\tprintf '\"duplicateCount\":0,\"failedCount\":0,\"details\":[]}]}]}\\n'\n"
	"}\n"
	"\n"
	"# count PATTERN FILE: lines of FILE matching PATTERN, 0 when FILE is missing.\n"
	"count() {\n"
	"\tif [ -f \"$2\" ]; then grep -c \"$1\" \"$2\"; else echo 0; fi\n"
	"}\n"
	"\n"
	"save_dirs() {\n"
	"\tif [ -d \"${DB%/*}\" ]; then touch -r \"${DB%/*}\" \"$REF.db\"; fi\n"
	"\tif [ -d \"${DUMP%/*}\" ]; then touch -r \"${DUMP%/*}\" \"$REF.files\"; fi\n"
	"}\n"
	"\n"
	"restore_dirs() {\n"
	"\tif [ -f \"$REF.db\" ]; then touch -r \"$REF.db\" \"${DB%/*}\"; fi\n"
	"\tif [ -f \"$REF.files\" ]; then touch -r \"$REF.files\" \"${DUMP%/*}\"; fi\n"
	"\trm -f \"$REF.db\" \"$REF.files\"\n"
	"}\n"
	"\n"
	"# \"id|date|account|cents|memo\" rows <-> SQL text; the header line rides along as a comment.\n"
	"to_sql() {\n"
	"\tsed -e 's/^#/-- #/' \\\n"
	"\t    -e \"s/^\\([0-9][0-9]*\\)|\\([^|]*\\)|\\([^|]*\\)|\\(-\\{0,1\\}[0-9][0-9]*\\)|\\(.*\\)\\$/"
	    "INSERT INTO entries VALUES(\\1,'\\2','\\3',\\4,'\\5');/\"\n"
	"}\n"
	"\n"
	"from_sql() {\n"
	"\tsed -n -e 's/^-- \\(#.*\\)$/\\1/p' \\\n"
	"\t    -e \"s/^INSERT INTO entries VALUES(\\([0-9]*\\),'\\([^']*\\)','\\([^']*\\)',\\([-0-9]*\\),"
	    "'\\(.*\\)');\\$/\\1|\\2|\\3|\\4|\\5/p\"\n"
	"}\n"
	"\n"
	"fail() {\n"
	"\techo \"ledger: $*\" >&2\n"
	"\trm -f \"$DUMP.tmp\" \"$DB.tmp\" \"$REF.db\" \"$REF.files\"\n"
	"\texit 4\n"
	"}\n"
	"\n"
	"case \"${1:-}\" in\n"
	"backup)\n"
	"\t[ -f \"$DB\" ] || { echo \"ledger: no database at $DB\" >&2; exit 3; }\n"
	"\tn=$(count '^[0-9]' \"$DB\")\n"
	"\thalf=$((n / 2))\n"
	"\tprogress 0 \"$n\"\n"
	"\tsave_dirs\n"
	"\tmkdir -p \"${DUMP%/*}\" || fail \"cannot create ${DUMP%/*}\"\n"
	"\t{ echo '-- ledger dump v1'; head -n $((half + 1)) \"$DB\" | to_sql; } >\"$DUMP.tmp\" || fail "
	    "\"cannot write $DUMP.tmp\"\n"
	"\tprogress \"$half\" \"$n\"\n"
	"\ttail -n +$((half + 2)) \"$DB\" | to_sql >>\"$DUMP.tmp\" || fail \"cannot write $DUMP.tmp\"\n"
	"\tchmod 600 \"$DUMP.tmp\" && touch -r \"$DB\" \"$DUMP.tmp\" && mv -f \"$DUMP.tmp\" \"$DUMP\" || "
	    "fail \"cannot move $DUMP into place\"\n"
	"\trestore_dirs\n"
	"\tprogress \"$n\" \"$n\"\n"
	"\tresult backup \"$n\"\n"
	"\t;;\n"
	"restore)\n"
	"\tif [ ! -f \"$DUMP\" ]; then\n"
	"\t\techo \"ledger: no dump to load; the database stays as restored\" >&2\n"
	"\t\tresult restore 0\n"
	"\t\texit 0\n"
	"\tfi\n"
	"\tn=$(count '^INSERT' \"$DUMP\")\n"
	"\tprogress 0 \"$n\"\n"
	"\tsave_dirs\n"
	"\tmkdir -p \"${DB%/*}\" || fail \"cannot create ${DB%/*}\"\n"
	"\tfrom_sql <\"$DUMP\" >\"$DB.tmp\" || fail \"cannot read $DUMP\"\n"
	"\tchmod 600 \"$DB.tmp\" && touch -r \"$DUMP\" \"$DB.tmp\" && mv -f \"$DB.tmp\" \"$DB\" || fail "
	    "\"cannot move $DB into place\"\n"
	"\trm -f \"$DUMP\"\n"
	"\trestore_dirs\n"
	"\tprogress \"$n\" \"$n\"\n"
	"\tresult restore \"$n\"\n"
	"\t;;\n"
	"info)\n"
	"\tprintf '{\"ledgerRows\":%d}\\n' \"$(count '^[0-9]' \"$DB\")\"\n"
	"\t;;\n"
	"compat)\n"
	"\tcase \"${2:-}\" in\n"
	"\tv*) echo compatible ;;\n"
	"\t*) echo ;;\n"
	"\tesac\n"
	"\t;;\n"
	"*)\n"
	"\techo \"usage: $0 backup|restore|info|compat EXTINFO\" >&2\n"
	"\texit 2\n"
	"\t;;\n"
	"esac\n";

typedef struct demo_ext {
	const char *dir;        /* relative to the bundle folder */
	const char *file;
	const char *script;
} demo_ext_t;

static const demo_ext_t ledger_ext = { "ext", "ledger-ext.sh", ledger_ext_script };

typedef struct demo_bundle {
	const char *name;
	int64_t version_code;
	const char *version_name;
	bool allow;
	const char *const *includes;      /* NULL-terminated; NULL: the 13 defaults */
	const char *const *excludes;      /* NULL-terminated; NULL: none */
	const char *restore_deps;
	const char *extra_info;
	const char *const *private_dirs;  /* NULL-terminated */
	void (*fill)(demo_ctx_t *c);
	const demo_ext_t *ext;            /* NULL: no extension */
} demo_bundle_t;

static const char *const db_private[] = { EL2DB, EL2DB "/rdb", NULL };
static const char *const bank_private[] = { EL2DB, EL2DB "/rdb", EL2F "/tokens", NULL };
static const char *const contacts_private[] = { EL1DB, EL1DB "/rdb", NULL };
static const char *const mail_excludes[] = { EL2F "/cache/", NULL };
static const char *const music_includes[] = { EL2F "/", EL2P "/", EL2DB "/", NULL };
static const char *const music_excludes[] = { EL2F "/*.tmp", NULL };
static const char *const ledger_private[] = { EL2DB, NULL };

static const demo_bundle_t demo_bundles[] = {
	{ "com.example.notes", 1002003, "1.2.3", true, NULL, NULL, "", "{}", db_private, fill_notes, NULL },
	{ "com.example.gallery", 2000000, "2.0.0", true, NULL, NULL, "", "{}", db_private, fill_gallery, NULL },
	{ "com.example.mail", 3010000, "3.1.0", true, NULL, mail_excludes, "com.example.contacts", "{}",
	    db_private, fill_mail, NULL },
	{ "com.example.bank", 1000000, "1.0.0", false, NULL, NULL, "", "{}", bank_private, fill_bank, NULL },
	{ "com.example.unicode", 1000001, "1.0.1", true, NULL, NULL, "", "{\"note\":\"UTF-8 ✓\"}", NULL,
	    fill_unicode, NULL },
	{ "com.example.music", 4020000, "4.2.0", true, music_includes, music_excludes, "", "{}", db_private,
	    fill_music, NULL },
	{ "com.example.contacts", 5000000, "5.0.0", true, NULL, NULL, "", "{}", contacts_private, fill_contacts,
	    NULL },
	{ "com.example.ledger", 1100000, "1.1.0", true, NULL, NULL, "", "{}", ledger_private, fill_ledger,
	    &ledger_ext },
};

static size_t
count_strings(const char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

/* <root>/bundles/<name>/<dir>/<file>, mode 0755 whatever the umask. */
static int
write_extension(const char *root, const demo_bundle_t *spec, ohb_error_t *err)
{
	char *dir = fsu_printf("%s/bundles/%s/%s", root, spec->name, spec->ext->dir);
	char *path = dir ? fsu_join(dir, spec->ext->file) : NULL;
	int rc = path ? 0 : ohb_fail(err, OHB_E_NOMEM, "out of memory");
	if (rc == 0)
		rc = fsu_mkdir_p(dir, 0755, err);
	if (rc == 0)
		rc = fsu_write_atomic(dir, spec->ext->file, spec->ext->script, strlen(spec->ext->script), 0755, err);
	if (rc == 0 && chmod(path, 0755) != 0)
		rc = ohb_fail_errno(err, errno, "demo: cannot make %s executable", path);
	free(path);
	free(dir);
	return rc;
}

static int
build_bundle(const char *root, const demo_bundle_t *spec, uint64_t seed, size_t index, ohb_error_t *err)
{
	reg_mount_t mount = { "/", "sandbox" };
	reg_bundle_t b = {
		.name = (char *)spec->name,
		.version_code = spec->version_code,
		.version_name = (char *)spec->version_name,
		.allow_backup_restore = spec->allow,
		.includes = (char **)spec->includes,
		.n_includes = count_strings(spec->includes),
		.excludes = (char **)spec->excludes,
		.n_excludes = count_strings(spec->excludes),
		.restore_deps = (char *)spec->restore_deps,
		.support_scene = "",
		.extra_info_json = (char *)spec->extra_info,
		.mounts = &mount,
		.n_mounts = 1,
	};
	char *ext_rel = spec->ext ? fsu_printf("%s/%s", spec->ext->dir, spec->ext->file) : NULL;
	if (spec->ext && !ext_rel)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	b.extension = ext_rel;   /* relative: resolved against the bundle folder, so the root can move */
	int rc = reg_bundle_write(root, &b, err);
	free(ext_rel);
	if (rc == 0 && spec->ext)
		rc = write_extension(root, spec, err);
	if (rc != 0)
		return rc;
	char *sandbox = fsu_printf("%s/bundles/%s/sandbox", root, spec->name);
	demo_ctx_t *c = calloc(1, sizeof *c);
	if (!sandbox || !c) {
		free(sandbox);
		free(c);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	c->sandbox = sandbox;
	/* One stream per bundle, so bundles do not shift each other's data. */
	c->rng.state = seed ^ ((uint64_t)(index + 1) * 0xD1B54A32D192ED03ULL);
	c->private_dirs = spec->private_dirs;
	c->err = err;
	spec->fill(c);
	finish_dirs(c);
	rc = c->rc;
	for (size_t i = 0; i < c->n_dirs; i++)
		free(c->dirs[i]);
	free(c->dirs);
	free(c);
	free(sandbox);
	return rc;
}

static int
write_device_json(const char *root, ohb_error_t *err)
{
	char *path = fsu_join(root, "device.json");
	if (!path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	struct stat st;
	bool exists = lstat(path, &st) == 0;
	free(path);
	if (exists)
		return 0;   /* the device's identity is the operator's, not the demo's */
	static const char json[] = "{\n\t\"deviceType\": \"default\",\n\t\"systemFullName\": \"OpenHarmony-5.0.0\",\n"
	                           "\t\"backupVersion\": \"16.0\"\n}\n";
	return fsu_write_atomic(root, "device.json", json, sizeof json - 1, 0644, err);
}

int
demo_build(const char *root, uint64_t seed, ohb_error_t *err)
{
	ohb_error_clear(err);
	reg_device_t *dev = NULL;
	int rc = reg_device_open(root, &dev, err);
	if (rc != 0)
		return rc;
	if (dev->n_bundles || dev->n_broken) {
		rc = ohb_fail(err, OHB_E_INVAL, "device root %s already holds bundles; the demo never overwrites them",
		    dev->root);
		reg_device_free(dev);
		return rc;
	}
	char *real_root = strdup(dev->root);
	reg_device_free(dev);
	if (!real_root)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	rc = write_device_json(real_root, err);
	size_t built = 0;
	for (; rc == 0 && built < sizeof demo_bundles / sizeof demo_bundles[0]; built++)
		rc = build_bundle(real_root, &demo_bundles[built], seed, built, err);
	if (rc != 0) {
		/* No half-built demo: remove the bundles this call made, the failed
		 * one included (the root held none before), so the next attempt
		 * starts clean. */
		for (size_t i = 0; i < built; i++) {
			char *dir = fsu_printf("%s/bundles/%s", real_root, demo_bundles[i].name);
			if (dir)
				fsu_rm_rf(dir, NULL);
			free(dir);
		}
	}
	free(real_root);
	return rc;
}

/* ---- a demo cloud ------------------------------------------------------------- */

#define DEMO_CLOUD_PHOTOS 3

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
demo_build_cloud(const char *root, const char *cloud_dir, ohb_error_t *err)
{
	if (!root || !cloud_dir || cloud_dir[0] != '/')
		return ohb_fail(err, OHB_E_PARAM, "the demo cloud needs an absolute folder");
	char *camera = fsu_printf("%s/bundles/com.example.gallery/sandbox/" EL2F "/Pictures/Camera", root);
	char *media = fsu_join(cloud_dir, "media/Camera");
	char *notes = fsu_join(cloud_dir, "apps/com.example.notes");
	char *conf_dir = fsu_join(root, "cloud");
	char *names[DEMO_CLOUD_PHOTOS + 8] = { 0 };
	size_t n = 0;
	int rc = camera && media && notes && conf_dir ? 0 : ohb_fail(err, OHB_E_NOMEM, "out of memory");
	DIR *d = rc == 0 ? opendir(camera) : NULL;
	if (rc == 0 && !d)
		rc = ohb_fail_errno(err, errno, "cannot read the demo gallery's photos in %s (build the demo first)", camera);
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL && n < sizeof names / sizeof names[0]) {
		size_t len = strlen(de->d_name);
		if (len > 4 && strcmp(de->d_name + len - 4, ".jpg") == 0 && !(names[n++] = strdup(de->d_name)))
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	if (d)
		closedir(d);
	if (n > 1)
		qsort(names, n, sizeof names[0], cmp_names);
	if (rc == 0)
		rc = fsu_mkdir_p(media, 0755, err);
	for (size_t i = 0; rc == 0 && i < n && i < DEMO_CLOUD_PHOTOS; i++) {
		char *src = fsu_join(camera, names[i]);
		int fd = src ? open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
		if (fd < 0)
			rc = ohb_fail_errno(err, src ? errno : ENOMEM, "cannot open the demo photo %s", names[i]);
		else
			rc = fsu_copy_fd_atomic(fd, media, names[i], 0644, NULL, err);
		if (fd >= 0)
			close(fd);
		free(src);
	}
	static const char note[] = "a note that lives in the cloud\n";
	if (rc == 0 && (rc = fsu_mkdir_p(notes, 0755, err)) == 0)
		rc = fsu_write_atomic(notes, "welcome.txt", note, sizeof note - 1, 0644, err);
	cJSON *o = rc == 0 ? cJSON_CreateObject() : NULL;
	char *conf = o && cJSON_AddStringToObject(o, "url", cloud_dir) ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	if (rc == 0 && !conf)
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	if (rc == 0 && (rc = fsu_mkdir_p(conf_dir, 0700, err)) == 0)
		rc = fsu_write_atomic(conf_dir, "config.json", conf, strlen(conf), 0600, err);
	free(conf);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(camera);
	free(media);
	free(notes);
	free(conf_dir);
	return rc;
}
