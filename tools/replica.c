/* SPDX-License-Identifier: MIT */
/*
 * replica.c: `ship`, `follow`, `replica status` and `promote`: followers
 * over NATS JetStream (docs/REPLICATION.md).
 *
 * THE STREAM. One JetStream stream per primary, subject `logbook.STREAM`,
 * file storage, deny delete and purge. Each batch is one message holding
 * its frame (lb_batch_raw), or, when the frame is larger than the server's
 * max payload, consecutive messages holding numbered chunks of it. Every
 * message carries the headers:
 *   Nats-Msg-Id  `<db id>:<batch>` (`<db id>:<batch>:<i>/<n>` for chunk
 *                i of n):
 *                the server drops a message it already holds (a ship that
 *                restarts after publishing but before hearing the ack);
 *   Lb-Batch     the batch id;   Lb-Chunk  `i/n` (1-based);
 *   Lb-Hash      the batch's chain hash (hex);   Lb-Time  its time_ns;
 *   Lb-Origin    the id of the database that shipped it.
 *
 * SHIP. The stream's last message says which batch it ends with (and how
 * many of its chunks). ship checks that its own batch of that id has the
 * same hash (else this database is not the stream's primary: it stops,
 * exit 1), then publishes every later batch, each message with the
 * expected last stream sequence: a second, stale primary shipping to the
 * same stream fails that check on its first publish and stops (exit 1),
 * so the stream never interleaves two histories. With --follow it then
 * waits for new batches (lb_wait). It acknowledges what the stream holds
 * as the database's consumer `ship.STREAM`, so that a prune cannot drop
 * batches not shipped yet.
 *
 * FOLLOW. The follower's own last batch is its position: the stream
 * sequence of the next batch is found by a binary search over the stream
 * (js_GetMsg), then an ephemeral pull consumer delivers from there, acks
 * explicit. Chunks are put together, the frame applied with
 * lb_batch_apply_raw, and its messages acknowledged only after that
 * commit. A duplicate or redelivered batch is a no-op; a damaged or forged
 * frame, a gap or a fork stops the follower (exit 1) with nothing applied.
 * After any error of the connection or the consumer, the subscription is
 * made again from the follower's position: a killed follower, a server
 * restart or a stream leader change all resume the same way.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* cli_err(), exit 1: the stream or the data said no. */
#define data_err(...) ((void)cli_err(__VA_ARGS__), CLI_DATA)

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void hexs(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

/* ---- connection ---------------------------------------------------------- */

typedef struct js_conn {
	natsConnection *nc;
	jsCtx *js;
	char subject[300];
	const char *stream;
} js_conn;

static int nats_fail(natsStatus s, jsErrCode jerr, const char *what)
{
	const char *last = nats_GetLastError(NULL);
	if (jerr)
		return cli_err("%s: %s (JetStream error %d%s%s)", what,
		               natsStatus_GetText(s), (int)jerr,
		               last ? ": " : "", last ? last : "");
	return cli_err("%s: %s%s%s", what, natsStatus_GetText(s),
	               last ? ": " : "", last ? last : "");
}

static int stream_name_ok(const char *s)
{
	if (!*s || strlen(s) > 59) /* ship's consumer: ship.NAME, 64 */
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static int js_connect(const char *url, const char *stream, js_conn *c)
{
	natsOptions *o = NULL;
	natsStatus s;
	memset(c, 0, sizeof *c);
	c->stream = stream;
	snprintf(c->subject, sizeof c->subject, "logbook.%s", stream);
	/* a comma-separated list names the servers of a cluster */
	char *copy = cli_xstrdup(url), *save = NULL;
	const char *servers[16];
	int n = 0;
	for (char *t = strtok_r(copy, ",", &save); t && n < 16;
	     t = strtok_r(NULL, ",", &save))
		servers[n++] = t;
	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = n > 1 ? natsOptions_SetServers(o, servers, n)
		          : natsOptions_SetURL(o, url);
	free(copy);
	if (s != NATS_OK || (s = natsOptions_SetTimeout(o, 5000)) != NATS_OK ||
	    (s = natsOptions_SetMaxReconnect(o, -1)) != NATS_OK ||
	    (s = natsOptions_SetReconnectWait(o, 200)) != NATS_OK) {
		natsOptions_Destroy(o);
		return nats_fail(s, 0, "NATS options");
	}
	s = natsConnection_Connect(&c->nc, o);
	natsOptions_Destroy(o);
	if (s != NATS_OK)
		return nats_fail(s, 0, url);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	if ((s = natsConnection_JetStream(&c->js, c->nc, &jo)) != NATS_OK) {
		natsConnection_Destroy(c->nc);
		c->nc = NULL;
		return nats_fail(s, 0, "JetStream");
	}
	return 0;
}

static void js_close(js_conn *c)
{
	jsCtx_Destroy(c->js);
	if (c->nc) {
		natsConnection_Flush(c->nc);
		natsConnection_Destroy(c->nc);
	}
	memset(c, 0, sizeof *c);
}

/* What a message says of itself. */
typedef struct msg_info {
	uint64_t batch, seq;
	unsigned chunk, nchunks;
	int64_t time_ns;
	char hash[65];
} msg_info;

static int msg_parse(natsMsg *m, msg_info *mi)
{
	const char *v;
	char *end;
	memset(mi, 0, sizeof *mi);
	if (natsMsgHeader_Get(m, "Lb-Batch", &v) != NATS_OK)
		return -1;
	mi->batch = strtoull(v, &end, 10);
	if (*end || mi->batch == 0)
		return -1;
	if (natsMsgHeader_Get(m, "Lb-Chunk", &v) != NATS_OK ||
	    sscanf(v, "%u/%u", &mi->chunk, &mi->nchunks) != 2 ||
	    mi->chunk == 0 || mi->chunk > mi->nchunks)
		return -1;
	if (natsMsgHeader_Get(m, "Lb-Time", &v) == NATS_OK)
		mi->time_ns = strtoll(v, NULL, 10);
	if (natsMsgHeader_Get(m, "Lb-Hash", &v) == NATS_OK)
		snprintf(mi->hash, sizeof mi->hash, "%s", v);
	return 0;
}

/* The stream's state; *found 0 when it does not exist. */
static int stream_state(js_conn *c, jsStreamState *st, int *found)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, c->js, c->stream, NULL, &jerr);
	memset(st, 0, sizeof *st);
	*found = 0;
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
		return 0;
	if (s != NATS_OK)
		return nats_fail(s, jerr, c->stream);
	*found = 1;
	st->Msgs = si->State.Msgs;
	st->FirstSeq = si->State.FirstSeq;
	st->LastSeq = si->State.LastSeq;
	st->LastTime = si->State.LastTime;
	jsStreamInfo_Destroy(si);
	return 0;
}

