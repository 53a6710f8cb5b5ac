"""The text/plain alternative of an HTML message written in the webmail (RFC 2046 §5.1.4: the
parts of multipart/alternative carry the same content): paragraphs and line breaks kept,
lists as "- " and "1. ", quotes as "> " (RFC 3676 §4.5), links as "text <url>", emphasis as
*bold* and _italic_, images as [image: alt]. A bounded single pass of the stdlib HTMLParser;
no Django, never raises."""

from __future__ import annotations

from html.parser import HTMLParser

_BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "tr", "section",
           "article", "header", "footer"}
_SKIP = {"script", "style", "head", "title"}


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.quote = 0
        self.lists: list[list] = []  # [kind, counter]
        self.links: list[str | None] = []
        self.link_text: list[int] = []
        self.skip = 0
        self.pre = 0

    # Lines -------------------------------------------------------------------------------
    def _prefix(self) -> str:
        return "> " * self.quote

    def _newline(self) -> None:
        self.lines.append("")

    def _block(self) -> None:
        """End the current paragraph with an empty line (not twice, not at the start)."""
        if self.lines[-1].strip(" >"):
            self._newline()
        if len(self.lines) > 1 and self.lines[-2].strip(" >"):
            self.lines[-1] = self._prefix().rstrip()
            self._newline()

    def _write(self, text: str) -> None:
        if not self.lines[-1]:
            self.lines[-1] = self._prefix()
        self.lines[-1] += text

    # Parser callbacks --------------------------------------------------------------------
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in _SKIP:
            self.skip += 1
        elif tag == "br":
            self._write("")
            self._newline()
        elif tag in _BLOCKS:
            self._block()
            self.pre += tag == "pre"
        elif tag == "blockquote":
            self._block()
            self.quote += 1
        elif tag in ("ul", "ol"):
            if not self.lists:
                self._block()
            self.lists.append([tag, 0])
        elif tag == "li":
            if self.lines[-1].strip(" >"):
                self._newline()
            kind = self.lists[-1] if self.lists else ["ul", 0]
            kind[1] += 1
            indent = "   " * max(0, len(self.lists) - 1)
            self._write(indent + (f"{kind[1]}. " if kind[0] == "ol" else "- "))
        elif tag in ("b", "strong"):
            self._write("*")
        elif tag in ("i", "em"):
            self._write("_")
        elif tag == "a":
            self.links.append(attrs.get("href"))
            self.link_text.append(len("".join(self.lines)))
        elif tag == "img":
            self._write(f"[image: {attrs.get('alt') or 'picture'}]")
        elif tag == "hr":
            self._block()
            self._write("----")
            self._block()

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS:
            self.pre -= tag == "pre" and self.pre > 0
            self._block()
        elif tag == "blockquote":
            self._block()
            self.quote = max(0, self.quote - 1)
            # The empty line after a quote is outside it.
            if not self.lines[-1].strip(" >"):
                self.lines[-1] = ""
            if len(self.lines) > 1 and not self.lines[-2].strip(" >"):
                self.lines[-2] = self._prefix().rstrip()
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            if not self.lists:
                self._block()
        elif tag in ("b", "strong"):
            self._write("*")
        elif tag in ("i", "em"):
            self._write("_")
        elif tag == "a" and self.links:
            href = self.links.pop()
            start = self.link_text.pop()
            shown = "".join(self.lines)[start:].strip()
            target = (href or "").removeprefix("mailto:")
            if href and target != shown and href != shown:
                self._write(f" <{href}>")

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            for i, piece in enumerate(data.split("\n")):
                if i:
                    self._newline()
                self._write(piece)
            return
        text = " ".join(data.split())
        if not text:
            if data and self.lines[-1] and not self.lines[-1].endswith(" "):
                self._write(" ")
            return
        if data[:1].isspace() and self.lines[-1].strip(" >") and not self.lines[-1].endswith(" "):
            text = " " + text
        if data[-1:].isspace():
            text += " "
        self._write(text)


def html_to_plain(markup: str) -> str:
    """The text a person reading the text/plain part should see."""
    parser = _Text()
    parser.feed(markup)
    parser.close()
    lines = [line.rstrip() for line in parser.lines]
    while lines and not lines[-1].strip(" >"):
        lines.pop()
    while lines and not lines[0].strip(" >"):
        lines.pop(0)
    out: list[str] = []
    for line in lines:
        if not line.strip(" >") and out and not out[-1].strip(" >"):
            continue  # at most one empty line in a row
        out.append(line)
    return "\n".join(out) + "\n" if out else ""
