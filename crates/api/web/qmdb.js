// Checks a proof of the state's commitment in the browser, as the node's own verifier
// (crates/db/src/qmdb/mod.rs, Commonware's qmdb::current) does: the commitment is a log of
// operations authenticated by a Merkle mountain range (SHA-256), with a bitmap of the operations
// still current grafted onto it in 32-byte chunks (256 operations, the range's height 8). A proof
// names one operation: the update that gives a key its value (then the key has that value), the
// update of the key just before an absent one (its `next_key` skips the absent key), or, for an
// empty state, the last commit. The operation must be in the log, its bit must be set, and the log
// and the bitmap must hash to the root.
//
// Checked against vectors/qmdb_proofs.json, which the Rust side regenerates, by
// tests/web/qmdb.test.mjs (in Node.js and in Chromium).

import { sha256, concat } from './codec.js';

const CHUNK_BYTES = 32;
const CHUNK_BITS = 256n;
const GRAFTING_HEIGHT = 8;
const DIGEST = 32;
const DIGESTS_MAX = 256;
const VALUE_MAX = 64 * 1024;
const MAX_LEAVES = 1n << 62n;
const UPDATE = 0xd2;
const COMMIT = 0xd3;
// The root's domain: the Merkle mountain range family (0), peaks bagged newest first (1).
const ROOT_DOMAIN = Uint8Array.of(0, 1);

/** A proof that cannot be read or does not hold, with the reason. */
class ProofError extends Error {}

function fail(reason) {
  throw new ProofError(reason);
}

/** Commonware's codec: canonical LEB128 integers, one-byte booleans, fixed-size digests. */
class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.at = 0;
  }

  take(n) {
    if (this.at + n > this.bytes.length) fail('the proof is cut short');
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }

  /** An unsigned integer of `bits` bits; a zero continuation byte or an overflow is refused. */
  varint(bits) {
    let value = 0n;
    for (let shift = 0; ; shift += 7) {
      const byte = this.take(1)[0];
      if (byte === 0 && shift > 0) fail('a number in the proof is not in canonical form');
      if (bits - shift <= 7 && byte >= 1 << (bits - shift)) fail('a number in the proof overflows');
      value |= BigInt(byte & 0x7f) << BigInt(shift);
      if ((byte & 0x80) === 0) return value;
    }
  }

  location() {
    const loc = this.varint(64);
    if (loc > MAX_LEAVES) fail('a location in the proof is out of range');
    return loc;
  }

  length(max) {
    const n = this.varint(32);
    if (n > BigInt(max)) fail('a list in the proof is too long');
    return Number(n);
  }

  bool() {
    const b = this.take(1)[0];
    if (b > 1) fail('a flag in the proof is neither 0 nor 1');
    return b === 1;
  }

  digest() {
    return this.take(DIGEST);
  }

  bytesOf(max) {
    return this.take(this.length(max));
  }

  end() {
    if (this.at !== this.bytes.length) fail('the proof has bytes after its end');
  }
}

/** `Proof<Mmr, Digest, [u8; 32]>`: an operation's location, its bitmap chunk, a range proof. */
function readOperationProof(r) {
  const loc = r.location();
  const chunk = r.take(CHUNK_BYTES);
  const leaves = r.location();
  const inactivePeaks = r.varint(64);
  const count = r.length(DIGESTS_MAX);
  const digests = [];
  for (let i = 0; i < count; i++) digests.push(r.digest());
  // The mountain range has no pending chunk (it encodes as nothing).
  const partial = r.bool() ? r.digest() : null;
  const opsRoot = r.digest();
  return { loc, chunk, leaves, inactivePeaks, digests, partial, opsRoot };
}

function encodeVarint(value) {
  const out = [];
  let v = BigInt(value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return Uint8Array.from(out);
}

function be64(value) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(value), false);
  return out;
}

