/* SPDX-License-Identifier: MIT */
/*
 * db.c: opening and closing a database, and map growth.
 *
 * A database is one LMDB environment in one directory (docs/FORMAT.md §2).
 * Opening validates the directory, the LMDB files (a data.mdb shorter than
 * its own meta page claims would fault on access, so it is refused before
 * any page is touched), the `_meta` format version, then loads every table
 * and the last batch header.
 *
 * Map growth: LMDB needs a map size fixed while any transaction of the
 * process is live. Every live transaction holds maplock for reading; before
 * a batch starts, the writer grows the map (doubling) when more than half of
 * it is in use, taking maplock for writing. A growth that cannot get the
 * lock at once is put off to a later batch unless the map is nearly full;
 * while one waits for the lock, new outermost readers hold back (at most
 * 50 ms each, lb__read_begin) so that a stream of short reads cannot
 * starve it.
 *
 * A failed environment: when LMDB cannot write its meta page at the end of
 * a commit, it marks the environment failed (MDB_PANIC); every later
 * transaction of the process, reads included, is refused. The commit
 * returned LB_EIO or LB_EFULL and wrote nothing visible (the old meta page
 * still names the old tree), so the engine closes the environment and
 * opens it again on the same files, under wlock and maplock for writing:
 * no transaction of the process may use the old one, and LMDB's file locks
 * are per process, so the old environment must be closed before the new
 * one opens. Snapshots opened before the failure still read the old one;
 * until they close, the reopening waits (a second at most, then the call
 * fails with LB_EIO and the next call tries again).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/pagecheck.h"

void lb_options_init(lb_options *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof *o);
	o->compression = -1;
}

/* ---- map growth --------------------------------------------------------- */

/* maplock read holds of this thread (over every handle). A thread that
 * holds one must not wait for a grower, who waits for it. Snapshots may
 * move between threads, so this is a hint: it never goes below 0, and a
 * reader wrongly taken for an outermost one waits only a bounded time. */
static _Thread_local int read_depth;

#define LB__READER_YIELD_MS 50

void lb__read_begin(lb_db *db)
{
	if (read_depth == 0 && atomic_load(&db->growers)) {
		struct timespec pause = {0, 100000};
		for (int i = 0;
		     i < LB__READER_YIELD_MS * 10 && atomic_load(&db->growers);
		     i++)
			nanosleep(&pause, NULL);
	}
	pthread_rwlock_rdlock(&db->maplock);
	read_depth++;
}

void lb__read_end(lb_db *db)
{
	if (read_depth > 0)
		read_depth--;
	pthread_rwlock_unlock(&db->maplock);
}

int lb__maplock_write(lb_db *db, const struct timespec *until)
{
	if (pthread_rwlock_trywrlock(&db->maplock) == 0)
		return 0;
	if (!until)
		return -1;
	atomic_fetch_add(&db->growers, 1);
	int rc = pthread_rwlock_timedwrlock(&db->maplock, until);
	atomic_fetch_sub(&db->growers, 1);
	return rc == 0 ? 0 : -1;
}

static int env_recover(lb_db *db, int have_wlock);

/* The newest commit whose meta page is written (0: unknown). */
static uint64_t newest_meta(lb_db *db)
{
	MDB_envinfo info;
	return db->env && mdb_env_info(db->env, &info) == 0
	               ? (uint64_t)info.me_last_txnid
	               : 0;
}

/* A read found commit `newest` written but not published, and its writer
 * dead (lmdb.c): publish it, by taking and letting go of LMDB's writer
 * lock, which publishes the newest meta page when its owner died. Under
 * wlock, which is only try-locked (readers never wait for it): a writer
 * of this process that holds it takes LMDB's lock in a moment and
 * publishes the commit itself, so the read tries again shortly. 0: read
 * again; the caller holds no lock. */
static int publish_dead(lb_db *db, int attempt)
{
	MDB_txn *t;
	if (attempt > LB__PUBLISH_TRIES)
		return lb__fail(
		        LB_EBUSY,
		        "%s: a commit written by a process that died is "
		        "not published yet, and a writer of this "
		        "process that would publish it has not for "
		        "%d ms; try again",
		        db->path, LB__PUBLISH_TRIES / 10);
	if (pthread_mutex_trylock(&db->wlock) != 0) {
		struct timespec pause = {0, 100000};
		nanosleep(&pause, NULL);
		return 0;
	}
	lb__read_begin(db);
	if (db->env && mdb_txn_begin(db->env, NULL, 0, &t) == 0)
		mdb_txn_abort(t);
	lb__read_end(db);
	pthread_mutex_unlock(&db->wlock);
	return 0;
}

