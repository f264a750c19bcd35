// Load a CommonJS (or UMD) file named by `?src=` and export its `module.exports` as the
// default export: enough for the few small packages hydrogen-view-sdk imports by name.
const src = new URL(import.meta.url).searchParams.get("src");
const response = await fetch(src);
if (!response.ok) {
    throw new Error(`cjs.mjs: ${src} answered ${response.status}`);
}
const module = { exports: {} };
new Function("module", "exports", await response.text())(module, module.exports);
export default module.exports;
