/* SPDX-License-Identifier: MIT */
/*
 * feed.c: the log as a feed: waiting for the next batch, reading a key as
 * of a past batch, and the differences between two batches.
 *
 * WAITING. LMDB tells no other process that a transaction committed. Every
 * commit writes the data file (pages, then a meta page, with pwrite), so
 * lb_wait watches data.mdb with inotify and looks at the last batch each
 * time the kernel reports a write; the look is one read transaction. A
 * watch is added before the first look, so a commit between the look and
 * the sleep is not missed. The sleep is bounded (POLL_CAP_MS), so a file
 * system whose writes inotify does not see still wakes the waiter. Without
 * inotify it polls, 1 ms growing to 50 ms.
 *
 * AS OF. The value a key held right after batch N is the before-image of
 * the key's first change after N, or its current value when nothing
 * changed it since: the history of the key (FORMAT.md §2.4: the writer of
 * its value or `_gone`, then each record's prev) is walked from its last
 * change down to the first change F after N, reading each batch on the way
 * only as far as the key's first record (the batch cache below keeps the
 * batches asked about again). One case needs more: a table removed by a
 * rollback after N and created again starts a new history (its keys'
 * first records have prev 0), so the history of the current table knows
 * nothing of the key's value in the old one. That can only happen when an undo
 * batch after N removed a table of that name (only undo batches remove tables;
 * which ones an undo batch removed is read from its log once per handle) and
 * the current table says "absent"; then the log from N up to that removal is
 * read, record by record, for the first record of the key or of its table (by
 * name).
 *
 * DIFF. The records of batches lo+1..hi are collected (table, key, images,
 * order), sorted by table, key and order, and each group reduced to its
 * first before-image (the value right after lo) and its last after-image
 * (right after hi). Memory and time are proportional to the records in
 * between.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "engine/internal.h"

/* ---- lb_wait ------------------------------------------------------------- */

/* The longest sleep between two looks at the last batch while a watch is
 * set: a safety net for writes inotify does not report. */
#define POLL_CAP_MS 200
/* Polling without inotify: the first and the longest pause. */
#define BACKOFF_MIN_MS 1
#define BACKOFF_MAX_MS 50

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drain(int fd)
{
	char buf[4096];
	while (read(fd, buf, sizeof buf) > 0)
		;
}

int lb_wait(lb_db *db, uint64_t after, int timeout_ms, uint64_t *last)
{
	if (last)
		*last = 0;
	if (!db || !last)
		return lb__fail(LB_EINVAL, "lb_wait: NULL argument");
	if (timeout_ms < -1)
		return lb__fail(LB_EINVAL,
		                "lb_wait: timeout %d ms (-1 waits "
		                "forever)",
		                timeout_ms);
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
	int fd = -1;
	if (timeout_ms != 0) {
		/* the watch first: a commit after the look below then wakes
		 * the poll */
		char file[PATH_MAX];
		fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (fd >= 0 && (snprintf(file, sizeof file, "%s/data.mdb",
		                         db->path) >= (int)sizeof file ||
		                inotify_add_watch(fd, file,
		                                  IN_MODIFY | IN_CLOSE_WRITE |
		                                          IN_ATTRIB) < 0)) {
			close(fd);
			fd = -1;
		}
	}
	int backoff = BACKOFF_MIN_MS, rc;
	for (;;) {
		uint64_t id;
		if ((rc = lb_last_batch(db, &id)) < 0)
			break;
		*last = id;
		if (id > after) {
			rc = 0;
			break;
		}
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			rc = lb__fail(LB_EBUSY,
			              "no batch after %llu within %d ms (the "
			              "last is %llu)",
			              (unsigned long long)after, timeout_ms,
			              (unsigned long long)id);
			break;
		}
		int nap = fd >= 0 ? POLL_CAP_MS : backoff;
		if (left < nap)
			nap = (int)left;
		if (fd >= 0) {
			struct pollfd p = {fd, POLLIN, 0};
			if (poll(&p, 1, nap) > 0)
				drain(fd);
		} else {
			struct timespec ts = {nap / 1000,
			                      (long)(nap % 1000) * 1000000L};
			nanosleep(&ts, NULL);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
			                                       : backoff * 2;
		}
	}
	if (fd >= 0)
		close(fd);
	if (rc < 0 && rc != LB_EBUSY)
		*last = 0;
	return rc;
}