/* The message at seq: 1 and *mi filled, 0 if it is gone (or not one of
 * ours), < 0 (exit code, printed) on error. */
static int msg_at(js_conn *c, uint64_t seq, msg_info *mi, natsMsg **keep)
{
	natsMsg *m = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetMsg(&m, c->js, c->stream, seq, NULL, &jerr);
	if (keep)
		*keep = NULL;
	if (s == NATS_NOT_FOUND)
		return 0;
	if (s != NATS_OK)
		return -nats_fail(s, jerr, "reading the stream");
	int ok = msg_parse(m, mi) == 0;
	mi->seq = seq;
	if (keep && ok)
		*keep = m;
	else
		natsMsg_Destroy(m);
	return ok;
}

/* ---- ship ---------------------------------------------------------------- */

/* Create the stream: 0 (also when it exists), -1 when the refusal is
 * transient (a cluster still forming, a server away), else the exit code
 * of an error it printed. */
static int create_stream(js_conn *c, int64_t replicas, int64_t max_msgs,
                         int64_t max_bytes)
{
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	const char *subj[1] = {c->subject};
	jsStreamConfig_Init(&sc);
	sc.Name = c->stream;
	sc.Subjects = subj;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = replicas;
	sc.DenyDelete = true;
	sc.DenyPurge = true;
	if (max_msgs > 0)
		sc.MaxMsgs = max_msgs;
	if (max_bytes > 0)
		sc.MaxBytes = max_bytes;
	natsStatus s = js_AddStream(&si, c->js, &sc, NULL, &jerr);
	jsStreamInfo_Destroy(si);
	if (s == NATS_OK || jerr == JSStreamNameExistErr)
		return 0;
	/* a cluster still forming (its meta leader does not know enough
	 * peers yet, or has not been elected), or a server away */
	if (jerr == JSClusterNoPeersErr || jerr == JSClusterNotAvailErr ||
	    (!jerr && (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS ||
	               s == NATS_CONNECTION_CLOSED)))
		return -1;
	return nats_fail(s, jerr, "creating the stream");
}

/* The stream, created if missing. A transient refusal of the creation
 * (see create_stream) is retried every 200 ms: forever with follow, for
 * about 30 s without, the reason printed once. A failure to read the
 * stream's state is final, as before any creation. */
static int ensure_stream(js_conn *c, int64_t replicas, int64_t max_msgs,
                         int64_t max_bytes, int follow)
{
	for (int tries = 0;; tries++) {
		jsStreamState st;
		int found, rc = stream_state(c, &st, &found);
		if (rc != 0 || found)
			return rc;
		if ((rc = create_stream(c, replicas, max_msgs, max_bytes)) !=
		    -1)
			return rc;
		if (stop_flag)
			return 0;
		if (!follow && tries >= 150)
			return cli_err("giving up: the stream could not be "
			               "created (see the reason above)");
		if (tries == 0) {
			const char *last = nats_GetLastError(NULL);
			fprintf(stderr,
			        "logbook: ship: creating stream %s: %s; "
			        "retrying\n",
			        c->stream, last ? last : "no answer");
		}
		sleep_ms(200);
	}
}

typedef struct shipper {
	js_conn c;
	lb_db *db;
	char idhex[2 * LB_ID_SIZE + 1];
	uint64_t seq;     /* the stream's last sequence as this ship knows */
	uint64_t shipped; /* the last batch the stream holds whole */
	size_t chunk_max;
	unsigned resume_n; /* the chunk count of a batch cut short */
	uint64_t published;
} shipper;

