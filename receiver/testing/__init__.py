"""Run a real receiver for end-to-end tests (ours and integrators').

`ReceiverProcess` runs `receiver serve` as a child process; `InProcessReceiver` runs the same
application on uvicorn in a thread of the test process, so a test hands it a handler object
and then looks at that object.
"""

from receiver.testing.inprocess import HandlerFailure, InProcessReceiver
from receiver.testing.process import ReceiverProcess, free_port, throwaway_certificates

__all__ = [
    "HandlerFailure",
    "InProcessReceiver",
    "ReceiverProcess",
    "free_port",
    "throwaway_certificates",
]
