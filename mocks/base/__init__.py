"""What every service mock shares: the request pipeline (rules + journal + effects on the socket),
outbound callbacks with faults, and TLS material."""

from mocks.base.callbacks import CallbackSender, Outbound
from mocks.base.reply import BadRequest, Call, Reply, refusal
from mocks.base.service import MockContext, ServiceMock

__all__ = ["BadRequest", "Call", "CallbackSender", "MockContext", "Outbound", "Reply", "ServiceMock", "refusal"]
