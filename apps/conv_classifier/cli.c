/* The conv_classifier program's command line (cli.h). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE "usage: conv_classifier DIR [EPOCHS [N [TEST_N]]] | DIR --restore [TEST_N]\n"

/* argv[i] as a whole decimal number in [lo, hi]; else a message naming it and -1 */
static long arg(char **argv, int i, const char *name, long lo, long hi) {
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*argv[i] && !*end && v >= lo && v <= hi) return v;
    fprintf(stderr, "conv_classifier: %s must be a whole number from %ld to %ld, not '%s'\n", name,
            lo, hi, argv[i]);
    return -1;
}

int conv_cli_parse(int argc, char **argv, conv_args *a) {
    bool restore = argc >= 3 && !strcmp(argv[2], "--restore");
    long epochs = 3, n_train = 60000, n_test = 10000;
    if (argc < 2 || argc > (restore ? 4 : 5)) {
        if (argc > 1) fprintf(stderr, "conv_classifier: too many arguments\n");
        return fputs(USAGE, stderr), 2;
    }
    if (restore ? (argc > 3 && (n_test = arg(argv, 3, "TEST_N", 1, 10000)) < 0)
                : (argc > 2 && (epochs = arg(argv, 2, "EPOCHS", 1, 1000)) < 0) ||
                      (argc > 3 && (n_train = arg(argv, 3, "N", 128, 60000)) < 0) ||
                      (argc > 4 && (n_test = arg(argv, 4, "TEST_N", 1, 10000)) < 0))
        return fputs(USAGE, stderr), 2;
    *a = (conv_args){argv[1], restore, epochs, n_train, n_test};
    return 0;
}
