//! Transparency log inclusion proofs over tiles (golang.org/x/mod/sumdb/tlog).
//!
//! The log is an RFC 6962 Merkle tree: a record's leaf hash is sha256(0x00 || record text), an
//! interior node is sha256(0x01 || left || right). A tile of height H at level L, index N and
//! width W lists W consecutive hashes of tree level L*H starting at offset N * 2^H; it is
//! served at `tile/<H>/<L>/<N in x-prefixed 3-digit groups>[.p/<W>]` (`.p/W` for partial tiles).
//!
//! To prove that record `id` is in the signed tree of size `n`, we fetch the tiles holding the
//! sibling subtrees on the record's path, recompute the root from our own leaf hash and compare
//! with the signed root. Tile contents need no trust: a wrong hash gives a wrong root.

use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// Tile height used by the `go` command.
pub const TILE_HEIGHT: u32 = 8;

/// Leaf hash of a record: sha256(0x00 || data).
pub fn record_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// Interior node hash: sha256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// A tile (of height [`TILE_HEIGHT`]): level, index and width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub level: u32,
    pub index: u64,
    pub width: u32,
}

impl Tile {
    /// The URL path below the database base, e.g. `tile/8/0/x001/234.p/17`.
    pub fn path(&self) -> String {
        let mut n = self.index;
        let mut s = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            s = format!("x{:03}/{s}", n % 1000);
        }
        let p = if self.width == 1 << TILE_HEIGHT {
            String::new()
        } else {
            format!(".p/{}", self.width)
        };
        format!("tile/{TILE_HEIGHT}/{}/{s}{p}", self.level)
    }
}

/// Largest power of two strictly less than `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The complete, aligned subtrees (level, index) whose hashes, together with the leaf, determine
/// the root of the tree of size `n` on the path of leaf `m`.
pub fn proof_nodes(m: u64, n: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    fn complete(lo: u64, hi: u64, out: &mut Vec<(u32, u64)>) {
        let size = hi - lo;
        if size.is_power_of_two() {
            let level = size.trailing_zeros();
            out.push((level, lo >> level));
        } else {
            let k = split_point(size);
            complete(lo, lo + k, out);
            complete(lo + k, hi, out);
        }
    }
    let (mut lo, mut hi) = (0, n);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if m < lo + k {
            complete(lo + k, hi, &mut out);
            hi = lo + k;
        } else {
            complete(lo, lo + k, &mut out);
            lo += k;
        }
    }
    out
}

/// The tile holding the hashes needed for the complete node (level, index) in a tree of size
/// `n`: the tile at level `level / H` whose level-(L*H) hashes cover the node.
fn tile_for(level: u32, index: u64, n: u64) -> Tile {
    let tl = level / TILE_HEIGHT;
    let base_level = tl * TILE_HEIGHT;
    // First level-(L*H) node under (level, index).
    let first = index << (level - base_level);
    let tile_index = first >> TILE_HEIGHT;
    let available = (n >> base_level) - (tile_index << TILE_HEIGHT);
    let width = available.min(1 << TILE_HEIGHT) as u32;
    Tile {
        level: tl,
        index: tile_index,
        width,
    }
}

/// The tiles needed to prove leaf `m` in a tree of size `n`.
pub fn tiles_needed(m: u64, n: u64) -> BTreeSet<Tile> {
    proof_nodes(m, n)
        .into_iter()
        .map(|(l, i)| tile_for(l, i, n))
        .collect()
}

