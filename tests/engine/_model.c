/* SPDX-License-Identifier: MIT */
/*
 * _model.c: the in-memory model and random history generator of _model.h.
 *
 * Every step is computed by the model first (return code, issues, the
 * records the new batch must hold, which batches it marks), then done on the
 * live database, then compared. The model is deliberately naive: tables are
 * fixed arrays, the per-key history is a list of batch ids, the cascade
 * closure is a queue over those lists and the current "who references whom"
 * is a scan of table "w".
 */
#define _GNU_SOURCE
#include "_common.h"
#include "_model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const tm_table_name[TM_NT] = {"a", "h", "w"};

#define TM_FAIL(m, ...)                                                        \
	do {                                                                   \
		th_seed_report();                                              \
		fprintf(stderr,                                                \
		        "model step %llu: ", (unsigned long long)(m)->steps);  \
		fprintf(stderr, __VA_ARGS__);                                  \
		fputc('\n', stderr);                                           \
		fail();                                                        \
	} while (0)
#define TM_CHECK(m, cond, ...)                                                 \
	do {                                                                   \
		if (!(cond))                                                   \
			TM_FAIL(m, __VA_ARGS__);                               \
	} while (0)

void tm_key(int t, int k, char out[3])
{
	out[0] = tm_table_name[t][0];
	out[1] = (char)('0' + k);
	out[2] = 0;
}

/* ---- values -------------------------------------------------------------- */

static int val_eq(const tm_val *a, const tm_val *b)
{
	return a->present == b->present &&
	       (!a->present ||
	        (a->len == b->len && memcmp(a->b, b->b, a->len) == 0));
}

static const char *val_text(const tm_val *v, char *buf, size_t cap)
{
	size_t o = 0;
	if (!v->present) {
		snprintf(buf, cap, "(absent)");
		return buf;
	}
	o += (size_t)snprintf(buf, cap, "[%u]", v->len);
	for (unsigned i = 0; i < v->len && o + 3 < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%02x", v->b[i]);
	return buf;
}

static void set_val(tm_val *v, const void *p, size_t n)
{
	memset(v, 0, sizeof *v);
	v->present = 1;
	v->len = (uint8_t)n;
	if (n)
		memcpy(v->b, p, n);
}

/* Opaque values: few, so that a key is often set back to a value it had;
 * the empty value is one of them. A witness is a msgpack map naming a
 * hearing; one in seven breaks the schema ("h" is an int). */
static void rand_val(uint64_t *rng, const tm_state *st, int t, tm_val *v)
{
	static const char *const opaque[] = {"", "1", "2", "12", "21"};
	if (t != TM_W) {
		const char *s = opaque[th_below(rng, 5)];
		set_val(v, s, strlen(s));
		return;
	}
	uint8_t n = (uint8_t)th_below(rng, 3);
	if (th_below(rng, 12) == 0) {
		const uint8_t bad[] = {0x82, 0xa1, 'h', 0x07, 0xa1, 'n', n};
		set_val(v, bad, sizeof bad);
		return;
	}
	/* mostly a hearing that exists, now and then any */
	int h = (int)th_below(rng, TM_NK);
	for (int tries = 0;
	     tries < 4 && !st->v[TM_H][h].present && th_below(rng, 8) != 0;
	     tries++)
		h = (int)th_below(rng, TM_NK);
	const uint8_t good[] = {0x82, 0xa1, 'h', 0xa2, 'h', (uint8_t)('0' + h),
	                        0xa1, 'n',  n};
	set_val(v, good, sizeof good);
}

/* The hearing a witness names (0..7); -1 if absent; -2 if the value breaks
 * the schema. */
static int w_ref(const tm_val *v)
{
	if (!v->present)
		return -1;
	if (v->len == 9 && v->b[0] == 0x82 && v->b[3] == 0xa2 &&
	    v->b[4] == 'h' && v->b[5] >= '0' && v->b[5] < '0' + TM_NK)
		return v->b[5] - '0';
	return -2;
}

/* A witness names a hearing that does not exist. */
static int dangling(const tm_state *s)
{
	for (int k = 0; k < TM_NK; k++) {
		int r = w_ref(&s->v[TM_W][k]);
		if (r >= 0 && !s->v[TM_H][r].present)
			return 1;
	}
	return 0;
}

/* ---- the model ----------------------------------------------------------- */

typedef struct recv {
	tm_rec *v;
	size_t n, cap;
} recv;

static void recv_push(recv *rv, const tm_rec *r)
{
	if (rv->n == rv->cap) {
		rv->cap = rv->cap ? rv->cap * 2 : 16;
		rv->v = realloc(rv->v, rv->cap * sizeof *rv->v);
		assert_non_null(rv->v);
	}
	rv->v[rv->n++] = *r;
}

static void u64_push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = realloc(*v, *cap * sizeof **v);
		assert_non_null(*v);
	}
	(*v)[(*n)++] = x;
}

