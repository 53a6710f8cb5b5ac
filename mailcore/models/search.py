"""The full-text index: one document per stored raw message (blob), shared by every folder and
mailbox holding it, so moves and copies never touch the index. Access is always narrowed by
joining the mailbox's Message rows; the document itself holds no owner.

The index proper lives beside this table and is created by the migration: an FTS5 external
content table kept in step by triggers on SQLite, a generated ``tsvector`` column with a GIN
index on PostgreSQL (see ``mailcore.services.search``)."""

from django.db import models

from mailcore.models.message import Blob


class SearchDocument(models.Model):
    blob = models.OneToOneField(Blob, on_delete=models.CASCADE, related_name="search_document")
    from_text = models.TextField(blank=True)
    to_text = models.TextField(blank=True)
    subject = models.TextField(blank=True)
    body = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"search document of {self.blob_id[:12]}"
