/* SPDX-License-Identifier: MIT */
/*
 * serve_req.c: request decoding for `logbook serve`.
 *
 * The server turns libmicrohttpd's own unescaping off, so that a key may
 * hold any byte (a '/' as %2F, a NUL as %00) and so that every decoding
 * happens here, in one place that is fuzzed (tests/fuzz/serve_req.c).
 *
 * Invariants: nothing is read past the given lengths; every output fits
 * its fixed buffer (a key is at most LB_KEY_MAX bytes, a table name at most
 * LB_TABLE_NAME_MAX); a request is accepted only if each of its arguments
 * is known to its endpoint, given once, and well-formed.
 */
#include "serve_req.h"
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int cli_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long srv_unescape(const char *s, size_t n, int plus_space, unsigned char *out,
                  size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			int h, l;
			if (n - i < 3)
				return -1;
			h = cli_hexval((unsigned char)s[i + 1]);
			l = cli_hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		} else if (c == '+' && plus_space) {
			c = ' ';
		}
		if (o >= cap)
			return -2;
		out[o++] = (unsigned char)c;
	}
	return (long)o;
}

static int fail(srv_err *e, int status, const char *param, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int fail(srv_err *e, int status, const char *param, const char *fmt, ...)
{
	va_list ap;
	e->status = status;
	snprintf(e->param, sizeof e->param, "%s", param);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	return status;
}

/* A decimal number, 1..20 digits, no sign, within [min, max]. */
static int parse_u64(const unsigned char *s, size_t n, uint64_t min,
                     uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned d;
		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int valid_table(const unsigned char *s, size_t n)
{
	if (n == 0 || n > LB_TABLE_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return 0;
	}
	return 1;
}

/* Which arguments each endpoint takes (a bit per argument). */
enum {
	A_SINCE = 1 << 0,
	A_BEFORE = 1 << 1,
	A_LIMIT = 1 << 2,
	A_OFFSET = 1 << 3,
	A_AS_OF = 1 << 4,
	A_FROM = 1 << 5,
	A_TO = 1 << 6,
	A_CASCADE = 1 << 7,
	A_FORCE = 1 << 8,
	A_REPLAY = 1 << 9,
	A_TOKEN = 1 << 10
};

static const struct {
	const char *name;
	unsigned bit;
} arg_names[] = {
        {"since", A_SINCE},   {"before", A_BEFORE},   {"limit", A_LIMIT},
        {"offset", A_OFFSET}, {"as_of", A_AS_OF},     {"from", A_FROM},
        {"to", A_TO},         {"cascade", A_CASCADE}, {"force", A_FORCE},
        {"replay", A_REPLAY}, {"token", A_TOKEN}};

#define NARG_NAMES (sizeof arg_names / sizeof arg_names[0])

/* A boolean argument: absent value, "", 1, true -> 1; 0, false -> 0. */
static int parse_bool(const unsigned char *s, size_t n, int *out)
{
	if (n == 0 || (n == 1 && s[0] == '1') ||
	    (n == 4 && !memcmp(s, "true", 4))) {
		*out = 1;
		return 0;
	}
	if ((n == 1 && s[0] == '0') || (n == 5 && !memcmp(s, "false", 5))) {
		*out = 0;
		return 0;
	}
	return -1;
}

/* The path split at '/' into at most 5 raw segments (after the leading
 * '/'). Returns the number, or -1 if there are more, or an empty segment
 * other than a trailing one. */
typedef struct seg {
	const char *p;
	size_t n;
} seg;

static int split_path(const char *path, seg *s, int max)
{
	int ns = 0;
	const char *p = path + 1, *end = path + strlen(path);
	while (p <= end) {
		const char *q = memchr(p, '/', (size_t)(end - p));
		if (!q)
			q = end;
		if (q == end && q == p && ns > 0)
			break; /* trailing '/' */
		if (ns == max)
			return -1;
		s[ns].p = p;
		s[ns].n = (size_t)(q - p);
		if (s[ns].n == 0 && !(ns == 0 && q == end))
			return -1;
		ns++;
		p = q + 1;
	}
	return ns;
}

static int seg_is(const seg *s, const char *name)
{
	return s->n == strlen(name) && !memcmp(s->p, name, s->n);
}

/* TABLE/KEY from two raw segments. */
static int table_key(const seg *t, const seg *k, srv_req *r, srv_err *e)
{
	unsigned char buf[LB_TABLE_NAME_MAX];
	long n = srv_unescape(t->p, t->n, 0, buf, sizeof buf);
	if (n == -1)
		return fail(e, 400, "table",
		            "malformed %%-escape in the table");
	if (n < 0 || !valid_table(buf, (size_t)n))
		return fail(e, 400, "table",
		            "not a table name (1..%d bytes of A-Z a-z 0-9 _ . "
		            "-)",
		            LB_TABLE_NAME_MAX);
	memcpy(r->table, buf, (size_t)n);
	r->table[n] = '\0';
	n = srv_unescape(k->p, k->n, 0, r->key, sizeof r->key);
	if (n == -1)
		return fail(e, 400, "key", "malformed %%-escape in the key");
	if (n == -2)
		return fail(e, 400, "key", "key longer than %d bytes",
		            LB_KEY_MAX);
	if (n == 0)
		return fail(e, 400, "key", "empty key");
	r->klen = (size_t)n;
	return 0;
}

/* The batch id of /api/batch/N and /api/rollback/N. */
static int batch_id(const seg *s, srv_req *r, srv_err *e)
{
	unsigned char buf[24];
	long n = srv_unescape(s->p, s->n, 0, buf, sizeof buf);
	if (n < 0 || parse_u64(buf, (size_t)n, 1, UINT64_MAX, &r->id))
		return fail(e, 400, "id",
		            "not a batch id (a decimal number from 1)");
	return 0;
}

/* The resource of path segments s[0..ns): r->ep, and in *allowed the
 * query arguments it takes. */
static int route(const seg *s, int ns, srv_req *r, srv_err *e,
                 unsigned *allowed)
{
	int rc;

	if (ns == 1 && (s[0].n == 0 || seg_is(&s[0], "index.html"))) {
		r->ep = SRV_PAGE;
		*allowed = A_TOKEN;
	} else if (ns >= 2 && seg_is(&s[0], "api")) {
		const seg *a = &s[1];
		if (ns == 2 && seg_is(a, "log")) {
			r->ep = SRV_LOG;
			*allowed = A_SINCE | A_BEFORE | A_LIMIT;
		} else if (ns == 3 && seg_is(a, "batch")) {
			r->ep = SRV_BATCH;
			*allowed = A_LIMIT | A_OFFSET;
			if ((rc = batch_id(&s[2], r, e)))
				return rc;
		} else if (ns == 4 && seg_is(a, "history")) {
			r->ep = SRV_HISTORY;
			*allowed = A_LIMIT;
			if ((rc = table_key(&s[2], &s[3], r, e)))
				return rc;
		} else if (ns == 4 && seg_is(a, "get")) {
			r->ep = SRV_GET;
			*allowed = A_AS_OF;
			if ((rc = table_key(&s[2], &s[3], r, e)))
				return rc;
		} else if (ns == 2 && seg_is(a, "diff")) {
			r->ep = SRV_DIFF;
			*allowed = A_FROM | A_TO | A_LIMIT;
		} else if (ns == 2 && seg_is(a, "tables")) {
			r->ep = SRV_TABLES;
		} else if (ns == 2 && seg_is(a, "stat")) {
			r->ep = SRV_STAT;
		} else if (ns == 2 && seg_is(a, "verify")) {
			r->ep = SRV_VERIFY;
			*allowed = A_REPLAY;
		} else if (ns == 3 && seg_is(a, "rollback")) {
			r->ep = SRV_ROLLBACK;
			*allowed = A_CASCADE | A_FORCE;
			if ((rc = batch_id(&s[2], r, e)))
				return rc;
		} else if (ns == 2 && seg_is(a, "changes")) {
			r->ep = SRV_CHANGES;
			*allowed = A_SINCE;
		} else if ((ns == 2 || ns == 3) &&
		           (seg_is(a, "batch") || seg_is(a, "rollback"))) {
			return fail(e, 400, "id", "a batch id is required");
		} else if ((ns >= 2 && ns <= 4) &&
		           (seg_is(a, "history") || seg_is(a, "get"))) {
			return fail(e, 400, ns == 2 ? "table" : "key",
			            "the path is /api/%.*s/TABLE/KEY",
			            (int)a->n, a->p);
		} else {
			return fail(e, 404, "path", "no such resource");
		}
	} else {
		return fail(e, 404, "path", "no such resource");
	}
	return 0;
}

/* Query argument bit (named pname) with value [val, val + vn) into r. */
static int arg_value(unsigned bit, const char *pname, const unsigned char *val,
                     long vn, srv_req *r, srv_err *e)
{
	switch (bit) {
	case A_SINCE:
		if (parse_u64(val, (size_t)vn, 0, UINT64_MAX, &r->since))
			return fail(e, 400, pname,
			            "not a batch id (a decimal number)");
		r->has_since = 1;
		break;
	case A_BEFORE:
		if (parse_u64(val, (size_t)vn, 1, UINT64_MAX, &r->before))
			return fail(e, 400, pname,
			            "not a batch id (a decimal number "
			            "from 1)");
		r->has_before = 1;
		break;
	case A_AS_OF:
		if (parse_u64(val, (size_t)vn, 0, UINT64_MAX, &r->as_of))
			return fail(e, 400, pname,
			            "not a batch id (a decimal number)");
		r->has_as_of = 1;
		break;
	case A_FROM:
		if (parse_u64(val, (size_t)vn, 0, UINT64_MAX, &r->from))
			return fail(e, 400, pname,
			            "not a batch id (a decimal number)");
		r->has_from = 1;
		break;
	case A_TO:
		if (parse_u64(val, (size_t)vn, 1, UINT64_MAX, &r->to))
			return fail(e, 400, pname,
			            "not a batch id (a decimal number "
			            "from 1)");
		r->has_to = 1;
		break;
	case A_LIMIT: {
		uint64_t max = r->ep == SRV_LOG       ? SRV_LOG_LIMIT_MAX
		               : r->ep == SRV_BATCH   ? SRV_BATCH_LIMIT_MAX
		               : r->ep == SRV_HISTORY ? SRV_HISTORY_LIMIT_MAX
		                                      : SRV_DIFF_LIMIT_MAX;
		if (parse_u64(val, (size_t)vn, 1, max, &r->limit))
			return fail(e, 400, pname,
			            "not a number from 1 to %llu",
			            (unsigned long long)max);
		break;
	}
	case A_OFFSET:
		if (parse_u64(val, (size_t)vn, 0, UINT64_MAX, &r->offset))
			return fail(e, 400, pname, "not a decimal number");
		break;
	case A_CASCADE:
		if (parse_bool(val, (size_t)vn, &r->cascade))
			return fail(e, 400, pname,
			            "not a boolean (1, 0, true, false)");
		break;
	case A_FORCE:
		if (parse_bool(val, (size_t)vn, &r->force))
			return fail(e, 400, pname,
			            "not a boolean (1, 0, true, false)");
		break;
	case A_REPLAY:
		if (parse_bool(val, (size_t)vn, &r->replay))
			return fail(e, 400, pname,
			            "not a boolean (1, 0, true, false)");
		break;
	default:
		break;
	}
	return 0;
}

int srv_req_parse(const char *path, const srv_arg *args, size_t nargs,
                  srv_req *r, srv_err *e)
{
	seg s[5];
	int ns, rc;
	unsigned allowed = 0, seen = 0;

	memset(r, 0, sizeof *r);
	memset(e, 0, sizeof *e);
	if (!path || path[0] != '/')
		return fail(e, 400, "path", "the path must begin with '/'");
	if (strlen(path) > SRV_PATH_MAX)
		return fail(e, 400, "path", "path longer than %d bytes",
		            SRV_PATH_MAX);
	if (nargs > SRV_ARGS_MAX)
		return fail(e, 400, "query", "more than %d query arguments",
		            SRV_ARGS_MAX);
	ns = split_path(path, s, 5);
	if (ns < 0)
		return fail(e, 404, "path", "no such resource");
	if ((rc = route(s, ns, r, e, &allowed)))
		return rc;

	switch (r->ep) {
	case SRV_LOG:
		r->limit = SRV_LOG_LIMIT;
		break;
	case SRV_BATCH:
		r->limit = SRV_BATCH_LIMIT;
		break;
	case SRV_HISTORY:
		r->limit = SRV_HISTORY_LIMIT;
		break;
	case SRV_DIFF:
		r->limit = SRV_DIFF_LIMIT;
		break;
	default:
		break;
	}

	for (size_t i = 0; i < nargs; i++) {
		unsigned char name[16], val[72];
		long nn, vn = 0;
		unsigned bit = 0;
		const char *pname = NULL;
		nn = args[i].name
		             ? srv_unescape(args[i].name, strlen(args[i].name),
		                            1, name, sizeof name)
		             : -1;
		if (nn < 0)
			return fail(e, 400, "query",
			            "malformed or unknown argument name");
		for (size_t j = 0; j < NARG_NAMES; j++)
			if ((size_t)nn == strlen(arg_names[j].name) &&
			    !memcmp(name, arg_names[j].name, (size_t)nn)) {
				bit = arg_names[j].bit;
				pname = arg_names[j].name;
			}
		if (!bit || !(allowed & bit)) {
			char shown[16];
			size_t k, m = 0;
			for (k = 0; k < (size_t)nn && m + 1 < sizeof shown; k++)
				shown[m++] =
				        (name[k] >= 'a' && name[k] <= 'z') ||
				                        name[k] == '_'
				                ? (char)name[k]
				                : '?';
			shown[m] = '\0';
			return fail(e, 400,
			            bit ? pname
			            : m ? shown
			                : "query",
			            "argument not taken by this resource");
		}
		if (seen & bit)
			return fail(e, 400, pname, "argument given twice");
		seen |= bit;
		if (bit == A_TOKEN) {
			r->has_token = 1;
			continue; /* checked by the server, never decoded here
			           */
		}
		if (args[i].value) {
			vn = srv_unescape(args[i].value, strlen(args[i].value),
			                  1, val, sizeof val);
			if (vn == -1)
				return fail(e, 400, pname,
				            "malformed %%-escape");
			if (vn < 0)
				return fail(e, 400, pname, "value too long");
		}
		if ((rc = arg_value(bit, pname, val, vn, r, e)))
			return rc;
	}

	if (r->ep == SRV_ROLLBACK && r->cascade && r->force)
		return fail(e, 400, "force",
		            "cascade and force exclude each "
		            "other");
	if (r->ep == SRV_DIFF) {
		if (!r->has_from)
			return fail(e, 400, "from", "required");
		if (!r->has_to)
			return fail(e, 400, "to", "required");
		if (r->to <= r->from)
			return fail(e, 400, "to", "must be greater than from");
		if (r->to - r->from > SRV_DIFF_SPAN_MAX)
			return fail(e, 400, "to",
			            "at most %d batches after from",
			            SRV_DIFF_SPAN_MAX);
	}
	return 0;
}
