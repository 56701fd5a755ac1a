/* SPDX-License-Identifier: MIT */
/*
 * tests/wal/schema.c: table schemas (wal/schema.c), FORMAT.md §6: the
 * encoding (golden bytes written from §6 by hand), the round trip through
 * the public view, every rejection of the encoder and of the decoder
 * (fields and their rules: enum, pattern, format, min and max, nullable,
 * key_field), patterns (what is refused before regcomp(), whole-value
 * matching, the C locale) and RFC 3339 dates and date-times.
 */
#include <locale.h>
#include <math.h>
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
		assert_null(s->pub);
		assert_null(s->key_field);
	}
	return rc;
}

#define DECODE(s, ...)                                                         \
	decode_bytes((const uint8_t[]){__VA_ARGS__},                           \
	             sizeof((const uint8_t[]){__VA_ARGS__}), (s))

/* One field, then key_field nil. */
#define FIELD(...) DECODE(&s, 0x95, 0x02, 0x01, 0xc2, 0x91, __VA_ARGS__, 0xc0)
/* Field "a" of type t, flags 0, max_len 0, no ref, then the rules. */
#define RULES(t, ...) FIELD(0x9a, 0xa1, 'a', (t), 0x00, 0x00, 0xc0, __VA_ARGS__)
#define F64_1 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0        /* 1.0 */
#define F64_200_5 0xcb, 0x40, 0x69, 0x10, 0, 0, 0, 0, 0 /* 200.5 */

/* Does a and b say the same (the public view against what was given)? */
static void assert_field_eq(const lb_field *a, const lb_field *b)
{
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->flags, b->flags);
	assert_int_equal(a->max_len, b->max_len);
	if (b->ref)
		assert_string_equal(a->ref, b->ref);
	else
		assert_null(a->ref);
	assert_int_equal(a->nenum, b->nenum);
	if (!b->nenum)
		assert_null(a->enum_values);
	for (size_t j = 0; j < b->nenum; j++)
		assert_string_equal(a->enum_values[j], b->enum_values[j]);
	if (b->pattern)
		assert_string_equal(a->pattern, b->pattern);
	else
		assert_null(a->pattern);
	assert_int_equal(a->format, b->format);
	assert_int_equal(a->has_min_max, b->has_min_max);
	if (b->has_min_max & LB_HAS_MIN)
		assert_true(a->min == b->min);
	else
		assert_true(a->min == 0);
	if (b->has_min_max & LB_HAS_MAX)
		assert_true(a->max == b->max);
	else
		assert_true(a->max == 0);
}

static void test_wal_schema__opaque(void **state)
{
	lb_wal_schema s;
	lb_buf b;
	(void)state;

	lb__buf_init(&b);
	assert_int_equal(lb__schema_encode(NULL, &b), 0);
	assert_int_equal(b.len, 6);
	assert_memory_equal(b.data, "\x95\x02\x00\xc2\x90\xc0", 6);
	assert_int_equal(lb__schema_decode(b.data, b.len, &s), 0);
	assert_int_equal(s.has_schema, 0);
	assert_int_equal(s.closed, 0);
	assert_int_equal(s.nfields, 0);
	assert_null(s.fields);
	assert_null(s.key_field);
	assert_int_equal(s.key_fi, -1);
	assert_null(s.view.fields);
	lb__schema_free(&s);
	lb__schema_free(&s);
	lb__schema_free(NULL);
	lb__buf_free(&b);
}

/* Written from §6 by hand. */
static const uint8_t golden[] = {
        0x95, 0x02, 0x01, 0xc3, 0x94, /* [2, 1, true, [4 */
        /* ["date", STR, REQ, 10, nil, nil, nil, DATE, nil, nil] */
        0x9a, 0xa4, 'd', 'a', 't', 'e', 0x05, 0x01, 0x0a, 0xc0, 0xc0, 0xc0,
        0x01, 0xc0, 0xc0,
        /* ["owner", STR, 0, 0, "users", nil, nil, 0, nil, nil] */
        0x9a, 0xa5, 'o', 'w', 'n', 'e', 'r', 0x05, 0x00, 0x00, 0xa5, 'u', 's',
        'e', 'r', 's', 0xc0, 0xc0, 0x00, 0xc0, 0xc0,
        /* ["chamber", STR, NULLABLE, 0, nil, ["House", "Senate"],
         *  "[A-Z][a-z]+", 0, nil, nil] */
        0x9a, 0xa7, 'c', 'h', 'a', 'm', 'b', 'e', 'r', 0x05, 0x02, 0x00, 0xc0,
        0x92, 0xa5, 'H', 'o', 'u', 's', 'e', 0xa6, 'S', 'e', 'n', 'a', 't', 'e',
        0xab, '[', 'A', '-', 'Z', ']', '[', 'a', '-', 'z', ']', '+', 0x00, 0xc0,
        0xc0,
        /* ["congress", INT, REQ | NULLABLE, 0, nil, [118, -1], nil, 0,
         *  1.0, 200.5] */
        0x9a, 0xa8, 'c', 'o', 'n', 'g', 'r', 'e', 's', 's', 0x03, 0x03, 0x00,
        0xc0, 0x92, 0x76, 0xff, 0xc0, 0x00, F64_1, F64_200_5,
        /* key_field "owner"] */
        0xa5, 'o', 'w', 'n', 'e', 'r'};

static const char *const chambers[] = {"House", "Senate"};
static const char *const congresses[] = {"118", "-1"};
static const lb_field golden_fields[] = {
        {"date", LB_STR, LB_REQUIRED, 10, NULL, NULL, 0, NULL, LB_FMT_DATE},
        {"owner", LB_STR, 0, 0, "users"},
        {"chamber", LB_STR, LB_NULLABLE, 0, NULL, chambers, 2, "[A-Z][a-z]+"},
        {"congress", LB_INT, LB_REQUIRED | LB_NULLABLE, 0, NULL, congresses, 2,
         NULL, 0, 1.0, 200.5, LB_HAS_MIN | LB_HAS_MAX},
};

static void test_wal_schema__golden(void **state)
{
	const lb_schema sc = {golden_fields, 4, 1, "owner"};
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
	assert_int_equal(s.nfields, 4);
	assert_string_equal(s.fields[0].name, "date");
	assert_int_equal(s.fields[0].nlen, 4);
	assert_int_equal(s.fields[0].type, LB_STR);
	assert_int_equal(s.fields[0].flags, LB_REQUIRED);
	assert_int_equal(s.fields[0].max_len, 10);
	assert_int_equal(s.fields[0].format, LB_FMT_DATE);
	assert_null(s.fields[0].ref);
	assert_null(s.fields[0].re);
	assert_string_equal(s.fields[1].ref, "users");
	assert_non_null(s.fields[2].re);
	assert_int_equal(s.fields[2].nenum, 2);
	assert_int_equal(s.fields[2].enum_lens[1], 6);
	assert_int_equal(s.fields[3].enum_ints[0], 118);
	assert_int_equal(s.fields[3].enum_ints[1], -1);
	/* ascending: -1 before 118 */
	assert_int_equal(s.fields[3].enum_order[0], 1);
	assert_string_equal(s.key_field, "owner");
	assert_int_equal(s.key_fi, 1);
	/* the public view says what was given */
	assert_ptr_equal(s.view.fields, s.pub);
	assert_int_equal(s.view.nfields, 4);
	assert_int_equal(s.view.closed, 1);
	assert_string_equal(s.view.key_field, "owner");
	for (int i = 0; i < 4; i++)
		assert_field_eq(&s.view.fields[i], &golden_fields[i]);
	/* and encodes to the same bytes */
	b.len = 0;
	assert_int_equal(lb__schema_encode(&s.view, &b), 0);
	assert_int_equal(b.len, sizeof golden);
	assert_memory_equal(b.data, golden, sizeof golden);
	lb__schema_free(&s);
	lb__buf_free(&b);
}

