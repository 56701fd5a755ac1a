/* SPDX-License-Identifier: MIT */
/*
 * sys_logbook.c: logbook's phases, through the public API only.
 *
 * One run:
 *  1. commit: every batch into table "hearings" (opaque, or with the
 *     hearing schema for the logbook+schema column): lb_insert for new
 *     keys, lb_update for earlier ones, one lb_batch_commit per batch.
 *     Right after the middle batch (index (nbatches - 1) / 2) a checkpoint is
 * taken outside the clock: the base of replay-checkpoint.
 *  2. sizes: the store's files, and the log's raw and stored bytes summed
 *     from lb_batch_info over every batch.
 *  3. read-only phases on the committed database: get (lb_get of random
 *     existing keys, value freed), scan (snapshot + cursor over the table),
 *     verify, verify-replay, checkpoint (of the whole database), replay
 *     from empty to the last batch, replay from the middle checkpoint.
 *  4. phases that write, each on its own copy of the committed database
 *     (copied while closed, outside the clock): rollback-last (strict, the
 *     last batch: no later batch can conflict), rollback-mid (strict, the
 *     middle batch: W1's updates of random earlier keys make later batches
 *     touch its keys, so this normally measures how fast the conflicts are
 *     found and reported, nothing is written), rollback-force (the middle
 *     batch with LB_FORCE), cascade (the middle batch with LB_CASCADE: it
 *     and every later batch it depends on), rollback-to (every batch after
 *     the middle one).
 * Records/s of rollbacks and replays count the change records written, as
 * lb_result reports them.
 */
#include "bench.h"

#include <logbook.h>
#include <stdlib.h>
#include <string.h>

static const char TABLE[] = "hearings";

static const lb_field hearing_fields[] = {
        {"title", LB_STR, LB_REQUIRED, 0, NULL},
        {"date", LB_STR, LB_REQUIRED, 10, NULL},
        {"committee", LB_STR, LB_REQUIRED, 0, NULL},
        {"chamber", LB_STR, LB_REQUIRED, 16, NULL},
        {"congress", LB_INT, LB_REQUIRED, 0, NULL},
        {"url", LB_STR, LB_REQUIRED, 0, NULL},
};
static const lb_schema hearing_schema = {
        hearing_fields, sizeof hearing_fields / sizeof hearing_fields[0], 1};

typedef struct lbs {
	lb_db *db;
	uint64_t base; /* batch id of workload batch 0 */
	int err;       /* first error of commit */
	char errmsg[160];
} lbs;

static void fail(bk_meas *m, const char *what, int rc)
{
	m->failed = 1;
	bk_note(m, "%s: %s %.60s", what, lb_strerror(rc), lb_errmsg());
}

static int open_db(const bk_cfg *cfg, const char *dir, int create, lb_db **db)
{
	lb_options o;
	lb_options_init(&o);
	o.flags = (create ? LB_CREATE : 0) | (cfg->sync ? 0 : LB_NOSYNC);
	o.compression = cfg->compression;
	o.segment_size = cfg->segment_size;
	return lb_open(dir, &o, db);
}

static int lbs_open(const bk_cfg *cfg, const char *dir, int schema, void **h)
{
	lbs *s = calloc(1, sizeof *s);
	if (!s)
		return LB_ENOMEM;
	int rc = open_db(cfg, dir, 1, &s->db);
	if (rc == 0)
		rc = lb_table_create(s->db, TABLE,
		                     schema ? &hearing_schema : NULL);
	if (rc == 0)
		rc = lb_last_batch(s->db, &s->base);
	if (rc != 0) {
		snprintf(s->errmsg, sizeof s->errmsg, "open: %s %s",
		         lb_strerror(rc), lb_errmsg());
		lb_close(s->db);
		free(s);
		*h = NULL;
		return rc;
	}
	s->base++;
	*h = s;
	return 0;
}

static void lbs_close(void *h)
{
	lbs *s = h;
	if (!s)
		return;
	lb_close(s->db);
	free(s);
}

