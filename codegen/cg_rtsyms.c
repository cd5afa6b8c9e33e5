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
	{"lns_rng_key", (void *)lns_rng_key},
	{"lns_view_offset", (void *)lns_view_offset},
	{"lns_scale_pick", (void *)lns_scale_pick},
	{"lns_scale_record", (void *)lns_scale_record},
	{"lns_ceil_log", (void *)lns_ceil_log},
	{"lnsrt_parallel_for", (void *)lnsrt_parallel_for},
	{NULL, NULL},
};
