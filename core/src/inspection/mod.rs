//! Showing a licence to an inspector (亮证), both sides, offline.
//!
//! - [`showing`]: the holder's dynamic (key-bound, fresh, single use) and
//!   printable (sealed, bounded validity, unbound) presentations;
//! - [`compact`]: the lossless, compressed, versioned QR transport;
//! - [`qr`] (feature `qr`): QR codes at level M as SVG, PNG or terminal
//!   text, and reading them back from images; [`printable`]: the A4 card;
//! - [`inspector`]: scan in, verdict out, with the freshness window, the
//!   nonce replay cache and the age of the trust data.

pub mod compact;
pub mod inspector;
#[cfg(feature = "qr")]
pub mod printable;
#[cfg(feature = "qr")]
pub mod qr;
pub mod showing;

pub use inspector::{InspectedLicence, InspectionVerdict, Inspector};
pub use showing::{ShowMode, Shown, present_dynamic, present_printable};
