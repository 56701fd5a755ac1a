/* SPDX-License-Identifier: MIT */
/*
 * replay.c: lb_replay, building the database as it was after a batch.
 *
 * The base is either an empty database or a copy of a checkpoint. Then each
 * batch after the base, up to the target, is replayed on the new database,
 * several batches to one transaction (a group of up to RP_GROUP_BATCHES
 * batches or RP_GROUP_RAW bytes of records, each batch's header written as
 * it ends: lb__batch_chain_hdr): its segments are copied verbatim into
 * `_wal` (same keys), their records decoded one segment at a time and the
 * after-images applied (puts, deletes, table creations and removals, in log
 * order), and the batch header copied from the source. While the records of
 * one segment are applied, the next segment (of the batch, or the next
 * batch's first) is checked and inflated on a second thread (readahead.c).
 * The new database's log is therefore the source's log up to the target,
 * with the same hashes, and it verifies. Memory is bounded by two segments
 * however long the log.
 *
 * Copying segments as stored (no re-encoding, no recompression) is what
 * makes replay at least as fast as the commits that wrote the log: the hot
 * loop is inflate, decode, put.
 *
 * The source is read through one read transaction, so a replay is
 * consistent while other threads commit; it takes no writer lock on the
 * source. Every segment is checked against its header's SHA-256 and every
 * header's hash recomputed before use, and the new database's commit checks
 * that each header chains to the one before: a damaged log stops the
 * replay with LB_ECORRUPT naming the batch, and never yields a database
 * that looks complete.
 *
 * Header state (outside the hash) is that of the log up to the target:
 * each replayed undo batch is given what it undoes in the source
 * (`_victims`), and settles who stands as its commit did (undo.c), so
 * `rolled_back_by` is what it was right after the target, for the batches
 * of a checkpoint base too; `pruned` is 0 (the new database holds the
 * segments).
 *
 * A checkpoint base whose own log is pruned (a checkpoint of a pruned
 * database) passes its pruned batches on to the new database, which can
 * then only be replayed, and verified with replay, from a checkpoint at or
 * after its last pruned batch. Such a base's `_checkpoints` are not the new
 * database's, so they go, but one registration is kept or added, unchanged,
 * as the one base the new database is known to be replayable from
 * (base_checkpoints).
 *
 * The database is built in a hidden sibling directory of the destination,
 * with LMDB's fsync off, synced once at the end, then renamed into place
 * (checkpoint.c), so a killed replay leaves nothing that looks valid.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/internal.h"

typedef struct rp {
	lb_db *src;
	MDB_txn *txn;
	lb_db *dst;
	uint64_t to;
	lb_segr r;
	uint64_t records;
	uint64_t failed;  /* the batch a failure belongs to, 0 if none */
	uint64_t horizon; /* the checkpoint base's last pruned batch, or 0 */
	/* the open transaction of a group of batches (lb__batch_chain_hdr),
	 * its batches and raw bytes so far */
	lb_batch *grp;
	unsigned grp_n;
	uint64_t grp_raw;
	/* the next batch's header, read with the last segment of a batch so
	 * that its first segment is read ahead too (next_ahead) */
	lb_wal_hdr next;
	int has_next, next_ahead;
	/* the segment handed to the read-ahead worker, as stored (its put
	 * into `_wal` copies it from the source's map) */
	MDB_val ahead_v;
} rp;

/* A group ends past these: they bound the dirty pages (memory) a replay
 * holds, while sparing the page writes of a commit per batch; at 6 MiB of
 * records the batch journal (grow.c) stays in memory. */
#define RP_GROUP_BATCHES 64
#define RP_GROUP_RAW (6u << 20)

/* Tests only: the new database's initial map instead of the source's, to
 * make a replay grow its map (and redo a group) on purpose. */
uint64_t lb__replay_map;

static int as_corrupt(int rc)
{
	/* In a replay, a record the engine refuses (a table that exists
	 * already, a missing one, a delete of a missing key) means the log
	 * contradicts itself. */
	return rc == LB_EEXIST || rc == LB_ENOTFOUND || rc == LB_EINVAL
	               ? LB_ECORRUPT
	               : rc;
}

/* Apply one record's after-image. *tcache holds the table of the previous
 * record (valid until a table record changes the table set). */
