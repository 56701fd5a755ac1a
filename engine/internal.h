/* SPDX-License-Identifier: MIT */
/*
 * internal.h: the engine's private structures, shared by the engine's sources.
 *
 * Locking, from outermost to innermost:
 *   db->wlock    one open batch (or rollback, checkpoint registration,
 *                prune) at a time in this process; LMDB's own writer lock
 *                serialises processes.
 *   db->maplock  read-held by every live LMDB transaction of this process
 *                (batches, snapshots, lb_get); write-held only to resize the
 *                map or to reopen a failed environment (db.c), which need
 *                no transaction to be live.
 *   db->tlock    protects the table list; held only for lookups/publishing.
 *   zw->mu       the compression worker's state (zwork.c); taken under
 *                wlock by the batch, and by the worker alone.
 * A reader that finds the environment failed try-locks wlock to reopen it
 * (env_recover), never waits for it. While a grower waits for maplock
 * (db->growers), new outermost readers hold back briefly (lb__read_begin).
 */
#ifndef LB_ENGINE_INTERNAL_H
#define LB_ENGINE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <stdint.h>

#include "logbook.h"
#include "wal/hset.h"
#include "wal/wal.h"

#define LB__DEFAULT_SEGMENT (128u << 10)
#define LB__DEFAULT_MAP ((uint64_t)1 << 30)
#define LB__TID_HASHED 0x80000000u
#define LB__IKEY_MAX (4 + LB_KEY_MAX)

/* A table as the engine knows it. Never freed before lb_close(): readers
 * may hold the pointer; a table removed by a rollback is marked dropped. */
typedef struct lb_table {
	char name[LB_TABLE_NAME_MAX + 1];
	uint32_t tid;
	MDB_dbi dbi;
	int dropped;
	int dbi_closed; /* removed, and its handle closed to free the slot */
	lb_wal_schema schema; /* decoded schema (has_schema 0: opaque) */
	lb_buf encoded;       /* its encoding, as logged */
	lb_field *pubfields;  /* public view for lb_tables() */
	lb_schema pub;
	/* foreign keys: index into schema.fields of each ref field, and the
	 * referenced table of each (resolved when the table is loaded) */
	uint32_t nrefs;
	uint32_t *ref_field;
	struct lb_table **ref_table;
	int referenced; /* some schema has a ref to this table */
} lb_table;

struct lb_db {
	MDB_env *env;
	char *path;
	unsigned flags;
	int level;
	size_t segsize;
	MDB_dbi meta, batches, wal, ckpts, refs, undo, victims, gone;
	pthread_mutex_t wlock;
	pthread_rwlock_t maplock;
	pthread_mutex_t tlock;
	lb_table **tables;
	size_t ntables, tcap;
	/* the catalog generation the table list was loaded at (under
	 * tlock), and the LMDB transaction id it was last found current in
	 * (catalog.c); catlock serialises loading (LMDB's dbi opening) */
	uint64_t catalog;
	atomic_size_t cat_txnid;
	pthread_mutex_t catlock;
	/* the last committed batch as this process last saw it */
	uint64_t last_id;
	uint8_t last_hash[32];
	lb_segw *segw; /* the open segment: segw0, or the worker's writer
	                  (zwork.c); both reused by every batch */
	lb_segw segw0;
	struct lb_zw *zw; /* compresses segments meanwhile (zwork.c) */
	int zw_failed;    /* the worker could not start: compress inline */
	lb_segr segr;     /* reused by batch-time log reads under wlock */
	struct lb_ra *ra; /* reads a rollback's next segment (readahead.c) */
	int ra_failed;    /* that worker could not start: read inline */
	/* reopening a failed environment (db.c); env is NULL after a failed
	 * reopen, until the next one succeeds */
	atomic_int env_check; /* a commit failed, or a reader found the
	                         environment failed: check it before using */
	atomic_int growers;   /* threads waiting to take maplock for writing */
	/* a read-only transaction of env, reset (it holds a reader slot
	 * but no snapshot), for the next read to renew instead of beginning
	 * one (db.c: lb__read_txn); taken and put back with maplock held
	 * for reading, dropped with it held for writing before env is
	 * resized or closed */
	_Atomic(MDB_txn *) spare_rtxn;
	size_t env_map; /* the map size to reopen env with */
	int registered; /* in db.c's registry of open files */
	/* the cache of recently read batches of lb_get_asof and of history
	 * walks (feed.c), made on first use; freed by lb_close */
	atomic_uintptr_t asof_cache;
	/* the id of the write transaction this process has live (0: none),
	 * also held as a lock on that byte of data.mdb (lmdb.c: lb__wtxn_*) */
	_Atomic uint64_t wtxn;
};

/* The largest key of a sub-database in a batch's transaction. */
typedef struct lb_tail {
	int known; /* 0: not looked up yet in this transaction */
	int empty; /* the sub-database holds no key */
	size_t len;
	uint8_t key[LB__IKEY_MAX];
} lb_tail;

/* A pending foreign-key check, evaluated at commit. */
enum { LB__PEND_REF = 1, LB__PEND_DEL = 2 };

