/* grove: the BERT WordPiece tokenizer (include/grove/tokenizer.h).
 *
 * The reference is Hugging Face transformers 4.57.6, the slow Python
 * BertTokenizer: PreTrainedTokenizer.tokenize (tokenization_utils.py) and
 * BasicTokenizer + WordpieceTokenizer (models/bert/tokenization_bert.py).
 * One text goes through, in this order:
 *
 *   1. tokenize(): with do_lower_case, every character outside a special
 *      token ("[CLS]" ...) is lower-cased one at a time (a regex
 *      substitution, `(\[UNK\]|...)|(.+?)`); then the special tokens are cut
 *      out of the text (tokens_trie.split) and become their ids directly.
 *   2. BasicTokenizer.tokenize on each remaining piece: _clean_text,
 *      _tokenize_chinese_chars, NFC of the whole piece, whitespace_tokenize,
 *      and per word (unless it is a special token): lower() and
 *      _run_strip_accents, then _run_split_on_punc.
 *   3. WordpieceTokenizer.tokenize on each resulting word.
 *
 * Text is handled as arrays of code points (Python's str); the Unicode
 * tables are utf8proc's. Against Python 3.11's unicodedata the differences
 * are (found by comparing category, lower(), NFD and NFC of every code
 * point):
 *   - str.lower() uses the full case mapping: U+0130 'İ' lower-cases to
 *     "i\u0307", two code points; utf8proc_tolower is the simple mapping
 *     ('i'). That is SpecialCasing.txt's only unconditional multi-character
 *     lower-case mapping, and utf8proc (2.8) has no full case mapping, so
 *     py_lower below spells it out. Final sigma, the conditional mapping,
 *     never applies: step 1 lower-cases one character at a time, so 'Σ' at
 *     the end of a word is 'σ' in Python too, and by step 2 no capital
 *     sigma is left.
 *   - utf8proc 2.8 has Unicode 15.0, Python 3.11's unicodedata 14.0.0: the
 *     4,489 code points that Unicode 15.0 assigned (Kawi U+11F00..., CJK
 *     extension H U+31350..., U+0CF3, U+0ECE, ...) are Cn in Python, so
 *     _clean_text drops them as control characters; here they keep their
 *     Unicode 15.0 category. Python 3.12 (Unicode 15.0) agrees with grove.
 *     Everything else (categories, lower case, NFD, NFC of all other code
 *     points) is the same. */
#include "grove/tokenizer.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/error.h"
#include "tokenizer_internal.h"

/* ---- growable arrays ------------------------------------------------------ */

typedef struct cpbuf {
    int32_t *v;
    size_t n, cap;
} cpbuf;

static bool cp_reserve(cpbuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    int32_t *v = realloc(b->v, cap * sizeof *v);
    if (!v) return false;
    b->v = v, b->cap = cap;
    return true;
}

static bool cp_push(cpbuf *b, int32_t c) {
    if (!cp_reserve(b, 1)) return false;
    b->v[b->n++] = c;
    return true;
}

typedef struct bytebuf {
    char *s;
    size_t n, cap;
} bytebuf;

static bool bytes_reserve(bytebuf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) return false;
    b->s = s, b->cap = cap;
    return true;
}

/* Code points to UTF-8 (NUL-terminated). offs, when given, gets the byte
 * offset of each code point and of the end (n + 1 entries). */
static bool utf8_encode(bytebuf *out, const int32_t *cp, size_t n, size_t *offs) {
    out->n = 0;
    if (!bytes_reserve(out, 4 * n)) return false;
    for (size_t i = 0; i < n; i++) {
        if (offs) offs[i] = out->n;
        out->n += (size_t)utf8proc_encode_char(cp[i], (utf8proc_uint8_t *)out->s + out->n);
    }
    if (offs) offs[n] = out->n;
    out->s[out->n] = '\0';
    return true;
}

/* Valid UTF-8 to code points (out NULL: only check); on invalid input
 * *bad is the byte offset. */
static gv_status utf8_decode(const char *s, size_t len, cpbuf *out, size_t *bad) {
    if (out && (out->n = 0, !cp_reserve(out, len))) return GV_ERR_NOMEM;
    size_t i = 0;
    while (i < len) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
                                              (utf8proc_ssize_t)(len - i), &c);
        if (k < 0) {
            *bad = i;
            return GV_ERR_ARG;
        }
        if (out) out->v[out->n++] = c;
        i += (size_t)k;
    }
    return GV_OK;
}

/* ---- the vocabulary: token strings and a hash table ------------------------ */

typedef struct vocab_entry {
    const char *s; /* into the tokenizer's text buffer, NUL-terminated */
    size_t len;
} vocab_entry;

enum { SP_UNK, SP_SEP, SP_PAD, SP_CLS, SP_MASK, SP_COUNT };
static const char *const special_names[SP_COUNT] = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};

struct gv_bert_tokenizer {
    char *text;          /* vocab.txt, its lines NUL-terminated in place */
    vocab_entry *tokens; /* id -> token */
    size_t n_tokens;
    int32_t *slots;      /* open addressing: an id, or -1 for an empty slot */
    size_t slot_mask;
    int32_t special[SP_COUNT]; /* -1 for a [MASK] the vocabulary lacks */
    bool lower_case, strip_accents, chinese_chars;
    int max_chars_per_word;
    int64_t model_max_length;
};

