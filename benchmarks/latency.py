"""Latency lookup table vs measured end-to-end latency on this machine.

Builds an onnxruntime latency table for a space (every distinct layer timed as its own ONNX
model), then exports random subnets end to end and times them with the same runtime settings,
and reports how well the table's prediction matches: Spearman rank correlation (target >= 0.9)
and mean absolute percentage error (target <= 10 %), for the calibrated prediction (the default;
the table's per-resolution scale is fitted on the smallest and largest subnets, never on the
random ones) and for the plain sum of layers. MACs vs latency is reported
beside it (rank correlation, and the error of the best linear fit latency = a * MACs + b) to show
what a table adds over counting MACs.

Defaults: ``ofa_mbv3_w1.0`` at 160/192/224 px, 50 subnets, one onnxruntime thread, batch 1.
One thread because the machine has 2 cores shared with other engineers: a single-threaded
timing is the least disturbed by their load (and is the mobile-like setting of OFA's tables).
Three resolutions rather than all 34 keep the table build to a few minutes on 2 cores while
still mixing resolutions in the population (which is where MACs alone mis-rank subnets most).

Run it alone (latency is sensitive to other load)::

    flock /tmp/nni-eas-heavy.lock .venv/bin/python benchmarks/latency.py

Writes ``benchmarks/results/latency.json``, ``latency.png`` and the table ``latency.table.yaml``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nni_eas.costs import CostModel  # noqa: E402
from nni_eas.encodings import archs_to_genomes  # noqa: E402
from nni_eas.export import (  # noqa: E402
    Timer,
    build_latency_table,
    describe_device,
    onnx_bytes,
)
from nni_eas.io import atomic_write_json, save_figure  # noqa: E402
from nni_eas.spaces import Arch, build_subnet, load_space_config, sample_arch  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="ofa_mbv3_w1.0", help="search-space preset (default: %(default)s)")
    p.add_argument("--resolutions", default="160,192,224", help="comma-separated input sizes (default: %(default)s)")
    p.add_argument("-n", "--num-subnets", type=int, default=50, help="random subnets to time (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=1, help="batch size (default: %(default)s)")
    p.add_argument("--runs", type=int, default=30, help="timed runs per layer / subnet (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=3, help="round-robin passes the runs are split into (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled subnets (default: %(default)s)")
    p.add_argument("--table", type=Path, default=None,
                   help="reuse a table built earlier on this machine instead of building one")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)")
    return p.parse_args(argv)


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def pearson(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def mape(pred, true) -> float:
    pred, true = np.asarray(pred, float), np.asarray(true, float)
    return float(np.mean(np.abs(pred - true) / true) * 100)


def time_subnets(blobs: list[bytes], batch_size: int, threads: int, runs: int, rounds: int) -> list[np.ndarray]:
    """Round-robin timing of whole networks (each ``runs`` samples, in ``rounds`` passes)."""
    timers = [Timer(b, batch_size, threads) for b in blobs]
    for t in timers:
        t.times(5, 1)
    samples: list[list[float]] = [[] for _ in timers]
    per_round = [runs // rounds + (1 if i < runs % rounds else 0) for i in range(rounds)]
    for n in per_round:
        for i, t in enumerate(timers):
            samples[i] += t.times(0, n)
    return [np.asarray(s) * 1e3 for s in samples]


def plot(path: Path, pred, raw, meas, macs, res, summary: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    colors = {r: c for r, c in zip(sorted(set(res)), ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"])}
    for r in sorted(set(res)):
        m = np.asarray(res) == r
        axes[0].scatter(np.asarray(meas)[m], np.asarray(pred)[m], s=18, color=colors.get(r), label=f"{r} px")
        axes[1].scatter(np.asarray(macs)[m] / 1e6, np.asarray(meas)[m], s=18, color=colors.get(r), label=f"{r} px")
    axes[0].scatter(meas, raw, s=14, marker="x", color="0.55", label="sum of layers (uncalibrated)")
    lo, hi = min(min(pred), min(meas), min(raw)) * 0.9, max(max(pred), max(meas), max(raw)) * 1.05
    axes[0].plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x")
    axes[0].set_xlabel("measured latency (ms, onnxruntime)")
    axes[0].set_ylabel("table-predicted latency (ms)")
    axes[0].set_title(f"table: Spearman {summary['table']['spearman']:.3f}, MAPE {summary['table']['mape_percent']:.1f} % "
                      f"(uncalibrated {summary['table_uncalibrated']['mape_percent']:.1f} %)", fontsize=10)
    axes[1].set_xlabel("MACs (M)")
    axes[1].set_ylabel("measured latency (ms)")
    axes[1].set_title(fontsize=10, label=f"MACs: Spearman {summary['macs']['spearman']:.3f}, linear-fit MAPE {summary['macs']['linear_fit_mape_percent']:.1f} %")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{summary['space']} on {summary['device']['name']}, {summary['device']['intra_op_threads']} thread(s), batch {summary['device']['batch_size']}")
    save_figure(fig, path, dpi=110)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_space_config(args.space)
    resolutions = [int(r) for r in args.resolutions.split(",")]
    device = describe_device(args.threads, 1, args.batch_size)
    print(f"device: {device.key}")

    # 1. the table
    if args.table is not None:
        from nni_eas.export import load_latency_table

        table = load_latency_table(args.table)
        if table.device.key != device.key:
            raise SystemExit(f"--table was measured on another device/settings:\n  {table.device.key}\nthis run:\n  {device.key}")
    else:
        print(f"building the latency table of {cfg.name} at {resolutions} ...", flush=True)

        def progress(done, total, key, ms):
            if done % 25 == 0 or done == total:
                print(f"  {done}/{total} layers timed (last: {key} {ms:.3f} ms)", flush=True)

        table = build_latency_table(cfg, resolutions=resolutions, batch_size=args.batch_size, threads=args.threads,
                                    runs=args.runs, rounds=args.rounds, progress=progress)
        table.save(args.out / "latency.table.yaml")
    meta = table.meta
    print(f"table: {len(table)} layers in {meta.get('build_seconds')} s "
          f"(export {meta.get('export_seconds')} s, timing {meta.get('measure_seconds')} s); "
          f"overhead per inference {table.overhead_ms * 1e3:.1f} us")

    # 2. random subnets, exported and timed end to end
    rng = np.random.default_rng(args.seed)
    archs = []
    for _ in range(args.num_subnets):
        a = sample_arch(cfg, rng)
        archs.append(Arch(**{**a.to_dict(), "r": int(rng.choice(resolutions))}))
    t0 = time.perf_counter()
    blobs = []
    for i, a in enumerate(archs):
        torch.manual_seed(i)
        sub = build_subnet(cfg, a).eval()
        blobs.append(onnx_bytes(sub, torch.zeros(args.batch_size, cfg.in_chans, a.r, a.r)))
        if (i + 1) % 10 == 0:
            print(f"  exported {i + 1}/{len(archs)} subnets", flush=True)
    export_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    times = time_subnets(blobs, args.batch_size, args.threads, args.runs, args.rounds)
    measure_s = time.perf_counter() - t0

    # 3. compare
    genomes = archs_to_genomes(cfg, archs)
    pred = table.predict_genomes(genomes, cfg)
    raw = table.predict_genomes(genomes, cfg, calibrated=False)
    assert np.allclose(pred, [table.predict(a, cfg) for a in archs]), "vectorised and per-arch predictions differ"
    meas = np.array([float(np.median(t)) for t in times])
    costs = CostModel(cfg).costs(genomes)
    macs = costs.macs.astype(float)
    slope, intercept = np.polyfit(macs, meas, 1)
    summary = {
        "space": cfg.name,
        "resolutions": resolutions,
        "num_subnets": len(archs),
        "device": device.model_dump(mode="json"),
        "device_key": device.key,
        "settings": {"runs": args.runs, "rounds": args.rounds, "seed": args.seed, "statistic": "median"},
        "table": {
            "layers": len(table), "build_seconds": meta.get("build_seconds"),
            "export_seconds": meta.get("export_seconds"), "measure_seconds": meta.get("measure_seconds"),
            "onnx_models": meta.get("onnx_models"), "overhead_ms": table.overhead_ms,
            "calibration_seconds": meta.get("calibration_seconds"), "scale": {str(r): v for r, v in table.scale.items()},
            "spearman": spearman(pred, meas), "pearson": pearson(pred, meas), "mape_percent": mape(pred, meas),
            "max_ape_percent": float(np.max(np.abs(pred - meas) / meas) * 100),
            "mean_signed_error_percent": float(np.mean((pred - meas) / meas) * 100),
        },
        "table_uncalibrated": {
            "spearman": spearman(raw, meas), "pearson": pearson(raw, meas), "mape_percent": mape(raw, meas),
            "mean_signed_error_percent": float(np.mean((raw - meas) / meas) * 100),
        },
        "macs": {
            "spearman": spearman(macs, meas), "pearson": pearson(macs, meas),
            "linear_fit": {"ms_per_gmac": slope * 1e9, "intercept_ms": intercept},
            "linear_fit_mape_percent": mape(slope * macs + intercept, meas),
        },
        "per_resolution": {
            str(r): {"subnets": int(m.sum()), "table_spearman": spearman(pred[m], meas[m]),
                     "uncalibrated_mape_percent": mape(raw[m], meas[m]),
                     "macs_spearman": spearman(macs[m], meas[m]), "table_mape_percent": mape(pred[m], meas[m])}
            for r in resolutions for m in [np.array([a.r == r for a in archs])] if m.sum() >= 3
        },
        "subnets": {"export_seconds": round(export_s, 1), "measure_seconds": round(measure_s, 1)},
        "targets": {"spearman_min": 0.9, "mape_max_percent": 10.0},
    }
    summary["targets"]["met"] = bool(summary["table"]["spearman"] >= 0.9 and summary["table"]["mape_percent"] <= 10)
    rows = []
    for a, g, p, q, m, t, mc, pa in zip(archs, genomes, pred, raw, meas, times, macs, costs.params):
        rows.append({"arch": a.to_dict(), "genome": g.tolist(), "macs": int(mc), "params": int(pa),
                     "predicted_ms": float(p), "sum_of_layers_ms": float(q), "measured_ms": float(m), "measured_p90_ms": float(np.percentile(t, 90)),
                     "measured_std_ms": float(np.std(t, ddof=1))})
    result = {"format": "nni-eas-benchmark-latency/1", "summary": summary, "subnets": rows}

    print(f"\n{'#':>3} {'r':>4} {'depths':>11} {'MACs(M)':>8} {'sum ms':>8} {'pred ms':>8} {'meas ms':>8} {'p90 ms':>7} {'err %':>7}")
    order = np.argsort(meas)
    for i in order:
        r = rows[i]
        print(f"{i:>3} {r['arch']['r']:>4} {''.join(map(str, r['arch']['d'])):>11} {r['macs'] / 1e6:>8.1f} "
              f"{r['sum_of_layers_ms']:>8.3f} {r['predicted_ms']:>8.3f} {r['measured_ms']:>8.3f} {r['measured_p90_ms']:>7.3f} "
              f"{100 * (r['predicted_ms'] - r['measured_ms']) / r['measured_ms']:>+7.1f}")
    s = summary
    print(f"\n{'':<26}{'Spearman':>9} {'Pearson':>8} {'MAPE %':>8}")
    print(f"{'table (calibrated)':<26}{s['table']['spearman']:>9.3f} {s['table']['pearson']:>8.3f} {s['table']['mape_percent']:>8.2f}")
    u = s["table_uncalibrated"]
    print(f"{'table (sum of layers)':<26}{u['spearman']:>9.3f} {u['pearson']:>8.3f} {u['mape_percent']:>8.2f}")
    print(f"{'MACs (linear fit)':<26}{s['macs']['spearman']:>9.3f} {s['macs']['pearson']:>8.3f} {s['macs']['linear_fit_mape_percent']:>8.2f}")
    for r, v in s["per_resolution"].items():
        print(f"  at {r} px ({v['subnets']} subnets): Spearman table {v['table_spearman']:.3f} vs MACs "
              f"{v['macs_spearman']:.3f}; table MAPE {v['table_mape_percent']:.2f} %")
    print(f"table build: {s['table']['build_seconds']} s for {s['table']['layers']} layers "
          f"({s['table']['onnx_models']} ONNX models; calibration {s['table']['calibration_seconds']} s, scale "
          f"{', '.join(f'{r}: {v:.3f}' for r, v in s['table']['scale'].items())}); targets met: {s['targets']['met']}")
    atomic_write_json(args.out / "latency.json", result)
    plot(args.out / "latency.png", pred, raw, meas, macs, [a.r for a in archs], summary)
    print(f"wrote {args.out / 'latency.json'} and {args.out / 'latency.png'}")
    return result


if __name__ == "__main__":
    main()
