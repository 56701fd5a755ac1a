/* SPDX-License-Identifier: MIT */
/*
 * tests/wal/schema.c: table schemas (wal/schema.c), FORMAT.md §6.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../helpers.h"
#include "wal/wal.h"

static int decode_bytes(const void *p, size_t n, lb_wal_schema *s)
{
	uint8_t *q = malloc(n ? n : 1); /* exact size, for ASan */
	int rc;

	if (n)
		memcpy(q, p, n);
	rc = lb__schema_decode(q, n, s);
	free(q);
	if (rc != 0) {
		assert_int_equal(s->nfields, 0);
		assert_null(s->fields);
	}
	return rc;
}

#define DECODE(s, ...)                                                         \
	decode_bytes((const uint8_t[]){__VA_ARGS__},                           \
	             sizeof((const uint8_t[]){__VA_ARGS__}), (s))

static void test_wal_schema__opaque(void **state)
{
	lb_wal_schema s;
	lb_buf b;
	(void)state;

	lb__buf_init(&b);
	assert_int_equal(lb__schema_encode(NULL, &b), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "\x94\x01\x00\xc2\x90", 5);
	assert_int_equal(lb__schema_decode(b.data, b.len, &s), 0);
	assert_int_equal(s.has_schema, 0);
	assert_int_equal(s.closed, 0);
	assert_int_equal(s.nfields, 0);
	assert_null(s.fields);
	lb__schema_free(&s);
	lb__schema_free(&s);
	lb__schema_free(NULL);
	lb__buf_free(&b);
}

/* Written from §6 by hand. */
static const uint8_t golden[] = {
        0x94, 0x01, 0x01, 0xc3, 0x92,           /* [1, 1, true, [2 */
        0x95, 0xa4, 'd',  'a',  't',  'e',      /*  ["date", */
        0x05, 0x01, 0x0a, 0xc0,                 /*   STR, REQ, 10, nil] */
        0x95, 0xa5, 'o',  'w',  'n',  'e', 'r', /*  ["owner", */
        0x05, 0x00, 0x00, 0xa5, 'u',  's', 'e', /*   STR, 0, 0, "users"] */
        'r',  's',
};

static void test_wal_schema__golden(void **state)
{
	const lb_field f[] = {
	        {"date", LB_STR, LB_REQUIRED, 10, NULL},
	        {"owner", LB_STR, 0, 0, "users"},
	};
	const lb_schema sc = {f, 2, 1};
	lb_wal_schema s;
	lb_buf b;
	(void)state;

	lb__buf_init(&b);
	assert_int_equal(lb__schema_encode(&sc, &b), 0);
	assert_int_equal(b.len, sizeof golden);
	assert_memory_equal(b.data, golden, sizeof golden);
	assert_int_equal(decode_bytes(golden, sizeof golden, &s), 0);
	assert_int_equal(s.has_schema, 1);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.nfields, 2);
	assert_string_equal(s.fields[0].name, "date");
	assert_int_equal(s.fields[0].nlen, 4);
	assert_int_equal(s.fields[0].type, LB_STR);
	assert_int_equal(s.fields[0].flags, LB_REQUIRED);
	assert_int_equal(s.fields[0].max_len, 10);
	assert_null(s.fields[0].ref);
	assert_string_equal(s.fields[1].name, "owner");
	assert_string_equal(s.fields[1].ref, "users");
	lb__schema_free(&s);
	lb__buf_free(&b);
}

static void test_wal_schema__roundtrip(void **state)
{
	lb_field f[LB_SCHEMA_FIELDS_MAX];
	char names[LB_SCHEMA_FIELDS_MAX][300];
	size_t n, i;
	(void)state;

	for (i = 0; i < LB_SCHEMA_FIELDS_MAX; i++) {
		if (i == 3) {
			memset(names[i], 'n', 255); /* the longest name */
			names[i][255] = 0;
		} else if (i == 4) {
			strcpy(names[i], "\xc3\xa9t\xc3\xa9"); /* UTF-8 */
		} else {
			snprintf(names[i], sizeof names[i], "f%zu", i);
		}
		f[i].name = names[i];
		f[i].type = (lb_type)(i % 9);
		f[i].flags = i % 2 ? LB_REQUIRED : 0;
		f[i].max_len = i == 7 ? UINT32_MAX : (uint32_t)(i * 1000);
		/* refs only on the types a key can have */
		f[i].ref = (f[i].type != LB_ANY && f[i].type != LB_STR &&
		            f[i].type != LB_BIN) ||
		                           i % 5 == 0
		                   ? NULL
		           : i % 5 == 1 ? "users"
		                        : "A-z_0.9-1234567890123456789012345678"
		                          "901234567890123456789012345";
	}
	for (n = 0; n <= LB_SCHEMA_FIELDS_MAX; n += n < 10 ? 1 : 123) {
		int closed;
		for (closed = 0; closed <= 1; closed++) {
			lb_schema sc = {f, n, closed};
			lb_wal_schema s;
			lb_buf b;

			lb__buf_init(&b);
			assert_int_equal(lb__schema_encode(&sc, &b), 0);
			assert_int_equal(decode_bytes(b.data, b.len, &s), 0);
			assert_int_equal(s.has_schema, 1);
			assert_int_equal(s.closed, closed);
			assert_int_equal(s.nfields, n);
			for (i = 0; i < n; i++) {
				assert_string_equal(s.fields[i].name,
				                    f[i].name);
				assert_int_equal(s.fields[i].nlen,
				                 strlen(f[i].name));
				assert_int_equal(s.fields[i].type, f[i].type);
				assert_int_equal(s.fields[i].flags, f[i].flags);
				assert_int_equal(s.fields[i].max_len,
				                 f[i].max_len);
				if (f[i].ref)
					assert_string_equal(s.fields[i].ref,
					                    f[i].ref);
				else
					assert_null(s.fields[i].ref);
			}
			lb__schema_free(&s);
			lb__buf_free(&b);
		}
	}
}

