/* SPDX-License-Identifier: MIT */
/*
 * data.c: get, scan, export (reads) and put, del (one-op batches).
 *
 * Records print as {"table": T, "key": K, "value": V}: the line format that
 * `import` reads, so that `export` output can be loaded back unchanged.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Open DIR and find TABLE in its catalog. */
static int open_table(const char *dir, const char *table, int rdonly,
                      lb_db **db, cli_catalog *cat, cli_table **t)
{
	int rc = cli_open(dir, rdonly, 0, db);
	if (rc)
		return rc;
	rc = cli_catalog_load(*db, cat);
	if (rc < 0) {
		lb_close(*db);
		return cli_lberr(rc, "%s: cannot list tables", dir);
	}
	*t = cli_catalog_find(cat, table);
	if (!*t) {
		cli_catalog_free(cat);
		lb_close(*db);
		return cli_err("%s: no table '%s'", dir, table);
	}
	return 0;
}

void cli_record_line(sbuf *b, const char *table, int schema, const void *k,
                     size_t kl, const void *v, size_t vl)
{
	sb_puts(b, "{\"table\":");
	jw_cstr(b, table);
	sb_puts(b, ",\"key\":");
	jw_bytes(b, k, kl);
	sb_puts(b, ",\"value\":");
	jw_value(b, schema, v, vl);
	sb_puts(b, "}\n");
}

int cmd_get(int argc, char **argv)
{
	cli_opt o[] = {{"base64-key", 0, NULL}, {"as-of", 1, NULL}};
	uint64_t asof = 0;
	const char *pos[3];
	size_t np, vl;
	void *v = NULL;
	cli_catalog cat;
	cli_table *t;
	lb_db *db;
	sbuf key, b;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 3, 3, &np);
	if (rc)
		return rc;
	const char *opt_base64_key = CLI_OPT(o, "base64-key");
	const char *opt_as_of = CLI_OPT(o, "as-of");
	if (opt_as_of &&
	    (rc = cli_u64("--as-of", opt_as_of, 0, UINT64_MAX, &asof)))
		return rc;
	sb_init(&key);
	rc = cli_key_arg(pos[2], opt_base64_key != NULL, &key);
	if (rc)
		goto out_key;
	rc = open_table(pos[0], pos[1], 1, &db, &cat, &t);
	if (rc)
		goto out_key;
	if (opt_as_of)
		rc = lb_get_asof(db, asof, pos[1], key.p, key.len, &v, &vl);
	else
		rc = lb_get(db, pos[1], key.p, key.len, &v, &vl);
	if (rc == LB_ENOTFOUND && opt_as_of &&
	    strstr(lb_errmsg(), "no batch")) {
		rc = cli_lberr(rc, "%s", pos[1]);
	} else if (rc == LB_ENOTFOUND) {
		sb_init(&b);
		cli_key_human(&b, key.p, key.len);
		rc = CLI_DATA;
		cli_err("%s: no key %s", pos[1], sb_str(&b));
		sb_free(&b);
	} else if (rc < 0) {
		rc = cli_lberr(rc, "cannot read %s", pos[1]);
	} else {
		sb_init(&b);
		if (cli_json) {
			cli_record_line(&b, pos[1], t->has_schema, key.p,
			                key.len, v, vl);
		} else {
			jw_value(&b, t->has_schema, v, vl);
			sb_putc(&b, '\n');
		}
		sb_flush(&b, stdout);
		sb_free(&b);
		free(v);
	}
	cli_catalog_free(&cat);
	lb_close(db);
out_key:
	sb_free(&key);
	return rc;
}

/* Write every record of table t (with key prefix pre, at most limit of
 * them, 0 = all) to stdout. human selects "KEY VALUE" lines. */
static int dump(lb_db *db, const cli_table *t, const char *pre, uint64_t limit,
                int human)
{
	lb_snapshot *s;
	lb_cursor *c;
	const void *k, *v;
	size_t kl, vl, pl = pre ? strlen(pre) : 0;
	uint64_t n = 0;
	sbuf b;
	int rc = lb_snapshot_open(db, &s);
	if (rc < 0)
		return cli_lberr(rc, "cannot open a snapshot");
	rc = lb_cursor_open(s, t->name, &c);
	if (rc < 0) {
		lb_snapshot_close(s);
		return cli_lberr(rc, "cannot read table '%s'", t->name);
	}
	rc = lb_cursor_seek(c, pre ? pre : "", pl);
	sb_init(&b);
	while (rc == 0 && (!limit || n < limit)) {
		rc = lb_cursor_next(c, &k, &kl, &v, &vl);
		if (rc < 0)
			break;
		if (pl && (kl < pl || memcmp(k, pre, pl)))
			break;
		if (human) {
			cli_key_human(&b, k, kl);
			sb_putc(&b, '\t');
			jw_value(&b, t->has_schema, v, vl);
			sb_putc(&b, '\n');
		} else {
			cli_record_line(&b, t->name, t->has_schema, k, kl, v,
			                vl);
		}
		n++;
		if (b.len >= (1u << 16))
			sb_flush(&b, stdout);
	}
	sb_flush(&b, stdout);
	sb_free(&b);
	lb_cursor_close(c);
	lb_snapshot_close(s);
	if (rc < 0 && rc != LB_ENOTFOUND)
		return cli_lberr(rc, "cannot read table '%s'", t->name);
	return 0;
}

