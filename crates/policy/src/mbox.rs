//! Splitting an mbox file into messages (the `From ` line format used by
//! Thunderbird, mutt and most local mail stores for a Sent folder).
//!
//! Pure: bytes in, message slices out. A message starts at a line beginning
//! with `From ` at the start of the file or after an empty line (mboxrd and
//! mboxo agree on that); the `From ` separator line itself is dropped.
//! `>From ` quoting inside bodies is left alone: the classifier and the sent
//! index only read headers and never need the body byte-exact.

/// True when `bytes` looks like an mbox (first line is a `From ` separator).
pub fn is_mbox(bytes: &[u8]) -> bool {
    bytes.starts_with(b"From ")
}

/// A single message saved with its mbox `From ` envelope line: drop it.
pub fn strip_envelope_line(mut bytes: Vec<u8>) -> Vec<u8> {
    if is_mbox(&bytes) {
        let end = memchr::memchr(b'\n', &bytes).map_or(bytes.len(), |i| i + 1);
        bytes.drain(..end);
    }
    bytes
}

/// The messages of an mbox, as slices of the input.
pub fn split(bytes: &[u8]) -> Vec<&[u8]> {
    let mut starts: Vec<usize> = Vec::new();
    let mut pos = 0usize;
    let mut prev_blank = true;
    while pos < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[pos..]).map_or(bytes.len(), |i| pos + i + 1);
        let line = &bytes[pos..end];
        if prev_blank && line.starts_with(b"From ") {
            starts.push(pos);
        }
        prev_blank = line == b"\n" || line == b"\r\n";
        pos = end;
    }
    let mut out = Vec::with_capacity(starts.len());
    for (i, &s) in starts.iter().enumerate() {
        let e = starts.get(i + 1).copied().unwrap_or(bytes.len());
        // Drop the separator line.
        let body_start = memchr::memchr(b'\n', &bytes[s..e]).map_or(e, |j| s + j + 1);
        let msg = &bytes[body_start..e];
        if !msg.iter().all(|b| b.is_ascii_whitespace()) {
            out.push(msg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    // Hand-written unit cases.
    use super::*;

    #[test]
    fn splits_on_from_lines_after_blank_lines() {
        let m = b"From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\nFrom inside a paragraph stays\n\nFrom c@d Tue Jan  2 00:00:00 2024\r\nSubject: two\r\n\r\nx\r\n";
        assert!(is_mbox(m));
        let parts = split(m);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with(b"Subject: one"));
        assert!(parts[1].starts_with(b"Subject: two"));
    }

    #[test]
    fn empty_and_non_mbox() {
        assert!(split(b"").is_empty());
        assert!(!is_mbox(b"Subject: x\n\n"));
    }
}
