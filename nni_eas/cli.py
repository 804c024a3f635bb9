"""The ``nni-eas`` command line: export, latency, specialize, eas, nnictl.

Subcommands in the style of ``nnictl`` / timm's scripts (argparse, one parser per command, every
option documented in ``--help``)::

    nni-eas export      --supernet S.pt --arch ARCH -o model.onnx
    nni-eas latency     build | show | predict | measure
    nni-eas specialize  --supernet S.pt --front front.json --macs 150M [--classes 3,5,7] -o model.onnx
    nni-eas eas         --supernet S.pt --generator G.pt --classes 0,1 --macs 2M [-o model.onnx]
    nni-eas nnictl      create --config strategies/eas.yml --port 8080

Exit codes, one table for every command (the same table is in docs/deployment.md, section 6):

====  ==========================================================================================
code  meaning
====  ==========================================================================================
0     success (``nni-eas nnictl``: the experiment started and its tuner connected)
1     a failure while running, e.g. an ONNX export whose outputs differ from PyTorch
      (``nni-eas nnictl``: the experiment ended in ERROR or its dispatcher died; the
      dispatcher's error is printed)
2     bad usage or input: unknown option, malformed arch, impossible budget, a missing,
      unreadable, truncated or foreign input file (supernet, generator, front, latency
      table, model); the message names the option (or field) and the allowed values
      (``nni-eas nnictl``: the config is invalid, nothing started)
130   interrupted (Ctrl-C)
====  ==========================================================================================

Set ``NNI_EAS_DEBUG=1`` for tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "build_parser", "parse_size", "parse_arch", "parse_classes"]

PROG = "nni-eas"
HEAVY_NOTE = ("Latency numbers are sensitive to other load: on a shared machine run heavy commands under "
              "`flock /tmp/nni-eas-heavy.lock nni-eas ...`.")


class UsageError(ValueError):
    """Bad input on the command line (exit code 2)."""


# --------------------------------------------------------------------------------------------
# value parsers
# --------------------------------------------------------------------------------------------
def parse_size(text: str) -> float:
    """``150M`` -> 1.5e8, ``1.2G``, ``3e8``, ``500k`` (decimal suffixes K, M, G, T)."""
    from .config import size_value

    value = size_value(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"cannot parse {text!r} as a size; use e.g. 150M, 1.2G, 3e8, 500k "
                                         "(suffixes K, M, G, T)")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _int_list(text: str) -> list[int]:
    try:
        return [int(t) for t in re.split(r"[,\s]+", text.strip()) if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _float_list(text: str) -> list[float]:
    try:
        return [float(t) for t in re.split(r"[,\s]+", text.strip()) if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _fmt_size(v: float) -> str:
    for suffix, mult in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if v >= mult:
            return f"{v / mult:.4g}{suffix}"
    return f"{v:.4g}"


ARCH_FORMS = ('a JSON arch dict \'{"ks": [...], "e": [...], "d": [...], "r": 224, "w": 1.0}\', '
              "a NAT string (23 digits), a genome (comma-separated choice indices, or OFA²'s 46 values), "
              "or @file.json holding one of these")


def parse_arch(spec: str, cfg) -> "Any":
    """An :class:`~nni_eas.spaces.Arch` of ``cfg`` from any of the forms in :data:`ARCH_FORMS`."""
    from . import encodings as enc
    from .config import ConfigError
    from .spaces import Arch, validate_arch

    text = spec.strip()
    where = "--arch"
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise UsageError(f"--arch: cannot read {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"--arch: {path} is not a text file; give {ARCH_FORMS}") from None
        where = f"--arch {path}"
    try:
        if text.startswith("{"):
            data = json.loads(text)
            while isinstance(data, dict) and "ks" not in data and isinstance(data.get("arch"), dict):
                data = data["arch"]  # a front entry, or a model card (card["arch"]["arch"])
            return validate_arch(cfg, Arch.from_dict(data))
        if text.startswith("["):
            values = json.loads(text)
        elif re.fullmatch(r"\d{23}", text):
            return enc.arch_from_nat(cfg, text)
        elif re.fullmatch(r"[\d.]+([,\s]+[\d.]+)*", text):
            values = [float(v) for v in re.split(r"[,\s]+", text)]
        else:
            raise UsageError(f"{where}: cannot read {spec[:60]!r} as an architecture; give {ARCH_FORMS}")
        if not all(float(v).is_integer() for v in values):
            raise UsageError(f"{where}: a genome holds integers, got {values[:8]}...")
        values = [int(v) for v in values]
        if len(values) == enc.genome_length(cfg):
            return enc.arch_from_genome(cfg, values)
        if len(values) == 46:
            return enc.arch_from_ofa2(cfg, values)
        raise UsageError(f"{where}: a genome of space {cfg.name!r} has {enc.genome_length(cfg)} choice indices "
                         f"(or 46 values in OFA²'s encoding); got {len(values)} numbers")
    except json.JSONDecodeError as e:
        raise UsageError(f"{where}: not valid JSON ({e}); give {ARCH_FORMS}") from None
    except ConfigError as e:
        raise UsageError(f"{where}: {e}") from None


def parse_classes(text: str, names: Sequence[str]) -> list[int]:
    """``3,5,7`` (indices) or ``cat,dog`` (names of the supernet's classes) -> indices."""
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    index = {n: i for i, n in enumerate(names)}
    out = []
    for t in tokens:
        if t in index:
            out.append(index[t])
        elif re.fullmatch(r"\d+", t) and int(t) < len(names):
            out.append(int(t))
        else:
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise UsageError(f"--classes: {t!r} is neither a class name nor an index in 0..{len(names) - 1}; "
                             f"class names: {shown}")
    if not out:
        raise UsageError("--classes: give at least one class (indices like 3,5,7 or class names)")
    if len(set(out)) != len(out):
        raise UsageError(f"--classes: classes repeat in {text!r}")
    return out


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------
def _load_supernet(path: str, option: str = "--supernet"):
    from .checkpoint import CheckpointError, load_supernet

    hint = "train one first, or pass the file written by nni_eas.checkpoint.save_supernet"
    if Path(path).is_dir():
        raise UsageError(f"{option}: {path} is a directory, not a supernet checkpoint ({hint})")
    if not Path(path).is_file():
        raise UsageError(f"{option}: checkpoint not found: {path} ({hint})")
    try:
        return load_supernet(path)
    except CheckpointError as e:
        raise UsageError(f"{option}: {e}") from None


def _load_generator(path: str):
    from .checkpoint import CheckpointError
    from .eas import load_generator

    try:
        return load_generator(path)
    except CheckpointError as e:
        raise UsageError(f"--generator: {e}") from None


def _load_front(path: str) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "front.json"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--front: front file not found: {p}") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"--front: {p} is not valid JSON: {e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"--front: {p} is not a text file (expected a front.json written by a search, format "
                         "'nni-eas-front/1')") from None
    except OSError as e:
        raise UsageError(f"--front: cannot read {p}: {e.strerror or e}") from None
    if not isinstance(data, dict) or data.get("format") != "nni-eas-front/1" or not isinstance(data.get("entries"), list):
        raise UsageError(f"--front: {p} is not an nni-eas front (expected format 'nni-eas-front/1' with a list of "
                         "entries, see docs/architecture.md)")
    for i, e in enumerate(data["entries"]):
        if not isinstance(e, dict) or not isinstance(e.get("arch"), dict):
            raise UsageError(f"--front: entry {i} of {p} has no 'arch' dict")
    data["_path"] = str(p)
    return data


def _front_arch(front: dict[str, Any], index: int, cfg):
    from .config import ConfigError
    from .spaces import Arch, validate_arch

    n = len(front["entries"])
    if not 0 <= index < n:
        allowed = f"allowed: 0..{n - 1}" if n else "it has none"
        raise UsageError(f"--index: {index} is out of range; {front['_path']} has {n} entries ({allowed})")
    entry = front["entries"][index]
    try:
        return validate_arch(cfg, Arch.from_dict(entry["arch"])), entry
    except ConfigError as e:
        raise UsageError(f"--front: entry {index} does not fit space {cfg.name!r}: {e}") from None


TABLE_FORMS = ("a table built by `nni-eas latency build` (YAML), a folder of OFA <res>_lookup_table.yaml files, "
               "or NSGANetV2's LUT YAML")


def _load_table(path: str, space=None, option: str = "--lut"):
    from .config import ConfigError
    from .export import LatencyTableError, load_latency_table

    try:
        return load_latency_table(path, space)
    except (ConfigError, LatencyTableError) as e:
        raise UsageError(f"{option}: {e}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{option}: {path} is not a text file; expected {TABLE_FORMS}") from None
    except OSError as e:
        raise UsageError(f"{option}: cannot read {path}: {e.strerror or e}; expected {TABLE_FORMS}") from None


def _check_output(path: str, option: str = "-o/--output") -> None:
    p = Path(path)
    if p.suffix != ".onnx":
        raise UsageError(f"{option}: the model file must end in .onnx, got {path!r}")
    if p.is_dir():
        raise UsageError(f"{option}: {path} is a directory; give a file name ending in .onnx")


def _full_classes(classes, num_classes: int) -> bool:
    """A front entry (or card) made for the supernet's full class set."""
    return classes is None or list(classes) == list(range(num_classes))


def _add_runtime_options(p: argparse.ArgumentParser, runs: int = 50) -> None:
    g = p.add_argument_group("onnxruntime timing")
    g.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                   help="intra-op threads (default: %(default)s; recorded in the device description)")
    g.add_argument("--batch-size", type=_positive_int, default=1, metavar="N", help="batch size (default: %(default)s)")
    g.add_argument("--warmup", type=int, default=10, metavar="N", help="untimed runs first (default: %(default)s)")
    g.add_argument("--runs", type=_positive_int, default=runs, metavar="N",
                   help="timed runs; the median is reported with p90 and std (default: %(default)s)")


