/* SPDX-License-Identifier: MIT */
/*
 * json.c: JSON text out, JSON values in, and the mapping between JSON and
 * stored values.
 *
 * Output is written by hand rather than through jansson so that msgpack
 * values render directly (no intermediate tree) and deterministically: map
 * entries in stored order, integers exact, doubles in the shortest text that
 * reads back as the same double. That makes `export | import | export`
 * reproduce its input byte for byte.
 *
 * The mapping (docs/CLI.md, "Values"):
 *   msgpack          JSON
 *   nil              null
 *   bool             true / false
 *   int              integer
 *   float 32/64      real (always with a '.' or an exponent)
 *   str              string
 *   bin              {"base64": "..."}
 *   array            array
 *   map              object (non-string keys become their JSON text)
 *   ext              {"ext": type, "base64": "..."}
 */
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "wal/wal.h"

/* ---- UTF-8 and base64 ---------------------------------------------------- */

/* Strict UTF-8, by the library's one check (wal/mp.c). */
int cli_utf8_valid(const void *p, size_t n)
{
	return lb__utf8_scan(p, n, NULL) == n;
}

static const char b64c[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void cli_b64_encode(sbuf *out, const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;
	sb_grow(out, (n + 2) / 3 * 4 + 1);
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 |
		             s[i + 2];
		char *d = out->p + out->len;
		d[0] = b64c[v >> 18];
		d[1] = b64c[(v >> 12) & 63];
		d[2] = b64c[(v >> 6) & 63];
		d[3] = b64c[v & 63];
		out->len += 4;
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;
		sb_putc(out, b64c[v >> 18]);
		sb_putc(out, b64c[(v >> 12) & 63]);
		sb_put(out, "==", 2);
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		sb_putc(out, b64c[v >> 18]);
		sb_putc(out, b64c[(v >> 12) & 63]);
		sb_putc(out, b64c[(v >> 6) & 63]);
		sb_putc(out, '=');
	}
}

