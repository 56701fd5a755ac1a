/* SPDX-License-Identifier: MIT */
/*
 * serve.c: `logbook serve`, a read-only HTTP server over one database: a
 * JSON API and one embedded page (serve_page.c). docs/SERVE.md is the
 * user's guide.
 *
 * Design:
 *  - libmicrohttpd, one thread per connection (bounded by
 *    SERVE_CONNECTIONS), so that a server-sent event stream may block in
 *    its own thread while the other requests go on. lb_db is shared by the
 *    threads, as the library allows.
 *  - libmicrohttpd's unescaping is turned off: the raw path and query
 *    arguments go to srv_req_parse() (serve_req.c), which validates every
 *    parameter, so a bad request is a 4xx JSON error naming the parameter
 *    and never reaches the library.
 *  - No write endpoint exists. The database is opened read-write only
 *    because the rollback preview is lb_rollback() with LB_DRYRUN, which
 *    works inside a write transaction that it aborts; where the directory
 *    is not writable the server opens it read-only and the preview answers
 *    503.
 *  - Every answer is bounded: lists are paginated with capped limits, a
 *    diff spans at most SRV_DIFF_SPAN_MAX batches (lb_diff() holds their
 *    changes) and writes at most its limit of keys, verify runs one at a time,
 * at most SERVE_STREAMS event streams.
 *  - Off loopback a bearer token is required (--token FILE), checked in
 *    constant time on every request; the page, which a browser navigates
 *    to, may carry it as ?token= instead of the Authorization header. On
 *    loopback without a token, the Host header must name a loopback host
 *    (a page on another site cannot reach the server by DNS rebinding).
 */
#include "cli.h"
#include "serve_req.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	SERVE_CONNECTIONS = 64, /* open connections, most */
	SERVE_STREAMS = 16,     /* /api/changes streams, most */
	SERVE_TIMEOUT = 60,     /* idle connection, seconds */
	STAT_BATCHES_MAX = 1000000,
	TOKEN_MAX = 4096,
	STREAM_KEEPALIVE_MS = 15000,
	STREAM_POLL_MS = 250, /* longest wait before the stop flag is seen */
	STREAM_BACKLOG_MAX = 1000 /* events sent for batches before since */
};

/* serve_page.c: the page, and its length in *len */
const char *srv_page(size_t *len);

typedef struct server {
	lb_db *db;
	int rdonly;
	char *token;
	size_t tlen;
	int loopback;
	int allow_replay;
	atomic_int stop;
	atomic_int streams;
	pthread_mutex_t cat_lock;
	cli_catalog cat;
	uint64_t cat_batch;
	int cat_loaded;
	pthread_mutex_t verify_lock;
	pthread_mutex_t rollback_lock;
} server;

/* ---- responses ----------------------------------------------------------- */

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status,
                                 sbuf *b, const char *ctype)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len = b->len;
	char *p = b->p;
	if (!p) {
		p = cli_xmalloc(1);
		len = 0;
	}
	b->p = NULL;
	b->len = b->cap = 0;
	r = MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(p);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status,
                                 sbuf *b)
{
	sb_putc(b, '\n');
	return send_body(c, status, b, "application/json; charset=utf-8");
}

/* {"error": message, "param": name, "status": status} */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
                                  const char *param, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
                                  const char *param, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	sbuf b;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sb_init(&b);
	sb_puts(&b, "{\"error\":");
	jw_str(&b, msg,
	       cli_utf8_valid(msg, strlen(msg)) ? strlen(msg) : (size_t)0);
	sb_puts(&b, ",\"param\":");
	jw_cstr_or_null(&b, param);
	sb_printf(&b, ",\"status\":%u}", status);
	return send_json(c, status, &b);
}

/* A library failure: its HTTP status, the parameter it concerns. */
static enum MHD_Result send_lberr(struct MHD_Connection *c, int rc,
                                  const char *param, const char *what)
{
	unsigned st;
	switch (rc) {
	case LB_ENOTFOUND:
		st = MHD_HTTP_NOT_FOUND;
		break;
	case LB_EPRUNED:
		st = MHD_HTTP_GONE;
		break;
	case LB_EINVAL:
	case LB_ETOOBIG:
		st = MHD_HTTP_BAD_REQUEST;
		break;
	case LB_EBUSY:
		st = MHD_HTTP_SERVICE_UNAVAILABLE;
		break;
	default:
		st = MHD_HTTP_INTERNAL_SERVER_ERROR;
		param = NULL;
		break;
	}
	return send_error(c, st, param, "%s: %s (%s)", what, lb_strerror(rc),
	                  cli_words(lb_errmsg()));
}

/* ---- the table catalog, reloaded when the log grows ----------------------
 */

/* Whether TABLE exists and has a schema, from a catalog reloaded whenever
 * the log has grown since it was read (creating or altering a table is a
 * batch). Returns 0, LB_ENOTFOUND, or an lb error. */
static int table_kind(server *s, const char *table, int *has_schema)
{
	uint64_t last;
	int rc = lb_last_batch(s->db, &last);
	cli_table *t;
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&s->cat_lock);
	if (!s->cat_loaded || s->cat_batch != last) {
		cli_catalog_free(&s->cat);
		rc = cli_catalog_load(s->db, &s->cat);
		if (rc < 0) {
			s->cat_loaded = 0;
			pthread_mutex_unlock(&s->cat_lock);
			return rc;
		}
		s->cat_loaded = 1;
		s->cat_batch = last;
	}
	t = cli_catalog_find(&s->cat, table);
	if (t)
		*has_schema = t->has_schema;
	pthread_mutex_unlock(&s->cat_lock);
	return t ? 0 : LB_ENOTFOUND;
}

