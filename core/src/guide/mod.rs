//! Service guides (办事指南): the national implementation-list elements of
//! each item, its form schema, and the one form validator that the phone
//! (before queueing) and the server (on receipt) share.
//!
//! - [`Guide`] carries the elements; [`Guide::validate`] checks its
//!   consistency and [`Guide::checksum`] fingerprints it for catalog sync;
//! - [`FormSchema`] types the form's fields; [`validate_submission`] checks
//!   submitted values and reports every [`FieldError`] with a stable code and
//!   zh-CN / en texts that never quote the value;
//! - [`id_number`] checks resident identity card numbers (GB 11643-1999);
//! - [`fixture`] turns the Guang'an implementation-list fixture into the
//!   1,135-guide demo catalog.
//!
//! Nothing here touches storage, network or the clock, so it builds with
//! `default-features = false` for the server.

pub mod field_error;
pub mod fixture;
mod fixture_rules;
pub mod form;
pub mod id_number;
pub mod model;
pub mod validate;
pub mod value;

pub use field_error::{FieldError, FieldErrorCode, WHOLE_FORM};
pub use fixture::{FixtureError, FixtureItem, demo_catalog, guide_from_fixture, load_fixture};
pub use form::{ChoiceOption, FieldKind, FormField, FormSchema, FormSchemaError, is_field_name};
pub use id_number::{IdNumberError, validate_id_number};
pub use model::{
    Faq, Fee, Guide, GuideError, ItemType, Location, Material, MaterialForm, OnlineDepth,
    ProcessStep, ServiceObject,
};
pub use validate::{
    is_valid_phone, missing_required, validate_draft, validate_form_version, validate_submission,
    validate_versioned_submission,
};
pub use value::{AttachmentRef, LicenceRef};