static uint64_t fnv1a(const char *a, size_t na, const char *b, size_t nb) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < na; i++) h = (h ^ (unsigned char)a[i]) * 1099511628211ull;
    for (size_t i = 0; i < nb; i++) h = (h ^ (unsigned char)b[i]) * 1099511628211ull;
    return h;
}

/* The id of prefix+s (prefix "" or "##"), -1 if absent: the candidate pieces
 * of WordPiece are looked up without building the string. */
static int32_t vocab_find(const gv_bert_tokenizer *t, const char *prefix, const char *s, size_t n) {
    size_t np = strlen(prefix);
    for (size_t h = fnv1a(prefix, np, s, n) & t->slot_mask;; h = (h + 1) & t->slot_mask) {
        int32_t id = t->slots[h];
        if (id < 0) return -1;
        const vocab_entry *e = &t->tokens[id];
        if (e->len == np + n && memcmp(e->s, prefix, np) == 0 && memcmp(e->s + np, s, n) == 0)
            return id;
    }
}

/* load_vocab: a later duplicate of a token takes over its id (vocab[token] =
 * index), while every line keeps its own id -> token entry. */
static void vocab_insert(gv_bert_tokenizer *t, int32_t id) {
    const vocab_entry *e = &t->tokens[id];
    for (size_t h = fnv1a(e->s, e->len, "", 0) & t->slot_mask;; h = (h + 1) & t->slot_mask) {
        int32_t old = t->slots[h];
        if (old < 0 || (t->tokens[old].len == e->len && memcmp(t->tokens[old].s, e->s, e->len) == 0)) {
            t->slots[h] = id;
            return;
        }
    }
}

static gv_status read_file(const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        int err = errno;
        return gv_error(err == ENOENT ? GV_ERR_NOT_FOUND : GV_ERR_IO, "'%s': cannot open: %s", path,
                        strerror(err));
    }
    bytebuf b = {0};
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (!bytes_reserve(&b, k)) {
            fclose(f);
            free(b.s);
            return gv_error(GV_ERR_NOMEM, "'%s': out of memory", path);
        }
        memcpy(b.s + b.n, chunk, k);
        b.n += k;
    }
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    fclose(f);
    if (err) {
        free(b.s);
        return gv_error(GV_ERR_IO, "'%s': read error: %s", path, strerror(err));
    }
    if (!bytes_reserve(&b, 0)) {
        free(b.s);
        return gv_error(GV_ERR_NOMEM, "'%s': out of memory", path);
    }
    b.s[b.n] = '\0';
    *out = b.s;
    *len = b.n;
    return GV_OK;
}

/* The lines of vocab.txt as Python's readlines() in text mode sees them:
 * universal newlines ("\r\n" and a lone "\r" end a line too), the newline
 * stripped, a last line without one still a token. Cuts the lines in place. */
static gv_status vocab_split_lines(gv_bert_tokenizer *t, size_t len, const char *path) {
    size_t cap = 1;
    for (size_t i = 0; i < len; i++) cap += t->text[i] == '\n' || t->text[i] == '\r';
    t->tokens = malloc(cap * sizeof *t->tokens);
    if (!t->tokens) return gv_error(GV_ERR_NOMEM, "'%s': out of memory", path);
    size_t start = 0, line = 1;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? t->text[i] : '\n';
        if (c != '\n' && c != '\r') continue;
        if (i == len && start == len) break; /* the text ended with a newline */
        size_t bad;
        if (utf8_decode(t->text + start, i - start, NULL, &bad) != GV_OK)
            return gv_error(GV_ERR_FORMAT, "'%s': line %zu is not valid UTF-8 (byte %zu of the file)",
                            path, line, start + bad);
        t->text[i < len ? i : len] = '\0';
        t->tokens[t->n_tokens++] = (vocab_entry){t->text + start, i - start};
        if (c == '\r' && i + 1 < len && t->text[i + 1] == '\n') i++;
        start = i + 1;
        line++;
    }
    return GV_OK;
}

static gv_status vocab_index(gv_bert_tokenizer *t, const char *path) {
    if (t->n_tokens > INT32_MAX / 2)
        return gv_error(GV_ERR_OVERFLOW, "'%s': %zu tokens do not fit int32 ids", path, t->n_tokens);
    size_t cap = 16;
    while (cap < 2 * t->n_tokens) cap *= 2;
    t->slots = malloc(cap * sizeof *t->slots);
    if (!t->slots) return gv_error(GV_ERR_NOMEM, "'%s': out of memory", path);
    memset(t->slots, 0xff, cap * sizeof *t->slots);
    t->slot_mask = cap - 1;
    for (size_t i = 0; i < t->n_tokens; i++) vocab_insert(t, (int32_t)i);
    for (int k = 0; k < SP_COUNT; k++) {
        t->special[k] = vocab_find(t, "", special_names[k], strlen(special_names[k]));
        if (t->special[k] < 0 && k != SP_MASK)
            return gv_error(GV_ERR_FORMAT, "'%s': the special token %s is not in the vocabulary",
                            path, special_names[k]);
    }
    return GV_OK;
}

