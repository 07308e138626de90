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

fn complexity_slice<'a>(
    c: &'a Option<PyReadonlyArray1<'_, f64>>,
) -> Result<Option<&'a [f64]>, CoreError> {
    c.as_ref()
        .map(|a| {
            a.as_slice()
                .map_err(|e| Error::InvalidInput(format!("complexity: {e}")).into())
        })
        .transpose()
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
    let c = complexity_slice(&complexity)?;
    let sel = SelectOptions {
        budget,
        decay,
        max_complexity,
    };
    let s = run_detached(py, n_threads, || {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let m = iterit_core::tfidf(&refs, &words, &opts)?;
        drop(refs);
        iterit_core::select(&m.rows(), c, &sel)
    })?;
    Ok(selection_tuple(py, s))
}

/// An integer numpy array borrowed as int32 or int64, whichever it is.
enum IntArray<'py> {
    I32(PyReadonlyArray1<'py, i32>),
    I64(PyReadonlyArray1<'py, i64>),
}

impl<'py> IntArray<'py> {
    fn extract(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Self> {
        if let Ok(a) = obj.extract::<PyReadonlyArray1<'py, i64>>() {
            Ok(IntArray::I64(a))
        } else if let Ok(a) = obj.extract::<PyReadonlyArray1<'py, i32>>() {
            Ok(IntArray::I32(a))
        } else {
            Err(PyTypeError::new_err(format!(
                "{name} must be a 1-d int32 or int64 numpy array"
            )))
        }
    }
}

macro_rules! with_slice {
    ($arr:expr, $name:literal, |$s:ident| $body:expr) => {
        match &$arr {
            IntArray::I32(a) => {
                let $s = a
                    .as_slice()
                    .map_err(|e| Error::InvalidInput(format!("{}: {e}", $name)))?;
                $body
            }
            IntArray::I64(a) => {
                let $s = a
                    .as_slice()
                    .map_err(|e| Error::InvalidInput(format!("{}: {e}", $name)))?;
                $body
            }
        }
    };
}

/// Select from CSR rows given as numpy arrays (borrowed, not copied).
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
    let indptr = IntArray::extract(indptr, "indptr")?;
    let indices = IntArray::extract(indices, "indices")?;
    let data = data
        .as_slice()
        .map_err(|e| CoreError(Error::InvalidInput(format!("data: {e}"))))?;
    let c = complexity_slice(&complexity)?;
    let sel = SelectOptions {
        budget,
        decay,
        max_complexity,
    };
    let result: Result<Selection, CoreError> = (|| {
        with_slice!(indptr, "indptr", |p| with_slice!(indices, "indices", |i| {
            let rows = CsrRows {
                n_cols,
                indptr: p,
                indices: i,
                data,
            };
            run_detached(py, n_threads, || iterit_core::select(&rows, c, &sel))
        }))
    })();
    Ok(selection_tuple(py, result?))
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
