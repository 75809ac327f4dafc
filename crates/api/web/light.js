// Light verification: what a node says about the chain, checked against the chain's validators
// in any JavaScript with WebCrypto (a browser, Node.js 20+). Only the genesis is trusted: its
// chain id and validator keys (an *anchor*). Nothing here trusts the node it reads from.
//
// A node proves values of its current state only, at the height it is at; one value is checked
// in four steps, each named in a `VerifyError` when it fails:
//   certificate: the finalization certificate of the proof's height is signed by a quorum of the
//                validators;
//   header:      the block header the node sends hashes to the block the certificate finalizes;
//   root:        the proof is against that header's state root;
//   proof:       the proof proves the value (or that the key is absent): qmdb.js.
//
// Wire formats (docs/protocol.md, "Light verification"):
// - A finalization certificate is Commonware simplex's `Finalization` with ed25519 signatures:
//   proposal = epoch (varint) ‖ view (varint) ‖ parent view (varint) ‖ block id (32 bytes);
//   then the signers' bitmap = bit count (u64 big-endian) ‖ ⌈count/8⌉ bytes, bit i of byte i/8
//   (least significant first) for the i-th validator in byte order of their keys; then the
//   signatures = count (varint) ‖ 64 bytes each, in signer order. Varints are LEB128.
// - Each signer signed varint(len(ns)) ‖ ns ‖ proposal with ns = "KASSA_" + chain id +
//   "_CONSENSUS_FINALIZE". A quorum is n − ⌊(n−1)/3⌋ of n validators.
// - A block header is Borsh: height u64 ‖ parent 32 ‖ timestamp_ms u64 ‖ proposer 32 ‖
//   tx_root 32 ‖ state_root 32 ‖ consensus (u32 length ‖ bytes); its id is
//   SHA-256("KASSA_BLOCK_V1" ‖ header).

import { sha256, concat, toHex, fromHex } from './codec.js';
import { verifyStateProof } from './qmdb.js';

/** A check that failed: `step` is `certificate`, `header`, `root`, `proof` or `anchor`. */
export class VerifyError extends Error {
  constructor(step, message) {
    super(message);
    this.step = step;
  }
}

const utf8 = (s) => new TextEncoder().encode(s);

