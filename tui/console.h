/*
 * console — the interactive operator console (`ohbackup` on a terminal).
 *
 * Shape (STYLE.md, after ncdu): one main loop (console.c) poll()s the
 * terminal, a self-pipe fed by the event queue (console_evq.c) and a signalfd;
 * it dispatches keys to the current screen's key handler and, when something
 * changed, redraws through the screen's draw handler at most ~10 times a
 * second (widget_fmt.c's coalescer). Screens live in screen_*.c; sessions are
 * driven by console_job.c, whose callbacks run on the backend's dispatcher
 * thread and only push events. Curses is touched on the main thread only.
 *
 * Global state: none but the few variables console.c's fatal-signal handler
 * needs to restore the terminal (documented there). Everything else hangs off
 * the one console_t created in console_main.
 */
#ifndef OHB_CONSOLE_H
#define OHB_CONSOLE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "console_cloud.h"
#include "console_evq.h"
#include "theme.h"
#include "widget_fmt.h"
#include "widget_list.h"

#define CONSOLE_MIN_COLS 50
#define CONSOLE_MIN_ROWS 15
#define CONSOLE_LOG_MAX 4000

typedef enum {
	SCR_HOME,
	SCR_PICKER,
	SCR_SCAN,
	SCR_RUN,
	SCR_RESULTS,
	SCR_LOG,
	SCR_SETS,
	SCR_SET_BUNDLES,
	SCR_SETTINGS,
	SCR_CLOUD,
	SCR_HELP,
	SCR_COUNT
} screen_id_t;

typedef struct console console_t;

typedef struct screen {
	const char *title;
	const char *keys;        /* key bar text, "Key Label" pairs separated by two spaces */
	const char *help;        /* the screen's key list for `?`, lines separated by \n */
	void (*draw)(console_t *c);
	void (*key)(console_t *c, int ch);
	void (*click)(console_t *c, int y, int x);   /* NULL: clicks ignored */
} screen_t;

extern const screen_t screen_home, screen_picker, screen_scan, screen_run, screen_results, screen_log,
    screen_sets, screen_set_bundles, screen_settings, screen_cloud, screen_help;

typedef enum { RS_WAITING, RS_RUNNING, RS_DONE, RS_FAILED, RS_CANCELLED } run_state_t;
typedef enum { JOB_NONE, JOB_BACKUP, JOB_INCREMENTAL, JOB_RESTORE, JOB_SCAN } job_kind_t;

typedef struct run_row {
	char name[160];
	char target[160];        /* restore: renamed target ("" = same) */
	run_state_t state;
	int code;
	char message[256];
	uint64_t bytes_done, bytes_total, files_done, files_total;
	uint64_t recv_bytes, recv_files;   /* written to the store / sent to the service */
	int64_t begin_ms, end_ms;
	wf_rate_t rate;
	int send_rate;
	bool cancel_asked;
	char *result;            /* onResultReport text */
} run_row_t;

typedef struct log_line {
	int bundle;              /* -1: not about one bundle */
	theme_role_t role;
	int64_t ms;
	char text[240];
} log_line_t;

/* What the loader thread hands back (CEV_LOADED). */
typedef struct console_load {
	int code;
	char message[512];
	ohb_service_t *svc;      /* set on the first load only */
	char system_full_name[128], device_type[64], backup_version[32];
	bundle_row_t *rows;
	size_t n_rows;
	store_set_info_t *sets;
	size_t n_sets;
	int sets_code;
	char sets_message[256];
} console_load_t;

typedef struct job job_t;

