/* SPDX-License-Identifier: MIT */
/*
 * Bad input never crashes the engine and never changes committed data: it
 * gets a negative LB_E* code with an lb_errmsg() detail. Covers bad names,
 * keys, values, labels and schemas, unknown tables, bad options, NULL
 * handles and outputs, read-only databases, and directories that hold no
 * database, a damaged one, another program's LMDB environment or a newer
 * format version.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FX(state) ((te_fx *)*(state))

/* A refused call: exact code, a detail, and committed data unchanged. */
#define BAD(db, want, call)                                                    \
	do {                                                                   \
		uint64_t d_ = te_digest(db);                                   \
		te_rc((want), (call));                                         \
		assert_int_equal(te_digest(db), d_);                           \
	} while (0)

/* Same, when the contract allows either of two codes. */
#define BAD2(db, want1, want2, call)                                           \
	do {                                                                   \
		uint64_t d_ = te_digest(db);                                   \
		int rc_ = (call);                                              \
		te_fails(rc_);                                                 \
		if (rc_ != (want1) && rc_ != (want2))                          \
			fail_msg("%s: got %d (%s), wanted %s or %s", #call,    \
			         rc_, lb_strerror(rc_), lb_strerror(want1),    \
			         lb_strerror(want2));                          \
		assert_int_equal(te_digest(db), d_);                           \
	} while (0)

static lb_batch *begin(lb_db *db)
{
	lb_batch *b = NULL;
	te_rc(0, lb_batch_begin(db, NULL, &b));
	assert_non_null(b);
	return b;
}

/* Commit b, which must hold exactly one good op (put t/"good"), and check
 * that it landed: refused ops did not poison the batch. */
static void commit_good(lb_db *db, lb_batch *b)
{
	lb_result res;
	uint64_t last = te_last(db);
	memset(&res, 0, sizeof res);
	te_rc(0, lb_batch_commit(b, &res));
	assert_int_equal(res.batch_id, last + 1);
	assert_int_equal(res.records, 1);
	lb_result_free(&res);
	te_assert_get_s(db, "t", "good", "yes");
}

static void test_engine_badinput__table_names(void **state)
{
	lb_db *db = FX(state)->db;
	char name[LB_TABLE_NAME_MAX + 2];
	lb_snapshot *s = NULL;
	lb_cursor *c = (lb_cursor *)1;
	lb_batch *b;
	void *v = (void *)1;
	const void *cv;
	size_t vl;

	te_put1(db, "t", "k", "v");
	BAD(db, LB_EINVAL, lb_table_create(db, NULL, NULL));
	BAD(db, LB_EINVAL, lb_table_create(db, "", NULL));
	BAD(db, LB_EINVAL, lb_table_create(db, "a b", NULL));
	BAD(db, LB_EINVAL, lb_table_create(db, "a/b", NULL));
	BAD(db, LB_EINVAL, lb_table_create(db, "caf\xc3\xa9", NULL));
	BAD(db, LB_EINVAL, lb_table_create(db, "tab\n", NULL));
	memset(name, 'n', sizeof name - 1);
	name[sizeof name - 1] = '\0'; /* 65 bytes */
	BAD2(db, LB_ETOOBIG, LB_EINVAL, lb_table_create(db, name, NULL));
	name[LB_TABLE_NAME_MAX] = '\0'; /* 64 bytes: the longest name */
	te_rc(0, lb_table_create(db, name, NULL));
	te_rc(0, lb_table_create(db, "Az09_.-", NULL));

	BAD(db, LB_EINVAL, lb_get(db, NULL, "k", 1, &v, &vl));
	assert_null(v);
	BAD(db, LB_EINVAL, lb_get(db, "", "k", 1, &v, &vl));

	te_rc(0, lb_snapshot_open(db, &s));
	BAD(db, LB_EINVAL, lb_snapshot_get(s, NULL, "k", 1, &cv, &vl));
	BAD(db, LB_EINVAL, lb_snapshot_get(s, "", "k", 1, &cv, &vl));
	BAD(db, LB_EINVAL, lb_cursor_open(s, NULL, &c));
	assert_null(c);
	BAD(db, LB_EINVAL, lb_cursor_open(s, "", &c));
	lb_snapshot_close(s);

	b = begin(db);
	BAD(db, LB_EINVAL, lb_put(b, NULL, "k", 1, "v", 1));
	BAD(db, LB_EINVAL, lb_put(b, "", "k", 1, "v", 1));
	BAD(db, LB_EINVAL, lb_insert(b, NULL, "k", 1, "v", 1));
	BAD(db, LB_EINVAL, lb_update(b, "", "k", 1, "v", 1));
	BAD(db, LB_EINVAL, lb_delete(b, NULL, "k", 1));
	BAD(db, LB_EINVAL, lb_batch_get(b, "", "k", 1, &cv, &vl));
	te_rc(0, lb_put(b, "t", "good", 4, "yes", 3));
	commit_good(db, b);
}