/* A stored value: msgpack -> JSON for a schema table, {"base64": ...} for
 * an opaque one. */
static void value_json(sbuf *b, int schema, const void *v, size_t n)
{
	if (schema) {
		jw_value(b, 1, v, n);
		return;
	}
	sb_puts(b, "{\"base64\":\"");
	cli_b64_encode(b, v, n);
	sb_puts(b, "\"}");
}

/* One change record as JSON: {"op","table","key","before","after"}. The
 * schema flag of the record's table comes from the catalog. */
static void change_json(server *s, sbuf *b, const lb_change *c)
{
	int schema = 1;
	if (c->op != LB_OP_TABLE && table_kind(s, c->table, &schema) < 0)
		schema = 0;
	cli_change_head(b, c);
	sb_puts(b, ",\"before\":");
	if (c->has_before)
		value_json(b, schema, c->before, c->blen);
	else
		sb_puts(b, "null");
	sb_puts(b, ",\"after\":");
	if (c->has_after)
		value_json(b, schema, c->after, c->alen);
	else
		sb_puts(b, "null");
	sb_putc(b, '}');
}

static int last_batch(server *s, uint64_t *last)
{
	return lb_last_batch(s->db, last);
}

/* ---- /api/log ------------------------------------------------------------ */

static enum MHD_Result api_log(server *s, struct MHD_Connection *c,
                               const srv_req *r)
{
	uint64_t last, id, n = 0;
	sbuf b;
	int rc = last_batch(s, &last);
	if (rc < 0)
		return send_lberr(c, rc, NULL, "cannot read the log");
	id = last;
	if (r->has_before && r->before - 1 < id)
		id = r->before - 1;
	sb_init(&b);
	sb_printf(&b, "{\"last\":%" PRIu64 ",\"batches\":[", last);
	for (; id > r->since && n < r->limit; id--) {
		lb_batch_info bi;
		rc = lb_batch_info_get(s->db, id, &bi);
		if (rc == LB_ENOTFOUND)
			continue;
		if (rc < 0) {
			sb_free(&b);
			return send_lberr(c, rc, NULL, "cannot read the log");
		}
		if (n++)
			sb_putc(&b, ',');
		cli_batch_info_json(&b, &bi);
	}
	sb_puts(&b, "],\"next_before\":");
	if (id > r->since)
		jw_u64(&b, id + 1);
	else
		sb_puts(&b, "null");
	sb_putc(&b, '}');
	return send_json(c, MHD_HTTP_OK, &b);
}

/* ---- /api/batch/N -------------------------------------------------------- */

typedef struct batch_ctx {
	server *s;
	sbuf *b;
	uint64_t i, offset, limit, n;
} batch_ctx;

static int batch_cb(void *ctx, const lb_change *c)
{
	batch_ctx *x = ctx;
	uint64_t i = x->i++;
	if (i < x->offset)
		return 0;
	if (x->n >= x->limit)
		return 1;
	if (x->n++)
		sb_putc(x->b, ',');
	sb_printf(x->b, "{\"i\":%" PRIu64 ",\"change\":", i);
	change_json(x->s, x->b, c);
	sb_putc(x->b, '}');
	return 0;
}

static enum MHD_Result api_batch(server *s, struct MHD_Connection *c,
                                 const srv_req *r)
{
	lb_batch_info bi;
	batch_ctx x;
	sbuf b;
	int rc = lb_batch_info_get(s->db, r->id, &bi);
	if (rc == LB_ENOTFOUND)
		return send_error(c, MHD_HTTP_NOT_FOUND, "id",
		                  "no batch %" PRIu64, r->id);
	if (rc < 0)
		return send_lberr(c, rc, "id", "cannot read the batch");
	sb_init(&b);
	sb_puts(&b, "{\"batch\":");
	cli_batch_info_json(&b, &bi);
	sb_printf(&b,
	          ",\"offset\":%" PRIu64 ",\"limit\":%" PRIu64
	          ",\"total\":%" PRIu64 ",\"changes\":[",
	          r->offset, r->limit, bi.records);
	memset(&x, 0, sizeof x);
	x.s = s;
	x.b = &b;
	x.offset = r->offset;
	x.limit = r->limit;
	rc = bi.pruned || r->offset >= bi.records
	             ? 0
	             : lb_changes(s->db, r->id, batch_cb, &x);
	if (rc < 0) {
		sb_free(&b);
		return send_lberr(c, rc, "id", "cannot read the changes");
	}
	sb_printf(&b, "],\"more\":%s}",
	          r->offset + x.n < bi.records && !bi.pruned ? "true"
	                                                     : "false");
	return send_json(c, MHD_HTTP_OK, &b);
}

/* ---- /api/history/TABLE/KEY ---------------------------------------------- */

typedef struct hist_ctx {
	server *s;
	sbuf *b;
	uint64_t n, limit, info_id;
	int have, truncated;
	lb_batch_info info;
} hist_ctx;

