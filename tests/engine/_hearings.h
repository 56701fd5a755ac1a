/* SPDX-License-Identifier: MIT */
/*
 * _hearings.h: the hearings / witnesses / documents schema shared by the
 * validation tests, msgpack value builders (msgpack-c's packer), issue
 * assertions, and a reader of `_refs` and `_meta` straight from the LMDB
 * environment (with the database closed) to check what the engine stored.
 *
 *   hearings  (closed)  id: str, required, max 32
 *                       title: str, required, max 200
 *                       date: str, required, max 10 ("YYYY-MM-DD")
 *                       committee: str, required, max 120
 *                       chamber: str, required, max 6
 *                       congress: int, required
 *   witnesses (closed)  id: str (optional)
 *                       hearing_id: str, required, ref hearings
 *                       name: str, required, max 80
 *                       organization: str (optional), max 120
 *   documents (open)    hearing_id: any, required, ref hearings (a str or a
 *                       bin key; nil means "no hearing")
 *                       type: str, required, max 16
 *                       url: str, required, max 2048
 */
#ifndef LB_TESTS_ENGINE_HEARINGS_H
#define LB_TESTS_ENGINE_HEARINGS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "_common.h"
#include "logbook.h"

#define HG_HEARINGS "hearings"
#define HG_WITNESSES "witnesses"
#define HG_DOCUMENTS "documents"

extern const lb_schema hg_hearing_schema;
extern const lb_schema hg_witness_schema;
extern const lb_schema hg_document_schema;

/* Create hearings, witnesses and documents, in that order (three batches:
 * the test fails unless each succeeds). */
void hg_create(lb_db *db);

/* A msgpack value under construction. */
typedef struct hg_val {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} hg_val;

void hg_init(hg_val *v);  /* empty */
void hg_reset(hg_val *v); /* empty again, buffer kept */
void hg_free(hg_val *v);
static inline const void *hg_data(const hg_val *v)
{
	return v->sb.data;
}
static inline size_t hg_len(const hg_val *v)
{
	return v->sb.size;
}

/* Map header, then entries "field": value. hg_key packs only the name: the
 * caller packs the value with v->pk. */
void hg_map(hg_val *v, uint32_t n);
void hg_key(hg_val *v, const char *field);
void hg_pstr(hg_val *v, const char *s); /* a bare str value */
void hg_kstr(hg_val *v, const char *field, const char *s);
void hg_kstrn(hg_val *v, const char *field, const void *s, size_t n);
void hg_kint(hg_val *v, const char *field, int64_t i);
void hg_kbin(hg_val *v, const char *field, const void *p, size_t n);
void hg_knil(hg_val *v, const char *field);

/* Reset v and pack a valid record. The hearing's text fields derive from
 * its id; the witness's name and the document's type/url are fixed. */
void hg_hearing(hg_val *v, const char *id);
void hg_witness(hg_val *v, const char *hearing_id);
void hg_document(hg_val *v, const char *hearing_id);

/* One op with the record above (key = NUL-terminated); the op's return code.
 * hg_put_witnessn takes a key and a hearing id of explicit lengths. */
int hg_put_hearing(lb_batch *b, const char *key);
int hg_insert_hearing(lb_batch *b, const char *key);
int hg_put_witness(lb_batch *b, const char *key, const char *hearing_id);
int hg_put_witnessn(lb_batch *b, const void *key, size_t klen,
                    const void *hearing_id, size_t hlen);
int hg_put_document(lb_batch *b, const char *key, const char *hearing_id);
int hg_del(lb_batch *b, const char *table, const char *key);
/* lb_put of raw bytes, or of a built value, under a NUL-terminated key. */
int hg_put_raw(lb_batch *b, const char *table, const char *key, const void *val,
               size_t vlen);
int hg_putv(lb_batch *b, const char *table, const char *key, const hg_val *v);
/* Reset v and pack a valid hearing but for what the caller adds: the six
 * fields minus `skip` (NULL = none), under a map header counting `extra`
 * more entries for the caller to pack. */
void hg_hearing_but(hg_val *v, const char *skip, uint32_t extra);

/* Assert that an op was refused with LB_EVALIDATION and an lb_errmsg()
 * that mentions `what`. */
#define hg_refused(call, what)                                                 \
	do {                                                                   \
		te_rc(LB_EVALIDATION, (call));                                 \
		hg_assert_contains(lb_errmsg(), (what));                       \
	} while (0)

/* Begin a batch (asserted). */
lb_batch *hg_begin(lb_db *db);
/* Commit, asserting success; returns the new batch id. */
uint64_t hg_commit_ok(lb_batch *b);
/* Commit, asserting LB_EVALIDATION and that the last batch did not move;
 * res holds the issues (release with lb_result_free). */
#define hg_commit_rejected(db, b, res)                                         \
	hg__commit_rejected((db), (b), (res), __FILE__, __LINE__)
void hg__commit_rejected(lb_db *db, lb_batch *b, lb_result *res,
                         const char *file, int line);

/* Assert an issue's kind, table, key (NUL-terminated) and field (NULL: the
 * issue must name no field), and that it has a non-empty message. */
#define hg_assert_issue(is, kind, table, key, field)                           \
	hg__assert_issue((is), (kind), (table), (key), strlen(key), (field),   \
	                 __FILE__, __LINE__)
#define hg_assert_issuen(is, kind, table, key, klen, field)                    \
	hg__assert_issue((is), (kind), (table), (key), (klen), (field),        \
	                 __FILE__, __LINE__)
void hg__assert_issue(const lb_issue *is, lb_issue_kind kind, const char *table,
                      const void *key, size_t klen, const char *field,
                      const char *file, int line);

/* Assert that s contains sub. */
#define hg_assert_contains(s, sub)                                             \
	hg__assert_contains((s), (sub), __FILE__, __LINE__)
void hg__assert_contains(const char *s, const char *sub, const char *file,
                         int line);

/* ---- reading the LMDB environment directly (the database closed) ---- */

/* A ref field: `table`.`field` names keys of `target`. */
typedef struct hg_refspec {
	const char *table, *field, *target;
} hg_refspec;
/* witnesses.hearing_id and documents.hearing_id */
extern const hg_refspec hg_refs[2];

/* Assert that `_refs` holds exactly one pair per (referenced key, referring
 * record) that the records of the spec's tables imply, nothing else;
 * returns the number of pairs. */
size_t hg_assert_refs_exact(const char *dir, const hg_refspec *spec,
                            size_t nspec);
/* A copy (malloc) of the `_meta` entry `name`, or NULL if there is none. */
void *hg_meta_get(const char *dir, const char *name, size_t *len);

#endif
