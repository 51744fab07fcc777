//! What the native core hands Python, as classes with named fields: EVTX batches hold
//! `MappedRun`s, `PythonRecord`s and `ParserError`s; `map_json_lines` / `map_json_bytes` give a
//! `LinesRun`. The lists are built once, here; the getters hand out the same objects.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::fallback::Fallback;
use crate::map::Mapped;
use crate::wlb;

/// Consecutive EVTX records mapped here (lists of equal length): per record its header
/// number, EventID, EventRecordID, document JSON and `_id` (those of the Python mapper).
#[pyclass(frozen, module = "sysmon_native")]
pub struct MappedRun {
    #[pyo3(get)]
    header_ids: Py<PyList>,
    #[pyo3(get)]
    event_ids: Py<PyList>,
    #[pyo3(get)]
    record_ids: Py<PyList>,
    #[pyo3(get)]
    docs: Py<PyList>,
    #[pyo3(get)]
    ids: Py<PyList>,
}

impl MappedRun {
    pub fn new(py: Python<'_>, run: &[(u64, Mapped)]) -> PyResult<Self> {
        Ok(MappedRun {
            header_ids: PyList::new(py, run.iter().map(|(h, _)| *h))?.unbind(),
            event_ids: PyList::new(py, run.iter().map(|(_, m)| m.event_id))?.unbind(),
            record_ids: PyList::new(py, run.iter().map(|(_, m)| m.record_id))?.unbind(),
            docs: PyList::new(py, run.iter().map(|(_, m)| PyBytes::new(py, &m.doc)))?.unbind(),
            ids: PyList::new(py, run.iter().map(|(_, m)| m.doc_id.as_str()))?.unbind(),
        })
    }
}

/// An EVTX record left to Python: its header number, its JSON (pyevtx-rs's rendering) and
/// why (a `FallbackReason` value).
#[pyclass(frozen, module = "sysmon_native")]
pub struct PythonRecord {
    #[pyo3(get)]
    header_id: u64,
    #[pyo3(get)]
    json: Py<PyBytes>,
    why: Fallback,
}

impl PythonRecord {
    pub fn new(py: Python<'_>, header_id: u64, json: &[u8], why: Fallback) -> Self {
        PythonRecord {
            header_id,
            json: PyBytes::new(py, json).unbind(),
            why,
        }
    }
}

#[pymethods]
impl PythonRecord {
    #[getter]
    fn reason(&self) -> &'static str {
        self.why.name()
    }
}

/// A record or chunk the EVTX parser rejected, worded as pyevtx-rs words it ("Failed to parse
/// record number N…", "Failed to parse chunk number N…"), for Python's recovery.
#[pyclass(frozen, module = "sysmon_native")]
pub struct ParserError {
    #[pyo3(get)]
    message: String,
}

impl ParserError {
    pub fn new(message: String) -> Self {
        ParserError { message }
    }
}

/// The JSON lines one call read (see `wlb::map_lines`): `chars` consumed; per document (Sysmon
/// record) `event_ids`, `record_ids` (None: no record number), `docs`, `ids`; per record (line)
/// `start_lines` and `end_offsets` (the file offset just past its newline; None when the
/// offset is not known); `others`: `(record index, provider)` of each record of another
/// provider; `stop`: why the core declined the line after them (None: it did not look at one).
#[pyclass(frozen, module = "sysmon_native")]
pub struct LinesRun {
    #[pyo3(get)]
    chars: usize,
    #[pyo3(get)]
    event_ids: Py<PyList>,
    #[pyo3(get)]
    record_ids: Py<PyList>,
    #[pyo3(get)]
    docs: Py<PyList>,
    #[pyo3(get)]
    ids: Py<PyList>,
    #[pyo3(get)]
    start_lines: Py<PyList>,
    #[pyo3(get)]
    end_offsets: Py<PyAny>,
    #[pyo3(get)]
    others: Py<PyList>,
    why: Option<Fallback>,
}

impl LinesRun {
    /// `run` of a text that starts on line `first_line` of its file, at byte `offset` (None:
    /// not known).
    pub fn new(
        py: Python<'_>,
        run: &wlb::Run,
        first_line: usize,
        offset: Option<usize>,
    ) -> PyResult<Self> {
        let m = &run.mapped;
        let ends = match offset {
            Some(at) => PyList::new(py, run.ends.iter().map(|e| at + e.1))?.into_any(),
            None => py.None().into_bound(py),
        };
        Ok(LinesRun {
            chars: run.chars,
            event_ids: PyList::new(py, m.iter().map(|x| x.event_id))?.unbind(),
            record_ids: PyList::new(py, m.iter().map(|x| x.record_id))?.unbind(),
            docs: PyList::new(py, m.iter().map(|x| PyBytes::new(py, &x.doc)))?.unbind(),
            ids: PyList::new(py, m.iter().map(|x| x.doc_id.as_str()))?.unbind(),
            start_lines: PyList::new(py, run.ends.iter().map(|e| first_line + e.0))?.unbind(),
            end_offsets: ends.unbind(),
            others: PyList::new(py, run.others.iter().map(|(k, p)| (*k, p.as_str())))?.unbind(),
            why: run.stop,
        })
    }
}

#[pymethods]
impl LinesRun {
    #[getter]
    fn stop(&self) -> Option<&'static str> {
        self.why.map(Fallback::name)
    }

    /// The records read (lines: documents and others).
    fn __len__(&self, py: Python<'_>) -> usize {
        self.start_lines.bind(py).len()
    }
}
