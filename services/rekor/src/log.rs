//! The log: durable group-committed appends, the Merkle tree, checkpoints and SETs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sigstack_state::{StateError, load_or_create_private};
use tokio::sync::{mpsc, oneshot};

use crate::RekorError;
use crate::entries::hex;
use crate::index::SearchIndex;
use crate::merkle::{Hash, MerkleTree, leaf_hash};
use crate::storage::{AttestationFile, LogFile};

/// Most entries integrated under one fsync and one checkpoint signature.
const MAX_BATCH: usize = 1024;

/// `verification.inclusionProof` of a v1 entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProof {
    /// Signed note of a tree that contains the entry.
    pub checkpoint: String,
    /// Audit path, hex, leaf to root.
    pub hashes: Vec<String>,
    /// Index within the tree.
    pub log_index: u64,
    /// Root of the tree of `tree_size` leaves, hex.
    pub root_hash: String,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
}

/// `verification` of a v1 entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// Inclusion proof and checkpoint.
    pub inclusion_proof: InclusionProof,
    /// Base64 DER ECDSA signature over the canonical `{body, integratedTime, logID, logIndex}`.
    pub signed_entry_timestamp: String,
}

/// A v1 `LogEntry` value (the map key is its UUID).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Base64 of the canonical body.
    pub body: String,
    /// Unix seconds.
    pub integrated_time: i64,
    /// Hex SHA-256 of the log key's DER SPKI.
    #[serde(rename = "logID")]
    pub log_id: String,
    /// Index in the log.
    pub log_index: u64,
    /// Proofs.
    pub verification: Verification,
}

/// `GET /api/v1/log`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogInfo {
    /// Current root, hex.
    pub root_hash: String,
    /// Current size.
    pub tree_size: u64,
    /// Checkpoint of that tree.
    pub signed_tree_head: String,
    /// Tree ID, decimal string.
    #[serde(rename = "treeID")]
    pub tree_id: String,
    /// Always empty: one shard.
    pub inactive_shards: Vec<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    key_pkcs8: String,
    tree_id: i64,
}

struct State {
    tree: MerkleTree,
    offsets: Vec<u64>,
    by_leaf: HashMap<Hash, u64>,
    checkpoint: (u64, String),
}

struct Pending {
    body: Vec<u8>,
    statement: Option<Vec<u8>>,
    reply: oneshot::Sender<Result<(String, LogEntry), RekorError>>,
}

struct Shared {
    state: RwLock<State>,
    search: std::sync::Mutex<SearchIndex>,
    reader: std::fs::File,
    /// Offsets in `attestations.log` of the stored statements, by log index.
    statements: RwLock<HashMap<u64, u64>>,
    statement_reader: std::fs::File,
    key: EcdsaKeyPair,
    spki_der: Vec<u8>,
    log_id: [u8; 32],
    tree_id: i64,
    origin_name: String,
    rng: SystemRandom,
}

/// A Rekor-style log.
#[derive(Clone)]
pub struct TransparencyLog {
    shared: Arc<Shared>,
    writer: mpsc::Sender<Pending>,
}

