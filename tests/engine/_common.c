/* SPDX-License-Identifier: MIT */
/*
 * _common.c: shared support for the engine tests; see _common.h.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* lb_errmsg() is only valid until the next logbook call on this thread, and
 * lb_strerror() is one: copy the detail before naming the codes. */
static void copy_errmsg(char *buf, size_t n)
{
	const char *m = lb_errmsg();
	if (!m) {
		snprintf(buf, n, "(NULL)");
		return;
	}
	snprintf(buf, n, "%s", m);
}

void te__rc(int got, int want, const char *expr, const char *file, int line)
{
	char msg[512];
	const char *raw = lb_errmsg();
	int empty = (raw == NULL || raw[0] == '\0');

	copy_errmsg(msg, sizeof msg);
	if (got != want) {
		th_seed_report();
		print_error("%s:%d: %s\n    expected %d (%s), got %d (%s); "
		            "lb_errmsg: \"%s\"\n",
		            file, line, expr, want, lb_strerror(want), got,
		            lb_strerror(got), msg);
		_fail(file, line);
	}
	if (got < 0 && empty) {
		th_seed_report();
		print_error("%s:%d: %s returned %d (%s) but lb_errmsg() is "
		            "%s\n",
		            file, line, expr, got, lb_strerror(got),
		            raw ? "empty" : "NULL");
		_fail(file, line);
	}
}

void te__fails(int got, const char *expr, const char *file, int line)
{
	const char *raw = lb_errmsg();
	int empty = (raw == NULL || raw[0] == '\0');

	if (got >= 0) {
		th_seed_report();
		print_error("%s:%d: %s\n    expected a negative code, got %d\n",
		            file, line, expr, got);
		_fail(file, line);
	}
	if (empty) {
		th_seed_report();
		print_error("%s:%d: %s returned %d (%s) but lb_errmsg() is "
		            "%s\n",
		            file, line, expr, got, lb_strerror(got),
		            raw ? "empty" : "NULL");
		_fail(file, line);
	}
}

void *te_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	assert_non_null(p);
	return p;
}

static void *dup_bytes(const void *p, size_t n)
{
	void *d = te_malloc(n);
	if (n)
		memcpy(d, p, n);
	return d;
}

lb_db *te__open_opts(const char *dir, const lb_options *o, const char *file,
                     int line)
{
	lb_db *db = (lb_db *)(uintptr_t)1; /* must be overwritten */
	te__rc(lb_open(dir, o, &db), 0, "lb_open", file, line);
	if (!db) {
		print_error("%s:%d: lb_open succeeded with a NULL handle\n",
		            file, line);
		_fail(file, line);
	}
	return db;
}

lb_db *te__open(const char *dir, unsigned flags, const char *file, int line)
{
	lb_options o;
	lb_options_init(&o);
	o.flags = flags;
	return te__open_opts(dir, &o, file, line);
}

lb_db *te__open_segments(const char *dir, size_t size, const char *file,
                         int line)
{
	lb_options o;
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.segment_size = size;
	return te__open_opts(dir, &o, file, line);
}

lb_db *te_open_child(const char *dir, unsigned flags)
{
	lb_options o;
	lb_db *db;
	lb_options_init(&o);
	o.flags = flags;
	if (lb_open(dir, &o, &db) != 0)
		_exit(2);
	return db;
}

int te_setup(void **state)
{
	te_fx *fx = te_malloc(sizeof *fx);
	fx->dir = th_tmpdir();
	fx->db = te_open(fx->dir, LB_CREATE | LB_NOSYNC);
	*state = fx;
	return 0;
}

int te_setup_t(void **state)
{
	te_fx *fx;
	te_setup(state);
	fx = *state;
	te_rc(0, lb_table_create(fx->db, "t", NULL));
	return 0;
}

int te_teardown(void **state)
{
	te_fx *fx = *state;
	if (!fx)
		return 0;
	lb_close(fx->db);
	th_rmrf(fx->dir);
	free(fx->dir);
	free(fx);
	*state = NULL;
	return 0;
}

uint64_t te_last(lb_db *db)
{
	uint64_t id = UINT64_MAX;
	te_rc(0, lb_last_batch(db, &id));
	assert_true(id != UINT64_MAX);
	return id;
}

uint64_t te_put1n(lb_db *db, const char *table, const void *key, size_t klen,
                  const void *val, size_t vlen)
{
	lb_batch *b = NULL;
	lb_result res;
	uint64_t before = te_last(db);

	memset(&res, 0, sizeof res);
	te_rc(0, lb_batch_begin(db, NULL, &b));
	assert_non_null(b);
	te_rc(0, lb_put(b, table, key, klen, val, vlen));
	te_rc(0, lb_batch_commit(b, &res));
	assert_int_equal(res.rc, 0);
	assert_int_equal(res.batch_id, before + 1);
	assert_int_equal(res.records, 1);
	assert_int_equal(res.nissues, 0);
	lb_result_free(&res);
	assert_int_equal(te_last(db), before + 1);
	return before + 1;
}

