/* exe_main.c: main() of a standalone training executable (`lnsc compile --emit exe`).
 *
 * The executable is this file, the runtime library and one object from codegen that defines
 * the constant descriptor `lnsc_model`. It takes the training flags of `lnsc train` that make
 * sense once the model is compiled (the recipe, batch and formats are fixed by then), with the
 * same messages and exit codes: 0 done, 2 bad usage or input (flags, dataset, checkpoint),
 * 1 a runtime failure, 130 interrupted by SIGINT (after saving the checkpoint, if any).
 * Everything else is the runtime's: lnsrt_model over the descriptor, lnsrt_train for epochs,
 * checkpoints and metrics. Not part of the lnsc_rt library: it is compiled per executable.
 */
#include "runtime/lnsrt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern const LnsrtModelDesc lnsc_model;

typedef struct ExeArgs {
	const char *prog;
	const char *data, *metrics, *checkpoint, *resume;
	int epochs, progress, telemetry, threads;
	int64_t steps, every;
	uint64_t seed;
	float lr;
} ExeArgs;

static const char help[] =
    "usage: %s [--data fashion-mnist|PATH] [--epochs N] [--lr X] [--seed S]\n"
    "       [--threads N] [--metrics FILE.csv] [--checkpoint FILE] [--checkpoint-every N]\n"
    "       [--resume FILE] [--steps N] [--no-progress] [--telemetry]\n"
    "Trains the model compiled into this program (%s, recipe %s, batch %d) on the dataset's\n"
    "training split; after each epoch prints the mean training loss, the test loss and\n"
    "accuracy, and the time. --data PATH is a folder of gzip IDX files (Fashion-MNIST/MNIST\n"
    "style), of NPY files (x_train.npy, y_train.npy, x_test.npy, y_test.npy) or of CSV files\n"
    "(train.csv, test.csv), or one CSV file; the default is Debian's Fashion-MNIST.\n"
    "--threads N runs the kernels on N threads (default: every CPU; results do not depend\n"
    "on it). --lr overrides the compiled learning rate of the main optimizer.\n"
    "--checkpoint FILE saves the model and the run's position after every epoch (and every\n"
    "N steps with --checkpoint-every N, and on ^C); --resume FILE continues such a run\n"
    "exactly where it stopped. --telemetry prints, after training, each LNS tensor's scale\n"
    "offset and its saturation and underflow counts.\n";

static int bad_usage(const ExeArgs *a, const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", a->prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see '%s --help')\n", a->prog);
	return 2;
}

/* The flags that take a value, as `lnsc train` lists them. */
static const char VALUE_FLAGS[] = " --data --epochs --lr --seed --threads --metrics --checkpoint "
                                  "--checkpoint-every --resume --steps ";

static int parse_flag(ExeArgs *a, const char *flag, const char *val)
{
	int64_t n;
	if (!strcmp(flag, "--data")) {
		a->data = val;
	} else if (!strcmp(flag, "--epochs")) {
		if (lnsrt_parse_int(val, 1, 100000, &n))
			return bad_usage(a, "--epochs wants a positive integer, not '%s'", val);
		a->epochs = (int)n;
	} else if (!strcmp(flag, "--steps")) {
		if (lnsrt_parse_int(val, 1, INT64_MAX, &n))
			return bad_usage(a, "--steps wants a positive integer, not '%s'", val);
		a->steps = n;
	} else if (!strcmp(flag, "--seed")) {
		if (lnsrt_parse_int(val, 0, INT64_MAX, &n))
			return bad_usage(a, "--seed wants a non-negative integer, not '%s'", val);
		a->seed = (uint64_t)n;
	} else if (!strcmp(flag, "--lr")) {
		if (lnsrt_parse_positive(val, &a->lr))
			return bad_usage(a, "--lr wants a positive number, not '%s'", val);
	} else if (!strcmp(flag, "--threads")) {
		if (lnsrt_parse_int(val, 1, 1024, &n))
			return bad_usage(a, "--threads wants an integer from 1 to 1024, not '%s'",
			                 val);
		a->threads = (int)n;
	} else if (!strcmp(flag, "--checkpoint-every")) {
		if (lnsrt_parse_int(val, 1, INT64_MAX, &n))
			return bad_usage(a, "--checkpoint-every wants a positive integer, not '%s'",
			                 val);
		a->every = n;
	} else if (!strcmp(flag, "--metrics")) {
		a->metrics = val;
	} else if (!strcmp(flag, "--checkpoint")) {
		a->checkpoint = val;
	} else if (!strcmp(flag, "--resume")) {
		a->resume = val;
	} else {
		return bad_usage(a, "unknown option '%s'", flag);
	}
	return 0;
}