/* Publish chunks from..n of batch id. */
static int ship_batch(shipper *sp, uint64_t id, unsigned from)
{
	void *buf;
	size_t len;
	lb_batch_info bi;
	char hash[65], num[32], tns[32], chunk[32], msgid[128];
	int rc = lb_batch_raw(sp->db, id, &buf, &len);
	if (rc == LB_EPRUNED)
		return cli_lberr(rc,
		                 "batch %" PRIu64
		                 " was pruned before it was shipped: ship a "
		                 "checkpoint to the followers instead",
		                 id);
	if (rc < 0)
		return cli_lberr(rc, "reading batch %" PRIu64, id);
	if ((rc = lb_batch_info_get(sp->db, id, &bi)) < 0) {
		free(buf);
		return cli_lberr(rc, "reading batch %" PRIu64, id);
	}
	hexs(bi.hash, 32, hash);
	snprintf(num, sizeof num, "%" PRIu64, id);
	snprintf(tns, sizeof tns, "%" PRId64, bi.time_ns);
	unsigned n = (unsigned)((len + sp->chunk_max - 1) / sp->chunk_max);
	/* the stream holds chunks 1..from-1 of a cut into another count:
	 * publish the whole batch again (a follower starts over at a chunk
	 * 1) */
	if (from > 1 && n != sp->resume_n)
		from = 1;
	for (unsigned i = from; i <= n; i++) {
		size_t off = (size_t)(i - 1) * sp->chunk_max;
		size_t cl =
		        len - off < sp->chunk_max ? len - off : sp->chunk_max;
		natsMsg *m = NULL;
		jsPubAck *pa = NULL;
		jsPubOptions po;
		jsErrCode jerr = 0;
		natsStatus s;
		snprintf(chunk, sizeof chunk, "%u/%u", i, n);
		/* chunks are named with their count, so that a batch cut
		 * differently (another --chunk-size) is not taken for
		 * duplicates of the first cut's */
		if (n == 1)
			snprintf(msgid, sizeof msgid, "%s:%" PRIu64, sp->idhex,
			         id);
		else
			snprintf(msgid, sizeof msgid, "%s:%" PRIu64 ":%u/%u",
			         sp->idhex, id, i, n);
		if ((s = natsMsg_Create(&m, sp->c.subject, NULL,
		                        (const char *)buf + off, (int)cl)) !=
		            NATS_OK ||
		    (s = natsMsgHeader_Set(m, "Lb-Batch", num)) != NATS_OK ||
		    (s = natsMsgHeader_Set(m, "Lb-Chunk", chunk)) != NATS_OK ||
		    (s = natsMsgHeader_Set(m, "Lb-Hash", hash)) != NATS_OK ||
		    (s = natsMsgHeader_Set(m, "Lb-Time", tns)) != NATS_OK ||
		    (s = natsMsgHeader_Set(m, "Lb-Origin", sp->idhex)) !=
		            NATS_OK) {
			natsMsg_Destroy(m);
			free(buf);
			return nats_fail(s, 0, "making a message");
		}
		jsPubOptions_Init(&po);
		po.MsgId = msgid;
		/* ExpectLastSeq 0 means "no expectation" to the server: on
		 * an empty stream, expect no message on the (only) subject */
		if (sp->seq)
			po.ExpectLastSeq = sp->seq;
		else
			po.ExpectNoMessage = true;
		po.MaxWait = 10000;
		s = js_PublishMsg(&pa, sp->c.js, m, &po, &jerr);
		natsMsg_Destroy(m);
		if (s != NATS_OK) {
			free(buf);
			if (jerr == JSStreamWrongLastSequenceErr ||
			    (sp->seq == 0 && jerr))
				return data_err(
				        "stream %s moved on meanwhile "
				        "(expected last sequence %" PRIu64
				        "): another primary ships to it; "
				        "this one stops (fenced)",
				        sp->c.stream, sp->seq);
			nats_fail(s, jerr, "publishing");
			return -1; /* transient: resume from the stream */
		}
		sp->seq = pa->Sequence;
		jsPubAck_Destroy(pa);
		sp->published++;
	}
	free(buf);
	sp->shipped = id;
	return 0;
}

/* Register as the database's consumer `ship.STREAM` at the last batch
 * the stream holds whole, so that lb_prune keeps what is not shipped yet.
 * A consumer that acknowledged more already (a stream made anew) keeps its
 * position; one that a prune marked lost is reported, not fatal. */
static void ship_ack(shipper *sp)
{
	char name[80];
	snprintf(name, sizeof name, "ship.%s", sp->c.stream);
	int rc = lb_consumer_ack(sp->db, name, sp->shipped);
	if (rc == LB_EPRUNED)
		fprintf(stderr,
		        "logbook: ship: consumer %s is lost (a prune dropped "
		        "batches it had not shipped): drop it with `logbook "
		        "consumers` and ship a checkpoint to the followers\n",
		        name);
	else if (rc < 0 && rc != LB_EINVAL)
		fprintf(stderr, "logbook: ship: consumer %s: %s (%s)\n", name,
		        lb_strerror(rc), lb_errmsg());
}

