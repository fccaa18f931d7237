"""Protocol-faithful fake provider servers with scriptable faults.

They are part of the product: test your own fallback chains against them
(`llmrelay fake-providers --port N`), or use them from Python::

    from llmrelay.testing import FakeServers, faults
"""

from . import faults
from .faults import Fault
from .runner import FakeServers

__all__ = ["FakeServers", "Fault", "faults"]
