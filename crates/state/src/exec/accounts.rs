//! Accounts and assets: balances, transfers, issuing, minting and burning (docs/protocol.md §2).

use super::{Ex, R, counters, get, put};
use crate::keys::{self};
use crate::records::*;
use crate::store::{Store, StoreMut};
use kassa_types::{Address, AssetId, Rejection};

/// An account's balance of an asset (KAS is held in the account record, other assets under
/// their own keys).
pub fn balance(st: &impl Store, a: &Address, asset: AssetId) -> u64 {
    balance_in(asset, st.get(&keys::holding(a, asset)).as_deref())
        .expect("state holds only values this code wrote")
}

/// An account's record (the default when nothing is stored).
pub fn account(st: &impl Store, a: &Address) -> Account {
    get(st, &keys::account(a)).unwrap_or_default()
}

/// The balance of `asset` in the value stored under [`keys::holding`] (nothing stored: 0).
pub fn balance_in(asset: AssetId, value: Option<&[u8]>) -> Result<u64, borsh::io::Error> {
    match value {
        None => Ok(0),
        Some(v) if asset == AssetId::NATIVE => borsh::from_slice::<Account>(v).map(|a| a.kas),
        Some(v) => borsh::from_slice(v),
    }
}

/// An account's next nonce.
pub fn nonce(st: &impl Store, a: &Address) -> u64 {
    account(st, a).nonce
}

pub(super) fn set_account(st: &mut impl StoreMut, a: &Address, account: &Account) {
    if *account == Account::default() {
        st.delete(&keys::account(a));
    } else {
        put(st, keys::account(a), account);
    }
}

pub(super) fn set_balance(st: &mut impl StoreMut, a: &Address, asset: AssetId, v: u64) {
    if asset == AssetId::NATIVE {
        let mut account = account(st, a);
        account.kas = v;
        set_account(st, a, &account);
    } else if v == 0 {
        st.delete(&keys::balance(a, asset));
    } else {
        put(st, keys::balance(a, asset), &v);
    }
}

pub(super) fn credit(st: &mut impl StoreMut, a: &Address, asset: AssetId, amount: u64) -> R<()> {
    let v = balance(st, a, asset)
        .checked_add(amount)
        .ok_or(Rejection::Overflow)?;
    set_balance(st, a, asset, v);
    Ok(())
}

pub(super) fn debit(st: &mut impl StoreMut, a: &Address, asset: AssetId, amount: u64) -> R<()> {
    let v = balance(st, a, asset)
        .checked_sub(amount)
        .ok_or(Rejection::InsufficientBalance)?;
    set_balance(st, a, asset, v);
    Ok(())
}

impl<S: StoreMut> Ex<'_, S> {
    pub(super) fn asset(&self, id: AssetId) -> R<Asset> {
        get(&*self.st, &keys::asset(id)).ok_or(Rejection::UnknownAsset)
    }

    /// Refuses a recipient key anyone could sign for. An account that already holds something
    /// passed this check when it first received, so only new recipients pay for the point check.
    pub(super) fn check_recipient(&self, to: &Address, asset: AssetId) -> R<()> {
        if self.st.get(&keys::account(to)).is_some()
            || self.st.get(&keys::holding(to, asset)).is_some()
            || kassa_types::crypto::is_valid_public_key(to)
        {
            Ok(())
        } else {
            Err(Rejection::InvalidRecipient)
        }
    }

    pub(super) fn transfer(&mut self, to: Address, asset: AssetId, amount: u64) -> R<()> {
        self.asset(asset)?;
        self.check_recipient(&to, asset)?;
        debit(self.st, &self.signer, asset, amount)?;
        credit(self.st, &to, asset, amount)?;
        self.events.push(Event::Transferred {
            from: self.signer,
            to,
            asset,
            amount,
        });
        Ok(())
    }

    pub(super) fn create_asset(
        &mut self,
        symbol: kassa_types::tx::Symbol,
        decimals: u8,
        max_supply: Option<u64>,
    ) -> R<()> {
        if self.st.get(&keys::symbol(&symbol)).is_some() {
            return Err(Rejection::SymbolTaken);
        }
        let mut c = counters(&*self.st);
        let id = AssetId(c.next_asset);
        c.next_asset += 1;
        put(self.st, keys::COUNTERS.to_vec(), &c);
        put(self.st, keys::symbol(&symbol), &id);
        put(
            self.st,
            keys::asset(id),
            &Asset {
                symbol,
                decimals,
                max_supply,
                issuer: Some(self.signer),
                supply: 0,
            },
        );
        self.events.push(Event::AssetCreated {
            asset: id,
            issuer: self.signer,
        });
        Ok(())
    }

    pub(super) fn mint(&mut self, id: AssetId, to: Address, amount: u64) -> R<()> {
        let mut a = self.asset(id)?;
        if a.issuer != Some(self.signer) {
            return Err(Rejection::NotIssuer);
        }
        self.check_recipient(&to, id)?;
        let supply = a.supply.checked_add(amount).ok_or(Rejection::Overflow)?;
        if a.max_supply.is_some_and(|max| supply > max) {
            return Err(Rejection::MaxSupplyExceeded);
        }
        a.supply = supply;
        put(self.st, keys::asset(id), &a);
        credit(self.st, &to, id, amount)?;
        self.events.push(Event::Minted {
            asset: id,
            to,
            amount,
        });
        Ok(())
    }

    pub(super) fn burn(&mut self, id: AssetId, amount: u64) -> R<()> {
        let mut a = self.asset(id)?;
        debit(self.st, &self.signer, id, amount)?;
        a.supply -= amount; // a holder's balance is part of the supply
        put(self.st, keys::asset(id), &a);
        self.events.push(Event::Burned {
            asset: id,
            from: self.signer,
            amount,
        });
        Ok(())
    }

    // -- societies --------------------------------------------------------------------------------
}
