/* SPDX-License-Identifier: MIT */
/*
 * tests/wal/segment.c: change records and segments (wal/segment.c),
 * FORMAT.md §3 and §4.
 *
 * Round trips of every op and size at levels 0, 1 and 9; hand-written
 * golden segments that pin the format to the spec; every single-byte
 * change and every truncation of real segments; and crafted segments with
 * a correct CRC that break each rule the reader enforces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <isa-l/igzip_lib.h>
#include <zlib.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "../helpers.h"
#include "wal/wal.h"

/* An opaque table's schema, §6: [2, 0, false, [], nil]. */
static const uint8_t opaque_schema[] = {0x95, 0x02, 0x00, 0xc2, 0x90, 0xc0};

static lb_wal_rec rec(int op, const char *table, const char *key,
                      const void *before, size_t blen, const void *after,
                      size_t alen)
{
	lb_wal_rec r;

	memset(&r, 0, sizeof r);
	r.op = op;
	r.table = table;
	r.tlen = (uint32_t)strlen(table);
	r.key = key;
	r.klen = (uint32_t)strlen(key);
	r.before = before;
	r.blen = (uint32_t)blen;
	r.has_before = before != NULL;
	r.after = after;
	r.alen = (uint32_t)alen;
	r.has_after = after != NULL;
	return r;
}

/* rec() with a prev (FORMAT.md §4.1). */
static lb_wal_rec recp(int op, const char *table, const char *key,
                       const void *before, size_t blen, const void *after,
                       size_t alen, uint64_t prev)
{
	lb_wal_rec r = rec(op, table, key, before, blen, after, alen);

	r.prev = prev;
	return r;
}

static void expect_rec(const lb_wal_rec *got, const lb_wal_rec *want)
{
	assert_int_equal(got->op, want->op);
	assert_true(got->prev == want->prev);
	assert_int_equal(got->tlen, want->tlen);
	assert_memory_equal(got->table, want->table, want->tlen);
	assert_int_equal(got->klen, want->klen);
	assert_memory_equal(got->key, want->key, want->klen);
	assert_int_equal(!!got->has_before, !!want->has_before);
	if (want->has_before) {
		assert_int_equal(got->blen, want->blen);
		assert_non_null(got->before);
		if (want->blen)
			assert_memory_equal(got->before, want->before,
			                    want->blen);
	} else {
		assert_null(got->before);
		assert_int_equal(got->blen, 0);
	}
	assert_int_equal(!!got->has_after, !!want->has_after);
	if (want->has_after) {
		assert_int_equal(got->alen, want->alen);
		assert_non_null(got->after);
		if (want->alen)
			assert_memory_equal(got->after, want->after,
			                    want->alen);
	} else {
		assert_null(got->after);
		assert_int_equal(got->alen, 0);
	}
}

/* Write recs into one segment at level; return an exact-size copy. */
static uint8_t *build(int level, const lb_wal_rec *recs, size_t n, size_t *len)
{
	const uint8_t *seg;
	lb_segw w;
	uint8_t *copy;
	size_t i;

	assert_int_equal(lb__segw_init(&w, level), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(lb__segw_add(&w, &recs[i]), 0);
	assert_int_equal(w.count, n);
	assert_int_equal(lb__segw_finish(&w, &seg, len), 0);
	copy = malloc(*len);
	assert_non_null(copy);
	memcpy(copy, seg, *len);
	lb__segw_free(&w);
	return copy;
}

static void expect_segment(const uint8_t *seg, size_t len,
                           const lb_wal_rec *recs, size_t n)
{
	lb_wal_rec got;
	lb_segr r;
	size_t i;

	lb__segr_init(&r);
	assert_int_equal(lb__segr_load(&r, seg, len), 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(lb__segr_next(&r, &got), 1);
		expect_rec(&got, &recs[i]);
	}
	assert_int_equal(lb__segr_next(&r, &got), 0);
	assert_int_equal(lb__segr_next(&r, &got), 0);
	lb__segr_free(&r);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Recompute the CRC of a (crafted) segment in place, with zlib. */
static void fix_crc(uint8_t *seg, size_t len)
{
	uLong crc = crc32(crc32(0L, seg, 20), seg + 24, (uInt)(len - 24));
	put32(seg + 20, (uint32_t)crc);
}

/* A segment around payload with the given header fields and a correct
 * CRC; exact-size heap block. */
static uint8_t *craft(unsigned version, unsigned codec, uint32_t raw_len,
                      uint32_t count, const void *payload, size_t plen,
                      size_t *len)
{
	uint8_t *s = malloc(24 + plen);

	assert_non_null(s);
	s[0] = 0x89;
	s[1] = 'L';
	s[2] = 'B';
	s[3] = 'W';
	s[4] = (uint8_t)version;
	s[5] = (uint8_t)(version >> 8);
	s[6] = (uint8_t)codec;
	s[7] = 0;
	put32(s + 8, raw_len);
	put32(s + 12, count);
	put32(s + 16, (uint32_t)plen);
	if (plen)
		memcpy(s + 24, payload, plen);
	*len = 24 + plen;
	fix_crc(s, *len);
	return s;
}

/* A stored segment of the given records (raw msgpack bytes). */
static int load_stored(const void *raw, size_t rawlen, uint32_t count)
{
	size_t len;
	uint8_t *s = craft(1, 0, (uint32_t)rawlen, count, raw, rawlen, &len);
	lb_segr r;
	int rc;

	lb__segr_init(&r);
	rc = lb__segr_load(&r, s, len);
	lb__segr_free(&r);
	free(s);
	return rc;
}

/* ---- round trips --------------------------------------------------------- */

static void test_wal_segment__roundtrip_every_op(void **state)
{
	static const int levels[] = {0, 1, 2, 3, 4, 9};
	lb_wal_rec recs[] = {
	        rec(LB_OP_TABLE, "users", "users", NULL, 0, opaque_schema,
	            sizeof opaque_schema),
	        rec(LB_OP_PUT, "users", "alice", NULL, 0, "v1", 2),
	        recp(LB_OP_PUT, "users", "alice", "v1", 2, "v2", 2, 127),
	        recp(LB_OP_PUT, "users", "empty", NULL, 0, "", 0, 128),
	        recp(LB_OP_PUT, "users", "empty", "", 0, "x", 1, 65535),
	        recp(LB_OP_DELETE, "users", "alice", "v2", 2, NULL, 0, 65536),
	        recp(LB_OP_DELETE, "users", "empty", "", 0, NULL, 0,
	             (uint64_t)1 << 32),
	        recp(LB_OP_PUT, "A-z_0.9-", "k", NULL, 0, "v", 1, UINT64_MAX),
	        rec(LB_OP_TABLE, "users", "users", opaque_schema,
	            sizeof opaque_schema, NULL, 0),
	};
	size_t i, len;
	(void)state;

	for (i = 0; i < sizeof levels / sizeof *levels; i++) {
		uint8_t *seg = build(levels[i], recs, 9, &len);
		lb_seg_hdr h;

		assert_int_equal(lb__seg_header(seg, len, &h), 0);
		assert_int_equal(h.version, 1);
		assert_int_equal(h.count, 9);
		assert_int_equal(h.stored_len, len - 24);
		expect_segment(seg, len, recs, 9);
		free(seg);
	}
}

/* Deterministic, moderately compressible bytes. */
static uint8_t *pattern(size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n ? n : 1);
	uint64_t s = seed, x = 0;
	size_t i;

	assert_non_null(p);
	for (i = 0; i < n; i++) {
		if (i % 8 == 0)
			x = th_rand(&s);
		p[i] = (uint8_t)("abcdefgh"[x & 7] + (i % 64 == 0));
		x >>= 8;
	}
	return p;
}

static void test_wal_segment__roundtrip_large_values(void **state)
{
	static const int levels[] = {0, 1, 3, 9};
	size_t mib = 1u << 20, i, len;
	uint8_t *a = pattern(mib, 1), *b = pattern(mib, 2);
	uint8_t *big1 = pattern(LB_VALUE_MAX, 3),
	        *big2 = pattern(LB_VALUE_MAX, 4);
	(void)state;

	for (i = 0; i < sizeof levels / sizeof *levels; i++) {
		lb_wal_rec recs[] = {
		        rec(LB_OP_PUT, "t", "one-mib", b, mib, a, mib),
		        rec(LB_OP_DELETE, "t", "one-mib", a, mib, NULL, 0),
		};
		uint8_t *seg = build(levels[i], recs, 2, &len);
		if (levels[i])
			assert_int_equal(seg[6], 1); /* it compressed */
		expect_segment(seg, len, recs, 2);
		free(seg);
	}
	/* The largest record: both images at LB_VALUE_MAX. */
	for (i = 0; i < 3; i++) {
		lb_wal_rec recs[] = {
		        rec(LB_OP_PUT, "t", "max", big1, LB_VALUE_MAX, big2,
		            LB_VALUE_MAX),
		};
		uint8_t *seg = build(levels[i], recs, 1, &len);
		lb_seg_hdr h;
		assert_int_equal(lb__seg_header(seg, len, &h), 0);
		assert_true(h.raw_len > 2 * LB_VALUE_MAX);
		expect_segment(seg, len, recs, 1);
		free(seg);
	}
	free(a);
	free(b);
	free(big1);
	free(big2);
}

/* Many records, several segments through one writer and one reader. */
static void test_wal_segment__many_records(void **state)
{
	enum { N = 20000, PER = 3000 };
	uint64_t rs = th_seed(77);
	lb_wal_rec *recs = calloc(N, sizeof *recs);
	char(*keys)[24] = calloc(N, sizeof *keys);
	uint8_t *vals = pattern(600, 5);
	lb_segw w;
	lb_segr r;
	size_t i, done = 0, segs = 0;
	(void)state;

	assert_non_null(recs);
	assert_non_null(keys);
	for (i = 0; i < N; i++) {
		int op = 1 + (int)th_below(&rs, 2);
		size_t bl = th_below(&rs, 300), al = th_below(&rs, 300);
		snprintf(keys[i], sizeof keys[i], "k%zu", i);
		recs[i] = rec(
		        op, i % 2 ? "odd" : "even", keys[i],
		        op == LB_OP_DELETE || th_below(&rs, 2)
		                ? vals + th_below(&rs, 300)
		                : NULL,
		        bl, op == LB_OP_PUT ? vals + th_below(&rs, 300) : NULL,
		        al);
		/* prev of every width: 0..2^63 */
		recs[i].prev = th_rand(&rs) >> th_below(&rs, 64);
	}
	assert_int_equal(lb__segw_init(&w, 1), 0);
	lb__segr_init(&r);
	while (done < N) {
		size_t n = N - done < PER ? N - done : PER, len, k;
		const uint8_t *seg;
		lb_wal_rec got;
		int rc;

		for (k = 0; k < n; k++)
			assert_int_equal(lb__segw_add(&w, &recs[done + k]), 0);
		assert_int_equal(lb__segw_finish(&w, &seg, &len), 0);
		assert_int_equal(lb__segw_rawlen(&w), 0);
		assert_int_equal(w.count, 0);
		assert_int_equal(lb__segr_load(&r, seg, len), 0);
		for (k = 0; k < n; k++) {
			rc = lb__segr_next(&r, &got);
			th_assert_seeded(rc == 1);
			expect_rec(&got, &recs[done + k]);
		}
		assert_int_equal(lb__segr_next(&r, &got), 0);
		done += n;
		segs++;
	}
	assert_int_equal(segs, (N + PER - 1) / PER);
	lb__segw_free(&w);
	lb__segr_free(&r);
	free(recs);
	free(keys);
	free(vals);
}

/* Incompressible records are stored (codec 0) at every level. */
static void test_wal_segment__incompressible_is_stored(void **state)
{
	uint8_t noise[4096];
	uint64_t s = 99;
	size_t i, len;
	lb_wal_rec recs[1];
	uint8_t *seg;
	(void)state;

	for (i = 0; i < sizeof noise; i++)
		noise[i] = (uint8_t)th_rand(&s);
	recs[0] = rec(LB_OP_PUT, "t", "noise", NULL, 0, noise, sizeof noise);
	for (int level = 1; level <= 9; level++) {
		seg = build(level, recs, 1, &len);
		assert_int_equal(seg[6], 0);
		assert_int_equal(le32(seg + 8), le32(seg + 16));
		expect_segment(seg, len, recs, 1);
		free(seg);
	}
}

/* Every level writes one standard zlib stream (levels 1..3 through igzip,
 * 4..9 through libdeflate): zlib's own inflate gives back exactly the
 * records a stored segment holds, from less than half their size. */
static void test_wal_segment__every_level_is_zlib(void **state)
{
	enum { N = 400 };
	uint64_t rs = th_seed(31);
	uint8_t *vals = pattern(8192, 6);
	lb_wal_rec recs[N];
	char keys[N][16];
	size_t i, slen, len;
	(void)state;

	for (i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "k%08zu", i);
		size_t off = th_below(&rs, 4096), n = 64 + th_below(&rs, 300);
		recs[i] = recp(LB_OP_PUT, "t", keys[i], NULL, 0, vals + off, n,
		               i);
	}
	uint8_t *stored = build(0, recs, N, &slen);
	for (int level = 1; level <= 9; level++) {
		uint8_t *seg = build(level, recs, N, &len);
		assert_int_equal(seg[6], 1);
		assert_true(len < slen / 2);
		uLongf out = (uLongf)(slen - 24);
		uint8_t *raw = malloc(slen);
		assert_non_null(raw);
		assert_int_equal(uncompress(raw, &out, seg + 24, len - 24),
		                 Z_OK);
		assert_int_equal(out, slen - 24);
		assert_memory_equal(raw, stored + 24, slen - 24);
		expect_segment(seg, len, recs, N);
		free(raw);
		free(seg);
	}
	free(stored);
	free(vals);
}

