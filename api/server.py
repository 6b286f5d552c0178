"""Run the app under uvicorn with a graceful, bounded shutdown that exits 0.

On SIGTERM/SIGINT uvicorn stops accepting connections and waits (at most
`GOVTRACK_SHUTDOWN_TIMEOUT_S`) for requests in flight; from the signal on, requests that still
arrive on open connections get 503 `shutting_down` (`begin_shutdown`); then the lifespan drains the
writer, replays the spool once more and closes spool and store. The process then exits 0: uvicorn
would re-raise the signal after its graceful shutdown, which a supervisor counts as a crash.

A watchdog ends the process with status 1 if all that has not finished within the sum of its
bounds (requests, writer drain, final replay: 2.5 x the timeout) plus a margin (a hung store call
cannot be interrupted otherwise). Nothing acknowledged is lost
then either: acknowledged means stored or fsync'd in the spool.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from types import FrameType
from typing import Final

import uvicorn

from api.app import begin_shutdown, create_app
from api.logging import get_logger
from api.settings import Settings

__all__ = ["GracefulServer", "serve"]

#: Shutdown bounds: in-flight requests (1x), writer drain (1x), final replay (0.5x) of the timeout.
WATCHDOG_FACTOR: Final = 2.5
#: Extra seconds the shutdown watchdog allows beyond those bounds.
WATCHDOG_MARGIN_S: Final = 5.0

log = get_logger("govtrack.server")


class GracefulServer(uvicorn.Server):
    """uvicorn.Server that marks the app draining on a signal and does not re-raise it at exit."""

    def __init__(self, config: uvicorn.Config, *, on_signal: Callable[[], None], watchdog_s: float) -> None:
        super().__init__(config)
        self._on_signal = on_signal
        self._watchdog_s = watchdog_s
        self._watchdog: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Start the graceful stop (uvicorn), refuse new requests, arm the watchdog."""
        super().handle_exit(sig, frame)
        self._captured_signals.clear()  # a graceful stop exits 0, not by the signal
        self._on_signal()
        if self._watchdog is None:
            log.info("shutdown_requested", signal=sig)
            self._watchdog = threading.Timer(self._watchdog_s, _force_exit, args=(self._watchdog_s,))
            self._watchdog.daemon = True
            self._watchdog.start()


def _force_exit(after_s: float) -> None:
    """The shutdown did not finish in time (a hung store call): exit now, status 1."""
    log.error("shutdown_forced", after_s=after_s)
    os._exit(1)


def serve(settings: Settings, host: str, port: int) -> None:
    """Build the app and serve it until a signal ends it gracefully."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s)),
    )
    watchdog_s = WATCHDOG_FACTOR * settings.shutdown_timeout_s + WATCHDOG_MARGIN_S
    GracefulServer(config, on_signal=lambda: begin_shutdown(app), watchdog_s=watchdog_s).run()
