/* SPDX-License-Identifier: MIT */
/*
 * tests/tools/replication.c: `ship`, `follow`, `replica status` and
 * `promote` against real nats-server processes (JetStream on, a store in
 * a temporary directory, a free loopback port), started by each test and
 * always stopped (teardown, and an atexit handler for any other way out).
 *
 * The primary is written by this process through the library (other
 * processes ship from it meanwhile, as an application's would); the CLI
 * runs as separate processes ($LB_BIN). After every test the follower
 * equals the primary at the same batch: the same hash for every batch,
 * `export` output identical, `verify --replay` clean.
 *
 * Covered: shipping and following, rollbacks and rollback-to shipped like
 * any batch, chunked frames; SIGKILL of `ship` and of `follow` at random
 * instants while batches commit (LB_REPL_ROUNDS rounds of each, default
 * 25, so 50 kills), then catching up; a server restart under both; a
 * duplicated message; the first chunks of a batch delivered again by the
 * server while its last ones are late; a forged message (valid framing,
 * wrong hash) refused with nothing applied; a second primary fenced; a
 * follower promoted; a follower bootstrapped from a checkpoint after the
 * stream's limits removed its early batches; a three-node JetStream
 * cluster whose R3 stream `ship` creates while the third node is still
 * missing (it waits for it), and whose stream leader is then killed
 * (SIGKILL) while batches commit, ship and follow (about 30 s).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "../helpers.h"
#include "logbook.h"

static const char *bin;
static char *root;

/* ---- servers ------------------------------------------------------------- */

typedef struct srv {
	pid_t pid;
	int port, cport;
	char name[16];
	char dir[512];
	char routes[512]; /* cluster: the other nodes' route URLs */
} srv;

#define MAX_SRV 3
static srv *live[MAX_SRV];

static void kill_all(void)
{
	for (int i = 0; i < MAX_SRV; i++)
		if (live[i] && live[i]->pid > 0) {
			kill(live[i]->pid, SIGKILL);
			waitpid(live[i]->pid, NULL, 0);
			live[i]->pid = 0;
		}
}

static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t l = sizeof a;
	int s = socket(AF_INET, SOCK_STREAM, 0), port;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
	port = ntohs(a.sin_port);
	close(s);
	return port;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void srv_start(srv *s)
{
	char port[16], cport[32], logf[600];
	snprintf(port, sizeof port, "%d", s->port);
	snprintf(logf, sizeof logf, "%s.log", s->dir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		FILE *f = freopen(logf, "a", stdout);
		(void)f;
		dup2(1, 2);
		if (s->cport) {
			snprintf(cport, sizeof cport, "nats://127.0.0.1:%d",
			         s->cport);
			execlp("nats-server", "nats-server", "-js", "-sd",
			       s->dir, "-p", port, "-a", "127.0.0.1", "-n",
			       s->name, "--cluster_name", "lbc", "--cluster",
			       cport, "--routes", s->routes, (char *)NULL);
		} else {
			execlp("nats-server", "nats-server", "-js", "-sd",
			       s->dir, "-p", port, "-a", "127.0.0.1", "-n",
			       s->name, (char *)NULL);
		}
		_exit(127);
	}
	s->pid = pid;
	for (int i = 0; i < MAX_SRV; i++)
		if (!live[i] || live[i] == s) {
			live[i] = s;
			break;
		}
}

/* Wait until JetStream answers on s (the cluster: until its meta leader
 * is elected). */
static void srv_ready(srv *s)
{
	char url[64];
	snprintf(url, sizeof url, "nats://127.0.0.1:%d", s->port);
	for (int i = 0; i < 300; i++) {
		natsConnection *nc = NULL;
		jsCtx *js = NULL;
		jsAccountInfo *ai = NULL;
		int ok = natsConnection_ConnectTo(&nc, url) == NATS_OK &&
		         natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
		         js_GetAccountInfo(&ai, js, NULL, NULL) == NATS_OK;
		jsAccountInfo_Destroy(ai);
		jsCtx_Destroy(js);
		natsConnection_Destroy(nc);
		if (ok)
			return;
		sleep_ms(100);
	}
	fail_msg("nats-server on port %d did not start (log: %s.log)", s->port,
	         s->dir);
}

static void srv_stop(srv *s, int sig)
{
	if (s->pid > 0) {
		kill(s->pid, sig);
		waitpid(s->pid, NULL, 0);
		s->pid = 0;
	}
}

