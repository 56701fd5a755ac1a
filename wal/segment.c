/* SPDX-License-Identifier: MIT */
/*
 * segment.c: change records <-> segments (FORMAT.md §3, §4).
 *
 * A segment is a 24-byte little-endian header followed by a payload: the
 * concatenated msgpack records, stored as is (codec 0) or as one zlib
 * stream (codec 1). The CRC-32 covers header bytes 0..19 and the payload,
 * so every byte of a segment is checked.
 *
 * WRITER. Records are encoded straight into w->raw, behind 24 bytes left
 * free for the header. Invariant: w->raw.len >= LB__SEG_HDR_SIZE, and
 * bytes [24, raw.len) are the open records. finish() with codec 0 fills the
 * header in place and swaps raw and out, so a stored segment is never
 * copied; with codec 1 it deflates raw into out with one reused compressor:
 * at levels 1..3 an igzip stream, which feed() may have been given whole
 * chunks of the records before (from another thread: the open records only
 * grow, and lb__segw_grows() tells when their buffer would move), at 4..9
 * libdeflate in one call. Both buffers and the compressor live as long as
 * the writer: after the first few segments nothing is allocated per record
 * or per segment.
 *
 * READER. load() checks the whole header and the CRC before anything else,
 * so damaged bytes are never inflated; the raw length is capped
 * (LB__SEG_RAW_MAX) before the buffer is sized. Inflating must produce
 * exactly raw_len bytes from exactly the payload. Then all `count` records
 * are parsed and checked, and nothing may follow them: a consumer sees a
 * whole valid segment or an error, never half a segment. next() parses the
 * records again (cheap: msgpack headers only) and points into r->raw.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/igzip_lib.h>
#include <libdeflate.h>

#include "wal/wal.h"

/* Any single valid record (two 16 MiB images plus names) fits in an empty
 * segment, and the largest segment fits the decoders' allocation cap. */
_Static_assert(LB__SEG_RAW_MAX >= 2 * (uint64_t)LB_VALUE_MAX + 1024,
               "a record must fit in one segment");
_Static_assert(LB__SEG_RAW_MAX <= LB__WAL_ALLOC_CAP, "segment cap");

/* ---- byte codecs --------------------------------------------------------- */

static inline void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* ---- record rules shared by writer and reader ---------------------------- */

/* Size of a str / bin header for a payload of n bytes, in msgpack-c's
 * shortest form. */
static inline size_t str_hdr(size_t n)
{
	return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
}

static inline size_t bin_hdr(size_t n)
{
	return n < 256 ? 2 : n < 65536 ? 3 : 5;
}

static inline size_t uint_size(uint64_t v)
{
	return v < 128           ? 1
	       : v < 256         ? 2
	       : v < 65536       ? 3
	       : v <= UINT32_MAX ? 5
	                         : 9;
}

/* Encoded size of a valid record (op is a positive fixint, 1..3). */
static size_t rec_size(const lb_wal_rec *r)
{
	return 2 + uint_size(r->prev) + str_hdr(r->tlen) + r->tlen +
	       bin_hdr(r->klen) + r->klen +
	       (r->has_before ? bin_hdr(r->blen) + r->blen : 1) +
	       (r->has_after ? bin_hdr(r->alen) + r->alen : 1);
}

/* rec_problem()'s answer when the schema check ran out of memory: the
 * record may well be valid, and the caller answers LB_ENOMEM. */
static const char rec_nomem[] = "out of memory checking a TABLE record's "
                                "schema";

/*
 * Check a record against §4. NULL if valid, rec_nomem if that could not be
 * told, else what is wrong. With the TABLE schema check this can set the
 * thread's error detail, which callers overwrite with their own.
 */
