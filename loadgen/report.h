#ifndef LG_REPORT_H
#define LG_REPORT_H

#include <stdio.h>

#include "loadgen.h"

/* The stdout table: a header, then one row per point as it finishes. */
void lg_report_header(FILE *f, const lg_cfg_t *cfg);
void lg_report_row(FILE *f, const lg_point_t *pt);

/* Every figure of every point; LANES_EIO (logged) when the file cannot be written. */
int lg_report_json(const char *path, const lg_cfg_t *cfg, const lg_point_t *pts, int n);
int lg_report_csv(const char *path, const lg_point_t *pts, int n);

/* Draws tok/s and TTFT/ITL percentiles against streams with gnuplot (png or svg by extension).
 * LANES_ENOENT (logged, nothing drawn) when gnuplot is not on PATH; LANES_EIO when it fails. */
int lg_report_plot(const char *path, const lg_point_t *pts, int n);

#endif
