// The SDK's service worker (it adds the access token to authenticated media requests),
// loaded from here so that its scope covers this page, as the SDK's README asks.
importScripts("/node_modules/hydrogen-view-sdk/lib-build/sw.js");
