use super::*;
use proptest::prelude::*;

/// Ids by first occurrence, the obvious way.
fn sequential<K: Copy + Eq + Hash>(keys: &[K]) -> (Vec<u32>, Vec<K>) {
    let mut map = std::collections::HashMap::new();
    let mut distinct = Vec::new();
    let ids = keys
        .iter()
        .map(|&k| {
            *map.entry(k).or_insert_with(|| {
                distinct.push(k);
                distinct.len() as u32 - 1
            })
        })
        .collect();
    (ids, distinct)
}

/// The interner fed `keys` in chunks cut at `cuts`.
fn chunked<K: InternKey>(keys: &[K], cuts: &[usize]) -> (Vec<u32>, Interned<K::Owned>) {
    let mut interner = Interner::new();
    let mut ids = Vec::new();
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(keys.len())).collect();
    bounds.sort_unstable();
    bounds.insert(0, 0);
    bounds.push(keys.len());
    for w in bounds.windows(2) {
        ids.extend(interner.intern(&keys[w[0]..w[1]]).unwrap());
    }
    (ids, interner.finish(true))
}

proptest! {
    /// A token kept in place or boxed is the token it was made from, and no other: the same
    /// string, equality and hash (which growing tables rely on), whatever its length.
    #[test]
    fn owned_tokens_are_their_tokens(
        a in "(\\PC|\\x00){0,20}",
        b in "(\\PC|\\x00){0,20}",
    ) {
        let state = FixedState::with_seed(SEED);
        let (a, b) = (a.as_str(), b.as_str());
        let owned = a.to_owned_key();
        prop_assert!(a.is(&owned));
        prop_assert_eq!(b.is(&owned), a == b);
        prop_assert_eq!(<&str>::hash_owned(&owned, &state), state.hash_one(a));
        prop_assert_eq!(owned.into_string(), a);
    }

    /// Every length kept in place, and every byte of it, counts.
    #[test]
    fn inline_words_are_the_padded_bytes(bytes in prop::collection::vec(any::<u8>(), 0..=16)) {
        let mut padded = [0u8; 16];
        padded[..bytes.len()].copy_from_slice(&bytes);
        let expected = [
            u64::from_le_bytes(padded[..8].try_into().unwrap()),
            u64::from_le_bytes(padded[8..].try_into().unwrap()),
        ];
        prop_assert_eq!(inline_words(&bytes), expected);
    }

    #[test]
    fn equals_sequential_first_occurrence(
        keys in prop::collection::vec(0u64..50, 0..400),
        cuts in prop::collection::vec(0usize..400, 0..4),
    ) {
        let (ids, interned) = chunked(&keys, &cuts);
        let (want_ids, want_keys) = sequential(&keys);
        prop_assert_eq!(ids, want_ids);
        prop_assert_eq!(interned.len, want_keys.len());
        let got: Vec<u64> = interned.keys.unwrap().into_iter().map(join).collect();
        prop_assert_eq!(got, want_keys);
    }

    #[test]
    fn strings_too(keys in prop::collection::vec("[a-c]{0,3}|[a-c]{15,18}", 0..200), cuts in prop::collection::vec(0usize..200, 0..3)) {
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (ids, interned) = chunked(&refs, &cuts);
        let (want_ids, want_keys) = sequential(&refs);
        prop_assert_eq!(ids, want_ids);
        let got: Vec<String> = interned.keys.unwrap().into_iter().map(OwnedToken::into_string).collect();
        prop_assert_eq!(got, want_keys);
    }
}

#[test]
fn many_distinct_numbers_across_chunks() {
    let keys: Vec<u64> = (0..300_000u64)
        .map(|i| (i * 2_654_435_761) % 40_009)
        .collect();
    let (ids, interned) = chunked(&keys, &[70_000, 200_000]);
    let (want_ids, want_keys) = sequential(&keys);
    let first_bad = ids.iter().zip(&want_ids).position(|(a, b)| a != b);
    assert!(first_bad.is_none(), "first different id at {first_bad:?}");
    let got: Vec<u64> = interned.keys.unwrap().into_iter().map(join).collect();
    assert_eq!(got, want_keys);
}

#[test]
fn many_distinct_strings_across_chunks() {
    let words: Vec<String> = (0..300_000u64)
        .map(|i| format!("w{}", (i * 2_654_435_761) % 40_009))
        .collect();
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    let (ids, interned) = chunked(&refs, &[70_000, 200_000]);
    let (want_ids, want_keys) = sequential(&refs);
    let first_bad = ids.iter().zip(&want_ids).position(|(a, b)| a != b);
    assert!(first_bad.is_none(), "first different id at {first_bad:?}");
    let got: Vec<String> = interned
        .keys
        .unwrap()
        .into_iter()
        .map(OwnedToken::into_string)
        .collect();
    assert_eq!(got, want_keys);
}

#[test]
fn independent_of_threads() {
    let keys: Vec<u64> = (0..300_000u64)
        .map(|i| (i * 2_654_435_761) % 7_919)
        .collect();
    let cuts = [100_000, 250_000];
    let run = |t| {
        crate::with_threads(Some(t), || {
            let (ids, i) = chunked(&keys, &cuts);
            let keys: Option<Vec<u64>> = i.keys.map(|k| k.into_iter().map(join).collect());
            (ids, keys)
        })
        .unwrap()
    };
    let one = run(1);
    assert_eq!(one, run(4));
    let (ids, distinct) = sequential(&keys);
    assert_eq!(one, (ids, Some(distinct)));
}

#[test]
fn known_keys_looked_up_first_give_the_same_ids() {
    // Chunk by chunk, the path each takes: the first by buckets; the second too (nothing
    // was known before it); the third mostly known, so looked up first with some new keys
    // (some of them twice); the fourth all new, yet looked up first; the fifth by buckets.
    let chunks: Vec<Vec<u64>> = vec![
        (0..1000).collect(),
        (0..2000)
            .map(|i| if i % 20 == 0 { 5000 + i } else { i % 1000 })
            .collect(),
        (0..2000)
            .map(|i| if i % 10 == 0 { 7000 + i / 20 } else { i % 900 })
            .collect(),
        (0..600).map(|i| 10_000 + i / 2).collect(),
        (0..600)
            .map(|i| if i % 2 == 0 { i } else { 20_000 + i })
            .collect(),
    ];
    let mut interner = Interner::new();
    let (mut ids, mut shares) = (Vec::new(), Vec::new());
    for chunk in &chunks {
        ids.extend(interner.intern(chunk).unwrap());
        shares.push(interner.known_share);
    }
    assert!(shares[0] == 0.0 && shares[1] > KNOWN_FIRST && shares[2] > KNOWN_FIRST);
    assert!(shares[3] == 0.0 && shares[4] == 0.5, "{shares:?}");
    let all: Vec<u64> = chunks.concat();
    let (want_ids, want_keys) = sequential(&all);
    assert_eq!(ids, want_ids);
    let got: Vec<u64> = interner
        .finish(true)
        .keys
        .unwrap()
        .into_iter()
        .map(join)
        .collect();
    assert_eq!(got, want_keys);
}
