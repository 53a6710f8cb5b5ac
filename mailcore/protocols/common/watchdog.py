"""The event-loop watchdog of a mail process: measures how late the loop runs, logs when it lags,
and sheds new connections while it is stalled (issue 12).

Every listener of ``runmail`` shares one asyncio loop, so anything that holds it (a CPU-bound
computation, a blocking call) stops every door at once. The rule is that nothing CPU-heavy or
unbounded runs on the loop (service calls go to the thread pool of
:mod:`mailcore.protocols.common.services`); this watchdog is how a breach of the rule shows up
(a WARNING naming the lag) and how the process protects what it already serves once the loop
is stalled: a new connection then gets the protocol's temporary refusal at once (SMTP
``421 4.3.2``, IMAP ``BYE [UNAVAILABLE]``, POP3 ``-ERR [SYS/TEMP]``, ManageSieve
``BYE (TRYLATER)``) instead of joining the queue, and the clients retry later.

Lag is not stall. The service threads hold the GIL while they parse and store mail, and the
loop waits for it: ten SMTP sessions sending on a 2-core machine make 100-300 ms lags routine,
and Postfix's ``smtp-source -s 10`` was answered ``421`` at its banner when any lag over 100 ms
shed connections. So the two thresholds differ:

- ``threshold`` (0.1 s): a lag worth a WARNING (at most every ``log_every`` seconds) and the
  metric; nothing is refused.
- the loop is **stalled** when one tick comes ``stall`` seconds late (2 s: the loop was held,
  a breach of the rule), or when every tick has come at least ``stall / 2`` late for
  ``sustain`` seconds (a loop that runs a callback only every second or more cannot greet
  anyone in time). Only then are new connections shed: for as long as the last lag, at most
  ``hold`` seconds, and again at every tick while the loop stays that late.

A ticker sleeps ``interval`` seconds and measures how much later than that it woke up."""

import asyncio
import logging
from dataclasses import dataclass

from mailcore import metrics

logger = logging.getLogger("correio.listeners")

_by_loop: dict[asyncio.AbstractEventLoop, "LoopWatchdog"] = {}


@dataclass
class LoopWatchdog:
    threshold: float = 0.1
    stall: float = 2.0
    sustain: float = 5.0
    interval: float = 0.05
    hold: float = 5.0
    # Warnings at most this often (a lagging loop must not also flood the log).
    log_every: float = 10.0
    lag: float = 0.0
    max_lag: float = 0.0
    lagging_ticks: int = 0
    stalls: int = 0
    shed_connections: int = 0
    _shed_until: float = float("-inf")
    _late_since: float | None = None
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
            self._late_since = None
            return
        self.lagging_ticks += 1
        # The run of ticks each at least half a stall late, and since when (the tick's start).
        if self.lag >= self.stall / 2:
            if self._late_since is None:
                self._late_since = now - self.lag - self.interval
        else:
            self._late_since = None
        stalled = self.lag >= self.stall or (
            self._late_since is not None and now - self._late_since >= self.sustain
        )
        if stalled:
            if now >= self._shed_until:
                self.stalls += 1
            self._shed_until = max(self._shed_until, now + min(self.hold, self.lag))
        if now - self._last_log >= self.log_every:
            self._last_log = now
            if stalled:
                logger.warning(
                    "event loop stalled %.0f ms (stall threshold %.0f ms): new connections are "
                    "refused for %.1f s; something ran on the loop that should not, or the host "
                    "is overloaded", self.lag * 1000, self.stall * 1000, min(self.hold, self.lag),
                )
            else:
                logger.warning(
                    "event loop lagged %.0f ms (threshold %.0f ms; nothing refused below a "
                    "%.0f ms stall): the host is busy or something ran on the loop",
                    self.lag * 1000, self.threshold * 1000, self.stall * 1000,
                )

    def shedding(self) -> bool:
        """True while the loop is stalled: new connections are refused with a temporary
        error."""
        if self.stalled_at(asyncio.get_running_loop().time()):
            self.shed_connections += 1
            return True
        return False

    def stalled_at(self, now: float) -> bool:
        """Whether ``now`` (the loop's clock) falls in a shedding period."""
        return now < self._shed_until


def for_config(config) -> LoopWatchdog:
    """The watchdog a mail process runs with its ``ListenerConfig``'s thresholds."""
    return LoopWatchdog(threshold=config.loop_lag_threshold, stall=config.loop_stall)


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
