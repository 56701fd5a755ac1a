/* SPDX-License-Identifier: MIT */
/*
 * embed.c: a program that uses logbook as its storage engine.
 *
 * It keeps congressional hearings and their witnesses, the way the daily
 * update does, and walks through what the engine is for:
 *
 *   1. tables with schemas (witnesses.hearing_id is a foreign key);
 *   2. a clean batch, then a broken one: every issue is collected, printed,
 *      and nothing of the broken batch is written;
 *   3. two later batches; a strict rollback of the first is refused with a
 *      CONFLICT naming the second, a cascade rolls back both;
 *   4. the history of one key;
 *   5. a checkpoint, a replay to an earlier batch and a replay from the
 *      checkpoint, each into a new directory;
 *   6. verify, with a replay compared against the tables.
 *
 *   build/examples/embed
 *
 * It works in a fresh directory under $TMPDIR (or /tmp), removed at the end,
 * and exits 1 as soon as anything turns out other than expected.
 *
 * Values of schema tables are msgpack maps. A real program would use a
 * msgpack library; this one writes the few forms it needs by hand, so that
 * it links against logbook alone.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logbook.h"

/* ---- checking ------------------------------------------------------------ */

/* A call that must succeed. */
#define CHECK(call)                                                            \
	do {                                                                   \
		int rc_ = (call);                                              \
		if (rc_ < 0)                                                   \
			die(__LINE__, "%s: %s (%s)", #call, lb_strerror(rc_),  \
			    lb_errmsg());                                      \
	} while (0)

/* A call that must return exactly `want`. */
#define EXPECT_RC(call, want)                                                  \
	do {                                                                   \
		int rc_ = (call);                                              \
		if (rc_ != (want))                                             \
			die(__LINE__, "%s returned %d (%s), expected %s",      \
			    #call, rc_, lb_strerror(rc_), #want);              \
	} while (0)

/* A condition that must hold. */
#define EXPECT(cond)                                                           \
	do {                                                                   \
		if (!(cond))                                                   \
			die(__LINE__, "expected %s", #cond);                   \
	} while (0)

static char workdir[4096];

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *w)
{
	(void)s;
	(void)f;
	(void)w;
	return remove(p);
}

static void cleanup(void)
{
	if (workdir[0])
		nftw(workdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	workdir[0] = 0;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3), noreturn))
#endif
static void
die(int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "embed: line %d: ", line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1); /* cleanup() runs from atexit */
}

/* ---- msgpack, the little this program needs -------------------------------
 * A value is a map of up to 15 entries whose names and values are strings
 * (up to 255 bytes) or non-negative integers (below 2^32). */

typedef struct mpbuf {
	uint8_t b[1024];
	size_t n;
} mpbuf;

static void mp_byte(mpbuf *m, unsigned v)
{
	if (m->n >= sizeof m->b)
		die(__LINE__, "value too large for this example");
	m->b[m->n++] = (uint8_t)v;
}

static void mp_str(mpbuf *m, const char *s)
{
	size_t n = strlen(s);
	if (n > 255)
		die(__LINE__, "string too long for this example");
	if (n < 32) {
		mp_byte(m, 0xa0 | (unsigned)n); /* fixstr */
	} else {
		mp_byte(m, 0xd9); /* str 8 */
		mp_byte(m, (unsigned)n);
	}
	for (size_t i = 0; i < n; i++)
		mp_byte(m, (uint8_t)s[i]);
}

static void mp_uint(mpbuf *m, uint32_t v)
{
	if (v < 128) {
		mp_byte(m, v); /* positive fixint */
		return;
	}
	mp_byte(m, 0xce); /* uint 32, big-endian */
	for (int sh = 24; sh >= 0; sh -= 8)
		mp_byte(m, (v >> sh) & 0xff);
}

