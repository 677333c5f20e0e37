//! Base64 as protobuf's JSON mapping reads `bytes` fields: standard or URL-safe alphabet, padded
//! or not, and (Go's decoder, which sigstore-go's protojson uses) with line breaks ignored, so a
//! bundle whose base64 was wrapped by `openssl base64` is read as sigstore-go reads it.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Decodes a protojson `bytes` value; `None` when it is not base64 in any of its forms.
pub(crate) fn decode_b64(text: &str) -> Option<Vec<u8>> {
    let text: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|engine| engine.decode(&text).ok())
}
