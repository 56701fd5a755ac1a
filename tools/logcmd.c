/* SPDX-License-Identifier: MIT */
/*
 * logcmd.c: the batch log seen from the command line: log, show, history,
 * rollback, rollback-to.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))

static int batch_arg(const char *s, uint64_t *id)
{
	return cli_u64("BATCH", s, 1, UINT64_MAX, id);
}

static void state_human(sbuf *b, const lb_batch_info *bi)
{
	size_t start = b->len;
	if (bi->undoes)
		sb_printf(b, "undoes %" PRIu64, bi->undoes);
	if (bi->rolled_back_by)
		sb_printf(b, "%srolled back by %" PRIu64,
		          b->len > start ? ", " : "", bi->rolled_back_by);
	if (bi->pruned)
		sb_printf(b, "%spruned", b->len > start ? ", " : "");
	if (b->len == start)
		sb_putc(b, '-');
}

static void info_json(sbuf *b, const lb_batch_info *bi)
{
	static const char hex[] = "0123456789abcdef";
	sb_printf(b, "{\"id\":%" PRIu64 ",\"time\":\"", bi->id);
	cli_time(b, bi->time_ns);
	sb_printf(b, "\",\"time_ns\":%" PRId64 ",\"label\":", bi->time_ns);
	jw_cstr(b,
	        cli_utf8_valid(bi->label, strlen(bi->label)) ? bi->label : "");
	sb_printf(b,
	          ",\"records\":%" PRIu64 ",\"segments\":%" PRIu32
	          ",\"raw_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64,
	          bi->records, bi->segments, bi->raw_bytes, bi->stored_bytes);
	sb_puts(b, ",\"undoes\":");
	if (bi->undoes)
		jw_u64(b, bi->undoes);
	else
		sb_puts(b, "null");
	sb_puts(b, ",\"rolled_back_by\":");
	if (bi->rolled_back_by)
		jw_u64(b, bi->rolled_back_by);
	else
		sb_puts(b, "null");
	sb_printf(b, ",\"pruned\":%s,\"hash\":\"",
	          bi->pruned ? "true" : "false");
	for (int i = 0; i < 32; i++) {
		sb_putc(b, hex[bi->hash[i] >> 4]);
		sb_putc(b, hex[bi->hash[i] & 15]);
	}
	sb_puts(b, "\"}");
}

int cmd_log(int argc, char **argv)
{
	cli_opt o[] = {{"limit", 1, NULL}, {"since", 1, NULL}};
	const char *pos[1];
	size_t np;
	uint64_t limit = 0, since = 0, last, n = 0;
	lb_db *db;
	sbuf b;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	if (o[0].val &&
	    (rc = cli_u64("--limit", o[0].val, 1, UINT64_MAX, &limit)))
		return rc;
	if (o[1].val &&
	    (rc = cli_u64("--since", o[1].val, 0, UINT64_MAX, &since)))
		return rc;
	rc = cli_open(pos[0], 1, 0, &db);
	if (rc)
		return rc;
	rc = lb_last_batch(db, &last);
	if (rc < 0) {
		lb_close(db);
		return cli_lberr(rc, "%s: cannot read the log", pos[0]);
	}
	sb_init(&b);
	if (!cli_json)
		sb_printf(&b, "%8s  %-24s %10s %10s %10s  %-20s %s\n", "BATCH",
		          "TIME", "RECORDS", "RAW", "STORED", "STATE", "LABEL");
	for (uint64_t id = last; id > since && (!limit || n < limit); id--) {
		lb_batch_info bi;
		rc = lb_batch_info_get(db, id, &bi);
		if (rc == LB_ENOTFOUND)
			continue;
		if (rc < 0)
			break;
		n++;
		if (cli_json) {
			info_json(&b, &bi);
			sb_putc(&b, '\n');
		} else {
			size_t mark;
			sb_printf(&b, "%8" PRIu64 "  ", bi.id);
			cli_time(&b, bi.time_ns);
			sb_printf(&b,
			          " %10" PRIu64 " %10" PRIu64 " %10" PRIu64
			          "  ",
			          bi.records, bi.raw_bytes, bi.stored_bytes);
			mark = b.len;
			state_human(&b, &bi);
			while (b.len < mark + 20)
				sb_putc(&b, ' ');
			sb_printf(&b, " %s\n", bi.label);
		}
		if (b.len > (1u << 16))
			sb_flush(&b, stdout);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
	lb_close(db);
	if (rc < 0 && rc != LB_ENOTFOUND)
		return cli_lberr(rc, "%s: cannot read the log", pos[0]);
	return 0;
}

/* ---- show and history ---------------------------------------------------- */

