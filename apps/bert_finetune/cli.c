/* The bert_finetune program's command line (cli.h): --help, and the checks
 * that turn a bad flag into a message naming it and exit code 2. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = BERT_FT_PROG;

static void usage(FILE *f) {
    fprintf(f,
            "usage: %s --model DIR --data DIR [options]\n"
            "Fine-tunes a pretrained BERT's classifier head (backbone frozen) on the UCI\n"
            "Sentiment Labelled Sentences and reports accuracy before and after.\n"
            "  --model DIR        Hugging Face BERT directory (config.json, model.safetensors,\n"
            "                     vocab.txt): scripts/fetch-bert.sh\n"
            "  --data DIR         amazon.json, imdb.json, yelp.json: scripts/fetch-sentiment.sh\n"
            "  --out DIR          where classifier.safetensors goes (default: no file)\n"
            "  --epochs N         passes over the training split (default 3)\n"
            "  --batch N          sentences per step (default 32)\n"
            "  --max-length N     tokens per sentence, [CLS] and [SEP] included (default 64)\n"
            "  --lr X             Adam's learning rate (default 1e-3)\n"
            "  --seed N           the split, the head's init, shuffling, dropout (default 0)\n"
            "  --threads N        threads of the compiled steps (default 2)\n"
            "  --train-limit N    use the first N training sentences (default all)\n"
            "  --test-limit N     use the first N test sentences (default all)\n"
            "  --full             train every param (default: the classifier head only)\n",
            prog);
}

/* A whole number in [lo, hi] for flag, else an error message and false. */
static bool int_flag(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "%s: %s expects a whole number from %ld to %ld, not '%s'\n", prog, flag,
                lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

int bert_ft_cli_parse(int argc, char **argv, bert_ft_args *args) {
    const char *model_dir = NULL, *data_dir = NULL, *out = NULL;
    long epochs = 3, batch = 32, max_length = 64, seed = 0, train_limit = -1, test_limit = -1,
         threads = 2;
    double lr = 1e-3;
    bool full = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool takes = strcmp(a, "--full") != 0 && strcmp(a, "-h") != 0 && strcmp(a, "--help") != 0;
        if (takes && i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", prog, a);
            return usage(stderr), 2;
        }
        const char *v = takes ? argv[++i] : NULL;
        bool ok = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 0;
        else if (!strcmp(a, "--full")) full = true;
        else if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--data")) data_dir = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--epochs")) ok = int_flag(a, v, 0, 1000, &epochs);
        else if (!strcmp(a, "--batch")) ok = int_flag(a, v, 1, 4096, &batch);
        else if (!strcmp(a, "--max-length")) ok = int_flag(a, v, 2, 100000, &max_length);
        else if (!strcmp(a, "--seed")) ok = int_flag(a, v, 0, 2147483647, &seed);
        else if (!strcmp(a, "--threads")) ok = int_flag(a, v, 1, 256, &threads);
        else if (!strcmp(a, "--train-limit")) ok = int_flag(a, v, 1, 1000000000, &train_limit);
        else if (!strcmp(a, "--test-limit")) ok = int_flag(a, v, 1, 1000000000, &test_limit);
        else if (!strcmp(a, "--lr")) {
            char *end;
            lr = strtod(v, &end);
            ok = *v && !*end && isfinite(lr) && lr > 0;
            if (!ok) fprintf(stderr, "%s: --lr expects a positive number, not '%s'\n", prog, v);
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", prog, a);
            return usage(stderr), 2;
        }
        if (!ok) return 2;
    }
    if (!model_dir || !data_dir) {
        fprintf(stderr, "%s: --model and --data are required\n", prog);
        return usage(stderr), 2;
    }
    *args = (bert_ft_args){.model_dir = model_dir, .data_dir = data_dir, .out = out,
                           .epochs = epochs, .batch = batch, .max_length = max_length,
                           .seed = seed, .train_limit = train_limit, .test_limit = test_limit,
                           .threads = threads, .lr = lr, .full = full};
    return BERT_FT_CLI_RUN;
}