static void test_engine_badinput__keys(void **state)
{
	lb_db *db = FX(state)->db;
	char big[LB_KEY_MAX + 1];
	lb_snapshot *s = NULL;
	lb_batch *b;
	void *v = (void *)1;
	const void *cv;
	size_t vl;

	memset(big, 'K', sizeof big);
	te_put1(db, "t", "k", "v");

	/* reads */
	BAD(db, LB_EINVAL, lb_get(db, "t", NULL, 1, &v, &vl));
	assert_null(v);
	BAD(db, LB_EINVAL, lb_get(db, "t", NULL, 0, &v, &vl));
	BAD(db, LB_EINVAL, lb_get(db, "t", "", 0, &v, &vl));
	v = (void *)1;
	te_fails(lb_get(db, "t", big, sizeof big, &v, &vl));
	assert_null(v);
	te_rc(0, lb_snapshot_open(db, &s));
	BAD(db, LB_EINVAL, lb_snapshot_get(s, "t", NULL, 1, &cv, &vl));
	BAD(db, LB_EINVAL, lb_snapshot_get(s, "t", "k", 0, &cv, &vl));
	te_fails(lb_snapshot_get(s, "t", big, sizeof big, &cv, &vl));
	lb_snapshot_close(s);

	/* writes */
	b = begin(db);
	BAD(db, LB_EINVAL, lb_put(b, "t", NULL, 1, "v", 1));
	BAD(db, LB_EINVAL, lb_put(b, "t", NULL, 0, "v", 1));
	BAD(db, LB_EINVAL, lb_put(b, "t", "", 0, "v", 1));
	BAD(db, LB_EINVAL, lb_insert(b, "t", "", 0, "v", 1));
	BAD(db, LB_EINVAL, lb_update(b, "t", NULL, 3, "v", 1));
	BAD(db, LB_EINVAL, lb_delete(b, "t", "", 0));
	BAD(db, LB_EINVAL, lb_delete(b, "t", NULL, 1));
	BAD(db, LB_EINVAL, lb_batch_get(b, "t", NULL, 1, &cv, &vl));
	BAD(db, LB_EINVAL, lb_batch_get(b, "t", "", 0, &cv, &vl));
	BAD(db, LB_ETOOBIG, lb_put(b, "t", big, sizeof big, "v", 1));
	BAD(db, LB_ETOOBIG, lb_insert(b, "t", big, sizeof big, "v", 1));
	BAD(db, LB_ETOOBIG, lb_update(b, "t", big, sizeof big, "v", 1));
	BAD(db, LB_ETOOBIG, lb_delete(b, "t", big, sizeof big));
	te_fails(lb_batch_get(b, "t", big, sizeof big, &cv, &vl));
	BAD(db, LB_ETOOBIG, lb_put(b, "t", big, (size_t)-1, "v", 1));
	te_rc(0, lb_put(b, "t", "good", 4, "yes", 3));
	commit_good(db, b);
}