static int lbs_commit(void *h, const bk_batch *b)
{
	lbs *s = h;
	lb_batch *bt;
	int rc = lb_batch_begin(s->db, NULL, &bt);
	if (rc != 0)
		goto out;
	for (size_t i = 0; i < b->n; i++) {
		const bk_rec *r = &b->recs[i];
		const void *v = b->arena + r->voff;
		rc = r->op == OP_INSERT ? lb_insert(bt, TABLE, r->key,
		                                    BK_KEY_LEN, v, r->vlen)
		                        : lb_update(bt, TABLE, r->key,
		                                    BK_KEY_LEN, v, r->vlen);
		if (rc != 0) {
			lb_batch_abort(bt);
			goto out;
		}
	}
	rc = lb_batch_commit(bt, NULL);
out:
	if (rc != 0 && !s->err) {
		s->err = rc;
		snprintf(s->errmsg, sizeof s->errmsg, "commit: %s %s",
		         lb_strerror(rc), lb_errmsg());
	}
	return rc;
}

typedef struct ckpt_ctx {
	lbs *s;
	uint64_t at_index;
	const char *path;
	int rc;
	char note[96];
	/* a copy of the store before the last batch (NULL: not wanted) */
	uint64_t prelast_index;
	const char *db, *prelast;
	int prelast_rc;
} ckpt_ctx;

/* After batch i: the middle checkpoint, and the copy of the store before
 * the last batch (no batch is open, so the files are consistent). */
static int after_batch(void *h, uint64_t i, void *p)
{
	ckpt_ctx *c = p;
	(void)h;
	if (c->prelast && i == c->prelast_index)
		c->prelast_rc = bk_copy_dir(c->db, c->prelast);
	if (!c->path || i != c->at_index)
		return 0;
	c->rc = lb_checkpoint(c->s->db, c->path, NULL);
	if (c->rc != 0)
		snprintf(c->note, sizeof c->note, "checkpoint: %s %.60s",
		         lb_strerror(c->rc), lb_errmsg());
	return 0;
}

static void gets(lb_db *db, const bk_workload *w, bk_meas *m)
{
	char key[BK_KEY_LEN];
	uint64_t sum = 0;
	double t0 = bk_now();
	for (uint64_t i = 0; i < w->nreads; i++) {
		void *v;
		size_t vl;
		bk_key_w(w, w->reads[i], key);
		int rc = lb_get(db, TABLE, key, BK_KEY_LEN, &v, &vl);
		if (rc != 0) {
			fail(m, "lb_get", rc);
			return;
		}
		sum += vl ? ((uint8_t *)v)[vl / 2] : 0;
		free(v);
	}
	bk_meas_set(m, bk_now() - t0, w->nreads, 0);
	bk_sink += sum;
}

static void scan(lb_db *db, const bk_workload *w, bk_meas *m)
{
	lb_snapshot *sn;
	lb_cursor *c;
	uint64_t n = 0, bytes = 0;
	double t0 = bk_now();
	int rc = lb_snapshot_open(db, &sn);
	if (rc != 0) {
		fail(m, "lb_snapshot_open", rc);
		return;
	}
	rc = lb_cursor_open(sn, TABLE, &c);
	if (rc != 0) {
		lb_snapshot_close(sn);
		fail(m, "lb_cursor_open", rc);
		return;
	}
	const void *k, *v;
	size_t kl, vl;
	while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
		n++;
		bytes += kl + vl + (vl ? ((const uint8_t *)v)[0] : 0);
	}
	lb_cursor_close(c);
	lb_snapshot_close(sn);
	if (rc != LB_ENOTFOUND) {
		fail(m, "lb_cursor_next", rc);
		return;
	}
	bk_meas_set(m, bk_now() - t0, n, bytes);
	if (n != w->keys)
		bk_note(m, "scan saw %llu keys, expected %llu",
		        (unsigned long long)n, (unsigned long long)w->keys);
}

