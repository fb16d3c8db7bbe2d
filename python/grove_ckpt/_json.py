"""Strict JSON, as grove's C reader parses safetensors headers.

The C reader (src/checkpoint/json_strict.c) runs json-c in strict mode with
UTF-8 validation and a nesting bound, then scans the text a second time to
refuse what json-c lets through (duplicate keys, single-quoted keys, \\u0000,
NaN and Infinity). This module does both in one pass, so that Python accepts
exactly the headers C accepts and names the same fault at the same offset:
json-c's refusals first (its words: "unexpected character", "number
expected", ...), then the second scan's, the first in text order.

Values: objects are dicts with ``bytes`` keys (first position, last value,
as json-c keeps them), arrays lists, strings ``bytes`` (UTF-8 as json-c
decodes it: a lone surrogate escape becomes U+FFFD), integers ints (past
int64 they saturate, as json-c stores them), other numbers floats,
true/false bools and null None.
"""

import re

from ._format import INT64_MAX, INT64_MIN

_WS = re.compile(rb"[ \t\n\r]*")
_NUMBER_CHARS = re.compile(rb"[0-9eE.+\-]*")
_PLAIN = {0x22: re.compile(rb'[^"\\]*'), 0x27: re.compile(rb"[^'\\]*")}
# json-c checks UTF-8 structurally only: a lead byte and the right number of
# continuation bytes (so overlong forms and encoded surrogates pass).
_LAX_UTF8 = re.compile(
    rb"(?:[\x00-\x7f]|[\xc0-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}"
    rb"|[\xf0-\xf7][\x80-\xbf]{3})*")
_ESCAPES = {0x22: b'"', 0x5C: b"\\", 0x2F: b"/", 0x62: b"\b", 0x66: b"\f",
            0x6E: b"\n", 0x72: b"\r", 0x74: b"\t"}
_HEX = frozenset(b"0123456789abcdefABCDEF")
# json-c's strict mode: the word a literal's first character starts
_WORDS = {0x74: (b"true", "boolean expected"), 0x54: (b"true", "boolean expected"),
          0x66: (b"false", "boolean expected"), 0x46: (b"false", "boolean expected"),
          0x6E: (b"null", "null expected"), 0x4E: (b"NaN", "null expected"),
          0x49: (b"Infinity", "unexpected character"),
          0x69: (b"Infinity", "unexpected character")}
_FFFD = "\ufffd".encode()


class JSONError(ValueError):
    """A refusal, its message in the C reader's words."""


class _Stop(Exception):
    """json-c gave up: its description and the offset in the text."""

    def __init__(self, desc, pos):
        super().__init__(desc)
        self.desc, self.pos = desc, pos


def _utf8(cp):
    return chr(cp).encode("utf-8", "surrogatepass")  # the C scan encodes surrogates too


def _is_high(cp):
    return 0xD800 <= cp <= 0xDBFF


def _is_low(cp):
    return 0xDC00 <= cp <= 0xDFFF


def _pair(hi, lo):
    return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)


def _first_bad_utf8(s):
    """Where json-c's UTF-8 check fails: an offset, len(s) for a character
    cut off by the end, or None."""
    if s.isascii():
        return None
    try:
        s.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    i = _LAX_UTF8.match(s).end()
    if i == len(s):
        return None  # overlong forms or surrogates: json-c takes them
    c = s[i]
    need = 1 if 0xC0 <= c <= 0xDF else 2 if 0xE0 <= c <= 0xEF else 3 if 0xF0 <= c <= 0xF7 else 0
    for k in range(1, need + 1):
        if i + k >= len(s):
            return len(s)
        if not 0x80 <= s[i + k] <= 0xBF:
            return i + k
    return i


