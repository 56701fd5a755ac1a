/* SPDX-License-Identifier: MIT */
/*
 * _model.c: the in-memory model and random history generator of _model.h.
 *
 * Every step is computed by the model first (return code, issues, the
 * records the new batch must hold, which batches it undoes), then done on
 * the live database, then compared. The model is deliberately naive and
 * slow: tables are fixed arrays; the log is an array of batches, each with
 * its records and, for an undo batch, the set of batches it undoes; which
 * batches stand is recomputed from that set newest to oldest after every
 * new batch; a cascade's set is a fixpoint over every batch of the log; the
 * state right after a batch is a replay of the model's records from empty;
 * and "who references whom" is a scan of table "w".
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

static uint32_t kbit(int t, int k)
{
	return 1u << (t * TM_NK + k);
}

static tm_batch *batch(const tm_model *m, uint64_t id)
{
	assert_true(id >= 1 && id <= m->nb);
	return &m->b[id - 1];
}

const tm_batch *tm_batch_at(const tm_model *m, uint64_t id)
{
	return batch(m, id);
}

static int ordinary(const tm_batch *b)
{
	return b->kind == TM_B_TABLE || b->kind == TM_B_USER;
}

tm_model *tm_new(int keep_states)
{
	tm_model *m = calloc(1, sizeof *m);
	assert_non_null(m);
	m->keep_states = keep_states;
	m->trace = th_env_long("LB_MODEL_TRACE", 0) != 0;
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
		free(m->b[i].set);
		free(m->b[i].state);
	}
	free(m->b);
	free(m);
}

/* Which batches stand among 1..upto, and, when extra is not 0, a virtual
 * batch upto + 1 that undoes batch `extra` alone: rbb[i] is the greatest
 * standing batch that undoes i, else 0. docs/ROLLBACK.md: a batch stands
 * unless a standing batch undoes it; the last batch stands, and a batch's
 * standing depends only on later batches, so one pass from the newest
 * batch to the oldest settles every batch before it is looked at (and the
 * first standing batch met that undoes i is the greatest). rbb holds
 * upto + 2 entries. */
static void marks(const tm_model *m, uint64_t upto, uint64_t extra,
                  uint64_t *rbb)
{
	uint64_t top = upto + (extra != 0);
	assert_true(upto <= m->nb);
	memset(rbb, 0, (upto + 2) * sizeof *rbb);
	for (uint64_t j = top; j >= 1; j--) {
		if (rbb[j])
			continue; /* rolled back: it undoes nothing now */
		if (j > upto) {
			rbb[extra] = j;
			continue;
		}
		const tm_batch *bj = batch(m, j);
		for (size_t s = 0; s < bj->nset; s++) {
			uint64_t i = bj->set[s];
			assert_true(i >= 1 && i < j);
			if (!rbb[i])
				rbb[i] = j;
		}
	}
}

void tm_marks_at(const tm_model *m, uint64_t upto, uint64_t *rbb)
{
	marks(m, upto, 0, rbb);
}

int tm_has_forced(const tm_model *m)
{
	for (size_t i = 0; i < m->nb; i++)
		if (m->b[i].kind == TM_B_ROLLBACK && (m->b[i].flags & LB_FORCE))
			return 1;
	return 0;
}

/* Set every batch's rolled_back_by from the undo sets; the ids whose mark
 * changed go to *changed (malloc'd, may be NULL when none). */
static size_t refresh_marks(tm_model *m, uint64_t **changed)
{
	uint64_t *rbb = malloc((m->nb + 2) * sizeof *rbb);
	size_t n = 0, cap = 0;
	assert_non_null(rbb);
	*changed = NULL;
	marks(m, m->nb, 0, rbb);
	for (uint64_t i = 1; i <= m->nb; i++)
		if (batch(m, i)->rolled_back_by != rbb[i]) {
			batch(m, i)->rolled_back_by = rbb[i];
			u64_push(changed, &n, &cap, i);
		}
	free(rbb);
	return n;
}

/* Append the next batch; m->cur must already be the state after it. Takes
 * ownership of recs and set (the ids it undoes, ascending). Returns the new
 * id; the marks are refreshed (the ids whose mark changed go to *changed
 * when it is not NULL). */
static uint64_t push_batch(tm_model *m, int kind, unsigned flags,
                           uint64_t undoes, uint64_t *set, size_t nset,
                           tm_rec *recs, size_t n, uint64_t records,
                           uint64_t **changed, size_t *nchanged)
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
	b->flags = flags;
	b->undoes = undoes;
	b->set = set;
	b->nset = nset;
	b->recs = recs;
	b->nrecs = n;
	b->records = records;
	for (size_t i = 0; i < n; i++)
		b->keys |= kbit(recs[i].t, recs[i].k);
	for (size_t i = 0; i + 1 < nset; i++)
		assert_true(set[i] < set[i + 1]);
	if (m->keep_states) {
		b->state = malloc(sizeof *b->state);
		assert_non_null(b->state);
		*b->state = m->cur;
	}
	uint64_t *ch;
	size_t nch = refresh_marks(m, &ch);
	if (changed) {
		*changed = ch;
		*nchanged = nch;
	} else
		free(ch);
	return id;
}

