/* SPDX-License-Identifier: MIT */
/*
 * workload.c: the standard workloads W1 and W2.
 *
 * W1: records in batches; key "h%015llu" (16 bytes); the value a msgpack map
 * of six fields like a hearing (title, date, committee, chamber, congress,
 * url) of value_size +- 25 bytes (200..250 by default); in each batch
 * update_pct percent of the records (evenly spread: record j is an update
 * when floor((j+1)p/100) > floor(jp/100)) update a uniformly random key
 * inserted by an EARLIER batch, the rest insert new keys; the first batch
 * has no earlier keys and only inserts. One splitmix64 stream seeded with
 * --seed drives every choice, in record order, so a given configuration
 * always yields the same bytes.
 *
 * W2 (--keys random) is W1 with the key of the i-th insert scattered over
 * [0, 2^40) by a bijection (odd multiplies and xor-shifts modulo 2^40), so
 * inserts land all over the B-tree instead of at its right edge.
 *
 * The generator streams batch by batch (the RSS child commits while it
 * generates, so the workload never counts in its memory); bk_workload_make
 * runs the same generator once and keeps every record, and those records
 * are what every system is fed.
 */
#include "bench.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define W2_BITS 40
#define W2_MASK ((1ull << W2_BITS) - 1)

void bk_key(const bk_cfg *cfg, uint64_t kidx, char out[BK_KEY_LEN])
{
	uint64_t x = kidx;
	if (cfg->keys_random) {
		/* Each step is a bijection on [0, 2^40): multiplication by
		 * an odd constant and x ^= x >> s both are. */
		x = (x * 0x9E3779B97F4A7C15ull) & W2_MASK;
		x ^= x >> 17;
		x = (x * 0xC2B2AE3D27D4EB4Full) & W2_MASK;
		x ^= x >> 21;
		x = (x * 0x165667B19E3779F9ull) & W2_MASK;
	}
	bk_fmt_key(x, out);
}

static const char *const words[] = {
        "oversight", "of",        "the",         "federal",  "budget",
        "review",    "energy",    "security",    "health",   "care",
        "access",    "rural",     "communities", "water",    "resources",
        "defense",   "programs",  "and",         "policy",   "for",
        "veterans",  "benefits",  "nomination",  "hearing",  "on",
        "trade",     "agreement", "small",       "business", "innovation",
        "cyber",     "threats",   "to",          "critical", "infrastructure",
        "education", "funding",   "fiscal",      "year",     "authorization",
        "housing",   "markets",   "transport",   "safety",   "climate",
        "research",  "drug",      "pricing",     "tax",      "reform"};
#define NWORDS (sizeof words / sizeof words[0])

static const char *const committees[] = {
        "Committee on Appropriations",
        "Committee on Armed Services",
        "Committee on Energy and Commerce",
        "Committee on Finance",
        "Committee on the Judiciary",
        "Committee on Foreign Affairs",
        "Committee on Homeland Security",
        "Committee on Veterans' Affairs",
        "Committee on Ways and Means",
        "Committee on Agriculture",
        "Committee on Small Business",
        "Committee on Oversight and Accountability",
        "Committee on Health, Education, Labor, and Pensions",
        "Committee on Banking, Housing, and Urban Affairs",
        "Committee on Science, Space, and Technology",
        "Committee on Natural Resources"};
#define NCOMMITTEES (sizeof committees / sizeof committees[0])

static const char *const chambers[] = {"House", "Senate", "Joint"};