typedef struct change_ctx {
	cli_catalog cat;
	sbuf b;
	uint64_t n, limit;
	lb_db *db;
	uint64_t info_id; /* history: batch whose info is cached */
	lb_batch_info info;
} change_ctx;

static const char *op_name(int op)
{
	switch (op) {
	case LB_OP_PUT:
		return "put";
	case LB_OP_DELETE:
		return "delete";
	case LB_OP_TABLE:
		return "table";
	default:
		return "?";
	}
}

static void render(change_ctx *x, const lb_change *c, const void *v, size_t vl,
                   int has)
{
	cli_table *t;
	if (!has) {
		sb_puts(&x->b, "null");
		return;
	}
	if (c->op == LB_OP_TABLE) {
		/* The encoded schema (docs/FORMAT.md); msgpack if it decodes.
		 */
		jw_value(&x->b, 1, v, vl);
		return;
	}
	t = cli_catalog_find(&x->cat, c->table);
	jw_value(&x->b, t && t->has_schema, v, vl);
}

static void change_out(change_ctx *x, const lb_change *c)
{
	sbuf *b = &x->b;
	if (cli_json) {
		sb_puts(b, "{\"op\":");
		jw_cstr(b, op_name(c->op));
		sb_puts(b, ",\"table\":");
		jw_cstr(b, c->table);
		sb_puts(b, ",\"key\":");
		jw_bytes(b, c->key, c->klen);
		sb_puts(b, ",\"before\":");
		render(x, c, c->before, c->blen, c->has_before);
		sb_puts(b, ",\"after\":");
		render(x, c, c->after, c->alen, c->has_after);
		sb_putc(b, '}');
		return;
	}
	sb_printf(b, "%-6s %s ", op_name(c->op), c->table);
	cli_key_human(b, c->key, c->klen);
	sb_puts(b, "\n  before: ");
	render(x, c, c->before, c->blen, c->has_before);
	sb_puts(b, "\n  after:  ");
	render(x, c, c->after, c->alen, c->has_after);
}

static int show_cb(void *ctx, const lb_change *c)
{
	change_ctx *x = ctx;
	if (x->limit && x->n >= x->limit)
		return 1;
	change_out(x, c);
	sb_putc(&x->b, '\n');
	x->n++;
	if (x->b.len > (1u << 16))
		sb_flush(&x->b, stdout);
	return 0;
}

static int ctx_open(change_ctx *x, const char *dir)
{
	int rc;
	memset(x, 0, sizeof *x);
	rc = cli_open(dir, 1, 0, &x->db);
	if (rc)
		return rc;
	rc = cli_catalog_load(x->db, &x->cat);
	if (rc < 0) {
		lb_close(x->db);
		return cli_lberr(rc, "%s: cannot list tables", dir);
	}
	sb_init(&x->b);
	return 0;
}

static void ctx_close(change_ctx *x)
{
	sb_flush(&x->b, stdout);
	sb_free(&x->b);
	cli_catalog_free(&x->cat);
	lb_close(x->db);
}

int cmd_show(int argc, char **argv)
{
	cli_opt o[] = {{"limit", 1, NULL}};
	const char *pos[2];
	size_t np;
	uint64_t id;
	lb_batch_info bi;
	change_ctx x;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 2, 2, &np);
	if (rc)
		return rc;
	if ((rc = batch_arg(pos[1], &id)))
		return rc;
	if ((rc = ctx_open(&x, pos[0])))
		return rc;
	if (o[0].val &&
	    (rc = cli_u64("--limit", o[0].val, 1, UINT64_MAX, &x.limit))) {
		ctx_close(&x);
		return rc;
	}
	rc = lb_batch_info_get(x.db, id, &bi);
	if (rc < 0) {
		ctx_close(&x);
		return cli_lberr(rc, "batch %" PRIu64, id);
	}
	if (cli_json) {
		info_json(&x.b, &bi);
		sb_putc(&x.b, '\n');
	} else {
		sb_printf(&x.b, "batch %" PRIu64 "  ", bi.id);
		cli_time(&x.b, bi.time_ns);
		sb_printf(&x.b, "  %" PRIu64 " records  ", bi.records);
		state_human(&x.b, &bi);
		sb_printf(&x.b, "\nlabel %s\n", bi.label);
	}
	rc = lb_changes(x.db, id, show_cb, &x);
	ctx_close(&x);
	if (rc < 0)
		return cli_lberr(
		        rc, "cannot read the changes of batch %" PRIu64, id);
	return 0;
}

