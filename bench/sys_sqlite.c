/* SPDX-License-Identifier: MIT */
/*
 * sys_sqlite.c: the SQLite peer, WAL mode with the session extension.
 *
 * Tables: t(k BLOB PRIMARY KEY, v BLOB) and log(id INTEGER PRIMARY KEY,
 * cs BLOB). A batch is one transaction: a session attached to t records the
 * batch's INSERTs (new keys) and UPDATEs (earlier keys); its changeset is
 * stored in log in the same transaction, under the batch number.
 *
 * Rollback of batch i = sqlite3changeset_invert of its changeset, then
 * sqlite3changeset_apply in one transaction. Strict: every conflict is
 * counted and omitted, and if there was any the transaction is rolled back
 * (nothing written, as logbook does). Forced: a DATA or CONFLICT conflict
 * is replaced by the before-image, a NOTFOUND one omitted. Rollbacks are
 * not themselves logged. Replay applies every stored changeset in order to
 * an empty database, one transaction per changeset, without fsync until a
 * final checkpoint.
 *
 * Settings: journal_mode=WAL, synchronous=OFF (nosync) or FULL (--sync),
 * cache_size 64 MiB, everything else SQLite's default. Debian's libsqlite3
 * is built with SQLITE_ENABLE_SESSION and SQLITE_ENABLE_PREUPDATE_HOOK;
 * defining them here exposes the session prototypes in <sqlite3.h>.
 */
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "bench.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

typedef struct sq {
	const bk_cfg *cfg;
	sqlite3 *db;
	sqlite3_stmt *ins, *upd, *log, *begin, *commit;
	uint64_t log_bytes;
} sq;

static void check(sqlite3 *db, int rc, const char *what)
{
	if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		bk_die("sqlite: %s: %s (%d)", what,
		       db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
}

static void exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		bk_die("sqlite: %s: %s", sql, err ? err : "?");
}

static sqlite3_stmt *prep(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	check(db, sqlite3_prepare_v2(db, sql, -1, &st, NULL), sql);
	return st;
}

static void step_reset(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		check(db, rc == SQLITE_ROW ? SQLITE_MISUSE : rc, what);
	sqlite3_reset(st);
}

static sqlite3 *open_db(const bk_cfg *cfg, const char *dir)
{
	sqlite3 *db;
	if (bk_mkdir(dir) != 0)
		bk_die("mkdir %s failed", dir);
	char *path = bk_path(dir, "bench.sqlite");
	check(NULL, sqlite3_open(path, &db), path);
	free(path);
	exec(db, "PRAGMA journal_mode=WAL");
	exec(db,
	     cfg->sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
	exec(db, "PRAGMA cache_size=-65536");
	exec(db, "CREATE TABLE IF NOT EXISTS t(k BLOB PRIMARY KEY, v BLOB);"
	         "CREATE TABLE IF NOT EXISTS log(id INTEGER PRIMARY KEY, "
	         "cs BLOB NOT NULL)");
	return db;
}

static int sq_open(const bk_cfg *cfg, const char *dir, int schema, void **h)
{
	(void)schema;
	sq *s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	s->cfg = cfg;
	s->db = open_db(cfg, dir);
	s->ins = prep(s->db, "INSERT INTO t(k, v) VALUES (?1, ?2)");
	s->upd = prep(s->db, "UPDATE t SET v = ?2 WHERE k = ?1");
	s->log = prep(s->db, "INSERT INTO log(cs) VALUES (?1)");
	s->begin = prep(s->db, "BEGIN");
	s->commit = prep(s->db, "COMMIT");
	*h = s;
	return 0;
}

static void sq_close(void *h)
{
	sq *s = h;
	if (!s)
		return;
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->upd);
	sqlite3_finalize(s->log);
	sqlite3_finalize(s->begin);
	sqlite3_finalize(s->commit);
	check(s->db, sqlite3_close(s->db), "close");
	free(s);
}

