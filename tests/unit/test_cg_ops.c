/* test_cg_ops.c: the LLVM backend against the reference interpreter, op by op and model by
 * model, through the differential harness (cgdiff.h).
 *
 * Single ops are built with ir_build, with random shapes (sizes that are not multiples of the
 * vector width, broadcasting patterns), f32 and LNS operands (LNS constants are encoded by
 * init; Quantize makes computed ones) and f32, lns8g8 and lns5g2 (stochastic) outputs; backward
 * graphs and updates come from the pass pipeline (fp32 with SGD and Adam, lns-madam). The
 * convolutional networks' ops are in test_cg_nn.c.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cgdiff.h"
#include "frontend/fe.h"
#include "passes/passes.h"
#include "runtime/lnsrt.h"
#include "testlib.h"

typedef struct Shape2 {
	int ra;
	int64_t a[4];
	int rb;
	int64_t b[4];
} Shape2;

static const Shape2 BCAST[] = {
    {2, {7, 13}, 2, {7, 13}},  {3, {4, 3, 5}, 2, {3, 5}},
    {3, {4, 1, 6}, 2, {3, 1}}, {4, {2, 3, 4, 5}, 1, {1}},
    {0, {0}, 1, {37}},         {2, {6, 1}, 2, {1, 9}},
    {1, {33}, 1, {33}},        {3, {2, 5, 17}, 3, {2, 1, 17}},
};

static void test_binary(void)
{
	static const IrOp ops[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV};
	const LnsFormat outs[3] = {FNONE, F8, F5};
	for (int o = 0; o < 4; o++)
		for (size_t s = 0; s < sizeof BCAST / sizeof *BCAST; s++) {
			const Shape2 *sh = &BCAST[s];
			LnsFormat fo = outs[s % 3], fa = s % 2 ? F8 : FNONE;
			Case k;
			begin(&k, "%s [%lld..] x [%lld..] %s %s -> %s", ir_op_name(ops[o]),
			      (long long)sh->a[0], (long long)sh->b[0], fname(fa), "f32",
			      fname(fo));
			IrValue *in[2] = {cst(&k, "a", sh->ra, sh->a, fa, 2.0),
			                  input(&k, "b", sh->rb, sh->b, 2.0)};
			if (ops[o] == IR_OP_DIV) { /* keep divisors away from zero */
				float *b = k.iod[0];
				for (int64_t i = 0; i < in[1]->type->numel; i++)
					b[i] = b[i] < 0 ? b[i] - 0.5f : b[i] + 0.5f;
			}
			node(&k, ops[o], 2, in, NULL, fo);
			run(&k);
		}
	/* big: tasks, both thread counts */
	Case k;
	begin(&k, "Add big [300,257] + [257] -> lns5g2");
	k.big = 1;
	IrValue *in[2] = {cst(&k, "a", 2, D(300, 257), F8, 1.0),
	                  cst(&k, "b", 1, D(257), FNONE, 1.0)};
	node(&k, IR_OP_ADD, 2, in, NULL, F5);
	run(&k);
	begin(&k, "Mul big [300,257] * [300,1] -> f32");
	k.big = 1;
	IrValue *in2[2] = {cst(&k, "a", 2, D(300, 257), FNONE, 1.0),
	                   cst(&k, "b", 2, D(300, 1), FNONE, 1.0)};
	node(&k, IR_OP_MUL, 2, in2, NULL, FNONE);
	run(&k);
}

static void test_unary(void)
{
	static const IrOp ops[] = {IR_OP_NEG, IR_OP_RELU, IR_OP_LEAKY_RELU, IR_OP_SIGMOID,
	                           IR_OP_TANH};
	static const int64_t shapes[3][2] = {{37, 1}, {5, 19}, {3, 8}};
	for (int o = 0; o < 5; o++)
		for (int f = 0; f < 5; f++) {
			/* f: 0 f32->f32, 1 lns->f32, 2 f32->lns8 current, 3 lns->same lns (codes),
			 * 4 lns8->lns5 sr */
			LnsFormat fi = f == 1 || f == 3 ? F8 : f == 4 ? F8C : FNONE;
			LnsFormat fo = f == 2 ? F8C : f == 3 ? F8 : f == 4 ? F5 : FNONE;
			const int64_t *sh = shapes[f % 3];
			Case k;
			begin(&k, "%s %s -> %s", ir_op_name(ops[o]), fname(fi), fname(fo));
			k.exact = ops[o] != IR_OP_SIGMOID && ops[o] != IR_OP_TANH;
			IrValue *x = cst(&k, "x", 2, sh, fi, 4.0);
			if (f == 3) /* a delayed-scale LNS operand computed in the graph */
				x = node(&k, IR_OP_QUANTIZE, 1, &x, NULL, F8)->out[0];
			IrAttrs at = {.alpha = {0.15f}};
			node(&k, ops[o], 1, &x, &at, fo);
			run(&k);
		}
	static const IrOp big[] = {IR_OP_SIGMOID, IR_OP_TANH, IR_OP_RELU};
	for (int o = 0; o < 3; o++) {
		Case k;
		begin(&k, "%s big", ir_op_name(big[o]));
		k.big = 1;
		k.exact = big[o] == IR_OP_RELU;
		IrValue *x = cst(&k, "x", 2, D(301, 129), FNONE, 12.0);
		node(&k, big[o], 1, &x, NULL, big[o] == IR_OP_TANH ? F8 : FNONE);
		run(&k);
	}
}

