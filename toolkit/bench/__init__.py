"""``toolkit bench``: latency percentiles, memory and host fingerprint per configuration, kept in one SQLite store.

Modules (each one concern; nothing here imports TensorFlow):

* ``config``    -- BenchConfig, the defaults
* ``measure``   -- the timing loop and the per-configuration child process (``python -m toolkit.bench.measure``)
* ``inputs``    -- realistic inputs from the model's manifest kind, else seeded random
* ``host``      -- host fingerprint; ``vcgencmd get_throttled`` decoding
* ``modelinfo`` -- format (fp32/fp16/dynamic/int8) and family rules
* ``stats``     -- samples -> percentiles; compact sample storage
* ``store``     -- BenchStore (SQLite, WAL); ``record_accuracy()`` for evaluation results
* ``session``   -- bench_models(): measure many models x threads
* ``report`` / ``plot`` -- tables (text, md, csv, json, html) and matplotlib figures
* ``remote``    -- run on another machine over SSH
* ``commands``  -- what the CLI subcommands do

Kept import-free so that ``import toolkit.bench.store`` stays light.
"""
