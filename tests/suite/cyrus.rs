//! The Cyrus harness (a real, throw-away Cyrus IMAP 3.6 with Debian's
//! `INBOX.` namespace) and the ManageSieve test client, now in the test-kit
//! crate (`crates/testkit`: `backscatter_testkit::cyrus`,
//! `::managesieve_client`).
//!
//! This module is a thin shim: it re-exports them under their old names
//! (`crate::cyrus::Cyrus`, `crate::cyrus::list_names`, ...) so that tests
//! written against it keep compiling. New code may use
//! `backscatter_testkit::...` directly. The harness's own tests against a
//! real server stay here.

#![allow(unused_imports)] // a shim keeps every old name, used here or not

pub use backscatter_testkit::cyrus::{cache_dir, list_names, Cyrus, ADMIN, FOLDERS, USERS};
pub use backscatter_testkit::managesieve_client::ManageSieve;
use backscatter_testkit::{imap_client::Imap, imap_client::IO_TIMEOUT};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// The harness's own tests: a real server with Debian's layout
// ---------------------------------------------------------------------------

/// A hand-written bounce (null sender) with the given Message-ID.
pub fn bounce(id: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@example.net\r\nTo: alice@example.test\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: {id}\r\n\r\n\
         .a line starting with a dot\r\nend\r\n"
    )
    .into_bytes()
}

#[test]
fn cyrus_namespace_login_and_lmtp() {
    let Some(mut cy) = Cyrus::start_or_skip("cyrus_namespace_login_and_lmtp") else {
        return;
    };
    let mut imap = cy.imap("alice");
    assert!(imap.has_capability("NAMESPACE") && imap.has_capability("MOVE"));
    assert!(imap.has_capability("IDLE") && imap.has_capability("SPECIAL-USE"));
    // A quirk issue 11 noted: LOGINDISABLED is still listed after login.
    assert!(
        imap.has_capability("LOGINDISABLED"),
        "{:?}",
        imap.capabilities
    );

    // RFC 2342: personal namespace "INBOX." with delimiter "."
    let reply = imap.command("NAMESPACE").unwrap();
    let ns = reply
        .untagged
        .iter()
        .find(|r| r.kind == "NAMESPACE")
        .expect("a NAMESPACE response");
    let values = ns.values().unwrap();
    let personal = values[0].list().expect("a personal namespace")[0]
        .list()
        .unwrap();
    assert_eq!(personal[0].bytes(), Some(&b"INBOX."[..]), "{ns}");
    assert_eq!(personal[1].bytes(), Some(&b"."[..]), "{ns}");

    // The folders, with their special use.
    let list = imap.command("LIST \"\" \"*\"").unwrap();
    let sent = list
        .untagged
        .iter()
        .find(|r| r.kind == "LIST" && r.text().ends_with("INBOX.Sent"))
        .unwrap_or_else(|| panic!("no INBOX.Sent in {:?}", list.untagged));
    assert!(sent.text().contains("\\Sent"), "{sent}");
    assert_eq!(
        list_names(&mut imap),
        ["INBOX", "INBOX.Drafts", "INBOX.Sent", "INBOX.Trash"]
    );

    // Nothing outside INBOX.: Debian's Cyrus refuses a top-level folder.
    let err = imap.command("CREATE \"Backscatter\"").unwrap_err();
    assert!(err.contains("NO"), "{err}");
    imap.command("CREATE \"INBOX.Backscatter\"").unwrap();
    assert!(list_names(&mut imap).contains(&"INBOX.Backscatter".to_string()));

    // LMTP with the null sender lands in INBOX.
    cy.deliver("<>", "alice", &bounce("<cyrus-lmtp-1@example.net>"))
        .unwrap();
    assert_eq!(imap.select("INBOX"), 1);
    let ids = imap.fetch_message_ids("INBOX");
    assert_eq!(ids[0].1.as_deref(), Some("<cyrus-lmtp-1@example.net>"));
    let raw = String::from_utf8_lossy(&imap.fetch_raw("INBOX", ids[0].0)).into_owned();
    assert!(
        raw.contains("\r\n\r\n.a line starting with a dot\r\n"),
        "{raw}"
    );
    let err = cy.deliver("", "nobody-here", b"Subject: x\r\n\r\nx\r\n");
    assert!(err.is_err_and(|e| e.contains("RCPT TO")));
    // a MOVE into the user's own folder works
    imap.command(&format!("UID MOVE {} \"INBOX.Backscatter\"", ids[0].0))
        .unwrap();
    assert_eq!(imap.status("INBOX.Backscatter").0, 1);

    // A real password check.
    assert!(Imap::try_connect(cy.imap_port, "alice", "wrong").is_err());
    let mut bob = cy.imap("bob");
    assert_eq!(bob.select("INBOX"), 0);
    bob.logout();
    imap.logout();

    let dir = cy.dir.clone();
    let pid = cy.pid;
    cy.stop();
    assert!(!dir.exists(), "{} still there", dir.display());
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z ")),
        "the master {pid} is still running"
    );
    println!(
        "cyrus harness ({}): start {:?} (start.sh {:?})",
        cy.version, cy.start_time, cy.start_sh_time
    );
}