def _add_deploy_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", required=True, metavar="FILE.onnx",
                   help="ONNX file to write; the model card goes beside it as FILE.card.json")
    p.add_argument("--classes", metavar="LIST",
                   help="keep only these classes' logits, in this order: indices (3,5,7) or class names from the checkpoint")
    p.add_argument("--data", metavar="DATASET",
                   help="recalibrate BatchNorm on this dataset's train split and record top-1 on its test split "
                        "(datasets of nni_eas.data: digits, cifar10, fashion_mnist, omniglot, flowers17)")
    p.add_argument("--calib-images", type=_positive_int, default=2000, metavar="N",
                   help="images for BN recalibration (default: %(default)s)")
    p.add_argument("--dynamic-batch", action="store_true", help="export with a dynamic batch axis (default: static)")
    p.add_argument("--opset", type=int, default=18, metavar="N", help="ONNX opset (default: %(default)s)")
    p.add_argument("--atol", type=_positive_float, default=1e-4, metavar="X",
                   help="largest |onnxruntime - torch| output difference accepted (default: %(default)s)")
    p.add_argument("--no-latency", action="store_true", help="do not time the exported model")
    p.add_argument("--lut", metavar="TABLE",
                   help="also record this latency table's prediction in the card (a table of `nni-eas latency build`, "
                        "a folder of OFA <res>_lookup_table.yaml files, or NSGANetV2's LUT)")
    _add_runtime_options(p)