static const char *rec_problem(const lb_wal_rec *r)
{
	if (r->op != LB_OP_PUT && r->op != LB_OP_DELETE && r->op != LB_OP_TABLE)
		return "unknown op";
	if (!lb__table_name_ok(r->table, r->tlen))
		return "table name is not 1..64 bytes of [A-Za-z0-9_.-]";
	if (!r->key || r->klen < 1 || r->klen > LB_KEY_MAX)
		return "key is not 1..511 bytes";
	if (r->has_before && r->blen > LB_VALUE_MAX)
		return "before-image is over 16 MiB";
	if (r->has_before && r->blen && !r->before)
		return "before-image has a length but no bytes";
	if (r->has_after && r->alen > LB_VALUE_MAX)
		return "after-image is over 16 MiB";
	if (r->has_after && r->alen && !r->after)
		return "after-image has a length but no bytes";
	switch (r->op) {
	case LB_OP_PUT:
		if (!r->has_after)
			return "PUT without an after-image";
		break;
	case LB_OP_DELETE:
		if (!r->has_before)
			return "DELETE without a before-image";
		if (r->has_after)
			return "DELETE with an after-image";
		break;
	default: /* LB_OP_TABLE */
		if (r->klen != r->tlen || memcmp(r->key, r->table, r->tlen))
			return "TABLE record whose key is not its table name";
		if (r->prev)
			return "TABLE record with a prev";
		/* after: the table is created; before: it is dropped (the
		 * undo of its creation); both: its schema changed. Never
		 * neither. */
		if (!r->has_before && !r->has_after)
			return "TABLE record without a schema image";
		for (int i = 0; i < 2; i++) {
			/* Rare (one per table created or changed), so
			 * decoding the schema in full, with its allocations,
			 * is fine. */
			lb_wal_schema s;
			int rc;
			if (!(i ? r->has_after : r->has_before))
				continue;
			rc = lb__schema_decode(i ? r->after : r->before,
			                       i ? r->alen : r->blen, &s);
			if (rc == LB_ENOMEM)
				return rec_nomem;
			if (rc != 0)
				return "TABLE record with an invalid schema";
			lb__schema_free(&s);
		}
	}
	return NULL;
}

/* ---- writer -------------------------------------------------------------- */

/* Levels 1..3 deflate with ISA-L's igzip at the same level: on change
 * records twice as fast as libdeflate's level 1 (the default before it),
 * for a stream about a tenth larger. Levels 4..9 use libdeflate, for the
 * smallest log. Both write standard zlib streams (RFC 1950), which any
 * inflater reads; the reader inflates with libdeflate. */
#define LB__ISAL_LEVEL_MAX 3
static const uint32_t isal_buf_size[LB__ISAL_LEVEL_MAX] = {
        ISAL_DEF_LVL1_DEFAULT,
        ISAL_DEF_LVL2_DEFAULT,
        ISAL_DEF_LVL3_DEFAULT,
};

/* igzip's AVX and AVX-512 code returns with the upper halves of the vector
 * registers still in use (it issues no vzeroupper). Until they are
 * cleared, every legacy SSE instruction the thread runs afterwards (the
 * compiler's, glibc's, LMDB's) pays for merging them: that slowed the
 * committing thread by a fifth. Clear them after each call, on processors
 * that have them (vzeroupper is an AVX instruction). */
static void clear_upper_vectors(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	if (__builtin_cpu_supports("avx"))
		__asm__ volatile("vzeroupper" ::
		                         : "xmm0", "xmm1", "xmm2", "xmm3",
		                           "xmm4", "xmm5", "xmm6", "xmm7",
		                           "xmm8", "xmm9", "xmm10", "xmm11",
		                           "xmm12", "xmm13", "xmm14", "xmm15");
#endif
}

/* (Re)start the igzip stream for the next segment. */
static void zs_start(lb_segw *w)
{
	struct isal_zstream *s = w->zs;
	isal_deflate_init(s);
	s->level = (uint32_t)w->level;
	s->level_buf = w->zbuf;
	s->level_buf_size = isal_buf_size[w->level - 1];
	s->gzip_flag = IGZIP_ZLIB;
	s->flush = NO_FLUSH;
	w->fed = 0;
	w->offer = LB__SEGW_CHUNK;
	w->zrefused = 0;
}

/* Deflate in[0..n) into the stream in one call, behind what it wrote to
 * w->out so far; last: end the stream. The stream's bytes depend on how its
 * input is cut into calls, so callers cut it only at fixed offsets: whole
 * chunks, then the rest at the end. w->out first gets room for everything
 * the stream was given, and more, so that igzip never stops for want of
 * room (the loop only guards against it). Should igzip refuse the stream,
 * the segment is stored instead (w->zrefused), as when deflate would not
 * shrink it: 0, or LB_ENOMEM. */
