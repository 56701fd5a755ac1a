/* SPDX-License-Identifier: MIT */
/*
 * The structural page check (engine/pagecheck.c): it passes every database
 * LMDB and logbook write (overflow values, sorted duplicates in sub-pages
 * and sub-trees, fixed-size duplicates, many tables, free lists left by
 * deletes and rollbacks, snapshots that writers have moved past), and it
 * reports LB_ECORRUPT for damaged page headers, node headers, overflow
 * counts, database records and meta roots, naming the page, without ever
 * reading outside the file.
 *
 * Damage is aimed with a small walker of undamaged files written here (it
 * trusts what it reads; it only finds where pages and nodes are). Damaged
 * files the check passes are then read whole by LMDB in a forked child: the
 * check's promise is that LMDB does not crash on what it passed, so a
 * crash or a hang there fails the test.
 */
#define _GNU_SOURCE
#include "_common.h"
#include "_model.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/pagecheck.h"

#define FULL LB__PAGECHECK_FULL
#define OPEN LB__PAGECHECK_OPEN

/* ---- the file format, as far as the walker needs it --------------------- */

enum { P_BRANCH = 1, P_LEAF = 2, P_LEAF2 = 0x20 };
enum { F_BIGDATA = 1, F_SUBDATA = 2, F_DUPDATA = 4 };

static uint16_t g16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}
static uint32_t g32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static uint64_t g64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
static void s16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}
static void s32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static void s64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

/* Where things are: pages (off 0) and nodes (their offset, and the index
 * of their pointer). */
enum {
	L_BRANCH,
	L_LEAF,
	L_LEAF2,
	L_OVER,
	L_CHILD,  /* branch node */
	L_VAL,    /* leaf node, value inline */
	L_BIG,    /* leaf node, value on overflow pages */
	L_REC,    /* leaf node, a named database's record */
	L_DUPREC, /* leaf node, a duplicates sub-tree's record */
	L_SUBP,   /* leaf node, a sub-page of duplicates */
	L__N
};
static const char *const l_name[] = {
        "branch page", "leaf page",    "LEAF2 page", "overflow page",
        "branch node", "value node",   "big node",   "database record",
        "dup record",  "sub-page node"};

typedef struct loc {
	uint64_t pgno;
	unsigned off, idx;
	int kind;
	char tree[24]; /* the named database it belongs to, or "" */
} loc;

typedef struct fmap {
	uint8_t *f; /* the file */
	size_t n;
	uint32_t ps;
	unsigned meta; /* the newest meta page */
	uint64_t last;
	uint8_t *used; /* per page: reached */
	loc *v;
	size_t nv, cap;
} fmap;

static void add(fmap *m, uint64_t pgno, unsigned off, unsigned idx, int kind,
                const char *tree)
{
	if (m->nv == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 256;
		m->v = realloc(m->v, m->cap * sizeof *m->v);
		assert_non_null(m->v);
	}
	m->v[m->nv] = (loc){pgno, off, idx, kind, ""};
	snprintf(m->v[m->nv++].tree, sizeof m->v[0].tree, "%s", tree);
}

static void walk(fmap *m, uint64_t pgno, const char *tree)
{
	const uint8_t *p = m->f + pgno * m->ps;
	unsigned flags = g16(p + 10), n = (g16(p + 12) - 16u) / 2;
	assert_true(pgno <= m->last);
	m->used[pgno] = 1;
	if (flags & P_LEAF2) {
		add(m, pgno, 0, 0, L_LEAF2, tree);
		return;
	}
	add(m, pgno, 0, 0, flags & P_BRANCH ? L_BRANCH : L_LEAF, tree);
	for (unsigned i = 0; i < n; i++) {
		unsigned off = g16(p + 16 + 2 * i), nf = g16(p + off + 4);
		const uint8_t *body = p + off + 8 + g16(p + off + 6);
		if (flags & P_BRANCH) {
			add(m, pgno, off, i, L_CHILD, tree);
			walk(m, g32(p + off) | (uint64_t)nf << 32, tree);
		} else if (nf & F_BIGDATA) {
			uint64_t ov = g64(body);
			uint32_t pages = g32(m->f + ov * m->ps + 12);
			add(m, pgno, off, i, L_BIG, tree);
			add(m, ov, 0, 0, L_OVER, tree);
			for (uint32_t k = 0; k < pages; k++)
				m->used[ov + k] = 1;
		} else if (nf & F_SUBDATA) {
			char name[24];
			unsigned ks = g16(p + off + 6);
			snprintf(name, sizeof name, "%.*s",
			         (int)(ks < 23 ? ks : 23),
			         (const char *)p + off + 8);
			add(m, pgno, off, i, nf & F_DUPDATA ? L_DUPREC : L_REC,
			    tree);
			if (g64(body + 40) != UINT64_MAX)
				walk(m, g64(body + 40),
				     nf & F_DUPDATA ? tree : name);
		} else {
			add(m, pgno, off, i, nf & F_DUPDATA ? L_SUBP : L_VAL,
			    tree);
		}
	}
}

static void fmap_build(fmap *m, const char *file)
{
	struct stat st;
	int fd = open(file, O_RDONLY);
	memset(m, 0, sizeof *m);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	m->n = (size_t)st.st_size;
	m->f = te_malloc(m->n);
	assert_int_equal(read(fd, m->f, m->n), (ssize_t)m->n);
	close(fd);
	m->ps = g32(m->f + 16 + 24); /* meta 0's free-list record's pad */
	m->meta = g64(m->f + m->ps + 144) > g64(m->f + 144);
	m->last = g64(m->f + m->meta * m->ps + 136);
	m->used = calloc(m->last + 1, 1);
	assert_non_null(m->used);
	for (int db = 0; db < 2; db++) {
		uint64_t root = g64(m->f + m->meta * m->ps + 40 + 48 * db + 40);
		if (root != UINT64_MAX)
			walk(m, root, db ? "main" : "free");
	}
}