/* Are the upper halves of AVX registers in use (XINUSE: AVX state, bit 2;
 * ZMM_Hi256, bit 6)? -1 where the processor cannot tell. */
static int upper_vectors_in_use(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	unsigned a, b, c, d;
	uint32_t lo, hi;
	if (!__builtin_cpu_supports("avx") || __get_cpuid_max(0, NULL) < 0xd)
		return -1;
	__cpuid_count(0xd, 1, a, b, c, d);
	if (!(a & 4)) /* no XGETBV with ECX = 1 */
		return -1;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(1));
	(void)hi;
	return (lo & 0x44) != 0;
#else
	return -1;
#endif
}

/* igzip leaves the upper halves of the vector registers in use, which
 * slows every later SSE instruction of the thread: the writer clears them
 * (segment.c, clear_upper_vectors) before it returns, at every level. */
static void test_wal_segment__writer_leaves_vectors_clean(void **state)
{
	enum { N = 600 };
	uint8_t *vals = pattern(8192, 7);
	lb_wal_rec recs[N];
	char keys[N][16];
	(void)state;

	for (size_t i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "k%08zu", i);
		recs[i] = recp(LB_OP_PUT, "t", keys[i], NULL, 0,
		               vals + (i * 13) % 4096, 200, i);
	}
	for (int level = 1; level <= 9; level++) {
		const uint8_t *seg;
		size_t len;
		lb_segw w;
		assert_int_equal(lb__segw_init(&w, level), 0);
		for (size_t i = 0; i < N; i++)
			assert_int_equal(lb__segw_add(&w, &recs[i]), 0);
		assert_int_equal(lb__segw_finish(&w, &seg, &len), 0);
		int dirty = upper_vectors_in_use();
		assert_int_equal(seg[6], 1); /* deflated */
		expect_segment(seg, len, recs, N);
		lb__segw_free(&w);
		if (dirty != -1 && dirty != 0)
			fail_msg("level %d: the writer returned with the upper "
			         "halves of the vector registers in use",
			         level);
	}
	free(vals);
}

/* ---- golden segments: FORMAT.md's worked example ------------------------- */

/* Written from the spec by hand: [1, "users", b"alice", nil, b"hi", 0] (a
 * PUT of a key no batch had changed) and [2, "users", b"alice", b"hi", nil,
 * 1] (its DELETE later in the same batch 1, so prev 1); CRC-32 computed
 * independently. */
static const uint8_t golden_stored[] = {
        0x89, 0x4c, 0x42, 0x57, /* magic */
        0x01, 0x00,             /* version 1 */
        0x00,                   /* codec 0: stored */
        0x00,                   /* flags */
        0x2a, 0x00, 0x00, 0x00, /* raw length 42 */
        0x02, 0x00, 0x00, 0x00, /* 2 records */
        0x2a, 0x00, 0x00, 0x00, /* stored length 42 */
        0xc5, 0x94, 0x68, 0xe7, /* CRC-32 0xe76894c5 */
        0x96, 0x01, 0xa5, 'u',  's',  'e',  'r',  's',  0xc4, 0x05, 'a',
        'l',  'i',  'c',  'e',  0xc0, 0xc4, 0x02, 'h',  'i',  0x00, 0x96,
        0x02, 0xa5, 'u',  's',  'e',  'r',  's',  0xc4, 0x05, 'a',  'l',
        'i',  'c',  'e',  0xc4, 0x02, 'h',  'i',  0xc0, 0x01,
};

