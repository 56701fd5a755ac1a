/* SPDX-License-Identifier: MIT */
/*
 * _hearings.c: the shared hearings schema and value builders; see
 * _hearings.h.
 */
#define _GNU_SOURCE
#include "_hearings.h"
#include "_common.h"

#include <lmdb.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const lb_field hearing_fields[] = {
        {"id", LB_STR, LB_REQUIRED, 32, NULL},
        {"title", LB_STR, LB_REQUIRED, 200, NULL},
        {"date", LB_STR, LB_REQUIRED, 10, NULL},
        {"committee", LB_STR, LB_REQUIRED, 120, NULL},
        {"chamber", LB_STR, LB_REQUIRED, 6, NULL},
        {"congress", LB_INT, LB_REQUIRED, 0, NULL},
};
const lb_schema hg_hearing_schema = {hearing_fields, 6, 1};

static const lb_field witness_fields[] = {
        {"id", LB_STR, 0, 0, NULL},
        {"hearing_id", LB_STR, LB_REQUIRED, 0, HG_HEARINGS},
        {"name", LB_STR, LB_REQUIRED, 80, NULL},
        {"organization", LB_STR, 0, 120, NULL},
};
const lb_schema hg_witness_schema = {witness_fields, 4, 1};

static const lb_field document_fields[] = {
        {"hearing_id", LB_ANY, LB_REQUIRED, 0, HG_HEARINGS},
        {"type", LB_STR, LB_REQUIRED, 16, NULL},
        {"url", LB_STR, LB_REQUIRED, 2048, NULL},
};
const lb_schema hg_document_schema = {document_fields, 3, 0};

void hg_create(lb_db *db)
{
	te_rc(0, lb_table_create(db, HG_HEARINGS, &hg_hearing_schema));
	te_rc(0, lb_table_create(db, HG_WITNESSES, &hg_witness_schema));
	te_rc(0, lb_table_create(db, HG_DOCUMENTS, &hg_document_schema));
}

/* ---- values -------------------------------------------------------------- */

void hg_init(hg_val *v)
{
	msgpack_sbuffer_init(&v->sb);
	msgpack_packer_init(&v->pk, &v->sb, msgpack_sbuffer_write);
}

void hg_reset(hg_val *v)
{
	v->sb.size = 0;
}

void hg_free(hg_val *v)
{
	msgpack_sbuffer_destroy(&v->sb);
	memset(v, 0, sizeof *v);
}

void hg_map(hg_val *v, uint32_t n)
{
	assert_int_equal(msgpack_pack_map(&v->pk, n), 0);
}

void hg_pstr(hg_val *v, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(msgpack_pack_str(&v->pk, n), 0);
	assert_int_equal(msgpack_pack_str_body(&v->pk, s, n), 0);
}

void hg_key(hg_val *v, const char *field)
{
	hg_pstr(v, field);
}

void hg_kstrn(hg_val *v, const char *field, const void *s, size_t n)
{
	hg_key(v, field);
	assert_int_equal(msgpack_pack_str(&v->pk, n), 0);
	assert_int_equal(msgpack_pack_str_body(&v->pk, s, n), 0);
}

void hg_kstr(hg_val *v, const char *field, const char *s)
{
	hg_kstrn(v, field, s, strlen(s));
}

void hg_kint(hg_val *v, const char *field, int64_t i)
{
	hg_key(v, field);
	assert_int_equal(msgpack_pack_int64(&v->pk, i), 0);
}

void hg_kbin(hg_val *v, const char *field, const void *p, size_t n)
{
	hg_key(v, field);
	assert_int_equal(msgpack_pack_bin(&v->pk, n), 0);
	assert_int_equal(msgpack_pack_bin_body(&v->pk, p, n), 0);
}

void hg_knil(hg_val *v, const char *field)
{
	hg_key(v, field);
	assert_int_equal(msgpack_pack_nil(&v->pk), 0);
}

