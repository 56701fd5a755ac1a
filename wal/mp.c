/* SPDX-License-Identifier: MIT */
/*
 * mp.c: a bounded msgpack reader, strict UTF-8, and msgpack writers.
 *
 * READER. An lb_mp is a cursor over [p, end). Every function first checks
 * that the bytes it is about to read lie before end, so no input, however
 * hostile, makes it read outside the buffer. Lengths are checked against
 * the bytes that remain before anything is done with them, and container
 * counts are checked against a lower bound of what their elements need
 * (one byte per array element, two per map entry), so a header claiming
 * 2^32 elements in a 10-byte buffer fails at once instead of driving a long
 * loop or an allocation. The reader never allocates.
 *
 * Integers: msgpack has one integer type in several formats. Readers accept
 * every format holding a value in the requested range: lb__mp_uint() takes
 * an int 8..64 holding a non-negative value, as the spec's "any width"
 * rule for readers requires (FORMAT.md §2.3).
 *
 * WRITERS. lb__mpw_* drive msgpack-c's packer with a callback that appends
 * to an lb_buf, so every writer in the library emits msgpack-c's shortest
 * forms. A packer is two pointers and lives on the stack: no allocation
 * beyond the buffer's own growth.
 */
#include <inttypes.h>
#include <string.h>

#include <msgpack/pack.h>

#include "wal/wal.h"

/* ---- reading ------------------------------------------------------------- */

/* The big-endian unsigned integer of w (1, 2, 4 or 8) bytes at p. */
static inline uint64_t be(const uint8_t *p, unsigned w)
{
	uint64_t x = 0;
	unsigned i;

	for (i = 0; i < w; i++)
		x = (x << 8) | p[i];
	return x;
}

/* A short name of the msgpack format whose first byte is c, for messages. */
static const char *fmt_name(uint8_t c)
{
	if (c < 0x80 || (c >= 0xcc && c <= 0xcf))
		return "unsigned integer";
	if (c >= 0xe0 || (c >= 0xd0 && c <= 0xd3))
		return "signed integer";
	if (c < 0x90 || c == 0xde || c == 0xdf)
		return "map";
	if (c < 0xa0 || c == 0xdc || c == 0xdd)
		return "array";
	if (c < 0xc0 || (c >= 0xd9 && c <= 0xdb))
		return "str";
	switch (c) {
	case 0xc0:
		return "nil";
	case 0xc1:
		return "the never-used byte 0xc1";
	case 0xc2:
	case 0xc3:
		return "bool";
	case 0xc4:
	case 0xc5:
	case 0xc6:
		return "bin";
	case 0xca:
	case 0xcb:
		return "float";
	default:
		return "ext";
	}
}

static int found(const lb_mp *m, const char *want)
{
	if (m->p >= m->end)
		return lb__fail(
		        LB_ECORRUPT,
		        "msgpack: %s expected, found the end of the data",
		        want);
	return lb__fail(LB_ECORRUPT, "msgpack: %s expected, found %s", want,
	                fmt_name(*m->p));
}

static int truncated(const char *what)
{
	return lb__fail(LB_ECORRUPT, "msgpack: %s is truncated", what);
}

