/* SPDX-License-Identifier: MIT */
/*
 * tests/wal/mp.c: the msgpack cursor, the writers, strict UTF-8 and the
 * byte buffer (wal/mp.c, wal/buf.c).
 *
 * Inputs are copied into heap blocks of their exact size, so a read past
 * the end is caught by AddressSanitizer when the tests run under it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../helpers.h"
#include "wal/wal.h"

/* An exact-size heap copy of [p, p + n), so overreads hit a redzone. */
static uint8_t *exact(const void *p, size_t n)
{
	uint8_t *q = malloc(n ? n : 1);

	assert_non_null(q);
	if (n)
		memcpy(q, p, n);
	return q;
}

static lb_mp cur(const uint8_t *p, size_t n)
{
	lb_mp m;

	m.p = p;
	m.end = p + n;
	return m;
}

/* Encode with f, compare to the expected bytes. */
#define EXPECT_BYTES(buf, ...)                                                 \
	do {                                                                   \
		static const uint8_t want_[] = {__VA_ARGS__};                  \
		assert_int_equal((buf)->len, sizeof want_);                    \
		assert_memory_equal((buf)->data, want_, sizeof want_);         \
	} while (0)

/* ---- integers ------------------------------------------------------------ */

static void test_wal_mp__uint_widths(void **state)
{
	const th_uint_width *cases = th_uint_widths;
	size_t i;
	(void)state;

	for (i = 0; i < th_nuint_widths; i++) {
		lb_buf b;
		uint64_t u;
		int64_t s;
		uint8_t *p;
		lb_mp m;

		lb__buf_init(&b);
		assert_int_equal(lb__mpw_uint(&b, cases[i].v), 0);
		assert_int_equal(b.len, cases[i].size);
		assert_int_equal(b.data[0], cases[i].first);
		p = exact(b.data, b.len);
		m = cur(p, b.len);
		assert_int_equal(lb__mp_peek(&m), LB_MP_UINT);
		assert_int_equal(lb__mp_uint(&m, &u), 0);
		assert_true(u == cases[i].v);
		assert_ptr_equal(m.p, p + b.len);
		m = cur(p, b.len);
		if (cases[i].v <= (uint64_t)INT64_MAX) {
			assert_int_equal(lb__mp_int(&m, &s), 0);
			assert_true((uint64_t)s == cases[i].v);
		} else {
			assert_int_equal(lb__mp_int(&m, &s), LB_ECORRUPT);
			assert_non_null(strstr(lb_errmsg(), "int64"));
		}
		m = cur(p, b.len);
		assert_int_equal(lb__mp_skip(&m), 0);
		assert_ptr_equal(m.p, p + b.len);
		/* The same value through the signed writer: same bytes. */
		if (cases[i].v <= (uint64_t)INT64_MAX) {
			lb_buf c;
			lb__buf_init(&c);
			assert_int_equal(lb__mpw_int(&c, (int64_t)cases[i].v),
			                 0);
			assert_int_equal(c.len, b.len);
			assert_memory_equal(c.data, b.data, b.len);
			lb__buf_free(&c);
		}
		free(p);
		lb__buf_free(&b);
	}
}

static void test_wal_mp__negative_widths(void **state)
{
	static const struct {
		int64_t v;
		size_t size;
		uint8_t first;
	} cases[] = {
	        {-1, 1, 0xff},
	        {-32, 1, 0xe0},
	        {-33, 2, 0xd0},
	        {-128, 2, 0xd0},
	        {-129, 3, 0xd1},
	        {-32768, 3, 0xd1},
	        {-32769, 5, 0xd2},
	        {INT32_MIN, 5, 0xd2},
	        {(int64_t)INT32_MIN - 1, 9, 0xd3},
	        {INT64_MIN, 9, 0xd3},
	};
	size_t i;
	(void)state;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		lb_buf b;
		uint64_t u;
		int64_t s;
		lb_mp m;

		lb__buf_init(&b);
		assert_int_equal(lb__mpw_int(&b, cases[i].v), 0);
		assert_int_equal(b.len, cases[i].size);
		assert_int_equal(b.data[0], cases[i].first);
		m = cur(b.data, b.len);
		assert_int_equal(lb__mp_peek(&m), LB_MP_NINT);
		assert_int_equal(lb__mp_int(&m, &s), 0);
		assert_true(s == cases[i].v);
		assert_ptr_equal(m.p, b.data + b.len);
		m = cur(b.data, b.len);
		assert_int_equal(lb__mp_uint(&m, &u), LB_ECORRUPT);
		assert_non_null(strstr(lb_errmsg(), "negative"));
		lb__buf_free(&b);
	}
}

