/* SPDX-License-Identifier: MIT */
/*
 * header.c: batch headers and the hash chain (FORMAT.md §5).
 *
 * A batch header is a msgpack array of 14 items. Twelve are covered by the
 * chain hash; the last two (rolled_back_by, pruned) are state that changes
 * after commit and is deliberately not covered.
 *
 * The hash covers decoded values, not bytes, so the decoder insists on one
 * encoding per value: every item must be in msgpack's shortest form, the
 * form msgpack-c's packer writes (a non-negative integer in an unsigned
 * format). Without that, re-encoding a covered value in another width
 * (uint64 0xcf into int64 0xd3, one flipped byte) would change the stored
 * bytes but not the hash. With it, any change to the bytes of a covered
 * field either breaks decoding or changes the hash.
 *
 * Decoding checks structure and the invariants between fields; it does not
 * check the hash (the engine does, so it can name the batch).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "wal/wal.h"

/* ---- shared invariants --------------------------------------------------- */

/* Length of h->label, or LB_LABEL_MAX + 1 when it has no NUL in its 256
 * bytes (strnlen() without needing POSIX). */
static size_t label_length(const lb_wal_hdr *h)
{
	const char *nul = memchr(h->label, 0, sizeof h->label);

	return nul ? (size_t)(nul - h->label) : sizeof h->label;
}

/*
 * Relations every valid header satisfies (FORMAT.md §5.2). NULL if h obeys
 * them, else what is wrong. label_len is the label's length in bytes.
 */
static const char *hdr_problem(const lb_wal_hdr *h, size_t label_len)
{
	if (h->id < 1)
		return "batch id is 0";
	if (label_len > LB_LABEL_MAX)
		return "label is over 255 bytes";
	if (h->segments < 1 || h->segments > LB__HDR_SEGMENTS_MAX)
		return "segment count is not in 1..2^22";
	if (h->records < h->segments ||
	    h->records > (uint64_t)h->segments * LB__SEG_COUNT_MAX)
		return "record count is impossible for the segment count";
	if (h->raw_bytes < h->records * LB__REC_MIN_SIZE ||
	    h->raw_bytes > (uint64_t)h->segments * LB__SEG_RAW_MAX)
		return "raw byte count is impossible for the record and "
		       "segment counts";
	if (h->stored_bytes < (uint64_t)h->segments * (LB__SEG_HDR_SIZE + 1))
		return "stored byte count is below one header and one payload "
		       "byte per segment";
	if (h->undoes >= h->id)
		return "undoes names a batch that is not older";
	if (h->rolled_back_by != 0 && h->rolled_back_by <= h->id)
		return "rolled_back_by names a batch that is not newer";
	return NULL;
}

/* ---- encoding ------------------------------------------------------------ */

int lb__hdr_encode(const lb_wal_hdr *h, lb_buf *out)
{
	size_t label_len = label_length(h), len0;
	const char *why;
	int rc;

	if ((why = hdr_problem(h, label_len)) != NULL)
		return lb__fail(LB_EINVAL, "batch %" PRIu64 " header: %s",
		                h->id, why);
	if (!h->seg_hashes)
		return lb__fail(LB_EINVAL,
		                "batch %" PRIu64 " header: no segment hashes",
		                h->id);
	if ((rc = lb__buf_reserve(out, 160 + label_len +
	                                       32 * (size_t)h->segments)) != 0)
		return rc;
	len0 = out->len;
	if ((rc = lb__mpw_array(out, LB__HDR_ITEMS)) != 0 ||
	    (rc = lb__mpw_uint(out, LB__HDR_VERSION)) != 0 ||
	    (rc = lb__mpw_uint(out, h->id)) != 0 ||
	    (rc = lb__mpw_int(out, h->time_ns)) != 0 ||
	    (rc = lb__mpw_str(out, h->label, label_len)) != 0 ||
	    (rc = lb__mpw_uint(out, h->records)) != 0 ||
	    (rc = lb__mpw_uint(out, h->segments)) != 0 ||
	    (rc = lb__mpw_uint(out, h->raw_bytes)) != 0 ||
	    (rc = lb__mpw_uint(out, h->stored_bytes)) != 0 ||
	    (rc = lb__mpw_uint(out, h->undoes)) != 0 ||
	    (rc = lb__mpw_bin(out, h->seg_hashes, 32 * (size_t)h->segments)) !=
	            0 ||
	    (rc = lb__mpw_bin(out, h->prev_hash, 32)) != 0 ||
	    (rc = lb__mpw_bin(out, h->hash, 32)) != 0 ||
	    (rc = lb__mpw_uint(out, h->rolled_back_by)) != 0 ||
	    (rc = lb__mpw_bool(out, h->pruned)) != 0) {
		out->len = len0;
		return rc;
	}
	return 0;
}

