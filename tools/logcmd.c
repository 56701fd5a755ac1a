/* SPDX-License-Identifier: MIT */
/*
 * logcmd.c: the batch log seen from the command line: log, show, history,
 * rollback, rollback-to.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static int batch_arg(const char *s, uint64_t *id)
{
	return cli_u64("BATCH", s, 1, UINT64_MAX, id);
}

/* A batch written by lb_rollback_to(): labelled "rollback to batch X",
 * it undoes X (0 included). A rollback of a batch is labelled "rollback of
 * batch B" and undoes B. */
int cli_is_rollback_to(const lb_batch_info *bi)
{
	char want[48];
	snprintf(want, sizeof want, "rollback to batch %" PRIu64, bi->undoes);
	return !strcmp(bi->label, want);
}

static void state_human(sbuf *b, const lb_batch_info *bi)
{
	size_t start = b->len;
	if (cli_is_rollback_to(bi)) {
		/* it undid every batch between X and itself */
		sb_printf(b, "rolls back to %" PRIu64, bi->undoes);
		if (bi->id > bi->undoes + 2)
			sb_printf(b, " (undid %" PRIu64 "-%" PRIu64 ")",
			          bi->undoes + 1, bi->id - 1);
		else if (bi->id == bi->undoes + 2)
			sb_printf(b, " (undid %" PRIu64 ")", bi->undoes + 1);
	} else if (bi->undoes) {
		sb_printf(b, "undoes %" PRIu64, bi->undoes);
	}
	if (bi->rolled_back_by)
		sb_printf(b, "%srolled back by %" PRIu64,
		          b->len > start ? ", " : "", bi->rolled_back_by);
	if (bi->pruned)
		sb_printf(b, "%spruned", b->len > start ? ", " : "");
	if (b->len == start)
		sb_putc(b, '-');
}

void cli_batch_info_json(sbuf *b, const lb_batch_info *bi)
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
	jw_u64_or_null(b, bi->undoes);
	sb_puts(b, ",\"rolled_back_by\":");
	jw_u64_or_null(b, bi->rolled_back_by);
	sb_printf(b, ",\"rollback_to\":%s,\"pruned\":%s,\"hash\":\"",
	          cli_is_rollback_to(bi) ? "true" : "false",
	          bi->pruned ? "true" : "false");
	for (int i = 0; i < 32; i++) {
		sb_putc(b, hex[bi->hash[i] >> 4]);
		sb_putc(b, hex[bi->hash[i] & 15]);
	}
	sb_puts(b, "\"}");
}

static void log_line(sbuf *b, const lb_batch_info *bi, size_t sw)
{
	if (cli_json) {
		cli_batch_info_json(b, bi);
		sb_putc(b, '\n');
		return;
	}
	size_t mark;
	sb_printf(b, "%8" PRIu64 "  ", bi->id);
	cli_time(b, bi->time_ns);
	sb_printf(b, " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 "  ",
	          bi->records, bi->raw_bytes, bi->stored_bytes);
	mark = b->len;
	state_human(b, bi);
	while (b->len < mark + sw + 2)
		sb_putc(b, ' ');
	cli_text_human(b, bi->label, strlen(bi->label));
	sb_putc(b, '\n');
}