/* ---- lb_get_asof --------------------------------------------------------- */

/* The first record of (table, key) in a batch, or (with tables set) of a
 * TABLE record of that table that creates or removes it. */
typedef struct {
	const char *table;
	size_t tlen;
	const void *key;
	size_t klen;
	int tables;
	int found;   /* 1: the key's record; 2: its table created/removed */
	int present; /* the before-image exists */
	void *val;
	size_t vlen;
	uint64_t prev; /* the record's prev (FORMAT.md §2.4) */
	int noval;     /* only found and prev are wanted */
	int index;     /* index the batch at once (a walk will be back) */
} first_ctx;

static int first_cb(void *p, const lb_wal_rec *r)
{
	first_ctx *f = p;
	if (r->tlen != f->tlen || memcmp(r->table, f->table, f->tlen) != 0)
		return 0;
	if (r->op == LB_OP_TABLE) {
		/* a creation: the table did not exist before; a removal:
		 * it was empty (only empty tables are removed) */
		if (f->tables && r->has_before != r->has_after) {
			f->found = 2;
			return 1;
		}
		return 0;
	}
	if (r->klen != f->klen || memcmp(r->key, f->key, f->klen) != 0)
		return 0;
	f->found = 1;
	f->prev = r->prev;
	if (r->has_before && !f->noval) {
		f->val = malloc(r->blen ? r->blen : 1);
		if (!f->val)
			return lb__fail(LB_ENOMEM, "as of: out of memory");
		memcpy(f->val, r->before, r->blen);
		f->vlen = r->blen;
	}
	f->present = r->has_before != 0;
	return 1;
}

static int walk_first(lb_db *db, MDB_txn *txn, uint64_t id, lb_segr *r,
                      first_ctx *f)
{
	int rc = lb__walk_batch(db, txn, id, r, first_cb, f);
	if (rc == LB_EPRUNED)
		return lb__fail(LB_EPRUNED,
		                "the value as of that batch needs the log of "
		                "batch %llu, which was pruned",
		                (unsigned long long)id);
	return rc < 0 ? rc : 0;
}

static int current(MDB_txn *txn, lb_table *t, const void *key, size_t klen,
                   first_ctx *f)
{
	MDB_val k = {klen, (void *)key}, v;
	int mrc = mdb_get(txn, t->dbi, &k, &v);
	if (mrc == MDB_NOTFOUND || mrc == MDB_BAD_DBI || mrc == EINVAL)
		return 0;
	if (mrc)
		return lb__mdb_fail(mrc, t->name);
	if ((mrc = lb__val_user(&v, t->name)) < 0)
		return mrc;
	if (!(f->val = malloc(v.mv_size ? v.mv_size : 1)))
		return lb__fail(LB_ENOMEM, "as of: out of memory");
	memcpy(f->val, v.mv_data, v.mv_size);
	f->vlen = v.mv_size;
	f->present = 1;
	return 0;
}

/* ---- the batch cache ------------------------------------------------------
 * Reading many keys as of one batch N (an export as of N, a service that
 * answers "as it was at N") keeps needing the same few batches after N,
 * and so do the history walks of a cascade (hist.c): decoding a segment
 * for every key would cost far more than the look-up. The cache keeps,
 * for the last few batches read, the first record of each (table, key)
 * they change (its prev and before-image), in an open-addressing table. A batch
 * is known by its chain hash (FORMAT.md §5), which covers its segments, so
 * an entry can never answer for other content (another database, a batch
 * rewritten); a pruned batch is refused from its header before the cache
 * is asked. Batches of more than CACHE_BATCH_MAX raw bytes are not kept,
 * and the least recently used batches go once the cache holds more than
 * CACHE_BYTES (a cascade over a hundred 1,000-record batches keeps them
 * all).
 */
