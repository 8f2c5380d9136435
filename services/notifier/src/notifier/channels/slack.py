"""Slack incoming webhooks: one URL per destination (a Slack channel), JSON `{"text", "blocks"}`.

Slack answers 200 `ok`; 4xx bodies name the problem (`invalid_payload`, `no_service`,
`channel_not_found`, `action_prohibited`...) and are permanent, except 429 (rate limited, with
`Retry-After`), which is transient like 5xx and network failures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .base import (
    ChannelName,
    DeliveryResult,
    OutboundMessage,
    PermanentDeliveryError,
    TransientDeliveryError,
)


def slack_payload(message: OutboundMessage) -> dict[str, Any]:
    """Block Kit message: the text as a section, the links as buttons; `text` is the fallback."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{message.subject}*\n{message.text}"},
        }
    ]
    if message.links:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": link.label},
                        "url": link.url,
                        "action_id": f"link-{index}",
                    }
                    for index, link in enumerate(message.links)
                ],
            }
        )
    return {"text": f"{message.subject}\n{message.render_text()}", "blocks": blocks}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class SlackWebhookChannel:
    name: ChannelName = "slack"

    def __init__(self, http: httpx.AsyncClient, webhook_urls: Mapping[str, str]) -> None:
        self._http = http
        self._urls = dict(webhook_urls)

    def handles(self, destination: str) -> bool:
        return destination in self._urls

    async def send(self, message: OutboundMessage) -> DeliveryResult:
        url = self._urls.get(message.destination)
        if url is None:
            raise PermanentDeliveryError(
                f"no Slack webhook configured for destination {message.destination!r}"
            )
        try:
            response = await self._http.post(url, json=slack_payload(message), timeout=10.0)
        except httpx.HTTPError as error:
            raise TransientDeliveryError(
                f"Slack webhook unreachable: {type(error).__name__}"
            ) from error
        body = response.text[:200]
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientDeliveryError(
                f"Slack answered {response.status_code}: {body}",
                retry_after_seconds=_retry_after(response),
            )
        if response.status_code >= 400:
            raise PermanentDeliveryError(
                f"Slack refused the message ({response.status_code}): {body}"
            )
        return DeliveryResult(
            channel="slack",
            destination=message.destination,
            detail=f"slack {response.status_code} {body}",
        )