uint64_t te_put1(lb_db *db, const char *table, const char *key, const char *val)
{
	return te_put1n(db, table, key, strlen(key), val, strlen(val));
}

uint64_t te_del1(lb_db *db, const char *table, const char *key)
{
	lb_batch *b = NULL;
	lb_result res;
	uint64_t before = te_last(db);

	memset(&res, 0, sizeof res);
	te_rc(0, lb_batch_begin(db, NULL, &b));
	te_rc(0, lb_delete(b, table, key, strlen(key)));
	te_rc(0, lb_batch_commit(b, &res));
	assert_int_equal(res.batch_id, before + 1);
	assert_int_equal(res.records, 1);
	lb_result_free(&res);
	return before + 1;
}

lb_batch_info te_info(lb_db *db, uint64_t id)
{
	lb_batch_info bi;
	te_rc(0, lb_batch_info_get(db, id, &bi));
	return bi;
}

uint64_t te_ops(lb_db *db, const char *spec)
{
	lb_batch *b = NULL;
	lb_result res;
	char *s = strdup(spec), *save = NULL;
	assert_non_null(s);
	te_rc(0, lb_batch_begin(db, spec, &b));
	for (char *tok = strtok_r(s, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');
		if (tok[0] == '-') {
			te_rc(0, lb_delete(b, "t", tok + 1, strlen(tok + 1)));
		} else {
			assert_non_null(eq);
			te_rc(0, lb_put(b, "t", tok, (size_t)(eq - tok), eq + 1,
			                strlen(eq + 1)));
		}
	}
	free(s);
	te_rc(0, lb_batch_commit(b, &res));
	uint64_t id = res.batch_id;
	assert_true(id > 0);
	lb_result_free(&res);
	return id;
}

static void hexdump_short(char *out, size_t n, const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i, o = 0;
	out[0] = '\0';
	for (i = 0; i < len && o + 4 < n; i++) {
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\')
			o += snprintf(out + o, n - o, "%c", b[i]);
		else
			o += snprintf(out + o, n - o, "\\x%02x", b[i]);
	}
	if (i < len && n > 4)
		snprintf(out + (o < n - 4 ? o : n - 4), 4, "...");
}

void te__assert_get(lb_db *db, const char *table, const void *key, size_t klen,
                    const void *val, size_t vlen, const char *file, int line)
{
	void *got = NULL;
	size_t glen = (size_t)-1;
	char k[128], w[128], g[128];

	te__rc(lb_get(db, table, key, klen, &got, &glen), 0, "lb_get", file,
	       line);
	if (glen != vlen || (vlen && (!got || memcmp(got, val, vlen) != 0))) {
		hexdump_short(k, sizeof k, key, klen);
		hexdump_short(w, sizeof w, val, vlen);
		hexdump_short(g, sizeof g, got, got ? glen : 0);
		th_seed_report();
		print_error("%s:%d: lb_get(%s, \"%s\"): expected %zu bytes "
		            "\"%s\", got %zu bytes \"%s\"\n",
		            file, line, table, k, vlen, w, glen, g);
		free(got);
		_fail(file, line);
	}
	free(got);
}

void te__assert_absent(lb_db *db, const char *table, const void *key,
                       size_t klen, const char *file, int line)
{
	void *got = (void *)(uintptr_t)1;
	size_t glen = 0;
	te__rc(lb_get(db, table, key, klen, &got, &glen), LB_ENOTFOUND,
	       "lb_get (expecting an absent key)", file, line);
	if (got != NULL) {
		print_error("%s:%d: lb_get failed but left *val non-NULL\n",
		            file, line);
		_fail(file, line);
	}
}

int te_collect(void *ctx, const lb_change *c)
{
	te_recs *rs = ctx;
	te_rec *r;
	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 16;
		rs->v = realloc(rs->v, rs->cap * sizeof *rs->v);
		if (!rs->v)
			abort();
	}
	r = &rs->v[rs->n++];
	memset(r, 0, sizeof *r);
	r->op = c->op;
	r->table = c->table ? strdup(c->table) : NULL;
	r->key = dup_bytes(c->key, c->klen);
	r->klen = c->klen;
	r->has_before = c->has_before;
	if (c->has_before) {
		r->before = dup_bytes(c->before, c->blen);
		r->blen = c->blen;
	}
	r->has_after = c->has_after;
	if (c->has_after) {
		r->after = dup_bytes(c->after, c->alen);
		r->alen = c->alen;
	}
	return 0;
}

void te_changes(lb_db *db, uint64_t id, te_recs *out)
{
	memset(out, 0, sizeof *out);
	te_rc(0, lb_changes(db, id, te_collect, out));
}

void te_recs_free(te_recs *rs)
{
	size_t i;
	for (i = 0; i < rs->n; i++) {
		free(rs->v[i].table);
		free(rs->v[i].key);
		free(rs->v[i].before);
		free(rs->v[i].after);
	}
	free(rs->v);
	memset(rs, 0, sizeof *rs);
}

