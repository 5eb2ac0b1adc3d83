"""Fixtures of the end-to-end tests that run several nodes."""

from tests.e2e.cluster_helpers import cluster  # noqa: F401 - a fixture
from tests.e2e.outbound_helpers import gateways  # noqa: F401 - a fixture (cluster's)
