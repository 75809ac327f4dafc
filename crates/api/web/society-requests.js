// The society page's *Requests* panel: requests for help and applications to join, their votes
// and payments, and voting, finalizing, giving and claiming installments.

import { h, api, app, asset, send, action } from './ui.js';
import { formatAmount, parseAmount } from './codec.js';
import { provenRequest, mark, failed } from './trust.js';
import { money, short, addressLink, date, relative, field, input, chainNow } from './widgets.js';

/** The votes of a ballot in words: "Yes 12 (of which 4 for 50%) · No 3 karma". */
function tallyText(b, a) {
  const k = (v) => formatAmount(v, a.decimals);
  const partial = (b.yes_by_percent || []).filter((x) => x.percent < 100);
  const parts = partial.map((x) => `${k(x.weight)} for ${x.percent}%`);
  return `Yes ${k(b.yes)} · No ${k(b.no)} karma${parts.length ? ` (yes for part of the amount: ${parts.join(', ')})` : ''}`;
}

export async function requestsPanel(el, s, data) {
  const a = await asset(s.asset);
  const m = (v) => money(v, s.asset);
  const items = (await data()).requests;
  const now = chainNow();
  const cards = [];
  for (const r of items) {
    const b = r.ballot;
    const open = r.status === 'open';
    const help = r.kind === 'help';
    const yes = BigInt(b.yes);
    const no = BigInt(b.no);
    const needed = BigInt(b.thresholds.net_needed);
    const net = yes - no;
    const pct = needed > 0n ? Number(((net < 0n ? 0n : net) * 100n) / needed) : net >= 0n ? 100 : 0;
    const closed = now >= b.deadline_ms;
    const benefit = r.benefit;
    const need = help && !r.installments ? BigInt(r.approved) - BigInt(r.paid) - BigInt(r.gifted) : 0n;
    const headline = !help ? 'to join' : r.installments ? `${await m(r.amount)} per period for ${r.installments} periods` : await m(r.amount);
    const passingNow = r.outcome_percent > 0
      ? help ? `Passing now${r.outcome_percent < 100 ? ` at ${r.outcome_percent}% of the amount` : ''}.` : 'Passing now.'
      : 'Not passing now.';
    // The status and the amounts approved, paid and gifted are the ones proven against the newest
    // certified block; a request that does not verify shows no status.
    let status = '—';
    let proof;
    try {
      const p = await provenRequest(r.id, r);
      status = p.request.status;
      proof = h('p', { class: 'proof', 'data-testid': 'request-proof' }, mark(p.head), ` — ${p.request.status}, approved ${await m(p.request.approved)}, paid ${await m(p.request.paid)}, gifted ${await m(p.request.gifted)}`);
    } catch (e) {
      proof = h('p', { class: 'proof', 'data-testid': 'request-proof' }, failed(e));
    }
    const card = h('article', { class: `card request ${r.status}`, id: `request-${r.id}`, 'aria-labelledby': `request-${r.id}-title` },
      h('h3', { id: `request-${r.id}-title` }, `${help ? 'Request' : 'Application'} #${r.id}: `, headline),
      h('p', { class: 'badge-row' }, h('span', { class: `badge ${status}`, 'data-testid': 'request-status' }, status), ' by ', addressLink(r.requester),
        help && r.payee !== r.requester ? h('span', { 'data-testid': 'request-payee' }, ', paid to ', addressLink(r.payee)) : null),
      proof,
      r.memo ? h('p', { class: 'memo' }, r.memo) : null,
      r.evidence_hash ? h('p', { class: 'hint' }, 'Evidence SHA-256: ', h('span', { class: 'mono' }, short(r.evidence_hash, 16))) : null,
      h('div', { class: 'tally', 'aria-label': `Yes ${b.yes}, no ${b.no}, margin needed ${b.thresholds.net_needed} karma` },
        h('meter', { min: 0, max: 100, value: Math.min(pct, 100), optimum: 100, low: 99, 'aria-hidden': 'true' }),
        h('p', {}, `${tallyText(b, a)}; needs a margin of ${formatAmount(b.thresholds.net_needed, a.decimals)} and ${formatAmount(b.thresholds.quorum, a.decimals)} yes`,
          help ? '' : `, and yes from more than half of the ${b.thresholds.standing_at_filing} members in good standing`, '. ',
          open ? h('strong', {}, passingNow) : null)),
      open && help ? h('p', { class: 'hint' }, 'Each vote weighs the karma the voter had at the start of the period this was filed in. A yes-vote may approve part of the amount: the largest part that passes is paid, and yes-votes for less count against more.') : null,
      h('p', { class: 'hint' }, open ? (closed ? `Voting closed ${relative(b.deadline_ms)}; anyone may finalize.` : `Voting closes ${relative(b.deadline_ms)} (${date(b.deadline_ms)})${b.extended ? ', extended once by a late vote' : ''}.`) : `Voting closed ${date(b.deadline_ms)}.`),
      help && r.status !== 'open' && r.status !== 'rejected'
        ? h('p', { 'data-testid': 'request-approved' }, 'Approved: ',
          benefit ? `${await m(benefit.per_period)} per period for ${benefit.installments} periods` : await m(r.approved),
          r.outcome_percent < 100 ? ` (${r.outcome_percent}% of the ${await m(r.amount)} asked${benefit ? ' per period' : ''})` : '', '.')
        : null,
      help && !r.installments && r.status !== 'open' && r.status !== 'rejected'
        ? h('p', { class: 'paid', 'data-testid': 'request-paid' }, `Paid by the society ${await m(r.paid)} · by gifts ${await m(r.gifted)}`, need > 0n ? ` · still needed ${await m(need)}` : ' · fully paid')
        : null,
      benefit ? h('p', { class: 'paid', 'data-testid': 'request-benefit' },
        `${await m(benefit.per_period)} per period, periods ${benefit.first_period}–${benefit.last_period}: ${benefit.installments_due} of ${benefit.installments} installments due, ${await m(benefit.claimed)} claimed`,
        benefit.ended_early ? ' · ended early' : '',
        benefit.dues_waived ? ' · the requester’s dues are waived while it runs' : '') : null);
    const acts = h('div', { class: 'inline actions' });
    const mineReq = app.wallet && r.requester === app.wallet.address;
    if (open && !closed && app.wallet && !mineReq) {
      const share = input(`vote-percent-${r.id}`, { type: 'number', min: 1, max: 100, step: 1, value: 100 });
      const yesForm = h('form', { class: 'inline', id: `vote-form-${r.id}` },
        help ? field(`vote-percent-${r.id}`, 'Approve (% of the amount)', share) : null,
        h('button', { type: 'submit' }, 'Vote yes'),
        h('button', { type: 'button', class: 'secondary', onclick: action(() => send({ kind: 'vote', request: r.id, approve: false, percent: 100 }, `Vote no on #${r.id}`)) }, 'Vote no'));
      yesForm.addEventListener('submit', action(async () => {
        const p = help ? share.value.trim() : '100';
        if (!/^[0-9]+$/.test(p) || Number(p) < 1 || Number(p) > 100) {
          const e = new Error('percent: a whole number from 1 to 100');
          e.field = 'Approve (% of the amount)';
          throw e;
        }
        await send({ kind: 'vote', request: r.id, approve: true, percent: Number(p) }, Number(p) < 100 ? `Vote yes for ${p}% on #${r.id}` : `Vote yes on #${r.id}`);
      }));
      acts.append(yesForm);
    }
    if (open && closed && app.wallet) {
      acts.append(h('button', { type: 'button', onclick: action(() => send({ kind: 'finalize', request: r.id }, `Finalize #${r.id}`)) }, 'Finalize'));
    }
    if (r.status === 'approved' && need > 0n && app.wallet) {
      if (!mineReq && r.payee !== app.wallet.address) {
        const gift = h('form', { class: 'inline', id: `gift-form-${r.id}` },
          field(`gift-amount-${r.id}`, `Give from my gift account (${a.symbol})`, input(`gift-amount-${r.id}`, { type: 'text', inputmode: 'decimal', required: true })),
          h('button', { type: 'submit' }, 'Give'));
        gift.addEventListener('submit', action(async (f) => {
          await send({ kind: 'gift', request: r.id, amount: String(parseAmount(f.querySelector(`#gift-amount-${r.id}`).value, a.decimals)) }, `Gift to #${r.id}`);
        }));
        acts.append(gift);
      }
      acts.append(h('button', { type: 'button', class: 'secondary', onclick: action(() => send({ kind: 'settle', society: s.id }, 'Settle')) }, 'Pay shares now'));
    }
    if (benefit && r.status === 'approved' && app.wallet) {
      acts.append(h('button', { type: 'button', id: `claim-${r.id}`, onclick: action(() => send({ kind: 'claim_benefit', request: r.id }, `Claim installments of #${r.id}`)) }, 'Claim installments'));
      if (mineReq && !benefit.ended_early && benefit.installments_due < benefit.installments) {
        acts.append(h('button', { type: 'button', class: 'secondary', id: `end-${r.id}`, onclick: action(() => {
          if (!confirm('End this benefit now? Installments not yet due are never paid; what is funded so far is paid out.')) return Promise.resolve();
          return send({ kind: 'end_benefit', request: r.id }, `End benefit #${r.id}`);
        }) }, 'End benefit'));
      }
    }
    if (acts.childElementCount) card.append(acts);
    if (open && app.wallet) {
      const votes = (await api(`/requests/${r.id}/votes?limit=100`)).items;
      const myVote = votes.find((v) => v.voter === app.wallet.address);
      if (myVote) {
        const what = myVote.approve ? (myVote.percent < 100 ? `yes for ${myVote.percent}%` : 'yes') : 'no';
        card.append(h('p', { class: 'hint', 'data-testid': 'my-vote' }, `You voted ${what} (you may change it until voting closes).`));
      }
    }
    cards.push(card);
  }
  el.replaceChildren(h('h2', { id: 'requests-title' }, 'Requests'), ...(cards.length ? cards : [h('p', { class: 'muted' }, 'No requests yet.')]));
}
