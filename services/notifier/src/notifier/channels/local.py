"""The embedded default: the notifications row IS the delivery (shown in the dashboard)."""

from __future__ import annotations

from .base import ChannelName, DeliveryResult, OutboundMessage


class LocalSinkChannel:
    name: ChannelName = "local"

    def handles(self, destination: str) -> bool:
        return True

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        return DeliveryResult(channel="local", destination=message.destination, detail="local sink")
