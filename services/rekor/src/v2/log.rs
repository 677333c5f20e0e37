//! The v2 log: the same durable store and Merkle tree as v1, entries answered with a
//! `TransparencyLogEntry` once a checkpoint covers them, checkpoints signed as C2SP notes.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sigstack_state::{StateError, load_or_create_private};
use tokio::sync::{mpsc, oneshot};

use super::entry::{EntryV2, HashedRekordRequestV002, RawBytes, Signature, Verifier, hashed_rekord};
use super::note::NoteSigner;
use super::tiles::{TilePath, entry_bundle, hash_tile};
use crate::RekorError;
use crate::merkle::{Hash, MerkleTree, leaf_hash};
use crate::storage::{LogFile, read_record};

/// Most entries integrated under one fsync and one checkpoint.
const MAX_BATCH: usize = 1024;

/// `logId` of a `TransparencyLogEntry`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogId {
    /// Base64 of the 32-byte checkpoint key ID.
    pub key_id: String,
}

/// `kindVersion`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KindVersion {
    /// `hashedrekord` (or `dsse` in compatibility mode).
    pub kind: String,
    /// `0.0.2`.
    pub version: String,
}

/// `checkpoint` of an inclusion proof.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// The signed note.
    pub envelope: String,
}

/// `inclusionProof` (protojson: int64 as strings, bytes as base64).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// Index of the entry.
    pub log_index: String,
    /// Base64 root of the tree of `tree_size`.
    pub root_hash: String,
    /// Size of the tree the proof is for.
    pub tree_size: String,
    /// Base64 audit path, leaf to root.
    pub hashes: Vec<String>,
    /// The checkpoint of that tree.
    pub checkpoint: Checkpoint,
}

/// `dev.sigstore.rekor.v1.TransparencyLogEntry` as a v2 log answers it: no inclusion promise,
/// `integratedTime` 0 (the time comes from a timestamp authority).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TransparencyLogEntry {
    /// Index in the log.
    pub log_index: String,
    /// The checkpoint key's ID.
    pub log_id: LogId,
    /// Kind and version of the body.
    pub kind_version: KindVersion,
    /// Always `"0"` on a v2 log.
    pub integrated_time: String,
    /// Proof against the checkpoint that first covered the entry.
    pub inclusion_proof: InclusionProof,
    /// Base64 canonical body.
    pub canonicalized_body: String,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    /// PKCS#8 Ed25519 checkpoint key, base64.
    key_pkcs8: String,
}

struct State {
    tree: MerkleTree,
    offsets: Vec<u64>,
    by_leaf: HashMap<Hash, u64>,
    /// The latest checkpoint: it covers the whole tree (one per integrated batch).
    checkpoint: String,
}

struct Pending {
    entry: EntryV2,
    reply: oneshot::Sender<Result<TransparencyLogEntry, RekorError>>,
}

struct Shared {
    state: RwLock<State>,
    reader: std::fs::File,
    signer: NoteSigner,
    accept_dsse: bool,
}

/// How a v2 log behaves beyond the protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct TileLogOptions {
    /// Take the deprecated `dsseRequestV002` (rekor-tiles ≤ 2.2; sigstore-js still sends it).
    pub accept_dsse: bool,
}

/// A Rekor v2 (tiles) log.
#[derive(Clone)]
pub struct TileLog {
    shared: Arc<Shared>,
    writer: mpsc::Sender<Pending>,
}

fn internal(context: &str) -> impl Fn(String) -> RekorError + '_ {
    move |e| RekorError::Internal(format!("{context}: {e}"))
}

