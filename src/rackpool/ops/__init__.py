"""Open operations: log shipping, the log index, the Lucene query subset and known bugs.

Errors (``rackpool.ops.errors``)::

    RackpoolError
    └── OpsError
        ├── QuerySyntaxError   (also BadRequest) bad query; ``position`` is the offset
        ├── SignatureError     (also ConfigError) a known-bug YAML file is wrong; names it
        ├── IndexUnavailable   (also TemporaryError) the index cannot be reached / opened
        ├── OpsNotRunning      (also TemporaryError) no ops daemon found for a state dir
        └── ShippingStopped    (also TemporaryError) a remote shipper stopped before the
                               ops API took a batch (``rackpool.ops.remote``)
"""
