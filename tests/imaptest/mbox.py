"""The mbox imaptest's stress mode APPENDs from: varied messages (plain, HTML alternatives,
attachments, 8-bit text, threads), fixed content so that every run is the same. Used by the
stress test and by bench/side_by_side.py; imports nothing from Django."""

from tests.factories import make_message


def stress_mbox() -> bytes:
    """An mbox of varied messages (plain, multipart, 8-bit, long headers), fixed content."""
    parts = []
    for i in range(40):
        body = f"line {i} of a message body, ünïcode\n" * (1 + (i * 37) % 200)
        raw = make_message(
            subject=f"stress {i} " + "x" * (i % 7) * 20, body=body,
            html=f"<p>message <b>{i}</b></p>" if i % 3 == 0 else None,
            attachments=[(f"file{i}.bin", bytes(range(256)) * (i + 1), "application/octet-stream")]
            if i % 4 == 0 else (),
            message_id=f"<stress-{i}@example.org>",
            in_reply_to=f"<stress-{i - 1}@example.org>" if i % 5 else None,
        )
        parts.append(b"From sender@example.org Mon Dec  7 10:00:00 2026\n"
                     + raw.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ") + b"\n")
    return b"".join(parts)
