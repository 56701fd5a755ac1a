/* SPDX-License-Identifier: MIT */
/*
 * feed.c: the log as a feed from the command line: changes (with --follow
 * and --consumer), diff, consumers, and the as-of reads of get and export.
 *
 * `changes` prints one JSON line per change record, batch after batch in
 * log order, each batch read with lb_changes in one read transaction. With
 * --consumer it acknowledges a batch only after every line of it has been
 * written out (stdout flushed), so a consumer killed at any instant resumes
 * at the first batch it had not acknowledged: it may print that batch's
 * lines again (at least once), never skip one.
 */
#include "cli.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* ---- following ----------------------------------------------------------- */

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

void cli_follow_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int cli_follow_stopped(void)
{
	return stop_flag != 0;
}

int cli_follow_wait(lb_db *db, uint64_t after, uint64_t *last)
{
	/* short waits, so that a signal ends the follow promptly */
	while (!stop_flag) {
		int rc = lb_wait(db, after, 250, last);
		if (rc != LB_EBUSY)
			return rc;
	}
	return 1;
}

/* ---- changes ------------------------------------------------------------- */

typedef struct feed {
	lb_db *db;
	cli_catalog cat;
	int cat_loaded;
	sbuf b;
	const char *table; /* --table */
	lb_batch_info bi;
	uint64_t n;
	/* the batch's part of each line, written once per batch */
	sbuf head, tail;
	uint64_t reloaded; /* the batch the catalog was last reloaded at */
} feed;

/* Open the database at dir (read-only if rdonly) and its catalog into a
 * zeroed f; 0 or the CLI's exit code (the error printed). */
static int feed_open(feed *f, const char *dir, int rdonly)
{
	int rc;
	memset(f, 0, sizeof *f);
	sb_init(&f->b);
	sb_init(&f->head);
	sb_init(&f->tail);
	if ((rc = cli_open(dir, rdonly, 0, &f->db)))
		return rc;
	if ((rc = cli_catalog_load(f->db, &f->cat)) < 0) {
		lb_close(f->db);
		return cli_lberr(rc, "%s: cannot list tables", dir);
	}
	return 0;
}

static void feed_close(feed *f)
{
	sb_free(&f->b);
	sb_free(&f->head);
	sb_free(&f->tail);
	cli_catalog_free(&f->cat);
	lb_close(f->db);
}

static const char *op_word(const lb_change *c)
{
	switch (c->op) {
	case LB_OP_PUT:
		return c->has_before ? "update" : "insert";
	case LB_OP_DELETE:
		return "delete";
	case LB_OP_TABLE:
		return "table";
	default:
		return "?";
	}
}

static int schema_of(feed *f, const char *table)
{
	cli_table *t = cli_catalog_find(&f->cat, table);
	if (!t && !cli_table_reserved(table) && f->reloaded != f->bi.id + 1) {
		f->reloaded = f->bi.id + 1;
		/* a table created after the catalog was read */
		cli_catalog nc;
		if (cli_catalog_load(f->db, &nc) == 0) {
			cli_catalog_free(&f->cat);
			f->cat = nc;
			t = cli_catalog_find(&f->cat, table);
		}
	}
	return t && t->has_schema;
}

static void image(feed *f, const lb_change *c, const void *v, size_t vl,
                  int has)
{
	if (!has)
		sb_puts(&f->b, "null");
	else if (c->op == LB_OP_TABLE)
		jw_value(&f->b, 1, v, vl);
	else
		jw_value(&f->b, schema_of(f, c->table), v, vl);
}

/* The "op", "table", "key", "before" and "after" members of a change's
 * JSON line, op being OP. */
static void change_fields(feed *f, const lb_change *c, const char *op)
{
	sbuf *b = &f->b;
	sb_puts(b, "\"op\":");
	jw_cstr(b, op);
	sb_puts(b, ",\"table\":");
	jw_cstr(b, c->table);
	sb_puts(b, ",\"key\":");
	if (c->op == LB_OP_TABLE)
		sb_puts(b, "null");
	else
		jw_bytes(b, c->key, c->klen);
	sb_puts(b, ",\"before\":");
	image(f, c, c->before, c->blen, c->has_before);
	sb_puts(b, ",\"after\":");
	image(f, c, c->after, c->alen, c->has_after);
}

