"""Support-worker settings (plain environment variables, no prefix; `.env` is read too)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr
from service_kit.settings import ServiceSettings

from .agent import ModelConfig
from .deps import FlowConfig


class SupportSettings(ServiceSettings):
    service_name: str = "support-worker"
    port: int = Field(default=8001, ge=0, le=65535, description="PORT: HTTP port (8001)")

    openai_api_key: SecretStr | None = Field(
        default=None,
        description="OPENAI_API_KEY: enables the OpenAI model and embeddings; unset = the "
        "deterministic offline model and local embedder",
    )
    openai_base_url: str | None = Field(
        default=None,
        description="OPENAI_BASE_URL: an OpenAI-compatible server (e.g. http://localhost:11434/v1)",
    )
    openai_model: str = Field(
        default="gpt-4o-mini", description="OPENAI_MODEL: chat model for the agent"
    )
    openai_embedding_model: str = Field(
        default="text-embedding-3-small",
        description="OPENAI_EMBEDDING_MODEL: embeddings model for similar cases",
    )
    agent_tracing: bool = Field(
        default=False, description="AGENT_TRACING: send Agents SDK traces to OpenAI"
    )
    stripe_api_key: SecretStr | None = Field(
        default=None,
        description="STRIPE_API_KEY: issue refunds through Stripe; unset = local ledger",
    )
    stripe_api_base: str | None = Field(
        default=None, description="STRIPE_API_BASE: override Stripe's API origin (stripe-mock)"
    )
    support_address: str = Field(
        default="support@nerve.localhost",
        min_length=3,
        max_length=320,
        description="SUPPORT_ADDRESS: the From address recorded on outbound replies",
    )
    refund_auto_approve_max_cents: int = Field(
        default=5_000,
        ge=0,
        description="REFUND_AUTO_APPROVE_MAX_CENTS: refunds up to this amount with low risk are "
        "approved without a human (default 5000 = $50)",
    )
    refund_approval_timeout_seconds: int = Field(
        default=4 * 3600,
        gt=0,
        description="REFUND_APPROVAL_TIMEOUT_SECONDS: how long the refund gate waits (4 h)",
    )
    risk_invoke_timeout_seconds: int = Field(
        default=120,
        gt=0,
        description="RISK_INVOKE_TIMEOUT_SECONDS: timeout of the score-refund-risk invoke",
    )
    escalation_timeout_seconds: int = Field(
        default=4 * 3600,
        gt=0,
        description="ESCALATION_TIMEOUT_SECONDS: how long an escalation waits for a reviewer",
    )
    follow_up_delay_seconds: int = Field(
        default=3 * 86400,
        gt=0,
        description="FOLLOW_UP_DELAY_SECONDS: sleep before closing a replied ticket (3 days)",
    )
    embed_batch_timeout_seconds: int = Field(
        default=30,
        gt=0,
        description="EMBED_BATCH_TIMEOUT_SECONDS: batch window of batch-embed-resolved-tickets",
    )

    def model_config_for_agent(self) -> ModelConfig:
        key = self.openai_api_key.get_secret_value() if self.openai_api_key else None
        return ModelConfig(
            openai_api_key=key or None,
            openai_base_url=self.openai_base_url,
            openai_model=self.openai_model,
            tracing_enabled=self.agent_tracing,
        )

    def flow_config(self) -> FlowConfig:
        return FlowConfig(
            refund_auto_approve_max_cents=self.refund_auto_approve_max_cents,
            refund_approval_timeout=timedelta(seconds=self.refund_approval_timeout_seconds),
            risk_invoke_timeout=timedelta(seconds=self.risk_invoke_timeout_seconds),
            escalation_timeout=timedelta(seconds=self.escalation_timeout_seconds),
            follow_up_delay=timedelta(seconds=self.follow_up_delay_seconds),
            embed_batch_timeout=timedelta(seconds=self.embed_batch_timeout_seconds),
            trace_model_io=self.environment in ("development", "test"),
        )
