"""Engines run flows; the helpers here build them (``load``, ``run``...)."""

from taskflow.engines.helpers import flow_from_detail
from taskflow.engines.helpers import load
from taskflow.engines.helpers import load_from_detail
from taskflow.engines.helpers import load_from_factory
from taskflow.engines.helpers import run
from taskflow.engines.helpers import save_factory_details

__all__ = ['flow_from_detail', 'load', 'load_from_detail', 'load_from_factory', 'run',
           'save_factory_details']