static int zs_run(lb_segw *w, const uint8_t *in, size_t n, int last)
{
	struct isal_zstream *s = w->zs;
	size_t given = (size_t)s->total_in + n;
	size_t room = LB__SEG_HDR_SIZE + given + given / 16 + 4096;
	int rc;
	s->next_in = (uint8_t *)in;
	s->avail_in = (uint32_t)n;
	s->end_of_stream = (uint16_t)last;
	for (;;) {
		size_t used = LB__SEG_HDR_SIZE + s->total_out;
		w->out.len = 0; /* realloc keeps every byte below cap */
		if (room < used + 4096)
			room = used + 4096 + n;
		if (w->out.cap < room &&
		    (rc = lb__buf_reserve(&w->out, room)) != 0)
			return rc;
		s->next_out = w->out.data + used;
		s->avail_out = (uint32_t)(w->out.cap - used);
		int zrc = isal_deflate(s);
		clear_upper_vectors();
		if (zrc != COMP_OK) {
			w->zrefused = 1;
			return 0;
		}
		if (s->avail_in == 0 &&
		    (!last || s->internal_state.state == ZSTATE_END))
			break;
	}
	w->out.len = LB__SEG_HDR_SIZE + s->total_out;
	return 0;
}

int lb__segw_feed(lb_segw *w, size_t upto)
{
	int rc;
	if (!w->zs)
		return 0;
	while (!w->zrefused && upto >= w->fed + LB__SEGW_CHUNK) {
		rc = zs_run(w, w->raw.data + LB__SEG_HDR_SIZE + w->fed,
		            LB__SEGW_CHUNK, 0);
		if (rc != 0)
			return rc;
		w->fed += LB__SEGW_CHUNK;
	}
	return 0;
}

int lb__segw_init(lb_segw *w, int level)
{
	int rc;

	memset(w, 0, sizeof *w);
	lb__buf_init(&w->raw);
	lb__buf_init(&w->out);
	if (level < 0 || level > 9)
		return lb__fail(LB_EINVAL,
		                "compression level %d is not in 0..9", level);
	w->level = level;
	if ((rc = lb__buf_reserve(&w->raw, LB__SEG_HDR_SIZE)) != 0)
		return rc;
	w->raw.len = LB__SEG_HDR_SIZE;
	if (level == 0)
		return 0;
	if (level <= LB__ISAL_LEVEL_MAX) {
		if (!(w->zbuf = malloc(isal_buf_size[level - 1])) ||
		    !(w->zs = malloc(sizeof(struct isal_zstream)))) {
			lb__segw_free(w);
			return lb__fail(LB_ENOMEM,
			                "cannot allocate a compressor");
		}
		zs_start(w);
		return 0;
	}
	if (!(w->zstate = libdeflate_alloc_compressor(level))) {
		lb__segw_free(w);
		return lb__fail(LB_ENOMEM, "cannot allocate a compressor");
	}
	return 0;
}

void lb__segw_free(lb_segw *w)
{
	if (!w)
		return;
	if (w->zstate)
		libdeflate_free_compressor(w->zstate);
	free(w->zbuf);
	free(w->zs);
	w->zbuf = NULL;
	w->zs = NULL;
	lb__buf_free(&w->raw);
	lb__buf_free(&w->out);
	w->zstate = NULL;
	w->count = 0;
}

void lb__segw_reset(lb_segw *w)
{
	w->raw.len = LB__SEG_HDR_SIZE;
	w->count = 0;
	if (w->zs)
		zs_start(w); /* also after a feed that failed */
}

/* The msgpack writers reserve each item's longest header before they
 * write it: past a record's exact size, add() reserves this much more, so
 * that it is the one call that may reallocate. */
#define REC_SLACK 16

int lb__segw_grows(const lb_segw *w, const lb_wal_rec *r)
{
	return rec_size(r) + REC_SLACK > w->raw.cap - w->raw.len;
}

int lb__segw_fits(const lb_segw *w, const lb_wal_rec *r)
{
	return w->count < LB__SEG_COUNT_MAX &&
	       rec_size(r) <= LB__SEG_RAW_MAX - lb__segw_rawlen(w);
}