static const char *const str_enum[] = {
        "", "a", "b", "\xc3\xa9t\xc3\xa9", "longer value", "A"};
static const char *const int_enum[] = {"0", "-9223372036854775808",
                                       "9223372036854775807", "42", "-42"};
static const char *const patterns[] = {"[0-9]{4}", "(a|b)*c", "x",
                                       "[[:alpha:]_][[:alnum:]_]*"};

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
		memset(&f[i], 0, sizeof f[i]);
		f[i].name = names[i];
		f[i].type = (lb_type)(i % 9);
		f[i].flags = (unsigned)(i % 4);
		f[i].max_len = i == 7 ? UINT32_MAX : (uint32_t)(i * 1000);
		/* refs only on the types a key can have */
		f[i].ref = (f[i].type != LB_ANY && f[i].type != LB_STR &&
		            f[i].type != LB_BIN) ||
		                           i % 5 == 0
		                   ? NULL
		           : i % 5 == 1 ? "users"
		                        : "A-z_0.9-1234567890123456789012345678"
		                          "901234567890123456789012345";
		/* rules on the types they apply to, in varied mixes */
		if (f[i].type == LB_STR) {
			if (i % 3) {
				f[i].enum_values = str_enum + i % 2;
				f[i].nenum = 6 - i % 2 - i % 3;
			}
			if (i % 4 != 1)
				f[i].pattern = patterns[i % 4];
			f[i].format = (int)(i % 3);
		}
		if (f[i].type == LB_INT && i % 2) {
			f[i].enum_values = int_enum;
			f[i].nenum = 1 + i % 5;
		}
		if (f[i].type == LB_INT || f[i].type == LB_FLOAT) {
			f[i].has_min_max = (unsigned)(i % 4);
			f[i].min = -1e300 + (double)i;
			f[i].max = (double)i / 3;
		}
	}
	for (n = 0; n <= LB_SCHEMA_FIELDS_MAX; n += n < 10 ? 1 : 123) {
		int closed;
		for (closed = 0; closed <= 1; closed++) {
			lb_schema sc = {f, n, closed, n > 5 ? names[5] : NULL};
			lb_wal_schema s;
			lb_buf b, b2;

			lb__buf_init(&b);
			lb__buf_init(&b2);
			assert_int_equal(lb__schema_encode(&sc, &b), 0);
			assert_int_equal(decode_bytes(b.data, b.len, &s), 0);
			assert_int_equal(s.has_schema, 1);
			assert_int_equal(s.closed, closed);
			assert_int_equal(s.nfields, n);
			assert_int_equal(s.key_fi, n > 5 ? 5 : -1);
			for (i = 0; i < n; i++) {
				assert_int_equal(s.fields[i].nlen,
				                 strlen(f[i].name));
				assert_field_eq(&s.view.fields[i], &f[i]);
				assert_int_equal(s.fields[i].re != NULL,
				                 f[i].pattern != NULL);
			}
			/* the view encodes to the same bytes */
			assert_int_equal(lb__schema_encode(&s.view, &b2), 0);
			assert_int_equal(b2.len, b.len);
			assert_memory_equal(b2.data, b.data, b.len);
			lb__schema_free(&s);
			lb__buf_free(&b);
			lb__buf_free(&b2);
		}
	}
}

/* Bounds that mean the same encode the same: -0 is 0, and a bound that is
 * not set is not written, whatever min or max holds. */
static void test_wal_schema__canonical_bounds(void **state)
{
	lb_field f = {"x", LB_FLOAT, 0, 0, NULL};
	lb_schema sc = {&f, 1, 0};
	lb_buf a, b;
	(void)state;

	lb__buf_init(&a);
	lb__buf_init(&b);
	f.has_min_max = LB_HAS_MIN;
	f.min = 0.0;
	f.max = 12;
	assert_int_equal(lb__schema_encode(&sc, &a), 0);
	f.min = -0.0;
	f.max = -5;
	assert_int_equal(lb__schema_encode(&sc, &b), 0);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	lb__buf_free(&a);
	lb__buf_free(&b);
}

