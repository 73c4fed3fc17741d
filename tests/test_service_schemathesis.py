"""Schemathesis against the generated OpenAPI: no generated request (as an admin) may cause a 500.

Each operation of ``/openapi.json`` gets a bounded number of generated requests
(derandomized, so CI is repeatable); any 5xx fails the test with the request that caused it.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from service_fixtures import build_template, serve_copy

EXAMPLES = 12  # per operation


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    return serve_copy(build_template(tmp_path_factory.mktemp("tpl")), tmp_path_factory.mktemp("srv"))


def test_no_generated_request_causes_a_server_error(served):
    schema = schemathesis.openapi.from_asgi("/openapi.json", served.client.app)
    auth = served.as_("admin")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):  # type: ignore[no-untyped-def]
            response = case.call(headers={**(case.headers or {}), **auth})
            case.validate_response(response, checks=[not_a_server_error])

        run()
