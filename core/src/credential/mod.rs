//! Electronic licences (电子证照) as SD-JWT VCs (RFC 9901, `dc+sd-jwt`),
//! signed with Ed25519, bound to the holder's device key, revocable through
//! an IETF Token Status List and trusted through a root-signed trust bundle.
//!
//! One implementation serves the issuer (server), the holder (phone) and the
//! verifier (inspector device, server):
//!
//! - [`issuer::Issuer::issue`] builds a licence from GB/T 36903 claims ([`claims`]);
//! - [`holder::HeldLicence::present`] discloses chosen fields, with a key binding JWT;
//! - [`verifier::verify_presentation`] returns the disclosed claims or a typed
//!   [`Rejection`] with a stable code and zh-CN / en texts;
//! - [`trust_bundle::TrustBundle`] and [`status_list`] carry trust and status offline.

pub mod claims;
pub mod demo;
pub mod holder;
pub mod holder_key;
pub mod issuer;
pub mod issuer_list;
pub mod jose;
pub mod key_hygiene;
pub mod keys;
pub mod licence_id;
pub mod rejection;
pub mod sd_jwt;
pub mod status_list;
pub mod trust_bundle;
pub mod verifier;

pub use holder::{
    HeldLicence, KeyBindingClaims, KeyBindingRequest, PendingPresentation, PresentError,
};
pub use holder_key::{
    HolderKey, HolderSigner, P256KeyPair, SignError, SoftwareHolderKey, reenrolment_message,
};
pub use issuer::{IssueError, Issuer, LicenceRequest, StatusReference};
pub use keys::{KeyError, KeyPair, PublicKey};
pub use licence_id::{LicenceId, LicenceIdError};
pub use rejection::{Rejection, VerdictClass};
pub use status_list::{Status, StatusList, StatusListCache, StatusListToken, VerifiedStatusList};
pub use trust_bundle::{IssuerKeyEntry, TrustBundle, TrustBundleContent, TrustedIssuer};
pub use verifier::{
    KeyBindingInfo, KeyBindingPolicy, NoncePolicy, VerifiedLicence, VerifyPolicy,
    verify_presentation,
};
