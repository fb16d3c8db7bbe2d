/* libFuzzer target: the BERT tokenizer (src/text/bert_tokenizer.c): its
 * vocab.txt loader (gv_bert_tokenizer_load_buffer), then gv_bert_tokenize_n
 * and gv_bert_encode on arbitrary text. Any input must give a tokenizer
 * and ids or a clean error with a message, never a crash, a leak or
 * undefined behaviour. Built and run by scripts/fuzz.sh.
 *
 * Input: byte 0 the tokenizer's options, byte 1 the encode options, then
 * vocab.txt up to the first NUL byte, then the text (the whole rest for
 * gv_bert_tokenize_n, NUL bytes and all; cut at the NUL bytes into up to 8
 * texts, or pairs, for gv_bert_encode). Bit 4 of byte 0 appends the special
 * tokens to the vocabulary, so most inputs get past the loader.
 *
 * Checked besides: every id a line of the vocabulary gets back through the
 * hash table (its own id or a later duplicate's); the text is valid UTF-8
 * exactly when tokenizing succeeds, and an error names the offset of the
 * first bad byte; ids are in the vocabulary; and every row of a batch is
 * [CLS] ids [SEP] (ids [SEP]) [PAD]... with the ids of gv_bert_tokenize of
 * that text, truncated as transformers' longest_first does (one token at a
 * time from the longer text, the second on a tie), mask and type ids to
 * match, and every error gv_bert_encode gives is the one expected. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "grove/tensor.h"
#include "grove/tokenizer.h"
#include "text/tokenizer_internal.h"

#define LABEL "fuzz/vocab.txt"
#define MAX_TEXTS 8

static void check(bool ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "%s (last error: '%s')\n", what, gv_last_error());
    abort();
}

/* The offset of the first byte that does not start a valid UTF-8 sequence
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF), or
 * len when there is none. */
static size_t utf8_bad_at(const unsigned char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc0 && c < 0xe0) k = 2, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c < 0xf0) k = 3, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c < 0xf8) k = 4, cp = c & 0x07, min = 0x10000;
        else return i;
        if (k > len - i) return i;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return i;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return i;
        i += k;
    }
    return len;
}

static bool ends_with(const char *s, const char *end) {
    size_t n = strlen(s), m = strlen(end);
    return n >= m && strcmp(s + n - m, end) == 0;
}

/* The hash table gives every line back: token_to_id of line i is i or a
 * later line with the same text (load_vocab: a later duplicate wins). */
static void check_vocab(const gv_bert_tokenizer *t) {
    size_t v = gv_bert_tokenizer_vocab_size(t);
    check(v > 0 && v <= INT32_MAX, "vocabulary size");
    for (size_t i = 0; i < v; i++) {
        const char *s = gv_bert_id_to_token(t, (int32_t)i);
        check(s != NULL, "id_to_token of an id in range");
        int32_t j = gv_bert_token_to_id(t, s);
        check(j >= (int32_t)i && strcmp(gv_bert_id_to_token(t, j), s) == 0,
              "token_to_id(id_to_token(i)) is neither i nor a later duplicate");
    }
    check(gv_bert_id_to_token(t, (int32_t)v) == NULL && gv_bert_id_to_token(t, -1) == NULL,
          "id_to_token out of range");
    const struct {
        int32_t id;
        const char *name;
    } sp[] = {{gv_bert_cls_id(t), "[CLS]"},
              {gv_bert_sep_id(t), "[SEP]"},
              {gv_bert_pad_id(t), "[PAD]"},
              {gv_bert_unk_id(t), "[UNK]"}};
    for (int k = 0; k < 4; k++)
        check(sp[k].id >= 0 && strcmp(gv_bert_id_to_token(t, sp[k].id), sp[k].name) == 0,
              "special token id");
}

static void check_ids(const gv_bert_tokenizer *t, const int32_t *ids, size_t n) {
    size_t v = gv_bert_tokenizer_vocab_size(t);
    for (size_t i = 0; i < n; i++) check(ids[i] >= 0 && (size_t)ids[i] < v, "id out of range");
}

