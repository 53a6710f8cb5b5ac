"""The aiosmtpd private names our listeners rely on (mailcore/protocols/smtp/aiosmtpd_private.py)
still exist with the signatures we were written against, on a real connection to aiosmtpd's own
server; and the listeners use no private aiosmtpd or stream-reader name that is not listed."""

import ast
import asyncio
import inspect
import re
from pathlib import Path

import aiosmtpd
import pytest
from aiosmtpd.smtp import SMTP

from mailcore.protocols.smtp.aiosmtpd_private import PRIVATE_NAMES, STREAM_READER, names_of
from mailcore.protocols.smtp.aiosmtpd_private import SMTP as SMTP_OWNER

SMTP_SOURCES = Path(__file__).resolve().parents[2] / "mailcore" / "protocols" / "smtp"
OWNERS = {SMTP_OWNER: SMTP, STREAM_READER: asyncio.StreamReader}


def test_the_installed_aiosmtpd_is_within_the_pinned_range():
    major, minor, patch = (int(x) for x in aiosmtpd.__version__.split(".")[:3])
    assert (1, 4, 6) <= (major, minor, patch) < (1, 5, 0)


@pytest.mark.parametrize(
    "entry", [e for e in PRIVATE_NAMES if e.kind in ("method", "coroutine")],
    ids=lambda e: f"{e.owner}.{e.name}",
)
def test_a_private_method_keeps_its_signature(entry):
    method = getattr(OWNERS[entry.owner], entry.name, None)
    assert method is not None, f"{entry.owner}.{entry.name} is gone: {entry.why}"
    assert str(inspect.signature(method)) == entry.signature, (
        f"{entry.owner}.{entry.name} changed signature; we use it because {entry.why}"
    )
    assert inspect.iscoroutinefunction(method) == (entry.kind == "coroutine")


def test_class_attributes_read_at_run_time_are_still_there():
    assert isinstance(SMTP.line_length_limit, int)
    assert isinstance(SMTP.command_size_limits, dict)
    # __init__ must still read line_length_limit to size the reader (our DATA bound).
    assert "limit=self.line_length_limit" in inspect.getsource(SMTP.__init__)


def test_instance_attributes_exist_on_a_live_aiosmtpd_session():
    """A real aiosmtpd server on loopback, a real client socket: after the greeting, every
    listed instance attribute is set on the session and on its stream reader."""
    sessions: list[SMTP] = []
    found: dict[str, bool] = {}

    class Handler:
        pass

    async def scenario():
        loop = asyncio.get_running_loop()

        def factory():
            protocol = SMTP(Handler(), loop=loop)
            sessions.append(protocol)
            return protocol

        server = await loop.create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        greeting = await reader.readline()
        assert greeting.startswith(b"220 ")
        session = sessions[0]
        for entry in PRIVATE_NAMES:
            if entry.kind != "attribute":
                continue
            target = session if entry.owner == SMTP_OWNER else session._reader
            found[f"{entry.owner}.{entry.name}"] = hasattr(target, entry.name)
        assert isinstance(session._reader._buffer, bytearray)
        writer.write(b"QUIT\r\n")
        await writer.drain()
        await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(asyncio.wait_for(scenario(), 10))
    missing = sorted(name for name, present in found.items() if not present)
    assert not missing, f"aiosmtpd no longer sets {missing}"


def _private_names_of_the_libraries() -> dict[str, set[str]]:
    loop = asyncio.new_event_loop()
    try:
        instance = SMTP(object(), loop=loop)
        reader = asyncio.StreamReader(loop=loop)
    finally:
        loop.close()
    smtp = {n for n in (*dir(SMTP), *vars(instance)) if n.startswith("_")
            and not n.startswith("__")} | {"_reader", "_writer"}
    stream = {n for n in (*dir(asyncio.StreamReader), *vars(reader)) if n.startswith("_")
              and not n.startswith("__")}
    return {SMTP_OWNER: smtp, STREAM_READER: stream}


def _smtp_subclass_sources() -> list[str]:
    """The source of every class in the SMTP listener package that derives from aiosmtpd's
    SMTP (directly or through our own subclasses), plus the modules' functions."""
    classes = {"SMTP"}
    found: list[str] = []
    for _ in range(3):  # subclasses of subclasses
        for path in sorted(SMTP_SOURCES.glob("*.py")):
            text = path.read_text()
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ClassDef) and node.name not in classes and any(
                        isinstance(b, ast.Name) and b.id in classes for b in node.bases):
                    classes.add(node.name)
    for path in sorted(SMTP_SOURCES.glob("*.py")):
        text = path.read_text()
        for node in ast.parse(text).body:
            if isinstance(node, ast.ClassDef) and node.name in classes:
                found.append(ast.get_source_segment(text, node))
    return found


def test_the_listeners_use_no_unlisted_private_name():
    library = _private_names_of_the_libraries()
    used: set[tuple[str, str]] = set()
    for text in _smtp_subclass_sources():
        for name in re.findall(r"\b(?:self\.|def )_(\w+)", text):
            if f"_{name}" in library[SMTP_OWNER]:
                used.add((SMTP_OWNER, f"_{name}"))
        for name in re.findall(r"\breader\._(\w+)", text):
            if f"_{name}" in library[STREAM_READER]:
                used.add((STREAM_READER, f"_{name}"))
    unlisted = sorted(f"{owner}.{name}" for owner, name in used if name not in names_of(owner))
    assert not unlisted, f"list these in aiosmtpd_private.py: {unlisted}"
    listed = {(e.owner, e.name) for e in PRIVATE_NAMES if e.name.startswith("_")}
    unused = sorted(f"{o}.{n}" for o, n in listed - used)
    assert not unused, f"no longer used, remove from aiosmtpd_private.py: {unused}"

