/* SPDX-License-Identifier: MIT */
/*
 * Crash matrix: SIGKILL in the middle of every kind of write the engine
 * does (commit, strict rollback, cascade rollback, rollback_to, checkpoint,
 * prune, replay), then reopen and check.
 *
 * A child process opens the database and repeats a short cycle that ends
 * with the operation under test (a rollback needs a batch to undo, a prune
 * a checkpoint). Before and after each operation it writes a message to a
 * pipe (BEGIN with the batch id it will produce, END with the result), so
 * the parent always knows what has returned and what is in flight. The
 * parent waits for the k-th BEGIN of the operation under test (k random in
 * 1..3), sleeps a random fraction of that operation's measured duration and
 * kills the child; one round in ten it kills at a random instant after the
 * fork instead (possibly inside lb_open). Then it checks:
 *  - the database opens; lb_verify(LB_VERIFY_REPLAY) passes (log, hash
 *    chain, and tables equal to a replay of the log);
 *  - every batch whose call returned is there, and nothing else is except
 *    the one in flight;
 *  - every batch of the round holds exactly what its kind says: a commit
 *    its records (a pure function of its id), a rollback the exact inverse
 *    of the batches it undoes, a rollback_to the net change back, with the
 *    undone batches marked rolled_back_by;
 *  - a checkpoint or replay destination that was reported opens and
 *    verifies with replay (a copy of a pruned database from the checkpoint
 *    whose registration it keeps), and a checkpoint is registered; one in
 *    flight either does not open as a database (no LB_CREATE) or opens and
 *    verifies; every registered checkpoint of the round verifies;
 *  - pruned batches form a prefix of the log that covers every reported
 *    prune, and a prune in flight happened wholly or not at all.
 *
 * The database persists across rounds (recovery is exercised on a database
 * that has been killed many times) and is started afresh every
 * EPOCH_ROUNDS rounds, so that long runs stay fast.
 *
 * Rounds: LB_CRASH_ROUNDS (default 20) of each operation; `make crash
 * ROUNDS=N` sets it. The seed is printed on failure (LB_TEST_SEED reruns
 * it; kill instants still vary with scheduling). Each test prints how many
 * kills landed inside the operation under test.
 */
#define _GNU_SOURCE
#include "_common.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* cmocka catches crashes to fail the running test; a forked child must die
 * of them instead, or it would go on running the parent's tests. */
static void child_signals(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS,  SIGILL,
	                           SIGFPE,  SIGABRT, SIGSYS};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
}

#define EPOCH_ROUNDS 25

enum op {
	OP_COMMIT,
	OP_ROLLBACK,
	OP_CASCADE,
	OP_RBTO,
	OP_CKPT,
	OP_PRUNE,
	OP_REPLAY,
	OP_N
};
static const char *const op_name[OP_N] = {
        "commit",     "rollback", "cascade rollback", "rollback_to",
        "checkpoint", "prune",    "replay",
};

static int makes_batch(int op)
{
	return op == OP_COMMIT || op == OP_ROLLBACK || op == OP_CASCADE ||
	       op == OP_RBTO;
}

enum { M_BEGIN = 1, M_END = 2 };

/* One message; smaller than PIPE_BUF, so written atomically.
 * BEGIN: id = the batch the op will produce (batch ops), target/aux = the
 * batches it undoes (rollback: target; cascade: target and aux, the later
 * batch; rollback_to: target = X), seq = destination number (checkpoint,
 * replay), aux = the checkpoint a replay starts from (seq + 1, 0 = empty).
 * END: id = the batch produced, or the checkpoint's batch, or the batch a
 * replay reached; target = prune's before_batch. ns: CLOCK_MONOTONIC. */
struct msg {
	uint32_t kind, op;
	uint64_t id, target, aux;
	int64_t ns;
	uint32_t seq, pad;
};

/* ---- batch content: a pure function of the id ---------------------------
 */

static unsigned nkeys_of(uint64_t id)
{
	return 1 + (unsigned)((id * 2654435761u) % 24);
}

static size_t counter_of(uint64_t id, char *v)
{
	return (size_t)sprintf(v, "c%" PRIu64, id);
}

