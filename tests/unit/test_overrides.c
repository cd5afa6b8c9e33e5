/* test_overrides.c: the per-tensor override table (frontend/lua/overrides.c) and the trainer
 * spec a checkpoint records (frontend/lua/spec.c).
 *
 * The table: set, replace, remove by an empty override, copy; format text both ways; the
 * --formats file (comments, blank lines, errors with file:line); the hook the passes call,
 * which checks each override against the graph and marks it used, and the check that names
 * overrides no tensor claimed. The spec: its metadata text round-trips every field, tensor
 * names with tabs, newlines and percent signs included, and damaged texts are refused.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/lua/lnsc_lua.h"
#include "testlib.h"

static void test_table(void)
{
	FeOverrides ov;
	fe_overrides_init(&ov);
	PassOverride a = {0}, b = {0}, none = {0};
	CHECK(fe_format_parse("lns6g4:sr", &a) == 0 && a.kind == PASS_FMT_LNS && a.fmt.bits == 6 &&
	      a.fmt.log2g == 2 && a.fmt.round == LNS_ROUND_STOCHASTIC);
	CHECK(fe_format_parse("fp32", &b) == 0 && b.kind == PASS_FMT_F32);
	PassOverride keep = a;
	CHECK(fe_format_parse("lns6g3", &keep) == -1 && !memcmp(&keep, &a, sizeof a));
	CHECK(fe_format_parse("lns1g1", &keep) == -1 && fe_format_parse("", &keep) == -1);
	char buf[64];
	CHECK(!strcmp(fe_format_str(&a, buf, sizeof buf), "lns6g4:sr:delayed:uf=zero"));
	CHECK(!strcmp(fe_format_str(&b, buf, sizeof buf), "fp32"));
	CHECK(!strcmp(fe_format_str(&none, buf, sizeof buf), ""));
	PassUpdate u;
	CHECK(fe_update_parse("adam", &u) == 0 && u == PASS_UPD_ADAM);
	CHECK(fe_update_parse("lamb", &u) == -1);
	CHECK(!strcmp(fe_update_name(PASS_UPD_MADAM), "madam") && !fe_update_name(PASS_UPD_RECIPE));

	fe_overrides_set(&ov, "x", &a, "here:1");
	fe_overrides_set(&ov, "y", &b, "here:2");
	CHECK(ov.n == 2 && fe_overrides_find(&ov, "x")->o.fmt.bits == 6);
	fe_overrides_set(&ov, "x", &b, "here:3"); /* replaced, order kept */
	CHECK(ov.n == 2 && !strcmp(ov.v[0].name, "x") && ov.v[0].o.kind == PASS_FMT_F32 &&
	      !strcmp(ov.v[0].origin, "here:3"));
	fe_overrides_set(&ov, "x", &none, "here:4"); /* an empty override removes the entry */
	CHECK(ov.n == 1 && !fe_overrides_find(&ov, "x") && !strcmp(ov.v[0].name, "y"));
	fe_overrides_set(&ov, "z", &none, "here:5");
	CHECK(ov.n == 1);
	FeOverrides cp;
	fe_overrides_init(&cp);
	fe_overrides_set(&cp, "old", &a, "o");
	fe_overrides_copy(&cp, &ov);
	CHECK(cp.n == 1 && !strcmp(cp.v[0].name, "y") && !strcmp(cp.v[0].origin, "here:2"));
	fe_overrides_free(&cp);
	fe_overrides_free(&ov);
	CHECK(ov.n == 0 && ov.v == NULL);
}

static const char MLP_IR[] =
    "graph \"g\" opset 13 {\n"
    "\tinput %x : f32[4,3]\n"
    "\tparam %w : f32[2,3] = [0.1, -0.2, 0.3, 0.4, -0.5, 0.6]\n"
    "\tparam %b : f32[2] = [0, 0]\n"
    "\t%y = Gemm(%x, %w, %b) {alpha=1, beta=1, transA=0, transB=1} : f32[4,2] @fwd \"fc\"\n"
    "\toutput %y\n"
    "}\n";