/* Where the stream ends, and whether it is this database's history. */
static int ship_resume(shipper *sp, unsigned *next_chunk)
{
	jsStreamState st;
	int found, rc;
	msg_info mi;
	*next_chunk = 1;
	if ((rc = stream_state(&sp->c, &st, &found)) != 0)
		return -1; /* transient: the server or the stream's leader */
	if (!found)
		return cli_err("stream %s does not exist", sp->c.stream);
	sp->seq = st.LastSeq;
	sp->shipped = 0;
	if (st.LastSeq == 0)
		return 0;
	rc = msg_at(&sp->c, st.LastSeq, &mi, NULL);
	if (rc < 0)
		return -1;
	if (rc == 0)
		return cli_err("stream %s: its last message (sequence %" PRIu64
		               ") is not a logbook batch",
		               sp->c.stream, st.LastSeq);
	lb_batch_info bi;
	char hash[65];
	uint64_t last = 0;
	if ((rc = lb_last_batch(sp->db, &last)) < 0)
		return cli_lberr(rc, "reading the last batch");
	if (mi.batch > last)
		return data_err("stream %s holds batch %" PRIu64
		                ", past this database's last (%" PRIu64
		                "): it is not this stream's primary (fenced)",
		                sp->c.stream, mi.batch, last);
	if ((rc = lb_batch_info_get(sp->db, mi.batch, &bi)) < 0)
		return cli_lberr(rc, "reading batch %" PRIu64, mi.batch);
	hexs(bi.hash, 32, hash);
	if (strcmp(hash, mi.hash) != 0)
		return data_err("stream %s holds another history at batch "
		                "%" PRIu64 ": this database is not its "
		                "primary (fenced)",
		                sp->c.stream, mi.batch);
	if (mi.chunk < mi.nchunks) {
		sp->shipped = mi.batch - 1;
		*next_chunk = mi.chunk + 1;
		sp->resume_n = mi.nchunks;
	} else {
		sp->shipped = mi.batch;
	}
	return 0;
}

/* Ship every batch not in the stream yet, then (follow) each new commit
 * until a signal. */
static int ship_loop(shipper *sp, int follow)
{
	unsigned from = 1;
	int rc = 0, resume = 1, retries = 0;
	time_t acked_at = 0;
	while (rc == 0 && !stop_flag) {
		uint64_t last = 0;
		if (resume && (rc = ship_resume(sp, &from)) > 0)
			break;
		if (rc == 0)
			resume = 0;
		if (rc == 0 && (rc = lb_last_batch(sp->db, &last)) < 0) {
			rc = cli_lberr(rc, "reading the last batch");
			break;
		}
		for (uint64_t id = sp->shipped + 1;
		     rc == 0 && !resume && id <= last && !stop_flag; id++) {
			rc = ship_batch(sp, id, from);
			from = 1;
		}
		if (rc == -1) {
			/* the server went away or the stream's leader
			 * changed: find where the stream ends, again */
			if (!follow && ++retries > 150) {
				rc = cli_err("giving up: the stream does not "
				             "answer");
				break;
			}
			rc = 0;
			resume = 1;
			sleep_ms(200);
			continue;
		}
		retries = 0;
		if (rc)
			break;
		/* an acknowledgement is a write (and an fsync): at most
		 * once a second while following, and once at the end */
		time_t tnow = time(NULL);
		if (!follow || tnow != acked_at) {
			ship_ack(sp);
			acked_at = tnow;
		}
		if (!follow)
			break;
		/* --follow: wait for the next commit (lb_wait), waking up
		 * now and then to see a signal */
		uint64_t now = last;
		while (!stop_flag && now <= last) {
			int w = lb_wait(sp->db, last, 200, &now);
			if (w < 0 && w != LB_EBUSY) {
				rc = cli_lberr(w, "waiting for a batch");
				break;
			}
		}
	}
	return rc;
}

/* --nats URL and --stream NAME, both required. */
static int stream_opts(const char *nats, const char *stream)
{
	if (!nats || !stream)
		return cli_usage("--nats URL and --stream NAME are required");
	if (!stream_name_ok(stream))
		return cli_usage("--stream: '%s' is not a stream name "
		                 "([A-Za-z0-9_-]+)",
		                 stream);
	return 0;
}