static int sq_commit(void *h, const bk_batch *b)
{
	sq *s = h;
	sqlite3_session *sess;
	step_reset(s->db, s->begin, "BEGIN");
	check(s->db, sqlite3session_create(s->db, "main", &sess),
	      "session_create");
	check(s->db, sqlite3session_attach(sess, "t"), "session_attach");
	for (size_t i = 0; i < b->n; i++) {
		const bk_rec *r = &b->recs[i];
		sqlite3_stmt *st = r->op == OP_INSERT ? s->ins : s->upd;
		sqlite3_bind_blob(st, 1, r->key, BK_KEY_LEN, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, b->arena + r->voff, (int)r->vlen,
		                  SQLITE_STATIC);
		step_reset(s->db, st, "write");
		if (r->op == OP_UPDATE && sqlite3_changes(s->db) != 1)
			bk_die("sqlite: update of a missing key");
	}
	int n = 0;
	void *cs = NULL;
	check(s->db, sqlite3session_changeset(sess, &n, &cs), "changeset");
	sqlite3_bind_blob(s->log, 1, cs, n, SQLITE_STATIC);
	step_reset(s->db, s->log, "INSERT log");
	sqlite3_free(cs);
	sqlite3session_delete(sess);
	step_reset(s->db, s->commit, "COMMIT");
	s->log_bytes += (uint64_t)n;
	return 0;
}

typedef struct apply_ctx {
	int force;
	uint64_t conflicts;
} apply_ctx;

static int on_conflict(void *p, int kind, sqlite3_changeset_iter *it)
{
	apply_ctx *a = p;
	(void)it;
	a->conflicts++;
	if (!a->force)
		return SQLITE_CHANGESET_OMIT;
	if (kind == SQLITE_CHANGESET_DATA || kind == SQLITE_CHANGESET_CONFLICT)
		return SQLITE_CHANGESET_REPLACE;
	return SQLITE_CHANGESET_OMIT;
}

/* Roll back batch id (1-based). Returns the number of conflicts; with
 * strict mode and conflicts, nothing was written. */
static uint64_t sq_rollback(sq *s, uint64_t id, int force)
{
	sqlite3_stmt *get = prep(s->db, "SELECT cs FROM log WHERE id = ?1");
	sqlite3_bind_int64(get, 1, (sqlite3_int64)id);
	if (sqlite3_step(get) != SQLITE_ROW)
		bk_die("sqlite: no changeset %llu", (unsigned long long)id);
	int ni = 0;
	void *inv = NULL;
	apply_ctx a = {force, 0};
	check(s->db,
	      sqlite3changeset_invert(sqlite3_column_bytes(get, 0),
	                              sqlite3_column_blob(get, 0), &ni, &inv),
	      "invert");
	sqlite3_reset(get);
	sqlite3_finalize(get);
	exec(s->db, "BEGIN");
	check(s->db,
	      sqlite3changeset_apply(s->db, ni, inv, NULL, on_conflict, &a),
	      "apply");
	exec(s->db, a.conflicts && !force ? "ROLLBACK" : "COMMIT");
	sqlite3_free(inv);
	return a.conflicts;
}

static uint64_t sq_replay(sq *s, const char *dir)
{
	/* A replay builds a new database: no fsync per changeset, one
	 * checkpoint with fsync at the end. */
	bk_cfg nosync = *s->cfg;
	nosync.sync = 0;
	sqlite3 *d = open_db(&nosync, dir);
	sqlite3_stmt *st = prep(s->db, "SELECT cs FROM log ORDER BY id");
	uint64_t batches = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		apply_ctx a = {0, 0};
		exec(d, "BEGIN");
		check(d,
		      sqlite3changeset_apply(d, sqlite3_column_bytes(st, 0),
		                             (void *)sqlite3_column_blob(st, 0),
		                             NULL, on_conflict, &a),
		      "apply");
		exec(d, "COMMIT");
		if (a.conflicts)
			bk_die("sqlite: conflict during replay");
		batches++;
	}
	check(s->db, rc, "SELECT log");
	sqlite3_finalize(st);
	exec(d, "PRAGMA synchronous=FULL");
	exec(d, "PRAGMA wal_checkpoint(TRUNCATE)");
	check(d, sqlite3_close(d), "close");
	return batches;
}

static void sq_gets(sq *s, const bk_workload *w, bk_meas *m)
{
	sqlite3_stmt *st = prep(s->db, "SELECT v FROM t WHERE k = ?1");
	char key[BK_KEY_LEN];
	uint64_t sum = 0;
	double t0 = bk_now();
	for (uint64_t i = 0; i < w->nreads; i++) {
		bk_key_w(w, w->reads[i], key);
		sqlite3_bind_blob(st, 1, key, BK_KEY_LEN, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW)
			bk_die("sqlite: key missing");
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		void *copy = malloc(n);
		memcpy(copy, sqlite3_column_blob(st, 0), n);
		sum += ((uint8_t *)copy)[n / 2];
		free(copy);
		sqlite3_reset(st);
	}
	bk_meas_set(m, bk_now() - t0, w->nreads, 0);
	sqlite3_finalize(st);
	bk_sink += sum;
}

