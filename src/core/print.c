/* Printing tensors exactly as numpy 1.24 and JAX do.
 *
 * This follows numpy/core/arrayprint.py (array2string, _formatArray,
 * FloatingFormat, IntegerFormat, BoolFormat) with numpy's defaults for the
 * options grove does not expose (floatmode 'maxprec', suppress False, sign '-',
 * legacy False), and numpy's Dragon4 (numpy/core/src/multiarray/dragon4.c) for
 * float digits. Dragon4 compares the value, its digits and the midpoints to its
 * neighbours exactly; instead of a bignum we use exact decimal expansions:
 * glibc's printf prints a double exactly when asked for enough decimals, and
 * every quantity Dragon4 compares is (twice) a sum of such doubles.
 *
 * Output is built in growable buffers; an allocation failure sets the
 * buffer's oom flag, which the public functions turn into GV_ERR_NOMEM. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "tensor_internal.h"

/* ---- growable strings ---- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->oom || n == 0) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }
static void sb_putc(sbuf *b, char c) { sb_putn(b, &c, 1); }
static void sb_rep(sbuf *b, char c, long long n) {
    for (; n > 0; n--) sb_putc(b, c);
}
static char sb_last(const sbuf *b) { return b->n ? b->p[b->n - 1] : '\0'; }
static void sb_pop(sbuf *b) { b->p[--b->n] = '\0'; }

/* ---- Dragon4 (dragon4.c: Dragon4) with exact decimal arithmetic ---- */

enum { CUT_TOTAL, CUT_FRACTION };                        /* CutoffMode */
enum { TRIM_NONE, TRIM_ZEROS, TRIM_ONE_ZERO, TRIM_DPT }; /* trim 'k', '.', '0', '-' */
#define NO_CUTOFF INT_MIN

/* Fixed-point decimals: digit arrays of a common length len, where index i
 * holds the digit of weight 10^(w-1-i). */
typedef struct dec {
    unsigned char *v, *l2, *h2, *t, *t2, *tu, *x; /* x: scratch */
    int len, w;
} dec;

/* The exact expansion of x >= 0 with frac decimals, malloc'd. */
static char *exact_str(double x, int frac) {
    int m = snprintf(NULL, 0, "%.*f", frac, x);
    char *s = m >= 0 ? malloc((size_t)m + 1) : NULL;
    if (s) snprintf(s, (size_t)m + 1, "%.*f", frac, x);
    return s;
}

/* Place the expansion s in a (if not NULL) and return the position (power of
 * ten) of its first non-zero digit. */
static int dec_parse(const dec *d, unsigned char *a, const char *s) {
    const char *dot = strchr(s, '.');
    int pos = (int)(dot ? dot - s : (ptrdiff_t)strlen(s)) - 1, first = INT_MIN;
    if (a) memset(a, 0, (size_t)d->len);
    for (; *s; s++) {
        if (*s == '.') continue;
        if (first == INT_MIN && *s != '0') first = pos;
        if (a) a[d->w - 1 - pos] = (unsigned char)(*s - '0');
        pos--;
    }
    return first;
}

static bool dec_set(const dec *d, unsigned char *a, double x, int frac) {
    char *s = exact_str(x, frac);
    if (s) dec_parse(d, a, s);
    free(s);
    return s != NULL;
}

static void dec_add(const dec *d, unsigned char *out, const unsigned char *a,
                    const unsigned char *b) {
    int carry = 0;
    for (int i = d->len - 1; i >= 0; i--) {
        int s = a[i] + b[i] + carry;
        out[i] = (unsigned char)(s % 10), carry = s / 10;
    }
}

/* a += one unit at index i */
static void dec_add_unit(unsigned char *a, int i) {
    for (; i >= 0 && a[i] == 9; i--) a[i] = 0;
    if (i >= 0) a[i]++;
}

