//! `CommandLineToArgvW` splitting, as `shipper.sysmon.cmdline.split_command_line` does it.

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn program_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    if b.first() == Some(&b'"') {
        return match s[1..].find('"') {
            None => (&s[1..], s.len()),
            Some(j) => (&s[1..1 + j], j + 2),
        };
    }
    let i = b.iter().position(|&c| is_blank(c)).unwrap_or(b.len());
    (&s[..i], i)
}

/// The arguments after argv[0], by the msvcrt-2008 rules.
fn split_arguments(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let n = b.len();
    let mut args: Vec<String> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut in_arg = false;
    let mut quote_mode = false;
    let mut i = 0usize;
    while i < n {
        let c = b[i];
        if is_blank(c) {
            let start = i;
            while i < n && is_blank(b[i]) {
                i += 1;
            }
            if quote_mode {
                cur.extend_from_slice(&b[start..i]);
            } else if in_arg {
                args.push(String::from_utf8(std::mem::take(&mut cur)).unwrap_or_default());
                in_arg = false;
            }
            continue;
        }
        in_arg = true;
        if c == b'\\' || c == b'"' {
            let start = i;
            while i < n && b[i] == b'\\' {
                i += 1;
            }
            let n_slashes = i - start;
            if i < n && b[i] == b'"' {
                let qstart = i;
                while i < n && b[i] == b'"' {
                    i += 1;
                }
                let mut n_quotes = i - qstart;
                cur.extend(std::iter::repeat_n(b'\\', n_slashes / 2));
                if n_slashes % 2 == 1 {
                    cur.push(b'"');
                    n_quotes -= 1;
                }
                let mut q = if quote_mode { 1 } else { 0 };
                for _ in 0..n_quotes {
                    q += 1;
                    if q == 3 {
                        cur.push(b'"');
                        q = 0;
                    }
                }
                if q == 2 {
                    q = 0;
                }
                quote_mode = q == 1;
            } else {
                cur.extend_from_slice(&b[start..i]);
            }
            continue;
        }
        let start = i;
        while i < n && !is_blank(b[i]) && b[i] != b'\\' && b[i] != b'"' {
            i += 1;
        }
        cur.extend_from_slice(&b[start..i]);
    }
    if in_arg {
        args.push(String::from_utf8(cur).unwrap_or_default());
    }
    args
}

pub fn split_command_line(command_line: &str) -> Vec<String> {
    if command_line.is_empty() {
        return Vec::new();
    }
    let (program, rest) = program_name(command_line);
    let mut out = vec![program.to_string()];
    out.extend(split_arguments(&command_line[rest..]));
    out
}
