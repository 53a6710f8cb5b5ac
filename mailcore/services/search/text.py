"""How text becomes search words, the same for indexed documents and for queries: lower case,
diacritics removed, split into words of letters and digits. So SQLite FTS5 and PostgreSQL
full-text search (the ``simple`` configuration) see the same words and give the same answers."""

import functools
import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")


@functools.cache
def _strip_marks_table() -> dict[int, None]:
    """Every combining character, for str.translate (built once, on first non-ASCII text)."""
    return {cp: None for cp in range(0x300, 0x110000) if unicodedata.combining(chr(cp))}


def normalize_words(text: str) -> list[str]:
    """Lower-case words of letters and digits with diacritics removed ("Résumé" → "resume")."""
    text = text.lower()
    if not text.isascii():
        # Runs on every delivery: translate() strips the marks in C, not char by char in Python.
        text = unicodedata.normalize("NFKD", text).translate(_strip_marks_table())
    return _WORD.findall(text)


def normalize_text(text: str) -> str:
    return " ".join(normalize_words(text))
