/* cli.c: the subcommands: train, inspect, grad, eval.
 *
 * Each command parses its flags, imports the model (frontend), runs the pass pipeline, and
 * drives a backend: the LLVM backend JIT-compiles the planned graph and runs it through the
 * runtime's model handle (train and grad by default), the reference interpreter runs it node
 * by node (eval by default, and --backend interp). Errors are diagnostics printed once,
 * with the exit code of their status: 2 for bad input or usage, 3 for unsupported models,
 * 1 for runtime failures. Output directories are written file by file through temporary
 * names, so a failed run never leaves a half-written tensor behind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cg.h"
#include "frontend/cli.h"
#include "frontend/fe.h"
#include "frontend/lua/lnsc_lua.h"
#include "passes/passes.h"
#include "runtime/lnsrt.h"

/* ---- option parsing ---- */

enum { MAX_TENSOR_ARGS = 64 };

typedef struct CliArgs {
	const char *model;
	const char *data, *metrics, *out_dir, *labels, *formats, *backend;
	const char *checkpoint, *resume, *policy;
	int64_t checkpoint_every;
	PassOptions po;
	FeOverrides ov; /* from --formats and --policy */
	int epochs, progress, recipe_given, telemetry, threads;
	int64_t batch, steps;
	uint64_t seed;
	int ninputs;
	const char *input_name[MAX_TENSOR_ARGS], *input_file[MAX_TENSOR_ARGS];
} CliArgs;

static int bad_usage(const char *cmd, const char *fmt, const char *arg)
{
	fprintf(stderr, "lnsc %s: ", cmd);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see 'lnsc %s --help')\n", cmd);
	return 2;
}

/* Flags common to the commands; `allowed` lists the ones a command takes. */
static int parse_flag(const char *cmd, CliArgs *a, const char *flag, const char *val)
{
	int64_t n;
	if (!strcmp(flag, "--recipe")) {
		if (!pass_recipe_known(val))
			return bad_usage(cmd, "unknown recipe '%s' (" PASS_RECIPES ")", val);
		a->po.recipe = val;
		a->recipe_given = 1;
	} else if (!strcmp(flag, "--data")) {
		a->data = val;
	} else if (!strcmp(flag, "--epochs")) {
		if (lnsrt_parse_int(val, 1, 100000, &n))
			return bad_usage(cmd, "--epochs wants a positive integer, not '%s'", val);
		a->epochs = (int)n;
	} else if (!strcmp(flag, "--steps")) {
		if (lnsrt_parse_int(val, 1, INT64_MAX, &n))
			return bad_usage(cmd, "--steps wants a positive integer, not '%s'", val);
		a->steps = n;
	} else if (!strcmp(flag, "--batch")) {
		if (lnsrt_parse_int(val, 1, 1 << 20, &n))
			return bad_usage(cmd, "--batch wants a positive integer, not '%s'", val);
		a->batch = n;
	} else if (!strcmp(flag, "--seed")) {
		if (lnsrt_parse_int(val, 0, INT64_MAX, &n))
			return bad_usage(cmd, "--seed wants a non-negative integer, not '%s'", val);
		a->seed = (uint64_t)n;
	} else if (!strcmp(flag, "--lr")) {
		if (lnsrt_parse_positive(val, &a->po.lr))
			return bad_usage(cmd, "--lr wants a positive number, not '%s'", val);
	} else if (!strcmp(flag, "--momentum")) {
		char *end;
		double m = strtod(val, &end);
		if (end == val || *end || m < 0 || m >= 1)
			return bad_usage(cmd, "--momentum wants a number in [0, 1), not '%s'", val);
		a->po.momentum = (float)m;
	} else if (!strcmp(flag, "--optimizer")) {
		if (!strcmp(val, "sgd"))
			a->po.optimizer = PASS_OPT_SGD;
		else if (!strcmp(val, "adam"))
			a->po.optimizer = PASS_OPT_ADAM;
		else
			return bad_usage(cmd, "unknown optimizer '%s' (sgd, adam)", val);
	} else if (!strcmp(flag, "--backend")) {
		if (strcmp(val, "interp") && strcmp(val, "llvm"))
			return bad_usage(cmd, "unknown backend '%s' (llvm, interp)", val);
		a->backend = val;
	} else if (!strcmp(flag, "--threads")) {
		if (lnsrt_parse_int(val, 1, 1024, &n))
			return bad_usage(cmd, "--threads wants a positive integer, not '%s'", val);
		a->threads = (int)n;
	} else if (!strcmp(flag, "--metrics")) {
		a->metrics = val;
	} else if (!strcmp(flag, "--checkpoint")) {
		a->checkpoint = val;
	} else if (!strcmp(flag, "--resume")) {
		a->resume = val;
	} else if (!strcmp(flag, "--checkpoint-every")) {
		if (lnsrt_parse_int(val, 1, INT64_MAX, &n))
			return bad_usage(cmd, "--checkpoint-every wants a positive integer, not '%s'",
					 val);
		a->checkpoint_every = n;
	} else if (!strcmp(flag, "--formats")) {
		a->formats = val;
	} else if (!strcmp(flag, "--policy")) {
		a->policy = val;
	} else if (!strcmp(flag, "-o")) {
		a->out_dir = val;
	} else if (!strcmp(flag, "--labels")) {
		a->labels = val;
	} else if (!strcmp(flag, "--input")) {
		const char *eq = strchr(val, '=');
		if (!eq || eq == val || !eq[1])
			return bad_usage(cmd, "--input wants NAME=FILE.pb, not '%s'", val);
		if (a->ninputs == MAX_TENSOR_ARGS)
			return bad_usage(cmd, "too many --input flags%s", "");
		a->input_name[a->ninputs] = strndup(val, (size_t)(eq - val));
		a->input_file[a->ninputs++] = eq + 1;
	} else {
		return bad_usage(cmd, "unknown option '%s'", flag);
	}
	return 0;
}

