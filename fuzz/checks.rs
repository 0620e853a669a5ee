//! What each fuzz target checks, as plain functions: the targets in
//! `fuzz_targets/` call them on libFuzzer's inputs, and the test suite
//! (`tests/suite/fuzzed.rs`) replays every input kept in
//! `fuzz/regressions/TARGET/` through them on stable Rust, in CI.
//! Each panics on a violated property.

#![allow(dead_code)] // each fuzz target uses one of these

use backscatter_policy::classify::fields;
use backscatter_policy::sieve::{generate, id_pattern, merge, run, unmerge, validate, Policy};
use backscatter_policy::{
    classify as classify_message, mbox, Context, Decision, SentIndex, SentMessage,
};
use std::sync::LazyLock;

static SENT: LazyLock<SentIndex> = LazyLock::new(|| {
    let mut s = SentIndex::new();
    s.insert_id("<a@b>");
    s
});

/// The classifier: any bytes get a verdict, never a panic.
pub fn classify(data: &[u8]) {
    let ctx = Context {
        sent: &SENT,
        own_addresses: &[],
    };
    let v = classify_message(data, &ctx);
    assert_eq!(v.verdict == Decision::Normal, v.kind.is_none());
}

/// The report-field parsers, the Message-ID scanners, the sent-message
/// extractor, the mbox splitter and the skeleton builder.
pub fn fields(data: &[u8]) {
    let _ = fields::delivery_status(data);
    let _ = fields::feedback_report(data);
    let text = String::from_utf8_lossy(data);
    let _ = fields::quoted_message_ids(data);
    let _ = fields::message_id_of_phrase(&text);
    let _ = fields::text_recipients(&text);
    let _ = fields::all_message_ids(&text);
    let _ = SentMessage::from_raw(data);
    for m in mbox::split(data) {
        assert!(m.len() <= data.len());
    }
    // A skeleton from arbitrary header bytes classifies without panicking,
    // and the fetch plan decides on arbitrary prefixes.
    let root = backscatter_policy::skeleton::Part::default();
    let m = backscatter_policy::skeleton::build(data, &root);
    let _ = backscatter_policy::classify::may_be_automated(&m);
    let _ = backscatter_policy::plan::after_prefix(data, Some(u32::MAX));
    let _ = backscatter_policy::plan::after_structure(data, Some(&root));
}

const EXT: [&str; 4] = ["fileinto", "envelope", "body", "mailbox"];