static int history_cb(void *ctx, uint64_t batch, const lb_change *c)
{
	change_ctx *x = ctx;
	sbuf *b = &x->b;
	int have = 1;
	if (x->info_id != batch) {
		have = lb_batch_info_get(x->db, batch, &x->info) == 0;
		x->info_id = have ? batch : 0;
	}
	if (cli_json) {
		sb_printf(b, "{\"batch\":%" PRIu64 ",\"time\":", batch);
		if (have) {
			sb_putc(b, '"');
			cli_time(b, x->info.time_ns);
			sb_putc(b, '"');
		} else {
			sb_puts(b, "null");
		}
		if (!c) {
			sb_puts(b, ",\"pruned\":true}\n");
		} else {
			sb_puts(b, ",\"change\":");
			change_out(x, c);
			sb_puts(b, "}\n");
		}
	} else {
		sb_printf(b, "batch %" PRIu64 "  ", batch);
		if (have)
			cli_time(b, x->info.time_ns);
		if (have && x->info.label[0])
			sb_printf(b, "  %s", x->info.label);
		sb_putc(b, '\n');
		if (!c) {
			sb_puts(b, "  (log pruned)\n");
		} else {
			sb_puts(b, "  ");
			change_out(x, c);
			sb_putc(b, '\n');
		}
	}
	x->n++;
	if (b->len > (1u << 16))
		sb_flush(b, stdout);
	return 0;
}

int cmd_history(int argc, char **argv)
{
	cli_opt o[] = {{"base64-key", 0, NULL}};
	const char *pos[3];
	size_t np;
	change_ctx x;
	sbuf key;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 3, 3, &np);
	if (rc)
		return rc;
	sb_init(&key);
	if ((rc = cli_key_arg(pos[2], o[0].val != NULL, &key))) {
		sb_free(&key);
		return rc;
	}
	if ((rc = ctx_open(&x, pos[0]))) {
		sb_free(&key);
		return rc;
	}
	if (!cli_catalog_find(&x.cat, pos[1])) {
		ctx_close(&x);
		sb_free(&key);
		return cli_err("%s: no table '%s'", pos[0], pos[1]);
	}
	rc = lb_history(x.db, pos[1], key.p, key.len, history_cb, &x);
	if (rc == 0 && x.n == 0 && !cli_json)
		sb_puts(&x.b, "no changes\n");
	ctx_close(&x);
	sb_free(&key);
	if (rc < 0)
		return cli_lberr(rc, "cannot read the history of %s", pos[1]);
	return 0;
}

/* ---- rollback ------------------------------------------------------------ */

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* The distinct later batches named by CONFLICT issues, newest first. */
static size_t conflict_batches(const lb_result *r, uint64_t *out)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nissues; i++) {
		uint64_t id = r->issues[i].batch;
		size_t j;
		if (r->issues[i].kind != LB_ISSUE_CONFLICT || !id)
			continue;
		for (j = 0; j < n && out[j] != id; j++)
			;
		if (j == n)
			out[n++] = id;
	}
	qsort(out, n, sizeof *out, cmp_desc);
	return n;
}

static void id_list(sbuf *b, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "%s%" PRIu64, i ? ", " : "", ids[i]);
}

/* What a rollback undid, as far as the command can tell: the batches whose
 * rolled_back_by is the new batch, newest first. A dry run marks nothing
 * and the library does not report the set it would undo, so there `known`
 * is 0 and both forms print only what the library returns (records and
 * issues), the same way as the real call. */
typedef struct undone_set {
	int known;
	uint64_t *ids;
	size_t n;
} undone_set;

/* The batches that new batch n undid, read from the marks right after the
 * call: every batch it undoes has rolled_back_by n, as n is the newest
 * standing batch. A strict or forced rollback undoes b alone; a cascade
 * may reach any batch before n. */
