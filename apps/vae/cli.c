/* The vae program's command line (cli.h): the flag table, --help, and the
 * checks that turn a bad flag into a message naming it and exit code 2.
 * Nothing here starts work or exits, so tests/fuzz/fuzz_cli.c runs it on
 * any argv. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef enum { K_INT, K_FLOAT, K_STR, K_CHOICE, K_BOOL } flag_kind; /* K_BOOL: no value */
enum { TRAIN = VAE_CMD_TRAIN, SAMPLE = VAE_CMD_SAMPLE };

typedef struct flag_spec {
    vae_flag_id id;
    const char *name;
    flag_kind kind;
    int commands;        /* TRAIN | SAMPLE */
    double min, max;     /* numeric range, inclusive */
    const char *choices; /* K_CHOICE: "a|b" */
    const char *help;
} flag_spec;

static const flag_spec FLAGS[] = {
    {F_EPOCHS, "epochs", K_INT, TRAIN, 1, 1e6, NULL, "epochs to train in total (10)"},
    {F_BATCH_SIZE, "batch-size", K_INT, TRAIN, 1, 65536, NULL, "examples per step (16)"},
    {F_LATENT, "latent", K_INT, TRAIN, 1, 4096, NULL, "latent dimension (32)"},
    {F_KL_WEIGHT, "kl-weight", K_FLOAT, TRAIN, 0, 1e6, NULL, "weight of the KL term (0.5)"},
    {F_LR, "lr", K_FLOAT, TRAIN, 1e-12, 10, NULL, "adamw learning rate (1e-4)"},
    {F_SEED, "seed", K_INT, TRAIN | SAMPLE, 0, 4294967295.0, NULL,
     "PRNG seed: params, data order, noise (0)"},
    {F_THREADS, "threads", K_INT, TRAIN, 1, 256, NULL, "compute threads (1)"},
    {F_DATASET, "dataset", K_CHOICE, TRAIN, 0, 0, "mnist|fashion-mnist", "dataset (mnist)"},
    {F_DATA_DIR, "data-dir", K_STR, TRAIN, 0, 0, NULL,
     "IDX files (default $GROVE_DATA/<dataset> or ~/.cache/grove/<dataset>)"},
    {F_RUN_DIR, "run-dir", K_STR, TRAIN | SAMPLE, 0, 0, NULL,
     "checkpoints, metrics.jsonl, loss.svg, samples.png (runs/vae)"},
    {F_LOG_EVERY, "log-every", K_INT, TRAIN, 1, 1e9, NULL, "steps per log line (100)"},
    {F_TRAIN_LIMIT, "train-limit", K_INT, TRAIN, 1, 1e9, NULL,
     "train on the first N examples only (all)"},
    {F_TEST_LIMIT, "test-limit", K_INT, TRAIN, 1, 1e9, NULL,
     "evaluate on the first N test examples only (all)"},
    {F_MAX_STEPS, "max-steps", K_INT, TRAIN, 1, 1e12, NULL,
     "stop after N steps of this invocation, with a checkpoint (no limit)"},
    {F_CLASS, "class", K_INT, SAMPLE, 0, 9, NULL, "only this digit (all ten, one row each)"},
    {F_N, "n", K_INT, SAMPLE, 1, 10000, NULL, "samples per class (10)"},
    {F_STEP, "step", K_INT, SAMPLE, 0, 1e12, NULL, "checkpoint step to load (the latest)"},
    {F_OUT, "out", K_STR, SAMPLE, 0, 0, NULL,
     "PNG to write (<run-dir>/samples.png, or samples-class<K>.png); a name ending in "
     ".safetensors or .msgpack gets the float images with z and labels instead"},
    {F_DISTRIBUTED, "distributed", K_BOOL, TRAIN, 0, 0, NULL,
     "data-parallel under mpirun -np P: B/P rows of each batch per process (detected)"},
    {F_ZERO1, "zero1", K_BOOL, TRAIN, 0, 0, NULL,
     "with mpirun: shard the AdamW state across the processes (ZeRO-1)"},
};
#define NSPECS (sizeof FLAGS / sizeof FLAGS[0])

static void usage(FILE *f) {
    fprintf(f, "usage: vae train [flags]    train the class-conditioned VAE (resumes a run)\n"
               "       vae sample [flags]   draw digits from a trained run\n"
               "       vae --help\n\nflags (train: T, sample: S):\n");
    for (size_t i = 0; i < NSPECS; i++) {
        const flag_spec *s = &FLAGS[i];
        char lhs[64];
        snprintf(lhs, sizeof lhs, "--%s%s%s", s->name, s->kind == K_BOOL ? "" : " ",
                 s->kind == K_INT ? "N" : s->kind == K_FLOAT ? "X" : s->kind == K_CHOICE ? s->choices
                 : s->kind == K_BOOL ? "" : "PATH");
        fprintf(f, "  %-30s %s%s %s\n", lhs, s->commands & TRAIN ? "T" : " ",
                s->commands & SAMPLE ? "S" : " ", s->help);
    }
    fprintf(f, "\nExit codes: 0 done, 1 error, 2 bad command line, 130 interrupted (checkpoint saved).\n"
               "Get MNIST first with scripts/fetch-mnist.sh.\n");
}