void hg_hearing(hg_val *v, const char *id)
{
	char title[128];
	snprintf(title, sizeof title, "Oversight hearing %.64s", id);
	hg_reset(v);
	hg_map(v, 6);
	hg_kstr(v, "id", id);
	hg_kstr(v, "title", title);
	hg_kstr(v, "date", "2024-03-14");
	hg_kstr(v, "committee", "Committee on Energy and Commerce");
	hg_kstr(v, "chamber", "House");
	hg_kint(v, "congress", 118);
}

static void witness_n(hg_val *v, const void *hid, size_t hlen)
{
	hg_reset(v);
	hg_map(v, 3);
	hg_kstrn(v, "hearing_id", hid, hlen);
	hg_kstr(v, "name", "Dr. Ada Example");
	hg_kstr(v, "organization", "Institute of Examples");
}

void hg_witness(hg_val *v, const char *hearing_id)
{
	witness_n(v, hearing_id, strlen(hearing_id));
}

void hg_document(hg_val *v, const char *hearing_id)
{
	hg_reset(v);
	hg_map(v, 3);
	hg_kstr(v, "hearing_id", hearing_id);
	hg_kstr(v, "type", "transcript");
	hg_kstr(v, "url", "https://example.org/transcripts/1.pdf");
}

/* ---- ops ----------------------------------------------------------------- */

int hg_put_hearing(lb_batch *b, const char *key)
{
	hg_val v;
	hg_init(&v);
	hg_hearing(&v, key);
	int rc = lb_put(b, HG_HEARINGS, key, strlen(key), hg_data(&v),
	                hg_len(&v));
	hg_free(&v);
	return rc;
}

int hg_insert_hearing(lb_batch *b, const char *key)
{
	hg_val v;
	hg_init(&v);
	hg_hearing(&v, key);
	int rc = lb_insert(b, HG_HEARINGS, key, strlen(key), hg_data(&v),
	                   hg_len(&v));
	hg_free(&v);
	return rc;
}

int hg_put_witnessn(lb_batch *b, const void *key, size_t klen,
                    const void *hearing_id, size_t hlen)
{
	hg_val v;
	hg_init(&v);
	witness_n(&v, hearing_id, hlen);
	int rc = lb_put(b, HG_WITNESSES, key, klen, hg_data(&v), hg_len(&v));
	hg_free(&v);
	return rc;
}

int hg_put_witness(lb_batch *b, const char *key, const char *hearing_id)
{
	return hg_put_witnessn(b, key, strlen(key), hearing_id,
	                       strlen(hearing_id));
}

int hg_put_document(lb_batch *b, const char *key, const char *hearing_id)
{
	hg_val v;
	hg_init(&v);
	hg_document(&v, hearing_id);
	int rc = lb_put(b, HG_DOCUMENTS, key, strlen(key), hg_data(&v),
	                hg_len(&v));
	hg_free(&v);
	return rc;
}

int hg_del(lb_batch *b, const char *table, const char *key)
{
	return lb_delete(b, table, key, strlen(key));
}

/* ---- more values and ops ----------------------------------------------- */

int hg_put_raw(lb_batch *b, const char *table, const char *key, const void *val,
               size_t vlen)
{
	return lb_put(b, table, key, strlen(key), val, vlen);
}

int hg_putv(lb_batch *b, const char *table, const char *key, const hg_val *v)
{
	return lb_put(b, table, key, strlen(key), hg_data(v), hg_len(v));
}

/* A hearing value whose entries are all valid except what the caller adds:
 * the six fields minus `skip` (NULL = none), preceded by the map header for
 * `extra` more entries. */
