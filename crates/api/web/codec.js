// Kassa's canonical encoding in the browser: Borsh, exactly as crates/types encodes it
// (little-endian fixed-width integers, u32 length prefixes, one-byte enum and Option tags).
// Checked byte for byte against vectors/transactions.json by the browser tests.
//
// Amounts and ids are handled as BigInt (or decimal strings), never as floats.

export const TX_NAMESPACE = new TextEncoder().encode('KASSA_TX_V2');
export const ADDRESS_HRP = 'kassa';

const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 0xffffffffn;

// Maximum byte lengths of bounded strings (crates/types/src/lib.rs).
export const LIMITS = { chain_id: 32, symbol: 12, name: 64, purpose: 1024, memo: 256 };

// Body variants, in wire order (append only).
export const BODY_KINDS = [
  'transfer', 'create_asset', 'mint', 'burn', 'create_society', 'join', 'contribute',
  'file_request', 'vote', 'delegate', 'gift', 'finalize', 'settle', 'leave', 'withdraw',
  'propose_amendment', 'vote_amendment', 'enact_amendment', 'expel', 'change_pledge',
  'end_benefit', 'claim_benefit',
];

/** A value that cannot be encoded, naming the field. */
export class EncodeError extends Error {
  constructor(field, message) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function fromHex(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new EncodeError('hex', 'not an even number of hex digits');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

/** An unsigned integer from a BigInt, a safe integer or a decimal string, range-checked. */
export function uint(value, max, field) {
  let v;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value);
  else if (typeof value === 'string' && /^[0-9]+$/.test(value.trim())) v = BigInt(value.trim());
  else throw new EncodeError(field, 'expected a whole number');
  if (v < 0n || v > max) throw new EncodeError(field, `must be between 0 and ${max}`);
  return v;
}

class Writer {
  constructor() {
    this.parts = [];
  }
  bytes(b) {
    this.parts.push(b);
  }
  u8(v, f) {
    this.parts.push(Uint8Array.of(Number(uint(v, 255n, f))));
  }
  u32(v, f) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, Number(uint(v, U32_MAX, f)), true);
    this.parts.push(b);
  }
  u64(v, f) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, uint(v, U64_MAX, f), true);
    this.parts.push(b);
  }
  bool(v, f) {
    if (typeof v !== 'boolean') throw new EncodeError(f, 'expected true or false');
    this.parts.push(Uint8Array.of(v ? 1 : 0));
  }
  string(s, max, f) {
    if (typeof s !== 'string') throw new EncodeError(f, 'expected text');
    const b = new TextEncoder().encode(s);
    if (b.length > max) throw new EncodeError(f, `at most ${max} bytes (this is ${b.length})`);
    this.u32(b.length, f);
    this.parts.push(b);
  }
  fixed(b, len, f) {
    if (!(b instanceof Uint8Array) || b.length !== len) throw new EncodeError(f, `expected ${len} bytes`);
    this.parts.push(b);
  }
  hash(v, f) {
    if (v instanceof Uint8Array) {
      this.fixed(v, 32, f);
      return;
    }
    let b;
    try {
      b = fromHex(v);
    } catch {
      throw new EncodeError(f, 'expected 64 hex digits');
    }
    this.fixed(b, 32, f);
  }
  address(a, f) {
    this.fixed(typeof a === 'string' ? decodeAddress(a) : a, 32, f);
  }
  option(v, f, write) {
    if (v === null || v === undefined) {
      this.parts.push(Uint8Array.of(0));
    } else {
      this.parts.push(Uint8Array.of(1));
      write(v, f);
    }
  }
  finish() {
    return concat(...this.parts);
  }
}

const ADMISSION = ['open', 'vote'];
const IDENTITY = ['public', 'commitment'];

function writeEnum(w, names, v, f) {
  const i = names.indexOf(v);
  if (i < 0) throw new EncodeError(f, `expected one of ${names.join(', ')}`);
  w.u8(i, f);
}

/**
 * The rules' fields in wire order, with their types: `u64`, `u32`, `bool`, or a list of an
 * enum's names (one byte). Writing a society's rules and reading a proven society record both
 * follow it.
 */
export const RULE_FIELDS = [
  ['period_secs', 'u64'], ['min_pledge', 'u64'], ['max_pledge', 'u64'],
  ['admission', ADMISSION], ['identity', IDENTITY],
  ['waiting_periods', 'u32'], ['grace_periods', 'u32'], ['gift_cap_pledges', 'u32'], ['min_members', 'u32'],
  ['karma_half_life_periods', 'u32'], ['benefit_ratio', 'u32'], ['max_request', 'u64'], ['bond_bps', 'u32'],
  ['filing_karma_bps', 'u32'], ['voting_window_secs', 'u64'], ['approval_net_bps', 'u32'], ['quorum_bps', 'u32'],
  ['auto_share', 'bool'], ['max_draw_bps', 'u32'], ['notice_periods', 'u32'], ['exit_refund', 'bool'],
  ['amendment_threshold_bps', 'u32'], ['amendment_timelock_periods', 'u32'], ['lapse_periods', 'u32'],
  ['max_installments', 'u32'], ['application_bond_bps', 'u32'],
];

