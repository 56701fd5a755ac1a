/* SPDX-License-Identifier: MIT */
/*
 * gen.c: `logbook gen`, a deterministic example data set: a daily feed of
 * congressional hearings with their witnesses and documents.
 *
 * Day d of a set is driven by its own splitmix64 stream seeded from (seed,
 * d), one draw per decision, so a day can be generated alone: `--day K`
 * first replays days 1..K-1 without output, only to learn how many hearings
 * each produced (revisions on day K pick earlier hearings by index). The
 * contents of a record come from a second stream seeded by its identity, so
 * a revision can rebuild the hearing it revises.
 *
 * A day is N record slots. A slot holds the next pending child (witnesses,
 * then documents) of the current hearing; or, on days after the first, a
 * revision of an earlier hearing (20% of new groups); or a new hearing
 * followed by 0-4 witnesses and 0-2 documents. A share R of slots is broken:
 * a hearing with a missing required field, a wrong type, an over-long title
 * or the key of an earlier hearing (a duplicate: it starts no group; its
 * hearing is one that was not broken itself); a witness or document with a
 * dangling hearing_id, a missing required field or a wrong type.
 *
 * --truth FILE: the generator knows which lines an import will set aside
 * (`import --mode insert --on-error record`, earlier days imported the same
 * way), and why: the broken ones, and the witnesses and documents of a
 * broken hearing, which depend on it. It tracks the state of every hearing
 * (broken when created; loaded, in the insert model) and writes one line
 * per set-aside record: "LINE KIND DEP", KIND the record's own issue
 * (format, duplicate, foreign_key) or "-", DEP the line of the hearing it
 * depends on or "-".
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char schema_text[] =
        "{\"tables\": [\n"
        "  {\"name\": \"hearings\", \"closed\": true, \"fields\": [\n"
        "    {\"name\": \"id\", \"type\": \"str\", \"required\": true, "
        "\"max_len\": 32},\n"
        "    {\"name\": \"title\", \"type\": \"str\", \"required\": true, "
        "\"max_len\": 200},\n"
        "    {\"name\": \"date\", \"type\": \"str\", \"required\": true, "
        "\"max_len\": 10},\n"
        "    {\"name\": \"committee\", \"type\": \"str\", \"required\": "
        "true, \"max_len\": 100},\n"
        "    {\"name\": \"chamber\", \"type\": \"str\", \"required\": true, "
        "\"max_len\": 16},\n"
        "    {\"name\": \"congress\", \"type\": \"int\", \"required\": "
        "true}]},\n"
        "  {\"name\": \"witnesses\", \"closed\": true, \"fields\": [\n"
        "    {\"name\": \"id\", \"type\": \"str\", \"required\": true, "
        "\"max_len\": 32},\n"
        "    {\"name\": \"hearing_id\", \"type\": \"str\", \"required\": "
        "true, \"ref\": \"hearings\"},\n"
        "    {\"name\": \"name\", \"type\": \"str\", \"required\": true, "
        "\"max_len\": 100},\n"
        "    {\"name\": \"organization\", \"type\": \"str\", \"max_len\": "
        "200}]},\n"
        "  {\"name\": \"documents\", \"closed\": true, \"fields\": [\n"
        "    {\"name\": \"id\", \"type\": \"str\", \"required\": true, "
        "\"max_len\": 32},\n"
        "    {\"name\": \"hearing_id\", \"type\": \"str\", \"required\": "
        "true, \"ref\": \"hearings\"},\n"
        "    {\"name\": \"type\", \"type\": \"str\", \"required\": true, "
        "\"max_len\": 32},\n"
        "    {\"name\": \"url\", \"type\": \"str\", \"required\": true, "
        "\"max_len\": 500}]}\n"
        "]}\n";

static const char *const prefixes[] = {"Oversight of",
                                       "Examining",
                                       "Hearing on",
                                       "Review of",
                                       "Legislative Hearing on",
                                       "The Future of",
                                       "Protecting",
                                       "Strengthening",
                                       "Modernizing",
                                       "Investigating",
                                       "Assessing",
                                       "Reauthorizing"};
static const char *const topics[] = {"the Federal Aviation Administration",
                                     "Rural Broadband Deployment",
                                     "the National Flood Insurance Program",
                                     "Veterans' Access to Mental Health Care",
                                     "Cybersecurity of the Electric Grid",
                                     "Drug Pricing in Medicare",
                                     "the Strategic Petroleum Reserve",
                                     "Wildfire Preparedness on Federal Lands",
                                     "Artificial Intelligence in Government",
                                     "the Postal Service's Finances",
                                     "Supply Chain Resilience",
                                     "the Farm Bill Conservation Programs",
                                     "Election Security",
                                     "Student Loan Servicing",
                                     "Water Infrastructure in the West",
                                     "the Coast Guard's Icebreaker Fleet",
                                     "Critical Minerals Supply",
                                     "Small Business Lending",
                                     "Opioid Treatment Programs",
                                     "Pipeline Safety",
                                     "Federal Cloud Procurement",
                                     "the Census Bureau's Readiness",
                                     "Nuclear Waste Storage",
                                     "Public Housing Conditions"};
static const char *const suffixes[] = {"",
                                       "",
                                       ": Challenges and Opportunities",
                                       ": A Progress Report",
                                       " and Related Bills",
                                       ": Lessons Learned",
                                       " in the 21st Century",
                                       ": Part II"};
static const char *const house_committees[] = {
        "House Committee on Energy and Commerce",
        "House Committee on Oversight and Accountability",
        "House Committee on Transportation and Infrastructure",
        "House Committee on Veterans' Affairs",
        "House Committee on Natural Resources",
        "House Committee on Financial Services",
        "House Committee on Homeland Security",
        "House Committee on Agriculture"};
static const char *const senate_committees[] = {
        "Senate Committee on Commerce, Science, and Transportation",
        "Senate Committee on Homeland Security and Governmental Affairs",
        "Senate Committee on Energy and Natural Resources",
        "Senate Committee on Health, Education, Labor, and Pensions",
        "Senate Committee on the Judiciary",
        "Senate Committee on Banking, Housing, and Urban Affairs",
        "Senate Committee on Environment and Public Works"};
static const char *const first_names[] = {
        "Maria",  "James", "Aisha", "Robert",   "Linda",  "Wei",
        "Carlos", "Sarah", "David", "Fatima",   "Thomas", "Elena",
        "Kevin",  "Grace", "Omar",  "Patricia", "Daniel", "Mei"};
static const char *const last_names[] = {
        "Johnson", "Garcia", "Chen",  "Williams", "Okafor",   "Smith",
        "Nguyen",  "Brown",  "Patel", "Martinez", "Kowalski", "Davis",
        "Haddad",  "Miller", "Rossi", "Anderson", "Kim",      "Thompson"};
static const char *const organizations[] = {"Government Accountability Office",
                                            "Congressional Budget Office",
                                            "Department of Transportation",
                                            "Department of Energy",
                                            "American Civil Liberties Union",
                                            "U.S. Chamber of Commerce",
                                            "National Governors Association",
                                            "Brookings Institution",
                                            "Heritage Foundation",
                                            "American Farm Bureau Federation",
                                            "National League of Cities",
                                            "Department of Veterans Affairs",
                                            "Federal Trade Commission",
                                            "University of Michigan",
                                            "Rand Corporation",
                                            "AFL-CIO"};
static const char *const doc_types[] = {"transcript", "testimony", "statement",
                                        "report",     "exhibit",   "letter"};

static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n)
{
	return n ? mix(s) % n : 0;
}

/* A stream seeded by (seed, a, b, c): one per day, one per record. */
static uint64_t stream(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t s = seed;
	s ^= mix(&s) + a;
	s ^= mix(&s) + b;
	s ^= mix(&s) + c;
	mix(&s);
	return s;
}

