"""Schemathesis over the app's own OpenAPI document, in-process (ASGI), with a valid admin key:
for every operation, generated requests (valid and invalid) never get a 5xx, and every response
matches what the document says about it (status-specific schema and content type).

Bounded: a fixed number of examples per operation and mode, so the run stays well under a minute.
Streaming answers are read up to schemathesis' event limit; their frames have no schema to check.
(The operations are walked by hand, one subtest each: schemathesis' lazy pytest fixture loader does
not work with pytest 9.)"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from llmrelay.api import create_app
from llmrelay.api.server import prepare_database

EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 20}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def settings_overrides():
    return {"rate_rpm": 0, "rate_tpm": 0, "max_retries": 0, "request_deadline": 10}


@pytest.fixture
def admin_key(settings) -> str:
    key = prepare_database(settings).admin_key  # what `llmrelay serve` does on first start
    assert key is not None
    return key


@pytest.fixture
def api_schema(settings, admin_key):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))  # starts the app's lifespan
    yield schema
    shutdown_lifespans()


def test_no_server_error_and_no_response_breaks_the_schema(api_schema, admin_key, subtests):
    headers = {"authorization": f"Bearer {admin_key}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /api/ai/agents", "POST /api/ai/config", "GET /api/ai/usage", "POST /v1/chat/completions",
            "GET /v1/models"} <= labels, labels
    for operation in operations:
        for mode, examples in EXAMPLES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                                 suppress_health_check=list(HealthCheck))
            def check(case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            with subtests.test(msg=f"{operation.label} ({mode.value})"):
                try:
                    check()
                except Unsatisfiable:  # no invalid request exists (an operation without parameters or body)
                    assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid request could be made"
