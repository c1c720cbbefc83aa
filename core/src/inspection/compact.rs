//! The compact QR transport of a presentation: a lossless binary framing of
//! the SD-JWT's parts, deflate-compressed, behind a one-byte version prefix.
//! The verifier rebuilds the exact SD-JWT string (signatures and `sd_hash`
//! are over that text, so "almost the same" would not verify).
//!
//! Version 1 (`0x01`): every base64url segment (the JWTs' headers, payloads
//! and signatures, each disclosure) is carried as its decoded bytes, which
//! saves the 4/3 of base64. Inside the JSON, every quoted base64url value
//! of 32 bytes (digests, the `cnf` key, the `kid`, `sd_hash`) or 16 bytes
//! (salts, nonces) is replaced by a one-byte marker and its raw bytes move
//! to a binary stream, with the signatures: random bytes do not compress,
//! and keeping them out of the text lets deflate code the rest tighter. The
//! text stream is raw deflate with a preset dictionary of the JSON every
//! licence shares (member names, `typ`/`alg` values, the `vct` prefix, claim
//! names), which is what makes small payloads compress at all.
//!
//! Version 3 (`0x03`): version 1 with [`DICTIONARY_P256`], for
//! presentations of licences bound to a P-256 key (ADR 0124).
//!
//! Version 2 (`0x02`): the text itself, deflated with the same dictionary,
//! for anything whose segments are not canonical base64url (it would not
//! verify, but the transport must not be the part that changes it).
//!
//! ```text
//! v1 frame  := 0x01 varint(len) deflate(text) binary
//! text      := flags(u8: bit0 = key binding) jws varint(n) seg{n} [jws]
//! jws       := seg(header) seg(payload) varint(signature length)
//! seg       := varint(len) squeezed-json
//! binary    := the squeezed values and the signatures, in text order
//! ```
//!
//! Decoding is strict: unknown versions, a body that does not end where the
//! framing says, more than [`MAX_DECODED_BYTES`] of output (a deflate bomb)
//! or a segment that is not what its position requires are refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::credential::sd_jwt::{MAX_PRESENTATION_BYTES, split};

/// Version byte of the segment framing.
pub const VERSION_SEGMENTS: u8 = 0x01;
/// Version byte of the deflated text fallback.
pub const VERSION_TEXT: u8 = 0x02;
/// Version byte of the segment framing of a P-256-bound licence: version 1
/// with [`DICTIONARY_P256`] (the EC `cnf` and the ES256 key binding header
/// are in it). Only P-256-bound presentations use it, so an inspector of an
/// older build still reads every Ed25519-bound frame (ADR 0124).
pub const VERSION_SEGMENTS_P256: u8 = 0x03;
/// The most a frame may decode to (a presentation is at most
/// [`MAX_PRESENTATION_BYTES`] of text).
pub const MAX_DECODED_BYTES: usize = MAX_PRESENTATION_BYTES;

/// The preset deflate dictionary of version 1 and 2: strings every licence
/// presentation repeats. Part of the format: never change it, add a version.
/// Deflate prefers matches near the end of the dictionary, so the most
/// common strings come last.
pub const DICTIONARY: &[u8] = concat!(
    "spouse_nameregistration_dateaddressholder_code_typeholder_codelegal_representative",
    "公民身份号码统一社会信用代码长期有效期",
    "\"licence_type_code\"\"issuer_code\"\"issue_date\"\"licence_number\"",
    "\"valid_from\"\"valid_until\"\"issuer_name\"\"holder_name\"\"licence_id\"\"licence_name\"",
    "1.2.156.3005.2.",
    "{\"alg\":\"EdDSA\",\"typ\":\"kb+jwt\"}",
    "{\"iat\":\"aud\":\"inspection\",\"nonce\":\"\",\"sd_hash\":\"",
    "\"status\":{\"status_list\":{\"idx\":,\"uri\":\"https://",
    "/status/\"}},\"cnf\":{\"jwk\":{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"",
    "\"_sd_alg\":\"sha-256\",\"exp\":,\"iat\":,\"iss\":\"urn:zhangban:issuer:",
    "\"nbf\":,\"vct\":\"urn:zhangban:licence-type:",
    "{\"_sd\":[\"",
    "{\"alg\":\"EdDSA\",\"kid\":\"",
    "\",\"typ\":\"dc+sd-jwt\"}",
)
.as_bytes();

