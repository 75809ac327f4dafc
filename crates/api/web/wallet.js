// The browser wallet. The secret key is made and kept here and is never sent anywhere:
// - signing uses a WebCrypto Ed25519 key imported as non-extractable, kept in IndexedDB;
// - the only copy of the key's bytes is the backup, encrypted under the member's passphrase
//   (PBKDF2-SHA-256, 600,000 iterations → AES-256-GCM, bound to the address), which the member
//   can download and import into another browser.

import { concat, decodeAddress, encodeAddress, fromHex, toHex, sighash, encodeTransaction, sha256 } from './codec.js';

const DB_NAME = 'kassa-wallet';
const STORE = 'keys';
const SLOT = 'default';
export const KDF_ITERATIONS = 600000;
export const PASSPHRASE_MIN = 8;
// PKCS#8 wrapping of a 32-byte Ed25519 seed (RFC 8410).
const PKCS8_PREFIX = fromHex('302e020100300506032b657004220420');

/** Why a wallet operation failed, in words for the member. */
export class WalletError extends Error {}

function idb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function store(mode, fn) {
  const db = await idb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const req = fn(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(req && req.result);
    tx.onerror = () => reject(tx.error);
  });
}

/** Whether this browser supports Ed25519 in WebCrypto. */
export async function supported() {
  try {
    await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
    return true;
  } catch {
    return false;
  }
}

async function passphraseKey(passphrase, salt) {
  const base = await crypto.subtle.importKey('raw', new TextEncoder().encode(passphrase), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt, iterations: KDF_ITERATIONS },
    base,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

function checkPassphrase(passphrase) {
  if (typeof passphrase !== 'string' || passphrase.length < PASSPHRASE_MIN) {
    throw new WalletError(`The passphrase must be at least ${PASSPHRASE_MIN} characters.`);
  }
}

/** Public key bytes of a PKCS#8 Ed25519 key (imported briefly as extractable, then dropped). */
async function publicKeyOf(pkcs8) {
  const k = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, true, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', k);
  const b64 = jwk.x.replace(/-/g, '+').replace(/_/g, '/');
  return Uint8Array.from(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

/** Encrypts the key for a backup file. */
async function seal(pkcs8, publicKey, passphrase) {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const key = await passphraseKey(passphrase, salt);
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: publicKey }, key, pkcs8));
  return {
    kassa_wallet_backup: 1,
    address: encodeAddress(publicKey),
    kdf: { name: 'PBKDF2', hash: 'SHA-256', iterations: KDF_ITERATIONS, salt: toHex(salt) },
    cipher: { name: 'AES-256-GCM', iv: toHex(iv) },
    ciphertext: toHex(ct),
  };
}

async function install(pkcs8, publicKey, backup) {
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
  const record = { privateKey, publicKey, address: encodeAddress(publicKey), backup };
  await store('readwrite', (s) => s.put(record, SLOT));
  return record;
}

async function fromPkcs8(pkcs8, passphrase) {
  const publicKey = await publicKeyOf(pkcs8);
  const backup = await seal(pkcs8, publicKey, passphrase);
  return install(pkcs8, publicKey, backup);
}

/** The wallet kept in this browser, or null. */
export async function load() {
  return (await store('readonly', (s) => s.get(SLOT))) || null;
}

/** A new random key, protected by `passphrase` for backups. */
export async function create(passphrase) {
  checkPassphrase(passphrase);
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
  return fromPkcs8(pkcs8, passphrase);
}

/** A key from its 32-byte seed (dev accounts and test vectors are published seeds). */
export async function fromSeed(seedHex, passphrase) {
  checkPassphrase(passphrase);
  const seed = fromHex(seedHex);
  if (seed.length !== 32) throw new WalletError('A seed is 32 bytes (64 hex digits).');
  return fromPkcs8(concat(PKCS8_PREFIX, seed), passphrase);
}

/** The seed of a development account, as the node derives it: SHA-256("KASSA_DEV_KEY_V1" ‖ label). */
export async function devSeed(index) {
  return toHex(await sha256(new TextEncoder().encode(`KASSA_DEV_KEY_V1kassa-dev-${index}`)));
}

/**
 * A development account's key for one-off signing, not stored: a non-extractable key made from
 * the account's public seed (development chains only; their keys are public by design).
 */
export async function devAccount(index) {
  const pkcs8 = concat(PKCS8_PREFIX, fromHex(await devSeed(index)));
  const publicKey = await publicKeyOf(pkcs8);
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
  return { privateKey, publicKey, address: encodeAddress(publicKey) };
}

/** Restores a wallet from a backup file's JSON. */
export async function importBackup(backup, passphrase) {
  if (!backup || backup.kassa_wallet_backup !== 1 || !backup.kdf || !backup.cipher) {
    throw new WalletError('This file is not a Kassa wallet backup.');
  }
  if (backup.kdf.name !== 'PBKDF2' || backup.kdf.hash !== 'SHA-256' || backup.kdf.iterations !== KDF_ITERATIONS) {
    throw new WalletError('This backup uses a key derivation this wallet does not know.');
  }
  let pkcs8;
  try {
    const key = await passphraseKey(passphrase, fromHex(backup.kdf.salt));
    const publicKey = decodeAddress(backup.address);
    pkcs8 = new Uint8Array(
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv: fromHex(backup.cipher.iv), additionalData: publicKey }, key, fromHex(backup.ciphertext)),
    );
  } catch {
    throw new WalletError('Wrong passphrase, or the backup file is damaged.');
  }
  const publicKey = await publicKeyOf(pkcs8);
  if (encodeAddress(publicKey) !== backup.address) throw new WalletError('The backup does not match its address.');
  return install(pkcs8, publicKey, backup);
}

/** Forgets the wallet in this browser (the backup file is then the only copy). */
export async function remove() {
  await store('readwrite', (s) => s.delete(SLOT));
}

/** Signs an unsigned transaction; returns `{bytes, hash}` of the signed transaction. */
export async function signTransaction(wallet, tx) {
  const txBytes = encodeTransaction({ ...tx, signer: wallet.publicKey });
  const msg = await sighash(txBytes);
  const signature = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, wallet.privateKey, msg));
  const bytes = concat(txBytes, signature);
  return { bytes, hex: toHex(bytes), hash: toHex(await sha256(bytes)), signature: toHex(signature) };
}
