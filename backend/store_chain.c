/*
 * store_chain — which sets restore a bundle to its state in a given set.
 *
 * A full set stands alone. An incremental set holds only what changed since
 * the bundle's newest good set before it (that is how `incremental` picks its
 * base), so the chain walks back through those sets until a full one, or
 * until the bundle has no older good set (its first incremental was sent
 * whole). The CLI and the console both restore a chain oldest first.
 */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "ohbackup_store.h"

int
store_chain(store_t *st, const char *set_id, const char *bundle, char ***ids_out, size_t *n_out, ohb_error_t *err)
{
	*ids_out = NULL;
	*n_out = 0;
	store_set_info_t cur;
	memset(&cur, 0, sizeof cur);
	int rc = store_set_info(st, set_id, &cur, err);
	if (rc != 0)
		return rc;
	char **ids = NULL;
	size_t n = 0;
	for (;;) {
		char **nv = realloc(ids, (n + 1) * sizeof *nv);
		char *copy = strdup(cur.id);
		if (!nv || !copy) {
			free(copy);
			if (nv)
				ids = nv;
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
			break;
		}
		ids = nv;
		ids[n++] = copy;
		if (!cur.kind || strcmp(cur.kind, "incremental") != 0)
			break;
		store_set_info_t prev;
		memset(&prev, 0, sizeof prev);
		if (store_find_good_set(st, bundle, cur.id, &prev, NULL) != 0)
			break;
		store_set_info_clear(&cur);
		cur = prev;
	}
	store_set_info_clear(&cur);
	if (rc != 0) {
		store_strings_free(ids, n);
		return rc;
	}
	for (size_t i = 0; i < n / 2; i++) {
		char *tmp = ids[i];
		ids[i] = ids[n - 1 - i];
		ids[n - 1 - i] = tmp;
	}
	*ids_out = ids;
	*n_out = n;
	return 0;
}
