/* compile.c: `lnsc compile`: the model's training code as an executable, a static library
 * with a C header, an object file, assembly or LLVM IR, for the host or a cross target.
 *
 * The model is emitted by codegen into one object. An executable or library also needs the
 * runtime, which is compiled from its sources for the target with clang-19 (so a cross
 * target gets a cross runtime) and linked with lld. Everything is built in a temporary folder
 * and moved into place at the end, so a failed compile leaves no partial output.
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cg.h"
#include "frontend/cli.h"
#include "frontend/fe.h"
#include "frontend/lua/lnsc_lua.h"
#include "passes/passes.h"
#include "runtime/lnsrt.h"

#ifndef LNSC_SOURCE_DIR
#error "LNSC_SOURCE_DIR must be defined by the build"
#endif
#ifndef LNSC_GEN_DIR
#error "LNSC_GEN_DIR must be defined by the build"
#endif

typedef enum { EMIT_EXE, EMIT_LIB, EMIT_OBJ, EMIT_LLVM, EMIT_ASM } EmitKind;

typedef struct CompileArgs {
	const char *model, *out, *triple, *cpu, *name, *formats, *policy;
	EmitKind emit;
	int64_t batch;
	int keep;
	PassOptions po;
} CompileArgs;

static const char compile_help[] =
	"usage: lnsc compile MODEL.onnx -o OUT [--emit exe|lib|obj|llvm|asm] [--target TRIPLE]\n"
	"                    [--cpu CPU] [--batch N] [--recipe " PASS_RECIPES_BAR "] [--formats FILE]\n"
	"                    [--policy FILE.lua] [--name PREFIX] [--keep-temps]\n"
	"exe (default): a standalone training program taking the same flags as `lnsc train`.\n"
	"lib: OUT.a, OUT.h (create, train step, eval step, save, load, free) and OUT_example.c.\n"
	"obj, llvm, asm: the model's code alone. --target aarch64-linux-gnu cross-compiles (the\n"
	"model and the runtime) with clang-19 and lld; --cpu picks the CPU (x86-64-v3: AVX2,\n"
	"x86-64-v4: AVX-512; default: the host's, or generic for a cross target).\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "lnsc compile: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see 'lnsc compile --help')\n");
	return 2;
}

static int parse_emit(const char *s, EmitKind *k)
{
	static const char *const names[] = {"exe", "lib", "obj", "llvm", "asm"};
	for (int i = 0; i < 5; i++)
		if (!strcmp(s, names[i])) {
			*k = (EmitKind)i;
			return 0;
		}
	return -1;
}

/* A C identifier from the output's base name ("build/libmlp.a" -> "mlp"). */
static void default_name(const char *out, char *buf, size_t n)
{
	char *tmp = strdup(out);
	const char *base = basename(tmp);
	if (!strncmp(base, "lib", 3) && base[3])
		base += 3;
	size_t k = 0;
	for (const char *p = base; *p && *p != '.' && k + 1 < n; p++)
		buf[k++] = (char)((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
					  (*p >= '0' && *p <= '9') ? *p : '_');
	buf[k] = 0;
	if (!k || (buf[0] >= '0' && buf[0] <= '9'))
		snprintf(buf, n, "model");
	free(tmp);
}

static int parse(int argc, char **argv, CompileArgs *a)
{
	memset(a, 0, sizeof *a);
	pass_options_default(&a->po);
	a->emit = EMIT_EXE;
	a->batch = 64;
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i];
		if (!strcmp(f, "-h") || !strcmp(f, "--help")) {
			fputs(compile_help, stdout);
			return -1;
		}
		if (!strcmp(f, "--keep-temps")) {
			a->keep = 1;
			continue;
		}
		if (f[0] != '-') {
			if (a->model)
				return usage_error("unexpected argument '%s'", f);
			a->model = f;
			continue;
		}
		if (i + 1 >= argc)
			return usage_error("option '%s' needs a value", f);
		const char *v = argv[++i];
		if (!strcmp(f, "-o"))
			a->out = v;
		else if (!strcmp(f, "--emit")) {
			if (parse_emit(v, &a->emit))
				return usage_error("--emit wants exe, lib, obj, llvm or asm, not '%s'", v);
		} else if (!strcmp(f, "--target"))
			a->triple = v;
		else if (!strcmp(f, "--cpu"))
			a->cpu = v;
		else if (!strcmp(f, "--name"))
			a->name = v;
		else if (!strcmp(f, "--formats"))
			a->formats = v;
		else if (!strcmp(f, "--policy"))
			a->policy = v;
		else if (!strcmp(f, "--recipe")) {
			if (!pass_recipe_known(v))
				return usage_error("unknown recipe '%s' (" PASS_RECIPES ")", v);
			a->po.recipe = v;
		} else if (!strcmp(f, "--batch")) {
			if (lnsrt_parse_int(v, 1, 1 << 20, &a->batch))
				return usage_error("--batch wants a positive integer, not '%s'", v);
		} else
			return usage_error("unknown option '%s'", f);
	}
	if (!a->model)
		return usage_error("missing MODEL.onnx%s", "");
	if (!a->out)
		return usage_error("missing -o OUT%s", "");
	return 0;
}