/* What lies at file offset off, for messages. */
static const char *where(const fmap *m, size_t off, char *buf, size_t cap)
{
	uint64_t p = off / m->ps;
	snprintf(buf, cap, "page %" PRIu64 " +%zu (unused)", p, off % m->ps);
	for (size_t i = 0; i < m->nv; i++)
		if (m->v[i].pgno == p && m->v[i].kind <= L_OVER)
			snprintf(buf, cap, "%s %" PRIu64 " +%zu of %s",
			         l_name[m->v[i].kind], p, off % m->ps,
			         m->v[i].tree);
	return buf;
}

static void fmap_free(fmap *m)
{
	free(m->f);
	free(m->used);
	free(m->v);
}

/* ---- running the check on a file ---------------------------------------- */

static MDB_env *env_open(const char *dir)
{
	MDB_env *env;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 1024), 0);
	int mrc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK, 0644);
	if (mrc) {
		mdb_env_close(env);
		return NULL;
	}
	return env;
}

/* lb__pagecheck on dir's data.mdb in a fresh environment; 1 if LMDB
 * itself refused to open the file. */
static int check_dir(const char *dir, int mode)
{
	MDB_env *env = env_open(dir);
	if (!env)
		return 1;
	int rc = lb__pagecheck(env, NULL, mode);
	mdb_env_close(env);
	return rc;
}

/* The check on a live logbook database, both modes and three kinds of
 * transaction: its own, a read transaction, a write transaction. */
static void assert_clean_db(lb_db *db)
{
	MDB_txn *txn;
	for (int mode = 0; mode < 2; mode++)
		te_rc(0, lb__pagecheck(db->env, NULL, mode));
	assert_int_equal(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn), 0);
	te_rc(0, lb__pagecheck(db->env, txn, FULL));
	mdb_txn_abort(txn);
	if (!(db->flags & LB_RDONLY)) {
		assert_int_equal(mdb_txn_begin(db->env, NULL, 0, &txn), 0);
		te_rc(0, lb__pagecheck(db->env, txn, FULL));
		mdb_txn_abort(txn);
	}
}

/* Patch n bytes at off of the file, remembering the old ones. */
static void patch(const char *file, size_t off, const void *p, size_t n)
{
	int fd = open(file, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
	close(fd);
}

/* ---- LMDB reading everything, in a child ------------------------------- */

static void read_dbi(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_cursor *c, *c2;
	MDB_val k, v;
	unsigned flags = 0;
	int rc;
	if (mdb_cursor_open(txn, dbi, &c) || mdb_cursor_open(txn, dbi, &c2))
		return;
	mdb_dbi_flags(txn, dbi, &flags);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		MDB_val k2 = k, v2;
		mdb_cursor_get(c2, &k2, &v2, MDB_SET_KEY);
		if (flags & MDB_DUPFIXED) {
			mdb_cursor_get(c, &k, &v, MDB_GET_MULTIPLE);
			while (mdb_cursor_get(c, &k, &v, MDB_NEXT_MULTIPLE) ==
			       0)
				;
		}
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_LAST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_PREV))
		;
	mdb_cursor_close(c);
	mdb_cursor_close(c2);
}

/* What LMDB reads of a file: with full, every database; else what lb_open
 * reads (the free list, the main database, _meta, the last of _batches). */
static void read_all(const char *dir, int full)
{
	MDB_env *env = env_open(dir);
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	if (!env || mdb_txn_begin(env, NULL, MDB_RDONLY, &txn))
		return;
	MDB_dbi mainh;
	read_dbi(txn, 0);
	/* (the main database's key order is set when it is opened) */
	if (mdb_dbi_open(txn, NULL, 0, &mainh) == 0)
		read_dbi(txn, mainh);
	if (mdb_cursor_open(txn, 1, &c) == 0) {
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
			char name[600];
			MDB_dbi dbi;
			if (k.mv_size >= sizeof name)
				continue;
			memcpy(name, k.mv_data, k.mv_size);
			name[k.mv_size] = 0;
			if (mdb_dbi_open(txn, name, 0, &dbi))
				continue;
			if (full || !strcmp(name, "_meta")) {
				read_dbi(txn, dbi);
			} else if (!strcmp(name, "_batches")) {
				MDB_cursor *b;
				if (mdb_cursor_open(txn, dbi, &b) == 0) {
					if (mdb_cursor_get(b, &k, &v,
					                   MDB_LAST) == 0)
						mdb_get(txn, dbi, &k, &v);
					mdb_cursor_close(b);
				}
			}
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

/* read_all() in a child under an alarm: 0, or the signal that ended it.
 * The child reports through a pipe and then kills itself, so that nothing
 * runs at its exit (under valgrind: no leak check of the parent's memory
 * in the child). */
static int read_all_forked(const char *dir, int full)
{
	int status, fds[2];
	char c;
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE,
		                           SIGABRT};
		for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
			signal(sigs[i], SIG_DFL);
		close(fds[0]);
		alarm(20);
		read_all(dir, full);
		(void)!write(fds[1], "k", 1);
		kill(getpid(), SIGKILL);
		_exit(100);
	}
	close(fds[1]);
	ssize_t done = read(fds[0], &c, 1);
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (done == 1)
		return 0;
	return WIFSIGNALED(status) ? WTERMSIG(status) : 255;
}