/* Apply batch i's records to *out; with check, each record's before-image
 * must be what the key holds (as the engine logged it) and its op must fit
 * its after-image. */
static void apply(const tm_model *m, uint64_t i, tm_state *out, int check)
{
	char x[64], y[64];
	const tm_batch *bb = batch(m, i);
	if (bb->kind == TM_B_TABLE) {
		out->ntables++;
		return;
	}
	for (size_t j = 0; j < bb->nrecs; j++) {
		const tm_rec *r = &bb->recs[j];
		tm_val *v = &out->v[r->t][r->k];
		if (check) {
			TM_CHECK(m, val_eq(v, &r->before),
			         "model: batch %llu record %zu: before %s, key "
			         "holds %s",
			         (unsigned long long)i, j,
			         val_text(&r->before, x, sizeof x),
			         val_text(v, y, sizeof y));
			TM_CHECK(m,
			         (r->op == LB_OP_PUT) ==
			                 (r->after.present != 0),
			         "model: batch %llu record %zu: op %d",
			         (unsigned long long)i, j, r->op);
		}
		*v = r->after;
	}
}

/* Replay batches 1..id of the model from empty into *out. */
static void replay(const tm_model *m, uint64_t id, tm_state *out)
{
	memset(out, 0, sizeof *out);
	for (uint64_t i = 1; i <= id; i++)
		apply(m, i, out, 0);
}

void tm_replay_state(const tm_model *m, uint64_t id, tm_state *out)
{
	replay(m, id, out);
}

const tm_state *tm_state_at(const tm_model *m, uint64_t id)
{
	static const tm_state empty;
	assert_true(m->keep_states);
	if (id == 0)
		return &empty;
	return batch(m, id)->state;
}

static int state_eq(const tm_state *a, const tm_state *b)
{
	if (a->ntables != b->ntables)
		return 0;
	for (int t = 0; t < TM_NT; t++)
		for (int k = 0; k < TM_NK; k++)
			if (!val_eq(&a->v[t][k], &b->v[t][k]))
				return 0;
	return 1;
}

void tm_self_check(const tm_model *m)
{
	tm_state s;
	uint64_t *rbb = malloc((m->nb + 2) * sizeof *rbb);
	assert_non_null(rbb);
	memset(&s, 0, sizeof s);
	for (uint64_t i = 1; i <= m->nb; i++) {
		apply(m, i, &s, 1);
		if (m->keep_states)
			TM_CHECK(m, state_eq(&s, batch(m, i)->state),
			         "model: its records do not replay to its "
			         "state after batch %llu",
			         (unsigned long long)i);
	}
	TM_CHECK(m, state_eq(&s, &m->cur),
	         "model: its records do not replay to its state");
	marks(m, m->nb, 0, rbb);
	for (uint64_t i = 1; i <= m->nb; i++)
		TM_CHECK(m, rbb[i] == batch(m, i)->rolled_back_by,
		         "model: batch %llu marked %llu, recomputed %llu",
		         (unsigned long long)i,
		         (unsigned long long)batch(m, i)->rolled_back_by,
		         (unsigned long long)rbb[i]);
	free(rbb);
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
		push_batch(m, TM_B_TABLE, 0, 0, NULL, 0, NULL, 0, 1, NULL,
		           NULL);
	}
	assert_int_equal(te_last(db), TM_SETUP);
	if (m->trace)
		fprintf(stderr, "batches 1..3: create tables a, h, w\n");
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

/* Header state (rolled_back_by rbb), label (when given) and, with records,
 * the change records of batch id. */
static void check_batch(const tm_model *m, lb_db *db, uint64_t id, uint64_t rbb,
                        const char *label, int records)
{
	const tm_batch *mb = batch(m, id);
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(db, id, &bi));
	TM_CHECK(m, bi.undoes == mb->undoes, "batch %llu undoes %llu, not %llu",
	         (unsigned long long)id, (unsigned long long)bi.undoes,
	         (unsigned long long)mb->undoes);
	TM_CHECK(m, bi.rolled_back_by == rbb,
	         "batch %llu rolled back by %llu, model says %llu",
	         (unsigned long long)id, (unsigned long long)bi.rolled_back_by,
	         (unsigned long long)rbb);
	TM_CHECK(m, bi.records == mb->records,
	         "batch %llu has %llu records, model %llu",
	         (unsigned long long)id, (unsigned long long)bi.records,
	         (unsigned long long)mb->records);
	if (label)
		TM_CHECK(m, strcmp(bi.label, label) == 0,
		         "batch %llu is labelled '%s', not '%s'",
		         (unsigned long long)id, bi.label, label);
	if (mb->kind == TM_B_TABLE || !records)
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
		         "(op %d on %s '%s'; the engine's: op %d on %s '%.*s')",
		         (unsigned long long)id, i, w->op, tm_table_name[w->t],
		         key, r->op, r->table, (int)r->klen,
		         (const char *)r->key);
	}
	te_recs_free(&rs);
}

static void tm_assert_recent_one(const tm_model *m, lb_db *db, uint64_t id)
{
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
	         (unsigned long long)bi.records, (unsigned long long)mb->undoes,
	         (unsigned long long)mb->rolled_back_by,
	         (unsigned long long)mb->records);
}