int cmd_log(int argc, char **argv)
{
	cli_opt o[] = {
	        {"limit", 1, NULL}, {"since", 1, NULL}, {"follow", 0, NULL}};
	const char *pos[1];
	size_t np;
	uint64_t limit = 0, since = 0, last, n = 0;
	size_t sw = 5; /* width of STATE */
	lb_db *db;
	sbuf b;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	if (CLI_OPT(o, "limit") && (rc = cli_u64("--limit", CLI_OPT(o, "limit"),
	                                         1, UINT64_MAX, &limit)))
		return rc;
	if (CLI_OPT(o, "since") && (rc = cli_u64("--since", CLI_OPT(o, "since"),
	                                         0, UINT64_MAX, &since)))
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
	if (!cli_json) {
		/* The STATE column is as wide as its widest entry among the
		 * batches listed: a first pass over their headers. */
		for (uint64_t id = last; id > since && (!limit || n < limit);
		     id--) {
			lb_batch_info bi;
			rc = lb_batch_info_get(db, id, &bi);
			if (rc == LB_ENOTFOUND)
				continue;
			if (rc < 0)
				break;
			n++;
			b.len = 0;
			state_human(&b, &bi);
			if (b.len > sw)
				sw = b.len;
		}
		b.len = 0;
		n = 0;
		if (rc < 0 && rc != LB_ENOTFOUND) {
			sb_free(&b);
			lb_close(db);
			return cli_lberr(rc, "%s: cannot read the log", pos[0]);
		}
		sb_printf(&b, "%8s  %-24s %10s %10s %10s  %-*s  %s\n", "BATCH",
		          "TIME", "RECORDS", "RAW", "STORED", (int)sw, "STATE",
		          "LABEL");
	}
	for (uint64_t id = last; id > since && (!limit || n < limit); id--) {
		lb_batch_info bi;
		rc = lb_batch_info_get(db, id, &bi);
		if (rc == LB_ENOTFOUND)
			continue;
		if (rc < 0)
			break;
		n++;
		log_line(&b, &bi, sw);
		if (b.len > (1u << 16))
			sb_flush(&b, stdout);
	}
	sb_flush(&b, stdout);
	if (CLI_OPT(o, "follow") && (rc >= 0 || rc == LB_ENOTFOUND)) {
		/* new batches, oldest first, as they commit */
		cli_follow_signals();
		uint64_t id = last;
		for (rc = 0;;) {
			rc = cli_follow_wait(db, id, &last);
			if (rc)
				break;
			while (id < last && rc >= 0) {
				lb_batch_info bi;
				if ((rc = lb_batch_info_get(db, ++id, &bi)) ==
				    0)
					log_line(&b, &bi, sw);
			}
			sb_flush(&b, stdout);
			fflush(stdout);
			if (rc < 0)
				break;
		}
		if (rc == 1)
			rc = 0;
	}
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
		cli_change_head(b, c);
		sb_puts(b, ",\"before\":");
		render(x, c, c->before, c->blen, c->has_before);
		sb_puts(b, ",\"after\":");
		render(x, c, c->after, c->alen, c->has_after);
		sb_putc(b, '}');
		return;
	}
	sb_printf(b, "%-6s %s ", cli_op_name(c->op), c->table);
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
	if (CLI_OPT(o, "limit") && (rc = cli_u64("--limit", CLI_OPT(o, "limit"),
	                                         1, UINT64_MAX, &x.limit))) {
		ctx_close(&x);
		return rc;
	}
	rc = lb_batch_info_get(x.db, id, &bi);
	if (rc < 0) {
		ctx_close(&x);
		return cli_lberr(rc, "batch %" PRIu64, id);
	}
	if (cli_json) {
		cli_batch_info_json(&x.b, &bi);
		sb_putc(&x.b, '\n');
	} else {
		sb_printf(&x.b, "batch %" PRIu64 "  ", bi.id);
		cli_time(&x.b, bi.time_ns);
		sb_printf(&x.b, "  %" PRIu64 " %s  ", bi.records,
		          cli_plural(bi.records, "record", "records"));
		state_human(&x.b, &bi);
		sb_puts(&x.b, "\nlabel ");
		cli_text_human(&x.b, bi.label, strlen(bi.label));
		sb_putc(&x.b, '\n');
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
		if (have && x->info.label[0]) {
			sb_puts(b, "  ");
			cli_text_human(b, x->info.label, strlen(x->info.label));
		}
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
	if ((rc = cli_key_arg(pos[2], CLI_OPT(o, "base64-key") != NULL,
	                      &key))) {
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

/* The distinct batches named by issues of kind (CONFLICT: the later
 * batches; FOREIGN_KEY: the batch that last changed a record still
 * referring to a key the rollback removes), newest first. */
static size_t issue_batches(const lb_result *r, int kind, uint64_t *out)
{
	size_t n = cli_issue_batches(r, kind, out);
	qsort(out, n, sizeof *out, cmp_desc);
	return n;
}

static void id_list(sbuf *b, const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "%s%" PRIu64, i ? ", " : "", ids[i]);
}

/*
 * The batches a rollback undoes (or, on a dry run, would undo), newest
 * first, as the library reports them (res->undone). A rollback-to undoes
 * every batch after its target: a range, lo..hi. info holds the first
 * UNDONE_SHOWN batches' headers for the human form.
 */
#define UNDONE_SHOWN 20
typedef struct undone_set {
	const uint64_t *ids;
	size_t n;
	uint64_t lo, hi; /* the range of a rollback-to (lo 0: not one) */
	lb_batch_info *info;
	size_t ninfo;
} undone_set;

static void undone_free(undone_set *u)
{
	free(u->info);
	memset(u, 0, sizeof *u);
}

static size_t undone_count(const undone_set *u)
{
	return u->n;
}

/* The i-th batch of the set, newest first. */
static uint64_t undone_at(const undone_set *u, size_t i)
{
	return u->ids[i];
}

/* Take the set from res and read the first UNDONE_SHOWN headers. */
static int undone_describe(lb_db *db, const lb_result *res, int range,
                           undone_set *u)
{
	size_t n;
	memset(u, 0, sizeof *u);
	u->ids = res->undone;
	u->n = res->undone ? res->nundone : 0;
	if (range && u->n && u->ids[0] - u->ids[u->n - 1] + 1 == u->n) {
		u->hi = u->ids[0];
		u->lo = u->ids[u->n - 1];
	}
	n = u->n > UNDONE_SHOWN ? UNDONE_SHOWN : u->n;
	u->info = cli_xmalloc((n ? n : 1) * sizeof *u->info);
	for (size_t i = 0; i < n; i++) {
		int rc = lb_batch_info_get(db, u->ids[i], &u->info[u->ninfo]);
		if (rc < 0)
			return rc;
		u->ninfo++;
	}
	return 0;
}

static void ids_json(sbuf *b, const undone_set *u)
{
	size_t n = undone_count(u);
	sb_putc(b, '[');
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "%s%" PRIu64, i ? "," : "", undone_at(u, i));
	sb_putc(b, ']');
}