impl TransparencyLog {
    /// Opens the log stored in `dir` (key, tree ID, entries), recovering from any torn tail, and
    /// starts its writer thread. `origin_name` is the host name in checkpoints.
    pub fn open(dir: &Path, origin_name: &str) -> Result<Self, RekorError> {
        sigstack_state::ensure_private_dir(dir)?;
        let rng = SystemRandom::new();
        let key_path = dir.join("key.json");
        let key_file: KeyFile = load_or_create_private(
            &key_path,
            || {
                let corrupt = |e: String| StateError::corrupt(&key_path, e);
                let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                    .map_err(|e| corrupt(e.to_string()))?;
                let mut id = [0u8; 8];
                rng.fill(&mut id).map_err(|e| corrupt(e.to_string()))?;
                let tree_id = (i64::from_be_bytes(id) & i64::MAX).max(1);
                serde_json::to_vec_pretty(&KeyFile { key_pkcs8: B64.encode(pkcs8.as_ref()), tree_id })
                    .map_err(|e| corrupt(e.to_string()))
            },
            |bytes| serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        )?;
        let pkcs8 = B64.decode(&key_file.key_pkcs8).map_err(|e| RekorError::Internal(format!("log key: {e}")))?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
            .map_err(|e| RekorError::Internal(format!("log key: {e}")))?;
        let spki_der = key.public_key().as_der().map_err(|e| RekorError::Internal(e.to_string()))?.as_ref().to_vec();
        let mut log_id = [0u8; 32];
        log_id.copy_from_slice(digest(&SHA256, &spki_der).as_ref());

        let log_path = dir.join("entries.log");
        let (mut file, mut recovered, repair) =
            LogFile::open(dir).map_err(|e| RekorError::Storage(format!("{}: {e}", dir.display())))?;
        if repair.discarded_bytes > 0 {
            tracing::warn!(bytes = repair.discarded_bytes, "discarded a torn, never-acknowledged tail of the log");
        }
        if repair.reindexed > 0 {
            tracing::warn!(entries = repair.reindexed, "indexed whole entries a crash left out of the index");
        }
        let mut state = State {
            tree: MerkleTree::new(),
            offsets: Vec::new(),
            by_leaf: HashMap::new(),
            checkpoint: (0, String::new()),
        };
        if recovered.is_empty() {
            recovered = genesis(&mut file, &key, &spki_der, key_file.tree_id, &rng)?;
        }
        for record in recovered {
            state.by_leaf.insert(record.leaf_hash, state.tree.size());
            state.tree.push(record.leaf_hash);
            state.offsets.push(record.offset);
        }
        let reader = std::fs::File::open(&log_path).map_err(|e| RekorError::Storage(e.to_string()))?;
        let storage_error = |e: std::io::Error| RekorError::Storage(format!("{}: {e}", dir.display()));
        let (statement_file, statements) = AttestationFile::open(dir, state.tree.size()).map_err(storage_error)?;
        let statement_reader = std::fs::File::open(dir.join("attestations.log")).map_err(storage_error)?;
        let (writer, receiver) = mpsc::channel(MAX_BATCH * 4);
        let shared = Arc::new(Shared {
            state: RwLock::new(state),
            search: std::sync::Mutex::new(SearchIndex::default()),
            reader,
            statements: RwLock::new(statements.into_iter().collect()),
            statement_reader,
            key,
            spki_der,
            log_id,
            tree_id: key_file.tree_id,
            origin_name: origin_name.to_string(),
            rng,
        });
        {
            let size = shared.read_state()?.tree.size();
            let checkpoint = shared.sign_checkpoint(&shared.read_state()?.tree, size)?;
            shared.write_state()?.checkpoint = (size, checkpoint);
        }
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("rekor-writer".into())
            .spawn(move || writer_loop(writer_shared, file, statement_file, receiver))
            .map_err(|e| RekorError::Internal(e.to_string()))?;
        Ok(TransparencyLog { shared, writer })
    }

    /// Appends a canonical body (with the in-toto statement of an attestation entry, kept for the
    /// search index); answers once it is durable and in a signed tree.
    pub async fn append(&self, body: Vec<u8>, statement: Option<Vec<u8>>) -> Result<(String, LogEntry), RekorError> {
        let (reply, receive) = oneshot::channel();
        self.writer
            .send(Pending { body, statement, reply })
            .await
            .map_err(|_| RekorError::Internal("log writer stopped".into()))?;
        receive.await.map_err(|_| RekorError::Internal("log writer stopped".into()))?
    }

    /// The log's public key, DER SPKI.
    pub fn public_key_der(&self) -> &[u8] {
        &self.shared.spki_der
    }

    /// Hex log ID.
    pub fn log_id_hex(&self) -> String {
        hex(&self.shared.log_id)
    }

    /// The tree ID.
    pub fn tree_id(&self) -> i64 {
        self.shared.tree_id
    }

    /// Number of entries.
    pub fn size(&self) -> Result<u64, RekorError> {
        Ok(self.shared.read_state()?.tree.size())
    }