/* Runs argv (NULL-terminated) and waits; 0 if it exited 0. */
static int run(IrCtx *c, char *const *argv)
{
	pid_t pid = fork();
	if (pid < 0) {
		ir_error(c, IR_ERR_RUNTIME, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "lnsc: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	ir_error(c, IR_ERR_RUNTIME, "%s failed (exit %d); rerun with --keep-temps to inspect", argv[0],
		 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return -1;
}

static const char *const runtime_sources[] = {
	"runtime/data.c", "runtime/train.c", "runtime/rng.c", "runtime/util.c", "runtime/pool.c",
	"runtime/model.c", "runtime/checkpoint.c", "ir/lns.c", NULL,
};

/* Compiles one C source (a path) for the target into obj, against the project's headers. */
static int cc(IrCtx *c, const CompileArgs *a, const char *src, const char *obj)
{
	char target[160], inc1[600], inc2[600];
	snprintf(target, sizeof target, "--target=%s", a->triple ? a->triple : "x86_64-linux-gnu");
	snprintf(inc1, sizeof inc1, "-I%s", LNSC_SOURCE_DIR);
	snprintf(inc2, sizeof inc2, "-I%s", LNSC_GEN_DIR);
	char *argv[] = {"clang-19", target, "-O2", "-std=c11", "-fPIC", "-D_POSIX_C_SOURCE=200809L",
			"-D_DEFAULT_SOURCE", inc1, inc2, "-c", (char *)src, "-o", (char *)obj, NULL};
	return run(c, argv);
}

/* Compiles a runtime source (relative to the source tree) into obj. */
static int cc_runtime(IrCtx *c, const CompileArgs *a, const char *rel, const char *obj)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s", LNSC_SOURCE_DIR, rel);
	return cc(c, a, path, obj);
}

static int build_runtime(IrCtx *c, const CompileArgs *a, const char *dir, int with_main,
			 char objs[][600], int *nobj)
{
	int n = 0;
	for (int i = 0; runtime_sources[i]; i++, n++) {
		snprintf(objs[n], 600, "%s/rt%d.o", dir, i);
		if (cc_runtime(c, a, runtime_sources[i], objs[n]))
			return -1;
	}
	if (with_main) {
		snprintf(objs[n], 600, "%s/main.o", dir);
		if (cc_runtime(c, a, "runtime/exe_main.c", objs[n++]))
			return -1;
	}
	*nobj = n;
	return 0;
}

static int link_exe(IrCtx *c, const CompileArgs *a, const char *model_o, char objs[][600], int nobj,
		    const char *out)
{
	char target[160];
	snprintf(target, sizeof target, "--target=%s", a->triple ? a->triple : "x86_64-linux-gnu");
	char *argv[40];
	int k = 0;
	argv[k++] = "clang-19";
	argv[k++] = target;
	argv[k++] = "-fuse-ld=lld";
	argv[k++] = "-o";
	argv[k++] = (char *)out;
	argv[k++] = (char *)model_o;
	for (int i = 0; i < nobj; i++)
		argv[k++] = objs[i];
	argv[k++] = "-lz";
	argv[k++] = "-lm";
	argv[k++] = "-lpthread";
	argv[k] = NULL;
	return run(c, argv);
}

static int archive(IrCtx *c, const char *model_o, char objs[][600], int nobj, const char *out)
{
	char *argv[40];
	int k = 0;
	argv[k++] = "llvm-ar-19";
	argv[k++] = "rcs";
	argv[k++] = (char *)out;
	argv[k++] = (char *)model_o;
	for (int i = 0; i < nobj; i++)
		argv[k++] = objs[i];
	argv[k] = NULL;
	unlink(out);
	return run(c, argv);
}

/* The library's C header: a handle over the model descriptor (runtime/model.c). */
static int write_header(IrCtx *c, const char *path, const char *p, const IrGraph *g)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		ir_error(c, IR_ERR_RUNTIME, "%s: %s", path, strerror(errno));
		return -1;
	}
	const IrValue *in = g->inputs.n ? g->inputs.v[0] : NULL;
	const IrValue *out = g->outputs.n ? g->outputs.v[0] : NULL;
	fprintf(f, "/* %s.h: training code for %s, generated by lnsc compile --emit lib. */\n", p,
		g->source ? g->source : g->name);
	fprintf(f, "#ifndef %s_LNSC_H\n#define %s_LNSC_H\n\n#include <stdint.h>\n#include <stdio.h>\n\n", p, p);
	fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
	if (in && out)
		fprintf(f, "enum { %s_BATCH = %lld, %s_EXAMPLE_SIZE = %lld, %s_CLASSES = %lld };\n\n", p,
			(long long)in->type->dims[0], p,
			(long long)(in->type->numel / (in->type->dims[0] ? in->type->dims[0] : 1)), p,
			(long long)(out->type->rank == 2 ? out->type->dims[1] : out->type->numel));
	fprintf(f, "typedef struct %s %s;\n\n", p, p);
	fprintf(f, "/* A trainer with initialised parameters; nthreads <= 1 runs on the caller's thread.\n"
		   " * NULL on failure, with the reason in err. */\n");
	fprintf(f, "%s *%s_create(int nthreads, uint64_t seed, char *err, size_t errn);\n", p, p);
	fprintf(f, "/* One training step on x (BATCH*EXAMPLE_SIZE floats) and labels y (BATCH class\n"
		   " * indices); the loss before the update goes to *loss. 0 or nonzero with err. */\n");
	fprintf(f, "int %s_train_step(%s *m, const float *x, const int64_t *y, float *loss, char *err,\n"
		   "\tsize_t errn);\n", p, p);
	fprintf(f, "/* Forward pass in eval mode: logits (BATCH*CLASSES floats). */\n");
	fprintf(f, "int %s_eval_step(%s *m, const float *x, float *logits, char *err, size_t errn);\n", p, p);
	fprintf(f, "/* Learning rate of the main optimizer (0: the compiled default). */\n");
	fprintf(f, "void %s_set_lr(%s *m, float lr);\n", p, p);
	fprintf(f, "/* Checkpoint the whole training state / restore it (same model only). */\n");
	fprintf(f, "int %s_save(%s *m, const char *path, char *err, size_t errn);\n", p, p);
	fprintf(f, "int %s_load(%s *m, const char *path, char *err, size_t errn);\n", p, p);
	fprintf(f, "void %s_free(%s *m);\n\n", p, p);
	fprintf(f, "#ifdef __cplusplus\n}\n#endif\n#endif\n");
	int bad = ferror(f);
	if (fclose(f) || bad) {
		ir_error(c, IR_ERR_RUNTIME, "%s: write failed", path);
		return -1;
	}
	return 0;
}