/* Packer output: append to the generator's arena. */
static int arena_write(void *data, const char *buf, size_t len)
{
	bk_gen *g = data;
	if (g->arena_len + len > g->arena_cap) {
		size_t cap = g->arena_cap ? g->arena_cap : 1 << 16;
		while (cap < g->arena_len + len)
			cap *= 2;
		g->arena = bk_xrealloc(g->arena, cap);
		g->arena_cap = cap;
	}
	memcpy(g->arena + g->arena_len, buf, len);
	g->arena_len += len;
	return 0;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n)
{
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void pack_hearing(bk_gen *g, const char *title, size_t tlen,
                         const char *date, const char *committee,
                         const char *chamber, unsigned congress,
                         const char *url)
{
	msgpack_packer *pk = g->packer;
	msgpack_pack_map(pk, 6);
	pack_str(pk, "title", 5);
	pack_str(pk, title, tlen);
	pack_str(pk, "date", 4);
	pack_str(pk, date, strlen(date));
	pack_str(pk, "committee", 9);
	pack_str(pk, committee, strlen(committee));
	pack_str(pk, "chamber", 7);
	pack_str(pk, chamber, strlen(chamber));
	pack_str(pk, "congress", 8);
	msgpack_pack_unsigned_int(pk, congress);
	pack_str(pk, "url", 3);
	pack_str(pk, url, strlen(url));
}

/* Pack one hearing of about `target` bytes at the end of the arena. */
static uint32_t make_value(bk_gen *g, uint32_t target)
{
	char date[16], url[96], title[8192];
	uint64_t r = bk_splitmix(&g->rng);
	unsigned congress = 104 + (unsigned)(r % 15);
	const char *committee = committees[(r >> 8) % NCOMMITTEES];
	const char *chamber = chambers[(r >> 16) % 3];
	snprintf(date, sizeof date, "%04u-%02u-%02u",
	         1995 + (unsigned)((r >> 20) % 30),
	         1 + (unsigned)((r >> 28) % 12),
	         1 + (unsigned)((r >> 32) % 28));
	snprintf(url, sizeof url,
	         "https://www.congress.gov/event/%uth-congress/%s-event/%06u",
	         congress, (r >> 16) % 3 == 1 ? "senate" : "house",
	         (unsigned)((r >> 36) % 1000000));

	/* Pack once with an empty title to learn the size of the rest, then
	 * size the title so the value is `target` bytes. */
	size_t start = g->arena_len;
	pack_hearing(g, title, 0, date, committee, chamber, congress, url);
	size_t rest = g->arena_len - start - 1; /* minus fixstr header */
	g->arena_len = start;
	size_t room = target > rest + 2 ? target - rest : 2; /* body + hdr */
	size_t tlen = room - 2;                              /* str8 */
	if (tlen < 32)
		tlen = room - 1; /* fixstr */
	else if (tlen >= 256)
		tlen = room - 3; /* str16 */
	if (tlen >= sizeof title)
		tlen = sizeof title - 1;
	size_t n = 0;
	while (n < tlen) {
		const char *wd = words[bk_splitmix(&g->rng) % NWORDS];
		size_t wl = strlen(wd);
		if (n)
			title[n++] = ' ';
		for (size_t i = 0; i < wl && n < tlen; i++)
			title[n++] = wd[i];
	}
	if (tlen && title[tlen - 1] == ' ')
		title[tlen - 1] = '.';
	pack_hearing(g, title, tlen, date, committee, chamber, congress, url);
	return (uint32_t)(g->arena_len - start);
}

void bk_key_w(const bk_workload *w, uint64_t kidx, char out[BK_KEY_LEN])
{
	bk_key(w->cfg, kidx, out);
}

int bk_gen_init(bk_gen *g, const bk_cfg *cfg, uint64_t batch_size)
{
	memset(g, 0, sizeof *g);
	g->cfg = cfg;
	g->rng = cfg->seed;
	g->recs = bk_xmalloc(sizeof *g->recs * batch_size);
	msgpack_packer *pk = bk_xmalloc(sizeof *pk);
	msgpack_packer_init(pk, g, arena_write);
	g->packer = pk;
	return 0;
}

void bk_gen_free(bk_gen *g)
{
	free(g->recs);
	free(g->arena);
	free(g->cur_len);
	free(g->packer);
	memset(g, 0, sizeof *g);
}

int bk_gen_next(bk_gen *g, uint64_t batch_size, bk_batch *b)
{
	const bk_cfg *cfg = g->cfg;
	uint64_t n = cfg->records - g->done;
	if (n > batch_size)
		n = batch_size;
	g->arena_len = 0;
	g->committed = g->inserted;
	unsigned pct = cfg->update_pct;
	for (uint64_t j = 0; j < n; j++) {
		bk_rec *r = &g->recs[j];
		int upd =
		        g->committed > 0 && (j + 1) * pct / 100 > j * pct / 100;
		uint64_t r0 = bk_splitmix(&g->rng);
		uint32_t target = cfg->value_size + (uint32_t)(r0 % 51) - 25;
		if (upd) {
			r->op = OP_UPDATE;
			r->kidx = bk_splitmix(&g->rng) % g->committed;
		} else {
			r->op = OP_INSERT;
			r->kidx = g->inserted++;
			if (r->kidx >= g->cur_cap) {
				g->cur_cap = g->cur_cap ? g->cur_cap * 2 : 4096;
				g->cur_len = bk_xrealloc(g->cur_len,
				                         sizeof *g->cur_len *
				                                 g->cur_cap);
			}
		}
		bk_key(cfg, r->kidx, r->key);
		r->voff = g->arena_len;
		r->vlen = make_value(g, target);
		r->blen = upd ? g->cur_len[r->kidx] : 0;
		g->cur_len[r->kidx] = r->vlen;
	}
	g->done += n;
	b->recs = g->recs;
	b->n = (size_t)n;
	b->arena = g->arena;
	return 0;
}

int bk_workload_make(const bk_cfg *cfg, bk_workload *w)
{
	bk_gen g;
	memset(w, 0, sizeof *w);
	w->cfg = cfg;
	w->batch_size = cfg->batch_size;
	w->nbatches = (cfg->records + cfg->batch_size - 1) / cfg->batch_size;
	w->mid = (w->nbatches - 1) / 2;
	w->recs =
	        bk_xmalloc(sizeof *w->recs * (cfg->records ? cfg->records : 1));
	uint64_t cap = cfg->records * (cfg->value_size + 40) + 4096;
	w->arena = bk_xmalloc(cap);
	bk_gen_init(&g, cfg, cfg->batch_size);
	for (;;) {
		bk_batch b;
		bk_gen_next(&g, cfg->batch_size, &b);
		if (b.n == 0)
			break;
		if (w->arena_len + g.arena_len > cap) {
			while (w->arena_len + g.arena_len > cap)
				cap *= 2;
			w->arena = bk_xrealloc(w->arena, cap);
		}
		memcpy(w->arena + w->arena_len, g.arena, g.arena_len);
		for (size_t i = 0; i < b.n; i++) {
			bk_rec r = b.recs[i];
			r.voff += w->arena_len;
			w->recs[w->n++] = r;
			w->user_bytes += BK_KEY_LEN + r.vlen;
			w->image_bytes += r.vlen + r.blen;
		}
		w->arena_len += g.arena_len;
	}
	w->keys = g.inserted;
	bk_gen_free(&g);

	w->last_rec = bk_xmalloc(sizeof *w->last_rec * (w->keys ? w->keys : 1));
	for (uint64_t i = 0; i < w->n; i++)
		w->last_rec[w->recs[i].kidx] = i;

	/* Point reads: their own stream, so --reads does not change the
	 * records. */
	uint64_t rs = cfg->seed ^ 0x5EEDF00DCAFEBEEFull;
	w->nreads = w->keys ? cfg->reads : 0;
	w->reads = bk_xmalloc(sizeof *w->reads * (w->nreads ? w->nreads : 1));
	for (uint64_t i = 0; i < w->nreads; i++)
		w->reads[i] = bk_splitmix(&rs) % w->keys;
	return 0;
}

void bk_workload_free(bk_workload *w)
{
	free(w->recs);
	free(w->arena);
	free(w->last_rec);
	free(w->reads);
	memset(w, 0, sizeof *w);
}

bk_batch bk_workload_batch(const bk_workload *w, uint64_t i)
{
	bk_batch b;
	uint64_t from = i * w->batch_size, to = from + w->batch_size;
	if (to > w->n)
		to = w->n;
	b.recs = w->recs + from;
	b.n = (size_t)(to - from);
	b.arena = w->arena;
	return b;
}

uint64_t bk_workload_records(const bk_workload *w, uint64_t from, uint64_t to)
{
	uint64_t a = from * w->batch_size, z = to * w->batch_size;
	if (a > w->n)
		a = w->n;
	if (z > w->n)
		z = w->n;
	return z - a;
}

int bk_workload_check(const bk_workload *w, uint64_t kidx, const void *v,
                      size_t vlen)
{
	const bk_rec *r = &w->recs[w->last_rec[kidx]];
	return r->vlen == vlen && !memcmp(w->arena + r->voff, v, vlen) ? 0 : -1;
}
