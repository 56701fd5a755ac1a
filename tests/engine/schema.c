/* SPDX-License-Identifier: MIT */
/*
 * Schemas: lb_table_create with a schema (logged as a TABLE record and kept
 * in `_meta` byte for byte), lb_tables reporting it, schemas surviving close
 * and reopen with validation still enforced, bad schemas refused with
 * LB_EINVAL and a message naming the problem, and the rules a schema
 * imposes: values are msgpack maps (opaque tables take any bytes), each
 * type accepts exactly its msgpack types, max_len counts characters of a
 * str, bytes of a bin and elements of an array or map, 256 fields work.
 */
#define _GNU_SOURCE
#include "_common.h"
#include "_hearings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FX(state) ((te_fx *)*(state))

static int setup_hg(void **state)
{
	int rc = te_setup(state);
	if (rc == 0)
		hg_create(FX(state)->db);
	return rc;
}

/* The encoding of FORMAT.md §6, built independently with msgpack-c. */
static void encode_schema(hg_val *v, const lb_schema *s)
{
	hg_reset(v);
	assert_int_equal(msgpack_pack_array(&v->pk, 5), 0);
	assert_int_equal(msgpack_pack_uint8(&v->pk, 2), 0);
	assert_int_equal(msgpack_pack_uint8(&v->pk, s ? 1 : 0), 0);
	if (s && s->closed)
		assert_int_equal(msgpack_pack_true(&v->pk), 0);
	else
		assert_int_equal(msgpack_pack_false(&v->pk), 0);
	assert_int_equal(msgpack_pack_array(&v->pk, s ? s->nfields : 0), 0);
	for (size_t i = 0; s && i < s->nfields; i++) {
		const lb_field *f = &s->fields[i];
		assert_int_equal(msgpack_pack_array(&v->pk, 10), 0);
		hg_pstr(v, f->name);
		assert_int_equal(msgpack_pack_uint64(&v->pk, f->type), 0);
		assert_int_equal(msgpack_pack_uint64(&v->pk, f->flags), 0);
		assert_int_equal(msgpack_pack_uint64(&v->pk, f->max_len), 0);
		if (f->ref)
			hg_pstr(v, f->ref);
		else
			assert_int_equal(msgpack_pack_nil(&v->pk), 0);
		if (f->nenum) {
			assert_int_equal(msgpack_pack_array(&v->pk, f->nenum),
			                 0);
			for (size_t j = 0; j < f->nenum; j++)
				if (f->type == LB_INT)
					assert_int_equal(
					        msgpack_pack_int64(
					                &v->pk,
					                strtoll(f->enum_values
					                                [j],
					                        NULL, 10)),
					        0);
				else
					hg_pstr(v, f->enum_values[j]);
		} else {
			assert_int_equal(msgpack_pack_nil(&v->pk), 0);
		}
		if (f->pattern)
			hg_pstr(v, f->pattern);
		else
			assert_int_equal(msgpack_pack_nil(&v->pk), 0);
		assert_int_equal(
		        msgpack_pack_uint64(&v->pk, (uint64_t)f->format), 0);
		if (f->has_min_max & LB_HAS_MIN)
			assert_int_equal(msgpack_pack_double(&v->pk, f->min),
			                 0);
		else
			assert_int_equal(msgpack_pack_nil(&v->pk), 0);
		if (f->has_min_max & LB_HAS_MAX)
			assert_int_equal(msgpack_pack_double(&v->pk, f->max),
			                 0);
		else
			assert_int_equal(msgpack_pack_nil(&v->pk), 0);
	}
	if (s && s->key_field)
		hg_pstr(v, s->key_field);
	else
		assert_int_equal(msgpack_pack_nil(&v->pk), 0);
}

/* A schema with every rule (ids of the form AB-123, a chamber from a list
 * or nil, dates, a congress between 80 and 200 from a list, a score). */
static const char *const rules_chambers[] = {"House", "Senate", "Joint"};
static const char *const rules_congresses[] = {"117", "118", "119"};
static const lb_field rules_fields[] = {
        {"id", LB_STR, LB_REQUIRED, 16, NULL, NULL, 0, "[A-Z]{2}-[0-9]+"},
        {"chamber", LB_STR, LB_NULLABLE, 0, NULL, rules_chambers, 3},
        {"date", LB_STR, 0, 0, NULL, NULL, 0, NULL, LB_FMT_DATE},
        {"at", LB_STR, LB_NULLABLE, 0, NULL, NULL, 0, NULL, LB_FMT_DATETIME},
        {"congress", LB_INT, 0, 0, NULL, rules_congresses, 3, NULL, 0, 80, 200,
         LB_HAS_MIN | LB_HAS_MAX},
        {"score", LB_FLOAT, 0, 0, NULL, NULL, 0, NULL, 0, -1.5, 0, LB_HAS_MIN},
};
static const lb_schema rules_schema = {rules_fields, 6, 1, "id"};

static void test_engine_schema__create_is_logged(void **state)
{
	te_fx *fx = FX(state);
	static const char *const names[] = {HG_HEARINGS, HG_WITNESSES,
	                                    HG_DOCUMENTS};
	const lb_schema *schemas[] = {&hg_hearing_schema, &hg_witness_schema,
	                              &hg_document_schema};
	hg_val v;
	hg_init(&v);
	for (int i = 0; i < 3; i++) {
		te_recs rs;
		memset(&rs, 0, sizeof rs);
		te_changes(fx->db, (uint64_t)i + 1, &rs);
		assert_int_equal(rs.n, 1);
		encode_schema(&v, schemas[i]);
		te_assert_rec(&rs.v[0], LB_OP_TABLE, names[i], names[i],
		              strlen(names[i]), NULL, 0, hg_data(&v),
		              hg_len(&v));
		te_recs_free(&rs);
	}
	lb_close(fx->db);
	fx->db = NULL;
	/* _meta holds the same bytes, and the table ids in creation order */
	for (int i = 0; i < 3; i++) {
		char name[80];
		size_t n = 0;
		snprintf(name, sizeof name, "schema/%s", names[i]);
		void *p = hg_meta_get(fx->dir, name, &n);
		assert_non_null(p);
		encode_schema(&v, schemas[i]);
		assert_int_equal(n, hg_len(&v));
		assert_memory_equal(p, hg_data(&v), n);
		free(p);
		snprintf(name, sizeof name, "table/%s", names[i]);
		p = hg_meta_get(fx->dir, name, &n);
		assert_non_null(p);
		assert_int_equal(n, 4);
		uint8_t tid[4] = {0, 0, 0, (uint8_t)(i + 1)};
		assert_memory_equal(p, tid, 4);
		free(p);
	}
	hg_free(&v);
}