/* Readers take every integer format holding a value in range (§2.3). */
static void test_wal_mp__uint_from_signed_forms(void **state)
{
	static const uint8_t i8[] = {0xd0, 0x05}, i16[] = {0xd1, 0x00, 0x05},
	                     i32[] = {0xd2, 0, 0, 0, 0x05},
	                     i64[] = {0xd3, 0, 0, 0, 0, 0, 0, 0, 0x05},
	                     u64[] = {0xcf, 0, 0, 0, 0, 0, 0, 0, 0x05},
	                     neg8[] = {0xd0, 0xfb};
	const uint8_t *forms[] = {i8, i16, i32, i64, u64};
	const size_t sizes[] = {sizeof i8, sizeof i16, sizeof i32, sizeof i64,
	                        sizeof u64};
	size_t i;
	uint64_t u;
	int64_t s;
	lb_mp m;
	(void)state;

	for (i = 0; i < 5; i++) {
		m = cur(forms[i], sizes[i]);
		assert_int_equal(lb__mp_peek(&m), LB_MP_UINT);
		assert_int_equal(lb__mp_uint(&m, &u), 0);
		assert_true(u == 5);
		assert_ptr_equal(m.p, forms[i] + sizes[i]);
		m = cur(forms[i], sizes[i]);
		assert_int_equal(lb__mp_int(&m, &s), 0);
		assert_true(s == 5);
	}
	m = cur(neg8, 2);
	assert_int_equal(lb__mp_peek(&m), LB_MP_NINT);
	assert_int_equal(lb__mp_int(&m, &s), 0);
	assert_true(s == -5);
	/* A signed form too short to tell its sign. */
	m = cur(neg8, 1);
	assert_int_equal(lb__mp_peek(&m), LB_MP_INVALID);
}

/* ---- strings, bins, containers ------------------------------------------- */

static void test_wal_mp__str_widths(void **state)
{
	static const struct {
		size_t len, hdr;
		uint8_t first;
	} cases[] = {
	        {0, 1, 0xa0},     {1, 1, 0xa1},     {31, 1, 0xbf},
	        {32, 2, 0xd9},    {255, 2, 0xd9},   {256, 3, 0xda},
	        {65535, 3, 0xda}, {65536, 5, 0xdb},
	};
	char *text = malloc(65536);
	size_t i;
	(void)state;

	assert_non_null(text);
	for (i = 0; i < 65536; i++)
		text[i] = (char)('a' + i % 26);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *s;
		uint32_t len;
		lb_buf b;
		lb_mp m;
		uint8_t *p;

		lb__buf_init(&b);
		assert_int_equal(lb__mpw_str(&b, text, cases[i].len), 0);
		assert_int_equal(b.len, cases[i].hdr + cases[i].len);
		assert_int_equal(b.data[0], cases[i].first);
		p = exact(b.data, b.len);
		m = cur(p, b.len);
		assert_int_equal(lb__mp_peek(&m), LB_MP_STR);
		assert_int_equal(lb__mp_str(&m, &s, &len), 0);
		assert_int_equal(len, cases[i].len);
		assert_ptr_equal(s, (const char *)p + cases[i].hdr);
		assert_memory_equal(s, text, len);
		assert_ptr_equal(m.p, p + b.len);
		/* Not a bin. */
		m = cur(p, b.len);
		{
			const void *v;
			assert_int_equal(lb__mp_bin(&m, &v, &len), LB_ECORRUPT);
			assert_non_null(strstr(lb_errmsg(), "bin expected"));
		}
		m = cur(p, b.len);
		assert_int_equal(lb__mp_skip(&m), 0);
		assert_ptr_equal(m.p, p + b.len);
		free(p);
		lb__buf_free(&b);
	}
	free(text);
}

