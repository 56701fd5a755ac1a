/* SPDX-License-Identifier: MIT */
/*
 * fastjson.c: the import fast path, one JSON object -> msgpack in one pass,
 * without building a tree and without allocating.
 *
 * Contract: for any input it accepts (returns 0), the bytes it writes are
 * exactly those of cli_json_parse() followed by cli_pack_json() (jansson,
 * then msgpack-c), and the member spans it reports are the encodings of
 * those members. Anything it is not sure to reproduce - an error of any
 * kind, a duplicate member, a {"base64": ...} object, a lone surrogate,
 * nesting past 64 levels, an integer that overflows - makes it return -1,
 * and the caller takes the jansson path, which then gives the same value or
 * the error message. tests/tools/fastjson.c checks the equivalence on fixed
 * and random inputs.
 *
 * msgpack-c packs with the smallest header that fits, and a map's or an
 * array's header holds its count, unknown until the closing bracket: the
 * members are written first and the header is inserted before them
 * afterwards (one memmove per container).
 */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEPTH_MAX 64
#define MEMBERS_MAX CLI_FJ_MEMBERS_MAX

typedef struct fj {
	const unsigned char *p, *end;
	msgpack_sbuffer *out;
	msgpack_packer pk;
	sbuf *scratch;
} fj;

static void ws(fj *f)
{
	while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' ||
	                         *f->p == '\n' || *f->p == '\r'))
		f->p++;
}

/* Insert a container header for n items at offset at. */
static int insert_header(fj *f, size_t at, size_t n, int map)
{
	unsigned char h[5];
	size_t hl;
	if (n < 16) {
		h[0] = (unsigned char)((map ? 0x80 : 0x90) | n);
		hl = 1;
	} else if (n < 65536) {
		h[0] = map ? 0xde : 0xdc;
		h[1] = (unsigned char)(n >> 8);
		h[2] = (unsigned char)n;
		hl = 3;
	} else {
		return -1; /* not with MEMBERS_MAX; arrays this long: rare */
	}
	/* Grow by hl bytes, then shift the items up. */
	if (msgpack_sbuffer_write(f->out, (const char *)h, hl) != 0)
		return -1;
	memmove(f->out->data + at + hl, f->out->data + at,
	        f->out->size - hl - at);
	memcpy(f->out->data + at, h, hl);
	return 0;
}

static int hex4(const unsigned char *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int h = cli_hexval(p[i]);
		if (h < 0)
			return -1;
		*v = *v << 4 | (uint32_t)h;
	}
	return 0;
}

