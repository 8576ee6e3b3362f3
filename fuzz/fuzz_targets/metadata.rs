//! Core metadata and `WHEEL` files: headers, Requires-Dist, Requires-Python, Wheel-Version.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let headers = akpkg::metadata::parse_headers(text);
    // Headers are keyed in lower case, as lookups expect.
    assert!(headers.keys().all(|key| *key == key.to_ascii_lowercase()));
    let _ = akpkg::metadata::parse_dependency_metadata(text);
    let _ = akpkg::install::parse_wheel_info(text);
});
