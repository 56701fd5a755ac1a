/* SPDX-License-Identifier: MIT */
/*
 * validate.c: schemas and foreign keys.
 *
 * FORMAT issues are found at op time by one pass over the value's msgpack
 * map, without allocating: each entry's name is matched against the
 * schema's fields, its type and length checked, and a bitmap records which
 * fields were seen so that missing required fields are reported at the end.
 *
 * Foreign keys are checked at commit, against the state after all of the
 * batch's changes, so a record and what it references may come in either
 * order. Two structures make every check O(log n):
 *  - `_refs` (DUPSORT) maps ikey(referenced table, key) to the ikeys of the
 *    records that reference it. It is kept exact as records change.
 *  - the batch's pending list queues one check per reference added and one
 *    per deleted key of a referenced table; commit walks it once.
 * A reference added and then removed again inside the batch is skipped at
 * commit because its `_refs` pair is gone; a key deleted and then put back
 * is skipped because it exists again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

static const char *type_name(lb_type t)
{
	static const char *const names[] = {"any", "nil",   "bool",
	                                    "int", "float", "str",
	                                    "bin", "array", "map"};
	return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static const char *mp_type_name(lb_mp_type t)
{
	switch (t) {
	case LB_MP_NIL:
		return "nil";
	case LB_MP_BOOL:
		return "bool";
	case LB_MP_UINT:
	case LB_MP_NINT:
		return "int";
	case LB_MP_FLOAT:
		return "float";
	case LB_MP_STR:
		return "str";
	case LB_MP_BIN:
		return "bin";
	case LB_MP_ARRAY:
		return "array";
	case LB_MP_MAP:
		return "map";
	case LB_MP_EXT:
		return "ext";
	default:
		return "invalid msgpack";
	}
}

static int find_field(const lb_wal_schema *s, const char *name, uint32_t len)
{
	for (uint32_t i = 0; i < s->nfields; i++)
		if (s->fields[i].nlen == len &&
		    memcmp(s->fields[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

/* Check one field value at m; consume it. Returns 0, LB_EVALIDATION after
 * recording an issue, or LB_ECORRUPT for undecodable msgpack. */
