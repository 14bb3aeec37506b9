//! How two subjects with wildcards relate, for the console: the monitor would subscribe twice to
//! what one subscription already gets; a stream refused for subjects another stream stores is
//! told which.

/// Whether every subject `inner` matches is matched by `outer` too (both may have wildcards).
pub fn covers(outer: &str, inner: &str) -> bool {
    let mut inner_tokens = inner.split('.');
    for o in outer.split('.') {
        match (o, inner_tokens.next()) {
            (">", Some(_)) => return true,
            (_, Some(">")) => return false,
            ("*", Some(_)) => {}
            (o, Some(i)) if o == i => {}
            _ => return false,
        }
    }
    inner_tokens.next().is_none()
}

/// Whether some subject is matched by both `a` and `b`.
pub fn overlap(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) | (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some("*"), Some(_)) | (Some(_), Some("*")) => {}
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{covers, overlap};

    #[test]
    fn covers_means_every_match_of_the_inner_one() {
        for (outer, inner) in [
            ("a.>", "a.b"),
            ("a.>", "a.*.c"),
            ("a.>", "a.>"),
            ("a.*", "a.b"),
            ("a.*", "a.*"),
            (">", "a"),
            ("a.b", "a.b"),
        ] {
            assert!(covers(outer, inner), "{outer} covers {inner}");
        }
        for (outer, inner) in [
            ("a.b", "a.>"),
            ("a.*", "a.>"),
            ("a.*", "a.b.c"),
            ("a.>", "a"),
            ("a.b", "a.c"),
            ("a.b", "a"),
            ("a", "a.b"),
        ] {
            assert!(!covers(outer, inner), "{outer} does not cover {inner}");
        }
    }

    #[test]
    fn overlap_means_one_subject_both_match() {
        for (a, b) in [
            ("a.*", "*.b"),
            ("a.>", "a.b.c"),
            ("a.b", "a.b"),
            ("*", "a"),
            (">", "x.y"),
            ("a.*.c", "a.b.*"),
        ] {
            assert!(overlap(a, b) && overlap(b, a), "{a} and {b} overlap");
        }
        for (a, b) in [
            ("a.*", "a.b.c"),
            ("a.>", "a"),
            ("a.b", "a.c"),
            ("a", "a.b"),
            ("*.b", "a.c"),
        ] {
            assert!(
                !overlap(a, b) && !overlap(b, a),
                "{a} and {b} do not overlap"
            );
        }
    }
}
