//! The Python binding of `iterit-core`: converts Python inputs to owned Rust data or to views
//! of immutable data it holds (never of a buffer Python code could write), releases the GIL
//! around every core call, reports progress to an optional Python callback, and maps core
//! errors to typed Python exceptions. No algorithm lives here.

mod arrow;
mod texts;

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use iterit_core::{
    Analyzer, CodePoints, CsrRows, Error, Lowercase, NgramNames, Phase, SelectOptions, Selection,
    TfidfOptions, Weights, WordChars,
};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyIndexError, PyTypeError};
use pyo3::import_exception;
use pyo3::prelude::*;

use crate::texts::Texts;

// The exception hierarchy lives in Python (iterit/errors.py), where multiple inheritance lets
// InvalidInputError be both an IteritError and a ValueError.
import_exception!(iterit.errors, InvalidInputError);
import_exception!(iterit.errors, InvalidTypeError);
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
            Error::Internal(_) | Error::Cancelled => InternalError::new_err(message),
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

fn ranges(flat: &PyReadonlyArray1<'_, u32>, name: &str) -> Result<CodePoints, CoreError> {
    let flat = flat
        .as_slice()
        .map_err(|e| Error::InvalidInput(format!("{name}: {e}")))?;
    if flat.len() % 2 != 0 {
        return Err(Error::InvalidInput(format!("{name} must come in (start, end) pairs")).into());
    }
    let pairs: Vec<(u32, u32)> = flat.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    Ok(WordChars::from_ranges(&pairs)?)
}

/// Python's `str.lower` and `\w` as tables (built once per process by iterit.selection.text).
#[pyclass(module = "iterit._iterit", name = "Analyzer", frozen)]
struct PyAnalyzer(Analyzer);

#[pymethods]
impl PyAnalyzer {
    #[new]
    fn new(
        word_ranges: PyReadonlyArray1<'_, u32>,
        lower_mappings: PyReadonlyArray1<'_, u32>,
        cased_ranges: PyReadonlyArray1<'_, u32>,
        case_ignorable_ranges: PyReadonlyArray1<'_, u32>,
    ) -> PyResult<Self> {
        let mappings = lower_mappings
            .as_slice()
            .map_err(|e| CoreError(Error::InvalidInput(format!("lower_mappings: {e}"))))?;
        let lowercase = Lowercase::new(
            mappings,
            ranges(&cased_ranges, "cased_ranges")?,
            ranges(&case_ignorable_ranges, "case_ignorable_ranges")?,
        )
        .map_err(CoreError)?;
        Ok(Self(Analyzer {
            lowercase: Some(lowercase),
            words: ranges(&word_ranges, "word_ranges")?,
        }))
    }

    /// Every text lowercased as the core does it (what the tests compare with `str.lower`).
    fn lowercase(&self, py: Python<'_>, texts: &Texts) -> Vec<String> {
        let views = texts.views();
        py.detach(|| {
            views
                .iter()
                .map(|t| self.0.lowered(t).into_owned())
                .collect()
        })
    }
}

/// A Python progress callback, `progress(phase, done, total)`, called with the GIL taken
/// back; the first exception it raises stops the work and is raised to the caller.
struct Reporter {
    callback: Option<Py<PyAny>>,
    failure: Mutex<Option<PyErr>>,
}

impl Reporter {
    fn new(callback: Option<Bound<'_, PyAny>>) -> Self {
        Self {
            callback: callback.map(Bound::unbind),
            failure: Mutex::new(None),
        }
    }

    fn report(&self, phase: Phase, done: u64, total: u64) -> bool {
        let Some(callback) = &self.callback else {
            return true;
        };
        Python::attach(|py| match callback.call1(py, (phase.name(), done, total)) {
            Ok(_) => true,
            Err(e) => {
                *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                false
            }
        })
    }