static void test_file_and_hook(void)
{
	char path[] = "/tmp/test_overrides.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	const char *text = "# formats\n\n  y   lns6g4  \nw lns10g64 # weight\nb fp32\n";
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	IrCtx *c = ir_ctx_new();
	FeOverrides ov;
	fe_overrides_init(&ov);
	CHECK(fe_overrides_read_file(c, &ov, path) == 0 && ov.n == 3);
	FeOverride *e = fe_overrides_find(&ov, "y");
	char want[600];
	snprintf(want, sizeof want, "%s:3", path);
	CHECK(e && e->o.fmt.bits == 6 && !strcmp(e->origin, want));

	/* the hook over a graph: the weight's string format gets a static scale; y is LNS */
	IrGraph *g = ir_parse(c, MLP_IR, "mlp.ir");
	CHECK(g != NULL);
	if (g) {
		PassOptions po;
		pass_options_default(&po);
		po.recipe = "fp32";
		po.train = 0;
		fe_overrides_hook(&ov, &po);
		PassOverride out;
		CHECK(po.override(po.override_user, g, ir_graph_value(g, "w"), &out) == 0);
		CHECK(out.kind == PASS_FMT_LNS && out.fmt.scale == LNS_SCALE_STATIC &&
		      out.fmt.bits == 10);
		CHECK(po.override(po.override_user, g, ir_graph_value(g, "x"), &out) == 0 &&
		      out.kind == PASS_FMT_RECIPE);
		CHECK(fe_overrides_check_used(c, &ov, "fp32") == -1); /* y, b not asked yet */
		CHECK(strstr(ir_diag_text(c), "no tensor named 'y'"));
		ir_diag_clear(c);
		CHECK(po.override(po.override_user, g, ir_graph_value(g, "y"), &out) == 0);
		CHECK(po.override(po.override_user, g, ir_graph_value(g, "b"), &out) == 0);
		CHECK(fe_overrides_check_used(c, &ov, "fp32") == 0);
		/* an override the graph refuses: the input's format */
		PassOverride l6 = {0};
		fe_format_parse("lns6g4", &l6);
		fe_overrides_set(&ov, "x", &l6, "p.lua:7");
		CHECK(po.override(po.override_user, g, ir_graph_value(g, "x"), &out) == -1);
		CHECK_MSG(
		    strstr(ir_diag_text(c), "p.lua:7: the format of 'x' (input) cannot be set"),
		    "%s", ir_diag_text(c));
		ir_graph_free(g);
	}
	ir_diag_clear(c);

	/* errors name the file and line */
	fd = open(path, O_WRONLY | O_TRUNC);
	const char *bad = "y lns6g4\nlonely\nw lns9g3\n";
	CHECK(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad));
	close(fd);
	fe_overrides_clear(&ov);
	CHECK(fe_overrides_read_file(c, &ov, path) == -1);
	const char *d = ir_diag_text(c);
	snprintf(want, sizeof want, "%s:2: expected '<tensor> <format>'", path);
	CHECK_MSG(strstr(d, want), "%s", d);
	snprintf(want, sizeof want, "%s:3: 'lns9g3' is not a format", path);
	CHECK_MSG(strstr(d, want), "%s", d);
	ir_diag_clear(c);
	CHECK(fe_overrides_read_file(c, &ov, "/no/such/formats.txt") == -1 &&
	      strstr(ir_diag_text(c), "/no/such/formats.txt"));
	unlink(path);
	fe_overrides_free(&ov);
	ir_ctx_free(c);
}

