"""The data layer: :class:`Sample`, file formats, readers and writers, prompt templates."""

from iterit.data.io import (
    FIELD_KEYS,
    FILE_TYPES,
    FORMATS,
    DataError,
    LoadedData,
    detect_file_type,
    detect_format,
    load,
    load_samples,
    output_file_type,
    parse_fields,
    samples_from_records,
)
from iterit.data.sample import Sample, as_sample

__all__ = [
    "FIELD_KEYS",
    "FILE_TYPES",
    "FORMATS",
    "DataError",
    "LoadedData",
    "Sample",
    "as_sample",
    "detect_file_type",
    "detect_format",
    "load",
    "load_samples",
    "output_file_type",
    "parse_fields",
    "samples_from_records",
]