int cmd_ship(int argc, char **argv)
{
	cli_opt o[] = {{"nats", 1, NULL},      {"stream", 1, NULL},
	               {"follow", 0, NULL},    {"replicas", 1, NULL},
	               {"max-msgs", 1, NULL},  {"max-bytes", 1, NULL},
	               {"chunk-size", 1, NULL}};
	const char *pos[1];
	size_t np;
	uint64_t replicas = 1, max_msgs = 0, max_bytes = 0, chunk = 0;
	shipper sp;
	int rc;
	memset(&sp, 0, sizeof sp);
	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	if ((rc = stream_opts(CLI_OPT(o, "nats"), CLI_OPT(o, "stream"))))
		return rc;
	if ((CLI_OPT(o, "replicas") &&
	     (rc = cli_u64("--replicas", CLI_OPT(o, "replicas"), 1, 5,
	                   &replicas))) ||
	    (CLI_OPT(o, "max-msgs") &&
	     (rc = cli_u64("--max-msgs", CLI_OPT(o, "max-msgs"), 1, INT64_MAX,
	                   &max_msgs))) ||
	    (CLI_OPT(o, "max-bytes") &&
	     (rc = cli_u64("--max-bytes", CLI_OPT(o, "max-bytes"), 1, INT64_MAX,
	                   &max_bytes))) ||
	    (CLI_OPT(o, "chunk-size") &&
	     (rc = cli_u64("--chunk-size", CLI_OPT(o, "chunk-size"), 1024,
	                   64u << 20, &chunk))))
		return rc;
	catch_signals();
	if ((rc = cli_open(pos[0], 0, 0, &sp.db)))
		return rc;
	lb_identity ident;
	if ((rc = lb_identity_get(sp.db, &ident)) < 0) {
		lb_close(sp.db);
		return cli_lberr(rc, "reading the database's id");
	}
	hexs(ident.id, LB_ID_SIZE, sp.idhex);
	if ((rc = js_connect(CLI_OPT(o, "nats"), CLI_OPT(o, "stream"),
	                     &sp.c))) {
		lb_close(sp.db);
		return rc;
	}
	rc = ensure_stream(&sp.c, (int64_t)replicas, (int64_t)max_msgs,
	                   (int64_t)max_bytes, CLI_OPT(o, "follow") != NULL);
	/* leave room for the headers in the server's max payload */
	int64_t maxp = natsConnection_GetMaxPayload(sp.c.nc);
	sp.chunk_max = maxp > 8192 ? (size_t)maxp - 4096 : 4096;
	if (chunk && chunk < sp.chunk_max)
		sp.chunk_max = chunk;
	if (rc == 0)
		rc = ship_loop(&sp, CLI_OPT(o, "follow") != NULL);
	if (rc == 0 && CLI_OPT(o, "follow"))
		ship_ack(&sp); /* stopped by a signal */
	if (rc == 0) {
		if (cli_json)
			printf("{\"stream\":\"%s\",\"shipped\":%" PRIu64
			       ",\"messages\":%" PRIu64 ",\"sequence\":%" PRIu64
			       "}\n",
			       sp.c.stream, sp.shipped, sp.published, sp.seq);
		else
			printf("shipped up to batch %" PRIu64 " to stream %s "
			       "(%" PRIu64 " messages published, last "
			       "sequence %" PRIu64 ")\n",
			       sp.shipped, sp.c.stream, sp.published, sp.seq);
	}
	js_close(&sp.c);
	lb_close(sp.db);
	return rc;
}

/* ---- follow -------------------------------------------------------------- */

typedef struct follower {
	js_conn c;
	lb_db *db;
	uint64_t last;
	uint64_t applied;
	uint64_t redelivered; /* messages the server delivered again */
	uint64_t duplicates;  /* messages of batches held already */
	int64_t ack_wait_ms;  /* the consumer's AckWait */
} follower;

/* The stream sequence of the first message of batch want: 1 and *seq, 0
 * if the stream holds no message of it or later (caught up), or an exit
 * code (negated). Sets *gone when the stream's first batch is past want
 * (its earlier messages were removed by the stream's limits). */
static int find_batch(js_conn *c, uint64_t want, uint64_t *seq, int *gone)
{
	jsStreamState st;
	int found, rc;
	msg_info mi;
	*gone = 0;
	if ((rc = stream_state(c, &st, &found)) != 0)
		return -rc;
	if (!found)
		return -cli_err("stream %s does not exist (ship to it first)",
		                c->stream);
	if (st.LastSeq == 0 || st.Msgs == 0)
		return 0;
	uint64_t lo = st.FirstSeq, hi = st.LastSeq;
	/* the first message whose batch >= want (messages are in batch
	 * order); holes left by limits are skipped forward */
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2, s = mid;
		while ((rc = msg_at(c, s, &mi, NULL)) == 0 && s < hi)
			s++;
		if (rc < 0)
			return rc;
		if (rc == 0 || mi.batch >= want)
			hi = mid;
		else
			lo = s + 1;
	}
	uint64_t s = lo;
	while ((rc = msg_at(c, s, &mi, NULL)) == 0 && s < st.LastSeq)
		s++;
	if (rc < 0)
		return rc;
	if (rc == 0 || mi.batch < want)
		return 0;
	if (mi.batch > want || mi.chunk != 1) {
		*gone = 1;
		return 0;
	}
	*seq = s;
	return 1;
}

static int apply_frame(follower *f, const void *buf, size_t len, uint64_t bid)
{
	uint64_t id;
	int rc = lb_batch_apply_raw(f->db, buf, len, &id);
	if (rc < 0)
		return cli_lberr(rc,
		                 "refusing batch %" PRIu64 " from stream %s",
		                 bid, f->c.stream);
	if (id > f->last) {
		f->last = id;
		f->applied++;
	}
	return 0;
}

/* A batch being put together from its messages (chunks). */
typedef struct assembly {
	sbuf frame;             /* the chunks so far */
	uint64_t cur;           /* its batch */
	unsigned have;          /* chunks so far */
	unsigned curn;          /* chunks in all */
	natsMsg *pending[1024]; /* its chunks, acknowledged once committed */
	int npending;
} assembly;

/* Apply what the messages of list complete; 1 (and *rc) to stop the
 * subscription, 0 to fetch more. */