int lb__read_txn(lb_db *db, MDB_txn **txn)
{
	int mrc, rc, reloads = 0, unpublished = 0;
	for (int tries = 0;; tries++) {
		lb__read_begin(db);
		/* read before the snapshot is taken: a commit that comes
		 * between is published by then, or its writer lives */
		uint64_t newest = db->flags & LB_RDONLY ? 0 : newest_meta(db);
		*txn = db->env ? atomic_exchange(&db->spare_rtxn, NULL) : NULL;
		/* renewing keeps the reader slot: no search of the reader
		 * table under its lock, no allocation; if it fails, begin a
		 * new one, which reports the failure if it persists */
		mrc = *txn ? mdb_txn_renew(*txn) : MDB_BAD_TXN;
		if (mrc != 0 && *txn) {
			mdb_txn_abort(*txn);
			*txn = NULL;
		}
		if (mrc != 0)
			mrc = db->env ? mdb_txn_begin(db->env, NULL, MDB_RDONLY,
			                              txn)
			              : MDB_PANIC;
		if (mrc == 0 && mdb_txn_id(*txn) < newest &&
		    !lb__wtxn_live(db, newest)) {
			/* the commit of a writer that died between writing
			 * its meta page and publishing it (lmdb.c) */
			lb__read_done(db, *txn);
			*txn = NULL;
			if ((rc = publish_dead(db, ++unpublished)) < 0)
				return rc;
			tries--;
			continue;
		}
		if (mrc == 0) {
			/* the tables as this transaction sees them */
			int moved;
			rc = lb__catalog_sync(db, *txn, &moved);
			if (rc == 0 && !moved)
				return 0;
			lb__read_done(db, *txn);
			*txn = NULL;
			if (rc < 0)
				return rc;
			if (++reloads > LB__CATALOG_TRIES)
				return lb__fail(LB_EBUSY,
				                "%s: the tables keep changing "
				                "(other processes create and "
				                "remove them); try again",
				                db->path);
			rc = lb__catalog_reload(db);
			if (rc == LB__ERESIZED)
				rc = lb__map_adopt(db);
			if (rc < 0)
				return rc;
			tries--;
			continue;
		}
		lb__read_end(db);
		*txn = NULL;
		if (mrc == MDB_MAP_RESIZED && tries < LB__CATALOG_TRIES) {
			/* another process grew the map past this one's */
			if ((rc = lb__map_adopt(db)) < 0)
				return rc;
			continue;
		}
		if (mrc != MDB_PANIC || tries > 0)
			break;
		/* LMDB marked the environment failed: reopen it, then
		 * begin again (once: another failed commit may come
		 * between). */
		atomic_store(&db->env_check, 1);
		if ((rc = env_recover(db, 0)) < 0)
			return rc;
	}
	return lb__mdb_fail(mrc, "beginning a read");
}

void lb__read_done(lb_db *db, MDB_txn *txn)
{
	MDB_txn *none = NULL;
	/* keep one for the next read (maplock is still held for reading, so
	 * env cannot be resized or closed meanwhile) */
	mdb_txn_reset(txn);
	if (!atomic_compare_exchange_strong(&db->spare_rtxn, &none, txn))
		mdb_txn_abort(txn);
	lb__read_end(db);
}

void lb__spare_drop(lb_db *db)
{
	MDB_txn *t = atomic_exchange(&db->spare_rtxn, NULL);
	if (t)
		mdb_txn_abort(t);
}

int lb__grow_map_if_needed(lb_db *db)
{
	MDB_envinfo info;
	MDB_stat st;
	int mrc, rc;
	/* Every write transaction begins after this, under wlock: make sure
	 * a failed commit did not leave the environment failed. */
	if ((!db->env || atomic_load(&db->env_check)) &&
	    (rc = env_recover(db, 1)) < 0)
		return rc;
	if ((mrc = mdb_env_info(db->env, &info)) != 0 ||
	    (mrc = mdb_env_stat(db->env, &st)) != 0)
		return lb__mdb_fail(mrc, "map size");
	uint64_t used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
	uint64_t size = info.me_mapsize;
	if (used <= size / 2)
		return 0;
	uint64_t nsize = size * 2;
	if (lb__maplock_write(db, NULL) != 0) {
		/* Readers are live. Wait only when the map is close to full,
		 * and not for long: the waiting thread may itself hold a
		 * snapshot. Without growth now, the batch grows the map
		 * when it fills (grow.c). */
		struct timespec until;
		if (used < size - size / 8)
			return 0;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (lb__maplock_write(db, &until) != 0)
			return 0;
	}
	rc = lb__map_resize(db, nsize);
	pthread_rwlock_unlock(&db->maplock);
	return rc;
}

