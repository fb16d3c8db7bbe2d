/* The BERT tokenizer against Hugging Face's BertTokenizer.
 *
 * golden: every text and batch of tests/golden/bert_tokenizer_golden.json
 * (tests/golden/make_bert_tokenizer_golden.py, transformers 4.57.6, the
 * vocabulary of all-MiniLM-L6-v2 that scripts/fetch-bert.sh fetches into
 * $GROVE_BERT_DIR, default ~/.cache/grove/all-MiniLM-L6-v2); skipped
 * without that directory.
 * tiny: a 30-token vocabulary written per test, for the WordPiece rules,
 * padding and truncation, and every error path.
 *
 * Bugs put in on purpose to see these tests fail (each failed both the
 * golden and a tiny test, then was reverted): accents not stripped
 * (basic_word skipping _run_strip_accents), punctuation not split
 * (is_punctuation always false), WordPiece taking the shortest match
 * instead of the longest (end counting up from start + 1), the maximum word
 * length counted in bytes instead of code points, U+0130 lower-cased by
 * utf8proc_tolower alone, no NFC before whitespace_tokenize, and special
 * tokens not cut out of the text. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "grove/tokenizer.h"
#include "testutil.h"

/* ---- golden --------------------------------------------------------------- */

/* $GROVE_BERT_DIR or ~/.cache/grove/all-MiniLM-L6-v2 (malloc'd), or NULL
 * with the test skipped when it has no vocab.txt. */
static char *bert_dir_or_skip(void) {
    const char *env = getenv("GROVE_BERT_DIR");
    char *dir;
    if (env && *env) {
        dir = strdup(env);
    } else {
        const char *home = getenv("HOME") ? getenv("HOME") : "/root";
        size_t n = strlen(home) + 64;
        dir = malloc(n);
        cr_assert_not_null(dir);
        snprintf(dir, n, "%s/.cache/grove/all-MiniLM-L6-v2", home);
    }
    size_t n = strlen(dir) + 16;
    char *vocab = malloc(n);
    cr_assert_not_null(vocab);
    snprintf(vocab, n, "%s/vocab.txt", dir);
    struct stat sb;
    bool there = stat(vocab, &sb) == 0;
    free(vocab);
    if (!there) {
        cr_log_warn("no %s/vocab.txt: run scripts/fetch-bert.sh or set GROVE_BERT_DIR", dir);
        free(dir);
        cr_skip_test("the BERT vocabulary is absent (set GROVE_BERT_DIR, or run scripts/fetch-bert.sh)");
    }
    return dir;
}

static json_object *get(json_object *o, const char *key) {
    json_object *v = NULL;
    cr_assert(json_object_object_get_ex(o, key, &v), "golden: no key '%s'", key);
    return v;
}

static gv_bert_tokenizer *load_with(const char *dir, json_object *opts) {
    gv_bert_tokenizer_options o = {0};
    o.keep_case = !json_object_get_boolean(get(opts, "do_lower_case"));
    json_object *strip = get(opts, "strip_accents");
    o.strip_accents = json_object_is_type(strip, json_type_null) ? 0
                      : json_object_get_boolean(strip) ? 1 : -1;
    o.no_chinese_chars_split = !json_object_get_boolean(get(opts, "tokenize_chinese_chars"));
    size_t n = strlen(dir) + 16;
    char *vocab = malloc(n);
    snprintf(vocab, n, "%s/vocab.txt", dir);
    gv_bert_tokenizer *t = GVT_NN(gv_bert_tokenizer_load(vocab, &o));
    free(vocab);
    return t;
}

/* The ids as tokens, for a readable failure message. */
static void tokens_str(const gv_bert_tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o + 1 < len; i++) {
        const char *s = gv_bert_id_to_token(t, ids[i]);
        o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? " " : "", s ? s : "?");
    }
}

