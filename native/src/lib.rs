//! `sysmon_native`: the EVTX → ECS hot path of sysmon-detect in Rust.
//!
//! `EvtxDocuments(path, threads)` parses an EVTX file with the `evtx` crate (the same version
//! the `evtx` Python wheel is built on) on a background thread, renders and maps records on
//! the crate's rayon pool, and hands batches back to Python:
//!
//! - `(0, header_ids, event_ids, record_ids, docs, doc_ids)` — a run of Sysmon records mapped
//!   here (lists of equal length; each doc the JSON of the document, with the `_id`, that the
//!   Python mapper gives for that record);
//! - `(1, header_id, record_json: bytes)` — any other record (another provider, or a Sysmon
//!   record outside the native mapper's ASCII / ordinary-shape subset): Python maps it;
//! - `(2, message)` — a record or chunk the parser rejected ("Failed to parse record number
//!   N…", "Failed to parse chunk number N…", as pyevtx-rs words them), for Python's recovery.

mod bulk;
mod cmdline;
mod dnstables;
mod ip;
mod json;
mod jv;
mod map;
mod psl;
mod record;
mod util;
mod wlb;

use std::collections::HashSet;
use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex, RwLock};

use evtx::{EvtxParser, ParserSettings};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyList};

const BATCH: usize = 64;
const BATCHES_AHEAD: usize = 16;

static PSL: RwLock<Option<Arc<psl::Psl>>> = RwLock::new(None);

fn current_psl() -> Option<Arc<psl::Psl>> {
    PSL.read().ok().and_then(|g| g.clone())
}

enum Out {
    Mapped(u64, map::Mapped),
    Raw(u64, Vec<u8>),
    Error(String),
}

fn error_chain(e: &dyn Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

fn classify(header: u64, json: Vec<u8>, psl: Option<&Arc<psl::Psl>>) -> Out {
    match map::map_record(&json, psl) {
        Some(m) => Out::Mapped(header, m),
        None => Out::Raw(header, json),
    }
}

struct Job {
    parser: EvtxParser<std::fs::File>,
    psl: Option<Arc<psl::Psl>>,
    tx: SyncSender<Vec<Out>>,
}

/// Idle worker threads, each waiting for its next file: a thread per file would cost more
/// than reading a small file. A busy worker (a reader not drained yet) is never waited for:
/// another thread is started instead.
static IDLE: Mutex<Vec<Sender<Job>>> = Mutex::new(Vec::new());
/// The process the idle workers belong to: a forked child has none of its parent's threads.
static POOL_PID: AtomicU32 = AtomicU32::new(0);
/// Whether this process has started threads (workers, rayon's pool): then `fork` is unsafe.
static STARTED: AtomicBool = AtomicBool::new(false);

fn run(job: Job) {
    let Job {
        mut parser,
        psl,
        tx,
    } = job;
    let records = parser.serialized_records(move |record| {
        let rendered = record?.into_json_bytes()?;
        Ok(classify(
            rendered.event_record_id,
            rendered.data,
            psl.as_ref(),
        ))
    });
    let mut batch = Vec::with_capacity(BATCH);
    for item in records {
        batch.push(item.unwrap_or_else(|e| Out::Error(error_chain(&e))));
        if batch.len() >= BATCH
            && tx
                .send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))
                .is_err()
        {
            return; // the Python side is gone
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(batch);
    }
}

