/* SPDX-License-Identifier: MIT */
/*
 * pagecheck.c: a structural check of data.mdb that does not trust it.
 *
 * LMDB follows its page and node headers without checking them: a damaged
 * free-space bound, node offset, key or data size, child page number or
 * overflow page count makes it read outside the page or the map (SIGSEGV,
 * SIGBUS) or fail one of its assertions (abort). So before LMDB walks a
 * snapshot's trees, this file walks them itself, reading data.mdb with
 * pread() into its own buffers (never through the map), every read bounded
 * by the file's size and by the meta page's last page number, and checks
 * every header LMDB would rely on.
 *
 * The layout read here is LMDB 0.9's on-disk format on a 64-bit host (the
 * only format this library is built against); every field is in host byte
 * order:
 *
 *   page header, 16 bytes: page number (8), pad (2, the key size of a
 *     LEAF2 sub-page), flags (2), then either lower and upper bounds of the
 *     free space (2 + 2), or, on the first page of an overflow run, the
 *     run's length in pages (4). Branch and leaf pages then hold an array
 *     of 2-byte node offsets (their count is (lower - 16) / 2); the nodes
 *     themselves lie between upper and the end of the page, each at an
 *     even offset. A LEAF2 page holds fixed-size keys packed right after
 *     the header instead.
 *   node header, 8 bytes: data size (low and high 16 bits; on a branch
 *     node they and the flags field are the child's page number), flags
 *     (2), key size (2); then the key, then the data (in a leaf). Leaf
 *     node flags: BIGDATA (the data is the 8-byte number of an overflow
 *     run), SUBDATA (the data is a 48-byte database record), DUPDATA (the
 *     data holds the key's sorted duplicates: an inline sub-page, or with
 *     SUBDATA the record of a sub-tree whose keys are the duplicates).
 *   database record, 48 bytes: pad (4: the key size of LEAF2 pages), flags
 *     (2), depth (2), branch, leaf and overflow page counts, entries, root
 *     page number (8 each).
 *   meta page (pages 0 and 1): the page header, magic (4), version (4),
 *     fixed-map address (8), map size (8), the free list's record (whose
 *     pad is the page size) and the main database's, the last page number
 *     in use (8) and the id of the transaction that wrote it (8).
 *
 * What is checked, for every page reached: its number is in 2..last page,
 * not reached before (a bitmap: no cycle, no page shared by two parents or
 * two trees) and not listed in the free list; its header names it; its
 * flags are exactly those of its place (branch above the tree's depth,
 * leaf or LEAF2 at it); the free-space bounds fit the page; every node
 * offset is even and inside the node area, every node (header, key, data)
 * fits, and the nodes together fit the node area (so no two overlap
 * wholesale); keys are at most LMDB's maximum key size; leaf node flags are
 * valid for the tree (records only in the main database, duplicates only
 * under DUPSORT); sub-pages are checked like pages within their node;
 * overflow runs start with a header naming them, are long enough for the
 * data and lie within the last page; every database record has a root in
 * range and a sane depth. The free list's entries are lists of page
 * numbers in range, none listed twice. The full check also requires each
 * record's page and entry counts to equal what the walk found; the open
 * check leaves them alone, since no read relies on them and a wrong count
 * is no reason to refuse access (lb_verify() reports it). Key order is not
 * checked: a disordered page makes LMDB answer wrongly, not crash, and the
 * engine's own checks catch wrong answers.
 *
 * Meta pages are held to what LMDB itself relies on: the meta flag, magic
 * and version (which LMDB checks too when it opens the file), a page size
 * on the snapshot's meta page equal to meta page 0's (LMDB reads meta page
 * 1 at the one and then uses the other), and a last page inside the file.
 * These are read with pread() before anything touches the map, since a
 * damaged page size or last page makes LMDB's own reads of the meta pages
 * fault.
 *
 * The snapshot: the caller's read transaction pins its pages (a writer
 * reuses no page that a live reader may still see), and the meta page
 * whose transaction id is the transaction's gives the roots. Meta pages
 * are read twice and compared, so that one being written by another
 * process at that moment is not taken half old, half new.
 *
 * Cost: one pread() per page (one per overflow run, plus its data for the
 * free list's), a bitmap of two bits per page, and one page buffer per
 * level of the deepest path; O(pages) time.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/pagecheck.h"

#if SIZE_MAX > 0xffffffffu

/* Layout (see above). */
enum {
	PG_HDR = 16,
	PG_PAD = 8,
	PG_FLAGS = 10,
	PG_LOWER = 12,
	PG_UPPER = 14,
	PG_PAGES = 12,
	NODE_HDR = 8,
	DB_REC = 48,
	META_MAGIC = PG_HDR,
	META_VERSION = PG_HDR + 4,
	META_DBS = PG_HDR + 24,
	META_LAST = META_DBS + 2 * DB_REC,
	META_TXNID = META_LAST + 8,
	META_END = META_TXNID + 8,
};

