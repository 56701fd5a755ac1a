/* SPDX-License-Identifier: MIT */
/*
 * import_line.c: reading input lines and turning each into an op (import.h).
 */
#include "import.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/*
 * Next line without its '\n'. Returns 1 with (*p, *n), 0 at the end, -1 on
 * a read error (errno), -2 when a signal stopped the import during a read.
 * *too_long is set for a line over LINE_MAX_BYTES, whose bytes are skipped (it
 * is still one line).
 */
int imp_next_line(reader *r, const char **p, size_t *n, int *too_long)
{
	r->line.len = 0;
	*too_long = 0;
	for (;;) {
		char *s = r->buf + r->start;
		size_t avail = r->end - r->start;
		char *nl = avail ? memchr(s, '\n', avail) : NULL;
		if (nl) {
			size_t len = (size_t)(nl - s);
			r->start += len + 1;
			r->consumed += len + 1;
			if (!r->line.len && !*too_long) {
				*p = s;
				*n = len;
				return 1;
			}
			if (!*too_long && r->line.len + len <= LINE_MAX_BYTES)
				sb_put(&r->line, s, len);
			else
				*too_long = 1;
			*p = r->line.p;
			*n = *too_long ? 0 : r->line.len;
			return 1;
		}
		if (avail) {
			if (!*too_long &&
			    r->line.len + avail <= LINE_MAX_BYTES) {
				sb_put(&r->line, s, avail);
			} else {
				*too_long = 1;
				r->line.len = 0;
			}
			r->consumed += avail;
		}
		r->start = r->end = 0;
		if (r->eof) {
			if (!r->line.len && !*too_long)
				return 0;
			*p = r->line.p;
			*n = *too_long ? 0 : r->line.len;
			return 1;
		}
		for (;;) {
			ssize_t got = read(r->fd, r->buf, READ_CHUNK);
			if (got < 0 && errno == EINTR && runs_stop)
				return -2; /* Ctrl-C while waiting for input */
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -1;
			if (got == 0)
				r->eof = 1;
			r->end = (size_t)got;
			break;
		}
	}
}

/*
 * Does the input end here (nothing after the line handed out last)? 1 when
 * it is known to: a file read to its size, or a pipe whose end is there
 * already (looked at without waiting: a pipe still open says 0). The
 * current line must no longer be needed (the buffer may be refilled).
 */
int imp_input_ends(reader *r, uint64_t in_size)
{
	struct pollfd pf;
	ssize_t got;
	if (r->start < r->end)
		return 0;
	if (r->eof)
		return 1;
	if (in_size)
		return r->consumed >= in_size;
	pf.fd = r->fd;
	pf.events = POLLIN;
	pf.revents = 0;
	if (poll(&pf, 1, 0) != 1)
		return 0;
	got = read(r->fd, r->buf, READ_CHUNK);
	if (got == 0) {
		r->eof = 1;
		return 1;
	}
	if (got > 0) {
		r->start = 0;
		r->end = (size_t)got;
	}
	return 0; /* a read error shows at the next line */
}
/* ---- one line -> one op -------------------------------------------------- */

static void push_op(imp *m, uint64_t line, cli_table *t, const void *k,
                    size_t kl)
{
	op_rec *o;
	if (m->nops == m->capops) {
		m->capops = m->capops ? m->capops * 2 : 1024;
		m->ops = cli_xrealloc(m->ops, m->capops * sizeof *m->ops);
	}
	o = &m->ops[m->nops++];
	o->line = line;
	o->li = m->cur_li;
	o->t = t;
	o->koff = m->keys.len;
	o->klen = kl;
	o->del = o->refused = 0;
	o->ekind = NULL;
	o->emsg = NULL;
	o->applied = o->existed = 0;
	o->boff = o->blen = 0;
	sb_put(&m->keys, k, kl);
	if (m->keep)
		m->ln[m->cur_li].op = m->nops;
}

/* Remember the references of an applied put (v: its msgpack map) for the
 * end-of-batch check. */
