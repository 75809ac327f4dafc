//! Every reason a transaction can be refused, as a numbered, typed code.
//!
//! Codes are public API: they are never renumbered and never reused. They are grouped by the phase
//! that detects them, in order of precedence (the first failing check wins):
//!
//! | range | phase | effect on state |
//! |---|---|---|
//! | 1–19  | stateless: decoding, signature, static checks | none; never included in a block |
//! | 20–29 | against the signer's account: expiry, nonce, fee, the signer's key | none; never included in a block |
//! | 30–39 | the mempool's own refusals (admission only) | none; never included in a block |
//! | 40–   | execution against state | the fee is burned and the nonce advances; nothing else changes |
//!
//! Why a failed execution still pays: the transaction was validly signed and ordered, so it cost
//! the network work; charging it makes spam cost money, and bumping the nonce makes the failure
//! final (the same bytes cannot be replayed later, when they might succeed unexpectedly).

use std::fmt;

macro_rules! rejections {
    ($( $(#[$doc:meta])* $name:ident = $code:literal as $snake:literal => $msg:literal, )*) => {
        /// A reason a transaction was refused. See the module docs for phases.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u16)]
        pub enum Rejection {
            $( $(#[$doc])* $name = $code, )*
        }

        impl Rejection {
            /// Every rejection, in code order.
            pub const ALL: &'static [Rejection] = &[$(Rejection::$name,)*];

            /// The stable numeric code.
            pub fn code(self) -> u16 {
                self as u16
            }

            /// The rejection with this code.
            pub fn from_code(code: u16) -> Option<Rejection> {
                match code {
                    $( $code => Some(Rejection::$name), )*
                    _ => None,
                }
            }

            /// A stable snake_case name, e.g. `nonce_too_low`.
            pub fn name(self) -> &'static str {
                match self {
                    $( Rejection::$name => $snake, )*
                }
            }

            /// A sentence for people.
            pub fn message(self) -> &'static str {
                match self {
                    $( Rejection::$name => $msg, )*
                }
            }
        }
    };
}

rejections! {
    // -- stateless ----------------------------------------------------------------------------
    /// The bytes are not a canonical transaction encoding.
    Malformed = 1 as "malformed" => "the transaction bytes are not a valid encoding",
    /// The encoding is larger than `TX_SIZE_MAX`.
    Oversized = 2 as "oversized" => "the transaction is larger than the maximum size",
    /// The signature is not the signer's over the signing message.
    BadSignature = 3 as "bad_signature" => "the signature does not verify for the signer",
    /// The transaction is for another chain.
    WrongChain = 4 as "wrong_chain" => "the transaction is for another chain id",
    /// The fee is below the chain's minimum.
    FeeBelowMinimum = 5 as "fee_below_minimum" => "the fee is below the minimum",
    /// An amount that must be positive is zero.
    ZeroAmount = 6 as "zero_amount" => "the amount must be greater than zero",
    /// An asset symbol is not 2–12 characters of A–Z and 0–9.
    InvalidSymbol = 7 as "invalid_symbol" => "asset symbols are 2 to 12 characters of A-Z and 0-9",
    /// A society's rules are out of range.
    InvalidRules = 8 as "invalid_rules" => "the society rules are out of range",
    /// A society's name is empty.
    EmptyName = 9 as "empty_name" => "the society name must not be empty",
    /// Decimals above 18.
    InvalidDecimals = 10 as "invalid_decimals" => "an asset has at most 18 decimals",
    /// The transaction was signed for a chain with another genesis.
    WrongGenesis = 11 as "wrong_genesis" => "the transaction was signed for another genesis",
    /// A vote's percent is outside 1–100, or a no-vote does not carry 100.
    InvalidPercent = 12 as "invalid_percent" => "a yes-vote approves 1 to 100 percent; a no-vote carries 100",
    // -- against the signer's account ---------------------------------------------------------
    /// The block height is past the transaction's expiry height.
    Expired = 20 as "expired" => "the transaction has expired",
    /// The nonce was already used (a replay).
    NonceTooLow = 21 as "nonce_too_low" => "the nonce was already used",
    /// The nonce is ahead of the signer's next nonce.
    NonceTooHigh = 22 as "nonce_too_high" => "the nonce is ahead of the account's next nonce",
    /// The signer cannot pay the fee in KAS.
    CannotPayFee = 23 as "cannot_pay_fee" => "the account cannot pay the fee",
    /// The signer's key is not a canonical point of prime order (anyone could sign for it).
    InvalidSigner = 24 as "invalid_signer" => "the signer's key is a small-order or non-canonical key, which cannot sign",
    // -- the mempool's own refusals -----------------------------------------------------------
    /// The very same transaction is already waiting.
    Duplicate = 30 as "duplicate" => "the transaction is already in the mempool",
    /// Another transaction from the same sender with the same nonce is waiting.
    NonceTaken = 31 as "nonce_taken" => "another transaction with this nonce is already waiting",
    /// The sender already has the most transactions allowed waiting.
    SenderFull = 32 as "sender_full" => "too many transactions from this sender are waiting",
    /// The mempool is full.
    MempoolFull = 33 as "mempool_full" => "the mempool is full; try again later",
    /// The expiry height is further ahead than the mempool keeps transactions.
    ExpiryTooFar = 34 as "expiry_too_far" => "the expiry height is too far ahead",
    /// The sender cannot pay the fees of all its waiting transactions and this one.
    FeesExceedBalance = 35 as "fees_exceed_balance" => "the account cannot pay the fees of all its waiting transactions",
    /// The nonce is further ahead of the account's next nonce than the mempool keeps.
    NonceGapTooLarge = 36 as "nonce_gap_too_large" => "the nonce is too far ahead of the account's next nonce",
    // -- execution ----------------------------------------------------------------------------
    /// No asset with this id.
    UnknownAsset = 40 as "unknown_asset" => "no such asset",
    /// No society with this id.
    UnknownSociety = 41 as "unknown_society" => "no such society",
    /// No request with this id.
    UnknownRequest = 42 as "unknown_request" => "no such request",
    /// No amendment with this id.
    UnknownAmendment = 43 as "unknown_amendment" => "no such amendment",
    /// The account does not hold enough of the asset.
    InsufficientBalance = 44 as "insufficient_balance" => "the account balance is too low",
    /// An amount would overflow.
    Overflow = 45 as "overflow" => "the amount would overflow",
    /// Only the asset's issuer may mint.
    NotIssuer = 46 as "not_issuer" => "only the asset's issuer may mint it",
    /// Minting would exceed the asset's maximum supply (KAS has none left: it is fixed at genesis).
    MaxSupplyExceeded = 47 as "max_supply_exceeded" => "minting would exceed the maximum supply",
    /// Another asset already uses this symbol.
    SymbolTaken = 48 as "symbol_taken" => "an asset with this symbol already exists",
    /// The signer is already a member or applicant of this society.
    AlreadyMember = 50 as "already_member" => "already a member or applicant of this society",
    /// The signer (or the named account) is not a member of this society.
    NotMember = 51 as "not_member" => "not a member of this society",
    /// The pledge is outside the society's range.
    PledgeOutOfRange = 52 as "pledge_out_of_range" => "the pledge is outside the society's pledge range",
    /// The society requires an identity commitment to join.
    IdentityCommitmentRequired = 53 as "identity_commitment_required" => "this society requires an identity commitment",
    /// The society's identity rule is public; a commitment is not accepted.
    IdentityCommitmentNotAllowed = 54 as "identity_commitment_not_allowed" => "this society does not take identity commitments",
    /// The gift account would exceed its cap.
    GiftAccountCapExceeded = 55 as "gift_account_cap_exceeded" => "the contribution would exceed the gift account cap",
    /// The member is behind on pledges beyond the grace periods.
    NotInGoodStanding = 56 as "not_in_good_standing" => "the member is not in good standing (lapsed); pay the arrears, or check in with a full account, first",
    /// The member joined too recently to file a request.
    InWaitingPeriod = 57 as "in_waiting_period" => "the member is still in the waiting period",
    /// The member already has an open request in this society.
    OpenRequestExists = 58 as "open_request_exists" => "the member already has a request open, being paid or running",
    /// The society has fewer members than its minimum for requests.
    TooFewMembers = 59 as "too_few_members" => "the society has too few members for requests",
    /// The amount exceeds karma × benefit ratio.
    ExceedsMaximumBenefit = 60 as "exceeds_maximum_benefit" => "the amount exceeds the member's maximum benefit",
    /// The amount exceeds the society's per-request cap.
    ExceedsMaxRequest = 61 as "exceeds_max_request" => "the amount exceeds the society's maximum request",
    /// The signer is an applicant, not yet a member.
    NotYetAdmitted = 62 as "not_yet_admitted" => "the applicant has not been admitted yet",
    /// The member has given notice and can no longer do this.
    MemberLeaving = 63 as "member_leaving" => "the member is leaving and can no longer do this",
    /// A requester or applicant cannot vote on their own case.
    CannotVoteOnOwnRequest = 64 as "cannot_vote_on_own_request" => "a member cannot vote on their own request",
    /// The voting window has closed.
    VotingClosed = 65 as "voting_closed" => "voting has closed",
    /// The voting window is still open.
    VotingStillOpen = 66 as "voting_still_open" => "voting is still open",
    /// The voter had no karma (own or delegated) in the request's filing period.
    NoVotingWeight = 67 as "no_voting_weight" => "the voter had no voting weight when this was filed",
    /// Gifts go only to approved requests.
    RequestNotApproved = 68 as "request_not_approved" => "the request is not approved",
    /// The request has already received its whole amount.
    RequestFullyFunded = 69 as "request_fully_funded" => "the request is already fully funded",
    /// The request or amendment was already finalized.
    AlreadyFinalized = 70 as "already_finalized" => "already finalized",
    /// The notice period has not ended.
    NoticeNotOver = 71 as "notice_not_over" => "the notice period has not ended",
    /// `Withdraw` needs a prior `Leave`.
    NotLeaving = 72 as "not_leaving" => "the member has not given notice",
    /// The member has already given notice.
    AlreadyLeaving = 73 as "already_leaving" => "the member has already given notice",
    /// The society already has an amendment open or waiting.
    AmendmentInProgress = 74 as "amendment_in_progress" => "the society already has an amendment in progress",
    /// Amendments cannot change the asset or the period.
    AmendmentChangesFixedRule = 75 as "amendment_changes_fixed_rule" => "an amendment cannot change the society's period",
    /// The amendment's timelock has not ended.
    TimelockNotOver = 76 as "timelock_not_over" => "the amendment's timelock has not ended",
    /// A member cannot delegate to themselves.
    SelfDelegation = 77 as "self_delegation" => "a member cannot delegate to themselves",
    /// The gift account holds less than the gift.
    InsufficientGiftBalance = 78 as "insufficient_gift_balance" => "the gift account holds less than this",
    /// The gift is more than the request still needs.
    GiftExceedsNeed = 79 as "gift_exceeds_need" => "the gift is more than the request still needs",
    /// The request is an application for admission, not a request for help.
    NotAHelpRequest = 80 as "not_a_help_request" => "this is an application, not a request for help",
    /// A requester cannot gift to their own request (it would move their gift account to
    /// themselves).
    CannotGiftToOwnRequest = 81 as "cannot_gift_to_own_request" => "a member cannot gift to their own request",
    /// A recipient or payee key is not a canonical point of prime order (anyone could spend
    /// what it receives).
    InvalidRecipient = 82 as "invalid_recipient" => "the recipient is a small-order or non-canonical key, which cannot receive",
    /// `Expel` names a member who has not been lapsed for longer than `lapse_periods`.
    NotExpellable = 83 as "not_expellable" => "the member has not been lapsed long enough to be expelled",
    /// More installments than the society's `max_installments`.
    TooManyInstallments = 84 as "too_many_installments" => "more installments than the society allows",
    /// `EndBenefit` or `ClaimBenefit` on a request that is not an approved benefit in installments.
    NotABenefit = 85 as "not_a_benefit" => "this request is not a benefit paid in installments",
    /// Only the requester may end their benefit.
    NotRequester = 86 as "not_requester" => "only the requester may do this",
    /// The benefit has already ended.
    BenefitEnded = 87 as "benefit_ended" => "the benefit has already ended",
    /// A gift from the request's payee, which would move the gift account to the giver.
    CannotGiftToOwnPayment = 88 as "cannot_gift_to_own_payment" => "a member cannot gift to a request that pays them",
    /// The gift would take the giver's account below what an exit would hold back.
    GiftBelowHoldBack = 89 as "gift_below_hold_back" => "the gift would leave less than the society's share of what it owes",
    /// The pledge is unchanged, or it cannot change while dues are paid beyond this period.
    PledgeChangeNotAllowed = 90 as "pledge_change_not_allowed" => "the pledge cannot change now (unchanged, or dues are paid beyond this period)",
    /// The society's period bookkeeping is behind; any transaction (e.g. `Settle`) advances it.
    SocietyCatchingUp = 91 as "society_catching_up" => "the society's periods are still being brought up to date; send Settle and try again",
    /// Every funded installment of the benefit has been paid.
    NothingToClaim = 92 as "nothing_to_claim" => "no installment of this benefit is funded and unpaid",
    /// Voluntary gifts go to lump sums; benefits in installments are funded each period.
    BenefitTakesNoGifts = 93 as "benefit_takes_no_gifts" => "a benefit paid in installments takes no gifts",
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.name(), self.code(), self.message())
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// Whether a transaction refused for this reason still pays its fee and uses its nonce.
    pub fn charges_fee(self) -> bool {
        self.code() >= 40
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for r in Rejection::ALL {
            assert!(seen.insert(r.code()), "duplicate code {}", r.code());
            assert!(
                r.name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                r.name()
            );
            assert_eq!(Rejection::from_code(r.code()), Some(*r));
            assert!(!r.message().is_empty());
        }
        assert_eq!(Rejection::from_code(0), None);
    }

    #[test]
    fn only_execution_failures_charge_the_fee() {
        assert!(!Rejection::BadSignature.charges_fee());
        assert!(!Rejection::NonceTooLow.charges_fee());
        assert!(!Rejection::CannotPayFee.charges_fee());
        assert!(!Rejection::MempoolFull.charges_fee());
        assert!(Rejection::UnknownSociety.charges_fee());
    }
}
