//! Provenance: was the original of an automated response the user's own
//! mail? Judged against the [`SentIndex`], by the rules of [`decide`], in
//! their order; the first that applies decides and names itself in the
//! verdict's first reason.
//!
//! Pure. The entry point for a whole message is [`crate::classify`].

use super::{SentIndex, SentMatch, Window};
use crate::recognise::{Decision, Original, Response, Verdict};

/// What the classifier knows about the user.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub sent: &'a SentIndex,
    /// The user's own addresses, lowercased.
    pub own_addresses: &'a [String],
}

fn fmt_date(ts: Option<i64>) -> String {
    match ts.and_then(|t| mail_parser::DateTime::from_timestamp(t).into()) {
        Some(d) => {
            let s = d.to_rfc3339();
            format!(" on {}", &s[..s.len().min(10)])
        }
        None => String::new(),
    }
}

/// The provenance rules, in the order they are tried. The first that
/// applies decides, and its name opens the verdict's first reason.
///
/// 1. **An original Message-ID found in the response decides.** In the sent
///    index: `legitimate`. Not in it: `backscatter`, unless one sent message
///    corroborates the original by recipient *and* subject or date (a
///    provider that rewrote the Message-ID on submission). A recipient the
///    user also wrote to never outweighs a foreign Message-ID: floods forge
///    mail to the very people the user writes to.
/// 2. **With no original Message-ID**, a recipient the user wrote to in the
///    week before the response ([`super::RESPONSE_WINDOW_SECS`]), then
///    a subject the user sent, make it `legitimate`.
/// 3. Otherwise `backscatter`.
///
/// This is [`decide_at`] with the arrival unknown (a message file): the
/// whole index counts.
pub fn decide(response: Response, ctx: &Context<'_>) -> Verdict {
    decide_at(response, ctx, None)
}

