"""The fast paths of analysis give the tokens the general ones give."""

from __future__ import annotations

import random
from typing import Any

from rackpool.ops import analysis

# Letters, digits, joiners, separators, non-ASCII letters/digits/marks and escapes.
ALPHABET = [*"abcXYZ019_.':,;- \t\n=/\"", "é", "É", "ß", "İ", "²", "٣", "日", "Ⅻ", "ǅ"]
ALPHABET += ["\u0301", "\u212a", "\ue12e", "\ue000", "\x85", "\u2028"]


def _general_text(text: str) -> list[str]:
    """Tokenise with the word pattern and escape: what every text goes through."""
    return "\n".join(analysis.text_tokens(text)).translate(analysis._TEXT_ESCAPES).split()


def test_encode_text_matches_the_word_pattern() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 20)))
        assert analysis.encode_text(text).split() == _general_text(text), repr(text)


def _value(rng: random.Random) -> Any:
    r = rng.random()
    if r < 0.6:
        return rng.choice(["", "INFO", "error", "a-b", "x" * 300, "É", "\ue000", "a b", "n.c"])
    if r < 0.8:
        return rng.choice([-1, 0, 5, 1.5, True, False, None, {"k": 1}])
    return [_value(rng) for _ in range(rng.randint(0, 3))]


def test_keyword_encoder_matches_encode_keywords() -> None:
    rng = random.Random(3)
    names = ["level", "logger", "loglevel", "module", "tags", "message", "ts", "exception", "h"]
    encoder = analysis.KeywordEncoder(per_field=3)  # small: values are forgotten, fields too
    for _ in range(20_000):
        fields = {n: _value(rng) for n in rng.sample(names, rng.randint(0, len(names)))}
        expected = sorted(analysis.encode_keywords(fields).split(" "))
        assert sorted(encoder.encode(fields).split(" ")) == expected, fields


def test_aliases_are_indexed_and_shown_unless_the_document_has_them() -> None:
    tokens = analysis.encode_keywords({"level": "ERROR", "logger": "a", "module": "b"}).split()
    assert tokens == [
        analysis.encode_keyword("level", "ERROR"),
        analysis.encode_keyword("logger", "a"),
        analysis.encode_keyword("module", "b"),
        analysis.encode_keyword("loglevel", "ERROR"),
    ]
    assert analysis.shown_fields({"level": "ERROR", "module": "b"}) == {
        "level": "ERROR",
        "module": "b",
        "loglevel": "ERROR",
        "message": "",
    }