/* dY and the saved tensor (S for Relu/Sigmoid/Tanh, X for LeakyRelu). */
static void test_grad_pairs(void)
{
	static const IrOp ops[] = {IR_OP_RELU_GRAD, IR_OP_LEAKY_RELU_GRAD, IR_OP_SIGMOID_GRAD,
	                           IR_OP_TANH_GRAD};
	for (int o = 0; o < 4; o++)
		for (int f = 0; f < 3; f++) {
			LnsFormat fd = f == 1 ? F5 : FNONE, fo = f == 2 ? F5 : f == 1 ? F8 : FNONE;
			Case k;
			begin(&k, "%s dy %s -> %s", ir_op_name(ops[o]), fname(fd), fname(fo));
			IrValue *in[2] = {cst(&k, "dy", 2, D(9, 23), fd, 1.0),
			                  cst(&k, "s", 2, D(9, 23), FNONE, 1.0)};
			IrAttrs at = {.alpha = {0.2f}};
			node(&k, ops[o], 2, in, &at, fo);
			run(&k);
		}
}

/* ---- softmax family, losses, SumTo ---- */

static void test_softmax(void)
{
	static const struct {
		int rank;
		int64_t d[3];
		int axis, legacy;
	} cs[] = {{2, {5, 10}, 1, 0},
	          {3, {2, 3, 4}, 1, 0},
	          {3, {2, 3, 4}, 1, 1},
	          {2, {4, 7}, 0, 0},
	          {3, {3, 2, 5}, 2, 0}};
	static const IrOp ops[] = {IR_OP_SOFTMAX, IR_OP_LOG_SOFTMAX};
	for (int o = 0; o < 2; o++)
		for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
			Case k;
			LnsFormat fi = i % 2 ? F8 : FNONE, fo = i == 2 ? F8 : FNONE;
			begin(&k, "%s axis %d%s %s", ir_op_name(ops[o]), cs[i].axis,
			      cs[i].legacy ? " legacy" : "", fname(fi));
			IrAttrs at = {.axis = {cs[i].axis, cs[i].legacy}};
			IrValue *x = cst(&k, "x", cs[i].rank, cs[i].d, fi, 3.0);
			IrValue *y = node(&k, ops[o], 1, &x, &at, fo)->out[0];
			IrValue *in[2] = {cst(&k, "dy", cs[i].rank, cs[i].d, FNONE, 1.0), y};
			node(&k, o ? IR_OP_LOG_SOFTMAX_GRAD : IR_OP_SOFTMAX_GRAD, 2, in, &at,
			     FNONE);
			run(&k);
		}
}

static void test_losses(void)
{
	for (int f = 0; f < 2; f++) {
		Case k;
		begin(&k, "SoftmaxCrossEntropy (+grad) logits %s", f ? "lns8g8" : "f32");
		IrValue *in[2] = {cst(&k, "logits", 2, D(13, 10), f ? F8 : FNONE, 3.0),
		                  labels(&k, 13, 10)};
		node(&k, IR_OP_XENT, 2, in, NULL, FNONE);
		node(&k, IR_OP_XENT_GRAD, 2, in, NULL, f ? F5 : FNONE);
		run(&k);
		begin(&k, "MeanSquaredError (+grad) %s", f ? "lns" : "f32");
		IrValue *m[2] = {cst(&k, "p", 3, D(3, 5, 7), f ? F8 : FNONE, 1.0),
		                 input(&k, "t", 3, D(3, 5, 7), 1.0)};
		node(&k, IR_OP_MSE, 2, m, NULL, FNONE);
		node(&k, IR_OP_MSE_GRAD, 2, m, NULL, f ? F8 : FNONE);
		run(&k);
	}
}