/* A tokenizer with the options o (NULL: the defaults) and no vocabulary
 * yet; label names the vocabulary in the message of bad options. */
static gv_bert_tokenizer *tokenizer_new(const char *label, const gv_bert_tokenizer_options *o) {
    gv_bert_tokenizer_options opt = o ? *o : (gv_bert_tokenizer_options){0};
    if (opt.max_input_chars_per_word < 0 || opt.model_max_length < 0 || opt.strip_accents < -1 ||
        opt.strip_accents > 1) {
        gv_error(GV_ERR_ARG, "gv_bert_tokenizer_load: '%s': bad options (max_input_chars_per_word %d, "
                 "model_max_length %lld, strip_accents %d)", label, opt.max_input_chars_per_word,
                 (long long)opt.model_max_length, opt.strip_accents);
        return NULL;
    }
    gv_bert_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        gv_error(GV_ERR_NOMEM, "gv_bert_tokenizer_load: out of memory");
        return NULL;
    }
    t->lower_case = !opt.keep_case;
    /* BasicTokenizer: strip_accents None follows do_lower_case */
    t->strip_accents = opt.strip_accents == 0 ? t->lower_case : opt.strip_accents > 0;
    t->chinese_chars = !opt.no_chinese_chars_split;
    t->max_chars_per_word = opt.max_input_chars_per_word ? opt.max_input_chars_per_word : 100;
    t->model_max_length = opt.model_max_length ? opt.model_max_length : 512;
    return t;
}

/* The vocabulary from t->text (len bytes and a NUL, when st is GV_OK): t,
 * or NULL with t freed and the error prefixed. */
static gv_bert_tokenizer *tokenizer_finish(gv_bert_tokenizer *t, gv_status st, size_t len,
                                           const char *label) {
    if (st == GV_OK) st = vocab_split_lines(t, len, label);
    if (st == GV_OK && t->n_tokens == 0)
        st = gv_error(GV_ERR_FORMAT, "'%s': the vocabulary is empty", label);
    if (st == GV_OK) st = vocab_index(t, label);
    if (st != GV_OK) {
        gv_error_prefix("gv_bert_tokenizer_load: ");
        gv_bert_tokenizer_free(t);
        return NULL;
    }
    return t;
}

gv_bert_tokenizer *gv_bert_tokenizer_load(const char *vocab_path, const gv_bert_tokenizer_options *o) {
    if (!vocab_path) {
        gv_error(GV_ERR_ARG, "gv_bert_tokenizer_load: vocab_path is NULL");
        return NULL;
    }
    gv_bert_tokenizer *t = tokenizer_new(vocab_path, o);
    if (!t) return NULL;
    size_t len = 0;
    gv_status st = read_file(vocab_path, &t->text, &len);
    return tokenizer_finish(t, st, len, vocab_path);
}

gv_bert_tokenizer *gv_bert_tokenizer_load_buffer(const char *text, size_t len, const char *label,
                                                 const gv_bert_tokenizer_options *o) {
    if (!label) label = "vocab.txt";
    if (!text && len) {
        gv_error(GV_ERR_ARG, "gv_bert_tokenizer_load: '%s': text is NULL", label);
        return NULL;
    }
    gv_bert_tokenizer *t = tokenizer_new(label, o);
    if (!t) return NULL;
    gv_status st = GV_OK;
    if (!(t->text = malloc(len + 1))) {
        st = gv_error(GV_ERR_NOMEM, "'%s': out of memory", label);
    } else {
        if (len) memcpy(t->text, text, len);
        t->text[len] = '\0';
    }
    return tokenizer_finish(t, st, len, label);
}

void gv_bert_tokenizer_free(gv_bert_tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->tokens);
    free(t->slots);
    free(t);
}

/* ---- tokenizer_config.json ------------------------------------------------- */

/* A special token's entry: a string, or an AddedToken object {"content": ...}. */
static const char *config_token(json_object *v) {
    json_object *c;
    if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(v, "content", &c)) v = c;
    if (!json_object_is_type(v, json_type_string)) return NULL;
    /* "[UNK]\u0000x" is another token, not "[UNK]" cut short at the NUL */
    const char *s = json_object_get_string(v);
    return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

static gv_status config_bool(json_object *cfg, const char *key, const char *path, int *out) {
    json_object *v;
    if (!json_object_object_get_ex(cfg, key, &v) || json_object_is_type(v, json_type_null)) return GV_OK;
    if (!json_object_is_type(v, json_type_boolean))
        return gv_error(GV_ERR_FORMAT, "'%s': %s is not true, false or null", path, key);
    *out = json_object_get_boolean(v);
    return GV_OK;
}

/* The options of tokenizer_config.json that BertTokenizer.__init__ and
 * PreTrainedTokenizerBase read; what grove does not implement
 * (do_basic_tokenize false, never_split, other special tokens) is refused
 * rather than ignored. */