def _decode(units):
    """A string's pieces (bytes, or the int code point of a \\u escape) as
    json-c stores it, and as the C scan decodes it to compare keys. They
    differ only for lone surrogates: json-c writes U+FFFD, the scan the
    surrogate itself."""
    jsonc, scan = bytearray(), bytearray()
    high = None
    k = 0
    while k < len(units):
        u = units[k]
        nxt = units[k + 1] if k + 1 < len(units) else None
        k += 1
        if isinstance(u, bytes):
            if high is not None:
                jsonc += _FFFD
                high = None
            jsonc += u
            scan += u
            continue
        # the scan pairs a high surrogate with the escape right after it
        if _is_high(u) and isinstance(nxt, int) and _is_low(nxt):
            scan += _utf8(_pair(u, nxt))
        elif not (_is_low(u) and k >= 2 and isinstance(units[k - 2], int)
                  and _is_high(units[k - 2])):
            scan += _utf8(u)
        if high is not None:
            if _is_low(u):
                jsonc += _utf8(_pair(high, u))
                high = None
                continue
            jsonc += _FFFD
            high = None
        if _is_high(u):
            high = u
        elif _is_low(u):
            jsonc += _FFFD
        else:
            jsonc += _utf8(u)
    if high is not None:
        jsonc += _FFFD
    return bytes(jsonc), bytes(scan)


class _Parser:
    def __init__(self, s, max_depth):
        self.s, self.n, self.max_depth = s, len(s), max_depth
        self.scan_error = None  # (message, offset or None): the scan's first refusal

    def note(self, message, pos=None):
        if self.scan_error is None:
            self.scan_error = (message, pos)

    def ws(self, i):
        return _WS.match(self.s, i).end()

    def need(self, i):
        if i >= self.n:
            raise _Stop("unexpected end", self.n)

    def string(self, i):
        """The string whose opening quote is at i: (json-c bytes, scan bytes,
        whether it holds \\u0000, the offset after it)."""
        s = self.s
        q = s[i]
        plain = _PLAIN[q]
        j = i + 1
        k = plain.match(s, j).end()
        self.need(k)
        if s[k] == q:  # no escapes: the common case
            return s[j:k], s[j:k], False, k + 1
        units = []
        while True:
            k = plain.match(s, j).end()
            if k > j:
                units.append(s[j:k])
            self.need(k)
            if s[k] == q:
                break
            k += 1  # past the backslash
            self.need(k)
            e = s[k]
            if e == 0x75:  # \uXXXX
                for h in range(k + 1, k + 5):
                    self.need(h)
                    if s[h] not in _HEX:
                        raise _Stop("invalid string sequence", h)
                units.append(int(s[k + 1:k + 5], 16))
                j = k + 5
            elif e in _ESCAPES:
                units.append(_ESCAPES[e])
                j = k + 1
            else:
                raise _Stop("invalid string sequence", k)
        jsonc, scan = _decode(units)
        return jsonc, scan, 0 in units, k + 1

    def literal(self, i):
        word, desc = _WORDS[self.s[i]]
        for k, c in enumerate(word):
            self.need(i + k)
            if self.s[i + k] != c:
                raise _Stop(desc, i + k)
        return word, i + len(word)

    def number(self, i, depth):
        s = self.s
        # which of these characters json-c's number loop takes
        run = _NUMBER_CHARS.match(s, i).group()
        k, is_double, is_exp, neg_ok, pos_ok = 0, False, False, True, False
        for c in run:
            if not (0x30 <= c <= 0x39 or (not is_exp and c in b"eE") or (neg_ok and c == 0x2D)
                    or (pos_ok and c == 0x2B) or (not is_double and c == 0x2E)):
                break
            neg_ok = pos_ok = False
            if c == 0x2E:
                is_double = neg_ok = pos_ok = True
            elif c in b"eE":
                is_exp = is_double = neg_ok = pos_ok = True
            k += 1
        tok, p = s[i:i + k], i + k
        self.need(p)
        c = s[p]
        if depth > 0 and c not in b",]}/Ii \t\n\r":
            raise _Stop("number expected", p)
        if tok == b"-" and c in b"Ii":
            _, p = self.literal(p)
            return float("-inf"), p
        if not is_double:
            if tok[:1] == b"-":
                if len(tok) == 1:
                    raise _Stop("number expected", p)
                return max(int(tok), INT64_MIN), p
            v = int(tok)
            if v and tok[0] == 0x30:  # a leading zero
                raise _Stop("number expected", p)
            return min(v, INT64_MAX), p
        try:
            return float(tok), p  # strtod over the whole token, as json-c
        except ValueError:
            raise _Stop("number expected", p) from None

    def member(self, frame, i, first):
        """Read `key :` at i into frame; return the offset of its value."""
        s = self.s
        self.need(i)
        if s[i] == 0x7D and not first:  # a trailing comma
            raise _Stop("unexpected character", i)
        if s[i] not in (0x22, 0x27):
            raise _Stop("quoted object property name expected", i)
        key, scan, has_nul, j = self.string(i)
        if s[i] == 0x27 or has_nul:  # json-c takes 'key', the scan does not
            self.note("bad key (or \\u0000 in a key) at byte %d", i)
        frame[1].append(scan)
        frame[2] = key
        j = self.ws(j)
        self.need(j)
        if s[j] != 0x3A:
            raise _Stop("object property name separator ':' expected", j)
        return self.ws(j + 1)

    def parse(self):
        """The value at the start: (value, the offset after it)."""
        s = self.s
        stack = []  # [container, the scan's keys (objects) or None, pending key]
        i = self.ws(0)
        while True:
            self.need(i)
            if len(stack) > self.max_depth - 1:
                raise _Stop("nesting too deep", i)
            c = s[i]
            if c in (0x7B, 0x5B):  # { or [
                j = self.ws(i + 1)
                self.need(j)
                if s[j] == c + 2:  # } or ]: empty
                    value, i = ({} if c == 0x7B else []), j + 1
                elif c == 0x7B:
                    frame = [{}, [], None]
                    i = self.member(frame, j, True)
                    stack.append(frame)
                    continue
                else:
                    stack.append([[], None, None])
                    i = j
                    continue
            elif c == 0x22:
                value, _, has_nul, j = self.string(i)
                if has_nul:
                    self.note("bad string at byte %d", i)
                i = j
            elif c == 0x2D or 0x30 <= c <= 0x39:
                value, i = self.number(i, len(stack))
            elif c in _WORDS:
                word, j = self.literal(i)
                if word in (b"NaN", b"Infinity"):
                    self.note("malformed JSON value at byte %d", i)
                value = {b"true": True, b"false": False, b"null": None,
                         b"NaN": float("nan"), b"Infinity": float("inf")}[word]
                i = j
            else:
                raise _Stop("unexpected character", i)
            # a complete value: into its container, closing finished ones
            while True:
                if not stack:
                    return value, i
                frame = stack[-1]
                container, keys, key = frame
                if keys is None:
                    container.append(value)
                else:
                    container[key] = value
                i = self.ws(i)
                self.need(i)
                c = s[i]
                if c == 0x2C:
                    i = self.ws(i + 1)
                    if keys is not None:
                        i = self.member(frame, i, False)
                    break
                if keys is None and c != 0x5D:
                    raise _Stop("array value separator ',' expected", i)
                if keys is not None and c != 0x7D:
                    raise _Stop("object value separator ',' expected", i)
                if keys is not None:
                    self.check_duplicates(keys)
                stack.pop()
                value, i = container, i + 1

    def check_duplicates(self, keys):
        if len(keys) > 1 and len(set(keys)) != len(keys):
            ordered = sorted(keys)
            dup = next(a for a, b in zip(ordered, ordered[1:]) if a == b)
            self.note("duplicate name '%s' in the header"
                      % dup[:200].decode("utf-8", "backslashreplace"))


