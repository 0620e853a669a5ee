//! The flood report: how bad is it, is it over, and where does it come
//! from. Pure: a list of [`Record`]s (one per quarantined response, one per
//! legitimate bounce kept) in, a [`Report`] out, printable as text
//! ([`fmt::Display`]), JSON (`Serialize`) or a self-contained HTML page
//! ([`Report::html`], charts as inline SVG drawn with plotters). The IMAP
//! side that gathers the records is `cli::report`.
//!
//! Times are Unix seconds. The timeline's hours and days are those of the
//! user's time zone (an argument, [`crate::day`]), and the text and HTML
//! show local times with their offset; the JSON keeps Unix seconds and
//! names the zone.

use crate::classify::{self, Context, Decision, Kind, PARSER};
use crate::day::{self, TimeZone};
use crate::lexicon::{Phrase, LEXICON};
use crate::origin::{self, clean_text, Assessment, Evidence, Own};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// Hourly bins while the span is at most this many hours; daily beyond.
const MAX_HOURLY_BINS: i64 = 7 * 24;
/// Entries in each top list.
const TOP: usize = 10;

/// One automated response, reduced to what the report counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    /// When it arrived (IMAP INTERNALDATE), Unix seconds.
    pub ts: i64,
    /// `Backscatter` for a quarantined response, `Legitimate` for a
    /// response to the user's own mail; `Normal` (not an automated
    /// response: moved by hand, or by an older version) is counted as
    /// quarantined without a kind.
    pub decision: Decision,
    pub kind: Option<Kind>,
    /// ISO 639-1 code of the lexicon phrase that recognised it.
    pub language: Option<String>,
    /// The MTA or provider whose wording it carries (Postfix, Exim, …).
    pub mta_family: Option<String>,
    /// Failed recipients (bounces) or the auto-replier, lowercased.
    pub recipients: Vec<String>,
    /// RFC 3464 status code, e.g. `5.1.1`.
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    /// The original's subject.
    pub subject: Option<String>,
    /// What the quoted original says about where it came from.
    pub origin: Option<Evidence>,
}

impl Record {
    /// Read one response. `kind` overrides the classifier's kind (the
    /// journal's, recorded when the message was moved); `decision` is what
    /// the caller knows about it (quarantined: `Backscatter`).
    pub fn read(raw: &[u8], ts: i64, ctx: &Context<'_>, kind: Option<Kind>) -> Record {
        let v = classify::classify(raw, ctx);
        let (language, mta_family) = wording(raw);
        Record {
            ts,
            decision: v.verdict,
            kind: kind.or(v.kind),
            language,
            mta_family,
            recipients: v.original.recipients,
            status: v.original.status,
            diagnostic: v.original.diagnostic,
            subject: v.original.subject,
            origin: origin::evidence(raw),
        }
    }
}

fn family(p: &Phrase) -> Option<String> {
    p.mta
        .as_deref()
        .and_then(|m| m.split('/').next())
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
}

/// The language (the lexicon phrase in the subject, else in the text) and
/// MTA family (the lexicon's MTA signatures in the text) of a response.
fn wording(raw: &[u8]) -> (Option<String>, Option<String>) {
    let raw = &raw[..raw.len().min(classify::MAX_MESSAGE_BYTES)];
    let Some(msg) = PARSER.parse(raw) else {
        return (None, None);
    };
    let subject = msg.subject().unwrap_or_default().to_lowercase();
    let lex = &*LEXICON;
    let mut lang = [&lex.bounce_subject, &lex.autoreply_subject]
        .iter()
        .filter_map(|t| t.find_best(&subject))
        .find_map(|p| p.lang.clone());
    let text = msg.body_text(0).unwrap_or_default();
    let mut end = text.len().min(4096);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let lowered = text[..end].to_lowercase();
    let hits = lex.scan_text(&lowered);
    let all = [
        hits.bounce,
        hits.autoreply,
        hits.challenge,
        hits.virus,
        hits.feedback,
    ];
    if lang.is_none() {
        lang = all.iter().flatten().find_map(|p| p.lang.clone());
    }
    let mta = lex
        .bounce_body
        .entries()
        .iter()
        .filter(|p| p.mta.is_some())
        .find(|p| lowered.contains(&p.text.to_lowercase()))
        .and_then(family)
        .or_else(|| all.iter().flatten().find_map(|p| family(p)));
    (lang, mta)
}

