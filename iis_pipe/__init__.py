"""iis-pipe: data-pipeline-first toolkit for interactive image segmentation research.

Data flows one way: sources -> regions -> records -> shards -> stream -> model -> metrics.
"""

__version__ = "0.1.0"
