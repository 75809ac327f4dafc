// The society page's *My membership* panel: the member's standing, dues, karma and maximum
// benefit; joining, contributing, checking in, asking for help, changing the pledge, delegating
// votes and leaving.

import { h, apiOpt, app, asset, send, action } from './ui.js';
import { formatAmount, parseAmount, decodeAddress, toHex, sha256, LIMITS } from './codec.js';
import { provenMember, mark, failed } from './trust.js';
import { money, addressLink, date, relative, duration, percent, dl, field, input, needWallet, chainNow } from './widgets.js';

/** The society's period at block time `ms`, and the block time at which period `p` starts. */
function periodAt(s, ms) {
  return Math.floor((Number(ms) - Number(s.created_ms)) / (Number(s.rules.period_secs) * 1000));
}
function periodStart(s, p) {
  return Number(s.created_ms) + Number(p) * Number(s.rules.period_secs) * 1000;
}

/** Why the maximum benefit is what it is, in words. */
async function maxBenefitWhy(me, s) {
  const a = await asset(s.asset);
  const k = (v) => formatAmount(v, a.decimals);
  if (!me.good_standing) return 'nothing while you are not in good standing';
  const now = BigInt(me.karma) + BigInt(me.karma_pending);
  return `the smaller of your karma at the start of this period (${k(me.karma_at_period_start)}, less what your requests used this period) and now (${k(now)}) × benefit ratio ${s.rules.benefit_ratio}, capped at the largest request, ${await money(s.rules.max_request, s.asset)}`;
}

