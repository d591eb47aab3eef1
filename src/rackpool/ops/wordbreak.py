"""Words of free text as Lucene's StandardTokenizer finds them (Unicode UAX #29).

Lucene's StandardTokenizer splits text at UAX #29 word boundaries and keeps the
segments that hold a letter, a digit, an ideograph, kana or an emoji:

- letters and digits join (``a1``, ``_a``); ``_`` and other connector punctuation
  (ExtendNumLet) join whatever is around them, but a segment made only of them
  (``___``) is no token;
- ``.``, ``'``, ``:`` and ``·`` (MidLetter, MidNumLet) join two letters
  (``nova.compute``, ``don't``, ``l·l``); ``.``, ``'``, ``,``, ``;`` (MidNum) join two
  digits (``10.0.0.5``, ``1,000``); anything else, ``-`` and ``/`` included, separates;
- combining marks, soft hyphens and other format characters (Extend, Format, ZWJ)
  stay inside the word they follow (``e`` + U+0301 is one token, ``foo­bar`` with a
  soft hyphen is one token, not ``foobar``);
- every Han ideograph and every Hiragana character is a token of its own; a run of
  Katakana is one token;
- an emoji with its modifiers and variation selectors, a ZWJ sequence
  (``👨‍👩‍👧``) and a flag (two regional indicators) are one token each;
- a token longer than 255 characters is split into pieces of 255 (Lucene 7+).

Tokens are then lower-cased per character as Java's ``Character.toLowerCase`` does
(``Σ`` is always ``σ``, ``İ`` is ``i``). Simplifications: the Hebrew-letter rules,
Katakana joined to letters through ``_``, and keycap sequences are not special.
"""

from __future__ import annotations

import functools
import re
import unicodedata

MAX_TOKEN_LENGTH = 255

_MID_LETTER = ":\u00b7\u0387\u055f\u05f4\u2027\ufe13\ufe55\uff1a"
_MID_NUM_LET = ".'\u2018\u2019\u2024\ufe52\uff07\uff0e"
_MID_NUM = ",;\u037e\u0589\u060c\u060d\u066c\u07f8\u2044\ufe10\ufe14\ufe50\ufe54\uff0c\uff1b"
_HAN = (
    (0x3005, 0x3007),
    (0x3021, 0x3029),
    (0x3038, 0x303B),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x323AF),
)
_HIRAGANA = ((0x3041, 0x309F), (0x1B001, 0x1B11F))
_KATAKANA = (
    (0x3031, 0x3035),
    (0x309B, 0x309C),
    (0x30A0, 0x30FF),
    (0x31F0, 0x31FF),
    (0x32D0, 0x32FE),
    (0x3300, 0x3357),
    (0xFF66, 0xFF9D),
)
_REGIONAL = ((0x1F1E6, 0x1F1FF),)
_SKIN_TONES = ((0x1F3FB, 0x1F3FF),)
_PICTOGRAPHIC = (
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x21AA),
    (0x231A, 0x23FF),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
    (0x1F000, 0x1F1E5),
    (0x1F200, 0x1F3FA),
    (0x1F400, 0x1FAFF),
)
# Java's Character.toLowerCase, where Python's str.lower differs.
_JAVA_LOWER = str.maketrans({"\u0130": "i", "\u03a3": "\u03c3"})
_HAS_ALNUM = re.compile(r"[^\W_]")


def _in(ranges: tuple[tuple[int, int], ...], code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in ranges)


def _char_class(codes: list[int]) -> str:
    """A regular-expression character class of ``codes`` (sorted), as ranges."""
    out, i = [], 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        lo, hi = re.escape(chr(codes[i])), re.escape(chr(codes[j]))
        out.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return "[" + "".join(out) + "]"


@functools.cache
def _pattern() -> re.Pattern[str]:
    """The word pattern, built once from the Unicode database (about 0.3 s)."""
    classes: dict[str, list[int]] = {
        k: [] for k in ("letter", "digit", "single", "kata", "ext", "enl", "emoji")
    }
    for code in range(0x110000):
        cat = unicodedata.category(chr(code))
        if _in(_HAN, code) or _in(_HIRAGANA, code):
            key = "single" if cat[0] in "LN" else ""
        elif _in(_KATAKANA, code):
            key = "kata" if cat[0] in "LN" or cat == "Sk" else ""
        elif _in(_SKIN_TONES, code) or cat in ("Mn", "Me", "Mc", "Cf"):
            key = "ext"
        elif cat == "Pc" or code == 0x202F:
            key = "enl"
        elif cat[0] == "L" or cat == "Nl":
            key = "letter"
        elif cat == "Nd":
            key = "digit"
        elif _in(_PICTOGRAPHIC, code) and cat[0] == "S" or _in(_REGIONAL, code):
            key = "emoji"
        else:
            key = ""
        if key:
            classes[key].append(code)
    letter, digit, single, kata, ext, enl, emoji = (_char_class(v) for v in classes.values())
    e = f"{ext}*"
    mid_letter = _char_class(sorted(map(ord, _MID_LETTER + _MID_NUM_LET)))
    mid_num = _char_class(sorted(map(ord, _MID_NUM + _MID_NUM_LET)))
    regional = _char_class(list(range(0x1F1E6, 0x1F200)))
    word = (
        f"(?:{enl}{e}|{letter}{e}(?:{mid_letter}{e}(?={letter}))?"
        f"|{digit}{e}(?:{mid_num}{e}(?={digit}))?)+"
    )
    emoji_seq = f"{regional}{e}{regional}{e}|{emoji}{e}(?:(?<=\u200d){emoji}{e})*"
    return re.compile(f"{word}|(?:{kata}{e})+|{single}{e}|{emoji_seq}")


def words(text: str) -> list[str]:
    """The lower-cased tokens of ``text`` (any script), in order."""
    out = []
    for match in _pattern().finditer(text):
        token = match.group()
        first = token[0]
        if (first == "_" or unicodedata.category(first) == "Pc") and not _HAS_ALNUM.search(token):
            continue  # only connector punctuation (and marks): no token
        token = token.translate(_JAVA_LOWER).lower()
        if len(token) > MAX_TOKEN_LENGTH:
            out += split_long(token)
        else:
            out.append(token)
    return out


def split_long(token: str) -> list[str]:
    return [token[i : i + MAX_TOKEN_LENGTH] for i in range(0, len(token), MAX_TOKEN_LENGTH)]