/* Every rejection of encode, with a message naming the field. */
static void test_wal_schema__encode_rejects(void **state)
{
	static const struct {
		lb_field f;
		const char *msg;
	} bad[] = {
	        {{NULL, LB_INT, 0, 0, NULL}, "field 2: no name"},
	        {{"", LB_INT, 0, 0, NULL}, "field 2 '': empty name"},
	        {{"d\xff", LB_INT, 0, 0, NULL}, "not valid UTF-8"},
	        {{"date", (lb_type)42, 0, 0, NULL},
	         "field 2 'date': unknown type 42"},
	        {{"date", (lb_type)-1, 0, 0, NULL}, "unknown type -1"},
	        {{"date", (lb_type)9, 0, 0, NULL}, "unknown type 9"},
	        {{"date", LB_STR, 2, 0, NULL}, "unknown flags 0x2"},
	        {{"date", LB_STR, 0x80000001u, 0, NULL}, "unknown flags"},
	        {{"date", LB_STR, 0, 0, ""}, "ref '' is not a table name"},
	        {{"date", LB_STR, 0, 0, "a/b"}, "ref 'a/b'"},
	        {{"date", LB_STR, 0, 0,
	          "x1234567890123456789012345678901234567890123456789012345678"
	          "901234"},
	         "is not a table name"},
	        {{"date", LB_INT, 0, 0, "hearings"},
	         "a ref field must be of type any, str or bin"},
	        {{"date", LB_MAP, 0, 0, "hearings"},
	         "a ref field must be of type any, str or bin"},
	        {{"a", LB_STR, 0, 0, NULL},
	         "field 2 'a': same name as field 0"},
	};
	char longname[300];
	lb_field f[3] = {{"a", LB_INT, 0, 0, NULL},
	                 {"b", LB_INT, 0, 0, NULL},
	                 {"c", LB_INT, 0, 0, NULL}};
	lb_schema sc = {f, 3, 0};
	lb_buf b;
	size_t i;
	(void)state;

	lb__buf_init(&b);
	assert_int_equal(lb__buf_append(&b, "q", 1), 0);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		f[2] = bad[i].f;
		if (lb__schema_encode(&sc, &b) != LB_EINVAL)
			fail_msg("case %zu accepted", i);
		if (!strstr(lb_errmsg(), bad[i].msg))
			fail_msg("case %zu: '%s' lacks '%s'", i, lb_errmsg(),
			         bad[i].msg);
		assert_int_equal(b.len, 1);
	}
	memset(longname, 'x', 256);
	longname[256] = 0;
	f[2].name = longname;
	f[2].ref = NULL;
	f[2].type = LB_INT;
	f[2].flags = 0;
	assert_int_equal(lb__schema_encode(&sc, &b), LB_EINVAL);
	assert_non_null(strstr(lb_errmsg(), "over 255 bytes"));
	longname[255] = 0;
	assert_int_equal(lb__schema_encode(&sc, &b), 0);
	assert_memory_equal(b.data, "q", 1); /* appended */
	/* counts */
	sc.fields = NULL;
	assert_int_equal(lb__schema_encode(&sc, &b), LB_EINVAL);
	assert_non_null(strstr(lb_errmsg(), "no field array"));
	sc.fields = f;
	sc.nfields = LB_SCHEMA_FIELDS_MAX + 1;
	assert_int_equal(lb__schema_encode(&sc, &b), LB_EINVAL);
	assert_non_null(strstr(lb_errmsg(), "257 fields"));
	sc.nfields = 0;
	sc.fields = NULL;
	assert_int_equal(lb__schema_encode(&sc, &b), 0);
	lb__buf_free(&b);
}