/* {"id", "title", "date", "congress"}; NULL title: the field is left out. */
static mpbuf hearing(const char *id, const char *title, const char *date,
                     uint32_t congress)
{
	mpbuf m = {.n = 0};
	mp_byte(&m, 0x80 | (title ? 4 : 3)); /* fixmap */
	mp_str(&m, "id");
	mp_str(&m, id);
	if (title) {
		mp_str(&m, "title");
		mp_str(&m, title);
	}
	mp_str(&m, "date");
	mp_str(&m, date);
	mp_str(&m, "congress");
	mp_uint(&m, congress);
	return m;
}

static mpbuf witness(const char *id, const char *hearing_id, const char *name)
{
	mpbuf m = {.n = 0};
	mp_byte(&m, 0x83);
	mp_str(&m, "id");
	mp_str(&m, id);
	mp_str(&m, "hearing_id");
	mp_str(&m, hearing_id);
	mp_str(&m, "name");
	mp_str(&m, name);
	return m;
}

/* Print a value written by the functions above as {name: value, ...}. */
static void print_value(const void *p, size_t n)
{
	const uint8_t *s = p, *end = s + n;
	if (n == 0 || (*s & 0xf0) != 0x80) {
		printf("(%zu bytes)", n);
		return;
	}
	unsigned entries = *s++ & 0x0f;
	printf("{");
	for (unsigned i = 0; i < 2 * entries && s < end; i++) {
		if (i)
			printf(i % 2 ? ": " : ", ");
		if ((*s & 0xe0) == 0xa0 || *s == 0xd9) {
			size_t len = *s == 0xd9 ? s[1] : (size_t)(*s & 0x1f);
			s += *s == 0xd9 ? 2 : 1;
			printf(i % 2 ? "\"%.*s\"" : "%.*s", (int)len,
			       (const char *)s);
			s += len;
		} else if (*s < 0x80) {
			printf("%u", *s++);
		} else if (*s == 0xce) {
			printf("%" PRIu32, (uint32_t)s[1] << 24 |
			                           (uint32_t)s[2] << 16 |
			                           (uint32_t)s[3] << 8 | s[4]);
			s += 5;
		} else {
			printf("...");
			break;
		}
	}
	printf("}");
}

/* ---- the application's writes -------------------------------------------- */

static const lb_field hearing_fields[] = {
        {"id", LB_STR, LB_REQUIRED, 32, NULL},
        {"title", LB_STR, LB_REQUIRED, 200, NULL},
        {"date", LB_STR, LB_REQUIRED, 10, NULL},
        {"congress", LB_INT, LB_REQUIRED, 0, NULL},
};
static const lb_field witness_fields[] = {
        {"id", LB_STR, LB_REQUIRED, 32, NULL},
        {"hearing_id", LB_STR, LB_REQUIRED, 0, "hearings"}, /* foreign key */
        {"name", LB_STR, LB_REQUIRED, 100, NULL},
};

static int put_hearing(lb_batch *b, const char *id, const char *title,
                       const char *date)
{
	mpbuf v = hearing(id, title, date, 118);
	return lb_put(b, "hearings", id, strlen(id), v.b, v.n);
}

static int insert_hearing(lb_batch *b, const char *id, const char *title,
                          const char *date)
{
	mpbuf v = hearing(id, title, date, 118);
	return lb_insert(b, "hearings", id, strlen(id), v.b, v.n);
}

static int insert_witness(lb_batch *b, const char *id, const char *hearing_id,
                          const char *name)
{
	mpbuf v = witness(id, hearing_id, name);
	return lb_insert(b, "witnesses", id, strlen(id), v.b, v.n);
}

static const char *kind_name(lb_issue_kind k)
{
	switch (k) {
	case LB_ISSUE_FORMAT:
		return "format";
	case LB_ISSUE_DUPLICATE:
		return "duplicate";
	case LB_ISSUE_MISSING:
		return "missing";
	case LB_ISSUE_FOREIGN_KEY:
		return "foreign_key";
	case LB_ISSUE_CONFLICT:
		return "conflict";
	}
	return "?";
}

