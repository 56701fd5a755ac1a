/* SPDX-License-Identifier: MIT */
/*
 * tests/wal/header.c: batch headers and the hash chain (wal/header.c),
 * FORMAT.md §5.
 *
 * The golden hashes below were computed once, outside this code, from the
 * hash input bytes written out by hand here (xxd -r -p | sha256sum). The
 * tests check both that those bytes hash to the value and that
 * lb__hdr_hash() of the matching header gives the same value.
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

static void unhex(const char *hex, uint8_t *out, size_t n)
{
	size_t i;

	assert_int_equal(strlen(hex), 2 * n);
	for (i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

/* FORMAT.md's worked example: the SHA-256 of the golden segment of
 * tests/wal/segment.c (66 bytes), and batch 1 holding it. */
#define SEG_HASH                                                               \
	"77ee52c061c8cafc1175e424b6665aa0dbbce77ef747e737c55c5301c1c71280"
#define H1 "125c44692781603e650eed47511ba2e1f85016252180d351921e944293d0af91"
#define H2 "fae604e8aadf0c65835eeac7c0e1b78bee07250e1e237134065c7b2a883daf4a"

/* Hash input of batch 1, field by field (§5.3). */
static const char pre1_hex[] =
        "0000000000000000000000000000000000000000000000000000000000000000"
        "4c424831"         /* "LBH1" */
        "0000000000000001" /* id 1 */
        "17979cfe362a0000" /* time_ns 1700000000000000000 */
        "0005"             /* label length 5 */
        "6669727374"       /* "first" */
        "0000000000000002" /* records 2 */
        "00000001"         /* segments 1 */
        "000000000000002a" /* raw_bytes 42 */
        "0000000000000042" /* stored_bytes 66 */
        "0000000000000000" /* undoes 0 */
        SEG_HASH;

/* Batch 2: a rollback of batch 1 with a time before the epoch. */
static const char pre2_hex[] =
        H1 "4c424831"
           "0000000000000002" /* id 2 */
           "ffffffffffffffff" /* time_ns -1, two's complement */
           "0006"             /* label length 6 */
           "756e646f2031"     /* "undo 1" */
           "0000000000000001" /* records 1 */
           "00000001"         /* segments 1 */
           "000000000000000a" /* raw_bytes 10 */
           "0000000000000022" /* stored_bytes 34 */
           "0000000000000001" /* undoes 1 */
           "1111111111111111111111111111111111111111111111111111111111111111";

/* Batch 1's header as stored (§5.1), written out by hand. */
static const char enc1_hex[] =
        "9e"                 /* fixarray of 14 */
        "01"                 /* hver 1 */
        "01"                 /* id 1 */
        "cf17979cfe362a0000" /* time_ns: uint 64 */
        "a56669727374"       /* label: fixstr "first" */
        "02"                 /* records 2 */
        "01"                 /* segments 1 */
        "2a"                 /* raw_bytes 42 */
        "42"                 /* stored_bytes 66 */
        "00"                 /* undoes 0 */
        "c420" SEG_HASH      /* seg_hashes: bin 8 of 32 */
        "c420"
        "0000000000000000000000000000000000000000000000000000000000000000"
        "c420" H1 /* hash */
        "00"      /* rolled_back_by 0 */
        "c2";     /* pruned false */

static uint8_t seg_hash1[32], seg_hash2[32];

static lb_wal_hdr batch1(void)
{
	lb_wal_hdr h;

	memset(&h, 0, sizeof h);
	h.id = 1;
	h.time_ns = 1700000000000000000LL;
	strcpy(h.label, "first");
	h.records = 2;
	h.segments = 1;
	h.raw_bytes = 42;
	h.stored_bytes = 66;
	unhex(SEG_HASH, seg_hash1, 32);
	h.seg_hashes = seg_hash1;
	unhex(H1, h.hash, 32);
	return h;
}

static lb_wal_hdr batch2(void)
{
	lb_wal_hdr h;

	memset(&h, 0, sizeof h);
	h.id = 2;
	h.time_ns = -1;
	strcpy(h.label, "undo 1");
	h.records = 1;
	h.segments = 1;
	h.raw_bytes = 10;
	h.stored_bytes = 34;
	h.undoes = 1;
	memset(seg_hash2, 0x11, 32);
	h.seg_hashes = seg_hash2;
	unhex(H1, h.prev_hash, 32);
	unhex(H2, h.hash, 32);
	return h;
}

/* ---- hashes -------------------------------------------------------------- */

