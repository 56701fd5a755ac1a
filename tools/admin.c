/* SPDX-License-Identifier: MIT */
/*
 * admin.c: init, table create, tables, checkpoint, replay, verify, prune
 * and stat.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 1 if path exists and is not an empty directory, 0 if it is missing or an
 * empty directory, -1 (errno) on another error. */
static int exists_nonempty(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int found = 0;
	if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return 1;
	d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			found = 1;
			break;
		}
	closedir(d);
	return found;
}

static int rm_cb(const char *p, const struct stat *st, int flag,
                 struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

/* For destinations the library refuses anyway, a clearer message first. */
static int check_dest(const char *dest)
{
	int e;
	if (!*dest)
		return cli_err("the destination is an empty name");
	e = exists_nonempty(dest);
	if (e < 0)
		return cli_err("%s: %s", dest, strerror(errno));
	if (e > 0)
		return cli_err("%s: exists already (give a new directory)",
		               dest);
	return 0;
}

/* Open the database in dir (rdonly: read-only) for a command that writes
 * into the new directory dest, once dest is known to be free. */
static int open_with_dest(const char *dir, int rdonly, const char *dest,
                          lb_db **db)
{
	int rc = cli_open(dir, rdonly, 0, db);
	if (rc)
		return rc;
	if ((rc = check_dest(dest))) {
		lb_close(*db);
		*db = NULL;
	}
	return rc;
}

/* ---- init, table create, tables ------------------------------------------ */

static int create_tables(lb_db *db, const cli_catalog *c, const char *file)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->t[i].name && cli_table_reserved(c->t[i].name))
			return cli_err("%s: table name '%s' is reserved (names "
			               "starting with \"logbook.\" are the "
			               "tool's)",
			               file, c->t[i].name);
	for (size_t i = 0; i < c->n; i++) {
		const cli_table *t = &c->t[i];
		lb_schema s;
		lb_field *f = NULL;
		int rc;
		if (t->has_schema)
			f = cli_schema_view(t, &s);
		rc = lb_table_create(db, t->name, t->has_schema ? &s : NULL);
		free(f);
		if (rc < 0)
			return cli_lberr(rc, "%s: cannot create table '%s'",
			                 file, t->name);
	}
	return 0;
}

/* refs must name a table declared earlier (creation order). */
static int check_refs(const cli_catalog *c, const char *file)
{
	for (size_t i = 0; i < c->n; i++)
		for (size_t f = 0; f < c->t[i].nfields; f++) {
			const char *ref = c->t[i].fields[f].ref;
			size_t j;
			if (!ref || !strcmp(ref, c->t[i].name))
				continue; /* a table may reference itself */
			for (j = 0; j < i; j++)
				if (!strcmp(c->t[j].name, ref))
					break;
			if (j == i)
				return cli_err("%s: table '%s' field '%s': "
				               "ref '%s' must name a table "
				               "declared before it (or itself)",
				               file, c->t[i].name,
				               c->t[i].fields[f].name, ref);
		}
	return 0;
}

