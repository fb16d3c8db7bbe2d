/* Fine-tunes the classifier head of a pretrained BERT with the backbone
 * frozen, as the Flax tutorial's last example does:
 *
 *   model = FlaxBertForSequenceClassification.from_pretrained(dir, num_labels=2)
 *   tx = optax.multi_transform({'train': optax.adam(1e-3), 'freeze': optax.set_to_zero()},
 *                              {'bert': 'freeze', 'classifier': 'train'})
 *
 * on the UCI Sentiment Labelled Sentences (scripts/fetch-sentiment.sh), 80%
 * train / 20% test after one shuffle. Prints the load report, train and test
 * accuracy before and after, the tutorial's check that every backbone update
 * is zero (grads = ones_like(params)), and saves the classifier params with
 * the checkpointer and restores them.
 *
 *   bert_finetune --model DIR --data DIR [--out DIR] [--epochs N] [--batch N]
 *                 [--max-length N] [--lr X] [--seed N] [--train-limit N]
 *                 [--test-limit N] [--threads N] [--full]
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "finetune.h"

static const char *prog = BERT_FT_PROG;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fail(const char *what) {
    fprintf(stderr, "%s: %s: %s\n", prog, what, gv_last_error());
    return 1;
}

/* ---- the data set ---- */

typedef struct example {
    char *text;
    int32_t label;
} example;

typedef struct examples {
    example *v;
    size_t n, cap;
} examples;

static void examples_free(examples *e) {
    for (size_t i = 0; i < e->n; i++) free(e->v[i].text);
    free(e->v);
    *e = (examples){0};
}

static bool seen(const examples *e, const char *text) {
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->v[i].text, text) == 0) return true;
    return false;
}

/* One file: a JSON array of {"text": string, "class": 0 or 1}; the closing
 * {"text": "", "class": null} of the package, and texts seen before, are
 * skipped. Anything else is an error naming the file and the entry. */
static bool read_split_file(const char *dir, const char *name, examples *out, size_t *dups) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_object *root = json_object_from_file(path);
    if (!root) {
        fprintf(stderr, "%s: cannot read '%s': %s (run scripts/fetch-sentiment.sh)\n", prog, path,
                json_util_get_last_err() ? json_util_get_last_err() : "unknown error");
        return false;
    }
    bool ok = json_object_is_type(root, json_type_array);
    if (!ok) fprintf(stderr, "%s: '%s': expected a JSON array of {text, class}\n", prog, path);
    size_t n = ok ? json_object_array_length(root) : 0;
    for (size_t i = 0; ok && i < n; i++) {
        json_object *it = json_object_array_get_idx(root, i), *t, *c;
        if (!json_object_is_type(it, json_type_object) ||
            !json_object_object_get_ex(it, "text", &t) || !json_object_is_type(t, json_type_string) ||
            !json_object_object_get_ex(it, "class", &c)) {
            fprintf(stderr, "%s: '%s': entry %zu is not {\"text\": string, \"class\": 0 or 1}\n",
                    prog, path, i);
            ok = false;
            break;
        }
        const char *text = json_object_get_string(t);
        if (!c && !*text) continue; /* the package's closing entry */
        int64_t label = json_object_is_type(c, json_type_int) ? json_object_get_int64(c) : -1;
        if (label != 0 && label != 1) {
            fprintf(stderr, "%s: '%s': entry %zu: class must be 0 or 1\n", prog, path, i);
            ok = false;
            break;
        }
        if (!*text || seen(out, text)) {
            ++*dups;
            continue;
        }
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 1024;
            out->v = realloc(out->v, out->cap * sizeof *out->v);
        }
        out->v[out->n++] = (example){strdup(text), (int32_t)label};
    }
    json_object_put(root);
    return ok;
}

/* All three files, shuffled with key, split 80/20. */
static bool load_data(const char *dir, gv_key key, examples *train, examples *test) {
    examples all = {0};
    size_t dups = 0;
    const char *files[] = {"amazon.json", "imdb.json", "yelp.json"};
    for (int i = 0; i < 3; i++)
        if (!read_split_file(dir, files[i], &all, &dups)) return examples_free(&all), false;
    gv_tensor *perm = gv_random_permutation_eager(GV_PRNG_DEFAULT, key, (int64_t)all.n);
    if (!perm) return examples_free(&all), fail("shuffling the data") == 0;
    const int32_t *p = gv_tensor_data_const(perm);
    size_t ntest = all.n / 5;
    *train = (examples){malloc((all.n - ntest) * sizeof(example)), 0, all.n - ntest};
    *test = (examples){malloc(ntest * sizeof(example)), 0, ntest};
    for (size_t i = 0; i < all.n; i++) {
        examples *to = i < all.n - ntest ? train : test;
        to->v[to->n++] = all.v[p[i]];
    }
    free(all.v);
    gv_tensor_free(perm);
    printf("data: %zu sentences (%zu duplicates dropped): %zu train, %zu test\n",
           train->n + test->n, dups, train->n, test->n);
    return true;
}