static tm_batch *batch(const tm_model *m, uint64_t id)
{
	assert_true(id >= 1 && id <= m->nb);
	return &m->b[id - 1];
}

tm_model *tm_new(int keep_states)
{
	tm_model *m = calloc(1, sizeof *m);
	assert_non_null(m);
	m->keep_states = keep_states;
	lb_options_init(&m->opts);
	m->opts.flags = LB_NOSYNC;
	return m;
}

void tm_free(tm_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nb; i++) {
		free(m->b[i].recs);
		free(m->b[i].state);
	}
	free(m->b);
	for (int t = 0; t < TM_NT; t++)
		for (int k = 0; k < TM_NK; k++)
			free(m->hist[t][k]);
	free(m);
}

/* Append the next batch; m->cur must already be the state after it. Takes
 * ownership of recs. */
static uint64_t push_batch(tm_model *m, int kind, uint64_t undoes, tm_rec *recs,
                           size_t n, uint64_t records)
{
	if (m->nb == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		m->b = realloc(m->b, m->cap * sizeof *m->b);
		assert_non_null(m->b);
	}
	uint64_t id = ++m->nb;
	tm_batch *b = &m->b[id - 1];
	memset(b, 0, sizeof *b);
	b->kind = kind;
	b->undoes = undoes;
	b->recs = recs;
	b->nrecs = n;
	b->records = records;
	for (size_t i = 0; i < n; i++) {
		int t = recs[i].t, k = recs[i].k;
		size_t h = m->nhist[t][k];
		if (h == 0 || m->hist[t][k][h - 1] != id)
			u64_push(&m->hist[t][k], &m->nhist[t][k],
			         &m->hcap[t][k], id);
	}
	if (m->keep_states) {
		b->state = malloc(sizeof *b->state);
		assert_non_null(b->state);
		*b->state = m->cur;
	}
	return id;
}

const tm_state *tm_state_at(const tm_model *m, uint64_t id)
{
	static const tm_state empty;
	assert_true(m->keep_states);
	if (id == 0)
		return &empty;
	return batch(m, id)->state;
}

void tm_setup(tm_model *m, lb_db *db)
{
	static const lb_field f[2] = {{"h", LB_STR, LB_REQUIRED, 0, "h"},
	                              {"n", LB_INT, 0, 0, NULL}};
	static const lb_schema s = {f, 2, 0};
	assert_int_equal(m->nb, 0);
	assert_int_equal(te_last(db), 0);
	te_rc(0, lb_table_create(db, "a", NULL));
	te_rc(0, lb_table_create(db, "h", NULL));
	te_rc(0, lb_table_create(db, "w", &s));
	for (int i = 0; i < TM_NT; i++) {
		m->cur.ntables = i + 1;
		push_batch(m, TM_B_TABLE, 0, NULL, 0, 1);
	}
	assert_int_equal(te_last(db), TM_SETUP);
}

/* ---- comparing with the database ----------------------------------------- */

typedef struct tnames {
	char v[8][LB_TABLE_NAME_MAX + 1];
	int n;
} tnames;

static int tables_cb(void *ctx, const char *name, const lb_schema *s,
                     uint64_t records)
{
	tnames *tn = ctx;
	(void)s;
	(void)records;
	if (tn->n < 8)
		snprintf(tn->v[tn->n], sizeof tn->v[0], "%s", name);
	tn->n++;
	return 0;
}

static void assert_state(const tm_model *m, const tm_state *s, lb_db *db)
{
	tnames tn;
	lb_snapshot *snap = NULL;
	char a[64], b[64];
	memset(&tn, 0, sizeof tn);
	te_rc(0, lb_tables(db, tables_cb, &tn));
	TM_CHECK(m, tn.n == s->ntables, "%d tables, model has %d", tn.n,
	         s->ntables);
	for (int t = 0; t < s->ntables; t++)
		TM_CHECK(m, strcmp(tn.v[t], tm_table_name[t]) == 0,
		         "table %d is '%s', model has '%s'", t, tn.v[t],
		         tm_table_name[t]);
	te_rc(0, lb_snapshot_open(db, &snap));
	for (int t = 0; t < s->ntables; t++) {
		lb_cursor *c = NULL;
		const void *k, *v;
		size_t kl, vl;
		tm_val got[TM_NK];
		int rc;
		memset(got, 0, sizeof got);
		te_rc(0, lb_cursor_open(snap, tm_table_name[t], &c));
		while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
			const char *ks = k;
			TM_CHECK(
			        m,
			        kl == 2 && ks[0] == tm_table_name[t][0] &&
			                ks[1] >= '0' && ks[1] < '0' + TM_NK,
			        "table %s holds an unexpected key of %zu bytes",
			        tm_table_name[t], kl);
			TM_CHECK(m, vl <= TM_VMAX,
			         "%s '%.2s': value of %zu bytes",
			         tm_table_name[t], ks, vl);
			set_val(&got[ks[1] - '0'], v, vl);
		}
		te_rc(LB_ENOTFOUND, rc);
		lb_cursor_close(c);
		for (int i = 0; i < TM_NK; i++)
			TM_CHECK(m, val_eq(&got[i], &s->v[t][i]),
			         "%s '%c%d' is %s, model has %s",
			         tm_table_name[t], tm_table_name[t][0], i,
			         val_text(&got[i], a, sizeof a),
			         val_text(&s->v[t][i], b, sizeof b));
	}
	lb_snapshot_close(snap);
}