static int undone_read(lb_db *db, uint64_t b, uint64_t n, int cascade,
                       undone_set *u)
{
	size_t cap = 8;
	u->known = 1;
	u->n = 0;
	u->ids = cli_xmalloc(cap * sizeof *u->ids);
	if (!n)
		return 0;
	if (!cascade) {
		u->ids[u->n++] = b;
		return 0;
	}
	for (uint64_t id = n - 1; id >= 1; id--) {
		lb_batch_info bi;
		int rc = lb_batch_info_get(db, id, &bi);
		if (rc < 0)
			return rc;
		if (bi.rolled_back_by != n)
			continue;
		if (u->n == cap)
			u->ids = cli_xrealloc(u->ids,
			                      (cap *= 2) * sizeof *u->ids);
		u->ids[u->n++] = id;
	}
	return 0;
}

/* Report the outcome of lb_rollback()/lb_rollback_to(). u is NULL for
 * rollback-to, whose new batch undoes every batch after BATCH. */
static int rollback_report(const char *what, uint64_t id, int rc,
                           const lb_result *res, int dry, int cascade,
                           const undone_set *u)
{
	uint64_t *later = cli_xmalloc((res->nissues + 1) * sizeof *later);
	size_t nl = conflict_batches(res, later);
	sbuf b;
	sb_init(&b);
	if (cli_json) {
		sb_printf(&b,
		          "{\"success\":%s,\"batch\":%" PRIu64
		          ",\"dry_run\":%s,\"new_batch\":",
		          rc == 0 ? "true" : "false", id,
		          dry ? "true" : "false");
		if (res->batch_id)
			jw_u64(&b, res->batch_id);
		else
			sb_puts(&b, "null");
		sb_printf(&b,
		          ",\"records\":%" PRIu64 ",\"error\":", res->records);
		if (rc == 0)
			sb_puts(&b, "null");
		else
			jw_cstr(&b,
			        rc == LB_ECONFLICT ? "conflict" : "validation");
		sb_puts(&b, ",\"conflicting_batches\":[");
		for (size_t i = 0; i < nl; i++)
			sb_printf(&b, "%s%" PRIu64, i ? "," : "", later[i]);
		sb_puts(&b, "],");
		if (u && u->known) {
			sb_puts(&b, "\"undone\":[");
			for (size_t i = 0; i < u->n; i++)
				sb_printf(&b, "%s%" PRIu64, i ? "," : "",
				          u->ids[i]);
			sb_puts(&b, "],");
		} else if (u) {
			sb_puts(&b, "\"undone\":null,");
		}
		sb_puts(&b, "\"issues\":[");
		for (size_t i = 0; i < res->nissues; i++) {
			const lb_issue *is = &res->issues[i];
			if (i)
				sb_putc(&b, ',');
			cli_issue_fmt(&b, 0, cli_issue_kind(is->kind),
			              is->table, is->key, is->klen, is->field,
			              is->message, is->batch);
		}
		sb_puts(&b, "]}\n");
		sb_flush(&b, stdout);
	} else if (rc == 0) {
		if (dry)
			printf("%s %" PRIu64 " would write %" PRIu64
			       " records; no conflicts (dry run)\n",
			       what, id, res->records);
		else
			printf("%s %" PRIu64 " in batch %" PRIu64 " (%" PRIu64
			       " records)\n",
			       what, id, res->batch_id, res->records);
		if (!dry && cascade && u && u->known && u->n) {
			sb_printf(&b, "undid batch%s ", u->n == 1 ? "" : "es");
			id_list(&b, u->ids, u->n);
			sb_putc(&b, '\n');
			sb_flush(&b, stdout);
		}
	} else {
		for (size_t i = 0; i < res->nissues; i++) {
			const lb_issue *is = &res->issues[i];
			sb_puts(&b, is->kind == LB_ISSUE_CONFLICT ? "conflict: "
			                                          : "issue: ");
			sb_printf(&b, "%s ", is->table ? is->table : "?");
			cli_key_human(&b, is->key, is->klen);
			if (is->kind == LB_ISSUE_CONFLICT && is->batch)
				sb_printf(&b, " was changed by batch %" PRIu64,
				          is->batch);
			else if (is->message)
				sb_printf(&b, ": %s", is->message);
			sb_putc(&b, '\n');
			sb_flush(&b, stdout);
		}
		if (res->nissues_total > res->nissues)
			printf("... and %zu more\n",
			       res->nissues_total - res->nissues);
	}
	if (rc == LB_ECONFLICT && !nl) {
		/* a table no longer in the state the undone batches left: the
		 * only conflict a cascade can meet (docs/ROLLBACK.md) */
		cli_err("batch %" PRIu64 ": %zu conflict%s: a table is no "
		        "longer in the state the undone batches left; nothing "
		        "written",
		        id, res->nissues_total,
		        res->nissues_total == 1 ? "" : "s");
	} else if (rc == LB_ECONFLICT) {
		sb_printf(&b,
		          "batch %" PRIu64
		          ": %zu key%s changed by later batch%s ",
		          id, res->nissues_total,
		          res->nissues_total == 1 ? "" : "s",
		          nl == 1 ? "" : "es");
		id_list(&b, later, nl);
		sb_puts(&b, "; nothing written");
		if (!cascade) {
			sb_puts(&b, ". Use --cascade to also roll back batch");
			sb_puts(&b, nl == 1 ? " " : "es ");
			id_list(&b, later, nl);
			sb_puts(&b, " (and any batch depending on them), or "
			            "--force to restore over their changes");
		}
		cli_err("%s", sb_str(&b));
	} else if (rc == LB_EVALIDATION) {
		cli_err("batch %" PRIu64 ": refused: %zu foreign-key issue%s; "
		        "nothing written",
		        id, res->nissues_total,
		        res->nissues_total == 1 ? "" : "s");
	}
	sb_free(&b);
	free(later);
	return rc == 0 ? 0 : CLI_DATA;
}