/* The same records as a zlib stream (RFC 1950, made by another zlib user
 * at level 9): 37 bytes, shorter than the raw bytes. */
static const uint8_t golden_zlib[] = {
        0x89, 0x4c, 0x42, 0x57, 0x01, 0x00, 0x01, 0x00, 0x2a, 0x00, 0x00,
        0x00, 0x02, 0x00, 0x00, 0x00, 0x25, 0x00, 0x00, 0x00, 0x32, 0x3b,
        0xc7, 0x8a, 0x78, 0xda, 0x9b, 0xc6, 0xb8, 0xb4, 0xb4, 0x38, 0xb5,
        0xa8, 0xf8, 0x08, 0x6b, 0x62, 0x4e, 0x66, 0x72, 0xea, 0x81, 0x23,
        0x4c, 0x19, 0x99, 0x0c, 0xd3, 0x98, 0x50, 0x04, 0x41, 0x62, 0x07,
        0x18, 0x01, 0x76, 0xf7, 0x11, 0x1b,
};

static lb_wal_rec golden_recs[2];

static void set_golden_recs(void)
{
	golden_recs[0] = rec(LB_OP_PUT, "users", "alice", NULL, 0, "hi", 2);
	golden_recs[1] =
	        recp(LB_OP_DELETE, "users", "alice", "hi", 2, NULL, 0, 1);
}

static void test_wal_segment__golden_stored(void **state)
{
	size_t len;
	uint8_t *seg;
	(void)state;

	set_golden_recs();
	expect_segment(golden_stored, sizeof golden_stored, golden_recs, 2);
	/* The writer produces exactly these bytes. */
	seg = build(0, golden_recs, 2, &len);
	assert_int_equal(len, sizeof golden_stored);
	assert_memory_equal(seg, golden_stored, len);
	free(seg);
	/* A writer at level 1 (igzip) deflates even these 42 bytes, to 39,
	 * and they read back the same. */
	seg = build(1, golden_recs, 2, &len);
	assert_int_equal(seg[6], 1);
	assert_true(len < sizeof golden_stored);
	expect_segment(seg, len, golden_recs, 2);
	free(seg);
}

static void test_wal_segment__golden_zlib(void **state)
{
	(void)state;
	set_golden_recs();
	expect_segment(golden_zlib, sizeof golden_zlib, golden_recs, 2);
}

/* ---- damage to real segments --------------------------------------------- */

/* A few records that compress well, so level 1 gives codec 1. */
static uint8_t *sample(int level, size_t *len)
{
	static const char v[] =
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	lb_wal_rec recs[] = {
	        rec(LB_OP_TABLE, "tbl", "tbl", NULL, 0, opaque_schema,
	            sizeof opaque_schema),
	        rec(LB_OP_PUT, "tbl", "key-1", NULL, 0, v, sizeof v - 1),
	        rec(LB_OP_PUT, "tbl", "key-1", v, sizeof v - 1, v, 20),
	        rec(LB_OP_DELETE, "tbl", "key-1", v, 20, NULL, 0),
	};
	uint8_t *seg = build(level, recs, 4, len);

	assert_int_equal(seg[6], level ? 1 : 0);
	return seg;
}

/* Every byte xor every mask: LB_ECORRUPT, except that the version field
 * gives LB_EVERSION when it becomes greater than 1. */
static void test_wal_segment__every_byte_flip(void **state)
{
	int level;
	(void)state;

	for (level = 0; level <= 1; level++) {
		size_t len, i;
		uint8_t *seg = sample(level, &len);
		lb_segr r;

		lb__segr_init(&r);
		assert_int_equal(lb__segr_load(&r, seg, len), 0);
		for (i = 0; i < len; i++) {
			unsigned mask;
			for (mask = 1; mask < 256; mask++) {
				lb_wal_rec got;
				int rc, want = LB_ECORRUPT;

				seg[i] ^= (uint8_t)mask;
				if (i == 4 && (seg[4] | seg[5] << 8) > 1)
					want = LB_EVERSION;
				if (i == 5)
					want = LB_EVERSION;
				rc = lb__segr_load(&r, seg, len);
				seg[i] ^= (uint8_t)mask;
				if (rc != want)
					fail_msg("level %d byte %zu mask "
					         "0x%02x: "
					         "%d (%s)",
					         level, i, mask, rc,
					         lb_errmsg());
				assert_true(lb_errmsg()[0] != '\0');
				/* A failed load yields nothing. */
				assert_int_equal(lb__segr_next(&r, &got), 0);
			}
		}
		lb__segr_free(&r);
		free(seg);
	}
}

/* Every truncation, and one byte too many. */
static void test_wal_segment__every_truncation(void **state)
{
	int level;
	(void)state;

	for (level = 0; level <= 1; level++) {
		size_t len, k;
		uint8_t *seg = sample(level, &len), *p;
		lb_segr r;

		lb__segr_init(&r);
		for (k = 0; k < len; k++) {
			p = malloc(k ? k : 1);
			memcpy(p, seg, k);
			assert_int_equal(lb__segr_load(&r, p, k), LB_ECORRUPT);
			free(p);
		}
		p = malloc(len + 1);
		memcpy(p, seg, len);
		p[len] = 0;
		assert_int_equal(lb__segr_load(&r, p, len + 1), LB_ECORRUPT);
		assert_non_null(strstr(lb_errmsg(), "stored length"));
		free(p);
		lb__segr_free(&r);
		free(seg);
	}
}

/*
 * Past the CRC: every payload byte changed, with the CRC recomputed (a
 * writer bug or a forged segment). Each result is refused or is a segment
 * of valid records; nothing reads out of bounds (run under ASan).
 */
static void test_wal_segment__payload_flips_with_valid_crc(void **state)
{
	int level;
	(void)state;

	for (level = 0; level <= 1; level++) {
		size_t len, i;
		uint8_t *seg = sample(level, &len);
		lb_segr r;
		unsigned ok = 0;

		lb__segr_init(&r);
		for (i = 24; i < len; i++) {
			static const uint8_t masks[] = {0x01, 0x02, 0x04, 0x08,
			                                0x10, 0x20, 0x40, 0x80,
			                                0xff, 0x55};
			size_t k;
			for (k = 0; k < sizeof masks; k++) {
				lb_wal_rec got;
				int rc, n = 0;

				seg[i] ^= masks[k];
				fix_crc(seg, len);
				rc = lb__segr_load(&r, seg, len);
				if (rc != 0 && rc != LB_ECORRUPT)
					fail_msg("byte %zu mask %x: %d %s", i,
					         masks[k], rc, lb_errmsg());
				while (rc == 0) {
					rc = lb__segr_next(&r, &got);
					if (rc != 1)
						break;
					rc = 0;
					assert_true(got.op >= 1 && got.op <= 3);
					assert_true(got.tlen >= 1 &&
					            got.tlen <= 64);
					assert_true(got.klen >= 1 &&
					            got.klen <= 511);
					n++;
				}
				assert_true(rc == 0 || rc == LB_ECORRUPT);
				if (rc == 0 && n == 4)
					ok++;
				seg[i] ^= masks[k];
			}
		}
		fix_crc(seg, len);
		assert_int_equal(lb__segr_load(&r, seg, len), 0);
		/* Changing bytes inside the values (codec 0) gives valid
		 * but different segments: the CRC is what catches those. */
		if (level == 0)
			assert_true(ok > 0);
		lb__segr_free(&r);
		free(seg);
	}
}

/* ---- the header's rules, each broken with a correct CRC ------------------ */

