//! Every reason a transaction can be refused, as a numbered, typed code.
//!
//! Codes are public API: they are never renumbered and never reused. They are grouped by the phase
//! that detects them, in order of precedence (the first failing check wins):
//!
//! | range | phase | effect on state |
//! |---|---|---|
//! | 1–19  | stateless: decoding, signature, static checks | none; never included in a block |
//! | 20–39 | against the signer's account: expiry, nonce, fee | none; never included in a block |
//! | 40–   | execution against state | the fee is burned and the nonce advances; nothing else changes |
//!
//! Why a failed execution still pays: the transaction was validly signed and ordered, so it cost
//! the network work; charging it makes spam cost money, and bumping the nonce makes the failure
//! final (the same bytes cannot be replayed later, when they might succeed unexpectedly).

use std::fmt;

macro_rules! rejections {
    ($( $(#[$doc:meta])* $name:ident = $code:literal => $msg:literal, )*) => {
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
                    $( Rejection::$name => stringify!($name), )*
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
    Malformed = 1 => "the transaction bytes are not a valid encoding",
    /// The encoding is larger than `TX_SIZE_MAX`.
    Oversized = 2 => "the transaction is larger than the maximum size",
    /// The signature is not the signer's over the signing message.
    BadSignature = 3 => "the signature does not verify for the signer",
    /// The transaction is for another chain.
    WrongChain = 4 => "the transaction is for another chain id",
    /// The fee is below the chain's minimum.
    FeeBelowMinimum = 5 => "the fee is below the minimum",
    /// An amount that must be positive is zero.
    ZeroAmount = 6 => "the amount must be greater than zero",
    /// An asset symbol is not 2–12 characters of A–Z and 0–9.
    InvalidSymbol = 7 => "asset symbols are 2 to 12 characters of A-Z and 0-9",
    /// A society's rules are out of range.
    InvalidRules = 8 => "the society rules are out of range",
    /// A society's name is empty.
    EmptyName = 9 => "the society name must not be empty",
    /// Decimals above 18.
    InvalidDecimals = 10 => "an asset has at most 18 decimals",
    // -- against the signer's account ---------------------------------------------------------
    /// The block height is past the transaction's expiry height.
    Expired = 20 => "the transaction has expired",
    /// The nonce was already used (a replay).
    NonceTooLow = 21 => "the nonce was already used",
    /// The nonce is ahead of the signer's next nonce.
    NonceTooHigh = 22 => "the nonce is ahead of the account's next nonce",
    /// The signer cannot pay the fee in KAS.
    CannotPayFee = 23 => "the account cannot pay the fee",
    // -- execution ----------------------------------------------------------------------------
    /// No asset with this id.
    UnknownAsset = 40 => "no such asset",
    /// No society with this id.
    UnknownSociety = 41 => "no such society",
    /// No request with this id.
    UnknownRequest = 42 => "no such request",
    /// No amendment with this id.
    UnknownAmendment = 43 => "no such amendment",
    /// The account does not hold enough of the asset.
    InsufficientBalance = 44 => "the account balance is too low",
    /// An amount would overflow.
    Overflow = 45 => "the amount would overflow",
    /// Only the asset's issuer may mint.
    NotIssuer = 46 => "only the asset's issuer may mint it",
    /// Minting would exceed the asset's maximum supply (KAS has none left: it is fixed at genesis).
    MaxSupplyExceeded = 47 => "minting would exceed the maximum supply",
    /// Another asset already uses this symbol.
    SymbolTaken = 48 => "an asset with this symbol already exists",
    /// The signer is already a member or applicant of this society.
    AlreadyMember = 50 => "already a member or applicant of this society",
    /// The signer (or the named account) is not a member of this society.
    NotMember = 51 => "not a member of this society",
    /// The pledge is outside the society's range.
    PledgeOutOfRange = 52 => "the pledge is outside the society's pledge range",
    /// The society requires an identity commitment to join.
    IdentityCommitmentRequired = 53 => "this society requires an identity commitment",
    /// The society's identity rule is public; a commitment is not accepted.
    IdentityCommitmentNotAllowed = 54 => "this society does not take identity commitments",
    /// The gift account would exceed its cap.
    GiftAccountCapExceeded = 55 => "the contribution would exceed the gift account cap",
    /// The member is behind on pledges beyond the grace periods.
    NotInGoodStanding = 56 => "the member is not in good standing; catch up on contributions first",
    /// The member joined too recently to file a request.
    InWaitingPeriod = 57 => "the member is still in the waiting period",
    /// The member already has an open request in this society.
    OpenRequestExists = 58 => "the member already has an open request",
    /// The society has fewer members than its minimum for requests.
    TooFewMembers = 59 => "the society has too few members for requests",
    /// The amount exceeds karma × benefit ratio.
    ExceedsMaximumBenefit = 60 => "the amount exceeds the member's maximum benefit",
    /// The amount exceeds the society's per-request cap.
    ExceedsMaxRequest = 61 => "the amount exceeds the society's maximum request",
    /// The signer is an applicant, not yet a member.
    NotYetAdmitted = 62 => "the applicant has not been admitted yet",
    /// The member has given notice and can no longer do this.
    MemberLeaving = 63 => "the member is leaving and can no longer do this",
    /// A requester or applicant cannot vote on their own case.
    CannotVoteOnOwnRequest = 64 => "a member cannot vote on their own request",
    /// The voting window has closed.
    VotingClosed = 65 => "voting has closed",
    /// The voting window is still open.
    VotingStillOpen = 66 => "voting is still open",
    /// The voter had no karma (own or delegated) in the request's filing period.
    NoVotingWeight = 67 => "the voter had no voting weight when this was filed",
    /// Gifts go only to approved requests.
    RequestNotApproved = 68 => "the request is not approved",
    /// The request has already received its whole amount.
    RequestFullyFunded = 69 => "the request is already fully funded",
    /// The request or amendment was already finalized.
    AlreadyFinalized = 70 => "already finalized",
    /// The notice period has not ended.
    NoticeNotOver = 71 => "the notice period has not ended",
    /// `Withdraw` needs a prior `Leave`.
    NotLeaving = 72 => "the member has not given notice",
    /// The member has already given notice.
    AlreadyLeaving = 73 => "the member has already given notice",
    /// The society already has an amendment open or waiting.
    AmendmentInProgress = 74 => "the society already has an amendment in progress",
    /// Amendments cannot change the asset or the period.
    AmendmentChangesFixedRule = 75 => "an amendment cannot change the society's period",
    /// The amendment's timelock has not ended.
    TimelockNotOver = 76 => "the amendment's timelock has not ended",
    /// A member cannot delegate to themselves.
    SelfDelegation = 77 => "a member cannot delegate to themselves",
    /// The gift account holds less than the gift.
    InsufficientGiftBalance = 78 => "the gift account holds less than this",
    /// The gift is more than the request still needs.
    GiftExceedsNeed = 79 => "the gift is more than the request still needs",
    /// The request is an application for admission, not a request for help.
    NotAHelpRequest = 80 => "this is an application, not a request for help",
    /// A requester cannot gift to their own request (it would move their gift account to
    /// themselves).
    CannotGiftToOwnRequest = 81 => "a member cannot gift to their own request",
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
        assert!(Rejection::UnknownSociety.charges_fee());
    }
}