/// The Sieve generator's escaping and the marked-block merge: whatever
/// strings come from mail or config, the script compiles, requires only
/// what the server offers, and means what was intended (a response
/// carrying an included sent ID is kept, one carrying none is filed into
/// quarantine); a user's script that compiles still compiles with our
/// block in it, and the block comes out again byte for byte.
pub fn sieve(data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let flags = data[0];
    let text = String::from_utf8_lossy(&data[1..]);
    // Fields separated by \u{1}: quarantine, account, IDs..., then
    // (after a \u{2}) a user's script.
    let (fields, theirs) = text.split_once('\u{2}').unwrap_or((&text, ""));
    let mut parts = fields.split('\u{1}');
    let quarantine = parts.next().unwrap_or("").to_string();
    let account = parts.next().unwrap_or("").to_string();
    let ids: Vec<String> = parts.map(str::to_string).collect();
    let recipients: Vec<String> = ids.iter().filter(|i| i.contains('@')).cloned().collect();
    let ext: Vec<&str> = EXT
        .iter()
        .enumerate()
        .filter(|(i, e)| **e == "fileinto" || flags & (1 << i) != 0)
        .map(|(_, e)| *e)
        .collect();
    let ext = ext.join(" ");
    let max_bytes = if flags & 0x80 != 0 { 12_000 } else { 1 << 20 };
    let policy = Policy {
        account: &account,
        quarantine: &quarantine,
        sent_ids: &ids,
        scan_ids: ids.len(),
        recipients: &recipients,
        extensions: &ext,
        max_bytes,
        generated_at: "2026-11-23",
        // Hostile strings as keep entries too: only valid ones may reach
        // the script, and it must still compile.
        keep: &recipients,
    };
    let Ok(script) = generate(&policy) else {
        return;
    };
    assert!(script.text.len() <= max_bytes);
    validate(&script.text, &ext)
        .expect("a generated script compiles and requires only what is offered");
    // The folder as the script names it: control characters become spaces;
    // sieve-rs expands `${...}` even without "variables", so skip those.
    let folder: String = quarantine
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let bounce = |extra: &str| {
        format!(
            "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nTo: someone@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; x@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {extra}\r\n--b--\r\n"
        )
    };
    // What the script should do with a forged bounce about someone else's
    // message: keep it only if one of the user's strings occurs in it (as
    // `:contains` sees them: control characters turned into spaces,
    // ASCII case ignored).
    let spaced = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let all_fit = max_bytes == 1 << 20 && script.ids_dropped == 0;
    // sieve-rs departs from RFC 5228 on `\` in strings (it keeps the
    // escaping backslash and reads `\r`, `\n` C-style: FUZZING.md) and
    // expands `${...}` without "variables"; Pigeonhole, the server, does
    // neither. Meaning is checked with sieve-rs where they agree.
    let sieve_rs_literal = !quarantine.contains(['\\', '"'])
        && !quarantine.contains("${")
        && !ids.iter().any(|i| i.contains("${"))
        && !recipients.iter().any(|i| i.contains("${"));
    let has_body = script.requires.iter().any(|r| r == "body");
    if all_fit && sieve_rs_literal && script.requires.iter().any(|r| r == "envelope") {
        let raw = bounce("<unrelated@spam.example>");
        // `body` sees what follows the header.
        let hay = raw[raw.find("\r\n\r\n").unwrap()..].to_ascii_lowercase();
        let recips: Vec<String> = recipients
            .iter()
            .map(|r| r.trim().to_lowercase())
            .filter(|r| r.contains('@') && !r.contains(['"', '\\']))
            .collect();
        let in_body = ids
            .iter()
            .map(|i| id_pattern(i))
            .chain(recips.iter().cloned())
            .any(|p| hay.contains(&spaced(&p)));
        let from_ours = recips
            .iter()
            .any(|r| spaced(r) == "mailer-daemon@mx.example.net");
        // Without `body`, a response that names no original in a header
        // (this bounce) is left to the agent.
        let expected = if in_body || from_ours || !has_body {
            None
        } else {
            Some(folder.clone())
        };
        let got = run(&script.text, raw.as_bytes(), "").expect("runs");
        assert_eq!(
            got, expected,
            "a forged bounce is quarantined, unless it names the user's own"
        );
        if script.ids_included > 0 && has_body {
            // The newest ID the generator keeps (it leaves out those longer
            // than a header line).
            let id = ids
                .iter()
                .map(|i| id_pattern(i))
                .find(|p| p.len() <= 998)
                .unwrap_or_default();
            if !id.is_empty() && !id.chars().any(|c| c.is_control()) {
                let ours = run(&script.text, bounce(&id).as_bytes(), "").expect("runs");
                assert_eq!(
                    ours, None,
                    "a bounce of the user's own mail is kept: {id:?}"
                );
            }
        }
    }
    if ::sieve::Compiler::new().compile(theirs.as_bytes()).is_ok() {
        if let Ok(merged) = merge(theirs, &script) {
            assert_eq!(unmerge(&merged), unmerge(theirs));
            if !theirs.contains("${") {
                ::sieve::Compiler::new()
                    .compile(merged.as_bytes())
                    .expect("their compiling script still compiles with our block");
            }
        }
    }
}

/// The ManageSieve response codec (bytes from the server): no panic,
/// never more consumed than given, and a response parsed from a prefix is
/// the same when more bytes follow.
pub fn managesieve(data: &[u8]) {
    if let Ok(Some((r, used))) = backscatter_policy::managesieve::parse_response(data) {
        assert!(used <= data.len());
        let mut longer = data.to_vec();
        longer.extend_from_slice(b"OK\r\n");
        let again = backscatter_policy::managesieve::parse_response(&longer)
            .unwrap()
            .unwrap();
        assert_eq!(again, (r.clone(), used));
        let _ = r.text();
        let _ = r.ok();
    }
    if let Ok(Some((_, used))) = backscatter_policy::managesieve::parse_sasl_step(data) {
        assert!(used <= data.len());
    }
}