/* Days since 1970-01-01 -> y-m-d (proleptic Gregorian). */
static void civil(int64_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yoe + era * 400) + (*m <= 2);
}

/* State of a hearing (gen.state[day][idx]). */
enum {
	H_BROKEN = 1, /* written broken when created: never loaded by it */
	H_LOADED = 2  /* in the database, in the insert model (--truth) */
};

typedef struct gen {
	uint64_t seed, records;
	uint64_t bad;       /* threshold on a 64-bit draw */
	uint64_t *count;    /* hearings created by each day, [1..days] */
	uint8_t **state;    /* per day, per hearing: H_* */
	uint64_t state_cap; /* entries allocated for the current day */
	sbuf out;
	int emit;
	FILE *truth;   /* --truth: set-aside lines of the output, or NULL */
	uint64_t line; /* output lines written */
} gen;

enum { BAD_NONE, BAD_MISSING, BAD_TYPE, BAD_LONG, BAD_DUP, BAD_DANGLING };

static void hearing_id(sbuf *b, uint64_t day, uint64_t idx)
{
	sb_printf(b, "HRG-%03" PRIu64 "-%06" PRIu64, day, idx);
}

/* One line of the --truth file: the line just emitted is set aside for its
 * own issue kind (or NULL) and/or because it depends on line dep (or 0). */