    /// The callback's exception in place of the core's `Cancelled`.
    fn error(&self, e: CoreError) -> PyErr {
        match (
            e.0,
            self.failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        ) {
            (Error::Cancelled, Some(raised)) => raised,
            (other, _) => CoreError(other).into(),
        }
    }
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

/// TF-IDF rows of `texts`; the arrays move into numpy without a copy.
#[pyfunction]
#[pyo3(signature = (texts, analyzer, ngram_range, variant, keep_vocabulary, n_threads=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn tfidf<'py>(
    py: Python<'py>,
    texts: &Texts,
    analyzer: &PyAnalyzer,
    ngram_range: (usize, usize),
    variant: &str,
    keep_vocabulary: bool,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<CsrArrays<'py>> {
    let opts = tfidf_options(ngram_range, variant, keep_vocabulary)?;
    let reporter = Reporter::new(progress);
    let views = texts.views();
    let m = run_detached(py, n_threads, || {
        let report = |p: Phase, d: u64, t: u64| reporter.report(p, d, t);
        iterit_core::tfidf_with_progress(views, &analyzer.0, &opts, &report)
    })
    .map_err(|e| reporter.error(e))?;
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
/// TF-IDF is fitted on the candidates only (docs/design.md, "TF-IDF"); picks are positions in
/// `texts`.
#[pyfunction]
#[pyo3(signature = (texts, analyzer, ngram_range, variant, complexity, budget, decay, max_complexity, n_threads=None, progress=None))]
#[allow(clippy::too_many_arguments)]
fn select_texts<'py>(
    py: Python<'py>,
    texts: &Texts,
    analyzer: &PyAnalyzer,
    ngram_range: (usize, usize),
    variant: &str,
    complexity: Option<PyReadonlyArray1<'py, f64>>,
    budget: usize,
    decay: f64,
    max_complexity: Option<f64>,
    n_threads: Option<usize>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<SelectionTuple<'py>> {
    let opts = tfidf_options(ngram_range, variant, false)?;
    let c = owned_complexity(&complexity)?;
    drop(complexity);
    let sel = SelectOptions {
        budget,
        decay,
        max_complexity,
    };
    let reporter = Reporter::new(progress);
    let views = texts.views();
    let s = run_detached(py, n_threads, || {
        let report = |p: Phase, d: u64, t: u64| reporter.report(p, d, t);
        select_candidates(views, &analyzer.0, &opts, c.as_deref(), &sel, &report)
    })
    .map_err(|e| reporter.error(e))?;
    Ok(selection_tuple(py, s))
}

/// Fits TF-IDF on the candidate texts only, selects among them, and maps picks back.
fn select_candidates(
    texts: &[&str],
    analyzer: &Analyzer,
    opts: &TfidfOptions,
    complexity: Option<&[f64]>,
    sel: &SelectOptions,
    progress: &dyn iterit_core::Progress,
) -> Result<Selection, Error> {
    if let Some(c) = complexity {
        if c.len() != texts.len() {
            return Err(Error::InvalidInput(format!(
                "complexity has {} values for {} samples",
                c.len(),
                texts.len()
            )));
        }
    }
    let kept: Option<Vec<usize>> = complexity.and_then(|c| {
        let keep: Vec<usize> = (0..c.len())
            .filter(|&i| iterit_core::select::is_candidate(c[i], sel.max_complexity))
            .collect();
        (keep.len() < c.len()).then_some(keep)
    });
    let (sub_texts, sub_c): (Cow<'_, [&str]>, Cow<'_, [f64]>) = match (&kept, complexity) {
        (Some(k), Some(c)) => (
            k.iter().map(|&i| texts[i]).collect(),
            k.iter().map(|&i| c[i]).collect(),
        ),
        _ => (
            Cow::Borrowed(texts),
            Cow::Borrowed(complexity.unwrap_or(&[])),
        ),
    };
    let sub_c = complexity.map(|_| &*sub_c);
    let counts = iterit_core::count_shared_ngrams(&sub_texts, analyzer, opts, progress)?;
    drop(sub_texts);
    iterit_core::progress::report(progress, Phase::Tfidf, 0, counts.n_rows)?;
    let weights = Weights::new(&counts, opts.variant);
    iterit_core::progress::report(progress, Phase::Tfidf, counts.n_rows, counts.n_rows)?;
    let mut s = iterit_core::select_counts(&weights, sub_c, sel, progress)?;
    if let Some(k) = kept {
        for i in s.indices.iter_mut() {
            *i = k[*i as usize] as i64;
        }
    }
    Ok(s)
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
    m.add_class::<PyAnalyzer>()?;
    m.add_class::<Texts>()?;
    m.add_function(wrap_pyfunction!(tfidf, m)?)?;
    m.add_function(wrap_pyfunction!(select_texts, m)?)?;
    m.add_function(wrap_pyfunction!(select_csr, m)?)?;
    Ok(())
}