/** Rules, in the API's JSON shape (amounts as strings). */
function writeRules(w, r) {
  if (!r || typeof r !== 'object') throw new EncodeError('rules', 'missing');
  for (const [name, type] of RULE_FIELDS) {
    if (Array.isArray(type)) writeEnum(w, type, r[name], name);
    else w[type](r[name], name);
  }
}

/**
 * A transaction body `{kind, ...fields}`, in the vectors' JSON shape. A `file_request` without
 * `installments` is for a lump sum, and a `vote` without `percent` carries 100.
 */
function writeBody(w, b) {
  const tag = BODY_KINDS.indexOf(b && b.kind);
  if (tag < 0) throw new EncodeError('kind', `unknown transaction kind ${b && b.kind}`);
  w.u8(tag, 'kind');
  switch (b.kind) {
    case 'transfer':
      w.address(b.to, 'to');
      w.u64(b.asset, 'asset');
      w.u64(b.amount, 'amount');
      break;
    case 'create_asset':
      w.string(b.symbol, LIMITS.symbol, 'symbol');
      w.u8(b.decimals, 'decimals');
      w.option(b.max_supply, 'max_supply', (v, f) => w.u64(v, f));
      break;
    case 'mint':
      w.u64(b.asset, 'asset');
      w.address(b.to, 'to');
      w.u64(b.amount, 'amount');
      break;
    case 'burn':
      w.u64(b.asset, 'asset');
      w.u64(b.amount, 'amount');
      break;
    case 'create_society':
      w.string(b.name, LIMITS.name, 'name');
      w.string(b.purpose, LIMITS.purpose, 'purpose');
      w.u64(b.asset, 'asset');
      writeRules(w, b.rules);
      w.u64(b.pledge, 'pledge');
      break;
    case 'join':
      w.u64(b.society, 'society');
      w.u64(b.pledge, 'pledge');
      w.option(b.identity_commitment, 'identity_commitment', (v, f) => w.hash(v, f));
      break;
    case 'contribute':
      w.u64(b.society, 'society');
      w.u64(b.amount, 'amount');
      break;
    case 'file_request':
      w.u64(b.society, 'society');
      w.u64(b.amount, 'amount');
      w.hash(b.evidence_hash, 'evidence_hash');
      w.string(b.memo, LIMITS.memo, 'memo');
      w.option(b.payee, 'payee', (v, f) => w.address(v, f));
      w.u32(b.installments ?? 0, 'installments');
      break;
    case 'vote':
      w.u64(b.request, 'request');
      w.bool(b.approve, 'approve');
      w.u8(b.percent ?? 100, 'percent');
      break;
    case 'delegate':
      w.u64(b.society, 'society');
      w.option(b.to, 'to', (v, f) => w.address(v, f));
      break;
    case 'gift':
      w.u64(b.request, 'request');
      w.u64(b.amount, 'amount');
      break;
    case 'finalize':
      w.u64(b.request, 'request');
      break;
    case 'settle':
    case 'leave':
    case 'withdraw':
      w.u64(b.society, 'society');
      break;
    case 'propose_amendment':
      w.u64(b.society, 'society');
      writeRules(w, b.rules);
      break;
    case 'vote_amendment':
      w.u64(b.amendment, 'amendment');
      w.bool(b.approve, 'approve');
      break;
    case 'enact_amendment':
      w.u64(b.amendment, 'amendment');
      break;
    case 'expel':
      w.u64(b.society, 'society');
      w.address(b.member, 'member');
      break;
    case 'change_pledge':
      w.u64(b.society, 'society');
      w.u64(b.pledge, 'pledge');
      break;
    case 'end_benefit':
    case 'claim_benefit':
      w.u64(b.request, 'request');
      break;
  }
}

/**
 * The canonical bytes of an unsigned transaction: `{chain_id, genesis (the chain's genesis hash,
 * 64 hex digits or 32 bytes), signer (32 bytes or bech32), nonce, fee, expiry_height, body}`.
 */
export function encodeTransaction(tx) {
  const w = new Writer();
  w.string(tx.chain_id, LIMITS.chain_id, 'chain_id');
  w.hash(tx.genesis, 'genesis');
  w.address(tx.signer, 'signer');
  w.u64(tx.nonce, 'nonce');
  w.u64(tx.fee, 'fee');
  w.u64(tx.expiry_height, 'expiry_height');
  writeBody(w, tx.body);
  return w.finish();
}

/** What is signed: `TX_NAMESPACE ‖ encode(tx)`. */
export function signingBytes(txBytes) {
  return concat(TX_NAMESPACE, txBytes);
}