void tm_assert_recent(const tm_model *m, lb_db *db, uint64_t n)
{
	for (uint64_t id = m->nb > n ? m->nb - n + 1 : 1; id <= m->nb; id++)
		tm_assert_recent_one(m, db, id);
}

void tm_assert_changed(const tm_model *m, lb_db *db, uint64_t n,
                       uint64_t **seen, size_t *nseen)
{
	uint64_t from = m->nb > n ? m->nb - n + 1 : 1;
	if (*nseen < m->nb) {
		uint64_t *p = realloc(*seen, m->nb * sizeof *p);
		assert_non_null(p);
		*seen = p;
	}
	for (uint64_t id = 1; id <= m->nb; id++) {
		uint64_t rbb = batch(m, id)->rolled_back_by;
		int changed = id > *nseen || (*seen)[id - 1] != rbb;
		(*seen)[id - 1] = rbb;
		if (changed && id < from)
			tm_assert_recent_one(m, db, id);
	}
	*nseen = m->nb;
	tm_assert_recent(m, db, n);
}

void tm_assert_log(const tm_model *m, lb_db *db)
{
	for (uint64_t id = 1; id <= m->nb; id++)
		check_batch(m, db, id, batch(m, id)->rolled_back_by, NULL, 1);
}

void tm_assert_log_at(const tm_model *m, lb_db *db, uint64_t upto, int records)
{
	uint64_t *rbb = malloc((upto + 2) * sizeof *rbb);
	assert_non_null(rbb);
	TM_CHECK(m, te_last(db) == upto, "last batch %llu, not %llu",
	         (unsigned long long)te_last(db), (unsigned long long)upto);
	marks(m, upto, 0, rbb);
	for (uint64_t id = 1; id <= upto; id++)
		check_batch(m, db, id, rbb[id], NULL, records);
	free(rbb);
}

/* ---- traces -------------------------------------------------------------- */

/* A value as text for a trace: an opaque value quoted, a witness as
 * {h:h3,n:1}, nil when absent. */
static const char *val_str(const tm_val *v, char *buf, size_t cap)
{
	int r = w_ref(v);
	if (!v->present)
		snprintf(buf, cap, "nil");
	else if (r >= 0)
		snprintf(buf, cap, "{h:h%d,n:%d}", r, v->b[8]);
	else if (v->len == 7 && v->b[0] == 0x82)
		snprintf(buf, cap, "{h:7,n:%d}", v->b[6]);
	else
		snprintf(buf, cap, "'%.*s'", v->len, (const char *)v->b);
	return buf;
}

static const char *flags_str(unsigned f, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s%s%s%s", f ? "" : "strict",
	         (f & LB_CASCADE) ? "|CASCADE" : "",
	         (f & LB_FORCE) ? "|FORCE" : "",
	         (f & LB_DRYRUN) ? "|DRYRUN" : "", (f & ~7u) ? "|unknown" : "");
	if (buf[0] == '|')
		memmove(buf, buf + 1, strlen(buf));
	return buf;
}

static void trace_set(const uint64_t *set, size_t n)
{
	fprintf(stderr, "{");
	for (size_t i = 0; i < n && i < 64; i++)
		fprintf(stderr, "%s%llu", i ? "," : "",
		        (unsigned long long)set[i]);
	fprintf(stderr, "%s}", n > 64 ? ",..." : "");
}

static void trace_recs(const tm_rec *r, size_t n)
{
	char a[48], b[48], key[3];
	for (size_t i = 0; i < n; i++) {
		tm_key(r[i].t, r[i].k, key);
		fprintf(stderr, "%s%s %s %s->%s", i ? ", " : "",
		        r[i].op == LB_OP_PUT ? "PUT" : "DEL", key,
		        val_str(&r[i].before, a, sizeof a),
		        val_str(&r[i].after, b, sizeof b));
	}
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
		if (m->trace)
			fprintf(stderr, "step %llu: a batch aborted\n",
			        (unsigned long long)m->steps);
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
		if (m->trace) {
			fprintf(stderr, "step %llu: batch %llu: ",
			        (unsigned long long)m->steps,
			        (unsigned long long)m->nb + 1);
			trace_recs(rv.v, rv.n);
			fputc('\n', stderr);
		}
		uint64_t id = push_batch(m, TM_B_USER, 0, 0, NULL, 0, rv.v,
		                         rv.n, rv.n, NULL, NULL);
		check_batch(m, db, id, 0, label, 1);
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
		if (m->trace)
			fprintf(stderr, "step %llu: a commit refused (%s)\n",
			        (unsigned long long)m->steps, lb_strerror(rc));
	}
	lb_result_free(&res);
	return rc;
}

/* ---- rollbacks ----------------------------------------------------------- */

/* An issue the engine must report: a CONFLICT or a FOREIGN_KEY issue on
 * table t key k, naming batch. */
typedef struct tissue {
	uint8_t t, k;
	uint64_t batch;
} tissue;

typedef struct outcome {
	int rc;
	tm_state st;   /* the state after the restores */
	recv rv;       /* the records of the new batch */
	uint64_t *set; /* the batches the new batch undoes, ascending */
	size_t nset, setcap;
	tissue *is; /* the issues of rc (LB_ECONFLICT, LB_EVALIDATION) */
	size_t nis, iscap;
	size_t skipped; /* restores that wrote nothing (a DELETE of a key
	                   absent already) */
} outcome;

