/* The classifier program's command line (cli.h). */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long arg(const char *s) { /* a whole decimal number, else -1 */
    char *end;
    long v = strtol(s, &end, 10);
    return *s && !*end ? v : -1;
}

bool classifier_cli_take_distributed(int *argc, char **argv) {
    bool want_dist = false;
    for (int i = 1; i < *argc; i++)
        if (!strcmp(argv[i], "--distributed")) {
            want_dist = true;
            memmove(argv + i, argv + i + 1, (size_t)(*argc - i) * sizeof *argv);
            (*argc)--, i--;
        }
    return want_dist;
}

int classifier_cli_parse(int argc, char **argv, classifier_args *a) {
    bool restore = argc == 3 && !strcmp(argv[2], "--restore");
    long epochs = argc > 2 && !restore ? arg(argv[2]) : 3, n_train = argc > 3 ? arg(argv[3]) : 0;
    if (argc < 2 || argc > 4 || epochs < 1 || n_train < 0)
        return fprintf(stderr, "usage: classifier DIR [EPOCHS [N]] [--distributed] | "
                       "DIR --restore\n"), 2;
    *a = (classifier_args){argv[1], restore, epochs, n_train};
    return 0;
}
