"""`crieur dead-letters`: list what the services set aside (DEADLETTERS), and replay it.

`list` prints one line per dead letter (its sequence, when, which service, the subject it
was read on, why), oldest first, optionally for one service. `replay SEQ...` publishes each
letter's original bytes and headers again on its original subject, once the cause is
fixed: the stream that holds that subject stores it again and its readers see it anew. A
replay whose Nats-Msg-Id is still inside its stream's duplicate window is refused by
JetStream as a duplicate and said so (`--new-id` gives it a fresh one).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import uuid
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from pydantic import ValidationError

from crieur.bus import TRY_ONCE, servers
from crieur.settings import CommonSettings
from schemas import subjects
from schemas.deadletters import DeadLetter
from schemas.jobs import ATTEMPTS_HEADER
from schemas.streams import DEADLETTERS_STREAM

MSG_ID = "Nats-Msg-Id"


async def letters(js: JetStreamContext, service: str | None = None
                  ) -> list[tuple[int, DeadLetter]]:
    """Every dead letter (of `service`, if given), with its sequence, oldest first."""
    subject = subjects.dead_letter(service) if service else subjects.DEADLETTERS
    info = await js.stream_info(DEADLETTERS_STREAM)
    if info.state.messages == 0:
        return []
    sub = await js.subscribe(subject, stream=DEADLETTERS_STREAM, ordered_consumer=True,
                             deliver_policy=DeliverPolicy.ALL)
    found: list[tuple[int, DeadLetter]] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except nats.errors.TimeoutError:
                break
            try:
                found.append((msg.metadata.sequence.stream,
                              DeadLetter.model_validate_json(msg.data)))
            except ValidationError:
                pass  # not a dead letter we can read: left for a newer `crieur`
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return found


async def replay(js: JetStreamContext, sequence: int, new_id: bool = False) -> str:
    """Publish dead letter `sequence` again where it came from; says what happened."""
    raw = await js.get_msg(DEADLETTERS_STREAM, seq=sequence)
    letter = DeadLetter.model_validate_json(raw.data or b"")
    headers = dict(letter.headers)
    # Replayed once the cause is fixed: a job's attempts start again.
    headers.pop(ATTEMPTS_HEADER, None)
    if new_id or MSG_ID in headers:
        headers[MSG_ID] = (f"replay:{uuid.uuid4().hex}" if new_id else headers[MSG_ID])
    ack = await js.publish(letter.subject, base64.b64decode(letter.payload_b64),
                           headers=headers or None)
    if ack.duplicate:
        return (f"{sequence}: not replayed, {ack.stream} still holds it as a duplicate "
                f"({MSG_ID} {headers.get(MSG_ID)}); use --new-id to store it again")
    return f"{sequence}: replayed on {letter.subject} ({ack.stream} sequence {ack.seq})"


def _line(sequence: int, letter: DeadLetter) -> str:
    reason = " ".join(letter.reason.split())
    return (f"{sequence}\t{letter.at:%Y-%m-%d %H:%M:%S}\t{letter.service}\t{letter.subject}"
            f"\t{letter.deliveries if letter.deliveries is not None else '-'}\t{reason[:200]}")


async def run(args: argparse.Namespace) -> int:
    url = CommonSettings().nats_url
    try:
        nc = await nats.connect(servers(url), name="crieur-dead-letters", **TRY_ONCE)
    except (OSError, nats.errors.Error) as error:
        print(f"error: cannot reach NATS ({error}) (CRIEUR_NATS_URL)", file=sys.stderr)
        return 3
    try:
        js = nc.jetstream()
        if args.action == "list":
            found = await letters(js, args.service)
            for sequence, letter in found:
                if args.json:
                    doc: dict[str, Any] = {"sequence": sequence,
                                           **letter.model_dump(mode="json")}
                    print(json.dumps(doc, ensure_ascii=False))
                else:
                    print(_line(sequence, letter))
            if not args.json:
                print(f"{len(found)} dead letter(s)", file=sys.stderr)
            return 0
        code = 0
        for sequence in args.sequence:
            try:
                print(await replay(js, sequence, new_id=args.new_id))
            except nats.js.errors.NotFoundError:
                print(f"{sequence}: no such dead letter", file=sys.stderr)
                code = 1
            except ValidationError:
                print(f"{sequence}: not a dead letter this `crieur` can read", file=sys.stderr)
                code = 1
        return code
    except nats.errors.TimeoutError:
        print("error: NATS did not answer: does this user may read DEADLETTERS and publish "
              "there (the operator user does)?", file=sys.stderr)
        return 1
    finally:
        await nc.close()


def add_parser(sub: Any) -> None:
    """Registers `crieur dead-letters list|replay` on the `crieur` command's sub-parsers."""
    p = sub.add_parser("dead-letters", help="list and replay what the services set aside")
    actions = p.add_subparsers(dest="action", required=True, metavar="action")
    listing = actions.add_parser("list", help="every dead letter, oldest first")
    listing.add_argument("--service", help="only this service's (e.g. panel, email-worker)")
    listing.add_argument("--json", action="store_true", help="one JSON document per line")
    again = actions.add_parser("replay", help="publish dead letters again where they came from")
    again.add_argument("sequence", type=int, nargs="+", help="sequence numbers, from `list`")
    again.add_argument("--new-id", action="store_true",
                       help="a fresh Nats-Msg-Id, so a stream that deduplicates stores it again")
    p.set_defaults(run=run)