static int change_line(void *ctx, const lb_change *c)
{
	feed *f = ctx;
	sbuf *b = &f->b;
	if (f->table && strcmp(f->table, c->table) != 0)
		return 0;
	sb_put(b, f->head.p, f->head.len);
	sb_putc(b, ',');
	change_fields(f, c, op_word(c));
	sb_put(b, f->tail.p, f->tail.len);
	f->n++;
	if (b->len >= (1u << 16))
		sb_flush(b, stdout);
	return 0;
}

static int one_batch(feed *f, uint64_t id)
{
	int rc = lb_batch_info_get(f->db, id, &f->bi);
	if (rc < 0)
		return cli_lberr(rc, "batch %" PRIu64, id);
	f->head.len = f->tail.len = 0;
	sb_printf(&f->head, "{\"batch\":%" PRIu64 ",\"time\":\"", id);
	cli_time(&f->head, f->bi.time_ns);
	sb_puts(&f->head, "\",\"label\":");
	jw_cstr(&f->head, cli_utf8_valid(f->bi.label, strlen(f->bi.label))
	                          ? f->bi.label
	                          : "");
	sb_puts(&f->tail, ",\"undoes\":");
	if (f->bi.undoes)
		jw_u64(&f->tail, f->bi.undoes);
	else
		sb_puts(&f->tail, "null");
	sb_puts(&f->tail, "}\n");
	rc = lb_changes(f->db, id, change_line, f);
	if (rc < 0)
		return cli_lberr(
		        rc, "cannot read the changes of batch %" PRIu64, id);
	return 0;
}

int cmd_changes(int argc, char **argv)
{
	cli_opt o[] = {{"since", 1, NULL},
	               {"until", 1, NULL},
	               {"table", 1, NULL},
	               {"follow", 0, NULL},
	               {"consumer", 1, NULL}};
	const char *pos[1];
	size_t np;
	uint64_t since = 0, until = UINT64_MAX, last;
	const char *consumer = CLI_OPT(o, "consumer");
	feed f;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	consumer = CLI_OPT(o, "consumer");
	if (CLI_OPT(o, "since") && (rc = cli_u64("--since", CLI_OPT(o, "since"),
	                                         0, UINT64_MAX, &since)))
		return rc;
	if (CLI_OPT(o, "until") && (rc = cli_u64("--until", CLI_OPT(o, "until"),
	                                         0, UINT64_MAX, &until)))
		return rc;
	if ((rc = feed_open(&f, pos[0], consumer == NULL)))
		return rc;
	f.table = CLI_OPT(o, "table");
	if (consumer) {
		lb_consumer_info ci;
		rc = lb_consumer_get(f.db, consumer, &ci);
		if (rc == LB_ENOTFOUND) {
			/* a new consumer starts at --since (or the start) */
			rc = lb_consumer_ack(f.db, consumer, since);
		} else if (rc == 0 && !CLI_OPT(o, "since")) {
			since = ci.acked;
		} else if (rc == 0 && since < ci.acked) {
			rc = cli_err("consumer %s acknowledged batch %" PRIu64
			             " already: --since %" PRIu64
			             " would go back",
			             consumer, ci.acked, since);
			goto out;
		}
		if (rc < 0) {
			rc = cli_lberr(rc, "consumer %s", consumer);
			goto out;
		}
	}
	if (CLI_OPT(o, "follow"))
		cli_follow_signals();
	uint64_t id = since;
	for (;;) {
		if ((rc = lb_last_batch(f.db, &last)) < 0) {
			rc = cli_lberr(rc, "%s: cannot read the log", pos[0]);
			break;
		}
		if (last > until)
			last = until;
		while (id < last && !cli_follow_stopped()) {
			if ((rc = one_batch(&f, ++id)) != 0)
				break;
			if (consumer) {
				/* every line out before the acknowledgement */
				sb_flush(&f.b, stdout);
				fflush(stdout);
				if ((rc = lb_consumer_ack(f.db, consumer, id)) <
				    0) {
					rc = cli_lberr(rc, "consumer %s",
					               consumer);
					break;
				}
			}
		}
		sb_flush(&f.b, stdout);
		fflush(stdout);
		if (rc || !CLI_OPT(o, "follow") || id >= until ||
		    cli_follow_stopped())
			break;
		rc = cli_follow_wait(f.db, id, &last);
		if (rc == 1) {
			rc = 0;
			break;
		}
		if (rc < 0) {
			rc = cli_lberr(rc, "%s: waiting for batches", pos[0]);
			break;
		}
	}
out:
	sb_flush(&f.b, stdout);
	feed_close(&f);
	return rc;
}