/* ---- decoding ------------------------------------------------------------ */

/* Bytes msgpack's shortest form of each kind of item takes. */
static size_t uint_size(uint64_t v)
{
	return v < 128           ? 1
	       : v < 256         ? 2
	       : v < 65536       ? 3
	       : v <= UINT32_MAX ? 5
	                         : 9;
}

static size_t nint_size(int64_t v) /* v < 0 */
{
	return v >= -32         ? 1
	       : v >= -128      ? 2
	       : v >= -32768    ? 3
	       : v >= INT32_MIN ? 5
	                        : 9;
}

static size_t str_size(uint32_t n)
{
	return n + (n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5);
}

static size_t bin_size(uint32_t n)
{
	return n + (n < 256 ? 2 : n < 65536 ? 3 : 5);
}

/* A cursor failure inside field `what`: prefix the cursor's detail. */
static int field_fail(int rc, const char *what)
{
	return lb__fail(rc, "batch header: %s: %s", what, lb_errmsg());
}

static int not_shortest(const char *what)
{
	return lb__fail(LB_ECORRUPT,
	                "batch header: %s is not in msgpack's shortest form",
	                what);
}

static int d_uint(lb_mp *m, uint64_t *v, const char *what)
{
	const uint8_t *p0 = m->p;
	int rc;

	if ((rc = lb__mp_uint(m, v)) != 0)
		return field_fail(rc, what);
	/* The size rules out wider forms; the first byte rules out a signed
	 * form of the same size (int16 0xd1 holding 256..32767). */
	if ((size_t)(m->p - p0) != uint_size(*v) ||
	    (*p0 >= 0xd0 && *p0 <= 0xd3))
		return not_shortest(what);
	return 0;
}

static int d_int(lb_mp *m, int64_t *v, const char *what)
{
	const uint8_t *p0 = m->p;
	int rc;

	if ((rc = lb__mp_int(m, v)) != 0)
		return field_fail(rc, what);
	if (*v >= 0 ? (size_t)(m->p - p0) != uint_size((uint64_t)*v) ||
	                      (*p0 >= 0xd0 && *p0 <= 0xd3)
	            : (size_t)(m->p - p0) != nint_size(*v))
		return not_shortest(what);
	return 0;
}

static int d_bin(lb_mp *m, const void **p, uint32_t *len, const char *what)
{
	const uint8_t *p0 = m->p;
	int rc;

	if ((rc = lb__mp_bin(m, p, len)) != 0)
		return field_fail(rc, what);
	if ((size_t)(m->p - p0) != bin_size(*len))
		return not_shortest(what);
	return 0;
}

static int d_hash(lb_mp *m, uint8_t out[32], const char *what)
{
	const void *p;
	uint32_t n;
	int rc;

	if ((rc = d_bin(m, &p, &n, what)) != 0)
		return rc;
	if (n != 32)
		return lb__fail(LB_ECORRUPT,
		                "batch header: %s is %" PRIu32 " bytes, not 32",
		                what, n);
	memcpy(out, p, 32);
	return 0;
}