static void test_wal_segment__header_rules(void **state)
{
	size_t len;
	uint8_t *s;
	lb_seg_hdr h;
	lb_segr r;
	uint8_t byte = 0;
	(void)state;

	lb__segr_init(&r);
	/* Sanity: the crafted golden segment is valid. */
	s = craft(1, 0, 42, 2, golden_stored + 24, 42, &len);
	assert_memory_equal(s, golden_stored, len);
	assert_int_equal(lb__seg_header(s, len, &h), 0);
	assert_int_equal(h.raw_len, 42);
	assert_int_equal(h.crc, 0xe76894c5u);
	free(s);

	s = craft(1, 0, 42, 2, golden_stored + 24, 42, &len);
	s[3] = 'X';
	fix_crc(s, len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "magic"));
	free(s);

	s = craft(0, 0, 42, 2, golden_stored + 24, 42, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	free(s);
	s = craft(2, 0, 42, 2, golden_stored + 24, 42, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_EVERSION);
	assert_non_null(strstr(lb_errmsg(), "version 2 is newer"));
	free(s);
	s = craft(0xffff, 0, 42, 2, golden_stored + 24, 42, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_EVERSION);
	free(s);

	s = craft(1, 2, 42, 2, golden_stored + 24, 42, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "codec"));
	free(s);

	s = craft(1, 0, 42, 2, golden_stored + 24, 42, &len);
	s[7] = 0x01;
	fix_crc(s, len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "flags"));
	free(s);

	/* stored length disagreeing with the value's length */
	s = craft(1, 0, 42, 2, golden_stored + 24, 42, &len);
	put32(s + 16, 41);
	fix_crc(s, len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "stored length"));
	free(s);

	/* codec 0 with raw != stored */
	s = craft(1, 0, 41, 2, golden_stored + 24, 42, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	free(s);

	/* counts: 0, over the cap, more than raw_len / 10 */
	s = craft(1, 0, 42, 0, golden_stored + 24, 42, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "count"));
	free(s);
	s = craft(1, 0, 42, LB__SEG_COUNT_MAX + 1, golden_stored + 24, 42,
	          &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	free(s);
	s = craft(1, 0, 42, 5, golden_stored + 24, 42, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "count 5"));
	free(s);
	/* count 4 passes the header check (42 / 10) but not the records */
	s = craft(1, 0, 42, 4, golden_stored + 24, 42, &len);
	assert_int_equal(lb__seg_header(s, len, &h), 0);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	free(s);
	/* count 1: a record too few, so bytes follow the last one */
	s = craft(1, 0, 42, 1, golden_stored + 24, 42, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "21 bytes follow"));
	free(s);

	/* NULL and empty input */
	assert_int_equal(lb__segr_load(&r, NULL, 0), LB_ECORRUPT);
	assert_int_equal(lb__segr_load(&r, &byte, 0), LB_ECORRUPT);
	lb__segr_free(&r);
}

/* A tiny value claiming 48 MiB + 1 raw bytes is refused before any buffer
 * is sized; an exact claim with no data behind it allocates nothing big
 * either, as the CRC and length checks come first. */
static void
test_wal_segment__huge_claims_refused_before_allocating(void **state)
{
	static const uint8_t tiny[] = {0x78, 0x9c, 0x03, 0x00,
	                               0x00, 0x00, 0x00, 0x01};
	size_t len;
	uint8_t *s;
	lb_segr r;
	(void)state;

	lb__segr_init(&r);
	s = craft(1, 1, LB__SEG_RAW_MAX + 1, 1, tiny, sizeof tiny, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "cap"));
	assert_int_equal(r.raw.cap, 0);
	free(s);
	s = craft(1, 1, UINT32_MAX, 1, tiny, sizeof tiny, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_int_equal(r.raw.cap, 0);
	free(s);
	/* A damaged CRC on a 48 MiB claim: refused before allocating too. */
	s = craft(1, 1, LB__SEG_RAW_MAX, 1, tiny, sizeof tiny, &len);
	s[20] ^= 1;
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_int_equal(r.raw.cap, 0);
	free(s);
	lb__segr_free(&r);
}

/* ---- the zlib payload ---------------------------------------------------- */

static uint8_t *zlib_of(const void *raw, size_t n, size_t *zlen)
{
	uLongf cap = compressBound((uLong)n);
	uint8_t *z = malloc(cap);

	assert_non_null(z);
	assert_int_equal(compress2(z, &cap, raw, (uLong)n, 6), Z_OK);
	*zlen = cap;
	return z;
}

static void test_wal_segment__zlib_rules(void **state)
{
	const uint8_t *raw = golden_stored + 24;
	uint8_t *z, *s, *buf;
	size_t zlen, len;
	lb_segr r;
	(void)state;

	lb__segr_init(&r);
	z = zlib_of(raw, 42, &zlen);
	s = craft(1, 1, 42, 2, z, zlen, &len);
	assert_int_equal(lb__segr_load(&r, s, len), 0);
	free(s);

	/* Raw length one more than the stream gives: short output. */
	s = craft(1, 1, 43, 2, z, zlen, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "inflates to 42 bytes"));
	free(s);
	/* One less: extra output. */
	s = craft(1, 1, 41, 2, z, zlen, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "more than"));
	free(s);
	/* Bytes after the stream inside the payload. */
	buf = malloc(zlen + 16);
	memcpy(buf, z, zlen);
	memcpy(buf + zlen, "\0\0\0", 3);
	s = craft(1, 1, 42, 2, buf, zlen + 3, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "3 bytes follow"));
	free(s);
	/* The stream cut short (every cut). */
	{
		size_t k;
		for (k = 0; k < zlen; k++) {
			s = craft(1, 1, 42, 2, z, k, &len);
			assert_int_equal(lb__segr_load(&r, s, len),
			                 LB_ECORRUPT);
			free(s);
		}
	}
	/* Raw deflate (no zlib header) and gzip are not zlib streams. */
	s = craft(1, 1, 42, 2, z + 2, zlen - 6, &len);
	assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
	free(s);
	{
		static const uint8_t gz[] = {0x1f, 0x8b, 0x08, 0, 0,
		                             0,    0,    0,    0, 0x03};
		memcpy(buf, gz, sizeof gz);
		memcpy(buf + sizeof gz, z + 2, zlen - 6);
		s = craft(1, 1, 42, 2, buf, sizeof gz + zlen - 6, &len);
		assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
		free(s);
	}
	/* A zlib header asking for a preset dictionary (FDICT). */
	{
		uint8_t d[] = {0x78, 0xbb, 0, 0, 0, 1, 0x03, 0x00};
		/* 0x78bb: FDICT set, and 0x78bb % 31 == 0 */
		assert_int_equal(((0x78 << 8) | 0xbb) % 31, 0);
		s = craft(1, 1, 42, 2, d, sizeof d, &len);
		assert_int_equal(lb__segr_load(&r, s, len), LB_ECORRUPT);
		assert_non_null(strstr(lb_errmsg(), "dictionary"));
		free(s);
	}
	/* After all these failures the reader still works. */
	s = craft(1, 1, 42, 2, z, zlen, &len);
	assert_int_equal(lb__segr_load(&r, s, len), 0);
	free(s);
	free(buf);
	free(z);
	lb__segr_free(&r);
}

/* ---- the record grammar, each rule broken -------------------------------- */

/* Raw records built with the writers (any widths wanted are spelled out
 * as bytes). */
typedef struct {
	lb_buf b;
} raw_t;

static void r_init(raw_t *r)
{
	lb__buf_init(&r->b);
}

static void r_str(raw_t *r, const char *s)
{
	assert_int_equal(lb__mpw_str(&r->b, s, strlen(s)), 0);
}

static void r_bin(raw_t *r, const char *s)
{
	assert_int_equal(lb__mpw_bin(&r->b, s, strlen(s)), 0);
}

/* Images are (pointer, length) pairs; NIL is nil. */
#define IMG(lit) lit, sizeof(lit) - 1
#define NIL NULL, 0

/* One record from parts. */
static void r_rec(raw_t *r, unsigned n, uint64_t op, const char *table,
                  const char *key, const char *before, size_t blen,
                  const char *after, size_t alen)
{
	assert_int_equal(lb__mpw_array(&r->b, n), 0);
	assert_int_equal(lb__mpw_uint(&r->b, op), 0);
	r_str(r, table);
	r_bin(r, key);
	if (before)
		assert_int_equal(lb__mpw_bin(&r->b, before, blen), 0);
	else
		assert_int_equal(lb__mpw_nil(&r->b), 0);
	if (after)
		assert_int_equal(lb__mpw_bin(&r->b, after, alen), 0);
	else
		assert_int_equal(lb__mpw_nil(&r->b), 0);
}

/* One record of n items: the five before prev, then prev 0 when n >= 6,
 * then nil for every item past the sixth. */
static int one(unsigned n, uint64_t op, const char *table, const char *key,
               const char *before, size_t blen, const char *after, size_t alen)
{
	raw_t r;
	unsigned i;
	int rc;

	r_init(&r);
	r_rec(&r, n, op, table, key, before, blen, after, alen);
	if (n >= 6)
		assert_int_equal(lb__mpw_uint(&r.b, 0), 0);
	for (i = 7; i <= n; i++)
		assert_int_equal(lb__mpw_nil(&r.b), 0);
	rc = load_stored(r.b.data, r.b.len, 1);
	lb__buf_free(&r.b);
	return rc;
}

/* A record of 6 items whose prev is the given bytes; its prev, read
 * back, in *prev when it loads. */