static void srv_init(srv *s, const char *name)
{
	memset(s, 0, sizeof s[0]);
	s->port = free_port();
	snprintf(s->name, sizeof s->name, "%s", name);
	snprintf(s->dir, sizeof s->dir, "%s/%s-js", root, name);
}

static const char *url_of(const srv *s)
{
	static char u[64];
	snprintf(u, sizeof u, "nats://127.0.0.1:%d", s->port);
	return u;
}

/* ---- processes ------------------------------------------------------------
 */

/* Run a shell command; its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char *cmd;
	va_list ap;
	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	int st = system(cmd);
	free(cmd);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Run `logbook CMD DIR --nats URL --stream STREAM REST`; its exit status. */
static int repl(const char *cmd, const char *dir, const char *url,
                const char *stream, const char *rest)
{
	return sh("%s %s %s --nats %s --stream %s %s", bin, cmd, dir, url,
	          stream, rest);
}

/* Start `exec CMD` in the background; its pid (the command's own). */
static pid_t bg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static pid_t bg(const char *fmt, ...)
{
	char *cmd, *full;
	va_list ap;
	va_start(ap, fmt);
	assert_true(vasprintf(&cmd, fmt, ap) >= 0);
	va_end(ap);
	assert_true(asprintf(&full, "exec %s", cmd) >= 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", full, (char *)NULL);
		_exit(127);
	}
	free(cmd);
	free(full);
	return pid;
}

static int reap(pid_t pid, int sig)
{
	int st;
	if (sig)
		kill(pid, sig);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- the primary, written here ------------------------------------------- */

static lb_db *open_db(const char *dir, unsigned flags)
{
	lb_db *db;
	lb_options o;
	lb_options_init(&o);
	o.flags = flags;
	int rc = lb_open(dir, &o, &db);
	if (rc < 0)
		fail_msg("lb_open %s: %s", dir, lb_errmsg());
	return db;
}

/* A new database at dir, with the table "t". */
static lb_db *new_primary(const char *dir)
{
	lb_db *db = open_db(dir, LB_CREATE | LB_NOSYNC);
	assert_int_equal(lb_table_create(db, "t", NULL), 0);
	return db;
}

static uint64_t last_of(lb_db *db)
{
	uint64_t id;
	assert_int_equal(lb_last_batch(db, &id), 0);
	return id;
}

/* One batch of n puts (values of size 1..vmax) in table t. */
static void commit_puts(lb_db *db, uint64_t *rs, unsigned n, unsigned vmax)
{
	lb_batch *b;
	char key[32], *val = malloc(vmax + 1);
	assert_non_null(val);
	assert_int_equal(lb_batch_begin(db, "w", &b), 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof key, "k%05u", (unsigned)th_below(rs, 400));
		size_t vl = 1 + th_below(rs, vmax);
		for (size_t j = 0; j < vl; j++)
			val[j] = (char)('a' + th_below(rs, 26));
		assert_int_equal(lb_put(b, "t", key, strlen(key), val, vl), 0);
	}
	lb_result res;
	assert_int_equal(lb_batch_commit(b, &res), 0);
	lb_result_free(&res);
	free(val);
}

/* A rollback (forced) of a recent batch, or a rollback-to. */
static void commit_undo(lb_db *db, uint64_t *rs)
{
	lb_result res;
	uint64_t last = last_of(db);
	if (last < 4)
		return;
	if (th_below(rs, 2))
		(void)lb_rollback(db, last - th_below(rs, 3), LB_FORCE, &res);
	else
		(void)lb_rollback_to(db, last - 1 - th_below(rs, 2), &res);
	lb_result_free(&res);
}

typedef struct writer {
	lb_db *db;
	uint64_t seed;
	volatile int stop;
	pthread_t th;
	unsigned n;
} writer;

static void *writer_main(void *arg)
{
	writer *w = arg;
	uint64_t rs = w->seed;
	while (!w->stop) {
		if (th_below(&rs, 10) == 0)
			commit_undo(w->db, &rs);
		else
			commit_puts(w->db, &rs, 1 + (unsigned)th_below(&rs, 30),
			            200);
		w->n++;
		sleep_ms(2 + (long)th_below(&rs, 10));
	}
	return NULL;
}

