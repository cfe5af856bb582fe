/*
 * cli_common — what every command shares: error printing (one format for
 * people, one for --json), opening the service, byte formatting, help.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "widget_fmt.h"

int
cli_error(const cli_ctx_t *ctx, int code, const char *message)
{
	if (ctx && ctx->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "error");
		cJSON_AddNumberToObject(o, "code", code);
		cJSON_AddStringToObject(o, "message", message && *message ? message : ohb_code_text(code));
		char *t = cJSON_PrintUnformatted(o);
		if (t)
			cli_json_line(t);
		free(t);
		cJSON_Delete(o);
	}
	fprintf(stderr, "ohbackup: error %d: %s\n", code, message && *message ? message : ohb_code_text(code));
	return CLI_FAILED;
}

int
cli_fail(const cli_ctx_t *ctx, const ohb_error_t *err)
{
	return cli_error(ctx, err->code ? err->code : OHB_E_UNKNOWN, err->message);
}

int
cli_usage(const cli_command_t *cmd, const char *what)
{
	fprintf(stderr, "ohbackup %s: %s\nusage: ohbackup %s\n", cmd->name, what, cmd->usage);
	return CLI_USAGE;
}

bool
cli_wants_help(const cli_command_t *cmd, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: ohbackup %s\n\n%s.\n", cmd->usage, cmd->summary);
			if (cmd->help)
				printf("\n%s\n", cmd->help);
			return true;
		}
	}
	return false;
}

int
cli_open_service(const cli_ctx_t *ctx, ohb_service_t **svc, ohb_error_t *err)
{
	ohb_service_options_t opts = { ctx->root, ctx->parallel, 0 };
	return ohb_service_open(&opts, svc, err);
}

/* One byte format for the CLI and the console. */
const char *
cli_human_bytes(uint64_t bytes, char *buf, size_t size)
{
	return wf_bytes(bytes, buf, size);
}

void
cli_json_line(const char *text)
{
	fputs(text, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}
