/* SPDX-License-Identifier: MIT */
/*
 * Allocation failures: every allocation a workload makes, failed in turn.
 *
 * This program is linked with a copy of the library whose calls to the
 * allocating functions (malloc, calloc, realloc, strdup, strndup, asprintf,
 * vasprintf, realpath, opendir, tmpfile, libdeflate's and OpenSSL's
 * allocators, pthread_create) go to the hooks of tests/shim/alloc.c, which
 * number the calls the test's thread makes and fail the one asked for.
 *
 * Each workload is a call (or a short sequence of calls) of the API from a
 * database state built once (the template): create, open, table create
 * with a reference, table alter, commit with validation (a schema with a
 * reference; a batch of several segments, compressed by the second
 * thread), a refused commit, a commit that grows the map, rollback strict,
 * cascade, refused (a referenced table) and dry run, rollback_to (also
 * across table creations), checkpoint, prune, replay (from empty into an
 * empty directory, and from a checkpoint), verify with replay, and the
 * reads. A failed create must leave no database that opens. Each is run
 * once on a copy of the template to count its allocation calls N, then
 * for k = 1..N again on a fresh copy with call k failing (mode "once"),
 * and with every call from k on failing (mode "from k on": memory that
 * stays exhausted). Every run must:
 *  - reach call k, and return LB_ENOMEM with a detail, or else succeed
 *    with the outcome of the run without failure (where a failed
 *    allocation is optional: see absorbed() below, and
 *    docs/RELIABILITY.md);
 *  - after a failure, leave the database as it was before the call: every
 *    key and value of every LMDB sub-database (tables, log, indexes,
 *    checkpoints, catalog) hashes the same; no checkpoint or replay
 *    destination, no temporary directory is left; the same handle verifies
 *    with LB_VERIFY_REPLAY, then the same call, without failure, gives the
 *    outcome of the run without failure;
 *  - leak nothing: once the test closed its handles and freed its
 *    results, the library holds no object it allocated (the hooks track
 *    them; in build-asan/ LeakSanitizer checks the rest at exit).
 *
 * `make test` runs a seeded sample of k for each workload and mode
 * (LB_ALLOC_SAMPLE of them, default 20; every k when N is no larger);
 * LB_ALLOC_FULL=1 runs every k of every workload in both modes.
 * LB_ALLOC_ONLY=name runs one workload; LB_ALLOC_SITES=1 prints every call
 * site reached (addr2line -fe BINARY OFFSET names it).
 */
#define _GNU_SOURCE
#include "_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/internal.h" /* db->zw_failed, db->ra_failed: threads */
#include "shim/alloc.h"

/* ---- values: msgpack maps of the schemas below --------------------------
 */

/* A fixstr (up to 31 bytes) or str8 string. */
static size_t mp_str(unsigned char *p, const char *s)
{
	size_t n = strlen(s);
	if (n < 32) {
		p[0] = (unsigned char)(0xa0 | n);
		memcpy(p + 1, s, n);
		return 1 + n;
	}
	p[0] = 0xd9;
	p[1] = (unsigned char)n;
	memcpy(p + 2, s, n);
	return 2 + n;
}

/* {"name": name, "owner": owner, "n": n} (owner NULL: left out). */
static size_t item_val(unsigned char *p, const char *name, const char *owner,
                       unsigned n)
{
	size_t len = 0;
	p[len++] = owner ? 0x83 : 0x82;
	len += mp_str(p + len, "name");
	len += mp_str(p + len, name);
	if (owner) {
		len += mp_str(p + len, "owner");
		len += mp_str(p + len, owner);
	}
	len += mp_str(p + len, "n");
	p[len++] = 0xcd; /* uint16 */
	p[len++] = (unsigned char)(n >> 8);
	p[len++] = (unsigned char)n;
	return len;
}

/* {"city": city} */
static size_t owner_val(unsigned char *p, const char *city)
{
	size_t len = 0;
	p[len++] = 0x81;
	len += mp_str(p + len, "city");
	len += mp_str(p + len, city);
	return len;
}

static const lb_field owner_fields[] = {
        {"city", LB_STR, LB_REQUIRED, 64, NULL},
};
static const lb_schema owner_schema = {owner_fields, 1, 0};
static const lb_field item_fields[] = {
        {"name", LB_STR, LB_REQUIRED, 200, NULL},
        {"owner", LB_STR, 0, 0, "owners"},
        {"n", LB_INT, 0, 0, NULL},
};
static const lb_schema item_schema = {item_fields, 3, 0};
/* items with a tighter name and a new optional field */
static const lb_field item_fields2[] = {
        {"name", LB_STR, LB_REQUIRED, 150, NULL},
        {"owner", LB_STR, 0, 0, "owners"},
        {"n", LB_INT, 0, 0, NULL},
        {"tag", LB_STR, 0, 16, NULL},
};
static const lb_schema item_schema2 = {item_fields2, 4, 0};
static const lb_field note_fields[] = {
        {"item", LB_STR, LB_REQUIRED, 0, "items"},
        {"text", LB_STR, 0, 0, NULL},
};
static const lb_schema note_schema = {note_fields, 2, 1};

/* ---- the state a workload runs in --------------------------------------- */