int lb__replay_rec(lb_batch *b, const lb_wal_rec *rec, lb_table **tcache)
{
	char name[LB_TABLE_NAME_MAX + 1];
	lb_table *t = *tcache;
	int rc;
	if (rec->tlen == 0 || rec->tlen > LB_TABLE_NAME_MAX)
		return lb__fail(LB_ECORRUPT, "record with a bad table name");
	if (rec->op == LB_OP_TABLE) {
		memcpy(name, rec->table, rec->tlen);
		name[rec->tlen] = 0;
		*tcache = NULL;
		if (rec->has_before && rec->has_after)
			rc = lb__alter_table(b, name, rec->after, rec->alen,
			                     LB__HOW_REPLAY);
		else if (rec->has_after)
			rc = lb__apply_table(b, name, rec->after, rec->alen, 0,
			                     LB__HOW_REPLAY);
		else
			rc = lb__apply_table(b, name, NULL, 0, 1,
			                     LB__HOW_REPLAY);
		if (rc < 0)
			return lb__rewrap(as_corrupt(rc), "table %s", name);
		return 0;
	}
	if (!t || strlen(t->name) != rec->tlen ||
	    memcmp(t->name, rec->table, rec->tlen) != 0) {
		memcpy(name, rec->table, rec->tlen);
		name[rec->tlen] = 0;
		if (!(t = lb__batch_table(b, name)))
			return lb__fail(
			        LB_ECORRUPT,
			        "a record names table %s, which does not "
			        "exist at that point",
			        name);
		*tcache = t;
	}
	uint64_t gen = b->txn_gen;
	b->check_prev = 1;
	b->want_prev = rec->prev;
	if (rec->op == LB_OP_PUT)
		rc = lb__apply(b, t, LB__MODE_PUT, rec->key, rec->klen,
		               rec->after, rec->alen, LB__HOW_REPLAY);
	else
		rc = lb__apply(b, t, LB__MODE_DELETE, rec->key, rec->klen, NULL,
		               0, LB__HOW_REPLAY);
	b->check_prev = 0;
	if (b->txn_gen != gen) /* redone after growing the map: the tables
	                          this transaction made are new objects */
		*tcache = NULL;
	return rc < 0 ? as_corrupt(rc) : 0;
}

static int pruned_fail(rp *p, uint64_t id)
{
	/* Pruned batches are a prefix of the log: find its end to say which
	 * checkpoint would do. */
	uint64_t end = id;
	for (uint64_t i = id + 1; i <= p->to; i++) {
		lb_wal_hdr h;
		if (lb__hdr_get(p->src, p->txn, i, &h) < 0)
			break;
		int pr = h.pruned;
		lb__hdr_free(&h);
		if (!pr)
			break;
		end = i;
	}
	return lb__fail(LB_EPRUNED,
	                "batch %llu's log was pruned: replay from a "
	                "checkpoint taken at batch %llu or later",
	                (unsigned long long)id, (unsigned long long)end);
}

/* What batch id undoes in the source (`_victims`), for b: its undo kind,
 * the batches it undoes, and whether its history is implied. The new
 * database settles who stands from them at each batch (undo.c), as the
 * source did. */
static int undo_of_source(rp *p, uint64_t id, lb_batch *b)
{
	lb_victims vs;
	int rc = lb__victims_get(p->src, p->txn, id, &vs);
	b->nmarks = 0;
	b->undo_kind = rc == 0 ? vs.kind : 0;
	b->implied = b->undo_kind == LB__UNDO_ROLLBACK;
	if (rc < 0 || vs.kind == 0 || vs.kind == LB__UNDO_TO)
		return rc;
	for (size_t i = 0; i < vs.n && rc == 0; i++)
		rc = lb__batch_mark(b, lb__victims_at(&vs, i));
	return rc;
}

/* Segment s of the batch whose header is h, loaded into p->r, as stored
 * into *stored (in the source's map): from the read-ahead worker if it was
 * handed over (ahead), else read here. */
static int read_segment(rp *p, const lb_wal_hdr *h, uint32_t s, int ahead,
                        MDB_val *stored)
{
	if (!ahead)
		return lb__segment_load(p->src, p->txn, h, s, &p->r, stored);
	*stored = p->ahead_v;
	return lb__ra_collect(p->dst, &p->r, NULL, NULL, NULL);
}

