#![no_main]
//! `cargo fuzz run npz`: see fuzz/README.md and `funnel::fuzzing::npz`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // errors are fine (bad input is refused); only a panic, a hang or a huge allocation is a bug
    let _ = funnel::fuzzing::npz(data);
});