function compare(a, b) {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function equal(a, b) {
  return a.length === b.length && compare(a, b) === 0;
}

/** The value stored for a state key: the key's length (u16 little-endian), the key, the value. */
function leafRow(key, value) {
  return concat(Uint8Array.of(key.length & 0xff, key.length >> 8), key, value);
}

/** The encoding of an update operation `key = value, next key next_key`. */
function updateOp(key, value, nextKey) {
  return concat(Uint8Array.of(UPDATE), key, encodeVarint(value.length), value, nextKey);
}

/** The encoding of a commit operation with its metadata, at the floor `loc`. */
function commitOp(metadata, loc) {
  const meta = metadata === null ? Uint8Array.of(0) : concat(Uint8Array.of(1), encodeVarint(metadata.length), metadata);
  return concat(Uint8Array.of(COMMIT), meta, encodeVarint(loc));
}

const nodeDigest = (pos, left, right) => sha256(concat(be64(pos), left, right));
const fold = (acc, peak) => sha256(concat(acc, peak));

/** The peaks of a mountain range of `leaves` leaves, left to right: `{pos, height, start}`. */
function peaks(leaves) {
  const out = [];
  let pos = 0n;
  let start = 0n;
  for (let h = 62; h >= 0; h--) {
    const width = 1n << BigInt(h);
    if ((leaves & width) === 0n) continue;
    const nodes = (width << 1n) - 1n;
    out.push({ pos: pos + nodes - 1n, height: h, start });
    pos += nodes;
    start += width;
  }
  return out;
}

const children = (t) => {
  const half = 1n << BigInt(t.height - 1);
  return [
    { pos: t.pos - (1n << BigInt(t.height)), height: t.height - 1, start: t.start },
    { pos: t.pos - 1n, height: t.height - 1, start: t.start + half },
  ];
};

/**
 * The digest of the subtree `t` over the proven leaf at `loc`: siblings from the proof in
 * left-first order, the leaf hashed from `element`, and each node at the grafting height
 * combined with its bitmap chunk (`hash(chunk ‖ node)`, or the node itself for an all-zero chunk).
 */
async function subtreeDigest(t, loc, element, siblings, graft) {
  const end = t.start + (1n << BigInt(t.height));
  if (loc < t.start || loc >= end) {
    if (siblings.length === 0) fail('the proof lacks a sibling');
    return siblings.shift();
  }
  if (t.height === 0) return sha256(concat(be64(t.pos), element));
  const [left, right] = children(t);
  const l = await subtreeDigest(left, loc, element, siblings, graft);
  const r = await subtreeDigest(right, loc, element, siblings, graft);
  const node = await nodeDigest(t.pos, l, r);
  if (t.height !== GRAFTING_HEIGHT) return node;
  return graft(t.start >> BigInt(GRAFTING_HEIGHT), node);
}

/**
 * The grafted root over the operation `element` at `loc`: the peaks before it (those under the
 * inactivity floor folded into one), its own peak rebuilt, the peaks after it (the active ones
 * folded into one), bagged newest first.
 */
async function graftedRoot(p, element, graft) {
  const all = peaks(p.leaves);
  const before = all.filter((t) => t.start + (1n << BigInt(t.height)) <= p.loc);
  const mine = all.find((t) => p.loc >= t.start && p.loc < t.start + (1n << BigInt(t.height)));
  const after = all.filter((t) => t.start > p.loc);
  if (p.inactivePeaks > BigInt(all.length)) fail('the proof folds more peaks than there are');
  const inactive = Number(p.inactivePeaks);
  const folded = Math.min(inactive, before.length);
  const listedAfter = Math.min(Math.max(inactive - before.length - 1, 0), after.length);
  const suffix = after.length > listedAfter ? 1 : 0;
  const foldedPrefix = folded > 0 ? 1 : 0;
  const listed = before.length - folded + listedAfter;
  // The proof's digests: [folded prefix?, active peaks before, listed peaks after, suffix?,
  // siblings of the proven leaf's path].
  const siblingsAt = foldedPrefix + listed + suffix;
  if (p.digests.length < siblingsAt) fail('the proof lacks a peak');
  const peakDigests = p.digests.slice(0, foldedPrefix + before.length - folded);
  const siblings = p.digests.slice(siblingsAt);
  peakDigests.push(await subtreeDigest(mine, p.loc, element, siblings, graft));
  if (siblings.length !== 0) fail('the proof has digests it does not use');
  peakDigests.push(...p.digests.slice(foldedPrefix + before.length - folded, siblingsAt));

  // Fold the inactive peaks from the oldest, then bag the rest from the newest.
  const toFold = foldedPrefix ? Math.max(inactive - folded, 0) + 1 : inactive;
  let acc = peakDigests.shift();
  for (let i = 1; i < toFold; i++) {
    if (peakDigests.length === 0) fail('the proof folds more peaks than there are');
    acc = await fold(acc, peakDigests.shift());
  }
  if (peakDigests.length > 0) {
    let bag = peakDigests.pop();
    while (peakDigests.length > 0) bag = await fold(peakDigests.pop(), bag);
    acc = await fold(acc, bag);
  }
  const committed = inactive === 0 ? [] : [be64(p.inactivePeaks)];
  return sha256(concat(ROOT_DOMAIN, be64(p.leaves), ...committed, acc));
}

/** Whether the operation `element` is current at `p.loc` under the root `root`. */
async function operationHolds(p, element, root) {
  const bit = Number(p.loc % CHUNK_BITS);
  if ((p.chunk[bit >> 3] & (1 << (bit & 7))) === 0) fail('the operation is no longer current');
  if (p.loc + 1n > p.leaves) fail('the operation lies beyond the log');
  const chunkIndex = p.loc / CHUNK_BITS;
  const complete = p.leaves / CHUNK_BITS;
  const nextBit = p.leaves % CHUNK_BITS;
  if ((nextBit !== 0n) !== (p.partial !== null)) fail('the proof misstates the bitmap\'s last chunk');
  if (p.partial !== null && chunkIndex === complete && !equal(p.partial, await sha256(p.chunk))) {
    fail('the operation\'s chunk is not the bitmap\'s last chunk');
  }
  const graft = async (index, node) => {
    // Chunks the mountain range has no node of height 8 over yet are not grafted.
    if (index >= complete || index !== chunkIndex || p.chunk.every((b) => b === 0)) return node;
    return sha256(concat(p.chunk, node));
  };
  const grafted = await graftedRoot(p, element, graft);
  const tail = p.partial === null ? [] : [be64(nextBit), p.partial];
  const computed = await sha256(concat(p.opsRoot, grafted, ...tail));
  if (!equal(computed, root)) fail('the computed root differs from the state root');
}

/**
 * Checks that the state key `key` has `value` (`null`: no value) under the commitment root
 * `root` (all Uint8Array), given the proof's kind (`'present'` or `'absent'`) and bytes.
 * Returns `{ok, reason}`; it never throws on a bad proof.
 */
export async function verifyStateProof(root, key, value, kind, proofBytes) {
  try {
    const r = new Reader(proofBytes);
    const keyHash = await sha256(key);
    if (kind === 'present') {
      if (value === null) fail('a proof of a value cannot show that the key has none');
      const p = readOperationProof(r);
      const nextKey = r.digest();
      r.end();
      await operationHolds(p, updateOp(keyHash, leafRow(key, value), nextKey), root);
      return { ok: true, reason: 'the proof matches the state root' };
    }
    if (kind !== 'absent') fail('unknown kind of proof');
    if (value !== null) fail('a proof of absence cannot show a value');
    const tag = r.take(1)[0];
    if (tag === 0) {
      const p = readOperationProof(r);
      const span = { key: r.digest(), value: r.bytesOf(VALUE_MAX), next: r.digest() };
      r.end();
      // The key must fall strictly after `span.key` and before `span.next`, cyclically.
      const afterStart = compare(keyHash, span.key) >= 0;
      const beforeEnd = compare(keyHash, span.next) < 0;
      const wraps = compare(span.key, span.next) >= 0;
      if (equal(keyHash, span.key) || !(wraps ? afterStart || beforeEnd : afterStart && beforeEnd)) {
        fail('the key is not between the neighbours the proof shows');
      }
      await operationHolds(p, updateOp(span.key, span.value, span.next), root);
    } else if (tag === 1) {
      const p = readOperationProof(r);
      const metadata = r.bool() ? r.bytesOf(VALUE_MAX) : null;
      r.end();
      // An empty state: its last commit's inactivity floor is the commit itself.
      await operationHolds(p, commitOp(metadata, p.loc), root);
    } else {
      fail('unknown kind of proof of absence');
    }
    return { ok: true, reason: 'the proof matches the state root' };
  } catch (e) {
    if (e instanceof ProofError) return { ok: false, reason: e.message };
    throw e;
  }
}