impl TileLog {
    /// Opens the v2 log stored in `dir`, its checkpoints named `origin` (the bare host of the
    /// log's URL: sigstore-go verifies notes under `url.Hostname()`).
    pub fn open(dir: &Path, origin: &str, options: TileLogOptions) -> Result<Self, RekorError> {
        sigstack_state::ensure_private_dir(dir)?;
        let rng = SystemRandom::new();
        let key_path = dir.join("key.json");
        let key_file: KeyFile = load_or_create_private(
            &key_path,
            || {
                let pkcs8 =
                    Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| StateError::corrupt(&key_path, e.to_string()))?;
                serde_json::to_vec_pretty(&KeyFile { key_pkcs8: B64.encode(pkcs8.as_ref()) })
                    .map_err(|e| StateError::corrupt(&key_path, e.to_string()))
            },
            |bytes| serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        )?;
        let pkcs8 = B64.decode(&key_file.key_pkcs8).map_err(|e| internal("checkpoint key")(e.to_string()))?;
        let key = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| internal("checkpoint key")(e.to_string()))?;
        let signer = NoteSigner::new(origin, key)?;

        let storage = |e: std::io::Error| RekorError::Storage(format!("{}: {e}", dir.display()));
        let (mut file, mut recovered, repair) = LogFile::open(dir).map_err(storage)?;
        if repair.discarded_bytes > 0 {
            tracing::warn!(bytes = repair.discarded_bytes, "discarded a torn, never-acknowledged tail of the v2 log");
        }
        if recovered.is_empty() {
            let genesis = genesis(origin)?;
            let now = unix_now();
            recovered = file.append(&[(now, &genesis.body, leaf_hash(&genesis.body))]).map_err(storage)?;
        }
        let mut state =
            State { tree: MerkleTree::new(), offsets: Vec::new(), by_leaf: HashMap::new(), checkpoint: String::new() };
        for record in recovered {
            state.by_leaf.insert(record.leaf_hash, state.tree.size());
            state.tree.push(record.leaf_hash);
            state.offsets.push(record.offset);
        }
        let size = state.tree.size();
        state.checkpoint = signer.checkpoint(size, &state.tree.root(size).unwrap_or_default());
        let reader = std::fs::File::open(dir.join("entries.log")).map_err(storage)?;
        let shared = Arc::new(Shared { state: RwLock::new(state), reader, signer, accept_dsse: options.accept_dsse });
        let (writer, receiver) = mpsc::channel(MAX_BATCH * 4);
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("rekor-v2-writer".into())
            .spawn(move || writer_loop(writer_shared, file, receiver))
            .map_err(|e| RekorError::Internal(e.to_string()))?;
        Ok(TileLog { shared, writer })
    }

    /// Checks a `CreateEntryRequest` and appends it; answers once it is durable and a signed
    /// checkpoint covers it.
    pub async fn create_entry(&self, request: &[u8]) -> Result<TransparencyLogEntry, RekorError> {
        let entry = super::entry::create_entry(request, self.shared.accept_dsse)?;
        self.append(entry).await
    }

    /// Appends a checked entry.
    pub async fn append(&self, entry: EntryV2) -> Result<TransparencyLogEntry, RekorError> {
        let (reply, receive) = oneshot::channel();
        self.writer
            .send(Pending { entry, reply })
            .await
            .map_err(|_| RekorError::Internal("log writer stopped".into()))?;
        receive.await.map_err(|_| RekorError::Internal("log writer stopped".into()))?
    }

    /// The checkpoint names (the log's origin).
    pub fn origin(&self) -> &str {
        self.shared.signer.name()
    }

    /// The 32-byte checkpoint key ID: `logId.keyId` in entries and trusted roots.
    pub fn key_id(&self) -> [u8; 32] {
        *self.shared.signer.key_id()
    }

    /// The Ed25519 checkpoint key, DER SPKI (`PKIX_ED25519` in trusted roots).
    pub fn public_key_der(&self) -> Result<Vec<u8>, RekorError> {
        self.shared.signer.public_key_spki()
    }

    /// Number of entries.
    pub fn size(&self) -> Result<u64, RekorError> {
        Ok(self.shared.read_state()?.tree.size())
    }

    /// The latest checkpoint.
    pub fn checkpoint(&self) -> Result<String, RekorError> {
        Ok(self.shared.read_state()?.checkpoint.clone())
    }

    /// A tile or entry bundle as of the latest checkpoint; `None` when the tree does not have it.
    pub fn tile(&self, tile: &TilePath) -> Result<Option<Vec<u8>>, RekorError> {
        let state = self.shared.read_state()?;
        let size = state.tree.size();
        match tile {
            TilePath::Hashes { .. } => Ok(hash_tile(&state.tree, tile, size)),
            TilePath::Entries { .. } => {
                let Some(range) = tile.range(size) else { return Ok(None) };
                let bodies = range
                    .map(|i| self.shared.read_body(state.offsets[i as usize]).map(|(_, body)| body))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(entry_bundle(bodies.iter().map(Vec::as_slice))))
            }
        }
    }

    /// The canonical body of the entry at `index` and when it was integrated (unix seconds).
    pub fn body(&self, index: u64) -> Result<(i64, Vec<u8>), RekorError> {
        let state = self.shared.read_state()?;
        let offset = state.offsets.get(index as usize).copied().ok_or_else(|| {
            RekorError::NotFound(format!("no entry at index {index} (log size {})", state.tree.size()))
        })?;
        self.shared.read_body(offset)
    }
}

