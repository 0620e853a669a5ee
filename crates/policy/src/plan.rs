//! The sweep's fetch plan: what to download of each message so that the
//! verdict is exactly the one [`classify`](crate::classify::classify) gives
//! on the whole message file, in as few round trips and bytes as the server
//! allows.
//!
//! Pure: the IMAP layer fetches what [`after_prefix`] and
//! [`after_structure`] ask for; this module only decides.
//!
//! The plan, per batch of messages (one FETCH command each step):
//! 1. `RFC822.SIZE BODY.PEEK[]<0.PREFIX>` for every message. Most
//!    automated responses are smaller than [`PREFIX`]: they are then
//!    classified from their complete bytes, as a file would be.
//!    A header that does not end within the prefix (Microsoft 365 writes
//!    13-15 KB of them, `tests/corpus/sisimai/bsd/lhost-office365-*`) and
//!    shows no sign from the sending side in it is fetched whole first
//!    (`BODY.PEEK[HEADER]`, [`after_header`]), so that an ordinary message
//!    with such a header still costs only its header and prefix, not
//!    everything the classifier could read; its rest, if needed, is its
//!    text ([`TEXT_ITEM`]), so the header is not read twice.
//! 2. A longer message whose headers carry a sign from the sending side
//!    (the only kind [`classify`](crate::classify::classify) can call
//!    automated) gets the rest of what the classifier reads, up to
//!    [`WHOLE`] bytes: again exactly the classifier's input.
//! 3. A longer message with no such sign whose top-level type is
//!    `multipart/mixed` (where Exchange hides a re-wrapped report) gets its
//!    `BODYSTRUCTURE` checked; a report part in it, or a structure that
//!    cannot be read, sends it to step 2 (fetch more rather than guess).
//! 4. Everything else is ordinary mail: its verdict (`normal`) is settled
//!    from the prefix, and no more of it is downloaded.

use crate::classify::{may_be_automated, MAX_MESSAGE_BYTES};
use crate::fingerprint::Identity;
use crate::skeleton;

/// Bytes of every message fetched in step 1. Nine in ten messages of a real
/// flood are smaller (BENCHMARKS.md); ordinary mail costs at most this much.
pub const PREFIX: u32 = 8192;

/// Bytes of a message the classifier can read: its cap plus room for the
/// leading blank lines and mbox `From ` line it skips, so that the bytes
/// fetched reach as far into the message as a file read would.
pub const WHOLE: u32 = MAX_MESSAGE_BYTES as u32 + 4096;

/// What to do with a message after the prefix (step 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The bytes are the whole message (or all the classifier reads):
    /// classify them.
    Classify,
    /// Fetch the rest, from offset [`PREFIX`] up to [`WHOLE`], then classify.
    Rest,
    /// Fetch the `BODYSTRUCTURE` and decide with [`after_structure`].
    Structure,
    /// The header does not end within the bytes read: fetch all of it
    /// ([`HEADER_ITEM`]) and decide with [`after_header`].
    Header,
    /// Ordinary mail: classify the prefix (it says `normal`) and fetch no
    /// more.
    Settled,
}

/// Decide after step 1. `prefix` is what `BODY.PEEK[]<0.PREFIX>` returned;
/// `size` the message's `RFC822.SIZE` (octets), when the server sent it.
pub fn after_prefix(prefix: &[u8], size: Option<u32>) -> Next {
    let complete = match size {
        Some(s) => prefix.len() as u64 >= u64::from(s),
        None => prefix.len() < PREFIX as usize,
    };
    if complete {
        return Next::Classify;
    }
    let Some(end) = header_end(prefix) else {
        // Headers longer than the prefix: a sign from the sending side in
        // the part already read asks for the rest at once; otherwise the
        // whole header decides.
        return if may_be_automated(prefix) {
            Next::Rest
        } else {
            Next::Header
        };
    };
    by_header(&prefix[..end])
}

