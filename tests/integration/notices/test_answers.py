"""Answers that do not mislead: no input gets a 500, every error has the documented shape and
names the field in a caller's words, and an id that cannot exist is a 404."""

from __future__ import annotations

import io

import httpx
import pytest

from tests.integration.notices.helpers import FrontDoor, logged

pytestmark = pytest.mark.integration

GOOD = {"category": "information", "title": "Mairie fermée", "body": "Fermée lundi."}
ATTACHMENT = {"name": "Arrêté", "url": "https://mairie.example.fr/a.pdf",
              "media_type": "application/pdf"}


def assert_documented(response_json: dict[str, object]) -> dict[str, object]:
    """`{"error": {"code": ..., "message": ...}}`, as README.md says."""
    assert set(response_json) == {"error"}, response_json
    error = response_json["error"]
    assert isinstance(error, dict)
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    return error


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"title": "\u200b\u200b\u2060"}, "title"),  # zero-width only: shows nothing
        ({"body": "\ufeff \u00ad"}, "body"),
        ({"title": "Bal\x00"}, "title"),
        ({"links": [{"url": "https://a.fr", "label": "x\x1b[31m"}]}, "links.0.label"),
        ({"attachments": [ATTACHMENT | {"name": "\u200b"}]}, "attachments.0.name"),
        ({"attachments": [ATTACHMENT | {"media_type": ""}]}, "attachments.0.media_type"),
        ({"attachments": [ATTACHMENT | {"media_type": "pdf"}]}, "attachments.0.media_type"),
        ({"attachments": [ATTACHMENT | {"size": 10**30}]}, "attachments.0.size"),
        ({"attachments": [ATTACHMENT | {"size": -1}]}, "attachments.0.size"),
    ],
)
async def test_text_that_shows_nothing_and_absurd_values_are_422(
    front_door: FrontDoor, change: dict[str, object], field: str
) -> None:
    fd = front_door
    response = await fd.http.post(fd.notices_url(), json=GOOD | change, headers=fd.auth)
    assert response.status_code == 422, response.text
    error = assert_documented(response.json())
    assert [f["field"] for f in error["fields"]] == [field]  # type: ignore[index]


