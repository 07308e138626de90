use iterit_core::*;
use std::time::Instant;
fn main() {
    let raw = std::fs::read_to_string(std::env::args().nth(1).unwrap()).unwrap();
    let budget: usize = std::env::args()
        .nth(2)
        .map(|b| b.parse().unwrap())
        .unwrap_or(1034);
    let texts: Vec<&str> = raw.split('\0').collect();
    let words = WordChars::ascii();
    let t = Instant::now();
    let m = tfidf(
        &texts,
        &words,
        &TfidfOptions {
            keep_vocabulary: false,
            ..Default::default()
        },
    )
    .unwrap();
    let t1 = t.elapsed();
    let c: Vec<f64> = (0..texts.len())
        .map(|i| ((i * 7919) % 1000) as f64 / 900.0 + 0.001)
        .collect();
    let t = Instant::now();
    let s = select(
        &m.rows(),
        Some(&c),
        &SelectOptions {
            budget,
            decay: 0.1,
            max_complexity: Some(1.0),
        },
    )
    .unwrap();
    println!(
        "tfidf {:?} select {:?} evals {} nnz {} cols {}",
        t1,
        t.elapsed(),
        s.n_evaluations,
        m.nnz(),
        m.n_cols
    );
}