void tm_assert_state(const tm_state *s, lb_db *db)
{
	static const tm_model none;
	assert_state(&none, s, db);
}

void tm_assert_db(const tm_model *m, lb_db *db)
{
	assert_state(m, &m->cur, db);
	TM_CHECK(m, te_last(db) == m->nb, "last batch %llu, model has %llu",
	         (unsigned long long)te_last(db), (unsigned long long)m->nb);
}

static int image_eq(int has, const void *p, size_t n, const tm_val *v)
{
	return has == v->present &&
	       (!has || (n == v->len && (n == 0 || memcmp(p, v->b, n) == 0)));
}

/* Header state, label (when given) and records of batch id. */
static void check_batch(const tm_model *m, lb_db *db, uint64_t id,
                        const char *label)
{
	const tm_batch *mb = batch(m, id);
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(db, id, &bi));
	TM_CHECK(m, bi.undoes == mb->undoes, "batch %llu undoes %llu, not %llu",
	         (unsigned long long)id, (unsigned long long)bi.undoes,
	         (unsigned long long)mb->undoes);
	TM_CHECK(m, bi.rolled_back_by == mb->rolled_back_by,
	         "batch %llu rolled back by %llu, model says %llu",
	         (unsigned long long)id, (unsigned long long)bi.rolled_back_by,
	         (unsigned long long)mb->rolled_back_by);
	TM_CHECK(m, bi.records == mb->records,
	         "batch %llu has %llu records, model %llu",
	         (unsigned long long)id, (unsigned long long)bi.records,
	         (unsigned long long)mb->records);
	if (label)
		TM_CHECK(m, strcmp(bi.label, label) == 0,
		         "batch %llu is labelled '%s', not '%s'",
		         (unsigned long long)id, bi.label, label);
	if (mb->kind == TM_B_TABLE)
		return;
	te_recs rs;
	memset(&rs, 0, sizeof rs);
	te_changes(db, id, &rs);
	TM_CHECK(m, rs.n == mb->nrecs, "batch %llu: %zu records, model %zu",
	         (unsigned long long)id, rs.n, mb->nrecs);
	for (size_t i = 0; i < rs.n; i++) {
		const te_rec *r = &rs.v[i];
		const tm_rec *w = &mb->recs[i];
		char key[3];
		tm_key(w->t, w->k, key);
		TM_CHECK(m,
		         r->op == w->op &&
		                 strcmp(r->table, tm_table_name[w->t]) == 0 &&
		                 r->klen == 2 && memcmp(r->key, key, 2) == 0 &&
		                 image_eq(r->has_before, r->before, r->blen,
		                          &w->before) &&
		                 image_eq(r->has_after, r->after, r->alen,
		                          &w->after),
		         "batch %llu record %zu differs from the model's "
		         "(op %d on %s '%s')",
		         (unsigned long long)id, i, w->op, tm_table_name[w->t],
		         key);
	}
	te_recs_free(&rs);
}

void tm_assert_recent(const tm_model *m, lb_db *db, uint64_t n)
{
	for (uint64_t id = m->nb > n ? m->nb - n + 1 : 1; id <= m->nb; id++) {
		const tm_batch *mb = batch(m, id);
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(db, id, &bi));
		TM_CHECK(m,
		         bi.undoes == mb->undoes &&
		                 bi.rolled_back_by == mb->rolled_back_by &&
		                 bi.records == mb->records,
		         "batch %llu: undoes %llu, rolled back by %llu, %llu "
		         "records; model %llu, %llu, %llu",
		         (unsigned long long)id, (unsigned long long)bi.undoes,
		         (unsigned long long)bi.rolled_back_by,
		         (unsigned long long)bi.records,
		         (unsigned long long)mb->undoes,
		         (unsigned long long)mb->rolled_back_by,
		         (unsigned long long)mb->records);
	}
}

void tm_assert_log(const tm_model *m, lb_db *db)
{
	for (uint64_t id = 1; id <= m->nb; id++)
		check_batch(m, db, id, NULL);
}