/// Messages per time bin: the local hours or days of the report's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// Start of the first bin, Unix seconds: the start of a local hour or
    /// day ([`day::hour_floor`], [`day::day_floor`]).
    pub start: i64,
    /// Width of a bin in seconds: 3600, or 86400 for spans over a week
    /// (bin `i` is the `i`-th local day after `start`, which lasts 23 or
    /// 25 hours on a DST change: [`Timeline::bin_starts`]).
    pub bin_seconds: i64,
    pub counts: Vec<usize>,
}

impl Timeline {
    /// The start of each bin, Unix seconds, in the zone the timeline was
    /// built in (one per count).
    pub fn bin_starts(&self, tz: &TimeZone) -> Vec<i64> {
        let mut v = Vec::with_capacity(self.counts.len());
        let mut t = self.start;
        for _ in 0..self.counts.len() {
            v.push(t);
            t = if self.bin_seconds == 3600 {
                t + 3600
            } else {
                day::next_day(t, tz)
            };
        }
        v
    }
}

/// Is the flood still going on?
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    /// The first quarantined message.
    pub first: i64,
    /// The first message of the first local hour with a real surge (at
    /// least a tenth of the peak hour, and at least 3): the onset. Never
    /// before `first`.
    pub onset: i64,
    pub last: i64,
    pub peak_hour: i64,
    pub peak_count: usize,
    /// Quarantined messages in the hour before the report.
    pub last_hour: usize,
    /// Something arrived within the last hour.
    pub ongoing: bool,
}

/// A bounce of the user's own mail: a real delivery problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub ts: i64,
    pub recipient: Option<String>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub subject: Option<String>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub account: String,
    /// The time zone of the timeline's hours and days and of the times in
    /// the text and HTML: an IANA name (`Asia/Tokyo`) or an offset.
    pub zone: String,
    #[serde(skip)]
    pub tz: TimeZone,
    /// When the report was made, Unix seconds.
    pub generated: i64,
    /// Messages in quarantine (within `--since`).
    pub quarantined: usize,
    /// Kind → count; sums to `quarantined` (`unknown`: no kind recorded).
    pub by_kind: BTreeMap<String, usize>,
    pub by_language: BTreeMap<String, usize>,
    pub by_mta_family: BTreeMap<String, usize>,
    pub timeline: Option<Timeline>,
    pub activity: Option<Activity>,
    /// The activity in words.
    pub summary: String,
    /// Failed-recipient domains of the quarantined responses, most first.
    pub top_recipient_domains: Vec<(String, usize)>,
    /// Subjects of the forged originals (the spam campaigns), most first.
    pub top_subjects: Vec<(String, usize)>,
    pub origin: Assessment,
    /// The origin verdict in words, with the evidence.
    pub origin_summary: String,
    /// Outbound hosts learned from the legitimate bounces' originals.
    pub learned_outbound_hosts: Vec<String>,
    /// Legitimate automated responses kept (all kinds).
    pub legitimate: usize,
    /// The legitimate bounces: the user's real delivery problems.
    pub delivery_problems: Vec<Problem>,
}

fn top(counts: BTreeMap<String, usize>) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(TOP);
    v
}

fn tally<'a>(it: impl Iterator<Item = Option<&'a str>>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for k in it {
        *m.entry(k.unwrap_or("unknown").to_string()).or_default() += 1;
    }
    m
}

