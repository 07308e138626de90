//! String columns read through the Arrow PyCapsule interface (`__arrow_c_stream__`, or
//! `__arrow_c_array__`), where they lie: the C Data Interface structures are moved out of the
//! capsules, kept alive (released on drop) and read in place. Strings (`u`), large strings
//! (`U`) and string views (`vu`) are accepted, chunked or not; a null is refused by position.
//! Arrow buffers are immutable, so reading them without the GIL is safe.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr::{self, NonNull};

use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

use crate::{InvalidInputError, InvalidTypeError};

#[repr(C)]
pub struct ArrowSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut ArrowSchema,
    dictionary: *mut ArrowSchema,
    release: Option<unsafe extern "C" fn(*mut ArrowSchema)>,
    private_data: *mut c_void,
}

#[repr(C)]
pub struct ArrowArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut ArrowArray,
    dictionary: *mut ArrowArray,
    release: Option<unsafe extern "C" fn(*mut ArrowArray)>,
    private_data: *mut c_void,
}

#[repr(C)]
struct ArrowArrayStream {
    get_schema: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowSchema) -> c_int>,
    get_next: Option<unsafe extern "C" fn(*mut ArrowArrayStream, *mut ArrowArray) -> c_int>,
    get_last_error: Option<unsafe extern "C" fn(*mut ArrowArrayStream) -> *const c_char>,
    release: Option<unsafe extern "C" fn(*mut ArrowArrayStream)>,
    private_data: *mut c_void,
}

/// Moves a C Data Interface structure out of its capsule: the capsule's copy is marked
/// released, so that only this copy releases the data (the PyCapsule interface's rule).
unsafe fn take<T>(
    capsule: &Bound<'_, PyAny>,
    name: &CStr,
    mark_released: impl FnOnce(&mut T),
) -> PyResult<Box<T>> {
    let capsule = capsule.cast::<PyCapsule>().map_err(PyErr::from)?;
    let p: NonNull<c_void> = capsule.pointer_checked(Some(name))?;
    let p = p.as_ptr().cast::<T>();
    let owned = Box::new(unsafe { ptr::read(p) });
    mark_released(unsafe { &mut *p });
    Ok(owned)
}

/// An owned schema, released on drop.
pub struct Schema(Box<ArrowSchema>);

impl Drop for Schema {
    fn drop(&mut self) {
        if let Some(release) = self.0.release {
            unsafe { release(&mut *self.0) };
        }
    }
}

/// An owned array, released on drop.
pub struct Array(Box<ArrowArray>);

impl Drop for Array {
    fn drop(&mut self) {
        if let Some(release) = self.0.release {
            unsafe { release(&mut *self.0) };
        }
    }
}

// SAFETY: the structures own immutable buffers; the C Data Interface lets any thread release
// them, and this binding releases them only while holding the GIL (the owner is a Python
// object).
unsafe impl Send for Array {}
unsafe impl Sync for Array {}
unsafe impl Send for Schema {}
unsafe impl Sync for Schema {}

struct Stream(Box<ArrowArrayStream>);

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(release) = self.0.release {
            unsafe { release(&mut *self.0) };
        }
    }
}

impl Stream {
    fn error(&mut self, what: &str, code: c_int) -> PyErr {
        let detail = self
            .0
            .get_last_error
            .map(|f| unsafe { f(&mut *self.0) })
            .filter(|p| !p.is_null())
            .map(|p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("error code {code}"));
        InvalidInputError::new_err(format!(
            "reading the Arrow stream's {what} failed: {detail}"
        ))
    }
}

/// The string layout of a schema, or an error naming what it is instead.
#[derive(Clone, Copy)]
enum Layout {
    Utf8,
    LargeUtf8,
    Utf8View,
}

fn layout(schema: &Schema, what: &str) -> PyResult<Layout> {
    let format = if schema.0.format.is_null() {
        String::new()
    } else {
        unsafe { CStr::from_ptr(schema.0.format) }
            .to_string_lossy()
            .into_owned()
    };
    if !schema.0.dictionary.is_null() {
        return Err(InvalidTypeError::new_err(format!(
            "{what} is a dictionary-encoded Arrow column; cast it to strings first"
        )));
    }
    match format.as_str() {
        "u" => Ok(Layout::Utf8),
        "U" => Ok(Layout::LargeUtf8),
        "vu" => Ok(Layout::Utf8View),
        other => Err(InvalidTypeError::new_err(format!(
            "{what} must be an Arrow column of strings (format 'u', 'U' or 'vu'), got format {other:?}"
        ))),
    }
}

/// Texts held as Arrow arrays, with a view of every string.
pub struct ArrowTexts {
    pub views: Vec<&'static str>,
    _arrays: Vec<Array>,
    _schema: Schema,
}

