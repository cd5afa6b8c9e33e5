/* test_interp_nn.c: the reference kernels of the convolutional ops (ir/interp_nn.c), and
 * BatchNormalization's training form, against values computed here.
 *
 * Small cases are checked against numbers worked out by hand (and PyTorch's for the pools'
 * ceil_mode edge); random cases against straightforward references in double written in
 * this file: direct 7-deep loops for Conv and its gradients (no im2col), windows walked tap by
 * tap with explicit bounds checks for the pools, index arithmetic for Pad. LNS cases check the
 * code-domain kernels (MaxPool, Pad) word for word against decode, compute, encode.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/ir.h"
#include "passes/passes.h"
#include "runtime/lnsrt.h"
#include "testlib.h"

#define D(...) ((const int64_t[]){__VA_ARGS__})

static IrCtx *C;
static uint32_t seed_state = 4242;

static const LnsFormat LNS8 = {.bits = 8, .log2g = 3, .scale = LNS_SCALE_CURRENT};

/* ---- helpers ---- */

static double urand(void) /* uniform in [-1, 1) */
{
	seed_state = seed_state * 1664525u + 1013904223u;
	return (double)(seed_state >> 8) / 8388608.0 - 1.0;
}

static float *rand_buf(int64_t n, double scale)
{
	float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
	for (int64_t i = 0; i < n; i++)
		x[i] = (float)(urand() * scale);
	return x;
}

static IrGraph *gnew(void)
{
	return ir_graph_new(C, "t", "test.onnx");
}

static IrValue *cf32(IrGraph *g, const char *name, int rank, const int64_t *dims,
		     const float *data)
{
	const IrType *t = ir_type(C, IR_DT_F32, rank, dims);
	return ir_value_new(g, name, t, IR_ROLE_CONST, data, t);
}

/* Builds a node whose outputs are graph outputs (kept live to the end). */
static IrNode *node(IrGraph *g, IrOp op, const char *name, int nin, IrValue **in,
		    const IrAttrs *at)
{
	IrNode *n = ir_build(g, op, name, nin, in, at, NULL);
	CHECK_MSG(n != NULL, "build %s: %s", name, ir_diag_text(C));
	if (!n)
		exit(t_finish("test_interp_nn"));
	for (int j = 0; j < n->nout; j++)
		n->out[j]->is_output = 1;
	return n;
}

static IrValue *node1(IrGraph *g, IrOp op, const char *name, int nin, IrValue **in,
		      const IrAttrs *at)
{
	return node(g, op, name, nin, in, at)->out[0];
}

static IrInterp *start(IrGraph *g)
{
	CHECK_MSG(pass_plan(g) == 0, "plan: %s", ir_diag_text(C));
	IrInterp *ip = ir_interp_new(g, 42);
	CHECK_MSG(ip != NULL, "interp: %s", ir_diag_text(C));
	if (!ip)
		exit(t_finish("test_interp_nn"));
	return ip;
}

static void run(IrInterp *ip, IrMode mode)
{
	int rc = ir_interp_run(ip, mode);
	CHECK_MSG(rc == 0, "run: %s", ir_interp_error(ip));
}

static IrInterp *go(IrGraph *g)
{
	IrInterp *ip = start(g);
	run(ip, IR_MODE_TRAIN);
	return ip;
}

static void done(IrInterp *ip, IrGraph *g)
{
	ir_interp_free(ip);
	ir_graph_free(g);
}

static float *get(IrInterp *ip, const IrValue *v)
{
	float *x = malloc(sizeof(float) * (size_t)v->type->numel + 8);
	CHECK_MSG(ir_interp_read(ip, v, x) == 0, "read %s: %s", v->name, ir_interp_error(ip));
	return x;
}

/* |got - want| <= atol + rtol |want| everywhere; reports the first miss. */
static void near_val(IrInterp *ip, const IrValue *v, const double *want, double rtol,
		     double atol, const char *what)
{
	float *got = get(ip, v);
	int64_t bad = -1;
	for (int64_t i = 0; i < v->type->numel && bad < 0; i++)
		if (!(fabs((double)got[i] - want[i]) <= atol + rtol * fabs(want[i])))
			bad = i;
	CHECK_MSG(bad < 0, "%s: element %lld is %.9g, want %.9g", what, (long long)bad,
		  bad >= 0 ? (double)got[bad] : 0.0, bad >= 0 ? want[bad] : 0.0);
	free(got);
}

/* ---- Conv ---- */

typedef struct ConvCase {
	int64_t N, C, H, W, M;
	int kh, kw, sh, sw, dh, dw, pad[4], group, bias;
} ConvCase;

static int64_t out_dim(int64_t in, int k, int s, int d, int p0, int p1)
{
	return (in + p0 + p1 - (int64_t)d * (k - 1) - 1) / s + 1;
}

/* Calls f(y index, x index, w index) for every (output, tap) pair that reads X (not the
 * padding): the definition of the convolution, walked directly. */
typedef struct ConvRef {
	const ConvCase *c;
	int64_t OH, OW;
} ConvRef;

