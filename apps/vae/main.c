/* vae: train the class-conditioned VAE on MNIST and sample digits from it.
 *
 *   vae train  [flags]   train, or resume the run in --run-dir
 *   vae sample [flags]   draw digits from a trained run
 *   vae --help
 *
 * Every flag is checked (cli.c): a bad value is a message naming the flag
 * and what was expected, and exit code 2. */
#include <stdio.h>
#include <stdlib.h>

#include <grove/distributed.h>

#include "cli.h"
#include "fileio.h"

char *vae_data_dir(const char *data_dir, const char *dataset) {
    if (data_dir) return vae_strfmt("%s", data_dir);
    const char *root = getenv("GROVE_DATA"), *home = getenv("HOME");
    if (root && *root) return vae_strfmt("%s/%s", root, dataset);
    return vae_strfmt("%s/.cache/grove/%s", home && *home ? home : ".", dataset);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* log lines reach a pipe or file as they happen */
    int command = 0;
    vae_flags f;
    int rc = vae_cli_parse(argc, argv, &command, &f);
    if (rc != VAE_CLI_RUN) return rc;
    /* an MPI job is detected from the launcher; --distributed insists on one */
    if (f.distributed && !gv_distributed_launched()) {
        fprintf(stderr, "vae: --distributed: not started by an MPI launcher (run it as: "
                "mpirun -np P vae train --distributed ...)\n");
        return VAE_EXIT_USAGE;
    }
    if (command == VAE_CMD_TRAIN && gv_distributed_init(&argc, &argv) != GV_OK) {
        fprintf(stderr, "vae: --distributed: %s\n", gv_last_error());
        return VAE_EXIT_ERROR;
    }
    rc = command == VAE_CMD_TRAIN ? vae_cmd_train(&f) : vae_cmd_sample(&f);
    /* a process that fails ends the job: the others would wait for it (a
     * Ctrl-C stops every process at the same step, so they finish together) */
    if (rc && rc != VAE_EXIT_INTERRUPTED && gv_process_count() > 1) {
        fprintf(stderr, "vae: process %d of %d stopped with exit code %d: ending the job\n",
                gv_process_index(), gv_process_count(), rc);
        gv_distributed_abort(rc);
    }
    gv_distributed_shutdown();
    return rc;
}
