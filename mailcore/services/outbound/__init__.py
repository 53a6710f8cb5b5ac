"""The outbound queue: accept mail for anywhere, deliver it, retry it, bounce it.

One module a role:

- :mod:`.queue`: address checks and ``enqueue_outbound`` (local recipients delivered at once,
  remote ones queued), ``forward_message`` for the MX's aliases, taking back a held message.
- :mod:`.relay`: one worker pass over a batch of queued messages (``relay_batch``), the retry
  schedule, and the RFC 3464 DSNs the results call for.
- :mod:`.admin`: the periodic sweep and cleanup, and the operator's "retry now" / "bounce now".

Tasks are published through :mod:`mailcore.services.dispatch`, by name."""
