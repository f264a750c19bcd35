// matrix-js-sdk's media calls against a homeserver: uploadContent, getMediaConfig, and a
// download through the authenticated URL that mxcUrlToHttp builds.
//
//   node media_scenario.mjs '{"account": {"base_url": ..., "user_id": ..., "password": ...},
//                             "size": 200000, "timeout_ms": 60000}'
//
// Prints one JSON object: the content URI, the config, and what the download returned.

import { Result, readConfig, sdk } from "./lib/matrix.mjs";
import { createHash } from "node:crypto";

const config = readConfig();
const result = new Result(config.timeout_ms || 60000);
const out = result.data;
const A = config.account;

const client = await result.step("login", async () => {
    const anonymous = sdk.createClient({ baseUrl: A.base_url });
    const login = await anonymous.loginRequest({
        type: "m.login.password", identifier: { type: "m.id.user", user: A.user_id },
        password: A.password,
    });
    return sdk.createClient({ baseUrl: A.base_url, userId: login.user_id,
                              accessToken: login.access_token, deviceId: login.device_id });
});
if (!client) {
    result.finish();
}

const data = Buffer.alloc(config.size || 200000);
for (let i = 0; i < data.length; i++) {
    data[i] = (i * 7) & 0xff;
}
out.sha256 = createHash("sha256").update(data).digest("hex");

const uploaded = await result.step("upload", () => client.uploadContent(
    new Blob([data], { type: "image/png" }), { name: "js sdk.png", type: "image/png" }));
out.content_uri = uploaded?.content_uri;

out.config = await result.step("config", () => client.getMediaConfig(true));

if (out.content_uri) {
    await result.step("download", async () => {
        const url = client.mxcUrlToHttp(out.content_uri, undefined, undefined, undefined,
                                        false, true, true);
        out.download_url = url;
        const response = await fetch(url, {
            headers: { Authorization: `Bearer ${client.getAccessToken()}` } });
        out.status = response.status;
        out.content_type = response.headers.get("content-type");
        out.content_disposition = response.headers.get("content-disposition");
        const body = Buffer.from(await response.arrayBuffer());
        out.download_sha256 = createHash("sha256").update(body).digest("hex");
        out.download_length = body.length;
    });
}
result.finish();
