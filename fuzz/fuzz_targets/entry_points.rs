//! `entry_points.txt`: script entries always have a name, a module and an attribute.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(entry_points) = akpkg::install::parse_entry_points(text) {
        for entry_point in entry_points {
            assert!(!entry_point.name.is_empty(), "{entry_point:?}");
            assert!(!entry_point.module.is_empty(), "{entry_point:?}");
        }
    }
});
