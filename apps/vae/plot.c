/* vae: loss curves as an SVG line plot (see plot.h).
 *
 * Every series gets its own panel and y range, because the curves a VAE
 * logs (loss, reconstruction, KL) live on different scales; the panels share
 * the x axis so a step lines up across them. Ticks follow the usual "nice
 * numbers" rule: a step of 1, 2 or 5 x 10^k, chosen for 4 to 6 ticks, and
 * axis ends on multiples of it. */
#define _POSIX_C_SOURCE 200809L
#include "plot.h"

#include "fileio.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Layout, in SVG user units (pixels). */
enum {
    WIDTH = 820,
    MARGIN_LEFT = 84,   /* y tick labels */
    MARGIN_RIGHT = 28,
    TITLE_H = 44,       /* the plot title, when there is one */
    PANEL_TITLE_H = 26, /* series name above each panel */
    PLOT_H = 180,       /* the panel's data area */
    XTICKS_H = 36,      /* x tick labels below each panel */
    XLABEL_H = 30,      /* the x axis label under the bottom panel */
    MAX_TICKS = 12
};

static const char *const COLORS[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                     "#8c564b"};

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- a growable text buffer ----------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom; /* an append failed; everything after it is dropped */
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int need = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (need < 0) {
        b->oom = 1;
        va_end(ap2);
        return;
    }
    if ((size_t)need >= b->cap - b->len || !b->p) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap - b->len <= (size_t)need) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            va_end(ap2);
            return;
        }
        b->p = p;
        b->cap = cap;
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)need;
}

/* Text content or attribute value, XML-escaped. */
static void sb_escaped(sbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_printf(b, "&amp;"); break;
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        case '\'': sb_printf(b, "&apos;"); break;
        default:
            /* control characters are not allowed in XML 1.0 */
            sb_printf(b, "%c", (unsigned char)*s < 0x20 ? ' ' : *s);
        }
    }
}

/* ---- axes ----------------------------------------------------------------- */

typedef struct axis {
    double lo, hi;   /* the axis ends */
    double first;    /* first tick */
    double step;     /* between ticks */
    int nticks;
} axis;

/* An axis covering [dmin, dmax] (dmin > dmax: no data). */
static axis nice_axis(double dmin, double dmax) {
    if (!(dmin <= dmax)) dmin = 0, dmax = 1;
    if (dmin == dmax) { /* one value: center it */
        double d = fabs(dmin) * 0.05;
        if (!(d > 0)) d = 1;
        double lo = dmin - d, hi = dmax + d;
        /* at +-DBL_MAX widen on the side that has room */
        if (!isfinite(hi)) hi = dmax;
        if (!isfinite(lo)) lo = dmin;
        dmin = lo;
        dmax = hi;
    }
    /* ends only, for ranges the step arithmetic cannot handle (step 0) */
    axis raw = {dmin, dmax, dmin, 0, 2};
    double range = dmax - dmin;
    if (!isfinite(range) || !(range > 0)) return raw;

    axis best = raw;
    int best_score = 1 << 30;
    int e0 = (int)floor(log10(range));
    static const double mant[3] = {1, 2, 5};
    for (int e = e0 - 2; e <= e0 + 1; e++) {
        for (int m = 0; m < 3; m++) {
            double step = mant[m] * pow(10, e);
            if (!(step > 0) || !isfinite(step)) continue;
            double i0 = floor(dmin / step), i1 = ceil(dmax / step);
            double count = i1 - i0 + 1;
            if (!(count >= 2 && count <= MAX_TICKS)) continue;
            double lo = i0 * step, hi = i1 * step;
            if (!isfinite(lo) || !isfinite(hi) || !(lo < hi)) continue;
            /* 5 ticks is ideal; among equals keep the first, the finer one */
            int score = (int)fabs(count - 5);
            if (score < best_score) {
                best_score = score;
                best = (axis){lo, hi, lo, step, (int)count};
            }
        }
    }
    return best;
}