static char *dest_name(const char *root, int op, int epoch, int round,
                       unsigned seq)
{
	char *p;
	if (asprintf(&p, "%s/%s-%d-%d-%u", root, op == OP_REPLAY ? "rp" : "ck",
	             epoch, round, seq) < 0)
		return NULL;
	return p;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the child ------------------------------------------------------------
 */

struct child {
	const char *dir, *root;
	int fd, epoch, round, test;
	lb_db *db;
	unsigned seq;     /* destinations made this round */
	unsigned ckseq;   /* 1 + seq of the last checkpoint, 0 if none */
	uint64_t ckat;    /* its batch */
	unsigned ckcount; /* checkpoints made this round */
};

static void send_msg(struct child *c, uint32_t kind, uint32_t op, uint64_t id,
                     uint64_t target, uint64_t aux, uint32_t seq)
{
	struct msg m;
	memset(&m, 0, sizeof m);
	m.kind = kind;
	m.op = op;
	m.id = id;
	m.target = target;
	m.aux = aux;
	m.seq = seq;
	m.ns = mono_ns();
	if (write(c->fd, &m, sizeof m) != (ssize_t)sizeof m)
		_exit(20);
}

static uint64_t child_last(struct child *c)
{
	uint64_t last;
	if (lb_last_batch(c->db, &last) != 0)
		_exit(11);
	return last;
}

static uint64_t child_commit(struct child *c)
{
	uint64_t id = child_last(c) + 1;
	lb_batch *b = NULL;
	lb_result res;
	char k[64], v[160], l[64];
	unsigned n = nkeys_of(id);

	send_msg(c, M_BEGIN, OP_COMMIT, id, 0, 0, 0);
	te_crash_label(id, l);
	if (lb_batch_begin(c->db, l, &b) != 0)
		_exit(12);
	for (unsigned i = 0; i < n; i++) {
		size_t kl = te_crash_key(id, i, k),
		       vl = te_crash_val(id, i, 90, v);
		if (lb_insert(b, "t", k, kl, v, vl) != 0)
			_exit(13);
	}
	if (lb_put(b, "t", "counter", 7, v, counter_of(id, v)) != 0)
		_exit(13);
	if (lb_batch_commit(b, &res) != 0 || res.batch_id != id)
		_exit(14);
	send_msg(c, M_END, OP_COMMIT, id, 0, 0, 0);
	return id;
}

static void child_rollback(struct child *c, int op, uint64_t target,
                           uint64_t aux)
{
	uint64_t id = child_last(c) + 1;
	lb_result res;
	int rc;
	send_msg(c, M_BEGIN, (uint32_t)op, id, target, aux, 0);
	if (op == OP_RBTO)
		rc = lb_rollback_to(c->db, target, &res);
	else
		rc = lb_rollback(c->db, target,
		                 op == OP_CASCADE ? LB_CASCADE : 0, &res);
	if (rc != 0 || res.batch_id != id)
		_exit(30 + op);
	lb_result_free(&res);
	send_msg(c, M_END, (uint32_t)op, id, target, aux, 0);
}

static uint64_t child_checkpoint(struct child *c)
{
	unsigned seq = c->seq++;
	char *dest = dest_name(c->root, OP_CKPT, c->epoch, c->round, seq);
	uint64_t at = 0;
	if (!dest)
		_exit(17);
	send_msg(c, M_BEGIN, OP_CKPT, 0, 0, 0, seq);
	if (lb_checkpoint(c->db, dest, &at) != 0)
		_exit(30 + OP_CKPT);
	send_msg(c, M_END, OP_CKPT, at, 0, 0, seq);
	free(dest);
	c->ckseq = seq + 1;
	c->ckat = at;
	c->ckcount++;
	return at;
}

static void child_prune(struct child *c, uint64_t before)
{
	send_msg(c, M_BEGIN, OP_PRUNE, 0, before, 0, 0);
	if (lb_prune(c->db, before) != 0)
		_exit(30 + OP_PRUNE);
	send_msg(c, M_END, OP_PRUNE, 0, before, 0, 0);
}

static void child_replay(struct child *c)
{
	unsigned seq = c->seq++;
	char *dest = dest_name(c->root, OP_REPLAY, c->epoch, c->round, seq);
	char *from = NULL;
	uint64_t aux = 0;
	lb_result res;
	if (!dest)
		_exit(17);
	/* every other replay starts from this round's last checkpoint */
	if (c->ckseq && seq % 2) {
		from = dest_name(c->root, OP_CKPT, c->epoch, c->round,
		                 c->ckseq - 1);
		aux = c->ckseq;
	}
	send_msg(c, M_BEGIN, OP_REPLAY, 0, 0, aux, seq);
	if (lb_replay(c->db, dest, 0, from, &res) != 0)
		_exit(30 + OP_REPLAY);
	send_msg(c, M_END, OP_REPLAY, res.batch_id, 0, aux, seq);
	lb_result_free(&res);
	free(dest);
	free(from);
}

static void child_main(struct child *c)
{
	lb_options o;
	lb_options_init(&o);
	if (lb_open(c->dir, &o, &c->db) != 0)
		_exit(10);
	for (unsigned cycle = 0; cycle < 5000; cycle++) {
		uint64_t u, u2, x;
		switch (c->test) {
		case OP_COMMIT:
			child_commit(c);
			break;
		case OP_ROLLBACK:
			u = child_commit(c);
			child_rollback(c, OP_ROLLBACK, u, 0);
			break;
		case OP_CASCADE:
			/* u2 overwrites the counter u wrote: undoing u
			 * needs undoing u2 first */
			u = child_commit(c);
			u2 = child_commit(c);
			child_rollback(c, OP_CASCADE, u, u2);
			break;
		case OP_RBTO:
			x = child_last(c);
			for (unsigned i = 0; i <= cycle % 3; i++)
				child_commit(c);
			child_rollback(c, OP_RBTO, x, 0);
			break;
		case OP_CKPT:
			child_commit(c);
			child_checkpoint(c);
			break;
		case OP_PRUNE:
			child_commit(c);
			child_prune(c, child_checkpoint(c) + 1);
			break;
		case OP_REPLAY:
			child_commit(c);
			if (cycle % 3 == 0)
				child_checkpoint(c);
			child_replay(c);
			break;
		}
	}
	_exit(16); /* the parent never killed us */
}

/* ---- the parent: one round -------------------------------------------------
 */

struct round {
	int test, epoch, no;
	int anywhere;            /* killed at a random instant after fork */
	unsigned k;              /* else: after the k-th BEGIN of the test op */
	long delay_us;           /* then after this delay */
	uint64_t prev;           /* last batch before the round */
	uint64_t pruned;         /* every batch below this was pruned before */
	unsigned long published; /* killed after its destination appeared */
	struct msg *m;           /* what the child said */
	size_t n, cap;
};

static void round_report(const struct round *r)
{
	th_seed_report();
	print_error("%s round %d (epoch %d): %s, delay %ld us; last batch "
	            "before %" PRIu64 ", %zu messages\n",
	            op_name[r->test], r->no, r->epoch,
	            r->anywhere ? "killed anywhere" : "killed in the op",
	            r->delay_us, r->prev, r->n);
	for (size_t i = r->n > 12 ? r->n - 12 : 0; i < r->n; i++)
		print_error("  %s %s id %" PRIu64 " target %" PRIu64
		            " aux %" PRIu64 " seq %u\n",
		            r->m[i].kind == M_BEGIN ? "BEGIN" : "END  ",
		            op_name[r->m[i].op], r->m[i].id, r->m[i].target,
		            r->m[i].aux, r->m[i].seq);
}

#define CK(r, cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			round_report(r);                                       \
			fail_msg("%s", #cond);                                 \
		}                                                              \
	} while (0)