/* ---- databases ---------------------------------------------------------- */

/* A history of random batches and rollbacks (small tables, references),
 * then a table of values from 40 bytes to 70 KB (overflow runs), keys
 * updated in many batches, one batch undone and redone many times (a long
 * `_undo` duplicate list: a LEAF2 sub-tree),
 * many referrers of one key (a _refs sub-tree), deletes (free pages). */
static char *build_reference(const char *root, uint64_t seed, int check)
{
	char *dir = th_path(root, "ref");
	uint64_t rng = seed;
	lb_options o;
	lb_db *db;
	tm_model *m = tm_new(0);
	lb_batch *b;
	char k[40];

	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.segment_size = 1024;
	db = te_open_opts(dir, &o);
	if (check)
		assert_clean_db(db);
	tm_setup(m, db);
	for (int i = 0; i < 60; i++) {
		tm_step(m, &db, dir, &rng,
		        TM_STEP_BATCH | TM_STEP_ROLLBACK | TM_STEP_ROLLBACK_TO);
		if (check && i % 20 == 19)
			assert_clean_db(db);
	}
	te_rc(0, lb_table_create(db, "big", NULL));
	uint8_t *v = te_malloc(70000);
	te_rc(0, lb_batch_begin(db, "big", &b));
	for (int i = 0; i < 300; i++) {
		static const size_t sizes[] = {3000, 9000, 70000};
		size_t vl = i % 25 == 0 ? sizes[(i / 25) % 3] : 40;
		snprintf(k, sizeof k, "big%04d", i);
		te_fill(&rng, v, vl);
		te_rc(0, lb_put(b, "big", k, strlen(k), v, vl));
	}
	te_rc(0, lb_batch_commit(b, NULL));
	/* one key changed by 700 batches */
	for (int i = 0; i < 700; i++) {
		snprintf(k, sizeof k, "v%d", i);
		te_put1(db, "big", "hot", k);
	}
	/* its last batch undone 600 times (each undo undone in turn): 600
	 * batch ids under it in `_undo` */
	{
		uint64_t z = te_last(db);
		lb_result res;
		for (int i = 0; i < 600; i++) {
			te_rc(0, lb_rollback(db, z, 0, &res));
			uint64_t r = res.batch_id;
			lb_result_free(&res);
			te_rc(0, lb_rollback(db, r, 0, &res));
			lb_result_free(&res);
		}
	}
	/* a hearing referred to by 1500 witnesses: a _refs sub-tree */
	{
		static const lb_field wf[] = {
		        {"h", LB_STR, LB_REQUIRED, 0, "hh"}};
		static const lb_schema ws = {wf, 1, 0};
		static const uint8_t val[] = {0x81, 0xa1, 'h', 0xa2, 'h', '0'};
		te_rc(0, lb_table_create(db, "hh", NULL));
		te_put1(db, "hh", "h0", "x");
		te_rc(0, lb_table_create(db, "ww", &ws));
		te_rc(0, lb_batch_begin(db, "ww", &b));
		for (int i = 0; i < 1500; i++) {
			snprintf(k, sizeof k, "witness-%05d", i);
			te_rc(0,
			      lb_put(b, "ww", k, strlen(k), val, sizeof val));
		}
		te_rc(0, lb_batch_commit(b, NULL));
	}
	/* deletes: free pages */
	te_rc(0, lb_batch_begin(db, "del", &b));
	for (int i = 0; i < 300; i += 2) {
		snprintf(k, sizeof k, "big%04d", i);
		te_rc(0, lb_delete(b, "big", k, strlen(k)));
	}
	te_rc(0, lb_batch_commit(b, NULL));
	if (check)
		assert_clean_db(db);
	free(v);
	lb_close(db);
	tm_free(m);
	return dir;
}

static void lput(MDB_txn *txn, MDB_dbi dbi, const void *k, size_t kl,
                 const void *v, size_t vl)
{
	MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};
	assert_int_equal(mdb_put(txn, dbi, &key, &val, 0), 0);
}

/* An LMDB environment of every shape the format has: plain and big values
 * in the main database beside named ones, integer keys, sorted duplicates
 * in sub-pages and in sub-trees, fixed-size integer duplicates in LEAF2
 * sub-pages and sub-trees, values over many pages, then deletes. */