static void test_engine_badinput__values_and_labels(void **state)
{
	lb_db *db = FX(state)->db;
	size_t n = (size_t)LB_VALUE_MAX + 1;
	char *big = te_malloc(n);
	char label[LB_LABEL_MAX + 2];
	lb_batch *b;

	memset(big, 'V', n);
	te_put1(db, "t", "k", "v");

	b = begin(db);
	BAD(db, LB_ETOOBIG, lb_put(b, "t", "k", 1, big, n));
	BAD(db, LB_ETOOBIG, lb_insert(b, "t", "n", 1, big, n));
	BAD(db, LB_ETOOBIG, lb_update(b, "t", "k", 1, big, n));
	BAD(db, LB_ETOOBIG, lb_put(b, "t", "k", 1, big, (size_t)-1));
	BAD(db, LB_EINVAL, lb_put(b, "t", "k", 1, NULL, 5));
	BAD(db, LB_EINVAL, lb_update(b, "t", "k", 1, NULL, 1));
	te_rc(0, lb_put(b, "t", "good", 4, "yes", 3));
	commit_good(db, b);
	te_assert_get_s(db, "t", "k", "v");
	free(big);

	memset(label, 'L', sizeof label - 1);
	label[sizeof label - 1] = '\0'; /* 256 bytes */
	b = (lb_batch *)1;
	BAD(db, LB_ETOOBIG, lb_batch_begin(db, label, &b));
	assert_null(b);
	/* The refused begin left no batch open: this one does not wait. */
	label[LB_LABEL_MAX] = '\0';
	b = NULL;
	te_rc(0, lb_batch_begin(db, label, &b));
	lb_batch_abort(b);
}

static void test_engine_badinput__unknown_table(void **state)
{
	lb_db *db = FX(state)->db;
	lb_snapshot *s = NULL;
	lb_cursor *c = (lb_cursor *)1;
	lb_batch *b;
	void *v = (void *)1;
	const void *cv = (const void *)1;
	size_t vl;

	te_put1(db, "t", "k", "v");
	BAD(db, LB_ENOTFOUND, lb_get(db, "nope", "k", 1, &v, &vl));
	assert_null(v);
	te_rc(0, lb_snapshot_open(db, &s));
	BAD(db, LB_ENOTFOUND, lb_snapshot_get(s, "nope", "k", 1, &cv, &vl));
	assert_null(cv);
	BAD(db, LB_ENOTFOUND, lb_cursor_open(s, "nope", &c));
	assert_null(c);
	lb_snapshot_close(s);

	b = begin(db);
	BAD(db, LB_ENOTFOUND, lb_put(b, "nope", "k", 1, "v", 1));
	BAD(db, LB_ENOTFOUND, lb_insert(b, "nope", "k", 1, "v", 1));
	BAD(db, LB_ENOTFOUND, lb_update(b, "nope", "k", 1, "v", 1));
	BAD(db, LB_ENOTFOUND, lb_delete(b, "nope", "k", 1));
	BAD(db, LB_ENOTFOUND, lb_batch_get(b, "nope", "k", 1, &cv, &vl));
	/* a prefix or extension of an existing table's name is another
	 * table */
	BAD(db, LB_ENOTFOUND, lb_put(b, "tt", "k", 1, "v", 1));
	te_rc(0, lb_put(b, "t", "good", 4, "yes", 3));
	commit_good(db, b);
}

static void test_engine_badinput__unknown_batches(void **state)
{
	lb_db *db = FX(state)->db;
	lb_batch_info bi;
	te_recs rs = {NULL, 0, 0};

	te_put1(db, "t", "k", "v");
	BAD(db, LB_ENOTFOUND, lb_batch_info_get(db, 3, &bi));
	BAD(db, LB_ENOTFOUND, lb_changes(db, 3, te_collect, &rs));
	BAD(db, LB_ENOTFOUND, lb_changes(db, UINT64_MAX, te_collect, &rs));
	assert_int_equal(rs.n, 0);
	/* there is no batch 0 */
	te_fails(lb_batch_info_get(db, 0, &bi));
	te_fails(lb_changes(db, 0, te_collect, &rs));
	assert_int_equal(rs.n, 0);
}