int lb__segw_add(lb_segw *w, const lb_wal_rec *r)
{
	const char *why;
	size_t n, len0;
	int rc;

	if ((why = rec_problem(r)) == rec_nomem)
		return lb__fail(LB_ENOMEM, "%s", why);
	if (why)
		return lb__fail(LB_EINVAL, "invalid change record: %s", why);
	if (!lb__segw_fits(w, r))
		return lb__fail(LB_ETOOBIG,
		                "record of %zu bytes does not fit in the open "
		                "segment (%zu bytes, %" PRIu32
		                " records): finish it first",
		                rec_size(r), lb__segw_rawlen(w), w->count);
	n = rec_size(r);
	if ((rc = lb__buf_reserve(&w->raw, n + REC_SLACK)) != 0)
		return rc;
	/* With the space reserved the writers below cannot fail; should one,
	 * the open segment is left as it was. */
	len0 = w->raw.len;
	if ((rc = lb__mpw_array(&w->raw, 6)) != 0 ||
	    (rc = lb__mpw_uint(&w->raw, (uint64_t)r->op)) != 0 ||
	    (rc = lb__mpw_str(&w->raw, r->table, r->tlen)) != 0 ||
	    (rc = lb__mpw_bin(&w->raw, r->key, r->klen)) != 0 ||
	    (rc = r->has_before ? lb__mpw_bin(&w->raw, r->before, r->blen)
	                        : lb__mpw_nil(&w->raw)) != 0 ||
	    (rc = r->has_after ? lb__mpw_bin(&w->raw, r->after, r->alen)
	                       : lb__mpw_nil(&w->raw)) != 0 ||
	    (rc = lb__mpw_uint(&w->raw, r->prev)) != 0) {
		w->raw.len = len0;
		return rc;
	}
	w->count++;
	return 0;
}

/* Fill the 24-byte header at h for the payload following it. */
static void seg_put_header(uint8_t *h, unsigned codec, uint32_t raw_len,
                           uint32_t count, uint32_t stored_len)
{
	uint32_t crc;

	h[0] = LB__SEG_MAGIC0;
	h[1] = LB__SEG_MAGIC1;
	h[2] = LB__SEG_MAGIC2;
	h[3] = LB__SEG_MAGIC3;
	put_le16(h + LB__SEG_OFF_VERSION, LB__SEG_VERSION);
	h[LB__SEG_OFF_CODEC] = (uint8_t)codec;
	h[LB__SEG_OFF_FLAGS] = 0;
	put_le32(h + LB__SEG_OFF_RAWLEN, raw_len);
	put_le32(h + LB__SEG_OFF_COUNT, count);
	put_le32(h + LB__SEG_OFF_STOREDLEN, stored_len);
	crc = libdeflate_crc32(0, h, LB__SEG_OFF_CRC);
	crc = libdeflate_crc32(crc, h + LB__SEG_HDR_SIZE, stored_len);
	put_le32(h + LB__SEG_OFF_CRC, (uint32_t)crc);
}

/* Codec 0: the header goes into the room left at the front of raw, and raw
 * becomes out. out's old buffer, which is at least 24 bytes (reserved
 * first, so failure changes nothing), becomes the next raw. */
static int finish_stored(lb_segw *w)
{
	uint32_t rawlen = (uint32_t)lb__segw_rawlen(w);
	lb_buf t;
	int rc;

	w->out.len = 0;
	if ((rc = lb__buf_reserve(&w->out, LB__SEG_HDR_SIZE)) != 0)
		return rc;
	seg_put_header(w->raw.data, LB__CODEC_STORED, rawlen, w->count, rawlen);
	t = w->out;
	w->out = w->raw;
	w->raw = t;
	w->raw.len = LB__SEG_HDR_SIZE;
	return 0;
}

/* Levels 1..3: the chunks not fed yet, then the rest, into the stream;
 * the stream's length, or 0 when storing the records is smaller. */
static int finish_stream(lb_segw *w, size_t rawlen, size_t *stored)
{
	int rc = lb__segw_feed(w, rawlen);
	if (rc == 0 && !w->zrefused)
		rc = zs_run(w, w->raw.data + LB__SEG_HDR_SIZE + w->fed,
		            rawlen - w->fed, 1);
	*stored = rc == 0 && !w->zrefused
	                  ? ((struct isal_zstream *)w->zs)->total_out
	                  : 0;
	zs_start(w);
	return rc;
}