int cmd_init(int argc, char **argv)
{
	cli_opt o[] = {{"schema", 1, NULL}};
	const char *pos[1];
	size_t np;
	cli_catalog cat = {NULL, 0};
	lb_options opt;
	lb_db *db = NULL;
	struct stat st;
	int rc, created_dir, e;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	const char *opt_schema = CLI_OPT(o, "schema");
	if (opt_schema) {
		rc = cli_schema_file(opt_schema, &cat);
		if (!rc)
			rc = check_refs(&cat, opt_schema);
		if (rc) {
			cli_catalog_free(&cat);
			return rc;
		}
	}
	e = exists_nonempty(pos[0]);
	if (e < 0) {
		rc = cli_err("%s: %s", pos[0], strerror(errno));
		goto out;
	}
	if (e > 0) {
		lb_options_init(&opt);
		opt.flags = LB_RDONLY;
		if (lb_open(pos[0], &opt, &db) == 0) {
			lb_close(db);
			rc = cli_err("%s: holds a logbook database already",
			             pos[0]);
		} else {
			rc = cli_err("%s: exists and is not an empty directory",
			             pos[0]);
		}
		goto out;
	}
	created_dir = stat(pos[0], &st) < 0;
	lb_options_init(&opt);
	opt.flags = LB_CREATE;
	rc = lb_open(pos[0], &opt, &db);
	if (rc < 0) {
		rc = cli_lberr(rc, "cannot create a database in %s", pos[0]);
		goto out;
	}
	rc = create_tables(db, &cat, opt_schema ? opt_schema : "");
	lb_close(db);
	if (rc) {
		/* Leave nothing half-made behind, but only what we made. */
		if (created_dir)
			nftw(pos[0], rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		goto out;
	}
	if (cli_json) {
		sbuf b;
		sb_init(&b);
		sb_puts(&b, "{\"dir\":");
		jw_cstr(&b, pos[0]);
		sb_printf(&b, ",\"tables\":%zu}\n", cat.n);
		sb_flush(&b, stdout);
		sb_free(&b);
	} else {
		printf("created %s", pos[0]);
		if (cat.n)
			printf(" with %zu table%s", cat.n,
			       cat.n == 1 ? "" : "s");
		printf("\n");
	}
out:
	cli_catalog_free(&cat);
	return rc;
}

/* The records that do not fit a new schema (lb_table_alter's issues). */
static void alter_issues(const lb_result *res)
{
	sbuf b;
	sb_init(&b);
	for (size_t i = 0; i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		cli_issue_fmt(&b, 0,
		              is->kind == LB_ISSUE_FOREIGN_KEY ? "foreign_key"
		                                               : "format",
		              is->table, is->key, is->klen, is->field,
		              is->message, 0);
		sb_putc(&b, '\n');
		sb_flush(&b, stdout);
	}
	sb_free(&b);
	if (res->nissues_total > res->nissues)
		printf("... and %zu more\n", res->nissues_total - res->nissues);
}

/* What `table alter` did: batch 0 when the schema was that already. */
static void alter_report(const char *name, uint64_t batch)
{
	if (cli_json) {
		sbuf b;
		sb_init(&b);
		sb_puts(&b, "{\"table\":");
		jw_cstr(&b, name);
		sb_puts(&b, ",\"altered\":");
		sb_puts(&b, batch ? "true" : "false");
		sb_puts(&b, ",\"batch\":");
		jw_u64_or_null(&b, batch);
		sb_puts(&b, "}\n");
		sb_flush(&b, stdout);
		sb_free(&b);
	} else if (batch) {
		printf("changed the schema of table %s in batch %llu\n", name,
		       (unsigned long long)batch);
	} else {
		printf("table %s has that schema already: nothing written\n",
		       name);
	}
}

int cmd_table(int argc, char **argv)
{
	cli_opt o[] = {{"schema", 1, NULL}};
	const char *pos[3];
	size_t np;
	cli_catalog cat = {NULL, 0};
	cli_table *t = NULL, plain;
	lb_db *db;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 3, &np);
	if (rc)
		return rc;
	const char *opt_schema = CLI_OPT(o, "schema");
	int alter = !strcmp(pos[0], "alter");
	if (strcmp(pos[0], "create") && !alter)
		return cli_usage("unknown subcommand '%s' (use 'table create "
		                 "DIR NAME' or 'table alter DIR NAME --schema "
		                 "FILE')",
		                 pos[0]);
	if (np != 3)
		return cli_usage("expected DIR NAME");
	if (alter && !opt_schema)
		return cli_usage("table alter needs --schema FILE");
	if (cli_table_reserved(pos[2]))
		return cli_err("table name '%s' is reserved (names starting "
		               "with \"logbook.\" are the tool's)",
		               pos[2]);
	memset(&plain, 0, sizeof plain);
	plain.name = (char *)pos[2];
	t = &plain;
	if (opt_schema) {
		rc = cli_schema_file(opt_schema, &cat);
		if (rc)
			return rc;
		t = cli_catalog_find(&cat, pos[2]);
		if (!t && cat.n == 1 && !cat.t[0].name)
			t = &cat.t[0];
		if (!t) {
			rc = cli_err("%s: declares no table '%s'", opt_schema,
			             pos[2]);
			goto out;
		}
		if (!t->has_schema) {
			rc = cli_err("%s: table '%s' has no \"fields\"",
			             opt_schema, pos[2]);
			goto out;
		}
	}
	rc = cli_open(pos[1], 0, 0, &db);
	if (rc)
		goto out;
	lb_result res;
	memset(&res, 0, sizeof res);
	{
		lb_schema s;
		lb_field *f = NULL;
		if (t->has_schema)
			f = cli_schema_view(t, &s);
		rc = alter ? lb_table_alter(db, pos[2],
		                            t->has_schema ? &s : NULL, &res)
		           : lb_table_create(db, pos[2],
		                             t->has_schema ? &s : NULL);
		free(f);
	}
	lb_close(db);
	if (alter && rc == LB_EVALIDATION)
		alter_issues(&res);
	if (rc < 0) {
		rc = alter ? cli_lberr(rc,
		                       "cannot change the schema of table "
		                       "'%s'",
		                       pos[2])
		           : cli_lberr(rc, "cannot create table '%s'", pos[2]);
		lb_result_free(&res);
		goto out;
	}
	if (alter) {
		alter_report(pos[2], res.batch_id);
		lb_result_free(&res);
		goto out;
	}
	if (cli_json) {
		sbuf b;
		sb_init(&b);
		sb_puts(&b, "{\"table\":");
		jw_cstr(&b, pos[2]);
		sb_puts(&b, ",\"created\":true}\n");
		sb_flush(&b, stdout);
		sb_free(&b);
	} else {
		printf("created table %s (%s)\n", pos[2],
		       t->has_schema ? "with schema" : "opaque");
	}
out:
	cli_catalog_free(&cat);
	return rc;
}

