//! A flood with a realistic Sent folder, through every path the product
//! offers: `clean`, `watch`, and the installed Sieve script under LMTP
//! delivery, each on its own user of one real Dovecot.
//!
//! The mailbox: every real message of the golden corpora (known
//! classification differences left out: they are recognition issues, not
//! provenance), each with a fresh outer Message-ID. Truth comes from the
//! corpus labels: of the distinct original Message-IDs the labels name,
//! every second one was "sent" (it is in Sent with its recipients, subject
//! and date, as the user's client saved it); responses to those are
//! legitimate, every other automated response is forged. Sent also holds
//! ordinary mail to the very recipients of the forged originals, on other
//! days and about other things: the recipient overlap that made the agent
//! keep a third of a flood. That mail is spread over the 30 days before
//! each forged original: a forged response that names no original
//! Message-ID and fails to someone the user wrote to that week is kept by
//! design (nothing tells it from the user's own), and counts against the
//! recall on all forged responses.
//!
//! Required of each path: recall ≥ 0.99 on forged responses that carry an
//! original Message-ID, ≥ 0.95 on all forged responses, and no legitimate
//! response or ordinary message moved.

use crate::flood::with_message_id;
use crate::harness::{lmtp_deliver, password, Dovecot};
use crate::sweep::{tempdir, where_is};
use crate::util::{cases, corpora, rel};
use backscatter::{classify, Context, SentIndex};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Truth {
    Forged,
    Legitimate,
    Ordinary,
}

/// One message of the mailbox: (outer Message-ID, truth, labelled
/// original Message-ID, bytes).
type Msg = (String, Truth, Option<String>, Vec<u8>);

struct Scenario {
    inbox: Vec<Msg>,
    sent: Vec<Vec<u8>>,
}

fn sent_message(id: &str, to: &[String], subject: &str, date: Option<i64>) -> Vec<u8> {
    let date = date
        .and_then(|t| Option::from(mail_parser::DateTime::from_timestamp(t)))
        .map(|d: mail_parser::DateTime| d.to_rfc822())
        .unwrap_or_else(|| "Mon, 2 Nov 2026 10:00:00 +0000".into());
    format!(
        "From: Alice <alice@example.test>\r\nTo: {}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: {id}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello.\r\n",
        to.join(", "),
        subject.replace(['\r', '\n'], " ")
    )
    .into_bytes()
}

fn scenario() -> Scenario {
    let known: BTreeSet<String> =
        std::fs::read_to_string(crate::util::root().join("tests/corpus/known-differences.tsv"))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').next().map(str::to_string))
            .collect();
    let none = SentIndex::new();
    let empty = Context {
        sent: &none,
        own_addresses: &[],
    };
    let all: Vec<_> = corpora()
        .iter()
        .flat_map(|d| cases(d))
        .filter(|c| !known.contains(&rel(&c.eml)))
        .collect();
    // Half of them, the IDs one message carries together on one side.
    let sent_ids: BTreeSet<String> = crate::util::sent_half(
        &all.iter()
            .filter(|c| c.expected.verdict == "backscatter")
            .filter(|c| c.expected.original_message_id.is_some())
            .collect::<Vec<_>>(),
    );
    let mut inbox = Vec::new();
    let mut sent = Vec::new();
    let mut sent_done: BTreeSet<String> = BTreeSet::new();
    let mut wrote_to: BTreeSet<String> = BTreeSet::new();
    // Forged twins of a sent original are left out (see
    // util::twin_of_a_sent_original).
    let sent_originals: Vec<backscatter::Original> = all
        .iter()
        .filter(|c| {
            c.expected.verdict == "backscatter"
                && c.expected
                    .original_message_id
                    .as_ref()
                    .is_some_and(|i| sent_ids.contains(&i.to_lowercase()))
        })
        .map(|c| classify(&std::fs::read(&c.eml).unwrap(), &empty).original)
        .collect();
    let twin =
        |o: &backscatter::Original| crate::util::twin_of_a_sent_original(o, sent_originals.iter());
    let mut twins = 0;
    for (i, c) in all.iter().enumerate() {
        let raw = std::fs::read(&c.eml).unwrap();
        let id = c
            .expected
            .original_message_id
            .clone()
            .map(|i| i.to_lowercase());
        let truth = match (c.expected.verdict.as_str(), &id) {
            ("backscatter", Some(id)) if sent_ids.contains(id) => Truth::Legitimate,
            ("backscatter", _) => Truth::Forged,
            _ => Truth::Ordinary,
        };
        let o = classify(&raw, &empty).original;
        if truth == Truth::Forged && twin(&o) {
            twins += 1;
            continue;
        }
        let date = o
            .date
            .as_deref()
            .and_then(mail_parser::DateTime::parse_rfc3339)
            .map(|d| d.to_timestamp());
        match (truth, &id) {
            (Truth::Legitimate, Some(id)) if sent_done.insert(id.clone()) => {
                // As the user's client saved it; without extracted
                // recipients, the label's original still went somewhere.
                let to = if o.recipients.is_empty() {
                    vec!["someone@example.net".to_string()]
                } else {
                    o.recipients.clone()
                };
                sent.push(sent_message(
                    id,
                    &to,
                    o.subject.as_deref().unwrap_or("Hello"),
                    date,
                ));
            }
            (Truth::Forged, _) => {
                // Ordinary mail to the same people, on one of the 30 days
                // before (the agent indexes 30 days of Sent by default).
                let fresh: Vec<String> = o
                    .recipients
                    .iter()
                    .filter(|r| wrote_to.insert(r.to_string()))
                    .cloned()
                    .collect();
                if !fresh.is_empty() {
                    sent.push(sent_message(
                        &format!("<ordinary-{i}@mail.example.test>"),
                        &fresh,
                        &format!("Lunch next week? ({i})"),
                        date.map(|d| d - (1 + (i as i64 % 30)) * 86_400),
                    ));
                }
            }
            _ => {}
        }
        let outer = format!("<realistic-{i}@test.invalid>");
        inbox.push((
            outer.clone(),
            truth,
            id.clone(),
            with_message_id(&raw, &outer),
        ));
    }
    eprintln!("realistic flood: {twins} forged twins of sent originals left out");
    Scenario { inbox, sent }
}

