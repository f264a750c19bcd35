// Hydrogen (hydrogen-view-sdk, Olm crypto) in headless Chromium, talking to a matrix-js-sdk
// user (Rust crypto) in an end-to-end encrypted room.
//
//   node hydrogen_scenario.mjs '{"page_url": "http://127.0.0.1:P/hydrogen/index.html",
//       "hydrogen": {"base_url": ..., "user_id": ..., "password": ...},
//       "peer": {"base_url": ..., "user_id": ..., "password": ...},
//       "chromium": "/usr/bin/chromium", "screenshot": "/tmp/x.png", "timeout_ms": 120000}'
//
// In the page, Hydrogen logs in, creates an encrypted room inviting the peer and opens it;
// the peer (js-sdk, in this process) joins. Puppeteer types a message into Hydrogen's
// composer and presses Enter; the peer decrypts it and replies; the test waits until the
// reply's text shows in Hydrogen's timeline, then takes a screenshot. Prints one JSON
// object on stdout.

import puppeteer from "puppeteer-core";

import {
    Result, autoJoin, sendText, startClient, readConfig, waitForJoin, waitUntil,
} from "./lib/matrix.mjs";

const config = readConfig();
const result = new Result(config.timeout_ms || 120000);
const out = result.data;
const H = config.hydrogen;
const P = config.peer;
const pageLog = [];

let browser;
const peer = await result.step("start_peer", () => startClient(P, "js-sdk peer"));
if (peer) {
    autoJoin(peer);
}
const page = peer && await result.step("open_page", async () => {
    browser = await puppeteer.launch({
        executablePath: config.chromium || "/usr/bin/chromium",
        headless: true,
        // Root in a container: no sandbox; no GPU, small /dev/shm.
        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    const tab = await browser.newPage();
    await tab.setViewport({ width: 1000, height: 700 });
    tab.on("console", (msg) => pageLog.push(`console.${msg.type()}: ${msg.text()}`));
    tab.on("pageerror", (err) => pageLog.push(`pageerror: ${err}`));
    tab.on("requestfailed", (req) => pageLog.push(
        `requestfailed: ${req.method()} ${req.url()} ${req.failure()?.errorText}`));
    await tab.goto(config.page_url, { waitUntil: "load" });
    await tab.waitForFunction(() => window.axonReady === true, { timeout: 30000 });
    return tab;
});

const roomId = page && await result.step("hydrogen_login_and_room", async () => {
    const ids = await page.evaluate((hs, user, password) => window.axon.login(hs, user, password),
        H.base_url, H.user_id, H.password);
    out.hydrogen_user = ids.userId;
    out.hydrogen_device = ids.deviceId;
    const id = await page.evaluate((invitee) => window.axon.createRoom("Hydrogen and js-sdk",
        invitee), P.user_id);
    out.room_id = id;
    await waitForJoin(peer, id, 60000);
    // Hydrogen shares the room key with the members it knows: wait for it to know the peer.
    await waitUntil("Hydrogen sees the peer joined", () => page.evaluate(
        (room, user) => window.axon.memberJoined(room, user), id, P.user_id), 60000, 500);
    const opened = await page.evaluate((room) => window.axon.openRoom(room), id);
    out.hydrogen_room_encrypted = opened.encrypted;
    return id;
}, 90000);

const delivered = roomId && await result.step("hydrogen_sends", async () => {
    out.hydrogen_sent = `hello from Hydrogen ${Date.now()}`;
    const composer = ".MessageComposer_input textarea";
    await page.waitForSelector(composer, { timeout: 30000 });
    await page.type(composer, out.hydrogen_sent);
    await page.keyboard.press("Enter");
    const event = await waitUntil("the peer decrypts Hydrogen's message", () => {
        const events = peer.getRoom(roomId)?.getLiveTimeline().getEvents() || [];
        return events.find((e) => e.getSender() === H.user_id && e.getType() === "m.room.message"
            && !e.isDecryptionFailure());
    }, 60000, 200);
    out.peer_decrypted = event.getContent().body;
    out.peer_saw_encrypted = event.isEncrypted();
    return true;
}, 90000);

if (delivered) {
    await result.step("peer_replies", async () => {
        out.peer_sent = `reply from js-sdk to "${out.peer_decrypted}"`;
        await sendText(peer, roomId, out.peer_sent);
        // The text shows only once Hydrogen has decrypted the event.
        await page.waitForFunction((text) => [...document.querySelectorAll(".Timeline_message")]
            .some((el) => el.innerText.includes(text)), { timeout: 60000 }, out.peer_sent);
        out.hydrogen_shows_reply = true;
        return true;
    }, 90000);
}

if (page) {
    await result.step("screenshot", async () => {
        out.timeline_texts = await page.evaluate(() =>
            [...document.querySelectorAll(".Timeline_messageBody")].map((el) => el.innerText));
        if (config.screenshot) {
            await page.screenshot({ path: config.screenshot });
            out.screenshot = config.screenshot;
        }
    }, 30000);
}
out.page_log = pageLog.slice(-60);
await browser?.close().catch(() => {});
result.finish();