/// The preset dictionary of version 3: version 1's, then the strings of a
/// P-256 holder key and an ES256 key binding (last: preferred by deflate).
/// Part of the format: never change it, add a version.
pub const DICTIONARY_P256: &[u8] = concat!(
    "spouse_nameregistration_dateaddressholder_code_typeholder_codelegal_representative",
    "公民身份号码统一社会信用代码长期有效期",
    "\"licence_type_code\"\"issuer_code\"\"issue_date\"\"licence_number\"",
    "\"valid_from\"\"valid_until\"\"issuer_name\"\"holder_name\"\"licence_id\"\"licence_name\"",
    "1.2.156.3005.2.",
    "{\"iat\":\"aud\":\"inspection\",\"nonce\":\"\",\"sd_hash\":\"",
    "\"status\":{\"status_list\":{\"idx\":,\"uri\":\"https://",
    "\"_sd_alg\":\"sha-256\",\"exp\":,\"iat\":,\"iss\":\"urn:zhangban:issuer:",
    "\"nbf\":,\"vct\":\"urn:zhangban:licence-type:",
    "{\"alg\":\"ES256\",\"typ\":\"kb+jwt\"}",
    "/status/\"}},\"cnf\":{\"jwk\":{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"\",\"y\":\"\"}},",
    "{\"_sd\":[\"",
    "{\"alg\":\"EdDSA\",\"kid\":\"",
    "\",\"typ\":\"dc+sd-jwt\"}",
)
.as_bytes();

/// Why a frame could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// Empty input.
    #[error("empty")]
    Empty,
    /// The version byte is not one this build reads.
    #[error("unknown transport version {0}")]
    UnknownVersion(u8),
    /// The compressed body is corrupt or truncated.
    #[error("compressed body is corrupt")]
    Corrupt,
    /// It decodes to more than [`MAX_DECODED_BYTES`].
    #[error("too large")]
    TooLarge,
    /// The framing does not hold (a length beyond the end, bytes left over).
    #[error("framing is invalid")]
    Framing,
    /// The input is not an SD-JWT presentation (for encoding).
    #[error("not an SD-JWT presentation")]
    NotSdJwt,
}

fn deflate(data: &[u8], dictionary: &[u8]) -> Result<Vec<u8>, CompactError> {
    let mut c = Compress::new(Compression::best(), false);
    c.set_dictionary(dictionary)
        .map_err(|_| CompactError::Corrupt)?;
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        let before_in = c.total_in();
        let status = c
            .compress_vec(
                &data[usize::try_from(before_in)
                    .unwrap_or(usize::MAX)
                    .min(data.len())..],
                &mut out,
                FlushCompress::Finish,
            )
            .map_err(|_| CompactError::Corrupt)?;
        match status {
            Status::StreamEnd => return Ok(out),
            _ => out.reserve(out.capacity().max(256)),
        }
    }
}

fn inflate(data: &[u8], dictionary: &[u8]) -> Result<Vec<u8>, CompactError> {
    let mut d = Decompress::new(false);
    d.set_dictionary(dictionary)
        .map_err(|_| CompactError::Corrupt)?;
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let in_before = usize::try_from(d.total_in()).unwrap_or(usize::MAX);
        let out_before = out.len();
        let status = d
            .decompress_vec(
                data.get(in_before..).unwrap_or_default(),
                &mut out,
                FlushDecompress::Finish,
            )
            .map_err(|_| CompactError::Corrupt)?;
        if out.len() > MAX_DECODED_BYTES {
            return Err(CompactError::TooLarge);
        }
        if status == Status::StreamEnd {
            // Bytes after the end of the deflate stream are not ours.
            if usize::try_from(d.total_in()).unwrap_or(usize::MAX) != data.len() {
                return Err(CompactError::Framing);
            }
            return Ok(out);
        }
        if out.len() == out.capacity() {
            out.reserve(4096);
        } else if usize::try_from(d.total_in()).unwrap_or(usize::MAX) == in_before
            && out.len() == out_before
        {
            // No input left, no output, no end of stream: truncated.
            return Err(CompactError::Corrupt);
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).unwrap_or(0) | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).unwrap_or(0));
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CompactError> {
        let b = *self.buf.get(self.pos).ok_or(CompactError::Framing)?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<usize, CompactError> {
        let mut v: usize = 0;
        for shift in [0, 7, 14, 21] {
            let b = self.byte()?;
            v |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                // Minimal encoding only: one value, one byte string.
                if shift > 0 && b == 0 {
                    return Err(CompactError::Framing);
                }
                return Ok(v);
            }
        }
        Err(CompactError::Framing)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CompactError> {
        let end = self.pos.checked_add(n).ok_or(CompactError::Framing)?;
        let s = self.buf.get(self.pos..end).ok_or(CompactError::Framing)?;
        self.pos = end;
        Ok(s)
    }

    fn seg(&mut self) -> Result<&'a [u8], CompactError> {
        let n = self.varint()?;
        self.take(n)
    }
}