/* Read one message; 1 = got one, 0 = EOF, -1 = timeout. */
static int read_msg(int fd, struct msg *m, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	size_t got = 0;
	while (got < sizeof *m) {
		int pr = poll(&p, 1, timeout_ms);
		if (pr == 0)
			return -1;
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		ssize_t n = read(fd, (char *)m + got, sizeof *m - got);
		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		got += (size_t)n;
	}
	return 1;
}

static void push_msg(struct round *r, const struct msg *m)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->m = realloc(r->m, r->cap * sizeof *r->m);
		assert_non_null(r->m);
	}
	r->m[r->n++] = *m;
}

/* The message in flight: the last BEGIN without its END, or NULL. */
static const struct msg *in_flight(const struct round *r)
{
	if (r->n && r->m[r->n - 1].kind == M_BEGIN)
		return &r->m[r->n - 1];
	return NULL;
}

/* The BEGIN of the batch op that produces batch id, or NULL. */
static const struct msg *begin_of(const struct round *r, uint64_t id)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->m[i].kind == M_BEGIN && makes_batch((int)r->m[i].op) &&
		    r->m[i].id == id)
			return &r->m[i];
	return NULL;
}

static int ended(const struct round *r, const struct msg *b)
{
	return b + 1 < r->m + r->n && b[1].kind == M_END;
}