struct lb_batch {
	lb_db *db;
	MDB_txn *txn;
	pthread_t owner;
	uint64_t id;
	char label[LB_LABEL_MAX + 1];
	uint64_t records, raw_bytes, stored_bytes;
	uint32_t nseg;
	lb_buf seghashes; /* 32 bytes per flushed segment */
	uint64_t undoes;
	/* an undo batch: LB__UNDO_ROLLBACK, _FORCED or _TO (0 for an
	 * ordinary batch); the batches it undoes are `marks` (for _TO, every
	 * batch after `undoes`), written to `_victims` and `_undo` at commit
	 * (undo.c) */
	int undo_kind;
	/* the catalog generation after this batch's table changes (0: none),
	 * and whether the batch holds db->catlock (it opened a handle) */
	uint64_t catalog;
	int catlocked;
	/* no other thread or process uses the database (a replay's new one):
	 * the handles of tables it removes are closed at commit, so that
	 * their slots serve the tables it creates next */
	int private_db;
	/* an undoing batch of kind 1 (FORMAT.md §2.5): it wrote a record for
	 * every record it undid; skipped: a restore found the key to delete
	 * absent and wrote nothing (then it is not of kind 1: rollback.c
	 * redoes the batch as kind 2) */
	int implied, skipped;
	int poisoned; /* an error left the transaction unusable: rc */
	int fk_mode;  /* 0 normal; set by rollback to name referrers' batches */
	/* issues */
	lb_issue *issues;
	size_t nissues, nissues_total, icap;
	/* pending FK checks: packed entries, see validate.c */
	lb_buf pending;
	/* tables created or dropped in this batch, published at commit */
	struct lb_tchange {
		lb_table *t;
		int drop;
	} * tchanges;
	size_t ntchanges;
	lb_buf scratch; /* copy of a before-image while indexes change */
	/* the ops applied so far, to redo them after growing the map
	 * (grow.c); spilled to an unlinked temporary file past a size */
	lb_buf jbuf;
	void *jfile;
	int mapfull; /* the transaction failed because the map is full */
	/* the batches this undo batch undoes (undo_kind) */
	uint64_t *marks;
	size_t nmarks, mcap;
	/* a cursor on each table's dbi, by table id, opened on first use in
	 * txn (LMDB frees them when the transaction ends) */
	MDB_cursor **tcur;
	/* LMDB reuses one MDB_txn for every write transaction of an
	 * environment: transactions are told apart by txn_gen, which
	 * lb__batch_txn() increments */
	uint64_t txn_gen, tcur_gen;
	/* hash of the batch before b->id in this transaction: the last
	 * committed one, or the last one chained (lb__batch_chain_hdr) */
	uint8_t chain_hash[32];
	size_t ntcur;
	/* the largest key of each table (by table id), as far as this
	 * transaction knows, so that a key past it is appended (MDB_APPEND:
	 * no descent, full pages) instead of searched for */
	struct lb_tail *tail;
	/* the keys this batch changed in its transaction (ikey -> the prev of
	 * its first record of the key), for lb__batch_own_prev; own_gen and
	 * own_id tell which transaction and batch (a replay chains several
	 * batches in one) it holds */
	lb_hset own;
	uint64_t own_gen, own_id;
	/* whether `_gone` holds anything, as far as this transaction knows
	 * (gone_gen == txn_gen) */
	uint64_t gone_gen;
	int gone_any;
	/* a cursor on `_gone` for its puts, opened on first use in txn (like
	 * tcur, reset by txn_fresh) */
	MDB_cursor *gone_cur;
	/* a replayed record's prev, checked against the key's last change
	 * when check_prev (lb__replay_rec) */
	int check_prev;
	uint64_t want_prev;
	/* lb__batch_seek's answer, which the next lb__apply of the same key
	 * uses instead of searching again; any write clears it */
	lb_table *seek_t;
	int seek_found;
	MDB_val seek_val;
	size_t seek_klen;
	uint8_t seek_key[LB_KEY_MAX];
};

/* ---- lmdb.c: the LMDB boundary (calls nothing else of the engine) ------- */
/* Translate LMDB's (or errno's) code mrc for what: the LB_E* code, with a
 * detail naming what. */
LB__WUR int lb__mdb_fail(int mrc, const char *what);
/* LB_EFULL instead of LB_EIO when the database's file system is full. */
LB__WUR int lb__full_or_io(lb_db *db, int rc);
/* Set by lb__mdb_fail: was that failure LMDB's map being full (which
 * growing the map cures) rather than the disk? */
extern _Thread_local int lb__mapfull;
/* Write transactions of db->env, marked while live (DESIGN.md §7: a commit
 * written but not published). Begin: LMDB's code; once it succeeded, the
 * transaction's id is in db->wtxn and an OFD lock on that byte of data.mdb
 * says to other processes that its writer lives. Commit and abort end the
 * mark; commit returns LMDB's code. */
int lb__wtxn_begin(lb_db *db, MDB_txn **txn);
int lb__wtxn_commit(lb_db *db, MDB_txn *txn);
void lb__wtxn_abort(lb_db *db, MDB_txn *txn);
/* Does a live writer, of this process or another, hold transaction id
 * txnid? */
int lb__wtxn_live(lb_db *db, uint64_t txnid);
/* Return rc with the current detail prefixed by a formatted context. */
LB__WUR int lb__rewrap(int rc, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;

/* ---- keys.c: keys, internal keys, keys in messages ----------------------- */
/* Check a table name and key as every op does: LB_EINVAL, LB_ETOOBIG. */
LB__WUR int lb__key_args(const char *table, const void *key, size_t klen);
static inline void lb__be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}
static inline uint64_t lb__get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}
static inline void lb__be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline uint32_t lb__get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}
/* ikey(tid, key) of FORMAT.md: returns its length, written to out
 * (LB__IKEY_MAX bytes); 0 when hashing a long key failed (lb_errmsg() says
 * so; the caller answers LB_ENOMEM). */
LB__WUR size_t lb__ikey(uint8_t *out, uint32_t tid, const void *key,
                        size_t klen);
/* Printable form of a key for messages, cut to fit cap. */
const char *lb__key_text(const void *key, size_t klen, char *buf, size_t cap);

