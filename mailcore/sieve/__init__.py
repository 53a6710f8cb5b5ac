"""Sieve: the RFC 5228 interpreter and its extensions (grammar, checks, matching, actions)."""
