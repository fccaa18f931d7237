"""(being built: issue 11)"""

from __future__ import annotations

from fastapi import APIRouter

from ..errors import OpenAIRoute

router = APIRouter(prefix="/v1", route_class=OpenAIRoute)
