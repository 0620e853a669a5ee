//! The Dovecot harness and the IMAP and LMTP test clients, now in the
//! test-kit crate (`crates/testkit`: `backscatter_testkit::dovecot`,
//! `::imap_client`, `::lmtp`, `::server`).
//!
//! This module is a thin shim: it re-exports them under their old names
//! (`crate::harness::Dovecot`, `crate::harness::Imap`,
//! `crate::harness::lmtp_deliver`, ...) so that tests written against it
//! keep compiling. New code may use `backscatter_testkit::...` directly.
//! The harness's own test against a real server stays here.

#![allow(unused_imports)] // a shim keeps every old name, used here or not

pub use backscatter_testkit::dovecot::{
    password, Dovecot, MailFormat, Options, NO_MOVE_CONF, USERS,
};
pub use backscatter_testkit::imap_client::{
    header_message_id, mailbox_arg, Imap, Reply, Response, Value, IO_TIMEOUT,
};
pub use backscatter_testkit::lmtp::lmtp_deliver;
pub use backscatter_testkit::server::{find_program, free_ports, fresh_dir, tail};
use std::path::Path;
use std::time::Instant;

// ---------------------------------------------------------------------------
// The harness's own test
// ---------------------------------------------------------------------------

/// `template` with its first `Message-Id:` header line replaced by `id`.
fn with_message_id(template: &[u8], id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(template.len() + 32);
    let mut replaced = false;
    for line in template.split_inclusive(|&b| b == b'\n') {
        if !replaced && line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            out.extend_from_slice(format!("Message-Id: {id}\n").as_bytes());
            replaced = true;
        } else {
            out.extend_from_slice(line);
        }
    }
    assert!(replaced, "the template has no Message-Id header");
    out
}

