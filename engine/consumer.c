/* SPDX-License-Identifier: MIT */
/*
 * consumer.c: named consumers of the log, and the retention they impose on
 * lb_prune.
 *
 * A consumer is a `_meta` entry `consumer/<name>` (FORMAT.md §2.1): the
 * last batch it acknowledged, when, and whether it was lost. It is not a
 * logged change: acknowledging consumes no batch id and is not replayed,
 * so a replay or a restored checkpoint starts with the consumers the copy
 * held. The limits (`consumer-limits`) say how far behind a consumer may
 * fall, in batches or in time, before a prune may drop what it has not
 * read; such a consumer is then marked lost, in the prune's transaction,
 * and answers LB_EPRUNED until it is dropped. Without limits, or within
 * them, lb_prune refuses (LB_EBUSY) to drop a batch a consumer has not
 * acknowledged: retention never fills the disk silently, and a consumer
 * never skips a batch silently.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/internal.h"

#define PREFIX "consumer/"
#define PREFIX_LEN 9
#define LIMITS_KEY "consumer-limits"
/* acked u64 BE ‖ time_ns u64 BE ‖ flags u8 */
#define REC_LEN 17
#define FLAG_LOST 1u

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int name_check(const char *name)
{
	if (!name || !*name)
		return lb__fail(LB_EINVAL, "consumer name is NULL or empty");
	size_t n = strlen(name);
	if (n > LB_CONSUMER_NAME_MAX)
		return lb__fail(LB_EINVAL,
		                "consumer name of %zu bytes (max %d)", n,
		                LB_CONSUMER_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return lb__fail(LB_EINVAL,
			                "consumer name '%s': only letters, "
			                "digits, '.', '_' and '-'",
			                name);
	}
	return 0;
}

static int decode(const MDB_val *k, const MDB_val *v, lb_consumer_info *out)
{
	size_t n = k->mv_size - PREFIX_LEN;
	if (v->mv_size != REC_LEN || n == 0 || n > LB_CONSUMER_NAME_MAX)
		return lb__fail(LB_ECORRUPT, "_meta: bad consumer entry");
	memset(out, 0, sizeof *out);
	memcpy(out->name, (const char *)k->mv_data + PREFIX_LEN, n);
	const uint8_t *p = v->mv_data;
	out->acked = lb__get_be64(p);
	out->time_ns = (int64_t)lb__get_be64(p + 8);
	if (p[16] & ~FLAG_LOST)
		return lb__fail(LB_ECORRUPT,
		                "_meta: consumer %s: unknown flags 0x%02x",
		                out->name, p[16]);
	out->lost = (p[16] & FLAG_LOST) != 0;
	return 0;
}

static int put(MDB_txn *txn, lb_db *db, const lb_consumer_info *c)
{
	char key[PREFIX_LEN + LB_CONSUMER_NAME_MAX];
	size_t n = strlen(c->name);
	memcpy(key, PREFIX, PREFIX_LEN);
	memcpy(key + PREFIX_LEN, c->name, n);
	uint8_t rec[REC_LEN];
	lb__be64(rec, c->acked);
	lb__be64(rec + 8, (uint64_t)c->time_ns);
	rec[16] = c->lost ? FLAG_LOST : 0;
	MDB_val k = {PREFIX_LEN + n, key}, v = {REC_LEN, rec};
	int mrc = mdb_put(txn, db->meta, &k, &v, 0);
	return mrc ? lb__mdb_fail(mrc, "_meta") : 0;
}

static int get_in(MDB_txn *txn, lb_db *db, const char *name,
                  lb_consumer_info *out)
{
	char key[PREFIX_LEN + LB_CONSUMER_NAME_MAX];
	size_t n = strlen(name);
	memcpy(key, PREFIX, PREFIX_LEN);
	memcpy(key + PREFIX_LEN, name, n);
	MDB_val k = {PREFIX_LEN + n, key}, v;
	int mrc = mdb_get(txn, db->meta, &k, &v);
	if (mrc == MDB_NOTFOUND)
		return lb__fail(LB_ENOTFOUND, "no consumer named %s", name);
	if (mrc)
		return lb__mdb_fail(mrc, "_meta");
	return decode(&k, &v, out);
}

/* Run fn(db, txn, ctx) in one write transaction, as lb_prune does. */
static int in_write(lb_db *db, const char *what,
                    int (*fn)(lb_db *, MDB_txn *, void *), void *ctx)
{
	if (db->flags & LB_RDONLY)
		return lb__fail(LB_EINVAL, "%s: database is open read-only",
		                db->path);
	return lb__write_run(db, fn, ctx, what, what);
}

typedef struct {
	const char *name;
	uint64_t batch;
} ack_args;

