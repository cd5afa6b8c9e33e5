/* pipeline.c: the only place that orders the passes, top to bottom.
 *
 * After each pass the graph is verified (cheap at these sizes, so always on) and printed when
 * LNSC_DUMP names the pass. A pass that fails stops the pipeline; its diagnostics say why.
 */
#include <string.h>

#include "passes/passes.h"

void pass_options_default(PassOptions *o)
{
	memset(o, 0, sizeof *o);
	o->recipe = "lns-madam";
	o->train = 1;
	o->loss = PASS_LOSS_XENT;
	o->optimizer = PASS_OPT_SGD;
	o->momentum = 0.9f;
	o->lr_1d = 1e-3f;
}

int pass_recipe_lns(const char *recipe)
{
	return !strcmp(recipe, "lns-madam") || !strcmp(recipe, "lns-sgd");
}

int pass_recipe_known(const char *recipe)
{
	return !strcmp(recipe, "fp32") || pass_recipe_lns(recipe);
}

static int after(IrGraph *g, const char *name, int rc)
{
	if (rc)
		return rc;
	ir_dump_pass(g, name);
	return ir_verify(g);
}

int pass_pipeline(IrGraph *g, const PassOptions *o)
{
	if (!pass_recipe_known(o->recipe)) {
		ir_error(g->ctx, IR_ERR_INPUT, "unknown recipe '%s' (" PASS_RECIPES ")", o->recipe);
		return -1;
	}
	if (after(g, "import", 0) ||
	    after(g, "infer", pass_infer(g, o)) ||
	    after(g, "canon", pass_canon(g, o)) ||
	    after(g, "autodiff", pass_autodiff(g, o)) ||
	    after(g, "optimize", pass_optimize(g, o)) ||
	    after(g, "precision", pass_precision(g, o)) ||
	    after(g, "fuse", pass_fuse(g, o)) ||
	    after(g, "plan", pass_plan(g)))
		return -1;
	return 0;
}
