//! The requirements.txt reader: any text gives a lock or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    akpkg_fuzz::parse_lock(
        akpkg::lock::LockFileKind::RequirementsTxt,
        "requirements.txt",
        text,
    );
});