void hg_hearing_but(hg_val *v, const char *skip, uint32_t extra)
{
	static const char *const names[] = {"id",        "title",   "date",
	                                    "committee", "chamber", "congress"};
	hg_reset(v);
	hg_map(v, (skip ? 5 : 6) + extra);
	for (size_t i = 0; i < 6; i++) {
		if (skip && strcmp(names[i], skip) == 0)
			continue;
		if (strcmp(names[i], "congress") == 0)
			hg_kint(v, "congress", 118);
		else if (strcmp(names[i], "date") == 0)
			hg_kstr(v, "date", "2024-01-02");
		else if (strcmp(names[i], "chamber") == 0)
			hg_kstr(v, "chamber", "Senate");
		else
			hg_kstr(v, names[i], "x");
	}
}

/* ---- batches and issues -------------------------------------------------- */

lb_batch *hg_begin(lb_db *db)
{
	lb_batch *b = NULL;
	te_rc(0, lb_batch_begin(db, "test", &b));
	assert_non_null(b);
	return b;
}

static void print_issues(const lb_result *r)
{
	for (size_t i = 0; i < r->nissues && i < 20; i++)
		print_error("    issue %zu: kind %d, %s, field %s: %s\n", i,
		            (int)r->issues[i].kind, r->issues[i].table,
		            r->issues[i].field ? r->issues[i].field : "(none)",
		            r->issues[i].message ? r->issues[i].message
		                                 : "(NULL)");
}

uint64_t hg_commit_ok(lb_batch *b)
{
	lb_result r;
	memset(&r, 0, sizeof r);
	int rc = lb_batch_commit(b, &r);
	if (rc != 0) {
		print_error("commit returned %d (%s): %s\n", rc,
		            lb_strerror(rc), lb_errmsg());
		print_issues(&r);
	}
	assert_int_equal(rc, 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.nissues, 0);
	assert_int_equal(r.nissues_total, 0);
	uint64_t id = r.batch_id;
	lb_result_free(&r);
	return id;
}

void hg__commit_rejected(lb_db *db, lb_batch *b, lb_result *res,
                         const char *file, int line)
{
	uint64_t last = 0;
	te_rc(0, lb_last_batch(db, &last));
	memset(res, 0, sizeof *res);
	int rc = lb_batch_commit(b, res);
	if (rc != LB_EVALIDATION) {
		print_error("%s:%d: commit returned %d (%s), expected "
		            "LB_EVALIDATION: %s\n",
		            file, line, rc, lb_strerror(rc), lb_errmsg());
		_fail(file, line);
	}
	if (res->rc != LB_EVALIDATION || res->batch_id != 0 ||
	    res->nissues == 0 || res->nissues_total < res->nissues) {
		print_error("%s:%d: rejected commit: rc %d, batch_id %llu, "
		            "nissues %zu, nissues_total %zu\n",
		            file, line, res->rc,
		            (unsigned long long)res->batch_id, res->nissues,
		            res->nissues_total);
		_fail(file, line);
	}
	uint64_t after = 0;
	te_rc(0, lb_last_batch(db, &after));
	if (after != last) {
		print_error(
		        "%s:%d: a rejected commit moved the last batch from "
		        "%llu to %llu\n",
		        file, line, (unsigned long long)last,
		        (unsigned long long)after);
		_fail(file, line);
	}
}

void hg__assert_issue(const lb_issue *is, lb_issue_kind kind, const char *table,
                      const void *key, size_t klen, const char *field,
                      const char *file, int line)
{
	int ok = is && is->kind == kind && is->table &&
	         strcmp(is->table, table) == 0 && is->klen == klen &&
	         (klen == 0 || memcmp(is->key, key, klen) == 0) &&
	         (field ? is->field && strcmp(is->field, field) == 0
	                : is->field == NULL) &&
	         is->message && is->message[0];
	if (ok)
		return;
	if (!is) {
		print_error("%s:%d: no issue\n", file, line);
	} else {
		print_error(
		        "%s:%d: issue mismatch\n"
		        "    want kind %d table %s key '%.*s' field %s\n"
		        "    got  kind %d table %s key '%.*s' field %s: %s\n",
		        file, line, (int)kind, table, (int)klen,
		        (const char *)key, field ? field : "(none)",
		        (int)is->kind, is->table ? is->table : "(NULL)",
		        (int)is->klen, is->key ? (const char *)is->key : "",
		        is->field ? is->field : "(none)",
		        is->message ? is->message : "(NULL)");
	}
	_fail(file, line);
}

