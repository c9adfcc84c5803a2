"""webdataset tar shards of records: atomic writing, tolerant reading, the parquet index."""