static void put_utf8(sbuf *b, uint32_t cp)
{
	if (cp < 0x80) {
		sb_putc(b, (char)cp);
	} else if (cp < 0x800) {
		sb_putc(b, (char)(0xC0 | cp >> 6));
		sb_putc(b, (char)(0x80 | (cp & 0x3F)));
	} else if (cp < 0x10000) {
		sb_putc(b, (char)(0xE0 | cp >> 12));
		sb_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
		sb_putc(b, (char)(0x80 | (cp & 0x3F)));
	} else {
		sb_putc(b, (char)(0xF0 | cp >> 18));
		sb_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
		sb_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
		sb_putc(b, (char)(0x80 | (cp & 0x3F)));
	}
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Bytes a string scan stops at (0: an ordinary ASCII character). */
enum { C_QUOTE = 1, C_ESC, C_CTRL, C_HIGH };
#define Q C_QUOTE
#define E C_ESC
#define X C_CTRL
#define H C_HIGH
/* clang-format off */
static const unsigned char byte_class[256] = {
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	X, X, X, X, X, X, X, X, X, X, X, X, X, X, X, X,
	0, 0, Q, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, E, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H,
	H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H,
	H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H,
	H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H,
	H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H,
	H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H,
	H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H,
	H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H,
};
/* clang-format on */
#undef Q
#undef E
#undef X
#undef H

/* Room for n more bytes in the output (msgpack_sbuffer's own fields). */
static int reserve(fj *f, size_t n)
{
	msgpack_sbuffer *o = f->out;
	size_t a;
	char *p;
	if (o->alloc - o->size >= n)
		return 0;
	a = o->alloc ? o->alloc : 4096;
	while (a - o->size < n)
		a *= 2;
	p = realloc(o->data, a);
	if (!p)
		return -1;
	o->data = p;
	o->alloc = a;
	return 0;
}

/* A str with the header msgpack_pack_str() would choose. */
static int put_str(fj *f, const char *s, size_t n)
{
	unsigned char *d;
	if (n > UINT32_MAX || reserve(f, n + 5) < 0)
		return -1;
	d = (unsigned char *)f->out->data + f->out->size;
	if (n < 32) {
		*d++ = (unsigned char)(0xa0 | n);
	} else if (n < 256) {
		*d++ = 0xd9;
		*d++ = (unsigned char)n;
	} else if (n < 65536) {
		*d++ = 0xda;
		*d++ = (unsigned char)(n >> 8);
		*d++ = (unsigned char)n;
	} else {
		*d++ = 0xdb;
		*d++ = (unsigned char)(n >> 24);
		*d++ = (unsigned char)(n >> 16);
		*d++ = (unsigned char)(n >> 8);
		*d++ = (unsigned char)n;
	}
	memcpy(d, s, n);
	f->out->size = (size_t)((char *)d + n - f->out->data);
	return 0;
}

/*
 * Decode the escaped string body [start, q) into b (emptied first); key:
 * refuse \u0000. -1 if an escape or the UTF-8 is not valid.
 */
static int unescape(sbuf *b, const unsigned char *start, const unsigned char *q,
                    int key)
{
	const unsigned char *r = start;

	b->len = 0;
	while (r < q) {
		const unsigned char *run = r;
		uint32_t cp, lo;
		while (r < q && *r != '\\')
			r++;
		if (r > run) {
			if (!cli_utf8_valid(run, (size_t)(r - run)))
				return -1;
			sb_put(b, run, (size_t)(r - run));
		}
		if (r >= q)
			break;
		/* r at a backslash; q bounds the escape. */
		if (r + 1 >= q)
			return -1;
		if (r[1] != 'u') {
			/* the one-character escapes: pairs of the letter
			 * and what it stands for */
			static const char pairs[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
			const char *e = strchr(pairs, r[1]);
			if (!r[1] || !e || (e - pairs) % 2)
				return -1;
			sb_putc(b, e[1]);
			r += 2;
			continue;
		}
		if (q - r < 6 || hex4(r + 2, &cp) < 0)
			return -1;
		r += 6;
		if (cp >= 0xDC00 && cp <= 0xDFFF)
			return -1;
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			if (q - r < 6 || r[0] != '\\' || r[1] != 'u' ||
			    hex4(r + 2, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
				return -1;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			r += 6;
		}
		if (cp == 0 && key)
			return -1;
		put_utf8(b, cp);
	}
	return 0;
}

/*
 * A string at f->p (the opening quote) packed as msgpack str. *s, *n get the
 * decoded bytes (valid until the next string). key: refuse NUL bytes, which
 * jansson does not allow in object keys.
 */
static int string(fj *f, int key, const char **s, size_t *n)
{
	const unsigned char *q = f->p + 1, *start = q;
	int high = 0, esc = 0;
	for (;;) {
		/* Eight bytes at a time while none of them needs a look: no
		 * quote, backslash, control or non-ASCII byte. */
		while (f->end - q >= 8) {
			uint64_t w;
			memcpy(&w, q, 8);
			if (((w ^ (ONES * '"')) - ONES) & ~(w ^ (ONES * '"')) &
			            HIGHS ||
			    ((w ^ (ONES * '\\')) - ONES) &
			            ~(w ^ (ONES * '\\')) & HIGHS ||
			    ((w - ONES * 0x20) | w) & HIGHS)
				break;
			q += 8;
		}
		while (q < f->end && !byte_class[*q])
			q++;
		if (q >= f->end)
			return -1;
		if (*q == '"')
			break;
		switch (byte_class[*q]) {
		case C_ESC:
			esc = 1;
			q += 2;
			break;
		case C_HIGH:
			high = 1;
			q++;
			break;
		default: /* a control character: jansson refuses it */
			return -1;
		}
	}
	if (q >= f->end)
		return -1;
	if (!esc) {
		*s = (const char *)start;
		*n = (size_t)(q - start);
		if (high && !cli_utf8_valid(*s, *n))
			return -1;
	} else {
		sbuf *b = f->scratch;
		if (unescape(b, start, q, key) < 0)
			return -1;
		*s = b->p;
		*n = b->len;
	}
	if (key && memchr(*s, 0, *n))
		return -1;
	f->p = q + 1;
	return put_str(f, *s, *n);
}

static int number(fj *f)
{
	const unsigned char *q = f->p;
	char tmp[64];
	size_t len;
	int real = 0;
	if (q < f->end && *q == '-')
		q++;
	if (q >= f->end)
		return -1;
	if (*q == '0') {
		q++;
	} else if (*q >= '1' && *q <= '9') {
		while (q < f->end && *q >= '0' && *q <= '9')
			q++;
	} else {
		return -1;
	}
	if (q < f->end && *q == '.') {
		real = 1;
		q++;
		if (q >= f->end || *q < '0' || *q > '9')
			return -1;
		while (q < f->end && *q >= '0' && *q <= '9')
			q++;
	}
	if (q < f->end && (*q == 'e' || *q == 'E')) {
		real = 1;
		q++;
		if (q < f->end && (*q == '+' || *q == '-'))
			q++;
		if (q >= f->end || *q < '0' || *q > '9')
			return -1;
		while (q < f->end && *q >= '0' && *q <= '9')
			q++;
	}
	len = (size_t)(q - f->p);
	if (len >= sizeof tmp)
		return -1;
	memcpy(tmp, f->p, len);
	tmp[len] = '\0';
	errno = 0;
	if (real) {
		double d = strtod(tmp, NULL);
		if (isinf(d))
			return -1; /* jansson: real number overflow */
		msgpack_pack_double(&f->pk, d);
	} else {
		long long v = strtoll(tmp, NULL, 10);
		if (errno == ERANGE)
			return -1; /* jansson: too big integer */
		msgpack_pack_int64(&f->pk, (int64_t)v);
	}
	f->p = q;
	return 0;
}

static int literal(fj *f, const char *word, size_t n)
{
	if ((size_t)(f->end - f->p) < n || memcmp(f->p, word, n))
		return -1;
	f->p += n;
	return 0;
}

static int value(fj *f, int depth);

typedef cli_fj_member member;

/* After a member or an element: 1 at a ',' (skipped, and the space after
 * it), 0 at close (skipped), -1 at anything else. */
static int next_item(fj *f, char close)
{
	ws(f);
	if (f->p < f->end && *f->p == ',') {
		f->p++;
		ws(f);
		return 1;
	}
	if (f->p < f->end && *f->p == (unsigned char)close) {
		f->p++;
		return 0;
	}
	return -1;
}

/*
 * An object at f->p. With top set, its members' spans go to mem[] (the key
 * spans point into out, after the header insertion).
 */
static int object(fj *f, int depth, member *mem, size_t *nmem)
{
	size_t at = f->out->size, n = 0;
	member local[MEMBERS_MAX];
	member *ms = mem ? mem : local;
	int more;
	f->p++; /* '{' */
	ws(f);
	if (f->p < f->end && *f->p == '}') {
		f->p++;
		if (nmem)
			*nmem = 0;
		return insert_header(f, at, 0, 1);
	}
	for (;;) {
		const char *k;
		size_t kl;
		if (n == MEMBERS_MAX || f->p >= f->end || *f->p != '"')
			return -1;
		if (string(f, 1, &k, &kl) < 0)
			return -1;
		/* The key's bytes in out: after its str header. */
		ms[n].klen = kl;
		ms[n].koff = f->out->size - kl;
		for (size_t i = 0; i < n; i++) {
			const char *a = f->out->data + ms[i].koff;
			const char *b = f->out->data + ms[n].koff;
			if (ms[i].klen == kl && (kl == 0 || a[0] == b[0]) &&
			    !memcmp(a, b, kl))
				return -1; /* duplicate member */
		}
		ws(f);
		if (f->p >= f->end || *f->p != ':')
			return -1;
		f->p++;
		ws(f);
		ms[n].voff = f->out->size;
		if (value(f, depth + 1) < 0)
			return -1;
		ms[n].vlen = f->out->size - ms[n].voff;
		n++;
		if ((more = next_item(f, '}')) < 0)
			return -1;
		if (!more)
			break;
	}
	/* {"base64": "..."} packs as bin on the jansson path. */
	if (n == 1 && ms[0].klen == 6 &&
	    !memcmp(f->out->data + ms[0].koff, "base64", 6))
		return -1;
	size_t before = f->out->size;
	if (insert_header(f, at, n, 1) < 0)
		return -1;
	if (nmem) {
		/* The header went in at `at`: the spans moved up with it. */
		size_t hl = f->out->size - before;
		for (size_t i = 0; i < n; i++) {
			ms[i].koff += hl;
			ms[i].voff += hl;
		}
		*nmem = n;
	}
	return 0;
}

static int array(fj *f, int depth)
{
	size_t at = f->out->size, n = 0;
	int more;
	f->p++; /* '[' */
	ws(f);
	if (f->p < f->end && *f->p == ']') {
		f->p++;
		return insert_header(f, at, 0, 0);
	}
	for (;;) {
		if (value(f, depth + 1) < 0)
			return -1;
		n++;
		if ((more = next_item(f, ']')) < 0)
			return -1;
		if (!more)
			break;
	}
	return insert_header(f, at, n, 0);
}

static int value(fj *f, int depth)
{
	const char *s;
	size_t n;
	if (depth > DEPTH_MAX || f->p >= f->end)
		return -1;
	switch (*f->p) {
	case '{':
		return object(f, depth, NULL, NULL);
	case '[':
		return array(f, depth);
	case '"':
		return string(f, 0, &s, &n);
	case 't':
		if (literal(f, "true", 4) < 0)
			return -1;
		msgpack_pack_true(&f->pk);
		return 0;
	case 'f':
		if (literal(f, "false", 5) < 0)
			return -1;
		msgpack_pack_false(&f->pk);
		return 0;
	case 'n':
		if (literal(f, "null", 4) < 0)
			return -1;
		msgpack_pack_nil(&f->pk);
		return 0;
	default:
		return number(f);
	}
}

int cli_fast_object(const char *p, size_t n, msgpack_sbuffer *out,
                    sbuf *scratch, cli_fj_member *mem, size_t *nmem)
{
	fj f;
	f.p = (const unsigned char *)p;
	f.end = f.p + n;
	f.out = out;
	f.scratch = scratch;
	msgpack_packer_init(&f.pk, out, msgpack_sbuffer_write);
	msgpack_sbuffer_clear(out);
	*nmem = 0;
	ws(&f);
	if (f.p >= f.end || *f.p != '{')
		return -1;
	if (object(&f, 0, mem, nmem) < 0)
		return -1;
	ws(&f);
	return f.p == f.end ? 0 : -1;
}