/* The glue between the header's API and runtime/model.c, compiled into the library. */
static int write_glue(IrCtx *c, const char *path, const char *p)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		ir_error(c, IR_ERR_RUNTIME, "%s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f, "/* glue for %s.h, generated by lnsc compile --emit lib */\n", p);
	fprintf(f, "#include \"runtime/lnsrt.h\"\n\n");
	fprintf(f, "extern const LnsrtModelDesc %s_model;\n", p);
	fprintf(f, "typedef struct %s %s;\n\n", p, p);
	fprintf(f, "%s *%s_create(int nthreads, uint64_t seed, char *err, size_t errn);\n", p, p);
	fprintf(f, "%s *%s_create(int nthreads, uint64_t seed, char *err, size_t errn)\n"
		   "{\n\treturn (%s *)lnsrt_model_new(&%s_model, nthreads, seed, err, errn);\n}\n\n",
		p, p, p, p);
	fprintf(f, "int %s_train_step(%s *m, const float *x, const int64_t *y, float *loss, char *err, size_t errn);\n", p, p);
	fprintf(f, "int %s_train_step(%s *m, const float *x, const int64_t *y, float *loss, char *err, size_t errn)\n"
		   "{\n\treturn lnsrt_model_train_step((LnsrtModel *)m, x, y, loss, err, errn);\n}\n\n", p, p);
	fprintf(f, "int %s_eval_step(%s *m, const float *x, float *logits, char *err, size_t errn);\n", p, p);
	fprintf(f, "int %s_eval_step(%s *m, const float *x, float *logits, char *err, size_t errn)\n"
		   "{\n\treturn lnsrt_model_eval_step((LnsrtModel *)m, x, logits, err, errn);\n}\n\n", p, p);
	fprintf(f, "void %s_set_lr(%s *m, float lr);\n", p, p);
	fprintf(f, "void %s_set_lr(%s *m, float lr)\n{\n\tlnsrt_model_set_lr((LnsrtModel *)m, lr);\n}\n\n", p, p);
	fprintf(f, "int %s_save(%s *m, const char *path, char *err, size_t errn);\n", p, p);
	fprintf(f, "int %s_save(%s *m, const char *path, char *err, size_t errn)\n"
		   "{\n\treturn lnsrt_model_save((LnsrtModel *)m, path, err, errn);\n}\n\n", p, p);
	fprintf(f, "int %s_load(%s *m, const char *path, char *err, size_t errn);\n", p, p);
	fprintf(f, "int %s_load(%s *m, const char *path, char *err, size_t errn)\n"
		   "{\n\treturn lnsrt_model_load((LnsrtModel *)m, path, err, errn);\n}\n\n", p, p);
	fprintf(f, "void %s_free(%s *m);\n", p, p);
	fprintf(f, "void %s_free(%s *m)\n{\n\tlnsrt_model_free((LnsrtModel *)m);\n}\n", p, p);
	int bad = ferror(f);
	if (fclose(f) || bad) {
		ir_error(c, IR_ERR_RUNTIME, "%s: write failed", path);
		return -1;
	}
	return 0;
}