/* A new primary at pd (table "t") and a thread committing to it. */
static void writer_start(writer *w, const char *pd, uint64_t seed)
{
	memset(w, 0, sizeof *w);
	w->db = new_primary(pd);
	w->seed = seed;
	assert_int_equal(pthread_create(&w->th, NULL, writer_main, w), 0);
}

/* Stop the thread and close the primary; its last batch. */
static uint64_t writer_stop(writer *w)
{
	w->stop = 1;
	pthread_join(w->th, NULL);
	uint64_t last = last_of(w->db);
	lb_close(w->db);
	return last;
}

/* ---- comparing ----------------------------------------------------------- */

/* The follower at fd equals the primary at pd up to the follower's last
 * batch, which must be `at`: every batch hash, export, verify --replay. */
static void assert_follower(const char *pd, const char *fd, uint64_t at)
{
	lb_db *p = open_db(pd, LB_RDONLY), *f = open_db(fd, LB_RDONLY);
	lb_identity id;
	assert_int_equal(last_of(f), at);
	for (uint64_t i = 1; i <= at; i++) {
		lb_batch_info a, b;
		assert_int_equal(lb_batch_info_get(p, i, &a), 0);
		assert_int_equal(lb_batch_info_get(f, i, &b), 0);
		assert_memory_equal(a.hash, b.hash, 32);
	}
	assert_int_equal(lb_identity_get(f, &id), 0);
	assert_true(id.follows);
	int same_last = last_of(p) == at;
	lb_close(p);
	lb_close(f);
	assert_int_equal(sh("%s verify %s --replay >/dev/null", bin, fd), 0);
	if (same_last)
		assert_int_equal(sh("%s export %s > %s/p.exp && %s export %s > "
		                    "%s/f.exp && cmp -s %s/p.exp %s/f.exp",
		                    bin, pd, root, bin, fd, root, root, root),
		                 0);
}

/* ---- fixtures ------------------------------------------------------------ */

static srv one;

static int setup(void **st)
{
	(void)st;
	root = th_tmpdir();
	srv_init(&one, "n0");
	srv_start(&one);
	srv_ready(&one);
	return 0;
}

static int teardown(void **st)
{
	(void)st;
	kill_all();
	if (getenv("LB_REPL_KEEP"))
		fprintf(stderr, "kept %s\n", root);
	else
		th_rmrf(root);
	free(root);
	root = NULL;
	return 0;
}

static char *path(const char *name)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", root, name) >= 0);
	return p;
}