static int ack_txn(lb_db *db, MDB_txn *txn, void *p)
{
	ack_args *a = p;
	lb_consumer_info c;
	uint64_t last;
	int rc = lb__last_in(db, txn, &last);
	if (rc < 0)
		return rc;
	if (a->batch > last)
		return lb__fail(LB_EINVAL,
		                "consumer %s: cannot acknowledge batch %llu: "
		                "the last is %llu",
		                a->name, (unsigned long long)a->batch,
		                (unsigned long long)last);
	rc = get_in(txn, db, a->name, &c);
	if (rc == LB_ENOTFOUND) {
		memset(&c, 0, sizeof c);
		strcpy(c.name, a->name);
	} else if (rc < 0) {
		return rc;
	} else if (c.lost) {
		return lb__fail(LB_EPRUNED,
		                "consumer %s is lost: batches after %llu that "
		                "it had not acknowledged were pruned; drop it "
		                "and start again",
		                a->name, (unsigned long long)c.acked);
	} else if (a->batch < c.acked) {
		return lb__fail(LB_EINVAL,
		                "consumer %s acknowledged batch %llu already: "
		                "it cannot go back to %llu",
		                a->name, (unsigned long long)c.acked,
		                (unsigned long long)a->batch);
	}
	c.acked = a->batch;
	c.time_ns = now_ns();
	return put(txn, db, &c);
}

int lb_consumer_ack(lb_db *db, const char *name, uint64_t batch)
{
	if (!db)
		return lb__fail(LB_EINVAL, "lb_consumer_ack: db is NULL");
	int rc = name_check(name);
	if (rc < 0)
		return rc;
	ack_args a = {name, batch};
	return in_write(db, "acknowledging", ack_txn, &a);
}

static int drop_txn(lb_db *db, MDB_txn *txn, void *p)
{
	const char *name = p;
	lb_consumer_info c;
	int rc = get_in(txn, db, name, &c);
	if (rc < 0)
		return rc;
	char key[PREFIX_LEN + LB_CONSUMER_NAME_MAX];
	size_t n = strlen(name);
	memcpy(key, PREFIX, PREFIX_LEN);
	memcpy(key + PREFIX_LEN, name, n);
	MDB_val k = {PREFIX_LEN + n, key};
	int mrc = mdb_del(txn, db->meta, &k, NULL);
	return mrc ? lb__mdb_fail(mrc, "_meta") : 0;
}

int lb_consumer_drop(lb_db *db, const char *name)
{
	if (!db)
		return lb__fail(LB_EINVAL, "lb_consumer_drop: db is NULL");
	int rc = name_check(name);
	if (rc < 0)
		return rc;
	return in_write(db, "dropping a consumer", drop_txn, (void *)name);
}

int lb_consumer_get(lb_db *db, const char *name, lb_consumer_info *out)
{
	MDB_txn *txn;
	if (out)
		memset(out, 0, sizeof *out);
	if (!db || !out)
		return lb__fail(LB_EINVAL, "lb_consumer_get: NULL argument");
	int rc = name_check(name);
	if (rc < 0)
		return rc;
	if ((rc = lb__read_txn(db, &txn)) < 0)
		return rc;
	rc = get_in(txn, db, name, out);
	lb__read_done(db, txn);
	if (rc == 0 && out->lost)
		rc = lb__fail(LB_EPRUNED,
		              "consumer %s is lost: batches after %llu that it "
		              "had not acknowledged were pruned",
		              name, (unsigned long long)out->acked);
	return rc;
}

/* Walk the consumers of txn; fn non-zero stops. */
static int each(lb_db *db, MDB_txn *txn, lb_consumer_fn fn, void *ctx)
{
	MDB_cursor *c;
	MDB_val k = {PREFIX_LEN, PREFIX}, v;
	int rc = 0, mrc = mdb_cursor_open(txn, db->meta, &c);
	if (mrc)
		return lb__mdb_fail(mrc, "_meta");
	for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < PREFIX_LEN ||
		    memcmp(k.mv_data, PREFIX, PREFIX_LEN) != 0)
			break;
		lb_consumer_info ci;
		if ((rc = decode(&k, &v, &ci)) != 0 || (rc = fn(ctx, &ci)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rc == 0 && mrc && mrc != MDB_NOTFOUND)
		rc = lb__mdb_fail(mrc, "_meta");
	return rc;
}

int lb_consumers(lb_db *db, lb_consumer_fn fn, void *ctx)
{
	MDB_txn *txn;
	if (!db || !fn)
		return lb__fail(LB_EINVAL, "lb_consumers: NULL argument");
	int rc = lb__read_txn(db, &txn);
	if (rc < 0)
		return rc;
	/* the callback may write: collect first, call after the read */
	lb_buf all;
	lb__buf_init(&all);
	rc = each(db, txn, lb__consumer_collect, &all);
	lb__read_done(db, txn);
	size_t n = all.len / sizeof(lb_consumer_info);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		lb_consumer_info ci;
		memcpy(&ci, all.data + i * sizeof ci, sizeof ci);
		rc = fn(ctx, &ci);
	}
	lb__buf_free(&all);
	return rc;
}