/* Every rejection of encode, with a message naming the field. */
static void test_wal_schema__encode_rejects(void **state)
{
	static const char *const e_dup[] = {"a", "b", "a"};
	static const char *const e_null[] = {"a", NULL};
	static const char *const e_bad8[] = {"\xff"};
	static const char *const e_int[] = {"+5"};
	static const char *const e_int0[] = {"05"};
	static const char *const e_negz[] = {"-0"};
	static const char *const e_big[] = {"9223372036854775808"};
	static const char *const e_small[] = {"-9223372036854775809"};
	static const char *const e_sp[] = {" 5"};
	static const char *const e_idup[] = {"1", "2", "1"};
	static const char *const e_ok[] = {"1"};
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
	        {{"date", LB_STR, 4, 0, NULL}, "unknown flags 0x4"},
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
	        /* enum */
	        {{"e", LB_STR, 0, 0, NULL, NULL, 2},
	         "field 2 'e': nenum is 2 but enum_values is NULL"},
	        {{"e", LB_FLOAT, 0, 0, NULL, e_ok, 1},
	         "field 2 'e': an enum applies to str and int fields only"},
	        {{"e", LB_ANY, 0, 0, NULL, e_ok, 1}, "an enum applies"},
	        {{"e", LB_STR, 0, 0, NULL, e_dup, 3},
	         "field 2 'e': enum value 2 ('a') is listed twice"},
	        {{"e", LB_INT, 0, 0, NULL, e_idup, 3},
	         "enum value 2 ('1') is listed twice"},
	        {{"e", LB_STR, 0, 0, NULL, e_null, 2}, "enum value 1 is NULL"},
	        {{"e", LB_STR, 0, 0, NULL, e_bad8, 1},
	         "enum value 0 is not valid UTF-8"},
	        {{"e", LB_INT, 0, 0, NULL, e_int, 1},
	         "enum value '+5' is not an integer"},
	        {{"e", LB_INT, 0, 0, NULL, e_int0, 1},
	         "'05' is not an integer"},
	        {{"e", LB_INT, 0, 0, NULL, e_negz, 1},
	         "'-0' is not an integer"},
	        {{"e", LB_INT, 0, 0, NULL, e_big, 1}, "is not an integer"},
	        {{"e", LB_INT, 0, 0, NULL, e_small, 1}, "is not an integer"},
	        {{"e", LB_INT, 0, 0, NULL, e_sp, 1}, "is not an integer"},
	        {{"e", LB_INT, 0, 0, NULL, e_ok, LB_SCHEMA_ENUM_MAX + 1},
	         "enum has 1025 values, more than 1024"},
	        /* pattern */
	        {{"p", LB_INT, 0, 0, NULL, NULL, 0, "x"},
	         "field 2 'p': a pattern applies to str fields only"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, ""},
	         "pattern '': empty pattern"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "a)"},
	         "pattern 'a)': a ')' without its '('"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "a)(b"}, "without its '('"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(a"}, "without its ')'"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "[a"}, "without its ']'"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(a)\\1"},
	         "back-reference"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "\\w+"}, "back-reference"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "a\\"},
	         "ends with a backslash"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "a{256}"},
	         "a repetition count over 255"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "a{1,300}"}, "over 255"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(a{100}){100}"},
	         "repeats too much"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "((a{20}){20}){20}"},
	         "repeats too much"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(a{1,100}){1,100}"},
	         "repeats too much"},
	        /* what makes regcomp() slow (found by fuzzing) */
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "a**"},
	         "two repetition operators in a row"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(a|b)**{23}"},
	         "two repetition operators in a row"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "a+?"}, "in a row"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "a*{2}"}, "in a row"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "a{2}{3}"}, "in a row"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(a*)*"},
	         "something that can match the empty string"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(a?)+"}, "empty string"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "((a*)?){255}"},
	         "empty string"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "((a*){1,2}){255}"},
	         "empty string"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(a|)*"}, "empty string"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(b|a*c*)?"},
	         "empty string"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(^)*"}, "empty string"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "(()){0,1}"},
	         "empty string"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "x(y(a*){0,3})*"},
	         "empty string"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "*a"}, "pattern '*a': "},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "a{2,1}"},
	         "pattern 'a{2,1}'"},
	        {{"p", LB_STR, 0, 0, NULL, NULL, 0, "p\xff"},
	         "not valid UTF-8"},
	        /* format */
	        {{"d", LB_STR, 0, 0, NULL, NULL, 0, NULL, 3},
	         "field 2 'd': unknown format 3"},
	        {{"d", LB_STR, 0, 0, NULL, NULL, 0, NULL, -1},
	         "unknown format"},
	        {{"d", LB_BIN, 0, 0, NULL, NULL, 0, NULL, LB_FMT_DATE},
	         "a format applies to str fields only"},
	        /* min and max */
	        {{"n", LB_STR, 0, 0, NULL, NULL, 0, NULL, 0, 1, 2, LB_HAS_MIN},
	         "field 2 'n': min and max apply to int and float fields only"},
	        {{"n", LB_INT, 0, 0, NULL, NULL, 0, NULL, 0, 1, 2, 4},
	         "unknown has_min_max bits 0x4"},
	        {{"n", LB_INT, 0, 0, NULL, NULL, 0, NULL, 0, 3, 2,
	          LB_HAS_MIN | LB_HAS_MAX},
	         "min 3 is greater than max 2"},
	        {{"n", LB_FLOAT, 0, 0, NULL, NULL, 0, NULL, 0, NAN, 2,
	          LB_HAS_MIN},
	         "min is not a finite number"},
	        {{"n", LB_FLOAT, 0, 0, NULL, NULL, 0, NULL, 0, 0, INFINITY,
	          LB_HAS_MAX},
	         "max is not a finite number"},
	        {{"n", LB_FLOAT, 0, 0, NULL, NULL, 0, NULL, 0, -INFINITY, 0,
	          LB_HAS_MIN},
	         "min is not a finite number"},
	};
	char longname[300], longpat[LB_SCHEMA_TEXT_MAX + 2];
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
	memset(&f[2], 0, sizeof f[2]);
	f[2].name = longname;
	f[2].type = LB_INT;
	assert_int_equal(lb__schema_encode(&sc, &b), LB_EINVAL);
	assert_non_null(strstr(lb_errmsg(), "over 255 bytes"));
	longname[255] = 0;
	assert_int_equal(lb__schema_encode(&sc, &b), 0);
	assert_memory_equal(b.data, "q", 1); /* appended */
	/* the longest pattern, and one byte more */
	memset(longpat, 'x', sizeof longpat);
	longpat[LB_SCHEMA_TEXT_MAX + 1] = 0;
	f[2].type = LB_STR;
	f[2].pattern = longpat;
	b.len = 1;
	assert_int_equal(lb__schema_encode(&sc, &b), LB_EINVAL);
	assert_non_null(strstr(lb_errmsg(), "over 1024 bytes"));
	longpat[LB_SCHEMA_TEXT_MAX] = 0;
	assert_int_equal(lb__schema_encode(&sc, &b), 0);
	f[2].pattern = NULL;
	/* an enum value over 1024 bytes; the longest one */
	{
		const char *vals[1] = {longpat};
		f[2].enum_values = vals;
		f[2].nenum = 1;
		b.len = 1;
		assert_int_equal(lb__schema_encode(&sc, &b), 0);
		longpat[LB_SCHEMA_TEXT_MAX] = 'x';
		assert_int_equal(lb__schema_encode(&sc, &b), LB_EINVAL);
		assert_non_null(strstr(lb_errmsg(), "enum value 0 is over"));
		f[2].enum_values = NULL;
		f[2].nenum = 0;
	}
	/* enum_values without nenum is no enum */
	f[2].enum_values = e_dup;
	b.len = 1;
	assert_int_equal(lb__schema_encode(&sc, &b), 0);
	f[2].enum_values = NULL;
	/* key_field */
	sc.key_field = "nosuch";
	assert_int_equal(lb__schema_encode(&sc, &b), LB_EINVAL);
	assert_non_null(
	        strstr(lb_errmsg(), "key_field 'nosuch' is not a field"));
	f[2].type = LB_FLOAT;
	sc.key_field = f[2].name;
	assert_int_equal(lb__schema_encode(&sc, &b), LB_EINVAL);
	assert_non_null(strstr(lb_errmsg(), "must be of type any, str, bin "
	                                    "or int"));
	for (int t = LB_ANY; t <= LB_MAP; t++) {
		f[2].type = (lb_type)t;
		b.len = 1;
		assert_int_equal(lb__schema_encode(&sc, &b),
		                 t == LB_ANY || t == LB_STR || t == LB_BIN ||
		                                 t == LB_INT
		                         ? 0
		                         : LB_EINVAL);
	}
	sc.key_field = NULL;
	/* counts */
	b.len = 1;
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