/// Recall and mistakes of one path, from where each message ended up.
struct Score {
    forged_id: (usize, usize),
    forged: (usize, usize),
    legit_moved: Vec<String>,
    ordinary_moved: Vec<String>,
    legit: usize,
    ordinary: usize,
}

impl Score {
    fn of<'a>(msgs: impl Iterator<Item = &'a Msg>, quarantined: &dyn Fn(&str) -> bool) -> Score {
        let mut s = Score {
            forged_id: (0, 0),
            forged: (0, 0),
            legit_moved: Vec::new(),
            ordinary_moved: Vec::new(),
            legit: 0,
            ordinary: 0,
        };
        for (outer, truth, has_id, _) in msgs {
            let q = quarantined(outer);
            match truth {
                Truth::Forged => {
                    s.forged.1 += 1;
                    s.forged.0 += usize::from(q);
                    if has_id.is_some() {
                        s.forged_id.1 += 1;
                        s.forged_id.0 += usize::from(q);
                    }
                }
                Truth::Legitimate => {
                    s.legit += 1;
                    if q {
                        s.legit_moved.push(outer.clone());
                    }
                }
                Truth::Ordinary => {
                    s.ordinary += 1;
                    if q {
                        s.ordinary_moved.push(outer.clone());
                    }
                }
            }
        }
        s
    }

    fn recall(x: (usize, usize)) -> f64 {
        x.0 as f64 / x.1.max(1) as f64
    }

    fn line(&self, path: &str) -> String {
        format!(
            "{path}: forged with an original ID {}/{} quarantined (recall {:.3}), all forged {}/{} ({:.3}); legitimate moved {}/{}, ordinary moved {}/{}",
            self.forged_id.0,
            self.forged_id.1,
            Self::recall(self.forged_id),
            self.forged.0,
            self.forged.1,
            Self::recall(self.forged),
            self.legit_moved.len(),
            self.legit,
            self.ordinary_moved.len(),
            self.ordinary
        )
    }

    fn assert_meets(&self, path: &str) {
        let line = self.line(path);
        eprintln!("{line}");
        assert!(
            self.forged_id.1 > 50 && self.legit > 50,
            "too few cases: {line}"
        );
        assert!(Self::recall(self.forged_id) >= 0.99, "{line}");
        assert!(Self::recall(self.forged) >= 0.95, "{line}");
        assert!(
            self.legit_moved.is_empty() && self.ordinary_moved.is_empty(),
            "{line}: legitimate {:?}, ordinary {:?}",
            self.legit_moved,
            self.ordinary_moved
        );
    }
}

fn config(dir: &std::path::Path, dc: &Dovecot, user: &str) -> std::path::PathBuf {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.{user}]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"{user}\"\naddresses = [\"alice@example.test\"]\npassword.env = \"PW\"\n[accounts.{user}.sieve]\nport = {}\n",
            dc.imap_port, dc.sieve_port
        ),
    )
    .unwrap();
    cfg
}

