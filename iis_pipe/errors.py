"""Errors that name the offending file and the reason, so long jobs can record them and go on."""

from __future__ import annotations


class BadInput(Exception):
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