/* Whether the file at p contains s. */
static int file_has(const char *p, const char *s)
{
	char buf[4096];
	FILE *f = fopen(p, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	return strstr(buf, s) != NULL;
}

/* ---- tests --------------------------------------------------------------- */

static void test_tools_replication__ship_follow_rollbacks_chunks(void **st)
{
	char *pd = path("basic-p"), *fd = path("basic-f");
	lb_db *p = new_primary(pd);
	uint64_t rs = th_seed(2001);
	(void)st;
	for (int i = 0; i < 30; i++) {
		if (i % 7 == 6)
			commit_undo(p, &rs);
		else
			commit_puts(p, &rs, 1 + (unsigned)th_below(&rs, 50),
			            3000);
	}
	/* a rollback-to, named */
	lb_result res;
	assert_int_equal(lb_rollback_to(p, last_of(p) - 3, &res), 0);
	lb_result_free(&res);
	uint64_t last = last_of(p);
	/* chunks of 2 KiB: most batches span several messages */
	assert_int_equal(repl("ship", pd, url_of(&one), "B",
	                      "--chunk-size 2048 >/dev/null"),
	                 0);
	/* shipping again publishes nothing */
	assert_int_equal(sh("%s ship %s --nats %s --stream B --json | grep -q "
	                    "'\"messages\":0'",
	                    bin, pd, url_of(&one)),
	                 0);
	assert_int_equal(repl("follow", fd, url_of(&one), "B", ">/dev/null"),
	                 0);
	lb_close(p);
	assert_follower(pd, fd, last);
	/* lag: one batch more on the primary, shipped, not yet followed */
	p = open_db(pd, LB_NOSYNC);
	commit_puts(p, &rs, 3, 10);
	lb_close(p);
	assert_int_equal(repl("ship", pd, url_of(&one), "B", ">/dev/null"), 0);
	assert_int_equal(sh("%s replica status %s --nats %s --stream B --json "
	                    "| grep -q '\"lag_batches\":1'",
	                    bin, fd, url_of(&one)),
	                 0);
	assert_int_equal(repl("follow", fd, url_of(&one), "B", ">/dev/null"),
	                 0);
	assert_follower(pd, fd, last + 1);
	assert_int_equal(sh("%s replica status %s --nats %s --stream B --json "
	                    "| grep -q '\"lag_batches\":0'",
	                    bin, fd, url_of(&one)),
	                 0);
	/* a follower refuses batches of its own */
	assert_int_equal(sh("%s put %s t x '\"y\"' 2>/dev/null", bin, fd), 3);
	/* ship is the primary's consumer: a batch not shipped yet is not
	 * pruned */
	char *ck = path("basic-ck");
	uint64_t at;
	p = open_db(pd, LB_NOSYNC);
	commit_puts(p, &rs, 3, 10);
	assert_int_equal(lb_checkpoint(p, ck, &at), 0);
	assert_true(lb_prune(p, at + 1) < 0);
	lb_close(p);
	assert_int_equal(repl("ship", pd, url_of(&one), "B", ">/dev/null"), 0);
	p = open_db(pd, LB_NOSYNC);
	assert_int_equal(lb_prune(p, at + 1), 0);
	lb_close(p);
	assert_int_equal(repl("follow", fd, url_of(&one), "B", ">/dev/null"),
	                 0);
	assert_follower(pd, fd, at);
	free(ck);
	free(pd);
	free(fd);
}

/* Publish len bytes at buf to stream's subject with the headers Lb-Batch
 * (batch), Lb-Chunk (chunk) and, unless NULL, Lb-Hash and Lb-Time. */
static void publish(const char *url, const char *stream, uint64_t batch,
                    const char *chunk, const char *hash, const char *tns,
                    const void *buf, size_t len)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	natsMsg *m = NULL;
	jsPubAck *pa = NULL;
	char subj[128], num[32];
	snprintf(subj, sizeof subj, "logbook.%s", stream);
	snprintf(num, sizeof num, "%llu", (unsigned long long)batch);
	assert_int_equal(natsConnection_ConnectTo(&nc, url), NATS_OK);
	assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
	assert_int_equal(natsMsg_Create(&m, subj, NULL, buf, (int)len),
	                 NATS_OK);
	natsMsgHeader_Set(m, "Lb-Batch", num);
	natsMsgHeader_Set(m, "Lb-Chunk", chunk);
	if (hash)
		natsMsgHeader_Set(m, "Lb-Hash", hash);
	if (tns)
		natsMsgHeader_Set(m, "Lb-Time", tns);
	assert_int_equal(js_PublishMsg(&pa, js, m, NULL, NULL), NATS_OK);
	jsPubAck_Destroy(pa);
	natsMsg_Destroy(m);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
}

/* Publish raw bytes as the whole of batch (one chunk, no hash). */
static void publish_raw(const char *url, const char *stream, uint64_t batch,
                        const void *buf, size_t len)
{
	publish(url, stream, batch, "1/1", NULL, NULL, buf, len);
}

static void test_tools_replication__duplicate_and_forged(void **st)
{
	char *pd = path("forge-p"), *fd = path("forge-f");
	lb_db *p = new_primary(pd);
	uint64_t rs = th_seed(2002);
	void *buf;
	size_t len;
	(void)st;
	for (int i = 0; i < 5; i++)
		commit_puts(p, &rs, 10, 100);
	lb_close(p);
	assert_int_equal(repl("ship", pd, url_of(&one), "F", ">/dev/null"), 0);
	/* batch 3 published again (no message id: the server keeps it) */
	p = open_db(pd, LB_NOSYNC);
	assert_int_equal(lb_batch_raw(p, 3, &buf, &len), 0);
	publish_raw(url_of(&one), "F", 3, buf, len);
	free(buf);
	/* a forged batch 7: a real frame with a segment byte changed and
	 * its CRC made right again */
	commit_puts(p, &rs, 10, 100); /* batch 7, never shipped */
	assert_int_equal(lb_batch_raw(p, 7, &buf, &len), 0);
	lb_close(p);
	assert_int_equal(repl("follow", fd, url_of(&one), "F", ">/dev/null"),
	                 0);
	assert_follower(pd, fd, 6);
	uint8_t *q = buf;
	q[len - 12] ^= 0x40;
	{
		uint32_t c = 0xffffffffu;
		for (size_t i = 0; i < len - 4; i++) {
			c ^= q[i];
			for (int k = 0; k < 8; k++)
				c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
		}
		c = ~c;
		for (int i = 0; i < 4; i++)
			q[len - 4 + i] = (uint8_t)(c >> (8 * i));
	}
	publish_raw(url_of(&one), "F", 7, buf, len);
	free(buf);
	assert_int_equal(sh("%s follow %s --nats %s --stream F 2>%s/forge.err "
	                    ">/dev/null",
	                    bin, fd, url_of(&one), root),
	                 1);
	assert_int_equal(sh("grep -q 'batch 7' %s/forge.err", root), 0);
	assert_follower(pd, fd, 6); /* nothing applied */
	free(pd);
	free(fd);
}