static int follow_msgs(follower *f, assembly *a, natsMsgList *list, int *rc)
{
	int bad = 0;

	for (int i = 0; i < list->Count && !bad; i++) {
		natsMsg *m = list->Msgs[i];
		msg_info mi;
		if (msg_parse(m, &mi) < 0) {
			*rc = data_err("stream %s: a message that is not "
			               "a logbook batch",
			               f->c.stream);
			bad = 1;
			break;
		}
		jsMsgMetaData *md = NULL;
		if (natsMsg_GetMetaData(&md, m) == NATS_OK &&
		    md->NumDelivered > 1)
			f->redelivered++;
		jsMsgMetaData_Destroy(md);
		if (mi.batch <= f->last) { /* duplicate, redelivery */
			f->duplicates++;
			natsMsg_Ack(m, NULL);
			continue;
		}
		if (mi.batch != f->last + 1) {
			*rc = data_err("stream %s: gap: batch %" PRIu64
			               " follows batch %" PRIu64,
			               f->c.stream, mi.batch, f->last);
			bad = 1;
			break;
		}
		if (mi.chunk == 1) {
			a->frame.len = 0;
			a->cur = mi.batch;
			a->curn = mi.nchunks;
			a->have = 0;
			for (int k = 0; k < a->npending; k++)
				natsMsg_Destroy(a->pending[k]);
			a->npending = 0;
		}
		if (a->cur != mi.batch || mi.nchunks != a->curn ||
		    mi.chunk != a->have + 1) {
			if (a->cur == mi.batch && mi.nchunks != a->curn)
				continue;        /* the rest of a cut that was
				                    published again whole */
			if (mi.chunk <= a->have) /* redelivered chunk */
				continue;
			bad = 1; /* out of order: subscribe again */
			*rc = -1;
			break;
		}
		sb_put(&a->frame, natsMsg_GetData(m),
		       (size_t)natsMsg_GetDataLength(m));
		a->have++;
		if (mi.chunk < mi.nchunks) {
			if (a->npending < 1024) {
				a->pending[a->npending++] = m;
				list->Msgs[i] = NULL;
			}
			continue;
		}
		if ((*rc = apply_frame(f, a->frame.p, a->frame.len,
		                       mi.batch))) {
			*rc = *rc == CLI_FAIL ? CLI_DATA : *rc;
			bad = 1;
			break;
		}
		/* committed: now acknowledge */
		for (int k = 0; k < a->npending; k++) {
			natsMsg_Ack(a->pending[k], NULL);
			natsMsg_Destroy(a->pending[k]);
		}
		a->npending = 0;
		natsMsg_Ack(m, NULL);
		a->frame.len = 0;
		a->have = 0;
		a->cur = 0;
		*rc = -1;
	}
	return bad;
}

/* One subscription's life: from the follower's position until caught up
 * (without --follow), an error of the connection (1: subscribe again) or
 * a refusal (an exit code > 1... any other value). */
static int follow_round(follower *f, int forever, int *caught_up)
{
	uint64_t seq;
	int gone, rc;
	*caught_up = 0;
	rc = find_batch(&f->c, f->last + 1, &seq, &gone);
	if (rc < 0)
		return -1; /* the server or the stream's leader: again */
	if (gone)
		return data_err("stream %s no longer holds batch %" PRIu64
		                " (its limits removed it): start the follower "
		                "from a checkpoint copy (--from-checkpoint)",
		                f->c.stream, f->last + 1);
	if (rc == 0) {
		if (!forever) {
			*caught_up = 1;
			return 0;
		}
		sleep_ms(50);
		return -1; /* look again */
	}
	jsSubOptions so;
	natsSubscription *sub = NULL;
	jsErrCode jerr = 0;
	jsSubOptions_Init(&so);
	so.Stream = f->c.stream;
	so.Config.DeliverPolicy = js_DeliverByStartSequence;
	so.Config.OptStartSeq = seq;
	so.Config.AckPolicy = js_AckExplicit;
	/* not acknowledged within it: delivered again */
	so.Config.AckWait = f->ack_wait_ms * 1000000LL;
	so.Config.InactiveThreshold = 30000000000LL;
	natsStatus s = js_PullSubscribe(&sub, f->c.js, f->c.subject, NULL, NULL,
	                                &so, &jerr);
	if (s != NATS_OK) {
		nats_fail(s, jerr, "subscribing");
		return -1;
	}
	assembly a;
	int idle = 0;
	memset(&a, 0, sizeof a);
	sb_init(&a.frame);
	rc = -1;
	while (!stop_flag) {
		natsMsgList list = {0};
		s = natsSubscription_Fetch(&list, sub, 64, 1000, &jerr);
		if (s == NATS_TIMEOUT) {
			/* Nothing came for a second: caught up (the stream
			 * holds no later batch), or the consumer is gone
			 * (its server died: the stream's leader changed) and
			 * must be made again. */
			uint64_t nseq;
			int g, r2 = find_batch(&f->c, f->last + 1, &nseq, &g);
			if (r2 == 0 && !g) {
				idle = 0;
				if (!forever) {
					*caught_up = 1;
					rc = 0;
					break;
				}
				continue;
			}
			if (r2 < 0 || ++idle >= 3) {
				rc = -1; /* subscribe again */
				break;
			}
			continue;
		}
		if (s != NATS_OK) {
			rc = -1; /* subscribe again */
			break;
		}
		idle = 0;
		int bad = follow_msgs(f, &a, &list, &rc);
		natsMsgList_Destroy(&list);
		if (bad)
			break;
	}
	for (int k = 0; k < a.npending; k++)
		natsMsg_Destroy(a.pending[k]);
	sb_free(&a.frame);
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	if (stop_flag && rc < 0)
		rc = 0;
	return rc;
}

