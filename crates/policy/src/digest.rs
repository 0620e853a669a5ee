//! Desktop notifications for the agent: batched summaries ("412 backscatter
//! messages quarantined in the last 10 minutes") and an alert when a surge
//! looks like a joe job, with what to do. Never one notification per
//! message.
//!
//! The alert names which of the two causes of a flood it is (see
//! `origin`): a joe job (the surge alert, once per window), or the user's
//! own server sending spam, which is urgent: it is notified at once, with
//! the host and a sample subject, and again every [`Digest::repeat`]
//! seconds while responses to mail from that server keep coming.
//!
//! The batching ([`Digest`]) is pure and takes the time as an argument;
//! showing a notice is the I/O, in `backscatter::notify`.

use crate::origin::{self, Assessment, Evidence, Own};
use std::collections::{BTreeMap, BTreeSet};

/// Originals kept per account and window for the origin verdict.
const MAX_SAMPLES: usize = 500;

/// What to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
    /// A surge: likely a joe job.
    pub urgent: bool,
}

/// Batches quarantine counts into one summary per window and one surge
/// alert per window.
#[derive(Debug, Clone)]
pub struct Digest {
    /// Seconds per summary window (10 minutes by default).
    pub window: i64,
    /// Messages within one window that make a surge.
    pub surge: usize,
    /// Seconds between two alerts about the user's own server while it
    /// lasts (5 minutes by default).
    pub repeat: i64,
    window_start: Option<i64>,
    counts: BTreeMap<String, usize>,
    alerted: bool,
    origins: BTreeMap<String, Origins>,
}

/// What is known about one account's origins.
#[derive(Debug, Clone, Default)]
struct Origins {
    addresses: Vec<String>,
    configured: Vec<String>,
    /// Outbound hosts learned from the originals of legitimate bounces.
    learned: BTreeSet<String>,
    /// Originals of this window's quarantined responses (at most
    /// [`MAX_SAMPLES`]).
    window: Vec<Evidence>,
    /// When the user's own server was last alerted about.
    last_compromise_alert: Option<i64>,
}

impl Origins {
    fn own(&self) -> Own {
        let learned: Vec<String> = self.learned.iter().cloned().collect();
        Own::new(&self.addresses, &self.configured, &learned)
    }
}

impl Default for Digest {
    fn default() -> Self {
        Digest::new(600, 100)
    }
}

impl Digest {
    pub fn new(window: i64, surge: usize) -> Self {
        Digest {
            window,
            surge,
            repeat: 300,
            window_start: None,
            counts: BTreeMap::new(),
            alerted: false,
            origins: BTreeMap::new(),
        }
    }

    /// The account's own addresses and configured outbound hosts, for the
    /// origin verdict (see `origin::Own`).
    pub fn set_own(&mut self, account: &str, addresses: &[String], outbound_hosts: &[String]) {
        let o = self.origins.entry(account.to_string()).or_default();
        o.addresses = addresses.to_vec();
        o.configured = outbound_hosts.to_vec();
    }

    /// `n` messages of `account` were quarantined at `now`; `originals`
    /// is what the quoted originals of (a sample of) them say about their
    /// origin, `own_bounces` the same for legitimate bounces seen (their
    /// first hosts are learned as the user's). Returns an alert:
    /// - at once, and again every [`Digest::repeat`] seconds while it
    ///   lasts, when these originals passed through the user's own server
    ///   or carry the user's DKIM signature;
    /// - otherwise once per window when the window's count reaches the
    ///   surge threshold, naming the case (forged, with the evidence).
    pub fn record_moved(
        &mut self,
        account: &str,
        n: usize,
        originals: &[Evidence],
        own_bounces: &[Evidence],
        now: i64,
    ) -> Option<Notice> {
        let o = self.origins.entry(account.to_string()).or_default();
        o.learned
            .extend(origin::learn_outbound_hosts(own_bounces.iter()));
        if n == 0 {
            return None;
        }
        let room = MAX_SAMPLES.saturating_sub(o.window.len());
        o.window.extend(originals.iter().take(room).cloned());
        let own = o.own();
        let batch = origin::assess(originals, &own, n);
        if let Assessment::OwnServer {
            host,
            sample_subject,
            script,
            ..
        } = &batch
        {
            self.window_start.get_or_insert(now);
            *self.counts.entry(account.to_string()).or_default() += n;
            let o = self.origins.get_mut(account).expect("inserted above");
            let due = o
                .last_compromise_alert
                .is_none_or(|t| now - t >= self.repeat);
            if !due {
                return None;
            }
            o.last_compromise_alert = Some(now);
            self.alerted = true;
            let mut body = format!(
                "{n} automated response{} just now ({account}) answer mail sent through your own server {host}: a compromised account, web form or script is the likely cause.",
                if n == 1 { "" } else { "s" },
            );
            if let Some(sc) = script {
                body.push_str(&format!(
                    " The mail names the script {}.",
                    origin::clean_text(sc)
                ));
            }
            if let Some(sub) = sample_subject {
                body.push_str(&format!(
                    " Sample subject: \"{}\".",
                    origin::clean_text(sub)
                ));
            }
            body.push_str(" Act now: change the passwords of the accounts on it, disable the form or script, and check its mail queue. `backscatter report` shows the evidence.");
            return Some(Notice {
                title: format!("Your own server {host} is sending spam"),
                body,
                urgent: true,
            });
        }
        self.record(account, n, now)
    }

    fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// `n` messages of `account` were quarantined at `now`. Returns a surge
    /// alert the first time the window's count reaches the threshold.
    pub fn record(&mut self, account: &str, n: usize, now: i64) -> Option<Notice> {
        if n == 0 {
            return None;
        }
        self.window_start.get_or_insert(now);
        *self.counts.entry(account.to_string()).or_default() += n;
        if !self.alerted && self.total() >= self.surge {
            self.alerted = true;
            let mut body = format!(
                "{} backscatter messages in a few minutes ({}): a spammer is sending mail in your name and the world is answering you. They are in quarantine; nothing was deleted.",
                self.total(),
                self.accounts()
            );
            let evidence: Vec<String> = self
                .origins
                .values()
                .filter(|o| !o.window.is_empty())
                .map(|o| origin::assess(&o.window, &o.own(), o.window.len()))
                .filter(|a| matches!(a, Assessment::Forged { .. }))
                .map(|a| {
                    let words = a.to_string();
                    // The verdict's first sentence: the evidence.
                    words.split(". ").next().unwrap_or(&words).to_string()
                })
                .collect();
            let sure = !evidence.is_empty();
            if sure {
                body.push_str(&format!(" Origin: {}.", evidence.join("; ")));
            }
            body.push_str(" To make it stop, publish SPF (\"-all\"), sign your mail with DKIM and set DMARC to p=reject for your domain, so that receivers refuse the forgeries instead of bouncing them to you.");
            return Some(Notice {
                title: if sure {
                    "Your address is being forged (a joe job)".into()
                } else {
                    "Your address is probably being forged (a joe job)".into()
                },
                body,
                urgent: true,
            });
        }
        None
    }

    fn accounts(&self) -> String {
        self.counts
            .iter()
            .map(|(a, n)| format!("{a}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The summary, once the window that started with the first quarantine
    /// has passed; the window then starts afresh.
    pub fn due(&mut self, now: i64) -> Option<Notice> {
        let start = self.window_start?;
        if now - start < self.window {
            return None;
        }
        let total = self.total();
        let notice = Notice {
            title: format!(
                "{total} backscatter message{} quarantined",
                if total == 1 { "" } else { "s" }
            ),
            body: format!(
                "{total} automated response{} to mail you did not send moved to quarantine in the last {} minutes ({}). `backscatter restore` brings any of them back.",
                if total == 1 { "" } else { "s" },
                self.window / 60,
                self.accounts()
            ),
            urgent: false,
        };
        self.window_start = None;
        self.counts.clear();
        self.alerted = false;
        for o in self.origins.values_mut() {
            o.window.clear();
        }
        Some(notice)
    }
}

/// Escape text for notification servers that read markup.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_per_window_and_alerts_once_per_surge() {
        let mut d = Digest::new(600, 100);
        assert_eq!(d.due(0), None);
        assert_eq!(d.record("work", 3, 10), None);
        assert_eq!(d.due(300), None, "not before the window ends");
        assert_eq!(d.record("home", 2, 400), None);
        let s = d.due(610).expect("summary");
        assert_eq!(s.title, "5 backscatter messages quarantined");
        assert!(s.body.contains("home: 2, work: 3"), "{}", s.body);
        assert_eq!(d.due(2000), None, "nothing new, nothing said");
        // A surge: one alert, then silence until the window's summary.
        assert_eq!(d.record("work", 60, 3000), None);
        let a = d.record("work", 60, 3010).expect("alert");
        assert!(a.urgent && a.body.contains("DMARC") && a.body.contains("SPF"));
        assert_eq!(d.record("work", 500, 3020), None);
        assert_eq!(
            d.due(3600).unwrap().title,
            "620 backscatter messages quarantined"
        );
    }

    fn evidence(rel: &str) -> Evidence {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel);
        origin::evidence(&std::fs::read(p).unwrap()).unwrap()
    }

