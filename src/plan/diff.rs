//! Unified diffs of file content for the plan, secrets masked.

use crate::secret::Redactor;
use std::collections::HashSet;

/// What an old line of a sensitive file that the new content does not have is shown as.
pub const HIDDEN_LINE: &str = "[line hidden: sensitive file]";

/// A unified diff, secrets masked on both sides. In a sensitive file an old line that is not in
/// the new content is hidden whole: it may hold an earlier secret the redactor does not know. Each
/// side is masked as one text, so a secret of several lines (a PEM key) is masked whole on both.
pub fn diff(path: &str, old: &[u8], new: &[u8], sensitive: bool, redactor: &Redactor) -> String {
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    if old.contains('\0') || new.contains('\0') {
        return format!("binary file {path} differs\n");
    }
    let old_text: String = if sensitive {
        let kept: HashSet<&str> = new.lines().collect();
        let shown: String = old
            .lines()
            .map(|l| if kept.contains(l) { l } else { HIDDEN_LINE })
            .flat_map(|l| [l, "\n"])
            .collect();
        redactor.redact(&shown)
    } else {
        redactor.redact(&old)
    };
    let new_text = redactor.redact(&new);
    similar::TextDiff::from_lines(&old_text, &new_text)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (on host)"), &format!("{path} (provision)"))
        .to_string()
}
