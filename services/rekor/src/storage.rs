//! Durable storage: an append-only file of checksummed records plus a fixed-size index beside it.
//!
//! `entries.log` record: `u32 body_len | i64 integrated_time | body | SHA-256(all before)[..8]`.
//! `entries.idx` record (56 bytes): `u64 offset | i64 integrated_time | leaf hash[32] | SHA-256[..8]`.
//! A batch is appended to the log and fsynced, then to the index and fsynced, and only then
//! acknowledged (group commit). The index is never ahead of the durable log, so `open` reads just
//! the index (no rehash of the bodies, memory proportional to the tree) and scans the log only
//! past the last indexed record: whole records there (a crash between the two syncs) are indexed,
//! a torn tail (a crash mid-write, never acknowledged) is cut off.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};

use crate::merkle::{Hash, leaf_hash};

const HEADER: usize = 12;
const CHECKSUM: usize = 8;
const INDEX_RECORD: usize = 56;
/// Largest body a record may claim; a larger length can only be a torn or corrupt header.
const MAX_RECORD_BODY: u32 = 64 * 1024 * 1024;

/// One entry as the index knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// File offset of the record in `entries.log`.
    pub(crate) offset: u64,
    /// When it was integrated (unix seconds).
    pub(crate) integrated_time: i64,
    /// RFC 6962 leaf hash of its body.
    pub(crate) leaf_hash: Hash,
}

/// What `open` had to repair.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Repair {
    /// Bytes of a torn log tail that were cut off.
    pub(crate) discarded_bytes: u64,
    /// Whole log records that were missing from the index and were indexed.
    pub(crate) reindexed: u64,
}

/// The log and index files.
pub(crate) struct LogFile {
    log: File,
    index: File,
    log_len: u64,
    index_len: u64,
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM] {
    let mut out = [0u8; CHECKSUM];
    out.copy_from_slice(&digest(&SHA256, bytes).as_ref()[..CHECKSUM]);
    out
}

fn index_record(entry: &Recovered) -> [u8; INDEX_RECORD] {
    let mut record = [0u8; INDEX_RECORD];
    record[..8].copy_from_slice(&entry.offset.to_be_bytes());
    record[8..16].copy_from_slice(&entry.integrated_time.to_be_bytes());
    record[16..48].copy_from_slice(&entry.leaf_hash);
    let sum = checksum(&record[..48]);
    record[48..].copy_from_slice(&sum);
    record
}

fn parse_index_record(record: &[u8]) -> Option<Recovered> {
    if checksum(&record[..48]) != record[48..INDEX_RECORD] {
        return None;
    }
    Some(Recovered {
        offset: u64::from_be_bytes(record[..8].try_into().ok()?),
        integrated_time: i64::from_be_bytes(record[8..16].try_into().ok()?),
        leaf_hash: record[16..48].try_into().ok()?,
    })
}

fn log_record(time: i64, body: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&time.to_be_bytes());
    out.extend_from_slice(body);
    let sum = checksum(&out[start..]);
    out.extend_from_slice(&sum);
}

/// Reads the next whole, valid record from `reader`, or `None` at a clean end, a torn tail or
/// corruption (all three end the log).
fn next_record(reader: &mut impl Read) -> Option<(i64, Vec<u8>)> {
    let mut header = [0u8; HEADER];
    reader.read_exact(&mut header).ok()?;
    let body_len = u32::from_be_bytes(header[..4].try_into().ok()?);
    if body_len > MAX_RECORD_BODY {
        return None;
    }
    let mut rest = vec![0u8; body_len as usize + CHECKSUM];
    reader.read_exact(&mut rest).ok()?;
    let (body, sum) = rest.split_at(body_len as usize);
    let mut content = header.to_vec();
    content.extend_from_slice(body);
    if checksum(&content) != sum {
        return None;
    }
    let time = i64::from_be_bytes(header[4..].try_into().ok()?);
    rest.truncate(body_len as usize);
    Some((time, rest))
}

