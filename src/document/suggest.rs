//! "Did you mean" for unknown fields (docs/spec.md §6): the known field nearest by edit distance.

/// The known field closest to `field` (optimal string alignment distance, case-insensitive) when
/// it is at most 2 edits away; ties go to the earlier field of `known`.
pub(super) fn closest<'a>(field: &str, known: &[&'a str]) -> Option<&'a str> {
    // A long unknown name is nothing anyone meant to type as a field: skip the quadratic work.
    if field.len() > 64 {
        return None;
    }
    let field: Vec<char> = field.to_lowercase().chars().collect();
    known
        .iter()
        .map(|k| (distance(&field, &k.chars().collect::<Vec<_>>()), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps.
fn distance(a: &[char], b: &[char]) -> usize {
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest;

    const FLAG: &[&str] = &["key", "enabled", "percentage", "rules", "variants", "default_variant"];

    #[test]
    fn suggests_the_field_meant() {
        assert_eq!(closest("percentge", FLAG), Some("percentage"));
        assert_eq!(closest("rule", FLAG), Some("rules"));
        assert_eq!(closest("Enabled", FLAG), Some("enabled"));
        assert_eq!(closest("varaints", FLAG), Some("variants"));
        assert_eq!(closest("colour", FLAG), None);
        assert_eq!(closest(&"x".repeat(10_000), FLAG), None);
    }
}
