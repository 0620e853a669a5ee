//! Pipelined commands (RFC 3501 section 5.5): several commands in flight on
//! one connection, their responses read as they come and filed by kind, so
//! that the sweep's next FETCH crosses the link while this batch is being
//! classified and moved, instead of after.
//!
//! Only commands whose order the server keeps and whose failure harms
//! nothing that follows are pipelined: UID FETCH, UID SEARCH, STATUS,
//! UID MOVE (RFC 6851; each journaled before it is sent), and IDLE with
//! its `DONE` (RFC 2177: the agent ends IDLE and sends its next commands
//! in one flight, and starts IDLE again behind its MOVE). Never COPY +
//! STORE + EXPUNGE, whose later steps must not run when an earlier one
//! failed.
//!
//! FETCH responses carry no tag: they are filed by UID and by what they
//! hold (the body from offset 0, the body from a later offset, the whole
//! header, the structure), so the commands in flight must ask for disjoint UIDs or
//! different items. COPYUID codes (RFC 4315) are matched to a MOVE by the
//! source UIDs they name, never by the order they arrive in: Dovecot runs
//! pipelined commands side by side, and the untagged COPYUID of the next
//! MOVE often comes before the tagged completion of the one before it.

use super::{
    err, map_err, structure, CopyUid, ErrorKind, IdleOutcome, Imap, ImapError, ROUND_TRIPS,
};
use crate::skeleton::Part;
use async_imap::imap_proto::{
    AttributeValue, MailboxDatum, MessageSection, Response, SectionPath, Status, StatusAttribute,
};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// What a command in flight was.
#[derive(Debug, Clone)]
enum Cmd {
    Fetch,
    /// A UID MOVE of these source UIDs.
    Move(HashSet<u32>),
    /// A UID SEARCH (its `* SEARCH` reply is filed in [`Pipeline::found`]).
    Search,
    /// A STATUS of this mailbox (its name as sent, modified UTF-7).
    Status(String),
    /// IDLE (RFC 2177): completes after `DONE`.
    Idle,
}

/// The first bytes of a message, as a prefix FETCH returned them.
#[derive(Debug, Clone, Default)]
pub struct Prefix {
    pub bytes: Vec<u8>,
    /// RFC822.SIZE, when the server sent it.
    pub size: Option<u32>,
    pub flags: Vec<String>,
    /// INTERNALDATE (Unix seconds), when it was asked for and parses.
    pub arrived: Option<i64>,
}

/// Commands in flight on an [`Imap`] connection and what their responses
/// brought so far. Between uses of the pipeline, the connection must not be
/// used otherwise until [`Pipeline::drain`] returned.
#[derive(Debug, Default)]
pub struct Pipeline {
    pending: HashMap<String, (Cmd, String)>,
    finished: HashMap<String, Result<Option<CopyUid>, ImapError>>,
    /// Untagged COPYUIDs not yet matched to a MOVE's completion.
    copyuids: Vec<CopyUid>,
    /// Body bytes from offset 0, by UID.
    pub prefixes: HashMap<u32, Prefix>,
    /// Body bytes from a later offset, by UID.
    pub rests: HashMap<u32, Vec<u8>>,
    /// MIME structures, by UID.
    pub structures: HashMap<u32, Part>,
    /// Whole headers (`BODY[HEADER]`), by UID.
    pub headers: HashMap<u32, Vec<u8>>,
    /// Texts after the header (`BODY[TEXT]`), by UID.
    pub texts: HashMap<u32, Vec<u8>>,
    /// UIDs a UID SEARCH in flight returned.
    pub found: Vec<u32>,
    /// STATUS replies (RFC 3501 section 7.2.4), by mailbox name as sent:
    /// (UIDVALIDITY, UIDNEXT), 0 for an item the server left out.
    pub statuses: HashMap<String, (u32, u32)>,
    /// The IDLE in flight, if any.
    idle: Option<String>,
    /// The server's `+` continuation for that IDLE has arrived.
    idling: bool,
    /// An untagged EXISTS arrived (since [`Pipeline::take_news`]); `Some(true)`
    /// when it came while the server was IDLE (a push).
    news: Option<bool>,
}

