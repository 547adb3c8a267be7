"""Recommenders by name. ``@register("name", context=(...), description=...)`` on a
``Recommender`` subclass adds it; ``load_all()`` imports every module of this package (not
sub-packages such as ``kernels/``), so a new module needs no edit anywhere else.

A module that fails to import is logged and listed in ``import_errors()``; the others load.
Placements name recommenders as strings and skip a name that is not registered.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from typing import Iterable

from .base import CONTEXT_FIELDS, Recommender

log = logging.getLogger("funnelrec.recommenders")

_REGISTRY: dict[str, type[Recommender]] = {}
_IMPORT_ERRORS: dict[str, str] = {}
_loaded = False
_lock = threading.Lock()
_NOT_RECOMMENDERS = {"base", "registry", "dataset", "model"}


def register(name: str, *, context: Iterable[str] = (), description: str = ""):
    """Class decorator: register a ``Recommender`` subclass under ``name``."""
    ctx = frozenset(context)
    unknown = ctx - CONTEXT_FIELDS
    if unknown:
        raise ValueError(f"recommender {name!r}: unknown context fields {sorted(unknown)}; use {sorted(CONTEXT_FIELDS)}")

    def deco(cls: type[Recommender]) -> type[Recommender]:
        if not (isinstance(cls, type) and issubclass(cls, Recommender)):
            raise TypeError(f"@register({name!r}) must decorate a Recommender subclass")
        prev = _REGISTRY.get(name)
        if prev is not None and prev.__qualname__ != cls.__qualname__:
            raise ValueError(f"recommender name {name!r} is registered twice ({prev.__module__}, {cls.__module__})")
        cls.name = name
        cls.context = ctx
        cls.description = description or (cls.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = cls
        return cls

    return deco


def load_all() -> dict[str, type[Recommender]]:
    """Import every recommender module of the package once; returns the registry."""
    global _loaded
    if _loaded:
        return _REGISTRY
    with _lock:
        if _loaded:
            return _REGISTRY
        package = importlib.import_module(__package__)
        for info in pkgutil.iter_modules(package.__path__):
            if info.ispkg or info.name.startswith("_") or info.name in _NOT_RECOMMENDERS:
                continue
            mod_name = f"{__package__}.{info.name}"
            try:
                importlib.import_module(mod_name)
            except Exception as exc:  # one broken module must not take the engine down
                log.error("recommender module failed to import", extra={"module": mod_name, "error": repr(exc)})
                _IMPORT_ERRORS[mod_name] = repr(exc)
        _loaded = True
    return _REGISTRY


def get(name: str) -> type[Recommender] | None:
    load_all()
    return _REGISTRY.get(name)


def names() -> list[str]:
    load_all()
    return sorted(_REGISTRY)


def all_recommenders() -> dict[str, type[Recommender]]:
    return dict(load_all())


def import_errors() -> dict[str, str]:
    load_all()
    return dict(_IMPORT_ERRORS)
