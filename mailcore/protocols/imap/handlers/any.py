"""Commands valid in any state (RFC 3501 §6.1): CAPABILITY, NOOP, LOGOUT, and ID (RFC 2971)."""

from __future__ import annotations

from mailcore.protocols.imap import parser as p
from mailcore.protocols.imap.commands import Session


class AnyState(Session):
    STATES = p.ANY

    async def cmd_CAPABILITY(self, cmd: p.Bare) -> str:
        self.send(f"* CAPABILITY {self.capabilities()}\r\n")
        return "CAPABILITY completed"

    async def cmd_NOOP(self, cmd: p.Bare) -> str:
        await self.send_updates(allow_expunge=True, force=True)
        return "NOOP completed"

    async def cmd_LOGOUT(self, cmd: p.Bare) -> str:
        self.send("* BYE Correio logging out\r\n")
        self.state = p.State.LOGOUT
        return "LOGOUT completed"

    async def cmd_ID(self, cmd: p.Id) -> str:
        self.client_id = cmd.params
        self.send('* ID ("name" "Correio" "vendor" "Correio" "support-url" NIL)\r\n')
        return "ID completed"