#define CONV_FOR_EACH(r, yi, xi, wi, ...)                                                        \
	do {                                                                                     \
		const ConvCase *c_ = (r)->c;                                                     \
		int64_t Cg_ = c_->C / c_->group, Mg_ = c_->M / c_->group;                        \
		for (int64_t n_ = 0; n_ < c_->N; n_++)                                           \
			for (int64_t m_ = 0; m_ < c_->M; m_++)                                   \
				for (int64_t oh_ = 0; oh_ < (r)->OH; oh_++)                      \
					for (int64_t ow_ = 0; ow_ < (r)->OW; ow_++)              \
						for (int64_t c2_ = 0; c2_ < Cg_; c2_++)          \
							for (int i_ = 0; i_ < c_->kh; i_++)      \
								for (int j_ = 0; j_ < c_->kw; j_++) { \
		int64_t ih_ = oh_ * c_->sh - c_->pad[0] + (int64_t)i_ * c_->dh;                  \
		int64_t iw_ = ow_ * c_->sw - c_->pad[1] + (int64_t)j_ * c_->dw;                  \
		if (ih_ < 0 || ih_ >= c_->H || iw_ < 0 || iw_ >= c_->W)                          \
			continue;                                                                \
		int64_t ch_ = (m_ / Mg_) * Cg_ + c2_;                                            \
		int64_t yi = ((n_ * c_->M + m_) * (r)->OH + oh_) * (r)->OW + ow_;                \
		int64_t xi = ((n_ * c_->C + ch_) * c_->H + ih_) * c_->W + iw_;                   \
		int64_t wi = ((m_ * Cg_ + c2_) * c_->kh + i_) * c_->kw + j_;                     \
		__VA_ARGS__;                                                                     \
								}                                \
	} while (0)

static void conv_case(const ConvCase *c, const char *what)
{
	ConvRef r = {c, out_dim(c->H, c->kh, c->sh, c->dh, c->pad[0], c->pad[2]),
		     out_dim(c->W, c->kw, c->sw, c->dw, c->pad[1], c->pad[3])};
	int64_t nx = c->N * c->C * c->H * c->W, nw = c->M * (c->C / c->group) * c->kh * c->kw;
	int64_t ny = c->N * c->M * r.OH * r.OW;
	float *x = rand_buf(nx, 1), *w = rand_buf(nw, 1), *b = rand_buf(c->M, 1);
	float *dy = rand_buf(ny, 1);
	IrGraph *g = gnew();
	IrAttrs at = {.conv = {.kernel = {c->kh, c->kw}, .stride = {c->sh, c->sw},
			       .dilation = {c->dh, c->dw}, .group = c->group}};
	memcpy(at.conv.pad, c->pad, sizeof at.conv.pad);
	IrValue *in[3] = {cf32(g, "x", 4, D(c->N, c->C, c->H, c->W), x),
			  cf32(g, "w", 4, D(c->M, c->C / c->group, c->kh, c->kw), w),
			  cf32(g, "b", 1, D(c->M), b)};
	IrValue *y = node1(g, IR_OP_CONV, "conv", c->bias ? 3 : 2, in, &at);
	IrValue *dyv = cf32(g, "dy", 4, D(c->N, c->M, r.OH, r.OW), dy);
	IrAttrs gx = at;
	gx.conv.xhw[0] = c->H, gx.conv.xhw[1] = c->W;
	IrValue *dx = node1(g, IR_OP_CONV_GRAD_X, "conv_dx", 2, (IrValue *[]){dyv, in[1]}, &gx);
	IrValue *dw = node1(g, IR_OP_CONV_GRAD_W, "conv_dw", 2, (IrValue *[]){dyv, in[0]}, &at);
	IrInterp *ip = go(g);
	double *wy = calloc((size_t)ny, sizeof(double)), *wx = calloc((size_t)nx, sizeof(double));
	double *ww = calloc((size_t)nw, sizeof(double));
	for (int64_t i = 0; c->bias && i < ny; i++)
		wy[i] = b[i / (r.OH * r.OW) % c->M];
	CONV_FOR_EACH(&r, yi, xi, wi, {
		wy[yi] += (double)x[xi] * w[wi];
		wx[xi] += (double)dy[yi] * w[wi];
		ww[wi] += (double)dy[yi] * x[xi];
	});
	char msg[96];
	double K = (double)(c->C / c->group * c->kh * c->kw);
	snprintf(msg, sizeof msg, "%s: Conv", what);
	near_val(ip, y, wy, 1e-5, 1e-6 * K, msg);
	snprintf(msg, sizeof msg, "%s: ConvGradX", what);
	near_val(ip, dx, wx, 1e-5, 1e-6 * (double)c->M * c->kh * c->kw, msg);
	snprintf(msg, sizeof msg, "%s: ConvGradW", what);
	near_val(ip, dw, ww, 1e-5, 1e-6 * (double)(c->N * r.OH * r.OW), msg);
	free(x), free(w), free(b), free(dy), free(wy), free(wx), free(ww);
	done(ip, g);
}