/* What lb_tables reported, copied. */
typedef struct seen_table {
	char name[LB_TABLE_NAME_MAX + 1];
	int has_schema, closed;
	size_t nfields;
	lb_field fields[8];
	char names[8][32], refs[8][32], patterns[8][64], enums[8][4][32];
	const char *enum_ptrs[8][4];
	char key_field[32];
	int has_key_field;
	uint64_t records;
} seen_table;

typedef struct seen {
	seen_table t[8];
	size_t n;
} seen;

static int collect(void *ctx, const char *name, const lb_schema *s,
                   uint64_t records)
{
	seen *sn = ctx;
	assert_true(sn->n < 8);
	seen_table *t = &sn->t[sn->n++];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->records = records;
	if (!s)
		return 0;
	t->has_schema = 1;
	t->closed = s->closed;
	t->nfields = s->nfields;
	if (s->key_field) {
		t->has_key_field = 1;
		snprintf(t->key_field, sizeof t->key_field, "%s", s->key_field);
	}
	assert_true(s->nfields <= 8);
	for (size_t i = 0; i < s->nfields; i++) {
		t->fields[i] = s->fields[i];
		snprintf(t->names[i], 32, "%s", s->fields[i].name);
		t->fields[i].name = t->names[i];
		if (s->fields[i].ref) {
			snprintf(t->refs[i], 32, "%s", s->fields[i].ref);
			t->fields[i].ref = t->refs[i];
		}
		if (s->fields[i].pattern) {
			snprintf(t->patterns[i], 64, "%s",
			         s->fields[i].pattern);
			t->fields[i].pattern = t->patterns[i];
		}
		assert_true(s->fields[i].nenum <= 4);
		for (size_t j = 0; j < s->fields[i].nenum; j++) {
			snprintf(t->enums[i][j], 32, "%s",
			         s->fields[i].enum_values[j]);
			t->enum_ptrs[i][j] = t->enums[i][j];
		}
		if (s->fields[i].enum_values)
			t->fields[i].enum_values = t->enum_ptrs[i];
	}
	return 0;
}

static void assert_seen_schema(const seen *sn, const char *name,
                               const lb_schema *s, uint64_t records)
{
	const seen_table *t = NULL;
	for (size_t i = 0; i < sn->n; i++)
		if (strcmp(sn->t[i].name, name) == 0)
			t = &sn->t[i];
	assert_non_null(t);
	assert_int_equal(t->records, records);
	assert_int_equal(t->has_schema, s != NULL);
	if (!s)
		return;
	assert_int_equal(!!t->closed, !!s->closed);
	assert_int_equal(t->nfields, s->nfields);
	assert_int_equal(t->has_key_field, s->key_field != NULL);
	if (s->key_field)
		assert_string_equal(t->key_field, s->key_field);
	for (size_t i = 0; i < s->nfields; i++) {
		const lb_field *a = &t->fields[i], *b = &s->fields[i];
		assert_string_equal(a->name, b->name);
		assert_int_equal(a->type, b->type);
		assert_int_equal(a->flags, b->flags);
		assert_int_equal(a->max_len, b->max_len);
		if (b->ref)
			assert_string_equal(a->ref, b->ref);
		else
			assert_null(a->ref);
		assert_int_equal(a->nenum, b->nenum);
		assert_int_equal(a->enum_values != NULL, b->nenum != 0);
		for (size_t j = 0; j < b->nenum; j++)
			assert_string_equal(a->enum_values[j],
			                    b->enum_values[j]);
		if (b->pattern)
			assert_string_equal(a->pattern, b->pattern);
		else
			assert_null(a->pattern);
		assert_int_equal(a->format, b->format);
		assert_int_equal(a->has_min_max, b->has_min_max);
		assert_true(a->min ==
		            ((b->has_min_max & LB_HAS_MIN) ? b->min : 0));
		assert_true(a->max ==
		            ((b->has_min_max & LB_HAS_MAX) ? b->max : 0));
	}
}

static void assert_hg_tables(lb_db *db, uint64_t nh, uint64_t nw)
{
	seen sn;
	memset(&sn, 0, sizeof sn);
	te_rc(0, lb_tables(db, collect, &sn));
	assert_int_equal(sn.n, 4);
	/* in name order */
	assert_string_equal(sn.t[0].name, HG_DOCUMENTS);
	assert_string_equal(sn.t[1].name, HG_HEARINGS);
	assert_string_equal(sn.t[2].name, "raw");
	assert_string_equal(sn.t[3].name, HG_WITNESSES);
	assert_seen_schema(&sn, HG_HEARINGS, &hg_hearing_schema, nh);
	assert_seen_schema(&sn, HG_WITNESSES, &hg_witness_schema, nw);
	assert_seen_schema(&sn, HG_DOCUMENTS, &hg_document_schema, 0);
	assert_seen_schema(&sn, "raw", NULL, 1);
}

static void test_engine_schema__survives_reopen(void **state)
{
	te_fx *fx = FX(state);
	te_rc(0, lb_table_create(fx->db, "raw", NULL));
	lb_batch *b = hg_begin(fx->db);
	te_rc(0, hg_put_hearing(b, "h1"));
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	te_rc(0, hg_put_raw(b, "raw", "r", "\xc1", 1));
	hg_commit_ok(b);
	assert_hg_tables(fx->db, 1, 1);

	for (int round = 0; round < 2; round++) {
		lb_close(fx->db);
		fx->db = te_open(fx->dir, LB_NOSYNC);
		assert_hg_tables(fx->db, 1, 1);

		hg_val v;
		hg_init(&v);
		lb_result r;
		b = hg_begin(fx->db);
		/* FORMAT */
		hg_hearing_but(&v, "title", 0);
		hg_refused(hg_putv(b, HG_HEARINGS, "h2", &v), "title");
		hg_hearing_but(&v, NULL, 1);
		hg_kint(&v, "extra", 1);
		hg_refused(hg_putv(b, HG_HEARINGS, "h3", &v), "extra");
		hg_refused(hg_put_raw(b, HG_WITNESSES, "w9", "x", 1), "map");
		hg_commit_rejected(fx->db, b, &r);
		assert_int_equal(r.nissues_total, 3);
		lb_result_free(&r);
		/* FOREIGN_KEY, both ways */
		b = hg_begin(fx->db);
		te_rc(0, hg_put_witness(b, "w2", "nope"));
		te_rc(0, hg_del(b, HG_HEARINGS, "h1"));
		hg_commit_rejected(fx->db, b, &r);
		assert_int_equal(r.nissues_total, 2);
		hg_assert_issue(&r.issues[0], LB_ISSUE_FOREIGN_KEY,
		                HG_WITNESSES, "w2", "hearing_id");
		hg_assert_issue(&r.issues[1], LB_ISSUE_FOREIGN_KEY, HG_HEARINGS,
		                "h1", NULL);
		hg_assert_contains(r.issues[1].message, "witnesses 'w1'");
		lb_result_free(&r);
		/* opaque still opaque; valid records still go in */
		b = hg_begin(fx->db);
		te_rc(0, hg_put_raw(b, "raw", "r", "\xc1", 1));
		te_rc(0, hg_put_witness(b, "w1", "h1"));
		hg_commit_ok(b);
		hg_free(&v);
	}
}