static int parse_args(const char *cmd, const char *help, const char *allowed, int argc,
		      char **argv, CliArgs *a)
{
	memset(a, 0, sizeof *a);
	pass_options_default(&a->po);
	a->epochs = 1;
	a->batch = 0;
	a->progress = -1;
	a->backend = strcmp(cmd, "eval") ? "llvm" : "interp"; /* eval: the reference semantics */
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			fputs(help, stdout);
			return -1;
		}
		if (!strcmp(arg, "--no-progress")) {
			a->progress = 0;
			continue;
		}
		if (!strcmp(arg, "--telemetry") && strstr(allowed, " --telemetry ")) {
			a->telemetry = 1;
			continue;
		}
		if (arg[0] != '-') {
			if (a->model)
				return bad_usage(cmd, "unexpected argument '%s'", arg);
			a->model = arg;
			continue;
		}
		char key[64];
		snprintf(key, sizeof key, " %s ", arg);
		if (!strstr(allowed, key))
			return bad_usage(cmd, "unknown option '%s'", arg);
		if (i + 1 >= argc)
			return bad_usage(cmd, "option '%s' needs a value", arg);
		int rc = parse_flag(cmd, a, arg, argv[++i]);
		if (rc)
			return rc;
	}
	if (!a->model)
		return bad_usage(cmd, "missing MODEL.onnx%s", "");
	return 0;
}

/* ---- shared steps ---- */

static int fail(IrCtx *c)
{
	ir_diag_print(c, stderr);
	IrStatus st = ir_error_status(c);
	return st == IR_OK ? 1 : (int)st;
}

int cli_self_check(IrCtx *c)
{
	int rc = 0;
	rc |= ir_ops_check(c);
	rc |= pass_grad_check(c);
	rc |= fe_import_check(c);
	rc |= cg_emit_check(c);
	return rc;
}

static IrGraph *load(IrCtx *c, CliArgs *a, int nshapes, const FeInputShape *shapes)
{
	if (cli_self_check(c))
		return NULL;
	FeOptions fo = {.batch = a->batch ? a->batch : 64, .nshapes = nshapes, .shapes = shapes};
	int ov = a->formats || a->policy;
	if (ov && fe_policy_prepare(c, a->model, &fo, &a->po, a->formats, a->policy, &a->ov))
		return NULL;
	IrGraph *g = fe_onnx_import(c, a->model, &fo);
	if (g && (pass_pipeline(g, &a->po) ||
		  (ov && fe_overrides_check_used(c, &a->ov, a->po.recipe)))) {
		ir_graph_free(g);
		return NULL;
	}
	return g;
}

/* ---- inspect ---- */

static const char inspect_help[] =
	"usage: lnsc inspect MODEL.onnx [--recipe " PASS_RECIPES_BAR "] [--batch N] [--formats FILE]\n"
	"                    [--policy FILE.lua]\n"
	"Prints the training graph (each tensor with its format) and the bytes of model state\n"
	"per parameter (storage + optimizer state). --policy runs a Lua script that returns\n"
	"function(tensor) -> format for each tensor (docs/lua.md).\n";

static void print_state_table(FILE *f, const IrGraph *g)
{
	size_t total = 0;
	int64_t nparams = 0;
	fprintf(f, "\n# model state per parameter\n");
	fprintf(f, "# %-32s %-14s %-22s %12s %10s\n", "parameter", "format", "shape", "bytes",
		"B/param");
	for (int i = 0; i < g->params.n; i++) {
		IrValue *p = g->params.v[i];
		size_t bytes = ir_type_bytes(p->type);
		for (int j = 0; j < g->values.n; j++) {
			IrValue *s = IR_VALUE(g, j);
			if (s->role == IR_ROLE_STATE && s->param == p)
				bytes += ir_type_bytes(s->type);
		}
		char fmt[64], shape[128];
		ir_type_str(p->type, 0, shape, sizeof shape);
		char *br = strchr(shape, '[');
		snprintf(fmt, sizeof fmt, "%.*s", (int)(br - shape), shape);
		fprintf(f, "# %-32s %-14s %-22s %12zu %10.2f\n", p->name, fmt, br, bytes,
			(double)bytes / (double)(p->type->numel ? p->type->numel : 1));
		total += bytes;
		nparams += p->type->numel;
	}
	fprintf(f, "# total: %lld parameters, %zu bytes of state (%.2f B/param); plan: state blob "
		"%zu B, scratch arena %zu B\n",
		(long long)nparams, total, nparams ? (double)total / (double)nparams : 0.0,
		g->plan->state_bytes, g->plan->scratch_bytes);
}