int lb__map_resize(lb_db *db, uint64_t nsize)
{
	MDB_envinfo info;
	lb__spare_drop(db);
	int mrc = mdb_env_info(db->env, &info);
	size_t old = mrc == 0 ? info.me_mapsize : db->env_map;
	if ((mrc = mdb_env_set_mapsize(db->env, (size_t)nsize)) == 0) {
		if (mdb_env_info(db->env, &info) == 0)
			db->env_map = info.me_mapsize;
		return 0;
	}
	/* LMDB unmapped the file and could not map it again (no address
	 * space: ENOMEM): the environment is unusable. Close it; the next
	 * transaction reopens it at the size it had (env_recover). */
	db->env_map = old;
	mdb_env_close(db->env);
	db->env = NULL;
	atomic_store(&db->env_check, 1);
	if (mrc == ENOMEM)
		return lb__fail(LB_ENOMEM,
		                "%s: no address space to map %llu bytes: the "
		                "map stays at %zu bytes",
		                db->path, (unsigned long long)nsize, old);
	return lb__rewrap(lb__mdb_fail(mrc, "resizing the map"), "%s",
	                  db->path);
}

int lb__write_txn(lb_db *db, MDB_txn **txn)
{
	int mrc = MDB_MAP_RESIZED;
	for (int tries = 0; mrc == MDB_MAP_RESIZED && tries < LB__CATALOG_TRIES;
	     tries++) {
		if (tries) {
			/* adopting needs this thread's read hold released */
			lb__read_end(db);
			int rc = lb__map_adopt(db);
			lb__read_begin(db);
			if (rc < 0 || !db->env)
				return rc == LB_ENOMEM ? ENOMEM
				                       : MDB_MAP_RESIZED;
		}
		mrc = lb__wtxn_begin(db, txn);
	}
	return mrc;
}

int lb__write_run(lb_db *db, int (*fn)(lb_db *, MDB_txn *, void *), void *ctx,
                  const char *begin, const char *commit)
{
	MDB_txn *txn;
	int rc, mrc;
	pthread_mutex_lock(&db->wlock);
	if ((rc = lb__grow_map_if_needed(db)) < 0) {
		pthread_mutex_unlock(&db->wlock);
		return rc;
	}
	lb__read_begin(db);
	if ((mrc = lb__write_txn(db, &txn))) {
		rc = lb__mdb_fail(mrc, begin);
	} else if ((rc = fn(db, txn, ctx)) < 0) {
		lb__wtxn_abort(db, txn);
	} else if ((mrc = lb__wtxn_commit(db, txn))) {
		rc = lb__full_or_io(db, lb__mdb_fail(mrc, commit));
	}
	lb__read_end(db);
	pthread_mutex_unlock(&db->wlock);
	return rc;
}

int lb__map_adopt(lb_db *db)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += LB__ADOPT_WAIT_S;
	if (lb__maplock_write(db, &until) != 0)
		return lb__fail(LB_EBUSY,
		                "%s: another process grew the database, and "
		                "transactions of this process kept it from "
		                "following for %d s",
		                db->path, LB__ADOPT_WAIT_S);
	int rc = db->env ? lb__map_resize(db, 0) : 0;
	pthread_rwlock_unlock(&db->maplock);
	return rc;
}

/* ---- open and close ----------------------------------------------------- */

static int mkdirs(const char *dir)
{
	char *p = strdup(dir);
	if (!p)
		return lb__fail(LB_ENOMEM, "%s: out of memory", dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			int e = errno;
			free(p);
			return lb__fail(e == ENOSPC ? LB_EFULL : LB_EIO,
			                "%s: cannot create directory: %s", dir,
			                strerror(e));
		}
		*s = '/';
	}
	int r = mkdir(p, 0755);
	int e = errno;
	free(p);
	if (r != 0 && e != EEXIST)
		return lb__fail(e == ENOSPC ? LB_EFULL : LB_EIO,
		                "%s: cannot create directory: %s", dir,
		                strerror(e));
	return 0;
}

static int check_options(const lb_options *o)
{
	if (o->flags & ~(unsigned)(LB_CREATE | LB_RDONLY | LB_NOSYNC))
		return lb__fail(LB_EINVAL, "options: unknown flags 0x%x",
		                o->flags);
	if ((o->flags & LB_CREATE) && (o->flags & LB_RDONLY))
		return lb__fail(LB_EINVAL,
		                "options: LB_CREATE and LB_RDONLY exclude each "
		                "other");
	if (o->compression < -1 || o->compression > 9)
		return lb__fail(LB_EINVAL,
		                "options: compression %d is not in -1..9",
		                o->compression);
	if (o->segment_size > LB_SEGMENT_SIZE_MAX ||
	    (o->segment_size && o->segment_size < 256))
		return lb__fail(LB_EINVAL,
		                "options: segment_size %zu is not in 256..%u",
		                o->segment_size, LB_SEGMENT_SIZE_MAX);
	return 0;
}