int cmd_tables(int argc, char **argv)
{
	cli_opt o[] = {{"schema", 0, NULL}};
	const char *pos[1];
	size_t np, *idx;
	cli_catalog cat;
	lb_db *db;
	sbuf b;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	const char *opt_schema = CLI_OPT(o, "schema");
	rc = cli_open(pos[0], 1, 0, &db);
	if (rc)
		return rc;
	rc = cli_catalog_load(db, &cat);
	lb_close(db);
	if (rc < 0)
		return cli_lberr(rc, "%s: cannot list tables", pos[0]);
	sb_init(&b);
	if (opt_schema) {
		idx = cli_xmalloc((cat.n + 1) * sizeof *idx);
		cli_catalog_topo(&cat, idx);
		sb_puts(&b, "{\"tables\": [");
		for (size_t i = 0; i < cat.n; i++) {
			sb_puts(&b, i ? ",\n  " : "\n  ");
			cli_table_json(&b, &cat.t[idx[i]]);
		}
		sb_puts(&b, "\n]}\n");
		free(idx);
	} else if (cli_json) {
		for (size_t i = 0; i < cat.n; i++) {
			cli_table_json(&b, &cat.t[i]);
			b.len--; /* reopen the object to add "records" */
			sb_printf(&b, ",\"records\":%" PRIu64 "}\n",
			          cat.t[i].records);
		}
	} else {
		size_t w = 5;
		for (size_t i = 0; i < cat.n; i++)
			if (strlen(cat.t[i].name) > w)
				w = strlen(cat.t[i].name);
		sb_printf(&b, "%-*s  %12s  %s\n", (int)w, "TABLE", "RECORDS",
		          "SCHEMA");
		for (size_t i = 0; i < cat.n; i++) {
			sb_printf(&b, "%-*s  %12" PRIu64 "  ", (int)w,
			          cat.t[i].name, cat.t[i].records);
			cli_table_summary(&b, &cat.t[i]);
			sb_putc(&b, '\n');
		}
	}
	sb_flush(&b, stdout);
	sb_free(&b);
	cli_catalog_free(&cat);
	return 0;
}

/* ---- checkpoint, replay, verify, prune ----------------------------------- */

int cmd_checkpoint(int argc, char **argv)
{
	const char *pos[2];
	size_t np;
	uint64_t at = 0;
	lb_db *db;
	int rc;

	rc = cli_parse(argc, argv, NULL, 0, pos, 2, 2, &np);
	if (rc)
		return rc;
	if ((rc = open_with_dest(pos[0], 0, pos[1], &db)))
		return rc;
	rc = lb_checkpoint(db, pos[1], &at);
	lb_close(db);
	if (rc < 0)
		return cli_lberr(rc, "cannot write checkpoint %s", pos[1]);
	if (cli_json) {
		sbuf b;
		sb_init(&b);
		sb_puts(&b, "{\"checkpoint\":");
		jw_cstr(&b, pos[1]);
		sb_printf(&b, ",\"batch\":%" PRIu64 "}\n", at);
		sb_flush(&b, stdout);
		sb_free(&b);
	} else {
		printf("checkpoint at batch %" PRIu64 " written to %s\n", at,
		       pos[1]);
	}
	return 0;
}

int cmd_replay(int argc, char **argv)
{
	cli_opt o[] = {{"to", 1, NULL}, {"from", 1, NULL}};
	const char *pos[2];
	size_t np;
	uint64_t to = 0, last = 0;
	lb_result res;
	lb_db *db;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 2, 2, &np);
	if (rc)
		return rc;
	const char *opt_to = CLI_OPT(o, "to");
	const char *opt_from = CLI_OPT(o, "from");
	if (opt_to && (rc = cli_u64("--to", opt_to, 1, UINT64_MAX, &to)))
		return rc;
	if ((rc = open_with_dest(pos[0], 1, pos[1], &db)))
		return rc;
	if (to == 0) {
		rc = lb_last_batch(db, &last);
		if (rc < 0) {
			lb_close(db);
			return cli_lberr(rc, "%s", pos[0]);
		}
	}
	memset(&res, 0, sizeof res);
	rc = lb_replay(db, pos[1], to, opt_from, &res);
	lb_close(db);
	if (rc < 0) {
		lb_result_free(&res);
		if (rc == LB_ENOTFOUND && to)
			return cli_lberr(rc, "cannot replay to batch %" PRIu64,
			                 to);
		return cli_lberr(rc, "cannot replay into %s", pos[1]);
	}
	if (!to)
		to = last;
	if (cli_json) {
		sbuf b;
		sb_init(&b);
		sb_puts(&b, "{\"dest\":");
		jw_cstr(&b, pos[1]);
		sb_printf(&b, ",\"to\":%" PRIu64 ",\"records\":%" PRIu64, to,
		          res.records);
		sb_puts(&b, ",\"from\":");
		jw_cstr_or_null(&b, opt_from);
		sb_puts(&b, "}\n");
		sb_flush(&b, stdout);
		sb_free(&b);
	} else {
		printf("replayed %s to batch %" PRIu64 " into %s (%" PRIu64
		       " %s applied%s%s)\n",
		       pos[0], to, pos[1], res.records,
		       cli_plural(res.records, "record", "records"),
		       opt_from ? ", from checkpoint " : "",
		       opt_from ? opt_from : "");
	}
	lb_result_free(&res);
	return 0;
}

/* Open DIR for verify. Damage that keeps it from opening is a finding of
 * verify like any other (exit 1, reported as a failed check); other
 * failures (no database, a newer format, no permission) are errors. */
