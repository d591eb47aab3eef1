"""Find secrets in log text and replace them with ``***`` before anyone can read them.

Daemons redact in their log formatters (:mod:`rackpool.core.logs`); the ops index
redacts again everything it ingests, including CI build output that users push, where
people paste credentials in every shape. What is recognised:

- ``name = value`` where the name says secret — ``password``/``passwd``/``passphrase``,
  ``secret``/``client_secret``/``secret_key``, ``token``, ``api_key``/``apikey``,
  ``access_key``, ``private_key``, ``credentials``, ``authorization``, ``user_data``,
  ``*_PWD`` — written as env (``FOO_PASSWORD=x``, ``export X_TOKEN="x"``), shell flags
  (``--os-password x``), JSON, YAML, Python/Ruby/Go assignments and dict reprs, and
  HTTP headers (``Authorization: Bearer x``, ``X-Auth-Token: x``);
- ``mysql -pSECRET`` and ``sshpass -p SECRET``;
- token shapes that need no name: AWS access key ids, GitHub, GitLab and Slack tokens,
  JWTs, ``Bearer <token>``;
- the password in ``scheme://user:password@host``;
- PEM private keys: a whole block in one text, or (:class:`StreamRedactor`) a block
  written line by line.

The patterns follow maintained detectors — gitleaks' default rules
(github.com/gitleaks/gitleaks ``config/gitleaks.toml``) and detect-secrets' keyword
plugin (github.com/Yelp/detect-secrets ``detect_secrets/plugins/keyword.py``) — cut
down to what a log line needs and compiled into one regular expression. Every
repetition is bounded and no quantified group contains another quantifier, so a
hostile line cannot make matching backtrack catastrophically. :func:`may_hold_secret`
is a cheap necessary condition checked first: most log lines pay only for it.

Pure: no I/O, no module-level mutable state.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict

REDACTED = "***"

# -- names that hold a secret ---------------------------------------------------------
# detect-secrets' DENYLIST and gitleaks' generic-api-key keywords, narrowed to names
# that end in the keyword (``tokens_used``, ``password_expires_at`` are not secrets)
# and without bare ``pass``/``key`` (``PASS: test_x`` and ``key=node-1`` are everyday
# build output).
_NAME_WORDS = (
    r"(?<!no)passw(?:or)?d"  # password, passwd; not sudoers' NOPASSWD
    r"|passphrase|secret|token|credential|authorization"
    r"|(?:api|access|private|secret|auth|signing|encryption|master)[_.-]?key"
    r"|user[_-]?data"
)
_NAME_SUFFIX = r"s?(?:[_.-]?(?:base|value|b64|plain(?:text)?))?"
# ``pwd`` only as a suffix (MYSQL_PWD, db-pwd) or quoted ("pwd": ...): $PWD is a path.
_NAME = rf"(?<!/)(?:(?:{_NAME_WORDS}){_NAME_SUFFIX}|(?<=[_.\"'-])pwd)"

_FIELD_NAME_RE = re.compile(rf"(?:{_NAME_WORDS}){_NAME_SUFFIX}$|(?:^|[_.-])pwd$", re.IGNORECASE)

# -- values ---------------------------------------------------------------------------
# Quoted (closing quote optional: a line may be cut off), a JSON string inside a string
# (\"...\"), or unquoted up to a separator.


def _value(group: str) -> str:
    return (
        rf"(?P<{group}>"
        r"\"(?:[^\"\\\n]|\\.){0,4096}\"?"
        r"|'(?:[^'\\\n]|\\.){0,4096}'?"
        r"|\\\"(?:[^\"\\\n]|\\[^\"\n]){0,4096}(?:\\\")?"
        r"|[^\s\"',;&{}\[\]][^\s\"',;&}\]]{0,4095}"
        r")"
    )


_SCHEME = r"(?:(?:bearer|basic|token|negotiate|digest|bot)[ \t]{1,8})?"
_SEP = r"\\?[\"']?\]?[ \t]{0,8}(?::=|=>|[:=])[ \t]{0,8}"

_RULES = re.compile(
    # name = value, in env, JSON, YAML, Python, headers
    rf"(?P<kv>{_NAME}{_SEP}{_SCHEME}){_value('val')}"
    # --os-password value, --api-key=value
    rf"|(?P<flag>--[\w-]{{0,40}}?{_NAME}(?:=|[ \t]{{1,8}}))(?!-){_value('fval')}"
    # mysql -pSECRET, sshpass -p SECRET (checked against the command in _replace)
    r"|(?P<dashp>(?<!\S)(?-i:-p)(?P<psp>[ \t]?))(?P<pval>[^\s-]\S{0,4095})"
    # scheme://user:password@host
    r"|(?P<url>://[^\s:/@]{0,256}:)(?P<urlpw>[^\s/@]{1,4096})(?=@)"
    # Authorization-less bearer tokens
    r"|(?P<bearer>\bbearer[ \t]{1,8})(?P<bval>[\w.~+/=-]{16,4096})"
    # token shapes, case-sensitive (gitleaks rule ids in brackets)
    r"|(?P<tok>(?-i:"
    r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b"  # [aws-access-token]
    r"|gh[pousr]_[A-Za-z0-9]{36,255}"  # [github-pat, -oauth, -app-token, -refresh-token]
    r"|github_pat_\w{22,255}"  # [github-fine-grained-pat]
    r"|gl(?:pat|dt|rt|ptt|ft|soat|oas|agent|imt|ffct|cbt)-[\w.-]{20,300}"  # [gitlab-*]
    r"|xox[abposer]-[A-Za-z0-9-]{10,255}"  # [slack-*-token]
    r"|\beyJ[\w-]{10,4096}\.eyJ[\w-]{10,4096}\.[\w-]{0,4096}"  # [jwt]
    r"))",
    re.IGNORECASE,
)

# Values that are not secrets: placeholders, references, already redacted.
_NOT_SECRET = re.compile(
    r"[\"']?(?:\*+|none|null|nil|true|false|<[\w -]{0,64}>|\$\{?\w{1,64}\}?|\{\{[^{}]{0,128}\}\})[\"']?",
    re.IGNORECASE,
)

# -- PEM private keys (gitleaks [private-key]) ----------------------------------------
_PEM_BEGIN = re.compile(r"-----BEGIN[ A-Z0-9_-]{0,64}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END[ A-Z0-9_-]{0,64}PRIVATE KEY(?: BLOCK)?-----")

# -- the cheap pre-check --------------------------------------------------------------
# Every rule above needs one of these substrings of the lower-cased text, or a token
# prefix. Each ``in`` is a fast C scan; a regular expression alternation is far slower.
_HINTS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "authorization",
    "credential",
    "user",
    "://",
    "mysql",
    "bearer",
    "eyj",
)
# ``key`` appears in every other line (keypair, key_name); a name needs one of these before it.
_KEY_PREFIX = re.compile(r"(?:[_.-]|api|access|auth|signing|encryption|master|private ?)key")
_TOKEN_HINT = re.compile(
    r"A(?:3T|KIA|SIA|BIA|CCA)|g(?:h[pousr]_|ithub_pat_|l[a-z]{2,5}-)|xox[abposer]-"
)


def may_hold_secret(text: str) -> bool:
    """Cheap necessary condition: False means :func:`redact` would change nothing."""
    low = text.lower()
    for hint in _HINTS:
        if hint in low:
            return True
    i = low.find("key")
    while i >= 0:
        if _KEY_PREFIX.search(low, max(0, i - 10), i + 3) is not None:
            return True
        i = low.find("key", i + 3)
    return _TOKEN_HINT.search(text) is not None


def _replace(m: re.Match[str]) -> str:
    if m.group("kv") is not None or m.group("flag") is not None:
        val = m.group("val") or m.group("fval")
        if _NOT_SECRET.fullmatch(val):
            return m.group(0)
        quote = '\\"' if val.startswith('\\"') else val[:1] if val[:1] in "\"'" else ""
        close = quote if len(val) >= 2 * len(quote) and val.endswith(quote) else ""
        return f"{m.group('kv') or m.group('flag')}{quote}{REDACTED}{close}"
    if m.group("dashp") is not None:
        before = m.string[max(0, m.start() - 256) : m.start()].lower()
        command = max(before.rfind("sshpass"), before.rfind("mysql"))
        if command < 0 or (before.rfind("sshpass") < command and m.group("psp")):
            return m.group(0)  # mkdir -p x, gcc -pthread; ``mysql -p db`` prompts
        return f"{m.group('dashp')}{REDACTED}"
    if m.group("url") is not None:
        return f"{m.group('url')}{REDACTED}"
    if m.group("bearer") is not None:
        return f"{m.group('bearer')}{REDACTED}"
    return REDACTED


def _redact_pem(text: str) -> tuple[str, bool]:
    """Replace PEM private-key bodies; True if the text ends inside a block."""
    out: list[str] = []
    pos = 0
    while (begin := _PEM_BEGIN.search(text, pos)) is not None:
        out.append(text[pos : begin.end()])
        end = _PEM_END.search(text, begin.end())
        out.append(REDACTED)
        if end is None:
            return "".join(out), True
        out.append(text[end.start() : end.end()])
        pos = end.end()
    out.append(text[pos:])
    return "".join(out), False


def _redact(text: str) -> tuple[str, bool]:
    if not may_hold_secret(text):
        return text, False
    opened = False
    if "PRIVATE KEY" in text:
        text, opened = _redact_pem(text)
    return _RULES.sub(_replace, text), opened


def redact(text: str) -> str:
    """``text`` with every secret it holds replaced by ``***``."""
    return _redact(text)[0]


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a field name (``password``, ``X-Auth-Token``, ``user_data``…) holds a secret."""
    return _FIELD_NAME_RE.search(key) is not None


