//! Fuzz target for a chain's manifest (src/chain/manifest.rs), which comes
//! from a bucket anyone with its keys may write: arbitrary bytes parse or
//! are refused, never panic; a manifest accepted names only objects of its
//! own uuid in TID order, with sizes no object can exceed (so their sum
//! cannot wrap), and writes back to bytes that parse the same.
//!
//! Run from the crate root: `cargo +nightly fuzz run chain_manifest --
//! -max_total_time=600`.
#![no_main]

use hammer_mirror::chain::manifest::{object_name, Manifest, OBJECT_LIMIT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Manifest::parse(data) else {
        return;
    };
    let spans = m.spans();
    let mut total: u64 = 0;
    for (o, s) in m.objects.iter().zip(&spans) {
        assert_eq!(o.name, object_name(&m.shared_uuid, *s, o.zstd));
        assert!(s.beg <= s.end);
        assert!(o.size <= OBJECT_LIMIT);
        total = total.checked_add(o.size).expect("sizes that wrap");
    }
    for w in spans.windows(2) {
        assert_eq!(w[0].end + 1, w[1].beg);
    }
    let back = Manifest::parse(&m.to_json()).expect("a manifest written reads back");
    assert_eq!(back, m);
});
