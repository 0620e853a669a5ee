//! Out-of-office replies in twelve languages.
//!
//! HAND-WRITTEN cases, not real messages: the real corpora hold auto-replies
//! in only a few languages (en, es, fr, pl, lv). Each case is shaped like the
//! out-of-office reply Exchange/Outlook sends (`Auto-Submitted:
//! auto-generated`, `X-Auto-Response-Suppress: All`, a localised subject
//! prefix), with a sentence in the language. The localised prefix at the
//! start of the subject is Exchange's own (people do not type it), so the
//! reply is recognised without the machine headers too; a person's reply
//! to it (`Re: Automatic reply: ...`) quoting the same sentence, with no
//! machine headers, must stay `normal`.

use backscatter::managesieve::base64;
use backscatter::{classify, Context, Decision, Kind, SentIndex};

const CASES: [(&str, &str, &str); 12] = [
    (
        "en",
        "Automatic reply: Budget",
        "I am out of the office until Monday.",
    ),
    (
        "de",
        "Automatische Antwort: Budget",
        "Ich bin derzeit abwesend.",
    ),
    (
        "fr",
        "Réponse automatique : Budget",
        "Je suis absent du bureau jusqu'au 3.",
    ),
    (
        "es",
        "Respuesta automática: Presupuesto",
        "Estoy fuera de la oficina.",
    ),
    (
        "it",
        "Risposta automatica: Bilancio",
        "Sarò assente dal 3 al 10.",
    ),
    (
        "pt",
        "Resposta automática: Orçamento",
        "Estou fora do escritório.",
    ),
    (
        "nl",
        "Automatisch antwoord: Begroting",
        "Ik ben afwezig tot en met vrijdag.",
    ),
    (
        "pl",
        "Automatyczna odpowiedź: Budżet",
        "Jestem poza biurem.",
    ),
    ("sv", "Automatiskt svar: Budget", "Jag är inte på kontoret."),
    (
        "ru",
        "Автоматический ответ: Бюджет",
        "Отсутствую на рабочем месте.",
    ),
    ("ja", "自動応答: 予算", "不在にしております。"),
    ("zh", "自动答复: 预算", "我不在办公室。"),
];

fn message(subject: &str, body: &str, machine: bool) -> Vec<u8> {
    let mut m = String::new();
    m.push_str("From: Kim Example <kim@example.net>\r\nTo: me@example.org\r\n");
    // RFC 2047 so that the subject survives any transport; the parser decodes it.
    m.push_str(&format!(
        "Subject: =?utf-8?B?{}?=\r\n",
        base64(subject.as_bytes())
    ));
    m.push_str("Message-ID: <r1@example.net>\r\nIn-Reply-To: <o1@example.org>\r\n");
    if machine {
        m.push_str("Auto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\n");
    }
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    m.push_str(body);
    m.push_str("\r\n");
    m.into_bytes()
}

#[test]
fn out_of_office_in_twelve_languages() {
    let sent = SentIndex::new();
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    for (lang, subject, body) in CASES {
        let v = classify(&message(subject, body, true), &ctx);
        assert_eq!(v.kind, Some(Kind::Autoreply), "{lang}: {:?}", v.reasons);
        assert_eq!(v.verdict, Decision::Backscatter, "{lang}");
        assert_eq!(
            v.original
                .message_id
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("<o1@example.org>")
        );
        // Older Exchange: the prefix, no Auto-Submitted or vendor header.
        let v = classify(&message(subject, body, false), &ctx);
        assert_eq!(
            v.kind,
            Some(Kind::Autoreply),
            "{lang}, no headers: {:?}",
            v.reasons
        );
        let v = classify(&message(&format!("Re: {subject}"), body, false), &ctx);
        assert_eq!(
            v.verdict,
            Decision::Normal,
            "{lang}, from a person: {:?}",
            v.reasons
        );
    }
}

/// The auto-replier is someone the user wrote to. Without an original
/// Message-ID that is the evidence that decides; with a foreign one
/// (`In-Reply-To` names a message the user never sent) it is not: floods
/// forge mail to the very people the user writes to.
#[test]
fn the_auto_replier_is_someone_you_wrote_to() {
    let mut sent = SentIndex::new();
    sent.insert(&backscatter::SentMessage {
        message_id: "<other@example.org>".parse().ok(),
        recipients: vec!["kim@example.net".into()],
        subject: Some("Something else entirely".into()),
        date: Some(1_790_000_000),
        ..Default::default()
    });
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    let with_id = message(CASES[1].1, CASES[1].2, true);
    let v = classify(&with_id, &ctx);
    assert_eq!(v.verdict, Decision::Backscatter, "{:?}", v.reasons);
    assert!(
        v.reasons[0].starts_with("decided by the original's Message-ID")
            && v.reasons[0].contains("you did write to kim@example.net"),
        "{:?}",
        v.reasons
    );
    let without_id = String::from_utf8(with_id)
        .unwrap()
        .replace("In-Reply-To: <o1@example.org>\r\n", "");
    let v = classify(without_id.as_bytes(), &ctx);
    assert_eq!(v.verdict, Decision::Legitimate, "{:?}", v.reasons);
    assert!(
        v.reasons[0].starts_with("decided by the recipient")
            && v.reasons[0].contains("you wrote to kim@example.net"),
        "{:?}",
        v.reasons
    );
}

/// Hand-written: a newsletter (or any mail an Exchange server or bulk
/// mailer sent) carrying `X-Auto-Response-Suppress: All` and `Precedence:
/// bulk` is not an automated response. Those headers are weak hints: the
/// lexicon marks X-Auto-Response-Suppress `weak`, so it no longer counts
/// as an auto-reply vendor header (it did, and quarantined such mail).
#[test]
fn bulk_mail_with_weak_hints_only_is_ordinary() {
    let sent = SentIndex::new();
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    for suppress in ["All", "OOF", "DR, RN, NRN, OOF, AutoReply"] {
        let m = format!(
            "From: News <news@shop.example>\r\nTo: me@example.org\r\nSubject: Our November deals\r\nMessage-ID: <n1@shop.example>\r\nX-Auto-Response-Suppress: {suppress}\r\nPrecedence: bulk\r\nContent-Type: text/plain\r\n\r\nBig deals this week.\r\n"
        );
        let v = classify(m.as_bytes(), &ctx);
        assert_eq!(v.verdict, Decision::Normal, "{suppress}: {:?}", v.reasons);
    }
}

/// Hand-written ordinary mail that looks machine-made
/// (`tests/fixtures/handwritten-ham/`): every message is `normal`.
#[test]
fn machine_looking_ordinary_mail_is_normal() {
    let sent = SentIndex::new();
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    let dir = crate::util::root().join("tests/fixtures/handwritten-ham");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "eml") {
            let v = classify(&std::fs::read(&p).unwrap(), &ctx);
            assert_eq!(
                v.verdict,
                Decision::Normal,
                "{}: {:?}",
                p.display(),
                v.reasons
            );
            n += 1;
        }
    }
    assert!(n >= 8);
}