/* Page flags. */
enum {
	P_BRANCH = 0x01,
	P_LEAF = 0x02,
	P_OVERFLOW = 0x04,
	P_META = 0x08,
	P_DIRTY = 0x10, /* left set on sub-pages */
	P_LEAF2 = 0x20,
	P_SUBP = 0x40,
};

/* Leaf node flags. */
enum { F_BIGDATA = 0x01, F_SUBDATA = 0x02, F_DUPDATA = 0x04 };

#define LMDB_MAGIC 0xBEEFC0DEu
#define LMDB_DATA_VERSION 1u
#define NUM_METAS 2u
#define NO_PAGE UINT64_MAX /* the root of an empty tree */
#define MAX_DEPTH 32u      /* LMDB's cursor stack */
/* Database flags a record may carry (LMDB's persistent ones). */
#define DB_FLAGS                                                               \
	(MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED |        \
	 MDB_INTEGERDUP | MDB_REVERSEDUP)
/* Trees nest at most three deep: main database, a named database, the
 * duplicates of one of its keys. */
#define MAX_NEST (3 * MAX_DEPTH)
/* Attempts at finding the snapshot's meta page before giving up. */
#define META_TRIES 16
/* How far past the file's end a meta page's last page may lie
 * (meta_usable): a multiple of the file's pages, plus a constant. */
#define LAST_SLACK_FACTOR 4u
#define LAST_SLACK_PAGES 4096u

#define EVEN(x) (((x) + 1u) & ~(uint64_t)1)

static uint16_t get16(const uint8_t *p, size_t off)
{
	uint16_t v;
	memcpy(&v, p + off, sizeof v);
	return v;
}
static uint32_t get32(const uint8_t *p, size_t off)
{
	uint32_t v;
	memcpy(&v, p + off, sizeof v);
	return v;
}
static uint64_t get64(const uint8_t *p, size_t off)
{
	uint64_t v;
	memcpy(&v, p + off, sizeof v);
	return v;
}

typedef struct dbrec {
	uint32_t pad;
	uint16_t flags, depth;
	uint64_t branch, leaf, over, entries, root;
} dbrec;

static void get_rec(const uint8_t *p, dbrec *d)
{
	d->pad = get32(p, 0);
	d->flags = get16(p, 4);
	d->depth = get16(p, 6);
	d->branch = get64(p, 8);
	d->leaf = get64(p, 16);
	d->over = get64(p, 24);
	d->entries = get64(p, 32);
	d->root = get64(p, 40);
}

/* Tree kinds. */
enum { K_FREE, K_MAIN, K_NAMED, K_DUP };

typedef struct tree {
	char name[96]; /* for messages */
	int kind;
	int spine; /* walk only the path to the last entry */
	dbrec db;
	int dupsort; /* leaves may hold duplicates */
	int leaf2;   /* leaves are LEAF2 pages of db.pad-byte keys */
	uint64_t branch, leaf, over, entries; /* found */
} tree;

