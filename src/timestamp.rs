//! Build time, made deterministic: `SOURCE_DATE_EPOCH` and its RFC 3339 form.

/// 1980-01-01: the earliest time a zip holds, when nothing else gives a date.
const FALLBACK: u64 = 315_532_800;

/// `SOURCE_DATE_EPOCH`, else `from_inputs` (the date the pinned inputs give: a recipe's
/// release commit, a prefix's manifest), else 1980-01-01, for builds, layers and SBOMs alike.
/// Read once by the command and carried in its options: no stage reads the environment.
pub fn source_date_epoch(from_inputs: Option<u64>) -> u64 {
    resolve(
        std::env::var("SOURCE_DATE_EPOCH").ok().as_deref(),
        from_inputs,
    )
}

fn resolve(environment: Option<&str>, from_inputs: Option<u64>) -> u64 {
    environment
        .and_then(|value| value.trim().parse().ok())
        .or(from_inputs)
        .unwrap_or(FALLBACK)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (Howard Hinnant's civil-from-days algorithm).
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let seconds = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_environment_wins_then_the_inputs_then_1980() {
        assert_eq!(
            super::resolve(Some("1700000000"), Some(1_770_911_230)),
            1_700_000_000
        );
        assert_eq!(super::resolve(None, Some(1_770_911_230)), 1_770_911_230);
        assert_eq!(super::resolve(Some("not a number"), Some(7)), 7);
        assert_eq!(super::resolve(None, None), 315_532_800);
    }

    #[test]
    fn unix_times_become_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(315_532_800), "1980-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_922_745), "2026-11-29T03:25:45Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
