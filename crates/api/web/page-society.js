// `#/society/<id>`: one society — its figures, charts, rules and members, with the panels in which
// a member acts (society-membership.js, society-requests.js, society-amendments.js) and, on
// development chains, helpers in which the public dev accounts act as the other members.

import { h, api, apiOpt, app, asset, send, action, live, perBlock, notify } from './ui.js';
import * as wallet from './wallet.js';
import { formatAmount, toHex, sha256 } from './codec.js';
import { lineChart, barChart, histogram } from './charts.js';
import { money, addressLink, date } from './widgets.js';
import { rulesInWords } from './rules.js';
import { membershipPanel } from './society-membership.js';
import { requestsPanel } from './society-requests.js';
import { amendmentsPanel } from './society-amendments.js';

export async function societyView(root, id) {
  const s = await apiOpt(`/societies/${id}`);
  if (!s) {
    root.append(h('h1', {}, 'No such society'), h('p', {}, h('a', { href: '#/societies' }, 'All societies')));
    return;
  }
  const a = await asset(s.asset);
  const m = (v) => money(v, s.asset);
  // What several regions show, fetched once per block.
  const data = perBlock(async () => {
    const [soc, requests, members] = await Promise.all([
      api(`/societies/${id}`),
      api(`/societies/${id}/requests?limit=100`),
      api(`/societies/${id}/members?limit=100`),
    ]);
    return { soc, requests: requests.items, members: members.items };
  });

  const stats = live(h('section', { class: 'stats', 'aria-label': 'Society at a glance' }), async (el) => {
    const cur = (await data()).soc;
    el.replaceChildren(...[
      stat('Members', String(cur.member_count), 'stat-members'),
      stat('In good standing', String(cur.standing_count), 'stat-standing'),
      stat('Gift funds', await m(cur.gift_funds), 'stat-funds'),
      stat('Common fund', await m(cur.common_fund), 'stat-common'),
      stat('Total karma', formatAmount(cur.total_karma, a.decimals), 'stat-karma'),
      stat('Requests filed', String(cur.stats.requests_filed), 'stat-requests'),
      stat('Paid by shares', await m(cur.stats.paid_by_shares), 'stat-shares'),
      stat('Paid by gifts', await m(cur.stats.paid_by_gifts), 'stat-gifts'),
      stat('Paid by the common fund', await m(cur.stats.paid_by_common), 'stat-common-paid'),
      BigInt(cur.owed) > 0n ? stat('Still owed to requests', await m(cur.owed), 'stat-owed') : null,
    ].filter(Boolean));
  });

  const mine = h('section', { class: 'panel', id: 'membership', 'aria-labelledby': 'membership-title' });
  live(mine, (el) => membershipPanel(el, s));

  const requests = h('section', { class: 'panel', id: 'requests', 'aria-labelledby': 'requests-title' });
  live(requests, (el) => requestsPanel(el, s, data));

  const charts = h('section', { class: 'panel', id: 'charts', 'aria-labelledby': 'charts-title' });
  live(charts, (el) => chartsPanel(el, s, data));

  const members = h('section', { class: 'panel', id: 'members', 'aria-labelledby': 'members-title' });
  live(members, async (el) => {
    const { soc: cur, members: items } = await data();
    const rows = [];
    for (const x of items) {
      const standing = x.good_standing ? 'in good standing' : x.lapsed ? `lapsed since ${date(x.lapse_at_ms)}` : 'not yet';
      rows.push(h('tr', {}, h('td', {}, addressLink(x.address)), h('td', {}, x.status.state), h('td', {}, await m(x.pledge)),
        h('td', {}, standing), h('td', {}, date(x.next_due_ms)), h('td', { class: 'num' }, formatAmount(x.karma, a.decimals)), h('td', { class: 'num' }, await m(x.gift_balance))));
    }
    el.replaceChildren(h('h2', { id: 'members-title' }, `Members (${cur.member_count}, ${cur.standing_count} in good standing)`),
      h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, ['Member', 'Status', 'Pledge', 'Standing', 'Paid until', 'Karma', 'Gift account'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, rows))));
  });

  const amendments = h('section', { class: 'panel', id: 'amendments', 'aria-labelledby': 'amendments-title' });
  live(amendments, (el) => amendmentsPanel(el, s, data));

  const dev = app.status && app.status.faucet ? devPanel(s) : null;
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/societies' }, 'Societies'), ' / ', s.name),
    h('h1', {}, s.name),
    h('p', { class: 'lead purpose' }, s.purpose),
    stats,
    h('div', { class: 'columns' },
      h('div', {}, mine, requests),
      h('div', {}, charts, h('section', { class: 'panel', 'aria-labelledby': 'rules-title' }, h('h2', { id: 'rules-title' }, 'Rules in plain words'), await rulesInWords(s.rules, s.asset)))),
    members,
    amendments,
    ...(dev ? [dev] : []),
  );
}

function stat(label, value, id) {
  return h('div', { class: 'stat' }, h('span', { class: 'stat-label', id: `${id}-label` }, label), h('span', { class: 'stat-value', id, 'aria-labelledby': `${id}-label ${id}` }, value));
}

