"""Rich-text compose (issue 17): what the editor in the browser sends is checked and cleaned on
the server with nh3 (the policy family of ``webmail.reading``, narrowed to what the editor
makes), its pasted pictures become inline parts (``cid:``, RFC 2392, in multipart/related,
RFC 2387), and the text/plain alternative is made from the cleaned HTML, never taken from the
browser.

Refused, with a message for the form, and nothing else changed: HTML carrying scripts or other
active content (it would be removed, so the person must see what is sent), a picture over
:data:`MAX_INLINE_IMAGE`, or more than :data:`MAX_HTML` of markup."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import nh3
from django.conf import settings
from django.utils.html import escape, linebreaks

from mailcore.mime.compose import InlineImage
from mailcore.mime.html_text import html_to_plain
from mailcore.mime.parse import part_text
from webmail import reading

MAX_INLINE_IMAGE = 5 * 1024 * 1024
MAX_HTML = 8 * 1024 * 1024
TAGS = {"a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "hr", "i", "img",
        "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "u", "ul", "table", "tbody",
        "thead", "tr", "td", "th"}
ATTRIBUTES = {"a": {"href"}, "img": {"src", "alt", "width", "height"}, "*": {"dir"}}
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
_ACTIVE_TAGS = {"script", "iframe", "object", "embed", "frame", "frameset", "applet", "form",
                "input", "button", "textarea", "select", "meta", "link", "base", "svg", "math"}
# Linear: character classes only, no nested repetition.
_DATA_SRC = re.compile(r'src="data:(image/[a-z0-9.+-]{1,40});base64,([A-Za-z0-9+/=\s]*)"')


class RichTextError(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass
class RichBody:
    html: str
    text: str
    images: list[InlineImage] = field(default_factory=list)


class _ActiveContent(HTMLParser):
    """Finds what cleaning would silently remove that matters: scripts, frames, forms, event
    handlers and javascript: links."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = ""

    def handle_starttag(self, tag, attrs):
        if self.found:
            return
        if tag in _ACTIVE_TAGS:
            self.found = f"<{tag}>"
            return
        for name, value in attrs:
            low = (value or "").strip().lower().replace("\t", "").replace("\n", "")
            if name.startswith("on"):
                self.found = f"an {name} handler"
            elif name in ("href", "src", "action", "formaction") and low.startswith(
                    ("javascript:", "vbscript:", "data:text")):
                self.found = f"a {low.split(':', 1)[0]}: link"


def _src_filter(element: str, attribute: str, value: str) -> str | None:
    low = value.strip().lower()
    if element == "img" and attribute == "src":
        if low.startswith(("data:image/", "cid:", "https:", "http:")):
            return value
        return None
    if attribute == "href" and not low.startswith(("http:", "https:", "mailto:")):
        return None
    return value


def clean(markup: str) -> str:
    """The compose policy: the editor's formats, links and pictures; nothing active."""
    return nh3.clean(markup, tags=TAGS, attributes=ATTRIBUTES,
                     url_schemes={"http", "https", "mailto", "cid", "data"},
                     attribute_filter=_src_filter, link_rel="noopener noreferrer",
                     strip_comments=True)


def check_html(markup: str) -> str:
    """Clean HTML from the browser; raise :class:`RichTextError` for active content or size."""
    if len(markup) > MAX_HTML:
        raise RichTextError(f"The message is too large to send (over {MAX_HTML // 2**20} MB of "
                            "text and pictures); attach big pictures as files instead.")
    finder = _ActiveContent()
    finder.feed(markup)
    finder.close()
    if finder.found:
        raise RichTextError(f"The message contains {finder.found}, which cannot be sent in "
                            "mail. Remove it (or paste as plain text) and send again.")
    return clean(markup)


def to_mime(markup: str) -> RichBody:
    """Cleaned HTML with its pictures as inline parts and its text alternative; raise
    :class:`RichTextError` for a picture that is too big or not a picture."""
    html = check_html(markup)
    images: list[InlineImage] = []
    problems: list[str] = []
    host = settings.CORREIO_HOSTNAME

    def extract(match: re.Match) -> str:
        content_type = match.group(1)
        try:
            data = base64.b64decode("".join(match.group(2).split()), validate=True)
        except (binascii.Error, ValueError):
            problems.append("A picture in the message is damaged; remove it and paste it again.")
            return 'src=""'
        if content_type not in IMAGE_TYPES:
            problems.append(f"Pictures of type {content_type} cannot be put in the text.")
        if len(data) > MAX_INLINE_IMAGE:
            problems.append(f"A picture in the text is {len(data) / 2**20:.0f} MB; the limit is "
                            f"{MAX_INLINE_IMAGE // 2**20} MB. Attach it as a file instead.")
        cid = f"{hashlib.sha256(data).hexdigest()[:24]}@{host}"
        if not any(image.cid == cid for image in images):
            images.append(InlineImage(cid, content_type, data))
        return f'src="cid:{cid}"'

    html = _DATA_SRC.sub(extract, html)
    if problems:
        raise RichTextError(problems[0])
    return RichBody(html=html, text=_signature_separator(html_to_plain(html)), images=images)


def _signature_separator(text: str) -> str:
    """The editor drops the space of "-- " at the end of a line, so the text alternative
    gets the RFC 3676 §4.3 separator back: the last line that is just "--" becomes "-- "."""
    lines = text.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].rstrip() in ("--", "-- "):
            lines[i] = "-- "
            break
    return "\n".join(lines)


def text_to_html(text: str) -> str:
    """Plain text (a signature, a quoted plain message) as editor HTML."""
    return linebreaks(escape(text)) if text.strip() else ""


def quote_original_html(message, raw: bytes, author: str, when: str) -> str:
    """The original of a reply, sanitised as for reading (remote pictures left out), cleaned
    again with the compose policy, inside a blockquote."""
    html_part, plain = reading.body_parts(message.structure)
    if html_part is not None:
        body = reading.sanitize_html(part_text(raw, html_part)[: reading.MAX_DISPLAY_BYTES],
                                     raw, message.structure).html
    elif plain is not None:
        body = text_to_html(part_text(raw, plain)[: reading.MAX_DISPLAY_BYTES])
    else:
        body = ""
    intro = escape(f"On {when}, {author} wrote:" if when else f"{author} wrote:")
    return clean(f"<p><br></p><p>{intro}</p><blockquote>{body}</blockquote>")