static int check_case(const gv_bert_tokenizer *t, const char *config, json_object *c) {
    json_object *text = get(c, "text"), *want = get(c, "ids");
    int32_t *ids = NULL;
    size_t n = 0;
    GVT_OK(gv_bert_tokenize_n(t, json_object_get_string(text), (size_t)json_object_get_string_len(text),
                              &ids, &n));
    size_t nw = json_object_array_length(want);
    bool same = n == nw;
    for (size_t i = 0; same && i < n; i++)
        same = ids[i] == json_object_get_int(json_object_array_get_idx(want, i));
    if (!same) {
        char got[2048];
        tokens_str(t, ids, n, got, sizeof got);
        cr_log_error("%s/%s: %s\n  want %s\n  got  [%s]", config,
                     json_object_get_string(get(c, "name")), json_object_to_json_string(text),
                     json_object_to_json_string(get(c, "tokens")), got);
    }
    free(ids);
    return !same;
}

Test(bert_tokenizer_golden, every_text_of_every_config) {
    char *dir = bert_dir_or_skip();
    char *path = gvt_golden_path("bert_tokenizer_golden.json");
    json_object *g = gvt_load_json(path);
    json_object *configs = get(g, "configs");
    int bad = 0, total = 0;
    for (size_t k = 0; k < json_object_array_length(configs); k++) {
        json_object *cfg = json_object_array_get_idx(configs, k);
        gv_bert_tokenizer *t = load_with(dir, get(cfg, "options"));
        cr_assert_eq(gv_bert_tokenizer_vocab_size(t), (size_t)json_object_get_int(get(g, "vocab_size")),
                     "%s is not the vocabulary the golden file was made with", dir);
        json_object *cases = get(cfg, "cases");
        for (size_t i = 0; i < json_object_array_length(cases); i++, total++)
            bad += check_case(t, json_object_get_string(get(cfg, "name")),
                              json_object_array_get_idx(cases, i));
        gv_bert_tokenizer_free(t);
    }
    cr_assert_eq(bad, 0, "%d of %d texts differ from transformers' BertTokenizer", bad, total);
    cr_assert_gt(total, 70);
    json_object_put(g);
    free(path);
    free(dir);
}

/* from_pretrained reads tokenizer_config.json: the default config's texts again. */
Test(bert_tokenizer_golden, from_pretrained_is_the_default_config) {
    char *dir = bert_dir_or_skip();
    char *path = gvt_golden_path("bert_tokenizer_golden.json");
    json_object *g = gvt_load_json(path);
    json_object *cfg = json_object_array_get_idx(get(g, "configs"), 0);
    cr_assert_str_eq(json_object_get_string(get(cfg, "name")), "default");
    gv_bert_tokenizer *t = GVT_NN(gv_bert_tokenizer_from_pretrained(dir));
    json_object *cases = get(cfg, "cases");
    int bad = 0;
    for (size_t i = 0; i < json_object_array_length(cases); i++)
        bad += check_case(t, "from_pretrained", json_object_array_get_idx(cases, i));
    cr_assert_eq(bad, 0, "%d texts differ", bad);
    cr_assert_eq(gv_bert_cls_id(t), 101);
    cr_assert_eq(gv_bert_sep_id(t), 102);
    cr_assert_eq(gv_bert_pad_id(t), 0);
    cr_assert_eq(gv_bert_unk_id(t), 100);
    gv_bert_tokenizer_free(t);
    json_object_put(g);
    free(path);
    free(dir);
}

static void check_matrix(const char *batch, const char *what, const gv_tensor *got, json_object *want) {
    size_t rows = json_object_array_length(want);
    size_t cols = json_object_array_length(json_object_array_get_idx(want, 0));
    cr_assert_eq(gv_tensor_rank(got), 2, "%s %s: rank", batch, what);
    cr_assert_eq(gv_tensor_dim(got, 0), (int64_t)rows, "%s %s: rows", batch, what);
    cr_assert_eq(gv_tensor_dim(got, 1), (int64_t)cols, "%s %s: %lld columns, want %zu", batch, what,
                 (long long)gv_tensor_dim(got, 1), cols);
    cr_assert_eq(gv_tensor_dtype(got), GV_I32);
    const int32_t *v = gv_tensor_data_const(got);
    for (size_t i = 0; i < rows; i++) {
        json_object *row = json_object_array_get_idx(want, i);
        for (size_t j = 0; j < cols; j++)
            cr_assert_eq(v[i * cols + j], json_object_get_int(json_object_array_get_idx(row, j)),
                         "%s %s[%zu][%zu]: %d, want %d", batch, what, i, j, v[i * cols + j],
                         json_object_get_int(json_object_array_get_idx(row, j)));
    }
}

