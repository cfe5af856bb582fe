/*
 * console — the main loop of the interactive console (see console.h).
 *
 * One thread owns the terminal. It blocks in poll() on three fds:
 *   - stdin: keys, drained with nodelay until ERR;
 *   - the self-pipe of the event queue (console_evq.c): session callbacks and
 *     the loader thread post events there;
 *   - a signalfd for SIGINT, SIGTERM, SIGHUP and SIGWINCH, which are blocked
 *     in every thread (they are blocked here before any thread is created, so
 *     the backend's threads inherit the mask), so no handler runs for them.
 * Changes only mark the screen dirty; the redraw coalescer allows at most one
 * redraw per redraw_ms (100 ms). With nothing dirty, nothing running and no
 * input, poll() gets timeout -1: zero CPU when idle. While a session runs,
 * the loop also wakes once a second so elapsed time and ETA keep moving.
 *
 * Exit paths: q/F10 (asks while a session runs), Ctrl-C (the same), SIGTERM
 * (no question: cancel, release, leave the set interrupted), SIGHUP (the
 * terminal is gone: stop drawing, let a running session finish and write its
 * set, then exit — a dropped SSH link loses no data). endwin() runs on every
 * exit (atexit too); a crash (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) runs a
 * tiny async-signal-safe handler that writes the terminal reset sequence and
 * restores the saved tty modes before the default action.
 *
 * The cloud engine (console_cloud.c) is opened when the Cloud screen is first
 * entered and closed on the way out, which stops a sync, download or
 * optimize run still going. Its runs keep the once-a-second tick too.
 */
#include "console.h"

#include <errno.h>
#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <curses.h>

#include <cjson/cJSON.h>

#include "fsutil.h"

/* The only process-wide mutable state: what the crash handler needs to give
 * the terminal back (it cannot reach the console_t). Written once before
 * initscr, read only by crash_handler. */
static struct termios g_saved_tty;
static volatile sig_atomic_t g_tty_saved;

static void
crash_handler(int sig)
{
	static const char reset[] = "\033[0m\033[?1000l\033[?1006l\033[?25h\033[?1049l\r\n";
	ssize_t w = write(STDOUT_FILENO, reset, sizeof reset - 1);
	(void)w;
	if (g_tty_saved)
		tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void
restore_terminal_atexit(void)
{
	if (!isendwin())
		endwin();
}

/* ---- small services for the screens ---- */

bool
console_list_key(int ch, size_t count, long page, size_t *cursor)
{
	switch (ch) {
	case KEY_UP:
	case 'k':
		*cursor = list_move(count, *cursor, -1);
		return true;
	case KEY_DOWN:
	case 'j':
		*cursor = list_move(count, *cursor, 1);
		return true;
	case KEY_PPAGE:
		*cursor = list_move(count, *cursor, -page);
		return true;
	case KEY_NPAGE:
		*cursor = list_move(count, *cursor, page);
		return true;
	case KEY_HOME:
	case 'g':
		*cursor = 0;
		return true;
	case KEY_END:
	case 'G':
		*cursor = count ? count - 1 : 0;
		return true;
	default:
		return false;
	}
}

edit_key_t
console_edit_key(char *buf, size_t size, int ch)
{
	size_t len = strlen(buf);
	if (ch == '\n' || ch == '\r' || ch == KEY_ENTER)
		return EDIT_ENTER;
	if (ch == 27)
		return EDIT_ESC;
	if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
		if (len)
			buf[len - 1] = '\0';
		return EDIT_CHANGED;
	}
	if (ch < ' ' || ch >= 127)
		return EDIT_OTHER;   /* function keys, arrows, control characters */
	if (len + 1 < size) {
		buf[len] = (char)ch;
		buf[len + 1] = '\0';
	}
	return EDIT_CHANGED;
}

void
console_go(console_t *c, screen_id_t s)
{
	c->screen = s;
	c->status[0] = '\0';
	wf_coalesce_mark(&c->redraw);
}

void
console_say(console_t *c, theme_role_t role, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->status, sizeof c->status, fmt, ap);
	va_end(ap);
	c->status_role = role;
	wf_coalesce_mark(&c->redraw);
}

void
console_ask(console_t *c, void (*action)(console_t *c), const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->confirm_text, sizeof c->confirm_text, fmt, ap);
	va_end(ap);
	c->confirm = true;
	c->confirm_action = action;
	wf_coalesce_mark(&c->redraw);
}