/* ---- the parent: checking one batch -------------------------------------
 */

static void changes_of(lb_db *db, uint64_t id, te_recs *rs)
{
	memset(rs, 0, sizeof *rs);
	te_changes(db, id, rs);
}

static int img_eq(int ha, const void *a, size_t al, int hb, const void *b,
                  size_t bl)
{
	return ha == hb && (!ha || (al == bl && (!al || !memcmp(a, b, al))));
}

/* Is r the inverse of s (same table and key, images swapped)? */
static int inverse_of(const te_rec *r, const te_rec *s)
{
	int op = s->has_before ? LB_OP_PUT : LB_OP_DELETE;
	return r->op == op && !strcmp(r->table, s->table) &&
	       r->klen == s->klen && !memcmp(r->key, s->key, s->klen) &&
	       img_eq(r->has_before, r->before, r->blen, s->has_after, s->after,
	              s->alen) &&
	       img_eq(r->has_after, r->after, r->alen, s->has_before, s->before,
	              s->blen);
}

static void check_user(const struct round *r, lb_db *db, uint64_t id)
{
	unsigned n = nkeys_of(id);
	char k[64], v[160], l[64];
	size_t kl, vl;
	lb_batch_info bi;
	te_recs rs;

	te_rc(0, lb_batch_info_get(db, id, &bi));
	te_crash_label(id, l);
	CK(r, strcmp(bi.label, l) == 0);
	CK(r, bi.records == n + 1 && bi.undoes == 0);
	if (bi.pruned) {
		memset(&rs, 0, sizeof rs);
		te_rc(LB_EPRUNED, lb_changes(db, id, te_collect, &rs));
		te_recs_free(&rs);
	} else {
		changes_of(db, id, &rs);
		CK(r, rs.n == n + 1);
		for (unsigned i = 0; i < n; i++) {
			kl = te_crash_key(id, i, k);
			vl = te_crash_val(id, i, 90, v);
			te_assert_rec(&rs.v[i], LB_OP_PUT, "t", k, kl, NULL, 0,
			              v, vl);
		}
		vl = counter_of(id, v);
		CK(r, rs.v[n].op == LB_OP_PUT && rs.v[n].has_after &&
		              rs.v[n].alen == vl &&
		              !memcmp(rs.v[n].after, v, vl));
		te_recs_free(&rs);
	}
	/* Its keys are there unless it was undone. */
	for (unsigned i = 0; i < n; i++) {
		kl = te_crash_key(id, i, k);
		vl = te_crash_val(id, i, 90, v);
		if (bi.rolled_back_by)
			te_assert_absent(db, "t", k, kl);
		else
			te_assert_get(db, "t", k, kl, v, vl);
	}
}

/* Batch id undoes the batches in undone[] (newest first) record by record:
 * its records are their inverses, in reverse order. */
static void check_inverse(const struct round *r, lb_db *db, uint64_t id,
                          const uint64_t *undone, size_t nu)
{
	te_recs got, want;
	size_t at = 0;
	changes_of(db, id, &got);
	for (size_t u = 0; u < nu; u++) {
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(db, undone[u], &bi));
		CK(r, bi.rolled_back_by == id);
		changes_of(db, undone[u], &want);
		for (size_t i = want.n; i-- > 0; at++) {
			CK(r, at < got.n);
			CK(r, inverse_of(&got.v[at], &want.v[i]));
		}
		te_recs_free(&want);
	}
	CK(r, at == got.n);
	te_recs_free(&got);
}

/* Batch id is rollback_to(x): every standing batch after x is marked, and
 * its records are the net change back (each key once, in any order). */
