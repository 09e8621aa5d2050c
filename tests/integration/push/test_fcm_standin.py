"""The FCM stand-in speaks enough of the FCM v1 API to be trusted in place of Google's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crieur.nats_server import free_port
from crieur_dev.standins.fcm import FcmStandin, setup

pytestmark = pytest.mark.integration


@pytest.fixture
def fcm(tmp_path: Path) -> Iterator[FcmStandin]:
    standin = FcmStandin(tmp_path)
    standin.start(free_port())
    yield standin
    standin.stop()


def access_token(fcm: FcmStandin) -> str:
    header = "eyJhbGciOiJSUzI1NiJ9"
    claims = "eyJzY29wZSI6Imh0dHBzOi8vd3d3Lmdvb2dsZWFwaXMuY29tL2F1dGgvZmlyZWJhc2UubWVzc2FnaW5nIn0"
    reply = httpx.post(f"{fcm.url}/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": f"{header}.{claims}.c2ln"})
    assert reply.status_code == 200
    return str(reply.json()["access_token"])


def test_it_refuses_what_fcm_refuses_and_records_everything(fcm: FcmStandin,
                                                             tmp_path: Path) -> None:
    url = f"{fcm.url}/v1/projects/p/messages:send"
    assert httpx.post(f"{fcm.url}/token", data={"grant_type": "password"}).status_code == 400
    # No access token from its token endpoint: UNAUTHENTICATED.
    anonymous = httpx.post(url, json={"message": {"topic": "t"}})
    assert anonymous.status_code == 401
    auth = {"Authorization": f"Bearer {access_token(fcm)}"}
    two_targets = httpx.post(url, headers=auth, json={"message": {"topic": "t", "token": "x"}})
    assert two_targets.status_code == 400
    assert two_targets.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert httpx.post(url, headers=auth,
                      json={"message": {"topic": "é"}}).status_code == 400
    too_big = httpx.post(url, headers=auth, json={"message": {"topic": "t",
                                                              "data": {"x": "a" * 5000}}})
    assert too_big.status_code == 400
    plain_image = httpx.post(url, headers=auth, json={"message": {
        "topic": "t", "notification": {"title": "a", "image": "http://x.fr/p.jpg"}}})
    assert plain_image.status_code == 400
    assert "https" in plain_image.json()["error"]["message"]
    ok = httpx.post(url, headers=auth, json={"message": {"topic": "t", "data": {"a": "b"}}})
    assert ok.status_code == 200 and ok.json()["name"].startswith("projects/p/messages/")
    fcm.mark_token("dead", "UNREGISTERED")
    gone = httpx.post(url, headers=auth, json={"message": {"token": "dead"}})
    assert gone.status_code == 404
    assert gone.json()["error"]["details"][0]["errorCode"] == "UNREGISTERED"
    # Faults told over HTTP, as `make run` users would.
    assert httpx.post(f"{fcm.url}/_standin/faults",
                      json={"status": 429, "retry_after": 7}).status_code == 200
    limited = httpx.post(url, headers=auth, json={"message": {"topic": "t"}})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert limited.json()["error"]["details"][0]["errorCode"] == "QUOTA_EXCEEDED"

    lines = [json.loads(x) for x in (tmp_path / "fcm.jsonl").read_text().splitlines()]
    assert [r["status"] for r in lines] == [400, 401, 200, 400, 400, 400, 400, 200, 404, 429]
    assert lines == httpx.get(f"{fcm.url}/_standin/received").json()
    assert all("authorization" not in r["headers"] for r in lines)


def test_setup_gives_make_run_a_service_account_only_without_credentials(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRIEUR_FCM_CREDENTIALS", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CRIEUR_FCM_STANDIN_PORT", "18083")
    said = setup(tmp_path)
    account = json.loads(Path(said["CRIEUR_FCM_CREDENTIALS"]).read_text())
    assert account["token_uri"] == "http://127.0.0.1:18083/token"
    assert "BEGIN PRIVATE KEY" in account["private_key"]
    assert said["CRIEUR_FCM_URL"] == "http://127.0.0.1:18083"
    assert said["CRIEUR_FCM_STANDIN"] == "1" and said["CRIEUR_DEMO_PHONES"] == "70299"
    # Another run on another port: the same key, the new token_uri.
    monkeypatch.setenv("CRIEUR_FCM_STANDIN_PORT", "18093")
    again = json.loads(Path(setup(tmp_path)["CRIEUR_FCM_CREDENTIALS"]).read_text())
    assert again["private_key"] == account["private_key"]
    assert again["token_uri"] == "http://127.0.0.1:18093/token"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/etc/crieur/fcm.json")
    assert setup(tmp_path) == {}
