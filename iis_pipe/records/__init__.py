"""Region records: the one schema that shard writers and readers share (see ``schema``)."""
