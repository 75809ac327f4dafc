//! An account's nonce and KAS balance live in one record, and the §9 auditor catches every way
//! that record could go wrong.

mod common;

use common::*;
use kassa_state::audit::audit;
use kassa_state::exec::{account, balance_in};
use kassa_state::records::Account;
use kassa_state::{Overlay, Store, StoreMut, keys};
use kassa_types::tx::Body;
use kassa_types::{AssetId, Rejection};
use std::collections::BTreeSet;

fn put_account(c: &mut Chain, who: &kassa_types::Address, a: &Account) {
    c.st.put(keys::account(who), borsh::to_vec(a).unwrap());
}

#[test]
fn a_kas_transfer_writes_the_two_account_records_and_the_kas_supply_and_nothing_else() {
    let mut c = Chain::new(2);
    let (from, to) = (key(0).address(), key(1).address());
    let t = c.sign(
        &key(0),
        Body::Transfer {
            to,
            asset: AssetId::NATIVE,
            amount: 5_000,
        },
    );
    let ctx = kassa_state::BlockContext {
        height: 1,
        time_ms: c.time_ms + 1,
        proposer: from,
    };
    let mut o = Overlay::new(&c.st);
    kassa_state::apply_tx(&mut o, &ctx, &t, false).unwrap();
    let written: BTreeSet<Vec<u8>> = o.into_writes().into_keys().collect();
    let expected: BTreeSet<Vec<u8>> = [
        keys::account(&from),
        keys::account(&to),
        keys::asset(AssetId::NATIVE),
    ]
    .into();
    assert_eq!(written, expected);

    // Through a block: the fee and the amount leave the sender's record, whose nonce advances.
    c.block(&[t]);
    assert_eq!(
        account(&c.st, &from),
        Account {
            nonce: 1,
            kas: KAS_EACH - 5_000 - FEE
        }
    );
    assert_eq!(
        account(&c.st, &to),
        Account {
            nonce: 0,
            kas: KAS_EACH + 5_000
        }
    );
}

#[test]
fn an_account_is_stored_once_it_holds_kas_and_kept_for_its_nonce_after_it_spends_everything() {
    let mut c = Chain::new(2);
    let newcomer = kassa_types::SecretKey::from_label("newcomer");
    let who = newcomer.address();
    assert!(c.st.get(&keys::account(&who)).is_none());
    c.ok(
        &key(0),
        Body::Transfer {
            to: who,
            asset: AssetId::NATIVE,
            amount: 10 * FEE,
        },
    );
    let stored =
        c.st.get(&keys::account(&who))
            .expect("stored once it holds KAS");
    assert_eq!(
        balance_in(AssetId::NATIVE, Some(&stored)).unwrap(),
        10 * FEE
    );
    // It spends everything: the record stays, for its nonce never goes back.
    c.ok(
        &newcomer,
        Body::Transfer {
            to: key(0).address(),
            asset: AssetId::NATIVE,
            amount: 9 * FEE,
        },
    );
    assert_eq!(account(&c.st, &who), Account { nonce: 1, kas: 0 });
    // Too poor for a fee now: refused before anything is written.
    assert_eq!(
        c.exec(
            &newcomer,
            Body::Transfer {
                to: key(0).address(),
                asset: AssetId::NATIVE,
                amount: 1,
            },
        ),
        Err(Rejection::CannotPayFee)
    );
}

#[test]
fn the_auditor_refuses_kas_from_nowhere_kas_outside_an_account_an_empty_record_and_a_nonce_going_back()
 {
    let fresh = || {
        let mut c = Chain::new(2);
        c.ok(
            &key(0),
            Body::Transfer {
                to: key(1).address(),
                asset: AssetId::NATIVE,
                amount: 1,
            },
        );
        c
    };
    let who = key(0).address();
    let invariant = |c: &Chain| audit(&c.st, Some(&c.snapshot)).unwrap_err().invariant;

    // One base unit more in a record than the supply accounts for.
    let mut c = fresh();
    let mut a = account(&c.st, &who);
    a.kas += 1;
    put_account(&mut c, &who, &a);
    assert_eq!(invariant(&c), 1);

    // KAS under a balance key instead of the account record.
    let mut c = fresh();
    let mut a = account(&c.st, &who);
    a.kas -= 7;
    put_account(&mut c, &who, &a);
    c.st.put(
        keys::balance(&who, AssetId::NATIVE),
        borsh::to_vec(&7u64).unwrap(),
    );
    assert_eq!(invariant(&c), 3);

    // A record holding nothing.
    let mut c = fresh();
    put_account(&mut c, &key(5).address(), &Account::default());
    assert_eq!(invariant(&c), 3);

    // A nonce going back, and an account disappearing.
    let mut c = fresh();
    let mut a = account(&c.st, &who);
    a.nonce = 0;
    put_account(&mut c, &who, &a);
    assert_eq!(invariant(&c), 5);
    let mut c = fresh();
    let kas = account(&c.st, &who).kas;
    c.st.delete(&keys::account(&who));
    let mut supply: kassa_state::records::Asset =
        kassa_state::exec::get(&c.st, &keys::asset(AssetId::NATIVE)).unwrap();
    supply.supply -= kas;
    c.st.put(
        keys::asset(AssetId::NATIVE),
        borsh::to_vec(&supply).unwrap(),
    );
    assert_eq!(invariant(&c), 5);

    // And the untouched chain passes.
    let c = fresh();
    assert!(audit(&c.st, Some(&c.snapshot)).is_ok());
}
