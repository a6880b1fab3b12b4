"""Conductors: claim jobs from a jobboard and run their flows.

``base.Conductor`` is the abstract API; ``backends.fetch('blocking' |
'nonblocking', ...)`` builds one (see ``docs/conductors.md``).
"""