/* Digits of |x| (finite, non-zero) as numpy's Dragon4 makes them in
 * DigitMode_Unique: the shortest that identify the value among its float32 or
 * float64 neighbours (midpoints count when the mantissa is even), stopping at
 * cutoff_max and not before cutoff_min (digit counts for CUT_TOTAL, decimals
 * for CUT_FRACTION; -1 for none). *exp10 gets the first digit's power of ten. */
static void dragon4(double x, bool f32, int mode, int cutoff_max, int cutoff_min, sbuf *out,
                    int *exp10) {
    double prev, next;
    bool even;
    if (f32) {
        float f = (float)fabs(x);
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        x = f, even = !(bits & 1), prev = nextafterf(f, 0), next = nextafterf(f, INFINITY);
    } else {
        uint64_t bits;
        x = fabs(x);
        memcpy(&bits, &x, sizeof bits);
        even = !(bits & 1), prev = nextafter(x, 0), next = nextafter(x, INFINITY);
    }
    /* x - prev is a power of two that divides x, prev and next: printing
     * this many decimals is exact */
    double spacing = x - prev;
    int e2;
    frexp(spacing, &e2); /* spacing = 2^(e2 - 1) */
    int frac = e2 < 2 ? 2 - e2 : 0;
    char *vs = exact_str(x, frac);
    if (!vs) {
        out->oom = true;
        return;
    }
    /* digitExponent, one above the first digit: dragon4.c estimates it from
     * log10 and corrects the estimate; we read it off the expansion */
    dec d = {0};
    int first = dec_parse(&d, NULL, vs), digit_exp = first + 1;
    if (mode == CUT_FRACTION && cutoff_max >= 0 && digit_exp <= -cutoff_max)
        digit_exp = -cutoff_max + 1;
    int cut_max = NO_CUTOFF, cut_min = digit_exp;
    if (cutoff_max >= 0) cut_max = mode == CUT_TOTAL ? digit_exp - cutoff_max : -cutoff_max;
    if (cutoff_min >= 0) {
        int want = mode == CUT_TOTAL ? digit_exp - cutoff_min : -cutoff_min;
        if (want < cut_min) cut_min = want;
    }
    int lowest = -frac;
    if (cut_min < lowest) lowest = cut_min;
    if (cut_max != NO_CUTOFF && cut_max < lowest) lowest = cut_max;
    d.w = (first > 0 ? first + 1 : 1) + 3; /* room for carries and doubling */
    d.len = d.w - lowest + 1;
    unsigned char **arrays[] = {&d.v, &d.l2, &d.h2, &d.t, &d.t2, &d.tu, &d.x};
    size_t narrays = sizeof arrays / sizeof arrays[0];
    unsigned char *mem = calloc(narrays, (size_t)d.len);
    for (size_t k = 0; mem && k < narrays; k++) *arrays[k] = mem + k * (size_t)d.len;
    if (mem) dec_parse(&d, d.v, vs);
    free(vs);
    /* twice the midpoints to the neighbours: l2 = x + prev, h2 = x + next
     * (past the largest float, numpy keeps the margins symmetric) */
    bool ok = mem && dec_set(&d, d.x, prev, frac);
    if (ok) dec_add(&d, d.l2, d.v, d.x);
    ok = ok && dec_set(&d, d.x, isinf(next) ? spacing : next, frac);
    if (ok) dec_add(&d, d.h2, d.v, d.x);
    if (ok && isinf(next)) dec_add(&d, d.h2, d.h2, d.v);
    if (!ok) {
        free(mem);
        out->oom = true;
        return;
    }
    *exp10 = digit_exp - 1;

    /* Dragon4's digit loop: t is x truncated after the digit at pos;
     * low: t still reads back as x, high: t + 10^pos does */
    size_t start = out->n;
    int pos = digit_exp - 1, i, digit, c;
    bool low, high;
    for (;; pos--) {
        i = d.w - 1 - pos;
        digit = d.v[i];
        d.t[i] = (unsigned char)digit;
        dec_add(&d, d.t2, d.t, d.t);
        c = memcmp(d.t2, d.l2, (size_t)d.len);
        low = even ? c >= 0 : c > 0;
        memcpy(d.tu, d.t, (size_t)d.len);
        dec_add_unit(d.tu, i);
        dec_add(&d, d.tu, d.tu, d.tu);
        c = memcmp(d.h2, d.tu, (size_t)d.len);
        high = even ? c >= 0 : c > 0;
        if (((low || high) && pos <= cut_min) || pos == cut_max) break;
        sb_putc(out, (char)('0' + digit));
    }
    /* the last digit: the nearer of t and t + 10^pos when both or neither
     * read back (ties to an even digit), else the one that does */
    bool round_down = low;
    if (low == high) {
        dec_add(&d, d.x, d.v, d.v);
        memcpy(d.tu, d.t2, (size_t)d.len);
        dec_add_unit(d.tu, i);
        c = memcmp(d.x, d.tu, (size_t)d.len);
        round_down = c < 0 || (c == 0 && digit % 2 == 0);
    }
    free(mem);
    if (round_down || digit < 9) {
        sb_putc(out, (char)('0' + digit + !round_down));
        return;
    }
    while (out->n > start && sb_last(out) == '9') sb_pop(out); /* carry */
    if (out->n > start) {
        out->p[out->n - 1]++;
    } else {
        sb_putc(out, '1');
        (*exp10)++;
    }
}