lb_mp_type lb__mp_peek(const lb_mp *m)
{
	uint8_t c;

	if (m->p >= m->end)
		return LB_MP_INVALID;
	c = *m->p;
	if (c < 0x80)
		return LB_MP_UINT;
	if (c < 0x90)
		return LB_MP_MAP;
	if (c < 0xa0)
		return LB_MP_ARRAY;
	if (c < 0xc0)
		return LB_MP_STR;
	if (c >= 0xe0)
		return LB_MP_NINT;
	switch (c) {
	case 0xc0:
		return LB_MP_NIL;
	case 0xc2:
	case 0xc3:
		return LB_MP_BOOL;
	case 0xc4:
	case 0xc5:
	case 0xc6:
		return LB_MP_BIN;
	case 0xc7:
	case 0xc8:
	case 0xc9:
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		return LB_MP_EXT;
	case 0xca:
	case 0xcb:
		return LB_MP_FLOAT;
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf:
		return LB_MP_UINT;
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3:
		/* A signed format may hold a non-negative value: the sign is
		 * the top bit of the first (big-endian) payload byte. */
		if (m->end - m->p < 2)
			return LB_MP_INVALID;
		return (m->p[1] & 0x80) ? LB_MP_NINT : LB_MP_UINT;
	case 0xd9:
	case 0xda:
	case 0xdb:
		return LB_MP_STR;
	case 0xdc:
	case 0xdd:
		return LB_MP_ARRAY;
	case 0xde:
	case 0xdf:
		return LB_MP_MAP;
	default: /* 0xc1 */
		return LB_MP_INVALID;
	}
}

int lb__mp_nil(lb_mp *m)
{
	if (m->p >= m->end || *m->p != 0xc0)
		return found(m, "nil");
	m->p++;
	return 0;
}

int lb__mp_bool(lb_mp *m, int *v)
{
	if (m->p >= m->end || (*m->p != 0xc2 && *m->p != 0xc3))
		return found(m, "bool");
	*v = *m->p == 0xc3;
	m->p++;
	return 0;
}

/* Any integer format. *neg tells whether the value is negative; then *v
 * holds its two's complement bits. */
static inline int mp_integer(lb_mp *m, uint64_t *v, int *neg)
{
	const uint8_t *p = m->p;
	size_t avail = (size_t)(m->end - p);
	unsigned w;
	uint64_t x;
	uint8_t c;

	if (avail == 0)
		return found(m, "integer");
	c = *p;
	if (c < 0x80) {
		*v = c;
		*neg = 0;
		m->p = p + 1;
		return 0;
	}
	if (c >= 0xe0) {
		*v = (uint64_t)c - 256u; /* 111xxxxx is -32..-1 */
		*neg = 1;
		m->p = p + 1;
		return 0;
	}
	if (c < 0xcc || c > 0xd3)
		return found(m, "integer");
	w = 1u << ((c - 0xcc) & 3);
	if (avail - 1 < w)
		return truncated("integer");
	x = be(p + 1, w);
	*neg = 0;
	if (c >= 0xd0) {
		if (w < 8 && (x >> (8 * w - 1)))
			x |= ~(uint64_t)0 << (8 * w);
		*neg = (int)(x >> 63);
	}
	*v = x;
	m->p = p + 1 + w;
	return 0;
}

int lb__mp_uint(lb_mp *m, uint64_t *v)
{
	uint64_t x = 0;
	int neg = 0, rc;

	if ((rc = mp_integer(m, &x, &neg)) != 0)
		return rc;
	if (neg)
		return lb__fail(LB_ECORRUPT,
		                "msgpack: unsigned integer expected, found "
		                "negative %lld",
		                (long long)(-(int64_t)(~x)) - 1);
	*v = x;
	return 0;
}

int lb__mp_int(lb_mp *m, int64_t *v)
{
	uint64_t x = 0;
	int neg = 0, rc;

	if ((rc = mp_integer(m, &x, &neg)) != 0)
		return rc;
	if (!neg && x > (uint64_t)INT64_MAX)
		return lb__fail(
		        LB_ECORRUPT,
		        "msgpack: integer %llu is out of the int64 range",
		        (unsigned long long)x);
	/* Two's complement without implementation-defined conversions. */
	*v = neg ? -(int64_t)(~x) - 1 : (int64_t)x;
	return 0;
}

/*
 * A length-prefixed item whose first byte is c, with a w-byte big-endian
 * length (w = 0: the length is lowbits). Checks the header and that the
 * payload lies before end; leaves m->p after the header.
 */
