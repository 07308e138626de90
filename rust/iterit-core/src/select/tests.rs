use super::*;
use crate::exact_sum::exact_sum;
use proptest::prelude::*;

/// The greedy selection of docs/design.md literally: recompute every candidate's score at every step.
fn naive(
    rows: &[Vec<(usize, f64)>],
    n_cols: usize,
    c: Option<&[f64]>,
    opts: &SelectOptions,
) -> Selection {
    let cx = |r: usize| c.map_or(1.0, |c| c[r]);
    let max_c = c.and(opts.max_complexity);
    let mut alpha = vec![1.0; n_cols];
    let mut left: Vec<usize> = (0..rows.len())
        .filter(|&r| is_candidate(cx(r), max_c))
        .collect();
    let n_candidates = left.len();
    let (mut indices, mut scores) = (vec![], vec![]);
    while indices.len() < opts.budget && !left.is_empty() {
        let score = |r: usize| cx(r) * exact_sum(rows[r].iter().map(|&(g, w)| alpha[g] * w));
        let best = *left
            .iter()
            .max_by(|&&a, &&b| {
                score(a)
                    .total_cmp(&score(b))
                    .then(cx(a).total_cmp(&cx(b)))
                    .then(b.cmp(&a))
            })
            .unwrap();
        indices.push(best as i64);
        scores.push(score(best));
        left.retain(|&r| r != best);
        for &(g, _) in &rows[best] {
            alpha[g] *= opts.decay;
        }
    }
    Selection {
        shortfall: opts.budget - indices.len(),
        indices,
        scores,
        n_candidates,
        n_evaluations: 0,
    }
}

fn to_csr(rows: &[Vec<(usize, f64)>]) -> (Vec<i64>, Vec<i32>, Vec<f64>) {
    let mut indptr = vec![0i64];
    let (mut indices, mut data) = (vec![], vec![]);
    for row in rows {
        for &(g, w) in row {
            indices.push(g as i32);
            data.push(w);
        }
        indptr.push(indices.len() as i64);
    }
    (indptr, indices, data)
}

fn run(
    rows: &[Vec<(usize, f64)>],
    n_cols: usize,
    c: Option<&[f64]>,
    opts: &SelectOptions,
) -> Selection {
    let (indptr, indices, data) = to_csr(rows);
    let csr = CsrRows {
        n_cols,
        indptr: &indptr,
        indices: &indices,
        data: &data,
    };
    select(&csr, c, opts).unwrap()
}

/// Rows with few distinct weights and columns, so ties and duplicate rows are common.
fn rows_strategy() -> impl Strategy<Value = (Vec<Vec<(usize, f64)>>, usize)> {
    (1usize..8).prop_flat_map(|n_cols| {
        let row = prop::collection::btree_map(
            0..n_cols,
            prop::sample::select(vec![0.0, 0.25, 0.5, 1.0, 0.3]),
            0..=n_cols,
        )
        .prop_map(|m| m.into_iter().collect::<Vec<_>>());
        (prop::collection::vec(row, 0..25), Just(n_cols))
    })
}