static int verify_open(const char *dir, lb_db **db)
{
	const char *d;
	int rc;
	rc = cli_lb_open(dir, LB_RDONLY, db);
	if (rc != LB_ECORRUPT)
		return rc < 0 ? cli_open(dir, 1, 0, db) : 0;
	d = cli_words(lb_errmsg());
	if (cli_json) {
		sbuf b;
		sb_init(&b);
		sb_puts(&b,
		        "{\"ok\":false,\"opened\":false,\"batches\":0,"
		        "\"segments\":0,\"records\":0,\"chain_ok\":false,"
		        "\"replay_ok\":null,\"bad_batch\":null,\"detail\":");
		jw_cstr(&b, cli_utf8_valid(d, strlen(d)) ? d : "");
		sb_puts(&b, "}\n");
		sb_flush(&b, stdout);
		sb_free(&b);
	} else {
		printf("open: FAILED\nverify: FAILED\n");
	}
	cli_err("%s: damaged, it does not open: %s", dir, d);
	return CLI_DATA;
}

int cmd_verify(int argc, char **argv)
{
	cli_opt o[] = {{"replay", 0, NULL}};
	const char *pos[1];
	size_t np;
	lb_verify_report rep;
	lb_db *db;
	int rc, replay;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	const char *opt_replay = CLI_OPT(o, "replay");
	replay = opt_replay != NULL;
	rc = verify_open(pos[0], &db);
	if (rc)
		return rc;
	rc = lb_verify(db, replay ? LB_VERIFY_REPLAY : 0, &rep);
	lb_close(db);
	if (rc < 0 && rc != LB_ECORRUPT)
		return cli_lberr(rc, "%s: cannot verify", pos[0]);
	if (cli_json) {
		sbuf b;
		sb_init(&b);
		sb_printf(&b,
		          "{\"ok\":%s,\"opened\":true,\"batches\":%" PRIu64
		          ",\"segments\":%" PRIu64 ",\"records\":%" PRIu64
		          ",\"chain_ok\":%s,\"replay_ok\":%s,\"bad_batch\":",
		          rc == 0 ? "true" : "false", rep.batches, rep.segments,
		          rep.records, rep.chain_ok ? "true" : "false",
		          !replay         ? "null"
		          : rep.replay_ok ? "true"
		                          : "false");
		jw_u64_or_null(&b, rep.bad_batch);
		sb_puts(&b, ",\"detail\":");
		jw_cstr(&b, cli_words(rep.detail));
		sb_puts(&b, "}\n");
		sb_flush(&b, stdout);
		sb_free(&b);
	} else {
		printf("batches %" PRIu64 ", segments %" PRIu64
		       ", records %" PRIu64 "\n",
		       rep.batches, rep.segments, rep.records);
		printf("hash chain: %s\n", rep.chain_ok ? "ok" : "FAILED");
		if (replay)
			printf("replay equals tables: %s\n",
			       rep.replay_ok ? "ok" : "FAILED");
		printf("%s\n", rc == 0 ? "verify: ok" : "verify: FAILED");
	}
	if (rc == LB_ECORRUPT) {
		const char *d =
		        cli_words(rep.detail[0] ? rep.detail : lb_errmsg());
		if (rep.bad_batch)
			cli_err("%s: verification failed at batch %" PRIu64
			        ": %s",
			        pos[0], rep.bad_batch, d);
		else
			cli_err("%s: verification failed: %s", pos[0], d);
		return CLI_DATA;
	}
	return 0;
}

int cmd_prune(int argc, char **argv)
{
	cli_opt o[] = {{"before", 1, NULL}};
	const char *pos[1];
	size_t np;
	uint64_t before;
	lb_db *db;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	const char *opt_before = CLI_OPT(o, "before");
	if (!opt_before)
		return cli_usage("--before BATCH is required");
	rc = cli_u64("--before", opt_before, 1, UINT64_MAX, &before);
	if (rc)
		return rc;
	rc = cli_open(pos[0], 0, 0, &db);
	if (rc)
		return rc;
	rc = lb_prune(db, before);
	lb_close(db);
	if (rc < 0)
		return cli_lberr(rc, "cannot prune before batch %" PRIu64,
		                 before);
	if (cli_json)
		printf("{\"pruned_before\":%" PRIu64 "}\n", before);
	else
		printf("pruned the log of batches before %" PRIu64 "\n",
		       before);
	return 0;
}

/* ---- stat ---------------------------------------------------------------- */

typedef struct ckpt_list {
	sbuf *b;
	size_t n;
} ckpt_list;

/* Does the checkpoint directory still hold a database? */
static int ckpt_present(const char *path)
{
	struct stat st;
	char *file;
	int ok;
	if (asprintf(&file, "%s/data.mdb", path) < 0)
		return 1;
	ok = stat(file, &st) == 0 && S_ISREG(st.st_mode);
	free(file);
	return ok;
}

static int ckpt_cb(void *ctx, uint64_t batch, const char *path, int64_t time_ns)
{
	ckpt_list *l = ctx;
	sbuf *b = l->b;
	int present = ckpt_present(path);
	if (cli_json) {
		if (l->n)
			sb_putc(b, ',');
		sb_printf(b, "{\"batch\":%" PRIu64 ",\"path\":", batch);
		jw_cstr(b, cli_utf8_valid(path, strlen(path)) ? path : "");
		sb_puts(b, ",\"time\":\"");
		cli_time(b, time_ns);
		sb_printf(b, "\",\"present\":%s}", present ? "true" : "false");
	} else {
		sb_printf(b, "  batch %" PRIu64 "  ", batch);
		cli_time(b, time_ns);
		sb_puts(b, "  ");
		cli_text_human(b, path, strlen(path));
		sb_puts(b, present ? "\n" : "  (missing: no database there)\n");
	}
	l->n++;
	return 0;
}

