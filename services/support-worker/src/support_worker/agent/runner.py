"""Build the agent, configure its run, run it, pause on refund approvals and resume.

`build_agent()` and `run_config()` are deliberately separate: a paused run is serialized
(`RunState.to_string()`), stored, and later resumed against a freshly built agent with the same
tool shape and the same run configuration (the model lives in the run configuration, not in the
agent, so the serialized state never carries a client).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agents import Agent, RunConfig, Runner, RunResult, RunState, Tool
from agents.models.interface import Model
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from openai import AsyncOpenAI
from pydantic import BaseModel, Field

from .offline_model import OfflineSupportModel
from .tools import REQUEST_REFUND, SupportBackend, ToolRecorder, build_tools

AGENT_NAME = "nerve-support-agent"
MAX_TURNS = 12

INSTRUCTIONS = """You are Nerve's customer-support agent. Write a warm, concise reply to the
customer's email. Always start by looking up the customer and their orders. Use
find_similar_cases to learn how similar issues were resolved. If the customer asks for a refund
of a specific order they own, call request_refund (a human or the risk policy approves it; you
will see the outcome). Escalate to a senior reviewer for legal threats, chargebacks or anything you
cannot resolve. Never promise a refund before request_refund reports it was issued. Reply with the
email text only."""


@dataclass(frozen=True)
class ModelConfig:
    """Which model runs the agent: OpenAI (any OpenAI-compatible server) or the offline model."""

    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    tracing_enabled: bool = False

    @property
    def online(self) -> bool:
        return bool(self.openai_api_key)

    @property
    def model_name(self) -> str:
        from .offline_model import OFFLINE_MODEL_NAME

        return self.openai_model if self.online else OFFLINE_MODEL_NAME


def build_model(config: ModelConfig) -> Model:
    """OpenAI Chat Completions when a key is set (the most widely supported API shape among
    OpenAI-compatible servers), otherwise the deterministic offline model."""
    if config.online:
        client = AsyncOpenAI(api_key=config.openai_api_key, base_url=config.openai_base_url)
        return OpenAIChatCompletionsModel(model=config.openai_model, openai_client=client)
    return OfflineSupportModel()


def build_agent(backend: SupportBackend, recorder: ToolRecorder) -> Agent[Any]:
    """The support agent: instructions and the four tools. No model here (see run_config)."""
    tools: list[Tool] = list(build_tools(backend, recorder))
    return Agent(name=AGENT_NAME, instructions=INSTRUCTIONS, tools=tools)


def run_config(config: ModelConfig) -> RunConfig:
    """The run configuration passed to every run and every resume of the agent."""
    return RunConfig(
        model=build_model(config),
        tracing_disabled=not config.tracing_enabled,
        workflow_name="nerve-support",
    )


class RefundIntent(BaseModel):
    """A paused `request_refund` call awaiting a decision."""

    call_id: str
    order_id: str
    reason: str = ""
    amount_cents: int | None = None


class RefundDecision(BaseModel):
    """The gate's verdict on one paused refund call."""

    approved: bool
    message: str = ""


class AgentOutcome(BaseModel):
    """One run segment's result. `state` (the serialized RunState) holds the email text: store it,
    never return it from a step."""

    status: Literal["done", "needs_approval"]
    reply: str | None = None
    pending_refunds: list[RefundIntent] = Field(default_factory=list)
    escalation_reasons: list[str] = Field(default_factory=list)
    state: str | None = None


@dataclass(frozen=True)
class EmailForAgent:
    customer_id: str
    ticket_id: str
    subject: str
    body: str
    thread: tuple[str, ...] = ()


def compose_input(email: EmailForAgent) -> str:
    """The user message the agent sees: earlier messages of the thread, then the new email."""
    lines = [f"Customer {email.customer_id}, ticket {email.ticket_id}."]
    if email.thread:
        lines.append("Earlier messages in this thread:")
        lines.extend(f"- {message}" for message in email.thread)
    lines.append("New email:")
    lines.append(f"Subject: {email.subject}")
    lines.append("")
    lines.append(email.body)
    return "\n".join(lines)


async def run_agent(agent_input: str, backend: SupportBackend, config: ModelConfig) -> AgentOutcome:
    """Run the agent on a new email until it replies or pauses on a refund approval."""
    recorder = ToolRecorder()
    agent = build_agent(backend, recorder)
    result = await Runner.run(
        agent, agent_input, run_config=run_config(config), max_turns=MAX_TURNS
    )
    return _outcome(result, recorder)


async def resume_agent(
    state: str,
    decisions: Mapping[str, RefundDecision],
    backend: SupportBackend,
    config: ModelConfig,
) -> AgentOutcome:
    """Rehydrate a paused run, apply a decision to every pending refund call, and continue.

    Every interruption must have a decision (keyed by call id); a missing one is a bug upstream.
    """
    recorder = ToolRecorder()
    agent = build_agent(backend, recorder)
    run_state = await RunState.from_string(agent, state)
    for item in run_state.get_interruptions():
        call_id = _call_id(item.raw_item)
        decision = decisions.get(call_id)
        if decision is None:
            raise ValueError(f"no decision for paused tool call {call_id}")
        if decision.approved:
            run_state.approve(item)
        else:
            run_state.reject(item, rejection_message=decision.message or "Refund declined.")
    result = await Runner.run(agent, run_state, run_config=run_config(config), max_turns=MAX_TURNS)
    return _outcome(result, recorder)


def _outcome(result: RunResult, recorder: ToolRecorder) -> AgentOutcome:
    if result.interruptions:
        pending = []
        for item in result.interruptions:
            if item.tool_name != REQUEST_REFUND:
                raise ValueError(f"unexpected approval request for tool {item.tool_name}")
            arguments = _arguments(item.raw_item)
            pending.append(
                RefundIntent(
                    call_id=_call_id(item.raw_item),
                    order_id=str(arguments.get("order_id", "")),
                    reason=str(arguments.get("reason", ""))[:200],
                    amount_cents=arguments.get("amount_cents"),
                )
            )
        return AgentOutcome(
            status="needs_approval",
            pending_refunds=pending,
            escalation_reasons=list(recorder.escalation_reasons),
            state=result.to_state().to_string(),
        )
    return AgentOutcome(
        status="done",
        reply=str(result.final_output or "").strip(),
        escalation_reasons=list(recorder.escalation_reasons),
    )


def _raw_get(raw: Any, key: str) -> Any:
    if isinstance(raw, dict):
        return raw.get(key)
    return getattr(raw, key, None)


def _call_id(raw: Any) -> str:
    return str(_raw_get(raw, "call_id") or _raw_get(raw, "id") or "")


def _arguments(raw: Any) -> dict[str, Any]:
    text = _raw_get(raw, "arguments") or "{}"
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