static const char **strings(json_object *arr) {
    if (json_object_is_type(arr, json_type_null)) return NULL;
    size_t n = json_object_array_length(arr);
    const char **s = calloc(n, sizeof *s);
    for (size_t i = 0; i < n; i++) s[i] = json_object_get_string(json_object_array_get_idx(arr, i));
    return s;
}

Test(bert_tokenizer_golden, batches_pad_and_truncate_as_transformers) {
    char *dir = bert_dir_or_skip();
    char *path = gvt_golden_path("bert_tokenizer_golden.json");
    json_object *g = gvt_load_json(path);
    gv_bert_tokenizer *t = GVT_NN(gv_bert_tokenizer_from_pretrained(dir));
    json_object *batches = get(g, "batches");
    cr_assert_eq(json_object_array_length(batches), 4);
    for (size_t k = 0; k < json_object_array_length(batches); k++) {
        json_object *b = json_object_array_get_idx(batches, k);
        const char *name = json_object_get_string(get(b, "name"));
        const char **texts = strings(get(b, "texts")), **texts_b = strings(get(b, "texts_b"));
        gv_bert_encode_options o = {
            .max_length = json_object_get_int(get(b, "max_length")),
            .pad_to_max_length = strcmp(json_object_get_string(get(b, "padding")), "max_length") == 0,
            .texts_b = texts_b,
        };
        gv_bert_batch out;
        GVT_OK(gv_bert_encode(t, texts, json_object_array_length(get(b, "texts")), &o, &out));
        check_matrix(name, "input_ids", out.input_ids, get(b, "input_ids"));
        check_matrix(name, "attention_mask", out.attention_mask, get(b, "attention_mask"));
        check_matrix(name, "token_type_ids", out.token_type_ids, get(b, "token_type_ids"));
        gv_bert_batch_free(&out);
        cr_assert_null(out.input_ids);
        free(texts);
        free(texts_b);
    }
    gv_bert_tokenizer_free(t);
    json_object_put(g);
    free(path);
    free(dir);
}

/* ---- a tiny vocabulary ------------------------------------------------------ */

static void tmp_setup(void) { gvt_tmpdir_make("berttok"); }
static void tmp_teardown(void) { gvt_tmpdir_remove(); }

TestSuite(bert_tokenizer_tiny, .init = tmp_setup, .fini = tmp_teardown);

/* id = line number - 1 */
static const char tiny_vocab[] =
    "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"   /* 0-4 */
    "un\n##aff\n##able\nu\n##n\n"            /* 5-9 */
    "##a\n##f\n##b\n##l\n##e\n"              /* 10-14 */
    "a\nb\n,\n!\nhello\n"                    /* 15-19 */
    "cafe\nx\n##x\nab\nabc\n"                /* 20-24 */
    "##cd\n\xc3\xa9\n##\xc3\xa9\nc\n##z\n";  /* 25-29: é ##é */

static char *write_vocab(const char *name, const char *text, size_t len) {
    char *p = gvt_tmp_path(name);
    gvt_write_file(p, text, len);
    return p;
}

static gv_bert_tokenizer *tiny(const gv_bert_tokenizer_options *o) {
    char *p = write_vocab("vocab.txt", tiny_vocab, sizeof tiny_vocab - 1);
    gv_bert_tokenizer *t = GVT_NN(gv_bert_tokenizer_load(p, o));
    free(p);
    return t;
}

/* tokenize must give exactly want (terminated by -1) */
#define EXPECT_IDS(t, text, ...)                                                            \
    do {                                                                                    \
        const int32_t want_[] = {__VA_ARGS__, -1};                                          \
        size_t nw_ = 0;                                                                     \
        while (want_[nw_] >= 0) nw_++;                                                      \
        int32_t *ids_ = NULL;                                                               \
        size_t n_ = 0;                                                                      \
        GVT_OK(gv_bert_tokenize((t), (text), &ids_, &n_));                                  \
        char got_[512];                                                                     \
        tokens_str((t), ids_, n_, got_, sizeof got_);                                       \
        cr_assert_eq(n_, nw_, "%s: %zu tokens (%s), want %zu", (text), n_, got_, nw_);      \
        for (size_t i_ = 0; i_ < n_; i_++)                                                  \
            cr_assert_eq(ids_[i_], want_[i_], "%s: token %zu: got %s", (text), i_, got_);   \
        free(ids_);                                                                         \
    } while (0)