    /// Real bounces (Sisimai set-of-emails, BSD-2-Clause): rhost-cox-01
    /// answers mail a PHP script sent through tr2.example.com.
    #[test]
    fn own_server_is_alerted_at_once_and_while_it_lasts() {
        let mut d = Digest::new(600, 100);
        d.set_own(
            "work",
            &["me@example.com".into()],
            &["tr2.example.com".into()],
        );
        let e = evidence("tests/corpus/sisimai/bsd/rhost-cox-01.eml");
        let a = d
            .record_moved("work", 1, std::slice::from_ref(&e), &[], 1000)
            .expect("at once, far below the surge threshold");
        assert!(a.urgent);
        assert_eq!(a.title, "Your own server tr2.example.com is sending spam");
        assert!(
            a.body.contains("compromised account, web form or script")
                && a.body.contains("Take down your patio umbrella")
                && a.body.contains("phpmailer.php"),
            "{}",
            a.body
        );
        // Not one per batch...
        assert_eq!(
            d.record_moved("work", 3, std::slice::from_ref(&e), &[], 1060),
            None
        );
        // ...but again while it lasts.
        assert!(d
            .record_moved("work", 2, std::slice::from_ref(&e), &[], 1300)
            .is_some());
        // Other accounts know nothing of that host.
        assert_eq!(
            d.record_moved("home", 1, std::slice::from_ref(&e), &[], 1301),
            None
        );
    }

    /// The host learned from a legitimate bounce (Sisimai rhost-iua-01,
    /// submitted on mail.example.co.jp) makes lhost-postfix-59 (same host)
    /// the compromise case.
    #[test]
    fn own_server_learned_from_real_bounces() {
        let mut d = Digest::new(600, 100);
        d.set_own("work", &["neko@example.co.jp".into()], &[]);
        let legit = evidence("tests/corpus/sisimai/bsd/rhost-iua-01.eml");
        assert_eq!(d.record_moved("work", 0, &[], &[legit], 10), None);
        let q = evidence("tests/corpus/sisimai/bsd/lhost-postfix-59.eml");
        let a = d.record_moved("work", 1, &[q], &[], 20).unwrap();
        assert_eq!(
            a.title,
            "Your own server mail.example.co.jp is sending spam"
        );
    }

    /// A joe job (cpython msg_43, PSF licence: a worm's mail forged as
    /// webmaster@python.org, from a DSL line): the surge alert says forged,
    /// with the evidence.
    #[test]
    fn surge_of_forged_mail_names_the_case() {
        let mut d = Digest::new(600, 100);
        d.set_own(
            "py",
            &["webmaster@python.org".into()],
            &["mail.python.org".into()],
        );
        let e = evidence("tests/fixtures/extra/cpython/msg_43.eml");
        assert_eq!(d.record_moved("py", 60, &vec![e.clone(); 20], &[], 0), None);
        let a = d.record_moved("py", 60, &vec![e; 20], &[], 30).unwrap();
        assert_eq!(a.title, "Your address is being forged (a joe job)");
        assert!(
            a.body.contains("Origin: forged: 40 originals from 1 distinct network, none through your servers, none signed by your domain")
                && a.body.contains("DMARC"),
            "{}",
            a.body
        );
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<b>\"x\" & 'y'</b>\n"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt; "
        );
        // NULs and line breaks become spaces; a long line stays text.
        assert_eq!(escape("a\0b\r\nc<"), "a b  c&lt;");
        let long = "<a href=x>".repeat(10_000);
        let e = escape(&long);
        assert!(!e.contains(['<', '>', '"']) && e.len() > long.len());
    }
}
