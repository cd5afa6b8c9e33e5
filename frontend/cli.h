/* cli.h: the subcommands of the lnsc command line (cli.c). */
#ifndef LNSC_CLI_H
#define LNSC_CLI_H

#define LNSC_VERSION "0.1.0"

typedef struct CliCommand {
	const char *name;
	int (*run)(int argc, char **argv); /* argv[0] is the command name; returns the exit code */
} CliCommand;

extern const CliCommand cli_commands[];

/* lnsc compile (compile.c) */
int cli_compile(int argc, char **argv);
/* lnsc export (export.c) */
int cli_export(int argc, char **argv);

#endif
