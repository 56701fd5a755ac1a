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
 * or the key of an earlier hearing (a duplicate: it starts no group); a
 * witness or document with a dangling hearing_id, a missing required field
 * or a wrong type.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))
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

typedef struct gen {
	uint64_t seed, records;
	uint64_t bad;    /* threshold on a 64-bit draw */
	uint64_t *count; /* hearings created by each day, [1..days] */
	sbuf out;
	int emit;
} gen;

enum { BAD_NONE, BAD_MISSING, BAD_TYPE, BAD_LONG, BAD_DUP, BAD_DANGLING };

static void hearing_id(sbuf *b, uint64_t day, uint64_t idx)
{
	sb_printf(b, "HRG-%03" PRIu64 "-%06" PRIu64, day, idx);
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

/* Generate day `day`; fills g->count[day]. */
static void gen_day(gen *g, uint64_t day)
{
	uint64_t s = stream(g->seed, 0, day, 0);
	uint64_t nh = 0, nw = 0, nd = 0, earlier = 0;
	uint64_t cur = 0, wpend = 0, dpend = 0;
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
		if (bad == BAD_DUP) {
			/* Another record under the key of an earlier hearing.
			 */
			uint64_t i = pick % (nh + earlier), hd = day;
			if (i >= nh) {
				i -= nh;
				for (hd = 1; hd < day && i >= g->count[hd];
				     hd++)
					i -= g->count[hd];
			}
			emit_hearing(g, hd, i, BAD_NONE, 1);
		} else if (day > 1 && revise && earlier) {
			uint64_t i = pick % earlier, hd;
			for (hd = 1; hd < day && i >= g->count[hd]; hd++)
				i -= g->count[hd];
			emit_hearing(g, hd, i, bad, 1);
		} else {
			cur = nh++;
			emit_hearing(g, day, cur, bad, 0);
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
	cli_opt o[] = {{"records", 1, NULL},
	               {"seed", 1, NULL},
	               {"bad-rate", 1, NULL},
	               {"days", 1, NULL},
	               {"day", 1, NULL}};
	const char *pos[1];
	size_t np;
	uint64_t days = 1, only = 0;
	gen g;
	int rc;

	rc = cli_parse(argc, argv, o, NOPTS(o), pos, 1, 1, &np);
	if (rc)
		return rc;
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
	if (o[0].val &&
	    (rc = cli_u64("--records", o[0].val, 0, 100000000, &g.records)))
		return rc;
	if (o[1].val &&
	    (rc = cli_u64("--seed", o[1].val, 0, UINT64_MAX, &g.seed)))
		return rc;
	if (o[2].val && (rc = parse_rate(o[2].val, &g.bad)))
		return rc;
	if (o[3].val && (rc = cli_u64("--days", o[3].val, 1, 999, &days)))
		return rc;
	if (o[4].val && (rc = cli_u64("--day", o[4].val, 1, days, &only)))
		return rc;
	g.count = calloc(days + 1, sizeof *g.count);
	if (!g.count)
		return cli_err("out of memory");
	sb_init(&g.out);
	for (uint64_t d = 1; d <= days; d++) {
		if (only && d > only)
			break;
		g.emit = !only || d == only;
		gen_day(&g, d);
		sb_flush(&g.out, stdout);
	}
	sb_free(&g.out);
	free(g.count);
	return 0;
}
