/*
 * console_cloud — the console's side of the cloudSync engine
 * (ohbackup_cloud.h; docs/CLOUD.md): what the Cloud screen (screen_cloud.c)
 * shows and the actions its keys run.
 *
 * The engine is opened with cli_cloud_open (the same settings as `ohbackup
 * cloud`) the first time the Cloud screen is entered, and closed when the
 * console exits (cloud_close; ohb_cloud_close stops what still runs: a sync
 * ends STOPPED and resumes at the next start, a download's partial file is
 * removed). Sync scopes: the gallery, then one FileSync per installed bundle
 * (the capability file's bundles), each opened on first use.
 *
 * Threads: the engine's callbacks run on its dispatcher thread and only push
 * CEV_CLOUD_* events onto the console's queue (console_evq.h); they never
 * touch curses or the console_t. Everything else here runs on the main
 * thread. The running stage's counters (ohb_cloud_sync_get_status) and the
 * sync states of the file rows on screen are polled from the main loop's
 * once-a-second tick, and only while a run goes, so an idle console still
 * sleeps in poll(-1). The whole listing is read again when a run ends.
 */
#ifndef OHB_CONSOLE_CLOUD_H
#define OHB_CONSOLE_CLOUD_H

#include <stdbool.h>
#include <stdint.h>

#include "console_evq.h"
#include "ohbackup_cloud.h"
#include "widget_fmt.h"

typedef struct console console_t;

/* What a sync callback needs: where to post, and which scope it is. */
typedef struct cloud_listener {
	cev_queue_t *q;
	int scope;
} cloud_listener_t;

typedef struct cloud_scope {
	char name[160];                  /* "gallery" or the bundle name */
	ohb_cloud_sync_t *s;             /* NULL until opened (or when opening failed) */
	bool tried;
	int open_code;                   /* ohb_cloud_file_sync's code when it failed */
	char open_message[300];
	cloud_listener_t *listener;      /* malloc'd, freed after ohb_cloud_close */
	bool running;                    /* from start until a final SyncProgress (the engine queues it
	                                    under the lock that ends its run: it always comes) */
	bool have_progress;
	ohb_cloud_sync_state_t state;    /* the last SyncProgress */
	ohb_cloud_error_type_t error;
	int code;                        /* its code (0 none) and sentence */
	char message[400];
	int start_code;                  /* start refused: the spec code and sentence */
	char start_message[400];
	ohb_cloud_sync_status_t st;      /* the last poll (while running) */
	bool have_status;
	int64_t last_sync_ms;            /* getLastSyncTime */
	bool listing;                    /* ohb_cloud_sync_list_remote asked, not yet ended */
} cloud_scope_t;

typedef struct cloud_ui {
	ohb_cloud_t *eng;
	bool tried;
	int open_code;
	char open_message[512];
	cloud_scope_t *scopes;
	size_t n_scopes, cur;
	/* battery as start() sees it */
	int battery;                     /* percent, -1 no battery */
	bool charging;
	int battery_code;
	/* the file browser of the current scope */
	ohb_cloud_file_info_t *files;
	size_t n_files, n_evicted, n_remote;
	int files_code;
	char files_message[300];
	size_t *view;
	size_t n_view, cursor, top;
	size_t rows_shown;               /* file rows the last draw had room for: the tick's live states */
	char filter[64];
	bool filtering;
	/* the download shown (the last one started) */
	bool dl_have, dl_active, dl_cache;   /* dl_cache: CloudFileCache (a bundle's file) */
	char dl_uri[1024];
	ohb_cloud_download_state_t dl_state;
	ohb_cloud_download_error_t dl_error;
	uint64_t dl_processed, dl_size;
	int dl_code;                     /* start/stop refused: code and sentence */
	char dl_message[400];
	wf_rate_t dl_rate;
	/* optimize space (the gallery) */
	bool opt_have, opt_active;
	ohb_cloud_optimize_state_t opt_state;
	int opt_progress, opt_code;
	uint64_t opt_freed, opt_total, opt_files;
	char opt_message[400];
	/* the optimize form: 0 closed, 1 totalSize, 2 agingDays */
	int editing;
	char edit[32];
	uint64_t opt_param_total;
	uint32_t opt_param_days;
	int64_t last_poll_ms;
} cloud_ui_t;

/* Entering the Cloud screen: opens the engine on first use, adds scopes for
 * bundles not seen yet, reads the battery, last sync time and files. */
void cloud_enter(console_t *c);
/* Exit: ohb_cloud_close, then frees everything (main thread, not a callback). */
void cloud_close(console_t *c);
/* A sync, download or optimize run is going (the main loop ticks while so). */
bool cloud_busy(const console_t *c);
/* The once-a-second tick while busy: the running scope's counters and the
 * states of the file rows on screen. */
void cloud_tick(console_t *c);
void cloud_apply_event(console_t *c, cev_t *ev);
/* True while the operator types (filter, optimize form): keys are text. */
bool cloud_text_entry(const console_t *c);

/* Actions of the Cloud screen's keys; each reports refusals as the spec's code
 * and sentence on the screen. */
void cloud_scope_step(console_t *c, int dir);
void cloud_sync_start(console_t *c, bool forced);
/* Asks the cloud which files the scope holds (in the background; the list
 * then shows the files the device never had, as "cloud"). */
void cloud_list_remote(console_t *c);
void cloud_sync_stop(console_t *c);
void cloud_download_start(console_t *c);
void cloud_download_stop(console_t *c);
/* CloudFileCache.cleanCache of the highlighted file: drop the local copy. */
void cloud_clean_cache(console_t *c);
/* Opens the optimize form (totalSize, then agingDays; the last ones typed
 * are offered), or says why not when the engine is not open. */
void cloud_optimize_form(console_t *c);
void cloud_optimize_start(console_t *c, uint64_t total, uint32_t days);
void cloud_optimize_stop(console_t *c);
void cloud_refresh(console_t *c);
/* Rebuilds the filtered view of the file list, keeping the highlighted file. */
void cloud_view(console_t *c);


#endif