/* A schema that would encode to more than LB_SCHEMA_BYTES_MAX. */
static void test_wal_schema__encode_too_big(void **state)
{
	enum { NF = 2, NV = LB_SCHEMA_ENUM_MAX };
	static char text[NV][LB_SCHEMA_TEXT_MAX + 1];
	static const char *vals[NV];
	lb_field f[NF];
	lb_schema sc = {f, NF, 0};
	lb_buf b;
	(void)state;

	for (int i = 0; i < NV; i++) {
		char num[16];
		memset(text[i], 'v', 600);
		snprintf(num, sizeof num, "%05d", i);
		memcpy(text[i], num, 5); /* distinct */
		text[i][600] = 0;
		vals[i] = text[i];
	}
	memset(f, 0, sizeof f);
	f[0].name = "a";
	f[1].name = "b";
	f[0].type = f[1].type = LB_STR;
	f[0].enum_values = f[1].enum_values = vals;
	f[0].nenum = NV; /* about 600 KiB */
	lb__buf_init(&b);
	assert_int_equal(lb__schema_encode(&sc, &b), 0);
	assert_true(b.len < LB_SCHEMA_BYTES_MAX);
	b.len = 0;
	f[1].nenum = NV; /* about 1.2 MiB */
	assert_int_equal(lb__schema_encode(&sc, &b), LB_EINVAL);
	assert_non_null(strstr(lb_errmsg(), "over 1048576 bytes"));
	assert_int_equal(b.len, 0);
	lb__buf_free(&b);
}

