//! Rekor v2 (rekor-tiles): `POST /api/v2/log/entries` with protojson in and out, checkpoints as
//! C2SP signed notes with an Ed25519 key, reads as C2SP tlog-tiles. The storage, the Merkle tree
//! and the group commit are v1's.

mod entry;
mod http;
mod log;
mod note;
mod tiles;

pub use entry::{
    CreateEntryRequest, DsseRequestV002, EntryV2, Envelope, EnvelopeSignature, HashedRekordRequestV002, RawBytes,
    Signature, Verifier, create_entry,
};
pub use http::{MAX_BODY_BYTES, router};
pub use log::{Checkpoint, InclusionProof, KindVersion, LogId, TileLog, TileLogOptions, TransparencyLogEntry};
pub use note::{VerifiedCheckpoint, note_key_id, verify_checkpoint};
pub use tiles::{TILE_WIDTH, TilePath, encode_index, entry_bundle, hash_tile};
