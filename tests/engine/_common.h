/* SPDX-License-Identifier: MIT */
/*
 * _common.h: support linked into every engine test binary.
 *
 * - te_rc(): assert a call's return code, reporting both codes by name, and
 *   demand a non-empty lb_errmsg() after every negative return (the error
 *   contract of logbook.h).
 * - Fixtures: a fresh database in a temporary directory, removed afterwards.
 * - A collector for lb_changes() that copies each record, and assertions on
 *   the collected records' exact before- and after-images.
 * - te_digest(): a hash of everything committed (tables, keys, values, the
 *   last batch id), to prove that a refused call changed nothing.
 */
#ifndef LB_TESTS_ENGINE_COMMON_H
#define LB_TESTS_ENGINE_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "logbook.h"
#include "../helpers.h"

/* Assert that `call` returned exactly `want`; after a negative return also
 * assert that lb_errmsg() is non-empty. */
#define te_rc(want, call) te__rc((call), (want), #call, __FILE__, __LINE__)
void te__rc(int got, int want, const char *expr, const char *file, int line);

/* Assert that `call` failed (any negative code) with a non-empty detail. */
#define te_fails(call) te__fails((call), #call, __FILE__, __LINE__)
void te__fails(int got, const char *expr, const char *file, int line);

/* Fixture state: a temporary directory holding an open database. */
typedef struct te_fx {
	char *dir;
	lb_db *db;
} te_fx;

/* Group/test fixtures. te_setup opens a fresh database with
 * LB_CREATE | LB_NOSYNC; te_setup_t also creates the opaque table "t"
 * (which is batch 1). te_teardown closes the database (if still open) and
 * removes the directory. */
int te_setup(void **state);
int te_setup_t(void **state);
int te_teardown(void **state);

/* Open @p dir with default options and @p flags; the test fails (at the
 * caller's line) unless it succeeds. */
#define te_open(dir, flags) te__open((dir), (flags), __FILE__, __LINE__)
lb_db *te__open(const char *dir, unsigned flags, const char *file, int line);
/* Open with explicit options; the test fails unless it succeeds. */
#define te_open_opts(dir, o) te__open_opts((dir), (o), __FILE__, __LINE__)
lb_db *te__open_opts(const char *dir, const lb_options *o, const char *file,
                     int line);

/* Create or open @p dir (LB_NOSYNC) with segments of @p size raw bytes,
 * so that batches have several; the test fails unless it succeeds. */
#define te_open_segments(dir, size)                                            \
	te__open_segments((dir), (size), __FILE__, __LINE__)
lb_db *te__open_segments(const char *dir, size_t size, const char *file,
                         int line);

/* Open @p dir with @p flags in a forked child, where a failed assertion
 * has nobody to report to: exit status 2 if it cannot. */
lb_db *te_open_child(const char *dir, unsigned flags);

/* lb_last_batch(), asserted to succeed. */
uint64_t te_last(lb_db *db);

/* Commit one batch setting table/key to the NUL-terminated val; returns the
 * new batch id (asserted non-zero and == previous last + 1). */
uint64_t te_put1(lb_db *db, const char *table, const char *key,
                 const char *val);
/* Same with explicit lengths. */
uint64_t te_put1n(lb_db *db, const char *table, const void *key, size_t klen,
                  const void *val, size_t vlen);
/* Commit one batch deleting table/key; returns the new batch id. */
uint64_t te_del1(lb_db *db, const char *table, const char *key);
/* Commit one batch on table "t" from a spec: "k=v" puts v (possibly empty)
 * under k, "-k" deletes k; space separated. Returns the batch id. */
uint64_t te_ops(lb_db *db, const char *spec);
/* Batch id's info; fails the test when lb_batch_info_get() fails. */
lb_batch_info te_info(lb_db *db, uint64_t id);

/* Assert that lb_get() returns exactly val/vlen. */
#define te_assert_get(db, table, key, klen, val, vlen)                         \
	te__assert_get((db), (table), (key), (klen), (val), (vlen), __FILE__,  \
	               __LINE__)
void te__assert_get(lb_db *db, const char *table, const void *key, size_t klen,
                    const void *val, size_t vlen, const char *file, int line);
/* String form: key and value are NUL-terminated (the NUL is not stored). */
#define te_assert_get_s(db, table, key, val)                                   \
	te__assert_get((db), (table), (key), strlen(key), (val), strlen(val),  \
	               __FILE__, __LINE__)
/* Assert that lb_get() answers LB_ENOTFOUND and sets *val to NULL. */
#define te_assert_absent(db, table, key, klen)                                 \
	te__assert_absent((db), (table), (key), (klen), __FILE__, __LINE__)
#define te_assert_absent_s(db, table, key)                                     \
	te__assert_absent((db), (table), (key), strlen(key), __FILE__, __LINE__)
void te__assert_absent(lb_db *db, const char *table, const void *key,
                       size_t klen, const char *file, int line);

/* A change record copied out of an lb_changes() callback. */
typedef struct te_rec {
	int op;
	char *table;
	void *key;
	size_t klen;
	void *before;
	size_t blen;
	int has_before;
	void *after;
	size_t alen;
	int has_after;
} te_rec;

typedef struct te_recs {
	te_rec *v;
	size_t n, cap;
} te_recs;

/* lb_change_fn that appends a copy of the record to a te_recs. */
int te_collect(void *ctx, const lb_change *c);
/* Collect all records of batch @p id into @p out (zero it first); the call
 * must return 0. */
void te_changes(lb_db *db, uint64_t id, te_recs *out);
void te_recs_free(te_recs *r);

/* Assert a record's op, table, key and images. before/after NULL mean
 * "absent"; for a present empty image pass "" with length 0. */
#define te_assert_rec(r, op, table, key, klen, before, blen, after, alen)      \
	te__assert_rec((r), (op), (table), (key), (klen), (before), (blen),    \
	               (after), (alen), __FILE__, __LINE__)
/* String form: NULL image = absent; otherwise strlen() bytes. */
#define te_assert_rec_s(r, op, table, key, before, after)                      \
	te__assert_rec((r), (op), (table), (key), strlen(key), (before),       \
	               te_slen(before), (after), te_slen(after), __FILE__,     \
	               __LINE__)
static inline size_t te_slen(const char *s)
{
	return s ? strlen(s) : 0;
}
void te__assert_rec(const te_rec *r, int op, const char *table, const void *key,
                    size_t klen, const void *before, size_t blen,
                    const void *after, size_t alen, const char *file, int line);

/* A 64-bit digest of every table name, key count, key and value (read from
 * one snapshot) and of the last batch id. Equal digests before and after a
 * call mean that it changed nothing committed. */
uint64_t te_digest(lb_db *db);

/* Monotonic and wall clocks, nanoseconds. */
/* The deterministic content of crash-test batch id: key i, its value
 * (with up to fill-1 filler bytes) and the batch label; each returns or
 * writes NUL-terminated text. */
size_t te_crash_key(uint64_t id, unsigned i, char *k);
size_t te_crash_val(uint64_t id, unsigned i, unsigned fill, char *v);
void te_crash_label(uint64_t id, char *l);

int64_t te_now_ns(void);
int64_t te_mono_ns(void);

/* Fill @p p with @p n bytes from the PRNG state. */
void te_fill(uint64_t *state, void *p, size_t n);

/* malloc() that fails the test on NULL. */
void *te_malloc(size_t n);

#endif