static int one_prev(uint64_t op, const char *table, const char *key,
                    const char *before, size_t blen, const char *after,
                    size_t alen, const void *p, size_t plen, uint64_t *prev)
{
	raw_t r;
	size_t len;
	uint8_t *s;
	lb_segr rd;
	lb_wal_rec got;
	int rc;

	r_init(&r);
	r_rec(&r, 6, op, table, key, before, blen, after, alen);
	assert_int_equal(lb__buf_append(&r.b, p, plen), 0);
	s = craft(1, 0, (uint32_t)r.b.len, 1, r.b.data, r.b.len, &len);
	lb__segr_init(&rd);
	rc = lb__segr_load(&rd, s, len);
	if (rc == 0) {
		assert_int_equal(lb__segr_next(&rd, &got), 1);
		*prev = got.prev;
		assert_int_equal(lb__segr_next(&rd, &got), 0);
	}
	lb__segr_free(&rd);
	free(s);
	lb__buf_free(&r.b);
	return rc;
}

static void test_wal_segment__record_rules(void **state)
{
	char t65[66], k512[513], k511[512];
	(void)state;

	memset(t65, 't', 65);
	t65[65] = 0;
	memset(k512, 'k', 512);
	k512[512] = 0;
	memset(k511, 'k', 511);
	k511[511] = 0;

	assert_int_equal(one(6, 1, "t", "k", NIL, IMG("v")), 0);
	assert_int_equal(one(6, 1, "t", "k", IMG(""), IMG("")), 0);
	if (one(6, 1, t65 + 1, k511, NIL, IMG("")) != 0)
		fail_msg("%s", lb_errmsg());
	/* arity: 6 items; version 4's 5 (no prev) is refused */
	assert_int_equal(one(5, 1, "t", "k", NIL, IMG("v")), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "array of 5 items, not 6"));
	assert_int_equal(one(4, 1, "t", "k", NIL, IMG("v")), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "not 6"));
	assert_int_equal(one(7, 1, "t", "k", NIL, IMG("v")), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "array of 7 items, not 6"));
	/* ops */
	assert_int_equal(one(6, 0, "t", "k", NIL, IMG("v")), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "unknown op 0"));
	assert_int_equal(one(6, 4, "t", "k", NIL, IMG("v")), LB_ECORRUPT);
	assert_int_equal(one(6, 1ull << 40, "t", "k", NIL, IMG("v")),
	                 LB_ECORRUPT);
	/* table names */
	assert_int_equal(one(6, 1, "", "k", NIL, IMG("v")), LB_ECORRUPT);
	assert_int_equal(one(6, 1, t65, "k", NIL, IMG("v")), LB_ECORRUPT);
	assert_int_equal(one(6, 1, "a/b", "k", NIL, IMG("v")), LB_ECORRUPT);
	assert_int_equal(one(6, 1, "a b", "k", NIL, IMG("v")), LB_ECORRUPT);
	assert_int_equal(one(6, 1, "caf\xc3\xa9", "k", NIL, IMG("v")),
	                 LB_ECORRUPT);
	/* keys */
	assert_int_equal(one(6, 1, "t", "", NIL, IMG("v")), LB_ECORRUPT);
	assert_int_equal(one(6, 1, "t", k512, NIL, IMG("v")), LB_ECORRUPT);
	/* images against ops */
	assert_int_equal(one(6, 1, "t", "k", IMG("v"), NIL), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "PUT without"));
	assert_int_equal(one(6, 2, "t", "k", NIL, NIL), LB_ECORRUPT);
	assert_int_equal(one(6, 2, "t", "k", IMG("v"), IMG("w")), LB_ECORRUPT);
	assert_int_equal(one(6, 2, "t", "k", IMG("v"), NIL), 0);
	assert_int_equal(one(6, 3, "t", "t", NIL, NIL), LB_ECORRUPT);
	assert_int_equal(
	        one(6, 3, "t", "u", NIL, IMG("\x95\x02\x00\xc2\x90\xc0")),
	        LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "key is not its table"));
	/* both images: a schema change, each image a valid schema */
	assert_int_equal(
	        one(6, 3, "t", "t", IMG("x"), IMG("\x95\x02\x00\xc2\x90\xc0")),
	        LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "invalid schema"));
	assert_int_equal(one(6, 3, "t", "t", IMG("\x95\x02\x00\xc2\x90\xc0"),
	                     IMG("\x95\x02\x00\xc2\x90\xc0")),
	                 0);
	/* a drop: the schema as the before-image */
	assert_int_equal(
	        one(6, 3, "t", "t", IMG("\x95\x02\x00\xc2\x90\xc0"), NIL), 0);
	assert_int_equal(one(6, 3, "t", "t", IMG("\x95\x02\x00\xc2\x90"), NIL),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "invalid schema"));
	assert_int_equal(
	        one(6, 3, "t", "t", NIL, IMG("\x95\x02\x00\xc2\x90\xc0")), 0);
	assert_int_equal(
	        one(6, 3, "t", "t", NIL, IMG("\x95\x02\x01\xc2\x90\xc0\x00")),
	        LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "invalid schema"));
}

/* prev (§4.1): a uint of any width, 0 in a TABLE record. */
static void test_wal_segment__record_prev(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
		uint64_t v;
	} ok[] = {
	        {"\x00", 1, 0},
	        {"\x7f", 1, 127},
	        {"\xcc\x00", 2, 0},
	        {"\xcc\xff", 2, 255},
	        {"\xcd\x00\x00", 3, 0},
	        {"\xcd\xff\xff", 3, 65535},
	        {"\xce\x00\x00\x00\x07", 5, 7},
	        {"\xce\xff\xff\xff\xff", 5, UINT32_MAX},
	        {"\xcf\x00\x00\x00\x00\x00\x00\x00\x00", 9, 0},
	        {"\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 9, (uint64_t)1 << 32},
	        {"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, UINT64_MAX},
	        {"\xd0\x05", 2, 5},
	        {"\xd0\x7f", 2, 127},
	        {"\xd1\x01\x00", 3, 256},
	        {"\xd2\x7f\xff\xff\xff", 5, INT32_MAX},
	        {"\xd3\x7f\xff\xff\xff\xff\xff\xff\xff", 9, INT64_MAX},
	        {"\xd3\x00\x00\x00\x00\x00\x00\x00\x00", 9, 0},
	};
	static const struct {
		const char *bytes;
		size_t len;
	} bad[] = {
	        {"\xc0", 1}, /* nil */
	        {"\xc2", 1}, /* false */
	        {"\xc3", 1}, /* true */
	        {"\xa1"
	         "1",
	         2},                                         /* str */
	        {"\xc4\x01\x01", 3},                         /* bin */
	        {"\xff", 1},                                 /* -1 */
	        {"\xe0", 1},                                 /* -32 */
	        {"\xd0\xff", 2},                             /* int 8 -1 */
	        {"\xd1\x80\x00", 3},                         /* int 16 */
	        {"\xd2\xff\xff\xff\xfe", 5},                 /* int 32 */
	        {"\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9}, /* INT64_MIN */
	        {"\xca\x3f\x80\x00\x00", 5},                 /* float 1.0 */
	        {"\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00", 9}, /* double */
	        {"\x80", 1},                                 /* map */
	        {"\x90", 1},                                 /* array */
	        {"\xd4\x00\x00", 3},                         /* fixext 1 */
	        {"\xc1", 1},                                 /* never used */
	        {"\xcc", 1},                                 /* cut short */
	        {"\xcf\x00\x00\x00", 4},                     /* cut short */
	};
	uint64_t got;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		got = 12345;
		if (one_prev(1, "t", "k", NIL, IMG("v"), ok[i].bytes, ok[i].len,
		             &got) != 0)
			fail_msg("prev %zu: %s", i, lb_errmsg());
		assert_true(got == ok[i].v);
		got = 12345;
		assert_int_equal(one_prev(2, "t", "k", IMG("v"), NIL,
		                          ok[i].bytes, ok[i].len, &got),
		                 0);
		assert_true(got == ok[i].v);
	}
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (one_prev(1, "t", "k", NIL, IMG("v"), bad[i].bytes,
		             bad[i].len, &got) != LB_ECORRUPT)
			fail_msg("prev %zu accepted", i);
		if (!strstr(lb_errmsg(), "segment record 0: prev: "))
			fail_msg("prev %zu: %s", i, lb_errmsg());
	}
	/* missing: an array of 6 that ends after the after-image */
	assert_int_equal(one_prev(1, "t", "k", NIL, IMG("v"), "", 0, &got),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "prev: "));
	/* a TABLE record's prev is 0, in any width */
	assert_int_equal(one_prev(3, "t", "t", NIL,
	                          IMG("\x95\x02\x00\xc2\x90\xc0"), "\x00", 1,
	                          &got),
	                 0);
	assert_int_equal(one_prev(3, "t", "t", NIL,
	                          IMG("\x95\x02\x00\xc2\x90\xc0"),
	                          "\xcd\x00\x00", 3, &got),
	                 0);
	assert_true(got == 0);
	assert_int_equal(one_prev(3, "t", "t", NIL,
	                          IMG("\x95\x02\x00\xc2\x90\xc0"), "\x01", 1,
	                          &got),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "TABLE record with a prev"));
	assert_int_equal(one_prev(3, "t", "t", IMG("\x95\x02\x00\xc2\x90\xc0"),
	                          NIL, "\xcf\x00\x00\x00\x00\x00\x00\x00\x01",
	                          9, &got),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "TABLE record with a prev"));
}