/** A cursor over bytes; running out is a `VerifyError` of `step`. */
function cursor(bytes, step, what) {
  let at = 0;
  const fail = (why) => {
    throw new VerifyError(step, `the ${what} is malformed: ${why}`);
  };
  return {
    take(n) {
      if (at + n > bytes.length) fail('truncated');
      const out = bytes.subarray(at, at + n);
      at += n;
      return out;
    },
    varint() {
      let v = 0n;
      for (let shift = 0n; shift < 64n; shift += 7n) {
        const b = this.take(1)[0];
        v |= BigInt(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
      }
      return fail('a varint longer than 64 bits');
    },
    u64be() {
      return new DataView(this.take(8).slice().buffer).getBigUint64(0, false);
    },
    u64le() {
      return new DataView(this.take(8).slice().buffer).getBigUint64(0, true);
    },
    u32le() {
      return new DataView(this.take(4).slice().buffer).getUint32(0, true);
    },
    get at() {
      return at;
    },
    end() {
      if (at !== bytes.length) fail('trailing bytes');
    },
  };
}

/** A LEB128 varint, as Commonware's codec writes lengths. */
function varint(n) {
  const out = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Uint8Array.from(out);
}

/** Decodes a finalization certificate (see the wire format above). */
export function decodeFinalization(bytes) {
  const c = cursor(bytes, 'certificate', 'certificate');
  const epoch = c.varint();
  const view = c.varint();
  const parent = c.varint();
  const block = c.take(32);
  const proposal = bytes.subarray(0, c.at);
  const bits = c.u64be();
  if (bits > 1024n) throw new VerifyError('certificate', 'the certificate names more than 1,024 validators');
  const map = c.take(Math.ceil(Number(bits) / 8));
  const signers = [];
  for (let i = 0; i < Number(bits); i++) if (map[i >> 3] & (1 << (i & 7))) signers.push(i);
  const count = Number(c.varint());
  if (count !== signers.length) throw new VerifyError('certificate', 'the certificate has not one signature per signer');
  const signatures = [];
  for (let i = 0; i < count; i++) signatures.push(c.take(64));
  c.end();
  return { epoch, view, parent, block, proposal, bits: Number(bits), signers, signatures };
}

/** The validators in the order a certificate's bitmap names them: by their key's bytes. */
function ordered(validators) {
  const keys = validators.map((v) => (typeof v === 'string' ? fromHex(v) : v));
  keys.sort((a, b) => {
    for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return a[i] - b[i];
    return 0;
  });
  return keys;
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Checks that `certificate` finalizes block `blockId` (32 bytes) with the signatures of a quorum
 * of `anchor.validators` on chain `anchor.chain_id`. Returns `{ signers, validators }` (counts).
 */
export async function verifyFinalization(anchor, certificate, blockId) {
  const f = decodeFinalization(certificate);
  if (!sameBytes(f.block, blockId)) throw new VerifyError('certificate', 'the certificate finalizes a different block');
  const keys = ordered(anchor.validators);
  const n = keys.length;
  if (f.bits !== n) throw new VerifyError('certificate', `the certificate is for ${f.bits} validators, the genesis has ${n}`);
  const quorum = n - Math.floor((n - 1) / 3);
  if (f.signers.length < quorum) throw new VerifyError('certificate', `only ${f.signers.length} of ${n} validators signed (a quorum is ${quorum})`);
  const ns = utf8(`KASSA_${anchor.chain_id}_CONSENSUS_FINALIZE`);
  const message = concat(varint(ns.length), ns, f.proposal);
  const checks = f.signers.map(async (index, i) => {
    const key = await crypto.subtle.importKey('raw', keys[index], { name: 'Ed25519' }, false, ['verify']);
    return crypto.subtle.verify({ name: 'Ed25519' }, key, f.signatures[i], message);
  });
  const results = await Promise.all(checks);
  if (!results.every(Boolean)) throw new VerifyError('certificate', 'the certificate’s signatures do not verify');
  return { signers: f.signers.length, validators: n };
}

/** Decodes a block header (Borsh) into `{ height, timestamp_ms, state_root, … }`. */
export function decodeHeader(bytes) {
  const c = cursor(bytes, 'header', 'block header');
  const height = c.u64le();
  const parent = c.take(32);
  const timestamp_ms = c.u64le();
  const proposer = c.take(32);
  const tx_root = c.take(32);
  const state_root = c.take(32);
  const len = c.u32le();
  if (len > 256) throw new VerifyError('header', 'the block header is malformed: a consensus context over 256 bytes');
  c.take(len);
  c.end();
  return { height, parent, timestamp_ms, proposer, tx_root, state_root };
}

/** A block's id: SHA-256 of `KASSA_BLOCK_V1` and its header's bytes. */
export async function blockId(header) {
  return sha256(concat(utf8('KASSA_BLOCK_V1'), header));
}

/** How far below the head a node may keep its newest certificate (as `kassa verify` searches). */
export const FINALITY_SEARCH = 1024;

/**
 * The newest block the node serves a certificate for, checked: `{ height, block, state_root,
 * timestamp_ms, signers, validators }` (hex ids). `get(path)` reads the node's API (`/status`,
 * `/blocks/{h}/finality`) and returns the JSON, or `null` for a 404.
 */
export async function certifiedHead(get, anchor) {
  const status = await get('/status');
  if (!status) throw new VerifyError('certificate', 'the node does not say where its chain is');
  if (status.chain_id !== anchor.chain_id) throw new VerifyError('anchor', `the node serves chain “${status.chain_id}”, not “${anchor.chain_id}”`);
  const fin = (await get(`/blocks/${status.height}/finality`))
    || (await get(`/blocks/${Math.max(0, status.height - FINALITY_SEARCH)}/finality`));
  if (!fin) throw new VerifyError('certificate', 'this node has no finalization certificate of a recent block (a follower has those it checked since it started): choose another node');
  return checkFinality(anchor, fin, fin.height);
}

/**
 * The block of `height`, from the node's certificate of it, checked: `{ height, block,
 * state_root, timestamp_ms, signers, validators }` as `certifiedHead` gives.
 */
export async function certifiedAt(get, anchor, height) {
  const fin = await get(`/blocks/${height}/finality`);
  if (!fin) throw new VerifyError('certificate', `this node proves its state at block ${height} but has no certificate of that block (a follower has those it checked since it started): choose another node`);
  if (fin.height !== height) throw new VerifyError('header', `the node sent the certificate of block ${fin.height}, not of ${height}`);
  return checkFinality(anchor, fin, height);
}

/** A certificate and its header as the API sends them (`fin`), checked to be of `height`. */
async function checkFinality(anchor, fin, height) {
  if (typeof fin.header !== 'string') throw new VerifyError('header', 'the node sent no block header with the certificate');
  const header = fromHex(fin.header);
  const id = await blockId(header);
  const signed = await verifyFinalization(anchor, fromHex(fin.certificate), id);
  const h = decodeHeader(header);
  if (h.height !== BigInt(height)) throw new VerifyError('header', `the certified header is for height ${h.height}, not ${height}`);
  return { height, block: toHex(id), state_root: toHex(h.state_root), timestamp_ms: Number(h.timestamp_ms), ...signed };
}

/**
 * The values under `keys` (bytes each) in the node's current state, proven against the state
 * root of the block the validators certified at the proofs' height: `{ head, values }` (a value
 * is null if its key is proven absent). `certify(height)` gives the checked block of a height
 * (`certifiedAt`, perhaps cached).
 */
export async function provenMany(get, certify, keys) {
  const p = await get(`/proofs?keys=${keys.map(toHex).join(',')}`);
  if (!p || !Array.isArray(p.items) || p.items.length !== keys.length) throw new VerifyError('proof', 'the node sent no proof');
  const head = await certify(p.height);
  if (p.state_root !== head.state_root) throw new VerifyError('root', `the proof is against another state root than block ${head.height}’s`);
  const root = fromHex(head.state_root);
  const values = [];
  for (const [i, key] of keys.entries()) {
    const item = p.items[i];
    if (item.key !== toHex(key) || item.height !== head.height || item.state_root !== head.state_root) throw new VerifyError('root', `the proof of key ${toHex(key)} is not the one asked for at block ${head.height}`);
    const value = item.value === null ? null : fromHex(item.value);
    let check;
    try {
      check = await verifyStateProof(root, key, value, item.kind, fromHex(item.proof));
    } catch (e) {
      throw new VerifyError('proof', `the proof is malformed: ${e.message}`);
    }
    if (!check.ok) throw new VerifyError('proof', check.reason);
    values.push(value);
  }
  return { head, values };
}

/** `provenMany` of one key: `{ head, value }`. */
export async function proven(get, certify, key) {
  const { head, values } = await provenMany(get, certify, [key]);
  return { head, value: values[0] };
}