gv_status gv_bert_tokenizer_config_parse(const char *text, size_t len, const char *path,
                                         gv_bert_tokenizer_options *o) {
    json_tokener *tk = json_tokener_new();
    if (!tk) return gv_error(GV_ERR_NOMEM, "'%s': out of memory", path);
    json_object *cfg = json_tokener_parse_ex(tk, text, (int)(len < INT_MAX ? len : INT_MAX));
    enum json_tokener_error jerr = json_tokener_get_error(tk);
    size_t end = json_tokener_get_parse_end(tk);
    json_tokener_free(tk);
    if (!cfg || jerr != json_tokener_success || !json_object_is_type(cfg, json_type_object)) {
        json_object_put(cfg);
        return gv_error(GV_ERR_FORMAT, "'%s': not a JSON object (%s)", path,
                        json_tokener_error_desc(jerr));
    }
    /* json-c stops after the first value; json.load (transformers) refuses what follows it */
    while (end < len && (text[end] == ' ' || text[end] == '\t' || text[end] == '\n' ||
                         text[end] == '\r'))
        end++;
    if (end < len) {
        json_object_put(cfg);
        return gv_error(GV_ERR_FORMAT, "'%s': not a JSON object (trailing characters at byte %zu)",
                        path, end);
    }
    int lower = 1, chinese = 1, basic = 1, strip = -2;
    gv_status st = config_bool(cfg, "do_lower_case", path, &lower);
    if (st == GV_OK) st = config_bool(cfg, "tokenize_chinese_chars", path, &chinese);
    if (st == GV_OK) st = config_bool(cfg, "do_basic_tokenize", path, &basic);
    if (st == GV_OK) st = config_bool(cfg, "strip_accents", path, &strip);
    if (st == GV_OK && !basic)
        st = gv_error(GV_ERR_UNSUPPORTED, "'%s': do_basic_tokenize false is not supported", path);
    json_object *v;
    if (st == GV_OK && json_object_object_get_ex(cfg, "never_split", &v) &&
        !json_object_is_type(v, json_type_null) &&
        !(json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0))
        st = gv_error(GV_ERR_UNSUPPORTED, "'%s': never_split is not supported", path);
    static const char *const keys[SP_COUNT] = {"unk_token", "sep_token", "pad_token", "cls_token",
                                               "mask_token"};
    for (int k = 0; st == GV_OK && k < SP_COUNT; k++) {
        if (!json_object_object_get_ex(cfg, keys[k], &v) || json_object_is_type(v, json_type_null))
            continue;
        const char *s = config_token(v);
        if (!s || strcmp(s, special_names[k]) != 0)
            st = gv_error(GV_ERR_UNSUPPORTED, "'%s': %s other than \"%s\" is not supported", path,
                          keys[k], special_names[k]);
    }
    if (st == GV_OK && json_object_object_get_ex(cfg, "model_max_length", &v) &&
        !json_object_is_type(v, json_type_null)) {
        double m = json_object_get_double(v);
        if (!(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) ||
            !(m >= 1))
            st = gv_error(GV_ERR_FORMAT, "'%s': model_max_length is not a positive number", path);
        /* transformers writes int(1e30) (VERY_LARGE_INTEGER) for "no limit" */
        else o->model_max_length = m >= 9e18 ? INT64_MAX : json_object_get_int64(v);
    }
    json_object_put(cfg);
    o->keep_case = !lower;
    o->no_chinese_chars_split = !chinese;
    o->strip_accents = strip == -2 ? 0 : strip ? 1 : -1;
    return st;
}

static gv_status config_read(const char *path, gv_bert_tokenizer_options *o) {
    char *text;
    size_t len;
    gv_status st = read_file(path, &text, &len);
    if (st != GV_OK) return st;
    st = gv_bert_tokenizer_config_parse(text, len, path, o);
    free(text);
    return st;
}

gv_bert_tokenizer *gv_bert_tokenizer_from_pretrained(const char *dir) {
    if (!dir) {
        gv_error(GV_ERR_ARG, "gv_bert_tokenizer_from_pretrained: dir is NULL");
        return NULL;
    }
    size_t n = strlen(dir) + sizeof "/tokenizer_config.json";
    char *vocab = malloc(n), *config = malloc(n);
    gv_bert_tokenizer *t = NULL;
    if (!vocab || !config) {
        gv_error(GV_ERR_NOMEM, "gv_bert_tokenizer_from_pretrained: out of memory");
        goto done;
    }
    snprintf(vocab, n, "%s/vocab.txt", dir);
    snprintf(config, n, "%s/tokenizer_config.json", dir);
    gv_bert_tokenizer_options o = {0};
    FILE *f = fopen(config, "rb");
    if (f) {
        fclose(f);
        if (config_read(config, &o) != GV_OK) {
            gv_error_prefix("gv_bert_tokenizer_from_pretrained: ");
            goto done;
        }
    }
    t = gv_bert_tokenizer_load(vocab, &o);
done:
    free(vocab);
    free(config);
    return t;
}

/* ---- queries --------------------------------------------------------------- */

size_t gv_bert_tokenizer_vocab_size(const gv_bert_tokenizer *t) { return t ? t->n_tokens : 0; }

