//! C2SP tlog-tiles: tile paths and tile contents, as pure functions of a Merkle tree. Written by
//! hand: the Rust tile crates on the registry are clients, not servers, and the rules are short.

use crate::merkle::{Hash, MerkleTree};

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
const LEVELS_PER_TILE: u32 = 8;

/// What a tile path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`: hashes of tree level `8 * L`.
    Hashes {
        /// Tile level.
        level: u8,
        /// Tile index.
        index: u64,
        /// Width of a partial tile; `None` for a full one.
        partial: Option<u16>,
    },
    /// `tile/entries/<N>[.p/<W>]`: the entries themselves.
    Entries {
        /// Bundle index.
        index: u64,
        /// Width of a partial bundle; `None` for a full one.
        partial: Option<u16>,
    },
}

/// `N` as tlog-tiles writes it: 3-digit groups, every group but the last prefixed with `x`.
pub fn encode_index(index: u64) -> String {
    let digits = format!("{index}");
    let padded = format!("{}{digits}", "0".repeat((3 - digits.len() % 3) % 3));
    let groups: Vec<&str> = padded.as_bytes().chunks(3).map(|c| std::str::from_utf8(c).unwrap_or("000")).collect();
    let last = groups.len() - 1;
    groups.iter().enumerate().map(|(i, g)| if i < last { format!("x{g}/") } else { g.to_string() }).collect()
}

impl TilePath {
    /// The path below the log's prefix, e.g. `tile/0/x001/234.p/7`.
    pub fn to_path(&self) -> String {
        let (level, index, partial) = match *self {
            TilePath::Hashes { level, index, partial } => (level.to_string(), index, partial),
            TilePath::Entries { index, partial } => ("entries".to_string(), index, partial),
        };
        let width = partial.map(|w| format!(".p/{w}")).unwrap_or_default();
        format!("tile/{level}/{}{width}", encode_index(index))
    }

    /// Parses what follows `tile/`; only the canonical form (the one `to_path` writes) is a tile.
    pub fn parse(rest: &str) -> Result<TilePath, String> {
        let bad = || format!("tile/{rest} is not a tile path (tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>])");
        let mut parts: Vec<&str> = rest.split('/').collect();
        if parts.len() < 2 {
            return Err(bad());
        }
        let kind = parts.remove(0);
        let mut partial = None;
        if parts.len() >= 2 && parts[parts.len() - 2].ends_with(".p") {
            let width = parts.pop().unwrap_or_default();
            let w: u16 = width.parse().map_err(|_| bad())?;
            if !(1..TILE_WIDTH as u16).contains(&w) || width != w.to_string() {
                return Err(format!("tile partial width {width} is not between 1 and 255"));
            }
            partial = Some(w);
            let last = parts.len() - 1;
            parts[last] = parts[last].strip_suffix(".p").unwrap_or(parts[last]);
        }
        let mut index: u64 = 0;
        let last = parts.len() - 1;
        for (i, group) in parts.iter().enumerate() {
            let digits = if i < last { group.strip_prefix('x').ok_or_else(bad)? } else { group };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            index = index
                .checked_mul(1000)
                .and_then(|n| n.checked_add(digits.parse::<u64>().unwrap_or(0)))
                .ok_or_else(bad)?;
        }
        let tile = match kind {
            "entries" => TilePath::Entries { index, partial },
            level => {
                let level: u8 = level.parse().map_err(|_| bad())?;
                if level.to_string() != kind || u32::from(level) * LEVELS_PER_TILE >= 64 {
                    return Err(bad());
                }
                TilePath::Hashes { level, index, partial }
            }
        };
        // One spelling per tile: `x000/005` and friends are not canonical.
        if tile.to_path() != format!("tile/{rest}") {
            return Err(bad());
        }
        Ok(tile)
    }

    fn width_and_level(&self) -> (Option<u16>, u64, u32) {
        match *self {
            TilePath::Hashes { level, index, partial } => (partial, index, u32::from(level) * LEVELS_PER_TILE),
            TilePath::Entries { index, partial } => (partial, index, 0),
        }
    }