static int verify_values(lb_db *db, const bk_workload *w)
{
	char key[BK_KEY_LEN];
	int bad = 0;
	uint64_t step = w->keys / 1000 + 1;
	for (uint64_t i = 0; i < w->keys; i += step) {
		void *v;
		size_t vl;
		bk_key_w(w, i, key);
		if (lb_get(db, TABLE, key, BK_KEY_LEN, &v, &vl) != 0) {
			bad++;
			continue;
		}
		bad += bk_workload_check(w, i, v, vl) != 0;
		free(v);
	}
	return bad;
}

static void verify(lb_db *db, unsigned flags, bk_meas *m)
{
	lb_verify_report rep;
	memset(&rep, 0, sizeof rep);
	double t0 = bk_now();
	int rc = lb_verify(db, flags, &rep);
	double t1 = bk_now();
	if (rc != 0) {
		m->failed = 1;
		bk_note(m, "lb_verify: %s %.60s", lb_strerror(rc),
		        rep.detail[0] ? rep.detail : lb_errmsg());
		return;
	}
	bk_meas_set(m, t1 - t0, rep.records, 0);
}

static void replay(lb_db *db, const bk_ctx *c, const char *from,
                   uint64_t expect, bk_meas *m)
{
	char *rd = bk_path(c->dir, "replay");
	lb_result res;
	memset(&res, 0, sizeof res);
	double t0 = bk_now();
	int rc = lb_replay(db, rd, 0, from, &res);
	double t1 = bk_now();
	if (rc != 0)
		fail(m, "lb_replay", rc);
	else
		bk_meas_set(m, t1 - t0, res.records ? res.records : expect, 0);
	lb_result_free(&res);
	bk_rmrf(rd);
	free(rd);
}

static void checkpoint(lb_db *db, const bk_ctx *c, bk_meas *m)
{
	char *cd = bk_path(c->dir, "ckpt-full");
	double t0 = bk_now();
	int rc = lb_checkpoint(db, cd, NULL);
	double t1 = bk_now();
	if (rc != 0)
		fail(m, "lb_checkpoint", rc);
	else
		bk_meas_set(m, t1 - t0, c->w->n, bk_du(cd));
	bk_rmrf(cd);
	free(cd);
}

/* The last batch committed on a freshly opened copy of the store as it was
 * before it: what the rollback of the last batch, also run on a freshly
 * opened copy, is compared with. */
static double commit_last_fresh(const bk_ctx *c, const char *prelast)
{
	const bk_workload *w = c->w;
	char *cp = bk_path(c->dir, "copy");
	double secs = 0;
	if (bk_copy_dir(prelast, cp) != 0)
		bk_die("copy of %s failed", prelast);
	lbs s = {0};
	if (open_db(c->cfg, cp, 0, &s.db) == 0) {
		bk_batch b = bk_workload_batch(w, w->nbatches - 1);
		double t0 = bk_now();
		if (lbs_commit(&s, &b) == 0)
			secs = bk_now() - t0;
		lb_close(s.db);
	}
	bk_rmrf(cp);
	free(cp);
	return secs;
}

/* A rollback phase on a fresh copy of the committed database at db. */
static void rollback(const bk_ctx *c, const char *db, int ph, uint64_t id,
                     uint64_t nrec, bk_meas *m)
{
	char *cp = bk_path(c->dir, "copy");
	lb_db *d;
	lb_result res;
	memset(&res, 0, sizeof res);
	if (bk_copy_dir(db, cp) != 0)
		bk_die("copy of %s failed", db);
	int rc = open_db(c->cfg, cp, 0, &d);
	if (rc != 0) {
		fail(m, "lb_open copy", rc);
		goto out;
	}
	double t0 = bk_now();
	switch (ph) {
	case PH_RB_LAST:
	case PH_RB_MID:
		rc = lb_rollback(d, id, 0, &res);
		break;
	case PH_RB_FORCE:
		rc = lb_rollback(d, id, LB_FORCE, &res);
		break;
	case PH_CASCADE:
		rc = lb_rollback(d, id, LB_CASCADE, &res);
		break;
	case PH_RB_TO:
		rc = lb_rollback_to(d, id, &res);
		break;
	}
	double t1 = bk_now();
	if (rc == LB_ECONFLICT && ph == PH_RB_MID) {
		/* Expected under W1: time to find and report conflicts. */
		bk_meas_set(m, t1 - t0, nrec, 0);
		bk_note(m, "refused: %llu conflicts",
		        (unsigned long long)res.nissues_total);
	} else if (rc != 0) {
		fail(m, bk_phase_name(ph), rc);
	} else {
		bk_meas_set(m, t1 - t0, res.records, 0);
	}
	lb_result_free(&res);
	lb_close(d);
out:
	bk_rmrf(cp);
	free(cp);
}

