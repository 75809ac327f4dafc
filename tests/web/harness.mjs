// Test harness: a real `kassa node --dev` process on free loopback ports, Debian's Chromium driven
// by Playwright, and a signer for the chain's public development accounts built on the app's own
// codec module (crates/api/web/codec.js), so the same encoder is exercised in Node.js too.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { copyFileSync, mkdtempSync, mkdirSync, rmSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { webcrypto } from 'node:crypto';
import { chromium } from 'playwright-core';

if (!globalThis.crypto) globalThis.crypto = webcrypto;

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const codec = await import(join(ROOT, 'crates/api/web/codec.js'));
export const VECTORS = JSON.parse(readFileSync(join(ROOT, 'vectors/transactions.json'), 'utf8'));
/** Screenshots of the main pages, for people to read. */
export const SHOTS = process.env.KASSA_SCREENSHOTS || join(ROOT, 'target', 'web-screenshots');
const CHROMIUM = process.env.KASSA_CHROMIUM || '/usr/bin/chromium';
const DEADLINE_MS = 60_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value, or fails after `ms`. */
export async function until(what, fn, ms = DEADLINE_MS) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

/** A dev node in a fresh data directory; `stop()` kills it and removes the directory. */
export async function startNode() {
  const bin = process.env.KASSA_BIN || join(ROOT, 'target', 'debug', 'kassa');
  const dir = mkdtempSync(join(tmpdir(), 'kassa-web-'));
  const http = await freePort();
  const p2p = await freePort();
  const log = openSync(join(dir, 'node.log'), 'a');
  const child = spawn(bin, ['node', '--dev', '--block-ms', '250', '--data-dir', join(dir, 'data'), '--http', `127.0.0.1:${http}`, '--p2p', `127.0.0.1:${p2p}`], {
    stdio: ['ignore', log, log],
  });
  const url = `http://127.0.0.1:${http}`;
  const node = {
    url,
    dir,
    async get(path) {
      const r = await fetch(`${url}/api/v1${path}`);
      const body = await r.json();
      if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(body)}`);
      return body;
    },
    async getOpt(path) {
      const r = await fetch(`${url}/api/v1${path}`);
      return r.status === 404 ? null : r.json();
    },
    async post(path, body) {
      const r = await fetch(`${url}/api/v1${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: r.status, body: await r.json() };
    },
    log() {
      try {
        return readFileSync(join(dir, 'node.log'), 'utf8').split('\n').slice(-30).join('\n');
      } catch {
        return '';
      }
    },
    async stop() {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      // The node's log outlives its directory, beside the screenshots, for a failure's diagnosis.
      mkdirSync(SHOTS, { recursive: true });
      copyFileSync(join(dir, 'node.log'), join(SHOTS, 'node.log'));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  child.once('exit', (code) => {
    node.exited = code;
  });
  await until('the node to finalize its first block', async () => {
    if (node.exited !== undefined) throw new Error(`the node exited (${node.exited}):\n${node.log()}`);
    return (await node.get('/status')).height >= 1;
  });
  return node;
}

export async function launchBrowser() {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** A browser context (one person) with the app open; page errors fail the test. */
export async function person(browser, node, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('console', (m) => {
    // A 404 is how the API says "not a member" or "no such object"; the app expects those.
    if (m.type() === 'error' && !/status of 404/.test(m.text())) page.errors.push(m.text());
  });
  await page.goto(`${node.url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  return { context, page };
}

// ---- signing as a development account, from Node.js -------------------------------------------

const PKCS8_PREFIX = codec.fromHex('302e020100300506032b657004220420');

/** A key from a 32-byte seed (hex): `{address, publicKey, sign(bytes)}`. */
export async function keyFromSeed(seedHex) {
  const seed = codec.fromHex(seedHex);
  const pkcs8 = codec.concat(PKCS8_PREFIX, seed);
  const key = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', key);
  const publicKey = new Uint8Array(Buffer.from(jwk.x, 'base64url'));
  return {
    publicKey,
    address: codec.encodeAddress(publicKey),
    sign: async (msg) => new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, key, msg)),
  };
}

/** Dev account `i` of a `--dev` chain (its seed is public: SHA-256("KASSA_DEV_KEY_V1" ‖ label)). */
export async function devKey(i) {
  const seed = await codec.sha256(new TextEncoder().encode(`KASSA_DEV_KEY_V1kassa-dev-${i}`));
  return keyFromSeed(codec.toHex(seed));
}

/** Signs `body` as `key` and sends it, waiting for its block; returns the receipt. */
export async function sendAs(node, key, body) {
  const status = await node.get('/status');
  const account = await node.get(`/accounts/${key.address}`);
  const tx = { chain_id: status.chain_id, genesis: status.genesis_hash, signer: key.publicKey, nonce: BigInt(account.next_nonce), fee: BigInt(status.min_fee), expiry_height: BigInt(status.height + 600), body };
  const bytes = codec.encodeTransaction(tx);
  const signature = await key.sign(await codec.sighash(bytes));
  const { status: code, body: receipt } = await node.post('/txs?wait=true', { tx: codec.toHex(codec.concat(bytes, signature)) });
  if (code !== 200 || receipt.status !== 'applied') throw new Error(`${body.kind} by ${key.address}: ${code} ${JSON.stringify(receipt)}`);
  return receipt;
}
