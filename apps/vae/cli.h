/* The `vae` program: flags shared by its commands. */
#ifndef VAE_CLI_H
#define VAE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes: 0 done, 1 a runtime error (data, files), 2 a bad command line,
 * 130 stopped by Ctrl-C after saving a checkpoint. */
enum { VAE_EXIT_OK = 0, VAE_EXIT_ERROR = 1, VAE_EXIT_USAGE = 2, VAE_EXIT_INTERRUPTED = 130 };

/* The commands, and what vae_cli_parse returns when the program is to run one. */
enum { VAE_CMD_TRAIN = 1, VAE_CMD_SAMPLE = 2 };
enum { VAE_CLI_RUN = -1 };

typedef enum vae_flag_id {
    F_EPOCHS, F_BATCH_SIZE, F_LATENT, F_KL_WEIGHT, F_LR, F_SEED, F_THREADS, F_DATASET,
    F_DATA_DIR, F_RUN_DIR, F_LOG_EVERY, F_TRAIN_LIMIT, F_TEST_LIMIT, F_MAX_STEPS,
    F_CLASS, F_N, F_STEP, F_OUT, F_DISTRIBUTED, F_ZERO1, F_NFLAGS
} vae_flag_id;

typedef struct vae_flags {
    int64_t epochs, batch_size, latent, seed, threads, log_every;
    int64_t train_limit, test_limit, max_steps;   /* 0 = all / no limit */
    int64_t cls, n, step;                         /* sample: class (-1 all), count, checkpoint */
    double kl_weight, lr;
    const char *dataset;                          /* "mnist" or "fashion-mnist" */
    const char *data_dir, *run_dir, *out;
    bool distributed;                             /* --distributed: an MPI job (distributed.h) */
    bool zero1;                                   /* --zero1: the AdamW state sharded */
    bool given[F_NFLAGS];                         /* set on the command line */
} vae_flags;

/* The command line (cli.c): argv[1] the command, then its flags. Returns
 * VAE_CLI_RUN with *command and *f set (f's strings point into argv); or
 * the exit code for main to return at once: VAE_EXIT_OK after printing the
 * usage to stdout (--help), VAE_EXIT_USAGE after a message on stderr naming
 * the bad flag. Never exits and allocates nothing, so tests/fuzz/fuzz_cli.c
 * calls it with any argv. */
int vae_cli_parse(int argc, char **argv, int *command, vae_flags *f);

int vae_cmd_train(const vae_flags *f);
int vae_cmd_sample(const vae_flags *f);

/* The data directory: data_dir (--data-dir) when given, else
 * $GROVE_DATA/<dataset>, else ~/.cache/grove/<dataset> (where
 * scripts/fetch-mnist.sh puts it). A new string the caller frees; NULL with
 * errno set if it cannot be made. */
char *vae_data_dir(const char *data_dir, const char *dataset);

#endif
