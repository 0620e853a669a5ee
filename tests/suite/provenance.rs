//! Provenance: the same real automated responses are `legitimate` when
//! their original is in the user's sent mail and `backscatter` when not.
//!
//! Half of the distinct original Message-IDs of the corpora go into the
//! sent index (IDs one message carries together go in together:
//! [`crate::util::sent_half`]); every response to one of those must be legitimate, every
//! other one backscatter. Messages whose detection is a listed known
//! difference are left out (the golden test covers them).

use crate::util::{cases, corpora, rel};
use backscatter::{classify, Context, Decision, SentIndex, SentMessage};
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
    let half = crate::util::sent_half(&all.iter().collect::<Vec<_>>());
    let sent_ids: BTreeSet<&String> = ids.iter().filter(|i| half.contains(*i)).collect();
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

/// A realistic Sent folder: for every real response with an original
/// Message-ID, the user either sent that original (half of them, as the
/// user's client saved it: its Message-ID, recipients, subject and date) or
/// did not, while still writing, on other days and about other things, to
/// the very recipients the forged originals went to. A recipient the user
/// also wrote to must never outweigh a foreign original Message-ID; the
/// sent half stays legitimate.
///
/// Then the provider-rewrite exception: the same sent originals with their
/// Message-ID replaced (Amazon SES replaces it on submission) stay
/// legitimate by recipient and subject or date, while the forged half
/// stays backscatter (a date alone is no corroboration: the corpora hold
/// distinct messages to one recipient with the same `Date:`).
#[test]
fn a_recipient_you_wrote_to_never_outweighs_a_foreign_message_id() {
    let none = SentIndex::new();
    let empty = Context {
        sent: &none,
        own_addresses: &[],
    };
    let known: BTreeSet<String> =
        std::fs::read_to_string(crate::util::root().join("tests/corpus/known-differences.tsv"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').next().map(str::to_string))
            .collect();
    // Every automated response with an original ID and recipients, with
    // the values the classifier extracts from the file.
    let mut all = Vec::new();
    for c in corpora().iter().flat_map(|d| cases(d)) {
        if c.expected.verdict != "backscatter" || known.contains(&rel(&c.eml)) {
            continue;
        }
        let raw = std::fs::read(&c.eml).unwrap();
        let v = classify(&raw, &empty);
        if v.original.message_id.is_some() && !v.original.recipients.is_empty() {
            all.push((rel(&c.eml), raw, v.original));
        }
    }
    let ids: BTreeSet<String> = all
        .iter()
        .map(|(_, _, o)| o.message_id.clone().unwrap().to_string().to_lowercase())
        .collect();
    let sent_ids: BTreeSet<&String> = ids.iter().step_by(2).collect();
    let date_of = crate::util::original_date;
    let norm = crate::util::original_subject;
    let sent_originals: Vec<&backscatter::Original> = all
        .iter()
        .filter(|(_, _, o)| {
            sent_ids.contains(&o.message_id.clone().unwrap().to_string().to_lowercase())
        })
        .map(|(_, _, o)| o)
        .collect();
    let twin = |o: &backscatter::Original| {
        crate::util::twin_of_a_sent_original(o, sent_originals.iter().copied())
    };
    let build = |rewrite_ids: bool| {
        let mut sent = SentIndex::new();
        let mut n = 0;
        for (_, _, o) in &all {
            let id = o.message_id.clone().unwrap().to_string().to_lowercase();
            if sent_ids.contains(&id) {
                n += 1;
                sent.insert(&SentMessage {
                    message_id: if rewrite_ids {
                        format!("<0100018c{n:08x}-rewritten@email.amazonses.com>")
                    } else {
                        id
                    }
                    .parse()
                    .ok(),
                    recipients: o.recipients.clone(),
                    subject: o.subject.clone(),
                    date: date_of(o),
                    ..Default::default()
                });
            } else {
                // Ordinary sent mail to the same people, another day, about
                // something else.
                sent.insert(&SentMessage {
                    message_id: format!("<ordinary-{}@example.org>", sent.len())
                        .parse()
                        .ok(),
                    recipients: o.recipients.clone(),
                    subject: Some(format!("Lunch next week? ({})", sent.len())),
                    date: date_of(o).map(|d| d - 9 * 86_400),
                    ..Default::default()
                });
            }
        }
        sent
    };
    for rewrite_ids in [false, true] {
        let sent = build(rewrite_ids);
        let ctx = Context {
            sent: &sent,
            own_addresses: &[],
        };
        let (mut legit, mut back, mut wrong) = (0, 0, Vec::new());
        let mut corroborated = 0;
        let mut twins = 0;
        for (path, raw, o) in &all {
            let id = o.message_id.clone().unwrap().to_string().to_lowercase();
            let was_sent = sent_ids.contains(&id);
            let v = classify(raw, &ctx);
            if !was_sent && twin(o) {
                twins += 1;
                continue;
            }
            // With rewritten IDs only sent originals that name a subject
            // (a short one with a date) can be recognised: those without
            // are left out.
            let short = norm(o).is_none_or(|s| s.chars().count() < 10);
            if rewrite_ids && was_sent && (norm(o).is_none() || (short && date_of(o).is_none())) {
                continue;
            }
            // A response that also names another sent original (several
            // corpus files quote more than one Message-ID) is legitimate.
            let names_a_sent_id = v.reasons[0].starts_with("decided by the original's Message-ID")
                && v.reasons[0].contains("is in your sent mail");
            let want = if was_sent || (names_a_sent_id && !rewrite_ids) {
                Decision::Legitimate
            } else {
                Decision::Backscatter
            };
            if v.verdict != want {
                wrong.push(format!(
                    "{path}: want {want:?}, got {:?}: {:?}",
                    v.verdict, v.reasons
                ));
            } else if want == Decision::Legitimate {
                legit += 1;
                if v.reasons[0].starts_with("decided by recipient and") {
                    corroborated += 1;
                }
            } else {
                back += 1;
                assert!(
                    v.reasons[0].starts_with("decided by the original's Message-ID"),
                    "{path}: {:?}",
                    v.reasons
                );
            }
        }
        eprintln!(
            "provenance with a realistic Sent (IDs rewritten: {rewrite_ids}): {} responses, {legit} legitimate ({corroborated} by corroboration), {back} backscatter, {twins} forged twins of sent originals left out",
            all.len()
        );
        // Only some corpus originals carry a subject (the only ones a
        // rewritten ID leaves recognisable).
        let min_legit = if rewrite_ids { 40 } else { 200 };
        assert!(
            legit > min_legit && back > 200,
            "too few cases: {legit} / {back}"
        );
        if rewrite_ids {
            assert_eq!(
                corroborated, legit,
                "with rewritten IDs only corroboration can keep them"
            );
        }
        assert!(
            wrong.is_empty(),
            "{} wrong:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }
}

/// Outlook.com renumbers the messages a client submits and keeps the
/// client's Message-ID in `X-Microsoft-Original-Message-ID`. A real
/// Outlook.com bounce (Sisimai's `lhost-outlook-03`), with that header added
/// to its returned original by hand (marked as such: no public bounce with
/// it was found), is legitimate when the user's Sent folder holds the
/// client's ID, and backscatter when it holds neither.
#[test]
fn a_provider_renumbered_original_is_found_by_its_client_id() {
    let raw =
        std::fs::read(crate::util::root().join("tests/corpus/sisimai/bsd/lhost-outlook-03.eml"))
            .unwrap();
    let text = String::from_utf8_lossy(&raw).replace(
        "Message-ID: <BLU436-SMTP665C5ECBE0D0D7D4C869BEBA770@phx.gbl>",
        "Message-ID: <BLU436-SMTP665C5ECBE0D0D7D4C869BEBA770@phx.gbl>\nX-Microsoft-Original-Message-ID: <5a1b9e0c-77d2@thunderbird.example.jp>",
    );
    assert!(text.contains("X-Microsoft-Original-Message-ID"));
    let mut sent = SentIndex::new();
    sent.insert_id("<5a1b9e0c-77d2@thunderbird.example.jp>");
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    let v = classify(text.as_bytes(), &ctx);
    assert_eq!(v.verdict, Decision::Legitimate, "{:?}", v.reasons);
    assert!(v.reasons[0].contains("<5a1b9e0c-77d2@thunderbird.example.jp> is in your sent mail"));
    let mut other = SentIndex::new();
    other.insert_id("<unrelated@example.org>");
    let v = classify(
        text.as_bytes(),
        &Context {
            sent: &other,
            own_addresses: &[],
        },
    );
    assert_eq!(v.verdict, Decision::Backscatter, "{:?}", v.reasons);
}

/// A real bounce (Sisimai's bsd/lhost-postfix-03.eml, BSD-2-Clause) of a
/// message the user sent (its Sent copy hand-written from the original's
/// Message-ID) is judged against the sent mail of the `sent-days` before
/// it arrived: legitimate when it arrived a day after the original was
/// saved in Sent, however long ago that was; backscatter when it arrived
/// 60 days after (no MTA bounces that late), with the reason naming the
/// window; and, with no arrival known, against the whole index as before.
#[test]
fn the_window_counts_from_the_arrival() {
    let bounce =
        std::fs::read(crate::util::root().join("tests/corpus/sisimai/bsd/lhost-postfix-03.eml"))
            .unwrap();
    let empty = SentIndex::new();
    let ctx = |sent| Context {
        sent,
        own_addresses: &[],
    };
    let id = classify(&bounce, &ctx(&empty))
        .original
        .message_id
        .expect("the original's ID")
        .to_string();
    let day = 86_400;
    let saved = 1_700_000_000;
    let mut m = SentMessage::from_raw(
        format!("To: someone@example.org\r\nSubject: hello\r\nMessage-ID: {id}\r\n\r\nhi\r\n")
            .as_bytes(),
    )
    .unwrap();
    m.saved = Some(saved);
    let mut index = SentIndex::new();
    index.insert(&m);
    index.set_window_days(30);
    let at = |t: Option<i64>| backscatter::classify::classify_at(&bounce, &ctx(&index), t);
    let v = at(Some(saved + day));
    assert_eq!(v.verdict, Decision::Legitimate, "{:?}", v.reasons);
    let v = at(Some(saved + 60 * day));
    assert_eq!(v.verdict, Decision::Backscatter, "{:?}", v.reasons);
    assert!(
        v.reasons[0].contains("is not among your sent mail of the 30 days before it arrived"),
        "{:?}",
        v.reasons
    );
    let v = at(None);
    assert_eq!(v.verdict, Decision::Legitimate, "{:?}", v.reasons);
}
