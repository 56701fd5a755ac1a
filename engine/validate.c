/* SPDX-License-Identifier: MIT */
/*
 * validate.c: schemas and foreign keys.
 *
 * FORMAT issues are found at op time by one pass over the value's msgpack
 * map, without allocating: each entry's name is matched against the
 * schema's fields, its type and length checked, and a bitmap records which
 * fields were seen so that missing required fields are reported at the end.
 *
 * Foreign keys are checked at commit, against the state after all of the
 * batch's changes, so a record and what it references may come in either
 * order. Two structures make every check O(log n):
 *  - `_refs` (DUPSORT) maps ikey(referenced table, key) to the ikeys of the
 *    records that reference it. It is kept exact as records change.
 *  - the batch's pending list queues one check per reference added and one
 *    per deleted key of a referenced table; commit walks it once.
 * A reference added and then removed again inside the batch is skipped at
 * commit because its `_refs` pair is gone; a key deleted and then put back
 * is skipped because it exists again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <math.h> /* isnan (a macro: no libm) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"

/* ---- issues: what a batch found wrong ------------------------------------ */

static char *dupn(const void *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		if (n)
			memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

int lb__issue(lb_batch *b, lb_issue_kind kind, const char *table,
              const void *key, size_t klen, const char *field, uint64_t batch,
              const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	/* The op that found the issue returns LB_EVALIDATION with this
	 * detail, whether or not the issue is kept. */
	lb__fail(LB_EVALIDATION, "%s", msg ? msg : "validation failed");
	b->nissues_total++;
	if (!msg || b->nissues >= LB_ISSUES_MAX)
		goto drop;
	if (b->nissues == b->icap) {
		size_t nc = b->icap ? b->icap * 2 : 16;
		if (nc > LB_ISSUES_MAX)
			nc = LB_ISSUES_MAX;
		lb_issue *ni = realloc(b->issues, nc * sizeof *ni);
		if (!ni)
			goto drop; /* counted, not kept */
		b->issues = ni;
		b->icap = nc;
	}
	lb_issue *is = &b->issues[b->nissues];
	memset(is, 0, sizeof *is);
	is->kind = kind;
	is->batch = batch;
	is->table = dupn(table, strlen(table));
	is->key = dupn(key, klen);
	is->klen = klen;
	is->field = field ? dupn(field, strlen(field)) : NULL;
	is->message = msg;
	if (!is->table || !is->key || (field && !is->field)) {
		free(is->table);
		free(is->key);
		free(is->field);
		goto drop;
	}
	b->nissues++;
	return LB_EVALIDATION;
drop:
	free(msg);
	return LB_EVALIDATION;
}

static const char *type_name(lb_type t)
{
	static const char *const names[] = {"any", "nil",   "bool",
	                                    "int", "float", "str",
	                                    "bin", "array", "map"};
	return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static const char *mp_type_name(lb_mp_type t)
{
	switch (t) {
	case LB_MP_NIL:
		return "nil";
	case LB_MP_BOOL:
		return "bool";
	case LB_MP_UINT:
	case LB_MP_NINT:
		return "int";
	case LB_MP_FLOAT:
		return "float";
	case LB_MP_STR:
		return "str";
	case LB_MP_BIN:
		return "bin";
	case LB_MP_ARRAY:
		return "array";
	case LB_MP_MAP:
		return "map";
	case LB_MP_EXT:
		return "ext";
	default:
		return "invalid msgpack";
	}
}

static int find_field(const lb_wal_schema *s, const char *name, uint32_t len)
{
	for (uint32_t i = 0; i < s->nfields; i++)
		if (s->fields[i].nlen == len &&
		    memcmp(s->fields[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

/* ---- rules --------------------------------------------------------------- */

/* A str value for a message: UTF-8 kept, control bytes and quotes escaped,
 * cut (on a character boundary) after about 60 bytes. */
static const char *val_text(const char *s, size_t n, char *buf, size_t cap)
{
	size_t o = 0, i = 0;

	while (i < n && o + 8 < cap) {
		unsigned char c = (unsigned char)s[i];
		if (i >= 60) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c < 0x20 || c == 0x7f || c == '\\' || c == '\'') {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
			i++;
			continue;
		}
		/* a whole UTF-8 sequence (values of str fields are valid) */
		size_t k = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (k > n - i)
			k = n - i;
		if (o + k + 8 >= cap)
			break;
		memcpy(buf + o, s + i, k);
		o += k;
		i += k;
	}
	buf[o] = 0;
	return buf;
}

/* d without its fraction (|d| < 2^64; no libm). */
static double trunc_(double d)
{
	if (d >= 4503599627370496.0 || d <= -4503599627370496.0)
		return d; /* 2^52 and up: an integer */
	return (double)(int64_t)d;
}

/* The shortest text that reads back as d. */
static const char *num_text(double d, char *buf, size_t cap)
{
	/* an integer below 10^19 in full: 200, not 2e+02 */
	if (d > -1e19 && d < 1e19 && d == trunc_(d)) {
		snprintf(buf, cap, "%.0f", d);
		return buf;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, cap, "%.*g", p, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	return buf;
}

/* v compared with the finite d: -1, 0 or 1, exactly. (d truncated to an
 * integer is exact: a double of 2^52 or more is an integer already.) */
static int cmp_int(int64_t v, double d)
{
	int64_t di;

	if (d >= 9223372036854775808.0)
		return -1;
	if (d < -9223372036854775808.0)
		return 1;
	di = (int64_t)d; /* toward zero */
	if (v != di)
		return v < di ? -1 : 1;
	if (d == (double)di)
		return 0;
	return d > (double)di ? -1 : 1;
}

/* The same for v > INT64_MAX. */
static int cmp_big(uint64_t v, double d)
{
	uint64_t du;

	if (d < 9223372036854775808.0)
		return 1;
	if (d >= 18446744073709551616.0)
		return -1;
	du = (uint64_t)d; /* d is an integer here */
	return v == du ? 0 : v < du ? -1 : 1;
}

/* A float 32 or 64 at m. 0, or LB_ECORRUPT. */
static int read_float(lb_mp *m, double *v)
{
	const uint8_t *p = m->p;
	uint64_t u = 0;

	if (p < m->end && p[0] == 0xca && m->end - p >= 5) {
		uint32_t w = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
		             (uint32_t)p[3] << 8 | p[4];
		float f;
		memcpy(&f, &w, sizeof f);
		*v = f;
		m->p += 5;
		return 0;
	}
	if (p < m->end && p[0] == 0xcb && m->end - p >= 9) {
		for (int i = 1; i <= 8; i++)
			u = u << 8 | p[i];
		memcpy(v, &u, sizeof *v);
		m->p += 9;
		return 0;
	}
	return LB_ECORRUPT;
}

/* Is the str s one of f's enum values? */
static int in_str_enum(const lb_sfield *f, const char *s, uint32_t n)
{
	uint32_t lo = 0, hi = f->nenum;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2, e = f->enum_order[mid];
		int c = f->enum_lens[e] != n
		                ? (f->enum_lens[e] < n ? -1 : 1)
		                : (n ? memcmp(f->enum_values[e], s, n) : 0);
		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int in_int_enum(const lb_sfield *f, int64_t v)
{
	uint32_t lo = 0, hi = f->nenum;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int64_t x = f->enum_ints[f->enum_order[mid]];
		if (x == v)
			return 1;
		if (x < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* The allowed values, for a message: "'a', 'b', 'c'" or "1, 2, 3", cut
 * after about 200 bytes ("... (40 values)"). */
static const char *enum_text(const lb_sfield *f, char *buf, size_t cap)
{
	size_t o = 0;
	char v[256];

	buf[0] = 0;
	for (uint32_t i = 0; i < f->nenum; i++) {
		const char *t = f->type == LB_INT ? f->enum_values[i]
		                                  : val_text(f->enum_values[i],
		                                             f->enum_lens[i], v,
		                                             sizeof v);
		size_t need = strlen(t) + 4;
		if (o + need + 24 >= cap || (o > 200 && i + 1 < f->nenum)) {
			snprintf(buf + o, cap - o, "%s... (%u values)",
			         i ? ", " : "", (unsigned)f->nenum);
			break;
		}
		o += (size_t)snprintf(buf + o, cap - o,
		                      f->type == LB_INT ? "%s%s" : "%s'%s'",
		                      i ? ", " : "", t);
	}
	return buf;
}

typedef struct vctx {
	lb_batch *b;
	lb_table *t;
	const void *key;
	size_t klen;
	const lb_sfield *f;
} vctx;

#define ISSUE(x, ...)                                                          \
	lb__issue((x)->b, LB_ISSUE_FORMAT, (x)->t->name, (x)->key, (x)->klen,  \
	          (x)->f->name, 0, __VA_ARGS__)

/* A str value's rules: enum, pattern, format. Returns 1 if one broke. */
static int str_rules(const vctx *x, const char *s, uint32_t n, int *err)
{
	const lb_sfield *f = x->f;
	const char *why;
	char vt[256], list[512];
	int bad = 0, rc;

	if (f->nenum && !in_str_enum(f, s, n)) {
		ISSUE(x,
		      "%s: field '%s' is '%s', not one of the allowed values "
		      "%s",
		      x->t->name, f->name, val_text(s, n, vt, sizeof vt),
		      enum_text(f, list, sizeof list));
		bad = 1;
	}
	if (f->re) {
		if ((rc = lb__pattern_match(f, s, n)) < 0) {
			*err = rc;
			return bad;
		}
		if (rc == 0) {
			ISSUE(x,
			      "%s: field '%s' is '%s', which does not match "
			      "the pattern '%s' (the whole value must match)",
			      x->t->name, f->name,
			      val_text(s, n, vt, sizeof vt), f->pattern);
			bad = 1;
		}
	}
	if (f->format && (why = lb__format_problem(f->format, s, n))) {
		ISSUE(x, "%s: field '%s' is '%s', not a %s: %s", x->t->name,
		      f->name, val_text(s, n, vt, sizeof vt),
		      f->format == LB_FMT_DATE ? "date (YYYY-MM-DD)"
		                               : "date-time (RFC 3339, like "
		                                 "2024-03-14T09:30:00Z)",
		      why);
		bad = 1;
	}
	return bad;
}

/* min and max: c_min and c_max compare the value with each bound. */
static int bound_rules(const vctx *x, const char *vt, int c_min, int c_max)
{
	const lb_sfield *f = x->f;
	char bt[40];

	if ((f->has_min_max & LB_HAS_MIN) && c_min < 0)
		return ISSUE(x, "%s: field '%s' is %s, below the minimum %s",
		             x->t->name, f->name, vt,
		             num_text(f->min, bt, sizeof bt)),
		       1;
	if ((f->has_min_max & LB_HAS_MAX) && c_max > 0)
		return ISSUE(x, "%s: field '%s' is %s, above the maximum %s",
		             x->t->name, f->name, vt,
		             num_text(f->max, bt, sizeof bt)),
		       1;
	return 0;
}

/* The key_field rule: the value (bytes, or an int's decimal text) must be
 * the record's key. */
static int key_rule(const vctx *x, const void *p, size_t n)
{
	char k1[96], k2[96];

	if (n == x->klen && (n == 0 || memcmp(p, x->key, n) == 0))
		return 0;
	ISSUE(x,
	      "%s: field '%s' is '%s' but the record's key is '%s' (the "
	      "table's key_field)",
	      x->t->name, x->f->name, lb__key_text(p, n, k1, sizeof k1),
	      lb__key_text(x->key, x->klen, k2, sizeof k2));
	return 1;
}

/* What the rules of one value found: an issue (bad), an error (err, < 0),
 * and the length max_len applies to (when has_len). */
typedef struct vres {
	int bad, err, has_len;
	uint64_t len;
} vres;

/* Is a value of msgpack type mt of f's type? */
static int type_matches(const lb_sfield *f, lb_mp_type mt)
{
	int ok;
	switch (f->type) {
	case LB_ANY:
		ok = mt != LB_MP_INVALID;
		break;
	case LB_NIL:
		ok = mt == LB_MP_NIL;
		break;
	case LB_BOOL:
		ok = mt == LB_MP_BOOL;
		break;
	case LB_INT:
		ok = mt == LB_MP_UINT || mt == LB_MP_NINT;
		break;
	case LB_FLOAT:
		ok = mt == LB_MP_FLOAT;
		break;
	case LB_STR:
		ok = mt == LB_MP_STR;
		break;
	case LB_BIN:
		ok = mt == LB_MP_BIN;
		break;
	case LB_ARRAY:
		ok = mt == LB_MP_ARRAY;
		break;
	case LB_MAP:
		ok = mt == LB_MP_MAP;
		break;
	default:
		ok = 0;
	}
	/* a ref field of type ANY takes a str or a bin key (or nil: no
	 * reference); one of type STR or BIN takes that type */
	if (f->ref && ok && mt != LB_MP_STR && mt != LB_MP_BIN &&
	    mt != LB_MP_NIL)
		ok = 0;
	return ok;
}

/* A value of the wrong type at m: its issue, then skip it. */
static int type_issue(const vctx *x, lb_mp_type mt, lb_mp *m)
{
	const lb_sfield *f = x->f;
	const char *tn = x->t->name;
	const char *nil = (f->flags & LB_NULLABLE) ? " or nil" : "";
	if (mt == LB_MP_INVALID)
		return LB_ECORRUPT;
	if (f->ref)
		lb__issue(x->b, LB_ISSUE_FORMAT, tn, x->key, x->klen, f->name,
		          0,
		          "%s: field '%s' must be a key of %s (%s%s), not %s",
		          tn, f->name, f->ref,
		          f->type == LB_ANY ? "str, bin or nil"
		                            : type_name(f->type),
		          f->type == LB_ANY ? "" : nil, mp_type_name(mt));
	else
		lb__issue(x->b, LB_ISSUE_FORMAT, tn, x->key, x->klen, f->name,
		          0, "%s: field '%s' must be %s%s, not %s", tn, f->name,
		          type_name(f->type), nil, mp_type_name(mt));
	return lb__mp_skip(m) < 0 ? LB_ECORRUPT : LB_EVALIDATION;
}

/* A str: UTF-8 (a STR field's always), its length, the key, the STR rules. */
static int str_value(const vctx *x, int is_key, lb_mp *m, vres *r)
{
	const lb_sfield *f = x->f;
	const char *s;
	uint32_t n;
	size_t chars;
	if (lb__mp_str(m, &s, &n) < 0)
		return LB_ECORRUPT;
	if (is_key)
		r->bad |= key_rule(x, s, n);
	if (f->max_len || f->type == LB_STR) {
		/* lb__utf8_count returns 0 for valid UTF-8 */
		if (lb__utf8_count((const uint8_t *)s, n, &chars) != 0) {
			lb__issue(x->b, LB_ISSUE_FORMAT, x->t->name, x->key,
			          x->klen, f->name, 0,
			          "%s: field '%s' is not valid UTF-8",
			          x->t->name, f->name);
			return LB_EVALIDATION;
		}
		r->len = chars;
		r->has_len = f->max_len != 0;
	}
	if (f->type == LB_STR)
		r->bad |= str_rules(x, s, n, &r->err);
	return 0;
}

/* A bin: its length, the key. */
static int bin_value(const vctx *x, int is_key, lb_mp *m, vres *r)
{
	const void *p;
	uint32_t n;
	if (lb__mp_bin(m, &p, &n) < 0)
		return LB_ECORRUPT;
	if (is_key)
		r->bad |= key_rule(x, p, n);
	r->len = n;
	r->has_len = x->f->max_len != 0;
	return 0;
}

/* An array or a map: its element count. */
static int count_value(lb_mp_type mt, lb_mp *m, vres *r)
{
	uint32_t n;
	lb_mp save = *m;
	if ((mt == LB_MP_ARRAY ? lb__mp_array(m, &n) : lb__mp_map(m, &n)) < 0)
		return LB_ECORRUPT;
	*m = save;
	if (lb__mp_skip(m) < 0)
		return LB_ECORRUPT;
	r->len = n;
	r->has_len = 1;
	return 0;
}

/* An integer: the key, the enum, the bounds (exact, also beyond int64). */
static int int_value(const vctx *x, lb_mp_type mt, int is_key, lb_mp *m,
                     vres *r)
{
	const lb_sfield *f = x->f;
	char vt[24];
	int64_t v = 0;
	uint64_t u = 0;
	int big = 0;
	if (mt == LB_MP_UINT) {
		if (lb__mp_uint(m, &u) < 0)
			return LB_ECORRUPT;
		big = u > (uint64_t)INT64_MAX;
		v = big ? 0 : (int64_t)u;
	} else if (lb__mp_int(m, &v) < 0) {
		return LB_ECORRUPT;
	}
	if (big)
		snprintf(vt, sizeof vt, "%" PRIu64, u);
	else
		snprintf(vt, sizeof vt, "%" PRId64, v);
	if (is_key)
		r->bad |= key_rule(x, vt, strlen(vt));
	if (f->nenum && (big || !in_int_enum(f, v))) {
		char list[512];
		ISSUE(x,
		      "%s: field '%s' is %s, not one of the allowed values %s",
		      x->t->name, f->name, vt, enum_text(f, list, sizeof list));
		r->bad = 1;
	}
	if (f->has_min_max)
		r->bad |= bound_rules(
		        x, vt, big ? cmp_big(u, f->min) : cmp_int(v, f->min),
		        big ? cmp_big(u, f->max) : cmp_int(v, f->max));
	return 0;
}

/* A float: the bounds (NaN is within none). */
static int float_value(const vctx *x, lb_mp *m, vres *r)
{
	const lb_sfield *f = x->f;
	double d;
	char vt[40];
	if (read_float(m, &d) < 0)
		return LB_ECORRUPT;
	if (isnan(d)) {
		ISSUE(x,
		      "%s: field '%s' is NaN, which is within no minimum or "
		      "maximum",
		      x->t->name, f->name);
		r->bad = 1;
	} else {
		r->bad |= bound_rules(x, num_text(d, vt, sizeof vt),
		                      d < f->min ? -1 : d > f->min,
		                      d < f->max ? -1 : d > f->max);
	}
	return 0;
}

/* Check one field value at m; consume it. Returns 0, LB_EVALIDATION after
 * recording issues, LB_ECORRUPT for undecodable msgpack, or LB_ENOMEM. */
static int check_field(lb_batch *b, lb_table *t, const void *key, size_t klen,
                       const lb_sfield *f, int is_key, lb_mp *m)
{
	lb_mp_type mt = lb__mp_peek(m);
	vctx x = {b, t, key, klen, f};
	vres r = {0, 0, 0, 0};
	int rc;
	/* a nil in place of a nullable field's value: nothing to check */
	if (mt == LB_MP_NIL && (f->flags & LB_NULLABLE))
		return lb__mp_nil(m) < 0 ? LB_ECORRUPT : 0;
	if (!type_matches(f, mt))
		return type_issue(&x, mt, m);
	/* A STR field holds UTF-8, always (readers such as the CLI's JSON
	 * output rely on it); an ANY field is decoded only to count the
	 * characters of a max_len, or to compare it with the key. */
	if (mt == LB_MP_STR && (f->max_len || f->type == LB_STR || is_key))
		rc = str_value(&x, is_key, m, &r);
	else if (mt == LB_MP_BIN && (f->max_len || is_key))
		rc = bin_value(&x, is_key, m, &r);
	else if ((mt == LB_MP_ARRAY || mt == LB_MP_MAP) && f->max_len)
		rc = count_value(mt, m, &r);
	else if ((mt == LB_MP_UINT || mt == LB_MP_NINT) &&
	         (f->nenum || f->has_min_max || is_key))
		rc = int_value(&x, mt, is_key, m, &r);
	else if (mt == LB_MP_FLOAT && f->has_min_max)
		rc = float_value(&x, m, &r);
	else {
		if (is_key && mt != LB_MP_NIL) {
			ISSUE(&x,
			      "%s: field '%s' must be the record's key (a "
			      "str, bin or int), not %s",
			      t->name, f->name, mp_type_name(mt));
			r.bad = 1;
		}
		rc = lb__mp_skip(m) < 0 ? LB_ECORRUPT : 0;
	}
	if (rc < 0)
		return rc;
	if (r.err)
		return r.err;
	if (r.has_len && r.len > f->max_len)
		return lb__issue(
		        b, LB_ISSUE_FORMAT, t->name, key, klen, f->name, 0,
		        "%s: field '%s' is %llu %s long (max %u)", t->name,
		        f->name, (unsigned long long)r.len,
		        mt == LB_MP_STR
		                ? "characters"
		                : (mt == LB_MP_BIN ? "bytes" : "elements"),
		        f->max_len);
	return r.bad ? LB_EVALIDATION : 0;
}

int lb__validate_value(lb_batch *b, lb_table *t, const void *key, size_t klen,
                       const void *val, size_t vlen)
{
	const lb_wal_schema *s = &t->schema;
	lb_mp m = {val, (const uint8_t *)val + vlen};
	uint64_t seen[(LB_SCHEMA_FIELDS_MAX + 63) / 64] = {0};
	uint32_t n;
	int bad = 0, rc;
	size_t before = b->nissues_total;

	if (vlen == 0 || lb__mp_peek(&m) != LB_MP_MAP)
		return lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen, NULL,
		                 0, "%s: value is not a msgpack map", t->name);
	if (lb__mp_map(&m, &n) < 0) /* more entries than bytes left */
		return lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen, NULL,
		                 0, "%s: value is not valid msgpack", t->name);
	for (uint32_t i = 0; i < n; i++) {
		const char *name;
		uint32_t nl;
		lb_mp_type kt = lb__mp_peek(&m);
		if (kt != LB_MP_STR && kt != LB_MP_INVALID) {
			/* valid msgpack, but field names are strings */
			lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen, NULL,
			          0,
			          "%s: the name of entry %u of the map is %s, "
			          "not str",
			          t->name, i, mp_type_name(kt));
			if (lb__mp_skip(&m) < 0 || lb__mp_skip(&m) < 0) {
				bad = 1;
				break;
			}
			continue;
		}
		if (kt != LB_MP_STR || lb__mp_str(&m, &name, &nl) < 0) {
			bad = 1;
			break;
		}
		int fi = find_field(s, name, nl);
		if (fi < 0) {
			if (s->closed) {
				char fname[256];
				size_t fl = nl < sizeof fname - 1
				                    ? nl
				                    : sizeof fname - 1;
				memcpy(fname, name, fl);
				fname[fl] = 0;
				lb__issue(b, LB_ISSUE_FORMAT, t->name, key,
				          klen, fname, 0,
				          "%s: unknown field '%s' (the schema "
				          "is closed)",
				          t->name, fname);
			}
			if (lb__mp_skip(&m) < 0) {
				bad = 1;
				break;
			}
			continue;
		}
		if (seen[fi / 64] & (1ull << (fi % 64))) {
			lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen,
			          s->fields[fi].name, 0,
			          "%s: field '%s' appears twice", t->name,
			          s->fields[fi].name);
			if (lb__mp_skip(&m) < 0) {
				bad = 1;
				break;
			}
			continue;
		}
		seen[fi / 64] |= 1ull << (fi % 64);
		rc = check_field(b, t, key, klen, &s->fields[fi],
		                 fi == s->key_fi, &m);
		if (rc == LB_ECORRUPT) {
			bad = 1;
			break;
		}
		if (rc == LB_ENOMEM)
			return rc;
	}
	if (!bad && m.p != m.end)
		return lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen, NULL,
		                 0, "%s: %zu bytes follow the value's map",
		                 t->name, (size_t)(m.end - m.p));
	if (bad)
		return lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen, NULL,
		                 0, "%s: value is not valid msgpack", t->name);
	for (uint32_t i = 0; i < s->nfields; i++)
		if ((s->fields[i].flags & LB_REQUIRED) &&
		    !(seen[i / 64] & (1ull << (i % 64))))
			lb__issue(b, LB_ISSUE_FORMAT, t->name, key, klen,
			          s->fields[i].name, 0,
			          "%s: missing required field '%s'", t->name,
			          s->fields[i].name);
	return b->nissues_total > before ? LB_EVALIDATION : 0;
}

/* ---- references ---------------------------------------------------------- */

typedef struct {
	const void *p;
	uint32_t n;
	int present;
} refval;

/* The value of each ref field of t in a (valid) map; absent or nil fields
 * give present 0. */
static void ref_values(const lb_table *t, const void *val, size_t vlen,
                       refval *out)
{
	for (uint32_t i = 0; i < t->nrefs; i++)
		out[i].present = 0;
	if (!val)
		return;
	lb_mp m = {val, (const uint8_t *)val + vlen};
	uint32_t n;
	if (lb__mp_map(&m, &n) < 0)
		return;
	for (uint32_t e = 0; e < n; e++) {
		const char *name;
		uint32_t nl;
		if (lb__mp_str(&m, &name, &nl) < 0)
			return;
		int hit = -1;
		for (uint32_t i = 0; i < t->nrefs; i++) {
			const lb_sfield *f = &t->schema.fields[t->ref_field[i]];
			if (f->nlen == nl && memcmp(f->name, name, nl) == 0) {
				hit = (int)i;
				break;
			}
		}
		lb_mp_type mt = lb__mp_peek(&m);
		if (hit >= 0 && mt == LB_MP_STR) {
			const char *s;
			if (lb__mp_str(&m, &s, &out[hit].n) < 0)
				return;
			out[hit].p = s;
			out[hit].present = 1;
		} else if (hit >= 0 && mt == LB_MP_BIN) {
			if (lb__mp_bin(&m, &out[hit].p, &out[hit].n) < 0)
				return;
			out[hit].present = 1;
		} else if (lb__mp_skip(&m) < 0) {
			return;
		}
	}
}

int lb__refs_dangling(MDB_txn *txn, const lb_table *t, const void *val,
                      size_t vlen, uint32_t *field)
{
	refval rv[LB_SCHEMA_FIELDS_MAX];
	ref_values(t, val, vlen, rv);
	for (uint32_t i = 0; i < t->nrefs; i++) {
		if (!rv[i].present || rv[i].n == 0 || rv[i].n > LB_KEY_MAX)
			continue;
		MDB_val k = {rv[i].n, (void *)rv[i].p}, v;
		int mrc = mdb_get(txn, t->ref_table[i]->dbi, &k, &v);
		if (mrc == MDB_NOTFOUND) {
			*field = t->ref_field[i];
			return 1;
		}
		if (mrc)
			return lb__mdb_fail(mrc, t->ref_table[i]->name);
	}
	return 0;
}

static int same_target(const lb_table *t, uint32_t i, const refval *a,
                       uint32_t j, const refval *b)
{
	return a[i].present && b[j].present &&
	       t->ref_table[i] == t->ref_table[j] && a[i].n == b[j].n &&
	       memcmp(a[i].p, b[j].p, a[i].n) == 0;
}

static int pend_push(lb_batch *b, uint8_t kind, uint32_t tid, const void *key,
                     size_t klen, uint16_t field, uint32_t ttid,
                     const void *tkey, size_t tklen)
{
	uint8_t h[13];
	h[0] = kind;
	lb__be32(h + 1, tid);
	h[5] = (uint8_t)(klen >> 8);
	h[6] = (uint8_t)klen;
	h[7] = (uint8_t)(field >> 8);
	h[8] = (uint8_t)field;
	lb__be32(h + 9, ttid);
	uint8_t tl[4] = {(uint8_t)(tklen >> 24), (uint8_t)(tklen >> 16),
	                 (uint8_t)(tklen >> 8), (uint8_t)tklen};
	int rc;
	if ((rc = lb__buf_append(&b->pending, h, sizeof h)) < 0 ||
	    (rc = lb__buf_append(&b->pending, key, klen)) < 0 ||
	    (rc = lb__buf_append(&b->pending, tl, 4)) < 0 ||
	    (rc = lb__buf_append(&b->pending, tkey, tklen)) < 0)
		return rc;
	return 0;
}

int lb__refs_update(lb_batch *b, lb_table *t, const void *key, size_t klen,
                    const void *before, size_t blen, const void *after,
                    size_t alen, int queue)
{
	lb_db *db = b->db;
	int rc, mrc;
	if (t->nrefs) {
		refval oldv[LB_SCHEMA_FIELDS_MAX], newv[LB_SCHEMA_FIELDS_MAX];
		uint8_t self[LB__IKEY_MAX], target[LB__IKEY_MAX];
		MDB_val sv = {lb__ikey(self, t->tid, key, klen), self};
		if (!sv.mv_size)
			return LB_ENOMEM;
		ref_values(t, before, blen, oldv);
		ref_values(t, after, alen, newv);
		for (uint32_t i = 0; i < t->nrefs; i++) {
			/* drop old targets that no new field still names */
			if (!oldv[i].present || oldv[i].n == 0 ||
			    oldv[i].n > LB_KEY_MAX)
				continue;
			int kept = 0;
			for (uint32_t j = 0; j < t->nrefs && !kept; j++)
				kept = same_target(t, i, oldv, j, newv);
			for (uint32_t j = 0; j < i && !kept; j++)
				kept = same_target(t, i, oldv, j, oldv);
			if (kept)
				continue;
			MDB_val tk = {lb__ikey(target, t->ref_table[i]->tid,
			                       oldv[i].p, oldv[i].n),
			              target};
			if (!tk.mv_size)
				return LB_ENOMEM;
			mrc = mdb_del(b->txn, db->refs, &tk, &sv);
			if (mrc && mrc != MDB_NOTFOUND)
				return lb__mdb_fail(mrc, "_refs");
		}
		for (uint32_t i = 0; i < t->nrefs; i++) {
			if (!newv[i].present)
				continue;
			int had = 0;
			for (uint32_t j = 0; j < t->nrefs && !had; j++)
				had = same_target(t, i, newv, j, oldv);
			if (had)
				continue;
			uint32_t ttid = t->ref_table[i]->tid;
			if (newv[i].n > 0 && newv[i].n <= LB_KEY_MAX) {
				MDB_val tk = {lb__ikey(target, ttid, newv[i].p,
				                       newv[i].n),
				              target};
				if (!tk.mv_size)
					return LB_ENOMEM;
				mrc = mdb_put(b->txn, db->refs, &tk, &sv,
				              MDB_NODUPDATA);
				if (mrc && mrc != MDB_KEYEXIST)
					return lb__mdb_fail(mrc, "_refs");
			}
			if (queue &&
			    (rc = pend_push(b, LB__PEND_REF, t->tid, key, klen,
			                    (uint16_t)t->ref_field[i], ttid,
			                    newv[i].p, newv[i].n)) < 0)
				return rc;
		}
	}
	if (queue && t->referenced && !after &&
	    (rc = pend_push(b, LB__PEND_DEL, t->tid, key, klen, 0, 0, "", 0)) <
	            0)
		return rc;
	return 0;
}

/* 1 found, 0 not found, or a read failure as a negative code: a damaged or
 * unreadable index must not pass for a missing key. */
static int hit(int mrc, const char *what)
{
	if (mrc == 0)
		return 1;
	if (mrc == MDB_NOTFOUND)
		return 0;
	return lb__mdb_fail(mrc, what);
}

/* The referrer's last committed batch, to name it in an issue (0 if it
 * cannot be read: the issue stands without it). */
static uint64_t last_change(lb_batch *b, const uint8_t *ik, size_t iklen)
{
	uint8_t key[LB_KEY_MAX];
	size_t klen;
	uint64_t id = 0;
	if (iklen < 4)
		return 0;
	lb_table *t =
	        lb__batch_table_by_tid(b, lb__get_be32(ik) & ~LB__TID_HASHED);
	if (!t || lb__ikey_key(b->txn, t, ik, iklen, key, &klen) <= 0 ||
	    lb__hist_last(b->db, b->txn, b, t, key, klen, NULL, 0, NULL, &id) <
	            0)
		id = 0;
	return id;
}

/* Does record key of t (as the batch leaves it) still hold tkey in ref field
 * number `field` of its schema? One lookup, for references that `_refs`
 * cannot hold (an empty value, or one longer than any key). */
static int still_names(lb_batch *b, lb_table *t, const uint8_t *key,
                       size_t klen, uint16_t field, const uint8_t *tkey,
                       size_t tklen)
{
	refval rv[LB_SCHEMA_FIELDS_MAX];
	MDB_val k = {klen, (void *)key}, v;
	int rc = hit(mdb_get(b->txn, t->dbi, &k, &v), t->name);
	if (rc <= 0)
		return rc;
	if ((rc = lb__val_user(&v, t->name)) < 0)
		return rc;
	ref_values(t, v.mv_data, v.mv_size, rv);
	for (uint32_t i = 0; i < t->nrefs; i++)
		if (t->ref_field[i] == field)
			return rv[i].present && rv[i].n == tklen &&
			       (tklen == 0 ||
			        memcmp(rv[i].p, tkey, tklen) == 0);
	return 0;
}

/* One queued check (lb__refs_update's entry): kind, the record (tid, key)
 * and, for a reference, its field and target (ttid, tkey). */
typedef struct pend {
	uint8_t kind;
	uint32_t tid, ttid;
	uint16_t field;
	const uint8_t *key, *tkey;
	size_t klen, tklen;
} pend;

/* Decode the entry at p; returns the next one. */
static const uint8_t *pend_next(const uint8_t *p, pend *e)
{
	e->kind = p[0];
	e->tid = lb__get_be32(p + 1);
	e->klen = ((size_t)p[5] << 8) | p[6];
	e->field = (uint16_t)((p[7] << 8) | p[8]);
	e->ttid = lb__get_be32(p + 9);
	e->key = p + 13;
	e->tklen = lb__get_be32(e->key + e->klen);
	e->tkey = e->key + e->klen + 4;
	return e->tkey + e->tklen;
}

/* A reference the batch wrote: if the record still holds it, its target
 * must exist. c is a cursor on _refs. */
static int check_ref(lb_batch *b, MDB_cursor *c, lb_table *t, const pend *e)
{
	uint8_t self[LB__IKEY_MAX], target[LB__IKEY_MAX];
	char k1[96], k2[96];
	lb_table *rt = lb__batch_table_by_tid(b, e->ttid);
	const char *fname = t->schema.fields[e->field].name;
	int rc, found = 0;
	if (e->tklen > 0 && e->tklen <= LB_KEY_MAX) {
		MDB_val sv = {lb__ikey(self, e->tid, e->key, e->klen), self};
		MDB_val tk = {lb__ikey(target, e->ttid, e->tkey, e->tklen),
		              target};
		if (!sv.mv_size || !tk.mv_size)
			return LB_ENOMEM;
		/* Still referenced by this record? */
		rc = hit(mdb_cursor_get(c, &tk, &sv, MDB_GET_BOTH), "_refs");
		if (rc <= 0)
			return rc;
		MDB_val k = {e->tklen, (void *)e->tkey}, v;
		if (rt && (found = hit(mdb_get(b->txn, rt->dbi, &k, &v),
		                       rt->name)) < 0)
			return found;
	} else {
		/* A value that can be no key has no `_refs` pair: ask the
		 * record itself. */
		rc = still_names(b, t, e->key, e->klen, e->field, e->tkey,
		                 e->tklen);
		if (rc <= 0)
			return rc;
	}
	if (!found)
		lb__issue(b, LB_ISSUE_FOREIGN_KEY, t->name, e->key, e->klen,
		          fname, 0, "%s '%s': %s '%s' names no key of %s",
		          t->name, lb__key_text(e->key, e->klen, k1, sizeof k1),
		          fname, lb__key_text(e->tkey, e->tklen, k2, sizeof k2),
		          t->schema.fields[e->field].ref);
	return 0;
}

/* A record the batch deleted: unless put back, nothing may still name it.
 * c is a cursor on _refs. */
static int check_deleted(lb_batch *b, MDB_cursor *c, lb_table *t, const pend *e)
{
	uint8_t target[LB__IKEY_MAX];
	char k1[96], rk[96];
	MDB_val k = {e->klen, (void *)e->key}, v, rv;
	size_t nref = 0;
	/* put back later in the batch? */
	int rc = hit(mdb_get(b->txn, t->dbi, &k, &v), t->name);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	MDB_val tk = {lb__ikey(target, e->tid, e->key, e->klen), target};
	if (!tk.mv_size)
		return LB_ENOMEM;
	rc = hit(mdb_cursor_get(c, &tk, &rv, MDB_SET_KEY), "_refs");
	if (rc <= 0)
		return rc;
	mdb_cursor_count(c, &nref);
	const uint8_t *r = rv.mv_data;
	if (rv.mv_size < 4)
		return 0;
	uint32_t rtid = lb__get_be32(r);
	lb_table *rt = lb__batch_table_by_tid(b, rtid & ~LB__TID_HASHED);
	if (rtid & LB__TID_HASHED)
		snprintf(rk, sizeof rk, "(a key over %d bytes)",
		         LB_KEY_MAX - 4);
	else
		lb__key_text(r + 4, rv.mv_size - 4, rk, sizeof rk);
	uint64_t rb = b->fk_mode ? last_change(b, r, rv.mv_size) : 0;
	lb__issue(b, LB_ISSUE_FOREIGN_KEY, t->name, e->key, e->klen, NULL, rb,
	          "%s '%s' is still referenced by %s '%s'%s", t->name,
	          lb__key_text(e->key, e->klen, k1, sizeof k1),
	          rt ? rt->name : "?", rk, nref > 1 ? " and others" : "");
	return 0;
}

int lb__fk_check(lb_batch *b)
{
	if (b->pending.len == 0) /* nothing queued (data may be NULL) */
		return b->nissues_total ? LB_EVALIDATION : 0;
	const uint8_t *p = b->pending.data, *end = p + b->pending.len;
	MDB_cursor *c;
	int rc = 0, mrc = mdb_cursor_open(b->txn, b->db->refs, &c);
	if (mrc)
		return lb__mdb_fail(mrc, "_refs");
	while (rc >= 0 && p < end) {
		pend e;
		p = pend_next(p, &e);
		lb_table *t = lb__batch_table_by_tid(b, e.tid);
		if (!t)
			continue;
		if (e.kind == LB__PEND_REF)
			rc = check_ref(b, c, t, &e);
		else
			rc = check_deleted(b, c, t, &e);
	}
	mdb_cursor_close(c);
	if (rc < 0)
		return rc;
	return b->nissues_total ? LB_EVALIDATION : 0;
}