static char *build_lmdb(const char *root, uint64_t seed)
{
	char *dir = th_path(root, "lmdb");
	uint64_t rng = seed;
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi ints, dups, fixed, bigs, mainh;
	uint8_t *v = te_malloc(100000);
	char k[40];
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
	assert_int_equal(mdb_env_set_mapsize(env, 64u << 20), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_NOSYNC, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &mainh), 0);
	assert_int_equal(
	        mdb_dbi_open(txn, "ints", MDB_CREATE | MDB_INTEGERKEY, &ints),
	        0);
	assert_int_equal(
	        mdb_dbi_open(txn, "dups", MDB_CREATE | MDB_DUPSORT, &dups), 0);
	assert_int_equal(mdb_dbi_open(txn, "fixed",
	                              MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED |
	                                      MDB_INTEGERDUP,
	                              &fixed),
	                 0);
	assert_int_equal(mdb_dbi_open(txn, "bigs", MDB_CREATE, &bigs), 0);
	te_fill(&rng, v, 100000);
	lput(txn, mainh, "plain", 5, "x", 1);
	lput(txn, mainh, "zbig", 4, v, 10000);
	for (size_t i = 0; i < 5000; i++) {
		size_t key = i * 7919;
		lput(txn, ints, &key, sizeof key, v + i % 1000, 16 + i % 64);
	}
	for (int i = 0; i < 10; i++)
		lput(txn, dups, "few", 3, v + i, 12);
	for (int i = 0; i < 3000; i++) {
		snprintf(k, sizeof k, "dup-%06d-%08d", i, i * 31);
		lput(txn, dups, "many", 4, k, strlen(k));
	}
	for (int i = 0; i < 500; i++) {
		snprintf(k, sizeof k, "single%04d", i);
		lput(txn, dups, k, strlen(k), v + i, 1 + i % 300);
	}
	for (size_t i = 0; i < 5; i++)
		lput(txn, fixed, "a", 1, &i, sizeof i);
	for (size_t i = 0; i < 3000; i++)
		lput(txn, fixed, "b", 1, &i, sizeof i);
	for (int i = 0; i < 40; i++) {
		snprintf(k, sizeof k, "b%02d", i);
		lput(txn, bigs, k, strlen(k), v, 2000 + (size_t)i * 2400);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	/* deletes, in a second transaction: free pages */
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	for (size_t i = 0; i < 5000; i += 3) {
		size_t key = i * 7919;
		MDB_val kv = {sizeof key, &key};
		assert_int_equal(mdb_del(txn, ints, &kv, NULL), 0);
	}
	for (int i = 0; i < 40; i += 4) {
		snprintf(k, sizeof k, "b%02d", i);
		MDB_val kv = {strlen(k), k};
		assert_int_equal(mdb_del(txn, bigs, &kv, NULL), 0);
	}
	for (int i = 0; i < 3000; i += 5) {
		snprintf(k, sizeof k, "dup-%06d-%08d", i, i * 31);
		MDB_val kv = {4, "many"}, dv = {strlen(k), k};
		assert_int_equal(mdb_del(txn, dups, &kv, &dv), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	free(v);
	return dir;
}

/* ---- tests: what must pass --------------------------------------------- */

static void test_engine_pagecheck__clean_lmdb(void **state)
{
	char *root = th_tmpdir(), *dir = th_path(root, "empty");
	MDB_env *env;
	(void)state;
	/* an environment with nothing in it: two meta pages */
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	te_rc(0, lb__pagecheck(env, NULL, FULL));
	te_rc(0, lb__pagecheck(env, NULL, OPEN));
	mdb_env_close(env);
	free(dir);

	dir = build_lmdb(root, 1);
	te_rc(0, check_dir(dir, FULL));
	te_rc(0, check_dir(dir, OPEN));
	/* the walker agrees that every shape is there */
	{
		char *file = th_path(dir, "data.mdb");
		fmap m;
		size_t count[L__N] = {0};
		fmap_build(&m, file);
		for (size_t i = 0; i < m.nv; i++)
			count[m.v[i].kind]++;
		for (int kind = 0; kind < L__N; kind++)
			if (count[kind] == 0)
				fail_msg("no %s in the LMDB reference",
				         l_name[kind]);
		fmap_free(&m);
		free(file);
	}
	free(dir);
	th_rmrf(root);
	free(root);
}

static void test_engine_pagecheck__clean_logbook(void **state)
{
	char *root = th_tmpdir(), *dir;
	lb_db *db;
	(void)state;
	/* checked along the way: empty, after random histories, after big
	 * values, long duplicate lists, references and deletes */
	dir = build_reference(root, 7, 1);
	db = te_open(dir, LB_RDONLY);
	assert_clean_db(db);
	lb_close(db);
	{
		char *file = th_path(dir, "data.mdb");
		fmap m;
		size_t count[L__N] = {0};
		fmap_build(&m, file);
		for (size_t i = 0; i < m.nv; i++)
			count[m.v[i].kind]++;
		/* a logbook database has no named record nested in a
		 * named database's tree, but every other shape */
		for (int kind = 0; kind < L__N; kind++)
			if (count[kind] == 0)
				fail_msg("no %s in the logbook reference",
				         l_name[kind]);
		fmap_free(&m);
		free(file);
	}
	th_rmrf(dir);
	free(dir);

	/* many tables: a main database of several levels */
	dir = th_path(root, "tables");
	db = te_open(dir, LB_CREATE | LB_NOSYNC);
	for (int i = 0; i < 150; i++) {
		char name[40];
		snprintf(name, sizeof name, "table-with-a-long-name-%03d", i);
		te_rc(0, lb_table_create(db, name, NULL));
		if (i % 3 == 0)
			te_put1(db, name, "k", "v");
	}
	assert_clean_db(db);
	{
		MDB_txn *txn;
		MDB_stat st;
		assert_int_equal(mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn),
		                 0);
		assert_int_equal(mdb_stat(txn, 1, &st), 0);
		assert_true(st.ms_depth >= 2);
		mdb_txn_abort(txn);
	}
	lb_close(db);
	free(dir);
	th_rmrf(root);
	free(root);
}

/* The transaction decides the snapshot: a read transaction that writers
 * have moved past by one commit is checked as it is; one moved past by
 * more (its meta page rewritten) is renewed; a write transaction checks
 * the last commit. */
static void test_engine_pagecheck__snapshots(void **state)
{
	char *root = th_tmpdir(), *dir = th_path(root, "s");
	MDB_env *env;
	MDB_txn *r, *w;
	MDB_dbi dbi;
	char k[32];
	(void)state;
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS | MDB_NOSYNC, 0644),
	                 0);
	for (int round = 0; round < 6; round++) {
		assert_int_equal(mdb_txn_begin(env, NULL, 0, &w), 0);
		assert_int_equal(mdb_dbi_open(w, NULL, 0, &dbi), 0);
		for (int i = 0; i < 400; i++) {
			snprintf(k, sizeof k, "r%d-%04d", round, i);
			lput(w, dbi, k, strlen(k), k, strlen(k));
		}
		assert_int_equal(mdb_txn_commit(w), 0);
	}
	for (int commits = 0; commits < 4; commits++) {
		assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &r), 0);
		size_t id = mdb_txn_id(r);
		/* writers rewrite much of the tree meanwhile */
		for (int c = 0; c < commits; c++) {
			assert_int_equal(mdb_txn_begin(env, NULL, 0, &w), 0);
			for (int i = 0; i < 400; i += 2) {
				snprintf(k, sizeof k, "r%d-%04d", c, i);
				lput(w, dbi, k, strlen(k), "changed", 7);
			}
			assert_int_equal(mdb_txn_commit(w), 0);
		}
		te_rc(0, lb__pagecheck(env, r, FULL));
		if (commits < 2)
			assert_int_equal(mdb_txn_id(r), id);
		else
			assert_int_equal(mdb_txn_id(r), id + (size_t)commits);
		mdb_txn_abort(r);
	}
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &w), 0);
	te_rc(0, lb__pagecheck(env, w, FULL));
	te_rc(0, lb__pagecheck(env, w, OPEN));
	/* and what the write transaction then writes works */
	lput(w, dbi, "after", 5, "check", 5);
	assert_int_equal(mdb_txn_commit(w), 0);
	te_rc(0, lb__pagecheck(env, NULL, FULL));
	mdb_env_close(env);
	free(dir);
	th_rmrf(root);
	free(root);
}

