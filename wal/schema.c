/* SPDX-License-Identifier: MIT */
/*
 * schema.c: table schemas <-> bytes (FORMAT.md §6).
 *
 * The encoding is the after-image of a TABLE record and the value of
 * `_meta` schema/<name>, so encode() is the one place that decides what a
 * valid schema is: it refuses anything decode() would refuse. Whether a ref
 * names an existing table is not a codec question; the engine checks it.
 *
 * Like change records (§4), a schema is read accepting every msgpack width;
 * it is rejected, never partly used, when anything is out of place.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "wal/wal.h"

/* Length of the C string s, or max + 1 if it is longer than max. */
static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n])
		n++;
	return n;
}

/* Is [name, name + len) a valid field name? NULL if so, else why not. */
static const char *name_problem(const char *name, size_t len)
{
	if (len < 1)
		return "empty name";
	if (len > 255)
		return "name is over 255 bytes";
	if (memchr(name, 0, len))
		return "name holds a NUL byte";
	if (lb__utf8_count((const uint8_t *)name, len, NULL) != 0)
		return "name is not valid UTF-8";
	return NULL;
}

/* ---- encoding ------------------------------------------------------------ */

static int check_public(const lb_schema *s)
{
	size_t i, j, len, rlen;
	const char *why;

	if (s->nfields > LB_SCHEMA_FIELDS_MAX)
		return lb__fail(LB_EINVAL,
		                "schema has %zu fields, more than %d",
		                s->nfields, LB_SCHEMA_FIELDS_MAX);
	if (s->nfields && !s->fields)
		return lb__fail(LB_EINVAL,
		                "schema has %zu fields but no field array",
		                s->nfields);
	for (i = 0; i < s->nfields; i++) {
		const lb_field *f = &s->fields[i];

		if (!f->name)
			return lb__fail(LB_EINVAL, "field %zu: no name", i);
		len = bounded_len(f->name, 255);
		if ((why = name_problem(f->name, len)) != NULL)
			return lb__fail(LB_EINVAL, "field %zu '%.64s': %s", i,
			                f->name, why);
		if ((unsigned)f->type > (unsigned)LB_MAP)
			return lb__fail(LB_EINVAL,
			                "field %zu '%s': unknown type %d", i,
			                f->name, (int)f->type);
		if (f->flags & ~(unsigned)LB_REQUIRED)
			return lb__fail(
			        LB_EINVAL, "field %zu '%s': unknown flags 0x%x",
			        i, f->name, f->flags & ~(unsigned)LB_REQUIRED);
		if (f->ref) {
			rlen = bounded_len(f->ref, LB_TABLE_NAME_MAX);
			if (!lb__table_name_ok(f->ref, rlen))
				return lb__fail(
				        LB_EINVAL,
				        "field %zu '%s': ref '%.64s' is "
				        "not a table name (1..64 bytes of "
				        "[A-Za-z0-9_.-])",
				        i, f->name, f->ref);
			/* A key is a str or bin: a ref on another type could
			 * never hold a valid value. */
			if (f->type != LB_ANY && f->type != LB_STR &&
			    f->type != LB_BIN)
				return lb__fail(
				        LB_EINVAL,
				        "field %zu '%s': a ref field must "
				        "be of type any, str or bin",
				        i, f->name);
		}
		for (j = 0; j < i; j++)
			if (!strcmp(s->fields[j].name, f->name))
				return lb__fail(LB_EINVAL,
				                "field %zu '%s': same name as "
				                "field %zu",
				                i, f->name, j);
	}
	return 0;
}

int lb__schema_encode(const lb_schema *s, lb_buf *out)
{
	size_t i, len0 = out->len;
	int rc;

	if (s && (rc = check_public(s)) != 0)
		return rc;
	if ((rc = lb__mpw_array(out, 4)) != 0 ||
	    (rc = lb__mpw_uint(out, LB__SCHEMA_VERSION)) != 0 ||
	    (rc = lb__mpw_uint(out, s ? 1 : 0)) != 0 ||
	    (rc = lb__mpw_bool(out, s && s->closed)) != 0 ||
	    (rc = lb__mpw_array(out, s ? (uint32_t)s->nfields : 0)) != 0)
		goto fail;
	for (i = 0; s && i < s->nfields; i++) {
		const lb_field *f = &s->fields[i];

		if ((rc = lb__mpw_array(out, 5)) != 0 ||
		    (rc = lb__mpw_str(out, f->name, strlen(f->name))) != 0 ||
		    (rc = lb__mpw_uint(out, (uint64_t)f->type)) != 0 ||
		    (rc = lb__mpw_uint(out, f->flags)) != 0 ||
		    (rc = lb__mpw_uint(out, f->max_len)) != 0 ||
		    (rc = f->ref ? lb__mpw_str(out, f->ref, strlen(f->ref))
		                 : lb__mpw_nil(out)) != 0)
			goto fail;
	}
	return 0;
fail:
	out->len = len0;
	return rc;
}

/* ---- decoding ------------------------------------------------------------ */

/* A cursor failure: prefix the cursor's detail with where it happened. */
static int mp_fail(int rc, long field, const char *what)
{
	if (field < 0)
		return lb__fail(rc, "schema: %s: %s", what, lb_errmsg());
	return lb__fail(rc, "schema: field %ld: %s: %s", field, what,
	                lb_errmsg());
}

static char *dup_str(const char *s, uint32_t len)
{
	char *p = malloc((size_t)len + 1);

	if (p) {
		memcpy(p, s, len);
		p[len] = '\0';
	}
	return p;
}