/* ---- batches ---- */

typedef struct batcher {
    const gv_bert_tokenizer *tok;
    int64_t max_length;
} batcher;

/* The batch tree of examples idx[0..n) (tensors of the tree's own). */
static gv_tree *make_batch(const batcher *bt, const examples *e, const int32_t *idx, size_t n) {
    const char **texts = malloc(n * sizeof *texts);
    gv_tensor *labels = gv_tensor_zeros(GV_I32, 1, (int64_t[]){(int64_t)n});
    int32_t *l = gv_tensor_data(labels);
    for (size_t i = 0; i < n; i++) {
        size_t k = idx ? (size_t)idx[i] : i;
        texts[i] = e->v[k].text, l[i] = e->v[k].label;
    }
    gv_bert_batch b = {0};
    gv_status st = gv_bert_encode(bt->tok, texts, n,
                                  &(gv_bert_encode_options){.max_length = bt->max_length,
                                                            .pad_to_max_length = true},
                                  &b);
    gv_tree *t = st ? NULL : bert_ft_batch(&b, labels);
    gv_bert_batch_free(&b);
    gv_tensor_free(labels);
    free(texts);
    return t;
}

/* Accuracy (and mean loss) of params on e, in batches of `batch`. */
static bool evaluate(bert_ft *f, const batcher *bt, const gv_tree *params, const examples *e,
                     int64_t batch, double *acc, double *loss) {
    int64_t correct = 0;
    double lsum = 0;
    for (size_t start = 0; start < e->n; start += (size_t)batch) {
        size_t n = e->n - start < (size_t)batch ? e->n - start : (size_t)batch;
        int32_t idx[n];
        for (size_t i = 0; i < n; i++) idx[i] = (int32_t)(start + i);
        gv_tree *b = make_batch(bt, e, idx, n);
        float l;
        int64_t c;
        gv_status st = b ? bert_ft_evaluate(f, params, b, &l, &c) : gv_last_status();
        gv_tree_free(b);
        if (st) return false;
        correct += c, lsum += (double)l * (double)n;
    }
    *acc = e->n ? (double)correct / (double)e->n : 0.0 / 0.0;
    *loss = e->n ? lsum / (double)e->n : 0.0 / 0.0;
    return true;
}

/* Prints "label train accuracy ..., test accuracy ..." of params. */
static bool report_accuracy(bert_ft *f, const batcher *bt, const gv_tree *params, const examples *train,
                   const examples *test, int64_t batch, const char *label) {
    double tr_acc, te_acc, tr_loss, te_loss;
    if (!evaluate(f, bt, params, train, batch, &tr_acc, &tr_loss) ||
        !evaluate(f, bt, params, test, batch, &te_acc, &te_loss))
        return fail("evaluating") == 0;
    printf("%s train accuracy %.4f (loss %.4f), test accuracy %.4f (loss %.4f)\n", label, tr_acc,
           tr_loss, te_acc, te_loss);
    return true;
}

/* ---- the tutorial's checks ---- */

static gv_tensor *ones_like(gv_tensor *leaf, void *ud) {
    (void)ud;
    gv_tensor *t = gv_tensor_zeros(GV_F32, gv_tensor_rank(leaf), gv_tensor_shape(leaf));
    float *p = t ? gv_tensor_data(t) : NULL;
    for (int64_t i = 0; p && i < gv_tensor_size(t); i++) p[i] = 1.0f;
    return t;
}

/* tree_reduce(lambda acc, u: acc and count_nonzero(u) == 0, updates, True) */
static gv_status all_zero(void *acc, gv_tensor *leaf, void *ud) {
    (void)ud;
    const float *p = gv_tensor_data_const(leaf);
    for (int64_t i = 0; i < gv_tensor_size(leaf); i++)
        if (p[i] != 0.0f) *(bool *)acc = false;
    return GV_OK;
}

