/* The conv_classifier program's command line:
 *   conv_classifier DIR [EPOCHS [N [TEST_N]]] | DIR --restore [TEST_N]
 * (cli.c). Nothing here starts work or exits, so tests/fuzz/fuzz_cli.c
 * runs it on any argv. */
#ifndef CONV_CLI_H
#define CONV_CLI_H

#include <stdbool.h>

typedef struct conv_args {
    const char *dir; /* checkpoints (argv[1]) */
    bool restore;    /* --restore: evaluate the best checkpoint */
    long epochs;     /* 3 by default */
    long n_train;    /* the first N training images (60,000) */
    long n_test;     /* the first TEST_N test images (10,000) */
} conv_args;

/* 0 with *a set (a->dir points into argv), or exit code 2 after a message
 * naming the bad argument (if any) and the usage on stderr. */
int conv_cli_parse(int argc, char **argv, conv_args *a);

#endif