Test(bert_tokenizer_tiny, vocabulary_lookups) {
    gv_bert_tokenizer *t = tiny(NULL);
    cr_assert_eq(gv_bert_tokenizer_vocab_size(t), 30);
    cr_assert_eq(gv_bert_token_to_id(t, "##aff"), 6);
    cr_assert_eq(gv_bert_token_to_id(t, "aff"), -1);
    cr_assert_eq(gv_bert_token_to_id(t, "\xc3\xa9"), 26);
    cr_assert_str_eq(gv_bert_id_to_token(t, 7), "##able");
    cr_assert_null(gv_bert_id_to_token(t, 30));
    cr_assert_null(gv_bert_id_to_token(t, -1));
    cr_assert_eq(gv_bert_pad_id(t), 0);
    cr_assert_eq(gv_bert_unk_id(t), 1);
    cr_assert_eq(gv_bert_cls_id(t), 2);
    cr_assert_eq(gv_bert_sep_id(t), 3);
    gv_bert_tokenizer_free(t);
}

Test(bert_tokenizer_tiny, greedy_longest_match_first) {
    gv_bert_tokenizer *t = tiny(NULL);
    EXPECT_IDS(t, "unaffable", 5, 6, 7);   /* un ##aff ##able, not u ##n ##a ##f ... */
    EXPECT_IDS(t, "abc", 24);              /* the whole word, not ab + ... */
    EXPECT_IDS(t, "abcx", 24, 22);         /* abc ##x */
    EXPECT_IDS(t, "ab", 23);
    EXPECT_IDS(t, "bab", 16, 10, 12);      /* b ##a ##b: ## on every piece after the first */
    gv_bert_tokenizer_free(t);
}

Test(bert_tokenizer_tiny, an_unmatched_piece_makes_the_whole_word_unk) {
    gv_bert_tokenizer *t = tiny(NULL);
    EXPECT_IDS(t, "unafz", 5, 10, 11, 29); /* un ##a ##f ##z */
    EXPECT_IDS(t, "unafq", 1);             /* un ##a ##f, then nothing for q: [UNK] alone */
    /* greedy does not backtrack: abc leaves d, and there is no ##d, so the
       word is [UNK] although ab ##cd would spell it */
    EXPECT_IDS(t, "abcd", 1);
    EXPECT_IDS(t, "hello z hello", 19, 1, 19); /* only ##z: z cannot start a word */
    gv_bert_tokenizer_free(t);
}

Test(bert_tokenizer_tiny, max_input_chars_per_word_counts_code_points) {
    gv_bert_tokenizer *t = tiny(&(gv_bert_tokenizer_options){.max_input_chars_per_word = 5,
                                                              .strip_accents = -1});
    EXPECT_IDS(t, "xxxxx", 21, 22, 22, 22, 22);
    EXPECT_IDS(t, "xxxxxx", 1);
    /* five é are 10 bytes but 5 characters */
    EXPECT_IDS(t, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 26, 27, 27, 27, 27);
    EXPECT_IDS(t, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 1);
    gv_bert_tokenizer_free(t);
    t = tiny(NULL); /* the default is 100 */
    char word[102];
    memset(word, 'x', 100);
    word[100] = '\0';
    int32_t *ids = NULL;
    size_t n = 0;
    GVT_OK(gv_bert_tokenize(t, word, &ids, &n));
    cr_assert_eq(n, 100);
    free(ids);
    word[100] = 'x', word[101] = '\0';
    EXPECT_IDS(t, word, 1);
    gv_bert_tokenizer_free(t);
}