/// A command sent, to wait for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Pipeline {
    pub fn new() -> Pipeline {
        Pipeline::default()
    }

    /// Are commands still in flight?
    pub fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Forget the data filed so far (bodies, structures, search results,
    /// statuses) and the outcomes not taken, keeping the commands in
    /// flight.
    pub fn clear_data(&mut self) {
        self.finished.clear();
        self.prefixes.clear();
        self.rests.clear();
        self.structures.clear();
        self.headers.clear();
        self.texts.clear();
        self.found.clear();
        self.statuses.clear();
    }

    /// Is an EXISTS waiting to be taken ([`Pipeline::take_news`])?
    pub fn has_news(&self) -> bool {
        self.news.is_some()
    }

    /// Send `UID FETCH set (UID items)` without waiting.
    pub async fn fetch(
        &mut self,
        imap: &mut Imap,
        uids: &[u32],
        items: &str,
    ) -> Result<Tag, ImapError> {
        self.fetch_set(imap, &super::uid_set(uids), items).await
    }

    /// Send `UID MOVE set dest` without waiting (the server must have
    /// MOVE: see [`Imap::uses_move`]).
    pub async fn move_to(
        &mut self,
        imap: &mut Imap,
        uids: &[u32],
        dest: &str,
    ) -> Result<Tag, ImapError> {
        let command = format!(
            "UID MOVE {} {}",
            super::uid_set(uids),
            super::quote_mailbox(&super::names::encode(dest))
        );
        let what = format!("move messages to \"{dest}\"");
        let cmd = Cmd::Move(uids.iter().copied().collect());
        self.send(imap, command, cmd, &what).await
    }

    /// Send `UID FETCH set (UID items)` for a UID set in IMAP syntax
    /// (`12:27`) without waiting.
    pub async fn fetch_set(
        &mut self,
        imap: &mut Imap,
        set: &str,
        items: &str,
    ) -> Result<Tag, ImapError> {
        let command = format!("UID FETCH {set} (UID {items})");
        self.send(imap, command, Cmd::Fetch, "fetch messages").await
    }

    /// Send `UID SEARCH criteria` without waiting; the UIDs it finds are
    /// added to [`Pipeline::found`].
    pub async fn search(&mut self, imap: &mut Imap, criteria: &str) -> Result<Tag, ImapError> {
        let command = format!("UID SEARCH {criteria}");
        self.send(imap, command, Cmd::Search, "search the mailbox")
            .await
    }

    /// Send `STATUS mailbox (UIDVALIDITY UIDNEXT)` (RFC 3501 section
    /// 6.3.10) for a mailbox (a resolved name, UTF-8) without waiting;
    /// the reply lands in [`Pipeline::statuses`] under [`Pipeline::status_key`].
    pub async fn status(&mut self, imap: &mut Imap, mailbox: &str) -> Result<Tag, ImapError> {
        let what = format!("look at mailbox \"{}\"", super::shown(mailbox));
        let wire = super::wire_name(mailbox, &what)?;
        let command = format!(
            "STATUS {} (UIDVALIDITY UIDNEXT)",
            super::quote_mailbox(&wire)
        );
        self.send(imap, command, Cmd::Status(wire), &what).await
    }

    /// The key of `mailbox` (a resolved name, UTF-8) in
    /// [`Pipeline::statuses`].
    pub fn status_key(mailbox: &str) -> String {
        super::names::encode(mailbox)
    }

    /// Send IDLE (RFC 2177) without waiting; [`Pipeline::wait_idle`] waits
    /// in it. Sent alone, the wait for the server's `+` is a round trip;
    /// behind other commands in flight, it comes with their answers.
    pub async fn idle(&mut self, imap: &mut Imap) -> Result<Tag, ImapError> {
        let alone = self.pending.is_empty();
        let tag = self
            .send(imap, "IDLE".to_string(), Cmd::Idle, "start IDLE")
            .await?;
        if alone {
            ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
        }
        self.idle = Some(tag.0.clone());
        self.idling = false;
        Ok(tag)
    }

    /// Is an IDLE in flight (sent, not yet ended by `DONE`)?
    pub fn in_idle(&self) -> bool {
        self.idle.is_some()
    }

    /// End the IDLE in flight: wait for the server's `+` if it has not
    /// come yet (`DONE` before it would be read as a command), then send
    /// `DONE` without waiting. The IDLE's completion is then waited for
    /// like any command's ([`Pipeline::drain`]); commands sent after this
    /// go in the same flight.
    pub async fn end_idle(&mut self, imap: &mut Imap) -> Result<Option<Tag>, ImapError> {
        let Some(tag) = self.idle.take() else {
            return Ok(None);
        };
        if !self.idling && self.pending.contains_key(&tag) {
            // Sent alone, its `+` was counted as a round trip then.
            while !self.idling && self.pending.contains_key(&tag) {
                self.read_one(imap).await?;
            }
        }
        if self.pending.contains_key(&tag) {
            super::timed("end IDLE", imap.session.run_command_untagged("DONE")).await?;
            ROUND_TRIPS.fetch_sub(1, Ordering::Relaxed);
        }
        self.idling = false;
        Ok(Some(Tag(tag)))
    }

    /// Did an untagged EXISTS arrive since the last call, and was it pushed
    /// during IDLE (`Some(true)`) or with a command's answer (`Some(false)`)?
    pub fn take_news(&mut self) -> Option<bool> {
        self.news.take()
    }

    /// Wait in the IDLE in flight ([`Pipeline::idle`]) until the server
    /// announces new mail (an EXISTS: [`IdleOutcome::NewData`], or
    /// [`IdleOutcome::Announced`] when it had come with an earlier answer),
    /// `max` passes ([`IdleOutcome::Refresh`]), nothing at all arrives for
    /// `silent` ([`IdleOutcome::Silent`]: servers send keepalives), or
    /// `stop` resolves ([`IdleOutcome::Stopped`]). Other responses (the
    /// answers of commands sent before the IDLE, EXPUNGE, flag changes) are
    /// filed as they come. The IDLE stays in flight: end it with
    /// [`Pipeline::end_idle`].
    pub async fn wait_idle(
        &mut self,
        imap: &mut Imap,
        max: Duration,
        silent: Duration,
        stop: impl Future<Output = ()>,
    ) -> Result<IdleOutcome, ImapError> {
        if self.idle.is_none() {
            return Err(err(
                ErrorKind::Protocol,
                "waited for new mail without an IDLE in flight",
            ));
        }
        let deadline = tokio::time::Instant::now() + max;
        tokio::pin!(stop);
        loop {
            match self.news.take() {
                Some(true) => return Ok(IdleOutcome::NewData),
                Some(false) => return Ok(IdleOutcome::Announced),
                None => {}
            }
            if self
                .idle
                .as_ref()
                .is_some_and(|t| !self.pending.contains_key(t))
            {
                // The server ended the IDLE by itself (a NO, or a BYE).
                let tag = Tag(self.idle.take().unwrap_or_default());
                self.idling = false;
                return match self.finished.remove(&tag.0) {
                    Some(Err(e)) => Err(e),
                    _ => Err(err(
                        ErrorKind::Lost,
                        "the server ended IDLE without being asked",
                    )),
                };
            }
            tokio::select! {
                r = tokio::time::timeout(silent, self.read_and_file(imap, "wait for new mail (IDLE)")) => match r {
                    Ok(r) => r?,
                    Err(_) => return Ok(IdleOutcome::Silent),
                },
                _ = tokio::time::sleep_until(deadline) => return Ok(IdleOutcome::Refresh),
                _ = &mut stop => return Ok(IdleOutcome::Stopped),
            }
        }
    }

    async fn send(
        &mut self,
        imap: &mut Imap,
        command: String,
        cmd: Cmd,
        what: &str,
    ) -> Result<Tag, ImapError> {
        let id = super::timed(what, imap.session.run_command(&command)).await?;
        // The flush counted a round trip; only a wait for an answer is one
        // (see `wait`).
        ROUND_TRIPS.fetch_sub(1, Ordering::Relaxed);
        self.pending.insert(id.0.clone(), (cmd, what.to_string()));
        Ok(Tag(id.0))
    }

    /// Wait until the command `tag` completed: its outcome (for a MOVE, the
    /// COPYUID mapping when the server sent one for exactly its UIDs).
    /// The outer error is the connection's (lost, timed out, garbled): no
    /// command on it can be trusted to complete then.
    pub async fn wait(
        &mut self,
        imap: &mut Imap,
        tag: &Tag,
    ) -> Result<Result<Option<CopyUid>, ImapError>, ImapError> {
        if !self.finished.contains_key(&tag.0) {
            if !self.pending.contains_key(&tag.0) {
                return Err(err(
                    ErrorKind::Protocol,
                    "a command was awaited that was never sent",
                ));
            }
            // The client now waits on the server: one round trip.
            ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
            while !self.finished.contains_key(&tag.0) {
                self.read_one(imap).await?;
            }
        }
        Ok(self.finished.remove(&tag.0).unwrap_or(Ok(None)))
    }

    /// [`Pipeline::wait`], unless `stop` is set first (it is looked at
    /// every 50 ms while the answer streams in): then `None`, with the
    /// command still in flight and part of its answer perhaps read, so
    /// that the connection is out of step and may only be dropped. For a
    /// FETCH whose data nobody will use once the user asked to stop.
    pub async fn wait_unless(
        &mut self,
        imap: &mut Imap,
        tag: &Tag,
        stop: &std::sync::atomic::AtomicBool,
    ) -> Result<Option<Result<Option<CopyUid>, ImapError>>, ImapError> {
        let stopped = async {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::select! {
            biased;
            () = stopped => Ok(None),
            r = self.wait(imap, tag) => r.map(Some),
        }
    }

    /// Outcomes of commands that completed, without waiting.
    pub fn take_finished(&mut self, tag: &Tag) -> Option<Result<Option<CopyUid>, ImapError>> {
        self.finished.remove(&tag.0)
    }

    /// Wait for every command in flight; their outcomes stay for
    /// [`Pipeline::take_finished`].
    /// An IDLE still in flight (not ended by [`Pipeline::end_idle`]) is
    /// not waited for.
    pub async fn drain(&mut self, imap: &mut Imap) -> Result<(), ImapError> {
        if !self.waiting() {
            return Ok(());
        }
        ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
        while self.waiting() {
            self.read_one(imap).await?;
        }
        Ok(())
    }

    /// Commands in flight other than an IDLE that has not been ended.
    fn waiting(&self) -> bool {
        self.pending
            .keys()
            .any(|t| self.idle.as_deref() != Some(t.as_str()))
    }

    /// Read and file one response.
    async fn read_one(&mut self, imap: &mut Imap) -> Result<(), ImapError> {
        let what = self
            .pending
            .values()
            .next()
            .map_or("read the server's answer".to_string(), |(_, w)| w.clone());
        tokio::time::timeout(super::command_timeout(), self.read_and_file(imap, &what))
            .await
            .map_err(|_| {
                err(
                    ErrorKind::Lost,
                    format!(
                        "the server did not answer within {} s while trying to {what}",
                        super::command_timeout().as_secs()
                    ),
                )
            })?
    }

    /// Read one response (no timeout: the caller's) and file it. Nothing
    /// is awaited between the two, so a caller that stops waiting loses no
    /// response.
    async fn read_and_file(&mut self, imap: &mut Imap, what: &str) -> Result<(), ImapError> {
        match imap.session.read_response().await {
            Ok(Some(r)) => self.file(r.parsed()),
            Ok(None) => Err(err(
                ErrorKind::Lost,
                format!("the connection was lost while trying to {what}"),
            )),
            Err(e) => Err(map_err(what, async_imap::error::Error::Io(e))),
        }
    }

    /// File one response: data by kind, a completion under its tag.
    fn file(&mut self, r: &Response<'_>) -> Result<(), ImapError> {
        let lost = || {
            err(
                ErrorKind::Lost,
                "the server ended the session (BYE)".to_string(),
            )
        };
        match r {
            Response::Fetch(_, attrs) => self.file_fetch(attrs),
            // The only continuation a pipelined command asks for.
            Response::Continue(_) if self.pending.values().any(|(c, _)| matches!(c, Cmd::Idle)) => {
                self.idling = true;
            }
            Response::MailboxData(MailboxDatum::Exists(_)) => {
                let pushed = self.idling || self.news == Some(true);
                self.news = Some(pushed);
            }
            Response::MailboxData(MailboxDatum::Search(uids)) => {
                self.found.extend(uids.iter().copied());
            }
            Response::MailboxData(MailboxDatum::Status { mailbox, status }) => {
                let name = super::unescape_listed(mailbox).into_owned();
                let mut v = (0, 0);
                for a in status {
                    match a {
                        StatusAttribute::UidValidity(u) => v.0 = *u,
                        StatusAttribute::UidNext(u) => v.1 = *u,
                        _ => {}
                    }
                }
                // Filed under the name as sent (a server may spell INBOX
                // in another case).
                let key = self
                    .pending
                    .values()
                    .find_map(|(c, _)| match c {
                        Cmd::Status(w) if w.eq_ignore_ascii_case(&name) => Some(w.clone()),
                        _ => None,
                    })
                    .unwrap_or(name);
                self.statuses.insert(key, v);
            }
            Response::Data {
                status: Status::Ok,
                outcome,
            } => {
                // No longer than the largest MOVE in flight.
                let max = self
                    .pending
                    .values()
                    .filter_map(|(c, _)| match c {
                        Cmd::Move(u) => Some(u.len()),
                        _ => None,
                    })
                    .max()
                    .unwrap_or(0);
                if let Some(m) = outcome
                    .code
                    .as_ref()
                    .and_then(|c| CopyUid::from_code(c, max))
                {
                    self.copyuids.push(m);
                }
            }
            Response::Data {
                status: Status::Bye,
                ..
            } => return Err(lost()),
            Response::Done {
                tag,
                status,
                outcome,
            } => {
                let Some((cmd, what)) = self.pending.remove(&tag.0) else {
                    return Ok(());
                };
                let text = outcome.information.as_deref().unwrap_or("").to_string();
                if matches!(cmd, Cmd::Idle) {
                    self.idling = false;
                }
                let result = match status {
                    Status::Ok => Ok(match cmd {
                        Cmd::Fetch | Cmd::Search | Cmd::Status(_) | Cmd::Idle => None,
                        Cmd::Move(uids) => {
                            // MOVE sends COPYUID untagged before its
                            // expunges; a tagged one is taken too.
                            let tagged = outcome
                                .code
                                .as_ref()
                                .and_then(|c| CopyUid::from_code(c, uids.len()));
                            self.take_copyuid(&uids, tagged)
                        }
                    }),
                    Status::No => Err(map_err(&what, async_imap::error::Error::No(text))),
                    _ => Err(map_err(&what, async_imap::error::Error::Bad(text))),
                };
                self.finished.insert(tag.0.clone(), result);
            }
            _ => {}
        }
        Ok(())
    }

    /// The COPYUID mapping of a completed MOVE of `uids`: the untagged
    /// COPYUIDs whose source UIDs are all among them (Dovecot sends one; a
    /// server may split a large move into several), merged, or else the
    /// tagged one. `None` when none names only these UIDs, or when the
    /// codes disagree on UIDVALIDITY or name a UID twice. COPYUIDs that fit
    /// no MOVE still in flight are dropped.
    fn take_copyuid(&mut self, uids: &HashSet<u32>, tagged: Option<CopyUid>) -> Option<CopyUid> {
        let within = |m: &CopyUid, uids: &HashSet<u32>| {
            !m.pairs.is_empty() && m.pairs.iter().all(|(s, _)| uids.contains(s))
        };
        let (mine, others): (Vec<CopyUid>, Vec<CopyUid>) = std::mem::take(&mut self.copyuids)
            .into_iter()
            .partition(|m| within(m, uids));
        self.copyuids = others
            .into_iter()
            .filter(|m| {
                self.pending.values().any(|(c, _)| match c {
                    Cmd::Move(u) => within(m, u),
                    _ => false,
                })
            })
            .collect();
        let mut parts = mine.into_iter();
        let Some(mut merged) = parts.next() else {
            return tagged.filter(|m| within(m, uids));
        };
        for m in parts {
            if m.uidvalidity != merged.uidvalidity {
                return None;
            }
            merged.pairs.extend(m.pairs);
        }
        let distinct: HashSet<u32> = merged.pairs.iter().map(|(s, _)| *s).collect();
        (distinct.len() == merged.pairs.len()).then_some(merged)
    }

    fn file_fetch(&mut self, attrs: &[AttributeValue<'_>]) {
        let mut uid = None;
        let mut size = None;
        let mut flags = None;
        let mut arrived = None;
        let mut body: Option<(u32, &[u8])> = None;
        let mut header: Option<&[u8]> = None;
        let mut text: Option<&[u8]> = None;
        let mut structure_part = None;
        for a in attrs {
            match a {
                AttributeValue::Uid(u) => uid = Some(*u),
                AttributeValue::Rfc822Size(s) => size = Some(*s),
                AttributeValue::InternalDate(d) => arrived = super::parse_date_time(d),
                AttributeValue::Flags(f) => {
                    flags = Some(f.iter().map(|f| f.to_string()).collect::<Vec<_>>())
                }
                AttributeValue::BodySection {
                    section: None,
                    index,
                    data,
                } => body = Some((index.unwrap_or(0), data.as_deref().unwrap_or_default())),
                AttributeValue::BodySection {
                    section: Some(SectionPath::Full(MessageSection::Header)),
                    data,
                    ..
                } => header = Some(data.as_deref().unwrap_or_default()),
                AttributeValue::BodySection {
                    section: Some(SectionPath::Full(MessageSection::Text)),
                    data,
                    ..
                } => text = Some(data.as_deref().unwrap_or_default()),
                AttributeValue::BodyStructure(bs) => structure_part = Some(structure::convert(bs)),
                _ => {}
            }
        }
        // A response without its UID is not ours to guess about.
        let Some(uid) = uid else { return };
        match body {
            Some((0, b)) => {
                self.prefixes.insert(
                    uid,
                    Prefix {
                        bytes: b.to_vec(),
                        size,
                        flags: flags.unwrap_or_default(),
                        arrived,
                    },
                );
            }
            Some((_, b)) => {
                self.rests.insert(uid, b.to_vec());
            }
            None => {}
        }
        if let Some(p) = structure_part {
            self.structures.insert(uid, p);
        }
        if let Some(h) = header {
            self.headers.insert(uid, h.to_vec());
        }
        if let Some(t) = text {
            self.texts.insert(uid, t.to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copyuid(validity: u32, pairs: &[(u32, u32)]) -> CopyUid {
        CopyUid {
            uidvalidity: validity,
            pairs: pairs.to_vec(),
        }
    }

    fn moving(p: &mut Pipeline, tag: &str, uids: &[u32]) -> HashSet<u32> {
        let set: HashSet<u32> = uids.iter().copied().collect();
        p.pending
            .insert(tag.into(), (Cmd::Move(set.clone()), "move".into()));
        set
    }

    /// Dovecot runs pipelined MOVEs side by side: the second MOVE's
    /// untagged COPYUID arrives before the first MOVE's tagged OK. Each
    /// MOVE must still get its own mapping (seen against Dovecot 2.3.19 in
    /// `cargo bench --bench sweep`, where half the moves lost theirs).
    #[test]
    fn copyuids_arriving_out_of_order_go_to_the_move_whose_uids_they_name() {
        let mut p = Pipeline::new();
        let first = moving(&mut p, "A1", &[1, 2, 3]);
        let second = moving(&mut p, "A2", &[7, 8]);
        p.copyuids.push(copyuid(9, &[(1, 101), (2, 102), (3, 103)]));
        p.copyuids.push(copyuid(9, &[(7, 104), (8, 105)]));
        p.pending.remove("A1");
        assert_eq!(
            p.take_copyuid(&first, None),
            Some(copyuid(9, &[(1, 101), (2, 102), (3, 103)]))
        );
        p.pending.remove("A2");
        assert_eq!(
            p.take_copyuid(&second, None),
            Some(copyuid(9, &[(7, 104), (8, 105)]))
        );
        assert!(p.copyuids.is_empty());
    }

    #[test]
    fn a_move_reported_in_several_copyuids_gets_them_merged() {
        let mut p = Pipeline::new();
        let set = moving(&mut p, "A1", &[1, 2, 3, 4]);
        p.copyuids.push(copyuid(9, &[(1, 11), (2, 12)]));
        p.copyuids.push(copyuid(9, &[(3, 13), (4, 14)]));
        p.pending.remove("A1");
        let m = p.take_copyuid(&set, None).expect("merged");
        assert_eq!(m.pairs, vec![(1, 11), (2, 12), (3, 13), (4, 14)]);
    }

    #[test]
    fn copyuids_naming_other_uids_or_disagreeing_are_not_taken() {
        let mut p = Pipeline::new();
        let set = moving(&mut p, "A1", &[1, 2]);
        // Names a UID this MOVE did not send and no MOVE in flight did.
        p.copyuids.push(copyuid(9, &[(1, 11), (5, 15)]));
        p.pending.remove("A1");
        assert_eq!(p.take_copyuid(&set, None), None);
        assert!(
            p.copyuids.is_empty(),
            "a COPYUID no MOVE in flight fits is dropped"
        );
        // Two codes with different UIDVALIDITY: no mapping to trust.
        let set = moving(&mut p, "A2", &[1, 2]);
        p.copyuids.push(copyuid(9, &[(1, 11)]));
        p.copyuids.push(copyuid(10, &[(2, 12)]));
        p.pending.remove("A2");
        assert_eq!(p.take_copyuid(&set, None), None);
        // The same source UID twice.
        let set = moving(&mut p, "A3", &[1, 2]);
        p.copyuids.push(copyuid(9, &[(1, 11)]));
        p.copyuids.push(copyuid(9, &[(1, 12)]));
        p.pending.remove("A3");
        assert_eq!(p.take_copyuid(&set, None), None);
    }

    #[test]
    fn a_tagged_copyuid_is_taken_when_no_untagged_one_came() {
        let mut p = Pipeline::new();
        let set = moving(&mut p, "A1", &[4, 5]);
        p.pending.remove("A1");
        let tagged = copyuid(3, &[(4, 1), (5, 2)]);
        assert_eq!(p.take_copyuid(&set, Some(tagged.clone())), Some(tagged));
        let set = moving(&mut p, "A2", &[4, 5]);
        p.pending.remove("A2");
        assert_eq!(p.take_copyuid(&set, Some(copyuid(3, &[(6, 1)]))), None);
    }

    /// A COPYUID for a MOVE still in flight stays for it when another MOVE
    /// completes first.
    #[test]
    fn a_copyuid_waits_for_its_own_move() {
        let mut p = Pipeline::new();
        let first = moving(&mut p, "A1", &[1]);
        let _second = moving(&mut p, "A2", &[2]);
        p.copyuids.push(copyuid(9, &[(2, 22)]));
        p.pending.remove("A1");
        assert_eq!(p.take_copyuid(&first, None), None);
        assert_eq!(p.copyuids.len(), 1);
    }
}