/* Publish chunk i of n of batch's frame, with the headers ship writes. */
static void publish_chunk(const char *url, const char *stream, lb_db *p,
                          uint64_t batch, unsigned i, unsigned n,
                          const uint8_t *buf, size_t len)
{
	lb_batch_info bi;
	char chunk[32], hash[65], tns[32];
	size_t cs = (len + n - 1) / n, off = (size_t)(i - 1) * cs;
	size_t cl = len - off < cs ? len - off : cs;
	assert_int_equal(lb_batch_info_get(p, batch, &bi), 0);
	for (int k = 0; k < 32; k++)
		snprintf(hash + 2 * k, 3, "%02x", bi.hash[k]);
	snprintf(chunk, sizeof chunk, "%u/%u", i, n);
	snprintf(tns, sizeof tns, "%lld", (long long)bi.time_ns);
	publish(url, stream, batch, chunk, hash, tns, buf + off, cl);
}

static void wait_caught_up(const char *fd, const char *url, const char *stream,
                           uint64_t at);

/* A batch whose last chunks come late: its first chunks are not
 * acknowledged meanwhile (the batch is not committed), so the server
 * delivers them again, and the follower puts the batch together once. */
static void test_tools_replication__redelivered_chunks(void **st)
{
	char *pd = path("redel-p"), *fd = path("redel-f");
	lb_db *p = new_primary(pd);
	uint64_t rs = th_seed(2008);
	void *buf;
	size_t len;
	(void)st;
	for (int i = 0; i < 3; i++)
		commit_puts(p, &rs, 10, 100);
	lb_close(p);
	assert_int_equal(repl("ship", pd, url_of(&one), "D", ">/dev/null"), 0);
	pid_t fol = bg("%s follow %s --nats %s --stream D --follow --ack-wait "
	               "300 --json >%s/redel.out",
	               bin, fd, url_of(&one), root);
	wait_caught_up(fd, url_of(&one), "D", 4);
	p = open_db(pd, LB_NOSYNC);
	commit_puts(p, &rs, 60, 3000); /* batch 5 */
	assert_int_equal(lb_batch_raw(p, 5, &buf, &len), 0);
	publish_chunk(url_of(&one), "D", p, 5, 1, 4, buf, len);
	publish_chunk(url_of(&one), "D", p, 5, 2, 4, buf, len);
	sleep_ms(1500);
	publish_chunk(url_of(&one), "D", p, 5, 3, 4, buf, len);
	publish_chunk(url_of(&one), "D", p, 5, 4, 4, buf, len);
	free(buf);
	lb_close(p);
	wait_caught_up(fd, url_of(&one), "D", 5);
	assert_int_equal(reap(fol, SIGTERM), 0);
	assert_int_equal(
	        sh("grep -Eq '\"redelivered\":[1-9]' %s/redel.out", root), 0);
	/* the stream ends with the batch whole: ship agrees, adds nothing */
	assert_int_equal(sh("%s ship %s --nats %s --stream D --json | grep -q "
	                    "'\"messages\":0'",
	                    bin, pd, url_of(&one)),
	                 0);
	assert_follower(pd, fd, 5);
	free(pd);
	free(fd);
}

/* A stop by SIGTERM: a clean exit, or the signal's default action. */
static int ok_term(int x)
{
	return x == 0 || x == 128 + SIGTERM;
}

