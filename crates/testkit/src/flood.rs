//! Floods of real automated responses for sweep tests and benchmarks: the
//! corpora cycled with fresh outer Message-IDs, and every third attached
//! original (real bytes) for a Sent folder. The expected decision of each
//! message is the caller's (the kit does not link the classifier): see
//! [`Flood::judged`].
//!
//! ```ignore
//! let f = Flood::build(500);
//! let index = sent_index(&f.sent);
//! let f = f.judged(|m| classify(m, &index).verdict);
//! imap.append_many("Sent", &f.sent);
//! imap.append_many("INBOX", &f.inbox);
//! assert_eq!(f.expected[&id_of(&f.inbox[0])], Decision::Backscatter);
//! ```

use crate::corpus::{cases, corpora};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Replace (or add) the outer Message-ID (a folded one included); the
/// body is untouched.
pub fn with_message_id(raw: &[u8], id: &str) -> Vec<u8> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(raw.len());
    let (head, body) = raw.split_at(end);
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut replaced = false;
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        if skipping && (line.starts_with(b" ") || line.starts_with(b"\t")) {
            continue;
        }
        skipping = false;
        if !replaced && line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            out.extend_from_slice(format!("Message-ID: {id}\r\n").as_bytes());
            replaced = true;
            skipping = true;
            continue;
        }
        out.extend_from_slice(line);
    }
    if !replaced {
        let mut o = format!("Message-ID: {id}\r\n").into_bytes();
        o.extend_from_slice(&out);
        out = o;
    }
    out.extend_from_slice(body);
    out
}

/// The real originals attached (message/rfc822) to corpus messages, each
/// Message-ID once.
fn attached_originals(raws: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for raw in raws {
        let Some(m) = mail_parser::MessageParser::default().parse(raw) else {
            continue;
        };
        for p in &m.parts {
            if let mail_parser::PartType::Message(inner) = &p.body {
                if let Some(id) = inner.message_id() {
                    if id.contains('@') && seen.insert(id.to_lowercase()) {
                        out.push(inner.raw_message().to_vec());
                    }
                }
            }
        }
    }
    out
}

/// A flood: inbox messages, the Sent folder that goes with them, and (once
/// [`Flood::judged`]) the decision expected for each inbox message.
pub struct Flood<D = ()> {
    /// The corpus file each inbox message was made from.
    pub sources: Vec<PathBuf>,
    /// `<flood-N@test.invalid>` is message N's outer Message-ID.
    pub inbox: Vec<Vec<u8>>,
    /// Every third real original attached to a corpus message.
    pub sent: Vec<Vec<u8>>,
    /// Outer Message-ID (with brackets) -> expected decision.
    pub expected: HashMap<String, D>,
}

impl Flood {
    /// `n` messages cycled from the corpora, every third attached original
    /// in Sent; no expectations yet.
    pub fn build(n: usize) -> Flood {
        let paths: Vec<PathBuf> = corpora()
            .iter()
            .flat_map(|d| cases(d))
            .map(|c| c.eml)
            .collect();
        let raws: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            .collect();
        let sent: Vec<Vec<u8>> = attached_originals(&raws).into_iter().step_by(3).collect();
        let mut inbox = Vec::with_capacity(n);
        let mut sources = Vec::with_capacity(n);
        for i in 0..n {
            inbox.push(with_message_id(&raws[i % raws.len()], &flood_id(i)));
            sources.push(paths[i % paths.len()].clone());
        }
        Flood {
            sources,
            inbox,
            sent,
            expected: HashMap::new(),
        }
    }
}

impl<D> Flood<D> {
    /// The same flood with `judge(message)` as each inbox message's
    /// expected decision (typically the classifier's verdict on the whole
    /// message against an index of [`Flood::sent`]).
    pub fn judged<E>(self, mut judge: impl FnMut(&[u8]) -> E) -> Flood<E> {
        let expected = self
            .inbox
            .iter()
            .enumerate()
            .map(|(i, m)| (flood_id(i), judge(m)))
            .collect();
        Flood {
            sources: self.sources,
            inbox: self.inbox,
            sent: self.sent,
            expected,
        }
    }
}

/// The outer Message-ID of inbox message `i`.
fn flood_id(i: usize) -> String {
    format!("<flood-{i}@test.invalid>")
}

/// The outer Message-ID of a message, with brackets. Panics when it has
/// none (every flood message has one).
pub fn id_of(m: &[u8]) -> String {
    let h = mail_parser::MessageParser::default()
        .parse_headers(m)
        .expect("a message with headers");
    format!("<{}>", h.message_id().expect("a Message-ID"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // hand-written headers
    #[test]
    fn with_message_id_replaces_a_folded_id_and_keeps_the_body() {
        let raw = b"From: a@example.org\r\nMessage-Id:\r\n <old@x>\r\nSubject: s\r\n\r\nMessage-ID: <body@x>\r\n";
        let out = with_message_id(raw, "<new@y>");
        assert_eq!(
            out,
            b"From: a@example.org\r\nMessage-ID: <new@y>\r\nSubject: s\r\n\r\nMessage-ID: <body@x>\r\n"
        );
        assert_eq!(id_of(&out), "<new@y>");
        let added = with_message_id(b"Subject: s\n\nbody\n", "<new@y>");
        assert_eq!(added, b"Message-ID: <new@y>\r\nSubject: s\n\nbody\n");
    }

    #[test]
    fn a_flood_cycles_the_corpora_and_is_judged_by_the_caller() {
        let f = Flood::build(5);
        assert_eq!((f.inbox.len(), f.sources.len()), (5, 5));
        assert!(!f.sent.is_empty(), "the corpora attach real originals");
        assert!(f.expected.is_empty());
        let judged = f.judged(|m| m.len());
        for (i, m) in judged.inbox.iter().enumerate() {
            let id = id_of(m);
            assert_eq!(id, format!("<flood-{i}@test.invalid>"));
            assert_eq!(judged.expected[&id], m.len());
        }
    }
}