def _deploy(args, supernet, info, arch, front=None, extra=None) -> int:
    from .export import deploy_subnet

    from .export import LatencyTableError

    _check_output(args.output)
    classes = parse_classes(args.classes, info["classes"]) if args.classes else None
    table = _load_table(args.lut, supernet.config) if args.lut else None
    if table is not None:
        try:
            table.predict(arch, supernet.config)
        except LatencyTableError as e:
            raise UsageError(f"--lut: the table cannot predict this arch of space {supernet.config.name!r}: {e}") from None
    res = deploy_subnet(
        supernet, arch, args.output, classes=classes, class_names=info["classes"], supernet_path=info["path"],
        supernet_sha256=info["sha256"], data=args.data, calib_images=args.calib_images,
        batch_size=args.batch_size, dynamic_batch=args.dynamic_batch, opset=args.opset, atol=args.atol,
        measure=not args.no_latency, threads=args.threads, warmup=args.warmup, runs=args.runs, table=table,
        front=front, extra=extra,
    )
    c = res.card
    print(f"wrote {res.onnx_path} ({c.onnx['size_bytes'] / 1e6:.2f} MB, opset {c.onnx['opset']}, "
          f"max |ort - torch| = {c.onnx['check']['max_abs_diff']:.2e})")
    print(f"wrote {res.card_path}")
    print(f"  arch        {json.dumps(c.arch.arch) if c.arch else '-'}")
    print(f"  classes     {c.classes.num_outputs}: {', '.join(c.classes.names[:12])}{' ...' if c.classes.num_outputs > 12 else ''}")
    print(f"  MACs        {_fmt_size(c.costs.macs)}   params {_fmt_size(c.costs.params)}")
    if c.latency:
        print(f"  latency     {c.latency.median_ms:.3f} ms median (p90 {c.latency.p90_ms:.3f}, std {c.latency.std_ms:.3f}) "
              f"on {c.latency.device_key}")
    if c.predicted_latency:
        print(f"  predicted   {c.predicted_latency.ms:.3f} ms ({c.predicted_latency.table})")
    if c.accuracy:
        print(f"  top-1       {100 * c.accuracy.top1:.2f} % on {c.accuracy.images} {c.accuracy.dataset} {c.accuracy.split} images")
    return 0


# --------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------
def cmd_export(args) -> int:
    supernet, info = _load_supernet(args.supernet)
    cfg = supernet.config
    front = None
    if args.front is not None:
        data = _load_front(args.front)
        arch, entry = _front_arch(data, args.index, cfg)
        made_for = entry.get("classes")
        if not _full_classes(made_for, cfg.num_classes):
            wanted = parse_classes(args.classes, info["classes"]) if args.classes else None
            if wanted != list(made_for):
                raise UsageError(f"--index {args.index}: entry {args.index} of {data['_path']} was made for classes "
                                 f"{list(made_for)} (its metrics are for that task); export it with --classes "
                                 f"{','.join(map(str, made_for))}, or pass its arch with --arch to export it for "
                                 f"{'all classes' if wanted is None else f'classes {wanted}'}")
        front = {"path": data["_path"], "index": args.index, "metrics": entry.get("metrics")}
    else:
        arch = parse_arch(args.arch, cfg)
    return _deploy(args, supernet, info, arch, front)


