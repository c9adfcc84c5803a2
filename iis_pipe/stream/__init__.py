"""Streaming training samples from record shards.

shard urls -> record refs (``reader``) -> deterministic epoch order (``order``) -> decode and
augment (``augment``) -> target region and clicks (``sample``) -> batches (``collate``).
``pipelines/stream.py`` composes them into a resumable torch ``IterableDataset``.
"""
