"""Lazy package namespaces: ``from nni_eas.search import SearchDriver`` imports only what it names.

NNI starts an nnictl tuner in a fresh process and gives it 10 s to connect, so anything NNI
imports (``nni_eas.tuners``) must reach its config models without importing torch, Lightning,
timm or pymoo. Packages therefore list their public names with the module that defines them and
import that module on first use::

    __all__, __getattr__, __dir__ = lazy_exports(__name__, {"driver": ("Batch", "SearchDriver"), ...})
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import Any, Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, modules: Mapping[str, tuple[str, ...]]
                 ) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``: ``modules`` maps each submodule to the
    public names it defines."""
    table = {name: module for module, names in modules.items() for name in names}
    module_obj = sys.modules[package]
    module_obj.__class__ = _Package
    module_obj.__dict__["_lazy_exports"] = table

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        import sys

        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        import sys

        return sorted(set(vars(sys.modules[package])) | set(table))

    return sorted(table), __getattr__, __dir__


class _Package(ModuleType):
    """A package whose exported name can equal a submodule's name (``nni_eas.eas.specialize`` is
    a function of the module ``specialize``): importing the submodule, which makes Python set the
    package attribute to the module, sets it to the exported object instead."""

    def __setattr__(self, name: str, value: Any) -> None:
        table = self.__dict__.get("_lazy_exports") or {}
        if (isinstance(value, ModuleType) and table.get(name) == name
                and value.__name__ == f"{self.__name__}.{name}" and hasattr(value, name)):
            value = getattr(value, name)
        super().__setattr__(name, value)
