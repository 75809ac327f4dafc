// The app's pages. Each view fills a container; parts that change with every block are `live`
// regions, refreshed from the node's event stream.

import { h, api, apiOpt, app, asset, send, action, live, perBlock, notify, messageOf, loadWallet, refreshStatus, rerender } from './app.js';
import * as wallet from './wallet.js';
import { formatAmount, parseAmount, decodeAddress, toHex, fromHex, sha256, balanceKey, balanceIn, verifyProof, LIMITS } from './codec.js';
import { lineChart, barChart, histogram } from './charts.js';
import { previewPanel } from './preview.js';

// ---- formatting --------------------------------------------------------------------------------

async function money(units, assetId) {
  const a = await asset(assetId);
  return `${formatAmount(units, a.decimals)} ${a.symbol}`;
}

function short(s, n = 10) {
  return s && s.length > 2 * n ? `${s.slice(0, n)}…${s.slice(-4)}` : s;
}

function addressLink(a) {
  const mine = app.wallet && app.wallet.address === a;
  return h('a', { href: `#/account/${a}`, class: 'mono', title: a }, mine ? 'you' : short(a));
}

function date(ms) {
  return new Date(Number(ms)).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** "in 3 min", "2 h ago": relative to the chain's block time, not the browser's clock. */
function relative(ms) {
  const now = app.status ? app.status.time_ms : Date.now();
  const d = Math.round((Number(ms) - now) / 1000);
  const abs = Math.abs(d);
  const text = abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : abs < 172800 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86400)} days`;
  return d >= 0 ? `in ${text}` : `${text} ago`;
}

function duration(secs) {
  const s = Number(secs);
  if (s % 86400 === 0) return `${s / 86400} day${s === 86400 ? '' : 's'}`;
  if (s % 3600 === 0) return `${s / 3600} hour${s === 3600 ? '' : 's'}`;
  if (s % 60 === 0) return `${s / 60} minute${s === 60 ? '' : 's'}`;
  return `${s} second${s === 1 ? '' : 's'}`;
}

function percent(bps) {
  const v = Number(bps);
  return `${Math.floor(v / 100)}${v % 100 ? '.' + String(v % 100).padStart(2, '0').replace(/0$/, '') : ''}%`;
}

function periods(n) {
  return `${n} period${Number(n) === 1 ? '' : 's'}`;
}

function dl(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function field(id, label, input, hint) {
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    input,
    hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null);
}

function input(id, attrs = {}) {
  return h('input', { id, name: id, 'aria-describedby': `${id}-hint`, ...attrs });
}

function needWallet() {
  return h('p', { class: 'callout' }, 'To take part, ', h('a', { href: '#/wallet' }, 'create or import a wallet'), ' first. Your keys stay in this browser.');
}

// ---- rules: the form, and the rules in plain words ---------------------------------------------

const UNITS = [['seconds', 1], ['minutes', 60], ['hours', 3600], ['days', 86400]];

/**
 * Every rule: how it is entered and what it means, in plain words. `min` is the smallest value
 * any society may have (the protocol's ranges and safeguard floors), in the unit entered.
 */
const RULES = [
  { key: 'period_secs', label: 'Contribution period', type: 'duration', help: 'How often members pay their pledge. Broodfonds groups use a month.' },
  { key: 'min_pledge', label: 'Smallest pledge', type: 'amount', help: 'The least a member may commit to pay each period.' },
  { key: 'max_pledge', label: 'Largest pledge', type: 'amount', help: 'The most a member may commit each period. Everyone chooses between the two when joining.' },
  { key: 'admission', label: 'Who may join', type: 'choice', options: [['open', 'Anyone, at once'], ['vote', 'Applicants are voted in by the members']], help: 'With a vote, members can also veto an applicant.' },
  { key: 'identity', label: 'Identity', type: 'choice', options: [['public', 'The account is enough'], ['commitment', 'Members commit to their real identity (a salted hash)']], help: 'A commitment is revealed to voters, off-chain, only when the member asks for help.' },
  { key: 'waiting_periods', label: 'Waiting time', type: 'count', unit: 'periods', min: 0, max: 1200, help: 'A new member waits this long after joining before they may ask for help. It starts again after a lapse or a raised pledge.' },
  { key: 'grace_periods', label: 'Grace', type: 'count', unit: 'periods', min: 1, max: 1200, help: 'How many unpaid periods a member may have and stay in good standing (able to vote and ask for help). At least 1.' },
  { key: 'lapse_periods', label: 'Expulsion after lapsing', type: 'count', unit: 'periods', min: 1, max: 1200, help: 'A member out of standing for this long may be removed by anyone; their gift account is then settled as if they had left. At least 1.' },
  { key: 'gift_cap_pledges', label: 'Gift account cap', type: 'count', unit: 'pledges', min: 1, max: 10000, help: 'A member’s gift account may hold at most this many pledges; more is refused. A full account owes no dues: a check-in keeps its owner in standing.' },
  { key: 'min_members', label: 'Minimum size', type: 'count', unit: 'members', min: 0, help: 'Nobody may ask for help before the society has this many members in good standing.' },
  { key: 'karma_half_life_periods', label: 'Karma half-life', type: 'count', unit: 'periods', min: 1, max: 1200, help: 'Karma (earned by paying and giving) halves over this time, so recent generosity counts most.' },
  { key: 'benefit_ratio', label: 'Benefit ratio', type: 'count', unit: '× karma', min: 0, max: 1000, help: 'A member may ask for at most their karma times this.' },
  { key: 'max_request', label: 'Largest request', type: 'amount', help: 'No request may ask for more than this in all, whatever the karma.' },
  { key: 'max_installments', label: 'Longest benefit', type: 'count', unit: 'periods', min: 1, max: 120, help: 'Help may be paid as an amount per period for at most this many periods (1 to 120).' },
  { key: 'bond_bps', label: 'Bond', type: 'percent', unit: '% of a pledge', help: 'Locked when asking for help; returned if approved, given to the common fund if rejected.' },
  { key: 'application_bond_bps', label: 'Application bond', type: 'percent', unit: '% of a pledge', help: 'Locked by an applicant when admission is by vote; returned if admitted, given to the common fund if refused.' },
  { key: 'filing_karma_bps', label: 'Karma used by asking', type: 'percent', unit: '%', help: 'Asking for help uses this share of the requester’s karma, approved or not.' },
  { key: 'voting_window_secs', label: 'Voting time', type: 'duration', help: 'How long members may vote (and change their vote) on a request, an applicant or a rule change. At least 1 minute, and at least 1/30 of the period.' },
  { key: 'approval_net_bps', label: 'Approval margin', type: 'percent', unit: '% of all karma', min: 1, help: 'A request passes if yes minus no reaches this share of the society’s karma. A small margin means a few members can approve, and a few can veto. At least 0.01%.' },
  { key: 'quorum_bps', label: 'Quorum', type: 'percent', unit: '% of all karma', min: 1, help: 'Yes votes must also reach this share of the society’s karma. At least 0.01%.' },
  { key: 'auto_share', label: 'Share approved requests automatically', type: 'bool', help: 'Approved requests are paid pro rata from every member’s gift account.' },
  { key: 'max_draw_bps', label: 'Most shared per period', type: 'percent', unit: '% of the gift funds', min: 1, help: 'Automatic sharing takes at most this share of the gift funds in one period; the rest is paid in later periods.' },
  { key: 'notice_periods', label: 'Notice', type: 'count', unit: 'periods', min: 0, max: 1200, help: 'Periods between giving notice and leaving. During notice, the member’s gift account still shares in approved requests.' },
  { key: 'exit_refund', label: 'Refund on leaving', type: 'bool', help: 'A member who leaves gets back what is left in their gift account, less their share of what the society still owes.' },
  { key: 'amendment_threshold_bps', label: 'Majority to change the rules', type: 'percent', unit: '% of all karma', min: 5001, help: 'A rule change passes if yes votes reach this share of the society’s karma (more than half).' },
  { key: 'amendment_timelock_periods', label: 'Delay before a rule change', type: 'count', unit: 'periods', min: 1, max: 1200, help: 'A passed change waits this long before it applies, so members who disagree can leave first. At least 1.' },
];

/** The protocol's defaults (docs/protocol.md §3.2) for a pledge range, in the API's JSON shape. */
function defaultRules(minPledge, maxPledge) {
  return {
    period_secs: 2592000, min_pledge: String(minPledge), max_pledge: String(maxPledge), admission: 'open', identity: 'public',
    waiting_periods: 3, grace_periods: 1, gift_cap_pledges: 36, min_members: 20, karma_half_life_periods: 6, benefit_ratio: 10,
    max_request: String(BigInt(maxPledge) * 24n), bond_bps: 10000, filing_karma_bps: 2500, voting_window_secs: 604800,
    approval_net_bps: 500, quorum_bps: 1500, auto_share: true, max_draw_bps: 1000, notice_periods: 1, exit_refund: true,
    amendment_threshold_bps: 6667, amendment_timelock_periods: 2, lapse_periods: 3, max_installments: 24,
    application_bond_bps: 10000,
  };
}

/** Longest allowed period and voting window: ten years of seconds (crates/types/src/rules.rs). */
const PERIOD_SECS_MAX = 10 * 366 * 24 * 3600;

/** The shortest voting window a period allows: a minute, and at least 1/30 of the period. */
function votingWindowMin(periodSecs) {
  return Math.max(60, Math.ceil(Number(periodSecs) / 30));
}

function bestUnit(secs) {
  return UNITS.slice().reverse().find(([, f]) => Number(secs) % f === 0) || UNITS[0];
}

/** Form inputs for every rule, filled from `rules`; `fixed` rules are shown but not editable. */
function rulesFields(prefix, rules, decimals, fixed = []) {
  return RULES.map((r) => {
    const id = `${prefix}-${r.key}`;
    const v = rules[r.key];
    const disabled = fixed.includes(r.key);
    let control;
    if (r.type === 'duration') {
      const [unit, f] = bestUnit(v);
      control = h('span', { class: 'pair' },
        input(id, { type: 'number', min: 1, step: 1, required: true, value: Number(v) / f, disabled }),
        h('select', { id: `${id}-unit`, 'aria-label': `${r.label} unit`, disabled }, UNITS.map(([u]) => h('option', { value: u, selected: u === unit }, u))));
    } else if (r.type === 'amount') {
      control = input(id, { type: 'text', inputmode: 'decimal', required: true, value: formatAmount(v, decimals).replace(/,/g, ''), disabled });
    } else if (r.type === 'percent') {
      control = h('span', { class: 'pair' }, input(id, { type: 'text', inputmode: 'decimal', required: true, value: percent(v).replace('%', ''), disabled }), h('span', { class: 'unit' }, r.unit));
    } else if (r.type === 'count') {
      control = h('span', { class: 'pair' }, input(id, { type: 'number', min: 0, step: 1, required: true, value: v, disabled }), h('span', { class: 'unit' }, r.unit));
    } else if (r.type === 'bool') {
      return h('div', { class: 'field check' },
        input(id, { type: 'checkbox', checked: v, disabled }),
        h('label', { for: id }, r.label),
        h('p', { class: 'hint', id: `${id}-hint` }, r.help));
    } else {
      control = h('select', { id, name: id, 'aria-describedby': `${id}-hint`, disabled }, r.options.map(([o, text]) => h('option', { value: o, selected: o === v }, text)));
    }
    return field(id, r.label, control, r.help);
  });
}

/** One rule's value in words: "25%", "7 days", "10 KAS", "yes". */
function ruleValue(r, v, a) {
  if (r.type === 'duration') return duration(v);
  if (r.type === 'percent') return percent(v);
  if (r.type === 'amount') return `${formatAmount(v, a.decimals)} ${a.symbol}`;
  if (r.type === 'bool') return v ? 'yes' : 'no';
  if (r.type === 'choice') return (r.options.find(([o]) => o === v) || [v, v])[1];
  return `${v} ${r.unit}`;
}

/** An error naming a rule by its label, shown as “Check “label”: message”. */
function ruleError(r, message) {
  const e = new Error(`${r.key}: ${message}`);
  e.field = r.label;
  return e;
}

/**
 * The checks of `Rules::validate` that a person can get wrong in the form, with the rule named
 * in words: the safeguard floors and the ranges. The node checks again.
 */
function checkRules(rules, a) {
  const rule = (key) => RULES.find((r) => r.key === key);
  for (const r of RULES) {
    const v = rules[r.key];
    if (r.type === 'count' || r.type === 'percent') {
      const min = r.min ?? 0;
      const max = r.max ?? (r.type === 'percent' ? (r.key.endsWith('bond_bps') ? 100000 : 10000) : 1000000000);
      const shown = (x) => (r.type === 'percent' ? percent(x) : r.unit === 'periods' ? periods(x) : `${x} ${r.unit}`);
      if (v < min) throw ruleError(r, `must be at least ${shown(min)}`);
      if (v > max) throw ruleError(r, `must be at most ${shown(max)}`);
    }
  }
  const period = Number(rules.period_secs);
  if (period > PERIOD_SECS_MAX) throw ruleError(rule('period_secs'), 'must be at most 10 years');
  if (BigInt(rules.min_pledge) < 1n) throw ruleError(rule('min_pledge'), `must be at least ${formatAmount(1, a.decimals)} ${a.symbol}`);
  if (BigInt(rules.max_pledge) < BigInt(rules.min_pledge)) throw ruleError(rule('max_pledge'), 'must be at least the smallest pledge');
  if (BigInt(rules.max_request) < 1n) throw ruleError(rule('max_request'), `must be at least ${formatAmount(1, a.decimals)} ${a.symbol}`);
  const windowMin = votingWindowMin(period);
  if (Number(rules.voting_window_secs) < windowMin) {
    throw ruleError(rule('voting_window_secs'), `must be at least ${duration(windowMin)} for a ${duration(period)} period (at least 1 minute, and at least 1/30 of the period)`);
  }
  if (Number(rules.voting_window_secs) > PERIOD_SECS_MAX) throw ruleError(rule('voting_window_secs'), 'must be at most 10 years');
}

/** Reads the rules back from a form and checks them (throws naming the field that is wrong). */
function readRules(form, prefix, a) {
  const decimals = a.decimals;
  const out = {};
  for (const r of RULES) {
    const el = form.querySelector(`#${prefix}-${r.key}`);
    const v = el.value.trim();
    const fail = (m) => {
      throw ruleError(r, m);
    };
    if (r.type === 'duration') {
      const f = UNITS.find(([u]) => u === form.querySelector(`#${prefix}-${r.key}-unit`).value)[1];
      if (!/^[0-9]+$/.test(v) || /^0+$/.test(v)) fail('a whole number above 0');
      out[r.key] = String(BigInt(v) * BigInt(f));
    } else if (r.type === 'amount') {
      out[r.key] = String(parseAmount(v, decimals, r.label));
    } else if (r.type === 'percent') {
      out[r.key] = Number(parseAmount(v, 2, r.label));
    } else if (r.type === 'count') {
      if (!/^[0-9]+$/.test(v)) fail('a whole number');
      out[r.key] = Number(v);
    } else if (r.type === 'bool') {
      out[r.key] = el.checked;
    } else {
      out[r.key] = v;
    }
  }
  out.period_secs = Number(out.period_secs);
  out.voting_window_secs = Number(out.voting_window_secs);
  checkRules(out, a);
  return out;
}