static void truth(gen *g, const char *kind, uint64_t dep)
{
	if (!g->truth || !g->emit || (!kind && !dep))
		return;
	fprintf(g->truth, "%" PRIu64 " %s ", g->line, kind ? kind : "-");
	if (dep)
		fprintf(g->truth, "%" PRIu64 "\n", dep);
	else
		fputs("-\n", g->truth);
}

/* Hearing `idx` of today's or an earlier day: index c counts today's
 * hearings first (0..nh-1), then day 1's, day 2's... */
static void locate(const gen *g, uint64_t day, uint64_t nh, uint64_t c,
                   uint64_t *hd, uint64_t *idx)
{
	*hd = day;
	if (c >= nh) {
		c -= nh;
		for (*hd = 1; *hd < day && c >= g->count[*hd]; (*hd)++)
			c -= g->count[*hd];
	}
	*idx = c;
}

static void line_start(gen *g, const char *table, const char *pfx, uint64_t day,
                       uint64_t idx, int width)
{
	sb_printf(&g->out,
	          "{\"table\":\"%s\",\"key\":\"%s-%03" PRIu64 "-%0*" PRIu64
	          "\",\"value\":{\"id\":\"%s-%03" PRIu64 "-%0*" PRIu64 "\"",
	          table, pfx, day, width, idx, pfx, day, width, idx);
}

/* A hearing (day, idx); key_day/key_idx name the key it is written under
 * (a duplicate reuses another hearing's key). */
static void emit_hearing(gen *g, uint64_t day, uint64_t idx, int bad,
                         int revised)
{
	uint64_t s = stream(g->seed, 1, day, idx);
	int house = below(&s, 5) < 3;
	const char *pre = prefixes[below(&s, N_OF(prefixes))];
	const char *top = topics[below(&s, N_OF(topics))];
	const char *suf = suffixes[below(&s, N_OF(suffixes))];
	const char *com =
	        house ? house_committees[below(&s, N_OF(house_committees))]
	              : senate_committees[below(&s, N_OF(senate_committees))];
	int64_t date = 18631 + (int64_t)below(&s, 1455); /* 2021-01-04.. */
	int y;
	unsigned mo, d;
	sbuf *o = &g->out;
	if (!g->emit)
		return;
	g->line++;
	if (revised)
		date += 7;
	civil(date, &y, &mo, &d);
	line_start(g, "hearings", "HRG", day, idx, 6);
	sb_printf(o, ",\"title\":\"%s %s%s%s", pre, top, suf,
	          revised ? " (revised)" : "");
	if (bad == BAD_LONG) {
		/* Over the schema's 200 characters. */
		for (int i = 0; i < 12; i++)
			sb_puts(o, " and Related Matters");
	}
	sb_putc(o, '"');
	if (bad != BAD_MISSING)
		sb_printf(o, ",\"date\":\"%04d-%02u-%02u\"", y, mo, d);
	sb_printf(o, ",\"committee\":\"%s\",\"chamber\":\"%s\"", com,
	          house ? "House" : "Senate");
	if (bad == BAD_TYPE)
		sb_printf(o, ",\"congress\":\"%dth\"", y < 2023 ? 117 : 118);
	else
		sb_printf(o, ",\"congress\":%d", y < 2023 ? 117 : 118);
	sb_puts(o, "}}\n");
}

static void ref_field(gen *g, uint64_t hday, uint64_t hidx, int bad)
{
	sb_puts(&g->out, ",\"hearing_id\":\"");
	if (bad == BAD_DANGLING)
		sb_printf(&g->out, "HRG-%03" PRIu64 "-X%05" PRIu64, hday,
		          hidx % 100000);
	else
		hearing_id(&g->out, hday, hidx);
	sb_putc(&g->out, '"');
}

static void emit_witness(gen *g, uint64_t day, uint64_t idx, uint64_t hidx,
                         int bad)
{
	uint64_t s = stream(g->seed, 2, day, idx);
	sbuf *o = &g->out;
	if (!g->emit)
		return;
	g->line++;
	line_start(g, "witnesses", "WIT", day, idx, 7);
	ref_field(g, day, hidx, bad);
	if (bad == BAD_TYPE)
		sb_printf(o, ",\"name\":%" PRIu64, below(&s, 100000));
	else if (bad != BAD_MISSING)
		sb_printf(o, ",\"name\":\"%s %s\"",
		          first_names[below(&s, N_OF(first_names))],
		          last_names[below(&s, N_OF(last_names))]);
	sb_printf(o, ",\"organization\":\"%s\"}}\n",
	          organizations[below(&s, N_OF(organizations))]);
}