/* ---- user batches -------------------------------------------------------- */

int tm_user_batch(tm_model *m, lb_db *db, uint64_t *rng)
{
	static const char *const opname[] = {"put", "insert", "update",
	                                     "delete"};
	char label[64];
	lb_batch *b = NULL;
	lb_result res;
	tm_state st = m->cur;
	recv rv = {NULL, 0, 0};
	int issues = 0, rc, want;
	snprintf(label, sizeof label, "model batch %llu",
	         (unsigned long long)m->nb + 1);
	te_rc(0, lb_batch_begin(db, label, &b));
	int nops = 1 + (int)th_below(rng, 4);
	for (int i = 0; i < nops; i++) {
		int t = (int)th_below(rng, TM_NT),
		    k = (int)th_below(rng, TM_NK);
		tm_val *cur = &st.v[t][k];
		/* mostly ops that fit the key's state; one in eight at
		 * random (duplicates, missing keys) */
		int kind = (int)th_below(rng, 4);
		if (th_below(rng, 8) != 0) {
			if (cur->present)
				kind = (int)(th_below(rng, 5) < 2
				                     ? 0
				                     : 1 + th_below(rng, 3));
			else
				kind = (int)th_below(rng, 2);
			if (cur->present && kind == 1)
				kind = 2;
		}
		char key[3];
		tm_val v;
		tm_key(t, k, key);
		rand_val(rng, &st, t, &v);
		want = 0;
		if (kind != 3 && t == TM_W && w_ref(&v) == -2)
			want = LB_EVALIDATION;
		else if (kind == 1 && cur->present)
			want = LB_EVALIDATION;
		else if ((kind == 2 || kind == 3) && !cur->present)
			want = LB_EVALIDATION;
		switch (kind) {
		case 0:
			rc = lb_put(b, tm_table_name[t], key, 2, v.b, v.len);
			break;
		case 1:
			rc = lb_insert(b, tm_table_name[t], key, 2, v.b, v.len);
			break;
		case 2:
			rc = lb_update(b, tm_table_name[t], key, 2, v.b, v.len);
			break;
		default:
			rc = lb_delete(b, tm_table_name[t], key, 2);
			break;
		}
		TM_CHECK(m, rc == want, "%s %s '%s' = %s, model says %s (%s)",
		         opname[kind], tm_table_name[t], key, lb_strerror(rc),
		         lb_strerror(want), lb_errmsg());
		if (want) {
			issues++;
			continue;
		}
		tm_rec r;
		memset(&r, 0, sizeof r);
		r.op = kind == 3 ? LB_OP_DELETE : LB_OP_PUT;
		r.t = (uint8_t)t;
		r.k = (uint8_t)k;
		r.before = *cur;
		if (kind != 3)
			r.after = v;
		*cur = r.after;
		recv_push(&rv, &r);
	}
	if (th_below(rng, 20) == 0) {
		lb_batch_abort(b);
		free(rv.v);
		return 0;
	}
	want = issues || dangling(&st) ? LB_EVALIDATION : 0;
	rc = lb_batch_commit(b, &res);
	TM_CHECK(m, rc == want, "commit = %s, model says %s (%s)",
	         lb_strerror(rc), lb_strerror(want), lb_errmsg());
	if (rc == 0) {
		TM_CHECK(m, res.batch_id == m->nb + 1 && res.records == rv.n,
		         "commit: batch %llu with %llu records, model %llu/%zu",
		         (unsigned long long)res.batch_id,
		         (unsigned long long)res.records,
		         (unsigned long long)m->nb + 1, rv.n);
		m->cur = st;
		uint64_t id = push_batch(m, TM_B_USER, 0, rv.v, rv.n, rv.n);
		check_batch(m, db, id, label);
		m->stats.batches++;
	} else {
		TM_CHECK(m, res.batch_id == 0 && res.nissues > 0,
		         "refused commit: batch %llu, %zu issues",
		         (unsigned long long)res.batch_id, res.nissues);
		if (!issues)
			for (size_t i = 0; i < res.nissues; i++)
				TM_CHECK(m,
				         res.issues[i].kind ==
				                 LB_ISSUE_FOREIGN_KEY,
				         "issue %zu is of kind %d, not "
				         "FOREIGN_KEY",
				         i, res.issues[i].kind);
		free(rv.v);
		m->stats.rejected++;
	}
	lb_result_free(&res);
	return rc;
}

/* ---- rollbacks ----------------------------------------------------------- */

typedef struct conf {
	uint8_t t, k;
	uint64_t batch;
} conf;

typedef struct outcome {
	int rc;
	tm_state st;
	recv rv;
	uint64_t *marks;
	size_t nmarks, mcap;
	conf *cf;
	size_t ncf, cfcap;
	uint64_t *S;
	size_t nS, Scap;
} outcome;