static void test_sum_to(void)
{
	static const struct {
		int rx;
		int64_t x[4];
		int ro;
		int64_t o[4];
	} cs[] = {{3, {4, 3, 5}, 2, {3, 5}}, {3, {4, 3, 5}, 3, {4, 1, 5}},
	          {3, {4, 3, 5}, 1, {1}},    {2, {4, 3}, 2, {4, 1}},
	          {3, {6, 1, 7}, 2, {1, 7}}, {4, {2, 3, 4, 5}, 4, {1, 3, 1, 1}},
	          {2, {300, 257}, 1, {257}},
	          /* trailing dims reduced: runs in the IR_SUM_LANES order */
	          {4, {3, 5, 7, 9}, 3, {5, 1, 1}}, {4, {2, 4, 4, 8}, 4, {1, 4, 1, 1}},
	          {2, {4, 37}, 2, {4, 1}},         {3, {2, 3, 40}, 1, {1}},
	          {4, {64, 16, 28, 28}, 3, {16, 1, 1}}};
	for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
		Case k;
		begin(&k, "SumTo case %zu", i);
		k.big = cs[i].x[0] >= 64;
		IrAttrs at = {.shape = {.rank = cs[i].ro}};
		memcpy(at.shape.dims, cs[i].o, sizeof cs[i].o);
		IrValue *x = cst(&k, "x", cs[i].rx, cs[i].x, i % 2 ? F5U : FNONE, 1.0);
		node(&k, IR_OP_SUM_TO, 1, &x, &at, i == 2 ? F8 : FNONE);
		run(&k);
	}
}

/* ---- data movement, Cast ---- */

/* A move node on an operand of format fi (i64 when fi.log2g == 77), output format fo. */
static void move_case(const char *what, IrOp op, const IrAttrs *at, int nin, int rank,
                      const int64_t *dims, LnsFormat fi, LnsFormat fo)
{
	Case k;
	int i64 = fi.log2g == 77;
	begin(&k, "%s %s %s -> %s", ir_op_name(op), what, i64 ? "i64" : fname(fi), fname(fo));
	IrValue *in[3];
	for (int i = 0; i < nin; i++) {
		char name[16];
		snprintf(name, sizeof name, "x%d", i);
		if (i64) {
			const IrType *t = ty(IR_DT_I64, rank, dims);
			int64_t *d = malloc(ir_type_bytes(t) + 8);
			for (int64_t j = 0; j < t->numel; j++)
				d[j] = (int64_t)(urand() * 1e12);
			in[i] = ir_value_new(k.g, name, t, IR_ROLE_CONST, d, t);
			free(d);
		} else {
			in[i] = cst(&k, name, rank, dims, fi, 2.0);
			if (fi.bits && fi.scale == LNS_SCALE_DELAYED)
				in[i] = node(&k, IR_OP_QUANTIZE, 1, &in[i], NULL, fi)->out[0];
		}
	}
	node(&k, op, nin, in, at, fo);
	run(&k);
}

