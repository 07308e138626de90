//! The Python binding of `iterit-core`: converts Python inputs to owned or borrowed Rust data,
//! releases the GIL around every core call, and maps core errors to typed Python exceptions.
//! No algorithm lives here.

use std::panic::{catch_unwind, AssertUnwindSafe};

use iterit_core::{CsrRows, Error, NgramNames, SelectOptions, Selection, TfidfOptions, WordChars};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::import_exception;
use pyo3::prelude::*;

// The exception hierarchy lives in Python (iterit/errors.py), where multiple inheritance lets
// InvalidInputError be both an IteritError and a ValueError.
import_exception!(iterit.errors, InvalidInputError);
import_exception!(iterit.errors, CapacityError);
import_exception!(iterit.errors, InternalError);

/// The one conversion from core errors to Python exceptions.
struct CoreError(Error);

impl From<Error> for CoreError {
    fn from(e: Error) -> Self {
        CoreError(e)
    }
}

impl From<CoreError> for PyErr {
    fn from(CoreError(e): CoreError) -> PyErr {
        let message = e.to_string();
        match e {
            Error::InvalidArgument(_) | Error::InvalidInput(_) => {
                InvalidInputError::new_err(message)
            }
            Error::Capacity(_) => CapacityError::new_err(message),
            Error::Internal(_) => InternalError::new_err(message),
        }
    }
}

/// Runs core work without the GIL, on `n_threads` threads, and turns a panic into an error
/// so that none ever crosses into Python.
fn run_detached<T: Send>(
    py: Python<'_>,
    n_threads: Option<usize>,
    work: impl FnOnce() -> Result<T, Error> + Send,
) -> Result<T, CoreError> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(|| {
            iterit_core::with_threads(n_threads, work)
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(Error::Internal(what))
        })
        .and_then(|r| r)
    })
    .map_err(CoreError)
}

fn word_chars(ranges: &PyReadonlyArray1<'_, u32>) -> Result<WordChars, CoreError> {
    let flat = ranges
        .as_slice()
        .map_err(|e| Error::InvalidInput(e.to_string()))?;
    if flat.len() % 2 != 0 {
        return Err(
            Error::InvalidInput("word ranges must come in (start, end) pairs".into()).into(),
        );
    }
    let pairs: Vec<(u32, u32)> = flat.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    Ok(WordChars::from_ranges(&pairs)?)
}

fn tfidf_options(
    ngram_range: (usize, usize),
    variant: &str,
    keep_vocabulary: bool,
) -> Result<TfidfOptions, CoreError> {
    Ok(TfidfOptions {
        ngram_range,
        variant: variant.parse()?,
        keep_vocabulary,
    })
}

/// The n-gram names of a TF-IDF matrix, kept on the Rust side until asked for.
#[pyclass(module = "iterit._iterit", name = "NgramNames", frozen)]
struct PyNgramNames(NgramNames);

#[pymethods]
impl PyNgramNames {
    fn __len__(&self) -> usize {
        self.0.len()
    }

    fn __getitem__(&self, col: usize) -> PyResult<String> {
        self.0
            .get(col)
            .ok_or_else(|| PyIndexError::new_err(format!("column {col} out of range")))
    }

    fn to_list(&self, py: Python<'_>) -> Vec<String> {
        py.detach(|| self.0.to_vec())
    }
}

type CsrArrays<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i32>>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<u32>>,
    usize,
    Option<PyNgramNames>,
);

/// TF-IDF rows of already lowercased `texts`; the arrays move into numpy without a copy.
#[pyfunction]
#[pyo3(signature = (texts, word_ranges, ngram_range, variant, keep_vocabulary, n_threads=None))]
fn tfidf<'py>(
    py: Python<'py>,
    texts: Vec<String>,
    word_ranges: PyReadonlyArray1<'py, u32>,
    ngram_range: (usize, usize),
    variant: &str,
    keep_vocabulary: bool,
    n_threads: Option<usize>,
) -> PyResult<CsrArrays<'py>> {
    let words = word_chars(&word_ranges)?;
    let opts = tfidf_options(ngram_range, variant, keep_vocabulary)?;
    let m = run_detached(py, n_threads, || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        iterit_core::tfidf(&refs, &words, &opts)
    })?;
    Ok((
        m.indptr.into_pyarray(py),
        m.indices.into_pyarray(py),
        m.data.into_pyarray(py),
        m.document_frequency.into_pyarray(py),
        m.n_cols,
        m.names.map(PyNgramNames),
    ))
}

type SelectionTuple<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<f64>>,
    usize,
    usize,
    u64,
);