static void test_wal_header__sha256_known_answers(void **state)
{
	uint8_t out[32], want[32];
	(void)state;

	assert_int_equal(lb__sha256("abc", 3, out), 0);
	unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015a"
	      "d",
	      want, 32);
	assert_memory_equal(out, want, 32);
	assert_int_equal(lb__sha256(NULL, 0, out), 0);
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"
	      "5",
	      want, 32);
	assert_memory_equal(out, want, 32);
}

static void test_wal_header__golden_chain(void **state)
{
	uint8_t pre1[127], pre2[128], out[32], want[32];
	lb_wal_hdr h;
	(void)state;

	/* The documented bytes hash to the documented values... */
	unhex(pre1_hex, pre1, sizeof pre1);
	unhex(pre2_hex, pre2, sizeof pre2);
	assert_int_equal(lb__sha256(pre1, sizeof pre1, out), 0);
	unhex(H1, want, 32);
	assert_memory_equal(out, want, 32);
	assert_int_equal(lb__sha256(pre2, sizeof pre2, out), 0);
	unhex(H2, want, 32);
	assert_memory_equal(out, want, 32);
	/* ...and so do the headers they describe. */
	h = batch1();
	assert_int_equal(lb__hdr_hash(&h, out), 0);
	assert_memory_equal(out, h.hash, 32);
	h = batch2();
	assert_int_equal(lb__hdr_hash(&h, out), 0);
	assert_memory_equal(out, h.hash, 32);
	/* The state fields and the stored hash are not hashed. */
	h.rolled_back_by = 99;
	h.pruned = 1;
	memset(h.hash, 0xee, 32);
	assert_int_equal(lb__hdr_hash(&h, out), 0);
	unhex(H2, want, 32);
	assert_memory_equal(out, want, 32);
	/* Every covered field is. */
	{
		lb_wal_hdr base = batch2(), m;
		uint8_t other[32];
		int k;
		for (k = 0; k < 11; k++) {
			m = base;
			switch (k) {
			case 0:
				m.id++;
				break;
			case 1:
				m.time_ns = -2;
				break;
			case 2:
				strcpy(m.label, "undo 2");
				break;
			case 3:
				strcpy(m.label, "undo 1 ");
				break;
			case 4:
				m.records++;
				break;
			case 5:
				m.raw_bytes++;
				break;
			case 6:
				m.stored_bytes++;
				break;
			case 7:
				m.undoes = 0;
				break;
			case 8:
				m.prev_hash[31] ^= 1;
				break;
			case 9:
				m.seg_hashes = seg_hash1;
				break;
			default:
				m.segments = 0;
				m.seg_hashes = NULL;
				break;
			}
			assert_int_equal(lb__hdr_hash(&m, other), 0);
			if (!memcmp(other, want, 32))
				fail_msg("field %d is not covered", k);
		}
	}
}

/* ---- encoding ------------------------------------------------------------ */

static void test_wal_header__golden_encoding(void **state)
{
	uint8_t enc[127];
	lb_wal_hdr h = batch1(), d;
	lb_buf b;
	(void)state;

	unhex(enc1_hex, enc, sizeof enc);
	lb__buf_init(&b);
	assert_int_equal(lb__hdr_encode(&h, &b), 0);
	assert_int_equal(b.len, sizeof enc);
	assert_memory_equal(b.data, enc, sizeof enc);
	assert_int_equal(lb__hdr_decode(enc, sizeof enc, &d), 0);
	assert_true(d.id == 1 && d.time_ns == 1700000000000000000LL);
	assert_string_equal(d.label, "first");
	assert_true(d.records == 2 && d.segments == 1 && d.raw_bytes == 42 &&
	            d.stored_bytes == 66 && d.undoes == 0);
	assert_memory_equal(d.seg_hashes, seg_hash1, 32);
	assert_memory_equal(d.hash, h.hash, 32);
	assert_true(d.rolled_back_by == 0 && d.pruned == 0);
	lb__hdr_free(&d);
	assert_null(d.seg_hashes);
	lb__hdr_free(&d);
	lb__hdr_free(NULL);
	lb__buf_free(&b);
}

