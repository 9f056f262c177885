//! Known-answer tests from transparency-dev/merkle (testonly/reference_test.go at
//! e739733c8ca2b89cfc49f35b161e81e16b5957d7, as carried by ct-merkle's test suite): the RFC 6962
//! reference leaves, inclusion proofs, and tree heads.

use super::*;

const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// (tree size, leaf index, proof path).
const INCLUSION: [(usize, usize, &[&str]); 7] = [
    (1, 0, &[]),
    (
        2,
        0,
        &["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"],
    ),
    (
        2,
        1,
        &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"],
    ),
    (
        3,
        2,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        5,
        1,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        8,
        0,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        8,
        5,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// Tree heads of the first n reference leaves, n = 1..=8 (RFC 6962 reference values).
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn leaves(n: usize) -> Vec<Vec<u8>> {
    LEAVES[..n]
        .iter()
        .map(|l| hex::decode(l).unwrap())
        .collect()
}

#[test]
fn the_frontier_computes_the_reference_tree_heads() {
    let mut f = Frontier::new();
    assert_eq!(
        hex::encode(f.root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "the empty tree is SHA-256 of nothing"
    );
    for (n, leaf) in leaves(8).iter().enumerate() {
        f.push(leaf);
        assert_eq!(hex::encode(f.root()), ROOTS[n], "size {}", n + 1);
    }
}

#[test]
fn inclusion_proofs_match_the_reference_and_verify() {
    for (size, index, path) in INCLUSION {
        let proof = prove(leaves(size), index).unwrap();
        assert_eq!(
            proof.path,
            path.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "size {size} index {index}"
        );
        assert_eq!(proof.root, ROOTS[size - 1]);
        assert!(
            verify(&leaves(size)[index], &proof),
            "size {size} index {index}"
        );
        let mut wrong = proof.clone();
        wrong.seq = if index == 0 { 2 } else { 1 };
        assert!(
            size == 1 || !verify(&leaves(size)[index], &wrong),
            "a proof is for one position"
        );
        assert!(!verify(b"forged", &proof));
    }
    assert!(prove(leaves(3), 3).is_none());
}

#[test]
fn the_frontier_agrees_with_ct_merkle_at_every_size() {
    let mut f = Frontier::new();
    let mut all = Vec::new();
    for i in 0..70u32 {
        let leaf = format!("entry {i}").into_bytes();
        f.push(&leaf);
        all.push(leaf);
        let proof = prove(all.clone(), all.len() - 1).unwrap();
        assert_eq!(hex::encode(f.root()), proof.root, "size {}", i + 1);
    }
}

#[test]
fn a_frontier_survives_its_peaks() {
    let mut f = Frontier::new();
    for n in 0..300u32 {
        let rebuilt = Frontier::from_peaks(f.size(), &f.peaks()).expect("peaks of a real frontier");
        assert_eq!(rebuilt, f, "size {n}");
        f.push(&n.to_be_bytes());
    }
    assert!(Frontier::from_peaks(5, &f.peaks()[..1]).is_none());
    assert!(Frontier::from_peaks(1, &["zz".to_string()]).is_none());
}

#[test]
fn proofs_from_streamed_leaf_hashes_equal_ct_merkles() {
    for size in 1..=40usize {
        let all: Vec<Vec<u8>> = (0..size)
            .map(|i| format!("entry {i}").into_bytes())
            .collect();
        for index in 0..size {
            let mut builder = InclusionBuilder::new(index as u64, size as u64).expect("in range");
            let mut more = true;
            for leaf in &all {
                assert!(more, "size {size}: asked to stop early");
                more = builder.push(leaf_hash(leaf));
            }
            assert!(!more, "size {size}: wants more than size leaves");
            let built = builder.finish().expect("every leaf pushed");
            assert_eq!(
                Some(&built),
                prove(all.clone(), index).as_ref(),
                "{index} of {size}"
            );
            assert!(verify(&all[index], &built));
        }
    }
    assert!(InclusionBuilder::new(3, 3).is_none());
    let mut short = InclusionBuilder::new(0, 3).unwrap();
    short.push(leaf_hash(b"a"));
    assert!(short.finish().is_none());
}
