// Drives a catalog through Backstage's own @backstage/catalog-client, unchanged.
//
// usage: node run.mjs <base-url> <calls.json | ->
// calls: [{"method": "getEntities", "args": [...], "token": "optional bearer token"}, ...]
// A filter value "__EXISTS__" stands for CATALOG_FILTER_EXISTS. Async generators
// (streamEntities) are collected into a list of pages. Prints one JSON array of results:
// {"ok": true, "value": ...} or {"ok": false, "error": {"name", "message", "status", "body"}}.
import { readFileSync } from 'node:fs';
import { CatalogClient, CATALOG_FILTER_EXISTS } from '@backstage/catalog-client';

const [baseUrl, callsPath] = process.argv.slice(2);
if (!baseUrl || !callsPath) {
  console.error('usage: node run.mjs <base-url> <calls.json | ->');
  process.exit(2);
}
const calls = JSON.parse(readFileSync(callsPath === '-' ? 0 : callsPath, 'utf8'));

const client = new CatalogClient({
  discoveryApi: { getBaseUrl: async () => `${baseUrl.replace(/\/$/, '')}/api/catalog` },
  fetchApi: { fetch: (...args) => globalThis.fetch(...args) },
});

function revive(value) {
  if (value === '__EXISTS__') return CATALOG_FILTER_EXISTS;
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]));
  }
  return value;
}

const results = [];
for (const call of calls) {
  const args = (call.args ?? []).map(revive);
  const options = call.token ? { token: call.token } : undefined;
  try {
    if (typeof client[call.method] !== 'function') {
      throw new Error(`CatalogClient has no method ${call.method}`);
    }
    // Options go in the method's last parameter: pad the arguments before it.
    const declared = Math.max(args.length, client[call.method].length - 1);
    while (args.length < declared) args.push(undefined);
    let value = client[call.method](...args, ...(options ? [options] : []));
    if (value && typeof value[Symbol.asyncIterator] === 'function') {
      const pages = [];
      for await (const page of value) pages.push(page);
      value = pages;
    } else {
      value = await value;
    }
    results.push({ ok: true, value: value === undefined ? null : value });
  } catch (error) {
    results.push({
      ok: false,
      error: {
        name: error?.name ?? 'Error',
        message: String(error?.message ?? error),
        status: error?.response?.status ?? null,
        body: error?.body ?? null,
      },
    });
  }
}
process.stdout.write(JSON.stringify(results));
