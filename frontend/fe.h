/* fe.h: the frontend's one internal header: ONNX import, tensor files, and the import hooks.
 *
 * fe_onnx_import reads an ONNX model into an IrGraph: it validates the protobuf (opset,
 * definitions, references, order), turns initializers and Constant nodes into PARAM/CONST
 * values and graph inputs into INPUT values (CONST when the caller gave their data and a node
 * reads them as constants), then calls one import hook per node, in topological order. The
 * hooks (onnx_ops.c) live in a table indexed by IrOp; each converts one ONNX node (attributes,
 * constant inputs, per-opset differences) into ir_build calls through the FeNode helpers
 * below, so that they never touch the importer's bookkeeping. Every user error is a
 * diagnostic naming the file, and the node or tensor, with a status; nothing here aborts on a
 * bad file. The protobuf types stay out of this header (forward declarations only).
 */
#ifndef LNSC_FE_H
#define LNSC_FE_H

#include "ir/ir.h"

struct Onnx__TensorProto;
struct Onnx__NodeProto;

/* ---- import options and entry points (frontend/onnx.c) ---- */
/* A decoded tensor: IR type (dtype and shape) and data in the IR dtype's layout (f16 as its
 * 16 bits, bool as one byte 0/1), native byte order. */
typedef struct FeConst {
	const IrType *type;
	const void *data;
} FeConst;

typedef struct FeInputShape {
	const char *name;
	int rank;
	int64_t dims[IR_MAX_RANK];
	/* The input's data when the caller has it (type NULL otherwise); its type must be the
	 * model's dtype with the shape above. lnsc's shapes are static, so a known input that
	 * some node reads as a constant (a Reshape shape, Squeeze axes, a Dropout ratio: the
	 * hooks' const_in masks) becomes an IR_ROLE_CONST value with this data instead of an
	 * input, listed in g->const_inputs. */
	FeConst value;
} FeInputShape;

typedef struct FeOptions {
	/* Value for a dynamic first dim (dim_param or missing) of data inputs; 0 = error if
	 * dynamic. */
	int64_t batch;
	/* Explicit shapes (and data) for named inputs, from the tensors a user passes; override
	 * the model's. Names that are not data inputs of the model are ignored. */
	int nshapes;
	const FeInputShape *shapes;
} FeOptions;

/* Imports an ONNX model. NULL with diagnostics (status IR_ERR_INPUT for a malformed model,
 * IR_ERR_UNSUPPORTED for valid ONNX outside what lnsc supports). o may be NULL. */
IrGraph *fe_onnx_import(IrCtx *c, const char *path, const FeOptions *o);
/* The checks of fe_onnx_import that need no input shapes or data: the protobuf, opset,
 * definitions (initializers decoded), op support, references, graph input/output types and
 * node order. 0, or -1 with the same diagnostics fe_onnx_import would give. */
int fe_onnx_check(IrCtx *c, const char *path);
/* Start-up self-check: every IR_OPF_ONNX op has an import hook. 0, or -1 with diagnostics. */
int fe_import_check(IrCtx *c);

/* ---- constant tensors (frontend/tensor.c; FeConst is above) ---- */
/* ONNX TensorProto.DataType <-> IR dtype. fe_dtype_from_onnx returns 0, or -1 for a dtype lnsc
 * does not support (string, bfloat16, complex, float8, int4, undefined). */
int fe_dtype_from_onnx(int onnx_dt, IrDType *out);
int fe_dtype_to_onnx(IrDType dt);            /* 0 (UNDEFINED) for LNS */
const char *fe_onnx_dtype_name(int onnx_dt); /* "float", "bfloat16", "dtype 42" ... */

/* Checks a shape read from a file: rank <= IR_MAX_RANK, 0 <= dim <= IR_MAX_DIM, numel <=
 * IR_MAX_NUMEL (without overflow). what names the tensor in the message ("m.onnx: input 'x'").
 * 0, or -1 with an IR_ERR_INPUT diagnostic. */
int fe_check_dims(IrCtx *c, const char *what, int64_t rank, const int64_t *dims);

/* Reads a whole file (malloc'd; the caller frees *buf). Messages start with the path.
 * Missing, unreadable, not a regular file, empty, over 2 GiB: IR_ERR_INPUT. 0 or -1. */
int fe_read_file(IrCtx *c, const char *path, uint8_t **buf, size_t *len);

/* Decodes a TensorProto (raw_data, typed fields or external data) into IR layout, data
 * allocated in a. what names the tensor in messages ("m.onnx: initializer 'w'"). dir: the
 * folder external data must come from (a realpath), or NULL to refuse external data.
 * 0, or -1 with a diagnostic (IR_ERR_INPUT; IR_ERR_UNSUPPORTED for an unsupported dtype). */
int fe_tensor_decode(IrCtx *c, IrArena *a, const struct Onnx__TensorProto *t, const char *what,
                     const char *dir, FeConst *out);