/* "undid batches 6, 5, 4", "would undo batches 6-9": the set in words. */
static void undone_words(sbuf *b, const undone_set *u)
{
	size_t n = undone_count(u);
	sb_printf(b, "%s ", cli_plural(n, "batch", "batches"));
	if (u->lo && n > 2)
		sb_printf(b, "%" PRIu64 "-%" PRIu64, u->lo, u->hi);
	else
		for (size_t i = 0; i < n; i++)
			sb_printf(b, "%s%" PRIu64, i ? ", " : "",
			          undone_at(u, i));
}

/* One line per batch of a dry run: id, records, label, state. */
static void undone_lines(sbuf *b, const undone_set *u)
{
	size_t n = undone_count(u);
	for (size_t i = 0; i < u->ninfo; i++) {
		const lb_batch_info *bi = &u->info[i];
		sb_printf(b, "  batch %" PRIu64 " (%" PRIu64 " %s): ", bi->id,
		          bi->records,
		          cli_plural(bi->records, "record", "records"));
		cli_text_human(b, bi->label, strlen(bi->label));
		if (bi->rolled_back_by)
			sb_printf(b, " (rolled back by %" PRIu64 " already)",
			          bi->rolled_back_by);
		sb_putc(b, '\n');
	}
	if (n > u->ninfo)
		sb_printf(b, "  ... and %zu more (logbook log)\n",
		          n - u->ninfo);
}

