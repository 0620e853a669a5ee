//! The golden corpora (`tests/corpus/sisimai`, and `tests/fixtures/extra`
//! when its labels are there): every `.eml` has an expected `.json` beside
//! it, read here.

use crate::repo_root;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The golden corpora: every `.eml` under these has an expected `.json`.
pub fn corpora() -> Vec<PathBuf> {
    let mut v = vec![repo_root().join("tests/corpus/sisimai")];
    let extra = repo_root().join("tests/fixtures/extra");
    if extra.join("labels.tsv").exists() {
        v.push(extra);
    }
    v
}

/// The fields of an expectation file every test reads.
#[derive(Debug, Deserialize, Clone)]
pub struct Expected {
    /// `backscatter`, `legitimate` or `normal`
    pub verdict: String,
    /// the kind of automated response, e.g. `bounce`
    pub kind: Option<String>,
    /// the original's Message-ID, with brackets
    pub original_message_id: Option<String>,
}

/// One corpus message and its expectation.
pub struct Case {
    /// the message file
    pub eml: PathBuf,
    pub expected: Expected,
    /// The whole expectation file, for the fields only the golden test
    /// reads (`recipients`, `action`, `status`).
    pub json: serde_json::Value,
}

/// Every (.eml, .json) pair under `dir`, sorted by path. Panics when an
/// `.eml` has no readable expectation.
pub fn cases(dir: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.expect("walk corpus");
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) == Some("eml") {
            let j = p.with_extension("json");
            let text = std::fs::read_to_string(&j)
                .unwrap_or_else(|_| panic!("{} has no expected {}", p.display(), j.display()));
            let expected: Expected =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", j.display()));
            let json = serde_json::from_str(&text).unwrap_or_default();
            out.push(Case {
                eml: p.to_path_buf(),
                expected,
                json,
            });
        }
    }
    out
}

/// Path relative to the repository root, with `/` separators.
pub fn rel(p: &Path) -> String {
    p.strip_prefix(repo_root())
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}