/* ---- catalog.c: the tables a handle knows -------------------------------- */
/* The LMDB handle and table id of db's table named by the len bytes at
 * name (not dropped), read under tlock, for a thread that holds no
 * lb_table (the read-ahead worker): 1, or 0 when there is no such table. */
int lb__table_dbi(lb_db *db, const char *name, size_t len, MDB_dbi *dbi,
                  uint32_t *tid);
lb_table *lb__table_find(lb_db *db, const char *name);
void lb__table_free(lb_table *t);
/* Build an lb_table from its stored encoding (schema decoded, refs resolved
 * against db's tables). */
LB__WUR int lb__table_make(lb_db *db, lb_batch *b, const char *name,
                           uint32_t tid, const void *enc, size_t enclen,
                           lb_table **out);
LB__WUR int lb__tables_publish(lb_db *db, lb_table *t); /* under wlock */
/* Room in the table list for n more tables (under wlock): publishing
 * them then does not allocate. LB_ENOMEM. */
LB__WUR int lb__tables_reserve(lb_db *db, size_t n);
#define LB__CATALOG_TRIES 16
/* LMDB handles an environment may have open: the engine's sub-databases
 * and one per table, live or removed (FORMAT.md §2) */
#define LB__MAXDBS 1024
/* Before a table is created: if the handles of removed tables fill the
 * environment's slots, close them (only while no transaction of this
 * process is live, which it waits for briefly; else they stay). */
void lb__catalog_free_slots(lb_db *db);
/* _meta's catalog generation in txn. */
LB__WUR int lb__catalog_get(lb_db *db, MDB_txn *txn, uint64_t *gen);
/* Increment it in b's transaction (a table created or removed). */
LB__WUR int lb__catalog_bump(lb_batch *b);
/* Bring db's table list to txn's catalog (open, and reload). *first_new
 * (may be NULL): the index of the first table it added. */
LB__WUR int lb__catalog_load(lb_db *db, MDB_txn *txn, size_t *first_new);
/* Is db's table list the catalog of txn? *moved = 1 when not. */
LB__WUR int lb__catalog_sync(lb_db *db, MDB_txn *txn, int *moved);
/* Load the list again from the newest committed catalog. LB__ERESIZED
 * (never returned to users): another process grew the map; adopt it
 * (lb__map_adopt, with no read hold of this thread) and try again. */
#define LB__ERESIZED (-1000)
LB__WUR int lb__catalog_reload(lb_db *db);
/* LB_ENOTFOUND for a table name the catalog does not hold, saying whether
 * it was removed (this handle knew it) or never was. */
LB__WUR int lb__no_table(lb_db *db, const char *name);

/* A table as the batch sees it (created in it, or published). */
lb_table *lb__batch_table(lb_batch *b, const char *name);
/* The table of id tid as the batch sees it (NULL if none). */
lb_table *lb__batch_table_by_tid(lb_batch *b, uint32_t tid);

/* ---- db.c ---------------------------------------------------------------- */
LB__WUR int lb__grow_map_if_needed(lb_db *db);
/* Set the map to nsize (0: the size the data file's meta page gives, which
 * another process grew it to), with maplock held for writing. On failure
 * the environment is closed (LMDB left it unmapped) and reopened at its
 * old size by the next transaction: LB_ENOMEM when the address space ran
 * out. */
LB__WUR int lb__map_resize(lb_db *db, uint64_t nsize);
/* Adopt the size another process grew the map to (mdb_txn_begin said
 * MDB_MAP_RESIZED): waits up to LB__ADOPT_WAIT_S for this process's
 * transactions to end; the caller holds none. */
#define LB__ADOPT_WAIT_S 10
LB__WUR int lb__map_adopt(lb_db *db);
/* Begin a write transaction with maplock held for reading (by the caller,
 * who holds wlock), adopting a map grown by another process; LMDB's
 * code. */
LB__WUR int lb__write_txn(lb_db *db, MDB_txn **txn);
/* How often a read tries to publish the commit of a writer that died
 * (db.c), 0.1 ms apart while a writer of this process holds wlock. */
#define LB__PUBLISH_TRIES 500
/* Run fn(db, txn, ctx) in a write transaction of its own under wlock
 * (growing the map first if needed), committing it if fn returns >= 0;
 * begin and commit name the step in a failure's detail. The caller holds
 * no lock. */
LB__WUR int lb__write_run(lb_db *db, int (*fn)(lb_db *, MDB_txn *, void *),
                          void *ctx, const char *begin, const char *commit);
/* Take maplock for writing: once (until NULL) or waiting until then. While
 * a thread waits, new outermost readers of this process hold back (for at
 * most LB__READER_YIELD_MS), so a stream of short snapshots cannot starve
 * it. 0 when taken. */
LB__WUR int lb__maplock_write(lb_db *db, const struct timespec *until);
void lb__read_begin(lb_db *db);
void lb__read_end(lb_db *db);
/* A read-only transaction holding maplock for reading, and its end. */
LB__WUR int lb__read_txn(lb_db *db, MDB_txn **txn);
void lb__read_done(lb_db *db, MDB_txn *txn);
/* Abort the spare read-only transaction kept by lb__read_done, if any:
 * before env is resized or closed, with maplock held for writing (or no
 * other thread using db). */
void lb__spare_drop(lb_db *db);

/* ---- db.c: reopening an environment that LMDB marked failed ---------------
 * When LMDB cannot write its meta page at the end of a commit it marks its
 * environment failed (MDB_PANIC) and refuses every later transaction of the
 * process, reads included. The engine then closes the environment and opens
 * it again on the same files, holding wlock and maplock for writing (so with
 * no transaction of the process live; it waits up to a second for them, else
 * the call fails with LB_EIO and the next one tries again), finds every
 * sub-database and table again and rereads the last batch. lb__read_txn()
 * does it when a read meets the failure, lb__grow_map_if_needed() before a
 * write transaction once lb__full_or_io() (which every failed commit calls)
 * has set env_check. */
