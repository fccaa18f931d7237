"""`Relay`, the one service object, and `Relay.run`, the one pipeline every request goes through
(`relay.service`); `Run`, one request on its way (`relay.run`); the Python API's question (`relay.ask`);
embeddings on the same road (`relay.embed`)."""

from .embed import EmbeddingOutcome
from .pipeline import RelayEvent
from .run import Run
from .service import Relay

__all__ = ["EmbeddingOutcome", "Relay", "RelayEvent", "Run"]