static void test_spec(void)
{
	FeTrainerSpec s, r;
	fe_spec_init(&s);
	fe_spec_set_model(&s, "/no/such/dir/model.onnx"); /* unresolvable: kept as given */
	CHECK(!strcmp(s.model, "/no/such/dir/model.onnx"));
	snprintf(s.recipe, sizeof s.recipe, "lns-sgd");
	snprintf(s.backend, sizeof s.backend, "interp");
	snprintf(s.cpu, sizeof s.cpu, "x86-64-v3");
	s.batch = 32;
	s.threads = 3;
	s.observe = 0;
	s.seed = 12345678901234ull;
	s.lr = 0.0125f;
	s.momentum = 0.5f;
	s.adam = 1;
	PassOverride a = {0}, u = {.update = PASS_UPD_SGD};
	fe_format_parse("lns5g2:sr:delayed:uf=min", &a);
	fe_overrides_set(&s.ov, "odd\tname\nwith %25 and %", &a, "x");
	fe_overrides_set(&s.ov, "w", &u, "x");
	char *meta = fe_spec_meta(&s);
	CHECK(!strncmp(meta, "lnsc-trainer 1\n", 15));
	CHECK_MSG(strstr(meta, "override\todd%09name%0Awith %2525 and %25\t"
	                       "lns5g2:sr:delayed:uf=min\t\n"),
	          "%s", meta); /* tabs, newlines and percent signs escaped */
	fe_spec_init(&r);
	char err[256];
	CHECK_MSG(fe_spec_parse(meta, &r, err, sizeof err) == 0, "%s", err);
	CHECK(!strcmp(r.model, s.model) && !strcmp(r.recipe, "lns-sgd") &&
	      !strcmp(r.backend, "interp") && !strcmp(r.cpu, "x86-64-v3"));
	CHECK(r.batch == 32 && r.threads == 3 && r.observe == 0 && r.seed == s.seed);
	CHECK(r.lr == s.lr && r.momentum == s.momentum && r.adam == 1);
	CHECK(r.ov.n == 2);
	FeOverride *e = fe_overrides_find(&r.ov, "odd\tname\nwith %25 and %");
	CHECK(e && e->o.kind == PASS_FMT_LNS && !memcmp(&e->o.fmt, &a.fmt, sizeof a.fmt) &&
	      e->o.update == PASS_UPD_RECIPE);
	e = fe_overrides_find(&r.ov, "w");
	CHECK(e && e->o.kind == PASS_FMT_RECIPE && e->o.update == PASS_UPD_SGD);
	fe_spec_free(&r);

	/* damaged texts */
	static const char *const bad[] = {
	    "",
	    "lnsc-trainer 2\nmodel\t/x\n",
	    "lnsc-trainer 1\nrecipe\tlns-madam\n",                /* no model */
	    "lnsc-trainer 1\nmodel\t/x\nrecipe\tint8\n",          /* unknown recipe */
	    "lnsc-trainer 1\nmodel\t/x\nbatch\t0\n",              /* batch out of range */
	    "lnsc-trainer 1\nmodel\t/x\nbatch\t12abc\n",          /* not a number */
	    "lnsc-trainer 1\nmodel\t/x\noverride\tw\tlns9g3\t\n", /* not a format */
	    "lnsc-trainer 1\nmodel\t/x\noverride\tw\t\tlamb\n",   /* not an optimizer */
	    "lnsc-trainer 1\nmodel\t/x%zz\n",                     /* bad escape */
	    "lnsc-trainer 1\nmodel\t/x\nbackend\tgpu\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		fe_spec_init(&r);
		err[0] = 0;
		CHECK_MSG(fe_spec_parse(bad[i], &r, err, sizeof err) == -1 && err[0], "text %zu",
		          i);
		fe_spec_free(&r);
	}
	/* keys of a newer writer are ignored */
	fe_spec_init(&r);
	CHECK(fe_spec_parse("lnsc-trainer 1\nmodel\t/x\nfuture\tthing\n", &r, err, sizeof err) ==
	      0);
	fe_spec_free(&r);
	free(meta);
	fe_spec_free(&s);
}

int main(void)
{
	test_table();
	test_file_and_hook();
	test_spec();
	return t_finish("test_overrides");
}
