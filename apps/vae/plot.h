/* vae: loss curves as an SVG line plot, one panel per series. */
#ifndef VAE_PLOT_H
#define VAE_PLOT_H

#include <stddef.h>

typedef struct plot_series {
    const char *name; /* the panel's title */
    const double *y;  /* n values; NaN or inf is a gap in the line */
} plot_series;

/* Write an SVG with one panel per series (stacked vertically, shared x axis),
 * each with its own y range and "nice" ticks (1, 2 or 5 x 10^k), gridlines,
 * the series name and its last value as the panel title, and xlabel under the
 * bottom panel. x holds n values (x NULL: 0, 1, ..., n-1); n may be 0 (empty
 * panels) or 1 (a dot). Points where x or y is NaN/inf are skipped and break
 * the line. The file is replaced atomically (written to "<path>.tmp.<pid>",
 * fsync'd, renamed). Returns 0, or -1 with a message in err (errlen bytes;
 * err may be NULL). */
int plot_svg(const char *path, const char *title, const char *xlabel, const double *x, int n,
             const plot_series *series, int nseries, char *err, size_t errlen);

#endif