def loads(text, max_depth, label, what, base):
    """Parse text (bytes) strictly. Raises JSONError with the C reader's
    message, naming label and the byte offset (base + offset in text)."""
    end = len(text)
    while end and text[end - 1] in b" \n\t\r":  # safetensors' padding
        end -= 1
    s = text[:end]
    p = _Parser(s, max_depth)
    bad = _first_bad_utf8(s)
    fault = None
    try:
        value, i = p.parse()
    except _Stop as e:
        if bad is not None and bad <= e.pos:
            fault = ("invalid utf-8 string", bad)
        elif e.pos < len(s) and s[e.pos] >= 0x80:  # json-c stopped inside a character
            fault = ("invalid utf-8 string", e.pos)
        else:
            fault = (e.desc, e.pos)
    else:
        if bad is not None and bad < i:
            fault = ("invalid utf-8 string", bad)
        else:
            i = p.ws(i)
            if i < len(s):
                fault = ("invalid utf-8 string" if bad is not None and bad <= i
                         else "unexpected character", i)
    if fault:
        raise JSONError(f"'{label}': {what} is not valid JSON: {fault[0]} at byte "
                        f"{base + fault[1]}")
    if p.scan_error:
        msg, pos = p.scan_error
        raise JSONError(f"'{label}': " + (msg % (base + pos) if pos is not None else msg))
    return value
