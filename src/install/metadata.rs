//! The small text files of a `.dist-info` directory that the installer reads: `WHEEL` and
//! `METADATA` (email-header style) and `entry_points.txt` (INI style).

/// What `WHEEL` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelInfo {
    pub wheel_version: (u32, u32),
    pub root_is_purelib: bool,
}

pub fn parse_wheel_info(text: &str) -> Result<WheelInfo, String> {
    let headers = crate::metadata::parse_headers(text);
    let first = |key: &str| headers.get(key).and_then(|values| values.first());
    let version_text = first("wheel-version").ok_or("WHEEL has no Wheel-Version")?;
    let (major, minor) = version_text
        .split_once('.')
        .and_then(|(major, minor)| Some((major.parse().ok()?, minor.parse().ok()?)))
        .ok_or_else(|| format!("WHEEL has an invalid Wheel-Version `{version_text}`"))?;
    let root_is_purelib = match first("root-is-purelib").map(|value| value.to_ascii_lowercase()) {
        Some(value) if value == "true" => true,
        Some(value) if value == "false" => false,
        Some(value) => return Err(format!("WHEEL has an invalid Root-Is-Purelib `{value}`")),
        None => return Err("WHEEL has no Root-Is-Purelib".to_string()),
    };
    Ok(WheelInfo {
        wheel_version: (major, minor),
        root_is_purelib,
    })
}

/// A `console_scripts` or `gui_scripts` entry: `name = module:attribute.path [extras]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPoint {
    pub name: String,
    pub module: String,
    /// `attribute.path`, possibly dotted.
    pub attribute: String,
    pub gui: bool,
}

/// Read the script sections of `entry_points.txt`.
pub fn parse_entry_points(text: &str) -> Result<Vec<EntryPoint>, (String, &'static str)> {
    let mut section = String::new();
    let mut entry_points = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = name.trim().to_string();
            continue;
        }
        let gui = match section.as_str() {
            "console_scripts" => false,
            "gui_scripts" => true,
            _ => continue,
        };
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| (line.to_string(), "expected `name = module:attribute`"))?;
        let name = name.trim();
        // The name becomes a file in bin/: nothing that could leave the directory.
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err((
                line.to_string(),
                "the script name must be a plain file name",
            ));
        }
        // Extras (`[extra]`) only matter to installers that resolve; drop them.
        let target = value.split('[').next().unwrap_or_default().trim();
        // A script calls something: `module:attribute` is required.
        let (module, attribute) = target
            .split_once(':')
            .map(|(module, attribute)| (module.trim(), attribute.trim()))
            .ok_or_else(|| (line.to_string(), "a script needs `module:attribute`"))?;
        let is_dotted_name = |text: &str| {
            !text.is_empty()
                && text.split('.').all(|part| {
                    part.chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_')
                        && part.chars().all(|c| c.is_alphanumeric() || c == '_')
                })
        };
        if !is_dotted_name(module) || !is_dotted_name(attribute) {
            return Err((
                line.to_string(),
                "the object reference must be `module:attribute` with Python identifiers",
            ));
        }
        entry_points.push(EntryPoint {
            name: name.to_string(),
            module: module.to_string(),
            attribute: attribute.to_string(),
            gui,
        });
    }
    Ok(entry_points)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_files_parse() {
        let info = parse_wheel_info(
            "Wheel-Version: 1.0\nGenerator: x\nRoot-Is-Purelib: false\nTag: py3-none-any\n",
        )
        .unwrap();
        assert_eq!(
            info,
            WheelInfo {
                wheel_version: (1, 0),
                root_is_purelib: false
            }
        );
        assert!(
            parse_wheel_info("Root-Is-Purelib: true\n")
                .unwrap_err()
                .contains("no Wheel-Version")
        );
        assert!(
            parse_wheel_info("Wheel-Version: one\nRoot-Is-Purelib: true\n")
                .unwrap_err()
                .contains("invalid Wheel-Version")
        );
    }

    #[test]
    fn entry_points_keep_script_sections_only() {
        let text = "[console_scripts]\nak = lifecycle.ak:main\ngunicorn=gunicorn.app.wsgiapp:run [setproctitle]\n\n[gui_scripts]\nwin = ui.app:App.start\n\n[django.apps]\nx = y:z\n";
        let entry_points = parse_entry_points(text).unwrap();
        let summary: Vec<String> = entry_points
            .iter()
            .map(|e| format!("{} {} {} {}", e.name, e.module, e.attribute, e.gui))
            .collect();
        assert_eq!(
            summary,
            [
                "ak lifecycle.ak main false",
                "gunicorn gunicorn.app.wsgiapp run false",
                "win ui.app App.start true",
            ]
        );
        assert_eq!(
            parse_entry_points("[console_scripts]\n../evil = a:b\n")
                .unwrap_err()
                .1,
            "the script name must be a plain file name"
        );
        assert_eq!(
            parse_entry_points("[console_scripts]\nx = pkg.cli\n")
                .unwrap_err()
                .1,
            "a script needs `module:attribute`"
        );
        assert_eq!(
            parse_entry_points("[console_scripts]\nx = a b:c\n")
                .unwrap_err()
                .1,
            "the object reference must be `module:attribute` with Python identifiers"
        );
    }
}