static int hist_cb(void *ctx, uint64_t batch, const lb_change *c)
{
	hist_ctx *x = ctx;
	if (x->n >= x->limit) {
		x->truncated = 1;
		return 1;
	}
	if (x->info_id != batch) {
		x->have = lb_batch_info_get(x->s->db, batch, &x->info) == 0;
		x->info_id = batch;
	}
	if (x->n++)
		sb_putc(x->b, ',');
	sb_printf(x->b, "{\"batch\":%" PRIu64 ",\"time\":", batch);
	if (x->have) {
		sb_putc(x->b, '"');
		cli_time(x->b, x->info.time_ns);
		sb_puts(x->b, "\",\"label\":");
		jw_cstr(x->b,
		        cli_utf8_valid(x->info.label, strlen(x->info.label))
		                ? x->info.label
		                : "");
	} else {
		sb_puts(x->b, "null,\"label\":null");
	}
	if (c) {
		sb_puts(x->b, ",\"change\":");
		change_json(x->s, x->b, c);
		sb_putc(x->b, '}');
	} else {
		sb_puts(x->b, ",\"pruned\":true}");
	}
	return 0;
}

static void table_key_json(sbuf *b, const srv_req *r)
{
	sb_puts(b, "\"table\":");
	jw_cstr(b, r->table);
	sb_puts(b, ",\"key\":");
	jw_bytes(b, r->key, r->klen);
}

static enum MHD_Result api_history(server *s, struct MHD_Connection *c,
                                   const srv_req *r)
{
	hist_ctx x;
	sbuf b;
	int schema, rc = table_kind(s, r->table, &schema);
	if (rc == LB_ENOTFOUND)
		return send_error(c, MHD_HTTP_NOT_FOUND, "table",
		                  "no table '%s'", r->table);
	if (rc < 0)
		return send_lberr(c, rc, NULL, "cannot list the tables");
	sb_init(&b);
	sb_putc(&b, '{');
	table_key_json(&b, r);
	sb_puts(&b, ",\"changes\":[");
	memset(&x, 0, sizeof x);
	x.s = s;
	x.b = &b;
	x.limit = r->limit;
	rc = lb_history(s->db, r->table, r->key, r->klen, hist_cb, &x);
	if (rc < 0) {
		sb_free(&b);
		return send_lberr(c, rc, "key", "cannot read the history");
	}
	sb_printf(&b, "],\"truncated\":%s}", x.truncated ? "true" : "false");
	return send_json(c, MHD_HTTP_OK, &b);
}

/* ---- /api/get/TABLE/KEY?as_of=N ----------------------------------------- */

static enum MHD_Result api_get(server *s, struct MHD_Connection *c,
                               const srv_req *r)
{
	sbuf b;
	uint64_t last;
	void *v = NULL;
	size_t vl = 0;
	int schema = 1, rc = table_kind(s, r->table, &schema);
	if (rc < 0 && !(rc == LB_ENOTFOUND && r->has_as_of)) {
		/* as of a past batch, a table since removed is still asked */
		if (rc == LB_ENOTFOUND)
			return send_error(c, MHD_HTTP_NOT_FOUND, "table",
			                  "no table '%s'", r->table);
		return send_lberr(c, rc, NULL, "cannot list the tables");
	}
	if (r->has_as_of) {
		if ((rc = last_batch(s, &last)) < 0)
			return send_lberr(c, rc, NULL, "cannot read the log");
		if (r->as_of > last)
			return send_error(c, MHD_HTTP_NOT_FOUND, "as_of",
			                  "no batch %" PRIu64
			                  " (the last is %" PRIu64 ")",
			                  r->as_of, last);
		rc = lb_get_asof(s->db, r->as_of, r->table, r->key, r->klen, &v,
		                 &vl);
	} else {
		rc = lb_get(s->db, r->table, r->key, r->klen, &v, &vl);
	}
	if (rc == LB_ENOTFOUND) {
		if (r->has_as_of)
			return send_error(
			        c, MHD_HTTP_NOT_FOUND, "key",
			        "no such key in '%s' as of batch %" PRIu64,
			        r->table, r->as_of);
		return send_error(c, MHD_HTTP_NOT_FOUND, "key",
		                  "no such key in '%s'", r->table);
	}
	if (rc == LB_EPRUNED)
		return send_error(c, MHD_HTTP_GONE, "as_of",
		                  "the value as of batch %" PRIu64
		                  " is in a pruned log",
		                  r->as_of);
	if (rc < 0)
		return send_lberr(c, rc, "key", "cannot read the key");
	sb_init(&b);
	sb_putc(&b, '{');
	table_key_json(&b, r);
	sb_puts(&b, ",\"as_of\":");
	if (r->has_as_of)
		jw_u64(&b, r->as_of);
	else
		sb_puts(&b, "null");
	sb_puts(&b, ",\"value\":");
	value_json(&b, schema, v, vl);
	sb_putc(&b, '}');
	free(v);
	return send_json(c, MHD_HTTP_OK, &b);
}

/* ---- /api/diff?from=A&to=B ----------------------------------------------- */

typedef struct diff_ctx {
	server *s;
	sbuf *b;
	uint64_t n, total, limit;
} diff_ctx;

/* lb_diff() hands out every differing key, in table then key order: the
 * first `limit` are written, the rest only counted. */