/// The canonical bytes of a base64url segment, or `None` if it is not
/// canonical unpadded base64url (so the framing would not be lossless).
fn canonical(seg: &str) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(seg).ok()?;
    (URL_SAFE_NO_PAD.encode(&bytes) == seg).then_some(bytes)
}

/// Marker of a squeezed 32-byte value (a digest, a key, a thumbprint).
const MARK_32: u8 = 0x01;
/// Marker of a squeezed 16-byte value (a salt, a nonce).
const MARK_16: u8 = 0x02;

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Replaces every quoted canonical base64url string of 32 or 16 bytes in
/// `json` by a marker, moving its bytes to `binary`. `None` if `json`
/// already holds a marker byte (the squeeze would not be reversible).
fn squeeze(json: &[u8], binary: &mut Vec<u8>) -> Option<Vec<u8>> {
    if json.iter().any(|b| *b == MARK_32 || *b == MARK_16) {
        return None;
    }
    let mut out = Vec::with_capacity(json.len());
    let mut i = 0;
    while i < json.len() {
        out.push(json[i]);
        if json[i] == b'"' {
            let run = json[i + 1..].iter().take_while(|b| is_b64url(**b)).count();
            let end = i + 1 + run;
            if matches!(run, 43 | 22) && json.get(end) == Some(&b'"') {
                let text = std::str::from_utf8(&json[i + 1..end]).ok()?;
                if let Some(bytes) = canonical(text) {
                    out.push(if run == 43 { MARK_32 } else { MARK_16 });
                    binary.extend_from_slice(&bytes);
                    i = end;
                    continue;
                }
            }
        }
        i += 1;
    }
    Some(out)
}

/// Undoes [`squeeze`], taking the values from `binary` in order.
fn expand(text: &[u8], binary: &mut Reader<'_>) -> Result<Vec<u8>, CompactError> {
    let mut out = Vec::with_capacity(text.len() + 64);
    for &b in text {
        let n = match b {
            MARK_32 => 32,
            MARK_16 => 16,
            other => {
                out.push(other);
                continue;
            }
        };
        let bytes = binary.take(n)?;
        out.extend_from_slice(URL_SAFE_NO_PAD.encode(bytes).as_bytes());
    }
    Ok(out)
}

/// The decoded header, payload and signature of a compact JWS.
fn jws_segments(jws: &str) -> Option<[Vec<u8>; 3]> {
    let mut it = jws.split('.');
    let (h, p, s) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    Some([canonical(h)?, canonical(p)?, canonical(s)?])
}

/// Writes a JWS: header and payload squeezed into `text`, the signature
/// (its length in `text`) into `binary`.
fn put_jws(seg: &[Vec<u8>; 3], text: &mut Vec<u8>, binary: &mut Vec<u8>) -> Option<()> {
    for json in &seg[..2] {
        let sq = squeeze(json, binary)?;
        put_varint(text, sq.len());
        text.extend_from_slice(&sq);
    }
    put_varint(text, seg[2].len());
    binary.extend_from_slice(&seg[2]);
    Some(())
}

/// Version 1 body: the squeezed text stream and the binary stream.
fn segments_body(presentation: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let parts = split(presentation).ok()?;
    let issuer = jws_segments(parts.issuer_jwt)?;
    let kb = match parts.kb_jwt {
        Some(k) => Some(jws_segments(k)?),
        None => None,
    };
    let mut text = Vec::with_capacity(presentation.len());
    let mut binary = Vec::with_capacity(512);
    text.push(u8::from(kb.is_some()));
    put_jws(&issuer, &mut text, &mut binary)?;
    put_varint(&mut text, parts.disclosures.len());
    for d in &parts.disclosures {
        let sq = squeeze(&canonical(d)?, &mut binary)?;
        put_varint(&mut text, sq.len());
        text.extend_from_slice(&sq);
    }
    if let Some(kb) = &kb {
        put_jws(kb, &mut text, &mut binary)?;
    }
    Some((text, binary))
}