/** The 32-byte message an ed25519 signature covers. */
export async function sighash(txBytes) {
  return sha256(signingBytes(txBytes));
}

// ---- bech32 (BIP-173) addresses ---------------------------------------------------------------

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values) {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i];
  }
  return chk >>> 0;
}

function hrpExpand(hrp) {
  const out = [];
  for (const c of hrp) out.push(c.charCodeAt(0) >> 5);
  out.push(0);
  for (const c of hrp) out.push(c.charCodeAt(0) & 31);
  return out;
}

function convertBits(data, from, to, pad) {
  let acc = 0;
  let bits = 0;
  const out = [];
  const maxv = (1 << to) - 1;
  for (const v of data) {
    acc = (acc << from) | v;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & maxv);
    }
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxv);
  } else if (bits >= from || ((acc << (to - bits)) & maxv)) {
    return null;
  }
  return out;
}

/** `kassa1…` for 32 public-key bytes. */
export function encodeAddress(bytes) {
  const data = convertBits(bytes, 8, 5, true);
  const values = hrpExpand(ADDRESS_HRP).concat(data, [0, 0, 0, 0, 0, 0]);
  const mod = polymod(values) ^ 1;
  const checksum = [];
  for (let i = 0; i < 6; i++) checksum.push((mod >>> (5 * (5 - i))) & 31);
  return ADDRESS_HRP + '1' + data.concat(checksum).map((d) => CHARSET[d]).join('');
}

/** The 32 bytes of a `kassa1…` address; throws EncodeError if it is not one. */
export function decodeAddress(s) {
  if (typeof s !== 'string') throw new EncodeError('address', 'expected a kassa1… address');
  const str = s.trim();
  if (str !== str.toLowerCase() && str !== str.toUpperCase()) {
    throw new EncodeError('address', 'mixed case');
  }
  const lower = str.toLowerCase();
  const sep = lower.lastIndexOf('1');
  if (lower.slice(0, sep) !== ADDRESS_HRP) throw new EncodeError('address', 'must start with kassa1');
  const data = [];
  for (const c of lower.slice(sep + 1)) {
    const d = CHARSET.indexOf(c);
    if (d < 0) throw new EncodeError('address', `invalid character ${c}`);
    data.push(d);
  }
  if (data.length < 6 || polymod(hrpExpand(ADDRESS_HRP).concat(data)) !== 1) {
    throw new EncodeError('address', 'checksum does not match (a typo?)');
  }
  const bytes = convertBits(data.slice(0, -6), 5, 8, false);
  if (!bytes || bytes.length !== 32) throw new EncodeError('address', 'an address is 32 bytes');
  return Uint8Array.from(bytes);
}

// ---- amounts ----------------------------------------------------------------------------------

/** Base units (string or BigInt) as a decimal amount, e.g. 1500000 with 6 decimals → "1.5". */
export function formatAmount(units, decimals = 6) {
  const v = BigInt(units);
  const d = BigInt(decimals);
  const scale = 10n ** d;
  const whole = (v / scale).toLocaleString('en-US');
  const frac = (v % scale).toString().padStart(decimals, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : whole;
}

/** A decimal amount typed by a person ("12.5") in base units, without floats. */
export function parseAmount(text, decimals = 6, field = 'amount') {
  const t = String(text).trim().replace(/[_,\s]/g, '');
  const m = /^([0-9]+)(?:\.([0-9]*))?$/.exec(t);
  if (!m) throw new EncodeError(field, 'enter a number such as 12.5');
  const frac = m[2] || '';
  if (frac.length > decimals) throw new EncodeError(field, `at most ${decimals} decimals`);
  const v = BigInt(m[1]) * 10n ** BigInt(decimals) + BigInt((frac + '0'.repeat(decimals)).slice(0, decimals) || '0');
  return uint(v, U64_MAX, field);
}


/**
 * The state key whose value holds an account's balance of an asset: for KAS (asset 0) the
 * account record `a ‖ address`, for any other asset `b ‖ address ‖ asset (u64 big-endian)`.
 */
export function balanceKey(address, asset) {
  if (BigInt(asset) === 0n) return concat(Uint8Array.of(0x61), decodeAddress(address));
  const a = new Uint8Array(8);
  new DataView(a.buffer).setBigUint64(0, BigInt(asset), false);
  return concat(Uint8Array.of(0x62), decodeAddress(address), a);
}

/**
 * The balance in a value stored under `balanceKey(address, asset)` (`null`: nothing stored, 0):
 * the account record is Borsh `{ nonce: u64, kas: u64 }`, a balance entry a Borsh `u64`.
 */
export function balanceIn(asset, value) {
  if (value === null) return 0n;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return view.getBigUint64(BigInt(asset) === 0n ? 8 : 0, true);
}