#[test]
fn harness_works() {
    let t = Instant::now();
    let Some(mut dc) = Dovecot::start_or_skip("harness_works") else {
        return;
    };
    let t_start = t.elapsed();
    let t_start_sh = dc.start_time;
    assert!(dc.ca_file.is_file(), "{}", dc.ca_file.display());

    // 2,000 copies of a real bounce, each with its own Message-ID
    let template = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/sisimai/bsd/lhost-postfix-03.eml"),
    )
    .expect("read the template message");
    const N: usize = 2000;
    let id = |i: usize| format!("<harness-{i}@backscatter.test>");
    let messages: Vec<Vec<u8>> = (0..N).map(|i| with_message_id(&template, &id(i))).collect();

    let mut imap = dc.imap("alice");
    assert!(imap.has_capability("MULTIAPPEND") && imap.has_capability("LITERAL+"));
    imap.create("Bulk");
    imap.create("Bulk"); // already there: fine
    let t = Instant::now();
    let uids = imap.append_many("Bulk", &messages);
    let t_append = t.elapsed();
    assert_eq!(uids, (1..=N as u32).collect::<Vec<_>>());
    assert_eq!(imap.select("Bulk"), N as u32);
    let (count, uidvalidity, uidnext) = imap.status("Bulk");
    assert_eq!((count, uidnext), (N as u32, N as u32 + 1));
    assert_eq!(imap.uids("Bulk"), uids);

    let t = Instant::now();
    let ids = imap.fetch_message_ids("Bulk");
    let t_fetch_ids = t.elapsed();
    assert_eq!(ids.len(), N);
    for (i, (uid, mid)) in ids.iter().enumerate() {
        assert_eq!(*uid, uids[i]);
        assert_eq!(mid.as_deref(), Some(id(i).as_str()));
    }
    let raw = imap.fetch_raw("Bulk", uids[41]);
    let raw_text = String::from_utf8_lossy(&raw);
    assert!(raw_text.contains("Message-Id: <harness-41@backscatter.test>"));
    assert!(raw_text.contains("Undelivered Mail Returned to Sender"));
    // the second (quoted) Message-Id is the original one, untouched
    assert!(raw_text.contains("<20140701000000.000000000000@e1.example.ne.jp>"));
    assert!(!imap.flags("Bulk", uids[41]).iter().any(|f| f == "\\Seen"));
    imap.store(
        "Bulk",
        &uids[41].to_string(),
        "+FLAGS (\\Seen $Backscatter)",
    );
    // after a read helper, raw commands act on its mailbox, read-write
    let unflagged = |f: &[String]| !f.iter().any(|f| f == "\\Flagged");
    assert!(unflagged(&imap.flags("Bulk", uids[42])));
    imap.command(&format!("UID STORE {} +FLAGS (\\Flagged)", uids[42]))
        .unwrap();
    assert!(!unflagged(&imap.flags("Bulk", uids[42])));
    let flags = imap.flags("Bulk", uids[41]);
    assert!(flags.iter().any(|f| f == "\\Seen") && flags.iter().any(|f| f == "$Backscatter"));

    // LMTP with the null sender, dot-stuffing and bare LF line ends
    let t = Instant::now();
    let bounce = b"From: MAILER-DAEMON@example.net\nTo: alice@example.test\n\
        Subject: Undelivered Mail Returned to Sender\nMessage-ID: <lmtp-1@example.net>\n\n\
        .a line starting with a dot\n..and one with two\n.\nend\n";
    lmtp_deliver(dc.lmtp_port, "<>", "alice@example.test", bounce).unwrap();
    let t_lmtp = t.elapsed();
    assert_eq!(imap.select("INBOX"), 1);
    let inbox = imap.fetch_message_ids("INBOX");
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].1.as_deref(), Some("<lmtp-1@example.net>"));
    let raw = String::from_utf8_lossy(&imap.fetch_raw("INBOX", inbox[0].0)).into_owned();
    assert!(raw.starts_with("Return-Path: <>\r\n"), "{raw}");
    assert!(
        raw.contains("\r\n\r\n.a line starting with a dot\r\n..and one with two\r\n.\r\nend\r\n"),
        "{raw}"
    );
    let err = lmtp_deliver(
        dc.lmtp_port,
        "",
        "nobody-here@example.test",
        b"Subject: x\n\nx\n",
    );
    assert!(err.is_err_and(|e| e.contains("RCPT TO")));

    // restart: same ports, same mail; old connections are cut
    let ports = (dc.imap_port, dc.imaps_port, dc.sieve_port, dc.lmtp_port);
    let old_pid = dc.pid;
    let t = Instant::now();
    dc.restart();
    let t_restart = t.elapsed();
    assert_ne!(dc.pid, old_pid);
    assert_eq!(
        ports,
        (dc.imap_port, dc.imaps_port, dc.sieve_port, dc.lmtp_port)
    );
    assert!(
        imap.command("NOOP").is_err(),
        "the old connection survived the restart"
    );
    let mut imap = dc.imap("alice");
    assert_eq!(imap.status("Bulk"), (N as u32, uidvalidity, uidnext));
    assert_eq!(imap.status("INBOX").0, 1);
    let ids = imap.fetch_message_ids("Bulk");
    assert_eq!(ids.len(), N);
    assert_eq!(ids[N - 1].1.as_deref(), Some(id(N - 1).as_str()));
    assert!(imap
        .flags("Bulk", uids[41])
        .iter()
        .any(|f| f == "$Backscatter"));
    lmtp_deliver(
        dc.lmtp_port,
        "bob@example.test",
        "bob",
        b"Subject: hi\r\n\r\nhello\r\n",
    )
    .unwrap();
    let mut bob = dc.imap("bob");
    assert_eq!(bob.select("INBOX"), 1);
    bob.logout();
    assert!(Imap::try_connect(dc.imap_port, "alice", "wrong").is_err());
    imap.logout();

    let dir = dc.dir.clone();
    let t = Instant::now();
    dc.stop();
    let t_stop = t.elapsed();
    assert!(!dir.exists(), "{} still there", dir.display());
    dc.stop(); // idempotent

    // the other storage format, briefly
    let t = Instant::now();
    let md = Dovecot::start_with(Options {
        mail_format: MailFormat::Maildir,
        ..Options::default()
    });
    let mut carol = md.imap("carol");
    let few: Vec<Vec<u8>> = messages[..200].to_vec();
    assert_eq!(carol.append_many("INBOX", &few).len(), 200);
    assert_eq!(carol.select("INBOX"), 200);
    carol.logout();
    let files = std::fs::read_dir(md.mail_dir("carol").join("cur"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        files,
        200,
        "maildir files in {}",
        md.mail_dir("carol").display()
    );
    let md_dir = md.dir.clone();
    drop(md);
    assert!(!md_dir.exists());
    let t_maildir = t.elapsed();

    println!(
        "dovecot harness ({}): start {:?} (start.sh {:?}), append {N} {:?}, \
         fetch {N} Message-IDs {:?}, LMTP delivery {:?}, restart {:?}, stop {:?}; \
         maildir start + append 200 + stop {:?}",
        dc.mail_format.name(),
        t_start,
        t_start_sh,
        t_append,
        t_fetch_ids,
        t_lmtp,
        t_restart,
        t_stop,
        t_maildir
    );
}
