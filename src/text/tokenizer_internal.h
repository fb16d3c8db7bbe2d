/* grove internal: the BERT tokenizer's two file parsers (bert_tokenizer.c)
 * on buffers, for gv_bert_tokenizer_load / _from_pretrained, which read the
 * files and call them, and for the fuzzers (tests/fuzz/fuzz_tokenizer.c,
 * tests/fuzz/fuzz_bert_config.c). */
#ifndef GROVE_TEXT_TOKENIZER_INTERNAL_H
#define GROVE_TEXT_TOKENIZER_INTERNAL_H

#include <stddef.h>

#include "grove/tokenizer.h"

/* gv_bert_tokenizer_load of len bytes of vocab.txt text held in memory
 * (copied; need not be NUL-terminated). label names it in messages where
 * the loader names the path. New tokenizer, or NULL with the error set. */
gv_bert_tokenizer *gv_bert_tokenizer_load_buffer(const char *text, size_t len, const char *label,
                                                 const gv_bert_tokenizer_options *o);

/* The options of len bytes of tokenizer_config.json text (need not be
 * NUL-terminated), over *o as gv_bert_tokenizer_from_pretrained reads them;
 * label names the file in messages. GV_OK, or GV_ERR_FORMAT /
 * GV_ERR_UNSUPPORTED / GV_ERR_NOMEM with the message naming label. */
gv_status gv_bert_tokenizer_config_parse(const char *text, size_t len, const char *label,
                                         gv_bert_tokenizer_options *o);

#endif