static void emit_document(gen *g, uint64_t day, uint64_t idx, uint64_t hidx,
                          int bad)
{
	uint64_t s = stream(g->seed, 3, day, idx);
	sbuf *o = &g->out;
	if (!g->emit)
		return;
	g->line++;
	line_start(g, "documents", "DOC", day, idx, 7);
	ref_field(g, day, hidx, bad);
	sb_printf(o, ",\"type\":\"%s\"", doc_types[below(&s, N_OF(doc_types))]);
	if (bad == BAD_TYPE)
		sb_printf(o, ",\"url\":%" PRIu64, below(&s, 1000000));
	else if (bad != BAD_MISSING)
		sb_printf(o,
		          ",\"url\":\"https://www.govinfo.gov/content/pkg/"
		          "HRG-%03" PRIu64 "-%06" PRIu64 "/html/DOC-%03" PRIu64
		          "-%07" PRIu64 ".htm\"",
		          day, hidx, day, idx);
	sb_puts(o, "}}\n");
}

/* Room for hearing idx of day `day` in g->state. */
static void state_room(gen *g, uint64_t day, uint64_t idx)
{
	if (idx < g->state_cap)
		return;
	g->state_cap = g->state_cap ? g->state_cap * 2 : 1024;
	while (g->state_cap <= idx)
		g->state_cap *= 2;
	g->state[day] = realloc(g->state[day], g->state_cap);
	if (!g->state[day]) {
		fputs("logbook: gen: out of memory\n", stderr);
		exit(CLI_FAIL);
	}
}

/* The hearing a duplicate reuses the key of: index c, or the next one that
 * was not broken when created (a broken one never loaded, so its key would
 * load rather than duplicate). 0 if none within reach. */
#define DUP_REACH 64
static int dup_target(const gen *g, uint64_t day, uint64_t nh, uint64_t total,
                      uint64_t c, uint64_t *hd, uint64_t *idx)
{
	for (uint64_t k = 0; k < DUP_REACH && k < total; k++) {
		locate(g, day, nh, (c + k) % total, hd, idx);
		if (!(g->state[*hd][*idx] & H_BROKEN))
			return 1;
	}
	return 0;
}

/* Generate day `day`; fills g->count[day]. */
static void gen_day(gen *g, uint64_t day)
{
	uint64_t s = stream(g->seed, 0, day, 0);
	uint64_t nh = 0, nw = 0, nd = 0, earlier = 0;
	uint64_t cur = 0, wpend = 0, dpend = 0;
	/* --truth: the line of the current hearing, 0 if it was loaded */
	uint64_t cur_lost = 0;
	g->state_cap = 0;
	for (uint64_t d = 1; d < day; d++)
		earlier += g->count[d];
	for (uint64_t slot = 0; slot < g->records; slot++) {
		int bad = BAD_NONE;
		int broken = g->bad && mix(&s) < g->bad;
		uint64_t kind = below(&s, 4);
		if (wpend || dpend) {
			if (broken)
				bad = kind == 0   ? BAD_MISSING
				      : kind == 1 ? BAD_TYPE
				                  : BAD_DANGLING;
			if (wpend) {
				emit_witness(g, day, nw++, cur, bad);
				wpend--;
			} else {
				emit_document(g, day, nd++, cur, bad);
				dpend--;
			}
			truth(g,
			      bad == BAD_DANGLING ? "foreign_key"
			      : bad               ? "format"
			                          : NULL,
			      bad == BAD_DANGLING ? 0 : cur_lost);
			if (g->emit && g->out.len > (1u << 16))
				sb_flush(&g->out, stdout);
			continue;
		}
		if (broken)
			bad = kind == 0   ? BAD_MISSING
			      : kind == 1 ? BAD_TYPE
			      : kind == 2 ? BAD_LONG
			                  : BAD_DUP;
		if (bad == BAD_DUP && nh + earlier == 0)
			bad = BAD_MISSING;
		/* Always draw, so the stream does not depend on choices. */
		uint64_t pick = mix(&s), revise = below(&s, 5) == 0;
		uint64_t w = below(&s, 5), m = below(&s, 3);
		uint64_t hd, i;
		if (bad == BAD_DUP &&
		    !dup_target(g, day, nh, nh + earlier, pick % (nh + earlier),
		                &hd, &i))
			bad = BAD_MISSING;
		if (bad == BAD_DUP) {
			/* Another record under the key of an earlier hearing.
			 */
			emit_hearing(g, hd, i, BAD_NONE, 1);
			truth(g, "duplicate", 0);
		} else if (day > 1 && revise && earlier) {
			locate(g, day, 0, pick % earlier, &hd, &i);
			emit_hearing(g, hd, i, bad, 1);
			/* insert model: a revision of a loaded hearing is a
			 * duplicate; of one never loaded, it loads it */
			if (bad)
				truth(g, "format", 0);
			else if (g->state[hd][i] & H_LOADED)
				truth(g, "duplicate", 0);
			else
				g->state[hd][i] |= H_LOADED;
		} else {
			cur = nh++;
			state_room(g, day, cur);
			g->state[day][cur] = bad ? H_BROKEN : H_LOADED;
			emit_hearing(g, day, cur, bad, 0);
			truth(g, bad ? "format" : NULL, 0);
			cur_lost = bad ? g->line : 0;
			wpend = w;
			dpend = m;
		}
		if (g->emit && g->out.len > (1u << 16))
			sb_flush(&g->out, stdout);
	}
	g->count[day] = nh;
}

