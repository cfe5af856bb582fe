/*
 * rp — OpenHarmony's ".rp" report (manifest) files of incremental backup
 * (REFERENCE.md "Incremental backup"):
 *
 *   version=1.0&attrNum=8
 *   path;mode;dir;size;mtime;hash;isIncremental;encodeFlag
 *   /data/storage/el2/base/files/a.txt;33188;0;5;1763990000;9F86…08;1;0
 *
 * mode is decimal st_mode, dir 0/1, size bytes, mtime seconds, hash upper-case
 * hex SHA-256 ("" when not computed), isIncremental 0/1, encodeFlag 1 when the
 * path is percent-encoded (it holds ';', '%', '\r' or '\n').
 *
 * The reader is tolerant as OpenHarmony's is: a trailing '\r' is stripped,
 * blank lines are skipped, the 7-field form (no encodeFlag) is accepted, a
 * leading '/' is optional (paths are stored here always with one), and the
 * header line is taken by position, so a typo in it does not matter.
 * Malformed rows are skipped and described in *warnings, never crashed on.
 *
 * Thread-safe (no shared state).
 */
#ifndef OHB_RP_H
#define OHB_RP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ohbackup.h"

/* One row. 40 bytes: a report of 50 000 rows (a bundle of 50 000 files) is
 * held by an incremental backup twice (the base and the new all.rp), so the
 * strings live in the list's blocks (below), not in a malloc each, and a hash
 * takes room only when the row has one. */
typedef struct rp_entry {
	const char *path;       /* absolute sandbox path, no trailing '/' (is_dir says) */
	const char *hash;       /* upper-case hex SHA-256, or "" (NULL reads as "" in rp_add) */
	uint64_t size;
	int64_t mtime;          /* seconds */
	uint32_t mode;
	bool is_dir;
	bool is_incremental;
} rp_entry_t;

/* Blocks holding a list's strings; they never move, so rows point into them. */
typedef struct rp_strings rp_strings_t;

/* The rows own nothing: every path and hash of v[] is in `strings`, which
 * rp_list_free frees with v. A zeroed list is empty and valid. */
typedef struct rp_list {
	rp_entry_t *v;
	size_t n, cap;
	rp_strings_t *strings;
} rp_list_t;

/* Parses a .rp document. 13900020 only when the text is not a report at all
 * (e.g. empty, or binary garbage with no parsable row and no header). Each
 * malformed row is skipped and described (one line each, "line N: reason")
 * in *warnings (malloc'd, NULL when none; warnings may be NULL). The result is
 * sorted by path (rp_find works on it). */
int rp_parse(const char *text, size_t len, rp_list_t *out, char **warnings, ohb_error_t *err);

/* Serializes (header lines included), encoding paths that need it. */
int rp_write(const rp_list_t *list, char **text_out, size_t *len_out, ohb_error_t *err);
/* The same text written to fd from its current offset, 64 KiB at a time (a
 * report of 50 000 rows is 4 MB: it is never whole in memory). The caller
 * owns fd and rewinds it. */
int rp_write_fd(const rp_list_t *list, int fd, ohb_error_t *err);

/* Appends a copy of e (its path and hash copied into the list's strings). */
int rp_add(rp_list_t *list, const rp_entry_t *e, ohb_error_t *err);
/* Makes room for n rows in all, so that a list whose size is known is not
 * doubled past it. */
int rp_reserve(rp_list_t *list, size_t n, ohb_error_t *err);
/* Sorts by path (byte order); the last of equal paths wins and duplicates are dropped. */
void rp_sort(rp_list_t *list);
/* Binary search in a sorted list; NULL when absent. */
const rp_entry_t *rp_find(const rp_list_t *list, const char *path);
void rp_list_free(rp_list_t *list);

/* SHA-256 of everything readable from fd (from its current offset), upper-case hex. */
int rp_sha256_fd(int fd, char out[65], ohb_error_t *err);
/* SHA-256 of a buffer, upper-case hex (for tests and small data). */
void rp_sha256_hex(const void *data, size_t len, char out[65]);

#endif