static void expect_same(const lb_wal_hdr *a, const lb_wal_hdr *b)
{
	assert_true(a->id == b->id);
	assert_true(a->time_ns == b->time_ns);
	assert_string_equal(a->label, b->label);
	assert_true(a->records == b->records);
	assert_int_equal(a->segments, b->segments);
	assert_true(a->raw_bytes == b->raw_bytes);
	assert_true(a->stored_bytes == b->stored_bytes);
	assert_true(a->undoes == b->undoes);
	assert_memory_equal(a->seg_hashes, b->seg_hashes, 32 * a->segments);
	assert_memory_equal(a->prev_hash, b->prev_hash, 32);
	assert_memory_equal(a->hash, b->hash, 32);
	assert_true(a->rolled_back_by == b->rolled_back_by);
	assert_int_equal(!!a->pruned, !!b->pruned);
}

static void test_wal_header__roundtrip(void **state)
{
	uint64_t rs = th_seed(5);
	int round;
	(void)state;

	for (round = 0; round < 200; round++) {
		lb_wal_hdr h, d;
		size_t i, llen = th_below(&rs, 256);
		uint8_t *hashes;
		lb_buf b;
		int rc;

		memset(&h, 0, sizeof h);
		h.id = 1 + (th_rand(&rs) >> th_below(&rs, 64));
		if (h.id == UINT64_MAX)
			h.id--;
		h.time_ns = (int64_t)(th_rand(&rs) >> th_below(&rs, 64));
		if (th_below(&rs, 2))
			h.time_ns = -h.time_ns;
		for (i = 0; i < llen; i++)
			h.label[i] = (char)(1 + th_below(&rs, 255));
		h.segments =
		        1 + (uint32_t)th_below(&rs, round < 190 ? 5 : 5000);
		h.records = h.segments + th_below(&rs, 1000000);
		h.raw_bytes = 10 * h.records + th_below(&rs, 1u << 20);
		h.stored_bytes =
		        25 * (uint64_t)h.segments + th_below(&rs, 1u << 20);
		h.undoes = th_below(&rs, h.id);
		h.rolled_back_by = th_below(&rs, 2) && h.id < UINT64_MAX - 1
		                           ? h.id + 1 + th_below(&rs, 10)
		                           : 0;
		h.pruned = (int)th_below(&rs, 2);
		hashes = malloc(32 * (size_t)h.segments);
		for (i = 0; i < 32 * (size_t)h.segments; i++)
			hashes[i] = (uint8_t)th_rand(&rs);
		h.seg_hashes = hashes;
		for (i = 0; i < 32; i++) {
			h.prev_hash[i] = (uint8_t)th_rand(&rs);
			h.hash[i] = (uint8_t)th_rand(&rs);
		}
		lb__buf_init(&b);
		rc = lb__hdr_encode(&h, &b);
		if (rc != 0)
			print_error("%s\n", lb_errmsg());
		th_assert_seeded(rc == 0);
		rc = lb__hdr_decode(b.data, b.len, &d);
		if (rc != 0)
			print_error("%s\n", lb_errmsg());
		th_assert_seeded(rc == 0);
		expect_same(&d, &h);
		lb__hdr_free(&d);
		lb__buf_free(&b);
		free(hashes);
	}
}

static void test_wal_header__encode_rejects(void **state)
{
	lb_wal_hdr base = batch2(), h;
	lb_buf b;
	int k;
	(void)state;

	lb__buf_init(&b);
	assert_int_equal(lb__buf_append(&b, "xyz", 3), 0);
	for (k = 0; k < 13; k++) {
		h = base;
		switch (k) {
		case 0:
			h.id = 0;
			break;
		case 1:
			h.segments = 0;
			break;
		case 2:
			h.segments = LB__HDR_SEGMENTS_MAX + 1;
			break;
		case 3:
			h.records = 0;
			break;
		case 4:
			h.records = (uint64_t)LB__SEG_COUNT_MAX + 1;
			break;
		case 5:
			h.raw_bytes = 9;
			break;
		case 6:
			h.raw_bytes = (uint64_t)LB__SEG_RAW_MAX + 1;
			break;
		case 7:
			h.stored_bytes = 24;
			break;
		case 8:
			h.undoes = 2;
			break;
		case 9:
			h.rolled_back_by = 2;
			break;
		case 10:
			h.rolled_back_by = 1;
			break;
		case 11:
			h.seg_hashes = NULL;
			break;
		default:
			memset(h.label, 'x', sizeof h.label);
			break;
		}
		if (lb__hdr_encode(&h, &b) != LB_EINVAL)
			fail_msg("case %d accepted", k);
		assert_int_equal(b.len, 3); /* out unchanged */
	}
	/* The edges that are fine. */
	h = base;
	h.rolled_back_by = 3;
	memset(h.label, 'x', LB_LABEL_MAX);
	h.label[LB_LABEL_MAX] = 0;
	assert_int_equal(lb__hdr_encode(&h, &b), 0);
	assert_memory_equal(b.data, "xyz", 3); /* appended */
	assert_int_equal(lb__hdr_hash(&h, h.hash), 0);
	memset(h.label, 'x', sizeof h.label);
	assert_int_equal(lb__hdr_hash(&h, h.hash), LB_EINVAL);
	lb__buf_free(&b);
}