/* ---- diff ---------------------------------------------------------------- */

static int diff_line(void *ctx, const lb_change *c)
{
	feed *f = ctx;
	sbuf *b = &f->b;
	const char *op = c->op == LB_OP_TABLE ? "table"
	                 : !c->has_after      ? "delete"
	                 : c->has_before      ? "update"
	                                      : "insert";
	if (cli_json) {
		sb_putc(b, '{');
		change_fields(f, c, op);
		sb_puts(b, "}\n");
	} else {
		sb_printf(b, "%-6s %s ", op, c->table);
		if (c->op != LB_OP_TABLE)
			cli_key_human(b, c->key, c->klen);
		sb_puts(b, "\n  before: ");
		image(f, c, c->before, c->blen, c->has_before);
		sb_puts(b, "\n  after:  ");
		image(f, c, c->after, c->alen, c->has_after);
		sb_putc(b, '\n');
	}
	f->n++;
	if (b->len >= (1u << 16))
		sb_flush(b, stdout);
	return 0;
}

int cmd_diff(int argc, char **argv)
{
	const char *pos[3];
	size_t np;
	uint64_t a, b;
	feed f;
	int rc = cli_parse(argc, argv, NULL, 0, pos, 3, 3, &np);
	if (rc)
		return rc;
	if ((rc = cli_u64("A", pos[1], 0, UINT64_MAX, &a)) ||
	    (rc = cli_u64("B", pos[2], 0, UINT64_MAX, &b)))
		return rc;
	if ((rc = feed_open(&f, pos[0], 1)))
		return rc;
	rc = lb_diff(f.db, a, b, diff_line, &f);
	sb_flush(&f.b, stdout);
	if (rc < 0)
		rc = cli_lberr(rc, "diff of batches %" PRIu64 " and %" PRIu64,
		               a, b);
	feed_close(&f);
	return rc;
}

/* ---- consumers ----------------------------------------------------------- */

static int consumer_line(void *ctx, const lb_consumer_info *c)
{
	sbuf *b = ctx;
	if (cli_json) {
		sb_puts(b, "{\"name\":");
		jw_cstr(b, c->name);
		sb_printf(b, ",\"acked\":%" PRIu64 ",\"time\":\"", c->acked);
		cli_time(b, c->time_ns);
		sb_printf(b, "\",\"lost\":%s}\n", c->lost ? "true" : "false");
	} else {
		sb_printf(b, "%-24s %10" PRIu64 "  ", c->name, c->acked);
		cli_time(b, c->time_ns);
		sb_printf(b, "  %s\n", c->lost ? "lost" : "-");
	}
	return 0;
}

int cmd_consumers(int argc, char **argv)
{
	cli_opt o[] = {
	        {"drop", 1, NULL}, {"max-lag", 1, NULL}, {"max-age", 1, NULL}};
	const char *pos[1];
	size_t np;
	lb_db *db;
	sbuf b;
	int rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	int write = CLI_OPT(o, "drop") || CLI_OPT(o, "max-lag") ||
	            CLI_OPT(o, "max-age");
	uint64_t lag = 0, age = 0;
	if ((rc = cli_open(pos[0], !write, 0, &db)))
		return rc;
	if (CLI_OPT(o, "drop") &&
	    (rc = lb_consumer_drop(db, CLI_OPT(o, "drop"))) < 0) {
		rc = cli_lberr(rc, "dropping consumer %s", CLI_OPT(o, "drop"));
		goto out;
	}
	if (CLI_OPT(o, "max-lag") || CLI_OPT(o, "max-age")) {
		if ((rc = lb_consumer_limits_get(db, &lag, &age)) < 0) {
			rc = cli_lberr(rc, "%s: consumer limits", pos[0]);
			goto out;
		}
		if ((CLI_OPT(o, "max-lag") &&
		     (rc = cli_u64("--max-lag", CLI_OPT(o, "max-lag"), 0,
		                   UINT64_MAX, &lag))) ||
		    (CLI_OPT(o, "max-age") &&
		     (rc = cli_u64("--max-age", CLI_OPT(o, "max-age"), 0,
		                   UINT64_MAX, &age))))
			goto out;
		if ((rc = lb_consumer_limits_set(db, lag, age)) < 0) {
			rc = cli_lberr(rc, "%s: consumer limits", pos[0]);
			goto out;
		}
	}
	sb_init(&b);
	if (!cli_json)
		sb_printf(&b, "%-24s %10s  %-24s  %s\n", "CONSUMER", "ACKED",
		          "TIME", "STATE");
	rc = lb_consumers(db, consumer_line, &b);
	sb_flush(&b, stdout);
	sb_free(&b);
	if (rc < 0)
		rc = cli_lberr(rc, "%s: cannot list consumers", pos[0]);
out:
	lb_close(db);
	return rc;
}