static void test_moves(void)
{
	const LnsFormat I64 = {0, 77, 0, 0, 0};
	const LnsFormat fins[4] = {FNONE, F8, F8, I64}, fouts[4] = {FNONE, F8, FF32, FNONE};
	for (int f = 0; f < 4; f++) {
		LnsFormat fi = fins[f], fo = f == 1 ? FNONE : fouts[f];
		IrAttrs rs = {.shape = {.rank = 2, .dims = {6, 35}}};
		move_case("[5,6,7]->[6,35]", IR_OP_RESHAPE, &rs, 1, 3, D(5, 6, 7), fi, fo);
		IrAttrs fl = {.axis = {2, 0}};
		move_case("axis 2", IR_OP_FLATTEN, &fl, 1, 3, D(5, 6, 7), fi, fo);
		IrAttrs sq = {.axes = {1, {1}}};
		move_case("axis 1", IR_OP_SQUEEZE, &sq, 1, 3, D(5, 1, 7), fi, fo);
		IrAttrs us = {.axes = {1, {0}}};
		move_case("axis 0", IR_OP_UNSQUEEZE, &us, 1, 2, D(5, 7), fi, fo);
		move_case("", IR_OP_IDENTITY, NULL, 1, 2, D(3, 11), fi, fo);
		static const int perms[4][3] = {{2, 0, 1}, {1, 0, 2}, {0, 2, 1}, {2, 1, 0}};
		for (int p = 0; p < 4; p++) {
			IrAttrs tp = {.perm = {3, {perms[p][0], perms[p][1], perms[p][2]}}};
			char w[32];
			snprintf(w, sizeof w, "perm %d%d%d", perms[p][0], perms[p][1], perms[p][2]);
			move_case(w, IR_OP_TRANSPOSE, &tp, 1, 3, D(3, 4, 9), fi, fo);
		}
		for (int ax = 0; ax < 3; ax++) {
			IrAttrs sl = {.slice = {ax, 1, 3}};
			move_case("slice", IR_OP_SLICE, &sl, 1, 3, D(4, 5, 6), fi, fo);
			IrAttrs cc = {.axis = {ax, 0}};
			move_case("concat x2", IR_OP_CONCAT, &cc, 2, 3, D(2, 3, 5), fi, fo);
		}
		IrAttrs c1 = {.axis = {1, 0}};
		move_case("concat x1", IR_OP_CONCAT, &c1, 1, 2, D(2, 3), fi, fo);
	}
	IrAttrs tp = {.perm = {2, {1, 0}}};
	move_case("big", IR_OP_TRANSPOSE, &tp, 1, 2, D(333, 129), FNONE, FNONE);
	move_case("big codes", IR_OP_TRANSPOSE, &tp, 1, 2, D(333, 129), F8, F8);
}

/* Cast between dtypes: special values (NaN, inf, out of range, negative, halfway cases). */
static void cast_case(IrDType from, IrDType to, LnsFormat fo)
{
	Case k;
	begin(&k, "Cast %s -> %s%s", ir_dtype_name(from), ir_dtype_name(to), fo.bits ? " lns" : "");
	const int64_t n = 41;
	const IrType *t = ty(from, 1, D(n));
	uint8_t *d = calloc((size_t)n, 8);
	static const double special[] = {0.0, -0.0,  1.5,    -2.5,    65504.0, 65520.0, 1e10, -1e10,
	                                 3e9, 300.0, -129.0, 5.96e-8, 2.98e-8, 1e-40,   0.1};
	int nan_ok = to != IR_DT_F32; /* NaN/Inf may not reach an f32 output */
	for (int64_t i = 0; i < n; i++) {
		double v = i < 15 ? special[i] : urand() * 1000.0;
		if (nan_ok && i == 15)
			v = NAN;
		if (nan_ok && i == 16)
			v = -INFINITY;
		if (!nan_ok && (from == IR_DT_F64 && fabs(v) > 3e38))
			v = 1.0;
		switch (from) {
		case IR_DT_F32:
			((float *)d)[i] = (float)v;
			break;
		case IR_DT_F64:
			((double *)d)[i] = v;
			break;
		case IR_DT_I64:
			((int64_t *)d)[i] = (int64_t)(v * 1e6);
			break;
		case IR_DT_I32:
			((int32_t *)d)[i] = (int32_t)v;
			break;
		case IR_DT_U8:
			d[i] = (uint8_t)(int)v;
			break;
		case IR_DT_BOOL:
			d[i] = (uint8_t)(i % 3 == 0);
			break;
		case IR_DT_F16: {
			uint16_t h = (uint16_t)(seed_state >> 7);
			urand();
			if (!nan_ok && ((h >> 10) & 31) == 31)
				h = 0x3c00;
			((uint16_t *)d)[i] = h;
			break;
		}
		default:
			break;
		}
	}
	IrValue *x = ir_value_new(k.g, "x", t, IR_ROLE_CONST, d, t);
	free(d);
	IrAttrs at = {.cast = {to}};
	node(&k, IR_OP_CAST, 1, &x, &at, fo);
	run(&k);
}

static void test_cast(void)
{
	static const IrDType from[] = {IR_DT_F32, IR_DT_F64, IR_DT_F16, IR_DT_I64,
	                               IR_DT_I32, IR_DT_U8,  IR_DT_BOOL};
	static const IrDType to[] = {IR_DT_F32, IR_DT_F64, IR_DT_F16, IR_DT_I64, IR_DT_I32,
	                             IR_DT_I8,  IR_DT_U8,  IR_DT_U64, IR_DT_BOOL};
	for (size_t i = 0; i < sizeof from / sizeof *from; i++)
		for (size_t j = 0; j < sizeof to / sizeof *to; j++)
			cast_case(from[i], to[j], FNONE);
	cast_case(IR_DT_I32, IR_DT_F32, F8);
}

