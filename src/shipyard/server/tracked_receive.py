"""The ASGI receive channel, remembering whether the request body has been read.

An answer sent before the whole body was read must close the connection (or read the
rest first): the server cannot tell where the next request would begin.
"""

from __future__ import annotations

from starlette.types import Message, Receive


class TrackedReceive:
    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.body_done = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
        return message