static void push_refs(imp *m, uint64_t line, cli_table *t, const void *v,
                      size_t vl)
{
	const op_rec *o = &m->ops[m->nops - 1];
	for (size_t i = 0; i < t->nfields; i++) {
		const cli_field *f = &t->fields[i];
		const void *x;
		const char *rk;
		size_t xl, rkl;
		cli_table *rt;
		ref_rec *r;
		if (!f->ref)
			continue;
		rt = m->refs_of[t - m->cat.t][i];
		/* Absent, or of a wrong type (a format issue already). */
		if (!rt || cli_mp_map_get(v, vl, f->name, &x, &xl) < 0 ||
		    cli_mp_bytes(x, xl, &rk, &rkl) < 0)
			continue;
		if (m->nrefs == m->caprefs) {
			m->caprefs = m->caprefs ? m->caprefs * 2 : 256;
			m->refs = cli_xrealloc(m->refs,
			                       m->caprefs * sizeof *m->refs);
		}
		r = &m->refs[m->nrefs++];
		r->line = line;
		r->t = t;
		r->koff = o->koff;
		r->klen = o->klen;
		r->field = f->name;
		r->ref = rt;
		r->roff = m->keys.len;
		r->rlen = rkl;
		r->refused = o->refused;
		sb_put(&m->keys, rk, rkl);
	}
}

static int fatal_op(imp *m, int rc, uint64_t line)
{
	cli_lberr(rc, "%s: line %" PRIu64 ": cannot write", m->file, line);
	return CLI_FAIL;
}

/* A key as the library's messages show it: printable ASCII kept (but the
 * backslash), other bytes as \xHH, cut at 95 bytes of text. */
static const char *lib_key_text(const void *key, size_t klen)
{
	static char buf[96];
	const unsigned char *k = key;
	size_t o = 0;
	for (size_t i = 0; i < klen && o + 5 < sizeof buf; i++) {
		if (k[i] >= 0x20 && k[i] < 0x7f && k[i] != '\\')
			buf[o++] = (char)k[i];
		else
			o += (size_t)snprintf(buf + o, sizeof buf - o,
			                      "\\x%02x", k[i]);
	}
	if (o >= sizeof buf)
		o = sizeof buf - 1;
	buf[o] = 0;
	return buf;
}

/*
 * Dry run: the issues of an op the library refused, as the real import
 * would report them. The dry run's one open batch keeps the detail of its
 * first LB_ISSUES_MAX issues only, so each refused op is explained on the
 * spot: DUPLICATE or MISSING from the before-image looked up just before
 * it (worded as the library words them), then every FORMAT issue of its
 * value from lb_batch_check(), which runs the op's own schema check.
 */
static void dry_issue(imp *m, uint64_t line, const cli_table *t, int del,
                      const void *v, size_t vl)
{
	const op_rec *r = &m->ops[m->nops - 1];
	const char *key = m->keys.p + r->koff;
	char msg[400];
	lb_result res;
	int rc;
	if (m->mode == MODE_INSERT && !del && r->existed) {
		snprintf(msg, sizeof msg, "%s: key '%s' exists already",
		         t->name, lib_key_text(key, r->klen));
		imp_add_issue(m, line, "duplicate", t->name, key, r->klen, NULL,
		              msg);
	} else if ((del || m->mode == MODE_UPDATE) && !r->existed) {
		snprintf(msg, sizeof msg, "%s: no key '%s'", t->name,
		         lib_key_text(key, r->klen));
		imp_add_issue(m, line, "missing", t->name, key, r->klen, NULL,
		              msg);
	}
	if (del || !t->has_schema)
		return;
	rc = lb_batch_check(m->b, t->name, key, r->klen, v, vl, &res);
	for (size_t i = 0; i < res.nissues; i++)
		imp_add_issue(m, line, "format", t->name, key, r->klen,
		              res.issues[i].field, res.issues[i].message);
	if (rc < 0 && rc != LB_EVALIDATION)
		imp_add_issue(m, line, "format", t->name, key, r->klen, NULL,
		              lb_errmsg());
	lb_result_free(&res);
}

/* A key from its msgpack encoding (a str, or an integer as decimal text),
 * into m->kbuf. -1 for anything else or out of limits: the jansson path
 * then words the issue. */
static int fast_key(imp *m, const char *p, size_t n)
{
	const char *s;
	size_t len;
	int64_t v;
	m->kbuf.len = 0;
	if (cli_mp_str(p, n, &s, &len) == 0) {
		if (len == 0 || len > LB_KEY_MAX)
			return -1;
		sb_put(&m->kbuf, s, len);
		return 0;
	}
	if (cli_mp_int(p, n, &v) == 0) {
		sb_printf(&m->kbuf, "%" PRId64, v);
		return 0;
	}
	return -1;
}