async function chartsPanel(el, s, data) {
  const a = await asset(s.asset);
  const [hist, { soc: cur, requests, members }] = await Promise.all([api(`/societies/${s.id}/history?points=30`), data()]);
  const points = hist.items.map((p) => ({ label: `#${p.height}`, value: BigInt(p.gift_funds) }));
  const count = (st) => requests.filter((r) => r.kind === 'help' && r.status === st).length;
  const karma = members.map((x) => BigInt(x.karma));
  const buckets = histogram(karma, 5);
  el.replaceChildren(
    h('h2', { id: 'charts-title' }, 'Over time'),
    h('figure', {}, lineChart(points, { label: `Gift funds over the last ${points.length} samples, up to ${formatAmount(cur.gift_funds, a.decimals)} ${a.symbol} now`, format: (v) => formatAmount(v, a.decimals) }), h('figcaption', {}, `Gift funds (${a.symbol})`)),
    h('figure', {}, barChart([
      { label: 'approved', value: cur.stats.requests_approved, kind: 'ok' },
      { label: 'rejected', value: cur.stats.requests_rejected, kind: 'bad' },
      { label: 'paid', value: count('paid'), kind: 'ok' },
      { label: 'open', value: count('open'), kind: 'wait' },
    ], { label: `Requests: ${cur.stats.requests_approved} approved, ${cur.stats.requests_rejected} rejected, ${count('paid')} paid, ${count('open')} open` }), h('figcaption', {}, 'Requests')),
    h('figure', {}, barChart(buckets.map((b) => ({ label: formatAmount(b.from, a.decimals), value: b.count })), { label: `Karma of ${karma.length} members, in ${buckets.length} ranges` }), h('figcaption', {}, 'Karma distribution (members per karma range)')));
}

// ---- development chains ------------------------------------------------------------------------

/** How many pledges a dev account pays when it joins: enough to stay in standing a few periods. */
const DEV_PLEDGES_AHEAD = 4n;

/** Development chains only: the public dev accounts 1–9 act as other members, signing here. */
function devPanel(s) {
  const run = (label, fn) => h('button', { type: 'button', class: 'secondary', onclick: action(async () => {
    const done = await fn();
    notify('ok', `${label}: ${done}`);
  }) }, label);
  const accounts = async () => Promise.all(Array.from({ length: 9 }, (_, i) => wallet.devAccount(i + 1)));
  const fill = async () => {
    let joined = 0;
    for (const k of await accounts()) {
      const cur = await api(`/societies/${s.id}`);
      // The founder is a member already; members count once they are in good standing.
      if (cur.standing_count >= cur.rules.min_members) break;
      if (await apiOpt(`/societies/${s.id}/members/${k.address}`)) continue;
      await send({ kind: 'join', society: s.id, pledge: cur.rules.min_pledge, identity_commitment: s.rules.identity === 'commitment' ? toHex(await sha256(new TextEncoder().encode(k.address))) : null }, `dev account joins`, k);
      await send({ kind: 'contribute', society: s.id, amount: String(BigInt(cur.rules.min_pledge) * DEV_PLEDGES_AHEAD) }, 'dev account contributes', k);
      joined++;
    }
    return `${joined} dev account(s) joined and paid ${DEV_PLEDGES_AHEAD} pledges each.`;
  };
  const contribute = async () => {
    let n = 0;
    for (const k of await accounts()) {
      const me = await apiOpt(`/societies/${s.id}/members/${k.address}`);
      if (!me || me.status.state !== 'active') continue;
      await send({ kind: 'contribute', society: s.id, amount: me.pledge }, 'dev account contributes', k);
      n++;
    }
    return `${n} dev member(s) paid a pledge.`;
  };
  const vote = async (approve) => {
    const open = (await api(`/societies/${s.id}/requests?limit=100`)).items.filter((r) => r.status === 'open');
    let n = 0;
    for (const k of await accounts()) {
      if (!(await apiOpt(`/societies/${s.id}/members/${k.address}`))) continue;
      for (const r of open) {
        if (r.requester === k.address) continue;
        try {
          await send({ kind: 'vote', request: r.id, approve, percent: 100 }, 'dev account votes', k);
          n++;
        } catch {
          // e.g. no voting weight (karma counts from before the period the request was filed in)
        }
      }
    }
    return `${n} vote(s) cast.`;
  };
  return h('section', { class: 'panel', id: 'dev-tools', 'aria-labelledby': 'dev-title' },
    h('h2', { id: 'dev-title' }, 'Development chain helpers'),
    h('p', { class: 'hint' }, 'This chain is a development chain: its dev accounts’ keys are public, so this page can let them act as the other members you need to try a request. Nothing like this exists on a real chain. Dev members’ votes weigh the karma they had before the period a request was filed in: let a period pass after they pay.'),
    h('div', { class: 'inline' },
      run('Dev accounts join up to the minimum size', fill),
      run('Dev members pay a pledge', contribute),
      run('Dev members vote yes on open requests', () => vote(true)),
      run('Dev members vote no on open requests', () => vote(false))));
}
