"""The camera pipeline (``toolkit demo``): capture -> detect -> track -> behaviour -> segment -> draw -> outputs.

Modules, one concern each (importing this package imports none of them: keep ``toolkit --help`` fast):
``sources`` (threaded newest-frame capture), ``detect``, ``tracker``, ``behaviour``, ``segment``, ``draw``,
``events`` (JSONL schema), ``server`` (live web view), ``health``, ``geometry``, ``config`` (PipelineConfig),
``model_files`` (find models by kind), ``stage_thread`` / ``track_stage`` / ``outputs`` (the threaded stages,
the recorder), ``timing`` and ``demo`` (:func:`toolkit.pipeline.demo.run_demo`, which ties them together).
"""