/* ---- Dropout, Quantize, WeightView ---- */

static void test_dropout(void)
{
	for (int f = 0; f < 3; f++) {
		Case k;
		begin(&k, "Dropout %d", f);
		k.big = f == 2;
		k.eval_drop = f == 1;
		IrAttrs at = {.dropout = {f == 1 ? 0.5f : 0.3f, 1}};
		IrValue *x = cst(&k, "x", 2, f == 2 ? D(300, 257) : D(7, 19), f ? F8 : FNONE, 1.0);
		IrNode *n = node(&k, IR_OP_DROPOUT, 1, &x, &at, f == 1 ? F5 : FNONE);
		IrValue *in[2] = {cst(&k, "dy", 2, f == 2 ? D(300, 257) : D(7, 19), FNONE, 1.0),
		                  n->out[1]};
		node(&k, IR_OP_DROPOUT_GRAD, 2, in, &at, f ? F5 : FNONE);
		run(&k);
	}
}

static void test_quantize(void)
{
	const LnsFormat fo[6] = {F8, F8C, F5, F5U, F8M, F8S};
	for (int f = 0; f < 6; f++)
		for (int fi = 0; fi < 2; fi++) {
			Case k;
			begin(&k, "Quantize %s -> %s", fi ? "lns8g8" : "f32", fname(fo[f]));
			IrValue *x =
			    cst(&k, "x", 2, D(17, 29), fi ? F8C : FNONE, f == 3 ? 0.01 : 5.0);
			node(&k, IR_OP_QUANTIZE, 1, &x, NULL, fo[f]);
			run(&k);
		}
}

static void test_weight_view(void)
{
	for (int f = 0; f < 3; f++) {
		Case k;
		begin(&k, "WeightView lns12g128 -> %s",
		      f == 0   ? "lns8g8"
		      : f == 1 ? "f32"
		               : "lns5g2");
		IrValue *w = cst(&k, "w", 2, D(19, 23), F12, 0.3);
		LnsFormat fv = F8S;
		fv.bits = f == 2 ? 5 : 8;
		fv.log2g = f == 2 ? 1 : 3;
		node(&k, IR_OP_WEIGHT_VIEW, 1, &w, NULL, f == 1 ? FF32 : fv);
		run(&k);
	}
}

/* ---- optimizer updates, built by hand: param, gradient, state ---- */

static IrValue *param(Case *k, const char *name, int rank, const int64_t *dims, LnsFormat f)
{
	const IrType *tf = ty(IR_DT_F32, rank, dims);
	float *d = rand_buf(tf->numel, 0.5);
	const IrType *t = f.bits ? ir_type_lns(C, f, rank, dims) : tf;
	IrValue *v = ir_value_new(k->g, name, t, IR_ROLE_PARAM, d, tf);
	free(d);
	return v;
}

static IrValue *state(Case *k, const char *name, IrValue *p)
{
	IrValue *s =
	    ir_value_new(k->g, name, ir_type_f32_like(C, p->type), IR_ROLE_STATE, NULL, NULL);
	s->param = p;
	return s;
}

static void update_case(IrOp op, LnsFormat fw, LnsFormat fg, float wd, float mom, int big)
{
	Case k;
	begin(&k, "%s w %s g %s wd %g mom %g", ir_op_name(op), fname(fw), fname(fg), (double)wd,
	      (double)mom);
	k.big = big;
	const int64_t *dims = big ? D(300, 257) : D(13, 21);
	IrValue *w = param(&k, "w", 2, dims, fw);
	IrValue *g = cst(&k, "g", 2, dims, FNONE, 0.1);
	if (fg.bits) /* a gradient computed (and encoded) in the step */
		g = node(&k, IR_OP_QUANTIZE, 1, &g, NULL, fg)->out[0];
	IrValue *in[4] = {w, g, state(&k, "s1", w), NULL};
	int nin = 3;
	if (op == IR_OP_ADAM)
		in[nin++] = state(&k, "s2", w);
	IrAttrs at = {.opt = {.lr = op == IR_OP_MADAM ? 0x1p-7f : 0.01f,
	                      .beta1 = 0.9f,
	                      .beta2 = 0.999f,
	                      .eps = 1e-8f,
	                      .momentum = mom,
	                      .weight_decay = wd,
	                      .p_scale = 3.0f,
	                      .g_bound = 10.0f}};
	IrNode *n = ir_build(k.g, op, "update", nin, in, &at, NULL);
	CHECK_MSG(n != NULL, "%s: %s", k.name, ir_diag_text(C));
	if (n)
		n->phase = IR_PHASE_UPDATE;
	run(&k);
}