/* After the last segment of batch id: read the next batch's header and
 * hand its first segment to the read-ahead worker. Nothing is read ahead
 * if the header cannot be read: replay_batch reads it again and reports
 * why, as the next batch's failure. Only LB_ENOMEM fails here. */
static int read_next(rp *p, uint64_t id)
{
	if (id >= p->to)
		return 0;
	int rc = lb__hdr_get(p->src, p->txn, id + 1, &p->next);
	if (rc < 0)
		return rc == LB_ENOMEM ? rc : 0;
	p->has_next = 1;
	p->next_ahead = !p->next.pruned && p->next.segments > 0 &&
	                lb__ra_submit(p->dst, p->src, p->txn, &p->next, 0, 0,
	                              &p->ahead_v);
	return 0;
}

static int replay_batch(rp *p, uint64_t id)
{
	lb_wal_hdr h;
	lb_batch *b = p->grp;
	lb_table *tcache = NULL;
	uint64_t n = 0;
	int rc = 0, ahead = 0;
	if (p->has_next) { /* read with the batch before (read_next) */
		h = p->next;
		ahead = p->next_ahead;
		p->has_next = p->next_ahead = 0;
	} else {
		rc = lb__hdr_get(p->src, p->txn, id, &h);
	}
	if (rc < 0)
		return rc == LB_ENOTFOUND
		               ? lb__fail(LB_ECORRUPT,
		                          "batch %llu is missing from the log",
		                          (unsigned long long)id)
		               : rc;
	if (h.pruned) {
		rc = pruned_fail(p, id);
		goto out;
	}
	if ((rc = lb__hdr_intact(&h, id)) < 0)
		goto out;
	if (!b && (rc = lb__batch_begin_raw(p->dst, h.label, &b)) < 0)
		goto out;
	b->private_db = 1; /* the new database is the replay's alone */
	p->grp = b;
	if (b->id != id) {
		rc = lb__fail(LB_ECORRUPT,
		              "replaying batch %llu onto a database whose "
		              "next batch is %llu",
		              (unsigned long long)id,
		              (unsigned long long)b->id);
		goto out;
	}
	if ((rc = undo_of_source(p, id, b)) < 0)
		goto out;
	b->undoes = h.undoes;
	for (uint32_t s = 0; s < h.segments; s++) {
		MDB_val v;
		if ((rc = read_segment(p, &h, s, ahead, &v)) < 0)
			goto out;
		/* the next segment (of this batch, or the next batch's first)
		 * is checked and inflated on the new database's read-ahead
		 * worker while the records of s are applied here */
		ahead = s + 1 < h.segments &&
		        lb__ra_submit(p->dst, p->src, p->txn, &h, s + 1, 0,
		                      &p->ahead_v);
		if (s + 1 == h.segments && (rc = read_next(p, id)) < 0)
			goto out;
		if ((rc = lb__batch_put_segment(b, s, v.mv_data, v.mv_size)) <
		    0)
			goto out;
		lb_wal_rec rec;
		int got;
		while ((got = lb__segr_next(&p->r, &rec)) == 1) {
			if ((rc = lb__replay_rec(b, &rec, &tcache)) < 0)
				goto out;
			n++;
		}
		if (got < 0) {
			rc = lb__rewrap(got, "segment %u", s);
			goto out;
		}
	}
	if (n != h.records) {
		rc = lb__fail(LB_ECORRUPT, "%llu records, the header says %llu",
		              (unsigned long long)n,
		              (unsigned long long)h.records);
		goto out;
	}
	/* standing as of this batch: settled as later batches come */
	h.rolled_back_by = 0;
	h.pruned = 0;
	p->grp_n++;
	p->grp_raw += h.raw_bytes;
	/* a group ends at a table removal: its commit frees the removed
	 * table's slot among LMDB's handles for the tables created next */
	if (id == p->to || p->grp_n >= RP_GROUP_BATCHES ||
	    p->grp_raw >= RP_GROUP_RAW || lb__batch_drops(b)) {
		/* the group so far becomes durable with this batch */
		rc = lb__batch_commit_hdr(b, &h); /* frees b */
		b = p->grp = NULL;
		p->grp_n = 0;
		p->grp_raw = 0;
	} else {
		rc = lb__batch_chain_hdr(b, &h);
	}
	if (rc == 0)
		p->records += n;
out:
	if (rc < 0)
		lb__ra_drain(p->dst); /* a failure left one in flight */
	if (rc < 0 && b) {
		lb_batch_abort(b);
		p->grp = NULL;
	}
	lb__hdr_free(&h);
	if (rc < 0)
		return lb__rewrap(rc, "replaying batch %llu",
		                  (unsigned long long)id);
	return 0;
}