/** The rules as sentences a member can read. */
async function rulesInWords(rules, assetId) {
  const m = (v) => money(v, assetId);
  const items = [
    `Members pay a pledge they choose, from ${await m(rules.min_pledge)} to ${await m(rules.max_pledge)}, every ${duration(rules.period_secs)}, into their own gift account (at most ${rules.gift_cap_pledges} pledges). A full gift account owes nothing more: its owner only checks in to stay in standing.`,
    rules.admission === 'open' ? 'Anyone may join.' : `Applicants join when the members vote them in (at least one yes, and yes from more than half of the members in good standing); a minority can veto. Applying locks a bond of ${percent(rules.application_bond_bps)} of the pledge, returned on admission.`,
    rules.identity === 'public' ? 'An account is enough to join.' : 'Members commit to their real identity when joining, revealed to voters only when they ask for help.',
    `A member stays in good standing with up to ${periods(rules.grace_periods)} unpaid. Out of standing they cannot vote or ask, and their karma is lost; paying the arrears reinstates them, and the waiting time starts again. After ${periods(rules.lapse_periods)} out of standing, anyone may expel them.`,
    `A new member may ask for help after ${periods(rules.waiting_periods)}. Nobody may ask before ${rules.min_members} members are in good standing.`,
    `A member may ask for up to ${rules.benefit_ratio} × their karma, never more than ${await m(rules.max_request)} in all, as one sum or as an amount per period for up to ${periods(rules.max_installments)}. Asking locks a bond of ${percent(rules.bond_bps)} of their pledge and uses ${percent(rules.filing_karma_bps)} of their karma; help received uses more.`,
    `Voting lasts ${duration(rules.voting_window_secs)}. A request passes if yes minus no reaches ${percent(rules.approval_net_bps)} of all karma and yes reaches ${percent(rules.quorum_bps)}. Voters may approve part of the amount; the largest part that passes is paid.`,
    rules.auto_share ? `Approved help is paid first from the common fund, then pro rata from every gift account, at most ${percent(rules.max_draw_bps)} of the gift funds per period; members may also give more.` : 'Approved help is paid from the common fund and by members’ gifts.',
    `Forfeited bonds and what leaving members hold back go to the common fund, which belongs to nobody and only pays help.`,
    `Leaving takes ${periods(rules.notice_periods)} of notice; ${rules.exit_refund ? 'the rest of the gift account is then refunded, less its share of what the society still owes' : 'the gift account goes to the common fund'}.`,
    `Rules change only if ${percent(rules.amendment_threshold_bps)} of all karma votes yes, ${periods(rules.amendment_timelock_periods)} before the change applies; until then anyone may leave at once with a refund. Nobody else can change them.`,
    `Karma halves every ${periods(rules.karma_half_life_periods)}.`,
  ];
  return h('ul', { class: 'rules' }, items.map((t) => h('li', {}, t)));
}