/* Open s's database at dir, closing it first if it is open. */
static int reopen_db(const bk_ctx *c, const char *dir, lbs *s)
{
	lb_close(s->db);
	s->db = NULL;
	return open_db(c->cfg, dir, 0, &s->db);
}

/* BK_RB_LOOP rounds, in one process on a fresh copy of the committed
 * database at db, of rolling back the last batch and then committing the
 * workload's last batch again (its inserts and updates are valid again
 * once it is undone), so that every round undoes an ordinary batch of the
 * same records: the median time of the rollbacks, in seconds, or 0 on
 * failure, and in *commit_secs that of the commits, their peer measured in
 * pairs. Warm (reopen 0), the database stays open, like the commits of
 * late_batch_secs; with reopen, it is closed and opened again before each
 * rollback and each commit, so that every one runs on a fresh open, like
 * "rollback last batch" and "commit last, fresh open" each once. (Rolling
 * back the rollback instead would undo an undo batch from the second round
 * on, whose settling rewrites the header of every batch of the growing
 * chain of undo batches below it.) */
static double rollback_loop(const bk_ctx *c, const char *db, uint64_t id,
                            int reopen, double *commit_secs)
{
	char *cp = bk_path(c->dir, "copy");
	double v[BK_RB_LOOP], cv[BK_RB_LOOP], secs = 0;
	size_t n = 0;
	lbs s = {0};
	bk_batch last = bk_workload_batch(c->w, c->w->nbatches - 1);
	if (bk_copy_dir(db, cp) != 0)
		bk_die("copy of %s failed", db);
	for (; n < BK_RB_LOOP; n++) {
		lb_result res;
		if ((reopen || !s.db) && reopen_db(c, cp, &s) != 0)
			break;
		double t0 = bk_now();
		int rc = lb_rollback(s.db, id, 0, &res);
		v[n] = bk_now() - t0;
		lb_result_free(&res);
		if (rc != 0)
			break;
		if (reopen && reopen_db(c, cp, &s) != 0)
			break;
		t0 = bk_now();
		rc = lbs_commit(&s, &last);
		cv[n] = bk_now() - t0;
		if (rc != 0 || lb_last_batch(s.db, &id) != 0)
			break;
	}
	if (n < BK_RB_LOOP)
		fprintf(stderr,
		        "logbook-bench: rollback loop%s, round %zu: %s\n",
		        reopen ? " (fresh open)" : "", n + 1,
		        s.err ? s.errmsg : lb_errmsg());
	if (s.db)
		lb_close(s.db);
	if (n == BK_RB_LOOP) {
		secs = bk_median(v, n);
		*commit_secs = bk_median(cv, n);
	}
	bk_rmrf(cp);
	free(cp);
	return secs;
}