/* Another process commits all the while: every check of a live snapshot
 * passes (its pages are pinned; a snapshot whose meta page was rewritten
 * meanwhile is renewed). */
static void test_engine_pagecheck__concurrent_writer(void **state)
{
	char *root = th_tmpdir(), *dir = th_path(root, "c");
	lb_db *db = te_open(dir, LB_CREATE | LB_NOSYNC);
	int fds[2], status;
	unsigned long checks = 0;
	char c;
	(void)state;
	te_rc(0, lb_table_create(db, "t", NULL));
	te_put1(db, "t", "k", "v");
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* the writer: its own handle, batches that rewrite pages; it
		 * reports its end through the pipe and kills itself (see
		 * read_all_forked()) */
		lb_db *w = NULL;
		int64_t end = te_mono_ns() + 1000 * 1000000LL;
		char res = 0;
		close(fds[0]);
		if (lb_open(dir, NULL, &w) != 0)
			res = 2;
		(void)!write(fds[1], "r", 1);
		for (int i = 0; res == 0 && te_mono_ns() < end; i++) {
			lb_batch *b;
			char k[32];
			if (lb_batch_begin(w, "w", &b) != 0) {
				res = 3;
				break;
			}
			for (int j = 0; j < 20 && res == 0; j++) {
				snprintf(k, sizeof k, "k%d",
				         (i * 20 + j) % 3000);
				if (lb_put(b, "t", k, strlen(k), k, strlen(k)))
					res = 4;
			}
			if (lb_batch_commit(b, NULL) != 0 && res == 0)
				res = 5;
		}
		(void)!write(fds[1], &res, 1);
		kill(getpid(), SIGKILL);
		_exit(100);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &c, 1), 1);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		MDB_txn *txn;
		te_rc(0, lb__read_txn(db, &txn));
		te_rc(0, lb__pagecheck(db->env, txn, checks % 2 ? FULL : OPEN));
		lb__read_done(db, txn);
		checks++;
	}
	/* the writer's result: 0 when every batch committed */
	assert_int_equal(read(fds[0], &c, 1), 1);
	close(fds[0]);
	assert_int_equal(c, 0);
	assert_true(checks > 0);
	printf("%lu checks passed while another process committed\n", checks);
	assert_clean_db(db);
	lb_close(db);
	free(dir);
	th_rmrf(root);
	free(root);
}

/* Garbage in pages no tree reaches (free or never used) is no damage. */
static void test_engine_pagecheck__unused_pages(void **state)
{
	char *root = th_tmpdir(), *ref = build_reference(root, 8, 0);
	char *file = th_path(ref, "data.mdb");
	uint64_t rng = th_seed(0x0f3ee);
	fmap m;
	size_t n = 0;
	(void)state;
	fmap_build(&m, file);
	uint8_t *junk = te_malloc(m.ps);
	for (uint64_t p = 2; p < m.n / m.ps; p++) {
		if (p <= m.last && m.used[p])
			continue;
		te_fill(&rng, junk, m.ps);
		patch(file, p * m.ps, junk, m.ps);
		n++;
	}
	assert_true(n > 0);
	te_rc(0, check_dir(ref, FULL));
	te_rc(0, check_dir(ref, OPEN));
	free(junk);
	fmap_free(&m);
	free(file);
	free(ref);
	th_rmrf(root);
	free(root);
}

