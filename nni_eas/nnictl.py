"""``nni-eas nnictl``: nnictl that checks the config first and tells why an experiment died.

* The web UI listens on 127.0.0.1 (``NNI_EAS_WEBUI_HOST`` overrides it) and trials run this
  environment's ``python`` (its ``bin/`` goes first on ``PATH``).
* ``create --config X.yml`` with an nni-eas tuner validates the whole config first
  (:func:`nni_eas.preflight.check_experiment`): a bad config exits 2 with the message, and NNI
  is not started.
* After ``nnictl create`` returns, the experiment is watched until its tuner has connected and
  asked for trials (at most ``NNI_EAS_STARTUP_WAIT`` seconds, default 60). If it ends in ERROR,
  or its dispatcher died, the real error (from the dispatcher's and manager's logs, not NNI's
  generic status text) is printed, the experiment is stopped, and the exit code is 1.

:func:`experiment_failure` is shared with the demo, which watches its experiment to the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence

__all__ = ["run_nnictl", "experiment_failure", "dispatcher_error", "STARTUP_WAIT"]

STARTUP_WAIT = float(os.environ.get("NNI_EAS_STARTUP_WAIT", "60"))
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):.*?(?=\n\[\d{4}-|\Z)", re.S)
_MANAGER_ERROR = re.compile(r"Dispatcher error: (.*?)(?=\n\[\d{4}-|\Z)", re.S)


def _option(args: Sequence[str], *names: str) -> str | None:
    for i, a in enumerate(args):
        for n in names:
            if a == n and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return None


def _get(port: int, path: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni{path}", timeout=timeout) as r:
        return json.loads(r.read())


def dispatcher_error(log_dir: str | os.PathLike) -> str | None:
    """The tuner's real error: the last traceback of ``dispatcher.log``, else the manager's
    ``Dispatcher error: ...`` line (what a tuner sent before it raised)."""
    log_dir = Path(log_dir)
    for name, pattern in (("dispatcher.log", _TRACEBACK), ("nnimanager.log", _MANAGER_ERROR)):
        try:
            text = (log_dir / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found = pattern.findall(text)
        if found:
            return found[-1].strip()
    return None


def _log_dir(port: int) -> Path | None:
    try:
        profile = _get(port, "/experiment")
    except (OSError, ValueError):
        return None
    root = profile.get("logDir")
    if not root:
        params = profile.get("params") or {}
        base = params.get("experimentWorkingDirectory") or str(Path.home() / "nni-experiments")
        root = str(Path(base).expanduser() / profile.get("id", ""))
    return Path(root) / "log"


def experiment_failure(port: int, log_dir: str | os.PathLike | None = None) -> str | None:
    """Why the experiment on ``port`` failed, or ``None`` while it looks healthy.

    ERROR status: NNI's error text plus the dispatcher's. RUNNING with a traceback in
    ``dispatcher.log``: the dispatcher died and NNI did not notice (NNI 3.0 keeps such an
    experiment RUNNING forever).
    """
    log_dir = Path(log_dir) if log_dir else _log_dir(port)
    try:
        status = _get(port, "/check-status")
    except (OSError, ValueError):
        return None
    detail = dispatcher_error(log_dir) if log_dir else None
    if status.get("status") == "ERROR":
        errors = "; ".join(str(e) for e in status.get("errors") or []) or "no message"
        return f"the experiment ended in ERROR ({errors})" + (f"\nthe tuner's error:\n{detail}" if detail else "")
    if detail and "Traceback" in detail and status.get("status") not in ("DONE", "STOPPED"):
        return f"the tuner (dispatcher) died; the experiment would stay {status.get('status')}:\n{detail}"
    return None


def _started(port: int) -> bool:
    """The tuner connected and the experiment is handing out trials (or already finished)."""
    try:
        status = _get(port, "/check-status").get("status")
        if status in ("DONE", "STOPPED", "TUNER_NO_MORE_TRIAL"):
            return True
        return status == "RUNNING" and bool(_get(port, "/trial-jobs"))
    except (OSError, ValueError):
        return False


def _nnictl_env() -> tuple[Path, dict[str, str]]:
    from .compat import node_options_for_loopback

    exe = Path(sys.executable).with_name("nnictl")
    env = {**os.environ, "NODE_OPTIONS": node_options_for_loopback(os.environ.get("NODE_OPTIONS")),
           "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           # nnictl imports pkg_resources (pinned setuptools keeps it); its deprecation notice is noise here
           "PYTHONWARNINGS": ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                    "ignore:pkg_resources is deprecated:UserWarning"]))}
    return exe, env


def run_nnictl(nnictl_args: Sequence[str], startup_wait: float | None = None) -> int:
    """``nnictl`` with the checks above; returns the exit code (see :mod:`nni_eas.nnictl`)."""
    from .config import ConfigError

    args = list(nnictl_args)
    exe, env = _nnictl_env()
    if not exe.exists():
        print(f"nni-eas nnictl: error: nnictl not found next to {sys.executable}; install nni in this environment",
              file=sys.stderr)
        return 2
    creating = bool(args) and args[0] == "create"
    config = _option(args, "--config", "-c") if creating else None
    if config is not None:
        from .preflight import TUNERS, check_experiment
        from .config import load_yaml

        try:
            data = load_yaml(config)
            tuner = (data.get("tuner") or {}).get("className") if isinstance(data, dict) else None
            if tuner in TUNERS or (isinstance(tuner, str) and tuner.startswith("nni_eas.")):
                check_experiment(config)
        except ConfigError as e:
            print(f"nni-eas nnictl: error: {e}\nnothing was started", file=sys.stderr)
            return 2
    rc = subprocess.call([str(exe), *args], env=env)
    if rc != 0 or not creating:
        return rc
    port = int(_option(args, "--port", "-p") or 8080)
    wait = STARTUP_WAIT if startup_wait is None else startup_wait
    deadline = time.monotonic() + wait
    log_dir = _log_dir(port)
    while time.monotonic() < deadline:
        failure = experiment_failure(port, log_dir)
        if failure:
            print(f"nni-eas nnictl: error: {failure}", file=sys.stderr)
            subprocess.call([str(exe), "stop", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
            return 1
        if _started(port):
            return 0
        time.sleep(1)
    print(f"nni-eas nnictl: warning: no trial was started within {wait:.0f} s; the experiment is still running "
          f"(web UI http://127.0.0.1:{port})", file=sys.stderr)
    return 0
