"""The ``<style>`` blocks of HTML mail, kept safely for the sandboxed body frame.

Newsletters put their layout in ``<style>`` blocks; dropping them leaves the mail broken, and
keeping them as sent would let a message load remote resources (``url()``, ``@import``,
``@font-face``), which tell the sender it was read. So the blocks are parsed with tinycss2 (a
CSS Syntax Level 3 tokenizer, W3C CSS Syntax §5) and rebuilt from what is allowed: style rules
and ``@media`` groups, with only the declarations the attribute sanitiser also allows, and no
value that loads or evaluates anything. Every other at-rule is dropped. The result lives only
inside the frame's own document, so it cannot restyle the webmail.

Bounded work: at most ``MAX_CSS_BYTES`` of CSS are read and ``MAX_RULES`` rules kept; the
scan that finds the blocks is linear."""

from __future__ import annotations

import re

import tinycss2

MAX_CSS_BYTES = 256 * 1024
MAX_BLOCKS = 32
MAX_RULES = 3000
MAX_MEDIA_DEPTH = 2
# Functions a value may use: colours and arithmetic. Anything else (url, image-set, element,
# env, attr, expression, ...) drops the declaration.
SAFE_FUNCTIONS = {"rgb", "rgba", "hsl", "hsla", "calc", "min", "max", "clamp"}
# Value text that loads or evaluates something in any spelling (CSS escapes included).
_ACTIVE = re.compile(r"(?i)(url\s*\(|expression|image-set|@import|\\|behavior|binding|javascript:)")


def extract_style_blocks(markup: str) -> tuple[str, str]:
    """Split ``markup`` into (the markup with its ``<style>`` blocks removed, their CSS)."""
    lower = markup.lower()
    out, css = [], []
    pos = 0
    size = 0
    for _ in range(MAX_BLOCKS):
        start = lower.find("<style", pos)
        if start < 0:
            break
        open_end = lower.find(">", start)
        if open_end < 0:
            break
        close = lower.find("</style", open_end)
        if close < 0:
            break
        close_end = lower.find(">", close)
        close_end = len(markup) if close_end < 0 else close_end + 1
        out.append(markup[pos:start])
        block = markup[open_end + 1 : close]
        if size + len(block) <= MAX_CSS_BYTES:
            css.append(block)
            size += len(block)
        pos = close_end
    out.append(markup[pos:])
    return "".join(out), "\n".join(css)


def sanitize_css(css: str, allowed_properties: set[str]) -> str:
    """The allowed part of a style sheet, serialised again; never contains ``<``."""
    rules = tinycss2.parse_stylesheet(css[:MAX_CSS_BYTES], skip_comments=True,
                                      skip_whitespace=True)
    kept: list[str] = []
    _rules(rules, allowed_properties, kept, depth=0)
    return "\n".join(kept)


def _rules(rules, allowed: set[str], kept: list[str], depth: int) -> None:
    for rule in rules:
        if len(kept) >= MAX_RULES:
            return
        if rule.type == "qualified-rule":
            selector = tinycss2.serialize(rule.prelude).strip()
            if not selector or "<" in selector or _ACTIVE.search(selector):
                continue
            body = declarations(tinycss2.serialize(rule.content), allowed)
            if body:
                kept.append(f"{selector}{{{body}}}")
        elif rule.type == "at-rule" and rule.lower_at_keyword == "media" and rule.content:
            if depth >= MAX_MEDIA_DEPTH:
                continue
            query = tinycss2.serialize(rule.prelude).strip()
            if "<" in query or _ACTIVE.search(query) or "{" in query:
                continue
            inner: list[str] = []
            _rules(tinycss2.parse_rule_list(rule.content, skip_comments=True,
                                            skip_whitespace=True), allowed, inner, depth + 1)
            if inner:
                kept.append(f"@media {query}{{{''.join(inner)}}}")


def declarations(text: str, allowed: set[str]) -> str:
    """``prop: value`` pairs of a declaration block (or a style attribute) that are allowed."""
    out = []
    for item in tinycss2.parse_blocks_contents(text, skip_comments=True, skip_whitespace=True):
        if item.type != "declaration" or item.lower_name not in allowed:
            continue
        if not _safe_value(item.value):
            continue
        value = tinycss2.serialize(item.value).strip()
        if not value or "<" in value or _ACTIVE.search(value):
            continue
        out.append(f"{item.lower_name}:{value}{' !important' if item.important else ''}")
    return ";".join(out)


def _safe_value(tokens) -> bool:
    stack = list(tokens)
    while stack:
        token = stack.pop()
        if token.type == "url":
            return False
        if token.type == "function":
            if token.lower_name not in SAFE_FUNCTIONS:
                return False
            stack.extend(token.arguments)
        elif token.type in ("() block", "[] block", "{} block"):
            stack.extend(token.content)
        elif token.type == "at-keyword" or token.type == "error":
            return False
    return True
