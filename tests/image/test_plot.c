/* apps/vae/plot.c: the SVG loss plot is written whole, names its series,
 * draws polylines, survives NaN/inf and 0 or 1 points, and fails cleanly. */
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plot.h"
#include "testutil.h"

static void make_tmpdir(void) { gvt_tmpdir_make("plot"); }
static void remove_tmpdir(void) { gvt_tmpdir_remove(); }

TestSuite(plot, .init = make_tmpdir, .fini = remove_tmpdir);

static char *tpath(const char *name) { return gvt_tmp_path(name); }

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static int count_entries(void) {
    DIR *d = opendir(gvt_tmpdir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

Test(plot, loss_curves) {
    enum { N = 375 };
    double x[N], loss[N], mse[N], kl[N];
    for (int i = 0; i < N; i++) {
        x[i] = 100.0 * (i + 1);
        loss[i] = 160.0 + 400.0 * exp(-i / 30.0);
        mse[i] = 130.0 + 390.0 * exp(-i / 25.0);
        kl[i] = 30.0 - 20.0 * exp(-i / 40.0);
    }
    const plot_series s[3] = {{"loss", loss}, {"mse", mse}, {"kl", kl}};
    char *path = tpath("loss.svg");
    char err[256] = "unset";
    cr_assert_eq(plot_svg(path, "VAE <MNIST> & friends", "step", x, N, s, 3, err, sizeof err), 0,
                 "%s", err);
    cr_assert_str_empty(err);
    size_t len;
    char *svg = gvt_read_file(path, &len);
    cr_assert(strncmp(svg, "<svg", 4) == 0);
    cr_assert(strstr(svg, "</svg>\n") == svg + len - 7, "the file does not end with </svg>");
    cr_assert(strstr(svg, ">loss<") && strstr(svg, ">mse<") && strstr(svg, ">kl<"));
    cr_assert(strstr(svg, ">step<"));
    cr_assert(strstr(svg, "VAE &lt;MNIST&gt; &amp; friends"), "the title is not escaped");
    cr_assert_eq(count(svg, "<polyline"), 3);
    cr_assert(strstr(svg, ">40000<"), "x ticks 0..40000 expected");
    cr_assert(!strstr(svg, "nan") && !strstr(svg, "inf"));
    cr_assert_eq(count_entries(), 1, "a temporary file was left behind");
    free(svg);

    /* replaced on a second write */
    const plot_series one[1] = {{"only", kl}};
    cr_assert_eq(plot_svg(path, NULL, NULL, NULL, N, one, 1, err, sizeof err), 0, "%s", err);
    svg = gvt_read_file(path, &len);
    cr_assert(strstr(svg, ">only<") && !strstr(svg, ">loss<"));
    cr_assert_eq(count_entries(), 1);
    free(svg);
    free(path);
}

Test(plot, nan_and_inf_break_the_line) {
    double x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    double y[8] = {1, 2, NAN, 3, 4, INFINITY, 5, -INFINITY};
    double allnan[8] = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    const plot_series s[2] = {{"y", y}, {"nothing", allnan}};
    char *path = tpath("nan.svg");
    char err[256];
    cr_assert_eq(plot_svg(path, "t", "x", x, 8, s, 2, err, sizeof err), 0, "%s", err);
    size_t len;
    char *svg = gvt_read_file(path, &len);
    /* runs {1,2} and {3,4} are lines, {5} is a dot */
    cr_assert_eq(count(svg, "<polyline"), 2);
    cr_assert_eq(count(svg, "<circle"), 1);
    cr_assert(strstr(svg, "no data"));
    cr_assert(!strstr(svg, "nan") && !strstr(svg, "inf"));
    free(svg);
    free(path);
}

Test(plot, zero_and_one_point) {
    double x1 = 100, y1 = 0.25;
    const plot_series s0[1] = {{"loss", NULL}};
    const plot_series s1[1] = {{"loss", &y1}};
    char *p0 = tpath("zero.svg"), *p1 = tpath("one.svg");
    char err[256];
    cr_assert_eq(plot_svg(p0, "empty", "step", NULL, 0, s0, 1, err, sizeof err), 0, "%s", err);
    cr_assert_eq(plot_svg(p1, "one", "step", &x1, 1, s1, 1, err, sizeof err), 0, "%s", err);
    size_t len;
    char *svg = gvt_read_file(p0, &len);
    cr_assert(strncmp(svg, "<svg", 4) == 0 && strstr(svg, "no data") && !strstr(svg, "<polyline"));
    free(svg);
    svg = gvt_read_file(p1, &len);
    cr_assert(strncmp(svg, "<svg", 4) == 0 && strstr(svg, "<circle") && !strstr(svg, "<polyline"));
    cr_assert(!strstr(svg, "nan") && !strstr(svg, "inf"));
    free(svg);
    free(p0);
    free(p1);
}

Test(plot, errors) {
    double y[2] = {1, 2};
    const plot_series s[1] = {{"loss", y}};
    char *missing = tpath("no/such/dir/loss.svg");
    char err[256] = "";
    cr_assert_eq(plot_svg(missing, "t", "x", NULL, 2, s, 1, err, sizeof err), -1);
    cr_assert(strstr(err, "no/such/dir") && strstr(err, "No such file"), "%s", err);
    cr_assert_eq(count_entries(), 0);

    char *path = tpath("x.svg");
    cr_assert_eq(plot_svg(path, "t", "x", NULL, 2, s, 0, err, sizeof err), -1);
    cr_assert(strstr(err, "series"), "%s", err);
    cr_assert_eq(plot_svg(path, "t", "x", NULL, -1, s, 1, err, sizeof err), -1);
    cr_assert_eq(plot_svg(NULL, "t", "x", NULL, 2, s, 1, err, sizeof err), -1);
    const plot_series nully[1] = {{"loss", NULL}};
    cr_assert_eq(plot_svg(path, "t", "x", NULL, 2, nully, 1, err, sizeof err), -1);
    /* err may be NULL */
    cr_assert_eq(plot_svg(missing, "t", "x", NULL, 2, s, 1, NULL, 0), -1);
    /* a tiny err buffer is truncated, not overrun */
    char tiny[8];
    cr_assert_eq(plot_svg(missing, "t", "x", NULL, 2, s, 1, tiny, sizeof tiny), -1);
    cr_assert_eq(strlen(tiny), sizeof tiny - 1);
    cr_assert_eq(count_entries(), 0);
    free(missing);
    free(path);
}