/* The writer writes prev in its shortest form (§1), each width. */
static void test_wal_segment__writer_prev_shortest(void **state)
{
	const th_uint_width *cases = th_uint_widths;
	/* [1, "t", b"k", nil, b"v", prev]: 11 bytes, then prev */
	size_t i, len;
	(void)state;

	for (i = 0; i < th_nuint_widths; i++) {
		lb_wal_rec r =
		        recp(LB_OP_PUT, "t", "k", NULL, 0, "v", 1, cases[i].v);
		uint8_t *seg = build(0, &r, 1, &len);

		assert_int_equal(len, 24 + 11 + cases[i].size);
		assert_int_equal(seg[24], 0x96);
		assert_int_equal(seg[24 + 11], cases[i].first);
		expect_segment(seg, len, &r, 1);
		free(seg);
	}
}

/* Types other than the grammar's, spelled as bytes. */
static void test_wal_segment__record_types(void **state)
{
	/* [1, "t", "k" as str, nil, b"v", 0] */
	static const uint8_t key_str[] = {0x96, 0x01, 0xa1, 't', 0xa1, 'k',
	                                  0xc0, 0xc4, 0x01, 'v', 0x00};
	/* [1, b"t", b"k", nil, b"v", 0]: table as bin */
	static const uint8_t table_bin[] = {0x96, 0x01, 0xc4, 0x01, 't',
	                                    0xc4, 0x01, 'k',  0xc0, 0xc4,
	                                    0x01, 'v',  0x00};
	/* after as str */
	static const uint8_t after_str[] = {0x96, 0x01, 0xa1, 't', 0xc4, 0x01,
	                                    'k',  0xc0, 0xa1, 'v', 0x00};
	/* before false instead of nil */
	static const uint8_t before_false[] = {0x96, 0x01, 0xa1, 't',
	                                       0xc4, 0x01, 'k',  0xc2,
	                                       0xc4, 0x01, 'v',  0x00};
	/* op as -1 and as 1.0 */
	static const uint8_t op_neg[] = {0x96, 0xff, 0xa1, 't',  0xc4, 0x01,
	                                 'k',  0xc0, 0xc4, 0x01, 'v',  0x00};
	static const uint8_t op_float[] = {0x96, 0xca, 0x3f, 0x80, 0x00, 0x00,
	                                   0xa1, 't',  0xc4, 0x01, 'k',  0xc0,
	                                   0xc4, 0x01, 'v',  0x00};
	/* a map instead of an array */
	static const uint8_t as_map[] = {0x86, 0x01, 0xa1, 't', 0xc4, 0x01, 'k',
	                                 0xc0, 0xc4, 0x01, 'v', 0xc0, 0x00};
	(void)state;

	assert_int_equal(load_stored(key_str, sizeof key_str, 1), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "key: msgpack: bin expected, "
	                                    "found str"));
	assert_int_equal(load_stored(table_bin, sizeof table_bin, 1),
	                 LB_ECORRUPT);
	assert_int_equal(load_stored(after_str, sizeof after_str, 1),
	                 LB_ECORRUPT);
	assert_int_equal(load_stored(before_false, sizeof before_false, 1),
	                 LB_ECORRUPT);
	assert_int_equal(load_stored(op_neg, sizeof op_neg, 1), LB_ECORRUPT);
	assert_int_equal(load_stored(op_float, sizeof op_float, 1),
	                 LB_ECORRUPT);
	assert_int_equal(load_stored(as_map, sizeof as_map, 1), LB_ECORRUPT);
}

/* Readers MUST accept every width (§4): the widest forms decode. */
static void test_wal_segment__record_any_width(void **state)
{
	static const uint8_t wide[] = {
	        0xdd, 0,    0,    0,   6,                 /* array 32 */
	        0xcf, 0,    0,    0,   0, 0,   0,   0, 1, /* op: uint 64 */
	        0xdb, 0,    0,    0,   1, 't',            /* table: str 32 */
	        0xc6, 0,    0,    0,   1, 'k',            /* key: bin 32 */
	        0xc6, 0,    0,    0,   0,           /* before: bin 32, empty */
	        0xc6, 0,    0,    0,   2, 'v', 'w', /* after: bin 32 */
	        0xcf, 0,    0,    0,   0, 0,   0,   0, 9, /* prev: uint 64 */
	        0xdc, 0,    6,                            /* array 16 */
	        0xd0, 0x02,                               /* op: int 8 */
	        0xd9, 1,    't',                          /* table: str 8 */
	        0xc5, 0,    1,    'k',                    /* key: bin 16 */
	        0xc4, 1,    'v',                          /* before: bin 8 */
	        0xc0,                                     /* after: nil */
	        0xd1, 0x01, 0x00,                         /* prev: int 16 */
	};
	lb_wal_rec got;
	size_t len;
	uint8_t *s = craft(1, 0, sizeof wide, 2, wide, sizeof wide, &len);
	lb_segr r;
	(void)state;

	lb__segr_init(&r);
	assert_int_equal(lb__segr_load(&r, s, len), 0);
	assert_int_equal(lb__segr_next(&r, &got), 1);
	assert_int_equal(got.op, LB_OP_PUT);
	assert_int_equal(got.tlen, 1);
	assert_int_equal(got.has_before, 1);
	assert_int_equal(got.blen, 0);
	assert_int_equal(got.alen, 2);
	assert_memory_equal(got.after, "vw", 2);
	assert_true(got.prev == 9);
	assert_int_equal(lb__segr_next(&r, &got), 1);
	assert_int_equal(got.op, LB_OP_DELETE);
	assert_int_equal(got.has_after, 0);
	assert_true(got.prev == 256);
	assert_int_equal(lb__segr_next(&r, &got), 0);
	lb__segr_free(&r);
	free(s);
}

/* An image one byte over 16 MiB is refused. */
static void test_wal_segment__record_image_over_limit(void **state)
{
	size_t n = (size_t)LB_VALUE_MAX + 1;
	raw_t r;
	uint8_t *img = calloc(1, n);
	(void)state;

	assert_non_null(img);
	r_init(&r);
	assert_int_equal(lb__mpw_array(&r.b, 6), 0);
	assert_int_equal(lb__mpw_uint(&r.b, 1), 0);
	r_str(&r, "t");
	r_bin(&r, "k");
	assert_int_equal(lb__mpw_nil(&r.b), 0);
	assert_int_equal(lb__mpw_bin(&r.b, img, n), 0);
	assert_int_equal(lb__mpw_uint(&r.b, 0), 0);
	assert_int_equal(load_stored(r.b.data, r.b.len, 1), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "16 MiB"));
	lb__buf_free(&r.b);
	free(img);
}

/* ---- the writer ---------------------------------------------------------- */