static void outcome_free(outcome *o)
{
	free(o->rv.v);
	free(o->marks);
	free(o->cf);
	free(o->S);
}

static uint64_t last_hist(const tm_model *m, int t, int k)
{
	size_t n = m->nhist[t][k];
	return n ? m->hist[t][k][n - 1] : 0;
}

enum { M_CHECK, M_FORCE, M_EXACT };

/* Undo batch L on o->st, last record first (docs/ROLLBACK.md). */
static void undo(const tm_model *m, outcome *o, uint64_t L, int mode)
{
	const tm_batch *bb = batch(m, L);
	uint8_t seen[TM_NT][TM_NK];
	memset(seen, 0, sizeof seen);
	for (size_t i = bb->nrecs; i-- > 0;) {
		const tm_rec *r = &bb->recs[i];
		tm_val *cur = &o->st.v[r->t][r->k];
		if (mode == M_EXACT)
			TM_CHECK(m, val_eq(cur, &r->after),
			         "model: batch %llu record %zu does not undo "
			         "exactly",
			         (unsigned long long)L, i);
		if (mode == M_CHECK && !seen[r->t][r->k]) {
			seen[r->t][r->k] = 1;
			if (!val_eq(cur, &r->after)) {
				if (o->ncf == o->cfcap) {
					o->cfcap = o->cfcap ? o->cfcap * 2 : 8;
					o->cf = realloc(o->cf,
					                o->cfcap *
					                        sizeof *o->cf);
					assert_non_null(o->cf);
				}
				o->cf[o->ncf].t = r->t;
				o->cf[o->ncf].k = r->k;
				o->cf[o->ncf].batch = last_hist(m, r->t, r->k);
				o->ncf++;
			}
		}
		if (o->ncf)
			continue;
		if (!r->before.present && !cur->present)
			continue; /* nothing to delete (force) */
		tm_rec nr;
		memset(&nr, 0, sizeof nr);
		nr.op = r->before.present ? LB_OP_PUT : LB_OP_DELETE;
		nr.t = r->t;
		nr.k = r->k;
		nr.before = *cur;
		nr.after = r->before;
		recv_push(&o->rv, &nr);
		*cur = r->before;
	}
}

/* Does standing batch L only cancel changes made after B? */
static int cancels(const tm_model *m, uint64_t L, uint64_t B)
{
	uint64_t U = batch(m, L)->undoes;
	if (U == 0)
		return 0;
	if (batch(m, U)->rolled_back_by == L) /* L = rollback of U */
		return U > B && batch(m, U)->undoes == 0;
	return U >= B; /* L = rollback to U */
}

typedef struct queue {
	uint8_t *t, *k;
	uint64_t *s;
	size_t n, cap;
} queue;

static void q_push(queue *q, int t, int k, uint64_t s)
{
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 64;
		q->t = realloc(q->t, q->cap);
		q->k = realloc(q->k, q->cap);
		q->s = realloc(q->s, q->cap * sizeof *q->s);
		assert_true(q->t && q->k && q->s);
	}
	q->t[q->n] = (uint8_t)t;
	q->k[q->n] = (uint8_t)k;
	q->s[q->n] = s;
	q->n++;
}

/* Queue every key batch M changed (since M), and every witness that now
 * names a hearing M made exist. */
static void collect(const tm_model *m, queue *q, uint64_t M)
{
	const tm_batch *bb = batch(m, M);
	uint8_t seen[TM_NT][TM_NK];
	memset(seen, 0, sizeof seen);
	for (size_t i = 0; i < bb->nrecs; i++) {
		const tm_rec *r = &bb->recs[i];
		if (seen[r->t][r->k])
			continue;
		seen[r->t][r->k] = 1;
		q_push(q, r->t, r->k, M);
		if (r->before.present || r->t != TM_H)
			continue;
		for (int w = 0; w < TM_NK; w++)
			if (w_ref(&m->cur.v[TM_W][w]) == r->k)
				q_push(q, TM_W, w, M);
	}
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : (x > y ? -1 : 0);
}

static void plan(const tm_model *m, uint64_t B, outcome *o)
{
	queue q = {NULL, NULL, NULL, 0, 0};
	uint64_t done[TM_NT][TM_NK];
	uint8_t *considered = calloc(m->nb + 1, 1);
	assert_non_null(considered);
	for (int t = 0; t < TM_NT; t++)
		for (int k = 0; k < TM_NK; k++)
			done[t][k] = UINT64_MAX;
	considered[B] = 1;
	collect(m, &q, B);
	for (size_t i = 0; i < q.n; i++) {
		int t = q.t[i], k = q.k[i];
		uint64_t s = q.s[i];
		if (done[t][k] <= s)
			continue;
		done[t][k] = s;
		for (size_t j = 0; j < m->nhist[t][k]; j++) {
			uint64_t L = m->hist[t][k][j];
			if (L <= s || considered[L])
				continue;
			considered[L] = 1;
			if (batch(m, L)->rolled_back_by || cancels(m, L, B))
				continue;
			u64_push(&o->S, &o->nS, &o->Scap, L);
			collect(m, &q, L);
		}
	}
	if (o->nS)
		qsort(o->S, o->nS, sizeof *o->S, cmp_desc);
	free(q.t);
	free(q.k);
	free(q.s);
	free(considered);
}

