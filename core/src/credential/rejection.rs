//! Every way a licence, a presentation, a trust bundle or a status list can be
//! refused, each with a stable code and short texts an app can show as they are.
//!
//! The codes are part of the public contract (apps switch on them, the server
//! returns them in JSON): never rename one, only add. Texts carry no personal
//! data: a rejection never quotes a claim value.

use std::fmt;

/// What a person can do about a rejection: the inspector's verdict classes.
///
/// Many precise [`Rejection`]s map to one class; apps that only need the
/// class switch on this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VerdictClass {
    /// The data could not be read as a licence at all (bad QR, truncated text).
    Unreadable,
    /// Signatures or structure do not hold: treat as a fake.
    Forged,
    /// The issuer is not in the trust bundle, or not allowed to issue this type.
    UntrustedIssuer,
    /// Past its validity end.
    Expired,
    /// Before its validity start.
    NotYetValid,
    /// Revoked by its issuer.
    Revoked,
    /// Suspended by its issuer (may come back).
    Suspended,
    /// The person presenting it is not its holder (key binding fails).
    WrongHolder,
    /// The presentation is too old, for another verifier, or replayed.
    StalePresentation,
    /// The verifier's own trust data (bundle, status lists) is too old or missing.
    StaleTrustData,
    /// The verifier's clock is not believable.
    ClockSuspect,
}

impl VerdictClass {
    /// Stable code of the class.
    pub fn code(self) -> &'static str {
        match self {
            Self::Unreadable => "unreadable",
            Self::Forged => "forged",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Revoked => "revoked",
            Self::Suspended => "suspended",
            Self::WrongHolder => "wrong_holder",
            Self::StalePresentation => "stale_presentation",
            Self::StaleTrustData => "stale_trust_data",
            Self::ClockSuspect => "clock_suspect",
        }
    }
}

/// Which signed object a structural rejection is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    /// The issuer-signed JWT of an SD-JWT.
    IssuerJwt,
    /// A disclosure.
    Disclosure,
    /// The key binding JWT.
    KeyBinding,
    /// The trust bundle JWS.
    TrustBundle,
    /// A status list token.
    StatusList,
}

impl Part {
    fn code(self) -> &'static str {
        match self {
            Self::IssuerJwt => "issuer_jwt",
            Self::Disclosure => "disclosure",
            Self::KeyBinding => "kb_jwt",
            Self::TrustBundle => "trust_bundle",
            Self::StatusList => "status_list",
        }
    }
}

