//! EVTX files parsed and mapped on worker threads: `EvtxDocuments(path, threads)` hands the
//! file to an idle worker thread (or a new one), which runs the `evtx` crate on its rayon pool,
//! maps each record there and sends batches back through a bounded channel.

use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use evtx::{EvtxParser, ParserSettings};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::fallback::Fallback;
use crate::runs::{MappedRun, ParserError, PythonRecord};
use crate::{current_psl, map, psl};

const BATCH: usize = 64;
const BATCHES_AHEAD: usize = 16;

enum Out {
    Mapped(u64, map::Mapped),
    Raw(u64, Vec<u8>, Fallback),
    Error(String),
}

pub(crate) fn error_chain(e: &dyn Error) -> String {
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
        Ok(m) => Out::Mapped(header, m),
        Err(why) => Out::Raw(header, json, why),
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
pub(crate) static STARTED: AtomicBool = AtomicBool::new(false);

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
pub struct EvtxDocuments {
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

    /// The next batch of records (`MappedRun`, `PythonRecord`, `ParserError`), or None at the
    /// end of the file.
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
                Out::Raw(h, json, why) => {
                    flush_run(py, &list, &mut run)?;
                    list.append(Py::new(py, PythonRecord::new(py, h, &json, why))?)?;
                }
                Out::Error(message) => {
                    flush_run(py, &list, &mut run)?;
                    list.append(Py::new(py, ParserError::new(message))?)?;
                }
            }
        }
        flush_run(py, &list, &mut run)?;
        Ok(Some(list.unbind()))
    }
}

/// A run of consecutive mapped records as one `MappedRun`.
fn flush_run(
    py: Python<'_>,
    list: &Bound<'_, PyList>,
    run: &mut Vec<(u64, map::Mapped)>,
) -> PyResult<()> {
    if run.is_empty() {
        return Ok(());
    }
    list.append(Py::new(py, MappedRun::new(py, run)?)?)?;
    run.clear();
    Ok(())
}
