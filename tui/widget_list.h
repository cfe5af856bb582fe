/*
 * widget_list — the bundle picker's model and its pure logic: parsing the
 * capability file into rows, the type-ahead filter, the sort orders, and the
 * cursor/scroll arithmetic every list screen shares. No curses here (unit
 * tested in tests/unit/test_widgets.c).
 *
 * Thread: any; the console uses it from its main thread only.
 */
#ifndef OHB_WIDGET_LIST_H
#define OHB_WIDGET_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bundle_row {
	char name[160];
	char version[64];
	int64_t size;            /* spaceOccupied, replaced by scan results */
	int64_t inc_size;        /* from a scan; -1 unknown */
	bool scanned;            /* size comes from a scan */
	bool allow;              /* allToBackup */
	bool full_only;          /* fullBackupOnly */
	int64_t last_backup_ms;  /* newest good set holding it; 0 never */
	bool selected;
	char reason[80];         /* why it cannot be selected ("" when it can) */
} bundle_row_t;

typedef enum { LIST_SORT_NAME, LIST_SORT_SIZE, LIST_SORT_LAST, LIST_SORT_COUNT } list_sort_t;

/* "name", "size", "last backup". */
const char *list_sort_label(list_sort_t key);

/* Parses a capability file (JSON text) into a malloc'd array of rows;
 * returns 0, or -1 when the text is not a capability file. Also copies the
 * device fields when the buffers are given. */
int list_parse_caps(const char *json, bundle_row_t **rows, size_t *n, char *system_full_name, size_t sfn_size,
    char *device_type, size_t dt_size, char *backup_version, size_t bv_size);

/* Case-insensitive substring match; an empty filter matches everything. */
bool list_match(const char *name, const char *filter);

/* Fills idx with the indices of rows matching filter, in sort order;
 * returns how many. idx holds room for n entries. */
size_t list_view(const bundle_row_t *rows, size_t n, const char *filter, list_sort_t key, size_t *idx);

/* Keeps cursor inside [0, count) and top such that the cursor is visible in
 * a window of height rows. */
void list_scroll(size_t count, int height, size_t *cursor, size_t *top);

/* Moves the cursor by delta (negative: up), clamped. */
size_t list_move(size_t count, size_t cursor, long delta);

#endif
