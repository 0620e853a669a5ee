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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
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
    // Every STEP-th message (default 4; BACKSCATTER_PARITY_STEP=1 for all):
    // sieve-test takes ~70 ms a message.
    let step: usize = env_num("BACKSCATTER_PARITY_STEP", 4).max(1);
    let corpus: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("tests/corpus/sisimai/bsd"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        v.sort();
        v.into_iter().step_by(step).collect()
    };
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
            "{}: {} messages, {same} same, {empty_sender} differ only by the empty envelope sender",
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
