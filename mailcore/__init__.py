"""Correio's mail backend: the store (models), the one mailbox service layer, MIME and protocols."""
