//! Wheel file names: parsing never panics, and a name that parses keeps its tags when it is
//! written back.
#![no_main]

use std::str::FromStr;

use akpkg::tags::WheelFilename;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|name: &str| {
    if let Ok(filename) = WheelFilename::from_str(name) {
        let tags = filename.tag_text();
        assert!(name.contains(&tags), "`{name}` parsed to tags `{tags}`");
    }
});