static const cli_fj_member *member(const char *d, const cli_fj_member *mem,
                                   size_t n, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < n; i++)
		if (mem[i].klen == nl && !memcmp(d + mem[i].koff, name, nl))
			return &mem[i];
	return NULL;
}

/*
 * The fast path (fastjson.c): 1 with *q filled, 0 to take the jansson
 * path instead, which then finds the same request or words the problem.
 */
static int parse_fast(imp *m, const char *p, size_t n, req *q)
{
	cli_fj_member mem[CLI_FJ_MEMBERS_MAX];
	const cli_fj_member *tv, *kv, *vv, *dv;
	const char *d, *s;
	size_t nm, len;

	if (cli_fast_object(p, n, &m->mp, &m->scratch, mem, &nm) < 0)
		return 0;
	d = m->mp.data;
	tv = member(d, mem, nm, "table");
	kv = member(d, mem, nm, "key");
	vv = member(d, mem, nm, "value");
	dv = member(d, mem, nm, "delete");
	if (tv && kv && (vv || dv) && !(vv && dv) && nm == 3) {
		if (cli_mp_str(d + tv->voff, tv->vlen, &s, &len) < 0 ||
		    len > LB_TABLE_NAME_MAX || memchr(s, 0, len))
			return 0;
		if (!m->last_t || len != strlen(m->last_t->name) ||
		    memcmp(s, m->last_t->name, len)) {
			memcpy(m->tname, s, len);
			m->tname[len] = '\0';
			m->last_t = cli_catalog_find(&m->cat, m->tname);
			if (!m->last_t)
				return 0;
		}
		q->t = m->last_t;
		q->tname = q->t->name;
		if (!q->t || fast_key(m, d + kv->voff, kv->vlen) < 0)
			return 0;
		if (dv) {
			if (dv->vlen != 1 || (unsigned char)d[dv->voff] != 0xc3)
				return 0;
			q->del = 1;
			return 1;
		}
		if (q->t->has_schema) {
			q->v = d + vv->voff;
			q->vl = vv->vlen;
			return 1;
		}
		/* Opaque: a string is stored as its bytes. */
		if (cli_mp_str(d + vv->voff, vv->vlen, &s, &len) < 0)
			return 0;
		q->v = s;
		q->vl = len;
		return 1;
	}
	/* A record of --table (with a schema: opaque records are stored as
	 * their JSON text, which only jansson writes). */
	if (!m->deftable || !m->deftable->has_schema)
		return 0;
	kv = member(d, mem, nm, m->keyfield);
	if (!kv || fast_key(m, d + kv->voff, kv->vlen) < 0)
		return 0;
	q->t = m->deftable;
	q->tname = q->t->name;
	q->v = d;
	q->vl = m->mp.size;
	return 1;
}

/*
 * A line that is not UTF-8 (so no JSON text) is a parse issue naming the
 * first bad byte, and the table and key when they can be read: the line
 * is parsed again with every bad byte replaced by U+FFFD; a table name or
 * key holding U+FFFD may be a bad byte's, so it is not named.
 */
static void utf8_issue(imp *m, uint64_t line, const char *p, size_t n,
                       size_t bad)
{
	static const char rep[] = "\xef\xbf\xbd";
	char msg[160], err[64];
	const char *tname = NULL;
	json_t *o, *tv, *kv;
	sbuf fix;
	size_t i = 0;
	snprintf(msg, sizeof msg,
	         "not UTF-8: byte 0x%02X at column %zu; nothing of the line "
	         "was read",
	         (unsigned char)p[bad], bad + 1);
	sb_init(&fix);
	while (i < n) {
		size_t ok = lb__utf8_scan((const uint8_t *)p + i, n - i, NULL);
		sb_put(&fix, p + i, ok);
		i += ok;
		if (i < n) {
			sb_puts(&fix, rep);
			i++;
		}
	}
	m->kbuf.len = 0;
	o = cli_json_parse(fix.p, fix.len, err, sizeof err);
	if (o && json_is_object(o)) {
		tv = json_object_get(o, "table");
		kv = json_object_get(o, "key");
		if (!tv && m->deftable) {
			tname = m->deftable->name;
			kv = json_object_get(o, m->keyfield);
		} else if (json_is_string(tv) &&
		           !strstr(json_string_value(tv), rep)) {
			tname = json_string_value(tv);
		}
		if (kv && !json_is_object(kv) &&
		    (!json_is_string(kv) ||
		     !strstr(json_string_value(kv), rep)) &&
		    cli_key_json(kv, &m->kbuf, err, sizeof err) < 0)
			m->kbuf.len = 0;
	}
	imp_add_issue(m, line, KIND_PARSE, tname,
	              m->kbuf.len ? m->kbuf.p : NULL, m->kbuf.len, NULL, msg);
	json_decref(o);
	sb_free(&fix);
}

