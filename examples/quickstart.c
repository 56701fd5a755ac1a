/* SPDX-License-Identifier: MIT */
/*
 * quickstart.c: open a database, create a table, commit two batches, read
 * back, and print the log with each batch's changes.
 *
 *   build/examples/quickstart [DIR]
 *
 * Without DIR it works in a fresh temporary directory and removes it.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "logbook.h"

#define CHECK(call)                                                            \
	do {                                                                   \
		int rc_ = (call);                                              \
		if (rc_ < 0) {                                                 \
			fprintf(stderr, "%s failed: %s: %s\n", #call,          \
			        lb_strerror(rc_), lb_errmsg());                \
			exit(1);                                               \
		}                                                              \
	} while (0)

static void show(const char *what, const void *p, size_t n, int has)
{
	if (!has) {
		printf(" %s=(none)", what);
		return;
	}
	printf(" %s=\"%.*s\"", what, (int)n, (const char *)p);
}

static int print_change(void *ctx, const lb_change *c)
{
	(void)ctx;
	static const char *ops[] = {"?", "put", "delete", "table"};
	printf("    %-6s %s/%.*s", ops[c->op <= 3 ? c->op : 0], c->table,
	       (int)c->klen, (const char *)c->key);
	if (c->op != LB_OP_TABLE) {
		show("before", c->before, c->blen, c->has_before);
		show("after", c->after, c->alen, c->has_after);
	}
	printf("\n");
	return 0;
}

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *w)
{
	(void)s;
	(void)f;
	(void)w;
	return remove(p);
}

int main(int argc, char **argv)
{
	char tmp[] = "/tmp/logbook-quickstart-XXXXXX";
	const char *dir = argc > 1 ? argv[1] : mkdtemp(tmp);
	lb_db *db;
	lb_batch *b;
	lb_result res;

	if (!dir) {
		perror("mkdtemp");
		return 1;
	}
	printf("logbook %s quickstart in %s\n", lb_version(NULL, NULL, NULL),
	       dir);
	CHECK(lb_open(dir, NULL, &db)); /* NULL options: defaults + create */
	CHECK(lb_table_create(db, "notes", NULL));

	CHECK(lb_batch_begin(db, "first notes", &b));
	CHECK(lb_insert(b, "notes", "a", 1, "apple", 5));
	CHECK(lb_insert(b, "notes", "b", 1, "banana", 6));
	CHECK(lb_batch_commit(b, &res));
	printf("committed batch %llu (%llu records)\n",
	       (unsigned long long)res.batch_id,
	       (unsigned long long)res.records);
	lb_result_free(&res);

	CHECK(lb_batch_begin(db, "fix a, drop b", &b));
	CHECK(lb_update(b, "notes", "a", 1, "apricot", 7));
	CHECK(lb_delete(b, "notes", "b", 1));
	/* A rule broken inside a batch is an issue, not a crash: */
	if (lb_insert(b, "notes", "a", 1, "again", 5) == LB_EVALIDATION)
		printf("insert of an existing key refused: %s\n", lb_errmsg());
	int rc = lb_batch_commit(b, &res);
	printf("commit: %s, %zu issue(s), nothing written\n", lb_strerror(rc),
	       res.nissues_total);
	lb_result_free(&res);

	CHECK(lb_batch_begin(db, "fix a, drop b", &b));
	CHECK(lb_update(b, "notes", "a", 1, "apricot", 7));
	CHECK(lb_delete(b, "notes", "b", 1));
	CHECK(lb_batch_commit(b, &res));
	lb_result_free(&res);

	void *val;
	size_t vlen;
	CHECK(lb_get(db, "notes", "a", 1, &val, &vlen));
	printf("notes/a = \"%.*s\"\n", (int)vlen, (char *)val);
	free(val);

	uint64_t last;
	CHECK(lb_last_batch(db, &last));
	printf("log:\n");
	for (uint64_t id = 1; id <= last; id++) {
		lb_batch_info bi;
		CHECK(lb_batch_info_get(db, id, &bi));
		printf("  batch %llu \"%s\": %llu records, %llu raw -> %llu "
		       "stored bytes\n",
		       (unsigned long long)bi.id, bi.label,
		       (unsigned long long)bi.records,
		       (unsigned long long)bi.raw_bytes,
		       (unsigned long long)bi.stored_bytes);
		CHECK(lb_changes(db, id, print_change, NULL));
	}
	lb_close(db);
	if (argc <= 1)
		nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
