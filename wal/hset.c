/* SPDX-License-Identifier: MIT */
/*
 * hset.c: the hash set of hset.h. FNV-1a over the bytes, folded to 32
 * bits; the table doubles before it is half full, so a probe ends at an
 * empty slot.
 */
#include "wal/hset.h"

#include <stdlib.h>
#include <string.h>

static uint32_t hash_bytes(const void *p, size_t n)
{
	const uint8_t *s = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

static size_t entry_size(size_t n)
{
	return (sizeof(lb_hent) + n + 7) & ~(size_t)7;
}

void lb__hset_init(lb_hset *s)
{
	memset(s, 0, sizeof *s);
	lb__buf_init(&s->arena);
}

void lb__hset_free(lb_hset *s)
{
	lb__buf_free(&s->arena);
	free(s->slot);
	memset(s, 0, sizeof *s);
}

void lb__hset_clear(lb_hset *s)
{
	s->arena.len = 0;
	s->n = 0;
	if (s->slot)
		memset(s->slot, 0, s->cap * sizeof *s->slot);
}

lb_hent *lb__hset_at(const lb_hset *s, size_t off)
{
	return (lb_hent *)(void *)(s->arena.data + off);
}

size_t lb__hset_off(const lb_hset *s, const lb_hent *e)
{
	return (size_t)((const uint8_t *)e - s->arena.data);
}

size_t lb__hset_next(const lb_hset *s, size_t off)
{
	return off + entry_size(lb__hset_at(s, off)->len);
}

static int grow(lb_hset *s)
{
	size_t nc = s->cap ? s->cap * 2 : 64;
	size_t *ns;
	if (nc > SIZE_MAX / sizeof *ns || !(ns = calloc(nc, sizeof *ns)))
		return lb__fail(LB_ENOMEM, "hash set: out of memory");
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->slot[i])
			continue;
		size_t j = lb__hset_at(s, s->slot[i] - 1)->hash & (nc - 1);
		while (ns[j])
			j = (j + 1) & (nc - 1);
		ns[j] = s->slot[i];
	}
	free(s->slot);
	s->slot = ns;
	s->cap = nc;
	return 0;
}

/* The slot holding p/n, or the empty slot where it would go. */
static size_t probe(const lb_hset *s, const void *p, size_t n, uint32_t h)
{
	size_t j = h & (s->cap - 1);
	while (s->slot[j]) {
		const lb_hent *x = lb__hset_at(s, s->slot[j] - 1);
		if (x->hash == h && x->len == n &&
		    (n == 0 || memcmp(lb__hent_key(x), p, n) == 0))
			break;
		j = (j + 1) & (s->cap - 1);
	}
	return j;
}

lb_hent *lb__hset_find(const lb_hset *s, const void *p, size_t n)
{
	if (!s->n)
		return NULL;
	size_t j = probe(s, p, n, hash_bytes(p, n));
	return s->slot[j] ? lb__hset_at(s, s->slot[j] - 1) : NULL;
}

int lb__hset_get(lb_hset *s, const void *p, size_t n, int *added, lb_hent **e)
{
	uint32_t h = hash_bytes(p, n);
	int rc;
	if (n > UINT32_MAX)
		return lb__fail(LB_EINVAL, "hash set: key of %zu bytes", n);
	if ((s->n + 1) * 2 > s->cap && (rc = grow(s)) < 0)
		return rc;
	size_t j = probe(s, p, n, h);
	if (s->slot[j]) {
		*added = 0;
		*e = lb__hset_at(s, s->slot[j] - 1);
		return 0;
	}
	size_t need = entry_size(n);
	if ((rc = lb__buf_reserve(&s->arena, need)) < 0)
		return rc;
	size_t off = s->arena.len;
	lb_hent *x = lb__hset_at(s, off);
	x->v[0] = x->v[1] = 0;
	x->hash = h;
	x->len = (uint32_t)n;
	if (n)
		memcpy((uint8_t *)(x + 1), p, n);
	s->arena.len += need;
	s->slot[j] = off + 1;
	s->n++;
	*added = 1;
	*e = x;
	return 0;
}
