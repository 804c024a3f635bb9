"""Tasks: subsets of a dataset's classes, the unit a supernet is specialised for.

EAS/OFA-style specialisation trains once on all classes and then serves a user who cares about a
few of them: the subnet keeps only the task's logits (:meth:`Task.restrict_logits`) and is
evaluated on only the task's images with labels renumbered ``0..k-1``
(:class:`~nni_eas.data.datasets.TaskDataset`).
Task-dropout training samples random tasks reproducibly (:class:`TaskSampler`), optionally as
unions of super-classes so that tasks look like "vehicles + animals" rather than random mixtures.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

from typing import TYPE_CHECKING

import numpy as np

from ..config import ConfigError

if TYPE_CHECKING:  # torch only where tensors are made: configs check tasks without it
    import torch

__all__ = ["Task", "TaskSampler"]

# How many random group orders TaskSampler tries before giving up on a size window (only reachable
# with very uneven groups; the window was checked to be reachable when the sampler was built).
MAX_SAMPLE_ATTEMPTS = 10_000


def _as_int(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a class index, got {value!r}")
    try:
        return operator.index(value)  # ints, numpy ints, 0-d integer tensors; not floats
    except TypeError:
        raise ConfigError(f"{what}: expected an integer class index, got {value!r}") from None


@dataclass(frozen=True)
class Task:
    """A set of class indices (stored sorted and unique) with an optional name.

    ``num_classes``, when given, is the size of the label space the task lives in; the classes
    are checked against it. It takes no part in equality: a task is its classes and name.
    """

    classes: tuple[int, ...]
    name: str | None = None
    num_classes: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.classes, (str, bytes)) or not isinstance(self.classes, Iterable):
            raise ConfigError(f"task.classes: expected a sequence of class indices, got {self.classes!r}")
        classes = tuple(sorted({_as_int(c, "task.classes") for c in self.classes}))
        if not classes:
            raise ConfigError("task.classes: a task needs at least one class")
        if classes[0] < 0:
            raise ConfigError(f"task.classes: class indices must be >= 0, got {[c for c in classes if c < 0]}")
        object.__setattr__(self, "classes", classes)
        if self.num_classes is not None:
            self.validate(self.num_classes)

    # ---- construction and checks
    @classmethod
    def from_names(cls, names: Iterable[str], class_names: Sequence[str], name: str | None = None) -> "Task":
        """The task of the classes called ``names`` in ``class_names`` (a dataset's ``classes``)."""
        if isinstance(names, str):
            names = [names]
        index = {n: i for i, n in enumerate(class_names)}
        names = list(names)
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ConfigError(f"task: unknown class name(s) {unknown}; allowed: {', '.join(map(str, class_names))}")
        return cls(tuple(index[n] for n in names), name=name, num_classes=len(class_names))

    def validate(self, num_classes: int) -> "Task":
        """Raise :class:`~nni_eas.config.ConfigError` unless every class is in ``[0, num_classes)``."""
        bad = [c for c in self.classes if c >= num_classes]
        if bad:
            raise ConfigError(f"task.classes: {bad} out of range; allowed: 0..{num_classes - 1} ({num_classes} classes)")
        return self

    def _n(self, num_classes: int | None) -> int:
        n = num_classes if num_classes is not None else self.num_classes
        if n is None:
            raise ConfigError("num_classes: needed (the task was made without num_classes)")
        self.validate(n)
        return n

    # ---- the set
    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self) -> Iterator[int]:
        return iter(self.classes)

    def __contains__(self, item: object) -> bool:
        return item in self.classes

    def names(self, class_names: Sequence[str]) -> list[str]:
        """Human-readable names of the task's classes, in task order."""
        self.validate(len(class_names))
        return [class_names[c] for c in self.classes]

    # ---- tensors
    def index(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The class indices as an int64 tensor (task order)."""
        import torch

        return torch.tensor(self.classes, dtype=torch.int64, device=device)

    def mask(self, num_classes: int | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Multi-hot ``[num_classes]`` vector of the task's classes (bool, or e.g. float32)."""
        import torch

        m = torch.zeros(self._n(num_classes), dtype=torch.bool)
        m[self.index()] = True
        return m if dtype is None else m.to(dtype)

    def remap_labels(self, labels: torch.Tensor | np.ndarray | Sequence[int]) -> torch.Tensor:
        """Global labels -> positions within the task (``0..len(task)-1``); every label must be in the task."""
        import torch

        labels = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
        table = torch.full((max(self.classes[-1], int(labels.max()) if labels.numel() else 0) + 1,), -1, dtype=torch.int64)
        table[self.index()] = torch.arange(len(self.classes))
        out = table.to(labels.device)[labels.long().clamp_min(0)]
        bad = (out < 0) | (labels < 0)
        if bool(bad.any()):
            raise ConfigError(f"labels {sorted(set(labels[bad].tolist()))[:20]} are not in the task; "
                              f"allowed: {list(self.classes)}")
        return out

    def restrict_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The task's columns of ``[..., num_classes]`` logits, in task order (so argmax is a task label)."""
        if logits.shape[-1] <= self.classes[-1]:
            raise ConfigError(f"logits have {logits.shape[-1]} classes; the task needs class {self.classes[-1]}")
        return logits.index_select(-1, self.index(logits.device))


class TaskSampler:
    """Reproducible random tasks: a seeded stream of :class:`Task` objects.

    Without ``groups`` a task is ``k`` distinct classes with ``k`` uniform in
    ``[min_classes, max_classes]``. With ``groups`` (disjoint lists of class ids, e.g. CIFAR-100
    super-classes) a task is a union of whole groups whose total size is in that window; classes
    in no group never appear. Iterating yields samples forever (the same stream as :meth:`sample`).
    """

    def __init__(self, num_classes: int, min_classes: int = 2, max_classes: int | None = None,
                 groups: Sequence[Sequence[int]] | None = None, seed: int = 0):
        if _as_int(num_classes, "num_classes") < 1:
            raise ConfigError(f"num_classes: must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.groups = self._check_groups(groups)
        universe = sum(len(g) for g in self.groups)
        self.min_classes = _as_int(min_classes, "min_classes")
        self.max_classes = universe if max_classes is None else _as_int(max_classes, "max_classes")
        if not 1 <= self.min_classes <= self.max_classes <= universe:
            raise ConfigError(f"min_classes/max_classes: need 1 <= min_classes <= max_classes <= {universe} "
                              f"(classes available), got min_classes={self.min_classes}, max_classes={self.max_classes}")
        if not any(self.min_classes <= s <= self.max_classes for s in self._reachable_sizes()):
            raise ConfigError(f"groups: no union of groups (sizes {[len(g) for g in self.groups]}) has between "
                              f"{self.min_classes} and {self.max_classes} classes")
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def _check_groups(self, groups: Sequence[Sequence[int]] | None) -> list[tuple[int, ...]]:
        if groups is None:
            return [(c,) for c in range(self.num_classes)]
        out, seen = [], {}
        for gi, group in enumerate(groups):
            ids = tuple(_as_int(c, f"groups[{gi}]") for c in group)
            if not ids:
                raise ConfigError(f"groups[{gi}]: empty group")
            bad = [c for c in ids if not 0 <= c < self.num_classes]
            if bad:
                raise ConfigError(f"groups[{gi}]: classes {bad} out of range; allowed: 0..{self.num_classes - 1}")
            for c in ids:
                if c in seen:
                    raise ConfigError(f"groups[{gi}]: class {c} is already in groups[{seen[c]}]; groups must be disjoint")
                seen[c] = gi
            out.append(ids)
        if not out:
            raise ConfigError("groups: needs at least one group")
        return out

    def _reachable_sizes(self) -> set[int]:
        sizes = {0}
        for g in self.groups:
            sizes |= {s + len(g) for s in sizes}
        return sizes - {0}

    def reset(self, seed: int | None = None) -> None:
        """Restart the stream (from ``seed``, default the constructor's)."""
        self.seed = self.seed if seed is None else seed
        self._rng = np.random.default_rng(self.seed)

    def sample(self) -> Task:
        """One task: a random order of the groups, cut after a random prefix whose size fits."""
        for _ in range(MAX_SAMPLE_ATTEMPTS):
            order = self._rng.permutation(len(self.groups))
            sizes = np.cumsum([len(self.groups[i]) for i in order])
            fits = np.flatnonzero((sizes >= self.min_classes) & (sizes <= self.max_classes))
            if len(fits):
                cut = int(fits[self._rng.integers(len(fits))]) + 1
                classes = [c for i in order[:cut] for c in self.groups[i]]
                return Task(tuple(classes), num_classes=self.num_classes)
        raise RuntimeError(f"TaskSampler: no task of {self.min_classes}..{self.max_classes} classes found "
                           f"in {MAX_SAMPLE_ATTEMPTS} attempts; widen the window")

    def sample_many(self, n: int) -> list[Task]:
        return [self.sample() for _ in range(n)]

    def __iter__(self) -> Iterator[Task]:
        while True:
            yield self.sample()
