/*
 * main — `ohbackup [GLOBAL OPTIONS] [COMMAND [ARGS]]`.
 *
 * Global options come before the command: --root DIR (device root; env
 * OHBACKUP_ROOT), --store DIR (backup store; env OHBACKUP_STORE), --json,
 * --parallel N, --send-rate N. Defaults live under $XDG_DATA_HOME/ohbackup
 * (~/.local/share/ohbackup): device/ and store/.
 *
 * The command table below is the whole CLI: adding a command touches this
 * table and one cmd_*.c file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "console.h"
#include "fsutil.h"

static const cli_command_t commands[] = {
	{ "backup", "backup [--all | BUNDLE...]", "full backup of bundles into a new set in the store",
	    "  --all         every bundle that allows backup (bundles with allowToBackupRestore false are skipped)\n"
	    "Exit status 0 only when every bundle succeeded; a set is written in any case\n"
	    "(failed bundles are recorded in its set.json).",
	    cmd_backup },
	{ "restore", "restore SET [BUNDLE...] [--rename OLD=NEW]...", "restore bundles from a backup set",
	    "  SET              the set's folder name in the store (see `ohbackup list`)\n"
	    "  BUNDLE...        bundles to restore (default: every bundle the set holds)\n"
	    "  --rename OLD=NEW restore OLD's data into the installed bundle NEW (app_mapping_relation)\n"
	    "Each bundle is applied all or nothing: on any error its data is left as it was.",
	    cmd_restore },
	{ "incremental", "incremental [--all | BUNDLE...]",
	    "incremental backup: only what changed since each bundle's newest good set",
	    "  --all         every bundle that allows backup\n"
	    "A bundle with no earlier backup is sent whole. The new set records the set it\n"
	    "builds on; `restore` of an incremental set restores the whole chain, deletions included.",
	    cmd_incremental },
	{ "scan", "scan [--precise] [--interval MS] [BUNDLE...]", "report the size of what a backup would take",
	    "  --precise       walk every file, and report the size changed since the newest good set\n"
	    "                  (the default is a quick estimate that does not walk everything)\n"
	    "  --interval MS   how often a report is printed (default 5000, the spec's cadence)\n"
	    "  BUNDLE...       default: every bundle of the device",
	    cmd_scan },
	{ "list", "list", "list the backup sets of the store, newest first", NULL, cmd_list },
	{ "caps", "caps [--out FILE]", "print the capability file (getLocalCapabilities)", NULL, cmd_caps },
	{ "version", "version", "print the backup version (getBackupVersion)", NULL, cmd_version },
	{ "info", "info BUNDLE", "print what the service knows of a bundle (getBackupInfo)", NULL, cmd_info },
	{ "bundle", "bundle (list | add NAME DIR)", "list bundles, or register a directory as a bundle",
	    "  list           the installed bundles\n"
	    "  add NAME DIR   register the existing directory DIR as bundle NAME; its files\n"
	    "                 are the bundle's /data/storage/el2/base/files",
	    cmd_bundle },
	{ "demo", "demo [--cloud DIR]", "build a demo device (eight bundles of realistic shape) in the device root",
	    "  --cloud DIR    also a directory cloud in DIR holding a few photos and a note, named in\n"
	    "                 <root>/cloud/config.json (`make run` uses it)",
	    cmd_demo },
	{ "cloud", "cloud [--url URL] [--bundle B] SUB-COMMAND ...",
	    "device-cloud sync of the media library and of bundles' cloud folders (cloudSync)",
	    "  sync [--force]           GallerySync (or FileSync of --bundle B): download what the cloud has\n"
	    "                           new, then upload what the device has new; --force: battery 10-15 %\n"
	    "  download URI             Download.start of one file (Ctrl-C stops and deletes the partial file)\n"
	    "  cache URI                CloudFileCache.start (Ctrl-C keeps the partial file; `cache` resumes it)\n"
	    "  clean URI...             CloudFileCache.cleanCache: drop the local copy, the cloud keeps it\n"
	    "  state URI...             getFileSyncState (at most 100 uris)\n"
	    "  ls [--remote]            every file of the gallery (or --bundle B) with its sync state;\n"
	    "                           --remote asks the cloud first: files the device never had show as cloud\n"
	    "  last-sync                FileSync.getLastSyncTime of the gallery or --bundle B\n"
	    "  optimize --size N --days D   startOptimizeSpace: drop local copies of files the cloud holds,\n"
	    "                           not read for D days, oldest first, until N bytes (K/M/G) are freed\n"
	    "  optimize-storage         optimizeStorage: the same with 30 days, until 10 % of the disk is free\n"
	    "  battery                  the battery as the sync rule sees it\n"
	    "  uris: file://media/<path>, file://<bundle>/data/storage/el2/cloud/<path>\n"
	    "  --url URL      the cloud: file:///dir, /dir or http(s)://… WebDAV (else $OHBACKUP_CLOUD_URL,\n"
	    "                 else \"url\" in <root>/cloud/config.json). See docs/CLOUD.md.",
	    cmd_cloud },
};

const cli_command_t *
cli_find_command(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void
print_help(FILE *out)
{
	fprintf(out,
	    "usage: ohbackup [--root DIR] [--store DIR] [--json] [--parallel N] [--send-rate N] [--theme NAME] [--no-color] [COMMAND [ARGS]]\n"
	    "\n"
	    "Back up and restore the data of applications (bundles), as OpenHarmony's\n"
	    "@ohos.file.backup does. Without a command, on a terminal, it opens the\n"
	    "interactive console; otherwise it shows the device and the store.\n"
	    "\n"
	    "commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-44s %s\n", commands[i].usage, commands[i].summary);
	fprintf(out,
	    "\n"
	    "global options:\n"
	    "  --root DIR      device root (env OHBACKUP_ROOT; default ~/.local/share/ohbackup/device)\n"
	    "  --store DIR     backup store (env OHBACKUP_STORE; default ~/.local/share/ohbackup/store)\n"
	    "  --json          machine-readable output: one JSON object per line\n"
	    "  --parallel N    bundles run at once (default 3)\n"
	    "  --send-rate N   backup: files handed over per second per bundle (default 60, max 800)\n"
	    "  --theme NAME    console colour theme (themes/NAME.theme: default, dark, light, ...)\n"
	    "  --no-color      console without colours (as NO_COLOR=1)\n"
	    "  -h, --help      this text; `ohbackup COMMAND --help` for a command\n");
}

/* $XDG_DATA_HOME/ohbackup/<leaf> or ~/.local/share/ohbackup/<leaf> (malloc'd). */
static char *
default_dir(const char *leaf)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	if (xdg && *xdg)
		return fsu_printf("%s/ohbackup/%s", xdg, leaf);
	const char *home = getenv("HOME");
	return fsu_printf("%s/.local/share/ohbackup/%s", home && *home ? home : ".", leaf);
}

