"""Helper modules that programs and integrations import by path.

``misc``, ``threading_utils``, ``persistence_utils``, ``eventlet_utils``,
``kazoo_utils`` (needs kazoo), ``redis_utils`` (needs redis) and ``banner``.
Nothing is imported eagerly here.
"""
