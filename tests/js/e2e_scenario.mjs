// End-to-end encryption with matrix-js-sdk and its Rust crypto (the stack of Element Web),
// between two users A and B, who may live on different homeservers.
//
//   node e2e_scenario.mjs '{"a": {"base_url": ..., "user_id": ..., "password": ...},
//                           "b": {...}, "steps": ["messages", "verification", "backup"],
//                           "timeout_ms": 150000}'
//
// Steps (each records its error and the later ones that need it are skipped):
//   (always)      both log in on a new device; A bootstraps cross-signing and secret
//                 storage with a new key backup, B bootstraps cross-signing.
//   messages      A makes an encrypted room and invites B; one message each way, each
//                 decrypted by the other.
//   verification  A asks B's device for an interactive SAS verification (to-device); both
//                 confirm; each then sees the other as cross-signing verified, and the
//                 server returns each one's signature on the other's master key.
//   backup        A's first device waits for its room key in the server-side backup and
//                 stops; A logs in on a new device, fails to decrypt the first message,
//                 restores the backup with the recovery key, and decrypts it.
//
// Prints one JSON object on stdout (see `result.data`), exit 0 even when a step failed:
// the Python test asserts on the values.

import {
    Result, autoJoin, passwordAuth, readConfig, sdk, sendText, startClient, waitForDecryptedEvent,
    waitForEvent, waitForJoin, waitUntil,
} from "./lib/matrix.mjs";
import { CryptoEvent } from "matrix-js-sdk/lib/crypto-api/index.js";
import { decodeRecoveryKey } from "matrix-js-sdk/lib/crypto-api/recovery-key.js";
import { VerificationPhase } from "matrix-js-sdk/lib/crypto-api/verification.js";

const config = readConfig();
const steps = new Set(config.steps || ["messages", "verification", "backup"]);
const result = new Result(config.timeout_ms || 150000);
const out = result.data;
const A = config.a;
const B = config.b;
const secretsA = {};

const clientA = await result.step("start_a", () => startClient(A, "js-sdk A1", secretsA), 75000);
const clientB = await result.step("start_b", () => startClient(B, "js-sdk B1"), 75000);
if (!clientA || !clientB) {
    result.finish();
}
out.a_device = clientA.getDeviceId();
out.b_device = clientB.getDeviceId();
autoJoin(clientB);
const cryptoA = clientA.getCrypto();
const cryptoB = clientB.getCrypto();

// Cross-signing for both; for A also secret storage holding a new key backup's key.
const bootstrapped = await result.step("bootstrap", async () => {
    await cryptoA.bootstrapCrossSigning({ authUploadDeviceSigningKeys: passwordAuth(A) });
    const recovery = await cryptoA.createRecoveryKeyFromPassphrase();
    await cryptoA.bootstrapSecretStorage({
        createSecretStorageKey: async () => recovery,
        setupNewSecretStorage: true,
        setupNewKeyBackup: true,
    });
    out.recovery_key = recovery.encodedPrivateKey;
    await cryptoB.bootstrapCrossSigning({ authUploadDeviceSigningKeys: passwordAuth(B) });
    out.a_cross_signing_ready = await cryptoA.isCrossSigningReady();
    out.b_cross_signing_ready = await cryptoB.isCrossSigningReady();
    out.a_secret_storage_ready = await cryptoA.isSecretStorageReady();
    return true;
});

let roomId;
let firstEventId;
const messages = bootstrapped && steps.has("messages") && await result.step("messages", async () => {
    const created = await clientA.createRoom({
        name: "e2e scenario",
        invite: [B.user_id],
        initial_state: [{
            type: "m.room.encryption", state_key: "",
            content: { algorithm: "m.megolm.v1.aes-sha2" },
        }],
    });
    roomId = created.room_id;
    out.room_id = roomId;
    await waitForJoin(clientA, roomId);
    await waitForJoin(clientB, roomId, 60000);
    // A must see B's join before encrypting, or B gets no room key.
    await waitUntil("A sees B joined", () =>
        clientA.getRoom(roomId)?.getMember(B.user_id)?.membership === "join", 60000);
    out.room_encrypted_for_a = await cryptoA.isEncryptionEnabledInRoom(roomId);

    out.a_sent = `hello from A ${Date.now()}`;
    firstEventId = await sendText(clientA, roomId, out.a_sent);
    const atB = await waitForDecryptedEvent(clientB, roomId, firstEventId, 60000);
    out.b_decrypted = atB.getContent().body;
    out.b_saw_encrypted = atB.isEncrypted();

    out.b_sent = `reply from B ${Date.now()}`;
    const replyId = await sendText(clientB, roomId, out.b_sent);
    const atA = await waitForDecryptedEvent(clientA, roomId, replyId, 60000);
    out.a_decrypted = atA.getContent().body;
    out.a_saw_encrypted = atA.isEncrypted();

    // The server stores only ciphertext: the event as the server has it is m.room.encrypted.
    const raw = await clientA.fetchRoomEvent(roomId, firstEventId);
    out.server_event_type = raw.type;
    out.server_has_plaintext = JSON.stringify(raw).includes(out.a_sent);
    return true;
}, 120000);