impl LogFile {
    /// Opens (or creates) `entries.log` and `entries.idx` in `dir`, repairing what a crash left.
    pub(crate) fn open(dir: &Path) -> std::io::Result<(LogFile, Vec<Recovered>, Repair)> {
        let options = || OpenOptions::new().read(true).write(true).create(true).truncate(false).clone();
        let log = options().open(dir.join("entries.log"))?;
        let index = options().open(dir.join("entries.idx"))?;
        let log_len = log.metadata()?.len();

        let mut entries = Vec::new();
        let mut reader = BufReader::new(&index);
        let mut record = [0u8; INDEX_RECORD];
        let mut log_end = 0u64;
        while reader.read_exact(&mut record).is_ok() {
            let Some(entry) = parse_index_record(&record) else { break };
            // The index is written after the log is durable, so it can only point inside the log.
            let mut header = [0u8; 4];
            if entry.offset != log_end || log.read_exact_at(&mut header, entry.offset).is_err() {
                break;
            }
            log_end = entry.offset + (HEADER + CHECKSUM) as u64 + u32::from_be_bytes(header) as u64;
            if log_end > log_len {
                break;
            }
            entries.push(entry);
        }
        let index_len = (entries.len() * INDEX_RECORD) as u64;
        index.set_len(index_len)?;

        // Whole records past the index: durable but not yet indexed. Index them; cut the rest.
        let mut repair = Repair::default();
        let mut scan = BufReader::new(&log);
        scan.seek(SeekFrom::Start(log_end))?;
        let mut missing = Vec::new();
        while let Some((time, body)) = next_record(&mut scan) {
            missing.push(Recovered { offset: log_end, integrated_time: time, leaf_hash: leaf_hash(&body) });
            log_end += (HEADER + CHECKSUM + body.len()) as u64;
        }
        if log_end < log_len {
            repair.discarded_bytes = log_len - log_end;
            log.set_len(log_end)?;
            log.sync_all()?;
        }
        let mut file = LogFile { log, index, log_len: log_end, index_len };
        if !missing.is_empty() {
            repair.reindexed = missing.len() as u64;
            file.append_index(&missing)?;
            entries.extend(missing);
        }
        Ok((file, entries, repair))
    }

    /// Appends records (log, then index) and makes them durable; returns what the index now holds
    /// for them. On error both files are cut back, so a failed batch (disk full, read-only) leaves
    /// no partial record and nothing of it is acknowledged.
    /// Each record is `(integrated time, body, leaf hash of body)`.
    pub(crate) fn append(&mut self, records: &[(i64, &[u8], Hash)]) -> std::io::Result<Vec<Recovered>> {
        let mut buffer = Vec::new();
        let mut entries = Vec::with_capacity(records.len());
        for (time, body, leaf) in records {
            entries.push(Recovered {
                offset: self.log_len + buffer.len() as u64,
                integrated_time: *time,
                leaf_hash: *leaf,
            });
            log_record(*time, body, &mut buffer);
        }
        let written = self.log.write_all_at(&buffer, self.log_len).and_then(|()| self.log.sync_data());
        if let Err(error) = written {
            let _ = self.log.set_len(self.log_len);
            return Err(error);
        }
        if let Err(error) = self.append_index(&entries) {
            // Not acknowledged, so not kept: the log must not hold records the index skips.
            let _ = self.log.set_len(self.log_len).and_then(|()| self.log.sync_data());
            return Err(error);
        }
        self.log_len += buffer.len() as u64;
        Ok(entries)
    }

    fn append_index(&mut self, entries: &[Recovered]) -> std::io::Result<()> {
        let buffer: Vec<u8> = entries.iter().flat_map(index_record).collect();
        let written = self.index.write_all_at(&buffer, self.index_len).and_then(|()| self.index.sync_data());
        if let Err(error) = written {
            let _ = self.index.set_len(self.index_len);
            return Err(error);
        }
        self.index_len += buffer.len() as u64;
        Ok(())
    }
}

/// `attestations.log`: Rekor's attestation storage, the in-toto statements of `dsse` and `intoto`
/// entries, whose canonical bodies only hash them (Rekor indexes their subject digests from the
/// statement). Records have the `entries.log` format with the log index where the time is.
/// A batch's statements are made durable before its entries, so every acknowledged entry has its
/// statement; records for indexes the log does not hold (a failed batch, a crash before the
/// entries were durable) are cut off at open.
pub(crate) struct AttestationFile {
    file: File,
    len: u64,
}

impl AttestationFile {
    /// Opens (or creates) `attestations.log` for a log of `log_size` entries; returns it with the
    /// offset of each stored statement by log index.
    pub(crate) fn open(dir: &Path, log_size: u64) -> std::io::Result<(AttestationFile, Vec<(u64, u64)>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("attestations.log"))?;
        let file_len = file.metadata()?.len();
        let mut stored: Vec<(u64, u64)> = Vec::new();
        let mut scan = BufReader::new(&file);
        let mut end = 0u64;
        while let Some((index, payload)) = next_record(&mut scan) {
            let index = index as u64;
            let in_order = stored.last().is_none_or(|&(previous, _)| index > previous);
            if index >= log_size || !in_order {
                break;
            }
            stored.push((index, end));
            end += (HEADER + CHECKSUM + payload.len()) as u64;
        }
        if end < file_len {
            file.set_len(end)?;
            file.sync_all()?;
        }
        Ok((AttestationFile { file, len: end }, stored))
    }

    /// Appends `(log index, statement)` records and makes them durable; returns their offsets.
    pub(crate) fn append(&mut self, items: &[(u64, &[u8])]) -> std::io::Result<Vec<(u64, u64)>> {
        let mut buffer = Vec::new();
        let mut offsets = Vec::with_capacity(items.len());
        for (index, statement) in items {
            offsets.push((*index, self.len + buffer.len() as u64));
            log_record(*index as i64, statement, &mut buffer);
        }
        if buffer.is_empty() {
            return Ok(offsets);
        }
        if let Err(error) = self.file.write_all_at(&buffer, self.len).and_then(|()| self.file.sync_data()) {
            let _ = self.file.set_len(self.len);
            return Err(error);
        }
        self.len += buffer.len() as u64;
        Ok(offsets)
    }

    /// Takes back the last append (its entries could not be made durable): the indexes it named
    /// will be given to other entries.
    pub(crate) fn cut_back_to(&mut self, len: u64) {
        if self.file.set_len(len).and_then(|()| self.file.sync_data()).is_ok() {
            self.len = len;
        }
    }

    /// Length of the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }
}

