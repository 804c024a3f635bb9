"""Latency lookup tables: one interface for tables built here, OFA's and NSGANetV2's.

A table maps layer keys to milliseconds measured on one device; a subnet's latency is predicted
as the sum over its layers (:func:`nni_eas.export.layers.arch_layers`). Three key schemes exist,
one per source, and a :class:`LatencyTable` knows which it holds:

``nni-eas``   tables built by :func:`nni_eas.export.build_latency_table` (onnxruntime here):
              ``mbconv-input:56x56x24-output:28x28x40-mid:96-kernel:5-stride:2-idskip:0-se:1-act:relu``,
              ``stem-…``, ``dsconv-…``, ``final_expand-…``, ``head-…`` (global pool + feature-mix
              conv), ``classifier-input:1280-output:1000``. Activations by name, so any preset works.
``ofa``       OFA's Note10 tables (``<res>_lookup_table.yaml``, one file per resolution), as OFA's
              tutorial ``LatencyTable`` reads them: ``Conv`` (stem), ``expanded_conv`` (the first
              block too, with ``expand:<mid channels>``), ``Conv_1`` (final expand), ``AvgPool2D``,
              ``Conv_2`` (feature mix), ``Logits``; ``hs:1`` for h-swish blocks.
``nsganetv2`` NSGANetV2's single CPU table (``i7-8700K_lut.yaml``): ``first_conv`` (output side
              ``r // 2``), ``MBConv`` with the *expand ratio* (``expand:1`` for the first block)
              and no activation flag, ``final_expand_layer`` (pooling included),
              ``feature_mix_layer``, ``classifier-input:C-output:N``.

Entries are per input resolution when the source was measured per resolution (ours, OFA's) or
shared (NSGANetV2's keys carry every size). :class:`LatencyModel` tabulates a table per block
slot over (width, kernel, expand, resolution) and predicts a whole population of genomes with one
gather, like :class:`nni_eas.costs.CostModel`.

Tables built here make two corrections that published tables do not have (``overhead_ms = 0``,
``scale = 1``):

* **overhead**: the per-inference overhead of onnxruntime (measured on an empty model) is in
  every layer's entry but paid once by a network, so ``raw = sum(entries) - (n - 1) * overhead``;
* **calibration**: a layer timed alone runs with its weights and activations in cache, inside a
  network it does not (on this machine blocks are 6-18 % slower in context). At build time the
  smallest and largest subnet of every resolution are also timed end to end and the table keeps
  ``scale[r] = geometric mean(measured / raw)``; a prediction is ``scale[r] * raw``.
  :meth:`LatencyTable.predict` with ``calibrated=False`` gives the plain sum.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

from ..config import ConfigError, atomic_write_text
from ..spaces.arch import Arch, validate_arch
from ..spaces.config import OFAMobileNetV3Config, SpaceLike, load_space_config
from .layers import Layer, arch_layers, block_layer, fixed_layers
from .runtime import DeviceInfo

__all__ = [
    "FORMAT",
    "KEY_SCHEMES",
    "LatencyModel",
    "LatencyTable",
    "LatencyTableError",
    "layer_keys",
    "load_latency_table",
]

FORMAT = "nni-eas-latency-table/1"


class LatencyTableError(KeyError):
    """A layer the table has no entry for (the message names the key and how to get one)."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------------------------
# key schemes
# --------------------------------------------------------------------------------------------
def _shape(*dims: int) -> str:
    return "x".join(str(int(d)) for d in dims)


def _hs(layer: Layer, scheme: str) -> int:
    if layer.act not in ("relu", "hswish"):
        raise ConfigError(f"{scheme} latency keys express ReLU or h-swish blocks only; got activation {layer.act!r}")
    return int(layer.act == "hswish")


