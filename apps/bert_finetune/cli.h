/* The bert_finetune program's command line (cli.c):
 *   bert_finetune --model DIR --data DIR [--out DIR] [--epochs N] [--batch N]
 *                 [--max-length N] [--lr X] [--seed N] [--train-limit N]
 *                 [--test-limit N] [--threads N] [--full]
 * Nothing here starts work or exits, so tests/fuzz/fuzz_cli.c runs it on
 * any argv. */
#ifndef BERT_FT_CLI_H
#define BERT_FT_CLI_H

#include <stdbool.h>

#define BERT_FT_PROG "bert_finetune" /* the name in every message */

typedef struct bert_ft_args {
    const char *model_dir, *data_dir, *out; /* into argv; out NULL: no file */
    long epochs, batch, max_length, seed;
    long train_limit, test_limit;           /* -1 = all */
    long threads;
    double lr;
    bool full;                              /* --full: train every param */
} bert_ft_args;

/* What bert_ft_cli_parse returns when the program is to run. */
enum { BERT_FT_CLI_RUN = -1 };

/* BERT_FT_CLI_RUN with *a set; or the exit code for main to return at
 * once: 0 after the usage on stdout (--help), 2 after a message naming the
 * bad flag on stderr. */
int bert_ft_cli_parse(int argc, char **argv, bert_ft_args *a);

#endif