/* The engine's sub-databases other than _meta (docs/FORMAT.md §2). */
static const struct subdb {
	const char *name;
	size_t off; /* of its MDB_dbi in struct lb_db */
	unsigned flags;
} subdbs[] = {
        {"_batches", offsetof(struct lb_db, batches), 0},
        {"_wal", offsetof(struct lb_db, wal), 0},
        {"_checkpoints", offsetof(struct lb_db, ckpts), 0},
        {"_refs", offsetof(struct lb_db, refs), MDB_DUPSORT},
        {"_undo", offsetof(struct lb_db, undo), MDB_DUPSORT | MDB_DUPFIXED},
        {"_victims", offsetof(struct lb_db, victims), 0},
        {"_gone", offsetof(struct lb_db, gone), 0},
};
#define NSUBDBS (sizeof subdbs / sizeof subdbs[0])

static MDB_dbi *subdb_dbi(lb_db *db, const struct subdb *s)
{
	return (MDB_dbi *)((char *)db + s->off);
}

/* Open every sub-database in txn (cf: MDB_CREATE or 0); a missing one is
 * damage. */
static int open_subdbs(lb_db *db, MDB_txn *txn, unsigned cf)
{
	for (size_t i = 0; i < NSUBDBS; i++) {
		int mrc =
		        mdb_dbi_open(txn, subdbs[i].name, subdbs[i].flags | cf,
		                     subdb_dbi(db, &subdbs[i]));
		if (mrc == MDB_NOTFOUND)
			return lb__fail(LB_ECORRUPT,
			                "%s: sub-database %s is missing",
			                db->path, subdbs[i].name);
		if (mrc)
			return lb__rewrap(lb__mdb_fail(mrc, subdbs[i].name),
			                  "%s", db->path);
	}
	return 0;
}

/* Begin the opening transaction. Another process grew the map (it may go
 * on growing it while this one opens): adopt its size, as often as it
 * takes, within reason. */
static int meta_begin(lb_db *db, int rdonly, MDB_txn **txn)
{
	int mrc = rdonly ? mdb_txn_begin(db->env, NULL, MDB_RDONLY, txn)
	                 : lb__wtxn_begin(db, txn);
	for (int tries = 0; mrc == MDB_MAP_RESIZED && tries < 64; tries++)
		if ((mrc = mdb_env_set_mapsize(db->env, 0)) == 0)
			mrc = rdonly ? mdb_txn_begin(db->env, NULL, MDB_RDONLY,
			                             txn)
			             : lb__wtxn_begin(db, txn);
	if (mrc == MDB_MAP_RESIZED)
		return lb__fail(LB_EBUSY,
		                "%s: another process keeps growing the "
		                "database while it is opened; try again",
		                db->path);
	if (mrc)
		return lb__mdb_fail(mrc, db->path);
	return 0;
}

/* A new database's _meta: the format, the first table id, an empty
 * catalog. */
static int meta_create(lb_db *db, MDB_txn *txn)
{
	uint8_t v[4], one[4], zero[8] = {0};
	int mrc;
	lb__be32(v, LB__FORMAT_VERSION);
	lb__be32(one, 1);
	MDB_val k = {6, "format"}, d = {4, v};
	MDB_val nk = {8, "next_tid"}, nd = {4, one};
	MDB_val ck = {7, "catalog"}, cd = {8, zero};
	if ((mrc = mdb_dbi_open(txn, "_meta", MDB_CREATE, &db->meta)) ||
	    (mrc = mdb_put(txn, db->meta, &k, &d, 0)) ||
	    (mrc = mdb_put(txn, db->meta, &nk, &nd, 0)) ||
	    (mrc = mdb_put(txn, db->meta, &ck, &cd, 0)))
		return lb__mdb_fail(mrc, db->path);
	return lb__identity_make(db, txn);
}

/* Open _meta, creating it in an empty environment when creating is set;
 * refuse an LMDB environment that holds something else. */
static int meta_open(lb_db *db, MDB_txn *txn, int creating)
{
	MDB_dbi main;
	MDB_stat st;
	int mrc;
	if ((mrc = mdb_dbi_open(txn, NULL, 0, &main)) ||
	    (mrc = mdb_stat(txn, main, &st)))
		return lb__mdb_fail(mrc, db->path);
	mrc = mdb_dbi_open(txn, "_meta", 0, &db->meta);
	if (mrc == 0)
		return 0;
	if (mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, db->path);
	if (st.ms_entries > 0)
		return lb__fail(LB_EINVAL,
		                "%s: an LMDB environment that is not a "
		                "logbook database",
		                db->path);
	if (!creating)
		return lb__fail(LB_ENOTFOUND,
		                "%s: no logbook database here (use "
		                "LB_CREATE to make one)",
		                db->path);
	return meta_create(db, txn);
}