static void print_head(const char *label, const gv_tensor *t, int64_t n) {
    const float *p = gv_tensor_data_const(t);
    printf("  %s (", label);
    for (int d = 0; d < gv_tensor_rank(t); d++)
        printf("%s%lld", d ? ", " : "", (long long)gv_tensor_shape(t)[d]);
    printf("%s):", gv_tensor_rank(t) == 1 ? "," : "");
    for (int64_t i = 0; i < n && i < gv_tensor_size(t); i++) printf(" %.6g", (double)p[i]);
    printf("%s\n", gv_tensor_size(t) > n ? " ..." : "");
}

static bool freeze_check(bert_ft *f, const gv_tree *params) {
    gv_tree *grads = gv_tree_map(ones_like, NULL, params);
    gv_tree *state = grads ? gv_transform_init_eager(f->tx, params) : NULL;
    gv_tree *updates = NULL, *next = NULL;
    if (!state || gv_transform_update_eager(f->tx, grads, state, params, &updates, &next)) {
        gv_tree_free(grads), gv_tree_free(state);
        return fail("the freeze check") == 0;
    }
    bool zero = true;
    gv_tree_reduce(all_zero, NULL, gv_tree_get(updates, "bert"), &zero);
    printf("updates for grads = ones_like(params):\n");
    print_head("updates['classifier']['bias']", gv_tree_get_tensor(updates, "classifier/bias"), 2);
    print_head("updates['classifier']['kernel']", gv_tree_get_tensor(updates, "classifier/kernel"),
               4);
    print_head("updates['bert']['pooler']['dense']['kernel']",
               gv_tree_get_tensor(updates, "bert/pooler/dense/kernel"), 4);
    printf("  tree_reduce(count_nonzero(u) == 0, updates['bert']): %s\n", zero ? "True" : "False");
    gv_tree_free(grads), gv_tree_free(state), gv_tree_free(updates), gv_tree_free(next);
    return true;
}

