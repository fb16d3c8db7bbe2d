"""Golden ids for grove's BERT WordPiece tokenizer (tests/text/test_bert_tokenizer.c),
from Hugging Face transformers' slow (Python) BertTokenizer.

    GROVE_BERT_DIR=~/.cache/grove/all-MiniLM-L6-v2 python make_bert_tokenizer_golden.py

The vocabulary is the one scripts/fetch-bert.sh puts in the cache (uncased,
30,522 tokens). Writes bert_tokenizer_golden.json next to this script:

  configs: BertTokenizer options and, per text, tokenize() and its ids
           (convert_tokens_to_ids)
  batches: tokenizer(texts[, texts_b], padding=..., truncation=...,
           max_length=...) of the default tokenizer

Texts are chosen for the places where a C port can go wrong: case,
accents (precomposed and written decomposed), ASCII and Unicode punctuation,
CJK and the scripts outside the CJK ranges (kana, hangul), symbols, long
words, control, zero-width and space characters, Python's multi-character
lower case (U+0130), final sigma, special tokens written in the text.
Code points that Unicode 15.0 assigned are left out: Python 3.11's
unicodedata (14.0.0) calls them unassigned, utf8proc (15.0) does not (see
src/text/bert_tokenizer.c).
"""

import hashlib
import json
import os
import sys

import transformers
from transformers import BertTokenizer

BERT_DIR = os.environ.get("GROVE_BERT_DIR", os.path.expanduser("~/.cache/grove/all-MiniLM-L6-v2"))
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bert_tokenizer_golden.json")

LONG_WORD = "pneumonoultramicroscopicsilicovolcanoconiosis" * 3  # 135 letters

TEXTS = {
    "plain": "Hello, world! This is a test of the tokenizer.",
    "upper": "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "accents": "Café naïve façade résumé Über Ça Ærø crème brûlée",
    "decomposed": "Cafe\u0301 nai\u0308ve C\u0327a u\u0308ber e\u0301\u0301",
    "wordpieces": "unaffable tokenization preprocessing transformers hyperparameterization",
    "ascii_punct": "a.b,c;d:e!f?g(h)i[j]k{l}m<n>o@p#q$r%s^t&u*v_w-x+y=z~`|\\/'\"end",
    "unicode_punct": "«Bonjour» — dit-il… ¿Qué? ¡Sí! “quoted” it’s 、。・「」",
    "chinese": "我爱自然语言处理。北京是中国的首都",
    "japanese": "これは日本語のテキストです。カタカナ ｶﾀｶﾅ",
    "korean": "안녕하세요 세계! 한국어",
    "hangul_jamo": "\u1100\u1161\u11a8 \u1112\u1161\u11ab \u304b\u3099",
    "cjk_compat": "\uf900\uf901 \U0002f800 \U00020000 \u3400",
    "emoji": "I ❤️ NLP 😀🚀👍🏽 ™ © ® ∑ √ ★ ♫ €100 $5",
    "digits": "12345 3.14159 1,000,000 2026-12-03 ٣٤٥ ½ ² Ⅻ",
    "long_words": "a" * 101 + " " + "b" * 100 + " " + LONG_WORD + " short " + "ж" * 60,
    "unknown": "xyzzyqx ☃☃ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ᚠᛇᚻ",
    "whitespace": "\tTabs\tand\nnewlines\r\nand\rreturns  \x0bvt\x0cff",
    "controls": "a\x00b c\ufffdd e\x07f g\x1bh \x85i j\x7fk \x1fl",
    "zero_width": "zero\u200bwidth\u200cjoin\u200dx\ufeffy \u2060word \u00adsoft",
    "spaces": "non\u00a0breaking\u2009thin\u3000ideographic\u202fnarrow\u1680ogham",
    "line_separators": "line\u2028separator\u2029paragraph",
    "greek": "Η γρήγορη καφέ αλεπού πηδάει",
    "cyrillic": "Съешь же ещё этих мягких французских булок, да выпей чаю. Ёлка",
    "arabic": "مرحبا بالعالم! العَرَبِيَّة، ١٢٣",
    "devanagari": "नमस्ते दुनिया, हिन्दी भाषा।",
    "thai_hebrew": "ภาษาไทย שָׁלוֹם",
    "vietnamese": "Tiếng Việt có dấu",
    "istanbul": "İstanbul İZMİR ı I i",
    "sharp_s": "ß Straße STRASSE ẞ",
    "final_sigma": "ΟΔΟΣ ΟΔΟΣ. Σ σ ς ΣΟΦΟΣ",
    "case_signs": "\u212a \u2126 \u00c5 \u212b",
    "fullwidth": "ＨＥＬＬＯ ｗｏｒｌｄ １２３ ！",
    "compat": "ﬁnance ﬀ ǅ ǈ",
    "combining_only": "\u0301\u0308 a\u0301\u0301 \u20dd x\u20dd",
    "private_unassigned": "x\ue000y\u0378z\U000f0000w",
    "special_tokens": "[CLS] hello [SEP] world [MASK].",
    "special_glued": "[MASK]ed x[CLS]y [cls] [Mask] [UNK][PAD] [[SEP]]",
    "special_hidden": "[CL\x00S] [SE\u200bP] [MA\x07SK]",
    "mixed": "Don't stop-believing!!! U.S.A. e-mail@example.com http://x.y/z?q=1&r=2",
    "chinese_english": "中文English混合text，測試",
    "empty": "",
    "whitespace_only": "   \t\n  \u3000 ",
}

