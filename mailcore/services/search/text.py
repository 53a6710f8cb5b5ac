"""How text becomes search words, the same for indexed documents and for queries: lower case,
diacritics removed, split into words of letters and digits. So SQLite FTS5 and PostgreSQL
full-text search (the ``simple`` configuration) see the same words and give the same answers."""

import functools
import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")
# The same words for ASCII text already in lower case, three times faster (every delivery).
_ASCII_WORD = re.compile(r"[a-z0-9]+")
# ASCII letters to lower case, digits kept, everything else a space: bytes.translate runs in C.
_ASCII_TABLE = bytes(
    c if 48 <= c <= 57 or 97 <= c <= 122 else c + 32 if 65 <= c <= 90 else 32 for c in range(256)
)


_LAST_COMBINING = 0x20000


@functools.cache
def _strip_marks_table() -> dict[int, None]:
    """Every combining character, for str.translate (built once, on first non-ASCII text).

    Characters with a non-zero canonical combining class all lie below U+20000 (planes 2 and
    up hold ideographs and variation selectors, class 0): scanning only that far makes the first
    non-ASCII message of a process cost ~35 ms instead of ~0.3 s of held GIL, which stalled
    every door of ``runmail`` (a test checks the bound against the whole range)."""
    return {cp: None for cp in range(0x300, _LAST_COMBINING) if unicodedata.combining(chr(cp))}


def normalize_words(text: str) -> list[str]:
    """Lower-case words of letters and digits with diacritics removed ("Résumé" → "resume")."""
    text = text.lower()
    if text.isascii():
        return _ASCII_WORD.findall(text)
    # Runs on every delivery: translate() strips the marks in C, not char by char in Python.
    text = unicodedata.normalize("NFKD", text).translate(_strip_marks_table())
    return _WORD.findall(text)


def normalize_text(text: str) -> str:
    if text.isascii():
        return b" ".join(text.encode("ascii").translate(_ASCII_TABLE).split()).decode("ascii")
    return " ".join(normalize_words(text))
