"""The one mailbox service layer: the only code that changes mail data. Every door (SMTP, IMAP,
POP3, webmail, admin, commands, tasks) calls these functions."""