Test(bert_tokenizer_tiny, punctuation_case_accents_and_special_tokens) {
    gv_bert_tokenizer *t = tiny(NULL);
    EXPECT_IDS(t, "Hello,hello!", 19, 17, 19, 18);
    EXPECT_IDS(t, "  HELLO\t\n", 19);
    EXPECT_IDS(t, "Caf\xc3\xa9", 20);              /* é stripped */
    EXPECT_IDS(t, "CAFE\xcc\x81", 20);             /* combining acute stripped */
    EXPECT_IDS(t, "[CLS]hello[SEP][MASK]", 2, 19, 3, 4);
    EXPECT_IDS(t, "[cls]", 1, 1, 1);               /* [ cls ]: case-sensitive, and not in this vocabulary */
    EXPECT_IDS(t, "", -1);
    gv_bert_tokenizer_free(t);
    t = tiny(&(gv_bert_tokenizer_options){.keep_case = true});
    EXPECT_IDS(t, "Hello hello", 1, 19);
    EXPECT_IDS(t, "caf\xc3\xa9", 28, 10, 11, 27);  /* cased: accents kept, c ##a ##f ##é */
    EXPECT_IDS(t, "e\xcc\x81 ce\xcc\x81", 26, 28, 27); /* e + U+0301 is é after NFC */
    gv_bert_tokenizer_free(t);
    t = tiny(&(gv_bert_tokenizer_options){.keep_case = true, .strip_accents = 1});
    EXPECT_IDS(t, "caf\xc3\xa9", 20);
    gv_bert_tokenizer_free(t);
}

Test(bert_tokenizer_tiny, text_with_nul_bytes) {
    gv_bert_tokenizer *t = tiny(NULL);
    int32_t *ids = NULL;
    size_t n = 0;
    GVT_OK(gv_bert_tokenize_n(t, "hel\0lo ab", 9, &ids, &n)); /* _clean_text drops U+0000 */
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], 19);
    cr_assert_eq(ids[1], 23);
    free(ids);
    gv_bert_tokenizer_free(t);
}

Test(bert_tokenizer_tiny, vocab_lines_as_python_reads_them) {
    /* \r\n and a lone \r end lines (universal newlines); no final newline */
    static const char v[] = "[PAD]\r\n[UNK]\r[CLS]\n[SEP]\n\nhello\nhello";
    char *p = write_vocab("crlf.txt", v, sizeof v - 1);
    gv_bert_tokenizer *t = GVT_NN(gv_bert_tokenizer_load(p, NULL));
    cr_assert_eq(gv_bert_tokenizer_vocab_size(t), 7);
    cr_assert_eq(gv_bert_unk_id(t), 1);
    cr_assert_eq(gv_bert_sep_id(t), 3);
    cr_assert_str_eq(gv_bert_id_to_token(t, 4), "");
    cr_assert_eq(gv_bert_token_to_id(t, "hello"), 6); /* the later duplicate wins */
    cr_assert_str_eq(gv_bert_id_to_token(t, 5), "hello");
    EXPECT_IDS(t, "[MASK]", 1, 1, 1); /* no [MASK] in this vocabulary: plain text, [ mask ] */
    gv_bert_tokenizer_free(t);
    free(p);
}

static int32_t at(const gv_tensor *x, int64_t i, int64_t j) {
    return ((const int32_t *)gv_tensor_data_const(x))[i * gv_tensor_dim(x, 1) + j];
}

static void expect_row(const gv_tensor *x, int64_t i, const int32_t *want, int64_t n) {
    cr_assert_eq(gv_tensor_dim(x, 1), n);
    for (int64_t j = 0; j < n; j++)
        cr_assert_eq(at(x, i, j), want[j], "row %lld col %lld: %d, want %d", (long long)i,
                     (long long)j, at(x, i, j), want[j]);
}

