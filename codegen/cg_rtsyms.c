/* cg_rtsyms.c: the table of runtime entry points generated code links against.
 *
 * For `lnsc compile` these resolve at link time against the runtime library; in the JIT they
 * are defined as absolute symbols from this table. Add a function here when codegen starts
 * calling it.
 */
#include "codegen/cg_rtsyms.h"
#include "ir/lns.h"
#include "runtime/lnsrt.h"

const CgRtSymbol cg_rt_symbols[] = {
	{"lns_madam_init", (void *)lns_madam_init},
	{"lns_encode_tensor", (void *)lns_encode_tensor},
	{NULL, NULL},
};