/* maplock for reading with db->env usable, reopened first if it failed;
 * release with lb__read_end(). For code that uses db->env directly. */
LB__WUR int lb__read_env(lb_db *db);

/* ---- replay.c ------------------------------------------------------------ */
/* Tests only: initial map of a replay's new database (0: the source's). */
extern uint64_t lb__replay_map;

/* ---- verify.c ------------------------------------------------------------ */
/* Tests only: the next checks of lb_verify() that give up as when another
 * process grew the database during them (LB_EBUSY), counted down. */
extern atomic_int lb__verify_busy;

/* ---- worker.c ------------------------------------------------------------ */
/* A helper thread (zwork.c, readahead.c) that runs one job at a time for
 * the thread that owns it: job(arg), on data the owner fills before
 * submitting and reads after collecting (the thread touches it only in
 * between). mu guards state, hold, quit and the result; cv signals both
 * ways. */
typedef struct lb_worker {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int (*job)(void *arg);
	void *arg;
	int state;     /* idle, queued, running or done (worker.c) */
	int hold;      /* a queued job is left to the owner to take back */
	int quit;      /* lb__worker_stop asks the thread to return */
	int rc;        /* the job's result, once done */
	char err[512]; /* its lb_errmsg() detail when rc < 0 */
} lb_worker;
/* how lb__worker_collect collects */
enum {
	LB__WORKER_WAIT,      /* wait for the job to end */
	LB__WORKER_TAKE_BACK, /* take back a job the thread has not started */
	LB__WORKER_POLL,      /* collect only a job that ended */
};
/* collect's results when the job was taken back, not run by the thread,
 * and (a poll) when it is queued or running */
#define LB__WORKER_TAKEN 2
#define LB__WORKER_BUSY 3
/* Make w's lock and condition and start the thread that runs job(arg): 0,
 * or -1 when the thread cannot be made (nothing is left to undo). */
int lb__worker_start(lb_worker *w, int (*job)(void *), void *arg);
/* Set quit, wake the thread, join it, and destroy the lock and
 * condition (a job not collected is dropped). */
void lb__worker_stop(lb_worker *w);
/* Queue the job; the worker must be idle (the last job collected or
 * drained). hold: the thread leaves it queued, for collect to take back
 * (tests). */
void lb__worker_submit(lb_worker *w, int hold);
/* Record the job as done with rc < 0 and lb_errmsg()'s detail, without
 * running it: a failure met while preparing it, reported at collect. */
void lb__worker_fail(lb_worker *w, int rc);
/* Wait for the job: 0 if none was submitted, 1 when it succeeded, its
 * failure (negative, with its detail) when it failed. how: LB__WORKER_WAIT;
 * LB__WORKER_TAKE_BACK: a job the thread has not started is taken back
 * instead (LB__WORKER_TAKEN), for the caller to run itself;
 * LB__WORKER_POLL: a job queued or running is left so (LB__WORKER_BUSY).
 * The worker is idle afterwards, but after LB__WORKER_BUSY. */
LB__WUR int lb__worker_collect(lb_worker *w, int how);
/* Wait for a job being run and drop it, or a queued one; idle after. */
void lb__worker_drain(lb_worker *w);

/* ---- zwork.c ------------------------------------------------------------- */
typedef struct lb_zw lb_zw;
typedef struct lb_zw_result {
	const uint8_t
	        *seg; /* the finished segment, valid until the put returns */
	size_t seglen, raw;
	uint32_t segno;
	uint8_t hash[32]; /* SHA-256 of seg */
} lb_zw_result;
/* Puts a segment the worker finished into `_wal` (the batch's), in order:
 * 0 or < 0. */
typedef int (*lb_zw_put)(void *ctx, const lb_zw_result *r);
/* At a chunk boundary of the open segment's records (levels 1..3): have
 * the worker deflate its whole chunks so far, without waiting. A segment
 * the worker finished meanwhile is put. 0, or < 0 when that put or the
 * worker's job failed. */
LB__WUR int lb__zw_offer(lb_db *db, lb_zw_put put, void *ctx);
/* The open segment is complete (segment number segno): hand it to the
 * worker to finish and hash, and make the other writer, empty, the open
 * one. Waits only when the worker is still finishing the segment before
 * (and puts it). 1 if handed over, 0 if the caller must finish it itself
 * (level 0, or no worker thread: db->segw unchanged), < 0. */
LB__WUR int lb__zw_close(lb_db *db, uint32_t segno, lb_zw_put put, void *ctx);
/* Is the worker's job on the open segment (a feed, so that the caller may
 * neither finish it nor grow its buffer)? */
int lb__zw_on_open(const lb_db *db);
/* Wait for the worker's job and put the segment it finished, if any: 0 or
 * < 0 (the put's or the job's failure, LB_ENOMEM). */
LB__WUR int lb__zw_wait(lb_db *db, lb_zw_put put, void *ctx);
/* Tests: 1 makes the worker sleep 300 us before each chunk it feeds (a
 * feed still runs when the batch closes the segment or commits), 2 makes
 * a feed end after one chunk (a close finds it ended); 0 otherwise. */
extern atomic_int lb__zw_mode;
/* Wait for the worker's job, if any, and drop it; both writers empty. */
void lb__zw_drain(lb_db *db);
/* Stop the worker (lb_close). */
void lb__zw_free(lb_db *db);

/* ---- batch.c ------------------------------------------------------------- */
/* Begin a batch; internal callers (rollback, table create) use it too. */
LB__WUR int lb__batch_begin(lb_db *db, const char *label, lb_batch **out);
/* The same for a batch copied from another database (replay, a follower's
 * frames): allowed on a follower. */
