"""`Relay`, the one service object, and `Relay.run`, the one pipeline every request goes through
(`relay.service`); `Run`, one request on its way (`relay.run`); the Python API's question (`relay.ask`)."""

from .run import Run
from .service import Relay, RelayEvent

__all__ = ["Relay", "RelayEvent", "Run"]
