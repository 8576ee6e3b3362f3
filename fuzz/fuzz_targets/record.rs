//! RECORD files (CSV): any bytes give entries or an error, and every hash that parses can be
//! compared without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(entries) = akpkg::install::parse_record(bytes) {
        for entry in entries {
            assert!(
                !entry.path.is_empty(),
                "an entry without a path was accepted"
            );
        }
    }
});
