use std::fmt;

/// Everything that can go wrong in the core. The Python binding maps each variant to one
/// typed Python exception, in one place.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// An argument outside its domain (budget, decay, n-gram range, thread count).
    InvalidArgument(String),
    /// Inputs that disagree with each other or are malformed (lengths, CSR structure, values).
    InvalidInput(String),
    /// A limit of the implementation was exceeded (sizes beyond the index types).
    Capacity(String),
    /// A failure that is not the caller's fault.
    Internal(String),
    /// The progress callback asked to stop.
    Cancelled,
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) | Error::InvalidInput(m) | Error::Capacity(m) => {
                f.write_str(m)
            }
            Error::Internal(m) => write!(f, "internal error: {m}"),
            Error::Cancelled => f.write_str("cancelled by the progress callback"),
        }
    }
}

impl std::error::Error for Error {}