int32_t gv_bert_token_to_id(const gv_bert_tokenizer *t, const char *token) {
    return t && token ? vocab_find(t, "", token, strlen(token)) : -1;
}

const char *gv_bert_id_to_token(const gv_bert_tokenizer *t, int32_t id) {
    return t && id >= 0 && (size_t)id < t->n_tokens ? t->tokens[id].s : NULL;
}

int32_t gv_bert_cls_id(const gv_bert_tokenizer *t) { return t ? t->special[SP_CLS] : -1; }
int32_t gv_bert_sep_id(const gv_bert_tokenizer *t) { return t ? t->special[SP_SEP] : -1; }
int32_t gv_bert_pad_id(const gv_bert_tokenizer *t) { return t ? t->special[SP_PAD] : -1; }
int32_t gv_bert_unk_id(const gv_bert_tokenizer *t) { return t ? t->special[SP_UNK] : -1; }

/* ---- character classes (tokenization_utils.py and BasicTokenizer) ---------- */

static bool is_control(int32_t c) { /* _is_control: category C*, but not \t \n \r */
    if (c == '\t' || c == '\n' || c == '\r') return false;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CN:
        return true;
    default:
        return false;
    }
}

static bool is_whitespace(int32_t c) { /* _is_whitespace */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
           utf8proc_category(c) == UTF8PROC_CATEGORY_ZS;
}

/* Python's str.isspace, which str.split() and str.strip() in
 * whitespace_tokenize use: bidirectional class WS, B or S, or category Zs.
 * After _clean_text only ' ', U+2028 and U+2029 are left of these. */
static bool py_isspace(int32_t c) {
    utf8proc_propval_t b = utf8proc_get_property(c)->bidi_class;
    return b == UTF8PROC_BIDI_CLASS_WS || b == UTF8PROC_BIDI_CLASS_B || b == UTF8PROC_BIDI_CLASS_S ||
           utf8proc_category(c) == UTF8PROC_CATEGORY_ZS;
}

static bool is_punctuation(int32_t c) { /* _is_punctuation: ASCII symbols, or category P* */
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
        return true;
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

static bool is_chinese_char(int32_t c) { /* BasicTokenizer._is_chinese_char */
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* Python's lower() of one character (see the top of the file for U+0130). */
static bool py_lower(cpbuf *out, int32_t c) {
    if (c == 0x130) return cp_push(out, 'i') && cp_push(out, 0x307);
    return cp_push(out, utf8proc_tolower(c));
}

/* unicodedata.normalize(NFC or NFD) of in into out, through utf8proc_map. */
static gv_status normalize(const cpbuf *in, cpbuf *out, bytebuf *scratch, utf8proc_option_t form) {
    if (!utf8_encode(scratch, in->v, in->n, NULL)) return gv_error(GV_ERR_NOMEM, "out of memory");
    utf8proc_uint8_t *mapped = NULL;
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)scratch->s, (utf8proc_ssize_t)scratch->n,
                                      &mapped, UTF8PROC_STABLE | form);
    if (m < 0) return gv_error(GV_ERR_INTERNAL, "utf8proc_map: %s", utf8proc_errmsg(m));
    size_t bad;
    gv_status st = utf8_decode((const char *)mapped, (size_t)m, out, &bad);
    free(mapped);
    return st == GV_OK ? GV_OK : gv_error(GV_ERR_INTERNAL, "utf8proc_map gave invalid UTF-8");
}

/* ---- tokenizing one text ------------------------------------------------- */

/* Scratch of one tokenize call: the tokenizer itself stays read-only, so
 * threads may share it. */
typedef struct tok_run {
    const gv_bert_tokenizer *t;
    cpbuf a, b, word, piece; /* code points between the steps */
    bytebuf utf8;
    size_t *offs;            /* byte offset of each code point of a word */
    size_t offs_cap;
    int32_t *ids;
    size_t n_ids, cap_ids;
} tok_run;

static void run_free(tok_run *r) {
    free(r->a.v), free(r->b.v), free(r->word.v), free(r->piece.v);
    free(r->utf8.s);
    free(r->offs);
    free(r->ids);
}

static gv_status emit(tok_run *r, int32_t id) {
    if (r->n_ids == r->cap_ids) {
        size_t cap = r->cap_ids ? 2 * r->cap_ids : 64;
        int32_t *v = realloc(r->ids, cap * sizeof *v);
        if (!v) return gv_error(GV_ERR_NOMEM, "out of memory");
        r->ids = v, r->cap_ids = cap;
    }
    r->ids[r->n_ids++] = id;
    return GV_OK;
}

/* WordpieceTokenizer.tokenize of one word: greedy longest match first, "##"
 * before every piece but the first; a word of more than
 * max_input_chars_per_word code points, or with a remainder that no
 * vocabulary entry starts, is one [UNK]. */