static void test_updates(void)
{
	update_case(IR_OP_MADAM, F12, FNONE, 0, 0, 0);
	update_case(IR_OP_MADAM, F12, F5, 0, 0, 0);
	update_case(IR_OP_MADAM, F12, F5, 0, 0, 1);
	update_case(IR_OP_SGD, FNONE, FNONE, 0, 0, 0);
	update_case(IR_OP_SGD, FNONE, F8, 1e-3f, 0.9f, 0);
	update_case(IR_OP_SGD, F8S, FNONE, 0, 0.9f, 0);
	update_case(IR_OP_SGD, FNONE, FNONE, 1e-2f, 0.9f, 1);
	update_case(IR_OP_ADAM, FNONE, FNONE, 0, 0, 0);
	update_case(IR_OP_ADAM, FNONE, F5, 1e-2f, 0, 0);
	update_case(IR_OP_ADAM, F12, FNONE, 0, 0, 0);
	update_case(IR_OP_ADAM, FNONE, FNONE, 0, 0, 1);
}

/* LnsrtStepArgs.lr overrides the main optimizer (Madam when there is one) and nothing else:
 * the LLVM step with lr = 0.05 matches the interpreter with that lr in the Madam node. */
static IrNode *upd(Case *k, IrOp op, IrValue *w, float lr)
{
	char g[32], s1[32], s2[32];
	snprintf(g, sizeof g, "g/%s", w->name);
	snprintf(s1, sizeof s1, "s1/%s", w->name);
	snprintf(s2, sizeof s2, "s2/%s", w->name);
	IrValue *in[4] = {w, cst(k, g, w->type->rank, w->type->dims, FNONE, 0.1), state(k, s1, w),
	                  op == IR_OP_ADAM ? state(k, s2, w) : NULL};
	IrAttrs at = {.opt = {.lr = lr,
	                      .beta1 = 0.9f,
	                      .beta2 = 0.999f,
	                      .eps = 1e-8f,
	                      .p_scale = 3.0f,
	                      .g_bound = 10.0f}};
	IrNode *n = ir_build(k->g, op, ir_unique_name(k->g, "update"), op == IR_OP_ADAM ? 4 : 3, in,
	                     &at, NULL);
	CHECK_MSG(n != NULL, "%s", ir_diag_text(C));
	if (n)
		n->phase = IR_PHASE_UPDATE;
	return n;
}

static void test_lr(void)
{
	Case k;
	begin(&k, "lr override");
	IrNode *m = upd(&k, IR_OP_MADAM, param(&k, "w", 2, D(9, 17), F12), 0x1p-7f);
	upd(&k, IR_OP_ADAM, param(&k, "b", 1, D(17), FNONE), 1e-3f);
	CHECK(pass_plan(k.g) == 0);
	const LnsrtModelDesc *d = compile(&k, 0);
	m->attr.opt.lr = 0.05f;
	IrInterp *ip = ir_interp_new(k.g, 3);
	Llvm L;
	if (d && ip && llvm_start(&L, d, &k, NULL, 3) == 0) {
		L.a.lr = 0.05f;
		CHECK(d->train_step(&L.a) == 0 && ir_interp_run(ip, IR_MODE_TRAIN) == 0);
		cmp_state(&k, ip, &L, "step 1");
		L.a.lr = 0.0f; /* back to the compiled default */
		m->attr.opt.lr = 0x1p-7f;
		CHECK(d->train_step(&L.a) == 0 && ir_interp_run(ip, IR_MODE_TRAIN) == 0);
		cmp_state(&k, ip, &L, "step 2");
		llvm_free(&L);
	}
	ir_interp_free(ip);
	ncases++;
	ir_graph_free(k.g);
}

/* ---- numeric and input errors ---- */

