//! Provenance: the same real automated responses are `legitimate` when
//! their original is in the user's sent mail and `backscatter` when not.
//!
//! Half of the distinct original Message-IDs of the corpora go into the
//! sent index; every response to one of those must be legitimate, every
//! other one backscatter. Messages whose detection is a listed known
//! difference are left out (the golden test covers them).

use crate::util::{cases, corpora, rel};
use backscatter::{classify, Context, Decision, SentIndex};
use std::collections::BTreeSet;

#[test]
fn half_of_the_originals_sent() {
    let known: BTreeSet<String> =
        std::fs::read_to_string(crate::util::root().join("tests/corpus/known-differences.tsv"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').next().map(str::to_string))
            .collect();
    let all: Vec<_> = corpora()
        .iter()
        .flat_map(|d| cases(d))
        .filter(|c| c.expected.verdict == "backscatter" && c.expected.original_message_id.is_some())
        .filter(|c| !known.contains(&rel(&c.eml)))
        .collect();
    let ids: BTreeSet<String> = all
        .iter()
        .map(|c| {
            c.expected
                .original_message_id
                .clone()
                .unwrap()
                .to_lowercase()
        })
        .collect();
    let sent_ids: BTreeSet<&String> = ids.iter().step_by(2).collect();
    let mut sent = SentIndex::new();
    for id in &sent_ids {
        sent.insert_id(id);
    }
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    let (mut legit, mut back, mut wrong) = (0, 0, Vec::new());
    for c in &all {
        let id = c
            .expected
            .original_message_id
            .clone()
            .unwrap()
            .to_lowercase();
        let want = if sent_ids.contains(&id) {
            Decision::Legitimate
        } else {
            Decision::Backscatter
        };
        let v = classify(&std::fs::read(&c.eml).unwrap(), &ctx);
        match v.verdict {
            d if d == want && d == Decision::Legitimate => legit += 1,
            d if d == want => back += 1,
            d => wrong.push(format!(
                "{}: want {want:?}, got {d:?}: {:?}",
                rel(&c.eml),
                v.reasons
            )),
        }
    }
    eprintln!(
        "provenance: {} messages, {} distinct originals ({} in the sent index): {legit} legitimate, {back} backscatter",
        all.len(),
        ids.len(),
        sent_ids.len()
    );
    assert!(legit > 200 && back > 200, "too few cases: {legit} / {back}");
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