/* ---- dragon4.c: FormatPositional / FormatScientific ---- */

typedef struct fopts {
    bool sci;
    int precision, min_digits; /* sci: digits after the point; -1 for none */
    int trim;
    int pad_left, pad_right, exp_digits; /* -1 for none */
} fopts;

/* Append finite x as numpy's dragon4_positional(fractional=True) or
 * dragon4_scientific with unique=True and sign='-'. */
static void format_finite(sbuf *o, double x, bool f32, const fopts *f) {
    sbuf dig = {0}, b = {0};
    int e10 = 0;
    bool neg = signbit(x);
    if (x == 0)
        sb_putc(&dig, '0');
    else if (f->sci)
        dragon4(x, f32, CUT_TOTAL, f->precision < 0 ? -1 : f->precision + 1,
                f->min_digits < 0 ? -1 : f->min_digits + 1, &dig, &e10);
    else
        dragon4(x, f32, CUT_FRACTION, f->precision, f->min_digits, &dig, &e10);
    if (dig.oom) {
        free(dig.p);
        o->oom = true;
        return;
    }
    int n = (int)dig.n, nfrac = 0, whole = 1, add = f->min_digits < 0 ? 0 : f->min_digits;
    if (f->sci) {
        sb_putc(&b, dig.p[0]);
        nfrac = n - 1;
        if (nfrac > 0) sb_putc(&b, '.'), sb_putn(&b, dig.p + 1, (size_t)nfrac);
    } else if (e10 >= 0) {
        whole = e10 + 1;
        sb_putn(&b, dig.p, (size_t)(n < whole ? n : whole));
        sb_rep(&b, '0', whole - n);
        if (n > whole) sb_putc(&b, '.'), sb_putn(&b, dig.p + whole, (size_t)(n - whole));
        nfrac = n > whole ? n - whole : 0;
    } else {
        sb_puts(&b, "0."), sb_rep(&b, '0', -(e10 + 1)), sb_putn(&b, dig.p, (size_t)n);
        nfrac = n - (e10 + 1);
    }
    free(dig.p);
    if (f->trim != TRIM_DPT && nfrac == 0) sb_putc(&b, '.');
    if (f->trim == TRIM_ONE_ZERO && nfrac == 0)
        sb_putc(&b, '0'), nfrac++;
    else if (f->trim == TRIM_NONE && add > nfrac)
        sb_rep(&b, '0', add - nfrac), nfrac = add;
    if (f->trim != TRIM_NONE && nfrac > 0) { /* rounding can leave trailing zeros */
        while (sb_last(&b) == '0') sb_pop(&b), nfrac--;
        if (sb_last(&b) == '.' && f->trim == TRIM_ONE_ZERO) sb_putc(&b, '0'), nfrac++;
        else if (sb_last(&b) == '.' && f->trim == TRIM_DPT && !f->sci) sb_pop(&b);
    }
    if (f->sci) {
        int ed = f->exp_digits > 5 ? 5 : f->exp_digits < 0 ? 2 : f->exp_digits;
        char ebuf[16]; /* |e10| < 400: cannot truncate */
        snprintf(ebuf, sizeof ebuf, "e%c%0*d", e10 < 0 ? '-' : '+', ed, abs(e10));
        sb_puts(&b, ebuf);
        sb_rep(o, ' ', f->pad_left - 1 - neg);
    } else {
        if (f->pad_right >= nfrac) {
            if (f->trim == TRIM_DPT && nfrac == 0) sb_putc(&b, ' ');
            sb_rep(&b, ' ', f->pad_right - nfrac);
        }
        sb_rep(o, ' ', f->pad_left - whole - neg);
    }
    if (neg) sb_putc(o, '-');
    sb_putn(o, b.p, b.n);
    o->oom |= b.oom;
    free(b.p);
}