static void model_rollback(const tm_model *m, uint64_t B, unsigned flags,
                           outcome *o)
{
	memset(o, 0, sizeof *o);
	o->st = m->cur;
	if (flags & ~(unsigned)(LB_CASCADE | LB_FORCE | LB_DRYRUN) ||
	    ((flags & LB_CASCADE) && (flags & LB_FORCE))) {
		o->rc = LB_EINVAL;
		return;
	}
	if (B == 0 || B > m->nb) {
		o->rc = LB_ENOTFOUND;
		return;
	}
	if (batch(m, B)->rolled_back_by) {
		o->rc = LB_EINVAL;
		return;
	}
	if (flags & LB_CASCADE)
		plan(m, B, o);
	for (size_t i = 0; i < o->nS && !o->ncf; i++) {
		undo(m, o, o->S[i], M_CHECK);
		u64_push(&o->marks, &o->nmarks, &o->mcap, o->S[i]);
	}
	if (!o->ncf) {
		undo(m, o, B, (flags & LB_FORCE) ? M_FORCE : M_CHECK);
		u64_push(&o->marks, &o->nmarks, &o->mcap, B);
	}
	if (o->ncf)
		o->rc = LB_ECONFLICT;
	else if (dangling(&o->st))
		o->rc = LB_EVALIDATION;
}

/* rollback_to(X): one record per key whose value differs from its value
 * right after X, which is the before-image of the key's first change after
 * X. A rollback_to batch N to X' >= X left everything as after X', so
 * batches X'+1..N are skipped. Deletions first, then puts, each in the
 * order the keys were first changed. */
static void model_rollback_to(const tm_model *m, uint64_t X, outcome *o)
{
	uint64_t *walk = NULL;
	size_t nwalk = 0, wcap = 0, norder = 0;
	uint8_t seen[TM_NT][TM_NK], ot[TM_NT * TM_NK], ok[TM_NT * TM_NK];
	tm_val at[TM_NT][TM_NK];
	memset(o, 0, sizeof *o);
	o->st = m->cur;
	if (X > m->nb) {
		o->rc = LB_ENOTFOUND;
		return;
	}
	for (uint64_t L = X + 1; L <= m->nb; L++)
		if (!batch(m, L)->rolled_back_by)
			u64_push(&o->marks, &o->nmarks, &o->mcap, L);
	for (uint64_t L = m->nb; L > X;) {
		const tm_batch *bb = batch(m, L);
		TM_CHECK(m, bb->kind != TM_B_TABLE,
		         "model: rollback_to before the tables");
		if (bb->kind == TM_B_ROLLBACK_TO && bb->undoes >= X) {
			L = bb->undoes;
			continue;
		}
		u64_push(&walk, &nwalk, &wcap, L--);
	}
	memset(seen, 0, sizeof seen);
	for (size_t i = nwalk; i-- > 0;) {
		const tm_batch *bb = batch(m, walk[i]);
		for (size_t j = 0; j < bb->nrecs; j++) {
			const tm_rec *r = &bb->recs[j];
			if (seen[r->t][r->k])
				continue;
			seen[r->t][r->k] = 1;
			at[r->t][r->k] = r->before;
			ot[norder] = r->t;
			ok[norder++] = r->k;
		}
	}
	free(walk);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < norder; i++) {
			const tm_val *want = &at[ot[i]][ok[i]];
			tm_val *cur = &o->st.v[ot[i]][ok[i]];
			if (want->present != pass || val_eq(cur, want))
				continue;
			tm_rec nr;
			memset(&nr, 0, sizeof nr);
			nr.op = want->present ? LB_OP_PUT : LB_OP_DELETE;
			nr.t = ot[i];
			nr.k = ok[i];
			nr.before = *cur;
			nr.after = *want;
			recv_push(&o->rv, &nr);
			*cur = *want;
		}
	/* The same state as undoing every record after X in exact reverse. */
	outcome ex;
	memset(&ex, 0, sizeof ex);
	ex.st = m->cur;
	for (uint64_t L = m->nb; L > X; L--)
		undo(m, &ex, L, M_EXACT);
	for (int t = 0; t < TM_NT; t++)
		for (int k = 0; k < TM_NK; k++)
			TM_CHECK(m, val_eq(&ex.st.v[t][k], &o->st.v[t][k]),
			         "model: rollback_to %llu nets %s '%c%d' wrong",
			         (unsigned long long)X, tm_table_name[t],
			         tm_table_name[t][0], k);
	outcome_free(&ex);
	TM_CHECK(m, !dangling(&o->st), "model: rollback_to dangles");
}

