/* libFuzzer target: the command-line parsers of the apps (apps/vae/cli.c,
 * apps/classifier/cli.c, apps/conv_classifier/cli.c,
 * apps/bert_finetune/cli.c; linen-basics takes no arguments). The input is
 * an argv, its arguments separated by NUL bytes (a last NUL ends the last
 * argument); argv[0] names the program ("vae", "classifier",
 * "conv_classifier", "bert_finetune"; any other name picks one by its first
 * byte). Any argv must give "run" with the values set, or an exit code
 * (0 after --help, 2 after a message), never a crash, an exit() or
 * undefined behaviour. Built and run by scripts/fuzz.sh, with
 * -close_fd_mask=3: the usage and the messages go to /dev/null.
 *
 * Checked besides: accepted values are inside the ranges that --help
 * states, and the parsed values written back as a canonical command line
 * (every value as "%lld" / "%.17g" / the string) parse to the same values. */
#define _GNU_SOURCE /* vasprintf */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bert_finetune/cli.h"
#include "classifier/cli.h"
#include "conv_classifier/cli.h"
#include "vae/cli.h"

static FILE *diag; /* the fuzzer's own stderr, kept before libFuzzer closes fd 2 */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    int fd = dup(2);
    diag = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!diag) diag = stderr;
    return 0;
}

static void check(bool ok, const char *what) {
    if (ok) return;
    fprintf(diag, "fuzz_cli: %s\n", what);
    fflush(diag);
    abort();
}

/* ---- a growable argv of strings of its own ---- */

typedef struct args {
    char **v;
    int n, cap;
} args;

static void add(args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(args *a, const char *fmt, ...) {
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? 2 * a->cap : 16;
        a->v = realloc(a->v, (size_t)a->cap * sizeof *a->v);
        check(a->v != NULL, "out of memory");
    }
    va_list ap;
    va_start(ap, fmt);
    check(vasprintf(&a->v[a->n++], fmt, ap) >= 0, "out of memory");
    va_end(ap);
    a->v[a->n] = NULL;
}

static void args_free(args *a) {
    for (int i = 0; i < a->n; i++) free(a->v[i]);
    free(a->v);
}

