//! The simulator's promises: the real rules give the table worked out by hand, a seed gives the
//! same bytes every time, and under the default rules no attack strategy leaves its players with
//! more money than they put in.

use kassa_sim::{
    CLI_MEMBER_PERIODS_MAX, Report, Row, Scenario, ScenarioError, SimError, Strategy, simulate,
};

fn run(sc: &Scenario, seed: u64) -> Report {
    simulate(sc, seed, CLI_MEMBER_PERIODS_MAX, &mut |_, _| true).expect("the scenario runs")
}

fn scenario(toml: &str) -> Scenario {
    Scenario::from_toml(toml).expect("a valid scenario")
}

/// Three members pledging 100 a period; the second member needs a lump sum of 150 in period 2.
const TINY: &str = r#"
name = "Three friends"
periods = 6
currency = "U"
decimals = 0

[rules]
waiting_periods = 0
min_members = 1
max_draw_bps = 10000

[members]
initial = 3
pledge_min = 100
pledge_max = 100

[misfortune]
rate_ppm = 0
lump_percent = 100
lump_min = 1
lump_max = 1

[voting]
delegate_turnout_percent = 100
approve_genuine_percent = 100

[[scripted]]
period = 2
member = 1
lump = 150
"#;

#[test]
fn a_tiny_society_gives_exactly_the_table_worked_out_by_hand() {
    let r = run(&scenario(TINY), 1);
    // Each period every member pays 100 into their own gift account. The request filed in
    // period 2 (150, owed from then on) is approved by the two others when its window has
    // passed, at the start of period 3, and paid at once from the gift funds (900 before that
    // period's dues): 50 from each member, half a pledge, 5,000 basis points.
    let row = |period: u32, gift_funds: u64, help_paid: u64, cost_bps: u64, owed: u64| Row {
        period,
        members: 3,
        in_standing: 3,
        gift_funds,
        common_fund: 0,
        help_paid,
        gifts: 0,
        cost_bps,
        filed: u64::from(period == 2),
        approved: u64::from(period == 3),
        paid: u64::from(period == 3),
        queued: 0,
        delay: 0,
        owed,
    };
    let expected = vec![
        row(0, 300, 0, 0, 0),
        row(1, 600, 0, 0, 0),
        row(2, 900, 0, 0, 150),
        row(3, 900 - 150 + 300, 150, 5_000, 0),
        row(4, 1_350, 0, 0, 0),
        row(5, 1_650, 0, 0, 0),
    ];
    assert_eq!(r.rows, expected);
    let s = &r.summary;
    assert_eq!((s.requests_filed, s.requests_approved), (1, 1));
    assert_eq!(
        (s.help_units, s.help_units_on_time, s.on_time_bps()),
        (1, 1, 10_000)
    );
    assert_eq!((s.worst_cost_bps, s.worst_cost_period), (5_000, 3));
    assert_eq!(s.help_paid, 150);
    assert_eq!(s.ruin_period, None);
    assert_eq!(s.invariants_checked, 6);
    assert!(s.attacks.is_empty());
}

#[test]
fn the_same_scenario_and_seed_give_byte_identical_output() {
    let sc = Scenario::preset("broodfonds").expect("a preset");
    let a = run(&sc, 7);
    let b = run(&sc, 7);
    assert_eq!(a.to_text(), b.to_text());
    assert_eq!(a.to_json(), b.to_json());
    assert_eq!(kassa_sim::chart::html(&a), kassa_sim::chart::html(&b));
    // The seed matters.
    assert_ne!(a.to_text(), run(&sc, 8).to_text());
}

const UNDER_ATTACK: &str = r#"
name = "Default rules, a third of the members attacking"
periods = 48

[members]
initial = 200
joins_per_period = 2
pledge_min = 5000
pledge_max = 10000
pledge_step = 500

[misfortune]
rate_ppm = 2000
lump_percent = 50
lump_min = 100000
lump_max = 500000
monthly_min = 20000
monthly_max = 60000
months_min = 1
months_max = 6

[attackers]
lapse_and_buy_back = 5
sock_puppet = 5
karma_farm = 5
run_on_the_fund = 5
double_dip = 5
pledge_raise = 5
"#;

#[test]
fn under_the_default_rules_no_attack_strategy_ends_with_more_money_than_it_put_in() {
    let sc = scenario(UNDER_ATTACK);
    let mut net = std::collections::BTreeMap::<Strategy, (i128, u64)>::new();
    for seed in 1..=3 {
        let r = run(&sc, seed);
        assert_eq!(r.summary.attacks.len(), 6, "every strategy is played");
        for a in &r.summary.attacks {
            let e = net.entry(a.strategy).or_default();
            e.0 += a.net_attacking;
            e.1 += a.attackers;
        }
    }
    for (s, (total, attackers)) in net {
        assert!(attackers >= 10, "{s:?} was played by {attackers} attackers");
        assert!(
            total <= 0,
            "{s:?} gained {total} over {attackers} attackers"
        );
    }
}

