/* SPDX-License-Identifier: MIT */
/*
 * wal.h: the WAL codec, private to the library. Pure: no LMDB, no files.
 *
 * It turns change records into segments (msgpack records, deflated, behind a
 * fixed header with a CRC-32) and back, encodes batch headers and computes
 * the hash chain, and encodes table schemas. docs/FORMAT.md is the normative
 * description of every byte produced here; wal/format.h mirrors it.
 *
 * Every decoder here takes untrusted bytes: it never reads outside the
 * buffer it is given, never allocates more than LB__WAL_ALLOC_CAP whatever
 * the input claims, and answers LB_ECORRUPT (with lb_errmsg() detail) for
 * anything malformed, truncated, oversized or inconsistent.
 *
 * All functions return 0 or a negative LB_E* code, set through lb__fail().
 */
#ifndef LB_WAL_H
#define LB_WAL_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "logbook.h"
#include "wal/format.h"

/* An internal function whose result must be used (as libgit2 marks its
 * own): ignoring a failure there would act on a value never computed. */
#if defined(__GNUC__)
#define LB__WUR __attribute__((warn_unused_result))
#else
#define LB__WUR
#endif

/* ---- errors (wal/error.c) ------------------------------------------------ */

/* Set this thread's lb_errmsg() detail and return rc. printf-style; the
 * arguments may include lb_errmsg() itself, to add context:
 *     return lb__fail(rc, "batch %llu: %s", id, lb_errmsg()); */