static int diff_cb(void *ctx, const lb_change *c)
{
	diff_ctx *x = ctx;
	x->total++;
	if (x->n >= x->limit)
		return 0;
	if (x->n++)
		sb_putc(x->b, ',');
	if (c->op == LB_OP_TABLE) {
		sb_puts(x->b, "{\"op\":\"table\",\"table\":");
		jw_cstr(x->b, c->table);
		sb_puts(x->b, ",\"key\":null,\"before\":");
		if (c->has_before)
			jw_value(x->b, 1, c->before, c->blen);
		else
			sb_puts(x->b, "null");
		sb_puts(x->b, ",\"after\":");
		if (c->has_after)
			jw_value(x->b, 1, c->after, c->alen);
		else
			sb_puts(x->b, "null");
		sb_putc(x->b, '}');
		return 0;
	}
	change_json(x->s, x->b, c);
	return 0;
}

static enum MHD_Result api_diff(server *s, struct MHD_Connection *c,
                                const srv_req *r)
{
	uint64_t last;
	diff_ctx x;
	sbuf b;
	int rc = last_batch(s, &last);
	if (rc < 0)
		return send_lberr(c, rc, NULL, "cannot read the log");
	if (r->to > last)
		return send_error(c, MHD_HTTP_NOT_FOUND, "to",
		                  "no batch %" PRIu64 " (the last is %" PRIu64
		                  ")",
		                  r->to, last);
	sb_init(&b);
	sb_printf(&b, "{\"from\":%" PRIu64 ",\"to\":%" PRIu64 ",\"changes\":[",
	          r->from, r->to);
	memset(&x, 0, sizeof x);
	x.s = s;
	x.b = &b;
	x.limit = r->limit;
	rc = lb_diff(s->db, r->from, r->to, diff_cb, &x);
	if (rc == LB_EPRUNED) {
		sb_free(&b);
		return send_error(c, MHD_HTTP_GONE, "from",
		                  "a batch between %" PRIu64 " and %" PRIu64
		                  " was pruned",
		                  r->from, r->to);
	}
	if (rc < 0) {
		sb_free(&b);
		return send_lberr(c, rc, NULL, "cannot diff");
	}
	sb_printf(&b, "],\"total\":%" PRIu64 ",\"truncated\":%s}", x.total,
	          x.total > x.n ? "true" : "false");
	return send_json(c, MHD_HTTP_OK, &b);
}

/* ---- /api/tables, /api/stat, /api/verify --------------------------------- */

static enum MHD_Result api_tables(server *s, struct MHD_Connection *c)
{
	cli_catalog cat;
	sbuf b;
	int rc = cli_catalog_load(s->db, &cat);
	if (rc < 0)
		return send_lberr(c, rc, NULL, "cannot list the tables");
	sb_init(&b);
	sb_puts(&b, "{\"tables\":[");
	for (size_t i = 0; i < cat.n; i++) {
		sb_printf(&b, "%s{\"name\":", i ? "," : "");
		jw_cstr(&b, cat.t[i].name);
		sb_printf(&b, ",\"records\":%" PRIu64 ",\"schema\":",
		          cat.t[i].records);
		if (cat.t[i].has_schema)
			cli_table_json(&b, &cat.t[i]);
		else
			sb_puts(&b, "null");
		sb_putc(&b, '}');
	}
	sb_puts(&b, "]}");
	cli_catalog_free(&cat);
	return send_json(c, MHD_HTTP_OK, &b);
}

typedef struct ckpt_ctx {
	sbuf *b;
	int n;
} ckpt_ctx;

static int ckpt_cb(void *ctx, uint64_t batch, const char *path, int64_t time_ns)
{
	ckpt_ctx *x = ctx;
	(void)path; /* no file-system paths leave the server */
	sb_printf(x->b, "%s{\"batch\":%" PRIu64 ",\"time\":\"",
	          x->n++ ? "," : "", batch);
	cli_time(x->b, time_ns);
	sb_puts(x->b, "\"}");
	return 0;
}

static enum MHD_Result api_stat(server *s, struct MHD_Connection *c)
{
	uint64_t last, raw = 0, stored = 0, records = 0, rolled = 0, pruned = 0,
	               counted = 0, trecords = 0;
	cli_catalog cat;
	ckpt_ctx ck;
	sbuf b;
	int rc = last_batch(s, &last);
	if (rc < 0)
		return send_lberr(c, rc, NULL, "cannot read the log");
	for (uint64_t id = last; id >= 1 && counted < STAT_BATCHES_MAX;
	     id--, counted++) {
		lb_batch_info bi;
		rc = lb_batch_info_get(s->db, id, &bi);
		if (rc == LB_ENOTFOUND)
			continue;
		if (rc < 0)
			return send_lberr(c, rc, NULL, "cannot read the log");
		records += bi.records;
		if (bi.pruned) {
			pruned++;
			continue;
		}
		raw += bi.raw_bytes;
		stored += bi.stored_bytes;
		if (bi.rolled_back_by)
			rolled++;
	}
	rc = cli_catalog_load(s->db, &cat);
	if (rc < 0)
		return send_lberr(c, rc, NULL, "cannot list the tables");
	for (size_t i = 0; i < cat.n; i++)
		trecords += cat.t[i].records;
	sb_init(&b);
	sb_printf(&b,
	          "{\"version\":\"%d.%d.%d\",\"format\":%d,\"read_only\":%s,"
	          "\"last_batch\":%" PRIu64 ",\"tables\":%zu,"
	          "\"table_records\":%" PRIu64
	          ",\"log\":{\"batches_counted\":%" PRIu64
	          ",\"change_records\":%" PRIu64 ",\"raw_bytes\":%" PRIu64
	          ",\"stored_bytes\":%" PRIu64 ",\"rolled_back\":%" PRIu64
	          ",\"pruned\":%" PRIu64 "}",
	          LB_VERSION_MAJOR, LB_VERSION_MINOR, LB_VERSION_PATCH,
	          LB_FORMAT_VERSION, s->rdonly ? "true" : "false", last, cat.n,
	          trecords, counted, records, raw, stored, rolled, pruned);
	cli_catalog_free(&cat);
	sb_puts(&b, ",\"checkpoints\":[");
	ck.b = &b;
	ck.n = 0;
	rc = lb_checkpoints(s->db, ckpt_cb, &ck);
	if (rc < 0) {
		sb_free(&b);
		return send_lberr(c, rc, NULL, "cannot list the checkpoints");
	}
	sb_puts(&b, "]}");
	return send_json(c, MHD_HTTP_OK, &b);
}