/* ---- element formatters: FloatingFormat, IntegerFormat, BoolFormat ---- */

typedef struct elem_fmt {
    gv_dtype dtype;
    const void *data;
    bool scalar;   /* 0-d: BoolFormat prints "True", not " True" */
    int int_width; /* IntegerFormat */
    fopts f;       /* FloatingFormat, and what fillFormat gathers: */
    bool have_nonzero, have_finite, have_nonfinite, have_neginf, oom;
    double max_abs, min_abs;
    int max_int, max_frac, max_exp;
} elem_fmt;

static double load_float(const elem_fmt *ef, int64_t i) {
    return ef->dtype == GV_F32 ? ((const float *)ef->data)[i] : ((const double *)ef->data)[i];
}

/* str() of an integer element; buf holds any 64-bit value */
static int int_str(char buf[32], const elem_fmt *ef, int64_t i) {
    if (ef->dtype == GV_U64)
        return snprintf(buf, 32, "%llu", (unsigned long long)((const uint64_t *)ef->data)[i]);
    if (ef->dtype == GV_I64)
        return snprintf(buf, 32, "%lld", (long long)((const int64_t *)ef->data)[i]);
    return snprintf(buf, 32, "%lld", (long long)gv_load_f64(ef->dtype, ef->data, i));
}

/* Phase 1 sees every value the format is computed from; phase 2 (floats)
 * prints the finite ones to measure them, as fillFormat's first pass does. */
static void observe(elem_fmt *ef, int phase, int64_t i) {
    if (ef->dtype == GV_BOOL) return;
    if (!gv_dtype_is_float(ef->dtype)) {
        /* numpy's max(len(str(max)), len(str(min))) is the widest of all */
        char buf[32];
        int n = int_str(buf, ef, i);
        if (n > ef->int_width) ef->int_width = n;
        return;
    }
    double x = load_float(ef, i), a = fabs(x);
    if (!isfinite(x)) {
        ef->have_nonfinite = true;
        ef->have_neginf |= isinf(x) && x < 0;
    } else if (phase == 1) {
        ef->have_finite = true;
        if (a != 0 && (!ef->have_nonzero || a > ef->max_abs)) ef->max_abs = a;
        if (a != 0 && (!ef->have_nonzero || a < ef->min_abs)) ef->min_abs = a;
        ef->have_nonzero |= a != 0;
    } else {
        sbuf s = {0};
        format_finite(&s, x, ef->dtype == GV_F32, &ef->f);
        ef->oom |= s.oom;
        if (s.oom) return;
        char *e = strchr(s.p, 'e'), *dot = strchr(s.p, '.');
        int end = e ? (int)(e - s.p) : (int)s.n;
        int ilen = dot ? (int)(dot - s.p) : end, flen = dot ? end - ilen - 1 : 0;
        if (ilen > ef->max_int) ef->max_int = ilen;
        if (flen > ef->max_frac) ef->max_frac = flen;
        if (e && (int)strlen(e + 1) > ef->max_exp) ef->max_exp = (int)strlen(e + 1);
        free(s.p);
    }
}

