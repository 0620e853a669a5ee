//! The one error type of the network protocols (IMAP, ManageSieve): what
//! went wrong, as a [`ErrorKind`] the caller can act on (retry a lost
//! connection, stop on a refused login, report a missing mailbox), and one
//! sentence for the user that quotes the server's own words at most once
//! and never a secret.

use std::fmt;

/// A network failure, as one sentence for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetError {
    pub kind: ErrorKind,
    pub message: String,
}

/// What kind of failure, for the caller's decision (retry, stop, report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No TCP connection (refused, unreachable, timed out, wrong port).
    Connect,
    /// The TLS handshake or the certificate's verification failed.
    Tls,
    /// The server refused the login (wrong password or token), or would
    /// need plaintext off loopback.
    Auth,
    /// The server answered NO (a missing mailbox, a read-only one, a
    /// script it rejects, ...).
    No,
    /// The connection dropped or timed out.
    Lost,
    /// A mailbox the user named does not exist (LIST does not show it):
    /// a configuration problem, not worth retrying.
    Missing,
    /// The server sent something the protocol does not allow.
    Protocol,
    /// The server sent a response that is not valid IMAP (GNU Mailutils'
    /// BODYSTRUCTURE of an attached message, for one). async-imap drops
    /// the whole reply and stops reading the connection: it must be
    /// replaced (`Imap::reconnect`).
    Unparsable,
    /// The server lacks what the agent needs to move mail safely (neither
    /// MOVE nor UIDPLUS): retrying cannot help.
    Unsupported,
    /// The server refused a later step of a move (the `\Deleted` flag or
    /// the expunge after a COPY) and the copies could not be taken back:
    /// the move stays unfinished in the journal for the next run, which
    /// finishes it without copying again.
    Unfinished,
    /// The server refused for now (RFC 5530 `UNAVAILABLE`, `INUSE`,
    /// `LIMIT`, `SERVERBUG`: its authentication backend is down, the
    /// mailbox is locked, too many connections): worth retrying later,
    /// unlike a wrong password.
    Unavailable,
}

impl NetError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> NetError {
        NetError {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NetError {}

/// Callers whose own errors are still sentences take the sentence.
impl From<NetError> for String {
    fn from(e: NetError) -> String {
        e.message
    }
}