static enum MHD_Result api_verify(server *s, struct MHD_Connection *c,
                                  const srv_req *r)
{
	lb_verify_report rep;
	sbuf b;
	int rc;
	if (r->replay && !s->allow_replay)
		return send_error(c, MHD_HTTP_FORBIDDEN, "replay",
		                  "verify with replay is off (start the server "
		                  "with --allow-replay-verify)");
	if (pthread_mutex_trylock(&s->verify_lock))
		return send_error(c, MHD_HTTP_TOO_MANY_REQUESTS, NULL,
		                  "a verify is running; try again when it "
		                  "ends");
	rc = lb_verify(s->db, r->replay ? LB_VERIFY_REPLAY : 0, &rep);
	pthread_mutex_unlock(&s->verify_lock);
	if (rc < 0 && rc != LB_ECORRUPT)
		return send_lberr(c, rc, NULL, "cannot verify");
	sb_init(&b);
	sb_printf(&b,
	          "{\"ok\":%s,\"replay\":%s,\"batches\":%" PRIu64
	          ",\"segments\":%" PRIu64 ",\"records\":%" PRIu64
	          ",\"chain_ok\":%s,\"replay_ok\":",
	          rc == 0 ? "true" : "false", r->replay ? "true" : "false",
	          rep.batches, rep.segments, rep.records,
	          rep.chain_ok ? "true" : "false");
	if (r->replay)
		sb_puts(&b, rep.replay_ok ? "true" : "false");
	else
		sb_puts(&b, "null");
	sb_puts(&b, ",\"bad_batch\":");
	if (rc && rep.bad_batch)
		jw_u64(&b, rep.bad_batch);
	else
		sb_puts(&b, "null");
	sb_puts(&b, ",\"detail\":");
	rep.detail[sizeof rep.detail - 1] = '\0';
	jw_cstr(&b, rc && cli_utf8_valid(rep.detail, strlen(rep.detail))
	                    ? cli_words(rep.detail)
	                    : "");
	sb_putc(&b, '}');
	return send_json(c, MHD_HTTP_OK, &b);
}

/* ---- /api/rollback/N: the preview ---------------------------------------- */

static void ids_json(sbuf *b, const uint64_t *ids, size_t n)
{
	sb_putc(b, '[');
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "%s%" PRIu64, i ? "," : "", ids[i]);
	sb_putc(b, ']');
}

static enum MHD_Result api_rollback(server *s, struct MHD_Connection *c,
                                    const srv_req *r)
{
	lb_result res;
	lb_batch_info bi;
	uint64_t last, *ids;
	unsigned flags = LB_DRYRUN | (r->cascade ? LB_CASCADE : 0) |
	                 (r->force ? LB_FORCE : 0);
	size_t n;
	sbuf b;
	int rc;
	if (s->rdonly)
		return send_error(
		        c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
		        "the server opened the database read-only "
		        "(its directory is not writable): no rollback "
		        "preview");
	if ((rc = last_batch(s, &last)) < 0)
		return send_lberr(c, rc, NULL, "cannot read the log");
	if (r->id > last)
		return send_error(c, MHD_HTTP_NOT_FOUND, "id",
		                  "no batch %" PRIu64, r->id);
	memset(&res, 0, sizeof res);
	pthread_mutex_lock(&s->rollback_lock);
	rc = lb_rollback(s->db, r->id, flags, &res);
	pthread_mutex_unlock(&s->rollback_lock);
	if (rc < 0 && rc != LB_ECONFLICT && rc != LB_EVALIDATION) {
		enum MHD_Result ret;
		if (rc == LB_EINVAL)
			ret = send_error(c, MHD_HTTP_CONFLICT, "id",
			                 "batch %" PRIu64 " cannot be rolled "
			                 "back: %s",
			                 r->id, cli_words(lb_errmsg()));
		else
			ret = send_lberr(c, rc, "id", "cannot preview");
		lb_result_free(&res);
		return ret;
	}
	sb_init(&b);
	sb_printf(&b,
	          "{\"batch\":%" PRIu64 ",\"dry_run\":true,\"cascade\":%s,"
	          "\"force\":%s,\"ok\":%s,\"error\":",
	          r->id, r->cascade ? "true" : "false",
	          r->force ? "true" : "false", rc == 0 ? "true" : "false");
	if (rc == 0)
		sb_puts(&b, "null");
	else
		jw_cstr(&b, rc == LB_ECONFLICT ? "conflict" : "validation");
	sb_printf(&b, ",\"records\":%" PRIu64 ",\"undone\":[", res.records);
	n = res.undone ? res.nundone : 0;
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_putc(&b, ',');
		if (i < 1000 &&
		    lb_batch_info_get(s->db, res.undone[i], &bi) == 0) {
			cli_batch_info_json(&b, &bi);
		} else {
			sb_printf(&b, "{\"id\":%" PRIu64 "}", res.undone[i]);
		}
	}
	ids = cli_xmalloc((res.nissues + 1) * sizeof *ids);
	sb_puts(&b, "],\"conflicting_batches\":");
	ids_json(&b, ids, cli_issue_batches(&res, LB_ISSUE_CONFLICT, ids));
	sb_puts(&b, ",\"blocking_batches\":");
	ids_json(&b, ids, cli_issue_batches(&res, LB_ISSUE_FOREIGN_KEY, ids));
	free(ids);
	sb_puts(&b, ",\"issues\":[");
	for (size_t i = 0; i < res.nissues; i++) {
		const lb_issue *is = &res.issues[i];
		if (i)
			sb_putc(&b, ',');
		cli_issue_fmt(&b, 0, cli_issue_kind(is->kind), is->table,
		              is->key, is->klen, is->field, is->message,
		              is->batch);
	}
	sb_printf(&b, "],\"issues_total\":%zu}", res.nissues_total);
	lb_result_free(&res);
	return send_json(c, MHD_HTTP_OK, &b);
}

