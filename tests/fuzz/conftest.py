"""Hypothesis settings of the fuzz tests (issue 12): derandomized (a fixed seed, so CI is
reproducible) with a bounded budget in ``make test``; ``make fuzz`` raises the number of
examples through ``CORREIO_FUZZ_EXAMPLES`` and turns derandomization off, so each long run
explores new inputs. A deadline per example is the "bounded time per input" property: an input
that takes longer fails the test like a crash would."""

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("CORREIO_FUZZ_EXAMPLES", "0") or 0)

settings.register_profile(
    "correio-ci",
    derandomize=True,
    max_examples=150,
    deadline=timedelta(seconds=1),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "correio-long",
    derandomize=False,
    max_examples=EXAMPLES or 5000,
    deadline=timedelta(seconds=1),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("correio-long" if EXAMPLES else "correio-ci")


def examples(ci: int) -> int:
    """The number of examples of one test: ``ci`` in ``make test``, the long budget in
    ``make fuzz``."""
    return EXAMPLES or ci
