//! Sdist and git archive (tar) extraction: never a panic, never a file outside the destination.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    akpkg_fuzz::extract_tar(bytes);
});