static void test_engine_badinput__schemas(void **state)
{
	lb_db *db = FX(state)->db;
	lb_field f[LB_SCHEMA_FIELDS_MAX + 1];
	lb_schema s = {0}; /* members set one by one: the rest zero */
	char longname[257];
	void *v;
	size_t vl, i;

	te_put1(db, "t", "k", "v");
	memset(f, 0, sizeof f);
	f[0].name = "a";
	f[0].type = LB_STR;
	f[1].name = "b";
	f[1].type = LB_INT;
	s.fields = f;
	s.nfields = 2;
	s.closed = 1;

	f[1].type = (lb_type)99;
	BAD(db, LB_EINVAL, lb_table_create(db, "s", &s));
	f[1].type = LB_INT;
	f[1].name = "";
	BAD(db, LB_EINVAL, lb_table_create(db, "s", &s));
	f[1].name = NULL;
	BAD(db, LB_EINVAL, lb_table_create(db, "s", &s));
	f[1].name = "a";
	BAD(db, LB_EINVAL, lb_table_create(db, "s", &s));
	f[1].name = "b";
	f[1].flags = 4;
	BAD(db, LB_EINVAL, lb_table_create(db, "s", &s));
	f[1].flags = LB_REQUIRED;
	f[1].ref = "no_such_table";
	BAD(db, LB_EINVAL, lb_table_create(db, "s", &s));
	f[1].ref = NULL;
	memset(longname, 'f', 256);
	longname[256] = '\0';
	f[1].name = longname;
	BAD2(db, LB_EINVAL, LB_ETOOBIG, lb_table_create(db, "s", &s));
	f[1].name = "b";
	s.fields = NULL;
	BAD(db, LB_EINVAL, lb_table_create(db, "s", &s));
	s.fields = f;

	for (i = 0; i <= LB_SCHEMA_FIELDS_MAX; i++) {
		char *n = te_malloc(16);
		snprintf(n, 16, "f%zu", i);
		f[i].name = n;
		f[i].type = LB_ANY;
		f[i].flags = 0;
		f[i].ref = NULL;
	}
	s.nfields = LB_SCHEMA_FIELDS_MAX + 1;
	BAD2(db, LB_EINVAL, LB_ETOOBIG, lb_table_create(db, "s", &s));

	/* No refused create made the table, and the name is still free. */
	v = (void *)1;
	te_rc(LB_ENOTFOUND, lb_get(db, "s", "k", 1, &v, &vl));
	s.nfields = LB_SCHEMA_FIELDS_MAX;
	te_rc(0, lb_table_create(db, "s", &s));
	for (i = 0; i <= LB_SCHEMA_FIELDS_MAX; i++)
		free((char *)f[i].name);
	assert_int_equal(te_last(db), 3);
}

static void test_engine_badinput__options(void **state)
{
	te_fx *fx = *state;
	char *p = th_path(fx->dir, "opts");
	static const struct {
		unsigned flags;
		int compression;
		size_t segment_size;
	} bad[] = {
	        {LB_CREATE, 10, 0},
	        {LB_CREATE, -2, 0},
	        {LB_CREATE, 1000, 0},
	        {LB_CREATE, -1, (size_t)LB_SEGMENT_SIZE_MAX + 1},
	        {LB_CREATE, -1, (size_t)-1},
	        {LB_CREATE, -1, 255}, /* below the 256-byte minimum */
	        {LB_CREATE, -1, 1},
	        {LB_CREATE | 8u, -1, 0},
	        {LB_CREATE | 0x100u, -1, 0},
	        {LB_CREATE | 0x80000000u, -1, 0},
	};
	size_t i;
	lb_options o;
	lb_db *db;
	lb_batch_info bi;
	lb_batch *b;

	/* One handle per directory and process: close the fixture's before
	 * trying options on its directory. */
	lb_close(fx->db);
	fx->db = NULL;
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		lb_options_init(&o);
		o.flags = bad[i].flags;
		o.compression = bad[i].compression;
		o.segment_size = bad[i].segment_size;
		db = (lb_db *)1;
		te_rc(LB_EINVAL, lb_open(p, &o, &db));
		assert_null(db);
		/* the same options on the existing database */
		db = (lb_db *)1;
		o.flags = bad[i].flags & ~(unsigned)LB_CREATE;
		te_rc(LB_EINVAL, lb_open(fx->dir, &o, &db));
		assert_null(db);
	}

	/* The extremes of every option are accepted. */
	lb_options_init(&o);
	assert_int_equal(o.flags, 0);
	assert_int_equal(o.compression, -1);
	assert_int_equal(o.segment_size, 0);
	assert_int_equal(o.map_size, 0);
	o.flags = LB_NOSYNC;
	o.compression = 9;
	o.segment_size = LB_SEGMENT_SIZE_MAX;
	db = te_open_opts(fx->dir, &o);
	lb_close(db);
	/* The smallest segment size the engine takes is 256 bytes. */
	o.compression = 0;
	o.segment_size = 256;
	fx->db = te_open_opts(fx->dir, &o);
	b = begin(fx->db);
	{
		char v[300]; /* every record fills a segment on its own */
		memset(v, 'v', sizeof v);
		te_rc(0, lb_put(b, "t", "a", 1, v, sizeof v));
		te_rc(0, lb_put(b, "t", "b", 1, v, sizeof v));
		te_rc(0, lb_put(b, "t", "c", 1, v, sizeof v));
	}
	te_rc(0, lb_batch_commit(b, NULL));
	te_rc(0, lb_batch_info_get(fx->db, 2, &bi));
	assert_int_equal(bi.records, 3);
	assert_int_equal(bi.segments, 3);
	{
		te_recs rs;
		te_changes(fx->db, 2, &rs);
		assert_int_equal(rs.n, 3);
		te_recs_free(&rs);
	}
	free(p);
}

