/* test_cg_nn.c: the LLVM backend's kernels of the convolutional ops against the reference
 * interpreter, through the differential harness (cgdiff.h).
 *
 * Each op alone on random shapes and attributes (sizes that are not multiples of the vector
 * width or of IR_SUM_LANES, 2-D and 4-D inputs, strides, dilations, asymmetric pads,
 * ceil_mode, count_include_pad), with f32 and LNS inputs and f32, lns8g8 and lns5g2
 * (stochastic) outputs; MaxPool, GlobalMaxPool and Pad also on LNS codes. BatchNormalization,
 * the pools, Pad, Clip and Assign follow the interpreter operation for operation, so they must
 * agree bit for bit; the convolutions sum in another order (test_cg_conv checks them against
 * fp64). Then small CNNs through the whole pass pipeline (fp32 with SGD and Adam, lns-madam,
 * lns-sgd), and the ONNX CNN fixtures and examples when present.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cgdiff.h"
#include "testlib.h"

/* A constant of positive values in [lo, lo + span) (variances, scales). */
static IrValue *pos_cst(Case *k, const char *name, int64_t n, double lo, double span)
{
	const IrType *t = ty(IR_DT_F32, 1, D(n));
	float *d = malloc(sizeof(float) * (size_t)n);
	for (int64_t i = 0; i < n; i++)
		d[i] = (float)(lo + span * (urand() + 1) / 2);
	IrValue *v = ir_value_new(k->g, name, t, IR_ROLE_CONST, d, t);
	free(d);
	return v;
}

/* An f32 input, or (fin.bits) its LNS quantisation: a computed LNS operand. */
static IrValue *data(Case *k, const char *name, int rank, const int64_t *dims, LnsFormat fin)
{
	IrValue *x = input(k, name, rank, dims, 2.0);
	if (!fin.bits)
		return x;
	IrNode *q = node(k, IR_OP_QUANTIZE, 1, &x, NULL, fin);
	return q ? q->out[0] : NULL;
}

/* ---- BatchNormalization ---- */

static void bn_case(int rank, const int64_t *dims, LnsFormat fin, LnsFormat fout)
{
	Case k;
	begin(&k, "bn %dd [%lld,%lld,...] %s -> %s", rank, (long long)dims[0], (long long)dims[1],
	      fname(fin), fname(fout));
	int64_t ch = dims[1];
	IrValue *in[5] = {data(&k, "x", rank, dims, fin), cst(&k, "scale", 1, D(ch), FNONE, 1.5),
	                  cst(&k, "bias", 1, D(ch), FNONE, 1.0),
	                  cst(&k, "rmean", 1, D(ch), FNONE, 1.0),
	                  pos_cst(&k, "rvar", ch, 0.25, 2.0)};
	IrAttrs a = {.bn = {1e-5f, 0.9f, 1}};
	if (in[0])
		node(&k, IR_OP_BATCH_NORM, 5, in, &a, fout);
	run(&k);
}

static void bn_grad_case(int rank, const int64_t *dims, LnsFormat fdy, LnsFormat fout)
{
	Case k;
	begin(&k, "bngrad %dd [%lld,%lld,...] dy %s -> %s", rank, (long long)dims[0],
	      (long long)dims[1], fname(fdy), fname(fout));
	int64_t ch = dims[1];
	IrValue *in[5] = {data(&k, "dy", rank, dims, fdy), input(&k, "x", rank, dims, 2.0),
	                  cst(&k, "scale", 1, D(ch), FNONE, 1.5),
	                  cst(&k, "bmean", 1, D(ch), FNONE, 0.5),
	                  pos_cst(&k, "bvar", ch, 0.5, 2.0)};
	IrAttrs a = {.bn = {1e-3f, 0.9f, 1}};
	if (in[0])
		node(&k, IR_OP_BATCH_NORM_GRAD, 5, in, &a, fout);
	run(&k);
}