static int hdr_decode(lb_mp *m, lb_wal_hdr *h)
{
	const uint8_t *p0 = m->p;
	const char *s, *why;
	const void *hashes;
	uint64_t ver, segments;
	uint32_t n, len, label_len;
	int rc;

	if ((rc = lb__mp_array(m, &n)) != 0)
		return field_fail(rc, "top level");
	/* The version decides the layout, so it is read before the arity is
	 * checked: a newer header gets LB_EVERSION whatever its size. */
	if ((rc = lb__mp_uint(m, &ver)) != 0)
		return field_fail(rc, "version");
	if (ver > LB__HDR_VERSION)
		return lb__fail(LB_EVERSION,
		                "batch header version %llu is newer than this "
		                "library's (%u)",
		                (unsigned long long)ver, LB__HDR_VERSION);
	if (ver == 0)
		return lb__fail(LB_ECORRUPT, "batch header version is 0");
	if (n != LB__HDR_ITEMS || p0[0] != 0x90 + LB__HDR_ITEMS || p0[1] != 1)
		return lb__fail(LB_ECORRUPT,
		                "batch header: not a fixarray of %u items "
		                "starting with version 1",
		                LB__HDR_ITEMS);
	if ((rc = d_uint(m, &h->id, "id")) != 0 ||
	    (rc = d_int(m, &h->time_ns, "time_ns")) != 0)
		return rc;
	{
		const uint8_t *q = m->p;
		if ((rc = lb__mp_str(m, &s, &len)) != 0)
			return field_fail(rc, "label");
		if ((size_t)(m->p - q) != str_size(len))
			return not_shortest("label");
	}
	if (len > LB_LABEL_MAX)
		return lb__fail(LB_ECORRUPT,
		                "batch header: label is %" PRIu32
		                " bytes, over 255",
		                len);
	if (memchr(s, 0, len))
		return lb__fail(LB_ECORRUPT,
		                "batch header: label holds a NUL byte");
	memcpy(h->label, s, len);
	h->label[len] = '\0';
	label_len = len;
	if ((rc = d_uint(m, &h->records, "records")) != 0 ||
	    (rc = d_uint(m, &segments, "segments")) != 0)
		return rc;
	if (segments < 1 || segments > LB__HDR_SEGMENTS_MAX)
		return lb__fail(LB_ECORRUPT,
		                "batch header: segment count %llu is not in "
		                "1..%u",
		                (unsigned long long)segments,
		                LB__HDR_SEGMENTS_MAX);
	h->segments = (uint32_t)segments;
	if ((rc = d_uint(m, &h->raw_bytes, "raw_bytes")) != 0 ||
	    (rc = d_uint(m, &h->stored_bytes, "stored_bytes")) != 0 ||
	    (rc = d_uint(m, &h->undoes, "undoes")) != 0 ||
	    (rc = d_bin(m, &hashes, &len, "seg_hashes")) != 0)
		return rc;
	if (len != 32 * (uint64_t)h->segments)
		return lb__fail(LB_ECORRUPT,
		                "batch header: seg_hashes is %" PRIu32
		                " bytes, not 32 x %" PRIu32,
		                len, h->segments);
	if ((rc = d_hash(m, h->prev_hash, "prev_hash")) != 0 ||
	    (rc = d_hash(m, h->hash, "hash")) != 0 ||
	    (rc = d_uint(m, &h->rolled_back_by, "rolled_back_by")) != 0)
		return rc;
	if ((rc = lb__mp_bool(m, &h->pruned)) != 0)
		return field_fail(rc, "pruned");
	if (m->p != m->end)
		return lb__fail(LB_ECORRUPT,
		                "batch header: %zu bytes follow its last item",
		                (size_t)(m->end - m->p));
	if ((why = hdr_problem(h, label_len)) != NULL)
		return lb__fail(LB_ECORRUPT, "batch header: %s", why);
	/* The length was checked against the input above: the bytes exist,
	 * so this allocation is bounded by the input's size. */
	if (!(h->seg_hashes = malloc(32 * (size_t)h->segments)))
		return lb__fail(LB_ENOMEM,
		                "cannot allocate %" PRIu32 " segment hashes",
		                h->segments);
	memcpy(h->seg_hashes, hashes, 32 * (size_t)h->segments);
	return 0;
}