/* The meta pages alone, without LMDB: what mdb_env_open() may fail on. */
static void test_engine_pagecheck__metas(void **state)
{
	char *root = th_tmpdir(), *dir = th_path(root, "m");
	char *file = th_path(dir, "data.mdb");
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t *orig;
	size_t n;
	(void)state;
	assert_int_equal(mkdir(dir, 0755), 0);
	te_rc(0, lb__pagecheck_metas(file)); /* missing */
	{
		int fd = open(file, O_WRONLY | O_CREAT, 0644);
		assert_true(fd >= 0);
		close(fd);
	}
	te_rc(0, lb__pagecheck_metas(file)); /* empty */
	unlink(file);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	for (int i = 0; i < 3; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
		assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
		lput(txn, dbi, k, strlen(k), "v", 1);
		assert_int_equal(mdb_txn_commit(txn), 0);
	}
	mdb_env_close(env);
	te_rc(0, lb__pagecheck_metas(file));
	{
		fmap m;
		fmap_build(&m, file);
		n = m.n;
		orig = te_malloc(n);
		memcpy(orig, m.f, n);
		size_t newer = m.meta * m.ps, older = (1 - m.meta) * m.ps;
		uint8_t b[8];
		struct {
			size_t off;
			uint64_t v;
			int want;
		} cases[] = {
		        {newer + 136, (uint64_t)1 << 40, LB_ECORRUPT},
		        /* past the file's end: pages a transaction took
		         * and freed unwritten; plausible up to a bound */
		        {newer + 136, m.n / m.ps, 0},
		        {newer + 136, 4 * (m.n / m.ps) + 4095, 0},
		        {newer + 136, 4 * (m.n / m.ps) + 4096, LB_ECORRUPT},
		        {older + 136, (uint64_t)1 << 40, 0},
		        {newer + 16, 0xdeadbeef, LB_ECORRUPT}, /* magic */
		        {older + 20, 7, LB_ECORRUPT},          /* version */
		        {newer + 10, 0x0002, LB_ECORRUPT},     /* flags */
		        {newer + 40, m.ps * 2, LB_ECORRUPT},   /* page size */
		        /* the older one's page size: unused, unless it is
		         * page 0's, which places page 1 */
		        {older + 40, m.ps * 2, m.meta == 0 ? 0 : LB_ECORRUPT},
		        {newer + 0, 12345, 0}, /* page number: not used */
		};
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
			s64(b, cases[i].v);
			/* page size and magic are 4 bytes, flags 2 */
			size_t len = cases[i].off % m.ps == 10    ? 2
			             : cases[i].off % m.ps == 136 ? 8
			             : cases[i].off % m.ps == 0   ? 8
			                                          : 4;
			patch(file, cases[i].off, b, len);
			int rc = lb__pagecheck_metas(file);
			if (rc != cases[i].want)
				fail_msg("meta case %zu: %d (%s), want %d", i,
				         rc, lb_errmsg(), cases[i].want);
			/* where LMDB opens the file, the full check agrees */
			if ((env = env_open(dir)) != NULL) {
				rc = lb__pagecheck(env, NULL, FULL);
				mdb_env_close(env);
				if (rc != cases[i].want)
					fail_msg("meta case %zu, full check: "
					         "%d (%s), want %d",
					         i, rc, lb_errmsg(),
					         cases[i].want);
			}
			patch(file, cases[i].off, orig + cases[i].off, len);
		}
		/* cut short: inside meta page 0, inside meta page 1 */
		static const size_t cuts[] = {100, 4096 + 10};
		for (size_t i = 0; i < 2; i++) {
			assert_int_equal(truncate(file, (off_t)cuts[i]), 0);
			te_rc(LB_ECORRUPT, lb__pagecheck_metas(file));
		}
		fmap_free(&m);
	}
	free(orig);
	free(file);
	free(dir);
	th_rmrf(root);
	free(root);
}

/* ---- tests: damage ------------------------------------------------------ */

enum {
	D_PGNO,
	D_FLAGS,
	D_LOWER_ODD,
	D_LOWER_HIGH,
	D_UPPER_BIG,
	D_EMPTY,
	D_OV_ZERO,
	D_OV_HUGE,
	D_PTR_END,
	D_PTR_LOW,
	D_KSIZE,
	D_NFLAGS,
	D_DSIZE,
	D_CHILD_OUT,
	D_CHILD_SELF,
	D_BIG_OUT,
	D_BIG_SIZE,
	D_REC_SIZE,
	D_REC_ROOT,
	D_REC_DEPTH,
	D_SUBP_FLAGS,
	D_SUBP_LOWER,
	D__N
};
static const char *const d_name[] = {"page number",
                                     "page flags",
                                     "odd lower bound",
                                     "lower above upper",
                                     "upper past the end",
                                     "no entries",
                                     "no overflow pages",
                                     "2^31 overflow pages",
                                     "node at the page end",
                                     "node below upper",
                                     "key size 65535",
                                     "bad node flags",
                                     "value size 16 MB",
                                     "child out of range",
                                     "child is its parent",
                                     "overflow out of range",
                                     "value larger than its run",
                                     "record size 47",
                                     "root out of range",
                                     "depth off by one",
                                     "sub-page flags",
                                     "sub-page lower bound"};