static void check_rbto(const struct round *r, lb_db *db, uint64_t id,
                       uint64_t x)
{
	te_recs got, want;
	size_t matched = 0;
	char *done;
	changes_of(db, id, &got);
	done = calloc(got.n + 1, 1);
	assert_non_null(done);
	for (uint64_t u = x + 1; u < id; u++) {
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(db, u, &bi));
		CK(r, bi.rolled_back_by == id);
		changes_of(db, u, &want);
		for (size_t i = 0; i < want.n; i++) {
			const te_rec *w = &want.v[i];
			int counter =
			        w->klen == 7 && !memcmp(w->key, "counter", 7);
			size_t j;
			/* the counter's record: before = the last value,
			 * after = the value right after x (checked below) */
			if (counter)
				continue;
			for (j = 0; j < got.n; j++)
				if (!done[j] && inverse_of(&got.v[j], w))
					break;
			CK(r, j < got.n);
			done[j] = 1;
			matched++;
		}
		te_recs_free(&want);
	}
	/* The counter: back to its value right after x. */
	{
		te_recs first;
		size_t j;
		changes_of(db, x + 1, &first);
		CK(r, first.n > 0);
		const te_rec *c0 = &first.v[first.n - 1];
		for (j = 0; j < got.n; j++)
			if (!done[j] && got.v[j].klen == 7 &&
			    !memcmp(got.v[j].key, "counter", 7))
				break;
		CK(r, j < got.n);
		CK(r, img_eq(got.v[j].has_after, got.v[j].after, got.v[j].alen,
		             c0->has_before, c0->before, c0->blen));
		done[j] = 1;
		matched++;
		te_recs_free(&first);
	}
	CK(r, matched == got.n);
	free(done);
	te_recs_free(&got);
}

static void check_batch(const struct round *r, lb_db *db, uint64_t id)
{
	const struct msg *b = begin_of(r, id);
	lb_batch_info bi;
	uint64_t undone[2];
	/* Every batch of the round was begun by the child. */
	CK(r, b != NULL);
	te_rc(0, lb_batch_info_get(db, id, &bi));
	switch (b->op) {
	case OP_COMMIT:
		check_user(r, db, id);
		break;
	case OP_ROLLBACK:
		CK(r, bi.undoes == b->target);
		undone[0] = b->target;
		check_inverse(r, db, id, undone, 1);
		break;
	case OP_CASCADE:
		CK(r, bi.undoes == b->target);
		undone[0] = b->aux;
		undone[1] = b->target;
		check_inverse(r, db, id, undone, 2);
		break;
	case OP_RBTO:
		CK(r, bi.undoes == b->target);
		check_rbto(r, db, id, b->target);
		break;
	default:
		CK(r, 0);
	}
}

/* ---- the parent: destinations and prunes --------------------------------
 */

struct ckreg {
	const char *path;
	int found;
	uint64_t at;
};

static int ckpt_cb(void *ctx, uint64_t batch, const char *path, int64_t t)
{
	struct ckreg *c = ctx;
	(void)t;
	if (!strcmp(path, c->path)) {
		c->found = 1;
		c->at = batch;
	}
	return 0;
}

/* Open dest as a database and verify it, replay included; its last batch
 * in *last. A copy of a pruned database replays from the checkpoint whose
 * registration it kept (the prune test keeps every checkpoint of an
 * epoch). */
static void verify_dir(const struct round *r, const char *dest, uint64_t *last)
{
	lb_db *d = te_open(dest, 0);
	lb_verify_report rep;
	int rc = lb_verify(d, LB_VERIFY_REPLAY, &rep);
	if (rc != 0)
		print_error("%s: %s (%s)\n", dest, lb_errmsg(), rep.detail);
	CK(r, rc == 0 && rep.chain_ok && rep.replay_ok);
	*last = te_last(d);
	lb_close(d);
}

/* Does dest open as a database without LB_CREATE? */
static int opens(const char *dest)
{
	lb_options o;
	lb_db *d = NULL;
	lb_options_init(&o);
	o.flags = LB_RDONLY;
	int rc = lb_open(dest, &o, &d);
	lb_close(d);
	return rc == 0;
}

static void check_dests(struct round *r, lb_db *db, const char *root,
                        unsigned long *stray)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct msg *b = &r->m[i];
		if (b->kind != M_BEGIN ||
		    (b->op != OP_CKPT && b->op != OP_REPLAY))
			continue;
		char *dest =
		        dest_name(root, (int)b->op, r->epoch, r->no, b->seq);
		struct ckreg reg = {dest, 0, 0};
		uint64_t last;
		assert_non_null(dest);
		if (b->op == OP_CKPT)
			te_rc(0, lb_checkpoints(db, ckpt_cb, &reg));
		if (ended(r, b)) {
			verify_dir(r, dest, &last);
			CK(r, last == b[1].id);
			if (b->op == OP_CKPT)
				CK(r, reg.found && reg.at == b[1].id);
		} else if (reg.found || opens(dest)) {
			/* killed after the copy was published (and perhaps
			 * registered): it must be whole */
			r->published++;
			verify_dir(r, dest, &last);
			CK(r, !reg.found || reg.at == last);
			CK(r, last <= te_last(db));
		}
		free(dest);
	}
	/* Hidden build directories of killed checkpoints and replays may
	 * remain: count and remove them. */
	DIR *d = opendir(root);
	struct dirent *e;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' && strstr(e->d_name, ".tmp-")) {
			char *p = th_path(root, e->d_name);
			th_rmrf(p);
			free(p);
			(*stray)++;
		}
	}
	closedir(d);
}