/* The k-th tick, with -0 and rounding noise near zero made a clean 0. */
static double tick_value(const axis *a, int k) {
    if (a->step == 0) return k == 0 ? a->lo : a->hi;
    double v = k == a->nticks - 1 ? a->hi : a->first + k * a->step;
    if (fabs(v) < a->step * 1e-9) v = 0;
    return v;
}

/* Format a tick label: as many digits as the step needs, exponent form for
 * very large or very small numbers. */
static void tick_label(const axis *a, double v, char *out, size_t len) {
    double maxabs = fmax(fabs(a->lo), fabs(a->hi));
    double step = a->step;
    if (step == 0) {
        snprintf(out, len, "%.4g", v);
        return;
    }
    if (maxabs >= 1e6 || (maxabs > 0 && maxabs < 1e-3)) {
        int sig = (int)floor(log10(maxabs)) - (int)floor(log10(step)) + 1;
        sig = sig < 1 ? 1 : sig > 15 ? 15 : sig;
        snprintf(out, len, "%.*g", sig, v);
    } else {
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        dec = dec < 0 ? 0 : dec > 15 ? 15 : dec;
        snprintf(out, len, "%.*f", dec, v);
    }
}

/* Position of v on an axis as a fraction of its length (0 at lo). Halving
 * first keeps hi - lo finite for ranges near DBL_MAX. */
static double frac(const axis *a, double v) {
    if (!(a->lo < a->hi)) return 0.5;
    return (v * 0.5 - a->lo * 0.5) / (a->hi * 0.5 - a->lo * 0.5);
}

/* ---- one panel -------------------------------------------------------------- */

static void draw_panel(sbuf *b, int top, const char *name, const char *color, const double *x,
                       const double *y, int n, const axis *xa) {
    const int left = MARGIN_LEFT, pw = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
    const int ptop = top + PANEL_TITLE_H, pbot = ptop + PLOT_H;
    char label[64];

    /* y range over the points that will be drawn */
    double ymin = INFINITY, ymax = -INFINITY, last = NAN;
    int npts = 0;
    for (int i = 0; i < n; i++) {
        double xi = x ? x[i] : i;
        if (!isfinite(xi) || !isfinite(y[i])) continue;
        ymin = fmin(ymin, y[i]);
        ymax = fmax(ymax, y[i]);
        last = y[i];
        npts++;
    }
    axis ya = nice_axis(ymin, ymax);

    sb_printf(b, "<g>\n<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\" fill=\"%s\">",
              left, top + 18, color);
    sb_escaped(b, name);
    sb_printf(b, "</text>\n");
    if (npts) {
        sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#555\">last %.6g, "
                     "min %.6g</text>\n",
                  left + pw, top + 18, last, ymin);
    }
    sb_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fcfcfc\" "
                 "stroke=\"none\"/>\n",
              left, ptop, pw, PLOT_H);

    /* gridlines and tick labels */
    sb_printf(b, "<g stroke=\"#e0e0e0\" stroke-width=\"1\">\n");
    for (int k = 0; k < ya.nticks; k++) {
        double py = pbot - frac(&ya, tick_value(&ya, k)) * PLOT_H;
        sb_printf(b, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\"/>\n", left, py, left + pw,
                  py);
    }
    for (int k = 0; k < xa->nticks; k++) {
        double px = left + frac(xa, tick_value(xa, k)) * pw;
        sb_printf(b, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\"/>\n", px, ptop, px, pbot);
    }
    sb_printf(b, "</g>\n<g fill=\"#333\">\n");
    for (int k = 0; k < ya.nticks; k++) {
        double v = tick_value(&ya, k);
        tick_label(&ya, v, label, sizeof label);
        sb_printf(b, "<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n", left - 8,
                  pbot - frac(&ya, v) * PLOT_H + 4, label);
    }
    for (int k = 0; k < xa->nticks; k++) {
        double v = tick_value(xa, k);
        tick_label(xa, v, label, sizeof label);
        sb_printf(b, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                  left + frac(xa, v) * pw, pbot + 17, label);
    }
    sb_printf(b, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                 "stroke=\"#888\"/>\n",
              left, ptop, pw, PLOT_H);

    if (!npts) {
        sb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#999\">"
                     "no data</text>\n",
                  left + pw / 2, ptop + PLOT_H / 2);
    }

    /* the curve: one polyline per run of finite points; a lone point is a dot */
    int run = 0;
    double fx = 0, fy = 0;
    for (int i = 0; i <= n; i++) {
        double xi = i < n ? (x ? x[i] : i) : NAN;
        double yi = i < n ? y[i] : NAN;
        if (!isfinite(xi) || !isfinite(yi)) {
            if (run == 1)
                sb_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>\n", fx, fy,
                          color);
            else if (run > 1)
                sb_printf(b, "\"/>\n");
            run = 0;
            continue;
        }
        double px = left + frac(xa, xi) * pw, py = pbot - frac(&ya, yi) * PLOT_H;
        if (run == 0) {
            fx = px, fy = py;
        } else {
            if (run == 1)
                sb_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" "
                             "stroke-linejoin=\"round\" points=\"%.2f,%.2f",
                          color, fx, fy);
            sb_printf(b, " %.2f,%.2f", px, py);
        }
        run++;
    }
    sb_printf(b, "</g>\n");
}