void cli_inspect_print(FILE *f, const IrGraph *g)
{
	ir_print(f, g);
	print_state_table(f, g);
}

static int cmd_inspect(int argc, char **argv)
{
	CliArgs a;
	int rc = parse_args("inspect", inspect_help, " --recipe --batch --formats --policy ", argc,
			    argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	IrCtx *c = ir_ctx_new();
	IrGraph *g = load(c, &a, 0, NULL);
	if (!g) {
		rc = fail(c);
		ir_ctx_free(c);
		fe_overrides_free(&a.ov);
		return rc;
	}
	cli_inspect_print(stdout, g);
	ir_graph_free(g);
	ir_ctx_free(c);
	fe_overrides_free(&a.ov);
	return 0;
}

/* ---- train ---- */

static const char train_help[] =
	"usage: lnsc train MODEL.onnx [--data fashion-mnist|DIR] [--recipe " PASS_RECIPES_BAR "]\n"
	"                  [--epochs N] [--batch N] [--lr X] [--seed S] [--backend llvm|interp]\n"
	"                  [--threads N] [--metrics FILE.csv] [--optimizer sgd|adam]\n"
	"                  [--momentum M] [--formats FILE] [--policy FILE.lua] [--steps N]\n"
	"                  [--no-progress] [--telemetry]\n"
	"                  [--checkpoint FILE] [--checkpoint-every N] [--resume FILE]\n"
	"Trains on the dataset's training split; after each epoch prints the mean training loss,\n"
	"the test loss and accuracy, and the time. --data DIR reads the four gzip IDX files of a\n"
	"Fashion-MNIST/MNIST-style folder; the default is Debian's Fashion-MNIST.\n"
	"--backend llvm (the default) compiles the training step for this machine first (JIT) and\n"
	"runs it on --threads threads (default: every core); interp runs the reference\n"
	"interpreter.\n"
	"--telemetry prints, after training, each LNS tensor's scale offset and its saturation\n"
	"and underflow counts. --checkpoint saves the whole training state (atomically) after\n"
	"each epoch, every --checkpoint-every steps, and on Ctrl-C; --resume continues a run\n"
	"where its checkpoint stopped, ending with the same weights as an uninterrupted run.\n";

typedef struct InterpTrainer {
	IrInterp *ip;
	IrGraph *g;
	IrValue *input, *labels, *logits;
	float *logits_buf;
} InterpTrainer;

static int it_train_step(void *impl, const float *x, const int64_t *y, float *loss, char *err,
			 size_t errn)
{
	InterpTrainer *t = impl;
	ir_interp_bind(t->ip, t->input, x);
	ir_interp_bind(t->ip, t->labels, y);
	if (ir_interp_run(t->ip, IR_MODE_TRAIN) || ir_interp_read(t->ip, t->g->loss, loss)) {
		snprintf(err, errn, "%s", ir_interp_error(t->ip));
		return -1;
	}
	return 0;
}

static int it_eval_step(void *impl, const float *x, float *logits, char *err, size_t errn)
{
	InterpTrainer *t = impl;
	ir_interp_bind(t->ip, t->input, x);
	ir_interp_bind(t->ip, t->labels, NULL);
	if (ir_interp_run(t->ip, IR_MODE_EVAL) || ir_interp_read(t->ip, t->logits, logits)) {
		snprintf(err, errn, "%s", ir_interp_error(t->ip));
		return -1;
	}
	return 0;
}

static int train_checks(IrCtx *c, IrGraph *g, const char *model)
{
	if (g->inputs.n != 1) {
		ir_error(c, IR_ERR_INPUT, "%s: training on a dataset needs exactly one data input, "
			 "the model has %d", model, g->inputs.n);
		return -1;
	}
	IrValue *in = g->inputs.v[0];
	if (in->type->dt != IR_DT_F32) {
		ir_error(c, IR_ERR_INPUT, "%s: input '%s' is %s, image datasets need f32", model,
			 in->name, ir_dtype_name(in->type->dt));
		return -1;
	}
	return 0;
}

/* Per-tensor LNS telemetry: scale offset in force, saturated and underflowed elements. */
static void print_telemetry(IrGraph *g, IrInterp *ip)
{
	printf("\n# LNS telemetry after %u steps\n", ir_interp_step(ip));
	printf("# %-40s %-8s %6s %14s %10s %14s %10s\n", "tensor", "format", "k", "saturated", "sat %",
	       "underflowed", "unf %");
	for (int i = 0; i < g->values.n; i++) {
		IrValue *v = IR_VALUE(g, i);
		LnsScaleState *st = v->type->dt == IR_DT_LNS ? ir_interp_scale(ip, v) : NULL;
		if (!st)
			continue;
		char f[32];
		double tot = st->n_total ? (double)st->n_total : 1.0;
		printf("# %-40s %-8s %6d %14llu %10.4f %14llu %10.4f\n", v->name,
		       lns_format_str(v->type->fmt, f, sizeof f), st->k, (unsigned long long)st->n_sat,
		       100.0 * (double)st->n_sat / tot, (unsigned long long)st->n_unf,
		       100.0 * (double)st->n_unf / tot);
	}
}

/* ---- the LLVM backend: the planned graph JIT-compiled for this machine ---- */

typedef struct Jitted {
	CgJit *jit;
	const LnsrtModelDesc *desc; /* lives in the JIT's memory */
	double seconds;
} Jitted;

static int jit_compile(IrCtx *c, IrGraph *g, const char *recipe, int eval_dropout, Jitted *out)
{
	double t0 = lnsrt_now();
	memset(out, 0, sizeof *out);
	if (!(out->jit = cg_jit_new(c, NULL)))
		return -1;
	CgCtx *cg = cg_jit_ctx(out->jit, "lnsc_model");
	if (!cg)
		return -1;
	cg->recipe = recipe;
	if (cg_emit_model(cg, g, "lnsc_model", eval_dropout)) {
		cg_ctx_free(cg);
		return -1;
	}
	if (cg_jit_add(out->jit, cg))
		return -1;
	out->desc = cg_jit_lookup(out->jit, "lnsc_model");
	out->seconds = lnsrt_now() - t0;
	return out->desc ? 0 : -1;
}

/* A trainer over the chosen backend: the JIT-compiled model or the interpreter. */
typedef struct Backend {
	Jitted jt;
	LnsrtModel *m;
	IrInterp *ip;
	InterpTrainer it;
	LnsrtTrainer tr;
	int threads;
} Backend;

static int backend_trainer(IrCtx *c, IrGraph *g, const CliArgs *a, Backend *b)
{
	char err[1024];
	if (b->jt.desc) {
		b->threads = a->threads ? a->threads : lnsrt_cpu_count();
		b->m = lnsrt_model_new(b->jt.desc, b->threads, a->seed, err, sizeof err);
		if (!b->m || lnsrt_model_trainer(b->m, &b->tr, err, sizeof err)) {
			ir_error(c, IR_ERR_RUNTIME, "%s", err);
			return -1;
		}
		return 0;
	}
	IrValue *in = g->inputs.v[0], *logits = g->outputs.v[0];
	if (!(b->ip = ir_interp_new(g, a->seed)))
		return -1;
	b->threads = 1;
	b->it = (InterpTrainer){.ip = b->ip, .g = g, .input = in, .labels = g->labels,
				.logits = logits};
	b->tr = (LnsrtTrainer){
		.impl = &b->it,
		.batch = (int)in->type->dims[0],
		.example_size = in->type->numel / in->type->dims[0],
		.nclasses = (int)logits->type->dims[1],
		.train_step = it_train_step,
		.eval_step = it_eval_step,
	};
	return 0;
}

static void backend_free(Backend *b)
{
	lnsrt_model_free(b->m);
	cg_jit_free(b->jt.jit);
	ir_interp_free(b->ip);
}

/* What the run is built from, as checkpoints record it for lnsc.resume (frontend/lua). */
static char *trainer_meta(const CliArgs *a, int batch, int threads)
{
	FeTrainerSpec s;
	fe_spec_init(&s);
	fe_spec_set_model(&s, a->model);
	snprintf(s.recipe, sizeof s.recipe, "%s", a->po.recipe);
	snprintf(s.backend, sizeof s.backend, "%s", a->backend);
	s.batch = batch;
	s.threads = threads;
	s.seed = a->seed;
	s.lr = a->po.lr;
	s.momentum = a->po.momentum;
	s.adam = a->po.optimizer == PASS_OPT_ADAM;
	fe_overrides_copy(&s.ov, &a->ov);
	char *meta = fe_spec_meta(&s);
	fe_spec_free(&s);
	return meta;
}

static int run_training(IrCtx *c, IrGraph *g, const CliArgs *a)
{
	LnsrtDataset train = {0}, test = {0};
	char err[1024];
	Backend b;
	memset(&b, 0, sizeof b);
	int rc = 1;
	if (!strcmp(a->backend, "llvm")) {
		if (jit_compile(c, g, a->po.recipe, 0, &b.jt)) {
			rc = fail(c);
			goto out;
		}
		printf("compiled in %.2f s\n", b.jt.seconds);
		fflush(stdout);
	}
	if (lnsrt_data_open(a->data, &train, &test, err, sizeof err)) {
		fprintf(stderr, "lnsc: error: %s\n", err);
		rc = 2;
		goto out;
	}
	if (backend_trainer(c, g, a, &b)) {
		rc = fail(c);
		goto out;
	}
	LnsrtTrainOpts to = {.epochs = a->epochs, .seed = a->seed, .metrics_path = a->metrics,
			     .progress = a->progress, .out = stdout, .max_steps = a->steps,
			     .checkpoint_path = a->checkpoint, .checkpoint_every = a->checkpoint_every,
			     .resume_path = a->resume};
	char *meta = a->checkpoint ? trainer_meta(a, b.tr.batch, b.threads) : NULL;
	to.checkpoint_meta = meta;
	LnsrtEpochResult last;
	printf("lnsc: training %s: recipe %s, backend %s, %d thread%s, batch %d, %d epoch%s, "
	       "seed %llu\n",
	       a->model, a->po.recipe, a->backend, b.threads, b.threads > 1 ? "s" : "", b.tr.batch,
	       a->epochs, a->epochs > 1 ? "s" : "", (unsigned long long)a->seed);
	fflush(stdout);
	rc = lnsrt_train(&b.tr, &train, &test, &to, &last, err, sizeof err);
	free(meta);
	if (rc)
		fprintf(stderr, "lnsc: error: %s\n", err);
	else if (a->telemetry && b.m)
		lnsrt_model_telemetry(b.m, stdout);
	else if (a->telemetry)
		print_telemetry(g, b.ip);
	rc = rc == LNSRT_INTERRUPTED || rc == LNSRT_BAD_INPUT ? rc : rc ? 1 : 0;
out:
	backend_free(&b);
	lnsrt_dataset_free(&train);
	lnsrt_dataset_free(&test);
	return rc;
}

static int cmd_train(int argc, char **argv)
{
	CliArgs a;
	int rc = parse_args("train", train_help,
			    " --data --recipe --epochs --batch --lr --seed --backend --threads --metrics "
			    "--optimizer --momentum --formats --policy --steps --telemetry --checkpoint "
			    "--checkpoint-every --resume ",
			    argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	IrCtx *c = ir_ctx_new();
	IrGraph *g = load(c, &a, 0, NULL);
	if (!g || train_checks(c, g, a.model)) {
		rc = fail(c);
	} else {
		rc = run_training(c, g, &a);
	}
	ir_graph_free(g);
	ir_ctx_free(c);
	fe_overrides_free(&a.ov);
	return rc;
}

/* ---- grad and eval: tensors in, tensors out ---- */

static const char grad_help[] =
	"usage: lnsc grad MODEL.onnx --input NAME=FILE.pb [...] --labels FILE.pb -o DIR\n"
	"                 [--recipe " PASS_RECIPES_BAR "] [--backend llvm|interp] [--seed S]\n"
	"One forward/backward on the given batch (ONNX TensorProto files). The loss is softmax\n"
	"cross-entropy on the first output for int64 labels [N], MSE for float labels of the\n"
	"output's shape. Writes DIR/loss.pb, each graph output, grad_<initializer>.pb for every\n"
	"parameter, state_<initializer>.pb for every running statistic (BatchNormalization's\n"
	"running mean and variance after the step), and DIR/manifest.json. The default backend\n"
	"is llvm (compiled for this machine); interp is the reference interpreter.\n";

static const char eval_help[] =
	"usage: lnsc eval MODEL.onnx --input NAME=FILE.pb [...] -o DIR [--recipe " PASS_RECIPES_BAR "]\n"
	"                 [--backend interp|llvm] [--seed S]\n"
	"Forward pass with ONNX inference semantics; writes each graph output as DIR/<name>.pb\n"
	"and DIR/manifest.json. The recipe defaults to fp32 here (exact ONNX semantics);\n"
	"--recipe lns-madam runs the forward pass with the recipe's LNS activations.\n";

typedef struct Loaded {
	const char *name;
	const IrType *type;
	void *data;
} Loaded;

static const char *sanitize(IrArena *ar, const char *prefix, const char *name)
{
	char *s = ir_arena_printf(ar, "%s%s.pb", prefix, name);
	for (char *p = s + strlen(prefix); p < s + strlen(s) - 3; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '.' || *p == '-'))
			*p = '_';
	return s;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static int make_dir(IrCtx *c, const char *dir)
{
	if (mkdir(dir, 0777) && errno != EEXIST) {
		ir_error(c, IR_ERR_INPUT, "%s: cannot create directory: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* One step of either backend on given tensors, and its results read back. */
typedef struct Runner {
	IrGraph *g;
	IrInterp *ip; /* interp */
	Jitted jt;    /* llvm */
	LnsrtModel *m;
	const void **io;
} Runner;

/* A value after an LLVM step, from the model's blobs: LNS decoded with the scale offset the
 * step used (the state's for stored tensors, the value's k slot in scratch otherwise). */
static int llvm_read(Runner *r, const IrValue *v, void *out)
{
	const IrPlan *pl = r->g->plan;
	uint8_t *base = v->loc.area == IR_AREA_STATE ? lnsrt_model_state(r->m)
			: v->loc.area == IR_AREA_SCRATCH ? lnsrt_model_scratch(r->m) : NULL;
	if (!base) { /* a constant the generated code never copies: its data as it is */
		if (!v->init || !v->init_type || v->init_type->dt != v->type->dt)
			return -1;
		memcpy(out, v->init, ir_type_bytes(v->type));
		return 0;
	}
	const uint8_t *d = base + v->loc.offset;
	if (v->type->dt != IR_DT_LNS) {
		memcpy(out, d, ir_type_bytes(v->type));
		return 0;
	}
	int32_t k;
	if (v->loc.area == IR_AREA_STATE)
		k = ((const LnsScaleState *)((uint8_t *)lnsrt_model_state(r->m) + v->loc.scale_off))->k;
	else
		memcpy(&k, (uint8_t *)lnsrt_model_scratch(r->m) + pl->kslot_off + 4 * (size_t)v->id, 4);
	lns_decode_tensor(v->type->fmt, k, d, out, (size_t)v->type->numel);
	return 0;
}

/* Read a value after the step and write it as DIR/file (decoded to f32 for LNS). */
static int write_value(IrCtx *c, Runner *r, IrArena *ar, const char *dir, const char *file,
		       const IrValue *v, const char *name)
{
	const IrType *t = v->type->dt == IR_DT_LNS ? ir_type_f32_like(c, v->type) : v->type;
	void *buf = ir_arena_alloc(ar, ir_type_bytes(t) + 1);
	if (r->ip ? ir_interp_read(r->ip, v, buf) : llvm_read(r, v, buf)) {
		ir_error(c, IR_ERR_RUNTIME, "cannot read '%s' after the step: %s", v->name,
			 r->ip ? ir_interp_error(r->ip) : "not in the state or scratch");
		return -1;
	}
	const char *path = ir_arena_printf(ar, "%s/%s", dir, file);
	return fe_tensor_write(c, path, name, t, buf);
}

/* A running statistic (BatchNormalization's running mean or variance): state of no
 * parameter, which the step's Assign moves; lnsc grad writes it after the step. */
static int is_running_stat(const IrValue *v)
{
	return v->role == IR_ROLE_STATE && !v->param;
}

static int write_manifest(IrCtx *c, IrGraph *g, IrArena *ar, const char *dir, int with_grads)
{
	const char *path = ir_arena_printf(ar, "%s/manifest.json", dir);
	const char *tmp = ir_arena_printf(ar, "%s/.manifest.json.tmp", dir);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		ir_error(c, IR_ERR_RUNTIME, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	fprintf(f, "{\n");
	if (with_grads)
		fprintf(f, "  \"loss\": \"loss.pb\",\n");
	fprintf(f, "  \"outputs\": {");
	for (int i = 0; i < g->outputs.n; i++) {
		IrValue *v = g->outputs.v[i];
		fprintf(f, "%s\n    ", i ? "," : "");
		json_str(f, v->name);
		fprintf(f, ": ");
		json_str(f, sanitize(ar, "", v->name));
	}
	fprintf(f, "\n  }");
	if (with_grads) {
		fprintf(f, ",\n  \"gradients\": {");
		int k = 0;
		for (int i = 0; i < g->params.n; i++) {
			IrValue *p = g->params.v[i];
			if (!p->grad)
				continue;
			fprintf(f, "%s\n    ", k++ ? "," : "");
			json_str(f, p->name);
			fprintf(f, ": ");
			json_str(f, sanitize(ar, "grad_", p->name));
		}
		fprintf(f, "\n  },\n  \"state\": {");
		k = 0;
		for (int i = 0; i < g->values.n; i++) {
			IrValue *v = IR_VALUE(g, i);
			if (!is_running_stat(v))
				continue;
			fprintf(f, "%s\n    ", k++ ? "," : "");
			json_str(f, v->name);
			fprintf(f, ": ");
			json_str(f, sanitize(ar, "state_", v->name));
		}
		fprintf(f, "\n  }");
	}
	fprintf(f, "\n}\n");
	int bad = ferror(f);
	if (fclose(f) || bad || rename(tmp, path)) {
		ir_error(c, IR_ERR_RUNTIME, "%s: write failed: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int write_results(IrCtx *c, IrGraph *g, Runner *r, const char *dir, int with_grads)
{
	IrArena *ar = ir_arena_new();
	int rc = make_dir(c, dir);
	for (int i = 0; !rc && i < g->outputs.n; i++) {
		IrValue *v = g->outputs.v[i];
		rc = write_value(c, r, ar, dir, sanitize(ar, "", v->name), v, v->name);
	}
	if (with_grads && !rc)
		rc = write_value(c, r, ar, dir, "loss.pb", g->loss, "loss");
	for (int i = 0; with_grads && !rc && i < g->params.n; i++) {
		IrValue *p = g->params.v[i];
		if (p->grad)
			rc = write_value(c, r, ar, dir, sanitize(ar, "grad_", p->name), p->grad,
					 p->name);
	}
	for (int i = 0; with_grads && !rc && i < g->values.n; i++) {
		IrValue *v = IR_VALUE(g, i);
		if (is_running_stat(v))
			rc = write_value(c, r, ar, dir, sanitize(ar, "state_", v->name), v, v->name);
	}
	if (!rc)
		rc = write_manifest(c, g, ar, dir, with_grads);
	ir_arena_free(ar);
	return rc;
}

static int read_tensors(IrCtx *c, IrArena *ar, const CliArgs *a, Loaded *in, FeInputShape *shapes)
{
	for (int i = 0; i < a->ninputs; i++) {
		const char *fname;
		if (fe_tensor_read(c, ar, a->input_file[i], &fname, &in[i].type, &in[i].data))
			return -1;
		in[i].name = a->input_name[i];
		shapes[i].name = a->input_name[i];
		shapes[i].rank = in[i].type->rank;
		memcpy(shapes[i].dims, in[i].type->dims, sizeof shapes[i].dims);
		/* the data too: an input read as a constant (a Reshape shape) is one */
		shapes[i].value.type = in[i].type;
		shapes[i].value.data = in[i].data;
	}
	return 0;
}

/* An --input file could not be read. If the model is one lnsc does not support whatever the
 * inputs (a sequence or optional input has no tensor file to read), that is the error to
 * report (exit 3) instead. */
static void prefer_unsupported(IrCtx *c, const char *model)
{
	IrCtx *mc = ir_ctx_new();
	if (fe_onnx_check(mc, model) && ir_error_status(mc) == IR_ERR_UNSUPPORTED) {
		char *text = strdup(ir_diag_text(mc));
		if (!text)
			abort();
		ir_diag_clear(c);
		char *save = NULL;
		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
			ir_error(c, IR_ERR_UNSUPPORTED, "%s", l);
		free(text);
	}
	ir_ctx_free(mc);
}

/* Whether v is a graph input the importer made CONST because its data was given. */
static int is_const_input(const IrGraph *g, const IrValue *v)
{
	for (int i = 0; v && i < g->const_inputs.n; i++)
		if (g->const_inputs.v[i] == v)
			return 1;
	return 0;
}

/* data[i] gets the tensor given for g->inputs[i]. */
static int match_inputs(IrCtx *c, IrGraph *g, const Loaded *in, int n, const void **data)
{
	for (int i = 0; i < g->inputs.n; i++) {
		IrValue *v = g->inputs.v[i];
		int found = 0;
		for (int j = 0; j < n; j++) {
			if (strcmp(in[j].name, v->name))
				continue;
			if (in[j].type != v->type) {
				char x[128], y[128];
				ir_error(c, IR_ERR_INPUT, "--input %s: the tensor is %s, the model "
					 "needs %s", v->name, ir_type_str(in[j].type, 0, x, sizeof x),
					 ir_type_str(v->type, 0, y, sizeof y));
				return -1;
			}
			data[i] = in[j].data;
			found = 1;
		}
		if (!found) {
			ir_error(c, IR_ERR_INPUT, "no --input given for the model input '%s'", v->name);
			return -1;
		}
	}
	for (int j = 0; j < n; j++) {
		const IrValue *v = ir_graph_value(g, in[j].name);
		if (!v || (v->role != IR_ROLE_INPUT && !is_const_input(g, v))) {
			ir_error(c, IR_ERR_INPUT, "--input %s: the model has no data input of that "
				 "name", in[j].name);
			return -1;
		}
	}
	return 0;
}

static int run_interp(IrCtx *c, Runner *r, const CliArgs *a, int with_grads)
{
	IrGraph *g = r->g;
	if (!(r->ip = ir_interp_new(g, a->seed)))
		return -1;
	ir_interp_set_onnx_semantics(r->ip, !with_grads);
	for (int i = 0; i < g->inputs.n; i++)
		ir_interp_bind(r->ip, g->inputs.v[i], r->io[i]);
	if (with_grads)
		ir_interp_bind(r->ip, g->labels, r->io[g->inputs.n]);
	if (ir_interp_run(r->ip, with_grads ? IR_MODE_TRAIN : IR_MODE_EVAL)) {
		ir_error(c, IR_ERR_RUNTIME, "%s", ir_interp_error(r->ip));
		return -1;
	}
	return 0;
}

/* The gradients must reach memory: fusion (the Madam update in a weight-gradient GEMM) would
 * keep them in registers, so the marks are dropped (the fused order stays valid). */
static void unfuse(IrGraph *g)
{
	for (int i = 0; i < g->nodes.n; i++) {
		IR_NODE(g, i)->epilogue = NULL;
		IR_NODE(g, i)->fused = 0;
	}
}

static int run_llvm(IrCtx *c, Runner *r, const CliArgs *a, int with_grads)
{
	char err[1024];
	if (with_grads)
		unfuse(r->g);
	if (jit_compile(c, r->g, a->po.recipe, !with_grads, &r->jt))
		return -1;
	if (!(r->m = lnsrt_model_new(r->jt.desc, 1, a->seed, err, sizeof err)) ||
	    lnsrt_model_run(r->m, with_grads, r->io, err, sizeof err)) {
		ir_error(c, IR_ERR_RUNTIME, "%s", err);
		return -1;
	}
	return 0;
}

static int run_tensors(int argc, char **argv, int with_grads)
{
	CliArgs a;
	const char *cmd = with_grads ? "grad" : "eval";
	int rc = parse_args(cmd, with_grads ? grad_help : eval_help,
			    with_grads ? " --input --labels -o --recipe --backend --seed "
				       : " --input -o --recipe --backend --seed ",
			    argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (!a.out_dir)
		return bad_usage(cmd, "missing -o DIR%s", "");
	if (with_grads && !a.labels)
		return bad_usage(cmd, "missing --labels FILE.pb%s", "");
	IrCtx *c = ir_ctx_new();
	IrArena *ar = ir_arena_new();
	Loaded in[MAX_TENSOR_ARGS + 1];
	FeInputShape shapes[MAX_TENSOR_ARGS];
	IrGraph *g = NULL;
	Runner r;
	memset(&r, 0, sizeof r);
	Loaded lab = {0};
	a.po.train = with_grads;
	if (!with_grads && !a.recipe_given)
		a.po.recipe = "fp32"; /* eval means ONNX inference semantics unless asked */
	if (read_tensors(c, ar, &a, in, shapes)) {
		prefer_unsupported(c, a.model);
		goto out;
	}
	if (with_grads) {
		const char *lname;
		if (fe_tensor_read(c, ar, a.labels, &lname, &lab.type, &lab.data))
			goto out;
		a.po.loss = lab.type->dt == IR_DT_I64 ? PASS_LOSS_XENT : PASS_LOSS_MSE;
	}
	if (!(g = load(c, &a, a.ninputs, shapes))) {
		/* a model lnsc cannot run at all says so first, before complaints about inputs */
		if (ir_error_status(c) == IR_ERR_INPUT)
			prefer_unsupported(c, a.model);
		goto out;
	}
	if (with_grads && lab.type != g->labels->type) {
		char x[128], y[128];
		ir_error(c, IR_ERR_INPUT, "--labels: the tensor is %s, the loss needs %s",
			 ir_type_str(lab.type, 0, x, sizeof x), ir_type_str(g->labels->type, 0, y, sizeof y));
		goto out;
	}
	r.g = g;
	r.io = calloc((size_t)g->inputs.n + 2, sizeof *r.io);
	if (!r.io)
		abort();
	if (match_inputs(c, g, in, a.ninputs, r.io))
		goto out;
	if (with_grads)
		r.io[g->inputs.n] = lab.data; /* IO slots: the inputs, then the labels */
	if (!strcmp(a.backend, "llvm") ? run_llvm(c, &r, &a, with_grads) : run_interp(c, &r, &a, with_grads))
		goto out;
	write_results(c, g, &r, a.out_dir, with_grads);
out:
	rc = ir_error_count(c) ? fail(c) : 0;
	ir_interp_free(r.ip);
	lnsrt_model_free(r.m);
	cg_jit_free(r.jt.jit);
	free(r.io);
	ir_graph_free(g);
	ir_arena_free(ar);
	ir_ctx_free(c);
	for (int i = 0; i < a.ninputs; i++)
		free((char *)a.input_name[i]);
	return rc;
}

static int cmd_grad(int argc, char **argv)
{
	return run_tensors(argc, argv, 1);
}

static int cmd_eval(int argc, char **argv)
{
	return run_tensors(argc, argv, 0);
}

/* ---- ops: the supported-ops table (docs/ops.md is this output) ---- */

static const char *lns_kernel(IrOp op)
{
	unsigned f = ir_op_info[op].flags;
	if (op == IR_OP_MADAM)
		return "integer steps on the weight codes";
	if (op == IR_OP_WEIGHT_VIEW)
		return "code to code (rounding shift)";
	if (f & IR_OPF_RAW)
		return "decode, update, re-encode";
	if (f & IR_OPF_CODE_EXACT)
		return "code-domain exact (LNS.md 4)";
	if (f & IR_OPF_MOVE)
		return "moves codes";
	if (op == IR_OP_CONSTANT)
		return "-";
	return "decode, fp32, encode";
}

static int cmd_ops(int argc, char **argv)
{
	(void)argv;
	if (argc > 1) {
		fputs("usage: lnsc ops\nPrints the supported-ops table (Markdown).\n", stdout);
		return 0;
	}
	printf("# Supported ops\n\n"
	       "Generated by `lnsc ops` from the op table (`ir/ops.def`) and the per-stage hook\n"
	       "tables; a test checks this file is current. Opsets: ONNX default domain, 7 to 17.\n"
	       "forward: the reference interpreter has a kernel; gradient: autodiff has a rule;\n"
	       "LNS kernel: how the op treats LNS-typed operands (LNS.md section 4).\n\n");
	printf("| op | opsets | forward | gradient | LNS kernel |\n|---|---|---|---|---|\n");
	for (int i = 0; i < IR_OP_COUNT; i++) {
		if (!(ir_op_info[i].flags & IR_OPF_ONNX))
			continue;
		int folded = ir_op_info[i].max_in == 0;
		printf("| %s | %s | %s | %s | %s |\n", ir_op_info[i].name,
		       fe_import_table[i].fn ? "7-17" : "-",
		       folded ? "folded at import" : (ir_interp_table[i] ? "yes" : "no"),
		       (ir_op_info[i].flags & IR_OPF_NOGRAD) ? "none (constant)"
							: (pass_grad_table[i] ? "yes" : "no"),
		       lns_kernel((IrOp)i));
	}
	printf("\n## Internal ops\n\nBuilt by the passes (losses, gradients, LNS, optimizers).\n\n"
	       "| op | forward | LNS kernel |\n|---|---|---|\n");
	for (int i = 0; i < IR_OP_COUNT; i++)
		if (!(ir_op_info[i].flags & IR_OPF_ONNX))
			printf("| %s | %s | %s |\n", ir_op_info[i].name,
			       ir_interp_table[i] ? "yes" : "no", lns_kernel((IrOp)i));
	return 0;
}

const CliCommand cli_commands[] = {
	{"ops", cmd_ops},
	{"train", cmd_train},
	{"inspect", cmd_inspect},
	{"grad", cmd_grad},
	{"eval", cmd_eval},
	{"compile", cli_compile},
	{"export", cli_export},
	{"run", fe_lua_run},
	{NULL, NULL},
};