static gv_status wordpiece(tok_run *r, const int32_t *cp, size_t n) {
    const gv_bert_tokenizer *t = r->t;
    if (n == 0) return GV_OK;
    if (n > (size_t)t->max_chars_per_word) return emit(r, t->special[SP_UNK]);
    if (n + 1 > r->offs_cap) {
        size_t *o = realloc(r->offs, (n + 1) * sizeof *o);
        if (!o) return gv_error(GV_ERR_NOMEM, "out of memory");
        r->offs = o, r->offs_cap = n + 1;
    }
    if (!utf8_encode(&r->utf8, cp, n, r->offs)) return gv_error(GV_ERR_NOMEM, "out of memory");
    size_t first = r->n_ids;
    for (size_t start = 0; start < n;) {
        int32_t id = -1;
        size_t end = n;
        for (; end > start; end--) {
            id = vocab_find(t, start > 0 ? "##" : "", r->utf8.s + r->offs[start],
                            r->offs[end] - r->offs[start]);
            if (id >= 0) break;
        }
        if (id < 0) {
            r->n_ids = first; /* is_bad: the whole word is [UNK] */
            return emit(r, t->special[SP_UNK]);
        }
        gv_status st = emit(r, id);
        if (st != GV_OK) return st;
        start = end;
    }
    return GV_OK;
}

/* The special token (by index) that the code points spell, or -1. */
static int special_at(const gv_bert_tokenizer *t, const int32_t *cp, size_t n) {
    for (int k = 0; k < SP_COUNT; k++) {
        if (t->special[k] < 0) continue;
        const char *s = special_names[k];
        size_t len = strlen(s), i = 0;
        while (i < len && i < n && cp[i] == (unsigned char)s[i]) i++;
        if (i == len) return k;
    }
    return -1;
}

/* One word of whitespace_tokenize: lower(), _run_strip_accents (NFD, drop
 * Mn), _run_split_on_punc, then WordPiece on each part. A word that is a
 * special token (never_split) goes to WordPiece whole. */
static gv_status basic_word(tok_run *r, const int32_t *cp, size_t n) {
    const gv_bert_tokenizer *t = r->t;
    int sp = special_at(t, cp, n);
    if (sp >= 0 && strlen(special_names[sp]) == n) return wordpiece(r, cp, n);
    cpbuf *w = &r->word;
    w->n = 0;
    for (size_t i = 0; i < n; i++)
        if (!(t->lower_case ? py_lower(w, cp[i]) : cp_push(w, cp[i])))
            return gv_error(GV_ERR_NOMEM, "out of memory");
    if (t->strip_accents) {
        gv_status st = normalize(w, &r->piece, &r->utf8, UTF8PROC_DECOMPOSE);
        if (st != GV_OK) return st;
        w->n = 0;
        if (!cp_reserve(w, r->piece.n)) return gv_error(GV_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < r->piece.n; i++)
            if (utf8proc_category(r->piece.v[i]) != UTF8PROC_CATEGORY_MN) w->v[w->n++] = r->piece.v[i];
    }
    /* w->v stays put from here: wordpiece uses r->utf8 and r->offs only */
    size_t start = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (!is_punctuation(w->v[i])) continue;
        gv_status st = wordpiece(r, w->v + start, i - start);
        if (st == GV_OK) st = wordpiece(r, w->v + i, 1);
        if (st != GV_OK) return st;
        start = i + 1;
    }
    return wordpiece(r, w->v + start, w->n - start);
}

/* BasicTokenizer.tokenize of a piece of text between special tokens (already
 * lower-cased by tokenize() when do_lower_case). */
static gv_status basic_tokenize(tok_run *r, const int32_t *cp, size_t n) {
    const gv_bert_tokenizer *t = r->t;
    cpbuf *clean = &r->a;
    clean->n = 0;
    if (!cp_reserve(clean, 3 * n)) return gv_error(GV_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int32_t c = cp[i];
        if (c == 0 || c == 0xFFFD || is_control(c)) continue; /* _clean_text */
        if (is_whitespace(c)) c = ' ';
        if (t->chinese_chars && is_chinese_char(c)) { /* _tokenize_chinese_chars */
            clean->v[clean->n++] = ' ';
            clean->v[clean->n++] = c;
            c = ' ';
        }
        clean->v[clean->n++] = c;
    }
    gv_status st = normalize(clean, &r->b, &r->utf8, UTF8PROC_COMPOSE);
    if (st != GV_OK) return st;
    const int32_t *v = r->b.v;
    size_t m = r->b.n;
    for (size_t i = 0; i < m;) {
        while (i < m && py_isspace(v[i])) i++;
        size_t start = i;
        while (i < m && !py_isspace(v[i])) i++;
        if (i > start && (st = basic_word(r, v + start, i - start)) != GV_OK) return st;
    }
    return GV_OK;
}

/* PreTrainedTokenizer.tokenize + convert_tokens_to_ids. r->ids gets the ids;
 * an invalid UTF-8 text is GV_ERR_ARG with *bad its byte offset. */