fn in_quarantine(dc: &Dovecot, user: &str) -> HashMap<String, bool> {
    where_is(dc, user)
        .into_iter()
        .map(|(id, places)| (id, places.iter().any(|p| p == "Backscatter")))
        .collect()
}

#[test]
fn clean_watch_and_sieve_with_a_realistic_sent_folder() {
    let Some(dc) = Dovecot::start_or_skip("clean_watch_and_sieve_with_a_realistic_sent_folder")
    else {
        return;
    };
    let sc = scenario();
    let counts = sc.inbox.iter().fold(BTreeMap::new(), |mut m, x| {
        *m.entry(x.1).or_insert(0usize) += 1;
        m
    });
    eprintln!(
        "realistic flood: {} messages {counts:?}, Sent holds {}",
        sc.inbox.len(),
        sc.sent.len()
    );
    let messages: Vec<Vec<u8>> = sc.inbox.iter().map(|x| x.3.clone()).collect();

    // clean (alice)
    let dir = tempdir("realistic-clean");
    let cfg = config(&dir, &dc, "alice");
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &sc.sent);
    imap.append_many("INBOX", &messages);
    let o = crate::util::backscatter(&dir, &cfg, &["clean", "--json"])
        .env("PW", password("alice"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let placed = in_quarantine(&dc, "alice");
    Score::of(sc.inbox.iter(), &|id| placed[id]).assert_meets("clean");

    // watch (bob): a burst of every fourth message while the agent runs.
    let dir = tempdir("realistic-watch");
    let cfg = config(&dir, &dc, "bob");
    let mut imap = dc.imap("bob");
    imap.append_many("Sent", &sc.sent);
    let mut child = crate::util::backscatter(&dir, &cfg, &["watch"])
        .env("PW", password("bob"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Let it connect and index Sent before the burst.
    let start = Instant::now();
    while !dir.join("state").exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let burst: Vec<&Msg> = sc.inbox.iter().step_by(4).collect();
    for m in &burst {
        imap.append("INBOX", &m.3);
    }
    // Wait until the quarantine stops growing (the agent is done).
    let mut last = usize::MAX;
    let mut stable_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let q = in_quarantine(&dc, "bob").values().filter(|q| **q).count();
        if q != last {
            last = q;
            stable_since = Instant::now();
        } else if stable_since.elapsed() > Duration::from_secs(8) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    unsafe_sigterm(&mut child);
    let placed = in_quarantine(&dc, "bob");
    Score::of(burst.iter().copied(), &|id| {
        placed.get(id).copied().unwrap_or(false)
    })
    .assert_meets("watch");

    // The installed Sieve script under LMTP delivery (carol).
    let dir = tempdir("realistic-sieve");
    let cfg = config(&dir, &dc, "carol");
    let mut imap = dc.imap("carol");
    imap.append_many("Sent", &sc.sent);
    let o = crate::util::backscatter(&dir, &cfg, &["sieve", "install"])
        .env("PW", password("carol"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for m in &sc.inbox {
        let from = crate::sieve::envelope_from(&m.3);
        lmtp_deliver(dc.lmtp_port, &from, "carol", &m.3).unwrap();
    }
    let placed = in_quarantine(&dc, "carol");
    let sieve = Score::of(sc.inbox.iter(), &|id| {
        placed.get(id).copied().unwrap_or(false)
    });
    eprintln!("{}", sieve.line("sieve"));
    // What Sieve cannot reach (README, "What Sieve cannot express") keeps
    // its recall below the agent's. Of the user's own bounces it may file
    // only those whose original Message-ID is not in the message as
    // `<id>` (base64 or quoted-printable encoded, or written without angle
    // brackets): a `:contains` test cannot find it. Ordinary mail, never.
    let by_outer: HashMap<&str, &Msg> = sc.inbox.iter().map(|m| (m.0.as_str(), m)).collect();
    let (hidden, visible): (Vec<&String>, Vec<&String>) =
        sieve.legit_moved.iter().partition(|outer| {
            let m = by_outer[outer.as_str()];
            let id = m.2.clone().unwrap_or_default().to_lowercase();
            !String::from_utf8_lossy(&m.3).to_lowercase().contains(&id)
        });
    eprintln!(
        "sieve: {} of the user's own bounces filed because their original ID is encoded or bare: {hidden:?}",
        hidden.len()
    );
    assert!(
        visible.is_empty() && sieve.ordinary_moved.is_empty(),
        "{}: legitimate {visible:?}, ordinary {:?}",
        sieve.line("sieve"),
        sieve.ordinary_moved
    );
}

fn unsafe_sigterm(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}