/// Build the report. `quarantined`: the responses in quarantine;
/// `legitimate`: the legitimate responses kept in the mailbox;
/// `addresses` and `outbound_hosts`: the account's configuration; `now`:
/// Unix seconds; `tz`: the user's time zone, whose hours and days the
/// timeline counts.
pub fn build(
    account: &str,
    quarantined: &[Record],
    legitimate: &[Record],
    addresses: &[String],
    outbound_hosts: &[String],
    now: i64,
    tz: &TimeZone,
) -> Report {
    let by_kind = tally(quarantined.iter().map(|r| r.kind.map(Kind::as_str)));
    let by_language = tally(quarantined.iter().map(|r| r.language.as_deref()));
    let by_mta_family = tally(quarantined.iter().map(|r| r.mta_family.as_deref()));
    let mut domains = BTreeMap::new();
    let mut subjects = BTreeMap::new();
    for r in quarantined {
        let mut seen: Vec<&str> = Vec::new();
        for a in &r.recipients {
            if let Some((_, d)) = a.rsplit_once('@') {
                if !seen.contains(&d) {
                    seen.push(d);
                    *domains.entry(d.to_string()).or_default() += 1;
                }
            }
        }
        if let Some(s) = r
            .subject
            .as_deref()
            .map(clean_text)
            .filter(|s| !s.is_empty())
        {
            *subjects.entry(s).or_default() += 1;
        }
    }
    let learned = origin::learn_outbound_hosts(legitimate.iter().filter_map(|r| r.origin.as_ref()));
    let own = Own::new(addresses, outbound_hosts, &learned);
    let evidence: Vec<Evidence> = quarantined
        .iter()
        .filter_map(|r| r.origin.clone())
        .collect();
    let assessment = origin::assess(&evidence, &own, quarantined.len());
    let (timeline, activity) = timeline(quarantined, now, tz);
    let mut problems: Vec<Problem> = legitimate
        .iter()
        .filter(|r| r.kind == Some(Kind::Bounce))
        .flat_map(|r| {
            let recipients: Vec<Option<String>> = if r.recipients.is_empty() {
                vec![None]
            } else {
                r.recipients.iter().cloned().map(Some).collect()
            };
            recipients.into_iter().map(move |recipient| Problem {
                ts: r.ts,
                recipient,
                status: r.status.clone(),
                diagnostic: r.diagnostic.as_deref().map(clean_text),
                subject: r.subject.as_deref().map(clean_text),
            })
        })
        .collect();
    problems.sort_by_key(|p| std::cmp::Reverse(p.ts));
    let summary = activity_words(quarantined.len(), activity.as_ref(), now, tz);
    Report {
        account: account.to_string(),
        zone: day::zone_name(tz, now),
        tz: tz.clone(),
        generated: now,
        quarantined: quarantined.len(),
        by_kind,
        by_language,
        by_mta_family,
        timeline,
        activity,
        summary,
        top_recipient_domains: top(domains),
        top_subjects: top(subjects),
        origin_summary: if quarantined.is_empty() {
            "nothing in quarantine".into()
        } else {
            assessment.to_string()
        },
        origin: assessment,
        learned_outbound_hosts: learned,
        legitimate: legitimate.len(),
        delivery_problems: problems,
    }
}

fn timeline(records: &[Record], now: i64, tz: &TimeZone) -> (Option<Timeline>, Option<Activity>) {
    let (Some(first), Some(last)) = (
        records.iter().map(|r| r.ts).min(),
        records.iter().map(|r| r.ts).max(),
    ) else {
        return (None, None);
    };
    // Local hours for the activity: the count and the first message of
    // each.
    let mut hours: BTreeMap<i64, (usize, i64)> = BTreeMap::new();
    for r in records {
        let h = hours.entry(day::hour_floor(r.ts, tz)).or_insert((0, r.ts));
        h.0 += 1;
        h.1 = h.1.min(r.ts);
    }
    let (peak_hour, peak_count) = hours
        .iter()
        .max_by_key(|(h, (n, _))| (*n, std::cmp::Reverse(**h)))
        .map(|(h, (n, _))| (*h, *n))
        .unwrap_or((first, 0));
    let threshold = (peak_count / 10).max(3).min(peak_count);
    // The surge's first message, not the start of its hour: a flood whose
    // first message came at 09:59 did not begin "around 09:00".
    let onset = hours
        .values()
        .find(|(n, _)| *n >= threshold)
        .map_or(first, |(_, t)| *t);
    let last_hour = records
        .iter()
        .filter(|r| r.ts > now - 3600 && r.ts <= now)
        .count();
    let end = last.max(now);
    let span_hours = (end.div_euclid(3600) - first.div_euclid(3600)) + 1;
    let (start, bin) = if span_hours > MAX_HOURLY_BINS {
        (day::day_floor(first, tz), 86_400)
    } else {
        (day::hour_floor(first, tz), 3600)
    };
    let floor = |t: i64| {
        if bin == 3600 {
            day::hour_floor(t, tz)
        } else {
            day::day_floor(t, tz)
        }
    };
    // Each bin's start, up to the one holding `end`.
    let mut starts = vec![start];
    let last_bin = floor(end);
    while let Some(&b) = starts.last().filter(|b| **b < last_bin) {
        starts.push(if bin == 3600 {
            b + 3600
        } else {
            day::next_day(b, tz)
        });
    }
    let mut counts = vec![0usize; starts.len()];
    for r in records {
        let i = starts.partition_point(|b| *b <= r.ts).saturating_sub(1);
        counts[i] += 1;
    }
    (
        Some(Timeline {
            start,
            bin_seconds: bin,
            counts,
        }),
        Some(Activity {
            first,
            onset,
            last,
            peak_hour,
            peak_count,
            last_hour,
            ongoing: last_hour > 0,
        }),
    )
}

fn ago(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 3600 {
        format!("{} min ago", secs / 60)
    } else if secs < 2 * 86_400 {
        format!("{} h ago", secs / 3600)
    } else {
        format!("{} days ago", secs / 86_400)
    }
}

