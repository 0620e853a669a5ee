//! Pipelined commands (RFC 3501 section 5.5): several commands in flight on
//! one connection, their responses read as they come and filed by kind, so
//! that the sweep's next FETCH crosses the link while this batch is being
//! classified and moved, instead of after.
//!
//! Only commands whose order the server keeps and whose failure harms
//! nothing that follows are pipelined: UID FETCH, and UID MOVE (RFC 6851;
//! each journaled before it is sent). Never COPY + STORE + EXPUNGE, whose
//! later steps must not run when an earlier one failed.
//!
//! FETCH responses carry no tag: they are filed by UID and by what they
//! hold (the body from offset 0, the body from a later offset, the
//! structure), so the commands in flight must ask for disjoint UIDs or
//! different items. COPYUID codes (RFC 4315) are matched to the MOVE whose
//! completion follows them, and kept only when they name that MOVE's UIDs.

use super::{err, map_err, structure, CopyUid, ErrorKind, Imap, ImapError, ROUND_TRIPS};
use crate::skeleton::Part;
use async_imap::imap_proto::{AttributeValue, Response, Status};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

/// What a command in flight was.
#[derive(Debug, Clone)]
enum Cmd {
    Fetch,
    /// A UID MOVE of these source UIDs.
    Move(HashSet<u32>),
}

/// The first bytes of a message, as a prefix FETCH returned them.
#[derive(Debug, Clone, Default)]
pub struct Prefix {
    pub bytes: Vec<u8>,
    /// RFC822.SIZE, when the server sent it.
    pub size: Option<u32>,
    pub flags: Vec<String>,
}

/// Commands in flight on an [`Imap`] connection and what their responses
/// brought so far. Between uses of the pipeline, the connection must not be
/// used otherwise until [`Pipeline::drain`] returned.
#[derive(Debug, Default)]
pub struct Pipeline {
    pending: HashMap<String, (Cmd, String)>,
    finished: HashMap<String, Result<Option<CopyUid>, ImapError>>,
    /// The latest untagged COPYUID, for the MOVE that completes next.
    copyuid: Option<CopyUid>,
    /// Body bytes from offset 0, by UID.
    pub prefixes: HashMap<u32, Prefix>,
    /// Body bytes from a later offset, by UID.
    pub rests: HashMap<u32, Vec<u8>>,
    /// MIME structures, by UID.
    pub structures: HashMap<u32, Part>,
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

    /// Send `UID FETCH set (UID items)` without waiting.
    pub async fn fetch(
        &mut self,
        imap: &mut Imap,
        uids: &[u32],
        items: &str,
    ) -> Result<Tag, ImapError> {
        let command = format!("UID FETCH {} (UID {items})", super::uid_set(uids));
        self.send(imap, command, Cmd::Fetch, "fetch messages").await
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

    /// Outcomes of commands that completed, without waiting.
    pub fn take_finished(&mut self, tag: &Tag) -> Option<Result<Option<CopyUid>, ImapError>> {
        self.finished.remove(&tag.0)
    }

    /// Wait for every command in flight; their outcomes stay for
    /// [`Pipeline::take_finished`].
    pub async fn drain(&mut self, imap: &mut Imap) -> Result<(), ImapError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        ROUND_TRIPS.fetch_add(1, Ordering::Relaxed);
        while !self.pending.is_empty() {
            self.read_one(imap).await?;
        }
        Ok(())
    }

    /// Read and file one response.
    async fn read_one(&mut self, imap: &mut Imap) -> Result<(), ImapError> {
        let what = self
            .pending
            .values()
            .next()
            .map_or("read the server's answer".to_string(), |(_, w)| w.clone());
        let lost = || {
            err(
                ErrorKind::Lost,
                format!("the connection was lost while trying to {what}"),
            )
        };
        let r = match tokio::time::timeout(super::command_timeout(), imap.session.read_response())
            .await
        {
            Ok(Ok(Some(r))) => r,
            Ok(Ok(None)) => return Err(lost()),
            Ok(Err(e)) => return Err(map_err(&what, async_imap::error::Error::Io(e))),
            Err(_) => {
                return Err(err(
                    ErrorKind::Lost,
                    format!(
                        "the server did not answer within {} s while trying to {what}",
                        super::command_timeout().as_secs()
                    ),
                ))
            }
        };
        match r.parsed() {
            Response::Fetch(_, attrs) => self.file_fetch(attrs),
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
                        Cmd::Fetch => None,
                    })
                    .max()
                    .unwrap_or(0);
                if let Some(m) = outcome
                    .code
                    .as_ref()
                    .and_then(|c| CopyUid::from_code(c, max))
                {
                    self.copyuid = Some(m);
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
                let result = match status {
                    Status::Ok => Ok(match cmd {
                        Cmd::Fetch => None,
                        Cmd::Move(uids) => {
                            // MOVE sends COPYUID untagged before its
                            // expunges; a tagged one is taken too.
                            self.copyuid
                                .take()
                                .or_else(|| {
                                    outcome
                                        .code
                                        .as_ref()
                                        .and_then(|c| CopyUid::from_code(c, uids.len()))
                                })
                                .filter(|m| {
                                    m.pairs.len() <= uids.len()
                                        && m.pairs.iter().all(|(s, _)| uids.contains(s))
                                })
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

    fn file_fetch(&mut self, attrs: &[AttributeValue<'_>]) {
        let mut uid = None;
        let mut size = None;
        let mut flags = None;
        let mut body: Option<(u32, &[u8])> = None;
        let mut structure_part = None;
        for a in attrs {
            match a {
                AttributeValue::Uid(u) => uid = Some(*u),
                AttributeValue::Rfc822Size(s) => size = Some(*s),
                AttributeValue::Flags(f) => {
                    flags = Some(f.iter().map(|f| f.to_string()).collect::<Vec<_>>())
                }
                AttributeValue::BodySection {
                    section: None,
                    index,
                    data,
                } => body = Some((index.unwrap_or(0), data.as_deref().unwrap_or_default())),
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
    }
}