/* An example program using the library: trains on random data a few steps, evaluates, saves. */
static int write_example(IrCtx *c, const char *path, const char *p, const char *hdr)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		ir_error(c, IR_ERR_RUNTIME, "%s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f,
		"/* %s_example.c: using the %s library (generated by lnsc compile --emit lib).\n"
		" * Build: cc %s_example.c %s.a -lz -lm -lpthread -o %s_example\n"
		" * Trains 20 steps on a fixed random batch (the loss falls), evaluates, saves a\n"
		" * checkpoint and loads it back. */\n"
		"#include <stdio.h>\n#include <stdlib.h>\n#include \"%s\"\n\n"
		"int main(int argc, char **argv)\n{\n"
		"\tchar err[512];\n"
		"\tstatic float x[%s_BATCH * %s_EXAMPLE_SIZE], logits[%s_BATCH * %s_CLASSES];\n"
		"\tstatic int64_t y[%s_BATCH];\n"
		"\tconst char *ckpt = argc > 1 ? argv[1] : \"%s_example.ckpt\";\n"
		"\tsrand(1);\n"
		"\tfor (int i = 0; i < %s_BATCH * %s_EXAMPLE_SIZE; i++)\n\t\tx[i] = (float)rand() / (float)RAND_MAX;\n"
		"\tfor (int i = 0; i < %s_BATCH; i++)\n\t\ty[i] = i %% %s_CLASSES;\n"
		"\t%s *m = %s_create(1, 0, err, sizeof err);\n"
		"\tif (!m) {\n\t\tfprintf(stderr, \"create: %%s\\n\", err);\n\t\treturn 1;\n\t}\n"
		"\tfloat loss = 0, first = 0;\n"
		"\tfor (int s = 0; s < 20; s++) {\n"
		"\t\tif (%s_train_step(m, x, y, &loss, err, sizeof err)) {\n"
		"\t\t\tfprintf(stderr, \"step: %%s\\n\", err);\n\t\t\treturn 1;\n\t\t}\n"
		"\t\tif (s == 0)\n\t\t\tfirst = loss;\n\t}\n"
		"\tif (%s_eval_step(m, x, logits, err, sizeof err) || %s_save(m, ckpt, err, sizeof err) ||\n"
		"\t    %s_load(m, ckpt, err, sizeof err)) {\n\t\tfprintf(stderr, \"%%s\\n\", err);\n\t\treturn 1;\n\t}\n"
		"\tprintf(\"loss %%.4f -> %%.4f after 20 steps; logits[0] %%.4f; checkpoint %%s\\n\", first, loss,\n"
		"\t       logits[0], ckpt);\n"
		"\t%s_free(m);\n\treturn loss < first ? 0 : 1;\n}\n",
		p, p, p, p, p, hdr, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p, p);
	int bad = ferror(f);
	if (fclose(f) || bad) {
		ir_error(c, IR_ERR_RUNTIME, "%s: write failed", path);
		return -1;
	}
	return 0;
}