static bool same_str(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

/* ---- vae ---- */

/* apps/vae/cli.c's table, for the ranges --help states and the names */
static const struct {
    vae_flag_id id;
    const char *name;
    char kind; /* i nteger, f loat, s tring, b ool */
    double min, max;
} VAE[] = {
    {F_EPOCHS, "epochs", 'i', 1, 1e6},         {F_BATCH_SIZE, "batch-size", 'i', 1, 65536},
    {F_LATENT, "latent", 'i', 1, 4096},        {F_KL_WEIGHT, "kl-weight", 'f', 0, 1e6},
    {F_LR, "lr", 'f', 1e-12, 10},              {F_SEED, "seed", 'i', 0, 4294967295.0},
    {F_THREADS, "threads", 'i', 1, 256},       {F_DATASET, "dataset", 's', 0, 0},
    {F_DATA_DIR, "data-dir", 's', 0, 0},       {F_RUN_DIR, "run-dir", 's', 0, 0},
    {F_LOG_EVERY, "log-every", 'i', 1, 1e9},   {F_TRAIN_LIMIT, "train-limit", 'i', 1, 1e9},
    {F_TEST_LIMIT, "test-limit", 'i', 1, 1e9}, {F_MAX_STEPS, "max-steps", 'i', 1, 1e12},
    {F_CLASS, "class", 'i', 0, 9},             {F_N, "n", 'i', 1, 10000},
    {F_STEP, "step", 'i', 0, 1e12},            {F_OUT, "out", 's', 0, 0},
    {F_DISTRIBUTED, "distributed", 'b', 0, 0}, {F_ZERO1, "zero1", 'b', 0, 0},
};
_Static_assert(sizeof VAE / sizeof *VAE == F_NFLAGS, "a vae flag is missing here");

static int64_t *vae_int(vae_flags *f, vae_flag_id id) {
    switch (id) {
    case F_EPOCHS: return &f->epochs;
    case F_BATCH_SIZE: return &f->batch_size;
    case F_LATENT: return &f->latent;
    case F_SEED: return &f->seed;
    case F_THREADS: return &f->threads;
    case F_LOG_EVERY: return &f->log_every;
    case F_TRAIN_LIMIT: return &f->train_limit;
    case F_TEST_LIMIT: return &f->test_limit;
    case F_MAX_STEPS: return &f->max_steps;
    case F_CLASS: return &f->cls;
    case F_N: return &f->n;
    case F_STEP: return &f->step;
    default: return NULL;
    }
}

static double *vae_float(vae_flags *f, vae_flag_id id) {
    return id == F_KL_WEIGHT ? &f->kl_weight : id == F_LR ? &f->lr : NULL;
}

static const char **vae_str(vae_flags *f, vae_flag_id id) {
    return id == F_DATASET ? &f->dataset : id == F_DATA_DIR ? &f->data_dir
         : id == F_RUN_DIR ? &f->run_dir : id == F_OUT ? &f->out : NULL;
}

static bool *vae_bool(vae_flags *f, vae_flag_id id) {
    return id == F_DISTRIBUTED ? &f->distributed : id == F_ZERO1 ? &f->zero1 : NULL;
}

static void fuzz_vae(int argc, char **argv) {
    int command = 0;
    vae_flags f;
    int rc = vae_cli_parse(argc, argv, &command, &f);
    check(rc == VAE_CLI_RUN || rc == VAE_EXIT_OK || rc == VAE_EXIT_USAGE, "vae: exit code");
    if (rc != VAE_CLI_RUN) return;
    check(command == VAE_CMD_TRAIN || command == VAE_CMD_SAMPLE, "vae: command");
    args again = {0};
    add(&again, "vae");
    add(&again, "%s", command == VAE_CMD_TRAIN ? "train" : "sample");
    for (size_t k = 0; k < F_NFLAGS; k++) {
        vae_flag_id id = VAE[k].id;
        if (!f.given[id]) continue;
        switch (VAE[k].kind) {
        case 'i': {
            int64_t v = *vae_int(&f, id);
            check((double)v >= VAE[k].min && (double)v <= VAE[k].max, "vae: integer out of range");
            add(&again, "--%s=%lld", VAE[k].name, (long long)v);
            break;
        }
        case 'f': {
            double v = *vae_float(&f, id);
            check(v >= VAE[k].min && v <= VAE[k].max, "vae: number out of range");
            add(&again, "--%s=%.17g", VAE[k].name, v);
            break;
        }
        case 's': {
            const char *v = *vae_str(&f, id);
            check(v && *v, "vae: an empty string accepted");
            check(id != F_DATASET || !strcmp(v, "mnist") || !strcmp(v, "fashion-mnist"),
                  "vae: a dataset that is not a choice");
            add(&again, "--%s=%s", VAE[k].name, v);
            break;
        }
        default:
            check(*vae_bool(&f, id), "vae: a flag given but not set");
            add(&again, "--%s", VAE[k].name);
        }
    }
    int command2 = 0;
    vae_flags g;
    check(vae_cli_parse(again.n, again.v, &command2, &g) == VAE_CLI_RUN && command2 == command,
          "vae: the canonical command line is refused");
    for (size_t k = 0; k < F_NFLAGS; k++) {
        vae_flag_id id = VAE[k].id;
        check(f.given[id] == g.given[id], "vae: given[] differs");
        switch (VAE[k].kind) {
        case 'i': check(*vae_int(&f, id) == *vae_int(&g, id), "vae: an integer differs"); break;
        case 'f': check(*vae_float(&f, id) == *vae_float(&g, id), "vae: a number differs"); break;
        case 's': check(same_str(*vae_str(&f, id), *vae_str(&g, id)), "vae: a string differs"); break;
        default: check(*vae_bool(&f, id) == *vae_bool(&g, id), "vae: a switch differs");
        }
    }
    args_free(&again);
}

/* ---- classifier ---- */

static void fuzz_classifier(int argc, char **argv) {
    char **before = malloc(((size_t)argc + 1) * sizeof *before);
    check(before != NULL, "out of memory");
    memcpy(before, argv, ((size_t)argc + 1) * sizeof *before);
    int n = argc;
    bool dist = classifier_cli_take_distributed(&n, argv);
    /* the others, in order, and nothing else */
    int kept = 0;
    bool seen = false;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(before[i], "--distributed")) {
            seen = true;
            continue;
        }
        check(kept < n && argv[kept] == before[i], "classifier: --distributed taken badly");
        kept++;
    }
    check(kept == n && argv[n] == NULL && dist == seen, "classifier: --distributed taken badly");
    free(before);

    classifier_args a;
    int rc = classifier_cli_parse(n, argv, &a);
    check(rc == 0 || rc == 2, "classifier: exit code");
    if (rc) return;
    check(n >= 2 && n <= 4 && a.dir == argv[1] && a.epochs >= 1 && a.n_train >= 0,
          "classifier: values out of range");
    check(a.restore == (n == 3 && !strcmp(argv[2], "--restore")), "classifier: --restore");
    args again = {0};
    add(&again, "classifier");
    add(&again, "%s", a.dir);
    if (a.restore) add(&again, "--restore");
    else add(&again, "%ld", a.epochs), add(&again, "%ld", a.n_train);
    classifier_args b;
    check(classifier_cli_parse(again.n, again.v, &b) == 0 && !strcmp(b.dir, a.dir) &&
              b.restore == a.restore && b.epochs == a.epochs && b.n_train == a.n_train,
          "classifier: the canonical command line parses differently");
    args_free(&again);
}

/* ---- conv_classifier ---- */