/* Wider-than-needed forms are accepted by the readers. */
static void test_wal_mp__str_long_forms(void **state)
{
	static const uint8_t s8[] = {0xd9, 3, 'a', 'b', 'c'},
	                     s16[] = {0xda, 0, 3, 'a', 'b', 'c'},
	                     s32[] = {0xdb, 0, 0, 0, 3, 'a', 'b', 'c'},
	                     b32[] = {0xc6, 0, 0, 0, 3, 'a', 'b', 'c'};
	const char *s;
	const void *v;
	uint32_t len;
	lb_mp m;
	(void)state;

	m = cur(s8, sizeof s8);
	assert_int_equal(lb__mp_str(&m, &s, &len), 0);
	assert_int_equal(len, 3);
	m = cur(s16, sizeof s16);
	assert_int_equal(lb__mp_str(&m, &s, &len), 0);
	assert_int_equal(len, 3);
	m = cur(s32, sizeof s32);
	assert_int_equal(lb__mp_str(&m, &s, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(s, "abc", 3);
	m = cur(b32, sizeof b32);
	assert_int_equal(lb__mp_bin(&m, &v, &len), 0);
	assert_int_equal(len, 3);
	assert_ptr_equal(m.p, b32 + sizeof b32);
}

static void test_wal_mp__bin_widths(void **state)
{
	static const struct {
		size_t len, hdr;
		uint8_t first;
	} cases[] = {
	        {0, 2, 0xc4},     {1, 2, 0xc4},     {255, 2, 0xc4},
	        {256, 3, 0xc5},   {65535, 3, 0xc5}, {65536, 5, 0xc6},
	        {70000, 5, 0xc6},
	};
	uint8_t *bytes = calloc(1, 70000);
	size_t i;
	(void)state;

	assert_non_null(bytes);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const void *v;
		uint32_t len;
		lb_buf b;
		lb_mp m;

		lb__buf_init(&b);
		assert_int_equal(lb__mpw_bin(&b, bytes, cases[i].len), 0);
		assert_int_equal(b.len, cases[i].hdr + cases[i].len);
		assert_int_equal(b.data[0], cases[i].first);
		m = cur(b.data, b.len);
		assert_int_equal(lb__mp_peek(&m), LB_MP_BIN);
		assert_int_equal(lb__mp_bin(&m, &v, &len), 0);
		assert_int_equal(len, cases[i].len);
		assert_ptr_equal(v, b.data + cases[i].hdr);
		m = cur(b.data, b.len);
		assert_int_equal(lb__mp_skip(&m), 0);
		assert_ptr_equal(m.p, b.data + b.len);
		lb__buf_free(&b);
	}
	free(bytes);
}

static void test_wal_mp__container_widths(void **state)
{
	static const struct {
		uint32_t n;
		size_t hdr;
		uint8_t afirst, mfirst;
	} cases[] = {
	        {0, 1, 0x90, 0x80},     {15, 1, 0x9f, 0x8f},
	        {16, 3, 0xdc, 0xde},    {65535, 3, 0xdc, 0xde},
	        {65536, 5, 0xdd, 0xdf},
	};
	size_t i, k;
	(void)state;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		lb_buf a, mp;
		uint32_t n;
		lb_mp m;

		lb__buf_init(&a);
		lb__buf_init(&mp);
		assert_int_equal(lb__mpw_array(&a, cases[i].n), 0);
		assert_int_equal(lb__mpw_map(&mp, cases[i].n), 0);
		assert_int_equal(a.len, cases[i].hdr);
		assert_int_equal(mp.len, cases[i].hdr);
		assert_int_equal(a.data[0], cases[i].afirst);
		assert_int_equal(mp.data[0], cases[i].mfirst);
		/* Without the elements the counts are implausible... */
		if (cases[i].n) {
			m = cur(a.data, a.len);
			assert_int_equal(lb__mp_array(&m, &n), LB_ECORRUPT);
			m = cur(mp.data, mp.len);
			assert_int_equal(lb__mp_map(&m, &n), LB_ECORRUPT);
		}
		/* ...with them, fine. */
		for (k = 0; k < cases[i].n; k++) {
			assert_int_equal(lb__mpw_nil(&a), 0);
			assert_int_equal(lb__mpw_uint(&mp, k), 0);
			assert_int_equal(lb__mpw_bool(&mp, 1), 0);
		}
		m = cur(a.data, a.len);
		assert_int_equal(lb__mp_peek(&m), LB_MP_ARRAY);
		assert_int_equal(lb__mp_array(&m, &n), 0);
		assert_int_equal(n, cases[i].n);
		assert_ptr_equal(m.p, a.data + cases[i].hdr);
		m = cur(a.data, a.len);
		assert_int_equal(lb__mp_skip(&m), 0);
		assert_ptr_equal(m.p, a.data + a.len);
		m = cur(mp.data, mp.len);
		assert_int_equal(lb__mp_peek(&m), LB_MP_MAP);
		assert_int_equal(lb__mp_map(&m, &n), 0);
		assert_int_equal(n, cases[i].n);
		m = cur(mp.data, mp.len);
		assert_int_equal(lb__mp_skip(&m), 0);
		assert_ptr_equal(m.p, mp.data + mp.len);
		/* Not each other. */
		m = cur(a.data, a.len);
		assert_int_equal(lb__mp_map(&m, &n), LB_ECORRUPT);
		m = cur(mp.data, mp.len);
		assert_int_equal(lb__mp_array(&m, &n), LB_ECORRUPT);
		lb__buf_free(&a);
		lb__buf_free(&mp);
	}
}

