"""``make demo``: the main job, ``strategies/eas.yml``, on scikit-learn's digits (2 CPU cores, minutes).

Starts the nnictl experiment of ``strategies/eas.yml`` (through NNI's Python ``Experiment``,
the same config, tuner and trials that ``nnictl create --config strategies/eas.yml`` runs) in
the foreground and follows it:

1. trial 1 trains the elastic supernet with EAS task dropout (recipe ``eas_ps_small_digits``: progressive shrinking);
2. trial 2 trains the architecture generator against the frozen supernet;
3. the generator answers every deployment scenario (a subset of the digits + a MACs or
   parameter budget) in one forward pass; one trial per scenario extracts the subnet,
   recalibrates BN on the task's images, keeps only the task's classes, measures task top-1,
   exports ONNX (checked against PyTorch) with a model card and its onnxruntime latency.

It prints a progress line per stage, the web UI address (loopback), a table of the scenarios
and where the files are, then stops the experiment (also on Ctrl-C). ``--keep-webui`` leaves
the web UI up until Ctrl-C. Results: ``<out>/eas`` (``scenarios.json``, ``front.json``,
``scenarios.png``, ``models/*.onnx`` + cards, supernet and generator with their curves).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "experiment_config"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "strategies" / "eas.yml"


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m nni_eas.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="nnictl experiment config (default: strategies/eas.yml)")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--port", type=int, default=None, help="web UI port (default: 8080, or a free one if taken)")
    p.add_argument("--epochs", type=int, default=None, help="supernet training epochs (default: the recipe's)")
    p.add_argument("--steps", type=int, default=None, help="generator training steps (default: the config's)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out instead of starting over")
    p.add_argument("--overwrite", action="store_true",
                   help="delete an earlier run in --out instead of moving it aside to <out>/eas.<time>")
    p.add_argument("--keep-webui", action="store_true", help="leave the web UI running until Ctrl-C")
    p.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds (default: 3600)")
    args = p.parse_args(argv)
    for name in ("epochs", "steps", "port"):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f"--{name} must be >= 1, got {v}")
    return args


def _free_port(preferred: int = 8080) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")  # pragma: no cover


def experiment_config(path: str | os.PathLike, out: Path, epochs: int | None = None,
                      steps: int | None = None) -> dict[str, Any]:
    """The nnictl config at ``path`` made runnable from anywhere: code directories absolute,
    trials run with this interpreter, results under ``out``."""
    from .config import ConfigError, load_yaml

    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("tuner"), dict):
        raise ConfigError(f"{path}: not an nnictl experiment config with a tuner section")
    if not isinstance(data.get("trialCommand"), str):
        raise ConfigError(f"{path}: trialCommand: missing (python -m nni_eas.eas.trial)")
    data = copy.deepcopy(data)
    base = path.resolve().parent
    data["trialCodeDirectory"] = str((base / data.get("trialCodeDirectory", ".")).resolve())
    data["tuner"]["codeDirectory"] = str((base / data["tuner"].get("codeDirectory", ".")).resolve())
    cmd = data["trialCommand"].split(" ", 1)
    if cmd[0] == "python":
        data["trialCommand"] = " ".join([sys.executable, *cmd[1:]])
    data["experimentWorkingDirectory"] = str((out / "nni-experiments").resolve())
    args = data["tuner"].setdefault("classArgs", {})
    if not isinstance(args, dict):
        raise ConfigError(f"{path}: tuner.classArgs: expected a mapping of keys to values")
    args["workdir"] = str((out / "eas").resolve())
    if epochs:
        args["epochs"] = epochs
    if steps:
        args.setdefault("generator", {})["steps"] = steps
    return data


def _status_line(trials: list[Any], total: int) -> str:
    done = sum(t.status in ("SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED", "EARLY_STOPPED") for t in trials)
    running = sum(t.status == "RUNNING" for t in trials)
    failed = sum(t.status == "FAILED" for t in trials)
    return f"{done}/{total} trials finished, {running} running" + (f", {failed} FAILED" if failed else "")


def _stage(workdir: Path) -> str:
    try:
        st = json.loads((workdir / "eas_state.json").read_text())
    except (OSError, ValueError):
        return "supernet"
    stages = ["generator", "scenarios"] if st["config"].get("supernet") else ["supernet", "generator", "scenarios"]
    return stages[st["step"]] if st["step"] < len(stages) else "done"


def _intermediate(exp: Any, trial_id: str) -> str:
    try:
        data = exp.get_job_metrics(trial_id).get(trial_id, [])
    except Exception:
        return ""
    inter = [m for m in data if m.type == "PERIODICAL"]
    if not inter:
        return ""
    last = inter[-1].data
    if isinstance(last, dict):
        shown = {k: v for k, v in last.items() if isinstance(v, float)}
        return f" (report {len(inter)}: " + ", ".join(f"{k} {v:.3f}" for k, v in list(shown.items())[:3]) + ")"
    return ""


_LABEL = {"supernet": "[1/3] training the supernet with task dropout",
          "generator": "[2/3] training the architecture generator",
          "scenarios": "[3/3] specializing every scenario (one trial each)",
          "done": "finished"}


def _set_aside(out: Path, overwrite: bool) -> None:
    """Starting over never deletes an earlier run unless asked: it is moved to ``<out>/eas.<time>``."""
    old = [p for p in (out / "eas", out / "nni-experiments") if p.exists()]
    if not old:
        return
    if overwrite:
        for p in old:
            shutil.rmtree(p)
        return
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for p in old:
        target = p.with_name(f"{p.name}.{stamp}")
        n = 1
        while target.exists():
            target, n = p.with_name(f"{p.name}.{stamp}-{n}"), n + 1
        p.rename(target)
        print(f"an earlier run was moved to {target} (--overwrite deletes it instead, --resume continues it)")


def run(args: argparse.Namespace) -> int:
    from nni.experiment import Experiment, ExperimentConfig

    from . import compat  # noqa: F401  (applies the web-UI-on-loopback and metric fixes)
    from .eas.core import EASCore
    from .nnictl import experiment_failure

    from .preflight import check_experiment

    out = Path(args.out)
    workdir = out / "eas"
    data = experiment_config(args.config, out, args.epochs, args.steps)
    # validate everything first (the same checks as nni-eas nnictl and the tuner): a bad config
    # fails here, before NNI starts and before any earlier result is touched
    plan = check_experiment(data, check_trials=False)
    if plan.tuner.kind != "eas":
        from .config import ConfigError

        raise ConfigError(f"{args.config}: the demo runs the EAS pipeline; tuner.className must be nni_eas.tuners.EASTuner")
    if not args.resume:
        _set_aside(out, overwrite=args.overwrite)
    out.mkdir(parents=True, exist_ok=True)
    core = EASCore(plan.tuner.config, workdir, resume=args.resume)
    if core.done:
        print(f"{workdir} holds a finished run: its results are below (run without --resume to start over)")
        print("\n" + core.table())
        return 0
    total = data["maxTrialNumber"] = core.remaining_evaluations()  # NNI reports DONE after exactly this many
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    port = args.port or _free_port()
    exp = Experiment(ExperimentConfig(**data))
    t0 = time.perf_counter()
    url = f"http://127.0.0.1:{port}"
    print(f"nni-eas demo: {args.config} on digits, {total} trials; results in {workdir.resolve()}")
    exp.start(port=port, debug=False)
    print(f"web UI: {url}  (trials, learning curves, metrics: top1 / macs / params / latency_ms / classes / budget)")
    status, shown, last_line = "RUNNING", None, ""
    try:
        from tqdm import tqdm

        tty = sys.stdout.isatty()   # a live bar in a terminal; one line per change in a log
        bar = tqdm(total=total, unit="trial", dynamic_ncols=True, leave=True, disable=not tty)
        while True:
            status = exp.get_status()
            trials = exp.list_trial_jobs() or []
            stage = _stage(workdir)
            if stage != shown:
                (bar.write if tty else print)(_LABEL.get(stage, stage))
                shown = stage
            finished = sum(t.status in ("SUCCEEDED", "FAILED", "USER_CANCELED", "SYS_CANCELED") for t in trials)
            bar.n = finished
            running = [t for t in trials if t.status == "RUNNING"]
            line = _status_line(trials, total) + (_intermediate(exp, running[0].trialJobId) if running and stage != "scenarios" else "")
            if line != last_line:
                bar.set_postfix_str(line, refresh=False)
                if not tty:
                    print(f"  [{time.perf_counter() - t0:5.0f} s] {line}", flush=True)
                last_line = line
            bar.refresh()
            failure = experiment_failure(port)
            if failure:
                bar.close()
                print(f"\nerror: {failure}", file=sys.stderr)
                return 1
            if status in ("DONE", "ERROR", "STOPPED") or (stage == "done" and not running):
                break
            if time.perf_counter() - t0 > args.timeout:
                bar.write(f"timeout after {args.timeout:.0f} s")
                break
            time.sleep(2)
        bar.close()
        core = EASCore(plan.tuner.config, workdir, resume=True)
        seconds = time.perf_counter() - t0
        if not core.done:
            failed = [t for t in (exp.list_trial_jobs() or []) if t.status == "FAILED"]
            print(f"\nthe experiment ended ({status}) before the pipeline finished (stage {_stage(workdir)}); "
                  f"{len(failed)} failed trial(s): see their logs under {out / 'nni-experiments'}", file=sys.stderr)
            return 1
        print("\n" + core.table())
        gen_ms = core.generate_seconds * 1e3 if core.generate_seconds is not None else float("nan")
        print(f"\n{len(core.scenarios)} scenarios answered by one generator pass in {gen_ms:.1f} ms (+ budget repair); "
              f"pipeline {seconds:.0f} s")
        print(f"results: {workdir.resolve()}\n"
              f"  scenarios     {workdir / 'scenarios.json'}  (+ front.json / .csv, scenarios.png)\n"
              f"  ONNX + cards  {workdir / 'models'}\n"
              f"  supernet      {workdir / 'supernet' / 'supernet.pt'}  (curves.png)\n"
              f"  generator     {workdir / 'generator' / 'generator.pt'}  (generator_curves.png)\n"
              f"  web UI        {url}")
        if args.keep_webui:
            print("the web UI stays up; Ctrl-C stops the experiment")
            while True:
                time.sleep(3600)
        return 0
    finally:
        try:
            exp.stop()
        except Exception:  # pragma: no cover - already stopped
            pass


def _interrupt_on_signals() -> None:
    """Ctrl-C and ``kill`` both end in the ``finally`` that stops the experiment. SIGINT is
    re-armed explicitly: a shell starts background jobs with SIGINT ignored, and Python keeps
    that, so the demo would otherwise leave NNI's manager and trials running."""
    import signal

    def _raise(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, _raise)
    signal.signal(signal.SIGTERM, _raise)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _interrupt_on_signals()
    for noisy in ("nni", "nni.runtime", "nni.experiment"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    args = _parse(argv)
    from .config import ConfigError

    try:
        return run(args)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the experiment is stopped; finished steps are kept in {args.out}/eas "
              "(run again with --resume to continue)", file=sys.stderr)
        return 130
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