fn activity_words(total: usize, a: Option<&Activity>, now: i64, tz: &TimeZone) -> String {
    let Some(a) = a else {
        return "The quarantine is empty.".into();
    };
    let began = if a.onset == a.first {
        format!("The flood began at {}", day::time(a.onset, tz))
    } else {
        format!(
            "The flood began around {} (a first one at {})",
            day::time(a.onset, tz),
            day::time(a.first, tz)
        )
    };
    let mut s = format!(
        "{total} message{} in quarantine. {began}; the peak was {} in the hour from {}. ",
        if total == 1 { "" } else { "s" },
        a.peak_count,
        day::time(a.peak_hour, tz),
    );
    if a.ongoing {
        s.push_str(&format!(
            "It is still going on: {} in the last hour, the latest {}.",
            a.last_hour,
            ago(now - a.last)
        ));
    } else {
        s.push_str(&format!(
            "It looks over: nothing in the last hour, the latest arrived {} ({}).",
            ago(now - a.last),
            day::time(a.last, tz)
        ));
    }
    s
}

/// `YYYY-MM-DD HH:MM UTC` of Unix seconds.
pub fn utc(ts: i64) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

fn bar(n: usize, max: usize, width: usize) -> String {
    if max == 0 || n == 0 {
        return String::new();
    }
    let eighths = (n * width * 8).div_ceil(max).max(1);
    let mut s = "█".repeat(eighths / 8);
    const PART: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    s.push_str(PART[eighths % 8]);
    s
}

fn counts_line(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    m: &BTreeMap<String, usize>,
) -> fmt::Result {
    let v = top(m.clone());
    let parts: Vec<String> = v.iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(
        f,
        "{title:<22}{}",
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(", ")
        }
    )
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Backscatter report for account \"{}\", {} (times in {})",
            self.account,
            day::time(self.generated, &self.tz),
            self.zone
        )?;
        writeln!(f)?;
        writeln!(f, "{}", self.summary)?;
        if let Some(t) = &self.timeline {
            writeln!(f)?;
            writeln!(
                f,
                "Messages per {}:",
                if t.bin_seconds == 3600 { "hour" } else { "day" }
            )?;
            let max = t.counts.iter().copied().max().unwrap_or(0);
            // Hours with their offset (a DST change repeats one); days
            // as dates.
            let starts = t.bin_starts(&self.tz);
            let label = |i: usize| {
                let ts = starts[i];
                if t.bin_seconds == 3600 {
                    day::time(ts, &self.tz)
                } else {
                    day::date(ts, &self.tz)
                }
            };
            let mut empty_run = 0usize;
            let flush = |f: &mut fmt::Formatter<'_>, run: &mut usize| -> fmt::Result {
                if *run > 0 {
                    writeln!(f, "  {:<23} ({} empty)", "…", *run)?;
                    *run = 0;
                }
                Ok(())
            };
            for (i, n) in t.counts.iter().enumerate() {
                let last = i + 1 == t.counts.len();
                if *n == 0 && !last {
                    empty_run += 1;
                    continue;
                }
                if empty_run <= 2 {
                    for j in (i - empty_run)..i {
                        writeln!(f, "  {:<23} {:>6}", label(j), 0)?;
                    }
                    empty_run = 0;
                } else {
                    flush(f, &mut empty_run)?;
                }
                writeln!(f, "  {:<23} {:>6} {}", label(i), n, bar(*n, max, 50))?;
            }
        }
        writeln!(f)?;
        counts_line(f, "By kind:", &self.by_kind)?;
        counts_line(f, "By language:", &self.by_language)?;
        counts_line(f, "By MTA family:", &self.by_mta_family)?;
        if !self.top_recipient_domains.is_empty() {
            writeln!(f)?;
            writeln!(f, "Top failed-recipient domains:")?;
            for (d, n) in &self.top_recipient_domains {
                writeln!(f, "  {n:>6}  {d}")?;
            }
        }
        if !self.top_subjects.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "Top subjects of the forged originals (the spam campaigns):"
            )?;
            for (s, n) in &self.top_subjects {
                writeln!(f, "  {n:>6}  {s}")?;
            }
        }
        writeln!(f)?;
        writeln!(f, "Origin: {}", self.origin_summary)?;
        if !self.learned_outbound_hosts.is_empty() {
            writeln!(
                f,
                "  (your outbound hosts, learned from your real bounces: {})",
                self.learned_outbound_hosts.join(", ")
            )?;
        }
        writeln!(f)?;
        if self.delivery_problems.is_empty() {
            writeln!(
                f,
                "Your real delivery problems: none ({} legitimate automated response{} kept).",
                self.legitimate,
                if self.legitimate == 1 { "" } else { "s" }
            )?;
        } else {
            writeln!(
                f,
                "Your real delivery problems ({} bounce{} of your own mail, kept in your mailbox):",
                self.delivery_problems.len(),
                if self.delivery_problems.len() == 1 {
                    ""
                } else {
                    "s"
                }
            )?;
            const SHOWN: usize = 20;
            for p in self.delivery_problems.iter().take(SHOWN) {
                writeln!(
                    f,
                    "  {}  {:<32} {:<7} {}",
                    day::time(p.ts, &self.tz),
                    p.recipient.as_deref().unwrap_or("(recipient unknown)"),
                    p.status.as_deref().unwrap_or("-"),
                    p.diagnostic
                        .as_deref()
                        .or(p.subject.as_deref())
                        .unwrap_or("")
                )?;
            }
            if self.delivery_problems.len() > SHOWN {
                writeln!(
                    f,
                    "  … and {} more (all of them with --json or --html)",
                    self.delivery_problems.len() - SHOWN
                )?;
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// HTML: one self-contained page, charts as inline SVG (plotters).

fn esc(s: &str) -> String {
    crate::digest::escape(s)
}

/// A bar chart of `values` as an SVG document (`labels` under the bars,
/// every `label_every`-th shown).
fn bar_chart_svg(
    title: &str,
    labels: &[String],
    values: &[usize],
    label_every: usize,
    color: plotters::style::RGBColor,
) -> Result<String, String> {
    use plotters::prelude::*;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        let e = |e: DrawingAreaErrorKind<_>| format!("cannot draw the chart: {e}");
        root.fill(&WHITE).map_err(e)?;
        let n = values.len().max(1);
        let max = values.iter().copied().max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            // A segmented range a..b has a segment for b too.
            .build_cartesian_2d(
                (0..(n - 1).max(1)).into_segmented(),
                0..(max + max / 10 + 1),
            )
            .map_err(e)?;
        let every = label_every.max(1);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(n.min(40))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if i % every == 0 => {
                    labels.get(*i).cloned().unwrap_or_default()
                }
                _ => String::new(),
            })
            .y_desc("messages")
            .draw()
            .map_err(e)?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0),
                        (SegmentValue::Exact(i + 1), *v),
                    ],
                    color.filled(),
                );
                r.set_margin(0, 0, 1, 1);
                r
            }))
            .map_err(e)?;
        root.present().map_err(e)?;
    }
    Ok(svg)
}

