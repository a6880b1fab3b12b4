"""Public helper types: ``failure``, ``notifier``, ``sets``, ``timing``,
``latch``, ``entity``, ``tree`` and ``graph`` (networkx based).

Import the submodules explicitly (``from taskflow.types import failure``);
nothing is imported eagerly here so that ``import taskflow`` stays cheap and
networkx is only loaded by code that needs graphs.
"""