def cmd_specialize(args) -> int:
    import numpy as np

    from .costs import CostModel
    from .encodings import arch_to_genome
    from .spaces import min_arch

    if args.macs is None and args.params is None and args.latency_ms is None:
        raise UsageError("give a budget: --macs SIZE, --params SIZE and/or --latency-ms MS (with --lut)")
    if args.latency_ms is not None and not args.lut:
        raise UsageError("--latency-ms needs --lut TABLE (a latency table of the target device)")
    _check_output(args.output)
    supernet, info = _load_supernet(args.supernet)
    cfg = supernet.config
    classes = parse_classes(args.classes, info["classes"]) if args.classes else None
    k = len(classes) if classes is not None else cfg.num_classes
    cm = CostModel(cfg, num_classes=k)
    table = _load_table(args.lut, cfg) if args.lut else None
    # the smallest subnet bounds every budget from below
    smallest = min_arch(cfg)
    floors = {"macs": cm.macs(smallest), "params": cm.params(smallest)}
    if table is not None:
        floors["latency_ms"] = table.min_latency(cfg)[0]
    budgets = {"macs": args.macs, "params": args.params, "latency_ms": args.latency_ms}
    unit = {"macs": " MACs", "params": " parameters", "latency_ms": " ms"}
    for name, value in budgets.items():
        if value is not None and name in floors and value < floors[name]:
            shown = f"{floors[name]:.3f}" if name == "latency_ms" else _fmt_size(floors[name])
            raise UsageError(f"--{name.replace('_', '-')} {_fmt_size(value) if name != 'latency_ms' else value}: below the "
                             f"smallest subnet of space {cfg.name!r} ({shown}{unit[name]}"
                             f"{' on ' + table.device.name if name == 'latency_ms' else ''}"
                             f"{f' with {k} classes' if name != 'latency_ms' else ''}); allowed: "
                             f"--{name.replace('_', '-')} >= {shown}")
    front = _load_front(args.front)
    if front.get("supernet_sha256") and front["supernet_sha256"] != info["sha256"]:
        print(f"{PROG} specialize: warning: {front['_path']} was searched on another supernet "
              f"(sha256 {front['supernet_sha256'][:12]}..., this one {info['sha256'][:12]}...)", file=sys.stderr)
    # An entry made for a task (its `classes`) only serves that task: its metrics are the task's.
    # Entries made for the full class set (classes null, or all of them) serve any --classes.
    candidates = []
    for i, entry in enumerate(front["entries"]):
        made_for = entry.get("classes")
        if not _full_classes(made_for, cfg.num_classes) and (classes is None or list(made_for) != classes):
            continue
        arch, _ = _front_arch(front, i, cfg)
        candidates.append((i, arch, entry))
    if not candidates:
        tasks = sorted({tuple(e.get("classes")) for e in front["entries"]
                        if not _full_classes(e.get("classes"), cfg.num_classes)})
        shown = "; ".join(",".join(map(str, t)) for t in tasks[:5]) + ("; ..." if len(tasks) > 5 else "")
        if classes is None:
            raise UsageError(f"--classes: every entry of {front['_path']} was made for a subset of the "
                             f"{cfg.num_classes} classes (tasks: {shown}); give --classes for one of those tasks, "
                             "or a front searched for all classes")
        raise UsageError(f"--classes: no entry of {front['_path']} serves classes {classes}; its entries serve "
                         f"all classes or these tasks: {shown or 'none'}")
    metric = args.metric
    have = sorted({m for _, _, e in candidates for m in (e.get("metrics") or {})})
    if not any(metric in (e.get("metrics") or {}) for _, _, e in candidates):
        raise UsageError(f"--metric: no front entry has metric {metric!r}; available: {', '.join(have) or 'none'}")
    genomes = np.stack([arch_to_genome(cfg, a) for _, a, _ in candidates])
    costs = cm.costs(genomes)
    values = {"macs": costs.macs.astype(float), "params": costs.params.astype(float)}
    if table is not None:
        values["latency_ms"] = table.predict_genomes(genomes, cfg)
    ok = np.ones(len(candidates), dtype=bool)
    for name, value in budgets.items():
        if value is not None:
            ok &= values[name] <= value
    if not ok.any():
        parts = [f"--{n.replace('_', '-')} {_fmt_size(v) if n != 'latency_ms' else v}" for n, v in budgets.items() if v is not None]
        cheapest = {n: (float(values[n].min())) for n, v in budgets.items() if v is not None}
        shown = ", ".join(f"{n} {_fmt_size(v) if n != 'latency_ms' else f'{v:.3f} ms'}" for n, v in cheapest.items())
        raise UsageError(f"no architecture of {front['_path']} fits {' and '.join(parts)} (cheapest entries: {shown}); "
                         "raise the budget or search with a lower one")
    sign = 1.0 if args.maximize else -1.0
    scores = np.array([sign * float((e.get("metrics") or {}).get(metric, np.nan)) for _, _, e in candidates])
    scores[~ok | ~np.isfinite(scores)] = -np.inf
    best = int(np.argmax(scores)) if np.isfinite(scores).any() else int(np.flatnonzero(ok)[0])
    index, arch, entry = candidates[best]
    chosen = {n: float(values[n][best]) for n in values}
    print(f"chose entry {index} of {front['_path']}: {metric} = {(entry.get('metrics') or {}).get(metric)}, "
          f"MACs {_fmt_size(chosen['macs'])}, params {_fmt_size(chosen['params'])}"
          + (f", predicted latency {chosen['latency_ms']:.3f} ms" if "latency_ms" in chosen else ""))
    extra = {"budget": {n: v for n, v in budgets.items() if v is not None}, "selection_metric": metric,
             "maximize": args.maximize, "candidates": len(candidates), "feasible": int(ok.sum())}
    return _deploy(args, supernet, info, arch, {"path": front["_path"], "index": index, "metrics": entry.get("metrics")},
                   extra)


