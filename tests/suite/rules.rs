//! The user's own rules (`src/rules.rs`) against Pigeonhole: published Sieve
//! scripts (tests/fixtures/sieve-scripts/, sources in its README) run over
//! the golden corpus through Pigeonhole's `sieve-test` and through the
//! agent's engine give the same actions for every message, but for the one
//! documented difference (an empty envelope sender, which `sieve-test`
//! cannot simulate). Published scripts that send mail or discard are
//! refused by `sieve check` with their line.

use crate::util::{backscatter, env_num, rel, root};
use backscatter::rules::{Action, Envelope, Rules};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn scripts_dir() -> PathBuf {
    root().join("tests/fixtures/sieve-scripts")
}

fn sieve_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sieve"))
        .collect();
    v.sort();
    v
}

/// A message's actions as a set of (mailbox, sorted lowercase flags):
/// order does not matter to where mail lands.
type Landing = BTreeSet<(String, String)>;

fn flags_key<S: AsRef<str>>(flags: &[S]) -> String {
    let mut f: Vec<String> = flags.iter().map(|s| s.as_ref().to_lowercase()).collect();
    f.sort();
    f.join(" ")
}

fn ours(rules: &Rules, raw: &[u8]) -> (Landing, Envelope) {
    let env = Envelope::of(raw);
    let o = rules.run(raw, &env, None, "INBOX", &|_| false);
    assert!(o.error.is_none(), "{:?}", o.error);
    let set = o
        .actions
        .iter()
        .map(|a| match a {
            Action::Keep { flags } => ("INBOX".to_string(), flags_key(flags)),
            Action::Fileinto { mailbox, flags, .. } => (mailbox.clone(), flags_key(flags)),
        })
        .collect();
    (set, env)
}

pub fn is_root() -> bool {
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    })
}

/// Pigeonhole's actions for one message, from `sieve-test`'s report. The
/// envelope is the one the agent takes from the message; an empty or
/// domain-less sender cannot be given to `sieve-test` (`-f` refuses both),
/// which then falls back to the message's own headers.
fn pigeonhole(script: &Path, eml: &Path, env: &Envelope) -> Landing {
    let run = |with_from: bool| {
        let mut c = Command::new("sieve-test");
        if is_root() {
            c.args(["-o", "mail_uid=nobody", "-o", "mail_gid=nogroup"]);
        }
        if with_from {
            if let Some(f) = env.from.as_deref().filter(|f| f.contains('@')) {
                c.args(["-f", f]);
            }
        }
        if let Some(t) = &env.to {
            c.args(["-r", t]);
        }
        c.arg(script).arg(eml);
        c.output().expect("run sieve-test")
    };
    let mut out = run(true);
    if out.status.code() == Some(89) && String::from_utf8_lossy(&out.stderr).contains("Invalid -f")
    {
        out = run(false);
    }
    assert!(
        out.status.success(),
        "sieve-test {} {}: {}",
        script.display(),
        eml.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut set = Landing::new();
    let mut last: Option<(String, String)> = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let l = line.trim();
        if let Some(f) = l.strip_prefix("* store message in folder: ") {
            let entry = (f.to_string(), String::new());
            set.insert(entry.clone());
            last = Some(entry);
        } else if let Some(flags) = l.strip_prefix("+ add IMAP flags: ") {
            let prev = last.take().expect("flags after a store");
            set.remove(&prev);
            let flags: Vec<&str> = flags.split_whitespace().collect();
            let entry = (prev.0, flags_key(&flags));
            set.insert(entry.clone());
            last = Some(entry);
        } else if l.starts_with("* ") {
            set.insert(("other action".into(), l.to_string()));
        }
    }
    set
}

/// Does the script test the envelope sender at all?
fn tests_envelope_from(text: &str) -> bool {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .any(|l| l.contains("envelope") && l.contains("\"from\""))
}