static void test_engine_badinput__rdonly(void **state)
{
	te_fx *fx = *state;
	lb_batch *b = (lb_batch *)1;

	te_put1(fx->db, "t", "k", "v");
	lb_close(fx->db);
	fx->db = NULL;
	fx->db = te_open(fx->dir, LB_RDONLY);
	BAD(fx->db, LB_EINVAL, lb_batch_begin(fx->db, "x", &b));
	assert_null(b);
	BAD(fx->db, LB_EINVAL, lb_table_create(fx->db, "u", NULL));
	te_assert_get_s(fx->db, "t", "k", "v");
}

static void test_engine_badinput__null_handles(void **state)
{
	lb_db *db = FX(state)->db;
	uint64_t id = 7;
	lb_batch *b = (lb_batch *)1;
	lb_snapshot *s = (lb_snapshot *)1;
	lb_cursor *c = (lb_cursor *)1;
	lb_batch_info bi;
	lb_verify_report rep;
	lb_result res;
	void *v = (void *)1;
	const void *cv, *ck;
	size_t vl, kl;
	char *dest = th_path(FX(state)->dir, "dest");

	te_put1(db, "t", "k", "v");

	/* NULL handles */
	BAD(db, LB_EINVAL, lb_table_create(NULL, "u", NULL));
	BAD(db, LB_EINVAL, lb_tables(NULL, NULL, NULL));
	BAD(db, LB_EINVAL, lb_get(NULL, "t", "k", 1, &v, &vl));
	assert_null(v);
	BAD(db, LB_EINVAL, lb_snapshot_open(NULL, &s));
	assert_null(s);
	BAD(db, LB_EINVAL, lb_snapshot_get(NULL, "t", "k", 1, &cv, &vl));
	BAD(db, LB_EINVAL, lb_cursor_open(NULL, "t", &c));
	assert_null(c);
	BAD(db, LB_EINVAL, lb_cursor_seek(NULL, "k", 1));
	BAD(db, LB_EINVAL, lb_cursor_next(NULL, &ck, &kl, &cv, &vl));
	BAD(db, LB_EINVAL, lb_batch_begin(NULL, NULL, &b));
	assert_null(b);
	BAD(db, LB_EINVAL, lb_put(NULL, "t", "k", 1, "v", 1));
	BAD(db, LB_EINVAL, lb_insert(NULL, "t", "k", 1, "v", 1));
	BAD(db, LB_EINVAL, lb_update(NULL, "t", "k", 1, "v", 1));
	BAD(db, LB_EINVAL, lb_delete(NULL, "t", "k", 1));
	BAD(db, LB_EINVAL, lb_batch_get(NULL, "t", "k", 1, &cv, &vl));
	memset(&res, 0, sizeof res);
	BAD(db, LB_EINVAL, lb_batch_commit(NULL, &res));
	lb_result_free(&res);
	BAD(db, LB_EINVAL, lb_batch_commit(NULL, NULL));
	BAD(db, LB_EINVAL, lb_last_batch(NULL, &id));
	BAD(db, LB_EINVAL, lb_batch_info_get(NULL, 1, &bi));
	BAD(db, LB_EINVAL, lb_changes(NULL, 1, te_collect, NULL));
	BAD(db, LB_EINVAL, lb_history(NULL, "t", "k", 1, NULL, NULL));
	BAD(db, LB_EINVAL, lb_rollback(NULL, 1, 0, NULL));
	BAD(db, LB_EINVAL, lb_rollback_to(NULL, 1, NULL));
	BAD(db, LB_EINVAL, lb_checkpoint(NULL, dest, NULL));
	BAD(db, LB_EINVAL, lb_replay(NULL, dest, 0, NULL, NULL));
	BAD(db, LB_EINVAL, lb_verify(NULL, 0, &rep));
	BAD(db, LB_EINVAL, lb_checkpoints(NULL, NULL, NULL));
	BAD(db, LB_EINVAL, lb_prune(NULL, 1));
	{
		lb_db *odb = (lb_db *)1, **none = NULL;
		BAD(db, LB_EINVAL, lb_open(NULL, NULL, &odb));
		assert_null(odb);
		/* NULL outputs and callbacks */
		BAD(db, LB_EINVAL, lb_open(dest, NULL, none));
	}
	BAD(db, LB_EINVAL, lb_get(db, "t", "k", 1, NULL, &vl));
	BAD(db, LB_EINVAL, lb_last_batch(db, NULL));
	BAD(db, LB_EINVAL, lb_batch_info_get(db, 1, NULL));
	BAD(db, LB_EINVAL, lb_changes(db, 1, NULL, NULL));
	BAD(db, LB_EINVAL, lb_tables(db, NULL, NULL));
	BAD(db, LB_EINVAL, lb_snapshot_open(db, NULL));
	BAD(db, LB_EINVAL, lb_batch_begin(db, NULL, NULL));
	te_rc(0, lb_snapshot_open(db, &s));
	BAD(db, LB_EINVAL, lb_cursor_open(s, "t", NULL));
	BAD(db, LB_EINVAL, lb_snapshot_get(s, "t", "k", 1, NULL, &vl));
	te_rc(0, lb_cursor_open(s, "t", &c));
	BAD(db, LB_EINVAL, lb_cursor_seek(c, NULL, 3));
	lb_cursor_close(c);
	lb_snapshot_close(s);

	/* The database still works: no batch was left open. */
	assert_int_equal(te_put1(db, "t", "k2", "v2"), 3);
	free(dest);
}

