/* arena.c: bump allocators owned by lifetime (context, graph), and the growable pointer array.
 *
 * An arena is a list of blocks; allocations are zeroed and 16-byte aligned and live until the
 * arena is freed. Large requests get a block of their own. Out of memory is the one condition
 * treated as fatal: there is nothing sensible a compiler can do after it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

typedef struct Block {
	struct Block *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
} Block;

struct IrArena {
	Block *head;
};

enum { BLOCK_SIZE = 64 * 1024 };

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "lnsc: out of memory (%zu bytes)\n", n);
		abort();
	}
	return p;
}

IrArena *ir_arena_new(void)
{
	IrArena *a = xmalloc(sizeof *a);
	a->head = NULL;
	return a;
}

void ir_arena_free(IrArena *a)
{
	if (!a)
		return;
	for (Block *b = a->head, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

void *ir_arena_alloc(IrArena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	Block *b = a->head;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > BLOCK_SIZE / 2 ? n : BLOCK_SIZE;
		b = xmalloc(sizeof(Block) + cap);
		b->used = 0;
		b->cap = cap;
		if (n > BLOCK_SIZE / 2 && a->head) {
			/* keep the current block as head: it still has room for small requests */
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	void *p = b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

char *ir_arena_strdup(IrArena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = ir_arena_alloc(a, n);
	memcpy(p, s, n);
	return p;
}

char *ir_arena_printf(IrArena *a, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *p = ir_arena_alloc(a, (size_t)(n > 0 ? n : 0) + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	return p;
}

void ir_vec_push(IrVec *vec, void *p)
{
	if (vec->n == vec->cap) {
		int cap = vec->cap ? vec->cap * 2 : 16;
		void **v = realloc(vec->v, (size_t)cap * sizeof *v);
		if (!v) {
			fprintf(stderr, "lnsc: out of memory\n");
			abort();
		}
		vec->v = v;
		vec->cap = cap;
	}
	vec->v[vec->n++] = p;
}

void ir_vec_free(IrVec *vec)
{
	free(vec->v);
	vec->v = NULL;
	vec->n = vec->cap = 0;
}