int plot_svg(const char *path, const char *title, const char *xlabel, const double *x, int n,
             const plot_series *series, int nseries, char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
    if (!path || !*path) {
        set_err(err, errlen, "plot_svg: path is NULL or empty");
        return -1;
    }
    if (n < 0 || nseries < 1 || !series) {
        set_err(err, errlen,
                "plot_svg: '%s': need n >= 0 and at least one series (n=%d, nseries=%d)",
                path, n, nseries);
        return -1;
    }
    for (int s = 0; s < nseries; s++) {
        if (n > 0 && !series[s].y) {
            set_err(err, errlen, "plot_svg: '%s': series %d has no values", path, s);
            return -1;
        }
    }

    /* the shared x axis */
    double xmin = INFINITY, xmax = -INFINITY;
    for (int i = 0; i < n; i++) {
        double xi = x ? x[i] : i;
        if (!isfinite(xi)) continue;
        xmin = fmin(xmin, xi);
        xmax = fmax(xmax, xi);
    }
    axis xa = nice_axis(xmin, xmax);

    int title_h = title && *title ? TITLE_H : 12;
    int panel_h = PANEL_TITLE_H + PLOT_H + XTICKS_H;
    long height = (long)title_h + (long)nseries * panel_h + XLABEL_H;

    sbuf b = {0};
    sb_printf(&b,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%ld\" "
              "viewBox=\"0 0 %d %ld\" font-family=\"Helvetica, Arial, sans-serif\" "
              "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
              WIDTH, height, WIDTH, height);
    if (title && *title) {
        sb_printf(&b, "<text x=\"%d\" y=\"28\" text-anchor=\"middle\" font-size=\"17\" "
                      "font-weight=\"bold\">",
                  WIDTH / 2);
        sb_escaped(&b, title);
        sb_printf(&b, "</text>\n");
    }
    for (int s = 0; s < nseries; s++) {
        char fallback[32];
        const char *name = series[s].name;
        if (!name) {
            snprintf(fallback, sizeof fallback, "series %d", s);
            name = fallback;
        }
        const char *color = COLORS[s % (int)(sizeof COLORS / sizeof *COLORS)];
        draw_panel(&b, title_h + s * panel_h, name, color, x, series[s].y, n, &xa);
    }
    if (xlabel && *xlabel) {
        sb_printf(&b, "<text x=\"%d\" y=\"%ld\" text-anchor=\"middle\" font-size=\"13\">",
                  MARGIN_LEFT + (WIDTH - MARGIN_LEFT - MARGIN_RIGHT) / 2, height - 12);
        sb_escaped(&b, xlabel);
        sb_printf(&b, "</text>\n");
    }
    sb_printf(&b, "</svg>\n");
    if (b.oom) {
        free(b.p);
        set_err(err, errlen, "plot_svg: '%s': out of memory", path);
        return -1;
    }
    int rc = vae_write_file_atomic(path, b.p, b.len, err, errlen);
    free(b.p);
    return rc;
}