fn submit(job: Job) -> PyResult<()> {
    let idle = {
        let mut idle = IDLE
            .lock()
            .map_err(|_| PyRuntimeError::new_err("poisoned"))?;
        let pid = std::process::id();
        if POOL_PID.swap(pid, Ordering::SeqCst) != pid {
            // forked: the parent's workers are not here; forget them (never send to them)
            std::mem::forget(std::mem::take(&mut *idle));
        }
        idle.pop()
    };
    let job = match idle {
        Some(worker) => match worker.send(job) {
            Ok(()) => return Ok(()),
            Err(failed) => failed.0, // that worker is gone: start another
        },
        None => job,
    };
    let (jobs, inbox) = channel::<Job>();
    jobs.send(job).expect("the receiver is alive");
    std::thread::Builder::new()
        .name("sysmon-native-evtx".into())
        .spawn(move || {
            while let Ok(job) = inbox.recv() {
                run(job);
                match IDLE.lock() {
                    Ok(mut idle) if idle.len() < 8 => idle.push(jobs.clone()),
                    _ => return,
                }
            }
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the EVTX thread: {e}")))?;
    Ok(())
}

/// The records of one EVTX file, mapped where the native mapper can (see the module doc).
#[pyclass]
struct EvtxDocuments {
    rx: Mutex<Option<Receiver<Vec<Out>>>>,
}

#[pymethods]
impl EvtxDocuments {
    #[new]
    #[pyo3(signature = (path, threads=0))]
    fn new(path: String, threads: usize) -> PyResult<Self> {
        let parser =
            EvtxParser::from_path(&path).map_err(|e| PyRuntimeError::new_err(error_chain(&e)))?;
        STARTED.store(true, Ordering::SeqCst);
        let settings = ParserSettings::new().num_threads(threads).indent(false);
        let parser = parser.with_configuration(settings);
        let (tx, rx) = sync_channel::<Vec<Out>>(BATCHES_AHEAD);
        submit(Job {
            parser,
            psl: current_psl(),
            tx,
        })?;
        Ok(EvtxDocuments {
            rx: Mutex::new(Some(rx)),
        })
    }

    /// The next batch of records (a list of tuples), or None at the end of the file.
    fn next_batch(&self, py: Python<'_>) -> PyResult<Option<Py<PyList>>> {
        let Some(rx) = self
            .rx
            .lock()
            .map_err(|_| PyRuntimeError::new_err("poisoned"))?
            .take()
        else {
            return Ok(None);
        };
        let (rx, got) = py.detach(move || {
            let got = rx.recv();
            (rx, got)
        });
        let Ok(batch) = got else {
            return Ok(None); // the thread ended: the receiver is dropped with it
        };
        *self
            .rx
            .lock()
            .map_err(|_| PyRuntimeError::new_err("poisoned"))? = Some(rx);
        let list = PyList::empty(py);
        let mut run: Vec<(u64, map::Mapped)> = Vec::new();
        for out in batch {
            match out {
                Out::Mapped(h, m) => {
                    run.push((h, m));
                    continue;
                }
                Out::Raw(h, json) => {
                    flush_run(py, &list, &mut run)?;
                    list.append((1u8, h, PyBytes::new(py, &json)))?;
                }
                Out::Error(message) => {
                    flush_run(py, &list, &mut run)?;
                    list.append((2u8, message))?;
                }
            }
        }
        flush_run(py, &list, &mut run)?;
        Ok(Some(list.unbind()))
    }
}

/// A run of consecutive mapped records as one item:
/// `(0, header_ids, event_ids, record_ids, docs, doc_ids)`, lists of equal length.
fn flush_run(
    py: Python<'_>,
    list: &Bound<'_, PyList>,
    run: &mut Vec<(u64, map::Mapped)>,
) -> PyResult<()> {
    if run.is_empty() {
        return Ok(());
    }
    let headers = PyList::new(py, run.iter().map(|(h, _)| *h))?;
    let events = PyList::new(py, run.iter().map(|(_, m)| m.event_id))?;
    let records = PyList::new(py, run.iter().map(|(_, m)| m.record_id))?;
    let docs = PyList::new(py, run.iter().map(|(_, m)| PyBytes::new(py, &m.doc)))?;
    let ids = PyList::new(py, run.iter().map(|(_, m)| m.doc_id.as_str()))?;
    list.append((0u8, headers, events, records, docs, ids))?;
    run.clear();
    Ok(())
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
    Ok(map::map_record(json, psl.as_ref()).map(|m| (PyBytes::new(py, &m.doc).unbind(), m.doc_id)))
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

type LinesRun = (
    usize,
    Py<PyList>,
    Py<PyList>,
    Py<PyList>,
    Py<PyList>,
    Py<PyList>,
    Py<PyAny>,
    Py<PyList>,
);

/// The winlogbeat / NXLog lines at the start of `text` read (see `wlb::map_lines`), `width`
/// the file's code unit in bytes, `text` starting on line `first_line` of its file and at byte
/// `offset` (None: not known): `(chars, event_ids, record_ids, docs, doc_ids, start_lines,
/// end_offsets, others)` — the characters consumed; per document (Sysmon record) its values;
/// per record (line) the line it starts on and the file offset just past its newline (None
/// without `offset`; the last is where the text consumed ends); and `(record index,
/// provider)` of each record of another provider.
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
    lines_run(py, &run, first_line, offset)
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
    lines_run(py, &run, first_line, offset)
}

fn lines_run(
    py: Python<'_>,
    run: &wlb::Run,
    first_line: usize,
    offset: Option<usize>,
) -> PyResult<LinesRun> {
    let m = &run.mapped;
    let ends = match offset {
        Some(at) => PyList::new(py, run.ends.iter().map(|e| at + e.1))?.into_any(),
        None => py.None().into_bound(py),
    };
    Ok((
        run.chars,
        PyList::new(py, m.iter().map(|x| x.event_id))?.unbind(),
        PyList::new(py, m.iter().map(|x| x.record_id))?.unbind(),
        PyList::new(py, m.iter().map(|x| PyBytes::new(py, &x.doc)))?.unbind(),
        PyList::new(py, m.iter().map(|x| x.doc_id.as_str()))?.unbind(),
        PyList::new(py, run.ends.iter().map(|e| first_line + e.0))?.unbind(),
        ends.unbind(),
        PyList::new(py, run.others.iter().map(|(k, p)| (*k, p.as_str())))?.unbind(),
    ))
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

#[pymodule]
fn sysmon_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<EvtxDocuments>()?;
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