static int check_field(lb_batch *b, lb_table *t, const void *key, size_t klen,
                       const lb_sfield *f, lb_mp *m)
{
	lb_mp_type mt = lb__mp_peek(m);
	int ok;
	uint64_t len = 0;
	int has_len = 0;
	switch (f->type) {
	case LB_ANY:
		ok = mt != LB_MP_INVALID;
		break;
	case LB_NIL:
		ok = mt == LB_MP_NIL;
		break;
	case LB_BOOL:
		ok = mt == LB_MP_BOOL;
		break;
	case LB_INT:
		ok = mt == LB_MP_UINT || mt == LB_MP_NINT;
		break;
	case LB_FLOAT:
		ok = mt == LB_MP_FLOAT;
		break;
	case LB_STR:
		ok = mt == LB_MP_STR;
		break;
	case LB_BIN:
		ok = mt == LB_MP_BIN;
		break;
	case LB_ARRAY:
		ok = mt == LB_MP_ARRAY;
		break;
	case LB_MAP:
		ok = mt == LB_MP_MAP;
		break;
	default:
		ok = 0;
	}
	if (f->ref && ok && mt != LB_MP_STR && mt != LB_MP_BIN &&
	    mt != LB_MP_NIL)
		ok = 0;
	if (!ok) {
		if (mt == LB_MP_INVALID)
			return LB_ECORRUPT;
		/* a ref field of type ANY takes a str or a bin key (or nil:
		 * no reference); one of type STR or BIN takes that type */
		if (f->ref)
			lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen,
			          f->name, 0,
			          "%s: field '%s' must be a key of %s (%s), "
			          "not %s",
			          t->name, f->name, f->ref,
			          f->type == LB_ANY ? "str, bin or nil"
			                            : type_name(f->type),
			          mp_type_name(mt));
		else
			lb__issue(
			        b, LB_ISSUE_FORMAT, t->name, key, klen, f->name,
			        0, "%s: field '%s' must be %s, not %s", t->name,
			        f->name, type_name(f->type), mp_type_name(mt));
		return lb__mp_skip(m) < 0 ? LB_ECORRUPT : LB_EVALIDATION;
	}
	/* A STR field holds UTF-8, always (readers such as the CLI's JSON
	 * output rely on it); an ANY field is decoded only to count the
	 * characters of a max_len. */
	if (mt == LB_MP_STR && (f->max_len || f->type == LB_STR)) {
		const char *s;
		uint32_t n;
		size_t chars;
		if (lb__mp_str(m, &s, &n) < 0)
			return LB_ECORRUPT;
		/* lb__utf8_count returns 0 for valid UTF-8 */
		if (lb__utf8_count((const uint8_t *)s, n, &chars) != 0) {
			lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen,
			          f->name, 0,
			          "%s: field '%s' is not valid UTF-8", t->name,
			          f->name);
			return LB_EVALIDATION;
		}
		len = chars;
		has_len = f->max_len != 0;
	} else if (mt == LB_MP_BIN && f->max_len) {
		const void *p;
		uint32_t n;
		if (lb__mp_bin(m, &p, &n) < 0)
			return LB_ECORRUPT;
		len = n;
		has_len = 1;
	} else if ((mt == LB_MP_ARRAY || mt == LB_MP_MAP) && f->max_len) {
		uint32_t n;
		lb_mp save = *m;
		if ((mt == LB_MP_ARRAY ? lb__mp_array(m, &n)
		                       : lb__mp_map(m, &n)) < 0)
			return LB_ECORRUPT;
		*m = save;
		if (lb__mp_skip(m) < 0)
			return LB_ECORRUPT;
		len = n;
		has_len = 1;
	} else if (lb__mp_skip(m) < 0) {
		return LB_ECORRUPT;
	}
	if (has_len && len > f->max_len)
		return lb__issue(
		        b, LB_ISSUE_FORMAT, t->name, key, klen, f->name, 0,
		        "%s: field '%s' is %llu %s long (max %u)", t->name,
		        f->name, (unsigned long long)len,
		        mt == LB_MP_STR
		                ? "characters"
		                : (mt == LB_MP_BIN ? "bytes" : "elements"),
		        f->max_len);
	return 0;
}