static void test_batch_norm(void)
{
	static const int64_t d4a[] = {3, 5, 7, 9}, d4b[] = {2, 3, 8, 8}, d4c[] = {4, 2, 5, 16};
	static const int64_t d2[] = {37, 6}, d4d[] = {2, 4, 1, 1};
	const int64_t *shapes[] = {d4a, d4b, d4c, d2, d4d};
	int ranks[] = {4, 4, 4, 2, 4};
	for (int s = 0; s < 5; s++) {
		bn_case(ranks[s], shapes[s], FNONE, FNONE);
		bn_grad_case(ranks[s], shapes[s], FNONE, FNONE);
	}
	bn_case(4, d4a, F8, F8);
	bn_case(4, d4b, FNONE, F5);
	bn_case(4, d4c, F8, FF32);
	bn_grad_case(4, d4a, F5, F5);
	bn_grad_case(4, d4b, F8, F8C);
	bn_grad_case(2, d2, FNONE, F5U);
}

/* ---- pools ---- */

typedef struct PoolSpec {
	int64_t n, c, h, w;
	int k[2], s[2], d[2], p[4], ceil, incl;
} PoolSpec;

static const PoolSpec POOLS[] = {
    {2, 3, 28, 28, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0, 0},
    {3, 2, 14, 14, {2, 2}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0, 0},
    {2, 2, 9, 11, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0, 0},
    {2, 3, 10, 13, {3, 2}, {2, 3}, {1, 1}, {1, 0, 0, 1}, 1, 0},
    {1, 2, 12, 40, {3, 3}, {2, 2}, {2, 2}, {2, 1, 1, 2}, 0, 1},
    {2, 2, 7, 7, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1, 1},
    {1, 3, 5, 37, {2, 4}, {1, 3}, {1, 1}, {0, 2, 1, 1}, 1, 0},
};

static IrAttrs pool_attr(const PoolSpec *p)
{
	IrAttrs a;
	memset(&a, 0, sizeof a);
	for (int i = 0; i < 2; i++) {
		a.pool.kernel[i] = p->k[i];
		a.pool.stride[i] = p->s[i];
		a.pool.dilation[i] = p->d[i];
	}
	memcpy(a.pool.pad, p->p, sizeof p->p);
	a.pool.ceil_mode = p->ceil;
	a.pool.count_include_pad = p->incl;
	return a;
}

static void pool_case(IrOp op, const PoolSpec *p, LnsFormat fin, LnsFormat fout)
{
	Case k;
	begin(&k, "%s %lldx%lld k%dx%d s%dx%d d%dx%d ceil %d incl %d %s -> %s", ir_op_name(op),
	      (long long)p->h, (long long)p->w, p->k[0], p->k[1], p->s[0], p->s[1], p->d[0],
	      p->d[1], p->ceil, p->incl, fname(fin), fname(fout));
	IrValue *x = data(&k, "x", 4, D(p->n, p->c, p->h, p->w), fin);
	IrAttrs a = pool_attr(p);
	if (op == IR_OP_GLOBAL_AVG_POOL || op == IR_OP_GLOBAL_MAX_POOL) {
		memset(&a, 0, sizeof a);
		a.pool.kernel[0] = (int)p->h, a.pool.kernel[1] = (int)p->w;
		a.pool.stride[0] = a.pool.stride[1] = a.pool.dilation[0] = a.pool.dilation[1] = 1;
	}
	if (x)
		node(&k, op, 1, &x, &a, fout);
	run(&k);
}