/// The fetch item for [`Next::Header`]: the message's whole header, with
/// the blank line that ends it (RFC 3501 section 6.4.5, `HEADER`).
pub const HEADER_ITEM: &str = "BODY.PEEK[HEADER]";

/// The fetch item for the rest of a message whose whole header was read
/// ([`HEADER_ITEM`]): its text, up to [`WHOLE`] bytes (RFC 3501 section
/// 6.4.5, `TEXT`: everything after the header's blank line). The header
/// and this text, cut at [`WHOLE`], are the message's first bytes as
/// `BODY[]<0.WHOLE>` gives them, without reading the header twice.
pub const TEXT_ITEM: &str = "BODY.PEEK[TEXT]<0.528384>";

/// Decide after [`Next::Header`]: `header` is the whole header the server
/// returned for [`HEADER_ITEM`]. [`Next::Rest`] when it carries a sign from
/// the sending side, [`Next::Structure`] when a report may hide in the
/// body, else [`Next::Settled`]: the header alone is then what is
/// classified (it says `normal`, as the whole message would).
pub fn after_header(header: &[u8]) -> Next {
    by_header(header)
}

fn by_header(header: &[u8]) -> Next {
    if may_be_automated(header) {
        Next::Rest
    } else if skeleton::may_hide_a_report(header) {
        Next::Structure
    } else {
        Next::Settled
    }
}

/// Decide after step 3: `structure` is the message's MIME structure, or
/// `None` when the server's `BODYSTRUCTURE` could not be read. Returns
/// [`Next::Rest`] or [`Next::Settled`].
pub fn after_structure(prefix: &[u8], structure: Option<&skeleton::Part>) -> Next {
    let (Some(root), Some(end)) = (structure, header_end(prefix)) else {
        return Next::Rest;
    };
    let bare = skeleton::build(&prefix[..end], root);
    if may_be_automated(&bare) {
        Next::Rest
    } else {
        Next::Settled
    }
}

/// The fetch item for step 2.
pub fn rest_item() -> String {
    rest_item_after(PREFIX)
}

/// The fetch item for step 2 after a first fetch of `offset` bytes: the
/// bytes from `offset` up to [`WHOLE`].
pub fn rest_item_after(offset: u32) -> String {
    format!("BODY.PEEK[]<{offset}.{}>", WHOLE.saturating_sub(offset))
}

/// Bytes of each newly arrived message `watch` fetches in its first (and
/// usually only) FETCH: all of nearly every automated response (the
/// largest of the corpora's 818 backscatter samples is 72 KB, 3 are over
/// 64 KB), so that one command gives the classifier its whole input;
/// [`after_prefix`] decides on these bytes as on [`PREFIX`] ones.
pub const ARRIVAL_PREFIX: u32 = 64 * 1024;

/// At most this many new messages are fetched with [`ARRIVAL_PREFIX`]
/// bytes at once (1 MB); more go through the sweep's plan.
pub const ARRIVAL_BATCH: u32 = 16;

/// The fetch items of `watch`'s first FETCH of new mail: size, flags
/// (for the message's [`Identity`]), INTERNALDATE (what the sent mail it
/// is judged against counts from, [`crate::sent::Window`]) and the first
/// [`ARRIVAL_PREFIX`] bytes.
pub fn arrival_items() -> String {
    format!("RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[]<0.{ARRIVAL_PREFIX}>")
}

/// The fetch items for step 1: size, INTERNALDATE (when the message
/// arrived: the sent mail it is judged against counts back from it,
/// [`crate::sent::Window`]) and the first [`PREFIX`] bytes.
pub fn prefix_items() -> String {
    format!("RFC822.SIZE INTERNALDATE BODY.PEEK[]<0.{PREFIX}>")
}