enum { RB_STRICT, RB_CASCADE, RB_FORCE, RB_TO };

/* The rollback report as one JSON object; later: the conflicting batches. */
static void rollback_json(sbuf *b, uint64_t id, int rc, const lb_result *res,
                          int dry, const undone_set *u, const uint64_t *later,
                          size_t nl)
{
	sb_printf(b,
	          "{\"success\":%s,\"batch\":%" PRIu64
	          ",\"dry_run\":%s,\"new_batch\":",
	          rc == 0 ? "true" : "false", id, dry ? "true" : "false");
	jw_u64_or_null(b, res->batch_id);
	sb_printf(b, ",\"records\":%" PRIu64 ",\"error\":", res->records);
	if (rc == 0)
		sb_puts(b, "null");
	else
		jw_cstr(b, rc == LB_ECONFLICT ? "conflict" : "validation");
	sb_puts(b, ",\"conflicting_batches\":[");
	for (size_t i = 0; i < nl; i++)
		sb_printf(b, "%s%" PRIu64, i ? "," : "", later[i]);
	sb_puts(b, "],\"undone\":");
	ids_json(b, u);
	sb_puts(b, ",\"issues\":[");
	for (size_t i = 0; i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		if (i)
			sb_putc(b, ',');
		cli_issue_fmt(b, 0, cli_issue_kind(is->kind), is->table,
		              is->key, is->klen, is->field, is->message,
		              is->batch);
	}
	sb_puts(b, "]}\n");
	sb_flush(b, stdout);
}

/* A rollback that writes (or would write) something, or nothing. */
static void rollback_text(sbuf *b, uint64_t id, const lb_result *res, int dry,
                          int mode, const undone_set *u, int nothing)
{
	const char *what =
	        mode == RB_TO ? "rollback to batch" : "rollback of batch";
	if (nothing) {
		if (mode == RB_TO)
			sb_printf(
			        b,
			        "%s %" PRIu64 ": nothing to write: the tables "
			        "hold what they held right after batch %" PRIu64
			        "%s\n",
			        what, id, id, dry ? " (dry run)" : "");
		else
			sb_printf(b,
			          "%s %" PRIu64 ": nothing to write: every key "
			          "it changed holds its value from before it "
			          "already; batch %" PRIu64
			          " stays standing%s\n",
			          what, id, id, dry ? " (dry run)" : "");
		return;
	}
	if (dry)
		sb_printf(b,
		          "%s %" PRIu64 " would write %" PRIu64
		          " %s; no conflicts (dry run)\n",
		          what, id, res->records,
		          cli_plural(res->records, "record", "records"));
	else
		sb_printf(b,
		          "%s %" PRIu64 " in batch %" PRIu64 " (%" PRIu64
		          " %s)\n",
		          mode == RB_TO ? "rolled back to batch"
		                        : "rolled back batch",
		          id, res->batch_id, res->records,
		          cli_plural(res->records, "record", "records"));
	if (dry) {
		sb_puts(b, "would undo ");
		undone_words(b, u);
		sb_putc(b, '\n');
		undone_lines(b, u);
	} else if ((mode == RB_CASCADE || mode == RB_TO) && undone_count(u)) {
		sb_puts(b, "undid ");
		undone_words(b, u);
		sb_putc(b, '\n');
	}
}