static int decode_field(lb_mp *m, lb_wal_schema *out, uint32_t i)
{
	lb_sfield *f = &out->fields[i];
	const char *s, *why;
	uint64_t v;
	uint32_t n, len, j;
	int rc;

	if ((rc = lb__mp_array(m, &n)) != 0)
		return mp_fail(rc, i, "header");
	if (n != 5)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32 ": array of %" PRIu32
		                " items, not 5",
		                i, n);
	if ((rc = lb__mp_str(m, &s, &len)) != 0)
		return mp_fail(rc, i, "name");
	if ((why = name_problem(s, len)) != NULL)
		return lb__fail(LB_ECORRUPT, "schema: field %" PRIu32 ": %s", i,
		                why);
	for (j = 0; j < i; j++)
		if (out->fields[j].nlen == len &&
		    !memcmp(out->fields[j].name, s, len))
			return lb__fail(LB_ECORRUPT,
			                "schema: field %" PRIu32
			                " '%.*s': same name as field %" PRIu32,
			                i, (int)len, s, j);
	if (!(f->name = dup_str(s, len)))
		return lb__fail(LB_ENOMEM, "cannot allocate a field name");
	f->nlen = len;
	if ((rc = lb__mp_uint(m, &v)) != 0)
		return mp_fail(rc, i, "type");
	if (v > LB_MAP)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': unknown type %llu",
		                i, f->name, (unsigned long long)v);
	f->type = (lb_type)v;
	if ((rc = lb__mp_uint(m, &v)) != 0)
		return mp_fail(rc, i, "flags");
	if (v & ~(uint64_t)LB_REQUIRED)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': unknown flags 0x%llx",
		                i, f->name, (unsigned long long)v);
	f->flags = (unsigned)v;
	if ((rc = lb__mp_uint(m, &v)) != 0)
		return mp_fail(rc, i, "max_len");
	if (v > UINT32_MAX)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': max_len %llu is over 2^32 - 1",
		                i, f->name, (unsigned long long)v);
	f->max_len = (uint32_t)v;
	if (lb__mp_peek(m) == LB_MP_NIL)
		return lb__mp_nil(m);
	if ((rc = lb__mp_str(m, &s, &len)) != 0)
		return mp_fail(rc, i, "ref");
	if (!lb__table_name_ok(s, len))
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': ref is not a table name",
		                i, f->name);
	/* As the encoder: only a field that can hold a key may be a ref. */
	if (f->type != LB_ANY && f->type != LB_STR && f->type != LB_BIN)
		return lb__fail(LB_ECORRUPT,
		                "schema: field %" PRIu32
		                " '%s': a ref on a field of type %d",
		                i, f->name, (int)f->type);

	if (!(f->ref = dup_str(s, len)))
		return lb__fail(LB_ENOMEM, "cannot allocate a ref name");
	return 0;
}

static int decode(lb_mp *m, lb_wal_schema *out)
{
	uint64_t ver, kind;
	uint32_t n, i;
	int rc;

	if ((rc = lb__mp_array(m, &n)) != 0)
		return mp_fail(rc, -1, "top level");
	/* The version first: a newer one may change the arity. */
	if ((rc = lb__mp_uint(m, &ver)) != 0)
		return mp_fail(rc, -1, "version");
	if (ver > LB__SCHEMA_VERSION)
		return lb__fail(LB_EVERSION,
		                "schema version %llu is newer than this "
		                "library's (%u)",
		                (unsigned long long)ver, LB__SCHEMA_VERSION);
	if (ver == 0)
		return lb__fail(LB_ECORRUPT, "schema version is 0");
	if (n != 4)
		return lb__fail(LB_ECORRUPT,
		                "schema: array of %" PRIu32 " items, not 4", n);
	if ((rc = lb__mp_uint(m, &kind)) != 0)
		return mp_fail(rc, -1, "kind");
	if (kind > 1)
		return lb__fail(LB_ECORRUPT, "schema: unknown kind %llu",
		                (unsigned long long)kind);
	out->has_schema = (int)kind;
	if ((rc = lb__mp_bool(m, &out->closed)) != 0)
		return mp_fail(rc, -1, "closed");
	if ((rc = lb__mp_array(m, &n)) != 0)
		return mp_fail(rc, -1, "fields");
	if (n > LB_SCHEMA_FIELDS_MAX)
		return lb__fail(LB_ECORRUPT,
		                "schema: %" PRIu32 " fields, more than %d", n,
		                LB_SCHEMA_FIELDS_MAX);
	if (!kind && (n || out->closed))
		return lb__fail(
		        LB_ECORRUPT,
		        "schema: an opaque table has fields or is closed");
	if (n && !(out->fields = calloc(n, sizeof *out->fields)))
		return lb__fail(LB_ENOMEM, "cannot allocate %" PRIu32 " fields",
		                n);
	for (i = 0; i < n; i++) {
		out->nfields = i + 1; /* so free() sees what was allocated */
		if ((rc = decode_field(m, out, i)) != 0)
			return rc;
	}
	if (m->p != m->end)
		return lb__fail(LB_ECORRUPT,
		                "schema: %zu bytes follow its last item",
		                (size_t)(m->end - m->p));
	return 0;
}

int lb__schema_decode(const void *p, size_t len, lb_wal_schema *out)
{
	lb_mp m;
	int rc;

	memset(out, 0, sizeof *out);
	if (!p)
		return lb__fail(LB_ECORRUPT, "schema: no bytes");
	m.p = p;
	m.end = m.p + len;
	if ((rc = decode(&m, out)) != 0)
		lb__schema_free(out);
	return rc;
}

void lb__schema_free(lb_wal_schema *s)
{
	uint32_t i;

	if (!s)
		return;
	for (i = 0; i < s->nfields; i++) {
		free(s->fields[i].name);
		free(s->fields[i].ref);
	}
	free(s->fields);
	memset(s, 0, sizeof *s);
}