    /// The entry at `index`, with a proof against the latest checkpoint.
    pub fn entry_by_index(&self, index: u64) -> Result<(String, LogEntry), RekorError> {
        let state = self.shared.read_state()?;
        if index >= state.tree.size() {
            return Err(RekorError::NotFound(format!("no entry at logIndex {index} (log size {})", state.tree.size())));
        }
        let (time, body) = self.shared.read_body(state.offsets[index as usize])?;
        self.shared.entry(&state, index, time, &body)
    }

    /// The entry whose leaf hash is `leaf` (the last 64 hex digits of its UUID).
    pub fn entry_by_leaf(&self, leaf: &Hash) -> Result<(String, LogEntry), RekorError> {
        let index = self.shared.read_state()?.by_leaf.get(leaf).copied();
        match index {
            Some(index) => self.entry_by_index(index),
            None => Err(RekorError::NotFound(format!("no entry with UUID {}", hex(leaf)))),
        }
    }

    /// `POST /api/v1/index/retrieve`: UUIDs (80-hex) of entries carrying any (`all == false`) or
    /// every (`all == true`) of the index keys.
    pub fn search(&self, keys: &[String], all: bool) -> Result<Vec<String>, RekorError> {
        let mut search = self.shared.search.lock().map_err(|_| RekorError::Internal("search index poisoned".into()))?;
        let state = self.shared.read_state()?;
        for index in search.indexed..state.tree.size() {
            let (_, body) = self.shared.read_body(state.offsets[index as usize])?;
            let statement = self.shared.read_statement(index)?;
            search.add(index, &body, statement.as_deref());
        }
        let mut sets =
            keys.iter().map(|key| search.lookup(key).iter().copied().collect::<std::collections::BTreeSet<u64>>());
        let Some(first) = sets.next() else { return Ok(Vec::new()) };
        let found = sets.fold(first, |acc, set| if all { &acc & &set } else { &acc | &set });
        Ok(found.into_iter().filter_map(|i| state.tree.leaf(i).map(|leaf| self.shared.uuid(leaf))).collect())
    }

    /// `GET /api/v1/log`.
    pub fn info(&self) -> Result<LogInfo, RekorError> {
        let state = self.shared.read_state()?;
        let (size, checkpoint) = state.checkpoint.clone();
        let root = state.tree.root(size).ok_or_else(|| RekorError::Internal("checkpoint beyond tree".into()))?;
        Ok(LogInfo {
            root_hash: hex(&root),
            tree_size: size,
            signed_tree_head: checkpoint,
            tree_id: self.shared.tree_id.to_string(),
            inactive_shards: vec![],
        })
    }

    /// Consistency proof between two tree sizes: (root of `last`, hashes).
    pub fn consistency(&self, first: u64, last: u64) -> Result<(String, Vec<String>), RekorError> {
        let state = self.shared.read_state()?;
        let size = state.tree.size();
        if first > last {
            return Err(RekorError::InvalidQuery(format!("firstSize {first} is larger than lastSize {last}")));
        }
        if last > size {
            return Err(RekorError::InvalidQuery(format!("lastSize {last} is beyond the log size {size}")));
        }
        let proof = state.tree.consistency_proof(first, last).ok_or_else(|| RekorError::Internal("proof".into()))?;
        let root = state.tree.root(last).ok_or_else(|| RekorError::Internal("root".into()))?;
        Ok((hex(&root), proof.iter().map(|h| hex(h)).collect()))
    }
}