fn complexity_strategy(n: usize) -> impl Strategy<Value = Option<Vec<f64>>> {
    let value = prop::sample::select(vec![
        0.5,
        0.5,
        0.25,
        0.9,
        1.0,
        1.5,
        0.0,
        -0.1,
        f64::NAN,
        f64::INFINITY,
        0.7,
    ]);
    prop::option::weighted(0.8, prop::collection::vec(value, n))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn lazy_equals_naive(
        ((rows, n_cols), c) in rows_strategy().prop_flat_map(|(rows, n_cols)| {
            let n = rows.len();
            (Just((rows, n_cols)), complexity_strategy(n))
        }),
        decay in prop::sample::select(vec![0.0, 0.1, 0.5, 0.9]),
        budget in 1usize..30,
    ) {
        let opts = SelectOptions { budget, decay, max_complexity: Some(1.0) };
        // Two threads: stale rows are scored in pairs, one of them by the helper thread.
        let got = crate::with_threads(Some(2), || run(&rows, n_cols, c.as_deref(), &opts))
            .unwrap();
        let want = naive(&rows, n_cols, c.as_deref(), &opts);
        // One thread scores the same rows (the same count) by itself.
        let alone = crate::with_threads(Some(1), || run(&rows, n_cols, c.as_deref(), &opts))
            .unwrap();
        prop_assert_eq!(&got, &alone);
        prop_assert_eq!(&got.indices, &want.indices);
        prop_assert_eq!(got.scores.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                        want.scores.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        prop_assert_eq!(got.shortfall, want.shortfall);
        prop_assert_eq!(got.n_candidates, want.n_candidates);
        let mut seen = got.indices.clone();
        seen.sort_unstable();
        seen.dedup();
        prop_assert_eq!(seen.len(), got.indices.len());
    }
}

#[test]
fn ties_go_to_larger_complexity_then_smaller_index() {
    let rows = vec![vec![(0, 1.0)], vec![(1, 1.0)], vec![(2, 1.0)]];
    let c = [0.5, 0.5, 0.5];
    let opts = SelectOptions {
        budget: 3,
        decay: 0.1,
        max_complexity: Some(1.0),
    };
    assert_eq!(run(&rows, 3, Some(&c), &opts).indices, vec![0, 1, 2]);
    // Same score 0.5 for rows 0 and 1, but row 1 has the larger complexity.
    let rows = vec![vec![(0, 1.0)], vec![(1, 0.625)]];
    let c = [0.5, 0.8];
    let opts = SelectOptions {
        budget: 2,
        decay: 0.1,
        max_complexity: Some(1.0),
    };
    assert_eq!(run(&rows, 2, Some(&c), &opts).indices, vec![1, 0]);
}

#[test]
fn decay_steers_away_from_covered_ngrams() {
    // Row 1 repeats row 0's n-gram; row 2 is new. After picking row 0, row 2 wins.
    let rows = vec![vec![(0, 1.0)], vec![(0, 0.9)], vec![(1, 0.5)]];
    let opts = SelectOptions {
        budget: 3,
        decay: 0.1,
        max_complexity: None,
    };
    let s = run(&rows, 2, None, &opts);
    assert_eq!(s.indices, vec![0, 2, 1]);
    assert_eq!(s.scores, vec![1.0, 0.5, 0.9 * 0.1]);
}

#[test]
fn shortfall_and_invalid_complexities() {
    let rows = vec![vec![(0, 1.0)]; 4];
    let c = [f64::NAN, 1.0, 0.3, 0.0];
    let opts = SelectOptions {
        budget: 3,
        decay: 0.1,
        max_complexity: Some(1.0),
    };
    let s = run(&rows, 1, Some(&c), &opts);
    assert_eq!((s.indices, s.shortfall, s.n_candidates), (vec![2], 2, 1));
}

#[test]
fn duplicate_columns_are_summed_and_decay_once() {
    let dup = CsrRows {
        n_cols: 2,
        indptr: &[0i64, 2, 3],
        indices: &[0i32, 0, 1],
        data: &[0.5, 0.5, 0.8],
    };
    let canon = CsrRows {
        n_cols: 2,
        indptr: &[0i64, 1, 2],
        indices: &[0i32, 1],
        data: &[1.0, 0.8],
    };
    let opts = SelectOptions {
        budget: 2,
        decay: 0.5,
        max_complexity: None,
    };
    assert_eq!(
        select(&dup, None, &opts).unwrap(),
        select(&canon, None, &opts).unwrap()
    );
}

#[test]
fn rejects_bad_arguments_and_matrices() {
    let ok = CsrRows {
        n_cols: 1,
        indptr: &[0i64, 1],
        indices: &[0i32],
        data: &[1.0],
    };
    let opts = |budget, decay| SelectOptions {
        budget,
        decay,
        max_complexity: Some(1.0),
    };
    assert!(matches!(
        select(&ok, None, &opts(0, 0.1)),
        Err(Error::InvalidArgument(_))
    ));
    for d in [1.0, -0.1, f64::NAN] {
        assert!(matches!(
            select(&ok, None, &opts(1, d)),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(matches!(
        select(&ok, Some(&[0.5, 0.5]), &opts(1, 0.1)),
        Err(Error::InvalidInput(_))
    ));
    let bad_col = CsrRows {
        n_cols: 1,
        indptr: &[0i64, 1],
        indices: &[1i32],
        data: &[1.0],
    };
    let neg_w = CsrRows {
        n_cols: 1,
        indptr: &[0i64, 1],
        indices: &[0i32],
        data: &[-1.0],
    };
    let bad_ptr = CsrRows {
        n_cols: 1,
        indptr: &[0i64, 2],
        indices: &[0i32],
        data: &[1.0],
    };
    let neg_col = CsrRows {
        n_cols: 1,
        indptr: &[0i64, 1],
        indices: &[-1i32],
        data: &[1.0],
    };
    for m in [bad_col, neg_w, bad_ptr, neg_col] {
        assert!(matches!(
            select(&m, None, &opts(1, 0.1)),
            Err(Error::InvalidInput(_))
        ));
    }
}

#[test]
fn thread_count_does_not_change_picks() {
    let rows: Vec<Vec<(usize, f64)>> = (0..500)
        .map(|i| {
            (0..8)
                .map(|k| ((i * 7 + k * 13) % 97, ((i + k) % 5) as f64 * 0.1 + 0.05))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .collect()
        })
        .collect();
    let opts = SelectOptions {
        budget: 100,
        decay: 0.1,
        max_complexity: None,
    };
    let one = crate::with_threads(Some(1), || run(&rows, 97, None, &opts)).unwrap();
    let three = crate::with_threads(Some(3), || run(&rows, 97, None, &opts)).unwrap();
    assert_eq!(one, three);
}

/// Rows of one weight each, whose scoring panics for one row.
struct PanicsOn {
    row: usize,
    decays: Vec<AtomicU32>,
}

impl Rows for PanicsOn {
    fn initial_diversity(&self, r: usize, _: &mut NonNegativeSum) -> f64 {
        1.0 + r as f64
    }
    fn diversity(&self, r: usize, alpha_by_decays: &[f64], _: &mut NonNegativeSum) -> f64 {
        assert_ne!(r, self.row, "scoring row {r} failed");
        let decays = self.decays[r % 2].load(atomic::Ordering::Relaxed);
        (1.0 + r as f64) * alpha_by_decays[decays as usize]
    }
    fn decay(&self, r: usize) {
        add_decay(&self.decays[r % 2]);
    }
}

#[test]
fn a_panic_in_either_scoring_thread_ends_the_greedy() {
    let opts = SelectOptions {
        budget: 5,
        decay: 0.5,
        max_complexity: None,
    };
    // Row 7 is scored second of its pair (by the helper), row 8 first (by the greedy's
    // thread): either way the call panics instead of waiting forever, and without the panic
    // the same greedy completes.
    for row in [7, 8, usize::MAX] {
        let view = PanicsOn {
            row,
            decays: zeros(2),
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crate::with_threads(Some(2), || lazy_greedy(&view, 10, None, &opts, &Silent))
                .unwrap()
                .unwrap()
        }));
        assert_eq!(outcome.is_err(), row != usize::MAX, "row {row}");
    }
}