/* What `stat` reports: the log's counts, split between the batches whose
 * segments are in the log and the pruned ones, and data.mdb's size. */
typedef struct stat_counts {
	uint64_t last, rolled, undo, pruned;
	uint64_t raw, stored, records, segments;         /* in the log */
	uint64_t p_raw, p_stored, p_records, p_segments; /* pruned */
	uint64_t disk, apparent;
} stat_counts;

/* Sum every batch's header. */
static int stat_log(lb_db *db, stat_counts *s)
{
	int rc = lb_last_batch(db, &s->last);
	for (uint64_t id = 1; rc == 0 && id <= s->last; id++) {
		lb_batch_info bi;
		rc = lb_batch_info_get(db, id, &bi);
		if (rc == LB_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		/* A pruned batch's header keeps its counts, but its segments
		 * are gone: the log holds only the others. */
		if (bi.pruned) {
			s->p_raw += bi.raw_bytes;
			s->p_stored += bi.stored_bytes;
			s->p_records += bi.records;
			s->p_segments += bi.segments;
		} else {
			s->raw += bi.raw_bytes;
			s->stored += bi.stored_bytes;
			s->records += bi.records;
			s->segments += bi.segments;
		}
		s->rolled += bi.rolled_back_by != 0;
		s->undo += bi.undoes != 0;
		s->pruned += bi.pruned != 0;
	}
	return rc;
}

/* data.mdb's size on disk and apparent (0 when it cannot be read). */
static void stat_file(const char *dir, stat_counts *s)
{
	struct stat st;
	char *path;
	if (asprintf(&path, "%s/data.mdb", dir) > 0) {
		if (stat(path, &st) == 0) {
			s->disk = (uint64_t)st.st_blocks * 512;
			s->apparent = (uint64_t)st.st_size;
		}
		free(path);
	}
}

static void stat_json(sbuf *b, const char *dir, const cli_catalog *cat,
                      const stat_counts *s, const sbuf *ck)
{
	sb_puts(b, "{\"dir\":");
	jw_cstr(b, dir);
	sb_printf(b,
	          ",\"disk_bytes\":%" PRIu64 ",\"file_bytes\":%" PRIu64
	          ",\"tables\":[",
	          s->disk, s->apparent);
	for (size_t i = 0; i < cat->n; i++) {
		if (i)
			sb_putc(b, ',');
		sb_puts(b, "{\"name\":");
		jw_cstr(b, cat->t[i].name);
		sb_printf(b, ",\"records\":%" PRIu64 ",\"schema\":%s}",
		          cat->t[i].records,
		          cat->t[i].has_schema ? "true" : "false");
	}
	sb_printf(b,
	          "],\"batches\":%" PRIu64 ",\"rolled_back\":%" PRIu64
	          ",\"rollbacks\":%" PRIu64 ",\"pruned\":%" PRIu64
	          ",\"log_records\":%" PRIu64 ",\"segments\":%" PRIu64
	          ",\"log_raw_bytes\":%" PRIu64 ",\"log_stored_bytes\":%" PRIu64
	          ",\"pruned_records\":%" PRIu64 ",\"pruned_segments\":%" PRIu64
	          ",\"pruned_raw_bytes\":%" PRIu64
	          ",\"pruned_stored_bytes\":%" PRIu64 ",\"ratio\":",
	          s->last, s->rolled, s->undo, s->pruned, s->records,
	          s->segments, s->raw, s->stored, s->p_records, s->p_segments,
	          s->p_raw, s->p_stored);
	/* the ratio rounded to 3 decimals */
	jw_double(b, s->stored ? (double)(uint64_t)((double)s->raw /
	                                                    (double)s->stored *
	                                                    1000 +
	                                            0.5) /
	                                 1000
	                       : 0.0);
	sb_puts(b, ",\"checkpoints\":[");
	sb_put(b, ck->p, ck->len);
	sb_puts(b, "]}\n");
}

static void stat_text(sbuf *b, const char *dir, const cli_catalog *cat,
                      const stat_counts *s, const sbuf *ck, size_t nck)
{
	sb_printf(b, "database   %s\n", dir);
	sb_puts(b, "size       ");
	cli_size(b, s->disk);
	sb_puts(b, " on disk (data.mdb, ");
	cli_size(b, s->apparent);
	sb_puts(b, " apparent)\n");
	sb_printf(b, "tables     %zu\n", cat->n);
	for (size_t i = 0; i < cat->n; i++)
		sb_printf(b, "  %-24s %12" PRIu64 " %s%s\n", cat->t[i].name,
		          cat->t[i].records,
		          cli_plural(cat->t[i].records, "record", "records"),
		          cat->t[i].has_schema ? "" : " (opaque)");
	sb_printf(b,
	          "batches    %" PRIu64 " (%" PRIu64 " rolled back, %" PRIu64
	          " %s, %" PRIu64 " pruned)\n",
	          s->last, s->rolled, s->undo,
	          cli_plural(s->undo, "rollback", "rollbacks"), s->pruned);
	sb_printf(b, "log        %" PRIu64 " %s in %" PRIu64 " %s\n",
	          s->records, cli_plural(s->records, "record", "records"),
	          s->segments, cli_plural(s->segments, "segment", "segments"));
	sb_puts(b, "log bytes  ");
	cli_size(b, s->raw);
	sb_puts(b, " raw, ");
	cli_size(b, s->stored);
	sb_puts(b, " stored");
	if (s->stored)
		sb_printf(b, ", ratio %.2f",
		          (double)s->raw / (double)s->stored);
	sb_putc(b, '\n');
	if (s->pruned) {
		sb_printf(b,
		          "pruned     %" PRIu64 " %s, %" PRIu64
		          " %s in %" PRIu64 " %s (",
		          s->pruned, cli_plural(s->pruned, "batch", "batches"),
		          s->p_records,
		          cli_plural(s->p_records, "record", "records"),
		          s->p_segments,
		          cli_plural(s->p_segments, "segment", "segments"));
		cli_size(b, s->p_stored);
		sb_puts(b, " stored): no longer in the log\n");
	}
	sb_printf(b, "checkpoints %zu\n", nck);
	sb_put(b, ck->p, ck->len);
}

int cmd_stat(int argc, char **argv)
{
	const char *pos[1];
	size_t np;
	lb_db *db;
	cli_catalog cat;
	stat_counts s;
	sbuf b, ck;
	ckpt_list cl;
	int rc;

	memset(&s, 0, sizeof s);
	rc = cli_parse(argc, argv, NULL, 0, pos, 1, 1, &np);
	if (rc)
		return rc;
	rc = cli_open(pos[0], 1, 0, &db);
	if (rc)
		return rc;
	rc = cli_catalog_load(db, &cat);
	if (rc < 0) {
		lb_close(db);
		return cli_lberr(rc, "%s: cannot list tables", pos[0]);
	}
	if ((rc = stat_log(db, &s)) < 0) {
		cli_catalog_free(&cat);
		lb_close(db);
		return cli_lberr(rc, "%s: cannot read the batch log", pos[0]);
	}
	sb_init(&ck);
	cl.b = &ck;
	cl.n = 0;
	rc = lb_checkpoints(db, ckpt_cb, &cl);
	lb_close(db);
	if (rc < 0) {
		sb_free(&ck);
		cli_catalog_free(&cat);
		return cli_lberr(rc, "%s: cannot list checkpoints", pos[0]);
	}
	stat_file(pos[0], &s);
	sb_init(&b);
	if (cli_json)
		stat_json(&b, pos[0], &cat, &s, &ck);
	else
		stat_text(&b, pos[0], &cat, &s, &ck, cl.n);
	sb_flush(&b, stdout);
	sb_free(&b);
	sb_free(&ck);
	cli_catalog_free(&cat);
	return 0;
}

/* ---- compact --------------------------------------------------------------
 *
 * The library has no compaction call, so the command builds one from
 * lb_checkpoint(), whose copy is LMDB's compacting copy (no free pages:
 * neither those of pruned segments nor those of deleted records), and a
 * rename of the copy's data.mdb over the database's.
 *
 * Nobody else may have the database open meanwhile. Every process that
 * opens an LMDB environment holds a shared fcntl() lock on the first byte
 * of its lock.mdb for as long as it has it open, and tries an exclusive
 * one first to learn whether it is alone (then it resets the lock file).
 * So the command takes that lock exclusively itself: refused at once
 * (exit 3) if another process holds it; once held, a process that starts
 * opening the database waits in lb_open() until the command is done.
 *
 *  1. Take the exclusive lock on lock.mdb (it refuses if the database is
 *     open elsewhere), then lb_open(): LMDB finds the process alone,
 *     resets the lock file and turns the process's lock into a shared one
 *     (locks are per process); take it exclusively again.
 *  2. lb_checkpoint() into a new hidden directory beside DIR; open the copy
 *     and check that it holds the same last batch and record counts.
 *  3. rename() the copy's data.mdb over DIR/data.mdb (atomic: the name
 *     always names a whole database, the old one or the new one; a crash
 *     leaves one of them), fsync DIR. The old file lives on, unnamed,
 *     until the old handle closes.
 *  4. lb_open() the new file while still holding the lock: LMDB resets
 *     the lock file for it (the last transaction id of the old file would
 *     be wrong for the new one) before any waiting process goes on. Close
 *     both handles; closing drops the lock.
 *
 * lb_checkpoint() registers its copy in the old file, which goes; the copy
 * keeps of the registered checkpoints only the one a pruned log is
 * replayed from (lb_checkpoint's rule for a checkpoint's own list). The
 * others are forgotten; their directories stay.
 */

/* fcntl() lock on byte 0 of fd: F_WRLCK or F_UNLCK, never waiting. */
static int lock0(int fd, short type)
{
	struct flock fl;
	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 1;
	return fcntl(fd, F_SETLK, &fl);
}

/* The refusal when another process has the database open. */
static int compact_busy(const char *dir, int fd)
{
	struct flock fl;
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 1;
	if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK &&
	    fl.l_pid > 0)
		return cli_err("%s: open in another process (pid %ld): "
		               "compact needs the database to itself; close "
		               "it there and try again",
		               dir, (long)fl.l_pid);
	return cli_err("%s: open in another process: compact needs the "
	               "database to itself; close it there and try again",
	               dir);
}

