/* SPDX-License-Identifier: MIT */
/*
 * main.c: the `logbook` command dispatcher, global options and help texts.
 *
 * Each command lives in its own function (cmd_*), gets argv starting at its
 * own name, parses its options with cli_parse() and returns an exit code.
 * stdout is fully buffered with a large buffer: list commands print one
 * line per item and would otherwise spend their time in write().
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage;
	const char *summary;
	const char *help;
} command;

static const command commands[] = {
        {"init", cmd_init, "init DIR [--schema FILE.json]", "create a database",
         "Create a new database in DIR (created if missing; it must not\n"
         "hold a database already). With --schema, create the tables the\n"
         "schema file declares, in file order (a \"ref\" must name a table\n"
         "declared before it, or the table itself). Print the schema file of "
         "an example data set\n"
         "with 'logbook gen schema'.\n"},
        {"tables", cmd_tables, "tables DIR [--schema]",
         "list tables, record counts and schemas",
         "List the tables in name order with their record counts and a\n"
         "summary of their schemas. --schema prints instead a schema file\n"
         "(the format of 'init --schema') describing every table, in an\n"
         "order where referenced tables come first.\n"},
        {"table", cmd_table,
         "table create DIR NAME [--schema FILE.json]\n"
         "       table alter DIR NAME --schema FILE.json",
         "create one table, or change its schema",
         "Create table NAME. Without --schema it holds opaque bytes. The\n"
         "schema file is either a whole schema file (the table named NAME\n"
         "is taken from it) or one table object {\"closed\": ..., "
         "\"fields\": [...]}.\n"
         "'table alter' changes the schema of table NAME in a logged batch\n"
         "(it replays, verifies and rolls back like any batch). Loosening\n"
         "always passes; tightening is checked against every record, and\n"
         "when some do not fit nothing is written and the first 1000 are\n"
         "printed (exit 1).\n"},
        {"import", cmd_import,
         "import DIR FILE|- [--table T] [--key FIELD] [--batch-size N]\n"
         "       [--mode insert|upsert|update] [--on-error batch|record]\n"
         "       [--reject-file FILE] [--from-rejects] [--resume | --again]\n"
         "       [--label L] [--stop-on-error] [--dry-run] [--nosync] "
         "[--no-wait]\n"
         "       [--allow-repeats]",
         "load JSON lines in validated batches",
         "Load JSON lines into the database, N records per batch (default\n"
         "1000). A line is either a record of table T, keyed by its field\n"
         "FIELD (default \"id\"; a string, or an integer used as decimal\n"
         "text), or one of\n"
         "  {\"table\": T, \"key\": K, \"value\": V}\n"
         "  {\"table\": T, \"key\": K, \"delete\": true}\n"
         "where K is a string, an integer or {\"base64\": ...}. --mode picks\n"
         "how records are written: insert (default: an existing key is a\n"
         "duplicate), upsert (insert or replace) or update (the key must\n"
         "exist); in upsert mode a key repeated in one batch is a duplicate\n"
         "unless --allow-repeats (the last line wins). A UTF-8 byte-order\n"
         "mark starting the input is skipped. Each batch is validated as a\n"
         "whole: a batch with any issue\n"
         "(bad JSON, unknown table, schema violation, duplicate, missing or\n"
         "dangling reference...) is reported and skipped, and the others\n"
         "commit. With --on-error record, each batch commits its valid\n"
         "records instead, and sets aside every record with an issue and\n"
         "every record that refers to a set-aside one (in this batch or a\n"
         "later one). --reject-file FILE writes every line not committed,\n"
         "verbatim, with its reasons, as JSON lines; --from-rejects imports\n"
         "the records of such a file. --stop-on-error stops at the first\n"
         "batch with an issue. --dry-run validates every batch, commits\n"
         "none, and reports each issue as the real import would. --nosync\n"
         "skips the fsync at each commit.\n"
         "Each import is a run, recorded in the database (see 'logbook\n"
         "runs'): a file whose content was imported already is refused\n"
         "unless --again; --resume goes on with the interrupted run of the\n"
         "file at its first line not done. Ctrl-C ends the current batch\n"
         "cleanly and prints where to resume (exit 130). Only one import\n"
         "runs per database: another waits, or with --no-wait fails\n"
         "(exit 3). Exit status 1 if any batch failed or record was set\n"
         "aside, or the file was imported already.\n"},
        {"export", cmd_export, "export DIR [TABLE] [--as-of N]",
         "print a table as JSON lines import accepts",
         "Print every record of TABLE (or of every table, referenced tables\n"
         "first) as {\"table\": ..., \"key\": ..., \"value\": ...} lines, in "
         "key\norder. 'logbook import' reads them back unchanged.\n"
         "With --as-of N, print the records as they were right after batch\n"
         "N: the current records corrected by the changes since N (no\n"
         "replay). Tables that exist now are printed.\n"},
        {"get", cmd_get, "get DIR TABLE KEY [--base64-key] [--as-of N]",
         "print one value",
         "Print the value of KEY in TABLE. Exit 1 if the key does not "
         "exist.\nWith --as-of N, the value right after batch N.\n"},
        {"scan", cmd_scan, "scan DIR TABLE [--prefix P] [--limit N]",
         "print records in key order",
         "Print the records of TABLE in key order, only keys starting with\n"
         "P with --prefix, at most N with --limit.\n"},
        {"put", cmd_put,
         "put DIR TABLE KEY JSON [--mode insert|upsert|update]"
         " [--base64-key]",
         "write one value (a one-op batch)",
         "Set KEY in TABLE to the value given as JSON, in a batch of its\n"
         "own (default mode upsert). Exit 1 with the issues if validation\n"
         "refuses it.\n"},
        {"del", cmd_del, "del DIR TABLE KEY [--base64-key]",
         "delete one key (a one-op batch)",
         "Delete KEY from TABLE in a batch of its own. Exit 1 with the\n"
         "issues if the key is missing or still referenced.\n"},
        {"log", cmd_log, "log DIR [--limit N] [--since ID] [--follow]",
         "list batches, newest first",
         "List batches newest first: id, commit time, records, log bytes\n"
         "raw and stored, state and label. --since ID lists only batches\n"
         "after ID; --limit N at most N batches. --follow then goes on\n"
         "printing each new batch (oldest first) as it commits, from any\n"
         "process, until interrupted (Ctrl-C: exit 0).\n"},
        {"changes", cmd_changes,
         "changes DIR [--since N] [--until M] [--table T] [--follow]\n"
         "       [--consumer NAME] [--json]",
         "print change records as JSON lines, in log order",
         "Print one JSON line per change record of the batches after N (all\n"
         "by default) up to M: {\"batch\", \"time\", \"label\", \"op\"\n"
         "(insert, update, delete or table), \"table\", \"key\", \"before\",\n"
         "\"after\", \"undoes\"}; values as JSON for schema tables, base64\n"
         "or text for opaque ones, as 'show --json'. --table T prints only\n"
         "T's records. --follow keeps printing as batches commit, from any\n"
         "process, until interrupted (Ctrl-C: exit 0). --consumer NAME\n"
         "resumes after the last batch NAME acknowledged (registering it\n"
         "if new) and acknowledges each batch once its lines are written:\n"
         "a consumer killed mid-batch sees that batch again, never a gap.\n"
         "A consumer that 'prune' left behind is lost: exit 3 (drop it\n"
         "with 'consumers --drop').\n"},
        {"diff", cmd_diff, "diff DIR A B [--json]",
         "keys whose value differs between two batches",
         "Print every key (and table) whose value right after batch A\n"
         "differs from its value right after batch B, in table then key\n"
         "order: op (insert, update, delete, table), table, key, value\n"
         "after A (before) and after B (after). 0 is the empty database.\n"},
        {"consumers", cmd_consumers,
         "consumers DIR [--drop NAME] [--max-lag N] [--max-age SECONDS]",
         "list named consumers; drop one; set their limits",
         "List the named consumers ('changes --consumer'): the last batch\n"
         "each acknowledged, when, and whether it is lost. --drop NAME\n"
         "forgets one. A consumer holds back 'prune' until it has\n"
         "acknowledged what would be pruned, unless it lags more than\n"
         "--max-lag batches or acknowledged more than --max-age seconds\n"
         "ago: then prune goes ahead and the consumer is lost. 0 (the\n"
         "default) is no limit.\n"},
        {"show", cmd_show, "show DIR BATCH [--limit N]",
         "print every change of a batch",
         "Print the batch's header and every change it made: op, table,\n"
         "key, value before and after.\n"},
        {"history", cmd_history, "history DIR TABLE KEY [--base64-key]",
         "every batch that changed one key",
         "Print every change of KEY in TABLE, newest batch first, with the\n"
         "value before and after.\n"},
        {"rollback", cmd_rollback,
         "rollback DIR BATCH [--cascade | --force] [--dry-run]\n"
         "       logbook rollback DIR --run RUN [--cascade] [--dry-run] "
         "[--no-wait]",
         "undo one batch, or a whole import run",
         "Undo BATCH in a new batch. If a later batch changed one of its\n"
         "keys, nothing is written and each conflicting key is printed with\n"
         "the batch that changed it (exit 1): --cascade also rolls back\n"
         "those later batches first, --force restores the old values over\n"
         "them. A rollback that would leave a record naming a removed key\n"
         "is refused too, naming the batch that wrote the record.\n"
         "--dry-run reports what would happen and writes nothing: the\n"
         "records it would write, the batches it would undo, and every\n"
         "conflict or foreign-key blocker with the option that would\n"
         "resolve it.\n"
         "With --run, undo every standing batch of import run RUN (see\n"
         "'logbook runs'): in one new batch when they are the last\n"
         "batches, else one new batch per batch of the run, newest first,\n"
         "after checking that no batch outside the run is in the way\n"
         "(--cascade also undoes the later batches built on the run).\n"},
        {"runs", cmd_runs, "runs DIR", "list import runs",
         "List the import runs recorded in the database: id (the run's\n"
         "first batch), state (running, interrupted, done), start time,\n"
         "records read, committed and set aside, the line an interrupted\n"
         "run goes on at, the SHA-256 of the file's content, the file and\n"
         "the run's standing batches. The records live in the table\n"
         "logbook.runs, which the other commands do not list.\n"},
        {"rollback-to", cmd_rollback_to, "rollback-to DIR BATCH [--dry-run]",
         "undo every batch after BATCH",
         "Undo every batch after BATCH in one new batch: afterwards the\n"
         "tables hold what they held right after BATCH. --dry-run prints\n"
         "the records it would write and the batches it would undo, and\n"
         "writes nothing.\n"},
        {"checkpoint", cmd_checkpoint, "checkpoint DIR DEST",
         "write a consistent copy and register it",
         "Write a compacted, consistent copy of the database to DEST (which\n"
         "must not exist) and register it as a checkpoint.\n"},
        {"replay", cmd_replay,
         "replay DIR DEST [--to BATCH] [--from CHECKPOINT]",
         "rebuild the database as of a batch",
         "Build in DEST (which must not exist) the database as it was right\n"
         "after batch BATCH (default: the last), from empty or from the\n"
         "checkpoint directory CHECKPOINT taken at or before it.\n"},
        {"verify", cmd_verify, "verify DIR [--replay]",
         "check checksums and the hash chain",
         "Check every segment's checksum, the segment hashes and counts,\n"
         "the hash chain and batch ids; with --replay also that replaying\n"
         "the log gives the live tables. Exit 1 if a check fails, and for\n"
         "damage that keeps the database from opening.\n"},
        {"prune", cmd_prune, "prune DIR --before BATCH",
         "drop the log of old batches",
         "Drop the log segments of every batch older than BATCH. Needs a\n"
         "checkpoint at a batch >= BATCH - 1. Pruned batches can no longer\n"
         "be shown, rolled back or replayed.\n"},
        {"stat", cmd_stat, "stat DIR",
         "size, tables, batches, log compression, checkpoints",
         "Print the size on disk, the tables with their record counts, the\n"
         "number of batches, the log's raw and stored bytes and their\n"
         "ratio (of the log that is still there: pruned batches are\n"
         "counted apart), and the registered checkpoints.\n"},
        {"compact", cmd_compact, "compact DIR",
         "give back the space of pruned segments and deleted records",
         "Rewrite the database file as a compacted copy, without the free\n"
         "pages that pruned log segments and deleted records left, and\n"
         "swap it in. Refused (exit 3) while another process has the\n"
         "database open; other processes that open it meanwhile wait.\n"
         "Registered checkpoints are forgotten (their directories stay),\n"
         "except the one a pruned log must be replayed from.\n"},
        {"serve", cmd_serve,
         "serve DIR [--listen ADDR:PORT] [--token FILE]\n"
         "       [--allow-replay-verify]",
         "browse the log in a web page (read-only HTTP server)",
         "Serve the database read-only over HTTP until Ctrl-C: a JSON API\n"
         "under /api/ and, at /, a page that shows the batches, what each\n"
         "one changed field by field, a key's history, a key as of a batch,\n"
         "the difference between two batches, a rollback preview, verify\n"
         "status and new batches as they commit (docs/SERVE.md). Nothing\n"
         "is ever written. --listen ADDR:PORT (default 127.0.0.1:8080; port\n"
         "0 picks a free one, printed at start): any address but loopback\n"
         "needs --token FILE, a bearer token (first line of FILE) that\n"
         "every request must carry, as 'Authorization: Bearer TOKEN' or,\n"
         "for the page, as ?token=TOKEN. /api/verify?replay=1 (a full\n"
         "replay) only with --allow-replay-verify.\n"},
        {"ship", cmd_ship,
         "ship DIR --nats URL --stream NAME [--follow] [--replicas R]\n"
         "       [--max-msgs N] [--max-bytes N] [--chunk-size N]",
         "publish the log's batches to a NATS JetStream stream",
         "Publish every batch of DIR that the stream NAME does not hold\n"
         "yet, in order, one message each (a frame larger than the server's\n"
         "max payload, or than --chunk-size, goes as numbered chunks).\n"
         "Creates the stream if missing (file storage, --replicas R,\n"
         "default 1, deny delete and purge; --max-msgs and --max-bytes\n"
         "limit it; a cluster that cannot place it yet is waited for).\n"
         "Resumes where the stream ends. Each publish expects\n"
         "the stream's last sequence: a second primary shipping to the\n"
         "same stream is fenced and stops (exit 1), as does a database\n"
         "whose history differs from the stream's. --follow keeps\n"
         "shipping new batches as they commit, until SIGINT or SIGTERM.\n"
         "See docs/REPLICATION.md.\n"},
        {"follow", cmd_follow,
         "follow DEST --nats URL --stream NAME [--follow]\n"
         "       [--from-checkpoint DIR] [--nosync] [--ack-wait MS]",
         "apply a stream's batches to a follower",
         "Create or open the follower DEST and apply the stream's batches\n"
         "in id order, each checked (CRC, hashes, chain) and committed\n"
         "before its messages are acknowledged. Duplicates and\n"
         "redeliveries are skipped; a damaged or forged batch, a gap or a\n"
         "fork stops it (exit 1) with nothing applied. Without --follow it\n"
         "stops once it holds the stream's last batch; with it, it goes on\n"
         "until SIGINT or SIGTERM. --from-checkpoint DIR: a DEST that does\n"
         "not exist starts as a copy of that checkpoint of the primary\n"
         "(needed once the stream's limits removed its early batches).\n"
         "A follower refuses batches of its own until promoted.\n"
         "--ack-wait MS (default 5000): a message not acknowledged within\n"
         "it is delivered again (the summary counts duplicates and\n"
         "redeliveries).\n"},
        {"replica", cmd_replica, "replica status DEST --nats URL --stream NAME",
         "a follower's lag behind its stream",
         "Print the follower's applied batch, the stream's last batch, and\n"
         "the lag between them in batches and in seconds (the difference\n"
         "of the two batches' commit times), and whom DEST follows.\n"},
        {"promote", cmd_promote, "promote DEST [--nats URL --stream NAME]",
         "make a follower a primary",
         "With --nats and --stream, first apply everything the stream\n"
         "holds; then let DEST accept batches of its own. Ship from it to a\n"
         "new stream (or to the same one, once the old primary is gone).\n"},
        {"gen", cmd_gen,
         "gen hearings [--records N] [--seed S] [--bad-rate R] [--days D]\n"
         "       [--day K] [--truth FILE]\n"
         "       gen schema",
         "generate an example data set",
         "'gen hearings' writes a deterministic daily-update data set of\n"
         "congressional hearings with their witnesses and documents as\n"
         "{\"table\": ...} lines, each hearing before the records that\n"
         "reference it. --records N per day (default 1000), --seed S\n"
         "(default 42). A share R of the records (0..1, default 0) is\n"
         "broken the ways real feeds break: a dangling hearing_id, a\n"
         "duplicate key, a missing required field, a wrong type, an\n"
         "over-long title. --days D writes D days (default 1); --day K\n"
         "only day K of them. Days after the first revise some earlier\n"
         "hearings (import them with --mode upsert) and add new ones.\n"
         "--truth FILE lists the lines an import with --on-error record\n"
         "(and --mode insert) sets aside: \"LINE KIND DEP\", KIND the\n"
         "line's own issue or -, DEP the line it depends on or -.\n"
         "'gen schema' prints the matching schema file.\n"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void help_cmd(const char *cmd, FILE *f)
{
	const command *c = cmd ? find(cmd) : NULL;
	if (!c) {
		fprintf(f, "usage: logbook COMMAND [ARGS] [--json]\n");
		return;
	}
	/* gen writes JSON lines anyway: --json changes nothing there. */
	int json = c->fn != cmd_gen;
	fprintf(f, "usage: logbook %s%s\n\n%s", c->usage,
	        json ? " [--json]" : "", c->help);
	if (json)
		fprintf(f, "\nWith --json, output is JSON (one object per line "
		           "for lists).");
	fprintf(f, "\nExit status: 0 success, 1 the data said no, 2 usage "
	           "error, 3 other error.\n");
}