/* Check that checkpoint c (at batch at) holds the source's batches 1..at,
 * header hash for header hash, and note c's last pruned batch. */
static int ckpt_match(rp *p, lb_db *c, const char *path, uint64_t at)
{
	MDB_txn *ct;
	int rc = 0;
	lb__read_begin(c);
	int mrc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &ct);
	if (mrc) {
		lb__read_end(c);
		return lb__mdb_fail(mrc, path);
	}
	for (uint64_t id = 1; id <= at && rc == 0; id++) {
		lb_wal_hdr hs, hc;
		int rs = lb__hdr_get(p->src, p->txn, id, &hs);
		if (rs < 0) {
			rc = rs == LB_ENOTFOUND
			             ? lb__fail(
			                       LB_ECORRUPT,
			                       "batch %llu is missing from the "
			                       "log",
			                       (unsigned long long)id)
			             : rs;
			break;
		}
		if ((rs = lb__hdr_get(c, ct, id, &hc)) < 0) {
			lb__hdr_free(&hs);
			rc = rs == LB_ENOMEM
			             ? rs
			             : lb__fail(LB_EINVAL,
			                        "checkpoint %s is not of this "
			                        "database (its batch %llu is "
			                        "unreadable)",
			                        path, (unsigned long long)id);
			break;
		}
		if (hc.pruned)
			p->horizon = id; /* pruned batches are a prefix */
		if (memcmp(hs.hash, hc.hash, 32) != 0)
			rc = lb__fail(LB_EINVAL,
			              "checkpoint %s is not of this database "
			              "(batch %llu differs)",
			              path, (unsigned long long)id);
		lb__hdr_free(&hs);
		lb__hdr_free(&hc);
	}
	mdb_txn_abort(ct);
	lb__read_end(c);
	return rc;
}

/* Open the checkpoint, check it, and copy it into dir. *at = its batch. */
static int ckpt_base(rp *p, const char *path, const char *dir, uint64_t *at)
{
	lb_options o;
	lb_db *c;
	lb_options_init(&o);
	o.flags = LB_RDONLY;
	int rc = lb_open(path, &o, &c);
	if (rc < 0)
		return lb__rewrap(rc == LB_ENOTFOUND ? LB_EINVAL : rc,
		                  "checkpoint %s", path);
	*at = c->last_id;
	if (*at > p->to) {
		rc = lb__fail(
		        LB_EINVAL,
		        "checkpoint %s is at batch %llu, after batch %llu",
		        path, (unsigned long long)*at,
		        (unsigned long long)p->to);
	} else if ((rc = ckpt_match(p, c, path, *at)) == 0) {
		lb__read_begin(c);
		int mrc = mdb_env_copy2(c->env, dir, MDB_CP_COMPACT);
		lb__read_end(c);
		if (mrc)
			rc = lb__mdb_fail(mrc, "copying the checkpoint");
	}
	lb_close(c);
	return rc;
}