int cmd_scan(int argc, char **argv)
{
	cli_opt o[] = {{"prefix", 1, NULL}, {"limit", 1, NULL}};
	const char *pos[2];
	size_t np;
	uint64_t limit = 0;
	cli_catalog cat;
	cli_table *t;
	lb_db *db;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 2, 2, &np);
	if (rc)
		return rc;
	const char *opt_limit = CLI_OPT(o, "limit");
	const char *opt_prefix = CLI_OPT(o, "prefix");
	if (opt_limit &&
	    (rc = cli_u64("--limit", opt_limit, 1, UINT64_MAX, &limit)))
		return rc;
	rc = open_table(pos[0], pos[1], 1, &db, &cat, &t);
	if (rc)
		return rc;
	rc = dump(db, t, opt_prefix, limit, !cli_json);
	cli_catalog_free(&cat);
	lb_close(db);
	return rc;
}

int cmd_export(int argc, char **argv)
{
	const char *pos[2];
	size_t np;
	cli_catalog cat;
	lb_db *db;
	int rc;

	cli_opt o[] = {{"as-of", 1, NULL}};
	uint64_t asof = 0;
	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 2, &np);
	if (rc)
		return rc;
	const char *opt_as_of = CLI_OPT(o, "as-of");
	if (opt_as_of &&
	    (rc = cli_u64("--as-of", opt_as_of, 0, UINT64_MAX, &asof)))
		return rc;
	rc = cli_open(pos[0], 1, 0, &db);
	if (rc)
		return rc;
	rc = cli_catalog_load(db, &cat);
	if (rc < 0) {
		lb_close(db);
		return cli_lberr(rc, "%s: cannot list tables", pos[0]);
	}
	if (np == 2) {
		cli_table *t = cli_catalog_find(&cat, pos[1]);
		if (!t)
			rc = cli_err("%s: no table '%s'", pos[0], pos[1]);
		else if (opt_as_of)
			rc = cli_export_asof(db, t, asof);
		else
			rc = dump(db, t, NULL, 0, 0);
	} else {
		/* Referenced tables first, so the output imports in order. */
		size_t *idx = cli_xmalloc((cat.n + 1) * sizeof *idx);
		cli_catalog_topo(&cat, idx);
		for (size_t i = 0; i < cat.n && !rc; i++)
			rc = opt_as_of
			             ? cli_export_asof(db, &cat.t[idx[i]], asof)
			             : dump(db, &cat.t[idx[i]], NULL, 0, 0);
		free(idx);
	}
	cli_catalog_free(&cat);
	lb_close(db);
	return rc;
}

/* ---- one-op batches ------------------------------------------------------ */

enum { OP_INSERT, OP_UPSERT, OP_UPDATE, OP_DELETE };

/* Encode the JSON text json as t's value into *val (scratch: work space):
 * msgpack under a schema, the opaque encoding otherwise. */
static int op_value(const cli_table *t, const char *json, sbuf *val,
                    sbuf *scratch)
{
	char err[256];
	json_t *j = cli_json_parse(json, strlen(json), err, sizeof err);
	int rc;

	if (!j)
		return cli_usage("JSON value: %s", err);
	if (t->has_schema) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		rc = cli_pack_json(&pk, j, scratch, err, sizeof err);
		if (rc == 0)
			sb_put(val, sb.data, sb.size);
		msgpack_sbuffer_destroy(&sb);
	} else {
		rc = cli_opaque_json(j, val, err, sizeof err);
	}
	json_decref(j);
	if (rc)
		return cli_usage("JSON value: %s", err);
	if (val->len > LB_VALUE_MAX)
		return cli_err("the value is longer than %u bytes",
		               (unsigned)LB_VALUE_MAX);
	return 0;
}

