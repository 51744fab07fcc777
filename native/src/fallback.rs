//! Why the native core leaves a record to Python (`shipper.native.FallbackReason`, compared by
//! the tests): Python then reads and maps it, so every reason costs speed, never correctness.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// not in the shape the native reader takes: odd or missing System fields, a float, an
    /// array or an object where a value should be, a record without a time
    Shape,
    /// text beyond ASCII where Python case-folds, strips, slices or parses it
    NonAscii,
    /// a value the native core does not convert the way Python might (an integer beyond 64 bits
    /// or with underscores, a time outside the fast layouts, an IP address as a DNS name)
    UnusualValue,
    /// a value Python cannot convert either: the document is a `pipeline_error`
    PipelineError,
    /// a record Python's reader reports as an error (no event ID or provider)
    ReadError,
    /// EVTX: a record of another provider (Python reads and counts it)
    OtherProvider,
    /// JSON lines: a line that is not one JSON object
    BrokenLine,
    /// JSON lines: bytes that are not UTF-8, or U+FFFD (offsets are Python's business then)
    Undecodable,
}

impl Fallback {
    pub const ALL: [Fallback; 8] = [
        Fallback::Shape,
        Fallback::NonAscii,
        Fallback::UnusualValue,
        Fallback::PipelineError,
        Fallback::ReadError,
        Fallback::OtherProvider,
        Fallback::BrokenLine,
        Fallback::Undecodable,
    ];

    /// The name Python knows it by (`FallbackReason` values).
    pub fn name(self) -> &'static str {
        match self {
            Fallback::Shape => "shape",
            Fallback::NonAscii => "non_ascii",
            Fallback::UnusualValue => "unusual_value",
            Fallback::PipelineError => "pipeline_error",
            Fallback::ReadError => "read_error",
            Fallback::OtherProvider => "other_provider",
            Fallback::BrokenLine => "broken_line",
            Fallback::Undecodable => "undecodable",
        }
    }
}
