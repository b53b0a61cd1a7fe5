"""Hypothesis profiles for the protocol suite.

The profiles are registered here but applied per test (``proto_strategies.fuzz``), never loaded globally, so
other suites keep hypothesis' defaults. Under ``CI=true`` the "protocol-ci" profile runs: each fuzz test takes
a weighted share of its ``max_examples`` so that the decoders see more than 10,000 examples in all
(``test_protocol_fuzz.test_fuzz_budget_reaches_ten_thousand`` checks the sum).
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "protocol-ci",
    max_examples=1000,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "protocol-dev",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "protocol-roundtrip",
    max_examples=300 if os.environ.get("CI") == "true" else 60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
