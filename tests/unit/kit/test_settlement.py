"""The end of a worker's batch as a function of its jobs' states (crieur.channel.worker)."""

from __future__ import annotations

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from crieur.channel.worker import State, _Item, settlement
from schemas.deliveries import Channel, DeliveryOutcome
from schemas.events import EventKind
from schemas.jobs import Job

SENT = (DeliveryOutcome.SENT, "target", "")


def _msg() -> Msg:
    return Msg(_client=Client(), subject="jobs.email.70299", data=b"")


def _item(msg: Msg, recipient: str, grouped: bool = False) -> _Item:
    job = Job(channel=Channel.EMAIL, commune="70299", notice_id="n1", version=1,
              kind=EventKind.PUBLISHED, recipient=recipient)
    return _Item(msg, job, attempt=1, grouped=grouped)


def _group(*states: tuple[State, float | None]) -> list[_Item]:
    msg = _msg()
    items = [_item(msg, f"r{n}", grouped=True) for n in range(len(states))]
    for item, (state, delay) in zip(items, states, strict=True):
        if state is State.OUTCOME:
            item.move(state, SENT)
        elif state is not State.PENDING:
            item.move(state, delay=delay)
    return items


def test_a_job_alone_is_acked_only_with_an_outcome_the_rest_was_settled_on_the_way() -> None:
    done, back, dead, lost, pending = (_item(_msg(), r) for r in "abcde")
    done.move(State.OUTCOME, SENT)
    back.move(State.BACK, delay=3.0)
    dead.move(State.DEAD)
    lost.move(State.LOST)
    plan = settlement([done, back, dead, lost, pending])
    assert plan.report == [done]
    assert plan.acks == [done.msg]
    assert plan.naks == [] and plan.back == []


@pytest.mark.parametrize("unsettled", [State.PENDING, State.LOST])
def test_a_group_with_a_job_not_settled_is_left_to_come_back_whole(unsettled: State) -> None:
    group = _group((State.OUTCOME, None), (State.BACK, 5.0), (unsettled, None))
    plan = settlement(group)
    assert (plan.report, plan.acks, plan.naks, plan.back) == ([], [], [], [])


def test_a_group_that_got_nowhere_is_naked_once_after_its_shortest_delay() -> None:
    group = _group((State.BACK, 30.0), (State.BACK, 5.0), (State.BACK, 60.0))
    assert settlement(group).naks == [(group[0].msg, 5.0)]
    stopped = _group((State.BACK, 30.0), (State.BACK, None))
    plan = settlement(stopped)
    assert plan.naks == [(stopped[0].msg, None)]
    assert plan.acks == [] and plan.back == []


def test_a_settled_group_is_acked_once_its_outcomes_reported_its_held_jobs_queued_alone() -> None:
    group = _group((State.OUTCOME, None), (State.BACK, 5.0), (State.DEAD, None),
                   (State.OUTCOME, None))
    plan = settlement(group)
    assert plan.acks == [group[0].msg]
    assert plan.report == [group[0], group[3]]
    assert plan.back == [group[1]]
    assert plan.naks == []


def test_a_job_moves_only_by_the_allowed_steps() -> None:
    item = _item(_msg(), "a")
    with pytest.raises(AssertionError):
        item.move(State.OUTCOME)  # an outcome must say what happened
    item.move(State.BACK, delay=1.0)
    with pytest.raises(AssertionError):
        item.move(State.OUTCOME, SENT)  # handed back: nothing more to say about it
    settled = _item(_msg(), "b")
    settled.move(State.OUTCOME, SENT)
    settled.move(State.SETTLED)
    assert settled.state is State.SETTLED and not settled.in_progress