def cmd_latency_build(args) -> int:
    from .export import build_latency_table

    if args.supernet:
        supernet, _ = _load_supernet(args.supernet)
        space, num_classes = supernet.config, args.num_classes or supernet.config.num_classes
    else:
        from .spaces import load_space_config

        space, num_classes = load_space_config(args.space), args.num_classes
    print(f"building a latency table of {space.name} on this machine "
          f"(threads {args.threads}, batch {args.batch_size}); {HEAVY_NOTE}", flush=True)

    def progress(done, total, key, ms):
        if args.verbose or done == total or done % 25 == 0:
            print(f"  [{done}/{total}] {key}: {ms:.4f} ms", flush=True)

    table = build_latency_table(space, resolutions=args.resolutions, widths=args.widths, num_classes=num_classes,
                                batch_size=args.batch_size, threads=args.threads, warmup=args.warmup, runs=args.runs,
                                rounds=min(args.rounds, args.runs), calibrate=not args.no_calibrate,
                                opset=args.opset, progress=progress)
    table.save(args.output)
    print(f"wrote {args.output}: {len(table)} layers at resolutions {', '.join(map(str, table.resolutions))} "
          f"in {table.meta['build_seconds']} s (export {table.meta['export_seconds']} s, timing "
          f"{table.meta['measure_seconds']} s, calibration {table.meta['calibration_seconds']} s); "
          f"device: {table.device.key}")
    return 0