/// [`decide`], for a response that arrived at `arrived` (Unix seconds,
/// the IMAP INTERNALDATE): where the index was read from a Sent mailbox
/// (it knows `sent-days`), only the sent mail of [`Window::for_arrival`]
/// that moment counts, so that the verdict does not depend on when it is
/// judged. Without `arrived`, or for an index of files, the whole index
/// counts. The response's own `Date:` never stands in for the arrival:
/// its sender writes it.
pub fn decide_at(response: Response, ctx: &Context<'_>, arrived: Option<i64>) -> Verdict {
    let Response {
        kind,
        mut original,
        candidate_ids,
        dated,
        mut reasons,
    } = response;
    let verdict = |decision, original, reasons| Verdict {
        verdict: decision,
        kind: Some(kind),
        original,
        reasons,
    };
    let n = ctx.sent.len();
    let indexed = format!("{n} sent message{} indexed", if n == 1 { "" } else { "s" });
    // The sent mail this response is judged against: the days before it
    // arrived, where the index was read from a mailbox and the arrival is
    // known.
    let window = ctx
        .sent
        .window_days()
        .zip(arrived)
        .map(|(d, t)| Window::for_arrival(t, d));
    let w = window.as_ref();
    // "in your sent mail" where there is no window (files, or no
    // arrival), else the exact claim: among the sent mail of the days
    // before it arrived.
    let not_in = match ctx.sent.window_days().filter(|_| w.is_some()) {
        Some(d) => format!(
            "is not among your sent mail of the {} days before it arrived",
            Window::days_before(d)
        ),
        None => "is not in your sent mail".to_string(),
    };

    // Rule 1: the original's Message-ID.
    if let Some((SentMatch::MessageId { id, date }, src)) = candidate_ids
        .iter()
        .find_map(|(id, src)| ctx.sent.contains_id_in(id, w).map(|m| (m, *src)))
    {
        // The original is the candidate that matched (a report may quote
        // several IDs), so the verdict and its reason name the same one.
        original.message_id = Some(id.clone());
        original.message_id_source = Some(src.to_string());
        reasons.insert(
            0,
            format!(
                "decided by the original's Message-ID: {id} is in your sent mail{}",
                fmt_date(date)
            ),
        );
        return verdict(Decision::Legitimate, original, reasons);
    }
    if let Some(id) = original.message_id.clone().filter(|_| n > 0) {
        let date = original
            .date
            .as_deref()
            .and_then(mail_parser::DateTime::parse_rfc3339)
            .map(|d| d.to_timestamp());
        if let Some(c) =
            ctx.sent
                .corroborate_in(&original.recipients, original.subject.as_deref(), date, w)
        {
            reasons.insert(
                0,
                format!(
                    "decided by recipient and subject: {id} is not in your sent mail, but you sent a message to {} with the subject \"{}\"{} (the provider may have rewritten its Message-ID)",
                    c.address,
                    c.subject,
                    fmt_date(c.date)
                ),
            );
            return verdict(Decision::Legitimate, original, reasons);
        }
        let also = original
            .recipients
            .iter()
            .find_map(|r| ctx.sent.wrote_to_in(r, w))
            .map(|m| match m {
                SentMatch::Recipient { address, date } => format!(
                    "; you did write to {address}{}, but not this message",
                    fmt_date(date)
                ),
                _ => String::new(),
            })
            .unwrap_or_default();
        reasons.insert(
            0,
            format!("decided by the original's Message-ID: {id} {not_in} ({indexed}){also}"),
        );
        return backscatter(original, reasons, ctx, verdict);
    }

    // Rule 2: no original Message-ID: a recipient written to shortly
    // before the response, then a subject.
    // "Shortly before" counts back from the response's own `Date:`, except
    // where that is impossible: a response cannot be written more than a
    // day after it arrived (INTERNALDATE), so such a `Date:` is the
    // reporting MTA's clock running ahead, and the arrival counts instead,
    // against when the user's mail was saved in Sent.
    let (at, by_arrival) = match (dated, arrived) {
        (Some(d), Some(t)) if d > t + super::window::SKEW_SECS => (Some(t), true),
        _ => (dated, false),
    };
    let mut too_early: Option<(String, i64)> = None;
    let mut matched = None;
    for r in &original.recipients {
        match ctx.sent.wrote_to_before(r, at, by_arrival, w) {
            Ok(Some(m)) => {
                matched = Some(m);
                break;
            }
            Ok(None) => {}
            Err(d) => {
                too_early.get_or_insert((r.clone(), d));
            }
        }
    }
    let matched = matched.or_else(|| {
        original
            .subject
            .as_deref()
            .and_then(|s| ctx.sent.sent_subject_in(s, w))
    });
    if let Some(m) = matched {
        let why = match m {
            SentMatch::MessageId { id, date } => {
                format!("original {id} is in your sent mail{}", fmt_date(date))
            }
            SentMatch::Recipient { address, date } => format!(
                "decided by the recipient (no original Message-ID found): you wrote to {address}{}",
                fmt_date(date)
            ),
            SentMatch::Subject { subject } => format!(
                "decided by the subject (no original Message-ID found): you sent a message with the subject \"{subject}\""
            ),
        };
        reasons.insert(0, why);
        return verdict(Decision::Legitimate, original, reasons);
    }
    if let Some((r, d)) = too_early {
        reasons.insert(
            0,
            format!(
                "decided by the recipient (no original Message-ID found): you wrote to {r}, but not in the {} days before this response {} (last{}) ({indexed})",
                super::RESPONSE_WINDOW_SECS / 86_400,
                if by_arrival { "arrived" } else { "was dated" },
                fmt_date(Some(d))
            ),
        );
        return backscatter(original, reasons, ctx, verdict);
    }

    // Rule 3: nothing links it to the user's sent mail.
    let why = if n == 0 {
        "no sent mail to compare with: an automated response counts as backscatter".to_string()
    } else {
        match original.recipients.first() {
            Some(r) => {
                format!("original not identified, and you have not written to {r} ({indexed})")
            }
            None => format!("nothing in it links it to your sent mail ({indexed})"),
        }
    };
    reasons.insert(0, why);
    backscatter(original, reasons, ctx, verdict)
}