LB__WUR int lb__batch_begin_raw(lb_db *db, const char *label, lb_batch **out);
/* ---- follow.c: identity and followers ------------------------------------ */
/* LB_EINVAL "follows <primary>; promote it first" when txn's view of db
 * marks it a follower, else 0. */
LB__WUR int lb__follower_check(lb_db *db, MDB_txn *txn);
/* replay.c: apply one record's after-image in a copied batch; *tcache is
 * the table of the previous record (NULL at first). */
LB__WUR int lb__replay_rec(lb_batch *b, const lb_wal_rec *rec,
                           lb_table **tcache);
/* Give db (just created, in txn) a random id of its own, and no primary. */
LB__WUR int lb__identity_make(lb_db *db, MDB_txn *txn);
enum { LB__MODE_PUT, LB__MODE_INSERT, LB__MODE_UPDATE, LB__MODE_DELETE };
/* How lb__apply treats an op:
 *  CHECK   user ops: schema, duplicate and missing checks; logged; foreign
 *          keys queued for commit.
 *  RESTORE rollback: no schema/duplicate/missing checks; a delete of a
 *          missing key does nothing; logged; foreign keys queued.
 *  REPLAY  replay: no checks and no logging (the caller copies the source's
 *          segments verbatim); data, `_gone` and _refs updated. */
enum { LB__HOW_CHECK = 0, LB__HOW_RESTORE = 1, LB__HOW_REPLAY = 2 };
LB__WUR int lb__apply(lb_batch *b, lb_table *t, int mode, const void *key,
                      size_t klen, const void *val, size_t vlen, int how);
/* Apply a table creation (enc = encoded schema) or, with drop != 0, the
 * removal of an empty table (LB_EINVAL if it holds records). Logged unless
 * how == LB__HOW_REPLAY. */
LB__WUR int lb__apply_table(lb_batch *b, const char *name, const void *enc,
                            size_t enclen, int drop, int how);
/* Change table name's schema to enc (its records checked against it unless
 * how == LB__HOW_REPLAY, as FORMAT issues: then LB_EVALIDATION; references
 * rebuilt), logged unless how == LB__HOW_REPLAY. The same schema: 0,
 * nothing done. */
LB__WUR int lb__alter_table(lb_batch *b, const char *name, const void *enc,
                            size_t enclen, int how);
LB__WUR int lb__alter_table_once(lb_batch *b, const char *name, const void *enc,
                                 size_t enclen, int how);
/* Replay: commit with a header copied from the source log. h's id must be
 * b->id and its prev_hash the hash of the last batch; segments must have
 * been put into _wal by the caller. rolled_back_by and pruned are written
 * as given. */
LB__WUR int lb__batch_commit_hdr(lb_batch *b, const lb_wal_hdr *h);
/* Replay: write the header h of batch b->id (copied from the source; it
 * must follow the batch before in the chain) and go on with batch
 * b->id + 1 in the same transaction, so that a replay commits many batches
 * at once; the last one is committed with lb__batch_commit_hdr(). */
LB__WUR int lb__batch_chain_hdr(lb_batch *b, const lb_wal_hdr *h);
/* grow.c's redo of a chained header: marks (8 bytes each, big-endian) are
 * the batches it undoes, kind its undo kind (b->undo_kind), enc its
 * encoding. */
LB__WUR int lb__chain_redo(lb_batch *b, const uint8_t *marks, size_t nmarks,
                           const void *enc, size_t enclen, int kind);
/* Put a segment (replay copies them verbatim), journaled like an op. */
LB__WUR int lb__batch_put_segment(lb_batch *b, uint32_t segno, const void *seg,
                                  size_t len);
/* Look key up in table t inside the batch, through the batch's cursor on t:
 * 1 and *cur (the value without its writer, valid until the next write of
 * the batch) when present, 0 when
 * absent, < 0 on error. An lb__apply of the same key right after, with no
 * write in between, does not search the table again. */
LB__WUR int lb__batch_seek(lb_batch *b, lb_table *t, const void *key,
                           size_t klen, MDB_val *cur);
/* One attempt at each op, without growth or journal (grow.c redoes them). */
LB__WUR int lb__apply_once(lb_batch *b, lb_table *t, int mode, const void *key,
                           size_t klen, const void *val, size_t vlen, int how);
LB__WUR int lb__apply_table_once(lb_batch *b, const char *name, const void *enc,
                                 size_t enclen, int drop, int how);
LB__WUR int lb__put_segment_once(lb_batch *b, uint32_t segno, const void *seg,
                                 size_t len);

/* ---- grow.c -------------------------------------------------------------- */
enum { LB__J_APPLY = 1, LB__J_TABLE = 2, LB__J_SEG = 3, LB__J_HDR = 4 };
/* Append an op that succeeded to the batch's journal. */
LB__WUR int lb__journal(lb_batch *b, int kind, int mode, int how,
                        const char *table, const void *key, size_t klen,
                        const void *val, size_t vlen, int hasval);
void lb__journal_free(lb_batch *b);
/* The transaction failed with a full map: abort it, grow the map, begin a
 * new transaction and redo every journaled op. 0, or the error that ends
 * the batch (LB_EFULL when the map cannot grow). */
LB__WUR int lb__regrow(lb_batch *b);
/* Reset what a transaction's ops build (segments, counts, pending checks,
 * created tables) before they are redone. */
void lb__batch_reset(lb_batch *b);
/* Begin the batch's transaction (also after a regrow). */
LB__WUR int lb__batch_txn(lb_batch *b);

/* The checks of an op's arguments (batch, thread, key, value, table), as
 * lb_put() makes them; *t the table. 0 or the op's error code. */
