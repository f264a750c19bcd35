"""matrix-js-sdk with its Rust crypto (the stack of Element Web) under Node, end to end.

tests/js/e2e_scenario.mjs drives two users: an encrypted room with a message each way,
an interactive SAS verification after which each sees the other as cross-signing verified,
and a new device restoring the server-side key backup to decrypt an old message. Here the
servers are started, the users registered, and the JSON the script prints is checked: on
Axon alone (SQLite and PostgreSQL), between Axon and Synapse 1.163 over federation, and
between two Synapse users as the reference that proves the script itself.
"""

from __future__ import annotations

import itertools
import unittest

from tests.integration.server_process import ServerProcess
from tests.integration.synapse_process import AxonSynapsePair, SynapseProcess
from tests.js.runner import ScriptResult, require_packages, run_script

ALL_STEPS = ["messages", "verification", "backup"]
_names = itertools.count()


def account(server: ServerProcess | SynapseProcess, role: str) -> dict[str, str]:
    """Register a fresh user on `server`; what the script needs to log in as them."""
    localpart = f"{role}{next(_names)}"
    password = f"{localpart}-password-1"
    user_id = server.register_user(localpart, password)
    return {"base_url": server.base_url, "user_id": user_id, "password": password}


def run_scenario(a: dict[str, str], b: dict[str, str],
                 steps: list[str] = ALL_STEPS) -> ScriptResult:
    require_packages("matrix-js-sdk", "@matrix-org/matrix-sdk-crypto-wasm")
    return run_script("e2e_scenario.mjs", {"a": a, "b": b, "steps": steps,
                                           "timeout_ms": 150_000}, timeout=180)


class ScenarioChecks:
    """Assertions on what e2e_scenario.mjs printed, one group per step (a TestCase mixin)."""

    def logs(self) -> str:
        return ""

    def fail_with(self, result: ScriptResult, what: str) -> str:
        return f"{what}\n{result.explain()}\n{self.logs()}"

    def check_messages(self, r: ScriptResult) -> None:
        msg = self.fail_with(r, "encrypted messages")
        self.assertTrue(r["a_cross_signing_ready"] and r["b_cross_signing_ready"], msg)
        self.assertTrue(r["a_secret_storage_ready"], msg)
        self.assertTrue(r["room_encrypted_for_a"], msg)
        self.assertTrue(r["a_sent"], msg)
        self.assertEqual(r["b_decrypted"], r["a_sent"], msg)
        self.assertEqual(r["a_decrypted"], r["b_sent"], msg)
        self.assertTrue(r["a_saw_encrypted"] and r["b_saw_encrypted"], msg)
        self.assertEqual(r["server_event_type"], "m.room.encrypted", msg)
        self.assertIs(r["server_has_plaintext"], False, msg)

    def check_verification(self, r: ScriptResult) -> None:
        msg = self.fail_with(r, "SAS verification and cross-signing")
        self.assertTrue(r["sas_emojis_match"], msg)
        self.assertTrue(r["a_request_done"] and r["b_request_done"], msg)
        self.assertIs(r["a_sees_b_verified"], True, msg)
        self.assertIs(r["b_sees_a_verified"], True, msg)
        self.assertIs(r["a_sees_b_device_verified"], True, msg)
        self.assertIs(r["a_signature_on_b_master"], True, msg)
        self.assertIs(r["b_signature_on_a_master"], True, msg)

    def check_backup(self, r: ScriptResult) -> None:
        msg = self.fail_with(r, "key backup restore on a new device")
        self.assertTrue(r["backup_version"], msg)
        self.assertGreaterEqual(r["backup_sessions"] or 0, 1, msg)
        self.assertNotEqual(r["a2_device"], r["a_device"], msg)
        self.assertIs(r["a2_failed_before_restore"], True, msg)
        self.assertEqual(r["a2_backup_version_found"], r["backup_version"], msg)
        self.assertGreaterEqual(r["restore_imported"] or 0, 1, msg)
        self.assertEqual(r["restored_body"], r["a_sent"], msg)

    def check_all(self, r: ScriptResult) -> None:
        self.check_messages(r)
        self.check_verification(r)
        self.check_backup(r)
        self.assertEqual(r.errors, [], self.fail_with(r, "no step failed"))


class AxonJsCryptoTests(ScenarioChecks):
    engine = "sqlite3"
    server: ServerProcess

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = ServerProcess(cls.engine)
        try:
            cls.server.start()
        except BaseException:
            cls.server.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.close()

    def logs(self) -> str:
        return f"--- Axon log (end) ---\n{self.server.log()[-6000:]}"

    def test_encrypt_verify_and_restore_backup(self) -> None:
        """Two Axon users: encrypted messages both ways, SAS cross-signing, backup restore."""
        self.check_all(run_scenario(account(self.server, "alice"),
                                    account(self.server, "bob")))


class SqliteJsCryptoTestCase(AxonJsCryptoTests, unittest.TestCase):
    engine = "sqlite3"


class PostgresJsCryptoTestCase(AxonJsCryptoTests, unittest.TestCase):
    engine = "psycopg2"


class FederatedJsCryptoTestCase(AxonSynapsePair, ScenarioChecks, unittest.TestCase):
    """Axon and Synapse users, and two Synapse users as the reference."""

    axon: ServerProcess
    synapse: SynapseProcess

    def test_axon_user_with_synapse_user(self) -> None:
        """An Axon user's encrypted room with a Synapse user: messages, SAS, backup."""
        self.check_all(run_scenario(account(self.axon, "alice"),
                                    account(self.synapse, "sam")))

    def test_synapse_user_with_axon_user(self) -> None:
        """The room on Synapse, the Axon user invited over federation: messages and SAS."""
        r = run_scenario(account(self.synapse, "sam"), account(self.axon, "bob"),
                         steps=["messages", "verification"])
        self.check_messages(r)
        self.check_verification(r)
        self.assertEqual(r.errors, [], self.fail_with(r, "no step failed"))

    def test_reference_two_synapse_users(self) -> None:
        """The scenario itself holds between two Synapse users (so a failure above is ours)."""
        self.check_all(run_scenario(account(self.synapse, "sam"),
                                    account(self.synapse, "sue")))