Test(bert_tokenizer_tiny, padding_truncation_and_masks) {
    gv_bert_tokenizer *t = tiny(NULL);
    const char *texts[] = {"hello", "a b a b a b", ""};
    gv_bert_batch b;
    GVT_OK(gv_bert_encode(t, texts, 3, &(gv_bert_encode_options){.max_length = 6}, &b));
    cr_assert_eq(gv_tensor_dim(b.input_ids, 0), 3);
    expect_row(b.input_ids, 0, (int32_t[]){2, 19, 3, 0, 0, 0}, 6);
    expect_row(b.input_ids, 1, (int32_t[]){2, 15, 16, 15, 16, 3}, 6);
    expect_row(b.input_ids, 2, (int32_t[]){2, 3, 0, 0, 0, 0}, 6);
    expect_row(b.attention_mask, 0, (int32_t[]){1, 1, 1, 0, 0, 0}, 6);
    expect_row(b.attention_mask, 1, (int32_t[]){1, 1, 1, 1, 1, 1}, 6);
    expect_row(b.token_type_ids, 1, (int32_t[]){0, 0, 0, 0, 0, 0}, 6);
    gv_bert_batch_free(&b);
    gv_bert_batch_free(&b); /* zeroed: a no-op */

    /* padding='longest' is the longest text, not max_length */
    GVT_OK(gv_bert_encode(t, texts, 1, &(gv_bert_encode_options){.max_length = 50}, &b));
    expect_row(b.input_ids, 0, (int32_t[]){2, 19, 3}, 3);
    gv_bert_batch_free(&b);
    GVT_OK(gv_bert_encode(t, texts, 1, &(gv_bert_encode_options){.max_length = 5, .pad_to_max_length = true}, &b));
    expect_row(b.input_ids, 0, (int32_t[]){2, 19, 3, 0, 0}, 5);
    expect_row(b.attention_mask, 0, (int32_t[]){1, 1, 1, 0, 0}, 5);
    gv_bert_batch_free(&b);
    GVT_OK(gv_bert_encode(t, texts + 2, 1, &(gv_bert_encode_options){.max_length = 2}, &b));
    expect_row(b.input_ids, 0, (int32_t[]){2, 3}, 2);
    gv_bert_batch_free(&b);
    GVT_OK(gv_bert_encode(t, texts, 2, NULL, &b)); /* max_length = model_max_length 512 */
    cr_assert_eq(gv_tensor_dim(b.input_ids, 1), 8);
    gv_bert_batch_free(&b);
    gv_bert_tokenizer_free(t);
}

Test(bert_tokenizer_tiny, pairs_truncate_longest_first) {
    gv_bert_tokenizer *t = tiny(NULL);
    const char *a[] = {"a a a a a a", "a", "a a a"}, *bb[] = {"b b", "b b b b b b", "b b b"};
    gv_bert_batch b;
    GVT_OK(gv_bert_encode(t, a, 3, &(gv_bert_encode_options){.max_length = 8, .texts_b = bb}, &b));
    /* 6 + 2 + 3 > 8: the longer loses 3 (down to 3), then 6 + ... ; HF's counts */
    expect_row(b.input_ids, 0, (int32_t[]){2, 15, 15, 15, 3, 16, 16, 3}, 8);
    expect_row(b.token_type_ids, 0, (int32_t[]){0, 0, 0, 0, 0, 1, 1, 1}, 8);
    expect_row(b.input_ids, 1, (int32_t[]){2, 15, 3, 16, 16, 16, 16, 3}, 8);
    /* equal lengths 3 + 3, remove 1: the second text loses it */
    expect_row(b.input_ids, 2, (int32_t[]){2, 15, 15, 15, 3, 16, 16, 3}, 8);
    expect_row(b.attention_mask, 2, (int32_t[]){1, 1, 1, 1, 1, 1, 1, 1}, 8);
    gv_bert_batch_free(&b);
    const char *e[] = {""};
    GVT_OK(gv_bert_encode(t, a + 1, 1, &(gv_bert_encode_options){.max_length = 3, .texts_b = e}, &b));
    expect_row(b.input_ids, 0, (int32_t[]){2, 3, 3}, 3);
    expect_row(b.token_type_ids, 0, (int32_t[]){0, 0, 1}, 3);
    gv_bert_batch_free(&b);
    gv_bert_tokenizer_free(t);
}