    /// The range of node (or entry) indexes this tile covers in a tree of `size` leaves, or `None`
    /// when the tree does not have it yet. Partial tiles stay readable after their tile fills up:
    /// the spec lets servers drop them, and keeping them costs nothing here.
    pub fn range(&self, size: u64) -> Option<std::ops::Range<u64>> {
        let (partial, index, tree_level) = self.width_and_level();
        let nodes = size >> tree_level;
        let start = index.checked_mul(TILE_WIDTH)?;
        let available = nodes.checked_sub(start)?.min(TILE_WIDTH);
        let width = match partial {
            None if available == TILE_WIDTH => TILE_WIDTH,
            Some(w) if u64::from(w) <= available => u64::from(w),
            _ => return None,
        };
        Some(start..start + width)
    }
}

/// The bytes of hash tile `tile` of `tree` at tree size `size`: concatenated 32-byte hashes.
pub fn hash_tile(tree: &MerkleTree, tile: &TilePath, size: u64) -> Option<Vec<u8>> {
    let TilePath::Hashes { level, .. } = tile else { return None };
    let range = tile.range(size)?;
    let hashes: &[Hash] = tree.level(usize::from(*level) * LEVELS_PER_TILE as usize);
    let slice = hashes.get(range.start as usize..range.end as usize)?;
    Some(slice.iter().flatten().copied().collect())
}

/// An entry bundle: each entry as a big-endian 16-bit length and its bytes.
pub fn entry_bundle<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        out.extend_from_slice(&(entry.len() as u16).to_be_bytes());
        out.extend_from_slice(entry);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_encoding_matches_the_spec_example() {
        assert_eq!(encode_index(1234067), "x001/x234/067");
        assert_eq!(encode_index(5), "005");
        assert_eq!(encode_index(1000), "x001/000");
        let tile = TilePath::Hashes { level: 0, index: 1234067, partial: Some(8) };
        assert_eq!(tile.to_path(), "tile/0/x001/x234/067.p/8");
        assert_eq!(TilePath::parse("0/x001/x234/067.p/8"), Ok(tile));
        assert_eq!(TilePath::parse("entries/005"), Ok(TilePath::Entries { index: 5, partial: None }));
    }

    #[test]
    fn only_canonical_paths_are_tiles() {
        for bad in [
            "0/x000/005",
            "0/5",
            "0/0005",
            "0/005.p/0",
            "0/005.p/256",
            "0/005.p/08",
            "00/005",
            "8/000",
            "entries",
            "a/000",
            "0/x001",
            "0/001/002",
            "0/005.p",
            "0/x99999999999999999999/000",
        ] {
            assert!(TilePath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges_follow_the_tree_size() {
        let full = TilePath::Hashes { level: 0, index: 0, partial: None };
        assert_eq!(full.range(255), None);
        assert_eq!(full.range(256), Some(0..256));
        let partial = TilePath::Hashes { level: 0, index: 1, partial: Some(3) };
        assert_eq!(partial.range(258), None);
        assert_eq!(partial.range(259), Some(256..259));
        let upper = TilePath::Hashes { level: 1, index: 0, partial: Some(1) };
        assert_eq!(upper.range(255), None);
        assert_eq!(upper.range(256), Some(0..1));
    }

    #[test]
    fn tiles_hold_the_tree_levels() {
        let mut tree = MerkleTree::new();
        for i in 0..300u32 {
            tree.push(crate::merkle::leaf_hash(&i.to_be_bytes()));
        }
        let tile = hash_tile(&tree, &TilePath::Hashes { level: 0, index: 1, partial: Some(44) }, 300).unwrap();
        assert_eq!(tile.len(), 44 * 32);
        assert_eq!(&tile[..32], tree.leaf(256).unwrap());
        let top = hash_tile(&tree, &TilePath::Hashes { level: 1, index: 0, partial: Some(1) }, 300).unwrap();
        assert_eq!(top.as_slice(), tree.root(256).unwrap().as_slice());
        assert_eq!(entry_bundle([b"ab".as_slice(), b"c"]), vec![0, 2, b'a', b'b', 0, 1, b'c']);
    }
}