/* Do a and b name the same directory? */
static int same_dir(const char *a, const char *b)
{
	struct stat sa, sb;
	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A failure to look a registration up: out of memory or I/O stops the
 * replay; a damaged or empty list only means that nothing is kept. */
static int lookup_rc(int rc)
{
	return rc == LB_ENOMEM || rc == LB_EIO ? rc : 0;
}

/* Settle the new database's `_checkpoints`, copied from the base `from`
 * (at batch `at`). The base's registrations are its own checkpoints, not
 * the new database's, so they go. But when the base's log is pruned up to
 * p->horizon, so is the new database's, and it can only be replayed from a
 * checkpoint at a batch in horizon..at: one that holds its batches 1..at'.
 * Two are known to, and the newer is kept, its registration unchanged
 * (path and time):
 *  - the base itself, when the source registers that very directory at
 *    `at` (a checkpoint of the source, which is not written to): ckpt_match
 *    showed that it holds the source's batches 1..at, which the new
 *    database copies;
 *  - else the newest of the base's own registrations at a batch in
 *    horizon..at whose directory still holds data.mdb: a checkpoint of the
 *    base (or, for a checkpoint of a pruned database, the one it kept,
 *    which holds its batches: checkpoint.c copy_checkpoints), so it holds
 *    the base's batches 1..at', which are the new database's too.
 * A base that is not registered at `at` (moved, or not a checkpoint of the
 * source) is not registered: a database that is still written to would
 * not stay at `at`. With neither, the list is empty, and a verify with
 * replay of the new database says that no checkpoint is left. */
static int base_checkpoints(rp *p, const char *from, uint64_t at)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v, keep = {0, NULL};
	uint8_t kb[8];
	uint64_t e, found;
	char *path;
	void *copy = NULL;
	int rc = 0, mrc = mdb_txn_begin(p->dst->env, NULL, 0, &txn);
	if (mrc)
		return lb__mdb_fail(mrc, "settling _checkpoints");
	if (p->horizon) {
		rc = lb__checkpoint_find(p->src, p->txn, at, at, &found, &path);
		if (rc == 0) {
			if (same_dir(path, from)) {
				lb__be64(kb, at);
				k.mv_size = 8;
				k.mv_data = kb;
				/* valid while p->txn lives */
				mrc = mdb_get(p->txn, p->src->ckpts, &k, &v);
				if (mrc == 0)
					keep = v;
				else if (mrc != MDB_NOTFOUND)
					rc = lb__mdb_fail(mrc, "_checkpoints");
			}
			free(path);
		} else {
			rc = lookup_rc(rc);
		}
	}
	if (rc == 0 && p->horizon && !keep.mv_data) {
		if ((mrc = mdb_cursor_open(txn, p->dst->ckpts, &cur))) {
			rc = lb__mdb_fail(mrc, "_checkpoints");
			goto out;
		}
		for (mrc = mdb_cursor_get(cur, &k, &v, MDB_LAST); mrc == 0;
		     mrc = mdb_cursor_get(cur, &k, &v, MDB_PREV)) {
			if (k.mv_size != 8)
				continue;
			e = lb__get_be64(k.mv_data);
			if (e < p->horizon)
				break;
			if (e > at)
				continue;
			rc = lb__checkpoint_find(p->dst, txn, e, e, &found,
			                         &path);
			if (rc == 0) {
				free(path);
				/* the value goes with the drop below */
				if (!(copy = malloc(v.mv_size + 1))) {
					rc = lb__fail(LB_ENOMEM,
					              "out of memory");
					break;
				}
				memcpy(copy, v.mv_data, v.mv_size);
				keep.mv_size = v.mv_size;
				keep.mv_data = copy;
				lb__be64(kb, e);
				break;
			}
			if ((rc = lookup_rc(rc)) < 0)
				break;
		}
		if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
			rc = lb__mdb_fail(mrc, "_checkpoints");
		mdb_cursor_close(cur);
	}
	if (rc == 0 && (mrc = mdb_drop(txn, p->dst->ckpts, 0)))
		rc = lb__mdb_fail(mrc, "clearing _checkpoints");
	if (rc == 0 && keep.mv_data) {
		k.mv_size = 8;
		k.mv_data = kb;
		if ((mrc = mdb_put(txn, p->dst->ckpts, &k, &keep, 0)))
			rc = lb__mdb_fail(mrc, "_checkpoints");
	}
out:
	if (rc < 0)
		mdb_txn_abort(txn);
	else if ((mrc = mdb_txn_commit(txn)))
		rc = lb__mdb_fail(mrc, "settling _checkpoints");
	free(copy);
	return rc;
}

static int new_identity(lb_db *db)
{
	MDB_txn *txn;
	int rc, mrc = mdb_txn_begin(db->env, NULL, 0, &txn);
	if (mrc)
		return lb__mdb_fail(mrc, "making the replay's id");
	if ((rc = lb__identity_make(db, txn)) < 0)
		mdb_txn_abort(txn);
	else if ((mrc = mdb_txn_commit(txn)))
		rc = lb__mdb_fail(mrc, "making the replay's id");
	return rc;
}

