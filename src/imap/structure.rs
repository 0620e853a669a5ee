//! Converting the server's `BODYSTRUCTURE` (imap-proto's types) into the
//! skeleton's own [`Part`] tree, numbering parts as IMAP does.

use crate::skeleton::{Envelope, Part};
use async_imap::imap_proto::{self, BodyStructure};

fn s(b: &Option<std::borrow::Cow<'_, [u8]>>) -> Option<String> {
    b.as_ref().map(|v| String::from_utf8_lossy(v).into_owned())
}

fn addrs(list: &Option<Vec<imap_proto::Address<'_>>>) -> Vec<String> {
    list.iter()
        .flatten()
        .filter_map(|a| {
            let m = a.mailbox.as_ref()?;
            let h = a.host.as_ref()?;
            Some(format!(
                "<{}@{}>",
                String::from_utf8_lossy(m),
                String::from_utf8_lossy(h)
            ))
        })
        .collect()
}

fn envelope(e: &imap_proto::Envelope<'_>) -> Envelope {
    Envelope {
        date: s(&e.date),
        subject: s(&e.subject),
        from: addrs(&e.from),
        to: addrs(&e.to),
        cc: addrs(&e.cc),
        in_reply_to: s(&e.in_reply_to),
        message_id: s(&e.message_id),
    }
}

fn encoding(e: &imap_proto::ContentEncoding<'_>) -> String {
    use imap_proto::ContentEncoding as E;
    match e {
        E::SevenBit => "7bit".into(),
        E::EightBit => "8bit".into(),
        E::Binary => "binary".into(),
        E::Base64 => "base64".into(),
        E::QuotedPrintable => "quoted-printable".into(),
        E::Other(o) => o.to_string(),
    }
}

fn common(c: &imap_proto::BodyContentCommon<'_>, p: &mut Part) {
    p.ctype = c.ty.ty.to_ascii_lowercase();
    p.subtype = c.ty.subtype.to_ascii_lowercase();
    p.params =
        c.ty.params
            .iter()
            .flatten()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
}

fn child_path(parent: &str, i: usize) -> String {
    if parent.is_empty() {
        (i + 1).to_string()
    } else {
        format!("{parent}.{}", i + 1)
    }
}

/// Convert a BODYSTRUCTURE. A single-part message's body is part "1".
pub fn convert(bs: &BodyStructure<'_>) -> Part {
    fn go(bs: &BodyStructure<'_>, path: String) -> Part {
        let mut p = Part {
            path: path.clone(),
            ..Part::default()
        };
        match bs {
            BodyStructure::Basic {
                common: c, other, ..
            }
            | BodyStructure::Text {
                common: c, other, ..
            } => {
                common(c, &mut p);
                p.encoding = encoding(&other.transfer_encoding);
                p.octets = other.octets;
            }
            BodyStructure::Message {
                common: c,
                other,
                envelope: e,
                ..
            } => {
                common(c, &mut p);
                p.encoding = encoding(&other.transfer_encoding);
                p.octets = other.octets;
                p.envelope = Some(envelope(e));
            }
            BodyStructure::Multipart {
                common: c, bodies, ..
            } => {
                common(c, &mut p);
                p.children = bodies
                    .iter()
                    .enumerate()
                    .map(|(i, b)| go(b, child_path(&path, i)))
                    .collect();
            }
        }
        p
    }
    match bs {
        BodyStructure::Multipart { .. } => go(bs, String::new()),
        _ => go(bs, "1".into()),
    }
}