// ---- societies ---------------------------------------------------------------------------------

async function societiesView(root) {
  const list = h('div', { class: 'cards', id: 'society-list' });
  const search = input('society-search', { type: 'search', placeholder: 'Name or purpose', autocomplete: 'off' });
  let all = [];
  const show = async (target = list) => {
    const q = search.value.trim().toLowerCase();
    const shown = all.filter((s) => !q || s.name.toLowerCase().includes(q) || s.purpose.toLowerCase().includes(q));
    const cards = [];
    for (const s of shown) {
      cards.push(h('article', { class: 'card society' },
        h('h2', {}, h('a', { href: `#/society/${s.id}` }, s.name)),
        h('p', {}, s.purpose.length > 160 ? s.purpose.slice(0, 160) + '…' : s.purpose),
        h('p', { class: 'muted' }, `${s.member_count} members · gift funds ${await money(s.gift_funds, s.asset)} · pledge ${await money(s.rules.min_pledge, s.asset)}–${await money(s.rules.max_pledge, s.asset)} per ${duration(s.rules.period_secs)}`)));
    }
    target.replaceChildren(...(cards.length ? cards : [h('p', { class: 'muted' }, all.length ? 'No society matches.' : 'No society yet. Be the first to create one.')]));
  };
  search.addEventListener('input', () => show());
  root.append(
    h('div', { class: 'title-row' }, h('h1', {}, 'Societies'), h('a', { class: 'button', href: '#/create' }, 'Create a society')),
    h('p', { class: 'lead' }, 'Groups who put money aside every period so that a member hit by a misfortune is helped by the others. Every rule runs on the chain; nobody holds a key to the money.'),
    field('society-search', 'Search societies', search),
    live(list, async (el) => {
      all = [];
      for (let after = null; ; ) {
        const page = await api(`/societies?limit=100${after ? `&after=${after}` : ''}`);
        all.push(...page.items);
        if (!page.next) break;
        after = page.next;
      }
      await show(el);
    }),
  );
}