static void test_wal_segment__writer_rejects(void **state)
{
	char t65[66], k512[513];
	lb_wal_rec bad[24];
	size_t n = 0, i, len;
	const uint8_t *seg;
	lb_segw w;
	lb_wal_rec ok = rec(LB_OP_PUT, "t", "k", NULL, 0, "v", 1);
	(void)state;

	memset(t65, 't', 65);
	t65[65] = 0;
	memset(k512, 'k', 512);
	k512[512] = 0;
	bad[n] = ok;
	bad[n++].op = 0;
	bad[n] = ok;
	bad[n++].op = 4;
	bad[n++] = rec(LB_OP_PUT, "", "k", NULL, 0, "v", 1);
	bad[n++] = rec(LB_OP_PUT, t65, "k", NULL, 0, "v", 1);
	bad[n++] = rec(LB_OP_PUT, "a:b", "k", NULL, 0, "v", 1);
	bad[n++] = rec(LB_OP_PUT, "t", "", NULL, 0, "v", 1);
	bad[n++] = rec(LB_OP_PUT, "t", k512, NULL, 0, "v", 1);
	bad[n++] = rec(LB_OP_PUT, "t", "k", "v", 1, NULL, 0);
	bad[n++] = rec(LB_OP_DELETE, "t", "k", NULL, 0, NULL, 0);
	bad[n++] = rec(LB_OP_DELETE, "t", "k", "v", 1, "w", 1);
	bad[n++] = rec(LB_OP_TABLE, "t", "u", NULL, 0, opaque_schema,
	               sizeof opaque_schema);
	bad[n++] = rec(LB_OP_TABLE, "t", "t", "x", 1, opaque_schema,
	               sizeof opaque_schema);
	bad[n++] = rec(LB_OP_TABLE, "t", "t", "\x95", 1, NULL, 0);
	bad[n++] = rec(LB_OP_TABLE, "t", "t", NULL, 0, NULL, 0);
	bad[n++] = rec(LB_OP_TABLE, "t", "t", NULL, 0, "\x95", 1);
	bad[n++] = recp(LB_OP_TABLE, "t", "t", NULL, 0, opaque_schema,
	                sizeof opaque_schema, 1);
	bad[n] = ok;
	bad[n++].alen = LB_VALUE_MAX + 1; /* refused on the length alone */
	bad[n] = ok;
	bad[n].has_before = 1;
	bad[n++].blen = LB_VALUE_MAX + 1;

	assert_int_equal(lb__segw_init(&w, 1), 0);
	assert_int_equal(lb__segw_add(&w, &ok), 0);
	for (i = 0; i < n; i++) {
		size_t raw = lb__segw_rawlen(&w);
		if (lb__segw_add(&w, &bad[i]) != LB_EINVAL)
			fail_msg("bad record %zu accepted", i);
		assert_non_null(strstr(lb_errmsg(), "invalid change record"));
		assert_int_equal(lb__segw_rawlen(&w), raw);
		assert_int_equal(w.count, 1);
	}
	assert_int_equal(lb__segw_finish(&w, &seg, &len), 0);
	expect_segment(seg, len, &ok, 1);
	lb__segw_free(&w);
}

static void test_wal_segment__writer_misuse(void **state)
{
	const uint8_t *seg = (const uint8_t *)"x";
	size_t len = 1;
	lb_segw w;
	(void)state;

	assert_int_equal(lb__segw_init(&w, -1), LB_EINVAL);
	lb__segw_free(&w);
	assert_int_equal(lb__segw_init(&w, 10), LB_EINVAL);
	lb__segw_free(&w);
	assert_int_equal(lb__segw_init(&w, 0), 0);
	assert_int_equal(lb__segw_finish(&w, &seg, &len), LB_EINVAL);
	assert_null(seg);
	assert_int_equal(len, 0);
	lb__segw_free(&w);
	lb__segw_free(&w); /* twice is harmless */
	lb__segw_free(NULL);
}

/* A record that would take the open segment past 48 MiB does not fit:
 * LB_ETOOBIG, nothing changed; after finishing, it goes in. */
static void test_wal_segment__writer_segment_full(void **state)
{
	uint8_t *img = pattern(LB_VALUE_MAX, 8);
	lb_wal_rec big = rec(LB_OP_PUT, "t", "big", img, LB_VALUE_MAX, img,
	                     LB_VALUE_MAX);
	lb_wal_rec half =
	        rec(LB_OP_PUT, "t", "half", NULL, 0, img, LB_VALUE_MAX);
	const uint8_t *seg;
	size_t len, raw;
	lb_segw w;
	(void)state;

	assert_int_equal(lb__segw_init(&w, 0), 0);
	assert_true(lb__segw_fits(&w, &big));
	assert_int_equal(lb__segw_add(&w, &big), 0);
	raw = lb__segw_rawlen(&w);
	/* 32 MiB + 16 MiB + record overhead > 48 MiB */
	assert_false(lb__segw_fits(&w, &half));
	assert_int_equal(lb__segw_add(&w, &half), LB_ETOOBIG);
	assert_non_null(strstr(lb_errmsg(), "finish it first"));
	assert_int_equal(lb__segw_rawlen(&w), raw);
	assert_int_equal(w.count, 1);
	assert_int_equal(lb__segw_finish(&w, &seg, &len), 0);
	assert_int_equal(len, 24 + raw);
	assert_true(lb__segw_fits(&w, &half));
	assert_int_equal(lb__segw_add(&w, &half), 0);
	assert_int_equal(lb__segw_finish(&w, &seg, &len), 0);
	expect_segment(seg, len, &half, 1);
	lb__segw_free(&w);
	free(img);
}

/* The table name rule, byte by byte. */
static void test_wal_segment__table_names(void **state)
{
	char name[LB_TABLE_NAME_MAX + 2];
	unsigned c, ok = 0;
	(void)state;

	for (c = 0; c < 256; c++) {
		name[0] = (char)c;
		ok += (unsigned)lb__table_name_ok(name, 1);
	}
	assert_int_equal(ok, 26 + 26 + 10 + 3);
	assert_true(lb__table_name_ok("A-z_0.9", 7));
	assert_false(lb__table_name_ok("", 0));
	assert_false(lb__table_name_ok(NULL, 3));
	memset(name, 'n', sizeof name);
	assert_true(lb__table_name_ok(name, LB_TABLE_NAME_MAX));
	assert_false(lb__table_name_ok(name, LB_TABLE_NAME_MAX + 1));
	assert_false(lb__table_name_ok("a\0b", 3));
}

/* reset() drops the open records; the writer goes on as new. */
static void test_wal_segment__writer_reset(void **state)
{
	lb_wal_rec a = rec(LB_OP_PUT, "t", "a", NULL, 0, "1", 1);
	lb_wal_rec b = rec(LB_OP_PUT, "t", "b", NULL, 0, "2", 1);
	const uint8_t *seg;
	size_t len;
	lb_segw w;
	(void)state;

	assert_int_equal(lb__segw_init(&w, 1), 0);
	lb__segw_reset(&w); /* nothing open: harmless */
	assert_int_equal(lb__segw_add(&w, &a), 0);
	assert_int_equal(lb__segw_add(&w, &a), 0);
	lb__segw_reset(&w);
	assert_int_equal(w.count, 0);
	assert_int_equal(lb__segw_rawlen(&w), 0);
	assert_int_equal(lb__segw_finish(&w, &seg, &len), LB_EINVAL);
	assert_int_equal(lb__segw_add(&w, &b), 0);
	assert_int_equal(lb__segw_finish(&w, &seg, &len), 0);
	expect_segment(seg, len, &b, 1);
	lb__segw_free(&w);
}

/* One segment of recs[0..n) at level, fed ahead as feed_way says (0:
 * never; 1: after every record, up to all it has; 2: at seeded random
 * points, up to a seeded random length; 3: as 1, after the same records
 * were added, fed and abandoned by a reset), then finished; a malloc'd
 * copy. The chunks fed ahead must always be whole ones. */
static uint8_t *build_fed(int level, const lb_wal_rec *recs, size_t n,
                          int feed_way, uint64_t *rs, size_t *len,
                          size_t *fed_max)
{
	lb_segw w;
	const uint8_t *seg;
	assert_int_equal(lb__segw_init(&w, level), 0);
	*fed_max = 0;
	for (int round = feed_way == 3 ? 0 : 1; round < 2; round++) {
		for (size_t i = 0; i < n; i++) {
			/* the promise a feeding thread relies on */
			int grows = lb__segw_grows(&w, &recs[i]);
			size_t cap = w.raw.cap;
			assert_int_equal(lb__segw_add(&w, &recs[i]), 0);
			th_assert_seeded(grows || w.raw.cap == cap);
			size_t raw = lb__segw_rawlen(&w), upto = raw;
			if (feed_way == 0 || (feed_way == 2 && th_below(rs, 8)))
				continue;
			if (feed_way == 2)
				upto = th_below(rs, raw + 1);
			assert_int_equal(lb__segw_feed(&w, upto), 0);
			th_assert_seeded(w.fed % LB__SEGW_CHUNK == 0);
			th_assert_seeded(w.fed <= raw);
			if (w.fed > *fed_max)
				*fed_max = w.fed;
		}
		if (round == 0)
			lb__segw_reset(&w);
	}
	assert_int_equal(lb__segw_finish(&w, &seg, len), 0);
	uint8_t *copy = malloc(*len);
	assert_non_null(copy);
	memcpy(copy, seg, *len);
	lb__segw_free(&w);
	return copy;
}

/* Should igzip refuse the stream, at its start or after chunks were fed,
 * the segment is stored (codec 0), whole and readable, and the next one
 * is deflated again. The refusal is forced by spoiling the stream's
 * parameters (a level buffer of no size, an unknown level). */
