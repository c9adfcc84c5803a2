"""Streaming training samples from record shards.

shard urls -> record refs (``reader``) -> deterministic epoch order (``order``) -> decode and
augment (``augment``) -> target region and clicks (``sample``) -> batches (``collate``).
``loader`` composes them into a resumable torch ``IterableDataset`` (``ShardStream``) and its
``StreamLoader``; ``presets`` names recipes such as RITM's. Start with::

    from iis_pipe.stream import StreamLoader, preset, stream_config
"""

from importlib import import_module

# Public names, loaded on first use: the loader brings torch, which the light submodules
# (``urls``, ``reader``, ``presets``) and the CLI's start-up do without.
_EXPORTS = {
    "StreamConfig": "loader", "stream_config": "loader", "ShardStream": "loader",
    "StreamLoader": "loader", "PRESETS": "presets", "preset": "presets",
    "ritm_cocolvis_hrnet18": "presets",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__():
    return sorted([*globals(), *_EXPORTS])
