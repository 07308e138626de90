//! Select diverse lines of a text file with the core alone, and time each stage.
//!
//!     cargo run --release -p iterit-core --example select_lines -- FILE BUDGET [DECAY]
//!
//! Every line is one (already lowercased) text, and complexity is 1 for all, so this is pure
//! diversity selection. ASCII word characters only: the Python package passes Python's own
//! Unicode `\w` instead. Prints the picked line numbers (0-based) in pick order on stdout and
//! timings on stderr.

use std::time::Instant;

use iterit_core::{select, tfidf, Analyzer, SelectOptions, TfidfOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: select_lines FILE BUDGET [DECAY]";
    let path = args.next().ok_or(usage)?;
    let budget: usize = args.next().ok_or(usage)?.parse()?;
    let decay: f64 = args.next().map(|d| d.parse()).transpose()?.unwrap_or(0.1);

    let raw = std::fs::read_to_string(&path)?;
    let texts: Vec<&str> = raw.lines().collect();
    let start = Instant::now();
    let opts = TfidfOptions {
        keep_vocabulary: false,
        ..Default::default()
    };
    let matrix = tfidf(&texts, &Analyzer::ascii(), &opts)?;
    let weighted = start.elapsed();
    let opts = SelectOptions {
        budget,
        decay,
        max_complexity: None,
    };
    let selection = select(&matrix.rows(), None, &opts)?;
    eprintln!(
        "{} texts, {} n-grams, {} stored weights: tf-idf {:.2?}, selection {:.2?} ({} row evaluations)",
        texts.len(),
        matrix.n_cols,
        matrix.nnz(),
        weighted,
        start.elapsed() - weighted,
        selection.n_evaluations
    );
    for i in selection.indices {
        println!("{i}");
    }
    Ok(())
}
