/* SPDX-License-Identifier: MIT */
/*
 * options.c: the command line of logbook-bench. Defaults are workload W1 as
 * docs and DESIGN fix it: 1,000,000 records in batches of 1,000, values of
 * about 225 bytes, 20% updates, seed 42, nosync, 3 runs.
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static const char *const phase_names[PH__COUNT] = {
        [PH_COMMIT] = "commit",
        [PH_RB_LAST] = "rollback-last",
        [PH_RB_MID] = "rollback-mid",
        [PH_RB_FORCE] = "rollback-force",
        [PH_CASCADE] = "cascade",
        [PH_RB_TO] = "rollback-to",
        [PH_CHECKPOINT] = "checkpoint",
        [PH_REPLAY] = "replay",
        [PH_REPLAY_CKPT] = "replay-checkpoint",
        [PH_VERIFY] = "verify",
        [PH_VERIFY_RPL] = "verify-replay",
        [PH_GET] = "get",
        [PH_SCAN] = "scan",
        [PH_ASOF] = "asof",
        [PH_ASOF_CHG] = "asof-changed",
        [PH_FEED] = "feed",
        [PH_EXPORT_ASOF] = "export-asof",
        [PH_WAIT] = "wait",
        [PH_IDLE] = "idle",
        [PH_FOLLOW] = "follow",
        [PH_RSS] = "rss",
};

static const char *const sys_names[SYS__COUNT] = {
        [SYS_LOGBOOK] = "logbook", [SYS_SCHEMA] = "logbook+schema",
        [SYS_NAIVE] = "naive",     [SYS_SQLITE] = "sqlite",
        [SYS_LMDB] = "lmdb",
};

const char *bk_phase_name(int ph)
{
	return ph >= 0 && ph < PH__COUNT ? phase_names[ph] : "?";
}

const char *bk_sys_name(int sys)
{
	return sys >= 0 && sys < SYS__COUNT ? sys_names[sys] : "?";
}

static void usage(FILE *f)
{
	fputs("usage: logbook-bench [options]\n"
	      "\n"
	      "Workload (W1 by default):\n"
	      "  --records N        records to commit (default 1000000; "
	      "k/M suffixes)\n"
	      "  --batch-size B     records per batch (default 1000)\n"
	      "  --value-size V     mean value bytes, +-25 (default 225)\n"
	      "  --update-pct P     updates per batch, percent (default 20)\n"
	      "  --seed S           splitmix64 seed (default 42)\n"
	      "  --keys seq|random  seq = W1; random = W2, scattered inserts\n"
	      "  --reads N          point reads per run (default: records, "
	      "at most 1M)\n"
	      "\n"
	      "Engine:\n"
	      "  --sync | --nosync  fsync at each commit or not (default "
	      "nosync)\n"
	      "  --compression L    zlib level 0..9 of logbook and the naive "
	      "log (default 1)\n"
	      "  --segment-size S   logbook segment bytes (default: the "
	      "engine's; k/M)\n"
	      "  --schema           also run logbook on a table with the "
	      "hearing schema\n"
	      "\n"
	      "Run:\n"
	      "  --peers LIST       lmdb,naive,sqlite (default all; 'none')\n"
	      "  --phases LIST      subset of: commit rollback-last "
	      "rollback-mid\n"
	      "                     rollback-force cascade rollback-to "
	      "checkpoint replay\n"
	      "                     replay-checkpoint verify verify-replay "
	      "get scan rss\n"
	      "                     asof asof-changed feed export-asof wait "
	      "idle\n"
	      "                     follow\n"
	      "  --rss-batches A,B  batch sizes of the rss phase (default "
	      "1000,100000)\n"
	      "  --runs R           runs per phase, medians reported "
	      "(default 3)\n"
	      "  --dir D            where to make the scratch directory "
	      "(default $TMPDIR or /tmp)\n"
	      "  --keep             keep the scratch directory, databases "
	      "included\n"
	      "  --json[=FILE]      JSON report: on stdout (text goes to "
	      "stderr) or to FILE\n"
	      "  --svg FILE         also draw the phases as one bar chart "
	      "(SVG): each\n"
	      "                     system's rate as a multiple of raw "
	      "LMDB's\n"
	      "  --quiet            no progress lines on stderr\n"
	      "  --help\n",
	      f);
}

static uint64_t parse_count(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		bk_die("%s: not a number: '%s'", opt, s);
	if (*end == 'k' || *end == 'K')
		v *= 1000, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1000000, end++;
	else if (*end == 'g' || *end == 'G')
		v *= 1000000000, end++;
	if (*end)
		bk_die("%s: bad suffix in '%s'", opt, s);
	return (uint64_t)v;
}

static uint64_t parse_bytes(const char *opt, const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		bk_die("%s: not a number: '%s'", opt, s);
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		bk_die("%s: bad suffix in '%s'", opt, s);
	return v;
}

static int lookup(const char *const *names, int n, const char *s, size_t len)
{
	for (int i = 0; i < n; i++)
		if (names[i] && strlen(names[i]) == len &&
		    !strncmp(names[i], s, len))
			return i;
	return -1;
}

/* A comma-separated list of names to a bit set. */
static unsigned parse_list(const char *opt, const char *s,
                           const char *const *names, int n)
{
	unsigned set = 0;
	if (!strcmp(s, "none"))
		return 0;
	while (*s) {
		size_t len = strcspn(s, ",");
		int i = lookup(names, n, s, len);
		if (i < 0)
			bk_die("%s: unknown name '%.*s'", opt, (int)len, s);
		set |= 1u << i;
		s += len;
		if (*s == ',')
			s++;
	}
	return set;
}