/// timsieved stores and activates a script; lmtpd runs it at delivery.
/// A `fileinto` a folder outside `INBOX.` fails there, and the message is
/// kept in INBOX (what issue 11 saw with the installed script).
#[test]
fn cyrus_managesieve_script_files_a_delivery() {
    let Some(cy) = Cyrus::start_or_skip("cyrus_managesieve_script_files_a_delivery") else {
        return;
    };
    let mut imap = cy.imap("alice");
    imap.command("CREATE \"INBOX.Q\"").unwrap();
    let mut sieve = cy.sieve("alice");
    assert!(
        sieve
            .capabilities
            .iter()
            .any(|c| c.starts_with("\"SIEVE\"") && c.contains("fileinto")),
        "{:?}",
        sieve.capabilities
    );
    // hand-written
    let script = "require [\"fileinto\"];\r\n\
                  if header :contains \"subject\" \"Undelivered\" { fileinto \"INBOX.Q\"; }\r\n";
    sieve.put("q", script).unwrap();
    sieve.set_active("q").unwrap();
    assert_eq!(sieve.list().unwrap(), [("q".to_string(), true)]);
    assert!(
        sieve.put("bad", "fileinto \"x\";").is_err(),
        "a script without require"
    );

    cy.deliver("<>", "alice", &bounce("<cyrus-sieve-1@example.net>"))
        .unwrap();
    cy.deliver(
        "carol@example.org",
        "alice",
        b"From: carol@example.org\r\nSubject: lunch\r\nMessage-ID: <cyrus-sieve-2@example.org>\r\n\r\nhi\r\n",
    )
    .unwrap();
    let w = cy.where_is("alice");
    assert_eq!(w["<cyrus-sieve-1@example.net>"], ["INBOX.Q"]);
    assert_eq!(w["<cyrus-sieve-2@example.org>"], ["INBOX"]);

    // fileinto a top-level folder: refused at delivery, kept in INBOX
    let outside = "require [\"fileinto\"];\r\nfileinto \"Backscatter\";\r\n";
    sieve.put("q", outside).unwrap();
    cy.deliver("<>", "alice", &bounce("<cyrus-sieve-3@example.net>"))
        .unwrap();
    let w = cy.where_is("alice");
    assert_eq!(w["<cyrus-sieve-3@example.net>"], ["INBOX"]);
    assert!(!list_names(&mut imap).iter().any(|m| m == "Backscatter"));
    sieve.logout();
}

/// IDLE (RFC 2177) pushes a delivery at once (idled runs).
#[test]
fn cyrus_idle_pushes_a_delivery() {
    let Some(cy) = Cyrus::start_or_skip("cyrus_idle_pushes_a_delivery") else {
        return;
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], cy.imap_port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut until = |tag: &str| -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                r.read_line(&mut line).unwrap() > 0,
                "closed after {lines:?}"
            );
            let done = line.starts_with(tag);
            lines.push(line.trim_end().to_string());
            if done {
                return lines;
            }
        }
    };
    until("* OK");
    w.write_all(b"a LOGIN alice alicepw\r\nb SELECT INBOX\r\n")
        .unwrap();
    until("a OK");
    until("b OK");
    w.write_all(b"c IDLE\r\n").unwrap();
    until("+");
    let t = Instant::now();
    cy.deliver("<>", "alice", &bounce("<cyrus-idle-1@example.net>"))
        .unwrap();
    let pushed = until("* 1 EXISTS");
    let latency = t.elapsed();
    w.write_all(b"DONE\r\n").unwrap();
    let done = until("c ");
    assert!(done.last().unwrap().starts_with("c OK"), "{done:?}");
    // The delivery was pushed, not found by a poll (imapidlepoll is 60 s).
    assert!(latency < Duration::from_secs(20), "{latency:?} {pushed:?}");
    println!("cyrus IDLE: delivery pushed after {latency:?}");
}
