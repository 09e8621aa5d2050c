"""`make bench` keeps working: its smallest path (`--quick`) writes every figure as JSON.

No speed is asserted (the machine is shared); what is checked is that every part ran, every
message arrived exactly once at its sink, and each ratio is there under a key containing
"ratio", computed from the figures beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import repo_root

pytestmark = pytest.mark.integration


def ratio_keys(value: Any, path: str = "") -> set[str]:
    found = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if "ratio" in key:
                found.add(f"{path}{key}")
            found |= ratio_keys(inner, f"{path}{key}.")
    return found


def test_the_quick_bench_measures_every_part(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)],
        cwd=repo_root(), capture_output=True, text=True, timeout=420, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())

    baselines = result["baselines"]
    for key in ("nats_publish_async_msg_per_s", "nats_pull_fetch_ack_msg_per_s",
                "kit_null_sink_deliveries_per_s", "raw_smtp_deliveries_per_s",
                "raw_sms_http_deliveries_per_s", "raw_smtp_concurrent_deliveries_per_s",
                "raw_sms_http_concurrent_deliveries_per_s"):
        assert baselines[key] > 0, key
    # Measured before the first run (email alone), between runs and after the last one,
    # each time alone and both at once.
    for key in ("raw_smtp_runs_deliveries_per_s", "raw_sms_http_runs_deliveries_per_s",
                "raw_smtp_concurrent_runs_deliveries_per_s",
                "raw_sms_http_concurrent_runs_deliveries_per_s"):
        assert len(baselines[key]) == 5, key

    # Issue 8: one notice to email subscribers only, against raw aiosmtplib alone.
    alone = result["email_alone"]
    assert alone["expected"] == alone["delivered"] == 200
    assert alone["sms_delivered"] == 0  # no SMS subscriber follows that commune
    assert alone["seconds"] > 0
    assert alone["raw_deliveries_per_s"] == pytest.approx(
        (baselines["raw_smtp_runs_deliveries_per_s"][0]
         + baselines["raw_smtp_runs_deliveries_per_s"][1]) / 2)
    assert alone["to_raw_ratio"] == pytest.approx(
        alone["deliveries_per_s"] / alone["raw_deliveries_per_s"])

    assert set(result["fanout"]) == {"100", "200"}
    runs = [*result["fanout"].values(), result["departement"]]
    for run in runs:
        for channel in ("email", "sms"):
            c = run[channel]
            assert c["delivered"] == c["expected"], (channel, c)  # each once, no duplicate
            assert c["seconds"] > 0
            assert c["raw_deliveries_per_s"] > 0
            assert c["to_raw_ratio"] == pytest.approx(
                c["deliveries_per_s"] / c["raw_deliveries_per_s"])
            assert c["concurrent_raw_deliveries_per_s"] > 0
            assert c["to_concurrent_raw_ratio"] == pytest.approx(
                c["deliveries_per_s"] / c["concurrent_raw_deliveries_per_s"])
    assert result["fanout"]["200"]["email"]["expected"] == 200
    assert result["departement"]["email"]["expected"] == 200
    assert result["departement"]["push"] == {"expected": 10, "delivered": 10}
    assert result["departement"]["requests"] == 1  # one group publication, not 10 POSTs
    # The département run's time line: the publications, then each sink's first, half and
    # last message as the sink recorded them (its `seconds` is that last one), the channels'
    # queues, and the CPU of each process, the bench's own polling included.
    dept = result["departement"]
    timeline = dept["timeline"]
    assert 0 < timeline["first_201_s"] <= timeline["last_201_s"]
    for channel in ("email", "sms"):
        t = timeline[channel]
        assert t["count"] == 200
        assert 0 < t["first_s"] <= t["p50_s"] <= t["last_s"]
        assert dept[channel]["seconds"] == pytest.approx(t["last_s"], abs=1e-3)
    assert set(timeline["queues"]) == {"email", "sms", "push"}
    assert dept["cpu_s"]["email"] > 0 and dept["cpu_s"]["bench"] > 0
    assert timeline["cpu_after"]["cores"]["machine"] > 0

    for sink in ("push", "panel"):
        latency = result["latency"][sink]
        assert latency["received"] == 20
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]

    assert {"notices", "panel", "email", "push", "sms"} <= set(result["peak_rss_mb"])
    assert all(mb > 0 for mb in result["peak_rss_mb"].values())
    flat = result["per_recipient_time_ratio"]
    assert set(flat) == {"email", "sms"} and all(v > 0 for v in flat.values())
    # The last fan-out run is held to the raw rates measured just before and just after it.
    runs_smtp = baselines["raw_smtp_concurrent_runs_deliveries_per_s"]
    assert result["fanout"]["200"]["email"]["concurrent_raw_deliveries_per_s"] == (
        pytest.approx((runs_smtp[2] + runs_smtp[3]) / 2))
    assert {"email_alone.to_raw_ratio", "fanout.100.email.to_raw_ratio",
            "fanout.200.sms.to_concurrent_raw_ratio", "departement.sms.to_raw_ratio",
            "departement.email.to_concurrent_raw_ratio",
            "per_recipient_time_ratio"} <= ratio_keys(result)
    names = {t["name"] for t in result["targets"]}
    assert {"push latency p99 (ms)", "email_alone.to_raw_ratio N=200",
            "email_to_concurrent_raw_ratio at N=200",
            "email_to_raw_ratio at N=200 (raw alone)"} <= names
    assert all(isinstance(t["met"], bool) for t in result["targets"])
    assert "== targets ==" in done.stdout
    assert "== email alone (issue 8)" in done.stdout
    check_webpush(result)
    assert "webpush.to_raw_ratio N=200" in names


def check_webpush(result: dict[str, Any]) -> None:
    """Issue 27: every browser's request accepted once by the stand-in (it decrypted it),
    held to the raw loop measured just before and just after."""
    run = result["webpush"]
    assert run["expected"] == run["delivered"] == 200, run
    assert run["duplicated"] == 0 and run["unexpected_requests"] == 0
    assert run["seconds"] > 0
    assert run["timeline"]["count"] == 200
    assert len(run["raw_runs_deliveries_per_s"]) == 2
    assert all(r > 0 for r in run["raw_runs_deliveries_per_s"])
    assert run["raw_deliveries_per_s"] == pytest.approx(
        sum(run["raw_runs_deliveries_per_s"]) / 2)
    assert run["to_raw_ratio"] == pytest.approx(
        run["deliveries_per_s"] / run["raw_deliveries_per_s"])
    assert run["cpu_s"]["webpush"] > 0 and run["raw_client_cpu_ms_per_msg"] > 0
    assert "webpush.to_raw_ratio" in ratio_keys(result)
    row = next(t for t in result["targets"] if t["name"].startswith("webpush.to_raw_ratio"))
    assert row["measured"] == run["to_raw_ratio"] and isinstance(row["met"], bool)


def test_the_webpush_phase_alone_measures_against_the_raw_loop(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "webpush", "--quick",
         "--out", str(tmp_path)],
        cwd=repo_root(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    check_webpush(result)
    assert "== Web Push (issue 27)" in done.stdout


def test_the_departement_phase_alone_publishes_for_the_group_with_one_request(
        tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "departement", "--quick",
         "--out", str(tmp_path)],
        cwd=repo_root(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    dept = json.loads((tmp_path / "bench.json").read_text())["departement"]
    assert (dept["communes"], dept["requests"]) == (10, 1)
    # Every commune's copy went out: one push topic each, every subscriber once.
    assert dept["push"] == {"expected": 10, "delivered": 10}
    for channel in ("email", "sms"):
        c = dept[channel]
        assert c["delivered"] == c["expected"] == 200, (channel, c)
        assert c["to_raw_ratio"] == pytest.approx(
            c["deliveries_per_s"] / c["raw_deliveries_per_s"])
        assert c["to_concurrent_raw_ratio"] == pytest.approx(
            c["deliveries_per_s"] / c["concurrent_raw_deliveries_per_s"])
    assert dept["timeline"]["first_201_s"] == dept["timeline"]["last_201_s"] > 0
    assert "1 request published 10 notices" in done.stdout