/* Copy the checkpoint's data.mdb into a new directory dest. */
static int copy_checkpoint(const char *from, const char *dest)
{
	char *src = NULL, *dst = NULL;
	int in = -1, out = -1, rc = 0;
	if (mkdir(dest, 0755) != 0)
		return cli_err("%s: %s", dest, strerror(errno));
	if (asprintf(&src, "%s/data.mdb", from) < 0 ||
	    asprintf(&dst, "%s/data.mdb", dest) < 0) {
		free(src);
		return cli_err("out of memory");
	}
	if ((in = open(src, O_RDONLY)) < 0) {
		rc = cli_err("%s: %s", src, strerror(errno));
	} else if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0) {
		rc = cli_err("%s: %s", dst, strerror(errno));
	} else {
		char buf[1 << 16];
		ssize_t n;
		while ((n = read(in, buf, sizeof buf)) > 0)
			if (write(out, buf, (size_t)n) != n) {
				rc = cli_err("%s: %s", dst, strerror(errno));
				break;
			}
		if (n < 0)
			rc = cli_err("%s: %s", src, strerror(errno));
		if (rc == 0 && fsync(out) != 0)
			rc = cli_err("%s: %s", dst, strerror(errno));
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (rc) {
		unlink(dst);
		rmdir(dest);
	}
	free(src);
	free(dst);
	return rc;
}

static int dir_exists(const char *d)
{
	struct stat st;
	return stat(d, &st) == 0;
}

/* Apply everything the stream holds (forever: and what comes). */
static int follow_run(follower *f, int forever)
{
	int rc = 0, caught = 0, fails = 0;
	while (!stop_flag && !caught) {
		uint64_t before = f->last;
		rc = follow_round(f, forever, &caught);
		if (rc > 0)
			break;
		if (rc < 0) {
			/* without --follow, give up after about 30 s
			 * without progress */
			fails = f->last > before ? 0 : fails + 1;
			if (!forever && fails > 300)
				return cli_err("giving up: stream %s does not "
				               "answer",
				               f->c.stream);
			rc = 0;
			sleep_ms(100);
		}
	}
	return rc;
}

static int open_follower(const char *dest, const char *ckpt, int nosync,
                         lb_db **db)
{
	int rc;
	if (ckpt && !dir_exists(dest) && (rc = copy_checkpoint(ckpt, dest)))
		return rc;
	lb_options o;
	lb_options_init(&o);
	o.flags = LB_CREATE | (nosync ? LB_NOSYNC : 0);
	if ((rc = lb_open(dest, &o, db)) < 0)
		return cli_lberr(rc, "cannot open %s", dest);
	return 0;
}

int cmd_follow(int argc, char **argv)
{
	cli_opt o[] = {{"nats", 1, NULL},   {"stream", 1, NULL},
	               {"follow", 0, NULL}, {"from-checkpoint", 1, NULL},
	               {"nosync", 0, NULL}, {"ack-wait", 1, NULL}};
	const char *pos[1];
	size_t np;
	follower f;
	int rc;
	memset(&f, 0, sizeof f);
	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	if ((rc = stream_opts(CLI_OPT(o, "nats"), CLI_OPT(o, "stream"))))
		return rc;
	uint64_t aw = 5000;
	if (CLI_OPT(o, "ack-wait") &&
	    (rc = cli_u64("--ack-wait", CLI_OPT(o, "ack-wait"), 100, 3600000,
	                  &aw)))
		return rc;
	f.ack_wait_ms = (int64_t)aw;
	catch_signals();
	if ((rc = open_follower(pos[0], CLI_OPT(o, "from-checkpoint"),
	                        CLI_OPT(o, "nosync") != NULL, &f.db)))
		return rc;
	if ((rc = lb_last_batch(f.db, &f.last)) < 0) {
		rc = cli_lberr(rc, "reading the last batch");
		lb_close(f.db);
		return rc;
	}
	if ((rc = js_connect(CLI_OPT(o, "nats"), CLI_OPT(o, "stream"), &f.c))) {
		lb_close(f.db);
		return rc;
	}
	rc = follow_run(&f, CLI_OPT(o, "follow") != NULL);
	if (rc == 0) {
		if (cli_json)
			printf("{\"applied\":%" PRIu64 ",\"last\":%" PRIu64
			       ",\"duplicates\":%" PRIu64
			       ",\"redelivered\":%" PRIu64 "}\n",
			       f.applied, f.last, f.duplicates, f.redelivered);
		else
			printf("applied %" PRIu64 " batches; at batch %" PRIu64
			       " (%" PRIu64 " duplicate and %" PRIu64
			       " redelivered messages)\n",
			       f.applied, f.last, f.duplicates, f.redelivered);
	}
	js_close(&f.c);
	lb_close(f.db);
	return rc;
}