static void test_tools_replication__kill_rounds(void **st)
{
	char *pd = path("kill-p"), *fd = path("kill-f");
	long rounds = th_env_long("LB_REPL_ROUNDS", 25);
	uint64_t rs = th_seed(2003);
	writer w;
	(void)st;
	writer_start(&w, pd, rs);
	pid_t ship = 0, fol = 0;
	int kills = 0;
	for (long r = 0; r < 2 * rounds; r++) {
		if (!ship)
			ship = bg("%s ship %s --nats %s --stream K --follow "
			          "--chunk-size 4096 >/dev/null 2>>%s/ship.err",
			          bin, pd, url_of(&one), root);
		if (!fol)
			fol = bg("%s follow %s --nats %s --stream K --follow "
			         ">/dev/null 2>>%s/follow.err",
			         bin, fd, url_of(&one), root);
		sleep_ms(30 + (long)th_below(&rs, 220));
		/* alternate, so each is killed `rounds` times */
		if (r % 2 == 0) {
			int x = reap(ship, SIGKILL);
			if (x != 128 + SIGKILL) {
				sh("tail -5 %s/ship.err >&2", root);
				fail_msg("ship ended by itself (%d) before "
				         "its kill; seed %llu",
				         x, (unsigned long long)th_seed(2003));
			}
			ship = 0;
		} else {
			int x = reap(fol, SIGKILL);
			if (x != 128 + SIGKILL) {
				sh("tail -5 %s/follow.err >&2", root);
				fail_msg("follow ended by itself (%d) before "
				         "its kill; seed %llu",
				         x, (unsigned long long)th_seed(2003));
			}
			fol = 0;
		}
		kills++;
	}
	w.stop = 1;
	pthread_join(w.th, NULL);
	/* the one left running was started by the last round: it may not
	 * have set its signal handlers yet (slow under sanitizers), and
	 * then SIGTERM ends it as it would any process; what it did so far
	 * is checked below like the work of the killed ones */
	if (ship)
		assert_true(ok_term(reap(ship, SIGTERM)));
	if (fol)
		assert_true(ok_term(reap(fol, SIGTERM)));
	uint64_t last = last_of(w.db);
	lb_close(w.db);
	assert_true(kills >= 2 * rounds);
	assert_true(w.n > 10);
	assert_int_equal(repl("ship", pd, url_of(&one), "K",
	                      "--chunk-size 4096 >/dev/null"),
	                 0);
	assert_int_equal(repl("follow", fd, url_of(&one), "K", ">/dev/null"),
	                 0);
	assert_follower(pd, fd, last);
	free(pd);
	free(fd);
}

/* Poll `replica status` until the follower holds batch `at`. */
static void wait_caught_up(const char *fd, const char *url, const char *stream,
                           uint64_t at)
{
	for (int i = 0; i < 600; i++) {
		if (sh("%s replica status %s --nats %s --stream %s --json "
		       "2>/dev/null | grep -q '\"applied\":%llu,'",
		       bin, fd, url, stream, (unsigned long long)at) == 0)
			return;
		sleep_ms(100);
	}
	fail_msg("the follower did not reach batch %llu",
	         (unsigned long long)at);
}

static void test_tools_replication__server_restart(void **st)
{
	char *pd = path("rs-p"), *fd = path("rs-f");
	uint64_t rs = th_seed(2004);
	writer w;
	(void)st;
	writer_start(&w, pd, rs);
	pid_t ship = bg("%s ship %s --nats %s --stream R --follow >/dev/null "
	                "2>>%s/rs-ship.err",
	                bin, pd, url_of(&one), root);
	pid_t fol = bg("%s follow %s --nats %s --stream R --follow >/dev/null "
	               "2>>%s/rs-follow.err",
	               bin, fd, url_of(&one), root);
	sleep_ms(600);
	srv_stop(&one, SIGTERM);
	sleep_ms(400);
	srv_start(&one);
	srv_ready(&one);
	sleep_ms(600);
	uint64_t last = writer_stop(&w);
	wait_caught_up(fd, url_of(&one), "R", last);
	assert_int_equal(reap(ship, SIGTERM), 0);
	assert_int_equal(reap(fol, SIGTERM), 0);
	assert_follower(pd, fd, last);
	free(pd);
	free(fd);
}