/* ---- damage -------------------------------------------------------------- */

/* Byte ranges of the encoded batch-2-like header used below. */
static uint8_t *sample(size_t *len, size_t *state_off)
{
	lb_wal_hdr h = batch2();
	uint8_t *p;
	lb_buf b;

	/* two segments, a real time and a rolled_back_by, so that more
	 * forms are present */
	static uint8_t hashes[64];
	memset(hashes, 0x5a, sizeof hashes);
	h.seg_hashes = hashes;
	h.segments = 2;
	h.records = 300;
	h.raw_bytes = 70000;
	h.stored_bytes = 4000;
	h.time_ns = 1700000000123456789LL;
	h.rolled_back_by = 7;
	h.pruned = 1;
	assert_int_equal(lb__hdr_hash(&h, h.hash), 0);
	lb__buf_init(&b);
	assert_int_equal(lb__hdr_encode(&h, &b), 0);
	/* rolled_back_by (fixint 7) and pruned (true) are the last 2 bytes */
	assert_int_equal(b.data[b.len - 2], 0x07);
	assert_int_equal(b.data[b.len - 1], 0xc3);
	*state_off = b.len - 2;
	*len = b.len;
	p = malloc(b.len);
	memcpy(p, b.data, b.len);
	lb__buf_free(&b);
	return p;
}

/*
 * Every byte xor every mask: decoding fails (LB_EVERSION only where the
 * version is read), or the decoded header's hash differs from its stored
 * hash, or the byte belongs to the two unhashed state fields, and then
 * every covered field decoded unchanged.
 */
static void test_wal_header__every_byte_flip(void **state)
{
	size_t len, off, i;
	uint8_t *p = sample(&len, &off);
	lb_wal_hdr orig;
	unsigned state_hits = 0;
	(void)state;

	assert_int_equal(lb__hdr_decode(p, len, &orig), 0);
	for (i = 0; i < len; i++) {
		unsigned mask;
		for (mask = 1; mask < 256; mask++) {
			uint8_t *q = malloc(len), h[32];
			lb_wal_hdr d;
			int rc;

			memcpy(q, p, len);
			q[i] ^= (uint8_t)mask;
			rc = lb__hdr_decode(q, len, &d);
			free(q);
			if (rc == LB_EVERSION && i <= 1)
				continue;
			if (rc == LB_ECORRUPT) {
				assert_true(lb_errmsg()[0] != '\0');
				continue;
			}
			if (rc != 0)
				fail_msg("byte %zu mask 0x%02x: rc %d", i, mask,
				         rc);
			assert_int_equal(lb__hdr_hash(&d, h), 0);
			if (memcmp(h, d.hash, 32) == 0) {
				if (i < off)
					fail_msg(
					        "byte %zu mask 0x%02x: change "
					        "in a covered field undetected",
					        i, mask);
				/* Only state changed. */
				d.rolled_back_by = orig.rolled_back_by;
				d.pruned = orig.pruned;
				expect_same(&d, &orig);
				state_hits++;
			}
			lb__hdr_free(&d);
		}
	}
	/* rolled_back_by 7 -> other fixints > 2, and pruned true -> false */
	assert_true(state_hits > 0);
	lb__hdr_free(&orig);
	free(p);
}

static void test_wal_header__every_truncation(void **state)
{
	size_t len, off, k;
	uint8_t *p = sample(&len, &off), *q;
	lb_wal_hdr d;
	(void)state;

	for (k = 0; k < len; k++) {
		q = malloc(k ? k : 1);
		memcpy(q, p, k);
		assert_int_equal(lb__hdr_decode(q, k, &d), LB_ECORRUPT);
		assert_null(d.seg_hashes);
		free(q);
	}
	q = malloc(len + 1);
	memcpy(q, p, len);
	q[len] = 0xc0;
	assert_int_equal(lb__hdr_decode(q, len + 1, &d), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "1 bytes follow"));
	assert_int_equal(lb__hdr_decode(NULL, 0, &d), LB_ECORRUPT);
	free(q);
	free(p);
}