static int bad(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "vae: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\nrun 'vae --help' for the flags\n");
    return VAE_EXIT_USAGE;
}

static bool parse_int(const char *s, int64_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

static bool parse_float(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

static void *slot(vae_flags *f, vae_flag_id id) {
    switch (id) {
    case F_EPOCHS: return &f->epochs;
    case F_BATCH_SIZE: return &f->batch_size;
    case F_LATENT: return &f->latent;
    case F_KL_WEIGHT: return &f->kl_weight;
    case F_LR: return &f->lr;
    case F_SEED: return &f->seed;
    case F_THREADS: return &f->threads;
    case F_DATASET: return &f->dataset;
    case F_DATA_DIR: return &f->data_dir;
    case F_RUN_DIR: return &f->run_dir;
    case F_LOG_EVERY: return &f->log_every;
    case F_TRAIN_LIMIT: return &f->train_limit;
    case F_TEST_LIMIT: return &f->test_limit;
    case F_MAX_STEPS: return &f->max_steps;
    case F_CLASS: return &f->cls;
    case F_N: return &f->n;
    case F_STEP: return &f->step;
    case F_OUT: return &f->out;
    case F_DISTRIBUTED: return &f->distributed;
    case F_ZERO1: return &f->zero1;
    case F_NFLAGS: break;
    }
    return NULL;
}

static int set_flag(vae_flags *f, const flag_spec *s, const char *v) {
    char range[96];
    snprintf(range, sizeof range, "%s in [%.15g, %.15g]",
             s->kind == K_INT ? "an integer" : "a number", s->min, s->max);
    if (s->kind == K_INT || s->kind == K_FLOAT) {
        double d;
        int64_t i = 0;
        bool ok = s->kind == K_INT ? parse_int(v, &i) : parse_float(v, &d);
        if (s->kind == K_INT) d = (double)i;
        if (!ok || d < s->min || d > s->max) {
            fprintf(stderr, "vae: --%s: '%s' is not %s\nrun 'vae --help' for the flags\n", s->name, v,
                    range);
            return VAE_EXIT_USAGE;
        }
        if (s->kind == K_INT) *(int64_t *)slot(f, s->id) = i;
        else *(double *)slot(f, s->id) = d;
    } else {
        if (!*v) return bad("--%s: empty value%s", s->name, "");
        if (s->kind == K_CHOICE) {
            size_t n = strlen(v);
            bool ok = false;
            for (const char *c = s->choices; *c && !ok; c += strcspn(c, "|") + (c[strcspn(c, "|")] != 0))
                ok = strcspn(c, "|") == n && !strncmp(c, v, n);
            if (!ok) return bad("--%s: expected one of %s", s->name, s->choices);
        }
        *(const char **)slot(f, s->id) = v;
    }
    f->given[s->id] = true;
    return 0;
}

static int parse(int argc, char **argv, int command, vae_flags *f) {
    *f = (vae_flags){.epochs = 10, .batch_size = 16, .latent = 32, .seed = 0, .threads = 1,
                     .log_every = 100, .cls = -1, .n = 10, .step = -1, .kl_weight = 0.5,
                     .lr = 1e-4, .dataset = "mnist", .run_dir = "runs/vae"};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return VAE_EXIT_OK;
        }
        if (strncmp(a, "--", 2)) return bad("unexpected argument '%s'%s", a, "");
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const flag_spec *s = NULL;
        for (size_t k = 0; k < NSPECS && !s; k++)
            if (strlen(FLAGS[k].name) == len && !strncmp(FLAGS[k].name, name, len)) s = &FLAGS[k];
        if (!s) return bad("unknown flag '%s'%s", a, "");
        if (!(s->commands & command))
            return bad("--%s is not a flag of 'vae %s'", s->name, argv[1]);
        if (f->given[s->id]) return bad("--%s given twice%s", s->name, "");
        if (s->kind == K_BOOL) {
            if (eq) return bad("--%s takes no value%s", s->name, "");
            *(bool *)slot(f, s->id) = true;
            f->given[s->id] = true;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) return bad("--%s needs a value%s", s->name, "");
        /* "--run-dir --help" is a forgotten value, not a directory; a value
         * that really starts with "--" can be given as --flag=--value */
        if (!eq && !strncmp(v, "--", 2))
            return bad("--%s needs a value (got the flag '%s'; use --flag=value for a value "
                       "starting with --)", s->name, v);
        int rc = set_flag(f, s, v);
        if (rc) return rc;
    }
    return VAE_CLI_RUN;
}

int vae_cli_parse(int argc, char **argv, int *command, vae_flags *f) {
    if (argc < 2) {
        usage(stderr);
        return VAE_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return VAE_EXIT_OK;
    }
    *command = !strcmp(cmd, "train") ? TRAIN : !strcmp(cmd, "sample") ? SAMPLE : 0;
    if (!*command) return bad("unknown command '%s' (expected 'train' or 'sample')%s", cmd, "");
    return parse(argc, argv, *command, f);
}