int lb__segw_finish(lb_segw *w, const uint8_t **seg, size_t *seglen)
{
	size_t rawlen = lb__segw_rawlen(w), stored, bound;
	int rc;

	*seg = NULL;
	*seglen = 0;
	if (w->count == 0)
		return lb__fail(LB_EINVAL, "cannot finish a segment with no "
		                           "records");
	if (w->level == 0) {
		if ((rc = finish_stored(w)) != 0)
			return rc;
		goto done;
	}
	if (w->zs) {
		if ((rc = finish_stream(w, rawlen, &stored)) != 0)
			return rc;
	} else {
		/* libdeflate gets its bound, with which one call always
		 * completes */
		bound = libdeflate_zlib_compress_bound(w->zstate, rawlen);
		w->out.len = 0;
		if ((rc = lb__buf_reserve(&w->out, LB__SEG_HDR_SIZE + bound)) !=
		    0)
			return rc;
		stored = libdeflate_zlib_compress(
		        w->zstate, w->raw.data + LB__SEG_HDR_SIZE, rawlen,
		        w->out.data + LB__SEG_HDR_SIZE, bound);
	}
	if (stored == 0 || stored >= rawlen) {
		/* Incompressible: storing is smaller and faster to read. */
		if ((rc = finish_stored(w)) != 0)
			return rc;
		goto done;
	}
	seg_put_header(w->out.data, LB__CODEC_ZLIB, (uint32_t)rawlen, w->count,
	               (uint32_t)stored);
	w->out.len = LB__SEG_HDR_SIZE + stored;
	w->raw.len = LB__SEG_HDR_SIZE;
done:
	w->count = 0;
	*seg = w->out.data;
	*seglen = w->out.len;
	return 0;
}

/* ---- reader -------------------------------------------------------------- */

int lb__seg_header(const void *seg, size_t len, lb_seg_hdr *h)
{
	const uint8_t *p = seg;
	uint32_t crc;

	if (!p || len < LB__SEG_HDR_SIZE)
		return lb__fail(LB_ECORRUPT,
		                "segment of %zu bytes is shorter than its "
		                "%d-byte header",
		                len, LB__SEG_HDR_SIZE);
	if (p[0] != LB__SEG_MAGIC0 || p[1] != LB__SEG_MAGIC1 ||
	    p[2] != LB__SEG_MAGIC2 || p[3] != LB__SEG_MAGIC3)
		return lb__fail(LB_ECORRUPT,
		                "segment magic is %02x %02x %02x %02x, not "
		                "89 4c 42 57",
		                p[0], p[1], p[2], p[3]);
	/* The version comes before every other check: a newer version may
	 * lay out the rest of the header differently. */
	h->version = get_le16(p + LB__SEG_OFF_VERSION);
	if (h->version > LB__SEG_VERSION)
		return lb__fail(LB_EVERSION,
		                "segment format version %u is newer than this "
		                "library's (%u)",
		                h->version, LB__SEG_VERSION);
	if (h->version == 0)
		return lb__fail(LB_ECORRUPT, "segment format version is 0");
	h->codec = p[LB__SEG_OFF_CODEC];
	h->raw_len = get_le32(p + LB__SEG_OFF_RAWLEN);
	h->count = get_le32(p + LB__SEG_OFF_COUNT);
	h->stored_len = get_le32(p + LB__SEG_OFF_STOREDLEN);
	h->crc = get_le32(p + LB__SEG_OFF_CRC);
	if (h->codec != LB__CODEC_STORED && h->codec != LB__CODEC_ZLIB)
		return lb__fail(LB_ECORRUPT, "segment codec %u is unknown",
		                h->codec);
	if (p[LB__SEG_OFF_FLAGS] != 0)
		return lb__fail(
		        LB_ECORRUPT,
		        "segment flags are 0x%02x; reserved bits must be 0",
		        p[LB__SEG_OFF_FLAGS]);
	if ((uint64_t)h->stored_len != (uint64_t)len - LB__SEG_HDR_SIZE)
		return lb__fail(LB_ECORRUPT,
		                "segment stored length is %" PRIu32
		                " but %zu payload bytes follow the header",
		                h->stored_len, len - LB__SEG_HDR_SIZE);
	if (h->raw_len > LB__SEG_RAW_MAX)
		return lb__fail(LB_ECORRUPT,
		                "segment raw length %" PRIu32
		                " is over the %u-byte cap",
		                h->raw_len, LB__SEG_RAW_MAX);
	if (h->codec == LB__CODEC_STORED && h->raw_len != h->stored_len)
		return lb__fail(LB_ECORRUPT,
		                "stored segment has raw length %" PRIu32
		                " but stored length %" PRIu32,
		                h->raw_len, h->stored_len);
	if (h->count < 1 || h->count > LB__SEG_COUNT_MAX ||
	    h->count > h->raw_len / LB__REC_MIN_SIZE)
		return lb__fail(LB_ECORRUPT,
		                "segment record count %" PRIu32
		                " is impossible for %" PRIu32 " raw bytes",
		                h->count, h->raw_len);
	crc = libdeflate_crc32(libdeflate_crc32(0, p, LB__SEG_OFF_CRC),
	                       p + LB__SEG_HDR_SIZE, h->stored_len);
	if (crc != h->crc)
		return lb__fail(LB_ECORRUPT,
		                "segment CRC mismatch: stored %08" PRIx32
		                ", computed %08" PRIx32,
		                h->crc, crc);
	return 0;
}