def _ofa_keys(layer: Layer) -> tuple[str, ...]:
    """OFA tutorial ``LatencyEstimator.predict_network_latency_given_spec``'s keys."""
    io_ = f"input:{_shape(layer.h_in, layer.h_in, layer.c_in)}-output:{_shape(layer.h_out, layer.h_out, layer.c_out)}"
    if layer.kind == "stem":
        return (f"Conv-{io_}",)
    if layer.kind in ("first", "mbconv"):
        return (f"expanded_conv-{io_}-expand:{layer.mid}-kernel:{layer.kernel}-stride:{layer.stride}"
                f"-idskip:{int(layer.skip)}-se:{int(layer.se)}-hs:{_hs(layer, 'OFA')}",)
    if layer.kind == "final_expand":
        return (f"Conv_1-{io_}",)
    if layer.kind == "head":
        return (f"AvgPool2D-input:{_shape(layer.h_in, layer.h_in, layer.c_in)}-output:{_shape(1, 1, layer.c_in)}",
                f"Conv_2-input:{_shape(1, 1, layer.c_in)}-output:{_shape(1, 1, layer.c_out)}")
    return (f"Logits-input:{_shape(1, 1, layer.c_in)}-output:{layer.c_out}",)


def _nsganetv2_keys(layer: Layer) -> tuple[str, ...]:
    """NSGANetV2's ``look_up_latency`` keys (``utils.py`` of mikelzc1990/nsganetv2)."""
    if layer.kind == "stem":  # NSGANetV2 writes the stem output as r // 2 (floor), not ceil
        h = layer.h_in // layer.stride
        return (f"first_conv-input:{_shape(layer.h_in, layer.h_in, layer.c_in)}-output:{_shape(h, h, layer.c_out)}",)
    io_ = f"input:{_shape(layer.h_in, layer.h_in, layer.c_in)}-output:{_shape(layer.h_out, layer.h_out, layer.c_out)}"
    if layer.kind in ("first", "mbconv"):
        if float(layer.expand) != int(layer.expand):
            raise ConfigError(f"NSGANetV2 latency keys hold integer expand ratios; got {layer.expand}")
        return (f"MBConv-{io_}-expand:{int(layer.expand)}-kernel:{layer.kernel}-stride:{layer.stride}"
                f"-idskip:{int(layer.skip)}-se:{int(layer.se)}",)
    if layer.kind == "final_expand":
        return (f"final_expand_layer-{io_}",)
    if layer.kind == "head":
        return (f"feature_mix_layer-input:{_shape(1, 1, layer.c_in)}-output:{_shape(1, 1, layer.c_out)}",)
    return (f"classifier-input:{layer.c_in}-output:{layer.c_out}",)


def _nni_eas_keys(layer: Layer) -> tuple[str, ...]:
    """Keys of tables built here: one measured ONNX model per key."""
    io_ = f"input:{_shape(layer.h_in, layer.h_in, layer.c_in)}-output:{_shape(layer.h_out, layer.h_out, layer.c_out)}"
    if layer.kind == "stem":
        return (f"stem-{io_}-kernel:{layer.kernel}-stride:{layer.stride}-act:{layer.act}",)
    if layer.kind in ("first", "mbconv"):
        name = "dsconv" if layer.kind == "first" else "mbconv"
        return (f"{name}-{io_}-mid:{layer.mid}-kernel:{layer.kernel}-stride:{layer.stride}"
                f"-idskip:{int(layer.skip)}-se:{int(layer.se)}-act:{layer.act}",)
    if layer.kind == "final_expand":
        return (f"final_expand-{io_}-act:{layer.act}",)
    if layer.kind == "head":
        return (f"head-input:{_shape(layer.h_in, layer.h_in, layer.c_in)}-output:{layer.c_out}-act:{layer.act}",)
    return (f"classifier-input:{layer.c_in}-output:{layer.c_out}",)


KEY_SCHEMES = {"nni-eas": _nni_eas_keys, "ofa": _ofa_keys, "nsganetv2": _nsganetv2_keys}


def layer_keys(layer: Layer, scheme: str = "nni-eas") -> tuple[str, ...]:
    """The table keys charged for ``layer`` under ``scheme`` (see the module docstring)."""
    try:
        fn = KEY_SCHEMES[scheme]
    except KeyError:
        raise ConfigError(f"unknown latency key scheme {scheme!r}; allowed: {', '.join(KEY_SCHEMES)}") from None
    return fn(layer)


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------