/* tokenize_n succeeds exactly on valid UTF-8, else names the first bad byte. */
static void fuzz_tokenize(const gv_bert_tokenizer *t, const char *text, size_t len) {
    int32_t *ids = NULL;
    size_t n = 0, bad = utf8_bad_at((const unsigned char *)text, len);
    gv_status st = gv_bert_tokenize_n(t, text, len, &ids, &n);
    if (bad < len) {
        char want[64];
        snprintf(want, sizeof want, "at byte offset %zu", bad);
        check(st == GV_ERR_ARG && ends_with(gv_last_error(), want),
              "invalid UTF-8 without the error naming its offset");
        check(ids == NULL && n == 0, "ids set on an error");
        return;
    }
    check(st == GV_OK, "valid UTF-8 refused");
    check_ids(t, ids, n);
    free(ids);
}

typedef struct tokens {
    int32_t *v;
    size_t n;
} tokens;

/* gv_bert_encode of texts (pairs when b is not NULL) against the ids of
 * gv_bert_tokenize of each text. */
static void fuzz_encode(const gv_bert_tokenizer *t, const char *const *a, const char *const *b,
                        size_t n, int64_t max_length, bool pad, bool no_trunc) {
    gv_bert_encode_options o = {.max_length = max_length, .pad_to_max_length = pad,
                                .no_truncation = no_trunc, .texts_b = b};
    int64_t max_len = max_length ? max_length : 512, specials = b ? 3 : 2;
    /* the error gv_bert_encode must give, in the order it checks */
    char want[160] = "";
    tokens ta[MAX_TEXTS] = {{0}}, tb[MAX_TEXTS] = {{0}};
    if (max_len < specials) snprintf(want, sizeof want, "leaves no room for [CLS]");
    for (size_t i = 0; i < n && !*want; i++) {
        for (int k = 0; k < (b ? 2 : 1) && !*want; k++) {
            const char *s = k ? b[i] : a[i];
            size_t bad = utf8_bad_at((const unsigned char *)s, strlen(s));
            if (bad < strlen(s)) {
                snprintf(want, sizeof want, "%s[%zu] is not valid UTF-8 at byte offset %zu",
                         k ? "texts_b" : "texts", i, bad);
                break;
            }
            tokens *tk = k ? &tb[i] : &ta[i];
            check(gv_bert_tokenize(t, s, &tk->v, &tk->n) == GV_OK, "tokenize");
        }
        if (*want) break;
        int64_t total = (int64_t)(ta[i].n + tb[i].n) + specials;
        if (total > max_len && no_trunc)
            snprintf(want, sizeof want, "texts[%zu] is %lld tokens, more than max_length", i,
                     (long long)total);
        else if (total > max_len && !b && max_len == 2)
            snprintf(want, sizeof want, "max_length 2 leaves no room for texts[%zu]", i);
    }
    gv_bert_batch out;
    gv_status st = gv_bert_encode(t, a, n, &o, &out);
    if (*want) {
        if (st != GV_ERR_ARG || !strstr(gv_last_error(), want)) {
            fprintf(stderr, "expected an error with '%s', got status %d: %s\n", want, (int)st,
                    gv_last_error());
            abort();
        }
        check(!out.input_ids && !out.attention_mask && !out.token_type_ids, "a failed batch is set");
    } else {
        check(st == GV_OK, "gv_bert_encode failed");
        const int64_t *shape = gv_tensor_shape(out.input_ids);
        int64_t len = shape[1];
        check(gv_tensor_rank(out.input_ids) == 2 && shape[0] == (int64_t)n && len <= max_len,
              "batch shape");
        const int32_t *ids = gv_tensor_data_const(out.input_ids),
                      *mask = gv_tensor_data_const(out.attention_mask),
                      *types = gv_tensor_data_const(out.token_type_ids);
        int64_t longest = 0;
        for (size_t i = 0; i < n; i++, ids += len, mask += len, types += len) {
            size_t ka = ta[i].n, kb = tb[i].n;
            /* longest_first, one token at a time */
            for (int64_t extra = (int64_t)(ka + kb) + specials - max_len; extra > 0; extra--) {
                if (b && kb >= ka) kb--;
                else ka--;
            }
            int64_t m = (int64_t)(ka + kb) + specials, j = 0;
            if (m > longest) longest = m;
            check(m <= len, "row longer than the batch");
            check(ids[j] == gv_bert_cls_id(t) && types[j] == 0, "[CLS] first");
            j++;
            for (size_t k = 0; k < ka; k++, j++)
                check(ids[j] == ta[i].v[k] && types[j] == 0, "first text's ids");
            check(ids[j] == gv_bert_sep_id(t) && types[j] == 0, "[SEP] after the first text");
            j++;
            if (b) {
                for (size_t k = 0; k < kb; k++, j++)
                    check(ids[j] == tb[i].v[k] && types[j] == 1, "second text's ids");
                check(ids[j] == gv_bert_sep_id(t) && types[j] == 1, "[SEP] after the second text");
                j++;
            }
            for (int64_t k = 0; k < len; k++) check(mask[k] == (k < m), "attention mask");
            for (; j < len; j++)
                check(ids[j] == gv_bert_pad_id(t) && types[j] == 0, "padding");
        }
        check(len == (pad ? max_len : longest), "batch length");
        gv_bert_batch_free(&out);
    }
    for (size_t i = 0; i < n; i++) free(ta[i].v), free(tb[i].v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint8_t opt = data[0], enc = data[1];
    const char *rest = (const char *)data + 2;
    size_t rest_len = size - 2;
    const char *nul = memchr(rest, 0, rest_len);
    size_t vocab_len = nul ? (size_t)(nul - rest) : rest_len;

    static const char specials[] = "\n[UNK]\n[CLS]\n[SEP]\n[PAD]\n[MASK]";
    bool add = opt & 16;
    size_t vlen = vocab_len + (add ? sizeof specials - 1 : 0);
    char *vocab = malloc(vlen ? vlen : 1); /* exactly its size: no NUL after it */
    if (!vocab) abort();
    memcpy(vocab, rest, vocab_len);
    if (add) memcpy(vocab + vocab_len, specials, sizeof specials - 1);
    gv_bert_tokenizer_options o = {
        .keep_case = opt & 1,
        .strip_accents = (int[]){0, 1, -1, 0}[(opt >> 1) & 3],
        .no_chinese_chars_split = opt & 8,
        .max_input_chars_per_word = 3 * (opt >> 5),
    };
    unsigned long long errors = gv_error_count();
    gv_bert_tokenizer *t = gv_bert_tokenizer_load_buffer(vocab, vlen, LABEL, &o);
    free(vocab);
    if (!t) {
        check(gv_error_count() > errors, "NULL without an error");
        gv_status st = gv_last_status();
        check(st == GV_ERR_FORMAT || st == GV_ERR_OVERFLOW || st == GV_ERR_NOMEM,
              "an error of an unexpected kind");
        check(st == GV_ERR_NOMEM || strstr(gv_last_error(), LABEL), "the error does not name the file");
        return 0;
    }
    check_vocab(t);

    /* the text: what follows the vocabulary's NUL, in a buffer of its own size */
    size_t tlen = nul ? rest_len - vocab_len - 1 : 0;
    char *text = malloc(tlen + 1);
    if (!text) abort();
    memcpy(text, nul ? nul + 1 : "", tlen);
    fuzz_tokenize(t, text, tlen);

    /* cut at the NUL bytes (the buffer gets one more at the end) */
    text[tlen] = '\0';
    const char *texts[MAX_TEXTS];
    size_t n = 0;
    for (const char *p = text; n < MAX_TEXTS; p += strlen(p) + 1) {
        texts[n++] = p;
        if (p + strlen(p) == text + tlen) break;
    }
    bool pairs = (enc & 64) && n >= 2;
    size_t rows = pairs ? n / 2 : n;
    fuzz_encode(t, texts, pairs ? texts + rows : NULL, rows, enc & 15, enc & 16, enc & 32);
    free(text);
    gv_bert_tokenizer_free(t);
    return 0;
}
