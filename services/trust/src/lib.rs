//! Trust material of a stack, as Sigstore clients read it.
//!
//! Wire types follow the protobuf-specs messages (`TrustedRoot`, `SigningConfig`,
//! `ClientTrustConfig`) in their JSON form, with the exact media types clients insist on:
//! sigstore-go and sigstore-python refuse anything but
//! `application/vnd.dev.sigstore.trustedroot+json;version=0.1`. Written by the stack, read back by
//! sigstack's own verifier, so there is one definition of each.
#![deny(missing_docs)]
#![warn(unreachable_pub)]
#![forbid(unsafe_code)]

mod files;
mod model;

pub use files::{LogKey, TRUST_FILES, TrustFiles, TsaKey, V2LogKey, write_trust_dir};
pub use model::{
    CLIENT_TRUST_CONFIG_MEDIA_TYPE, CertificateAuthority, CertificateChain, ClientTrustConfig, DistinguishedName,
    LogId, PublicKey, RawCertificate, SIGNING_CONFIG_MEDIA_TYPE, Selector, Service, ServiceSelector, SigningConfig,
    TRUSTED_ROOT_MEDIA_TYPE, TimeRange, TransparencyLogInstance, TrustedRoot,
};
