//! Wheel (zip) extraction into a temporary directory: never a panic, never a file outside it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    akpkg_fuzz::extract_wheel(bytes);
});