/* The jansson path: 1 with *q filled, or 0 with the line's issue recorded.
 * The tree stays in m->root until imp_do_line() is done with the line. */
static int parse_slow(imp *m, uint64_t line, const char *p, size_t n, req *q)
{
	char err[300];
	json_t *o, *tv, *kv, *vv, *dv;

	o = cli_json_parse(p, n, err, sizeof err);
	if (!o) {
		size_t bad = lb__utf8_scan((const uint8_t *)p, n, NULL);
		if (bad < n)
			utf8_issue(m, line, p, n, bad);
		else
			imp_add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL,
			              err);
		if (m->keep)
			m->ln[m->cur_li].flags |= L_NOTJSON;
		return 0;
	}
	m->root = o; /* released by imp_do_line() */
	if (!json_is_object(o)) {
		imp_add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL,
		              "line is not a JSON object");
		return 0;
	}
	tv = json_object_get(o, "table");
	kv = json_object_get(o, "key");
	vv = json_object_get(o, "value");
	dv = json_object_get(o, "delete");
	if (tv && kv && (vv || dv) && !(vv && dv) && json_object_size(o) == 3) {
		/* {"table": T, "key": K, "value": V | "delete": true} */
		if (!json_is_string(tv)) {
			imp_add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL,
			              "\"table\" must be a string");
			return 0;
		}
		q->tname = json_string_value(tv);
		if (strlen(q->tname) != json_string_length(tv)) {
			/* "o\u0000x" would name table o */
			imp_add_issue(m, line, KIND_TABLE, NULL, NULL, 0, NULL,
			              "the table name holds a NUL character");
			return 0;
		}
		if (dv) {
			if (!json_is_true(dv)) {
				imp_add_issue(m, line, KIND_PARSE, q->tname,
				              NULL, 0, NULL,
				              "\"delete\" must be true");
				return 0;
			}
			q->del = 1;
		}
		if (cli_key_json(kv, &m->kbuf, err, sizeof err) < 0) {
			imp_add_issue(m, line, KIND_KEY, q->tname, NULL, 0,
			              "key", err);
			return 0;
		}
		q->t = cli_catalog_find(&m->cat, q->tname);
	} else {
		/* A record of --table, keyed by --key. */
		q->t = m->deftable;
		if (!q->t) {
			imp_add_issue(
			        m, line, KIND_TABLE, NULL, NULL, 0, NULL,
			        "no table: give --table, or write the line "
			        "as {\"table\": ..., \"key\": ..., "
			        "\"value\": ...}");
			return 0;
		}
		q->tname = q->t->name;
		vv = o;
		kv = json_object_get(o, m->keyfield);
		if (!kv) {
			snprintf(err, sizeof err,
			         "record has no key field \"%s\"", m->keyfield);
			imp_add_issue(m, line, KIND_KEY, q->tname, NULL, 0,
			              m->keyfield, err);
			return 0;
		}
		if (json_is_object(kv) ||
		    cli_key_json(kv, &m->kbuf, err, sizeof err) < 0) {
			snprintf(err, sizeof err,
			         "key field \"%s\" must be a non-empty string "
			         "(at most %d bytes) or an integer",
			         m->keyfield, LB_KEY_MAX);
			imp_add_issue(m, line, KIND_KEY, q->tname, NULL, 0,
			              m->keyfield, err);
			return 0;
		}
	}
	if (!q->t) {
		snprintf(err, sizeof err, "no table '%s' in the database",
		         q->tname);
		imp_add_issue(m, line, KIND_TABLE, q->tname, m->kbuf.p,
		              m->kbuf.len, NULL, err);
		return 0;
	}
	if (q->del)
		return 1;
	if (q->t->has_schema) {
		msgpack_sbuffer_clear(&m->mp);
		if (cli_pack_json(&m->pk, vv, &m->scratch, err, sizeof err) <
		    0) {
			imp_add_issue(m, line, KIND_VALUE, q->tname, m->kbuf.p,
			              m->kbuf.len, NULL, err);
			return 0;
		}
		q->v = m->mp.data;
		q->vl = m->mp.size;
	} else {
		if (cli_opaque_json(vv, &m->val, err, sizeof err) < 0) {
			imp_add_issue(m, line, KIND_VALUE, q->tname, m->kbuf.p,
			              m->kbuf.len, NULL, err);
			return 0;
		}
		q->v = m->val.p;
		q->vl = m->val.len;
	}
	return 1;
}

