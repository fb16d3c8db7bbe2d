/* The classifier program's command line:
 *   classifier DIR [EPOCHS [N]] [--distributed] | DIR --restore
 * (cli.c). Nothing here starts work or exits, so tests/fuzz/fuzz_cli.c
 * runs it on any argv. */
#ifndef CLASSIFIER_CLI_H
#define CLASSIFIER_CLI_H

#include <stdbool.h>

typedef struct classifier_args {
    const char *dir; /* checkpoints (argv[1]) */
    bool restore;    /* --restore: evaluate the best checkpoint */
    long epochs;     /* 3 by default */
    long n_train;    /* 0 = all training examples */
} classifier_args;

/* Takes every "--distributed" out of argv, wherever it is (*argc shrinks,
 * argv stays NULL-terminated), and says whether there was one. Done before
 * MPI sees argv. */
bool classifier_cli_take_distributed(int *argc, char **argv);

/* The rest of the command line: 0 with *a set (a->dir points into argv), or
 * exit code 2 after the usage on stderr. */
int classifier_cli_parse(int argc, char **argv, classifier_args *a);

#endif
