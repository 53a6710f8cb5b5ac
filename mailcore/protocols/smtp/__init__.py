"""SMTP listeners: the MX listener that receives Internet mail for Correio's domains (RFC 5321,
with RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 2920 PIPELINING, RFC 2034
ENHANCEDSTATUSCODES and RFC 3207 STARTTLS), built on aiosmtpd.

- ``policy``: limits and the per-listener policy (AUTH, relay), as plain data.
- ``protocol``: ``CorreioSMTP``, the aiosmtpd ``SMTP`` subclass (commands, limits, DATA reading).
- ``handler``: ``MXHandler``, the RCPT and DATA hooks that call the service layer, and the end
  of DATA every handler shares (``accept_data``).
- ``commit``: the group commit (``BatchCommitter``) that commits many messages in one
  transaction, for the MX (INBOX delivery) and for submission (the outbound queue).
- ``aiosmtpd_private``: the aiosmtpd internals the listeners rely on, each with its reason.
- ``replies``: the one table from domain errors to SMTP replies.
- ``trace``: the Received and Return-Path headers (RFC 5321 §4.4).
- ``submission``: the submission protocol and hooks (RFC 6409, 8314) with AUTH (RFC 4954),
  handing mail to the outbound queue.
- ``server``: ``start_servers(config)`` for the runner: binds the MX and submission listeners.
"""
