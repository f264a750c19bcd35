// Stands in for `import "@matrix-org/olm/olm.js"`: the Platform loads Olm itself, from
// `assetPaths.olm`, as a classic script.
export {};