static int lbs_run(const bk_ctx *c, bk_run *out)
{
	const bk_workload *w = c->w;
	bk_meas *cm = &out->ph[PH_COMMIT];
	char *db = bk_path(c->dir, "db");
	char *ck = bk_path(c->dir, "ckpt-mid");
	char *pre = bk_path(c->dir, "before-last");
	uint64_t mid = w->mid;
	lbs *s;
	int rc = lbs_open(c->cfg, db, c->schema, (void **)&s);
	if (rc != 0) {
		fail(cm, "open", rc);
		goto done;
	}
	int want_ck = !c->schema && (c->phases & 1u << PH_REPLAY_CKPT);
	int want_pre =
	        !c->schema && (c->phases & 1u << PH_RB_LAST) && w->nbatches > 1;
	ckpt_ctx cc = {s,
	               mid,
	               want_ck ? ck : NULL,
	               0,
	               "",
	               w->nbatches - 2,
	               db,
	               want_pre ? pre : NULL,
	               0};
	if (bk_commit_all(&bk_sys_logbook, s, w, out,
	                  want_ck || want_pre ? after_batch : NULL, &cc) != 0) {
		cm->failed = 1;
		bk_note(cm, "%s", s->errmsg);
		lbs_close(s);
		goto done;
	}
	if (verify_values(s->db, w) != 0)
		bk_note(cm, "WRONG VALUES after commit");

	uint64_t last = 0, base = s->base;
	lb_last_batch(s->db, &last);
	out->has_log = 1;
	for (uint64_t id = 1; id <= last; id++) {
		lb_batch_info bi;
		if (lb_batch_info_get(s->db, id, &bi) == 0) {
			out->log_raw += bi.raw_bytes;
			out->log_stored += bi.stored_bytes;
		}
	}
	lbs_close(s);
	out->disk_bytes = bk_du(db);
	if (c->schema)
		goto done; /* the schema column measures commit only */

	lb_db *d;
	rc = open_db(c->cfg, db, 0, &d);
	if (rc != 0) {
		fail(&out->ph[PH_GET], "reopen", rc);
		goto done;
	}
	if (c->phases & 1u << PH_GET)
		gets(d, w, &out->ph[PH_GET]);
	if (c->phases & 1u << PH_SCAN)
		scan(d, w, &out->ph[PH_SCAN]);
	bk_feed_phases(c, d, base, out);
	if (c->phases & 1u << PH_FOLLOW)
		bk_follow_phase(c, d, &out->ph[PH_FOLLOW]);
	if (c->phases & 1u << PH_VERIFY)
		verify(d, 0, &out->ph[PH_VERIFY]);
	if (c->phases & 1u << PH_VERIFY_RPL)
		verify(d, LB_VERIFY_REPLAY, &out->ph[PH_VERIFY_RPL]);
	if (c->phases & 1u << PH_CHECKPOINT)
		checkpoint(d, c, &out->ph[PH_CHECKPOINT]);
	if (c->phases & 1u << PH_REPLAY)
		replay(d, c, NULL, w->n, &out->ph[PH_REPLAY]);
	if (want_ck) {
		bk_meas *m = &out->ph[PH_REPLAY_CKPT];
		if (cc.rc != 0) {
			m->failed = 1;
			bk_note(m, "%s", cc.note);
		} else {
			replay(d, c, ck,
			       bk_workload_records(w, mid + 1, w->nbatches), m);
		}
	}
	lb_close(d);

	static const int rb[] = {PH_RB_LAST, PH_RB_MID, PH_RB_FORCE, PH_CASCADE,
	                         PH_RB_TO};
	for (size_t i = 0; i < sizeof rb / sizeof rb[0]; i++) {
		if (!(c->phases & 1u << rb[i]))
			continue;
		uint64_t bi = rb[i] == PH_RB_LAST ? w->nbatches - 1 : mid;
		if (rb[i] == PH_RB_LAST && want_pre && cc.prelast_rc == 0)
			out->last_batch_fresh_secs = commit_last_fresh(c, pre);
		rollback(c, db, rb[i], base + bi,
		         bk_workload_records(w, bi, bi + 1), &out->ph[rb[i]]);
	}
	if (c->phases & 1u << PH_RB_LAST) {
		uint64_t id = base + w->nbatches - 1;
		out->rb_loop_secs =
		        rollback_loop(c, db, id, 0, &out->rb_loop_commit_secs);
		out->rb_fresh_secs =
		        rollback_loop(c, db, id, 1, &out->rb_fresh_commit_secs);
	}
done:
	bk_rmrf(ck);
	bk_rmrf(pre);
	if (!c->cfg->keep)
		bk_rmrf(db);
	free(ck);
	free(pre);
	free(db);
	return 0;
}

const bk_system bk_sys_logbook = {
        .id = SYS_LOGBOOK,
        .phases = (1u << PH__COUNT) - 1,
        .open = lbs_open,
        .commit = lbs_commit,
        .close = lbs_close,
        .run = lbs_run,
};
