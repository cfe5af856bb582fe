/*
 * cli — the non-interactive front end: `ohbackup <command> ...` for scripts
 * and cron. Each command is an entry of the table in main.c (name, usage,
 * summary, run function) and lives in its own cmd_*.c file. Commands use only
 * the public API (ohbackup.h, ohbackup_store.h) plus the device-building
 * helpers of registry.h/demo.h for `bundle add` and `demo`.
 *
 * Output rules: human text on stdout; errors on stderr as
 * "ohbackup: error <code>: <sentence>"; with --json, one JSON object per line
 * on stdout (events, then a summary) and errors as {"event":"error",...}.
 * Exit status 0 only when everything asked for succeeded.
 */
#ifndef OHB_CLI_H
#define OHB_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "ohbackup.h"
#include "ohbackup_store.h"

typedef struct cli_ctx {
	const char *root;       /* device root (resolved default if not given) */
	const char *store;      /* store directory */
	bool json;              /* --json */
	bool progress;          /* a live progress line on stderr (a TTY and not --json) */
	int parallel;           /* --parallel N (0 = service default) */
	int send_rate;          /* --send-rate N (0 = service default) */
} cli_ctx_t;

typedef struct cli_command {
	const char *name;
	const char *usage;      /* "backup [--all | BUNDLE...]" */
	const char *summary;    /* one line */
	const char *help;       /* the rest of --help, may be NULL */
	int (*run)(cli_ctx_t *ctx, int argc, char **argv);   /* argv[0] is the command name */
} cli_command_t;

/* Exit statuses. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* Prints "ohbackup: error <code>: <message>" (or the JSON form) and returns CLI_FAILED. */
int cli_error(const cli_ctx_t *ctx, int code, const char *message);
/* Same from an ohb_error_t. */
int cli_fail(const cli_ctx_t *ctx, const ohb_error_t *err);
/* Prints a usage error for cmd and returns CLI_USAGE. */
int cli_usage(const cli_command_t *cmd, const char *what);
/* True when argv[i] is -h/--help; prints the command's help. */
bool cli_wants_help(const cli_command_t *cmd, int argc, char **argv);

int cli_open_service(const cli_ctx_t *ctx, ohb_service_t **svc, ohb_error_t *err);

/* "12.3 MiB" into buf. */
const char *cli_human_bytes(uint64_t bytes, char *buf, size_t size);

/* Prints one JSON line (text is a complete JSON value) with a trailing newline, flushed. */
void cli_json_line(const char *text);

/* The command table (main.c) and lookup. */
const cli_command_t *cli_find_command(const char *name);

int cmd_backup(cli_ctx_t *ctx, int argc, char **argv);
int cmd_restore(cli_ctx_t *ctx, int argc, char **argv);
int cmd_incremental(cli_ctx_t *ctx, int argc, char **argv);
int cmd_scan(cli_ctx_t *ctx, int argc, char **argv);
int cmd_list(cli_ctx_t *ctx, int argc, char **argv);
int cmd_caps(cli_ctx_t *ctx, int argc, char **argv);
int cmd_version(cli_ctx_t *ctx, int argc, char **argv);
int cmd_info(cli_ctx_t *ctx, int argc, char **argv);
int cmd_bundle(cli_ctx_t *ctx, int argc, char **argv);
int cmd_demo(cli_ctx_t *ctx, int argc, char **argv);
int cmd_cloud(cli_ctx_t *ctx, int argc, char **argv);
int cmd_home(cli_ctx_t *ctx);

#endif