/* Visit the values the format is computed from: all, or when summarising the
 * leading and trailing edge items of each axis (_leading_trailing; as
 * a[-0:] is the whole axis, edgeitems 0 keeps everything). */
static void visit(elem_fmt *ef, int phase, const gv_tensor *t, const int64_t *strides, int axis,
                  int64_t off, int64_t edge, bool summarise) {
    if (axis == t->rank) {
        observe(ef, phase, off);
        return;
    }
    int64_t n = t->shape[axis];
    bool cut = summarise && edge > 0 && n > 2 * edge;
    for (int64_t i = 0; i < n; i++) {
        if (cut && i == edge) i = n - edge;
        visit(ef, phase, t, strides, axis + 1, off + i * strides[axis], edge, summarise);
    }
}

/* FloatingFormat.fillFormat / IntegerFormat.__init__ on the visited values. */
static void fill_format(elem_fmt *ef, const gv_tensor *t, const int64_t *strides, int64_t edge,
                        bool summarise, int precision) {
    visit(ef, 1, t, strides, 0, 0, edge, summarise);
    if (!gv_dtype_is_float(ef->dtype)) return;
    bool exp = false;
    if (ef->have_nonzero) {
        /* numpy compares float32 max/min with Python floats in double, but
         * divides them in float32 (overflow to inf counts as > 1000) */
        double ratio = ef->dtype == GV_F32 ? (double)((float)ef->max_abs / (float)ef->min_abs)
                                           : ef->max_abs / ef->min_abs;
        exp = ef->max_abs >= 1e8 || ef->min_abs < 0.0001 || ratio > 1000.;
    }
    ef->f = (fopts){.sci = exp, .precision = precision, .min_digits = -1, .trim = TRIM_ZEROS,
                    .pad_left = -1, .pad_right = -1, .exp_digits = -1};
    if (!ef->have_finite) {
        ef->f.pad_left = ef->f.pad_right = 0;
    } else {
        visit(ef, 2, t, strides, 0, 0, edge, summarise);
        ef->f.pad_left = ef->max_int;
        if (exp) { /* every value gets the longest fraction, digits kept ('k') */
            ef->f.exp_digits = ef->max_exp - 1;
            ef->f.trim = TRIM_NONE;
            ef->f.precision = ef->f.min_digits = ef->max_frac;
            ef->f.pad_right = ef->f.exp_digits + 2 + ef->f.precision;
        } else {
            ef->f.pad_right = ef->max_frac;
            ef->f.min_digits = 0;
        }
    }
    if (ef->have_nonfinite) { /* room for "nan", "inf" and "-inf" */
        int offset = ef->f.pad_right + 1, inflen = 3 + ef->have_neginf;
        if (3 - offset > ef->f.pad_left) ef->f.pad_left = 3 - offset;
        if (inflen - offset > ef->f.pad_left) ef->f.pad_left = inflen - offset;
    }
}

static void format_elem(const elem_fmt *ef, int64_t i, sbuf *o) {
    if (ef->dtype == GV_BOOL) {
        bool v = ((const uint8_t *)ef->data)[i] != 0;
        sb_puts(o, v ? (ef->scalar ? "True" : " True") : "False");
        return;
    }
    if (!gv_dtype_is_float(ef->dtype)) {
        char buf[32];
        sb_rep(o, ' ', ef->int_width - int_str(buf, ef, i));
        sb_puts(o, buf);
        return;
    }
    double x = load_float(ef, i);
    if (isfinite(x)) {
        format_finite(o, x, ef->dtype == GV_F32, &ef->f);
        return;
    }
    const char *s = isnan(x) ? "nan" : x < 0 ? "-inf" : "inf";
    sb_rep(o, ' ', ef->f.pad_left + ef->f.pad_right + 1 - (long long)strlen(s));
    sb_puts(o, s);
}