static void test_wal_segment__refused_stream_is_stored(void **state)
{
	enum { N = 400 };
	uint8_t *vals = pattern(600, 3);
	lb_wal_rec recs[N];
	char keys[N][16];
	(void)state;
	for (size_t i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "k%zu", i);
		recs[i] = rec(LB_OP_PUT, "t", keys[i], NULL, 0, vals + i % 300,
		              200);
	}
	for (int when = 0; when < 2; when++) {
		lb_segw w;
		const uint8_t *seg;
		size_t len;
		assert_int_equal(lb__segw_init(&w, 1), 0);
		struct isal_zstream *zs = w.zs;
		for (size_t i = 0; i < N; i++) {
			assert_int_equal(lb__segw_add(&w, &recs[i]), 0);
			if (i == N / 2) {
				if (when == 0)
					zs->level_buf_size = 0;
				else
					zs->level = 99;
			}
			if (when == 1 || i > N / 2)
				assert_int_equal(
				        lb__segw_feed(&w, lb__segw_rawlen(&w)),
				        0);
		}
		assert_true(w.fed > 0 || when == 0);
		assert_int_equal(lb__segw_finish(&w, &seg, &len), 0);
		assert_int_equal(seg[6], 0); /* codec 0: stored */
		expect_segment(seg, len, recs, N);
		/* the next segment gets a sound stream again */
		for (size_t i = 0; i < N; i++)
			assert_int_equal(lb__segw_add(&w, &recs[i]), 0);
		assert_int_equal(lb__segw_finish(&w, &seg, &len), 0);
		assert_int_equal(seg[6], 1);
		expect_segment(seg, len, recs, N);
		lb__segw_free(&w);
	}
	free(vals);
}

/* lb__segw_grows() is right about every record near the end of the
 * buffer: when it says no, add() leaves the buffer where it was (a thread
 * feeding the writer reads it meanwhile); when it says yes, the record
 * would not have fit. */
static void test_wal_segment__grows_is_exact_near_the_end(void **state)
{
	static uint8_t val[4096];
	(void)state;
	memset(val, 'v', sizeof val);
	for (size_t len = 0; len < sizeof val; len++) {
		lb_segw w;
		lb_wal_rec first =
		        rec(LB_OP_PUT, "t", "first", NULL, 0, val, 1000);
		lb_wal_rec r = rec(LB_OP_PUT, "t", "k", NULL, 0, val, len);
		assert_int_equal(lb__segw_init(&w, 1), 0);
		assert_int_equal(lb__segw_add(&w, &first), 0);
		size_t room = w.raw.cap - w.raw.len;
		int grows = lb__segw_grows(&w, &r);
		size_t cap = w.raw.cap; /* realloc may grow it in place */
		assert_int_equal(lb__segw_add(&w, &r), 0);
		if (!grows && w.raw.cap != cap)
			fail_msg("a value of %zu bytes grew the buffer, with "
			         "%zu bytes of room",
			         len, room);
		if (grows && len + 40 < room)
			fail_msg("a value of %zu bytes would grow the buffer, "
			         "with %zu bytes of room",
			         len, room);
		lb__segw_free(&w);
	}
}

/* Deflating chunks ahead (a second thread does it while records are
 * added: engine/zwork.c) never changes a segment's bytes: fed after every
 * record, at random points, up to random lengths, with a record that
 * grows the buffer after chunks were fed, or after an abandoned start,
 * every level gives the bytes of a segment finished in one go. */
static void test_wal_segment__feeding_ahead_keeps_bytes(void **state)
{
	enum { N = 1500 };
	uint64_t rs = th_seed(31);
	lb_wal_rec *recs = calloc(N + 1, sizeof *recs);
	char(*keys)[24] = calloc(N + 1, sizeof *keys);
	uint8_t *vals = pattern(600, 5), *big = pattern(200000, 9);
	(void)state;

	assert_non_null(recs);
	assert_non_null(keys);
	for (size_t i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "k%zu", i);
		recs[i] = rec(LB_OP_PUT, "t", keys[i],
		              i % 3 ? vals + th_below(&rs, 300) : NULL,
		              i % 3 ? th_below(&rs, 300) : 0,
		              vals + th_below(&rs, 300), th_below(&rs, 300));
		recs[i].prev = th_rand(&rs) >> th_below(&rs, 64);
	}
	/* past the buffer the first records grew, after chunks were fed */
	recs[N] = recs[N / 2];
	recs[N / 2] = rec(LB_OP_PUT, "t", "big", NULL, 0, big, 200000);
	recs[N / 2 + 1] = recs[N];
	for (int level = 0; level <= 9; level++) {
		size_t ref_len, len, fed_max;
		uint8_t *ref =
		        build_fed(level, recs, N, 0, &rs, &ref_len, &fed_max);
		expect_segment(ref, ref_len, recs, N);
		for (int way = 1; way <= 3; way++) {
			uint8_t *got = build_fed(level, recs, N, way, &rs, &len,
			                         &fed_max);
			if (len != ref_len || memcmp(got, ref, len) != 0)
				fail_msg("level %d, way %d: %zu bytes against "
				         "%zu fed in one go (seed %llu)",
				         level, way, len, ref_len,
				         (unsigned long long)th_seed(31));
			/* levels 1..3 deflate as a stream, fed ahead */
			th_assert_seeded((fed_max > 0) ==
			                 (level >= 1 && level <= 3));
			free(got);
		}
		free(ref);
	}
	free(recs);
	free(keys);
	free(vals);
	free(big);
}

/* The finished segment stays valid while the next one is being filled. */
static void test_wal_segment__finished_segment_survives_adds(void **state)
{
	static const int levels[] = {0, 1};
	size_t i;
	(void)state;

	for (i = 0; i < 2; i++) {
		lb_wal_rec a = rec(LB_OP_PUT, "t", "a", NULL, 0,
		                   "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 36);
		lb_wal_rec b = rec(LB_OP_PUT, "t", "b", NULL, 0, "b", 1);
		const uint8_t *seg;
		size_t len, k;
		uint8_t *copy;
		lb_segw w;

		assert_int_equal(lb__segw_init(&w, levels[i]), 0);
		assert_int_equal(lb__segw_add(&w, &a), 0);
		assert_int_equal(lb__segw_finish(&w, &seg, &len), 0);
		copy = malloc(len);
		memcpy(copy, seg, len);
		for (k = 0; k < 1000; k++)
			assert_int_equal(lb__segw_add(&w, &b), 0);
		assert_memory_equal(seg, copy, len);
		expect_segment(seg, len, &a, 1);
		free(copy);
		lb__segw_free(&w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_wal_segment__roundtrip_every_op),
	        cmocka_unit_test(test_wal_segment__roundtrip_large_values),
	        cmocka_unit_test(test_wal_segment__many_records),
	        cmocka_unit_test(test_wal_segment__feeding_ahead_keeps_bytes),
	        cmocka_unit_test(test_wal_segment__grows_is_exact_near_the_end),
	        cmocka_unit_test(test_wal_segment__refused_stream_is_stored),
	        cmocka_unit_test(test_wal_segment__incompressible_is_stored),
	        cmocka_unit_test(test_wal_segment__every_level_is_zlib),
	        cmocka_unit_test(test_wal_segment__writer_leaves_vectors_clean),
	        cmocka_unit_test(test_wal_segment__golden_stored),
	        cmocka_unit_test(test_wal_segment__golden_zlib),
	        cmocka_unit_test(test_wal_segment__every_byte_flip),
	        cmocka_unit_test(test_wal_segment__every_truncation),
	        cmocka_unit_test(
	                test_wal_segment__payload_flips_with_valid_crc),
	        cmocka_unit_test(test_wal_segment__header_rules),
	        cmocka_unit_test(
	                test_wal_segment__huge_claims_refused_before_allocating),
	        cmocka_unit_test(test_wal_segment__zlib_rules),
	        cmocka_unit_test(test_wal_segment__record_rules),
	        cmocka_unit_test(test_wal_segment__record_prev),
	        cmocka_unit_test(test_wal_segment__writer_prev_shortest),
	        cmocka_unit_test(test_wal_segment__record_types),
	        cmocka_unit_test(test_wal_segment__record_any_width),
	        cmocka_unit_test(test_wal_segment__record_image_over_limit),
	        cmocka_unit_test(test_wal_segment__writer_rejects),
	        cmocka_unit_test(test_wal_segment__writer_misuse),
	        cmocka_unit_test(test_wal_segment__writer_segment_full),
	        cmocka_unit_test(test_wal_segment__writer_reset),
	        cmocka_unit_test(test_wal_segment__table_names),
	        cmocka_unit_test(
	                test_wal_segment__finished_segment_survives_adds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