static void test_engine_schema__copied_at_create(void **state)
{
	lb_db *db = FX(state)->db;
	char name0[8] = "a", name1[8] = "b", ref[16] = "nosuchtable";
	lb_field f[2] = {{name0, LB_INT, LB_REQUIRED, 0, NULL},
	                 {name1, LB_STR, 0, 3, NULL}};
	lb_schema s = {f, 2, 1};
	te_rc(0, lb_table_create(db, "copy", &s));
	/* the caller's memory changes; the table does not */
	strcpy(name0, "zz");
	strcpy(name1, "yy");
	f[0].type = LB_STR;
	f[1].max_len = 0;
	f[1].ref = ref;
	s.closed = 0;
	static const lb_field orig_fields[] = {
	        {"a", LB_INT, LB_REQUIRED, 0, NULL}, {"b", LB_STR, 0, 3, NULL}};
	lb_schema orig = {orig_fields, 2, 1};
	seen sn;
	memset(&sn, 0, sizeof sn);
	te_rc(0, lb_tables(db, collect, &sn));
	assert_seen_schema(&sn, "copy", &orig, 0);
	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);
	hg_map(&v, 2);
	hg_kint(&v, "a", 1);
	hg_kstr(&v, "b", "abc");
	te_rc(0, hg_putv(b, "copy", "ok", &v));
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kint(&v, "a", 1);
	hg_kstr(&v, "b", "abcd");
	hg_refused(hg_putv(b, "copy", "long", &v), "'b'");
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kstr(&v, "zz", "x");
	hg_refused(hg_putv(b, "copy", "renamed", &v), "'a'");
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 3);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, "copy", "long", "b");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, "copy", "renamed", "zz");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FORMAT, "copy", "renamed", "a");
	lb_result_free(&r);
	hg_free(&v);
}

/* Replay from empty recreates every table with its schema; the replica
 * enforces them, and its `_refs` (rebuilt by replay, not copied) is exact,
 * also when the replay stops at an earlier batch. */
static void test_engine_schema__replay_recreates(void **state)
{
	te_fx *fx = FX(state);
	lb_db *db = fx->db;
	lb_batch *b = hg_begin(db);
	te_rc(0, hg_put_hearing(b, "h1"));
	te_rc(0, hg_put_hearing(b, "h2"));
	te_rc(0, hg_put_hearing(b, "h3"));
	te_rc(0, hg_put_witness(b, "w1", "h1"));
	te_rc(0, hg_put_witness(b, "w2", "h2"));
	te_rc(0, hg_put_document(b, "d1", "h1"));
	hg_commit_ok(b);
	uint64_t mid = te_last(db);
	b = hg_begin(db);
	te_rc(0, hg_put_witness(b, "w1", "h3"));
	te_rc(0, hg_del(b, HG_WITNESSES, "w2"));
	te_rc(0, hg_del(b, HG_HEARINGS, "h2"));
	te_rc(0, hg_put_document(b, "d2", "h3"));
	hg_commit_ok(b);

	char *parent = th_tmpdir();
	char *full = th_path(parent, "full"), *half = th_path(parent, "half");
	lb_result r;
	te_rc(0, lb_replay(db, full, 0, NULL, &r));
	lb_result_free(&r);
	te_rc(0, lb_replay(db, half, mid, NULL, &r));
	lb_result_free(&r);

	lb_db *rep = te_open(full, LB_NOSYNC);
	seen sn;
	memset(&sn, 0, sizeof sn);
	te_rc(0, lb_tables(rep, collect, &sn));
	assert_int_equal(sn.n, 3);
	assert_seen_schema(&sn, HG_HEARINGS, &hg_hearing_schema, 2);
	assert_seen_schema(&sn, HG_WITNESSES, &hg_witness_schema, 1);
	assert_seen_schema(&sn, HG_DOCUMENTS, &hg_document_schema, 2);
	b = hg_begin(rep);
	te_rc(0, hg_del(b, HG_HEARINGS, "h3"));
	hg_refused(hg_put_raw(b, HG_HEARINGS, "h9", "\x80", 1), "congress");
	hg_commit_rejected(rep, b, &r);
	/* six FORMAT issues at op time, and the delete of h3, still
	 * referenced, at commit */
	assert_int_equal(r.nissues_total, 7);
	lb_result_free(&r);
	b = hg_begin(rep);
	te_rc(0, hg_del(b, HG_HEARINGS, "h3"));
	hg_commit_rejected(rep, b, &r);
	assert_int_equal(r.nissues_total, 1);
	hg_assert_contains(r.issues[0].message, "still referenced");
	lb_result_free(&r);
	lb_close(rep);

	assert_int_equal(hg_assert_refs_exact(full, hg_refs, 2), 3);
	assert_int_equal(hg_assert_refs_exact(half, hg_refs, 2), 3);
	lb_close(db);
	fx->db = NULL;
	assert_int_equal(hg_assert_refs_exact(fx->dir, hg_refs, 2), 3);
	th_rmrf(parent);
	free(full);
	free(half);
	free(parent);
}

/* A bad schema: LB_EINVAL, a message naming the problem, nothing written. */
static void refused(lb_db *db, const lb_field *f, size_t n, const char *want)
{
	uint64_t last = te_last(db);
	lb_schema s = {f, n, 1};
	int rc = lb_table_create(db, "bad", &s);
	if (rc != LB_EINVAL || !strstr(lb_errmsg(), want))
		print_error("schema refused with %d: \"%s\"; wanted "
		            "LB_EINVAL and \"%s\"\n",
		            rc, lb_errmsg(), want);
	te_rc(LB_EINVAL, rc);
	hg_assert_contains(lb_errmsg(), want);
	assert_int_equal(te_last(db), last);
}