int lb__validate_value(lb_batch *b, lb_table *t, const void *key, size_t klen,
                       const void *val, size_t vlen)
{
	const lb_wal_schema *s = &t->schema;
	lb_mp m = {val, (const uint8_t *)val + vlen};
	uint64_t seen[(LB_SCHEMA_FIELDS_MAX + 63) / 64] = {0};
	uint32_t n;
	int bad = 0, rc;
	size_t before = b->nissues_total;

	if (vlen == 0 || lb__mp_peek(&m) != LB_MP_MAP)
		return lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen, NULL,
		                 0, "%s: value is not a msgpack map", t->name);
	if (lb__mp_map(&m, &n) < 0) /* more entries than bytes left */
		return lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen, NULL,
		                 0, "%s: value is not valid msgpack", t->name);
	for (uint32_t i = 0; i < n; i++) {
		const char *name;
		uint32_t nl;
		lb_mp_type kt = lb__mp_peek(&m);
		if (kt != LB_MP_STR && kt != LB_MP_INVALID) {
			/* valid msgpack, but field names are strings */
			lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen, NULL,
			          0,
			          "%s: the name of entry %u of the map is %s, "
			          "not str",
			          t->name, i, mp_type_name(kt));
			if (lb__mp_skip(&m) < 0 || lb__mp_skip(&m) < 0) {
				bad = 1;
				break;
			}
			continue;
		}
		if (kt != LB_MP_STR || lb__mp_str(&m, &name, &nl) < 0) {
			bad = 1;
			break;
		}
		int fi = find_field(s, name, nl);
		if (fi < 0) {
			if (s->closed) {
				char fname[256];
				size_t fl = nl < sizeof fname - 1
				                    ? nl
				                    : sizeof fname - 1;
				memcpy(fname, name, fl);
				fname[fl] = 0;
				lb__issue(b, LB_ISSUE_FORMAT, t->name, key,
				          klen, fname, 0,
				          "%s: unknown field '%s' (the schema "
				          "is closed)",
				          t->name, fname);
			}
			if (lb__mp_skip(&m) < 0) {
				bad = 1;
				break;
			}
			continue;
		}
		if (seen[fi / 64] & (1ull << (fi % 64))) {
			lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen,
			          s->fields[fi].name, 0,
			          "%s: field '%s' appears twice", t->name,
			          s->fields[fi].name);
			if (lb__mp_skip(&m) < 0) {
				bad = 1;
				break;
			}
			continue;
		}
		seen[fi / 64] |= 1ull << (fi % 64);
		rc = check_field(b, t, key, klen, &s->fields[fi], &m);
		if (rc == LB_ECORRUPT) {
			bad = 1;
			break;
		}
	}
	if (!bad && m.p != m.end)
		return lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen, NULL,
		                 0, "%s: %zu bytes follow the value's map",
		                 t->name, (size_t)(m.end - m.p));
	if (bad)
		return lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen, NULL,
		                 0, "%s: value is not valid msgpack", t->name);
	for (uint32_t i = 0; i < s->nfields; i++)
		if ((s->fields[i].flags & LB_REQUIRED) &&
		    !(seen[i / 64] & (1ull << (i % 64))))
			lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen,
			          s->fields[i].name, 0,
			          "%s: missing required field '%s'", t->name,
			          s->fields[i].name);
	return b->nissues_total > before ? LB_EVALIDATION : 0;
}

/* ---- references ---------------------------------------------------------- */

typedef struct {
	const void *p;
	uint32_t n;
	int present;
} refval;

/* The value of each ref field of t in a (valid) map; absent or nil fields
 * give present 0. */
static void ref_values(const lb_table *t, const void *val, size_t vlen,
                       refval *out)
{
	for (uint32_t i = 0; i < t->nrefs; i++)
		out[i].present = 0;
	if (!val)
		return;
	lb_mp m = {val, (const uint8_t *)val + vlen};
	uint32_t n;
	if (lb__mp_map(&m, &n) < 0)
		return;
	for (uint32_t e = 0; e < n; e++) {
		const char *name;
		uint32_t nl;
		if (lb__mp_str(&m, &name, &nl) < 0)
			return;
		int hit = -1;
		for (uint32_t i = 0; i < t->nrefs; i++) {
			const lb_sfield *f = &t->schema.fields[t->ref_field[i]];
			if (f->nlen == nl && memcmp(f->name, name, nl) == 0) {
				hit = (int)i;
				break;
			}
		}
		lb_mp_type mt = lb__mp_peek(&m);
		if (hit >= 0 && mt == LB_MP_STR) {
			const char *s;
			if (lb__mp_str(&m, &s, &out[hit].n) < 0)
				return;
			out[hit].p = s;
			out[hit].present = 1;
		} else if (hit >= 0 && mt == LB_MP_BIN) {
			if (lb__mp_bin(&m, &out[hit].p, &out[hit].n) < 0)
				return;
			out[hit].present = 1;
		} else if (lb__mp_skip(&m) < 0) {
			return;
		}
	}
}

int lb__refs_dangling(MDB_txn *txn, const lb_table *t, const void *val,
                      size_t vlen, uint32_t *field)
{
	refval rv[LB_SCHEMA_FIELDS_MAX];
	ref_values(t, val, vlen, rv);
	for (uint32_t i = 0; i < t->nrefs; i++) {
		if (!rv[i].present || rv[i].n == 0 || rv[i].n > LB_KEY_MAX)
			continue;
		MDB_val k = {rv[i].n, (void *)rv[i].p}, v;
		int mrc = mdb_get(txn, t->ref_table[i]->dbi, &k, &v);
		if (mrc == MDB_NOTFOUND) {
			*field = t->ref_field[i];
			return 1;
		}
		if (mrc)
			return lb__mdb_fail(mrc, t->ref_table[i]->name);
	}
	return 0;
}