#[test]
fn published_scripts_act_as_pigeonhole_over_the_corpus() {
    if Command::new("sieve-test").arg("-h").output().is_err() {
        panic!("sieve-test is missing: scripts/test installs dovecot-sieve");
    }
    // Every STEP-th message (default 4; BACKSCATTER_PARITY_STEP=1 for all),
    // and for each script every message the agent's engine acts on (so a
    // script that files a handful of the 629 is compared on those):
    // sieve-test takes ~70 ms a message.
    let step: usize = env_num("BACKSCATTER_PARITY_STEP", 4).max(1);
    let all: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/corpus/sisimai/bsd"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        v.sort();
        v
    };
    let bare: Landing = [("INBOX".to_string(), String::new())].into();
    // sieve-test writes the compiled binary beside the script, as the mail
    // user: a private copy in a directory it can write.
    let work = std::env::temp_dir().join(format!("backscatter-parity-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut report = Vec::new();
    let mut unexplained = Vec::new();
    for script in sieve_files(&scripts_dir()) {
        let text = std::fs::read_to_string(&script).unwrap();
        let rules = Rules::compile(&text, |_| Ok(None)).unwrap();
        let copy = work.join(script.file_name().unwrap());
        std::fs::write(&copy, &text).unwrap();
        let mut extra = 0;
        let corpus: Vec<PathBuf> = all
            .iter()
            .enumerate()
            .filter(|(i, eml)| {
                if i % step == 0 {
                    return true;
                }
                // At most 40 more a script (all with STEP=1).
                let acts = extra < 40 && ours(&rules, &std::fs::read(eml).unwrap()).0 != bare;
                extra += usize::from(acts);
                acts
            })
            .map(|(_, eml)| eml.clone())
            .collect();
        let results: Vec<(PathBuf, Landing, Landing, Envelope)> = std::thread::scope(|s| {
            let halves: Vec<_> = corpus
                .chunks(corpus.len().div_ceil(2))
                .map(|chunk| {
                    let (rules, copy) = (&rules, &copy);
                    s.spawn(move || {
                        chunk
                            .iter()
                            .map(|eml| {
                                let raw = std::fs::read(eml).unwrap();
                                let (o, env) = ours(rules, &raw);
                                let p = pigeonhole(copy, eml, &env);
                                (eml.clone(), o, p, env)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            halves.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let (mut same, mut empty_sender) = (0, 0);
        // Messages the script does something with (not the bare keep).
        let acted = results.iter().filter(|r| r.1 != bare).count();
        for (eml, o, p, env) in &results {
            if o == p {
                same += 1;
            } else if env.from.as_deref() == Some("") && tests_envelope_from(&text) {
                // sieve-test cannot be given the empty envelope sender.
                empty_sender += 1;
            } else {
                unexplained.push(format!(
                    "{} on {}: agent {o:?}, Pigeonhole {p:?}",
                    rel(&script),
                    rel(eml)
                ));
            }
        }
        report.push(format!(
            "{}: {} messages, {acted} acted on, {same} same, {empty_sender} differ only by the empty envelope sender",
            script.file_name().unwrap().to_string_lossy(),
            results.len()
        ));
    }
    let _ = std::fs::remove_dir_all(&work);
    eprintln!("{}", report.join("\n"));
    assert!(
        unexplained.is_empty(),
        "{} unexplained differences:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
}

#[test]
fn published_scripts_that_send_or_discard_are_refused_with_the_line() {
    let dir = std::env::temp_dir().join(format!("backscatter-refused-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("none.toml");
    for (file, line, command) in [
        ("pigeonhole-forward.sieve", 2, "redirect"),
        ("pigeonhole-spam-score.sieve", 6, "discard"),
        ("pigeonhole-vacation.sieve", 8, "vacation"),
        ("pigeonhole-spamtest.sieve", 23, "discard"),
        ("pigeonhole-virustest.sieve", 18, "discard"),
    ] {
        let path = scripts_dir().join("refused").join(file);
        let out = backscatter(&dir, &cfg, &["sieve", "check", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(
            err.contains(&format!("line {line}: \"{command}\" is refused")),
            "{file}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    for script in sieve_files(&scripts_dir()) {
        let out = backscatter(&dir, &cfg, &["sieve", "check", script.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------
// `filter` against Dovecot.

use crate::flood::flood;
use crate::harness::Dovecot;
use crate::sweep::tempdir;
use backscatter::rules::Plan;
use std::collections::{HashMap, HashSet};

/// Hand-written rules for the Dovecot tests: moves with `:create` and
/// flags, a `:copy` with its own flag, flags on kept mail.
const FILTER_RULES: &str = r#"require ["fileinto", "envelope", "imap4flags", "copy", "mailbox"];
if envelope :is "from" "" {
  addflag "\\Seen";
  fileinto :create "Bounces";
} elsif header :contains "auto-submitted" "auto-replied" {
  fileinto :copy :create :flags "$autoreply" "Auto";
} elsif header :contains "subject" "e" {
  addflag "$withe";
  fileinto :copy :create "Copies";
}
"#;

/// Message-ID -> (mailbox, lowercase flags) of each copy on the server.
type Placement = HashMap<String, Vec<(String, BTreeSet<String>)>>;

fn placement(dc: &Dovecot, user: &str, mailboxes: &[&str]) -> Placement {
    let mut imap = dc.imap(user);
    let mut out = Placement::new();
    for mb in mailboxes {
        if imap
            .command(&format!("EXAMINE {}", crate::harness::mailbox_arg(mb)))
            .is_err()
        {
            continue;
        }
        for items in imap.fetch(mb, "1:*", "UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]") {
            let flags: BTreeSet<String> = items
                .iter()
                .find(|(k, _)| k == "FLAGS")
                .and_then(|(_, v)| v.list())
                .map(|l| {
                    l.iter()
                        .filter_map(|v| v.atom())
                        .map(str::to_lowercase)
                        .filter(|f| f != "\\recent")
                        .collect()
                })
                .unwrap_or_default();
            let header = items
                .iter()
                .find(|(k, _)| k.starts_with("BODY[HEADER"))
                .and_then(|(_, v)| v.bytes())
                .unwrap_or_default();
            if let Some(id) = mail_parser::MessageParser::default()
                .parse_headers(header)
                .and_then(|h| h.message_id().map(|i| format!("<{i}>")))
            {
                out.entry(id).or_default().push((mb.to_string(), flags));
            }
        }
    }
    out
}

/// Where the rules say each message goes: (mailbox, flags) sorted.
fn expected_placement(rules: &Rules, inbox: &[Vec<u8>]) -> Placement {
    let mut out = Placement::new();
    for m in inbox {
        let id = crate::flood::id_of(m);
        let o = rules.run(m, &Envelope::of(m), None, "INBOX", &|_| false);
        let plan = Plan::of(&o);
        let lower = |f: &[String]| f.iter().map(|x| x.to_lowercase()).collect::<BTreeSet<_>>();
        let mut places: Vec<(String, BTreeSet<String>)> = plan
            .copies
            .iter()
            .map(|(mb, f)| (mb.clone(), lower(f)))
            .collect();
        places.push((
            plan.move_to.clone().unwrap_or_else(|| "INBOX".into()),
            lower(&plan.flags),
        ));
        places.sort();
        out.insert(id, places);
    }
    out
}

/// The flood's messages that carry exactly one Message-ID field, the
/// flood's own (a few corpus messages have two, or one the flood cannot
/// replace, which makes a server copy ambiguous).
fn inbox(n: usize) -> Vec<Vec<u8>> {
    flood(n).inbox.into_iter().filter(|m| inbox_ok(m)).collect()
}

fn inbox_ok(m: &[u8]) -> bool {
    let text = String::from_utf8_lossy(m).to_ascii_lowercase();
    text.lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("message-id:"))
        .count()
        == 1
        && crate::flood::id_of(m).starts_with("<flood-")
}

fn sorted(mut p: Placement) -> Placement {
    for v in p.values_mut() {
        v.sort();
    }
    p
}

fn config(base: &Path, port: u16, user: &str, rules: &Path) -> PathBuf {
    let cfg = base.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.{user}]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"plain\"\nusername = \"{user}\"\npassword.env = \"BS_TEST_PASSWORD\"\nrules = \"{}\"\n",
            rules.display()
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn filter_lands_mail_where_the_rules_say_and_restore_undoes_it() {
    let Some(dc) = Dovecot::start_or_skip("filter") else {
        return;
    };
    let f = inbox(400);
    let uids = {
        let mut imap = dc.imap("alice");
        let uids = imap.append_many("INBOX", &f);
        imap.command("SELECT INBOX").unwrap();
        // Every 5th message already has flags of its own (one the rules
        // also add): the rules' undo must leave them.
        for u in uids.iter().step_by(5) {
            imap.command(&format!("UID STORE {u} +FLAGS.SILENT (\\Seen $before)"))
                .unwrap();
        }
        uids
    };
    let had: BTreeSet<String> = ["\\seen", "$before"].map(String::from).into();
    let pre_flagged: HashSet<String> = f
        .iter()
        .zip(&uids)
        .step_by(5)
        .map(|(m, _)| crate::flood::id_of(m))
        .collect();
    let base = tempdir("filter");
    let rules_path = base.join("rules.sieve");
    std::fs::write(&rules_path, FILTER_RULES).unwrap();
    let cfg = config(&base, dc.imap_port, "alice", &rules_path);
    let rules = Rules::compile(FILTER_RULES, |_| Ok(None)).unwrap();
    let mut want = expected_placement(&rules, &f);
    // A message's own flags travel with it and into its copies.
    for id in &pre_flagged {
        for (_, flags) in want.get_mut(id).unwrap() {
            flags.extend(had.iter().cloned());
        }
    }
    let run = |args: &[&str]| {
        let out = backscatter(&base, &cfg, args)
            .env("BS_TEST_PASSWORD", "alicepw")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A dry run changes nothing and lists every message.
    let dry = run(&["filter", "--dry-run", "--json"]);
    assert_eq!(dry.lines().count(), f.len() + 1, "{dry}");
    let boxes = ["INBOX", "Bounces", "Auto", "Copies"];
    let before = placement(&dc, "alice", &boxes);
    assert_eq!(before.len(), f.len());
    assert!(
        before.values().all(|v| v.len() == 1 && v[0].0 == "INBOX"),
        "{:?}",
        before
            .iter()
            .find(|(_, v)| v.len() != 1 || v[0].0 != "INBOX")
    );

    let t = Instant::now();
    let summary = run(&["filter", "--json"]);
    eprintln!(
        "filter of {} messages: {:.1} s: {summary}",
        f.len(),
        t.elapsed().as_secs_f64()
    );
    let got = sorted(placement(&dc, "alice", &boxes));
    let mut wrong: Vec<String> = want
        .iter()
        .filter(|(id, w)| got.get(*id) != Some(w))
        .map(|(id, w)| format!("{id}: want {w:?}, got {:?}", got.get(id)))
        .collect();
    wrong.sort();
    assert!(
        wrong.is_empty(),
        "{} misplaced:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
    let moved = want
        .values()
        .filter(|v| v.iter().all(|(m, _)| m != "INBOX"))
        .count();
    let copies = want.values().filter(|v| v.len() > 1).count();
    assert!(
        moved > 50 && copies > 0,
        "the rules should move and copy ({moved}, {copies})"
    );

    // A second run does nothing twice.
    let again = run(&["filter", "--json"]);
    let v: serde_json::Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!(v["moved"], 0, "{again}");
    assert_eq!(v["copied"], 0, "{again}");
    assert_eq!(sorted(placement(&dc, "alice", &boxes)), got);

    // restore --rules: every moved message back in INBOX with the flags
    // it had before the rules (the ones it had stay); copies stay. A dry
    // run first changes nothing.
    // Messages the rules add a flag to that they did not have (their
    // final flags, or a copy's own set for the COPY).
    let flagged = f
        .iter()
        .filter(|m| {
            let before: Vec<String> = if pre_flagged.contains(&crate::flood::id_of(m)) {
                vec!["\\Seen".into(), "$before".into()]
            } else {
                Vec::new()
            };
            let o = rules.run(m, &Envelope::of(m), None, "INBOX", &|_| false);
            !Plan::of(&o).added(&before).is_empty()
        })
        .count();
    assert!(flagged > 50, "the rules should flag ({flagged})");
    let r = run(&["restore", "--rules", "--all", "--dry-run"]);
    assert!(
        r.contains(&format!("would move {moved} messages back")),
        "{r}"
    );
    assert!(
        r.contains(&format!("flags your rules added from {flagged} messages")),
        "{r}"
    );
    assert_eq!(sorted(placement(&dc, "alice", &boxes)), got);
    let r = run(&["restore", "--rules", "--all"]);
    assert!(r.contains(&format!("Moved {moved} messages back")), "{r}");
    assert!(
        r.contains(&format!(
            "took the flags your rules added from {flagged} messages"
        )),
        "{r}"
    );
    let after = placement(&dc, "alice", &boxes);
    for (id, w) in &want {
        let places = after.get(id).cloned().unwrap_or_default();
        let inbox: Vec<&BTreeSet<String>> = places
            .iter()
            .filter(|(m, _)| m == "INBOX")
            .map(|(_, fl)| fl)
            .collect();
        let before = if pre_flagged.contains(id) {
            had.clone()
        } else {
            BTreeSet::new()
        };
        assert_eq!(
            inbox,
            vec![&before],
            "{id} after restore: {places:?} (rules: {w:?})"
        );
        // Copies stay, with their own flags.
        let copies = |p: &[(String, BTreeSet<String>)]| -> Vec<(String, BTreeSet<String>)> {
            p.iter()
                .filter(|(m, _)| m == "Auto" || m == "Copies")
                .cloned()
                .collect()
        };
        assert_eq!(copies(&places), copies(w), "{id}");
    }
    // A second restore finds nothing left to undo.
    let r = run(&["restore", "--rules", "--all"]);
    assert!(
        r.contains("Moved 0 messages back") && r.contains("from 0 messages"),
        "{r}"
    );
    // The undo sticks: filter neither files nor flags the restored
    // messages again.
    let again = run(&["filter", "--json"]);
    let v: serde_json::Value = serde_json::from_str(again.trim()).unwrap();
    assert_eq!(
        (&v["moved"], &v["copied"], &v["flagged"]),
        (&0.into(), &0.into(), &0.into()),
        "{again}"
    );
    assert_eq!(sorted(placement(&dc, "alice", &boxes)), sorted(after));
    let _ = std::fs::remove_dir_all(&base);
}

/// Kill `backscatter filter` with SIGKILL at many moments, rerun after
/// each kill: every message is in exactly one place, and the last run
/// leaves each where the rules say.
#[test]
fn sigkill_mid_filter_loses_and_duplicates_nothing() {
    let Some(dc) = Dovecot::start_or_skip("sigkill_mid_filter") else {
        return;
    };
    let rules_text = "require [\"fileinto\", \"envelope\", \"mailbox\"];\nif envelope :is \"from\" \"\" { fileinto :create \"Bounces\"; }\nelsif header :contains \"subject\" \"e\" { fileinto :create \"E\"; }\n";
    let f = inbox(2000);
    dc.imap("bob").append_many("INBOX", &f);
    let base = tempdir("sigkill-filter");
    let rules_path = base.join("rules.sieve");
    std::fs::write(&rules_path, rules_text).unwrap();
    let cfg = config(&base, dc.imap_port, "bob", &rules_path);
    let rules = Rules::compile(rules_text, |_| Ok(None)).unwrap();
    let want = expected_placement(&rules, &f);
    let boxes = ["INBOX", "Bounces", "E"];
    let run = |kill_after: Option<std::time::Duration>| {
        let mut child = backscatter(&base, &cfg, &["filter", "--json"])
            .env("BS_TEST_PASSWORD", "bobpw")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(d) = kill_after {
            std::thread::sleep(d);
            let _ = child.kill(); // SIGKILL
        }
        child.wait_with_output().unwrap()
    };
    let settled = || {
        let mut last = placement(&dc, "bob", &boxes);
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let now = placement(&dc, "bob", &boxes);
            if now == last {
                break;
            }
            last = now;
        }
        last
    };
    // Each run is killed as soon as a move is seen on the server (however
    // fast or loaded the machine), so that kills land mid-run.
    let mut imap = dc.imap("bob");
    imap.create("Bounces");
    imap.create("E");
    let mut moved_now = move || imap.status("Bounces").0 + imap.status("E").0;
    let mut killed = 0;
    for round in 0..8 {
        let before = moved_now();
        let mut child = backscatter(&base, &cfg, &["filter", "--json"])
            .env("BS_TEST_PASSWORD", "bobpw")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        let finished = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st.success();
            }
            if moved_now() > before || t0.elapsed() > std::time::Duration::from_secs(120) {
                let _ = child.kill(); // SIGKILL
                let _ = child.wait();
                break false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        if !finished {
            killed += 1;
        }
        let ms = t0.elapsed().as_millis();
        let w = settled();
        for id in want.keys() {
            let n = w.get(id).map_or(0, Vec::len);
            assert_eq!(
                n, 1,
                "{id} is in {n} places after a kill at {ms} ms (run {round})"
            );
        }
        if finished {
            break;
        }
    }
    // The kills landed mid-run: some moves done before the final run.
    let moved_before = settled()
        .values()
        .filter(|v| v.iter().all(|(m, _)| m != "INBOX"))
        .count();
    let out = run(None);
    assert!(
        out.status.success(),
        "final run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{} messages; moved before the final run: {moved_before}; final run: {}",
        want.len(),
        String::from_utf8_lossy(&out.stdout).trim()
    );
    assert!(moved_before > 0, "no kill landed after a move");
    let got = sorted(placement(&dc, "bob", &boxes));
    let wrong = want
        .iter()
        .filter(|(id, w)| got.get(*id) != Some(w))
        .count();
    assert_eq!(wrong, 0, "misplaced after the final run");
    eprintln!("sigkill: {killed} filter runs killed mid-run; final state correct");
    assert!(killed >= 3, "the kills should land mid-run ({killed})");
    let entries =
        backscatter::journal::read(&base.join("data/backscatter/rules-journal-bob.jsonl")).unwrap();
    assert!(backscatter::journal::unfinished(&entries).is_empty());
    let _ = std::fs::remove_dir_all(&base);
}

/// Mailbox names as users write them (UTF-8, spaces, a check mark): the
/// rules run over a UTF-8 mailbox, move into a created UTF-8 hierarchy and
/// copy (UID COPY, which once sent the name unencoded) into another;
/// `restore --rules` brings every moved message back (modified UTF-7 on
/// the wire throughout, RFC 3501 §5.1.3).
#[test]
fn filter_files_into_utf8_mailboxes_and_restore_brings_them_back() {
    let Some(dc) = Dovecot::start_or_skip("filter_utf8") else {
        return;
    };
    let source = "Entwürfe";
    let (moved_to, copied_to) = ("Rückläufer/Größe", "Kopien ✓ 2026");
    let f = inbox(120);
    {
        let mut imap = dc.imap("alice");
        imap.create(source);
        imap.append_many(source, &f);
    }
    let base = tempdir("filter-utf8");
    let rules_path = base.join("rules.sieve");
    let text = format!(
        "require [\"fileinto\", \"copy\", \"mailbox\", \"envelope\", \"imap4flags\"];\n\
         if envelope :is \"from\" \"\" {{ fileinto :create \"{moved_to}\"; }}\n\
         else {{ fileinto :copy :create :flags \"$kopiert\" \"{copied_to}\"; }}\n"
    );
    std::fs::write(&rules_path, &text).unwrap();
    let cfg = config(&base, dc.imap_port, "alice", &rules_path);
    let bounces = f
        .iter()
        .filter(|m| Envelope::of(m).from.as_deref() == Some(""))
        .count();
    assert!(bounces > 10 && bounces < f.len(), "{bounces}");
    let run = |args: &[&str]| {
        let out = backscatter(&base, &cfg, args)
            .env("BS_TEST_PASSWORD", "alicepw")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A mailbox that is not there: one sentence naming it, exit 1.
    let o = backscatter(&base, &cfg, &["filter", "--mailbox", "Nirgendwo ✗"])
        .env("BS_TEST_PASSWORD", "alicepw")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("\"Nirgendwo ✗\""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = run(&["filter", "--mailbox", source, "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["errors"], 0, "{out}");
    let got = placement(&dc, "alice", &[source, moved_to, copied_to]);
    let count = |mb: &str| got.values().flatten().filter(|(m, _)| m == mb).count();
    assert_eq!(count(moved_to), bounces);
    assert_eq!(count(copied_to), f.len() - bounces);
    assert_eq!(count(source), f.len() - bounces);
    assert!(got
        .values()
        .flatten()
        .filter(|(m, _)| m == copied_to)
        .all(|(_, fl)| fl.contains("$kopiert")));
    let r = run(&["restore", "--rules", "--all"]);
    assert!(r.contains(&format!("Moved {bounces} messages back")), "{r}");
    let after = placement(&dc, "alice", &[source, moved_to]);
    assert_eq!(
        after
            .values()
            .flatten()
            .filter(|(m, _)| m == source)
            .count(),
        f.len()
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// What a user gets wrong, answered with one sentence and exit 2 before any
/// mail is touched: a rules file that is not there (which must not stop
/// `clean` or `restore --rules`), a published script whose `include`s are
/// missing (Pigeonhole's documentation example), a directory given as the
/// script, and `sieve test` on a folder holding no message.
#[test]
fn rules_mistakes_are_one_sentence_and_exit_2() {
    let dir = tempdir("rules-mistakes");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config.toml");
    // Port 9: nothing listens; commands that connect fail with exit 1.
    std::fs::write(
        &cfg,
        "[accounts.a]\nhost = \"127.0.0.1\"\nport = 9\ntls = \"plain\"\nusername = \"a\"\npassword.env = \"BS_TEST_PASSWORD\"\nrules = \"~/moved-away/rules.sieve\"\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = backscatter(&dir, &cfg, args)
            .env("BS_TEST_PASSWORD", "x")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            !err.contains("panicked") && !err.contains("Os {"),
            "{args:?}: {err}"
        );
        (o.status.code(), err)
    };
    let missing = dir.join("moved-away/rules.sieve");
    let (code, err) = run(&["filter", "--dry-run"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains(&format!("cannot read the rules {}", missing.display())),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // Not a config error for the commands that do not run the rules: they
    // get as far as connecting.
    for args in [
        &["clean", "--dry-run"][..],
        &["restore", "--rules", "--all"],
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(!err.contains("rules.sieve"), "{args:?}: {err}");
    }
    let include = scripts_dir().join("missing-include/pigeonhole-include.sieve");
    let (code, err) = run(&["sieve", "check", include.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("does not exist") && err.contains(".sieve beside the rules"),
        "{err}"
    );
    let (code, err) = run(&["sieve", "check", dir.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot read the rules"), "{err}");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let rules = scripts_dir().join("rfc5228-sec9.sieve");
    let (code, err) = run(&[
        "sieve",
        "test",
        rules.to_str().unwrap(),
        empty.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no message file found"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `watch` with rules: new backscatter is quarantined and never offered to
/// the rules; the rest is filed as the rules say, with the verdict visible
/// to them; `restore --rules` moves it back.
#[test]
fn watch_applies_the_rules_to_new_mail_that_is_not_backscatter() {
    let Some(dc) = Dovecot::start_or_skip("watch_rules") else {
        return;
    };
    let f = flood(900);
    let pick = |d: backscatter::Decision| -> Vec<u8> {
        f.inbox
            .iter()
            .find(|m| f.expected[&crate::flood::id_of(m)] == d && inbox_ok(m))
            .unwrap()
            .clone()
    };
    let (forged, legit, normal) = (
        pick(backscatter::Decision::Backscatter),
        pick(backscatter::Decision::Legitimate),
        pick(backscatter::Decision::Normal),
    );
    dc.imap("carol").append_many("Sent", &f.sent);
    // Hand-written rules: the verdict through `environment`.
    let text = "require [\"fileinto\", \"environment\", \"imap4flags\", \"mailbox\"];\nif environment :is \"vnd.backscatter.verdict\" \"legitimate\" {\n  fileinto :create :flags \"$ownbounce\" \"My bounces\";\n} else {\n  fileinto :create \"Ruled\";\n}\n";
    let base = tempdir("watch-rules");
    let rules_path = base.join("rules.sieve");
    std::fs::write(&rules_path, text).unwrap();
    let cfg = config(&base, dc.imap_port, "carol", &rules_path);
    let log_path = base.join("watch.log");
    let mut child = backscatter(&base, &cfg, &["watch"])
        .env("BS_TEST_PASSWORD", "carolpw")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    // Wait until the agent has made its place (the quarantine exists).
    let boxes = ["INBOX", "Backscatter", "My bounces", "Ruled"];
    let wait = |what: &str, f: &mut dyn FnMut() -> bool| {
        let t = Instant::now();
        while t.elapsed() < std::time::Duration::from_secs(30) {
            if f() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}; placement {:?}; log:\n{}",
            placement(&dc, "carol", &boxes),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
    };
    wait("the agent to connect", &mut || {
        dc.imap("carol").command("EXAMINE Backscatter").is_ok()
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut imap = dc.imap("carol");
    for m in [&forged, &legit, &normal] {
        imap.append("INBOX", m);
    }
    let (fid, lid, nid) = (
        crate::flood::id_of(&forged),
        crate::flood::id_of(&legit),
        crate::flood::id_of(&normal),
    );
    let at = |p: &Placement, id: &str| p.get(id).cloned().unwrap_or_default();
    wait("quarantine and rules to act", &mut || {
        let p = placement(&dc, "carol", &boxes);
        at(&p, &fid)
            .iter()
            .map(|x| x.0.as_str())
            .eq(["Backscatter"])
            && at(&p, &lid).iter().map(|x| x.0.as_str()).eq(["My bounces"])
            && at(&p, &nid).iter().map(|x| x.0.as_str()).eq(["Ruled"])
    });
    let p = placement(&dc, "carol", &boxes);
    assert!(
        at(&p, &lid)[0].1.contains("$ownbounce"),
        "{:?}",
        at(&p, &lid)
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "watch exit {status:?}");
    let out = backscatter(&base, &cfg, &["restore", "--rules", "--all"])
        .env("BS_TEST_PASSWORD", "carolpw")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = placement(&dc, "carol", &boxes);
    assert!(at(&p, &lid).iter().map(|x| x.0.as_str()).eq(["INBOX"]));
    assert!(at(&p, &nid).iter().map(|x| x.0.as_str()).eq(["INBOX"]));
    assert!(at(&p, &fid)
        .iter()
        .map(|x| x.0.as_str())
        .eq(["Backscatter"]));
    let _ = std::fs::remove_dir_all(&base);
}

/// `sieve install --rules`: the same rules file runs on the server after
/// the backscatter policy (delivered over LMTP to a real Pigeonhole).
#[test]
fn sieve_install_rules_runs_the_same_file_on_the_server() {
    use crate::harness::lmtp_deliver;
    let Some(dc) = Dovecot::start_or_skip("sieve_install_rules") else {
        return;
    };
    let f = flood(900);
    let pick = |d: backscatter::Decision| -> Vec<u8> {
        f.inbox
            .iter()
            .find(|m| f.expected[&crate::flood::id_of(m)] == d && inbox_ok(m))
            .unwrap()
            .clone()
    };
    // A plain bounce of mail never sent (empty envelope sender), which the
    // server-side policy judges as the agent does.
    let forged = f
        .inbox
        .iter()
        .find(|m| {
            let v = backscatter::classify(
                m,
                &backscatter::Context {
                    sent: &backscatter::SentIndex::new(),
                    own_addresses: &[],
                },
            );
            f.expected[&crate::flood::id_of(m)] == backscatter::Decision::Backscatter
                && v.kind == Some(backscatter::Kind::Bounce)
                && Envelope::of(m).from.as_deref() == Some("")
                && inbox_ok(m)
        })
        .unwrap()
        .clone();
    let normal = pick(backscatter::Decision::Normal);
    let mut imap = dc.imap("alice");
    imap.append_many("Sent", &f.sent);
    imap.create("Backscatter");
    // Hand-written rules: everything that reaches them is filed and flagged.
    let text = "require [\"fileinto\", \"imap4flags\", \"mailbox\"];\naddflag \"$ruled\";\nfileinto :create \"Ruled\";\n";
    let base = tempdir("install-rules");
    let rules_path = base.join("rules.sieve");
    std::fs::write(&rules_path, text).unwrap();
    let cfg = base.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[accounts.alice]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\nusername = \"alice\"\npassword.env = \"BS_TEST_PASSWORD\"\nrules = \"{}\"\n[accounts.alice.sieve]\nport = {}\n",
            dc.imap_port,
            rules_path.display(),
            dc.sieve_port
        ),
    )
    .unwrap();
    let out = backscatter(&base, &cfg, &["sieve", "install", "--rules"])
        .env("BS_TEST_PASSWORD", "alicepw")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("then your rules"), "{said}");
    for m in [&forged, &normal] {
        let from = if Envelope::of(m).from.as_deref() == Some("") {
            String::new()
        } else {
            "someone@example.net".to_string()
        };
        lmtp_deliver(dc.lmtp_port, &from, "alice@example.test", m).unwrap();
    }
    let boxes = ["INBOX", "Backscatter", "Ruled"];
    let p = placement(&dc, "alice", &boxes);
    let at = |id: &str| p.get(id).cloned().unwrap_or_default();
    let n = at(&crate::flood::id_of(&normal));
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].0, "Ruled");
    assert!(n[0].1.contains("$ruled"), "{n:?}");
    let fo = at(&crate::flood::id_of(&forged));
    assert!(
        fo.iter().map(|x| x.0.as_str()).eq(["Backscatter"]),
        "{fo:?}"
    );
    // A script the agent refuses is not installed.
    std::fs::write(&rules_path, "discard;\n").unwrap();
    let out = backscatter(&base, &cfg, &["sieve", "install", "--rules"])
        .env("BS_TEST_PASSWORD", "alicepw")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1: \"discard\" is refused"));
    let _ = std::fs::remove_dir_all(&base);
}

/// `filter --dry-run` predicts the run: its summary (JSON, and the
/// sentence) has the numbers the run then prints, for rules that move,
/// copy, flag, leave alone and fail (a `fileinto` of a missing mailbox
/// without `:create`). It used to print 0 moved, 0 copies, 0 flagged.
#[test]
fn filter_dry_run_counts_what_the_run_does() {
    let Some(dc) = Dovecot::start_or_skip("filter_dry_run") else {
        return;
    };
    let f = inbox(150);
    dc.imap("alice").append_many("INBOX", &f);
    // Hand-written rules.
    let text = r#"require ["fileinto", "envelope", "imap4flags", "copy", "mailbox"];
if header :contains "subject" "Delivery" {
  fileinto "Nowhere";
} elsif envelope :is "from" "" {
  addflag "\\Seen";
  fileinto :create "Bounces";
} elsif header :contains "auto-submitted" "auto-replied" {
  fileinto :copy :create :flags "$autoreply" "Auto";
} elsif header :contains "subject" "e" {
  addflag "$withe";
  fileinto :copy :create "Copies";
}
"#;
    let base = tempdir("filter-dry-run");
    let rules_path = base.join("rules.sieve");
    std::fs::write(&rules_path, text).unwrap();
    let cfg = config(&base, dc.imap_port, "alice", &rules_path);
    let run = |args: &[&str]| {
        let out = backscatter(&base, &cfg, args)
            .env("BS_TEST_PASSWORD", "alicepw")
            .output()
            .unwrap();
        // The rules fail for the messages filed into "Nowhere" (no
        // :create), so both runs exit 1 and say so, dry or not.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(1) && stderr.contains("the rules failed for"),
            "{args:?}: {stderr}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let last = |out: &str| -> serde_json::Value {
        serde_json::from_str(out.lines().last().unwrap()).unwrap()
    };
    let dry = last(&run(&["filter", "--dry-run", "--json"]));
    let said = run(&["filter", "--dry-run"]);
    let done = last(&run(&["filter", "--json"]));
    for k in ["scanned", "moved", "copied", "flagged", "kept", "errors"] {
        assert_eq!(dry[k], done[k], "{k}: dry run {dry}, run {done}");
    }
    for k in ["moved", "copied", "flagged", "kept", "errors"] {
        assert!(
            done[k].as_u64().unwrap() > 0,
            "the rules should exercise {k}: {done}"
        );
    }
    let sentence = format!(
        "{} would move, {} copies would be made, {} would be flagged, {} would stay, {} with errors",
        done["moved"], done["copied"], done["flagged"], done["kept"], done["errors"]
    );
    assert!(said.contains(&sentence), "{sentence:?} not in:\n{said}");
    // The run did what it counted.
    let mut imap = dc.imap("alice");
    assert_eq!(
        u64::from(imap.select("Bounces")),
        done["moved"].as_u64().unwrap()
    );
    assert_eq!(
        u64::from(imap.select("INBOX")),
        done["kept"].as_u64().unwrap()
    );
    let _ = std::fs::remove_dir_all(&base);
}

/// Replace a file as an editor does (a new file renamed over it), so
/// that the agent never reads half of it.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// `watch` with a rules file that does not compile keeps protecting the
/// account: the backscatter policy runs, the error is said once with the
/// file and the line, and the rules are not run; once the file is fixed,
/// and again after it is edited, the rules as the file now says run on
/// the next new message, without a restart. (The agent used to stop the
/// account at the first syntax error, and never read edited rules.)
#[test]
fn watch_survives_broken_rules_and_picks_up_edits_without_a_restart() {
    let Some(dc) = Dovecot::start_or_skip("watch_rules_edit") else {
        return;
    };
    let f = flood(900);
    let pick = |d: backscatter::Decision, n: usize| -> Vec<Vec<u8>> {
        f.inbox
            .iter()
            .filter(|m| f.expected[&crate::flood::id_of(m)] == d && inbox_ok(m))
            .take(n)
            .cloned()
            .collect()
    };
    let forged = pick(backscatter::Decision::Backscatter, 2);
    let normal = pick(backscatter::Decision::Normal, 3);
    let base = tempdir("watch-rules-edit");
    let rules_path = base.join("rules.sieve");
    // Hand-written rules; line 3 lacks its semicolon.
    save(
        &rules_path,
        "require [\"fileinto\", \"mailbox\"];\nif true {\n  fileinto :create \"Ruled\"\n}\n",
    );
    let cfg = config(&base, dc.imap_port, "carol", &rules_path);
    let log_path = base.join("watch.log");
    let mut child = backscatter(&base, &cfg, &["watch"])
        .env("BS_TEST_PASSWORD", "carolpw")
        .env("BACKSCATTER_IDLE_CHECK", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let boxes = ["INBOX", "Backscatter", "Ruled", "Edited"];
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let wait = |what: &str, f: &mut dyn FnMut() -> bool| {
        let t = Instant::now();
        while t.elapsed() < std::time::Duration::from_secs(60) {
            if f() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "timed out waiting for {what}; placement {:?}; log:\n{}",
            placement(&dc, "carol", &boxes),
            log()
        );
    };
    let broken = "do not run until the file is fixed";
    wait("the error about the rules", &mut || log().contains(broken));
    let said = log();
    let line = said.lines().find(|l| l.contains(broken)).unwrap();
    assert!(
        line.contains(&rules_path.display().to_string()) && line.contains("line 4"),
        "{line}"
    );
    wait("the agent to connect", &mut || {
        dc.imap("carol").command("EXAMINE Backscatter").is_ok()
    });
    let mut imap = dc.imap("carol");
    let at = |id: &str| -> Vec<String> {
        placement(&dc, "carol", &boxes)
            .get(id)
            .map(|v| v.iter().map(|x| x.0.clone()).collect())
            .unwrap_or_default()
    };
    let id = crate::flood::id_of;
    // Broken rules: the policy still quarantines; the rest stays put.
    imap.append("INBOX", &forged[0]);
    imap.append("INBOX", &normal[0]);
    wait("the forged response to be quarantined", &mut || {
        at(&id(&forged[0])) == ["Backscatter"]
    });
    wait("the normal message to be judged", &mut || {
        log().contains("keep normal")
    });
    assert_eq!(at(&id(&normal[0])), ["INBOX"]);
    assert!(
        child.try_wait().unwrap().is_none(),
        "watch stopped:\n{}",
        log()
    );
    // Fixed: the rules run on the next message, without a restart.
    save(
        &rules_path,
        "require [\"fileinto\", \"mailbox\"];\nfileinto :create \"Ruled\";\n",
    );
    imap.append("INBOX", &normal[1]);
    wait("the fixed rules to file", &mut || {
        at(&id(&normal[1])) == ["Ruled"]
    });
    // Edited: the new rules run; backscatter still goes to quarantine.
    save(
        &rules_path,
        "require [\"fileinto\", \"mailbox\"];\nfileinto :create \"Edited\";\n",
    );
    imap.append("INBOX", &normal[2]);
    imap.append("INBOX", &forged[1]);
    wait("the edited rules to file", &mut || {
        at(&id(&normal[2])) == ["Edited"]
    });
    wait("the second forged response to be quarantined", &mut || {
        at(&id(&forged[1])) == ["Backscatter"]
    });
    assert_eq!(at(&id(&normal[0])), ["INBOX"], "filed after the fact");
    let said = log();
    assert_eq!(
        said.matches(broken).count(),
        1,
        "said more than once:\n{said}"
    );
    assert!(
        said.contains("changed; the new rules run from now on"),
        "{said}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "watch exit {status:?}:\n{said}");
    let _ = std::fs::remove_dir_all(&base);
}

/// Newcomer round 3, fault 13: `\Deleted` built at run time (a variable,
/// `${hex:..}`, a match group from a header) passes any static check.
/// `filter` drops it (every message is left without `\Deleted`, the other
/// flags set, a warning on stderr); `sieve check` warns with the line; and
/// `sieve install --rules` refuses the file (exit 2), since Pigeonhole
/// would store the flag. Hand-written scripts.
#[test]
fn a_deleted_flag_computed_at_run_time_is_never_stored() {
    let Some(dc) = Dovecot::start_or_skip("rules_computed_deleted") else {
        return;
    };
    let f = inbox(30);
    let n = f.len();
    dc.imap("alice").append_many("INBOX", &f);
    let base = tempdir("computed-deleted");
    let rules_path = base.join("rules.sieve");
    std::fs::write(
        &rules_path,
        "require [\"imap4flags\", \"variables\", \"encoded-character\"];\n\
         set \"f\" \"\\\\Deleted\";\n\
         addflag \"${f}\";\n\
         if header :matches \"Message-ID\" \"*\" { addflag \"\\\\Del${hex:65}ted $computed\"; }\n",
    )
    .unwrap();
    let cfg = std::fs::read_to_string(config(&base, dc.imap_port, "alice", &rules_path)).unwrap();
    let cfg_path = base.join("config.toml");
    std::fs::write(
        &cfg_path,
        format!("{cfg}[accounts.alice.sieve]\nport = {}\n", dc.sieve_port),
    )
    .unwrap();
    let run = |args: &[&str]| {
        backscatter(&base, &cfg_path, args)
            .env("BS_TEST_PASSWORD", "alicepw")
            .output()
            .unwrap()
    };
    let check = run(&["sieve", "check", rules_path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&check.stderr);
    assert!(
        err.contains("line 3: addflag takes a flag computed"),
        "{err}"
    );

    let dry = run(&["filter", "--dry-run"]);
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(!out.contains("\\Deleted"), "{out}");

    let o = run(&["filter", "--json"]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{out}{err}");
    assert!(err.contains("it was dropped"), "{err}");
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["dropped_deleted"], n, "{out}");
    let mut imap = dc.imap("alice");
    imap.select("INBOX");
    let count = |imap: &mut backscatter_testkit::imap_client::Imap, q: &str| {
        imap.command(&format!("UID SEARCH {q}"))
            .unwrap()
            .untagged
            .iter()
            .filter(|r| r.kind == "SEARCH")
            .map(|r| r.text().split_whitespace().count())
            .sum::<usize>()
    };
    assert_eq!(count(&mut imap, "DELETED"), 0);
    assert_eq!(count(&mut imap, "KEYWORD $computed"), n);

    let o = run(&["sieve", "install", "--rules"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("line 3: addflag takes a flag computed when the script runs"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// `filter --since DAY` west of UTC (TZ=America/Los_Angeles on the child
/// process): DAY starts at local midnight (08:00 UTC in January), and the
/// rules run over what arrived from then on (INTERNALDATE), not over the
/// evening before, which the server's `SEARCH SINCE` (asked a day early,
/// as the server compares dates in its own zone) also returns.
#[test]
fn filter_since_a_day_runs_the_rules_over_the_users_day() {
    let Some(dc) = Dovecot::start_or_skip("filter_since_local_day") else {
        return;
    };
    let la = backscatter::day::TimeZone::get("America/Los_Angeles")
        .expect("tzdata (scripts/test installs it)");
    let midnight = backscatter::day::parse("2026-01-15", 0, &la).unwrap();
    assert_eq!(
        backscatter::day::time(midnight, &backscatter::day::TimeZone::UTC),
        "2026-01-15 08:00 +00:00"
    );
    let msgs = inbox(12);
    assert!(msgs.len() >= 6);
    // Three the evening before (23:30 local, 07:30 UTC: the UTC day of
    // DAY already), three after midnight.
    let dated: Vec<(i64, Vec<u8>)> = msgs[..6]
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let ts = if i < 3 {
                midnight - 1800
            } else {
                midnight + 1800
            };
            (ts + i as i64, m.clone())
        })
        .collect();
    let mut imap = dc.imap("alice");
    crate::report::append_dated(&mut imap, "INBOX", &dated);
    let base = tempdir("filter-since-local");
    let rules_path = base.join("rules.sieve");
    // Hand-written rules: everything into one folder.
    std::fs::write(
        &rules_path,
        "require [\"fileinto\", \"mailbox\"];\nfileinto :create \"Filed\";\n",
    )
    .unwrap();
    let cfg = config(&base, dc.imap_port, "alice", &rules_path);
    let out = backscatter(&base, &cfg, &["filter", "--since", "2026-01-15", "--json"])
        .env("BS_TEST_PASSWORD", "alicepw")
        .env("TZ", "America/Los_Angeles")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let done: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(done["scanned"], 3, "{done}");
    assert_eq!(done["moved"], 3, "{done}");
    let ids = |mailbox: &str| -> BTreeSet<String> {
        dc.imap("alice")
            .fetch_message_ids(mailbox)
            .into_iter()
            .filter_map(|(_, id)| id)
            .collect()
    };
    let want = |r: std::ops::Range<usize>| -> BTreeSet<String> {
        msgs[r].iter().map(|m| crate::flood::id_of(m)).collect()
    };
    assert_eq!(ids("Filed"), want(3..6), "after local midnight");
    assert_eq!(ids("INBOX"), want(0..3), "the evening before");
    let _ = std::fs::remove_dir_all(&base);
}
