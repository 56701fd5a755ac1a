/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the segment decoder (wal/segment.c, FORMAT.md §3-4).
 *
 * The first input byte chooses how the rest is used:
 *  - even: the rest is a whole segment, header and CRC included;
 *  - odd: the rest is a segment's payload of records, given a valid header
 *    (and CRC) around it, stored (bit 1 clear) or deflated with zlib (bit 1
 *    set), with a record count of 1 + (byte >> 2); without this, almost no
 *    mutated input would get past the CRC to the record parser.
 * Properties: a refused segment gets LB_ECORRUPT or LB_EVERSION with a
 * detail; an accepted one yields exactly its header's count of records,
 * each within the §4 limits (a TABLE record's prev is 0), and those
 * records, written again by the segment writer, read back identical (prev
 * included).
 */
#include <string.h>
#include <zlib.h>

#include "_fuzz.h"
#include "wal/wal.h"

static lb_segr rd, rd2;
static lb_segw wr;
static int ready;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	lb__segr_init(&rd);
	lb__segr_init(&rd2);
	FUZZ_CHECK(lb__segw_init(&wr, 1) == 0);
	ready = 1;
	return 0;
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Wrap payload in a valid header. */
static int wrap(lb_buf *seg, int codec, uint32_t count, const uint8_t *p,
                size_t n)
{
	uint8_t h[LB__SEG_HDR_SIZE];
	uLongf zn = compressBound((uLong)n);
	uint8_t *z = NULL;
	const uint8_t *payload = p;
	size_t stored = n;
	if (n > LB__SEG_RAW_MAX)
		return -1;
	if (codec) {
		if (!(z = malloc(zn)) ||
		    compress2(z, &zn, p, (uLong)n, 1) != Z_OK) {
			free(z);
			return -1;
		}
		payload = z;
		stored = zn;
	}
	memcpy(h, "\x89LBW", 4);
	h[4] = 1;
	h[5] = 0;
	h[6] = (uint8_t)codec;
	h[7] = 0;
	le32(h + 8, (uint32_t)n);
	le32(h + 12, count);
	le32(h + 16, (uint32_t)stored);
	uLong crc = crc32(0, h, 20);
	crc = crc32(crc, payload, (uInt)stored);
	le32(h + 20, (uint32_t)crc);
	seg->len = 0;
	int rc = lb__buf_append(seg, h, sizeof h);
	if (rc == 0)
		rc = lb__buf_append(seg, payload, stored);
	free(z);
	return rc;
}

static int rec_eq(const lb_wal_rec *a, const lb_wal_rec *b)
{
	return a->op == b->op && a->prev == b->prev && a->tlen == b->tlen &&
	       !memcmp(a->table, b->table, a->tlen) && a->klen == b->klen &&
	       !memcmp(a->key, b->key, a->klen) &&
	       a->has_before == b->has_before && a->blen == b->blen &&
	       (!a->blen || !memcmp(a->before, b->before, a->blen)) &&
	       a->has_after == b->has_after && a->alen == b->alen &&
	       (!a->alen || !memcmp(a->after, b->after, a->alen));
}

static void check_rec(const lb_wal_rec *r)
{
	FUZZ_CHECK(r->op == LB_OP_PUT || r->op == LB_OP_DELETE ||
	           r->op == LB_OP_TABLE);
	FUZZ_CHECK(lb__table_name_ok(r->table, r->tlen));
	FUZZ_CHECK(r->klen >= 1 && r->klen <= LB_KEY_MAX);
	FUZZ_CHECK(!r->has_before || r->blen <= LB_VALUE_MAX);
	FUZZ_CHECK(!r->has_after || r->alen <= LB_VALUE_MAX);
	FUZZ_CHECK(r->has_before || (r->blen == 0 && !r->before));
	FUZZ_CHECK(r->has_after || (r->alen == 0 && !r->after));
	if (r->op == LB_OP_PUT)
		FUZZ_CHECK(r->has_after);
	if (r->op == LB_OP_DELETE)
		FUZZ_CHECK(r->has_before && !r->has_after);
	if (r->op == LB_OP_TABLE)
		FUZZ_CHECK(r->prev == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lb_buf seg;
	lb_seg_hdr h;
	lb_wal_rec rec, again;
	uint32_t n = 0;
	int rc;
	if (!ready)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size == 0)
		return 0;
	lb__buf_init(&seg);
	if (data[0] & 1) {
		if (wrap(&seg, (data[0] >> 1) & 1, 1u + (data[0] >> 2),
		         data + 1, size - 1) != 0) {
			lb__buf_free(&seg);
			return 0;
		}
	} else if (lb__buf_append(&seg, data + 1, size - 1) != 0) {
		lb__buf_free(&seg);
		return 0;
	}
	rc = lb__segr_load(&rd, seg.data, seg.len);
	if (rc != 0) {
		FUZZ_CHECK(rc == LB_ECORRUPT || rc == LB_EVERSION ||
		           rc == LB_ENOMEM);
		FUZZ_CHECK(lb_errmsg()[0] != 0);
		/* a refused segment yields nothing */
		FUZZ_CHECK(lb__segr_next(&rd, &rec) == 0);
		lb__buf_free(&seg);
		return 0;
	}
	FUZZ_CHECK(lb__seg_header(seg.data, seg.len, &h) == 0);
	/* the records, written again by the writer (which refuses what
	 * it would never write, such as a TABLE record whose schema does
	 * not decode: the engine refuses those when it applies them) */
	lb__segw_reset(&wr);
	int rewrite = 1;
	while ((rc = lb__segr_next(&rd, &rec)) == 1) {
		check_rec(&rec);
		n++;
		if (rewrite && lb__segw_add(&wr, &rec) != 0)
			rewrite = 0;
	}
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(n == h.count);
	if (rewrite) {
		const uint8_t *out;
		size_t outlen;
		FUZZ_CHECK(lb__segw_finish(&wr, &out, &outlen) == 0);
		FUZZ_CHECK(lb__segr_load(&rd2, out, outlen) == 0);
		FUZZ_CHECK(lb__segr_load(&rd, seg.data, seg.len) == 0);
		while (lb__segr_next(&rd, &rec) == 1) {
			FUZZ_CHECK(lb__segr_next(&rd2, &again) == 1);
			FUZZ_CHECK(rec_eq(&rec, &again));
		}
		FUZZ_CHECK(lb__segr_next(&rd2, &again) == 0);
	}
	lb__segw_reset(&wr);
	lb__buf_free(&seg);
	return 0;
}