/* A header claiming 2^32 - 1 elements in a few bytes fails at once. */
static void test_wal_mp__huge_counts_refused(void **state)
{
	static const uint8_t a32[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0},
	                     m32[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0},
	                     a16[] = {0xdc, 0x00, 0x03, 0xc0, 0xc0},
	                     m1[] = {0x81, 0xc0}, m1ok[] = {0x81, 0xc0, 0xc0},
	                     s32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
	                     b32[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 'a'},
	                     e32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 1, 'a'};
	const char *s;
	const void *v;
	uint32_t n;
	uint8_t *p;
	lb_mp m;
	(void)state;

	p = exact(a32, sizeof a32);
	m = cur(p, sizeof a32);
	assert_int_equal(lb__mp_array(&m, &n), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "4294967295"));
	m = cur(p, sizeof a32);
	assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
	free(p);
	m = cur(m32, sizeof m32);
	assert_int_equal(lb__mp_map(&m, &n), LB_ECORRUPT);
	m = cur(m32, sizeof m32);
	assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
	m = cur(a16, sizeof a16);
	assert_int_equal(lb__mp_array(&m, &n), LB_ECORRUPT);
	m = cur(a16, sizeof a16);
	assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
	m = cur(m1, sizeof m1);
	assert_int_equal(lb__mp_map(&m, &n), LB_ECORRUPT);
	m = cur(m1ok, sizeof m1ok);
	assert_int_equal(lb__mp_map(&m, &n), 0);
	assert_int_equal(n, 1);
	m = cur(s32, sizeof s32);
	assert_int_equal(lb__mp_str(&m, &s, &n), LB_ECORRUPT);
	m = cur(s32, sizeof s32);
	assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
	m = cur(b32, sizeof b32);
	assert_int_equal(lb__mp_bin(&m, &v, &n), LB_ECORRUPT);
	m = cur(b32, sizeof b32);
	assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
	m = cur(e32, sizeof e32);
	assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
}

/* ---- scalars, floats, ext, the invalid byte ------------------------------ */