/* ---- /api/changes: server-sent events ------------------------------------ */

typedef struct stream {
	server *s;
	uint64_t next; /* next batch to send */
	sbuf pending;
	size_t off;
	int idle_ms;
} stream;

static void stream_event(stream *st, const lb_batch_info *bi)
{
	sb_printf(&st->pending,
	          "id: %" PRIu64 "\nevent: batch\ndata: ", bi->id);
	cli_batch_info_json(&st->pending, bi);
	sb_puts(&st->pending, "\n\n");
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	stream *st = cls;
	(void)pos;
	for (;;) {
		if (st->off < st->pending.len) {
			size_t n = st->pending.len - st->off;
			if (n > max)
				n = max;
			memcpy(buf, st->pending.p + st->off, n);
			st->off += n;
			return (ssize_t)n;
		}
		st->pending.len = 0;
		st->off = 0;
		if (atomic_load(&st->s->stop))
			return MHD_CONTENT_READER_END_OF_STREAM;
		uint64_t last;
		int rc;
		if (lb_last_batch(st->s->db, &last) < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		while (st->next <= last && st->pending.len < 65536) {
			lb_batch_info bi;
			rc = lb_batch_info_get(st->s->db, st->next, &bi);
			if (rc < 0 && rc != LB_ENOTFOUND)
				return MHD_CONTENT_READER_END_WITH_ERROR;
			if (rc == 0)
				stream_event(st, &bi);
			st->next++;
		}
		if (st->pending.len) {
			st->idle_ms = 0;
			continue;
		}
		if (st->idle_ms >= STREAM_KEEPALIVE_MS) {
			st->idle_ms = 0;
			sb_printf(&st->pending, ": last %" PRIu64 "\n\n", last);
			continue;
		}
		/* the feed: sleep until a batch commits, waking now and
		 * then to see whether the server is stopping */
		rc = lb_wait(st->s->db, last, STREAM_POLL_MS, &last);
		if (rc < 0 && rc != LB_EBUSY)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (rc == LB_EBUSY)
			st->idle_ms += STREAM_POLL_MS;
	}
}

static void stream_free(void *cls)
{
	stream *st = cls;
	atomic_fetch_sub(&st->s->streams, 1);
	sb_free(&st->pending);
	free(st);
}

static enum MHD_Result api_changes(server *s, struct MHD_Connection *c,
                                   const srv_req *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	uint64_t last;
	stream *st;
	int rc = last_batch(s, &last);
	if (rc < 0)
		return send_lberr(c, rc, NULL, "cannot read the log");
	if (atomic_fetch_add(&s->streams, 1) >= SERVE_STREAMS) {
		atomic_fetch_sub(&s->streams, 1);
		return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, NULL,
		                  "too many event streams (at most %d)",
		                  SERVE_STREAMS);
	}
	st = calloc(1, sizeof *st);
	if (!st) {
		atomic_fetch_sub(&s->streams, 1);
		return MHD_NO;
	}
	st->s = s;
	sb_init(&st->pending);
	st->next = r->has_since ? r->since + 1 : last + 1;
	if (last >= STREAM_BACKLOG_MAX && st->next < last - STREAM_BACKLOG_MAX)
		st->next = last - STREAM_BACKLOG_MAX + 1;
	/* the first event says where the stream starts */
	sb_printf(&st->pending,
	          "event: hello\ndata: {\"last\":%" PRIu64 "}\n\n", last);
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
	                                         stream_read, st, stream_free);
	if (!resp) {
		stream_free(st);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
	                        "text/event-stream; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	ret = MHD_queue_response(c, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- the page ------------------------------------------------------------ */

static enum MHD_Result send_page(struct MHD_Connection *c)
{
	size_t len;
	const char *page = srv_page(&len);
	struct MHD_Response *r = MHD_create_response_from_buffer(
	        len, (void *)page, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	/* everything is in the page; it talks to this server only */
	MHD_add_response_header(
	        r, "Content-Security-Policy",
	        "default-src 'none'; script-src 'unsafe-inline'; "
	        "style-src 'unsafe-inline'; connect-src 'self'; "
	        "img-src data:; base-uri 'none'; form-action 'none'; "
	        "frame-ancestors 'none'");
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- dispatch ------------------------------------------------------------ */

typedef struct args_ctx {
	srv_arg a[SRV_ARGS_MAX + 1];
	size_t n;
} args_ctx;

static enum MHD_Result arg_cb(void *cls, enum MHD_ValueKind kind,
                              const char *key, const char *value)
{
	args_ctx *x = cls;
	(void)kind;
	if (x->n > SRV_ARGS_MAX)
		return MHD_NO;
	x->a[x->n].name = key;
	x->a[x->n].value = value;
	x->n++;
	return MHD_YES;
}

/* Constant-time comparison of n bytes of a against the token. */
static int token_eq(const server *s, const void *a, size_t n)
{
	const unsigned char *p = a;
	unsigned char d = n != s->tlen;
	for (size_t i = 0; i < s->tlen; i++)
		d |= (unsigned char)(s->token[i] ^ (i < n ? p[i] : 0));
	return d == 0;
}

static int authorized(server *s, struct MHD_Connection *c, const args_ctx *x,
                      const char *url)
{
	const char *h;
	if (!s->token)
		return 1;
	h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	                                MHD_HTTP_HEADER_AUTHORIZATION);
	if (h && !strncasecmp(h, "Bearer ", 7)) {
		h += 7;
		while (*h == ' ')
			h++;
		if (token_eq(s, h, strlen(h)))
			return 1;
	}
	if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
		for (size_t i = 0; i < x->n; i++) {
			unsigned char buf[TOKEN_MAX];
			long n;
			if (strcmp(x->a[i].name, "token") || !x->a[i].value)
				continue;
			n = srv_unescape(x->a[i].value, strlen(x->a[i].value),
			                 1, buf, sizeof buf);
			if (n >= 0 && token_eq(s, buf, (size_t)n))
				return 1;
		}
	}
	return 0;
}

/* On loopback without a token: the Host header must name a loopback
 * host. */
static int host_ok(struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	                                            MHD_HTTP_HEADER_HOST);
	size_t n;
	if (!h)
		return 0;
	if (h[0] == '[')
		return !strncmp(h, "[::1]", 5) && (h[5] == '\0' || h[5] == ':');
	n = strcspn(h, ":");
	if (n == 9 && !strncasecmp(h, "localhost", 9))
		return 1;
	if (n >= 7 && n <= 15 && !strncmp(h, "127.", 4)) {
		for (size_t i = 4; i < n; i++)
			if (!((h[i] >= '0' && h[i] <= '9') || h[i] == '.'))
				return 0;
		return 1;
	}
	return 0;
}