fn selection_tuple(py: Python<'_>, s: Selection) -> SelectionTuple<'_> {
    (
        s.indices.into_pyarray(py),
        s.scores.into_pyarray(py),
        s.shortfall,
        s.n_candidates,
        s.n_evaluations,
    )
}

/// An owned copy of a numpy array's values. The core runs with the GIL released, when any
/// Python thread (or numpy itself, which writes large arrays without the GIL) may write the
/// caller's array, so it never reads a borrowed numpy buffer (docs/design.md, "TF-IDF").
fn owned<T: numpy::Element + Copy>(
    a: &PyReadonlyArray1<'_, T>,
    name: &str,
) -> Result<Vec<T>, CoreError> {
    Ok(a.as_slice()
        .map_err(|e| Error::InvalidInput(format!("{name}: {e}")))?
        .to_vec())
}

fn owned_complexity(c: &Option<PyReadonlyArray1<'_, f64>>) -> Result<Option<Vec<f64>>, CoreError> {
    c.as_ref().map(|a| owned(a, "complexity")).transpose()
}

/// Tokenise, weight and select in one call, without building any Python object in between.
#[pyfunction]
#[pyo3(signature = (texts, word_ranges, ngram_range, variant, complexity, budget, decay, max_complexity, n_threads=None))]
#[allow(clippy::too_many_arguments)]
fn select_texts<'py>(
    py: Python<'py>,
    texts: Vec<String>,
    word_ranges: PyReadonlyArray1<'py, u32>,
    ngram_range: (usize, usize),
    variant: &str,
    complexity: Option<PyReadonlyArray1<'py, f64>>,
    budget: usize,
    decay: f64,
    max_complexity: Option<f64>,
    n_threads: Option<usize>,
) -> PyResult<SelectionTuple<'py>> {
    let words = word_chars(&word_ranges)?;
    let opts = tfidf_options(ngram_range, variant, false)?;
    let c = owned_complexity(&complexity)?;
    drop(complexity);
    let sel = SelectOptions {
        budget,
        decay,
        max_complexity,
    };
    let s = run_detached(py, n_threads, || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let m = iterit_core::tfidf(&refs, &words, &opts)?;
        drop(refs);
        iterit_core::select(&m.rows(), c.as_deref(), &sel)
    })?;
    Ok(selection_tuple(py, s))
}

/// An integer numpy array copied as int32 or int64, whichever it is.
enum IntVec {
    I32(Vec<i32>),
    I64(Vec<i64>),
}

impl IntVec {
    fn copy_of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Self> {
        if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, i64>>() {
            Ok(IntVec::I64(owned(&a, name)?))
        } else if let Ok(a) = obj.extract::<PyReadonlyArray1<'_, i32>>() {
            Ok(IntVec::I32(owned(&a, name)?))
        } else {
            Err(PyTypeError::new_err(format!(
                "{name} must be a 1-d int32 or int64 numpy array"
            )))
        }
    }
}

/// Runs the selector on CSR arrays of any of the integer types numpy gives.
fn select_rows(
    indptr: &IntVec,
    indices: &IntVec,
    n_cols: usize,
    data: &[f64],
    c: Option<&[f64]>,
    sel: &SelectOptions,
) -> Result<Selection, Error> {
    macro_rules! go {
        ($p:expr, $i:expr) => {
            iterit_core::select(
                &CsrRows {
                    n_cols,
                    indptr: $p,
                    indices: $i,
                    data,
                },
                c,
                sel,
            )
        };
    }
    match (indptr, indices) {
        (IntVec::I32(p), IntVec::I32(i)) => go!(p, i),
        (IntVec::I32(p), IntVec::I64(i)) => go!(p, i),
        (IntVec::I64(p), IntVec::I32(i)) => go!(p, i),
        (IntVec::I64(p), IntVec::I64(i)) => go!(p, i),
    }
}

/// Select from CSR rows given as numpy arrays (copied first: see [`owned`]).
#[pyfunction]
#[pyo3(signature = (indptr, indices, data, n_cols, complexity, budget, decay, max_complexity, n_threads=None))]
#[allow(clippy::too_many_arguments)]
fn select_csr<'py>(
    py: Python<'py>,
    indptr: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    data: PyReadonlyArray1<'py, f64>,
    n_cols: usize,
    complexity: Option<PyReadonlyArray1<'py, f64>>,
    budget: usize,
    decay: f64,
    max_complexity: Option<f64>,
    n_threads: Option<usize>,
) -> PyResult<SelectionTuple<'py>> {
    let indptr = IntVec::copy_of(indptr, "indptr")?;
    let indices = IntVec::copy_of(indices, "indices")?;
    let data = owned(&data, "data")?;
    let c = owned_complexity(&complexity)?;
    let sel = SelectOptions {
        budget,
        decay,
        max_complexity,
    };
    let s = run_detached(py, n_threads, || {
        select_rows(&indptr, &indices, n_cols, &data, c.as_deref(), &sel)
    })?;
    Ok(selection_tuple(py, s))
}

#[pymodule]
fn _iterit(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<PyNgramNames>()?;
    m.add_function(wrap_pyfunction!(tfidf, m)?)?;
    m.add_function(wrap_pyfunction!(select_texts, m)?)?;
    m.add_function(wrap_pyfunction!(select_csr, m)?)?;
    Ok(())
}