enum {
	O_RECORDS = 256,
	O_BATCH,
	O_VALUE,
	O_UPDATE,
	O_SEED,
	O_SYNC,
	O_NOSYNC,
	O_COMP,
	O_SEG,
	O_RUNS,
	O_DIR,
	O_KEEP,
	O_PEERS,
	O_PHASES,
	O_JSON,
	O_SCHEMA,
	O_KEYS,
	O_READS,
	O_RSSB,
	O_QUIET,
	O_SVG,
	O_HELP
};

int bk_options_parse(int argc, char **argv, bk_cfg *cfg)
{
	static const struct option longopts[] = {
	        {"records", required_argument, 0, O_RECORDS},
	        {"batch-size", required_argument, 0, O_BATCH},
	        {"value-size", required_argument, 0, O_VALUE},
	        {"update-pct", required_argument, 0, O_UPDATE},
	        {"seed", required_argument, 0, O_SEED},
	        {"sync", no_argument, 0, O_SYNC},
	        {"nosync", no_argument, 0, O_NOSYNC},
	        {"compression", required_argument, 0, O_COMP},
	        {"segment-size", required_argument, 0, O_SEG},
	        {"runs", required_argument, 0, O_RUNS},
	        {"dir", required_argument, 0, O_DIR},
	        {"keep", no_argument, 0, O_KEEP},
	        {"peers", required_argument, 0, O_PEERS},
	        {"phases", required_argument, 0, O_PHASES},
	        {"json", optional_argument, 0, O_JSON},
	        {"schema", no_argument, 0, O_SCHEMA},
	        {"keys", required_argument, 0, O_KEYS},
	        {"reads", required_argument, 0, O_READS},
	        {"rss-batches", required_argument, 0, O_RSSB},
	        {"quiet", no_argument, 0, O_QUIET},
	        {"svg", required_argument, 0, O_SVG},
	        {"help", no_argument, 0, O_HELP},
	        {0, 0, 0, 0}};
	static const char *const peer_names[SYS__COUNT] = {
	        [SYS_NAIVE] = "naive",
	        [SYS_SQLITE] = "sqlite",
	        [SYS_LMDB] = "lmdb",
	};
	int reads_set = 0;

	memset(cfg, 0, sizeof *cfg);
	cfg->records = 1000000;
	cfg->batch_size = 1000;
	cfg->value_size = 225;
	cfg->update_pct = 20;
	cfg->seed = 42;
	cfg->compression = 1;
	cfg->runs = 3;
	cfg->systems = 1u << SYS_LOGBOOK | 1u << SYS_NAIVE | 1u << SYS_SQLITE |
	               1u << SYS_LMDB;
	cfg->phases = (1u << PH__COUNT) - 1;
	cfg->rss_batches[0] = 1000;
	cfg->rss_batches[1] = 100000;

	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_RECORDS:
			cfg->records = parse_count("--records", optarg);
			break;
		case O_BATCH:
			cfg->batch_size = parse_count("--batch-size", optarg);
			break;
		case O_VALUE:
			cfg->value_size =
			        (uint32_t)parse_count("--value-size", optarg);
			break;
		case O_UPDATE:
			cfg->update_pct =
			        (unsigned)parse_count("--update-pct", optarg);
			break;
		case O_SEED:
			cfg->seed = strtoull(optarg, NULL, 0);
			break;
		case O_SYNC:
			cfg->sync = 1;
			break;
		case O_NOSYNC:
			cfg->sync = 0;
			break;
		case O_COMP:
			cfg->compression = atoi(optarg);
			break;
		case O_SEG:
			cfg->segment_size =
			        (size_t)parse_bytes("--segment-size", optarg);
			break;
		case O_RUNS:
			cfg->runs = (unsigned)parse_count("--runs", optarg);
			break;
		case O_DIR:
			cfg->dir = optarg;
			break;
		case O_KEEP:
			cfg->keep = 1;
			break;
		case O_PEERS:
			cfg->systems = (cfg->systems & 1u << SYS_SCHEMA) |
			               1u << SYS_LOGBOOK |
			               parse_list("--peers", optarg, peer_names,
			                          SYS__COUNT);
			break;
		case O_PHASES:
			cfg->phases = parse_list("--phases", optarg,
			                         phase_names, PH__COUNT) |
			              1u << PH_COMMIT;
			break;
		case O_JSON:
			cfg->json = 1;
			cfg->json_file = optarg;
			break;
		case O_SCHEMA:
			cfg->schema = 1;
			cfg->systems |= 1u << SYS_SCHEMA;
			break;
		case O_KEYS:
			if (!strcmp(optarg, "seq"))
				cfg->keys_random = 0;
			else if (!strcmp(optarg, "random"))
				cfg->keys_random = 1;
			else
				bk_die("--keys: seq or random, not '%s'",
				       optarg);
			break;
		case O_READS:
			cfg->reads = parse_count("--reads", optarg);
			reads_set = 1;
			break;
		case O_RSSB: {
			char *comma = strchr(optarg, ',');
			if (comma)
				*comma = 0;
			cfg->rss_batches[0] =
			        parse_count("--rss-batches", optarg);
			cfg->rss_batches[1] =
			        comma ? parse_count("--rss-batches", comma + 1)
			              : 0;
			break;
		}
		case O_QUIET:
			cfg->quiet = 1;
			break;
		case O_SVG:
			cfg->svg_file = optarg;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc)
		bk_die("unexpected argument '%s' (see --help)", argv[optind]);
	if (cfg->records == 0)
		bk_die("--records must be at least 1");
	if (cfg->batch_size == 0)
		bk_die("--batch-size must be at least 1");
	if (cfg->value_size < 96 || cfg->value_size > 8000)
		bk_die("--value-size must be in 96..8000");
	if (cfg->update_pct > 100)
		bk_die("--update-pct must be in 0..100");
	if (cfg->compression < 0 || cfg->compression > 9)
		bk_die("--compression must be in 0..9");
	if (cfg->runs == 0 || cfg->runs > 99)
		bk_die("--runs must be in 1..99");
	if (!reads_set)
		cfg->reads = cfg->records < 1000000 ? cfg->records : 1000000;
	return 0;
}