/// Reads `obj` through `__arrow_c_stream__` (preferred) or `__arrow_c_array__`; `None` when it
/// speaks neither.
pub fn read(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Option<ArrowTexts>> {
    let (schema, arrays) = if obj.hasattr("__arrow_c_stream__")? {
        let capsule = obj.call_method0("__arrow_c_stream__")?;
        let mut stream = Stream(unsafe {
            take::<ArrowArrayStream>(&capsule, c"arrow_array_stream", |s| s.release = None)?
        });
        let mut schema = Schema(Box::new(unsafe { std::mem::zeroed() }));
        let get_schema = stream
            .0
            .get_schema
            .ok_or_else(|| stream.error("schema", -1))?;
        let code = unsafe { get_schema(&mut *stream.0, &mut *schema.0) };
        if code != 0 {
            return Err(stream.error("schema", code));
        }
        layout(&schema, what)?;
        let mut arrays = Vec::new();
        loop {
            let mut array: Box<ArrowArray> = Box::new(unsafe { std::mem::zeroed() });
            let get_next = stream
                .0
                .get_next
                .ok_or_else(|| stream.error("next chunk", -1))?;
            let code = unsafe { get_next(&mut *stream.0, &mut *array) };
            if code != 0 {
                return Err(stream.error("next chunk", code));
            }
            if array.release.is_none() {
                break;
            }
            arrays.push(Array(array));
        }
        (schema, arrays)
    } else if obj.hasattr("__arrow_c_array__")? {
        let pair = obj.call_method0("__arrow_c_array__")?;
        let pair = pair.cast::<PyTuple>().map_err(PyErr::from)?;
        let schema = Schema(unsafe {
            take::<ArrowSchema>(&pair.get_item(0)?, c"arrow_schema", |s| s.release = None)?
        });
        let array = Array(unsafe {
            take::<ArrowArray>(&pair.get_item(1)?, c"arrow_array", |a| a.release = None)?
        });
        (schema, vec![array])
    } else {
        return Ok(None);
    };
    let kind = layout(&schema, what)?;
    let mut bytes = Vec::new();
    for array in &arrays {
        let first = bytes.len();
        unsafe { push_views(&array.0, kind, first, what, &mut bytes)? };
    }
    let views = obj
        .py()
        .detach(|| crate::texts::as_utf8(bytes))
        .map_err(|(i, e)| {
            InvalidInputError::new_err(format!("{what}[{i}] is not valid UTF-8: {e}"))
        })?;
    Ok(Some(ArrowTexts {
        views,
        _arrays: arrays,
        _schema: schema,
    }))
}

/// Appends the bytes of every string of `a`; `first` is the position of its first string.
/// The views live as long as the array they point into, which [`ArrowTexts`] holds.
unsafe fn push_views(
    a: &ArrowArray,
    kind: Layout,
    first: usize,
    what: &str,
    out: &mut Vec<&'static [u8]>,
) -> PyResult<()> {
    let (len, offset) = (a.length as usize, a.offset as usize);
    let buffer = |i: usize| unsafe { *a.buffers.add(i) };
    let validity = buffer(0).cast::<u8>();
    if a.null_count != 0 && !validity.is_null() {
        for i in 0..len {
            let bit = offset + i;
            if unsafe { *validity.add(bit / 8) } >> (bit % 8) & 1 == 0 {
                return Err(InvalidInputError::new_err(format!(
                    "{what}[{}] is null",
                    first + i
                )));
            }
        }
    }
    out.reserve(len);
    match kind {
        Layout::Utf8 | Layout::LargeUtf8 => {
            let data = buffer(2).cast::<u8>();
            let bounds = |i: usize| -> (usize, usize) {
                if matches!(kind, Layout::Utf8) {
                    let o = buffer(1).cast::<i32>();
                    unsafe { (*o.add(offset + i) as usize, *o.add(offset + i + 1) as usize) }
                } else {
                    let o = buffer(1).cast::<i64>();
                    unsafe { (*o.add(offset + i) as usize, *o.add(offset + i + 1) as usize) }
                }
            };
            for i in 0..len {
                let (s, e) = bounds(i);
                let bytes: &'static [u8] = if e > s {
                    unsafe { std::slice::from_raw_parts(data.add(s), e - s) }
                } else {
                    &[]
                };
                out.push(bytes);
            }
        }
        Layout::Utf8View => {
            let views = buffer(1).cast::<[u8; 16]>();
            for i in 0..len {
                let view: &'static [u8; 16] = unsafe { &*views.add(offset + i) };
                let n = i32::from_le_bytes(view[0..4].try_into().expect("4 bytes")) as usize;
                let bytes: &'static [u8] = if n <= 12 {
                    &view[4..4 + n]
                } else {
                    let b = i32::from_le_bytes(view[8..12].try_into().expect("4 bytes")) as usize;
                    let o = i32::from_le_bytes(view[12..16].try_into().expect("4 bytes")) as usize;
                    unsafe { std::slice::from_raw_parts(buffer(2 + b).cast::<u8>().add(o), n) }
                };
                out.push(bytes);
            }
        }
    }
    Ok(())
}
