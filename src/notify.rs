//! Desktop notifications for the agent: batched summaries ("412 backscatter
//! messages quarantined in the last 10 minutes") and an alert when a surge
//! looks like a joe job, with what to do. Never one notification per
//! message.
//!
//! The batching ([`Digest`]) is pure and takes the time as an argument;
//! [`show`] is the I/O (D-Bus via notify-rust), falling back to a log line
//! where there is no notification service (headless, SSH, CI).

use std::collections::BTreeMap;

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
    window_start: Option<i64>,
    counts: BTreeMap<String, usize>,
    alerted: bool,
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
            window_start: None,
            counts: BTreeMap::new(),
            alerted: false,
        }
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
            return Some(Notice {
                title: "Your address is probably being forged (a joe job)".into(),
                body: format!(
                    "{} backscatter messages in a few minutes ({}): a spammer is sending mail in your name and the world is answering you. They are in quarantine; nothing was deleted. To make it stop, publish SPF (\"-all\"), sign your mail with DKIM and set DMARC to p=reject for your domain, so that receivers refuse the forgeries instead of bouncing them to you.",
                    self.total(),
                    self.accounts()
                ),
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

/// Show a notice on the desktop; where that fails (no notification
/// service), log it instead.
pub async fn show(n: &Notice) {
    let mut note = notify_rust::Notification::new();
    note.appname("backscatter")
        .summary(&escape(&n.title))
        .body(&escape(&n.body));
    if n.urgent {
        note.urgency(notify_rust::Urgency::Critical);
    }
    let shown = tokio::time::timeout(std::time::Duration::from_secs(5), note.show_async()).await;
    match shown {
        Ok(Ok(_)) => tracing::info!("notified: {}", n.title),
        _ => tracing::info!(
            "notification (no desktop notification service): {}: {}",
            n.title,
            n.body
        ),
    }
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
