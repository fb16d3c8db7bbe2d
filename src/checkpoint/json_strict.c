/* grove: strict JSON for safetensors headers and grove's structure
 * metadata. json-c parses (strict mode, UTF-8 validated, nesting bounded);
 * a second scan of the same text then refuses what json-c lets through.
 * Every refusal is GV_ERR_FORMAT naming the file and the byte offset. */
#include "format_internal.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* ---- reading: duplicate keys ------------------------------------------------ */

/* json-c keeps only the last of duplicate keys, so the header text is
 * scanned once more (it is known to be valid JSON by then) and every object's
 * decoded keys are compared. A key containing \u0000 is refused too: json-c
 * would cut it at the NUL. */

typedef struct st_key {
    char *s;
    size_t len;
} st_key;

static void put_utf8(char *out, size_t *o, uint32_t cp) {
    if (cp < 0x80) out[(*o)++] = (char)cp;
    else if (cp < 0x800) {
        out[(*o)++] = (char)(0xC0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xE0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*o)++] = (char)(0xF0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hex4(const char *s, size_t n, size_t i, uint32_t *out) {
    if (i + 4 > n) return -1;
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        char c = s[i + (size_t)k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* s[*i] is the opening quote. Decodes into key (if not NULL) and moves *i past
 * the closing quote. -1 on malformed input or an escaped NUL. */
static int scan_string(const char *s, size_t n, size_t *i, st_key *key) {
    size_t j = *i + 1, o = 0;
    char *out = NULL;
    if (key) {
        const char *q = s + j;
        size_t cap = 0;
        while (q < s + n && *q != '"') { /* upper bound of the decoded size */
            if (*q == '\\') q++, cap++;
            q++, cap += 1;
        }
        out = malloc(cap * 2 + 8);
        if (!out) return -1;
    }
    while (j < n && s[j] != '"') {
        char c = s[j++];
        if (c != '\\') {
            if (out) out[o++] = c;
            continue;
        }
        if (j >= n) goto bad;
        char e = s[j++];
        uint32_t cp;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (hex4(s, n, j, &cp)) goto bad;
            j += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && j + 6 <= n && s[j] == '\\' && s[j + 1] == 'u') {
                uint32_t lo;
                if (!hex4(s, n, j + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    j += 6;
                }
            }
            if (cp == 0) goto bad;
            break;
        default: goto bad;
        }
        if (out) put_utf8(out, &o, cp);
    }
    if (j >= n) goto bad;
    *i = j + 1;
    if (key) key->s = out, key->len = o;
    return 0;
bad:
    free(out);
    return -1;
}

static int key_cmp(const void *a, const void *b) {
    const st_key *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, m);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void skip_ws(const char *s, size_t n, size_t *i) {
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r')) (*i)++;
}

/* Scan one JSON value at s[*i]. Returns GV_OK, or GV_ERR_FORMAT naming the
 * duplicate (label, base = byte offset of s in the file). */
static gv_status scan_value(const char *s, size_t n, size_t *i, int depth, const char *label,
                            uint64_t base) {
    skip_ws(s, n, i);
    if (*i >= n || depth > GV_ST_STRUCTURE_JSON_DEPTH)
        return gv_error(GV_ERR_FORMAT, "'%s': malformed JSON at byte %" PRIu64, label, base + *i);
    char c = s[*i];
    if (c == '"') {
        if (scan_string(s, n, i, NULL))
            return gv_error(GV_ERR_FORMAT, "'%s': bad string at byte %" PRIu64, label, base + *i);
        return GV_OK;
    }
    if (c == '[') {
        (*i)++;
        skip_ws(s, n, i);
        if (*i < n && s[*i] == ']') return (*i)++, GV_OK;
        for (;;) {
            gv_status st = scan_value(s, n, i, depth + 1, label, base);
            if (st) return st;
            skip_ws(s, n, i);
            if (*i < n && s[*i] == ',') { (*i)++; continue; }
            if (*i < n && s[*i] == ']') return (*i)++, GV_OK;
            return gv_error(GV_ERR_FORMAT, "'%s': malformed JSON at byte %" PRIu64, label, base + *i);
        }
    }
    if (c == '{') {
        (*i)++;
        st_key *keys = NULL;
        size_t nk = 0, cap = 0;
        gv_status st = GV_OK;
        skip_ws(s, n, i);
        if (*i < n && s[*i] == '}') {
            (*i)++;
            return GV_OK;
        }
        for (;;) {
            skip_ws(s, n, i);
            size_t at = *i;
            if (nk == cap) {
                cap = cap ? cap * 2 : 8;
                st_key *nkeys = realloc(keys, cap * sizeof *keys);
                if (!nkeys) { st = gv_error(GV_ERR_NOMEM, "out of memory"); break; }
                keys = nkeys;
            }
            if (at >= n || s[at] != '"' || scan_string(s, n, i, &keys[nk])) {
                st = gv_error(GV_ERR_FORMAT, "'%s': bad key (or \\u0000 in a key) at byte %" PRIu64,
                              label, base + at);
                break;
            }
            nk++;
            skip_ws(s, n, i);
            if (*i >= n || s[*i] != ':') {
                st = gv_error(GV_ERR_FORMAT, "'%s': malformed JSON at byte %" PRIu64, label, base + *i);
                break;
            }
            (*i)++;
            st = scan_value(s, n, i, depth + 1, label, base);
            if (st) break;
            skip_ws(s, n, i);
            if (*i < n && s[*i] == ',') { (*i)++; continue; }
            if (*i < n && s[*i] == '}') { (*i)++; break; }
            st = gv_error(GV_ERR_FORMAT, "'%s': malformed JSON at byte %" PRIu64, label, base + *i);
            break;
        }
        if (!st && nk > 1) {
            qsort(keys, nk, sizeof *keys, key_cmp);
            for (size_t k = 1; k < nk; k++)
                if (key_cmp(&keys[k - 1], &keys[k]) == 0) {
                    st = gv_error(GV_ERR_FORMAT, "'%s': duplicate name '%.*s' in the header", label,
                                  (int)(keys[k].len > 200 ? 200 : keys[k].len), keys[k].s);
                    break;
                }
        }
        for (size_t k = 0; k < nk; k++) free(keys[k].s);
        free(keys);
        return st;
    }
    /* number, true, false, null. json-c's strict mode still takes
     * 'single-quoted' strings, so anything else is refused here. */
    if (!(c == '-' || (c >= '0' && c <= '9') || (n - *i >= 4 && !memcmp(s + *i, "true", 4)) ||
          (n - *i >= 5 && !memcmp(s + *i, "false", 5)) || (n - *i >= 4 && !memcmp(s + *i, "null", 4))))
        return gv_error(GV_ERR_FORMAT, "'%s': malformed JSON value at byte %" PRIu64, label, base + *i);
    while (*i < n && s[*i] != ',' && s[*i] != ']' && s[*i] != '}' && s[*i] != ' ' &&
           s[*i] != '\t' && s[*i] != '\n' && s[*i] != '\r')
        (*i)++;
    return GV_OK;
}

json_object *gv_parse_json(const char *text, size_t len, int depth, const char *label,
                           const char *what, uint64_t base) {
    json_tokener *tok = json_tokener_new_ex(depth);
    if (!tok) return gv_error(GV_ERR_NOMEM, "out of memory"), NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    if (len > INT_MAX) {
        json_tokener_free(tok);
        return gv_error(GV_ERR_FORMAT, "'%s': %s too long", label, what), NULL;
    }
    /* Strict json-c refuses trailing characters, so the padding spaces are
     * cut off first (safetensors pads with spaces only). */
    size_t end = len;
    while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == '\n' || text[end - 1] == '\t' ||
                       text[end - 1] == '\r'))
        end--;
    json_object *obj = json_tokener_parse_ex(tok, text, (int)end);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t parsed = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (err != json_tokener_success || parsed != end) {
        json_object_put(obj);
        gv_error(GV_ERR_FORMAT, "'%s': %s is not valid JSON: %s at byte %" PRIu64, label, what,
                 err == json_tokener_success ? "trailing characters"
                 : err == json_tokener_continue ? "unexpected end"
                                                : json_tokener_error_desc(err),
                 base + (uint64_t)parsed);
        return NULL;
    }
    size_t i = 0;
    if (scan_value(text, end, &i, 0, label, base)) {
        json_object_put(obj);
        return NULL;
    }
    return obj;
}
