//! Unified diffs of file content for the plan, secrets masked.

use crate::secret::Redactor;

/// A unified diff, secrets masked. In a sensitive file an old line that is not in the new content
/// is hidden whole: it may hold an earlier secret the redactor does not know.
pub fn diff(path: &str, old: &[u8], new: &[u8], sensitive: bool, redactor: &Redactor) -> String {
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    if old.contains('\0') || new.contains('\0') {
        return format!("binary file {path} differs\n");
    }
    let old_text: String = if sensitive {
        old.lines()
            .map(|l| {
                if new.lines().any(|n| n == l) {
                    redactor.redact(l)
                } else {
                    "[line hidden: sensitive file]".to_string()
                }
            })
            .map(|l| l + "\n")
            .collect()
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