/* --on-error record: what the library said about the op it just refused,
 * for when the commit's result does not hold the issue (it keeps the
 * first LB_ISSUES_MAX). The op was not applied, so the batch shows the
 * key as it was before it. */
static void note_refusal(imp *m, const cli_table *t, int del)
{
	op_rec *o = &m->ops[m->nops - 1];
	const void *v;
	size_t vl;
	int exists;
	o->emsg = cli_xstrdup(lb_errmsg());
	exists = lb_batch_get(m->b, t->name, m->keys.p + o->koff, o->klen, &v,
	                      &vl) == 0;
	if (m->mode == MODE_INSERT && !del && exists)
		o->ekind = "duplicate";
	else if ((del || m->mode == MODE_UPDATE) && !exists)
		o->ekind = "missing";
	else
		o->ekind = "format";
}

/* Dry run: save the before-image of the op about to be applied. */
static void save_before(imp *m, const cli_table *t)
{
	const void *bv;
	size_t bl;
	op_rec *r = &m->ops[m->nops - 1];
	if (lb_batch_get(m->b, t->name, m->kbuf.p, m->kbuf.len, &bv, &bl) ==
	    0) {
		r->existed = 1;
		r->boff = m->before.len;
		r->blen = bl;
		sb_put(&m->before, bv, bl);
	}
}

/*
 * Upsert: a key met on an earlier line of the same batch is a DUPLICATE
 * issue of this line, unless --allow-repeats (then the last line wins, as
 * it does in the library). Returns 1 for a repeat.
 */
static int repeated(imp *m, uint64_t line, const req *q)
{
	char msg[600];
	sbuf kh;
	uint64_t first = imp_kmap_put(m, &m->repeats, q->t, m->kbuf.p,
	                              m->kbuf.len, line);
	if (!first)
		return 0;
	imp_kmap_put(m, &m->repeats, q->t, m->kbuf.p, m->kbuf.len, first);
	sb_init(&kh);
	cli_key_human(&kh, m->kbuf.p, m->kbuf.len);
	snprintf(msg, sizeof msg,
	         "%s: key '%.400s' repeats line %" PRIu64
	         " of this batch (--allow-repeats lets the last line win)",
	         q->t->name, sb_str(&kh), first);
	sb_free(&kh);
	imp_add_issue(m, line, "duplicate", q->tname, m->kbuf.p, m->kbuf.len,
	              NULL, msg);
	return 1;
}

/*
 * Turn one input line into one op of the open batch. Problems with the line
 * become issues; returns 0, or an exit code for an error that ends the
 * import (disk full, I/O error).
 */
