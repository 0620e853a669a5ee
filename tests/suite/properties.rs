//! Never panics, whatever the bytes: arbitrary input and mutated real
//! messages (truncated, bytes flipped, lines duplicated, CR-only endings)
//! always get a verdict, and a non-automated verdict never carries a kind.

use crate::util::{cases, corpora};
use backscatter::{classify, Context, Decision, SentIndex};
use proptest::prelude::*;
use std::sync::LazyLock;

static SAMPLES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    corpora()
        .iter()
        .flat_map(|d| cases(d))
        .step_by(7)
        .map(|c| std::fs::read(c.eml).unwrap())
        .collect()
});

fn check(bytes: &[u8]) {
    let sent = SentIndex::new();
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    let v = classify(bytes, &ctx);
    // The origin analysis reads the same bytes (report, watch): evidence
    // or nothing, never a panic.
    if let Some(e) = backscatter::origin::evidence(bytes) {
        let _ = e.first_external();
    }
    if v.verdict == Decision::Normal {
        assert!(v.kind.is_none());
    } else {
        assert!(v.kind.is_some());
    }
    assert!(!v.reasons.is_empty(), "every verdict explains itself");
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    DuplicateRange(usize, usize),
    CrOnly,
    Delete(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        (
            any::<usize>(),
            prop::collection::vec(
                prop_oneof![
                    Just(b'\n'),
                    Just(b'\r'),
                    Just(b':'),
                    Just(b'-'),
                    Just(b'<'),
                    Just(b'='),
                    Just(0u8),
                    Just(0xff),
                    any::<u8>()
                ],
                0..64
            )
        )
            .prop_map(|(a, v)| Mutation::Insert(a, v)),
        (any::<usize>(), 0usize..4096).prop_map(|(a, n)| Mutation::DuplicateRange(a, n)),
        Just(Mutation::CrOnly),
        (any::<usize>(), 0usize..512).prop_map(|(a, n)| Mutation::Delete(a, n)),
    ]
}

fn apply(mut b: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let len = b.len().max(1);
    match m {
        Mutation::Truncate(at) => b.truncate(at % len),
        Mutation::Flip(at, v) => {
            if !b.is_empty() {
                let i = at % b.len();
                b[i] ^= v;
            }
        }
        Mutation::Insert(at, v) => {
            let i = at % len.min(b.len() + 1);
            b.splice(i..i, v.iter().copied());
        }
        Mutation::DuplicateRange(at, n) => {
            if !b.is_empty() {
                let s = at % b.len();
                let e = (s + n).min(b.len());
                let copy = b[s..e].to_vec();
                b.splice(e..e, copy);
            }
        }
        Mutation::CrOnly => {
            b.retain(|&c| c != b'\n');
        }
        Mutation::Delete(at, n) => {
            if !b.is_empty() {
                let s = at % b.len();
                let e = (s + n).min(b.len());
                b.drain(s..e);
            }
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_get_a_verdict(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        check(&bytes);
    }

    #[test]
    fn header_like_noise_gets_a_verdict(lines in prop::collection::vec("[A-Za-z-]{0,12}:[ -~]{0,80}", 0..40), body in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut b = lines.join("\r\n").into_bytes();
        b.extend_from_slice(b"\r\n\r\n");
        b.extend_from_slice(&body);
        check(&b);
    }

    #[test]
    fn quoted_header_noise_in_the_text_gets_a_verdict(lines in prop::collection::vec("(> ?|  )?(Received|Subject|DKIM-Signature|X-PHP-Script|[A-Za-z-]{0,8}):[ -~]{0,80}", 0..30)) {
        let mut b = b"From: MAILER-DAEMON@example.net\r\nSubject: failure notice\r\n\r\nHi. This is the qmail-send program.\r\n\r\n".to_vec();
        b.extend_from_slice(lines.join("\r\n").as_bytes());
        check(&b);
        for l in &lines {
            let _ = backscatter::origin::parse_received(l);
        }
    }

    #[test]
    fn mutated_real_messages_get_a_verdict(pick in any::<usize>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let mut b = SAMPLES[pick % SAMPLES.len()].clone();
        for m in &muts {
            b = apply(b, m);
        }
        check(&b);
    }
}

#[test]
fn huge_and_degenerate_inputs_get_a_verdict() {
    check(b"");
    check(b"\r\n\r\n");
    check(&[0u8; 100_000]);
    check(&vec![b'\r'; 100_000]);
    // A 20 MB message: only the first MAX_MESSAGE_BYTES are read.
    let mut big = SAMPLES[0].clone();
    big.extend(std::iter::repeat_n(b'A', 20 * 1024 * 1024));
    check(&big);
    // Deeply nested multiparts.
    let mut nested = Vec::new();
    for i in 0..2000 {
        nested.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                .as_bytes(),
        );
    }
    check(&nested);
    // One endless header line.
    let mut long = b"Subject: ".to_vec();
    long.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    check(&long);
}
