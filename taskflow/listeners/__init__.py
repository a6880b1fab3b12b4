"""Listeners: objects that subscribe to an engine's notifications.

Modules: :mod:`.base` (``Listener``, ``DumpingListener``), :mod:`.printing`,
:mod:`.logging`, :mod:`.timing`, :mod:`.capturing`, :mod:`.claims`.
"""