static void outcome_free(outcome *o)
{
	free(o->rv.v);
	free(o->set);
	free(o->is);
}

static void issue_push(outcome *o, int t, int k, uint64_t b)
{
	if (o->nis == o->iscap) {
		o->iscap = o->iscap ? o->iscap * 2 : 8;
		o->is = realloc(o->is, o->iscap * sizeof *o->is);
		assert_non_null(o->is);
	}
	o->is[o->nis].t = (uint8_t)t;
	o->is[o->nis].k = (uint8_t)k;
	o->is[o->nis].batch = b;
	o->nis++;
}

/* The last batch that changed key k of table t: the greatest batch of its
 * history (docs/FORMAT.md §2.4, §2.5), which holds every batch with a
 * record of it, except the undo batches whose histories are implied
 * (kind 1): such a batch is in the history of every key whose history holds
 * a batch it undoes. */
static uint64_t last_change(const tm_model *m, int t, int k)
{
	uint8_t *in = calloc(m->nb + 1, 1);
	uint64_t last = 0;
	assert_non_null(in);
	for (uint64_t id = 1; id <= m->nb; id++) {
		const tm_batch *b = batch(m, id);
		int wrote = (b->keys & kbit(t, k)) != 0;
		if (b->implied) {
			for (size_t s = 0; s < b->nset && !in[id]; s++)
				in[id] = in[b->set[s]];
			TM_CHECK(m, in[id] || !wrote,
			         "model: batch %llu wrote %s '%c%d', which is "
			         "in the history of no batch it undoes",
			         (unsigned long long)id, tm_table_name[t],
			         tm_table_name[t][0], k);
		} else
			in[id] = (uint8_t)wrote;
		if (in[id])
			last = id;
	}
	free(in);
	return last;
}

/* Restore batch L's before-images on o->st, record by record from its last
 * record: a PUT of the before-image, or a DELETE when it is absent, and
 * nothing when a DELETE finds the key absent already. With exact (a strict
 * rollback, which checked its keys first) every record must meet its own
 * after-image. */