/* ---- export --as-of ------------------------------------------------------ */

/* The keys of one table that differ between batch N and now, in key
 * order, with their values right after N (the diff's before-images). */
typedef struct asof_keys {
	const char *table;
	struct akey {
		char *key;
		size_t klen;
		char *val;
		size_t vlen;
		int has;
	} * v;
	size_t n, cap;
} asof_keys;

static int collect_key(void *ctx, const lb_change *c)
{
	asof_keys *a = ctx;
	if (c->op == LB_OP_TABLE || strcmp(c->table, a->table) != 0)
		return 0;
	if (a->n == a->cap) {
		a->cap = a->cap ? 2 * a->cap : 64;
		a->v = cli_xrealloc(a->v, a->cap * sizeof *a->v);
	}
	struct akey *k = &a->v[a->n++];
	k->key = cli_xmalloc(c->klen ? c->klen : 1);
	memcpy(k->key, c->key, c->klen);
	k->klen = c->klen;
	k->has = c->has_before;
	k->vlen = c->has_before ? c->blen : 0;
	k->val = cli_xmalloc(k->vlen ? k->vlen : 1);
	if (k->vlen)
		memcpy(k->val, c->before, k->vlen);
	return 0;
}

static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int c = n ? memcmp(a, b, n) : 0;
	return c ? c : (al > bl) - (al < bl);
}

int cli_export_asof(lb_db *db, const cli_table *t, uint64_t n)
{
	lb_snapshot *s = NULL;
	uint64_t l1, l2;
	int rc;
	/* a snapshot at a known batch: the last batch is the same before
	 * and after it was opened */
	for (int tries = 0;; tries++) {
		if ((rc = lb_last_batch(db, &l1)) < 0 ||
		    (rc = lb_snapshot_open(db, &s)) < 0)
			return cli_lberr(rc, "cannot open a snapshot");
		if ((rc = lb_last_batch(db, &l2)) < 0) {
			lb_snapshot_close(s);
			return cli_lberr(rc, "cannot read the log");
		}
		if (l1 == l2)
			break;
		lb_snapshot_close(s);
		if (tries > 100)
			return cli_err("the log moves too fast to export");
	}
	if (n > l1) {
		lb_snapshot_close(s);
		return cli_err("no batch %" PRIu64 ": the last is %" PRIu64, n,
		               l1);
	}
	asof_keys a = {t->name, NULL, 0, 0};
	rc = lb_diff(db, n, l1, collect_key, &a);
	lb_cursor *c = NULL;
	if (rc < 0) {
		rc = cli_lberr(rc, "table %s as of batch %" PRIu64, t->name, n);
		goto out;
	}
	rc = lb_cursor_open(s, t->name, &c);
	if (rc < 0) {
		rc = cli_lberr(rc, "cannot read table '%s'", t->name);
		goto out;
	}
	/* merge the current keys with the changed ones, in key order */
	sbuf b;
	sb_init(&b);
	const void *k = NULL, *v = NULL;
	size_t kl = 0, vl = 0, i = 0;
	int more = (rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0;
	while (more || i < a.n) {
		int cmp = !more     ? 1
		          : i < a.n ? key_cmp(k, kl, a.v[i].key, a.v[i].klen)
		                    : -1;
		if (cmp < 0) {
			cli_record_line(&b, t->name, t->has_schema, k, kl, v,
			                vl);
		} else {
			if (a.v[i].has)
				cli_record_line(&b, t->name, t->has_schema,
				                a.v[i].key, a.v[i].klen,
				                a.v[i].val, a.v[i].vlen);
			i++;
		}
		if (cmp <= 0)
			more = (rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0;
		if (b.len >= (1u << 16))
			sb_flush(&b, stdout);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
	rc = rc < 0 && rc != LB_ENOTFOUND
	             ? cli_lberr(rc, "cannot read table '%s'", t->name)
	             : 0;
out:
	if (c)
		lb_cursor_close(c);
	lb_snapshot_close(s);
	for (size_t j = 0; j < a.n; j++) {
		free(a.v[j].key);
		free(a.v[j].val);
	}
	free(a.v);
	return rc;
}