void lb__segr_init(lb_segr *r)
{
	memset(r, 0, sizeof *r);
	lb__buf_init(&r->raw);
}

void lb__segr_free(lb_segr *r)
{
	if (!r)
		return;
	if (r->zstate)
		libdeflate_free_decompressor(r->zstate);
	lb__buf_free(&r->raw);
	lb__segr_init(r);
}

/* Make r->raw hold at least n bytes (n <= LB__SEG_RAW_MAX, checked by the
 * caller), growing geometrically but never past the cap. */
static int raw_room(lb_buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	b->len = 0;
	if (n <= b->cap)
		return 0;
	cap = b->cap * 2 > LB__SEG_RAW_MAX ? LB__SEG_RAW_MAX : b->cap * 2;
	if (cap < n)
		cap = n;
	if (!(p = realloc(b->data, cap)))
		return lb__fail(LB_ENOMEM,
		                "cannot allocate %zu bytes for a "
		                "segment",
		                cap);
	b->data = p;
	b->cap = cap;
	return 0;
}

/* Inflate the zlib stream [in, in + inlen) into exactly out_len bytes: the
 * stream must end exactly at in + inlen, produce exactly out_len bytes and
 * carry a matching Adler-32. */
static int inflate_exact(lb_segr *r, const uint8_t *in, uint32_t inlen,
                         uint8_t *out, uint32_t out_len)
{
	size_t used_in = 0, made = 0;
	enum libdeflate_result res;

	if (inlen >= 2 && (in[1] & 0x20))
		return lb__fail(LB_ECORRUPT, "segment zlib stream asks for a "
		                             "preset dictionary");
	if (!r->zstate && !(r->zstate = libdeflate_alloc_decompressor()))
		return lb__fail(LB_ENOMEM, "cannot allocate a decompressor");
	res = libdeflate_zlib_decompress_ex(r->zstate, in, inlen, out, out_len,
	                                    &used_in, &made);
	if (res == LIBDEFLATE_INSUFFICIENT_SPACE)
		return lb__fail(LB_ECORRUPT,
		                "segment inflates to more than its raw length "
		                "%" PRIu32,
		                out_len);
	if (res != LIBDEFLATE_SUCCESS)
		return lb__fail(LB_ECORRUPT,
		                "segment zlib stream is damaged or "
		                "truncated");
	if (made != out_len)
		return lb__fail(LB_ECORRUPT,
		                "segment inflates to %zu bytes, not its raw "
		                "length %" PRIu32,
		                made, out_len);
	if (used_in != inlen)
		return lb__fail(LB_ECORRUPT,
		                "%zu bytes follow the segment's zlib stream",
		                (size_t)inlen - used_in);
	return 0;
}