/// A refusal, precise enough to test and to log, coarse enough to carry no
/// personal data. See [`Rejection::code`] for the stable codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    // ---- reading ----
    /// Empty input.
    Empty,
    /// Input larger than the verifier accepts.
    TooLarge,
    /// The `~`-separated SD-JWT structure is wrong (no `~`, empty disclosure).
    SdJwtStructure,
    /// A JWS does not have exactly three `.`-separated segments.
    JwsSegments(Part),
    /// A segment is not strict base64url without padding.
    Base64(Part),
    /// A segment is not a JSON object (or the JSON is invalid).
    Json(Part),
    /// A JSON object repeats a member name (parsers would disagree on its value).
    DuplicateJsonMember(Part),
    /// The signature segment decodes, but not to the 64 bytes of an Ed25519
    /// signature: intact bytes that no signer produced.
    SignatureLength(Part),
    /// The text ends in something that is neither a disclosure list closed
    /// by `~` nor a key binding JWT: an SD-JWT missing its final `~` (or cut
    /// off in a disclosure).
    PresentationUnterminated,

    // ---- headers ----
    /// `alg` is not `EdDSA` (`none`, `HS256`, `RS256`, `ES256` … are all refused).
    AlgorithmNotAllowed(Part),
    /// `typ` is not the one this object must carry.
    WrongType(Part),
    /// A `crit` header names extensions we do not implement.
    CriticalHeader(Part),
    /// The issuer JWT has no `kid`.
    MissingKid,
    /// The `kid` is not one of the issuer's keys in the trust bundle.
    UnknownKid,
    /// The issuer signature does not verify (strict Ed25519: also refuses
    /// malleable and small-order signatures).
    BadSignature,

    // ---- trust ----
    /// `iss` is not in the trust bundle.
    IssuerUnknown,
    /// The issuer is in the bundle but may not issue this licence type (`vct`).
    IssuerNotAuthorizedForType,
    /// The licence was signed (`iat`) outside the issuer key's validity window.
    IssuerKeyOutsideWindow,

    // ---- claims ----
    /// A required claim is missing.
    MissingClaim(&'static str),
    /// A claim has the wrong type or an invalid value.
    InvalidClaim(&'static str),
    /// Past `exp` (beyond the allowed skew).
    Expired,
    /// Before `nbf` (beyond the allowed skew).
    NotYetValid,
    /// `iat` lies in the future beyond the allowed skew.
    IssuedInFuture,

    // ---- disclosures ----
    /// A disclosure is not a JSON array `[salt, name, value]` of strings + value.
    DisclosureMalformed,
    /// A disclosure's digest is not listed in `_sd`.
    DisclosureNotReferenced,
    /// The same disclosure is presented twice.
    DisclosureDuplicate,
    /// The same digest appears twice in `_sd`.
    DigestDuplicate,
    /// A disclosure uses a reserved name (`_sd`, `...`) or one that may never be
    /// selectively disclosed (`iss`, `cnf`, `vct`, `status`, …).
    ReservedClaimName,
    /// A disclosure's claim name is not lowercase ASCII snake_case (empty,
    /// fullwidth, zero-width or other look-alike characters).
    ClaimNameInvalid,
    /// Two disclosures (or a disclosure and a visible claim) have the same name.
    ClaimNameConflict,
    /// `_sd_alg` is not `sha-256`.
    UnsupportedDigestAlgorithm,

    // ---- holder binding ----
    /// Key binding is required but the presentation has none.
    KeyBindingMissing,
    /// The licence has no usable `cnf` key, so nothing can be bound.
    HolderKeyMissing,
    /// The key binding JWT is not signed by the licence's holder key.
    KeyBindingSignature,
    /// `aud` of the key binding JWT is not this verifier.
    KeyBindingAudience,
    /// `nonce` of the key binding JWT is not the expected one.
    KeyBindingNonce,
    /// The key binding JWT is older than the freshness window.
    KeyBindingStale,
    /// The key binding JWT's `iat` is in the future beyond the skew.
    KeyBindingFuture,
    /// `sd_hash` does not match the presented SD-JWT.
    KeyBindingSdHash,
    /// The licence is bound to another device than the expected holder.
    WrongHolder,

    // ---- status ----
    /// Revoked (status 1, INVALID).
    Revoked,
    /// Suspended (status 2, SUSPENDED).
    Suspended,
    /// A status value this profile does not define (3).
    StatusUnrecognized,
    /// No cached status list for the licence's `status.status_list.uri`.
    StatusListMissing,
    /// The cached status list is past its `exp` or older than allowed.
    StatusListStale,
    /// The status list token's signature does not verify, or its key is unknown.
    StatusListSignature,
    /// The status list is signed by a different issuer than the licence, or its
    /// URI is not one the bundle lists for that issuer.
    StatusListIssuerMismatch,
    /// The licence's status index is beyond the list.
    StatusIndexOutOfRange,
    /// The status list's compressed data is invalid or too large.
    StatusListMalformed,
    /// The status list's `iat` is later than now (beyond the skew): signed
    /// with a wrong clock, it cannot say what the status is now.
    StatusListFromFuture,
    /// The status list was signed by an issuer key that is retired at the
    /// time of use, or outside that key's window at the list's `iat`.
    StatusListKeyOutsideWindow,

    // ---- trust bundle ----
    /// The trust bundle is not signed by a pinned root key.
    BundleSignature,
    /// The bundle's version is lower than (or conflicts with) the one we hold.
    BundleRollback,
    /// The bundle is older than its own maximum staleness.
    BundleStale,
    /// The bundle's content is inconsistent (duplicate issuers or kids, a kid
    /// that is not its key's thumbprint, a bad key).
    BundleMalformed,
    /// The device clock is earlier than the bundle's issue time: the clock,
    /// not the licence, is wrong.
    ClockSuspect,

    // ---- inspection (亮证) ----
    /// The scanned code is not a presentation (not a QR frame we read, not
    /// SD-JWT text, a corrupt or oversize frame).
    UnreadableCode,
    /// This presentation's nonce was already seen by this inspector within
    /// its freshness window: a replay (a screenshot, a relayed code).
    Replayed,
    /// A printed card past the validity printed on it.
    PrintedCardExpired,
    /// A printed card's seal does not state a validity this verifier accepts
    /// (malformed, or longer than the longest allowed).
    PrintedCardInvalid,
}

impl Rejection {
    /// The stable machine-readable code.
    pub fn code(&self) -> String {
        match self {
            Self::JwsSegments(p) => format!("{}_segments", p.code()),
            Self::Base64(p) => format!("{}_base64", p.code()),
            Self::Json(p) => format!("{}_json", p.code()),
            Self::DuplicateJsonMember(p) => format!("{}_duplicate_member", p.code()),
            Self::SignatureLength(p) => format!("{}_signature_length", p.code()),
            Self::AlgorithmNotAllowed(p) => format!("{}_alg_not_allowed", p.code()),
            Self::WrongType(p) => format!("{}_typ_mismatch", p.code()),
            Self::CriticalHeader(p) => format!("{}_crit_unsupported", p.code()),
            Self::MissingClaim(c) => format!("claim_missing:{c}"),
            Self::InvalidClaim(c) => format!("claim_invalid:{c}"),
            other => other.simple_code().to_string(),
        }
    }

    fn simple_code(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLarge => "too_large",
            Self::SdJwtStructure => "sd_jwt_structure",
            Self::MissingKid => "kid_missing",
            Self::UnknownKid => "kid_unknown",
            Self::BadSignature => "signature_invalid",
            Self::IssuerUnknown => "issuer_unknown",
            Self::IssuerNotAuthorizedForType => "issuer_unauthorized_type",
            Self::IssuerKeyOutsideWindow => "issuer_key_outside_window",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "iat_in_future",
            Self::DisclosureMalformed => "disclosure_malformed",
            Self::DisclosureNotReferenced => "disclosure_unreferenced",
            Self::DisclosureDuplicate => "disclosure_duplicate",
            Self::DigestDuplicate => "digest_duplicate",
            Self::ReservedClaimName => "reserved_claim_name",
            Self::ClaimNameInvalid => "claim_name_invalid",
            Self::PresentationUnterminated => "sd_jwt_unterminated",
            Self::ClaimNameConflict => "claim_name_conflict",
            Self::UnsupportedDigestAlgorithm => "sd_alg_unsupported",
            Self::KeyBindingMissing => "kb_missing",
            Self::HolderKeyMissing => "cnf_missing",
            Self::KeyBindingSignature => "kb_signature_invalid",
            Self::KeyBindingAudience => "kb_aud_mismatch",
            Self::KeyBindingNonce => "kb_nonce_mismatch",
            Self::KeyBindingStale => "kb_stale",
            Self::KeyBindingFuture => "kb_iat_in_future",
            Self::KeyBindingSdHash => "kb_sd_hash_mismatch",
            Self::WrongHolder => "wrong_holder",
            Self::Revoked => "revoked",
            Self::Suspended => "suspended",
            Self::StatusUnrecognized => "status_unrecognized",
            Self::StatusListMissing => "status_list_missing",
            Self::StatusListStale => "status_list_stale",
            Self::StatusListSignature => "status_list_signature_invalid",
            Self::StatusListIssuerMismatch => "status_list_issuer_mismatch",
            Self::StatusIndexOutOfRange => "status_index_out_of_range",
            Self::StatusListMalformed => "status_list_malformed",
            Self::StatusListFromFuture => "status_list_iat_in_future",
            Self::StatusListKeyOutsideWindow => "status_list_key_outside_window",
            Self::BundleSignature => "bundle_signature_invalid",
            Self::BundleRollback => "bundle_rollback",
            Self::BundleStale => "bundle_stale",
            Self::BundleMalformed => "bundle_malformed",
            Self::ClockSuspect => "clock_suspect",
            Self::UnreadableCode => "unreadable_code",
            Self::Replayed => "replayed",
            Self::PrintedCardExpired => "printed_card_expired",
            Self::PrintedCardInvalid => "printed_card_invalid",
            // Parameterised variants are handled in `code`.
            Self::JwsSegments(_)
            | Self::Base64(_)
            | Self::Json(_)
            | Self::DuplicateJsonMember(_)
            | Self::SignatureLength(_)
            | Self::AlgorithmNotAllowed(_)
            | Self::WrongType(_)
            | Self::CriticalHeader(_)
            | Self::MissingClaim(_)
            | Self::InvalidClaim(_) => "malformed",
        }
    }

    /// The class of verdict a person acts on.
    pub fn class(&self) -> VerdictClass {
        use VerdictClass as C;
        match self {
            Self::Empty
            | Self::TooLarge
            | Self::SdJwtStructure
            | Self::JwsSegments(_)
            | Self::Base64(_)
            | Self::PresentationUnterminated
            | Self::UnreadableCode => C::Unreadable,
            // Strict base64url decoded: the bytes are what someone encoded,
            // and what they encoded is not a licence. A bad scan does not
            // produce well-formed base64url of broken JSON or of a short
            // signature (and truncation is caught by the `~` structure).
            Self::Json(_)
            | Self::SignatureLength(_)
            | Self::DuplicateJsonMember(_)
            | Self::AlgorithmNotAllowed(_)
            | Self::WrongType(_)
            | Self::CriticalHeader(_)
            | Self::MissingKid
            | Self::UnknownKid
            | Self::BadSignature
            | Self::MissingClaim(_)
            | Self::InvalidClaim(_)
            | Self::DisclosureMalformed
            | Self::DisclosureNotReferenced
            | Self::DisclosureDuplicate
            | Self::DigestDuplicate
            | Self::ReservedClaimName
            | Self::ClaimNameInvalid
            | Self::ClaimNameConflict
            | Self::UnsupportedDigestAlgorithm
            | Self::KeyBindingSdHash
            | Self::StatusUnrecognized
            // A licence naming another issuer's status list: no sync fixes it.
            | Self::StatusListIssuerMismatch
            | Self::PrintedCardInvalid => C::Forged,
            Self::IssuerUnknown
            | Self::IssuerNotAuthorizedForType
            | Self::IssuerKeyOutsideWindow => C::UntrustedIssuer,
            Self::Expired | Self::PrintedCardExpired => C::Expired,
            Self::NotYetValid | Self::IssuedInFuture => C::NotYetValid,
            Self::Revoked => C::Revoked,
            Self::Suspended => C::Suspended,
            Self::KeyBindingMissing
            | Self::HolderKeyMissing
            | Self::KeyBindingSignature
            | Self::WrongHolder => C::WrongHolder,
            Self::KeyBindingAudience
            | Self::KeyBindingNonce
            | Self::KeyBindingStale
            | Self::KeyBindingFuture
            | Self::Replayed => C::StalePresentation,
            Self::StatusListMissing
            | Self::StatusListStale
            | Self::StatusListSignature
            | Self::StatusIndexOutOfRange
            | Self::StatusListFromFuture
            | Self::StatusListKeyOutsideWindow
            | Self::StatusListMalformed
            | Self::BundleSignature
            | Self::BundleRollback
            | Self::BundleStale
            | Self::BundleMalformed => C::StaleTrustData,
            Self::ClockSuspect => C::ClockSuspect,
        }
    }

    /// A short zh-CN text for the person in front of the screen.
    pub fn zh(&self) -> &'static str {
        match self {
            Self::Empty => "未读到任何内容",
            Self::TooLarge => "内容过大，不是有效的电子证照",
            Self::SdJwtStructure | Self::JwsSegments(_) | Self::Base64(_) => {
                "无法识别的证照数据，请重新扫码"
            }
            Self::PresentationUnterminated => "证照数据不完整（缺少结尾），请重新出示",
            Self::Json(_) => "证照数据格式错误，疑似伪造",
            Self::SignatureLength(_) => "签名长度错误，疑似伪造",
            Self::DuplicateJsonMember(_) => "证照数据含有重复字段，疑似伪造",
            Self::AlgorithmNotAllowed(_) => "签名算法不被接受，疑似伪造",
            Self::WrongType(_) => "数据类型不符，疑似伪造",
            Self::CriticalHeader(_) => "含有不支持的关键扩展，拒绝验证",
            Self::MissingKid => "缺少签发密钥标识，疑似伪造",
            Self::UnknownKid => "签发密钥未登记，疑似伪造",
            Self::BadSignature => "签名无效，证照被篡改或伪造",
            Self::IssuerUnknown => "发证机关不在信任列表中",
            Self::IssuerNotAuthorizedForType => "发证机关无权签发此类证照",
            Self::IssuerKeyOutsideWindow => "签发密钥不在有效期内",
            Self::MissingClaim(_) => "证照缺少必需字段",
            Self::InvalidClaim(_) => "证照字段格式错误",
            Self::Expired => "证照已过期",
            Self::NotYetValid => "证照尚未生效",
            Self::IssuedInFuture => "签发时间晚于当前时间",
            Self::DisclosureMalformed => "披露字段格式错误，疑似伪造",
            Self::DisclosureNotReferenced => "披露字段不属于该证照，疑似篡改",
            Self::DisclosureDuplicate => "披露字段重复，疑似篡改",
            Self::DigestDuplicate => "证照摘要重复，疑似伪造",
            Self::ReservedClaimName => "披露字段使用了保留名称，疑似伪造",
            Self::ClaimNameInvalid => "披露字段名称不规范，疑似伪造",
            Self::ClaimNameConflict => "披露字段名称冲突，疑似伪造",
            Self::UnsupportedDigestAlgorithm => "不支持的摘要算法",
            Self::KeyBindingMissing => "缺少持证人设备签名，无法确认持证人",
            Self::HolderKeyMissing => "证照未绑定持证人设备",
            Self::KeyBindingSignature => "出示人不是持证人本人设备",
            Self::KeyBindingAudience => "此次亮证不是出示给本核验方的",
            Self::KeyBindingNonce => "核验码不符，请持证人重新亮证",
            Self::KeyBindingStale => "亮证码已过时，请持证人刷新后重新出示",
            Self::KeyBindingFuture => "亮证时间晚于当前时间，请检查设备时间",
            Self::KeyBindingSdHash => "亮证内容被篡改",
            Self::WrongHolder => "证照不属于当前申请人",
            Self::Revoked => "证照已被注销",
            Self::Suspended => "证照已被暂停使用",
            Self::StatusUnrecognized => "证照状态无法识别",
            Self::StatusListMissing => "缺少证照状态数据，请联网同步",
            Self::StatusListStale => "证照状态数据已过时，请联网同步",
            Self::StatusListSignature => "证照状态数据签名无效",
            Self::StatusListIssuerMismatch => "证照状态数据与发证机关不符，疑似伪造",
            Self::StatusIndexOutOfRange => "证照状态序号超出范围",
            Self::StatusListMalformed => "证照状态数据损坏",
            Self::StatusListFromFuture => "证照状态数据签发时间晚于当前时间，请联网同步",
            Self::StatusListKeyOutsideWindow => "证照状态数据的签名密钥已停用，请联网同步",
            Self::BundleSignature => "信任列表签名无效",
            Self::BundleRollback => "信任列表版本回退，已拒绝",
            Self::BundleStale => "信任列表已过时，请联网同步",
            Self::BundleMalformed => "信任列表内容错误",
            Self::ClockSuspect => "设备时间不可信，请校准时间后重试",
            Self::UnreadableCode => "无法识别此码，请持证人重新出示",
            Self::Replayed => "此亮证码已被使用过，请持证人刷新后重新出示",
            Self::PrintedCardExpired => "打印的亮证卡已过有效期，请重新打印",
            Self::PrintedCardInvalid => "打印的亮证卡无效",
        }
    }

    /// A short English text for the person in front of the screen.
    pub fn en(&self) -> &'static str {
        match self {
            Self::Empty => "Nothing was read",
            Self::TooLarge => "Too large to be a licence",
            Self::SdJwtStructure | Self::JwsSegments(_) | Self::Base64(_) => {
                "Unreadable licence data, scan again"
            }
            Self::PresentationUnterminated => {
                "Licence data is incomplete (no final ~), present again"
            }
            Self::Json(_) => "Malformed licence data: likely forged",
            Self::SignatureLength(_) => "Signature has the wrong length: likely forged",
            Self::DuplicateJsonMember(_) => "Licence data repeats a field: likely forged",
            Self::AlgorithmNotAllowed(_) => "Signature algorithm not accepted: likely forged",
            Self::WrongType(_) => "Wrong data type: likely forged",
            Self::CriticalHeader(_) => "Unsupported critical extension",
            Self::MissingKid => "No signing key id: likely forged",
            Self::UnknownKid => "Signing key not registered: likely forged",
            Self::BadSignature => "Invalid signature: tampered or forged",
            Self::IssuerUnknown => "Issuer is not trusted",
            Self::IssuerNotAuthorizedForType => "Issuer may not issue this licence type",
            Self::IssuerKeyOutsideWindow => "Issuer key was not valid at signing time",
            Self::MissingClaim(_) => "Licence lacks a required field",
            Self::InvalidClaim(_) => "Licence field is malformed",
            Self::Expired => "Licence has expired",
            Self::NotYetValid => "Licence is not yet valid",
            Self::IssuedInFuture => "Issued in the future",
            Self::DisclosureMalformed => "Malformed disclosed field: likely forged",
            Self::DisclosureNotReferenced => "Disclosed field does not belong to this licence",
            Self::DisclosureDuplicate => "Disclosed field repeated",
            Self::DigestDuplicate => "Repeated digest: likely forged",
            Self::ReservedClaimName => "Disclosed field uses a reserved name",
            Self::ClaimNameInvalid => "Disclosed field has a malformed name: likely forged",
            Self::ClaimNameConflict => "Disclosed field names conflict",
            Self::UnsupportedDigestAlgorithm => "Unsupported digest algorithm",
            Self::KeyBindingMissing => "No holder device signature",
            Self::HolderKeyMissing => "Licence is not bound to a holder device",
            Self::KeyBindingSignature => "Not presented from the holder's device",
            Self::KeyBindingAudience => "Presented to another verifier",
            Self::KeyBindingNonce => "Challenge mismatch, present again",
            Self::KeyBindingStale => "Presentation too old, refresh and present again",
            Self::KeyBindingFuture => "Presentation time is in the future, check device time",
            Self::KeyBindingSdHash => "Presentation was tampered with",
            Self::WrongHolder => "Licence belongs to someone else",
            Self::Revoked => "Licence has been revoked",
            Self::Suspended => "Licence is suspended",
            Self::StatusUnrecognized => "Unrecognized licence status",
            Self::StatusListMissing => "No status data, sync when online",
            Self::StatusListStale => "Status data out of date, sync when online",
            Self::StatusListSignature => "Status data signature invalid",
            Self::StatusListIssuerMismatch => "Status data is not from the issuer: likely forged",
            Self::StatusIndexOutOfRange => "Status index out of range",
            Self::StatusListMalformed => "Status data corrupted",
            Self::StatusListFromFuture => "Status data is dated in the future, sync when online",
            Self::StatusListKeyOutsideWindow => {
                "Status data signed by a retired key, sync when online"
            }
            Self::BundleSignature => "Trust list signature invalid",
            Self::BundleRollback => "Trust list rollback refused",
            Self::BundleStale => "Trust list out of date, sync when online",
            Self::BundleMalformed => "Trust list is inconsistent",
            Self::ClockSuspect => "Device clock is not trustworthy, set the time and retry",
            Self::UnreadableCode => "Code not readable, ask the holder to present again",
            Self::Replayed => "This code was already used, ask the holder to refresh",
            Self::PrintedCardExpired => "The printed card is past its validity, print a new one",
            Self::PrintedCardInvalid => "The printed card is not valid",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.en(), self.code())
    }
}

impl std::error::Error for Rejection {}