/* Tensor files as onnx.numpy_helper writes them (a serialized TensorProto), used by the CLI's
 * `lnsc grad` / `lnsc eval`. fe_tensor_read: any supported dtype; name, type and data are
 * allocated in a (name is "" when the file has none). Errors name the file. Returns 0 or -1. */
int fe_tensor_read(IrCtx *c, IrArena *a, const char *path, const char **name, const IrType **type,
                   void **data);
/* Writes raw_data little-endian; any dtype but LNS. Returns 0, or -1 with a diagnostic. */
int fe_tensor_write(IrCtx *c, const char *path, const char *name, const IrType *type,
                    const void *data);

/* ---- import hooks (frontend/onnx_ops.c) ---- */
typedef struct FeImport FeImport; /* the importer's state (frontend/onnx.c) */

/* One ONNX node being imported: what a hook sees. Inputs are indexed as in ONNX; absent
 * optional inputs (empty names, or beyond the node's list) are NULL. */
typedef struct FeNode {
	FeImport *imp;
	IrGraph *g;
	const struct Onnx__NodeProto *p;
	const char *name;    /* ONNX node name, or "<OpType>_<index>" when empty */
	const char *op_type; /* ONNX op type */
	IrOp op;
	int opset;
	int nin; /* inputs up to the last non-empty name */
	IrValue *in[IR_MAX_IN];
	/* data of constant inputs (initializer, Constant output), or NULL */
	const FeConst *cst[IR_MAX_IN];
} FeNode;

typedef int (*FeImportFn)(FeNode *n);
typedef struct FeOpImport {
	FeImportFn fn;
	/* Inputs read as constants (a Reshape shape, Squeeze axes, a Dropout ratio): bit i set
	 * means input i is not a tensor the op computes on, so a FLOAT initializer used only
	 * there is not a trainable parameter, and its dtype is not checked against f32. */
	unsigned const_in;
	/* An ONNX output after the IR node's outputs (MaxPool's "Indices"), accepted only when
	 * nothing reads it: one that a node or the graph output uses is IR_ERR_UNSUPPORTED. */
	const char *extra_out;
} FeOpImport;
extern const FeOpImport fe_import_table[IR_OP_COUNT];

/* Helpers for hooks (frontend/onnx.c). */
/* "<file>: node '<name>' (<OpType>): <message>" */
void fe_node_error(const FeNode *n, IrStatus st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Checks the number of inputs (present or not, up to the last non-empty) and that the first
 * `required` are present. 0, or -1 with an IR_ERR_INPUT diagnostic. */
int fe_node_arity(const FeNode *n, int required, int max);
/* Attributes: return 0 when absent (*out = def), 1 when present, -1 (diagnostic reported,
 * IR_ERR_INPUT) when the attribute has the wrong type. ints: at most max values.
 * fe_attr_find gives the AttributeProto itself (type: an Onnx__AttributeProto__AttributeType);
 * fe_attr_tensor decodes a TENSOR attribute (data lives until the import ends). */
struct Onnx__AttributeProto;
int fe_attr_find(const FeNode *n, const char *name, int type,
                 const struct Onnx__AttributeProto **out);
int fe_attr_tensor(const FeNode *n, const char *name, FeConst *out);
int fe_attr_int(const FeNode *n, const char *name, int64_t def, int64_t *out);
int fe_attr_float(const FeNode *n, const char *name, float def, float *out);
int fe_attr_ints(const FeNode *n, const char *name, int max, int64_t *out, int *count);
/* Integer values of constant input i (int64 or int32 tensor of rank <= 1), at most max.
 * 0, or -1 with a diagnostic (IR_ERR_UNSUPPORTED when the input is not a constant). */
int fe_const_ints(const FeNode *n, int i, const char *what, int max, int64_t *out, int *count);
/* Reports that input i, which the hook needs as a constant (`what`: "shape", "ratio"), is
 * computed at run time (IR_ERR_UNSUPPORTED); for a graph input, says how to supply it. */
void fe_dynamic_error(const FeNode *n, int i, const char *what);
/* A name unused by the model and the graph, built from prefix. */
const char *fe_fresh_name(FeNode *n, const char *prefix);
/* Builds the node that produces the ONNX node's outputs: IR node named after the ONNX node,
 * outputs named after the ONNX outputs (fresh names for absent ones). 0 or -1. */
int fe_emit(FeNode *n, IrOp op, int nin, IrValue *const *in, const IrAttrs *attr);
/* An intermediate node of a lowering ("<node>/<suffix>", fresh output name). NULL on error. */
IrValue *fe_emit_aux(FeNode *n, IrOp op, const char *suffix, int nin, IrValue *const *in,
                     const IrAttrs *attr);
/* The Constant op: output 0 becomes an IR_ROLE_CONST value with this data (no node). */
int fe_emit_const(FeNode *n, const IrType *t, const void *data);

#endif