static inline int mp_sized(lb_mp *m, unsigned w, uint32_t lowbits,
                           uint32_t *len, const char *what)
{
	size_t avail = (size_t)(m->end - m->p) - 1;
	uint32_t n = lowbits;

	if (avail < w)
		return truncated(what);
	if (w)
		n = (uint32_t)be(m->p + 1, w);
	if (n > avail - w)
		return lb__fail(LB_ECORRUPT,
		                "msgpack: %s of %" PRIu32
		                " bytes runs past the end (%zu left)",
		                what, n, avail - w);
	m->p += 1 + w;
	*len = n;
	return 0;
}

int lb__mp_str(lb_mp *m, const char **s, uint32_t *len)
{
	unsigned w;
	uint8_t c;
	int rc;

	if (m->p >= m->end)
		return found(m, "str");
	c = *m->p;
	if (c >= 0xa0 && c <= 0xbf)
		w = 0;
	else if (c >= 0xd9 && c <= 0xdb)
		w = 1u << (c - 0xd9);
	else
		return found(m, "str");
	if ((rc = mp_sized(m, w, c & 0x1fu, len, "str")) != 0)
		return rc;
	*s = (const char *)m->p;
	m->p += *len;
	return 0;
}

int lb__mp_bin(lb_mp *m, const void **p, uint32_t *len)
{
	uint8_t c;
	int rc;

	if (m->p >= m->end)
		return found(m, "bin");
	c = *m->p;
	if (c < 0xc4 || c > 0xc6)
		return found(m, "bin");
	if ((rc = mp_sized(m, 1u << (c - 0xc4), 0, len, "bin")) != 0)
		return rc;
	*p = m->p;
	m->p += *len;
	return 0;
}

/* A container header: fix forms are 0xf0-masked at fixbase, then 16- and
 * 32-bit forms at b16, b16 + 1. per is the minimum bytes one element needs. */
static inline int mp_container(lb_mp *m, uint32_t *n, uint8_t fixbase,
                               uint8_t b16, unsigned per, const char *what)
{
	size_t avail;
	unsigned w;
	uint32_t x;
	uint8_t c;

	if (m->p >= m->end)
		return found(m, what);
	c = *m->p;
	avail = (size_t)(m->end - m->p) - 1;
	if ((c & 0xf0) == fixbase) {
		w = 0;
		x = c & 0x0fu;
	} else if (c == b16 || c == b16 + 1) {
		w = c == b16 ? 2 : 4;
		if (avail < w)
			return truncated(what);
		x = (uint32_t)be(m->p + 1, w);
	} else {
		return found(m, what);
	}
	if ((uint64_t)x * per > avail - w)
		return lb__fail(LB_ECORRUPT,
		                "msgpack: %s claims %" PRIu32
		                " elements but only %zu bytes follow",
		                what, x, avail - w);
	m->p += 1 + w;
	*n = x;
	return 0;
}

int lb__mp_array(lb_mp *m, uint32_t *n)
{
	return mp_container(m, n, 0x90, 0xdc, 1, "array");
}

int lb__mp_map(lb_mp *m, uint32_t *n)
{
	return mp_container(m, n, 0x80, 0xde, 2, "map");
}

/*
 * Iterative, so hostile nesting cannot exhaust the C stack: rem[d] counts
 * the items still to skip at depth d. A container read at depth d opens
 * depth d + 1, which must not exceed LB__MP_DEPTH_MAX (the top-level item
 * is at depth 0, so [[...]] nested 64 times is the deepest accepted).
 * Every count is bounded by the bytes left, so rem never overflows.
 */
