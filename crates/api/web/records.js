// State records as the chain stores them (Borsh; the counters of a member record as LEB128
// varints), decoded from proven bytes: the verification marks show what these say, not what the
// node's JSON says. Field order is wire format (crates/state/src/records.rs); each decoder reads
// the fields it needs and the ones before them.

import { concat, decodeAddress, encodeAddress, RULE_FIELDS } from './codec.js';

/** Bytes that are not the record they should be. */
export class RecordError extends Error {}

class Reader {
  constructor(bytes, what) {
    this.bytes = bytes;
    this.what = what;
    this.at = 0;
  }
  take(n) {
    if (this.at + n > this.bytes.length) throw new RecordError(`the proven ${this.what} is truncated`);
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  int(n) {
    let v = 0n;
    const b = this.take(n);
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  }
  u8() {
    return this.take(1)[0];
  }
  u32() {
    return Number(this.int(4));
  }
  u64() {
    return this.int(8);
  }
  u128() {
    return this.int(16);
  }
  bool() {
    const b = this.u8();
    if (b > 1) throw new RecordError(`the proven ${this.what} has a bad boolean`);
    return b === 1;
  }
  varint() {
    let v = 0n;
    for (let shift = 0n; shift < 133n; shift += 7n) {
      const b = this.u8();
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw new RecordError(`the proven ${this.what} has an over-long varint`);
  }
  string() {
    return new TextDecoder().decode(this.take(this.u32()));
  }
  address() {
    return encodeAddress(this.take(32));
  }
  option(read) {
    const tag = this.u8();
    if (tag > 1) throw new RecordError(`the proven ${this.what} has a bad option`);
    return tag ? read() : null;
  }
  tag(names) {
    const t = this.u8();
    if (t >= names.length) throw new RecordError(`the proven ${this.what} has an unknown ${names.join('/')} tag`);
    return names[t];
  }
}

/** The key of a value in the chain's state: a one-letter table, then the parts. */
function key(table, ...parts) {
  return concat(new TextEncoder().encode(table), ...parts);
}

function u64be(v) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), false);
  return b;
}

export const societyKey = (id) => key('S', u64be(id));
export const memberKey = (society, address) => key('m', u64be(society), decodeAddress(address));
export const requestKey = (id) => key('R', u64be(id));

/** A society record: `{ name, asset, period_secs, created_ms }` (and its rules). */
export function decodeSociety(bytes) {
  const r = new Reader(bytes, 'society');
  const name = r.string();
  r.string(); // purpose
  const asset = r.u64();
  const rules = {};
  for (const [field, type] of RULE_FIELDS) rules[field] = Array.isArray(type) ? r.tag(type) : r[type]();
  const created_ms = r.u64();
  return { name, asset, rules, created_ms };
}

/** The period a block time falls in, of a decoded society. */
export function periodAt(society, timeMs) {
  const t = BigInt(timeMs);
  const since = t > society.created_ms ? t - society.created_ms : 0n;
  return since / (society.rules.period_secs * 1000n);
}

/** A member record: `{ status, pledge, prev_pledge, pledge_from, paid_until, lapse_at }`. */
export function decodeMember(bytes) {
  const r = new Reader(bytes, 'member');
  const status = r.tag(['applicant', 'active', 'leaving']);
  if (status !== 'active') r.u64(); // the application, or when the notice ends
  const [, , pledge, prev_pledge, pledge_from, paid_until, , lapse_at] = Array.from({ length: 8 }, () => r.varint());
  return { status, pledge, prev_pledge, pledge_from, paid_until, lapse_at };
}

/** Good standing at period `now`: admitted, and paid (with the grace periods) up to `now`. */
export function inGoodStanding(member, now) {
  return member.status === 'active' && now < member.lapse_at;
}

/** A request record: `{ requester, payee, kind, status, approved, paid, gifted }`. */
export function decodeRequest(bytes) {
  const r = new Reader(bytes, 'request');
  const requester = r.address();
  const payee = r.address();
  const kind = r.tag(['help', 'admission']);
  if (kind === 'help') {
    r.u64(); // amount
    r.u32(); // installments
    r.u64(); // bond
    r.take(32); // evidence hash
    r.string(); // memo
  } else {
    r.u64(); // bond
  }
  // The ballot: society, four thresholds, head counts, yes-weight by percent, filing period.
  r.u64();
  for (let i = 0; i < 4; i++) r.u32();
  r.u64();
  r.u64();
  const percents = r.u32();
  if (percents > 101) throw new RecordError('the proven request has too many vote shares');
  r.take(percents * 17);
  r.u64();
  // The period start: period, the sharing pool (total, p, era, k, k_period, previous era), total
  // karma, members in good standing.
  r.u64();
  r.u64();
  r.u128();
  r.u64();
  r.u128();
  r.u64();
  r.option(() => {
    r.u128();
    r.u64();
    r.option(() => r.u32());
  });
  r.u128();
  r.u64();
  // Deadline, window, extended, yes, no, excluded.
  r.u64();
  r.u64();
  r.bool();
  r.u128();
  r.u128();
  r.option(() => r.address());
  const status = r.tag(['open', 'approved', 'paid', 'rejected']);
  const approved = r.u64();
  const paid = r.u64();
  const gifted = r.u64();
  return { requester, payee, kind, status, approved, paid, gifted };
}