/* Save the classifier params, restore them and compare bit for bit. */
static bool save_classifier(const char *out, const gv_tree *params) {
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: --out '%s': cannot create the directory: %s\n", prog, out,
                strerror(errno));
        return false;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/classifier.safetensors", out);
    const gv_tree *head = gv_tree_get(params, "classifier");
    if (gv_checkpointer_save(path, head, true) != GV_OK) return fail("saving the classifier") == 0;
    gv_tree *back = gv_checkpointer_restore(path);
    if (!back) return fail("restoring the classifier") == 0;
    bool same = true;
    const char *leaves[] = {"kernel", "bias"};
    for (int i = 0; i < 2; i++) {
        const gv_tensor *a = gv_tree_get_tensor(head, leaves[i]),
                        *b = gv_tree_get_tensor(back, leaves[i]);
        same = same && a && b && gv_tensor_size(a) == gv_tensor_size(b) &&
               memcmp(gv_tensor_data_const(a), gv_tensor_data_const(b),
                      (size_t)gv_tensor_size(a) * 4) == 0;
    }
    gv_tree_free(back);
    printf("saved the classifier params to %s; restored: %s\n", path,
           same ? "identical" : "DIFFERENT");
    return same;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress lines as they come, also into a file */
    bert_ft_args args;
    int rc = bert_ft_cli_parse(argc, argv, &args);
    if (rc != BERT_FT_CLI_RUN) return rc;
    const char *model_dir = args.model_dir, *data_dir = args.data_dir, *out = args.out;
    long epochs = args.epochs, batch = args.batch, max_length = args.max_length, seed = args.seed,
         train_limit = args.train_limit, test_limit = args.test_limit, threads = args.threads;
    double lr = args.lr;
    bool full = args.full;

    /* what the run holds, freed at the end whatever happens */
    rc = 1;
    gv_tree *vars = NULL, *state = NULL;
    gv_bert_tokenizer *tok = NULL;
    examples train = {0}, test = {0};
    size_t train_all = 0, test_all = 0;
    bert_ft f = {0};

    /* the pretrained backbone, a new head, the tokenizer */
    gv_bert_config cfg;
    if (gv_bert_config_load(model_dir, &cfg) != GV_OK) {
        rc = fail("--model");
        goto done;
    }
    if (max_length > cfg.max_position_embeddings) {
        fprintf(stderr, "%s: --max-length %ld is more than the model's max_position_embeddings "
                "%lld\n", prog, max_length, (long long)cfg.max_position_embeddings);
        rc = 2;
        goto done;
    }
    cfg.num_labels = 2;
    gv_key keys[4]; /* init, data split, shuffling, dropout */
    gv_random_split_eager(GV_PRNG_DEFAULT, gv_prng_key(seed), 4, keys);
    gv_module model = {&gv_BertForSequenceClassification, &cfg};
    gv_load_report report;
    double t0 = now();
    vars = gv_bert_from_pretrained(&model, model_dir, keys[0], &report);
    if (!vars) {
        rc = fail("--model");
        goto done;
    }
    printf("%s: %lld layers, hidden %lld, %lld heads, vocabulary %lld (%.1f s)\n", model_dir,
           (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size,
           (long long)cfg.num_attention_heads, (long long)cfg.vocab_size, now() - t0);
    gv_load_report_print(&report, stdout);
    gv_load_report_free(&report);
    tok = gv_bert_tokenizer_from_pretrained(model_dir);
    if (!tok) {
        rc = fail("--model");
        goto done;
    }
    if ((int64_t)gv_bert_tokenizer_vocab_size(tok) > cfg.vocab_size) {
        fprintf(stderr, "%s: --model: vocab.txt has %zu tokens, the model %lld\n", prog,
                gv_bert_tokenizer_vocab_size(tok), (long long)cfg.vocab_size);
        goto done;
    }

    if (!load_data(data_dir, keys[1], &train, &test)) goto done;
    train_all = train.n, test_all = test.n; /* the texts to free at the end */
    if (train_limit > 0 && (size_t)train_limit < train.n) train.n = (size_t)train_limit;
    if (test_limit > 0 && (size_t)test_limit < test.n) test.n = (size_t)test_limit;
    if (train.n < (size_t)batch) {
        fprintf(stderr, "%s: %zu training sentences are fewer than one batch of %ld\n", prog,
                train.n, batch);
        rc = 2;
        goto done;
    }

    if (bert_ft_init(&f, &cfg, !full, lr, (int)threads) != GV_OK) {
        rc = fail("the train step");
        goto done;
    }
    state = gv_train_state_create(f.tx, gv_tree_get(vars, "params"));
    if (!state) {
        rc = fail("the train state");
        goto done;
    }
    printf("training %s with adam(%g): batch %ld, %ld tokens, %ld epochs\n",
           full ? "every param" : "the classifier head (backbone frozen)", lr, batch, max_length,
           epochs);
    batcher bt = {tok, max_length};
    if (!report_accuracy(&f, &bt, gv_train_state_params(state), &train, &test, batch, "before:"))
        goto done;

    int64_t steps_per_epoch = (int64_t)train.n / batch; /* the last partial batch is dropped */
    for (long e = 0; e < epochs; e++) {
        double te0 = now(), lsum = 0, asum = 0;
        gv_tensor *perm = gv_random_permutation_eager(
            GV_PRNG_DEFAULT, gv_random_fold_in_eager(keys[2], (uint32_t)e), (int64_t)train.n);
        if (!perm) {
            rc = fail("shuffling");
            goto done;
        }
        const int32_t *p = gv_tensor_data_const(perm);
        for (int64_t s = 0; s < steps_per_epoch; s++) {
            gv_tree *b = make_batch(&bt, &train, p + s * batch, (size_t)batch);
            float loss, acc;
            gv_key k = gv_random_fold_in_eager(keys[3], (uint32_t)(e * steps_per_epoch + s));
            gv_status st = b ? bert_ft_step(&f, state, b, k, &loss, &acc) : gv_last_status();
            gv_tree_free(b);
            if (st) {
                gv_tensor_free(perm);
                rc = fail("the train step");
                goto done;
            }
            lsum += loss, asum += acc;
        }
        gv_tensor_free(perm);
        double secs = now() - te0, te_acc, te_loss;
        if (!evaluate(&f, &bt, gv_train_state_params(state), &test, batch, &te_acc, &te_loss)) {
            rc = fail("evaluating");
            goto done;
        }
        printf("epoch %ld: train loss %.4f, train accuracy %.4f (dropout on), test accuracy %.4f "
               "(%.1f s, %.0f ms/step)\n", e + 1, lsum / (double)steps_per_epoch,
               asum / (double)steps_per_epoch, te_acc, secs,
               1e3 * secs / (double)steps_per_epoch);
    }
    if (!report_accuracy(&f, &bt, gv_train_state_params(state), &train, &test, batch, "after: "))
        goto done;

    bool ok = freeze_check(&f, gv_train_state_params(state));
    if (ok && out) ok = save_classifier(out, gv_train_state_params(state));
    rc = ok ? 0 : 1;
done:
    bert_ft_free(&f);
    gv_tree_free(state), gv_tree_free(vars);
    gv_bert_tokenizer_free(tok);
    train.n = train_all, test.n = test_all;
    examples_free(&train), examples_free(&test);
    return rc;
}