static void test_conv(void)
{
	/* hand-computed: 3x3 input 0..8, 2x2 kernel [[1,2],[3,4]], pad 1, stride 2, bias 0.5 */
	IrGraph *g = gnew();
	float x[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, w[4] = {1, 2, 3, 4}, b[1] = {0.5f};
	IrAttrs at = {.conv = {.kernel = {2, 2}, .stride = {2, 2}, .dilation = {1, 1},
			       .pad = {1, 1, 1, 1}, .group = 1}};
	IrValue *in[3] = {cf32(g, "x", 4, D(1, 1, 3, 3), x), cf32(g, "w", 4, D(1, 1, 2, 2), w),
			  cf32(g, "b", 1, D(1), b)};
	IrValue *y = node1(g, IR_OP_CONV, "conv", 3, in, &at);
	IrInterp *ip = go(g);
	/* (0,0): x00*4; (0,1): x01*3 + x02*4; (1,0): x10*2 + x20*4; (1,1): the full window */
	double want[4] = {0.5, 11.5, 30.5, 67.5};
	near_val(ip, y, want, 0, 0, "conv by hand");
	done(ip, g);

	static const ConvCase cases[] = {
		{2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, 1},
		{2, 4, 9, 8, 6, 3, 2, 2, 1, 2, 1, {2, 0, 1, 1}, 2, 1},   /* groups, asymmetric */
		{1, 5, 6, 7, 10, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 5, 0},  /* depthwise, x2 */
		{2, 6, 4, 5, 3, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, 1, 1},   /* pointwise: no im2col */
		{2, 6, 5, 5, 4, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, 2, 0},   /* 1x1, stride 2 */
		{1, 16, 8, 8, 1, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, 1, 0},  /* chunked im2col */
		{3, 2, 10, 9, 4, 3, 3, 1, 2, 2, 3, {2, 3, 0, 1}, 1, 1},  /* dilations 2, 3 */
		{1, 3, 2, 2, 2, 3, 3, 1, 1, 1, 1, {2, 2, 2, 2}, 1, 1},   /* kernel over pads */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char what[32];
		snprintf(what, sizeof what, "conv case %zu", i);
		conv_case(&cases[i], what);
	}
}

/* ---- BatchNormalization ---- */

typedef struct Bn {
	IrGraph *g;
	IrNode *n, *grad;
	IrValue *in[5];
} Bn;

/* A BatchNormalization node (and its gradient on dy) over constants. */
static Bn bn_graph(int rank, const int64_t *xd, const float *x, const float *vecs[4],
		   const float *dy, float eps, float momentum, int training)
{
	Bn b = {.g = gnew()};
	static const char *names[5] = {"x", "scale", "bias", "mean", "var"};
	b.in[0] = cf32(b.g, names[0], rank, xd, x);
	for (int i = 1; i < 5; i++)
		b.in[i] = cf32(b.g, names[i], 1, xd + 1, vecs[i - 1]);
	IrAttrs at = {.bn = {.epsilon = eps, .momentum = momentum, .training = training}};
	b.n = node(b.g, IR_OP_BATCH_NORM, "bn", 5, b.in, &at);
	if (dy) {
		IrValue *gin[5] = {cf32(b.g, "dy", rank, xd, dy), b.in[0], b.in[1], b.n->out[3],
				   b.n->out[4]};
		b.grad = node(b.g, IR_OP_BATCH_NORM_GRAD, "bn_grad", 5, gin, &at);
	}
	return b;
}

static void test_bn_by_hand(void)
{
	float x[4] = {1, 2, 3, 4}, sc[1] = {2}, bi[1] = {0.5f}, rm[1] = {0}, rv[1] = {1};
	const float *vecs[4] = {sc, bi, rm, rv};
	Bn b = bn_graph(4, D(2, 1, 1, 2), x, vecs, NULL, 0.0f, 0.9f, 0);
	IrInterp *ip = go(b.g);
	/* batch mean 2.5, biased variance 1.25; running 0.9 * old + 0.1 * batch */
	double want[4], s = 1 / sqrt(1.25);
	for (int i = 0; i < 4; i++)
		want[i] = (x[i] - 2.5) * s * 2 + 0.5;
	near_val(ip, b.n->out[0], want, 1e-6, 1e-6, "bn train by hand");
	near_val(ip, b.n->out[1], (double[]){0.25}, 1e-6, 0, "bn running mean");
	near_val(ip, b.n->out[2], (double[]){1.025}, 1e-6, 0, "bn running var");
	near_val(ip, b.n->out[3], (double[]){2.5}, 0, 0, "bn batch mean");
	near_val(ip, b.n->out[4], (double[]){1.25}, 0, 0, "bn batch var");
	run(ip, IR_MODE_EVAL); /* the running statistics, passed on */
	for (int i = 0; i < 4; i++)
		want[i] = 2 * x[i] + 0.5;
	near_val(ip, b.n->out[0], want, 1e-6, 1e-6, "bn eval by hand");
	for (int j = 1; j < 5; j++)
		near_val(ip, b.n->out[j], (double[]){j % 2 ? 0 : 1}, 0, 0, "bn eval passes stats");
	done(ip, b.g);
}

/* Per channel mean and biased variance over N and the spatial dims, in double. */
static void bn_stats_ref(const float *x, int64_t N, int64_t Cc, int64_t S, int64_t c,
			 double *mean, double *var)
{
	double s = 0, ss = 0;
	for (int64_t i = 0; i < N * S; i++)
		s += x[((i / S) * Cc + c) * S + i % S];
	*mean = s / (double)(N * S);
	for (int64_t i = 0; i < N * S; i++) {
		double d = x[((i / S) * Cc + c) * S + i % S] - *mean;
		ss += d * d;
	}
	*var = ss / (double)(N * S);
}

static void bn_random(int rank, const int64_t *xd, int onnx_training)
{
	int64_t N = xd[0], Cc = xd[1], S = 1;
	for (int i = 2; i < rank; i++)
		S *= xd[i];
	int64_t n = N * Cc * S;
	float *x = rand_buf(n, 2), *dy = rand_buf(n, 1), *sc = rand_buf(Cc, 1),
	      *bi = rand_buf(Cc, 1), *rm = rand_buf(Cc, 1), *rv = rand_buf(Cc, 1);
	for (int64_t c = 0; c < Cc; c++) {
		rv[c] = fabsf(rv[c]) + 0.5f;
		for (int64_t i = 0; i < N * S; i++) /* a channel offset, to test the centring */
			x[((i / S) * Cc + c) * S + i % S] += (float)c;
	}
	const float *vecs[4] = {sc, bi, rm, rv};
	const float eps = 1e-3f, mom = 0.8f;
	Bn b = bn_graph(rank, xd, x, vecs, dy, eps, mom, onnx_training);
	IrInterp *ip = start(b.g);
	if (onnx_training) { /* lnsc eval of a model in training mode: batch statistics */
		ir_interp_set_onnx_semantics(ip, 1);
		run(ip, IR_MODE_EVAL);
	} else {
		run(ip, IR_MODE_TRAIN);
	}
	double *y = malloc(sizeof(double) * (size_t)n), *dx = malloc(sizeof(double) * (size_t)n);
	double rmn[64], rvn[64], bmn[64], bvn[64], dsc[64], dbi[64];
	for (int64_t c = 0; c < Cc; c++) {
		double m, v;
		bn_stats_ref(x, N, Cc, S, c, &m, &v);
		rmn[c] = rm[c] * (double)mom + m * (1 - (double)mom);
		rvn[c] = rv[c] * (double)mom + v * (1 - (double)mom);
		bmn[c] = m, bvn[c] = v;
		double is = 1 / sqrt(v + (double)eps), mdy = 0, mdyx = 0, cnt = (double)(N * S);
		for (int64_t i = 0; i < N * S; i++) {
			int64_t k = ((i / S) * Cc + c) * S + i % S;
			y[k] = (x[k] - m) * is * sc[c] + bi[c];
			mdy += dy[k] / cnt;
			mdyx += dy[k] * (x[k] - m) * is / cnt;
		}
		dbi[c] = mdy * cnt, dsc[c] = mdyx * cnt;
		for (int64_t i = 0; i < N * S; i++) {
			int64_t k = ((i / S) * Cc + c) * S + i % S;
			dx[k] = sc[c] * is * (dy[k] - mdy - (x[k] - m) * is * mdyx);
		}
	}
	const char *mode = onnx_training ? "bn onnx training eval" : "bn train";
	near_val(ip, b.n->out[0], y, 1e-5, 1e-5, mode);
	near_val(ip, b.n->out[1], rmn, 1e-5, 1e-6, "bn running mean'");
	near_val(ip, b.n->out[2], rvn, 1e-5, 1e-6, "bn running var'");
	near_val(ip, b.n->out[3], bmn, 1e-6, 1e-6, "bn batch mean");
	near_val(ip, b.n->out[4], bvn, 1e-6, 1e-6, "bn batch var");
	if (!onnx_training) {
		near_val(ip, b.grad->out[0], dx, 1e-4, 1e-5, "BatchNormGrad dX");
		near_val(ip, b.grad->out[1], dsc, 1e-5, 1e-5, "BatchNormGrad dscale");
		near_val(ip, b.grad->out[2], dbi, 1e-5, 1e-5, "BatchNormGrad dB");
	}
	free(x), free(dy), free(sc), free(bi), free(rm), free(rv), free(y), free(dx);
	done(ip, b.g);
}

static void test_bn(void)
{
	test_bn_by_hand();
	bn_random(4, D(3, 4, 5, 2), 0);
	bn_random(2, D(6, 3), 0);
	bn_random(3, D(2, 5, 7), 0);
	bn_random(4, D(3, 4, 5, 2), 1);
}

/* ---- pools ---- */

typedef struct PoolCase {
	int64_t N, C, H, W;
	int kh, kw, sh, sw, dh, dw, pad[4], ceil, cip;
} PoolCase;

static IrAttrs pool_attrs(const PoolCase *p)
{
	IrAttrs at = {.pool = {.kernel = {p->kh, p->kw}, .stride = {p->sh, p->sw},
			       .dilation = {p->dh, p->dw}, .ceil_mode = p->ceil,
			       .count_include_pad = p->cip}};
	memcpy(at.pool.pad, p->pad, sizeof at.pool.pad);
	return at;
}

/* The taps of output (oh, ow)'s window: calls BODY with (ih, iw) for each one inside X; cpad
 * counts the taps inside X and its pads (count_include_pad's divisor). */
#define POOL_TAPS(p, oh, ow, ih, iw, cpad, ...)                                         \
	for (int i_ = 0; i_ < (p)->kh; i_++)                                            \
		for (int j_ = 0; j_ < (p)->kw; j_++) {                                  \
			int64_t ih = (oh) * (p)->sh - (p)->pad[0] + (int64_t)i_ * (p)->dh;  \
			int64_t iw = (ow) * (p)->sw - (p)->pad[1] + (int64_t)j_ * (p)->dw;  \
			cpad += ih < (p)->H + (p)->pad[2] && iw < (p)->W + (p)->pad[3]; \
			if (ih < 0 || ih >= (p)->H || iw < 0 || iw >= (p)->W)           \
				continue;                                               \
			__VA_ARGS__;                                                    \
		}

/* Output (oh, ow) of plane pl by the definition: the first maximum in window order (its
 * flat index in *arg, -1 when the window holds only padding), or the average, whose divisor
 * goes to *div. */
static double pool_ref(const PoolCase *p, const float *x, int64_t pl, int64_t oh, int64_t ow,
		       int avg, int64_t *arg, double *div)
{
	double best = 0, sum = 0;
	int64_t cnt = 0, cpad = 0;
	*arg = -1;
	POOL_TAPS(p, oh, ow, ih, iw, cpad, {
		int64_t k = (pl * p->H + ih) * p->W + iw;
		if (*arg < 0 || x[k] > best)
			best = x[k], *arg = k;
		sum += x[k];
		cnt++;
	});
	*div = (double)(p->cip ? cpad : cnt);
	return avg ? sum / *div : best;
}

static void pool_case(const PoolCase *p, const char *what)
{
	int64_t OH = ir_window_out(p->H, p->kh, p->sh, p->dh, p->pad[0], p->pad[2], p->ceil);
	int64_t OW = ir_window_out(p->W, p->kw, p->sw, p->dw, p->pad[1], p->pad[3], p->ceil);
	int64_t nx = p->N * p->C * p->H * p->W, ny = p->N * p->C * OH * OW;
	float *x = rand_buf(nx, 1), *dy = rand_buf(ny, 1);
	x[0] = x[1] = 2.0f; /* a tie at the top: the first maximum gets the gradient */
	IrGraph *g = gnew();
	IrAttrs at = pool_attrs(p), ag = at;
	ag.pool.xhw[0] = p->H, ag.pool.xhw[1] = p->W;
	IrValue *xv = cf32(g, "x", 4, D(p->N, p->C, p->H, p->W), x);
	IrValue *dyv = cf32(g, "dy", 4, D(p->N, p->C, OH, OW), dy);
	IrValue *mx = node1(g, IR_OP_MAX_POOL, "max", 1, &xv, &at);
	IrValue *av = node1(g, IR_OP_AVG_POOL, "avg", 1, &xv, &at);
	IrValue *gm = node1(g, IR_OP_MAX_POOL_GRAD, "max_grad", 2, (IrValue *[]){dyv, xv}, &at);
	IrValue *ga = node1(g, IR_OP_AVG_POOL_GRAD, "avg_grad", 1, &dyv, &ag);
	IrInterp *ip = go(g);
	double *wm = malloc(sizeof(double) * (size_t)ny), *wa = malloc(sizeof(double) * (size_t)ny);
	double *wgm = calloc((size_t)nx, sizeof(double)), *wga = calloc((size_t)nx, sizeof(double));
	for (int64_t pl = 0; pl < p->N * p->C; pl++)
		for (int64_t oh = 0; oh < OH; oh++)
			for (int64_t ow = 0; ow < OW; ow++) {
				int64_t o = (pl * OH + oh) * OW + ow, arg, cpad = 0;
				double div;
				wm[o] = pool_ref(p, x, pl, oh, ow, 0, &arg, &div);
				if (arg >= 0)
					wgm[arg] += dy[o];
				wa[o] = pool_ref(p, x, pl, oh, ow, 1, &arg, &div);
				POOL_TAPS(p, oh, ow, ih, iw, cpad,
					  wga[(pl * p->H + ih) * p->W + iw] += dy[o] / div);
			}
	char msg[96];
	snprintf(msg, sizeof msg, "%s: MaxPool", what);
	near_val(ip, mx, wm, 0, 0, msg);
	snprintf(msg, sizeof msg, "%s: AveragePool", what);
	near_val(ip, av, wa, 1e-6, 1e-7, msg);
	snprintf(msg, sizeof msg, "%s: MaxPoolGrad", what);
	near_val(ip, gm, wgm, 1e-6, 1e-7, msg);
	snprintf(msg, sizeof msg, "%s: AvgPoolGrad", what);
	near_val(ip, ga, wga, 1e-5, 1e-6, msg);
	free(x), free(dy), free(wm), free(wa), free(wgm), free(wga);
	done(ip, g);
}

/* PyTorch's numbers for a 4x4 input 0..15, kernel 3, stride 2, pad 1, ceil_mode: the last
 * window runs past the end pad, and count_include_pad divides only up to it. */
static void test_pools_by_hand(void)
{
	float x[16], nx[16];
	for (int i = 0; i < 16; i++)
		x[i] = (float)i, nx[i] = -(float)i;
	PoolCase p = {1, 1, 4, 4, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 1, 1};
	IrGraph *g = gnew();
	IrValue *xv = cf32(g, "x", 4, D(1, 1, 4, 4), x), *nv = cf32(g, "nx", 4, D(1, 1, 4, 4), nx);
	IrAttrs inc = pool_attrs(&p), exc = inc;
	exc.pool.count_include_pad = 0;
	IrValue *ai = node1(g, IR_OP_AVG_POOL, "avg_inc", 1, &xv, &inc);
	IrValue *ae = node1(g, IR_OP_AVG_POOL, "avg_exc", 1, &xv, &exc);
	IrValue *mx = node1(g, IR_OP_MAX_POOL, "max", 1, &nv, &inc);
	IrInterp *ip = go(g);
	double wi[9] = {10.0 / 9, 24.0 / 9, 10.0 / 6, 51.0 / 9, 10, 33.0 / 6, 25.0 / 6, 42.0 / 6,
			15.0 / 4};
	double we[9] = {2.5, 4, 5, 8.5, 10, 11, 12.5, 14, 15};
	double wm[9] = {0, -1, -3, -4, -5, -7, -12, -13, -15}; /* padding never wins */
	CHECK(ai->type->dims[2] == 3 && ai->type->dims[3] == 3);
	near_val(ip, ai, wi, 1e-6, 0, "avg pool count_include_pad by hand");
	near_val(ip, ae, we, 1e-6, 0, "avg pool by hand");
	near_val(ip, mx, wm, 0, 0, "max pool by hand");
	done(ip, g);
}

static void test_global_pools(void)
{
	int64_t n = 2 * 3 * 4 * 5;
	float *x = rand_buf(n, 1);
	IrGraph *g = gnew();
	IrValue *xv = cf32(g, "x", 4, D(2, 3, 4, 5), x);
	IrAttrs at = {.pool = {.kernel = {4, 5}, .stride = {1, 1}, .dilation = {1, 1}}};
	IrValue *ga = node1(g, IR_OP_GLOBAL_AVG_POOL, "gap", 1, &xv, &at);
	IrValue *gm = node1(g, IR_OP_GLOBAL_MAX_POOL, "gmp", 1, &xv, &at);
	IrInterp *ip = go(g);
	double wa[6], wm[6];
	for (int pl = 0; pl < 6; pl++) {
		wa[pl] = 0, wm[pl] = -INFINITY;
		for (int i = 0; i < 20; i++)
			wa[pl] += x[pl * 20 + i] / 20.0, wm[pl] = fmax(wm[pl], x[pl * 20 + i]);
	}
	CHECK(ga->type->rank == 4 && ga->type->dims[2] == 1 && ga->type->dims[3] == 1);
	near_val(ip, ga, wa, 1e-6, 1e-7, "GlobalAveragePool");
	near_val(ip, gm, wm, 0, 0, "GlobalMaxPool");
	free(x);
	done(ip, g);
}

static void test_pools(void)
{
	test_pools_by_hand();
	test_global_pools();
	static const PoolCase cases[] = {
		{2, 3, 7, 6, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 0, 0},
		{2, 3, 7, 6, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, 1, 1},
		{1, 2, 8, 9, 2, 3, 3, 2, 1, 1, {1, 0, 0, 2}, 1, 1},  /* asymmetric pads, ceil */
		{1, 2, 8, 9, 2, 3, 3, 2, 1, 1, {1, 0, 0, 2}, 1, 0},
		{2, 2, 9, 9, 3, 2, 2, 1, 2, 3, {2, 1, 2, 1}, 0, 1},  /* dilations */
		{1, 4, 5, 5, 2, 2, 2, 2, 1, 1, {0, 0, 0, 0}, 1, 0},  /* ceil, no pads */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char what[32];
		snprintf(what, sizeof what, "pool case %zu", i);
		pool_case(&cases[i], what);
	}
}

/* MaxPool between identical LNS formats runs on the words: the result is the word of the
 * window's largest value (decode, pool, encode with the same k gives the same words), no
 * encode happens, and padding never beats a negative. */
static void test_max_pool_codes(void)
{
	int64_t n = 2 * 2 * 5 * 6;
	float *x = rand_buf(n, 4);
	for (int64_t i = 0; i < n; i += 7)
		x[i] = 0; /* zeros among negatives */
	for (int i = 0; i < 30; i++)
		x[i] = -0.05f - fabsf(x[i]); /* a plane with only negatives */
	const IrType *lt = ir_type_lns(C, LNS8, 4, D(2, 2, 5, 6));
	IrGraph *g = gnew();
	IrValue *xv = ir_value_new(g, "x", lt, IR_ROLE_PARAM, x, ir_type(C, IR_DT_F32, 4,
									  D(2, 2, 5, 6)));
	PoolCase p = {2, 2, 5, 6, 3, 2, 2, 2, 1, 1, {1, 1, 1, 0}, 1, 0};
	IrAttrs at = pool_attrs(&p);
	IrValue *y = node1(g, IR_OP_MAX_POOL, "max", 1, &xv, &at);
	y->type = ir_type_with_format(C, y->type, LNS8); /* as the precision pass would */
	IrInterp *ip = go(g);
	float *xd = get(ip, xv), *yd = get(ip, y);
	int64_t ny = y->type->numel, OH = y->type->dims[2], OW = y->type->dims[3];
	int32_t k = ir_interp_scale(ip, xv)->k;
	const uint8_t *yc = ir_interp_data(ip, y);
	int ok = 1;
	for (int64_t pl = 0; pl < 4; pl++)
		for (int64_t oh = 0; oh < OH; oh++)
			for (int64_t ow = 0; ow < OW; ow++) {
				int64_t o = (pl * OH + oh) * OW + ow, arg;
				double div, want = pool_ref(&p, xd, pl, oh, ow, 0, &arg, &div);
				ok &= yd[o] == (float)want;
				ok &= yc[o] == lns_encode(LNS8, k, (float)want, 0, NULL);
			}
	CHECK_MSG(ok, "max pool on codes differs from decode, pool, encode");
	CHECK(yd[0] < 0); /* the all-negative plane: padding did not win */
	CHECK(ir_interp_scale(ip, y)->n_total == 0);
	(void)ny;
	free(x), free(xd), free(yd);
	done(ip, g);
}

/* ---- Pad, Clip ---- */

/* The input element under output element o of a Pad, or -1 in the padding. */
static int64_t pad_src(const IrType *ti, const IrType *to, const IrAttrPad *a, int64_t o)
{
	int64_t src = 0;
	for (int d = 0; d < ti->rank; d++) {
		int64_t stride = 1;
		for (int e = d + 1; e < to->rank; e++)
			stride *= to->dims[e];
		int64_t i = o / stride % to->dims[d] - a->pads[d];
		if (i < 0 || i >= ti->dims[d])
			return -1;
		src = src * ti->dims[d] + i;
	}
	return src;
}

static void test_pad(void)
{
	IrGraph *g = gnew();
	float *x = rand_buf(24, 1);
	int64_t li[6] = {-3, 4, 5, 1LL << 40, 0, 9};
	IrValue *xv = cf32(g, "x", 3, D(2, 3, 4), x);
	const IrType *it = ir_type(C, IR_DT_I64, 2, D(2, 3));
	IrValue *iv = ir_value_new(g, "i", it, IR_ROLE_CONST, li, it);
	/* begins {0, 1, -1}, ends {1, -1, 2}: pad and crop at once -> [3, 3, 5] */
	IrAttrs pf = {.pad = {.n = 3, .pads = {0, 1, -1, 1, -1, 2}, .value = 1.5f}};
	IrAttrs pi = {.pad = {.n = 2, .pads = {1, 0, 0, 2}, .value = 7.0f}};
	IrAttrs pz = {.pad = {.n = 3, .pads = {0, 0, 0, 0, 0, 0}}};
	IrValue *yf = node1(g, IR_OP_PAD, "pad_f32", 1, &xv, &pf);
	IrValue *yi = node1(g, IR_OP_PAD, "pad_i64", 1, &iv, &pi);
	IrValue *yz = node1(g, IR_OP_PAD, "pad_none", 1, &xv, &pz);
	IrInterp *ip = go(g);
	CHECK(yf->type->dims[0] == 3 && yf->type->dims[1] == 3 && yf->type->dims[2] == 5);
	double w[48];
	for (int64_t o = 0; o < yf->type->numel; o++) {
		int64_t s = pad_src(xv->type, yf->type, &pf.pad, o);
		w[o] = s < 0 ? 1.5 : x[s];
	}
	near_val(ip, yf, w, 0, 0, "pad f32 with crops");
	for (int i = 0; i < 24; i++)
		w[i] = x[i];
	near_val(ip, yz, w, 0, 0, "pad by nothing");
	int64_t got[15];
	CHECK(yi->type->dt == IR_DT_I64 && yi->type->numel == 15);
	CHECK(ir_interp_read(ip, yi, got) == 0);
	int ok = 1;
	for (int64_t o = 0; o < 15; o++) {
		int64_t s = pad_src(it, yi->type, &pi.pad, o);
		ok &= got[o] == (s < 0 ? 7 : li[s]);
	}
	CHECK_MSG(ok, "pad i64");
	free(x);
	done(ip, g);

	/* LNS words: the output keeps the input's k; value 0 is word 0, 2.5 its nearest code */
	g = gnew();
	x = rand_buf(6, 3);
	const IrType *lt = ir_type_lns(C, LNS8, 2, D(2, 3));
	IrValue *lv = ir_value_new(g, "l", lt, IR_ROLE_PARAM, x, ir_type(C, IR_DT_F32, 2, D(2, 3)));
	IrAttrs p0 = {.pad = {.n = 2, .pads = {1, -1, 0, 1}}}, p1 = p0;
	p1.pad.value = 2.5f;
	IrValue *l0 = node1(g, IR_OP_PAD, "pad_lns0", 1, &lv, &p0);
	IrValue *l1 = node1(g, IR_OP_PAD, "pad_lns1", 1, &lv, &p1);
	ip = go(g);
	const uint8_t *xc = ir_interp_data(ip, lv), *c0 = ir_interp_data(ip, l0),
		      *c1 = ir_interp_data(ip, l1);
	int32_t k = ir_interp_scale(ip, lv)->k;
	uint8_t pw = (uint8_t)lns_encode(LNS8, k, 2.5f, 0, NULL);
	ok = pw != 0;
	for (int64_t o = 0; o < l0->type->numel; o++) {
		int64_t s = pad_src(lt, l0->type, &p0.pad, o);
		ok &= c0[o] == (s < 0 ? 0 : xc[s]) && c1[o] == (s < 0 ? pw : xc[s]);
	}
	CHECK_MSG(ok, "pad on LNS words");
	CHECK(ir_interp_scale(ip, l0)->n_total == 0);
	float *d1 = get(ip, l1), want = lns_decode(LNS8, k, pw);
	CHECK(d1[0] == want && fabsf(want - 2.5f) < 0.1f);
	free(x), free(d1);
	done(ip, g);
}

static void test_clip(void)
{
	IrGraph *g = gnew();
	float x[6] = {-2, -1, 0, 0.5f, 1, 3}, dy[6] = {1, 2, 3, 4, 5, 6};
	IrValue *xv = cf32(g, "x", 1, D(6), x), *dv = cf32(g, "dy", 1, D(6), dy);
	IrAttrs at = {.clip = {.min = -1, .max = 1}};
	IrValue *y = node1(g, IR_OP_CLIP, "clip", 1, &xv, &at);
	IrValue *dx = node1(g, IR_OP_CLIP_GRAD, "clip_grad", 2, (IrValue *[]){dv, xv}, &at);
	IrInterp *ip = go(g);
	near_val(ip, y, (double[]){-1, -1, 0, 0.5, 1, 1}, 0, 0, "clip");
	/* torch.clamp: the gradient passes at the bounds too */
	near_val(ip, dx, (double[]){0, 2, 3, 4, 5, 0}, 0, 0, "clip grad");
	done(ip, g);
}

/* ---- Assign, state with initial data ---- */

/* A state value starts from its initial data; Assign (an UPDATE) writes it in the train step
 * only, after every reader. */
static void test_assign(void)
{
	IrGraph *g = gnew();
	float s0[3] = {1, 2, 3}, x[3] = {10, 20, 30};
	const IrType *t = ir_type(C, IR_DT_F32, 1, D(3));
	IrValue *s = ir_value_new(g, "s", t, IR_ROLE_STATE, s0, t);
	IrValue *y = node1(g, IR_OP_ADD, "add", 2, (IrValue *[]){s, cf32(g, "x", 1, D(3), x)}, NULL);
	IrNode *as = ir_build(g, IR_OP_ASSIGN, "assign", 2, (IrValue *[]){s, y}, NULL, NULL);
	CHECK_MSG(as != NULL, "%s", ir_diag_text(C));
	as->phase = IR_PHASE_UPDATE;
	IrInterp *ip = start(g);
	near_val(ip, s, (double[]){1, 2, 3}, 0, 0, "state from its initial data");
	run(ip, IR_MODE_EVAL);
	near_val(ip, s, (double[]){1, 2, 3}, 0, 0, "eval does not assign");
	run(ip, IR_MODE_TRAIN);
	near_val(ip, y, (double[]){11, 22, 33}, 0, 0, "read before the assign");
	near_val(ip, s, (double[]){11, 22, 33}, 0, 0, "assigned");
	run(ip, IR_MODE_TRAIN);
	near_val(ip, s, (double[]){21, 42, 63}, 0, 0, "assigned twice");
	done(ip, g);
}

/* ---- BatchNormalization in training form (passes/canon.c) ---- */

/* The runtime's view of a running statistic: a state tensor of no parameter in the
 * descriptor, saved in a checkpoint and restored into a fresh interpreter. */
static void check_state_table(IrGraph *g, IrInterp *ip, const IrValue *s, const double *want)
{
	IrArena *a = ir_arena_new();
	LnsrtModelDesc d;
	CHECK_MSG(ir_model_desc(g, a, "fp32", &d) == 0, "%s", ir_diag_text(C));
	int i = lnsrt_desc_find(&d, s->name);
	CHECK(i >= 0 && d.tensors[i].role == IR_ROLE_STATE && d.tensors[i].param == -1 &&
	      d.tensors[i].area == IR_AREA_STATE && d.tensors[i].offset == (int64_t)s->loc.offset);
	char path[64], err[256];
	snprintf(path, sizeof path, "/tmp/lnsc_test_bn_%d.ckpt", (int)getpid());
	LnsrtTrainState ts;
	memset(&ts, 0, sizeof ts);
	CHECK_MSG(lnsrt_checkpoint_save(&d, ir_interp_state_blob(ip), &ts, path, err, sizeof err) == 0,
		  "%s", err);
	IrInterp *fresh = ir_interp_new(g, 1);
	float got[8];
	CHECK(ir_interp_read(fresh, s, got) == 0 && got[0] == ((float *)s->init)[0]);
	CHECK_MSG(lnsrt_checkpoint_load(&d, ir_interp_state_blob(fresh), NULL, path, err,
					sizeof err) == 0, "%s", err);
	ir_interp_state_loaded(fresh);
	near_val(fresh, s, want, 1e-5, 1e-6, "running mean from a checkpoint");
	remove(path);
	ir_interp_free(fresh);
	ir_arena_free(a);
}

/* X -> BatchNormalization -> Y (MSE loss) through the fp32 pipeline: the running statistics
 * become state of no parameter that keeps its initial data, the train step moves them by
 * momentum, the eval step normalises by them. */
static void test_bn_training_form(void)
{
	enum { N = 4, CH = 3, S = 4, NX = N * CH * S };
	float *x = rand_buf(NX, 2), sc[CH] = {1, 2, 0.5f}, bi[CH] = {0, 1, -1};
	float rm[CH] = {0.5f, -1, 2}, rv[CH] = {1, 2, 0.25f}, lab[NX] = {0};
	IrGraph *g = gnew();
	g->opset = 15;
	const IrType *xt = ir_type(C, IR_DT_F32, 4, D(N, CH, 2, 2));
	const IrType *ct = ir_type(C, IR_DT_F32, 1, D(CH));
	IrValue *in[5] = {ir_value_new(g, "x", xt, IR_ROLE_INPUT, NULL, NULL),
			  ir_value_new(g, "scale", ct, IR_ROLE_PARAM, sc, ct),
			  ir_value_new(g, "bias", ct, IR_ROLE_PARAM, bi, ct),
			  ir_value_new(g, "mean", ct, IR_ROLE_PARAM, rm, ct),
			  ir_value_new(g, "var", ct, IR_ROLE_PARAM, rv, ct)};
	IrAttrs at = {.bn = {.epsilon = 1e-5f, .momentum = 0.9f}};
	IrNode *bn = ir_build(g, IR_OP_BATCH_NORM, "bn", 5, in, &at, NULL);
	bn->out[0]->is_output = 1;
	ir_vec_push(&g->outputs, bn->out[0]);
	PassOptions o;
	pass_options_default(&o);
	o.recipe = "fp32";
	o.loss = PASS_LOSS_MSE;
	CHECK_MSG(pass_pipeline(g, &o) == 0, "pipeline: %s", ir_diag_text(C));
	CHECK(in[3]->role == IR_ROLE_STATE && !in[3]->param && in[4]->role == IR_ROLE_STATE);
	CHECK(g->params.n == 2);
	int assigns = 0;
	for (int i = 0; i < g->nodes.n; i++)
		if (IR_NODE(g, i)->op == IR_OP_ASSIGN)
			assigns += IR_NODE(g, i)->phase == IR_PHASE_UPDATE &&
				   IR_NODE(g, i)->in[0] == in[3 + assigns];
	CHECK(assigns == 2);
	IrInterp *ip = ir_interp_new(g, 1);
	CHECK_MSG(ip != NULL, "%s", ir_diag_text(C));
	if (!ip)
		return;
	ir_interp_bind(ip, in[0], x);
	ir_interp_bind(ip, g->labels, lab);
	near_val(ip, in[3], (double[]){0.5, -1, 2}, 0, 0, "running mean at init");
	run(ip, IR_MODE_TRAIN);
	double m[CH], v[CH], want[NX];
	for (int c = 0; c < CH; c++) {
		bn_stats_ref(x, N, CH, S, c, &m[c], &v[c]);
		m[c] = 0.9 * rm[c] + 0.1 * m[c];
		v[c] = 0.9 * rv[c] + 0.1 * v[c];
	}
	near_val(ip, in[3], m, 1e-5, 1e-6, "running mean after a step");
	near_val(ip, in[4], v, 1e-5, 1e-6, "running var after a step");
	/* eval: the updated running statistics and the trained scale and bias */
	float scn[CH], bin[CH];
	CHECK(ir_interp_read(ip, in[1], scn) == 0 && ir_interp_read(ip, in[2], bin) == 0);
	CHECK(scn[0] != sc[0]);
	run(ip, IR_MODE_EVAL);
	for (int i = 0; i < NX; i++) {
		int c = i / S % CH;
		want[i] = (x[i] - m[c]) / sqrt(v[c] + 1e-5) * scn[c] + bin[c];
	}
	near_val(ip, bn->out[0], want, 1e-5, 1e-5, "eval with running statistics");
	near_val(ip, in[3], m, 1e-5, 1e-6, "eval leaves the running mean");
	check_state_table(g, ip, in[3], m);
	ir_interp_free(ip);
	ir_graph_free(g);

	/* running statistics fed as an input: unsupported, naming the node */
	g = gnew();
	IrValue *in2[5] = {ir_value_new(g, "x", xt, IR_ROLE_INPUT, NULL, NULL),
			   ir_value_new(g, "scale", ct, IR_ROLE_PARAM, sc, ct),
			   ir_value_new(g, "bias", ct, IR_ROLE_PARAM, bi, ct),
			   ir_value_new(g, "mean", ct, IR_ROLE_INPUT, NULL, NULL),
			   ir_value_new(g, "var", ct, IR_ROLE_PARAM, rv, ct)};
	bn = ir_build(g, IR_OP_BATCH_NORM, "bn_in", 5, in2, &at, NULL);
	bn->out[0]->is_output = 1;
	ir_vec_push(&g->outputs, bn->out[0]);
	ir_diag_clear(C);
	CHECK(pass_pipeline(g, &o) == -1 && ir_error_status(C) == IR_ERR_UNSUPPORTED);
	CHECK_MSG(strstr(ir_diag_text(C), "node 'bn_in'") && strstr(ir_diag_text(C), "'mean'"),
		  "%s", ir_diag_text(C));
	ir_diag_clear(C);
	ir_graph_free(g);
	free(x);
}

int main(void)
{
	C = ir_ctx_new();
	test_conv();
	test_bn();
	test_pools();
	test_max_pool_codes();
	test_pad();
	test_clip();
	test_assign();
	test_bn_training_form();
	ir_ctx_free(C);
	return t_finish("test_interp_nn");
}
