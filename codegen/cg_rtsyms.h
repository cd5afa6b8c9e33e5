/* cg_rtsyms.h: the runtime functions generated code may call, for the JIT's symbol table. */
#ifndef LNSC_CG_RTSYMS_H
#define LNSC_CG_RTSYMS_H

typedef struct CgRtSymbol {
	const char *name;
	void *addr;
} CgRtSymbol;

/* NULL-terminated; defined in cg_rtsyms.c. */
extern const CgRtSymbol cg_rt_symbols[];

#endif
