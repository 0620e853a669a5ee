//! The shared cases (`tests/fixtures/cases/`, copied from `../shared/cases/`):
//! messages rebuilt from public bug reports, each standing for a kind of
//! message the classifier once got wrong.
//!
//! Every case is classified twice: with no sent mail, an automated case
//! must be `backscatter` of its kind with its original Message-ID and an
//! ordinary one `normal`; with the original's Message-ID in the sent index,
//! the automated case must be `legitimate` (the user sent the original) and
//! the ordinary one still `normal`.

use backscatter::{classify, Context, SentIndex, Verdict};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Expect {
    automated: bool,
    kind: Option<String>,
    original_message_id: Option<String>,
    source: String,
}

fn cases() -> Vec<(PathBuf, Expect)> {
    let dir = crate::util::root().join("tests/fixtures/cases");
    let mut v = Vec::new();
    for e in std::fs::read_dir(&dir).expect("tests/fixtures/cases exists") {
        let p = e.expect("read tests/fixtures/cases").path();
        if p.extension().and_then(|x| x.to_str()) == Some("eml") {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            let j = dir.join(format!("{name}.expect.json"));
            let text = std::fs::read_to_string(&j)
                .unwrap_or_else(|_| panic!("{} has no {}", p.display(), j.display()));
            let x: Expect =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", j.display()));
            v.push((p, x));
        }
    }
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn run(raw: &[u8], sent: &SentIndex) -> Verdict {
    classify(
        raw,
        &Context {
            sent,
            own_addresses: &[],
        },
    )
}

fn id(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|x| x.trim().to_lowercase())
}

#[test]
fn every_shared_case_without_and_with_its_original_sent() {
    let all = cases();
    assert!(all.len() >= 4, "only {} cases found", all.len());
    let mut bad = Vec::new();
    for (path, x) in &all {
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(x.source.starts_with("https://"), "{name}: no source");
        let raw = std::fs::read(path).unwrap();
        let v = run(&raw, &SentIndex::new());
        let got = (
            v.verdict.as_str(),
            v.kind.map(|k| k.as_str().to_string()),
            id(&v.original.message_id.as_ref().map(ToString::to_string)),
        );
        let want = if x.automated {
            ("backscatter", x.kind.clone(), id(&x.original_message_id))
        } else {
            ("normal", None, None)
        };
        if got != want {
            bad.push(format!(
                "{name}, no sent mail: expected {want:?}, got {got:?} ({:?})",
                v.reasons
            ));
        }
        // The original's Message-ID given as sent.
        let mut sent = SentIndex::new();
        if let Some(orig) = &x.original_message_id {
            sent.insert_id(orig);
        } else {
            // An ordinary case: a sent index with an unrelated ID.
            sent.insert_id("<unrelated@example.org>");
        }
        let v = run(&raw, &sent);
        let want = if x.automated { "legitimate" } else { "normal" };
        if v.verdict.as_str() != want {
            bad.push(format!(
                "{name}, original sent: expected {want}, got {} ({:?})",
                v.verdict.as_str(),
                v.reasons
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