typedef struct pc {
	int fd;
	uint32_t psize;
	unsigned maxkey;
	int full;
	uint64_t npages; /* last page + 1 */
	uint64_t *seen;  /* pages reached */
	uint64_t *freed; /* pages the free list names */
	uint8_t *bufs[MAX_NEST];
	unsigned sp; /* bufs in use */
	uint8_t *scratch;
	size_t scap;
	int own; /* txn is the check's own (opening): it may adopt a map
	            another process grew */
	MDB_env *env;
} pc;

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int
bad(const tree *t, uint64_t pgno, const char *fmt, ...)
{
	char what[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return lb__fail(LB_ECORRUPT, "data.mdb page %llu (%s): %s",
	                (unsigned long long)pgno, t->name, what);
}

/* Test and set bit i. */
static int bit_set(uint64_t *bm, uint64_t i)
{
	uint64_t m = (uint64_t)1 << (i & 63);
	int was = (bm[i >> 6] & m) != 0;
	bm[i >> 6] |= m;
	return was;
}
static int bit_get(const uint64_t *bm, uint64_t i)
{
	return (bm[i >> 6] >> (i & 63)) & 1;
}

/* Read n bytes at off; a short read means the file ends before the page
 * (which the size checks exclude, unless the file shrank under us). */
static int read_at(pc *c, const tree *t, uint64_t pgno, void *buf, size_t n,
                   uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(c->fd, (char *)buf + got, n - got,
		                  (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return lb__fail(LB_EIO, "data.mdb page %llu: %s",
			                (unsigned long long)pgno,
			                strerror(errno));
		if (r == 0)
			return bad(t, pgno, "the file ends inside the page");
		got += (size_t)r;
	}
	return 0;
}

/* Claim page pgno for tree t: in range, not reached before, not free. */
static int take(pc *c, const tree *t, uint64_t pgno, uint64_t from)
{
	if (pgno < NUM_METAS || pgno >= c->npages)
		return bad(t, from,
		           "refers to page %llu, outside the data pages "
		           "2..%llu",
		           (unsigned long long)pgno,
		           (unsigned long long)(c->npages - 1));
	if (bit_set(c->seen, pgno))
		return bad(t, from,
		           "refers to page %llu, which is reached twice (a "
		           "cycle, or a page shared by two parents)",
		           (unsigned long long)pgno);
	if (bit_get(c->freed, pgno))
		return bad(t, from,
		           "refers to page %llu, which the free list also "
		           "names",
		           (unsigned long long)pgno);
	return 0;
}

/* A buffer for one page at nesting level c->sp. */
static uint8_t *level_buf(pc *c)
{
	if (!c->bufs[c->sp])
		c->bufs[c->sp] = malloc(c->psize);
	return c->bufs[c->sp];
}

/* Check a database record before its tree is walked (or instead). */
static int check_rec(pc *c, const tree *parent, uint64_t pgno, unsigned i,
                     const tree *t)
{
	const dbrec *d = &t->db;
	if (t->kind == K_DUP) {
		/* LMDB writes 0 or DUPFIXED (with INTEGERKEY for integer
		 * duplicates), following the parent's DUPFIXED */
		unsigned fixed = parent->db.flags & MDB_DUPFIXED;
		if ((d->flags & ~(MDB_DUPFIXED | MDB_INTEGERKEY)) ||
		    (d->flags & MDB_DUPFIXED) != fixed)
			return bad(parent, pgno,
			           "node %u: a duplicates record with flags "
			           "0x%x",
			           i, d->flags);
	} else if (t->kind != K_FREE && (d->flags & ~DB_FLAGS)) {
		return bad(parent, pgno, "%s: flags 0x%x", t->name, d->flags);
	}
	if (d->root == NO_PAGE) {
		if (t->kind == K_DUP)
			return bad(parent, pgno,
			           "node %u: an empty duplicates record", i);
		/* (counts matter to no read: only the full check has them) */
		if (c->full &&
		    (d->depth || d->branch || d->leaf || d->over || d->entries))
			return bad(parent, pgno,
			           "%s: empty, but with depth %u and %llu "
			           "entries",
			           t->name, d->depth,
			           (unsigned long long)d->entries);
		return 0;
	}
	if (d->root < NUM_METAS || d->root >= c->npages)
		return bad(parent, pgno,
		           "%s: root page %llu is outside the data pages "
		           "2..%llu",
		           t->name, (unsigned long long)d->root,
		           (unsigned long long)(c->npages - 1));
	if (d->depth == 0 || d->depth > MAX_DEPTH)
		return bad(parent, pgno, "%s: depth %u", t->name, d->depth);
	if (t->leaf2 && d->pad > c->maxkey)
		return bad(parent, pgno, "%s: fixed key size %u", t->name,
		           d->pad);
	return 0;
}

static int walk_tree(pc *c, tree *t);

/* The list of page numbers of a free-list entry (an LMDB ID list: count,
 * then the numbers). */
static int free_ids(pc *c, const tree *t, uint64_t pgno, unsigned i,
                    const uint8_t *d, uint32_t dsize)
{
	if (dsize < 8 || dsize % 8)
		return bad(t, pgno, "node %u: a free-list entry of %u bytes", i,
		           dsize);
	uint64_t n = get64(d, 0);
	if (n > dsize / 8 - 1)
		return bad(t, pgno,
		           "node %u: a free-list entry claims %llu pages in "
		           "%u bytes",
		           i, (unsigned long long)n, dsize);
	for (uint64_t j = 1; j <= n; j++) {
		uint64_t f = get64(d, 8 * j);
		if (f < NUM_METAS || f >= c->npages)
			return bad(t, pgno,
			           "node %u: free page %llu is outside the "
			           "data pages 2..%llu",
			           i, (unsigned long long)f,
			           (unsigned long long)(c->npages - 1));
		if (bit_set(c->freed, f))
			return bad(t, pgno,
			           "node %u: page %llu is listed free twice", i,
			           (unsigned long long)f);
		if (bit_get(c->seen, f))
			return bad(t, pgno,
			           "node %u: page %llu is listed free but is "
			           "in use",
			           i, (unsigned long long)f);
	}
	return 0;
}

/* The overflow run at ov holding dsize bytes of node i of page pgno; with
 * data, its bytes are read into c->scratch. */
static int overflow(pc *c, tree *t, uint64_t pgno, unsigned i, uint64_t ov,
                    uint32_t dsize, const uint8_t **data)
{
	uint8_t h[PG_HDR];
	int rc;
	if ((rc = take(c, t, ov, pgno)) < 0)
		return rc;
	if ((rc = read_at(c, t, ov, h, sizeof h, ov * c->psize)) < 0)
		return rc;
	if (get64(h, 0) != ov)
		return bad(t, ov, "its header names page %llu",
		           (unsigned long long)get64(h, 0));
	if (get16(h, PG_FLAGS) != P_OVERFLOW)
		return bad(t, ov,
		           "flags 0x%x where the overflow page of node %u of "
		           "page %llu belongs",
		           get16(h, PG_FLAGS), i, (unsigned long long)pgno);
	uint64_t pages = get32(h, PG_PAGES);
	uint64_t need = ((uint64_t)dsize + PG_HDR - 1) / c->psize + 1;
	if (pages < need || pages > c->npages - ov)
		return bad(t, ov,
		           "an overflow run of %llu pages, for %u bytes, "
		           "with %llu pages left in the file",
		           (unsigned long long)pages, dsize,
		           (unsigned long long)(c->npages - ov));
	for (uint64_t k = 1; k < pages; k++)
		if ((rc = take(c, t, ov + k, ov)) < 0)
			return rc;
	t->over += pages;
	if (data) {
		if (c->scap < dsize) {
			uint8_t *p = realloc(c->scratch, dsize);
			if (!p)
				return lb__fail(LB_ENOMEM, "out of memory");
			c->scratch = p;
			c->scap = dsize;
		}
		if ((rc = read_at(c, t, ov, c->scratch, dsize,
		                  ov * c->psize + PG_HDR)) < 0)
			return rc;
		*data = c->scratch;
	}
	return 0;
}

/* The sub-page of size bytes in node i of page pgno: a leaf page of the
 * key's duplicates, inline. */
static int subpage(pc *c, tree *t, uint64_t pgno, unsigned i, const uint8_t *sp,
                   uint32_t size)
{
	int fixed = (t->db.flags & MDB_DUPFIXED) != 0;
	unsigned want = P_LEAF | P_SUBP | (fixed ? P_LEAF2 : 0);
	unsigned flags = get16(sp, PG_FLAGS) & ~(unsigned)P_DIRTY;
	unsigned lower = get16(sp, PG_LOWER), upper = get16(sp, PG_UPPER);
	if (flags != want)
		return bad(t, pgno,
		           "node %u: a sub-page with flags 0x%x (0x%x "
		           "expected)",
		           i, flags, want);
	if (lower < PG_HDR || (lower - PG_HDR) % 2 || lower > upper ||
	    upper > size)
		return bad(t, pgno,
		           "node %u: sub-page bounds %u..%u do not fit its "
		           "%u bytes",
		           i, lower, upper, size);
	unsigned n = (lower - PG_HDR) / 2;
	if (n == 0)
		return bad(t, pgno, "node %u: an empty sub-page", i);
	if (fixed) {
		unsigned ks = get16(sp, PG_PAD);
		if (ks > c->maxkey || PG_HDR + (uint64_t)n * ks > size)
			return bad(t, pgno,
			           "node %u: %u duplicates of %u bytes do not "
			           "fit its %u-byte sub-page",
			           i, n, ks, size);
		t->entries += n;
		return 0;
	}
	uint64_t used = 0;
	for (unsigned j = 0; j < n; j++) {
		unsigned off = get16(sp, PG_HDR + 2 * j);
		if (off < upper || off % 2 || off + NODE_HDR > size)
			return bad(t, pgno,
			           "node %u: sub-page node %u at offset %u, "
			           "outside %u..%u",
			           i, j, off, upper, size);
		unsigned ks = get16(sp, off + 6);
		uint32_t ds = get32(sp, off);
		if (get16(sp, off + 4) != 0 || ds != 0 || ks > c->maxkey ||
		    (uint64_t)off + NODE_HDR + ks > size)
			return bad(t, pgno,
			           "node %u: sub-page node %u (flags 0x%x, "
			           "key %u bytes, data %u bytes) is not a "
			           "duplicate that fits",
			           i, j, get16(sp, off + 4), ks, ds);
		used += EVEN(NODE_HDR + ks);
	}
	if (used > size - upper)
		return bad(t, pgno,
		           "node %u: sub-page nodes of %llu bytes in %u bytes",
		           i, (unsigned long long)used, size - upper);
	t->entries += n;
	return 0;
}

/* Which named databases the open check walks: what lb_open() reads. */
static int open_walks(const uint8_t *key, unsigned ksize, int *spine)
{
	*spine = 0;
	if (ksize == 5 && !memcmp(key, "_meta", 5))
		return 1;
	if (ksize == 8 && !memcmp(key, "_batches", 8)) {
		*spine = 1; /* lb_open reads the last batch only */
		return 1;
	}
	return 0;
}

/* Leaf node i at offset off of page pg (pgno); *size = its bytes. */
static int leaf_node(pc *c, tree *t, uint64_t pgno, const uint8_t *pg,
                     unsigned i, unsigned off, uint64_t *size)
{
	uint32_t dsize = get32(pg, off);
	unsigned nflags = get16(pg, off + 4), ksize = get16(pg, off + 6);
	const uint8_t *key = pg + off + NODE_HDR;
	int rc;
	if (ksize > c->maxkey)
		return bad(t, pgno, "node %u: a key of %u bytes", i, ksize);
	if (off + NODE_HDR + ksize > c->psize)
		return bad(t, pgno,
		           "node %u: its %u-byte key runs past the page end", i,
		           ksize);
	if (t->kind == K_FREE && ksize != 8)
		return bad(t, pgno, "node %u: a free-list key of %u bytes", i,
		           ksize);
	unsigned body = off + NODE_HDR + ksize, room = c->psize - body;
	*size = NODE_HDR + ksize;
	switch (nflags) {
	case 0:
		if (dsize > room)
			return bad(t, pgno,
			           "node %u: its %u-byte value runs past the "
			           "page end",
			           i, dsize);
		if (t->kind == K_DUP && dsize != 0)
			return bad(t, pgno,
			           "node %u: a duplicate with %u bytes of data",
			           i, dsize);
		if (t->dupsort && dsize > c->maxkey)
			return bad(t, pgno,
			           "node %u: a %u-byte value where values are "
			           "at most %u bytes",
			           i, dsize, c->maxkey);
		if (t->kind == K_FREE &&
		    (rc = free_ids(c, t, pgno, i, pg + body, dsize)) < 0)
			return rc;
		*size += dsize;
		t->entries++;
		return 0;
	case F_BIGDATA: {
		const uint8_t *data = NULL;
		if (t->kind == K_DUP || t->dupsort)
			return bad(t, pgno,
			           "node %u: a value on overflow pages where "
			           "values are small",
			           i);
		if (room < 8)
			return bad(
			        t, pgno,
			        "node %u: its overflow page number runs past "
			        "the page end",
			        i);
		rc = overflow(c, t, pgno, i, get64(pg, body), dsize,
		              t->kind == K_FREE ? &data : NULL);
		if (rc == 0 && t->kind == K_FREE)
			rc = free_ids(c, t, pgno, i, data, dsize);
		if (rc < 0)
			return rc;
		*size += 8;
		t->entries++;
		return 0;
	}
	case F_SUBDATA:
	case F_DUPDATA | F_SUBDATA: {
		tree sub;
		int dup = nflags & F_DUPDATA, walk = 1;
		if (dup ? !t->dupsort : t->kind != K_MAIN)
			return bad(t, pgno,
			           "node %u: a %s record where none belongs", i,
			           dup ? "duplicates" : "database");
		if (dsize != DB_REC || room < DB_REC)
			return bad(t, pgno,
			           "node %u: a %s record of %u bytes (%u "
			           "expected)",
			           i, dup ? "duplicates" : "database", dsize,
			           DB_REC);
		memset(&sub, 0, sizeof sub);
		get_rec(pg + body, &sub.db);
		if (dup) {
			sub.kind = K_DUP;
			sub.spine = t->spine;
			snprintf(sub.name, sizeof sub.name,
			         "duplicates in %.80s", t->name);
		} else {
			char kt[64];
			sub.kind = K_NAMED;
			walk = c->full || open_walks(key, ksize, &sub.spine);
			snprintf(sub.name, sizeof sub.name, "%s",
			         lb__key_text(key, ksize, kt, sizeof kt));
		}
		sub.dupsort = (sub.db.flags & MDB_DUPSORT) != 0;
		sub.leaf2 = (sub.db.flags & (MDB_DUPSORT | MDB_DUPFIXED)) ==
		            MDB_DUPFIXED;
		if ((rc = check_rec(c, t, pgno, i, &sub)) < 0)
			return rc;
		if (walk && (rc = walk_tree(c, &sub)) < 0)
			return rc;
		*size += DB_REC;
		t->entries += dup ? sub.db.entries : 1;
		return 0;
	}
	case F_DUPDATA:
		if (!t->dupsort)
			return bad(t, pgno,
			           "node %u: duplicates where none belong", i);
		if (dsize > room || dsize < PG_HDR)
			return bad(t, pgno,
			           "node %u: a %u-byte sub-page with %u bytes "
			           "left in the page",
			           i, dsize, room);
		if ((rc = subpage(c, t, pgno, i, pg + body, dsize)) < 0)
			return rc;
		*size += dsize;
		return 0;
	default:
		return bad(t, pgno, "node %u: flags 0x%x", i, nflags);
	}
}

static int walk_page(pc *c, tree *t, uint64_t pgno, unsigned level,
                     uint64_t from);

/* The page pgno, already read into pg, at depth level of t. */
static int page_body(pc *c, tree *t, uint64_t pgno, unsigned level, uint8_t *pg)
{
	int leaf = level == t->db.depth, rc;
	unsigned want = !leaf ? P_BRANCH : t->leaf2 ? P_LEAF | P_LEAF2 : P_LEAF;
	unsigned flags = get16(pg, PG_FLAGS);
	unsigned lower = get16(pg, PG_LOWER), upper = get16(pg, PG_UPPER);
	if (get64(pg, 0) != pgno)
		return bad(t, pgno, "its header names page %llu",
		           (unsigned long long)get64(pg, 0));
	if (flags != want)
		return bad(t, pgno,
		           "flags 0x%x at depth %u of %u, where a %s page "
		           "belongs",
		           flags, level, t->db.depth,
		           !leaf      ? "branch"
		           : t->leaf2 ? "LEAF2"
		                      : "leaf");
	if (lower < PG_HDR || (lower - PG_HDR) % 2 || lower > upper ||
	    upper > c->psize)
		return bad(t, pgno,
		           "free-space bounds %u..%u do not fit a %u-byte "
		           "page",
		           lower, upper, c->psize);
	unsigned n = (lower - PG_HDR) / 2;
	if (n == 0)
		return bad(t, pgno, "an empty %s page",
		           leaf ? "leaf" : "branch");
	if (leaf && t->leaf2) {
		if ((uint64_t)n * t->db.pad > c->psize - PG_HDR)
			return bad(t, pgno,
			           "%u keys of %u bytes do not fit the page", n,
			           t->db.pad);
		t->leaf++;
		t->entries += n;
		return 0;
	}
	uint64_t used = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned off = get16(pg, PG_HDR + 2 * i);
		uint64_t size;
		if (off < upper || off % 2 || off + NODE_HDR > c->psize)
			return bad(
			        t, pgno,
			        "node %u at offset %u, outside the node area "
			        "%u..%u",
			        i, off, upper, c->psize);
		if (leaf) {
			if ((rc = leaf_node(c, t, pgno, pg, i, off, &size)) < 0)
				return rc;
		} else {
			unsigned ksize = get16(pg, off + 6);
			if (ksize > c->maxkey ||
			    off + NODE_HDR + ksize > c->psize)
				return bad(t, pgno,
				           "node %u: a %u-byte key at offset "
				           "%u",
				           i, ksize, off);
			size = NODE_HDR + ksize;
		}
		used += EVEN(size);
	}
	if (used > c->psize - upper)
		return bad(t, pgno, "nodes of %llu bytes in a %u-byte area",
		           (unsigned long long)used, c->psize - upper);
	if (leaf) {
		t->leaf++;
		return 0;
	}
	t->branch++;
	for (unsigned i = t->spine ? n - 1 : 0; i < n; i++) {
		unsigned off = get16(pg, PG_HDR + 2 * i);
		uint64_t child = get32(pg, off) | (uint64_t)get16(pg, off + 4)
		                                          << 32;
		if ((rc = walk_page(c, t, child, level + 1, pgno)) < 0)
			return rc;
	}
	return 0;
}

/* Claim, read and check page pgno (referred to from page from) at depth
 * level of t, and everything below it. */
static int walk_page(pc *c, tree *t, uint64_t pgno, unsigned level,
                     uint64_t from)
{
	int rc;
	if (level > t->db.depth)
		return bad(t, from, "a path deeper than the depth %u",
		           t->db.depth);
	if (c->sp >= MAX_NEST)
		return bad(t, from, "trees nested too deeply");
	if ((rc = take(c, t, pgno, from)) < 0)
		return rc;
	uint8_t *pg = level_buf(c);
	if (!pg)
		return lb__fail(LB_ENOMEM, "out of memory");
	if ((rc = read_at(c, t, pgno, pg, c->psize, pgno * c->psize)) < 0)
		return rc;
	c->sp++;
	rc = page_body(c, t, pgno, level, pg);
	c->sp--;
	return rc;
}

static int walk_tree(pc *c, tree *t)
{
	const dbrec *d = &t->db;
	int rc;
	if (d->root == NO_PAGE)
		return 0;
	if ((rc = walk_page(c, t, d->root, 1, d->root)) < 0)
		return rc;
	/* the counts are wrong only in records, where no read relies on
	 * them: lb_open() need not refuse them, lb_verify() reports them */
	if (t->spine || !c->full)
		return 0;
	if (t->branch != d->branch || t->leaf != d->leaf || t->over != d->over)
		return bad(t, d->root,
		           "the tree has %llu branch, %llu leaf and %llu "
		           "overflow pages, its record says %llu, %llu and "
		           "%llu",
		           (unsigned long long)t->branch,
		           (unsigned long long)t->leaf,
		           (unsigned long long)t->over,
		           (unsigned long long)d->branch,
		           (unsigned long long)d->leaf,
		           (unsigned long long)d->over);
	if (t->entries != d->entries)
		return bad(t, d->root,
		           "the tree holds %llu entries, its record says %llu",
		           (unsigned long long)t->entries,
		           (unsigned long long)d->entries);
	return 0;
}

/* ---- the meta pages ------------------------------------------------------ */

typedef struct meta {
	uint8_t raw[META_END];
	unsigned pgno; /* 0 or 1 */
	uint64_t txnid, last;
	dbrec dbs[2];
} meta;

/* Meta page k, as LMDB checks it when it opens the file (the meta flag,
 * magic and version); its other header fields are not used. */
static int read_meta(pc *c, unsigned k, meta *m)
{
	static const tree mt = {.name = "meta page"};
	int rc = read_at(c, &mt, k, m->raw, META_END, (uint64_t)k * c->psize);
	if (rc < 0)
		return rc;
	if (!(get16(m->raw, PG_FLAGS) & P_META))
		return bad(&mt, k, "not a meta page (flags 0x%x)",
		           get16(m->raw, PG_FLAGS));
	if (get32(m->raw, META_MAGIC) != LMDB_MAGIC ||
	    get32(m->raw, META_VERSION) != LMDB_DATA_VERSION)
		return bad(&mt, k, "magic 0x%x, version %u",
		           get32(m->raw, META_MAGIC),
		           get32(m->raw, META_VERSION));
	m->pgno = k;
	get_rec(m->raw + META_DBS, &m->dbs[0]);
	get_rec(m->raw + META_DBS + DB_REC, &m->dbs[1]);
	m->last = get64(m->raw, META_LAST);
	m->txnid = get64(m->raw, META_TXNID);
	return 0;
}

/* A meta page a snapshot is taken from: LMDB reads meta page 1 at meta
 * page 0's page size but then uses the newer one's, so they must agree.
 * Its last page may lie past the end of the file: pages a transaction
 * took from the end and freed again before it committed are counted but
 * never written (they are on the free list, and LMDB writes a page before
 * it reads it again). The walk requires every page a tree reaches to lie
 * in the file. The last page must only be plausible: LMDB maps at least
 * that much, so a huge one (damage) would make it fail to map. */
static int meta_usable(const pc *c, const meta *m, uint64_t fsize)
{
	static const tree mt = {.name = "meta page"};
	uint64_t fpages = fsize / c->psize;
	if (m->dbs[0].pad != c->psize)
		return bad(&mt, m->pgno, "page size %u, meta page 0 says %u",
		           m->dbs[0].pad, c->psize);
	if (m->last < NUM_METAS - 1 ||
	    m->last >= LAST_SLACK_FACTOR * fpages + LAST_SLACK_PAGES)
		return bad(&mt, m->pgno,
		           "last page %llu, the file holds %llu pages",
		           (unsigned long long)m->last,
		           (unsigned long long)fpages);
	return 0;
}

/* Find the meta page of txn's snapshot: the one whose transaction id is
 * txn's (a read transaction), or, for a write transaction (whose id is one
 * past the last commit), the last commit's. A meta page being rewritten
 * while it is read is read again; a read snapshot that no meta page
 * describes any more is renewed. */
static int find_meta(pc *c, MDB_txn *txn, meta *out)
{
	meta m[2], again[2];
	for (int tries = 0; tries < META_TRIES; tries++) {
		uint64_t id = mdb_txn_id(txn);
		int rc, pick = -1;
		for (unsigned k = 0; k < NUM_METAS; k++)
			if ((rc = read_meta(c, k, &m[k])) < 0 ||
			    (rc = read_meta(c, k, &again[k])) < 0)
				return rc;
		if (memcmp(m[0].raw, again[0].raw, META_END) ||
		    memcmp(m[1].raw, again[1].raw, META_END))
			continue;
		/* LMDB takes the higher id, meta page 0 on a tie */
		int newer = m[1].txnid > m[0].txnid;
		if (m[newer].txnid == id)
			pick = newer;
		else if (m[!newer].txnid == id)
			pick = !newer;
		else if (id > 0 && m[newer].txnid == id - 1)
			pick = newer;
		if (pick >= 0) {
			*out = m[pick];
			return 0;
		}
		mdb_txn_reset(txn);
		int mrc = mdb_txn_renew(txn);
		/* another process grew the map meanwhile: a transaction of
		 * our own (opening) may adopt it, no other is live */
		for (int n = 0; mrc == MDB_MAP_RESIZED && c->own && n < 64; n++)
			if ((mrc = mdb_env_set_mapsize(c->env, 0)) == 0)
				mrc = mdb_txn_renew(txn);
		if (mrc == MDB_MAP_RESIZED)
			return lb__fail(LB_EBUSY,
			                "page check: another process grew the "
			                "database during the check; try again");
		if (mrc)
			return lb__mdb_fail(mrc, "page check: renewing a read");
	}
	return lb__fail(LB_EBUSY,
	                "page check: the snapshot changed %d times while "
	                "its meta page was read",
	                META_TRIES);
}

/* The page size, from meta page 0, read with pread() before anything
 * touches the map: LMDB finds meta page 1 at the page size the newer meta
 * page gives, so a damaged one puts it past the end of the file, where the
 * map faults. read_meta() then requires both meta pages to agree. */
static int page_size(pc *c, uint64_t fsize)
{
	static const tree mt = {.name = "meta page"};
	uint8_t raw[META_END];
	int rc = read_at(c, &mt, 0, raw, sizeof raw, 0);
	if (rc < 0)
		return rc;
	uint32_t ps = get32(raw, META_DBS);
	if (ps < 256 || ps > 65536 || (ps & (ps - 1)))
		return bad(&mt, 0, "page size %u", ps);
	if (fsize < (uint64_t)NUM_METAS * ps)
		return lb__fail(LB_ECORRUPT,
		                "data.mdb: %llu bytes, less than two %u-byte "
		                "meta pages",
		                (unsigned long long)fsize, ps);
	c->psize = ps;
	return 0;
}

/* Both meta pages, checked before a transaction of our own reads them
 * through the map: the newer one is the one LMDB takes. The file's size is
 * taken after them: a writer in another process extends the file before
 * it writes the meta page that counts the new pages. */
static int metas_sane(pc *c)
{
	meta m[NUM_METAS];
	struct stat st;
	int rc;
	for (unsigned k = 0; k < NUM_METAS; k++)
		if ((rc = read_meta(c, k, &m[k])) < 0)
			return rc;
	if (fstat(c->fd, &st) != 0)
		return lb__fail(LB_EIO, "data.mdb: %s", strerror(errno));
	return meta_usable(c, &m[m[1].txnid > m[0].txnid],
	                   (uint64_t)st.st_size);
}

static int check(pc *c, MDB_txn *txn)
{
	struct stat st;
	meta m;
	int rc;
	memset(&m, 0, sizeof m);
	if ((rc = find_meta(c, txn, &m)) < 0)
		return rc;
	/* the size now, not the one lb__pagecheck() began with: another
	 * process may have committed (and grown the file) since, and txn's
	 * snapshot may be that newer one (the file never shrinks) */
	if (fstat(c->fd, &st) != 0)
		return lb__fail(LB_EIO, "data.mdb: %s", strerror(errno));
	if ((rc = meta_usable(c, &m, (uint64_t)st.st_size)) < 0)
		return rc;
	c->npages = m.last + 1;
	size_t words = (size_t)(c->npages + 63) / 64;
	c->seen = calloc(words, sizeof *c->seen);
	c->freed = calloc(words, sizeof *c->freed);
	if (!c->seen || !c->freed)
		return lb__fail(LB_ENOMEM, "out of memory");
	/* The free list first: its pages and the pages it names, which no
	 * tree may then reach. */
	tree t;
	memset(&t, 0, sizeof t);
	snprintf(t.name, sizeof t.name, "the free list");
	t.kind = K_FREE;
	t.db = m.dbs[0];
	if ((rc = check_rec(c, &t, m.pgno, 0, &t)) < 0 ||
	    (rc = walk_tree(c, &t)) < 0)
		return rc;
	memset(&t, 0, sizeof t);
	snprintf(t.name, sizeof t.name, "the main database");
	t.kind = K_MAIN;
	t.db = m.dbs[1];
	t.dupsort = (t.db.flags & MDB_DUPSORT) != 0;
	t.leaf2 = (t.db.flags & (MDB_DUPSORT | MDB_DUPFIXED)) == MDB_DUPFIXED;
	if ((rc = check_rec(c, &t, m.pgno, 0, &t)) < 0 ||
	    (rc = walk_tree(c, &t)) < 0)
		return rc;
	return 0;
}

/* A read transaction of our own. Only opening asks for one (lb_open(), and
 * reopening after a failed write), before any transaction of env is live,
 * so a map grown by another process may be adopted here as opening would
 * adopt it next. */
static int begin_own(MDB_env *env, MDB_txn **txn)
{
	int mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn);
	for (int tries = 0; mrc == MDB_MAP_RESIZED && tries < 64; tries++)
		if ((mrc = mdb_env_set_mapsize(env, 0)) == 0)
			mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, txn);
	if (mrc) {
		*txn = NULL;
		return lb__mdb_fail(mrc, "page check: beginning a read");
	}
	return 0;
}