/* Damage d at l, as bytes to write at *off; 0 if d does not apply. */
static size_t aim(const fmap *m, const loc *l, int d, size_t *off, uint8_t *b)
{
	const uint8_t *pg = m->f + l->pgno * m->ps;
	size_t base = l->pgno * m->ps;
	int page = l->kind <= L_OVER, tree = l->kind <= L_LEAF2;
	unsigned lower = g16(pg + 12), upper = g16(pg + 14);
	unsigned body =
	        l->off + 8 + (l->kind >= L_CHILD ? g16(pg + l->off + 6) : 0);
	switch (d) {
	case D_PGNO:
		if (!page)
			return 0;
		*off = base;
		s64(b, l->pgno + 1);
		return 8;
	case D_FLAGS: {
		static const uint16_t to[] = {P_LEAF, P_BRANCH, P_LEAF, P_LEAF};
		if (!page)
			return 0;
		*off = base + 10;
		s16(b, to[l->kind]);
		return 2;
	}
	case D_LOWER_ODD:
	case D_LOWER_HIGH:
	case D_EMPTY:
		if (!tree)
			return 0;
		*off = base + 12;
		s16(b, d == D_LOWER_ODD ? lower + 1
		       : d == D_EMPTY   ? 16
		                        : upper + 2);
		return 2;
	case D_UPPER_BIG:
		if (!tree)
			return 0;
		*off = base + 14;
		s16(b, (uint16_t)(m->ps + 2));
		return 2;
	case D_OV_ZERO:
	case D_OV_HUGE:
		if (l->kind != L_OVER)
			return 0;
		*off = base + 12;
		s32(b, d == D_OV_ZERO ? 0 : 0x7fffffffu);
		return 4;
	case D_PTR_END:
	case D_PTR_LOW:
		if (page)
			return 0;
		*off = base + 16 + 2 * l->idx;
		s16(b, d == D_PTR_END ? m->ps - 4 : upper - 2);
		return 2;
	case D_KSIZE:
		if (page)
			return 0;
		*off = base + l->off + 6;
		s16(b, 0xffff);
		return 2;
	case D_NFLAGS:
		if (page)
			return 0;
		*off = base + l->off + 4;
		s16(b, 0x0008);
		return 2;
	case D_DSIZE:
		if (l->kind != L_VAL)
			return 0;
		*off = base + l->off;
		s32(b, 0x00ffffffu);
		return 4;
	case D_CHILD_OUT:
	case D_CHILD_SELF:
		if (l->kind != L_CHILD)
			return 0;
		*off = base + l->off;
		s32(b, (uint32_t)(d == D_CHILD_OUT ? m->last + 7 : l->pgno));
		return 4;
	case D_BIG_OUT:
		if (l->kind != L_BIG)
			return 0;
		*off = base + body;
		s64(b, m->last + 3);
		return 8;
	case D_BIG_SIZE: {
		if (l->kind != L_BIG)
			return 0;
		uint64_t ov = g64(pg + body);
		*off = base + l->off;
		s32(b, g32(m->f + ov * m->ps + 12) * m->ps);
		return 4;
	}
	case D_REC_SIZE:
		if (l->kind != L_REC && l->kind != L_DUPREC)
			return 0;
		*off = base + l->off;
		s32(b, 47);
		return 4;
	case D_REC_ROOT:
		if (l->kind != L_REC && l->kind != L_DUPREC)
			return 0;
		*off = base + body + 40;
		s64(b, m->last + 3);
		return 8;
	case D_REC_DEPTH:
		if ((l->kind != L_REC && l->kind != L_DUPREC) ||
		    g64(pg + body + 40) == UINT64_MAX)
			return 0;
		*off = base + body + 6;
		s16(b, g16(pg + body + 6) + 1);
		return 2;
	case D_SUBP_FLAGS:
	case D_SUBP_LOWER:
		if (l->kind != L_SUBP)
			return 0;
		*off = base + body + (d == D_SUBP_FLAGS ? 10 : 12);
		s16(b, d == D_SUBP_FLAGS ? P_BRANCH : 17);
		return 2;
	}
	(void)lower;
	return 0;
}

/* Every aimed damage at a sample of every kind of place: LB_ECORRUPT with
 * the page named, from the full check. */
static void aimed(const char *dir, const char *label)
{
	char *file = th_path(dir, "data.mdb");
	fmap m;
	unsigned long cases = 0;
	fmap_build(&m, file);
	for (int kind = 0; kind < L__N; kind++) {
		size_t nk = 0, seen = 0;
		for (size_t i = 0; i < m.nv; i++)
			nk += m.v[i].kind == kind;
		for (size_t i = 0; i < m.nv; i++) {
			const loc *l = &m.v[i];
			if (l->kind != kind)
				continue;
			/* about six places of each kind, spread out */
			if (nk > 6 && (seen++ % (nk / 6)) != 0)
				continue;
			for (int d = 0; d < D__N; d++) {
				uint8_t b[8];
				size_t off, n = aim(&m, l, d, &off, b);
				if (!n)
					continue;
				patch(file, off, b, n);
				int rc = check_dir(dir, FULL);
				const char *msg = lb_errmsg();
				if (rc != LB_ECORRUPT || !strstr(msg, "page"))
					fail_msg("%s: %s of the %s at page "
					         "%" PRIu64 " +%u: %d (%s)",
					         label, d_name[d], l_name[kind],
					         l->pgno, l->off, rc, msg);
				patch(file, off, m.f + off, n);
				cases++;
			}
		}
	}
	printf("%s: %lu aimed damages, each reported\n", label, cases);
	/* the newest meta page's roots, depth, count and last page */
	{
		size_t mb = m.meta * m.ps;
		struct {
			size_t off;
			uint64_t v;
			size_t n;
		} md[] = {
		        {mb + 128, m.last + 3, 8}, /* main root */
		        {mb + 80, m.last + 3, 8},  /* free-list root */
		        {mb + 94, g16(m.f + mb + 94) + 1, 2},   /* main depth */
		        {mb + 120, g64(m.f + mb + 120) + 1, 8}, /* entries */
		        /* a last page past what the file could leave
		         * unwritten (meta_usable's bound) */
		        {mb + 136, 4 * (m.n / m.ps) + 4096 + 10, 8},
		};
		for (size_t i = 0; i < sizeof md / sizeof md[0]; i++) {
			uint8_t b[8];
			if (md[i].n == 2)
				s16(b, (uint16_t)md[i].v);
			else
				s64(b, md[i].v);
			patch(file, md[i].off, b, md[i].n);
			int rc = check_dir(dir, FULL);
			/* LMDB may refuse a last page past the file itself */
			if (rc != LB_ECORRUPT && !(i == 4 && rc == 1))
				fail_msg("%s: meta field at %zu: %d (%s)",
				         label, md[i].off, rc, lb_errmsg());
			patch(file, md[i].off, m.f + md[i].off, md[i].n);
		}
	}
	te_rc(0, check_dir(dir, FULL));
	fmap_free(&m);
	free(file);
}

