"""Keeping secrets out of logs, error lines and stored rows: the one redaction helper."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "***"

# Path segments shown as they are: words of well-known APIs. Any other segment may be a token
# (Slack `/services/T0/B0/XXXX`, Discord `/api/webhooks/ID/TOKEN`, Teams `.../IncomingWebhook/...`)
# and is masked.
_PLAIN_SEGMENTS = frozenset(
    {"", "alerts", "api", "hook", "hooks", "services", "v1", "v2", "webhook", "webhooks"}
)
_DATABASE_SCHEMES = frozenset({"redis", "rediss", "unix", "postgres", "postgresql"})
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,32}")  # a query key shown as it is
# scheme://anything up to whitespace or a quote/bracket that usually ends a URL in a text; a
# trailing `.`, `,`, `:`, `;`, `!`, `?` or `)` is the sentence's, not the URL's.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.\-]*://(?:[^\s\"'<>]*[^\s\"'<>.,:;!?)])?")
# key=value connection strings: password='a b' (group 2) or password=ab (group 3); a malformed
# value with a space in it runs on to the next key=value (group 4).
_CONNINFO_PASSWORD = re.compile(
    r"(password\s*=\s*)(?:('(?:[^'\\]|\\.)*')|(\S+)((?:\s+[^=\s]+(?=\s|$))*))", re.IGNORECASE
)
# The shortest text remembered as a secret: shorter ones would blank ordinary words.
_MIN_SECRET = 4

_lock = threading.Lock()
_secrets: set[str] = set()


def remember(*values: str | None) -> None:
    """Secrets to blank wherever `redact_text` runs from now on."""
    found: set[str] = set()
    for value in values:
        if not value:
            continue
        if "://" in value:
            found.update(url_secrets(value))
        else:
            found.add(value)
            found.update(value.split())
    with _lock:
        _secrets.update(s for s in found if len(s) >= _MIN_SECRET)


def url_secrets(url: str) -> set[str]:
    """The parts of a URL `redact_url` hides, as they appear raw and percent-decoded."""
    out: set[str] = set()
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return {url}
    userinfo, at, _ = parts.netloc.rpartition("@")
    password = ""
    if at:
        out.add(userinfo)
        out.update(userinfo.split(":", 1))
        password = userinfo.partition(":")[2]
    out.update(seg for seg in parts.path.split("/") if seg.lower() not in _PLAIN_SEGMENTS)
    out.update(pair.partition("=")[2] for pair in parts.query.split("&"))
    out.add(parts.fragment)
    pieces = {p for s in out for p in (s, unquote(s), *unquote(s).split()) if p}
    found = {p for p in pieces if _looks_secret(p)}
    for piece in (password, unquote(password), *unquote(password).split()):
        if len(piece) >= _MIN_SECRET and MASK not in piece:
            found.add(piece)
    return found


def _looks_secret(text: str) -> bool:
    """A token rather than a word: 8 characters or more with a digit or mixed case."""
    if len(text) < 8 or MASK in text:
        return False
    has_digit = any(ch.isdigit() for ch in text)
    mixed = any(ch.isupper() for ch in text) and any(ch.islower() for ch in text)
    return has_digit or mixed


def redact_url(url: str) -> str:
    """`url` safe to print: userinfo, every path segment but well-known words, query values and the
    fragment become `***`; scheme, host and port stay. A database's or Redis' URL keeps its user
    name and its path (the database's name or number): they say which server, not how to log in."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        scheme, sep, _ = text.partition("://")
        return f"{scheme}://{MASK}" if sep else MASK
    database = parts.scheme.lower().split("+")[0] in _DATABASE_SCHEMES
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    if any(ch.isspace() or not ch.isprintable() for ch in host):
        host = MASK
    netloc = host if port is None else f"{host}:{port}"
    if "@" in parts.netloc:
        user = parts.username if database and parts.username else ""
        netloc = f"{user}:{MASK}@{netloc}" if user or database else f"{MASK}@{netloc}"
    segments = parts.path.split("/")
    if not database:
        segments = [seg if seg.lower() in _PLAIN_SEGMENTS else MASK for seg in segments]
    out = f"{parts.scheme}://{netloc}{'/'.join(segments)}"
    if parts.query:
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        keys = [k for k, _ in pairs] or [MASK]
        out += "?" + "&".join(f"{k if _PLAIN_KEY.fullmatch(k) else MASK}={MASK}" for k in keys)
    if parts.fragment:
        out += f"#{MASK}"
    return out


def redact_text(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every URL redacted (`redact_url`), every `password=...` of a connection
    string masked, and every remembered or given secret blanked."""
    out = _URL.sub(lambda m: redact_url(m.group()), text)
    out = _CONNINFO_PASSWORD.sub(_mask_password, out)
    with _lock:
        known = set(_secrets)
    known.update(s for s in secrets if s and len(s) >= _MIN_SECRET)
    for secret in sorted(known, key=len, reverse=True):
        if secret in out:
            out = out.replace(secret, MASK)
    return out


def _mask_password(match: re.Match[str]) -> str:
    """password=... with its first word masked, unless masked already."""
    if (match.group(2) or match.group(3)).startswith(MASK):
        return match.group()
    return match.group(1) + MASK + (match.group(4) or "")


def conninfo_password(conninfo: str) -> str | None:
    """The password of a key=value connection string, also a malformed one (a space in it)."""
    match = _CONNINFO_PASSWORD.search(conninfo)
    if match is None:
        return None
    return (match.group(2) or match.group(3) + match.group(4)).strip("'")


class RedactingFilter(logging.Filter):
    """Rewrites every record it sees through `redact_text` (the message with its arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_log_filter() -> None:
    """Put a RedactingFilter on every handler of the root logger, so records of every module pass
    through it whatever logger they came from."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


# What a terminal would act on instead of showing: C0 and C1 controls and DEL (ESC starts colour,
# hyperlink and title sequences; CR and backspace overwrite), the bidirectional embeddings,
# overrides, isolates and marks (they reorder what follows), and the Unicode line separators.
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def visible(text: str) -> str:
    """`text` with every control, bidi and line-separator character as a visible escape: one
    line, shown in the order it is stored, nothing a terminal would execute (Python's own escapes:
    \\n, \\x1b, \\u202e)."""
    return _INVISIBLE.sub(lambda match: match.group().encode("unicode_escape").decode(), text)