int lb__hdr_decode(const void *p, size_t len, lb_wal_hdr *h)
{
	lb_mp m;
	int rc;

	memset(h, 0, sizeof *h);
	if (!p)
		return lb__fail(LB_ECORRUPT, "batch header: no bytes");
	m.p = p;
	m.end = m.p + len;
	if ((rc = hdr_decode(&m, h)) != 0) {
		free(h->seg_hashes);
		memset(h, 0, sizeof *h);
	}
	return rc;
}

void lb__hdr_free(lb_wal_hdr *h)
{
	if (!h)
		return;
	free(h->seg_hashes);
	h->seg_hashes = NULL;
}

/* ---- hashing ------------------------------------------------------------- */

static uint8_t *put_be(uint8_t *p, uint64_t v, unsigned w)
{
	unsigned i;

	for (i = 0; i < w; i++)
		p[i] = (uint8_t)(v >> (8 * (w - 1 - i)));
	return p + w;
}

int lb__hdr_hash(const lb_wal_hdr *h, uint8_t out[32])
{
	/* Everything but seg_hashes, at its largest (label 255 bytes). */
	uint8_t buf[32 + 4 + 8 + 8 + 2 + LB_LABEL_MAX + 8 + 4 + 8 + 8 + 8], *p;
	size_t label_len = label_length(h);
	EVP_MD_CTX *ctx;
	unsigned int n = 0;
	int ok;

	if (label_len > LB_LABEL_MAX)
		return lb__fail(LB_EINVAL,
		                "batch %" PRIu64 ": label is over 255 "
		                "bytes",
		                h->id);
	if (h->segments && !h->seg_hashes)
		return lb__fail(LB_EINVAL,
		                "batch %" PRIu64 ": no segment hashes", h->id);
	memcpy(buf, h->prev_hash, 32);
	memcpy(buf + 32, LB__HASH_TAG, 4);
	p = put_be(buf + 36, h->id, 8);
	/* Conversion to unsigned is modulo 2^64: two's complement bits. */
	p = put_be(p, (uint64_t)h->time_ns, 8);
	p = put_be(p, label_len, 2);
	memcpy(p, h->label, label_len);
	p += label_len;
	p = put_be(p, h->records, 8);
	p = put_be(p, h->segments, 4);
	p = put_be(p, h->raw_bytes, 8);
	p = put_be(p, h->stored_bytes, 8);
	p = put_be(p, h->undoes, 8);
	if (!(ctx = EVP_MD_CTX_new()))
		return lb__fail(LB_ENOMEM, "cannot allocate a SHA-256 context");
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
	     EVP_DigestUpdate(ctx, buf, (size_t)(p - buf)) &&
	     (!h->segments ||
	      EVP_DigestUpdate(ctx, h->seg_hashes, 32 * (size_t)h->segments)) &&
	     EVP_DigestFinal_ex(ctx, out, &n) && n == 32;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return lb__fail(LB_ENOMEM, "SHA-256 failed in OpenSSL");
	return 0;
}

int lb__sha256(const void *p, size_t len, uint8_t out[32])
{
	unsigned int n = 0;

	if (!EVP_Digest(len ? p : "", len, out, &n, EVP_sha256(), NULL) ||
	    n != 32)
		return lb__fail(LB_ENOMEM, "SHA-256 failed in OpenSSL");
	return 0;
}
