//! Fuzz target for mirror-verify's message reader (src/verify/proto.rs):
//! arbitrary bytes, as a hostile side or comparing process sends them,
//! read message after message until the first refusal; each message read
//! must write back to bytes that read as the same message. It may refuse,
//! never panic, hang, or allocate more than a message's bounded entries.
//!
//! Run from the crate root: `cargo +nightly fuzz run verify_msg --
//! -max_total_time=600`.
#![no_main]

use hammer_mirror::verify::proto::{read_msg, write_msg};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    while let Ok(msg) = read_msg(&mut input) {
        let mut again = Vec::new();
        write_msg(&mut again, &msg).expect("write to a Vec");
        let back = read_msg(&mut &again[..]).expect("a message written reads back");
        assert_eq!(back, msg);
    }
});
