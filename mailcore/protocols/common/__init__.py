"""What every mail listener shares: its config object, TLS contexts, the one adapter from
asyncio to the synchronous service layer, and the process runner behind runmail/runsmtp/..."""