class LatencyTable:
    """Per-layer latencies (ms) of one device, and subnet latency as their sum.

    Args:
        entries: ``{resolution: {key: stats}}``; resolution ``None`` holds entries shared by every
            resolution. ``stats`` is a mapping with at least the ``statistic`` field (OFA:
            ``mean``/``std``/``count``; ours: ``median``/``p90``/``std``/``mean``/``runs``).
        scheme: key scheme, one of :data:`KEY_SCHEMES`.
        device: where the numbers were measured (tables of different devices never merge).
        space: the space the table was made for (default for predictions).
        statistic: which field of an entry is the latency.
        overhead_ms: per-inference overhead included in every entry (see module docstring).
        scale: per-resolution calibration factor (see module docstring; missing = 1).
    """

    def __init__(self, entries: Mapping[int | None, Mapping[str, Mapping[str, Any]]], scheme: str,
                 device: DeviceInfo, space: SpaceLike | None = None, statistic: str = "median",
                 overhead_ms: float = 0.0, meta: Mapping[str, Any] | None = None, source: str = "",
                 scale: Mapping[int, float] | None = None):
        if scheme not in KEY_SCHEMES:
            raise ConfigError(f"unknown latency key scheme {scheme!r}; allowed: {', '.join(KEY_SCHEMES)}")
        self.entries = {(None if r is None else int(r)): {str(k): (dict(v) if isinstance(v, Mapping) else v)
                                                           for k, v in table.items()}
                        for r, table in entries.items()}
        self.scheme = scheme
        self.device = device
        self.space = None if space is None else load_space_config(space)
        self.statistic = statistic
        self.overhead_ms = float(overhead_ms)
        self.meta = dict(meta or {})
        self.scale = {int(r): float(v) for r, v in (scale or {}).items()}
        bad_scale = [r for r, v in self.scale.items() if not np.isfinite(v) or v <= 0]
        if bad_scale:
            raise ConfigError(f"{source or 'latency table'}: calibration scale must be positive at resolutions {bad_scale}")
        self.source = source
        try:
            self._values = {r: {k: float(v[statistic]) for k, v in t.items()} for r, t in self.entries.items()}
        except (KeyError, TypeError, ValueError):
            bad = next(f"{k!r} (resolution {r})" for r, t in self.entries.items() for k, v in t.items()
                       if not isinstance(v, Mapping) or not isinstance(v.get(statistic), (int, float)))
            raise ConfigError(f"{source or 'latency table'}: entry {bad} has no numeric {statistic!r} field; "
                              f"every entry needs {{{statistic}: <ms>, ...}}") from None
        self._models: dict[tuple, LatencyModel] = {}

    # ---- facts ----------------------------------------------------------------------------
    @property
    def resolutions(self) -> tuple[int, ...]:
        """Resolutions with their own entries (empty for a table whose keys carry every size)."""
        return tuple(sorted(r for r in self.entries if r is not None))

    def __len__(self) -> int:
        return sum(len(t) for t in self.entries.values())

    def __repr__(self) -> str:
        res = ",".join(map(str, self.resolutions)) or "shared"
        return f"LatencyTable(scheme={self.scheme!r}, entries={len(self)}, resolutions={res}, device={self.device.key!r})"

    def _cfg(self, cfg: SpaceLike | None) -> OFAMobileNetV3Config:
        if cfg is not None:
            return load_space_config(cfg)
        if self.space is None:
            raise ConfigError("this latency table records no space; pass the space (cfg=...) to predict")
        return self.space

    # ---- lookups --------------------------------------------------------------------------
    def value(self, key: str, resolution: int) -> float:
        """Latency (ms) of ``key`` at ``resolution``; :class:`LatencyTableError` when missing."""
        for r in (resolution, None):
            table = self._values.get(r)
            if table is not None and key in table:
                return table[key]
        if self.resolutions and resolution not in self.entries and None not in self.entries:
            raise LatencyTableError(
                f"latency table {self.source or self.scheme} has no entries for resolution {resolution}; "
                f"it covers resolutions {', '.join(map(str, self.resolutions))}")
        made_for = f" (it was made for space {self.space.name!r})" if self.space is not None else ""
        hint = ("build a table for this space and classifier with `nni-eas latency build`" if self.scheme == "nni-eas"
                else "the published table does not cover this layer")
        raise LatencyTableError(
            f"latency table {self.source or self.scheme}{made_for} has no entry {key!r} at resolution {resolution}; {hint}")

    def layer_ms(self, layer: Layer, resolution: int) -> float:
        """Latency of one layer (the sum of its keys), overhead included."""
        return sum(self.value(k, resolution) for k in layer_keys(layer, self.scheme))

    def breakdown(self, arch: Arch | Mapping[str, Any], cfg: SpaceLike | None = None,
                  num_classes: int | None = None) -> list[tuple[str, float]]:
        """``(key, ms)`` of every layer of ``arch`` in network order (what :meth:`predict` sums)."""
        c = self._cfg(cfg)
        arch = validate_arch(c, arch)
        return [(k, self.value(k, arch.r)) for layer in arch_layers(c, arch, num_classes)
                for k in layer_keys(layer, self.scheme)]

    def predict(self, arch: Arch | Mapping[str, Any], cfg: SpaceLike | None = None,
                num_classes: int | None = None, calibrated: bool = True) -> float:
        """Predicted latency (ms) of ``arch`` (an arch of ``cfg``, default: the table's space).

        ``calibrated=False``: the plain sum of entries (minus the repeated overhead), without the
        table's per-resolution calibration.
        """
        parts = self.breakdown(arch, cfg, num_classes)
        raw = sum(ms for _, ms in parts) - (len(parts) - 1) * self.overhead_ms
        r = validate_arch(self._cfg(cfg), arch).r
        return float(raw * (self.scale.get(r, 1.0) if calibrated else 1.0))

    def predict_genomes(self, genomes: np.ndarray, cfg: SpaceLike | None = None,
                        num_classes: int | None = None, calibrated: bool = True) -> np.ndarray:
        """Predicted latency of every genome ``[P, L]`` of ``cfg`` (vectorised, see :class:`LatencyModel`)."""
        return self.model(cfg, num_classes, calibrated).latency(genomes)

    def model(self, cfg: SpaceLike | None = None, num_classes: int | None = None,
              calibrated: bool = True) -> "LatencyModel":
        c = self._cfg(cfg)
        key = (c.model_dump_json(), num_classes, calibrated, tuple(sorted(self.scale.items())))
        if key not in self._models:
            self._models[key] = LatencyModel(self, c, num_classes, calibrated)
        return self._models[key]

    def min_latency(self, cfg: SpaceLike | None = None, num_classes: int | None = None) -> tuple[float, Arch]:
        """The fastest subnet of the space by this table, and its predicted latency.

        Exact (not the smallest arch's latency, which noise in a measured table can undercut):
        see :meth:`LatencyModel.fastest`.
        """
        return self.model(cfg, num_classes).fastest()

    # ---- combining ------------------------------------------------------------------------
    def merge(self, other: "LatencyTable") -> "LatencyTable":
        """Entries of both (``other`` wins on equal keys); refuses tables of different devices."""
        if other.device.key != self.device.key or other.scheme != self.scheme or other.statistic != self.statistic:
            raise ConfigError(f"cannot merge latency tables of different devices/settings: {self.device.key!r} "
                              f"({self.scheme}) vs {other.device.key!r} ({other.scheme})")
        entries: dict[int | None, dict[str, Any]] = {r: dict(t) for r, t in self.entries.items()}
        for r, t in other.entries.items():
            entries.setdefault(r, {}).update(t)
        return LatencyTable(entries, self.scheme, self.device, self.space, self.statistic,
                            other.overhead_ms if other.overhead_ms else self.overhead_ms,
                            {**self.meta, **other.meta}, self.source, {**self.scale, **other.scale})

    # ---- files ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "scheme": self.scheme,
            "unit": "ms",
            "statistic": self.statistic,
            "overhead_ms": self.overhead_ms,
            "scale": dict(sorted(self.scale.items())),
            "device": self.device.model_dump(mode="json"),
            "device_key": self.device.key,
            "space": None if self.space is None else self.space.model_dump(mode="json"),
            "meta": self.meta,
            "shared": self.entries.get(None, {}),
            "resolutions": {r: t for r, t in sorted(self.entries.items(), key=lambda kv: -1 if kv[0] is None else kv[0])
                            if r is not None},
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write the table as YAML (atomically); :meth:`load` reads it back exactly."""
        return atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False, width=200))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "") -> "LatencyTable":
        if data.get("format") != FORMAT:
            raise ConfigError(f"{source or 'latency table'}: format {data.get('format')!r} is not {FORMAT!r}")
        try:
            device = DeviceInfo.model_validate(data["device"])
            entries: dict[int | None, Any] = {int(r): t for r, t in (data.get("resolutions") or {}).items()}
            if data.get("shared"):
                entries[None] = data["shared"]
            return cls(entries, data["scheme"], device, data.get("space"), data.get("statistic", "median"),
                       data.get("overhead_ms", 0.0), data.get("meta"), source, data.get("scale"))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"{source or 'latency table'}: malformed nni-eas latency table ({type(e).__name__}: {e})") from None

    @classmethod
    def load(cls, path: str | os.PathLike, space: SpaceLike | None = None) -> "LatencyTable":
        """Read any of the three sources (see :func:`load_latency_table`)."""
        return load_latency_table(path, space)

    @classmethod
    def from_ofa(cls, path: str | os.PathLike | Iterable[str | os.PathLike],
                 space: SpaceLike | None = "ofa_mbv3_w1.2", device: str = "Samsung Note10") -> "LatencyTable":
        """OFA's per-resolution tables: a folder of ``<res>_lookup_table.yaml``, or the files.

        OFA published them for its w1.2 MobileNetV3 space; OFA's tutorial (and OFA², which
        used it) look a subnet at resolution ``r`` up in ``r``'s file only.
        """
        files = _ofa_files(path)
        entries = {}
        for res, f in files.items():
            entries[res] = _read_yaml_mapping(f)
        dev = DeviceInfo(name=device, runtime="TensorFlow Lite (OFA)", provider="", batch_size=1, source="OFA (Cai et al., ICLR 2020)")
        return cls(entries, "ofa", dev, space, statistic="mean", source=f"OFA {device} tables ({_describe(path)})")

    @classmethod
    def from_nsganetv2(cls, path: str | os.PathLike, space: SpaceLike | None = "nat_mbv3",
                       device: str = "Intel i7-8700K") -> "LatencyTable":
        """NSGANetV2's CPU table (one file, keys carry every size)."""
        data = _read_yaml_mapping(Path(path))
        dev = DeviceInfo(name=device, runtime="PyTorch (NSGANetV2)", provider="", batch_size=1, source="NSGANetV2 (Lu et al., ECCV 2020)")
        return cls({None: data}, "nsganetv2", dev, space, statistic="mean", source=f"NSGANetV2 {device} table ({Path(path).name})")


