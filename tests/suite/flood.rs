//! A flood of real automated responses for sweep tests: the test kit's
//! flood (`backscatter_testkit::flood`: the corpora cycled with fresh outer
//! Message-IDs, every third attached original in a Sent folder) with the
//! decision the classifier takes on each whole message as the expectation.
//! The kit's helpers are re-exported under their old names
//! (`crate::flood::with_message_id`, `crate::flood::id_of`).

use backscatter::{classify, Context, Decision, SentIndex, SentMessage};
pub use backscatter_testkit::flood::{id_of, with_message_id};

/// A flood whose expectations are the classifier's decisions.
pub type Flood = backscatter_testkit::flood::Flood<Decision>;

/// `n` messages cycled from the corpora, every third attached original in
/// Sent, each expected to get the classifier's decision on the whole
/// message against an index of that Sent folder.
pub fn flood(n: usize) -> Flood {
    let f = backscatter_testkit::flood::Flood::build(n);
    let mut index = SentIndex::new();
    for s in &f.sent {
        index.insert(&SentMessage::from_raw(s).unwrap());
    }
    let ctx = Context {
        sent: &index,
        own_addresses: &[],
    };
    f.judged(|m| classify(m, &ctx).verdict)
}

/// The first `n` messages of the flood's inbox expected to be backscatter
/// (fewer when the flood has fewer).
pub fn forged(f: &Flood, n: usize) -> Vec<Vec<u8>> {
    f.inbox
        .iter()
        .filter(|m| f.expected[&id_of(m)] == Decision::Backscatter)
        .take(n)
        .cloned()
        .collect()
}
