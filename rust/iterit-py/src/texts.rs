//! The texts of a call, read once and held: a Python list or tuple of `str` (the strings are
//! borrowed as UTF-8, and kept alive by holding the objects), or an Arrow string column
//! ([`crate::arrow`]). Either way no text is copied, and nothing can change a text while the
//! core reads it without the GIL (`str` objects and Arrow buffers are immutable).

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use rayon::prelude::*;

use crate::arrow::{self, ArrowTexts};
use crate::{InvalidInputError, InvalidTypeError};

/// UTF-8 checked views of `bytes`, or the position of the first invalid one.
pub fn as_utf8(
    bytes: Vec<&'static [u8]>,
) -> Result<Vec<&'static str>, (usize, std::str::Utf8Error)> {
    if let Some((i, e)) = bytes
        .par_iter()
        .enumerate()
        .find_first(|(_, b)| std::str::from_utf8(b).is_err())
        .map(|(i, b)| (i, std::str::from_utf8(b).unwrap_err()))
    {
        return Err((i, e));
    }
    // SAFETY: every view was just checked to be valid UTF-8.
    Ok(bytes
        .into_iter()
        .map(|b| unsafe { std::str::from_utf8_unchecked(b) })
        .collect())
}

enum Holder {
    Arrow(#[allow(dead_code)] ArrowTexts),
    Python(#[allow(dead_code)] Vec<Py<PyString>>),
}

/// Texts read from a list, a tuple or an Arrow column (private: built by iterit.selection).
#[pyclass(module = "iterit._iterit", name = "Texts", frozen)]
pub struct Texts {
    views: Vec<&'static str>,
    _holder: Holder,
}

impl Texts {
    pub fn views(&self) -> &[&str] {
        &self.views
    }
}

fn from_python(items: &[Bound<'_, PyAny>], what: &str) -> PyResult<Texts> {
    let mut views = Vec::with_capacity(items.len());
    let mut held = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let s = item.cast::<PyString>().map_err(|_| {
            let type_name = item
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "?".into());
            InvalidTypeError::new_err(format!("{what}[{i}] is {type_name}, expected str"))
        })?;
        let text = s.to_str().map_err(|e| {
            InvalidInputError::new_err(format!("{what}[{i}] cannot be encoded as UTF-8: {e}"))
        })?;
        // SAFETY: the UTF-8 buffer belongs to the str object, which is immutable and held in
        // `held` for as long as the view exists.
        views.push(unsafe { std::mem::transmute::<&str, &'static str>(text) });
        held.push(s.clone().unbind());
    }
    Ok(Texts {
        views,
        _holder: Holder::Python(held),
    })
}

#[pymethods]
impl Texts {
    #[new]
    #[pyo3(signature = (texts, what = "texts"))]
    fn new(texts: &Bound<'_, PyAny>, what: &str) -> PyResult<Self> {
        if let Some(mut arrow) = arrow::read(texts, what)? {
            return Ok(Texts {
                views: std::mem::take(&mut arrow.views),
                _holder: Holder::Arrow(arrow),
            });
        }
        if let Ok(list) = texts.cast::<PyList>() {
            let items: Vec<Bound<'_, PyAny>> = list.iter().collect();
            return from_python(&items, what);
        }
        if let Ok(tuple) = texts.cast::<PyTuple>() {
            let items: Vec<Bound<'_, PyAny>> = tuple.iter().collect();
            return from_python(&items, what);
        }
        Err(InvalidTypeError::new_err(format!(
            "{what} must be a list or tuple of str, or an Arrow string column"
        )))
    }

    fn __len__(&self) -> usize {
        self.views.len()
    }
}