static void test_engine_schema__bad_schemas_refused(void **state)
{
	lb_db *db = FX(state)->db;
	uint64_t last = te_last(db);
	lb_field f[2];

	f[0] = (lb_field){"t", (lb_type)9, 0, 0, NULL};
	refused(db, f, 1, "unknown type 9");
	f[0] = (lb_field){"t", (lb_type)-1, 0, 0, NULL};
	refused(db, f, 1, "unknown type");
	f[0] = (lb_field){"dup", LB_STR, 0, 0, NULL};
	f[1] = (lb_field){"dup", LB_INT, 0, 0, NULL};
	refused(db, f, 2, "'dup': same name");
	f[0] = (lb_field){"", LB_STR, 0, 0, NULL};
	refused(db, f, 1, "empty name");
	f[0] = (lb_field){NULL, LB_STR, 0, 0, NULL};
	refused(db, f, 1, "no name");
	char longname[257];
	memset(longname, 'n', 256);
	longname[256] = 0;
	f[0] = (lb_field){longname, LB_STR, 0, 0, NULL};
	refused(db, f, 1, "over 255 bytes");
	f[0] = (lb_field){"\xff", LB_STR, 0, 0, NULL};
	refused(db, f, 1, "UTF-8");
	f[0] = (lb_field){"x", LB_STR, 4, 0, NULL};
	refused(db, f, 1, "unknown flags 0x4");
	/* rules (every refusal is in tests/wal/schema.c) */
	static const char *const e2[] = {"1", "2"};
	f[0] = (lb_field){"x", LB_FLOAT, 0, 0, NULL, e2, 2};
	refused(db, f, 1, "field 0 'x': an enum applies to str and int");
	f[0] = (lb_field){"x", LB_STR, 0, 0, NULL, NULL, 0, "a)"};
	refused(db, f, 1, "field 0 'x': pattern 'a)': a ')' without its '('");
	f[0] = (lb_field){"x", LB_STR, 0, 0, NULL, NULL, 0, "a{1"};
	refused(db, f, 1, "field 0 'x': pattern 'a{1': ");
	f[0] = (lb_field){"x", LB_INT, 0, 0, NULL, NULL, 0, NULL, LB_FMT_DATE};
	refused(db, f, 1, "a format applies to str fields only");
	f[0] = (lb_field){"x", LB_INT, 0, 0, NULL, NULL,
	                  0,   NULL,   0, 5, 4,    LB_HAS_MIN | LB_HAS_MAX};
	refused(db, f, 1, "min 5 is greater than max 4");
	f[0] = (lb_field){"x", LB_STR, 0, 0, NULL};
	{
		lb_schema ks = {f, 1, 0, "y"};
		uint64_t l0 = te_last(db);
		te_rc(LB_EINVAL, lb_table_create(db, "bad", &ks));
		hg_assert_contains(lb_errmsg(), "key_field 'y' is not a field");
		ks.key_field = "x";
		f[0].type = LB_MAP;
		te_rc(LB_EINVAL, lb_table_create(db, "bad", &ks));
		hg_assert_contains(lb_errmsg(), "key_field 'x': a key field");
		assert_int_equal(te_last(db), l0);
	}
	f[0] = (lb_field){"x", LB_STR, 0, 0, "nosuch"};
	refused(db, f, 1, "missing table nosuch");
	f[0] = (lb_field){"x", LB_STR, 0, 0, "no/slash"};
	refused(db, f, 1, "not a table name");
	f[0] = (lb_field){"x", LB_STR, 0, 0, ""};
	refused(db, f, 1, "not a table name");
	refused(db, NULL, 3, "no field array");
	lb_field *many = te_malloc(257 * sizeof *many);
	char(*names)[16] = te_malloc(257 * sizeof *names);
	for (int i = 0; i < 257; i++) {
		snprintf(names[i], sizeof names[i], "f%03d", i);
		many[i] = (lb_field){names[i], LB_INT, 0, 0, NULL};
	}
	refused(db, many, 257, "257 fields");
	free(many);
	free(names);

	/* nothing of it exists */
	seen sn;
	memset(&sn, 0, sizeof sn);
	te_rc(0, lb_tables(db, collect, &sn));
	assert_int_equal(sn.n, 0);
	assert_int_equal(te_last(db), last);
	/* the name is free, and the next table gets the next batch id */
	f[0] = (lb_field){"x", LB_STR, 0, 0, NULL};
	lb_schema s = {f, 1, 1};
	te_rc(0, lb_table_create(db, "bad", &s));
	assert_int_equal(te_last(db), last + 1);
}

static void test_engine_schema__refs_to_tables(void **state)
{
	lb_db *db = FX(state)->db;
	static const lb_field a[] = {{"b_id", LB_STR, 0, 0, "b"}};
	static const lb_field tree[] = {{"parent", LB_BIN, 0, 0, "tree"}};
	lb_schema sa = {a, 1, 0}, st = {tree, 1, 0};
	/* a table must exist before a ref names it */
	te_rc(LB_EINVAL, lb_table_create(db, "a", &sa));
	hg_assert_contains(lb_errmsg(), "missing table b");
	te_rc(0, lb_table_create(db, "b", NULL));
	te_rc(0, lb_table_create(db, "a", &sa));
	/* a table may name itself */
	te_rc(0, lb_table_create(db, "tree", &st));
	/* existing tables are LB_EEXIST, whatever the schema */
	te_rc(LB_EEXIST, lb_table_create(db, "a", NULL));
	te_rc(LB_EEXIST, lb_table_create(db, "b", &st));

	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);
	hg_map(&v, 1);
	hg_kbin(&v, "parent", "n1", 2);
	te_rc(0, hg_putv(b, "tree", "n2", &v));
	te_rc(0, hg_put_raw(b, "tree", "n1", "\x80", 1));
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kstr(&v, "parent", "n1"); /* a BIN ref takes bin only */
	hg_refused(hg_putv(b, "tree", "n3", &v), "parent");
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 1);
	lb_result_free(&r);
	b = hg_begin(db);
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kbin(&v, "parent", "n1", 2);
	te_rc(0, hg_putv(b, "tree", "n2", &v));
	te_rc(0, hg_put_raw(b, "tree", "n1", "\x80", 1));
	hg_commit_ok(b);
	b = hg_begin(db);
	te_rc(0, hg_del(b, "tree", "n1"));
	hg_commit_rejected(db, b, &r);
	hg_assert_contains(r.issues[0].message, "tree 'n2'");
	lb_result_free(&r);
	hg_free(&v);
}

static void test_engine_schema__max_fields(void **state)
{
	lb_db *db = FX(state)->db;
	enum { N = LB_SCHEMA_FIELDS_MAX };
	lb_field *f = te_malloc(N * sizeof *f);
	char(*names)[16] = te_malloc(N * sizeof *names);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "f%03d", i);
		f[i] = (lb_field){names[i], LB_INT, LB_REQUIRED, 0, NULL};
	}
	lb_schema s = {f, N, 1};
	te_rc(0, lb_table_create(db, "wide", &s));

	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);
	/* all fields, in reverse order */
	hg_map(&v, N);
	for (int i = N - 1; i >= 0; i--)
		hg_kint(&v, names[i], i);
	te_rc(0, hg_putv(b, "wide", "all", &v));
	/* fields 0, 64, 200 and 255 missing: bits in each word */
	hg_reset(&v);
	hg_map(&v, N - 4);
	for (int i = 0; i < N; i++)
		if (i != 0 && i != 64 && i != 200 && i != 255)
			hg_kint(&v, names[i], i);
	hg_refused(hg_putv(b, "wide", "some", &v), "f255");
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 4);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, "wide", "some", "f000");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, "wide", "some", "f064");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FORMAT, "wide", "some", "f200");
	hg_assert_issue(&r.issues[3], LB_ISSUE_FORMAT, "wide", "some", "f255");
	lb_result_free(&r);
	b = hg_begin(db);
	hg_reset(&v);
	hg_map(&v, N);
	for (int i = 0; i < N; i++)
		hg_kint(&v, names[i], -i);
	te_rc(0, hg_putv(b, "wide", "all", &v));
	hg_commit_ok(b);
	te_assert_get(db, "wide", "all", 3, hg_data(&v), hg_len(&v));
	hg_free(&v);
	free(f);
	free(names);
}