int lb__replay_txn(lb_db *src, MDB_txn *txn, const char *dest, uint64_t to,
                   const char *from_checkpoint, uint64_t *records,
                   uint64_t *failed)
{
	rp p;
	char *tmp = NULL;
	uint64_t at = 0;
	lb_options o;
	MDB_envinfo info;
	int rc;

	memset(&p, 0, sizeof p);
	p.src = src;
	p.txn = txn;
	p.to = to;
	lb__segr_init(&p.r);
	*records = 0;
	if (failed)
		*failed = 0;
	if ((rc = lb__dest_check(dest)) < 0)
		goto out;
	if (!from_checkpoint && to > 0) {
		/* refuse a pruned log before building anything */
		lb_wal_hdr h;
		if ((rc = lb__hdr_get(src, txn, 1, &h)) < 0) {
			if (rc == LB_ENOTFOUND)
				rc = lb__fail(
				        LB_ECORRUPT,
				        "batch 1 is missing from the log");
			goto out;
		}
		int pr = h.pruned;
		lb__hdr_free(&h);
		if (pr) {
			rc = pruned_fail(&p, 1);
			p.failed = 1;
			goto out;
		}
	}
	if ((rc = lb__dest_tmp(dest, &tmp)) < 0)
		goto out;
	if (from_checkpoint &&
	    (rc = ckpt_base(&p, from_checkpoint, tmp, &at)) < 0)
		goto out;
	/* The new database gets a map twice the source's data, so the
	 * replay seldom has to grow it, and no more: address space may be
	 * scarce (ulimit -v), and the map grows on demand. */
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	MDB_stat est;
	mdb_env_info(src->env, &info);
	mdb_env_stat(src->env, &est);
	o.map_size = ((uint64_t)info.me_last_pgno + 1) * est.ms_psize * 2;
	if (o.map_size < (1u << 20))
		o.map_size = 1u << 20;
	if (lb__replay_map)
		o.map_size = lb__replay_map;
	if ((rc = lb_open(tmp, &o, &p.dst)) < 0)
		goto out;
	if (from_checkpoint &&
	    (rc = base_checkpoints(&p, from_checkpoint, at)) < 0)
		goto out;
	/* a copy of the checkpoint holds its id (and, of a follower, its
	 * primary): the new database is a database of its own */
	if (from_checkpoint && (rc = new_identity(p.dst)) < 0)
		goto out;
	for (uint64_t id = at + 1; id <= to; id++) {
		if ((rc = replay_batch(&p, id)) < 0) {
			p.failed = id;
			goto out;
		}
	}
	int mrc = mdb_env_sync(p.dst->env, 1);
	if (mrc) {
		rc = lb__mdb_fail(mrc, "syncing the replay");
		goto out;
	}
	lb_close(p.dst);
	p.dst = NULL;
	if ((rc = lb__dest_publish(tmp, dest)) < 0)
		goto out;
	*records = p.records;
out:
	if (p.grp)
		lb_batch_abort(p.grp);
	if (p.dst)
		lb_close(p.dst);
	if (rc < 0 && tmp)
		lb__rmdir_files(tmp);
	free(tmp);
	lb__segr_free(&p.r);
	if (p.has_next)
		lb__hdr_free(&p.next);
	if (failed)
		*failed = p.failed;
	return rc;
}

int lb_replay(lb_db *src, const char *dest_dir, uint64_t to_batch,
              const char *from_checkpoint, lb_result *res)
{
	MDB_txn *txn;
	uint64_t last = 0, records = 0;
	int rc;
	if (res)
		memset(res, 0, sizeof *res);
	if (!src || !dest_dir || !*dest_dir)
		return lb__fail(LB_EINVAL, "lb_replay: NULL or empty argument");
	if (from_checkpoint && !*from_checkpoint)
		from_checkpoint = NULL;
	if ((rc = lb__read_txn(src, &txn)) < 0)
		return rc;
	rc = lb__last_in(src, txn, &last);
	if (rc == 0 && to_batch == 0)
		to_batch = last;
	if (rc == 0 && to_batch > last)
		rc = lb__fail(LB_ENOTFOUND,
		              "cannot replay to batch %llu: the last batch is "
		              "%llu",
		              (unsigned long long)to_batch,
		              (unsigned long long)last);
	if (rc == 0)
		rc = lb__replay_txn(src, txn, dest_dir, to_batch,
		                    from_checkpoint, &records, NULL);
	lb__read_done(src, txn);
	if (res) {
		res->rc = rc;
		if (rc == 0) {
			res->batch_id = to_batch;
			res->records = records;
		}
	}
	return rc;
}