fn backscatter(
    original: Original,
    mut reasons: Vec<String>,
    ctx: &Context<'_>,
    verdict: impl Fn(Decision, Original, Vec<String>) -> Verdict,
) -> Verdict {
    if let (Some(from), false) = (&original.from, ctx.own_addresses.is_empty()) {
        if !ctx.own_addresses.iter().any(|a| a == from) {
            reasons.push(format!(
                "the original was from {from}, not one of your addresses"
            ));
        }
    }
    verdict(Decision::Backscatter, original, reasons)
}

#[cfg(test)]
mod tests {
    use crate::classify::{classify_at, Decision};
    use crate::sent::{SentIndex, SentMessage};
    use crate::Context;

    /// Hand-written (marked as such): a Postfix-style DSN for mail the user
    /// really sent to friend@remote.example, quoting only the original's
    /// From and To (no Message-ID, no subject), so the recipient rule
    /// decides; its own `Date:` is the reporting MTA's clock.
    fn dsn(date: &str) -> Vec<u8> {
        format!(
            "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.remote.example (Mail Delivery System)\r\nTo: alice@example.test\r\nSubject: Undelivered Mail Returned to Sender\r\nDate: {date}\r\nMessage-ID: <dsn-1@mx.remote.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n<friend@remote.example>: host said: 550 5.1.1 User unknown\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.remote.example\r\n\r\nFinal-Recipient: rfc822; friend@remote.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: alice@example.test\r\nTo: friend@remote.example\r\n\r\n--b--\r\n"
        )
        .into_bytes()
    }

    /// Newcomer round 4, fault 6 (in part): a real bounce from an MTA
    /// whose clock runs a year ahead went to quarantine although the user
    /// wrote to that recipient an hour before it arrived. A `Date:` more
    /// than a day after the arrival (INTERNALDATE) cannot be right, so the
    /// week then counts back from the arrival, against when the user's
    /// mail was saved in Sent. A `Date:` in the past is still used as it
    /// is (a clock running behind is not told apart from a response that
    /// sat in a queue).
    #[test]
    fn a_date_after_the_arrival_gives_way_to_the_arrival() {
        let sent_at = 1_796_040_000; // Mon, 30 Nov 2026 12:00:00 +0000
        let arrived = sent_at + 3600;
        let mut m = SentMessage::from_raw(
            b"From: alice@example.test\r\nTo: friend@remote.example\r\nSubject: Lunch on Friday\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <lunch-1@example.test>\r\n\r\nhi\r\n",
        )
        .unwrap();
        m.saved = Some(sent_at + 5);
        let mut sent = SentIndex::new();
        sent.insert(&m);
        sent.set_window_days(30);
        let ctx = Context {
            sent: &sent,
            own_addresses: &[],
        };
        let judge = |date: &str, at: Option<i64>| classify_at(&dsn(date), &ctx, at);
        let v = judge("Mon, 30 Nov 2026 13:00:00 +0000", Some(arrived));
        assert_eq!(v.verdict, Decision::Legitimate, "{:?}", v.reasons);
        let v = judge("Tue, 30 Nov 2027 13:00:00 +0000", Some(arrived));
        assert_eq!(
            v.verdict,
            Decision::Legitimate,
            "a year ahead: {:?}",
            v.reasons
        );
        // A file has only its Date: a year off is then too far.
        let v = judge("Tue, 30 Nov 2027 13:00:00 +0000", None);
        assert_eq!(v.verdict, Decision::Backscatter, "{:?}", v.reasons);
        assert!(v.reasons[0].contains("was dated"), "{:?}", v.reasons);
        // Dated ahead and arrived a month after the mail: still too late.
        let v = judge(
            "Tue, 30 Nov 2027 13:00:00 +0000",
            Some(sent_at + 30 * 86_400),
        );
        assert_eq!(v.verdict, Decision::Backscatter, "{:?}", v.reasons);
        assert!(v.reasons[0].contains("arrived"), "{:?}", v.reasons);
    }
}
