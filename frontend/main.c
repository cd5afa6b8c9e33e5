/* main.c: the lnsc command: dispatches to the subcommands in cli.c. */
#include <stdio.h>
#include <string.h>

#include "frontend/cli.h"

static void usage(FILE *f)
{
	fputs("usage: lnsc <command> [options]\n"
	      "\n"
	      "commands:\n"
	      "  train   MODEL.onnx   train on a dataset (Fashion-MNIST by default)\n"
	      "  inspect MODEL.onnx   print the training graph with formats and state sizes\n"
	      "  grad    MODEL.onnx   one forward/backward on given tensors; writes loss and gradients\n"
	      "  eval    MODEL.onnx   forward on given tensors; writes the graph outputs\n"
	      "  compile MODEL.onnx   native training code: executable, static library, object\n"
	      "  export  CHECKPOINT   the trained model as ONNX (-m MODEL.onnx -o OUT.onnx)\n"
	      "  run     SCRIPT.lua   run a Lua script with the lnsc module (docs/lua.md)\n"
	      "  ops                  the supported-ops table\n"
	      "\n"
	      "'lnsc <command> --help' shows a command's options; docs/cli.md has them all.\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("lnsc %s\n", LNSC_VERSION);
		return 0;
	}
	for (const CliCommand *c = cli_commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "lnsc: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
