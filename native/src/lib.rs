//! `sysmon_native`: the EVTX → ECS hot path of sysmon-detect in Rust.
//!
//! `EvtxDocuments(path, threads)` parses an EVTX file with the `evtx` crate (the same version
//! the `evtx` Python wheel is built on) on a background thread, renders and maps records on
//! the crate's rayon pool, and hands batches back to Python (see `runs`): a `MappedRun` for
//! consecutive Sysmon records mapped here, a `PythonRecord` for any other record (another
//! provider, or a Sysmon record outside the native mapper's subset, with its `Fallback`
//! reason), a `ParserError` for a record or chunk the parser rejected.

mod bulk;
mod cmdline;
mod dnstables;
mod evtx_docs;
mod fallback;
mod ip;
mod json;
mod jv;
mod map;
mod matcher;
mod psl;
mod record;
mod runs;
mod util;
mod wlb;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyBytes, PyList};

use evtx_docs::{EvtxDocuments, STARTED};
use fallback::Fallback;
use runs::{LinesRun, MappedRun, ParserError, PythonRecord};

static PSL: RwLock<Option<Arc<psl::Psl>>> = RwLock::new(None);

fn current_psl() -> Option<Arc<psl::Psl>> {
    PSL.read().ok().and_then(|g| g.clone())
}

/// Hand over the public suffix rules (`publicsuffixlist`'s parsed set and longest rule).
#[pyfunction]
fn set_public_suffixes(rules: Vec<String>, max_label: usize) -> PyResult<()> {
    let set: HashSet<String> = rules.into_iter().collect();
    let mut guard = PSL
        .write()
        .map_err(|_| PyRuntimeError::new_err("poisoned"))?;
    *guard = Some(Arc::new(psl::Psl::new(set, max_label)));
    Ok(())
}

/// Map one record's JSON (pyevtx-rs shape): `(doc_json, doc_id)` or None (Python maps it).
#[pyfunction]
fn map_record_json(py: Python<'_>, json: &[u8]) -> PyResult<Option<(Py<PyBytes>, String)>> {
    let psl = current_psl();
    Ok(map::map_record(json, psl.as_ref())
        .ok()
        .map(|m| (PyBytes::new(py, &m.doc).unbind(), m.doc_id)))
}

/// Why `map_record_json` leaves a record to Python (a `FallbackReason` value), or None.
#[pyfunction]
fn record_fallback(json: &[u8]) -> Option<&'static str> {
    map::map_record(json, current_psl().as_ref())
        .err()
        .map(Fallback::name)
}

/// Why `map_json_line` leaves a line to Python (a `FallbackReason` value), or None.
#[pyfunction]
fn line_fallback(line: &str) -> Option<&'static str> {
    wlb::map_line(line, current_psl().as_ref())
        .err()
        .map(Fallback::name)
}

/// Every `Fallback` reason's name, in order (the tests compare them with Python's).
#[pyfunction]
fn fallback_reasons() -> Vec<&'static str> {
    Fallback::ALL.iter().map(|f| f.name()).collect()
}

/// `(NXLOG_METADATA, NXLOG_EVENT_TYPES)` as the native reader knows them (for the tests).
#[pyfunction]
fn nxlog_keys() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        wlb::NXLOG_METADATA.to_vec(),
        wlb::NXLOG_EVENT_TYPES.to_vec(),
    )
}

/// Map one winlogbeat or NXLog JSON line (no newline): `(doc_json, doc_id)` for a Sysmon
/// record, `(None, provider)` for another provider's, or None (Python reads it).
#[pyfunction]
fn map_json_line(py: Python<'_>, line: &str) -> Option<(Option<Py<PyBytes>>, String)> {
    let psl = current_psl();
    match wlb::map_line(line, psl.as_ref()).ok()? {
        wlb::Line::Doc(m) => Some((Some(PyBytes::new(py, &m.doc).unbind()), m.doc_id)),
        wlb::Line::Other(provider) => Some((None, provider)),
    }
}

/// The winlogbeat / NXLog lines at the start of `text` read (see `wlb::map_lines`), `width`
/// the file's code unit in bytes, `text` starting on line `first_line` of its file and at byte
/// `offset` (None: not known), as a `LinesRun`.
#[pyfunction]
fn map_json_lines(
    py: Python<'_>,
    text: &str,
    width: usize,
    first_line: usize,
    offset: Option<usize>,
) -> PyResult<LinesRun> {
    let psl = current_psl();
    let run = py.detach(|| wlb::map_lines(text, width, psl.as_ref()));
    LinesRun::new(py, &run, first_line, offset)
}

/// `map_json_lines` on the bytes of a UTF-8 file from `data[start]` (see `wlb::map_bytes`):
/// the same values, `chars` the characters the decoded text of what was consumed has.
#[pyfunction]
fn map_json_bytes(
    py: Python<'_>,
    data: &[u8],
    start: usize,
    first_line: usize,
    offset: Option<usize>,
) -> PyResult<LinesRun> {
    let psl = current_psl();
    let run = py.detach(|| wlb::map_bytes(data, start, psl.as_ref()));
    LinesRun::new(py, &run, first_line, offset)
}