static void test_wal_schema__decode_rejects(void **state)
{
	lb_wal_schema s;
	(void)state;

	/* the good ones these are variations of */
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x00, 0xc2, 0x90), 0);
	lb__schema_free(&s);
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x01, 0xc2, 0x91, 0x95, 0xa1,
	                        'a', 0x00, 0x00, 0x00, 0xc0),
	                 0);
	lb__schema_free(&s);
	/* versions */
	assert_int_equal(DECODE(&s, 0x94, 0x00, 0x00, 0xc2, 0x90), LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x94, 0x02, 0x00, 0xc2, 0x90), LB_EVERSION);
	assert_non_null(strstr(lb_errmsg(), "version 2 is newer"));
	assert_int_equal(DECODE(&s, 0x91, 0x02), LB_EVERSION);
	assert_int_equal(DECODE(&s, 0x94, 0xa1, '1', 0x00, 0xc2, 0x90),
	                 LB_ECORRUPT);
	/* shape */
	assert_int_equal(DECODE(&s, 0x93, 0x01, 0x00, 0xc2), LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x95, 0x01, 0x00, 0xc2, 0x90, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x84, 0x01, 0x00, 0xc2, 0x90, 0xc0, 0xc0,
	                        0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x02, 0xc2, 0x90), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "unknown kind 2"));
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x00, 0x00, 0x90), LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x00, 0xc2, 0xc0), LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x00, 0xc2, 0x90, 0x00),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "1 bytes follow"));
	/* opaque tables have no fields and are not closed */
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x00, 0xc3, 0x90), LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x00, 0xc2, 0x91, 0x95, 0xa1,
	                        'a', 0x00, 0x00, 0x00, 0xc0),
	                 LB_ECORRUPT);
	/* fields */
#define FIELD(...) DECODE(&s, 0x94, 0x01, 0x01, 0xc2, 0x91, __VA_ARGS__)
	assert_int_equal(FIELD(0x94, 0xa1, 'a', 0x00, 0x00, 0x00), LB_ECORRUPT);
	assert_int_equal(FIELD(0x96, 0xa1, 'a', 0x00, 0x00, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(FIELD(0x95, 0xa0, 0x00, 0x00, 0x00, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "field 0: empty name"));
	assert_int_equal(FIELD(0x95, 0xc4, 1, 'a', 0x00, 0x00, 0x00, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(FIELD(0x95, 0xa2, 'a', 0x00, 0x00, 0x00, 0x00, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "NUL"));
	assert_int_equal(FIELD(0x95, 0xa2, 0xed, 0xa0, 0x00, 0x00, 0x00, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "UTF-8"));
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0x09, 0x00, 0x00, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "field 0 'a': unknown type 9"));
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0xff, 0x00, 0x00, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0x08, 0x02, 0x00, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "unknown flags 0x2"));
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0x08, 0x01, 0xce, 0xff, 0xff,
	                       0xff, 0xff, 0xc0),
	                 0);
	lb__schema_free(&s);
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0x08, 0x01, 0xcf, 0, 0, 0, 1, 0,
	                       0, 0, 0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "max_len"));
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0x05, 0x01, 0x00, 0xa0),
	                 LB_ECORRUPT);
	assert_int_equal(
	        FIELD(0x95, 0xa1, 'a', 0x05, 0x01, 0x00, 0xa3, 'a', '/', 'b'),
	        LB_ECORRUPT);
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0x05, 0x01, 0x00, 0xc4, 1, 'u'),
	                 LB_ECORRUPT);
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0x05, 0x01, 0x00, 0xc2),
	                 LB_ECORRUPT);
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0x05, 0x01, 0x00, 0xa1, 'u'),
	                 0);
	lb__schema_free(&s);
	/* a ref on a field that cannot hold a key (here a map) */
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0x08, 0x01, 0x00, 0xa1, 'u'),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "a ref on a field of type 8"));
#undef FIELD
	/* duplicates */
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x01, 0xc2, 0x92, 0x95, 0xa1,
	                        'a', 0x00, 0x00, 0x00, 0xc0, 0x95, 0xa1, 'a',
	                        0x01, 0x00, 0x00, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(
	        strstr(lb_errmsg(), "field 1 'a': same name as field 0"));
	/* NULL input */
	assert_int_equal(lb__schema_decode(NULL, 0, &s), LB_ECORRUPT);
}