/* The gradient of a pool node built on x, from a dY input of the pool's output shape. */
static void pool_grad_case(IrOp op, const PoolSpec *p, LnsFormat fx, LnsFormat fdy, LnsFormat fout)
{
	Case k;
	begin(&k, "%s %lldx%lld k%dx%d s%dx%d d%dx%d ceil %d incl %d x %s dy %s -> %s",
	      ir_op_name(op), (long long)p->h, (long long)p->w, p->k[0], p->k[1], p->s[0], p->s[1],
	      p->d[0], p->d[1], p->ceil, p->incl, fname(fx), fname(fdy), fname(fout));
	IrAttrs a = pool_attr(p);
	int64_t oh = ir_window_out(p->h, p->k[0], p->s[0], p->d[0], p->p[0], p->p[2], p->ceil);
	int64_t ow = ir_window_out(p->w, p->k[1], p->s[1], p->d[1], p->p[1], p->p[3], p->ceil);
	IrValue *dy = data(&k, "dy", 4, D(p->n, p->c, oh, ow), fdy);
	IrValue *in[2] = {dy, NULL};
	int nin = 1;
	if (op == IR_OP_MAX_POOL_GRAD) {
		in[1] = data(&k, "x", 4, D(p->n, p->c, p->h, p->w), fx);
		nin = 2;
	} else {
		a.pool.xhw[0] = p->h, a.pool.xhw[1] = p->w;
	}
	if (dy && (nin == 1 || in[1]))
		node(&k, op, nin, in, &a, fout);
	run(&k);
}

static void test_pools(void)
{
	size_t np = sizeof POOLS / sizeof *POOLS;
	for (size_t i = 0; i < np; i++) {
		const PoolSpec *p = &POOLS[i];
		pool_case(IR_OP_MAX_POOL, p, FNONE, FNONE);
		pool_case(IR_OP_AVG_POOL, p, FNONE, FNONE);
		pool_case(IR_OP_MAX_POOL, p, F8, F8); /* on codes */
		pool_case(IR_OP_AVG_POOL, p, F8, F8); /* decoded, encoded */
		pool_grad_case(IR_OP_MAX_POOL_GRAD, p, FNONE, FNONE, FNONE);
		pool_grad_case(IR_OP_AVG_POOL_GRAD, p, FNONE, FNONE, FNONE);
	}
	pool_case(IR_OP_MAX_POOL, &POOLS[0], F8, FF32);
	pool_case(IR_OP_MAX_POOL, &POOLS[2], F8, F5);
	pool_case(IR_OP_MAX_POOL, &POOLS[3], FNONE, F8C);
	pool_case(IR_OP_MAX_POOL, &POOLS[4], F5, F5);
	pool_grad_case(IR_OP_MAX_POOL_GRAD, &POOLS[0], F8, F5, F5);
	pool_grad_case(IR_OP_MAX_POOL_GRAD, &POOLS[3], F8, FNONE, F8);
	pool_grad_case(IR_OP_AVG_POOL_GRAD, &POOLS[5], FNONE, F5, F5U);
	static const PoolSpec glob[] = {
	    {2, 3, 7, 7, {0}, {0}, {0}, {0}, 0, 0},  {3, 4, 4, 4, {0}, {0}, {0}, {0}, 0, 0},
	    {2, 5, 9, 13, {0}, {0}, {0}, {0}, 0, 0}, {1, 3, 1, 1, {0}, {0}, {0}, {0}, 0, 0},
	    {2, 2, 3, 5, {0}, {0}, {0}, {0}, 0, 0},
	};
	for (size_t i = 0; i < sizeof glob / sizeof *glob; i++) {
		pool_case(IR_OP_GLOBAL_AVG_POOL, &glob[i], FNONE, FNONE);
		pool_case(IR_OP_GLOBAL_MAX_POOL, &glob[i], FNONE, FNONE);
		pool_case(IR_OP_GLOBAL_MAX_POOL, &glob[i], F8, F8);
		pool_case(IR_OP_GLOBAL_AVG_POOL, &glob[i], F8, F5);
		PoolSpec g = glob[i];
		g.k[0] = (int)g.h, g.k[1] = (int)g.w, g.s[0] = g.s[1] = g.d[0] = g.d[1] = 1;
		pool_grad_case(IR_OP_AVG_POOL_GRAD, &g, FNONE, FNONE, FNONE);
		pool_grad_case(IR_OP_MAX_POOL_GRAD, &g, FNONE, FNONE, FNONE);
		pool_grad_case(IR_OP_AVG_POOL_GRAD, &g, FNONE, F5, F5);
	}
}

/* ---- Pad, Clip, Assign ---- */

