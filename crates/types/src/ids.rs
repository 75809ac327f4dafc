//! Identifiers of on-chain objects. All are sequential `u64`s assigned by the state machine.

use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
        )]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// An asset. `AssetId(0)` is the native asset KAS.
    AssetId, "asset#"
);
id_type!(
    /// A society.
    SocietyId, "society#"
);
id_type!(
    /// A request for help or an application for admission.
    RequestId, "request#"
);
id_type!(
    /// A proposed rule change.
    AmendmentId, "amendment#"
);

impl AssetId {
    /// The native asset, KAS.
    pub const NATIVE: AssetId = AssetId(0);
}
