"""The event-loop watchdog of a mail process: measures how late the loop runs, logs when it lags,
and sheds new connections while it does (issue 12).

Every listener of ``runmail`` shares one asyncio loop, so anything that holds it (a CPU-bound
computation, a blocking call) stops every door at once. The rule is that nothing CPU-heavy or
unbounded runs on the loop (service calls go to the thread pool of
:mod:`mailcore.protocols.common.services`); this watchdog is how a breach of the rule shows up
(a WARNING naming the lag) and how the process protects what it already serves: while the loop
lags, a new connection gets the protocol's temporary refusal at once (SMTP 421 4.3.2, IMAP BYE,
POP3 -ERR [SYS/TEMP]) instead of joining the queue, and the clients retry later.

A ticker sleeps ``interval`` seconds and measures how much later than that it woke up. A lag
over ``threshold`` starts (or extends) a shedding period as long as the lag, at most ``hold``
seconds."""

import asyncio
import logging
from dataclasses import dataclass

from mailcore import metrics

logger = logging.getLogger("correio.listeners")

_by_loop: dict[asyncio.AbstractEventLoop, "LoopWatchdog"] = {}


@dataclass
class LoopWatchdog:
    threshold: float = 0.1
    interval: float = 0.05
    hold: float = 1.0
    # Warnings at most this often (a lagging loop must not also flood the log).
    log_every: float = 10.0
    lag: float = 0.0
    max_lag: float = 0.0
    lagging_ticks: int = 0
    shed_connections: int = 0
    _shed_until: float = 0.0
    _last_log: float = float("-inf")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.observe(now - started - self.interval, now)

    def observe(self, lag: float, now: float) -> None:
        self.lag = max(0.0, lag)
        metrics.LOOP_LAG.observe(self.lag)
        self.max_lag = max(self.max_lag, self.lag)
        if self.lag <= self.threshold:
            return
        self.lagging_ticks += 1
        # Shed about as long as the loop was late, at most ``hold``: a short stall (the host
        # busy with other processes) costs a short refusal window.
        self._shed_until = max(self._shed_until, now + min(self.hold, self.lag))
        if now - self._last_log >= self.log_every:
            self._last_log = now
            logger.warning(
                "event loop lagged %.0f ms (threshold %.0f ms): new connections are refused "
                "for %.1f s; something ran on the loop that should not, or the host is overloaded",
                self.lag * 1000, self.threshold * 1000, min(self.hold, self.lag),
            )

    def shedding(self) -> bool:
        """True while the loop lags: new connections are refused with a temporary error."""
        loop = asyncio.get_running_loop()
        if loop.time() < self._shed_until:
            self.shed_connections += 1
            return True
        return False


def start(loop_watchdog: LoopWatchdog | None = None) -> asyncio.Task:
    """Start a watchdog on the running loop (``runner.serve`` does; tests may)."""
    loop = asyncio.get_running_loop()
    watchdog = loop_watchdog or LoopWatchdog()
    _by_loop[loop] = watchdog
    task = loop.create_task(watchdog.run(), name="correio-loop-watchdog")
    task.add_done_callback(lambda _task: _by_loop.pop(loop, None))
    return task


def current() -> LoopWatchdog | None:
    try:
        return _by_loop.get(asyncio.get_running_loop())
    except RuntimeError:
        return None


def shedding() -> bool:
    """Whether a listener on this loop should refuse a new connection now."""
    watchdog = current()
    return watchdog is not None and watchdog.shedding()