int lb__fail(int rc, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;
/* Clear this thread's detail (successful calls need not). */
void lb__clear_error(void);

/* ---- growable byte buffer (wal/buf.c) ------------------------------------ */

typedef struct lb_buf {
	uint8_t *data;
	size_t len, cap;
} lb_buf;

void lb__buf_init(lb_buf *b);
void lb__buf_free(lb_buf *b);
LB__WUR int lb__buf_reserve(lb_buf *b, size_t extra); /* LB_ENOMEM */
LB__WUR int lb__buf_append(lb_buf *b, const void *p, size_t n);
/* Make room for n elements of elem bytes in the array *pp (a pointer to
 * the array pointer) of capacity *cap, doubling from `first`; overflow is
 * LB_ENOMEM, as is realloc's failure (*pp and *cap then unchanged). */
LB__WUR int lb__grow(void *pp, size_t *cap, size_t n, size_t elem,
                     size_t first);

/* ---- msgpack reading cursor (wal/mp.c) ----------------------------------- *
 * A bounded, allocation-free reader of the msgpack types logbook uses.
 * Each call consumes one item at p; on LB_ECORRUPT p is unspecified. */

typedef struct lb_mp {
	const uint8_t *p, *end;
} lb_mp;

typedef enum {
	LB_MP_NIL,
	LB_MP_BOOL,
	LB_MP_UINT,  /* non-negative integer */
	LB_MP_NINT,  /* negative integer */
	LB_MP_FLOAT, /* float 32 or 64 */
	LB_MP_STR,
	LB_MP_BIN,
	LB_MP_ARRAY,
	LB_MP_MAP,
	LB_MP_EXT,
	LB_MP_INVALID /* 0xc1, the end of the buffer, or an int 8..64 too
	                 short to show its sign */
} lb_mp_type;

lb_mp_type lb__mp_peek(const lb_mp *m);
LB__WUR int lb__mp_nil(lb_mp *m);
LB__WUR int lb__mp_bool(lb_mp *m, int *v);
/* Integers in any msgpack integer format (uint and int 8..64, fixints):
 * lb__mp_uint takes any value >= 0, lb__mp_int any value that fits int64. */
LB__WUR int lb__mp_uint(lb_mp *m, uint64_t *v);
LB__WUR int lb__mp_int(lb_mp *m, int64_t *v);
LB__WUR int lb__mp_str(lb_mp *m, const char **s, uint32_t *len);
LB__WUR int lb__mp_bin(lb_mp *m, const void **p, uint32_t *len);
/* A float 32 (widened) or float 64. */
LB__WUR int lb__mp_float(lb_mp *m, double *v);
/* An ext (fixext 1..16 or ext 8..32): its type and payload. */
LB__WUR int lb__mp_ext(lb_mp *m, int8_t *type, const void **p, uint32_t *len);
/* Headers only. The count is checked against the bytes left (1 per array
 * element, 2 per map entry), so a caller may loop over it safely. */
LB__WUR int lb__mp_array(lb_mp *m, uint32_t *n);
LB__WUR int lb__mp_map(lb_mp *m, uint32_t *n);
/* Skip one whole item (nested to at most LB__MP_DEPTH_MAX levels). */
LB__WUR int lb__mp_skip(lb_mp *m);
/* Is [s, s+len) valid UTF-8 (strict: shortest forms, no surrogates, at
 * most U+10FFFF)? Returns 0 if so, storing the code point count when
 * chars != NULL; else LB_ECORRUPT, the detail naming the bad byte offset.
 * NOTE: 0 means valid (the usual return convention), not "false". */
LB__WUR int lb__utf8_count(const uint8_t *s, size_t len, size_t *chars);
/* The same check without failing: the length of the longest valid UTF-8
 * prefix of s (len when all of it is valid), and in *chars (may be NULL)
 * its characters. Sets no error detail. */
size_t lb__utf8_scan(const uint8_t *s, size_t len, size_t *chars);

/* ---- msgpack writing (wal/mp.c), appending to an lb_buf ------------------ *
 * Thin wrappers over msgpack-c's packer so the engine and tools share one
 * encoder. */
LB__WUR int lb__mpw_array(lb_buf *b, uint32_t n);
LB__WUR int lb__mpw_map(lb_buf *b, uint32_t n);
LB__WUR int lb__mpw_nil(lb_buf *b);
LB__WUR int lb__mpw_bool(lb_buf *b, int v);
LB__WUR int lb__mpw_uint(lb_buf *b, uint64_t v);
LB__WUR int lb__mpw_int(lb_buf *b, int64_t v);
LB__WUR int lb__mpw_double(lb_buf *b, double v);
LB__WUR int lb__mpw_str(lb_buf *b, const char *s, size_t len);
LB__WUR int lb__mpw_bin(lb_buf *b, const void *p, size_t len);

/* ---- change records and segments (wal/segment.c) ------------------------- */

/* One change record. Decoded records point into the reader's buffer;
 * table is NOT NUL-terminated (use tlen). A nil image has has_* 0, pointer
 * NULL and length 0; an empty image has has_* 1 and length 0. */
typedef struct lb_wal_rec {
	int op; /* LB_OP_PUT, LB_OP_DELETE, LB_OP_TABLE */
	const char *table;
	uint32_t tlen;
	const void *key;
	uint32_t klen;
	const void *before;
	uint32_t blen;
	int has_before;
	const void *after;
	uint32_t alen;
	int has_after;
	/* PUT and DELETE: the batch that changed the key before this record
	 * (its own batch for a key the batch changed already), 0 if none;
	 * TABLE: 0 (FORMAT.md §4) */
	uint64_t prev;
} lb_wal_rec;

/*
 * Segment writer: records are appended to a raw msgpack buffer; finish()
 * compresses it behind the segment header (at levels 1..3 as a stream that
 * feed() may have started on whole chunks). One writer is reused for every
 * segment of every batch, so its buffers are allocated once.
 */
typedef struct lb_segw {
	lb_buf raw;     /* 24 bytes of room for the header, then the records
	                   of the open segment: use lb__segw_rawlen() */
	lb_buf out;     /* the last finished segment */
	uint32_t count; /* records in raw */
	int level;      /* zlib level 0..9 */
	void *zstate;   /* levels 4..9: libdeflate's compressor, reused */
	uint8_t *zbuf;  /* levels 1..3: igzip's level buffer, reused */
	void *zs;       /* levels 1..3: the open segment's igzip stream */
	size_t fed;     /* levels 1..3: raw bytes of the open records
	                   deflated so far, a multiple of LB__SEGW_CHUNK */
	size_t offer;   /* levels 1..3: the raw length at which the owner
	                   next offers chunks to a thread feeding them */
	int zrefused;   /* levels 1..3: igzip refused the stream: the open
	                   records will be stored (codec 0) */
} lb_segw;

/* Levels 1..3 deflate the open records as one stream, LB__SEGW_CHUNK raw
 * bytes at a time at fixed offsets, then the rest when the segment is
 * finished: a segment's bytes depend only on its records, whichever thread
 * deflated which chunks, and when. */
#define LB__SEGW_CHUNK (16u << 10)

LB__WUR int lb__segw_init(lb_segw *w, int level);
void lb__segw_free(lb_segw *w);
/* Drop the open records (the batch that wrote them was abandoned). */
void lb__segw_reset(lb_segw *w);
/* Append a record (validated: op known, sizes within limits, images
 * consistent with op, a TABLE record's schema decodable: after = schema
 * for a create, or before = schema and no after for a drop). Returns
 * LB_EINVAL for an invalid record, LB_ETOOBIG when it does not fit in the
 * open segment (see lb__segw_fits()), LB_ENOMEM. On failure the open
 * segment is unchanged. */
LB__WUR int lb__segw_add(lb_segw *w, const lb_wal_rec *r);
/* Would r fit in the open segment (raw bytes <= LB__SEG_RAW_MAX, records
 * <= LB__SEG_COUNT_MAX)? Any single valid record fits in an empty segment,
 * so: if (!lb__segw_fits(w, r)) finish the segment, then add. */
LB__WUR int lb__segw_fits(const lb_segw *w, const lb_wal_rec *r);
/* Raw (uncompressed) bytes of the open segment's records. */
static inline size_t lb__segw_rawlen(const lb_segw *w)
{
	return w->raw.len - LB__SEG_HDR_SIZE;
}
/* Build the segment from the open records: *seg points into w->out, valid
 * until the next finish, feed or free (not disturbed by add). Resets the
 * open records. LB_EINVAL if there are none. Incompressible records are
 * stored with codec 0 even at a level > 0. */
LB__WUR int lb__segw_finish(lb_segw *w, const uint8_t **seg, size_t *seglen);
/* Raw bytes of whole chunks ready to deflate ahead of finish (0 unless the
 * level is 1..3). */
static inline size_t lb__segw_unfed(const lb_segw *w, size_t rawlen)
{
	return w->zs ? (rawlen - w->fed) / LB__SEGW_CHUNK * LB__SEGW_CHUNK : 0;
}
/* Deflate the whole chunks of the open records below raw offset upto
 * (a value of lb__segw_rawlen()) not deflated yet. Another thread may feed
 * the writer while its owner adds records, provided the owner does not
 * reallocate the records' buffer meanwhile (lb__segw_grows()) and that
 * only one thread at a time feeds or finishes it. 0 or LB_ENOMEM. */
LB__WUR int lb__segw_feed(lb_segw *w, size_t upto);
/* Would lb__segw_add(w, r) reallocate the buffer of the open records? */
int lb__segw_grows(const lb_segw *w, const lb_wal_rec *r);

/* Parsed, verified segment header. */
typedef struct lb_seg_hdr {
	uint16_t version;
	uint8_t codec;
	uint32_t raw_len, count, stored_len, crc;
} lb_seg_hdr;

/* Parse and check the fixed header only (magic, version, codec, reserved
 * bits, lengths against len and the caps, plausible count, CRC over the
 * whole segment). LB_ECORRUPT, or LB_EVERSION for a version > 1. */
LB__WUR int lb__seg_header(const void *seg, size_t len, lb_seg_hdr *h);

/* Segment reader: verifies and inflates one segment into its own buffer
 * (reused across segments), then yields its records. */
typedef struct lb_segr {
	lb_buf raw;
	lb_mp mp;
	uint32_t left;
	void *zstate;
} lb_segr;

void lb__segr_init(lb_segr *r);
void lb__segr_free(lb_segr *r);
/* Verify and decode a whole segment, checking that it holds exactly the
 * declared count of well-formed records and nothing after them. The
 * records are copied into r (seg need not outlive this call). On failure
 * r yields nothing. LB_ECORRUPT, LB_EVERSION, LB_ENOMEM. */
LB__WUR int lb__segr_load(lb_segr *r, const void *seg, size_t len);
/* 1 and *rec filled; 0 at the end; LB_ECORRUPT. Records point into r and
 * stay valid until the next load or free. */
LB__WUR int lb__segr_next(lb_segr *r, lb_wal_rec *rec);

/* ---- batch headers and the hash chain (wal/header.c) --------------------- */

typedef struct lb_wal_hdr {
	uint64_t id;
	int64_t time_ns;
	char label[LB_LABEL_MAX + 1];
	uint64_t records;
	uint32_t segments;
	uint64_t raw_bytes, stored_bytes;
	uint64_t undoes;
	uint8_t *seg_hashes; /* 32 * segments bytes, malloc'd by decode */
	uint8_t prev_hash[32];
	uint8_t hash[32];
	/* state: not covered by the hash, changed after commit */
	uint64_t rolled_back_by;
	int pruned;
} lb_wal_hdr;

/* Append h's encoding to out (it does not reset out). h->label is
 * NUL-terminated; h->hash is written as given (compute it first with
 * lb__hdr_hash()). LB_EINVAL if h breaks a FORMAT.md §5.2 invariant (id 0,
 * segments not in 1..LB__HDR_SEGMENTS_MAX, records < segments, raw_bytes <
 * 10 * records, undoes >= id, rolled_back_by in 1..id, ...); on failure
 * out is unchanged. */
LB__WUR int lb__hdr_encode(const lb_wal_hdr *h, lb_buf *out);
/* Decode; h->seg_hashes is malloc'd (free with lb__hdr_free). Checks
 * structure, shortest msgpack forms and the §5.2 invariants, not the hash:
 * compare lb__hdr_hash() with h->hash. LB_ECORRUPT, LB_EVERSION (header
 * version > 1), LB_ENOMEM. On failure *h is zeroed (nothing to free). */
LB__WUR int lb__hdr_decode(const void *p, size_t len, lb_wal_hdr *h);
void lb__hdr_free(lb_wal_hdr *h);
/* Compute the chain hash (FORMAT.md §5.3) of h's covered fields into out.
 * Ignores h->hash, rolled_back_by and pruned. */
LB__WUR int lb__hdr_hash(const lb_wal_hdr *h, uint8_t out[32]);
/* SHA-256 of a segment value as stored. */
LB__WUR int lb__sha256(const void *p, size_t len, uint8_t out[32]);

/* ---- schemas (wal/schema.c) ---------------------------------------------- */

/* Is [s, s+len) a valid table name: 1..LB_TABLE_NAME_MAX bytes of
 * [A-Za-z0-9_.-]? 1 if so, 0 if not (s may be NULL). Sets no error.
 * Change records and schemas both name tables. */
LB__WUR int lb__table_name_ok(const char *s, size_t len);

/* A decoded schema, owning its strings. */
typedef struct lb_sfield {
	char *name;
	uint32_t nlen;
	lb_type type;
	unsigned flags;
	uint32_t max_len;
	char *ref; /* NULL or table name */
	/* rules (FORMAT.md §6); zero: none */
	uint32_t nenum;
	char **enum_values;   /* nenum NUL-terminated texts, as lb_field has */
	uint32_t *enum_lens;  /* their lengths */
	int64_t *enum_ints;   /* LB_INT: the values */
	uint32_t *enum_order; /* indexes in ascending order (by length, then
	                         bytes; or by value), for a binary search */
	char *pattern;        /* as given */
	regex_t *re;          /* ^(pattern)$, compiled at decode */
	int format;           /* LB_FMT_* */
	double min, max;      /* 0 when not set */
	unsigned has_min_max; /* LB_HAS_MIN | LB_HAS_MAX */
} lb_sfield;

typedef struct lb_wal_schema {
	int has_schema; /* 0: opaque table */
	int closed;
	uint32_t nfields;
	lb_sfield *fields;
	char *key_field; /* NULL, or a field's name */
	int key_fi;      /* its index in fields, or -1 */
	/* The public view (lb_tables()): view.fields points to pub, whose
	 * strings are the ones above. */
	lb_field *pub;
	lb_schema view;
} lb_wal_schema;

/* Check a public schema (types known, names 1..255 bytes of UTF-8 and
 * unique, flags known, refs well-formed table names, counts in range, each
 * rule on a type it applies to and well-formed, a pattern that compiles)
 * and append its encoding to out; s == NULL encodes an opaque table.
 * LB_EINVAL with a message naming the field ("field 2 'date': unknown type
 * 42", 0-based); LB_ENOMEM; out unchanged on failure. Whether refs name
 * existing tables is the engine's check. */
LB__WUR int lb__schema_encode(const lb_schema *s, lb_buf *out);
/* Decode strictly, compiling patterns: LB_ECORRUPT, LB_EVERSION (schema
 * version other than 2), LB_ENOMEM. On failure *out is zeroed (nothing to
 * free). Field names and refs are NUL-terminated copies. */
LB__WUR int lb__schema_decode(const void *p, size_t len, lb_wal_schema *out);
void lb__schema_free(lb_wal_schema *s);

/* Does the str [s, s + len) have the format fmt (LB_FMT_DATE or
 * LB_FMT_DATETIME, RFC 3339)? NULL if so, else a short reason ("month 13
 * is not 01..12"). */
const char *lb__format_problem(int fmt, const char *s, size_t len);
/* Does the str [s, s + len) match f's pattern as a whole? 1, 0, or
 * LB_ENOMEM (regexec ran out of memory). */
LB__WUR int lb__pattern_match(const lb_sfield *f, const char *s, size_t len);

#endif