if (messages && steps.has("verification")) {
    await result.step("verification", async () => {
        const received = waitForEvent(clientB, CryptoEvent.VerificationRequestReceived,
            "B receives the verification request", () => true, 60000);
        // A fresh /keys/query, so A knows B's device and its cross-signing keys.
        await cryptoA.getUserDeviceInfo([B.user_id], true);
        const requestA = await cryptoA.requestDeviceVerification(B.user_id, out.b_device);
        const [requestB] = await received;
        await requestB.accept();
        await waitUntil("A's request ready", () => requestA.phase === VerificationPhase.Ready,
            60000);
        const verifierA = await requestA.startVerification("m.sas.v1");
        await waitUntil("B's verifier", () => requestB.verifier, 60000);
        const verifierB = requestB.verifier;
        // Both sides "compare" the emojis (they must match) and confirm.
        const emojis = {};
        const confirmed = [["a", verifierA], ["b", verifierB]].map(async ([side, verifier]) => {
            const sas = await waitUntil(`SAS shown to ${side}`,
                () => verifier.getShowSasCallbacks(), 60000);
            emojis[side] = sas.sas.emoji?.map(([emoji]) => emoji).join("");
            await sas.confirm();
        });
        await Promise.all([verifierA.verify(), verifierB.verify(), ...confirmed]);
        out.verification_stage = "sas confirmed";
        out.sas_emojis_match = Boolean(emojis.a) && emojis.a === emojis.b;
        out.a_request_done = requestA.phase === VerificationPhase.Done;
        out.b_request_done = requestB.phase === VerificationPhase.Done;

        // Each now has the other cross-signing verified, and the server keeps the
        // signatures: /keys/query shows the querier's user-signing signature on the other's
        // master key. Each is waited for on its own, so that all four are reported.
        const trusts = (crypto, userId) => async () =>
            (await crypto.getUserVerificationStatus(userId)).isCrossSigningVerified();
        const checks = {
            a_sees_b_verified: trusts(cryptoA, B.user_id),
            b_sees_a_verified: trusts(cryptoB, A.user_id),
            a_signature_on_b_master: () => hasUserSigningSignature(clientA, B.user_id),
            b_signature_on_a_master: () => hasUserSigningSignature(clientB, A.user_id),
        };
        await Promise.all(Object.entries(checks).map(async ([key, check]) => {
            out[key] = await waitUntil(key, check, 20000, 250).catch(() => false);
        }));
        out.a_sees_b_device_verified = (await cryptoA.getDeviceVerificationStatus(
            B.user_id, out.b_device))?.crossSigningVerified ?? false;
        return true;
    }, 90000);
}

if (messages && steps.has("backup")) {
    await result.step("backup", async () => {
        // The backup made by the bootstrap becomes active once the SDK has checked it.
        const version = await waitUntil("A's key backup active",
            () => cryptoA.getActiveSessionBackupVersion(), 30000, 200);
        out.backup_version = version;
        // The backup loop uploads in the background: wait for the room's session.
        out.backup_sessions = await waitUntil("the room key in the backup", async () => {
            const keys = await clientA.http.authedRequest(sdk.Method.Get, "/room_keys/keys",
                { version });
            const sessions = Object.keys(keys?.rooms?.[roomId]?.sessions || {});
            return sessions.length || null;
        }, 60000, 500);
        out.backup_stage = "key uploaded";
        // Stop A1 so that the new device can only get the key from the backup.
        clientA.stopClient();

        const secretsA2 = { key: decodeRecoveryKey(out.recovery_key) };
        const clientA2 = await startClient(A, "js-sdk A2", secretsA2);
        out.a2_device = clientA2.getDeviceId();
        out.backup_stage = "new device started";
        const cryptoA2 = clientA2.getCrypto();
        const raw = await clientA2.fetchRoomEvent(roomId, firstEventId);
        const before = new sdk.MatrixEvent(raw);
        await clientA2.decryptEventIfNeeded(before);
        out.a2_failed_before_restore = before.isDecryptionFailure();

        out.backup_stage = "decrypted before restore";
        await cryptoA2.loadSessionBackupPrivateKeyFromSecretStorage();
        out.backup_stage = "backup key loaded from secret storage";
        const check = await cryptoA2.checkKeyBackupAndEnable();
        out.a2_backup_version_found = check?.backupInfo?.version ?? null;
        out.backup_stage = "backup enabled";
        const restored = await cryptoA2.restoreKeyBackup();
        out.backup_stage = "restored";
        out.restore_total = restored.total;
        out.restore_imported = restored.imported;

        const after = new sdk.MatrixEvent(await clientA2.fetchRoomEvent(roomId, firstEventId));
        await clientA2.decryptEventIfNeeded(after);
        out.restored_body = after.isDecryptionFailure() ? null : after.getContent().body;
        clientA2.stopClient();
        return true;
    }, 90000);
}

result.finish();

/** Whether `client`'s /keys/query shows its own user-signing signature on `userId`'s master key. */
async function hasUserSigningSignature(client, userId) {
    const me = client.getUserId();
    const answer = await client.http.authedRequest(sdk.Method.Post, "/keys/query", undefined,
        { device_keys: { [userId]: [], [me]: [] } });
    const usk = Object.keys(answer?.user_signing_keys?.[me]?.keys || {})[0];
    const signatures = answer?.master_keys?.[userId]?.signatures?.[me] || {};
    return Boolean(usk && signatures[usk]);
}
