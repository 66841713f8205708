/** Bundle src/agent/main.ts into dist/weftd.mjs; resolves with its path. */
export function bundleWeftd(): Promise<string>
