"""``make demo`` (``python -m nni_eas.demo``): it stops NNI cleanly on Ctrl-C, and (slow) runs the
main job, ``strategies/eas.yml``, to the end with a table of every scenario."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _nni_processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in out if marker in line and "ps -eww" not in line]


def _start(out: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "nni_eas.demo", "--out", str(out), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)   # Ctrl-C goes to the demo only, as in a terminal


def test_demo_stops_the_experiment_on_ctrl_c(tmp_path):
    proc = _start(tmp_path / "demo", "--epochs", "1", "--steps", "5")
    lines: list[str] = []
    deadline = time.time() + 240
    try:
        for line in proc.stdout:                  # wait until the first trial (supernet training) runs
            lines.append(line)
            if "1 running" in line or time.time() > deadline:
                break
        assert any("web UI: http://127.0.0.1:" in x for x in lines), lines
        assert any("1 running" in x for x in lines), lines
        running = _nni_processes(str(tmp_path / "demo"))
        assert running, "NNI's manager should be running with this experiment folder"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:                   # a failed check: still stop NNI through the demo
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    assert proc.returncode == 130, "".join(lines) + rest
    assert "interrupted: the experiment is stopped" in rest
    work = str(tmp_path / "demo")
    time.sleep(2)
    assert not _nni_processes(work), _nni_processes(work)          # trials and NNI's manager are gone


@pytest.mark.slow
def test_demo_runs_the_main_job_to_the_end(tmp_path):
    """The whole pipeline through NNI with a short supernet and generator training."""
    proc = _start(tmp_path / "demo", "--epochs", "7", "--steps", "40")
    out, _ = proc.communicate(timeout=1800)
    assert proc.returncode == 0, out
    assert "10 scenarios answered by one generator pass" in out and "all digits tiny" in out
    summary = json.loads((tmp_path / "demo" / "eas" / "scenarios.json").read_text())
    rows = summary["scenarios"]
    assert len(rows) == 10
    for r in rows:
        m = r["metrics"]
        assert 0 <= m["top1"] <= 1 and m["latency_ms"] > 0 and Path(m["onnx"]).is_file()
        for metric, budget in r["budget"].items():
            assert m[metric] <= budget