#define CACHE_ENTRIES 256
#define CACHE_SEEN 32
#define CACHE_BATCH_MAX ((uint64_t)2 << 20)
#define CACHE_BYTES ((size_t)32 << 20)

typedef struct ckey {
	uint64_t h; /* 0: free slot */
	uint64_t prev;
	size_t off; /* table, key, before-image in the arena */
	uint32_t tlen, klen, blen;
	int has_before;
} ckey;

typedef struct centry {
	uint8_t hash[32];
	uint64_t id; /* a quick first check; the hash decides */
	int used;
	uint64_t lru;
	ckey *tab;
	size_t n, cap; /* cap: a power of two */
	lb_buf arena;
} centry;

/* The tables an undo batch removed (most remove none), by chain hash. */
typedef struct dent {
	uint8_t hash[32];
	char *names; /* NUL-terminated names, one after the other */
	size_t len;
} dent;

typedef struct lb_asof_cache {
	pthread_mutex_t mu;
	uint64_t tick;
	centry e[CACHE_ENTRIES];
	size_t bytes; /* held by the entries */
	/* batches read once, not indexed yet (a ring of chain hashes) */
	uint8_t seen[CACHE_SEEN][32];
	unsigned nseen;
	dent *drops;
	size_t ndrops, dcap;
} lb_asof_cache;