/*
 * Parse one record at m (record number i, for messages) into rec and, if
 * check, apply the §4 rules. Accepts every msgpack width; rejects
 * everything else.
 */
static int parse_rec(lb_mp *m, lb_wal_rec *rec, uint32_t i, int check)
{
	const char *what, *why;
	uint64_t op;
	uint32_t n;
	int rc;

	what = "header";
	if ((rc = lb__mp_array(m, &n)) != 0)
		goto mp_fail;
	if (n != 6)
		return lb__fail(LB_ECORRUPT,
		                "segment record %" PRIu32 ": array of %" PRIu32
		                " items, not 6",
		                i, n);
	what = "op";
	if ((rc = lb__mp_uint(m, &op)) != 0)
		goto mp_fail;
	if (op < LB__OP_PUT || op > LB__OP_TABLE)
		return lb__fail(LB_ECORRUPT,
		                "segment record %" PRIu32 ": unknown op %llu",
		                i, (unsigned long long)op);
	rec->op = (int)op;
	what = "table";
	if ((rc = lb__mp_str(m, &rec->table, &rec->tlen)) != 0)
		goto mp_fail;
	what = "key";
	if ((rc = lb__mp_bin(m, &rec->key, &rec->klen)) != 0)
		goto mp_fail;
	what = "before-image";
	rec->has_before = lb__mp_peek(m) != LB_MP_NIL;
	rec->before = NULL;
	rec->blen = 0;
	if ((rc = rec->has_before ? lb__mp_bin(m, &rec->before, &rec->blen)
	                          : lb__mp_nil(m)) != 0)
		goto mp_fail;
	what = "after-image";
	rec->has_after = lb__mp_peek(m) != LB_MP_NIL;
	rec->after = NULL;
	rec->alen = 0;
	if ((rc = rec->has_after ? lb__mp_bin(m, &rec->after, &rec->alen)
	                         : lb__mp_nil(m)) != 0)
		goto mp_fail;
	what = "prev";
	if ((rc = lb__mp_uint(m, &rec->prev)) != 0)
		goto mp_fail;
	if (check && (why = rec_problem(rec)) != NULL)
		return lb__fail(why == rec_nomem ? LB_ENOMEM : LB_ECORRUPT,
		                "segment record %" PRIu32 ": %s", i, why);
	return 0;
mp_fail:
	return lb__fail(rc, "segment record %" PRIu32 ": %s: %s", i, what,
	                lb_errmsg());
}

int lb__segr_load(lb_segr *r, const void *seg, size_t len)
{
	const uint8_t *p = seg;
	lb_seg_hdr h;
	lb_wal_rec rec;
	lb_mp m;
	uint32_t i;
	int rc;

	r->left = 0;
	r->mp.p = r->mp.end = NULL;
	if ((rc = lb__seg_header(seg, len, &h)) != 0)
		return rc;
	if ((rc = raw_room(&r->raw, h.raw_len)) != 0)
		return rc;
	if (h.codec == LB__CODEC_STORED)
		memcpy(r->raw.data, p + LB__SEG_HDR_SIZE, h.raw_len);
	else if ((rc = inflate_exact(r, p + LB__SEG_HDR_SIZE, h.stored_len,
	                             r->raw.data, h.raw_len)) != 0)
		return rc;
	r->raw.len = h.raw_len;
	m.p = r->raw.data;
	m.end = r->raw.data + h.raw_len;
	for (i = 0; i < h.count; i++)
		if ((rc = parse_rec(&m, &rec, i, 1)) != 0)
			return rc;
	if (m.p != m.end)
		return lb__fail(LB_ECORRUPT,
		                "%zu bytes follow the segment's %" PRIu32
		                " records",
		                (size_t)(m.end - m.p), h.count);
	r->mp.p = r->raw.data;
	r->mp.end = m.end;
	r->left = h.count;
	return 0;
}

int lb__segr_next(lb_segr *r, lb_wal_rec *rec)
{
	int rc;

	if (r->left == 0)
		return 0;
	/* load() checked every record; this only finds their fields. */
	if ((rc = parse_rec(&r->mp, rec, 0, 0)) != 0) {
		r->left = 0;
		return rc;
	}
	r->left--;
	return 1;
}