static void sq_scan(sq *s, const bk_workload *w, bk_meas *m)
{
	uint64_t n = 0, bytes = 0;
	double t0 = bk_now();
	sqlite3_stmt *st = prep(s->db, "SELECT k, v FROM t ORDER BY k");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const uint8_t *v = sqlite3_column_blob(st, 1);
		bytes += (uint64_t)sqlite3_column_bytes(st, 0) +
		         (uint64_t)sqlite3_column_bytes(st, 1) + v[0];
		n++;
	}
	sqlite3_finalize(st);
	bk_meas_set(m, bk_now() - t0, n, bytes);
	if (n != w->keys)
		bk_note(m, "scan saw %llu keys, expected %llu",
		        (unsigned long long)n, (unsigned long long)w->keys);
}

static int sq_verify_values(sq *s, const bk_workload *w)
{
	sqlite3_stmt *st = prep(s->db, "SELECT v FROM t WHERE k = ?1");
	char key[BK_KEY_LEN];
	int bad = 0;
	uint64_t step = w->keys / 1000 + 1;
	for (uint64_t i = 0; i < w->keys; i += step) {
		bk_key_w(w, i, key);
		sqlite3_bind_blob(st, 1, key, BK_KEY_LEN, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW ||
		    bk_workload_check(w, i, sqlite3_column_blob(st, 0),
		                      (size_t)sqlite3_column_bytes(st, 0)) != 0)
			bad++;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return bad;
}

static int sq_run(const bk_ctx *c, bk_run *out)
{
	const bk_workload *w = c->w;
	char *db = bk_path(c->dir, "db");
	sq *s;
	sq_open(c->cfg, db, 0, (void **)&s);
	if (bk_commit_all(&bk_sys_sqlite, s, w, out, NULL, NULL) != 0)
		bk_die("sqlite: commit failed");
	if (sq_verify_values(s, w) != 0)
		bk_note(&out->ph[PH_COMMIT], "WRONG VALUES after commit");
	out->has_log = 1;
	out->log_raw = out->log_stored = s->log_bytes;
	sq_close(s);
	out->disk_bytes = bk_du(db);

	sq_open(c->cfg, db, 0, (void **)&s);
	if (c->phases & 1u << PH_GET)
		sq_gets(s, w, &out->ph[PH_GET]);
	if (c->phases & 1u << PH_SCAN)
		sq_scan(s, w, &out->ph[PH_SCAN]);
	if (c->phases & 1u << PH_REPLAY) {
		char *rd = bk_path(c->dir, "replay");
		double t0 = bk_now();
		sq_replay(s, rd);
		bk_meas_set(&out->ph[PH_REPLAY], bk_now() - t0, w->n, 0);
		bk_rmrf(rd);
		free(rd);
	}
	sq_close(s);

	/* Rollbacks, each on a fresh copy of the committed database. */
	static const int rb[3] = {PH_RB_LAST, PH_RB_MID, PH_RB_FORCE};
	for (int i = 0; i < 3; i++) {
		if (!(c->phases & 1u << rb[i]))
			continue;
		char *cp = bk_path(c->dir, "copy");
		if (bk_copy_dir(db, cp) != 0)
			bk_die("copy of %s failed", db);
		sq_open(c->cfg, cp, 0, (void **)&s);
		uint64_t bi = rb[i] == PH_RB_LAST ? w->nbatches - 1 : w->mid;
		double t0 = bk_now();
		uint64_t conflicts =
		        sq_rollback(s, bi + 1, rb[i] == PH_RB_FORCE);
		bk_meas *m = &out->ph[rb[i]];
		bk_meas_set(m, bk_now() - t0,
		            bk_workload_records(w, bi, bi + 1), 0);
		if (conflicts)
			bk_note(m, "%s %llu conflicts",
			        rb[i] == PH_RB_FORCE ? "replaced" : "refused:",
			        (unsigned long long)conflicts);
		sq_close(s);
		bk_rmrf(cp);
		free(cp);
	}
	if (!c->cfg->keep)
		bk_rmrf(db);
	free(db);
	return 0;
}

const bk_system bk_sys_sqlite = {
        .id = SYS_SQLITE,
        .phases = 1u << PH_COMMIT | 1u << PH_RB_LAST | 1u << PH_RB_MID |
                  1u << PH_RB_FORCE | 1u << PH_REPLAY | 1u << PH_GET |
                  1u << PH_SCAN | 1u << PH_RSS,
        .open = sq_open,
        .commit = sq_commit,
        .close = sq_close,
        .run = sq_run,
};