static void test_wal_mp__nil_bool(void **state)
{
	lb_buf b;
	lb_mp m;
	int v = -1;
	(void)state;

	lb__buf_init(&b);
	assert_int_equal(lb__mpw_nil(&b), 0);
	assert_int_equal(lb__mpw_bool(&b, 1), 0);
	assert_int_equal(lb__mpw_bool(&b, 0), 0);
	assert_int_equal(lb__mpw_bool(&b, 42), 0);
	EXPECT_BYTES(&b, 0xc0, 0xc3, 0xc2, 0xc3);
	m = cur(b.data, b.len);
	assert_int_equal(lb__mp_peek(&m), LB_MP_NIL);
	assert_int_equal(lb__mp_bool(&m, &v), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "bool expected, found nil"));
	assert_int_equal(lb__mp_nil(&m), 0);
	assert_int_equal(lb__mp_peek(&m), LB_MP_BOOL);
	assert_int_equal(lb__mp_nil(&m), LB_ECORRUPT);
	assert_int_equal(lb__mp_bool(&m, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(lb__mp_bool(&m, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(lb__mp_bool(&m, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(lb__mp_peek(&m), LB_MP_INVALID);
	assert_int_equal(lb__mp_nil(&m), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "end of the data"));
	lb__buf_free(&b);
}

static void test_wal_mp__floats(void **state)
{
	static const uint8_t f32[] = {0xca, 0x3f, 0x80, 0x00, 0x00};
	uint64_t u;
	double d = 0;
	size_t k;
	lb_buf b;
	lb_mp m;
	(void)state;

	lb__buf_init(&b);
	assert_int_equal(lb__mpw_double(&b, 1.0), 0);
	EXPECT_BYTES(&b, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0);
	m = cur(b.data, b.len);
	assert_int_equal(lb__mp_peek(&m), LB_MP_FLOAT);
	assert_int_equal(lb__mp_uint(&m, &u), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "found float"));
	assert_int_equal(lb__mp_skip(&m), 0);
	assert_ptr_equal(m.p, b.data + b.len);
	m = cur(b.data, b.len);
	assert_int_equal(lb__mp_float(&m, &d), 0);
	assert_true(d == 1.0);
	assert_ptr_equal(m.p, b.data + b.len);
	m = cur(f32, sizeof f32);
	assert_int_equal(lb__mp_peek(&m), LB_MP_FLOAT);
	assert_int_equal(lb__mp_skip(&m), 0);
	assert_ptr_equal(m.p, f32 + sizeof f32);
	m = cur(f32, sizeof f32);
	assert_int_equal(lb__mp_float(&m, &d), 0);
	assert_true(d == 1.0);
	assert_ptr_equal(m.p, f32 + sizeof f32);
	/* a float is read only as a float, and whole */
	m = cur(b.data, b.len);
	assert_int_equal(lb__mp_uint(&m, &u), LB_ECORRUPT);
	for (k = 0; k < b.len; k++) {
		uint8_t *p = exact(b.data, k);
		m = cur(p, k);
		assert_int_equal(lb__mp_float(&m, &d), LB_ECORRUPT);
		free(p);
	}
	m = cur((const uint8_t *)"\x01", 1);
	assert_int_equal(lb__mp_float(&m, &d), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "float expected"));
	lb__buf_free(&b);
}

static void test_wal_mp__ext_forms(void **state)
{
	/* fixext 1, 2, 4, 8, 16; ext 8, 16, 32 (length, type, data) */
	static const uint8_t fx[] = {0xd4, 1, 0xaa}, fx2[] = {0xd5, 1, 0, 0},
	                     fx4[] = {0xd6, 1, 0, 0, 0, 0},
	                     fx8[] = {0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0},
	                     fx16[] = {0xd8, 1, 0, 0, 0, 0, 0, 0, 0,
	                               0,    0, 0, 0, 0, 0, 0, 0, 0},
	                     e8[] = {0xc7, 2, 5, 'a', 'b'},
	                     e16[] = {0xc8, 0, 2, 5, 'a', 'b'},
	                     e32[] = {0xc9, 0, 0, 0, 2, 5, 'a', 'b'},
	                     e0[] = {0xc7, 0, 5};
	const uint8_t *forms[] = {fx, fx2, fx4, fx8, fx16, e8, e16, e32, e0};
	const size_t sizes[] = {sizeof fx,  sizeof fx2,  sizeof fx4,
	                        sizeof fx8, sizeof fx16, sizeof e8,
	                        sizeof e16, sizeof e32,  sizeof e0};
	const int8_t types[] = {1, 1, 1, -1, 1, 5, 5, 5, 5};
	const uint32_t lens[] = {1, 2, 4, 8, 16, 2, 2, 2, 0};
	const void *data;
	uint32_t len;
	int8_t type;
	size_t i, k;
	lb_mp m;
	(void)state;

	for (i = 0; i < 9; i++) {
		uint8_t *p = exact(forms[i], sizes[i]);
		m = cur(p, sizes[i]);
		assert_int_equal(lb__mp_peek(&m), LB_MP_EXT);
		assert_int_equal(lb__mp_skip(&m), 0);
		assert_ptr_equal(m.p, p + sizes[i]);
		/* Read: the type and the payload, the data's last bytes. */
		m = cur(p, sizes[i]);
		assert_int_equal(lb__mp_ext(&m, &type, &data, &len), 0);
		assert_ptr_equal(m.p, p + sizes[i]);
		assert_int_equal(type, types[i]);
		assert_int_equal(len, lens[i]);
		assert_ptr_equal(data, p + sizes[i] - lens[i]);
		free(p);
		/* Every truncation fails. */
		for (k = 0; k < sizes[i]; k++) {
			p = exact(forms[i], k);
			m = cur(p, k);
			assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
			m = cur(p, k);
			assert_int_equal(lb__mp_ext(&m, &type, &data, &len),
			                 LB_ECORRUPT);
			free(p);
		}
	}
}

static void test_wal_mp__invalid_byte(void **state)
{
	static const uint8_t c1[] = {0xc1, 0, 0, 0, 0, 0, 0, 0, 0};
	const char *s;
	const void *v;
	uint64_t u;
	int64_t i;
	uint32_t n;
	int b;
	lb_mp m = cur(c1, sizeof c1);
	(void)state;

	assert_int_equal(lb__mp_peek(&m), LB_MP_INVALID);
	assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "0xc1"));
	assert_int_equal(lb__mp_nil(&m), LB_ECORRUPT);
	assert_int_equal(lb__mp_bool(&m, &b), LB_ECORRUPT);
	assert_int_equal(lb__mp_uint(&m, &u), LB_ECORRUPT);
	assert_int_equal(lb__mp_int(&m, &i), LB_ECORRUPT);
	assert_int_equal(lb__mp_str(&m, &s, &n), LB_ECORRUPT);
	assert_int_equal(lb__mp_bin(&m, &v, &n), LB_ECORRUPT);
	assert_int_equal(lb__mp_array(&m, &n), LB_ECORRUPT);
	assert_int_equal(lb__mp_map(&m, &n), LB_ECORRUPT);
	assert_ptr_equal(m.p, c1);
	m = cur(c1, 0);
	assert_int_equal(lb__mp_peek(&m), LB_MP_INVALID);
	assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
}

/* Every proper prefix of every item fails with every reader that fits its
 * type, and with skip; never reading outside the (exact-size) prefix. */
