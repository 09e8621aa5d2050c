"""The demo phone replays the stand-ins' records as phones would show them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crieur_dev.standins.phone import Phones

N = iter(range(1, 1000))


def line(path: str, body: Any = None, method: str = "POST", query: str = "",
         status: int = 200) -> str:
    return json.dumps({"n": next(N), "at": "2026-12-01T18:00:00+00:00", "method": method,
                       "path": path, "query": query, "body": body, "status": status}) + "\n"


def push(topic: str, notice_id: str, body: str, action: str = "show") -> str:
    message: dict[str, Any] = {"topic": topic, "data": {"notice_id": notice_id, "action": action,
                                                         "category": "alerte", "body": body}}
    if action == "show":
        message["notification"] = {"title": "Lavoncourt · Alerte", "body": body}
        message["android"] = {"priority": "high", "notification": {"tag": notice_id}}
    return line("/v1/projects/p/messages:send", {"message": message})


def test_topics_corrections_withdrawals_and_sms(tmp_path: Path) -> None:
    sub = "/v1/projects/p/registrations/{}/topicSubscriptions"
    records = tmp_path / "fcm.jsonl"
    records.write_text(
        line(sub.format("A"), {}, query="topic_name=t-alerte")
        + line(sub.format("B"), {}, query="topic_name=t-travaux")
        + push("t-alerte", "n1", "Tempête")
        + push("t-alerte", "n2", "Refused", action="show").replace('"status": 200',
                                                                     '"status": 503'))
    phones = Phones(tmp_path, {"A": "Téléphone de Camille"})
    view = phones.view()
    [a, b] = view["phones"]
    assert a["name"] == "Téléphone de Camille"
    assert [n["body"] for n in a["notifications"]] == ["Tempête"]
    assert b["notifications"] == []

    with records.open("a") as out:
        out.write(push("t-alerte", "n1", "Rectificatif : Tempête forte"))
        out.write(line(sub.format("A") + "/t-alerte", method="DELETE"))
        out.write(push("t-alerte", "n3", "Après le départ"))
        out.write('{"half a line')
    a = phones.view()["phones"][0]
    assert [n["body"] for n in a["notifications"]] == ["Rectificatif : Tempête forte"]
    assert [j["what"] for j in a["journal"]] == ["rectifié", "reçu"]

    with records.open("a") as out:
        # Back on the topic: it hears the withdrawal.
        out.write("\n" + line(sub.format("A"), {}, query="topic_name=t-alerte"))
        out.write(push("t-alerte", "n1", "", action="remove"))
    (tmp_path / "sms.jsonl").write_text(
        line("/v3/transactionalSMS/send", {"recipient": "33612345678", "content": "Alerte !",
                                           "sender": "Mairie"})
        + line("/1.0/sms/s/jobs", {"receivers": ["+33699999912"], "message": "Refusé"},
               status=503)
        + line("/1.0/sms/s/jobs", {"receivers": ["+33611111134"], "message": "Route fermée"}))
    view = phones.view()
    assert view["phones"][0]["notifications"] == []
    sms = [p for p in view["phones"] if p["sms"]]
    assert [(p["name"], p["sms"][0]["body"]) for p in sms] == [
        ("SMS •••••••••78", "Alerte !"), ("SMS ••••••••••34", "Route fermée")]
    assert "33612345678" not in json.dumps(view)
