/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: sequences of API calls on a temporary database, checked
 * step by step against the in-memory model of tests/engine/_model.c.
 *
 * The input is read as a program, one op per byte:
 *   byte % 8 in 0..3  a user batch (puts, inserts, updates, deletes on
 *                     the model's three tables, some refused), its
 *                     content drawn from the next 4 input bytes
 *   4                 lb_rollback of a batch named by the next byte, with
 *                     flags from the byte after (any of cascade, force,
 *                     dry run, and unknown flags)
 *   5                 lb_rollback_to a batch named by the next byte
 *   6                 close and reopen, with segment size and compression
 *                     from the next byte
 *   7                 lb_verify with replay
 * After every step the model and the engine must agree on the outcome
 * (codes, issues, records, marks); at the end on every table, every batch
 * and its records, and lb_verify must pass. The model's checks are cmocka
 * assertions: CMOCKA_TEST_ABORT=1 makes a failed one abort, which libFuzzer
 * and the replay driver report with the input.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "_fuzz.h"
#include "engine/_common.h"
#include "engine/_model.h"
#include "logbook.h"

#define MAX_STEPS 48

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("CMOCKA_TEST_ABORT", "1", 1);
	return 0;
}

static uint8_t next(const uint8_t *d, size_t n, size_t *i)
{
	return *i < n ? d[(*i)++] : 0;
}

static void reopen(lb_db **db, const char *dir, uint8_t how)
{
	static const size_t segs[] = {256, 1024, 0};
	static const int levels[] = {-1, 0, 6};
	lb_options o;
	lb_close(*db);
	lb_options_init(&o);
	o.flags = LB_NOSYNC;
	o.segment_size = segs[how % 3];
	o.compression = levels[(how / 3) % 3];
	*db = NULL;
	FUZZ_CHECK(lb_open(dir, &o, db) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	char *dir = th_tmpdir();
	tm_model *m = tm_new(0);
	lb_options o;
	lb_db *db = NULL;
	lb_verify_report rep;
	size_t i = 0;
	int steps = 0;
	if (!init) {
		LLVMFuzzerInitialize(NULL, NULL);
		init = 1;
	}
	lb_options_init(&o);
	o.flags = LB_CREATE | LB_NOSYNC;
	o.segment_size = 256;
	FUZZ_CHECK(lb_open(dir, &o, &db) == 0);
	tm_setup(m, db);
	while (i < size && steps++ < MAX_STEPS) {
		uint8_t op = next(data, size, &i);
		uint64_t nb = tm_last(m), id;
		switch (op % 8) {
		case 0:
		case 1:
		case 2:
		case 3: {
			uint64_t rng = 0;
			for (int j = 0; j < 4; j++)
				rng = rng << 8 | next(data, size, &i);
			tm_user_batch(m, db, &rng);
			break;
		}
		case 4: {
			uint8_t t = next(data, size, &i);
			uint8_t f = next(data, size, &i);
			/* mostly a recent user batch; some that do not exist */
			if (t >= 250)
				id = t == 255 ? 0 : nb + (t - 249);
			else if (nb > TM_SETUP)
				id = nb - t % (nb - TM_SETUP);
			else
				id = nb + 1;
			unsigned flags = f & 7;
			if ((f & 0xf8) == 0xf8)
				flags |= 8u << (f % 3); /* unknown */
			tm_rollback(m, db, id, flags);
			break;
		}
		case 5: {
			uint8_t t = next(data, size, &i);
			id = t >= 250 ? nb + (t - 249)
			              : nb - t % (nb - TM_SETUP + 1);
			tm_rollback_to(m, db, id);
			break;
		}
		case 6:
			reopen(&db, dir, next(data, size, &i));
			break;
		case 7:
			memset(&rep, 0, sizeof rep);
			if (lb_verify(db, LB_VERIFY_REPLAY, &rep) != 0)
				fprintf(stderr, "verify: %s\n", lb_errmsg());
			FUZZ_CHECK(rep.chain_ok && rep.replay_ok);
			break;
		}
	}
	tm_assert_db(m, db);
	tm_assert_log(m, db);
	memset(&rep, 0, sizeof rep);
	if (lb_verify(db, LB_VERIFY_REPLAY, &rep) != 0)
		fprintf(stderr, "verify: %s\n", lb_errmsg());
	FUZZ_CHECK(rep.chain_ok && rep.replay_ok);
	FUZZ_CHECK(rep.batches == tm_last(m));
	lb_close(db);
	tm_free(m);
	th_rmrf(dir);
	free(dir);
	return 0;
}