static void test_wal_schema__decode_rejects(void **state)
{
	lb_wal_schema s;
	(void)state;

	/* the good ones these are variations of */
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x00, 0xc2, 0x90, 0xc0), 0);
	lb__schema_free(&s);
	assert_int_equal(RULES(0x00, 0xc0, 0xc0, 0x00, 0xc0, 0xc0), 0);
	lb__schema_free(&s);
	/* versions: 1 was never released */
	assert_int_equal(DECODE(&s, 0x95, 0x00, 0x00, 0xc2, 0x90, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x94, 0x01, 0x00, 0xc2, 0x90), LB_EVERSION);
	assert_non_null(strstr(lb_errmsg(), "version 1 was never released"));
	assert_int_equal(DECODE(&s, 0x95, 0x03, 0x00, 0xc2, 0x90, 0xc0),
	                 LB_EVERSION);
	assert_non_null(strstr(lb_errmsg(), "version 3 is newer"));
	assert_int_equal(DECODE(&s, 0x91, 0x03), LB_EVERSION);
	assert_int_equal(DECODE(&s, 0x95, 0xa1, '2', 0x00, 0xc2, 0x90, 0xc0),
	                 LB_ECORRUPT);
	/* shape */
	assert_int_equal(DECODE(&s, 0x94, 0x02, 0x00, 0xc2, 0x90), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "array of 4 items, not 5"));
	assert_int_equal(DECODE(&s, 0x96, 0x02, 0x00, 0xc2, 0x90, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x85, 0x02, 0x00, 0xc2, 0x90, 0xc0, 0xc0,
	                        0xc0, 0xc0, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x02, 0xc2, 0x90, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "unknown kind 2"));
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x00, 0x00, 0x90, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x00, 0xc2, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x00, 0xc2, 0x90, 0xc0, 0x00),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "1 bytes follow"));
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x00, 0xc2, 0x90), LB_ECORRUPT);
	/* opaque tables have no fields, are not closed, have no key_field */
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x00, 0xc3, 0x90, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x00, 0xc2, 0x91, 0x9a, 0xa1,
	                        'a', 0x00, 0x00, 0x00, 0xc0, 0xc0, 0xc0, 0x00,
	                        0xc0, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x00, 0xc2, 0x90, 0xa1, 'a'),
	                 LB_ECORRUPT);
	/* fields */
	assert_int_equal(FIELD(0x95, 0xa1, 'a', 0x00, 0x00, 0x00, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "array of 5 items, not 10"));
	assert_int_equal(FIELD(0x9b, 0xa1, 'a', 0x00, 0x00, 0x00, 0xc0, 0xc0,
	                       0xc0, 0x00, 0xc0, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(FIELD(0x9a, 0xa0, 0x00, 0x00, 0x00, 0xc0, 0xc0, 0xc0,
	                       0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "field 0: empty name"));
	assert_int_equal(FIELD(0x9a, 0xc4, 1, 'a', 0x00, 0x00, 0x00, 0xc0, 0xc0,
	                       0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(FIELD(0x9a, 0xa2, 'a', 0x00, 0x00, 0x00, 0x00, 0xc0,
	                       0xc0, 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "NUL"));
	assert_int_equal(FIELD(0x9a, 0xa2, 0xed, 0xa0, 0x00, 0x00, 0x00, 0xc0,
	                       0xc0, 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "UTF-8"));
	assert_int_equal(RULES(0x09, 0xc0, 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "field 0 'a': unknown type 9"));
	assert_int_equal(RULES(0xff, 0xc0, 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	/* flags: required and nullable */
	assert_int_equal(FIELD(0x9a, 0xa1, 'a', 0x08, 0x03, 0x00, 0xc0, 0xc0,
	                       0xc0, 0x00, 0xc0, 0xc0),
	                 0);
	assert_int_equal(s.fields[0].flags, LB_REQUIRED | LB_NULLABLE);
	lb__schema_free(&s);
	assert_int_equal(FIELD(0x9a, 0xa1, 'a', 0x08, 0x04, 0x00, 0xc0, 0xc0,
	                       0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "unknown flags 0x4"));
	assert_int_equal(FIELD(0x9a, 0xa1, 'a', 0x08, 0x01, 0xce, 0xff, 0xff,
	                       0xff, 0xff, 0xc0, 0xc0, 0xc0, 0x00, 0xc0, 0xc0),
	                 0);
	lb__schema_free(&s);
	assert_int_equal(FIELD(0x9a, 0xa1, 'a', 0x08, 0x01, 0xcf, 0, 0, 0, 1, 0,
	                       0, 0, 0, 0xc0, 0xc0, 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "max_len"));
	/* ref */
#define REF(...)                                                               \
	FIELD(0x9a, 0xa1, 'a', __VA_ARGS__, 0xc0, 0xc0, 0x00, 0xc0, 0xc0)
	assert_int_equal(REF(0x05, 0x01, 0x00, 0xa0), LB_ECORRUPT);
	assert_int_equal(REF(0x05, 0x01, 0x00, 0xa3, 'a', '/', 'b'),
	                 LB_ECORRUPT);
	assert_int_equal(REF(0x05, 0x01, 0x00, 0xc4, 1, 'u'), LB_ECORRUPT);
	assert_int_equal(REF(0x05, 0x01, 0x00, 0xc2), LB_ECORRUPT);
	assert_int_equal(REF(0x05, 0x01, 0x00, 0xa1, 'u'), 0);
	lb__schema_free(&s);
	/* a ref on a field that cannot hold a key (here a map) */
	assert_int_equal(REF(0x08, 0x01, 0x00, 0xa1, 'u'), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "a ref on a field of type 8"));
#undef REF
	/* duplicates */
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x01, 0xc2, 0x92, 0x9a, 0xa1,
	                        'a', 0x00, 0x00, 0x00, 0xc0, 0xc0, 0xc0, 0x00,
	                        0xc0, 0xc0, 0x9a, 0xa1, 'a', 0x01, 0x00, 0x00,
	                        0xc0, 0xc0, 0xc0, 0x00, 0xc0, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(
	        strstr(lb_errmsg(), "field 1 'a': same name as field 0"));
	/* NULL input */
	assert_int_equal(lb__schema_decode(NULL, 0, &s), LB_ECORRUPT);
}

/* Each rule item, malformed or out of place. */
static void test_wal_schema__decode_rule_rejects(void **state)
{
	lb_wal_schema s;
	(void)state;

	/* enum: str values on a str field, int values on an int field */
	assert_int_equal(
	        RULES(0x05, 0x92, 0xa1, 'x', 0xa0, 0xc0, 0x00, 0xc0, 0xc0), 0);
	assert_int_equal(s.fields[0].nenum, 2);
	assert_string_equal(s.view.fields[0].enum_values[1], "");
	lb__schema_free(&s);
	assert_int_equal(RULES(0x03, 0x92, 0xd0, 0x80, 0xcf, 0, 0, 0, 0, 0, 0,
	                       0, 7, 0xc0, 0x00, 0xc0, 0xc0),
	                 0);
	assert_string_equal(s.view.fields[0].enum_values[0], "-128");
	assert_string_equal(s.view.fields[0].enum_values[1], "7");
	lb__schema_free(&s);
	assert_int_equal(RULES(0x05, 0x90, 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "enum of 0 values"));
	assert_int_equal(RULES(0x05, 0x91, 0x01, 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(RULES(0x03, 0x91, 0xa1, '1', 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(RULES(0x03, 0x91, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0,
	                       0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT); /* over int64 */
	assert_int_equal(RULES(0x02, 0x91, 0xc3, 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "an enum on a field of type 2"));
	assert_int_equal(RULES(0x00, 0x91, 0xa1, 'x', 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(
	        RULES(0x05, 0x92, 0xa1, 'x', 0xa1, 'x', 0xc0, 0x00, 0xc0, 0xc0),
	        LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "enum value 1 is listed twice"));
	assert_int_equal(
	        RULES(0x03, 0x92, 0x05, 0xd0, 0x05, 0xc0, 0x00, 0xc0, 0xc0),
	        LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "listed twice"));
	assert_int_equal(
	        RULES(0x05, 0x91, 0xa2, 'x', 0x00, 0xc0, 0x00, 0xc0, 0xc0),
	        LB_ECORRUPT);
	assert_int_equal(RULES(0x05, 0x91, 0xa1, 0xff, 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(RULES(0x05, 0xa1, 'x', 0xc0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	/* 1025 values, refused on the count before allocating */
	assert_int_equal(RULES(0x03, 0xdc, 0x04, 0x01, 0xc0), LB_ECORRUPT);
	/* pattern */
	assert_int_equal(
	        RULES(0x05, 0xc0, 0xa3, 'a', '|', 'b', 0x00, 0xc0, 0xc0), 0);
	assert_string_equal(s.fields[0].pattern, "a|b");
	assert_non_null(s.fields[0].re);
	lb__schema_free(&s);
	assert_int_equal(RULES(0x03, 0xc0, 0xa1, 'x', 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "a pattern on a field of type 3"));
	assert_int_equal(RULES(0x05, 0xc0, 0xc4, 1, 'x', 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(RULES(0x05, 0xc0, 0xa0, 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(RULES(0x05, 0xc0, 0xa2, 'a', ')', 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "without its '('"));
	assert_int_equal(RULES(0x05, 0xc0, 0xa2, '*', 'a', 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "does not compile"));
	assert_int_equal(RULES(0x05, 0xc0, 0xa2, '\\', '1', 0x00, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(
	        RULES(0x05, 0xc0, 0xa3, 'a', 0x00, 'b', 0x00, 0xc0, 0xc0),
	        LB_ECORRUPT);
	/* format */
	assert_int_equal(RULES(0x05, 0xc0, 0xc0, 0x02, 0xc0, 0xc0), 0);
	assert_int_equal(s.fields[0].format, LB_FMT_DATETIME);
	lb__schema_free(&s);
	assert_int_equal(RULES(0x05, 0xc0, 0xc0, 0x03, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "unknown format 3"));
	assert_int_equal(RULES(0x05, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(RULES(0x00, 0xc0, 0xc0, 0x01, 0xc0, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "a format on a field of type 0"));
	/* min and max: float 64 only, finite, min <= max, int or float */
	assert_int_equal(RULES(0x04, 0xc0, 0xc0, 0x00, F64_1, 0xc0), 0);
	assert_int_equal(s.fields[0].has_min_max, LB_HAS_MIN);
	assert_true(s.fields[0].min == 1.0);
	assert_true(s.view.fields[0].max == 0);
	lb__schema_free(&s);
	assert_int_equal(RULES(0x03, 0xc0, 0xc0, 0x00, 0xc0, F64_200_5), 0);
	assert_int_equal(s.fields[0].has_min_max, LB_HAS_MAX);
	assert_true(s.fields[0].max == 200.5);
	lb__schema_free(&s);
	assert_int_equal(RULES(0x03, 0xc0, 0xc0, 0x00, F64_1, F64_1), 0);
	lb__schema_free(&s);
	/* -0 reads as 0 */
	assert_int_equal(RULES(0x04, 0xc0, 0xc0, 0x00, 0xcb, 0x80, 0, 0, 0, 0,
	                       0, 0, 0, 0xc0),
	                 0);
	assert_false(signbit(s.fields[0].min));
	lb__schema_free(&s);
	assert_int_equal(RULES(0x03, 0xc0, 0xc0, 0x00, F64_200_5, F64_1),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "min is greater than max"));
	assert_int_equal(RULES(0x03, 0xc0, 0xc0, 0x00, 0x01, 0xc0),
	                 LB_ECORRUPT);
	assert_int_equal(
	        RULES(0x03, 0xc0, 0xc0, 0x00, 0xca, 0x3f, 0xc0, 0, 0, 0xc0),
	        LB_ECORRUPT);
	assert_int_equal(RULES(0x03, 0xc0, 0xc0, 0x00, 0xcb, 0x7f, 0xf8, 0, 0,
	                       0, 0, 0, 0, 0xc0),
	                 LB_ECORRUPT); /* NaN */
	assert_non_null(strstr(lb_errmsg(), "min is not a finite number"));
	assert_int_equal(RULES(0x04, 0xc0, 0xc0, 0x00, 0xc0, 0xcb, 0xff, 0xf0,
	                       0, 0, 0, 0, 0, 0),
	                 LB_ECORRUPT); /* -inf */
	assert_int_equal(RULES(0x05, 0xc0, 0xc0, 0x00, F64_1, 0xc0),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "a min on a field of type 5"));
	assert_int_equal(RULES(0x00, 0xc0, 0xc0, 0x00, 0xc0, F64_1),
	                 LB_ECORRUPT);
	/* key_field */
#define KEY(t, ...)                                                            \
	DECODE(&s, 0x95, 0x02, 0x01, 0xc2, 0x91, 0x9a, 0xa1, 'a', (t), 0x00,   \
	       0x00, 0xc0, 0xc0, 0xc0, 0x00, 0xc0, 0xc0, __VA_ARGS__)
	for (int t = LB_ANY; t <= LB_MAP; t++) {
		int ok = t == LB_ANY || t == LB_STR || t == LB_BIN ||
		         t == LB_INT;
		assert_int_equal(KEY(t, 0xa1, 'a'), ok ? 0 : LB_ECORRUPT);
		if (ok) {
			assert_int_equal(s.key_fi, 0);
			assert_string_equal(s.view.key_field, "a");
			lb__schema_free(&s);
		} else {
			assert_non_null(strstr(lb_errmsg(), "key_field names "
			                                    "a field of type"));
		}
	}
	assert_int_equal(KEY(0x05, 0xa1, 'b'), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "key_field names no field"));
	assert_int_equal(KEY(0x05, 0xc4, 1, 'a'), LB_ECORRUPT);
	assert_int_equal(KEY(0x05, 0xa0), LB_ECORRUPT);
	assert_int_equal(KEY(0x05, 0xc2), LB_ECORRUPT);
#undef KEY
}

/* Long names and refs, and too many fields. */
static void test_wal_schema__decode_limits(void **state)
{
	static const uint8_t tail[] = {0x00, 0x00, 0x00, 0xc0, 0xc0,
	                               0xc0, 0x00, 0xc0, 0xc0, 0xc0};
	uint8_t buf[8 + 257 * 12];
	lb_wal_schema s;
	size_t n = 0, i;
	(void)state;

	/* 256-byte name in str 16 */
	buf[n++] = 0x95;
	buf[n++] = 0x02;
	buf[n++] = 0x01;
	buf[n++] = 0xc2;
	buf[n++] = 0x91;
	buf[n++] = 0x9a;
	buf[n++] = 0xda;
	buf[n++] = 0x01;
	buf[n++] = 0x00;
	{
		uint8_t *p = malloc(n + 256 + sizeof tail);
		memcpy(p, buf, n);
		memset(p + n, 'x', 256);
		memcpy(p + n + 256, tail, sizeof tail);
		assert_int_equal(decode_bytes(p, n + 256 + sizeof tail, &s),
		                 LB_ECORRUPT);
		assert_non_null(strstr(lb_errmsg(), "over 255"));
		/* 255 bytes in str 8 is fine */
		p[6] = 0xd9;
		p[7] = 0xff;
		memmove(p + 8, p + 10, 255 + sizeof tail); /* drop one x */
		assert_int_equal(decode_bytes(p, n - 1 + 255 + sizeof tail, &s),
		                 0);
		assert_int_equal(s.fields[0].nlen, 255);
		lb__schema_free(&s);
		free(p);
	}
	/* 257 fields: refused on the count, before allocating */
	n = 0;
	buf[n++] = 0x95;
	buf[n++] = 0x02;
	buf[n++] = 0x01;
	buf[n++] = 0xc2;
	buf[n++] = 0xdc;
	buf[n++] = 0x01;
	buf[n++] = 0x01;
	for (i = 0; i < 257; i++) {
		buf[n++] = 0x9a;
		buf[n++] = 0xa1;
		buf[n++] = (uint8_t)i; /* duplicates, never reached */
		memcpy(buf + n, tail, 9);
		n += 9;
	}
	buf[n++] = 0xc0;
	assert_int_equal(decode_bytes(buf, n, &s), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "257 fields"));
	/* 2^32 - 1 fields claimed in a few bytes */
	assert_int_equal(DECODE(&s, 0x95, 0x02, 0x01, 0xc2, 0xdd, 0xff, 0xff,
	                        0xff, 0xff, 0xc0),
	                 LB_ECORRUPT);
	/* more than LB_SCHEMA_BYTES_MAX bytes, refused before reading */
	{
		size_t big = LB_SCHEMA_BYTES_MAX + 1;
		uint8_t *p = calloc(1, big);
		memcpy(p, "\x95\x02\x00\xc2\x90\xc0", 6);
		assert_int_equal(decode_bytes(p, big, &s), LB_ECORRUPT);
		assert_non_null(strstr(lb_errmsg(), "more than 1048576"));
		free(p);
	}
}

/* Wide msgpack forms are accepted, as in change records. */
static void test_wal_schema__any_width(void **state)
{
	lb_wal_schema s;
	(void)state;

	assert_int_equal(DECODE(&s, 0xdc, 0x00, 0x05, 0xcf, 0, 0, 0, 0, 0, 0, 0,
	                        2, 0xcc, 0x01, 0xc3, 0xdd, 0, 0, 0, 1, 0xdc,
	                        0x00, 0x0a, 0xdb, 0, 0, 0, 1, 'a', 0xd0, 0x05,
	                        0xcd, 0x00, 0x01, 0xce, 0, 0, 0, 9, 0xd9, 1,
	                        'u', 0xdd, 0, 0, 0, 1, 0xda, 0, 1, 'v', 0xd9, 1,
	                        'v', 0xd1, 0, 1, 0xc0, 0xc0, 0xda, 0, 1, 'a'),
	                 0);
	assert_int_equal(s.nfields, 1);
	assert_int_equal(s.fields[0].type, LB_STR);
	assert_int_equal(s.fields[0].max_len, 9);
	assert_string_equal(s.fields[0].ref, "u");
	assert_string_equal(s.fields[0].enum_values[0], "v");
	assert_string_equal(s.fields[0].pattern, "v");
	assert_int_equal(s.fields[0].format, LB_FMT_DATE);
	assert_string_equal(s.key_field, "a");
	lb__schema_free(&s);
}

/* What the decoder takes obeys the rules, whatever the bytes. */
static void check_decoded(const lb_wal_schema *s)
{
	for (uint32_t f = 0; f < s->nfields; f++) {
		const lb_sfield *x = &s->fields[f];
		assert_true(x->type <= LB_MAP);
		assert_true(x->nlen >= 1);
		assert_true(x->flags <= 3);
		assert_true(x->format >= 0 && x->format <= 2);
		assert_true(x->has_min_max <= 3);
		assert_true(!x->nenum || x->type == LB_STR ||
		            x->type == LB_INT);
		assert_true(!x->pattern || (x->type == LB_STR && x->re));
	}
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
			            (rc == LB_EVERSION && i <= 1));
			if (rc == 0) {
				check_decoded(&s);
				lb__schema_free(&s);
			}
		}
	}
}

/* ---- patterns ------------------------------------------------------------ */

static lb_wal_schema pat_schema(const char *pattern)
{
	lb_field f = {"p", LB_STR, 0, 0, NULL, NULL, 0, pattern};
	lb_schema sc = {&f, 1, 0};
	lb_wal_schema s;
	lb_buf b;

	lb__buf_init(&b);
	if (lb__schema_encode(&sc, &b) != 0)
		fail_msg("pattern '%s' refused: %s", pattern, lb_errmsg());
	assert_int_equal(lb__schema_decode(b.data, b.len, &s), 0);
	lb__buf_free(&b);
	return s;
}

/* The value in a buffer of its exact size, no NUL after it (for ASan). */
static int matches(const char *pattern, const char *v, size_t n)
{
	lb_wal_schema s = pat_schema(pattern);
	char *q = malloc(n ? n : 1);
	if (n)
		memcpy(q, v, n);
	int rc = lb__pattern_match(&s.fields[0], q, n);
	free(q);
	lb__schema_free(&s);
	return rc;
}
#define MATCH(p, v) matches((p), (v), sizeof(v) - 1)

/* The pattern matches the whole value, as if wrapped in ^(...)$. */
static void test_wal_schema__pattern_whole_value(void **state)
{
	(void)state;
	assert_int_equal(MATCH("[A-Z]{2}[0-9]+", "HR1234"), 1);
	assert_int_equal(MATCH("[A-Z]{2}[0-9]+", "xHR1234"), 0);
	assert_int_equal(MATCH("[A-Z]{2}[0-9]+", "HR1234x"), 0);
	assert_int_equal(MATCH("[A-Z]{2}[0-9]+", "HR"), 0);
	assert_int_equal(MATCH("[A-Z]{2}[0-9]+", ""), 0);
	/* an alternation is grouped whole: not ^a or b$ */
	assert_int_equal(MATCH("a|b", "a"), 1);
	assert_int_equal(MATCH("a|b", "b"), 1);
	assert_int_equal(MATCH("a|b", "ab"), 0);
	assert_int_equal(MATCH("a|b", "ax"), 0);
	assert_int_equal(MATCH("a|b", "xb"), 0);
	/* anchors in the pattern change nothing */
	assert_int_equal(MATCH("^abc$", "abc"), 1);
	assert_int_equal(MATCH("^abc$", "abcd"), 0);
	/* brackets holding parentheses, brackets and backslashes */
	assert_int_equal(MATCH("[)(]+", "()"), 1);
	assert_int_equal(MATCH("[]a]+", "]a]"), 1);
	assert_int_equal(MATCH("[^]a]", "b"), 1);
	assert_int_equal(MATCH("[^]a]", "]"), 0);
	assert_int_equal(MATCH("[[:digit:])]+", "1)2"), 1);
	assert_int_equal(MATCH("[[.).]]", ")"), 1);
	assert_int_equal(MATCH("[\\]x", "\\x"), 1);
	assert_int_equal(MATCH("\\(a\\)", "(a)"), 1);
	assert_int_equal(MATCH("a\\|b", "a|b"), 1);
	assert_int_equal(MATCH("a\\|b", "a"), 0);
	assert_int_equal(MATCH("x{0,3}", ""), 1);
	assert_int_equal(MATCH("x{0,3}", "xxxx"), 0);
	assert_int_equal(MATCH("a{255}", "a"), 0);
	/* long values (copied to the heap to be terminated) */
	{
		char v[600];
		memset(v, 'a', sizeof v);
		assert_int_equal(matches("a+", v, sizeof v), 1);
		v[599] = 'b';
		assert_int_equal(matches("a+", v, sizeof v), 0);
		assert_int_equal(matches("a+b", v, sizeof v), 1);
	}
	/* the value may hold a NUL byte: it is matched, not cut there */
	assert_int_equal(MATCH("a", "a\0b"), 0);
	assert_int_equal(MATCH("a.*", "a\0b"), 0); /* '.' matches no NUL */
	assert_int_equal(MATCH("[^x]*", "a\0b"), 1);
	/* the expansion limit: 4096 items pass, more do not */
	assert_int_equal(MATCH("(a{64}){63}", "a"), 0);
	assert_int_equal(MATCH("((ab){16}){16}", "ab"), 0);
}

/* Bytes, not characters, whatever the process's locale. */
static void test_wal_schema__pattern_c_locale(void **state)
{
	static const char *const locales[] = {"C.UTF-8", "C.utf8",
	                                      "en_US.UTF-8"};
	char *old = strdup(setlocale(LC_ALL, NULL));
	int any = 0;
	(void)state;

	for (int pass = 0; pass < 4; pass++) {
		if (pass > 0) {
			if (!setlocale(LC_ALL, locales[pass - 1]))
				continue;
			any++;
		}
		/* "é" is two bytes: '.' is one */
		assert_int_equal(MATCH(".", "\xc3\xa9"), 0);
		assert_int_equal(MATCH("..", "\xc3\xa9"), 1);
		assert_int_equal(MATCH("[[:alpha:]]+", "abc"), 1);
		assert_int_equal(MATCH("[[:alpha:]]+", "\xc3\xa9t\xc3\xa9"), 0);
		assert_int_equal(MATCH("(\xc3\xa9)+", "\xc3\xa9\xc3\xa9"), 1);
	}
	setlocale(LC_ALL, old);
	free(old);
	if (!any)
		print_message("no UTF-8 locale here: C locale only\n");
}

/* Patterns that pass our scan and regcomp() */
static void test_wal_schema__pattern_accepted(void **state)
{
	static const char *const ok[] = {
	        "x",
	        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
	        "(House|Senate|Joint)",
	        "[^/]+(/[^/]+)*",
	        "a{255}",
	        "a{0,255}",
	        "(a{64}){63}",
	        "\\.\\*\\[\\]\\(\\)\\{\\}\\^\\$\\|\\?\\+\\\\",
	        "[[:upper:]][[:lower:]]*",
	        "[[=a=]]",
	        "\xc3\xa9t\xc3\xa9",
	        "()",
	        /* repetitions of what cannot be empty, exact counts of what
	         * can */
	        "([a-z]+\\.)*[a-z]+",
	        "(a*b)*",
	        "(a|b*c)+",
	        "(a*){3}",
	        "((a?){8}){8}",
	        "(a*|b)(c?|d){2}",
	        "x{0}y",
	};
	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		lb_wal_schema s = pat_schema(ok[i]);
		assert_non_null(s.fields[0].re);
		assert_string_equal(s.fields[0].pattern, ok[i]);
		lb__schema_free(&s);
	}
}

/* ---- dates and date-times ------------------------------------------------ */

static const char *fmt(int f, const char *v)
{
	return lb__format_problem(f, v, strlen(v));
}

static void test_wal_schema__format_date(void **state)
{
	static const char *const good[] = {
	        "2024-03-14", "0000-01-01", "9999-12-31", "2024-02-29",
	        "2000-02-29", "2023-02-28", "2023-04-30", "2023-01-31",
	        "1600-02-29", "0400-02-29",
	};
	static const struct {
		const char *v, *why;
	} bad[] = {
	        {"", "not YYYY-MM-DD"},
	        {"2024-3-14", "not YYYY-MM-DD"},
	        {"2024-03-14 ", "not YYYY-MM-DD"},
	        {"2024/03/14", "not YYYY-MM-DD"},
	        {"24-03-2014", "not YYYY-MM-DD"},
	        {"2024-03-1x", "not YYYY-MM-DD"},
	        {"+024-03-14", "not YYYY-MM-DD"},
	        {"2024-03-14T00:00:00Z", "not YYYY-MM-DD"},
	        {"2024-00-10", "the month is not 01..12"},
	        {"2024-13-10", "the month is not 01..12"},
	        {"2024-01-00", "the day is not 01..31"},
	        {"2024-01-32", "past the end of the month"},
	        {"2024-04-31", "past the end of the month"},
	        {"2023-02-29", "(not a leap year)"},
	        {"1900-02-29", "(not a leap year)"},
	        {"2100-02-29", "(not a leap year)"},
	        {"2024-02-30", "past the end of the month"},
	        {"2024-06-31", "past the end of the month"},
	        {"2024-09-31", "past the end of the month"},
	        {"2024-11-31", "past the end of the month"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (fmt(LB_FMT_DATE, good[i]))
			fail_msg("'%s' refused: %s", good[i],
			         fmt(LB_FMT_DATE, good[i]));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *why = fmt(LB_FMT_DATE, bad[i].v);
		if (!why || !strstr(why, bad[i].why))
			fail_msg("'%s': '%s', want '%s'", bad[i].v,
			         why ? why : "(accepted)", bad[i].why);
	}
	/* the length is the value's, not up to a NUL */
	assert_non_null(lb__format_problem(LB_FMT_DATE, "2024-03-14", 9));
	assert_non_null(lb__format_problem(LB_FMT_DATE, "2024-03-14\0", 11));
	assert_null(lb__format_problem(LB_FMT_NONE, "x", 1));
}

static void test_wal_schema__format_datetime(void **state)
{
	static const char *const good[] = {
	        "2024-03-14T09:30:00Z",
	        "2024-03-14t09:30:00z",
	        "2024-03-14T09:30:00+01:00",
	        "2024-03-14T09:30:00-05:30",
	        "2024-03-14T09:30:00-00:00",
	        "2024-03-14T09:30:00.5Z",
	        "2024-03-14T09:30:00.123456789012+23:59",
	        "2024-02-29T23:59:59Z",
	        "0000-01-01T00:00:00Z",
	        "2016-12-31T23:59:60Z",      /* a leap second */
	        "2016-12-31T15:59:60-08:00", /* the same, in California */
	        "2017-01-01T00:59:60+01:00", /* and in Paris */
	        "1990-12-31T23:59:60.25Z",
	};
	static const struct {
		const char *v, *why;
	} bad[] = {
	        {"2024-03-14", "not YYYY-MM-DDThh:mm:ss"},
	        {"2024-03-14 09:30:00Z", "not YYYY-MM-DDThh:mm:ss"},
	        {"2024-03-14T9:30:00Z", "not YYYY-MM-DDThh:mm:ss"},
	        {"2024-03-14T09:30Z", "not YYYY-MM-DDThh:mm:ss"},
	        {"2024-03-14T09:30:0Z", "not YYYY-MM-DDThh:mm:ss"},
	        {"2024-03-14T09-30-00Z", "not YYYY-MM-DDThh:mm:ss"},
	        {"2024-03-14T09:30:00", "no time zone"},
	        {"2024-03-14T09:30:00.5", "no time zone"},
	        {"2024-03-14T09:30:00.Z", "a '.' without digits"},
	        {"2024-03-14T09:30:00,5Z", "the time zone is not"},
	        {"2024-03-14T09:30:00 Z", "the time zone is not"},
	        {"2024-03-14T09:30:00+01", "the time zone is not"},
	        {"2024-03-14T09:30:00+0100", "the time zone is not"},
	        {"2024-03-14T09:30:00+1:00", "the time zone is not"},
	        {"2024-03-14T09:30:00UTC", "the time zone is not"},
	        {"2024-03-14T09:30:00ZZ", "characters after the time zone"},
	        {"2024-03-14T09:30:00+01:00 ", "characters after"},
	        {"2024-03-14T24:00:00Z", "the hour is not 00..23"},
	        {"2024-03-14T23:60:00Z", "the minute is not 00..59"},
	        {"2024-03-14T23:59:61Z", "the second is not 00..60"},
	        {"2024-03-14T23:59:99Z", "the second is not 00..60"},
	        {"2024-03-14T10:00:60Z", "a leap second, only at 23:59 UTC"},
	        {"2016-12-31T23:59:60+01:00", "only at 23:59 UTC"},
	        {"2024-03-14T09:30:00+24:00", "the time zone is not -23:59"},
	        {"2024-03-14T09:30:00+01:60", "the time zone is not -23:59"},
	        {"2024-02-30T09:30:00Z", "past the end of the month"},
	        {"2024-13-01T09:30:00Z", "the month is not 01..12"},
	        {"2023-02-29T09:30:00Z", "not a leap year"},
	        {"2024-03-14X09:30:00Z", "not YYYY-MM-DDThh:mm:ss"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		if (fmt(LB_FMT_DATETIME, good[i]))
			fail_msg("'%s' refused: %s", good[i],
			         fmt(LB_FMT_DATETIME, good[i]));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *why = fmt(LB_FMT_DATETIME, bad[i].v);
		if (!why || !strstr(why, bad[i].why))
			fail_msg("'%s': '%s', want '%s'", bad[i].v,
			         why ? why : "(accepted)", bad[i].why);
	}
	/* every prefix of a good value is refused (reads stay inside) */
	{
		const char *v = "2024-03-14T09:30:00.123+01:00";
		for (size_t n = 0; n < strlen(v); n++) {
			char *c = malloc(n ? n : 1);
			memcpy(c, v, n);
			assert_non_null(
			        lb__format_problem(LB_FMT_DATETIME, c, n));
			if (n != 10)
				assert_non_null(
				        lb__format_problem(LB_FMT_DATE, c, n));
			free(c);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_wal_schema__opaque),
	        cmocka_unit_test(test_wal_schema__golden),
	        cmocka_unit_test(test_wal_schema__roundtrip),
	        cmocka_unit_test(test_wal_schema__canonical_bounds),
	        cmocka_unit_test(test_wal_schema__encode_rejects),
	        cmocka_unit_test(test_wal_schema__encode_too_big),
	        cmocka_unit_test(test_wal_schema__decode_rejects),
	        cmocka_unit_test(test_wal_schema__decode_rule_rejects),
	        cmocka_unit_test(test_wal_schema__decode_limits),
	        cmocka_unit_test(test_wal_schema__any_width),
	        cmocka_unit_test(test_wal_schema__damage),
	        cmocka_unit_test(test_wal_schema__pattern_whole_value),
	        cmocka_unit_test(test_wal_schema__pattern_c_locale),
	        cmocka_unit_test(test_wal_schema__pattern_accepted),
	        cmocka_unit_test(test_wal_schema__format_date),
	        cmocka_unit_test(test_wal_schema__format_datetime),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