CONFIGS = [
    ("default", {}, list(TEXTS)),
    ("cased", {"do_lower_case": False},
     ["plain", "upper", "accents", "decomposed", "unicode_punct", "istanbul", "sharp_s",
      "final_sigma", "case_signs", "special_tokens", "special_glued", "special_hidden",
      "fullwidth", "greek"]),
    ("no_chinese_chars", {"tokenize_chinese_chars": False},
     ["chinese", "japanese", "cjk_compat", "chinese_english", "korean"]),
    ("lower_keep_accents", {"strip_accents": False},
     ["accents", "decomposed", "istanbul", "vietnamese", "thai_hebrew", "greek", "japanese",
      "devanagari", "combining_only", "final_sigma", "hangul_jamo", "korean"]),
    ("cased_strip_accents", {"do_lower_case": False, "strip_accents": True},
     ["accents", "decomposed", "istanbul", "vietnamese"]),
]

LONG = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
        "it was the age of foolishness")

BATCHES = [
    ("longest_16", dict(padding="longest", truncation=True, max_length=16),
     [TEXTS["plain"], "short", LONG, TEXTS["accents"], ""], None),
    ("max_length_12", dict(padding="max_length", truncation=True, max_length=12),
     [TEXTS["plain"], "short", LONG, TEXTS["chinese"], "[CLS] [MASK]"], None),
    ("pairs_14", dict(padding="longest", truncation="longest_first", max_length=14),
     ["How old are you?", LONG, "short", "one two three four five six seven", "", "a b"],
     ["I am six.", "tiny", LONG, "eight nine ten eleven twelve thirteen fourteen", "b only",
      "c d"]),
    ("pairs_max_length_20", dict(padding="max_length", truncation="longest_first", max_length=20),
     ["What is the capital of France?", LONG], ["Paris is the capital of France.", ""]),
]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    vocab = os.path.join(BERT_DIR, "vocab.txt")
    if not os.path.isfile(vocab):
        sys.exit(f"no {vocab}: run scripts/fetch-bert.sh or set GROVE_BERT_DIR")
    out = {
        "transformers": transformers.__version__,
        "vocab_sha256": sha256(vocab),
        "configs": [],
        "batches": [],
    }
    default = None
    for name, kwargs, keys in CONFIGS:
        tok = BertTokenizer.from_pretrained(BERT_DIR, **kwargs)
        if default is None:
            default = tok
            out["vocab_size"] = tok.vocab_size
        opts = {
            "do_lower_case": tok.basic_tokenizer.do_lower_case,
            "strip_accents": tok.basic_tokenizer.strip_accents,
            "tokenize_chinese_chars": tok.basic_tokenizer.tokenize_chinese_chars,
        }
        cases = []
        for key in keys:
            tokens = tok.tokenize(TEXTS[key])
            cases.append({"name": key, "text": TEXTS[key], "tokens": tokens,
                          "ids": tok.convert_tokens_to_ids(tokens)})
        out["configs"].append({"name": name, "options": opts, "cases": cases})
    for name, kwargs, texts, texts_b in BATCHES:
        enc = default(texts, texts_b, **kwargs) if texts_b else default(texts, **kwargs)
        out["batches"].append({
            "name": name, "texts": texts, "texts_b": texts_b,
            "padding": kwargs["padding"], "max_length": kwargs["max_length"],
            "input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "token_type_ids": enc["token_type_ids"],
        })
    # texts as UTF-8, not \u escapes: json-c 0.16 decodes some surrogate-pair
    # escapes (\ud877\udffe, \ud836\udc87, ...) to U+FFFD
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {OUT}: {sum(len(c['cases']) for c in out['configs'])} texts, "
          f"{len(out['batches'])} batches")


if __name__ == "__main__":
    main()