/* Long names and refs, and too many fields. */
static void test_wal_schema__decode_limits(void **state)
{
	uint8_t buf[8 + 257 * 6];
	lb_wal_schema s;
	size_t n = 0, i;
	(void)state;

	/* 256-byte name in str 16 */
	buf[n++] = 0x94;
	buf[n++] = 0x01;
	buf[n++] = 0x01;
	buf[n++] = 0xc2;
	buf[n++] = 0x91;
	buf[n++] = 0x95;
	buf[n++] = 0xda;
	buf[n++] = 0x01;
	buf[n++] = 0x00;
	{
		uint8_t *p = malloc(n + 256 + 4);
		memcpy(p, buf, n);
		memset(p + n, 'x', 256);
		memcpy(p + n + 256, "\x00\x00\x00\xc0", 4);
		assert_int_equal(decode_bytes(p, n + 260, &s), LB_ECORRUPT);
		assert_non_null(strstr(lb_errmsg(), "over 255"));
		/* 255 bytes in str 8 is fine */
		p[6] = 0xd9;
		p[7] = 0xff;
		memmove(p + 8, p + 10, 255 + 4); /* drop one x */
		assert_int_equal(decode_bytes(p, n - 1 + 255 + 4, &s), 0);
		assert_int_equal(s.fields[0].nlen, 255);
		lb__schema_free(&s);
		free(p);
	}
	/* 257 fields: refused on the count, before allocating */
	n = 0;
	buf[n++] = 0x94;
	buf[n++] = 0x01;
	buf[n++] = 0x01;
	buf[n++] = 0xc2;
	buf[n++] = 0xdc;
	buf[n++] = 0x01;
	buf[n++] = 0x01;
	for (i = 0; i < 257; i++) {
		buf[n++] = 0x95;
		buf[n++] = 0xa1;
		buf[n++] = (uint8_t)i; /* duplicates, never reached */
		buf[n++] = 0x00;
		buf[n++] = 0x00;
		buf[n++] = 0x00;
	}
	assert_int_equal(decode_bytes(buf, n, &s), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "257 fields"));
	/* 2^32 - 1 fields claimed in a few bytes */
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x01, 0xc2, 0xdd, 0xff, 0xff,
	                        0xff, 0xff, 0xc0),
	                 LB_ECORRUPT);
}

/* Wide msgpack forms are accepted, as in change records. */
static void test_wal_schema__any_width(void **state)
{
	lb_wal_schema s;
	(void)state;

	assert_int_equal(DECODE(&s, 0xdc, 0x00, 0x04, 0xcf, 0, 0, 0, 0, 0, 0, 0,
	                        1, 0xcc, 0x01, 0xc3, 0xdd, 0, 0, 0, 1, 0xdc,
	                        0x00, 0x05, 0xdb, 0, 0, 0, 1, 'a', 0xd0, 0x05,
	                        0xcd, 0x00, 0x01, 0xce, 0, 0, 0, 9, 0xd9, 1,
	                        'u'),
	                 0);
	assert_int_equal(s.nfields, 1);
	assert_int_equal(s.fields[0].type, LB_STR);
	assert_int_equal(s.fields[0].max_len, 9);
	assert_string_equal(s.fields[0].ref, "u");
	lb__schema_free(&s);
}

/* Every truncation of a schema is refused, and every single-byte change
 * is refused or decodes to a schema that obeys the rules. */
static void test_wal_schema__damage(void **state)
{
	size_t k, i;
	lb_wal_schema s;
	(void)state;

	for (k = 0; k < sizeof golden; k++)
		assert_int_equal(decode_bytes(golden, k, &s), LB_ECORRUPT);
	for (i = 0; i < sizeof golden; i++) {
		unsigned mask;
		for (mask = 1; mask < 256; mask++) {
			uint8_t copy[sizeof golden];
			int rc;
			memcpy(copy, golden, sizeof golden);
			copy[i] ^= (uint8_t)mask;
			rc = decode_bytes(copy, sizeof copy, &s);
			assert_true(rc == 0 || rc == LB_ECORRUPT ||
			            (rc == LB_EVERSION && i == 1));
			if (rc == 0) {
				uint32_t f;
				for (f = 0; f < s.nfields; f++) {
					assert_true(s.fields[f].type <= LB_MAP);
					assert_true(s.fields[f].nlen >= 1);
					assert_true(s.fields[f].flags <= 1);
				}
				lb__schema_free(&s);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_wal_schema__opaque),
	        cmocka_unit_test(test_wal_schema__golden),
	        cmocka_unit_test(test_wal_schema__roundtrip),
	        cmocka_unit_test(test_wal_schema__encode_rejects),
	        cmocka_unit_test(test_wal_schema__decode_rejects),
	        cmocka_unit_test(test_wal_schema__decode_limits),
	        cmocka_unit_test(test_wal_schema__any_width),
	        cmocka_unit_test(test_wal_schema__damage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