static int b64v(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict: length a multiple of 4, padding only at the end. Appends. */
int cli_b64_decode(const char *s, size_t n, sbuf *out)
{
	size_t start = out->len;
	if (n % 4)
		return -1;
	sb_grow(out, n / 4 * 3 + 1);
	for (size_t i = 0; i < n; i += 4) {
		int a = b64v((unsigned char)s[i]);
		int b = b64v((unsigned char)s[i + 1]);
		int c = s[i + 2] == '=' ? -2 : b64v((unsigned char)s[i + 2]);
		int d = s[i + 3] == '=' ? -2 : b64v((unsigned char)s[i + 3]);
		int last = i + 4 == n;
		if (a < 0 || b < 0 || c == -1 || d == -1 ||
		    ((c == -2 || d == -2) && !last) || (c == -2 && d != -2)) {
			out->len = start;
			return -1;
		}
		out->p[out->len++] = (char)(a << 2 | b >> 4);
		if (c >= 0)
			out->p[out->len++] = (char)((b & 15) << 4 | c >> 2);
		if (d >= 0)
			out->p[out->len++] = (char)((c & 3) << 6 | d);
	}
	return 0;
}

/* ---- the JSON writer ----------------------------------------------------- */

void jw_str(sbuf *b, const void *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = p, *end = s + n, *run = s;
	sb_grow(b, n + 2);
	sb_putc(b, '"');
	for (; s < end; s++) {
		unsigned char c = *s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_put(b, run, (size_t)(s - run));
		run = s + 1;
		sb_putc(b, '\\');
		switch (c) {
		case '"':
			sb_putc(b, '"');
			break;
		case '\\':
			sb_putc(b, '\\');
			break;
		case '\n':
			sb_putc(b, 'n');
			break;
		case '\r':
			sb_putc(b, 'r');
			break;
		case '\t':
			sb_putc(b, 't');
			break;
		case '\b':
			sb_putc(b, 'b');
			break;
		case '\f':
			sb_putc(b, 'f');
			break;
		default:
			sb_put(b, "u00", 3);
			sb_putc(b, hex[c >> 4]);
			sb_putc(b, hex[c & 15]);
		}
	}
	sb_put(b, run, (size_t)(s - run));
	sb_putc(b, '"');
}

void jw_key(sbuf *b, const char *name)
{
	jw_cstr(b, name);
	sb_putc(b, ':');
}

void jw_u64(sbuf *b, uint64_t v)
{
	char t[24];
	size_t i = sizeof t;
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sb_put(b, t + i, sizeof t - i);
}

void jw_i64(sbuf *b, int64_t v)
{
	if (v < 0) {
		sb_putc(b, '-');
		jw_u64(b, (uint64_t)0 - (uint64_t)v);
	} else {
		jw_u64(b, (uint64_t)v);
	}
}

void jw_double(sbuf *b, double v)
{
	char t[40];
	int n = 0;
	if (!isfinite(v)) {
		sb_put(b, "null", 4);
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(t, sizeof t, "%.*g", prec, v);
		if (strtod(t, NULL) == v)
			break;
	}
	sb_put(b, t, (size_t)n);
	/* Keep it a real on the way back in. */
	if (!strpbrk(t, ".eE"))
		sb_put(b, ".0", 2);
}

void jw_bytes(sbuf *b, const void *p, size_t n)
{
	if (cli_utf8_valid(p, n)) {
		jw_str(b, p, n);
		return;
	}
	sb_put(b, "{\"base64\":\"", 11);
	cli_b64_encode(b, p, n);
	sb_put(b, "\"}", 2);
}

void cli_key_human(sbuf *b, const void *p, size_t n)
{
	const unsigned char *s = p;
	int plain = n > 0 && cli_utf8_valid(p, n);
	for (size_t i = 0; plain && i < n; i++)
		if (s[i] <= 0x20 || s[i] == '"' || s[i] == '\\' || s[i] == 0x7f)
			plain = 0;
	if (plain)
		sb_put(b, p, n);
	else
		jw_bytes(b, p, n);
}

/* ---- msgpack -> JSON ----------------------------------------------------- */

typedef struct mpr {
	const unsigned char *p, *end;
} mpr;

static int need(mpr *m, size_t n)
{
	return (size_t)(m->end - m->p) >= n;
}

static uint64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int mp_value(mpr *m, sbuf *b, int depth);

/* A map key: strings as they are, anything else (or a string that is not
 * UTF-8) as the JSON string of its JSON text, so the output stays JSON. */
static int mp_key(mpr *m, sbuf *b, int depth)
{
	sbuf tmp;
	int rc;
	if (!need(m, 1))
		return -1;
	if (*m->p >= 0xa0 && *m->p <= 0xbf) {
		size_t n = *m->p & 0x1f;
		if (!need(m, 1 + n))
			return -1;
		if (cli_utf8_valid(m->p + 1, n)) {
			jw_str(b, m->p + 1, n);
			m->p += 1 + n;
			return 0;
		}
	}
	sb_init(&tmp);
	rc = mp_value(m, &tmp, depth);
	if (rc == 0) {
		if (tmp.len && tmp.p[0] == '"')
			sb_put(b, tmp.p, tmp.len);
		else
			jw_str(b, tmp.p, tmp.len);
	}
	sb_free(&tmp);
	return rc;
}

static int mp_str(mpr *m, sbuf *b, size_t n)
{
	if (!need(m, n))
		return -1;
	jw_bytes(b, m->p, n);
	m->p += n;
	return 0;
}

static int mp_bin(mpr *m, sbuf *b, size_t n)
{
	if (!need(m, n))
		return -1;
	sb_put(b, "{\"base64\":\"", 11);
	cli_b64_encode(b, m->p, n);
	sb_put(b, "\"}", 2);
	m->p += n;
	return 0;
}

static int mp_ext(mpr *m, sbuf *b, size_t n)
{
	int8_t type;
	if (!need(m, 1 + n))
		return -1;
	type = (int8_t)m->p[0];
	sb_put(b, "{\"ext\":", 7);
	jw_i64(b, type);
	sb_put(b, ",\"base64\":\"", 11);
	cli_b64_encode(b, m->p + 1, n);
	sb_put(b, "\"}", 2);
	m->p += 1 + n;
	return 0;
}

static int mp_array(mpr *m, sbuf *b, uint64_t n, int depth)
{
	sb_putc(b, '[');
	for (uint64_t i = 0; i < n; i++) {
		if (i)
			sb_putc(b, ',');
		if (mp_value(m, b, depth + 1) < 0)
			return -1;
	}
	sb_putc(b, ']');
	return 0;
}

static int mp_map(mpr *m, sbuf *b, uint64_t n, int depth)
{
	sb_putc(b, '{');
	for (uint64_t i = 0; i < n; i++) {
		if (i)
			sb_putc(b, ',');
		if (mp_key(m, b, depth + 1) < 0)
			return -1;
		sb_putc(b, ':');
		if (mp_value(m, b, depth + 1) < 0)
			return -1;
	}
	sb_putc(b, '}');
	return 0;
}

static int mp_value(mpr *m, sbuf *b, int depth)
{
	unsigned char c;
	if (depth > 64 || !need(m, 1))
		return -1;
	c = *m->p++;
	if (c <= 0x7f) {
		jw_u64(b, c);
		return 0;
	}
	if (c >= 0xe0) {
		jw_i64(b, (int8_t)c);
		return 0;
	}
	if (c >= 0x80 && c <= 0x8f)
		return mp_map(m, b, c & 0x0f, depth);
	if (c >= 0x90 && c <= 0x9f)
		return mp_array(m, b, c & 0x0f, depth);
	if (c >= 0xa0 && c <= 0xbf)
		return mp_str(m, b, c & 0x1f);
	switch (c) {
	case 0xc0:
		sb_put(b, "null", 4);
		return 0;
	case 0xc2:
		sb_put(b, "false", 5);
		return 0;
	case 0xc3:
		sb_put(b, "true", 4);
		return 0;
	case 0xc4:
	case 0xc5:
	case 0xc6: {
		int w = 1 << (c - 0xc4);
		if (!need(m, (size_t)w))
			return -1;
		uint64_t n = be(m->p, w);
		m->p += w;
		return mp_bin(m, b, n);
	}
	case 0xc7:
	case 0xc8:
	case 0xc9: {
		int w = 1 << (c - 0xc7);
		if (!need(m, (size_t)w))
			return -1;
		uint64_t n = be(m->p, w);
		m->p += w;
		return mp_ext(m, b, n);
	}
	case 0xca: {
		uint32_t u;
		float f;
		if (!need(m, 4))
			return -1;
		u = (uint32_t)be(m->p, 4);
		memcpy(&f, &u, 4);
		m->p += 4;
		jw_double(b, (double)f);
		return 0;
	}
	case 0xcb: {
		uint64_t u;
		double d;
		if (!need(m, 8))
			return -1;
		u = be(m->p, 8);
		memcpy(&d, &u, 8);
		m->p += 8;
		jw_double(b, d);
		return 0;
	}
	case 0xcc:
	case 0xcd:
	case 0xce:
	case 0xcf: {
		int w = 1 << (c - 0xcc);
		if (!need(m, (size_t)w))
			return -1;
		jw_u64(b, be(m->p, w));
		m->p += w;
		return 0;
	}
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3: {
		int w = 1 << (c - 0xd0);
		uint64_t u;
		int64_t v;
		if (!need(m, (size_t)w))
			return -1;
		u = be(m->p, w);
		/* Sign-extend from w bytes. */
		if (w < 8 && (u >> (w * 8 - 1)) & 1)
			u |= ~(uint64_t)0 << (w * 8);
		memcpy(&v, &u, 8);
		jw_i64(b, v);
		m->p += w;
		return 0;
	}
	case 0xd4:
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		return mp_ext(m, b, (size_t)1 << (c - 0xd4));
	case 0xd9:
	case 0xda:
	case 0xdb: {
		int w = 1 << (c - 0xd9);
		if (!need(m, (size_t)w))
			return -1;
		uint64_t n = be(m->p, w);
		m->p += w;
		return mp_str(m, b, n);
	}
	case 0xdc:
	case 0xdd: {
		int w = c == 0xdc ? 2 : 4;
		if (!need(m, (size_t)w))
			return -1;
		uint64_t n = be(m->p, w);
		m->p += w;
		/* Each element takes at least one byte. */
		if (n > (uint64_t)(m->end - m->p))
			return -1;
		return mp_array(m, b, n, depth);
	}
	case 0xde:
	case 0xdf: {
		int w = c == 0xde ? 2 : 4;
		if (!need(m, (size_t)w))
			return -1;
		uint64_t n = be(m->p, w);
		m->p += w;
		if (n > (uint64_t)(m->end - m->p) / 2)
			return -1;
		return mp_map(m, b, n, depth);
	}
	default: /* 0xc1 is never used */
		return -1;
	}
}

int jw_msgpack(sbuf *b, const void *p, size_t n)
{
	mpr m = {p, (const unsigned char *)p + n};
	size_t start = b->len;
	if (mp_value(&m, b, 0) < 0 || m.p != m.end) {
		b->len = start;
		return -1;
	}
	return 0;
}

void jw_value(sbuf *b, int schema_table, const void *p, size_t n)
{
	if (schema_table && jw_msgpack(b, p, n) == 0)
		return;
	jw_bytes(b, p, n);
}

/* ---- JSON -> stored values ----------------------------------------------- */

/* {"base64": "..."} with exactly that member: the string, else NULL. */
static json_t *b64_member(json_t *v)
{
	json_t *s;
	if (!json_is_object(v) || json_object_size(v) != 1)
		return NULL;
	s = json_object_get(v, "base64");
	return json_is_string(s) ? s : NULL;
}

static int pack(msgpack_packer *pk, json_t *v, sbuf *scratch, char *err,
                size_t errlen, int depth)
{
	json_t *s;
	if (depth > 64) {
		snprintf(err, errlen, "value nested more than 64 levels");
		return -1;
	}
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		if ((s = b64_member(v)) != NULL) {
			scratch->len = 0;
			if (cli_b64_decode(json_string_value(s),
			                   json_string_length(s),
			                   scratch) < 0) {
				snprintf(err, errlen, "invalid base64 string");
				return -1;
			}
			msgpack_pack_bin(pk, scratch->len);
			msgpack_pack_bin_body(pk, scratch->p, scratch->len);
			return 0;
		}
		msgpack_pack_map(pk, json_object_size(v));
		json_object_foreach(v, k, x)
		{
			size_t kl = strlen(k);
			msgpack_pack_str(pk, kl);
			msgpack_pack_str_body(pk, k, kl);
			if (pack(pk, x, scratch, err, errlen, depth + 1) < 0)
				return -1;
		}
		return 0;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		msgpack_pack_array(pk, n);
		for (size_t i = 0; i < n; i++)
			if (pack(pk, json_array_get(v, i), scratch, err, errlen,
			         depth + 1) < 0)
				return -1;
		return 0;
	}
	case JSON_STRING: {
		size_t n = json_string_length(v);
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, json_string_value(v), n);
		return 0;
	}
	case JSON_INTEGER:
		msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
		return 0;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(v));
		return 0;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		return 0;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		return 0;
	case JSON_NULL:
		msgpack_pack_nil(pk);
		return 0;
	}
	snprintf(err, errlen, "unsupported JSON value");
	return -1;
}