/// Reads the record at `offset` of a log file: (integrated time, body).
pub(crate) fn read_record(file: &File, offset: u64) -> std::io::Result<(i64, Vec<u8>)> {
    let mut header = [0u8; HEADER];
    file.read_exact_at(&mut header, offset)?;
    let body_len = u32::from_be_bytes(header[..4].try_into().unwrap_or_default()) as usize;
    let time = i64::from_be_bytes(header[4..].try_into().unwrap_or_default());
    let mut body = vec![0u8; body_len];
    file.read_exact_at(&mut body, offset + HEADER as u64)?;
    Ok((time, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append_raw(path: &Path, bytes: &[u8]) {
        let mut file = OpenOptions::new().append(true).open(path).unwrap();
        file.write_all(bytes).unwrap();
    }

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, recovered, _) = LogFile::open(dir.path()).unwrap();
        assert!(recovered.is_empty());
        let entries = log.append(&[(1, b"one", leaf_hash(b"one")), (2, b"two", leaf_hash(b"two"))]).unwrap();
        assert_eq!(read_record(&log.log, entries[1].offset).unwrap(), (2, b"two".to_vec()));
        drop(log);
        // A crash mid-append: half a record at the end of the log, half an index record.
        append_raw(&dir.path().join("entries.log"), &[0, 0, 0, 9, 0, 0]);
        append_raw(&dir.path().join("entries.idx"), &[1, 2, 3]);
        let (mut log, recovered, repair) = LogFile::open(dir.path()).unwrap();
        assert_eq!(recovered, entries);
        assert_eq!(repair, Repair { discarded_bytes: 6, reindexed: 0 });
        log.append(&[(3, b"three", leaf_hash(b"three"))]).unwrap();
        let (_, recovered, repair) = LogFile::open(dir.path()).unwrap();
        assert_eq!((recovered.len(), repair), (3, Repair::default()));
        assert_eq!(recovered[2].leaf_hash, leaf_hash(b"three"));
    }

    #[test]
    fn whole_records_missing_from_the_index_are_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = LogFile::open(dir.path()).unwrap();
        log.append(&[(1, b"one", leaf_hash(b"one"))]).unwrap();
        drop(log);
        // A crash after the log sync, before the index write.
        let mut record = Vec::new();
        log_record(2, b"two", &mut record);
        append_raw(&dir.path().join("entries.log"), &record);
        let (_, recovered, repair) = LogFile::open(dir.path()).unwrap();
        assert_eq!(repair.reindexed, 1);
        assert_eq!(recovered[1].leaf_hash, leaf_hash(b"two"));
        let (_, again, repair) = LogFile::open(dir.path()).unwrap();
        assert_eq!((again, repair), (recovered, Repair::default()));
    }

    #[test]
    fn statements_beyond_the_log_or_torn_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut file, stored) = AttestationFile::open(dir.path(), 0).unwrap();
        assert!(stored.is_empty());
        let offsets = file.append(&[(1, b"one"), (3, b"three")]).unwrap();
        let len = file.len();
        file.append(&[(4, b"four")]).unwrap();
        drop(file);
        append_raw(&dir.path().join("attestations.log"), &[0, 0, 0, 5, 1]);
        // The log holds entries 0..4: the statement of entry 4 was never acknowledged.
        let (file, stored) = AttestationFile::open(dir.path(), 4).unwrap();
        assert_eq!(stored, offsets);
        assert_eq!(file.len(), len);
        assert_eq!(read_record(&file.file, stored[1].1).unwrap(), (3, b"three".to_vec()));
    }

    #[test]
    fn a_corrupted_record_ends_the_log_there() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _, _) = LogFile::open(dir.path()).unwrap();
        let entries = log.append(&[(1, b"one", leaf_hash(b"one")), (2, b"two", leaf_hash(b"two"))]).unwrap();
        drop(log);
        // Corrupt the second record and drop the index: the scan must stop at the bad record.
        let path = dir.path().join("entries.log");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[entries[1].offset as usize + HEADER + 1] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        std::fs::write(dir.path().join("entries.idx"), b"").unwrap();
        let (_, recovered, repair) = LogFile::open(dir.path()).unwrap();
        assert_eq!(recovered.len(), 1);
        assert!(repair.discarded_bytes > 0);
    }
}