static enum MHD_Result dispatch(server *s, struct MHD_Connection *c,
                                const char *url, const char *method,
                                size_t *upload_size);

/* Each connection has a thread of its own, which ends with it:
 * cli_words()'s per-thread text is let go after each request. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
	enum MHD_Result ret;
	(void)version;
	(void)upload;
	(void)con_cls;
	ret = dispatch(cls, c, url, method, upload_size);
	cli_words_release();
	return ret;
}

static enum MHD_Result dispatch(server *s, struct MHD_Connection *c,
                                const char *url, const char *method,
                                size_t *upload_size)
{
	args_ctx x;
	srv_req r;
	srv_err e;
	int rc;

	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method",
		                  "read-only: GET and HEAD only");
	if (*upload_size)
		return send_error(c, MHD_HTTP_BAD_REQUEST, "body",
		                  "a GET request has no body");
	memset(&x, 0, sizeof x);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, arg_cb, &x);
	if (!s->token && s->loopback && !host_ok(c))
		return send_error(c, MHD_HTTP_FORBIDDEN, "Host",
		                  "the Host header must name a loopback host");
	if (!authorized(s, c, &x, url))
		return send_error(c, MHD_HTTP_UNAUTHORIZED, "token",
		                  "a valid bearer token is required");
	rc = srv_req_parse(url, x.a, x.n, &r, &e);
	if (rc)
		return send_error(c, (unsigned)e.status, e.param, "%s",
		                  e.message);
	switch (r.ep) {
	case SRV_PAGE:
		return send_page(c);
	case SRV_LOG:
		return api_log(s, c, &r);
	case SRV_BATCH:
		return api_batch(s, c, &r);
	case SRV_HISTORY:
		return api_history(s, c, &r);
	case SRV_GET:
		return api_get(s, c, &r);
	case SRV_DIFF:
		return api_diff(s, c, &r);
	case SRV_TABLES:
		return api_tables(s, c);
	case SRV_STAT:
		return api_stat(s, c);
	case SRV_VERIFY:
		return api_verify(s, c, &r);
	case SRV_ROLLBACK:
		return api_rollback(s, c, &r);
	case SRV_CHANGES:
		return api_changes(s, c, &r);
	}
	return send_error(c, MHD_HTTP_NOT_FOUND, "path", "no such resource");
}

/* libmicrohttpd unescapes nothing: serve_req.c decodes. */
static size_t unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

/* ---- the command --------------------------------------------------------- */

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
	got_signal = sig;
}

