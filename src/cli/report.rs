//! `backscatter report`: read the quarantine mailbox and the legitimate
//! automated responses of a mailbox, and print the flood report (text,
//! `--json`, `--html FILE`). The shell around `report` (pure): IMAP
//! fetches, the journal, output.

use super::common::{account, clean_error, load_config, parse_date, runtime, secret};
use super::Error;
use crate::classify::{Context, Decision, Kind};
use crate::clean::{self, Dirs};
use crate::config::Account;
use crate::imap::{self, Imap, ImapError};
use crate::journal;
use crate::report::{self, Record};
use crate::sent::SentIndex;
use clap::Args;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Messages fetched whole per command.
const CHUNK: usize = 200;

/// Report on the flood: how bad, whether it is over, where it comes from.
///
/// Reads the quarantine mailbox (what backscatter moved there; the journal
/// adds the kind recorded at the move) and the automated responses kept in
/// the mailbox (default INBOX) as legitimate, then shows:
///
///   - messages per hour (or day) of your time zone as a bar chart, when
///     the flood began (the surge's first message) and whether it is still
///     going on; times are local, with their offset from UTC;
///
///   - counts per kind, language and reporting MTA family; the top
///     failed-recipient domains and the subjects of the forged originals;
///
///   - the origin: a joe job (your address forged on mail sent from
///     elsewhere) or your own server sending spam (the originals passed
///     through one of your outbound hosts, or carry your DKIM signature:
///     a compromised account, web form or script). Outbound hosts are
///     learned from your real bounces, or set as outbound-hosts in the
///     account's config;
///
///   - your real delivery problems: the bounces of mail you did send.
///
/// Nothing is moved, changed or sent.
///
/// Examples:
///
///   backscatter report
///
///   backscatter report --since 2026-11-20 --html flood.html   # the page only
///
///   backscatter report --json | jq .by_kind
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ReportArgs {
    /// The account (default: the one with default = true, or the only one).
    #[arg(long)]
    pub account: Option<String>,
    /// The mailbox whose legitimate automated responses are listed.
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Only messages received on or after this day: YYYY-MM-DD, today or
    /// yesterday, a day of your time zone (TZ, else the system's), from
    /// its local midnight. Times in the text and HTML report are in that
    /// zone too, with its offset; --json gives Unix seconds.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Print the report as one JSON object (quarantined, by_kind, timeline,
    /// origin, delivery_problems, ...).
    #[arg(long)]
    pub json: bool,
    /// Write the report as one self-contained HTML page (charts as inline
    /// SVG, nothing loaded from elsewhere), readable by you alone (mode
    /// 0600), instead of printing it; add --text or --json to print it too.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// With --html: print the text report as well.
    #[arg(long, requires = "html", conflicts_with = "json")]
    pub text: bool,
}

