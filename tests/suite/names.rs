//! Mailbox names against a real Dovecot: the personal namespace (RFC 2342)
//! of Cyrus and Courier (`prefix = INBOX.`, `separator = .`, set up in
//! Dovecot), UTF-8 folder names as users write them (modified UTF-7 on the
//! wire, RFC 3501 §5.1.3), the installed Sieve script filing into the same
//! folder the agent moves to, and mailboxes that do not exist.

use crate::harness::{lmtp_deliver, Dovecot, Options};
use backscatter::classify::Decision;
use std::path::{Path, PathBuf};

fn config(dir: &Path, dc: &Dovecot, extra: &str) -> PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"PW\"\n{extra}\n[accounts.alice.sieve]\nport = {}\n",
            dc.imap_port, dc.sieve_port
        ),
    )
    .unwrap();
    cfg
}

fn cli(dir: &Path, cfg: &Path, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let o = crate::util::backscatter(dir, cfg, args)
        .env("PW", "alicepw")
        .output()
        .unwrap();
    (
        o.status,
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn json_field(out: &str, key: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    v[key].as_u64().unwrap_or_else(|| panic!("no {key}: {out}"))
}

/// Every mailbox LIST shows, in UTF-8 (the harness decodes nothing: these
/// are the names as the server has them, compared in their wire form).
fn listed(dc: &Dovecot) -> Vec<String> {
    let mut imap = dc.imap("alice");
    let r = imap.command("LIST \"\" \"*\"").unwrap();
    r.untagged
        .iter()
        .filter(|u| u.kind == "LIST")
        .filter_map(|u| {
            let v = u.values().ok()?;
            Some(String::from_utf8_lossy(v.last()?.bytes()?).into_owned())
        })
        .collect()
}

/// Cyrus and Courier keep every folder under `INBOX.`: a configured
/// `quarantine = "Rückläufer/Spam"` and `sent = ["Sent"]` are
/// `INBOX.Rückläufer.Spam` and `INBOX.Sent` there, for clean (twice: the
/// quarantine then exists), restore, and the Sieve script delivered
/// through LMTP.
#[test]
fn names_follow_the_inbox_dot_namespace_of_cyrus_and_courier() {
    if !Dovecot::available() {
        let _ = Dovecot::start_or_skip("names_inbox_dot");
        return;
    }
    let dc = Dovecot::start_with(Options {
        namespace: Some(("INBOX.".into(), '.')),
        ..Options::default()
    });
    let f = crate::flood::flood(120);
    let mut imap = dc.imap("alice");
    imap.append_many("INBOX.Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    drop(imap);
    let dir = crate::sweep::tempdir("names-inbox-dot");
    let cfg = config(
        &dir,
        &dc,
        "quarantine = \"Rückläufer/Spam\"\nsent = [\"Sent\"]\n",
    );
    let before = listed(&dc);
    // Nothing at the root: the prefix is not optional on such servers.
    assert!(before.iter().all(|n| n.starts_with("INBOX")), "{before:?}");

    let (st, out, err) = cli(&dir, &cfg, &["account", "check"]);
    assert!(st.success(), "{out}{err}");
    assert!(
        out.contains("personal prefix \"INBOX.\", hierarchy delimiter \".\""),
        "{out}"
    );
    assert!(out.contains("Sent:        INBOX.Sent\n"), "{out}");
    assert!(out.contains("Watched:     INBOX\n"), "{out}");
    assert!(
        out.contains("Quarantine:  INBOX.Rückläufer.Spam (will be created"),
        "{out}"
    );

    let forged = f
        .expected
        .values()
        .filter(|d| **d == Decision::Backscatter)
        .count() as u64;
    let (st, out, err) = cli(&dir, &cfg, &["clean", "--json"]);
    assert!(st.success(), "{out}{err}");
    assert_eq!(json_field(&out, "quarantined"), forged, "{out}");
    let mut imap = dc.imap("alice");
    assert_eq!(
        imap.status("INBOX.Rückläufer.Spam").0 as u64,
        forged,
        "moved into the prefixed, UTF-7 encoded folder"
    );
    drop(imap);
    let after = listed(&dc);
    let new: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    // The folder (and its parent level), with the server's names for them.
    assert_eq!(
        new,
        ["INBOX.R&APw-ckl&AOQ-ufer", "INBOX.R&APw-ckl&AOQ-ufer.Spam"],
        "{after:?}"
    );

    // Again: the quarantine exists now; nothing else to move.
    let (st, out, err) = cli(&dir, &cfg, &["clean", "--json"]);
    assert!(st.success(), "{out}{err}");
    assert_eq!(json_field(&out, "quarantined"), 0, "{out}");

    // The script files into the same folder, named in UTF-8.
    let (st, script, err) = cli(&dir, &cfg, &["sieve", "generate"]);
    assert!(st.success(), "{err}");
    assert!(script.contains("\"INBOX.Rückläufer.Spam\""), "{script}");
    let (st, out, err) = cli(&dir, &cfg, &["sieve", "install"]);
    assert!(st.success(), "{out}{err}");
    let mut delivered = 0;
    for m in &crate::flood::forged(&f, 15) {
        lmtp_deliver(dc.lmtp_port, "", "alice@example.test", m).unwrap();
        delivered += 1;
    }
    let mut imap = dc.imap("alice");
    let in_q = imap.status("INBOX.Rückläufer.Spam").0 as u64 - forged;
    eprintln!("LMTP: {in_q} of {delivered} forged responses filed by the server's Sieve");
    assert!(
        in_q > 0,
        "the installed script filed nothing into quarantine"
    );
    let log = std::fs::read_to_string(&dc.log_file).unwrap_or_default();
    assert!(
        !log.contains("Mailbox doesn't exist") && !log.contains("fileinto action: failed"),
        "a Sieve delivery failed: {log}"
    );
    drop(imap);
    assert_eq!(
        listed(&dc).len(),
        after.len(),
        "Sieve created no second folder"
    );

    // Everything back where it came from, the script's filings included
    // (restore reads the quarantine itself, not only the journal).
    let (st, out, err) = cli(&dir, &cfg, &["restore", "--all"]);
    assert!(st.success(), "{out}{err}");
    let mut imap = dc.imap("alice");
    assert_eq!(imap.status("INBOX.Rückläufer.Spam").0, 0, "{out}{err}");
}

/// The default layout (no prefix, `/`): UTF-8 names as the user writes
/// them reach the server in modified UTF-7; a missing sent or watched
/// mailbox fails `account check` with exit 2, and `clean --mailbox` of a
/// missing one is one sentence naming it.
#[test]
fn utf8_names_and_missing_mailboxes() {
    let Some(dc) = Dovecot::start_or_skip("names_utf8") else {
        return;
    };
    let f = crate::flood::flood(60);
    let mut imap = dc.imap("alice");
    imap.create("Éléments envoyés");
    imap.append_many("Éléments envoyés", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    drop(imap);
    let dir = crate::sweep::tempdir("names-utf8");
    let cfg = config(
        &dir,
        &dc,
        "quarantine = \"Rückläufer/Spam\"\nsent = [\"Éléments envoyés\"]\n",
    );
    let (st, out, err) = cli(&dir, &cfg, &["account", "check"]);
    assert!(st.success(), "{out}{err}");
    assert!(out.contains("Sent:        Éléments envoyés\n"), "{out}");
    assert!(out.contains("Quarantine:  Rückläufer/Spam"), "{out}");

    let (st, out, err) = cli(&dir, &cfg, &["clean", "--json"]);
    assert!(st.success(), "{out}{err}");
    let moved = json_field(&out, "quarantined");
    assert!(moved > 0, "{out}");
    assert!(
        json_field(&out, "legitimate") > 0,
        "bounces of mail in \"Éléments envoyés\" are kept: the sent index read it: {out}"
    );
    assert_eq!(dc.imap("alice").status("Rückläufer/Spam").0 as u64, moved);
    assert!(listed(&dc).contains(&"R&APw-ckl&AOQ-ufer/Spam".to_string()));

    // A mailbox that is not there, named on the command line.
    let (st, out, err) = cli(&dir, &cfg, &["clean", "--mailbox", "Nope"]);
    assert_eq!(st.code(), Some(2), "{out}{err}");
    assert_eq!(err.lines().count(), 1, "one sentence: {err}");
    assert!(
        err.contains("\"Nope\"") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains("code:") && !err.contains("Some("), "{err}");

    // Missing sent and watched mailboxes fail the check.
    let cfg = config(
        &dir,
        &dc,
        "sent = [\"Gesendet\"]\nwatch = [\"INBOX\", \"Listen\"]\n",
    );
    let (st, out, err) = cli(&dir, &cfg, &["account", "check"]);
    assert_eq!(st.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("\"Gesendet\" (sent) does not exist")
            && err.contains("\"Listen\" (watch) does not exist"),
        "{err}"
    );
    assert!(
        !out.contains("Everything backscatter needs is there"),
        "{out}"
    );

    // watch stops an account whose watched mailbox is missing, with one
    // clear error, instead of retrying it as if the network were down.
    let cfg = config(&dir, &dc, "watch = [\"Listen\"]\n");
    let t = std::time::Instant::now();
    let mut child = crate::util::backscatter(&dir, &cfg, &["watch"])
        .env("PW", "alicepw")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("watch kept retrying a mailbox that does not exist");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("mailbox \"Listen\" does not exist"), "{err}");
    assert!(!err.contains("reconnecting"), "{err}");
}

/// Mailbox names with spaces, quotes, backslashes, `&`, brackets and
/// non-ASCII letters, through every command the agent names a mailbox in
/// (LIST, CREATE, SELECT, EXAMINE, UID COPY, UID MOVE): each is created
/// once, then found to exist (a second `ensure_mailbox` neither fails nor
/// creates), listed under its own name, and receives a copy and a move.
/// A name with a line break is refused before it reaches the server, as a
/// refusal of that one name: the session goes on.
#[test]
fn every_mailbox_command_quotes_and_encodes_the_name() {
    let Some(dc) = Dovecot::start_or_skip("names_quoted") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let a = crate::sweep::account(&dc, "alice");
    let pw = backscatter::secret::Secret::new(crate::harness::password("alice").into());
    let mut imap = rt.block_on(backscatter::imap::connect(&a, &pw)).unwrap();
    let names = [
        "Sent Items",
        "[Gmail]/Sent Mail",
        "Quo\"te",
        "Back\\slash",
        "Kopie-Ü",
        "Auto&Replies",
        "Old Mail/Space Only",
    ];
    let mut seed = dc.imap("alice");
    for (i, configured) in names.iter().enumerate() {
        let name = imap.resolve(configured);
        assert!(!rt.block_on(imap.mailbox_exists(&name)).unwrap(), "{name}");
        rt.block_on(imap.ensure_mailbox(&name))
            .unwrap_or_else(|e| panic!("create {name:?}: {e}"));
        assert!(rt.block_on(imap.mailbox_exists(&name)).unwrap(), "{name}");
        rt.block_on(imap.ensure_mailbox(&name))
            .unwrap_or_else(|e| panic!("{name:?} exists: {e}"));
        let listed = rt.block_on(imap.list()).unwrap();
        assert!(
            listed.iter().any(|m| m.name == name),
            "{name:?} not in {:?}",
            listed.iter().map(|m| &m.name).collect::<Vec<_>>()
        );
        let msg = format!(
            "From: a@example.org\r\nTo: alice@example.org\r\nMessage-ID: <names-{i}@example.org>\r\nSubject: to {name}\r\n\r\nhand-written test message\r\n"
        );
        seed.append("INBOX", msg.as_bytes());
        rt.block_on(imap.select("INBOX")).unwrap();
        let uids = rt.block_on(imap.uid_search("ALL")).unwrap();
        rt.block_on(imap.uid_copy(&uids, &name))
            .unwrap_or_else(|e| panic!("copy to {name:?}: {e}"));
        let mapped = rt
            .block_on(imap.uid_move_mapped(&uids, &name))
            .unwrap_or_else(|e| panic!("move to {name:?}: {e}"));
        assert_eq!(mapped.map(|m| m.pairs.len()), Some(1), "{name}");
        let sel = rt.block_on(imap.examine(&name)).unwrap();
        assert_eq!(sel.exists, 2, "{name}: a copy and a moved message");
        assert_eq!(seed.status(&name).0, 2, "{name} as the server has it");
    }
    // A name built from a message with a line break: refused for that
    // name only (ErrorKind::No), shown escaped, and the session goes on.
    for bad in ["Lists/a\r\n* OK b", "Lists/\u{7}bell"] {
        let e = rt.block_on(imap.ensure_mailbox(bad)).unwrap_err();
        assert_eq!(e.kind, backscatter::imap::ErrorKind::No, "{e}");
        assert!(!e.to_string().contains(['\r', '\n']), "{e}");
    }
    rt.block_on(imap.noop())
        .expect("the session is still usable");
    rt.block_on(imap.logout());
}

/// A Dovecot with the `INBOX.` namespace (separator `.`) holding a
/// 30-message flood in INBOX and its originals in `INBOX.Sent`, with how
/// many of the flood are backscatter; `None` (test skipped) without
/// Dovecot.
fn inbox_dot_flood(name: &str) -> Option<(Dovecot, crate::flood::Flood, usize)> {
    if !Dovecot::available() {
        let _ = Dovecot::start_or_skip(name);
        return None;
    }
    let dc = Dovecot::start_with(Options {
        namespace: Some(("INBOX.".into(), '.')),
        ..Options::default()
    });
    let f = crate::flood::flood(30);
    let mut imap = dc.imap("alice");
    imap.append_many("INBOX.Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    drop(imap);
    let forged = f
        .expected
        .values()
        .filter(|d| **d == Decision::Backscatter)
        .count();
    Some((dc, f, forged))
}

/// Every command names the mailboxes as an `INBOX.` server does, through
/// one resolution (issue: `quarantine list` found nothing, summaries said
/// "Backscatter", and `filter`'s fileinto names were sent unresolved):
/// clean (its summary names `INBOX.Backscatter`), quarantine list and
/// show, report, filter's `fileinto :create "MyBounces"` (into
/// `INBOX.MyBounces`) and restore, with the default quarantine name.
#[test]
fn every_command_resolves_names_in_the_inbox_dot_namespace() {
    let Some((dc, f, forged)) = inbox_dot_flood("names_every_command") else {
        return;
    };
    let legit = f
        .expected
        .values()
        .filter(|d| **d == Decision::Legitimate)
        .count();
    assert!(forged > 0 && legit > 0);
    let dir = crate::sweep::tempdir("names-every-command");
    let rules = dir.join("rules.sieve");
    std::fs::write(
        &rules,
        "require [\"fileinto\", \"environment\", \"mailbox\"];\n\
         if environment :is \"vnd.backscatter.verdict\" \"legitimate\" { fileinto :create \"MyBounces\"; }\n",
    )
    .unwrap();
    let cfg = config(
        &dir,
        &dc,
        &format!("sent = [\"Sent\"]\nrules = \"{}\"\n", rules.display()),
    );

    let (st, out, err) = cli(&dir, &cfg, &["clean"]);
    assert!(st.success(), "{out}{err}");
    assert!(
        out.contains("messages of INBOX in")
            && out.contains(&format!("{forged} moved to INBOX.Backscatter")),
        "the summary names the server's mailboxes: {out}"
    );
    assert_eq!(
        dc.imap("alice").status("INBOX.Backscatter").0 as usize,
        forged
    );

    let (st, out, err) = cli(&dir, &cfg, &["quarantine", "list"]);
    assert!(st.success(), "{out}{err}");
    assert!(
        out.contains(&format!("{forged} messages in INBOX.Backscatter.")),
        "{out}"
    );
    assert_eq!(out.lines().count(), forged + 1, "{out}");
    let uid = out.split_whitespace().next().unwrap().to_string();
    let (st, out, err) = cli(&dir, &cfg, &["quarantine", "show", &uid]);
    assert!(st.success(), "{out}{err}");
    assert!(out.contains("Moved        from INBOX on"), "{out}");
    let (st, out, err) = cli(&dir, &cfg, &["quarantine", "show", "99999"]);
    assert_eq!(st.code(), Some(1), "{out}{err}");
    assert!(err.contains("in INBOX.Backscatter:"), "{err}");

    let (st, out, err) = cli(&dir, &cfg, &["report", "--json"]);
    assert!(st.success(), "{out}{err}");
    assert_eq!(json_field(&out, "quarantined") as usize, forged, "{out}");

    // The rules' fileinto names are the user's too.
    let (st, out, err) = cli(&dir, &cfg, &["filter"]);
    assert!(st.success(), "{out}{err}");
    assert!(out.contains(&format!("{legit} moved")), "{out}");
    assert_eq!(dc.imap("alice").status("INBOX.MyBounces").0 as usize, legit);
    assert!(
        listed(&dc).iter().all(|n| n.starts_with("INBOX")),
        "nothing created outside the personal namespace"
    );

    let (st, out, err) = cli(&dir, &cfg, &["restore", "--all"]);
    assert!(st.success(), "{out}{err}");
    assert!(
        out.contains(&format!(
            "Restored {forged} messages from INBOX.Backscatter"
        )),
        "{out}"
    );
    assert_eq!(dc.imap("alice").status("INBOX.Backscatter").0, 0);
}

/// A fileinto the server refuses is an error: the refusal is quoted on
/// stderr, the message stays, and `filter` exits 1 (it said "with errors"
/// and exited 0).
#[test]
fn filter_quotes_a_refused_fileinto_and_exits_1() {
    if !Dovecot::available() {
        let _ = Dovecot::start_or_skip("names_filter_refused");
        return;
    }
    let dc = Dovecot::start();
    let f = crate::flood::flood(6);
    let mut imap = dc.imap("alice");
    imap.append_many("INBOX", &f.inbox);
    drop(imap);
    let dir = crate::sweep::tempdir("names-filter-refused");
    let rules = dir.join("rules.sieve");
    // Dovecot refuses a name with an empty level ("NO Invalid mailbox name").
    std::fs::write(
        &rules,
        "require [\"fileinto\", \"mailbox\"];\nfileinto :create \"a//b\";\n",
    )
    .unwrap();
    let cfg = config(&dir, &dc, &format!("rules = \"{}\"\n", rules.display()));
    let (st, out, err) = cli(&dir, &cfg, &["filter"]);
    assert_eq!(st.code(), Some(1), "{out}{err}");
    assert!(out.contains("6 with errors"), "{out}");
    assert!(
        err.contains("the rules failed for 6 messages") && err.contains("refused"),
        "the server's refusal is quoted: {err}"
    );
    assert_eq!(
        dc.imap("alice").status("INBOX").0,
        6,
        "every message stayed"
    );
}

/// A server that offers NAMESPACE but refuses it (proxy quirk): the
/// `INBOX.` prefix is learnt from LIST (INBOX alone at the top, with
/// children), so the quarantine is `INBOX.Backscatter` as with NAMESPACE.
#[test]
fn without_namespace_the_prefix_is_learnt_from_list() {
    let Some((dc, _, forged)) = inbox_dot_flood("names_no_namespace") else {
        return;
    };
    let (port, _) = crate::quirks::proxy(dc.imap_port, crate::quirks::Quirk::RefuseNamespace);
    let dir = crate::sweep::tempdir("names-no-namespace");
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"PW\"\nsent = [\"Sent\"]\n"
        ),
    )
    .unwrap();
    let (st, out, err) = cli(&dir, &cfg, &["account", "check"]);
    assert!(st.success(), "{out}{err}");
    assert!(
        out.contains("personal prefix \"INBOX.\", hierarchy delimiter \".\""),
        "{out}"
    );
    let (st, out, err) = cli(&dir, &cfg, &["clean"]);
    assert!(st.success(), "{out}{err}");
    assert!(
        out.contains(&format!("{forged} moved to INBOX.Backscatter")),
        "{out}"
    );
    assert_eq!(
        dc.imap("alice").status("INBOX.Backscatter").0 as usize,
        forged
    );
}

/// `sieve install --rules` on a server whose personal namespace is
/// `INBOX.` (Cyrus, Courier; here Dovecot set up so): the uploaded rules
/// file into `INBOX.Invoices`, where `filter` files, instead of failing
/// at delivery on `Invoices` ("Mailbox can't be created", then INBOX);
/// and rules testing `vnd.backscatter.verdict`, which Pigeonhole never
/// sets, are refused with their line and nothing is uploaded (NEWCOMER3
/// #5). Delivered over LMTP to Dovecot/Pigeonhole.
#[test]
fn installed_rules_file_where_the_agent_files_and_agent_only_tests_are_refused() {
    if !Dovecot::available() {
        let _ = Dovecot::start_or_skip("names_rules_inbox_dot");
        return;
    }
    let dc = Dovecot::start_with(Options {
        namespace: Some(("INBOX.".into(), '.')),
        ..Options::default()
    });
    dc.imap("alice").create("INBOX.Sent");
    let dir = crate::sweep::tempdir("names-rules-inbox-dot");
    // Hand-written: the newcomer's rules (README's example verdict rule),
    // then the same without the verdict test.
    let verdict_rules = dir.join("verdict.sieve");
    std::fs::write(
        &verdict_rules,
        "require [\"environment\",\"fileinto\",\"mailbox\",\"imap4flags\"];\n\
         if environment :is \"vnd.backscatter.verdict\" \"legitimate\" { fileinto :create :flags \"\\\\Flagged\" \"My bounces\"; stop; }\n\
         if header :contains \"subject\" \"invoice\" { fileinto :create \"Invoices\"; }\n",
    )
    .unwrap();
    let plain_rules = dir.join("plain.sieve");
    std::fs::write(
        &plain_rules,
        "require [\"fileinto\",\"mailbox\"];\n\
         # \"Invoices\" in a comment stays as written\n\
         if header :contains \"subject\" \"invoice\" { fileinto :create \"Invoices\"; }\n\
         if header :contains \"subject\" \"receipt\" { fileinto :create \"Money/Receipts\"; }\n",
    )
    .unwrap();

    let cfg = config(
        &dir,
        &dc,
        &format!("sent = [\"Sent\"]\nrules = \"{}\"", verdict_rules.display()),
    );
    let (st, out, err) = cli(&dir, &cfg, &["sieve", "install", "--rules"]);
    assert_eq!(st.code(), Some(2), "{out}{err}");
    assert!(
        err.contains(
            "line 2 uses \"vnd.backscatter.verdict\", which only the agent (filter, watch) knows"
        ),
        "{err}"
    );
    let mut ms = backscatter_testkit::managesieve_client::ManageSieve::connect(
        dc.sieve_port,
        "alice",
        "alicepw",
    )
    .unwrap();
    assert_eq!(ms.list().unwrap(), vec![], "nothing uploaded");
    ms.logout();

    let cfg = config(
        &dir,
        &dc,
        &format!("sent = [\"Sent\"]\nrules = \"{}\"", plain_rules.display()),
    );
    let (st, out, err) = cli(&dir, &cfg, &["sieve", "install", "--rules"]);
    assert!(st.success(), "{out}{err}");
    for (n, subject) in [(1, "your invoice 42"), (2, "your receipt 7")] {
        let m = format!("From: shop@example.org\r\nTo: alice@example.test\r\nSubject: {subject}\r\nMessage-ID: <shop-{n}@example.org>\r\n\r\nthanks\r\n");
        lmtp_deliver(
            dc.lmtp_port,
            "shop@example.org",
            "alice@example.test",
            m.as_bytes(),
        )
        .unwrap();
    }
    let mut imap = dc.imap("alice");
    assert_eq!(imap.select("INBOX.Invoices"), 1, "{:?}", listed(&dc));
    assert_eq!(imap.select("INBOX.Money.Receipts"), 1, "{:?}", listed(&dc));
    assert_eq!(imap.select("INBOX"), 0, "nothing fell back to INBOX");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A quarantine named `Qü"ar/Spam` (newcomer round 3, 15m): `clean` moves
/// into it, the installed Sieve script files LMTP deliveries into the same
/// folder (Dovecot's log shows no failed fileinto), and `restore --all`
/// brings every message back.
#[test]
fn a_quarantine_with_a_double_quote_works_everywhere() {
    let Some(dc) = Dovecot::start_or_skip("names_quote") else {
        return;
    };
    let f = crate::flood::flood(40);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.append_many("INBOX", &f.inbox);
    drop(imap);
    let dir = crate::sweep::tempdir("names-quote");
    let cfg = config(&dir, &dc, "quarantine = 'Qü\"ar/Spam'\n");
    let (st, out, err) = cli(&dir, &cfg, &["clean", "--json"]);
    assert!(st.success(), "{out}{err}");
    let moved = json_field(&out, "quarantined");
    assert!(moved > 0, "{out}");
    assert_eq!(dc.imap("alice").status("Qü\"ar/Spam").0 as u64, moved);

    let (st, out, err) = cli(&dir, &cfg, &["sieve", "install"]);
    assert!(st.success(), "{out}{err}");
    let mut delivered = 0;
    for m in &crate::flood::forged(&f, 10) {
        lmtp_deliver(dc.lmtp_port, "", "alice@example.test", m).unwrap();
        delivered += 1;
    }
    let filed = dc.imap("alice").status("Qü\"ar/Spam").0 as u64 - moved;
    eprintln!("LMTP: {filed} of {delivered} forged responses filed into Qü\"ar/Spam");
    assert!(
        filed > 0,
        "the installed script filed nothing into quarantine"
    );
    let log = std::fs::read_to_string(&dc.log_file).unwrap_or_default();
    assert!(
        !log.contains("Mailbox doesn't exist") && !log.contains("fileinto action: failed"),
        "a Sieve delivery failed: {log}"
    );

    let (st, out, err) = cli(&dir, &cfg, &["restore", "--all", "--json"]);
    assert!(st.success(), "{out}{err}");
    assert_eq!(json_field(&out, "restored"), moved + filed, "{out}");
    assert_eq!(dc.imap("alice").status("Qü\"ar/Spam").0, 0);
}