impl Shared {
    fn read_state(&self) -> Result<std::sync::RwLockReadGuard<'_, State>, RekorError> {
        self.state.read().map_err(|_| RekorError::Internal("log state poisoned".into()))
    }

    fn write_state(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>, RekorError> {
        self.state.write().map_err(|_| RekorError::Internal("log state poisoned".into()))
    }

    fn read_body(&self, offset: u64) -> Result<(i64, Vec<u8>), RekorError> {
        crate::storage::read_record(&self.reader, offset).map_err(|e| RekorError::Storage(e.to_string()))
    }

    /// The stored in-toto statement of the entry at `index`, if it is an attestation.
    fn read_statement(&self, index: u64) -> Result<Option<Vec<u8>>, RekorError> {
        let offset = self
            .statements
            .read()
            .map_err(|_| RekorError::Internal("statement index poisoned".into()))?
            .get(&index)
            .copied();
        offset
            .map(|offset| {
                crate::storage::read_record(&self.statement_reader, offset)
                    .map(|(_, statement)| statement)
                    .map_err(|e| RekorError::Storage(e.to_string()))
            })
            .transpose()
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, RekorError> {
        Ok(self
            .key
            .sign(&self.rng, message)
            .map_err(|e| RekorError::Internal(format!("signing: {e}")))?
            .as_ref()
            .to_vec())
    }

    /// Rekor v1 checkpoint (rekor pkg/util/checkpoint.go): origin, size, base64 root, blank line,
    /// one signature line `— <name> base64(keyhint[4] || signature)`, keyhint = logID[:4].
    fn sign_checkpoint(&self, tree: &MerkleTree, size: u64) -> Result<String, RekorError> {
        let root = tree.root(size).ok_or_else(|| RekorError::Internal("checkpoint beyond tree".into()))?;
        let note = format!("{} - {}\n{size}\n{}\n", self.origin_name, self.tree_id, B64.encode(root));
        let mut hinted = self.log_id[..4].to_vec();
        hinted.extend(self.sign(note.as_bytes())?);
        Ok(format!("{note}\n\u{2014} {} {}\n", self.origin_name, B64.encode(hinted)))
    }

    /// The SET: ECDSA over RFC 8785 `{"body","integratedTime","logID","logIndex"}` (keys sorted,
    /// no whitespace; all values ASCII strings or integers, so plain serde output is canonical).
    fn signed_entry_timestamp(&self, body_b64: &str, time: i64, index: u64) -> Result<String, RekorError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct SetPayload<'a> {
            body: &'a str,
            integrated_time: i64,
            #[serde(rename = "logID")]
            log_id: &'a str,
            log_index: u64,
        }
        let log_id = hex(&self.log_id);
        let payload = serde_json::to_vec(&SetPayload {
            body: body_b64,
            integrated_time: time,
            log_id: &log_id,
            log_index: index,
        })
        .map_err(|e| RekorError::Internal(e.to_string()))?;
        Ok(B64.encode(self.sign(&payload)?))
    }

    fn uuid(&self, leaf: &Hash) -> String {
        format!("{:016x}{}", self.tree_id, hex(leaf))
    }

    fn entry(&self, state: &State, index: u64, time: i64, body: &[u8]) -> Result<(String, LogEntry), RekorError> {
        let (size, checkpoint) = state.checkpoint.clone();
        let proof = state
            .tree
            .inclusion_proof(index, size)
            .ok_or_else(|| RekorError::Internal("entry beyond checkpoint".into()))?;
        let root = state.tree.root(size).ok_or_else(|| RekorError::Internal("root".into()))?;
        let leaf = state.tree.leaf(index).copied().unwrap_or_default();
        let body_b64 = B64.encode(body);
        let set = self.signed_entry_timestamp(&body_b64, time, index)?;
        let entry = LogEntry {
            body: body_b64,
            integrated_time: time,
            log_id: hex(&self.log_id),
            log_index: index,
            verification: Verification {
                inclusion_proof: InclusionProof {
                    checkpoint,
                    hashes: proof.iter().map(|h| hex(h)).collect(),
                    log_index: index,
                    root_hash: hex(&root),
                    tree_size: size,
                },
                signed_entry_timestamp: set,
            },
        };
        Ok((self.uuid(&leaf), entry))
    }
}

/// Index 0 of every log: an entry the log signs itself. Clients' entries therefore start at 1,
/// which matters because cosign v3 writes bundles as protobuf JSON, which omits zero values: an
/// entry at index 0 of a one-leaf tree loses `logIndex`, `inclusionProof.logIndex` and `hashes`,
/// and sigstore-python's bundle model rejects it. Production Rekor never hands out index 0.
fn genesis(
    file: &mut LogFile,
    key: &EcdsaKeyPair,
    spki_der: &[u8],
    tree_id: i64,
    rng: &SystemRandom,
) -> Result<Vec<crate::storage::Recovered>, RekorError> {
    let statement = format!("sigstack transparency log, tree {tree_id}: genesis entry");
    let signature = key.sign(rng, statement.as_bytes()).map_err(|e| RekorError::Internal(format!("genesis: {e}")))?;
    let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", spki_der.to_vec()));
    let proposed = serde_json::json!({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
        "data": {"hash": {"algorithm": "sha256", "value": hex(digest(&SHA256, statement.as_bytes()).as_ref())}},
        "signature": {"content": B64.encode(signature.as_ref()), "publicKey": {"content": B64.encode(pem)}}}});
    let body = crate::canonicalize(&proposed)?;
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    file.append(&[(time, &body, leaf_hash(&body))]).map_err(|e| RekorError::Storage(e.to_string()))
}