void hg__assert_contains(const char *s, const char *sub, const char *file,
                         int line)
{
	if (s && strstr(s, sub))
		return;
	print_error("%s:%d: \"%s\" does not contain \"%s\"\n", file, line,
	            s ? s : "(NULL)", sub);
	_fail(file, line);
}

/* ---- _refs, read directly ------------------------------------------------ */

typedef struct pair {
	uint8_t *k, *v;
	size_t kl, vl;
} pair;

typedef struct pairs {
	pair *p;
	size_t n, cap;
} pairs;

static size_t ikey(uint8_t *out, uint32_t tid, const void *key, size_t klen)
{
	if (klen <= LB_KEY_MAX - 4) {
		out[0] = (uint8_t)(tid >> 24);
		out[1] = (uint8_t)(tid >> 16);
		out[2] = (uint8_t)(tid >> 8);
		out[3] = (uint8_t)tid;
		memcpy(out + 4, key, klen);
		return 4 + klen;
	}
	tid |= 0x80000000u;
	out[0] = (uint8_t)(tid >> 24);
	out[1] = (uint8_t)(tid >> 16);
	out[2] = (uint8_t)(tid >> 8);
	out[3] = (uint8_t)tid;
	SHA256(key, klen, out + 4);
	return 36;
}

static void pairs_add(pairs *ps, const void *k, size_t kl, const void *v,
                      size_t vl)
{
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 256;
		ps->p = realloc(ps->p, ps->cap * sizeof *ps->p);
		assert_non_null(ps->p);
	}
	pair *p = &ps->p[ps->n++];
	p->k = te_malloc(kl);
	p->v = te_malloc(vl);
	memcpy(p->k, k, kl);
	memcpy(p->v, v, vl);
	p->kl = kl;
	p->vl = vl;
}

static void pairs_free(pairs *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->p[i].k);
		free(ps->p[i].v);
	}
	free(ps->p);
	memset(ps, 0, sizeof *ps);
}

/* LMDB's default order: memcmp, then the shorter first. */
static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

static int pair_cmp(const void *x, const void *y)
{
	const pair *a = x, *b = y;
	int c = bytes_cmp(a->k, a->kl, b->k, b->kl);
	return c ? c : bytes_cmp(a->v, a->vl, b->v, b->vl);
}