/* ADDR:PORT, ADDR an IPv4 or a bracketed IPv6 address. */
static int parse_listen(const char *s, struct sockaddr_storage *ss,
                        int *loopback, int *v6)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	uint64_t port;
	size_t hl;
	if (!colon || colon == s)
		return -1;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {
		if (hl < 3 || s[hl - 1] != ']' || hl - 2 >= sizeof host)
			return -1;
		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = '\0';
	} else {
		if (hl >= sizeof host)
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (cli_u64("--listen port", colon + 1, 0, 65535, &port))
		return -2;
	memset(ss, 0, sizeof *ss);
	if (s[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return -1;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
		*v6 = 1;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		if (!strcmp(host, "localhost"))
			strcpy(host, "127.0.0.1");
		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return -1;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
		*v6 = 0;
	}
	return 0;
}

static int read_token(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;
	if (!f)
		return cli_err("--token %s: %s", path, strerror(errno));
	buf = cli_xmalloc(TOKEN_MAX + 2);
	n = fread(buf, 1, TOKEN_MAX + 1, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
	             buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		n--;
	if (n == 0 || n > TOKEN_MAX) {
		free(buf);
		return cli_err("--token %s: the token must be 1..%d bytes",
		               path, TOKEN_MAX);
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] <= ' ' ||
		    (unsigned char)buf[i] >= 127) {
			free(buf);
			return cli_err("--token %s: the token must be "
			               "printable ASCII without spaces",
			               path);
		}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

int cmd_serve(int argc, char **argv)
{
	cli_opt o[] = {{"listen", 1, NULL},
	               {"token", 1, NULL},
	               {"allow-replay-verify", 0, NULL}};
	const char *pos[1];
	const char *listen = "127.0.0.1:8080";
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	struct sigaction sa;
	server s;
	size_t np;
	int rc, v6 = 0;
	unsigned port;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	memset(&s, 0, sizeof s);
	if (CLI_OPT(o, "listen"))
		listen = CLI_OPT(o, "listen");
	rc = parse_listen(listen, &ss, &s.loopback, &v6);
	if (rc == -2)
		return CLI_USAGE;
	if (rc)
		return cli_usage("--listen %s: not ADDR:PORT (an IPv4 address "
		                 "or [IPv6], a port 0..65535)",
		                 listen);
	if (!s.loopback && !CLI_OPT(o, "token"))
		return cli_usage("--listen %s is not a loopback address: "
		                 "--token FILE is required",
		                 listen);
	if (CLI_OPT(o, "token") &&
	    (rc = read_token(CLI_OPT(o, "token"), &s.token, &s.tlen)))
		return rc;
	s.allow_replay = CLI_OPT(o, "allow-replay-verify") != NULL;
	cli_json = 1; /* issues are rendered as JSON */

	rc = cli_lb_open(pos[0], 0, &s.db);
	if (rc == LB_EIO || rc == LB_EINVAL) {
		/* perhaps a directory this user may not write: read-only */
		if (cli_lb_open(pos[0], LB_RDONLY, &s.db) == 0) {
			s.rdonly = 1;
			rc = 0;
		}
	}
	if (rc == LB_ENOTFOUND) {
		free(s.token);
		return cli_err("%s: no logbook database there", pos[0]);
	}
	if (rc < 0) {
		free(s.token);
		cli_lberr(rc, "cannot open %s", pos[0]);
		return CLI_FAIL;
	}
	pthread_mutex_init(&s.cat_lock, NULL);
	pthread_mutex_init(&s.verify_lock, NULL);
	pthread_mutex_init(&s.rollback_lock, NULL);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(
	        MHD_USE_THREAD_PER_CONNECTION |
	                MHD_USE_INTERNAL_POLLING_THREAD |
	                (v6 ? MHD_USE_IPv6 : 0),
	        0, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR,
	        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
	        (unsigned)SERVE_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
	        (unsigned)SERVE_TIMEOUT, MHD_OPTION_UNESCAPE_CALLBACK,
	        unescape_none, NULL, MHD_OPTION_END);
	if (!d) {
		rc = cli_err("cannot listen on %s: %s", listen,
		             errno ? strerror(errno) : "failed");
		goto out;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	port = info ? info->port : 0;
	{
		char host[64];
		if (v6)
			inet_ntop(AF_INET6,
			          &((struct sockaddr_in6 *)&ss)->sin6_addr,
			          host, sizeof host);
		else
			inet_ntop(AF_INET,
			          &((struct sockaddr_in *)&ss)->sin_addr, host,
			          sizeof host);
		printf("logbook serve: %s on http%s://%s%s%s:%u/%s%s\n", pos[0],
		       "", v6 ? "[" : "", host, v6 ? "]" : "", port,
		       s.token ? "?token=..." : "",
		       s.rdonly ? " (read-only: no rollback preview)" : "");
		fflush(stdout);
	}
	while (!got_signal) {
		struct timespec ts = {0, 200 * 1000000L};
		nanosleep(&ts, NULL);
	}
	atomic_store(&s.stop, 1);
	MHD_stop_daemon(d);
	rc = 0;
out:
	lb_close(s.db);
	cli_catalog_free(&s.cat);
	pthread_mutex_destroy(&s.cat_lock);
	pthread_mutex_destroy(&s.verify_lock);
	pthread_mutex_destroy(&s.rollback_lock);
	free(s.token);
	return rc;
}