Test(bert_tokenizer_tiny, encode_errors) {
    gv_bert_tokenizer *t = tiny(NULL);
    const char *texts[] = {"hello", "a b a b", "ab\xff"};
    gv_bert_batch b;
    GVT_FAILS(gv_bert_encode(t, texts, 1, &(gv_bert_encode_options){.max_length = 1}, &b), GV_ERR_ARG,
              "max_length 1");
    cr_assert_null(b.input_ids);
    GVT_FAILS(gv_bert_encode(t, texts, 1, &(gv_bert_encode_options){.max_length = 2}, &b), GV_ERR_ARG,
              "max_length 2");
    GVT_FAILS(gv_bert_encode(t, texts, 1, &(gv_bert_encode_options){.max_length = 2, .texts_b = texts},
                             &b), GV_ERR_ARG, "max_length 2");
    GVT_FAILS(gv_bert_encode(t, texts, 2, &(gv_bert_encode_options){.max_length = 4, .no_truncation = true},
                             &b), GV_ERR_ARG, "texts[1]");
    GVT_FAILS(gv_bert_encode(t, texts, 3, NULL, &b), GV_ERR_ARG, "texts[2] is not valid UTF-8 at byte offset 2");
    GVT_FAILS(gv_bert_encode(t, texts, 2, &(gv_bert_encode_options){.texts_b = texts + 1}, &b), GV_ERR_ARG,
              "texts_b[1] is not valid UTF-8 at byte offset 2");
    GVT_FAILS(gv_bert_encode(t, texts, 0, NULL, &b), GV_ERR_ARG, "no texts");
    GVT_FAILS(gv_bert_encode(NULL, texts, 1, NULL, &b), GV_ERR_ARG, "NULL");
    GVT_FAILS(gv_bert_encode(t, NULL, 1, NULL, &b), GV_ERR_ARG, "texts is NULL");
    GVT_FAILS(gv_bert_encode(t, texts, 1, NULL, NULL), GV_ERR_ARG, "out is NULL");
    const char *with_null[] = {"a", NULL};
    GVT_FAILS(gv_bert_encode(t, with_null, 2, NULL, &b), GV_ERR_ARG, "texts[1] is NULL");
    gv_bert_tokenizer_free(t);
}

Test(bert_tokenizer_tiny, tokenize_errors) {
    gv_bert_tokenizer *t = tiny(NULL);
    int32_t *ids = (int32_t *)1;
    size_t n = 7;
    GVT_FAILS(gv_bert_tokenize(t, "hello \xe2\x82", &ids, &n), GV_ERR_ARG, "byte offset 6");
    cr_assert_null(ids);
    cr_assert_eq(n, 0);
    GVT_FAILS(gv_bert_tokenize(t, "a\xc0\x80", &ids, &n), GV_ERR_ARG, "byte offset 1"); /* overlong */
    GVT_FAILS(gv_bert_tokenize(t, "\xed\xa0\x80", &ids, &n), GV_ERR_ARG, "byte offset 0"); /* surrogate */
    GVT_FAILS(gv_bert_tokenize(t, "ab\xf4\x90\x80\x80", &ids, &n), GV_ERR_ARG, "byte offset 2");
    GVT_FAILS(gv_bert_tokenize(NULL, "a", &ids, &n), GV_ERR_ARG, "NULL");
    GVT_FAILS(gv_bert_tokenize(t, NULL, &ids, &n), GV_ERR_ARG, "text is NULL");
    GVT_FAILS(gv_bert_tokenize(t, "a", NULL, &n), GV_ERR_ARG, "ids is NULL");
    GVT_FAILS(gv_bert_tokenize(t, "a", &ids, NULL), GV_ERR_ARG, "n is NULL");
    gv_bert_tokenizer_free(t);
    gv_bert_tokenizer_free(NULL);
}

