"""Made-up instances of the project's exception classes, for the pickling tests (a module of its
own, so that a spawned worker imports only this and the class's module)."""

from __future__ import annotations

import importlib
import inspect


def instance(cls: type[BaseException]) -> BaseException:
    """``cls`` built from made-up arguments of the kinds its signature asks for."""
    args = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is not p.empty:
            break
        args.append(["shard-000001.tar"] if "list" in str(p.annotation) or p.name in
                    ("missing", "shards") else f"<{p.name}>")
    if not args:
        args = ["<message>"]
    return cls(*args)


def raise_instance(qualname: str):
    module, name = qualname.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    raise instance(cls)