def cmd_latency_show(args) -> int:
    from .export import LatencyTableError

    table = _load_table(args.table, args.space, "TABLE")
    kinds: dict[str, int] = {}
    for t in table.entries.values():
        for key in t:
            kinds[key.split("-", 1)[0]] = kinds.get(key.split("-", 1)[0], 0) + 1
    print(f"table       {args.table}")
    print(f"source      {table.source}")
    print(f"scheme      {table.scheme} (statistic: {table.statistic}, overhead {table.overhead_ms:.4f} ms per inference)")
    print(f"device      {table.device.key}")
    print(f"space       {table.space.name if table.space else '-'}")
    print(f"resolutions {', '.join(map(str, table.resolutions)) or 'any (keys carry the sizes)'}")
    print(f"calibration {', '.join(f'{r}: x{v:.3f}' for r, v in sorted(table.scale.items())) or 'none (plain sum of entries)'}")
    print(f"entries     {len(table)}: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    for key in ("build_seconds", "layers", "runs", "rounds", "created"):
        if key in table.meta:
            print(f"{key:<11} {table.meta[key]}")
    if table.space is not None:
        from .spaces import max_arch, min_arch

        cfg = table.space
        rs = [r for r in (table.resolutions or cfg.resolutions) if r in cfg.resolutions]
        for r in rs[:: max(1, len(rs) // 5)]:
            try:
                lo, hi = table.predict(min_arch(cfg, r)), table.predict(max_arch(cfg, r))
            except LatencyTableError:
                continue
            print(f"  r={r:<4} smallest subnet {lo:8.3f} ms   largest subnet {hi:8.3f} ms")
    return 0


def cmd_latency_predict(args) -> int:
    from .spaces import load_space_config

    table = _load_table(args.table, args.space)
    if args.supernet:
        cfg = _load_supernet(args.supernet)[0].config
    elif args.space:
        cfg = load_space_config(args.space)
    elif table.space is not None:
        cfg = table.space
    else:
        raise UsageError("--space: the table records no space; give --space NAME")
    if args.arch is None and args.front is None:
        raise UsageError("give --arch ARCH or --front FILE [--index N]")
    items = []
    if args.front is not None:
        front = _load_front(args.front)
        indices = [args.index] if args.index is not None else range(len(front["entries"]))
        for i in indices:
            items.append((f"entry {i}", _front_arch(front, i, cfg)[0]))
    for spec in args.arch or []:
        items.append((spec if len(spec) < 40 else spec[:37] + "...", parse_arch(spec, cfg)))
    out = []
    for label, arch in items:
        ms = table.predict(arch, cfg, calibrated=not args.uncalibrated)
        out.append({"arch": arch.to_dict(), "latency_ms": ms, "label": label})
        if not args.json:
            print(f"{ms:10.4f} ms  {label}")
            if args.breakdown:
                for key, v in table.breakdown(arch, cfg):
                    print(f"    {v:9.4f}  {key}")
    if args.json:
        print(json.dumps({"table": table.source, "device": table.device.key, "predictions": out}, indent=2))
    return 0


def cmd_latency_measure(args) -> int:
    from .export import make_session, measure_latency

    results = []
    for model in args.models:
        if not Path(model).is_file():
            raise UsageError(f"MODEL.onnx: model not found: {model}" if not Path(model).is_dir()
                             else f"MODEL.onnx: {model} is a directory, not an ONNX file")
        try:
            make_session(model)
        except Exception as e:  # onnxruntime's InvalidProtobuf, InvalidGraph, NoSuchFile, ...
            raise UsageError(f"MODEL.onnx: {model} is not an ONNX model onnxruntime can load: "
                             f"{type(e).__name__}: {str(e)[:300]}") from None
        r = measure_latency(model, batch_size=args.batch_size, threads=args.threads, warmup=args.warmup, runs=args.runs)
        results.append({"model": model, **r.model_dump(mode="json"), "device_key": r.device.key})
        if not args.json:
            print(f"{r.median_ms:9.3f} ms median  p90 {r.p90_ms:.3f}  std {r.std_ms:.3f}  ({r.runs} runs)  {model}")
    if args.json:
        print(json.dumps(results, indent=2))
    elif results:
        print(f"device: {results[0]['device_key']}")
    return 0


# --------------------------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------------------------
class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog=PROG, formatter_class=_Formatter,
                                description="nni-eas: deploy specialized subnets of a once-for-all supernet.",
                                epilog="Run `nni-eas COMMAND --help` for a command's options. " + HEAVY_NOTE)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # export
    e = sub.add_parser("export", formatter_class=_Formatter, help="export one arch of a supernet to ONNX + model card",
                       description="Extract an architecture from a trained supernet file, export it to ONNX (checked "
                                   "against PyTorch with onnxruntime), time it, and write a model card beside it.\n\n"
                                   f"ARCH forms: {ARCH_FORMS}.",
                       epilog="example: nni-eas export --supernet supernet.pt --front front.json --index 3 -o model.onnx")
    e.add_argument("--supernet", required=True, metavar="FILE", help="supernet checkpoint (nni_eas.checkpoint.save_supernet)")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", metavar="ARCH", help="the architecture (see ARCH forms above)")
    src.add_argument("--front", metavar="FILE", help="a front.json of a search; pick an entry with --index")
    e.add_argument("--index", type=int, default=0, metavar="N", help="entry of --front to export (default: %(default)s)")
    _add_deploy_options(e)
    e.set_defaults(func=cmd_export)

    # specialize
    s = sub.add_parser("specialize", formatter_class=_Formatter,
                       help="pick the best arch of a front under a budget, specialize it to classes, export it",
                       description="Pick the best architecture of a search front that fits a budget (MACs, "
                                   "parameters, and/or latency predicted by a table), restrict its classifier to "
                                   "the task's classes, optionally recalibrate BatchNorm on task data, and export "
                                   "it to ONNX with a model card. MACs and parameters are recomputed for this "
                                   "supernet and the kept classes; latency budgets charge the full classifier.",
                       epilog="example: nni-eas specialize --supernet s.pt --front front.json --macs 150M --classes 3,5,7 -o task.onnx")
    s.add_argument("--supernet", required=True, metavar="FILE", help="supernet checkpoint")
    s.add_argument("--front", required=True, metavar="FILE", help="front.json (entries with arch and metrics)")
    b = s.add_argument_group("budget (at least one; all given must hold)")
    b.add_argument("--macs", type=parse_size, metavar="SIZE", help="most MACs, e.g. 150M, 1.2G, 3e8")
    b.add_argument("--params", type=parse_size, metavar="SIZE", help="most parameters, e.g. 3M")
    b.add_argument("--latency-ms", type=_positive_float, metavar="MS", help="most predicted latency in ms (needs --lut)")
    s.add_argument("--metric", default="top1", metavar="NAME",
                   help="front metric that ranks feasible entries (default: %(default)s)")
    s.add_argument("--minimize", dest="maximize", action="store_false",
                   help="lower --metric is better (default: higher is better)")
    _add_deploy_options(s)
    s.set_defaults(func=cmd_specialize)

    # latency
    lat = sub.add_parser("latency", formatter_class=_Formatter, help="latency tables: build, show, predict, measure",
                         description="Latency lookup tables and onnxruntime measurements. " + HEAVY_NOTE)
    lsub = lat.add_subparsers(dest="latency_command", metavar="ACTION", required=True)

    lb = lsub.add_parser("build", formatter_class=_Formatter, help="time every layer of a space on this machine",
                         description="Build a per-layer latency table for this machine: every distinct layer "
                                     "configuration of the space (stem, first block, each MBConv configuration, "
                                     "final expand, head, classifier) at the chosen resolutions is exported as a "
                                     "small ONNX model and timed with onnxruntime. " + HEAVY_NOTE)
    where = lb.add_mutually_exclusive_group(required=True)
    where.add_argument("--space", metavar="NAME", help="search-space preset or YAML path")
    where.add_argument("--supernet", metavar="FILE", help="take the space and classes from a supernet checkpoint")
    lb.add_argument("-o", "--output", required=True, metavar="FILE.yaml", help="table to write (YAML)")
    lb.add_argument("--resolutions", type=_int_list, metavar="LIST", help="input sizes, e.g. 160,192,224 (default: all of the space's)")
    lb.add_argument("--widths", type=_float_list, metavar="LIST", help="width multipliers (default: all of the space's)")
    lb.add_argument("--num-classes", type=_positive_int, metavar="N", help="classifier outputs (default: the space's)")
    lb.add_argument("--rounds", type=_positive_int, default=3, metavar="N",
                    help="round-robin passes the timed runs are split into (default: %(default)s)")
    lb.add_argument("--no-calibrate", action="store_true",
                    help="skip timing the smallest/largest subnet of each resolution end to end (the table then "
                         "predicts the plain sum of its layers)")
    lb.add_argument("--opset", type=int, default=18, metavar="N", help="ONNX opset (default: %(default)s)")
    lb.add_argument("-v", "--verbose", action="store_true", help="print every layer")
    _add_runtime_options(lb, runs=30)
    lb.set_defaults(func=cmd_latency_build)

    ls = lsub.add_parser("show", formatter_class=_Formatter, help="summarise a latency table",
                         description="Summarise a latency table: source, device, resolutions, entries, and the "
                                     "predicted latency of the smallest and largest subnets.")
    ls.add_argument("table", metavar="TABLE", help="table YAML, OFA's note10 folder (or one <res>_lookup_table.yaml), or NSGANetV2's LUT")
    ls.add_argument("--space", metavar="NAME", help="space the table describes (default: recorded / the source's)")
    ls.set_defaults(func=cmd_latency_show)

    lp = lsub.add_parser("predict", formatter_class=_Formatter, help="predict subnet latency from a table",
                         description=f"Predict latency as the sum of per-layer table entries.\n\nARCH forms: {ARCH_FORMS}.",
                         epilog="example: nni-eas latency predict --lut shared/reference/ofa/note10 --arch '{...}'")
    lp.add_argument("--lut", dest="table", required=True, metavar="TABLE", help="latency table (see `latency show`)")
    lp.add_argument("--space", metavar="NAME", help="space of the archs (default: the table's)")
    lp.add_argument("--supernet", metavar="FILE", help="take the space from a supernet checkpoint")
    lp.add_argument("--arch", action="append", metavar="ARCH", help="an architecture (repeatable)")
    lp.add_argument("--front", metavar="FILE", help="predict the entries of a front.json")
    lp.add_argument("--index", type=int, metavar="N", help="only this entry of --front")
    lp.add_argument("--breakdown", action="store_true", help="print every layer's entry")
    lp.add_argument("--uncalibrated", action="store_true",
                    help="the plain sum of entries, without the table's per-resolution calibration")
    lp.add_argument("--json", action="store_true", help="print JSON")
    lp.set_defaults(func=cmd_latency_predict)

    lm = lsub.add_parser("measure", formatter_class=_Formatter, help="time ONNX models with onnxruntime",
                         description="Time ONNX files on this machine with onnxruntime (warm-up, then the median of "
                                     "N runs, with p90 and std). " + HEAVY_NOTE)
    lm.add_argument("models", nargs="+", metavar="MODEL.onnx", help="ONNX files")
    lm.add_argument("--json", action="store_true", help="print JSON")
    _add_runtime_options(lm)
    lm.set_defaults(func=cmd_latency_measure)

    # nnictl on loopback
    n = sub.add_parser("nnictl", formatter_class=_Formatter, add_help=False,
                       help="run nnictl with the web UI on 127.0.0.1 and this environment's python for trials",
                       description="`nni-eas nnictl create --config strategies/eas.yml --port 8080`: nnictl itself "
                                   "never imports nni-eas, so its web server would listen on every interface; this "
                                   "runs it with the loopback fix (NNI_EAS_WEBUI_HOST overrides the address) and with "
                                   "this environment's bin/ first on PATH (the configs' trial command is `python`).")
    n.add_argument("nnictl_args", nargs=argparse.REMAINDER, help="nnictl's own arguments")
    n.set_defaults(func=cmd_nnictl)

    # EAS: scenarios -> subnets with a trained generator
    g = sub.add_parser("eas", formatter_class=_Formatter,
                       help="specialize scenarios instantly with a trained EAS generator",
                       description="Answer deployment scenarios with a trained generator (one forward pass) and "
                                   "export each subnet: BN recalibration mode decided on the validation split, "
                                   "task-restricted classifier, ONNX "
                                   "checked against PyTorch, model card. Example:\n  nni-eas eas --supernet "
                                   "runs/demo/eas/supernet/supernet.pt --generator runs/demo/eas/generator/generator.pt "
                                   "--classes 0,1 --macs 2M -o zero_one.onnx")
    g.add_argument("--supernet", required=True, help="trained supernet (.pt)")
    g.add_argument("--generator", required=True, help="trained generator (generator.pt)")
    g.add_argument("--classes", default="all", help="task classes: names or indices, comma separated (default: all)")
    g.add_argument("--macs", type=parse_size, help="MACs budget, e.g. 2M")
    g.add_argument("--params", type=parse_size, help="parameter budget, e.g. 600k")
    g.add_argument("--latency-ms", type=_positive_float, help="latency budget in ms (needs a generator trained on latency_ms)")
    g.add_argument("--latency-table", help="latency table of the space (for --latency-ms)")
    g.add_argument("--data", help="dataset for BN recalibration and task top-1 (default: the supernet's)")
    g.add_argument("-o", "--output", help="ONNX path (default: print the arch only)")
    g.add_argument("--runs", type=_positive_int, default=30, help="onnxruntime latency runs (default: 30)")
    g.add_argument("--json", action="store_true", help="print JSON")
    g.set_defaults(func=cmd_eas)
    return p


def cmd_nnictl(args) -> int:
    return run_nnictl(args.nnictl_args)


def run_nnictl(nnictl_args: Sequence[str]) -> int:
    """``nnictl`` that validates the config first and reports why an experiment died (:mod:`nni_eas.nnictl`)."""
    from .nnictl import run_nnictl as run

    return run(nnictl_args)


def cmd_eas(args) -> int:
    """One scenario through a trained generator: arch in one forward pass, then export."""
    import time

    from .eas import ScenarioSpec, generate, resolve_scenarios
    from .eas.budget import load_tables
    from .encodings import arch_from_genome

    if args.output:
        _check_output(args.output)
    supernet, info = _load_supernet(args.supernet)
    gen, ginfo = _load_generator(args.generator)
    cfg = supernet.config
    if gen.cfg.model_dump() != cfg.model_dump():
        raise UsageError(f"--generator: {args.generator} was trained for another space than --supernet {args.supernet}")
    budget = {k: v for k, v in (("macs", args.macs), ("params", args.params), ("latency_ms", args.latency_ms)) if v}
    if not budget:
        raise UsageError("give at least one budget: --macs, --params or --latency-ms")
    classes = "all" if args.classes == "all" else [c.strip() for c in args.classes.split(",") if c.strip()]
    names = list(info["classes"])
    classes = classes if classes == "all" else [int(c) if c.isdigit() and c not in names else c for c in classes]
    lut = args.latency_table or ginfo["meta"].get("latency_table")
    if "latency_ms" in gen.metrics:
        if not lut:
            raise UsageError("--latency-table: the generator predicts latency_ms; give the latency table of the space "
                             "it was trained with (--latency-table TABLE)")
        where = "--latency-table" if args.latency_table else f"--generator (its recorded latency_table {lut})"
        _load_table(lut, cfg, where)  # a clear message naming the option before load_tables reads it
    tables = load_tables(cfg, gen.metrics, cfg.num_classes, lut)
    (scenario,) = resolve_scenarios([ScenarioSpec(name="cli", classes=classes, budget=budget)], None, names, tables)
    t0 = time.perf_counter()
    (out,) = generate(gen, tables, [scenario])
    ms = (time.perf_counter() - t0) * 1e3
    arch = arch_from_genome(cfg, out.genome)
    result = {"classes": list(scenario.class_names), "budget": scenario.budgets, "arch": arch.to_dict(),
              "predicted": out.costs, "repair_steps": out.repair_steps, "generate_ms": round(ms, 3)}
    if args.output:
        from .export.deploy import deploy_subnet

        dep = deploy_subnet(supernet, arch, args.output, classes=list(scenario.classes), class_names=names,
                            data=args.data or info["meta"].get("dataset"), runs=args.runs, bn="auto",
                            supernet_path=args.supernet, supernet_sha256=info["sha256"], atol=1e-3,
                            extra={"budget": scenario.budgets, "generator": str(args.generator)})
        result.update(onnx=str(dep.onnx_path), card=str(dep.card_path),
                      top1=dep.card.accuracy.top1 if dep.card.accuracy else None,
                      latency_ms=dep.card.latency.median_ms if dep.card.latency else None)
        spec = dep.specialization or {}
        result.update({k: spec.get(k) for k in ("bn", "head", "baseline_top1", "val_top1", "val_baseline_top1")})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"arch for classes {','.join(result['classes'])} within {scenario.budget_text()} "
              f"({result['generate_ms']:.1f} ms, {out.repair_steps} repair steps): {arch.to_dict()}")
        print("predicted: " + ", ".join(f"{k} {v:,.4g}" for k, v in out.costs.items()))
        if args.output:
            print(f"wrote {result['onnx']} and {result['card']}: task top-1 {result['top1']}, "
                  f"latency {result['latency_ms']} ms")
            if result.get("bn"):
                print(f"specialization chosen on validation: BN {result['bn']!r}, classifier {result['head']} "
                      f"(val top-1 {result['val_top1']} vs {result['val_baseline_top1']} with all-class BN; "
                      f"all-class BN on test: {result['baseline_top1']})")
    return 0


def _command_name(args) -> str:
    name = getattr(args, "command", None) or ""
    if name == "latency" and getattr(args, "latency_command", None):
        name += f" {args.latency_command}"
    return f"{PROG} {name}".strip()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (argparse errors: 2, ``--help``: 0)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["nnictl"]:
        return run_nnictl(argv[1:])  # everything after `nnictl` is nnictl's (argparse would eat --options)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, usage errors
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    from .checkpoint import CheckpointError
    from .config import ConfigError
    from .export import ExportCheckError, LatencyTableError

    where = _command_name(args)
    try:
        return int(args.func(args) or 0)
    except (UsageError, ConfigError, LatencyTableError, CheckpointError) as e:  # bad input
        print(f"{where}: error: {e}", file=sys.stderr)
        return 2
    except ExportCheckError as e:
        print(f"{where}: export failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a runtime failure: say what, keep the traceback for debugging
        if os.environ.get("NNI_EAS_DEBUG"):
            traceback.print_exc()
        print(f"{where}: failed: {type(e).__name__}: {e} (set NNI_EAS_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
