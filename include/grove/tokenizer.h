/* grove: text to token ids. The WordPiece tokenizer of uncased (and cased)
 * BERT vocabularies, as Hugging Face's BertTokenizer does it:
 *
 *   gv_bert_tokenizer *tok = gv_bert_tokenizer_from_pretrained(dir); // vocab.txt (+ tokenizer_config.json)
 *   gv_bert_batch b;
 *   gv_bert_encode(tok, texts, n, &(gv_bert_encode_options){.max_length = 128}, &b);
 *   // b.input_ids, b.attention_mask, b.token_type_ids: int32 [n, length]
 *   gv_bert_batch_free(&b);
 *   gv_bert_tokenizer_free(tok);
 *
 * Special tokens written in the text ("[CLS]", "[MASK]", ...) are cut out
 * first and kept as they are. Basic tokenisation of the rest: clean the
 * text (drop U+0000, U+FFFD and control characters, whitespace to a space),
 * put spaces around CJK ideographs, NFC, split on whitespace, lower-case
 * (Python's str.lower(), one character at a time) and strip accents (NFD,
 * drop Mn), split off punctuation (the ASCII symbol ranges and Unicode P*);
 * then greedy longest-match-first WordPiece with "##" continuations, a word
 * longer than max_input_chars_per_word code points or with no match being
 * [UNK]. The Unicode tables (categories, NFD/NFC, lower case) are
 * utf8proc's; src/text/bert_tokenizer.c lists where they differ from
 * Python's unicodedata and how that is handled.
 *
 * Input text must be valid UTF-8 (anything else is GV_ERR_ARG naming the
 * byte offset). */
#ifndef GROVE_TOKENIZER_H
#define GROVE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grove/status.h"
#include "grove/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default) /* the public API: exported from libgrove.so */

typedef struct gv_bert_tokenizer gv_bert_tokenizer;

/* BertTokenizer's options. Every field's zero is Hugging Face's default
 * (do_lower_case=True, strip_accents=None (= follow do_lower_case),
 * tokenize_chinese_chars=True, max_input_chars_per_word 100, model_max_length 512). */
typedef struct gv_bert_tokenizer_options {
    bool keep_case;              /* do_lower_case=False */
    int strip_accents;           /* 0: as do_lower_case; 1: always (True); -1: never (False) */
    bool no_chinese_chars_split; /* tokenize_chinese_chars=False */
    int max_input_chars_per_word;/* 0 = 100 */
    int64_t model_max_length;    /* 0 = 512: the default max_length of gv_bert_encode */
} gv_bert_tokenizer_options;

/* Load vocab.txt (one token per line, id = line number). The special tokens
 * [UNK], [CLS], [SEP], [PAD] must be in it (GV_ERR_FORMAT naming the file and
 * the token otherwise). NULL options = the defaults. New tokenizer. */
gv_bert_tokenizer *gv_bert_tokenizer_load(const char *vocab_path,
                                          const gv_bert_tokenizer_options *o);
/* A Hugging Face model directory: dir/vocab.txt, and the options of
 * dir/tokenizer_config.json when it is there (do_lower_case, strip_accents,
 * tokenize_chinese_chars, model_max_length). */
gv_bert_tokenizer *gv_bert_tokenizer_from_pretrained(const char *dir);
void gv_bert_tokenizer_free(gv_bert_tokenizer *t);

size_t gv_bert_tokenizer_vocab_size(const gv_bert_tokenizer *t);
/* The id of a token string, or -1 if it is not in the vocabulary. */
int32_t gv_bert_token_to_id(const gv_bert_tokenizer *t, const char *token);
/* The token of an id (borrowed), NULL when out of range. */
const char *gv_bert_id_to_token(const gv_bert_tokenizer *t, int32_t id);
/* The ids of [CLS], [SEP], [PAD], [UNK]. */
int32_t gv_bert_cls_id(const gv_bert_tokenizer *t);
int32_t gv_bert_sep_id(const gv_bert_tokenizer *t);
int32_t gv_bert_pad_id(const gv_bert_tokenizer *t);
int32_t gv_bert_unk_id(const gv_bert_tokenizer *t);

/* tokenizer.tokenize(text) as ids, without [CLS]/[SEP]: *ids malloc'd (the
 * caller frees), *n their count (0 for an empty text; *ids may then be NULL).
 * "[CLS]", "[SEP]", "[PAD]", "[UNK]" and "[MASK]" written in the text are
 * those tokens, as in transformers (case-sensitive: "[cls]" is split like
 * any word); a [MASK] that the vocabulary lacks is plain text here
 * (transformers would give it a new id). A tokenizer is read-only after
 * loading: threads may tokenize with one tokenizer at the same time. */
gv_status gv_bert_tokenize(const gv_bert_tokenizer *t, const char *text, int32_t **ids,
                           size_t *n);
/* The same for len bytes of text, which may hold U+0000 (dropped, as
 * _clean_text does). */
gv_status gv_bert_tokenize_n(const gv_bert_tokenizer *t, const char *text, size_t len,
                             int32_t **ids, size_t *n);

/* tokenizer(texts, padding=..., truncation=True, max_length=...,
 * return_tensors='np'): [CLS] ids [SEP] (truncated to max_length), padded with
 * [PAD] to the longest text (or to max_length with pad_to_max_length);
 * attention_mask 1 for real tokens, 0 for padding; token_type_ids 0 (or
 * 1 for the second text of a pair and its [SEP]). */
typedef struct gv_bert_encode_options {
    int64_t max_length;          /* 0 = the tokenizer's model_max_length; >= 2 (or 3 with pairs).
                                    max_length 2 fits only empty texts: transformers cannot
                                    truncate a single text to nothing (it logs an error and
                                    returns it whole), grove says GV_ERR_ARG */
    bool pad_to_max_length;      /* padding='max_length' (default: padding='longest') */
    bool no_truncation;          /* truncation=False: a text longer than max_length is
                                    GV_ERR_ARG naming its index (default: truncate) */
    const char *const *texts_b;  /* NULL, or n second texts: pairs [CLS] a [SEP] b [SEP],
                                    truncated longest_first */
} gv_bert_encode_options;

typedef struct gv_bert_batch {
    gv_tensor *input_ids;        /* int32 [n, length] */
    gv_tensor *attention_mask;   /* int32 [n, length] */
    gv_tensor *token_type_ids;   /* int32 [n, length] */
} gv_bert_batch;

/* n >= 1 texts; NULL options = the defaults. On failure *out is zeroed. */
gv_status gv_bert_encode(const gv_bert_tokenizer *t, const char *const *texts, size_t n,
                         const gv_bert_encode_options *o, gv_bert_batch *out);
/* Frees the three tensors and zeroes the struct (a zeroed struct is a no-op). */
void gv_bert_batch_free(gv_bert_batch *b);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
