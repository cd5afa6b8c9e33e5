/* export.c: `lnsc export`: a trained model back out as ONNX, for any ONNX runtime to serve.
 *
 * The output is the input model with every initializer the checkpoint trained replaced by
 * its values: the parameters (LNS weights decoded to fp32 with their scale offsets) and the
 * running statistics of BatchNormalization (state tensors of no parameter), written as
 * raw_data. Names must match and shapes must agree; a checkpoint parameter the model lacks
 * means the checkpoint is for another model, and nothing is written. The graph is put in
 * inference form: a BatchNormalization in training mode (the training_mode attribute, or
 * before opset 14 its optional statistics outputs) keeps only its normalised output when
 * nothing reads the others, so a runtime normalises by the trained running statistics. The
 * rest of the model is untouched. The file is written beside the output under a temporary
 * name, fsync'd and renamed: a failed export leaves no partial file.
 */
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/cli.h"
#include "frontend/fe.h"
#include "onnx/onnx.pb-c.h"
#include "runtime/lnsrt.h"

static const char export_help[] =
    "usage: lnsc export CHECKPOINT -m MODEL.onnx -o OUT.onnx\n"
    "Writes MODEL.onnx with its initializers replaced by the trained values in CHECKPOINT\n"
    "(from `lnsc train --checkpoint`, a compiled trainer or the library's save): parameters\n"
    "(LNS weights decoded to fp32) and BatchNormalization running statistics. Training-mode\n"
    "BatchNormalization nodes are put in inference form.\n";

static int fail(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "lnsc export: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return 1;
}

static Onnx__TensorProto *find_init(Onnx__GraphProto *g, const char *name)
{
	for (size_t i = 0; i < g->n_initializer; i++)
		if (g->initializer[i]->name && !strcmp(g->initializer[i]->name, name))
			return g->initializer[i];
	return NULL;
}

/* Whether checkpoint tensor t is something training changed that the model stores. */
static int trained(const LnsrtTensorDesc *t)
{
	return t->area == LNSRT_AREA_STATE &&
	       (t->role == LNSRT_ROLE_PARAM || (t->role == LNSRT_ROLE_STATE && t->param < 0));
}

/* Replaces initializer p's data by the n floats at v (raw_data, little-endian as the host). */
static void set_data(Onnx__TensorProto *p, float *v, int64_t n)
{
	free(p->raw_data.data);
	p->raw_data.data = (uint8_t *)v;
	p->raw_data.len = (size_t)n * sizeof(float);
	p->has_raw_data = 1;
	p->n_float_data = 0;
	if (p->has_data_location)
		p->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT;
	p->n_external_data = 0;
}

/* Tensor t of the checkpoint into the model's initializer of the same name. 1 on success, 0
 * when the model has no such initializer (told), -1 on a mismatch (told). */
static int export_tensor(Onnx__GraphProto *g, const LnsrtCheckpoint *ck, int i, const char *model)
{
	const LnsrtTensorDesc *t = &ck->tensors[i];
	Onnx__TensorProto *p = find_init(g, t->name);
	if (!p)
		return 0;
	int64_t n = lnsrt_tensor_numel(t), m = 1;
	for (size_t d = 0; d < p->n_dims; d++)
		m *= p->dims[d];
	if (p->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || m != n) {
		fprintf(
		    stderr,
		    "lnsc export: %s: initializer '%s' (%zu dims, %lld elements, dtype %d) does "
		    "not match the checkpoint's tensor (%lld float elements)\n",
		    model, t->name, p->n_dims, (long long)m, (int)p->data_type, (long long)n);
		return -1;
	}
	float *v = malloc(sizeof(float) * (size_t)(n ? n : 1));
	char err[512];
	if (!v || lnsrt_state_read(&ck->desc, ck->state, i, v, err, sizeof err)) {
		fail("%s: %s", model, v ? err : "out of memory");
		free(v);
		return -1;
	}
	set_data(p, v, n);
	return 1;
}

static int read_by_anyone(const Onnx__GraphProto *g, const char *name)
{
	for (size_t i = 0; i < g->n_node; i++)
		for (size_t j = 0; j < g->node[i]->n_input; j++)
			if (!strcmp(g->node[i]->input[j], name))
				return 1;
	for (size_t i = 0; i < g->n_output; i++)
		if (!strcmp(g->output[i]->name, name))
			return 1;
	return 0;
}