LB__WUR int lb__op_args(lb_batch *b, const char *table, const void *key,
                        size_t klen, const void *val, size_t vlen,
                        lb_table **t);
/* Did the batch remove a table (in its transaction so far)? */
LB__WUR int lb__batch_drops(const lb_batch *b);
/* Record that this undo batch undoes batch id (undo.c settles it at
 * commit). */
LB__WUR int lb__batch_mark(lb_batch *b, uint64_t id);
/* Commit with an explicit time (replay keeps the original); time 0 = now. */
LB__WUR int lb__batch_commit_at(lb_batch *b, int64_t time_ns, lb_result *res);
/* Move the batch's issues into res (res may be NULL). */
void lb__batch_issues_to(lb_batch *b, lb_result *res);

/* ---- log.c --------------------------------------------------------------- */
LB__WUR int lb__hdr_get(lb_db *db, MDB_txn *txn, uint64_t id, lb_wal_hdr *h);
/* Set db->last_id and last_hash from txn's view of the log: another
 * process may have committed since this one last looked. */
LB__WUR int lb__sync_last(lb_db *db, MDB_txn *txn);
/* A record as lb_change hands it to users, with its table name copied,
 * NUL-terminated, into tname (LB_TABLE_NAME_MAX + 1 bytes). */
void lb__to_change(const lb_wal_rec *r, char *tname, lb_change *c);
/* The last batch id in txn's view, 0 when there is none. */
LB__WUR int lb__last_in(lb_db *db, MDB_txn *txn, uint64_t *id);
/* Read segment s of the batch whose header is h, check it against the
 * header's SHA-256 and load it into r (which then hands out its records);
 * *stored (may be NULL): the segment as stored, valid until txn writes.
 * LB_ECORRUPT names the batch and segment. */
LB__WUR int lb__segment_load(lb_db *db, MDB_txn *txn, const lb_wal_hdr *h,
                             uint32_t s, lb_segr *r, MDB_val *stored);
/* lb__segment_load's two halves. The first reads batch id's segment s
 * as stored in `_wal` (valid until txn writes; LB_ECORRUPT when it is
 * missing). The second, which touches no LMDB state and may run on any
 * thread, checks the stored bytes against want (the header's SHA-256 of
 * the segment) and loads them into r. */
LB__WUR int lb__segment_get(lb_db *db, MDB_txn *txn, uint64_t id, uint32_t s,
                            MDB_val *stored);
LB__WUR int lb__segment_check_load(uint64_t id, uint32_t s,
                                   const uint8_t want[32], const void *seg,
                                   size_t len, lb_segr *r);
/* Where each record of the segment just loaded into r starts, as offsets
 * into r->raw.data, into *offs (grown as needed; *n of them), so that its
 * records can be visited in any order. r hands out no records after it. */
LB__WUR int lb__segment_index(lb_segr *r, uint32_t **offs, size_t *n,
                              size_t *cap);
/* The record at offset off (one lb__segment_index noted) of the segment
 * loaded into r, which is only read (any thread may, while r's owner does
 * not load into it): 0, or LB_ECORRUPT. */
LB__WUR int lb__segment_rec_at(const lb_segr *r, uint32_t off, lb_wal_rec *rec);
/* Walk batch id's records in a txn with reader r. fn non-zero stops. */
typedef int (*lb__rec_fn)(void *ctx, const lb_wal_rec *r);
/* 0 if the header h of batch id matches its hash, else LB_ECORRUPT. */
LB__WUR int lb__hdr_intact(const lb_wal_hdr *h, uint64_t id);
/* 0 if batch id's seen records are the want its header counts, else
 * LB_ECORRUPT. */
LB__WUR int lb__records_counted(uint64_t id, uint64_t seen, uint64_t want);
LB__WUR int lb__walk_batch(lb_db *db, MDB_txn *txn, uint64_t id, lb_segr *r,
                           lb__rec_fn fn, void *ctx);

/* ---- readahead.c --------------------------------------------------------- */
typedef struct lb_ra lb_ra;
/* Hand segment s of the batch whose header is h to db's read-ahead worker:
 * its stored bytes are copied here, out of src's log through txn, and the
 * worker checks and loads them (lb__segment_check_load), then, with index
 * != 0, notes where its records start (lb__segment_index). 1 if handed
 * over (a failure to read it is kept for lb__ra_collect), 0 if the caller
 * must load it itself (no worker thread). When handed over and stored is
 * not NULL, *stored is the segment as stored in src's map (valid as long
 * as txn), for a caller that also copies it. The segment handed over
 * before must have been collected. */
LB__WUR int lb__ra_submit(lb_db *db, lb_db *src, MDB_txn *txn,
                          const lb_wal_hdr *h, uint32_t s, int index,
                          MDB_val *stored);
/* Wait for the segment in flight and exchange the worker's reader and
 * offsets with *r and *offs, *n, *cap (those given become the worker's;
 * offs NULL for a segment not indexed, whose reader is then at its first
 * record): 0, or the failure of reading, checking or loading it, with its
 * detail. */
LB__WUR int lb__ra_collect(lb_db *db, lb_segr *r, uint32_t **offs, size_t *n,
                           size_t *cap);
/* Wait for the segment in flight, if any, and drop it. */
void lb__ra_drain(lb_db *db);
/* Tests only: 1, the worker takes no segment (each is read on the
 * caller's thread when collected); 2, the caller leaves every segment to
 * the worker; 3, nothing is handed over (as without a worker thread); 0,
 * either, whichever comes first. lb__ra_handed counts the segments handed
 * over and collected loaded. lb__ra_prefetch: 1 (the default), the worker
 * prefetches a rollback's segment until it is collected; 2, every record
 * of it; 0, none. lb__ra_prefetched counts the records whose key the
 * worker looked up. */