int lb__consumer_collect(void *ctx, const lb_consumer_info *c)
{
	return lb__buf_append(ctx, c, sizeof *c);
}

/* ---- limits -------------------------------------------------------------- */

static int limits_in(lb_db *db, MDB_txn *txn, uint64_t *lag, uint64_t *age_s)
{
	MDB_val k = {sizeof LIMITS_KEY - 1, LIMITS_KEY}, v;
	*lag = *age_s = 0;
	int mrc = mdb_get(txn, db->meta, &k, &v);
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return lb__mdb_fail(mrc, "_meta");
	if (v.mv_size != 16)
		return lb__fail(LB_ECORRUPT, "_meta: bad consumer-limits");
	*lag = lb__get_be64(v.mv_data);
	*age_s = lb__get_be64((const uint8_t *)v.mv_data + 8);
	return 0;
}

static int limits_txn(lb_db *db, MDB_txn *txn, void *p)
{
	const uint64_t *l = p;
	uint8_t b[16];
	lb__be64(b, l[0]);
	lb__be64(b + 8, l[1]);
	MDB_val k = {sizeof LIMITS_KEY - 1, LIMITS_KEY}, v = {16, b};
	int mrc = l[0] || l[1] ? mdb_put(txn, db->meta, &k, &v, 0)
	                       : mdb_del(txn, db->meta, &k, NULL);
	return mrc && mrc != MDB_NOTFOUND ? lb__mdb_fail(mrc, "_meta") : 0;
}

int lb_consumer_limits_set(lb_db *db, uint64_t max_lag, uint64_t max_age_s)
{
	if (!db)
		return lb__fail(LB_EINVAL,
		                "lb_consumer_limits_set: db is NULL");
	uint64_t l[2] = {max_lag, max_age_s};
	return in_write(db, "setting consumer limits", limits_txn, l);
}

int lb_consumer_limits_get(lb_db *db, uint64_t *max_lag, uint64_t *max_age_s)
{
	MDB_txn *txn;
	if (max_lag)
		*max_lag = 0;
	if (max_age_s)
		*max_age_s = 0;
	if (!db || !max_lag || !max_age_s)
		return lb__fail(LB_EINVAL,
		                "lb_consumer_limits_get: NULL argument");
	int rc = lb__read_txn(db, &txn);
	if (rc < 0)
		return rc;
	rc = limits_in(db, txn, max_lag, max_age_s);
	lb__read_done(db, txn);
	return rc;
}

/* ---- prune --------------------------------------------------------------- */

typedef struct {
	lb_db *db;
	MDB_txn *txn;
	uint64_t before, last, lag, age_s;
	int64_t now;
	lb_buf lose; /* consumers to mark lost */
	int busy;
	char who[LB_CONSUMER_NAME_MAX + 1];
	uint64_t who_acked;
} hold_ctx;

static int hold_cb(void *p, const lb_consumer_info *c)
{
	hold_ctx *h = p;
	if (c->lost || c->acked + 1 >= h->before)
		return 0; /* lost already, or has read every batch pruned */
	int over = (h->lag && h->last - c->acked > h->lag) ||
	           (h->age_s && h->now - c->time_ns > 0 &&
	            (uint64_t)(h->now - c->time_ns) / 1000000000u > h->age_s);
	if (over)
		return lb__buf_append(&h->lose, c, sizeof *c);
	if (!h->busy) {
		h->busy = 1;
		strcpy(h->who, c->name);
		h->who_acked = c->acked;
	}
	return 0;
}

int lb__consumers_hold(lb_db *db, MDB_txn *txn, uint64_t before, uint64_t last)
{
	hold_ctx h;
	memset(&h, 0, sizeof h);
	h.db = db;
	h.txn = txn;
	h.before = before;
	h.last = last;
	h.now = now_ns();
	lb__buf_init(&h.lose);
	int rc = limits_in(db, txn, &h.lag, &h.age_s);
	if (rc == 0)
		rc = each(db, txn, hold_cb, &h);
	if (rc == 0 && h.busy)
		rc = lb__fail(LB_EBUSY,
		              "consumer %s has acknowledged batch %llu only: "
		              "pruning before batch %llu would drop batches it "
		              "has not read (drop it, or set consumer limits)",
		              h.who, (unsigned long long)h.who_acked,
		              (unsigned long long)before);
	size_t n = h.lose.len / sizeof(lb_consumer_info);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		lb_consumer_info c;
		memcpy(&c, h.lose.data + i * sizeof c, sizeof c);
		c.lost = 1;
		rc = put(txn, db, &c);
	}
	lb__buf_free(&h.lose);
	return rc;
}