static void test_engine_schema__values_are_maps(void **state)
{
	lb_db *db = FX(state)->db;
	te_rc(0, lb_table_create(db, "raw", NULL));
	lb_schema open0 = {NULL, 0, 0}, closed0 = {NULL, 0, 1};
	te_rc(0, lb_table_create(db, "anymap", &open0));
	te_rc(0, lb_table_create(db, "emptymap", &closed0));

	/* an opaque table takes any bytes, kept exactly */
	uint64_t st = th_seed(7);
	uint8_t rnd[1000];
	te_fill(&st, rnd, sizeof rnd);
	static const struct {
		const char *k, *v;
		size_t n;
	} raw[] = {{"empty", "", 0},
	           {"c1", "\xc1", 1},
	           {"text", "plain text", 10},
	           {"map", "\x81\xa1k\x01", 4}};
	lb_batch *b = hg_begin(db);
	for (size_t i = 0; i < 4; i++)
		te_rc(0, hg_put_raw(b, "raw", raw[i].k, raw[i].v, raw[i].n));
	te_rc(0, hg_put_raw(b, "raw", "rnd", rnd, sizeof rnd));
	/* a schema table with no fields takes maps only */
	te_rc(0, hg_put_raw(b, "anymap", "m0", "\x80", 1));
	te_rc(0, hg_put_raw(b, "anymap", "m1", "\x81\xa1k\x01", 4));
	te_rc(0, hg_put_raw(b, "emptymap", "m0", "\x80", 1));
	hg_commit_ok(b);
	for (size_t i = 0; i < 4; i++)
		te_assert_get(db, "raw", raw[i].k, strlen(raw[i].k), raw[i].v,
		              raw[i].n);
	te_assert_get(db, "raw", "rnd", 3, rnd, sizeof rnd);

	b = hg_begin(db);
	hg_refused(hg_put_raw(b, "anymap", "e", "", 0), "not a msgpack map");
	hg_refused(hg_put_raw(b, "anymap", "a", "\x90", 1),
	           "not a msgpack map");
	hg_refused(hg_put_raw(b, "anymap", "r", rnd, sizeof rnd), "anymap");
	hg_refused(hg_put_raw(b, "emptymap", "m1", "\x81\xa1k\x01", 4),
	           "unknown field 'k'");
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 4);
	hg_assert_issue(&r.issues[3], LB_ISSUE_FORMAT, "emptymap", "m1", "k");
	lb_result_free(&r);
}

enum {
	S_NIL,
	S_TRUE,
	S_UINT,
	S_NINT,
	S_F64,
	S_F32,
	S_STR,
	S_BIN,
	S_ARRAY,
	S_MAP,
	S_EXT,
	S_N
};

static void pack_sample(hg_val *v, int s)
{
	msgpack_packer *pk = &v->pk;
	switch (s) {
	case S_NIL:
		assert_int_equal(msgpack_pack_nil(pk), 0);
		break;
	case S_TRUE:
		assert_int_equal(msgpack_pack_true(pk), 0);
		break;
	case S_UINT:
		assert_int_equal(msgpack_pack_uint64(pk, 1ull << 40), 0);
		break;
	case S_NINT:
		assert_int_equal(msgpack_pack_int64(pk, -5), 0);
		break;
	case S_F64:
		assert_int_equal(msgpack_pack_double(pk, 1.5), 0);
		break;
	case S_F32:
		assert_int_equal(msgpack_pack_float(pk, 2.5f), 0);
		break;
	case S_STR:
		hg_pstr(v, "str");
		break;
	case S_BIN:
		assert_int_equal(msgpack_pack_bin(pk, 2), 0);
		assert_int_equal(msgpack_pack_bin_body(pk, "\x00\xff", 2), 0);
		break;
	case S_ARRAY:
		assert_int_equal(msgpack_pack_array(pk, 1), 0);
		assert_int_equal(msgpack_pack_nil(pk), 0);
		break;
	case S_MAP:
		assert_int_equal(msgpack_pack_map(pk, 1), 0);
		hg_pstr(v, "k");
		assert_int_equal(msgpack_pack_int(pk, 1), 0);
		break;
	case S_EXT:
		assert_int_equal(msgpack_pack_ext(pk, 1, 7), 0);
		assert_int_equal(msgpack_pack_ext_body(pk, "x", 1), 0);
		break;
	}
}

static int accepts(lb_type t, int s)
{
	switch (t) {
	case LB_ANY:
		return 1;
	case LB_NIL:
		return s == S_NIL;
	case LB_BOOL:
		return s == S_TRUE;
	case LB_INT:
		return s == S_UINT || s == S_NINT;
	case LB_FLOAT:
		return s == S_F64 || s == S_F32;
	case LB_STR:
		return s == S_STR;
	case LB_BIN:
		return s == S_BIN;
	case LB_ARRAY:
		return s == S_ARRAY;
	case LB_MAP:
		return s == S_MAP;
	}
	return 0;
}

static void test_engine_schema__type_matrix(void **state)
{
	lb_db *db = FX(state)->db;
	static const char *const fname[] = {"any", "nil",   "bool",
	                                    "int", "float", "str",
	                                    "bin", "array", "map"};
	lb_field f[9];
	memset(f, 0, sizeof f);
	for (int t = 0; t < 9; t++) {
		f[t].name = fname[t];
		f[t].type = (lb_type)t;
	}
	lb_schema s = {f, 9, 1};
	te_rc(0, lb_table_create(db, "kinds", &s));

	hg_val v;
	hg_init(&v);
	size_t want = 0;
	lb_batch *b = hg_begin(db);
	for (int t = 0; t < 9; t++) {
		for (int smp = 0; smp < S_N; smp++) {
			char key[32];
			snprintf(key, sizeof key, "%s-%d", fname[t], smp);
			hg_reset(&v);
			hg_map(&v, 1);
			hg_key(&v, fname[t]);
			pack_sample(&v, smp);
			int rc = hg_putv(b, "kinds", key, &v);
			if (accepts((lb_type)t, smp)) {
				te_rc(0, rc);
			} else {
				te_rc(LB_EVALIDATION, rc);
				hg_assert_contains(lb_errmsg(), fname[t]);
				want++;
			}
		}
	}
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, want);
	size_t k = 0;
	for (int t = 0; t < 9; t++)
		for (int smp = 0; smp < S_N; smp++) {
			char key[32];
			if (accepts((lb_type)t, smp))
				continue;
			snprintf(key, sizeof key, "%s-%d", fname[t], smp);
			hg_assert_issue(&r.issues[k], LB_ISSUE_FORMAT, "kinds",
			                key, fname[t]);
			hg_assert_contains(r.issues[k].message, "must be");
			k++;
		}
	lb_result_free(&r);

	/* the accepted ones commit */
	b = hg_begin(db);
	for (int t = 0; t < 9; t++)
		for (int smp = 0; smp < S_N; smp++) {
			if (!accepts((lb_type)t, smp))
				continue;
			hg_reset(&v);
			hg_map(&v, 1);
			hg_key(&v, fname[t]);
			pack_sample(&v, smp);
			te_rc(0, hg_putv(b, "kinds", "k", &v));
		}
	assert_true(hg_commit_ok(b) > 0);
	hg_free(&v);
}