static void test_errors(void)
{
	Case k;
	begin(&k, "Div by zero");
	const IrType *t = ty(IR_DT_F32, 1, D(5));
	float a[5] = {1, 2, 3, 4, 5}, b[5] = {1, 1, 0, 1, 1};
	IrValue *in[2] = {ir_value_new(k.g, "a", t, IR_ROLE_CONST, a, t),
	                  ir_value_new(k.g, "b", t, IR_ROLE_CONST, b, t)};
	IrValue *y = node(&k, IR_OP_DIV, 2, in, NULL, FNONE)->out[0];
	CHECK(pass_plan(k.g) == 0);
	const LnsrtModelDesc *d = compile(&k, 0);
	Llvm L;
	if (d && llvm_start(&L, d, &k, NULL, 1) == 0) {
		CHECK(d->train_step(&L.a) == 1);
		CHECK(L.a.error_tensor == lnsrt_desc_find(d, y->name));
		llvm_free(&L);
	}
	ir_graph_free(k.g);
	begin(&k, "label out of range");
	IrValue *x[2] = {cst(&k, "logits", 2, D(4, 3), FNONE, 1.0), labels(&k, 4, 3)};
	node(&k, IR_OP_XENT, 2, x, NULL, FNONE)->phase = IR_PHASE_LOSS;
	((int64_t *)k.iod[0])[2] = 3;
	CHECK(pass_plan(k.g) == 0);
	d = compile(&k, 0);
	if (d && llvm_start(&L, d, &k, NULL, 1) == 0) {
		CHECK(d->train_step(&L.a) == 2);
		CHECK(L.a.error_tensor == lnsrt_desc_find(d, "labels"));
		L.io[0] = NULL; /* unbound labels: eval skips the loss; train refuses */
		CHECK(d->eval_step(&L.a) == 0);
		CHECK(d->train_step(&L.a) == 2);
		llvm_free(&L);
	}
	free(k.iod[0]);
	ir_graph_free(k.g);
	ir_diag_clear(C);
}

/* ---- training graphs from the pipeline ---- */

typedef IrValue *(*Build)(Case *k, IrValue *x);

static IrValue *p_param(Case *k, const char *name, int rank, const int64_t *dims)
{
	return param(k, name, rank, dims, FNONE);
}

static IrValue *op2(Case *k, IrOp op, IrValue *a, IrValue *b, const IrAttrs *at)
{
	IrValue *in[2] = {a, b};
	return ir_build1(k->g, op, ir_op_name(op), 2, in, at);
}

static IrValue *op1(Case *k, IrOp op, IrValue *a, const IrAttrs *at)
{
	return ir_build1(k->g, op, ir_op_name(op), 1, &a, at);
}

/* x [6,10]: elementwise ops, broadcasting, activations, softmax */
static IrValue *b_act(Case *k, IrValue *x)
{
	IrValue *w = p_param(k, "w", 2, D(6, 10)), *b = p_param(k, "b", 1, D(10));
	IrValue *h =
	    op1(k, IR_OP_TANH, op2(k, IR_OP_ADD, op2(k, IR_OP_MUL, x, w, NULL), b, NULL), NULL);
	IrAttrs al = {.alpha = {0.1f}};
	IrValue *s =
	    op1(k, IR_OP_SIGMOID, op2(k, IR_OP_SUB, h, p_param(k, "c", 2, D(1, 10)), NULL), NULL);
	IrValue *l =
	    op1(k, IR_OP_LEAKY_RELU, op2(k, IR_OP_DIV, s, p_param(k, "d", 0, D(1)), NULL), &al);
	IrAttrs ax = {.axis = {1, 0}};
	return op1(k, IR_OP_LOG_SOFTMAX, op1(k, IR_OP_RELU, op2(k, IR_OP_ADD, l, x, NULL), NULL),
	           &ax);
}

/* x [6,10]: data movement with gradients */
static IrValue *b_move(Case *k, IrValue *x)
{
	IrValue *w = p_param(k, "w", 2, D(6, 10));
	IrAttrs tp = {.perm = {2, {1, 0}}}, cc = {.axis = {1, 0}};
	IrValue *t = op1(k, IR_OP_TRANSPOSE, op2(k, IR_OP_MUL, x, w, NULL), &tp); /* [10,6] */
	IrValue *u = op1(k, IR_OP_TRANSPOSE, t, &tp);                             /* [6,10] */
	IrValue *c = op2(k, IR_OP_CONCAT, u, op1(k, IR_OP_NEG, x, NULL), &cc);    /* [6,20] */
	IrAttrs rs = {.shape = {3, {6, 4, 5}}}, fl = {.axis = {1, 0}};
	IrValue *r = op1(k, IR_OP_FLATTEN, op1(k, IR_OP_RESHAPE, c, &rs), &fl);
	IrAttrs dr = {.dropout = {0.25f, 1}};
	IrNode *d = ir_build(k->g, IR_OP_DROPOUT, "drop", 1, &r, &dr, NULL);
	IrAttrs sm = {.axis = {1, 0}};
	return op1(k, IR_OP_SOFTMAX, op1(k, IR_OP_IDENTITY, d->out[0], NULL), &sm);
}

