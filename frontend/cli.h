/* cli.h: the subcommands of the lnsc command line (cli.c). */
#ifndef LNSC_CLI_H
#define LNSC_CLI_H

#include <stdio.h>

#define LNSC_VERSION "0.1.0"

typedef struct CliCommand {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
} CliCommand;

extern const CliCommand cli_commands[];

/* The start-up self-check every command runs: each op has the hooks it needs (cli.c).
 * 0, or -1 with diagnostics. */
struct IrCtx;
int cli_self_check(struct IrCtx *c);
/* What `lnsc inspect` prints for a planned graph: the IR and the state per parameter. */
struct IrGraph;
void cli_inspect_print(FILE *f, const struct IrGraph *g);

/* lnsc compile (compile.c) */
int cli_compile(int argc, char **argv);
/* lnsc export (export.c) */
int cli_export(int argc, char **argv);

#endif
