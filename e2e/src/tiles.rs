//! An independent C2SP tlog-tiles reader: rebuilds a tree from its tiles and entry bundles and
//! checks it against a checkpoint's root. Shares nothing with the log's own tile code.

use crate::rfc9162::{Hash, leaf_hash, node_hash};

/// `N` as a tile path element.
fn index_path(index: u64) -> String {
    let text = format!("{index:03}");
    let padded = format!("{}{text}", "0".repeat((3 - text.len() % 3) % 3));
    let groups: Vec<String> = padded.as_bytes().chunks(3).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    let mut out = String::new();
    for (i, group) in groups.iter().enumerate() {
        if i + 1 < groups.len() {
            out.push_str(&format!("x{group}/"));
        } else {
            out.push_str(group);
        }
    }
    out
}

/// The tile paths of level `level` for a tree of `size` leaves (full tiles, then the partial one).
pub fn tile_paths(level: u32, size: u64) -> Vec<String> {
    let nodes = size >> (8 * level);
    let mut paths: Vec<String> = (0..nodes / 256).map(|n| format!("tile/{level}/{}", index_path(n))).collect();
    if !nodes.is_multiple_of(256) {
        paths.push(format!("tile/{level}/{}.p/{}", index_path(nodes / 256), nodes % 256));
    }
    paths
}

/// The entry-bundle paths for a tree of `size` leaves.
pub fn entry_paths(size: u64) -> Vec<String> {
    tile_paths(0, size).into_iter().map(|p| p.replacen("tile/0/", "tile/entries/", 1)).collect()
}

fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => {
            let mut empty = [0u8; 32];
            empty.copy_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"").as_ref());
            empty
        }
        1 => leaves[0],
        n => {
            let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// Parses an entry bundle into its entries.
pub fn parse_bundle(bundle: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        if rest.len() < 2 {
            return Err("truncated length prefix".into());
        }
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        if rest.len() < 2 + len {
            return Err("truncated entry".into());
        }
        entries.push(rest[2..2 + len].to_vec());
        rest = &rest[2 + len..];
    }
    Ok(entries)
}

/// Every entry of a tree of `size` leaves, from its entry bundles.
pub fn entries(size: u64, fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>) -> Result<Vec<Vec<u8>>, String> {
    let mut all = Vec::new();
    for path in entry_paths(size) {
        all.extend(parse_bundle(&fetch(&path)?)?);
    }
    if all.len() as u64 != size {
        return Err(format!("the entry bundles hold {} entries for a tree of {size}", all.len()));
    }
    Ok(all)
}

/// The root of the first `size` leaves (RFC 6962 MTH), for checking older checkpoints.
pub fn root_of(leaves: &[Hash]) -> Hash {
    mth(leaves)
}

/// Rebuilds the tree of `size` leaves through `fetch` (tile path → bytes) and returns its root,
/// checking on the way that the entry bundles hash to the level-0 tiles and that each level-1
/// hash is the root of its 256 leaves.
pub fn rebuild_root(size: u64, fetch: &mut dyn FnMut(&str) -> Result<Vec<u8>, String>) -> Result<Hash, String> {
    let mut leaves: Vec<Hash> = Vec::new();
    for path in tile_paths(0, size) {
        let tile = fetch(&path)?;
        if tile.len() % 32 != 0 {
            return Err(format!("{path}: {} bytes is not a whole number of hashes", tile.len()));
        }
        leaves.extend(tile.chunks(32).map(|c| c.try_into().unwrap_or([0u8; 32])));
    }
    if leaves.len() as u64 != size {
        return Err(format!("level-0 tiles hold {} hashes for a tree of {size}", leaves.len()));
    }
    let from_entries: Vec<Hash> = entries(size, fetch)?.iter().map(|e| leaf_hash(e)).collect();
    if from_entries != leaves {
        return Err("the entry bundles do not hash to the level-0 tiles".into());
    }
    for path in tile_paths(1, size) {
        let tile = fetch(&path)?;
        let start = tile_index(&path) * 256 * 256;
        for (i, hash) in tile.chunks(32).enumerate() {
            let lo = (start + i as u64 * 256) as usize;
            if hash != mth(&leaves[lo..lo + 256]) {
                return Err(format!("{path}: hash {i} is not the root of leaves {lo}..{}", lo + 256));
            }
        }
    }
    Ok(mth(&leaves))
}

fn tile_index(path: &str) -> u64 {
    let tail = path.splitn(3, '/').nth(2).unwrap_or_default();
    let tail = tail.split(".p/").next().unwrap_or_default();
    tail.split('/').fold(0, |n, group| n * 1000 + group.trim_start_matches('x').parse::<u64>().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(tile_paths(0, 3), vec!["tile/0/000.p/3"]);
        assert_eq!(tile_paths(0, 256), vec!["tile/0/000"]);
        assert_eq!(tile_paths(0, 1234067 * 256 + 8).last().unwrap(), "tile/0/x001/x234/067.p/8");
        assert_eq!(tile_index("tile/0/x001/x234/067.p/8"), 1234067);
        assert_eq!(entry_paths(300), vec!["tile/entries/000", "tile/entries/001.p/44"]);
    }
}