static void pad_case(int rank, const int64_t *dims, const int64_t *pads, float value, LnsFormat fin,
                     LnsFormat fout)
{
	Case k;
	begin(&k, "pad rank %d value %g %s -> %s (pads %lld %lld ...)", rank, (double)value,
	      fname(fin), fname(fout), (long long)pads[0], (long long)pads[1]);
	IrValue *x = data(&k, "x", rank, dims, fin);
	IrAttrs a;
	memset(&a, 0, sizeof a);
	a.pad.n = rank;
	memcpy(a.pad.pads, pads, sizeof(int64_t) * (size_t)(2 * rank));
	a.pad.value = value;
	if (x)
		node(&k, IR_OP_PAD, 1, &x, &a, fout);
	run(&k);
}

static void test_pad(void)
{
	static const int64_t d4[] = {2, 3, 5, 7}, p4a[] = {0, 0, 1, 2, 0, 0, 3, 1};
	static const int64_t p4b[] = {1, 0, -1, 1, 0, 2, 1, -2}, p4c[] = {0, 0, 0, 0, 0, 0, 0, 0};
	static const int64_t d2[] = {4, 37}, p2[] = {2, 17, 1, 20}, p2c[] = {-1, -3, 0, -30};
	static const int64_t d1[] = {9}, p1[] = {3, 4};
	pad_case(4, d4, p4a, 0.0f, FNONE, FNONE);
	pad_case(4, d4, p4b, 1.5f, FNONE, FNONE);
	pad_case(4, d4, p4c, 0.0f, FNONE, FNONE);
	pad_case(2, d2, p2, -0.75f, FNONE, FNONE);
	pad_case(2, d2, p2c, 2.0f, FNONE, FNONE);
	pad_case(1, d1, p1, 3.0f, FNONE, FNONE);
	pad_case(4, d4, p4a, 0.0f, F8, F8);   /* codes, zero word */
	pad_case(4, d4, p4b, 0.5f, F8, F8);   /* codes, an encoded value */
	pad_case(2, d2, p2, -3.0f, F5, F5);   /* codes of a stochastic format: nearest */
	pad_case(4, d4, p4a, 1.0f, F8, FF32); /* decoded */
	pad_case(2, d2, p2, 0.25f, FNONE, F8C);
}

static void clip_case(int64_t n, float lo, float hi, LnsFormat fin, LnsFormat fout, int grad)
{
	Case k;
	begin(&k, "clip%s [%g, %g] n %lld %s -> %s", grad ? "grad" : "", (double)lo, (double)hi,
	      (long long)n, fname(fin), fname(fout));
	IrAttrs a = {.clip = {lo, hi}};
	IrValue *in[2] = {data(&k, "x", 2, D(n, 3), fin), input(&k, "x2", 2, D(n, 3), 2.0)};
	if (in[0])
		node(&k, grad ? IR_OP_CLIP_GRAD : IR_OP_CLIP, grad ? 2 : 1, in, &a, fout);
	run(&k);
}

static void test_clip(void)
{
	for (int g = 0; g < 2; g++) {
		clip_case(33, 0.0f, 6.0f, FNONE, FNONE, g);
		clip_case(7, -0.5f, 0.5f, FNONE, FNONE, g);
		clip_case(64, -3.4e38f, 0.25f, F8, F8, g);
		clip_case(21, -1.0f, 3.4e38f, FNONE, F5, g);
		clip_case(16, 0.3f, 0.3f, F8, FF32, g);
	}
}

static void assign_case(int64_t n, LnsFormat fx)
{
	Case k;
	begin(&k, "assign n %lld from %s", (long long)n, fname(fx));
	IrValue *s = cst(&k, "running", 1, D(n), FNONE, 1.0);
	s->role = IR_ROLE_STATE;
	IrValue *in[2] = {s, data(&k, "x", 1, D(n), fx)};
	if (in[1])
		node(&k, IR_OP_ASSIGN, 2, in, NULL, FNONE);
	run(&k);
}

static void test_assign(void)
{
	assign_case(1, FNONE);
	assign_case(37, FNONE);
	assign_case(40, F8);
}

