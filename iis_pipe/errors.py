"""The project's errors: each names the offending file (or folder, or shards) and the reason.

Every error the project raises derives from ``IISError``, so the CLI turns any of them into one
line (``iis_pipe.cli.main``), and every one survives pickling with its message and fields: a
failure in a worker process (a prepare or evaluate pool, a DataLoader worker) reaches the parent
as the same object, not as a ``BrokenProcessPool``.
"""

from __future__ import annotations


def _rebuild(cls: type, args: tuple, state: dict) -> "IISError":
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


class IISError(Exception):
    """Base of the project's errors; ``str(e)`` is the whole message."""

    def __reduce__(self):
        # Exception's own reduce calls cls(*args): wrong for constructors that take fields and
        # build the message. Rebuild without __init__, from the message and the fields.
        return _rebuild, (type(self), self.args, dict(self.__dict__))


class BadInput(IISError):
    """One input (image, mask, annotation, shard member) cannot be used.

    ``file`` names the offending path (or shard/key), ``reason`` is a short human sentence.
    Long jobs catch this, record ``(key, file, reason)`` in a rejects table and continue;
    ``--strict`` runs re-raise it.
    """

    def __init__(self, file: str, reason: str, key: str | None = None):
        super().__init__(f"{file}: {reason}")
        self.file = str(file)
        self.reason = reason
        self.key = key

    def __reduce__(self):  # travels to and from worker processes whole (scan rejects do)
        return type(self), (self.file, self.reason, self.key)


class FormatError(BadInput):
    """A file of a prepared dataset or run (``index.parquet``, ``manifest.json``, ...) that is
    not in its format: garbage, cut short, or missing a field."""


class IncompleteDataset(IISError):
    """A prepared folder whose shards do not match its manifest (``missing`` listed there but
    absent; ``extra`` present but not listed)."""

    def __init__(self, root: str, missing: list[str], extra: list[str] = ()):
        parts = []
        if missing:
            parts.append(f"{len(missing)} shard(s) of the manifest missing: {', '.join(missing)}")
        if extra:
            parts.append(f"{len(extra)} shard(s) not in the manifest: {', '.join(extra)}")
        super().__init__(f"{root}: " + "; ".join(parts) + " (run `iis-pipe verify`)")
        self.root, self.missing, self.extra = str(root), list(missing), list(extra)


class EmptyEpoch(IISError):
    """A stream whose epoch produced no sample: no record in the shards, every record failed,
    or no region passed the filters. ``shards``: the epoch's shard URLs."""

    def __init__(self, shards: list[str], reason: str):
        shown = ", ".join(shards[:3]) + (f" and {len(shards) - 3} more" if len(shards) > 3 else "")
        super().__init__(f"{shown or 'no shards'}: the epoch produced no sample ({reason})")
        self.shards, self.reason = list(shards), reason


class OptionError(IISError, ValueError):
    """An option value of the wrong type or out of range (``name``: the option)."""

    def __init__(self, owner: str, name: str, value: object, reason: str):
        super().__init__(f"{owner} option {name}={value!r}: {reason}")
        self.owner, self.name, self.value, self.reason = owner, name, value, reason


class FolderBusy(IISError):
    """An output folder another running process holds (see ``iis_pipe.outdir``)."""

    def __init__(self, folder: str, holder: str):
        super().__init__(f"{folder} is in use by another run ({holder}); wait for it to end "
                         "or choose another folder")
        self.folder, self.holder = str(folder), holder


class FolderNotEmpty(IISError):
    """An output folder that holds files a run would overwrite, or files it does not own."""