typedef struct compact_info {
	uint64_t last;
	size_t ckpts;
	char *at_last; /* the checkpoint registered at the last batch */
	cli_catalog cat;
} compact_info;

static int count_ckpt(void *ctx, uint64_t batch, const char *path,
                      int64_t time_ns)
{
	compact_info *ci = ctx;
	(void)time_ns;
	ci->ckpts++;
	if (batch == ci->last) {
		free(ci->at_last);
		ci->at_last = cli_xstrdup(path);
	}
	return 0;
}

static int compact_read(lb_db *db, compact_info *ci)
{
	int rc;
	ci->ckpts = 0;
	if ((rc = lb_last_batch(db, &ci->last)) < 0 ||
	    (rc = lb_checkpoints(db, count_ckpt, ci)) < 0)
		return rc;
	return cli_catalog_load(db, &ci->cat);
}

/* lb_open() for compact, which holds the lock cli_lb_open() waits on. */
static int compact_open(const char *dir, lb_db **db)
{
	lb_options o;
	int rc;
	lb_options_init(&o);
	o.flags = 0;
	rc = lb_open(dir, &o, db);
	if (rc == LB_ENOTFOUND)
		return cli_err("%s: no logbook database there", dir);
	if (rc < 0)
		return cli_lberr(rc, "cannot open %s", dir);
	return 0;
}

