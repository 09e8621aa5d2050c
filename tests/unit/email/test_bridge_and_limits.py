"""The channel's request-reply router and the per-key rate limiter, without a network."""

from __future__ import annotations

import json

from crieur.channel.http_bridge import HttpError, Request, Router, json_reply
from crieur.channel.ratelimit import RateLimiter, parse_networks
from schemas.channels import ChannelHttpReply, ChannelHttpRequest


def request(method: str, path: str, body: str = "") -> ChannelHttpRequest:
    return ChannelHttpRequest(method=method, path=path, body=body)


async def test_routes_by_method_and_pattern_and_errors_are_json() -> None:
    router = Router()

    @router.route("GET", "/things/{token}")
    async def show(req: Request) -> ChannelHttpReply:
        return json_reply(200, {"token": req.params["token"]})

    @router.route("POST", "/things")
    async def make(req: Request) -> ChannelHttpReply:
        data = req.json()
        if "name" not in data:
            raise HttpError(422, "invalid_input", "name missing", fields=[
                {"field": "name", "message": "required"}])
        return json_reply(201, data)

    @router.route("GET", "/boom")
    async def boom(req: Request) -> ChannelHttpReply:
        raise RuntimeError("bug")

    shown = await router.dispatch(request("GET", "/things/a.b-c"))
    assert (shown.status, json.loads(shown.body)) == (200, {"token": "a.b-c"})
    assert (await router.dispatch(request("GET", "/things/a/b"))).status == 404
    wrong = await router.dispatch(request("DELETE", "/things/x"))
    assert (wrong.status, wrong.headers["allow"]) == (405, "GET")
    bad = await router.dispatch(request("POST", "/things", "{}"))
    assert bad.status == 422
    assert json.loads(bad.body)["error"]["fields"] == [{"field": "name", "message": "required"}]
    assert (await router.dispatch(request("POST", "/things", "{oops"))).status == 400
    crashed = await router.dispatch(request("GET", "/boom"))
    assert (crashed.status, json.loads(crashed.body)["error"]["code"]) == (500, "internal")


def test_the_limiter_allows_a_burst_then_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(3, 60.0, clock=lambda: now[0])
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    wait = limiter.hit("a")
    assert wait is not None and 19.0 < wait <= 20.0
    assert limiter.hit("b") is None, "each key has its own bucket"
    now[0] = 20.0
    assert limiter.hit("a") is None
    assert limiter.hit("a") is not None


def test_the_limiter_forgets_the_oldest_keys_beyond_its_bound() -> None:
    limiter = RateLimiter(1, 3600.0, max_keys=100, clock=lambda: 0.0)
    for n in range(1000):
        limiter.hit(f"k{n}")
    assert len(limiter._buckets) == 100
    assert limiter.hit("k999") is not None


def test_the_client_is_read_through_trusted_proxies_only() -> None:
    def client(peer: str, forwarded: str, trusted: set[str]) -> str:
        raw = ChannelHttpRequest(method="POST", path="/", client_ip=peer,
                                 headers={"x-forwarded-for": forwarded})
        return Request(raw, {}).client_behind(parse_networks(",".join(trusted)))

    assert client("203.0.113.5", "198.51.100.1", set()) == "203.0.113.5", "forged header ignored"
    assert client("10.0.0.2", "198.51.100.1", {"10.0.0.2"}) == "198.51.100.1"
    assert client("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3",
                  {"10.0.0.2", "10.0.0.3"}) == "198.51.100.1", "a forged left part is not used"
    assert client("10.0.0.2", "", {"10.0.0.2"}) == "10.0.0.2"
