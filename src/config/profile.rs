//! The AWS shared configuration files, read offline as aws-config would: where they are, whether a
//! profile is in them (check-config refuses a profile in neither), and a profile's `region` (the
//! region of a target that sets none, after the environment's, as the ecosystem resolves it).

use std::path::Path;

/// The shared config and credentials files aws-config reads: `$AWS_CONFIG_FILE` and
/// `$AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/config` and `~/.aws/credentials`.
pub(super) fn files() -> (std::path::PathBuf, std::path::PathBuf) {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let pick = |var: &str, default: &str| match std::env::var_os(var) {
        Some(p) if !p.is_empty() => {
            let p = std::path::PathBuf::from(p);
            match (p.strip_prefix("~"), &home) {
                (Ok(rest), Some(h)) => h.join(rest),
                _ => p,
            }
        }
        _ => home.clone().unwrap_or_default().join(".aws").join(default),
    };
    (
        pick("AWS_CONFIG_FILE", "config"),
        pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
    )
}

/// Why `profile` is in neither file (`[profile NAME]` or `[NAME]` in the config file, `[NAME]` in
/// the credentials file), if it is in neither: the target would only fail at run time, with a
/// credentials error.
pub(super) fn problem(profile: &str, config: &Path, credentials: &Path) -> Option<String> {
    let has = |file: &Path, prefixed: bool| -> bool {
        let Ok(text) = std::fs::read_to_string(file) else {
            return false;
        };
        text.lines().any(|l| {
            let Some(inner) = l.trim().strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
                return false;
            };
            let inner = inner.trim();
            let name = match inner.strip_prefix("profile") {
                Some(rest) if prefixed && rest.starts_with(char::is_whitespace) => rest.trim(),
                _ => inner,
            };
            name == profile
        })
    };
    if has(config, true) || has(credentials, false) {
        return None;
    }
    Some(format!(
        "{profile:?} is in neither {:?} nor {:?} (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE): the target would fail with a credentials error",
        config.display().to_string(),
        credentials.display().to_string()
    ))
}

/// The `region` of `profile` in the shared config file (`[default]`, `[profile NAME]`), if set.
pub(super) fn region(profile: &str, config: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config).ok()?;
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(inner) = line.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let inner = inner.trim();
            let name = match inner.strip_prefix("profile") {
                Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim(),
                _ if inner == "default" => inner,
                _ => "",
            };
            inside = !name.is_empty() && name == profile;
            continue;
        }
        if !inside || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "region"
        {
            let value = value.trim();
            return (!value.is_empty()).then(|| value.to_string());
        }
    }
    None
}

/// The profile aws-config would read when a target names none: `$AWS_PROFILE`, else `default`.
pub(super) fn ambient() -> String {
    std::env::var("AWS_PROFILE")
        .ok()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

#[cfg(test)]
mod tests {
    use super::region;

    #[test]
    fn a_profiles_region_is_read_from_its_own_section_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            "region = nowhere\n[default]\n# region = commented\nregion=us-west-2\n[profile a]\n  region = eu-west-1  \n[profile b]\n[b2]\nregion = x\n[profile default]\n",
        )
        .unwrap();
        assert_eq!(region("default", &config).as_deref(), Some("us-west-2"));
        assert_eq!(region("a", &config).as_deref(), Some("eu-west-1"));
        assert_eq!(region("b", &config), None);
        assert_eq!(
            region("b2", &config),
            None,
            "[b2] is not a profile of the config file"
        );
        assert_eq!(region("c", &config), None);
        assert_eq!(region("a", &dir.path().join("none")), None);
    }
}