/* The issues of a refused rollback, one line each. */
static void rollback_issues(sbuf *b, const lb_result *res, int mode)
{
	for (size_t i = 0; i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		if (is->kind == LB_ISSUE_CONFLICT)
			sb_puts(b, "conflict: ");
		else if (is->kind == LB_ISSUE_FOREIGN_KEY)
			sb_puts(b, "foreign key: ");
		else
			sb_puts(b, "issue: ");
		sb_printf(b, "%s ", is->table ? is->table : "?");
		cli_key_human(b, is->key, is->klen);
		if (is->kind == LB_ISSUE_CONFLICT && is->batch) {
			sb_printf(b, " was changed by batch %" PRIu64,
			          is->batch);
		} else if (is->message) {
			sb_printf(b, ": %s", cli_words(is->message));
			if (is->kind == LB_ISSUE_FOREIGN_KEY && is->batch)
				sb_printf(b,
				          " (the referrer was written "
				          "by batch %" PRIu64 "%s)",
				          is->batch,
				          mode == RB_CASCADE || mode == RB_TO
				                  ? ""
				                  : ": --cascade also "
				                    "undoes it");
		}
		sb_putc(b, '\n');
		sb_flush(b, stdout);
	}
	if (res->nissues_total > res->nissues)
		printf("... and %zu more\n", res->nissues_total - res->nissues);
}

/* Why a rollback was refused, and the option that would resolve it (on
 * stderr). */
static void rollback_refusal(sbuf *b, uint64_t id, int rc, const lb_result *res,
                             int dry, int mode, const uint64_t *later,
                             size_t nl, const uint64_t *refs, size_t nr)
{
	if (rc == LB_ECONFLICT && !nl) {
		/* a table no longer in the state the undone batches left: the
		 * only conflict a cascade can meet (docs/ROLLBACK.md) */
		cli_err("batch %" PRIu64 ": %zu %s: a table is no "
		        "longer in the state the undone batches left; nothing "
		        "%s",
		        id, res->nissues_total,
		        cli_plural(res->nissues_total, "conflict", "conflicts"),
		        dry ? "would be written" : "written");
	} else if (rc == LB_ECONFLICT) {
		sb_printf(b, "batch %" PRIu64 ": %zu %s changed by later %s ",
		          id, res->nissues_total,
		          cli_plural(res->nissues_total, "key", "keys"),
		          cli_plural(nl, "batch", "batches"));
		id_list(b, later, nl);
		sb_printf(b, "; nothing %s",
		          dry ? "would be written" : "written");
		if (mode != RB_CASCADE) {
			sb_printf(b, ". Use --cascade to also roll back %s ",
			          cli_plural(nl, "batch", "batches"));
			id_list(b, later, nl);
			sb_printf(b,
			          " (and any batch depending on %s), or "
			          "--force to restore over %s changes",
			          cli_plural(nl, "it", "them"),
			          cli_plural(nl, "its", "their"));
		}
		cli_err("%s", sb_str(b));
	} else if (rc == LB_EVALIDATION) {
		sb_printf(b,
		          "batch %" PRIu64 ": refused: %zu foreign-key %s; "
		          "nothing %s",
		          id, res->nissues_total,
		          cli_plural(res->nissues_total, "issue", "issues"),
		          dry ? "would be written" : "written");
		if (nr && mode != RB_CASCADE && mode != RB_TO) {
			sb_printf(b, ". Use --cascade to also roll back %s ",
			          cli_plural(nr, "batch", "batches"));
			id_list(b, refs, nr);
			sb_puts(b, ", which wrote the records referring to "
			           "its keys");
		}
		cli_err("%s", sb_str(b));
	}
}

/* Report the outcome of lb_rollback(), lb_rollback_to() or their dry runs.
 * mode is RB_*; u the batches undone (or that would be). */
static int rollback_report(uint64_t id, int rc, const lb_result *res, int dry,
                           int mode, const undone_set *u)
{
	uint64_t *later = cli_xmalloc((res->nissues + 1) * sizeof *later);
	uint64_t *refs = cli_xmalloc((res->nissues + 1) * sizeof *refs);
	size_t nl = issue_batches(res, LB_ISSUE_CONFLICT, later);
	size_t nr = issue_batches(res, LB_ISSUE_FOREIGN_KEY, refs);
	int nothing = rc == 0 && (dry ? res->records == 0 : !res->batch_id);
	sbuf b;
	sb_init(&b);
	if (cli_json) {
		rollback_json(&b, id, rc, res, dry, u, later, nl);
		sb_flush(&b, stdout);
	} else if (rc == 0) {
		rollback_text(&b, id, res, dry, mode, u, nothing);
		sb_flush(&b, stdout);
	} else {
		rollback_issues(&b, res, mode);
	}
	rollback_refusal(&b, id, rc, res, dry, mode, later, nl, refs, nr);
	sb_free(&b);
	free(later);
	free(refs);
	return rc == 0 ? 0 : CLI_DATA;
}

