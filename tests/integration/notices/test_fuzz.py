"""A fuzzer run over the front door's own /openapi.json finds no 5xx, except 503 from a channel
that is not running. Bounded: a fixed number of examples per operation, derandomized."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from tests.integration.notices.helpers import FrontDoor

pytestmark = pytest.mark.integration

# Examples per operation and mode. The channel routes (about fifty: every method on every
# prefix) all lead to the same forwarding code, so each gets a few.
API_EXAMPLES, CHANNEL_EXAMPLES = 20, 1


def generate(strategy: Any, count: int) -> list[Any]:
    """`count` cases from a strategy, the same ones on every run."""
    cases: list[Any] = []

    @settings(max_examples=count, database=None, deadline=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def collect(case: Any) -> None:
        cases.append(case)

    try:
        collect()
    except Unsatisfiable:
        pass  # nothing to make invalid (an operation without parameters or body)
    return cases


async def test_no_input_answers_a_server_error(front_door: FrontDoor) -> None:
    fd = front_door
    notice = (await fd.http.post(fd.notices_url(), headers=fd.auth, json={
        "category": "alerte", "title": "Crue", "body": "La Saône monte."})).json()
    openapi = (await fd.http.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(openapi)
    known = {"insee": fd.insee, "notice_id": notice["id"]}

    failures = []
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        channel = not operation.path.startswith("/api/v1/communes")
        count = CHANNEL_EXAMPLES if channel else API_EXAMPLES
        names = {p.name for p in operation.path_parameters}
        # Invalid input to a channel route is the channel's to judge: the front door only
        # forwards it, so the channel routes get valid input only (and cost less to make).
        modes = [GenerationMode.POSITIVE] if channel else [GenerationMode.POSITIVE,
                                                           GenerationMode.NEGATIVE]
        strategies = [operation.as_strategy(mode) for mode in modes]
        if names & known.keys():
            # Reach past the 404s: the commune and notice that exist, and a valid token.
            strategies.append(operation.as_strategy(
                GenerationMode.POSITIVE,
                path_parameters={k: v for k, v in known.items() if k in names},
                headers={"Authorization": f"Bearer {fd.token}"}))
        for strategy in strategies:
            for case in generate(strategy, count):
                kwargs = case.as_transport_kwargs(base_url="http://test")
                content = kwargs.get("data")
                response = await fd.http.request(
                    kwargs["method"], kwargs["url"], headers=kwargs["headers"],
                    params=kwargs.get("params"),
                    json=kwargs.get("json") if content is None else None,
                    content=content if isinstance(content, (bytes, str)) else None)
                sent += 1
                if response.status_code < 500:
                    continue
                if (response.status_code == 503 and channel
                        and response.json()["error"]["code"] == "channel_unavailable"):
                    continue
                failures.append(f"{case.as_curl_command(base_url='http://test')} -> "
                                f"{response.status_code} {response.text[:200]}")
    assert sent > 300, sent  # every operation, a few times each
    assert not failures, "\n".join(failures[:20])