int imp_do_line(imp *m, uint64_t line, const char *p, size_t n, int too_long)
{
	char err[300];
	req q;
	int rc = 0;

	memset(&q, 0, sizeof q);
	if (too_long) {
		snprintf(err, sizeof err,
		         "line is longer than %zu MiB; skipped",
		         LINE_MAX_BYTES >> 20);
		imp_add_issue(m, line, KIND_PARSE, NULL, NULL, 0, NULL, err);
		if (m->keep)
			m->ln[m->cur_li].flags |= L_NOTJSON | L_TOOLONG;
		return 0;
	}
	if (!parse_fast(m, p, n, &q)) {
		memset(&q, 0, sizeof q);
		if (!parse_slow(m, line, p, n, &q))
			goto out;
	}
	if (!q.del && q.vl > LB_VALUE_MAX) {
		snprintf(err, sizeof err,
		         "value of %zu bytes is over the %u-byte limit", q.vl,
		         (unsigned)LB_VALUE_MAX);
		imp_add_issue(m, line, KIND_VALUE, q.tname, m->kbuf.p,
		              m->kbuf.len, NULL, err);
		goto out;
	}
	if (m->mode == MODE_UPSERT && !m->allow_repeats &&
	    repeated(m, line, &q))
		goto out;
	push_op(m, line, q.t, m->kbuf.p, m->kbuf.len);
	m->ops[m->nops - 1].del = q.del;
	if (m->dry)
		save_before(m, q.t);
	if (q.del)
		rc = lb_delete(m->b, q.t->name, m->kbuf.p, m->kbuf.len);
	else if (m->mode == MODE_INSERT)
		rc = lb_insert(m->b, q.t->name, m->kbuf.p, m->kbuf.len, q.v,
		               q.vl);
	else if (m->mode == MODE_UPDATE)
		rc = lb_update(m->b, q.t->name, m->kbuf.p, m->kbuf.len, q.v,
		               q.vl);
	else
		rc = lb_put(m->b, q.t->name, m->kbuf.p, m->kbuf.len, q.v, q.vl);
	if (rc == 0) {
		m->ops[m->nops - 1].applied = 1;
		if (!q.del && q.t->has_schema)
			push_refs(m, line, q.t, q.v, q.vl);
	} else if (rc == LB_EVALIDATION) {
		m->engine_issue = 1;
		m->ops[m->nops - 1].refused = 1;
		if (m->dry)
			dry_issue(m, line, q.t, q.del, q.v, q.vl);
		else if (m->on_error == ONERR_RECORD) {
			note_refusal(m, q.t, q.del);
			/* what it refers to may explain more (a dependency) */
			if (!q.del && q.t->has_schema)
				push_refs(m, line, q.t, q.v, q.vl);
		}
	} else if (rc == LB_ENOTFOUND) {
		imp_add_issue(m, line, KIND_TABLE, q.tname, m->kbuf.p,
		              m->kbuf.len, NULL, lb_errmsg());
	} else if (rc == LB_ETOOBIG || rc == LB_EINVAL) {
		imp_add_issue(m, line, KIND_VALUE, q.tname, m->kbuf.p,
		              m->kbuf.len, NULL, lb_errmsg());
	} else {
		rc = fatal_op(m, rc, line);
		goto out;
	}
	rc = 0;
out:
	json_decref(m->root);
	m->root = NULL;
	return rc;
}

int imp_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

/*
 * --from-rejects: the record a reject line holds, as the line to import,
 * into m->fr: the "record" member as compact JSON, or with "raw": true
 * the text it holds. 0, or -1 with err when the line is not a reject.
 */
int imp_from_reject(imp *m, const char *p, size_t n, char *err, size_t errlen)
{
	char e[300];
	json_t *o = cli_json_parse(p, n, e, sizeof e), *rec;
	m->fr.len = 0;
	if (!o) {
		snprintf(err, errlen, "not a line of a reject file: %s", e);
		return -1;
	}
	rec = json_object_get(o, "record");
	if (!json_is_object(o) || !rec) {
		snprintf(err, errlen,
		         "not a line of a reject file (no \"record\" member)");
		json_decref(o);
		return -1;
	}
	if (json_is_true(json_object_get(o, "raw"))) {
		json_t *b64 = json_object_get(rec, "base64");
		if (json_is_string(rec)) {
			sb_put(&m->fr, json_string_value(rec),
			       json_string_length(rec));
		} else if (json_is_string(b64) &&
		           cli_b64_decode(json_string_value(b64),
		                          json_string_length(b64),
		                          &m->fr) == 0) {
			/* the bytes of a line that was not UTF-8 */
		} else {
			snprintf(err, errlen,
			         "the reject holds no record (a line over "
			         "%zu MiB is not kept)",
			         LINE_MAX_BYTES >> 20);
			json_decref(o);
			return -1;
		}
	} else {
		char *t = json_dumps(rec, JSON_COMPACT | JSON_ENCODE_ANY);
		if (t)
			sb_puts(&m->fr, t);
		free(t);
	}
	json_decref(o);
	sb_str(&m->fr);
	return 0;
}

/* The summary as one JSON object (docs/CLI.md). */