void
console_log(console_t *c, int bundle, theme_role_t role, const char *fmt, ...)
{
	if (!c->log)
		return;
	size_t slot;
	if (c->n_log < CONSOLE_LOG_MAX) {
		slot = (c->log_first + c->n_log++) % CONSOLE_LOG_MAX;
	} else {
		slot = c->log_first;
		c->log_first = (c->log_first + 1) % CONSOLE_LOG_MAX;
	}
	log_line_t *l = &c->log[slot];
	l->bundle = bundle;
	l->role = role;
	l->ms = fsu_mono_ms();
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(l->text, sizeof l->text, fmt, ap);
	va_end(ap);
	wf_coalesce_mark(&c->redraw);
}

const log_line_t *
console_log_at(const console_t *c, size_t i)
{
	return i < c->n_log ? &c->log[(c->log_first + i) % CONSOLE_LOG_MAX] : NULL;
}

bool
console_set_theme(console_t *c, const char *name)
{
	char path[700], err[400];
	theme_t t;
	if (c->mono_forced) {
		theme_monochrome(&c->theme);
		console_say(c, ROLE_WARNING, "colours are off (NO_COLOR, --no-color or the terminal): monochrome");
		draw_apply_theme(c);
		return false;
	}
	if (!name || !*name || strchr(name, '/')) {
		theme_default(&c->theme);
		draw_apply_theme(c);
		return true;
	}
	snprintf(path, sizeof path, "%s/%s.theme", c->themes_dir, name);
	if (theme_load_file(path, name, &t, err, sizeof err) != 0) {
		theme_default(&c->theme);
		/* the file's path is in the themes folder (Settings shows it): keep the message short */
		size_t pl = strlen(path);
		const char *why = strncmp(err, path, pl) == 0 && err[pl] == ':' ? err + pl + 2 : err;
		snprintf(c->theme_error, sizeof c->theme_error, "theme %s: %s; using the default theme", name, why);
		console_say(c, ROLE_ERROR, "%s", c->theme_error);
		draw_apply_theme(c);
		return false;
	}
	if (strcmp(name, "monochrome") == 0)
		t.mono = true;
	c->theme = t;
	c->theme_error[0] = '\0';
	draw_apply_theme(c);
	return true;
}

/* ---- the loader thread: service, capability file, store listing ---- */

typedef struct loader_arg {
	const cli_ctx_t *ctx;
	ohb_service_t *svc;
	cev_queue_t *q;
	uint64_t job;
} loader_arg_t;

static void *
loader_main(void *p)
{
	loader_arg_t *a = p;
	console_load_t *l = calloc(1, sizeof *l);
	ohb_error_t e = { 0, "" };
	if (!l) {
		free(a);
		return NULL;
	}
	ohb_service_t *svc = a->svc;
	int fd = -1;
	char *caps = NULL;
	if (!svc) {
		ohb_service_options_t o = { a->ctx->root, a->ctx->parallel, 0 };
		l->code = ohb_service_open(&o, &svc, &e);
		l->svc = svc;
	}
	if (l->code == 0)
		l->code = ohb_get_local_capabilities(svc, &fd, &e);
	if (l->code == 0)
		l->code = fsu_read_fd(fd, 64u << 20, &caps, NULL, &e);
	if (l->code == 0 && list_parse_caps(caps, &l->rows, &l->n_rows, l->system_full_name, sizeof l->system_full_name,
	                        l->device_type, sizeof l->device_type, l->backup_version, sizeof l->backup_version) != 0) {
		l->code = OHB_E_INVAL;
		snprintf(e.message, sizeof e.message, "the capability file does not parse");
	}
	if (l->code)
		snprintf(l->message, sizeof l->message, "%s", e.message);
	if (fd >= 0)
		close(fd);
	free(caps);
	store_t *st = NULL;
	ohb_error_t se = { 0, "" };
	l->sets_code = store_open(a->ctx->store, &st, &se);
	if (l->sets_code == 0)
		l->sets_code = store_list(st, &l->sets, &l->n_sets, &se);
	if (l->sets_code)
		snprintf(l->sets_message, sizeof l->sets_message, "%s", se.message);
	store_close(st);
	cev_t ev = { CEV_LOADED, -1, l->code, { 0, 0, 0, 0 }, NULL, l, 0 };
	cevq_push(a->q, ev);
	free(a);
	return NULL;
}