/* A table with one field of each lengthy type, each with a max_len. */
static void make_lengths(lb_db *db)
{
	static const lb_field f[] = {
	        {"s", LB_STR, 0, 5, NULL},     {"b", LB_BIN, 0, 4, NULL},
	        {"a", LB_ARRAY, 0, 2, NULL},   {"m", LB_MAP, 0, 1, NULL},
	        {"any", LB_ANY, 0, 3, NULL},   {"free", LB_STR, 0, 0, NULL},
	        {"bfree", LB_BIN, 0, 0, NULL}, {"anyfree", LB_ANY, 0, 0, NULL},
	};
	lb_schema s = {f, sizeof f / sizeof f[0], 0};
	te_rc(0, lb_table_create(db, "lens", &s));
}

/* Put {field: str} into "lens"; the op's rc. */
static int put_lens_str(lb_batch *b, const char *key, const char *field,
                        const char *s, size_t n)
{
	hg_val v;
	hg_init(&v);
	hg_map(&v, 1);
	hg_kstrn(&v, field, s, n);
	int rc = hg_putv(b, "lens", key, &v);
	hg_free(&v);
	return rc;
}

static void test_engine_schema__max_len_str_counts_chars(void **state)
{
	lb_db *db = FX(state)->db;
	make_lengths(db);
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
	        {"", 1},
	        {"hello", 1},
	        {"h\xc3\xa9llo", 1}, /* 5 chars, 6 bytes */
	        {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xa7\xe3\x81\x99",
	         1}, /* 5 chars, 15 bytes */
	        {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98"
	         "\x80\xf0\x9f\x98\x80",
	         1},           /* 5 chars, 20 bytes */
	        {"hello!", 0}, /* 6 chars */
	        {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xa7\xe3\x81\x99"
	         "a",
	         0}, /* 6 chars */
	        {"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98"
	         "\x80\xf0\x9f\x98\x80\xf0\x9f\x98\x80",
	         0}, /* 6 chars */
	};
	size_t n = sizeof cases / sizeof cases[0], bad = 0;
	lb_batch *b = hg_begin(db);
	for (size_t i = 0; i < n; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%zu", i);
		int rc = put_lens_str(b, key, "s", cases[i].s,
		                      strlen(cases[i].s));
		if (cases[i].ok) {
			te_rc(0, rc);
		} else {
			te_rc(LB_EVALIDATION, rc);
			hg_assert_contains(lb_errmsg(), "6 characters");
			bad++;
		}
	}
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, bad);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, "lens", "k5", "s");
	hg_assert_contains(r.issues[0].message, "max 5");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, "lens", "k6", "s");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FORMAT, "lens", "k7", "s");
	lb_result_free(&r);

	/* the hearing schema's limits are characters too: a 6-character
	 * chamber of 12 bytes fits, a 7-character one does not */
	hg_val v;
	hg_init(&v);
	b = hg_begin(db);
	hg_hearing_but(&v, "chamber", 1);
	hg_kstr(&v, "chamber",
	        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
	        "\xa9");
	te_rc(0, hg_putv(b, HG_HEARINGS, "h1", &v));
	hg_hearing_but(&v, "chamber", 1);
	hg_kstr(&v, "chamber", "Chamber");
	hg_refused(hg_putv(b, HG_HEARINGS, "h2", &v), "chamber");
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 1);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, HG_HEARINGS, "h2",
	                "chamber");
	hg_assert_contains(r.issues[0].message, "7 characters");
	lb_result_free(&r);
	hg_free(&v);
}

static void test_engine_schema__str_not_utf8(void **state)
{
	lb_db *db = FX(state)->db;
	make_lengths(db);
	static const char *const bad[] = {
	        "\xff",             /* never valid */
	        "ab\x80",           /* stray continuation byte */
	        "\xc0\xaf",         /* overlong */
	        "\xed\xa0\x80",     /* surrogate */
	        "\xe6\x97",         /* truncated sequence */
	        "\xf4\x90\x80\x80", /* above U+10FFFF */
	};
	/* a STR field holds UTF-8 with or without a max_len; an ANY field
	 * only decodes a str to count it against its max_len */
	static const char *const fields[] = {"s", "free", "any"};
	size_t n = sizeof bad / sizeof bad[0];
	lb_batch *b = hg_begin(db);
	for (size_t f = 0; f < 3; f++)
		for (size_t i = 0; i < n; i++) {
			char key[16];
			snprintf(key, sizeof key, "%s%zu", fields[f], i);
			hg_refused(put_lens_str(b, key, fields[f], bad[i],
			                        strlen(bad[i])),
			           "UTF-8");
		}
	for (size_t i = 0; i < n; i++)
		te_rc(0, put_lens_str(b, "anyfree", "anyfree", bad[i],
		                      strlen(bad[i])));
	te_rc(0,
	      put_lens_str(b, "ok", "free", "\xe2\x82\xac\xf0\x9f\x98\x80", 7));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 3 * n);
	for (size_t f = 0; f < 3; f++)
		for (size_t i = 0; i < n; i++) {
			char key[16];
			snprintf(key, sizeof key, "%s%zu", fields[f], i);
			hg_assert_issue(&r.issues[f * n + i], LB_ISSUE_FORMAT,
			                "lens", key, fields[f]);
		}
	lb_result_free(&r);
}