async function createView(root) {
  const assets = (await api('/assets?limit=100')).items;
  const kas = assets.find((a) => a.id === 0) || { id: 0, symbol: 'KAS', decimals: 6 };
  const rules = defaultRules(10n * 10n ** BigInt(kas.decimals), 100n * 10n ** BigInt(kas.decimals));
  const assetSelect = h('select', { id: 'society-asset' }, assets.map((a) => h('option', { value: a.id }, `${a.symbol}${a.id === 0 ? ' (native)' : ''}`)));
  const form = h('form', { class: 'stack', id: 'create-society', 'aria-labelledby': 'create-title' },
    h('fieldset', {}, h('legend', {}, 'About'),
      field('society-name', 'Name', input('society-name', { required: true, maxlength: LIMITS.name, autocomplete: 'off' }), 'Up to 64 bytes.'),
      field('society-purpose', 'Purpose: which misfortunes qualify', h('textarea', { id: 'society-purpose', required: true, maxlength: LIMITS.purpose, rows: 3, 'aria-describedby': 'society-purpose-hint' }), 'Members vote on requests against this text.'),
      field('society-asset', 'Currency', assetSelect, 'What pledges, gift accounts and payments are in.'),
      field('society-pledge', 'Your pledge per period', input('society-pledge', { type: 'text', inputmode: 'decimal', required: true, value: formatAmount(rules.min_pledge, kas.decimals).replace(/,/g, '') }),
        'You become the society’s first member with this pledge, between the smallest and the largest pledge below. Your first period is due at once.')),
    h('fieldset', {}, h('legend', {}, 'Rules'),
      h('p', { class: 'hint' }, 'The defaults follow the Broodfonds model. The founder gets no privilege: rules change only by the members’ vote. Some rules have floors that no society can go below: at least one period of grace, at least one period before expulsion and before a rule change applies, a voting time of at least a minute and 1/30 of the period, and a margin and a quorum above zero.'),
      ...rulesFields('rule', rules, kas.decimals)),
    h('button', { type: 'submit' }, 'Create the society'));
  const demo = app.status && app.status.faucet
    ? h('p', { class: 'callout' }, 'Trying Kassa on a development chain? ',
      h('button', { type: 'button', class: 'secondary', id: 'demo-rules', onclick: () => fillDemoRules(form, kas.decimals) }, 'Use quick demo rules'),
      ' — 30-second periods, 1-minute votes, no waiting time, 4 members minimum (you and three dev accounts).')
    : null;
  form.addEventListener('submit', action(async () => {
    const a = assets.find((x) => String(x.id) === assetSelect.value) || kas;
    const societyRules = readRules(form, 'rule', a);
    const pledge = parseAmount(form.querySelector('#society-pledge').value, a.decimals, 'your pledge');
    if (pledge < BigInt(societyRules.min_pledge) || pledge > BigInt(societyRules.max_pledge)) {
      const e = new Error(`pledge: must be between ${formatAmount(societyRules.min_pledge, a.decimals)} and ${formatAmount(societyRules.max_pledge, a.decimals)} ${a.symbol}, the smallest and the largest pledge`);
      e.field = 'Your pledge per period';
      throw e;
    }
    const body = {
      kind: 'create_society',
      name: form.querySelector('#society-name').value.trim(),
      purpose: form.querySelector('#society-purpose').value.trim(),
      asset: a.id,
      rules: societyRules,
      pledge: String(pledge),
    };
    const receipt = await send(body, 'Create society');
    const ev = (receipt.events || []).find((e) => e.type === 'society_created');
    if (ev) location.hash = `#/society/${ev.society}`;
  }));
  const chosen = () => assets.find((x) => String(x.id) === assetSelect.value) || kas;
  const preview = previewPanel(() => readRules(form, 'rule', chosen()), chosen);
  root.append(h('h1', { id: 'create-title' }, 'Create a society'), ...(app.wallet ? [] : [needWallet()]), ...(demo ? [demo] : []), form, preview);
}

/** Rules for trying a society out in minutes on a development chain (within every floor). */
function fillDemoRules(form, decimals) {
  const set = (key, value, unit) => {
    form.querySelector(`#rule-${key}`).value = value;
    if (unit) form.querySelector(`#rule-${key}-unit`).value = unit;
  };
  if (!form.querySelector('#society-name').value) form.querySelector('#society-name').value = 'Demo bread fund';
  if (!form.querySelector('#society-purpose').value) form.querySelector('#society-purpose').value = 'Income for members too ill to work.';
  set('period_secs', 30, 'seconds');
  set('voting_window_secs', 60, 'seconds');
  set('waiting_periods', 0);
  set('min_members', 4);
  set('notice_periods', 0);
  set('min_pledge', formatAmount(10n ** BigInt(decimals), decimals));
  form.querySelector('#society-pledge').value = formatAmount(10n ** BigInt(decimals), decimals);
  notify('ok', 'Demo rules filled in. Check them, then create the society.');
}

// ---- one society -------------------------------------------------------------------------------

/** The society's period at block time `ms`, and the block time at which period `p` starts. */
function periodAt(s, ms) {
  return Math.floor((Number(ms) - Number(s.created_ms)) / (Number(s.rules.period_secs) * 1000));
}
function periodStart(s, p) {
  return Number(s.created_ms) + Number(p) * Number(s.rules.period_secs) * 1000;
}

function chainNow() {
  return app.status ? app.status.time_ms : Date.now();
}

