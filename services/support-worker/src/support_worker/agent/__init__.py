"""The support agent (domain code: never imports inngest).

`build_agent()` + `run_config()` build the agent and its run configuration; `run_agent()` and
`resume_agent()` run it and resume a paused (serialized) run after refund decisions.
"""

from .offline_model import OFFLINE_MODEL_NAME, OfflineSupportModel
from .redaction import redact
from .runner import (
    AgentOutcome,
    EmailForAgent,
    ModelConfig,
    RefundDecision,
    RefundIntent,
    build_agent,
    build_model,
    compose_input,
    resume_agent,
    run_agent,
    run_config,
)
from .tools import (
    REFUND_ISSUED_PREFIX,
    CustomerProfile,
    OrderSummary,
    SimilarCase,
    SupportBackend,
    ToolRecorder,
    build_tools,
)

__all__ = [
    "OFFLINE_MODEL_NAME",
    "REFUND_ISSUED_PREFIX",
    "AgentOutcome",
    "CustomerProfile",
    "EmailForAgent",
    "ModelConfig",
    "OfflineSupportModel",
    "OrderSummary",
    "RefundDecision",
    "RefundIntent",
    "SimilarCase",
    "SupportBackend",
    "ToolRecorder",
    "build_agent",
    "build_model",
    "build_tools",
    "compose_input",
    "redact",
    "resume_agent",
    "run_agent",
    "run_config",
]