static int move_into_place(IrCtx *c, const char *from, const char *to)
{
	if (rename(from, to) == 0)
		return 0;
	/* across file systems: copy */
	FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
	char buf[1 << 16];
	size_t n;
	int rc = in && out ? 0 : -1;
	while (!rc && (n = fread(buf, 1, sizeof buf, in)) > 0)
		rc = fwrite(buf, 1, n, out) == n ? 0 : -1;
	if (in)
		fclose(in);
	if (out && fclose(out))
		rc = -1;
	if (rc)
		ir_error(c, IR_ERR_RUNTIME, "%s: cannot write: %s", to, strerror(errno));
	else
		chmod(to, 0755);
	return rc;
}

static int remove_tree(const char *dir)
{
	char *argv[] = {"rm", "-rf", (char *)dir, NULL};
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	int st;
	return pid > 0 && waitpid(pid, &st, 0) > 0 ? 0 : -1;
}

static int build_outputs(IrCtx *c, const CompileArgs *a, CgCtx *cg, IrGraph *g, const char *sym,
			 const char *tmp)
{
	char model_o[600], out_tmp[600];
	snprintf(model_o, sizeof model_o, "%s/model.o", tmp);
	snprintf(out_tmp, sizeof out_tmp, "%s/out", tmp);
	if (a->emit == EMIT_LLVM || a->emit == EMIT_ASM || a->emit == EMIT_OBJ) {
		CgEmitKind k = a->emit == EMIT_LLVM ? CG_EMIT_LLVM
			       : a->emit == EMIT_ASM ? CG_EMIT_ASM : CG_EMIT_OBJ;
		return cg_emit_file(cg, k, out_tmp) || move_into_place(c, out_tmp, a->out);
	}
	if (cg_emit_file(cg, CG_EMIT_OBJ, model_o))
		return -1;
	char objs[16][600];
	int nobj = 0;
	if (build_runtime(c, a, tmp, a->emit == EMIT_EXE, objs, &nobj))
		return -1;
	if (a->emit == EMIT_EXE)
		return link_exe(c, a, model_o, objs, nobj, out_tmp) || move_into_place(c, out_tmp, a->out);
	/* lib: OUT (.a), OUT's base + .h, + _example.c */
	char base[600], hdr[620], glue[620], ex[640];
	snprintf(base, sizeof base, "%s", a->out);
	char *dot = strrchr(base, '.');
	if (dot && strchr(dot, '/') == NULL)
		*dot = 0;
	snprintf(hdr, sizeof hdr, "%s.h", base);
	snprintf(glue, sizeof glue, "%s/glue.c", tmp);
	snprintf(ex, sizeof ex, "%s_example.c", base);
	char *hdr_copy = strdup(hdr);
	int rc = write_glue(c, glue, sym) ||
		 cc(c, a, glue, (snprintf(objs[nobj], 600, "%s/glue.o", tmp), objs[nobj])) ||
		 archive(c, model_o, objs, nobj + 1, out_tmp) || move_into_place(c, out_tmp, a->out) ||
		 write_header(c, hdr, sym, g) || write_example(c, ex, sym, basename(hdr_copy));
	free(hdr_copy);
	return rc;
}