/* ---- Conv and its gradients (sums in another order than the interpreter's) ---- */

static void conv_case(IrOp op, int64_t n, int64_t c, int64_t h, int64_t w, int64_t m, int kk, int s,
                      int pad, int group, int bias)
{
	Case k;
	begin(&k, "%s n%lld c%lld %lldx%lld m%lld k%d s%d p%d g%d%s", ir_op_name(op), (long long)n,
	      (long long)c, (long long)h, (long long)w, (long long)m, kk, s, pad, group,
	      bias ? " bias" : "");
	k.exact = 0;
	k.model = 1;
	IrAttrs a;
	memset(&a, 0, sizeof a);
	a.conv.kernel[0] = a.conv.kernel[1] = kk;
	a.conv.stride[0] = a.conv.stride[1] = s;
	a.conv.dilation[0] = a.conv.dilation[1] = 1;
	for (int i = 0; i < 4; i++)
		a.conv.pad[i] = pad;
	a.conv.group = group;
	int64_t oh = ir_window_out(h, kk, s, 1, pad, pad, 0);
	int64_t ow = ir_window_out(w, kk, s, 1, pad, pad, 0);
	IrValue *in[3];
	int nin = 2;
	if (op == IR_OP_CONV) {
		in[0] = input(&k, "x", 4, D(n, c, h, w), 1.0);
		in[1] = cst(&k, "w", 4, D(m, c / group, kk, kk), FNONE, 0.5);
		if (bias)
			in[nin++] = cst(&k, "b", 1, D(m), FNONE, 0.5);
	} else if (op == IR_OP_CONV_GRAD_X) {
		a.conv.xhw[0] = h, a.conv.xhw[1] = w;
		in[0] = input(&k, "dy", 4, D(n, m, oh, ow), 1.0);
		in[1] = cst(&k, "w", 4, D(m, c / group, kk, kk), FNONE, 0.5);
	} else {
		in[0] = input(&k, "dy", 4, D(n, m, oh, ow), 1.0);
		in[1] = input(&k, "x", 4, D(n, c, h, w), 1.0);
	}
	node(&k, op, nin, in, &a, FNONE);
	run(&k);
}

static void test_conv(void)
{
	static const IrOp ops[] = {IR_OP_CONV, IR_OP_CONV_GRAD_X, IR_OP_CONV_GRAD_W};
	for (int i = 0; i < 3; i++) {
		conv_case(ops[i], 2, 3, 9, 11, 5, 3, 1, 1, 1, 1);
		conv_case(ops[i], 3, 4, 8, 8, 6, 3, 2, 1, 2, 0);
		conv_case(ops[i], 2, 6, 7, 5, 6, 3, 1, 0, 6, 1); /* depthwise */
		conv_case(ops[i], 1, 2, 6, 6, 3, 1, 1, 0, 1, 0);
	}
}

/* ---- CNNs through the pass pipeline ---- */

static IrValue *as_param(Case *k, IrValue *v)
{
	v->role = IR_ROLE_PARAM;
	ir_vec_push(&k->g->params, v);
	return v;
}

static IrValue *param(Case *k, const char *name, int rank, const int64_t *dims, double scale)
{
	return as_param(k, cst(k, name, rank, dims, FNONE, scale));
}

static IrValue *build1(Case *k, IrOp op, IrValue *x, const IrAttrs *a)
{
	return x ? ir_build1(k->g, op, ir_op_name(op), 1, &x, a) : NULL;
}

