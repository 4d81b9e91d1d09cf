/* lanes-loadgen: sweeps a server over stream counts; see docs/LOADGEN.md.
 * Exit codes: 0 all points complete (and --check clean), 1 run failed, 2 bad flags, 130 interrupted
 * by SIGINT (what finished is written first). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/lanes_err.h"
#include "base/lanes_log.h"
#include "loadgen.h"
#include "report.h"

/* The table header goes out with the first row, so a server that cannot be reached gets an error
 * line and no empty table. */
typedef struct {
    const lg_cfg_t *cfg;
    const lg_meta_t *meta;
    int rows;
} table_t;

static void on_point(const lg_point_t *pt, void *arg) {
    table_t *t = arg;
    if (t->rows++ == 0) lg_report_header(stdout, t->cfg, t->meta);
    lg_report_row(stdout, pt);
    if (t->cfg->progress == 0)                   /* no live line on stderr: one line per point */
        LANES_LOG(LANES_LOG_INFO, "loadgen: point %d of %d %s: %.0f streams, %.0f requests, %.1f tok/s, %.1f s",
                  t->rows, t->cfg->n_points, pt->complete ? "done" : "cut short", pt->streams,
                  pt->requests_ok + pt->requests_err, pt->tok_s, pt->elapsed_s);
}

int main(int argc, char **argv) {
    lg_cfg_t cfg;
    int rc = lg_cfg_parse(&cfg, argc, argv);
    if (rc != LANES_OK) {
        lg_usage(argv[0]);
        return rc > 0 ? 0 : 2;
    }
    if (cfg.progress >= 0) cfg.progress = isatty(STDERR_FILENO) ? 1 : 0;
    signal(SIGPIPE, SIG_IGN);                    /* a vanished server is an error, not a signal */

    static lg_point_t points[LG_MAX_POINTS];
    static lg_meta_t meta;
    int n = 0;
    table_t table = {&cfg, &meta, 0};
    rc = lg_run(&cfg, points, &n, &meta, on_point, &table);

    int fail = rc < 0;
    long long mismatches = 0, check_errors = 0, complete = 0;
    for (int i = 0; i < n; i++) {
        mismatches += (long long)points[i].check_mismatches;
        check_errors += (long long)points[i].requests_err;
        complete += points[i].complete;
    }
    if (rc < 0 && rc != LANES_ECANCELED)
        LANES_LOG(LANES_LOG_ERROR, "loadgen: run failed (%s) after %lld of %d points completed",
                  rc == LANES_EPROTO ? "bad reply from the server" : lanes_strerror(rc), complete,
                  cfg.n_points);
    if (cfg.check) {
        if (mismatches > 0 || check_errors > 0) {
            LANES_LOG(LANES_LOG_ERROR, "loadgen: check FAILED: %lld streams differ from the greedy "
                      "baseline, %lld requests ended in errors", mismatches, check_errors);
            fail = 1;
        } else if (rc == LANES_OK) {
            LANES_LOG(LANES_LOG_INFO, "loadgen: check passed: every stream matched its baseline");
        }
    }
    /* Write what finished even when the run failed or was interrupted midway. */
    int interrupted = rc == LANES_ECANCELED;
    if (n > 0) {
        if (cfg.json_path && lg_report_json(cfg.json_path, &cfg, &meta, points, n, interrupted) < 0)
            fail = 1;
        if (cfg.csv_path && lg_report_csv(cfg.csv_path, points, n) < 0) fail = 1;
        if (cfg.plot_path) {
            int prc = lg_report_plot(cfg.plot_path, &cfg, &meta, points, n);
            if (prc < 0 && prc != LANES_ENOENT) fail = 1;
        }
    }
    if (interrupted) {
        LANES_LOG(LANES_LOG_WARN, "loadgen: interrupted after %lld of %d points completed", complete,
                  cfg.n_points);
        return 130;
    }
    return fail ? 1 : 0;
}
