// Relations and threads with matrix-js-sdk (thread support on, no crypto), two users A, B.
//
//   node relations_scenario.mjs '{"a": {"base_url": ..., "user_id": ..., "password": ...},
//                                 "b": {...}, "timeout_ms": 120000}'
//
// A makes a room and invites B. A sends a root message and edits it; B replies twice in a
// thread on it; A and B react to the root with the same key. Then A logs in on a new
// device and, from that fresh initial sync only, the script reads: the root shown edited,
// the thread list (from /threads) with the thread's replies (its timeline from
// /relations), and the reaction count.
//
// Prints one JSON object on stdout; the Python test asserts on the values.

import { Result, autoJoin, readConfig, sdk, waitForJoin, waitUntil } from "./lib/matrix.mjs";

const config = readConfig();
const result = new Result(config.timeout_ms || 120000);
const out = result.data;

async function start(account, initialSyncLimit = 20) {
    const anonymous = sdk.createClient({ baseUrl: account.base_url });
    const login = await anonymous.loginRequest({
        type: "m.login.password",
        identifier: { type: "m.id.user", user: account.user_id },
        password: account.password,
    });
    anonymous.stopClient();
    const client = sdk.createClient({
        baseUrl: account.base_url, userId: login.user_id, accessToken: login.access_token,
        deviceId: login.device_id,
    });
    const prepared = new Promise((resolve) => {
        client.on(sdk.ClientEvent.Sync, (state) => state === "PREPARED" && resolve());
    });
    await client.startClient({ initialSyncLimit, threadSupport: true });
    await prepared;
    return client;
}

const send = (client, roomId, content, type = "m.room.message") =>
    client.sendEvent(roomId, type, content).then((r) => r.event_id);

const clientA = await result.step("start_a", () => start(config.a));
const clientB = await result.step("start_b", () => start(config.b));
if (!clientA || !clientB) {
    result.finish();
}
autoJoin(clientB);

const sent = await result.step("send", async () => {
    const { room_id: roomId } = await clientA.createRoom({ invite: [config.b.user_id] });
    await waitForJoin(clientA, roomId);
    await waitUntil("B joined", () => clientA.getRoom(roomId)?.getMember(config.b.user_id)
        ?.membership === "join");
    const root = await send(clientA, roomId, { msgtype: "m.text", body: "root" });
    await send(clientA, roomId, {
        msgtype: "m.text", body: "* root edited",
        "m.new_content": { msgtype: "m.text", body: "root edited" },
        "m.relates_to": { rel_type: "m.replace", event_id: root },
    });
    const replies = [];
    for (const body of ["reply one", "reply two"]) {
        replies.push(await send(clientB, roomId, {
            msgtype: "m.text", body,
            "m.relates_to": { rel_type: "m.thread", event_id: root, is_falling_back: true,
                "m.in_reply_to": { event_id: replies.at(-1) || root } },
        }));
    }
    for (const client of [clientA, clientB]) {
        await send(client, roomId, { "m.relates_to": {
            rel_type: "m.annotation", event_id: root, key: "👍" } }, "m.reaction");
    }
    // The newest event, so that a device syncing 1 event sees no relation in its timeline.
    await send(clientA, roomId, { msgtype: "m.text", body: "filler" });
    out.root = root;
    out.replies = replies;
    return { roomId, root };
});
if (!sent) {
    result.finish();
}
clientA.stopClient();
clientB.stopClient();

// A fresh device: everything below comes from its initial sync and what it fetches.
const fresh = await result.step("fresh_start", () => start(config.a));
if (!fresh) {
    result.finish();
}
await result.step("edited", async () => {
    const room = fresh.getRoom(sent.roomId);
    const root = await waitUntil("root in the timeline", () => room.findEventById(sent.root));
    out.root_body = root.getContent().body;
    out.root_replaced_by = root.replacingEventId() || null;
});
await result.step("threads", async () => {
    const room = fresh.getRoom(sent.roomId);
    await room.createThreadsTimelineSets();
    await room.fetchRoomThreads();
    const thread = await waitUntil("the thread", () => room.getThread(sent.root));
    out.thread_ids = room.getThreads().map((t) => t.id);
    out.thread_length = thread.length;
    await waitUntil("thread replies", async () => {
        await thread.fetchInitialEvents?.();
        return thread.events.filter((e) => e.getId() !== sent.root).length >= 2;
    }, 20000, 500);
    out.thread_events = thread.events.map((e) => e.getId()).filter((id) => id !== sent.root);
    out.thread_bodies = thread.events.filter((e) => e.getId() !== sent.root)
        .map((e) => e.getContent().body);
});
await result.step("reactions", async () => {
    const room = fresh.getRoom(sent.roomId);
    const relations = await waitUntil("reactions", () => room.relations
        .getChildEventsForEvent(sent.root, "m.annotation", "m.reaction"));
    const byKey = relations.getSortedAnnotationsByKey() || [];
    out.reactions = Object.fromEntries(byKey.map(([key, events]) => [key, events.size]));
});
// A device whose initial sync holds only the filler: the edit reaches it only bundled
// with the thread root that /threads returns.
const narrow = await result.step("narrow_start", () => start(config.a, 1));
await result.step("edited_bundled", async () => {
    const room = narrow.getRoom(sent.roomId);
    // What Element does when the thread panel opens.
    await room.createThreadsTimelineSets();
    await room.fetchRoomThreadList(sdk.ThreadFilterType.All);
    const thread = await waitUntil("the thread", () => room.getThread(sent.root));
    const root = await waitUntil("the root", () => thread.rootEvent);
    out.bundled_root_body = root.getContent().body;
    out.bundled_thread_count = thread.length;
});
result.finish();