void
console_reload(console_t *c)
{
	if (c->loading)
		return;
	loader_arg_t *a = calloc(1, sizeof *a);
	if (!a)
		return;
	*a = (loader_arg_t){ c->ctx, c->svc, &c->evq, 0 };
	if (pthread_create(&c->loader, NULL, loader_main, a) != 0) {
		free(a);
		console_say(c, ROLE_ERROR, "cannot start the loader thread");
		return;
	}
	c->loading = c->loader_joinable = true;
	wf_coalesce_mark(&c->redraw);
}

static void
take_load(console_t *c, console_load_t *l)
{
	if (c->loader_joinable) {
		pthread_join(c->loader, NULL);
		c->loader_joinable = false;
	}
	c->loading = false;
	if (l->svc)
		c->svc = l->svc;
	c->load_code = l->code;
	snprintf(c->load_message, sizeof c->load_message, "%s", l->message);
	if (l->code == 0) {
		snprintf(c->system_full_name, sizeof c->system_full_name, "%s", l->system_full_name);
		snprintf(c->device_type, sizeof c->device_type, "%s", l->device_type);
		snprintf(c->backup_version, sizeof c->backup_version, "%s", l->backup_version);
		/* keep the selection and scanned sizes across a reload */
		for (size_t i = 0; i < l->n_rows; i++)
			for (size_t k = 0; k < c->n_brows; k++)
				if (strcmp(l->rows[i].name, c->brows[k].name) == 0) {
					l->rows[i].selected = c->brows[k].selected && l->rows[i].allow;
					if (c->brows[k].scanned) {
						l->rows[i].size = c->brows[k].size;
						l->rows[i].inc_size = c->brows[k].inc_size;
						l->rows[i].scanned = true;
					}
				}
		free(c->brows);
		free(c->view);
		c->brows = l->rows;
		c->n_brows = l->n_rows;
		c->view = calloc(c->n_brows ? c->n_brows : 1, sizeof *c->view);
		l->rows = NULL;
	}
	store_set_infos_free(c->sets, c->n_sets);
	c->sets = l->sets;
	c->n_sets = l->n_sets;
	c->sets_code = l->sets_code;
	snprintf(c->sets_message, sizeof c->sets_message, "%s", l->sets_message);
	for (size_t i = 0; i < c->n_brows; i++) {
		c->brows[i].last_backup_ms = 0;
		for (size_t s = 0; s < c->n_sets; s++) {
			if (!c->sets[s].complete)
				continue;
			for (size_t k = 0; k < c->sets[s].n_bundles; k++)
				if (c->sets[s].bundles[k].code == 0 && strcmp(c->sets[s].bundles[k].name, c->brows[i].name) == 0 &&
				    c->sets[s].created_ms > c->brows[i].last_backup_ms)
					c->brows[i].last_backup_ms = c->sets[s].created_ms;
		}
	}
	free(l->rows);
	free(l);
	wf_coalesce_mark(&c->redraw);
}

/* ---- events from the session ---- */

static void
apply_size_report(console_t *c, const char *text)
{
	cJSON *root = cJSON_Parse(text);
	cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "scaned")) {
		cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "bundleName");
		cJSON *ds = cJSON_GetObjectItemCaseSensitive(e, "dataSize");
		cJSON *is = cJSON_GetObjectItemCaseSensitive(e, "incDataSize");
		for (size_t i = 0; cJSON_IsString(name) && i < c->n_brows; i++)
			if (strcmp(c->brows[i].name, name->valuestring) == 0) {
				if (cJSON_IsNumber(ds) && ds->valuedouble >= 0)
					c->brows[i].size = (int64_t)ds->valuedouble;
				c->brows[i].inc_size = cJSON_IsNumber(is) ? (int64_t)is->valuedouble : -1;
				c->brows[i].scanned = true;
			}
	}
	cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, "scanning");
	snprintf(c->scan_current, sizeof c->scan_current, "%s", cJSON_IsString(sc) ? sc->valuestring : "");
	if (cJSON_IsString(sc) && !*sc->valuestring && c->scan_running) {
		c->scan_running = false;
		job_finish(c);
		console_say(c, ROLE_STATE_OK, "size scan finished in %.1f s",
		    (double)(fsu_mono_ms() - c->scan_started_ms) / 1000.0);
	}
	cJSON_Delete(root);
}