/* ---- _formatArray ---- */

typedef struct fa_ctx {
    const gv_tensor *t;
    const elem_fmt *ef;
    const int64_t *strides;
    const char *sep;
    size_t sep_rstrip; /* len(separator.rstrip()) */
    int64_t edge;
    bool summarise;
} fa_ctx;

/* _extendLine: start a new line when the word does not fit, unless the line
 * holds nothing but the indent (wrapping would not help). */
static void extend_line(sbuf *s, sbuf *line, const char *word, size_t len, long long width,
                        int hang) {
    if ((long long)(line->n + len) > width && line->n > (size_t)hang) {
        size_t n = line->n; /* line.rstrip(): drop the separator's space, padding */
        while (n > 0 && line->p[n - 1] == ' ') n--;
        sb_putn(s, line->p, n);
        sb_putc(s, '\n');
        line->n = 0;
        sb_rep(line, ' ', hang);
    }
    sb_putn(line, word, len);
}

/* One element of a row, followed by the separator unless it is the last. */
static void row_item(const fa_ctx *c, int64_t off, sbuf *s, sbuf *line, sbuf *word,
                     long long width, int hang, bool more) {
    word->n = 0;
    format_elem(c->ef, off, word);
    extend_line(s, line, word->p, word->n, width, hang);
    line->oom |= word->oom;
    if (more) sb_puts(line, c->sep);
}

/* recurser(index, hanging_indent, curr_width), where the hanging indent is
 * `hang` spaces: appends "[...]" for the sub-array at flat offset off. */
static void recurse(const fa_ctx *c, int axis, int64_t off, int hang, long long width,
                    sbuf *out) {
    int64_t n = c->t->shape[axis], stride = c->strides[axis];
    bool summary = c->summarise && 2 * c->edge < n;
    int64_t leading = summary ? c->edge : 0, trailing = summary ? c->edge : n;
    sbuf s = {0};
    if (axis == c->t->rank - 1) {
        /* the last axis: wrap elements at the width less room for ',' or ']' */
        long long elem_width = width - (long long)(c->sep_rstrip > 1 ? c->sep_rstrip : 1);
        sbuf line = {0}, word = {0};
        sb_rep(&line, ' ', hang);
        for (int64_t k = 0; k < leading; k++)
            row_item(c, off + k * stride, &s, &line, &word, elem_width, hang, true);
        if (summary) {
            extend_line(&s, &line, "...", 3, elem_width, hang);
            sb_puts(&line, c->sep);
        }
        for (int64_t k = n - trailing; k < n - 1; k++)
            row_item(c, off + k * stride, &s, &line, &word, elem_width, hang, true);
        row_item(c, off + (n - 1) * stride, &s, &line, &word, elem_width, hang, false);
        sb_putn(&s, line.p, line.n);
        s.oom |= line.oom;
        free(line.p), free(word.p);
    } else {
        /* other axes: a sub-array per line, rank - axis - 1 newlines apart
         * (so blank lines between the blocks of rank >= 3 arrays) */
        long long newlines = c->t->rank - axis - 1;
        for (int64_t k = 0; k < n; k++) {
            if (k == leading && summary) {
                sb_rep(&s, ' ', hang), sb_puts(&s, "...");
                sb_putn(&s, c->sep, c->sep_rstrip), sb_rep(&s, '\n', newlines);
                k = n - trailing;
                if (k > n - 1) k = n - 1; /* the last item always shows */
            }
            sb_rep(&s, ' ', hang);
            recurse(c, axis + 1, off + k * stride, hang + 1, width - 1, &s);
            if (k < n - 1) sb_putn(&s, c->sep, c->sep_rstrip), sb_rep(&s, '\n', newlines);
        }
    }
    /* '[' + s[len(hanging_indent):] + ']' */
    sb_putc(out, '[');
    if (s.n > (size_t)hang) sb_putn(out, s.p + hang, s.n - (size_t)hang);
    sb_putc(out, ']');
    out->oom |= s.oom;
    free(s.p);
}

