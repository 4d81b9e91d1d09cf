#ifndef LG_REPORT_H
#define LG_REPORT_H

#include <stdio.h>

#include "loadgen.h"

/* The stdout table: a header (with the model once the server named it), then one row per point
 * as it finishes. */
void lg_report_header(FILE *f, const lg_cfg_t *cfg, const lg_meta_t *meta);
void lg_report_row(FILE *f, const lg_point_t *pt);

/* s as a JSON string (quotes, backslashes and control bytes escaped), or null when it is empty. */
void lg_json_str_or_null(FILE *f, const char *s);

/* The run's metadata, the configuration and every figure of every point; interrupted marks a run
 * cut short by SIGINT. LANES_EIO (logged) when the file cannot be written. */
int lg_report_json(const char *path, const lg_cfg_t *cfg, const lg_meta_t *meta,
                   const lg_point_t *pts, int n, int interrupted);
int lg_report_csv(const char *path, const lg_point_t *pts, int n);

/* Draws three panels with gnuplot (png or svg by extension), titled with the model and settings:
 * tok/s against streams, TTFT/ITL percentiles against streams, and per-stream tok/s against
 * aggregate tok/s. LANES_ENOENT (logged, nothing drawn) when gnuplot is not on PATH; LANES_EIO
 * when it fails. */
int lg_report_plot(const char *path, const lg_cfg_t *cfg, const lg_meta_t *meta,
                   const lg_point_t *pts, int n);

#endif