static void test_engine_pagecheck__aimed_damage(void **state)
{
	char *root = th_tmpdir(), *ref = build_reference(root, 9, 0);
	char *env = build_lmdb(root, 2);
	(void)state;
	aimed(ref, "logbook database");
	aimed(env, "LMDB environment");
	free(env);
	free(ref);
	th_rmrf(root);
	free(root);
}

/* Random bytes changed in page headers, node headers, node pointers,
 * anywhere in used pages, and in the meta page: the check answers 0 or
 * LB_ECORRUPT, and whatever it passes LMDB reads without crashing. */
static void random_damage(const char *dir, const char *label, uint64_t *rng,
                          long cases)
{
	char *file = th_path(dir, "data.mdb");
	fmap m;
	unsigned long caught[2] = {0, 0}, passed[2] = {0, 0}, refused = 0;
	size_t *pages, np = 0, *nodes, nn = 0;
	static const char *const cat_name[] = {"page header", "node header",
	                                       "node pointer", "used byte",
	                                       "meta page"};
	fmap_build(&m, file);
	pages = te_malloc(m.nv * sizeof *pages);
	nodes = te_malloc(m.nv * sizeof *nodes);
	for (size_t i = 0; i < m.nv; i++) {
		if (m.v[i].kind <= L_OVER)
			pages[np++] = i;
		else
			nodes[nn++] = i;
	}
	for (long c = 0; c < cases; c++) {
		int cat = (int)th_below(rng, 5);
		const loc *l;
		size_t off;
		switch (cat) {
		case 0:
			l = &m.v[pages[th_below(rng, np)]];
			off = l->pgno * m.ps + th_below(rng, 16);
			break;
		case 1:
			l = &m.v[nodes[th_below(rng, nn)]];
			off = l->pgno * m.ps + l->off + th_below(rng, 8);
			break;
		case 2:
			do
				l = &m.v[pages[th_below(rng, np)]];
			while (l->kind > L_LEAF);
			off = l->pgno * m.ps + 16 +
			      th_below(rng,
			               g16(m.f + l->pgno * m.ps + 12) - 16u);
			break;
		case 3: {
			uint64_t p;
			do
				p = 2 + th_below(rng, m.last - 1);
			while (!m.used[p]);
			off = p * m.ps + th_below(rng, m.ps);
			break;
		}
		default:
			off = m.meta * m.ps + 16 + th_below(rng, 136);
			break;
		}
		uint8_t was = m.f[off], now = (uint8_t)th_rand(rng);
		if (now == was)
			now ^= 0x80;
		patch(file, off, &now, 1);
		for (int mode = 0; mode < 2; mode++) {
			int rc = check_dir(dir, mode);
			if (rc == 1) {
				refused += mode;
				continue;
			}
			char wh[96];
			if (rc != 0 && rc != LB_ECORRUPT) {
				th_seed_report();
				fail_msg("%s: %s byte %zu (%s) = 0x%02x: %d "
				         "(%s)",
				         label, cat_name[cat], off,
				         where(&m, off, wh, sizeof wh), now, rc,
				         lb_errmsg());
			}
			if (rc == LB_ECORRUPT) {
				caught[mode]++;
				continue;
			}
			passed[mode]++;
			int sig = read_all_forked(dir, mode);
			if (sig) {
				th_seed_report();
				fail_msg("%s: %s byte %zu (%s) = 0x%02x passed "
				         "the %s check, then LMDB %s (signal "
				         "%d)",
				         label, cat_name[cat], off,
				         where(&m, off, wh, sizeof wh), now,
				         mode ? "full" : "open",
				         sig == SIGALRM ? "hung" : "crashed",
				         sig);
			}
		}
		patch(file, off, &was, 1);
	}
	printf("%s: %ld random changes: full check %lu reported, %lu passed "
	       "(LMDB read them all); open check %lu reported, %lu passed; "
	       "%lu refused by LMDB itself\n",
	       label, cases, caught[1], passed[1], caught[0], passed[0],
	       refused);
	free(pages);
	free(nodes);
	fmap_free(&m);
	free(file);
}

static void test_engine_pagecheck__random_damage(void **state)
{
	char *root = th_tmpdir(), *ref = build_reference(root, 10, 0);
	char *env = build_lmdb(root, 3);
	uint64_t rng = th_seed(0x9a6ec4ec);
	long cases = 150 * th_env_long("LB_DAMAGE_SCALE", 1);
	(void)state;
	random_damage(ref, "logbook database", &rng, cases);
	random_damage(env, "LMDB environment", &rng, cases);
	free(env);
	free(ref);
	th_rmrf(root);
	free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_pagecheck__clean_lmdb),
	        cmocka_unit_test(test_engine_pagecheck__clean_logbook),
	        cmocka_unit_test(test_engine_pagecheck__snapshots),
	        cmocka_unit_test(test_engine_pagecheck__concurrent_writer),
	        cmocka_unit_test(test_engine_pagecheck__unused_pages),
	        cmocka_unit_test(test_engine_pagecheck__metas),
	        cmocka_unit_test(test_engine_pagecheck__aimed_damage),
	        cmocka_unit_test(test_engine_pagecheck__random_damage),
	};
	return cmocka_run_group_tests_name("engine_pagecheck", tests, NULL,
	                                   NULL);
}