/* Conv (3x3, pad 1, stride s) - BatchNormalization, on x [n, c, h, w] to m channels. */
static IrValue *conv_bn(Case *k, const char *tag, IrValue *x, int64_t m, int s, int group)
{
	if (!x)
		return NULL;
	int64_t c = x->type->dims[1];
	char nm[32];
	IrAttrs a;
	memset(&a, 0, sizeof a);
	a.conv.kernel[0] = a.conv.kernel[1] = 3;
	a.conv.stride[0] = a.conv.stride[1] = s;
	a.conv.dilation[0] = a.conv.dilation[1] = 1;
	a.conv.pad[0] = a.conv.pad[1] = a.conv.pad[2] = a.conv.pad[3] = 1;
	a.conv.group = group;
	snprintf(nm, sizeof nm, "%s.w", tag);
	IrValue *in[5] = {x, param(k, nm, 4, D(m, c / group, 3, 3), 0.4)};
	/* no conv bias: before a BatchNormalization its gradient is zero up to rounding noise,
	 * which Adam would turn into full steps of either sign */
	IrValue *y = ir_build1(k->g, IR_OP_CONV, tag, 2, in, &a);
	snprintf(nm, sizeof nm, "%s.scale", tag);
	in[0] = y, in[1] = as_param(k, pos_cst(k, nm, m, 0.5, 1.0));
	snprintf(nm, sizeof nm, "%s.shift", tag);
	in[2] = param(k, nm, 1, D(m), 0.2);
	snprintf(nm, sizeof nm, "%s.mean", tag);
	in[3] = cst(k, nm, 1, D(m), FNONE, 0.1);
	snprintf(nm, sizeof nm, "%s.var", tag);
	in[4] = pos_cst(k, nm, m, 0.5, 1.0);
	IrAttrs b = {.bn = {1e-5f, 0.9f, 1}};
	IrNode *bn = y ? ir_build(k->g, IR_OP_BATCH_NORM, "bn", 5, in, &b, NULL) : NULL;
	return bn ? bn->out[0] : NULL;
}

static IrValue *relu(Case *k, IrValue *x)
{
	return build1(k, IR_OP_RELU, x, NULL);
}

static IrValue *pool(Case *k, IrOp op, IrValue *x, int kk, int s, int pad, int incl)
{
	IrAttrs a;
	memset(&a, 0, sizeof a);
	a.pool.kernel[0] = a.pool.kernel[1] = kk;
	a.pool.stride[0] = a.pool.stride[1] = s;
	a.pool.dilation[0] = a.pool.dilation[1] = 1;
	a.pool.pad[0] = a.pool.pad[1] = a.pool.pad[2] = a.pool.pad[3] = pad;
	a.pool.count_include_pad = incl;
	if (x && (op == IR_OP_GLOBAL_AVG_POOL || op == IR_OP_GLOBAL_MAX_POOL)) {
		a.pool.kernel[0] = (int)x->type->dims[2];
		a.pool.kernel[1] = (int)x->type->dims[3];
		a.pool.stride[0] = a.pool.stride[1] = 1;
		a.pool.pad[0] = a.pool.pad[1] = a.pool.pad[2] = a.pool.pad[3] = 0;
	}
	return build1(k, op, x, &a);
}

/* Flatten, then a dense layer to 5 classes (MatMul + Add). */
static IrValue *head(Case *k, IrValue *x)
{
	IrAttrs fl = {.axis = {1, 0}};
	IrValue *f = build1(k, IR_OP_FLATTEN, x, &fl);
	if (!f)
		return NULL;
	IrValue *in[2] = {f, param(k, "fc.w", 2, D(f->type->dims[1], 5), 0.3)};
	IrValue *y = ir_build1(k->g, IR_OP_MATMUL, "fc", 2, in, NULL);
	in[0] = y, in[1] = param(k, "fc.b", 1, D(5), 0.1);
	return y ? ir_build1(k->g, IR_OP_ADD, "fc.add", 2, in, NULL) : NULL;
}

/* conv-BN-Relu-MaxPool, grouped conv-BN-Clip (ReLU6), AveragePool with padding, head. */
static IrValue *b_plain(Case *k, IrValue *x)
{
	IrValue *h = pool(k, IR_OP_MAX_POOL, relu(k, conv_bn(k, "c1", x, 4, 1, 1)), 2, 2, 0, 0);
	IrAttrs r6 = {.clip = {0.0f, 6.0f}};
	h = build1(k, IR_OP_CLIP, conv_bn(k, "c2", h, 6, 1, 2), &r6);
	return head(k, pool(k, IR_OP_AVG_POOL, h, 3, 2, 1, 1));
}

