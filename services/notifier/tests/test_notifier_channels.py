"""Channels against the local fakes: real HTTP to a Slack-shaped server, real SMTP to aiosmtpd."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from nerve_testing.fakes import FakeSlackWebhook, SmtpSink
from notifier.channels import (
    Link,
    LocalSinkChannel,
    OutboundMessage,
    PermanentDeliveryError,
    SlackWebhookChannel,
    SmtpConfig,
    SmtpEmailChannel,
    TransientDeliveryError,
)

MESSAGE = OutboundMessage(
    dedup_key="test:1",
    kind="approval_request",
    destination="support",
    subject="Refund approval needed",
    text="Refund rr_1 of $120.00 for cust_001 (risk medium).",
    links=(Link("Approve", "http://gw/decisions/t?decision=approve"),),
)


@pytest.fixture
def slack() -> Iterator[FakeSlackWebhook]:
    with FakeSlackWebhook() as fake:
        yield fake


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_slack_posts_text_and_link_buttons(
    slack: FakeSlackWebhook, http: httpx.AsyncClient
) -> None:
    channel = SlackWebhookChannel(http, {"support": slack.url("support")})
    result = await channel.send(MESSAGE)
    assert result.channel == "slack"
    [post] = slack.posts_to("support")
    assert "Refund rr_1" in post.text
    buttons = post.body["blocks"][1]["elements"]
    assert [button["url"] for button in buttons] == ["http://gw/decisions/t?decision=approve"]


@pytest.mark.parametrize(
    ("status", "reply"),
    [
        (400, "invalid_payload"),
        (404, "no_service"),
        (403, "action_prohibited"),
        (410, "channel_is_archived"),
    ],
)
async def test_slack_4xx_is_permanent(
    slack: FakeSlackWebhook, http: httpx.AsyncClient, status: int, reply: str
) -> None:
    slack.fail_next(status, reply)
    channel = SlackWebhookChannel(http, {"support": slack.url("support")})
    with pytest.raises(PermanentDeliveryError, match=reply):
        await channel.send(MESSAGE)
    assert slack.posts == []


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_slack_5xx_is_transient(
    slack: FakeSlackWebhook, http: httpx.AsyncClient, status: int
) -> None:
    slack.fail_next(status)
    channel = SlackWebhookChannel(http, {"support": slack.url("support")})
    with pytest.raises(TransientDeliveryError, match=str(status)):
        await channel.send(MESSAGE)
    # the next attempt goes through
    await channel.send(MESSAGE)
    assert len(slack.posts) == 1


async def test_slack_429_is_transient_with_retry_after(
    slack: FakeSlackWebhook, http: httpx.AsyncClient
) -> None:
    slack.fail_next(429, "rate_limited", headers={"Retry-After": "3"})
    channel = SlackWebhookChannel(http, {"support": slack.url("support")})
    with pytest.raises(TransientDeliveryError) as caught:
        await channel.send(MESSAGE)
    assert caught.value.retry_after_seconds == 3.0


async def test_slack_unreachable_is_transient(http: httpx.AsyncClient) -> None:
    with FakeSlackWebhook() as fake:
        url = fake.url()
    channel = SlackWebhookChannel(http, {"support": url})
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        await channel.send(MESSAGE)


async def test_slack_unknown_destination_is_permanent(http: httpx.AsyncClient) -> None:
    channel = SlackWebhookChannel(http, {})
    with pytest.raises(PermanentDeliveryError, match="no Slack webhook"):
        await channel.send(MESSAGE)


def _email_channel(smtp: SmtpSink) -> SmtpEmailChannel:
    config = SmtpConfig(host=smtp.host, port=smtp.port, sender="nerve@example.com")
    return SmtpEmailChannel(config, {"support": ["lead@example.com"]})


async def test_email_is_delivered_over_smtp(smtp: SmtpSink) -> None:
    result = await _email_channel(smtp).send(MESSAGE)
    assert result.channel == "email"
    [email] = smtp.messages
    assert email.recipients == ("lead@example.com",)
    assert email.subject == "Refund approval needed"
    assert "Approve: http://gw/decisions/t?decision=approve" in email.body
    assert email.message["X-Nerve-Dedup-Key"] == "test:1"


async def test_email_4xx_reply_is_transient_5xx_permanent(smtp: SmtpSink) -> None:
    channel = _email_channel(smtp)
    smtp.fail_next("451 4.3.0 try again later")
    with pytest.raises(TransientDeliveryError, match="451"):
        await channel.send(MESSAGE)
    smtp.fail_next("554 5.7.1 rejected")
    with pytest.raises(PermanentDeliveryError, match="554"):
        await channel.send(MESSAGE)
    assert smtp.messages == []


async def test_email_server_down_is_transient() -> None:
    with SmtpSink() as sink:
        port = sink.port
    config = SmtpConfig(host="127.0.0.1", port=port, sender="n@example.com", timeout_seconds=2)
    channel = SmtpEmailChannel(config, {"support": ["x@example.com"]})
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        await channel.send(MESSAGE)


async def test_local_sink_delivers_nothing_external() -> None:
    result = await LocalSinkChannel().send(MESSAGE)
    assert (result.channel, result.detail) == ("local", "local sink")
