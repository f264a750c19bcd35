// The Hydrogen SDK embedded as its README shows (Platform, Client, RoomViewModel/RoomView),
// with a small API on `window.axon` for the puppeteer script: log in, create an encrypted
// room, show it. Everything else (typing, reading the timeline) the script does in the DOM.

import {
    Client, FeatureSet, LoadStatus, Platform, RoomType, RoomView, RoomViewModel,
    createNavigation, createRouter, viewClassForTile,
} from "hydrogen-view-sdk";

const sdk = "/node_modules/hydrogen-view-sdk/asset-build/assets";
const olm = "/node_modules/@matrix-org/olm";
const assetPaths = {
    downloadSandbox: `${sdk}/download-sandbox.html`,
    worker: `${sdk}/main.js`,
    olm: { wasm: `${olm}/olm.wasm`, legacyBundle: `${olm}/olm_legacy.js`,
           wasmBundle: `${olm}/olm.js` },
    // The SDK needs its service worker (the session hands it the access token).
    serviceWorker: "/hydrogen/sw.js",
};

const app = document.querySelector("#app");
const platform = new Platform({ container: app, assetPaths, config: {},
                                options: { development: false } });
const navigation = createNavigation();
platform.setNavigation(navigation);
const urlRouter = createRouter({ navigation, history: platform.history });
urlRouter.attach();
let client = null;

function until(what, predicate, timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
        const deadline = Date.now() + timeoutMs;
        const poll = () => {
            let value;
            try {
                value = predicate();
            } catch (err) {
                reject(err);
                return;
            }
            if (value) {
                resolve(value);
            } else if (Date.now() > deadline) {
                reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
            } else {
                setTimeout(poll, 100);
            }
        };
        poll();
    });
}

window.axon = {
    /** Log in with a password and wait for the first sync; returns the session's ids. */
    async login(homeserver, username, password) {
        await platform.init();
        client = new Client(platform);
        const options = await client.queryLogin(homeserver).result;
        if (!options?.password) {
            throw new Error(`no password login offered by ${homeserver}`);
        }
        await client.startWithLogin(options.password(username, password));
        await client.loadStatus.waitFor((status) => status === LoadStatus.Ready
            || status === LoadStatus.Error || status === LoadStatus.LoginFailed).promise;
        if (client.loginFailure) {
            throw new Error(`login failed: ${client.loginFailure}`);
        }
        if (client.loadError) {
            throw new Error(`load failed: ${client.loadError.message}`);
        }
        return { userId: client.session.userId, deviceId: client.session.deviceId };
    },

    /** Create an end-to-end encrypted private room inviting `invitee`; returns its id. */
    async createRoom(name, invitee) {
        const session = client.session;
        const being = await session.createRoom({
            type: RoomType.Private, name, isEncrypted: true, invites: [invitee],
        });
        if (being.error) {
            throw being.error;
        }
        const roomId = await until("the room id", () => being.roomId);
        await until("the room in the session", () => session.rooms.get(roomId));
        return roomId;
    },

    /** Show the room: timeline and composer, as in the app. */
    async openRoom(roomId) {
        const session = client.session;
        const room = session.rooms.get(roomId);
        const features = await FeatureSet.load(platform.settingsStorage);
        const vm = new RoomViewModel({
            room, ownUserId: session.userId, session, platform, urlRouter, navigation,
            features,
        });
        await vm.load();
        app.replaceChildren(new RoomView(vm, viewClassForTile).mount());
        return { encrypted: room.isEncrypted };
    },

    /** Whether Hydrogen tracks `userId` as joined in the room (its members list). */
    async memberJoined(roomId, userId) {
        const room = client.session.rooms.get(roomId);
        const list = await room.loadMemberList();
        try {
            return list.members.get(userId)?.membership === "join";
        } finally {
            list.release();
        }
    },
};
window.axonReady = true;