fn table(title: &str, rows: &[(String, usize)]) -> String {
    let mut s = format!("<section>\n<h2>{}</h2>\n<table>\n", esc(title));
    if rows.is_empty() {
        s.push_str("<tr><td>none</td></tr>\n");
    }
    for (k, n) in rows {
        s.push_str(&format!(
            "<tr><td class=\"n\">{n}</td><td>{}</td></tr>\n",
            esc(k)
        ));
    }
    s.push_str("</table>\n</section>\n");
    s
}

impl Report {
    /// The report as one self-contained HTML page: inline CSS and SVG, no
    /// script, no external resource (no link, image, font or style sheet
    /// is loaded from anywhere). Errors: a chart that cannot be drawn.
    pub fn html(&self) -> Result<String, String> {
        let mut body = String::new();
        body.push_str(&format!(
            "<h1>Backscatter report: {}</h1>\n<p class=\"when\">{}</p>\n<p class=\"summary\">{}</p>\n",
            esc(&self.account),
            esc(&format!(
                "{} (times in {})",
                day::time(self.generated, &self.tz),
                self.zone
            )),
            esc(&self.summary)
        ));
        let alert = if self.origin.is_own_server() {
            " alert"
        } else {
            ""
        };
        body.push_str(&format!(
            "<p class=\"origin{alert}\"><b>Origin:</b> {}</p>\n",
            esc(&self.origin_summary)
        ));
        if let Some(t) = &self.timeline {
            let hourly = t.bin_seconds == 3600;
            let labels: Vec<String> = t
                .bin_starts(&self.tz)
                .into_iter()
                .map(|ts| {
                    let u = day::time(ts, &self.tz);
                    if hourly {
                        u[5..16].to_string()
                    } else {
                        u[..10].to_string()
                    }
                })
                .collect();
            let title = format!(
                "Messages per {} ({})",
                if hourly { "hour" } else { "day" },
                self.zone
            );
            let every = t.counts.len().div_ceil(8);
            body.push_str(&bar_chart_svg(
                &title,
                &labels,
                &t.counts,
                every,
                plotters::style::RGBColor(0xc0, 0x39, 0x2b),
            )?);
            body.push('\n');
        }
        if !self.by_kind.is_empty() {
            let kinds: Vec<(String, usize)> = top(self.by_kind.clone());
            let labels: Vec<String> = kinds.iter().map(|(k, _)| k.clone()).collect();
            let values: Vec<usize> = kinds.iter().map(|(_, n)| *n).collect();
            body.push_str(&bar_chart_svg(
                "By kind",
                &labels,
                &values,
                1,
                plotters::style::RGBColor(0x29, 0x80, 0xb9),
            )?);
            body.push('\n');
        }
        body.push_str("<div class=\"cols\">\n");
        body.push_str(&table("By language", &top(self.by_language.clone())));
        body.push_str(&table("By MTA family", &top(self.by_mta_family.clone())));
        body.push_str(&table(
            "Top failed-recipient domains",
            &self.top_recipient_domains,
        ));
        body.push_str("</div>\n");
        body.push_str(&table(
            "Top subjects of the forged originals",
            &self.top_subjects,
        ));
        body.push_str("<h2>Your real delivery problems</h2>\n");
        if self.delivery_problems.is_empty() {
            body.push_str(&format!(
                "<p>None ({} legitimate automated responses kept).</p>\n",
                self.legitimate
            ));
        } else {
            body.push_str("<table>\n<tr><th>when</th><th>recipient</th><th>status</th><th>diagnostic</th></tr>\n");
            for p in &self.delivery_problems {
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    esc(&day::time(p.ts, &self.tz)),
                    esc(p.recipient.as_deref().unwrap_or("(unknown)")),
                    esc(p.status.as_deref().unwrap_or("-")),
                    esc(p
                        .diagnostic
                        .as_deref()
                        .or(p.subject.as_deref())
                        .unwrap_or(""))
                ));
            }
            body.push_str("</table>\n");
        }
        Ok(format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Backscatter report: {}</title>\n<style>\nbody{{font-family:sans-serif;margin:2em;max-width:960px;color:#222}}\nh1{{font-size:1.6em}}h2{{font-size:1.15em;margin-top:1.4em}}\n.when{{color:#666}}.summary{{font-size:1.1em}}\n.origin{{padding:.6em;border-left:4px solid #2980b9;background:#eef5fb}}\n.origin.alert{{border-color:#c0392b;background:#fdecea}}\ntable{{border-collapse:collapse}}td,th{{padding:2px 10px;text-align:left;vertical-align:top}}\n.n{{text-align:right}}.cols{{display:flex;gap:2em;flex-wrap:wrap}}\nsvg{{display:block;margin:1em 0}}\n</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
            esc(&self.account)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sent::SentIndex;

    fn raw(rel: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    const T0: i64 = 1_764_460_800; // 2025-11-30 00:00 UTC

    /// Real responses (Sisimai set-of-emails, BSD-2-Clause): Exim, qmail
    /// and Postfix bounces in quarantine; a Postfix bounce whose original
    /// (lhost-postfix-04's) is in Sent, kept as legitimate.
    fn records() -> (Vec<Record>, Vec<Record>) {
        let mut sent = SentIndex::new();
        sent.insert_id("<A8F82EDD-E518-4F5C-8C70-BC4EFF24AB9F@example.ne.jp>");
        let ctx = Context {
            sent: &sent,
            own_addresses: &[],
        };
        let empty = SentIndex::new();
        let none = Context {
            sent: &empty,
            own_addresses: &[],
        };
        let files = [
            "tests/corpus/sisimai/bsd/lhost-exim-01.eml",
            "tests/corpus/sisimai/bsd/lhost-qmail-01.eml",
            "tests/corpus/sisimai/bsd/lhost-postfix-02.eml",
        ];
        let mut q = Vec::new();
        // 3 in the first hour, 30 in the third, 1 in the fourth.
        for (i, ts) in [(0usize, T0 + 10), (1, T0 + 20), (2, T0 + 30)] {
            q.push(Record::read(&raw(files[i]), ts, &none, None));
        }
        for k in 0..30 {
            q.push(Record::read(
                &raw(files[k % 3]),
                T0 + 2 * 3600 + k as i64,
                &none,
                None,
            ));
        }
        q.push(Record::read(
            &raw(files[0]),
            T0 + 3 * 3600 + 5,
            &none,
            Some(Kind::VirusNotice),
        ));
        let legit = vec![Record::read(
            &raw("tests/corpus/sisimai/bsd/lhost-postfix-04.eml"),
            T0 + 60,
            &ctx,
            None,
        )];
        (q, legit)
    }

    #[test]
    fn counts_timeline_and_words() {
        let (q, legit) = records();
        assert_eq!(legit[0].decision, Decision::Legitimate);
        assert!(
            q.iter().all(|r| r.decision == Decision::Backscatter),
            "{q:?}"
        );
        let r = build(
            "work",
            &q,
            &legit,
            &["me@example.jp".into()],
            &[],
            T0 + 3 * 3600 + 600,
            &TimeZone::UTC,
        );
        assert_eq!(r.quarantined, 34);
        assert_eq!(r.by_kind.values().sum::<usize>(), 34);
        assert_eq!(
            r.by_kind.get("virus_notice"),
            Some(&1),
            "the journal's kind wins"
        );
        assert_eq!(r.by_kind.get("bounce"), Some(&33));
        let t = r.timeline.as_ref().unwrap();
        assert_eq!((t.start, t.bin_seconds), (T0, 3600));
        assert_eq!(t.counts, vec![3, 0, 30, 1]);
        let a = r.activity.as_ref().unwrap();
        // The onset is the surge's first message, not its hour's start.
        assert_eq!(
            (a.onset, a.peak_hour, a.peak_count),
            (T0 + 10, T0 + 7200, 30)
        );
        assert!(
            r.summary.contains(
                "The flood began at 2025-11-30 00:00 +00:00; the peak was 30 in the hour from 2025-11-30 02:00 +00:00."
            ),
            "{}",
            r.summary
        );
        assert!(a.ongoing && a.last_hour == 1, "{a:?}");
        assert!(
            r.summary.contains("still going on: 1 in the last hour"),
            "{}",
            r.summary
        );
        assert_eq!(r.by_mta_family.values().sum::<usize>(), 34);
        assert!(
            r.by_mta_family.contains_key("exim"),
            "{:?}",
            r.by_mta_family
        );
        assert!(
            r.by_mta_family.contains_key("qmail"),
            "{:?}",
            r.by_mta_family
        );
        assert!(r.by_language.contains_key("en"), "{:?}", r.by_language);
        assert!(!r.top_recipient_domains.is_empty());
        assert_eq!(r.delivery_problems.len(), legit[0].recipients.len().max(1));
        assert_eq!(r.delivery_problems[0].status.as_deref(), Some("5.1.1"));
        // A day later it is over.
        let later = build("work", &q, &legit, &[], &[], T0 + 30 * 3600, &TimeZone::UTC);
        assert!(later.summary.contains("It looks over"), "{}", later.summary);
        assert_eq!(later.timeline.unwrap().counts.len(), 31);
        // The text shows the bars and the real problem.
        let text = r.to_string();
        assert!(text.contains("██████"), "{text}");
        assert!(
            text.contains("Your real delivery problems (1 bounce"),
            "{text}"
        );
        // JSON: the contract's keys.
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["quarantined"], 34);
        assert_eq!(j["by_kind"]["bounce"], 33);
    }

    /// The newcomer's flood: the first message at 09:59, the surge in the
    /// hours after. It began at 09:59, not "around 09:00".
    #[test]
    fn the_flood_never_begins_before_its_first_message() {
        let (q, _) = records();
        let nine = T0 + 9 * 3600;
        let q: Vec<Record> = q
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.ts = nine + 59 * 60 + 7 * i as i64;
                r
            })
            .collect();
        let r = build("a", &q, &[], &[], &[], nine + 2 * 3600, &TimeZone::UTC);
        let a = r.activity.unwrap();
        assert_eq!((a.first, a.onset), (nine + 59 * 60, nine + 59 * 60));
        assert!(
            r.summary
                .contains("The flood began at 2025-11-30 09:59 +00:00;"),
            "{}",
            r.summary
        );
        // A stray message hours before the surge: the surge's first
        // message is the onset, and the stray one is named.
        let mut q2 = q.clone();
        q2[0].ts = nine - 5 * 3600;
        let r = build("a", &q2, &[], &[], &[], nine + 2 * 3600, &TimeZone::UTC);
        let a = r.activity.unwrap();
        assert_eq!(a.onset, q2[1].ts);
        assert!(a.onset >= a.first);
        assert!(
            r.summary.contains(
                "The flood began around 2025-11-30 09:59 +00:00 (a first one at 2025-11-30 04:00 +00:00)"
            ),
            "{}",
            r.summary
        );
    }

    /// The timeline counts the user's hours and days: east of UTC a
    /// night's flood that spans two UTC days is one local day.
    #[test]
    fn hours_and_days_are_the_users() {
        let (q, _) = records();
        let k = TimeZone::get("Pacific/Kiritimati").expect("tzdata");
        // T0 = 2025-11-30 00:00 UTC = 14:00 +14:00; shift the records to
        // 2025-11-29 10:20 UTC (= 11-30 00:20 local) onwards.
        let base = T0 - 13 * 3600 - 40 * 60;
        let q: Vec<Record> = q
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.ts = base + 1800 * i as i64; // 34 messages over 17 hours
                r
            })
            .collect();
        let now = base + 20 * 86_400;
        let r = build("a", &q, &[], &[], &[], now, &k);
        assert_eq!(r.zone, "Pacific/Kiritimati");
        let t = r.timeline.as_ref().unwrap();
        assert_eq!(t.bin_seconds, 86_400);
        // All 34 on local day 2025-11-30 (UTC: 11-29 and 11-30).
        assert_eq!(t.counts[0], 34);
        assert_eq!(day::time(t.start, &k), "2025-11-30 00:00 +14:00");
        let text = r.to_string();
        assert!(text.contains("(times in Pacific/Kiritimati)"), "{text}");
        assert!(text.contains("  2025-11-30 "), "{text}");
        // In UTC the same messages fall on two days.
        let u = build("a", &q, &[], &[], &[], now, &TimeZone::UTC);
        assert_eq!(&u.timeline.unwrap().counts[..2], &[28, 6]);
        // Hourly, in a half-hour zone: bins start at :30 UTC, labelled
        // as local whole hours.
        let kolkata = TimeZone::get("Asia/Kolkata").expect("tzdata");
        let r = build("a", &q, &[], &[], &[], base + 18 * 3600, &kolkata);
        let t = r.timeline.as_ref().unwrap();
        assert_eq!(t.bin_seconds, 3600);
        assert_eq!(t.start.rem_euclid(3600), 1800);
        assert_eq!(t.counts.iter().sum::<usize>(), 34);
        assert!(r.to_string().contains(":00 +05:30"), "{r}");
    }

    /// Daily bins across a DST change: the 25-hour day is one bin.
    #[test]
    fn a_dst_day_is_one_bin() {
        let (q, _) = records();
        let la = TimeZone::get("America/Los_Angeles").expect("tzdata");
        // 2025-11-02 00:00 -07:00 = 07:00 UTC; the day lasts 25 hours.
        let day_start = 1_762_066_800;
        let q: Vec<Record> = q
            .into_iter()
            .enumerate()
            .map(|(i, mut r)| {
                r.ts = day_start + 2700 * i as i64 % (25 * 3600);
                r
            })
            .collect();
        let r = build("a", &q, &[], &[], &[], day_start + 10 * 86_400, &la);
        let t = r.timeline.as_ref().unwrap();
        assert_eq!((t.start, t.bin_seconds), (day_start, 86_400));
        assert_eq!(t.counts[0], 34, "{:?}", t.counts);
        let starts = t.bin_starts(&la);
        assert_eq!(starts.len(), t.counts.len());
        assert_eq!(starts[1], day_start + 25 * 3600);
        assert_eq!(day::date(starts[2], &la), "2025-11-04");
    }

    #[test]
    fn empty_quarantine_and_long_spans() {
        let r = build("a", &[], &[], &[], &[], T0, &TimeZone::UTC);
        assert_eq!(r.quarantined, 0);
        assert!(r.by_kind.is_empty() && r.timeline.is_none());
        assert_eq!(r.summary, "The quarantine is empty.");
        assert!(r.to_string().contains("Origin: nothing in quarantine"));
        // Over a week: daily bins.
        let (q, _) = records();
        let r = build("a", &q, &[], &[], &[], T0 + 20 * 86_400, &TimeZone::UTC);
        let t = r.timeline.unwrap();
        assert_eq!((t.bin_seconds, t.counts.len()), (86_400, 21));
        assert_eq!(t.counts[0], 34);
    }

    #[test]
    fn html_is_self_contained() {
        let (q, legit) = records();
        let r = build(
            "work <&>",
            &q,
            &legit,
            &[],
            &[],
            T0 + 4 * 3600,
            &TimeZone::UTC,
        );
        let h = r.html().unwrap();
        assert!(h.starts_with("<!DOCTYPE html>"));
        assert_eq!(h.matches("<svg").count(), 2, "timeline and kinds");
        // One bar per hour, empty ones included.
        let bars = h.matches("fill=\"#C0392B\"").count();
        assert_eq!(bars, r.timeline.as_ref().unwrap().counts.len());
        assert!(h.contains("work &lt;&amp;&gt;"));
        let lower = h.to_lowercase();
        for bad in ["src=", "href=", "url(", "@import", "<script", "<link"] {
            assert!(!lower.contains(bad), "{bad} in the page");
        }
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(T0 + 3 * 3600 + 61), "2025-11-30 03:01 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