/* ---- array2string, str, repr ---- */

gv_print_options gv_print_options_default(void) {
    return (gv_print_options){.precision = 8, .linewidth = 75, .threshold = 1000,
                              .edgeitems = 3};
}

/* numpy raises ValueError for a negative precision or edgeitems too */
static bool check_args(const char *what, const gv_tensor *t, const gv_print_options *o) {
    if (!t) return gv_error(GV_ERR_ARG, "%s: tensor is NULL", what), false;
    if (o && (o->precision < 0 || o->edgeitems < 0))
        return gv_error(GV_ERR_ARG, "%s: precision and edgeitems must be >= 0 (got %d, %d)",
                        what, o->precision, o->edgeitems), false;
    return true;
}

static char *finish(const char *what, sbuf *b) {
    if (!b->oom && !b->p) b->oom = !(b->p = calloc(1, 1));
    if (b->oom) {
        free(b->p);
        gv_error(GV_ERR_NOMEM, "%s: out of memory", what);
        return NULL;
    }
    return b->p;
}

/* array2string(a, linewidth, precision, threshold, edgeitems, separator,
 * prefix, suffix) of a non-empty tensor: prefix and suffix only count for the
 * widths, as numpy's do. */
static void array2string(sbuf *out, const gv_tensor *t, const gv_print_options *o,
                         const char *sep, int prefix_len, int suffix_len) {
    int64_t *strides = malloc(((size_t)t->rank + 1) * sizeof *strides);
    if (!strides) {
        out->oom = true;
        return;
    }
    for (int64_t a = t->rank - 1, stride = 1; a >= 0; a--)
        strides[a] = stride, stride *= t->shape[a];
    bool summarise = t->size > o->threshold;
    elem_fmt ef = {.dtype = t->dtype, .data = gv_tensor_data_const(t), .scalar = t->rank == 0};
    fill_format(&ef, t, strides, o->edgeitems, summarise, o->precision);
    fa_ctx c = {.t = t, .ef = &ef, .strides = strides, .sep = sep, .sep_rstrip = strlen(sep),
                .edge = o->edgeitems, .summarise = summarise};
    while (c.sep_rstrip > 0 && sep[c.sep_rstrip - 1] == ' ') c.sep_rstrip--;
    if (ef.oom)
        out->oom = true;
    else if (t->rank == 0)
        format_elem(&ef, 0, out);
    else /* next_line_prefix = " " + " " * len(prefix) */
        recurse(&c, 0, 0, 1 + prefix_len, (long long)o->linewidth - suffix_len, out);
    free(strides);
}

/* numpy's str() of a 0-d array is the str() of its scalar, which ignores the
 * print options (scalartypes.c.src, *type_str): integers and bools plainly,
 * floats positional for 0 and 1e-4 <= |x| < 1e16, else scientific. */
static void scalar_str(sbuf *out, const gv_tensor *t) {
    elem_fmt ef = {.dtype = t->dtype, .data = gv_tensor_data_const(t), .scalar = true};
    double x = gv_dtype_is_float(t->dtype) ? load_float(&ef, 0) : 0, a = fabs(x);
    if (!gv_dtype_is_float(t->dtype)) {
        format_elem(&ef, 0, out);
    } else if (!isfinite(x)) {
        sb_puts(out, isnan(x) ? "nan" : x < 0 ? "-inf" : "inf");
    } else {
        bool sci = !(a == 0 || (a >= 1.e-4 && a < 1.e16));
        fopts f = {.sci = sci, .precision = -1, .min_digits = -1,
                   .trim = sci ? TRIM_DPT : TRIM_ONE_ZERO, .pad_left = -1, .pad_right = -1,
                   .exp_digits = -1};
        format_finite(out, x, t->dtype == GV_F32, &f);
    }
}

