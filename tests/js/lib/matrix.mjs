// Shared helpers for the scenario scripts: a logged-in matrix-js-sdk client with its Rust
// crypto, bounded waits, and a JSON result printed on stdout whatever happens.
//
// The SDK logs through `console`; stdout carries only the result, so every console method
// is sent to stderr (the Python test shows stderr when an assertion fails).

import * as sdk from "matrix-js-sdk";
import { logger } from "matrix-js-sdk/lib/logger.js";

const debug = process.env.AXON_JS_LOG_LEVEL === "debug";
for (const name of ["log", "info", "debug", "trace", "warn"]) {
    // The Rust crypto traces at debug level, a few thousand lines a scenario: only on demand.
    const quiet = !debug && (name === "debug" || name === "trace");
    console[name] = quiet ? () => {} : (...args) => console.error(...args);
}
logger.setLevel(process.env.AXON_JS_LOG_LEVEL || "warn");

/** Parse the one JSON argument (or the AXON_E2E_CONFIG variable) that the test passes. */
export function readConfig() {
    const raw = process.argv[2] || process.env.AXON_E2E_CONFIG;
    if (!raw) {
        throw new Error("usage: node SCRIPT.mjs '<json config>' (or AXON_E2E_CONFIG)");
    }
    return JSON.parse(raw);
}

/**
 * The result object and its steps: each step runs once, records its error instead of
 * throwing, and the whole result is printed on exit (normal, error, or the watchdog).
 */
export class Result {
    constructor(timeoutMs) {
        this.data = { errors: [] };
        this._printed = false;
        this._timer = setTimeout(() => {
            this.data.errors.push({ step: "watchdog", error: `timed out after ${timeoutMs} ms` });
            this.finish(3);
        }, timeoutMs);
    }

    /** Run `fn` for at most `timeoutMs`; on failure note the step's error, return undefined. */
    async step(name, fn, timeoutMs = 60000) {
        const started = Date.now();
        let timer;
        const timeout = new Promise((_resolve, reject) => {
            timer = setTimeout(() => reject(new Error(`step timed out after ${timeoutMs} ms`)),
                timeoutMs);
        });
        try {
            const value = await Promise.race([fn(), timeout]);
            this.data[`${name}_ms`] = Date.now() - started;
            return value;
        } catch (err) {
            this.data.errors.push({ step: name, error: String(err?.stack || err) });
            return undefined;
        } finally {
            clearTimeout(timer);
        }
    }

    finish(code = 0) {
        if (!this._printed) {
            this._printed = true;
            clearTimeout(this._timer);
            process.stdout.write(JSON.stringify(this.data) + "\n");
        }
        // The SDK leaves timers and sockets behind: exit rather than wait for them.
        process.exit(code);
    }
}

/** Resolve when `predicate()` is truthy (polled), or fail after `timeoutMs`. */
export async function waitUntil(what, predicate, timeoutMs = 30000, intervalMs = 100) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await predicate();
        if (value) {
            return value;
        }
        if (Date.now() > deadline) {
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        }
        await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
}

/** Resolve with the arguments of the first `event` from `emitter` that passes `filter`. */
export function waitForEvent(emitter, event, what, filter = () => true, timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
            emitter.off(event, listener);
            reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        function listener(...args) {
            if (filter(...args)) {
                clearTimeout(timer);
                emitter.off(event, listener);
                resolve(args);
            }
        }
        emitter.on(event, listener);
    });
}

/**
 * Log in with a password (a new device each time), start Rust crypto with an in-memory
 * store, and sync until the client is prepared.
 *
 * `account` is {base_url, user_id, password}. `secrets.key` (a Uint8Array), when set, is
 * the secret-storage key the client hands out when the SDK asks for it.
 */
export async function startClient(account, deviceName, secrets = {}) {
    const anonymous = sdk.createClient({ baseUrl: account.base_url });
    const login = await anonymous.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: account.user_id },
        password: account.password,
        initial_device_display_name: deviceName,
    });
    anonymous.stopClient();
    const client = sdk.createClient({
        baseUrl: account.base_url,
        userId: login.user_id,
        accessToken: login.access_token,
        deviceId: login.device_id,
        cryptoCallbacks: {
            getSecretStorageKey: async ({ keys }) => {
                if (!secrets.key) {
                    return null;
                }
                const keyId = secrets.keyId && keys[secrets.keyId] ? secrets.keyId
                    : Object.keys(keys)[0];
                return [keyId, secrets.key];
            },
            cacheSecretStorageKey: (keyId, _info, key) => {
                secrets.keyId = keyId;
                secrets.key = key;
            },
        },
    });
    // Node has no IndexedDB: the in-memory store is what a test wants anyway.
    await client.initRustCrypto({ useIndexedDB: false });
    const prepared = waitForEvent(client, sdk.ClientEvent.Sync, `${account.user_id} first sync`,
        (state) => state === "PREPARED", 60000);
    await client.startClient({ initialSyncLimit: 20 });
    await prepared;
    return client;
}

/** Answer user-interactive auth with the account's password (if the server asks). */
export function passwordAuth(account) {
    return async (makeRequest) => {
        try {
            await makeRequest(null);
        } catch (err) {
            const session = err?.data?.session;
            if (err?.httpStatus !== 401 || !err?.data?.flows) {
                throw err;
            }
            await makeRequest({
                type: "m.login.password",
                identifier: { type: "m.id.user", user: account.user_id },
                password: account.password,
                session,
            });
        }
    };
}

/**
 * Wait until `client` holds the event `eventId` of `roomId` and has tried to decrypt it;
 * returns the MatrixEvent.
 */
export async function waitForDecryptedEvent(client, roomId, eventId, timeoutMs = 30000) {
    return waitUntil(`event ${eventId} decrypted by ${client.getUserId()}`, async () => {
        const event = client.getRoom(roomId)?.findEventById(eventId);
        if (!event || event.isBeingDecrypted() || event.isDecryptionFailure()) {
            if (event?.isDecryptionFailure()) {
                // Keys may arrive after the event: ask again (a no-op while they are missing).
                await client.decryptEventIfNeeded(event, { isRetry: true });
            }
            return null;
        }
        return event.getType() === "m.room.message" ? event : null;
    }, timeoutMs, 200);
}

/** Wait until `client` sees itself joined to `roomId`. */
export function waitForJoin(client, roomId, timeoutMs = 30000) {
    return waitUntil(`${client.getUserId()} joined ${roomId}`,
        () => client.getRoom(roomId)?.getMyMembership() === "join", timeoutMs);
}

/**
 * Join every room `client` is invited to, as invites arrive. A few tries: the inviting
 * server may answer a join over federation before it has stored its own invite.
 */
export function autoJoin(client) {
    client.on(sdk.RoomMemberEvent.Membership, async (_event, member) => {
        if (member.membership !== "invite" || member.userId !== client.getUserId()) {
            return;
        }
        for (let attempt = 1; attempt <= 5; attempt++) {
            try {
                await client.joinRoom(member.roomId);
                return;
            } catch (err) {
                console.error(`auto-join of ${member.roomId}, try ${attempt}: ${err}`);
                await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
            }
        }
    });
}

/** Send a text message and return its event id. */
export async function sendText(client, roomId, body) {
    const answer = await client.sendEvent(roomId, "m.room.message", { msgtype: "m.text", body });
    return answer.event_id;
}

export { sdk };