int cli_pack_json(msgpack_packer *pk, json_t *v, sbuf *scratch, char *err,
                  size_t errlen)
{
	return pack(pk, v, scratch, err, errlen, 0);
}

int cli_opaque_json(json_t *v, sbuf *out, char *err, size_t errlen)
{
	json_t *s;
	char *text;
	out->len = 0;
	if (json_is_string(v)) {
		sb_put(out, json_string_value(v), json_string_length(v));
		return 0;
	}
	if ((s = b64_member(v)) != NULL) {
		if (cli_b64_decode(json_string_value(s), json_string_length(s),
		                   out) < 0) {
			snprintf(err, errlen, "invalid base64 string");
			return -1;
		}
		return 0;
	}
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text) {
		snprintf(err, errlen, "value cannot be encoded");
		return -1;
	}
	sb_puts(out, text);
	free(text);
	return 0;
}

int cli_key_json(json_t *v, sbuf *out, char *err, size_t errlen)
{
	json_t *s;
	out->len = 0;
	if (json_is_string(v)) {
		sb_put(out, json_string_value(v), json_string_length(v));
	} else if (json_is_integer(v)) {
		sb_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if ((s = b64_member(v)) != NULL) {
		if (cli_b64_decode(json_string_value(s), json_string_length(s),
		                   out) < 0) {
			snprintf(err, errlen, "key: invalid base64 string");
			return -1;
		}
	} else {
		snprintf(err, errlen,
		         "key must be a string, an integer or {\"base64\": "
		         "...}");
		return -1;
	}
	if (out->len == 0) {
		snprintf(err, errlen, "key is empty");
		return -1;
	}
	if (out->len > LB_KEY_MAX) {
		snprintf(err, errlen, "key is longer than %d bytes",
		         LB_KEY_MAX);
		return -1;
	}
	return 0;
}

json_t *cli_json_parse(const char *s, size_t n, char *err, size_t errlen)
{
	json_error_t je;
	json_t *v = json_loadb(
	        s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES,
	        &je);
	if (!v)
		snprintf(err, errlen, "invalid JSON at column %d: %s",
		         je.column, je.text);
	return v;
}

/* ---- small msgpack readers ----------------------------------------------- */

/* Skip one item; -1 if malformed or truncated. */
static int mp_skip(mpr *m, int depth)
{
	unsigned char c;
	uint64_t n = 0, items = 0;
	int w;
	if (depth > 64 || !need(m, 1))
		return -1;
	c = *m->p++;
	if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
		return 0;
	if (c >= 0x80 && c <= 0x8f)
		items = 2 * (uint64_t)(c & 0x0f);
	else if (c >= 0x90 && c <= 0x9f)
		items = c & 0x0f;
	else if (c >= 0xa0 && c <= 0xbf)
		n = c & 0x1f;
	else
		switch (c) {
		case 0xc4: /* bin, str: length then payload */
		case 0xc5:
		case 0xc6:
		case 0xd9:
		case 0xda:
		case 0xdb:
			w = c <= 0xc6 ? 1 << (c - 0xc4) : 1 << (c - 0xd9);
			if (!need(m, (size_t)w))
				return -1;
			n = be(m->p, w);
			m->p += w;
			break;
		case 0xc7: /* ext: length, type, payload */
		case 0xc8:
		case 0xc9:
			w = 1 << (c - 0xc7);
			if (!need(m, (size_t)w))
				return -1;
			n = be(m->p, w) + 1;
			m->p += w;
			break;
		case 0xca:
			n = 4;
			break;
		case 0xcb:
			n = 8;
			break;
		case 0xcc:
		case 0xcd:
		case 0xce:
		case 0xcf:
			n = (uint64_t)1 << (c - 0xcc);
			break;
		case 0xd0:
		case 0xd1:
		case 0xd2:
		case 0xd3:
			n = (uint64_t)1 << (c - 0xd0);
			break;
		case 0xd4:
		case 0xd5:
		case 0xd6:
		case 0xd7:
		case 0xd8:
			n = ((uint64_t)1 << (c - 0xd4)) + 1;
			break;
		case 0xdc:
		case 0xdd:
		case 0xde:
		case 0xdf:
			w = (c == 0xdc || c == 0xde) ? 2 : 4;
			if (!need(m, (size_t)w))
				return -1;
			items = be(m->p, w) * (c >= 0xde ? 2 : 1);
			m->p += w;
			if (items > (uint64_t)(m->end - m->p))
				return -1;
			break;
		default:
			return -1;
		}
	if (n > (uint64_t)(m->end - m->p))
		return -1;
	m->p += n;
	for (uint64_t i = 0; i < items; i++)
		if (mp_skip(m, depth + 1) < 0)
			return -1;
	return 0;
}

/* Read a str (or with bin set, also a bin) header and payload at m. */
static int mp_read_bytes(mpr *m, int bin, const char **s, size_t *len)
{
	unsigned char c;
	uint64_t n = 0;
	int w = 0;
	if (!need(m, 1))
		return -1;
	c = *m->p;
	if (c >= 0xa0 && c <= 0xbf)
		n = c & 0x1f;
	else if (c >= 0xd9 && c <= 0xdb)
		w = 1 << (c - 0xd9);
	else if (bin && c >= 0xc4 && c <= 0xc6)
		w = 1 << (c - 0xc4);
	else
		return -1;
	m->p++;
	if (w) {
		if (!need(m, (size_t)w))
			return -1;
		n = be(m->p, w);
		m->p += w;
	}
	if (n > (uint64_t)(m->end - m->p))
		return -1;
	*s = (const char *)m->p;
	*len = (size_t)n;
	m->p += n;
	return 0;
}

static int mp_read_str(mpr *m, const char **s, size_t *len)
{
	return mp_read_bytes(m, 0, s, len);
}

int cli_mp_bytes(const void *p, size_t n, const char **s, size_t *len)
{
	mpr m = {p, (const unsigned char *)p + n};
	if (mp_read_bytes(&m, 1, s, len) < 0 || m.p != m.end)
		return -1;
	return 0;
}

int cli_mp_str(const void *p, size_t n, const char **s, size_t *len)
{
	mpr m = {p, (const unsigned char *)p + n};
	if (mp_read_str(&m, s, len) < 0 || m.p != m.end)
		return -1;
	return 0;
}

int cli_mp_int(const void *p, size_t n, int64_t *v)
{
	const unsigned char *s = p;
	uint64_t u;
	int w;
	if (n == 0)
		return -1;
	if (s[0] <= 0x7f || s[0] >= 0xe0) {
		if (n != 1)
			return -1;
		*v = s[0] <= 0x7f ? s[0] : (int8_t)s[0];
		return 0;
	}
	if (s[0] >= 0xcc && s[0] <= 0xcf) {
		w = 1 << (s[0] - 0xcc);
		if (n != (size_t)w + 1)
			return -1;
		u = be(s + 1, w);
		if (u > INT64_MAX)
			return -1;
		*v = (int64_t)u;
		return 0;
	}
	if (s[0] >= 0xd0 && s[0] <= 0xd3) {
		w = 1 << (s[0] - 0xd0);
		if (n != (size_t)w + 1)
			return -1;
		u = be(s + 1, w);
		if (w < 8 && (u >> (w * 8 - 1)) & 1)
			u |= ~(uint64_t)0 << (w * 8);
		memcpy(v, &u, 8);
		return 0;
	}
	return -1;
}

int cli_mp_map_get(const void *p, size_t n, const char *name, const void **v,
                   size_t *vlen)
{
	mpr m = {p, (const unsigned char *)p + n};
	size_t nl = strlen(name);
	uint64_t count;
	unsigned char c;
	if (!need(&m, 1))
		return -1;
	c = *m.p++;
	if (c >= 0x80 && c <= 0x8f) {
		count = c & 0x0f;
	} else if (c == 0xde || c == 0xdf) {
		int w = c == 0xde ? 2 : 4;
		if (!need(&m, (size_t)w))
			return -1;
		count = be(m.p, w);
		m.p += w;
	} else {
		return -1;
	}
	for (uint64_t i = 0; i < count; i++) {
		const char *k;
		size_t kl;
		const unsigned char *vs;
		if (mp_read_str(&m, &k, &kl) < 0) {
			if (mp_skip(&m, 1) < 0) /* a non-string key */
				return -1;
			k = NULL;
			kl = 0;
		}
		vs = m.p;
		if (mp_skip(&m, 1) < 0)
			return -1;
		if (k && kl == nl && !memcmp(k, name, nl)) {
			*v = vs;
			*vlen = (size_t)(m.p - vs);
			return 0;
		}
	}
	return -1;
}