/// The bulk lines of native documents (see `bulk::append_pair`), one bytes per document (its
/// action line and itself, with `event.ingested` and the envelope `tail` and `log_file`, see
/// `bulk::Envelope`), for `create` into `<index_prefix><yyyy.MM>`; None if one of them is not a native document (the caller takes the careful way).
#[pyfunction]
fn bulk_lines<'py>(
    py: Python<'py>,
    docs: &Bound<'py, PyList>,
    doc_ids: &Bound<'py, PyList>,
    index_prefix: &str,
    ingested: &str,
    tail: &[u8],
    log_file: &[u8],
) -> PyResult<Option<Bound<'py, PyList>>> {
    let env = bulk::Envelope { tail, log_file };
    if docs.len() != doc_ids.len() {
        return Err(PyValueError::new_err("one _id per document"));
    }
    let mut out = Vec::with_capacity(docs.len());
    let mut buf = Vec::with_capacity(8192);
    for (doc, doc_id) in docs.iter().zip(doc_ids.iter()) {
        let doc = doc.cast_into::<PyBytes>()?;
        let doc_id = doc_id.extract::<PyBackedStr>()?;
        buf.clear();
        if !bulk::append_pair(
            doc.as_bytes(),
            &doc_id,
            index_prefix,
            ingested,
            &env,
            &mut buf,
        ) {
            return Ok(None);
        }
        out.push(PyBytes::new(py, &buf));
    }
    Ok(Some(PyList::new(py, out)?))
}

/// Whether this process has started native threads (a `fork` now would not carry them).
#[pyfunction]
fn threads_started() -> bool {
    STARTED.load(Ordering::SeqCst)
}

#[pyfunction]
fn parse_ip(value: &str) -> Option<String> {
    if !value.is_ascii() {
        return None;
    }
    ip::parse_ip(value)
}

#[pyfunction]
fn split_command_line(value: &str) -> Vec<String> {
    cmdline::split_command_line(value)
}

#[pyfunction]
fn split_domain(name: &str) -> PyResult<Option<(String, String, Option<String>)>> {
    let psl = current_psl().ok_or_else(|| PyRuntimeError::new_err("set_public_suffixes first"))?;
    Ok(psl.split_domain(name).map(|p| (p.registered, p.tld, p.sub)))
}

#[pyfunction]
fn spec_table() -> Vec<map::SpecRow> {
    map::spec_table()
}

type Table = Vec<(u64, String)>;

#[pyfunction]
fn dns_tables() -> (Table, Table) {
    let status = (0..20000u64)
        .filter_map(|n| dnstables::status(n).map(|s| (n, s.to_string())))
        .collect();
    let types = (0..70000u64)
        .filter_map(|n| {
            let t = dnstables::type_name(n);
            (t != format!("TYPE{n}")).then_some((n, t))
        })
        .collect();
    (status, types)
}

/// The stream matcher's rules evaluated natively (see `matcher`): built from the JSON
/// description `detectors/stream/native.py` writes.
#[pyclass(frozen)]
struct RuleMatcher {
    inner: matcher::Matcher,
}

#[pymethods]
impl RuleMatcher {
    #[new]
    fn new(spec: &[u8]) -> PyResult<Self> {
        let inner = matcher::Matcher::new(spec).map_err(PyValueError::new_err)?;
        Ok(RuleMatcher { inner })
    }

    /// `(position, reason)` of each rule refused (a pattern the `regex` crate cannot take).
    fn rejected(&self) -> Vec<(usize, String)> {
        self.inner.rejected.clone()
    }

    /// Positions of the rules that accept the document (its JSON), in order.
    fn match_json(&self, py: Python<'_>, doc: &[u8]) -> PyResult<Vec<u32>> {
        py.detach(|| self.inner.matches_json(doc)).map_err(PyValueError::new_err)
    }

    /// `match_json` for each bulk item (`action\nsource`): the source is after the first newline.
    fn match_items(&self, py: Python<'_>, items: Vec<PyBackedBytes>) -> PyResult<Vec<Vec<u32>>> {
        py.detach(|| {
            items
                .iter()
                .map(|item| {
                    let start = item.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
                    self.inner.matches_json(&item[start..])
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(PyValueError::new_err)
    }

    /// Positions of the rules the prefilter leaves to evaluate for the document (for benches).
    fn candidates_json(&self, doc: &[u8]) -> PyResult<Vec<usize>> {
        self.inner.candidates(doc).map_err(PyValueError::new_err)
    }
}

#[pymodule]
fn sysmon_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<EvtxDocuments>()?;
    m.add_class::<MappedRun>()?;
    m.add_class::<PythonRecord>()?;
    m.add_class::<ParserError>()?;
    m.add_class::<LinesRun>()?;
    m.add_class::<RuleMatcher>()?;
    m.add_function(wrap_pyfunction!(record_fallback, m)?)?;
    m.add_function(wrap_pyfunction!(line_fallback, m)?)?;
    m.add_function(wrap_pyfunction!(fallback_reasons, m)?)?;
    m.add_function(wrap_pyfunction!(set_public_suffixes, m)?)?;
    m.add_function(wrap_pyfunction!(map_record_json, m)?)?;
    m.add_function(wrap_pyfunction!(map_json_line, m)?)?;
    m.add_function(wrap_pyfunction!(map_json_lines, m)?)?;
    m.add_function(wrap_pyfunction!(map_json_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(bulk_lines, m)?)?;
    m.add_function(wrap_pyfunction!(nxlog_keys, m)?)?;
    m.add_function(wrap_pyfunction!(parse_ip, m)?)?;
    m.add_function(wrap_pyfunction!(threads_started, m)?)?;
    m.add_function(wrap_pyfunction!(split_command_line, m)?)?;
    m.add_function(wrap_pyfunction!(split_domain, m)?)?;
    m.add_function(wrap_pyfunction!(spec_table, m)?)?;
    m.add_function(wrap_pyfunction!(dns_tables, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