static void test_engine_badinput__destructors_accept_null(void **state)
{
	lb_db *db = FX(state)->db;
	uint64_t d = te_digest(db);
	lb_close(NULL);
	lb_snapshot_close(NULL);
	lb_cursor_close(NULL);
	lb_batch_abort(NULL);
	lb_result_free(NULL);
	lb_options_init(NULL);
	assert_int_equal(te_digest(db), d);
}

/* ---- directories that hold no logbook database -------------------------- */

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static int file_equals(const char *path, const void *p, size_t n)
{
	unsigned char *buf = te_malloc(n + 1);
	int fd = open(path, O_RDONLY), eq;
	ssize_t got;
	assert_true(fd >= 0);
	got = read(fd, buf, n + 1);
	close(fd);
	eq = got == (ssize_t)n && memcmp(buf, p, n) == 0;
	free(buf);
	return eq;
}

static void open_refused(const char *dir, unsigned flags, int want)
{
	lb_options o;
	lb_db *db = (lb_db *)1;
	lb_options_init(&o);
	o.flags = flags;
	te_rc(want, lb_open(dir, &o, &db));
	assert_null(db);
}

static void test_engine_badinput__open_plain_file(void **state)
{
	te_fx *fx = *state;
	char *p = th_path(fx->dir, "plain");
	write_file(p, "just a file\n", 12);
	open_refused(p, 0, LB_EINVAL);
	open_refused(p, LB_CREATE, LB_EINVAL);
	open_refused(p, LB_RDONLY, LB_EINVAL);
	assert_true(file_equals(p, "just a file\n", 12));
	free(p);
}

static void test_engine_badinput__open_missing(void **state)
{
	te_fx *fx = *state;
	char *p = th_path(fx->dir, "missing");
	char *q = th_path(fx->dir, "plain");
	char *r;
	open_refused(p, 0, LB_ENOTFOUND);
	/* a path through a plain file cannot be created */
	write_file(q, "x", 1);
	r = th_path(q, "sub");
	{
		lb_db *db = (lb_db *)1;
		te_fails(lb_open(r, NULL, &db));
		assert_null(db);
	}
	free(p);
	free(q);
	free(r);
}