int cmd_rollback(int argc, char **argv)
{
	cli_opt o[] = {
	        {"cascade", 0, NULL}, {"force", 0, NULL}, {"dry-run", 0, NULL}};
	const char *pos[2];
	size_t np;
	uint64_t id;
	unsigned flags = 0;
	lb_result res;
	undone_set u;
	lb_db *db;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 2, 2, &np);
	if (rc)
		return rc;
	if ((rc = batch_arg(pos[1], &id)))
		return rc;
	if (o[0].val && o[1].val)
		return cli_usage("--cascade and --force exclude each other");
	flags = (o[0].val ? LB_CASCADE : 0) | (o[1].val ? LB_FORCE : 0) |
	        (o[2].val ? LB_DRYRUN : 0);
	rc = cli_open(pos[0], 0, 0, &db);
	if (rc)
		return rc;
	memset(&res, 0, sizeof res);
	memset(&u, 0, sizeof u);
	rc = lb_rollback(db, id, flags, &res);
	if (rc == 0 && !o[2].val) {
		int rc2 =
		        undone_read(db, id, res.batch_id, o[0].val != NULL, &u);
		if (rc2 < 0) {
			lb_close(db);
			lb_result_free(&res);
			free(u.ids);
			return cli_lberr(
			        rc2,
			        "rolled back batch %" PRIu64
			        " in batch %" PRIu64
			        ", but cannot read the batches it undid",
			        id, res.batch_id);
		}
	}
	lb_close(db);
	if (rc < 0 && rc != LB_ECONFLICT && rc != LB_EVALIDATION) {
		lb_result_free(&res);
		return cli_lberr(rc, "cannot roll back batch %" PRIu64, id);
	}
	if (rc != 0 && !o[2].val)
		u.known = 1; /* refused: nothing undone */
	rc = rollback_report(
	        o[2].val ? "rollback of batch" : "rolled back batch", id, rc,
	        &res, o[2].val != NULL, o[0].val != NULL, &u);
	lb_result_free(&res);
	free(u.ids);
	return rc;
}

int cmd_rollback_to(int argc, char **argv)
{
	const char *pos[2];
	size_t np;
	uint64_t id;
	lb_result res;
	lb_db *db;
	int rc;

	rc = cli_parse(argc, argv, NULL, 0, pos, 2, 2, &np);
	if (rc)
		return rc;
	if ((rc = cli_u64("BATCH", pos[1], 0, UINT64_MAX, &id)))
		return rc;
	rc = cli_open(pos[0], 0, 0, &db);
	if (rc)
		return rc;
	memset(&res, 0, sizeof res);
	rc = lb_rollback_to(db, id, &res);
	lb_close(db);
	if (rc < 0 && rc != LB_ECONFLICT && rc != LB_EVALIDATION) {
		lb_result_free(&res);
		return cli_lberr(rc, "cannot roll back to batch %" PRIu64, id);
	}
	rc = rollback_report("rolled back to batch", id, rc, &res, 0, 0, NULL);
	lb_result_free(&res);
	return rc;
}