static void pipe_case(const char *name, Build b, const char *recipe, PassLoss loss, int adam,
                      int exact)
{
	Case k;
	begin(&k, "pipeline %s %s %s", name, recipe, adam ? "adam" : "sgd");
	k.exact = exact;
	k.model = !exact; /* exp/tanh differences grow through the backward pass's sums */
	IrValue *x = input(&k, "x", 2, D(6, 10), 1.0);
	run_trained(&k, b(&k, x), recipe, loss, adam);
}

static void test_pipelines(void)
{
	pipe_case("act", b_act, "fp32", PASS_LOSS_XENT, 0, 0);
	pipe_case("act", b_act, "fp32", PASS_LOSS_MSE, 1, 0);
	pipe_case("move", b_move, "fp32", PASS_LOSS_XENT, 0, 1);
	pipe_case("move", b_move, "fp32", PASS_LOSS_MSE, 1, 1);
	pipe_case("move", b_move, "lns-madam", PASS_LOSS_XENT, 0, 1);
	pipe_case("act", b_act, "lns-madam", PASS_LOSS_XENT, 0, 0);
}

/* ---- whole models ---- */

static void test_models(void)
{
	const char *src = getenv("LNSC_SRC");
	char path[512];
	snprintf(path, sizeof path, "%s/examples/mlp/mlp.onnx", src ? src : "..");
	model_case(path, "fp32", 64, 1, 0);
	model_case(path, "lns-madam", 64, 1, 0);
	static const char *const fx[] = {
	    "helper_o11_branches", "helper_o12_mini",     "helper_o13_batched",    "helper_o17_mse",
	    "helper_o7_mlp",       "torch_o11_attention", "torch_o13_dropout_mlp", "torch_o17_mse"};
	for (size_t i = 0; i < sizeof fx / sizeof *fx; i++) {
		snprintf(path, sizeof path, "%s/tests/oracle/fixtures/%s/model.onnx",
		         src ? src : "..", fx[i]);
		model_case(path, "fp32", 4, 0, 0);
		model_case(path, "lns-madam", 4, 0, 0);
		if (i == 4)
			model_case(path, "lns-madam", 4, 0, 1);
	}
}

/* ---- the descriptor layout ---- */

static void test_layout(void)
{
	CgCtx *c = cg_jit_ctx(J[0], "layout");
	CHECK(c != NULL);
	if (!c)
		return;
	/* the LnsrtStepArgs the generated code reads */
	CHECK(offsetof(LnsrtStepArgs, lr) == 32 && offsetof(LnsrtStepArgs, error_tensor) == 36 &&
	      offsetof(LnsrtStepArgs, model) == 40 && sizeof(LnsrtStepArgs) == 48);
	CHECK(offsetof(LnsrtTensorDesc, rank) == 28 && offsetof(LnsrtTensorDesc, dims) == 32 &&
	      offsetof(LnsrtTensorDesc, io_slot) == 120 && sizeof(LnsrtTensorDesc) == 128);
	CHECK(offsetof(LnsrtModelDesc, tensors) == 48 &&
	      offsetof(LnsrtModelDesc, example_size) == 88 &&
	      offsetof(LnsrtModelDesc, eval_step) == 112 && sizeof(LnsrtModelDesc) == 120);
	cg_ctx_free(c);
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	if (cgdiff_init("test_cg_ops"))
		return t_finish("test_cg_ops");
	struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
	    {"layout", test_layout},       {"binary", test_binary},     {"unary", test_unary},
	    {"grads", test_grad_pairs},    {"softmax", test_softmax},   {"losses", test_losses},
	    {"sumto", test_sum_to},        {"moves", test_moves},       {"cast", test_cast},
	    {"dropout", test_dropout},     {"quantize", test_quantize}, {"view", test_weight_view},
	    {"updates", test_updates},     {"errors", test_errors},     {"lr", test_lr},
	    {"pipelines", test_pipelines}, {"models", test_models}};
	for (size_t i = 0; i < sizeof tests / sizeof *tests; i++)
		if (!only || !strcmp(only, tests[i].name))
			tests[i].fn();
	printf("test_cg_ops: %d cases at %d vector width%s\n", ncases, NJ, NJ > 1 ? "s" : "");
	cgdiff_done();
	return t_finish("test_cg_ops");
}
