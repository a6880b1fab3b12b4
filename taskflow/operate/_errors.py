"""Why an operator action or lookup was refused.

Hierarchy (all are :class:`taskflow.exceptions.TaskFlowException`)::

    OperatorError          base class: the message is one line meant for a person
    ├── FlowNotFound       no flow matches the reference (or several do)
    ├── FlowBusy           the flow is being run elsewhere (a live lease)
    └── ActionRefused      the action makes no sense for the flow's state
"""

from __future__ import annotations

from taskflow import exceptions as exc


class OperatorError(exc.TaskFlowException):
    """An operator request that cannot be carried out (nothing was changed)."""

    def __str__(self) -> str:
        # One line for people (and the CLI); the cause stays in ``cause``.
        return str(self.args[0])


class FlowNotFound(OperatorError):
    """No flow (or more than one) matches what was asked for."""


class FlowBusy(OperatorError):
    """The flow is being run (or changed) by someone else right now."""


class ActionRefused(OperatorError):
    """The action does not apply to the flow (or atom) in its current state."""