/* Does the copy hold what the database held? */
static int compact_same(const compact_info *a, const compact_info *b)
{
	if (a->last != b->last || a->cat.n != b->cat.n)
		return 0;
	for (size_t i = 0; i < a->cat.n; i++)
		if (strcmp(a->cat.t[i].name, b->cat.t[i].name) ||
		    a->cat.t[i].records != b->cat.t[i].records)
			return 0;
	return 1;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r, e;
	if (fd < 0)
		return -1;
	r = fsync(fd);
	e = errno;
	close(fd);
	/* some file systems cannot sync a directory */
	if (r != 0 && (e == EINVAL || e == EROFS))
		r = 0;
	errno = e;
	return r;
}

/* A new empty directory beside dir (on the same file system) for the
 * compacted copy, its name in *tmp (the caller's to free). */
static int compact_tmpdir(const char *dir, char **tmp)
{
	size_t n = strlen(dir), b;
	while (n > 1 && dir[n - 1] == '/')
		n--;
	b = n;
	while (b > 0 && dir[b - 1] != '/')
		b--;
	if (asprintf(tmp, "%.*s.%.*s.compact-XXXXXX", (int)b, dir,
	             (int)(n - b > 150 ? 150 : n - b), dir + b) < 0) {
		*tmp = NULL;
		return cli_err("out of memory");
	}
	if (!mkdtemp(*tmp)) {
		int rc =
		        cli_err("%s: cannot create: %s", *tmp, strerror(errno));
		free(*tmp);
		*tmp = NULL;
		return rc;
	}
	return 0;
}

/* Write db's compacted copy into tmp (*written once it is there) and check
 * that it holds what before says db holds; *at: the copy's batch. */
static int compact_copy(lb_db *db, const char *dir, const char *tmp,
                        const compact_info *before, compact_info *copy,
                        uint64_t *at, int *written)
{
	lb_options opt;
	lb_db *cdb = NULL;
	int rc = lb_checkpoint(db, tmp, at);
	*written = rc == 0;
	if (rc < 0)
		return cli_lberr(rc, "%s: cannot write the compacted copy",
		                 dir);
	lb_options_init(&opt);
	opt.flags = LB_RDONLY;
	rc = lb_open(tmp, &opt, &cdb);
	if (rc == 0)
		rc = compact_read(cdb, copy);
	lb_close(cdb);
	if (rc < 0)
		return cli_lberr(rc, "%s: cannot read the compacted copy", tmp);
	if (!compact_same(before, copy) || *at != before->last)
		return cli_err("%s: the compacted copy does not hold what the "
		               "database holds; nothing changed",
		               dir);
	return 0;
}