static void fuzz_conv(int argc, char **argv) {
    conv_args a;
    int rc = conv_cli_parse(argc, argv, &a);
    check(rc == 0 || rc == 2, "conv_classifier: exit code");
    if (rc) return;
    check(a.dir == argv[1] && a.epochs >= 1 && a.epochs <= 1000 && a.n_train >= 128 &&
              a.n_train <= 60000 && a.n_test >= 1 && a.n_test <= 10000,
          "conv_classifier: values out of range");
    check(a.restore == (argc >= 3 && !strcmp(argv[2], "--restore")), "conv_classifier: --restore");
    args again = {0};
    add(&again, "conv_classifier");
    add(&again, "%s", a.dir);
    if (a.restore) add(&again, "--restore");
    else add(&again, "%ld", a.epochs), add(&again, "%ld", a.n_train);
    add(&again, "%ld", a.n_test);
    conv_args b;
    check(conv_cli_parse(again.n, again.v, &b) == 0 && !strcmp(b.dir, a.dir) &&
              b.restore == a.restore && b.epochs == a.epochs && b.n_train == a.n_train &&
              b.n_test == a.n_test,
          "conv_classifier: the canonical command line parses differently");
    args_free(&again);
}

/* ---- bert_finetune ---- */

static void fuzz_bert(int argc, char **argv) {
    bert_ft_args a;
    int rc = bert_ft_cli_parse(argc, argv, &a);
    check(rc == BERT_FT_CLI_RUN || rc == 0 || rc == 2, "bert_finetune: exit code");
    if (rc != BERT_FT_CLI_RUN) return;
    check(a.model_dir && a.data_dir, "bert_finetune: --model or --data missing");
    check(a.epochs >= 0 && a.epochs <= 1000 && a.batch >= 1 && a.batch <= 4096 &&
              a.max_length >= 2 && a.max_length <= 100000 && a.seed >= 0 &&
              a.seed <= 2147483647 && a.threads >= 1 && a.threads <= 256 &&
              (a.train_limit == -1 || (a.train_limit >= 1 && a.train_limit <= 1000000000)) &&
              (a.test_limit == -1 || (a.test_limit >= 1 && a.test_limit <= 1000000000)) &&
              a.lr > 0 && a.lr <= 1.7976931348623157e308,
          "bert_finetune: values out of range");
    args again = {0};
    add(&again, BERT_FT_PROG);
    add(&again, "--model"), add(&again, "%s", a.model_dir);
    add(&again, "--data"), add(&again, "%s", a.data_dir);
    if (a.out) add(&again, "--out"), add(&again, "%s", a.out);
    add(&again, "--epochs"), add(&again, "%ld", a.epochs);
    add(&again, "--batch"), add(&again, "%ld", a.batch);
    add(&again, "--max-length"), add(&again, "%ld", a.max_length);
    add(&again, "--seed"), add(&again, "%ld", a.seed);
    add(&again, "--threads"), add(&again, "%ld", a.threads);
    if (a.train_limit > 0) add(&again, "--train-limit"), add(&again, "%ld", a.train_limit);
    if (a.test_limit > 0) add(&again, "--test-limit"), add(&again, "%ld", a.test_limit);
    add(&again, "--lr"), add(&again, "%.17g", a.lr);
    if (a.full) add(&again, "--full");
    bert_ft_args b;
    check(bert_ft_cli_parse(again.n, again.v, &b) == BERT_FT_CLI_RUN,
          "bert_finetune: the canonical command line is refused");
    check(!strcmp(a.model_dir, b.model_dir) && !strcmp(a.data_dir, b.data_dir) &&
              same_str(a.out, b.out) && a.epochs == b.epochs && a.batch == b.batch &&
              a.max_length == b.max_length && a.seed == b.seed && a.threads == b.threads &&
              a.train_limit == b.train_limit && a.test_limit == b.test_limit && a.lr == b.lr &&
              a.full == b.full,
          "bert_finetune: the canonical command line parses differently");
    args_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    /* the arguments, NUL-terminated in a buffer of the input's size + 1 */
    char *buf = malloc(size + 1);
    check(buf != NULL, "out of memory");
    memcpy(buf, data, size);
    buf[size] = '\0';
    int argc = 0;
    for (size_t i = 0; i < size; i++) argc += buf[i] == '\0';
    argc += buf[size - 1] != '\0';
    char **argv = malloc(((size_t)argc + 1) * sizeof *argv);
    check(argv != NULL, "out of memory");
    char *p = buf;
    for (int i = 0; i < argc; i++, p += strlen(p) + 1) argv[i] = p;
    argv[argc] = NULL;

    static const struct {
        const char *name;
        void (*fuzz)(int, char **);
    } apps[] = {{"vae", fuzz_vae},
                {"classifier", fuzz_classifier},
                {"conv_classifier", fuzz_conv},
                {"bert_finetune", fuzz_bert}};
    size_t app = (unsigned char)buf[0] % 4;
    for (size_t k = 0; k < 4; k++)
        if (!strcmp(argv[0], apps[k].name)) app = k;
    apps[app].fuzz(argc, argv);
    free(argv);
    free(buf);
    return 0;
}