/* A Python shape tuple: "()", "(4,)", "(2, 3)". */
static void shape_tuple(sbuf *s, const gv_tensor *t) {
    sb_putc(s, '(');
    for (int a = 0; a < t->rank; a++) {
        char num[32]; /* one int64: cannot truncate */
        snprintf(num, sizeof num, "%s%lld", a ? ", " : "", (long long)t->shape[a]);
        sb_puts(s, num);
    }
    sb_puts(s, t->rank == 1 ? ",)" : ")");
}

/* jax.ShapeDtypeStruct's repr (and str): a shape-only tensor has no values
 * to show, whatever the print options. */
static char *shape_dtype_struct_repr(const char *what, const gv_tensor *t) {
    sbuf b = {0};
    sb_puts(&b, "ShapeDtypeStruct(shape=");
    shape_tuple(&b, t);
    sb_puts(&b, ", dtype="), sb_puts(&b, gv_dtype_name(t->dtype)), sb_putc(&b, ')');
    return finish(what, &b);
}

char *gv_tensor_str(const gv_tensor *t, const gv_print_options *opts) {
    if (!check_args("gv_tensor_str", t, opts)) return NULL;
    if (gv_tensor_is_abstract(t)) return shape_dtype_struct_repr("gv_tensor_str", t);
    gv_print_options o = opts ? *opts : gv_print_options_default();
    sbuf b = {0};
    if (t->rank == 0)
        scalar_str(&b, t);
    else if (t->size == 0)
        sb_puts(&b, "[]");
    else
        array2string(&b, t, &o, " ", 0, 0);
    return finish("gv_tensor_str", &b);
}

/* jax/_src/array.py, ArrayImpl.__repr__ */
char *gv_tensor_repr(const gv_tensor *t, const gv_print_options *opts) {
    if (!check_args("gv_tensor_repr", t, opts)) return NULL;
    if (gv_tensor_is_abstract(t)) return shape_dtype_struct_repr("gv_tensor_repr", t);
    gv_print_options o = opts ? *opts : gv_print_options_default();
    static const char prefix[] = "Array(";
    const int prefix_len = (int)sizeof prefix - 1;
    const char *name = gv_dtype_name(t->dtype);
    sbuf s = {0}, b = {0};
    if (t->size == 0) { /* f"[], shape={self.shape}", a Python tuple */
        sb_puts(&s, "[], shape=");
        shape_tuple(&s, t);
    } else {
        array2string(&s, t, &o, ", ", prefix_len, 1);
    }
    if (!s.oom && s.p) {
        /* JAX's arithmetic as written (rfind is -1 without a newline), and
         * its separator: len(prefix) spaces, not a newline, when "dtype=..."
         * would pass the line width */
        const char *nl = strrchr(s.p, '\n');
        long long last_line_len = (long long)s.n - (nl ? nl - s.p : -1) + 1;
        long long dtype_len = (long long)(strlen("dtype=)") + strlen(name));
        bool spill = last_line_len + dtype_len + 1 > o.linewidth;
        sb_puts(&b, prefix), sb_putn(&b, s.p, s.n), sb_putc(&b, ',');
        sb_rep(&b, ' ', spill ? prefix_len : 1);
        sb_puts(&b, "dtype="), sb_puts(&b, name), sb_putc(&b, ')');
    }
    b.oom |= s.oom;
    free(s.p);
    return finish("gv_tensor_repr", &b);
}

gv_status gv_tensor_print(FILE *f, const gv_tensor *t) {
    if (!t) return gv_error(GV_ERR_ARG, "gv_tensor_print: tensor is NULL");
    if (!f) return gv_error(GV_ERR_ARG, "gv_tensor_print: FILE is NULL");
    char *s = gv_tensor_repr(t, NULL);
    if (!s) return gv_last_status();
    int rc = fputs(s, f);
    free(s);
    if (rc == EOF || fputc('\n', f) == EOF)
        return gv_error(GV_ERR_IO, "gv_tensor_print: write failed");
    return GV_OK;
}