static void restore(const tm_model *m, outcome *o, uint64_t L, int exact)
{
	const tm_batch *bb = batch(m, L);
	for (size_t i = bb->nrecs; i-- > 0;) {
		const tm_rec *r = &bb->recs[i];
		tm_val *cur = &o->st.v[r->t][r->k];
		if (exact)
			TM_CHECK(m, val_eq(cur, &r->after),
			         "model: batch %llu record %zu does not undo "
			         "exactly",
			         (unsigned long long)L, i);
		if (!r->before.present && !cur->present) {
			o->skipped++;
			continue;
		}
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

/* Did o's records delete hearing h? */
static int deleted(const outcome *o, int h)
{
	for (size_t i = 0; i < o->rv.n; i++)
		if (o->rv.v[i].t == TM_H && o->rv.v[i].k == h &&
		    !o->rv.v[i].after.present)
			return 1;
	return 0;
}

/* Did o's records make witness w name hearing h (a record whose after-image
 * names h and whose before-image does not)? */
static int renamed(const outcome *o, int w, int h)
{
	for (size_t i = 0; i < o->rv.n; i++) {
		const tm_rec *r = &o->rv.v[i];
		if (r->t == TM_W && r->k == w && w_ref(&r->after) == h &&
		    w_ref(&r->before) != h)
			return 1;
	}
	return 0;
}

/* The foreign key checks at the end of every rollback (docs/ROLLBACK.md,
 * "Foreign keys"), against o->st: a hearing that the rollback removed and
 * that a witness still names is an issue on the hearing, naming the batch
 * that last changed the (first) witness naming it; a witness that the
 * rollback made name a hearing that does not exist is an issue on the
 * witness (batch 0). */
static void fk_check(const tm_model *m, outcome *o)
{
	if (!dangling(&o->st))
		return;
	o->rc = LB_EVALIDATION;
	for (int h = 0; h < TM_NK; h++) {
		if (o->st.v[TM_H][h].present || !deleted(o, h))
			continue;
		for (int w = 0; w < TM_NK; w++)
			if (w_ref(&o->st.v[TM_W][w]) == h) {
				issue_push(o, TM_H, h, last_change(m, TM_W, w));
				break;
			}
	}
	for (int w = 0; w < TM_NK; w++) {
		int h = w_ref(&o->st.v[TM_W][w]);
		if (h >= 0 && !o->st.v[TM_H][h].present && renamed(o, w, h))
			issue_push(o, TM_W, w, 0);
	}
	TM_CHECK(m, o->nis > 0, "model: a dangling reference without issue");
}

/* The set C of a cascading rollback of B (docs/ROLLBACK.md, LB_CASCADE),
 * ascending into o->set: St is which batches stand now, St' which would
 * stand if a new batch undid B alone; the moved batches are the ordinary
 * ones whose standing differs between the two. C is the smallest set with
 * B in it such that, for every ordinary M moved or in C and every key M
 * changed, every ordinary L > M that changed that key and stands in St and
 * St' is in C; and for every ordinary M in C that created a hearing (its
 * first record of it has no before-image), every ordinary L > M that
 * changed a witness naming that hearing now, standing in St and St', is in
 * C. Each M is looked at once: what it adds depends only on M, St, St' and
 * the state now, and a moved batch other than B never joins C (it does
 * not stand in both). */
static void cascade_set(const tm_model *m, uint64_t B, outcome *o)
{
	uint64_t n = m->nb;
	uint64_t *st = malloc((n + 2) * sizeof *st),
	         *st2 = malloc((n + 2) * sizeof *st2), *work = NULL;
	uint8_t *in = calloc(n + 1, 1), *done = calloc(n + 1, 1);
	size_t nwork = 0, wcap = 0;
	assert_true(st && st2 && in && done);
	marks(m, n, 0, st);
	marks(m, n, B, st2);
	TM_CHECK(m, st[B] == 0 && st2[B] == n + 1,
	         "model: batch %llu to cascade does not stand",
	         (unsigned long long)B);
	in[B] = 1;
	for (uint64_t M = 1; M <= n; M++)
		if (ordinary(batch(m, M)) && (!st[M] != !st2[M]))
			u64_push(&work, &nwork, &wcap, M);
	while (nwork > 0) {
		uint64_t M = work[--nwork];
		const tm_batch *bm = batch(m, M);
		uint32_t keys = bm->keys, refs = 0;
		if (done[M])
			continue;
		done[M] = 1;
		if (in[M]) {
			uint32_t seen = 0;
			for (size_t i = 0; i < bm->nrecs; i++) {
				const tm_rec *r = &bm->recs[i];
				uint32_t bit = kbit(r->t, r->k);
				if (seen & bit)
					continue;
				seen |= bit;
				if (r->t != TM_H || r->before.present)
					continue;
				for (int w = 0; w < TM_NK; w++)
					if (w_ref(&m->cur.v[TM_W][w]) == r->k)
						refs |= kbit(TM_W, w);
			}
		}
		for (uint64_t L = M + 1; L <= n; L++) {
			const tm_batch *bl = batch(m, L);
			if (in[L] || !ordinary(bl) || st[L] || st2[L] ||
			    !(bl->keys & (keys | refs)))
				continue;
			in[L] = 1;
			u64_push(&work, &nwork, &wcap, L);
		}
	}
	for (uint64_t L = 1; L <= n; L++)
		if (in[L])
			u64_push(&o->set, &o->nset, &o->setcap, L);
	free(st);
	free(st2);
	free(in);
	free(done);
	free(work);
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
	const tm_batch *bb = batch(m, B);
	if (bb->rolled_back_by) {
		o->rc = LB_EINVAL;
		return;
	}
	TM_CHECK(m, bb->kind != TM_B_TABLE,
	         "model: a rollback of table batch %llu",
	         (unsigned long long)B);
	if (flags & LB_CASCADE)
		cascade_set(m, B, o);
	else
		u64_push(&o->set, &o->nset, &o->setcap, B);
	if (!(flags & (LB_CASCADE | LB_FORCE))) {
		/* strict: every key must hold B's final after-image */
		uint32_t seen = 0;
		for (size_t i = bb->nrecs; i-- > 0;) {
			const tm_rec *r = &bb->recs[i];
			uint32_t bit = kbit(r->t, r->k);
			if (seen & bit)
				continue;
			seen |= bit;
			if (!val_eq(&o->st.v[r->t][r->k], &r->after))
				issue_push(o, r->t, r->k,
				           last_change(m, r->t, r->k));
		}
		if (o->nis) {
			o->rc = LB_ECONFLICT;
			return;
		}
	}
	/* C \ {B} newest first, then B */
	for (size_t i = o->nset; i-- > 0;)
		if (o->set[i] != B)
			restore(m, o, o->set[i], 0);
	restore(m, o, B, !(flags & (LB_CASCADE | LB_FORCE)));
	fk_check(m, o);
	if (o->rc == 0 && (flags & LB_CASCADE)) {
		/* every key B changed holds the before-image of B's first
		 * record of it, since B's restores come last */
		for (size_t i = 0; i < bb->nrecs; i++) {
			const tm_rec *r = &bb->recs[i];
			int first = 1;
			for (size_t j = 0; j < i && first; j++)
				first = bb->recs[j].t != r->t ||
				        bb->recs[j].k != r->k;
			if (first)
				TM_CHECK(m,
				         val_eq(&o->st.v[r->t][r->k],
				                &r->before),
				         "model: cascade of %llu leaves a key "
				         "of it other than it found it",
				         (unsigned long long)B);
		}
	}
}

/* rollback_to(X): one record per key whose value differs from its value
 * right after X (found by replaying the model's batches 1..X from empty):
 * deletions first, then puts, each in the order of table name, then key
 * (our names and keys all have the same length, so that is (t, k)
 * ascending). The new batch undoes every batch after X. */
static void model_rollback_to(const tm_model *m, uint64_t X, unsigned flags,
                              outcome *o)
{
	tm_state at;
	memset(o, 0, sizeof *o);
	o->st = m->cur;
	if (flags & ~(unsigned)LB_DRYRUN) {
		o->rc = LB_EINVAL;
		return;
	}
	if (X > m->nb) {
		o->rc = LB_ENOTFOUND;
		return;
	}
	TM_CHECK(m, X >= TM_SETUP, "model: rollback_to before the tables");
	replay(m, X, &at);
	if (m->keep_states)
		TM_CHECK(m, state_eq(&at, batch(m, X)->state),
		         "model: replay to %llu differs from the state kept",
		         (unsigned long long)X);
	for (int pass = 0; pass < 2; pass++)
		for (int t = 0; t < TM_NT; t++)
			for (int k = 0; k < TM_NK; k++) {
				const tm_val *want = &at.v[t][k];
				tm_val *cur = &o->st.v[t][k];
				if (want->present != pass || val_eq(cur, want))
					continue;
				tm_rec nr;
				memset(&nr, 0, sizeof nr);
				nr.op = want->present ? LB_OP_PUT
				                      : LB_OP_DELETE;
				nr.t = (uint8_t)t;
				nr.k = (uint8_t)k;
				nr.before = *cur;
				nr.after = *want;
				recv_push(&o->rv, &nr);
				*cur = *want;
			}
	for (uint64_t L = X + 1; L <= m->nb; L++)
		u64_push(&o->set, &o->nset, &o->setcap, L);
	TM_CHECK(m, state_eq(&at, &o->st), "model: rollback_to nets wrong");
	TM_CHECK(m, !dangling(&o->st), "model: rollback_to dangles");
}

/* Do the engine's issues match the model's? CONFLICT: exactly one per key
 * the model lists, naming the same batch. FOREIGN_KEY: the same keys (a
 * key may be reported more than once), naming the same batches. */
static void check_issues(const tm_model *m, const outcome *o, int rc,
                         const lb_result *res)
{
	int kind =
	        rc == LB_ECONFLICT ? LB_ISSUE_CONFLICT : LB_ISSUE_FOREIGN_KEY;
	const char *kname = rc == LB_ECONFLICT ? "CONFLICT" : "FOREIGN_KEY";
	TM_CHECK(m, res->nissues > 0 && res->nissues_total >= res->nissues,
	         "%s: %zu issues (%zu in all)", lb_strerror(rc), res->nissues,
	         res->nissues_total);
	if (rc == LB_ECONFLICT)
		TM_CHECK(m,
		         res->nissues == o->nis && res->nissues_total == o->nis,
		         "%zu conflict issues, model has %zu", res->nissues,
		         o->nis);
	for (size_t j = 0; j < res->nissues; j++) {
		const lb_issue *is = &res->issues[j];
		size_t i;
		TM_CHECK(m, (int)is->kind == kind,
		         "issue %zu is of kind %d, not %s", j, is->kind, kname);
		TM_CHECK(m, is->message && is->message[0],
		         "issue %zu without a message", j);
		for (i = 0; i < o->nis; i++) {
			char key[3];
			tm_key(o->is[i].t, o->is[i].k, key);
			if (strcmp(is->table, tm_table_name[o->is[i].t]) == 0 &&
			    is->klen == 2 && memcmp(is->key, key, 2) == 0)
				break;
		}
		TM_CHECK(m, i < o->nis,
		         "%s issue %zu on %s '%.*s', which the model does not "
		         "have (%s)",
		         kname, j, is->table, (int)is->klen,
		         (const char *)is->key, is->message);
		TM_CHECK(m, is->batch == o->is[i].batch,
		         "%s issue on %s '%.*s' names batch %llu, model says "
		         "%llu",
		         kname, is->table, (int)is->klen, (const char *)is->key,
		         (unsigned long long)is->batch,
		         (unsigned long long)o->is[i].batch);
	}
	for (size_t i = 0; i < o->nis; i++) {
		char key[3];
		size_t j;
		tm_key(o->is[i].t, o->is[i].k, key);
		for (j = 0; j < res->nissues; j++)
			if (strcmp(res->issues[j].table,
			           tm_table_name[o->is[i].t]) == 0 &&
			    res->issues[j].klen == 2 &&
			    memcmp(res->issues[j].key, key, 2) == 0)
				break;
		TM_CHECK(m, j < res->nissues, "no %s issue for %s '%s'", kname,
		         tm_table_name[o->is[i].t], key);
	}
}

/* The engine's result against the model's outcome; on success without dry
 * run, commit the outcome to the model and check the new batch and every
 * batch whose standing changed. */
static void settle(tm_model *m, lb_db *db, outcome *o, int rc,
                   const lb_result *res, int dry, int kind, unsigned flags,
                   uint64_t undoes, const char *label)
{
	TM_CHECK(m, res->rc == rc, "res.rc %d, rc %d", res->rc, rc);
	if (rc == LB_ECONFLICT || rc == LB_EVALIDATION)
		check_issues(m, o, rc, res);
	else if (rc == 0)
		TM_CHECK(m, res->nissues == 0, "success with %zu issues",
		         res->nissues);
	/* the batches undone, newest first: those the new batch undoes (or
	 * would, on dry run); none when nothing is written */
	size_t nundone = rc == 0 && o->rv.n > 0 ? o->nset : 0;
	TM_CHECK(m, res->nundone == nundone && (nundone == 0) == !res->undone,
	         "res.undone lists %zu batches, the model %zu", res->nundone,
	         nundone);
	for (size_t i = 0; i < nundone; i++)
		TM_CHECK(m, res->undone[i] == o->set[nundone - 1 - i],
		         "res.undone[%zu] is batch %llu, the model's %llu", i,
		         (unsigned long long)res->undone[i],
		         (unsigned long long)o->set[nundone - 1 - i]);
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
	uint64_t *changed;
	size_t nchanged;
	m->cur = o->st;
	uint64_t id = push_batch(m, kind, flags & (LB_CASCADE | LB_FORCE),
	                         undoes, o->set, o->nset, o->rv.v, o->rv.n,
	                         o->rv.n, &changed, &nchanged);
	batch(m, id)->implied =
	        kind == TM_B_ROLLBACK && !(flags & LB_FORCE) && o->skipped == 0;
	o->set = NULL;
	o->rv.v = NULL;
	o->nset = o->rv.n = 0;
	check_batch(m, db, id, 0, label, 1);
	for (size_t i = 0; i < nchanged; i++)
		check_batch(m, db, changed[i],
		            batch(m, changed[i])->rolled_back_by, NULL, 0);
	free(changed);
}

static void count_refusal(tm_model *m, int rc)
{
	if (rc == LB_ECONFLICT)
		m->stats.conflicts++;
	else if (rc == LB_EVALIDATION)
		m->stats.fk_refused++;
	else if (rc == LB_EINVAL) {
		m->stats.einval++;
		m->stats.errors++;
	} else if (rc == LB_ENOTFOUND) {
		m->stats.enotfound++;
		m->stats.errors++;
	} else if (rc != 0)
		m->stats.errors++;
}

int tm_rollback(tm_model *m, lb_db *db, uint64_t id, unsigned flags)
{
	outcome o;
	lb_result res;
	char label[64], fs[48];
	int dry = (flags & LB_DRYRUN) != 0, undo_target = 0, of_cascade = 0,
	    of_rbto = 0;
	model_rollback(m, id, flags, &o);
	size_t nrecs = o.rv.n, nset = o.nset;
	if (id >= 1 && id <= m->nb) {
		const tm_batch *tb = batch(m, id);
		undo_target = !ordinary(tb);
		of_cascade =
		        tb->kind == TM_B_ROLLBACK && (tb->flags & LB_CASCADE);
		of_rbto = tb->kind == TM_B_ROLLBACK_TO;
	}
	if (m->trace) {
		fprintf(stderr, "step %llu: rollback(%llu, %s) -> %s",
		        (unsigned long long)m->steps, (unsigned long long)id,
		        flags_str(flags, fs, sizeof fs),
		        o.rc ? lb_strerror(o.rc) : "0");
		if (o.rc == 0 && !dry && o.rv.n) {
			fprintf(stderr, ": batch %llu undoes ",
			        (unsigned long long)m->nb + 1);
			trace_set(o.set, o.nset);
			fprintf(stderr, ": ");
			trace_recs(o.rv.v, o.rv.n);
		} else if (o.rc == 0)
			fprintf(stderr, " (%zu records, nothing written)",
			        o.rv.n);
		fputc('\n', stderr);
	}
	int rc = lb_rollback(db, id, flags, &res);
	char em[512];
	snprintf(em, sizeof em, "%s", lb_errmsg());
	if ((flags & LB_CASCADE) && rc == LB_ECONFLICT)
		TM_CHECK(m, tm_has_forced(m),
		         "a cascade of %llu refused with LB_ECONFLICT, and no "
		         "forced rollback nor table change in the history (%s)",
		         (unsigned long long)id, em);
	TM_CHECK(m, rc == o.rc,
	         "lb_rollback(%llu, 0x%x) = %s, model says %s (%s)",
	         (unsigned long long)id, flags, lb_strerror(rc),
	         lb_strerror(o.rc), em);
	if (rc < 0)
		TM_CHECK(m, em[0] != 0, "no lb_errmsg() detail");
	if (rc == LB_EINVAL && id >= 1 && id <= m->nb &&
	    batch(m, id)->rolled_back_by && !(flags & ~7u) &&
	    (flags & 3u) != 3u) {
		/* the message names the standing batch that undoes it */
		char num[24];
		const char *p = em;
		size_t nl;
		nl = (size_t)snprintf(
		        num, sizeof num, "%llu",
		        (unsigned long long)batch(m, id)->rolled_back_by);
		while ((p = strstr(p, num)) != NULL &&
		       ((p > em && p[-1] >= '0' && p[-1] <= '9') ||
		        (p[nl] >= '0' && p[nl] <= '9')))
			p++;
		TM_CHECK(m, p != NULL,
		         "refusing batch %llu, which does not stand, the "
		         "message does not name batch %s: %s",
		         (unsigned long long)id, num, em);
	}
	snprintf(label, sizeof label, "rollback of batch %llu",
	         (unsigned long long)id);
	settle(m, db, &o, rc, &res, dry, TM_B_ROLLBACK, flags, id, label);
	if (dry)
		m->stats.dryruns++;
	count_refusal(m, rc);
	if (rc == 0 && !dry && nrecs == 0) {
		m->stats.noops++;
		if (flags & LB_CASCADE)
			m->stats.cascade_noops++;
	} else if (rc == 0 && !dry) {
		m->stats.rollbacks++;
		if (flags & LB_FORCE)
			m->stats.forced++;
		if (undo_target)
			m->stats.undo_targets++;
		if (of_cascade)
			m->stats.of_cascades++;
		if (of_rbto)
			m->stats.of_rollback_tos++;
		if (flags & LB_CASCADE) {
			m->stats.cascades++;
			m->stats.cascade_members += nset - 1;
			if (undo_target)
				m->stats.cascades_of_undo++;
		}
	}
	outcome_free(&o);
	lb_result_free(&res);
	return rc;
}

int tm_rollback_to_ex(tm_model *m, lb_db *db, uint64_t id, unsigned flags)
{
	outcome o;
	lb_result res;
	char label[64], fs[48];
	int dry = (flags & LB_DRYRUN) != 0;
	model_rollback_to(m, id, flags, &o);
	if (m->trace) {
		fprintf(stderr, "step %llu: rollback_to(%llu%s%s) -> %s",
		        (unsigned long long)m->steps, (unsigned long long)id,
		        flags ? ", " : "",
		        flags ? flags_str(flags, fs, sizeof fs) : "",
		        o.rc ? lb_strerror(o.rc) : "0");
		if (o.rc == 0 && o.rv.n && !dry) {
			fprintf(stderr, ": batch %llu: ",
			        (unsigned long long)m->nb + 1);
			trace_recs(o.rv.v, o.rv.n);
		} else if (o.rc == 0)
			fprintf(stderr, " (%zu records, nothing written)",
			        o.rv.n);
		fputc('\n', stderr);
	}
	int rc = lb_rollback_to_ex(db, id, flags, &res);
	char em[512];
	snprintf(em, sizeof em, "%s", lb_errmsg());
	TM_CHECK(m, rc == o.rc,
	         "lb_rollback_to_ex(%llu, 0x%x) = %s, model says %s (%s)",
	         (unsigned long long)id, flags, lb_strerror(rc),
	         lb_strerror(o.rc), em);
	if (rc < 0)
		TM_CHECK(m, em[0] != 0, "no lb_errmsg() detail");
	snprintf(label, sizeof label, "rollback to batch %llu",
	         (unsigned long long)id);
	int wrote = rc == 0 && o.rv.n > 0 && !dry;
	settle(m, db, &o, rc, &res, dry, TM_B_ROLLBACK_TO, 0, id, label);
	if (wrote) {
		/* every batch up to X stands as it stood right after X */
		uint64_t *rbb = malloc((id + 2) * sizeof *rbb);
		assert_non_null(rbb);
		marks(m, id, 0, rbb);
		for (uint64_t i = 1; i <= id; i++)
			TM_CHECK(
			        m, rbb[i] == batch(m, i)->rolled_back_by,
			        "model: after rollback_to %llu, batch %llu "
			        "is marked %llu, as of %llu it was %llu",
			        (unsigned long long)id, (unsigned long long)i,
			        (unsigned long long)batch(m, i)->rolled_back_by,
			        (unsigned long long)id,
			        (unsigned long long)rbb[i]);
		free(rbb);
		m->stats.rollback_tos++;
	} else if (rc == 0 && !dry)
		m->stats.noops++;
	if (dry)
		m->stats.dryruns++;
	count_refusal(m, rc);
	outcome_free(&o);
	lb_result_free(&res);
	return rc;
}

int tm_rollback_to(tm_model *m, lb_db *db, uint64_t id)
{
	return tm_rollback_to_ex(m, db, id, 0);
}

/* ---- random steps -------------------------------------------------------- */

uint64_t tm_pick_target(const tm_model *m, uint64_t *rng)
{
	uint64_t u = th_below(rng, 100), n = m->nb;
	if (u < 2)
		return 0;
	if (u < 4 || n <= TM_SETUP)
		return n + 1 + th_below(rng, 3);
	uint64_t span = n - TM_SETUP;
	if (u < 40) {
		/* an undo batch, standing four times in five */
		int want_standing = th_below(rng, 5) != 0;
		uint64_t cand[64];
		size_t nc = 0;
		for (uint64_t id = n; id > TM_SETUP && nc < 64; id--) {
			const tm_batch *bb = batch(m, id);
			if (!ordinary(bb) &&
			    (!bb->rolled_back_by) == want_standing)
				cand[nc++] = id;
		}
		if (nc)
			return cand[th_below(rng, nc)];
	}
	if (u < 75) {
		/* a standing ordinary batch, mostly a recent one */
		uint64_t cand[24];
		size_t nc = 0;
		for (uint64_t id = n; id > TM_SETUP && nc < 24; id--) {
			const tm_batch *bb = batch(m, id);
			if (ordinary(bb) && !bb->rolled_back_by)
				cand[nc++] = id;
		}
		if (nc)
			return cand[th_below(
			        rng, th_below(rng, 2) ? nc : (nc + 3) / 4)];
	}
	if (th_below(rng, 10) < 7)
		return n - th_below(rng, span < 12 ? span : 12);
	return TM_SETUP + 1 + th_below(rng, span);
}

unsigned tm_pick_flags(uint64_t *rng)
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
		uint64_t id = tm_pick_target(m, rng);
		tm_rollback(m, *db, id, tm_pick_flags(rng));
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
		if (m->trace)
			fprintf(stderr, "step %llu: close and reopen\n",
			        (unsigned long long)m->steps);
	} break;
	}
}
