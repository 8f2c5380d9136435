"""A deterministic offline model: a real `agents.Model` implementation for running without an
OpenAI key (`make dev` offline, tests).

It is not a language model. It reads the customer's email from the run input and follows a fixed
script through the same tool-calling protocol a real model uses:

1. call `look_up_customer` (every conversation starts there);
2. then decide from the email text:
   - legal threats, chargebacks, angry demands for a manager -> `escalate_to_senior_reviewer`;
   - "refund" and an order id the customer owns (e.g. `ord_1001`) -> `request_refund`, which
     pauses the run for approval;
   - otherwise -> `find_similar_cases` with the subject line;
3. after the last tool result, write a reply that explains the outcome (refund issued, refund
   declined with the reviewer's reason, escalated, or a general acknowledgement).

Call ids are derived from the position in the conversation, so the same email always yields the
same calls (stable across a serialized pause and resume).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from agents.agent_output import AgentOutputSchemaBase
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.model_settings import ModelSettings
from agents.models.interface import Model, ModelTracing
from agents.tool import Tool
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam

from .tools import (
    ESCALATE,
    FIND_SIMILAR_CASES,
    LOOK_UP_CUSTOMER,
    REFUND_ISSUED_PREFIX,
    REQUEST_REFUND,
)

OFFLINE_MODEL_NAME = "nerve-offline-v1"

_ESCALATION_WORDS = re.compile(
    r"\b(lawyer|legal action|sue|chargeback|dispute|unacceptable|furious|manager|escalate)\b",
    re.IGNORECASE,
)
_REFUND_WORDS = re.compile(r"\b(refund|money back|reimburse)", re.IGNORECASE)
_ORDER_ID = re.compile(r"\bord_[A-Za-z0-9]+\b")
_SUBJECT = re.compile(r"^Subject:\s*(.*)$", re.MULTILINE)


def _item_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    dump = getattr(item, "model_dump", None)
    return dump() if callable(dump) else {}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            data = _item_dict(part)
            text = data.get("text")
            if isinstance(text, str):
                parts.append(text)
        return "\n".join(parts)
    return ""


class _Transcript:
    """What the model can see: the email and the tool calls/results so far."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.email = "\n".join(
            _text_of(item.get("content")) for item in items if item.get("role") == "user"
        )
        self.calls: list[dict[str, Any]] = [
            item for item in items if item.get("type") == "function_call"
        ]
        outputs = {
            str(item.get("call_id")): item.get("output")
            for item in items
            if item.get("type") == "function_call_output"
        }
        self.results: dict[str, str] = {}
        for call in self.calls:
            output = outputs.get(str(call.get("call_id")))
            if output is not None:
                self.results[str(call.get("name"))] = _text_of(output)

    @property
    def subject(self) -> str:
        match = _SUBJECT.search(self.email)
        return match.group(1).strip() if match else self.email[:80]


class OfflineSupportModel(Model):
    """Deterministic scripted support model (see the module docstring)."""

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
        **_: Any,
    ) -> ModelResponse:
        items = (
            [{"role": "user", "content": input}]
            if isinstance(input, str)
            else [_item_dict(item) for item in input]
        )
        transcript = _Transcript(items)
        turn = len(transcript.calls)
        decision = _decide(transcript)
        if isinstance(decision, str):
            output: Any = ResponseOutputMessage(
                id=f"msg_offline_{turn}",
                content=[ResponseOutputText(text=decision, type="output_text", annotations=[])],
                role="assistant",
                status="completed",
                type="message",
            )
        else:
            name, arguments = decision
            output = ResponseFunctionToolCall(
                id=f"fc_offline_{turn}",
                call_id=f"call_{name}_{turn}",
                name=name,
                arguments=json.dumps(arguments),
                type="function_call",
                status="completed",
            )
        return ModelResponse(output=[output], usage=Usage(), response_id=None)

    def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: ResponsePromptParam | None,
        **_: Any,
    ) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the offline model does not stream; use Runner.run")


def _decide(transcript: _Transcript) -> str | tuple[str, dict[str, Any]]:
    """The next move: a tool call `(name, arguments)` or the final reply text."""
    results = transcript.results
    if LOOK_UP_CUSTOMER not in results:
        return LOOK_UP_CUSTOMER, {}
    profile = _json_object(results[LOOK_UP_CUSTOMER])
    name = str(profile.get("name") or "there").split(" ")[0]
    owned = {str(order.get("order_id")) for order in profile.get("orders", [])}

    if ESCALATE in results:
        return (
            f"Hi {name},\n\nThank you for your message. I have passed it to a senior member of "
            "our team, who will review it personally and get back to you shortly.\n\n"
            "Best regards,\nNerve Support"
        )
    if REQUEST_REFUND in results:
        outcome = results[REQUEST_REFUND]
        if outcome.startswith(REFUND_ISSUED_PREFIX):
            detail = outcome[len(REFUND_ISSUED_PREFIX) :].strip(" :")
            return (
                f"Hi {name},\n\nGood news: your refund has been issued ({detail}). It should "
                "appear on your statement within 5-10 business days.\n\n"
                "Best regards,\nNerve Support"
            )
        return (
            f"Hi {name},\n\nThank you for your patience. We reviewed your refund request and "
            f"could not approve it at this time: {outcome}\n\nIf you have more details, reply to "
            "this email and we will take another look.\n\nBest regards,\nNerve Support"
        )
    if FIND_SIMILAR_CASES in results:
        return (
            f'Hi {name},\n\nThank you for reaching out about "{transcript.subject}". We are '
            "looking into it and will follow up with the details shortly.\n\n"
            "Best regards,\nNerve Support"
        )

    if _ESCALATION_WORDS.search(transcript.email):
        return ESCALATE, {"reason": "customer is upset or raises a legal/chargeback threat"}
    if _REFUND_WORDS.search(transcript.email):
        named = [order for order in _ORDER_ID.findall(transcript.email) if order in owned]
        if named:
            return REQUEST_REFUND, {
                "order_id": named[0],
                "reason": "customer asked for a refund by email",
                "amount_cents": None,
            }
        return (
            f"Hi {name},\n\nI am sorry to hear that. Could you tell me the order number you "
            "would like refunded (it looks like ord_1234)? Then I can take care of it.\n\n"
            "Best regards,\nNerve Support"
        )
    return FIND_SIMILAR_CASES, {"query": transcript.subject}


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
