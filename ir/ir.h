/* ir.h: the one IR header: types, values, nodes, graphs, and every ir/ module's entry points.
 *
 * The IR is a graph of nodes in SSA form. Values are tensors with a static shape and an
 * interned type (dtype, and for LNS the format). Ops are declared once in ops.def; each stage
 * keeps its hooks in a table indexed by IrOp. Memory belongs to arenas by lifetime: the
 * context's (types, diagnostics) and each graph's (nodes, values, names, initial data).
 * User errors (a bad model, a bad input) go to the context's diagnostics with a status;
 * broken invariants are asserts.
 */
#ifndef LNSC_IR_H
#define LNSC_IR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/lns.h"

enum { IR_MAX_RANK = 8, IR_MAX_IN = 64 };
#define IR_MAX_DIM ((int64_t)1 << 40)
#define IR_MAX_NUMEL ((int64_t)1 << 34) /* 16 Gi elements: anything larger is absurd here */

/* ---- status codes (also the CLI's exit codes) ---- */
typedef enum {
	IR_OK = 0,
	IR_ERR_RUNTIME = 1,     /* numeric error, I/O failure while running */
	IR_ERR_INPUT = 2,       /* malformed model or input, bad usage */
	IR_ERR_UNSUPPORTED = 3, /* valid ONNX outside what lnsc supports */
} IrStatus;