static void test_wal_mp__every_truncation(void **state)
{
	lb_buf b;
	size_t starts[64], nitems = 0, i, k;
	(void)state;

	lb__buf_init(&b);
#define ITEM(call)                                                             \
	do {                                                                   \
		starts[nitems++] = b.len;                                      \
		assert_int_equal(call, 0);                                     \
	} while (0)
	ITEM(lb__mpw_uint(&b, 200));
	ITEM(lb__mpw_uint(&b, 60000));
	ITEM(lb__mpw_uint(&b, 70000));
	ITEM(lb__mpw_uint(&b, UINT64_MAX));
	ITEM(lb__mpw_int(&b, -100));
	ITEM(lb__mpw_int(&b, -1000));
	ITEM(lb__mpw_int(&b, -100000));
	ITEM(lb__mpw_int(&b, INT64_MIN));
	ITEM(lb__mpw_str(&b, "abc", 3));
	ITEM(lb__mpw_str(&b, "0123456789012345678901234567890123456789", 40));
	ITEM(lb__mpw_bin(&b, "xyz", 3));
	ITEM(lb__mpw_double(&b, 2.5));
	ITEM(lb__mpw_array(&b, 20));
	for (k = 0; k < 20; k++)
		assert_int_equal(lb__mpw_uint(&b, k), 0);
	ITEM(lb__mpw_map(&b, 1));
	assert_int_equal(lb__mpw_str(&b, "k", 1), 0);
	assert_int_equal(lb__mpw_str(&b, "v", 1), 0);
	starts[nitems] = b.len;
#undef ITEM
	for (i = 0; i < nitems; i++) {
		size_t len = starts[i + 1] - starts[i];
		for (k = 0; k < len; k++) {
			uint8_t *p = exact(b.data + starts[i], k);
			const char *s;
			const void *v;
			uint64_t u;
			int64_t n64;
			uint32_t n;
			lb_mp m;
			int rc;

			m = cur(p, k);
			assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
			m = cur(p, k);
			switch (lb__mp_peek(&m)) {
			case LB_MP_UINT:
				rc = lb__mp_uint(&m, &u);
				break;
			case LB_MP_NINT:
				rc = lb__mp_int(&m, &n64);
				break;
			case LB_MP_STR:
				rc = lb__mp_str(&m, &s, &n);
				break;
			case LB_MP_BIN:
				rc = lb__mp_bin(&m, &v, &n);
				break;
			case LB_MP_ARRAY:
			case LB_MP_MAP:
				/* A header reader checks only that the count is
				 * plausible (a lower bound of the bytes left),
				 * so it fails only while the header itself is
				 * cut. */
				rc = lb__mp_peek(&m) == LB_MP_MAP
				             ? lb__mp_map(&m, &n)
				             : lb__mp_array(&m, &n);
				if (rc == 0) {
					assert_true(m.p - p < (ptrdiff_t)k ||
					            n == 0);
					rc = LB_ECORRUPT;
				}
				break;
			default:
				rc = LB_ECORRUPT; /* INVALID at the end, FLOAT
				                   */
				break;
			}
			assert_int_equal(rc, LB_ECORRUPT);
			free(p);
		}
	}
	lb__buf_free(&b);
}

/* ---- skip and nesting ---------------------------------------------------- */

static uint8_t *nested(size_t depth, uint8_t open, size_t *len)
{
	/* depth containers, each holding the next; the innermost holds 1 */
	uint8_t *p = malloc(2 * depth + 1);
	size_t i, n = 0;

	assert_non_null(p);
	for (i = 0; i < depth; i++) {
		p[n++] = open;
		if (open == 0x81)
			p[n++] = 0xc0; /* map key */
	}
	p[n++] = 0x01;
	*len = n;
	return p;
}

static void test_wal_mp__skip_depth_limit(void **state)
{
	static const uint8_t kinds[] = {0x91, 0x81};
	size_t len, i;
	uint8_t *p;
	lb_mp m;
	(void)state;

	for (i = 0; i < 2; i++) {
		p = nested(LB__MP_DEPTH_MAX, kinds[i], &len);
		m = cur(p, len);
		assert_int_equal(lb__mp_skip(&m), 0);
		assert_ptr_equal(m.p, p + len);
		free(p);
		p = nested(LB__MP_DEPTH_MAX + 1, kinds[i], &len);
		m = cur(p, len);
		assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
		assert_non_null(strstr(lb_errmsg(), "nested deeper"));
		free(p);
		/* Hostile depth: iterative, so no stack overflow. */
		p = nested(1000000, kinds[i], &len);
		m = cur(p, len);
		assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
		free(p);
	}
	/* An empty container at depth 65 is too deep as well. */
	p = nested(LB__MP_DEPTH_MAX + 1, 0x91, &len);
	p[len - 2] = 0x90;
	m = cur(p, len - 1);
	assert_int_equal(lb__mp_skip(&m), LB_ECORRUPT);
	p[len - 3] = 0x90; /* now 64 levels, the last one empty */
	m = cur(p, len - 2);
	assert_int_equal(lb__mp_skip(&m), 0);
	assert_ptr_equal(m.p, p + len - 2);
	free(p);
}

/* Random nested values built with the writers: skip lands exactly on the
 * next item. */