# A line of base64 only, as inside a PEM block: 40+ characters with upper and lower case
# letters and digits (so hex digests, hashes and words are not taken for one).
_B64_LINE = re.compile(r"[A-Za-z0-9+/]{40,100}={0,2}")
_HAS_UPPER_LOWER_DIGIT = re.compile(r"(?=[^A-Z]{0,100}[A-Z])(?=[^a-z]{0,100}[a-z])\D{0,100}\d")


def _is_base64_line(line: str) -> bool:
    return bool(_B64_LINE.fullmatch(line) and _HAS_UPPER_LOWER_DIGIT.match(line))


class StreamRedactor:
    """Redacts the lines of one stream (a log file, a pushed build log) in order.

    It remembers an unfinished PEM private key: after ``-----BEGIN … PRIVATE KEY-----``
    every line is replaced until the END line, at most ``max_block_lines`` lines (a
    4096-bit RSA key is about 50). A stream read again from the middle of a block (after
    a restart) still loses the key's body: a line of base64 only is always replaced.
    """

    def __init__(self, max_block_lines: int = 400) -> None:
        self.max_block_lines = max_block_lines
        self._block_lines = 0  # lines left before giving up on an END line; 0: outside

    @property
    def open(self) -> bool:
        """Whether the stream is inside a PEM private key block."""
        return self._block_lines > 0

    def redact(self, line: str) -> str:
        if self._block_lines:
            end = _PEM_END.search(line)
            if end is None:
                self._block_lines -= 1
                return REDACTED
            self._block_lines = 0
            rest, opened = _redact(line[end.end() :])
            if opened:
                self._block_lines = self.max_block_lines
            return REDACTED + line[end.start() : end.end()] + rest
        if 40 <= len(line) <= 102 and _is_base64_line(line.strip()):
            return REDACTED
        text, opened = _redact(line)
        if opened:
            self._block_lines = self.max_block_lines
        return text


class StreamRedactors:
    """One :class:`StreamRedactor` per stream name, the least recently used forgotten."""

    def __init__(self, max_streams: int = 4096) -> None:
        self.max_streams = max_streams
        self._streams: OrderedDict[str, StreamRedactor] = OrderedDict()

    def get(self, name: str) -> StreamRedactor:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = StreamRedactor()
            if len(self._streams) > self.max_streams:
                self._streams.popitem(last=False)
        else:
            self._streams.move_to_end(name)
        return stream
