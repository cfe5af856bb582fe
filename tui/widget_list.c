/*
 * widget_list — the bundle picker's rows, filter, sort and scrolling (see
 * widget_list.h). The capability file's format is REFERENCE.md "Capability
 * file"; a bundle with allToBackup false is listed but cannot be selected,
 * with the reason shown (issue 4, item 2).
 */
#include "widget_list.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

const char *
list_sort_label(list_sort_t key)
{
	switch (key) {
	case LIST_SORT_SIZE:
		return "size";
	case LIST_SORT_LAST:
		return "last backup";
	default:
		return "name";
	}
}

static void
copy_str(cJSON *o, const char *key, char *buf, size_t size)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (buf && size)
		snprintf(buf, size, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

int
list_parse_caps(const char *json, bundle_row_t **rows, size_t *n, char *system_full_name, size_t sfn_size,
    char *device_type, size_t dt_size, char *backup_version, size_t bv_size)
{
	*rows = NULL;
	*n = 0;
	cJSON *root = cJSON_Parse(json);
	cJSON *infos = cJSON_GetObjectItemCaseSensitive(root, "bundleInfos");
	if (!cJSON_IsArray(infos)) {
		cJSON_Delete(root);
		return -1;
	}
	copy_str(root, "systemFullName", system_full_name, sfn_size);
	copy_str(root, "deviceType", device_type, dt_size);
	copy_str(root, "backupVersion", backup_version, bv_size);
	size_t cap = (size_t)cJSON_GetArraySize(infos);
	bundle_row_t *v = calloc(cap ? cap : 1, sizeof *v);
	if (!v) {
		cJSON_Delete(root);
		return -1;
	}
	size_t k = 0;
	cJSON *e;
	cJSON_ArrayForEach(e, infos) {
		cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
		if (!cJSON_IsString(name) || k >= cap)
			continue;
		bundle_row_t *r = &v[k++];
		snprintf(r->name, sizeof r->name, "%s", name->valuestring);
		copy_str(e, "versionName", r->version, sizeof r->version);
		cJSON *sz = cJSON_GetObjectItemCaseSensitive(e, "spaceOccupied");
		r->size = cJSON_IsNumber(sz) ? (int64_t)sz->valuedouble : -1;
		r->inc_size = -1;
		r->allow = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "allToBackup"));
		r->full_only = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "fullBackupOnly"));
		if (!r->allow)
			snprintf(r->reason, sizeof r->reason, "backup not allowed (13500001)");
	}
	cJSON_Delete(root);
	*rows = v;
	*n = k;
	return 0;
}

bool
list_match(const char *name, const char *filter)
{
	if (!filter || !*filter)
		return true;
	size_t fl = strlen(filter);
	for (const char *p = name; *p; p++) {
		size_t i = 0;
		while (i < fl && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)filter[i]))
			i++;
		if (i == fl)
			return true;
	}
	return false;
}

/* qsort has no context argument in C11: the rows and key travel in a small
 * struct whose address is the first field of every element sorted. */
typedef struct sort_item {
	const bundle_row_t *row;
	size_t index;
	list_sort_t key;
} sort_item_t;

static int
cmp_items(const void *a, const void *b)
{
	const sort_item_t *x = a, *y = b;
	int c = 0;
	if (x->key == LIST_SORT_SIZE)
		c = x->row->size < y->row->size ? 1 : x->row->size > y->row->size ? -1 : 0;   /* biggest first */
	else if (x->key == LIST_SORT_LAST)
		c = x->row->last_backup_ms < y->row->last_backup_ms ? -1 : x->row->last_backup_ms > y->row->last_backup_ms;   /* oldest (never) first */
	if (c == 0)
		c = strcmp(x->row->name, y->row->name);
	if (c == 0)
		c = x->index < y->index ? -1 : x->index > y->index;
	return c;
}

size_t
list_view(const bundle_row_t *rows, size_t n, const char *filter, list_sort_t key, size_t *idx)
{
	sort_item_t *items = calloc(n ? n : 1, sizeof *items);
	size_t k = 0;
	if (!items)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (list_match(rows[i].name, filter))
			items[k++] = (sort_item_t){ &rows[i], i, key };
	qsort(items, k, sizeof *items, cmp_items);
	for (size_t i = 0; i < k; i++)
		idx[i] = items[i].index;
	free(items);
	return k;
}

void
list_scroll(size_t count, int height, size_t *cursor, size_t *top)
{
	if (count == 0) {
		*cursor = 0;
		*top = 0;
		return;
	}
	if (*cursor >= count)
		*cursor = count - 1;
	size_t h = height > 0 ? (size_t)height : 1;
	if (*cursor < *top)
		*top = *cursor;
	if (*cursor >= *top + h)
		*top = *cursor - h + 1;
	if (*top + h > count)
		*top = count > h ? count - h : 0;
}

size_t
list_move(size_t count, size_t cursor, long delta)
{
	if (count == 0)
		return 0;
	if (delta < 0) {
		size_t d = (size_t)(-delta);
		return d > cursor ? 0 : cursor - d;
	}
	size_t c = cursor + (size_t)delta;
	return c >= count ? count - 1 : c;
}
