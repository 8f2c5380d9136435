"""Nerve's event catalog: typed Inngest events, function references and their JSON Schemas.

Domain code may import the models (they do not import `inngest` until a helper needs it);
`shared_events.steps` and `shared_events.refs.invoke` are for a service's `functions.py`.
"""

from .base import EventDataError, EventModel
from .catalog import (
    CATALOG,
    VARIANTS,
    CustomerEmailReceived,
    CustomerEmailReceivedInline,
    CustomerEscalationRequested,
    CustomerHealthCheckRequested,
    EscalationDecisionMade,
    EscalationReviewRequested,
    InngestFunctionFailed,
    RefundApprovalDecided,
    RefundApprovalDecidedByHand,
    RefundApprovalRequested,
    RiskLevel,
    RiskProfileUpdated,
    StripeChargeDisputeCreated,
    StripeChargeRefunded,
    StripeChargeRefundFailed,
    SupportDraftCreated,
    TicketResolved,
    Tier,
    model_for,
    parse_any,
)
from .refs import (
    FUNCTION_REFS,
    SCORE_REFUND_RISK,
    FunctionRef,
    InvokeInputError,
    InvokeOutputError,
    RefundRiskInput,
    RiskAssessment,
)

__all__ = [
    "CATALOG",
    "FUNCTION_REFS",
    "SCORE_REFUND_RISK",
    "VARIANTS",
    "CustomerEmailReceived",
    "CustomerEmailReceivedInline",
    "CustomerEscalationRequested",
    "CustomerHealthCheckRequested",
    "EscalationDecisionMade",
    "EscalationReviewRequested",
    "EventDataError",
    "EventModel",
    "FunctionRef",
    "InngestFunctionFailed",
    "InvokeInputError",
    "InvokeOutputError",
    "RefundApprovalDecided",
    "RefundApprovalDecidedByHand",
    "RefundApprovalRequested",
    "RefundRiskInput",
    "RiskAssessment",
    "RiskLevel",
    "RiskProfileUpdated",
    "StripeChargeDisputeCreated",
    "StripeChargeRefundFailed",
    "StripeChargeRefunded",
    "SupportDraftCreated",
    "TicketResolved",
    "Tier",
    "model_for",
    "parse_any",
]