static gv_status tokenize_text(tok_run *r, const char *text, size_t len, size_t *bad) {
    const gv_bert_tokenizer *t = r->t;
    cpbuf raw = {0}, lowered = {0};
    gv_status st = utf8_decode(text, len, &raw, bad);
    if (st != GV_OK) {
        free(raw.v);
        return st == GV_ERR_NOMEM ? gv_error(st, "out of memory") : st;
    }
    /* lower-case around the special tokens, then cut the text at them */
    const cpbuf *src = &raw;
    if (t->lower_case) {
        for (size_t i = 0; i < raw.n && st == GV_OK;) {
            int sp = special_at(t, raw.v + i, raw.n - i);
            size_t k = sp >= 0 ? strlen(special_names[sp]) : 1;
            for (size_t j = 0; j < k && st == GV_OK; j++)
                if (!(sp >= 0 ? cp_push(&lowered, raw.v[i + j]) : py_lower(&lowered, raw.v[i])))
                    st = gv_error(GV_ERR_NOMEM, "out of memory");
            i += k;
        }
        src = &lowered;
    }
    size_t start = 0;
    for (size_t i = 0; i < src->n && st == GV_OK;) {
        int sp = special_at(t, src->v + i, src->n - i);
        if (sp < 0) {
            i++;
            continue;
        }
        st = basic_tokenize(r, src->v + start, i - start);
        if (st == GV_OK) st = emit(r, t->special[sp]);
        i += strlen(special_names[sp]);
        start = i;
    }
    /* an empty text has no code point buffer at all (src->v NULL) */
    if (st == GV_OK && start < src->n) st = basic_tokenize(r, src->v + start, src->n - start);
    free(raw.v);
    free(lowered.v);
    return st;
}

gv_status gv_bert_tokenize_n(const gv_bert_tokenizer *t, const char *text, size_t len, int32_t **ids,
                             size_t *n) {
    if (!t || !text || !ids || !n)
        return gv_error(GV_ERR_ARG, "gv_bert_tokenize: %s is NULL",
                        !t ? "the tokenizer" : !text ? "text" : !ids ? "ids" : "n");
    *ids = NULL;
    *n = 0;
    tok_run r = {.t = t};
    size_t bad = 0;
    gv_status st = tokenize_text(&r, text, len, &bad);
    if (st == GV_ERR_ARG)
        gv_error(st, "gv_bert_tokenize: text is not valid UTF-8 at byte offset %zu", bad);
    else if (st != GV_OK)
        gv_error_prefix("gv_bert_tokenize: ");
    if (st == GV_OK) {
        *ids = r.ids, *n = r.n_ids;
        r.ids = NULL;
    }
    run_free(&r);
    return st;
}

gv_status gv_bert_tokenize(const gv_bert_tokenizer *t, const char *text, int32_t **ids, size_t *n) {
    return gv_bert_tokenize_n(t, text, text ? strlen(text) : 0, ids, n);
}

/* ---- encoding a batch ------------------------------------------------------ */

typedef struct encoded {
    int32_t *a, *b; /* the ids of the text and of its pair (NULL when empty) */
    size_t na, nb;
} encoded;

/* truncate_sequences(strategy='longest_first', truncation_side='right') of
 * a pair, for num_tokens_to_remove = k: first from the longer text down to
 * the other's length, then the rest split evenly, the odd one from the
 * second text. */
static void truncate_pair(size_t *na, size_t *nb, size_t k) {
    size_t diff = *na > *nb ? *na - *nb : *nb - *na;
    size_t first = diff < k ? diff : k, second = k - first;
    if (*na > *nb) {
        *na -= first + second / 2;
        *nb -= second - second / 2;
    } else {
        *na -= second / 2;
        *nb -= first + second - second / 2;
    }
}

static gv_status encode_one(const gv_bert_tokenizer *t, const char *text, size_t index, bool pair,
                            int32_t **ids, size_t *n) {
    tok_run r = {.t = t};
    size_t bad = 0;
    gv_status st = tokenize_text(&r, text, strlen(text), &bad);
    if (st == GV_ERR_ARG)
        gv_error(st, "gv_bert_encode: %s[%zu] is not valid UTF-8 at byte offset %zu",
                 pair ? "texts_b" : "texts", index, bad);
    else if (st != GV_OK)
        gv_error_prefix("gv_bert_encode: %s[%zu]: ", pair ? "texts_b" : "texts", index);
    *ids = r.ids, *n = r.n_ids;
    r.ids = NULL;
    run_free(&r);
    return st;
}

static gv_status encode_check(const gv_bert_tokenizer *t, const char *const *texts, size_t n,
                              const gv_bert_encode_options *o, gv_bert_batch *out, int64_t *max_len) {
    if (!t || !texts || !out)
        return gv_error(GV_ERR_ARG, "gv_bert_encode: %s is NULL",
                        !t ? "the tokenizer" : !texts ? "texts" : "out");
    if (n == 0) return gv_error(GV_ERR_ARG, "gv_bert_encode: no texts (n is 0)");
    for (size_t i = 0; i < n; i++) {
        if (!texts[i]) return gv_error(GV_ERR_ARG, "gv_bert_encode: texts[%zu] is NULL", i);
        if (o->texts_b && !o->texts_b[i])
            return gv_error(GV_ERR_ARG, "gv_bert_encode: texts_b[%zu] is NULL", i);
    }
    int64_t specials = o->texts_b ? 3 : 2;
    *max_len = o->max_length ? o->max_length : t->model_max_length;
    if (*max_len < specials)
        return gv_error(GV_ERR_ARG, "gv_bert_encode: max_length %lld leaves no room for [CLS] and %s",
                        (long long)*max_len, o->texts_b ? "two [SEP]" : "[SEP]");
    if (o->pad_to_max_length && *max_len == INT64_MAX)
        return gv_error(GV_ERR_ARG, "gv_bert_encode: pad_to_max_length without a max_length, and the "
                        "tokenizer has no model_max_length");
    return GV_OK;
}

