"""Every exception class the project defines survives pickling with its message and fields, in
this process and across a spawned process pool (the way prepare and evaluate workers send them)."""

from __future__ import annotations

import importlib
import pickle
import pkgutil
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest
from error_samples import instance as _instance, raise_instance


def _project_exceptions() -> list[type[BaseException]]:
    for pkg in ("iis_pipe", "iis_pipe.cli", "iis_pipe.pipelines"):  # the last two: own folders
        for mod in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + "."):
            if not mod.name.split(".")[-1].startswith(("_jpeg", "__main__")):
                importlib.import_module(mod.name)
    found, todo = set(), [Exception]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("iis_pipe"):
                found.add(sub)
    return sorted(found, key=lambda c: (c.__module__, c.__qualname__))


EXCEPTIONS = _project_exceptions()


def test_the_project_defines_the_expected_errors():
    """The search finds them (else the round trips below would prove nothing)."""
    names = {c.__name__ for c in EXCEPTIONS}
    assert {"BadInput", "EmptyEpoch", "PrepareError", "CheckpointError", "OptionError",
            "FolderBusy"} <= names, names


@pytest.mark.parametrize("cls", EXCEPTIONS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_round_trips_through_pickle(cls):
    err = _instance(cls)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == str(err) and back.args == err.args
    assert vars(back) == vars(err)


def test_cross_a_spawned_process_pool():
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        futures = {cls: pool.submit(raise_instance, f"{cls.__module__}.{cls.__name__}")
                   for cls in EXCEPTIONS}
        for cls, f in futures.items():
            err = f.exception(timeout=120)
            assert type(err) is cls and str(err) == str(_instance(cls)), cls