/* ---- crafted headers ----------------------------------------------------- */

/*
 * Items of a header to craft: each is written by a callback so that a test
 * can swap one for other bytes. Defaults are batch 2 with two segments.
 */
enum {
	F_ARRAY,
	F_HVER,
	F_ID,
	F_TIME,
	F_LABEL,
	F_RECORDS,
	F_SEGMENTS,
	F_RAW,
	F_STORED,
	F_UNDOES,
	F_SEGHASH,
	F_PREV,
	F_HASH,
	F_RBB,
	F_PRUNED,
	F_COUNT
};

static int crafted(int field, const void *bytes, size_t n)
{
	static uint8_t h64[64];
	lb_wal_hdr d;
	lb_buf b;
	int f, rc;

	lb__buf_init(&b);
	for (f = 0; f < F_COUNT; f++) {
		if (f == field) {
			assert_int_equal(lb__buf_append(&b, bytes, n), 0);
			continue;
		}
		switch (f) {
		case F_ARRAY:
			rc = lb__mpw_array(&b, 14);
			break;
		case F_HVER:
			rc = lb__mpw_uint(&b, 1);
			break;
		case F_ID:
			rc = lb__mpw_uint(&b, 5);
			break;
		case F_TIME:
			rc = lb__mpw_int(&b, 1000);
			break;
		case F_LABEL:
			rc = lb__mpw_str(&b, "lbl", 3);
			break;
		case F_RECORDS:
			rc = lb__mpw_uint(&b, 2);
			break;
		case F_SEGMENTS:
			rc = lb__mpw_uint(&b, 2);
			break;
		case F_RAW:
			rc = lb__mpw_uint(&b, 20);
			break;
		case F_STORED:
			rc = lb__mpw_uint(&b, 60);
			break;
		case F_UNDOES:
			rc = lb__mpw_uint(&b, 0);
			break;
		case F_SEGHASH:
			rc = lb__mpw_bin(&b, h64, 64);
			break;
		case F_PREV:
			rc = lb__mpw_bin(&b, h64, 32);
			break;
		case F_HASH:
			rc = lb__mpw_bin(&b, h64, 32);
			break;
		case F_RBB:
			rc = lb__mpw_uint(&b, 0);
			break;
		default:
			rc = lb__mpw_bool(&b, 0);
			break;
		}
		assert_int_equal(rc, 0);
	}
	{
		uint8_t *q = malloc(b.len); /* exact size, for ASan */
		memcpy(q, b.data, b.len);
		rc = lb__hdr_decode(q, b.len, &d);
		free(q);
	}
	if (rc == 0)
		lb__hdr_free(&d);
	else
		assert_null(d.seg_hashes);
	lb__buf_free(&b);
	return rc;
}

#define CRAFT(field, ...)                                                      \
	crafted(field, (const uint8_t[]){__VA_ARGS__},                         \
	        sizeof((const uint8_t[]){__VA_ARGS__}))