static uint64_t key_hash(const void *t, size_t tl, const void *k, size_t kl)
{
	uint64_t h = 1469598103934665603ull;
	const uint8_t *p = t;
	for (size_t i = 0; i < tl; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	p = k;
	for (size_t i = 0; i < kl; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h ? h : 1;
}

static size_t centry_bytes(const centry *e)
{
	return e->cap * sizeof *e->tab + e->arena.cap;
}

static void centry_clear(centry *e)
{
	free(e->tab);
	lb__buf_free(&e->arena);
	memset(e, 0, sizeof *e);
}

void lb__asof_cache_free(lb_db *db)
{
	lb_asof_cache *c = (lb_asof_cache *)atomic_load(&db->asof_cache);
	if (!c)
		return;
	for (int i = 0; i < CACHE_ENTRIES; i++)
		centry_clear(&c->e[i]);
	for (size_t i = 0; i < c->ndrops; i++)
		free(c->drops[i].names);
	free(c->drops);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static lb_asof_cache *cache_of(lb_db *db)
{
	uintptr_t cur = atomic_load(&db->asof_cache);
	if (cur)
		return (lb_asof_cache *)cur;
	lb_asof_cache *c = calloc(1, sizeof *c);
	if (!c || pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return NULL; /* no cache: every read decodes */
	}
	if (!atomic_compare_exchange_strong(&db->asof_cache, &cur,
	                                    (uintptr_t)c)) {
		pthread_mutex_destroy(&c->mu);
		free(c);
		return (lb_asof_cache *)cur;
	}
	return c;
}

static const ckey *centry_find(const centry *e, const void *t, size_t tl,
                               const void *k, size_t kl)
{
	uint64_t h = key_hash(t, tl, k, kl);
	for (size_t i = h & (e->cap - 1);; i = (i + 1) & (e->cap - 1)) {
		const ckey *x = &e->tab[i];
		if (!x->h)
			return NULL;
		const uint8_t *m = e->arena.data + x->off;
		if (x->h == h && x->tlen == tl && x->klen == kl &&
		    memcmp(m, t, tl) == 0 && memcmp(m + tl, k, kl) == 0)
			return x;
	}
}

/* Add a record's key, unless the batch changed it before (the first
 * before-image is the one wanted). */
static int centry_add(void *p, const lb_wal_rec *r)
{
	centry *e = p;
	if (r->op == LB_OP_TABLE)
		return 0;
	if (2 * (e->n + 1) > e->cap) {
		size_t ncap = e->cap ? 2 * e->cap : 256;
		ckey *nt = calloc(ncap, sizeof *nt);
		if (!nt)
			return lb__fail(LB_ENOMEM, "as of: out of memory");
		for (size_t i = 0; i < e->cap; i++) {
			if (!e->tab[i].h)
				continue;
			size_t j = e->tab[i].h & (ncap - 1);
			while (nt[j].h)
				j = (j + 1) & (ncap - 1);
			nt[j] = e->tab[i];
		}
		free(e->tab);
		e->tab = nt;
		e->cap = ncap;
	}
	uint64_t h = key_hash(r->table, r->tlen, r->key, r->klen);
	size_t i = h & (e->cap - 1);
	for (; e->tab[i].h; i = (i + 1) & (e->cap - 1)) {
		const ckey *x = &e->tab[i];
		const uint8_t *m = e->arena.data + x->off;
		if (x->h == h && x->tlen == r->tlen && x->klen == r->klen &&
		    memcmp(m, r->table, r->tlen) == 0 &&
		    memcmp(m + r->tlen, r->key, r->klen) == 0)
			return 0;
	}
	ckey *x = &e->tab[i];
	int rc;
	x->off = e->arena.len;
	x->tlen = r->tlen;
	x->klen = r->klen;
	x->has_before = r->has_before != 0;
	x->prev = r->prev;
	x->blen = r->has_before ? r->blen : 0;
	if ((rc = lb__buf_append(&e->arena, r->table, r->tlen)) < 0 ||
	    (rc = lb__buf_append(&e->arena, r->key, r->klen)) < 0 ||
	    (x->blen &&
	     (rc = lb__buf_append(&e->arena, r->before, x->blen)) < 0))
		return rc;
	x->h = h;
	e->n++;
	return 0;
}

/* The answer from a cached batch: 1 (f filled, or the key absent from it:
 * f->found 0), 0 when the batch is not cached, < 0 on failure. */
static int cache_answer(centry *e, first_ctx *f)
{
	const ckey *x = centry_find(e, f->table, f->tlen, f->key, f->klen);
	if (!x)
		return 1;
	f->found = 1;
	f->prev = x->prev;
	f->present = x->has_before;
	if (x->has_before && !f->noval) {
		f->val = malloc(x->blen ? x->blen : 1);
		if (!f->val)
			return lb__fail(LB_ENOMEM, "as of: out of memory");
		memcpy(f->val, e->arena.data + x->off + x->tlen + x->klen,
		       x->blen);
		f->vlen = x->blen;
		f->present = 1;
	}
	return 1;
}

/* Batch id's first change of f's key, through the cache. */
static int first_cached(lb_db *db, MDB_txn *txn, uint64_t id, lb_segr *r,
                        first_ctx *f)
{
	lb_wal_hdr h;
	int rc = lb__hdr_get(db, txn, id, &h);
	if (rc < 0)
		return rc;
	int pruned = h.pruned, big = h.raw_bytes > CACHE_BATCH_MAX;
	uint8_t hash[32];
	memcpy(hash, h.hash, 32);
	lb__hdr_free(&h);
	lb_asof_cache *c = pruned || big ? NULL : cache_of(db);
	if (!c)
		return walk_first(db, txn, id, r, f);
	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < CACHE_ENTRIES; i++) {
		centry *e = &c->e[i];
		if (e->used && e->id == id && memcmp(e->hash, hash, 32) == 0) {
			e->lru = ++c->tick;
			rc = cache_answer(e, f);
			pthread_mutex_unlock(&c->mu);
			return rc;
		}
	}
	/* A batch asked about for the first time is only read as far as the
	 * key's first record (a lone read as of a batch costs half a batch on
	 * average); the second time, it is indexed for the reads to come. */
	int again = f->index;
	for (int i = 0; i < CACHE_SEEN && !again; i++)
		again = memcmp(c->seen[i], hash, 32) == 0;
	if (!again)
		memcpy(c->seen[c->nseen++ % CACHE_SEEN], hash, 32);
	pthread_mutex_unlock(&c->mu);
	if (!again)
		return walk_first(db, txn, id, r, f);
	/* not cached: index the batch outside the lock, then publish it */
	centry ne;
	memset(&ne, 0, sizeof ne);
	lb__buf_init(&ne.arena);
	rc = lb__walk_batch(db, txn, id, r, centry_add, &ne);
	if (rc < 0) {
		centry_clear(&ne);
		if (rc == LB_EPRUNED)
			return walk_first(db, txn, id, r, f);
		return rc;
	}
	if (!ne.cap) { /* a batch of table records only */
		centry_clear(&ne);
		return 0;
	}
	memcpy(ne.hash, hash, 32);
	ne.id = id;
	ne.used = 1;
	pthread_mutex_lock(&c->mu);
	int slot = -1, hit = 0;
	for (int i = 0; i < CACHE_ENTRIES && !hit; i++) {
		centry *e = &c->e[i];
		if (e->used && memcmp(e->hash, hash, 32) == 0) {
			slot = i; /* another thread cached it meanwhile */
			hit = 1;
		} else if (slot < 0 || !e->used ||
		           (c->e[slot].used && e->lru < c->e[slot].lru)) {
			if (slot < 0 || c->e[slot].used)
				slot = i; /* a free slot, else the oldest */
		}
	}
	if (hit) {
		centry_clear(&ne);
	} else {
		c->bytes -= centry_bytes(&c->e[slot]);
		centry_clear(&c->e[slot]);
		c->e[slot] = ne;
		c->bytes += centry_bytes(&ne);
	}
	c->e[slot].lru = ++c->tick;
	while (c->bytes > CACHE_BYTES) { /* the oldest others go */
		int old = -1;
		for (int i = 0; i < CACHE_ENTRIES; i++)
			if (i != slot && c->e[i].used &&
			    (old < 0 || c->e[i].lru < c->e[old].lru))
				old = i;
		if (old < 0)
			break;
		c->bytes -= centry_bytes(&c->e[old]);
		centry_clear(&c->e[old]);
	}
	rc = cache_answer(&c->e[slot], f);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* ---- tables removed after a batch -----------------------------------------
 * Only undo batches remove tables (FORMAT.md §4.2), and `_victims` lists
 * every undo batch. Which tables one removed is read from its log once per
 * handle and kept by its chain hash. */

typedef struct drop_ctx {
	lb_buf names;
} drop_ctx;

static int drop_cb(void *p, const lb_wal_rec *r)
{
	drop_ctx *d = p;
	if (r->op != LB_OP_TABLE || !r->has_before || r->has_after)
		return 0;
	int rc = lb__buf_append(&d->names, r->table, r->tlen);
	return rc < 0 ? rc : lb__buf_append(&d->names, "", 1);
}

static int names_have(const char *names, size_t len, const char *name)
{
	for (size_t i = 0; i < len; i += strlen(names + i) + 1)
		if (strcmp(names + i, name) == 0)
			return 1;
	return 0;
}

/* Did undo batch id remove table `name`? 1, 0 or < 0. A pruned undo batch
 * may have: 1 (the caller then meets the pruned log). */
static int batch_drops(lb_db *db, MDB_txn *txn, uint64_t id, lb_segr *r,
                       const char *name)
{
	lb_wal_hdr h;
	int rc = lb__hdr_get(db, txn, id, &h);
	if (rc < 0)
		return rc;
	int pruned = h.pruned;
	uint8_t hash[32];
	memcpy(hash, h.hash, 32);
	lb__hdr_free(&h);
	if (pruned)
		return 1;
	lb_asof_cache *c = cache_of(db);
	if (c) {
		pthread_mutex_lock(&c->mu);
		for (size_t i = 0; i < c->ndrops; i++)
			if (memcmp(c->drops[i].hash, hash, 32) == 0) {
				rc = names_have(c->drops[i].names,
				                c->drops[i].len, name);
				pthread_mutex_unlock(&c->mu);
				return rc;
			}
		pthread_mutex_unlock(&c->mu);
	}
	drop_ctx d;
	lb__buf_init(&d.names);
	if ((rc = lb__walk_batch(db, txn, id, r, drop_cb, &d)) < 0) {
		lb__buf_free(&d.names);
		return rc == LB_EPRUNED ? 1 : rc;
	}
	rc = names_have((const char *)d.names.data, d.names.len, name);
	if (c) {
		pthread_mutex_lock(&c->mu);
		if (lb__grow(&c->drops, &c->dcap, c->ndrops + 1,
		             sizeof *c->drops, 16) == 0) {
			dent *e = &c->drops[c->ndrops++];
			memcpy(e->hash, hash, 32);
			e->names = (char *)d.names.data;
			e->len = d.names.len;
			d.names.data = NULL;
		}
		pthread_mutex_unlock(&c->mu);
	}
	lb__buf_free(&d.names);
	return rc;
}

/* The first undo batch after `after` that removed table `name`: 1 and
 * *at, or 0 when none did; < 0 on failure. */
static int dropped_after(lb_db *db, MDB_txn *txn, uint64_t after,
                         const char *name, lb_segr *r, uint64_t *at)
{
	MDB_cursor *c;
	uint8_t kb[8];
	lb__be64(kb, after + 1);
	MDB_val k = {8, kb}, v;
	int rc = 0, mrc = mdb_cursor_open(txn, db->victims, &c);
	if (mrc)
		return lb__mdb_fail(mrc, "_victims");
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8) {
			rc = lb__fail(LB_ECORRUPT, "_victims: bad key");
			break;
		}
		uint64_t id = lb__get_be64(k.mv_data);
		if ((rc = batch_drops(db, txn, id, r, name)) != 0) {
			if (rc > 0)
				*at = id;
			break;
		}
	}
	mdb_cursor_close(c);
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
		rc = lb__mdb_fail(mrc, "_victims");
	return rc;
}

int lb__batch_first(lb_db *db, MDB_txn *txn, uint64_t id, lb_segr *r,
                    const char *table, const void *key, size_t klen,
                    uint64_t *prev)
{
	first_ctx f = {.table = table,
	               .tlen = strlen(table),
	               .key = key,
	               .klen = klen,
	               .noval = 1,
	               .index = 1};
	int rc = first_cached(db, txn, id, r, &f);
	if (rc < 0)
		return rc;
	*prev = f.found ? f.prev : 0;
	return f.found != 0;
}

/* The fast way: the key's history in the current table (FORMAT.md §2.4),
 * from its last change down to its first change after batch. */
static int asof_hist(lb_db *db, MDB_txn *txn, lb_table *t, uint64_t batch,
                     lb_segr *r, first_ctx *f)
{
	uint64_t cur;
	int rc = lb__key_head(db, txn, t, f->key, f->klen, &cur);
	if (rc < 0)
		return rc;
	if (cur <= batch)
		return current(txn, t, f->key, f->klen, f);
	while (cur > batch) {
		first_ctx g = *f;
		g.found = g.present = 0;
		g.val = NULL;
		g.vlen = 0;
		g.prev = 0;
		if ((rc = first_cached(db, txn, cur, r, &g)) < 0)
			return rc;
		if (!g.found) {
			free(g.val);
			return lb__fail(
			        LB_ECORRUPT,
			        "the history of a key of %s names batch "
			        "%llu, whose log does not change it",
			        t->name, (unsigned long long)cur);
		}
		if (g.prev >= cur) {
			free(g.val);
			return lb__fail(
			        LB_ECORRUPT,
			        "batch %llu: a record of a key of %s "
			        "names batch %llu as its previous change",
			        (unsigned long long)cur, t->name,
			        (unsigned long long)g.prev);
		}
		free(f->val);
		*f = g;
		cur = g.prev;
	}
	return 0;
}

/* The slow way: the log after batch up to upto, a batch that removed the
 * table (so the key's record, or the removal, is met on the way), by
 * table name. */
static int asof_scan(lb_db *db, MDB_txn *txn, uint64_t batch, uint64_t upto,
                     lb_segr *r, first_ctx *f)
{
	f->tables = 1;
	for (uint64_t id = batch + 1; id <= upto; id++) {
		int rc = walk_first(db, txn, id, r, f);
		if (rc < 0 || f->found)
			return rc;
	}
	return lb__fail(LB_ECORRUPT,
	                "batch %llu removes table %s, but its log does not",
	                (unsigned long long)upto, f->table);
}

int lb_get_asof(lb_db *db, uint64_t batch, const char *table, const void *key,
                size_t klen, void **val, size_t *vlen)
{
	MDB_txn *txn;
	lb_segr r;
	uint64_t last;
	int rc;
	if (val)
		*val = NULL;
	if (vlen)
		*vlen = 0;
	if (!db || !val || !vlen)
		return lb__fail(LB_EINVAL, "lb_get_asof: NULL argument");
	if ((rc = lb__key_args(table, key, klen)) < 0)
		return rc;
	if ((rc = lb__read_txn(db, &txn)) < 0)
		return rc;
	first_ctx f = {.table = table,
	               .tlen = strlen(table),
	               .key = key,
	               .klen = klen};
	lb__segr_init(&r);
	if ((rc = lb__last_in(db, txn, &last)) < 0)
		goto out;
	if (batch > last) {
		rc = lb__fail(LB_ENOTFOUND, "no batch %llu: the last is %llu",
		              (unsigned long long)batch,
		              (unsigned long long)last);
		goto out;
	}
	if (batch == 0)
		goto out; /* the empty database */
	lb_table *t = lb__table_find(db, table);
	if (t && (rc = asof_hist(db, txn, t, batch, &r, &f)) < 0)
		goto out;
	if (!f.present) {
		/* the current table may be a new one of that name: the
		 * first removal of the name after batch bounds the scan */
		uint64_t upto = 0;
		int u = dropped_after(db, txn, batch, table, &r, &upto);
		if (u < 0) {
			rc = u;
			goto out;
		}
		if (u) {
			free(f.val);
			f = (first_ctx){table, strlen(table), key, klen, 0, 0,
			                0,     NULL,          0,   0,    0};
			rc = asof_scan(db, txn, batch, upto, &r, &f);
		} else if (!t) {
			rc = lb__no_table(db, table);
		}
	}
out:
	lb__segr_free(&r);
	lb__read_done(db, txn);
	if (rc == 0 && !f.present) {
		char kt[96];
		rc = lb__fail(LB_ENOTFOUND, "%s: no key '%s' as of batch %llu",
		              table, lb__key_text(key, klen, kt, sizeof kt),
		              (unsigned long long)batch);
	}
	if (rc < 0) {
		free(f.val);
		return rc;
	}
	*val = f.val;
	*vlen = f.vlen;
	return 0;
}

/* ---- lb_diff ------------------------------------------------------------- */

/* One record of the batches in between; images are offsets into the
 * arena (it moves as it grows). */
typedef struct {
	size_t t, k, b, a; /* offsets of table name, key, before, after */
	uint32_t tlen, klen, blen, alen;
	uint8_t has_b, has_a, is_table;
	uint64_t seq;
} drec;

typedef struct {
	lb_buf arena;
	drec *v;
	size_t n, cap;
} diff_ctx;

static int arena_put(lb_buf *a, const void *p, size_t n, size_t *off)
{
	*off = a->len;
	return n ? lb__buf_append(a, p, n) : 0;
}

static int diff_cb(void *p, const lb_wal_rec *r)
{
	diff_ctx *d = p;
	int rc = lb__grow(&d->v, &d->cap, d->n + 1, sizeof *d->v, 1024);
	if (rc < 0)
		return rc;
	drec *e = &d->v[d->n];
	memset(e, 0, sizeof *e);
	e->tlen = r->tlen;
	e->is_table = r->op == LB_OP_TABLE;
	e->klen = e->is_table ? 0 : r->klen;
	e->has_b = r->has_before != 0;
	e->has_a = r->has_after != 0;
	e->blen = e->has_b ? r->blen : 0;
	e->alen = e->has_a ? r->alen : 0;
	e->seq = d->n;
	if ((rc = arena_put(&d->arena, r->table, r->tlen, &e->t)) < 0 ||
	    (rc = arena_put(&d->arena, r->key, e->klen, &e->k)) < 0 ||
	    (rc = arena_put(&d->arena, r->before, e->blen, &e->b)) < 0 ||
	    (rc = arena_put(&d->arena, r->after, e->alen, &e->a)) < 0)
		return rc;
	d->n++;
	return 0;
}

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	if (c)
		return c;
	return al < bl ? -1 : al > bl;
}