/* ---- replica status, promote --------------------------------------------- */

static int replica_status(int argc, char **argv)
{
	cli_opt o[] = {{"nats", 1, NULL}, {"stream", 1, NULL}};
	const char *pos[1];
	size_t np;
	js_conn c;
	lb_db *db;
	lb_identity ident;
	lb_batch_info bi;
	uint64_t applied = 0, slast = 0;
	int64_t atime = 0, stime = 0;
	int rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	if (!CLI_OPT(o, "nats") || !CLI_OPT(o, "stream"))
		return cli_usage("--nats URL and --stream NAME are required");
	if (!stream_name_ok(CLI_OPT(o, "stream")))
		return cli_usage("--stream: '%s' is not a stream name",
		                 CLI_OPT(o, "stream"));
	if ((rc = cli_open(pos[0], 1, 0, &db)))
		return rc;
	memset(&ident, 0, sizeof ident);
	if ((rc = lb_last_batch(db, &applied)) < 0 ||
	    (applied && (rc = lb_batch_info_get(db, applied, &bi)) < 0)) {
		rc = cli_lberr(rc, "reading the last batch");
		lb_close(db);
		return rc;
	}
	if (applied)
		atime = bi.time_ns;
	(void)lb_identity_get(db, &ident);
	lb_close(db);
	if ((rc = js_connect(CLI_OPT(o, "nats"), CLI_OPT(o, "stream"), &c)))
		return rc;
	jsStreamState st;
	int found;
	msg_info mi;
	if ((rc = stream_state(&c, &st, &found)) == 0 && found && st.LastSeq) {
		int r = msg_at(&c, st.LastSeq, &mi, NULL);
		if (r < 0)
			rc = -r;
		else if (r > 0) {
			/* a batch whose chunks are not all there yet
			 * counts from the one before */
			slast = mi.chunk == mi.nchunks ? mi.batch
			                               : mi.batch - 1;
			stime = mi.time_ns;
		}
	}
	js_close(&c);
	if (rc)
		return rc;
	uint64_t lag = slast > applied ? slast - applied : 0;
	double lag_s =
	        lag && stime > atime ? (double)(stime - atime) / 1e9 : 0.0;
	char ph[2 * LB_ID_SIZE + 1] = "";
	if (ident.follows)
		hexs(ident.primary, LB_ID_SIZE, ph);
	if (cli_json) {
		printf("{\"applied\":%" PRIu64 ",\"stream_last\":%" PRIu64
		       ",\"lag_batches\":%" PRIu64
		       ",\"lag_seconds\":%.3f,\"follows\":%s%s%s}\n",
		       applied, slast, lag, lag_s, ident.follows ? "\"" : "",
		       ident.follows ? ph : "null", ident.follows ? "\"" : "");
	} else {
		printf("applied batch %" PRIu64 "; stream's last batch %" PRIu64
		       "; lag %" PRIu64 " batches, %.3f s\n",
		       applied, slast, lag, lag_s);
		if (ident.follows)
			printf("follows %s\n", ph);
		else
			printf("not a follower (a primary)\n");
	}
	return 0;
}

int cmd_replica(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "status") != 0) {
		if (argc >= 2 &&
		    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			if (cli_help)
				cli_help("replica", stdout);
			return CLI_HELP;
		}
		return cli_usage("expected 'replica status DEST --nats URL "
		                 "--stream NAME'");
	}
	return replica_status(argc - 1, argv + 1);
}

int cmd_promote(int argc, char **argv)
{
	cli_opt o[] = {{"nats", 1, NULL}, {"stream", 1, NULL}};
	const char *pos[1];
	size_t np;
	follower f;
	int rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	memset(&f, 0, sizeof f);
	f.ack_wait_ms = 5000;
	if (rc)
		return rc;
	if (!CLI_OPT(o, "nats") != !CLI_OPT(o, "stream"))
		return cli_usage("--nats URL and --stream NAME go together");
	if (CLI_OPT(o, "stream") && !stream_name_ok(CLI_OPT(o, "stream")))
		return cli_usage("--stream: '%s' is not a stream name",
		                 CLI_OPT(o, "stream"));
	catch_signals();
	if ((rc = cli_open(pos[0], 0, 0, &f.db)))
		return rc;
	if ((rc = lb_last_batch(f.db, &f.last)) < 0) {
		rc = cli_lberr(rc, "reading the last batch");
		goto out;
	}
	if (CLI_OPT(o, "nats")) {
		/* apply everything the stream holds first */
		if ((rc = js_connect(CLI_OPT(o, "nats"), CLI_OPT(o, "stream"),
		                     &f.c)))
			goto out;
		rc = follow_run(&f, 0);
		js_close(&f.c);
		if (rc)
			goto out;
	}
	if ((rc = lb_promote(f.db)) < 0) {
		rc = cli_lberr(rc, "cannot promote %s", pos[0]);
		goto out;
	}
	if (cli_json)
		printf("{\"promoted\":true,\"last\":%" PRIu64 "}\n", f.last);
	else
		printf("promoted: %s accepts its own batches (at batch %" PRIu64
		       ")\n",
		       pos[0], f.last);
out:
	lb_close(f.db);
	return rc;
}