/* The outcome of a rollback or rollback-to call: its report, and the exit
 * status. what names the call for an error. */
static int rollback_done(lb_db *db, uint64_t id, int rc, lb_result *res,
                         int dry, int mode, const char *what)
{
	undone_set u;
	int rc2 = undone_describe(db, res, mode == RB_TO, &u);
	lb_close(db);
	if (rc < 0 && rc != LB_ECONFLICT && rc != LB_EVALIDATION) {
		rc = cli_lberr(rc, "%s", what);
	} else if (rc2 < 0) {
		cli_lberr(rc2, "cannot read the batches %s undid",
		          dry ? "the rollback would have" : "the new batch");
		rc = CLI_FAIL;
	} else {
		rc = rollback_report(id, rc, res, dry, mode, &u);
	}
	lb_result_free(res);
	undone_free(&u);
	return rc;
}

int cmd_rollback(int argc, char **argv)
{
	cli_opt o[] = {
	        {"cascade", 0, NULL}, {"force", 0, NULL}, {"dry-run", 0, NULL}};
	const char *pos[2];
	char what[64];
	size_t np;
	uint64_t id;
	unsigned flags;
	lb_result res;
	lb_db *db;
	int rc, dry, mode;

	/* rollback DIR --run R: a whole import run (runs.c) */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--run") || !strncmp(argv[i], "--run=", 6))
			return cmd_rollback_run(argc, argv);
	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 2, 2, &np);
	if (rc)
		return rc;
	if ((rc = batch_arg(pos[1], &id)))
		return rc;
	if (CLI_OPT(o, "cascade") && CLI_OPT(o, "force"))
		return cli_usage("--cascade and --force exclude each other");
	dry = CLI_OPT(o, "dry-run") != NULL;
	mode = CLI_OPT(o, "cascade") ? RB_CASCADE
	       : CLI_OPT(o, "force") ? RB_FORCE
	                             : RB_STRICT;
	flags = (CLI_OPT(o, "cascade") ? LB_CASCADE : 0) |
	        (CLI_OPT(o, "force") ? LB_FORCE : 0) | (dry ? LB_DRYRUN : 0);
	rc = cli_open(pos[0], 0, 0, &db);
	if (rc)
		return rc;
	memset(&res, 0, sizeof res);
	rc = lb_rollback(db, id, flags, &res);
	snprintf(what, sizeof what, "cannot roll back batch %" PRIu64, id);
	return rollback_done(db, id, rc, &res, dry, mode, what);
}

int cmd_rollback_to(int argc, char **argv)
{
	cli_opt o[] = {{"dry-run", 0, NULL}};
	const char *pos[2];
	char what[64];
	size_t np;
	uint64_t id;
	lb_result res;
	lb_db *db;
	int rc, dry;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 2, 2, &np);
	if (rc)
		return rc;
	if ((rc = cli_u64("BATCH", pos[1], 0, UINT64_MAX, &id)))
		return rc;
	dry = CLI_OPT(o, "dry-run") != NULL;
	rc = cli_open(pos[0], 0, 0, &db);
	if (rc)
		return rc;
	memset(&res, 0, sizeof res);
	rc = lb_rollback_to_ex(db, id, dry ? LB_DRYRUN : 0, &res);
	snprintf(what, sizeof what, "cannot roll back to batch %" PRIu64, id);
	return rollback_done(db, id, rc, &res, dry, RB_TO, what);
}
