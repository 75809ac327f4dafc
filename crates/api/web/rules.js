// A society's rules: the form that enters them (create a society, propose a change), reading and
// checking it, and the rules in plain words.

import { h } from './ui.js';
import { formatAmount, parseAmount } from './codec.js';
import { money, duration, percent, periods, field, input } from './widgets.js';

const UNITS = [['seconds', 1], ['minutes', 60], ['hours', 3600], ['days', 86400]];

/**
 * Every rule: how it is entered and what it means, in plain words. `min` is the smallest value
 * any society may have (the protocol's ranges and safeguard floors), in the unit entered.
 */
export const RULES = [
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
export function defaultRules(minPledge, maxPledge) {
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
export function rulesFields(prefix, rules, decimals, fixed = []) {
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
export function ruleValue(r, v, a) {
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
export function readRules(form, prefix, a) {
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
export async function rulesInWords(rules, assetId) {
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
