/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: schema decoding (wal/schema.c, FORMAT.md §6).
 *
 * Properties: a refused schema gets LB_ECORRUPT or LB_EVERSION with a
 * detail; an accepted one holds its rules only on the types they apply to,
 * its patterns compiled, and is one the encoder accepts too through its
 * public view (the encoder is where a valid schema is defined), and
 * encoding it and decoding again gives the same schema.
 */
#include <string.h>

#include "_fuzz.h"
#include "wal/wal.h"

static int same_str(const char *a, const char *b)
{
	return !a == !b && (!a || strcmp(a, b) == 0);
}

static int same(const lb_wal_schema *a, const lb_wal_schema *b)
{
	if (a->has_schema != b->has_schema || a->closed != b->closed ||
	    a->nfields != b->nfields || a->key_fi != b->key_fi ||
	    !same_str(a->key_field, b->key_field))
		return 0;
	for (uint32_t i = 0; i < a->nfields; i++) {
		const lb_sfield *x = &a->fields[i], *y = &b->fields[i];
		if (x->nlen != y->nlen || memcmp(x->name, y->name, x->nlen) ||
		    x->type != y->type || x->flags != y->flags ||
		    x->max_len != y->max_len || !same_str(x->ref, y->ref) ||
		    x->nenum != y->nenum || !same_str(x->pattern, y->pattern) ||
		    !x->re != !y->re || x->format != y->format ||
		    x->has_min_max != y->has_min_max || x->min != y->min ||
		    x->max != y->max)
			return 0;
		for (uint32_t j = 0; j < x->nenum; j++)
			if (x->enum_lens[j] != y->enum_lens[j] ||
			    strcmp(x->enum_values[j], y->enum_values[j]) ||
			    x->enum_order[j] != y->enum_order[j])
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
	for (uint32_t i = 0; i < s.nfields; i++) {
		const lb_sfield *f = &s.fields[i];
		/* names may not hold NUL: the public API passes C strings */
		FUZZ_CHECK(strlen(f->name) == f->nlen);
		for (uint32_t j = 0; j < f->nenum; j++)
			FUZZ_CHECK(strlen(f->enum_values[j]) ==
			           f->enum_lens[j]);
		FUZZ_CHECK(!f->pattern == !f->re);
		/* rules only on the types they apply to */
		FUZZ_CHECK(!f->nenum || f->type == LB_STR || f->type == LB_INT);
		FUZZ_CHECK(!f->pattern || f->type == LB_STR);
		FUZZ_CHECK(!f->format || f->type == LB_STR);
		FUZZ_CHECK(!f->has_min_max || f->type == LB_INT ||
		           f->type == LB_FLOAT);
		/* a pattern and a format judge values without failing */
		if (f->re)
			FUZZ_CHECK(lb__pattern_match(f, f->name, f->nlen) >= 0);
		if (f->format)
			(void)lb__format_problem(f->format, f->name, f->nlen);
	}
	/* The public view (what lb_tables() hands out) encodes: the encoder
	 * accepts what the decoder accepts, to the same schema. */
	FUZZ_CHECK(!s.has_schema || s.view.nfields == s.nfields);
	lb__buf_init(&enc);
	rc = lb__schema_encode(s.has_schema ? &s.view : NULL, &enc);
	if (rc != 0)
		fprintf(stderr, "decoded but not encodable: %s\n", lb_errmsg());
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(lb__schema_decode(enc.data, enc.len, &s2) == 0);
	FUZZ_CHECK(same(&s, &s2));
	lb__schema_free(&s2);
	lb__buf_free(&enc);
	lb__schema_free(&s);
	return 0;
}
