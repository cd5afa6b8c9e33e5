/* ctx.h: the IrCtx layout, private to ir/ (everyone else sees the opaque handle in ir.h). */
#ifndef LNSC_IR_CTX_H
#define LNSC_IR_CTX_H

#include "ir/ir.h"

typedef struct IrDiag {
	IrStatus status;
	const char *msg;
} IrDiag;

struct IrCtx {
	IrArena *arena;      /* types and anything living as long as the context */
	IrArena *diag_arena; /* messages */
	IrType **types;      /* intern hash table */
	size_t ntypes, captypes;
	IrDiag *diags;
	int ndiags, capdiags;
	const char *text;    /* cached ir_diag_text */
};

#endif