/// Encodes a presentation for a QR code.
pub fn encode(presentation: &str) -> Result<Vec<u8>, CompactError> {
    if presentation.is_empty() {
        return Err(CompactError::Empty);
    }
    if presentation.len() > MAX_DECODED_BYTES || !presentation.contains('~') {
        return Err(CompactError::NotSdJwt);
    }
    match segments_body(presentation) {
        Some((text, binary)) => {
            let p256 = text.windows(P256_MARK.len()).any(|w| w == P256_MARK);
            let (version, dictionary) = if p256 {
                (VERSION_SEGMENTS_P256, DICTIONARY_P256)
            } else {
                (VERSION_SEGMENTS, DICTIONARY)
            };
            let deflated = deflate(&text, dictionary)?;
            let mut out = vec![version];
            put_varint(&mut out, deflated.len());
            out.extend(deflated);
            out.extend(binary);
            Ok(out)
        }
        None => {
            let mut out = vec![VERSION_TEXT];
            out.extend(deflate(presentation.as_bytes(), DICTIONARY)?);
            Ok(out)
        }
    }
}

/// How the framed text of a P-256-bound licence shows it (its `cnf`).
const P256_MARK: &[u8] = b"\"crv\":\"P-256\"";

/// Reads one base64url JWS segment group back: header, payload, signature.
fn jws_text(
    out: &mut String,
    text: &mut Reader<'_>,
    binary: &mut Reader<'_>,
) -> Result<(), CompactError> {
    for _ in 0..2 {
        let json = expand(text.seg()?, binary)?;
        URL_SAFE_NO_PAD.encode_string(json, out);
        out.push('.');
    }
    let n = text.varint()?;
    URL_SAFE_NO_PAD.encode_string(binary.take(n)?, out);
    Ok(())
}

/// Decodes a QR frame back to the exact presentation text.
pub fn decode(frame: &[u8]) -> Result<String, CompactError> {
    let (&version, rest) = frame.split_first().ok_or(CompactError::Empty)?;
    match version {
        VERSION_SEGMENTS | VERSION_SEGMENTS_P256 => {
            let dictionary = if version == VERSION_SEGMENTS {
                DICTIONARY
            } else {
                DICTIONARY_P256
            };
            let mut outer = Reader { buf: rest, pos: 0 };
            let deflated = outer.seg()?;
            let mut binary = Reader {
                buf: &rest[outer.pos..],
                pos: 0,
            };
            let body = inflate(deflated, dictionary)?;
            let mut r = Reader { buf: &body, pos: 0 };
            let flags = r.byte()?;
            if flags > 1 {
                return Err(CompactError::Framing);
            }
            let mut text = String::with_capacity(body.len() * 2 + binary.buf.len() * 2);
            jws_text(&mut text, &mut r, &mut binary)?;
            text.push('~');
            let n = r.varint()?;
            for _ in 0..n {
                let d = expand(r.seg()?, &mut binary)?;
                if d.is_empty() {
                    return Err(CompactError::Framing);
                }
                URL_SAFE_NO_PAD.encode_string(d, &mut text);
                text.push('~');
                if text.len() > MAX_DECODED_BYTES {
                    return Err(CompactError::TooLarge);
                }
            }
            if flags == 1 {
                jws_text(&mut text, &mut r, &mut binary)?;
            }
            if r.pos != body.len() || binary.pos != binary.buf.len() {
                return Err(CompactError::Framing);
            }
            if text.len() > MAX_DECODED_BYTES {
                return Err(CompactError::TooLarge);
            }
            Ok(text)
        }
        VERSION_TEXT => {
            let body = inflate(rest, DICTIONARY)?;
            String::from_utf8(body).map_err(|_| CompactError::Framing)
        }
        other => Err(CompactError::UnknownVersion(other)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn varints_are_minimal() {
        let mut v = Vec::new();
        for n in [0usize, 1, 127, 128, 300, 16_383, 16_384, 2_000_000] {
            v.clear();
            put_varint(&mut v, n);
            let mut r = Reader { buf: &v, pos: 0 };
            assert_eq!(r.varint().unwrap(), n);
            assert_eq!(r.pos, v.len());
        }
        // 0x80 0x00 is a non-minimal zero.
        let mut r = Reader {
            buf: &[0x80, 0x00],
            pos: 0,
        };
        assert_eq!(r.varint(), Err(CompactError::Framing));
    }

    #[test]
    fn the_dictionary_round_trips_plain_text() {
        let text = "eyJhbGciOiJFZERTQSJ9.e30.c2ln~WyJzIiwibiIsInYiXQ~";
        let f = encode(text).unwrap();
        assert_eq!(decode(&f).unwrap(), text);
    }
}