static void test_tools_replication__fencing_and_promotion(void **st)
{
	char *pd = path("fence-p"), *fd = path("fence-f");
	char *od = path("fence-o");
	uint64_t rs = th_seed(2005);
	(void)st;
	lb_db *p = new_primary(pd);
	lb_db *o = new_primary(od);
	for (int i = 0; i < 4; i++) {
		commit_puts(p, &rs, 5, 50);
		commit_puts(o, &rs, 5, 50);
	}
	lb_close(o);
	lb_close(p);
	assert_int_equal(repl("ship", pd, url_of(&one), "P", ">/dev/null"), 0);
	/* another database is not this stream's primary */
	assert_int_equal(repl("ship", od, url_of(&one), "P", "2>/dev/null"), 1);
	/* failover: the follower catches up, is promoted, ships on */
	assert_int_equal(repl("follow", fd, url_of(&one), "P", ">/dev/null"),
	                 0);
	assert_int_equal(repl("promote", fd, url_of(&one), "P", ">/dev/null"),
	                 0);
	lb_db *f = open_db(fd, LB_NOSYNC);
	commit_puts(f, &rs, 5, 50);
	lb_close(f);
	assert_int_equal(repl("ship", fd, url_of(&one), "P", ">/dev/null"), 0);
	/* the old primary comes back with a batch of its own: fenced */
	p = open_db(pd, LB_NOSYNC);
	commit_puts(p, &rs, 5, 50);
	lb_close(p);
	assert_int_equal(sh("%s ship %s --nats %s --stream P 2>%s/fence.err",
	                    bin, pd, url_of(&one), root),
	                 1);
	assert_int_equal(sh("grep -q fenced %s/fence.err", root), 0);
	/* a second follower of the stream follows the new primary */
	char *gd = path("fence-g");
	assert_int_equal(repl("follow", gd, url_of(&one), "P", ">/dev/null"),
	                 0);
	assert_follower(fd, gd, 6);
	free(gd);
	free(pd);
	free(fd);
	free(od);
}

static void test_tools_replication__checkpoint_bootstrap(void **st)
{
	char *pd = path("ck-p"), *fd = path("ck-f"), *ck = path("ck-c");
	uint64_t rs = th_seed(2006), at;
	(void)st;
	lb_db *p = new_primary(pd);
	for (int i = 0; i < 8; i++)
		commit_puts(p, &rs, 5, 50);
	assert_int_equal(lb_checkpoint(p, ck, &at), 0);
	assert_int_equal(at, 9);
	for (int i = 0; i < 6; i++)
		commit_puts(p, &rs, 5, 50);
	lb_close(p);
	/* the stream keeps 5 messages: batches 1..10 are gone from it */
	assert_int_equal(
	        repl("ship", pd, url_of(&one), "C", "--max-msgs 5 >/dev/null"),
	        0);
	assert_int_equal(sh("%s follow %s --nats %s --stream C "
	                    "2>%s/ck.err >/dev/null",
	                    bin, fd, url_of(&one), root),
	                 1);
	assert_int_equal(sh("grep -q 'from-checkpoint' %s/ck.err", root), 0);
	th_rmrf(fd);
	/* a checkpoint at batch 9 is too old too: batch 10 is gone */
	assert_int_equal(sh("%s follow %s --nats %s --stream C "
	                    "--from-checkpoint %s 2>/dev/null >/dev/null",
	                    bin, fd, url_of(&one), ck),
	                 1);
	th_rmrf(fd);
	th_rmrf(ck);
	p = open_db(pd, LB_NOSYNC);
	assert_int_equal(lb_checkpoint(p, ck, &at), 0);
	lb_close(p);
	assert_int_equal(sh("%s follow %s --nats %s --stream C "
	                    "--from-checkpoint %s >/dev/null",
	                    bin, fd, url_of(&one), ck),
	                 0);
	/* and it follows on */
	p = open_db(pd, LB_NOSYNC);
	commit_puts(p, &rs, 5, 50);
	lb_close(p);
	assert_int_equal(repl("ship", pd, url_of(&one), "C", ">/dev/null"), 0);
	assert_int_equal(repl("follow", fd, url_of(&one), "C", ">/dev/null"),
	                 0);
	assert_follower(pd, fd, 16);
	free(pd);
	free(fd);
	free(ck);
}

/* ---- the cluster --------------------------------------------------------- */

static char *stream_leader(const char *url, const char *stream)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsStreamInfo *si = NULL;
	char *leader = NULL;
	if (natsConnection_ConnectTo(&nc, url) == NATS_OK &&
	    natsConnection_JetStream(&js, nc, NULL) == NATS_OK &&
	    js_GetStreamInfo(&si, js, stream, NULL, NULL) == NATS_OK &&
	    si->Cluster && si->Cluster->Leader)
		leader = strdup(si->Cluster->Leader);
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	return leader;
}