void
job_apply_event(console_t *c, cev_t *ev)
{
	if (ev->kind == CEV_LOADED) {
		take_load(c, ev->ptr);
		return;
	}
	if (ev->kind == CEV_CLOUD_SYNC || ev->kind == CEV_CLOUD_DOWNLOAD || ev->kind == CEV_CLOUD_OPTIMIZE) {
		cloud_apply_event(c, ev);   /* the cloud engine's, not a session's */
		return;
	}
	if (ev->job != c->job_seq)
		return;   /* from a session already gone */
	if (ev->kind == CEV_SIZE) {
		apply_size_report(c, ev->text ? ev->text : "{}");
		wf_coalesce_mark(&c->redraw);
		return;
	}
	run_row_t *r = ev->bundle >= 0 && (size_t)ev->bundle < c->n_run ? &c->run[ev->bundle] : NULL;
	const char *name = r ? r->name : "?";
	const char *text = ev->text ? ev->text : "";
	int64_t now = fsu_mono_ms();
	switch (ev->kind) {
	case CEV_BEGIN:
		if (r) {
			r->begin_ms = now;
			r->state = ev->code ? RS_FAILED : RS_RUNNING;
			if (ev->code) {
				r->code = ev->code;
				snprintf(r->message, sizeof r->message, "%s", text);
				r->end_ms = now;
			}
		}
		if (ev->code)
			console_log(c, ev->bundle, ROLE_ERROR, "%s: begin: error %d: %s", name, ev->code, text);
		else
			console_log(c, ev->bundle, ROLE_NORMAL, "%s: begin", name);
		break;
	case CEV_END:
		if (r) {
			r->end_ms = now;
			if (ev->code) {
				r->state = RS_FAILED;
				if (!r->code)
					r->code = ev->code;
				snprintf(r->message, sizeof r->message, "%s", text);
			} else if (r->code) {
				r->state = RS_FAILED;
			} else if (r->cancel_asked || strcmp(text, "cancelled") == 0) {
				r->state = RS_CANCELLED;
				snprintf(r->message, sizeof r->message, "cancelled");
			} else {
				r->state = RS_DONE;
				if (r->bytes_total && r->bytes_done < r->bytes_total)
					r->bytes_done = r->bytes_total;
				if (r->files_total && r->files_done < r->files_total)
					r->files_done = r->files_total;
			}
		}
		if (ev->code)
			console_log(c, ev->bundle, ROLE_ERROR, "%s: end: error %d: %s", name, ev->code, text);
		else if (r && r->state == RS_CANCELLED)
			console_log(c, ev->bundle, ROLE_STATE_CANCELLED, "%s: end: cancelled", name);
		else if (r && r->state == RS_FAILED)
			console_log(c, ev->bundle, ROLE_ERROR, "%s: end: failed (error %d)", name, r->code);
		else
			console_log(c, ev->bundle, ROLE_STATE_OK, "%s: end: ok", name);
		break;
	case CEV_PROCESS:
		if (r) {
			r->bytes_done = ev->v[0];
			r->bytes_total = ev->v[1];
			r->files_done = ev->v[2];
			r->files_total = ev->v[3];
			wf_rate_sample(&r->rate, r->bytes_done, now);
		}
		if (ev->text)
			console_log(c, ev->bundle, ROLE_WARNING, "%s: warning: %s", name, text);
		break;
	case CEV_FILE:
		if (ev->code) {
			if (r && !r->code) {
				r->code = ev->code;
				snprintf(r->message, sizeof r->message, "%s", text);
			}
			console_log(c, ev->bundle, ROLE_ERROR, "%s: error %d: %s", name, ev->code, text);
		} else {
			char b[32];
			if (r) {
				r->recv_bytes += ev->v[0];
				r->recv_files++;
			}
			console_log(c, ev->bundle, ROLE_DIM, "%s: file %s (%s)", name, text, wf_bytes(ev->v[0], b, sizeof b));
		}
		break;
	case CEV_RESULT:
		if (r) {
			free(r->result);
			r->result = ev->text;
			ev->text = NULL;
		}
		console_log(c, ev->bundle, ROLE_NORMAL, "%s: result: %s", name, r && r->result ? r->result : text);
		break;
	case CEV_DIED:
		console_log(c, -1, ROLE_ERROR, "error %d: %s", ev->code, text);
		break;
	case CEV_ALL_END:
		/* A restore of an incremental set runs one session per set of the chain. */
		if (c->run_kind == JOB_RESTORE && !c->run_interrupted && job_restore_next_step(c)) {
			console_log(c, -1, ROLE_NORMAL, "step done; next set %s", c->set_id);
			break;
		}
		c->run_active = false;
		c->run_ended_ms = now;
		c->all_code = ev->code;
		snprintf(c->all_message, sizeof c->all_message, "%s", text);
		for (size_t i = 0; i < c->n_run; i++)
			if (c->run[i].state == RS_WAITING || c->run[i].state == RS_RUNNING) {
				c->run[i].state = c->run_interrupted || c->run[i].cancel_asked ? RS_CANCELLED : RS_FAILED;
				c->run[i].end_ms = now;
				if (c->run[i].state == RS_FAILED && !c->run[i].code)
					c->run[i].code = OHB_E_UNKNOWN;
			}
		if (ev->code)
			console_log(c, -1, ROLE_ERROR, "all bundles ended: error %d: %s", ev->code, text);
		else
			console_log(c, -1, ROLE_STATE_OK, "all bundles ended%s%s", *text ? ": " : "", text);
		if (strncmp(text, "error ", 6) == 0 || strncmp(text, "interrupted", 11) == 0)
			c->set_path[0] = '\0';
		job_finish(c);
		if (c->scan_running)
			c->scan_running = false;
		if (!c->quitting && (c->screen == SCR_RUN || c->screen == SCR_LOG))
			console_go(c, SCR_RESULTS);
		if (!c->quitting)
			console_reload(c);
		break;
	default:
		break;
	}
	wf_coalesce_mark(&c->redraw);
}

