/* SPDX-License-Identifier: MIT */
/*
 * hset.h: a hash set of byte strings, each carrying two u64 values: the
 * tree's one hash table (rollback planning in the engine, the import's key
 * maps in the CLI). Pure: no LMDB, no globals.
 *
 * Entries live in one arena (no allocation per entry); slots hold arena
 * offsets + 1 (0 = empty). Open addressing, linear probing, load <= 1/2.
 * An entry's offset never changes, so offsets (lb__hset_off) stay valid
 * across adds; pointers into the arena stay valid only until the next add.
 */
#ifndef LB_WAL_HSET_H
#define LB_WAL_HSET_H

#include <stddef.h>
#include <stdint.h>

#include "wal/wal.h"

typedef struct lb_hent {
	uint64_t v[2]; /* the caller's values, 0 when added */
	uint32_t hash, len;
	/* len bytes follow, then padding to 8 */
} lb_hent;

typedef struct lb_hset {
	lb_buf arena;
	size_t *slot;
	size_t cap, n;
} lb_hset;

void lb__hset_init(lb_hset *s);
/* Frees everything; the set may be used again after lb__hset_init. */
void lb__hset_free(lb_hset *s);
/* Empties the set, keeping its memory. */
void lb__hset_clear(lb_hset *s);
/* Find p/n, adding it (values 0) if absent: *added says which. *e points
 * into the arena until the next add. LB_ENOMEM (set unchanged). */
LB__WUR int lb__hset_get(lb_hset *s, const void *p, size_t n, int *added,
                         lb_hent **e);
/* Find p/n without adding it: NULL when absent. */
lb_hent *lb__hset_find(const lb_hset *s, const void *p, size_t n);
/* The entry at arena offset off (lb__hset_off, or a walk of the arena with
 * lb__hset_next). */
lb_hent *lb__hset_at(const lb_hset *s, size_t off);
size_t lb__hset_off(const lb_hset *s, const lb_hent *e);
/* The offset of the entry after the one at off (arena order = the order of
 * adds); s->arena.len at the end. */
size_t lb__hset_next(const lb_hset *s, size_t off);

/* The bytes of an entry. */
static inline const uint8_t *lb__hent_key(const lb_hent *e)
{
	return (const uint8_t *)(e + 1);
}

#endif /* LB_WAL_HSET_H */