static void check_prunes(struct round *r, lb_db *db, uint64_t last)
{
	uint64_t reported = r->pruned, inflight = 0, p = 1;
	const struct msg *f = in_flight(r);
	for (size_t i = 0; i < r->n; i++)
		if (r->m[i].kind == M_END && r->m[i].op == OP_PRUNE &&
		    r->m[i].target > reported)
			reported = r->m[i].target;
	if (f && f->op == OP_PRUNE)
		inflight = f->target;
	/* pruned batches form a prefix 1..p-1 */
	for (uint64_t id = 1; id <= last; id++) {
		lb_batch_info bi;
		te_rc(0, lb_batch_info_get(db, id, &bi));
		if (bi.pruned) {
			CK(r, p == id);
			p = id + 1;
		}
	}
	CK(r, p == reported || (inflight > reported && p == inflight));
	r->pruned = p;
}

static void drop_dests(const struct round *r, const char *root)
{
	for (size_t i = 0; i < r->n; i++) {
		if (r->m[i].kind != M_BEGIN ||
		    (r->m[i].op != OP_CKPT && r->m[i].op != OP_REPLAY))
			continue;
		char *dest = dest_name(root, (int)r->m[i].op, r->epoch, r->no,
		                       r->m[i].seq);
		th_rmrf(dest);
		free(dest);
	}
}

static void check_round(struct round *r, const char *dir, const char *root,
                        unsigned long *stray)
{
	lb_db *db = te_open(dir, 0);
	uint64_t last = te_last(db), maxrep = r->prev;
	const struct msg *f = in_flight(r);
	lb_verify_report rep;

	for (size_t i = 0; i < r->n; i++)
		if (r->m[i].kind == M_END && makes_batch((int)r->m[i].op) &&
		    r->m[i].id > maxrep)
			maxrep = r->m[i].id;
	/* every batch whose call returned is there (durable commits) */
	CK(r, last >= maxrep);
	/* and nothing else but the one in flight */
	if (f && makes_batch((int)f->op))
		CK(r, last == maxrep || (last == maxrep + 1 && f->id == last));
	else
		CK(r, last == maxrep);
	for (uint64_t id = r->prev + 1; id <= last; id++)
		check_batch(r, db, id);
	{
		lb_batch_info bi;
		te_rc(LB_ENOTFOUND, lb_batch_info_get(db, last + 1, &bi));
	}
	if (r->test == OP_PRUNE)
		check_prunes(r, db, last);
	check_dests(r, db, root, stray);

	memset(&rep, 0, sizeof rep);
	int rc = lb_verify(db, LB_VERIFY_REPLAY, &rep);
	if (rc != 0)
		print_error("verify: %s (%s)\n", lb_errmsg(), rep.detail);
	CK(r, rc == 0 && rep.chain_ok && rep.replay_ok);
	CK(r, rep.batches == last);
	lb_close(db);
	r->prev = last;
}

/* ---- the parent: rounds --------------------------------------------------
 */

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A fresh database; the destinations of the last epoch go. */
static void new_epoch(const char *root, const char *dir)
{
	th_rmrf(root);
	assert_int_equal(mkdir(root, 0755), 0);
	lb_db *db = te_open(dir, LB_CREATE);
	te_rc(0, lb_table_create(db, "t", NULL));
	lb_close(db);
}