static void
drain_events(console_t *c)
{
	char buf[64];
	while (read(c->wake_rd, buf, sizeof buf) > 0)
		;
	cev_t *v = NULL;
	size_t n = cevq_drain(&c->evq, &v);
	for (size_t i = 0; i < n; i++) {
		job_apply_event(c, &v[i]);
		cev_free(&v[i]);
	}
	free(v);
}

/* ---- quitting ---- */

static void
do_quit(console_t *c)
{
	c->quitting = true;
	if (c->job) {
		job_interrupt(c);
		drain_events(c);
		job_finish(c);
	}
	c->quit_now = true;
}

void
console_request_quit(console_t *c)
{
	if (c->job && c->run_kind != JOB_SCAN && c->run_active) {
		size_t left = 0;
		for (size_t i = 0; i < c->n_run; i++)
			left += c->run[i].state == RS_WAITING || c->run[i].state == RS_RUNNING;
		console_ask(c, do_quit,
		    "A %s is running (%zu bundle%s not finished). Quit? It is cancelled and set %s is left interrupted.",
		    c->run_kind == JOB_RESTORE ? "restore" : "backup", left, left == 1 ? "" : "s", c->set_id);
		return;
	}
	do_quit(c);
}

/* ---- drawing ---- */

const screen_t *
console_screen(screen_id_t id)
{
	static const screen_t *const all[SCR_COUNT] = {
		[SCR_HOME] = &screen_home,
		[SCR_PICKER] = &screen_picker,
		[SCR_SCAN] = &screen_scan,
		[SCR_RUN] = &screen_run,
		[SCR_RESULTS] = &screen_results,
		[SCR_LOG] = &screen_log,
		[SCR_SETS] = &screen_sets,
		[SCR_SET_BUNDLES] = &screen_set_bundles,
		[SCR_SETTINGS] = &screen_settings,
		[SCR_CLOUD] = &screen_cloud,
		[SCR_HELP] = &screen_help,
	};
	return all[id];
}

static void
redraw(console_t *c)
{
	if (c->headless)
		return;
	getmaxyx(stdscr, c->rows, c->cols);
	erase();
	c->too_small = c->cols < CONSOLE_MIN_COLS || c->rows < CONSOLE_MIN_ROWS;
	if (c->too_small) {
		char line[120];
		snprintf(line, sizeof line, "Terminal too small: %dx%d", c->cols, c->rows);
		mvaddnstr(c->rows / 2 - 1 < 0 ? 0 : c->rows / 2 - 1, 0, line, c->cols);
		snprintf(line, sizeof line, "need at least %dx%d", CONSOLE_MIN_COLS, CONSOLE_MIN_ROWS);
		if (c->rows > 1)
			mvaddnstr(c->rows / 2, 0, line, c->cols);
		if (c->rows > 2)
			mvaddnstr(c->rows / 2 + 1, 0, "q: quit", c->cols);
		refresh();
		return;
	}
	const screen_t *s = console_screen(c->screen);
	draw_frame(c, s->title);
	s->draw(c);
	draw_status(c);
	draw_keybar(c, s->keys);
	if (c->confirm)
		draw_dialog(c, "Confirm", c->confirm_text);
	refresh();
}

