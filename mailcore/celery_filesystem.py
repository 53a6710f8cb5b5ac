"""The embedded Celery broker: kombu's filesystem transport, with messages published atomically.

kombu 5.7's filesystem transport creates a message file under its final name and only then
writes it. A worker polling the folder can move and read the file in between, get an empty
payload and stop with "Unrecoverable error: JSONDecodeError": the task is lost with it (the
outbound sweep recovers the mail later) and no task runs until the worker is restarted. Seen
under the relay benchmark's bursts (bench/relay.py). Here a message is written under a name
the consumer ignores (it takes only ``*.<queue>.msg``) and renamed into place, which is atomic
on POSIX, so a consumer only ever sees whole messages. A payload that still cannot be read
(written by another publisher) is logged and skipped instead of stopping the worker.

``webmail/settings.py`` selects this transport (``CELERY_BROKER_TRANSPORT``) in embedded mode.
"""

import logging
import os
import uuid
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

logger = logging.getLogger("correio.broker")


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put ``payload`` on ``queue``: write a hidden file, then rename it into place."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # partition(".") of ".<hex>.partial" is never "<queue>.msg": consumers skip it.
        partial = os.path.join(self.data_folder_out, f".{uuid.uuid4().hex}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            try:
                os.unlink(partial)
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        try:
            return super()._get(queue)
        except ValueError:
            logger.error("skipped an unreadable message in queue %s (the outbound sweep "
                         "recovers its mail)", queue, exc_info=True)
            raise Empty() from None


class Transport(filesystem.Transport):
    Channel = Channel