int cli_compile(int argc, char **argv)
{
	CompileArgs a;
	int rc = parse(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	char sym_base[128], sym[160];
	if (a.name)
		snprintf(sym_base, sizeof sym_base, "%s", a.name);
	else
		default_name(a.out, sym_base, sizeof sym_base);
	/* the executable's main finds the model as lnsc_model */
	snprintf(sym, sizeof sym, "%s_model", a.emit == EMIT_EXE ? "lnsc" : sym_base);
	IrCtx *c = ir_ctx_new();
	FeOptions fo = {.batch = a.batch};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	FeOverrides ov = {0};
	int given = a.formats || a.policy;
	IrGraph *g = NULL;
	CgTarget t = {.triple = a.triple, .cpu = a.cpu};
	CgCtx *cg = NULL;
	char tmp[] = "/tmp/lnsc-compile-XXXXXX";
	int have_tmp = 0;
	rc = -1;
	if (given && fe_policy_prepare(c, a.model, &fo, &a.po, a.formats, a.policy, &ov))
		goto out;
	g = fe_onnx_import(c, a.model, &fo);
	if (!g || pass_pipeline(g, &a.po) || (given && fe_overrides_check_used(c, &ov, a.po.recipe)))
		goto out;
	if ((cg = cg_ctx_new(c, &t, sym_base, NULL)))
		cg->recipe = a.po.recipe;
	if (!cg || cg_emit_model(cg, g, sym, 0) ||
	    cg_optimize(cg))
		goto out;
	if (!mkdtemp(tmp)) {
		ir_error(c, IR_ERR_RUNTIME, "cannot create a temporary folder: %s", strerror(errno));
		goto out;
	}
	have_tmp = 1;
	rc = build_outputs(c, &a, cg, g, a.emit == EMIT_LIB ? sym_base : sym, tmp);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!rc)
		printf("lnsc: compiled %s -> %s (%s, %s, cpu %s, %d-lane vectors) in %.2f s\n", a.model,
		       a.out, a.po.recipe, cg->triple, cg->cpu, cg->vw,
		       (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
out:
	if (have_tmp && !a.keep)
		remove_tree(tmp);
	else if (have_tmp)
		fprintf(stderr, "lnsc: temporaries kept in %s\n", tmp);
	cg_ctx_free(cg);
	ir_graph_free(g);
	fe_overrides_free(&ov);
	if (rc || ir_error_count(c)) {
		ir_diag_print(c, stderr);
		IrStatus st = ir_error_status(c);
		rc = st == IR_OK ? 1 : (int)st;
	}
	ir_ctx_free(c);
	return rc;
}