static void test_engine_schema__max_len_bin_bytes(void **state)
{
	lb_db *db = FX(state)->db;
	make_lengths(db);
	hg_val v;
	hg_init(&v);
	lb_batch *b = hg_begin(db);
	/* 4 bytes fit; 5 do not, even if they spell 2 UTF-8 characters */
	static const char *const vals[] = {"", "abcd", "\x00\x01\x02\x03",
	                                   "\xe6\x97\xa5\xc3\xa9", "abcde"};
	static const size_t lens[] = {0, 4, 4, 5, 5};
	for (size_t i = 0; i < 5; i++) {
		char key[16];
		snprintf(key, sizeof key, "k%zu", i);
		hg_reset(&v);
		hg_map(&v, 1);
		hg_kbin(&v, "b", vals[i], lens[i]);
		if (lens[i] <= 4)
			te_rc(0, hg_putv(b, "lens", key, &v));
		else
			hg_refused(hg_putv(b, "lens", key, &v), "5 bytes");
	}
	/* a str into a bin field is a type error, not a length one */
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kstr(&v, "b", "ab");
	hg_refused(hg_putv(b, "lens", "k5", &v), "must be bin");
	/* no max_len: any length */
	static char big[100000];
	memset(big, 'x', sizeof big);
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kbin(&v, "bfree", big, sizeof big);
	hg_kstrn(&v, "free", big, sizeof big);
	te_rc(0, hg_putv(b, "lens", "k6", &v));
	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 3);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, "lens", "k3", "b");
	hg_assert_contains(r.issues[0].message, "max 4");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, "lens", "k4", "b");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FORMAT, "lens", "k5", "b");
	lb_result_free(&r);
	hg_free(&v);
}

static void test_engine_schema__max_len_elements(void **state)
{
	lb_db *db = FX(state)->db;
	make_lengths(db);
	hg_val v;
	hg_init(&v);
	char big[300];
	memset(big, 'y', sizeof big);
	lb_batch *b = hg_begin(db);

	/* arrays: elements count, not bytes; nesting counts as one */
	for (uint32_t n = 0; n <= 3; n++) {
		char key[16];
		snprintf(key, sizeof key, "a%u", n);
		hg_reset(&v);
		hg_map(&v, 1);
		hg_key(&v, "a");
		assert_int_equal(msgpack_pack_array(&v.pk, n), 0);
		for (uint32_t i = 0; i < n; i++) {
			assert_int_equal(msgpack_pack_str(&v.pk, sizeof big),
			                 0);
			assert_int_equal(
			        msgpack_pack_str_body(&v.pk, big, sizeof big),
			        0);
		}
		if (n <= 2)
			te_rc(0, hg_putv(b, "lens", key, &v));
		else
			hg_refused(hg_putv(b, "lens", key, &v), "3 elements");
	}
	hg_reset(&v);
	hg_map(&v, 1);
	hg_key(&v, "a");
	assert_int_equal(msgpack_pack_array(&v.pk, 1), 0);
	assert_int_equal(msgpack_pack_array(&v.pk, 5), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(msgpack_pack_int(&v.pk, i), 0);
	te_rc(0, hg_putv(b, "lens", "nested", &v));

	/* maps: entries count */
	for (uint32_t n = 0; n <= 2; n++) {
		char key[16];
		snprintf(key, sizeof key, "m%u", n);
		hg_reset(&v);
		hg_map(&v, 1);
		hg_key(&v, "m");
		hg_map(&v, n);
		for (uint32_t i = 0; i < n; i++) {
			char name[8];
			snprintf(name, sizeof name, "e%u", i);
			hg_kint(&v, name, i);
		}
		if (n <= 1)
			te_rc(0, hg_putv(b, "lens", key, &v));
		else
			hg_refused(hg_putv(b, "lens", key, &v), "2 elements");
	}

	/* ANY with a max_len measures whatever it holds */
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kstr(&v, "any", "abcd");
	hg_refused(hg_putv(b, "lens", "any-str", &v), "4 characters");
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kint(&v, "any", 123456789);
	te_rc(0, hg_putv(b, "lens", "any-int", &v));

	lb_result r;
	hg_commit_rejected(db, b, &r);
	assert_int_equal(r.nissues_total, 3);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, "lens", "a3", "a");
	hg_assert_contains(r.issues[0].message, "max 2");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, "lens", "m2", "m");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FORMAT, "lens", "any-str",
	                "any");
	lb_result_free(&r);
	hg_free(&v);
}

/* A value of the rules table: an id (the key), then what the caller
 * adds (extra entries). */
static void rules_val(hg_val *v, const char *id, uint32_t extra)
{
	hg_reset(v);
	hg_map(v, 1 + extra);
	hg_kstr(v, "id", id);
}

/* Check that the rules table both takes a good value and refuses one
 * breaking each kind of rule, naming the field. */
static void rules_enforced(lb_db *db)
{
	hg_val v;
	lb_result r;
	hg_init(&v);
	lb_batch *b = hg_begin(db);
	rules_val(&v, "HR-1", 6);
	hg_kstr(&v, "chamber", "House");
	hg_kstr(&v, "date", "2024-02-29");
	hg_kstr(&v, "at", "2024-02-29T10:00:00+01:00");
	hg_kint(&v, "congress", 118);
	hg_key(&v, "score");
	assert_int_equal(msgpack_pack_double(&v.pk, -1.5), 0);
	hg_knil(&v, "extra"); /* closed: refused, so the op is */
	hg_refused(hg_putv(b, "rules", "HR-1", &v), "unknown field 'extra'");
	rules_val(&v, "HR-1", 2);
	hg_knil(&v, "chamber");
	hg_knil(&v, "at");
	te_rc(0, hg_putv(b, "rules", "HR-1", &v));
	rules_val(&v, "hr-2", 0);
	hg_refused(hg_putv(b, "rules", "hr-2", &v), "does not match");
	rules_val(&v, "SB-3", 0);
	hg_refused(hg_putv(b, "rules", "SB-4", &v), "the record's key");
	rules_val(&v, "SB-5", 1);
	hg_kstr(&v, "chamber", "Senat");
	hg_refused(hg_putv(b, "rules", "SB-5", &v), "allowed values");
	rules_val(&v, "SB-6", 1);
	hg_kstr(&v, "date", "2023-02-29");
	hg_refused(hg_putv(b, "rules", "SB-6", &v), "not a leap year");
	rules_val(&v, "SB-7", 1);
	hg_kstr(&v, "at", "2024-02-29T10:00:00");
	hg_refused(hg_putv(b, "rules", "SB-7", &v), "no time zone");
	rules_val(&v, "SB-8", 1);
	hg_kint(&v, "congress", 201);
	hg_refused(hg_putv(b, "rules", "SB-8", &v), "above the maximum 200");
	rules_val(&v, "SB-9", 1);
	hg_key(&v, "score");
	assert_int_equal(msgpack_pack_double(&v.pk, -1.75), 0);
	hg_refused(hg_putv(b, "rules", "SB-9", &v), "below the minimum -1.5");
	rules_val(&v, "SB-10", 1);
	hg_knil(&v, "date"); /* not nullable */
	hg_refused(hg_putv(b, "rules", "SB-10", &v), "must be str, not nil");
	hg_commit_rejected(db, b, &r);
	/* congress 201 breaks its enum and its max */
	assert_int_equal(r.nissues_total, 10);
	static const char *const fields[] = {
	        "extra", "id",       "id",       "chamber", "date",
	        "at",    "congress", "congress", "score",   "date"};
	for (size_t i = 0; i < 10; i++)
		assert_string_equal(r.issues[i].field, fields[i]);
	lb_result_free(&r);
	hg_free(&v);
}

