"""Settings of the risk-worker (plain environment variables, no prefix, or `.env`)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from service_kit.settings import ServiceSettings

from .scoring import RiskPolicy


class RiskSettings(ServiceSettings):
    """Environment of the risk-worker: thresholds and weights of the scoring rules."""

    service_name: str = Field(default="risk-worker", description="service name in logs")
    port: int = Field(default=8002, description="HTTP port of `python -m risk_worker`")

    risk_medium_threshold: float = Field(
        default=0.35,
        gt=0,
        lt=1,
        description="RISK_MEDIUM_THRESHOLD: score from which risk is medium",
    )
    risk_high_threshold: float = Field(
        default=0.65, gt=0, le=1, description="RISK_HIGH_THRESHOLD: score from which risk is high"
    )
    risk_over_order_value_points: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="RISK_OVER_ORDER_VALUE_POINTS: refund above the order value",
    )
    risk_points_per_refund: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="RISK_POINTS_PER_REFUND: per refund request in 90 days",
    )
    risk_points_per_dispute: float = Field(
        default=0.3, ge=0, le=1, description="RISK_POINTS_PER_DISPUTE: per dispute in 90 days"
    )
    risk_new_account_days: int = Field(
        default=30, ge=0, description="RISK_NEW_ACCOUNT_DAYS: accounts younger than this are new"
    )
    risk_profile_debounce_seconds: int = Field(
        default=30,
        ge=1,
        description="RISK_PROFILE_DEBOUNCE_SECONDS: quiet period before a customer's profile is "
        "recomputed after refund failures / disputes (a burst recomputes once)",
    )
    risk_profile_debounce_timeout_seconds: int = Field(
        default=300,
        ge=1,
        description="RISK_PROFILE_DEBOUNCE_TIMEOUT_SECONDS: recompute at the latest after this, "
        "even if events keep coming",
    )

    def policy(self) -> RiskPolicy:
        return RiskPolicy(
            medium_threshold=self.risk_medium_threshold,
            high_threshold=self.risk_high_threshold,
            over_order_value_points=self.risk_over_order_value_points,
            points_per_refund=self.risk_points_per_refund,
            points_per_dispute=self.risk_points_per_dispute,
            new_account_days=self.risk_new_account_days,
        )

    @property
    def debounce_period(self) -> timedelta:
        return timedelta(seconds=self.risk_profile_debounce_seconds)

    @property
    def debounce_timeout(self) -> timedelta:
        return timedelta(seconds=self.risk_profile_debounce_timeout_seconds)