/* The format entry must be this library's version. */
static int meta_check_format(lb_db *db, MDB_txn *txn)
{
	MDB_val k = {6, "format"}, d;
	int mrc = mdb_get(txn, db->meta, &k, &d);
	if (mrc || d.mv_size != 4)
		return lb__fail(LB_ECORRUPT,
		                "%s: _meta has no valid format entry",
		                db->path);
	uint32_t ver = lb__get_be32(d.mv_data);
	if (ver > LB__FORMAT_VERSION)
		return lb__fail(LB_EVERSION,
		                "%s: format version %u is newer than this "
		                "library's %u",
		                db->path, ver, LB__FORMAT_VERSION);
	if (ver == 0)
		return lb__fail(LB_ECORRUPT, "%s: format version 0 is invalid",
		                db->path);
	if (ver < LB__FORMAT_VERSION)
		/* Nothing has been released in an earlier format: no
		 * upgrade path, but a way to carry the data over. */
		return lb__fail(LB_EVERSION,
		                "%s: format version %u was written by an "
		                "earlier logbook, which this one (format %u) "
		                "does not read: export each table with the "
		                "logbook that wrote it (logbook export) and "
		                "import it into a new database",
		                db->path, ver, LB__FORMAT_VERSION);
	return 0;
}

/* Open every sub-database and read or write the format entry; load the
 * catalog and the head of the hash chain. */
static int open_meta(lb_db *db, int creating)
{
	MDB_txn *txn;
	int rdonly = (db->flags & LB_RDONLY) != 0;
	int rc = meta_begin(db, rdonly, &txn), mrc;
	if (rc < 0)
		return rc;
	if ((rc = meta_open(db, txn, creating)) < 0 ||
	    (rc = meta_check_format(db, txn)) < 0 ||
	    (rc = open_subdbs(db, txn, rdonly ? 0 : MDB_CREATE)) < 0 ||
	    /* tables, as the catalog holds them */
	    (rc = lb__catalog_load(db, txn, NULL)) < 0 ||
	    /* the last batch: the head of the hash chain */
	    (rc = lb__sync_last(db, txn)) < 0) {
		/* a read transaction has no mark: ending it is the same */
		lb__wtxn_abort(db, txn);
		return rc;
	}
	if ((mrc = lb__wtxn_commit(db, txn)))
		return lb__mdb_fail(mrc, db->path);
	return 0;
}

/* Create and open an LMDB environment on db's directory with db's flags.
 * LMDB's code; *out is set only on success. */
static int env_open(const lb_db *db, size_t map, MDB_env **out)
{
	MDB_env *env;
	unsigned ef = MDB_NOTLS | MDB_NORDAHEAD;
	int mrc;
	if (db->flags & LB_RDONLY)
		ef |= MDB_RDONLY;
	if (db->flags & LB_NOSYNC)
		ef |= MDB_NOSYNC;
	if ((mrc = mdb_env_create(&env)))
		return mrc;
	mdb_env_set_maxdbs(env, LB__MAXDBS);
	mdb_env_set_maxreaders(env, 510);
	if ((mrc = mdb_env_set_mapsize(env, map)) == 0 &&
	    (mrc = mdb_env_open(env, db->path, ef, 0644)) == 0) {
		*out = env;
		return 0;
	}
	mdb_env_close(env);
	return mrc;
}

/* ---- reopening a failed environment ------------------------------------- */

#define LB__RECOVER_WAIT_MS 1000

/* Can db->env begin transactions (not failed, not closed)? Under maplock.
 * Other errors (a full reader table) are not the environment's failure. */
static int env_usable(lb_db *db)
{
	MDB_txn *txn;
	if (!db->env)
		return 0;
	int mrc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &txn);
	if (mrc == 0)
		mdb_txn_abort(txn);
	return mrc != MDB_PANIC;
}

/* Find every sub-database and table in the new environment's txn, and the
 * last batch. Under wlock and maplock for writing. */
static int env_attach(lb_db *db, MDB_txn *txn)
{
	int rc = 0, mrc;
	if ((mrc = mdb_dbi_open(txn, "_meta", 0, &db->meta)))
		return mrc == MDB_NOTFOUND
		               ? lb__fail(LB_ECORRUPT,
		                          "%s: sub-database _meta is missing",
		                          db->path)
		               : lb__rewrap(lb__mdb_fail(mrc, "_meta"), "%s",
		                            db->path);
	if ((rc = open_subdbs(db, txn, 0)) < 0)
		return rc;
	pthread_mutex_lock(&db->tlock);
	for (size_t i = 0; i < db->ntables && rc == 0; i++) {
		lb_table *t = db->tables[i];
		char dname[2 + LB_TABLE_NAME_MAX + 1];
		if (t->dropped)
			continue; /* its dbi is never used again */
		snprintf(dname, sizeof dname, "t/%s", t->name);
		mrc = mdb_dbi_open(txn, dname, 0, &t->dbi);
		if (mrc == MDB_NOTFOUND)
			t->dropped = 1; /* gone from the files meanwhile */
		else if (mrc)
			rc = lb__mdb_fail(mrc, t->name);
	}
	pthread_mutex_unlock(&db->tlock);
	if (rc < 0)
		return rc;
	/* The batch that failed did not commit: the chain's head is the
	 * one on disk. */
	db->last_id = 0;
	return lb__sync_last(db, txn);
}