/* A residual block with a depthwise conv, a constant Pad, a global max pool head. */
static IrValue *b_res(Case *k, IrValue *x)
{
	IrValue *h = relu(k, conv_bn(k, "stem", x, 4, 2, 1));
	IrValue *r = conv_bn(k, "dw", relu(k, conv_bn(k, "b1", h, 4, 1, 1)), 4, 1, 4);
	IrValue *in[2] = {r, h};
	IrValue *s = r ? relu(k, ir_build1(k->g, IR_OP_ADD, "res", 2, in, NULL)) : NULL;
	IrAttrs pd;
	memset(&pd, 0, sizeof pd);
	pd.pad.n = 4;
	pd.pad.pads[2] = pd.pad.pads[3] = 1, pd.pad.pads[6] = pd.pad.pads[7] = 1;
	return head(k, pool(k, IR_OP_GLOBAL_MAX_POOL, build1(k, IR_OP_PAD, s, &pd), 0, 0, 0, 0));
}

/* Global average pool head on a two-conv trunk. */
static IrValue *b_gap(Case *k, IrValue *x)
{
	IrValue *h = relu(k, conv_bn(k, "c1", x, 6, 1, 1));
	h = relu(k, conv_bn(k, "c2", h, 8, 2, 2));
	return head(k, pool(k, IR_OP_GLOBAL_AVG_POOL, h, 0, 0, 0, 0));
}

typedef IrValue *(*Build)(Case *k, IrValue *x);

static void cnn_case(const char *name, Build b, const char *recipe, int adam)
{
	Case k;
	begin(&k, "cnn %s %s %s", name, recipe, adam ? "adam" : "sgd");
	k.exact = 0;
	k.model = 1; /* convolutions sum in another order than the interpreter */
	k.big = 1;
	IrValue *x = input(&k, "x", 4, D(3, 2, 10, 10), 1.0);
	run_trained(&k, b(&k, x), recipe, PASS_LOSS_XENT, adam);
}

static void test_cnns(void)
{
	static const struct {
		const char *name;
		Build b;
	} nets[] = {{"plain", b_plain}, {"res", b_res}, {"gap", b_gap}};
	for (size_t i = 0; i < sizeof nets / sizeof *nets; i++) {
		cnn_case(nets[i].name, nets[i].b, "fp32", 0);
		cnn_case(nets[i].name, nets[i].b, "fp32", 1);
		cnn_case(nets[i].name, nets[i].b, "lns-madam", 0);
		cnn_case(nets[i].name, nets[i].b, "lns-sgd", 0);
	}
}

/* The example CNNs and the ONNX CNN fixtures, when present. */
static void test_models(void)
{
	const char *src = getenv("LNSC_SRC");
	static const char *const paths[] = {"examples/cnn/cnn.onnx", "examples/cnn/resnet.onnx"};
	char path[512];
	for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
		snprintf(path, sizeof path, "%s/%s", src ? src : "..", paths[i]);
		FILE *f = fopen(path, "rb");
		if (!f) {
			printf("test_cg_nn: %s not there yet: skipped\n", paths[i]);
			continue;
		}
		fclose(f);
		model_case(path, "fp32", 4, 0, 0);
		model_case(path, "lns-madam", 4, 1, 0);
		model_case(path, "lns-madam", 4, 0, 1);
	}
}

int main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;
	if (cgdiff_init("test_cg_nn"))
		return t_finish("test_cg_nn");
	struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {{"bn", test_batch_norm}, {"pools", test_pools},   {"pad", test_pad},
	             {"clip", test_clip},     {"assign", test_assign}, {"conv", test_conv},
	             {"cnns", test_cnns},     {"models", test_models}};
	for (size_t i = 0; i < sizeof tests / sizeof *tests; i++)
		if (!only || !strcmp(only, tests[i].name))
			tests[i].fn();
	printf("test_cg_nn: %d cases at %d vector width%s\n", ncases, NJ, NJ > 1 ? "s" : "");
	cgdiff_done();
	return t_finish("test_cg_nn");
}
