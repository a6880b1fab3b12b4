"""The live web view: ``taskflow web`` (or :func:`create_app` in your own ASGI server).

Pages: the logbooks and flows, with filters (``/``), and one page per flow
(``/flows/<uuid>``) with its graph coloured by state, atoms with durations,
results (masked) and failures, and the operator actions taken; both update
live (server-sent events) while flows run.  With ``allow_actions`` the flow
page also has the operator controls (retry from the failed atom, skip,
resume, resume without reverting, revert) as buttons that ask for
confirmation (and a reason, which is recorded).

Needs the ``web`` extra (Starlette, uvicorn, Jinja2).
"""

from __future__ import annotations

from typing import Any

__all__ = ['create_app', 'serve']


def _require() -> None:
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
    except ImportError as error:
        raise ImportError("the web view needs its extra: pip install 'taskflow-ng[web]' (%s)"
                          % error) from error


def create_app(backend: Any, **options: Any) -> Any:
    """The ASGI application (see :func:`taskflow.web._app.create_app`)."""
    _require()
    from taskflow.web import _app
    return _app.create_app(backend, **options)


def serve(backend: Any, host: str = '127.0.0.1', port: int = 8765, **options: Any) -> None:
    """Serve :func:`create_app` with uvicorn until interrupted."""
    _require()
    from taskflow.web import _app
    _app.serve(backend, host=host, port=port, **options)