/* ---- keys ---- */

static int
read_key(void)
{
	int ch = getch();
	if (ch == 27) {
		/* mc's convention for terminals without function keys: Esc then a digit is F1..F10 */
		int next = getch();
		if (next >= '1' && next <= '9')
			return KEY_F(next - '0');
		if (next == '0')
			return KEY_F(10);
		if (next != ERR)
			ungetch(next);
	}
	return ch;
}

static void
handle_key(console_t *c, int ch)
{
	if (ch == KEY_RESIZE || ch == 12 /* Ctrl-L */) {
		clearok(curscr, TRUE);
		wf_coalesce_mark(&c->redraw);
		return;
	}
	if (c->confirm) {
		if (ch == 'y' || ch == 'Y' || ch == '\n' || ch == KEY_ENTER) {
			c->confirm = false;
			c->confirm_action(c);
		} else if (ch == 'n' || ch == 'N' || ch == 27 || ch == 'q') {
			c->confirm = false;
			console_say(c, ROLE_DIM, "cancelled nothing");
		}
		wf_coalesce_mark(&c->redraw);
		return;
	}
	if (c->too_small) {
		if (ch == 'q' || ch == KEY_F(10))
			console_request_quit(c);
		return;
	}
	bool text_entry = (c->screen == SCR_PICKER && c->filtering) || c->editing_target || cloud_text_entry(c);
	if (!text_entry) {
		if (ch == KEY_F(1) || ch == '?') {
			if (c->screen != SCR_HELP) {
				c->help_return = c->screen;
				console_go(c, SCR_HELP);
			}
			return;
		}
		if (ch == KEY_F(10)) {
			console_request_quit(c);
			return;
		}
	}
	if (ch == KEY_MOUSE) {
		MEVENT m;
		const screen_t *s = console_screen(c->screen);
		if (getmouse(&m) == OK && (m.bstate & (BUTTON1_CLICKED | BUTTON1_PRESSED | BUTTON1_RELEASED)) && s->click)
			s->click(c, m.y, m.x);
		wf_coalesce_mark(&c->redraw);
		return;
	}
	console_screen(c->screen)->key(c, ch);
	wf_coalesce_mark(&c->redraw);
}

/* ---- signals ---- */