Test(bert_tokenizer_tiny, bad_vocab_files_name_the_file) {
    char *missing = gvt_tmp_path("nope.txt");
    GVT_NULL(gv_bert_tokenizer_load(missing, NULL), GV_ERR_NOT_FOUND, missing);
    GVT_NULL(gv_bert_tokenizer_load(gvt_tmpdir, NULL), GV_ERR_IO, gvt_tmpdir); /* a directory */
    char *empty = write_vocab("empty.txt", "", 0);
    GVT_NULL(gv_bert_tokenizer_load(empty, NULL), GV_ERR_FORMAT, "empty.txt': the vocabulary is empty");
    char *nosep = write_vocab("nosep.txt", "[PAD]\n[UNK]\n[CLS]\nhello\n", 24);
    GVT_NULL(gv_bert_tokenizer_load(nosep, NULL), GV_ERR_FORMAT, "nosep.txt': the special token [SEP]");
    char *bad = write_vocab("bad.txt", "[PAD]\n[UNK]\nca\xfe\n", 15);
    GVT_NULL(gv_bert_tokenizer_load(bad, NULL), GV_ERR_FORMAT, "bad.txt': line 3 is not valid UTF-8");
    GVT_NULL(gv_bert_tokenizer_load(NULL, NULL), GV_ERR_ARG, "NULL");
    GVT_NULL(gv_bert_tokenizer_load(empty, &(gv_bert_tokenizer_options){.strip_accents = 2}), GV_ERR_ARG,
             "strip_accents 2");
    GVT_NULL(gv_bert_tokenizer_from_pretrained(NULL), GV_ERR_ARG, "NULL");
    GVT_NULL(gv_bert_tokenizer_from_pretrained(missing), GV_ERR_NOT_FOUND, "nope.txt/vocab.txt");
    free(missing), free(empty), free(nosep), free(bad);
}

static void write_config(const char *json) {
    char *p = gvt_tmp_path("tokenizer_config.json");
    gvt_write_file(p, json, strlen(json));
    free(p);
}

Test(bert_tokenizer_tiny, from_pretrained_reads_tokenizer_config) {
    char *v = write_vocab("vocab.txt", tiny_vocab, sizeof tiny_vocab - 1);
    gv_bert_tokenizer *t = GVT_NN(gv_bert_tokenizer_from_pretrained(gvt_tmpdir)); /* no config */
    EXPECT_IDS(t, "Hello", 19);
    gv_bert_tokenizer_free(t);
    write_config("{\"do_lower_case\": false, \"strip_accents\": null, \"model_max_length\": 4,"
                 " \"unk_token\": {\"content\": \"[UNK]\"}, \"never_split\": null}");
    t = GVT_NN(gv_bert_tokenizer_from_pretrained(gvt_tmpdir));
    EXPECT_IDS(t, "Hello hello", 1, 19);
    const char *texts[] = {"a b a b a"};
    gv_bert_batch b;
    GVT_OK(gv_bert_encode(t, texts, 1, NULL, &b));
    expect_row(b.input_ids, 0, (int32_t[]){2, 15, 16, 3}, 4);
    gv_bert_batch_free(&b);
    gv_bert_tokenizer_free(t);
    write_config("{\"model_max_length\": 1000000000000000019884624838656}"); /* int(1e30): no limit */
    t = GVT_NN(gv_bert_tokenizer_from_pretrained(gvt_tmpdir));
    GVT_OK(gv_bert_encode(t, texts, 1, NULL, &b));
    cr_assert_eq(gv_tensor_dim(b.input_ids, 1), 7);
    gv_bert_batch_free(&b);
    GVT_FAILS(gv_bert_encode(t, texts, 1, &(gv_bert_encode_options){.pad_to_max_length = true}, &b),
              GV_ERR_ARG, "pad_to_max_length");
    gv_bert_tokenizer_free(t);
    write_config("{\"do_lower_case\": tru");
    GVT_NULL(gv_bert_tokenizer_from_pretrained(gvt_tmpdir), GV_ERR_FORMAT, "tokenizer_config.json'");
    write_config("{\"do_lower_case\": 1}");
    GVT_NULL(gv_bert_tokenizer_from_pretrained(gvt_tmpdir), GV_ERR_FORMAT, "do_lower_case");
    write_config("{\"do_basic_tokenize\": false}");
    GVT_NULL(gv_bert_tokenizer_from_pretrained(gvt_tmpdir), GV_ERR_UNSUPPORTED, "do_basic_tokenize");
    write_config("{\"never_split\": [\"hello\"]}");
    GVT_NULL(gv_bert_tokenizer_from_pretrained(gvt_tmpdir), GV_ERR_UNSUPPORTED, "never_split");
    write_config("{\"cls_token\": \"<s>\"}");
    GVT_NULL(gv_bert_tokenizer_from_pretrained(gvt_tmpdir), GV_ERR_UNSUPPORTED, "cls_token");
    free(v);
}
