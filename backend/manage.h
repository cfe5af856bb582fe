/*
 * manage — manage.json, the index a bundle's backup ends with (REFERENCE.md):
 * a JSON array with one object per file sent,
 *   {"fileName":"part.0.tar","information":{"path":"","stat":{"st_size":N,"st_mode":M,
 *     "st_mtim":{"tv_sec":S,"tv_nsec":NS}}},"isUserTar":false,"isBigFile":false}
 * For a tar, path is "" and stat describes the tar itself; for a big file,
 * path is the absolute sandbox path and stat the original file's. ohbackup's
 * own tars also carry "tarEntries":N, the number of entries written into
 * them, so that a restore can tell a tar that ends early (a zeroed block
 * reads as its end) from a whole one. OpenHarmony's own manage.json has no
 * such key; a reader that looks keys up by name passes over it.
 * Thread-safe (no shared state).
 */
#ifndef OHB_MANAGE_H
#define OHB_MANAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ohbackup.h"

typedef struct manage_entry {
	char *file_name;     /* uri in the set: part.N.tar or <16 hex>[.ext] */
	char *path;          /* sandbox path of a big file; "" for tars */
	uint64_t size;
	uint32_t mode;
	int64_t mtime_sec;
	int64_t mtime_nsec;
	bool is_user_tar;
	bool is_big_file;
	bool has_tar_entries;  /* tar_entries was recorded (sets written before it was, and user tars, have none) */
	uint64_t tar_entries;
} manage_entry_t;

typedef struct manage_list {
	manage_entry_t *v;
	size_t n, cap;
} manage_list_t;

/* Appends a copy of e (strings are duplicated). */
int manage_add(manage_list_t *list, const manage_entry_t *e, ohb_error_t *err);
void manage_list_free(manage_list_t *list);

/* Serializes to JSON text (malloc'd). */
int manage_to_json(const manage_list_t *list, char **json_out, ohb_error_t *err);

/* Parses manage.json. Every entry must have a valid fileName (fsu_uri_is_valid)
 * and, for big files, a path; a tarEntries present must be an integer >= 0;
 * else 13500008 naming the entry. */
int manage_parse(const char *json, size_t len, manage_list_t *out, ohb_error_t *err);

/* Reads manage.json from fd's offset (at most MANAGE_JSON_MAX bytes) and
 * parses it; a file that cannot be read is 13500008 as well. */
#define MANAGE_JSON_MAX (256u << 20)
int manage_read_fd(int fd, manage_list_t *out, ohb_error_t *err);

#endif
