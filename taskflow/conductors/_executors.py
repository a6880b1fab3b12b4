"""An executor that runs what is submitted at once, in the caller's thread
(the blocking conductor runs its job in the ``run()`` thread)."""

from __future__ import annotations

from concurrent import futures
from typing import Any, Callable


class SynchronousExecutor(futures.Executor):
    """``submit`` runs the call and returns its finished future."""

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
               ) -> futures.Future:
        if self._shutdown:
            raise RuntimeError('Can not schedule new futures after being shut down')
        fut: futures.Future = futures.Future()
        fut.set_running_or_notify_cancel()
        try:
            result = fn(*args, **kwargs)
        except BaseException as error:  # the future carries it, like a pool's
            fut.set_exception(error)
            if not isinstance(error, Exception):
                raise
        else:
            fut.set_result(result)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown = True