#[test]
fn a_sock_puppet_loses_its_bonds_where_the_society_checks_requests() {
    let sc = scenario(UNDER_ATTACK);
    let r = run(&sc, 1);
    let puppet = r
        .summary
        .attacks
        .iter()
        .find(|a| a.strategy == Strategy::SockPuppet)
        .expect("played");
    // Each bogus request forfeits a bond of one pledge (at least 50 units here).
    assert!(puppet.gain_per_attacker <= -50 * 100, "{puppet:?}");
    assert!(puppet.over_honest_per_attacker < 0);
}

#[test]
fn every_preset_runs_cites_its_sources_and_prints_its_summary() {
    for (name, _) in kassa_sim::scenario::PRESETS {
        let mut sc = Scenario::preset(name).expect("a preset parses");
        assert!(sc.about.contains("Sources:"), "{name} cites its sources");
        sc.periods = 12;
        let r = run(&sc, 1);
        assert_eq!(r.rows.len(), 12);
        let text = r.to_text();
        assert!(
            text.contains("Every invariant held after each of the 12 periods."),
            "{text}"
        );
        let html = kassa_sim::chart::html(&r);
        assert_eq!(html.matches("<svg").count(), 4);
        assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));
    }
}

#[test]
fn a_misspelt_field_is_an_error_naming_it_never_a_silent_default() {
    let bad = TINY.replace("rate_ppm", "rate_pmm");
    let e = Scenario::from_toml(&bad).unwrap_err();
    assert!(e.to_string().contains("rate_pmm"), "{e}");

    let mut sc = scenario(TINY);
    sc.rules.insert("benefit_ration".into(), 20.into());
    assert!(matches!(
        sc.validate(CLI_MEMBER_PERIODS_MAX),
        Err(ScenarioError::Invalid { field, .. }) if field == "rules.benefit_ration"
    ));

    let mut sc = scenario(TINY);
    sc.rules.insert("quorum_bps".into(), 0.into());
    assert!(matches!(
        sc.validate(CLI_MEMBER_PERIODS_MAX),
        Err(ScenarioError::Invalid { field, .. }) if field == "rules.quorum_bps"
    ));
}

#[test]
fn a_run_larger_than_allowed_is_refused_before_it_starts() {
    let sc = scenario(TINY);
    let e = simulate(&sc, 1, 10, &mut |_, _| true).unwrap_err();
    assert!(
        matches!(e, SimError::Scenario(ScenarioError::TooLarge { .. })),
        "{e}"
    );
}

#[test]
fn a_run_stops_when_its_caller_says_so() {
    let sc = scenario(TINY);
    let mut calls = 0;
    let e = simulate(&sc, 1, CLI_MEMBER_PERIODS_MAX, &mut |done, total| {
        calls += 1;
        assert_eq!(total, 6);
        done < 2
    })
    .unwrap_err();
    assert_eq!(e, SimError::Stopped);
    assert_eq!(calls, 2);
}

#[test]
fn the_scenarios_timed_in_docs_performance_parse_and_fit_the_command_line_limit() {
    for file in ["ten-thousand.toml", "preview.toml"] {
        let path = format!("{}/scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
        let sc = Scenario::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
        sc.validate(CLI_MEMBER_PERIODS_MAX).unwrap();
    }
    let preview = Scenario::from_toml(include_str!("../scenarios/preview.toml")).unwrap();
    assert_eq!(
        preview.max_members() * u64::from(preview.periods),
        kassa_sim::PREVIEW_MEMBER_PERIODS_MAX,
        "the timed preview is as large as the node allows"
    );
}

#[test]
fn a_benefit_the_funds_cannot_carry_is_reported_as_ruin_from_the_period_it_is_approved() {
    // Three members with 100 a period each; the second is granted 24 installments worth far
    // more than the few hundred the gift accounts hold (benefit ratio 1,000).
    let toml = TINY
        .replace(
            "max_draw_bps = 10000",
            "max_draw_bps = 10000\nbenefit_ratio = 1000\nmax_request = 1000000",
        )
        .replace("lump = 150", "monthly = 5000\nmonths = 24");
    let r = run(&scenario(&toml), 1);
    assert_eq!(r.rows[2].filed, 1);
    assert_eq!(r.rows[3].approved, 1);
    assert_eq!(r.summary.ruin_period, Some(3));
    assert!(
        r.sentences()
            .iter()
            .any(|l| l.contains("ruin after 3 periods"))
    );
}

#[test]
fn the_simulator_guide_shows_what_the_bread_fund_preset_prints_and_its_chart() {
    let r = run(&Scenario::preset("broodfonds").unwrap(), 1);
    let readme = include_str!("../../../docs/simulator.md");
    for line in r.sentences() {
        assert!(readme.contains(&line), "docs/simulator.md lacks: {line}");
    }
    let svg = kassa_sim::chart::charts(&r).swap_remove(0).1;
    assert_eq!(include_str!("../../../docs/img/broodfonds-funds.svg"), svg);
}