static int same_target(const lb_table *t, uint32_t i, const refval *a,
                       uint32_t j, const refval *b)
{
	return a[i].present && b[j].present &&
	       t->ref_table[i] == t->ref_table[j] && a[i].n == b[j].n &&
	       memcmp(a[i].p, b[j].p, a[i].n) == 0;
}

static int pend_push(lb_batch *b, uint8_t kind, uint32_t tid, const void *key,
                     size_t klen, uint16_t field, uint32_t ttid,
                     const void *tkey, size_t tklen)
{
	uint8_t h[13];
	h[0] = kind;
	lb__be32(h + 1, tid);
	h[5] = (uint8_t)(klen >> 8);
	h[6] = (uint8_t)klen;
	h[7] = (uint8_t)(field >> 8);
	h[8] = (uint8_t)field;
	lb__be32(h + 9, ttid);
	uint8_t tl[4] = {(uint8_t)(tklen >> 24), (uint8_t)(tklen >> 16),
	                 (uint8_t)(tklen >> 8), (uint8_t)tklen};
	int rc;
	if ((rc = lb__buf_append(&b->pending, h, sizeof h)) < 0 ||
	    (rc = lb__buf_append(&b->pending, key, klen)) < 0 ||
	    (rc = lb__buf_append(&b->pending, tl, 4)) < 0 ||
	    (rc = lb__buf_append(&b->pending, tkey, tklen)) < 0)
		return rc;
	return 0;
}

int lb__refs_update(lb_batch *b, lb_table *t, const void *key, size_t klen,
                    const void *before, size_t blen, const void *after,
                    size_t alen, int queue)
{
	lb_db *db = b->db;
	int rc, mrc;
	if (t->nrefs) {
		refval oldv[LB_SCHEMA_FIELDS_MAX], newv[LB_SCHEMA_FIELDS_MAX];
		uint8_t self[LB__IKEY_MAX], target[LB__IKEY_MAX];
		MDB_val sv = {lb__ikey(self, t->tid, key, klen), self};
		if (!sv.mv_size)
			return LB_ENOMEM;
		ref_values(t, before, blen, oldv);
		ref_values(t, after, alen, newv);
		for (uint32_t i = 0; i < t->nrefs; i++) {
			/* drop old targets that no new field still names */
			if (!oldv[i].present || oldv[i].n == 0 ||
			    oldv[i].n > LB_KEY_MAX)
				continue;
			int kept = 0;
			for (uint32_t j = 0; j < t->nrefs && !kept; j++)
				kept = same_target(t, i, oldv, j, newv);
			for (uint32_t j = 0; j < i && !kept; j++)
				kept = same_target(t, i, oldv, j, oldv);
			if (kept)
				continue;
			MDB_val tk = {lb__ikey(target, t->ref_table[i]->tid,
			                       oldv[i].p, oldv[i].n),
			              target};
			if (!tk.mv_size)
				return LB_ENOMEM;
			mrc = mdb_del(b->txn, db->refs, &tk, &sv);
			if (mrc && mrc != MDB_NOTFOUND)
				return lb__mdb_fail(mrc, "_refs");
		}
		for (uint32_t i = 0; i < t->nrefs; i++) {
			if (!newv[i].present)
				continue;
			int had = 0;
			for (uint32_t j = 0; j < t->nrefs && !had; j++)
				had = same_target(t, i, newv, j, oldv);
			if (had)
				continue;
			uint32_t ttid = t->ref_table[i]->tid;
			if (newv[i].n > 0 && newv[i].n <= LB_KEY_MAX) {
				MDB_val tk = {lb__ikey(target, ttid, newv[i].p,
				                       newv[i].n),
				              target};
				if (!tk.mv_size)
					return LB_ENOMEM;
				mrc = mdb_put(b->txn, db->refs, &tk, &sv,
				              MDB_NODUPDATA);
				if (mrc && mrc != MDB_KEYEXIST)
					return lb__mdb_fail(mrc, "_refs");
			}
			if (queue &&
			    (rc = pend_push(b, LB__PEND_REF, t->tid, key, klen,
			                    (uint16_t)t->ref_field[i], ttid,
			                    newv[i].p, newv[i].n)) < 0)
				return rc;
		}
	}
	if (queue && t->referenced && !after &&
	    (rc = pend_push(b, LB__PEND_DEL, t->tid, key, klen, 0, 0, "", 0)) <
	            0)
		return rc;
	return 0;
}