static void gen(lb_buf *b, uint64_t *rs, int depth)
{
	uint64_t k = th_below(rs, depth < 6 ? 12 : 9), i, n;
	char s[300];

	switch (k) {
	case 0:
		assert_int_equal(lb__mpw_nil(b), 0);
		break;
	case 1:
		assert_int_equal(lb__mpw_bool(b, (int)th_below(rs, 2)), 0);
		break;
	case 2:
		assert_int_equal(
		        lb__mpw_uint(b, th_rand(rs) >> th_below(rs, 64)), 0);
		break;
	case 3:
		assert_int_equal(
		        lb__mpw_int(b, -(int64_t)(th_rand(rs) >>
		                                  (1 + th_below(rs, 63)))),
		        0);
		break;
	case 4:
		assert_int_equal(lb__mpw_double(b, (double)th_rand(rs)), 0);
		break;
	case 5:
	case 6:
		n = th_below(rs, sizeof s);
		memset(s, 'q', n);
		assert_int_equal(k == 5 ? lb__mpw_str(b, s, n)
		                        : lb__mpw_bin(b, s, n),
		                 0);
		break;
	case 7:
	case 8: {
		static const uint8_t ext[] = {0xd6, 7, 1, 2, 3, 4};
		assert_int_equal(lb__buf_append(b, ext, sizeof ext), 0);
		break;
	}
	case 9:
	case 10:
		n = th_below(rs, 20);
		assert_int_equal(lb__mpw_array(b, (uint32_t)n), 0);
		for (i = 0; i < n; i++)
			gen(b, rs, depth + 1);
		break;
	default:
		n = th_below(rs, 10);
		assert_int_equal(lb__mpw_map(b, (uint32_t)n), 0);
		for (i = 0; i < 2 * n; i++)
			gen(b, rs, depth + 1);
		break;
	}
}

static void test_wal_mp__skip_random_values(void **state)
{
	uint64_t rs = th_seed(20240601), round;
	(void)state;

	for (round = 0; round < 300; round++) {
		size_t mid;
		lb_buf b;
		lb_mp m;
		int rc;

		lb__buf_init(&b);
		gen(&b, &rs, 0);
		mid = b.len;
		gen(&b, &rs, 0);
		/* (th_assert_seeded evaluates its argument twice: no side
		 * effects inside it.) */
		m = cur(b.data, b.len);
		rc = lb__mp_skip(&m);
		th_assert_seeded(rc == 0);
		th_assert_seeded(m.p == b.data + mid);
		rc = lb__mp_skip(&m);
		th_assert_seeded(rc == 0);
		th_assert_seeded(m.p == b.data + b.len);
		/* The first value cut anywhere short fails. */
		{
			size_t cut = th_below(&rs, mid);
			uint8_t *p = exact(b.data, cut);
			m = cur(p, cut);
			rc = lb__mp_skip(&m);
			th_assert_seeded(rc == LB_ECORRUPT);
			free(p);
		}
		lb__buf_free(&b);
	}
}

/* ---- UTF-8 --------------------------------------------------------------- */

static void test_wal_mp__utf8_valid(void **state)
{
	static const struct {
		const char *s;
		size_t chars;
	} ok[] = {
	        {"", 0},
	        {"plain ascii", 11},
	        {"\x7f", 1},
	        {"\xc2\x80", 1},         /* U+0080 */
	        {"\xdf\xbf", 1},         /* U+07FF */
	        {"\xe0\xa0\x80", 1},     /* U+0800 */
	        {"\xed\x9f\xbf", 1},     /* U+D7FF */
	        {"\xee\x80\x80", 1},     /* U+E000 */
	        {"\xef\xbf\xbf", 1},     /* U+FFFF */
	        {"\xf0\x90\x80\x80", 1}, /* U+10000 */
	        {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF */
	        {"h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac", 13},
	};
	size_t i, n;
	(void)state;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		n = 999;
		assert_int_equal(lb__utf8_count((const uint8_t *)ok[i].s,
		                                strlen(ok[i].s), &n),
		                 0);
		assert_int_equal(n, ok[i].chars);
		assert_int_equal(lb__utf8_count((const uint8_t *)ok[i].s,
		                                strlen(ok[i].s), NULL),
		                 0);
	}
	/* An embedded NUL is valid UTF-8 (U+0000). */
	assert_int_equal(lb__utf8_count((const uint8_t *)"a\0b", 3, &n), 0);
	assert_int_equal(n, 3);
}

static void test_wal_mp__utf8_invalid(void **state)
{
	static const char *bad[] = {
	        "\x80",             /* lone continuation */
	        "\xbf",             /* lone continuation */
	        "\xc0\x80",         /* overlong NUL */
	        "\xc1\xbf",         /* overlong */
	        "\xe0\x80\x80",     /* overlong */
	        "\xe0\x9f\xbf",     /* overlong U+07FF */
	        "\xf0\x80\x80\x80", /* overlong */
	        "\xf0\x8f\xbf\xbf", /* overlong U+FFFF */
	        "\xed\xa0\x80",     /* U+D800 surrogate */
	        "\xed\xbf\xbf",     /* U+DFFF surrogate */
	        "\xf4\x90\x80\x80", /* U+110000 */
	        "\xf5\x80\x80\x80",
	        "\xf8\x88\x80\x80\x80",
	        "\xff",
	        "\xfe",
	        "\xc2",             /* truncated */
	        "\xe2\x82",         /* truncated */
	        "\xf0\x9f\x98",     /* truncated */
	        "\xc2\x41",         /* bad continuation */
	        "\xe2\x28\xa1",     /* bad continuation */
	        "\xe2\x82\x28",     /* bad third byte */
	        "\xf0\x9f\x28\x80", /* bad third byte */
	        "\xf0\x9f\x98\x28", /* bad fourth byte */
	};
	size_t i, n;
	(void)state;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		size_t len = strlen(bad[i]);
		uint8_t *p = exact(bad[i], len);
		assert_int_equal(lb__utf8_count(p, len, &n), LB_ECORRUPT);
		assert_non_null(strstr(lb_errmsg(), "UTF-8"));
		free(p);
	}
}