static void test_tools_replication__cluster_failover(void **st)
{
	static srv n[3];
	char urls[256], *pd = path("cl-p"), *fd = path("cl-f");
	uint64_t rs = th_seed(2007);
	writer w;
	(void)st;
	srv_stop(&one, SIGTERM);
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof name, "c%d", i);
		srv_init(&n[i], name);
		n[i].cport = free_port();
	}
	for (int i = 0; i < 3; i++) {
		int k = 0;
		n[i].routes[0] = 0;
		for (int j = 0; j < 3; j++)
			if (j != i)
				k += snprintf(n[i].routes + k,
				              sizeof n[i].routes - (size_t)k,
				              "%snats-route://127.0.0.1:%d",
				              k ? "," : "", n[j].cport);
		live[i] = NULL;
	}
	/* two nodes first: the cluster has its meta leader but cannot place
	 * an R3 stream, and `ship` retries the creation until the third
	 * node joins */
	for (int i = 0; i < 2; i++)
		srv_start(&n[i]);
	for (int i = 0; i < 2; i++)
		srv_ready(&n[i]);
	snprintf(urls, sizeof urls,
	         "nats://127.0.0.1:%d,nats://127.0.0.1:%d,nats://127.0.0.1:%d",
	         n[0].port, n[1].port, n[2].port);
	memset(&w, 0, sizeof w);
	w.db = new_primary(pd);
	w.seed = rs;
	char *cerr = path("cl-create.err");
	pid_t mk = bg("%s ship %s --nats %s --stream H --replicas 3 "
	              ">/dev/null 2>%s",
	              bin, pd, urls, cerr);
	for (int i = 0; i < 300 && !file_has(cerr, "retrying"); i++)
		sleep_ms(100);
	assert_true(file_has(cerr, "no suitable peers for placement"));
	srv_start(&n[2]);
	assert_int_equal(reap(mk, 0), 0);
	srv_ready(&n[2]);
	free(cerr);
	assert_int_equal(pthread_create(&w.th, NULL, writer_main, &w), 0);
	pid_t ship = bg("%s ship %s --nats %s --stream H --follow >/dev/null "
	                "2>>%s/cl-ship.err",
	                bin, pd, urls, root);
	pid_t fol = bg("%s follow %s --nats %s --stream H --follow >/dev/null "
	               "2>>%s/cl-follow.err",
	               bin, fd, urls, root);
	sleep_ms(1500);
	char *leader = stream_leader(urls, "H");
	assert_non_null(leader);
	int killed = -1;
	for (int i = 0; i < 3; i++)
		if (!strcmp(n[i].name, leader)) {
			srv_stop(&n[i], SIGKILL);
			killed = i;
		}
	free(leader);
	assert_true(killed >= 0);
	sleep_ms(3000);
	uint64_t last = writer_stop(&w);
	wait_caught_up(fd, urls, "H", last);
	assert_int_equal(reap(ship, SIGTERM), 0);
	assert_int_equal(reap(fol, SIGTERM), 0);
	assert_follower(pd, fd, last);
	for (int i = 0; i < 3; i++)
		srv_stop(&n[i], SIGTERM);
	for (int i = 0; i < MAX_SRV; i++)
		live[i] = NULL;
	free(pd);
	free(fd);
}

int main(void)
{
	bin = getenv("LB_BIN");
	if (!bin || !*bin)
		bin = "build/logbook";
	atexit(kill_all);
	/* LB_REPL_ONLY=PATTERN runs the matching tests only (debugging) */
	if (getenv("LB_REPL_ONLY"))
		cmocka_set_test_filter(getenv("LB_REPL_ONLY"));
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	        T(test_tools_replication__ship_follow_rollbacks_chunks),
	        T(test_tools_replication__duplicate_and_forged),
	        T(test_tools_replication__redelivered_chunks),
	        T(test_tools_replication__kill_rounds),
	        T(test_tools_replication__server_restart),
	        T(test_tools_replication__fencing_and_promotion),
	        T(test_tools_replication__checkpoint_bootstrap),
	        T(test_tools_replication__cluster_failover),
#undef T
	};
	return cmocka_run_group_tests_name("tools_replication", tests, NULL,
	                                   NULL);
}
