/* SPDX-License-Identifier: MIT */
/*
 * buf.c: the growable byte buffer every encoder appends to.
 *
 * Invariant: len <= cap, and data is NULL exactly when cap is 0. Capacity
 * grows geometrically, so n appends cost O(n) copies in total; buffers are
 * meant to be reused (reset len to 0) rather than freed between uses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wal/wal.h"

void lb__buf_init(lb_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void lb__buf_free(lb_buf *b)
{
	if (!b)
		return;
	free(b->data);
	lb__buf_init(b);
}

int lb__buf_reserve(lb_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra <= b->cap - b->len)
		return 0;
	/* Sizes past PTRDIFF_MAX are not allocatable objects; refuse them
	 * here rather than hand them to realloc(). */
	if (extra > PTRDIFF_MAX - b->len)
		return lb__fail(LB_ENOMEM,
		                "buffer of %zu + %zu bytes is too large",
		                b->len, extra);
	need = b->len + extra;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > PTRDIFF_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return lb__fail(LB_ENOMEM, "cannot allocate a %zu-byte buffer",
		                cap);
	b->data = p;
	b->cap = cap;
	return 0;
}

int lb__buf_append(lb_buf *b, const void *p, size_t n)
{
	int rc;

	if (n == 0)
		return 0;
	if ((rc = lb__buf_reserve(b, n)) != 0)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int lb__grow(void *pp, size_t *cap, size_t n, size_t elem, size_t first)
{
	void **p = pp;
	if (n <= *cap)
		return 0;
	size_t nc = *cap ? *cap : first;
	while (nc < n) {
		if (nc > SIZE_MAX / 2)
			return lb__fail(LB_ENOMEM, "out of memory");
		nc *= 2;
	}
	if (nc > SIZE_MAX / elem)
		return lb__fail(LB_ENOMEM, "out of memory");
	void *np = realloc(*p, nc * elem);
	if (!np)
		return lb__fail(LB_ENOMEM, "out of memory");
	*p = np;
	*cap = nc;
	return 0;
}