static lb_table *table_by_tid(lb_batch *b, uint32_t tid)
{
	lb_db *db = b->db;
	for (size_t i = b->ntchanges; i-- > 0;)
		if (b->tchanges[i].t->tid == tid)
			return b->tchanges[i].drop ? NULL : b->tchanges[i].t;
	lb_table *found = NULL;
	pthread_mutex_lock(&db->tlock);
	for (size_t i = 0; i < db->ntables; i++)
		if (db->tables[i]->tid == tid && !db->tables[i]->dropped)
			found = db->tables[i];
	pthread_mutex_unlock(&db->tlock);
	return found;
}

/* 1 found, 0 not found, or a read failure as a negative code: a damaged or
 * unreadable index must not pass for a missing key. */
static int hit(int mrc, const char *what)
{
	if (mrc == 0)
		return 1;
	if (mrc == MDB_NOTFOUND)
		return 0;
	return lb__mdb_fail(mrc, what);
}

/* The referrer's last committed batch, to name it in an issue (0 if it
 * cannot be read: the issue stands without it). */
static uint64_t last_change(lb_batch *b, const uint8_t *ik, size_t iklen)
{
	MDB_cursor *c;
	uint64_t id = 0;
	if (mdb_cursor_open(b->txn, b->db->hist, &c) == 0) {
		if (lb__hist_last(b->db, b->txn, c, ik, iklen, b->id, &id) < 0)
			id = 0;
		mdb_cursor_close(c);
	}
	return id;
}

/* Does record key of t (as the batch leaves it) still hold tkey in ref field
 * number `field` of its schema? One lookup, for references that `_refs`
 * cannot hold (an empty value, or one longer than any key). */
static int still_names(lb_batch *b, lb_table *t, const uint8_t *key,
                       size_t klen, uint16_t field, const uint8_t *tkey,
                       size_t tklen)
{
	refval rv[LB_SCHEMA_FIELDS_MAX];
	MDB_val k = {klen, (void *)key}, v;
	int rc = hit(mdb_get(b->txn, t->dbi, &k, &v), t->name);
	if (rc <= 0)
		return rc;
	ref_values(t, v.mv_data, v.mv_size, rv);
	for (uint32_t i = 0; i < t->nrefs; i++)
		if (t->ref_field[i] == field)
			return rv[i].present && rv[i].n == tklen &&
			       (tklen == 0 ||
			        memcmp(rv[i].p, tkey, tklen) == 0);
	return 0;
}