int lb__mp_skip(lb_mp *m)
{
	uint64_t rem[LB__MP_DEPTH_MAX + 1];
	const uint8_t *p = m->p, *end = m->end;
	unsigned d = 0;

	rem[0] = 1;
	for (;;) {
		uint64_t kids = 0, len, skip;
		size_t avail;
		int container = 0;
		unsigned w;
		uint8_t c;

		while (rem[d] == 0) {
			if (d == 0) {
				m->p = p;
				return 0;
			}
			d--;
		}
		rem[d]--;
		if (p >= end)
			return lb__fail(LB_ECORRUPT,
			                "msgpack: value is truncated");
		c = *p;
		avail = (size_t)(end - p);
		if (c < 0x80 || c >= 0xe0 || c == 0xc0 || c == 0xc2 ||
		    c == 0xc3) {
			skip = 1;
		} else if (c < 0x90) {
			kids = 2 * (uint64_t)(c & 0x0f);
			skip = 1;
			container = 1;
		} else if (c < 0xa0) {
			kids = c & 0x0f;
			skip = 1;
			container = 1;
		} else if (c < 0xc0) {
			skip = 1 + (size_t)(c & 0x1f);
		} else if (c >= 0xcc && c <= 0xd3) {
			skip = 1 + ((size_t)1 << ((c - 0xcc) & 3));
		} else if (c == 0xca || c == 0xcb) {
			skip = c == 0xca ? 5 : 9;
		} else if (c >= 0xd4 && c <= 0xd8) {
			skip = 2 + ((size_t)1 << (c - 0xd4)); /* fixext */
		} else {
			switch (c) {
			case 0xc4: /* bin */
			case 0xc5:
			case 0xc6:
				w = 1u << (c - 0xc4);
				break;
			case 0xc7: /* ext: length, then a type byte */
			case 0xc8:
			case 0xc9:
				w = 1u << (c - 0xc7);
				break;
			case 0xd9: /* str */
			case 0xda:
			case 0xdb:
				w = 1u << (c - 0xd9);
				break;
			case 0xdc: /* array */
			case 0xdd:
				w = c == 0xdc ? 2 : 4;
				container = 1;
				break;
			case 0xde: /* map */
			case 0xdf:
				w = c == 0xde ? 2 : 4;
				container = 1;
				break;
			default:
				return lb__fail(LB_ECORRUPT,
				                "msgpack: invalid byte 0x%02x",
				                c);
			}
			if (avail - 1 < w)
				return lb__fail(LB_ECORRUPT,
				                "msgpack: value is truncated");
			len = be(p + 1, w);
			skip = 1 + w;
			if (container)
				kids = (c >= 0xde ? 2 : 1) * len;
			else
				skip += len + (c >= 0xc7 && c <= 0xc9);
		}
		if (skip > avail)
			return lb__fail(
			        LB_ECORRUPT,
			        "msgpack: value of %llu bytes runs past the "
			        "end (%zu left)",
			        (unsigned long long)skip, avail);
		p += skip;
		if (!container)
			continue;
		if (kids > (uint64_t)(end - p))
			return lb__fail(
			        LB_ECORRUPT,
			        "msgpack: container claims %llu elements "
			        "but only %zu bytes follow",
			        (unsigned long long)kids, (size_t)(end - p));
		if (d == LB__MP_DEPTH_MAX)
			return lb__fail(
			        LB_ECORRUPT,
			        "msgpack: value is nested deeper than %d "
			        "levels",
			        LB__MP_DEPTH_MAX);
		if (kids)
			rem[++d] = kids;
	}
}

/*
 * Strict UTF-8 (RFC 3629): shortest forms only, no UTF-16 surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF. The second byte's range
 * depends on the lead byte, which rules out overlongs and surrogates
 * without decoding the code point. This is the tree's one UTF-8 check:
 * the CLI's cli_utf8_valid() and the import's byte reports use it too.
 */
