//! Golden tests: every real message in the corpora is classified (with an
//! empty sent index, so every automated response is `backscatter`) and
//! compared with its expected `.json` (verdict, kind, original Message-ID).
//!
//! The `.json` also pins what the classifier extracts: `recipients` (the
//! original's recipients, which decide provenance when no Message-ID is
//! found) and, for bounces, the DSN `action` and `status`. Verdict, kind
//! and Message-ID come from the sources' labels (`gen_expected.py`); the
//! pinned fields are written from the classifier's output after review,
//! by running the test with `BACKSCATTER_BLESS=1` (it rewrites only those
//! fields, and `gen_expected.py` keeps them).
//!
//! Results are tallied per label and per MTA family (the corpus file
//! prefix, `lhost-postfix`, or `extra/<source>`), printed as two tables.
//! A mismatch writes `NNN.failed` beside `NNN.eml` with what the classifier
//! said, for review. Deliberate, explained differences are listed in
//! `tests/corpus/known-differences.tsv`; a listed difference that no longer
//! occurs fails too, so the list stays true.

use crate::util::{cases, corpora, rel, Case};
use backscatter::{classify, Context, SentIndex, Verdict};
use std::collections::{BTreeMap, BTreeSet};

fn known_differences() -> BTreeSet<(String, String)> {
    let p = crate::util::root().join("tests/corpus/known-differences.tsv");
    let text = std::fs::read_to_string(p).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut it = l.split('\t');
            (
                it.next().unwrap_or("").to_string(),
                it.next().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn kind_str(v: &Verdict) -> Option<String> {
    v.kind.map(|k| k.as_str().to_string())
}

/// The pinned fields, as the classifier gives them: `recipients` always,
/// `action` and `status` for an expected bounce.
fn pins(c: &Case, v: &Verdict) -> Vec<(&'static str, serde_json::Value)> {
    let mut p = vec![("recipients", serde_json::json!(v.original.recipients))];
    if c.expected.kind.as_deref() == Some("bounce") {
        p.push(("action", serde_json::json!(v.original.action)));
        p.push(("status", serde_json::json!(v.original.status)));
    }
    p
}

/// Rewrite the pinned fields of a case's `.json` (BACKSCATTER_BLESS=1),
/// keeping every other field and the file's layout.
fn bless(c: &Case, v: &Verdict) {
    let mut j = c.json.clone();
    let Some(obj) = j.as_object_mut() else { return };
    for (k, val) in pins(c, v) {
        obj.insert(k.to_string(), val);
    }
    let text = serde_json::to_string_pretty(&j).unwrap();
    let j_path = c.eml.with_extension("json");
    std::fs::write(&j_path, format!("{}\n", one_space_indent(&text))).unwrap();
}

/// `gen_expected.py` writes JSON with a one-space indent (Python's
/// `indent=1`); keep that layout so regenerating changes nothing.
fn one_space_indent(pretty: &str) -> String {
    pretty
        .lines()
        .map(|l| {
            let n = l.len() - l.trim_start_matches(' ').len();
            format!("{}{}", " ".repeat(n / 2), &l[n..])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which fields of a case differ from expectations.
fn diffs(c: &Case, v: &Verdict) -> Vec<&'static str> {
    let mut d = Vec::new();
    for (k, got) in pins(c, v) {
        if let Some(want) = c.json.get(k) {
            let same = match (want, &got) {
                // Recipients compare as sets, case-insensitively.
                (serde_json::Value::Array(a), serde_json::Value::Array(b)) if k == "recipients" => {
                    let norm = |x: &Vec<serde_json::Value>| -> BTreeSet<String> {
                        x.iter()
                            .filter_map(|v| v.as_str().map(|s| s.to_lowercase()))
                            .collect()
                    };
                    norm(a) == norm(b)
                }
                _ => want == &got,
            };
            if !same {
                d.push(k);
            }
        }
    }
    if v.verdict.as_str() != c.expected.verdict {
        d.push("verdict");
    }
    if kind_str(v) != c.expected.kind {
        d.push("kind");
    }
    let norm = |s: &Option<String>| s.as_ref().map(|x| x.trim().to_lowercase());
    if norm(&v.original.message_id.as_ref().map(ToString::to_string))
        != norm(&c.expected.original_message_id)
    {
        d.push("original_message_id");
    }
    d
}

/// The fields from the labels (not the pinned extractions).
const LABELLED: [&str; 3] = ["verdict", "kind", "original_message_id"];

/// The MTA family of a golden file: the corpus file prefix
/// (`lhost-postfix-07.eml` is `lhost-postfix`, `arf-22.eml` is `arf`), or
/// `extra/<source>` for the added samples, which are grouped by where they
/// come from.
pub fn family(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("tests/fixtures/extra/") {
        let source = rest.split('/').next().unwrap_or(rest);
        return format!("extra/{source}");
    }
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.strip_suffix(".eml").unwrap_or(file);
    match stem.rsplit_once('-') {
        Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            head.to_string()
        }
        _ => stem.to_string(),
    }
}

#[derive(Default)]
struct Tally {
    total: usize,
    detected: usize,
    kind_right: usize,
    with_id: usize,
    id_right: usize,
    /// Verdict, kind and original Message-ID all as expected.
    all_right: usize,
    /// Recipients (and a bounce's action and status) as pinned.
    pins_right: usize,
}

#[test]
fn golden_corpora() {
    let known = known_differences();
    let sent = SentIndex::new();
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    let mut unexpected = Vec::new();
    let mut seen_known = BTreeSet::new();
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut families: BTreeMap<String, Tally> = BTreeMap::new();
    let mut n = 0;
    let blessing = std::env::var_os("BACKSCATTER_BLESS").is_some();
    let mut unpinned = 0;
    for dir in corpora() {
        for c in cases(&dir) {
            n += 1;
            let raw = std::fs::read(&c.eml).unwrap();
            let v = classify(&raw, &ctx);
            if blessing {
                bless(&c, &v);
            } else if pins(&c, &v).iter().any(|(k, _)| c.json.get(*k).is_none()) {
                unpinned += 1;
            }
            let path = rel(&c.eml);
            let label = c.expected.kind.clone().unwrap_or_else(|| "normal".into());
            let t = tally.entry(label).or_default();
            t.total += 1;
            if v.verdict.as_str() == c.expected.verdict {
                t.detected += 1;
            }
            if kind_str(&v) == c.expected.kind {
                t.kind_right += 1;
            }
            if c.expected.original_message_id.is_some() {
                t.with_id += 1;
                if !diffs(&c, &v).contains(&"original_message_id") {
                    t.id_right += 1;
                }
            }
            let fam = families.entry(family(&path)).or_default();
            fam.total += 1;
            fam.detected += usize::from(v.verdict.as_str() == c.expected.verdict);
            fam.kind_right += usize::from(kind_str(&v) == c.expected.kind);
            fam.all_right += usize::from(!diffs(&c, &v).iter().any(|d| LABELLED.contains(d)));
            fam.pins_right += usize::from(!diffs(&c, &v).iter().any(|d| !LABELLED.contains(d)));
            if c.expected.original_message_id.is_some() {
                fam.with_id += 1;
                fam.id_right += usize::from(!diffs(&c, &v).contains(&"original_message_id"));
            }
            let failed = c.eml.with_extension("failed");
            let mut bad = Vec::new();
            for field in diffs(&c, &v) {
                let key = (path.clone(), field.to_string());
                if known.contains(&key) {
                    seen_known.insert(key);
                } else {
                    bad.push(field);
                }
            }
            if bad.is_empty() {
                let _ = std::fs::remove_file(&failed);
            } else {
                let _ = std::fs::write(&failed, serde_json::to_string_pretty(&v).unwrap());
                unexpected.push(format!(
                    "{path}: {} (expected {:?}/{:?}/{:?}, got {}/{:?}/{:?}; see {})",
                    bad.join(", "),
                    c.expected.verdict,
                    c.expected.kind,
                    c.expected.original_message_id,
                    v.verdict.as_str(),
                    kind_str(&v),
                    v.original.message_id,
                    rel(&failed)
                ));
            }
        }
    }
    eprintln!("golden: {n} messages");
    eprintln!(
        "{:<16} {:>6} {:>9} {:>9} {:>12}",
        "label", "count", "verdict", "kind", "original-id"
    );
    for (label, t) in &tally {
        eprintln!(
            "{:<16} {:>6} {:>8.1}% {:>8.1}% {:>12}",
            label,
            t.total,
            100.0 * t.detected as f64 / t.total as f64,
            100.0 * t.kind_right as f64 / t.total as f64,
            if t.with_id > 0 {
                format!(
                    "{}/{} ({:.1}%)",
                    t.id_right,
                    t.with_id,
                    100.0 * t.id_right as f64 / t.with_id as f64
                )
            } else {
                "-".into()
            }
        );
    }
    eprintln!();
    eprintln!(
        "{:<28} {:<16} {:>5} {:>8} {:>8} {:>10} {:>8} {:>8}",
        "family", "lexicon mta", "count", "verdict", "kind", "orig-id", "all", "pinned"
    );
    let lex = &*backscatter::lexicon::LEXICON;
    for (fam, t) in &families {
        // The lexicon's family key for this corpus prefix, if it has one.
        let key = lex
            .mta_families
            .iter()
            .find(|f| f.corpus.iter().any(|c| c == fam))
            .map_or("-", |f| f.key.as_str());
        eprintln!(
            "{:<28} {:<16} {:>5} {:>8} {:>8} {:>10} {:>8} {:>8}",
            fam,
            key,
            t.total,
            t.detected,
            t.kind_right,
            format!("{}/{}", t.id_right, t.with_id),
            t.all_right,
            t.pins_right
        );
    }
    let stale: Vec<_> = known.difference(&seen_known).collect();
    assert!(n > 600, "corpus not found: only {n} cases");
    assert!(
        unpinned == 0,
        "{unpinned} expectation files lack recipients/action/status: review the classifier's output and run with BACKSCATTER_BLESS=1"
    );
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "{} unexpected golden differences:\n{}\n{} listed differences no longer occur (remove them from tests/corpus/known-differences.tsv):\n{:?}",
        unexpected.len(),
        unexpected.join("\n"),
        stale.len(),
        stale
    );
}