/* The engine's result against the model's outcome; on success without dry
 * run, commit the outcome to the model. */
static void settle(tm_model *m, lb_db *db, const outcome *o, int rc,
                   const lb_result *res, int dry, int kind, uint64_t undoes,
                   const char *label)
{
	TM_CHECK(m, res->rc == rc, "res.rc %d, rc %d", res->rc, rc);
	if (rc == LB_ECONFLICT) {
		TM_CHECK(m,
		         res->nissues == o->ncf && res->nissues_total == o->ncf,
		         "%zu conflict issues, model has %zu", res->nissues,
		         o->ncf);
		for (size_t i = 0; i < o->ncf; i++) {
			char key[3];
			size_t j;
			tm_key(o->cf[i].t, o->cf[i].k, key);
			for (j = 0; j < res->nissues; j++) {
				const lb_issue *is = &res->issues[j];
				if (is->kind == LB_ISSUE_CONFLICT &&
				    strcmp(is->table,
				           tm_table_name[o->cf[i].t]) == 0 &&
				    is->klen == 2 &&
				    memcmp(is->key, key, 2) == 0)
					break;
			}
			TM_CHECK(m, j < res->nissues,
			         "no CONFLICT issue for %s '%s'",
			         tm_table_name[o->cf[i].t], key);
			TM_CHECK(m, res->issues[j].batch == o->cf[i].batch,
			         "CONFLICT on %s '%s' names batch %llu, model "
			         "says %llu",
			         tm_table_name[o->cf[i].t], key,
			         (unsigned long long)res->issues[j].batch,
			         (unsigned long long)o->cf[i].batch);
			TM_CHECK(m,
			         res->issues[j].message &&
			                 res->issues[j].message[0],
			         "CONFLICT without a message");
		}
	} else if (rc == LB_EVALIDATION) {
		TM_CHECK(m, res->nissues > 0, "refused without issues");
		for (size_t j = 0; j < res->nissues; j++)
			TM_CHECK(m, res->issues[j].kind == LB_ISSUE_FOREIGN_KEY,
			         "issue %zu of kind %d, not FOREIGN_KEY", j,
			         res->issues[j].kind);
	} else if (rc == 0) {
		TM_CHECK(m, res->nissues == 0, "success with %zu issues",
		         res->nissues);
	}
	if (rc != 0) {
		TM_CHECK(m, res->batch_id == 0 && res->records == 0,
		         "failure reports batch %llu, %llu records",
		         (unsigned long long)res->batch_id,
		         (unsigned long long)res->records);
		return;
	}
	if (dry || o->rv.n == 0) {
		TM_CHECK(m, res->batch_id == 0 && res->records == o->rv.n,
		         "%s: batch %llu, %llu records, model %zu records",
		         dry ? "dry run" : "nothing to write",
		         (unsigned long long)res->batch_id,
		         (unsigned long long)res->records, o->rv.n);
		return;
	}
	TM_CHECK(m, res->batch_id == m->nb + 1 && res->records == o->rv.n,
	         "rollback: batch %llu with %llu records, model %llu/%zu",
	         (unsigned long long)res->batch_id,
	         (unsigned long long)res->records,
	         (unsigned long long)m->nb + 1, o->rv.n);
	tm_rec *recs = malloc((o->rv.n ? o->rv.n : 1) * sizeof *recs);
	assert_non_null(recs);
	memcpy(recs, o->rv.v, o->rv.n * sizeof *recs);
	m->cur = o->st;
	uint64_t id = push_batch(m, kind, undoes, recs, o->rv.n, o->rv.n);
	for (size_t i = 0; i < o->nmarks; i++)
		batch(m, o->marks[i])->rolled_back_by = id;
	check_batch(m, db, id, label);
	for (size_t i = 0; i < o->nmarks; i++)
		check_batch(m, db, o->marks[i], NULL);
}