static void help_all(FILE *f)
{
	fprintf(f,
	        "usage: logbook COMMAND [ARGS] [--json]\n"
	        "       logbook help [COMMAND]\n"
	        "       logbook --version\n\n"
	        "Operate a logbook database: load validated batches, see\n"
	        "what each batch changed, undo one, rebuild the past, prove\n"
	        "integrity.\n\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name,
		        commands[i].summary);
	fprintf(f, "\nRun 'logbook COMMAND --help' for the options of a "
	           "command.\n"
	           "Exit status: 0 success, 1 the data said no (failed "
	           "batches,\nconflicts, verify failures), 2 usage error, 3 "
	           "other error.\n");
}

static int version(void)
{
	int ma, mi, pa;
	const char *v = lb_version(&ma, &mi, &pa);
	printf("logbook %d.%d.%d (library %s, format %d)\n", LB_VERSION_MAJOR,
	       LB_VERSION_MINOR, LB_VERSION_PATCH, v, LB_FORMAT_VERSION);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	static char outbuf[1 << 16];
	const command *c;
	int rc;

	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	cli_help = help_cmd;
	if (argc < 2) {
		help_all(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		rc = version();
		fflush(stdout);
		return rc;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "-h")) {
		if (argc > 2) {
			c = find(argv[2]);
			if (!c) {
				fprintf(stderr,
				        "logbook: help: unknown command '%s' "
				        "(see 'logbook help')\n",
				        argv[2]);
				return CLI_USAGE;
			}
			help_cmd(c->name, stdout);
		} else {
			help_all(stdout);
		}
		fflush(stdout);
		return CLI_OK;
	}
	c = find(argv[1]);
	if (!c) {
		fprintf(stderr,
		        "logbook: unknown command '%s' (see 'logbook help')\n",
		        argv[1]);
		return CLI_USAGE;
	}
	cli_cmd = c->name;
	rc = c->fn(argc - 1, argv + 1);
	if (rc == CLI_HELP)
		rc = CLI_OK;
	if (fflush(stdout) != 0 && rc == CLI_OK) {
		fprintf(stderr, "logbook: %s: cannot write the output\n",
		        c->name);
		rc = CLI_FAIL;
	}
	return rc;
}