/* Rules are logged in the TABLE record and `_meta`, reported by
 * lb_tables, kept across reopen and replay, and enforced by each. */
static void test_engine_schema__rules_logged_and_kept(void **state)
{
	te_fx *fx = FX(state);
	hg_val v;
	hg_init(&v);
	te_rc(0, lb_table_create(fx->db, "rules", &rules_schema));
	te_recs rs;
	memset(&rs, 0, sizeof rs);
	te_changes(fx->db, te_last(fx->db), &rs);
	assert_int_equal(rs.n, 1);
	encode_schema(&v, &rules_schema);
	te_assert_rec(&rs.v[0], LB_OP_TABLE, "rules", "rules", 5, NULL, 0,
	              hg_data(&v), hg_len(&v));
	te_recs_free(&rs);
	seen sn;
	memset(&sn, 0, sizeof sn);
	te_rc(0, lb_tables(fx->db, collect, &sn));
	assert_seen_schema(&sn, "rules", &rules_schema, 0);
	rules_enforced(fx->db);
	lb_close(fx->db);
	fx->db = NULL;
	size_t n = 0;
	void *p = hg_meta_get(fx->dir, "schema/rules", &n);
	assert_non_null(p);
	assert_int_equal(n, hg_len(&v));
	assert_memory_equal(p, hg_data(&v), n);
	free(p);
	fx->db = te_open(fx->dir, LB_NOSYNC);
	memset(&sn, 0, sizeof sn);
	te_rc(0, lb_tables(fx->db, collect, &sn));
	assert_seen_schema(&sn, "rules", &rules_schema, 0);
	rules_enforced(fx->db);
	/* a replay recreates the table with its rules */
	char *parent = th_tmpdir();
	char *full = th_path(parent, "full");
	lb_result r;
	te_rc(0, lb_replay(fx->db, full, 0, NULL, &r));
	lb_result_free(&r);
	lb_db *rep = te_open(full, LB_NOSYNC);
	memset(&sn, 0, sizeof sn);
	te_rc(0, lb_tables(rep, collect, &sn));
	assert_seen_schema(&sn, "rules", &rules_schema, 0);
	rules_enforced(rep);
	lb_close(rep);
	th_rmrf(parent);
	free(full);
	free(parent);
	hg_free(&v);
}

/* Adding rules to a table that holds records (lb_table_alter): the
 * records are held to them; the rules come into force only when all fit,
 * and a rollback of the change takes them away again. */
static void test_engine_schema__rules_by_alter(void **state)
{
	lb_db *db = FX(state)->db;
	static const lb_field plain[] = {{"id", LB_STR, 0, 0, NULL},
	                                 {"n", LB_INT, 0, 0, NULL}};
	static const char *const ns[] = {"1", "2"};
	static const lb_field ruled[] = {
	        {"id", LB_STR, 0, 0, NULL, NULL, 0, "[a-z]+"},
	        {"n", LB_INT, LB_NULLABLE, 0, NULL, ns, 2}};
	lb_schema sp = {plain, 2, 0}, sr = {ruled, 2, 0, "id"};
	hg_val v;
	lb_result r;
	hg_init(&v);
	te_rc(0, lb_table_create(db, "al", &sp));
	lb_batch *b = hg_begin(db);
	hg_map(&v, 2);
	hg_kstr(&v, "id", "a");
	hg_kint(&v, "n", 1);
	te_rc(0, hg_putv(b, "al", "a", &v));
	hg_reset(&v);
	hg_map(&v, 2);
	hg_kstr(&v, "id", "B");
	hg_kint(&v, "n", 3);
	te_rc(0, hg_putv(b, "al", "b", &v));
	hg_commit_ok(b);
	/* b breaks three rules: nothing changes */
	uint64_t last = te_last(db);
	te_rc(LB_EVALIDATION, lb_table_alter(db, "al", &sr, &r));
	assert_int_equal(r.nissues_total, 3);
	hg_assert_issue(&r.issues[0], LB_ISSUE_FORMAT, "al", "b", "id");
	hg_assert_issue(&r.issues[1], LB_ISSUE_FORMAT, "al", "b", "id");
	hg_assert_issue(&r.issues[2], LB_ISSUE_FORMAT, "al", "b", "n");
	lb_result_free(&r);
	assert_int_equal(te_last(db), last);
	/* mended, the rules come into force */
	b = hg_begin(db);
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kstr(&v, "id", "b");
	te_rc(0, hg_putv(b, "al", "b", &v));
	hg_commit_ok(b);
	te_rc(0, lb_table_alter(db, "al", &sr, &r));
	uint64_t altered = r.batch_id;
	assert_true(altered > 0);
	lb_result_free(&r);
	seen sn;
	memset(&sn, 0, sizeof sn);
	te_rc(0, lb_tables(db, collect, &sn));
	assert_seen_schema(&sn, "al", &sr, 2);
	b = hg_begin(db);
	hg_reset(&v);
	hg_map(&v, 1);
	hg_kstr(&v, "id", "c");
	hg_refused(hg_putv(b, "al", "d", &v), "the record's key is 'd'");
	lb_batch_abort(b);
	/* rolled back, the table is as it was */
	te_rc(0, lb_rollback(db, altered, 0, &r));
	lb_result_free(&r);
	memset(&sn, 0, sizeof sn);
	te_rc(0, lb_tables(db, collect, &sn));
	assert_seen_schema(&sn, "al", &sp, 2);
	b = hg_begin(db);
	te_rc(0, hg_putv(b, "al", "d", &v));
	hg_commit_ok(b);
	hg_free(&v);
}

#define T(name)                                                                \
	cmocka_unit_test_setup_teardown(test_engine_schema__##name, te_setup,  \
	                                te_teardown)
#define THG(name)                                                              \
	cmocka_unit_test_setup_teardown(test_engine_schema__##name, setup_hg,  \
	                                te_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        THG(create_is_logged),  THG(survives_reopen),
	        THG(replay_recreates),  T(copied_at_create),
	        T(bad_schemas_refused), T(refs_to_tables),
	        T(max_fields),          T(values_are_maps),
	        THG(type_matrix),       THG(max_len_str_counts_chars),
	        THG(str_not_utf8),      THG(max_len_bin_bytes),
	        THG(max_len_elements),  T(rules_logged_and_kept),
	        T(rules_by_alter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