/* The 8-byte ASCII fast path: a bad byte at every offset is found, and
 * the count is right around it. */
static void test_wal_mp__utf8_fast_path(void **state)
{
	uint8_t s[67];
	size_t i, n;
	(void)state;

	memset(s, 'a', sizeof s);
	assert_int_equal(lb__utf8_count(s, sizeof s, &n), 0);
	assert_int_equal(n, sizeof s);
	for (i = 0; i < sizeof s; i++) {
		uint8_t *p;
		s[i] = 0x80;
		p = exact(s, sizeof s);
		assert_int_equal(lb__utf8_count(p, sizeof s, &n), LB_ECORRUPT);
		free(p);
		if (i + 1 < sizeof s) {
			s[i] = 0xc3;
			s[i + 1] = 0xa9;
			p = exact(s, sizeof s);
			assert_int_equal(lb__utf8_count(p, sizeof s, &n), 0);
			assert_int_equal(n, sizeof s - 1);
			free(p);
			s[i + 1] = 'a';
		}
		s[i] = 'a';
	}
}

/* ---- the buffer and writer errors ---------------------------------------- */

static void test_wal_mp__buf(void **state)
{
	lb_buf b;
	size_t i;
	(void)state;

	lb__buf_init(&b);
	assert_null(b.data);
	assert_int_equal(lb__buf_append(&b, NULL, 0), 0);
	assert_int_equal(b.len, 0);
	for (i = 0; i < 10000; i++)
		assert_int_equal(lb__buf_append(&b, &i, 1), 0);
	assert_int_equal(b.len, 10000);
	assert_true(b.cap >= b.len);
	for (i = 0; i < 10000; i++)
		assert_int_equal(b.data[i], (uint8_t)i);
	assert_int_equal(lb__buf_reserve(&b, SIZE_MAX), LB_ENOMEM);
	assert_int_equal(lb__buf_reserve(&b, SIZE_MAX - b.len), LB_ENOMEM);
	assert_true(lb_errmsg()[0] != '\0');
	assert_int_equal(b.len, 10000); /* unchanged by the failures */
	lb__buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
	lb__buf_free(&b);
	lb__buf_free(NULL);
}

static void test_wal_mp__writer_refuses_huge(void **state)
{
	lb_buf b;
	(void)state;

	lb__buf_init(&b);
	/* Refused on the length alone: the pointer is never read. */
	assert_int_equal(lb__mpw_str(&b, "", (size_t)UINT32_MAX + 1),
	                 LB_EINVAL);
	assert_int_equal(lb__mpw_bin(&b, "", (size_t)UINT32_MAX + 1),
	                 LB_EINVAL);
	assert_int_equal(b.len, 0);
	lb__buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_wal_mp__uint_widths),
	        cmocka_unit_test(test_wal_mp__negative_widths),
	        cmocka_unit_test(test_wal_mp__uint_from_signed_forms),
	        cmocka_unit_test(test_wal_mp__str_widths),
	        cmocka_unit_test(test_wal_mp__str_long_forms),
	        cmocka_unit_test(test_wal_mp__bin_widths),
	        cmocka_unit_test(test_wal_mp__container_widths),
	        cmocka_unit_test(test_wal_mp__huge_counts_refused),
	        cmocka_unit_test(test_wal_mp__nil_bool),
	        cmocka_unit_test(test_wal_mp__floats),
	        cmocka_unit_test(test_wal_mp__ext_forms),
	        cmocka_unit_test(test_wal_mp__invalid_byte),
	        cmocka_unit_test(test_wal_mp__every_truncation),
	        cmocka_unit_test(test_wal_mp__skip_depth_limit),
	        cmocka_unit_test(test_wal_mp__skip_random_values),
	        cmocka_unit_test(test_wal_mp__utf8_valid),
	        cmocka_unit_test(test_wal_mp__utf8_invalid),
	        cmocka_unit_test(test_wal_mp__utf8_fast_path),
	        cmocka_unit_test(test_wal_mp__buf),
	        cmocka_unit_test(test_wal_mp__writer_refuses_huge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