/* Writes [CLS] a [SEP] (b [SEP]) and the padding of one row. */
static void encode_row(const gv_bert_tokenizer *t, const encoded *e, bool pair, int64_t length,
                       int32_t *ids, int32_t *mask, int32_t *types) {
    int64_t j = 0;
    ids[j] = t->special[SP_CLS], types[j++] = 0;
    for (size_t i = 0; i < e->na; i++) ids[j] = e->a[i], types[j++] = 0;
    ids[j] = t->special[SP_SEP], types[j++] = 0;
    if (pair) {
        for (size_t i = 0; i < e->nb; i++) ids[j] = e->b[i], types[j++] = 1;
        ids[j] = t->special[SP_SEP], types[j++] = 1;
    }
    for (int64_t i = 0; i < length; i++) mask[i] = i < j;
    for (; j < length; j++) ids[j] = t->special[SP_PAD], types[j] = 0;
}

gv_status gv_bert_encode(const gv_bert_tokenizer *t, const char *const *texts, size_t n,
                         const gv_bert_encode_options *o, gv_bert_batch *out) {
    gv_bert_encode_options opt = o ? *o : (gv_bert_encode_options){0};
    int64_t max_len = 0;
    if (out) *out = (gv_bert_batch){0};
    gv_status st = encode_check(t, texts, n, &opt, out, &max_len);
    if (st != GV_OK) return st;
    encoded *enc = calloc(n, sizeof *enc);
    if (!enc) return gv_error(GV_ERR_NOMEM, "gv_bert_encode: out of memory");
    int64_t specials = opt.texts_b ? 3 : 2, longest = 0;
    for (size_t i = 0; i < n && st == GV_OK; i++) {
        encoded *e = &enc[i];
        st = encode_one(t, texts[i], i, false, &e->a, &e->na);
        if (st == GV_OK && opt.texts_b) {
            st = encode_one(t, opt.texts_b[i], i, true, &e->b, &e->nb);
        }
        if (st != GV_OK) break;
        int64_t total = (int64_t)(e->na + e->nb) + specials;
        if (total > max_len && opt.no_truncation)
            st = gv_error(GV_ERR_ARG, "gv_bert_encode: texts[%zu] is %lld tokens, more than max_length "
                          "%lld (and no_truncation is set)", i, (long long)total, (long long)max_len);
        else if (total > max_len && !opt.texts_b && max_len == 2)
            /* truncate_sequences removes only while len(ids) > num_tokens_to_remove:
               transformers logs an error and leaves the text longer than max_length */
            st = gv_error(GV_ERR_ARG, "gv_bert_encode: max_length 2 leaves no room for texts[%zu]'s "
                          "%zu tokens (transformers cannot truncate it either)", i, e->na);
        else if (total > max_len && !opt.texts_b)
            e->na -= (size_t)(total - max_len);
        else if (total > max_len)
            truncate_pair(&e->na, &e->nb, (size_t)(total - max_len));
        total = (int64_t)(e->na + e->nb) + specials;
        if (total > longest) longest = total;
    }
    int64_t length = opt.pad_to_max_length ? max_len : longest;
    gv_tensor *ids = NULL, *mask = NULL, *types = NULL;
    if (st == GV_OK) {
        const int64_t shape[2] = {(int64_t)n, length};
        ids = gv_tensor_zeros(GV_I32, 2, shape);
        mask = ids ? gv_tensor_zeros(GV_I32, 2, shape) : NULL;
        types = mask ? gv_tensor_zeros(GV_I32, 2, shape) : NULL;
        if (!types) st = gv_error_prefix("gv_bert_encode: ");
    }
    if (st == GV_OK) {
        int32_t *pi = gv_tensor_data(ids), *pm = gv_tensor_data(mask), *pt = gv_tensor_data(types);
        for (size_t i = 0; i < n; i++)
            encode_row(t, &enc[i], opt.texts_b != NULL, length, pi + (int64_t)i * length, pm + (int64_t)i * length,
                       pt + (int64_t)i * length);
        *out = (gv_bert_batch){ids, mask, types};
    } else {
        gv_tensor_free(ids), gv_tensor_free(mask), gv_tensor_free(types);
    }
    for (size_t i = 0; i < n; i++) free(enc[i].a), free(enc[i].b);
    free(enc);
    return st;
}

void gv_bert_batch_free(gv_bert_batch *b) {
    if (!b) return;
    gv_tensor_free(b->input_ids);
    gv_tensor_free(b->attention_mask);
    gv_tensor_free(b->token_type_ids);
    *b = (gv_bert_batch){0};
}