static void matrix(int test)
{
	long rounds = th_env_long("LB_CRASH_ROUNDS", 20);
	char *tmp = th_tmpdir();
	/* checkpoints are registered by their real path */
	char *root = realpath(tmp, NULL);
	char *dir = th_path(root, "db");
	uint64_t rng = th_seed(0xc7a5400 + (uint64_t)test);
	double est_ns = 3e6; /* running mean duration of the op */
	unsigned long inside = 0, stray = 0, anywhere = 0;
	struct round r;

	memset(&r, 0, sizeof r);
	r.test = test;
	for (long no = 0; no < rounds; no++) {
		int fds[2], status = 0, got;
		struct msg m;
		pid_t pid;

		if (no % EPOCH_ROUNDS == 0) {
			new_epoch(root, dir);
			r.prev = 1;
			r.pruned = 1;
		}
		r.epoch = (int)(no / EPOCH_ROUNDS);
		r.no = (int)no;
		r.n = 0;
		r.anywhere = th_below(&rng, 10) == 0;
		r.k = 1 + (unsigned)th_below(&rng, 3);
		r.delay_us = (long)(th_below(&rng, 1301) * est_ns / 1e6);
		if (r.anywhere)
			r.delay_us = (long)th_below(&rng, 40001);

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			child_signals();
			struct child c;
			close(fds[0]);
			memset(&c, 0, sizeof c);
			c.dir = dir;
			c.root = root;
			c.fd = fds[1];
			c.epoch = r.epoch;
			c.round = r.no;
			c.test = test;
			child_main(&c);
		}
		close(fds[1]);

		if (r.anywhere) {
			sleep_us(r.delay_us);
		} else {
			unsigned seen = 0;
			while (seen < r.k) {
				got = read_msg(fds[0], &m, 30000);
				if (got != 1)
					break;
				push_msg(&r, &m);
				if (m.kind == M_BEGIN && (int)m.op == test)
					seen++;
			}
			sleep_us(r.delay_us);
		}
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		while ((got = read_msg(fds[0], &m, 5000)) == 1)
			push_msg(&r, &m);
		close(fds[0]);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			round_report(&r);
			fail_msg(
			        "the child stopped by itself (exit status %d): "
			        "a logbook call failed in it",
			        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		}
		/* learn how long the op takes, from the child's clock */
		for (size_t i = 0; i + 1 < r.n; i++)
			if (r.m[i].kind == M_BEGIN && (int)r.m[i].op == test &&
			    r.m[i + 1].kind == M_END)
				est_ns = est_ns * 0.8 +
				         (double)(r.m[i + 1].ns - r.m[i].ns) *
				                 0.2;
		const struct msg *f = in_flight(&r);
		if (f && (int)f->op == test)
			inside++;
		anywhere += r.anywhere;
		check_round(&r, dir, root, &stray);
		/* a prune needs its checkpoints; other tests drop theirs */
		if (test != OP_PRUNE)
			drop_dests(&r, root);
	}
	printf("crash matrix, %s: %ld rounds survived, %lu killed inside "
	       "the %s (%lu at a random instant), %lu hidden temporary "
	       "directories left",
	       op_name[test], rounds, inside, op_name[test], anywhere, stray);
	if (test == OP_CKPT || test == OP_REPLAY)
		printf(", %lu killed after the destination appeared (it "
		       "verified)",
		       r.published);
	printf("; mean %s time %.2f ms\n", op_name[test], est_ns / 1e6);
	free(r.m);
	th_rmrf(root);
	free(dir);
	free(root);
	free(tmp);
}

#define MATRIX_TEST(name, op)                                                  \
	static void test_engine_crashmatrix__##name(void **state)              \
	{                                                                      \
		(void)state;                                                   \
		matrix(op);                                                    \
	}
MATRIX_TEST(kill_in_commit, OP_COMMIT)
MATRIX_TEST(kill_in_rollback, OP_ROLLBACK)
MATRIX_TEST(kill_in_cascade_rollback, OP_CASCADE)
MATRIX_TEST(kill_in_rollback_to, OP_RBTO)
MATRIX_TEST(kill_in_checkpoint, OP_CKPT)
MATRIX_TEST(kill_in_prune, OP_PRUNE)
MATRIX_TEST(kill_in_replay, OP_REPLAY)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_engine_crashmatrix__kill_in_commit),
	        cmocka_unit_test(test_engine_crashmatrix__kill_in_rollback),
	        cmocka_unit_test(
	                test_engine_crashmatrix__kill_in_cascade_rollback),
	        cmocka_unit_test(test_engine_crashmatrix__kill_in_rollback_to),
	        cmocka_unit_test(test_engine_crashmatrix__kill_in_checkpoint),
	        cmocka_unit_test(test_engine_crashmatrix__kill_in_prune),
	        cmocka_unit_test(test_engine_crashmatrix__kill_in_replay),
	};
	/* A dead child must not kill the parent through the pipe. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("engine_crashmatrix", tests, NULL,
	                                   NULL);
}