/* Close db's failed environment and open it again. The old one must be
 * closed first: LMDB's locks are per process, so opening the files twice
 * would make the new environment take the database for unused by others
 * and reset its lock file, and closing the old one would then drop the new
 * one's locks. Nothing is written. Under wlock and maplock for writing
 * (no transaction of the process is live). On failure db->env is NULL and
 * the next call tries again. */
static int env_reopen(lb_db *db)
{
	MDB_envinfo info;
	MDB_env *env;
	MDB_txn *txn;
	int rc, mrc, dead;
	if (db->env) {
		if (mdb_env_info(db->env, &info) == 0)
			db->env_map = info.me_mapsize;
		lb__spare_drop(db);
		mdb_env_close(db->env);
		db->env = NULL;
	}
	if ((mrc = env_open(db, db->env_map, &env)))
		return lb__rewrap(lb__mdb_fail(mrc, db->path),
		                  "reopening the database after a failed "
		                  "write");
	/* the same structural check as lb_open's, before LMDB reads */
	if ((rc = lb__pagecheck(env, NULL, LB__PAGECHECK_OPEN)) < 0) {
		mdb_env_close(env);
		return lb__rewrap(rc, "reopening the database after a failed "
		                      "write");
	}
	mdb_reader_check(env, &dead);
	mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	for (int tries = 0; mrc == MDB_MAP_RESIZED && tries < 64; tries++)
		if ((mrc = mdb_env_set_mapsize(env, 0)) == 0)
			mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (mrc) {
		mdb_env_close(env);
		return lb__rewrap(lb__mdb_fail(mrc, db->path),
		                  "reopening the database after a failed "
		                  "write");
	}
	if ((rc = env_attach(db, txn)) < 0) {
		mdb_txn_abort(txn);
		mdb_env_close(env);
		return lb__rewrap(rc, "reopening the database after a failed "
		                      "write");
	}
	/* committing a read transaction keeps the handles it opened */
	if ((mrc = mdb_txn_commit(txn))) {
		mdb_env_close(env);
		return lb__rewrap(lb__mdb_fail(mrc, db->path),
		                  "reopening the database after a failed "
		                  "write");
	}
	db->env = env;
	return 0;
}

static int past(const struct timespec *until)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > until->tv_sec ||
	       (now.tv_sec == until->tv_sec && now.tv_nsec >= until->tv_nsec);
}

/* Make db->env usable again if LMDB marked it failed. The caller holds no
 * maplock, and wlock if have_wlock. The reopening needs both locks, which
 * are polled (the thread that gets them may be this one's own writer or
 * reader, or a batch may hold wlock for long; another thread may reopen
 * meanwhile), for LB__RECOVER_WAIT_MS at most. */
