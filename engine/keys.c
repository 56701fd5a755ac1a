/* SPDX-License-Identifier: MIT */
/*
 * keys.c: keys as the engine handles them: the checks every call taking a
 * table and a key makes (lb__key_args), internal keys (a table id before
 * the key, or a hash of a key too long to follow it; FORMAT.md §2) for
 * `_gone` and `_refs` (lb__ikey), and a key as text for messages
 * (lb__key_text).
 *
 * Below everything else in the engine: it calls only wal/.
 */
#include <stdio.h>
#include <string.h>

#include "engine/internal.h"

int lb__key_args(const char *table, const void *key, size_t klen)
{
	if (!table || !*table)
		return lb__fail(LB_EINVAL, "table name is NULL or empty");
	if (!key || klen == 0)
		return lb__fail(LB_EINVAL, "table %s: key is NULL or empty",
		                table);
	if (klen > LB_KEY_MAX)
		return lb__fail(LB_ETOOBIG,
		                "table %s: key of %zu bytes (max %d)", table,
		                klen, LB_KEY_MAX);
	return 0;
}

size_t lb__ikey(uint8_t *out, uint32_t tid, const void *key, size_t klen)
{
	if (klen <= LB_KEY_MAX - 4) {
		lb__be32(out, tid);
		memcpy(out + 4, key, klen);
		return 4 + klen;
	}
	lb__be32(out, tid | LB__TID_HASHED);
	return lb__sha256(key, klen, out + 4) < 0 ? 0 : 36;
}

const char *lb__key_text(const void *key, size_t klen, char *buf, size_t cap)
{
	const uint8_t *k = key;
	size_t o = 0;
	for (size_t i = 0; i < klen && o + 5 < cap; i++) {
		if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\')
			buf[o++] = (char)k[i];
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x",
			                      k[i]);
	}
	if (o >= cap)
		o = cap - 1;
	buf[o] = 0;
	return buf;
}

/* ---- the writer of a key (FORMAT.md §2.4) -------------------------------- */

int lb__val_writer(const MDB_val *v, const char *what, uint64_t *writer)
{
	if (v->mv_size < LB__VPFX)
		return lb__fail(LB_ECORRUPT,
		                "%s: a value of %zu bytes has no writer", what,
		                v->mv_size);
	*writer = lb__get_be64(v->mv_data);
	return 0;
}

int lb__val_user(MDB_val *v, const char *what)
{
	uint64_t w;
	int rc = lb__val_writer(v, what, &w);
	if (rc < 0)
		return rc;
	v->mv_data = (uint8_t *)v->mv_data + LB__VPFX;
	v->mv_size -= LB__VPFX;
	return 0;
}

int lb__key_head(lb_db *db, MDB_txn *txn, const lb_table *t, const void *key,
                 size_t klen, uint64_t *head)
{
	MDB_val k = {klen, (void *)key}, v;
	uint8_t ik[LB__IKEY_MAX];
	int mrc = mdb_get(txn, t->dbi, &k, &v);
	*head = 0;
	if (mrc == 0)
		return lb__val_writer(&v, t->name, head);
	if (mrc != MDB_NOTFOUND)
		return lb__mdb_fail(mrc, t->name);
	size_t iklen = lb__ikey(ik, t->tid, key, klen);
	if (!iklen)
		return LB_ENOMEM;
	return lb__gone_get(db, txn, ik, iklen, head);
}

int lb__gone_get(lb_db *db, MDB_txn *txn, const void *ik, size_t iklen,
                 uint64_t *id)
{
	MDB_val k = {iklen, (void *)ik}, v;
	int mrc = mdb_get(txn, db->gone, &k, &v);
	*id = 0;
	if (mrc == MDB_NOTFOUND)
		return 0;
	if (mrc)
		return lb__mdb_fail(mrc, "_gone");
	if (v.mv_size != 8)
		return lb__fail(LB_ECORRUPT, "_gone: an entry of %zu bytes",
		                v.mv_size);
	*id = lb__get_be64(v.mv_data);
	return 0;
}