static bool
parse_int(const char *s, int lo, int hi, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

int
main(int argc, char **argv)
{
	cli_ctx_t ctx = { 0 };
	const char *theme = NULL;
	char *root_default = NULL, *store_default = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			print_help(stdout);
			return CLI_OK;
		} else if (strcmp(a, "--json") == 0) {
			ctx.json = true;
		} else if (strcmp(a, "--no-color") == 0) {
			setenv("NO_COLOR", "1", 1);   /* the console's one switch for colours */
		} else if (strcmp(a, "--theme") == 0 && i + 1 < argc) {
			theme = argv[++i];
		} else if ((strcmp(a, "--root") == 0 || strcmp(a, "--store") == 0 || strcmp(a, "--parallel") == 0 ||
		               strcmp(a, "--send-rate") == 0) && i + 1 < argc) {
			const char *v = argv[++i];
			if (strcmp(a, "--root") == 0)
				ctx.root = v;
			else if (strcmp(a, "--store") == 0)
				ctx.store = v;
			else if (strcmp(a, "--parallel") == 0 ? !parse_int(v, 1, 64, &ctx.parallel)
			                                      : !parse_int(v, 0, 800, &ctx.send_rate)) {
				fprintf(stderr, "ohbackup: %s takes a number (got \"%s\")\n", a, v);
				return CLI_USAGE;
			}
		} else {
			fprintf(stderr, "ohbackup: unknown or incomplete option \"%s\" (see ohbackup --help)\n", a);
			return CLI_USAGE;
		}
	}
	if (!ctx.root && getenv("OHBACKUP_ROOT") && *getenv("OHBACKUP_ROOT"))
		ctx.root = getenv("OHBACKUP_ROOT");
	if (!ctx.store && getenv("OHBACKUP_STORE") && *getenv("OHBACKUP_STORE"))
		ctx.store = getenv("OHBACKUP_STORE");
	if (!ctx.root)
		ctx.root = root_default = default_dir("device");
	if (!ctx.store)
		ctx.store = store_default = default_dir("store");
	if (!ctx.root || !ctx.store) {
		fprintf(stderr, "ohbackup: out of memory\n");
		return CLI_FAILED;
	}
	ctx.progress = !ctx.json && isatty(STDERR_FILENO);

	int rc;
	if (i >= argc && !ctx.json && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
		rc = console_main(&ctx, theme);
	} else if (i >= argc) {
		rc = cmd_home(&ctx);
	} else {
		const cli_command_t *cmd = cli_find_command(argv[i]);
		if (!cmd) {
			fprintf(stderr, "ohbackup: unknown command \"%s\" (see ohbackup --help)\n", argv[i]);
			rc = CLI_USAGE;
		} else if (cli_wants_help(cmd, argc - i, argv + i)) {
			rc = CLI_OK;
		} else {
			rc = cmd->run(&ctx, argc - i, argv + i);
		}
	}
	free(root_default);
	free(store_default);
	return rc;
}