extern atomic_int lb__ra_mode;
extern atomic_ulong lb__ra_handed;
extern atomic_int lb__ra_prefetch;
extern atomic_ulong lb__ra_prefetched;
/* Stop the worker (lb_close). */
void lb__ra_free(lb_db *db);

/* ---- feed.c -------------------------------------------------------------- */
/* Free db's batch cache (lb_close). */
void lb__asof_cache_free(lb_db *db);
/* Batch id's first record of (table, key), through db's cache of recently
 * read batches (thread-safe; a batch is known by its chain hash): 1 and
 * *prev its prev, 0 when the batch has no record of the key, LB_EPRUNED
 * when its log was pruned, or another negative code. r reads the batch
 * when it is not cached. */
LB__WUR int lb__batch_first(lb_db *db, MDB_txn *txn, uint64_t id, lb_segr *r,
                            const char *table, const void *key, size_t klen,
                            uint64_t *prev);

/* ---- consumer.c ---------------------------------------------------------- */
/* In a prune's transaction: LB_EBUSY (naming the consumer) if a consumer
 * that is not lost has not acknowledged batch before - 1 and is within the
 * limits; those past the limits are marked lost in txn. */
LB__WUR int lb__consumers_hold(lb_db *db, MDB_txn *txn, uint64_t before,
                               uint64_t last);
/* lb_consumer_fn appending the info to the lb_buf ctx. */
int lb__consumer_collect(void *ctx, const lb_consumer_info *c);

/* ---- undo.c: which batches stand ----------------------------------------- */
/* The kinds of undo batch (FORMAT.md §2.5): an lb_rollback that wrote a
 * record for every record it undid (strict, or a cascade), one that may
 * have skipped some (forced, or a cascade that found a key to delete
 * absent already), an lb_rollback_to. */
enum { LB__UNDO_ROLLBACK = 1, LB__UNDO_LISTED = 2, LB__UNDO_TO = 3 };
/* In a `_undo` value: the undoer is of kind 1 (FORMAT.md §2.5). */
#define LB__UNDO_IMPLIED ((uint64_t)1 << 63)
/* The batches an undo batch undoes, as `_victims` holds them: kind 0 for a
 * batch that is no undo batch; for LB__UNDO_TO, every batch in lo..hi;
 * else n ids (8 bytes each, big-endian, ascending) at ids, which point
 * into txn's pages (valid until txn writes). */
typedef struct lb_victims {
	int kind;
	const uint8_t *ids;
	size_t n;
	uint64_t lo, hi;
} lb_victims;
LB__WUR int lb__victims_get(lb_db *db, MDB_txn *txn, uint64_t n,
                            lb_victims *out);
/* Parse a `_victims` value of batch n (FORMAT.md §2.5) into *out (ids
 * point into val). LB_ECORRUPT. */
LB__WUR int lb__victims_parse(const void *val, size_t len, uint64_t n,
                              lb_victims *out);
uint64_t lb__victims_count(const lb_victims *vs);
uint64_t lb__victims_at(const lb_victims *vs, uint64_t i);
/* Every batch that undoes z (`_undo` values: the id, with LB__UNDO_IMPLIED
 * when it is of kind 1), into *ids (*n of them, ascending; the array is
 * reallocated as needed, *cap its size, the caller frees it). c is a
 * cursor on `_undo` in txn. */
LB__WUR int lb__undoers(lb_db *db, MDB_txn *txn, MDB_cursor *c, uint64_t z,
                        uint64_t **ids, size_t *n, size_t *cap);
/* Whether batch k stands, if the caller knows better than k's header: 1
 * or 0, or -1 to read the header. */
typedef int (*lb__standing_fn)(void *ctx, uint64_t k);
/* The greatest standing batch that undoes id (0: id stands), into *rbb.
 * Batch `self` (the batch being written) stands; `over` (may be NULL)
 * overrides headers. buf/cap: a reusable array. */
LB__WUR int lb__standing_of(lb_db *db, MDB_txn *txn, MDB_cursor *uc,
                            uint64_t id, uint64_t self, lb__standing_fn over,
                            void *ctx, uint64_t **buf, size_t *cap,
                            uint64_t *rbb);
/* A max-heap of batch ids (the settling order: newest first). */
typedef struct lb_heap {
	uint64_t *v;
	size_t n, cap;
} lb_heap;
LB__WUR int lb__heap_push(lb_heap *h, uint64_t x);
uint64_t lb__heap_pop(lb_heap *h); /* h->n > 0 */
/* Push every batch vs lists. */
LB__WUR int lb__heap_push_victims(lb_heap *h, const lb_victims *vs);
/* At the commit of an undo batch b: write its `_victims` and `_undo`
 * entries, and set `rolled_back_by` of every batch whose standing it
 * changes. */
LB__WUR int lb__undo_settle(lb_batch *b);

/* ---- the writer of a key (FORMAT.md §2.4) ---------------------------------
 */
/* A user table's value is the id of the batch that wrote it (u64 BE), then
 * the user's bytes. */
#define LB__VPFX 8
/* The writer of stored value v of what (a table name, for the detail) into
 * *writer: 0, or LB_ECORRUPT for a value shorter than LB__VPFX. */
LB__WUR int lb__val_writer(const MDB_val *v, const char *what,
                           uint64_t *writer);
/* Strip the writer from a stored value in place: 0, or LB_ECORRUPT for a
 * value shorter than LB__VPFX (named by what). */
LB__WUR int lb__val_user(MDB_val *v, const char *what);
/* The last batch that changed key of t, as txn sees it: the writer of its
 * value, else the batch that deleted it (`_gone`), else 0. */
