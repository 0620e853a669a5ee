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

/// A list message: `subject`, from `from`, with the list's headers (its
/// `-bounces` Return-Path, `List-Id`, `Precedence: list`), `extra` headers
/// and `body`.
fn list_message(from: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "Return-Path: <users-bounces@lists.example.org>\r\nFrom: {from}\r\nTo: users@lists.example.org\r\nSubject: =?utf-8?B?{}?=\r\nDate: Tue, 19 Jan 2010 10:12:00 -0500\r\nMessage-ID: <l1@example.net>\r\n{extra}List-Id: Users of the example project <users.lists.example.org>\r\nPrecedence: list\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        base64(subject.as_bytes())
    )
    .into_bytes()
}

/// Hand-written, shaped on real list archives (the Open MPI users list
/// carries Domino replies titled `[OMPI users] AUTO: <name> is out of the
/// office (returning <date>)`): an auto-reply sent to a list comes back to
/// every subscriber with the list's tag before the machine's prefix, and is
/// still an auto-reply, Domino's or an older Exchange's with no
/// Auto-Submitted. A person's answer about it (`[users] Re: AUTO: ...`,
/// `Re: [users] Automātiskā atbilde: ...`), quoting its text, stays normal.
#[test]
fn an_auto_reply_a_list_passed_on_is_one_and_talk_about_it_is_not() {
    let sent = SentIndex::new();
    let ctx = Context {
        sent: &sent,
        own_addresses: &[],
    };
    let notes = "I will be out of the office starting 01/18/2010 and will not return until\r\n01/25/2010.\r\n\r\nNote: This is an automated response to your message \"[users] build fails\r\non AIX\" sent on 1/19/10 9:57:30.\r\n\r\nThis is the only notification you will receive while this person is away.";
    let latvian = "Esmu atvaļinājumā līdz 25. janvārim.";
    let replies = [
        (
            "[users] AUTO: Jane Doe is out of the office (returning 01/25/2010)",
            "Jane Doe <jane.doe@example.com>",
            "In-Reply-To: <o1@example.org>\r\n",
            notes,
        ),
        (
            "[users] Automātiskā atbilde: build fails on AIX",
            "Janis Example <janis@example.lv>",
            "In-Reply-To: <o1@example.org>\r\n",
            latvian,
        ),
    ];
    for (subject, from, extra, body) in replies {
        let v = classify(&list_message(from, subject, extra, body), &ctx);
        assert_eq!(v.kind, Some(Kind::Autoreply), "{subject}: {:?}", v.reasons);
        assert_eq!(
            v.original
                .message_id
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("<o1@example.org>"),
            "{subject}"
        );
    }
    let quoted = |t: &str| {
        t.lines()
            .map(|l| format!("> {l}"))
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let talk = [
        (
            "[users] Re: AUTO: Jane Doe is out of the office (returning 01/25/2010)",
            notes,
        ),
        (
            "Re: [users] AUTO: Jane Doe is out of the office (returning 01/25/2010)",
            notes,
        ),
        (
            "Re: [users] Automātiskā atbilde: build fails on AIX",
            latvian,
        ),
    ];
    for (subject, body) in talk {
        let body = format!(
            "Could the list admins stop these?\r\n\r\nOn Jan 19, 2010, someone wrote:\r\n{}\r\n\r\nJeff",
            quoted(body)
        );
        let v = classify(
            &list_message(
                "Jeff Example <jeff@example.net>",
                subject,
                "In-Reply-To: <r1@example.com>\r\nReferences: <r1@example.com>\r\n",
                &body,
            ),
            &ctx,
        );
        assert_eq!(v.verdict, Decision::Normal, "{subject}: {:?}", v.reasons);
    }
}
