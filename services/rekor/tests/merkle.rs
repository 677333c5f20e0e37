//! Proofs from `MerkleTree` checked by an independent verifier: RFC 9162 §2.1.3.2 and §2.1.4.2's
//! iterative algorithms (not the recursive generators the tree uses), and roots against a naive
//! recursive MTH written here from RFC 6962 §2.1.

use aws_lc_rs::digest::{SHA256, digest};
use sigstack_rekor::merkle::{Hash, MerkleTree, leaf_hash, node_hash};

fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => digest(&SHA256, b"").as_ref().try_into().unwrap(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

/// RFC 9162 §2.1.3.2.
fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// RFC 9162 §2.1.4.2.
fn verify_consistency(first: u64, second: u64, first_root: &Hash, second_root: &Hash, proof: &[Hash]) -> bool {
    if first == second {
        return proof.is_empty() && first_root == second_root;
    }
    if first == 0 {
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let (mut fn_, mut sn) = (first - 1, second - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let Some((head, rest)) = path.split_first() else { return false };
    let (mut fr, mut sr) = (*head, *head);
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && fr == *first_root && sr == *second_root
}

fn tree(n: u64) -> (MerkleTree, Vec<Hash>) {
    let mut tree = MerkleTree::new();
    let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect();
    for leaf in &leaves {
        tree.push(*leaf);
    }
    (tree, leaves)
}

#[test]
fn roots_match_the_naive_definition() {
    let (tree, leaves) = tree(300);
    for size in 0..=300u64 {
        assert_eq!(tree.root(size).unwrap(), naive_root(&leaves[..size as usize]), "size {size}");
    }
    assert!(tree.root(301).is_none());
}

#[test]
fn inclusion_proofs_for_every_index_up_to_64() {
    let (tree, leaves) = tree(64);
    for size in 1..=64u64 {
        let root = tree.root(size).unwrap();
        for index in 0..size {
            let proof = tree.inclusion_proof(index, size).unwrap();
            assert!(verify_inclusion(index, size, &leaves[index as usize], &proof, &root), "index {index} size {size}");
            // The same proof does not verify another leaf.
            let other = leaves[((index + 1) % size) as usize];
            if size > 1 {
                assert!(!verify_inclusion(index, size, &other, &proof, &root));
            }
        }
    }
    assert!(tree.inclusion_proof(5, 5).is_none());
    assert!(tree.inclusion_proof(0, 65).is_none());
}

#[test]
fn inclusion_proofs_in_a_few_thousand() {
    let (tree, leaves) = tree(3000);
    let root = tree.root(3000).unwrap();
    for index in (0..3000u64).step_by(7).chain([2999]) {
        let proof = tree.inclusion_proof(index, 3000).unwrap();
        assert!(verify_inclusion(index, 3000, &leaves[index as usize], &proof, &root), "index {index}");
    }
}

#[test]
fn consistency_proofs_for_every_pair_up_to_64() {
    let (tree, _) = tree(64);
    for second in 1..=64u64 {
        for first in 1..=second {
            let proof = tree.consistency_proof(first, second).unwrap();
            let (r1, r2) = (tree.root(first).unwrap(), tree.root(second).unwrap());
            assert!(verify_consistency(first, second, &r1, &r2, &proof), "{first} -> {second}");
            if first < second {
                assert!(!verify_consistency(first, second, &r2, &r1, &proof), "swapped roots must fail");
            }
        }
    }
    assert!(tree.consistency_proof(10, 9).is_none());
    assert!(tree.consistency_proof(1, 65).is_none());
}