/// The fetch items of step 1 in `clean`'s pipelined sweep: those of
/// [`prefix_items`] (with INTERNALDATE) and the message's flags, so that what a move needs to
/// know of a message (its [`Identity`]: fingerprint, Message-ID, From,
/// List-Id, flags) comes with its bytes, without a fetch of its own.
pub fn sweep_prefix_items() -> String {
    format!("RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[]<0.{PREFIX}>")
}

/// A message's [`Identity`] from the first bytes of it that a sweep read
/// (`bytes`, from offset 0), its `RFC822.SIZE` and its flags: the same
/// fingerprint and fields as [`Identity::new`] gives on the server's
/// `HEADER.FIELDS` (which returns the very header lines). `None` when the
/// header does not end within `bytes` and `bytes` is not the whole message:
/// then the identity must be read from the server. `arrived` is 0 (the
/// sweep does not read INTERNALDATE).
pub fn identity(uid: u32, bytes: &[u8], size: u32, flags: Vec<String>) -> Option<Identity> {
    let end = match header_end(bytes) {
        Some(end) => end,
        None if bytes.len() as u64 >= u64::from(size) => bytes.len(),
        None => return None,
    };
    Some(Identity::new(uid, &bytes[..end], size, 0, flags))
}

/// Offset just past the blank line that ends the header, or `None` when it
/// is not in `b`.
fn header_end(b: &[u8]) -> Option<usize> {
    let crlf = memchr::memmem::find(b, b"\r\n\r\n").map(|i| i + 4);
    let lf = memchr::memmem::find(b, b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    // Hand-written messages, marked as such: the plan's real test is the
    // sweep equivalence test over the corpora (tests/suite/sweep.rs).
    use super::*;

    fn long(head: &str) -> Vec<u8> {
        let mut m = head.as_bytes().to_vec();
        m.extend(std::iter::repeat_n(b'x', PREFIX as usize));
        m.truncate(PREFIX as usize);
        m
    }

    #[test]
    fn small_messages_are_classified_whole() {
        let m = b"From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n";
        assert_eq!(after_prefix(m, Some(m.len() as u32)), Next::Classify);
        assert_eq!(after_prefix(m, None), Next::Classify);
    }

    #[test]
    fn long_messages_follow_their_headers() {
        let bounce = long("Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n");
        assert_eq!(after_prefix(&bounce, Some(100_000)), Next::Rest);
        let mixed = long("From: Kim <kim@example.net>\r\nSubject: the photos\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n");
        assert_eq!(after_prefix(&mixed, Some(100_000)), Next::Structure);
        let plain = long("From: Kim <kim@example.net>\r\nSubject: a long letter\r\nContent-Type: text/plain\r\n\r\n");
        assert_eq!(after_prefix(&plain, Some(100_000)), Next::Settled);
        let huge_header = long("X-Long: ");
        assert_eq!(after_prefix(&huge_header, Some(100_000)), Next::Header);
        // Exactly PREFIX bytes long is complete when the size says so.
        assert_eq!(after_prefix(&plain, Some(PREFIX)), Next::Classify);
    }

    #[test]
    fn an_arrival_fetch_reads_on_from_where_it_stopped() {
        // A 20 KB bounce: whole in watch's first fetch, so classified as
        // read; the sweep's 8 KB prefix would have needed its rest.
        let mut bounce = b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n".to_vec();
        bounce.resize(20_000, b'x');
        let size = Some(bounce.len() as u32);
        assert_eq!(after_prefix(&bounce, size), Next::Classify);
        assert_eq!(after_prefix(&bounce[..PREFIX as usize], size), Next::Rest);
        // Longer than the first fetch: the rest starts where it stopped
        // and ends where the classifier stops reading.
        assert_eq!(rest_item(), format!("BODY.PEEK[]<8192.{}>", WHOLE - 8192));
        assert_eq!(
            rest_item_after(ARRIVAL_PREFIX),
            format!("BODY.PEEK[]<65536.{}>", WHOLE - 65536)
        );
        assert!(arrival_items().ends_with("BODY.PEEK[]<0.65536>"));
    }

    /// Real Microsoft 365 headers (Sisimai's `lhost-office365-*`, 13-15 KB
    /// of header each) and a real person's message with a 15 KB header
    /// (`extra/list-talk`), all longer than the prefix. The bounces show a
    /// sign from the sending side within the prefix, so they ask for their
    /// rest at once (their whole header would say the same); the person's
    /// message shows none, so its whole header is fetched and settles it,
    /// whatever its body's length.
    #[test]
    fn a_header_longer_than_the_prefix_is_read_whole_and_decides() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let read = |p: &str| std::fs::read(root.join(p)).expect(p);
        for (path, first, then) in [
            (
                "tests/corpus/sisimai/bsd/lhost-office365-05.eml",
                Next::Rest,
                Next::Rest,
            ),
            (
                "tests/corpus/sisimai/bsd/lhost-office365-10.eml",
                Next::Rest,
                Next::Rest,
            ),
            (
                "tests/fixtures/extra/list-talk/person-quotes-mailman-bounce-notice.eml",
                Next::Header,
                Next::Settled,
            ),
        ] {
            let m = read(path);
            let end = header_end(&m).expect("a header that ends");
            assert!(end > PREFIX as usize, "{path}: {end}");
            // As if a 1 MB attachment followed.
            assert_eq!(
                after_prefix(&m[..PREFIX as usize], Some(1 << 20)),
                first,
                "{path}"
            );
            assert_eq!(after_header(&m[..end]), then, "{path}");
        }
    }

    #[test]
    fn the_text_item_reads_as_far_as_the_classifier() {
        assert_eq!(TEXT_ITEM, format!("BODY.PEEK[TEXT]<0.{WHOLE}>"));
    }

    #[test]
    fn an_unreadable_structure_fetches_more() {
        let mixed = long(
            "From: Kim <kim@example.net>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n",
        );
        assert_eq!(after_structure(&mixed, None), Next::Rest);
        let root = skeleton::Part {
            ctype: "multipart".into(),
            subtype: "mixed".into(),
            ..Default::default()
        };
        assert_eq!(after_structure(&mixed, Some(&root)), Next::Settled);
    }

    #[test]
    fn identity_from_the_prefix_is_the_header_fields_one() {
        let m = b"Received: by mx\r\nFrom: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered\r\n\tMail\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <a@mx.example.net>\r\nList-Id: <x.example.net>\r\n\r\nbody\r\n";
        // What HEADER.FIELDS (DATE FROM SUBJECT MESSAGE-ID LIST-ID) returns.
        let fields = b"From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered\r\n\tMail\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <a@mx.example.net>\r\nList-Id: <x.example.net>\r\n\r\n";
        let flags = vec!["\\Seen".to_string()];
        let want = Identity::new(7, fields, 9000, 0, flags.clone());
        assert_eq!(identity(7, m, 9000, flags.clone()), Some(want));
        // A header cut off by the prefix cannot be trusted...
        assert_eq!(identity(7, &m[..40], 9000, flags.clone()), None);
        // ...but a message without a body is all header.
        let bare = b"From: a@example.org\r\nSubject: x";
        assert_eq!(
            identity(1, bare, bare.len() as u32, Vec::new()).map(|i| i.from),
            Some(Some("a@example.org".to_string()))
        );
    }

    #[test]
    fn items() {
        assert_eq!(
            prefix_items(),
            "RFC822.SIZE INTERNALDATE BODY.PEEK[]<0.8192>"
        );
        assert_eq!(
            sweep_prefix_items(),
            "RFC822.SIZE FLAGS INTERNALDATE BODY.PEEK[]<0.8192>"
        );
        assert_eq!(
            rest_item(),
            format!("BODY.PEEK[]<8192.{}>", 512 * 1024 + 4096 - 8192)
        );
    }
}