pub fn run(args: ReportArgs, config: Option<&Path>) -> Result<ExitCode, Error> {
    let cfg = load_config(config)?;
    let a = account(&cfg, args.account.as_deref())?.clone();
    let since = args.since.as_deref().map(parse_date).transpose()?;
    let secret = secret(&a)?;
    let dirs = Dirs::platform().map_err(|e| Error::Runtime(e.to_string()))?;
    let entries = journal::read(&journal::path_for(&dirs.data, &a.name)).map_err(|e| {
        Error::Runtime(format!(
            "cannot read the journal of account \"{}\": {e}",
            a.name
        ))
    })?;
    // The kind recorded when each message was moved, by Message-ID.
    let kinds: HashMap<String, Kind> = journal::quarantined(&entries)
        .into_iter()
        .filter_map(|e| Some((e.message_id?.to_ascii_lowercase(), e.kind?)))
        .collect();
    let rt = runtime()?;
    let (quarantined, legitimate) = rt
        .block_on(gather(&a, &secret, &dirs, &args.mailbox, since, &kinds))
        .map_err(clean_error)?;
    let r = report::build(
        &a.name,
        &quarantined,
        &legitimate,
        &a.addresses,
        &a.outbound_hosts,
        crate::clock::now(),
        crate::clock::zone(),
    );
    if let Some(path) = &args.html {
        let page = r.html().map_err(Error::Runtime)?;
        crate::paths::write_private(path, page.as_bytes())
            .map_err(|e| Error::Runtime(format!("cannot write {}: {e}", path.display())))?;
    }
    // The page is the report asked for; the text only when asked too.
    if args.json || args.text || args.html.is_none() {
        super::print(&r, args.json)?;
    }
    if let (false, Some(path)) = (args.json, &args.html) {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{}HTML report written to {}.",
            if args.text { "\n" } else { "" },
            path.display()
        )
        .map_err(super::output_error)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The search for `--since` (the first instant of the user's day): the
/// server compares days in a zone of its choosing, so it is asked for a day early
/// ([`crate::day::search_since`]) and [`wanted`] drops what came before.
fn search_query(since: Option<i64>) -> String {
    since.map_or_else(
        || "ALL".to_string(),
        |s| format!("SINCE {}", imap::imap_date(crate::day::search_since(s))),
    )
}

/// Did a message that arrived at `ts` (INTERNALDATE, Unix seconds; 0 when
/// the server gave none, kept) come on or after `since`?
fn wanted(since: Option<i64>, ts: i64) -> bool {
    ts == 0 || since.is_none_or(|s| ts >= s)
}

fn message_id(raw: &[u8]) -> Option<String> {
    mail_parser::MessageParser::new()
        .parse_headers(raw)
        .and_then(|m| {
            m.message_id()
                .map(|id| format!("<{}>", id.to_ascii_lowercase()))
        })
}

/// Read whole messages, [`CHUNK`] at a time (so that memory stays bounded
/// whatever the mailbox holds), into records: `read` gets the bytes and
/// the INTERNALDATE (Unix seconds; 0 when missing).
async fn read_whole(
    imap: &mut Imap,
    uids: &[u32],
    mut read: impl FnMut(&[u8], i64),
) -> Result<(), ImapError> {
    for chunk in uids.chunks(CHUNK) {
        for f in imap
            .uid_fetch(chunk, "(UID INTERNALDATE BODY.PEEK[])")
            .await?
        {
            if let Some(body) = f.body() {
                read(body, f.internal_date.unwrap_or(0));
            }
        }
    }
    Ok(())
}

/// The quarantined responses, and the legitimate ones kept in `mailbox`.
async fn gather(
    a: &Account,
    secret: &crate::secret::Secret,
    dirs: &Dirs,
    mailbox: &str,
    since: Option<i64>,
    kinds: &HashMap<String, Kind>,
) -> Result<(Vec<Record>, Vec<Record>), clean::CleanError> {
    crate::lexicon::prefer_speed();
    let mut imap = imap::connect(a, secret).await?;
    // Every name as this server spells it (namespace, delimiter).
    let a = &imap.resolve_account(a);
    let mailbox = &imap.resolve(mailbox);
    let (sent, _) = clean::sent_index(&mut imap, a, dirs).await?;
    let ctx = Context {
        sent: &sent,
        own_addresses: &a.addresses,
    };
    let exists = imap.list().await?.iter().any(|m| m.name == a.quarantine);
    let mut quarantined = Vec::new();
    if exists {
        imap.examine(&a.quarantine).await?;
        let uids = imap.uid_search(&search_query(since)).await?;
        let empty = SentIndex::new();
        let plain = Context {
            sent: &empty,
            own_addresses: &a.addresses,
        };
        read_whole(&mut imap, &uids, |raw, ts| {
            if !wanted(since, ts) {
                return;
            }
            let kind = message_id(raw).and_then(|id| kinds.get(&id).copied());
            quarantined.push(Record::read(raw, ts, &plain, kind));
        })
        .await?;
    }
    // The mailbox: headers first, whole messages only where a machine may
    // have written them.
    imap.open_named(mailbox, true).await?;
    let uids = imap.uid_search(&search_query(since)).await?;
    let mut candidates = Vec::new();
    for chunk in uids.chunks(1000) {
        for f in imap.uid_fetch(chunk, "(UID BODY.PEEK[HEADER])").await? {
            if let (Some(uid), Some(h)) = (f.uid, f.header()) {
                if crate::classify::may_be_automated(h) {
                    candidates.push(uid);
                }
            }
        }
    }
    let mut legitimate = Vec::new();
    read_whole(&mut imap, &candidates, |raw, ts| {
        if !wanted(since, ts) {
            return;
        }
        let r = Record::read(raw, ts, &ctx, None);
        if r.decision == Decision::Legitimate {
            legitimate.push(r);
        }
    })
    .await?;
    imap.logout().await;
    Ok((quarantined, legitimate))
}
