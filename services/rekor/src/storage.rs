//! Durable storage: one append-only file of checksummed records in the state directory.
//!
//! Record layout: `u32 body_len | i64 integrated_time | body | first 8 bytes of SHA-256 of all
//! before`. The checksum comes last so that a torn write (a crash mid-append) leaves a record that
//! fails its check; `open` cuts the file back to the last whole record. Appends are batched and
//! made durable with one `fdatasync` per batch (group commit): nothing is acknowledged before it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use aws_lc_rs::digest::{SHA256, digest};

use crate::merkle::{Hash, leaf_hash};

const HEADER: usize = 12;
const CHECKSUM: usize = 8;
/// Largest body the log stores; requests are refused long before (see `MAX_BODY_BYTES`).
const MAX_RECORD_BODY: u32 = 64 * 1024 * 1024;

/// What `open` recovered: one entry per whole record.
pub(crate) struct Recovered {
    /// File offset of the record.
    pub offset: u64,
    /// When it was integrated (unix seconds).
    pub integrated_time: i64,
    /// RFC 6962 leaf hash of its body.
    pub leaf_hash: Hash,
}

/// The log file.
pub(crate) struct LogFile {
    file: File,
    len: u64,
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM] {
    let mut out = [0u8; CHECKSUM];
    out.copy_from_slice(&digest(&SHA256, bytes).as_ref()[..CHECKSUM]);
    out
}

impl LogFile {
    /// Opens (or creates) the log at `path`, verifying every record and discarding a torn tail.
    pub(crate) fn open(path: &Path) -> std::io::Result<(LogFile, Vec<Recovered>, u64)> {
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut recovered = Vec::new();
        let mut pos = 0usize;
        while pos + HEADER <= bytes.len() {
            let body_len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap_or_default());
            if body_len > MAX_RECORD_BODY {
                break;
            }
            let end = pos + HEADER + body_len as usize + CHECKSUM;
            if end > bytes.len() {
                break;
            }
            let content = &bytes[pos..end - CHECKSUM];
            if checksum(content) != bytes[end - CHECKSUM..end] {
                break;
            }
            let integrated_time = i64::from_be_bytes(bytes[pos + 4..pos + HEADER].try_into().unwrap_or_default());
            recovered.push(Recovered {
                offset: pos as u64,
                integrated_time,
                leaf_hash: leaf_hash(&bytes[pos + HEADER..end - CHECKSUM]),
            });
            pos = end;
        }
        let discarded = (bytes.len() - pos) as u64;
        if discarded > 0 {
            // A torn tail was never acknowledged (acknowledgement follows the sync): drop it.
            file.set_len(pos as u64)?;
            file.sync_all()?;
        }
        file.seek(SeekFrom::Start(pos as u64))?;
        Ok((LogFile { file, len: pos as u64 }, recovered, discarded))
    }

    /// Appends records and makes them durable; returns their offsets. On error the file is cut
    /// back to where it was, so a failed batch (disk full, read-only) leaves no partial record.
    pub(crate) fn append(&mut self, records: &[(i64, &[u8])]) -> std::io::Result<Vec<u64>> {
        let mut buffer = Vec::new();
        let mut offsets = Vec::with_capacity(records.len());
        for (time, body) in records {
            offsets.push(self.len + buffer.len() as u64);
            let start = buffer.len();
            buffer.extend_from_slice(&(body.len() as u32).to_be_bytes());
            buffer.extend_from_slice(&time.to_be_bytes());
            buffer.extend_from_slice(body);
            let sum = checksum(&buffer[start..]);
            buffer.extend_from_slice(&sum);
        }
        let result = self.file.write_all(&buffer).and_then(|()| self.file.sync_data());
        if let Err(error) = result {
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(error);
        }
        self.len += buffer.len() as u64;
        Ok(offsets)
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

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut log, recovered, _) = LogFile::open(&path).unwrap();
        assert!(recovered.is_empty());
        let offsets = log.append(&[(1, b"one"), (2, b"two")]).unwrap();
        assert_eq!(read_record(&log.file, offsets[1]).unwrap(), (2, b"two".to_vec()));
        drop(log);
        // Simulate a crash mid-append: half a record at the end.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[0, 0, 0, 9, 0, 0]).unwrap();
        drop(file);
        let (mut log, recovered, discarded) = LogFile::open(&path).unwrap();
        assert_eq!(recovered.len(), 2);
        assert_eq!(discarded, 6);
        assert_eq!(recovered[1].leaf_hash, leaf_hash(b"two"));
        log.append(&[(3, b"three")]).unwrap();
        let (_, recovered, discarded) = LogFile::open(&path).unwrap();
        assert_eq!((recovered.len(), discarded), (3, 0));
    }

    #[test]
    fn a_corrupted_record_ends_the_log_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let (mut log, _, _) = LogFile::open(&path).unwrap();
        let offsets = log.append(&[(1, b"one"), (2, b"two")]).unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        let flip = offsets[1] as usize + HEADER + 1;
        bytes[flip] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (_, recovered, _) = LogFile::open(&path).unwrap();
        assert_eq!(recovered.len(), 1);
    }
}
