//! Tar extraction into a destination that already holds links out: never a file outside it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    akpkg_fuzz::extract_tar_into_linked_destination(bytes);
});
