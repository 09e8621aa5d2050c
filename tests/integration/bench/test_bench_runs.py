"""`make bench` keeps working: a tiny run of the same command writes its table as JSON.

No speed is asserted (the machine is shared); what is checked is that every part ran,
every message arrived once, and the ratio is there under a key containing "ratio".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import repo_root

pytestmark = pytest.mark.integration


def test_the_bench_measures_every_part_and_writes_the_ratio(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--subscribers", "100", "--pool", "2",
         "--out", str(tmp_path)],
        cwd=repo_root(), capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "email.json").read_text())
    assert result["email_messages_received"] == 100  # each subscriber once, no duplicate
    for key in ("nats_publish_async_msg_per_s", "nats_pull_fetch_ack_msg_per_s",
                "kit_null_sink_deliveries_per_s", "raw_smtp_before_deliveries_per_s",
                "raw_smtp_after_deliveries_per_s", "email_deliveries_per_s"):
        assert result[key] > 0, key
    ratios = {k: v for k, v in result.items() if "ratio" in k and isinstance(v, float)}
    assert ratios["email_to_raw_smtp_ratio"] == pytest.approx(
        result["email_deliveries_per_s"] / result["raw_smtp_deliveries_per_s"])
    assert "email_to_raw_smtp_ratio" in done.stdout