export async function membershipPanel(el, s) {
  const title = h('h2', { id: 'membership-title' }, 'My membership');
  if (!app.wallet) {
    el.replaceChildren(title, needWallet());
    return;
  }
  const a = await asset(s.asset);
  const m = (v) => money(v, s.asset);
  const me = await apiOpt(`/societies/${s.id}/members/${app.wallet.address}`);
  if (!me) {
    const pledge = input('join-pledge', { type: 'text', inputmode: 'decimal', required: true, value: formatAmount(s.rules.min_pledge, a.decimals).replace(/,/g, '') });
    const commitment = s.rules.identity === 'commitment'
      ? field('join-identity', 'Identity commitment', input('join-identity', { required: true, placeholder: 'Your full name and a secret salt' }), 'Hashed in this browser (SHA-256); only the hash goes on chain. Keep the exact text: you reveal it to voters when you ask for help.')
      : null;
    const bond = s.rules.admission === 'vote'
      ? h('p', { class: 'hint' }, `Applying locks a bond of ${percent(s.rules.application_bond_bps)} of your pledge, returned if you are admitted.`)
      : null;
    const form = h('form', { class: 'stack', id: 'join-form' },
      field('join-pledge', `Pledge per period (${a.symbol})`, pledge, `Between ${await m(s.rules.min_pledge)} and ${await m(s.rules.max_pledge)} every ${duration(s.rules.period_secs)}.`),
      commitment,
      bond,
      h('button', { type: 'submit' }, s.rules.admission === 'vote' ? 'Apply to join' : 'Join'));
    form.addEventListener('submit', action(async (f) => {
      const idText = f.querySelector('#join-identity');
      await send({
        kind: 'join',
        society: s.id,
        pledge: String(parseAmount(pledge.value, a.decimals, 'pledge')),
        identity_commitment: idText ? toHex(await sha256(new TextEncoder().encode(idText.value))) : null,
      }, 'Join');
    }));
    el.replaceChildren(title, h('p', {}, 'You are not a member of this society.'), form);
    return;
  }
  const now = chainNow();
  const active = me.status.state === 'active';
  const status = me.status.state === 'leaving' ? `leaving (may withdraw ${relative(me.status.until_ms)})` : me.status.state;
  // The standing shown is the one proven against the newest certified block (the member record
  // and the society's period); the node's own answer only words it.
  let standing;
  let verified;
  try {
    const p = await provenMember(s.id, app.wallet.address);
    if (!p.member) throw new Error('the certified state has no membership of yours in this society');
    standing = p.good
      ? 'in good standing'
      : me.lapsed && p.member.status === 'active'
        ? 'lapsed: pay what is due to be reinstated (your waiting time then starts again)'
        : p.member.status === 'active' ? 'not in good standing'
          : p.member.status === 'applicant' ? 'not yet: your application is being decided' : 'not counted while leaving';
    verified = h('span', { id: 'my-standing-proof' }, mark(p.head), ` — ${p.member.status}, pledge ${await m(p.member.pledge_from > p.now ? p.member.prev_pledge : p.member.pledge)}, paid until period ${p.member.paid_until} (now ${p.now})`);
  } catch (e) {
    standing = '—';
    verified = h('span', { id: 'my-standing-proof' }, failed(e));
  }
  const lapseAtExpel = periodStart(s, me.expellable_at);
  const waiting = me.waiting_until_ms > now
    ? `until ${date(me.waiting_until_ms)} (${relative(me.waiting_until_ms)}); then you may ask for help`
    : 'over: you may ask for help';
  const facts = dl([
    ['Status', status],
    ['Pledge', `${await m(me.pledge)} per ${duration(s.rules.period_secs)}${me.next_pledge ? `; ${await m(me.next_pledge)} from the next period` : ''}`],
    ['Standing', h('span', { id: 'my-standing' }, standing)],
    ['Verified', verified],
    active ? ['Paid until', h('span', { id: 'my-paid-until' }, `${date(me.next_due_ms)} (${relative(me.next_due_ms)})`)] : null,
    active && me.good_standing ? ['Standing runs out', h('span', { id: 'my-lapse-at' }, `${date(me.lapse_at_ms)} (${relative(me.lapse_at_ms)}) unless you pay before`)] : null,
    active && me.lapsed ? ['Expulsion possible', `from ${date(lapseAtExpel)} (${relative(lapseAtExpel)}) if you are still lapsed and no request of yours is in progress`] : null,
    active ? ['Waiting time', h('span', { id: 'my-waiting' }, waiting)] : null,
    ['Karma', formatAmount(me.karma, a.decimals)],
    ['Karma at the start of this period', formatAmount(me.karma_at_period_start, a.decimals)],
    BigInt(me.karma_pending) > 0n ? ['Pending karma', h('span', { id: 'my-pending' }, `${formatAmount(me.karma_pending, a.decimals)}, for periods you paid ahead that have arrived: it counts already`)] : null,
    ['Gift account', await m(me.gift_balance)],
    ['Maximum benefit', h('span', { id: 'my-max-benefit' }, await m(me.max_benefit), h('span', { class: 'hint', id: 'my-max-benefit-why' }, ` — ${await maxBenefitWhy(me, s)}`))],
    ['Votes delegated to', me.delegate ? addressLink(me.delegate) : 'nobody (you vote yourself)'],
  ]);
  facts.id = 'my-facts';

  // A lapsed member is offered what brings them back: the periods due up to the current one.
  const due = me.lapsed ? BigInt(Math.max(1, periodAt(s, now) + 1 - me.paid_until)) * BigInt(me.pledge) : BigInt(me.pledge);
  const contribute = h('form', { class: 'inline', id: 'contribute-form' },
    field('contribute-amount', `Contribute (${a.symbol})`, input('contribute-amount', { type: 'text', inputmode: 'decimal', required: true, value: formatAmount(due, a.decimals).replace(/,/g, '') }),
      'Pays whole periods in order; each paid period earns karma as it arrives.'),
    h('button', { type: 'submit' }, 'Contribute'));
  contribute.addEventListener('submit', action(async (f) => {
    await send({ kind: 'contribute', society: s.id, amount: String(parseAmount(f.querySelector('#contribute-amount').value, a.decimals)) }, 'Contribute');
  }));
  const checkIn = h('div', { class: 'inline' },
    h('button', { type: 'button', class: 'secondary', id: 'check-in', onclick: action(() => send({ kind: 'contribute', society: s.id, amount: '0' }, 'Check in')) }, 'Check in'),
    h('span', { class: 'hint' }, 'Pays nothing: credits the karma of periods you paid ahead and, if your gift account is full, renews your standing.'));

  const evidence = input('request-evidence', { type: 'file' });
  const evidenceHash = h('output', { id: 'request-evidence-hash', for: 'request-evidence', class: 'mono' }, 'no file chosen');
  evidence.addEventListener('change', async () => {
    const file = evidence.files[0];
    evidenceHash.textContent = file ? toHex(await sha256(new Uint8Array(await file.arrayBuffer()))) : 'no file chosen';
  });
  const request = h('form', { class: 'stack', id: 'request-form' },
    h('h3', {}, 'Ask for help'),
    field('request-amount', `Amount (${a.symbol})`, input('request-amount', { type: 'text', inputmode: 'decimal', required: true }), `In all, or per period when paid in installments. The total may be at most your maximum benefit, ${await m(me.max_benefit)}.`),
    field('request-installments', 'Pay per period for N periods', input('request-installments', { type: 'number', min: 0, max: s.rules.max_installments, step: 1, value: 0 }),
      `0 for one sum paid as soon as the society can; N (up to ${s.rules.max_installments}) for the amount every period for N periods. A benefit at least your pledge also waives your dues while it runs.`),
    field('request-payee', 'Pay to (optional)', input('request-payee', { autocomplete: 'off', placeholder: 'kassa1… (empty: to you)' }), 'Another account to receive the money, e.g. a landlord or a hospital. Karma, bond and obligations stay yours.'),
    field('request-memo', 'What happened (short note or link)', input('request-memo', { maxlength: LIMITS.memo, required: true })),
    field('request-evidence', 'Evidence file', evidence, 'Hashed in this browser; the file itself is never uploaded. Keep it to show the voters.'),
    h('p', { class: 'hint' }, 'Evidence hash: ', evidenceHash),
    h('button', { type: 'submit' }, 'File the request'));
  request.addEventListener('submit', action(async (f) => {
    const hash = /^[0-9a-f]{64}$/.test(evidenceHash.textContent) ? evidenceHash.textContent : toHex(await sha256(new TextEncoder().encode(f.querySelector('#request-memo').value)));
    const n = f.querySelector('#request-installments').value.trim() || '0';
    if (!/^[0-9]+$/.test(n) || Number(n) > s.rules.max_installments) {
      const e = new Error(`installments: a whole number from 0 to ${s.rules.max_installments}`);
      e.field = 'Pay per period for N periods';
      throw e;
    }
    const payee = f.querySelector('#request-payee').value.trim();
    if (payee) decodeAddress(payee);
    await send({
      kind: 'file_request',
      society: s.id,
      amount: String(parseAmount(f.querySelector('#request-amount').value, a.decimals)),
      evidence_hash: hash,
      memo: f.querySelector('#request-memo').value,
      payee: payee && payee !== app.wallet.address ? payee : null,
      installments: Number(n),
    }, 'File request');
  }));

  const pledgeForm = h('form', { class: 'inline', id: 'pledge-form' },
    field('pledge-new', `New pledge per period (${a.symbol})`, input('pledge-new', { type: 'text', inputmode: 'decimal', required: true, value: formatAmount(me.next_pledge || me.pledge, a.decimals).replace(/,/g, '') }),
      `From the next period on, between ${await m(s.rules.min_pledge)} and ${await m(s.rules.max_pledge)}. Possible while you are in good standing, have no request in progress and have paid no period beyond the current one. A raise starts your waiting time again.`),
    h('button', { type: 'submit' }, 'Change pledge'));
  pledgeForm.addEventListener('submit', action(async (f) => {
    await send({ kind: 'change_pledge', society: s.id, pledge: String(parseAmount(f.querySelector('#pledge-new').value, a.decimals, 'new pledge')) }, 'Change pledge');
  }));

  const delegate = h('form', { class: 'inline', id: 'delegate-form' },
    field('delegate-to', 'Lend my votes to (address; empty to take them back)', input('delegate-to', { autocomplete: 'off', value: me.delegate || '' })),
    h('button', { type: 'submit' }, 'Delegate'));
  delegate.addEventListener('submit', action(async (f) => {
    const to = f.querySelector('#delegate-to').value.trim();
    if (to) decodeAddress(to);
    await send({ kind: 'delegate', society: s.id, to: to || null }, to ? 'Delegate' : 'Take back delegation');
  }));

  const exit = h('div', { class: 'inline' });
  if (active) {
    exit.append(h('button', { type: 'button', class: 'secondary', id: 'leave', onclick: action(() => send({ kind: 'leave', society: s.id }, 'Give notice')) }, 'Give notice to leave'));
  } else if (me.status.state === 'leaving') {
    exit.append(h('button', { type: 'button', class: 'secondary', id: 'withdraw', onclick: action(() => send({ kind: 'withdraw', society: s.id }, 'Withdraw')) }, 'Leave and withdraw'));
  }
  const asking = me.request_in_progress
    ? h('p', { class: 'callout', id: 'my-open-request' }, `Your request #${me.open_request} is being decided or paid: see it under Requests. You can ask again once it is done.`)
    : request;
  const details = h('details', {}, h('summary', {}, 'Pledge, delegate, leave'), active ? pledgeForm : null, delegate, exit);
  el.replaceChildren(title, facts, ...(active ? [contribute, checkIn, asking] : []), details);
}