def _describe(path: Any) -> str:
    if isinstance(path, (str, os.PathLike)):
        return Path(path).name
    return f"{len(list(path))} files"


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"latency table not found: {path}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a latency table is a mapping of keys to entries")
    return data


_OFA_FILE = re.compile(r"^(\d+)_lookup_table\.ya?ml$")


def _ofa_files(path: Any) -> dict[int, Path]:
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        candidates = sorted(p.iterdir()) if p.is_dir() else [p]
    else:
        candidates = [Path(x) for x in path]
    files = {}
    for f in candidates:
        m = _OFA_FILE.match(f.name)
        if m:
            files[int(m.group(1))] = f
    if not files:
        raise ConfigError(f"no OFA latency tables (files named <resolution>_lookup_table.yaml) in {path}")
    return dict(sorted(files.items()))


def load_latency_table(path: str | os.PathLike, space: SpaceLike | None = None) -> LatencyTable:
    """Load a latency table, recognising its source.

    * a folder of ``<res>_lookup_table.yaml`` files, or one such file: OFA (space default w1.2);
    * a YAML file with ``format: nni-eas-latency-table/1``: built here;
    * a YAML file of ``MBConv-…`` / ``first_conv-…`` keys: NSGANetV2 (space default ``nat_mbv3``).

    ``space`` overrides the space the table is taken to describe.
    """
    p = Path(path)
    if p.is_dir() or _OFA_FILE.match(p.name):
        return LatencyTable.from_ofa(p, **({"space": space} if space is not None else {}))
    if not p.is_file():
        raise ConfigError(f"latency table not found: {p} (expected a table built by `nni-eas latency build`, "
                          "a folder of OFA <res>_lookup_table.yaml files, or NSGANetV2's LUT YAML)")
    data = _read_yaml_mapping(p)
    if data.get("format") == FORMAT:
        table = LatencyTable.from_dict(data, source=p.name)
        if space is not None:
            table.space = load_space_config(space)
        return table
    keys = list(data)
    if any(k.startswith(("MBConv-", "first_conv-")) for k in keys):
        return LatencyTable.from_nsganetv2(p, **({"space": space} if space is not None else {}))
    if any(k.startswith(("expanded_conv-", "Conv-")) for k in keys):
        raise ConfigError(f"{p.name} looks like an OFA table but its name is not <resolution>_lookup_table.yaml; "
                          "rename it so the resolution is known")
    raise ConfigError(f"{p}: not a latency table (no 'format: {FORMAT}' and no OFA/NSGANetV2 keys)")


