"""The embedded broker (mailcore/celery_filesystem.py): messages appear in the queue folder
whole or not at all, and a message file that cannot be read is skipped without stopping the
consumer (kombu's stock filesystem transport let a worker read a half-written file and die)."""

from pathlib import Path

from django.conf import settings
from kombu import Connection

from mailcore.celery_filesystem import Transport


def connect(folder: Path) -> Connection:
    queue = folder / "queue"
    queue.mkdir(parents=True, exist_ok=True)
    return Connection("filesystem://", transport=Transport, transport_options={
        "data_folder_in": str(queue), "data_folder_out": str(queue),
        "control_folder": str(folder / "control"), "store_processed": False,
        "polling_interval": 0.01})


def test_a_published_message_appears_under_its_final_name_only(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("deliveries")
        queue.put({"ids": [1, 2, 3]})
        files = sorted(p.name for p in (tmp_path / "queue").iterdir())
        assert len(files) == 1 and files[0].endswith(".deliveries.msg")
        message = queue.get(timeout=2)
        assert message.payload == {"ids": [1, 2, 3]}
        message.ack()
        queue.close()
    assert list((tmp_path / "queue").iterdir()) == []


def test_an_unreadable_message_file_is_skipped_and_the_next_one_delivered(tmp_path):
    with connect(tmp_path) as conn:
        queue = conn.SimpleQueue("skipping")  # (kombu remembers a queue's folder per name)
        # What the stock transport leaves visible while it writes: an empty file.
        (tmp_path / "queue" / "1_00000000-0000-0000-0000-000000000000.skipping.msg").touch()
        queue.put({"ids": [7]})
        payloads = []
        for _ in range(3):
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                continue
            payloads.append(message.payload)
            message.ack()
        queue.close()
    assert payloads == [{"ids": [7]}]


def test_the_embedded_broker_uses_the_atomic_transport():
    from webmail.celery import app

    with app.connection_for_write() as conn:
        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            assert isinstance(conn.transport, Transport)
        else:
            assert conn.transport.driver_type == "redis"