static void print_issues(const lb_result *res)
{
	for (size_t i = 0; i < res->nissues; i++) {
		const lb_issue *is = &res->issues[i];
		printf("   issue: %-11s %s %.*s%s%s: %s", kind_name(is->kind),
		       is->table, (int)is->klen, (const char *)is->key,
		       is->field ? " field " : "", is->field ? is->field : "",
		       is->message);
		if (is->batch)
			printf(" [batch %" PRIu64 "]", is->batch);
		printf("\n");
	}
	if (res->nissues_total > res->nissues)
		printf("   ... and %zu more\n",
		       res->nissues_total - res->nissues);
}

/* The value of hearings/id must be `want` (NULL: the key must be absent). */
static void expect_hearing(lb_db *db, const char *id, const mpbuf *want)
{
	void *val;
	size_t vlen;
	int rc = lb_get(db, "hearings", id, strlen(id), &val, &vlen);
	if (!want) {
		EXPECT(rc == LB_ENOTFOUND);
		return;
	}
	CHECK(rc);
	EXPECT(vlen == want->n && memcmp(val, want->b, vlen) == 0);
	free(val); /* lb_get's copy is the caller's */
}

static int print_history(void *ctx, uint64_t batch, const lb_change *c)
{
	(void)ctx;
	if (!c) { /* the batch's log was pruned */
		printf("   batch %" PRIu64 ": (log pruned)\n", batch);
		return 0;
	}
	printf("   batch %" PRIu64 ": %s -> ", batch,
	       c->op == LB_OP_DELETE ? "delete" : "put");
	if (c->has_after)
		print_value(c->after, c->alen);
	else
		printf("(absent)");
	printf("\n");
	return 0; /* non-zero would stop the walk */
}

