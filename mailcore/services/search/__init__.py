"""The webmail's full-text search: Gmail-style queries over a word index of every stored message.

- :mod:`.text`: how text becomes words, the same for documents and queries;
- :mod:`.index`: the index, one document per stored raw message, written at delivery;
- :mod:`.query`: the query language (``from:``, ``is:unread``, ``"phrases"``, ``-negation``...);
- :mod:`.plans`: the SQL that answers a page of matches, per database (SQLite FTS5, PostgreSQL
  full-text search);
- :mod:`.messages`: :func:`~.messages.search_messages`, the entry point of the webmail.

IMAP SEARCH does not use it: RFC 3501 §6.4.4 asks for case-insensitive substring matching,
which a word index cannot answer (a word index finds ``invoice`` for ``inv`` but not ``voice``).
IMAP SEARCH is :mod:`mailcore.services.imap_search`, over the cached columns and the bytes.
"""
