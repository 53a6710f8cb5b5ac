"""Showing a stored message safely: choosing the body part, plain text with clickable links,
HTML sanitised with nh3 for a sandboxed iframe, and the list of attachments with their IMAP
section numbers (RFC 3501 §6.4.5), from the cached body structure and the stored bytes.

Mail HTML only ever leaves this module as the document of the sandboxed body frame: nh3 keeps a
small allow-list of tags and attributes (no script, SVG, MathML, forms, frames, event
handlers, base or meta) and only the http, https, mailto and cid URL schemes; relative URLs
are dropped (they would point at the webmail itself). ``<style>`` blocks are rebuilt by
:mod:`webmail.mailcss` from the same property allow-list. Remote images are removed unless
allowed; ``cid:`` images (RFC 2392) become ``data:`` URLs of their parts, so the frame needs no
cookies and no network.

Bounded work: html5ever (under nh3) slows down quadratically with nesting depth (50,000
nested ``<div>`` take half a minute), so a linear pass first drops the tags nested deeper than
``MAX_DEPTH``, keeping their text."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import nh3
from django.utils.html import escape

from mailcore.mime.parse import decode_part_body, part_filename, part_text
from mailcore.mime.structure import find_part
from webmail import mailcss

# Bounded work: a message body larger than this is cut for display (the raw source and the
# attachment download still give everything).
MAX_DISPLAY_BYTES = 2 * 1024 * 1024
# HTML costs far more per byte to clean than text (about 2 µs a byte in nh3): this keeps every
# message under a second of server time. Real newsletters are a few hundred KB at most.
MAX_HTML_BYTES = 600 * 1024
MAX_INLINE_IMAGE = 5 * 1024 * 1024
# Deeper than any real layout (mail clients nest tables a few dozen levels at most).
MAX_DEPTH = 200
# Searching the open elements for a closing tag's partner stops this far down, so a flood of
# unmatched closing tags stays linear.
_CLOSE_SEARCH = 64
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr"}
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]{0,40})([^<>]{0,4000})>")
_SCHEME = re.compile(r"^\s*[A-Za-z][A-Za-z0-9+.-]*:")
_SAFE_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_URL = re.compile(r"""(?i)\b((?:https?://|mailto:|www\.)[^\s<>"']+[^\s<>"'.,;:!?)\]}])""")

TAGS = {
    "a", "abbr", "address", "article", "aside", "b", "bdi", "bdo", "blockquote", "br", "caption",
    "center", "cite", "code", "col", "colgroup", "dd", "del", "details", "dfn", "div", "dl", "dt",
    "em", "figcaption", "figure", "font", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "i", "img", "ins", "kbd", "li", "main", "mark", "nav", "ol", "p", "pre", "q", "rp",
    "rt", "ruby", "s", "samp", "section", "small", "span", "strike", "strong", "sub", "summary",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var",
    "wbr",
}
_COMMON = {"align", "valign", "dir", "lang", "title", "width", "height", "bgcolor", "color",
           "border", "cellpadding", "cellspacing", "colspan", "rowspan", "style", "face", "size",
           "nowrap", "start", "type", "span", "abbr", "scope", "summary", "datetime", "cite",
           "class", "id"}
ATTRIBUTES = {"*": _COMMON, "a": {"href", "name"}, "img": {"src", "alt"}}
URL_SCHEMES = {"http", "https", "mailto", "cid"}
# CSS properties kept in style attributes: layout and typography only. Nothing that takes a
# url() (background, background-image, list-style-image, content, cursor, ...) or positions
# content over the page.
STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style",
    "font-weight", "font-variant", "line-height", "letter-spacing", "word-spacing",
    "text-align", "text-decoration", "text-indent", "text-transform", "white-space",
    "vertical-align", "direction", "margin", "margin-top", "margin-right", "margin-bottom",
    "margin-left", "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-style", "border-width", "border-collapse", "border-spacing", "border-radius",
    "width", "max-width", "min-width", "height", "max-height", "min-height", "display",
    "table-layout", "list-style-type", "overflow-wrap", "word-break",
}
# <style> blocks may also set plain backgrounds (no url(), see mailcss) and floats.
SHEET_PROPERTIES = STYLE_PROPERTIES | {"background", "float", "clear", "text-overflow",
                                       "overflow", "visibility", "opacity"}
_CID_SRC = re.compile(r'src="cid:([^"]*)"')
# Style values that load or evaluate something, in any spelling (CSS escapes included).
_ACTIVE_CSS = re.compile(r"(?i)(url\s*\(|expression|image-set|@import|\\|behavior|binding)")


@dataclass
class PartInfo:
    section: str
    content_type: str
    filename: str
    size: int
    content_id: str
    inline: bool


def iter_sections(structure: dict):
    """Yield ``(section, part)`` for every part below the top, in document order, with the
    section numbers ``find_part`` understands (RFC 3501 §6.4.5)."""
    if structure["type"] != "multipart":
        yield [1], structure
        return
    stack = [([i], child) for i, child in enumerate(structure["children"], 1)][::-1]
    while stack:
        section, part = stack.pop()
        yield section, part
        children: list = []
        if part["type"] == "multipart":
            children = [(section + [i], c) for i, c in enumerate(part["children"], 1)]
        elif part["type"] == "message" and part["children"]:
            inner = part["children"][0]
            if inner["type"] == "multipart":
                children = [(section + [i], c) for i, c in enumerate(inner["children"], 1)]
            else:
                children = [(section + [1], inner)]
        stack.extend(reversed(children))


def section_str(section: list[int]) -> str:
    return ".".join(str(n) for n in section)


def parse_section(text: str) -> list[int] | None:
    parts = text.split(".")
    if not all(p.isdigit() and len(p) < 6 for p in parts):
        return None
    return [int(p) for p in parts]


def safe_content_type(part: dict) -> str:
    ctype = f"{part['type']}/{part['subtype']}".lower()
    return ctype if _SAFE_MIME.match(ctype) else "application/octet-stream"


def _content_id(part: dict) -> str:
    cid = (part.get("id") or "").strip()
    return cid[1:-1] if cid.startswith("<") and cid.endswith(">") else cid


def _is_attachment(part: dict, inside_message: bool) -> bool:
    disposition = part.get("disposition")
    if disposition and str(disposition[0]).lower() == "attachment":
        return True
    if part["type"] == "message":
        return True
    if part["type"] in ("multipart",):
        return False
    if part["type"] == "text" and part["subtype"] in ("plain", "html") and not part_filename(part):
        return inside_message
    return True


def _related_image(part: dict, parent: dict | None) -> bool:
    """An image the HTML shows itself: inside multipart/related, with a Content-ID and not
    marked as an attachment (RFC 2387, RFC 2392)."""
    disposition = part.get("disposition")
    return (
        parent is not None and parent["type"] == "multipart"
        and parent["subtype"] == "related" and part["type"] == "image"
        and bool(_content_id(part))
        and not (disposition and str(disposition[0]).lower() == "attachment")
    )


def decoded_size(part: dict, raw: bytes | None = None) -> int:
    """The size of the part's content once decoded: base64 (RFC 2045 §6.8) is counted from its
    characters, quoted-printable decoded; without the bytes, estimated from the structure."""
    encoding = (part.get("encoding") or "7bit").lower()
    if part["type"] == "message" or encoding not in ("base64", "quoted-printable"):
        return part["size"]
    if raw is None:
        if encoding == "base64":
            return max(0, (part["size"] - 2 * part.get("lines", 0)) * 3 // 4)
        return part["size"]
    body = raw[part["body_start"] : part["body_end"]]
    if encoding == "quoted-printable":
        return len(decode_part_body(raw, part))
    chars = body.translate(None, b" \t\r\n")
    return max(0, len(chars) * 3 // 4 - (chars[-2:].count(b"=") if chars else 0))


def attachments(structure: dict, raw: bytes | None = None) -> list[PartInfo]:
    """Parts a person would call attachments: everything that is not the displayed text or a
    container, including inline images the HTML does not show itself (flagged ``inline``) and
    attached messages (not their insides). Sizes are of the decoded content (exact with
    ``raw``)."""
    result = []
    skip_prefixes: list[list[int]] = []
    parts: dict[tuple, dict] = {(): structure}
    for section, part in iter_sections(structure):
        parts[tuple(section)] = part
        if any(section[: len(p)] == p for p in skip_prefixes):
            continue
        if part["type"] == "multipart" or not _is_attachment(part, False):
            continue
        if _related_image(part, parts.get(tuple(section[:-1]))):
            continue
        if part["type"] == "message":
            skip_prefixes.append(section)
        disposition = part.get("disposition")
        inline = bool(_content_id(part)) and not (
            disposition and str(disposition[0]).lower() == "attachment"
        )
        name = part_filename(part) or ""
        if not name:
            name = "message.eml" if part["type"] == "message" else f"part-{section_str(section)}"
        result.append(
            PartInfo(
                section=section_str(section),
                content_type=safe_content_type(part),
                filename=clean_filename(name),
                size=decoded_size(part, raw),
                content_id=_content_id(part),
                inline=inline,
            )
        )
    return result


def clean_filename(name: str) -> str:
    """A file name safe to show and to offer for download: no paths, no control characters."""
    name = "".join(ch for ch in name if ch >= " " and ch not in "\x7f\u202e\u202d\u2066\u2067")
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    return name[:200] or "attachment"


def body_parts(structure: dict) -> tuple[dict | None, dict | None]:
    """The first inline text/html and text/plain parts of the message, not looking inside
    attached messages."""
    html_part = plain = None
    for _section, part in iter_sections(structure) if structure["type"] == "multipart" else [
        ([1], structure)
    ]:
        if part["type"] == "message":
            break
        if part["type"] != "text":
            continue
        disposition = part.get("disposition")
        if disposition and str(disposition[0]).lower() == "attachment":
            continue
        if part["subtype"] == "html" and html_part is None:
            html_part = part
        elif part["subtype"] == "plain" and plain is None:
            plain = part
    return html_part, plain


def _limited(part: dict) -> dict:
    limit = MAX_HTML_BYTES if part.get("subtype") == "html" else MAX_DISPLAY_BYTES
    if part["body_end"] - part["body_start"] > limit:
        return dict(part, body_end=part["body_start"] + limit)
    return part


_REMOTE_IMG = re.compile(r"""(?i)<img\b[^>]{0,2000}?\bsrc\s*=\s*["']?\s*(?:https?:)?//""")


def count_remote_images(markup: str) -> int:
    """How many images would load from the network: for the "images are hidden" bar, without
    cleaning the whole document a second time (the frame does that)."""
    return len(_REMOTE_IMG.findall(markup))


def plain_to_html(text: str) -> str:
    """Escape plain text and make http(s)/mailto links clickable (opening in a new tab)."""
    out = []
    pos = 0
    for m in _URL.finditer(text):
        out.append(escape(text[pos : m.start()]))
        url = m.group(1)
        href = "http://" + url if url.lower().startswith("www.") else url
        out.append(
            f'<a href="{escape(href)}" target="_blank" rel="noopener noreferrer">{escape(url)}</a>'
        )
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


@dataclass
class SanitizedHtml:
    html: str
    blocked_images: int
    css: str = ""


def bound_depth(markup: str, max_depth: int = MAX_DEPTH) -> str:
    """Drop the tags nested deeper than ``max_depth`` (keeping their text), in one linear pass.
    Not a parser: a rough count of open elements that is only ever too high (implicitly closed
    elements stay counted), which costs some formatting of odd mail, never safety: nh3 parses
    and cleans the result."""
    names: list[str] = []
    keeps: list[bool] = []
    out: list[str] = []
    pos = 0
    depth = 0
    for m in _TAG.finditer(markup):
        closing, name = m.group(1, 2)
        name = name.lower()
        if not closing:
            if name in VOID or m.group(3).endswith("/"):
                continue
            names.append(name)
            if depth < max_depth:
                keeps.append(True)
                depth += 1
                continue
            keeps.append(False)
        else:
            if names and names[-1] == name:
                found = len(names) - 1
            else:
                found = -1
                for i in range(len(names) - 2, max(-1, len(names) - 1 - _CLOSE_SEARCH), -1):
                    if names[i] == name:
                        found = i
                        break
                if found < 0:
                    continue
            kept = keeps[found]
            depth -= sum(keeps[found:])
            del names[found:], keeps[found:]
            if kept:
                continue
        out.append(markup[pos : m.start()])
        pos = m.end()
    if not out:
        return markup
    out.append(markup[pos:])
    return "".join(out)


def sanitize_html(
    markup: str, raw: bytes, structure: dict, *, allow_remote: bool = False
) -> SanitizedHtml:
    """Clean mail HTML for the body frame. Remote images are dropped (and counted) unless
    ``allow_remote``; ``cid:`` images become ``data:`` URLs of the matching parts."""
    blocked = 0
    markup, css = mailcss.extract_style_blocks(markup)
    markup = bound_depth(markup)

    def attribute_filter(element: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if attribute in ("href", "src") and not _SCHEME.match(value):
            # A relative URL would resolve against the webmail's own origin ("/logout/...");
            # an in-page anchor is harmless.
            return value if attribute == "href" and value.strip().startswith("#") else None
        if element == "img" and attribute == "src":
            low = value.strip().lower()
            if low.startswith("cid:"):
                return value
            if not allow_remote:
                blocked += 1
                return None
        if attribute in ("background",):
            return None
        if attribute == "style" and _ACTIVE_CSS.search(value):
            return None
        return value

    clean = nh3.clean(
        markup,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        attribute_filter=attribute_filter,
        filter_style_properties=STYLE_PROPERTIES,
        strip_comments=True,
    )
    images = _inline_images(raw, structure)

    def replace_cid(m: re.Match) -> str:
        cid = _html_unescape_attr(m.group(1))
        data_url = images.get(cid)
        return f'src="{data_url}"' if data_url else 'alt=""'

    clean = _CID_SRC.sub(replace_cid, clean)
    sheet = mailcss.sanitize_css(css, SHEET_PROPERTIES) if css.strip() else ""
    return SanitizedHtml(clean, blocked, sheet)


def _html_unescape_attr(value: str) -> str:
    import html

    return html.unescape(value)


def _inline_images(raw: bytes, structure: dict) -> dict[str, str]:
    images = {}
    for _section, part in iter_sections(structure):
        cid = _content_id(part)
        if not cid or part["type"] != "image":
            continue
        ctype = safe_content_type(part)
        if ctype not in ("image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"):
            continue
        if part["size"] > MAX_INLINE_IMAGE * 4 // 3 + 1024:
            continue
        data = base64.b64encode(decode_part_body(raw, part)).decode("ascii")
        images[cid] = f"data:{ctype};base64,{data}"
    return images


def frame_document(body_html: str, css: str = "") -> str:
    """The complete document served to the sandboxed frame; ``css`` is the mail's own style
    sheet, already sanitised (it never contains ``<``), after ours so it can restyle the
    message but nothing outside the frame."""
    sheet = f"<style>{css}</style>" if css and "<" not in css else ""
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
        '<meta name="referrer" content="no-referrer">'
        "<style>body{font:15px/1.5 system-ui,sans-serif;margin:16px;color:#1d2430;"
        "background:#fff;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
        "pre{white-space:pre-wrap}table{max-width:100%}</style>"
        f"{sheet}</head><body>{body_html}</body></html>"
    )


@dataclass
class Rendered:
    """What the reading pane shows: plain text (already escaped HTML) or an HTML body for the
    frame (``has_html``), and how many remote images were held back."""

    text_html: str = ""
    has_html: bool = False
    blocked_images: int = 0


def render_body(raw: bytes, structure: dict, *, allow_remote: bool = False) -> Rendered:
    html_part, plain = body_parts(structure)
    if html_part is not None:
        if allow_remote:
            return Rendered(has_html=True)
        markup = part_text(raw, _limited(html_part))
        return Rendered(has_html=True, blocked_images=count_remote_images(markup))
    if plain is not None:
        return Rendered(text_html=plain_to_html(part_text(raw, _limited(plain))))
    return Rendered()


def _body_and_css(raw: bytes, structure: dict, *, allow_remote: bool) -> tuple[str, str]:
    """The sanitised HTML body (or the plain text in ``<pre>``) and its sanitised CSS."""
    html_part, plain = body_parts(structure)
    if html_part is not None:
        markup = part_text(raw, _limited(html_part))
        sanitized = sanitize_html(markup, raw, structure, allow_remote=allow_remote)
        return sanitized.html, sanitized.css
    if plain is not None:
        return "<pre>" + plain_to_html(part_text(raw, _limited(plain))) + "</pre>", ""
    return "", ""


def body_fragment(raw: bytes, structure: dict, *, allow_remote: bool = False) -> str:
    """The sanitised HTML body, or the plain text in ``<pre>`` (the print view)."""
    return _body_and_css(raw, structure, allow_remote=allow_remote)[0]


def frame_html(raw: bytes, structure: dict, *, allow_remote: bool = False) -> str:
    """The sanitised HTML body (or the plain text) as the frame's document, with its CSS."""
    body, css = _body_and_css(raw, structure, allow_remote=allow_remote)
    return frame_document(body, css)


def get_part(structure: dict, section_text: str) -> dict | None:
    section = parse_section(section_text)
    if section is None:
        return None
    part = find_part(structure, section)
    if part is None or part["type"] == "multipart":
        return None
    return part


def part_bytes(raw: bytes, part: dict) -> bytes:
    """A part's decoded content; an attached message is given as its raw bytes (.eml)."""
    if part["type"] == "message":
        return raw[part["body_start"] : part["body_end"]]
    return decode_part_body(raw, part)