/// Hash of the complete node (level, index) from fetched tile data (`W * 32` bytes per tile).
fn node_from_tiles(level: u32, index: u64, n: u64, tiles: &HashMap<Tile, Vec<u8>>) -> Option<Hash> {
    let tile = tile_for(level, index, n);
    let data = tiles.get(&tile)?;
    let base_level = tile.level * TILE_HEIGHT;
    let span = 1u64 << (level - base_level);
    let first = (index << (level - base_level)) - (tile.index << TILE_HEIGHT);
    let mut hashes: Vec<Hash> = (first..first + span)
        .map(|i| {
            let start = usize::try_from(i).ok()? * 32;
            data.get(start..start + 32)?.try_into().ok()
        })
        .collect::<Option<_>>()?;
    while hashes.len() > 1 {
        hashes = hashes.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    hashes.pop()
}

/// Recomputes the root of the tree of size `n` from leaf `m`'s hash and the tiles; `None` when
/// a tile is missing or too short.
pub fn root_from_tiles(m: u64, n: u64, leaf: Hash, tiles: &HashMap<Tile, Vec<u8>>) -> Option<Hash> {
    fn subtree(lo: u64, hi: u64, n: u64, tiles: &HashMap<Tile, Vec<u8>>) -> Option<Hash> {
        let size = hi - lo;
        if size.is_power_of_two() {
            let level = size.trailing_zeros();
            node_from_tiles(level, lo >> level, n, tiles)
        } else {
            let k = split_point(size);
            Some(node_hash(
                &subtree(lo, lo + k, n, tiles)?,
                &subtree(lo + k, hi, n, tiles)?,
            ))
        }
    }
    fn path(
        lo: u64,
        hi: u64,
        m: u64,
        n: u64,
        leaf: Hash,
        tiles: &HashMap<Tile, Vec<u8>>,
    ) -> Option<Hash> {
        if hi - lo == 1 {
            return Some(leaf);
        }
        let k = split_point(hi - lo);
        if m < lo + k {
            Some(node_hash(
                &path(lo, lo + k, m, n, leaf, tiles)?,
                &subtree(lo + k, hi, n, tiles)?,
            ))
        } else {
            Some(node_hash(
                &subtree(lo, lo + k, n, tiles)?,
                &path(lo + k, hi, m, n, leaf, tiles)?,
            ))
        }
    }
    if m >= n {
        return None;
    }
    path(0, n, m, n, leaf, tiles)
}

/// Complete nodes (level, index) of the tree of size `n2` needed to check that the tree of size
/// `n1 <= n2` is a prefix of it: the nodes covering `[0, n1)` (one per set bit of `n1`) and those
/// covering `[n1, n2)`, following the tree structure of `n2`.
pub fn consistency_nodes(n1: u64, n2: u64) -> Vec<(u32, u64)> {
    fn walk(lo: u64, hi: u64, n1: u64, out: &mut Vec<(u32, u64)>) {
        let size = hi - lo;
        if size.is_power_of_two() && (hi <= n1 || lo >= n1) {
            let level = size.trailing_zeros();
            out.push((level, lo >> level));
        } else {
            let k = split_point(size);
            walk(lo, lo + k, n1, out);
            walk(lo + k, hi, n1, out);
        }
    }
    let mut out = Vec::new();
    if n2 > 0 {
        walk(0, n2, n1, &mut out);
    }
    out
}

/// The tiles (of the tree of size `n2`) needed for [`consistent_from_tiles`].
pub fn consistency_tiles(n1: u64, n2: u64) -> BTreeSet<Tile> {
    consistency_nodes(n1, n2)
        .into_iter()
        .map(|(l, i)| tile_for(l, i, n2))
        .collect()
}

/// Checks that the tree (n1, root1) is a prefix of the tree (n2, root2), `1 <= n1 <= n2`, using
/// tiles of the tree of size `n2`: the nodes covering `[0, n1)` must give `root1`, and together
/// with the nodes covering `[n1, n2)` must give `root2`. `None` when tiles are missing.
pub fn consistent_from_tiles(
    n1: u64,
    root1: &Hash,
    n2: u64,
    root2: &Hash,
    tiles: &HashMap<Tile, Vec<u8>>,
) -> Option<bool> {
    fn walk(lo: u64, hi: u64, n1: u64, n2: u64, tiles: &HashMap<Tile, Vec<u8>>) -> Option<Hash> {
        let size = hi - lo;
        if size.is_power_of_two() && (hi <= n1 || lo >= n1) {
            let level = size.trailing_zeros();
            node_from_tiles(level, lo >> level, n2, tiles)
        } else {
            let k = split_point(size);
            Some(node_hash(
                &walk(lo, lo + k, n1, n2, tiles)?,
                &walk(lo + k, hi, n1, n2, tiles)?,
            ))
        }
    }
    if n1 == 0 || n1 > n2 {
        return Some(false);
    }
    // [0, n1) split the same way within itself: the pieces are the complete nodes for the set
    // bits of n1, all fetched for n2's walk as well.
    let r1 = walk(0, n1, n1, n2, tiles)?;
    let r2 = walk(0, n2, n1, n2, tiles)?;
    Some(&r1 == root1 && &r2 == root2)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6962 Merkle tree hash, computed directly.
    fn mth(leaves: &[Hash]) -> Hash {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = split_point(leaves.len() as u64) as usize;
        node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
    }

    /// Tiles a server would serve for a tree of these leaves.
    fn make_tiles(leaves: &[Hash]) -> HashMap<Tile, Vec<u8>> {
        let mut tiles = HashMap::new();
        let mut level_hashes = leaves.to_vec();
        let mut level = 0u32;
        while !level_hashes.is_empty() {
            if level.is_multiple_of(TILE_HEIGHT) {
                for (ti, chunk) in level_hashes.chunks(1 << TILE_HEIGHT).enumerate() {
                    let t = Tile {
                        level: level / TILE_HEIGHT,
                        index: ti as u64,
                        width: chunk.len() as u32,
                    };
                    tiles.insert(t, chunk.concat());
                }
            }
            level_hashes = level_hashes
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            level += 1;
        }
        tiles
    }

    #[test]
    fn consistency_for_many_sizes() {
        let leaves: Vec<Hash> = (0..600u64)
            .map(|i| record_hash(format!("record {i}\n").as_bytes()))
            .collect();
        let pairs = [
            (1u64, 1u64),
            (1, 2),
            (3, 4),
            (3, 7),
            (5, 300),
            (255, 256),
            (256, 257),
            (256, 600),
            (257, 513),
            (300, 301),
            (511, 600),
            (600, 600),
        ];
        for (n1, n2) in pairs {
            let tiles = make_tiles(&leaves[..n2 as usize]);
            let subset: HashMap<Tile, Vec<u8>> = consistency_tiles(n1, n2)
                .iter()
                .map(|t| (*t, tiles.get(t).cloned().expect("tile exists")))
                .collect();
            let r1 = mth(&leaves[..n1 as usize]);
            let r2 = mth(&leaves[..n2 as usize]);
            assert_eq!(
                consistent_from_tiles(n1, &r1, n2, &r2, &subset),
                Some(true),
                "{n1} {n2}"
            );
            // A forked history: another old tree of the same size.
            let mut forked = leaves[..n1 as usize].to_vec();
            forked[0] = record_hash(b"fork\n");
            let f1 = mth(&forked);
            assert_eq!(
                consistent_from_tiles(n1, &f1, n2, &r2, &subset),
                Some(false),
                "{n1} {n2}"
            );
        }
    }

    #[test]
    fn tile_paths() {
        let t = |level, index, width| {
            Tile {
                level,
                index,
                width,
            }
            .path()
        };
        assert_eq!(t(0, 1, 256), "tile/8/0/001");
        assert_eq!(t(0, 1, 5), "tile/8/0/001.p/5");
        assert_eq!(t(5, 123456078, 256), "tile/8/5/x123/x456/078");
        assert_eq!(t(1, 1000, 2), "tile/8/1/x001/000.p/2");
    }

    #[test]
    fn proofs_for_many_sizes() {
        for n in [1u64, 2, 3, 5, 8, 255, 256, 257, 300, 513, 66_000] {
            let leaves: Vec<Hash> = (0..n)
                .map(|i| record_hash(format!("record {i}\n").as_bytes()))
                .collect();
            let root = mth(&leaves);
            let tiles = make_tiles(&leaves);
            let ms: Vec<u64> = if n > 600 {
                vec![0, 1, 255, 256, n / 2, n - 2, n - 1]
            } else {
                (0..n).collect()
            };
            for m in ms {
                let needed = tiles_needed(m, n);
                let subset: HashMap<Tile, Vec<u8>> = needed
                    .iter()
                    .map(|t| (*t, tiles.get(t).cloned().expect("tile exists")))
                    .collect();
                assert_eq!(
                    root_from_tiles(m, n, leaves[m as usize], &subset),
                    Some(root),
                    "n={n} m={m}"
                );
                // Another leaf does not give the root.
                let other = record_hash(b"forged\n");
                assert_ne!(root_from_tiles(m, n, other, &subset), Some(root));
            }
        }
    }
}