LB__WUR int lb__key_head(lb_db *db, MDB_txn *txn, const lb_table *t,
                         const void *key, size_t klen, uint64_t *head);
/* The batch `_gone` names for ikey ik (0 if none). */
LB__WUR int lb__gone_get(lb_db *db, MDB_txn *txn, const void *ik, size_t iklen,
                         uint64_t *id);
/* For a key batch b changed in its transaction (the key's head is b->id):
 * the prev of b's first record of it. Keys b did not change answer 0 too,
 * so ask only about b's own keys. */
uint64_t lb__batch_own_prev(lb_batch *b, const void *ik, size_t iklen);

/* ---- hist.c: the history of a key (FORMAT.md §2.4) ---------------------- */
/* Called with each batch of a key's history, newest first: non-zero stops
 * the walk (a negative code is returned, a positive one means done). */
typedef int (*lb__hist_fn)(void *ctx, uint64_t id);
/* Walk the history of key of t as txn sees it, the batches above floor:
 * the last one (lb__key_head), then from each batch the prev of its first
 * record of the key. With b (txn is b's), b's own change is skipped: the
 * walk starts at the prev of b's first record of the key, so only
 * committed batches are met. When a batch's log is pruned, nothing older
 * can be found: the walk ends there (after fn was called with it), with
 * *pruned (may be NULL) that batch, else 0. r reads the batches (not one
 * whose records the caller still uses). LB_ECORRUPT when the chain does
 * not hold. */
LB__WUR int lb__hist_walk(lb_db *db, MDB_txn *txn, lb_batch *b,
                          const lb_table *t, const void *key, size_t klen,
                          uint64_t floor, lb_segr *r, lb__hist_fn fn, void *ctx,
                          uint64_t *pruned);
/* The last committed batch that changed key of t (lb__hist_walk with b,
 * which may be NULL), skipping the batches of set (nset ids, descending;
 * may be NULL): 0 if none (or none left before a pruned batch). r may be
 * NULL (a reader of its own is used). */
LB__WUR int lb__hist_last(lb_db *db, MDB_txn *txn, lb_batch *b,
                          const lb_table *t, const void *key, size_t klen,
                          const uint64_t *set, size_t nset, lb_segr *r,
                          uint64_t *out);
/* The key of t whose ikey is ik (FORMAT.md §2.2), into key (LB_KEY_MAX
 * bytes): 1 and *klen, or 0 when t holds no such key in txn (a hashed
 * ikey is matched against t's long keys). */
LB__WUR int lb__ikey_key(MDB_txn *txn, const lb_table *t, const uint8_t *ik,
                         size_t iklen, uint8_t *key, size_t *klen);

/* ---- validate.c ---------------------------------------------------------- */
/* Record an issue of batch b (kept up to LB_ISSUES_MAX, always counted)
 * and set the detail to its message; returns LB_EVALIDATION. */
int lb__issue(lb_batch *b, lb_issue_kind kind, const char *table,
              const void *key, size_t klen, const char *field, uint64_t batch,
              const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 8, 9)))
#endif
        ;
/* Check a value against t's schema; records FORMAT issues on b. Returns 0
 * or LB_EVALIDATION. */
LB__WUR int lb__validate_value(lb_batch *b, lb_table *t, const void *key,
                               size_t klen, const void *val, size_t vlen);
/* Maintain _refs for a change of key in t from before to after (either may
 * be NULL) and queue the commit-time checks. */
LB__WUR int lb__refs_update(lb_batch *b, lb_table *t, const void *key,
                            size_t klen, const void *before, size_t blen,
                            const void *after, size_t alen, int queue);
/* Run the queued foreign-key checks; records FOREIGN_KEY issues. */
LB__WUR int lb__fk_check(lb_batch *b);
/* Does value val of table t name, in one of its ref fields, a key that its
 * referenced table does not hold in txn? 1 (and *field, the schema field),
 * 0, or < 0. */
LB__WUR int lb__refs_dangling(MDB_txn *txn, const lb_table *t, const void *val,
                              size_t vlen, uint32_t *field);

/* ---- checkpoint.c: checkpoints, and directories for them and replays ---- */
/* 0 if dir is missing or an empty directory, else LB_EEXIST. */
LB__WUR int lb__dest_check(const char *dir);
/* Create (parents included) a hidden directory next to dest,
 * "<parent>/.<name>.tmp-XXXXXX", to build dest in; *tmp malloc'd. */
LB__WUR int lb__dest_tmp(const char *dest, char **tmp);
/* Rename the finished tmp onto dest (missing or empty) and sync the
 * parent directory. LB_EEXIST if dest was filled meanwhile. */
LB__WUR int lb__dest_publish(const char *tmp, const char *dest);
/* Remove a directory the library built (its files, then itself). */
void lb__rmdir_files(const char *dir);
/* The oldest registered checkpoint at a batch in lo..hi whose data.mdb
 * exists: *at and *path (malloc'd). LB_ENOTFOUND if none. */
LB__WUR int lb__checkpoint_find(lb_db *db, MDB_txn *txn, uint64_t lo,
                                uint64_t hi, uint64_t *at, char **path);

/* ---- replay.c ------------------------------------------------------------ */
/* Replay src, as its read transaction txn sees it, into dest (missing or
 * empty) up to batch to (<= the last batch in txn), from empty or from a
 * checkpoint directory. *records = records applied; *failed (may be NULL)
 * = the batch a failure belongs to, 0 if none. */
LB__WUR int lb__replay_txn(lb_db *src, MDB_txn *txn, const char *dest,
                           uint64_t to, const char *from_checkpoint,
                           uint64_t *records, uint64_t *failed);

#endif
