"""`crieur dead-letters`: an operator lists what a service set aside and replays it."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import nats
import pytest

from crieur.bus import ensure_streams
from crieur.deadletter import dead_letter
from schemas.streams import DEADLETTERS
from tests.integration.deploy.helpers import crieur

pytestmark = pytest.mark.integration


async def test_list_then_replay_a_dead_letter(nats_url: str, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    stream, subject, service = f"REPLAY_{uid.upper()}", f"replay_{uid}.70299.n1", f"svc-{uid}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIEUR_")}
    env |= {"CRIEUR_NATS_URL": nats_url}
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, (DEADLETTERS,))
        await js.add_stream(name=stream, subjects=[f"replay_{uid}.>"], duplicate_window=3600)
        await js.publish(subject, b'{"bad": 1}', headers={"Nats-Msg-Id": f"orig-{uid}"})
        await dead_letter(js, service=service, subject=subject, data=b'{"bad": 1}',
                          reason="schema_version 9 unknown\nto this reader",
                          headers={"Nats-Msg-Id": f"orig-{uid}", "X-Trace": "t1",
                                   "Crieur-Attempts": "7"},
                          deliveries=3, stream_sequence=1)

        listed = crieur(["dead-letters", "list", "--service", service], env)
        assert listed.returncode == 0, listed.stderr
        [line] = listed.stdout.splitlines()
        sequence, _, who, where, deliveries, reason = line.split("\t")
        assert (who, where, deliveries) == (service, subject, "3")
        assert reason == "schema_version 9 unknown to this reader"
        as_json = crieur(["dead-letters", "list", "--service", service, "--json"], env)
        [doc] = [json.loads(x) for x in as_json.stdout.splitlines()]
        assert doc["sequence"] == int(sequence) and doc["headers"]["X-Trace"] == "t1"

        # Still inside the stream's duplicate window: JetStream refuses it, and it says so.
        again = crieur(["dead-letters", "replay", sequence], env)
        assert again.returncode == 0, again.stderr
        assert "not replayed" in again.stdout and "--new-id" in again.stdout
        assert (await js.stream_info(stream)).state.messages == 1

        fresh = crieur(["dead-letters", "replay", sequence, "--new-id"], env)
        assert fresh.returncode == 0, fresh.stderr
        assert f"replayed on {subject}" in fresh.stdout
        last = await js.get_last_msg(stream, subject)
        assert last.data == b'{"bad": 1}'
        assert (last.headers or {}).get("X-Trace") == "t1"
        # A replayed job's attempts start again (the cause is fixed).
        assert "Crieur-Attempts" not in (last.headers or {})
        assert (await js.stream_info(stream)).state.messages == 2

        missing = crieur(["dead-letters", "replay", "999999999"], env)
        assert missing.returncode == 1 and "no such dead letter" in missing.stderr
        await js.delete_stream(stream)
    finally:
        await nc.close()
