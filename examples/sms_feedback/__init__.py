"""Text callers a questionnaire after an answered service-pool call (examples/sms_feedback).

`SmsFeedback` is the Enreach handler `receiver serve` runs (receiver.toml names it);
`SmsGateway` is the Protocol a gateway client implements, `HttpSmsGateway` the one shipped.
`python -m examples.sms_feedback` runs it all on this machine (README.md).
"""

from examples.sms_feedback.gateway import (
    GatewayRefused,
    GatewayUnavailable,
    HttpSmsGateway,
    SmsGateway,
)
from examples.sms_feedback.handler import SmsFeedback
from examples.sms_feedback.settings import FeedbackSettings

__all__ = [
    "FeedbackSettings",
    "GatewayRefused",
    "GatewayUnavailable",
    "HttpSmsGateway",
    "SmsFeedback",
    "SmsGateway",
]
