//! Mail the user's rules file, against a real Dovecot, as a newcomer ran
//! into it: destinations whose names hold spaces, quotes and non-ASCII
//! letters (`fileinto :create "Old Mail"`, `fileinto :copy "Kopie-Ü"`),
//! `restore --rules --dry-run` that must move nothing, and messages
//! without a Message-ID that `restore --rules` must still find. The test
//! messages are hand-written (a few header lines each).

use crate::harness::Dovecot;
use crate::sweep::tempdir;
use crate::util::backscatter;
use std::path::{Path, PathBuf};

const RULES: &str = r#"require ["fileinto", "mailbox", "copy", "imap4flags"];
if header :contains "subject" "[move]" { fileinto :create "Old Mail"; stop; }
if header :contains "subject" "[copy]" { fileinto :copy :flags "$Copied" "Kopie-Ü"; stop; }
if header :contains "subject" "[space]" { fileinto :create "Space Only"; stop; }
if header :contains "subject" "[quote]" { fileinto :create "Quo\"te & Co"; stop; }
"#;

fn config(base: &Path, dc: &Dovecot, rules: &Path) -> PathBuf {
    let cfg = base.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"PW\"\nrules = \"{}\"\n",
            dc.imap_port,
            rules.display()
        ),
    )
    .unwrap();
    cfg
}

fn message(n: usize, tag: &str, with_id: bool) -> Vec<u8> {
    let id = if with_id {
        format!("Message-ID: <filed-{n}@example.org>\r\n")
    } else {
        String::new()
    };
    format!(
        "From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: {tag} number {n}\r\nDate: Mon, 30 Nov 2026 05:00:0{n} +0000\r\n{id}\r\nhand-written test message {n}\r\n"
    )
    .into_bytes()
}

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn run(base: &Path, cfg: &Path, args: &[&str]) -> Run {
    let o = backscatter(base, cfg, args)
        .env("PW", "alicepw")
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&o.stdout).into_owned(),
        err: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `filter` files into mailboxes with spaces, quotes, `&` and non-ASCII