struct ctx {
	char *dir;  /* the database under test */
	char *dest; /* a checkpoint's or replay's destination (missing) */
	char *ck;   /* the template's checkpoint, at batch b */
	lb_options o;
	lb_db *db;
	uint64_t a, b, c; /* batches of the template (see base()) */
	uint64_t out;     /* a hash of what the calls returned */
	uint64_t iss;     /* of the issues they kept, and their number */
	size_t nissues;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

static void out_u64(struct ctx *c, uint64_t v)
{
	c->out = fnv(c->out, &v, sizeof v);
}

static void out_res(struct ctx *c, const lb_result *r)
{
	out_u64(c, r->batch_id);
	out_u64(c, r->records);
	out_u64(c, r->nissues_total);
	for (size_t i = 0; i < r->nissues; i++) {
		uint64_t kind = (uint64_t)r->issues[i].kind;
		c->iss = fnv(c->iss, &kind, sizeof kind);
		c->iss = fnv(c->iss, r->issues[i].key, r->issues[i].klen);
		c->iss = fnv(c->iss, &r->issues[i].batch, 8);
	}
	c->nissues += r->nissues;
	for (size_t i = 0; i < r->nundone; i++)
		out_u64(c, r->undone[i]);
}

/* A batch of items i<from>..i<from+n-1> owned by o<owner>; name_len sets
 * the size of each value. rc of the first failing call. */
static int put_items(lb_batch *b, unsigned from, unsigned n, unsigned gen,
                     size_t name_len, int insert)
{
	unsigned char v[512];
	char k[32], name[256], owner[32];
	int rc = 0;
	for (unsigned i = from; i < from + n && rc == 0; i++) {
		size_t kl = (size_t)snprintf(k, sizeof k, "i%04u", i);
		memset(name, 'a' + (i + gen) % 26, name_len);
		name[name_len] = 0;
		snprintf(owner, sizeof owner, "o%u", (i + gen) % 10);
		size_t vl = item_val(v, name, owner, i * 7 + gen);
		rc = insert ? lb_insert(b, "items", k, kl, v, vl)
		            : lb_put(b, "items", k, kl, v, vl);
	}
	return rc;
}

/* Commit a batch built by the test, asserting success (setup only). */
static uint64_t commit_items(lb_db *db, const char *label, unsigned from,
                             unsigned n, unsigned gen)
{
	lb_batch *b;
	te_rc(0, lb_batch_begin(db, label, &b));
	te_rc(0, put_items(b, from, n, gen, 40, 0));
	te_rc(0, lb_batch_commit(b, NULL));
	return te_last(db);
}

/* The template of most workloads: tables owners and items (items.owner
 * references owners), batches 1 and 2; batch a adds 10 owners and 40
 * items; an opaque table blobs gets a value of 6000 bytes (on overflow
 * pages); b changes 20 items and adds 10, c changes 5 of b's items (so
 * rolling b back strictly conflicts, and a cascade undoes c first); a
 * checkpoint at b is registered (c->ck). */
static void base(struct ctx *c)
{
	unsigned char v[64];
	lb_batch *b;
	te_rc(0, lb_table_create(c->db, "owners", &owner_schema));
	te_rc(0, lb_table_create(c->db, "items", &item_schema));
	te_rc(0, lb_batch_begin(c->db, "a", &b));
	for (unsigned i = 0; i < 10; i++) {
		char k[16], city[32];
		snprintf(k, sizeof k, "o%u", i);
		snprintf(city, sizeof city, "city %u", i);
		size_t vl = owner_val(v, city);
		te_rc(0, lb_put(b, "owners", k, strlen(k), v, vl));
	}
	te_rc(0, put_items(b, 0, 40, 0, 40, 0));
	te_rc(0, lb_batch_commit(b, NULL));
	c->a = te_last(c->db);
	/* a value on overflow pages, in an opaque table */
	char blob[6000];
	memset(blob, 'x', sizeof blob);
	te_rc(0, lb_table_create(c->db, "blobs", NULL));
	te_put1n(c->db, "blobs", "big", 3, blob, sizeof blob);
	c->b = commit_items(c->db, "b", 20, 30, 1);
	te_rc(0, lb_checkpoint(c->db, c->ck, NULL));
	c->c = commit_items(c->db, "c", 20, 5, 2);
}

/* ---- the workloads ------------------------------------------------------- */

static int w_create(struct ctx *c)
{
	return lb_open(c->dir, &c->o, &c->db);
}

static int w_open(struct ctx *c)
{
	return lb_open(c->dir, &c->o, &c->db);
}

static int w_table_create(struct ctx *c)
{
	return lb_table_create(c->db, "notes", &note_schema);
}

static int w_table_alter(struct ctx *c)
{
	lb_result res;
	memset(&res, 0, sizeof res);
	int rc = lb_table_alter(c->db, "items", &item_schema2, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

/* One batch of every kind of op, 60 values of about 150 bytes: three
 * segments of 4 KiB, handed to the compression thread. */
static int w_commit(struct ctx *c)
{
	unsigned char v[512];
	lb_batch *b = NULL;
	lb_result res;
	const void *bv;
	size_t bl;
	int rc;
	memset(&res, 0, sizeof res);
	if ((rc = lb_batch_begin(c->db, "commit", &b)) < 0)
		return rc;
	size_t vl = owner_val(v, "new city");
	if ((rc = lb_insert(b, "owners", "o10", 3, v, vl)) < 0 ||
	    (rc = put_items(b, 100, 60, 3, 150, 1)) < 0 ||
	    (rc = put_items(b, 0, 5, 4, 30, 0)) < 0 ||
	    (rc = lb_update(b, "owners", "o1", 2, v, vl)) < 0 ||
	    (rc = lb_delete(b, "items", "i0039", 5)) < 0 ||
	    (rc = lb_batch_get(b, "items", "i0100", 5, &bv, &bl)) < 0) {
		lb_batch_abort(b);
		return rc;
	}
	out_u64(c, bl);
	rc = lb_batch_commit(b, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

/* A batch with a duplicate insert, a reference to no owner and a delete
 * of a referenced owner: LB_EVALIDATION with three issues. */
static int w_commit_refused(struct ctx *c)
{
	unsigned char v[512];
	lb_batch *b = NULL;
	lb_result res;
	int rc, rc2;
	memset(&res, 0, sizeof res);
	if ((rc = lb_batch_begin(c->db, "refused", &b)) < 0)
		return rc;
	size_t vl = item_val(v, "dup", "o1", 1);
	rc = lb_insert(b, "items", "i0001", 5, v, vl);
	if (rc != LB_EVALIDATION)
		goto abort;
	vl = item_val(v, "dangling", "nobody", 2);
	if ((rc = lb_put(b, "items", "i0500", 5, v, vl)) < 0 ||
	    (rc = lb_delete(b, "owners", "o3", 2)) < 0)
		goto abort;
	rc2 = lb_batch_commit(b, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc2;
abort:
	lb_batch_abort(b);
	return rc < 0 ? rc : LB_EINVAL;
}

/* 1.5 MB in one batch on a map opened at 64 KiB: the map grows in the
 * middle of the batch, which is redone from its journal. */
static int w_commit_grow(struct ctx *c)
{
	lb_batch *b = NULL;
	lb_result res;
	int rc;
	memset(&res, 0, sizeof res);
	if ((rc = lb_batch_begin(c->db, "grow", &b)) < 0)
		return rc;
	if ((rc = put_items(b, 1000, 8000, 5, 180, 0)) < 0) {
		lb_batch_abort(b);
		return rc;
	}
	rc = lb_batch_commit(b, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

static int w_rollback(struct ctx *c)
{
	lb_result res;
	memset(&res, 0, sizeof res);
	int rc = lb_rollback(c->db, c->c, 0, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

static int w_rollback_cascade(struct ctx *c)
{
	lb_result res;
	memset(&res, 0, sizeof res);
	int rc = lb_rollback(c->db, c->b, LB_CASCADE, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

/* A strict rollback that meets a later change: LB_ECONFLICT, and a
 * cascade's dry run. */
static int w_rollback_dry(struct ctx *c)
{
	lb_result res;
	memset(&res, 0, sizeof res);
	int rc = lb_rollback(c->db, c->b, 0, &res);
	out_res(c, &res);
	lb_result_free(&res);
	if (rc != LB_ECONFLICT)
		return rc < 0 ? rc : LB_EINVAL;
	rc = lb_rollback(c->db, c->b, LB_CASCADE | LB_DRYRUN, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

static int w_rollback_to(struct ctx *c)
{
	lb_result res;
	memset(&res, 0, sizeof res);
	int rc = lb_rollback_to(c->db, c->a, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

/* Back to batch 1: table items (referencing owners) and blobs are
 * removed. */
static int w_rollback_to_tables(struct ctx *c)
{
	lb_result res;
	memset(&res, 0, sizeof res);
	int rc = lb_rollback_to(c->db, 1, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

/* Roll back the creation of owners, which items references: refused
 * (LB_EINVAL), after the cascade's plan. */
static int w_rollback_cascade_table(struct ctx *c)
{
	lb_result res;
	memset(&res, 0, sizeof res);
	int rc = lb_rollback(c->db, 1, LB_CASCADE, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

static int w_checkpoint(struct ctx *c)
{
	uint64_t at = 0;
	int rc = lb_checkpoint(c->db, c->dest, &at);
	out_u64(c, at);
	return rc;
}

static int w_prune(struct ctx *c)
{
	return lb_prune(c->db, c->b);
}

static int w_replay(struct ctx *c)
{
	lb_result res;
	memset(&res, 0, sizeof res);
	int rc = lb_replay(c->db, c->dest, 0, NULL, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

static int w_replay_ck(struct ctx *c)
{
	lb_result res;
	memset(&res, 0, sizeof res);
	int rc = lb_replay(c->db, c->dest, 0, c->ck, &res);
	out_res(c, &res);
	lb_result_free(&res);
	return rc;
}

static int w_verify(struct ctx *c)
{
	lb_verify_report rep;
	int rc = lb_verify(c->db, LB_VERIFY_REPLAY, &rep);
	out_u64(c, rep.batches);
	out_u64(c, rep.segments);
	out_u64(c, rep.records);
	out_u64(c, (uint64_t)rep.chain_ok);
	out_u64(c, (uint64_t)rep.replay_ok);
	return rc;
}

static int table_cb(void *ctx, const char *name, const lb_schema *s,
                    uint64_t records)
{
	struct ctx *c = ctx;
	c->out = fnv(c->out, name, strlen(name));
	out_u64(c, s ? s->nfields : 0);
	out_u64(c, records);
	return 0;
}

static int change_cb(void *ctx, const lb_change *ch)
{
	struct ctx *c = ctx;
	out_u64(c, (uint64_t)ch->op);
	c->out = fnv(c->out, ch->key, ch->klen);
	if (ch->has_after)
		c->out = fnv(c->out, ch->after, ch->alen);
	return 0;
}

static int history_cb(void *ctx, uint64_t batch, const lb_change *ch)
{
	out_u64(ctx, batch);
	return change_cb(ctx, ch);
}

static int ckpt_cb(void *ctx, uint64_t batch, const char *path, int64_t t)
{
	(void)path;
	(void)t;
	out_u64(ctx, batch);
	return 0;
}

/* Every kind of read. */
static int w_reads(struct ctx *c)
{
	void *v = NULL;
	size_t vl = 0;
	lb_snapshot *s = NULL;
	lb_cursor *cur = NULL;
	const void *k, *sv;
	size_t kl;
	lb_batch_info info;
	uint64_t last;
	int rc;
	if ((rc = lb_get(c->db, "items", "i0021", 5, &v, &vl)) < 0)
		return rc;
	c->out = fnv(c->out, v, vl);
	lbt_free(v);
	if ((rc = lb_snapshot_open(c->db, &s)) < 0)
		return rc;
	if ((rc = lb_snapshot_get(s, "owners", "o2", 2, &sv, &vl)) < 0 ||
	    (rc = lb_cursor_open(s, "items", &cur)) < 0) {
		lb_snapshot_close(s);
		return rc;
	}
	c->out = fnv(c->out, sv, vl);
	if ((rc = lb_cursor_seek(cur, "i0010", 5)) == 0)
		while ((rc = lb_cursor_next(cur, &k, &kl, &sv, &vl)) == 0)
			c->out = fnv(c->out, k, kl);
	lb_cursor_close(cur);
	lb_snapshot_close(s);
	if (rc != LB_ENOTFOUND)
		return rc < 0 ? rc : LB_EINVAL;
	if ((rc = lb_tables(c->db, table_cb, c)) < 0 ||
	    (rc = lb_changes(c->db, c->b, change_cb, c)) < 0 ||
	    (rc = lb_history(c->db, "items", "i0022", 5, history_cb, c)) < 0 ||
	    (rc = lb_batch_info_get(c->db, c->c, &info)) < 0 ||
	    (rc = lb_checkpoints(c->db, ckpt_cb, c)) < 0 ||
	    (rc = lb_last_batch(c->db, &last)) < 0)
		return rc;
	out_u64(c, info.records);
	out_u64(c, last);
	return 0;
}

enum {
	W_NOTPL = 1,   /* no template: the call creates the database */
	W_OPENS = 2,   /* the call opens c->db itself */
	W_DEST = 4,    /* the call builds c->dest */
	W_TINYMAP = 8, /* opened with a 64 KiB map */
	W_DESTDIR = 16 /* c->dest is an empty directory before the call */
};

struct workload {
	const char *name;
	int (*run)(struct ctx *);
	unsigned flags;
	int want; /* what the call returns without failure */
};

static const struct workload workloads[] = {
        {"create", w_create, W_NOTPL | W_OPENS, 0},
        {"open", w_open, W_OPENS, 0},
        {"table_create", w_table_create, 0, 0},
        {"table_alter", w_table_alter, 0, 0},
        {"commit", w_commit, 0, 0},
        {"commit_refused", w_commit_refused, 0, LB_EVALIDATION},
        {"commit_grow", w_commit_grow, W_TINYMAP, 0},
        {"rollback", w_rollback, 0, 0},
        {"rollback_cascade", w_rollback_cascade, 0, 0},
        {"rollback_dryrun", w_rollback_dry, 0, 0},
        {"rollback_to", w_rollback_to, 0, 0},
        {"rollback_to_tables", w_rollback_to_tables, 0, 0},
        {"rollback_refused", w_rollback_cascade_table, 0, LB_EINVAL},
        {"checkpoint", w_checkpoint, W_DEST, 0},
        {"prune", w_prune, 0, 0},
        {"replay", w_replay, W_DEST | W_DESTDIR, 0},
        {"replay_checkpoint", w_replay_ck, W_DEST, 0},
        {"verify", w_verify, 0, 0},
        {"reads", w_reads, 0, 0},
};
#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

/* ---- checking ------------------------------------------------------------ */

/* A hash of every key and value of every LMDB sub-database of dir (and of
 * the main database's plain entries), read without the library: what a
 * failed call must leave as it was. 0 if dir holds no database. */
static uint64_t raw_digest(const char *dir)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_cursor *mc;
	MDB_dbi main_dbi;
	MDB_val k, v;
	uint64_t h = 0xcbf29ce484222325ull;
	char *file = th_path(dir, "data.mdb");
	struct stat st;
	int ok = stat(file, &st) == 0 && st.st_size > 0;
	free(file);
	if (!ok)
		return 0;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, LB__MAXDBS), 0);
	int mrc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0644);
	if (mrc) {
		mdb_env_close(env);
		return 1; /* not an LMDB environment */
	}
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &main_dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, main_dbi, &mc), 0);
	while ((mrc = mdb_cursor_get(mc, &k, &v, MDB_NEXT)) == 0) {
		char name[600];
		MDB_dbi dbi;
		MDB_cursor *sc;
		MDB_val sk, sv;
		h = fnv(h, &k.mv_size, sizeof k.mv_size);
		h = fnv(h, k.mv_data, k.mv_size);
		if (k.mv_size >= sizeof name) {
			h = fnv(h, v.mv_data, v.mv_size);
			continue;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = 0;
		if (mdb_dbi_open(txn, name, 0, &dbi) != 0) {
			h = fnv(h, v.mv_data, v.mv_size); /* a plain entry */
			continue;
		}
		assert_int_equal(mdb_cursor_open(txn, dbi, &sc), 0);
		while (mdb_cursor_get(sc, &sk, &sv, MDB_NEXT) == 0) {
			h = fnv(h, &sk.mv_size, sizeof sk.mv_size);
			h = fnv(h, sk.mv_data, sk.mv_size);
			h = fnv(h, &sv.mv_size, sizeof sv.mv_size);
			h = fnv(h, sv.mv_data, sv.mv_size);
		}
		mdb_cursor_close(sc);
	}
	assert_int_equal(mrc, MDB_NOTFOUND);
	mdb_cursor_close(mc);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return h | 2;
}

/* The names in a directory, sorted and joined, to tell that a failed
 * call left nothing behind (malloc'd). */
static char *listing(const char *dir)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort);
	size_t len = 1;
	char *s;
	for (int i = 0; i < n; i++)
		len += strlen(ents[i]->d_name) + 1;
	s = te_malloc(len);
	s[0] = 0;
	for (int i = 0; i < n; i++) {
		if (strcmp(ents[i]->d_name, ".") &&
		    strcmp(ents[i]->d_name, "..")) {
			strcat(s, ents[i]->d_name);
			strcat(s, " ");
		}
		free(ents[i]);
	}
	free(ents);
	return s;
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0);
	int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(out >= 0);
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

/* What a workload gives without failure. */
struct ref {
	int rc;
	uint64_t out, iss, digest, raw_before;
	size_t nissues;
	long calls;
};

struct stats {
	long runs, enomem, absorbed;
	char absorbed_at[512];
};

struct env {
	char *root;   /* the test's directory */
	char *tpl;    /* the template database */
	char *ck;     /* its checkpoint */
	char *run;    /* the directory of each run */
	char *tmpdir; /* $TMPDIR, where verify builds its replay */
	uint64_t seed;
	int full, sticky;
	const struct workload *w;
};

static void ctx_init(struct env *e, struct ctx *c)
{
	memset(c, 0, sizeof *c);
	c->dir = th_path(e->run, "db");
	c->dest = th_path(e->run, "dest");
	c->ck = e->ck;
	lb_options_init(&c->o);
	c->o.flags = LB_NOSYNC | ((e->w->flags & W_NOTPL) ? LB_CREATE : 0);
	c->o.segment_size = 4096;
	if (e->w->flags & W_TINYMAP)
		c->o.map_size = 64u << 10;
}

static void ctx_free(struct ctx *c)
{
	free(c->dir);
	free(c->dest);
}

/* The template of e->w: the base state, in e->tpl. */
static void make_template(struct env *e, struct ctx *ids)
{
	struct ctx c;
	th_rmrf(e->tpl);
	th_rmrf(e->ck);
	ctx_init(e, &c);
	free(c.dir);
	c.dir = strdup(e->tpl);
	c.o.flags = LB_CREATE | LB_NOSYNC;
	c.o.map_size = 0;
	c.db = te_open_opts(c.dir, &c.o);
	base(&c);
	lb_close(c.db);
	ids->a = c.a;
	ids->b = c.b;
	ids->c = c.c;
	ctx_free(&c);
}

/* A fresh copy of the template in e->run, opened unless the workload
 * opens it itself. */
static void prepare(struct env *e, const struct ctx *ids, struct ctx *c)
{
	th_rmrf(e->run);
	assert_int_equal(mkdir(e->run, 0755), 0);
	ctx_init(e, c);
	c->a = ids->a;
	c->b = ids->b;
	c->c = ids->c;
	if (e->w->flags & W_DESTDIR)
		assert_int_equal(mkdir(c->dest, 0755), 0);
	if (e->w->flags & W_NOTPL)
		return;
	assert_int_equal(mkdir(c->dir, 0755), 0);
	char *from = th_path(e->tpl, "data.mdb"),
	     *to = th_path(c->dir, "data.mdb");
	copy_file(from, to);
	free(from);
	free(to);
	if (!(e->w->flags & W_OPENS))
		c->db = te_open_opts(c->dir, &c->o);
}

/* The run without failure: count the calls, keep the outcome. */
static void reference(struct env *e, const struct ctx *ids, struct ref *ref)
{
	struct ctx c;
	prepare(e, ids, &c);
	ref->raw_before = raw_digest(c.dir);
	lbt_alloc_arm(0, 0);
	ref->rc = e->w->run(&c);
	ref->calls = lbt_alloc_calls();
	lbt_alloc_disarm();
	te_rc(e->w->want, ref->rc);
	ref->out = c.out;
	ref->iss = c.iss;
	ref->nissues = c.nissues;
	ref->digest = te_digest(c.db);
	lb_close(c.db);
	ctx_free(&c);
	if (lbt_alloc_live() != 0) {
		lbt_alloc_live_print(stderr, 20);
		fail_msg("%s: the library holds %zu objects after the run "
		         "without failure",
		         e->w->name, lbt_alloc_live());
	}
}

#define CK(cond, ...)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			th_seed_report();                                      \
			print_error("%s, allocation %ld failing%s (%s): ",     \
			            e->w->name, k,                             \
			            e->sticky ? " and every one after it"      \
			                      : "",                            \
			            symbolize(where));                         \
			print_error(__VA_ARGS__);                              \
			print_error("\n");                                     \
			fail_msg("%s", #cond);                                 \
		}                                                              \
	} while (0)

/* "fn at FILE+0xOFF" with the function and line addr2line finds for it
 * (when it is installed), for failure messages. */
static const char *symbolize(const char *where)
{
	static char buf[1024];
	char cmd[600], line[256];
	const char *at = strstr(where, " at "), *plus = strrchr(where, '+');
	snprintf(buf, sizeof buf, "%s", where);
	if (!at || !plus || plus < at)
		return buf;
	snprintf(cmd, sizeof cmd, "addr2line -ipfe '%.*s' %s 2>/dev/null",
	         (int)(plus - at - 4), at + 4, plus + 1);
	FILE *f = popen(cmd, "r");
	if (!f)
		return buf;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (strlen(buf) + strlen(line) + 4 < sizeof buf) {
			strcat(buf, "; ");
			strcat(buf, line);
		}
	}
	pclose(f);
	return buf;
}

/* The allocations whose failure the library absorbs by design: the call
 * goes on without them and succeeds (docs/RELIABILITY.md). By the
 * function whose source makes them (site_function()):
 *  - zw_start: the compression thread's state, its compressor and the
 *    thread itself; without it the batch compresses its segments on its
 *    own thread (db->zw_failed tells, also when the allocation is made in
 *    a function zw_start calls);
 *  - ra_start: the read-ahead thread's state and the thread itself;
 *    without them a rollback or a replay reads every segment on its own
 *    thread (db->ra_failed tells, for a rollback; a replay's worker is
 *    its new database's, which the test does not see);
 *  - lb__worker_start: the thread of either (zw_start, ra_start), which
 *    goes without it as above;
 *  - table_tail: the record of the largest key of each table in a
 *    batch's transaction, which lets a key past it be appended without a
 *    search; without it every key is searched for;
 *  - lb__issue: the copy of a validation issue (its message, table, key,
 *    field, or room in the list): the issue is counted in nissues_total
 *    but not kept, and the call answers LB_EVALIDATION all the same;
 *  - lb__rmdir_files: the DIR with which a directory the library built (a
 *    temporary replay, a failed checkpoint) is emptied; without it the
 *    files an LMDB environment has are removed by name;
 *  - cache_of: a handle's cache of recently read batches (as-of reads,
 *    history walks), made on first use; without it every batch asked
 *    about is read from its log. */
static const char *const optional_sites[] = {
        "zw_start",        "ra_start",  "lb__worker_start",
        "table_tail",      "lb__issue", "dupn", /* lb__issue's copies */
        "lb__rmdir_files", "cache_of"};

/* The function whose source holds the call at where: addr2line's first
 * (innermost) FILE:LINE, then the last function definition that starts
 * above that line in FILE (a line at column 0 with a '(' that does not
 * end a declaration). The same whatever the compiler inlined. "" if
 * unknown. */
static const char *site_function(const char *where)
{
	/* the sites met so far: addr2line once for each */
	static struct {
		char where[256], fn[128];
	} seen[64];
	static size_t nseen;
	static char fn[128];
	char path[512], line[512];
	const char *sym, *at, *colon;
	long target, n = 0;
	for (size_t i = 0; i < nseen; i++)
		if (!strcmp(seen[i].where, where))
			return seen[i].fn;
	fn[0] = 0;
	sym = symbolize(where);
	if (!(at = strstr(sym, "; ")) || !(at = strstr(at, " at ")))
		return fn;
	at += 4;
	if (!(colon = strchr(at, ':')) || (size_t)(colon - at) >= sizeof path)
		return fn;
	memcpy(path, at, (size_t)(colon - at));
	path[colon - at] = 0;
	target = strtol(colon + 1, NULL, 10);
	FILE *f = fopen(path, "r");
	if (!f)
		return fn;
	while (n < target && fgets(line, sizeof line, f)) {
		n++;
		size_t len = strcspn(line, "\n");
		char *paren = strchr(line, '(');
		if (!paren ||
		    !((line[0] >= 'a' && line[0] <= 'z') ||
		      (line[0] >= 'A' && line[0] <= 'Z')) ||
		    (len && line[len - 1] == ';'))
			continue;
		char *end = paren, *beg;
		while (end > line && end[-1] == ' ')
			end--;
		beg = end;
		while (beg > line &&
		       (beg[-1] == '_' || (beg[-1] >= 'a' && beg[-1] <= 'z') ||
		        (beg[-1] >= 'A' && beg[-1] <= 'Z') ||
		        (beg[-1] >= '0' && beg[-1] <= '9')))
			beg--;
		if (end > beg && (size_t)(end - beg) < sizeof fn) {
			memcpy(fn, beg, (size_t)(end - beg));
			fn[end - beg] = 0;
		}
	}
	fclose(f);
	if (fn[0] && nseen < sizeof seen / sizeof seen[0] &&
	    strlen(where) < sizeof seen[0].where) {
		strcpy(seen[nseen].where, where);
		strcpy(seen[nseen].fn, fn);
		nseen++;
	}
	return fn;
}

/* The failure of call k (at where) was absorbed: the call succeeded. The
 * name of the optional allocation, or NULL if it is not one. */
static const char *absorbed(const struct ctx *c, const char *where)
{
	const char *fn = site_function(where);
	if (c->db && c->db->zw_failed)
		return "zw_start";
	if (c->db && c->db->ra_failed)
		return "ra_start";
	for (size_t i = 0; i < sizeof optional_sites / sizeof optional_sites[0];
	     i++)
		if (!strcmp(fn, optional_sites[i]))
			return optional_sites[i];
	return NULL;
}

/* Run e->w with allocation k failing (and every later one when sticky);
 * 0 if the run made fewer than k allocations. */
static int fail_run(struct env *e, const struct ctx *ids, const struct ref *ref,
                    long k, struct stats *st)
{
	struct ctx c;
	char where[256] = "";
	prepare(e, ids, &c);
	char *tmp_before = listing(e->tmpdir);
	char *run_before = listing(e->run);
	lbt_alloc_arm(k, e->sticky);
	int rc = e->w->run(&c);
	long fired = lbt_alloc_fired();
	snprintf(where, sizeof where, "%s", lbt_alloc_fired_where());
	lbt_alloc_disarm();
	char msg[512];
	snprintf(msg, sizeof msg, "%s", lb_errmsg());
	if (!fired) {
		/* past the last call: only when k > ref->calls */
		CK(k > ref->calls,
		   "the call did not reach allocation %ld of %ld (rc %s)", k,
		   ref->calls, lb_strerror(rc));
		if (c.db)
			lb_close(c.db);
		ctx_free(&c);
		free(tmp_before);
		free(run_before);
		return 0;
	}
	CK(k <= ref->calls, "allocation %ld failed, past the %ld counted", k,
	   ref->calls);
	st->runs++;
	if (rc == ref->rc) {
		/* the failure was absorbed: the outcome must be whole */
		const char *why = absorbed(&c, where);
		CK(why != NULL,
		   "the call succeeded (%s) over a failed allocation that is "
		   "not optional",
		   lb_strerror(rc));
		CK(c.out == ref->out, "the call's results differ from the run "
		                      "without failure");
		if (!strcmp(why, "lb__issue") || !strcmp(why, "dupn"))
			CK(c.nissues < ref->nissues,
			   "an issue was not kept, yet %zu of %zu are",
			   c.nissues, ref->nissues);
		else
			CK(c.iss == ref->iss && c.nissues == ref->nissues,
			   "the issues differ from the run without failure");
		lb_verify_report rep;
		int vrc = lb_verify(c.db, LB_VERIFY_REPLAY, &rep);
		CK(vrc == 0, "verify after the call: %s: %s (%s)",
		   lb_strerror(vrc), lb_errmsg(), rep.detail);
		st->absorbed++;
		if (!strstr(st->absorbed_at, why) &&
		    strlen(st->absorbed_at) + strlen(why) + 2 <
		            sizeof st->absorbed_at)
			snprintf(st->absorbed_at + strlen(st->absorbed_at),
			         sizeof st->absorbed_at -
			                 strlen(st->absorbed_at),
			         " %s", why);
	} else {
		CK(rc == LB_ENOMEM, "returned %s, not LB_ENOMEM: %s",
		   lb_strerror(rc), msg);
		CK(msg[0] != 0, "LB_ENOMEM without a detail");
		st->enomem++;
		if (e->w->flags & W_OPENS)
			CK(c.db == NULL, "a failed open returned a handle");
		/* nothing changed: every sub-database as before */
		if (e->w->flags & W_NOTPL) {
			/* nothing was there: there is no database to open
			 * (and below, the create succeeds) */
			lb_options o = c.o;
			lb_db *none = NULL;
			o.flags &= ~(unsigned)LB_CREATE;
			int orc = lb_open(c.dir, &o, &none);
			lb_close(none);
			CK(orc == LB_ENOTFOUND,
			   "after the failed create, an open answers %s, not "
			   "LB_ENOTFOUND: %s",
			   lb_strerror(orc), lb_errmsg());
		} else {
			uint64_t raw = raw_digest(c.dir);
			CK(raw == ref->raw_before,
			   "the failed call changed the database");
		}
		if (e->w->flags & W_DEST) {
			/* missing, or the empty directory it was */
			struct stat sb;
			int there = stat(c.dest, &sb) == 0;
			if (there && (e->w->flags & W_DESTDIR)) {
				char *l = listing(c.dest);
				there = !S_ISDIR(sb.st_mode) || l[0] != 0;
				free(l);
			}
			CK(!there, "the failed call left its destination");
		}
		char *run_after = listing(e->run);
		CK(!strcmp(run_before, run_after) || (e->w->flags & W_NOTPL),
		   "the failed call left files: before [%s], after [%s]",
		   run_before, run_after);
		free(run_after);
		/* the handle goes on: it verifies, and the call, without
		 * failure, does what it does without failure */
		if (e->w->flags & W_OPENS) {
			c.db = NULL;
		} else {
			lb_verify_report rep;
			int vrc = lb_verify(c.db, LB_VERIFY_REPLAY, &rep);
			CK(vrc == 0, "verify after the failure: %s: %s (%s)",
			   lb_strerror(vrc), lb_errmsg(), rep.detail);
		}
		c.out = c.iss = 0;
		c.nissues = 0;
		rc = e->w->run(&c);
		CK(rc == ref->rc, "the same call after the failure: %s: %s",
		   lb_strerror(rc), lb_errmsg());
		CK(c.out == ref->out && c.iss == ref->iss &&
		           c.nissues == ref->nissues,
		   "the same call after the failure returned other results");
	}
	char *tmp_after = listing(e->tmpdir);
	CK(!strcmp(tmp_before, tmp_after),
	   "files left in $TMPDIR: before [%s], after [%s]", tmp_before,
	   tmp_after);
	free(tmp_after);
	CK(te_digest(c.db) == ref->digest,
	   "the database differs from the run without failure");
	if (e->w->flags & (W_OPENS | W_NOTPL)) {
		lb_verify_report rep;
		int vrc = lb_verify(c.db, LB_VERIFY_REPLAY, &rep);
		CK(vrc == 0, "verify: %s: %s (%s)", lb_strerror(vrc),
		   lb_errmsg(), rep.detail);
	}
	lb_close(c.db);
	c.db = NULL;
	ctx_free(&c);
	free(tmp_before);
	free(run_before);
	if (lbt_alloc_live() != 0) {
		lbt_alloc_live_print(stderr, 20);
		CK(0,
		   "%zu objects the library allocated are still held after "
		   "every handle was closed",
		   lbt_alloc_live());
	}
	return 1;
}

/* The ks to fail: every one when full or when there are at most
 * `sample`, else 1, n and sample - 2 others drawn with the seed. */
static long pick(const struct env *e, long n, long sample, long i,
                 uint64_t *rng)
{
	if (e->full || n <= sample)
		return i < n ? i + 1 : 0;
	if (i >= sample)
		return 0;
	if (i == 0)
		return 1;
	if (i == 1)
		return n;
	return 2 + (long)th_below(rng, (uint64_t)n - 2);
}

static void run_workload(struct env *e, const struct workload *w, long sample,
                         long *total_runs)
{
	struct ctx ids;
	struct ref ref;
	memset(&ids, 0, sizeof ids);
	e->w = w;
	if (!(w->flags & W_NOTPL))
		make_template(e, &ids);
	reference(e, &ids, &ref);
	for (int sticky = 0; sticky < 2; sticky++) {
		struct stats st;
		uint64_t rng = e->seed ^ (uint64_t)(w - workloads) * 7919u ^
		               (uint64_t)sticky;
		memset(&st, 0, sizeof st);
		e->sticky = sticky;
		long tried = 0;
		for (long i = 0;; i++) {
			long k = pick(e, ref.calls, sample, i, &rng);
			if (!k)
				break;
			tried++;
			fail_run(e, &ids, &ref, k, &st);
		}
		/* past the last allocation, nothing fails */
		if (!sticky)
			assert_int_equal(
			        fail_run(e, &ids, &ref, ref.calls + 1, &st), 0);
		*total_runs += st.runs;
		printf("%-18s %-10s %4ld allocations, %4ld failed in turn: "
		       "%ld LB_ENOMEM, %ld succeeded",
		       w->name, sticky ? "from k on" : "once", ref.calls, tried,
		       st.enomem, st.absorbed);
		if (st.absorbed_at[0])
			printf(" (optional, in%s)", st.absorbed_at);
		printf("\n");
	}
}

/* Mount a tmpfs at mnt in a private mount namespace, as
 * tests/engine/fault.c does: the runs sync their checkpoints, replays and
 * verify's replays, which on a disk costs most of the time. 0 or errno
 * (then the test runs where it is, slower). */
static int private_tmpfs(const char *mnt)
{
	if (unshare(CLONE_NEWNS) != 0) {
		uid_t uid = getuid();
		gid_t gid = getgid();
		char map[64];
		int fd;
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
			return errno;
		if ((fd = open("/proc/self/setgroups", O_WRONLY)) >= 0) {
			(void)!write(fd, "deny", 4);
			close(fd);
		}
		snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
		if ((fd = open("/proc/self/uid_map", O_WRONLY)) < 0)
			return errno;
		(void)!write(fd, map, strlen(map));
		close(fd);
		snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
		if ((fd = open("/proc/self/gid_map", O_WRONLY)) < 0)
			return errno;
		(void)!write(fd, map, strlen(map));
		close(fd);
	}
	if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", mnt, "tmpfs", 0, "size=512m,mode=0755") != 0)
		return errno;
	return 0;
}

static void test_engine_alloc__every_allocation_fails(void **state)
{
	struct env e;
	long runs = 0, sample = th_env_long("LB_ALLOC_SAMPLE", 20);
	const char *only = getenv("LB_ALLOC_ONLY");
	const char *t = getenv("TMPDIR");
	(void)state;
	memset(&e, 0, sizeof e);
	e.seed = th_seed((uint64_t)time(NULL));
	e.full = th_env_long("LB_ALLOC_FULL", 0) != 0;
	e.root = th_tmpdir();
	int mounted = private_tmpfs(e.root) == 0;
	e.tpl = th_path(e.root, "template");
	e.ck = th_path(e.root, "template-ck");
	e.run = th_path(e.root, "run");
	/* verify builds its replay under $TMPDIR: a private one, to see
	 * that nothing is left there */
	e.tmpdir = th_path(e.root, "tmp");
	assert_int_equal(mkdir(e.tmpdir, 0755), 0);
	char *old_tmpdir = t ? strdup(t) : NULL;
	setenv("TMPDIR", e.tmpdir, 1);
	int64_t t0 = te_mono_ns();
	for (size_t i = 0; i < NWORKLOADS; i++)
		if (!only || !strcmp(only, workloads[i].name))
			run_workload(&e, &workloads[i], sample, &runs);
	printf("%s: %zu allocation call sites reached, %ld allocation "
	       "failures injected in %ld runs, all passed (seed %" PRIu64
	       ", %.1f s%s)\n",
	       e.full ? "every allocation" : "sample", lbt_alloc_sites(),
	       lbt_alloc_fired_total(), runs, e.seed,
	       (double)(te_mono_ns() - t0) / 1e9,
	       mounted ? ", on a private tmpfs" : "");
	if (th_env_long("LB_ALLOC_SITES", 0))
		lbt_alloc_sites_print(stdout);
	if (old_tmpdir)
		setenv("TMPDIR", old_tmpdir, 1);
	free(old_tmpdir);
	if (mounted)
		umount2(e.root, MNT_DETACH);
	th_rmrf(e.root);
	free(e.root);
	free(e.tpl);
	free(e.ck);
	free(e.run);
	free(e.tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_alloc__every_allocation_fails),
	};
	/* Segments read ahead (by a rollback or a replay) are all left to
	 * the worker, whose allocations are not counted: a caller taking one
	 * back when the worker had not started on it would make its
	 * allocations differ from run to run. */
	lb__ra_mode = 2;
	return cmocka_run_group_tests_name("engine_alloc", tests, NULL, NULL);
}
