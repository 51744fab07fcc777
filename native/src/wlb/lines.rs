//! Runs of lines: the buffer Python hands over, read line by line as Python's reader would
//! read it, with characters, lines and codec bytes counted.

use std::sync::Arc;

use super::{map_line, Line};
use crate::fallback::Fallback;
use crate::map::Mapped;
use crate::psl::Psl;

/// its Sysmon records and the providers of the others, and one entry per record (line) read
/// (the consumed text ends just past the last one's newline).
pub struct Run {
    pub chars: usize,
    pub mapped: Vec<Mapped>,
    /// (index of the record among the run's records, its provider), in order
    pub others: Vec<(usize, String)>,
    /// per record: (line number of its start, codec bytes just past its newline), both counted
    /// from the start of the text (line 0)
    pub ends: Vec<(usize, usize)>,
    /// why the run stopped at the line after the last one read, when the core declined it
    /// (None: the text ended, or what follows is not a whole top-level line)
    pub stop: Option<Fallback>,
}

/// Bytes `text` takes in a file of code unit `width` (1: UTF-8, 2: UTF-16, 4: UTF-32), as
/// `ByteCounter.advance` counts them.
fn codec_len(text: &str, width: usize) -> usize {
    match width {
        1 => text.len(),
        2 => text
            .chars()
            .map(|c| if (c as u32) > 0xFFFF { 4 } else { 2 })
            .sum(),
        _ => text.chars().count() * width,
    }
}

/// Map the winlogbeat / NXLog lines at the start of `text` (Python's decoded buffer from a
/// position at the top level of the file, outside any array or broken document), skipping
/// blank runs between them as Python does (`" \t\r\n\u{feff}"`). Stops before the first line
/// that is not complete (no newline yet), contains U+FFFD (the byte counter's business) or is
/// neither mapped here nor another provider's record Python reads without an error; nothing
/// after the last line's newline is consumed.
pub fn map_lines(text: &str, width: usize, psl: Option<&Arc<Psl>>) -> Run {
    map_lines_in(text.as_bytes(), width, psl, false)
}

/// `map_lines` on the bytes of a UTF-8 file from a position at the top level (`data[start..]`),
/// as Python would read them once decoded: each line is checked to be UTF-8 first (the
/// run stops before one that is not: the decoder makes U+FFFD of it, the byte counter's
/// business). Spares the reader the UTF-8 copy of a decoded buffer that is not ASCII.
pub fn map_bytes(data: &[u8], start: usize, psl: Option<&Arc<Psl>>) -> Run {
    map_lines_in(data.get(start..).unwrap_or_default(), 1, psl, true)
}

/// Characters in UTF-8 `b`: its bytes less those that continue a character (`10xxxxxx`),
/// counted eight at a time.
fn char_count(b: &[u8]) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let words = b.chunks_exact(8);
    let tail = words.remainder();
    let continuing: usize = words
        .map(|w| {
            let w = u64::from_le_bytes(w.try_into().expect("eight bytes"));
            (w & !(w << 1) & HIGH).count_ones() as usize
        })
        .sum::<usize>()
        + tail.iter().filter(|&&c| c & 0xC0 == 0x80).count();
    b.len() - continuing
}

fn map_lines_in(b: &[u8], width: usize, psl: Option<&Arc<Psl>>, validate: bool) -> Run {
    let mut run = Run {
        chars: 0,
        mapped: Vec::new(),
        others: Vec::new(),
        ends: Vec::new(),
        stop: None,
    };
    let mut codec_bytes = 0usize;
    let mut done = 0usize; // bytes of `b` consumed
    let mut i = 0usize;
    let mut line = 0usize;
    loop {
        while i < b.len() {
            match b[i] {
                b' ' | b'\t' | b'\r' => i += 1,
                b'\n' => {
                    i += 1;
                    line += 1;
                }
                0xEF if b[i..].starts_with("\u{feff}".as_bytes()) => i += 3,
                _ => break,
            }
        }
        if i >= b.len() || b[i] != b'{' {
            break;
        }
        let Some(nl) = memchr::memchr(b'\n', &b[i..]) else {
            break;
        };
        let end = i + nl + 1;
        // what is consumed: blanks (ASCII, BOMs), the line, its newline
        let piece = &b[done..end];
        let ascii = piece.is_ascii(); // the common case: every count is the byte count
        let body = if validate {
            match std::str::from_utf8(&b[i..i + nl]) {
                Ok(body) => body,
                Err(_) => {
                    run.stop = Some(Fallback::Undecodable);
                    break;
                }
            }
        } else {
            // SAFETY: `b` is a `&str`'s bytes (map_lines) and `i..i + nl` lies between ASCII
            // bytes, so on character boundaries
            unsafe { std::str::from_utf8_unchecked(&b[i..i + nl]) }
        };
        if !ascii && body.contains('\u{fffd}') {
            run.stop = Some(Fallback::Undecodable);
            break;
        }
        let m = match map_line(body, psl) {
            Ok(m) => m,
            Err(reason) => {
                run.stop = Some(reason);
                break;
            }
        };
        if ascii || width == 1 {
            run.chars += if ascii {
                piece.len()
            } else {
                char_count(piece)
            };
            codec_bytes += piece.len() * width;
        } else {
            // SAFETY: as for `body` (the blanks before it are ASCII or whole BOMs)
            let text = unsafe { std::str::from_utf8_unchecked(piece) };
            run.chars += text.chars().count();
            codec_bytes += codec_len(text, width);
        }
        match m {
            Line::Doc(m) => run.mapped.push(m),
            Line::Other(provider) => run.others.push((run.ends.len(), provider)),
        }
        run.ends.push((line, codec_bytes));
        line += 1;
        done = end;
        i = end;
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_counts() {
        for s in [
            "",
            "a",
            "é",
            "abcdefgh",
            "aé®😀公司 Ünï ГмбХ",
            &"é😀x".repeat(40),
        ] {
            for cut in 0..s.len().min(9) {
                let t = &s[s.char_indices().nth(cut).map_or(s.len(), |(i, _)| i)..];
                assert_eq!(char_count(t.as_bytes()), t.chars().count(), "{t:?}");
            }
        }
    }
}