struct console {
	cli_ctx_t *ctx;
	/* terminal */
	bool utf8, colour, mono_forced, headless, too_small;
	int cols, rows;
	theme_t theme;
	char theme_error[700];
	char themes_dir[512];
	wf_coalesce_t redraw;
	int wake_rd, wake_wr, sig_fd;
	cev_queue_t evq;
	/* navigation */
	screen_id_t screen, help_return;
	char status[300];
	theme_role_t status_role;
	/* confirmation dialog: y runs confirm_action */
	bool confirm;
	char confirm_text[300];
	void (*confirm_action)(console_t *c);
	bool quitting, quit_now;
	/* device and store (loader thread) */
	ohb_service_t *svc;
	pthread_t loader;
	bool loading, loader_joinable;
	int load_code;
	char load_message[512];
	char system_full_name[128], device_type[64], backup_version[32];
	bundle_row_t *brows;
	size_t n_brows;
	store_set_info_t *sets;
	size_t n_sets;
	int sets_code;
	char sets_message[256];
	size_t h_cursor;           /* home menu */
	/* picker */
	job_kind_t pick_kind;
	char filter[64];
	bool filtering;
	list_sort_t sort;
	size_t *view;
	size_t n_view, p_cursor, p_top;
	/* scan */
	bool scan_precise, scan_running;
	char scan_current[160];
	int scan_code;
	char scan_message[640];
	int64_t scan_started_ms;
	/* run */
	job_t *job;
	uint64_t job_seq;
	job_kind_t run_kind;
	run_row_t *run;
	size_t n_run, r_cursor, r_top;
	log_line_t *log;
	size_t n_log, log_first;   /* ring: n_log lines from log_first */
	int64_t run_started_ms, run_ended_ms;
	bool run_active, run_interrupted;
	int all_code;
	char all_message[300];
	char set_id[96], set_path[600];
	size_t log_scroll;
	int log_bundle;
	/* restore selection */
	size_t s_cursor, s_top;
	int restore_set;           /* index into sets */
	bool *sb_selected;
	char (*sb_target)[160];
	size_t n_sb, sb_cursor, sb_top;
	bool editing_target;
	char edit_buf[160];
	/* settings */
	size_t set_cursor;
	int default_rate;          /* fds per second for new runs, 0 = service default */
	int redraw_ms;
	/* cloud (console_cloud.c, screen_cloud.c) */
	cloud_ui_t cloud;
};

/* ---- console.c ---- */
int console_main(cli_ctx_t *ctx, const char *theme);
void console_go(console_t *c, screen_id_t s);
/* The keys every list screen shares: Up/k, Down/j, PgUp/PgDn (by `page`
 * rows), Home/g, End/G move *cursor within [0, count). True when ch was one
 * of them. */
bool console_list_key(int ch, size_t count, long page, size_t *cursor);
/* The keys every text field shares (filters, the optimize form, a restore
 * target): Backspace drops the last character and a printable one is appended
 * while it fits in buf (size bytes, NUL-terminated), both EDIT_CHANGED (also
 * when there was nothing to drop or no room); Enter and Esc are only
 * reported, for the caller to keep or cancel; anything else is EDIT_OTHER and
 * leaves buf alone. */
typedef enum { EDIT_CHANGED, EDIT_ENTER, EDIT_ESC, EDIT_OTHER } edit_key_t;
edit_key_t console_edit_key(char *buf, size_t size, int ch);
/* The screen of an id (every id below SCR_COUNT has one). */
const screen_t *console_screen(screen_id_t id);
void console_say(console_t *c, theme_role_t role, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void console_ask(console_t *c, void (*action)(console_t *c), const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void console_reload(console_t *c);
void console_request_quit(console_t *c);
void console_log(console_t *c, int bundle, theme_role_t role, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
const log_line_t *console_log_at(const console_t *c, size_t i);
bool console_set_theme(console_t *c, const char *name);

/* ---- console_draw.c: curses helpers (main thread only) ---- */
void draw_apply_theme(console_t *c);
int draw_attr(const console_t *c, theme_role_t role);
void draw_text(console_t *c, int y, int x, int width, theme_role_t role, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void draw_fill(console_t *c, int y, int x, int width, theme_role_t role);
void draw_bar(console_t *c, int y, int x, int width, uint64_t done, uint64_t total);
void draw_hline(console_t *c, int y, const char *label);
void draw_frame(console_t *c, const char *title);
void draw_keybar(console_t *c, const char *keys);
void draw_status(console_t *c);
void draw_dialog(console_t *c, const char *title, const char *text);
int draw_body_top(void);
int draw_body_rows(const console_t *c);
theme_role_t draw_state_role(run_state_t s);
const char *draw_state_text(const run_row_t *r, char *buf, size_t size);

/* ---- console_job.c: sessions (callbacks on the dispatcher thread) ---- */
int job_start_backup(console_t *c, bool incremental, char *err, size_t err_size);
int job_start_restore(console_t *c, char *err, size_t err_size);
/* After a restore step ended: starts the next set of the chain (true), or
 * says the restore is over (false). Main thread. */
bool job_restore_next_step(console_t *c);
int job_start_scan(console_t *c, bool precise, char *err, size_t err_size);
/* cancel(bundle) for run row i; returns the code cancel returned. */
int job_cancel(console_t *c, size_t i);
/* The session ended (CEV_ALL_END): release and free it (main thread). */
void job_finish(console_t *c);
/* Quit/Ctrl-C/SIGTERM: stop everything, leave the set interrupted. */
void job_interrupt(console_t *c);
bool job_running(const console_t *c);
void job_apply_event(console_t *c, cev_t *ev);

#endif