static uint32_t tid_of(MDB_txn *txn, MDB_dbi meta, const char *table)
{
	char name[128];
	snprintf(name, sizeof name, "table/%s", table);
	MDB_val k = {strlen(name), name}, v;
	assert_int_equal(mdb_get(txn, meta, &k, &v), 0);
	assert_int_equal(v.mv_size, 4);
	const uint8_t *p = v.mv_data;
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

/* The value of `field` in a msgpack map if it is a str or a bin. */
static int ref_of(const void *val, size_t vlen, const char *field,
                  const char **p, size_t *n)
{
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int found = 0;
	if (msgpack_unpack_next(&u, val, vlen, NULL) ==
	            MSGPACK_UNPACK_SUCCESS &&
	    u.data.type == MSGPACK_OBJECT_MAP) {
		msgpack_object_map *m = &u.data.via.map;
		for (uint32_t i = 0; i < m->size; i++) {
			msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
			if (k->type != MSGPACK_OBJECT_STR ||
			    k->via.str.size != strlen(field) ||
			    memcmp(k->via.str.ptr, field, k->via.str.size))
				continue;
			if (v->type == MSGPACK_OBJECT_STR) {
				*p = v->via.str.ptr;
				*n = v->via.str.size;
				found = 1;
			} else if (v->type == MSGPACK_OBJECT_BIN) {
				*p = v->via.bin.ptr;
				*n = v->via.bin.size;
				found = 1;
			}
		}
	}
	/* *p points into val, not into u */
	msgpack_unpacked_destroy(&u);
	return found;
}

/* With the database closed, read its LMDB environment directly and assert
 * that `_refs` holds exactly one pair per (referenced key, referring key)
 * that the tables' records imply. Returns the number of pairs. */
size_t hg_assert_refs_exact(const char *dir, const hg_refspec *spec,
                            size_t nspec)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta, refs;
	pairs want = {0}, got = {0};
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 1024), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644),
	                 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "_meta", 0, &meta), 0);
	assert_int_equal(mdb_dbi_open(txn, "_refs", MDB_DUPSORT, &refs), 0);

	for (size_t s = 0; s < nspec; s++) {
		char dname[128];
		MDB_dbi t;
		MDB_cursor *c;
		MDB_val k, v;
		uint32_t tid = tid_of(txn, meta, spec[s].table);
		uint32_t ttid = tid_of(txn, meta, spec[s].target);
		snprintf(dname, sizeof dname, "t/%s", spec[s].table);
		assert_int_equal(mdb_dbi_open(txn, dname, 0, &t), 0);
		assert_int_equal(mdb_cursor_open(txn, t, &c), 0);
		while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
			const char *rp = NULL;
			size_t rn = 0;
			uint8_t a[LB_KEY_MAX + 4], bk[LB_KEY_MAX + 4];
			/* a value is its writer (8 bytes), then the record */
			assert_true(v.mv_size >= 8);
			if (!ref_of((const uint8_t *)v.mv_data + 8,
			            v.mv_size - 8, spec[s].field, &rp, &rn) ||
			    rn == 0 || rn > LB_KEY_MAX)
				continue;
			size_t al = ikey(a, ttid, rp, rn);
			size_t bl = ikey(bk, tid, k.mv_data, k.mv_size);
			pairs_add(&want, a, al, bk, bl);
		}
		mdb_cursor_close(c);
	}
	qsort(want.p, want.n, sizeof *want.p, pair_cmp);
	/* two fields naming one key make one pair */
	size_t u = 0;
	for (size_t i = 0; i < want.n; i++) {
		if (u && pair_cmp(&want.p[u - 1], &want.p[i]) == 0) {
			free(want.p[i].k);
			free(want.p[i].v);
			continue;
		}
		want.p[u++] = want.p[i];
	}
	want.n = u;

	MDB_cursor *c;
	MDB_val k, v;
	assert_int_equal(mdb_cursor_open(txn, refs, &c), 0);
	while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
		pairs_add(&got, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	mdb_env_close(env);

	if (got.n != want.n)
		print_error("_refs holds %zu pairs, the tables imply %zu\n",
		            got.n, want.n);
	assert_int_equal(got.n, want.n);
	for (size_t i = 0; i < got.n; i++) {
		if (pair_cmp(&got.p[i], &want.p[i]) != 0)
			print_error("_refs pair %zu differs\n", i);
		assert_int_equal(pair_cmp(&got.p[i], &want.p[i]), 0);
	}
	size_t n = got.n;
	pairs_free(&want);
	pairs_free(&got);
	return n;
}

const hg_refspec hg_refs[2] = {
        {HG_WITNESSES, "hearing_id", HG_HEARINGS},
        {HG_DOCUMENTS, "hearing_id", HG_HEARINGS},
};

void *hg_meta_get(const char *dir, const char *name, size_t *len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi meta;
	void *out = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 1024), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644),
	                 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "_meta", 0, &meta), 0);
	MDB_val k = {strlen(name), (void *)name}, v;
	if (mdb_get(txn, meta, &k, &v) == 0) {
		out = te_malloc(v.mv_size);
		memcpy(out, v.mv_data, v.mv_size);
		*len = v.mv_size;
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return out;
}