impl Shared {
    fn read_state(&self) -> Result<std::sync::RwLockReadGuard<'_, State>, RekorError> {
        self.state.read().map_err(|_| RekorError::Internal("log state poisoned".into()))
    }

    fn read_body(&self, offset: u64) -> Result<(i64, Vec<u8>), RekorError> {
        read_record(&self.reader, offset).map_err(|e| RekorError::Storage(e.to_string()))
    }

    fn entry(&self, state: &State, index: u64, kind: &str, body: &[u8]) -> Result<TransparencyLogEntry, RekorError> {
        let size = state.tree.size();
        let proof =
            state.tree.inclusion_proof(index, size).ok_or_else(|| RekorError::Internal("entry beyond tree".into()))?;
        let root = state.tree.root(size).ok_or_else(|| RekorError::Internal("root".into()))?;
        Ok(TransparencyLogEntry {
            log_index: index.to_string(),
            log_id: LogId { key_id: B64.encode(self.signer.key_id()) },
            kind_version: KindVersion { kind: kind.to_string(), version: "0.0.2".into() },
            integrated_time: "0".into(),
            inclusion_proof: InclusionProof {
                log_index: index.to_string(),
                root_hash: B64.encode(root),
                tree_size: size.to_string(),
                hashes: proof.iter().map(|h| B64.encode(h)).collect(),
                checkpoint: Checkpoint { envelope: state.checkpoint.clone() },
            },
            canonicalized_body: B64.encode(body),
        })
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

/// Index 0: an entry the log makes itself, for the reason v1 has one (protojson drops zero
/// values, so a client's entry at index 0 would lose its `logIndex` in bundles). A real
/// hashedrekord 0.0.2, signed by a throwaway P-256 key over a sentence naming the log.
fn genesis(origin: &str) -> Result<EntryV2, RekorError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|e| internal("genesis")(e.to_string()))?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .map_err(|e| internal("genesis")(e.to_string()))?;
    let statement = format!("sigstack Rekor v2 log {origin}: genesis entry");
    let signature = key.sign(&rng, statement.as_bytes()).map_err(|e| internal("genesis")(e.to_string()))?;
    let spki = key.public_key().as_der().map_err(|e| internal("genesis")(e.to_string()))?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, statement.as_bytes());
    hashed_rekord(&HashedRekordRequestV002 {
        digest: B64.encode(digest.as_ref()),
        signature: Some(Signature {
            content: B64.encode(signature.as_ref()),
            verifier: Some(Verifier {
                public_key: Some(RawBytes { raw_bytes: B64.encode(spki.as_ref()) }),
                x509_certificate: None,
                key_details: "PKIX_ECDSA_P256_SHA_256".into(),
            }),
        }),
    })
}

fn writer_loop(shared: Arc<Shared>, mut file: LogFile, mut receiver: mpsc::Receiver<Pending>) {
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        integrate(&shared, &mut file, batch);
    }
}

/// One group commit: refuse duplicates (with the index of the entry already there), write and
/// fsync the batch, extend the tree, sign one checkpoint, answer every caller.
fn integrate(shared: &Shared, file: &mut LogFile, batch: Vec<Pending>) {
    let mut accepted: Vec<(Pending, Hash)> = Vec::new();
    {
        let state = match shared.read_state() {
            Ok(state) => state,
            Err(e) => {
                return batch.into_iter().for_each(|p| drop(p.reply.send(Err(RekorError::Internal(e.to_string())))));
            }
        };
        let mut in_batch: HashMap<Hash, u64> = HashMap::new();
        for pending in batch {
            let leaf = leaf_hash(&pending.entry.body);
            if let Some(&log_index) = state.by_leaf.get(&leaf).or_else(|| in_batch.get(&leaf)) {
                let _ = pending.reply.send(Err(RekorError::Duplicate { log_index }));
                continue;
            }
            in_batch.insert(leaf, state.tree.size() + accepted.len() as u64);
            accepted.push((pending, leaf));
        }
    }
    if accepted.is_empty() {
        return;
    }
    let time = unix_now();
    let records: Vec<(i64, &[u8], Hash)> =
        accepted.iter().map(|(p, leaf)| (time, p.entry.body.as_slice(), *leaf)).collect();
    let stored = match file.append(&records) {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(error = %e, "v2 log append failed; nothing of this batch was acknowledged");
            return accepted.into_iter().for_each(|(p, _)| drop(p.reply.send(Err(RekorError::Storage(e.to_string())))));
        }
    };
    let mut state = match shared.state.write() {
        Ok(state) => state,
        Err(_) => {
            return accepted
                .into_iter()
                .for_each(|(p, _)| drop(p.reply.send(Err(RekorError::Internal("log state poisoned".into())))));
        }
    };
    let first_index = state.tree.size();
    for record in &stored {
        let index = state.tree.size();
        state.by_leaf.insert(record.leaf_hash, index);
        state.tree.push(record.leaf_hash);
        state.offsets.push(record.offset);
    }
    let size = state.tree.size();
    let root = state.tree.root(size).unwrap_or_default();
    state.checkpoint = shared.signer.checkpoint(size, &root);
    let state = std::sync::RwLockWriteGuard::downgrade(state);
    for (i, (pending, _)) in accepted.into_iter().enumerate() {
        let result = shared.entry(&state, first_index + i as u64, pending.entry.kind, &pending.entry.body);
        let _ = pending.reply.send(result);
    }
}