int lb__fk_check(lb_batch *b)
{
	lb_db *db = b->db;
	if (b->pending.len == 0) /* nothing queued (data may be NULL) */
		return b->nissues_total ? LB_EVALIDATION : 0;
	const uint8_t *p = b->pending.data, *end = p + b->pending.len;
	MDB_cursor *c;
	int rc, mrc = mdb_cursor_open(b->txn, db->refs, &c);
	if (mrc)
		return lb__mdb_fail(mrc, "_refs");
	while (p < end) {
		uint8_t kind = p[0];
		uint32_t tid = lb__get_be32(p + 1);
		size_t klen = ((size_t)p[5] << 8) | p[6];
		uint16_t field = (uint16_t)((p[7] << 8) | p[8]);
		uint32_t ttid = lb__get_be32(p + 9);
		const uint8_t *key = p + 13;
		const uint8_t *q = key + klen;
		size_t tklen = lb__get_be32(q);
		const uint8_t *tkey = q + 4;
		p = tkey + tklen;
		lb_table *t = table_by_tid(b, tid);
		if (!t)
			continue;
		uint8_t self[LB__IKEY_MAX], target[LB__IKEY_MAX];
		char k1[96], k2[96];
		if (kind == LB__PEND_REF) {
			lb_table *rt = table_by_tid(b, ttid);
			const char *fname = t->schema.fields[field].name;
			int found = 0;
			if (tklen > 0 && tklen <= LB_KEY_MAX) {
				MDB_val sv = {lb__ikey(self, tid, key, klen),
				              self};
				MDB_val tk = {
				        lb__ikey(target, ttid, tkey, tklen),
				        target};
				if (!sv.mv_size || !tk.mv_size) {
					rc = LB_ENOMEM;
					goto out;
				}
				/* Still referenced by this record? */
				rc = hit(mdb_cursor_get(c, &tk, &sv,
				                        MDB_GET_BOTH),
				         "_refs");
				if (rc < 0)
					goto out;
				if (rc == 0)
					continue;
				MDB_val k = {tklen, (void *)tkey}, v;
				if (rt && (found = hit(mdb_get(b->txn, rt->dbi,
				                               &k, &v),
				                       rt->name)) < 0) {
					rc = found;
					goto out;
				}
			} else {
				/* A value that can be no key has no `_refs`
				 * pair: ask the record itself. */
				rc = still_names(b, t, key, klen, field, tkey,
				                 tklen);
				if (rc < 0)
					goto out;
				if (rc == 0)
					continue;
			}
			if (!found)
				lb__issue(
				        b, LB_ISSUE_FOREIGN_KEY, t->name, key,
				        klen, fname, 0,
				        "%s '%s': %s '%s' names no key of %s",
				        t->name,
				        lb__key_text(key, klen, k1, sizeof k1),
				        fname,
				        lb__key_text(tkey, tklen, k2,
				                     sizeof k2),
				        t->schema.fields[field].ref);
		} else {
			MDB_val k = {klen, (void *)key}, v;
			/* put back later in the batch? */
			if ((rc = hit(mdb_get(b->txn, t->dbi, &k, &v),
			              t->name)) < 0)
				goto out;
			if (rc == 1)
				continue;
			MDB_val tk = {lb__ikey(target, tid, key, klen), target};
			MDB_val rv;
			if (!tk.mv_size) {
				rc = LB_ENOMEM;
				goto out;
			}
			rc = hit(mdb_cursor_get(c, &tk, &rv, MDB_SET_KEY),
			         "_refs");
			if (rc < 0)
				goto out;
			if (rc == 0)
				continue;
			size_t nref = 0;
			mdb_cursor_count(c, &nref);
			const uint8_t *r = rv.mv_data;
			if (rv.mv_size < 4)
				continue;
			uint32_t rtid = lb__get_be32(r);
			lb_table *rt = table_by_tid(b, rtid & ~LB__TID_HASHED);
			char rk[96];
			if (rtid & LB__TID_HASHED)
				snprintf(rk, sizeof rk, "(a key over %d bytes)",
				         LB_KEY_MAX - 4);
			else
				lb__key_text(r + 4, rv.mv_size - 4, rk,
				             sizeof rk);
			uint64_t rb =
			        b->fk_mode ? last_change(b, r, rv.mv_size) : 0;
			lb__issue(b, LB_ISSUE_FOREIGN_KEY, t->name, key, klen,
			          NULL, rb,
			          "%s '%s' is still referenced by %s '%s'%s",
			          t->name,
			          lb__key_text(key, klen, k1, sizeof k1),
			          rt ? rt->name : "?", rk,
			          nref > 1 ? " and others" : "");
		}
	}
	rc = 0;
out:
	mdb_cursor_close(c);
	if (rc < 0)
		return rc;
	return b->nissues_total ? LB_EVALIDATION : 0;
}
