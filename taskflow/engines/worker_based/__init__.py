"""The worker-based engine: tasks run by workers reached through a message broker.

``engine.py`` (the engine), ``worker.py`` (the worker), ``executor.py``
(requests, engine side), ``_server.py`` (requests, worker side),
``proxy.py`` (kombu), ``protocol.py`` (messages).  See ``docs/workers.md``.
"""