static int env_recover(lb_db *db, int have_wlock)
{
	const struct timespec pause = {0, 1000000};
	struct timespec until;
	int rc, ok;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += LB__RECOVER_WAIT_MS / 1000;
	until.tv_nsec += (LB__RECOVER_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	for (;;) {
		lb__read_begin(db);
		ok = env_usable(db);
		lb__read_end(db);
		if (ok) {
			/* only under wlock, which failed commits hold when
			 * they set it */
			if (have_wlock)
				atomic_store(&db->env_check, 0);
			return 0;
		}
		if (have_wlock || pthread_mutex_trylock(&db->wlock) == 0) {
			rc = 1;
			if (pthread_rwlock_trywrlock(&db->maplock) == 0) {
				rc = env_usable(db) ? 0 : env_reopen(db);
				if (rc == 0)
					atomic_store(&db->env_check, 0);
				pthread_rwlock_unlock(&db->maplock);
			}
			if (!have_wlock)
				pthread_mutex_unlock(&db->wlock);
			if (rc <= 0)
				return rc;
		}
		if (past(&until))
			return lb__fail(
			        LB_EIO,
			        "%s: a write failed and left the "
			        "database to be reopened, which "
			        "transactions still open in this process "
			        "(snapshots begun before the failure) "
			        "prevent: close them and call again",
			        db->path);
		nanosleep(&pause, NULL);
	}
}

int lb__read_env(lb_db *db)
{
	int rc;
	for (int tries = 0; tries < 2; tries++) {
		lb__read_begin(db);
		if (env_usable(db))
			return 0;
		lb__read_end(db);
		if (tries == 0) {
			atomic_store(&db->env_check, 1);
			if ((rc = env_recover(db, 0)) < 0)
				return rc;
		}
	}
	return lb__fail(LB_EIO,
	                "%s: the database failed again while it was "
	                "reopened",
	                db->path);
}

/* ---- one environment per database per process ----------------------------
 * LMDB forbids opening the same environment twice in one process: its
 * locks are per process, so two environments on one file would both write
 * (the chain breaks). A registry of the data files this process has open,
 * by device and inode, refuses the second open with LB_EBUSY. Entries made
 * by another process (this one is a fork's child) do not count. */

typedef struct openfile {
	dev_t dev;
	ino_t ino;
	pid_t pid;
	const lb_db *db;
} openfile;

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static openfile *open_files;
static size_t nopen, open_cap;

static int register_file(lb_db *db, const struct stat *st)
{
	pid_t me = getpid();
	int rc = 0;
	pthread_mutex_lock(&open_lock);
	for (size_t i = 0; i < nopen;) {
		if (open_files[i].pid != me) { /* inherited by a fork */
			open_files[i] = open_files[--nopen];
			continue;
		}
		if (open_files[i].dev == st->st_dev &&
		    open_files[i].ino == st->st_ino) {
			rc = lb__fail(LB_EBUSY,
			              "%s: this process has the database open "
			              "already (share that handle between "
			              "threads: LMDB allows one per process)",
			              db->path);
			goto out;
		}
		i++;
	}
	if ((rc = lb__grow(&open_files, &open_cap, nopen + 1,
	                   sizeof *open_files, 8)) < 0)
		goto out;
	open_files[nopen++] = (openfile){st->st_dev, st->st_ino, me, db};
	db->registered = 1;
out:
	pthread_mutex_unlock(&open_lock);
	return rc;
}

static void unregister_file(lb_db *db)
{
	if (!db->registered)
		return;
	pthread_mutex_lock(&open_lock);
	for (size_t i = 0; i < nopen; i++)
		if (open_files[i].db == db) {
			open_files[i] = open_files[--nopen];
			break;
		}
	if (nopen == 0) {
		free(open_files);
		open_files = NULL;
		open_cap = 0;
	}
	pthread_mutex_unlock(&open_lock);
}

/* data.mdb as a plain file of its own: not a symbolic link (to another
 * database's file), not a hard link (LMDB keeps its locks beside it, in
 * lock.mdb of the directory, so two directories sharing the file would
 * lock apart). */
static int plain_file(const char *dir, const char *file, struct stat *st)
{
	if (lstat(file, st) != 0)
		return lb__fail(LB_EIO, "%s: %s", file, strerror(errno));
	if (S_ISLNK(st->st_mode))
		return lb__fail(LB_EINVAL,
		                "%s: data.mdb is a symbolic link: open the "
		                "directory that holds the file",
		                dir);
	if (!S_ISREG(st->st_mode))
		return lb__fail(LB_EINVAL, "%s: data.mdb is not a file", dir);
	if (st->st_nlink > 1)
		return lb__fail(LB_EINVAL,
		                "%s: data.mdb has %lu hard links: another "
		                "directory shares the file, and LMDB would "
		                "lock the two apart",
		                dir, (unsigned long)st->st_nlink);
	return 0;
}

/* ---- lb_open, lb_close -------------------------------------------------- */

/* dir must be a directory; with LB_CREATE a missing one is made. */
static int open_dir(const char *dir, unsigned flags)
{
	struct stat st;
	if (stat(dir, &st) != 0) {
		if (errno != ENOENT)
			return lb__fail(LB_EIO, "%s: %s", dir, strerror(errno));
		if (!(flags & LB_CREATE))
			return lb__fail(LB_ENOTFOUND,
			                "%s: no such directory (use LB_CREATE "
			                "to make one)",
			                dir);
		return mkdirs(dir);
	}
	if (!S_ISDIR(st.st_mode))
		return lb__fail(LB_EINVAL, "%s: not a directory", dir);
	return 0;
}

/* dir's data.mdb (*file, the caller's to free): *exists and, if so, *st.
 * A missing one is refused without LB_CREATE, an empty one read-only. */
static int open_file(const char *dir, unsigned flags, char **file, int *exists,
                     struct stat *st)
{
	int rc;
	if (asprintf(file, "%s/data.mdb", dir) < 0) {
		*file = NULL;
		return lb__fail(LB_ENOMEM, "out of memory");
	}
	*exists = lstat(*file, st) == 0;
	if (*exists && (rc = plain_file(dir, *file, st)) < 0)
		return rc;
	if (!*exists && !(flags & LB_CREATE))
		return lb__fail(LB_ENOTFOUND,
		                "%s: no logbook database here (use LB_CREATE "
		                "to make one)",
		                dir);
	if (*exists && st->st_size == 0 && (flags & LB_RDONLY))
		return lb__fail(LB_ECORRUPT, "%s: data.mdb is empty", dir);
	return 0;
}

/* A new handle on dir with opts, its locks and segment codecs ready
 * (*out, lb_close() frees it, even on failure). */
static int db_new(const char *dir, const lb_options *opts, lb_db **out)
{
	lb_db *db = calloc(1, sizeof *db);
	*out = NULL;
	if (!db || !(db->path = strdup(dir))) {
		free(db);
		return lb__fail(LB_ENOMEM, "out of memory");
	}
	db->flags = opts->flags;
	db->level = opts->compression < 0 ? 1 : opts->compression;
	db->segsize =
	        opts->segment_size ? opts->segment_size : LB__DEFAULT_SEGMENT;
	pthread_mutex_init(&db->wlock, NULL);
	pthread_mutex_init(&db->tlock, NULL);
	pthread_mutex_init(&db->catlock, NULL);
	pthread_rwlock_init(&db->maplock, NULL);
	lb__segr_init(&db->segr);
	*out = db;
	db->segw = &db->segw0;
	return lb__segw_init(&db->segw0, db->level);
}

/* The map size to open with: room to grow for a writer, what is there for
 * a reader. */
static size_t map_size(const lb_options *opts, int exists,
                       const struct stat *st)
{
	uint64_t map = opts->map_size ? opts->map_size : LB__DEFAULT_MAP;
	if (exists && (uint64_t)st->st_size + (uint64_t)st->st_size / 2 > map)
		map = (uint64_t)st->st_size * 2;
	/* A reader maps what is there (LMDB adds what the meta page counts,
	 * and a writer's growth is adopted as it comes): no need for a
	 * writer's room, which costs address space (ulimit -v). */
	if ((opts->flags & LB_RDONLY) && exists && !opts->map_size)
		map = (uint64_t)st->st_size > 65536 ? (uint64_t)st->st_size
		                                    : 65536;
	return (size_t)map;
}

/* Open db's LMDB environment on file, saying what a failure means, and
 * check the pages opening reads. */
static int open_env(lb_db *db, const char *dir, const char *file)
{
	int rc, mrc = env_open(db, db->env_map, &db->env);
	if (mrc) {
		/* A damaged meta page can make LMDB fail in odd ways
		 * (ENOMEM for a huge last page): say what it is. */
		if ((rc = lb__pagecheck_metas(file)) == LB_ECORRUPT)
			return lb__rewrap(rc, "%s", dir);
		if (mrc == MDB_INVALID)
			return lb__fail(LB_ECORRUPT,
			                "%s: data.mdb is not an LMDB file",
			                dir);
		if (mrc == ENOENT)
			return lb__fail(LB_ENOTFOUND, "%s: no database here",
			                dir);
		return lb__mdb_fail(mrc, dir);
	}
	/* LMDB trusts its pages: check the structure of what opening reads
	 * (meta pages, free list, main database, _meta) before it does. */
	if ((rc = lb__pagecheck(db->env, NULL, LB__PAGECHECK_OPEN)) < 0)
		return lb__rewrap(rc, "%s", dir);
	return 0;
}

int lb_open(const char *dir, const lb_options *opts, lb_db **out)
{
	lb_options defaults;
	lb_db *db = NULL;
	char *file = NULL;
	struct stat st;
	int rc, exists = 0, dead = 0;

	if (!out)
		return lb__fail(LB_EINVAL, "lb_open: db is NULL");
	*out = NULL;
	if (!dir || !*dir)
		return lb__fail(LB_EINVAL, "lb_open: empty directory name");
	if (!opts) {
		lb_options_init(&defaults);
		defaults.flags = LB_CREATE;
		opts = &defaults;
	}
	if ((rc = check_options(opts)) < 0 ||
	    (rc = open_dir(dir, opts->flags)) < 0)
		return rc;
	if ((rc = open_file(dir, opts->flags, &file, &exists, &st)) < 0 ||
	    (rc = db_new(dir, opts, &db)) < 0)
		goto fail;
	db->env_map = map_size(opts, exists, &st);
	/* one environment per file per process (created now if missing) */
	if ((exists && (rc = register_file(db, &st)) < 0) ||
	    (rc = open_env(db, dir, file)) < 0)
		goto fail;
	if (!exists && ((rc = plain_file(dir, file, &st)) < 0 ||
	                (rc = register_file(db, &st)) < 0))
		goto fail;
	mdb_reader_check(db->env, &dead);
	if ((rc = open_meta(db, (opts->flags & LB_CREATE) != 0)) < 0)
		goto fail;
	free(file);
	*out = db;
	return 0;
fail:
	free(file);
	lb_close(db);
	return rc;
}

void lb_close(lb_db *db)
{
	if (!db)
		return;
	lb__spare_drop(db);
	if (db->env)
		mdb_env_close(db->env);
	unregister_file(db);
	for (size_t i = 0; i < db->ntables; i++)
		lb__table_free(db->tables[i]);
	free(db->tables);
	lb__zw_free(db);
	lb__ra_free(db);
	lb__segw_free(&db->segw0);
	lb__segr_free(&db->segr);
	lb__asof_cache_free(db);
	pthread_mutex_destroy(&db->wlock);
	pthread_mutex_destroy(&db->tlock);
	pthread_mutex_destroy(&db->catlock);
	pthread_rwlock_destroy(&db->maplock);
	free(db->path);
	free(db);
}
