"""Typed references to functions other apps invoke with `step.invoke_by_id`.

A reference names the app and function and the models of its input and output, so the caller and
the callee share one contract and the result is validated where it is used.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .base import describe_validation_error

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


class InvokeInputError(ValueError):
    """An invoked function's input does not fit its model."""


class InvokeOutputError(ValueError):
    """An invoked function returned something that does not fit its output model."""


@dataclass(frozen=True)
class FunctionRef(Generic[In, Out]):
    app_id: str
    function_id: str
    input_model: type[In]
    output_model: type[Out]

    @property
    def composite_id(self) -> str:
        """The engine's function slug: `<app_id>-<function_id>`."""
        return f"{self.app_id}-{self.function_id}"

    def parse_input(self, data: Any) -> In:
        clean = {k: v for k, v in dict(data).items() if k != "_inngest"}
        try:
            return self.input_model.model_validate(clean)
        except ValidationError as error:
            raise InvokeInputError(describe_validation_error(self.composite_id, error)) from error

    def parse_output(self, value: Any) -> Out:
        try:
            return self.output_model.model_validate(value)
        except ValidationError as error:
            message = describe_validation_error(f"{self.composite_id} result", error)
            raise InvokeOutputError(message.replace("data.", "result.")) from error


async def invoke(
    step: Any,
    step_id: str,
    ref: FunctionRef[In, Out],
    payload: In,
    *,
    timeout: datetime.timedelta,
) -> Out:
    """`step.invoke_by_id` with a validated payload and result and a mandatory timeout.

    A malformed result fails the run at once (NonRetriableError): retrying cannot fix it.
    """
    import inngest

    if timeout <= datetime.timedelta(0):
        raise ValueError("an invoke needs a positive timeout")
    result = await step.invoke_by_id(
        step_id,
        app_id=ref.app_id,
        function_id=ref.function_id,
        data=payload.model_dump(mode="json"),
        timeout=timeout,
    )
    try:
        return ref.parse_output(result)
    except InvokeOutputError as error:
        raise inngest.NonRetriableError(str(error)) from error


# -- the references -------------------------------------------------------------------------


class _Contract(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class RefundRiskInput(_Contract):
    """What risk-worker needs to score a refund request."""

    request_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    amount_cents: int = Field(gt=0)
    currency: str = Field(default="usd", min_length=3, max_length=3)
    reason: str = Field(default="", max_length=200)


class RiskAssessment(_Contract):
    """An explainable risk score: 0 (safe) .. 1 (risky), a level and human-readable reasons."""

    score: float = Field(ge=0, le=1)
    level: Literal["low", "medium", "high"]
    reasons: list[str] = Field(default_factory=list)


SCORE_REFUND_RISK: FunctionRef[RefundRiskInput, RiskAssessment] = FunctionRef(
    app_id="risk-worker",
    function_id="score-refund-risk",
    input_model=RefundRiskInput,
    output_model=RiskAssessment,
)

FUNCTION_REFS: dict[str, FunctionRef[Any, Any]] = {
    ref.composite_id: ref for ref in (SCORE_REFUND_RISK,)
}