/* ---- arenas (ir/arena.c) ---- */
typedef struct IrArena IrArena;
IrArena *ir_arena_new(void);
void ir_arena_free(IrArena *a);
void *ir_arena_alloc(IrArena *a, size_t n); /* zeroed, 16-byte aligned; aborts only on OOM */
char *ir_arena_strdup(IrArena *a, const char *s);
char *ir_arena_printf(IrArena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Growable array of pointers (malloc'd; owner frees with ir_vec_free). */
typedef struct IrVec {
	void **v;
	int n, cap;
} IrVec;
void ir_vec_push(IrVec *vec, void *p);
void ir_vec_free(IrVec *vec);

/* ---- dtypes and interned types (ir/type.c) ---- */
typedef enum {
	IR_DT_F32, IR_DT_F64, IR_DT_F16, IR_DT_I8, IR_DT_I16, IR_DT_I32, IR_DT_I64,
	IR_DT_U8, IR_DT_U16, IR_DT_U32, IR_DT_U64, IR_DT_BOOL, IR_DT_LNS, IR_DT_COUNT
} IrDType;

typedef struct IrType {
	IrDType dt;
	LnsFormat fmt; /* dt == IR_DT_LNS only; zero otherwise */
	int rank;
	int64_t dims[IR_MAX_RANK];
	int64_t numel;
	uint32_t hash;
	struct IrType *next; /* intern chain */
} IrType;

size_t ir_dtype_size(IrDType dt); /* bytes per element; LNS: use ir_type_elem_size */
const char *ir_dtype_name(IrDType dt);
int ir_dtype_parse(const char *s, IrDType *out);
int ir_dtype_is_float(IrDType dt); /* f32 f64 f16 lns */
size_t ir_type_elem_size(const IrType *t);
size_t ir_type_bytes(const IrType *t);
/* "f32[64,784]", "lns8g8[64,256]"; full=1 prints the whole LNS format (rounding, scale). */
char *ir_type_str(const IrType *t, int full, char *buf, size_t n);

typedef struct IrCtx IrCtx;
/* Interned: equal types are the same pointer. Returns NULL (and a diagnostic) for an absurd
 * shape: rank > IR_MAX_RANK, a negative dim, or numel > IR_MAX_NUMEL. */
const IrType *ir_type(IrCtx *c, IrDType dt, int rank, const int64_t *dims);
const IrType *ir_type_lns(IrCtx *c, LnsFormat f, int rank, const int64_t *dims);
const IrType *ir_type_f32_like(IrCtx *c, const IrType *t); /* same shape, f32 */
const IrType *ir_type_with_dtype(IrCtx *c, const IrType *t, IrDType dt);
const IrType *ir_type_with_format(IrCtx *c, const IrType *t, LnsFormat f);
const IrType *ir_type_with_shape(IrCtx *c, const IrType *t, int rank, const int64_t *dims);
int ir_type_same_shape(const IrType *a, const IrType *b);

/* ---- ops (ir/ops.c; the table is ops.def) ---- */
typedef enum {
#define X(id, name, mi, ma, no, attr, fl) IR_OP_##id,
#include "ir/ops.def"
#undef X
	IR_OP_COUNT
} IrOp;

enum {
	IR_OPF_ONNX = 1u << 0,
	IR_OPF_EW = 1u << 1,
	IR_OPF_BCAST = 1u << 2,
	IR_OPF_COMMUT = 1u << 3,
	IR_OPF_CODE_EXACT = 1u << 4,
	IR_OPF_MOVE = 1u << 5,
	IR_OPF_RAW = 1u << 6,
	IR_OPF_UPDATE = 1u << 7,
	IR_OPF_GEMM = 1u << 8,
	IR_OPF_NOGRAD = 1u << 9,
};

typedef enum {
	IR_ATTR_NONE, IR_ATTR_GEMM, IR_ATTR_ALPHA, IR_ATTR_AXIS, IR_ATTR_PERM, IR_ATTR_AXES,
	IR_ATTR_SHAPE, IR_ATTR_CAST, IR_ATTR_DROPOUT, IR_ATTR_SLICE, IR_ATTR_OPT, IR_ATTR_CONV,
	IR_ATTR_BN, IR_ATTR_POOL, IR_ATTR_PAD, IR_ATTR_CLIP
} IrAttrKind;

typedef struct IrOpInfo {
	const char *name;
	int min_in, max_in, nout;
	IrAttrKind attr;
	unsigned flags;
} IrOpInfo;

extern const IrOpInfo ir_op_info[IR_OP_COUNT];
const char *ir_op_name(IrOp op);
int ir_op_lookup(const char *name, IrOp *out); /* by ONNX / internal name; 0 if found */
static inline int ir_op_has(IrOp op, unsigned f)
{
	return (ir_op_info[op].flags & f) != 0;
}

/* ---- typed attributes, one struct per kind ---- */
typedef struct { float alpha, beta; int trans_a, trans_b; } IrAttrGemm;
typedef struct { float alpha; } IrAttrAlpha;
/* axis is normalised (>= 0). legacy: the opset < 13 Softmax/LogSoftmax semantics (coerce the
 * input to 2-D at axis: normalise over all dims >= axis). */
typedef struct { int axis; int legacy; } IrAttrAxis;
typedef struct { int n; int perm[IR_MAX_RANK]; } IrAttrPerm;
typedef struct { int n; int axes[IR_MAX_RANK]; } IrAttrAxes; /* sorted, normalised */
typedef struct { int rank; int64_t dims[IR_MAX_RANK]; } IrAttrShape; /* resolved: no 0, -1 */
typedef struct { IrDType to; } IrAttrCast;
/* training: the ONNX model asks for training-mode dropout (training_mode input true). The
 * train step always applies dropout; the eval step applies it only when the interpreter was
 * asked for ONNX inference semantics (lnsc eval) and training is set. */
typedef struct { float ratio; int training; } IrAttrDropout;
typedef struct { int axis; int64_t start, end; } IrAttrSlice;
/* Optimizer hyper-parameters (Madam, SGD, Adam). */
typedef struct {
	float lr, beta1, beta2, eps, momentum, weight_decay, p_scale, g_bound;
} IrAttrOpt;

/* Conv and its gradients (2-D, NCHW; W is [M, C/group, kh, kw]). pad: {top, left, bottom,
 * right} (ONNX's begin h, begin w, end h, end w), auto_pad already resolved by the importer.
 * xhw: ConvGradX only, the spatial dims of X (its output), which dY's shape cannot tell when
 * stride > 1; zero elsewhere. */
typedef struct {
	int kernel[2], stride[2], dilation[2], pad[4];
	int group;
	int64_t xhw[2];
} IrAttrConv;
/* BatchNormalization: outputs (Y, running_mean', running_var', batch_mean, batch_var). The
 * train step uses the batch statistics (biased variance) and running' = running * momentum +
 * batch * (1 - momentum) (ONNX opset 14 definition); the eval step uses the running statistics
 * and passes them through, unless the interpreter runs with ONNX semantics (lnsc eval) and
 * training is set (the model asked for training mode), as for Dropout. BatchNormGrad reads
 * epsilon. */
typedef struct { float epsilon, momentum; int training; } IrAttrBn;
/* MaxPool, AveragePool, the global pools (kernel = the input's H, W; stride 1; no pads), and
 * their gradients. Output dims: floor, or with ceil_mode ceil, of (in + pads - dilation*(k-1)
 * - 1) / stride + 1, less one when ceil_mode makes the last window start past the input and
 * its begin pad (PyTorch's rule); ir_window_out computes it. xhw: AvgPoolGrad only (X's dims). */
typedef struct {
	int kernel[2], stride[2], dilation[2], pad[4];
	int ceil_mode, count_include_pad;
	int64_t xhw[2];
} IrAttrPool;
/* Pad, constant mode: pads[0..rank) are the begins, pads[rank..2 rank) the ends; negative
 * pads crop (the gradient of Pad is Pad with the pads negated). */
typedef struct { int n; int64_t pads[2 * IR_MAX_RANK]; float value; } IrAttrPad;
/* Clip: min <= max; absent bounds are -FLT_MAX / FLT_MAX. */
typedef struct { float min, max; } IrAttrClip;

typedef union IrAttrs {
	IrAttrGemm gemm;
	IrAttrAlpha alpha;
	IrAttrAxis axis;
	IrAttrPerm perm;
	IrAttrAxes axes;
	IrAttrShape shape;
	IrAttrCast cast;
	IrAttrDropout dropout;
	IrAttrSlice slice;
	IrAttrOpt opt;
	IrAttrConv conv;
	IrAttrBn bn;
	IrAttrPool pool;
	IrAttrPad pad;
	IrAttrClip clip;
} IrAttrs;

/* ---- values, nodes, graphs (ir/graph.c) ---- */
typedef enum {
	IR_ROLE_INPUT,  /* data input fed each step */
	IR_ROLE_LABEL,  /* labels fed each step */
	IR_ROLE_PARAM,  /* trainable parameter (state) */
	IR_ROLE_CONST,  /* constant data */
	IR_ROLE_ACT,    /* activation (forward intermediate or output) */
	IR_ROLE_GRAD,   /* activation gradient */
	IR_ROLE_PGRAD,  /* parameter gradient */
	IR_ROLE_STATE,  /* optimizer state (param set), or a running statistic (param NULL) */
	IR_ROLE_LOSS,   /* the scalar loss */
	IR_ROLE_COUNT
} IrRole;
const char *ir_role_name(IrRole r);
int ir_role_parse(const char *s, IrRole *out);

typedef enum { IR_PHASE_FWD, IR_PHASE_LOSS, IR_PHASE_BWD, IR_PHASE_UPDATE } IrPhase;
const char *ir_phase_name(IrPhase p);

/* Where the plan put a value. */
typedef enum { IR_AREA_NONE, IR_AREA_STATE, IR_AREA_SCRATCH, IR_AREA_CONST, IR_AREA_IO } IrArea;
typedef struct IrLoc {
	IrArea area;
	size_t offset, bytes;
	int64_t scale_off; /* offset of this value's LnsScaleState in the state blob, or -1 */
} IrLoc;

typedef struct IrNode IrNode;
typedef struct IrValue {
	int id;
	const char *name;
	const IrType *type;
	IrRole role;
	IrNode *def;               /* producing node, or NULL */
	int def_out;               /* output index in def */
	void *init;                /* PARAM/CONST data: f32 for float values, else init_type dtype */
	const IrType *init_type;   /* type of *init */
	struct IrValue *grad;      /* autodiff: gradient of this value */
	struct IrValue *param;     /* PGRAD/STATE: the parameter it belongs to */
	int nuses;
	int is_output;             /* a graph output */
	IrLoc loc;
} IrValue;

struct IrNode {
	int id;
	IrOp op;
	const char *name;
	IrPhase phase;
	int nin, nout;
	IrValue **in;
	IrValue **out;
	IrAttrs attr;
	/* Fusion (passes/fuse.c): `epilogue` is a consumer whose work this node's kernel does in
	 * its epilogue (a Relu after a Gemm; the Madam update after a weight-gradient Gemm);
	 * `fused` marks such a consumer, which backends that fuse do not emit on its own. The
	 * interpreter ignores both: fusion never changes results. */
	struct IrNode *epilogue;
	int fused;
};

/* The memory plan (passes/plan.c): two blobs per model. The state blob holds params in their
 * storage format, optimizer state and every LNS value's LnsScaleState; the scratch arena holds
 * everything a step computes, at offsets reused by liveness. No allocation inside a step. */
typedef struct IrPlan {
	size_t state_bytes;
	size_t scratch_bytes;
	int first_loss, first_bwd, first_update; /* node indices where the phases start */
	/* Backend scratch after the values (the interpreter does not use it): a temporary area
	 * [temp_off, temp_off + temp_bytes) that the running node's kernel may use (f32 copies
	 * of its LNS operands, IR_PLAN_TEMP_EXTRA bytes of reduction partials), and at kslot_off
	 * one int32 per value id: the scale offset of the LNS data the value holds this step. */
	size_t temp_off, temp_bytes, kslot_off;
} IrPlan;
enum { IR_PLAN_TEMP_EXTRA = 8192 };

typedef struct IrGraph {
	IrCtx *ctx;
	IrArena *arena;
	const char *name;
	const char *source; /* file the graph came from, for diagnostics */
	int opset;
	IrVec nodes;  /* IrNode*, in a valid topological order after each pass */
	IrVec values; /* IrValue*, id = index */
	IrVec inputs, outputs, params;
	/* Graph inputs whose data the caller gave at import and that became CONST values (the
	 * frontend's known inputs); not in inputs. */
	IrVec const_inputs;
	IrValue *labels, *loss;
	IrPlan *plan;
	struct IrNameTab *names; /* value name -> value (graph.c) */
	int next_node_id;
} IrGraph;

IrGraph *ir_graph_new(IrCtx *c, const char *name, const char *source);
void ir_graph_free(IrGraph *g);
IrValue *ir_graph_value(const IrGraph *g, const char *name); /* by name, or NULL */
#define IR_NODE(g, i) ((IrNode *)(g)->nodes.v[i])
#define IR_VALUE(g, i) ((IrValue *)(g)->values.v[i])

/* A value with no producer (input, label, param, const, state). Names are unique per graph;
 * a clash is an error (NULL). init (may be NULL) is copied into the graph arena. */
IrValue *ir_value_new(IrGraph *g, const char *name, const IrType *t, IrRole role,
		      const void *init, const IrType *init_type);
/* A fresh unique name built from a prefix ("grad/fc1.weight", "grad/fc1.weight.1", ...). */
const char *ir_unique_name(IrGraph *g, const char *prefix);
/* Renames a value of g (the name is copied). 0, or -1 with a diagnostic if another value has
 * the name. */
int ir_value_rename(IrGraph *g, IrValue *v, const char *name);

/* Builders. ir_build runs the op's shape inference; an ill-typed node is not built: it reports
 * a diagnostic naming the node and returns NULL. out_names may be NULL (fresh names from the
 * node name). Output values get role ACT; callers adjust. The node is appended. */
IrNode *ir_build(IrGraph *g, IrOp op, const char *name, int nin, IrValue *const *in,
		 const IrAttrs *attr, const char *const *out_names);
IrValue *ir_build1(IrGraph *g, IrOp op, const char *name, int nin, IrValue *const *in,
		   const IrAttrs *attr);
/* Replace every use of `from` by `to` in nodes at index >= first (types must match shape). */
void ir_replace_uses(IrGraph *g, IrValue *from, IrValue *to, int first);
/* Insert an already-built node (last in g->nodes) at position pos instead. */
void ir_move_last_node(IrGraph *g, int pos);
/* Drop nodes whose outputs are unused and not graph outputs (UPDATE nodes are kept). */
void ir_remove_dead(IrGraph *g);
void ir_recount_uses(IrGraph *g);
/* Re-sort g->nodes topologically (stable). Returns -1 and a diagnostic on a cycle. */
int ir_toposort(IrGraph *g);

/* ---- context and diagnostics (ir/ctx.c) ---- */
IrCtx *ir_ctx_new(void);
void ir_ctx_free(IrCtx *c);
IrArena *ir_ctx_arena(IrCtx *c);
/* Diagnostics: each has a status; printing shows them in order. */
void ir_error(IrCtx *c, IrStatus st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void ir_verror(IrCtx *c, IrStatus st, const char *fmt, va_list ap);
/* "<source>: node '<name>' (<Op>): <message>" */
void ir_node_error(IrGraph *g, const IrNode *n, IrStatus st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int ir_error_count(const IrCtx *c);
IrStatus ir_error_status(const IrCtx *c); /* the most serious: INPUT > UNSUPPORTED > RUNTIME */
void ir_diag_print(const IrCtx *c, FILE *f);
const char *ir_diag_text(const IrCtx *c); /* all messages joined by newlines (ctx arena) */
void ir_diag_clear(IrCtx *c);

/* ---- shape inference (ir/infer.c) ---- */
/* Computes the output types of n from its inputs and attributes. Compute ops accept f32 or lns
 * inputs and produce f32; data-movement ops keep the input's dtype (and LNS format). Reports a
 * diagnostic and returns -1 when the node is ill-typed. */
typedef int (*IrInferFn)(IrGraph *g, IrNode *n, const IrType **out);
extern const IrInferFn ir_infer_table[IR_OP_COUNT];
int ir_infer_node(IrGraph *g, IrNode *n, const IrType **out);
/* Multidirectional (numpy) broadcast of two shapes; -1 if incompatible. */
int ir_broadcast_shape(int ra, const int64_t *a, int rb, const int64_t *b, int *rout,
		       int64_t *out);

/* Output size of a sliding window along one spatial dim (Conv, the pools; see IrAttrPool):
 * -1 if the window does not fit (output < 1). */
int64_t ir_window_out(int64_t in, int k, int stride, int dilation, int pad_begin, int pad_end,
		      int ceil_mode);

/* ---- verifier (ir/verify.c) ---- */
/* SSA, def-before-use, arity, attribute sanity, types equal to re-inference (up to the LNS
 * formats the precision pass assigns), roles. Returns 0 or -1 with diagnostics. */
int ir_verify(IrGraph *g);
/* Attribute sanity of one node against its input types (perm a permutation of the input rank,
 * axes sorted and in range, ratio in [0,1), ...). n->in[] must be non-NULL. Returns 0, or -1
 * with a message in msg. The parser runs it before building, so inference never sees a bad
 * attribute. */
int ir_verify_attrs(const IrNode *n, char *msg, size_t len);
/* Whether a value of type have may carry the output type inference gives (want): the same
 * type, or the same shape with another float encoding (f32 or any LNS format), which is how
 * the precision pass assigns formats: the producer encodes. */
int ir_verify_type_ok(const IrType *have, const IrType *want);

/* ---- textual form (ir/print.c, ir/parse.c; the grammar is at the top of print.c) ---- */
void ir_print(FILE *f, const IrGraph *g);
char *ir_print_str(const IrGraph *g); /* malloc'd */
/* Parses the textual form; on error NULL and a diagnostic "<fname>:<line>:<col>: ...". */
IrGraph *ir_parse(IrCtx *c, const char *text, const char *fname);
/* Prints "=== after <pass> ===" and the graph to stderr when LNSC_DUMP (comma-separated pass
 * names, or "all") names the pass. */
void ir_dump_pass(const IrGraph *g, const char *pass);
/* The role a node output has unless the text says otherwise: act, loss, grad, act by phase. */
IrRole ir_phase_role(IrPhase p);
/* The fields of each attribute kind, in printed order; print and parse walk it. */
typedef enum {
	IR_AF_FLOAT, IR_AF_INT, IR_AF_I64, IR_AF_INTS, IR_AF_I64S, IR_AF_DTYPE
} IrAttrFieldType;
typedef struct IrAttrField {
	const char *name;
	IrAttrFieldType type;
	size_t off;   /* of the field (the array for lists) in IrAttrs */
	size_t n_off; /* counted lists: of the int count */
	int fixed;    /* fixed-size lists (Conv's kernel[2]): the length; n_off is unused */
	int per;      /* counted lists: elements per unit of the count (Pad: 2 per dim); 0 is 1 */
} IrAttrField;
const IrAttrField *ir_attr_fields(IrAttrKind k, int *n);
/* Elements of a list field in a: its fixed length or count * per; -1 if the count is broken. */
int ir_attr_list_len(const IrAttrField *f, const IrAttrs *a);

/* ---- interpreter: the reference backend (ir/interp.c, ir/interp_ops.c) ---- */
typedef struct IrTensor {
	const IrType *type;
	void *data;
	int32_t k; /* LNS scale offset (valid for dt == IR_DT_LNS) */
} IrTensor;

typedef struct IrInterp IrInterp;

/* Long reductions (BatchNormalization's statistics and sums, GlobalAveragePool) sum in double
 * in an order both backends can run fast: each contiguous run of the reduced elements (a
 * channel's row of one image, a plane) feeds IR_SUM_LANES interleaved lane sums (element j of
 * the run to lane j % IR_SUM_LANES) up to its last whole multiple of the lanes, the rest
 * into one tail sum; the result is the tail sum plus the lanes added to it in lane order.
 * The LLVM backend keeps the lanes in one <IR_SUM_LANES x double> vector whatever its vector
 * width, so the two agree bit for bit. */
enum { IR_SUM_LANES = 16 };

/* Per-node kernel. Inputs that are LNS are decoded to f32 by the executor before the call and
 * LNS outputs are encoded after, unless the op is RAW, or a one-input data move or code-exact
 * op (Relu, Neg) whose input and output share an LNS format: those see the words (the output
 * keeps the input's k). Other compute kernels see f32 tensors only. Returns 0, or -1 after
 * ir_interp_fail(). */
typedef int (*IrInterpFn)(IrInterp *ip, const IrNode *n, const IrTensor *in, IrTensor *out);
extern const IrInterpFn ir_interp_table[IR_OP_COUNT];

typedef enum { IR_MODE_TRAIN, IR_MODE_EVAL } IrMode;
typedef struct IrInterpStats {
	uint64_t n_sat, n_unf, n_total;
	float amax;
} IrInterpStats;

/* Creates an interpreter for a planned graph (pass_plan done): allocates the state blob and
 * scratch arena once, and runs the init step (params encoded per their format, optimizer state
 * zeroed, Madam init). NULL with diagnostics on failure. */
IrInterp *ir_interp_new(IrGraph *g, uint64_t seed);
/* lnsc eval: Dropout nodes whose ONNX training_mode is true apply dropout in EVAL too. */
void ir_interp_set_onnx_semantics(IrInterp *ip, int on);
int ir_interp_onnx_semantics(const IrInterp *ip);
void ir_interp_free(IrInterp *ip);
/* Bind a caller buffer for an INPUT or LABEL value (dtype of the value; f32 for inputs). */
int ir_interp_bind(IrInterp *ip, const IrValue *v, const void *data);
/* One step: TRAIN runs every phase and advances the step counter; EVAL runs the forward phase
 * (and the loss if labels are bound) without touching training state. Returns 0 or -1 with
 * the error in ir_interp_error (names the tensor and step for numeric errors). */
int ir_interp_run(IrInterp *ip, IrMode mode);
const char *ir_interp_error(const IrInterp *ip);
/* Read a value after a step, decoded to f32 (or copied for non-float dtypes) into out
 * (numel elements). Returns -1 if the value is not live after the step (scratch reused). */
int ir_interp_read(IrInterp *ip, const IrValue *v, void *out);
/* Raw access to a value's storage and scale state (tests, telemetry, checkpoints). */
void *ir_interp_data(IrInterp *ip, const IrValue *v);
LnsScaleState *ir_interp_scale(IrInterp *ip, const IrValue *v);
uint32_t ir_interp_step(const IrInterp *ip);
void ir_interp_set_step(IrInterp *ip, uint32_t step);
/* The state blob (the plan's layout, max(plan->state_bytes, IR_STATE_HEADER_BYTES) bytes):
 * checkpoints read it. A caller that writes it (loading a checkpoint) then calls
 * ir_interp_state_loaded, which re-reads the scale offsets of stored LNS tensors. */
void *ir_interp_state_blob(IrInterp *ip);
void ir_interp_state_loaded(IrInterp *ip);
/* Counts of v's most recent encode in this interpreter (TRAIN or EVAL; the LnsScaleState
 * accumulates TRAIN steps only). Returns -1 if v is not LNS-typed. */
int ir_interp_stats(const IrInterp *ip, const IrValue *v, IrInterpStats *out);
/* Kernel helpers. ir_interp_fail prefixes the message with the running node. */
void ir_interp_fail(IrInterp *ip, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
IrMode ir_interp_mode(const IrInterp *ip);
uint32_t ir_interp_rng_key(const IrInterp *ip, const IrValue *v); /* (seed, step, value id) */
/* Kernel scratch: preallocated by the executor and reset before each node, so a step never
 * allocates. A kernel may take, in pieces of any size (each 64-byte aligned), up to 4 bytes
 * per element of each input plus 8 bytes per element of each output (SumTo: 8 times
 * IR_SUM_LANES + 1; the bound the executor sizes the buffer by). Returns NULL after ir_interp_fail() past that bound (a kernel bug). */
void *ir_interp_scratch(IrInterp *ip, size_t bytes);
/* 0 if x[0..n) is finite; else -1 after failing with "numeric error: tensor '<v>' (node
 * '<node>', <Op>) has NaN/Inf at step <t>" (NaN and Inf never enter a tensor: LNS.md 3). */
int ir_interp_check_finite(IrInterp *ip, const IrValue *v, const float *x, size_t n);

/* The state blob opens with this header (passes/plan.c reserves IR_STATE_HEADER_BYTES), so
 * the step counter and the seed travel with the parameters and a checkpoint resumes exactly. */
typedef struct IrStateHeader {
	uint64_t seed;
	uint32_t step; /* TRAIN steps taken; the running step is 1-based */
	uint32_t pad;
} IrStateHeader;
enum { IR_STATE_HEADER_BYTES = 64 };

/* Evaluate a node on constant inputs (canon's constant folding). Outputs are allocated in the
 * graph arena. Returns 0 or -1 with a diagnostic. */
int ir_interp_fold(IrGraph *g, const IrNode *n, IrTensor *out);
/* Whether n is a compute node whose inputs are all constants (what canon and the importer
 * fold), and the fold itself: the node at index idx evaluated, its outputs turned into
 * constants in place (same values, same names), the node removed. 0 or -1 (diagnostic). */
int ir_interp_can_fold(const IrNode *n);
int ir_interp_fold_node(IrGraph *g, int idx);

/* Start-up self-check: names every op missing a hook it needs in the ir tables. */
int ir_ops_check(IrCtx *c);

/* ---- model descriptor (ir/desc.c): the runtime ABI's view of a planned graph ---- */
struct LnsrtModelDesc; /* runtime/lnsrt.h */
/* Fills out with the tensor table of a planned graph: one entry per value with bytes in the
 * state blob, the scratch arena, an IO buffer, or only an LnsScaleState (f32 constants stay
 * out), in value id order; IO slots are the data inputs in g->inputs order, then the labels;
 * `param` is the table index of the parameter a STATE or PGRAD tensor belongs to. input,
 * labels, logits (the first graph output) and loss are table indices; batch comes from the
 * first input, nclasses and example_size when there is one input and one 2-D output. The
 * fingerprint is lnsrt_desc_fingerprint's. Strings and the table live in a. Entry points are
 * NULL: backends fill them. 0, or -1 with a diagnostic (no plan). */
int ir_model_desc(IrGraph *g, IrArena *a, const char *recipe, struct LnsrtModelDesc *out);

/* The reference interpreter as a backend behind a descriptor, for lnsrt_model_new: init makes
 * the interpreter (ir_interp_new with the seed), each step runs it on the runtime's state
 * blob and IO buffers, a numeric error sets the step's error_tensor, and the step's lr
 * overrides the main optimizer's (Madam for lns recipes, else every update); a label out of
 * range returns 2 naming the labels. Other interpreter failures go to g's diagnostics. g must
 * outlive the model. Several lnsrt_models may run one IrInterpModel (each step copies its
 * state in and out), but not at the same time. NULL with a diagnostic when g has no plan. */
typedef struct IrInterpModel IrInterpModel;
IrInterpModel *ir_interp_model_new(IrGraph *g, const char *recipe);
const struct LnsrtModelDesc *ir_interp_model_desc(const IrInterpModel *m);
IrInterp *ir_interp_model_interp(IrInterpModel *m); /* NULL before init */
void ir_interp_model_free(IrInterpModel *m);

#endif
