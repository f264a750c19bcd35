"""End-to-end keys between Axon and a real Synapse: queries, claims and device-list
updates both ways (the scenarios of tests/federation/test_two_servers_e2e.py)."""

from __future__ import annotations

import unittest
from typing import Any

from tests.federation.test_two_servers_e2e import TwoServerKeyScenarios
from tests.integration.synapse_process import SynapseProcess


class AxonSynapseKeysTestCase(TwoServerKeyScenarios, unittest.TestCase):
    """Synapse is B: its users' keys are queried and claimed from Axon, and Synapse
    queries and claims ours."""

    @classmethod
    def make_b(cls) -> Any:
        return SynapseProcess()