static int count_rows(lb_db *db, const char *table)
{
	lb_snapshot *s;
	lb_cursor *c;
	const void *k, *v;
	size_t kl, vl;
	int n = 0, rc;
	CHECK(lb_snapshot_open(db, &s));
	CHECK(lb_cursor_open(s, table, &c));
	while ((rc = lb_cursor_next(c, &k, &kl, &v, &vl)) == 0)
		n++;
	EXPECT(rc == LB_ENOTFOUND); /* the end of the table */
	lb_cursor_close(c);
	lb_snapshot_close(s); /* k and v are invalid from here on */
	return n;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	char dir[4200], replay_dir[4200], ck_dir[4200], now_dir[4200];
	lb_db *db, *past;
	lb_batch *b;
	lb_result res;
	lb_batch_info bi;
	lb_verify_report rep;
	uint64_t day1, revise, correct, undo, ck_at, last;

	snprintf(workdir, sizeof workdir, "%s/logbook-embed-XXXXXX",
	         tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(workdir)) {
		perror(workdir);
		return 1;
	}
	atexit(cleanup);
	snprintf(dir, sizeof dir, "%s/hearings.db", workdir);
	snprintf(ck_dir, sizeof ck_dir, "%s/checkpoint", workdir);
	snprintf(replay_dir, sizeof replay_dir, "%s/as-of-day-1", workdir);
	snprintf(now_dir, sizeof now_dir, "%s/from-checkpoint", workdir);
	printf("logbook %s, embedded\n", lb_version(NULL, NULL, NULL));

	/* 1. Open (NULL options: the defaults, with LB_CREATE) and create
	 * the tables, each in a logged batch of its own. */
	printf("\n1. tables\n");
	CHECK(lb_open(dir, NULL, &db));
	const lb_schema hs = {hearing_fields, 4, 1}; /* closed */
	const lb_schema ws = {witness_fields, 3, 1};
	CHECK(lb_table_create(db, "hearings", &hs));
	CHECK(lb_table_create(db, "witnesses", &ws));
	EXPECT_RC(lb_table_create(db, "witnesses", &ws), LB_EEXIST);
	printf("   hearings, witnesses (witnesses.hearing_id -> hearings)\n");

	/* 2. A clean batch. Order inside a batch does not matter for
	 * foreign keys: they are checked at commit. */
	printf("\n2. validated batches\n");
	CHECK(lb_batch_begin(db, "day 1", &b));
	CHECK(insert_witness(b, "W1", "H1", "Ada Jones"));
	CHECK(insert_hearing(b, "H1", "Rural Broadband", "2024-03-01"));
	CHECK(insert_hearing(b, "H2", "Flood Insurance", "2024-03-02"));
	CHECK(insert_witness(b, "W2", "H2", "Carlos Chen"));
	CHECK(lb_batch_commit(b, &res)); /* frees b */
	day1 = res.batch_id;
	printf("   batch %" PRIu64 " \"day 1\": committed, %" PRIu64
	       " records\n",
	       day1, res.records);
	EXPECT(res.records == 4 && res.nissues == 0);
	lb_result_free(&res);

	/* A broken feed: each op with an issue returns LB_EVALIDATION and is
	 * not applied; going on collects every issue; the commit writes
	 * nothing and returns them all. */
	CHECK(lb_batch_begin(db, "day 2 (broken)", &b));
	CHECK(insert_hearing(b, "H3", "Drug Pricing", "2024-03-04"));
	EXPECT_RC(insert_hearing(b, "H4", NULL, "2024-03-05"), LB_EVALIDATION);
	printf("   op refused at once: %s\n", lb_errmsg());
	EXPECT_RC(insert_hearing(b, "H1", "Rural Broadband", "2024-03-01"),
	          LB_EVALIDATION);
	{
		mpbuf v = witness("W9", "H1", "Nobody");
		EXPECT_RC(lb_update(b, "witnesses", "W9", 2, v.b, v.n),
		          LB_EVALIDATION);
	}
	CHECK(insert_witness(b, "W3", "H7", "Mei Kowalski")); /* H7: none */
	EXPECT_RC(lb_batch_commit(b, &res), LB_EVALIDATION);
	printf("   batch \"day 2 (broken)\": %s, %zu issues, nothing "
	       "written\n",
	       lb_strerror(res.rc), res.nissues_total);
	print_issues(&res);
	EXPECT(res.batch_id == 0 && res.nissues == 4);
	EXPECT(res.issues[0].kind == LB_ISSUE_FORMAT &&
	       strcmp(res.issues[0].field, "title") == 0);
	EXPECT(res.issues[1].kind == LB_ISSUE_DUPLICATE);
	EXPECT(res.issues[2].kind == LB_ISSUE_MISSING);
	EXPECT(res.issues[3].kind == LB_ISSUE_FOREIGN_KEY);
	lb_result_free(&res);
	CHECK(lb_last_batch(db, &last));
	EXPECT(last == day1); /* a rejected batch consumes no id */
	{
		void *v;
		size_t vl;
		EXPECT_RC(lb_get(db, "hearings", "H3", 2, &v, &vl),
		          LB_ENOTFOUND);
	}

	/* 3. Two more batches: a revision, then a correction of it. */
	printf("\n3. rollback\n");
	mpbuf h1_day1 = hearing("H1", "Rural Broadband", "2024-03-01", 118);
	CHECK(lb_batch_begin(db, "day 2", &b));
	CHECK(put_hearing(b, "H1", "Rural Broadband (revised)", "2024-03-08"));
	CHECK(insert_witness(b, "W4", "H1", "Linda Patel"));
	CHECK(lb_batch_commit(b, &res));
	revise = res.batch_id;
	lb_result_free(&res);
	CHECK(lb_batch_begin(db, "correction", &b));
	CHECK(put_hearing(b, "H1", "Rural Broadband Deployment", "2024-03-08"));
	CHECK(lb_batch_commit(b, &res));
	correct = res.batch_id;
	lb_result_free(&res);
	printf("   batch %" PRIu64 " revised H1 and added W4; batch %" PRIu64
	       " corrected H1 again\n",
	       revise, correct);

	/* Strict: H1 no longer holds what batch `revise` left there. */
	EXPECT_RC(lb_rollback(db, revise, 0, &res), LB_ECONFLICT);
	printf("   strict rollback of batch %" PRIu64 ": %s\n", revise,
	       lb_errmsg());
	print_issues(&res);
	EXPECT(res.batch_id == 0 && res.nissues == 1);
	EXPECT(res.issues[0].kind == LB_ISSUE_CONFLICT &&
	       res.issues[0].batch == correct);
	lb_result_free(&res);

	/* A dry run says what the cascade would write; then do it. */
	CHECK(lb_rollback(db, revise, LB_CASCADE | LB_DRYRUN, &res));
	printf("   cascade, dry run: would write %" PRIu64 " records\n",
	       res.records);
	EXPECT(res.batch_id == 0 && res.records == 3);
	lb_result_free(&res);
	CHECK(lb_rollback(db, revise, LB_CASCADE, &res));
	undo = res.batch_id;
	printf("   cascade: batch %" PRIu64 " undid batches %" PRIu64
	       " and %" PRIu64 " (%" PRIu64 " records)\n",
	       undo, correct, revise, res.records);
	lb_result_free(&res);
	CHECK(lb_batch_info_get(db, undo, &bi));
	EXPECT(bi.undoes == revise);
	CHECK(lb_batch_info_get(db, revise, &bi));
	EXPECT(bi.rolled_back_by == undo);
	CHECK(lb_batch_info_get(db, correct, &bi));
	EXPECT(bi.rolled_back_by == undo);
	expect_hearing(db, "H1", &h1_day1);
	EXPECT(count_rows(db, "witnesses") == 2);               /* W4 is gone */
	EXPECT_RC(lb_rollback(db, revise, 0, NULL), LB_EINVAL); /* done */

	/* 4. Every change of H1, newest first, from the per-key index. */
	printf("\n4. history of hearings/H1\n");
	CHECK(lb_history(db, "hearings", "H1", 2, print_history, NULL));

	/* 5. A checkpoint; a replay to batch day1 from empty; a replay to the
	 * last batch from the checkpoint. */
	printf("\n5. checkpoint and replay\n");
	CHECK(lb_checkpoint(db, ck_dir, &ck_at));
	printf("   checkpoint at batch %" PRIu64 "\n", ck_at);
	CHECK(lb_batch_begin(db, "day 3", &b));
	CHECK(insert_hearing(b, "H5", "Wildfire Preparedness", "2024-03-11"));
	CHECK(lb_batch_commit(b, &res));
	lb_result_free(&res);

	CHECK(lb_replay(db, replay_dir, day1, NULL, &res));
	printf("   replayed to batch %" PRIu64 " from empty: %" PRIu64
	       " records applied\n",
	       res.batch_id, res.records);
	lb_result_free(&res);
	lb_options o;
	lb_options_init(&o);
	o.flags = LB_RDONLY;
	CHECK(lb_open(replay_dir, &o, &past));
	CHECK(lb_last_batch(past, &last));
	EXPECT(last == day1);
	expect_hearing(past, "H1", &h1_day1);
	expect_hearing(past, "H5", NULL);
	CHECK(lb_verify(past, LB_VERIFY_REPLAY, &rep));
	lb_close(past);

	CHECK(lb_replay(db, now_dir, 0, ck_dir, &res));
	printf("   replayed to batch %" PRIu64 " from the checkpoint: %" PRIu64
	       " records applied\n",
	       res.batch_id, res.records);
	EXPECT(res.records == 1); /* only "day 3" came after the checkpoint */
	lb_result_free(&res);

	/* 6. Checksums, hash chain, and a replay compared with the tables. */
	printf("\n6. verify\n");
	CHECK(lb_verify(db, LB_VERIFY_REPLAY, &rep));
	printf("   %" PRIu64 " batches, %" PRIu64 " segments, %" PRIu64
	       " records: chain %s, replay %s\n",
	       rep.batches, rep.segments, rep.records,
	       rep.chain_ok ? "ok" : "BAD", rep.replay_ok ? "ok" : "BAD");
	EXPECT(rep.chain_ok && rep.replay_ok && rep.bad_batch == 0);

	lb_close(db);
	printf("\nembed: all as expected\n");
	return 0; /* cleanup() removes the directory */
}
