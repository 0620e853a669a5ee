//! A flood of real automated responses for sweep tests and the sweep
//! benchmark: the corpora cycled with fresh outer Message-IDs, every third
//! attached original (real bytes) in a Sent folder, and the decision the
//! classifier takes on each whole message as the expectation.

use crate::util::{cases, corpora};
use backscatter::{classify, Context, Decision, SentIndex, SentMessage};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Replace (or add) the outer Message-ID.
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

/// The real originals attached (message/rfc822) to corpus messages.
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

pub struct Flood {
    /// The corpus file each inbox message was made from.
    #[allow(dead_code)]
    pub sources: Vec<PathBuf>,
    pub inbox: Vec<Vec<u8>>,
    pub sent: Vec<Vec<u8>>,
    /// Outer Message-ID -> expected decision.
    pub expected: HashMap<String, Decision>,
}

/// `n` messages cycled from the corpora, every third attached original in
/// Sent.
pub fn flood(n: usize) -> Flood {
    let paths: Vec<PathBuf> = corpora()
        .iter()
        .flat_map(|d| cases(d))
        .map(|c| c.eml)
        .collect();
    let raws: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let sent: Vec<Vec<u8>> = attached_originals(&raws).into_iter().step_by(3).collect();
    let mut index = SentIndex::new();
    for s in &sent {
        index.insert(&SentMessage::from_raw(s).unwrap());
    }
    let ctx = Context {
        sent: &index,
        own_addresses: &[],
    };
    let mut inbox = Vec::with_capacity(n);
    let mut sources = Vec::with_capacity(n);
    let mut expected = HashMap::new();
    for i in 0..n {
        let id = format!("<flood-{i}@test.invalid>");
        let m = with_message_id(&raws[i % raws.len()], &id);
        expected.insert(id, classify(&m, &ctx).verdict);
        inbox.push(m);
        sources.push(paths[i % paths.len()].clone());
    }
    Flood {
        sources,
        inbox,
        sent,
        expected,
    }
}

/// The outer Message-ID of a message, with brackets.
#[allow(dead_code)] // not every including crate uses it
pub fn id_of(m: &[u8]) -> String {
    let h = mail_parser::MessageParser::default()
        .parse_headers(m)
        .unwrap();
    format!("<{}>", h.message_id().unwrap())
}