static int one_op(const char *dir, const char *table, const sbuf *key, int op,
                  const char *json)
{
	cli_catalog cat;
	cli_table *t;
	lb_db *db;
	lb_batch *bt;
	lb_result res;
	sbuf val, scratch, b;
	int rc;

	rc = open_table(dir, table, 0, &db, &cat, &t);
	if (rc)
		return rc;
	sb_init(&val);
	sb_init(&scratch);
	sb_init(&b);
	memset(&res, 0, sizeof res);
	if (op != OP_DELETE && (rc = op_value(t, json, &val, &scratch)) != 0)
		goto out;
	{
		char label[LB_LABEL_MAX + 1];
		cli_key_human(&b, key->p, key->len);
		snprintf(label, sizeof label, "%s %s %s", cli_cmd, table,
		         sb_str(&b));
		b.len = 0;
		rc = lb_batch_begin(db, label, &bt);
	}
	if (rc < 0) {
		rc = cli_lberr(rc, "cannot begin a batch");
		goto out;
	}
	switch (op) {
	case OP_INSERT:
		rc = lb_insert(bt, table, key->p, key->len, val.p, val.len);
		break;
	case OP_UPSERT:
		rc = lb_put(bt, table, key->p, key->len, val.p, val.len);
		break;
	case OP_UPDATE:
		rc = lb_update(bt, table, key->p, key->len, val.p, val.len);
		break;
	default:
		rc = lb_delete(bt, table, key->p, key->len);
	}
	if (rc < 0 && rc != LB_EVALIDATION) {
		lb_batch_abort(bt);
		rc = cli_lberr(rc, "%s", table);
		goto out;
	}
	rc = lb_batch_commit(bt, &res);
	if (rc < 0 && rc != LB_EVALIDATION) {
		rc = cli_lberr(rc, "cannot commit");
		goto out;
	}
	if (cli_json) {
		sb_printf(&b, "{\"success\":%s,\"batch_id\":",
		          rc == 0 ? "true" : "false");
		jw_u64_or_null(&b, res.batch_id);
		sb_puts(&b, ",\"issues\":[");
		for (size_t i = 0; i < res.nissues; i++) {
			const lb_issue *is = &res.issues[i];
			if (i)
				sb_putc(&b, ',');
			cli_issue_fmt(&b, 0, cli_issue_kind(is->kind),
			              is->table, is->key, is->klen, is->field,
			              is->message, is->batch);
		}
		sb_puts(&b, "]}\n");
		sb_flush(&b, stdout);
	} else if (rc == 0) {
		printf("committed batch %" PRIu64 "\n", res.batch_id);
	} else {
		printf("refused: %zu issue%s\n", res.nissues_total,
		       res.nissues_total == 1 ? "" : "s");
		cli_print_result_issues(&res);
	}
	if (rc == LB_EVALIDATION) {
		const lb_issue *is = res.nissues ? &res.issues[0] : NULL;
		cli_key_human(&b, key->p, key->len);
		cli_err("%s %s: refused by validation%s%s", table, sb_str(&b),
		        is ? ": " : "", is && is->message ? is->message : "");
		rc = CLI_DATA;
	}
out:
	lb_result_free(&res);
	sb_free(&val);
	sb_free(&scratch);
	sb_free(&b);
	cli_catalog_free(&cat);
	lb_close(db);
	return rc;
}

int cmd_put(int argc, char **argv)
{
	cli_opt o[] = {{"mode", 1, NULL}, {"base64-key", 0, NULL}};
	const char *pos[4];
	size_t np;
	sbuf key;
	int rc, op = OP_UPSERT;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 4, 4, &np);
	if (rc)
		return rc;
	const char *opt_mode = CLI_OPT(o, "mode");
	const char *opt_base64_key = CLI_OPT(o, "base64-key");
	if (opt_mode) {
		if (!strcmp(opt_mode, "insert"))
			op = OP_INSERT;
		else if (!strcmp(opt_mode, "upsert"))
			op = OP_UPSERT;
		else if (!strcmp(opt_mode, "update"))
			op = OP_UPDATE;
		else
			return cli_usage("--mode: '%s' is not insert, upsert "
			                 "or update",
			                 opt_mode);
	}
	sb_init(&key);
	rc = cli_key_arg(pos[2], opt_base64_key != NULL, &key);
	if (!rc)
		rc = one_op(pos[0], pos[1], &key, op, pos[3]);
	sb_free(&key);
	return rc;
}

int cmd_del(int argc, char **argv)
{
	cli_opt o[] = {{"base64-key", 0, NULL}};
	const char *pos[3];
	size_t np;
	sbuf key;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 3, 3, &np);
	if (rc)
		return rc;
	const char *opt_base64_key = CLI_OPT(o, "base64-key");
	sb_init(&key);
	rc = cli_key_arg(pos[2], opt_base64_key != NULL, &key);
	if (!rc)
		rc = one_op(pos[0], pos[1], &key, OP_DELETE, NULL);
	sb_free(&key);
	return rc;
}