int lb__pagecheck(MDB_env *env, MDB_txn *txn, int full)
{
	pc c;
	MDB_txn *own = NULL;
	struct stat st;
	int mrc, rc;
	if (!env)
		return lb__fail(LB_EINVAL, "page check: no environment");
	memset(&c, 0, sizeof c);
	c.full = full;
	/* nothing here may touch the map before the meta pages are known
	 * to lie inside the file: no mdb_env_stat() or mdb_env_info() */
	if ((mrc = mdb_env_get_fd(env, &c.fd)))
		return lb__mdb_fail(mrc, "page check");
	c.maxkey = (unsigned)mdb_env_get_maxkeysize(env);
	if (fstat(c.fd, &st) != 0)
		return lb__fail(LB_EIO, "data.mdb: %s", strerror(errno));
	if ((rc = page_size(&c, (uint64_t)st.st_size)) < 0 ||
	    (rc = metas_sane(&c)) < 0)
		return rc;
	if (!txn) {
		if ((rc = begin_own(env, &own)) < 0)
			return rc;
		txn = own;
	}
	c.own = own != NULL;
	c.env = env;
	rc = check(&c, txn);
	if (own)
		mdb_txn_abort(own);
	for (unsigned i = 0; i < MAX_NEST; i++)
		free(c.bufs[i]);
	free(c.seen);
	free(c.freed);
	free(c.scratch);
	return rc;
}

int lb__pagecheck_metas(const char *file)
{
	pc c;
	struct stat st;
	int rc;
	memset(&c, 0, sizeof c);
	if ((c.fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? 0
		                       : lb__fail(LB_EIO, "%s: %s", file,
		                                  strerror(errno));
	if (fstat(c.fd, &st) != 0)
		rc = lb__fail(LB_EIO, "%s: %s", file, strerror(errno));
	else if (st.st_size == 0)
		rc = 0; /* a new environment, not written yet */
	else if ((rc = page_size(&c, (uint64_t)st.st_size)) == 0)
		rc = metas_sane(&c);
	close(c.fd);
	return rc;
}

#else /* 32-bit: LMDB's page and node layout differ; not checked. */

int lb__pagecheck(MDB_env *env, MDB_txn *txn, int full)
{
	(void)env;
	(void)txn;
	(void)full;
	return 0;
}

int lb__pagecheck_metas(const char *file)
{
	(void)file;
	return 0;
}

#endif
