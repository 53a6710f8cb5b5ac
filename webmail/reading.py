"""Showing a stored message safely: choosing the body part, plain text with clickable links,
HTML sanitised with nh3 for a sandboxed iframe, and the list of attachments with their IMAP
section numbers (RFC 3501 §6.4.5), from the cached body structure and the stored bytes.

Mail HTML only ever leaves this module as the document of the sandboxed body frame: nh3 keeps a
small allow-list of tags and attributes (no script, style, SVG, MathML, forms, frames, event
handlers, base or meta) and only the http, https, mailto and cid URL schemes. Remote images are
removed unless allowed; ``cid:`` images (RFC 2392) become ``data:`` URLs of their parts, so
the frame needs no cookies and no network."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import nh3
from django.utils.html import escape

from mailcore.mime.parse import decode_part_body, part_filename, part_text
from mailcore.mime.structure import find_part

# Bounded work: a message body larger than this is cut for display (the raw source and the
# attachment download still give everything).
MAX_DISPLAY_BYTES = 2 * 1024 * 1024
MAX_INLINE_IMAGE = 5 * 1024 * 1024
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
           "nowrap", "start", "type", "span", "abbr", "scope", "summary", "datetime", "cite"}
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


def attachments(structure: dict) -> list[PartInfo]:
    """Parts a person would call attachments: everything that is not the displayed text or a
    container, including inline images (flagged ``inline``) and attached messages (not their
    insides)."""
    result = []
    skip_prefixes: list[list[int]] = []
    for section, part in iter_sections(structure):
        if any(section[: len(p)] == p for p in skip_prefixes):
            continue
        if part["type"] == "multipart" or not _is_attachment(part, False):
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
                size=part["size"],
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
    if part["body_end"] - part["body_start"] > MAX_DISPLAY_BYTES:
        return dict(part, body_end=part["body_start"] + MAX_DISPLAY_BYTES)
    return part


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


def sanitize_html(
    markup: str, raw: bytes, structure: dict, *, allow_remote: bool = False
) -> SanitizedHtml:
    """Clean mail HTML for the body frame. Remote images are dropped (and counted) unless
    ``allow_remote``; ``cid:`` images become ``data:`` URLs of the matching parts."""
    blocked = 0

    def attribute_filter(element: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
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
    return SanitizedHtml(clean, blocked)


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


def frame_document(body_html: str) -> str:
    """The complete document served to the sandboxed frame."""
    return (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
        '<meta name="referrer" content="no-referrer">'
        "<style>body{font:15px/1.5 system-ui,sans-serif;margin:16px;color:#1d2430;"
        "background:#fff;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
        "pre{white-space:pre-wrap}table{max-width:100%}</style>"
        f"</head><body>{body_html}</body></html>"
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
        markup = part_text(raw, _limited(html_part))
        sanitized = sanitize_html(markup, raw, structure, allow_remote=allow_remote)
        return Rendered(has_html=True, blocked_images=sanitized.blocked_images)
    if plain is not None:
        return Rendered(text_html=plain_to_html(part_text(raw, _limited(plain))))
    return Rendered()


def body_fragment(raw: bytes, structure: dict, *, allow_remote: bool = False) -> str:
    """The sanitised HTML body, or the plain text in ``<pre>`` (the frame and the print view)."""
    html_part, plain = body_parts(structure)
    if html_part is not None:
        markup = part_text(raw, _limited(html_part))
        return sanitize_html(markup, raw, structure, allow_remote=allow_remote).html
    if plain is not None:
        return "<pre>" + plain_to_html(part_text(raw, _limited(plain))) + "</pre>"
    return ""


def frame_html(raw: bytes, structure: dict, *, allow_remote: bool = False) -> str:
    """The sanitised HTML body (or the plain text) as the frame's document."""
    return frame_document(body_fragment(raw, structure, allow_remote=allow_remote))


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