# --------------------------------------------------------------------------------------------
# vectorised prediction
# --------------------------------------------------------------------------------------------
class LatencyModel:
    """Predicted latency of every genome of a space, by one gather per block slot.

    Mirrors :class:`nni_eas.costs.CostModel`: ``block_ms[slot, w, k, e, r]`` holds the latency of
    the block a slot runs for each choice (NaN where the table has no entry) and
    ``base_ms[w, r]`` the fixed layers; a genome costs ``base + sum(active blocks)``.
    """

    def __init__(self, table: LatencyTable, cfg: OFAMobileNetV3Config, num_classes: int | None = None,
                 calibrated: bool = True):
        self.table, self.cfg, self.num_classes, self.calibrated = table, cfg, num_classes, calibrated
        W, K, E, R = len(cfg.width_mults), len(cfg.kernel_sizes), len(cfg.expand_ratios), len(cfg.resolutions)
        self.block_ms = np.full((cfg.num_slots, W, K, E, R), np.nan)
        self.base_ms = np.full((W, R), np.nan)
        ov = table.overhead_ms
        for wi, w in enumerate(cfg.width_mults):
            for ri, r in enumerate(cfg.resolutions):
                if table.resolutions and r not in table.resolutions and None not in table.entries:
                    continue
                before, after = fixed_layers(cfg, w, r, num_classes)
                fixed = [self._ms(layer, r) for layer in before + after]
                n_keys = sum(len(layer_keys(layer, table.scheme)) for layer in before + after)
                self.base_ms[wi, ri] = sum(fixed) - (n_keys - 1) * ov
                for s in range(cfg.num_stages):
                    for j in range(cfg.max_depth):
                        slot = s * cfg.max_depth + j
                        for ki, k in enumerate(cfg.kernel_sizes):
                            for ei, e in enumerate(cfg.expand_ratios):
                                layer = block_layer(cfg, w, r, s, j, k, e)
                                n = len(layer_keys(layer, table.scheme))
                                self.block_ms[slot, wi, ki, ei, ri] = self._ms(layer, r) - n * ov
                scale = table.scale.get(r, 1.0) if calibrated else 1.0
                self.base_ms[wi, ri] *= scale
                self.block_ms[:, wi, :, :, ri] *= scale

    def _ms(self, layer: Layer, r: int) -> float:
        try:
            return self.table.layer_ms(layer, r)
        except LatencyTableError:
            return float("nan")

    def latency(self, genomes: np.ndarray) -> np.ndarray:
        """Latency (ms) of every genome ``[P, L]`` (choice indices, see :mod:`nni_eas.encodings`)."""
        k, e, r, w, active = _genome_fields(self.cfg, genomes)
        slots = np.arange(self.cfg.num_slots)[None, :]
        block = self.block_ms[slots, w[:, None], k, e, r[:, None]]
        out = self.base_ms[w, r] + np.where(active, block, 0.0).sum(1)
        bad = np.flatnonzero(~np.isfinite(out))
        if len(bad):  # name the missing entry through the slow path
            from ..encodings import genomes_to_archs

            arch = genomes_to_archs(self.cfg, np.atleast_2d(genomes)[bad[:1]])[0]
            self.table.predict(arch, self.cfg, self.num_classes, self.calibrated)
            raise LatencyTableError(f"latency table has no entry for genome {bad[0]}")  # pragma: no cover
        return out

    def __call__(self, genomes: np.ndarray) -> np.ndarray:
        return self.latency(genomes)

    def fastest(self) -> tuple[float, Arch]:
        """The subnet with the lowest predicted latency, found exactly per (width, resolution):
        every slot takes its fastest (kernel, expand), every stage the depth whose active
        blocks sum lowest."""
        cfg, best = self.cfg, None
        per_choice = self.block_ms.reshape(cfg.num_slots, len(cfg.width_mults), -1, len(cfg.resolutions))
        for wi, w in enumerate(cfg.width_mults):
            for ri, r in enumerate(cfg.resolutions):
                if not np.isfinite(self.base_ms[wi, ri]) or not np.all(np.isfinite(per_choice[:, wi, :, ri])):
                    continue
                choice = per_choice[:, wi, :, ri].argmin(1)  # [slots] flat (kernel, expand) index
                fastest = per_choice[:, wi, :, ri].min(1)
                total, depths = float(self.base_ms[wi, ri]), []
                for s in range(cfg.num_stages):
                    cum = np.cumsum(fastest[s * cfg.max_depth:(s + 1) * cfg.max_depth])
                    d = min(cfg.depths, key=lambda d: cum[d - 1])
                    depths.append(d)
                    total += float(cum[d - 1])
                if best is None or total < best[0]:
                    ks = tuple(cfg.kernel_sizes[c // len(cfg.expand_ratios)] for c in choice)
                    es = tuple(cfg.expand_ratios[c % len(cfg.expand_ratios)] for c in choice)
                    best = (total, Arch(ks=ks, e=es, d=tuple(depths), r=r, w=w))
        if best is None:
            raise LatencyTableError(f"latency table {self.table.source or self.table.scheme} covers no subnet of "
                                    f"space {cfg.name!r}")
        return best


def _genome_fields(cfg: OFAMobileNetV3Config, genomes: np.ndarray):
    """``(kernel idx [P,N], expand idx [P,N], resolution idx [P], width idx [P], active [P,N])``.

    The same decoding as ``CostModel._indices`` (which should move to ``nni_eas.encodings`` so
    both share it).
    """
    from ..encodings import _check_genomes

    g = _check_genomes(cfg, np.atleast_2d(genomes))
    n, s = cfg.num_slots, cfg.num_stages
    depths = np.asarray(cfg.depths)[g[:, 2 * n:2 * n + s]]
    j = np.tile(np.arange(cfg.max_depth), s)
    stage = np.repeat(np.arange(s), cfg.max_depth)
    active = j[None, :] < depths[:, stage]
    return g[:, :n], g[:, n:2 * n], g[:, 2 * n + s], g[:, 2 * n + s + 1], active


def stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
