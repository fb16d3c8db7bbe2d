/* grove internal: the config.json parser of the Hugging Face BERT loader
 * (pretrained.c), on a buffer: gv_bert_config_load reads the file and
 * calls it, and so does the fuzzer (tests/fuzz/fuzz_bert_config.c). */
#ifndef GROVE_NN_PRETRAINED_INTERNAL_H
#define GROVE_NN_PRETRAINED_INTERNAL_H

#include <stddef.h>

#include "grove/bert.h"

/* How deeply config.json may nest (json-c's own default is 32; Hugging Face
 * configs nest 2-3 levels, Python's json.load about 1000). */
#define GV_HF_CONFIG_JSON_DEPTH 64

/* Parse len bytes of config.json text (strict JSON, gv_parse_json; text
 * need not be NUL-terminated) over gv_bert_config_defaults(). file names it
 * in messages. GV_OK with *out set; else the error (GV_ERR_FORMAT,
 * GV_ERR_UNSUPPORTED, GV_ERR_NOMEM) with its message and *out untouched. */
gv_status gv_bert_config_parse(const char *text, size_t len, const char *file,
                               gv_bert_config *out);

#endif