async function societyView(root, id) {
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

function stat(label, value, id) {
  return h('div', { class: 'stat' }, h('span', { class: 'stat-label', id: `${id}-label` }, label), h('span', { class: 'stat-value', id, 'aria-labelledby': `${id}-label ${id}` }, value));
}

/** Why the maximum benefit is what it is, in words. */
async function maxBenefitWhy(me, s) {
  const a = await asset(s.asset);
  const k = (v) => formatAmount(v, a.decimals);
  if (!me.good_standing) return 'nothing while you are not in good standing';
  const now = BigInt(me.karma) + BigInt(me.karma_pending);
  return `the smaller of your karma at the start of this period (${k(me.karma_at_period_start)}, less what your requests used this period) and now (${k(now)}) × benefit ratio ${s.rules.benefit_ratio}, capped at the largest request, ${await money(s.rules.max_request, s.asset)}`;
}

async function membershipPanel(el, s) {
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
  const standing = me.good_standing
    ? 'in good standing'
    : me.lapsed
      ? 'lapsed: pay what is due to be reinstated (your waiting time then starts again)'
      : me.status.state === 'applicant' ? 'not yet: your application is being decided' : 'not counted while leaving';
  const lapseAtExpel = periodStart(s, me.expellable_at);
  const waiting = me.waiting_until_ms > now
    ? `until ${date(me.waiting_until_ms)} (${relative(me.waiting_until_ms)}); then you may ask for help`
    : 'over: you may ask for help';
  const facts = dl([
    ['Status', status],
    ['Pledge', `${await m(me.pledge)} per ${duration(s.rules.period_secs)}${me.next_pledge ? `; ${await m(me.next_pledge)} from the next period` : ''}`],
    ['Standing', h('span', { id: 'my-standing' }, standing)],
    active ? ['Paid until', h('span', { id: 'my-paid-until' }, `${date(me.next_due_ms)} (${relative(me.next_due_ms)})`)] : null,
    active && me.good_standing ? ['Standing runs out', h('span', { id: 'my-lapse-at' }, `${date(me.lapse_at_ms)} (${relative(me.lapse_at_ms)}) unless you pay before`)] : null,
    active && me.lapsed ? ['Expulsion possible', `from ${date(lapseAtExpel)} (${relative(lapseAtExpel)}) if you are still lapsed`] : null,
    active ? ['Waiting time', h('span', { id: 'my-waiting' }, waiting)] : null,
    ['Karma', formatAmount(me.karma, a.decimals)],
    ['Karma at the start of this period', formatAmount(me.karma_at_period_start, a.decimals)],
    BigInt(me.karma_pending) > 0n ? ['Pending karma', h('span', { id: 'my-pending' }, `${formatAmount(me.karma_pending, a.decimals)}, for periods you paid ahead: check in to have it credited`)] : null,
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

/** The votes of a ballot in words: "Yes 12 (of which 4 for 50%) · No 3 karma". */
function tallyText(b, a) {
  const k = (v) => formatAmount(v, a.decimals);
  const partial = (b.yes_by_percent || []).filter((x) => x.percent < 100);
  const parts = partial.map((x) => `${k(x.weight)} for ${x.percent}%`);
  return `Yes ${k(b.yes)} · No ${k(b.no)} karma${parts.length ? ` (yes for part of the amount: ${parts.join(', ')})` : ''}`;
}

async function requestsPanel(el, s, data) {
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
    const card = h('article', { class: `card request ${r.status}`, id: `request-${r.id}`, 'aria-labelledby': `request-${r.id}-title` },
      h('h3', { id: `request-${r.id}-title` }, `${help ? 'Request' : 'Application'} #${r.id}: `, headline),
      h('p', { class: 'badge-row' }, h('span', { class: `badge ${r.status}`, 'data-testid': 'request-status' }, r.status), ' by ', addressLink(r.requester),
        help && r.payee !== r.requester ? h('span', { 'data-testid': 'request-payee' }, ', paid to ', addressLink(r.payee)) : null),
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

async function amendmentsPanel(el, s, data) {
  const title = h('h2', { id: 'amendments-title' }, 'Rule changes');
  const cur = (await data()).soc;
  const a = await asset(s.asset);
  const parts = [title];
  if (cur.amendment !== null && cur.amendment !== undefined) {
    const am = await api(`/amendments/${cur.amendment}`);
    const changed = RULES.filter((r) => String(am.rules[r.key]) !== String(cur.rules[r.key]));
    const now = app.status ? app.status.time_ms : Date.now();
    const closed = now >= am.ballot.deadline_ms;
    parts.push(h('article', { class: 'card', id: `amendment-${am.id}` },
      h('h3', {}, `Proposal #${am.id} (${am.status})`),
      h('p', {}, 'Proposed by ', addressLink(am.proposer), '. Changes: ', changed.length ? changed.map((r) => `${r.label}: ${ruleValue(r, cur.rules[r.key], a)} → ${ruleValue(r, am.rules[r.key], a)}`).join('; ') : 'none'),
      h('p', {}, `Yes ${formatAmount(am.ballot.yes, a.decimals)} · No ${formatAmount(am.ballot.no, a.decimals)} karma; needs ${formatAmount(am.ballot.thresholds.yes_needed, a.decimals)} yes. Voting ${closed ? 'closed' : 'closes'} ${relative(am.ballot.deadline_ms)}.`),
      app.wallet && am.status === 'open'
        ? h('div', { class: 'inline' },
          closed ? null : h('button', { type: 'button', onclick: action(() => send({ kind: 'vote_amendment', amendment: am.id, approve: true }, 'Vote for the change')) }, 'Vote yes'),
          closed ? null : h('button', { type: 'button', class: 'secondary', onclick: action(() => send({ kind: 'vote_amendment', amendment: am.id, approve: false }, 'Vote against the change')) }, 'Vote no'),
          closed ? h('button', { type: 'button', onclick: action(() => send({ kind: 'enact_amendment', amendment: am.id }, 'Enact or close the change')) }, 'Enact or close') : null)
        : null));
  } else {
    parts.push(h('p', { class: 'muted' }, 'No rule change is open.'));
  }
  if (app.wallet && (cur.amendment === null || cur.amendment === undefined)) {
    const form = h('form', { class: 'stack', id: 'amend-form' },
      ...rulesFields('amend', cur.rules, a.decimals, ['period_secs']),
      h('button', { type: 'submit' }, 'Propose these rules'));
    form.addEventListener('submit', action(async (f) => {
      await send({ kind: 'propose_amendment', society: s.id, rules: readRules(f, 'amend', a) }, 'Propose a rule change');
    }));
    parts.push(h('details', {}, h('summary', {}, 'Propose a rule change'), h('p', { class: 'hint' }, 'The currency and the period cannot change.'), form));
  }
  el.replaceChildren(...parts);
}

// ---- wallet ------------------------------------------------------------------------------------

async function walletView(root) {
  root.append(h('h1', {}, 'My wallet'));
  if (!(await wallet.supported())) {
    root.append(h('p', { class: 'message error' }, 'This browser does not support Ed25519 keys in WebCrypto. Use a current Chromium, Firefox or Safari.'));
    return;
  }
  const w = app.wallet;
  if (!w) {
    root.append(
      h('p', { class: 'lead' }, 'Your key is made in this browser and never leaves it. Choose a passphrase: it protects the backup file you can download to move or restore your wallet.'),
      createWalletForm(), importWalletForm(), ...(app.status && app.status.faucet ? [devWalletForm()] : []));
    return;
  }
  const balances = h('section', { class: 'panel', id: 'balances', 'aria-labelledby': 'balances-title' });
  live(balances, async (el) => {
    const acc = await api(`/accounts/${w.address}`);
    const rows = [];
    for (const b of acc.balances) {
      rows.push(h('tr', {}, h('th', { scope: 'row' }, b.symbol || `asset#${b.asset}`), h('td', { class: 'num', 'data-asset': b.asset }, formatAmount(b.amount, (await asset(b.asset)).decimals))));
    }
    el.replaceChildren(h('h2', { id: 'balances-title' }, 'Balances'),
      rows.length ? h('table', {}, h('tbody', {}, rows)) : h('p', { class: 'muted' }, 'Nothing yet.'),
      h('p', { class: 'hint' }, `Transactions sent: ${acc.nonce}.`));
  });
  const faucet = app.status && app.status.faucet
    ? h('button', { type: 'button', id: 'faucet', onclick: action(async () => {
      const r = await api('/faucet', { method: 'POST', body: JSON.stringify({ address: w.address }) });
      notify('pending', 'The faucet is sending you test funds…');
      const t = await waitFor(r.hash);
      if (!t) throw new Error('The faucet’s transaction is not in a block yet; try again shortly.');
      notify('ok', 'Test funds received (development chain).', { href: `#/tx/${r.hash}`, text: 'See the transaction' });
    }) }, 'Get test funds from the faucet')
    : null;
  const transfer = h('form', { class: 'panel stack', id: 'transfer-form' },
    h('h2', {}, 'Send'),
    field('transfer-to', 'To (address)', input('transfer-to', { required: true, autocomplete: 'off' })),
    field('transfer-amount', 'Amount (KAS)', input('transfer-amount', { type: 'text', inputmode: 'decimal', required: true })),
    h('button', { type: 'submit' }, 'Send'));
  transfer.addEventListener('submit', action(async (f) => {
    const to = f.querySelector('#transfer-to').value.trim();
    decodeAddress(to);
    await send({ kind: 'transfer', to, asset: 0, amount: String(parseAmount(f.querySelector('#transfer-amount').value, 6)) }, 'Send');
  }));
  const memberships = h('section', { class: 'panel', 'aria-labelledby': 'my-societies' });
  live(memberships, async (el) => {
    const socs = (await api('/societies?limit=100')).items;
    const rows = [];
    for (const s of socs) {
      const me = await apiOpt(`/societies/${s.id}/members/${w.address}`);
      if (me) rows.push(h('li', {}, h('a', { href: `#/society/${s.id}` }, s.name), ` — ${me.status.state}${me.good_standing ? ', in good standing' : me.lapsed ? ', lapsed' : ''}, gift account ${await money(me.gift_balance, s.asset)}, karma ${formatAmount(me.karma, (await asset(s.asset)).decimals)}`));
    }
    el.replaceChildren(h('h2', { id: 'my-societies' }, 'My societies'), rows.length ? h('ul', {}, rows) : h('p', { class: 'muted' }, 'None yet. ', h('a', { href: '#/societies' }, 'Find a society')));
  });
  root.append(
    h('section', { class: 'panel', 'aria-labelledby': 'address-title' },
      h('h2', { id: 'address-title' }, 'Address'),
      h('p', { class: 'mono break', id: 'my-address' }, w.address),
      h('div', { class: 'inline' },
        h('button', { type: 'button', class: 'secondary', onclick: () => navigator.clipboard.writeText(w.address).then(() => notify('ok', 'Address copied.')) }, 'Copy address'),
        faucet,
        h('button', { type: 'button', class: 'secondary', id: 'export-backup', onclick: () => downloadBackup(w) }, 'Download encrypted backup'),
        h('button', { type: 'button', class: 'danger', onclick: async () => {
          if (!confirm('Remove this wallet from this browser? Without the backup file and its passphrase, the account is lost.')) return;
          await wallet.remove();
          await loadWallet();
          await rerender();
        } }, 'Remove from this browser')),
      h('p', { class: 'hint' }, 'The signing key is stored in this browser as a non-extractable WebCrypto key; the backup file holds it encrypted under your passphrase.')),
    balances, memberships, transfer);
}

async function waitFor(hash) {
  for (let i = 0; i < 60; i++) {
    const t = await apiOpt(`/txs/${hash}`);
    if (t && t.status !== 'pending') return t;
    await new Promise((r) => setTimeout(r, 500));
  }
  return null;
}

function downloadBackup(w) {
  const blob = new Blob([JSON.stringify(w.backup, null, 2)], { type: 'application/json' });
  const link = h('a', { href: URL.createObjectURL(blob), download: `kassa-wallet-${w.address.slice(6, 14)}.json` });
  document.body.append(link);
  link.click();
  link.remove();
  notify('ok', 'Backup downloaded. Keep it and its passphrase safe: together they are your account.');
}

function passphraseFields(prefix, confirm) {
  return [
    field(`${prefix}-pass`, 'Passphrase', input(`${prefix}-pass`, { type: 'password', required: true, minlength: wallet.PASSPHRASE_MIN, autocomplete: 'new-password' }), `At least ${wallet.PASSPHRASE_MIN} characters. It encrypts your backup; it cannot be recovered.`),
    confirm ? field(`${prefix}-pass2`, 'Passphrase again', input(`${prefix}-pass2`, { type: 'password', required: true, autocomplete: 'new-password' })) : null,
  ];
}

function createWalletForm() {
  const form = h('form', { class: 'panel stack', id: 'create-wallet' }, h('h2', {}, 'Create a wallet'), ...passphraseFields('new', true), h('button', { type: 'submit' }, 'Create wallet'));
  form.addEventListener('submit', action(async (f) => {
    const p = f.querySelector('#new-pass').value;
    if (p !== f.querySelector('#new-pass2').value) throw new wallet.WalletError('The two passphrases differ.');
    await wallet.create(p);
    await loadWallet();
    notify('ok', 'Wallet created. Download the encrypted backup and keep it safe.');
  }));
  return form;
}

function importWalletForm() {
  const file = input('import-file', { type: 'file', accept: 'application/json,.json', required: true });
  const form = h('form', { class: 'panel stack', id: 'import-wallet' }, h('h2', {}, 'Import a backup'),
    field('import-file', 'Backup file', file), field('import-pass', 'Its passphrase', input('import-pass', { type: 'password', required: true, autocomplete: 'current-password' })),
    h('button', { type: 'submit' }, 'Import'));
  form.addEventListener('submit', action(async (f) => {
    let backup;
    try {
      backup = JSON.parse(await file.files[0].text());
    } catch {
      throw new wallet.WalletError('This file is not a Kassa wallet backup.');
    }
    await wallet.importBackup(backup, f.querySelector('#import-pass').value);
    await loadWallet();
    notify('ok', 'Wallet imported.');
  }));
  return form;
}

function devWalletForm() {
  const form = h('form', { class: 'panel stack', id: 'dev-wallet' }, h('h2', {}, 'Use a development account'),
    h('p', { class: 'hint' }, 'Development chains fund ten accounts whose keys are public. Never use them for anything real.'),
    field('dev-index', 'Account', h('select', { id: 'dev-index' }, Array.from({ length: 10 }, (_, i) => h('option', { value: i }, `dev-${i}`)))),
    ...passphraseFields('dev', false),
    h('button', { type: 'submit' }, 'Use it'));
  form.addEventListener('submit', action(async (f) => {
    await wallet.fromSeed(await wallet.devSeed(f.querySelector('#dev-index').value), f.querySelector('#dev-pass').value);
    await loadWallet();
  }));
  return form;
}

// ---- explorer ----------------------------------------------------------------------------------

async function explorerView(root) {
  const q = input('explore-q', { type: 'search', placeholder: 'Block height, transaction hash or kassa1… address', autocomplete: 'off' });
  const form = h('form', { class: 'inline', role: 'search' }, field('explore-q', 'Find', q), h('button', { type: 'submit' }, 'Go'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = q.value.trim();
    if (/^[0-9]+$/.test(v)) location.hash = `#/block/${v}`;
    else if (/^[0-9a-fA-F]{64}$/.test(v)) location.hash = `#/tx/${v.toLowerCase()}`;
    else if (v.startsWith('kassa1')) location.hash = `#/account/${v}`;
    else notify('error', 'Enter a block height, a 64-digit transaction hash or a kassa1… address.');
  });
  const blocks = h('section', { class: 'panel', 'aria-labelledby': 'blocks-title' });
  live(blocks, async (el) => {
    const items = (await api('/blocks?limit=20')).items;
    el.replaceChildren(h('h2', { id: 'blocks-title' }, 'Latest blocks'), h('div', { class: 'table-wrap' }, h('table', { id: 'blocks' },
      h('thead', {}, h('tr', {}, ['Height', 'Time', 'Transactions', 'Hash'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, items.map((b) => h('tr', {},
        h('td', {}, h('a', { href: `#/block/${b.height}` }, String(b.height))),
        h('td', {}, date(b.timestamp_ms)),
        h('td', { class: 'num' }, String(b.txs.length)),
        h('td', { class: 'mono' }, short(b.hash, 12))))))));
  });
  root.append(h('h1', {}, 'Explorer'), form, h('p', {}, h('a', { href: '#/assets' }, 'Issued assets')), blocks);
}

function txRows(txs) {
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, ['Transaction', 'Kind', 'Signer', 'Nonce'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, txs.map((t) => h('tr', {},
      h('td', {}, h('a', { href: `#/tx/${t.hash}`, class: 'mono' }, short(t.hash, 12))),
      h('td', {}, t.kind.replace(/_/g, ' ')),
      h('td', {}, addressLink(t.signer)),
      h('td', { class: 'num' }, String(t.nonce)))))));
}

async function blockView(root, height) {
  const b = await apiOpt(`/blocks/${encodeURIComponent(height)}`);
  if (!b) {
    root.append(h('h1', {}, `No block ${height}`), h('p', {}, h('a', { href: '#/explorer' }, 'Explorer')));
    return;
  }
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/explorer' }, 'Explorer'), ` / block ${b.height}`),
    h('h1', {}, `Block ${b.height}`),
    dl([['Time', date(b.timestamp_ms)], ['Hash', h('span', { class: 'mono break' }, b.hash)], ['Parent', b.height > 0 ? h('a', { href: `#/block/${b.height - 1}`, class: 'mono break' }, b.parent) : b.parent],
      ['Proposer', addressLink(b.proposer)], ['State root', h('span', { class: 'mono break' }, b.state_root)], ['Transactions root', h('span', { class: 'mono break' }, b.tx_root)]]),
    h('h2', {}, `${b.txs.length} transactions`),
    txRows(b.txs),
    h('p', {}, b.height > 0 ? h('a', { href: `#/block/${b.height - 1}` }, '← previous') : null, ' ', h('a', { href: `#/block/${b.height + 1}` }, 'next →')));
}

function eventText(e) {
  const parts = Object.entries(e).filter(([k]) => k !== 'type').map(([k, v]) => `${k.replace(/_/g, ' ')} ${v}`);
  return `${e.type.replace(/_/g, ' ')}: ${parts.join(', ')}`;
}

async function txView(root, hash) {
  const t = await apiOpt(`/txs/${encodeURIComponent(hash)}`);
  root.append(h('p', { class: 'crumbs' }, h('a', { href: '#/explorer' }, 'Explorer'), ' / transaction'), h('h1', {}, 'Transaction'));
  if (!t) {
    root.append(h('p', {}, 'This node knows no such transaction.'));
    return;
  }
  root.append(dl([
    ['Hash', h('span', { class: 'mono break' }, t.hash)],
    ['Status', h('span', { class: `badge ${t.status}`, id: 'tx-status' }, t.status)],
    t.height !== undefined ? ['Block', h('a', { href: `#/block/${t.height}` }, String(t.height))] : null,
    t.fee ? ['Fee (burned)', `${formatAmount(t.fee, 6)} KAS`] : null,
    t.error ? ['Why it failed', `${t.error.message} (${t.error.code})`] : null,
  ]));
  if (t.events) root.append(h('h2', {}, 'What happened'), h('ul', { id: 'tx-events' }, t.events.map((e) => h('li', {}, eventText(e)))));
}

async function accountView(root, address) {
  try {
    decodeAddress(address);
  } catch (e) {
    root.append(h('h1', {}, 'Not an address'), h('p', { class: 'message error' }, messageOf(e)));
    return;
  }
  const acc = await api(`/accounts/${address}`);
  const rows = [];
  for (const b of acc.balances) rows.push(h('tr', {}, h('th', { scope: 'row' }, b.symbol || `asset#${b.asset}`), h('td', { class: 'num' }, formatAmount(b.amount, (await asset(b.asset)).decimals))));
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/explorer' }, 'Explorer'), ' / account'),
    h('h1', {}, 'Account'),
    h('p', { class: 'mono break' }, address),
    dl([['Transactions sent', String(acc.nonce)]]),
    h('h2', {}, 'Balances'), rows.length ? h('table', {}, h('tbody', {}, rows)) : h('p', { class: 'muted' }, 'No balances.'));
}

async function assetsView(root) {
  const items = (await api('/assets?limit=100')).items;
  root.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/explorer' }, 'Explorer'), ' / assets'),
    h('h1', {}, 'Issued assets'),
    h('div', { class: 'table-wrap' }, h('table', { id: 'assets' },
      h('thead', {}, h('tr', {}, ['Id', 'Symbol', 'Decimals', 'Supply', 'Max supply', 'Issuer'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, items.map((a) => h('tr', {},
        h('td', {}, String(a.id)), h('td', {}, a.symbol), h('td', { class: 'num' }, String(a.decimals)),
        h('td', { class: 'num' }, formatAmount(a.supply, a.decimals)), h('td', { class: 'num' }, a.max_supply ? formatAmount(a.max_supply, a.decimals) : 'no cap'),
        h('td', {}, a.issuer ? addressLink(a.issuer) : 'the chain (genesis)')))))));
}

// ---- verify ------------------------------------------------------------------------------------

async function verifyView(root) {
  const head = h('section', { class: 'panel', 'aria-labelledby': 'head-title' });
  live(head, async (el) => {
    const st = await refreshStatus();
    const [block, fin, genesis] = await Promise.all([api(`/blocks/${st.height}`), apiOpt(`/blocks/${st.height}/finality`), apiOpt('/genesis')]);
    const validators = genesis && Array.isArray(genesis.validators) ? genesis.validators : null;
    const consistent = block.state_root === st.state_root && block.hash === st.block_hash;
    el.replaceChildren(h('h2', { id: 'head-title' }, 'Latest finalized state'),
      dl([['Height', String(st.height)], ['Block hash', h('span', { class: 'mono break' }, st.block_hash)], ['State root', h('span', { class: 'mono break', id: 'state-root' }, st.state_root)],
        ['Block header agrees', consistent ? 'yes: the block header carries this root' : 'NO: the node reports a root its block does not carry'],
        ['Finalization certificate', fin ? `${fin.certificate.length / 2} bytes from the validators, for block ${fin.height}` : 'not available from this node'],
        ['Validators', validators ? h('span', { id: 'validators' }, `${validators.length} in the genesis (a block is final when more than two thirds sign it): `, validators.map((v) => short(v, 8)).join(', ')) : 'unknown']]));
  });
  const result = h('div', { id: 'proof-result', role: 'status' });
  const who = input('proof-address', { value: app.wallet ? app.wallet.address : '', required: true, autocomplete: 'off' });
  const form = h('form', { class: 'stack', id: 'proof-form' },
    field('proof-address', 'Account', who, 'Your own by default. The node sends each balance with a Merkle proof; this page checks it against the state root.'),
    h('button', { type: 'submit' }, 'Check the balances in this browser'));
  form.addEventListener('submit', action(async () => {
    const address = who.value.trim();
    decodeAddress(address);
    const st = await refreshStatus();
    const height = st.height;
    const block = await api(`/blocks/${height}`);
    const root = fromHex(block.state_root);
    const acc = await api(`/accounts/${address}`);
    const assets = acc.balances.length ? acc.balances.map((b) => b.asset) : [0];
    const lines = [];
    for (const id of assets) {
      const key = balanceKey(address, id);
      const p = await api(`/proofs/${toHex(key)}?height=${height}`);
      const value = p.value === null ? null : fromHex(p.value);
      const check = p.state_root === block.state_root ? await verifyProof(root, key, value, fromHex(p.proof)) : { ok: false, reason: 'the proof is for another root' };
      const a = await asset(id);
      const amount = balanceIn(id, value);
      lines.push(h('li', { class: check.ok ? 'ok' : 'bad', 'data-verified': String(check.ok) },
        check.ok ? '✓ ' : '✗ ',
        `${a.symbol}: ${formatAmount(amount, a.decimals)} at block ${height} — ${check.reason}.`));
    }
    result.replaceChildren(h('ul', { class: 'proofs' }, lines));
  }, { refresh: false }));
  root.append(h('h1', {}, 'Verify'),
    h('p', { class: 'lead' }, 'Check for yourself instead of trusting this node’s word: every balance comes with a Merkle proof that your browser checks against the state root of the latest finalized block.'),
    head,
    h('section', { class: 'panel', 'aria-labelledby': 'proof-title' }, h('h2', { id: 'proof-title' }, 'Prove a balance'), form, result),
    h('p', { class: 'hint' }, 'What is checked here: the Merkle proof of each balance (SHA-256, the chain’s Jellyfish Merkle tree) against the state root in the finalized block header. The validators’ certificate over that block is checked by followers and by ', h('code', {}, 'kassa audit'), ', not yet in the browser.'));
}

function notFound(root) {
  root.append(h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '#/societies' }, 'Go to the societies')));
}

export const views = {
  societies: societiesView,
  create: createView,
  society: societyView,
  wallet: walletView,
  explorer: explorerView,
  block: blockView,
  tx: txView,
  account: accountView,
  assets: assetsView,
  verify: verifyView,
  notFound,
};
