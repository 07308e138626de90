"""The data layer: :class:`Sample`, file formats, readers and writers, prompt templates, the
candidate rule and a sample's content key."""

from iterit.data.files import FILE_TYPES, detect_file_type, output_file_type
from iterit.data.formats import (
    FIELD_KEYS,
    FORMATS,
    detect_format,
    parse_fields,
    samples_from_records,
)
from iterit.data.readers import LoadedData, load, load_samples
from iterit.data.sample import Sample, as_sample
from iterit.errors import DataError

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