/* qsort has no context argument: the arena of the sort in progress
 * (one per thread). */
static _Thread_local const uint8_t *sort_base;

static int drec_cmp(const void *x, const void *y)
{
	const drec *a = x, *b = y;
	const uint8_t *m = sort_base;
	int c = bytes_cmp(m + a->t, a->tlen, m + b->t, b->tlen);
	if (c)
		return c;
	if (a->is_table != b->is_table)
		return a->is_table ? -1 : 1; /* the table before its keys */
	if ((c = bytes_cmp(m + a->k, a->klen, m + b->k, b->klen)) != 0)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int same_group(const uint8_t *m, const drec *a, const drec *b)
{
	return a->is_table == b->is_table &&
	       bytes_cmp(m + a->t, a->tlen, m + b->t, b->tlen) == 0 &&
	       bytes_cmp(m + a->k, a->klen, m + b->k, b->klen) == 0;
}

int lb_diff(lb_db *db, uint64_t from, uint64_t to, lb_change_fn fn, void *ctx)
{
	MDB_txn *txn;
	lb_segr r;
	uint64_t last;
	if (!db || !fn)
		return lb__fail(LB_EINVAL, "lb_diff: NULL argument");
	int rc = lb__read_txn(db, &txn);
	if (rc < 0)
		return rc;
	diff_ctx d = {{NULL, 0, 0}, NULL, 0, 0};
	lb__buf_init(&d.arena);
	lb__segr_init(&r);
	uint64_t lo = from < to ? from : to, hi = from < to ? to : from;
	if ((rc = lb__last_in(db, txn, &last)) == 0 && hi > last)
		rc = lb__fail(LB_ENOTFOUND, "no batch %llu: the last is %llu",
		              (unsigned long long)hi, (unsigned long long)last);
	for (uint64_t id = lo + 1; rc == 0 && id <= hi; id++) {
		rc = lb__walk_batch(db, txn, id, &r, diff_cb, &d);
		if (rc == LB_EPRUNED)
			rc = lb__fail(LB_EPRUNED,
			              "batch %llu, between %llu and %llu, was "
			              "pruned",
			              (unsigned long long)id,
			              (unsigned long long)lo,
			              (unsigned long long)hi);
	}
	lb__segr_free(&r);
	lb__read_done(db, txn);
	if (rc == 0 && d.n > 1) {
		sort_base = d.arena.data;
		qsort(d.v, d.n, sizeof *d.v, drec_cmp);
	}
	const uint8_t *m = d.arena.data;
	char tname[LB_TABLE_NAME_MAX + 1];
	for (size_t i = 0; rc == 0 && i < d.n;) {
		size_t j = i + 1;
		while (j < d.n && same_group(m, &d.v[i], &d.v[j]))
			j++;
		/* the value right after lo is the first record's before-image,
		 * the one right after hi the last record's after-image */
		const drec *first = &d.v[i], *lastr = &d.v[j - 1];
		const uint8_t *bv = m + first->b, *av = m + lastr->a;
		size_t bl = first->blen, al = lastr->alen;
		int hb = first->has_b, ha = lastr->has_a;
		if (from > to) {
			const uint8_t *tv = bv;
			size_t tl = bl;
			int th = hb;
			bv = av, bl = al, hb = ha;
			av = tv, al = tl, ha = th;
		}
		i = j;
		if (hb == ha && (!hb || bytes_cmp(bv, bl, av, al) == 0))
			continue;
		size_t tl = first->tlen < LB_TABLE_NAME_MAX ? first->tlen
		                                            : LB_TABLE_NAME_MAX;
		memcpy(tname, m + first->t, tl);
		tname[tl] = 0;
		lb_change c = {first->is_table ? LB_OP_TABLE
		               : ha            ? LB_OP_PUT
		                               : LB_OP_DELETE,
		               tname,
		               first->is_table ? NULL : m + first->k,
		               first->klen,
		               hb ? bv : NULL,
		               bl,
		               hb,
		               ha ? av : NULL,
		               al,
		               ha};
		rc = fn(ctx, &c);
	}
	free(d.v);
	lb__buf_free(&d.arena);
	return rc;
}