int tm_rollback(tm_model *m, lb_db *db, uint64_t id, unsigned flags)
{
	outcome o;
	lb_result res;
	char label[64];
	model_rollback(m, id, flags, &o);
	int rc = lb_rollback(db, id, flags, &res);
	TM_CHECK(m, rc == o.rc,
	         "lb_rollback(%llu, 0x%x) = %s, model says %s (%s)",
	         (unsigned long long)id, flags, lb_strerror(rc),
	         lb_strerror(o.rc), lb_errmsg());
	if (rc < 0)
		TM_CHECK(m, lb_errmsg()[0] != 0, "no lb_errmsg() detail");
	snprintf(label, sizeof label, "rollback of batch %llu",
	         (unsigned long long)id);
	settle(m, db, &o, rc, &res, (flags & LB_DRYRUN) != 0, TM_B_ROLLBACK, id,
	       label);
	if (flags & LB_DRYRUN)
		m->stats.dryruns++;
	if (rc == LB_ECONFLICT)
		m->stats.conflicts++;
	else if (rc == LB_EVALIDATION)
		m->stats.fk_refused++;
	else if (rc == 0 && o.rv.n == 0)
		m->stats.noops++;
	else if (rc == 0) {
		m->stats.rollbacks++;
		if (flags & LB_FORCE)
			m->stats.forced++;
		if (o.nS) {
			m->stats.cascades++;
			m->stats.cascade_members += o.nS;
		}
	} else
		m->stats.errors++;
	outcome_free(&o);
	lb_result_free(&res);
	return rc;
}

int tm_rollback_to(tm_model *m, lb_db *db, uint64_t id)
{
	outcome o;
	lb_result res;
	char label[64];
	model_rollback_to(m, id, &o);
	int rc = lb_rollback_to(db, id, &res);
	TM_CHECK(m, rc == o.rc, "lb_rollback_to(%llu) = %s, model says %s (%s)",
	         (unsigned long long)id, lb_strerror(rc), lb_strerror(o.rc),
	         lb_errmsg());
	snprintf(label, sizeof label, "rollback to batch %llu",
	         (unsigned long long)id);
	settle(m, db, &o, rc, &res, 0, TM_B_ROLLBACK_TO, id, label);
	if (rc == 0)
		m->stats.rollback_tos++;
	else
		m->stats.errors++;
	outcome_free(&o);
	lb_result_free(&res);
	return rc;
}

/* ---- random steps -------------------------------------------------------- */

/* A batch to roll back: mostly recent ones (so later batches touch the
 * same keys), sometimes any, now and then one that does not exist. */
static uint64_t pick_target(const tm_model *m, uint64_t *rng)
{
	uint64_t u = th_below(rng, 100), n = m->nb;
	if (u < 2)
		return 0;
	if (u < 4 || n <= TM_SETUP)
		return n + 1 + th_below(rng, 3);
	uint64_t span = n - TM_SETUP;
	if (th_below(rng, 10) < 7)
		return n - th_below(rng, span < 12 ? span : 12);
	return TM_SETUP + 1 + th_below(rng, span);
}

static unsigned pick_flags(uint64_t *rng)
{
	uint64_t u = th_below(rng, 100);
	unsigned f = u < 35   ? 0
	             : u < 65 ? LB_CASCADE
	             : u < 88 ? LB_FORCE
	             : u < 93 ? LB_CASCADE | LB_FORCE
	             : u < 96 ? 8u << th_below(rng, 3)
	                      : 0;
	if (th_below(rng, 5) == 0)
		f |= LB_DRYRUN;
	return f;
}

void tm_step(tm_model *m, lb_db **db, const char *dir, uint64_t *rng,
             unsigned what)
{
	unsigned kind;
	assert_true(m->nb >= TM_SETUP && (what & TM_STEP_ALL));
	m->steps++;
	do {
		uint64_t u = th_below(rng, 100);
		kind = u < 58   ? TM_STEP_BATCH
		       : u < 92 ? TM_STEP_ROLLBACK
		       : u < 97 ? TM_STEP_ROLLBACK_TO
		                : TM_STEP_REOPEN;
	} while (!(kind & what));
	switch (kind) {
	case TM_STEP_BATCH:
		tm_user_batch(m, *db, rng);
		break;
	case TM_STEP_ROLLBACK: {
		uint64_t id = pick_target(m, rng);
		tm_rollback(m, *db, id, pick_flags(rng));
		break;
	}
	case TM_STEP_ROLLBACK_TO: {
		uint64_t u = th_below(rng, 100), x;
		if (u < 5)
			x = m->nb;
		else if (u < 8)
			x = m->nb + 1 + th_below(rng, 2);
		else
			x = m->nb - th_below(rng, 15);
		if (x < TM_SETUP)
			x = TM_SETUP;
		tm_rollback_to(m, *db, x);
		break;
	}
	default: {
		static const size_t segs[] = {256, 1024, 0};
		static const int levels[] = {-1, 0, 6};
		lb_close(*db);
		lb_options_init(&m->opts);
		m->opts.flags = LB_NOSYNC;
		m->opts.segment_size = segs[th_below(rng, 3)];
		m->opts.compression = levels[th_below(rng, 3)];
		*db = te_open_opts(dir, &m->opts);
		m->stats.reopens++;
	} break;
	}
}
