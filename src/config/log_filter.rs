//! The check of `--log-level`, before logging starts. tracing's `EnvFilter` reads any bare word it
//! does not know as a *target* name, so `--log-level warning` would be a filter for a target called
//! `warning` and silence every log line. Here a bare word must be a level; a target takes its level
//! after `=` (`mpu_janitor=debug`).

/// The level names tracing accepts (case-insensitive), and its numeric forms.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Checks a level or `RUST_LOG`-style filter (`info`, `warn,mpu_janitor=debug`,
/// `[sweep]=trace`): every bare directive must be a level, every `target=level` a known level, and
/// the whole must parse as an `EnvFilter`. The error names the bad directive and, for a near miss,
/// the level meant (`warning` -> `warn`).
pub fn check_log_filter(spec: &str) -> Result<(), String> {
    let directives: Vec<&str> = spec
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Err(format!("empty filter; {}", usage()));
    }
    for d in directives {
        // The level follows the last `=` after any span part (`target[span{field=value}]=level`).
        let after_span = d.rfind(']').map_or(d, |i| &d[i + 1..]);
        let level = match after_span.rfind('=') {
            Some(i) => Some(&after_span[i + 1..]),
            None if d.contains('[') => None, // a span filter without a level: all levels
            None => Some(d),
        };
        if let Some(level) = level
            && !is_level(level)
        {
            let hint = match suggest(level) {
                Some(l) => format!("; did you mean {l:?}?"),
                None => String::new(),
            };
            return Err(format!("{level:?} is not a level{hint} {}", usage()));
        }
    }
    tracing_subscriber::EnvFilter::try_new(spec)
        .map(|_| ())
        .map_err(|e| format!("{e}; {}", usage()))
}

fn usage() -> String {
    format!(
        "(levels: {}; a filter is a comma-separated list of levels and target=level, e.g. \"warn,mpu_janitor=debug\")",
        LEVELS.join(", ")
    )
}

fn is_level(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    LEVELS.contains(&w.as_str()) || matches!(w.as_str(), "0" | "1" | "2" | "3" | "4" | "5")
}

/// The level a near miss probably meant: one it starts with or that starts with it
/// (`warning`, `err`), or one at most two edits away (`debg`).
fn suggest(word: &str) -> Option<&'static str> {
    let w = word.to_ascii_lowercase();
    if w.len() < 2 {
        return None;
    }
    LEVELS
        .iter()
        .find(|l| w.starts_with(**l) || (w.len() >= 3 && l.starts_with(w.as_str())))
        .or_else(|| LEVELS.iter().find(|l| edit_distance(&w, l) <= 2))
        .copied()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
