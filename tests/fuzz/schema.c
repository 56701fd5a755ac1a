/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: schema decoding (wal/schema.c, FORMAT.md §6).
 *
 * Properties: a refused schema gets LB_ECORRUPT or LB_EVERSION with a
 * detail; an accepted one is one the encoder accepts too (the encoder is
 * where a valid schema is defined), and encoding it and decoding again
 * gives the same schema.
 */
#include <string.h>

#include "_fuzz.h"
#include "wal/wal.h"

static int same(const lb_wal_schema *a, const lb_wal_schema *b)
{
	if (a->has_schema != b->has_schema || a->closed != b->closed ||
	    a->nfields != b->nfields)
		return 0;
	for (uint32_t i = 0; i < a->nfields; i++) {
		const lb_sfield *x = &a->fields[i], *y = &b->fields[i];
		if (x->nlen != y->nlen || memcmp(x->name, y->name, x->nlen) ||
		    x->type != y->type || x->flags != y->flags ||
		    x->max_len != y->max_len || !x->ref != !y->ref ||
		    (x->ref && strcmp(x->ref, y->ref)))
			return 0;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lb_wal_schema s, s2;
	lb_buf enc;
	int rc = lb__schema_decode(data, size, &s);
	if (rc != 0) {
		FUZZ_CHECK(rc == LB_ECORRUPT || rc == LB_EVERSION ||
		           rc == LB_ENOMEM);
		FUZZ_CHECK(lb_errmsg()[0] != 0);
		FUZZ_CHECK(s.fields == NULL);
		return 0;
	}
	FUZZ_CHECK(s.nfields <= LB_SCHEMA_FIELDS_MAX);
	lb_field *f = calloc(s.nfields ? s.nfields : 1, sizeof *f);
	FUZZ_CHECK(f != NULL);
	for (uint32_t i = 0; i < s.nfields; i++) {
		/* names may not hold NUL: the public API passes C strings */
		FUZZ_CHECK(strlen(s.fields[i].name) == s.fields[i].nlen);
		f[i].name = s.fields[i].name;
		f[i].type = s.fields[i].type;
		f[i].flags = s.fields[i].flags;
		f[i].max_len = s.fields[i].max_len;
		f[i].ref = s.fields[i].ref;
	}
	lb_schema pub = {f, s.nfields, s.closed};
	lb__buf_init(&enc);
	rc = lb__schema_encode(s.has_schema ? &pub : NULL, &enc);
	if (rc != 0)
		fprintf(stderr, "decoded but not encodable: %s\n", lb_errmsg());
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(lb__schema_decode(enc.data, enc.len, &s2) == 0);
	FUZZ_CHECK(same(&s, &s2));
	lb__schema_free(&s2);
	lb__buf_free(&enc);
	free(f);
	lb__schema_free(&s);
	return 0;
}