/* Training-mode BatchNormalization nodes to inference form; returns how many. */
static int bn_inference(Onnx__GraphProto *g, const char *model)
{
	int k = 0;
	for (size_t i = 0; i < g->n_node; i++) {
		Onnx__NodeProto *n = g->node[i];
		if (strcmp(n->op_type, "BatchNormalization"))
			continue;
		int used = 0;
		for (size_t j = 1; j < n->n_output; j++)
			used |= *n->output[j] && read_by_anyone(g, n->output[j]);
		if (used) {
			fprintf(stderr,
			        "lnsc export: %s: node '%s' (BatchNormalization): its statistics "
			        "outputs "
			        "are read, so it stays in training mode\n",
			        model, n->name ? n->name : "");
			continue;
		}
		int changed = n->n_output > 1;
		for (size_t j = 1; j < n->n_output; j++)
			free(n->output[j]);
		n->n_output = 1;
		for (size_t a = 0; a < n->n_attribute; a++)
			if (!strcmp(n->attribute[a]->name, "training_mode") && n->attribute[a]->i) {
				n->attribute[a]->i = 0;
				changed = 1;
			}
		k += changed;
	}
	return k;
}

/* Packs m into a temporary file beside out, then renames it over out. */
static int write_model(const Onnx__ModelProto *m, const char *out)
{
	size_t len = onnx__model_proto__get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return fail("%s: out of memory%s", out, "");
	onnx__model_proto__pack(m, buf);
	char *tmp = malloc(strlen(out) + 16);
	sprintf(tmp, "%s.tmpXXXXXX", out);
	int fd = mkstemp(tmp), rc = 0;
	if (fd < 0) {
		rc = fail("%s: %s", out, strerror(errno));
	} else {
		size_t done = 0;
		while (done < len) {
			ssize_t w = write(fd, buf + done, len - done);
			if (w <= 0)
				break;
			done += (size_t)w;
		}
		if (done < len || fsync(fd) || close(fd) || rename(tmp, out)) {
			rc = fail("%s: %s", out, strerror(errno ? errno : EIO));
			unlink(tmp);
		}
	}
	free(tmp);
	free(buf);
	return rc;
}

int cli_export(int argc, char **argv)
{
	const char *ckpt = NULL, *model = NULL, *out = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(export_help, stdout);
			return 0;
		}
		if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "-o")) && i + 1 < argc) {
			*(argv[i][1] == 'm' ? &model : &out) = argv[i + 1];
			i++;
		} else if (argv[i][0] != '-' && !ckpt) {
			ckpt = argv[i];
		} else {
			fprintf(stderr, "lnsc export: unexpected argument '%s'\n%s", argv[i],
			        export_help);
			return 2;
		}
	}
	if (!ckpt || !model || !out) {
		fprintf(stderr,
		        "lnsc export: CHECKPOINT, -m MODEL.onnx and -o OUT.onnx are needed\n%s",
		        export_help);
		return 2;
	}
	char err[512];
	LnsrtCheckpoint ck;
	if (lnsrt_checkpoint_read(ckpt, &ck, err, sizeof err))
		return fail("%s%s", err, "");
	IrCtx *c = ir_ctx_new();
	uint8_t *buf = NULL;
	size_t len = 0;
	Onnx__ModelProto *m = NULL;
	int rc = 1;
	if (fe_read_file(c, model, &buf, &len)) {
		fail("%s%s", ir_diag_text(c), "");
		goto done;
	}
	m = onnx__model_proto__unpack(NULL, len, buf);
	if (!m || !m->graph) {
		fail("%s: not an ONNX model (the protobuf does not parse)%s", model, "");
		goto done;
	}
	int nparam = 0, nstat = 0;
	for (int i = 0; i < ck.desc.ntensors; i++) {
		if (!trained(&ck.tensors[i]))
			continue;
		int r = export_tensor(m->graph, &ck, i, model);
		if (r < 0)
			goto done;
		if (r == 0 && ck.tensors[i].role == LNSRT_ROLE_PARAM) {
			fprintf(stderr,
			        "lnsc export: %s has no initializer '%s' that %s trained: the "
			        "checkpoint is for another model\n",
			        model, ck.tensors[i].name, ckpt);
			goto done;
		}
		if (r > 0)
			*(ck.tensors[i].role == LNSRT_ROLE_PARAM ? &nparam : &nstat) += 1;
	}
	int nbn = bn_inference(m->graph, model);
	if (write_model(m, out))
		goto done;
	printf("lnsc: exported %s (%s, %lld steps) -> %s: %d parameters, %d running statistics, "
	       "%d BatchNormalization nodes in inference form\n",
	       ckpt, ck.desc.recipe, (long long)ck.train.total_steps, out, nparam, nstat, nbn);
	rc = 0;
done:
	if (m)
		onnx__model_proto__free_unpacked(m, NULL);
	free(buf);
	lnsrt_checkpoint_free(&ck);
	ir_ctx_free(c);
	return rc;
}