/* 0 to train, 2 on bad usage, -1 after printing the help. */
static int parse_args(int argc, char **argv, ExeArgs *a)
{
	const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
	memset(a, 0, sizeof *a);
	a->prog = argc > 0 ? (slash ? slash + 1 : argv[0]) : "trainer";
	a->epochs = 1;
	a->progress = -1;
	a->threads = lnsrt_cpu_count();
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			printf(help, a->prog, lnsc_model.name ? lnsc_model.name : "?",
			       lnsc_model.recipe ? lnsc_model.recipe : "?", lnsc_model.batch);
			return -1;
		}
		if (!strcmp(arg, "--no-progress")) {
			a->progress = 0;
			continue;
		}
		if (!strcmp(arg, "--telemetry")) {
			a->telemetry = 1;
			continue;
		}
		if (arg[0] != '-')
			return bad_usage(a, "unexpected argument '%s'", arg);
		char key[64];
		snprintf(key, sizeof key, " %s ", arg);
		if (!strstr(VALUE_FLAGS, key))
			return bad_usage(a, "unknown option '%s'", arg);
		if (i + 1 >= argc)
			return bad_usage(a, "option '%s' needs a value", arg);
		int rc = parse_flag(a, arg, argv[++i]);
		if (rc)
			return rc;
	}
	return 0;
}

static int run(const ExeArgs *a, LnsrtModel *m, const LnsrtDataset *train, const LnsrtDataset *test)
{
	char err[2048];
	LnsrtTrainer tr;
	if (lnsrt_model_trainer(m, &tr, err, sizeof err)) {
		fprintf(stderr, "%s: error: %s\n", a->prog, err);
		return 2;
	}
	LnsrtTrainOpts to;
	lnsrt_train_opts_init(&to);
	to.epochs = a->epochs;
	to.seed = a->seed;
	to.metrics_path = a->metrics;
	to.progress = a->progress;
	to.out = stdout;
	to.max_steps = a->steps;
	to.checkpoint_path = a->checkpoint;
	to.checkpoint_every = a->every;
	to.resume_path = a->resume;
	const LnsrtModelDesc *d = lnsrt_model_desc(m);
	printf("%s: training %s: recipe %s, batch %d, %d epoch%s, seed %llu, %d thread%s\n",
	       a->prog, d->name ? d->name : "model", d->recipe ? d->recipe : "?", tr.batch,
	       a->epochs, a->epochs > 1 ? "s" : "", (unsigned long long)a->seed, a->threads,
	       a->threads > 1 ? "s" : "");
	fflush(stdout);
	LnsrtEpochResult last;
	int rc = lnsrt_train(&tr, train, test, &to, &last, err, sizeof err);
	if (rc)
		fprintf(stderr, "%s: %s: %s\n", a->prog,
		        rc == LNSRT_INTERRUPTED ? "stopped" : "error", err);
	else if (a->telemetry)
		lnsrt_model_telemetry(m, stdout);
	return rc == 0 ? 0 : rc == LNSRT_BAD_INPUT ? 2 : rc == LNSRT_INTERRUPTED ? 130 : 1;
}

int main(int argc, char **argv)
{
	ExeArgs a;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	char err[2048];
	LnsrtDataset train = {0}, test = {0};
	if (lnsrt_data_open(a.data, &train, &test, err, sizeof err)) {
		fprintf(stderr, "%s: error: %s\n", a.prog, err);
		return 2;
	}
	LnsrtModel *m = lnsrt_model_new(&lnsc_model, a.threads, a.seed, err, sizeof err);
	if (!m) {
		fprintf(stderr, "%s: error: %s\n", a.prog, err);
		rc = 1;
	} else {
		if (a.lr > 0)
			lnsrt_model_set_lr(m, a.lr);
		rc = run(&a, m, &train, &test);
	}
	lnsrt_model_free(m);
	lnsrt_dataset_free(&train);
	lnsrt_dataset_free(&test);
	return rc;
}