async def test_a_lone_surrogate_is_422_not_500(front_door: FrontDoor) -> None:
    fd = front_door
    raw = b'{"category": "information", "title": "Bal \\ud800", "body": "b"}'
    response = await fd.http.post(fd.notices_url(), content=raw,
                                  headers=fd.auth | {"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert assert_documented(response.json())["fields"] == [
        {"field": "title", "message": "contains a character that cannot be shown (U+D800)"}]


async def test_a_deeply_nested_body_is_a_documented_4xx(front_door: FrontDoor) -> None:
    fd = front_door
    raw = b'{"category": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await fd.http.post(fd.notices_url(), content=raw,
                                  headers=fd.auth | {"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert_documented(response.json())


async def test_json_that_does_not_parse_names_the_body_not_a_byte_offset(
    front_door: FrontDoor,
) -> None:
    fd = front_door
    response = await fd.http.post(fd.notices_url(), content=b'{"title": oops}',
                                  headers=fd.auth | {"Content-Type": "application/json"})
    assert response.status_code == 422
    (field,) = assert_documented(response.json())["fields"]  # type: ignore[misc]
    assert field["field"] == "body" and "JSON" in field["message"]


async def test_type_errors_are_said_in_json_words(front_door: FrontDoor) -> None:
    fd = front_door
    response = await fd.http.post(
        fd.notices_url(), json=GOOD | {"links": "https://a.fr", "title": ["x"]}, headers=fd.auth)
    fields = {f["field"]: f["message"] for f in response.json()["error"]["fields"]}
    assert fields == {"links": "must be a list", "title": "must be a string"}
    many = [{"url": f"https://a.fr/{i}"} for i in range(11)]
    response = await fd.http.post(fd.notices_url(), json=GOOD | {"links": many}, headers=fd.auth)
    assert response.json()["error"]["fields"] == [
        {"field": "links", "message": "must have at most 10 entries"}]
    response = await fd.http.post(fd.notices_url(), json=GOOD | {"title": "x" * 121},
                                  headers=fd.auth)
    assert response.json()["error"]["fields"] == [
        {"field": "title", "message": "must have at most 120 characters"}]


async def test_405_404_and_400_have_the_documented_shape(front_door: FrontDoor) -> None:
    fd = front_door
    wrong_method = await fd.http.delete(fd.notices_url(), headers=fd.auth)
    assert wrong_method.status_code == 405
    assert assert_documented(wrong_method.json())["code"] == "method_not_allowed"
    assert "GET" in wrong_method.headers["allow"]
    nowhere = await fd.http.get("/api/v1/nowhere")
    assert nowhere.status_code == 404
    assert assert_documented(nowhere.json())["code"] == "not_found"


@pytest.mark.parametrize("notice_id", ["*", ">", "a b", "a.b", "ABCDEFGHIJ", "x" * 200, "é" * 10])
async def test_an_id_that_cannot_exist_is_404_everywhere(
    front_door: FrontDoor, notice_id: str
) -> None:
    fd = front_door
    url = f"{fd.notices_url()}/{notice_id}"
    answers = [
        await fd.http.get(url),
        await fd.http.get(url, headers=fd.auth),
        await fd.http.get(f"{url}/cap.xml"),
        await fd.http.patch(url, json={"title": "x"}, headers=fd.auth),
        await fd.http.post(f"{url}/withdraw", headers=fd.auth),
    ]
    for response in answers:
        assert response.status_code == 404, (response.request.method, response.text)
        assert assert_documented(response.json())["code"] == "notice_not_found"


@pytest.mark.parametrize("query", ["offset=99999999999999999999999", "limit=0", "limit=10000",
                                   "offset=-1", "limit=abc"])
async def test_paging_out_of_range_is_422(front_door: FrontDoor, query: str) -> None:
    fd = front_door
    for path in (fd.notices_url(), f"/api/v1/communes/{fd.insee}/feed.atom"):
        response = await fd.http.get(f"{path}?{query}")
        assert response.status_code == 422, response.text
        error = assert_documented(response.json())
        assert [f["field"] for f in error["fields"]] == [query.split("=")[0]]  # type: ignore[index]


async def test_an_unexpected_error_is_a_documented_500_logged_with_its_stack(
    front_door: FrontDoor, json_logs: io.StringIO
) -> None:
    fd = front_door

    def broken(*_: object) -> None:
        raise RuntimeError("a bug we did not foresee")

    fd.store.view.current = broken  # type: ignore[assignment,method-assign]
    # As a server would: the client gets the answer, not the exception.
    transport = httpx.ASGITransport(app=fd.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get(fd.notices_url())
    assert response.status_code == 500
    assert assert_documented(response.json())["code"] == "internal"
    (error,) = logged(json_logs, "unexpected_error")
    stack = str(error["exception"])
    assert "Traceback" in stack and "a bug we did not foresee" in stack


async def test_requests_are_logged_without_their_token(
    front_door: FrontDoor, json_logs: io.StringIO
) -> None:
    fd = front_door
    response = await fd.http.post(f"{fd.notices_url()}?token={fd.token}", json=GOOD,
                                  headers=fd.auth)
    assert response.status_code == 201
    (request,) = logged(json_logs, "http_request")
    assert request["method"] == "POST" and request["status"] == 201
    assert request["path"] == fd.notices_url()
    assert fd.token not in json_logs.getvalue()


async def test_a_lone_surrogate_anywhere_in_the_body_is_a_4xx(front_door: FrontDoor) -> None:
    fd = front_door
    for raw in (b'{"\\udc00": 1, "category": "information", "title": "t", "body": "b"}',
                b'{"category": "\\ud83d", "title": "t", "body": "b"}',
                b'{"category": "information", "title": "t", "body": "b", '
                b'"links": [{"url": "https://a.fr/\\udfff"}]}'):
        response = await fd.http.post(fd.notices_url(), content=raw,
                                      headers=fd.auth | {"Content-Type": "application/json"})
        assert response.status_code == 422, (raw, response.text)
        assert_documented(response.json())


async def test_head_is_answered_as_get_without_a_body(front_door: FrontDoor) -> None:
    fd = front_door
    created = await fd.http.post(fd.notices_url(), json=GOOD, headers=fd.auth)
    assert created.status_code == 201
    page = f"/communes/{fd.insee}"
    for url in (fd.notices_url(), page, f"/api/v1/communes/{fd.insee}/feed.atom"):
        got, head = await fd.http.get(url), await fd.http.head(url)
        assert head.status_code == got.status_code == 200, url
        assert head.content == b"" and got.content, url
        assert head.headers["content-type"] == got.headers["content-type"]
        assert head.headers.get("etag") == got.headers.get("etag")
    assert (await fd.http.head("/no/such/page")).status_code == 404