/* What compact did: the file before (st0) and after (st1). */
static void compact_report(const char *dir, uint64_t at, const struct stat *st0,
                           const struct stat *st1, const compact_info *before,
                           const compact_info *after)
{
	sbuf b;
	sb_init(&b);
	if (cli_json) {
		sb_puts(&b, "{\"dir\":");
		jw_cstr(&b, dir);
		sb_printf(
		        &b,
		        ",\"batch\":%" PRIu64 ",\"file_bytes_before\":%" PRIu64
		        ",\"file_bytes\":%" PRIu64
		        ",\"disk_bytes_before\":%" PRIu64
		        ",\"disk_bytes\":%" PRIu64 ",\"checkpoints_before\":%zu"
		        ",\"checkpoints\":%zu}\n",
		        at, (uint64_t)st0->st_size, (uint64_t)st1->st_size,
		        (uint64_t)st0->st_blocks * 512,
		        (uint64_t)st1->st_blocks * 512, before->ckpts,
		        after->ckpts);
	} else {
		sb_printf(&b, "compacted %s at batch %" PRIu64 ": ", dir, at);
		cli_size(&b, (uint64_t)st0->st_size);
		sb_puts(&b, " -> ");
		cli_size(&b, (uint64_t)st1->st_size);
		if (st1->st_size < st0->st_size) {
			sb_puts(&b, " (");
			cli_size(&b, (uint64_t)(st0->st_size - st1->st_size));
			sb_puts(&b, " given back)");
		}
		sb_putc(&b, '\n');
		if (after->ckpts < before->ckpts)
			sb_printf(&b,
			          "checkpoints: %zu of %zu registered kept "
			          "(the others' directories stay; take a new "
			          "checkpoint before the next prune)\n",
			          after->ckpts, before->ckpts);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
}

/* Put tmp's data.mdb in place of datap (DIR/data.mdb) and sync DIR;
 * *swapped: whether the rename happened. */
static int compact_swap(const char *dir, const char *tmp, const char *datap,
                        int *swapped)
{
	char *copyp;
	int rc = 0;

	if (asprintf(&copyp, "%s/data.mdb", tmp) < 0)
		return cli_err("out of memory");
	if (rename(copyp, datap) != 0) {
		rc = cli_err("%s: cannot put the compacted copy in place: %s",
		             datap, strerror(errno));
	} else {
		*swapped = 1;
		if (fsync_dir(dir) != 0)
			rc = cli_err("%s: cannot sync the directory: %s (the "
			             "compacted file is in place, but may not "
			             "be after a crash)",
			             dir, strerror(errno));
	}
	free(copyp);
	return rc;
}

int cmd_compact(int argc, char **argv)
{
	const char *pos[1];
	size_t np;
	char *lockp = NULL, *datap = NULL, *tmp = NULL;
	compact_info before, copy, after;
	struct stat st0, st1;
	lb_db *db = NULL, *ndb = NULL;
	int rc, fd = -1, swapped = 0, written = 0;
	uint64_t at = 0;

	rc = cli_parse(argc, argv, NULL, 0, pos, 1, 1, &np);
	if (rc)
		return rc;
	memset(&before, 0, sizeof before);
	memset(&copy, 0, sizeof copy);
	memset(&after, 0, sizeof after);
	if (asprintf(&lockp, "%s/lock.mdb", pos[0]) < 0 ||
	    asprintf(&datap, "%s/data.mdb", pos[0]) < 0)
		return cli_err("out of memory");
	if (stat(datap, &st0) != 0) {
		rc = errno == ENOENT
		             ? cli_err("%s: no logbook database there", pos[0])
		             : cli_err("%s: %s", datap, strerror(errno));
		goto out;
	}
	/* 1. the database to ourselves */
	fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = cli_err("%s: %s", lockp, strerror(errno));
		goto out;
	}
	if (lock0(fd, F_WRLCK) != 0) {
		rc = errno == EAGAIN || errno == EACCES
		             ? compact_busy(pos[0], fd)
		             : cli_err("%s: cannot lock: %s", lockp,
		                       strerror(errno));
		goto out;
	}
	rc = compact_open(pos[0], &db);
	if (rc)
		goto out;
	if (lock0(fd, F_WRLCK) != 0) {
		/* another process came in between the two locks */
		rc = compact_busy(pos[0], fd);
		goto out;
	}
	if ((rc = compact_read(db, &before)) < 0) {
		rc = cli_lberr(rc, "%s: cannot read the database", pos[0]);
		goto out;
	}
	if (stat(datap, &st0) != 0) {
		rc = cli_err("%s: %s", datap, strerror(errno));
		goto out;
	}
	/* 2. the compacted copy, beside DIR (the same file system) */
	if ((rc = compact_tmpdir(pos[0], &tmp)) != 0 ||
	    (rc = compact_copy(db, pos[0], tmp, &before, &copy, &at,
	                       &written)) != 0)
		goto out;
	/* 3. the swap */
	if ((rc = compact_swap(pos[0], tmp, datap, &swapped)) != 0)
		goto out;
	if (stat(datap, &st1) != 0)
		memset(&st1, 0, sizeof st1);
	/* 4. the lock file, reset for the new file before anyone goes on */
	rc = compact_open(pos[0], &ndb);
	if (rc)
		goto out;
	if ((rc = compact_read(ndb, &after)) < 0) {
		rc = cli_lberr(rc, "%s: cannot read the compacted database",
		               pos[0]);
		goto out;
	}
	compact_report(pos[0], at, &st0, &st1, &before, &after);
	rc = 0;
out:
	/* the new handle first: the old one's close drops the process's
	 * lock, and no other process may reset the lock file under it */
	lb_close(ndb);
	lb_close(db);
	if (fd >= 0)
		close(fd);
	if (tmp) {
		nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
		free(tmp);
	}
	if (rc && written && !swapped && before.at_last)
		/* lb_checkpoint() registered its copy at the same batch,
		 * which replaced this registration */
		fprintf(stderr,
		        "logbook: compact: note: %s is no longer registered as "
		        "the checkpoint at batch %" PRIu64 " (the copy's "
		        "registration replaced it): take a new checkpoint\n",
		        before.at_last, before.last);
	cli_catalog_free(&before.cat);
	cli_catalog_free(&copy.cat);
	cli_catalog_free(&after.cat);
	free(before.at_last);
	free(copy.at_last);
	free(after.at_last);
	free(lockp);
	free(datap);
	return rc;
}