/// letters (created, or existing for a `:copy`), twice without doing
/// anything twice; `restore --rules --dry-run` (all, and one Message-ID)
/// moves nothing; `restore --rules` brings back every moved message,
/// those without a Message-ID included.
#[test]
fn rules_file_into_named_mailboxes_and_restore_finds_every_message() {
    let Some(dc) = Dovecot::start_or_skip("filed_names") else {
        return;
    };
    let mut imap = dc.imap("alice");
    imap.create("Kopie-Ü");
    let mail = [
        message(1, "[move]", true),
        message(2, "[move]", false),
        message(3, "[copy]", true),
        message(4, "[space]", false),
        message(5, "[quote]", true),
        message(6, "[stays]", true),
    ];
    imap.append_many("INBOX", &mail);
    let base = tempdir("filed-names");
    let rules = base.join("rules.sieve");
    std::fs::write(&rules, RULES).unwrap();
    let cfg = config(&base, &dc, &rules);
    let count = |imap: &mut crate::harness::Imap, m: &str| imap.status(m).0;

    let r = run(&base, &cfg, &["filter", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let v: serde_json::Value = serde_json::from_str(r.out.trim()).unwrap();
    assert_eq!(
        (v["moved"].as_u64(), v["copied"].as_u64()),
        (Some(4), Some(1)),
        "{}",
        r.out
    );
    assert_eq!(v["errors"].as_u64(), Some(0), "{}", r.out);
    assert_eq!(count(&mut imap, "Old Mail"), 2);
    assert_eq!(count(&mut imap, "Kopie-Ü"), 1);
    assert_eq!(count(&mut imap, "Space Only"), 1);
    assert_eq!(count(&mut imap, "Quo\"te & Co"), 1);
    assert_eq!(count(&mut imap, "INBOX"), 2);
    let copy = imap.uids("Kopie-Ü");
    assert!(imap
        .flags("Kopie-Ü", copy[0])
        .iter()
        .any(|f| f == "$Copied"));

    // The second run finds everything done, and does nothing twice.
    let r = run(&base, &cfg, &["filter", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    let v: serde_json::Value = serde_json::from_str(r.out.trim()).unwrap();
    assert_eq!(
        (v["moved"].as_u64(), v["copied"].as_u64()),
        (Some(0), Some(0)),
        "{}",
        r.out
    );
    assert_eq!(count(&mut imap, "Kopie-Ü"), 1);

    // Dry runs list and move nothing.
    let r = run(&base, &cfg, &["restore", "--rules", "--all", "--dry-run"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("would move 4 messages"), "{}", r.out);
    assert_eq!(r.out.matches("would move back").count(), 4, "{}", r.out);
    let r = run(
        &base,
        &cfg,
        &[
            "restore",
            "--rules",
            "--message-id",
            "filed-1@example.org",
            "--dry-run",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("would move 1 message "), "{}", r.out);
    assert_eq!(count(&mut imap, "Old Mail"), 2, "a dry run moved mail");
    assert_eq!(count(&mut imap, "INBOX"), 2, "a dry run moved mail");

    // The real thing: all four back, those without Message-ID included.
    let r = run(&base, &cfg, &["restore", "--rules", "--all"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert!(r.out.contains("Moved 4 messages back"), "{}", r.out);
    assert_eq!(count(&mut imap, "INBOX"), 6);
    for m in ["Old Mail", "Space Only", "Quo\"te & Co"] {
        assert_eq!(count(&mut imap, m), 0, "{m}");
    }
    assert_eq!(count(&mut imap, "Kopie-Ü"), 1, "copies stay");
    let _ = std::fs::remove_dir_all(&base);
}

const HOSTILE_RULES: &str = r#"require ["fileinto", "mailbox", "copy", "variables"];
if header :matches "subject" "list *" { fileinto :create "Lists/${1}"; stop; }
if header :contains "subject" "[parent]" { fileinto :copy "Parent"; stop; }
"#;

/// A mailbox name built from a message (`fileinto :create "Lists/${1}"`)
/// with a line break (an RFC 2047 encoded word in the Subject), and a
/// COPY the server refuses (into a parent that LIST shows but that holds
/// no mail): errors for those messages only, which stay in INBOX and are
/// tried again by the next run; the other messages are filed; `filter`
/// exits 1 and says why on stderr; the output holds no line break from
/// the message.
#[test]
fn one_message_cannot_switch_off_the_rules() {
    let Some(dc) = Dovecot::start_or_skip("filed_hostile") else {
        return;
    };
    let mut imap = dc.imap("alice");
    imap.create("Parent/child");
    let evil = b"From: x@example.net\r\nTo: alice@example.org\r\nSubject: list =?utf-8?q?evil=0D=0A2026-11-30T05:00:00Z_ERROR_injected?=\r\nMessage-ID: <evil@example.net>\r\n\r\nhand-written test message\r\n".to_vec();
    let mail = [
        evil,
        message(2, "list good", true),
        message(3, "[parent]", true),
        message(4, "[stays]", true),
    ];
    imap.append_many("INBOX", &mail);
    let base = tempdir("filed-hostile");
    let rules = base.join("rules.sieve");
    std::fs::write(&rules, HOSTILE_RULES).unwrap();
    let cfg = config(&base, &dc, &rules);
    for round in 0..2 {
        let r = run(&base, &cfg, &["filter", "--json"]);
        // Errors: said on stderr, exit 1 (the other messages are filed).
        assert_eq!(r.code, 1, "round {round}: {}{}", r.out, r.err);
        assert!(
            r.err.contains("the rules failed for 2 messages"),
            "round {round}: {}",
            r.err
        );
        let v: serde_json::Value = serde_json::from_str(r.out.trim()).unwrap();
        assert_eq!(
            v["errors"].as_u64(),
            Some(2),
            "round {round}: {}{}",
            r.out,
            r.err
        );
        assert_eq!(
            v["moved"].as_u64(),
            Some(if round == 0 { 1 } else { 0 }),
            "round {round}: {}",
            r.out
        );
        assert!(
            !(r.out.clone() + &r.err)
                .lines()
                .any(|l| l.starts_with("2026-11-30T05:00:00Z")),
            "a line break from the message reached the output: {}{}",
            r.out,
            r.err
        );
        assert_eq!(imap.status("INBOX").0, 3, "round {round}");
        assert_eq!(imap.status("Lists/good number 2").0, 1, "round {round}");
    }
    // The refused COPY was journaled as failed (its intent was written),
    // which is what sends it round again.
    let journal = walk(&base.join("data"))
        .into_iter()
        .find(|p| p.to_string_lossy().contains("rules-journal"))
        .expect("a rules journal");
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(text.matches("\"op\":\"failed\"").count(), 2, "{text}");
    let _ = std::fs::remove_dir_all(&base);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A message the user restored from quarantine (`$NotBackscatter`) is not
/// backscatter to their rules: a rule on `vnd.backscatter.verdict` leaves
/// it, and files its twin that was never restored.
#[test]
fn restored_mail_is_not_backscatter_to_the_rules() {
    let Some(dc) = Dovecot::start_or_skip("restored_mail_to_the_rules") else {
        return;
    };
    let base = tempdir("filed-restored");
    let rules = base.join("rules.sieve");
    std::fs::write(
        &rules,
        "require [\"fileinto\", \"mailbox\", \"environment\"];\nif environment :is \"vnd.backscatter.verdict\" \"backscatter\" { fileinto :create \"Looks forged\"; }\n",
    )
    .unwrap();
    let cfg = config(&base, &dc, &rules);
    // A real bounce of mail alice never sent (Sisimai's corpus), twice.
    let bounce =
        std::fs::read(crate::util::root().join("tests/corpus/sisimai/bsd/lhost-postfix-01.eml"))
            .unwrap();
    let mut imap = dc.imap("alice");
    let restored = imap.append("INBOX", &bounce);
    imap.store("INBOX", &restored.to_string(), "+FLAGS ($NotBackscatter)");
    imap.append("INBOX", &bounce);
    let r = run(&base, &cfg, &["filter", "--json"]);
    assert_eq!(r.code, 0, "{}{}", r.out, r.err);
    assert_eq!(dc.imap("alice").status("Looks forged").0, 1, "{}", r.out);
    let left = dc.imap("alice").uids("INBOX");
    assert_eq!(left, vec![restored], "the restored one stays");
    let _ = std::fs::remove_dir_all(&base);
}