static int parse_rate(const char *s, uint64_t *thr)
{
	char *end;
	double r;
	if (!s || !*s)
		return cli_usage("--bad-rate: empty");
	r = strtod(s, &end);
	if (*end || !(r >= 0 && r <= 1))
		return cli_usage("--bad-rate: '%s' is not a number in 0..1", s);
	*thr = r >= 1 ? UINT64_MAX : (uint64_t)(r * 18446744073709551616.0);
	return 0;
}

int cmd_gen(int argc, char **argv)
{
	cli_opt o[] = {{"records", 1, NULL},  {"seed", 1, NULL},
	               {"bad-rate", 1, NULL}, {"days", 1, NULL},
	               {"day", 1, NULL},      {"truth", 1, NULL}};
	const char *pos[1];
	size_t np;
	uint64_t days = 1, only = 0;
	gen g;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
	const char *opt_records = CLI_OPT(o, "records");
	const char *opt_seed = CLI_OPT(o, "seed");
	const char *opt_bad_rate = CLI_OPT(o, "bad-rate");
	const char *opt_days = CLI_OPT(o, "days");
	const char *opt_day = CLI_OPT(o, "day");
	const char *opt_truth = CLI_OPT(o, "truth");
	if (!strcmp(pos[0], "schema")) {
		fputs(schema_text, stdout);
		return 0;
	}
	if (strcmp(pos[0], "hearings"))
		return cli_usage("unknown data set '%s' (use 'hearings' or "
		                 "'schema')",
		                 pos[0]);
	memset(&g, 0, sizeof g);
	g.records = 1000;
	g.seed = 42;
	if (opt_records &&
	    (rc = cli_u64("--records", opt_records, 0, 100000000, &g.records)))
		return rc;
	if (opt_seed &&
	    (rc = cli_u64("--seed", opt_seed, 0, UINT64_MAX, &g.seed)))
		return rc;
	if (opt_bad_rate && (rc = parse_rate(opt_bad_rate, &g.bad)))
		return rc;
	if (opt_days && (rc = cli_u64("--days", opt_days, 1, 999, &days)))
		return rc;
	if (opt_day && (rc = cli_u64("--day", opt_day, 1, days, &only)))
		return rc;
	g.count = calloc(days + 1, sizeof *g.count);
	g.state = calloc(days + 1, sizeof *g.state);
	if (!g.count || !g.state) {
		free(g.count);
		free(g.state);
		return cli_err("out of memory");
	}
	rc = 0;
	if (opt_truth) {
		g.truth = fopen(opt_truth, "w");
		if (!g.truth)
			rc = cli_err("%s: %s", opt_truth, strerror(errno));
	}
	sb_init(&g.out);
	for (uint64_t d = 1; !rc && d <= days; d++) {
		if (only && d > only)
			break;
		g.emit = !only || d == only;
		gen_day(&g, d);
		sb_flush(&g.out, stdout);
	}
	if (g.truth && fclose(g.truth) != 0 && !rc)
		rc = cli_err("%s: %s", opt_truth, strerror(errno));
	sb_free(&g.out);
	for (uint64_t d = 0; d <= days; d++)
		free(g.state[d]);
	free(g.state);
	free(g.count);
	return rc;
}