static void test_engine_badinput__open_random_data(void **state)
{
	te_fx *fx = *state;
	char *dir = th_path(fx->dir, "random");
	char *data = th_path(dir, "data.mdb");
	size_t n = 64 * 1024;
	unsigned char *junk = te_malloc(n);
	uint64_t rng = 99;

	te_fill(&rng, junk, n);
	assert_int_equal(mkdir(dir, 0755), 0);
	write_file(data, junk, n);
	open_refused(dir, 0, LB_ECORRUPT);
	open_refused(dir, LB_CREATE, LB_ECORRUPT);
	open_refused(dir, LB_RDONLY, LB_ECORRUPT);
	/* nothing was "repaired" or initialized over it */
	assert_true(file_equals(data, junk, n));
	free(junk);
	free(data);
	free(dir);
}

static void test_engine_badinput__open_foreign_lmdb(void **state)
{
	te_fx *fx = *state;
	char *dir = th_path(fx->dir, "foreign");
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {5, "hello"}, v = {5, "world"};

	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);

	open_refused(dir, 0, LB_EINVAL);
	open_refused(dir, LB_CREATE, LB_EINVAL);
	open_refused(dir, LB_RDONLY, LB_EINVAL);

	/* The other program's data is untouched and no _meta was added. */
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	assert_int_equal(v.mv_size, 5);
	assert_memory_equal(v.mv_data, "world", 5);
	assert_int_equal(mdb_dbi_open(txn, "_meta", 0, &dbi), MDB_NOTFOUND);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	free(dir);
}

/* Read or replace _meta/format of a closed database with liblmdb. */
static void meta_format(const char *dir, const unsigned char *set,
                        unsigned char got[4])
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = {6, "format"}, v;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 1024), 0);
	assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "_meta", 0, &dbi), 0);
	assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
	assert_int_equal(v.mv_size, 4);
	memcpy(got, v.mv_data, 4);
	if (set) {
		v.mv_size = 4;
		v.mv_data = (void *)set;
		assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	}
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

static void test_engine_badinput__open_newer_format(void **state)
{
	te_fx *fx = *state;
	static const unsigned char cur[4] = {0, 0, 0, LB_FORMAT_VERSION},
	                           next[4] = {0, 0, 0, LB_FORMAT_VERSION + 1};
	unsigned char got[4];
	uint64_t d;

	te_put1(fx->db, "t", "k", "v");
	d = te_digest(fx->db);
	lb_close(fx->db);
	fx->db = NULL;

	/* FORMAT: _meta/format is the version as u32 big-endian. */
	meta_format(fx->dir, next, got);
	assert_memory_equal(got, cur, 4);

	open_refused(fx->dir, 0, LB_EVERSION);
	open_refused(fx->dir, LB_RDONLY, LB_EVERSION);
	open_refused(fx->dir, LB_CREATE, LB_EVERSION);

	/* The refusals wrote nothing: the newer version is still there,
	 * and with the library's own back the data is intact. */
	meta_format(fx->dir, cur, got);
	assert_memory_equal(got, next, 4);
	fx->db = te_open(fx->dir, LB_NOSYNC);
	assert_int_equal(te_digest(fx->db), d);
	te_assert_get_s(fx->db, "t", "k", "v");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, te_setup_t, te_teardown)
	        T(test_engine_badinput__table_names),
	        T(test_engine_badinput__keys),
	        T(test_engine_badinput__values_and_labels),
	        T(test_engine_badinput__unknown_table),
	        T(test_engine_badinput__unknown_batches),
	        T(test_engine_badinput__schemas),
	        T(test_engine_badinput__options),
	        T(test_engine_badinput__rdonly),
	        T(test_engine_badinput__null_handles),
	        T(test_engine_badinput__destructors_accept_null),
	        T(test_engine_badinput__open_plain_file),
	        T(test_engine_badinput__open_missing),
	        T(test_engine_badinput__open_random_data),
	        T(test_engine_badinput__open_foreign_lmdb),
	        T(test_engine_badinput__open_newer_format),
#undef T
	};
	return cmocka_run_group_tests_name("engine_badinput", tests, NULL,
	                                   NULL);
}