static void test_wal_header__crafted_rules(void **state)
{
	uint8_t big[300];
	(void)state;

	assert_int_equal(crafted(-1, NULL, 0), 0);
	/* version */
	assert_int_equal(CRAFT(F_HVER, 0x00), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_HVER, 0x02), LB_EVERSION);
	assert_non_null(strstr(lb_errmsg(), "version 2 is newer"));
	assert_int_equal(CRAFT(F_HVER, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0),
	                 LB_EVERSION);
	/* a newer version is recognised whatever its arity */
	assert_int_equal(CRAFT(F_ARRAY, 0x92, 0x02), LB_EVERSION);
	assert_int_equal(CRAFT(F_HVER, 0xa1, '1'), LB_ECORRUPT);
	/* arity and form of the array */
	assert_int_equal(CRAFT(F_ARRAY, 0x9d), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_ARRAY, 0x9f), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_ARRAY, 0xdc, 0x00, 0x0e), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_ARRAY, 0x8e), LB_ECORRUPT);
	/* shortest forms only */
	assert_int_equal(CRAFT(F_HVER, 0xcc, 0x01), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_ID, 0xcc, 0x05), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "shortest"));
	assert_int_equal(CRAFT(F_ID, 0xd0, 0x05), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_TIME, 0xd1, 0x03, 0xe8), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_TIME, 0xce, 0, 0, 0x03, 0xe8), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_TIME, 0xcd, 0x03, 0xe8), 0);
	assert_int_equal(CRAFT(F_TIME, 0xd0, 0xff), LB_ECORRUPT); /* -1 */
	assert_int_equal(CRAFT(F_TIME, 0xff), 0);
	assert_int_equal(CRAFT(F_RAW, 0xd1, 0x01, 0x00), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_LABEL, 0xd9, 3, 'l', 'b', 'l'), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_PREV, 0xc5, 0, 32, 1, 2, 3, 4, 5, 6, 7, 8, 9,
	                       10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
	                       22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32),
	                 LB_ECORRUPT);
	/* types */
	assert_int_equal(CRAFT(F_ID, 0xc0), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_ID, 0xff), LB_ECORRUPT); /* negative */
	assert_int_equal(CRAFT(F_TIME, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0),
	                 LB_ECORRUPT); /* over INT64_MAX */
	assert_int_equal(CRAFT(F_TIME, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0),
	                 LB_ECORRUPT);
	assert_int_equal(CRAFT(F_LABEL, 0xc4, 3, 'l', 'b', 'l'), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_LABEL, 0xa3, 'l', 0, 'l'), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "NUL"));
	assert_int_equal(CRAFT(F_PRUNED, 0x00), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_PRUNED, 0xc3), 0);
	assert_int_equal(CRAFT(F_RBB, 0xc0), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_PREV, 0xc4, 2, 0, 0), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "not 32"));
	assert_int_equal(CRAFT(F_HASH, 0xa2, 0, 0), LB_ECORRUPT);
	/* a 256-byte label (str 16, its shortest form) */
	big[0] = 0xda;
	big[1] = 0x01;
	big[2] = 0x00;
	memset(big + 3, 'a', 256);
	assert_int_equal(crafted(F_LABEL, big, 3 + 256), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "over 255"));
	big[2] = 0xff;
	big[0] = 0xd9;
	big[1] = 0xff;
	assert_int_equal(crafted(F_LABEL, big, 2 + 255), 0);
	/* seg_hashes against segments */
	assert_int_equal(CRAFT(F_SEGMENTS, 0x01), LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "seg_hashes"));
	assert_int_equal(CRAFT(F_SEGMENTS, 0x03), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_SEGMENTS, 0x00), LB_ECORRUPT);
	/* invariants between fields */
	assert_int_equal(CRAFT(F_ID, 0x00), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_RECORDS, 0x01), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_RAW, 0x13), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_RAW, 0x14), 0);
	assert_int_equal(CRAFT(F_STORED, 0x31), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_STORED, 0x32), 0);
	assert_int_equal(CRAFT(F_UNDOES, 0x05), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_UNDOES, 0x04), 0);
	assert_int_equal(CRAFT(F_RBB, 0x05), LB_ECORRUPT);
	assert_int_equal(CRAFT(F_RBB, 0x06), 0);
}

/* Claims of huge sizes in tiny inputs are refused before allocating. */
static void test_wal_header__hostile_lengths(void **state)
{
	(void)state;
	assert_int_equal(CRAFT(F_SEGHASH, 0xc6, 0xff, 0xff, 0xff, 0xff),
	                 LB_ECORRUPT);
	assert_non_null(strstr(lb_errmsg(), "runs past the end"));
	assert_int_equal(CRAFT(F_SEGMENTS, 0xce, 0x00, 0x40, 0x00, 0x01),
	                 LB_ECORRUPT); /* 2^22 + 1 */
	assert_int_equal(CRAFT(F_SEGMENTS, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff,
	                       0xff, 0xff, 0xff),
	                 LB_ECORRUPT);
	assert_int_equal(CRAFT(F_ARRAY, 0xdd, 0xff, 0xff, 0xff, 0xff),
	                 LB_ECORRUPT);
	assert_int_equal(CRAFT(F_LABEL, 0xdb, 0xff, 0xff, 0xff, 0xff),
	                 LB_ECORRUPT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_wal_header__sha256_known_answers),
	        cmocka_unit_test(test_wal_header__golden_chain),
	        cmocka_unit_test(test_wal_header__golden_encoding),
	        cmocka_unit_test(test_wal_header__roundtrip),
	        cmocka_unit_test(test_wal_header__encode_rejects),
	        cmocka_unit_test(test_wal_header__every_byte_flip),
	        cmocka_unit_test(test_wal_header__every_truncation),
	        cmocka_unit_test(test_wal_header__crafted_rules),
	        cmocka_unit_test(test_wal_header__hostile_lengths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