fn writer_loop(
    shared: Arc<Shared>,
    mut file: LogFile,
    mut statements: AttestationFile,
    mut receiver: mpsc::Receiver<Pending>,
) {
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        integrate(&shared, &mut file, &mut statements, batch);
    }
}

/// One group commit: refuse duplicates, write and fsync the batch (its statements first), extend
/// the tree, sign one checkpoint, answer every caller.
fn integrate(shared: &Shared, file: &mut LogFile, statements: &mut AttestationFile, batch: Vec<Pending>) {
    let time = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default();
    let mut accepted: Vec<(Pending, Hash)> = Vec::new();
    let first_index;
    {
        let state = match shared.read_state() {
            Ok(state) => state,
            Err(e) => {
                return batch.into_iter().for_each(|p| drop(p.reply.send(Err(RekorError::Internal(e.to_string())))));
            }
        };
        // Only this thread appends, so the tree cannot grow before this batch is integrated.
        first_index = state.tree.size();
        let mut in_batch = HashMap::new();
        for pending in batch {
            let leaf = leaf_hash(&pending.body);
            if state.by_leaf.contains_key(&leaf) || in_batch.contains_key(&leaf) {
                let _ = pending.reply.send(Err(RekorError::Conflict { uuid: shared.uuid(&leaf) }));
                continue;
            }
            in_batch.insert(leaf, ());
            accepted.push((pending, leaf));
        }
    }
    if accepted.is_empty() {
        return;
    }
    let fail = |accepted: Vec<(Pending, Hash)>, e: std::io::Error| {
        tracing::error!(error = %e, "log append failed; nothing of this batch was acknowledged");
        for (pending, _) in accepted {
            let _ = pending.reply.send(Err(RekorError::Storage(e.to_string())));
        }
    };
    let statement_records: Vec<(u64, &[u8])> = accepted
        .iter()
        .enumerate()
        .filter_map(|(i, (p, _))| p.statement.as_deref().map(|s| (first_index + i as u64, s)))
        .collect();
    let statements_before = statements.len();
    let statement_offsets = match statements.append(&statement_records) {
        Ok(offsets) => offsets,
        Err(e) => return fail(accepted, e),
    };
    let records: Vec<(i64, &[u8], Hash)> = accepted.iter().map(|(p, leaf)| (time, p.body.as_slice(), *leaf)).collect();
    let stored = match file.append(&records) {
        Ok(stored) => stored,
        Err(e) => {
            statements.cut_back_to(statements_before);
            return fail(accepted, e);
        }
    };
    if let Ok(mut map) = shared.statements.write() {
        map.extend(statement_offsets);
    }
    let mut state = match shared.write_state() {
        Ok(state) => state,
        Err(e) => {
            return accepted
                .into_iter()
                .for_each(|(p, _)| drop(p.reply.send(Err(RekorError::Internal(e.to_string())))));
        }
    };
    for record in &stored {
        let index = state.tree.size();
        state.by_leaf.insert(record.leaf_hash, index);
        state.tree.push(record.leaf_hash);
        state.offsets.push(record.offset);
    }
    let size = state.tree.size();
    match shared.sign_checkpoint(&state.tree, size) {
        Ok(checkpoint) => state.checkpoint = (size, checkpoint),
        Err(e) => tracing::error!(error = %e, "checkpoint signing failed"),
    }
    let state = std::sync::RwLockWriteGuard::downgrade(state);
    for (i, (pending, _)) in accepted.into_iter().enumerate() {
        let result = shared.entry(&state, first_index + i as u64, time, &pending.body);
        let _ = pending.reply.send(result);
    }
}