static void
handle_signal(console_t *c, int sig)
{
	if (sig == SIGWINCH) {
		struct winsize ws;
		if (!c->headless && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
			resizeterm(ws.ws_row, ws.ws_col);
		wf_coalesce_mark(&c->redraw);
	} else if (sig == SIGINT) {
		if (c->confirm && c->confirm_action == do_quit) {
			c->confirm = false;
			do_quit(c);   /* a second Ctrl-C does not ask again */
		} else {
			console_request_quit(c);
		}
	} else if (sig == SIGTERM) {
		do_quit(c);
	} else if (sig == SIGHUP) {
		/* The terminal is gone: never draw again; a running session goes on to
		 * its end and writes its set; then the loop exits. */
		c->headless = true;
		if (!c->job)
			c->quit_now = true;
	}
}

/* ---- setup and the loop ---- */

static void
setup_colours(console_t *c, const char *theme)
{
	const char *nc = getenv("NO_COLOR");
	c->colour = has_colors() && !(nc && *nc);
	if (c->colour) {
		start_color();
		use_default_colors();
	}
	c->mono_forced = !c->colour;
	if (!theme_dir(c->themes_dir, sizeof c->themes_dir))
		snprintf(c->themes_dir, sizeof c->themes_dir, "themes");
	if (c->mono_forced)
		theme_monochrome(&c->theme);
	else if (theme && *theme)
		console_set_theme(c, theme);
	else if (!console_set_theme(c, "default"))
		console_say(c, ROLE_DIM, "no themes folder found; built-in colours");
	draw_apply_theme(c);
}

int
console_main(cli_ctx_t *ctx, const char *theme)
{
	console_t *c = calloc(1, sizeof *c);
	if (!c) {
		fprintf(stderr, "ohbackup: out of memory\n");
		return CLI_FAILED;
	}
	c->ctx = ctx;
	c->log = calloc(CONSOLE_LOG_MAX, sizeof *c->log);
	c->restore_set = -1;
	c->default_rate = ctx->send_rate;
	c->redraw_ms = 100;
	c->sort = LIST_SORT_NAME;
	wf_coalesce_init(&c->redraw, c->redraw_ms);

	setlocale(LC_ALL, "");
	const char *cs = nl_langinfo(CODESET);
	c->utf8 = cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);

	/* Signals first, before any thread exists, so every thread inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	c->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	int p[2];
	if (c->sig_fd < 0 || pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
		fprintf(stderr, "ohbackup: cannot set up the console: %s\n", strerror(errno));
		return CLI_FAILED;
	}
	c->wake_rd = p[0];
	c->wake_wr = p[1];
	cevq_init(&c->evq, c->wake_wr);

	if (tcgetattr(STDIN_FILENO, &g_saved_tty) == 0)
		g_tty_saved = 1;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = crash_handler;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGABRT, &sa, NULL);
	atexit(restore_terminal_atexit);

	initscr();
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	set_escdelay(25);
	curs_set(0);
	mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED, NULL);
	mouseinterval(0);
	setup_colours(c, theme);
	getmaxyx(stdscr, c->rows, c->cols);
	console_go(c, SCR_HOME);
	if (c->theme_error[0])
		console_say(c, ROLE_ERROR, "%s", c->theme_error);
	console_reload(c);

	while (!c->quit_now) {
		int64_t now = fsu_mono_ms();
		int timeout = wf_coalesce_timeout(&c->redraw, now);
		if (timeout == 0) {
			redraw(c);
			wf_coalesce_drawn(&c->redraw, fsu_mono_ms());
			continue;
		}
		/* a running session or cloud run: tick once a second for elapsed time,
		 * ETA and the cloud stage's counters (polled only then) */
		bool cloud = cloud_busy(c);
		if ((c->run_active || c->scan_running || c->loading || cloud) && (timeout < 0 || timeout > 1000))
			timeout = 1000;
		struct pollfd fds[3] = {
			{ c->wake_rd, POLLIN, 0 },
			{ c->sig_fd, POLLIN, 0 },
			{ STDIN_FILENO, POLLIN, 0 },
		};
		int n = poll(fds, c->headless ? 2 : 3, timeout);
		if (n < 0 && errno != EINTR)
			break;
		if (n == 0 && (c->run_active || c->scan_running || c->loading))
			wf_coalesce_mark(&c->redraw);
		if (cloud)
			cloud_tick(c);   /* itself at most once a second */
		if (fds[1].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(c->sig_fd, &si, sizeof si) == (ssize_t)sizeof si)
				handle_signal(c, (int)si.ssi_signo);
		}
		if (fds[0].revents & POLLIN)
			drain_events(c);
		if (!c->headless && (fds[2].revents & (POLLHUP | POLLERR | POLLNVAL)) && !(fds[2].revents & POLLIN))
			handle_signal(c, SIGHUP);
		if (!c->headless && (fds[2].revents & POLLIN)) {
			int ch;
			while (!c->quit_now && (ch = read_key()) != ERR)
				handle_key(c, ch);
		}
		if (c->headless && !c->job && !c->loading)
			c->quit_now = true;
	}

	/* Leave cleanly: no session, no loader, the terminal given back. */
	if (c->job) {
		job_interrupt(c);
		drain_events(c);
		job_finish(c);
	}
	if (c->loader_joinable) {
		pthread_join(c->loader, NULL);
		c->loader_joinable = false;
		drain_events(c);
	}
	/* the cloud engine last: its close stops a sync (STOPPED) or download (partial file removed) */
	cloud_close(c);
	if (!isendwin())
		endwin();
	int rc = CLI_OK;
	for (size_t i = 0; i < c->n_run; i++)
		free(c->run[i].result);
	free(c->run);
	free(c->log);
	free(c->brows);
	free(c->view);
	free(c->sb_selected);
	free(c->sb_target);
	store_set_infos_free(c->sets, c->n_sets);
	ohb_service_close(c->svc);
	cevq_destroy(&c->evq);
	close(c->wake_rd);
	close(c->wake_wr);
	close(c->sig_fd);
	free(c);
	return rc;
}