static int image_eq(int has, const void *got, size_t glen, const void *want,
                    size_t wlen)
{
	if (!want)
		return !has;
	return has && glen == wlen &&
	       (wlen == 0 || memcmp(got, want, wlen) == 0);
}

void te__assert_rec(const te_rec *r, int op, const char *table, const void *key,
                    size_t klen, const void *before, size_t blen,
                    const void *after, size_t alen, const char *file, int line)
{
	char k[128], a[128], b[128], wa[128], wb[128];
	int ok = r->op == op && r->table && strcmp(r->table, table) == 0 &&
	         r->klen == klen && memcmp(r->key, key, klen) == 0 &&
	         image_eq(r->has_before, r->before, r->blen, before, blen) &&
	         image_eq(r->has_after, r->after, r->alen, after, alen);
	if (ok)
		return;
	hexdump_short(k, sizeof k, r->key, r->klen);
	hexdump_short(b, sizeof b, r->before, r->has_before ? r->blen : 0);
	hexdump_short(a, sizeof a, r->after, r->has_after ? r->alen : 0);
	hexdump_short(wb, sizeof wb, before, before ? blen : 0);
	hexdump_short(wa, sizeof wa, after, after ? alen : 0);
	th_seed_report();
	print_error("%s:%d: change record mismatch\n"
	            "    got      op %d table %s key \"%s\" before %s\"%s\" "
	            "after %s\"%s\"\n"
	            "    expected op %d table %s key (%zu bytes) before "
	            "%s\"%s\" after %s\"%s\"\n",
	            file, line, r->op, r->table ? r->table : "(NULL)", k,
	            r->has_before ? "" : "(absent)", b,
	            r->has_after ? "" : "(absent)", a, op, table, klen,
	            before ? "" : "(absent)", wb, after ? "" : "(absent)", wa);
	_fail(file, line);
}

/* FNV-1a, 64 bit. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;
	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
	unsigned char b[8];
	int i;
	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (56 - 8 * i));
	return fnv(h, b, 8);
}

struct names {
	char **v;
	uint64_t *records;
	size_t n;
};

static int name_cb(void *ctx, const char *name, const lb_schema *schema,
                   uint64_t records)
{
	struct names *ns = ctx;
	(void)schema;
	ns->v = realloc(ns->v, (ns->n + 1) * sizeof *ns->v);
	ns->records = realloc(ns->records, (ns->n + 1) * sizeof *ns->records);
	if (!ns->v || !ns->records)
		abort();
	ns->v[ns->n] = strdup(name);
	ns->records[ns->n] = records;
	ns->n++;
	return 0;
}

uint64_t te_digest(lb_db *db)
{
	struct names ns = {NULL, NULL, 0};
	uint64_t h = 0xcbf29ce484222325ull;
	lb_snapshot *s = NULL;
	size_t i;

	te_rc(0, lb_tables(db, name_cb, &ns));
	te_rc(0, lb_snapshot_open(db, &s));
	for (i = 0; i < ns.n; i++) {
		lb_cursor *c = NULL;
		const void *k, *v;
		size_t kl, vl;
		uint64_t count = 0;
		int rc;

		h = fnv(h, ns.v[i], strlen(ns.v[i]) + 1);
		h = fnv_u64(h, ns.records[i]);
		te_rc(0, lb_cursor_open(s, ns.v[i], &c));
		while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0) {
			h = fnv_u64(h, kl);
			h = fnv(h, k, kl);
			h = fnv_u64(h, vl);
			h = fnv(h, v, vl);
			count++;
		}
		te_rc(LB_ENOTFOUND, rc);
		/* lb_tables() counts what a cursor walks. */
		assert_int_equal(count, ns.records[i]);
		lb_cursor_close(c);
		free(ns.v[i]);
	}
	lb_snapshot_close(s);
	free(ns.v);
	free(ns.records);
	return fnv_u64(h, te_last(db));
}

int64_t te_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t te_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void te_fill(uint64_t *state, void *p, size_t n)
{
	unsigned char *b = p;
	size_t i, j;
	for (i = 0; i < n; i += 8) {
		uint64_t r = th_rand(state);
		for (j = 0; j < 8 && i + j < n; j++)
			b[i + j] = (unsigned char)(r >> (8 * j));
	}
}

size_t te_crash_key(uint64_t id, unsigned i, char *k)
{
	return (size_t)sprintf(k, "k%" PRIu64 "-%u", id, i);
}

size_t te_crash_val(uint64_t id, unsigned i, unsigned fill, char *v)
{
	int n = sprintf(v, "v%" PRIu64 "-%u-", id, i);
	size_t f = (size_t)((id * 31 + i * 7) % fill);
	memset(v + n, 'a' + (int)(id % 26), f);
	v[n + f] = '\0';
	return (size_t)n + f;
}

void te_crash_label(uint64_t id, char *l)
{
	sprintf(l, "crash batch %" PRIu64, id);
}
