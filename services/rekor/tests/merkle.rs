//! Proofs from `MerkleTree` checked by an independent verifier (`sigstack_e2e::rfc9162`: RFC 9162's
//! iterative algorithms, not the recursive generators the tree uses), and roots against a naive
//! recursive MTH written here from RFC 6962 §2.1.

use aws_lc_rs::digest::{SHA256, digest};
use sigstack_e2e::rfc9162::{verify_consistency, verify_inclusion};
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

#[test]
fn the_log_verifier_agrees_with_the_independent_one() {
    let (tree, leaves) = tree(70);
    for size in 1..=70u64 {
        let root = tree.root(size).unwrap();
        for index in 0..size {
            let proof = tree.inclusion_proof(index, size).unwrap();
            let leaf = &leaves[index as usize];
            assert!(sigstack_rekor::merkle::verify_inclusion(index, size, leaf, &proof, &root));
            assert!(verify_inclusion(index, size, leaf, &proof, &root));
            let wrong = [0u8; 32];
            assert!(!sigstack_rekor::merkle::verify_inclusion(index, size, &wrong, &proof, &root));
            if !proof.is_empty() {
                assert!(!sigstack_rekor::merkle::verify_inclusion(index, size, leaf, &proof[1..], &root));
            }
            assert!(!sigstack_rekor::merkle::verify_inclusion(size, size, leaf, &proof, &root));
        }
    }
}

#[test]
fn the_log_consistency_verifier_agrees_with_the_independent_one() {
    let (tree, _) = tree(70);
    for new in 1..=70u64 {
        let new_root = tree.root(new).unwrap();
        for old in 1..=new {
            let old_root = tree.root(old).unwrap();
            let proof = tree.consistency_proof(old, new).unwrap();
            assert!(sigstack_rekor::merkle::verify_consistency(old, new, &proof, &old_root, &new_root), "{old}->{new}");
            assert!(verify_consistency(old, new, &old_root, &new_root, &proof));
            let wrong = [7u8; 32];
            assert!(!sigstack_rekor::merkle::verify_consistency(old, new, &proof, &wrong, &new_root));
            if old < new {
                assert!(!sigstack_rekor::merkle::verify_consistency(old, new, &proof, &old_root, &wrong));
            }
            if !proof.is_empty() {
                assert!(!sigstack_rekor::merkle::verify_consistency(old, new, &proof[1..], &old_root, &new_root));
            }
        }
    }
}