size_t lb__utf8_scan(const uint8_t *s, size_t len, size_t *chars)
{
	size_t i = 0, n = 0;

	while (i < len) {
		uint8_t c = s[i], lo = 0x80, hi = 0xbf;
		unsigned more, k;

		/* ASCII runs, 8 bytes at a time. */
		if (c < 0x80) {
			while (len - i >= 8) {
				uint64_t w;
				memcpy(&w, s + i, 8);
				if (w & 0x8080808080808080ull)
					break;
				i += 8;
				n += 8;
			}
			while (i < len && s[i] < 0x80) {
				i++;
				n++;
			}
			continue;
		}
		if (c < 0xc2) {
			goto bad; /* continuation byte, or overlong C0/C1 */
		} else if (c < 0xe0) {
			more = 1;
		} else if (c < 0xf0) {
			more = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c < 0xf5) {
			more = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			goto bad;
		}
		if (len - i - 1 < more)
			goto bad;
		if (s[i + 1] < lo || s[i + 1] > hi)
			goto bad;
		for (k = 2; k <= more; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
		i += 1 + more;
		n++;
	}
bad:
	if (chars)
		*chars = n;
	return i;
}

int lb__utf8_count(const uint8_t *s, size_t len, size_t *chars)
{
	size_t n, i = lb__utf8_scan(s, len, &n);
	if (i < len)
		return lb__fail(LB_ECORRUPT, "invalid UTF-8 at byte %zu", i);
	if (chars)
		*chars = n;
	return 0;
}

/* ---- writing ------------------------------------------------------------- */

/* msgpack-c's write callback: append to the lb_buf. Returns 0 or LB_ENOMEM,
 * which the packer hands back unchanged. */
static int buf_write(void *data, const char *p, size_t n)
{
	lb_buf *b = data;
	int rc;

	if (n == 0)
		return 0;
	if (n > b->cap - b->len && (rc = lb__buf_reserve(b, n)) != 0)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

#define PACKER(pk, b)                                                          \
	msgpack_packer pk;                                                     \
	msgpack_packer_init(&pk, (b), buf_write)

int lb__mpw_array(lb_buf *b, uint32_t n)
{
	PACKER(pk, b);
	return msgpack_pack_array(&pk, n);
}

int lb__mpw_map(lb_buf *b, uint32_t n)
{
	PACKER(pk, b);
	return msgpack_pack_map(&pk, n);
}

int lb__mpw_nil(lb_buf *b)
{
	PACKER(pk, b);
	return msgpack_pack_nil(&pk);
}

int lb__mpw_bool(lb_buf *b, int v)
{
	PACKER(pk, b);
	return v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
}

int lb__mpw_uint(lb_buf *b, uint64_t v)
{
	PACKER(pk, b);
	return msgpack_pack_uint64(&pk, v);
}

int lb__mpw_int(lb_buf *b, int64_t v)
{
	PACKER(pk, b);
	return msgpack_pack_int64(&pk, v);
}

int lb__mpw_double(lb_buf *b, double v)
{
	PACKER(pk, b);
	return msgpack_pack_double(&pk, v);
}

int lb__mpw_str(lb_buf *b, const char *s, size_t len)
{
	int rc;
	PACKER(pk, b);

	if (len > UINT32_MAX)
		return lb__fail(LB_EINVAL,
		                "msgpack: str of %zu bytes is too long", len);
	/* One reservation, so the header and body cost at most one realloc. */
	if ((rc = lb__buf_reserve(b, 5 + len)) != 0)
		return rc;
	if ((rc = msgpack_pack_str(&pk, len)) != 0)
		return rc;
	return msgpack_pack_str_body(&pk, s, len);
}

int lb__mpw_bin(lb_buf *b, const void *p, size_t len)
{
	int rc;
	PACKER(pk, b);

	if (len > UINT32_MAX)
		return lb__fail(LB_EINVAL,
		                "msgpack: bin of %zu bytes is too long", len);
	if ((rc = lb__buf_reserve(b, 5 + len)) != 0)
		return rc;
	if ((rc = msgpack_pack_bin(&pk, len)) != 0)
		return rc;
	return msgpack_pack_bin_body(&pk, p, len);
}
